/* test_status.c - state file, health decisions, hooks and the configuration file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xr/config.h"
#include "xr/err.h"
#include "xr/hooks.h"
#include "xr/opts.h"
#include "xr/status.h"

/* A fresh temp dir per test. */
static int setup_dir(void **state)
{
	char *d = strdup("/tmp/xr-status-XXXXXX");

	if (d == NULL || mkdtemp(d) == NULL)
		return -1;
	*state = d;
	return 0;
}

/* Removes the temp dir (flat: the tests create files only). */
static int teardown_dir(void **state)
{
	char *d = *state, path[600];
	struct dirent *de;
	DIR *dir = opendir(d);

	while (dir && (de = readdir(dir)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", d, de->d_name);
		unlink(path);
	}
	if (dir)
		closedir(dir);
	rmdir(d);
	free(d);
	return 0;
}

/* Writes text to dir/name. */
static void write_file(const char *dir, const char *name, const char *text)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Counts the entries of dir (without . and ..). */
static int count_entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_name_sanitised(void **state)
{
	char buf[256];

	(void)state;
	assert_int_equal(xr_status_name("/etc/xroad/", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "etc-xroad");
	assert_int_equal(xr_status_name("/etc/xroad", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "etc-xroad");
	assert_int_equal(xr_status_name("xroad@host2:/etc/xroad/", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "xroad_host2_etc-xroad");
	assert_int_equal(xr_status_name("/", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "root");
	assert_int_equal(xr_status_name("/a b/../c", buf, sizeof(buf)), 0);
	assert_null(strchr(buf, '/'));
	assert_null(strchr(buf, ' '));
	assert_int_equal(xr_status_name("/etc/xroad", buf, 4), XR_ELIMIT);
}

/* A status with every field set. */
static void full_status(struct xr_status *st)
{
	xr_status_init(st);
	snprintf(st->dest, sizeof(st->dest), "/etc/xroad/");
	snprintf(st->peer, sizeof(st->peer), "xroad-slave@primary:/etc/xroad/");
	snprintf(st->mode, sizeof(st->mode), "pull-watch");
	st->pid = 4242;
	st->session_up = true;
	st->last_attempt = 1714557700;
	st->last_success = 1714557600;
	st->last_exit = 23;
	snprintf(st->last_error, sizeof(st->last_error), "partial\ntransfer");
	st->lag_ms = 35;
	st->files = 3;
	st->bytes = 8192;
	st->wire_bytes = 900;
	st->total_files = 30;
	st->total_bytes = 81920;
	st->changesets = 10;
	st->failures = 2;
	st->hook_time = 1714557650;
	snprintf(st->hook_error, sizeof(st->hook_error), "conf.d/*.ini=false: exit 1");
}

static void test_round_trip(void **state)
{
	const char *dir = *state;
	struct xr_status a, b;

	full_status(&a);
	assert_int_equal(xr_status_save(dir, "etc-xroad", &a), 0);
	assert_int_equal(xr_status_load(dir, "etc-xroad", &b), 0);
	assert_string_equal(b.dest, a.dest);
	assert_string_equal(b.peer, a.peer);
	assert_string_equal(b.mode, "pull-watch");
	assert_int_equal(b.pid, 4242);
	assert_true(b.session_up);
	assert_int_equal(b.last_attempt, a.last_attempt);
	assert_int_equal(b.last_success, a.last_success);
	assert_int_equal(b.last_exit, 23);
	/* a newline in a value must not break the line format */
	assert_string_equal(b.last_error, "partial transfer");
	assert_int_equal(b.lag_ms, 35);
	assert_int_equal(b.files, 3);
	assert_int_equal(b.bytes, 8192);
	assert_int_equal(b.wire_bytes, 900);
	assert_int_equal(b.total_files, 30);
	assert_int_equal(b.total_bytes, 81920);
	assert_int_equal(b.changesets, 10);
	assert_int_equal(b.failures, 2);
	assert_int_equal(b.hook_time, a.hook_time);
	assert_string_equal(b.hook_error, a.hook_error);
	assert_int_equal(xr_status_load(dir, "nothing-here", &b), 1);
}

static void test_atomic_write(void **state)
{
	const char *dir = *state;
	struct xr_status a, b;
	char path[600], text[4096];
	int fd;
	ssize_t n;

	full_status(&a);
	assert_int_equal(xr_status_save(dir, "d", &a), 0);
	a.changesets = 11;
	assert_int_equal(xr_status_save(dir, "d", &a), 0);
	/* replaced in place: one file, no temp file left behind */
	assert_int_equal(count_entries(dir), 1);
	snprintf(path, sizeof(path), "%s/d.state", dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	assert_true(n > 0);
	text[n] = '\0';
	assert_non_null(strstr(text, "changesets=11\n"));
	assert_non_null(strstr(text, "last_success_iso=2024-05-01T10:00:00Z\n"));
	assert_int_equal(xr_status_load(dir, "d", &b), 0);
	assert_int_equal(b.changesets, 11);
	/* an unwritable directory is an error, not a crash */
	assert_int_equal(xr_status_save("/nonexistent/xr", "d", &a), XR_EFILEIO);
}

static void test_parse_rejects(void **state)
{
	struct xr_status st;

	(void)state;
	assert_int_equal(xr_status_parse("dest=/x\n", &st), XR_EPROTO);	/* no version */
	assert_int_equal(xr_status_parse("version=1\nfiles=abc\n", &st), XR_EPROTO);
	assert_int_equal(xr_status_parse("version=1\ngarbage line\n", &st), XR_EPROTO);
	assert_int_equal(xr_status_parse("version=1\nfuture_key=7\nfiles=2\n", &st), 0);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.lag_ms, -1);
}

static void test_health_decisions(void **state)
{
	struct xr_status st;
	char why[600];
	int64_t now = 1714557600;

	(void)state;
	/* fresh install: no state file */
	assert_false(xr_status_healthy(NULL, now, 60, why, sizeof(why)));
	assert_string_equal(why, "no run recorded");
	xr_status_init(&st);
	assert_false(xr_status_healthy(&st, now, -1, why, sizeof(why)));
	assert_string_equal(why, "no run recorded");
	/* fresh success */
	st.last_attempt = st.last_success = now - 30;
	assert_true(xr_status_healthy(&st, now, 60, why, sizeof(why)));
	assert_true(xr_status_healthy(&st, now, -1, why, sizeof(why)));
	assert_true(xr_status_healthy(&st, now, 30, why, sizeof(why)));
	/* stale */
	assert_false(xr_status_healthy(&st, now, 29, why, sizeof(why)));
	assert_non_null(strstr(why, "30 s ago"));
	assert_false(xr_status_healthy(&st, now, 0, why, sizeof(why)));
	/* an idle --watch session of a live process is healthy however old */
	st.session_up = true;
	st.pid = (long)getpid();
	assert_true(xr_status_healthy(&st, now, 0, why, sizeof(why)));
	/* ... but not when its process is gone */
	{
		pid_t child = fork();

		if (child == 0)
			_exit(0);
		waitpid(child, NULL, 0);
		st.pid = (long)child;
	}
	assert_false(xr_status_healthy(&st, now, 0, why, sizeof(why)));
	/* failed last run: unhealthy with or without --max-age */
	st.session_up = false;
	st.last_attempt = now;
	st.last_exit = 10;
	snprintf(st.last_error, sizeof(st.last_error), "error in socket IO");
	assert_false(xr_status_healthy(&st, now, 3600, why, sizeof(why)));
	assert_non_null(strstr(why, "code 10"));
	assert_non_null(strstr(why, "error in socket IO"));
	assert_false(xr_status_healthy(&st, now, -1, why, sizeof(why)));
	/* failed before any success */
	xr_status_init(&st);
	st.last_attempt = now;
	st.last_exit = 0;
	assert_false(xr_status_healthy(&st, now, 60, why, sizeof(why)));
}

static void test_status_main_exit(void **state)
{
	const char *dir = *state;
	struct xr_opts o;
	struct xr_status st;
	char *args[] = {(char *)"/srv/x"};
	int saved = dup(1), null = open("/dev/null", O_WRONLY);

	memset(&o, 0, sizeof(o));
	o.cmd = XR_CMD_STATUS;
	o.state_dir = (char *)dir;
	o.max_age = -1;
	dup2(null, 1);	/* keep the table out of the test output */
	/* nothing recorded: exit 1 */
	assert_int_equal(xr_status_main(&o), 1);
	o.args = args;
	o.nargs = 1;
	assert_int_equal(xr_status_main(&o), 1);
	/* a fresh success: exit 0, also with --max-age */
	xr_status_init(&st);
	st.last_attempt = st.last_success = (int64_t)time(NULL);
	assert_int_equal(xr_status_save(dir, "srv-x", &st), 0);
	assert_int_equal(xr_status_main(&o), 0);
	o.max_age = 60;
	o.json = true;
	assert_int_equal(xr_status_main(&o), 0);
	/* old: --max-age fails it */
	st.last_attempt = st.last_success = (int64_t)time(NULL) - 120;
	assert_int_equal(xr_status_save(dir, "srv-x", &st), 0);
	assert_int_equal(xr_status_main(&o), 1);
	o.max_age = -1;
	assert_int_equal(xr_status_main(&o), 0);
	/* one bad destination among all makes the listing unhealthy */
	o.nargs = 0;
	write_file(dir, "other.state", "version=1\nlast_attempt=5\nlast_exit=23\n");
	assert_int_equal(xr_status_main(&o), 1);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(null);
}

static void test_hook_matching(void **state)
{
	const char *name;

	(void)state;
	assert_true(xr_hook_matches("conf.d/*.ini", "conf.d/local.ini"));
	assert_true(xr_hook_matches("conf.d/*.ini", "x/conf.d/local.ini"));
	assert_false(xr_hook_matches("conf.d/*.ini", "conf.d/addons/a.ini"));
	assert_false(xr_hook_matches("/conf.d/*.ini", "x/conf.d/local.ini"));
	assert_true(xr_hook_matches("/conf.d/*.ini", "conf.d/local.ini"));
	assert_true(xr_hook_matches("*.p12", "signer/softtoken/ABC.p12"));
	assert_true(xr_hook_matches("keyconf.xml", "signer/keyconf.xml"));
	assert_false(xr_hook_matches("keyconf.xml", "signer/keyconf.xml.bak"));
	assert_true(xr_hook_matches("signer/", "signer/"));
	assert_false(xr_hook_matches("signer/", "signer"));
	assert_true(xr_hook_matches("signer/***", "signer/"));
	assert_true(xr_hook_matches("signer/***", "signer/softtoken/a.p12"));
	assert_false(xr_hook_matches("signer/***", "ssl/a.p12"));
	assert_true(xr_hook_matches("conf.d/**", "conf.d/addons/a.ini"));
	/* changed entries: content and existence changes only */
	assert_true(xr_hook_changed_entry(">f+++++++++conf.d/a.ini", &name));
	assert_string_equal(name, "conf.d/a.ini");
	assert_true(xr_hook_changed_entry("*deleting  old.ini", &name));
	assert_string_equal(name, "old.ini");
	assert_true(xr_hook_changed_entry("cd+++++++++conf.d/new/", &name));
	assert_false(xr_hook_changed_entry(".f..t......signer/keyconf.xml", &name));
	assert_false(xr_hook_changed_entry(".d..t......conf.d/", &name));
}

static void test_hooks_run(void **state)
{
	const char *dir = *state;
	struct xr_hooks h;
	char spec[700], err[600], marker[600];
	char *changed[] = {(char *)">f.st......conf.d/local.ini",
			   (char *)".f..t......signer/keyconf.xml"};
	size_t ran;
	struct timespec t0, t1;
	bool timed_out;
	int st;

	memset(&h, 0, sizeof(h));
	h.timeout = 1;
	assert_int_equal(xr_hooks_add(&h, "no-equals", "test"), XR_ESYNTAX);
	assert_int_equal(xr_hooks_add(&h, "=cmd", "test"), XR_ESYNTAX);
	assert_int_equal(xr_hooks_add(&h, "pat=", "test"), XR_ESYNTAX);
	snprintf(marker, sizeof(marker), "%s/marker", dir);
	snprintf(spec, sizeof(spec), "conf.d/*.ini=printf '%%s' \"$XR_CHANGED\" > %s", marker);
	assert_int_equal(xr_hooks_add(&h, spec, "test"), 0);
	/* attribute-only change of keyconf.xml: this hook must not run */
	assert_int_equal(xr_hooks_add(&h, "keyconf.xml=exit 5", "test"), 0);
	assert_int_equal(xr_hooks_run(&h, changed, 2, "/etc/xroad", &ran, err, sizeof(err)), 0);
	assert_int_equal(ran, 1);
	{
		FILE *f = fopen(marker, "r");
		char got[100] = "";

		assert_non_null(f);
		assert_non_null(fgets(got, sizeof(got), f));
		fclose(f);
		assert_string_equal(got, "conf.d/local.ini\n");
	}
	xr_hooks_free(&h);
	/* failure: exit status recorded */
	memset(&h, 0, sizeof(h));
	h.timeout = 5;
	assert_int_equal(xr_hooks_add(&h, "*.ini=exit 3", "test"), 0);
	assert_int_equal(xr_hooks_run(&h, changed, 2, "/etc/xroad", &ran, err, sizeof(err)), 1);
	assert_string_equal(err, "*.ini=exit 3: exit 3");
	xr_hooks_free(&h);
	/* timeout: killed (the whole group), promptly */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	st = xr_hook_exec("sleep 30; echo not reached", 1, NULL, NULL, &timed_out);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(timed_out);
	assert_true(WIFSIGNALED(st));
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	st = xr_hook_exec("exit 0", 1, NULL, NULL, &timed_out);
	assert_false(timed_out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_config_parse(void **state)
{
	const char *dir = *state;
	struct xr_config c;
	char path[600], **v;
	int nargc, total;
	char *argv[] = {(char *)"xroad-replicate", (char *)"pull", (char *)"--timeout=3",
			(char *)"--exclude=b", NULL};

	snprintf(path, sizeof(path), "%s/ok.conf", dir);
	write_file(dir, "ok.conf",
		   "# comment\n[sync]\ndestination = /etc/xroad/\nsource = primary:/etc/xroad/\n"
		   "timeout = 10\nwatch = yes\ndelete = no\nexclude = a\nexclude = *.tmp\n"
		   "[hooks]\non_change = conf.d/*.ini=systemctl restart xroad-proxy\n"
		   "[health]\nport = 8080\n[status]\nstate_dir = /tmp/st\n");
	assert_int_equal(xr_config_load(path, &c), 0);
	assert_int_equal(c.nargs, 2);
	assert_string_equal(c.args[0], "primary:/etc/xroad/");
	assert_string_equal(c.args[1], "/etc/xroad/");
	assert_int_equal(c.nopts, 4);	/* timeout, watch, port, state_dir; delete=no adds none */
	assert_string_equal(c.opts[0], "--timeout=10");
	assert_string_equal(c.opts[1], "--watch");
	assert_int_equal(c.nlists, 3);
	assert_string_equal(c.lists[2], "--on-change=conf.d/*.ini=systemctl restart xroad-proxy");
	/* the command line's options come after the file's scalars, before its lists */
	assert_int_equal(xr_config_merge_argv(&c, 4, argv, &nargc, &v, &total), 0);
	assert_int_equal(nargc, 2 + 4 + 2 + 3);
	assert_string_equal(v[2], "--timeout=10");
	assert_string_equal(v[6], "--timeout=3");
	assert_string_equal(v[7], "--exclude=b");
	assert_string_equal(v[8], "--exclude=a");
	assert_null(v[nargc]);
	assert_string_equal(v[nargc + 1], "primary:/etc/xroad/");
	assert_null(v[total - 1]);
	xr_config_free_argv(v, total);
	xr_config_free(&c);
	/* a missing file */
	snprintf(path, sizeof(path), "%s/none.conf", dir);
	assert_int_equal(xr_config_load(path, &c), 1);
	/* errors: unknown key, bad number, bad bool, syntax, destination without source */
	snprintf(path, sizeof(path), "%s/bad.conf", dir);
	write_file(dir, "bad.conf", "[sync]\nsource = a/\nbogus = 1\n");
	assert_int_equal(xr_config_load(path, &c), XR_ESYNTAX);
	write_file(dir, "bad.conf", "[sync]\ntimeout = ten\n");
	assert_int_equal(xr_config_load(path, &c), XR_ESYNTAX);
	write_file(dir, "bad.conf", "[sync]\nwatch = maybe\n");
	assert_int_equal(xr_config_load(path, &c), XR_ESYNTAX);
	write_file(dir, "bad.conf", "[sync\n");
	assert_int_equal(xr_config_load(path, &c), XR_ESYNTAX);
	write_file(dir, "bad.conf", "[health]\nport = 70000\n");
	assert_int_equal(xr_config_load(path, &c), XR_ESYNTAX);
	write_file(dir, "bad.conf", "[sync]\ndestination = /x/\n");
	assert_int_equal(xr_config_load(path, &c), XR_ESYNTAX);
	write_file(dir, "bad.conf", "[sync]\nsource = a/\nsource = b/\n");
	assert_int_equal(xr_config_load(path, &c), XR_ESYNTAX);
}

static void test_config_into_opts(void **state)
{
	const char *dir = *state;
	struct xr_opts o;
	char path[600], cfg[620];
	char *argv1[] = {(char *)"xroad-replicate", (char *)"pull", cfg, (char *)"--timeout=3",
			 NULL};
	char *argv2[] = {(char *)"xroad-replicate", (char *)"pull", cfg, (char *)"src/",
			 (char *)"dst/", NULL};

	snprintf(path, sizeof(path), "%s/x.conf", dir);
	snprintf(cfg, sizeof(cfg), "--config=%s", path);
	write_file(dir, "x.conf",
		   "[sync]\nsource = p:/etc/xroad/\ndestination = /etc/xroad/\ntimeout = 10\n"
		   "contimeout = 7\npause_file = /tmp/pause\n[hooks]\non_change = *.ini=true\n"
		   "timeout = 9\n[health]\nport = 8081\nmax_age = 120\n[status]\nstate_dir = /s\n");
	assert_int_equal(xr_opts_parse(&o, 4, argv1), 0);
	assert_int_equal(o.timeout, 3);		/* the command line wins */
	assert_int_equal(o.contimeout, 7);
	assert_string_equal(o.pause_file, "/tmp/pause");
	assert_int_equal(o.non_change, 1);
	assert_string_equal(o.on_change[0], "*.ini=true");
	assert_int_equal(o.hook_timeout, 9);
	assert_int_equal(o.health_port, 8081);
	assert_int_equal(o.max_age, 120);
	assert_string_equal(o.state_dir, "/s");
	assert_int_equal(o.nargs, 2);		/* SRC and DEST from the file */
	assert_string_equal(o.args[0], "p:/etc/xroad/");
	assert_string_equal(o.args[1], "/etc/xroad/");
	xr_opts_free(&o);
	assert_int_equal(xr_opts_parse(&o, 5, argv2), 0);
	assert_int_equal(o.nargs, 2);		/* ... unless the command line has them */
	assert_string_equal(o.args[0], "src/");
	assert_string_equal(o.args[1], "dst/");
	xr_opts_free(&o);
	/* a bad file fails the parse */
	write_file(dir, "x.conf", "[sync]\ntimeout = x\n");
	assert_int_equal(xr_opts_parse(&o, 4, argv1), XR_ESYNTAX);
	xr_opts_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_sanitised),
		cmocka_unit_test_setup_teardown(test_round_trip, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_atomic_write, setup_dir, teardown_dir),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_health_decisions),
		cmocka_unit_test_setup_teardown(test_status_main_exit, setup_dir, teardown_dir),
		cmocka_unit_test(test_hook_matching),
		cmocka_unit_test_setup_teardown(test_hooks_run, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_config_parse, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_config_into_opts, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_rsh.c - locations, -e parsing, and the spawned (local / external) transports. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "xr/conn.h"
#include "xr/err.h"
#include "xr/log.h"
#include "xr/transport.h"
#include "xr/wire.h"

/* ---- locations ----------------------------------------------------------- */

struct loc_case {
	const char *arg;
	int rc;
	bool remote;
	const char *user, *host, *path;
};

static const struct loc_case loc_cases[] = {
	{"host:path", 0, true, NULL, "host", "path"},
	{"xroad-slave@primary:/etc/xroad/", 0, true, "xroad-slave", "primary", "/etc/xroad/"},
	{"a@b@h:p", 0, true, "a@b", "h", "p"},
	{"h:", 0, true, NULL, "h", "."},
	{"h:a b", 0, true, NULL, "h", "a b"},
	{"h:a:b", 0, true, NULL, "h", "a:b"},
	{"[::1]:/x", 0, true, NULL, "::1", "/x"},
	{"u@[fe80::1]:x", 0, true, "u", "fe80::1", "x"},
	{"[::1]:", 0, true, NULL, "::1", "."},
	{"./a:b", 0, false, NULL, NULL, "./a:b"},
	{"/abs/p:x", 0, false, NULL, NULL, "/abs/p:x"},
	{"a/b:c", 0, false, NULL, NULL, "a/b:c"},
	{"plain", 0, false, NULL, NULL, "plain"},
	{"/etc/xroad/", 0, false, NULL, NULL, "/etc/xroad/"},
	{"", 0, false, NULL, NULL, "."},
	{"[::1]x:/y", 0, false, NULL, NULL, "[::1]x:/y"},
	{"[::1", 0, false, NULL, NULL, "[::1"},
	{"[]:x", 0, false, NULL, NULL, "[]:x"},
	{"u@[::1]/x:y", 0, false, NULL, NULL, "u@[::1]/x:y"},
	{"h::module", XR_EUNSUPPORTED, false, NULL, NULL, NULL},
	{"u@h::module/x", XR_EUNSUPPORTED, false, NULL, NULL, NULL},
	{"rsync://h/module", XR_EUNSUPPORTED, false, NULL, NULL, NULL},
	{":p", XR_ESYNTAX, false, NULL, NULL, NULL},
	{"@h:p", XR_ESYNTAX, false, NULL, NULL, NULL},
};

/* Compares two optional strings. */
static void assert_opt_str(const char *want, const char *got, const char *what)
{
	if (!want) {
		if (got)
			fail_msg("%s: expected NULL, got '%s'", what, got);
		return;
	}
	if (!got || strcmp(want, got) != 0)
		fail_msg("%s: expected '%s', got '%s'", what, want, got ? got : "(null)");
}

static void test_location_table(void **state)
{
	struct xr_location loc;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(loc_cases) / sizeof(loc_cases[0]); i++) {
		const struct loc_case *c = &loc_cases[i];

		rc = xr_location_parse(c->arg, &loc);
		if (rc != c->rc)
			fail_msg("'%s': rc %d, expected %d", c->arg, rc, c->rc);
		if (rc == 0) {
			if (loc.remote != c->remote)
				fail_msg("'%s': remote %d, expected %d", c->arg, loc.remote,
					 c->remote);
			assert_opt_str(c->user, loc.user, c->arg);
			assert_opt_str(c->host, loc.host, c->arg);
			assert_opt_str(c->path, loc.path, c->arg);
		}
		xr_location_free(&loc);
		assert_null(loc.path);
	}
}

/* ---- -e / --rsh ---------------------------------------------------------------- */

static void test_rsh_defaults(void **state)
{
	const char *inputs[] = {NULL, "", "   ", "ssh", "  ssh  "};
	struct xr_rsh r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		assert_int_equal(xr_rsh_parse(inputs[i], &r), 0);
		assert_true(r.builtin);
		assert_int_equal(r.argc, 1);
		assert_string_equal(r.argv[0], "ssh");
		assert_null(r.argv[1]);
		assert_int_equal(r.port, 0);
		assert_int_equal(r.nidentities, 0);
		assert_null(r.user);
		assert_int_equal(r.connect_timeout, 0);
		assert_int_equal(r.hostkey, XR_HOSTKEY_YES);
		assert_null(r.known_hosts);
		assert_false(r.batch_mode);
		assert_int_equal(r.keepalive_interval, 15);
		assert_int_equal(r.keepalive_count_max, 3);
		assert_int_equal(r.addr_family, 0);
		xr_rsh_free(&r);
	}
}

static void test_rsh_guide_line(void **state)
{
	struct xr_rsh r;

	(void)state;
	/* IG-XLB's exact -e value, trailing space included */
	assert_int_equal(xr_rsh_parse("ssh -o ConnectTimeout=5 ", &r), 0);
	assert_true(r.builtin);
	assert_int_equal(r.connect_timeout, 5);
	assert_int_equal(r.argc, 3);
	xr_rsh_free(&r);
}

static void test_rsh_builtin_options(void **state)
{
	struct xr_rsh r;

	(void)state;
	assert_int_equal(xr_rsh_parse("/usr/bin/ssh -p 2222 -i /k/one -l bob -i ~/.ssh/two", &r),
			 0);
	assert_true(r.builtin);
	assert_int_equal(r.port, 2222);
	assert_int_equal(r.nidentities, 2);
	assert_string_equal(r.identities[0], "/k/one");
	assert_string_equal(r.identities[1], "~/.ssh/two");
	assert_null(r.identities[2]);
	assert_string_equal(r.user, "bob");
	xr_rsh_free(&r);

	assert_int_equal(xr_rsh_parse("ssh -p2200 -i/k -lalice -qxT -4", &r), 0);
	assert_int_equal(r.port, 2200);
	assert_string_equal(r.identities[0], "/k");
	assert_string_equal(r.user, "alice");
	assert_int_equal(r.addr_family, AF_INET);
	xr_rsh_free(&r);

	assert_int_equal(xr_rsh_parse("ssh -6 -o Port=2201 -o User=x -o IdentityFile=/a "
				      "-oIdentityFile=/b -oStrictHostKeyChecking=accept-new",
				      &r),
			 0);
	assert_int_equal(r.addr_family, AF_INET6);
	assert_int_equal(r.port, 2201);
	assert_string_equal(r.user, "x");
	assert_int_equal(r.nidentities, 2);
	assert_string_equal(r.identities[1], "/b");
	assert_int_equal(r.hostkey, XR_HOSTKEY_ACCEPT_NEW);
	xr_rsh_free(&r);

	assert_int_equal(xr_rsh_parse("ssh -o 'StrictHostKeyChecking no' "
				      "-o \"UserKnownHostsFile = /dev/null\" -o BatchMode=yes "
				      "-o ServerAliveInterval=30 -o ServerAliveCountMax=5 "
				      "-o ' ConnectTimeout = 1m '",
				      &r),
			 0);
	assert_int_equal(r.hostkey, XR_HOSTKEY_NO);
	assert_string_equal(r.known_hosts, "/dev/null");
	assert_true(r.batch_mode);
	assert_int_equal(r.keepalive_interval, 30);
	assert_int_equal(r.keepalive_count_max, 5);
	assert_int_equal(r.connect_timeout, 60);
	xr_rsh_free(&r);

	assert_int_equal(xr_rsh_parse("ssh -o StrictHostKeyChecking=yes -o LogLevel=ERROR "
				      "-o PasswordAuthentication=no -o PubkeyAuthentication=yes "
				      "-o connecttimeout=7 -o AddressFamily=inet6 -o Compression=no",
				      &r),
			 0);
	assert_int_equal(r.hostkey, XR_HOSTKEY_YES);
	assert_int_equal(r.connect_timeout, 7);
	assert_int_equal(r.addr_family, AF_INET6);
	xr_rsh_free(&r);
}

struct rsh_err_case {
	const char *rsh;
	int rc;
};

static const struct rsh_err_case rsh_errors[] = {
	{"ssh -o ProxyCommand=nc", XR_EUNSUPPORTED},
	{"ssh -o ProxyJump=bastion", XR_EUNSUPPORTED},
	{"ssh -C", XR_EUNSUPPORTED},
	{"ssh -v", XR_EUNSUPPORTED},
	{"ssh -qC", XR_EUNSUPPORTED},
	{"ssh -F /etc/other", XR_EUNSUPPORTED},
	{"ssh host", XR_EUNSUPPORTED},
	{"ssh --", XR_EUNSUPPORTED},
	{"ssh -o PasswordAuthentication=yes", XR_EUNSUPPORTED},
	{"ssh -o PubkeyAuthentication=no", XR_EUNSUPPORTED},
	{"ssh -o 'UserKnownHostsFile=/a /b'", XR_EUNSUPPORTED},
	{"ssh -o =5", XR_EUNSUPPORTED},
	{"ssh -p", XR_ESYNTAX},
	{"ssh -o", XR_ESYNTAX},
	{"ssh -p 0", XR_ESYNTAX},
	{"ssh -p 65536", XR_ESYNTAX},
	{"ssh -p abc", XR_ESYNTAX},
	{"ssh -o Port=x", XR_ESYNTAX},
	{"ssh -o ConnectTimeout=abc", XR_ESYNTAX},
	{"ssh -o ConnectTimeout=-1", XR_ESYNTAX},
	{"ssh -o ConnectTimeout=", XR_ESYNTAX},
	{"ssh -o StrictHostKeyChecking=maybe", XR_ESYNTAX},
	{"ssh -o BatchMode=perhaps", XR_ESYNTAX},
	{"ssh -o LogLevel=LOUD", XR_ESYNTAX},
	{"ssh -o ServerAliveCountMax=3s", XR_ESYNTAX},
	{"ssh 'unterminated", XR_ESYNTAX},
	{"/usr/local/bin/wrapper \"open", XR_ESYNTAX},
};

static void test_rsh_errors(void **state)
{
	struct xr_rsh r;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(rsh_errors) / sizeof(rsh_errors[0]); i++) {
		rc = xr_rsh_parse(rsh_errors[i].rsh, &r);
		if (rc != rsh_errors[i].rc)
			fail_msg("-e \"%s\": rc %d, expected %d", rsh_errors[i].rsh, rc,
				 rsh_errors[i].rc);
		assert_null(r.argv);
	}
}

/* Checks that rsh splits into exactly the NULL-terminated words. */
static void assert_words(const char *rsh, bool builtin, const char *const *words)
{
	struct xr_rsh r;
	int i;

	assert_int_equal(xr_rsh_parse(rsh, &r), 0);
	assert_int_equal(r.builtin, builtin);
	for (i = 0; words[i]; i++) {
		if (i >= r.argc || strcmp(r.argv[i], words[i]) != 0)
			fail_msg("-e \"%s\": word %d is '%s', expected '%s'", rsh, i,
				 i < r.argc ? r.argv[i] : "(none)", words[i]);
	}
	assert_int_equal(r.argc, i);
	assert_null(r.argv[i]);
	xr_rsh_free(&r);
}

static void test_rsh_external_words(void **state)
{
	/* what /usr/bin/rsync 3.x passes for the same -e (checked with a logging script) */
	static const char *const w1[] = {"/tmp/wrap", "-o", "A B", "c d", "x\\", "y", "it's",
					 "ab cd", NULL};
	static const char *const w2[] = {"sudo", "-u", "xroad", "ssh", NULL};
	static const char *const w3[] = {"ssh.sh", "-p", "22", NULL};
	static const char *const w4[] = {"ssh\t-p", NULL};
	static const char *const w5[] = {"prog", "", "say \"hi\"", NULL};
	static const char *const w6[] = {"ssh", "-p", "22", NULL};

	(void)state;
	assert_words("/tmp/wrap -o 'A B' \"c d\" x\\ y 'it''s' a\"b c\"d", false, w1);
	assert_words("sudo -u xroad ssh", false, w2);
	assert_words("ssh.sh -p 22", false, w3);
	assert_words("ssh\t-p", false, w4);
	assert_words("prog '' 'say \"hi\"'", false, w5);
	assert_words("  ssh   -p  22  ", true, w6);
}

/* ---- spawned transports ------------------------------------------------------------ */

/* A remote shell that ignores HOST and runs the command string locally. */
#define LOCAL_RSH "/bin/sh -c 'exec /bin/sh -c \"$2\"' rsh"

/* Sends n frames of varying sizes and checks they come back; returns 0 or an xr_err. */
static int echo_frames(struct xr_conn *c, int n)
{
	static uint8_t buf[256 * 1024];
	const uint8_t *p;
	size_t len, want, k;
	uint8_t type;
	int i, rc;

	for (i = 0; i < n; i++) {
		want = (size_t)i * 7919 % sizeof(buf);
		for (k = 0; k < want; k++)
			buf[k] = (uint8_t)(k * 31 + (size_t)i);
		rc = xr_conn_send(c, XR_MSG_FILE_DATA, buf, want);
		if (rc)
			return rc;
		rc = xr_conn_wait_frame(c, &type, &p, &len);
		if (rc < 0)
			return rc;
		if (type != XR_MSG_FILE_DATA || len != want || (len && memcmp(p, buf, len)))
			return XR_ESTREAM;
	}
	return 0;
}

/* Opens an external transport with LOCAL_RSH running cmd; asserts success. */
static struct xr_conn *open_external(char *const cmd[], int io_timeout)
{
	struct xr_location loc;
	struct xr_rsh rsh;
	struct xr_conn *c = NULL;

	assert_int_equal(xr_location_parse("somehost:/x", &loc), 0);
	assert_int_equal(xr_rsh_parse(LOCAL_RSH, &rsh), 0);
	assert_false(rsh.builtin);
	assert_int_equal(xr_transport_remote(&rsh, &loc, cmd, 0, io_timeout, &c), 0);
	assert_non_null(c);
	xr_rsh_free(&rsh);
	xr_location_free(&loc);
	return c;
}

static void test_external_echo_and_status(void **state)
{
	char *cat[] = {"cat", NULL};
	char *status[] = {"sh", "-c", "cat; exit 9", NULL};
	struct xr_conn *c;

	(void)state;
	c = open_external(cat, 10);
	assert_int_equal(echo_frames(c, 40), 0);
	assert_int_equal(xr_conn_close(c), 0);

	c = open_external(status, 10);
	assert_int_equal(echo_frames(c, 3), 0);
	assert_int_equal(xr_conn_close(c), 9);
}

static void test_external_quoting(void **state)
{
	/* every word must arrive intact through the remote shell */
	char *cmd[] = {"sh", "-c",
		       "[ $# = 5 ] && [ \"$1\" = 'a b' ] && [ \"$2\" = \"c'd\" ] && [ -z \"$3\" ] "
		       "&& [ \"$4\" = '$HOME;*' ] && [ \"$5\" = 'x\"y\\z' ] && exit 42; exit 1",
		       "argv0", "a b", "c'd", "", "$HOME;*", "x\"y\\z", NULL};
	struct xr_conn *c;

	(void)state;
	c = open_external(cmd, 10);
	assert_int_equal(xr_conn_close(c), 42);
}

static void test_external_child_dies(void **state)
{
	char *cmd[] = {"sh", "-c", "exit 4", NULL};
	const uint8_t *p;
	struct xr_conn *c;
	uint8_t type;
	size_t len;

	(void)state;
	c = open_external(cmd, 10);
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), XR_ESOCKET);
	assert_int_equal(xr_conn_close(c), 4);
}

static void test_external_io_timeout(void **state)
{
	char *cmd[] = {"sleep", "3", NULL};
	const uint8_t *p;
	struct xr_conn *c;
	uint8_t type;
	size_t len;
	time_t t0 = time(NULL);

	(void)state;
	c = open_external(cmd, 1);
	assert_int_equal(xr_conn_send(c, XR_MSG_KEEPALIVE, NULL, 0), 0);
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), XR_ETIMEOUT);
	xr_conn_close(c);
	assert_true(time(NULL) - t0 < 10);
}

static void test_external_missing_program(void **state)
{
	char *cmd[] = {"cat", NULL};
	struct xr_location loc;
	struct xr_rsh rsh;
	struct xr_conn *c = NULL;

	(void)state;
	assert_int_equal(xr_location_parse("u@h:x", &loc), 0);
	assert_int_equal(xr_rsh_parse("/nonexistent/remote-shell -x", &rsh), 0);
	assert_int_equal(xr_transport_remote(&rsh, &loc, cmd, 0, 0, &c), XR_ESTART);
	assert_null(c);
	xr_rsh_free(&rsh);
	xr_location_free(&loc);
}

static void test_local_transport(void **state)
{
	char *argv[] = {"test_rsh", "--xr-echo", NULL};
	struct xr_conn *c = NULL;

	(void)state;
	assert_int_equal(xr_transport_local(argv, 10, &c), 0);
	assert_int_equal(echo_frames(c, 30), 0);
	assert_int_equal(xr_conn_close(c), 0);
}

/* The serve side of test_local_transport: copies stdin to stdout. */
static int echo_main(void)
{
	char buf[65536];
	ssize_t n, w, off;

	while ((n = read(0, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 1;
		for (off = 0; off < n; off += w) {
			w = write(1, buf + off, (size_t)(n - off));
			if (w < 0)
				return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_location_table),
		cmocka_unit_test(test_rsh_defaults),
		cmocka_unit_test(test_rsh_guide_line),
		cmocka_unit_test(test_rsh_builtin_options),
		cmocka_unit_test(test_rsh_errors),
		cmocka_unit_test(test_rsh_external_words),
		cmocka_unit_test(test_external_echo_and_status),
		cmocka_unit_test(test_external_quoting),
		cmocka_unit_test(test_external_child_dies),
		cmocka_unit_test(test_external_io_timeout),
		cmocka_unit_test(test_external_missing_program),
		cmocka_unit_test(test_local_transport),
	};

	if (argc == 2 && strcmp(argv[1], "--xr-echo") == 0)
		return echo_main();
	signal(SIGPIPE, SIG_IGN);
	xr_log_init(-1, "");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

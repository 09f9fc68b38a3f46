/* test_watch.c - the inotify watcher against the real kernel, in scratch trees. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/filter.h"
#include "xr/manifest.h"
#include "xr/watch.h"

/* ---- helpers ---------------------------------------------------------- */

struct fx {
	char dir[64]; /* the watched tree */
	char out[64]; /* a sibling outside it, same filesystem */
	int dfd;
	struct xr_watch *w;
	struct xr_filters *f;
};

/* The union of every path reported over several batches, sorted. */
struct seen {
	char **p;
	size_t n;
	unsigned batches;
	bool rescan;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_tree(const char *p)
{
	nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes content to rel below the tree (create or truncate), then closes it. */
static void put(struct fx *x, const char *rel, const char *content)
{
	int fd = openat(x->dfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(close(fd), 0);
}

static void mkd(struct fx *x, const char *rel)
{
	assert_int_equal(mkdirat(x->dfd, rel, 0755), 0);
}

static void ren(struct fx *x, const char *from, const char *to)
{
	assert_int_equal(renameat(x->dfd, from, x->dfd, to), 0);
}

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	strcpy(x->dir, "/tmp/xrwatch.XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	strcpy(x->out, "/tmp/xrwatch-out.XXXXXX");
	assert_non_null(mkdtemp(x->out));
	x->dfd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(x->dfd >= 0);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;

	xr_watch_close(x->w);
	xr_filters_free(x->f);
	close(x->dfd);
	rm_tree(x->dir);
	rm_tree(x->out);
	free(x);
	return 0;
}

/* Opens the watcher on the tree with the given timing. */
static void start(struct fx *x, unsigned quiet, unsigned max_delay, size_t max_paths)
{
	struct xr_watch_opts o = {x->f, ".xroad-replicate", quiet, max_delay, max_paths};

	assert_int_equal(xr_watch_open(&x->w, x->dir, &o), 0);
	assert_true(xr_watch_fd(x->w) >= 0);
	assert_int_equal(xr_watch_due_ms(x->w), -1);
}

/* Asserts the invariants of every batch: valid, sorted, unique. */
static void check_batch(char **p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		assert_true(strcmp(p[i], ".") == 0 || xr_path_valid(p[i]));
		if (i)
			assert_true(xr_path_cmp(p[i - 1], p[i]) < 0);
	}
}

/*
 * Runs the caller's loop (poll with the due time as timeout, process, take
 * when due) until one batch is taken or timeout_ms passes.  Returns true
 * with the batch, or false.
 */
static bool wait_batch(struct xr_watch *w, int timeout_ms, char ***p, size_t *n, bool *rescan)
{
	uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ULL;

	for (;;) {
		struct pollfd pfd = {xr_watch_fd(w), POLLIN, 0};
		int due = xr_watch_due_ms(w), left, t;
		uint64_t now;

		if (due == 0) {
			assert_int_equal(xr_watch_take(w, p, n, rescan), 0);
			check_batch(*p, *n);
			assert_int_equal(xr_watch_due_ms(w), -1);
			return true;
		}
		now = mono_ns();
		if (now >= deadline)
			return false;
		left = (int)((deadline - now) / 1000000ULL) + 1;
		t = due < 0 || due > left ? left : due;
		if (poll(&pfd, 1, t) > 0)
			assert_int_equal(xr_watch_process(w), 0);
	}
}

/* Collects batches until none arrives for settle_ms; merges them into s. */
static void collect(struct xr_watch *w, int settle_ms, struct seen *s)
{
	char **p;
	size_t n, i, j;
	bool rescan;

	memset(s, 0, sizeof(*s));
	while (wait_batch(w, settle_ms, &p, &n, &rescan)) {
		s->batches++;
		s->rescan |= rescan;
		for (i = 0; i < n; i++) {
			for (j = 0; j < s->n && strcmp(s->p[j], p[i]) != 0; j++)
				;
			if (j < s->n)
				continue;
			s->p = realloc(s->p, (s->n + 1) * sizeof(*s->p));
			assert_non_null(s->p);
			s->p[s->n++] = strdup(p[i]);
		}
		xr_watch_free_paths(p, n);
	}
}

static void seen_free(struct seen *s)
{
	xr_watch_free_paths(s->p, s->n);
	memset(s, 0, sizeof(*s));
}

static bool seen_has(const struct seen *s, const char *path)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->p[i], path) == 0)
			return true;
	return false;
}

/* Asserts the union is exactly the NULL-terminated list given. */
static void seen_exactly(const struct seen *s, const char *const *want)
{
	size_t k;

	for (k = 0; want[k]; k++) {
		if (!seen_has(s, want[k]))
			fail_msg("not reported: %s", want[k]);
	}
	if (s->n != k) {
		for (size_t i = 0; i < s->n; i++)
			fprintf(stderr, "  reported: %s\n", s->p[i]);
		fail_msg("%zu paths reported, %zu expected", s->n, k);
	}
}

/* ---- tests ------------------------------------------------------------ */

/* Create, in-place rewrite, chmod, delete and rename of files. */
static void test_file_ops(void **state)
{
	struct fx *x = *state;
	struct seen s;
	const char *want[] = {"new", "mod", "attr", "gone", "old", "renamed", "sub/deep", NULL};

	mkd(x, "sub");
	put(x, "mod", "1");
	put(x, "attr", "1");
	put(x, "gone", "1");
	put(x, "old", "1");
	put(x, "untouched", "1");
	start(x, 10, 100, 0);
	put(x, "new", "hello");
	put(x, "mod", "2");
	assert_int_equal(fchmodat(x->dfd, "attr", 0600, 0), 0);
	assert_int_equal(unlinkat(x->dfd, "gone", 0), 0);
	ren(x, "old", "renamed");
	put(x, "sub/deep", "x");
	collect(x->w, 300, &s);
	assert_false(s.rescan);
	seen_exactly(&s, want);
	seen_free(&s);
	/* nothing more pending */
	collect(x->w, 100, &s);
	assert_int_equal(s.batches, 0);
}

/* The signer's save: tmpconf<digits>.tmp renamed over keyconf.xml. */
static void test_keyconf_tmp_rename(void **state)
{
	struct fx *x = *state;
	struct seen s;
	const char *want[] = {"signer/keyconf.xml", NULL};

	x->f = xr_filters_new();
	assert_non_null(x->f);
	assert_int_equal(xr_filters_add(x->f, '-', "*.tmp", "--exclude"), 0);
	mkd(x, "signer");
	put(x, "signer/keyconf.xml", "<keyconf/>");
	start(x, 10, 100, 0);
	for (int i = 0; i < 3; i++) {
		put(x, "signer/tmpconf4711.tmp", "<keyconf>new</keyconf>");
		ren(x, "signer/tmpconf4711.tmp", "signer/keyconf.xml");
		collect(x->w, 200, &s);
		seen_exactly(&s, want);
		seen_free(&s);
	}
	/* a tmp file left lying around is never reported */
	put(x, "signer/tmpconf99.tmp", "x");
	assert_int_equal(unlinkat(x->dfd, "signer/tmpconf99.tmp", 0), 0);
	collect(x->w, 150, &s);
	assert_int_equal(s.batches, 0);
}

/* A .p12 written in place is reported once, after the close, not during the write. */
static void test_in_place_write(void **state)
{
	struct fx *x = *state;
	char **p;
	size_t n;
	bool rescan;
	int fd;

	mkd(x, "softtoken");
	put(x, "softtoken/AB.p12", "old");
	start(x, 10, 100, 0);
	fd = openat(x->dfd, "softtoken/AB.p12", O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(write(fd, "0123456789", 10), 10);
		usleep(30000); /* longer than the quiet period */
		assert_int_equal(xr_watch_process(x->w), 0);
		/* writes alone never make a batch */
		assert_int_equal(xr_watch_due_ms(x->w), -1);
	}
	assert_int_equal(close(fd), 0);
	assert_true(wait_batch(x->w, 1000, &p, &n, &rescan));
	assert_false(rescan);
	assert_int_equal(n, 1);
	assert_string_equal(p[0], "softtoken/AB.p12");
	xr_watch_free_paths(p, n);
	assert_false(wait_batch(x->w, 150, &p, &n, &rescan));
}

/* `mkdir -p a/b/c && echo > a/b/c/f` in a child, faster than the watcher reacts. */
static void test_new_nested_dirs_race(void **state)
{
	struct fx *x = *state;
	struct seen s;
	char a[32], b[40], c[48], f[56];

	start(x, 10, 100, 0);
	for (int i = 0; i < 25; i++) {
		pid_t pid;
		int st;

		snprintf(a, sizeof(a), "d%d", i);
		snprintf(b, sizeof(b), "%s/b", a);
		snprintf(c, sizeof(c), "%s/c", b);
		snprintf(f, sizeof(f), "%s/f", c);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int fd;

			if (mkdirat(x->dfd, a, 0755) || mkdirat(x->dfd, b, 0755) ||
			    mkdirat(x->dfd, c, 0755))
				_exit(1);
			fd = openat(x->dfd, f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || write(fd, "\n", 1) != 1 || close(fd))
				_exit(1);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		collect(x->w, 150, &s);
		{
			const char *want[] = {a, b, c, f, NULL};

			seen_exactly(&s, want);
		}
		seen_free(&s);
		/* and the new deepest directory is watched */
		put(x, f, "again");
		collect(x->w, 150, &s);
		{
			const char *want[] = {f, NULL};

			seen_exactly(&s, want);
		}
		seen_free(&s);
	}
}

/*
 * The PIN change: signer/softtoken-<random>/ filled, softtoken renamed to
 * .softtoken.bak, softtoken-<random> renamed to softtoken, backup deleted.
 * step: process between the steps (the new directory is watched before its
 * rename, so its wd must be re-pathed), or all at once from the queue.
 */
static void pin_change(struct fx *x, bool step)
{
	static const char *const p12[] = {".softtoken.p12", "AAAA.p12", "BBBB.p12"};
	struct seen s;
	char path[128];

	mkd(x, "signer");
	mkd(x, "signer/softtoken");
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "signer/softtoken/%s", p12[i]);
		put(x, path, "old");
	}
	start(x, 20, 1000, 0);
	mkd(x, "signer/softtoken-k3j9");
	if (step)
		assert_int_equal(xr_watch_process(x->w), 0);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "signer/softtoken-k3j9/%s", p12[i]);
		put(x, path, "new");
	}
	if (step)
		assert_int_equal(xr_watch_process(x->w), 0);
	ren(x, "signer/softtoken", "signer/.softtoken.bak");
	if (step)
		assert_int_equal(xr_watch_process(x->w), 0);
	ren(x, "signer/softtoken-k3j9", "signer/softtoken");
	if (step)
		assert_int_equal(xr_watch_process(x->w), 0);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "signer/.softtoken.bak/%s", p12[i]);
		assert_int_equal(unlinkat(x->dfd, path, 0), 0);
	}
	assert_int_equal(unlinkat(x->dfd, "signer/.softtoken.bak", AT_REMOVEDIR), 0);
	collect(x->w, 300, &s);
	assert_false(s.rescan);
	{
		const char *want_step[] = {
		    "signer/softtoken",
		    "signer/softtoken/.softtoken.p12",
		    "signer/softtoken/AAAA.p12",
		    "signer/softtoken/BBBB.p12",
		    "signer/softtoken-k3j9",
		    "signer/softtoken-k3j9/.softtoken.p12",
		    "signer/softtoken-k3j9/AAAA.p12",
		    "signer/softtoken-k3j9/BBBB.p12",
		    "signer/.softtoken.bak",
		    "signer/.softtoken.bak/.softtoken.p12",
		    "signer/.softtoken.bak/AAAA.p12",
		    "signer/.softtoken.bak/BBBB.p12",
		    NULL,
		};
		size_t k;

		if (step) {
			seen_exactly(&s, want_step);
		} else {
			/* the files inside softtoken-k3j9 were never seen under that name */
			for (k = 0; want_step[k]; k++)
				if (!strstr(want_step[k], "k3j9/") && !seen_has(&s, want_step[k]))
					fail_msg("not reported: %s", want_step[k]);
			assert_true(seen_has(&s, "signer/softtoken-k3j9"));
		}
	}
	seen_free(&s);

	/* the renamed directory's watch now reports under its new name */
	put(x, "signer/softtoken/AAAA.p12", "rewritten");
	put(x, "signer/softtoken/CCCC.p12", "added");
	collect(x->w, 200, &s);
	{
		const char *want[] = {"signer/softtoken/AAAA.p12", "signer/softtoken/CCCC.p12",
				      NULL};

		seen_exactly(&s, want);
	}
	seen_free(&s);
}

static void test_pin_change_stepwise(void **state)
{
	pin_change(*state, true);
}

static void test_pin_change_queued(void **state)
{
	pin_change(*state, false);
}

/* A directory renamed within the tree: its descendants' watches follow it. */
static void test_dir_rename_nested(void **state)
{
	struct fx *x = *state;
	struct seen s;
	const char *want1[] = {"a", "z", "z/b", "z/b/c", "z/b/c/f", NULL};
	const char *want2[] = {"z/b/c/f", "z/b/c/g", NULL};

	mkd(x, "a");
	mkd(x, "a/b");
	mkd(x, "a/b/c");
	put(x, "a/b/c/f", "1");
	start(x, 10, 100, 0);
	ren(x, "a", "z");
	collect(x->w, 150, &s);
	seen_exactly(&s, want1);
	seen_free(&s);
	put(x, "z/b/c/f", "2");
	put(x, "z/b/c/g", "2");
	collect(x->w, 150, &s);
	seen_exactly(&s, want2);
	seen_free(&s);
}

/* A directory moved out stops being watched; one moved in is watched and listed. */
static void test_move_out_and_in(void **state)
{
	struct fx *x = *state;
	struct seen s;
	char outside[128], inside[128];
	int ofd, fd;
	const char *want_out[] = {"d", NULL};
	const char *want_in[] = {"e", "e/sub", "e/sub/f", "e/top", NULL};

	mkd(x, "d");
	mkd(x, "d/sub");
	put(x, "d/sub/f", "1");
	start(x, 10, 100, 0);
	snprintf(outside, sizeof(outside), "%s/d", x->out);
	snprintf(inside, sizeof(inside), "%s/d", x->dir);
	assert_int_equal(rename(inside, outside), 0);
	collect(x->w, 150, &s);
	seen_exactly(&s, want_out);
	seen_free(&s);

	/* writes in the moved-out tree are not reported (under any name) */
	ofd = open(x->out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(ofd >= 0);
	for (int i = 0; i < 3; i++) {
		fd = openat(ofd, i ? "d/sub/f" : "d/new", O_WRONLY | O_CREAT | O_TRUNC, 0644);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "x", 1), 1);
		close(fd);
	}
	collect(x->w, 150, &s);
	assert_int_equal(s.batches, 0);

	/* moved back in under another name: subtree listed and watched */
	assert_int_equal(unlinkat(ofd, "d/new", 0), 0);
	fd = openat(ofd, "d/top", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	close(ofd);
	snprintf(inside, sizeof(inside), "%s/e", x->dir);
	assert_int_equal(rename(outside, inside), 0);
	collect(x->w, 150, &s);
	seen_exactly(&s, want_in);
	seen_free(&s);
	put(x, "e/sub/g", "1");
	collect(x->w, 150, &s);
	{
		const char *want[] = {"e/sub/g", NULL};

		seen_exactly(&s, want);
	}
	seen_free(&s);
}

/* Excluded directories (and the skip name) are never watched. */
static void test_excluded_dirs(void **state)
{
	struct fx *x = *state;
	struct seen s;
	const char *want_keep[] = {"keep", "work", NULL};
	const char *want_only[] = {"keep", NULL};

	x->f = xr_filters_new();
	assert_non_null(x->f);
	assert_int_equal(xr_filters_add(x->f, '-', "globalconf/", "--exclude"), 0);
	assert_int_equal(xr_filters_add(x->f, '-', "*.bak/", "--exclude"), 0);
	mkd(x, "globalconf");
	mkd(x, "globalconf/INST");
	mkd(x, ".xroad-replicate");
	mkd(x, "work");
	mkd(x, "work/in");
	start(x, 10, 100, 0);
	/* a file pattern-wise not excluded, but inside excluded directories */
	put(x, "globalconf/x", "1");
	put(x, "globalconf/INST/shared-params.xml", "1");
	put(x, ".xroad-replicate/journal", "1");
	mkd(x, "old.bak"); /* created excluded: not reported, not watched */
	put(x, "old.bak/y", "1");
	put(x, "keep", "1");
	ren(x, "work", "work.bak"); /* moved to an excluded name: watches dropped */
	collect(x->w, 150, &s);
	seen_exactly(&s, want_keep);
	seen_free(&s);
	put(x, "work.bak/in/z", "1");
	put(x, "work.bak/z", "1");
	put(x, "old.bak/y", "2");
	put(x, "globalconf/INST/shared-params.xml", "2");
	put(x, "keep", "2");
	collect(x->w, 150, &s);
	seen_exactly(&s, want_only);
	seen_free(&s);
}

/* 100 quick writes make one batch, due a quiet period after the last. */
static void test_coalescing(void **state)
{
	struct fx *x = *state;
	char **p;
	size_t n;
	bool rescan;
	uint64_t last;
	int due;

	start(x, 100, 5000, 0);
	for (int i = 0; i < 100; i++)
		put(x, "f", "data");
	last = mono_ns();
	assert_int_equal(xr_watch_process(x->w), 0);
	due = xr_watch_due_ms(x->w);
	assert_true(due > 0 && due <= 100);
	assert_true(wait_batch(x->w, 2000, &p, &n, &rescan));
	/* not before the quiet period (events were read after "last") */
	assert_true(mono_ns() - last >= 95 * 1000000ULL);
	assert_false(rescan);
	assert_int_equal(n, 1);
	assert_string_equal(p[0], "f");
	xr_watch_free_paths(p, n);
	assert_false(wait_batch(x->w, 250, &p, &n, &rescan));
}

/* A steady stream every 5 ms still ships a batch after max_delay_ms. */
static void test_max_delay_cap(void **state)
{
	struct fx *x = *state;
	char **p = NULL;
	size_t n = 0;
	bool rescan, taken = false;
	uint64_t t0 = 0, el = 0;

	start(x, 50, 300, 0);
	for (int i = 0; i < 400 && !taken; i++) {
		put(x, "stream", "tick");
		assert_int_equal(xr_watch_process(x->w), 0);
		if (!t0)
			t0 = mono_ns();
		if (xr_watch_due_ms(x->w) == 0) {
			assert_int_equal(xr_watch_take(x->w, &p, &n, &rescan), 0);
			el = mono_ns() - t0;
			taken = true;
		}
		usleep(5000);
	}
	assert_true(taken);
	print_message("max_delay 300 ms, quiet 50 ms, writes every 5 ms: batch after %.1f ms\n",
		      (double)el / 1e6);
	assert_true(el >= 290 * 1000000ULL && el < 1000 * 1000000ULL);
	assert_int_equal(n, 1);
	assert_string_equal(p[0], "stream");
	xr_watch_free_paths(p, n);
}

/* Past max_paths distinct paths the batch collapses to rescan; then normal again. */
static void test_max_paths_rescan(void **state)
{
	struct fx *x = *state;
	char **p, name[32];
	size_t n;
	bool rescan;

	start(x, 10, 100, 10);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		put(x, name, "1");
	}
	assert_true(wait_batch(x->w, 1000, &p, &n, &rescan));
	assert_false(rescan); /* exactly max_paths: still a list */
	assert_int_equal(n, 10);
	xr_watch_free_paths(p, n);
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "g%02d", i);
		put(x, name, "1");
	}
	assert_true(wait_batch(x->w, 1000, &p, &n, &rescan));
	assert_true(rescan);
	assert_int_equal(n, 0);
	xr_watch_free_paths(p, n);
	put(x, "after", "1");
	assert_true(wait_batch(x->w, 1000, &p, &n, &rescan));
	assert_false(rescan);
	assert_int_equal(n, 1);
	assert_string_equal(p[0], "after");
	xr_watch_free_paths(p, n);
}

/* Writes the sysctl file; returns 0 or -1. */
static int write_sysctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -1;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		rc = -1;
	close(fd);
	return rc;
}

/* A real IN_Q_OVERFLOW: rescan, and watching goes on (new directories included). */
static void test_queue_overflow(void **state)
{
	static const char sysctl[] = "/proc/sys/fs/inotify/max_queued_events";
	struct fx *x = *state;
	struct xr_watch_opts o = {NULL, NULL, 10, 100, 0};
	char saved[32] = "", name[32];
	char **p;
	size_t n;
	bool rescan;
	int fd, rc;
	ssize_t r;

	fd = open(sysctl, O_RDONLY | O_CLOEXEC);
	if (geteuid() != 0 || fd < 0 || access(sysctl, W_OK) != 0) {
		if (fd >= 0)
			close(fd);
		skip();
	}
	r = read(fd, saved, sizeof(saved) - 1);
	close(fd);
	assert_true(r > 0);
	saved[r] = '\0';
	mkd(x, "pre");
	/* the limit is taken when the inotify instance is created; restore at once */
	if (write_sysctl(sysctl, "64") != 0)
		skip();
	rc = xr_watch_open(&x->w, x->dir, &o);
	assert_int_equal(write_sysctl(sysctl, saved), 0);
	assert_int_equal(rc, 0);

	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "pre/f%03d", i);
		put(x, name, "1");
	}
	mkd(x, "late"); /* its IN_CREATE is lost in the overflow */
	assert_int_equal(xr_watch_process(x->w), 0);
	assert_true(wait_batch(x->w, 1000, &p, &n, &rescan));
	assert_true(rescan);
	xr_watch_free_paths(p, n);

	/* the re-sync after the overflow watches the directory whose event was lost */
	put(x, "late/x", "1");
	put(x, "pre/f000", "2");
	assert_true(wait_batch(x->w, 1000, &p, &n, &rescan));
	assert_false(rescan);
	assert_int_equal(n, 2);
	assert_string_equal(p[0], "late/x");
	assert_string_equal(p[1], "pre/f000");
	xr_watch_free_paths(p, n);
}

/* An idle watcher burns no CPU: nothing polls, the caller sleeps in poll(). */
static void test_idle_cpu(void **state)
{
	struct fx *x = *state;
	struct rusage a, b;
	struct pollfd pfd;
	double used;

	mkd(x, "d");
	start(x, 10, 100, 0);
	pfd.fd = xr_watch_fd(x->w);
	pfd.events = POLLIN;
	assert_int_equal(getrusage(RUSAGE_SELF, &a), 0);
	/* the caller's loop: timeout = due_ms = -1 (idle), bounded to 5 s here */
	assert_int_equal(xr_watch_due_ms(x->w), -1);
	assert_int_equal(poll(&pfd, 1, 5000), 0);
	assert_int_equal(getrusage(RUSAGE_SELF, &b), 0);
	used = (double)(b.ru_utime.tv_sec - a.ru_utime.tv_sec + b.ru_stime.tv_sec -
			a.ru_stime.tv_sec) *
		   1e3 +
	       (double)(b.ru_utime.tv_usec - a.ru_utime.tv_usec + b.ru_stime.tv_usec -
			a.ru_stime.tv_usec) /
		   1e3;
	print_message("idle watcher over 5 s: %.3f ms CPU\n", used);
	assert_true(used < 20.0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Latency from a write+close returning to xr_watch_take returning it, quiet_ms = 10. */
static void test_latency(void **state)
{
	struct fx *x = *state;
	uint64_t lat[200];
	char **p;
	size_t n;
	bool rescan;

	put(x, "lat", "0");
	start(x, 10, 100, 0);
	for (int i = 0; i < 200; i++) {
		uint64_t t0;

		put(x, "lat", "payload");
		t0 = mono_ns(); /* from the close returning */
		assert_true(wait_batch(x->w, 1000, &p, &n, &rescan));
		lat[i] = mono_ns() - t0;
		assert_false(rescan);
		assert_int_equal(n, 1);
		assert_string_equal(p[0], "lat");
		xr_watch_free_paths(p, n);
	}
	qsort(lat, 200, sizeof(lat[0]), cmp_u64);
	print_message("write+close -> take, quiet 10 ms, 200 trials: p50 %.2f ms, p99 %.2f ms, "
		      "max %.2f ms\n",
		      (double)lat[99] / 1e6, (double)lat[197] / 1e6, (double)lat[199] / 1e6);
	assert_true(lat[199] < 1000000000ULL);
	assert_true(lat[0] >= 9000000ULL); /* never before the quiet period */
}

/* Bad roots are refused; an empty take is empty; attribute change of the root is ".". */
static void test_open_errors_and_root(void **state)
{
	struct fx *x = *state;
	struct xr_watch *w = NULL;
	char path[128];
	char **p;
	size_t n;
	bool rescan = true;

	snprintf(path, sizeof(path), "%s/missing", x->dir);
	assert_int_equal(xr_watch_open(&w, path, NULL), XR_EFILEIO);
	assert_null(w);
	put(x, "file", "1");
	snprintf(path, sizeof(path), "%s/file", x->dir);
	assert_int_equal(xr_watch_open(&w, path, NULL), XR_EFILEIO);
	mkd(x, "realdir");
	assert_int_equal(symlinkat("realdir", x->dfd, "link"), 0);
	snprintf(path, sizeof(path), "%s/link", x->dir);
	assert_int_equal(xr_watch_open(&w, path, NULL), XR_EFILEIO);

	assert_int_equal(xr_watch_open(&w, x->dir, NULL), 0);
	assert_int_equal(xr_watch_take(w, &p, &n, &rescan), 0);
	assert_null(p);
	assert_int_equal(n, 0);
	assert_false(rescan);
	assert_int_equal(fchmod(x->dfd, 0750), 0);
	/* a symlink to a directory is reported but never followed */
	assert_int_equal(symlinkat("realdir", x->dfd, "link2"), 0);
	assert_true(wait_batch(w, 1000, &p, &n, &rescan));
	assert_int_equal(n, 2);
	assert_string_equal(p[0], ".");
	assert_string_equal(p[1], "link2");
	xr_watch_free_paths(p, n);
	xr_watch_close(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_file_ops, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_keyconf_tmp_rename, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_in_place_write, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_new_nested_dirs_race, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_pin_change_stepwise, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_pin_change_queued, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dir_rename_nested, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_move_out_and_in, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_excluded_dirs, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_coalescing, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_max_delay_cap, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_max_paths_rescan, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_queue_overflow, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_idle_cpu, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_latency, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors_and_root, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

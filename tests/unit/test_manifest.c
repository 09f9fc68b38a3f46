/* test_manifest.c - path order, path validity, manifest ops and the tree walk. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "xr/err.h"
#include "xr/filter.h"
#include "xr/hash.h"
#include "xr/log.h"
#include "xr/manifest.h"

/* ---- helpers ---------------------------------------------------------- */

/* Creates a fresh scratch directory; returns its malloc'd path. */
static char *scratch(void)
{
	char *p = strdup("/tmp/xr-manifest-XXXXXX");

	assert_non_null(p);
	assert_non_null(mkdtemp(p));
	return p;
}

/* Removes a tree (test cleanup). */
static void rmtree(const char *p)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", p, p);
	assert_int_equal(system(cmd), 0);
}

/* Writes a file relative to dirfd with content, mode and mtime (sec). */
static void mkfile(int dfd, const char *path, const char *content, mode_t mode, time_t mt)
{
	struct timespec ts[2] = {{mt, 0}, {mt, 0}};
	int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	assert_int_equal(utimensat(dfd, path, ts, 0), 0);
}

/* Walks root (an open dir fd) into m with the given options. */
static int walk(int dfd, const char *prefix, const struct xr_filters *f,
		const struct xr_walk_opts *o, struct xr_manifest *m, unsigned *van, unsigned *err)
{
	xr_manifest_init(m);
	return xr_walk(dfd, prefix, f, o, m, van, err);
}

/* Returns the paths of m joined by '|' (static buffer, for readable asserts). */
static const char *paths(const struct xr_manifest *m)
{
	static char buf[8192];
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < m->n; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "|" : "", m->e[i].path);
	return buf;
}

/* ---- xr_path_cmp ------------------------------------------------------ */

/* Reference order: "." first, then bytes with '/' mapped below everything. */
static int ref_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const void *)a, *y = (const void *)b;

	if (strcmp(a, b) == 0)
		return 0;
	if (strcmp(a, ".") == 0)
		return -1;
	if (strcmp(b, ".") == 0)
		return 1;
	for (;; x++, y++) {
		unsigned cx = *x == '/' ? 1u : *x == 0 ? 0u : *x + 1u;
		unsigned cy = *y == '/' ? 1u : *y == 0 ? 0u : *y + 1u;

		if (cx != cy)
			return cx < cy ? -1 : 1;
	}
}

static int sgn(int v)
{
	return (v > 0) - (v < 0);
}

static void test_path_cmp_examples(void **state)
{
	static const char *order[] = {
	    ".",   "-x", "a",  "a/b", "a/b/c",	    "a/z", "a b",      "a-b",
	    "a.b", "a0", "ab", "b",   "b/\xc3\xa4", "z",   "\xc3\xa4", "\xff",
	};
	size_t i, j, n = sizeof(order) / sizeof(order[0]);

	(void)state;
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			int want = i < j ? -1 : i > j ? 1 : 0;

			if (sgn(xr_path_cmp(order[i], order[j])) != want)
				fail_msg("cmp(%s, %s) != %d", order[i], order[j], want);
		}
	assert_true(xr_path_cmp("a", "a/b") < 0);
	assert_true(xr_path_cmp("a/b", "a.b") < 0);
	assert_true(xr_path_cmp("a", "a.b") < 0);
	assert_true(xr_path_cmp(".", "-") < 0);
	assert_true(xr_path_cmp("-", ".") > 0);
	assert_int_equal(xr_path_cmp(".", "."), 0);
	assert_int_equal(xr_path_cmp("x/y", "x/y"), 0);
}

static void test_path_cmp_random(void **state)
{
	static const char alpha[] = "a/.-_ \xc3\xff";
	char s[200][8];
	int i, j, k;

	(void)state;
	srand(12345);
	for (i = 0; i < 200; i++) {
		int len = 1 + rand() % 6;

		for (k = 0; k < len; k++)
			s[i][k] = alpha[rand() % (int)(sizeof(alpha) - 1)];
		s[i][len] = '\0';
	}
	for (i = 0; i < 200; i++)
		for (j = 0; j < 200; j++) {
			int c = sgn(xr_path_cmp(s[i], s[j]));

			if (c != ref_cmp(s[i], s[j]))
				fail_msg("cmp(%s, %s) = %d", s[i], s[j], c);
			if (c != -sgn(xr_path_cmp(s[j], s[i])))
				fail_msg("not antisymmetric: %s %s", s[i], s[j]);
		}
}

/* ---- xr_path_valid ---------------------------------------------------- */

static void test_path_valid(void **state)
{
	static const char *good[] = {
	    ".",	 "a",	  "a/b",     "a b/c d", "-x",
	    "..a",	 "a..",	  ".hidden", "a/.b",	"\xc3\xa4/\xe2\x82\xac",
	    "new\nline", "x/...",
	};
	static const char *bad[] = {
	    "", "/", "/a", "a/", "a//b", "./a", "a/.", "..", "../a", "a/../b", "a/..", "./", "//",
	};
	char big[XR_PATH_MAX + 10], comp[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!xr_path_valid(good[i]))
			fail_msg("valid path refused: %s", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (xr_path_valid(bad[i]))
			fail_msg("invalid path accepted: %s", bad[i]);
	assert_false(xr_path_valid(NULL));
	memset(comp, 'n', XR_NAME_MAX);
	comp[XR_NAME_MAX] = '\0';
	assert_true(xr_path_valid(comp));
	comp[XR_NAME_MAX] = 'n';
	comp[XR_NAME_MAX + 1] = '\0';
	assert_false(xr_path_valid(comp));
	/* XR_PATH_MAX - 1 bytes is the longest accepted */
	for (i = 0; i < XR_PATH_MAX - 1; i++)
		big[i] = (i % 100 == 99) ? '/' : 'p';
	big[XR_PATH_MAX - 1] = '\0';
	assert_true(xr_path_valid(big));
	big[XR_PATH_MAX - 1] = 'p';
	big[XR_PATH_MAX] = '\0';
	assert_false(xr_path_valid(big));
}

/* ---- manifest operations ---------------------------------------------- */

static void test_manifest_ops(void **state)
{
	static const char *names[] = {"b", "a.b", "a/b", ".", "a", "a/b/c", "-", "a b"};
	static const char *sorted = ".|-|a|a/b|a/b/c|a b|a.b|b";
	struct xr_manifest m;
	struct xr_entry e, *f;
	char buf[16];
	size_t i;

	(void)state;
	xr_manifest_init(&m);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		memset(&e, 0, sizeof(e));
		snprintf(buf, sizeof(buf), "%s", names[i]);
		e.path = buf;
		e.type = XR_FT_REG;
		e.size = i;
		assert_int_equal(xr_manifest_add(&m, &e), 0);
		buf[0] = '#'; /* the manifest holds its own copy */
	}
	memset(&e, 0, sizeof(e));
	e.path = "l";
	e.link = "target";
	e.type = XR_FT_LINK;
	assert_int_equal(xr_manifest_add(&m, &e), 0);
	assert_ptr_not_equal(m.e[m.n - 1].link, e.link);
	assert_int_equal(xr_manifest_sort(&m), 0);
	assert_string_equal(paths(&m), ".|-|a|a/b|a/b/c|a b|a.b|b|l");
	(void)sorted;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		f = xr_manifest_find(&m, names[i]);
		assert_non_null(f);
		assert_string_equal(f->path, names[i]);
		assert_int_equal(f->size, i);
	}
	assert_string_equal(xr_manifest_find(&m, "l")->link, "target");
	assert_null(xr_manifest_find(&m, "a/c"));
	assert_null(xr_manifest_find(&m, "0"));
	assert_null(xr_manifest_find(&m, "zz"));
	/* a duplicate path is a protocol error */
	memset(&e, 0, sizeof(e));
	e.path = "a/b";
	assert_int_equal(xr_manifest_add(&m, &e), 0);
	assert_int_equal(xr_manifest_sort(&m), XR_EPROTO);
	xr_manifest_free(&m);
	assert_int_equal(m.n, 0);
	assert_null(xr_manifest_find(&m, "a"));
}

static void test_note_ids(void **state)
{
	struct xr_manifest m;
	struct passwd *pw = getpwnam("nobody");
	uint32_t unknown = 3999999;

	(void)state;
	xr_manifest_init(&m);
	assert_int_equal(xr_manifest_note_ids(&m, 0, 0), 0);
	assert_int_equal(m.nusers, 0); /* root is never mapped by name */
	assert_int_equal(m.ngroups, 0);
	assert_int_equal(xr_manifest_note_ids(&m, unknown, unknown), 0);
	assert_int_equal(m.nusers, 0); /* no name: nothing recorded */
	if (pw) {
		assert_int_equal(xr_manifest_note_ids(&m, pw->pw_uid, unknown), 0);
		assert_int_equal(xr_manifest_note_ids(&m, pw->pw_uid, unknown), 0);
		assert_int_equal(m.nusers, 1);
		assert_int_equal(m.users[0].id, pw->pw_uid);
		assert_string_equal(m.users[0].name, "nobody");
	}
	xr_manifest_free(&m);
}

/* ---- the walk --------------------------------------------------------- */

/* Builds the standard scratch tree below dfd. */
static void build_tree(int dfd)
{
	assert_int_equal(mkdirat(dfd, "dir", 0750), 0);
	assert_int_equal(mkdirat(dfd, "dir/sub", 0700), 0);
	assert_int_equal(mkdirat(dfd, "empty", 0755), 0);
	mkfile(dfd, "a.txt", "hello\n", 0640, 1600000000);
	mkfile(dfd, "dir/f", "0123456789", 0600, 1600000001);
	mkfile(dfd, "dir/sub/deep", "", 04755, 1600000002);
	mkfile(dfd, "with space", "s", 0644, 1600000003);
	mkfile(dfd, "new\nline", "n", 0644, 1600000004);
	mkfile(dfd, "\xc3\xa4\xc3\xb6", "u", 0644, 1600000005);
	mkfile(dfd, "-dash", "d", 0644, 1600000006);
	mkfile(dfd, "dir.x", "x", 0644, 1600000007);
	assert_int_equal(symlinkat("dir/f", dfd, "link"), 0);
	assert_int_equal(symlinkat("/nonexistent/target", dfd, "dir/dangling"), 0);
	assert_int_equal(mkfifoat(dfd, "fifo", 0600), 0);
	mkfile(dfd, ".xroad-replicate", "state", 0600, 1600000008);
	mkfile(dfd, "dir/.xroad-replicate", "kept", 0600, 1600000009);
}

static const struct xr_walk_opts all_opts = {
    .recursive = true,
    .links = true,
    .devices = true,
    .checksum = false,
    .map_names = true,
    .side = XR_WALK_SENDER,
    .skip_name = ".xroad-replicate",
};

static void test_walk_tree(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_manifest m;
	struct xr_entry *e;
	struct stat st;
	unsigned van = 99, err = 99;

	(void)state;
	build_tree(dfd);
	assert_int_equal(walk(dfd, NULL, NULL, &all_opts, &m, &van, &err), 0);
	assert_int_equal(van, 0);
	assert_int_equal(err, 0);
	assert_string_equal(paths(&m), ".|-dash|a.txt|dir|dir/.xroad-replicate|dir/dangling|"
				       "dir/f|dir/sub|dir/sub/deep|dir.x|empty|fifo|link|new\nline|"
				       "with space|\xc3\xa4\xc3\xb6");
	e = xr_manifest_find(&m, ".");
	assert_int_equal(e->type, XR_FT_DIR);
	assert_int_equal(fstat(dfd, &st), 0);
	assert_int_equal(e->ino, st.st_ino);
	e = xr_manifest_find(&m, "dir/f");
	assert_int_equal(e->type, XR_FT_REG);
	assert_int_equal(e->size, 10);
	assert_int_equal(e->mode, 0600);
	assert_int_equal(e->mtime_sec, 1600000001);
	assert_int_equal(e->mtime_nsec, 0);
	assert_false(e->has_hash);
	assert_null(e->link);
	assert_int_equal(fstatat(dfd, "dir/f", &st, 0), 0);
	assert_int_equal(e->ino, st.st_ino);
	assert_int_equal(e->dev, st.st_dev);
	assert_int_equal(e->uid, st.st_uid);
	assert_int_equal(e->gid, st.st_gid);
	e = xr_manifest_find(&m, "dir/sub/deep");
	assert_int_equal(e->mode, 04755);
	assert_int_equal(e->size, 0);
	e = xr_manifest_find(&m, "dir/sub");
	assert_int_equal(e->type, XR_FT_DIR);
	assert_int_equal(e->mode, 0700);
	assert_int_equal(e->size, 0);
	e = xr_manifest_find(&m, "link");
	assert_int_equal(e->type, XR_FT_LINK);
	assert_string_equal(e->link, "dir/f");
	assert_string_equal(xr_manifest_find(&m, "dir/dangling")->link, "/nonexistent/target");
	assert_int_equal(xr_manifest_find(&m, "fifo")->type, XR_FT_FIFO);
	assert_int_equal(xr_manifest_find(&m, "new\nline")->size, 1);
	xr_manifest_free(&m);
	close(dfd);
	rmtree(root);
	free(root);
}

static void test_walk_skips_links_devices(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_walk_opts o = all_opts;
	struct xr_manifest m;
	unsigned van, err;

	(void)state;
	build_tree(dfd);
	o.links = false;
	o.devices = false;
	o.skip_name = NULL;
	assert_int_equal(walk(dfd, NULL, NULL, &o, &m, &van, &err), 0);
	assert_int_equal(err, 0);
	assert_null(xr_manifest_find(&m, "link"));
	assert_null(xr_manifest_find(&m, "dir/dangling"));
	assert_null(xr_manifest_find(&m, "fifo"));
	assert_non_null(xr_manifest_find(&m, ".xroad-replicate"));
	assert_non_null(xr_manifest_find(&m, "dir/f"));
	xr_manifest_free(&m);
	/* -D without -l keeps the fifo only */
	o.devices = true;
	assert_int_equal(walk(dfd, NULL, NULL, &o, &m, &van, &err), 0);
	assert_non_null(xr_manifest_find(&m, "fifo"));
	assert_null(xr_manifest_find(&m, "link"));
	xr_manifest_free(&m);
	/* without -r only the root itself */
	o.recursive = false;
	assert_int_equal(walk(dfd, NULL, NULL, &o, &m, &van, &err), 0);
	assert_string_equal(paths(&m), ".");
	xr_manifest_free(&m);
	close(dfd);
	rmtree(root);
	free(root);
}

static void test_walk_devices(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_manifest m;
	struct xr_entry *e;
	unsigned van, err;

	(void)state;
	if (mknodat(dfd, "null", S_IFCHR | 0666, makedev(1, 3)) != 0) {
		close(dfd);
		rmtree(root);
		free(root);
		skip(); /* not root / no CAP_MKNOD */
	}
	assert_int_equal(mknodat(dfd, "blk", S_IFBLK | 0600, makedev(7, 200)), 0);
	assert_int_equal(fchmodat(dfd, "null", 0666, 0), 0); /* past the umask */
	assert_int_equal(walk(dfd, NULL, NULL, &all_opts, &m, &van, &err), 0);
	e = xr_manifest_find(&m, "null");
	assert_int_equal(e->type, XR_FT_CHR);
	assert_int_equal(e->rdev, makedev(1, 3));
	assert_int_equal(e->mode, 0666);
	e = xr_manifest_find(&m, "blk");
	assert_int_equal(e->type, XR_FT_BLK);
	assert_int_equal(e->rdev, makedev(7, 200));
	xr_manifest_free(&m);
	close(dfd);
	rmtree(root);
	free(root);
}

/* Reference XXH3-128 (canonical) of a string, independent of hash.c. */
static void ref_hash(const char *s, struct xr_hash *h)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(s, strlen(s)));
	memcpy(h->b, c.digest, XR_HASH_LEN);
}

static void test_walk_checksum(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_walk_opts o = all_opts;
	struct xr_manifest m;
	struct xr_hash h;
	unsigned van, err;
	size_t i;

	(void)state;
	build_tree(dfd);
	o.checksum = true;
	assert_int_equal(walk(dfd, NULL, NULL, &o, &m, &van, &err), 0);
	assert_int_equal(err, 0);
	for (i = 0; i < m.n; i++)
		assert_int_equal(m.e[i].has_hash, m.e[i].type == XR_FT_REG);
	ref_hash("0123456789", &h);
	assert_memory_equal(xr_manifest_find(&m, "dir/f")->hash.b, h.b, XR_HASH_LEN);
	ref_hash("", &h);
	assert_memory_equal(xr_manifest_find(&m, "dir/sub/deep")->hash.b, h.b, XR_HASH_LEN);
	assert_int_equal(xr_manifest_find(&m, "a.txt")->size, 6);
	assert_int_equal(xr_manifest_find(&m, "a.txt")->mtime_sec, 1600000000);
	xr_manifest_free(&m);
	close(dfd);
	rmtree(root);
	free(root);
}

static void test_walk_prefix(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_filters *f = xr_filters_new();
	struct xr_manifest m;
	unsigned van, err;

	(void)state;
	build_tree(dfd);
	assert_int_equal(walk(dfd, "xroad", NULL, &all_opts, &m, &van, &err), 0);
	assert_string_equal(m.e[0].path, "xroad");
	assert_int_equal(m.e[0].type, XR_FT_DIR);
	assert_non_null(xr_manifest_find(&m, "xroad/dir/sub/deep"));
	assert_non_null(xr_manifest_find(&m, "xroad/dir/.xroad-replicate"));
	assert_null(xr_manifest_find(&m, "xroad/.xroad-replicate"));
	assert_null(xr_manifest_find(&m, "."));
	assert_null(xr_manifest_find(&m, "dir"));
	assert_int_equal(m.n, 16);
	xr_manifest_free(&m);
	/* anchored rules see the prefix, as rsync's "/src/x" for "rsync src dst" */
	assert_int_equal(xr_filters_add(f, '-', "/xroad/dir/sub", "test"), 0);
	assert_int_equal(xr_filters_add(f, '-', "/dir.x", "test"), 0);
	assert_int_equal(walk(dfd, "xroad", f, &all_opts, &m, &van, &err), 0);
	assert_null(xr_manifest_find(&m, "xroad/dir/sub"));
	assert_null(xr_manifest_find(&m, "xroad/dir/sub/deep"));
	assert_non_null(xr_manifest_find(&m, "xroad/dir.x"));
	assert_int_equal(m.n, 14);
	xr_manifest_free(&m);
	/* excluding the named root leaves nothing */
	assert_int_equal(xr_filters_add(f, '-', "xroad", "test"), 0);
	assert_int_equal(walk(dfd, "xroad", f, &all_opts, &m, &van, &err), 0);
	assert_int_equal(m.n, 0);
	xr_manifest_free(&m);
	assert_int_equal(walk(dfd, "../x", NULL, &all_opts, &m, &van, &err), XR_ESYNTAX);
	xr_manifest_free(&m);
	xr_filters_free(f);
	close(dfd);
	rmtree(root);
	free(root);
}

static void test_walk_filters(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_filters *f = xr_filters_new();
	struct xr_manifest m;
	unsigned van, err;

	(void)state;
	build_tree(dfd);
	assert_non_null(f);
	assert_int_equal(xr_filters_add(f, '-', "sub/", "test"), 0);
	assert_int_equal(xr_filters_add(f, '-', "*.txt", "test"), 0);
	assert_int_equal(xr_filters_add(f, '-', "/fifo", "test"), 0);
	assert_int_equal(walk(dfd, NULL, f, &all_opts, &m, &van, &err), 0);
	assert_int_equal(err, 0);
	assert_string_equal(paths(&m), ".|-dash|dir|dir/.xroad-replicate|dir/dangling|dir/f|"
				       "dir.x|empty|link|new\nline|with space|\xc3\xa4\xc3\xb6");
	xr_manifest_free(&m);
	xr_filters_free(f);
	close(dfd);
	rmtree(root);
	free(root);
}

/* Receiver side: excluded entries are listed (protection) but not entered. */
static void test_walk_receiver_side(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_filters *f = xr_filters_new();
	struct xr_walk_opts o = all_opts;
	struct xr_manifest m;
	unsigned van, err;

	(void)state;
	build_tree(dfd);
	o.side = XR_WALK_RECEIVER;
	o.checksum = true;
	assert_int_equal(xr_filters_add(f, '-', "sub/", "test"), 0);
	assert_int_equal(xr_filters_add(f, '-', "*.txt", "test"), 0);
	assert_int_equal(walk(dfd, NULL, f, &o, &m, &van, &err), 0);
	assert_int_equal(err, 0);
	assert_non_null(xr_manifest_find(&m, "dir/sub"));
	assert_null(xr_manifest_find(&m, "dir/sub/deep"));
	assert_non_null(xr_manifest_find(&m, "a.txt"));
	assert_false(xr_manifest_find(&m, "a.txt")->has_hash);
	assert_true(xr_manifest_find(&m, "dir/f")->has_hash);
	xr_manifest_free(&m);
	assert_int_equal(xr_filters_add(f, '-', "xroad", "test"), 0);
	assert_int_equal(walk(dfd, "xroad", f, &o, &m, &van, &err), 0);
	assert_string_equal(paths(&m), "xroad");
	xr_manifest_free(&m);
	xr_filters_free(f);
	close(dfd);
	rmtree(root);
	free(root);
}

/*
 * As an unprivileged user (root reads everything): an unreadable directory
 * is reported and counted, the walk goes on; inside an excluded directory it
 * is never opened.  Runs in a child that drops to nobody.
 */
static void test_walk_unreadable(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	int pfd[2];
	pid_t pid;
	int status;
	unsigned res[6] = {0};

	(void)state;
	if (geteuid() != 0) {
		close(dfd);
		rmtree(root);
		free(root);
		skip();
	}
	assert_int_equal(chmod(root, 0755), 0);
	assert_int_equal(mkdirat(dfd, "locked", 0000), 0);
	mkfile(dfd, "z-after", "z", 0644, 1600000000);
	assert_int_equal(mkdirat(dfd, "ex", 0755), 0);
	assert_int_equal(mkdirat(dfd, "ex/locked", 0000), 0);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct xr_filters *f = xr_filters_new();
		struct xr_walk_opts o = all_opts;
		struct xr_manifest m;
		unsigned van = 0, err = 0;

		o.map_names = false;
		if (setgid(65534) || setuid(65534))
			_exit(2);
		res[0] = (unsigned)walk(dfd, NULL, f, &o, &m, &van, &err);
		res[1] = err;
		res[2] = xr_manifest_find(&m, "locked") != NULL;
		res[3] = xr_manifest_find(&m, "z-after") != NULL;
		xr_manifest_free(&m);
		xr_filters_add(f, '-', "/ex", "test");
		xr_filters_add(f, '-', "/locked", "test");
		res[4] = (unsigned)walk(dfd, NULL, f, &o, &m, &van, &err);
		res[5] = err + (xr_manifest_find(&m, "ex") ? 100 : 0) + (unsigned)m.n * 1000;
		xr_manifest_free(&m);
		xr_filters_free(f);
		if (write(pfd[1], res, sizeof(res)) != (ssize_t)sizeof(res))
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], res, sizeof(res)), (ssize_t)sizeof(res));
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], 2); /* "locked" and "ex/locked" */
	assert_int_equal(res[2], 1); /* the directory itself is listed */
	assert_int_equal(res[3], 1); /* the walk went on */
	assert_int_equal(res[4], 0);
	assert_int_equal(res[5], 2000); /* ".", "z-after"; no error, "ex" not listed */
	close(dfd);
	rmtree(root);
	free(root);
}

/* Child: keeps deleting and recreating files in dir until killed. */
static void churn(const char *dir)
{
	char p[600];
	int i;

	for (;;)
		for (i = 0; i < 200; i++) {
			int fd;

			snprintf(p, sizeof(p), "%s/f%03d", dir, i);
			unlink(p);
			fd = open(p, O_WRONLY | O_CREAT, 0644);
			if (fd >= 0)
				close(fd);
		}
}

static void test_walk_vanished(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_walk_opts o = all_opts;
	struct timespec t0, t1;
	unsigned total = 0, errs = 0;
	pid_t pid;
	int i;

	(void)state;
	o.checksum = true;
	for (i = 0; i < 200; i++) {
		char n[16];

		snprintf(n, sizeof(n), "f%03d", i);
		mkfile(dfd, n, "", 0644, 1600000000);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		churn(root);
		_exit(0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		struct xr_manifest m;
		unsigned van = 0, err = 0;

		assert_int_equal(walk(dfd, NULL, NULL, &o, &m, &van, &err), 0);
		total += van;
		errs += err;
		xr_manifest_free(&m);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (total == 0 && t1.tv_sec - t0.tv_sec < 10);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_true(total > 0);
	assert_int_equal(errs, 0);
	close(dfd);
	rmtree(root);
	free(root);
}

static void test_entry_stat(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_entry e;

	(void)state;
	mkfile(dfd, "f", "abc", 0604, 1500000000);
	assert_int_equal(symlinkat("f", dfd, "l"), 0);
	assert_int_equal(xr_entry_stat(dfd, "f", "top/f", &e), 0);
	assert_string_equal(e.path, "top/f");
	assert_int_equal(e.type, XR_FT_REG);
	assert_int_equal(e.size, 3);
	assert_int_equal(e.mode, 0604);
	assert_int_equal(e.mtime_sec, 1500000000);
	xr_entry_free(&e);
	assert_int_equal(xr_entry_stat(dfd, "l", "l", &e), 0);
	assert_int_equal(e.type, XR_FT_LINK);
	assert_string_equal(e.link, "f");
	assert_int_equal(e.size, 0);
	xr_entry_free(&e);
	assert_int_equal(xr_entry_stat(dfd, "missing", "missing", &e), XR_EVANISHED);
	close(dfd);
	rmtree(root);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_cmp_examples),
	    cmocka_unit_test(test_path_cmp_random),
	    cmocka_unit_test(test_path_valid),
	    cmocka_unit_test(test_manifest_ops),
	    cmocka_unit_test(test_note_ids),
	    cmocka_unit_test(test_walk_tree),
	    cmocka_unit_test(test_walk_skips_links_devices),
	    cmocka_unit_test(test_walk_devices),
	    cmocka_unit_test(test_walk_checksum),
	    cmocka_unit_test(test_walk_prefix),
	    cmocka_unit_test(test_walk_filters),
	    cmocka_unit_test(test_walk_receiver_side),
	    cmocka_unit_test(test_walk_unreadable),
	    cmocka_unit_test(test_walk_vanished),
	    cmocka_unit_test(test_entry_stat),
	};

	xr_log_init(0, "");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

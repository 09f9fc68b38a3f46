/*
 * test_manifest.c - path order, path validity, manifest ops, the tree walk
 * and incremental change sets (scope, scoped walk, splice).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
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
	assert_int_equal(e->id.ino, st.st_ino);
	assert_int_equal(e->id.dev, st.st_dev);
	e = xr_manifest_find(&m, "dir");
	assert_int_equal(fstatat(dfd, "dir", &st, 0), 0);
	assert_int_equal(e->id.ino, st.st_ino);
	e = xr_manifest_find(&m, "dir/f");
	assert_int_equal(e->type, XR_FT_REG);
	assert_int_equal(e->size, 10);
	assert_int_equal(e->mode, 0600);
	assert_int_equal(e->mtime_sec, 1600000001);
	assert_int_equal(e->mtime_nsec, 0);
	assert_false(e->has_hash);
	assert_null(e->link);
	assert_int_equal(fstatat(dfd, "dir/f", &st, 0), 0);
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

/* ---- incremental change sets: scope, scoped walk, splice -------------- */

/* Adds an item to sc, asserting success. */
static void sc_add(struct xr_scope *sc, const char *p, bool subtree)
{
	assert_int_equal(xr_scope_add(sc, p, subtree), 0);
}

/* Returns sc's items joined by '|', a subtree item as "path/+" (static buffer). */
static const char *scope_str(const struct xr_scope *sc)
{
	static char buf[4096];
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < sc->n && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s%s", i ? "|" : "",
				      sc->v[i].path, sc->v[i].subtree ? "/+" : "");
	return buf;
}

/* Runs xr_walk_scope() into a fresh m. */
static int walk_scope(int dfd, const char *prefix, const struct xr_scope *sc,
		      const struct xr_filters *f, const struct xr_walk_opts *o,
		      struct xr_manifest *m, unsigned *van, unsigned *err)
{
	xr_manifest_init(m);
	return xr_walk_scope(dfd, prefix, sc, f, o, m, van, err);
}

/* True if p lies strictly below dir ("." holds everything else). */
static bool is_below(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, ".") == 0)
		return strcmp(p, ".") != 0;
	return strncmp(p, dir, n) == 0 && p[n] == '/';
}

/* True if sc names p or has a subtree item above it. */
static bool covered(const struct xr_scope *sc, const char *p)
{
	for (size_t i = 0; i < sc->n; i++)
		if (strcmp(sc->v[i].path, p) == 0 ||
		    (sc->v[i].subtree && is_below(p, sc->v[i].path)))
			return true;
	return false;
}

/* Copies the entries of full that sc covers into out: what xr_walk_scope() must list. */
static void expect_covered(const struct xr_manifest *full, const struct xr_scope *sc,
			   struct xr_manifest *out)
{
	xr_manifest_init(out);
	for (size_t i = 0; i < full->n; i++)
		if (covered(sc, full->e[i].path))
			assert_int_equal(xr_manifest_add(out, &full->e[i]), 0);
}

/* Fails unless a and b hold the same entries, field by field (the inode included). */
static void assert_same_entries(const struct xr_manifest *a, const struct xr_manifest *b,
				const char *what)
{
	size_t i;

	for (i = 0; i < a->n && i < b->n; i++) {
		const struct xr_entry *x = &a->e[i], *y = &b->e[i];

		if (strcmp(x->path, y->path) != 0)
			fail_msg("%s: entry %zu: \"%s\" vs \"%s\"", what, i, x->path, y->path);
		if (x->type != y->type || x->size != y->size || x->mode != y->mode ||
		    x->mtime_sec != y->mtime_sec || x->mtime_nsec != y->mtime_nsec ||
		    x->uid != y->uid || x->gid != y->gid || x->rdev != y->rdev ||
		    (x->type == XR_FT_DIR &&
		     (x->id.dev != y->id.dev || x->id.ino != y->id.ino)) ||
		    x->has_hash != y->has_hash ||
		    (!x->link) != (!y->link) || (x->link && strcmp(x->link, y->link) != 0))
			fail_msg("%s: %s: type %d/%d size %llu/%llu mode %o/%o mtime %lld/%lld "
				 "ino %llu/%llu", what, x->path, x->type, y->type,
				 (unsigned long long)x->size, (unsigned long long)y->size, x->mode,
				 y->mode, (long long)x->mtime_sec, (long long)y->mtime_sec,
				 (unsigned long long)(x->type == XR_FT_DIR ? x->id.ino : 0),
				 (unsigned long long)(y->type == XR_FT_DIR ? y->id.ino : 0));
	}
	if (a->n != b->n)
		fail_msg("%s: %zu vs %zu entries; first extra: \"%s\"", what, a->n, b->n,
			 a->n > b->n ? a->e[i].path : b->e[i].path);
}

/* What a scope covers: its items, and everything below its subtree items only. */
static void test_scope_covers(void **state)
{
	struct xr_scope sc;

	(void)state;
	xr_scope_init(&sc);
	sc_add(&sc, "conf.d", false);
	sc_add(&sc, "signer", true);
	sc_add(&sc, "conf.d/local.ini", false);
	sc_add(&sc, "top.txt", false);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_true(xr_scope_covers(&sc, "conf.d"));
	assert_true(xr_scope_covers(&sc, "conf.d/local.ini"));
	assert_false(xr_scope_covers(&sc, "conf.d/other.ini"));	/* a dir by itself only */
	assert_true(xr_scope_covers(&sc, "signer"));
	assert_true(xr_scope_covers(&sc, "signer/softtoken/1.p12"));
	assert_false(xr_scope_covers(&sc, "signerx"));
	assert_false(xr_scope_covers(&sc, "signer.bak/x"));
	assert_true(xr_scope_covers(&sc, "top.txt"));
	assert_false(xr_scope_covers(&sc, "top.txt/x"));	/* a file item covers itself */
	assert_false(xr_scope_covers(&sc, "."));
	assert_false(xr_scope_covers(&sc, "services/x.conf"));
	xr_scope_free(&sc);
	sc_add(&sc, ".", false);
	assert_true(xr_scope_covers(&sc, "."));
	assert_false(xr_scope_covers(&sc, "a"));
	xr_scope_free(&sc);
	sc_add(&sc, ".", true);
	assert_true(xr_scope_covers(&sc, "a/b/c"));
	assert_true(xr_scope_covers(&sc, "."));
	xr_scope_free(&sc);
}

/* Sorting, merging of duplicates, dropping what a subtree item covers. */
static void test_scope_normalize(void **state)
{
	struct xr_scope sc;

	(void)state;
	xr_scope_init(&sc);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(sc.n, 0);
	sc_add(&sc, "z", false);
	sc_add(&sc, "a/b/c", false);
	sc_add(&sc, "a", true);
	sc_add(&sc, "a b", false);
	sc_add(&sc, "a/b", false);
	sc_add(&sc, "a.b", true);
	sc_add(&sc, "a.b/x", true);
	sc_add(&sc, "m", false);
	sc_add(&sc, "m/n", false);
	sc_add(&sc, "m", true);		/* duplicate: subtree wins, then covers m/n */
	sc_add(&sc, "k", true);
	sc_add(&sc, "k", false);	/* the other way round */
	sc_add(&sc, "q/r", false);
	sc_add(&sc, "q", false);	/* not subtree: q/r stays */
	sc_add(&sc, "q/r", false);
	sc_add(&sc, "-", false);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_string_equal(scope_str(&sc), "-|a/+|a b|a.b/+|k/+|m/+|q|q/r|z");
	/* idempotent */
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_string_equal(scope_str(&sc), "-|a/+|a b|a.b/+|k/+|m/+|q|q/r|z");
	xr_scope_free(&sc);
	assert_int_equal(sc.n, 0);
	assert_null(sc.v);

	/* "." as a subtree item covers everything */
	sc_add(&sc, "x", true);
	sc_add(&sc, "a/b", false);
	sc_add(&sc, ".", false);
	sc_add(&sc, "-", false);
	sc_add(&sc, ".", true);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_string_equal(scope_str(&sc), "./+");
	xr_scope_free(&sc);
	/* "." alone covers only itself */
	sc_add(&sc, "a", false);
	sc_add(&sc, ".", false);
	sc_add(&sc, "a/b", true);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_string_equal(scope_str(&sc), ".|a|a/b/+");
	xr_scope_free(&sc);
}

/* A small deterministic generator (xorshift64*) for the randomized tests. */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* A random integer in [0, n). */
static unsigned rnd(uint64_t *s, unsigned n)
{
	return (unsigned)(rnd_next(s) >> 33) % n;
}

/* Random scopes against a reference: the kept items are exactly the uncovered ones. */
static void test_scope_normalize_random(void **state)
{
	static const char *pool[] = {".", "a", "a/b", "a/b/c", "a/bc", "a b", "a.b", "a.b/c",
				     "ab", "b", "b/a", "b/a/a", "-", "a/b c", "a/b/c/d"};
	const size_t np = sizeof(pool) / sizeof(pool[0]);
	uint64_t seed = 0x5c09e;
	int round;

	(void)state;
	for (round = 0; round < 500; round++) {
		struct xr_scope sc;
		bool in[sizeof(pool) / sizeof(pool[0])] = {false};
		bool sub[sizeof(pool) / sizeof(pool[0])] = {false};
		unsigned k, n = 1 + rnd(&seed, 10);
		size_t i, j, want = 0;

		xr_scope_init(&sc);
		for (k = 0; k < n; k++) {
			size_t p = rnd(&seed, (unsigned)np);
			bool s = rnd(&seed, 2);

			sc_add(&sc, pool[p], s);
			in[p] = true;
			sub[p] = sub[p] || s;
		}
		assert_int_equal(xr_scope_normalize(&sc), 0);
		for (i = 0; i < np; i++) {
			bool hidden = false;

			for (j = 0; j < np; j++)
				if (in[j] && sub[j] && is_below(pool[i], pool[j]))
					hidden = true;
			if (!in[i] || hidden)
				continue;
			want++;
			for (j = 0; j < sc.n; j++)
				if (strcmp(sc.v[j].path, pool[i]) == 0)
					break;
			if (j == sc.n)
				fail_msg("round %d: %s missing from %s", round, pool[i],
					 scope_str(&sc));
			assert_int_equal(sc.v[j].subtree, sub[i]);
		}
		assert_int_equal(sc.n, want);
		for (j = 1; j < sc.n; j++)
			assert_true(xr_path_cmp(sc.v[j - 1].path, sc.v[j].path) < 0);
		xr_scope_free(&sc);
	}
}

/* Entries of m that are dir or below it, joined by '|'. */
static const char *slice(const struct xr_manifest *m, const char *dir, struct xr_manifest *out)
{
	xr_manifest_init(out);
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->e[i].path, dir) == 0 || is_below(m->e[i].path, dir))
			assert_int_equal(xr_manifest_add(out, &m->e[i]), 0);
	return paths(out);
}

/* Sender side on the standard tree: files, directories with and without subtree, root. */
static void test_walk_scope_items(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY), sub;
	struct xr_walk_opts o = all_opts;
	struct xr_manifest full, m, want;
	struct xr_scope sc;
	unsigned van = 99, err = 99;

	(void)state;
	build_tree(dfd);
	assert_int_equal(walk(dfd, NULL, NULL, &o, &full, &van, &err), 0);
	xr_scope_init(&sc);

	/* a file */
	sc_add(&sc, "a.txt", false);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	assert_int_equal(van, 0);
	assert_int_equal(err, 0);
	assert_string_equal(paths(&m), "a.txt");
	expect_covered(&full, &sc, &want);
	assert_same_entries(&m, &want, "file item");
	xr_manifest_free(&m);
	xr_manifest_free(&want);
	xr_scope_free(&sc);

	/* a directory without subtree: only itself */
	sc_add(&sc, "dir", false);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	assert_string_equal(paths(&m), "dir");
	assert_int_equal(m.e[0].type, XR_FT_DIR);
	assert_int_equal(m.e[0].mode, 0750);
	xr_manifest_free(&m);
	xr_scope_free(&sc);

	/* with subtree: itself and everything below, as the full walk lists it */
	sc_add(&sc, "dir", true);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	assert_string_equal(slice(&full, "dir", &want),
			    "dir|dir/.xroad-replicate|dir/dangling|dir/f|dir/sub|dir/sub/deep");
	assert_same_entries(&m, &want, "subtree item");
	xr_manifest_free(&want);
	/* ... and as xr_walk() of the directory itself under that prefix */
	o.skip_name = NULL;	/* only the transfer root's own .xroad-replicate is skipped */
	sub = openat(dfd, "dir", O_RDONLY | O_DIRECTORY);
	assert_true(sub >= 0);
	assert_int_equal(walk(sub, "dir", NULL, &o, &want, &van, &err), 0);
	close(sub);
	assert_same_entries(&m, &want, "subtree item vs xr_walk");
	o.skip_name = all_opts.skip_name;
	xr_manifest_free(&m);
	xr_manifest_free(&want);
	xr_scope_free(&sc);

	/* absent items: not listed, not counted as vanished or as errors */
	sc_add(&sc, "missing", true);
	sc_add(&sc, "dir/missing", false);
	sc_add(&sc, "nodir/x/y", true);
	sc_add(&sc, "a.txt/x", false);	/* its "parent" is a file */
	sc_add(&sc, "empty/x", true);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	van = err = 99;
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	assert_int_equal(m.n, 0);
	assert_int_equal(van, 0);
	assert_int_equal(err, 0);
	xr_manifest_free(&m);
	xr_scope_free(&sc);

	/* the state directory at the top is never listed; one further down is */
	sc_add(&sc, ".xroad-replicate", true);
	sc_add(&sc, ".xroad-replicate/x", false);
	sc_add(&sc, "dir/.xroad-replicate", false);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	assert_string_equal(paths(&m), "dir/.xroad-replicate");
	xr_manifest_free(&m);
	xr_scope_free(&sc);

	/* the root: alone, then with everything */
	sc_add(&sc, ".", false);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	expect_covered(&full, &sc, &want);
	assert_string_equal(paths(&want), ".");
	assert_same_entries(&m, &want, "root item");
	xr_manifest_free(&m);
	xr_manifest_free(&want);
	xr_scope_free(&sc);
	sc_add(&sc, ".", true);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	assert_same_entries(&m, &full, "root subtree item");
	xr_manifest_free(&m);
	xr_scope_free(&sc);

	/* several items at once come out sorted */
	sc_add(&sc, "with space", false);
	sc_add(&sc, "link", false);
	sc_add(&sc, "empty", true);
	sc_add(&sc, "dir/sub", true);
	sc_add(&sc, "fifo", false);
	sc_add(&sc, ".", false);
	sc_add(&sc, "dir.x", false);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	expect_covered(&full, &sc, &want);
	assert_string_equal(paths(&want),
			    ".|dir/sub|dir/sub/deep|dir.x|empty|fifo|link|with space");
	assert_same_entries(&m, &want, "several items");
	assert_string_equal(xr_manifest_find(&m, "link")->link, "dir/f");
	xr_manifest_free(&m);
	xr_manifest_free(&want);
	xr_scope_free(&sc);

	xr_manifest_free(&full);
	close(dfd);
	rmtree(root);
	free(root);
}

/* Parents are never followed through a symlink; the symlink itself is listed. */
static void test_walk_scope_symlinked_parent(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_manifest m;
	struct xr_scope sc;
	unsigned van = 99, err = 99;

	(void)state;
	build_tree(dfd);
	assert_int_equal(symlinkat("dir", dfd, "dlink"), 0);
	assert_int_equal(symlinkat(root, dfd, "abs"), 0);
	xr_scope_init(&sc);
	sc_add(&sc, "dlink/f", false);
	sc_add(&sc, "dlink/sub", true);
	sc_add(&sc, "dlink/sub/deep", false);
	sc_add(&sc, "abs/a.txt", false);
	sc_add(&sc, "abs/dir", true);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &all_opts, &m, &van, &err), 0);
	assert_int_equal(m.n, 0);
	assert_int_equal(van, 0);
	assert_int_equal(err, 0);
	xr_manifest_free(&m);
	/* the link as an item: listed as a link, never entered even as a subtree item */
	sc_add(&sc, "dlink", true);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &all_opts, &m, &van, &err), 0);
	assert_string_equal(paths(&m), "dlink");
	assert_int_equal(m.e[0].type, XR_FT_LINK);
	assert_string_equal(m.e[0].link, "dir");
	xr_manifest_free(&m);
	xr_scope_free(&sc);
	close(dfd);
	rmtree(root);
	free(root);
}

/* Builds the filter test tree: x/ (excluded by "- /x/"), y/ with .txt files. */
static void build_filter_tree(int dfd)
{
	assert_int_equal(mkdirat(dfd, "x", 0755), 0);
	assert_int_equal(mkdirat(dfd, "x/sub", 0755), 0);
	assert_int_equal(mkdirat(dfd, "y", 0755), 0);
	assert_int_equal(mkdirat(dfd, "y/x", 0755), 0);	/* not anchored: kept */
	mkfile(dfd, "x/a", "a", 0644, 1600000000);
	mkfile(dfd, "x/sub/b", "b", 0644, 1600000001);
	mkfile(dfd, "y/a.txt", "t", 0644, 1600000002);
	mkfile(dfd, "y/b", "b", 0644, 1600000003);
	mkfile(dfd, "y/x/c", "c", 0644, 1600000004);
	mkfile(dfd, "z.txt", "z", 0644, 1600000005);
}

/*
 * Filters: below an excluded directory nothing is listed on either side; an
 * excluded item itself as xr_walk() does: left out by the sender, listed (not
 * entered) by the receiver.
 */
static void test_walk_scope_filters(void **state)
{
	static const struct {
		const char *path;
		bool subtree;
	} items[] = {{"x/a", false}, {"x/sub", true}, {"x/sub/b", false}, {"x", true},
		     {"y/a.txt", false}, {"y/x", true}, {"z.txt", true}, {"y/b", false}};
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_filters *f = xr_filters_new();
	struct xr_walk_opts o = all_opts;
	struct xr_manifest full, m, want;
	struct xr_scope sc;
	unsigned van, err;
	size_t i;
	int side;

	(void)state;
	build_filter_tree(dfd);
	assert_int_equal(xr_filters_add(f, '-', "/x/", "test"), 0);
	assert_int_equal(xr_filters_add(f, '-', "*.txt", "test"), 0);
	for (side = 0; side < 2; side++) {
		o.side = side ? XR_WALK_RECEIVER : XR_WALK_SENDER;
		assert_int_equal(walk(dfd, NULL, f, &o, &full, &van, &err), 0);
		/* each item alone */
		for (i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
			xr_scope_init(&sc);
			sc_add(&sc, items[i].path, items[i].subtree);
			assert_int_equal(walk_scope(dfd, NULL, &sc, f, &o, &m, &van, &err), 0);
			assert_int_equal(err, 0);
			expect_covered(&full, &sc, &want);
			assert_same_entries(&m, &want, items[i].path);
			xr_manifest_free(&m);
			xr_manifest_free(&want);
			xr_scope_free(&sc);
		}
		/* all together, and the root as a subtree item */
		xr_scope_init(&sc);
		for (i = 0; i < sizeof(items) / sizeof(items[0]); i++)
			sc_add(&sc, items[i].path, items[i].subtree);
		assert_int_equal(xr_scope_normalize(&sc), 0);
		assert_int_equal(walk_scope(dfd, NULL, &sc, f, &o, &m, &van, &err), 0);
		assert_string_equal(paths(&m), side ? "x|y/a.txt|y/b|y/x|y/x/c|z.txt"
						    : "y/b|y/x|y/x/c");
		xr_manifest_free(&m);
		sc_add(&sc, ".", true);
		assert_int_equal(xr_scope_normalize(&sc), 0);
		assert_int_equal(walk_scope(dfd, NULL, &sc, f, &o, &m, &van, &err), 0);
		assert_same_entries(&m, &full, "root subtree with filters");
		xr_manifest_free(&m);
		xr_scope_free(&sc);
		xr_manifest_free(&full);
	}
	xr_filters_free(f);
	close(dfd);
	rmtree(root);
	free(root);
}

/* With a prefix: only the prefix and what is below it counts. */
static void test_walk_scope_prefix(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_filters *f = xr_filters_new();
	struct xr_walk_opts o = all_opts;
	struct xr_manifest full, m, want;
	struct xr_scope sc;
	unsigned van, err;

	(void)state;
	build_tree(dfd);
	assert_int_equal(walk(dfd, "top", NULL, &o, &full, &van, &err), 0);
	xr_scope_init(&sc);
	/* outside the transfer: ignored */
	sc_add(&sc, ".", true);
	sc_add(&sc, "dir", true);
	sc_add(&sc, "a.txt", false);
	sc_add(&sc, "to", true);
	sc_add(&sc, "topx/a.txt", false);
	sc_add(&sc, "top.x", true);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(walk_scope(dfd, "top", &sc, NULL, &o, &m, &van, &err), 0);
	assert_int_equal(m.n, 0);
	xr_manifest_free(&m);
	xr_scope_free(&sc);
	/* the root by its name, and items below it */
	sc_add(&sc, "top", false);
	sc_add(&sc, "top/a.txt", false);
	sc_add(&sc, "top/dir/sub", true);
	sc_add(&sc, "top/.xroad-replicate", false);	/* the state file: never */
	sc_add(&sc, "top/dir/.xroad-replicate", false);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(walk_scope(dfd, "top", &sc, NULL, &o, &m, &van, &err), 0);
	expect_covered(&full, &sc, &want);
	assert_string_equal(paths(&want),
			    "top|top/a.txt|top/dir/.xroad-replicate|top/dir/sub|top/dir/sub/deep");
	assert_same_entries(&m, &want, "prefix items");
	xr_manifest_free(&m);
	xr_manifest_free(&want);
	xr_scope_free(&sc);
	/* the root as a subtree item: the whole walk */
	sc_add(&sc, "top", true);
	assert_int_equal(walk_scope(dfd, "top", &sc, NULL, &o, &m, &van, &err), 0);
	assert_same_entries(&m, &full, "prefix root subtree");
	xr_manifest_free(&m);
	xr_manifest_free(&full);
	xr_scope_free(&sc);
	/* an excluded directory below the prefix (anchored rules see the prefix) */
	sc_add(&sc, "top/dir/f", false);
	sc_add(&sc, "top/dir/sub", true);
	sc_add(&sc, "top/dir", false);
	sc_add(&sc, "top/a.txt", false);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(xr_filters_add(f, '-', "/top/dir/", "test"), 0);
	assert_int_equal(walk_scope(dfd, "top", &sc, f, &o, &m, &van, &err), 0);
	assert_string_equal(paths(&m), "top/a.txt");
	xr_manifest_free(&m);
	o.side = XR_WALK_RECEIVER;
	assert_int_equal(walk_scope(dfd, "top", &sc, f, &o, &m, &van, &err), 0);
	assert_string_equal(paths(&m), "top/a.txt|top/dir");
	assert_int_equal(walk(dfd, "top", f, &o, &full, &van, &err), 0);
	expect_covered(&full, &sc, &want);
	assert_same_entries(&m, &want, "receiver, prefix with an excluded directory");
	xr_manifest_free(&m);
	xr_manifest_free(&want);
	xr_manifest_free(&full);
	/* the named root excluded: nothing (sender), the root alone (receiver) */
	sc_add(&sc, "top", false);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(xr_filters_add(f, '-', "top", "test"), 0);
	assert_int_equal(walk_scope(dfd, "top", &sc, f, &o, &m, &van, &err), 0);
	assert_string_equal(paths(&m), "top");
	xr_manifest_free(&m);
	o.side = XR_WALK_SENDER;
	assert_int_equal(walk_scope(dfd, "top", &sc, f, &o, &m, &van, &err), 0);
	assert_int_equal(m.n, 0);
	xr_manifest_free(&m);
	xr_scope_free(&sc);
	sc_add(&sc, "top/a.txt", false);
	assert_int_equal(walk_scope(dfd, "top", &sc, f, &o, &m, &van, &err), 0);
	assert_int_equal(m.n, 0);
	xr_manifest_free(&m);
	xr_scope_free(&sc);
	xr_filters_free(f);
	close(dfd);
	rmtree(root);
	free(root);
}

/* Without -r xr_walk() lists the root only; so must the scoped walk. */
static void test_walk_scope_not_recursive(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_walk_opts o = all_opts;
	struct xr_manifest full, m;
	struct xr_scope sc;
	unsigned van, err;

	(void)state;
	build_tree(dfd);
	o.recursive = false;
	assert_int_equal(walk(dfd, NULL, NULL, &o, &full, &van, &err), 0);
	assert_string_equal(paths(&full), ".");
	xr_scope_init(&sc);
	sc_add(&sc, ".", true);
	sc_add(&sc, "a.txt", false);
	sc_add(&sc, "dir", true);
	sc_add(&sc, "dir/f", false);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_string_equal(scope_str(&sc), "./+");
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	assert_same_entries(&m, &full, "not recursive, root subtree");
	xr_manifest_free(&m);
	xr_scope_free(&sc);
	sc_add(&sc, ".", false);
	sc_add(&sc, "a.txt", false);
	sc_add(&sc, "dir", true);
	sc_add(&sc, "dir/f", false);
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(walk_scope(dfd, NULL, &sc, NULL, &o, &m, &van, &err), 0);
	assert_same_entries(&m, &full, "not recursive, top-level items");
	xr_manifest_free(&m);
	xr_scope_free(&sc);
	xr_manifest_free(&full);
	close(dfd);
	rmtree(root);
	free(root);
}

/*
 * Random scopes over a tree with excluded parts, on both sides, with and
 * without a prefix: the scoped walk lists exactly the entries of the full
 * walk that the scope covers.
 */
static void test_walk_scope_random(void **state)
{
	char *root = scratch();
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	struct xr_filters *f = xr_filters_new();
	struct xr_walk_opts o = all_opts;
	struct xr_manifest full, m, want;
	char extra[XR_PATH_MAX];
	uint64_t seed = 77;
	int variant, round;

	(void)state;
	build_tree(dfd);
	build_filter_tree(dfd);
	assert_int_equal(symlinkat("x", dfd, "xlink"), 0);
	assert_int_equal(xr_filters_add(f, '-', "/x/", "test"), 0);
	assert_int_equal(xr_filters_add(f, '-', "*.txt", "test"), 0);
	assert_int_equal(xr_filters_add(f, '-', "sub/", "test"), 0);
	assert_int_equal(xr_filters_add(f, '-', "/top/y/x/", "test"), 0);
	for (variant = 0; variant < 4; variant++) {
		const char *prefix = variant & 1 ? "top" : NULL;

		o.side = variant & 2 ? XR_WALK_RECEIVER : XR_WALK_SENDER;
		assert_int_equal(walk(dfd, prefix, f, &o, &full, NULL, NULL), 0);
		for (round = 0; round < 100; round++) {
			struct xr_scope sc;
			unsigned k, n = 1 + rnd(&seed, 6), van = 9, err = 9;

			xr_scope_init(&sc);
			for (k = 0; k < n; k++) {
				/* an existing path, or one that is not there / not reachable */
				const char *p = full.e[rnd(&seed, (unsigned)full.n)].path;

				if (rnd(&seed, 4) == 0) {
					static const char *odd[] = {"x/a", "x/sub/b", "xlink/a",
								    "y/x/c", "nope/a", "fifo/a"};

					snprintf(extra, sizeof(extra), "%s%s%s",
						 prefix ? prefix : "", prefix ? "/" : "",
						 odd[rnd(&seed, 6)]);
					p = extra;
				}
				sc_add(&sc, p, rnd(&seed, 2));
			}
			assert_int_equal(xr_scope_normalize(&sc), 0);
			assert_int_equal(walk_scope(dfd, prefix, &sc, f, &o, &m, &van, &err), 0);
			assert_int_equal(van, 0);
			assert_int_equal(err, 0);
			expect_covered(&full, &sc, &want);
			if (m.n != want.n)
				fail_msg("variant %d: scope %s: got %s", variant, scope_str(&sc),
					 paths(&m));
			assert_same_entries(&m, &want, scope_str(&sc));
			xr_manifest_free(&m);
			xr_manifest_free(&want);
			xr_scope_free(&sc);
		}
		xr_manifest_free(&full);
	}
	xr_filters_free(f);
	close(dfd);
	rmtree(root);
	free(root);
}

/* Adds a synthetic entry (path, type) to m. */
static void add_entry(struct xr_manifest *m, const char *path, uint8_t type, uint64_t size)
{
	struct xr_entry e;

	memset(&e, 0, sizeof(e));
	e.path = (char *)path;
	e.type = type;
	e.size = size;
	e.mode = type == XR_FT_DIR ? 0755 : 0644;
	assert_int_equal(xr_manifest_add(m, &e), 0);
}

/* Splice on hand-made lists: which old entries an item replaces. */
static void test_splice_rules(void **state)
{
	struct xr_manifest m, d;
	struct xr_scope sc;

	(void)state;
	xr_manifest_init(&m);
	xr_manifest_init(&d);
	xr_scope_init(&sc);
	add_entry(&m, ".", XR_FT_DIR, 0);
	add_entry(&m, "a", XR_FT_DIR, 0);
	add_entry(&m, "a/f", XR_FT_REG, 1);
	add_entry(&m, "a b", XR_FT_REG, 1);
	add_entry(&m, "b", XR_FT_DIR, 0);
	add_entry(&m, "b/f", XR_FT_REG, 1);
	add_entry(&m, "c", XR_FT_DIR, 0);
	add_entry(&m, "c/f", XR_FT_REG, 1);
	add_entry(&m, "d", XR_FT_DIR, 0);
	add_entry(&m, "d/f", XR_FT_REG, 1);
	add_entry(&m, "d.x", XR_FT_REG, 1);
	add_entry(&m, "e", XR_FT_REG, 1);
	assert_int_equal(xr_manifest_sort(&m), 0);
	/* a: still a directory, not subtree: its contents stay */
	sc_add(&sc, "a", false);
	add_entry(&d, "a", XR_FT_DIR, 0);
	/* b: now a file (not subtree): its old contents go */
	sc_add(&sc, "b", false);
	add_entry(&d, "b", XR_FT_REG, 7);
	/* c: gone: its contents go with it */
	sc_add(&sc, "c", false);
	/* d: subtree: replaced by what is listed now */
	sc_add(&sc, "d", true);
	add_entry(&d, "d", XR_FT_DIR, 0);
	add_entry(&d, "d/g", XR_FT_REG, 2);
	/* e: now a directory with contents; n: new */
	sc_add(&sc, "e", true);
	add_entry(&d, "e", XR_FT_DIR, 0);
	add_entry(&d, "e/x", XR_FT_REG, 3);
	sc_add(&sc, "n/m", true);
	add_entry(&d, "n/m", XR_FT_REG, 4);
	sc_add(&sc, "zz", false);	/* absent before and after */
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(xr_manifest_sort(&d), 0);
	assert_int_equal(xr_manifest_splice(&m, &sc, &d), 0);
	assert_string_equal(paths(&m), ".|a|a/f|a b|b|d|d/g|d.x|e|e/x|n/m");
	assert_int_equal(xr_manifest_find(&m, "b")->type, XR_FT_REG);
	assert_int_equal(xr_manifest_find(&m, "b")->size, 7);
	assert_int_equal(xr_manifest_find(&m, "e")->type, XR_FT_DIR);
	assert_int_equal(d.n, 0);	/* moved */
	assert_null(xr_manifest_find(&d, "b"));
	/* the result is a sorted list the usual functions work on */
	assert_int_equal(xr_manifest_sort(&m), 0);
	assert_non_null(xr_manifest_find(&m, "d/g"));
	assert_null(xr_manifest_find(&m, "d/f"));
	xr_scope_free(&sc);
	/* "." as a subtree item replaces everything; empty lists on either side */
	xr_manifest_free(&m);
	xr_manifest_init(&m);
	sc_add(&sc, ".", true);
	add_entry(&d, ".", XR_FT_DIR, 0);
	assert_int_equal(xr_manifest_splice(&m, &sc, &d), 0);
	assert_string_equal(paths(&m), ".");
	add_entry(&m, "a", XR_FT_REG, 0);
	add_entry(&m, "a/b", XR_FT_REG, 0);
	assert_int_equal(xr_manifest_splice(&m, &sc, &d), 0);
	assert_int_equal(m.n, 0);
	xr_scope_free(&sc);
	xr_manifest_free(&m);
	xr_manifest_free(&d);
}

/* ---- splice against a real tree that changes ---------------------------- */

/* A tree under mutation, with the paths a watcher would report. */
struct mut {
	char *root, *outside;
	int dfd;
	uint64_t seed;
	unsigned serial;
	char **rep;		/* reported paths of the current round */
	size_t nrep, caprep;
	char **vacated;		/* directories moved away this round (see vacated_ok) */
	size_t nvac, capvac;
};

/* Appends a copy of p to a string list. */
static void list_add(char ***v, size_t *n, size_t *cap, const char *p)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		*v = realloc(*v, *cap * sizeof(**v));
		assert_non_null(*v);
	}
	(*v)[*n] = strdup(p);
	assert_non_null((*v)[*n]);
	(*n)++;
}

/* Frees the strings of a list (keeps the array). */
static void list_clear(char **v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	*n = 0;
}

/* Reports p as changed. */
static void report(struct mut *t, const char *p)
{
	list_add(&t->rep, &t->nrep, &t->caprep, p);
}

/* The tree as it is now. */
static void now_walk(struct mut *t, struct xr_manifest *m)
{
	assert_int_equal(walk(t->dfd, NULL, NULL, &all_opts, m, NULL, NULL), 0);
}

/* Reports every entry below p, as the watcher does for a directory that appears or goes. */
static void report_below(struct mut *t, const char *p)
{
	struct xr_manifest m;

	now_walk(t, &m);
	for (size_t i = 0; i < m.n; i++)
		if (is_below(m.e[i].path, p))
			report(t, m.e[i].path);
	xr_manifest_free(&m);
}

/* Removes rel (a tree) below dirfd, never following symlinks. */
static void rm_at(int dirfd, const char *rel)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int fd;

	assert_int_equal(fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW), 0);
	if (!S_ISDIR(st.st_mode)) {
		assert_int_equal(unlinkat(dirfd, rel, 0), 0);
		return;
	}
	fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	assert_true(fd >= 0);
	d = fdopendir(fd);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rm_at(fd, de->d_name);
	closedir(d);
	assert_int_equal(unlinkat(dirfd, rel, AT_REMOVEDIR), 0);
}

/* Writes a file with a random content length and (sometimes) an old mtime. */
static void put_file(struct mut *t, const char *p)
{
	char content[64];
	unsigned len = rnd(&t->seed, 40);

	memset(content, 'a' + (int)rnd(&t->seed, 26), len);
	content[len] = '\0';
	mkfile(t->dfd, p, content, 0600 | (rnd(&t->seed, 2) ? 044 : 0),
	       rnd(&t->seed, 2) ? 1500000000 + (time_t)rnd(&t->seed, 1000) : time(NULL));
}

/* Creates directory p with a few files and subdirectories (depth levels). */
static void put_dir(struct mut *t, const char *p, int depth)
{
	static const char *names[] = {"a", "b", "a.b", "c d", "a-b"};
	char c[XR_PATH_MAX];
	unsigned i, n = rnd(&t->seed, 4);

	assert_int_equal(mkdirat(t->dfd, p, 0755), 0);
	for (i = 0; i < n; i++) {
		struct stat st;

		snprintf(c, sizeof(c), "%s/%s", p, names[rnd(&t->seed, 5)]);
		if (fstatat(t->dfd, c, &st, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (depth > 0 && rnd(&t->seed, 3) == 0)
			put_dir(t, c, depth - 1);
		else
			put_file(t, c);
	}
}

/* True if p may become a directory this round (see test_splice_dir_swap). */
static bool vacated_ok(const struct mut *t, const char *p)
{
	for (size_t i = 0; i < t->nvac; i++)
		if (strcmp(t->vacated[i], p) == 0)
			return false;
	return true;
}

/* rm -rf p: the watcher sees every entry go. */
static void op_delete(struct mut *t, const char *p)
{
	report_below(t, p);
	report(t, p);
	rm_at(t->dfd, p);
}

/* Moves src out of the tree (the watcher sees only its old name go). */
static void op_move_out(struct mut *t, const char *src)
{
	char dst[600];
	int ofd = open(t->outside, O_RDONLY | O_DIRECTORY);
	struct stat st;

	assert_true(ofd >= 0);
	assert_int_equal(fstatat(t->dfd, src, &st, AT_SYMLINK_NOFOLLOW), 0);
	snprintf(dst, sizeof(dst), "gone%u", t->serial++);
	assert_int_equal(renameat(t->dfd, src, ofd, dst), 0);
	close(ofd);
	report(t, src);
	if (S_ISDIR(st.st_mode))
		list_add(&t->vacated, &t->nvac, &t->capvac, src);
}

/* Replaces p (anything) by a directory with contents. */
static void op_make_dir(struct mut *t, const char *p)
{
	struct stat st;

	if (fstatat(t->dfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0)
		op_delete(t, p);
	put_dir(t, p, 2);
	report(t, p);
	report_below(t, p);
}

/* Replaces p (anything; a directory removed or moved away) by a file. */
static void op_make_file(struct mut *t, const char *p)
{
	struct stat st;

	if (fstatat(t->dfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode) && rnd(&t->seed, 2))
			op_move_out(t, p);
		else
			op_delete(t, p);
	}
	put_file(t, p);
	report(t, p);
}

/* Renames src to dst (absent); a directory moved is rescanned under its new name. */
static void op_move(struct mut *t, const char *src, const char *dst)
{
	struct stat st;

	assert_int_equal(fstatat(t->dfd, src, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(renameat(t->dfd, src, t->dfd, dst), 0);
	report(t, src);
	report(t, dst);
	if (S_ISDIR(st.st_mode)) {
		list_add(&t->vacated, &t->nvac, &t->capvac, src);
		report_below(t, dst);
	}
}

/*
 * Builds the scope from the round's reports as the sender does (each path a
 * subtree item unless m had a directory there, plus its parent directory),
 * walks it, splices it into m and compares with a fresh walk.
 */
static void check_round(struct mut *t, struct xr_manifest *m, const char *what)
{
	struct xr_manifest delta, now;
	struct xr_scope sc;
	char par[XR_PATH_MAX];
	unsigned van = 9, err = 9;

	xr_scope_init(&sc);
	for (size_t i = 0; i < t->nrep; i++) {
		const struct xr_entry *old = xr_manifest_find(m, t->rep[i]);
		char *slash;

		sc_add(&sc, t->rep[i], !(old && old->type == XR_FT_DIR));
		snprintf(par, sizeof(par), "%s", t->rep[i]);
		slash = strrchr(par, '/');
		if (slash)
			*slash = '\0';
		else
			strcpy(par, ".");
		if (strcmp(t->rep[i], ".") != 0) {
			old = xr_manifest_find(m, par);
			sc_add(&sc, par, !(old && old->type == XR_FT_DIR));
		}
	}
	assert_int_equal(xr_scope_normalize(&sc), 0);
	assert_int_equal(walk_scope(t->dfd, NULL, &sc, NULL, &all_opts, &delta, &van, &err), 0);
	if (xr_scope_mark_replaced(&sc, m, &delta)) {
		/* as the sender: a directory swapped under its name is listed whole */
		xr_manifest_free(&delta);
		assert_int_equal(xr_scope_normalize(&sc), 0);
		assert_int_equal(walk_scope(t->dfd, NULL, &sc, NULL, &all_opts, &delta, &van,
					    &err), 0);
	}
	assert_int_equal(van, 0);
	assert_int_equal(err, 0);
	assert_int_equal(xr_manifest_splice(m, &sc, &delta), 0);
	assert_int_equal(delta.n, 0);
	now_walk(t, &now);
	assert_same_entries(m, &now, what);
	xr_manifest_free(&delta);
	xr_manifest_free(&now);
	xr_scope_free(&sc);
	list_clear(t->rep, &t->nrep);
	list_clear(t->vacated, &t->nvac);
}

/* Sets up a mutation context on a fresh scratch tree. */
static void mut_init(struct mut *t, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	t->root = scratch();
	t->outside = scratch();
	t->dfd = open(t->root, O_RDONLY | O_DIRECTORY);
	assert_true(t->dfd >= 0);
	t->seed = seed;
}

/* Removes the trees and frees the lists. */
static void mut_done(struct mut *t)
{
	list_clear(t->rep, &t->nrep);
	list_clear(t->vacated, &t->nvac);
	free(t->rep);
	free(t->vacated);
	close(t->dfd);
	rmtree(t->root);
	rmtree(t->outside);
	free(t->root);
	free(t->outside);
}

/* The change kinds one at a time, each checked against a fresh walk. */
static void test_splice_mutations(void **state)
{
	struct timespec ts[2] = {{1600000100, 5}, {1600000100, 5}};
	struct xr_manifest m;
	struct mut t;

	(void)state;
	mut_init(&t, 1);
	build_tree(t.dfd);
	assert_int_equal(mkdirat(t.dfd, "dir/sub/more", 0755), 0);
	mkfile(t.dfd, "dir/sub/more/m", "m", 0644, 1600000010);
	now_walk(&t, &m);

	/* content and mtime of a file */
	mkfile(t.dfd, "dir/f", "changed content", 0600, 1600000050);
	report(&t, "dir/f");
	check_round(&t, &m, "modify");
	assert_int_equal(xr_manifest_find(&m, "dir/f")->size, 15);
	/* mtime only (utimensat, nanoseconds) and mode of a directory */
	assert_int_equal(utimensat(t.dfd, "a.txt", ts, AT_SYMLINK_NOFOLLOW), 0);
	report(&t, "a.txt");
	assert_int_equal(fchmodat(t.dfd, "dir/sub", 0711, 0), 0);
	report(&t, "dir/sub");
	check_round(&t, &m, "mtime and mode");
	assert_int_equal(xr_manifest_find(&m, "a.txt")->mtime_nsec, 5);
	assert_int_equal(xr_manifest_find(&m, "dir/sub")->mode, 0711);
	assert_non_null(xr_manifest_find(&m, "dir/sub/more/m"));
	/* delete a file */
	op_delete(&t, "with space");
	check_round(&t, &m, "delete file");
	assert_null(xr_manifest_find(&m, "with space"));
	/* delete a directory with contents */
	op_delete(&t, "dir/sub");
	check_round(&t, &m, "delete dir");
	assert_null(xr_manifest_find(&m, "dir/sub/more/m"));
	/* a directory replaced by a file, and the other way round */
	op_make_file(&t, "empty");
	check_round(&t, &m, "dir to file");
	assert_int_equal(xr_manifest_find(&m, "empty")->type, XR_FT_REG);
	op_make_dir(&t, "a.txt");
	check_round(&t, &m, "file to dir");
	assert_int_equal(xr_manifest_find(&m, "a.txt")->type, XR_FT_DIR);
	/* a new nested directory */
	assert_int_equal(mkdirat(t.dfd, "n1", 0755), 0);
	assert_int_equal(mkdirat(t.dfd, "n1/n2", 0700), 0);
	mkfile(t.dfd, "n1/n2/f", "f", 0644, 1600000020);
	report(&t, "n1");
	report_below(&t, "n1");
	check_round(&t, &m, "new nested dir");
	assert_non_null(xr_manifest_find(&m, "n1/n2/f"));
	/* only the top of a new tree reported: it is a subtree item, which is enough */
	assert_int_equal(mkdirat(t.dfd, "n3", 0755), 0);
	assert_int_equal(mkdirat(t.dfd, "n3/n4", 0700), 0);
	mkfile(t.dfd, "n3/n4/g", "g", 0644, 1600000021);
	report(&t, "n3");
	check_round(&t, &m, "new nested dir, top reported");
	/* a directory moved, into another one */
	op_move(&t, "n1", "dir/moved");
	check_round(&t, &m, "move dir");
	assert_null(xr_manifest_find(&m, "n1/n2/f"));
	assert_non_null(xr_manifest_find(&m, "dir/moved/n2/f"));
	/* moved out of the tree */
	op_move_out(&t, "dir/moved");
	check_round(&t, &m, "move out");
	assert_null(xr_manifest_find(&m, "dir/moved"));
	/* a directory moved away and a file put in its place: only its name reported */
	put_dir(&t, "dir/gone", 2);
	mkfile(t.dfd, "dir/gone/keep", "k", 0644, 1600000030);
	report(&t, "dir/gone");
	report_below(&t, "dir/gone");
	check_round(&t, &m, "new dir");
	op_move_out(&t, "dir/gone");
	mkfile(t.dfd, "dir/gone", "now a file", 0644, 1600000031);
	report(&t, "dir/gone");
	check_round(&t, &m, "dir moved away, file in its place");
	assert_null(xr_manifest_find(&m, "dir/gone/keep"));
	/* a symlink replaced by a directory, a fifo by a file */
	op_make_dir(&t, "link");
	op_make_file(&t, "fifo");
	check_round(&t, &m, "link and fifo replaced");
	/* the root's own attributes */
	assert_int_equal(fchmodat(t.dfd, ".", 0701, 0), 0);
	report(&t, ".");
	check_round(&t, &m, "root mode");
	assert_int_equal(xr_manifest_find(&m, ".")->mode, 0701);
	assert_int_equal(fchmodat(t.dfd, ".", 0700, 0), 0);
	xr_manifest_free(&m);
	mut_done(&t);
}

/* Picks a random entry of m whose type is in mask (1 << type), not "."; NULL if none. */
static const char *pick(const struct xr_manifest *m, unsigned mask, uint64_t *seed)
{
	size_t i, start = rnd(seed, (unsigned)m->n);

	for (i = 0; i < m->n; i++) {
		const struct xr_entry *e = &m->e[(start + i) % m->n];

		if (strcmp(e->path, ".") && (mask & (1u << e->type)))
			return e->path;
	}
	return NULL;
}

/* A new, absent path below a random directory of m (up to 4 levels); NULL if none. */
static const char *fresh_path(struct mut *t, const struct xr_manifest *m, char *buf,
			      size_t len)
{
	static const char *names[] = {"a", "b", "a.b", "c d", "a-b", "x", "x y"};
	const char *dir;
	struct stat st;
	int tries;

	for (tries = 0; tries < 20; tries++) {
		size_t depth = 0;

		dir = rnd(&t->seed, 4) == 0 ? "." : pick(m, 1u << XR_FT_DIR, &t->seed);
		if (!dir)
			dir = ".";
		for (const char *c = dir; *c; c++)
			depth += *c == '/';
		if (depth >= 3)
			continue;
		if (strcmp(dir, ".") == 0)
			snprintf(buf, len, "%s", names[rnd(&t->seed, 7)]);
		else
			snprintf(buf, len, "%s/%s", dir, names[rnd(&t->seed, 7)]);
		if (fstatat(t->dfd, buf, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return buf;
	}
	return NULL;
}

/* One random change to the tree, reported as the watcher would. */
static void random_op(struct mut *t)
{
	const unsigned any = (1u << XR_FT_REG) | (1u << XR_FT_DIR) | (1u << XR_FT_LINK) |
			     (1u << XR_FT_FIFO);
	struct xr_manifest cur;
	char nb[XR_PATH_MAX], pb[XR_PATH_MAX];
	const char *p, *n;
	unsigned op = rnd(&t->seed, 15);

	now_walk(t, &cur);
	if (cur.n < 50 && (op == 3 || op == 4 || op == 10))
		op = 7;	/* keep the tree from withering away */
	switch (op) {
	case 0:		/* modify a file */
	case 1:
		p = pick(&cur, 1u << XR_FT_REG, &t->seed);
		if (p) {
			put_file(t, p);
			report(t, p);
		}
		break;
	case 2:		/* mode of anything but a link */
		p = rnd(&t->seed, 8) ? pick(&cur, any & ~(1u << XR_FT_LINK), &t->seed) : ".";
		if (p) {
			bool dir = strcmp(p, ".") == 0 ||
				   xr_manifest_find(&cur, p)->type == XR_FT_DIR;

			assert_int_equal(fchmodat(t->dfd, p, dir ? 0700 | rnd(&t->seed, 0100)
								 : 0600 | rnd(&t->seed, 0100), 0),
					 0);
			report(t, p);
		}
		break;
	case 3:		/* delete a file, link or fifo */
		p = pick(&cur, any & ~(1u << XR_FT_DIR), &t->seed);
		if (p)
			op_delete(t, p);
		break;
	case 4:		/* remove a directory with contents, or move it away */
		p = pick(&cur, 1u << XR_FT_DIR, &t->seed);
		if (p && rnd(&t->seed, 2)) {
			op_delete(t, p);
		} else if (p) {
			snprintf(pb, sizeof(pb), "%s", p);
			op_move_out(t, pb);
		}
		break;
	case 5:		/* something replaced by a file */
		p = pick(&cur, any, &t->seed);
		if (p)
			op_make_file(t, p);
		break;
	case 6:		/* something replaced by a directory with contents */
		p = pick(&cur, any, &t->seed);
		if (p && vacated_ok(t, p))
			op_make_dir(t, p);
		break;
	case 7:		/* a new file, link or nested directory */
	case 12:
	case 13:
		n = fresh_path(t, &cur, nb, sizeof(nb));
		if (!n || !vacated_ok(t, n))
			break;
		if (rnd(&t->seed, 3) == 0) {
			assert_int_equal(symlinkat("some/target", t->dfd, n), 0);
			report(t, n);
		} else if (rnd(&t->seed, 2)) {
			op_make_file(t, n);
		} else {
			op_make_dir(t, n);
		}
		break;
	case 8:		/* move anything somewhere else in the tree */
	case 9:
		p = pick(&cur, any, &t->seed);
		n = fresh_path(t, &cur, nb, sizeof(nb));
		if (!p || !n || !vacated_ok(t, n) || strcmp(p, n) == 0 || is_below(n, p))
			break;
		snprintf(pb, sizeof(pb), "%s", p);
		op_move(t, pb, n);
		break;
	case 10:	/* move something out of the tree */
		p = pick(&cur, any, &t->seed);
		if (p) {
			snprintf(pb, sizeof(pb), "%s", p);
			op_move_out(t, pb);
		}
		break;
	default:	/* a fifo (11, 14) */
		n = fresh_path(t, &cur, nb, sizeof(nb));
		if (n) {
			assert_int_equal(mkfifoat(t->dfd, n, 0600), 0);
			report(t, n);
		}
		break;
	}
	xr_manifest_free(&cur);
}

/*
 * The important one: rounds of random changes, each round's reports turned
 * into a scope as the sender does; after the splice the list must equal a
 * fresh walk of the tree, entry by entry.  Some rounds also report paths that
 * did not change (a superset must not hurt).
 */
static void test_splice_random(void **state)
{
	struct xr_manifest m;
	struct mut t;
	char what[64];
	int round, k, ops = 0;

	(void)state;
	mut_init(&t, 0x9e3779b97f4a7c15ull);
	build_tree(t.dfd);
	for (k = 0; k < 6; k++) {
		char p[8];

		snprintf(p, sizeof(p), "t%d", k);
		put_dir(&t, p, 2);
	}
	now_walk(&t, &m);
	for (round = 0; round < 25; round++) {
		int n = 1 + (int)rnd(&t.seed, 25);

		for (k = 0; k < n; k++)
			random_op(&t);
		ops += n;
		if (round % 3 == 0) {
			struct xr_manifest cur;

			now_walk(&t, &cur);
			for (k = 0; k < 5; k++)
				report(&t, cur.e[rnd(&t.seed, (unsigned)cur.n)].path);
			report(&t, "not/there");
			xr_manifest_free(&cur);
		}
		snprintf(what, sizeof(what), "round %d (%zu reports)", round, t.nrep);
		check_round(&t, &m, what);
	}
	assert_true(ops >= 250);
	if (m.n < 20)
		fail_msg("the tree shrank to %zu entries: a weak test", m.n);
	xr_manifest_free(&m);
	mut_done(&t);
}

/*
 * A directory swapped for another one in one batch (mv d d.old; mv d.new d,
 * a common way to deploy a configuration): the watcher reports d, d.old,
 * d.new and what is now below d and d.old, but not d's old contents, which
 * moved.  d was a directory before and is one now, so the sender makes it a
 * non-subtree item: d/only-old stays in the list (and on the receiver).
 */
static void test_splice_dir_swap(void **state)
{
	struct xr_manifest m;
	struct mut t;

	(void)state;
	mut_init(&t, 2);
	assert_int_equal(mkdirat(t.dfd, "d", 0755), 0);
	mkfile(t.dfd, "d/common", "old", 0644, 1600000000);
	mkfile(t.dfd, "d/only-old", "old", 0644, 1600000000);
	assert_int_equal(mkdirat(t.dfd, "d.new", 0755), 0);
	mkfile(t.dfd, "d.new/common", "new!", 0644, 1600000001);
	now_walk(&t, &m);
	op_move(&t, "d", "d.old");
	op_move(&t, "d.new", "d");
	check_round(&t, &m, "swapped directory");
	assert_null(xr_manifest_find(&m, "d/only-old"));
	xr_manifest_free(&m);
	mut_done(&t);
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
	    cmocka_unit_test(test_scope_covers),
	    cmocka_unit_test(test_scope_normalize),
	    cmocka_unit_test(test_scope_normalize_random),
	    cmocka_unit_test(test_walk_scope_items),
	    cmocka_unit_test(test_walk_scope_symlinked_parent),
	    cmocka_unit_test(test_walk_scope_filters),
	    cmocka_unit_test(test_walk_scope_prefix),
	    cmocka_unit_test(test_walk_scope_not_recursive),
	    cmocka_unit_test(test_walk_scope_random),
	    cmocka_unit_test(test_splice_rules),
	    cmocka_unit_test(test_splice_mutations),
	    cmocka_unit_test(test_splice_random),
	    cmocka_unit_test(test_splice_dir_swap),
	};

	xr_log_init(0, "");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

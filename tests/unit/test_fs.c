/* test_fs.c - path confinement (openat2 and the component walk) and metadata. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/fs.h"
#include "xr/manifest.h"
#include "xr/meta.h"

struct fx {
	char root[64];		/* the confined tree */
	char outside[64];	/* a directory symlinks point to */
	int rootfd;
};

/* nftw callback removing one entry. */
static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Removes a directory tree (test cleanup, independent of the code under test). */
static void rm_rf(const char *p)
{
	nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes a file at dir/name with content s. */
static void put_file(const char *dir, const char *name, const char *s)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

/* Returns the content of dir/name (static buffer) or "" when unreadable. */
static const char *get_file(const char *dir, const char *name)
{
	static char buf[256];
	char p[512];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	buf[0] = '\0';
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return buf;
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

/*
 * Builds root/{a/b/, f, d/, link -> outside, d/up -> .., a/b/deep -> outside,
 * leaf -> outside/secret}.
 */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char p[512];

	assert_non_null(f);
	strcpy(f->root, "/tmp/xr-fs-root.XXXXXX");
	strcpy(f->outside, "/tmp/xr-fs-out.XXXXXX");
	assert_non_null(mkdtemp(f->root));
	assert_non_null(mkdtemp(f->outside));
	put_file(f->outside, "secret", "secret\n");
	snprintf(p, sizeof(p), "%s/a", f->root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/a/b", f->root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/d", f->root);
	assert_int_equal(mkdir(p, 0755), 0);
	put_file(f->root, "f", "file\n");
	snprintf(p, sizeof(p), "%s/link", f->root);
	assert_int_equal(symlink(f->outside, p), 0);
	snprintf(p, sizeof(p), "%s/d/up", f->root);
	assert_int_equal(symlink("..", p), 0);
	snprintf(p, sizeof(p), "%s/a/b/deep", f->root);
	assert_int_equal(symlink(f->outside, p), 0);
	snprintf(p, sizeof(p), "%s/leaf", f->root);
	snprintf(p + 256, 256, "%s/secret", f->outside);
	assert_int_equal(symlink(p + 256, p), 0);
	f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY);
	assert_true(f->rootfd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	close(f->rootfd);
	rm_rf(f->root);
	rm_rf(f->outside);
	free(f);
	unsetenv("XR_FS_NO_OPENAT2");
	return 0;
}

/* Names that are not plain relative paths are refused before any lookup. */
static void test_refuses_bad_names(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"../x", "..", "/etc/passwd", "a/../b", "", "a//b", "a/", "./a", "a/./b", "a/..",
	};
	char longname[300], longpath[XR_PATH_MAX + 10];
	const char *leaf;
	int dfd;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dfd = 12345;
		assert_int_equal(xr_fs_open_parent(f->rootfd, bad[i], &dfd, &leaf), XR_EUNSAFE);
		assert_int_equal(dfd, -1);
		assert_true(xr_fs_open(f->rootfd, bad[i], O_RDONLY, 0) < 0);
	}
	memset(longname, 'n', 256);
	longname[256] = '\0';
	assert_int_equal(xr_fs_open_parent(f->rootfd, longname, &dfd, &leaf), XR_EUNSAFE);
	longname[255] = '\0';	/* 255 bytes is allowed, the lookup itself then fails */
	assert_int_equal(xr_fs_open_parent(f->rootfd, longname, &dfd, &leaf), 0);
	close(dfd);
	for (size_t i = 0; i < sizeof(longpath) - 1; i++)
		longpath[i] = (i % 2) ? '/' : 'x';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(xr_fs_open_parent(f->rootfd, longpath, &dfd, &leaf), XR_EUNSAFE);
}

/* Parent lookup, missing parents and file parents; run for both resolvers. */
static void check_resolution(struct fx *f)
{
	struct stat a, b;
	const char *leaf;
	char p[512];
	int dfd;

	assert_int_equal(xr_fs_open_parent(f->rootfd, "a/b/c", &dfd, &leaf), 0);
	assert_string_equal(leaf, "c");
	snprintf(p, sizeof(p), "%s/a/b", f->root);
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(fstat(dfd, &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	close(dfd);

	assert_int_equal(xr_fs_open_parent(f->rootfd, "top", &dfd, &leaf), 0);
	assert_string_equal(leaf, "top");
	assert_int_equal(fstat(dfd, &b), 0);
	assert_int_equal(stat(f->root, &a), 0);
	assert_true(a.st_ino == b.st_ino);
	close(dfd);

	assert_int_equal(xr_fs_open_parent(f->rootfd, ".", &dfd, &leaf), 0);
	assert_string_equal(leaf, ".");
	close(dfd);

	assert_int_equal(xr_fs_open_parent(f->rootfd, "nope/x", &dfd, &leaf), XR_EFILEIO);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(xr_fs_open_parent(f->rootfd, "f/x", &dfd, &leaf), XR_EFILEIO);
	assert_int_equal(errno, ENOTDIR);

	assert_int_equal(xr_fs_lstat(f->rootfd, "a/b", &a), 0);
	assert_true(S_ISDIR(a.st_mode));
	assert_int_equal(xr_fs_lstat(f->rootfd, "a/nope", &a), XR_EVANISHED);
	assert_int_equal(xr_fs_lstat(f->rootfd, "nope/x", &a), XR_EVANISHED);
	assert_int_equal(xr_fs_lstat(f->rootfd, ".", &a), 0);
	assert_true(S_ISDIR(a.st_mode));

	dfd = xr_fs_open(f->rootfd, "f", O_RDONLY, 0);
	assert_true(dfd >= 0);
	close(dfd);
	dfd = xr_fs_open(f->rootfd, "a/new", O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(dfd >= 0);
	close(dfd);
	snprintf(p, sizeof(p), "%s/a/new", f->root);
	assert_int_equal(unlink(p), 0);
}

/* A symlink anywhere in the parent chain is refused, even one pointing inside. */
static void check_symlinked_parents(struct fx *f)
{
	static const char *const via_link[] = {
		"link/secret", "link/x/y", "d/up/f", "d/up/a/b", "a/b/deep/secret", "leaf/x",
	};
	struct stat st;
	const char *leaf;
	char p[512];
	int dfd, fd;

	for (size_t i = 0; i < sizeof(via_link) / sizeof(via_link[0]); i++) {
		dfd = 12345;
		assert_int_equal(xr_fs_open_parent(f->rootfd, via_link[i], &dfd, &leaf),
				 XR_EUNSAFE);
		assert_int_equal(dfd, -1);
		assert_int_equal(xr_fs_lstat(f->rootfd, via_link[i], &st), XR_EUNSAFE);
		fd = xr_fs_open(f->rootfd, via_link[i], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_int_equal(fd, XR_EUNSAFE);
		assert_int_equal(xr_fs_remove_tree(f->rootfd, via_link[i]), XR_EUNSAFE);
	}
	assert_string_equal(get_file(f->outside, "secret"), "secret\n");
	snprintf(p, sizeof(p), "%s/x", f->outside);
	assert_int_equal(access(p, F_OK), -1);

	/* the symlink as the leaf is not followed */
	assert_int_equal(xr_fs_lstat(f->rootfd, "leaf", &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(xr_fs_open(f->rootfd, "leaf", O_RDONLY, 0), XR_EUNSAFE);
	assert_int_equal(xr_fs_open(f->rootfd, "leaf", O_WRONLY | O_TRUNC, 0), XR_EUNSAFE);
	assert_int_equal(xr_fs_open(f->rootfd, "link", O_RDONLY | O_DIRECTORY, 0), XR_EUNSAFE);
	assert_string_equal(get_file(f->outside, "secret"), "secret\n");
}

static void test_openat2_resolution(void **state)
{
	assert_true(xr_fs_have_openat2());
	check_resolution(*state);
	check_symlinked_parents(*state);
}

/* The same guarantees from the O_NOFOLLOW component walk (kernels without openat2). */
static void test_walk_resolution(void **state)
{
	setenv("XR_FS_NO_OPENAT2", "1", 1);
	assert_false(xr_fs_have_openat2());
	check_resolution(*state);
	check_symlinked_parents(*state);
	unsetenv("XR_FS_NO_OPENAT2");
	assert_true(xr_fs_have_openat2());
}

/* remove_tree deletes a tree without following the symlinks inside it. */
static void test_remove_tree(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char p[512];

	snprintf(p, sizeof(p), "%s/t", f->root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/t/sub", f->root);
	assert_int_equal(mkdir(p, 0500), 0);
	put_file(p, "x", "x");
	snprintf(p, sizeof(p), "%s/t/sub/out", f->root);
	assert_int_equal(symlink(f->outside, p), 0);
	snprintf(p, sizeof(p), "%s/t/sec", f->root);
	snprintf(p + 256, 256, "%s/secret", f->outside);
	assert_int_equal(symlink(p + 256, p), 0);
	snprintf(p, sizeof(p), "%s/t/fifo", f->root);
	assert_int_equal(mkfifo(p, 0600), 0);

	assert_int_equal(xr_fs_remove_tree(f->rootfd, "t"), 0);
	assert_int_equal(xr_fs_lstat(f->rootfd, "t", &st), XR_EVANISHED);
	assert_string_equal(get_file(f->outside, "secret"), "secret\n");
	assert_int_equal(xr_fs_remove_tree(f->rootfd, "t"), 0);		/* missing: fine */
	assert_int_equal(xr_fs_remove_tree(f->rootfd, "nope/x"), 0);
	assert_int_equal(xr_fs_remove_tree(f->rootfd, "."), XR_EUNSAFE);
	/* a symlink leaf goes, its target stays */
	assert_int_equal(xr_fs_remove_tree(f->rootfd, "leaf"), 0);
	assert_int_equal(xr_fs_lstat(f->rootfd, "leaf", &st), XR_EVANISHED);
	assert_string_equal(get_file(f->outside, "secret"), "secret\n");
	assert_int_equal(xr_fs_remove_tree(f->rootfd, "a/b"), 0);
	assert_int_equal(xr_fs_lstat(f->rootfd, "a/b", &st), XR_EVANISHED);
	assert_int_equal(xr_fs_lstat(f->rootfd, "a", &st), 0);
}

static void test_write_all_fsync(void **state)
{
	struct fx *f = *state;
	char big[100000];
	struct stat st;
	int fd;

	memset(big, 'z', sizeof(big));
	fd = xr_fs_open(f->rootfd, "w", O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(xr_write_all(fd, big, sizeof(big)), 0);
	close(fd);
	assert_int_equal(xr_fs_lstat(f->rootfd, "w", &st), 0);
	assert_int_equal(st.st_size, (off_t)sizeof(big));
	assert_int_equal(xr_fsync_dir(f->rootfd), 0);
	fd = xr_fs_open(f->rootfd, "w", O_RDONLY, 0);
	assert_int_equal(xr_write_all(fd, "x", 1), XR_EFILEIO);	/* read-only fd */
	assert_int_equal(errno, EBADF);
	close(fd);
	assert_int_equal(xr_fsync_dir(-1), XR_EFILEIO);
}

/* --- metadata ------------------------------------------------------------ */

static struct xr_entry mk_entry(const char *path, uint8_t type, uint32_t mode, uint32_t uid,
				uint32_t gid, int64_t sec, uint32_t nsec)
{
	struct xr_entry e;

	memset(&e, 0, sizeof(e));
	e.path = (char *)path;
	e.type = type;
	e.mode = mode;
	e.uid = uid;
	e.gid = gid;
	e.mtime_sec = sec;
	e.mtime_nsec = nsec;
	return e;
}

/* As root: owner, group, setuid mode and nanosecond mtime all land. */
static void test_meta_root(void **state)
{
	struct fx *f = *state;
	struct xr_meta_opts o = {.perms = true, .times = true, .owner = true, .group = true,
				 .is_root = true};
	struct xr_entry e = mk_entry("m", XR_FT_REG, 04750, 1234, 5678, 1600000000, 123456789);
	struct stat st;
	int fd;

	if (geteuid() != 0)
		skip();
	fd = xr_fs_open(f->rootfd, "m", O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(xr_meta_differs(&st, &e, &o));
	assert_int_equal(xr_meta_apply_fd(fd, "m", &e, &o), 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_mode & 07777, 04750);	/* chown before chmod keeps setuid */
	assert_int_equal(st.st_mtim.tv_sec, 1600000000);
	assert_int_equal(st.st_mtim.tv_nsec, 123456789);
	assert_false(xr_meta_differs(&st, &e, &o));
	e.mode = 0640;
	assert_true(xr_meta_differs(&st, &e, &o));
	e.mode = 04750;
	e.mtime_nsec = 0;
	assert_true(xr_meta_differs(&st, &e, &o));
	e.mtime_nsec = 123456789;
	e.gid = 1;
	assert_true(xr_meta_differs(&st, &e, &o));
	o.group = false;
	assert_false(xr_meta_differs(&st, &e, &o));
}

/* Without -p a new file gets the sender's mode & ~umask and no special bits. */
static void test_meta_no_perms(void **state)
{
	struct fx *f = *state;
	struct xr_meta_opts o = {.times = true};
	struct xr_entry e = mk_entry("np", XR_FT_REG, 06775, 0, 0, 1500000000, 5);
	struct stat st;
	mode_t old;
	int fd;

	old = umask(027);
	fd = xr_fs_open(f->rootfd, "np", O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(xr_meta_apply_fd(fd, "np", &e, &o), 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	umask(old);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_mtim.tv_sec, 1500000000);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
	/* without -p the mode is no difference */
	e.mode = 0600;
	assert_false(xr_meta_differs(&st, &e, &o));
}

/* Symlinks: owner and time set on the link itself, never chmod, target untouched. */
static void test_meta_symlink(void **state)
{
	struct fx *f = *state;
	struct xr_meta_opts o = {.perms = true, .times = true, .owner = true, .group = true,
				 .is_root = geteuid() == 0};
	struct xr_entry e = mk_entry("leaf", XR_FT_LINK, 0600, 4321, 8765, 1400000000, 42);
	struct stat st, tgt_before, tgt_after;
	char p[512];

	if (!o.is_root) {
		e.uid = (uint32_t)geteuid();
		e.gid = (uint32_t)getegid();
	}
	snprintf(p, sizeof(p), "%s/secret", f->outside);
	assert_int_equal(stat(p, &tgt_before), 0);
	assert_int_equal(xr_meta_apply_at(f->rootfd, "leaf", "leaf", &e, &o), 0);
	assert_int_equal(fstatat(f->rootfd, "leaf", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_mtim.tv_sec, 1400000000);
	assert_int_equal(st.st_mtim.tv_nsec, 42);
	assert_int_equal(st.st_uid, e.uid);
	assert_int_equal(st.st_gid, e.gid);
	assert_int_equal(stat(p, &tgt_after), 0);
	assert_int_equal(tgt_after.st_mode, tgt_before.st_mode);
	assert_int_equal(tgt_after.st_uid, tgt_before.st_uid);
	assert_int_equal(tgt_after.st_mtim.tv_sec, tgt_before.st_mtim.tv_sec);
	assert_false(xr_meta_differs(&st, &e, &o));	/* link mode is never compared */

	/* a directory through apply_at */
	e = mk_entry("a", XR_FT_DIR, 0710, e.uid, e.gid, 1300000000, 7);
	assert_int_equal(xr_meta_apply_at(f->rootfd, "a", "a", &e, &o), 0);
	assert_int_equal(fstatat(f->rootfd, "a", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0710);
	assert_int_equal(st.st_mtim.tv_sec, 1300000000);
}

/*
 * As a non-root user (a child that drops to nobody with one extra group):
 * the owner stays the running user, the group is set only where the user is
 * a member, and neither case is an error.  Returns the number of failures
 * as the child's exit code.
 */
static int nonroot_child(const char *dir, gid_t member)
{
	struct xr_meta_opts o = {.perms = true, .times = true, .owner = true, .group = true};
	struct xr_entry e = mk_entry("x", XR_FT_REG, 0640, 0, (uint32_t)member, 1234567890, 9);
	struct stat st;
	int64_t uid, gid;
	int dfd, fd, bad = 0;
	gid_t groups[1] = {member};

	if (setgroups(1, groups) < 0 || setresgid(65534, 65534, 65534) < 0 ||
	    setresuid(65534, 65534, 65534) < 0)
		return 100;
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		return 101;
	xr_meta_target_ids(&o, &e, &uid, &gid);
	bad += uid != -1;
	bad += gid != (int64_t)member;
	fd = xr_fs_open(dfd, "member", O_WRONLY | O_CREAT | O_EXCL, 0600);
	bad += fd < 0;
	bad += xr_meta_apply_fd(fd, "member", &e, &o) != 0;
	bad += fstat(fd, &st) != 0;
	bad += st.st_uid != 65534 || st.st_gid != member || (st.st_mode & 07777) != 0640;
	bad += st.st_mtim.tv_sec != 1234567890 || st.st_mtim.tv_nsec != 9;
	bad += xr_meta_differs(&st, &e, &o);
	close(fd);

	e.gid = 5555;	/* not a member: left as created, no error */
	xr_meta_target_ids(&o, &e, &uid, &gid);
	bad += gid != -1;
	fd = xr_fs_open(dfd, "other", O_WRONLY | O_CREAT | O_EXCL, 0600);
	bad += fd < 0;
	bad += xr_meta_apply_fd(fd, "other", &e, &o) != 0;
	bad += fstat(fd, &st) != 0;
	bad += st.st_uid != 65534 || st.st_gid != 65534 || (st.st_mode & 07777) != 0640;
	bad += xr_meta_differs(&st, &e, &o);	/* nothing it could change */
	close(fd);
	close(dfd);
	return bad;
}

static void test_meta_nonroot(void **state)
{
	struct fx *f = *state;
	char p[512];
	pid_t pid;
	int status;

	if (geteuid() != 0)
		skip();	/* needs root to become another user */
	snprintf(p, sizeof(p), "%s/nr", f->root);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(chown(p, 65534, 65534), 0);
	assert_int_equal(chmod(f->root, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(nonroot_child(p, 4242));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Name mapping through the sender's tables; uid/gid 0 never mapped; --numeric-ids. */
static void test_meta_map_ids(void **state)
{
	struct passwd *pw = getpwuid(65534);
	struct group *gr = getgrgid(65534);
	struct xr_idname users[3], groups[2];
	struct xr_manifest m;
	struct xr_meta_opts o = {.owner = true, .group = true};
	struct xr_entry e;

	(void)state;
	if (!pw || !gr)
		skip();
	users[0] = (struct xr_idname){5000, pw->pw_name};
	users[1] = (struct xr_idname){6000, "xr-no-such-user-here"};
	users[2] = (struct xr_idname){0, pw->pw_name};
	groups[0] = (struct xr_idname){5001, gr->gr_name};
	groups[1] = (struct xr_idname){0, gr->gr_name};
	memset(&m, 0, sizeof(m));
	m.users = users;
	m.nusers = 3;
	m.groups = groups;
	m.ngroups = 2;

	e = mk_entry("x", XR_FT_REG, 0644, 5000, 5001, 0, 0);
	xr_meta_map_ids(&m, &o, &e);
	assert_int_equal(e.uid, 65534);
	assert_int_equal(e.gid, 65534);
	e = mk_entry("x", XR_FT_REG, 0644, 6000, 7000, 0, 0);
	xr_meta_map_ids(&m, &o, &e);
	assert_int_equal(e.uid, 6000);	/* unknown name here: numeric id kept */
	assert_int_equal(e.gid, 7000);	/* no name on the sender: kept */
	e = mk_entry("x", XR_FT_REG, 0644, 0, 0, 0, 0);
	xr_meta_map_ids(&m, &o, &e);
	assert_int_equal(e.uid, 0);
	assert_int_equal(e.gid, 0);
	o.numeric_ids = true;
	e = mk_entry("x", XR_FT_REG, 0644, 5000, 5001, 0, 0);
	xr_meta_map_ids(&m, &o, &e);
	assert_int_equal(e.uid, 5000);
	assert_int_equal(e.gid, 5001);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refuses_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_openat2_resolution, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_resolution, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_all_fsync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_no_perms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_nonroot, setup, teardown),
		cmocka_unit_test(test_meta_map_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_commit.c - staging, the journaled commit, recovery after a crash at
 * every fault point (killed and failing), journal integrity, locking.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "xr/commit.h"
#include "xr/err.h"
#include "xr/fs.h"
#include "xr/manifest.h"

#define T0 1500000000
#define T1 1600000000
#define T2 1700000000

struct cfx {
	char base[64];		/* temp dir holding everything below */
	char dest[128];		/* DEST under test */
	char trace[128];	/* a child's stderr (fault trace) */
	char *old_snap, *new_snap;	/* full snapshots of both states */
	char *old_content, *new_content;	/* "path H:hash" of regular files */
};

/* --- helpers: trees and snapshots ---------------------------------------- */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Removes a tree (cleanup, independent of the code under test). */
static void rm_rf(const char *p)
{
	nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates dir/rel with content and mode; returns 0 or -1. */
static int put(const char *dir, const char *rel, const char *content, mode_t mode)
{
	char p[1100];
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	n = write(fd, content, strlen(content));
	fchmod(fd, mode);
	close(fd);
	return n == (ssize_t)strlen(content) ? 0 : -1;
}

static int mkd(const char *dir, const char *rel, mode_t mode)
{
	char p[1100];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (mkdir(p, mode) < 0)
		return -1;
	return chmod(p, mode);
}

static int lnk(const char *dir, const char *rel, const char *target)
{
	char p[1100];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return symlink(target, p);
}

/* The nftw collector's state (nftw passes no user pointer). */
static struct {
	const char *root;
	size_t rootlen;
	char **lines;
	size_t n, cap;
	bool content_only;
} walk;

/* Hashes a regular file's content. */
static uint64_t hash_file(const char *p)
{
	char buf[4096];
	XXH64_state_t *st = XXH64_createState();
	uint64_t h;
	ssize_t n;
	int fd;

	XXH64_reset(st, 0);
	fd = open(p, O_RDONLY);
	if (fd >= 0) {
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			XXH64_update(st, buf, (size_t)n);
		close(fd);
	}
	h = XXH64_digest(st);
	XXH64_freeState(st);
	return fd < 0 ? 0 : h;
}

/* nftw callback: one line per entry (skipping the state dir). */
static int snap_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *rel = p[walk.rootlen] ? p + walk.rootlen + 1 : ".";
	char line[1024], extra[600] = "";
	ssize_t n;

	(void)flag;
	(void)ftw;
	if (strcmp(rel, XR_STATE_DIR) == 0)
		return FTW_SKIP_SUBTREE;
	if (S_ISREG(st->st_mode))
		snprintf(extra, sizeof(extra), "H:%016llx", (unsigned long long)hash_file(p));
	else if (S_ISLNK(st->st_mode)) {
		n = readlink(p, extra + 2, sizeof(extra) - 3);
		extra[0] = 'L';
		extra[1] = ':';
		extra[2 + (n > 0 ? n : 0)] = '\0';
	}
	if (walk.content_only) {
		if (!S_ISREG(st->st_mode))
			return FTW_CONTINUE;
		snprintf(line, sizeof(line), "%s %s", rel, extra);
	} else {
		snprintf(line, sizeof(line), "%s %06o %u %u %lld.%09ld %s", rel,
			 (unsigned)st->st_mode, (unsigned)st->st_uid, (unsigned)st->st_gid,
			 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, extra);
	}
	if (walk.n == walk.cap) {
		walk.cap = walk.cap ? walk.cap * 2 : 64;
		walk.lines = realloc(walk.lines, walk.cap * sizeof(*walk.lines));
	}
	walk.lines[walk.n++] = strdup(line);
	return FTW_CONTINUE;
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Describes the tree at root as sorted lines, each "\n"-terminated and the
 * whole starting with "\n" (so "\nLINE\n" finds a line).  content_only:
 * only "path H:hash" of regular files.  Returns a new string.
 */
static char *snapshot(const char *root, bool content_only)
{
	size_t len = 2;
	char *s;

	memset(&walk, 0, sizeof(walk));
	walk.root = root;
	walk.rootlen = strlen(root);
	walk.content_only = content_only;
	nftw(root, snap_cb, 16, FTW_PHYS | FTW_ACTIONRETVAL);
	qsort(walk.lines, walk.n, sizeof(*walk.lines), cmp_line);
	for (size_t i = 0; i < walk.n; i++)
		len += strlen(walk.lines[i]) + 1;
	s = malloc(len);
	strcpy(s, "\n");
	for (size_t i = 0; i < walk.n; i++) {
		strcat(s, walk.lines[i]);
		strcat(s, "\n");
		free(walk.lines[i]);
	}
	free(walk.lines);
	return s;
}

/* nftw callback giving every entry a fixed mtime derived from its path. */
static int settime_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *rel = p[walk.rootlen] ? p + walk.rootlen + 1 : ".";
	struct timespec ts[2];

	(void)st;
	(void)flag;
	(void)ftw;
	if (strcmp(rel, XR_STATE_DIR) == 0)
		return FTW_SKIP_SUBTREE;
	ts[0].tv_sec = T0;
	ts[0].tv_nsec = 0;
	ts[1].tv_sec = T0 + (time_t)(XXH32(rel, strlen(rel), 0) % 100000);
	ts[1].tv_nsec = (long)(XXH32(rel, strlen(rel), 1) % 1000000000);
	utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
	return FTW_CONTINUE;
}

/* Builds the old state of DEST (X-Road-like) and opens it once for the state dir. */
static void make_old(const char *dest)
{
	struct xr_dest d;

	rm_rf(dest);
	assert_int_equal(mkdir(dest, 0755), 0);
	assert_int_equal(mkd(dest, "conf.d", 0750), 0);
	assert_int_equal(put(dest, "conf.d/local.ini", "old local\n", 0640), 0);
	assert_int_equal(put(dest, "conf.d/node.ini", "node\n", 0640), 0);
	assert_int_equal(mkd(dest, "signer", 0750), 0);
	assert_int_equal(put(dest, "signer/keyconf.xml", "<keyconf old/>\n", 0640), 0);
	assert_int_equal(mkd(dest, "signer/softtoken", 0750), 0);
	assert_int_equal(put(dest, "signer/softtoken/key1.p12", "old key1\n", 0600), 0);
	assert_int_equal(put(dest, "gone.txt", "gone\n", 0644), 0);
	assert_int_equal(mkd(dest, "gonedir", 0755), 0);
	assert_int_equal(put(dest, "gonedir/a", "a\n", 0644), 0);
	assert_int_equal(put(dest, "f2d", "file becomes dir\n", 0644), 0);
	assert_int_equal(mkd(dest, "d2f", 0755), 0);
	assert_int_equal(put(dest, "d2f/x", "x\n", 0644), 0);
	assert_int_equal(lnk(dest, "l2f", "somewhere"), 0);
	assert_int_equal(put(dest, "f2l", "file becomes link\n", 0644), 0);
	assert_int_equal(lnk(dest, "link1", "target-old"), 0);
	assert_int_equal(lnk(dest, "link2", "same-target"), 0);
	assert_int_equal(put(dest, "metaonly.txt", "same\n", 0644), 0);
	assert_int_equal(mkd(dest, "d2l", 0755), 0);
	assert_int_equal(put(dest, "d2l/c", "c\n", 0644), 0);
	assert_int_equal(xr_dest_open(&d, dest, false, NULL), 0);
	xr_dest_close(&d);
	memset(&walk, 0, sizeof(walk));
	walk.rootlen = strlen(dest);
	nftw(dest, settime_cb, 16, FTW_PHYS | FTW_ACTIONRETVAL);
}

static struct xr_entry ent(const char *path, uint8_t type, uint32_t mode, int64_t mtime)
{
	struct xr_entry e;

	memset(&e, 0, sizeof(e));
	e.path = (char *)path;
	e.type = type;
	e.mode = mode;
	e.uid = (uint32_t)getuid();
	e.gid = (uint32_t)getgid();
	e.mtime_sec = mtime;
	e.mtime_nsec = 250;
	return e;
}

/* Stages one regular file; returns 0 or an xr_err. */
static int stage_file(struct xr_txn *t, const char *path, const char *content, uint32_t mode,
		      uint8_t old_type)
{
	struct xr_entry e = ent(path, XR_FT_REG, mode, T1);
	uint32_t id;
	int fd, rc;

	e.size = strlen(content);
	rc = xr_txn_stage_open(t, path, &fd, &id);
	if (rc < 0)
		return rc;
	rc = xr_write_all(fd, content, strlen(content));
	if (rc < 0) {
		xr_txn_stage_drop(t, id, fd);
		return rc;
	}
	return xr_txn_stage_done(t, id, fd, &e, old_type);
}

static int stage_link(struct xr_txn *t, const char *path, const char *target, uint8_t old_type)
{
	struct xr_entry e = ent(path, XR_FT_LINK, 0777, T1 + 5);

	e.link = (char *)target;
	return xr_txn_stage_special(t, &e, old_type);
}

static int add_dir(struct xr_txn *t, const char *path, uint32_t mode, int64_t mtime,
		   uint8_t old_type)
{
	struct xr_entry e = ent(path, XR_FT_DIR, mode, mtime);

	return xr_txn_mkdir(t, &e, old_type);
}

static struct xr_meta_opts all_opts(void)
{
	struct xr_meta_opts o = {.perms = true, .times = true, .keep_dir_times = true,
				 .owner = true, .group = true,
				 .is_root = geteuid() == 0, .numeric_ids = true};
	return o;
}

/*
 * The realistic change set: updates, creations, type changes both ways,
 * symlinks, a fifo, a meta-only change, deletions.  Runs without cmocka
 * asserts (also in forked children).  Returns 0 or the first xr_err.
 */
static int stage_changes(struct xr_txn *t)
{
	struct xr_entry e;
	uint32_t id;
	int fd, rc = 0;

	rc = rc ? rc : stage_file(t, "conf.d/local.ini", "new local\n", 0640, XR_FT_REG);
	rc = rc ? rc : stage_file(t, "conf.d/new.ini", "new ini\n", 0640, 0);
	rc = rc ? rc : stage_file(t, "signer/softtoken/key1.p12", "new key1\n", 0600, XR_FT_REG);
	rc = rc ? rc : stage_file(t, "signer/keyconf.xml", "<keyconf new/>\n", 0640, XR_FT_REG);
	rc = rc ? rc : stage_file(t, "signer/softtoken/key2.p12", "new key2\n", 0600, 0);
	rc = rc ? rc : add_dir(t, "newdir", 0750, T2, 0);
	rc = rc ? rc : add_dir(t, "newdir/sub", 0751, T2 + 1, 0);
	rc = rc ? rc : stage_file(t, "newdir/sub/file", "deep\n", 0644, 0);
	rc = rc ? rc : add_dir(t, "f2d", 0755, T2 + 2, XR_FT_REG);
	rc = rc ? rc : stage_file(t, "f2d/inner", "inner\n", 0644, 0);
	rc = rc ? rc : stage_file(t, "d2f", "dir became file\n", 0644, XR_FT_DIR);
	rc = rc ? rc : xr_txn_delete(t, "d2f/x", XR_FT_REG);
	rc = rc ? rc : stage_file(t, "l2f", "link became file\n", 0644, XR_FT_LINK);
	rc = rc ? rc : stage_link(t, "f2l", "target-f2l", XR_FT_REG);
	rc = rc ? rc : stage_link(t, "link1", "target-new", XR_FT_LINK);
	rc = rc ? rc : stage_link(t, "d2l", "target-d2l", XR_FT_DIR);
	rc = rc ? rc : xr_txn_delete(t, "d2l/c", XR_FT_REG);
	if (rc == 0) {
		e = ent("fifo", XR_FT_FIFO, 0640, T1 + 7);
		rc = xr_txn_stage_special(t, &e, 0);
	}
	if (rc == 0) {
		e = ent("metaonly.txt", XR_FT_REG, 0600, T2 + 3);
		rc = xr_txn_meta(t, &e);
	}
	if (rc == 0) {
		e = ent("link2", XR_FT_LINK, 0777, T2 + 4);
		e.link = (char *)"same-target";
		rc = xr_txn_meta(t, &e);
	}
	if (rc == 0) {
		/* a touched directory with the sender's attributes (as the receiver notes them) */
		e = ent("signer", XR_FT_DIR, 0751, T2 + 5);
		rc = xr_txn_meta(t, &e);
	}
	rc = rc ? rc : xr_txn_delete(t, "gone.txt", XR_FT_REG);
	rc = rc ? rc : xr_txn_delete(t, "gonedir/a", XR_FT_REG);
	rc = rc ? rc : xr_txn_delete(t, "gonedir", XR_FT_DIR);
	rc = rc ? rc : stage_file(t, "empty", "", 0644, 0);
	if (rc == 0 && (rc = xr_txn_stage_open(t, "dropped", &fd, &id)) == 0)
		xr_txn_stage_drop(t, id, fd);
	return rc;
}

static const char *const keyconf_last[] = {"signer/keyconf.xml", NULL};

/* Opens dest, stages the change set and commits it; returns 0 or an xr_err. */
static int run_changes(const char *dest, const char *const *commit_last)
{
	struct xr_meta_opts o = all_opts();
	struct xr_dest d;
	struct xr_txn *t;
	int rc;

	rc = xr_dest_open(&d, dest, false, NULL);
	if (rc < 0)
		return rc;
	rc = xr_txn_begin(&d, &o, &t);
	if (rc == 0) {
		rc = stage_changes(t);
		if (rc < 0)
			xr_txn_abort(t);
		else
			rc = xr_txn_commit(t, commit_last);
	}
	xr_dest_close(&d);
	return rc;
}

/*
 * Runs the change set in a child with the given fault settings (at == 0:
 * none), stderr to f->trace.  Returns the child's wait status.
 */
static int run_child(struct cfx *f, unsigned long at, const char *mode,
		     const char *const *commit_last)
{
	char num[32];
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen(f->trace, "w", stderr))
			_exit(98);
		setvbuf(stderr, NULL, _IONBF, 0);	/* the trace must survive _exit */
		setenv("XR_FAULT_TRACE", "1", 1);
		if (at) {
			snprintf(num, sizeof(num), "%lu", at);
			setenv("XR_FAULT_AT", num, 1);
		}
		if (mode)
			setenv("XR_FAULT_MODE", mode, 1);
		_exit(run_changes(f->dest, commit_last) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/* Reads a whole file into a new NUL-terminated buffer (*len without NUL). */
static char *slurp(const char *p, size_t *len)
{
	struct stat st;
	char *b;
	int fd = open(p, O_RDONLY);

	if (fd < 0)
		return NULL;
	fstat(fd, &st);
	b = calloc(1, (size_t)st.st_size + 1);
	if (read(fd, b, (size_t)st.st_size) != st.st_size) {
		free(b);
		b = NULL;
	}
	close(fd);
	if (len)
		*len = (size_t)st.st_size;
	return b;
}

/* Number of "fault-point" lines in the trace, and the 1-based number of step's first. */
static unsigned long trace_count(const char *trace, const char *step, unsigned long *step_at)
{
	char *s = slurp(trace, NULL), *line, *save = NULL;
	unsigned long n = 0, num;
	char name[128];

	if (step_at)
		*step_at = 0;
	assert_non_null(s);
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "fault-point %lu %127s", &num, name) != 2)
			continue;
		n = num;
		if (step && step_at && !*step_at && strcmp(name, step) == 0)
			*step_at = num;
	}
	free(s);
	return n;
}

/* Paths of the trace's "STEP path" lines for one step, in order, "\n"-joined. */
static char *trace_paths(const char *trace, const char *step)
{
	char *s = slurp(trace, NULL), *line, *save = NULL, *out;
	char name[128], path[512];
	unsigned long num;

	assert_non_null(s);
	out = calloc(1, strlen(s) + 2);
	strcpy(out, "\n");
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "fault-point %lu %127s %511s", &num, name, path) == 3 &&
		    strcmp(name, step) == 0) {
			strcat(out, path);
			strcat(out, "\n");
		}
	}
	free(s);
	return out;
}

/* Whether DEST's state dir has no journal, no journal.tmp and an empty stage. */
static bool state_clean(const char *dest)
{
	char p[512];
	struct dirent *de;
	DIR *dir;
	bool empty = true;

	snprintf(p, sizeof(p), "%s/%s/journal", dest, XR_STATE_DIR);
	if (access(p, F_OK) == 0)
		return false;
	snprintf(p, sizeof(p), "%s/%s/journal.tmp", dest, XR_STATE_DIR);
	if (access(p, F_OK) == 0)
		return false;
	snprintf(p, sizeof(p), "%s/%s/stage", dest, XR_STATE_DIR);
	dir = opendir(p);
	if (!dir)
		return false;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(dir);
	return empty;
}

static bool has_journal(const char *dest)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s/journal", dest, XR_STATE_DIR);
	return access(p, F_OK) == 0;
}

/* Every regular file now in DEST holds exactly its old or its new content. */
static void assert_not_torn(struct cfx *f)
{
	char *now = snapshot(f->dest, true), *line, *save = NULL, key[1100];

	for (line = strtok_r(now, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		snprintf(key, sizeof(key), "\n%s\n", line);
		if (!strstr(f->old_content, key) && !strstr(f->new_content, key))
			fail_msg("torn or foreign file in DEST: %s", line);
	}
	free(now);
}

/* --- fixtures ------------------------------------------------------------ */

static int setup(void **state)
{
	struct cfx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	/* TMPDIR=/dev/shm makes the many fsyncs of the crash loops cheap */
	snprintf(f->base, sizeof(f->base), "%s/xr-commit.XXXXXX",
		 tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(f->base))
		return -1;
	snprintf(f->dest, sizeof(f->dest), "%s/dest", f->base);
	snprintf(f->trace, sizeof(f->trace), "%s/trace", f->base);
	/* the reference new state: the change set applied without faults */
	make_old(f->dest);
	f->old_snap = snapshot(f->dest, false);
	f->old_content = snapshot(f->dest, true);
	assert_int_equal(run_changes(f->dest, keyconf_last), 0);
	f->new_snap = snapshot(f->dest, false);
	f->new_content = snapshot(f->dest, true);
	make_old(f->dest);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct cfx *f = *state;

	rm_rf(f->base);
	free(f->old_snap);
	free(f->new_snap);
	free(f->old_content);
	free(f->new_content);
	free(f);
	return 0;
}

/* --- tests ---------------------------------------------------------------- */

/* Expects one line of the snapshot for path to contain the given fragments. */
static void expect_entry(const char *snap, const char *path, const char *frag1, const char *frag2)
{
	char key[600], line[1200];
	const char *p, *end;

	snprintf(key, sizeof(key), "\n%s ", path);
	p = strstr(snap, key);
	if (!p)
		fail_msg("%s missing", path);
	end = strchr(p + 1, '\n');
	snprintf(line, sizeof(line), "%.*s", (int)(end - p - 1), p + 1);
	if (frag1 && !strstr(line, frag1))
		fail_msg("%s: want '%s' in '%s'", path, frag1, line);
	if (frag2 && !strstr(line, frag2))
		fail_msg("%s: want '%s' in '%s'", path, frag2, line);
}

static void expect_absent(const char *snap, const char *path)
{
	char key[600];

	snprintf(key, sizeof(key), "\n%s ", path);
	if (strstr(snap, key))
		fail_msg("%s should be gone", path);
}

/* Asserts that path has the same mtime ("sec.nsec") in snapshots a and b. */
static void assert_same_mtime(const char *a, const char *b, const char *path)
{
	char ma[64], mb[64], key[600];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", path);
	p = strstr(a, key);
	assert_non_null(p);
	assert_int_equal(sscanf(p + strlen(key), "%*o %*u %*u %63s", ma), 1);
	p = strstr(b, key);
	assert_non_null(p);
	assert_int_equal(sscanf(p + strlen(key), "%*o %*u %*u %63s", mb), 1);
	assert_string_equal(ma, mb);
}

/* The change set lands as specified: contents, types, modes, mtimes, deletions. */
static void test_commit_applies(void **state)
{
	struct cfx *f = *state;
	const char *s = f->new_snap;
	char buf[128];

	assert_true(state_clean(f->dest));
	assert_string_not_equal(f->old_snap, f->new_snap);
	expect_entry(s, "conf.d/local.ini", "100640", NULL);
	expect_entry(s, "conf.d/new.ini", "100640", NULL);
	expect_entry(s, "signer/keyconf.xml", "100640", "1600000000.000000250");
	expect_entry(s, "signer/softtoken/key2.p12", "100600", NULL);
	expect_entry(s, "newdir", "040750", "1700000000.000000250");
	expect_entry(s, "newdir/sub", "040751", "1700000001.000000250");
	expect_entry(s, "newdir/sub/file", "100644", NULL);
	expect_entry(s, "f2d", "040755", "1700000002.000000250");
	expect_entry(s, "f2d/inner", "100644", NULL);
	expect_entry(s, "d2f", "100644", NULL);
	expect_entry(s, "l2f", "100644", NULL);
	expect_entry(s, "f2l", "120777", "L:target-f2l");
	expect_entry(s, "link1", "120777", "L:target-new");
	expect_entry(s, "link1", "1600000005.000000250", NULL);
	expect_entry(s, "d2l", "120777", "L:target-d2l");
	expect_entry(s, "fifo", "010640", "1600000007.000000250");
	expect_entry(s, "metaonly.txt", "100600", "1700000003.000000250");
	expect_entry(s, "link2", "L:same-target", "1700000004.000000250");
	expect_entry(s, "signer", "040751", "1700000005.000000250");
	expect_entry(s, "empty", "100644", NULL);
	expect_absent(s, "gone.txt");
	expect_absent(s, "gonedir");
	expect_absent(s, "gonedir/a");
	expect_absent(s, "d2f/x");
	expect_absent(s, "d2l/c");
	expect_absent(s, "dropped");
	/* contents */
	assert_int_equal(put(f->base, "probe", "new local\n", 0644), 0);
	snprintf(buf, sizeof(buf), "%s/probe", f->base);
	snprintf(buf, sizeof(buf), "H:%016llx", (unsigned long long)hash_file(buf));
	expect_entry(f->new_content, "conf.d/local.ini", buf, NULL);
	expect_entry(s, "metaonly.txt", NULL, NULL);
	/* untouched entries and the mtimes of directories whose entries changed stay */
	assert_same_mtime(s, f->old_snap, "conf.d/node.ini");
	assert_same_mtime(s, f->old_snap, "conf.d");
	assert_same_mtime(s, f->old_snap, "signer/softtoken");
	assert_same_mtime(s, f->old_snap, ".");
}

/* Commit-last paths are renamed after all others; phases run in order. */
static void test_commit_order(void **state)
{
	static const char *const phases[] = {
		"apply-remove", "apply-mkdir", "apply-rename", "apply-delete", "apply-meta",
		"apply-fsync",
	};
	struct cfx *f = *state;
	char *renames, *metas, *all, *line, *save = NULL, *p, *q;
	int status;
	size_t phase = 0;

	status = run_child(f, 0, NULL, keyconf_last);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	renames = trace_paths(f->trace, "apply-rename");
	p = strstr(renames, "\nsigner/keyconf.xml\n");
	assert_non_null(p);
	assert_string_equal(p, "\nsigner/keyconf.xml\n");	/* the very last rename */
	assert_non_null(strstr(renames, "\nsigner/softtoken/key1.p12\n"));
	free(renames);

	metas = trace_paths(f->trace, "apply-meta");
	p = strstr(metas, "\nmetaonly.txt\n");
	q = strstr(metas, "\nnewdir\n");
	assert_true(p && q && p < q);	/* files before directories */
	p = strstr(metas, "\nnewdir/sub\n");
	assert_true(p && p < q);	/* deepest directory first */
	assert_non_null(strstr(metas, "\nconf.d\n"));	/* restored mtime of a touched dir */
	free(metas);

	/* phases never go backwards */
	all = slurp(f->trace, NULL);
	for (line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
			char key[64];

			snprintf(key, sizeof(key), " %s ", phases[i]);
			if (strstr(line, key)) {
				assert_true(i >= phase);
				phase = i;
			}
		}
	}
	assert_int_equal(phase, 5);
	free(all);

	/* without commit-last, plain path order puts keyconf.xml before softtoken/ */
	make_old(f->dest);
	status = run_child(f, 0, NULL, NULL);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	renames = trace_paths(f->trace, "apply-rename");
	p = strstr(renames, "\nsigner/keyconf.xml\n");
	q = strstr(renames, "\nsigner/softtoken/key1.p12\n");
	assert_true(p && q && p < q);
	free(renames);
	/* a last-component pattern works as rsync's */
	make_old(f->dest);
	{
		static const char *const bybase[] = {"keyconf.*", NULL};

		status = run_child(f, 0, NULL, bybase);
	}
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	renames = trace_paths(f->trace, "apply-rename");
	p = strstr(renames, "\nsigner/keyconf.xml\n");
	assert_non_null(p);
	assert_string_equal(p, "\nsigner/keyconf.xml\n");
	free(renames);
}

/* Abort: DEST untouched, stage empty. */
static void test_abort(void **state)
{
	struct cfx *f = *state;
	struct xr_meta_opts o = all_opts();
	struct xr_dest d;
	struct xr_txn *t;
	char *snap;

	assert_int_equal(xr_dest_open(&d, f->dest, false, NULL), 0);
	assert_int_equal(xr_txn_begin(&d, &o, &t), 0);
	assert_int_equal(stage_changes(t), 0);
	assert_true(xr_txn_count(t) > 20);
	assert_false(state_clean(f->dest));	/* staged files exist */
	xr_txn_abort(t);
	xr_dest_close(&d);
	assert_true(state_clean(f->dest));
	snap = snapshot(f->dest, false);
	assert_string_equal(snap, f->old_snap);
	free(snap);
}

/*
 * Crash at every fault point of the change set; after each, DEST holds
 * only old or new file contents, and recovery yields exactly the old state
 * (crash before the commit point) or exactly the new one (after).
 */
static void crash_loop(struct cfx *f, const char *mode)
{
	unsigned long total, n, commit_at, before = 0, after = 0;
	int status, recovered;
	struct xr_dest d;
	char *snap;
	bool committed, journal;

	make_old(f->dest);
	status = run_child(f, 0, NULL, keyconf_last);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	total = trace_count(f->trace, "journal-renamed", &commit_at);
	assert_true(total > 40);
	assert_true(commit_at > 1 && commit_at < total);
	for (n = 1; n <= total + 1; n++) {
		make_old(f->dest);
		status = run_child(f, n, mode, keyconf_last);
		assert_true(WIFEXITED(status));
		if (n > total) {
			assert_int_equal(WEXITSTATUS(status), 0);	/* no fault left to hit */
		} else if (strcmp(mode, "kill") == 0 && WEXITSTATUS(status) != 99) {
			fail_msg("fault %lu of %lu: child exited %d, not killed", n, total,
				 WEXITSTATUS(status));
		}
		committed = n <= total ? n >= commit_at : true;
		journal = has_journal(f->dest);
		assert_not_torn(f);
		if (journal)
			assert_true(committed);
		if (!committed && strcmp(mode, "fail") == 0) {
			/* a failed commit before its commit point cleans up at once */
			assert_int_equal(WEXITSTATUS(status), 1);
			assert_true(state_clean(f->dest));
			snap = snapshot(f->dest, false);
			assert_string_equal(snap, f->old_snap);
			free(snap);
		}
		recovered = -1;
		assert_int_equal(xr_dest_open(&d, f->dest, false, &recovered), 0);
		assert_int_equal(recovered, journal ? 1 : 0);
		xr_dest_close(&d);
		assert_true(state_clean(f->dest));
		snap = snapshot(f->dest, false);
		if (committed) {
			if (strcmp(snap, f->new_snap) != 0)
				fail_msg("fault %lu (%s): not the new state after recovery:\n%s\n"
					 "want:\n%s", n, mode, snap, f->new_snap);
			after++;
		} else {
			if (strcmp(snap, f->old_snap) != 0)
				fail_msg("fault %lu (%s): not the old state after recovery:\n%s", n,
					 mode, snap);
			before++;
		}
		free(snap);
	}
	assert_true(before >= 10 && after >= 10);
	print_message("%s: %lu fault points, %lu before and %lu after the commit point\n", mode,
		      total, before, after - 1);
}

/*
 * Recovery itself interrupted at each of its fault points: DEST is left
 * right after the commit point (journal written, nothing applied), a child
 * replays it and is killed at step N, and the next open still converges to
 * exactly the new state.
 */
static void test_crash_in_recovery(void **state)
{
	struct cfx *f = *state;
	unsigned long at, n, total = 0;
	int status, recovered;
	struct xr_dest d;
	char num[32], *snap;
	bool journal;
	pid_t pid;

	make_old(f->dest);
	status = run_child(f, 0, NULL, keyconf_last);
	trace_count(f->trace, "journal-renamed", &at);
	assert_true(at > 0);
	for (n = 1;; n++) {
		make_old(f->dest);
		status = run_child(f, at, "kill", keyconf_last);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 99);
		assert_true(has_journal(f->dest));
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (!freopen(f->trace, "w", stderr))
				_exit(98);
			snprintf(num, sizeof(num), "%lu", n);
			setenv("XR_FAULT_AT", num, 1);
			_exit(xr_dest_open(&d, f->dest, false, NULL) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_not_torn(f);
		journal = has_journal(f->dest);
		recovered = -1;
		assert_int_equal(xr_dest_open(&d, f->dest, false, &recovered), 0);
		xr_dest_close(&d);
		assert_int_equal(recovered, journal ? 1 : 0);
		assert_true(state_clean(f->dest));
		snap = snapshot(f->dest, false);
		if (strcmp(snap, f->new_snap) != 0)
			fail_msg("recovery killed at %lu: not the new state:\n%s", n, snap);
		free(snap);
		if (WEXITSTATUS(status) == 0)
			break;	/* the replay ran to its end: every point was covered */
		assert_int_equal(WEXITSTATUS(status), 99);
		total++;
	}
	assert_true(total > 40);
	print_message("recovery: killed at each of its %lu fault points\n", total);
}

static void test_crash_kill(void **state)
{
	crash_loop(*state, "kill");
}

static void test_crash_fail(void **state)
{
	crash_loop(*state, "fail");
}

/* Writes buf to path. */
static void spit(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/*
 * A real journal (the child killed right after the commit point): it
 * parses to the planned operations, any corruption is refused without
 * applying anything, and the intact journal replays to the new state.
 */
static void test_journal(void **state)
{
	struct cfx *f = *state;
	struct xr_journal_op *ops;
	unsigned long at;
	size_t len, n, last_n = 0, i;
	char jpath[256], *img, *bad, *snap;
	const char *out;
	int status, rc, recovered;
	struct xr_dest d;
	char phase_seen[8] = {0};
	const char *order = "RMNDAF";

	make_old(f->dest);
	status = run_child(f, 0, NULL, keyconf_last);
	trace_count(f->trace, "journal-renamed", &at);
	assert_true(at > 0);
	make_old(f->dest);
	status = run_child(f, at, "kill", keyconf_last);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 99);
	snprintf(jpath, sizeof(jpath), "%s/%s/journal", f->dest, XR_STATE_DIR);
	img = slurp(jpath, &len);
	assert_non_null(img);
	out = getenv("XR_TEST_JOURNAL_OUT");	/* to seed the fuzz corpus */
	if (out)
		spit(out, img, len);

	assert_int_equal(xr_journal_parse(img, len, &ops, &n), 0);
	assert_true(n > 30);
	for (i = 0; i < n; i++) {
		const char *pos = strchr(order, ops[i].op);

		assert_non_null(pos);
		assert_true(strlen(phase_seen) == 0 ||
			    strchr(order, phase_seen[strlen(phase_seen) - 1]) <= pos);
		if (!strchr(phase_seen, ops[i].op) && strlen(phase_seen) < 6)
			phase_seen[strlen(phase_seen)] = (char)ops[i].op;
		if (ops[i].op == 'N')
			last_n = i;
		if (ops[i].op == 'D') {
			/* deletions inside replaced directories were dropped */
			assert_string_not_equal(ops[i].path, "d2f/x");
			assert_string_not_equal(ops[i].path, "d2l/c");
		}
		if (ops[i].op == 'N' && strcmp(ops[i].path, "link1") == 0) {
			assert_int_equal(ops[i].type, XR_FT_LINK);
			assert_string_equal(ops[i].link, "target-new");
		}
		if (ops[i].op == 'A' && strcmp(ops[i].path, "conf.d") == 0)
			assert_int_equal(ops[i].flags, XR_JF_TIMES);
	}
	assert_string_equal(phase_seen, "RMNDAF");
	assert_string_equal(ops[last_n].path, "signer/keyconf.xml");
	xr_journal_ops_free(ops, n);

	/* every single flipped byte and every truncation is detected */
	bad = malloc(len);
	for (i = 0; i < len; i++) {
		memcpy(bad, img, len);
		bad[i] ^= 0x20;
		ops = (void *)1;
		assert_int_equal(xr_journal_parse(bad, len, &ops, &n), XR_ESTREAM);
		assert_null(ops);
	}
	for (i = 0; i < len; i++)
		assert_int_equal(xr_journal_parse(img, i, &ops, &n), XR_ESTREAM);
	/*
	 * one record more announced than present, with a valid header checksum:
	 * the names of the records present must not overrun the block sized for
	 * the announced count (ASan sees an overrun), and the journal is refused
	 */
	memcpy(bad, img, len);
	{
		uint32_t count = (uint32_t)(unsigned char)bad[8] |
				 (uint32_t)(unsigned char)bad[9] << 8 |
				 (uint32_t)(unsigned char)bad[10] << 16 |
				 (uint32_t)(unsigned char)bad[11] << 24;
		uint64_t sum;

		count++;
		for (int k = 0; k < 4; k++)
			bad[8 + k] = (char)(count >> (8 * k));
		sum = XXH3_64bits(bad, 16);
		for (int k = 0; k < 8; k++)
			bad[16 + k] = (char)(sum >> (8 * k));
	}
	ops = (void *)1;
	assert_int_equal(xr_journal_parse(bad, len, &ops, &n), XR_ESTREAM);
	assert_null(ops);
	memcpy(bad, img, len);

	/* corrupt on disk: open refuses, nothing is applied, the journal stays */
	bad[len / 2] ^= 0x01;
	spit(jpath, bad, len);
	rc = xr_dest_open(&d, f->dest, false, &recovered);
	assert_int_equal(rc, XR_EFILEIO);
	assert_true(has_journal(f->dest));
	snap = snapshot(f->dest, false);
	assert_string_equal(snap, f->old_snap);
	free(snap);
	spit(jpath, img, len - 7);	/* truncated */
	assert_int_equal(xr_dest_open(&d, f->dest, false, &recovered), XR_EFILEIO);
	snap = snapshot(f->dest, false);
	assert_string_equal(snap, f->old_snap);
	free(snap);

	/* intact again: replayed to the new state */
	spit(jpath, img, len);
	assert_int_equal(xr_dest_open(&d, f->dest, false, &recovered), 0);
	assert_int_equal(recovered, 1);
	xr_dest_close(&d);
	assert_true(state_clean(f->dest));
	snap = snapshot(f->dest, false);
	assert_string_equal(snap, f->new_snap);
	free(snap);
	/* a replay of an already applied journal changes nothing */
	spit(jpath, img, len);
	assert_int_equal(xr_dest_open(&d, f->dest, false, &recovered), 0);
	assert_int_equal(recovered, 1);
	xr_dest_close(&d);
	snap = snapshot(f->dest, false);
	assert_string_equal(snap, f->new_snap);
	free(snap);
	free(bad);
	free(img);
}

/* Leftover staging and journal.tmp without a journal are removed by open. */
static void test_stale_stage(void **state)
{
	struct cfx *f = *state;
	struct xr_dest d;
	char p[512];
	int recovered = -1;
	char *snap;

	snprintf(p, sizeof(p), "%s/%s/stage", f->dest, XR_STATE_DIR);
	assert_int_equal(put(p, "0", "half written", 0600), 0);
	assert_int_equal(put(p, "17", "other", 0600), 0);
	assert_int_equal(lnk(p, "3", "/etc/passwd"), 0);
	snprintf(p, sizeof(p), "%s/%s", f->dest, XR_STATE_DIR);
	assert_int_equal(put(p, "journal.tmp", "garbage", 0600), 0);
	assert_false(state_clean(f->dest));
	assert_int_equal(xr_dest_open(&d, f->dest, false, &recovered), 0);
	assert_int_equal(recovered, 0);
	xr_dest_close(&d);
	assert_true(state_clean(f->dest));
	snap = snapshot(f->dest, false);
	assert_string_equal(snap, f->old_snap);
	free(snap);
}

/* Unsafe names are refused; a symlinked parent stops the commit before its commit point. */
static void test_unsafe(void **state)
{
	struct cfx *f = *state;
	struct xr_meta_opts o = all_opts();
	struct xr_dest d;
	struct xr_txn *t;
	struct xr_entry e = ent(".", XR_FT_DIR, 0755, T1);
	char out[128], p[256], *before, *after;
	uint32_t id;
	int fd;

	snprintf(out, sizeof(out), "%s/outside", f->base);
	assert_int_equal(mkdir(out, 0755), 0);
	assert_int_equal(lnk(f->dest, "evil", out), 0);
	before = snapshot(f->dest, false);
	assert_int_equal(xr_dest_open(&d, f->dest, false, NULL), 0);
	assert_int_equal(xr_txn_begin(&d, &o, &t), 0);
	assert_int_equal(xr_txn_stage_open(t, "../x", &fd, &id), XR_EUNSAFE);
	assert_int_equal(xr_txn_stage_open(t, "/etc/x", &fd, &id), XR_EUNSAFE);
	assert_int_equal(xr_txn_mkdir(t, &e, 0), XR_EUNSAFE);
	assert_int_equal(xr_txn_delete(t, "a/../../b", XR_FT_REG), XR_EUNSAFE);
	assert_int_equal(xr_txn_count(t), 0);
	assert_int_equal(stage_file(t, "evil/x", "pwned\n", 0644, 0), 0);
	assert_int_equal(stage_file(t, "ok", "fine\n", 0644, 0), 0);
	assert_int_equal(xr_txn_commit(t, NULL), XR_EUNSAFE);
	xr_dest_close(&d);
	snprintf(p, sizeof(p), "%s/x", out);
	assert_int_equal(access(p, F_OK), -1);
	assert_true(state_clean(f->dest));
	after = snapshot(f->dest, false);
	assert_string_equal(before, after);	/* "ok" was not applied either */
	free(after);

	/* a deletion through a symlinked directory is refused, the target stays */
	assert_int_equal(put(out, "keep", "keep\n", 0644), 0);
	assert_int_equal(xr_dest_open(&d, f->dest, false, NULL), 0);
	assert_int_equal(xr_txn_begin(&d, &o, &t), 0);
	assert_int_equal(xr_txn_delete(t, "evil/keep", XR_FT_REG), 0);
	assert_int_equal(xr_txn_commit(t, NULL), XR_EUNSAFE);
	xr_dest_close(&d);
	snprintf(p, sizeof(p), "%s/keep", out);
	assert_int_equal(access(p, F_OK), 0);
	assert_true(state_clean(f->dest));
	after = snapshot(f->dest, false);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/*
 * DEST changed behind the caller's back (a directory where a file goes, a
 * file where a directory goes): refused before the commit point.
 */
static void test_wrong_old_type(void **state)
{
	struct cfx *f = *state;
	struct xr_meta_opts o = all_opts();
	struct xr_dest d;
	struct xr_txn *t;
	char *snap;

	assert_int_equal(xr_dest_open(&d, f->dest, false, NULL), 0);
	assert_int_equal(xr_txn_begin(&d, &o, &t), 0);
	assert_int_equal(stage_file(t, "d2f", "x\n", 0644, 0), 0);	/* it is a dir */
	assert_int_equal(xr_txn_commit(t, NULL), XR_EFILEIO);
	assert_int_equal(xr_txn_begin(&d, &o, &t), 0);
	assert_int_equal(add_dir(t, "f2d", 0755, T2, 0), 0);	/* it is a file */
	assert_int_equal(xr_txn_commit(t, NULL), XR_EFILEIO);
	assert_int_equal(xr_txn_begin(&d, &o, &t), 0);
	assert_int_equal(add_dir(t, "l2f", 0755, T2, XR_FT_REG), 0);	/* a link, not a file */
	assert_int_equal(xr_txn_commit(t, NULL), XR_EFILEIO);
	xr_dest_close(&d);
	assert_true(state_clean(f->dest));
	snap = snapshot(f->dest, false);
	assert_string_equal(snap, f->old_snap);
	free(snap);
}

/* Without -p: updated files keep their mode, new ones get mode & ~umask. */
static void test_no_perms(void **state)
{
	struct cfx *f = *state;
	struct xr_meta_opts o = all_opts();
	struct xr_dest d;
	struct xr_txn *t;
	struct xr_entry e;
	struct stat st;
	char p[512];
	mode_t old;

	o.perms = false;
	assert_int_equal(chmod(f->dest, 02755), 0);	/* new dirs inherit setgid (Linux) */
	old = umask(027);
	assert_int_equal(xr_dest_open(&d, f->dest, false, NULL), 0);
	assert_int_equal(xr_txn_begin(&d, &o, &t), 0);
	assert_int_equal(stage_file(t, "conf.d/local.ini", "x\n", 0777, XR_FT_REG), 0);
	assert_int_equal(stage_file(t, "brandnew", "y\n", 06777, 0), 0);
	assert_int_equal(add_dir(t, "nd", 0777, T2, 0), 0);
	e = ent("metaonly.txt", XR_FT_REG, 0600, T2 + 9);
	assert_int_equal(xr_txn_meta(t, &e), 0);
	assert_int_equal(xr_txn_commit(t, NULL), 0);
	xr_dest_close(&d);
	umask(old);
	snprintf(p, sizeof(p), "%s/conf.d/local.ini", f->dest);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	snprintf(p, sizeof(p), "%s/brandnew", f->dest);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	snprintf(p, sizeof(p), "%s/nd", f->dest);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 02750);	/* rsync keeps an inherited setgid */
	assert_int_equal(st.st_mtim.tv_sec, T2);
	snprintf(p, sizeof(p), "%s/metaonly.txt", f->dest);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_mtim.tv_sec, T2 + 9);
}

/* A second open waits while another process holds the lock. */
static void test_lock(void **state)
{
	struct cfx *f = *state;
	struct timespec a, b;
	struct xr_dest d;
	int pfd[2], status;
	double waited;
	char c;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		if (xr_dest_open(&d, f->dest, false, NULL) < 0)
			_exit(1);
		if (write(pfd[1], "L", 1) != 1)
			_exit(2);
		usleep(800000);
		xr_dest_close(&d);
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);	/* the child holds the lock */
	close(pfd[0]);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(xr_dest_open(&d, f->dest, false, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	waited = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	assert_true(waited > 0.5);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	xr_dest_close(&d);
}

/* DEST is created (one level) when asked; a missing parent is an error. */
static void test_dest_create(void **state)
{
	struct cfx *f = *state;
	struct xr_dest d;
	struct stat st;
	char p[256];

	snprintf(p, sizeof(p), "%s/fresh", f->base);
	assert_int_equal(xr_dest_open(&d, p, false, NULL), XR_EFILEIO);
	assert_int_equal(xr_dest_open(&d, p, true, NULL), 0);
	xr_dest_close(&d);
	snprintf(p, sizeof(p), "%s/fresh/%s", f->base, XR_STATE_DIR);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(p, sizeof(p), "%s/no/such/dir", f->base);
	assert_int_equal(xr_dest_open(&d, p, true, NULL), XR_EFILEIO);
	/* a symlinked state dir is refused */
	snprintf(p, sizeof(p), "%s/sl", f->base);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(lnk(p, XR_STATE_DIR, f->base), 0);
	assert_int_equal(xr_dest_open(&d, p, false, NULL), XR_EFILEIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_applies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_stage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_perms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_old_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dest_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_fail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_in_recovery, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

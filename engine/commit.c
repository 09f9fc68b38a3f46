/*
 * commit.c - the destination: lock, staging, journaled all-or-nothing commit.
 *
 * The layout, the commit order and recovery are described in commit.h.
 * Notes on the implementation:
 *   - The journal is binary, little-endian:
 *       header  "XRJL" u16 version(1) u16 reserved(0) u32 count u32 reserved(0)
 *               u64 XXH3-64 of the 16 bytes before it
 *       record  u32 len, u64 XXH3-64 of the payload, payload[len]:
 *               u8 op, u8 type, u8 flags, u8 reserved(0), u32 stage_id,
 *               u32 mode, u32 uid, u32 gid, u32 mtime_nsec, u64 reserved,
 *               i64 mtime_sec, u64 reserved, u16 pathlen, u16 linklen,
 *               path, link
 *     (the two reserved fields are written 0 and ignored on read; size and
 *     rdev were recorded there once, and nothing applying a journal uses them)
 *     It holds the operations already in application order, so a replay
 *     simply runs them again.  Every record is checked on parse (checksum,
 *     lengths, path validity, op/type/flag ranges) and a journal that fails
 *     any check is refused as a whole, never applied in part.
 *   - Every operation is idempotent and guarded by a type check, so a replay
 *     from any point converges: a REMOVE or DELETE acts only while the entry
 *     has the recorded type, MKDIR accepts an existing directory, RENAME
 *     skips a staged name that is gone, META skips a missing entry.
 *   - META records carry their own XR_JF_* flags (which attributes, root or
 *     not), so a replay needs no options.  Without -p a META leaves the
 *     mode as it is, a new directory gets the sender's mode & ~umask (as
 *     rsync), an updated file keeps the mode of the file it replaces.
 *   - With -t and keep_dir_times, every existing directory whose entries
 *     change gets a META that restores its current mtime after the change
 *     (the receiver instead records the sender's mtime for directories in
 *     the transfer; one outside it, like DEST for "rsync src dst", takes
 *     the time of the change, as with rsync).
 *   - Fault points (XR_FAULTS builds) sit before and after every write,
 *     fsync, rename, unlink and mkdir and around each applied operation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include "xr/commit.h"
#include "xr/err.h"
#include "xr/filter.h"
#include "xr/fs.h"
#include "xr/log.h"

#define JOURNAL_NAME "journal"
#define JOURNAL_TMP "journal.tmp"
#define JOURNAL_MAGIC "XRJL"
#define JOURNAL_VERSION 1
#define JHDR_SIZE 24
#define JREC_HDR 12
#define JREC_FIXED 52
#define JREC_MAX (JREC_FIXED + 2 * XR_PATH_MAX)

/* Fuzz builds may skip checksums so that the fuzzer reaches the field checks. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define SKIP_CHECKSUMS 1
#else
#define SKIP_CHECKSUMS 0
#endif

/* A block of strings the commit makes itself (parent directories). */
struct strblock {
	struct strblock *next;
	size_t used, cap;
	char data[];
};

#define STRBLOCK_SIZE 8192u

struct xr_txn {
	struct xr_dest *d;
	struct xr_meta_opts mo;
	struct xr_journal_op *ops;	/* recorded, in call order; strings borrowed */
	size_t n, cap;
	struct strblock *strings;	/* the strings of ops that t made itself */
	uint32_t next_id;		/* next stage file name */
	uint32_t nfsynced;		/* staged files fsynced one by one */
	bool need_syncfs;		/* more were staged: one syncfs() before the journal */
};

/*
 * Up to this many staged files are fsynced one by one (a watch change set:
 * cheapest, touches nothing else); past it, a single syncfs() of DEST's
 * filesystem before the journal makes the rest durable at once - per-file
 * fsync of thousands of files costs an ext4 journal commit each.
 */
#define STAGE_FSYNC_MAX 16u

/* A 10,000-file commit holds every op at once: keep them small (see commit.h). */
_Static_assert(sizeof(struct xr_journal_op) <= 48, "journal op grew");

/* --- fault points ------------------------------------------------------ */

#ifdef XR_FAULTS
/*
 * Counts receiver filesystem steps while XR_FAULT_AT or XR_FAULT_TRACE is
 * set; XR_FAULT_AT=N kills the process (or, with XR_FAULT_MODE=fail, fails
 * with EIO) at the N-th.  Returns 0 or XR_EFILEIO with errno EIO.
 */
int xr_fault_point(const char *step)
{
	/* test-only, process-wide by design (see commit.h) */
	static unsigned long count;
	const char *at, *mode, *trace;
	unsigned long n;

	trace = getenv("XR_FAULT_TRACE");
	at = getenv("XR_FAULT_AT");
	if (trace && strcmp(trace, "1") != 0)
		trace = NULL;
	if (at && !*at)
		at = NULL;
	if (!trace && !at)
		return 0;	/* counting starts with the first step under test */
	count++;
	if (trace)
		fprintf(stderr, "fault-point %lu %s\n", count, step);
	if (!at)
		return 0;
	n = strtoul(at, NULL, 10);
	if (n != count)
		return 0;
	mode = getenv("XR_FAULT_MODE");
	if (!mode || !*mode || strcmp(mode, "kill") == 0)
		_exit(99);
	errno = EIO;
	return XR_EFILEIO;
}
#endif

/* A fault point named "step path"; returns 0 or XR_EFILEIO (errno EIO). */
static int fault(const char *step, const char *path)
{
#ifdef XR_FAULTS
	char buf[XR_PATH_MAX + 64];

	snprintf(buf, sizeof(buf), "%s %s", step, path ? path : "");
	return xr_fault_point(buf);
#else
	(void)step;
	(void)path;
	return 0;
#endif
}

/* --- small helpers ----------------------------------------------------- */

/* Maps st_mode to enum xr_ftype (0 for unknown kinds). */
static uint8_t ftype_of(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return XR_FT_REG;
	case S_IFDIR: return XR_FT_DIR;
	case S_IFLNK: return XR_FT_LINK;
	case S_IFCHR: return XR_FT_CHR;
	case S_IFBLK: return XR_FT_BLK;
	case S_IFIFO: return XR_FT_FIFO;
	case S_IFSOCK: return XR_FT_SOCK;
	default: return 0;
	}
}

/* Returns the process umask (commit runs single-threaded). */
static mode_t get_umask(void)
{
	mode_t m = umask(022);

	umask(m);
	return m;
}

/* XR_JF_* attribute flags for the options o. */
static uint8_t opts_flags(const struct xr_meta_opts *o)
{
	return (uint8_t)((o->perms ? XR_JF_PERMS : 0) | (o->times ? XR_JF_TIMES : 0) |
			 (o->owner ? XR_JF_OWNER : 0) | (o->group ? XR_JF_GROUP : 0) |
			 (o->is_root ? XR_JF_ROOT : 0));
}

/* Options equivalent to XR_JF_* flags. */
static struct xr_meta_opts flags_opts(uint8_t f)
{
	struct xr_meta_opts o;

	memset(&o, 0, sizeof(o));
	o.perms = f & XR_JF_PERMS;
	o.times = f & XR_JF_TIMES;
	o.owner = f & XR_JF_OWNER;
	o.group = f & XR_JF_GROUP;
	o.is_root = f & XR_JF_ROOT;
	o.numeric_ids = true;
	return o;
}

/* True if path is "." or a valid relative path. */
static bool path_or_root_ok(const char *path)
{
	return path && (strcmp(path, ".") == 0 || xr_path_valid(path));
}

/* True if path is a valid relative path naming an entry below the root. */
static bool entry_path_ok(const char *path)
{
	return path && strcmp(path, ".") != 0 && xr_path_valid(path);
}

/*
 * Copies len bytes of s, NUL-terminated, into t's string blocks (freed with
 * t).  Returns the copy or NULL when out of memory.
 */
static const char *txn_strndup(struct xr_txn *t, const char *s, size_t len)
{
	struct strblock *b = t->strings;
	char *p;

	if (b == NULL || b->cap - b->used < len + 1) {
		size_t cap = len + 1 > STRBLOCK_SIZE ? len + 1 : STRBLOCK_SIZE;

		b = malloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->next = t->strings;
		b->used = 0;
		b->cap = cap;
		t->strings = b;
	}
	p = b->data + b->used;
	memcpy(p, s, len);
	p[len] = '\0';
	b->used += len + 1;
	return p;
}

/*
 * The parent directory of path ("." for a top-level name) as a string of
 * t.  *last is the previous result of the caller's loop: when the parent is
 * the same (ops mostly come in path order) it is returned again, not
 * copied.  NULL when out of memory.
 */
static const char *txn_parent(struct xr_txn *t, const char *path, const char **last)
{
	const char *slash = strrchr(path, '/');
	const char *p = slash ? path : ".";
	size_t len = slash ? (size_t)(slash - path) : 1;

	if (*last && strncmp(*last, p, len) == 0 && (*last)[len] == '\0')
		return *last;
	*last = txn_strndup(t, p, len);
	return *last;
}

/* Frees a parsed journal: the ops and their strings are one block. */
void xr_journal_ops_free(struct xr_journal_op *ops, size_t n)
{
	(void)n;
	free(ops);
}

/*
 * Records one op in t: e's attributes (NULL: none) copied, path and (for
 * the rename of a symlink) e's target borrowed.  Returns 0 or XR_ENOMEM
 * (also for a NULL path, a failed copy of the caller's).
 */
static int txn_push(struct xr_txn *t, uint8_t op, uint8_t type, uint8_t flags, uint32_t stage_id,
		    const struct xr_entry *e, const char *path)
{
	struct xr_journal_op *o;

	if (path == NULL)
		return XR_ENOMEM;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap + t->cap / 2 : 32;	/* x1.5: a 10k-op commit */
		struct xr_journal_op *nops = realloc(t->ops, ncap * sizeof(*nops));

		if (!nops)
			return XR_ENOMEM;
		t->ops = nops;
		t->cap = ncap;
	}
	o = &t->ops[t->n++];
	memset(o, 0, sizeof(*o));
	o->path = path;
	if (e) {
		o->mode = e->mode;
		o->uid = e->uid;
		o->gid = e->gid;
		o->mtime_sec = e->mtime_sec;
		o->mtime_nsec = e->mtime_nsec;
		/* only a rename needs the target (a symlink's META does not) */
		if (op == 'N' && type == XR_FT_LINK)
			o->link = e->link;
	}
	o->op = op;
	o->type = type;
	o->flags = flags;
	o->stage_id = stage_id;
	return 0;
}

/* Formats a stage file name. */
static void stage_name(uint32_t id, char buf[16])
{
	snprintf(buf, 16, "%u", id);
}

/* --- journal codec ----------------------------------------------------- */

/* Little-endian stores and loads of the journal fields. */
static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Chunk in which the journal is written: its size does not grow with the change set. */
#define JOURNAL_CHUNK (64u * 1024)

/* Returns XR_ELIMIT if a path or link of ops is too long to record, else 0. */
static int journal_check(const struct xr_journal_op *ops, size_t n)
{
	if (n > UINT32_MAX)
		return XR_ELIMIT;
	for (size_t i = 0; i < n; i++)
		if (strlen(ops[i].path) > XR_PATH_MAX ||
		    (ops[i].link && strlen(ops[i].link) > XR_PATH_MAX))
			return XR_ELIMIT;
	return 0;
}

/* Encodes the journal header for n ops into b (JHDR_SIZE bytes). */
static void journal_header(uint8_t *b, size_t n)
{
	/* 4 magic bytes, no NUL: a byte field, not a string */
	memcpy(b, JOURNAL_MAGIC, 4); /* NOLINT(bugprone-not-null-terminated-result) */
	put16(b + 4, JOURNAL_VERSION);
	put16(b + 6, 0);
	put32(b + 8, (uint32_t)n);
	put32(b + 12, 0);
	put64(b + 16, XXH3_64bits(b, 16));
}

/* Encodes one record at b (room for JREC_HDR + JREC_MAX); returns its length. */
static size_t journal_record(uint8_t *b, const struct xr_journal_op *o)
{
	size_t pl = strlen(o->path), ll = o->link ? strlen(o->link) : 0;
	uint8_t *r = b + JREC_HDR;
	size_t rl = JREC_FIXED + pl + ll;

	r[0] = o->op;
	r[1] = o->type;
	r[2] = o->flags;
	r[3] = 0;
	put32(r + 4, o->stage_id);
	put32(r + 8, o->mode);
	put32(r + 12, o->uid);
	put32(r + 16, o->gid);
	put32(r + 20, o->mtime_nsec);
	put64(r + 24, 0);	/* reserved */
	put64(r + 32, (uint64_t)o->mtime_sec);
	put64(r + 40, 0);	/* reserved */
	put16(r + 48, (uint16_t)pl);
	put16(r + 50, (uint16_t)ll);
	memcpy(r + JREC_FIXED, o->path, pl);
	if (ll)
		memcpy(r + JREC_FIXED + pl, o->link, ll);
	put32(b, (uint32_t)rl);
	put64(b + 4, XXH3_64bits(r, rl));
	return JREC_HDR + rl;
}

/*
 * Writes the journal of ops (journal_check() passed) to fd through a
 * fixed-size buffer.  Returns 0, or -1 with errno set (XR_ENOMEM as ENOMEM).
 */
static int journal_write_ops(int fd, const struct xr_journal_op *ops, size_t n)
{
	uint8_t *b = malloc(JOURNAL_CHUNK);
	size_t len = JHDR_SIZE;
	int rc = 0;

	if (!b) {
		errno = ENOMEM;
		return -1;
	}
	journal_header(b, n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (len + JREC_HDR + JREC_MAX > JOURNAL_CHUNK) {
			rc = xr_write_all(fd, b, len) < 0 ? -1 : 0;
			len = 0;
		}
		if (rc == 0)
			len += journal_record(b + len, &ops[i]);
	}
	if (rc == 0 && len)
		rc = xr_write_all(fd, b, len) < 0 ? -1 : 0;
	free(b);
	return rc;
}

/* Checks one decoded op for sense; returns NULL or the reason it is invalid. */
static const char *op_invalid(const struct xr_journal_op *o)
{
	bool root = strcmp(o->path, ".") == 0;

	if (o->type < XR_FT_REG || o->type > XR_FT_SOCK)
		return "bad entry type";
	if (root ? !(o->op == 'A' || o->op == 'F') : !entry_path_ok(o->path))
		return "invalid path";
	if (o->mode > 07777 || o->mtime_nsec >= 1000000000u)
		return "bad attribute";
	if ((o->link != NULL) != (o->op == 'N' && o->type == XR_FT_LINK))
		return "bad symlink target";
	if (o->flags && o->op != 'A')
		return "unexpected flags";
	switch (o->op) {
	case 'R':
	case 'D':
		return NULL;
	case 'M':
	case 'F':
		return o->type == XR_FT_DIR ? NULL : "bad entry type";
	case 'N':
		return o->type == XR_FT_DIR ? "bad entry type" : NULL;
	case 'A':
		return (o->flags & ~XR_JF_ALL) ? "unknown flags" : NULL;
	default:
		return "unknown operation";
	}
}

/*
 * Parses a journal image; on failure *why says what is wrong.  Returns 0
 * and an allocated array, or XR_ESTREAM (XR_ENOMEM when out of memory).
 */
static int journal_decode(const void *buf, size_t len, struct xr_journal_op **ops, size_t *n,
			  const char **why)
{
	const uint8_t *b = buf;
	struct xr_journal_op *v = NULL;
	size_t count, pos, i = 0, room = 0;
	char *str = NULL;
	int rc = XR_ESTREAM;

	*ops = NULL;
	*n = 0;
	*why = "truncated header";
	if (len < JHDR_SIZE)
		return XR_ESTREAM;
	*why = "not a journal (bad magic)";
	if (memcmp(b, JOURNAL_MAGIC, 4) != 0)
		return XR_ESTREAM;
	*why = "unsupported journal version";
	if (get16(b + 4) != JOURNAL_VERSION || get16(b + 6) != 0 || get32(b + 12) != 0)
		return XR_ESTREAM;
	*why = "header checksum mismatch";
	if (get64(b + 16) != XXH3_64bits(b, 16) && !SKIP_CHECKSUMS)
		return XR_ESTREAM;
	count = get32(b + 8);
	*why = "truncated (fewer records than announced)";
	if (count > (len - JHDR_SIZE) / (JREC_HDR + JREC_FIXED))
		return XR_ESTREAM;
	if (count) {
		/* one block: the ops, then their names, each NUL-terminated */
		room = len - JHDR_SIZE - count * (JREC_HDR + JREC_FIXED) + 2 * count;
		v = calloc(1, count * sizeof(*v) + room);
		if (!v) {
			*why = "out of memory";
			return XR_ENOMEM;
		}
		str = (char *)(v + count);
	}
	pos = JHDR_SIZE;
	for (i = 0; i < count; i++) {
		struct xr_journal_op *o = &v[i];
		const uint8_t *r;
		size_t rl, pl, ll;

		*why = "truncated record";
		if (len - pos < JREC_HDR)
			goto out;
		rl = get32(b + pos);
		if (rl < JREC_FIXED || rl > JREC_MAX || len - pos - JREC_HDR < rl) {
			*why = rl > JREC_MAX || rl < JREC_FIXED ? "bad record length"
								: "truncated record";
			goto out;
		}
		r = b + pos + JREC_HDR;
		*why = "record checksum mismatch";
		if (get64(b + pos + 4) != XXH3_64bits(r, rl) && !SKIP_CHECKSUMS)
			goto out;
		pl = get16(r + 48);
		ll = get16(r + 50);
		*why = "bad record length";
		if (r[3] != 0 || pl == 0 || JREC_FIXED + pl + ll != rl)
			goto out;
		*why = "truncated (fewer records than announced)";
		if (pl + ll + 2 > room)
			goto out;	/* the names of the records so far leave too little */
		*why = "NUL in a name";
		if (memchr(r + JREC_FIXED, '\0', pl + ll))
			goto out;
		o->op = r[0];
		o->type = r[1];
		o->flags = r[2];
		o->stage_id = get32(r + 4);
		o->mode = get32(r + 8);
		o->uid = get32(r + 12);
		o->gid = get32(r + 16);
		o->mtime_nsec = get32(r + 20);
		o->mtime_sec = (int64_t)get64(r + 32);
		memcpy(str, r + JREC_FIXED, pl);
		str[pl] = '\0';
		o->path = str;
		str += pl + 1;
		room -= pl + 1;
		if (ll) {
			memcpy(str, r + JREC_FIXED + pl, ll);
			str[ll] = '\0';
			o->link = str;
			str += ll + 1;
			room -= ll + 1;
		}
		if ((*why = op_invalid(o)) != NULL)
			goto out;
		pos += JREC_HDR + rl;
	}
	*why = "trailing data after the last record";
	if (pos != len)
		goto out;
	*why = NULL;
	*ops = v;
	*n = count;
	return 0;
out:
	free(v);
	return rc;
}

/* Parses a journal image; 0 and an allocated array, or XR_ESTREAM/XR_ENOMEM. */
int xr_journal_parse(const void *buf, size_t len, struct xr_journal_op **ops, size_t *n)
{
	const char *why;

	return journal_decode(buf, len, ops, n, &why);
}

/* --- applying operations ------------------------------------------------ */

/* Reports a failed step on path and returns XR_EFILEIO. */
static int op_fail(const char *path, const char *what)
{
	xr_error("%s: %s: %s", path, what, strerror(errno));
	return XR_EFILEIO;
}

/*
 * Opens the parent of path.  Returns 0 with *dfd set, 1 when the parent is
 * gone (ENOENT/ENOTDIR: nothing to do there), or a negative xr_err (reported).
 */
static int open_parent_or_gone(struct xr_dest *d, const char *path, int *dfd, const char **leaf)
{
	int rc = xr_fs_open_parent(d->rootfd, path, dfd, leaf);

	if (rc == XR_EFILEIO && (errno == ENOENT || errno == ENOTDIR))
		return 1;
	if (rc == XR_EFILEIO)
		return op_fail(path, "open parent directory");
	return rc;
}

/* REMOVE or DELETE: removes path while it still has type o->type. */
static int apply_remove(struct xr_dest *d, const struct xr_journal_op *o)
{
	const char *leaf, *path = o->path;
	struct stat st;
	int dfd = -1, rc;

	rc = open_parent_or_gone(d, path, &dfd, &leaf);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = errno == ENOENT ? 0 : op_fail(path, "lstat");
		goto out;
	}
	if (ftype_of(st.st_mode) != o->type)
		goto out;	/* already replaced (or never ours): leave it */
	if (o->type != XR_FT_DIR) {
		if (unlinkat(dfd, leaf, 0) < 0 && errno != ENOENT)
			rc = op_fail(path, o->op == 'D' ? "delete" : "remove");
	} else if (o->op == 'R') {
		rc = xr_fs_remove_tree(d->rootfd, path);
	} else if (unlinkat(dfd, leaf, AT_REMOVEDIR) < 0) {
		if (errno == ENOTEMPTY || errno == EEXIST)
			xr_warn("cannot delete non-empty directory: %s", path);
		else if (errno != ENOENT)
			rc = op_fail(path, "delete directory");
	}
out:
	close(dfd);
	return rc;
}

/* MKDIR: creates path with mode 0700 (an existing directory is fine). */
static int apply_mkdir(struct xr_dest *d, const struct xr_journal_op *o)
{
	const char *leaf, *path = o->path;
	struct stat st;
	int dfd = -1, rc;

	rc = xr_fs_open_parent(d->rootfd, path, &dfd, &leaf);
	if (rc < 0)
		return rc == XR_EFILEIO ? op_fail(path, "open parent directory") : rc;
	if (mkdirat(dfd, leaf, 0700) < 0) {
		if (errno != EEXIST)
			rc = op_fail(path, "create directory");
		else if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
			rc = op_fail(path, "lstat");
		else if (!S_ISDIR(st.st_mode)) {
			xr_error("%s: create directory: exists and is not a directory", path);
			rc = XR_EFILEIO;
		}
	}
	close(dfd);
	return rc;
}

/* RENAME: moves stage/<id> to path; a staged name already gone is done. */
static int apply_rename(struct xr_dest *d, const struct xr_journal_op *o)
{
	const char *leaf, *path = o->path;
	struct stat st;
	char name[16];
	int dfd = -1, rc;

	stage_name(o->stage_id, name);
	if (fstatat(d->stagefd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return op_fail(path, "lstat staged file");
	}
	rc = xr_fs_open_parent(d->rootfd, path, &dfd, &leaf);
	if (rc < 0)
		return rc == XR_EFILEIO ? op_fail(path, "open parent directory") : rc;
	if (renameat(d->stagefd, name, dfd, leaf) < 0)
		rc = op_fail(path, "rename into place");
	close(dfd);
	return rc;
}

/* META: applies the recorded attributes to path if it still has that type. */
static int apply_meta(struct xr_dest *d, const struct xr_journal_op *o)
{
	const char *leaf, *path = o->path;
	struct xr_meta_opts mo = flags_opts(o->flags);
	struct xr_entry e = {.path = (char *)path,
			     .type = o->type,
			     .mode = o->mode,
			     .uid = o->uid,
			     .gid = o->gid,
			     .mtime_sec = o->mtime_sec,
			     .mtime_nsec = o->mtime_nsec};
	struct stat st;
	int dfd = -1, fd = -1, rc;

	rc = open_parent_or_gone(d, path, &dfd, &leaf);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (strcmp(leaf, ".") == 0 ? fstat(dfd, &st) < 0
				   : fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = errno == ENOENT ? 0 : op_fail(path, "lstat");
		goto out;
	}
	if (ftype_of(st.st_mode) != o->type)
		goto out;	/* replaced or deleted later in this commit */
	/* without XR_JF_PERMS the mode stays; with KEEP_SGID an inherited setgid stays */
	if (!mo.perms)
		e.mode = st.st_mode & 07777;
	else if (o->flags & XR_JF_KEEP_SGID)
		e.mode |= st.st_mode & S_ISGID;
	mo.perms = true;
	if (o->type == XR_FT_REG || o->type == XR_FT_DIR) {
		if (strcmp(leaf, ".") == 0)
			fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
		else
			fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
						       O_CLOEXEC);
	}
	if (fd >= 0 && (fstat(fd, &st) < 0 || ftype_of(st.st_mode) != o->type))
		goto out;	/* swapped since the lstat: not the entry we meant */
	if (fd >= 0) {
		rc = xr_meta_apply_fd(fd, path, &e, &mo);
		if (rc == 0 && o->type == XR_FT_REG && fsync(fd) < 0)
			rc = op_fail(path, "fsync");
	} else {
		rc = xr_meta_apply_at(dfd, leaf, path, &e, &mo);
	}
out:
	if (fd >= 0)
		close(fd);
	close(dfd);
	return rc;
}

/* FSYNC: fsyncs directory path (gone is fine: its parent is synced too). */
static int apply_fsync(struct xr_dest *d, const struct xr_journal_op *o)
{
	int fd, rc = 0;

	fd = xr_fs_open(d->rootfd, o->path, O_RDONLY | O_DIRECTORY, 0);
	if (fd == XR_EFILEIO && (errno == ENOENT || errno == ENOTDIR))
		return 0;
	if (fd == XR_EUNSAFE)
		return 0;	/* replaced by a symlink in this commit: nothing to sync */
	if (fd < 0)
		return op_fail(o->path, "open directory to fsync");
	if (xr_fsync_dir(fd) < 0)
		rc = op_fail(o->path, "fsync directory");
	close(fd);
	return rc;
}

/* Applies one journal op; returns 0 or a negative xr_err (reported). */
static int apply_op(struct xr_dest *d, const struct xr_journal_op *o)
{
	switch (o->op) {
	case 'R':
	case 'D': return apply_remove(d, o);
	case 'M': return apply_mkdir(d, o);
	case 'N': return apply_rename(d, o);
	case 'A': return apply_meta(d, o);
	case 'F': return apply_fsync(d, o);
	default: return XR_ESTREAM;
	}
}

/* Applies a committed journal's ops in order; returns 0 or the first error. */
static int apply_ops(struct xr_dest *d, const struct xr_journal_op *ops, size_t n)
{
	static const char *const names[] = {
		['R'] = "remove", ['M'] = "mkdir", ['N'] = "rename",
		['D'] = "delete", ['A'] = "meta",  ['F'] = "fsync",
	};
	char step[32];
	int rc;

	for (size_t i = 0; i < n; i++) {
		const char *nm = ops[i].op < sizeof(names) / sizeof(names[0]) && names[ops[i].op]
					 ? names[ops[i].op] : "op";

		snprintf(step, sizeof(step), "apply-%s", nm);
		if (fault(step, ops[i].path) < 0)
			return op_fail(ops[i].path, nm);
		rc = apply_op(d, &ops[i]);
		if (rc < 0)
			return rc;
		snprintf(step, sizeof(step), "applied-%s", nm);
		if (fault(step, ops[i].path) < 0)
			return op_fail(ops[i].path, nm);
	}
	return 0;
}

/* --- destination: open, lock, recovery --------------------------------- */

/*
 * Removes every entry of the stage directory and fsyncs it.  Returns 0 or
 * XR_EFILEIO (reported).
 */
static int clear_stage(struct xr_dest *d)
{
	struct dirent *de;
	DIR *dir;
	int fd, rc = 0;
	bool removed = false;

	fd = openat(d->stagefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		xr_error("%s/%s/stage: open: %s", d->path, XR_STATE_DIR, strerror(errno));
		if (fd >= 0)
			close(fd);
		return XR_EFILEIO;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((rc = fault("stage-clean", de->d_name)) < 0) {
			xr_error("%s/%s/stage/%s: remove: %s", d->path, XR_STATE_DIR, de->d_name,
				 strerror(errno));
			break;
		}
		rc = xr_fs_remove_tree(d->stagefd, de->d_name);
		if (rc < 0)
			break;
		removed = true;
	}
	closedir(dir);
	if (rc == 0 && removed && xr_fsync_dir(d->stagefd) < 0) {
		xr_error("%s/%s/stage: fsync: %s", d->path, XR_STATE_DIR, strerror(errno));
		rc = XR_EFILEIO;
	}
	return rc;
}

/*
 * Ends a commit whose ops are all applied: unlinks the journal, fsyncs the
 * state dir and empties the stage.  Returns 0 or XR_EFILEIO.
 */
static int finish_commit(struct xr_dest *d)
{
	if (fault("journal-unlink", NULL) < 0 ||
	    (unlinkat(d->statefd, JOURNAL_NAME, 0) < 0 && errno != ENOENT)) {
		xr_error("%s/%s/%s: unlink: %s", d->path, XR_STATE_DIR, JOURNAL_NAME,
			 strerror(errno));
		return XR_EFILEIO;
	}
	if (fault("state-fsync", NULL) < 0 || xr_fsync_dir(d->statefd) < 0) {
		xr_error("%s/%s: fsync: %s", d->path, XR_STATE_DIR, strerror(errno));
		return XR_EFILEIO;
	}
	/* committed; what is left in the stage goes at the next open */
	if (clear_stage(d) < 0)
		xr_warn("%s: staging not emptied; the next run removes it", d->path);
	return 0;
}

/* Reads the whole of fd into a new buffer; returns 0 or XR_EFILEIO/XR_ENOMEM. */
static int read_all(int fd, uint8_t **buf, size_t *len)
{
	struct stat st;
	uint8_t *b;
	size_t got = 0;
	ssize_t r;

	if (fstat(fd, &st) < 0)
		return XR_EFILEIO;
	b = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (!b)
		return XR_ENOMEM;
	while (got < (size_t)st.st_size) {
		r = read(fd, b + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(b);
			if (r == 0)
				errno = EIO;
			return XR_EFILEIO;
		}
		got += (size_t)r;
	}
	*buf = b;
	*len = got;
	return 0;
}

/* Replays a committed journal, or drops stale staging; 0 or xr_err (reported). */
int xr_dest_recover(struct xr_dest *d, int *recovered)
{
	struct xr_journal_op *ops = NULL;
	uint8_t *buf = NULL;
	const char *why;
	size_t len = 0, n = 0;
	int fd, rc;

	if (recovered)
		*recovered = 0;
	fd = openat(d->statefd, JOURNAL_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		xr_error("%s/%s/%s: open: %s", d->path, XR_STATE_DIR, JOURNAL_NAME,
			 strerror(errno));
		return XR_EFILEIO;
	}
	if (unlinkat(d->statefd, JOURNAL_TMP, 0) < 0 && errno != ENOENT) {
		xr_error("%s/%s/%s: unlink: %s", d->path, XR_STATE_DIR, JOURNAL_TMP,
			 strerror(errno));
		rc = XR_EFILEIO;
		goto out;
	}
	if (fd < 0)
		return clear_stage(d);	/* no commit in flight: drop stale staging */
	rc = read_all(fd, &buf, &len);
	if (rc < 0) {
		xr_error("%s/%s/%s: read: %s", d->path, XR_STATE_DIR, JOURNAL_NAME,
			 strerror(errno));
		goto out;
	}
	rc = journal_decode(buf, len, &ops, &n, &why);
	if (rc < 0) {
		xr_error("%s/%s/%s: corrupt journal of an interrupted commit (%s); refusing to "
			 "replay it. DEST may hold a partly applied change set: check it, then "
			 "remove the journal and the stage directory and run again",
			 d->path, XR_STATE_DIR, JOURNAL_NAME, why);
		rc = XR_EFILEIO;
		goto out;
	}
	xr_warn("%s: replaying an interrupted commit (%zu operations)", d->path, n);
	rc = apply_ops(d, ops, n);
	if (rc < 0)
		goto out;
	rc = finish_commit(d);
	if (rc == 0 && recovered)
		*recovered = 1;
out:
	xr_journal_ops_free(ops, n);
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * Creates (0700) and opens directory name in dirfd, refusing a symlink.
 * *created tells whether it was made now.  Returns the fd or -1 (errno).
 */
static int open_private_dir(int dirfd, const char *name, bool *created)
{
	struct stat st;
	int fd;

	*created = mkdirat(dirfd, name, 0700) == 0;
	if (!*created && errno != EEXIST)
		return -1;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Opens or creates DEST and its state dir, locks it, recovers; 0 or xr_err. */
int xr_dest_open(struct xr_dest *d, const char *path, bool create, int *recovered)
{
	struct stat root_st;
	bool created;
	int rc = XR_EFILEIO;

	d->rootfd = d->statefd = d->stagefd = d->lockfd = -1;
	if (recovered)
		*recovered = 0;
	d->path = strdup(path);
	if (!d->path)
		return XR_ENOMEM;
	d->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->rootfd < 0 && errno == ENOENT && create) {
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			xr_error("%s: create destination directory: %s", path, strerror(errno));
			goto out;
		}
		d->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (d->rootfd < 0) {
		xr_error("%s: open destination directory: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(d->rootfd, &root_st) < 0) {
		xr_error("%s: stat destination directory: %s", path, strerror(errno));
		goto out;
	}
	d->statefd = open_private_dir(d->rootfd, XR_STATE_DIR, &created);
	if (d->statefd < 0) {
		xr_error("%s/%s: create state directory: %s", path, XR_STATE_DIR,
			 strerror(errno));
		goto out;
	}
	if (created) {
		/* our state dir is not a change to DEST: keep the root's mtime as it was */
		struct timespec ts[2] = {{0, UTIME_OMIT}, root_st.st_mtim};

		if (futimens(d->rootfd, ts) < 0)
			xr_warn("%s: restore mtime: %s", path, strerror(errno));
	}
	if (created && xr_fsync_dir(d->rootfd) < 0) {
		xr_error("%s: fsync: %s", path, strerror(errno));
		goto out;
	}
	d->lockfd = openat(d->statefd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (d->lockfd < 0) {
		xr_error("%s/%s/lock: open: %s", path, XR_STATE_DIR, strerror(errno));
		goto out;
	}
	while (flock(d->lockfd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			xr_error("%s/%s/lock: lock: %s", path, XR_STATE_DIR, strerror(errno));
			goto out;
		}
	}
	d->stagefd = open_private_dir(d->statefd, "stage", &created);
	if (d->stagefd < 0) {
		xr_error("%s/%s/stage: create: %s", path, XR_STATE_DIR, strerror(errno));
		goto out;
	}
	if (created && xr_fsync_dir(d->statefd) < 0) {
		xr_error("%s/%s: fsync: %s", path, XR_STATE_DIR, strerror(errno));
		goto out;
	}
	rc = xr_dest_recover(d, recovered);
out:
	if (rc < 0)
		xr_dest_close(d);
	return rc;
}

/* Closes DEST's descriptors (releasing the lock) and frees its path. */
void xr_dest_close(struct xr_dest *d)
{
	if (d->stagefd >= 0)
		close(d->stagefd);
	if (d->lockfd >= 0)
		close(d->lockfd);	/* releases the lock */
	if (d->statefd >= 0)
		close(d->statefd);
	if (d->rootfd >= 0)
		close(d->rootfd);
	free(d->path);
	d->rootfd = d->statefd = d->stagefd = d->lockfd = -1;
	d->path = NULL;
}

/* --- transactions -------------------------------------------------------- */

int xr_txn_reserve(struct xr_txn *t, size_t n)
{
	struct xr_journal_op *nops;

	if (t->n + n <= t->cap)
		return 0;
	nops = realloc(t->ops, (t->n + n) * sizeof(*nops));
	if (!nops)
		return XR_ENOMEM;
	t->ops = nops;
	t->cap = t->n + n;
	return 0;
}

int xr_txn_begin(struct xr_dest *d, const struct xr_meta_opts *mo, struct xr_txn **t)
{
	*t = calloc(1, sizeof(**t));
	if (!*t)
		return XR_ENOMEM;
	(*t)->d = d;
	(*t)->mo = *mo;
	return 0;
}

/* Number of operations recorded so far. */
size_t xr_txn_count(const struct xr_txn *t)
{
	return t->n;
}

/* Reports an unusable path handed to the transaction; returns XR_EUNSAFE. */
static int bad_path(const char *path)
{
	xr_error("%.200s: unsafe path refused", path ? path : "(null)");
	return XR_EUNSAFE;
}

/* Creates staged file stage/<id> for relpath; 0, XR_EUNSAFE or XR_EFILEIO. */
int xr_txn_stage_open(struct xr_txn *t, const char *relpath, int *fd, uint32_t *id)
{
	char name[16];

	*fd = -1;
	if (!entry_path_ok(relpath))
		return bad_path(relpath);
	*id = t->next_id++;
	stage_name(*id, name);
	if (fault("stage-open", relpath) < 0)
		return op_fail(relpath, "create staged file");
	*fd = openat(t->d->stagefd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     0600);
	if (*fd < 0)
		return op_fail(relpath, "create staged file");
	return 0;
}

/*
 * The attributes a staged entry gets: e's, but without -p an entry that
 * replaces one of the same type keeps the old mode (rsync), and a new one
 * gets e's mode & ~umask (xr_meta_apply_* does that when perms is off).
 */
static void staged_attrs(struct xr_txn *t, const struct xr_entry *e, uint8_t old_type,
			 struct xr_entry *ee, struct xr_meta_opts *oo)
{
	struct stat st;

	*ee = *e;
	*oo = t->mo;
	if (!oo->perms && old_type == e->type && xr_fs_lstat(t->d->rootfd, e->path, &st) == 0 &&
	    ftype_of(st.st_mode) == e->type) {
		oo->perms = true;
		ee->mode = st.st_mode & 07777;
	}
}

/* Attributes, fsyncs and closes staged file id and records its rename. */
int xr_txn_stage_done(struct xr_txn *t, uint32_t id, int fd, const struct xr_entry *e,
		      uint8_t old_type)
{
	struct xr_meta_opts oo;
	struct xr_entry ee;
	int rc;

	if (!entry_path_ok(e->path) || e->type != XR_FT_REG) {
		close(fd);
		return bad_path(e->path);
	}
	staged_attrs(t, e, old_type, &ee, &oo);
	if (fault("stage-meta", e->path) < 0) {
		rc = op_fail(e->path, "set attributes of staged file");
		goto out;
	}
	rc = xr_meta_apply_fd(fd, e->path, &ee, &oo);
	if (rc < 0)
		goto out;
	if (fault("stage-fsync", e->path) < 0) {
		rc = op_fail(e->path, "fsync staged file");
		goto out;
	}
	if (t->nfsynced < STAGE_FSYNC_MAX) {
		if (fsync(fd) < 0) {
			rc = op_fail(e->path, "fsync staged file");
			goto out;
		}
		t->nfsynced++;
	} else {
		t->need_syncfs = true;
	}
out:
	if (close(fd) < 0 && rc == 0)
		rc = op_fail(e->path, "close staged file");
	if (rc == 0 && old_type == XR_FT_DIR)
		rc = txn_push(t, 'R', XR_FT_DIR, 0, 0, NULL, e->path);
	if (rc == 0)
		rc = txn_push(t, 'N', XR_FT_REG, 0, id, e, e->path);
	return rc;
}

/* Closes and unlinks staged file id. */
void xr_txn_stage_drop(struct xr_txn *t, uint32_t id, int fd)
{
	char name[16];

	if (fd >= 0)
		close(fd);
	stage_name(id, name);
	if (unlinkat(t->d->stagefd, name, 0) < 0 && errno != ENOENT)
		xr_warn("%s/%s/stage/%s: unlink: %s", t->d->path, XR_STATE_DIR, name,
			strerror(errno));
}

/* Stages a symlink or device/fifo/socket for e and records its rename. */
int xr_txn_stage_special(struct xr_txn *t, const struct xr_entry *e, uint8_t old_type)
{
	struct xr_meta_opts oo;
	struct xr_entry ee;
	char name[16];
	uint32_t id;
	mode_t kind;
	int rc;

	if (!entry_path_ok(e->path))
		return bad_path(e->path);
	switch (e->type) {
	case XR_FT_LINK:
		if (!e->link || !*e->link || strlen(e->link) > XR_PATH_MAX) {
			xr_error("%s: invalid symlink target", e->path);
			return XR_EPROTO;
		}
		kind = S_IFLNK;
		break;
	case XR_FT_CHR: kind = S_IFCHR; break;
	case XR_FT_BLK: kind = S_IFBLK; break;
	case XR_FT_FIFO: kind = S_IFIFO; break;
	case XR_FT_SOCK: kind = S_IFSOCK; break;
	default:
		xr_error("%s: cannot stage an entry of type %u", e->path, e->type);
		return XR_EPROTO;
	}
	id = t->next_id++;
	stage_name(id, name);
	if (fault("stage-special", e->path) < 0)
		return op_fail(e->path, "create staged entry");
	if (kind == S_IFLNK)
		rc = symlinkat(e->link, t->d->stagefd, name);
	else
		rc = mknodat(t->d->stagefd, name, kind | 0600, (dev_t)e->rdev);
	if (rc < 0)
		return op_fail(e->path, kind == S_IFLNK ? "create symlink" : "create special file");
	staged_attrs(t, e, old_type, &ee, &oo);
	if (fault("stage-meta", e->path) < 0) {
		rc = op_fail(e->path, "set attributes of staged entry");
		goto fail;
	}
	rc = xr_meta_apply_at(t->d->stagefd, name, e->path, &ee, &oo);
	if (rc < 0)
		goto fail;
	if (old_type == XR_FT_DIR && (rc = txn_push(t, 'R', XR_FT_DIR, 0, 0, NULL, e->path)) < 0)
		goto fail;
	rc = txn_push(t, 'N', e->type, 0, id, e, e->path);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	unlinkat(t->d->stagefd, name, 0);
	return rc;
}

/* Records MKDIR of e (after a REMOVE of a non-dir) and the META of the new dir. */
int xr_txn_mkdir(struct xr_txn *t, const struct xr_entry *e, uint8_t old_type)
{
	struct xr_entry ee = *e;
	uint8_t flags = opts_flags(&t->mo);
	int rc;

	if (!entry_path_ok(e->path))
		return bad_path(e->path);
	if (old_type != 0 && old_type != XR_FT_DIR &&
	    (rc = txn_push(t, 'R', old_type, 0, 0, NULL, e->path)) < 0)
		return rc;
	if ((rc = txn_push(t, 'M', XR_FT_DIR, 0, 0, NULL, e->path)) < 0)
		return rc;
	/* a new directory without -p: the sender's mode & ~umask, as rsync */
	if (!t->mo.perms && old_type != XR_FT_DIR) {
		ee.mode = (e->mode & 0777) & ~(uint32_t)get_umask();
		flags |= XR_JF_PERMS | XR_JF_KEEP_SGID;
	}
	return txn_push(t, 'A', XR_FT_DIR, flags, 0, &ee, e->path);
}

/* Records the attributes of an existing entry (or "."). */
int xr_txn_meta(struct xr_txn *t, const struct xr_entry *e)
{
	if (!path_or_root_ok(e->path))
		return bad_path(e->path);
	if (e->type < XR_FT_REG || e->type > XR_FT_SOCK) {
		xr_error("%s: bad entry type %u", e->path, e->type);
		return XR_EPROTO;
	}
	return txn_push(t, 'A', e->type, opts_flags(&t->mo), 0, e, e->path);
}

/* Records DELETE of relpath, which is of type old_type now. */
int xr_txn_delete(struct xr_txn *t, const char *relpath, uint8_t old_type)
{
	if (!entry_path_ok(relpath))
		return bad_path(relpath);
	if (old_type < XR_FT_REG || old_type > XR_FT_SOCK) {
		xr_error("%s: bad entry type %u", relpath, old_type);
		return XR_EPROTO;
	}
	return txn_push(t, 'D', old_type, 0, 0, NULL, relpath);
}

/* Frees the transaction (not what is staged). */
static void txn_free(struct xr_txn *t)
{
	struct strblock *b, *next;

	for (b = t->strings; b; b = next) {
		next = b->next;
		free(b);
	}
	free(t->ops);
	free(t);
}

/* Drops everything staged and frees t. */
void xr_txn_abort(struct xr_txn *t)
{
	if (!t)
		return;
	(void)clear_stage(t->d);
	txn_free(t);
}

/* --- building the commit plan -------------------------------------------- */

/* qsort_r over op indexes (ctx: the op array): by path, parents first. */
static int cmp_asc(const void *a, const void *b, void *ctx)
{
	const struct xr_journal_op *ops = ctx;

	return xr_path_cmp(ops[*(const uint32_t *)a].path, ops[*(const uint32_t *)b].path);
}

/* By path, children first. */
static int cmp_desc(const void *a, const void *b, void *ctx)
{
	return -cmp_asc(a, b, ctx);
}

/* Renames: ordinary first, then commit-last by pattern order, each by path. */
static int cmp_rename(const void *a, const void *b, void *ctx)
{
	const struct xr_journal_op *x = (const struct xr_journal_op *)ctx + *(const uint32_t *)a;
	const struct xr_journal_op *y = (const struct xr_journal_op *)ctx + *(const uint32_t *)b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return cmp_asc(a, b, ctx);
}

/* META: files (by path) first, then directories deepest first. */
static int cmp_meta(const void *a, const void *b, void *ctx)
{
	const struct xr_journal_op *x = (const struct xr_journal_op *)ctx + *(const uint32_t *)a;
	const struct xr_journal_op *y = (const struct xr_journal_op *)ctx + *(const uint32_t *)b;
	bool xd = x->type == XR_FT_DIR, yd = y->type == XR_FT_DIR;

	if (xd != yd)
		return xd ? 1 : -1;
	return xd ? cmp_desc(a, b, ctx) : cmp_asc(a, b, ctx);
}

/* qsort/bsearch: strings in xr_path_cmp order. */
static int cmp_str(const void *a, const void *b)
{
	return xr_path_cmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Whether rsync pattern pat matches path: with no "/" (except a trailing
 * one) and no "**" the last component, otherwise the whole path, an
 * unanchored pattern at any "/" boundary.  A trailing "/" matches dirs only
 * (renames are never dirs).
 */
static bool pattern_matches(const char *pat, const char *path)
{
	size_t len = strlen(pat);
	const char *p;
	char *body;
	bool anchored = pat[0] == '/', hit = false;

	if (len == 0 || pat[len - 1] == '/')
		return false;
	if (anchored) {
		pat++;
		len--;
	}
	body = strndup(pat, len);
	if (!body)
		return false;
	if (!anchored && !strchr(body, '/') && !strstr(body, "**")) {
		p = strrchr(path, '/');
		hit = xr_wildmatch(body, p ? p + 1 : path);
	} else if (anchored) {
		hit = xr_wildmatch(body, path);
	} else {
		for (p = path; p && !hit; p = strchr(p, '/'), p = p ? p + 1 : NULL)
			hit = xr_wildmatch(body, p);
	}
	free(body);
	return hit;
}

/*
 * 0 for an ordinary path, else 1 + the index of the first commit-last
 * pattern it matches (the last 254 patterns share rank 255).
 */
static uint8_t commit_last_rank(const char *const *pats, const char *path)
{
	for (size_t i = 0; pats && pats[i]; i++)
		if (pattern_matches(pats[i], path))
			return (uint8_t)(i < 254 ? i + 1 : 255);
	return 0;
}

/*
 * A sorted, de-duplicated list of strings it does not own (op paths and
 * strings of the transaction).
 */
struct strset {
	const char **v;
	size_t n, cap;
};

/*
 * Adds str (NULL: a failed copy) unless it is the string added last.
 * Returns 0 or XR_ENOMEM.
 */
static int strset_add(struct strset *s, const char *str)
{
	if (!str)
		return XR_ENOMEM;
	if (s->n && s->v[s->n - 1] == str)
		return 0;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 32;
		const char **nv = realloc(s->v, ncap * sizeof(*nv));

		if (!nv)
			return XR_ENOMEM;
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = str;
	return 0;
}

/* Sorts with xr_path_cmp and drops duplicates. */
static void strset_sort(struct strset *s)
{
	size_t j = 0;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_str);
	for (size_t i = 1; i < s->n; i++)
		if (xr_path_cmp(s->v[i], s->v[j]) != 0)
			s->v[++j] = s->v[i];
	s->n = j + 1;
}

/* True if str is in s (sorted). */
static bool strset_has(const struct strset *s, const char *str)
{
	return s->n && bsearch(&str, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

/* True if a proper ancestor of path is in s (sorted). */
static bool strset_has_ancestor(const struct strset *s, const char *path)
{
	char buf[XR_PATH_MAX + 1];
	char *slash;
	bool found = false;

	if (s->n == 0 || strlen(path) > XR_PATH_MAX)
		return false;
	strcpy(buf, path);
	while (!found && (slash = strrchr(buf, '/')) != NULL) {
		*slash = '\0';
		found = strset_has(s, buf);
	}
	return found;
}

/* Frees s's array (not the strings). */
static void strset_free(struct strset *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* True if o is a DELETE or META inside a directory the commit removes whole. */
static bool dropped(const struct strset *gone, const struct xr_journal_op *o)
{
	return (o->op == 'D' || o->op == 'A') && strset_has_ancestor(gone, o->path);
}

/*
 * Reorders ops in place so that the op at position k is the one that was
 * at order[k] (order is a permutation of 0..n-1; it is consumed).
 */
static void permute_ops(struct xr_journal_op *ops, uint32_t *order, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct xr_journal_op tmp;
		size_t j = k;

		if (order[k] == k || order[k] == UINT32_MAX)
			continue;
		tmp = ops[k];
		for (;;) {
			size_t next = order[j];

			order[j] = UINT32_MAX;	/* placed */
			if (next == k) {
				ops[j] = tmp;
				break;
			}
			ops[j] = ops[next];
			j = next;
		}
	}
}

/*
 * Before the commit point: every directory a MKDIR or RENAME goes into must
 * exist now as a real directory beneath DEST (reached without symlinks) or
 * be made by this commit; the directories of other ops may be missing but
 * must not be reached through a symlink.  So no committed journal can get
 * stuck on an unusable parent.  Returns 0, XR_EUNSAFE or XR_EFILEIO
 * (reported).
 */
static int check_parents(struct xr_txn *t, const struct strset *gone)
{
	struct strset made = {0}, need = {0}, may = {0};
	const char *last = NULL;
	int fd, rc = 0;

	for (size_t i = 0; i < t->n && rc == 0; i++) {
		const struct xr_journal_op *o = &t->ops[i];

		if (dropped(gone, o) || strcmp(o->path, ".") == 0)
			continue;
		if (o->op == 'M')
			rc = strset_add(&made, o->path);
		if (rc == 0)
			rc = strset_add(o->op == 'M' || o->op == 'N' ? &need : &may,
					txn_parent(t, o->path, &last));
	}
	strset_sort(&made);
	strset_sort(&need);
	strset_sort(&may);
	for (size_t k = 0; k < 2 && rc == 0; k++) {
		const struct strset *s = k == 0 ? &need : &may;

		for (size_t i = 0; i < s->n && rc == 0; i++) {
			if (strcmp(s->v[i], ".") == 0 || strset_has(&made, s->v[i]))
				continue;
			fd = xr_fs_open(t->d->rootfd, s->v[i], O_RDONLY | O_DIRECTORY, 0);
			if (fd >= 0) {
				close(fd);
			} else if (fd == XR_EUNSAFE) {
				xr_error("%s: refusing to follow symlinked parent directory",
					 s->v[i]);
				rc = XR_EUNSAFE;
			} else if (fd == XR_EFILEIO && k == 1 &&
				   (errno == ENOENT || errno == ENOTDIR)) {
				continue;	/* already gone: nothing to do there */
			} else if (fd == XR_EFILEIO) {
				rc = op_fail(s->v[i], "parent directory");
			} else {
				rc = fd;
			}
		}
	}
	strset_free(&made);
	strset_free(&need);
	strset_free(&may);
	return rc;
}

/* True if t records a REMOVE of path for an entry of type type. */
static bool txn_removes(const struct xr_txn *t, const char *path, uint8_t type)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->ops[i].op == 'R' && t->ops[i].type == type &&
		    strcmp(t->ops[i].path, path) == 0)
			return true;
	return false;
}

/*
 * Before the commit point: a RENAME must not land on a directory and a
 * MKDIR not on a non-directory unless the commit removes that entry first
 * (DEST changed since it was read, or the caller passed a wrong old type).
 * Returns 0 or XR_EFILEIO (reported).
 */
static int check_targets(struct xr_txn *t)
{
	struct stat st;
	uint8_t cur;

	for (size_t i = 0; i < t->n; i++) {
		const struct xr_journal_op *o = &t->ops[i];

		if (o->op != 'M' && o->op != 'N')
			continue;
		if (xr_fs_lstat(t->d->rootfd, o->path, &st) < 0)
			continue;	/* absent (or below a directory made here) */
		cur = ftype_of(st.st_mode);
		if ((o->op == 'N') != (cur == XR_FT_DIR))
			continue;	/* rename over a non-dir, mkdir over a dir: fine */
		if (txn_removes(t, o->path, cur))
			continue;
		xr_error("%s: %s: %s is in the way (DEST changed since it was read?)",
			 o->path, o->op == 'N' ? "rename into place" : "create directory",
			 cur == XR_FT_DIR ? "a directory" : "an entry of another type");
		return XR_EFILEIO;
	}
	return 0;
}

/*
 * Builds the journal: t's ops in application order, plus a META restoring
 * the mtime of each existing directory whose entries change (with -t) and
 * an FSYNC of every touched directory.  Its memory besides the ops: one
 * 4-byte index per op and the sets of directory names (borrowed or made
 * once per directory).  Returns 0 or a negative xr_err.
 */
static int build_plan(struct xr_txn *t, const char *const *commit_last,
		      struct xr_journal_op **out, size_t *nout)
{
	static const uint8_t phases[] = {'R', 'M', 'N', 'D', 'A'};
	static int (*const cmps[])(const void *, const void *, void *) = {
		cmp_desc, cmp_asc, cmp_rename, cmp_desc, cmp_meta,
	};
	struct strset parents = {0}, metas = {0}, syncs = {0}, gone = {0};
	size_t nrec = t->n, nkept, k = 0, first;
	const char *last = NULL;
	uint32_t *order = NULL;
	struct xr_entry te;
	struct stat st;
	int rc = XR_ENOMEM;

	if (t->n >= UINT32_MAX / 2)
		return XR_ELIMIT;
	/*
	 * Directories replaced by a non-directory are removed as a whole tree:
	 * DELETE and META of anything inside them are dropped, so no step has
	 * to resolve a path through what is now a symlink or a file.
	 */
	for (size_t i = 0; i < t->n; i++)
		if (t->ops[i].op == 'R' && t->ops[i].type == XR_FT_DIR &&
		    (rc = strset_add(&gone, t->ops[i].path)) < 0)
			goto out;
	strset_sort(&gone);
	if ((rc = check_parents(t, &gone)) < 0 || (rc = check_targets(t)) < 0)
		goto out;
	/* directories whose entries change, and entries that get a META anyway */
	for (size_t i = 0; i < t->n; i++) {
		const struct xr_journal_op *o = &t->ops[i];
		bool dir = o->type == XR_FT_DIR;

		if (dropped(&gone, o))
			continue;
		if (o->op == 'A') {
			if ((rc = strset_add(&metas, o->path)) < 0)
				goto out;
			rc = strset_add(&syncs, dir ? o->path : txn_parent(t, o->path, &last));
			if (rc < 0)
				goto out;
		} else if ((rc = strset_add(&parents, txn_parent(t, o->path, &last))) < 0) {
			goto out;
		}
	}
	strset_sort(&parents);
	strset_sort(&metas);
	/* the METAs that restore directory mtimes join the recorded ops (never dropped) */
	for (size_t i = 0; i < parents.n; i++) {
		if ((rc = strset_add(&syncs, parents.v[i])) < 0)
			goto out;
		if (!t->mo.times || !t->mo.keep_dir_times || strset_has(&metas, parents.v[i]))
			continue;
		if (xr_fs_lstat(t->d->rootfd, parents.v[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue;	/* created in this commit, or not there */
		memset(&te, 0, sizeof(te));
		te.type = XR_FT_DIR;
		te.mtime_sec = (int64_t)st.st_mtim.tv_sec;
		te.mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
		rc = txn_push(t, 'A', XR_FT_DIR, XR_JF_TIMES, 0, &te, parents.v[i]);
		if (rc < 0)
			goto out;
	}
	strset_free(&parents);
	strset_free(&metas);
	strset_sort(&syncs);

	/* application order as a permutation of t->ops: kept ops by phase, dropped ones last */
	rc = XR_ENOMEM;
	order = malloc((t->n + 1) * sizeof(*order));
	if (!order)
		goto out;
	for (size_t p = 0; p < sizeof(phases); p++) {
		first = k;
		for (size_t i = 0; i < t->n; i++) {
			struct xr_journal_op *o = &t->ops[i];

			if (o->op != phases[p] || (i < nrec && dropped(&gone, o)))
				continue;
			o->rank = phases[p] == 'N' ? commit_last_rank(commit_last, o->path) : 0;
			order[k++] = (uint32_t)i;
		}
		qsort_r(order + first, k - first, sizeof(*order), cmps[p], t->ops);
	}
	nkept = k;
	for (size_t i = 0; i < nrec; i++)
		if (dropped(&gone, &t->ops[i]))
			order[k++] = (uint32_t)i;
	permute_ops(t->ops, order, k);
	free(order);
	order = NULL;
	t->n = nkept;
	/* fsync deepest first; room made once, so the array is not grown by half for them */
	if (t->n + syncs.n > t->cap || t->n + syncs.n + 64 < t->cap) {
		struct xr_journal_op *nops = realloc(t->ops, (t->n + syncs.n + 1) * sizeof(*nops));

		if (!nops)
			goto out;
		t->ops = nops;
		t->cap = t->n + syncs.n + 1;
	}
	memset(&te, 0, sizeof(te));
	te.type = XR_FT_DIR;
	for (size_t i = syncs.n; i-- > 0;)
		if ((rc = txn_push(t, 'F', XR_FT_DIR, 0, 0, &te, syncs.v[i])) < 0)
			goto out;
	rc = 0;
	/* the plan is t's ops now (their strings stay t's until txn_free) */
	*out = t->ops;
	*nout = t->n;
	t->ops = NULL;
	t->n = t->cap = 0;
out:
	free(order);
	strset_free(&parents);
	strset_free(&metas);
	strset_free(&syncs);
	strset_free(&gone);
	return rc;
}

/*
 * Writes the journal image to journal.tmp, fsyncs it and renames it to
 * journal (the commit point), then fsyncs the state dir.  *committed is
 * set once the rename happened.  Returns 0 or XR_EFILEIO (reported).
 */
static int write_journal(struct xr_dest *d, const struct xr_journal_op *ops, size_t n,
			 bool *committed)
{
	int fd, rc = 0;

	if (fault("journal-open", NULL) < 0)
		goto fail;
	fd = openat(d->statefd, JOURNAL_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0)
		goto fail;
	if (fault("journal-write", NULL) < 0 || journal_write_ops(fd, ops, n) < 0 ||
	    fault("journal-fsync", NULL) < 0 || fsync(fd) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		goto fail;
	}
	if (close(fd) < 0)
		goto fail;
	if (fault("journal-rename", NULL) < 0 ||
	    renameat(d->statefd, JOURNAL_TMP, d->statefd, JOURNAL_NAME) < 0)
		goto fail;
	*committed = true;
	if (fault("journal-renamed", NULL) < 0 || xr_fsync_dir(d->statefd) < 0) {
		xr_error("%s/%s: fsync: %s", d->path, XR_STATE_DIR, strerror(errno));
		return XR_EFILEIO;
	}
	return rc;
fail:
	xr_error("%s/%s/%s: write journal: %s", d->path, XR_STATE_DIR, JOURNAL_TMP,
		 strerror(errno));
	return XR_EFILEIO;
}

/* Journals and applies the change set (see commit.h); frees t; 0 or xr_err. */
int xr_txn_commit(struct xr_txn *t, const char *const *commit_last)
{
	struct xr_dest *d = t->d;
	struct xr_journal_op *ops = NULL;
	size_t n = 0;
	bool committed = false;
	int rc;

	if (t->n == 0) {
		rc = clear_stage(d);
		goto out;
	}
	rc = build_plan(t, commit_last, &ops, &n);
	if (rc < 0)
		goto out;
	rc = journal_check(ops, n);
	if (rc < 0) {
		xr_error("%s: cannot record the change set: %s", d->path, xr_strerror(rc));
		goto out;
	}
	if (t->need_syncfs && (fault("stage-syncfs", NULL) < 0 || syncfs(d->stagefd) < 0)) {
		rc = op_fail(XR_STATE_DIR "/stage", "syncfs");
		goto out;
	}
	if (fault("stage-dir-fsync", NULL) < 0 || xr_fsync_dir(d->stagefd) < 0) {
		xr_error("%s/%s/stage: fsync: %s", d->path, XR_STATE_DIR, strerror(errno));
		rc = XR_EFILEIO;
		goto out;
	}
	rc = write_journal(d, ops, n, &committed);
	if (rc < 0)
		goto out;
	rc = apply_ops(d, ops, n);
	if (rc < 0)
		goto out;
	rc = finish_commit(d);
out:
	if (rc < 0 && !committed) {
		/* before the commit point: DEST untouched, drop journal.tmp and staging */
		unlinkat(d->statefd, JOURNAL_TMP, 0);
		(void)clear_stage(d);
	} else if (rc < 0) {
		xr_error("%s: commit interrupted after its commit point; the next run replays "
			 "it", d->path);
	}
	free(ops);
	txn_free(t);	/* after ops: it holds strings they borrow */
	return rc;
}

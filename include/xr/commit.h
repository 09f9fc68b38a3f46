/* commit.h - the destination: lock, staging, journaled all-or-nothing commit. */
#ifndef XR_COMMIT_H
#define XR_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xr/manifest.h"
#include "xr/meta.h"

/*
 * Layout inside DEST (same filesystem, so renames are atomic):
 *   DEST/.xroad-replicate/          0700, never listed, sent or deleted
 *   DEST/.xroad-replicate/lock      flock()ed for the whole run
 *   DEST/.xroad-replicate/stage/    staged files, named by sequence number
 *   DEST/.xroad-replicate/journal   present only while a commit is applied
 *
 * Commit protocol (xr_txn_commit):
 *   1. every staged file is already written, verified, attributed, fsynced;
 *      the stage directory is fsynced;
 *   2. the journal (all operations, each record checksummed) is written to
 *      journal.tmp, fsynced, renamed to journal, the state dir fsynced - this
 *      rename is the commit point;
 *   3. operations are applied in this order, each idempotent so that a
 *      replay after a crash at any instant converges:
 *        REMOVE  entries whose type changes (only if still of the old type)
 *        MKDIR   new directories (parents first), mode 0700 until step META
 *        RENAME  staged files/symlinks/devices into place (skipped if the
 *                staged name is gone), commit-last paths after all others
 *        DELETE  entries gone from the source (children first; only if
 *                still of the recorded type)
 *        META    attributes of existing entries and of every directory
 *                (dirs last, deepest first, so their mtimes stay the
 *                sender's)
 *        FSYNC   every directory that was touched
 *   4. the journal is unlinked and the state dir fsynced; stage emptied.
 * Recovery (xr_dest_open): a journal is replayed; without a journal any
 * staged file is removed.  It runs under the lock, before anything else.
 */

#define XR_STATE_DIR ".xroad-replicate"

struct xr_dest {
	int rootfd;	/* DEST, O_DIRECTORY */
	int statefd;	/* DEST/.xroad-replicate */
	int stagefd;	/* DEST/.xroad-replicate/stage */
	int lockfd;
	char *path;	/* DEST as given, for messages */
};

/*
 * Opens DEST (creating the last path component, mode 0755 & ~umask, if
 * create and it is absent - as rsync does), creates the state dir, takes
 * the lock (blocking; waits for a concurrent run), then recovers.
 * recovered receives 1 when a journal was replayed.  Returns 0 or xr_err
 * (XR_EFILEIO with a message naming DEST and the operation).
 */
int xr_dest_open(struct xr_dest *d, const char *path, bool create, int *recovered);
void xr_dest_close(struct xr_dest *d);

/* Replays an interrupted commit or clears stale staging (called by open). */
int xr_dest_recover(struct xr_dest *d, int *recovered);

struct xr_txn;

/*
 * Starts a change set.  Returns 0 or XR_ENOMEM / XR_EFILEIO.
 * The recording calls below keep the path (and symlink target) strings of
 * their entries by reference, not by copy: those strings must stay valid
 * and unchanged until xr_txn_commit or xr_txn_abort returns (the receiver's
 * manifests do).  The other attributes are copied at the call.
 */
int xr_txn_begin(struct xr_dest *d, const struct xr_meta_opts *mo, struct xr_txn **t);

/*
 * Creates a new staged file for relpath and returns its writable fd in *fd
 * (O_WRONLY|O_CREAT|O_EXCL, 0600) and its id.  Returns 0 or XR_EFILEIO.
 */
int xr_txn_stage_open(struct xr_txn *t, const char *relpath, int *fd, uint32_t *id);
/*
 * Finishes staged file id: applies e's attributes, fsyncs, closes fd and
 * records RENAME(id -> relpath).  old_type is the type now at relpath (0 if
 * none) so a REMOVE is recorded when it is a directory.
 */
int xr_txn_stage_done(struct xr_txn *t, uint32_t id, int fd, const struct xr_entry *e,
		      uint8_t old_type);
/* Drops staged file id (verification failed, transfer aborted). */
void xr_txn_stage_drop(struct xr_txn *t, uint32_t id, int fd);
/* Stages a symlink, or a device/fifo/socket (mknodat), for e. */
int xr_txn_stage_special(struct xr_txn *t, const struct xr_entry *e, uint8_t old_type);
/* Records MKDIR of e (with REMOVE first when old_type is not 0 nor a dir). */
int xr_txn_mkdir(struct xr_txn *t, const struct xr_entry *e, uint8_t old_type);
/* Records a META of e (attributes of an existing entry). */
int xr_txn_meta(struct xr_txn *t, const struct xr_entry *e);
/* Records DELETE of relpath, currently of type old_type. */
int xr_txn_delete(struct xr_txn *t, const char *relpath, uint8_t old_type);

/*
 * Commits as described above.  commit_last is a NULL-terminated list of
 * rsync patterns (xr_wildmatch against the path) whose renames go last.
 * Returns 0, or XR_EFILEIO: before the commit point DEST is untouched and
 * staging is removed; after it the journal stays and the next open replays.
 * t is freed in every case (do not call xr_txn_abort afterwards).
 */
int xr_txn_commit(struct xr_txn *t, const char *const *commit_last);
/* Abandons the change set: removes everything staged. */
void xr_txn_abort(struct xr_txn *t);
/* Number of operations recorded so far (0 = nothing to commit). */
size_t xr_txn_count(const struct xr_txn *t);
/* Makes room for n more recorded operations at once (a hint; 0 or XR_ENOMEM). */
int xr_txn_reserve(struct xr_txn *t, size_t n);

/*
 * Test-only fault point (compiled in with -DXR_FAULTS): when the
 * environment variable XR_FAULT_AT=N is set, the N-th counted receiver
 * filesystem step (stage write/fsync, journal write, each commit operation)
 * calls _exit(99)... or fails with EIO when XR_FAULT_MODE=fail.  The
 * counter and names of steps are printed with XR_FAULT_TRACE=1 as
 * "fault-point N STEP PATH".  Steps are counted only while one of the two
 * variables is set.  Without XR_FAULTS this is an inline no-op.
 */
#ifdef XR_FAULTS
int xr_fault_point(const char *step);
#else
static inline int xr_fault_point(const char *step)
{
	(void)step;
	return 0;
}
#endif

/* Journal codec, exported for the fuzz target and tests. */
/*
 * One recorded operation.  The strings are borrowed, never copied: in a
 * transaction they are the path (and symlink target) of the entries handed
 * to xr_txn_*, which must stay valid until xr_txn_commit/xr_txn_abort
 * returns; in a parsed journal they live in the block that
 * xr_journal_ops_free() releases.  48 bytes: a 10,000-file commit keeps
 * every op in memory at once.
 */
struct xr_journal_op {
	const char *path;
	const char *link;	/* 'N' of a symlink: its target (recorded for the record) */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t mode;		/* permission bits (07777) */
	uint32_t uid, gid;
	uint32_t stage_id;	/* for 'N' */
	uint8_t op;		/* 'R' remove, 'M' mkdir, 'N' rename, 'D' delete, 'A' meta, 'F' fsync dir */
	uint8_t type;		/* entry type (old type for R/D) */
	uint8_t flags;		/* for 'A': XR_JF_* - which attributes to apply */
	uint8_t rank;		/* while planning: commit-last rank of a rename (not recorded) */
};

/* xr_journal_op.flags of a META ('A'): the xr_meta_opts in force, and how. */
#define XR_JF_PERMS	0x01	/* set the mode (without it the mode is left alone) */
#define XR_JF_TIMES	0x02	/* set the mtime */
#define XR_JF_OWNER	0x04	/* -o */
#define XR_JF_GROUP	0x08	/* -g */
#define XR_JF_ROOT	0x10	/* the receiver ran as root */
#define XR_JF_KEEP_SGID	0x20	/* new dir without -p: keep an inherited setgid bit */
#define XR_JF_ALL	0x3f

/*
 * Parses a journal image; returns 0 and an allocated array (its strings in
 * the same block), or XR_ESTREAM / XR_ENOMEM.
 */
int xr_journal_parse(const void *buf, size_t len, struct xr_journal_op **ops, size_t *n);
/* Frees a parsed journal (n is kept for symmetry; the block holds everything). */
void xr_journal_ops_free(struct xr_journal_op *ops, size_t n);

#endif

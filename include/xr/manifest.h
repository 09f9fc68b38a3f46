/* manifest.h - the file list: what a tree holds, built by walking it. */
#ifndef XR_MANIFEST_H
#define XR_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xr/hash.h"

struct xr_filters;

enum xr_ftype {
	XR_FT_REG = 1,
	XR_FT_DIR = 2,
	XR_FT_LINK = 3,
	XR_FT_CHR = 4,
	XR_FT_BLK = 5,
	XR_FT_FIFO = 6,
	XR_FT_SOCK = 7,
};

/* Limits enforced everywhere a path is built, parsed or received. */
#define XR_PATH_MAX 4096
#define XR_NAME_MAX 255

/*
 * One entry.  path is relative to the transfer root, "/"-separated, with no
 * leading "/", no "." or ".." components, no empty components, no NUL; the
 * root itself is ".".  Entries of a manifest are sorted with
 * xr_path_cmp() so that a directory precedes its contents.
 */
struct xr_entry {
	char *path;
	char *link;		/* symlink target (XR_FT_LINK), else NULL */
	uint8_t type;		/* enum xr_ftype */
	bool has_hash;		/* hash is valid */
	uint32_t mode;		/* permission bits incl. setuid/sgid/sticky (07777) */
	uint32_t uid, gid;
	uint64_t size;		/* regular files; 0 otherwise */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t rdev;		/* devices */
	union {
		struct xr_hash hash;	/* XR_FT_REG: XXH3-128 of the content (when has_hash) */
		struct {
			uint64_t dev, ino;
		} id;			/* XR_FT_DIR of a walk: its identity (local, never sent) */
	};
};

struct xr_manifest {
	struct xr_entry *e;
	size_t n, cap;
	/* uid/gid -> name tables for rsync's name mapping (sender side) */
	struct xr_idname *users, *groups;
	size_t nusers, ngroups;
};

struct xr_idname {
	uint32_t id;
	char *name;
};

/* Orders paths so that "a" < "a/b" < "a.b": "/" sorts before every byte. */
int xr_path_cmp(const char *a, const char *b);

/* Returns true if p is a valid relative path as described above. */
bool xr_path_valid(const char *p);

void xr_manifest_init(struct xr_manifest *m);
void xr_manifest_free(struct xr_manifest *m);
/* Appends a deep copy of e; returns 0 or XR_ENOMEM. */
int xr_manifest_add(struct xr_manifest *m, const struct xr_entry *e);
/* Gives back unused capacity (a list that is complete); never fails. */
void xr_manifest_trim(struct xr_manifest *m);
/* Sorts with xr_path_cmp; returns XR_EPROTO if two entries share a path. */
int xr_manifest_sort(struct xr_manifest *m);
/* Binary search (manifest must be sorted); returns the entry or NULL. */
struct xr_entry *xr_manifest_find(const struct xr_manifest *m, const char *path);
/* Records the name of uid/gid (looked up with getpwuid/getgrgid) once. */
int xr_manifest_note_ids(struct xr_manifest *m, uint32_t uid, uint32_t gid);
void xr_entry_free(struct xr_entry *e);

struct xr_walk_opts {
	bool recursive;		/* -r: descend; without it only the top level */
	bool links;		/* -l: record symlinks (else skipped, as rsync "skipping non-regular") */
	bool devices;		/* -D: devices and specials */
	bool checksum;		/* -c: hash every regular file during the walk */
	bool map_names;		/* collect uid/gid names (not --numeric-ids) */
	enum { XR_WALK_SENDER, XR_WALK_RECEIVER } side;	/* which filter side applies */
	const char *skip_name;	/* top-level name never listed (".xroad-replicate") */
};

/*
 * Walks the tree below dirfd (an O_DIRECTORY descriptor of the transfer
 * root) with lstat semantics, never following symlinks, applying the
 * filters during the walk (an excluded directory is not descended into).
 * prefix, when non-NULL, is prepended to every path ("xroad" for "rsync
 * /etc/xroad dest", where the root entry itself is then "xroad"); when NULL
 * the root is recorded as ".".  On the receiver side (XR_WALK_RECEIVER) an
 * excluded (protected) entry is still listed, without a hash and not
 * descended into, so that xr_plan_build() can match it and keep the
 * directories above it from --delete (rsync: "cannot delete non-empty
 * directory").  Symlinks without opts->links and specials without
 * opts->devices are left out silently; rsync's sender lists them anyway
 * (they keep the receiver's path from --delete) and its receiver prints
 * "skipping non-regular file", which xr_plan_build() does when they are
 * listed, so walk the sender with links and devices on to match rsync
 * exactly.  Fills m (sorted).  A file that vanishes
 * during the walk is skipped and counted in *vanished; an unreadable
 * directory is reported (path and cause) and counted in *errors.  Returns 0,
 * or a negative xr_err for failures that stop the walk.
 */
int xr_walk(int dirfd, const char *prefix, const struct xr_filters *filters,
	    const struct xr_walk_opts *opts, struct xr_manifest *m, unsigned *vanished,
	    unsigned *errors);

/*
 * lstat of one entry into e (path copied from relpath); used for single-file
 * sources and incremental updates.  Returns 0, XR_EVANISHED (ENOENT) or
 * XR_EFILEIO.
 */
int xr_entry_stat(int dirfd, const char *name, const char *relpath, struct xr_entry *e);

/*
 * The scope of an incremental change set (--watch): the paths whose state
 * it carries.  With subtree, everything below path is covered as well (a
 * directory that appeared, vanished or changed type); without, only path
 * itself (a file, or a directory whose own attributes changed).  A path in
 * the scope that has no entry no longer exists (or is excluded).
 */
struct xr_scope_item {
	char *path;
	bool subtree;
};

struct xr_scope {
	struct xr_scope_item *v;
	size_t n, cap;
};

void xr_scope_init(struct xr_scope *sc);
void xr_scope_free(struct xr_scope *sc);
/* Appends a copy of path; returns 0 or XR_ENOMEM. */
int xr_scope_add(struct xr_scope *sc, const char *path, bool subtree);
/*
 * Sorts with xr_path_cmp, merges duplicates (subtree if any was) and drops
 * items below a subtree item, which it covers.  Returns 0.
 */
int xr_scope_normalize(struct xr_scope *sc);

/* True if sc (normalized) has path itself, or a subtree item above it. */
bool xr_scope_covers(const struct xr_scope *sc, const char *path);

/*
 * Marks as subtree every item of sc that is a directory both in old and in
 * now but another one (new device/inode: "mv d d.old; mv d.new d"), so
 * that what the old one held is listed and replaced too.  Returns true if
 * it marked one (then normalize and list again).
 */
bool xr_scope_mark_replaced(struct xr_scope *sc, const struct xr_manifest *old,
			    const struct xr_manifest *now);

/*
 * Lists only what sc (normalized) covers of the tree below dirfd, into m
 * (sorted), with the rules of xr_walk(): prefix is dirfd's own path in m
 * (NULL: "."), items outside it are ignored; an item below an excluded
 * directory is left out, an excluded item itself as xr_walk() does for
 * opts->side; an absent item is simply not listed.  Parents are opened
 * beneath dirfd without following symlinks (a symlinked parent: absent).
 * A subtree item that is a directory is walked recursively.  Returns as
 * xr_walk().
 */
int xr_walk_scope(int dirfd, const char *prefix, const struct xr_scope *sc,
		  const struct xr_filters *filters, const struct xr_walk_opts *opts,
		  struct xr_manifest *m, unsigned *vanished, unsigned *errors);

/*
 * Applies an incremental change to m: every entry sc (normalized) covers
 * is replaced by delta's entries (delta = xr_walk_scope() of sc).  An
 * item's descendants are replaced too when it is a subtree item or is no
 * longer a directory.  Moves delta's entries into m (delta is left empty,
 * its id tables untouched).  Returns 0, or XR_ENOMEM with m unchanged.
 */
int xr_manifest_splice(struct xr_manifest *m, const struct xr_scope *sc,
		       struct xr_manifest *delta);

#endif

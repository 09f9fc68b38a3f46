/* meta.h - applying mode, owner, group and times as rsync does. */
#ifndef XR_META_H
#define XR_META_H

#include <stdbool.h>
#include <stdint.h>

#include "xr/manifest.h"

struct xr_meta_opts {
	bool perms, times, owner, group;
	bool is_root;
	bool numeric_ids;
	bool keep_dir_times;	/* commit: restore the mtime of every changed parent dir */
};

/*
 * Maps the sender's uid/gid to local ids by name (rsync's default) using
 * the sender's tables in src (users/groups), unless numeric_ids.  A name
 * unknown here keeps the numeric id, as rsync.  Writes into e->uid/gid.
 */
void xr_meta_map_ids(const struct xr_manifest *src, const struct xr_meta_opts *o,
		     struct xr_entry *e);

/*
 * Which uid/gid a new file should get on this receiver: as root the mapped
 * ids (when -o / -g); otherwise the running user, and the group only when
 * -g and the user is a member of it (else the default group).  Returns
 * -1 in a field to mean "leave as created".
 */
void xr_meta_target_ids(const struct xr_meta_opts *o, const struct xr_entry *e, int64_t *uid,
			int64_t *gid);

/*
 * Applies e's attributes to the open file fd (regular files, dirs):
 * fchown (only what xr_meta_target_ids allows), fchmod when perms (else
 * new files get 0666/0777 & ~umask as rsync without -p), futimens when
 * times.  Returns 0 or XR_EFILEIO with a message naming path.
 */
int xr_meta_apply_fd(int fd, const char *path, const struct xr_entry *e,
		     const struct xr_meta_opts *o);

/*
 * The same for an entry named leaf in dirfd without following it (symlinks:
 * lchown and utimensat AT_SYMLINK_NOFOLLOW; no chmod on symlinks).
 */
int xr_meta_apply_at(int dirfd, const char *leaf, const char *path, const struct xr_entry *e,
		     const struct xr_meta_opts *o);

/* True if current attributes st differ from e in what o preserves. */
struct stat;
bool xr_meta_differs(const struct stat *st, const struct xr_entry *e, const struct xr_meta_opts *o);

#endif

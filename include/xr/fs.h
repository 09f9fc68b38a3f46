/* fs.h - path confinement: every receiver operation stays beneath a root fd. */
#ifndef XR_FS_H
#define XR_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/*
 * Incoming names are validated (xr_path_valid: relative, no "..", no ".",
 * no empty component, no NUL, <= XR_PATH_MAX, components <= XR_NAME_MAX)
 * and resolved one way only: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS) where the kernel has it, else a component walk
 * with openat(O_NOFOLLOW | O_DIRECTORY).  A symlink anywhere in the parent
 * chain is refused with XR_EUNSAFE (message names the path).
 */

/*
 * Opens the parent directory of relpath beneath rootfd and returns its fd in
 * *dirfd and a pointer to the last component (inside relpath) in *leaf.
 * For relpath "." returns a dup of rootfd and leaf ".".  Returns 0,
 * XR_EUNSAFE (invalid name or symlinked parent), or a negative errno-based
 * error: XR_EFILEIO with errno set (ENOENT when a parent is missing).
 */
int xr_fs_open_parent(int rootfd, const char *relpath, int *dirfd, const char **leaf);
/* The same, reporting nothing on a symlinked parent (a probe: the caller decides). */
int xr_fs_open_parent_quiet(int rootfd, const char *relpath, int *dirfd, const char **leaf);

/* Opens relpath itself (O_NOFOLLOW added) beneath rootfd; returns fd or negative xr_err. */
int xr_fs_open(int rootfd, const char *relpath, int flags, mode_t mode);

/* lstat beneath rootfd; returns 0, XR_EVANISHED (ENOENT) or XR_EFILEIO/XR_EUNSAFE. */
int xr_fs_lstat(int rootfd, const char *relpath, struct stat *st);

/* Whether openat2 with RESOLVE_BENEATH is available (probed once). */
bool xr_fs_have_openat2(void);

/* Writes all of buf; returns 0 or XR_EFILEIO (errno set). Retries EINTR. */
int xr_write_all(int fd, const void *buf, size_t len);

/* fsync of a directory fd; returns 0 or XR_EFILEIO. */
int xr_fsync_dir(int dirfd);

/*
 * Removes relpath (beneath dirfd, no symlink following) and, for a
 * directory, everything inside it.  Missing is not an error.
 */
int xr_fs_remove_tree(int dirfd, const char *name);

#endif

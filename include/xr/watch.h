/* watch.h - inotify on a tree: which paths changed since the last change set. */
#ifndef XR_WATCH_H
#define XR_WATCH_H

#include <stdbool.h>
#include <stddef.h>

struct xr_filters;

/*
 * Recursive inotify over the tree below a directory.  Watches are added for
 * every directory the filters do not exclude (XR_SIDE_SENDER), including
 * directories created later: when a directory appears, its watch is added
 * and it is then scanned, so a file created inside it before the watch
 * existed is still reported.  Events are coalesced into one batch per quiet
 * period: a batch is due quiet_ms after its last event, but never later than
 * max_delay_ms after its first (so a steady stream still ships).  A file
 * being written in place is reported on IN_CLOSE_WRITE (and IN_MODIFY
 * restarts the quiet period).  Moves within the tree report both names.
 * IN_Q_OVERFLOW (or a failed inotify_add_watch for lack of watches) sets
 * "rescan": the caller must walk the whole tree; watching goes on.
 * Memory is bounded: past max_paths distinct paths a batch collapses to
 * rescan.
 */
struct xr_watch_opts {
	const struct xr_filters *filters;	/* may be NULL */
	const char *skip_name;			/* top-level name never watched */
	unsigned quiet_ms;			/* default 10 */
	unsigned max_delay_ms;			/* default 100 */
	size_t max_paths;			/* default 100000 */
};

struct xr_watch;

/*
 * Starts watching the directory at path (opened O_DIRECTORY|O_NOFOLLOW).
 * Paths reported are relative to it ("conf.d/local.ini").  Returns 0 or
 * XR_EFILEIO / XR_ENOMEM with a message naming the path.
 */
int xr_watch_open(struct xr_watch **w, const char *path, const struct xr_watch_opts *o);
void xr_watch_close(struct xr_watch *w);

/* The inotify fd, for poll(POLLIN). */
int xr_watch_fd(const struct xr_watch *w);

/* Reads every queued event without blocking; returns 0 or XR_EFILEIO. */
int xr_watch_process(struct xr_watch *w);

/*
 * Milliseconds until the pending batch is due: -1 when nothing is pending,
 * 0 when it is due now.
 */
int xr_watch_due_ms(const struct xr_watch *w);

/*
 * Takes the pending batch: *paths receives a sorted (xr_path_cmp), unique,
 * malloc'd array of relative paths that may have changed (created,
 * modified, attributes changed, deleted, moved from or to); *rescan is true
 * when events were lost and a full walk is needed (paths may then be
 * empty).  A directory that appeared is reported with every entry found
 * in it.  Returns 0 or XR_ENOMEM.  Free with xr_watch_free_paths.
 */
int xr_watch_take(struct xr_watch *w, char ***paths, size_t *n, bool *rescan);
void xr_watch_free_paths(char **paths, size_t n);

#endif

/* watch.c - recursive inotify over a tree, coalesced into batches of changed paths. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/filter.h"
#include "xr/log.h"
#include "xr/manifest.h"
#include "xr/watch.h"

#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM |          \
	 IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW |               \
	 IN_EXCL_UNLINK)
#define READ_BUF_SIZE	  65536
#define DEFAULT_QUIET	  10
#define DEFAULT_MAX_DELAY 100
#define DEFAULT_MAX_PATHS 100000
#define NS_PER_MS	  1000000ULL

/* wd -> relative path ("" for the root); open addressing, linear probing. */
struct wd_slot {
	int wd;	      /* -1: empty */
	unsigned gen; /* sweep generation that last confirmed this watch */
	char *path;
};

struct wd_map {
	struct wd_slot *v;
	size_t cap, n; /* cap is a power of two */
};

/* The pending batch: a set of malloc'd strings, open addressing. */
struct str_set {
	char **v;
	size_t cap, n;
};

/* A batch waits at most this long for files still open for writing. */
#define WRITER_HOLD_MS 2000u
#define WRITERS_MAX 1024u

struct xr_watch {
	int ifd, rootfd, root_wd;
	char *root; /* the path given to xr_watch_open, for messages */
	const struct xr_filters *filters;
	char *skip_name;
	unsigned quiet_ms, max_delay_ms;
	size_t max_paths;
	struct wd_map wds;
	unsigned gen;
	struct str_set pending;
	/* files written now (created or modified, not yet closed): the batch waits */
	char **writing;
	size_t nwriting;
	bool rescan, active, warned_nospc;
	uint64_t now, first_ns, last_ns;
	/* a directory's IN_MOVED_FROM still waiting for its IN_MOVED_TO */
	char *move_from;
	uint32_t move_cookie;
	char scratch[XR_PATH_MAX + 1];
	alignas(struct inotify_event) char buf[READ_BUF_SIZE];
};

/* Returns CLOCK_MONOTONIC in nanoseconds. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* True if path is prefix or lies below it. */
static bool path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (n == 0)
		return true;
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ---- wd map ------------------------------------------------------------- */

/* Returns the home slot of wd. */
static size_t wd_home(const struct wd_map *m, int wd)
{
	return ((uint32_t)wd * 2654435761u) & (m->cap - 1);
}

/* Returns the slot index holding wd, or SIZE_MAX. */
static size_t wd_find(const struct wd_map *m, int wd)
{
	size_t i;

	if (m->cap == 0)
		return SIZE_MAX;
	for (i = wd_home(m, wd); m->v[i].wd != -1; i = (i + 1) & (m->cap - 1))
		if (m->v[i].wd == wd)
			return i;
	return SIZE_MAX;
}

/* Doubles the table (or creates it); returns 0 or XR_ENOMEM. */
static int wd_grow(struct wd_map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64, i, j;
	struct wd_slot *nv = malloc(ncap * sizeof(*nv));

	if (!nv)
		return XR_ENOMEM;
	for (i = 0; i < ncap; i++) {
		nv[i].wd = -1;
		nv[i].path = NULL;
	}
	for (i = 0; i < m->cap; i++) {
		if (m->v[i].wd == -1)
			continue;
		j = ((uint32_t)m->v[i].wd * 2654435761u) & (ncap - 1);
		/* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): all set */
		while (nv[j].wd != -1)
			j = (j + 1) & (ncap - 1);
		nv[j] = m->v[i];
	}
	free(m->v);
	m->v = nv;
	m->cap = ncap;
	return 0;
}

/* Maps wd to a copy of path (replacing an older path); returns 0 or XR_ENOMEM. */
static int wd_put(struct wd_map *m, int wd, const char *path, unsigned gen)
{
	char *p = strdup(path);
	size_t i;

	if (!p)
		return XR_ENOMEM;
	i = wd_find(m, wd);
	if (i != SIZE_MAX) {
		free(m->v[i].path);
		m->v[i].path = p;
		m->v[i].gen = gen;
		return 0;
	}
	if ((m->n + 1) * 2 > m->cap && wd_grow(m) < 0) {
		free(p);
		return XR_ENOMEM;
	}
	/* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): all slots set */
	for (i = wd_home(m, wd); m->v[i].wd != -1; i = (i + 1) & (m->cap - 1))
		;
	m->v[i].wd = wd;
	m->v[i].gen = gen;
	m->v[i].path = p;
	m->n++;
	return 0;
}

/* Removes slot i, shifting later members of its probe run back (no tombstones). */
static void wd_del(struct wd_map *m, size_t i)
{
	size_t mask = m->cap - 1, j = i, k;

	free(m->v[i].path);
	m->v[i].wd = -1;
	m->v[i].path = NULL;
	m->n--;
	for (;;) {
		j = (j + 1) & mask;
		if (m->v[j].wd == -1)
			return;
		k = wd_home(m, m->v[j].wd);
		/* the entry at j may fill the hole at i unless its home lies in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		m->v[i] = m->v[j];
		m->v[j].wd = -1;
		m->v[j].path = NULL;
		i = j;
	}
}

/* Frees every path and the table. */
static void wd_free(struct wd_map *m)
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->cap = m->n = 0;
}

/* ---- pending set -------------------------------------------------------- */

/* FNV-1a of a string. */
static size_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)h;
}

/* Adds a copy of s unless present; returns 0 or XR_ENOMEM. */
static int set_add(struct str_set *set, const char *s)
{
	size_t i, j;

	if ((set->n + 1) * 2 > set->cap) {
		size_t ncap = set->cap ? set->cap * 2 : 64;
		char **nv = calloc(ncap, sizeof(*nv));

		if (!nv)
			return XR_ENOMEM;
		for (i = 0; i < set->cap; i++) {
			if (!set->v[i])
				continue;
			for (j = str_hash(set->v[i]) & (ncap - 1); nv[j]; j = (j + 1) & (ncap - 1))
				;
			nv[j] = set->v[i];
		}
		free(set->v);
		set->v = nv;
		set->cap = ncap;
	}
	for (i = str_hash(s) & (set->cap - 1); set->v[i]; i = (i + 1) & (set->cap - 1))
		if (strcmp(set->v[i], s) == 0)
			return 0;
	set->v[i] = strdup(s);
	if (!set->v[i])
		return XR_ENOMEM;
	set->n++;
	return 0;
}

/* Frees every string and the table; the set is empty afterwards. */
static void set_clear(struct str_set *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++)
		free(set->v[i]);
	free(set->v);
	set->v = NULL;
	set->cap = set->n = 0;
}

/* ---- the batch ---------------------------------------------------------- */

/* Records that an event arrived now: starts the batch or restarts its quiet period. */
static void batch_touch(struct xr_watch *w)
{
	if (!w->active) {
		w->active = true;
		w->first_ns = w->now;
	}
	w->last_ns = w->now;
}

/* Collapses the batch to "rescan": its paths are dropped. */
static void batch_rescan(struct xr_watch *w)
{
	set_clear(&w->pending);
	w->rescan = true;
	batch_touch(w);
}

/* Adds path to the batch; past max_paths (or out of memory) the batch collapses. */
static void batch_add(struct xr_watch *w, const char *path)
{
	batch_touch(w);
	if (w->rescan)
		return;
	if (set_add(&w->pending, path) < 0 || w->pending.n > w->max_paths)
		batch_rescan(w);
}

/*
 * Files being written: a new file is reported on IN_CREATE but its content
 * is complete only at IN_CLOSE_WRITE (the signer writes .p12 files in
 * place), so a batch is held while any is open, at most WRITER_HOLD_MS.
 */
static void writing_del(struct xr_watch *w, const char *path)
{
	for (size_t i = 0; i < w->nwriting; i++) {
		if (strcmp(w->writing[i], path) == 0) {
			free(w->writing[i]);
			w->writing[i] = w->writing[--w->nwriting];
			return;
		}
	}
}

static void writing_add(struct xr_watch *w, const char *path)
{
	char **v;

	for (size_t i = 0; i < w->nwriting; i++)
		if (strcmp(w->writing[i], path) == 0)
			return;
	if (w->nwriting >= WRITERS_MAX)
		return;	/* beyond this many the hold's cap decides */
	v = realloc(w->writing, (w->nwriting + 1) * sizeof(*v));
	if (v == NULL)
		return;
	w->writing = v;
	if ((v[w->nwriting] = strdup(path)) != NULL)
		w->nwriting++;
}

/* True if rel (beneath the root, not followed) is a regular file: only those get written. */
static bool is_regular(const struct xr_watch *w, const char *rel)
{
	struct stat st;

	return fstatat(w->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static void writing_clear(struct xr_watch *w)
{
	for (size_t i = 0; i < w->nwriting; i++)
		free(w->writing[i]);
	free(w->writing);
	w->writing = NULL;
	w->nwriting = 0;
}

/* ---- watches ------------------------------------------------------------ */

/* Drops the watch in slot i (the kernel's IN_IGNORED for it is then ignored). */
static void unwatch_slot(struct xr_watch *w, size_t i)
{
	inotify_rm_watch(w->ifd, w->wds.v[i].wd);
	wd_del(&w->wds, i);
}

/*
 * Drops every watch on prefix or below it, or (stale_only) only those not
 * confirmed by the current sweep generation.
 */
static void unwatch_under(struct xr_watch *w, const char *prefix, bool stale_only)
{
	size_t i = 0;

	/* wd_del() shifts later slots back into i, so i is re-examined after a removal */
	while (i < w->wds.cap) {
		struct wd_slot *s = &w->wds.v[i];

		if (s->wd != -1 && s->wd != w->root_wd && path_under(s->path, prefix) &&
		    (!stale_only || s->gen != w->gen)) {
			unwatch_slot(w, i);
			continue;
		}
		i++;
	}
}

/* Renames the watched paths old and below to the same places under new. */
static void rewrite_under(struct xr_watch *w, const char *old, const char *new)
{
	size_t i, olen = strlen(old), nlen = strlen(new);

	for (i = 0; i < w->wds.cap; i++) {
		struct wd_slot *s = &w->wds.v[i];
		size_t rest;
		char *p;

		if (s->wd == -1 || !path_under(s->path, old))
			continue;
		rest = strlen(s->path) - olen;
		p = nlen + rest <= XR_PATH_MAX ? malloc(nlen + rest + 1) : NULL;
		if (!p) {
			/* rescanned below the new name by the caller; drop it here */
			s->path[0] = '\0';
			continue;
		}
		memcpy(p, new, nlen);
		memcpy(p + nlen, s->path + olen, rest + 1);
		free(s->path);
		s->path = p;
	}
	/* entries emptied above (never the root) are removed */
	for (i = 0; i < w->wds.cap;) {
		if (w->wds.v[i].wd != -1 && w->wds.v[i].wd != w->root_wd &&
		    w->wds.v[i].path[0] == '\0') {
			unwatch_slot(w, i);
			continue;
		}
		i++;
	}
}

/* The name of rel for messages: the root's path for the root itself. */
static const char *shown(const struct xr_watch *w, const char *rel)
{
	return rel[0] ? rel : w->root;
}

/*
 * Adds a watch on the directory open at dfd whose relative path is rel.
 * Returns the watch descriptor (> 0), 0 when the directory is gone (nothing
 * to watch), or -1 when the watch failed and a rescan was requested.
 */
static int watch_dir(struct xr_watch *w, int dfd, const char *rel)
{
	char proc[64];
	int wd;

	/* through the descriptor, so the watch is on exactly the directory opened */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/.", dfd);
	wd = inotify_add_watch(w->ifd, proc, WATCH_MASK);
	if (wd < 0 && errno == ENOENT && access("/proc/self/fd", F_OK) != 0) {
		/* no /proc: fall back to the path, which may have moved meanwhile */
		char *full = malloc(strlen(w->root) + strlen(rel) + 2);

		if (!full) {
			errno = ENOMEM;
		} else {
			sprintf(full, "%s/%s", w->root, rel);
			wd = inotify_add_watch(w->ifd, full, WATCH_MASK);
			free(full);
		}
	}
	if (wd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		if (errno != ENOSPC || !w->warned_nospc)
			xr_warn("%s: inotify_add_watch: %s%s; falling back to full rescans",
				shown(w, rel), strerror(errno),
				errno == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
		if (errno == ENOSPC)
			w->warned_nospc = true;
		batch_rescan(w);
		return -1;
	}
	if (wd_put(&w->wds, wd, rel, w->gen) < 0) {
		inotify_rm_watch(w->ifd, wd);
		batch_rescan(w);
		return -1;
	}
	return wd;
}

/* True if the entry name at dfd is a directory (lstat semantics). */
static bool entry_is_dir(int dfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Watches the directory open at dfd (consumed), whose relative path is in
 * path[0..len), then scans it: every entry the filters let through is added
 * to the batch when report is set, and every such directory is watched and
 * scanned the same way.  The watch comes before the scan, so an entry made
 * while scanning is either seen here or produces an event.  Returns as
 * watch_dir() for the directory itself.
 */
static int scan_dir(struct xr_watch *w, int dfd, char *path, size_t len, bool report)
{
	struct dirent *de;
	DIR *d;
	int wd = watch_dir(w, dfd, path);

	if (wd <= 0) {
		close(dfd);
		return wd;
	}
	d = fdopendir(dfd);
	if (!d) {
		xr_warn("%s: opendir: %s", shown(w, path), strerror(errno));
		close(dfd);
		batch_rescan(w);
		return wd;
	}
	for (;;) {
		size_t nlen, clen;
		bool is_dir;
		int cfd;

		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (len == 0 && w->skip_name && strcmp(de->d_name, w->skip_name) == 0)
			continue;
		nlen = strlen(de->d_name);
		clen = len ? len + 1 + nlen : nlen;
		if (clen > XR_PATH_MAX) {
			xr_warn("%s/%s: path too long to watch", shown(w, path), de->d_name);
			batch_rescan(w);
			continue;
		}
		if (len)
			path[len] = '/';
		memcpy(path + clen - nlen, de->d_name, nlen + 1);
		is_dir = entry_is_dir(dirfd(d), de);
		if (!xr_filters_excluded(w->filters, path, is_dir, XR_SIDE_SENDER)) {
			if (report)
				batch_add(w, path);
			if (is_dir) {
				cfd = openat(dirfd(d), de->d_name,
					     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (cfd >= 0) {
					(void)scan_dir(w, cfd, path, clen, report);
				} else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
					xr_warn("%s: open directory: %s", path, strerror(errno));
					batch_rescan(w);
				}
			}
		}
		path[len] = '\0';
	}
	if (errno != 0) {
		xr_warn("%s: readdir: %s", shown(w, path), strerror(errno));
		batch_rescan(w);
	}
	closedir(d);
	return wd;
}

/*
 * Opens the directory at rel below the root one component at a time,
 * never following a symlink.  Returns the descriptor or -1 with errno set.
 */
static int open_rel_dir(int rootfd, const char *rel)
{
	const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	char name[XR_NAME_MAX + 1];
	int fd = openat(rootfd, ".", flags), nfd, saved;

	while (fd >= 0 && *rel) {
		size_t n = strcspn(rel, "/");

		if (n > XR_NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, rel, n);
		name[n] = '\0';
		rel += n + (rel[n] == '/');
		nfd = openat(fd, name, flags);
		saved = errno;
		close(fd);
		errno = saved;
		fd = nfd;
	}
	return fd;
}

/*
 * A directory appeared at w->scratch (created or moved in): watches its
 * subtree and reports every entry in it.  With sweep, watches below it that
 * the scan did not confirm (now excluded) are dropped.
 */
static void add_tree(struct xr_watch *w, bool sweep)
{
	size_t len = strlen(w->scratch);
	int fd = open_rel_dir(w->rootfd, w->scratch);

	if (fd < 0) {
		/* gone or replaced already: its events follow, or it is no directory */
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
			xr_warn("%s: open directory: %s", w->scratch, strerror(errno));
			batch_rescan(w);
		}
		return;
	}
	w->gen++;
	(void)scan_dir(w, fd, w->scratch, len, true);
	w->scratch[len] = '\0';
	if (sweep)
		unwatch_under(w, w->scratch, true);
}

/* Events were lost: re-walk the tree to watch new directories and drop vanished ones. */
static void resync(struct xr_watch *w)
{
	int fd = openat(w->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	batch_rescan(w);
	free(w->move_from);
	w->move_from = NULL;
	if (fd < 0) {
		xr_warn("%s: open directory: %s", w->root, strerror(errno));
		return;
	}
	w->gen++;
	w->scratch[0] = '\0';
	if (scan_dir(w, fd, w->scratch, 0, false) <= 0)
		xr_warn("%s: cannot watch the directory any more", w->root);
	unwatch_under(w, "", true);
}

/* The directory whose IN_MOVED_FROM is pending left the tree: drop its watches. */
static void moved_out(struct xr_watch *w)
{
	if (!w->move_from)
		return;
	unwatch_under(w, w->move_from, false);
	free(w->move_from);
	w->move_from = NULL;
}

/*
 * IN_MOVED_FROM of w->scratch: reports the old name; for a directory,
 * remembers it until the matching IN_MOVED_TO (or the end of the queue).
 */
static void on_moved_from(struct xr_watch *w, uint32_t cookie, bool is_dir, bool excluded)
{
	if (excluded)
		return;
	batch_add(w, w->scratch);
	if (!is_dir)
		return;
	moved_out(w);
	w->move_from = strdup(w->scratch);
	if (!w->move_from) {
		batch_rescan(w);
		return;
	}
	w->move_cookie = cookie;
}

/*
 * IN_MOVED_TO of w->scratch: reports the new name; a directory moved within
 * the tree keeps its watches (same wds) under rewritten paths, and its whole
 * subtree is scanned and reported under the new name.
 */
static void on_moved_to(struct xr_watch *w, uint32_t cookie, bool is_dir, bool excluded)
{
	bool paired = w->move_from && w->move_cookie == cookie;

	if (excluded) {
		if (paired)
			moved_out(w);
		return;
	}
	batch_add(w, w->scratch);
	if (!is_dir)
		return;
	if (paired) {
		rewrite_under(w, w->move_from, w->scratch);
		free(w->move_from);
		w->move_from = NULL;
	}
	add_tree(w, paired);
}

/* Handles one event. */
static void on_event(struct xr_watch *w, const struct inotify_event *ev)
{
	const struct wd_slot *s;
	bool is_dir, excluded;
	size_t i, dlen, nlen;

	if (ev->mask & IN_Q_OVERFLOW) {
		writing_clear(w);	/* their closes may be among the lost events */
		resync(w);
		return;
	}
	i = wd_find(&w->wds, ev->wd);
	if (i == SIZE_MAX)
		return; /* a watch already dropped */
	s = &w->wds.v[i];
	if (ev->mask & IN_IGNORED) {
		if (ev->wd == w->root_wd) {
			xr_warn("%s: the watched directory was removed", w->root);
			w->root_wd = -1;
			batch_rescan(w);
		}
		wd_del(&w->wds, i);
		return;
	}
	if (ev->len == 0 || ev->name[0] == '\0') {
		/* events on the directory itself; moves and removal arrive via its parent */
		if (ev->mask & IN_ATTRIB)
			batch_add(w, s->path[0] ? s->path : ".");
		return;
	}
	dlen = strlen(s->path);
	nlen = strlen(ev->name);
	if (dlen == 0 && w->skip_name && strcmp(ev->name, w->skip_name) == 0)
		return;
	if (dlen + 1 + nlen > XR_PATH_MAX) {
		xr_warn("%s/%s: path too long to watch", shown(w, s->path), ev->name);
		batch_rescan(w);
		return;
	}
	if (dlen) {
		memcpy(w->scratch, s->path, dlen);
		w->scratch[dlen++] = '/';
	}
	memcpy(w->scratch + dlen, ev->name, nlen + 1);
	/* s may move from here on: the map can change below */
	is_dir = (ev->mask & IN_ISDIR) != 0;
	excluded = xr_filters_excluded(w->filters, w->scratch, is_dir, XR_SIDE_SENDER);
	if (ev->mask & (IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE))
		writing_del(w, w->scratch);
	else if (!is_dir && !excluded && (ev->mask & (IN_CREATE | IN_MODIFY)) &&
		 is_regular(w, w->scratch))
		writing_add(w, w->scratch);
	if (ev->mask & IN_MOVED_FROM) {
		on_moved_from(w, ev->cookie, is_dir, excluded);
		return;
	}
	if (ev->mask & IN_MOVED_TO) {
		on_moved_to(w, ev->cookie, is_dir, excluded);
		return;
	}
	if (excluded)
		return;
	if (ev->mask & (IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB))
		batch_add(w, w->scratch);
	else if ((ev->mask & IN_MODIFY) && w->active)
		batch_touch(w); /* a write in progress: wait for its close */
	if ((ev->mask & IN_CREATE) && is_dir)
		add_tree(w, false);
}

/* ---- public ------------------------------------------------------------- */

/* Opens the root, starts inotify and watches the tree; returns 0 or a negative xr_err. */
int xr_watch_open(struct xr_watch **wp, const char *path, const struct xr_watch_opts *o)
{
	struct xr_watch *w;
	int rc = XR_ENOMEM, fd;

	*wp = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		goto out;
	w->ifd = w->rootfd = w->root_wd = -1;
	w->quiet_ms = o && o->quiet_ms ? o->quiet_ms : DEFAULT_QUIET;
	w->max_delay_ms = o && o->max_delay_ms ? o->max_delay_ms : DEFAULT_MAX_DELAY;
	w->max_paths = o && o->max_paths ? o->max_paths : DEFAULT_MAX_PATHS;
	w->filters = o ? o->filters : NULL;
	w->root = strdup(path);
	if (!w->root)
		goto out;
	if (o && o->skip_name) {
		w->skip_name = strdup(o->skip_name);
		if (!w->skip_name)
			goto out;
	}
	w->now = now_ns();
	rc = XR_EFILEIO;
	w->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (w->rootfd < 0) {
		xr_error("%s: open directory: %s", path, strerror(errno));
		goto out;
	}
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ifd < 0) {
		xr_error("%s: inotify_init1: %s", path, strerror(errno));
		goto out;
	}
	fd = openat(w->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		xr_error("%s: open directory: %s", path, strerror(errno));
		goto out;
	}
	w->scratch[0] = '\0';
	w->root_wd = scan_dir(w, fd, w->scratch, 0, false);
	if (w->root_wd <= 0) {
		xr_error("%s: inotify_add_watch: cannot watch the directory", path);
		goto out;
	}
	*wp = w;
	rc = 0;
out:
	if (rc == XR_ENOMEM)
		xr_error("%s: watch: %s", path, strerror(ENOMEM));
	if (rc < 0)
		xr_watch_close(w);
	return rc;
}

/* Stops watching and frees everything; NULL is ignored. */
void xr_watch_close(struct xr_watch *w)
{
	if (!w)
		return;
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->rootfd >= 0)
		close(w->rootfd);
	wd_free(&w->wds);
	writing_clear(w);
	set_clear(&w->pending);
	free(w->move_from);
	free(w->skip_name);
	free(w->root);
	free(w);
}

/* Returns the inotify descriptor for the caller's poll(). */
int xr_watch_fd(const struct xr_watch *w)
{
	return w->ifd;
}

/* Drains the inotify queue into the batch; returns 0 or XR_EFILEIO. */
int xr_watch_process(struct xr_watch *w)
{
	const struct inotify_event *ev;
	ssize_t r;
	size_t off;

	for (;;) {
		r = read(w->ifd, w->buf, sizeof(w->buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r < 0) {
			xr_error("%s: read inotify events: %s", w->root, strerror(errno));
			return XR_EFILEIO;
		}
		if (r == 0)
			break;
		w->now = now_ns();
		for (off = 0; off + sizeof(*ev) <= (size_t)r; off += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(const void *)(w->buf + off);
			on_event(w, ev);
		}
	}
	/* a directory moved out of the tree has no IN_MOVED_TO */
	moved_out(w);
	return 0;
}

/* Returns the ms until the batch is due: -1 none pending, 0 due now. */
int xr_watch_due_ms(const struct xr_watch *w)
{
	uint64_t due, now;

	if (!w->active)
		return -1;
	due = w->last_ns + w->quiet_ms * NS_PER_MS;
	if (due > w->first_ns + w->max_delay_ms * NS_PER_MS)
		due = w->first_ns + w->max_delay_ms * NS_PER_MS;
	/* a file still open for writing holds the batch (its close is an event) */
	if (w->nwriting > 0 && due < w->first_ns + WRITER_HOLD_MS * NS_PER_MS)
		due = w->first_ns + WRITER_HOLD_MS * NS_PER_MS;
	now = now_ns();
	if (due <= now)
		return 0;
	due = (due - now + NS_PER_MS - 1) / NS_PER_MS;
	return due > INT_MAX ? INT_MAX : (int)due;
}

/* qsort comparator over char * elements, in xr_path_cmp order. */
static int cmp_paths(const void *a, const void *b)
{
	return xr_path_cmp(*(char *const *)a, *(char *const *)b);
}

/* Hands over the batch, sorted and unique; returns 0 or XR_ENOMEM. */
int xr_watch_take(struct xr_watch *w, char ***paths, size_t *n, bool *rescan)
{
	char **v = NULL;
	size_t i, k = 0;

	*paths = NULL;
	*n = 0;
	*rescan = false;
	if (w->pending.n) {
		v = malloc(w->pending.n * sizeof(*v));
		if (!v) {
			xr_error("%s: change list: %s", w->root, strerror(ENOMEM));
			return XR_ENOMEM;
		}
		for (i = 0; i < w->pending.cap; i++)
			if (w->pending.v[i])
				v[k++] = w->pending.v[i];
		qsort(v, k, sizeof(*v), cmp_paths);
		free(w->pending.v);
		w->pending.v = NULL;
		w->pending.cap = w->pending.n = 0;
	}
	*paths = v;
	*n = k;
	*rescan = w->rescan;
	w->rescan = false;
	w->active = false;
	return 0;
}

/* Frees a batch returned by xr_watch_take(). */
void xr_watch_free_paths(char **paths, size_t n)
{
	size_t i;

	if (!paths)
		return;
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

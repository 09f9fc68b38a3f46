/* manifest.c - the file list: path order, entries, id names, and the tree walk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/filter.h"
#include "xr/fs.h"
#include "xr/hash.h"
#include "xr/log.h"
#include "xr/manifest.h"

/*
 * Compares two paths byte by byte (unsigned), except that "/" sorts before
 * every other byte and "." (the root) before everything, so a directory's
 * contents directly follow it.  Returns <0, 0 or >0.
 */
int xr_path_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	bool adot = a[0] == '.' && a[1] == '\0', bdot = b[0] == '.' && b[1] == '\0';

	if (adot || bdot)
		return (int)bdot - (int)adot;
	while (*x && *x == *y) {
		x++;
		y++;
	}
	if (*x == *y)
		return 0;
	if (*x == '\0')
		return -1;
	if (*y == '\0')
		return 1;
	if (*x == '/')
		return -1;
	if (*y == '/')
		return 1;
	return (int)*x - (int)*y;
}

/*
 * Returns true if p is "." or a relative path of non-empty components, none
 * of them "." or "..", with no leading or trailing "/", shorter than
 * XR_PATH_MAX and with components of at most XR_NAME_MAX bytes.
 */
bool xr_path_valid(const char *p)
{
	const char *c = p;
	size_t total;

	if (!p || !*p)
		return false;
	total = strlen(p);
	if (total >= XR_PATH_MAX)
		return false;
	if (strcmp(p, ".") == 0)
		return true;
	for (;;) {
		const char *end = strchr(c, '/');
		size_t len = end ? (size_t)(end - c) : strlen(c);

		if (len == 0 || len > XR_NAME_MAX)
			return false;
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!end)
			return true;
		c = end + 1;
	}
}

/* Makes m an empty manifest. */
void xr_manifest_init(struct xr_manifest *m)
{
	memset(m, 0, sizeof(*m));
}

/* Frees the strings an entry owns and clears them. */
void xr_entry_free(struct xr_entry *e)
{
	if (!e)
		return;
	free(e->path);
	free(e->link);
	e->path = NULL;
	e->link = NULL;
}

/* Frees every entry and the id tables; m is left empty and reusable. */
void xr_manifest_free(struct xr_manifest *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		xr_entry_free(&m->e[i]);
	free(m->e);
	for (i = 0; i < m->nusers; i++)
		free(m->users[i].name);
	for (i = 0; i < m->ngroups; i++)
		free(m->groups[i].name);
	free(m->users);
	free(m->groups);
	xr_manifest_init(m);
}

/* Appends e, taking ownership of its strings; returns 0 or XR_ENOMEM. */
static int manifest_push(struct xr_manifest *m, struct xr_entry *e)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct xr_entry *ne = realloc(m->e, cap * sizeof(*ne));

		if (!ne)
			return XR_ENOMEM;
		m->e = ne;
		m->cap = cap;
	}
	m->e[m->n++] = *e;
	return 0;
}

/* Appends a deep copy of e; returns 0 or XR_ENOMEM. */
int xr_manifest_add(struct xr_manifest *m, const struct xr_entry *e)
{
	struct xr_entry c = *e;
	int rc;

	c.path = e->path ? strdup(e->path) : NULL;
	c.link = e->link ? strdup(e->link) : NULL;
	if ((e->path && !c.path) || (e->link && !c.link)) {
		rc = XR_ENOMEM;
		goto out;
	}
	rc = manifest_push(m, &c);
out:
	if (rc)
		xr_entry_free(&c);
	return rc;
}

/* Both sides hold one entry per file for the whole run: keep them small. */
_Static_assert(sizeof(struct xr_entry) <= 80, "manifest entry grew");

/* Gives back unused capacity; a failed realloc keeps the larger block. */
void xr_manifest_trim(struct xr_manifest *m)
{
	struct xr_entry *ne;

	if (m->n == 0 || m->n == m->cap)
		return;
	ne = realloc(m->e, m->n * sizeof(*ne));
	if (ne) {
		m->e = ne;
		m->cap = m->n;
	}
}

/* qsort adaptor for entries. */
static int entry_cmp(const void *a, const void *b)
{
	return xr_path_cmp(((const struct xr_entry *)a)->path, ((const struct xr_entry *)b)->path);
}

/* Sorts with xr_path_cmp; returns 0, or XR_EPROTO if two entries share a path. */
int xr_manifest_sort(struct xr_manifest *m)
{
	size_t i;
	bool sorted = true;

	for (i = 1; i < m->n && sorted; i++)
		sorted = xr_path_cmp(m->e[i - 1].path, m->e[i].path) < 0;
	if (sorted)
		return 0;
	qsort(m->e, m->n, sizeof(m->e[0]), entry_cmp);
	for (i = 1; i < m->n; i++)
		if (xr_path_cmp(m->e[i - 1].path, m->e[i].path) == 0)
			return XR_EPROTO;
	return 0;
}

/* Binary search of a sorted manifest; returns the entry or NULL. */
struct xr_entry *xr_manifest_find(const struct xr_manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = xr_path_cmp(m->e[mid].path, path);

		if (c == 0)
			return &m->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* True if id is already in the table. */
static bool idtab_has(const struct xr_idname *t, size_t n, uint32_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i].id == id)
			return true;
	return false;
}

/* Appends (id, copy of name) to a table; returns 0 or XR_ENOMEM. */
static int idtab_add(struct xr_idname **t, size_t *n, uint32_t id, const char *name)
{
	struct xr_idname *nt;
	char *copy = strdup(name);

	if (!copy)
		return XR_ENOMEM;
	nt = realloc(*t, (*n + 1) * sizeof(*nt));
	if (!nt) {
		free(copy);
		return XR_ENOMEM;
	}
	nt[*n].id = id;
	nt[*n].name = copy;
	*t = nt;
	(*n)++;
	return 0;
}

/*
 * Looks up the name of a user (is_group false) or group id with the
 * reentrant NSS calls into *name (malloc'd); *name stays NULL when the id has
 * no name (a failing lookup counts as no name).  Returns 0 or XR_ENOMEM.
 */
static int lookup_id_name(uint32_t id, bool is_group, char **name)
{
	size_t len = 1024;
	char *buf = NULL;
	const char *found = NULL;
	int rc = 0, err = 0;

	*name = NULL;
	for (;;) {
		char *nb = realloc(buf, len);

		if (!nb) {
			rc = XR_ENOMEM;
			goto out;
		}
		buf = nb;
		if (is_group) {
			struct group gr, *res = NULL;

			err = getgrgid_r((gid_t)id, &gr, buf, len, &res);
			found = res ? gr.gr_name : NULL;
		} else {
			struct passwd pw, *res = NULL;

			err = getpwuid_r((uid_t)id, &pw, buf, len, &res);
			found = res ? pw.pw_name : NULL;
		}
		if (err != ERANGE || len >= (1u << 20))
			break;
		len *= 2;
	}
	if (!err && found) {
		*name = strdup(found);
		if (!*name)
			rc = XR_ENOMEM;
	}
out:
	free(buf);
	return rc;
}

/* Adds the name of one id to a table unless present or nameless. */
static int note_one(struct xr_idname **t, size_t *n, uint32_t id, bool is_group)
{
	char *name = NULL;
	int rc;

	if (id == 0 || idtab_has(*t, *n, id))
		return 0; /* rsync never maps root by name */
	rc = lookup_id_name(id, is_group, &name);
	if (rc == 0 && name)
		rc = idtab_add(t, n, id, name);
	free(name);
	return rc;
}

/*
 * Records the names of uid and gid (getpwuid_r/getgrgid_r) once each.  Ids
 * without a name, and id 0, are not recorded (rsync never maps root).
 * Returns 0 or XR_ENOMEM.
 */
int xr_manifest_note_ids(struct xr_manifest *m, uint32_t uid, uint32_t gid)
{
	int rc = note_one(&m->users, &m->nusers, uid, false);

	if (rc == 0)
		rc = note_one(&m->groups, &m->ngroups, gid, true);
	return rc;
}

/* Maps a st_mode to enum xr_ftype (0 for unknown types). */
static uint8_t ftype_of(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return XR_FT_REG;
	case S_IFDIR:
		return XR_FT_DIR;
	case S_IFLNK:
		return XR_FT_LINK;
	case S_IFCHR:
		return XR_FT_CHR;
	case S_IFBLK:
		return XR_FT_BLK;
	case S_IFIFO:
		return XR_FT_FIFO;
	case S_IFSOCK:
		return XR_FT_SOCK;
	default:
		return 0;
	}
}

/* Fills the stat-derived fields of e (not path, link or hash). */
static void entry_from_stat(struct xr_entry *e, const struct stat *st)
{
	e->type = ftype_of(st->st_mode);
	e->mode = (uint32_t)(st->st_mode & 07777);
	e->uid = (uint32_t)st->st_uid;
	e->gid = (uint32_t)st->st_gid;
	e->size = e->type == XR_FT_REG ? (uint64_t)st->st_size : 0;
	e->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	e->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	e->rdev = (e->type == XR_FT_CHR || e->type == XR_FT_BLK) ? (uint64_t)st->st_rdev : 0;
	if (e->type == XR_FT_DIR) {
		/* a directory has no content hash: its slot holds the identity */
		e->id.dev = (uint64_t)st->st_dev;
		e->id.ino = (uint64_t)st->st_ino;
	}
}

/*
 * Reads the target of symlink name in dirfd into a new string *out.
 * Returns 0, XR_EVANISHED (gone or no longer a link), XR_ELIMIT (target too
 * long), XR_EFILEIO or XR_ENOMEM; errno is kept from the failing call.
 */
static int read_link(int dirfd, const char *name, char **out)
{
	char buf[XR_PATH_MAX];
	ssize_t r = readlinkat(dirfd, name, buf, sizeof(buf));

	*out = NULL;
	if (r < 0)
		return (errno == ENOENT || errno == EINVAL) ? XR_EVANISHED : XR_EFILEIO;
	if ((size_t)r >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return XR_ELIMIT;
	}
	*out = strndup(buf, (size_t)r);
	return *out ? 0 : XR_ENOMEM;
}

/*
 * lstat of name in dirfd into e, with path copied from relpath and the link
 * target read for symlinks.  Returns 0, XR_EVANISHED, XR_EFILEIO or
 * XR_ENOMEM.
 */
int xr_entry_stat(int dirfd, const char *name, const char *relpath, struct xr_entry *e)
{
	struct stat st;
	int rc;

	memset(e, 0, sizeof(*e));
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? XR_EVANISHED : XR_EFILEIO;
	entry_from_stat(e, &st);
	if (!e->type)
		return XR_EFILEIO;
	e->path = strdup(relpath);
	if (!e->path)
		return XR_ENOMEM;
	if (e->type == XR_FT_LINK) {
		rc = read_link(dirfd, name, &e->link);
		if (rc) {
			xr_entry_free(e);
			return rc == XR_ELIMIT ? XR_EFILEIO : rc;
		}
	}
	return 0;
}

/* A set of ids already noted during one walk (including nameless ones). */
struct idseen {
	uint32_t *v;
	size_t n, cap;
	uint32_t last;
	bool has_last;
};

/* Walk state, passed down the recursion. */
struct walk {
	const struct xr_filters *filters;
	const struct xr_walk_opts *opts;
	enum xr_filter_side side;
	struct xr_manifest *m;
	unsigned vanished, errors;
	bool no_descend; /* xr_walk_scope: list a directory without entering it */
	struct idseen users, groups;
	char path[XR_PATH_MAX];
};

/* Returns true if id was seen before in s, recording it if not (best effort). */
static bool idseen_check(struct idseen *s, uint32_t id)
{
	size_t i;

	if (s->has_last && s->last == id)
		return true;
	s->last = id;
	s->has_last = true;
	for (i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return true;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		uint32_t *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return false;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = id;
	return false;
}

/* Notes the names of e's ids once per walk; returns 0 or XR_ENOMEM. */
static int walk_note_ids(struct walk *w, const struct xr_entry *e)
{
	struct xr_manifest *m = w->m;
	int rc = 0;

	if (!idseen_check(&w->users, e->uid))
		rc = note_one(&m->users, &m->nusers, e->uid, false);
	if (rc == 0 && !idseen_check(&w->groups, e->gid))
		rc = note_one(&m->groups, &m->ngroups, e->gid, true);
	return rc;
}

/*
 * Hashes regular file name in dirfd into e (O_NOFOLLOW, nonblocking so a
 * file swapped for a fifo cannot hang us) and refreshes e's attributes from
 * the open file.  Returns 0, XR_EVANISHED if it is gone or no longer a
 * regular file, or XR_EFILEIO (reported, counted in errors by the caller).
 */
static int walk_hash(struct walk *w, int dirfd, const char *name, struct xr_entry *e)
{
	struct stat st;
	uint64_t got = 0;
	int fd, rc = 0;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP)
			return XR_EVANISHED;
		xr_error("%s: open failed: %s", w->path, strerror(errno));
		return XR_EFILEIO;
	}
	if (fstat(fd, &st) < 0) {
		xr_error("%s: fstat failed: %s", w->path, strerror(errno));
		rc = XR_EFILEIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = XR_EVANISHED;
		goto out;
	}
	rc = xr_hash_fd(fd, &e->hash, &got);
	if (rc) {
		if (rc == XR_EFILEIO)
			xr_error("%s: read failed: %s", w->path, strerror(errno));
		goto out;
	}
	if (got != (uint64_t)st.st_size && fstat(fd, &st) < 0) {
		xr_error("%s: fstat failed: %s", w->path, strerror(errno));
		rc = XR_EFILEIO;
		goto out;
	}
	entry_from_stat(e, &st);
	e->size = got;
	e->has_hash = true;
out:
	close(fd);
	return rc;
}

/* A directory's names, read in one pass and sorted. */
struct dirnames {
	char *buf;
	size_t len, cap;
	size_t *off;
	size_t n, ncap;
};

/* Appends one name; returns 0 or XR_ENOMEM. */
static int dirnames_add(struct dirnames *d, const char *name)
{
	size_t l = strlen(name) + 1;

	if (d->len + l > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		char *nb;

		while (cap < d->len + l)
			cap *= 2;
		nb = realloc(d->buf, cap);
		if (!nb)
			return XR_ENOMEM;
		d->buf = nb;
		d->cap = cap;
	}
	if (d->n == d->ncap) {
		size_t cap = d->ncap ? d->ncap * 2 : 64;
		size_t *no = realloc(d->off, cap * sizeof(*no));

		if (!no)
			return XR_ENOMEM;
		d->off = no;
		d->ncap = cap;
	}
	memcpy(d->buf + d->len, name, l);
	d->off[d->n++] = d->len;
	d->len += l;
	return 0;
}

/* Sort context for qsort_r over name offsets. */
static int name_cmp(const void *a, const void *b, void *arg)
{
	const char *buf = arg;

	return strcmp(buf + *(const size_t *)a, buf + *(const size_t *)b);
}

/*
 * Reads the names in directory fd (not closed; read through a fresh open
 * file description) into d, sorted by byte order.  Returns 0, XR_EVANISHED,
 * XR_EFILEIO (reported) or XR_ENOMEM.
 */
static int read_names(struct walk *w, int fd, struct dirnames *d)
{
	struct dirent *de;
	DIR *dir;
	int dfd, rc = 0;

	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return XR_EVANISHED;
		xr_error("%s: opendir failed: %s", w->path, strerror(errno));
		return XR_EFILEIO;
	}
	dir = fdopendir(dfd);
	if (!dir) {
		xr_error("%s: opendir failed: %s", w->path, strerror(errno));
		close(dfd);
		return XR_EFILEIO;
	}
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de)
			break;
		if (de->d_name[0] == '.' &&
		    (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		rc = dirnames_add(d, de->d_name);
		if (rc)
			goto out;
	}
	if (errno) {
		int e = errno;

		if (e == ENOENT) {
			rc = XR_EVANISHED;
			goto out;
		}
		xr_error("%s: readdir failed: %s", w->path, strerror(e));
		rc = XR_EFILEIO;
		goto out;
	}
	if (d->n > 1)
		qsort_r(d->off, d->n, sizeof(d->off[0]), name_cmp, d->buf);
out:
	closedir(dir);
	return rc;
}

/* True for the types that need -D. */
static bool is_special(uint8_t t)
{
	return t == XR_FT_CHR || t == XR_FT_BLK || t == XR_FT_FIFO || t == XR_FT_SOCK;
}

static int walk_dir(struct walk *w, int fd, size_t plen, unsigned depth);

/*
 * Handles one directory entry: name in dirfd, whose path is already in
 * w->path (length plen).  Adds it to the manifest and descends into
 * directories.  Returns 0 or a fatal xr_err.
 */
static int walk_entry(struct walk *w, int dirfd, const char *name, size_t plen, unsigned depth)
{
	const struct xr_walk_opts *o = w->opts;
	struct xr_entry e;
	struct stat st;
	bool excluded = false;
	int rc = 0, cfd;

	memset(&e, 0, sizeof(e));
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT) {
			w->vanished++;
			return 0;
		}
		xr_error("%s: lstat failed: %s", w->path, strerror(errno));
		w->errors++;
		return 0;
	}
	entry_from_stat(&e, &st);
	if (!e.type)
		return 0;
	if (w->filters && xr_filters_excluded(w->filters, w->path, e.type == XR_FT_DIR, w->side)) {
		if (w->side == XR_SIDE_SENDER)
			return 0;
		excluded = true; /* receiver: listed (it protects its parents), not entered */
	}
	/* silently: xr_plan_build() reports "skipping non-regular file" when listed */
	if ((e.type == XR_FT_LINK && !o->links) || (is_special(e.type) && !o->devices))
		return 0;
	if (e.type == XR_FT_LINK) {
		rc = read_link(dirfd, name, &e.link);
		if (rc == XR_EVANISHED) {
			w->vanished++;
			return 0;
		}
		if (rc == XR_ENOMEM)
			return rc;
		if (rc) {
			xr_error("%s: readlink failed: %s", w->path, strerror(errno));
			w->errors++;
			return 0;
		}
	} else if (e.type == XR_FT_REG && o->checksum && !excluded) {
		rc = walk_hash(w, dirfd, name, &e);
		if (rc == XR_EVANISHED) {
			w->vanished++;
			return 0;
		}
		if (rc == XR_ENOMEM)
			return rc;
		if (rc)
			w->errors++; /* listed without a hash, as rsync lists it */
	}
	e.path = strdup(w->path);
	if (!e.path) {
		rc = XR_ENOMEM;
		goto fail;
	}
	if (o->map_names) {
		rc = walk_note_ids(w, &e);
		if (rc)
			goto fail;
	}
	rc = manifest_push(w->m, &e);
	if (rc)
		goto fail;
	if (e.type != XR_FT_DIR || !o->recursive || excluded || w->no_descend)
		return 0;
	cfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
			w->vanished++;
			return 0;
		}
		xr_error("%s: opendir failed: %s", w->path, strerror(errno));
		w->errors++;
		return 0;
	}
	rc = walk_dir(w, cfd, plen, depth + 1);
	close(cfd);
	return rc;
fail:
	xr_entry_free(&e);
	return rc;
}

/*
 * Lists directory fd whose path is w->path[0..plen) (plen 0: the transfer
 * root without a prefix) and walks each child in name order, which yields
 * xr_path_cmp order.  Returns 0 or a fatal xr_err.
 */
static int walk_dir(struct walk *w, int fd, size_t plen, unsigned depth)
{
	struct dirnames d;
	size_t i;
	int rc;

	memset(&d, 0, sizeof(d));
	w->path[plen] = '\0';
	rc = read_names(w, fd, &d);
	if (rc) {
		if (rc == XR_EVANISHED)
			w->vanished++;
		else if (rc == XR_EFILEIO)
			w->errors++;
		if (rc != XR_ENOMEM)
			rc = 0;
		goto out;
	}
	for (i = 0; i < d.n; i++) {
		const char *name = d.buf + d.off[i];
		size_t nlen = strlen(name), clen = plen ? plen + 1 + nlen : nlen;

		if (depth == 0 && w->opts->skip_name && strcmp(name, w->opts->skip_name) == 0)
			continue;
		if (clen >= sizeof(w->path)) {
			w->path[plen] = '\0';
			xr_error("%s/%s: path too long", w->path, name);
			w->errors++;
			continue;
		}
		if (plen)
			w->path[plen] = '/';
		memcpy(w->path + (plen ? plen + 1 : 0), name, nlen + 1);
		rc = walk_entry(w, fd, name, clen, depth);
		w->path[plen] = '\0';
		if (rc)
			goto out;
	}
out:
	free(d.buf);
	free(d.off);
	return rc;
}

/* A zeroed walk state for m; NULL when out of memory. */
static struct walk *walk_new(const struct xr_filters *filters, const struct xr_walk_opts *opts,
			     struct xr_manifest *m)
{
	struct walk *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->filters = filters;
	w->opts = opts;
	w->side = opts->side == XR_WALK_RECEIVER ? XR_SIDE_RECEIVER : XR_SIDE_SENDER;
	w->m = m;
	return w;
}

/* Frees w, reporting its counters. */
static void walk_end(struct walk *w, unsigned *vanished, unsigned *errors)
{
	if (vanished)
		*vanished = w->vanished;
	if (errors)
		*errors = w->errors;
	free(w->users.v);
	free(w->groups.v);
	free(w);
}

/*
 * Lists the walk's root dirfd (path prefix, NULL: ".") and, when descend
 * and recursive, everything below it.  Returns 0 or a fatal xr_err.
 */
static int walk_root(struct walk *w, int dirfd, const char *prefix, bool descend)
{
	struct xr_entry root;
	struct stat st;
	size_t plen = 0;
	int rc = 0;

	memset(&root, 0, sizeof(root));
	if (prefix && (!xr_path_valid(prefix) || strcmp(prefix, ".") == 0)) {
		xr_error("%s: invalid transfer root name", prefix);
		return XR_ESYNTAX;
	}
	if (fstat(dirfd, &st) < 0) {
		xr_error("%s: fstat failed: %s", prefix ? prefix : ".", strerror(errno));
		return XR_EFILEIO;
	}
	entry_from_stat(&root, &st);
	if (prefix) {
		plen = strlen(prefix);
		memcpy(w->path, prefix, plen + 1);
		if (w->filters &&
		    xr_filters_excluded(w->filters, prefix, root.type == XR_FT_DIR, w->side)) {
			if (w->side == XR_SIDE_SENDER)
				return 0;
			descend = false;
		}
	} else {
		strcpy(w->path, ".");
	}
	root.path = strdup(w->path);
	if (!root.path)
		return XR_ENOMEM;
	if (w->opts->map_names) {
		rc = walk_note_ids(w, &root);
		if (rc)
			goto out;
	}
	rc = manifest_push(w->m, &root);
	if (rc)
		goto out;
	root.path = NULL; /* owned by m now */
	if (w->opts->recursive && descend && root.type == XR_FT_DIR)
		rc = walk_dir(w, dirfd, plen, 0);
out:
	xr_entry_free(&root);
	return rc;
}

/*
 * Walks the tree below dirfd into m (sorted), as documented in manifest.h.
 * Returns 0, or XR_ENOMEM / XR_EFILEIO (root not stat-able) / XR_ESYNTAX
 * (invalid prefix) / XR_EPROTO (duplicate paths, cannot happen on a sane fs).
 */
int xr_walk(int dirfd, const char *prefix, const struct xr_filters *filters,
	    const struct xr_walk_opts *opts, struct xr_manifest *m, unsigned *vanished,
	    unsigned *errors)
{
	struct walk *w = walk_new(filters, opts, m);
	int rc;

	if (!w)
		return XR_ENOMEM;
	rc = walk_root(w, dirfd, prefix, true);
	if (rc == 0)
		rc = xr_manifest_sort(m);
	walk_end(w, vanished, errors);
	return rc;
}

/* --- incremental change sets ------------------------------------------- */

void xr_scope_init(struct xr_scope *sc)
{
	memset(sc, 0, sizeof(*sc));
}

void xr_scope_free(struct xr_scope *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		free(sc->v[i].path);
	free(sc->v);
	xr_scope_init(sc);
}

/* Appends a copy of path; returns 0 or XR_ENOMEM. */
int xr_scope_add(struct xr_scope *sc, const char *path, bool subtree)
{
	char *copy;

	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 16;
		struct xr_scope_item *nv = realloc(sc->v, cap * sizeof(*nv));

		if (!nv)
			return XR_ENOMEM;
		sc->v = nv;
		sc->cap = cap;
	}
	copy = strdup(path);
	if (!copy)
		return XR_ENOMEM;
	sc->v[sc->n].path = copy;
	sc->v[sc->n].subtree = subtree;
	sc->n++;
	return 0;
}

/* qsort adaptor for scope items. */
static int scope_cmp(const void *a, const void *b)
{
	return xr_path_cmp(((const struct xr_scope_item *)a)->path,
			   ((const struct xr_scope_item *)b)->path);
}

/* True if path lies strictly below dir ("." contains everything else). */
static bool path_below(const char *path, const char *dir)
{
	size_t dlen = strlen(dir);

	if (strcmp(dir, ".") == 0)
		return strcmp(path, ".") != 0;
	return strncmp(path, dir, dlen) == 0 && path[dlen] == '/';
}

/* Sorts, merges duplicates and drops covered items; returns 0. */
int xr_scope_normalize(struct xr_scope *sc)
{
	const char *cover = NULL;
	size_t i, j = 0;

	if (sc->n > 1)
		qsort(sc->v, sc->n, sizeof(sc->v[0]), scope_cmp);
	for (i = 0; i < sc->n; i++) {
		struct xr_scope_item *it = &sc->v[i];

		if ((cover && path_below(it->path, cover)) ||
		    (j && strcmp(sc->v[j - 1].path, it->path) == 0)) {
			if (j && strcmp(sc->v[j - 1].path, it->path) == 0 && it->subtree) {
				sc->v[j - 1].subtree = true;
				cover = sc->v[j - 1].path;
			}
			free(it->path);
			continue;
		}
		sc->v[j++] = *it;
		if (it->subtree)
			cover = it->path;
	}
	sc->n = j;
	return 0;
}

/* Lists one non-root scope item p (relative path rel below dirfd). */
static int scope_item(struct walk *w, int dirfd, const char *p, const char *rel, bool subtree)
{
	const struct xr_walk_opts *o = w->opts;
	const char *leaf;
	struct stat st;
	size_t first = strcspn(rel, "/");
	int pfd = -1, rc;

	if (o->skip_name && strlen(o->skip_name) == first && !strncmp(rel, o->skip_name, first))
		return 0;
	if (!o->recursive)
		return 0; /* without -r a walk lists its root only */
	rc = xr_fs_open_parent_quiet(dirfd, rel, &pfd, &leaf);
	if (rc == XR_EUNSAFE || (rc == XR_EFILEIO && (errno == ENOENT || errno == ENOTDIR)))
		return 0; /* its parent is gone or is no directory: so is it */
	if (rc < 0) {
		xr_error("%s: opening its directory failed: %s", p, strerror(errno));
		w->errors++;
		return rc == XR_ENOMEM ? rc : 0;
	}
	if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
		close(pfd);
		return 0; /* deleted: absent from the list */
	}
	memcpy(w->path, p, strlen(p) + 1);
	w->no_descend = !subtree;
	rc = walk_entry(w, pfd, leaf, strlen(p), 1);
	w->no_descend = false;
	close(pfd);
	return rc;
}

/* Index of the item of sc (sorted) named path, or sc->n. */
static size_t scope_find(const struct xr_scope *sc, const char *path)
{
	size_t lo = 0, hi = sc->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = xr_path_cmp(sc->v[mid].path, path);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return sc->n;
}

/* True if sc has path or a subtree item above it (see manifest.h). */
bool xr_scope_covers(const struct xr_scope *sc, const char *path)
{
	char buf[XR_PATH_MAX + 1];
	size_t len = strlen(path), k;
	char *slash;

	if (len > XR_PATH_MAX)
		return false;
	if (scope_find(sc, path) < sc->n)
		return true;
	memcpy(buf, path, len + 1);
	while (strcmp(buf, ".") != 0) {
		slash = strrchr(buf, '/');
		if (slash)
			*slash = '\0';
		else
			strcpy(buf, ".");
		k = scope_find(sc, buf);
		if (k < sc->n && sc->v[k].subtree)
			return true;
	}
	return false;
}

/* Marks replaced directories of sc as subtree items (see manifest.h). */
bool xr_scope_mark_replaced(struct xr_scope *sc, const struct xr_manifest *old,
			    const struct xr_manifest *now)
{
	bool marked = false;

	for (size_t i = 0; i < sc->n; i++) {
		const struct xr_entry *a, *b;

		if (sc->v[i].subtree)
			continue;
		a = xr_manifest_find(old, sc->v[i].path);
		b = xr_manifest_find(now, sc->v[i].path);
		if (a && b && a->type == XR_FT_DIR && b->type == XR_FT_DIR &&
		    (a->id.dev != b->id.dev || a->id.ino != b->id.ino)) {
			sc->v[i].subtree = true;
			marked = true;
		}
	}
	return marked;
}

/* Lists what sc covers of the tree below dirfd (see manifest.h). */
int xr_walk_scope(int dirfd, const char *prefix, const struct xr_scope *sc,
		  const struct xr_filters *filters, const struct xr_walk_opts *opts,
		  struct xr_manifest *m, unsigned *vanished, unsigned *errors)
{
	struct walk *w = walk_new(filters, opts, m);
	size_t plen = prefix ? strlen(prefix) : 0, i;
	int rc = 0;

	if (!w)
		return XR_ENOMEM;
	for (i = 0; rc == 0 && i < sc->n; i++) {
		const char *p = sc->v[i].path, *rel;

		if (prefix ? strcmp(p, prefix) == 0 : strcmp(p, ".") == 0) {
			rc = walk_root(w, dirfd, prefix, sc->v[i].subtree);
			continue;
		}
		if (prefix && !(strncmp(p, prefix, plen) == 0 && p[plen] == '/'))
			continue; /* outside the transfer */
		if (!xr_path_valid(p) || strcmp(p, ".") == 0 || strlen(p) >= XR_PATH_MAX)
			continue;
		if (xr_filters_excluded_above(filters, p, w->side))
			continue; /* the walk would not have gone there */
		rel = prefix ? p + plen + 1 : p;
		rc = scope_item(w, dirfd, p, rel, sc->v[i].subtree);
	}
	if (rc == 0)
		rc = xr_manifest_sort(m);
	walk_end(w, vanished, errors);
	return rc;
}

/* Index of the first entry of m (sorted) not before path. */
static size_t lower_bound(const struct xr_manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (xr_path_cmp(m->e[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Replaces what sc covers in m by delta's entries (see manifest.h). */
int xr_manifest_splice(struct xr_manifest *m, const struct xr_scope *sc, struct xr_manifest *delta)
{
	struct xr_entry *ne;
	bool *drop;
	size_t cap = m->n + delta->n, i, j, k = 0;

	drop = calloc(m->n ? m->n : 1, sizeof(*drop));
	ne = malloc((cap ? cap : 1) * sizeof(*ne));
	if (!drop || !ne) {
		free(drop);
		free(ne);
		return XR_ENOMEM;
	}
	for (i = 0; i < sc->n; i++) {
		const char *p = sc->v[i].path;
		const struct xr_entry *now = xr_manifest_find(delta, p);
		bool below = sc->v[i].subtree || !now || now->type != XR_FT_DIR;

		j = lower_bound(m, p);
		if (j < m->n && strcmp(m->e[j].path, p) == 0)
			drop[j++] = true;
		while (below && j < m->n && path_below(m->e[j].path, p))
			drop[j++] = true;
	}
	for (i = 0, j = 0; i < m->n || j < delta->n;) {
		if (i < m->n && drop[i]) {
			xr_entry_free(&m->e[i++]);
			continue;
		}
		if (j < delta->n &&
		    (i == m->n || xr_path_cmp(delta->e[j].path, m->e[i].path) <= 0)) {
			if (i < m->n && xr_path_cmp(delta->e[j].path, m->e[i].path) == 0)
				xr_entry_free(&m->e[i++]); /* listed again: delta wins */
			ne[k++] = delta->e[j++];
			continue;
		}
		ne[k++] = m->e[i++];
	}
	free(drop);
	free(m->e);
	m->e = ne;
	m->n = k;
	m->cap = cap ? cap : 1;
	free(delta->e);
	delta->e = NULL;
	delta->n = delta->cap = 0;
	return 0;
}

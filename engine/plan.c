/* plan.c - the difference of two manifests: rsync's quick check, itemize, deletions. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/filter.h"
#include "xr/log.h"
#include "xr/plan.h"

/* The plan is held until the change set is reported: keep its items small. */
_Static_assert(sizeof(struct xr_plan_item) <= 24, "plan item grew");

/* The receiving process's groups, for rsync's "group only where a member". */
struct groupset {
	gid_t *g;
	size_t n;
	bool loaded;
};

/* Loads the effective gid and supplementary groups; returns 0 or XR_ENOMEM. */
static int groupset_load(struct groupset *gs)
{
	int n;

	if (gs->loaded)
		return 0;
	n = getgroups(0, NULL);
	if (n < 0)
		n = 0;
	gs->g = calloc((size_t)n + 1, sizeof(gid_t));
	if (!gs->g)
		return XR_ENOMEM;
	if (n > 0) {
		n = getgroups(n, gs->g);
		if (n < 0)
			n = 0;
	}
	gs->g[n] = getegid();
	gs->n = (size_t)n + 1;
	gs->loaded = true;
	return 0;
}

/* True if gid is one of the loaded groups. */
static bool groupset_has(const struct groupset *gs, uint32_t gid)
{
	size_t i;

	for (i = 0; i < gs->n; i++)
		if ((uint32_t)gs->g[i] == gid)
			return true;
	return false;
}

/*
 * True if a group difference between src and dst is to be applied and
 * reported: with -g, as root always, otherwise only when the receiver is a
 * member of the sender's group (rsync skips groups it cannot set).
 */
static bool group_differs(const struct xr_entry *s, const struct xr_entry *d,
			  const struct xr_plan_opts *o, struct groupset *gs)
{
	if (!o->group || s->gid == d->gid)
		return false;
	if (o->is_root)
		return true;
	if (groupset_load(gs))
		return true;
	return groupset_has(gs, s->gid);
}

/* rsync's one-letter file type for itemize. */
static char type_char(uint8_t t)
{
	switch (t) {
	case XR_FT_REG:
		return 'f';
	case XR_FT_DIR:
		return 'd';
	case XR_FT_LINK:
		return 'L';
	case XR_FT_CHR:
	case XR_FT_BLK:
		return 'D';
	default:
		return 'S';
	}
}

/* True for devices, fifos and sockets (what -D preserves). */
static bool is_special(uint8_t t)
{
	return t == XR_FT_CHR || t == XR_FT_BLK || t == XR_FT_FIFO || t == XR_FT_SOCK;
}

/* True if src and dst are the same kind of object with the same identity (target, rdev). */
static bool same_object(const struct xr_entry *s, const struct xr_entry *d)
{
	if (s->type == XR_FT_LINK)
		return s->link && d->link && strcmp(s->link, d->link) == 0;
	if (s->type == XR_FT_CHR || s->type == XR_FT_BLK)
		return s->rdev == d->rdev;
	return true;
}

/* The itemize string, with the group set supplied by the caller. */
static void itemize(const struct xr_entry *s, const struct xr_entry *d,
		    const struct xr_plan_opts *o, bool content_changed, struct groupset *gs,
		    char out[12])
{
	bool changed_obj;

	memcpy(out, "...........", 12);
	out[1] = type_char(s->type);
	if (!d || d->type != s->type) {
		out[0] = s->type == XR_FT_REG ? '>' : 'c';
		memcpy(out + 2, "+++++++++", 9); /* NOLINT(bugprone-not-null-terminated-result) */
		return;
	}
	changed_obj = !same_object(s, d);
	if (s->type == XR_FT_REG)
		out[0] = content_changed ? '>' : '.';
	else
		out[0] = changed_obj ? 'c' : '.';
	if ((s->type == XR_FT_REG && content_changed && o->checksum) ||
	    (s->type != XR_FT_REG && changed_obj))
		out[2] = 'c';
	if (s->type == XR_FT_REG && s->size != d->size)
		out[3] = 's';
	if (o->times) {
		if (s->mtime_sec != d->mtime_sec ||
		    (o->exact_times && s->mtime_nsec != d->mtime_nsec))
			out[4] = 't';
	} else if (out[0] != '.') {
		out[4] = 'T'; /* the time will be the transfer time */
	}
	if (o->perms && s->type != XR_FT_LINK && (s->mode & 07777) != (d->mode & 07777))
		out[5] = 'p';
	if (o->owner && o->is_root && s->uid != d->uid)
		out[6] = 'o';
	if (group_differs(s, d, o, gs))
		out[7] = 'g';
}

/* Fills out with rsync's %i string for changing dst into src (see plan.h). */
void xr_itemize(const struct xr_entry *src, const struct xr_entry *dst,
		const struct xr_plan_opts *opts, bool content_changed, char out[12])
{
	struct groupset gs = {NULL, 0, false};

	itemize(src, dst, opts, content_changed, &gs, out);
	free(gs.g);
}

/*
 * rsync's quick check for two regular files: true if the content must be
 * considered different.  -I always; -c: sizes, then hashes when both sides
 * have one; otherwise size and mtime at whole-second granularity (rsync's
 * default --modify-window=0 ignores nanoseconds; checked against rsync 3.5);
 * exact_times (--watch) compares nanoseconds too: two writes in one second.
 */
static bool content_differs(const struct xr_entry *s, const struct xr_entry *d,
			    const struct xr_plan_opts *o)
{
	if (o->ignore_times)
		return true;
	if (s->size != d->size)
		return true;
	if (o->checksum && s->has_hash && d->has_hash)
		return memcmp(s->hash.b, d->hash.b, XR_HASH_LEN) != 0;
	return s->mtime_sec != d->mtime_sec || (o->exact_times && s->mtime_nsec != d->mtime_nsec);
}

/* Appends one item; returns 0 or XR_ENOMEM. */
static int push_item(struct xr_plan *p, const struct xr_plan_item *it)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		struct xr_plan_item *ni = realloc(p->items, cap * sizeof(*ni));

		if (!ni)
			return XR_ENOMEM;
		p->items = ni;
		p->cap = cap;
	}
	p->items[p->n++] = *it;
	return 0;
}

/* Appends one deletion index; returns 0 or XR_ENOMEM. */
static int push_del(struct xr_plan *p, size_t idx)
{
	if (p->ndel == p->delcap) {
		size_t cap = p->delcap ? p->delcap * 2 : 32;
		size_t *nd = realloc(p->deletions, cap * sizeof(*nd));

		if (!nd)
			return XR_ENOMEM;
		p->deletions = nd;
		p->delcap = cap;
	}
	p->deletions[p->ndel++] = idx;
	return 0;
}

/* Makes p an empty plan. */
void xr_plan_init(struct xr_plan *p)
{
	memset(p, 0, sizeof(*p));
}

/* Frees p's arrays; p is left empty. */
void xr_plan_free(struct xr_plan *p)
{
	if (!p)
		return;
	free(p->items);
	free(p->deletions);
	xr_plan_init(p);
}

/*
 * Decides the action for src entry s against dst entry d (NULL: absent)
 * into it.  A symlink without -l or a device/special without -D is skipped
 * with rsync's "skipping non-regular file" (the walk may list them so that
 * they protect the receiver's path from --delete, as rsync's file list does).
 */
static void plan_entry(const struct xr_entry *s, const struct xr_entry *d,
		       const struct xr_plan_opts *o, struct groupset *gs, struct xr_plan_item *it)
{
	bool content = false;

	it->act = XR_ACT_NONE;
	it->need_data = false;
	if ((s->type == XR_FT_LINK && !o->links) || (is_special(s->type) && !o->devices)) {
		/* listed by the sender, not preserved here; still keeps d from --delete */
		xr_info(0, "skipping non-regular file \"%s\"", s->path);
		return;
	}
	if (!d) {
		it->act = XR_ACT_CREATE;
		content = true;
	} else if (d->type != s->type) {
		it->act = XR_ACT_REPLACE;
		content = true;
	} else if (s->type == XR_FT_REG) {
		content = content_differs(s, d, o);
		it->act = content ? XR_ACT_UPDATE : XR_ACT_META;
	} else {
		it->act = same_object(s, d) ? XR_ACT_META : XR_ACT_REPLACE;
	}
	itemize(s, d, o, content, gs, it->itemize);
	if (it->act == XR_ACT_META && strcmp(it->itemize + 2, ".........") == 0)
		it->act = XR_ACT_NONE;
	it->need_data = s->type == XR_FT_REG && it->act != XR_ACT_NONE && it->act != XR_ACT_META;
}

/* True if path lies strictly below the directory dir (of length dlen). */
static bool is_below(const char *path, const char *dir, size_t dlen)
{
	return strncmp(path, dir, dlen) == 0 && path[dlen] == '/';
}

/*
 * Marks every ancestor directory of dst->e[j] as kept (a protected entry
 * keeps the directories above it).  Ancestors precede j in sorted order.
 * Returns 0 or XR_ENOMEM.
 */
static int keep_ancestors(const struct xr_manifest *dst, size_t j, bool *keep)
{
	char *p = strdup(dst->e[j].path);
	char *slash;

	if (!p)
		return XR_ENOMEM;
	while ((slash = strrchr(p, '/')) != NULL) {
		const struct xr_entry *a;

		*slash = '\0';
		a = xr_manifest_find(dst, p);
		if (!a)
			continue;
		if (keep[a - dst->e])
			break;
		keep[a - dst->e] = true;
	}
	free(p);
	return 0;
}

/*
 * Chooses the receiver entries --delete removes: those not in src (keep[]
 * already true for matched ones), not excluded on the receiver side, not
 * below an excluded directory that is absent from src, and not a directory
 * holding a kept entry (rsync: "cannot delete non-empty directory"); appended
 * deepest first (reverse sorted order).  Returns 0 or XR_ENOMEM.
 */
static int plan_deletions(const struct xr_manifest *dst, const struct xr_filters *filters,
			  bool *keep, struct xr_plan *out)
{
	const char *prot = NULL;
	size_t plen = 0, j;
	int rc;

	for (j = 0; j < dst->n; j++) {
		const struct xr_entry *e = &dst->e[j];
		bool is_dir = e->type == XR_FT_DIR;

		if (strcmp(e->path, ".") == 0) {
			keep[j] = true;
			continue;
		}
		if (prot && is_below(e->path, prot, plen)) {
			keep[j] = true;
			continue;
		}
		prot = NULL;
		if (keep[j])
			continue; /* in src: rsync looks inside it even when protected */
		if (!filters || !xr_filters_excluded(filters, e->path, is_dir, XR_SIDE_RECEIVER))
			continue;
		if (is_dir) {
			prot = e->path;
			plen = strlen(prot);
		}
		keep[j] = true;
		rc = keep_ancestors(dst, j, keep);
		if (rc)
			return rc;
	}
	for (j = dst->n; j-- > 0;) {
		if (keep[j])
			continue;
		rc = push_del(out, j);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Compares src with dst (both sorted) by a merge of the two lists and fills
 * out (see plan.h).  Returns 0, XR_ENOMEM or XR_ELIMIT.
 */
int xr_plan_build(const struct xr_manifest *src, const struct xr_manifest *dst,
		  const struct xr_filters *filters, const struct xr_plan_opts *opts,
		  struct xr_plan *out)
{
	struct groupset gs = {NULL, 0, false};
	bool *keep = NULL;
	size_t i = 0, j = 0;
	int rc = 0;

	if (src->n > INT32_MAX || dst->n > INT32_MAX)
		return XR_ELIMIT;	/* the plan's indexes are 32-bit */
	keep = calloc(dst->n ? dst->n : 1, sizeof(*keep));
	if (!keep) {
		rc = XR_ENOMEM;
		goto out;
	}
	for (i = 0; i < src->n; i++) {
		const struct xr_entry *s = &src->e[i], *d = NULL;
		struct xr_plan_item it;
		int c = 1;

		while (j < dst->n && (c = xr_path_cmp(dst->e[j].path, s->path)) < 0)
			j++;
		memset(&it, 0, sizeof(it));
		it.src = (uint32_t)i;
		it.dst = -1;
		if (j < dst->n && c == 0) {
			d = &dst->e[j];
			it.dst = (int32_t)j;
			keep[j] = true;
		}
		plan_entry(s, d, opts, &gs, &it);
		if (it.act == XR_ACT_NONE)
			continue;
		rc = push_item(out, &it);
		if (rc)
			goto out;
	}
	if (opts->del)
		rc = plan_deletions(dst, filters, keep, out);
	if (rc == 0 && out->n && out->n < out->cap) {
		/* held until the commit is reported: give back what doubling left over */
		struct xr_plan_item *ni = realloc(out->items, out->n * sizeof(*ni));

		if (ni) {
			out->items = ni;
			out->cap = out->n;
		}
	}
out:
	free(keep);
	free(gs.g);
	return rc;
}

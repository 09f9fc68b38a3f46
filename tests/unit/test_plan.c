/* test_plan.c - quick check, actions, itemize strings and deletions, against rsync. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/filter.h"
#include "xr/log.h"
#include "xr/manifest.h"
#include "xr/plan.h"

/* ---- options from rsync-like letters ---------------------------------- */

/*
 * "rlptgoDc" as rsync's short options ('a' = "rlptgoD"); extra letters:
 * 'N' the receiver is not root, 'X' --delete, 'E' --delete-excluded,
 * 'I' --ignore-times.
 */
static struct xr_plan_opts popts(const char *s)
{
	struct xr_plan_opts o;

	memset(&o, 0, sizeof(o));
	o.is_root = true;
	for (; *s; s++)
		switch (*s) {
		case 'a':
			o.perms = o.times = o.owner = o.group = o.links = o.devices = true;
			break;
		case 'p':
			o.perms = true;
			break;
		case 't':
			o.times = true;
			break;
		case 'o':
			o.owner = true;
			break;
		case 'g':
			o.group = true;
			break;
		case 'l':
			o.links = true;
			break;
		case 'D':
			o.devices = true;
			break;
		case 'c':
			o.checksum = true;
			break;
		case 'N':
			o.is_root = false;
			break;
		case 'X':
			o.del = true;
			break;
		case 'E':
			o.delete_excluded = true;
			break;
		case 'I':
			o.ignore_times = true;
			break;
		default:
			break;
		}
	return o;
}

/* ---- table-driven: one entry against one entry ------------------------ */

enum {
	M_SIZE = 1 << 0,    /* dst size 9, other content */
	M_TIME = 1 << 1,    /* dst mtime +1000 s */
	M_NSEC = 1 << 2,    /* dst same second, other nanoseconds */
	M_PERM = 1 << 3,    /* dst mode 0600 */
	M_UID = 1 << 4,	    /* dst uid 1234 */
	M_GID = 1 << 5,	    /* dst gid 1234 */
	M_DATA = 1 << 6,    /* dst content differs, same size */
	M_LINK = 1 << 7,    /* dst link target differs */
	M_RDEV = 1 << 8,    /* dst rdev differs */
	M_SGID = 1 << 9,    /* src gid 4321 (not a group of ours), dst gid 0 */
	M_NOHASH = 1 << 10, /* no hashes on either side */
};

struct row {
	const char *opts;
	uint8_t stype, dtype; /* dtype 0: absent on the receiver */
	unsigned mut;
	const char *want; /* "" when up to date */
	enum xr_action act;
	bool need_data;
};

/* The itemize strings below are what rsync 3.5.0 printed (rsync -i, as root). */
static const struct row rows[] = {
    /* new and type changes */
    {"a", XR_FT_REG, 0, 0, ">f+++++++++", XR_ACT_CREATE, true},
    {"a", XR_FT_DIR, 0, 0, "cd+++++++++", XR_ACT_CREATE, false},
    {"a", XR_FT_LINK, 0, 0, "cL+++++++++", XR_ACT_CREATE, false},
    {"a", XR_FT_CHR, 0, 0, "cD+++++++++", XR_ACT_CREATE, false},
    {"a", XR_FT_BLK, 0, 0, "cD+++++++++", XR_ACT_CREATE, false},
    {"a", XR_FT_FIFO, 0, 0, "cS+++++++++", XR_ACT_CREATE, false},
    {"a", XR_FT_SOCK, 0, 0, "cS+++++++++", XR_ACT_CREATE, false},
    {"r", XR_FT_REG, 0, 0, ">f+++++++++", XR_ACT_CREATE, true},
    {"a", XR_FT_REG, XR_FT_LINK, 0, ">f+++++++++", XR_ACT_REPLACE, true},
    {"a", XR_FT_LINK, XR_FT_REG, 0, "cL+++++++++", XR_ACT_REPLACE, false},
    {"a", XR_FT_DIR, XR_FT_REG, 0, "cd+++++++++", XR_ACT_REPLACE, false},
    {"a", XR_FT_REG, XR_FT_DIR, 0, ">f+++++++++", XR_ACT_REPLACE, true},
    {"a", XR_FT_CHR, XR_FT_BLK, 0, "cD+++++++++", XR_ACT_REPLACE, false},
    /* regular files, -a */
    {"a", XR_FT_REG, XR_FT_REG, 0, "", XR_ACT_NONE, false},
    {"a", XR_FT_REG, XR_FT_REG, M_NSEC, "", XR_ACT_NONE, false},
    {"a", XR_FT_REG, XR_FT_REG, M_DATA, "", XR_ACT_NONE, false},
    {"a", XR_FT_REG, XR_FT_REG, M_TIME, ">f..t......", XR_ACT_UPDATE, true},
    {"a", XR_FT_REG, XR_FT_REG, M_SIZE | M_TIME, ">f.st......", XR_ACT_UPDATE, true},
    {"a", XR_FT_REG, XR_FT_REG, M_PERM, ".f...p.....", XR_ACT_META, false},
    {"a", XR_FT_REG, XR_FT_REG, M_UID, ".f....o....", XR_ACT_META, false},
    {"a", XR_FT_REG, XR_FT_REG, M_GID, ".f.....g...", XR_ACT_META, false},
    {"a", XR_FT_REG, XR_FT_REG, M_SIZE | M_UID | M_GID, ">f.s..og...", XR_ACT_UPDATE, true},
    {"a", XR_FT_REG, XR_FT_REG, M_SIZE | M_PERM, ">f.s.p.....", XR_ACT_UPDATE, true},
    {"a", XR_FT_REG, XR_FT_REG, M_TIME | M_PERM, ">f..tp.....", XR_ACT_UPDATE, true},
    /* -c */
    {"ac", XR_FT_REG, XR_FT_REG, M_DATA, ">fc........", XR_ACT_UPDATE, true},
    {"ac", XR_FT_REG, XR_FT_REG, M_SIZE | M_TIME, ">fcst......", XR_ACT_UPDATE, true},
    {"ac", XR_FT_REG, XR_FT_REG, M_TIME, ".f..t......", XR_ACT_META, false},
    {"ac", XR_FT_REG, XR_FT_REG, M_DATA | M_TIME, ">fc.t......", XR_ACT_UPDATE, true},
    {"ac", XR_FT_REG, XR_FT_REG, M_SIZE | M_UID | M_GID, ">fcs..og...", XR_ACT_UPDATE, true},
    {"ac", XR_FT_REG, XR_FT_REG, M_SIZE | M_PERM, ">fcs.p.....", XR_ACT_UPDATE, true},
    {"ac", XR_FT_REG, XR_FT_REG, M_TIME | M_PERM, ".f..tp.....", XR_ACT_META, false},
    {"ac", XR_FT_REG, XR_FT_REG, M_NSEC, "", XR_ACT_NONE, false},
    /* -c without hashes falls back to the quick check */
    {"ac", XR_FT_REG, XR_FT_REG, M_NOHASH | M_TIME, ">fc.t......", XR_ACT_UPDATE, true},
    {"ac", XR_FT_REG, XR_FT_REG, M_NOHASH, "", XR_ACT_NONE, false},
    /* without -t: differing mtimes transfer, the time becomes "now" (T) */
    {"rlpgoD", XR_FT_REG, XR_FT_REG, M_TIME, ">f..T......", XR_ACT_UPDATE, true},
    {"rlpgoD", XR_FT_REG, XR_FT_REG, M_SIZE | M_PERM, ">f.sTp.....", XR_ACT_UPDATE, true},
    {"rlpgoD", XR_FT_REG, XR_FT_REG, M_TIME | M_PERM, ">f..Tp.....", XR_ACT_UPDATE, true},
    {"rlpgoD", XR_FT_REG, XR_FT_REG, M_SIZE | M_UID | M_GID, ">f.sT.og...", XR_ACT_UPDATE, true},
    {"rlpgoD", XR_FT_REG, XR_FT_REG, M_NSEC, "", XR_ACT_NONE, false},
    {"rlpgoDc", XR_FT_REG, XR_FT_REG, M_TIME, "", XR_ACT_NONE, false},
    {"rlpgoDc", XR_FT_REG, XR_FT_REG, M_DATA | M_TIME, ">fc.T......", XR_ACT_UPDATE, true},
    {"rlpgoDc", XR_FT_REG, XR_FT_REG, M_SIZE | M_PERM, ">fcsTp.....", XR_ACT_UPDATE, true},
    {"rlpgoDc", XR_FT_REG, XR_FT_REG, M_TIME | M_PERM, ".f...p.....", XR_ACT_META, false},
    {"r", XR_FT_REG, XR_FT_REG, M_TIME, ">f..T......", XR_ACT_UPDATE, true},
    {"r", XR_FT_REG, XR_FT_REG, M_SIZE | M_PERM | M_UID, ">f.sT......", XR_ACT_UPDATE, true},
    {"r", XR_FT_REG, XR_FT_REG, M_PERM | M_UID | M_GID, "", XR_ACT_NONE, false},
    {"rlt", XR_FT_REG, XR_FT_REG, M_SIZE | M_UID | M_GID, ">f.s.......", XR_ACT_UPDATE, true},
    {"rltgoD", XR_FT_REG, XR_FT_REG, M_PERM, "", XR_ACT_NONE, false},
    {"aI", XR_FT_REG, XR_FT_REG, 0, ">f.........", XR_ACT_UPDATE, true},
    /* not root: no owner, group only where we are a member */
    {"aN", XR_FT_REG, XR_FT_REG, M_UID, "", XR_ACT_NONE, false},
    {"aN", XR_FT_REG, XR_FT_REG, M_SGID, "", XR_ACT_NONE, false},
    {"aN", XR_FT_REG, XR_FT_REG, M_GID, ".f.....g...", XR_ACT_META, false},
    {"a", XR_FT_REG, XR_FT_REG, M_SGID, ".f.....g...", XR_ACT_META, false},
    /* directories */
    {"a", XR_FT_DIR, XR_FT_DIR, 0, "", XR_ACT_NONE, false},
    {"a", XR_FT_DIR, XR_FT_DIR, M_TIME, ".d..t......", XR_ACT_META, false},
    {"a", XR_FT_DIR, XR_FT_DIR, M_PERM, ".d...p.....", XR_ACT_META, false},
    {"a", XR_FT_DIR, XR_FT_DIR, M_TIME | M_PERM, ".d..tp.....", XR_ACT_META, false},
    {"rlpgoD", XR_FT_DIR, XR_FT_DIR, M_TIME, "", XR_ACT_NONE, false},
    {"rlpgoD", XR_FT_DIR, XR_FT_DIR, M_TIME | M_PERM, ".d...p.....", XR_ACT_META, false},
    {"a", XR_FT_DIR, XR_FT_DIR, M_NSEC, "", XR_ACT_NONE, false},
    /* symlinks */
    {"a", XR_FT_LINK, XR_FT_LINK, 0, "", XR_ACT_NONE, false},
    {"a", XR_FT_LINK, XR_FT_LINK, M_LINK | M_TIME, "cLc.t......", XR_ACT_REPLACE, false},
    {"a", XR_FT_LINK, XR_FT_LINK, M_LINK | M_UID, "cLc...o....", XR_ACT_REPLACE, false},
    {"a", XR_FT_LINK, XR_FT_LINK, M_TIME, ".L..t......", XR_ACT_META, false},
    {"a", XR_FT_LINK, XR_FT_LINK, M_UID, ".L....o....", XR_ACT_META, false},
    {"a", XR_FT_LINK, XR_FT_LINK, M_PERM, "", XR_ACT_NONE, false},
    {"rlpgoD", XR_FT_LINK, XR_FT_LINK, M_LINK | M_UID, "cLc.T.o....", XR_ACT_REPLACE, false},
    {"rlpgoD", XR_FT_LINK, XR_FT_LINK, M_LINK | M_TIME, "cLc.T......", XR_ACT_REPLACE, false},
    {"rlpgoD", XR_FT_LINK, XR_FT_LINK, M_UID, ".L....o....", XR_ACT_META, false},
    {"rlt", XR_FT_LINK, XR_FT_LINK, M_LINK | M_UID, "cLc........", XR_ACT_REPLACE, false},
    /* devices and specials */
    {"a", XR_FT_CHR, XR_FT_CHR, M_RDEV | M_TIME, "cDc.t......", XR_ACT_REPLACE, false},
    {"rlpgoD", XR_FT_CHR, XR_FT_CHR, M_RDEV | M_TIME, "cDc.T......", XR_ACT_REPLACE, false},
    {"a", XR_FT_FIFO, XR_FT_FIFO, M_TIME, ".S..t......", XR_ACT_META, false},
    {"rlpgoD", XR_FT_FIFO, XR_FT_FIFO, M_TIME, "", XR_ACT_NONE, false},
    {"a", XR_FT_FIFO, XR_FT_FIFO, M_PERM, ".S...p.....", XR_ACT_META, false},
    /* listed by the sender but not preserved: skipped ("skipping non-regular file") */
    {"r", XR_FT_LINK, 0, 0, "", XR_ACT_NONE, false},
    {"r", XR_FT_LINK, XR_FT_REG, 0, "", XR_ACT_NONE, false},
    {"rl", XR_FT_FIFO, 0, 0, "", XR_ACT_NONE, false},
    {"rl", XR_FT_CHR, XR_FT_CHR, M_RDEV, "", XR_ACT_NONE, false},
    {"rD", XR_FT_FIFO, 0, 0, "cS+++++++++", XR_ACT_CREATE, false},
};

/* Fills e as a base entry of type t at path. */
static void base_entry(struct xr_entry *e, char *path, uint8_t t)
{
	memset(e, 0, sizeof(*e));
	e->path = path;
	e->type = t;
	e->mode = t == XR_FT_DIR ? 0755 : t == XR_FT_LINK ? 0777 : 0644;
	e->size = t == XR_FT_REG ? 5 : 0;
	e->mtime_sec = 1577836800;
	e->mtime_nsec = 100;
	e->has_hash = t == XR_FT_REG;
	memset(e->hash.b, 0xa5, XR_HASH_LEN);
	e->link = t == XR_FT_LINK ? "t1" : NULL;
	e->rdev = (t == XR_FT_CHR || t == XR_FT_BLK) ? makedev(1, 3) : 0;
}

/* Applies the row's mutations to s and d. */
static void mutate(struct xr_entry *s, struct xr_entry *d, unsigned m)
{
	if (m & M_SIZE) {
		d->size = 9;
		d->hash.b[0] ^= 1;
	}
	if (m & M_DATA)
		d->hash.b[3] ^= 1;
	if (m & M_TIME)
		d->mtime_sec += 1000;
	if (m & M_NSEC)
		d->mtime_nsec = 999999;
	if (m & M_PERM)
		d->mode = d->type == XR_FT_LINK ? 0700 : 0600;
	if (m & M_UID)
		d->uid = 1234;
	if (m & M_GID)
		d->gid = 1234;
	if (m & M_SGID)
		s->gid = 4321;
	if (m & M_LINK)
		d->link = "t2";
	if (m & M_RDEV)
		d->rdev = makedev(1, 5);
	if (m & M_NOHASH)
		s->has_hash = d->has_hash = false;
}

static void test_rows(void **state)
{
	size_t i;

	(void)state;
	if (getegid() != 0)
		skip(); /* the group rows assume gid 0 is ours */
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct xr_plan_opts o = popts(r->opts);
		struct xr_manifest src, dst;
		struct xr_entry root, s, d;
		struct xr_plan p;
		char want[12], direct[12];

		xr_manifest_init(&src);
		xr_manifest_init(&dst);
		xr_plan_init(&p);
		base_entry(&root, ".", XR_FT_DIR);
		base_entry(&s, "x", r->stype);
		base_entry(&d, "x", r->dtype ? r->dtype : XR_FT_REG);
		mutate(&s, &d, r->mut);
		assert_int_equal(xr_manifest_add(&src, &root), 0);
		assert_int_equal(xr_manifest_add(&src, &s), 0);
		assert_int_equal(xr_manifest_add(&dst, &root), 0);
		if (r->dtype)
			assert_int_equal(xr_manifest_add(&dst, &d), 0);
		assert_int_equal(xr_plan_build(&src, &dst, NULL, &o, &p), 0);
		snprintf(want, sizeof(want), "%s", r->want);
		if (r->act == XR_ACT_NONE) {
			if (p.n != 0)
				fail_msg("row %zu (%s): want nothing, got %s", i, r->opts,
					 p.items[0].itemize);
		} else {
			if (p.n != 1)
				fail_msg("row %zu (%s): want %s, got %zu items", i, r->opts, want,
					 p.n);
			if (strcmp(p.items[0].itemize, want) != 0 || p.items[0].act != r->act ||
			    p.items[0].need_data != r->need_data)
				fail_msg(
				    "row %zu (%s): want %s act %d data %d, got %s act %d data %d",
				    i, r->opts, want, r->act, r->need_data, p.items[0].itemize,
				    p.items[0].act, p.items[0].need_data);
			assert_int_equal(p.items[0].src, 1);
			assert_int_equal(p.items[0].dst, r->dtype ? 1 : -1);
			/* the public itemize agrees with the plan */
			xr_itemize(&s, r->dtype ? &d : NULL, &o,
				   r->need_data || r->act == XR_ACT_UPDATE, direct);
			assert_string_equal(direct, want);
		}
		assert_int_equal(p.ndel, 0);
		xr_plan_free(&p);
		xr_manifest_free(&src);
		xr_manifest_free(&dst);
	}
}

/* ---- deletions (synthetic manifests) ---------------------------------- */

/* Adds base entries of the given kinds: "d:path" dir, "f:path" file. */
static void fill(struct xr_manifest *m, const char *const *spec)
{
	xr_manifest_init(m);
	for (; *spec; spec++) {
		struct xr_entry e;

		base_entry(&e, (char *)*spec + 2, (*spec)[0] == 'd' ? XR_FT_DIR : XR_FT_REG);
		assert_int_equal(xr_manifest_add(m, &e), 0);
	}
	assert_int_equal(xr_manifest_sort(m), 0);
}

/* Joins the deletion paths of p (dirs with "/") with '|'. */
static const char *dels(const struct xr_plan *p, const struct xr_manifest *dst)
{
	static char buf[4096];
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < p->ndel; i++) {
		const struct xr_entry *e = &dst->e[p->deletions[i]];

		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s%s", i ? "|" : "", e->path,
				      e->type == XR_FT_DIR ? "/" : "");
	}
	return buf;
}

static void test_deletions(void **state)
{
	static const char *const s_spec[] = {"d:.", "f:keep", "d:sub", "f:sub/a", NULL};
	static const char *const d_spec[] = {
	    "d:.",	 "f:keep",	    "f:extra",
	    "d:xdir",	 "d:xdir/y",	    "f:xdir/y/z",
	    "f:xdir.f",	 "d:sub",	    "f:sub/a",
	    "f:sub/b",	 "d:sub/deep",	    "f:sub/deep/c",
	    "d:old",	 "f:old/keep.ini",  "f:old/x",
	    "d:old/sub", "f:old/sub/y.ini", "d:pdir",
	    "d:pdir/in", "f:pdir/in/z",	    "f:top.ini",
	    NULL,
	};
	struct xr_manifest src, dst;
	struct xr_filters *f = xr_filters_new();
	struct xr_plan_opts o = popts("aX");
	struct xr_plan p;

	(void)state;
	fill(&src, s_spec);
	fill(&dst, d_spec);
	xr_plan_init(&p);
	/* no --delete: nothing */
	o.del = false;
	assert_int_equal(xr_plan_build(&src, &dst, NULL, &o, &p), 0);
	assert_int_equal(p.ndel, 0);
	assert_int_equal(p.n, 0);
	xr_plan_free(&p);
	/* --delete, no filters: everything not in src, children first */
	o.del = true;
	assert_int_equal(xr_plan_build(&src, &dst, NULL, &o, &p), 0);
	assert_string_equal(dels(&p, &dst),
			    "xdir.f|xdir/y/z|xdir/y/|xdir/|top.ini|sub/deep/c|sub/deep/|sub/b|"
			    "pdir/in/z|pdir/in/|pdir/|old/x|old/sub/y.ini|old/sub/|"
			    "old/keep.ini|old/|extra");
	xr_plan_free(&p);
	/*
	 * "- *.ini" protects the .ini files and so the directories above them
	 * (rsync: "cannot delete non-empty directory"); "P pdir/" protects a
	 * directory absent from src with all it holds; "P sub/" does not
	 * protect the contents of sub, which src has (rsync looks inside).
	 */
	assert_int_equal(xr_filters_add(f, '-', "*.ini", "test"), 0);
	assert_int_equal(xr_filters_add(f, 0, "P pdir/", "test"), 0);
	assert_int_equal(xr_filters_add(f, 0, "P sub/", "test"), 0);
	assert_int_equal(xr_plan_build(&src, &dst, f, &o, &p), 0);
	assert_string_equal(dels(&p, &dst),
			    "xdir.f|xdir/y/z|xdir/y/|xdir/|sub/deep/c|sub/deep/|sub/b|old/x|extra");
	xr_plan_free(&p);
	/*
	 * --delete-excluded: plain rules no longer protect, P still does (and
	 * "P sub/" matches old/sub, absent from src, which keeps old/ too)
	 */
	xr_filters_set_delete_excluded(f, true);
	assert_int_equal(xr_plan_build(&src, &dst, f, &o, &p), 0);
	assert_string_equal(dels(&p, &dst),
			    "xdir.f|xdir/y/z|xdir/y/|xdir/|top.ini|sub/deep/c|sub/deep/|sub/b|"
			    "old/x|old/keep.ini|extra");
	xr_plan_free(&p);
	xr_filters_free(f);
	xr_manifest_free(&src);
	xr_manifest_free(&dst);
}

static void test_plan_order_and_empty(void **state)
{
	static const char *const s_spec[] = {"d:.", "f:b", "d:a", "f:a/x", "f:a.b", NULL};
	static const char *const d_spec[] = {"d:.", NULL};
	struct xr_manifest src, dst, none;
	struct xr_plan_opts o = popts("aX");
	struct xr_plan p;
	size_t i;

	(void)state;
	fill(&src, s_spec);
	fill(&dst, d_spec);
	xr_manifest_init(&none);
	xr_plan_init(&p);
	assert_int_equal(xr_plan_build(&src, &dst, NULL, &o, &p), 0);
	assert_int_equal(p.n, 4);
	for (i = 0; i < p.n; i++) {
		assert_int_equal(p.items[i].src, i + 1); /* src order */
		assert_int_equal(p.items[i].act, XR_ACT_CREATE);
		assert_int_equal(p.items[i].dst, -1);
	}
	assert_string_equal(src.e[p.items[1].src].path, "a/x");
	xr_plan_free(&p);
	/* empty receiver: no "." either; everything is created */
	assert_int_equal(xr_plan_build(&src, &none, NULL, &o, &p), 0);
	assert_int_equal(p.n, 5);
	assert_string_equal(p.items[0].itemize, "cd+++++++++");
	xr_plan_free(&p);
	/* empty sender: the receiver's root is never deleted */
	assert_int_equal(xr_plan_build(&none, &src, NULL, &o, &p), 0);
	assert_int_equal(p.n, 0);
	assert_string_equal(dels(&p, &src), "b|a.b|a/x|a/");
	xr_plan_free(&p);
	xr_manifest_free(&src);
	xr_manifest_free(&dst);
}

/* ---- the oracle: real trees, real rsync -i ---------------------------- */

#define T0 1577836800
#define T1 1609459200

/* Sets the mtime of path (not following links). */
static void set_time(int dfd, const char *path, time_t sec, long nsec)
{
	struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};

	assert_int_equal(utimensat(dfd, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* Writes a file with content and mode, mtime T0. */
static void mkfile(int dfd, const char *path, const char *content, mode_t mode)
{
	int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	set_time(dfd, path, T0, 0);
}

/* Replaces path (file or empty dir) with a symlink to target at mtime t. */
static void relink(int dfd, const char *target, const char *path, time_t t)
{
	unlinkat(dfd, path, 0);
	unlinkat(dfd, path, AT_REMOVEDIR);
	assert_int_equal(symlinkat(target, dfd, path), 0);
	set_time(dfd, path, t, 0);
}

/* The source tree of the oracle tests. */
static bool build_src(int s)
{
	static const char *dirs[] = {"dir", "sub", "newdir", "f2d", "dnew", "."};
	bool devs;
	size_t i;

	for (i = 0; i < 5; i++)
		assert_int_equal(mkdirat(s, dirs[i], 0755), 0);
	mkfile(s, "same", "aaaa\n", 0644);
	mkfile(s, "timeonly", "bbbb\n", 0644);
	mkfile(s, "nsec", "nnnn\n", 0644);
	mkfile(s, "sizetime", "cccccc\n", 0644);
	mkfile(s, "samesize", "gggg\n", 0644);
	mkfile(s, "ctime", "same\n", 0644);
	mkfile(s, "perm", "dddd\n", 0600);
	mkfile(s, "owner", "eeee\n", 0644);
	mkfile(s, "group", "ffff\n", 0644);
	mkfile(s, "mixed", "x\n", 0644);
	mkfile(s, "newfile", "new\n", 0644);
	mkfile(s, "newdir/inner", "in\n", 0644);
	mkfile(s, "dir/file", "df\n", 0644);
	mkfile(s, "sub/a", "sa\n", 0644);
	mkfile(s, "f2l", "x\n", 0644);
	mkfile(s, "d2f", "y\n", 0644);
	mkfile(s, "keep.ini", "k\n", 0644);
	relink(s, "tgt1", "lnk_change", T1);
	relink(s, "same_t", "lnk_same", T0);
	relink(s, "a", "lnk_own", T0);
	relink(s, "newt", "lnk_new", T0);
	relink(s, "xx", "l2f", T0);
	assert_int_equal(mkfifoat(s, "fifo_new", 0644), 0);
	assert_int_equal(mkfifoat(s, "fifo_time", 0644), 0);
	set_time(s, "fifo_new", T0, 0);
	set_time(s, "fifo_time", T0, 0);
	devs = mknodat(s, "dev_new", S_IFCHR | 0644, makedev(1, 3)) == 0;
	if (devs) {
		assert_int_equal(mknodat(s, "dev_rdev", S_IFCHR | 0644, makedev(1, 3)), 0);
		set_time(s, "dev_new", T0, 0);
		set_time(s, "dev_rdev", T0, 0);
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		set_time(s, dirs[i], T0, 0);
	return devs;
}

/* The receiver's differences, applied to a copy of the source tree. */
static void mutate_dst(int d, bool devs)
{
	set_time(d, "timeonly", T1, 0);
	set_time(d, "nsec", T0, 777);
	mkfile(d, "sizetime", "cc\n", 0644);
	set_time(d, "sizetime", T1, 0);
	mkfile(d, "samesize", "GGGG\n", 0644);
	set_time(d, "ctime", T1, 0);
	assert_int_equal(fchmodat(d, "perm", 0644, 0), 0);
	assert_int_equal(fchownat(d, "owner", 1234, (gid_t)-1, 0), 0);
	assert_int_equal(fchownat(d, "group", (uid_t)-1, 1234, 0), 0);
	mkfile(d, "mixed", "xxxxx\n", 0600);
	assert_int_equal(fchownat(d, "mixed", 5, 5, 0), 0);
	assert_int_equal(unlinkat(d, "newfile", 0), 0);
	assert_int_equal(unlinkat(d, "newdir/inner", 0), 0);
	assert_int_equal(unlinkat(d, "newdir", AT_REMOVEDIR), 0);
	relink(d, "tgt2", "lnk_change", T0);
	set_time(d, "lnk_same", T1, 0);
	assert_int_equal(fchownat(d, "lnk_own", 7, (gid_t)-1, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(unlinkat(d, "lnk_new", 0), 0);
	assert_int_equal(unlinkat(d, "fifo_new", 0), 0);
	set_time(d, "fifo_time", T1, 0);
	relink(d, "foo", "f2l", T0);
	assert_int_equal(unlinkat(d, "l2f", 0), 0);
	mkfile(d, "l2f", "q\n", 0644);
	assert_int_equal(unlinkat(d, "d2f", 0), 0);
	assert_int_equal(mkdirat(d, "d2f", 0755), 0);
	assert_int_equal(unlinkat(d, "f2d", AT_REMOVEDIR), 0);
	mkfile(d, "f2d", "w\n", 0644);
	if (devs) {
		assert_int_equal(unlinkat(d, "dev_new", 0), 0);
		assert_int_equal(unlinkat(d, "dev_rdev", 0), 0);
		assert_int_equal(mknodat(d, "dev_rdev", S_IFCHR | 0644, makedev(1, 5)), 0);
	}
	assert_int_equal(fchmodat(d, "sub", 0700, 0), 0);
	mkfile(d, "sub/b", "sb\n", 0644);
	mkfile(d, "extra", "e\n", 0644);
	mkfile(d, "top.ini", "t\n", 0644);
	assert_int_equal(mkdirat(d, "xdir", 0755), 0);
	assert_int_equal(mkdirat(d, "xdir/y", 0755), 0);
	mkfile(d, "xdir/y/z", "1\n", 0644);
	assert_int_equal(mkdirat(d, "old", 0755), 0);
	mkfile(d, "old/keep.ini", "k\n", 0644);
	mkfile(d, "old/x", "x\n", 0644);
	set_time(d, "dir", T1, 0);
	set_time(d, "sub", T0, 0);
	set_time(d, ".", T1, 0);
}

/* A sorted list of output lines. */
struct lines {
	char **v;
	size_t n;
};

static void lines_add(struct lines *l, const char *s)
{
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	l->v[l->n] = strdup(s);
	assert_non_null(l->v[l->n]);
	l->n++;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lines_free(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Runs the real rsync -i -n with args on root/src/ root/dst/ into l. */
static void run_rsync(const char *root, const char *args, struct lines *l)
{
	char cmd[1024], line[1024];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "cd '%s' && rsync -in %s src/ dst/ 2>/dev/null", root, args);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		/* informational lines, not itemized changes */
		if (strncmp(line, "skipping non-regular file", 25) == 0 ||
		    strncmp(line, "cannot delete non-empty directory", 33) == 0)
			continue;
		lines_add(l, line);
	}
	pclose(f);
	qsort(l->v, l->n, sizeof(*l->v), str_cmp);
}

/* Builds our own lines for the same run. */
static void run_plan(int s, int d, const char *letters, struct xr_filters *f, struct lines *l)
{
	struct xr_plan_opts o = popts(letters);
	/* the sender lists everything, as rsync's file list; the plan skips */
	struct xr_walk_opts ws = {
	    .recursive = true,
	    .links = true,
	    .devices = true,
	    .checksum = o.checksum,
	    .side = XR_WALK_SENDER,
	};
	struct xr_walk_opts wd = ws;
	struct xr_manifest src, dst;
	struct xr_plan p;
	unsigned van, err;
	char line[1024];
	size_t i;

	wd.side = XR_WALK_RECEIVER;
	wd.links = wd.devices = true;
	xr_manifest_init(&src);
	xr_manifest_init(&dst);
	xr_plan_init(&p);
	assert_int_equal(xr_walk(s, NULL, f, &ws, &src, &van, &err), 0);
	assert_int_equal(err, 0);
	assert_int_equal(xr_walk(d, NULL, f, &wd, &dst, &van, &err), 0);
	assert_int_equal(err, 0);
	assert_int_equal(xr_plan_build(&src, &dst, f, &o, &p), 0);
	for (i = 0; i < p.ndel; i++) {
		const struct xr_entry *e = &dst.e[p.deletions[i]];

		snprintf(line, sizeof(line), "*deleting   %s%s", e->path,
			 e->type == XR_FT_DIR ? "/" : "");
		lines_add(l, line);
	}
	for (i = 0; i < p.n; i++) {
		const struct xr_entry *e = &src.e[p.items[i].src];
		bool root = strcmp(e->path, ".") == 0;

		snprintf(line, sizeof(line), "%s %s%s%s%s", p.items[i].itemize,
			 root ? "." : e->path, e->type == XR_FT_DIR ? "/" : "",
			 e->link ? " -> " : "", e->link ? e->link : "");
		lines_add(l, line);
	}
	qsort(l->v, l->n, sizeof(*l->v), str_cmp);
	xr_plan_free(&p);
	xr_manifest_free(&src);
	xr_manifest_free(&dst);
}

/* Fails with both listings when they differ. */
static void compare(const char *what, const struct lines *want, const struct lines *got)
{
	size_t i, n = want->n > got->n ? want->n : got->n;
	bool same = want->n == got->n;

	for (i = 0; same && i < n; i++)
		same = strcmp(want->v[i], got->v[i]) == 0;
	if (same)
		return;
	fprintf(stderr, "%s: rsync | plan\n", what);
	for (i = 0; i < n; i++)
		fprintf(stderr, "  %-40s | %s\n", i < want->n ? want->v[i] : "",
			i < got->n ? got->v[i] : "");
	fail_msg("%s: plan differs from rsync", what);
}

struct oracle_case {
	const char *rsync_args;
	const char *letters;
	const char *exclude; /* one --exclude pattern or NULL */
};

static void test_oracle(void **state)
{
	static const struct oracle_case cases[] = {
	    {"-a", "a", NULL},
	    {"-ac", "ac", NULL},
	    {"-a --delete", "aX", NULL},
	    {"-a --delete --exclude='*.ini'", "aX", "*.ini"},
	    {"-a --delete --delete-excluded --exclude='*.ini'", "aXE", "*.ini"},
	    {"-rlpgoD", "rlpgoD", NULL},
	    {"-rlpgoDc", "rlpgoDc", NULL},
	    {"-rltgoD", "rltgoD", NULL},
	    {"-rlt", "rlt", NULL},
	    {"-r", "r", NULL},
	    {"-r --delete", "rX", NULL},
	};
	char root[] = "/tmp/xr-plan-XXXXXX", cmd[600], path[300];
	int s, d;
	bool devs;
	size_t i;

	(void)state;
	if (geteuid() != 0 || access("/usr/bin/rsync", X_OK) != 0)
		skip(); /* the tree needs chown; the oracle needs rsync */
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/src", root);
	assert_int_equal(mkdir(path, 0755), 0);
	s = open(path, O_RDONLY | O_DIRECTORY);
	assert_true(s >= 0);
	devs = build_src(s);
	snprintf(cmd, sizeof(cmd), "rsync -a '%s/src/' '%s/dst/'", root, root);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/dst", root);
	d = open(path, O_RDONLY | O_DIRECTORY);
	assert_true(d >= 0);
	mutate_dst(d, devs);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct oracle_case *c = &cases[i];
		struct xr_filters *f = NULL;
		struct lines want = {NULL, 0}, got = {NULL, 0};

		if (c->exclude) {
			f = xr_filters_new();
			assert_int_equal(xr_filters_add(f, '-', c->exclude, "test"), 0);
			if (strchr(c->letters, 'E'))
				xr_filters_set_delete_excluded(f, true);
		}
		run_rsync(root, c->rsync_args, &want);
		assert_true(want.n > 5); /* rsync did run and report */
		run_plan(s, d, c->letters, f, &got);
		compare(c->rsync_args, &want, &got);
		lines_free(&want);
		lines_free(&got);
		xr_filters_free(f);
	}
	close(s);
	close(d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_deletions),
	    cmocka_unit_test(test_plan_order_and_empty),
	    cmocka_unit_test(test_oracle),
	};

	xr_log_init(-1, "");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* plan.h - what must change on the receiver: the difference of two manifests. */
#ifndef XR_PLAN_H
#define XR_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xr/manifest.h"

struct xr_filters;

enum xr_action {
	XR_ACT_NONE = 0,	/* up to date */
	XR_ACT_CREATE,		/* absent on the receiver: create (file data sent whole) */
	XR_ACT_UPDATE,		/* regular file whose content may differ: needs data (basis exists) */
	XR_ACT_META,		/* same content (or non-file), only attributes differ */
	XR_ACT_REPLACE,		/* type changed: old entry removed, new one created */
};

/* Which attributes the run preserves (from -p -t -o -g -l -D, root or not). */
struct xr_plan_opts {
	bool perms, times, owner, group, links, devices;
	bool checksum;		/* -c: compare hashes instead of size+mtime */
	bool del;		/* --delete (any form) */
	bool delete_excluded;
	bool ignore_times;	/* -I (unused by the CLI for now) */
	bool exact_times;	/* compare mtime nanoseconds too (--watch: several writes a second) */
	bool is_root;		/* receiver runs as root: owner applies */
};

/* One planned change: 24 bytes, as a 10,000-file plan is held until it is reported. */
struct xr_plan_item {
	uint32_t src;		/* index into the sender's manifest */
	int32_t dst;		/* index into the receiver's manifest, -1 if absent */
	uint8_t act;		/* enum xr_action */
	bool need_data;		/* file data must travel (CREATE/REPLACE of a file, UPDATE) */
	bool same_content;	/* set by the receiver: the sender found the content equal */
	char itemize[12];	/* rsync's 11-char %i string, e.g. ">f+++++++++", ".d..t......" */
};

struct xr_plan {
	struct xr_plan_item *items;	/* only entries with act != NONE, in src order */
	size_t n, cap;
	size_t *deletions;	/* receiver manifest indexes to delete, deepest first */
	size_t ndel, delcap;
};

void xr_plan_init(struct xr_plan *p);
void xr_plan_free(struct xr_plan *p);

/*
 * Compares src (the sender's manifest, already mapped to receiver ids) with
 * dst (the receiver's walk of DEST).  Quick check as rsync: a regular file
 * is up to date when size and mtime match, or with -c when hashes match.
 * mtimes compare in whole seconds: rsync 3.5 (default --modify-window 0)
 * neither retransfers nor itemizes a file whose mtime differs only in
 * nanoseconds (checked).  Without -t a differing mtime means a transfer.
 * Deletions (when opts->del) are receiver entries absent from src that the
 * filters do not protect (XR_SIDE_RECEIVER), ordered children before
 * parents.  Returns 0, XR_ENOMEM, or XR_ELIMIT past 2^31 entries.
 */
int xr_plan_build(const struct xr_manifest *src, const struct xr_manifest *dst,
		  const struct xr_filters *filters, const struct xr_plan_opts *opts,
		  struct xr_plan *out);

/*
 * Fills out (12 bytes) with rsync's itemize string for a change of dst
 * (NULL when absent) to src, as seen by the receiver ('>' for received
 * files, 'c' for locally created dirs/links/devices, '.' for attribute-only
 * changes).  content_changed says the file's data differed (for "c" under
 * -c and for new data); flags follow rsync 3.x: "YXcstpoguax".
 */
void xr_itemize(const struct xr_entry *src, const struct xr_entry *dst,
		const struct xr_plan_opts *opts, bool content_changed, char out[12]);

#endif

/* filter.h - rsync's filter rules: --include/--exclude(-from), -f, merge. */
#ifndef XR_FILTER_H
#define XR_FILTER_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Grammar and meaning are rsync's (man rsync, FILTER RULES, INCLUDE/EXCLUDE
 * PATTERN RULES):
 *   rules:     "+ PAT", "- PAT", "P PAT", "R PAT", "H PAT", "S PAT",
 *              long forms "include PAT", "exclude PAT", "protect PAT",
 *              "risk PAT", "hide PAT", "show PAT", "merge FILE", ". FILE",
 *              "!" / "clear"; modifiers after the letter: "s" (sender side
 *              only), "r" (receiver side only), "!" (match if the pattern
 *              does NOT match), "/" (match against the absolute path is NOT
 *              supported -> error); a rule letter followed by ',' works too
 *              ("-,s foo" equals "-s foo").
 *   patterns:  leading "/" anchors at the transfer root; trailing "/" matches
 *              directories only; no "/" (other than trailing) and no "**"
 *              -> matched against the final component; otherwise against
 *              the whole path, unanchored patterns at any "/" boundary;
 *              "*" any run of non-"/", "?" one non-"/", "[...]" classes with
 *              ranges and "!"/"^" negation, "\" escapes, "**" anything
 *              including "/", a pattern ending in "/" plus "***" (three stars) the
 *              directory itself and all inside it.
 *   order:     first matching rule wins; no match means included.
 * Excludes protect the receiver's files from --delete unless
 * --delete-excluded (then plain +/- rules apply to the sender only).
 * Unsupported rule kinds (dir-merge ":", "-/" absolute, "e"/"n"/"w"/"C"
 * modifiers) are refused with XR_EUNSUPPORTED and a message, never ignored.
 */

enum xr_filter_side {
	XR_SIDE_SENDER,	  /* which files are sent (hide/show)        */
	XR_SIDE_RECEIVER, /* which files --delete may touch (protect) */
};

struct xr_filters;

/* Returns an empty rule list, or NULL on ENOMEM. */
struct xr_filters *xr_filters_new(void);
void xr_filters_free(struct xr_filters *f);

/*
 * Appends one rule.  kind is 0 for a full filter rule (-f / a merge-file
 * line), '+' for --include PATTERN, '-' for --exclude PATTERN.  origin names
 * where the rule came from for error messages ("--filter", "list.txt:12").
 * A merge rule reads its file at once (relative names against the current
 * working directory).  Returns 0, XR_ESYNTAX (message printed naming
 * origin and cause), XR_EUNSUPPORTED or XR_EFILEIO.
 */
int xr_filters_add(struct xr_filters *f, int kind, const char *rule, const char *origin);

/*
 * --exclude-from / --include-from (kind '-' / '+'), or a merge file
 * (kind 0): one rule per line, blank lines and lines starting with ';' or
 * '#' ignored; path "-" is standard input.  Returns as xr_filters_add().
 */
int xr_filters_add_file(struct xr_filters *f, int kind, const char *path);

/* --delete-excluded: plain include/exclude rules then bind the sender only. */
void xr_filters_set_delete_excluded(struct xr_filters *f, bool on);

/*
 * True if path (relative to the transfer root, no leading "/", "." never
 * passed) is excluded for the given side.  is_dir says whether it is a
 * directory.
 */
bool xr_filters_excluded(const struct xr_filters *f, const char *path, bool is_dir,
			 enum xr_filter_side side);

/*
 * True if a directory above path (any proper ancestor) is excluded for
 * side: a walk would never have reached path.  False when f is NULL.
 */
bool xr_filters_excluded_above(const struct xr_filters *f, const char *path,
			       enum xr_filter_side side);

/*
 * The rule list in canonical text, for shipping to the peer: rule i as
 * "<letter>[s][r][!] <pattern>" (e.g. "- /conf.d/node.ini", "Pr foo"),
 * merge rules already expanded.  xr_filters_add(f, 0, text, ...) of each
 * string in order rebuilds an equal list.
 */
size_t xr_filters_count(const struct xr_filters *f);
const char *xr_filters_rule(const struct xr_filters *f, size_t i);

/* rsync's wildcard matcher (exported for tests): true if text matches. */
bool xr_wildmatch(const char *pattern, const char *text);

#endif

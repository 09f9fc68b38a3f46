/* hooks.h - --on-change PATTERN=COMMAND: run a command after a commit changed matching files. */
#ifndef XR_HOOKS_H
#define XR_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A hook fires after a change set was committed (never on a dry run) when
 * at least one changed path matches its PATTERN.  PATTERN is an rsync
 * pattern, matched as a filter rule would be: a leading "/" anchors it at
 * the transfer root, a trailing "/" matches directories only, a pattern
 * without "/" (other than a trailing one) and without "**" is matched
 * against the last component, any other against the whole path at every
 * "/" boundary ("conf.d/proxy*.ini" matches "conf.d/proxy.ini" and
 * "x/conf.d/proxy-ui-api.ini"), a pattern ending in "/" and three stars the
 * directory and everything in it.  Changed paths are the itemized changes of the change
 * set: content, creations, deletions and type changes; attribute-only
 * changes (mode, owner, mtime - the signer's 60 s re-save of keyconf.xml)
 * do not fire hooks.
 *
 * COMMAND runs through /bin/sh -c in its own process group, stdin
 * /dev/null, stdout and stderr captured line by line into the log file
 * ("hook: LINE") and shown with -v; environment XR_DEST (the destination)
 * and XR_CHANGED (the matching paths, one per line).  After timeout seconds
 * the group gets SIGTERM, 2 s later SIGKILL.  Hooks run one after another
 * in the order given; a failure (exit status != 0, signal or timeout) is
 * printed and logged and never fails the sync.
 */

struct xr_hook {
	char *pattern;
	char *command;
};

struct xr_hooks {
	struct xr_hook *v;
	size_t n;
	int timeout;			/* seconds, > 0 */
};

/*
 * Splits "PATTERN=COMMAND" at the first "=" into h (appended).  Returns 0,
 * XR_ESYNTAX (no "=", empty pattern or command; message names origin) or
 * XR_ENOMEM.
 */
int xr_hooks_add(struct xr_hooks *h, const char *spec, const char *origin);
void xr_hooks_free(struct xr_hooks *h);

/* True if the changed path (relative, directories ending in "/") matches pattern. */
bool xr_hook_matches(const char *pattern, const char *path);

/*
 * One changed entry of a change set as the receiver records it: the
 * 11-character itemize string (rsync's %i, "*deleting  " for deletions,
 * padded with spaces) followed by the name (%n: directories end in "/").
 * True when the entry is a change of content or existence (not
 * attribute-only); *name points into entry.
 */
bool xr_hook_changed_entry(const char *entry, const char **name);

/*
 * Runs every hook whose pattern matches one of changed[0..n) (entries as
 * above); *ran (when not NULL) gets how many ran.  Returns 0 when all that
 * ran succeeded, or the number that failed; err (when not NULL) gets
 * "PATTERN=COMMAND: exit 3" (or "killed after the timeout of 60 s",
 * "signal 9") of the last failure.
 */
int xr_hooks_run(const struct xr_hooks *h, char *const changed[], size_t n, const char *dest,
		 size_t *ran, char *err, size_t cap);

/*
 * Runs one command (as above) with a timeout in seconds; returns its wait
 * status as waitpid gives it, or -1 when it could not start; *timed_out
 * says it was killed for the timeout.
 */
int xr_hook_exec(const char *command, int timeout, const char *dest, const char *changed,
		 bool *timed_out);

#endif

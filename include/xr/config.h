/* config.h - the configuration file (ini, read with inih) merged under the command line. */
#ifndef XR_CONFIG_H
#define XR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/*
 * pull and push read --config FILE, or XR_CONFIG_DEFAULT when it exists
 * and no --config is given (--config "" or --no-config: none); status
 * reads a FILE only when --config is given ([status], [health]).  serve
 * never reads one.  Format (inih: "key = value", "#" or ";" comments,
 * lines up to 199 characters, an inline comment needs whitespace before
 * ";"):
 *
 *   [sync]    source = primary:/etc/xroad/     the SRC argument
 *             destination = /etc/xroad/        DEST; repeatable (push)
 *             profile, log_file, pause_file, rsh, rsync_path      strings
 *             timeout, contimeout, reconcile                      seconds
 *             watch, archive, compress, quiet, delete, delete_delay,
 *             checksum, itemize                 yes|no|true|false|on|off|1|0
 *             exclude, include, filter, commit_last               repeatable
 *   [hooks]   on_change = PATTERN=COMMAND (repeatable), timeout = seconds
 *   [health]  port, bind, max_age
 *   [status]  state_dir
 *
 * The command line overrides the file: every key becomes the matching
 * long option placed before the command line's options (a later scalar
 * wins); repeatable rules (exclude, include, filter, commit_last,
 * on_change) go after the command line's, so its rules match first.
 * source/destination are used only when the command line has no SRC/DEST.
 * Errors name FILE:LINE and the key; nothing of a bad file is used.
 */

#define XR_CONFIG_DEFAULT "/etc/xroad-replicate/xroad-replicate.conf"

struct xr_config {
	char **opts;		/* "--key=value" options before the command line's */
	size_t nopts;
	char **lists;		/* repeatable options after the command line's */
	size_t nlists;
	char **args;		/* source, then destinations */
	size_t nargs;
	bool have_source;
};

/*
 * Reads path into c.  Returns 0, 1 when the file does not exist (c empty),
 * XR_ESYNTAX ("FILE:LINE: [section] key: reason" printed) or XR_EFILEIO.
 */
int xr_config_load(const char *path, struct xr_config *c);
void xr_config_free(struct xr_config *c);

/*
 * Builds the argument vector xr_opts_parse sees: argv[0], argv[1], c's
 * opts, argv[2..argc), c's lists (before a "--" of argv), NULL, then c's
 * args and a NULL.  Every string is a copy.  *nargc is the count before the
 * first NULL; *ntotal all slots (for xr_config_free_argv).  Returns 0 or
 * XR_ENOMEM.
 */
int xr_config_merge_argv(const struct xr_config *c, int argc, char **argv, int *nargc,
			 char ***nargv, int *ntotal);
void xr_config_free_argv(char **v, int ntotal);

#endif

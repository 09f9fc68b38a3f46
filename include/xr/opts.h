/* opts.h - the options of one run, as parsed from the command line. */
#ifndef XR_OPTS_H
#define XR_OPTS_H

#include <stdbool.h>
#include <stddef.h>

struct xr_filters;

enum xr_command { XR_CMD_NONE, XR_CMD_PULL, XR_CMD_PUSH, XR_CMD_SERVE, XR_CMD_STATUS };

struct xr_opts {
	enum xr_command cmd;
	/* rsync's transfer options */
	bool recursive, links, perms, times, group, owner, devices, specials;
	bool compress, dry_run, checksum, itemize, stats, progress, numeric_ids;
	bool del, delete_delay, delete_excluded, delay_updates;
	int whole_file;		/* -W 1, --no-W 0, -1 unset: whole for local copies, as rsync */
	int verbose;		/* -v count; -q sets quiet */
	bool quiet;
	int timeout;		/* --timeout, seconds (0 = none) */
	int contimeout;		/* --contimeout, seconds */
	char *log_file;
	char *log_file_format;	/* NULL = "%i %n%L" */
	char *out_format;	/* --out-format (stdout lines), NULL = default */
	char *rsh;		/* -e */
	char *rsync_path;	/* remote program, default "xroad-replicate" */
	struct xr_filters *filters;
	char **commit_last;	/* NULL-terminated */
	size_t ncommit_last;
	char *pause_file;
	char *profile;
	bool watch;
	int reconcile;		/* --reconcile: full change set every N s in --watch (0 = never) */
	int watch_quiet_ms;	/* --watch-quiet: coalescing quiet period */
	/* serve */
	char *root;
	bool read_only, write_only;
	/* status */
	bool json;
	long max_age;		/* --max-age seconds; -1 = not given */
	/* operations: state file, health, hooks, config (cli/status.c, hooks.c, config.c) */
	char *state_dir;	/* --state-dir (NULL = default, see status.h) */
	int health_port;	/* --health-port (0 = no health responder) */
	char *health_bind;	/* --health-bind (NULL = 127.0.0.1) */
	char **on_change;	/* --on-change PATTERN=COMMAND, NULL-terminated */
	size_t non_change;
	int hook_timeout;	/* --hook-timeout seconds (default 60) */
	char *config;		/* --config FILE actually read (NULL = none) */
	int argc0;		/* the command line, kept for SIGHUP re-reading */
	char **argv0;
	char **argv_owned;	/* config merged into the command line (see config.h) */
	int nargv_owned;
	/* positional arguments */
	char **args;
	int nargs;
};

/*
 * Parses argv (argv[1] is the command).  On error prints a message naming
 * the option and returns XR_ESYNTAX or XR_EUNSUPPORTED; returns 1 when
 * --help or --version was handled (exit 0).  Returns 0 otherwise.
 */
int xr_opts_parse(struct xr_opts *o, int argc, char **argv);
void xr_opts_free(struct xr_opts *o);

#endif

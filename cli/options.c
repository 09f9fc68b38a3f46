/* options.c - rsync-compatible command-line parsing. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr/config.h"
#include "xr/err.h"
#include "xr/filter.h"
#include "xr/log.h"
#include "xr/opts.h"

#ifndef XR_VERSION
#define XR_VERSION "0.1.0"
#endif

enum {
	OPT_DELETE = 256, OPT_DELETE_DELAY, OPT_DELETE_EXCLUDED, OPT_DELAY_UPDATES, OPT_EXCLUDE,
	OPT_INCLUDE, OPT_EXCLUDE_FROM, OPT_INCLUDE_FROM, OPT_TIMEOUT, OPT_CONTIMEOUT,
	OPT_LOG_FILE, OPT_LOG_FILE_FORMAT, OPT_OUT_FORMAT, OPT_NUMERIC_IDS, OPT_STATS,
	OPT_PROGRESS, OPT_RSYNC_PATH, OPT_VERSION, OPT_HELP, OPT_PROFILE, OPT_COMMIT_LAST,
	OPT_PAUSE_FILE, OPT_WATCH, OPT_ROOT, OPT_READ_ONLY, OPT_WRITE_ONLY, OPT_JSON,
	OPT_MAX_AGE, OPT_DEVICES, OPT_SPECIALS, OPT_NO_PERMS, OPT_NO_TIMES, OPT_NO_OWNER,
	OPT_NO_GROUP, OPT_NO_LINKS, OPT_NO_DEVICES, OPT_NO_SPECIALS, OPT_NO_D, OPT_NO_RECURSIVE,
	OPT_PARTIAL, OPT_RECONCILE, OPT_WATCH_QUIET, OPT_STATE_DIR, OPT_HEALTH_PORT,
	OPT_HEALTH_BIND, OPT_ON_CHANGE, OPT_HOOK_TIMEOUT, OPT_CONFIG, OPT_NO_CONFIG,
	OPT_NO_WHOLE_FILE,
};

static const struct option long_opts[] = {
	{"archive", no_argument, NULL, 'a'},
	{"recursive", no_argument, NULL, 'r'},
	{"links", no_argument, NULL, 'l'},
	{"perms", no_argument, NULL, 'p'},
	{"times", no_argument, NULL, 't'},
	{"group", no_argument, NULL, 'g'},
	{"owner", no_argument, NULL, 'o'},
	{"devices", no_argument, NULL, OPT_DEVICES},
	{"specials", no_argument, NULL, OPT_SPECIALS},
	{"no-perms", no_argument, NULL, OPT_NO_PERMS},
	{"no-p", no_argument, NULL, OPT_NO_PERMS},
	{"no-times", no_argument, NULL, OPT_NO_TIMES},
	{"no-t", no_argument, NULL, OPT_NO_TIMES},
	{"no-owner", no_argument, NULL, OPT_NO_OWNER},
	{"no-o", no_argument, NULL, OPT_NO_OWNER},
	{"no-group", no_argument, NULL, OPT_NO_GROUP},
	{"no-g", no_argument, NULL, OPT_NO_GROUP},
	{"no-links", no_argument, NULL, OPT_NO_LINKS},
	{"no-l", no_argument, NULL, OPT_NO_LINKS},
	{"no-devices", no_argument, NULL, OPT_NO_DEVICES},
	{"no-specials", no_argument, NULL, OPT_NO_SPECIALS},
	{"no-D", no_argument, NULL, OPT_NO_D},
	{"no-recursive", no_argument, NULL, OPT_NO_RECURSIVE},
	{"no-r", no_argument, NULL, OPT_NO_RECURSIVE},
	{"compress", no_argument, NULL, 'z'},
	{"quiet", no_argument, NULL, 'q'},
	{"verbose", no_argument, NULL, 'v'},
	{"itemize-changes", no_argument, NULL, 'i'},
	{"dry-run", no_argument, NULL, 'n'},
	{"checksum", no_argument, NULL, 'c'},
	{"whole-file", no_argument, NULL, 'W'},
	{"no-whole-file", no_argument, NULL, OPT_NO_WHOLE_FILE},
	{"no-W", no_argument, NULL, OPT_NO_WHOLE_FILE},
	{"delete", no_argument, NULL, OPT_DELETE},
	{"delete-before", no_argument, NULL, OPT_DELETE},
	{"delete-during", no_argument, NULL, OPT_DELETE},
	{"delete-after", no_argument, NULL, OPT_DELETE_DELAY},
	{"delete-delay", no_argument, NULL, OPT_DELETE_DELAY},
	{"delete-excluded", no_argument, NULL, OPT_DELETE_EXCLUDED},
	{"delay-updates", no_argument, NULL, OPT_DELAY_UPDATES},
	{"exclude", required_argument, NULL, OPT_EXCLUDE},
	{"include", required_argument, NULL, OPT_INCLUDE},
	{"exclude-from", required_argument, NULL, OPT_EXCLUDE_FROM},
	{"include-from", required_argument, NULL, OPT_INCLUDE_FROM},
	{"filter", required_argument, NULL, 'f'},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"contimeout", required_argument, NULL, OPT_CONTIMEOUT},
	{"log-file", required_argument, NULL, OPT_LOG_FILE},
	{"log-file-format", required_argument, NULL, OPT_LOG_FILE_FORMAT},
	{"out-format", required_argument, NULL, OPT_OUT_FORMAT},
	{"numeric-ids", no_argument, NULL, OPT_NUMERIC_IDS},
	{"stats", no_argument, NULL, OPT_STATS},
	{"progress", no_argument, NULL, OPT_PROGRESS},
	{"rsh", required_argument, NULL, 'e'},
	{"rsync-path", required_argument, NULL, OPT_RSYNC_PATH},
	{"version", no_argument, NULL, OPT_VERSION},
	{"help", no_argument, NULL, OPT_HELP},
	{"profile", required_argument, NULL, OPT_PROFILE},
	{"commit-last", required_argument, NULL, OPT_COMMIT_LAST},
	{"pause-file", required_argument, NULL, OPT_PAUSE_FILE},
	{"watch", no_argument, NULL, OPT_WATCH},
	{"reconcile", required_argument, NULL, OPT_RECONCILE},
	{"watch-quiet", required_argument, NULL, OPT_WATCH_QUIET},
	{"root", required_argument, NULL, OPT_ROOT},
	{"read-only", no_argument, NULL, OPT_READ_ONLY},
	{"write-only", no_argument, NULL, OPT_WRITE_ONLY},
	{"json", no_argument, NULL, OPT_JSON},
	{"max-age", required_argument, NULL, OPT_MAX_AGE},
	{"state-dir", required_argument, NULL, OPT_STATE_DIR},
	{"health-port", required_argument, NULL, OPT_HEALTH_PORT},
	{"health-bind", required_argument, NULL, OPT_HEALTH_BIND},
	{"on-change", required_argument, NULL, OPT_ON_CHANGE},
	{"hook-timeout", required_argument, NULL, OPT_HOOK_TIMEOUT},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"no-config", no_argument, NULL, OPT_NO_CONFIG},
	{NULL, 0, NULL, 0},
};

static const char usage_text[] =
	"Usage: xroad-replicate pull  [--watch] [OPTION...] SRC DEST\n"
	"       xroad-replicate push  [--watch] [OPTION...] SRC DEST [DEST...]\n"
	"       xroad-replicate serve [--root DIR] [--read-only|--write-only]\n"
	"       xroad-replicate status [--json] [--max-age SEC] [--state-dir DIR] [DEST]\n"
	"\n"
	"SRC and DEST are local paths or [USER@]HOST:PATH; a trailing \"/\" on SRC means\n"
	"\"the contents of\", as with rsync.  pull writes into a local DEST, push sends a\n"
	"local SRC to every DEST in parallel.  The remote side runs \"xroad-replicate serve\"\n"
	"over SSH (an exec channel), or over a local pipe for two local paths.\n"
	"\n"
	"rsync options (same meaning as rsync's):\n"
	" -a, --archive               archive mode; equals -rlptgoD\n"
	" -r, --recursive             recurse into directories\n"
	" -l, --links                 copy symlinks as symlinks\n"
	" -p, --perms                 preserve permissions\n"
	" -t, --times                 preserve modification times\n"
	" -g, --group                 preserve group\n"
	" -o, --owner                 preserve owner (super-user only)\n"
	" -D                          same as --devices --specials\n"
	"     --devices, --specials   preserve device files / special files\n"
	"     --no-OPTION             turn off an implied OPTION (e.g. --no-perms)\n"
	" -z, --compress              compress file data during the transfer\n"
	" -q, --quiet                 suppress non-error messages\n"
	" -v, --verbose               increase verbosity\n"
	" -i, --itemize-changes       output a change-summary for all updates\n"
	" -n, --dry-run               perform a trial run with no changes made\n"
	" -c, --checksum              skip based on checksum, not mod-time & size\n"
	" -W, --whole-file            copy files whole (no delta; default for local copies)\n"
	"     --no-whole-file, --no-W deltas even for a local copy\n"
	"     --delete                delete extraneous files from dest dirs\n"
	"     --delete-delay          the same (deletions are part of the atomic commit)\n"
	"     --delete-excluded       also delete excluded files from dest dirs\n"
	"     --delay-updates         accepted: every update is applied at the end, atomically\n"
	"     --exclude=PATTERN       exclude files matching PATTERN\n"
	"     --include=PATTERN       don't exclude files matching PATTERN\n"
	"     --exclude-from=FILE     read exclude patterns from FILE\n"
	"     --include-from=FILE     read include patterns from FILE\n"
	" -f, --filter=RULE           add a file-filtering RULE (+ - P R H S merge .)\n"
	"     --timeout=SECONDS       set I/O timeout in seconds\n"
	"     --contimeout=SECONDS    set the connection timeout in seconds\n"
	"     --log-file=FILE         log what we're doing to the specified FILE\n"
	"     --log-file-format=FMT   log updates using the specified FMT (default \"%i %n%L\")\n"
	"     --out-format=FMT        output updates using the specified FMT\n"
	"     --numeric-ids           don't map uid/gid values by user/group name\n"
	"     --stats                 give some file-transfer stats\n"
	"     --progress              show progress during transfer\n"
	" -e, --rsh=COMMAND           specify the remote shell to use (ssh: built-in libssh2)\n"
	"     --rsync-path=PROGRAM    the remote program (default: xroad-replicate)\n"
	"     --version               print the version and exit\n"
	"     --help                  show this help\n"
	"\n"
	"xroad-replicate options:\n"
	"     --profile=xroad         the X-Road guide's excludes, log file, timeouts, commit order\n"
	"     --commit-last=PATTERN   commit files matching PATTERN after all others\n"
	"     --pause-file=FILE       do nothing (exit 0) while FILE exists; --watch holds\n"
	"     --watch                 stay connected: inotify on the sending side ships each\n"
	"                             change within milliseconds; reconnects with backoff\n"
	"     --reconcile=SECONDS     --watch: full change set every SECONDS (default 300, 0 off)\n"
	"     --watch-quiet=MS        --watch: coalescing quiet period (default 5 ms)\n"
	"     --root=DIR              serve: confine every path beneath DIR\n"
	"     --read-only             serve: only send (a secondary may pull, never push)\n"
	"     --write-only            serve: only receive (a primary may push, never pull)\n"
	"\n"
	"Operations:\n"
	"     --config=FILE           read options from FILE (ini; default for pull/push:\n"
	"                             " XR_CONFIG_DEFAULT " if it exists);\n"
	"                             the command line overrides it; --no-config: none\n"
	"     --state-dir=DIR         status files (default /var/lib/xroad-replicate when\n"
	"                             writable, else ~/.local/state/xroad-replicate)\n"
	"     --on-change=PAT=CMD     after a commit that changed files matching the rsync\n"
	"                             pattern PAT, run CMD with /bin/sh (pull; repeatable)\n"
	"     --hook-timeout=SECONDS  kill a hook after SECONDS (default 60)\n"
	"     --health-port=PORT      --watch: answer HTTP GET on 127.0.0.1:PORT with 200 OK\n"
	"                             or 503 by the status (like the X-Road health check)\n"
	"     --health-bind=ADDR      the address for --health-port (default 127.0.0.1)\n"
	"     --max-age=SECONDS       status, health: unhealthy when the last success is\n"
	"                             older (health default 180; a live --watch session\n"
	"                             counts as fresh)\n"
	"     --json                  status: machine-readable output\n"
	"  status exits 0 when healthy, 1 when no run is recorded, the last run failed or\n"
	"  (with --max-age) the last success is too old.  SIGHUP in --watch re-reads the\n"
	"  configuration (hooks, pause file; the log file is reopened) at once when idle.\n"
	"\n"
	"Exit codes are rsync's (0 ok, 1 syntax, 2 protocol, 5 start, 10 socket, 11 file I/O,\n"
	"12 data stream, 20 signal, 23 partial, 24 vanished, 30 timeout, 35 connect timeout,\n"
	"255 SSH failure).\n";

/* The X-Road guide's replication line (IG-XLB 5), as a profile. */
static const char *const xroad_excludes[] = {
	"db.properties", "/conf.d/node.ini", "*.tmp", "/postgresql", "/globalconf", "/gpghome",
	NULL,
};

/* Parses a non-negative number of seconds for option name. */
static int parse_seconds(const char *name, const char *arg, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 0 || v > INT_MAX) {
		fprintf(stderr, "xroad-replicate: --%s=%s: not a number of seconds\n", name, arg);
		return XR_ESYNTAX;
	}
	*out = (int)v;
	return 0;
}

/* Appends pattern to the commit-last list. */
static int add_commit_last(struct xr_opts *o, const char *pattern)
{
	char **n = realloc(o->commit_last, (o->ncommit_last + 2) * sizeof(char *));

	if (n == NULL)
		return XR_ENOMEM;
	o->commit_last = n;
	n[o->ncommit_last] = strdup(pattern);
	if (n[o->ncommit_last] == NULL)
		return XR_ENOMEM;
	n[++o->ncommit_last] = NULL;
	return 0;
}

/* Applies --profile NAME: defaults that explicit options keep overriding. */
static int apply_profile(struct xr_opts *o, bool have_timeout, bool have_contimeout)
{
	int rc = 0;

	if (strcmp(o->profile, "xroad") != 0) {
		fprintf(stderr, "xroad-replicate: --profile=%s: unknown profile (known: xroad)\n",
			o->profile);
		return XR_ESYNTAX;
	}
	for (size_t i = 0; rc == 0 && xroad_excludes[i]; i++)
		rc = xr_filters_add(o->filters, '-', xroad_excludes[i], "--profile=xroad");
	if (!have_timeout)
		o->timeout = 10;
	if (!have_contimeout)
		o->contimeout = 5;
	if (o->log_file == NULL)
		o->log_file = strdup("/var/log/xroad/slave-sync.log");
	if (o->pause_file == NULL)
		o->pause_file = strdup("/var/tmp/xroad/sync-disabled");
	if (rc == 0 && o->ncommit_last == 0)
		rc = add_commit_last(o, "signer/keyconf.xml");
	return rc;
}

/* Appends a copy of spec to the --on-change list. */
static int add_on_change(struct xr_opts *o, const char *spec)
{
	char **n = realloc(o->on_change, (o->non_change + 2) * sizeof(char *));

	if (n == NULL)
		return XR_ENOMEM;
	o->on_change = n;
	if (strchr(spec, '=') == NULL || spec[0] == '=') {
		fprintf(stderr, "xroad-replicate: --on-change=%s: expected PATTERN=COMMAND\n", spec);
		return XR_ESYNTAX;
	}
	n[o->non_change] = strdup(spec);
	if (n[o->non_change] == NULL)
		return XR_ENOMEM;
	n[++o->non_change] = NULL;
	return 0;
}

/*
 * Finds --config FILE / --no-config in argv (before "--"); *path is NULL
 * when none was given, "" for --no-config.
 */
static void find_config_arg(int argc, char **argv, const char **path)
{
	*path = NULL;
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strncmp(argv[i], "--config=", 9))
			*path = argv[i] + 9;
		else if (!strcmp(argv[i], "--config") && i + 1 < argc)
			*path = argv[++i];
		else if (!strcmp(argv[i], "--no-config"))
			*path = "";
	}
}

/*
 * Reads the configuration file for this command and merges it under the
 * command line: *argc / *argv become the merged vector (owned by o).
 */
static int merge_config(struct xr_opts *o, int *argc, char ***argv)
{
	struct xr_config c;
	const char *path;
	char **v;
	bool by_default = false;
	int rc, nargc, total;

	find_config_arg(*argc, *argv, &path);
	if (path == NULL && o->cmd != XR_CMD_STATUS) {
		path = XR_CONFIG_DEFAULT;
		by_default = true;
	}
	if (path == NULL || path[0] == '\0')
		return 0;
	rc = xr_config_load(path, &c);
	if (rc == 1 && by_default)
		return 0;
	if (rc == 1) {
		fprintf(stderr, "xroad-replicate: --config=%s: no such file\n", path);
		return XR_ESYNTAX;
	}
	if (rc < 0)
		return rc;
	rc = xr_config_merge_argv(&c, *argc, *argv, &nargc, &v, &total);
	xr_config_free(&c);
	if (rc < 0)
		return rc;
	o->config = strdup(path);
	if (o->config == NULL) {
		xr_config_free_argv(v, total);
		return XR_ENOMEM;
	}
	o->argv_owned = v;
	o->nargv_owned = total;
	*argc = nargc;
	*argv = v;
	return 0;
}

/* Replaces *slot with a copy of arg. */
static int set_str(char **slot, const char *arg)
{
	free(*slot);
	*slot = strdup(arg);
	return *slot ? 0 : XR_ENOMEM;
}

int xr_opts_parse(struct xr_opts *o, int argc, char **argv)
{
	const char *cmd;
	bool have_timeout = false, have_contimeout = false;
	int c, rc = 0;

	memset(o, 0, sizeof(*o));
	o->argc0 = argc;
	o->argv0 = argv;
	o->max_age = -1;
	o->hook_timeout = 60;
	o->reconcile = 300;
	o->watch_quiet_ms = 5;
	o->whole_file = -1;
	o->filters = xr_filters_new();
	if (o->filters == NULL)
		return XR_ENOMEM;
	if (argc < 2) {
		fputs(usage_text, stderr);
		return XR_ESYNTAX;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage_text, stdout);
		return 1;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("xroad-replicate version %s  protocol version 1\n"
		       "rsync-compatible options; librsync deltas, XXH3-128, libssh2\n", XR_VERSION);
		return 1;
	}
	if (!strcmp(cmd, "pull"))
		o->cmd = XR_CMD_PULL;
	else if (!strcmp(cmd, "push"))
		o->cmd = XR_CMD_PUSH;
	else if (!strcmp(cmd, "serve"))
		o->cmd = XR_CMD_SERVE;
	else if (!strcmp(cmd, "status"))
		o->cmd = XR_CMD_STATUS;
	else {
		fprintf(stderr, "xroad-replicate: unknown command \"%s\" (pull, push, serve, "
				"status)\nTry \"xroad-replicate --help\".\n", cmd);
		return XR_ESYNTAX;
	}
	if (o->cmd != XR_CMD_SERVE) {
		rc = merge_config(o, &argc, &argv);
		if (rc < 0)
			return rc;
	}
	optind = 2;
	opterr = 0;
	while (rc == 0 &&
	       (c = getopt_long(argc, argv, ":arlptgoDzqvincWf:e:", long_opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			o->recursive = o->links = o->perms = o->times = true;
			o->group = o->owner = o->devices = o->specials = true;
			break;
		case 'r': o->recursive = true; break;
		case 'l': o->links = true; break;
		case 'p': o->perms = true; break;
		case 't': o->times = true; break;
		case 'g': o->group = true; break;
		case 'o': o->owner = true; break;
		case 'D': o->devices = o->specials = true; break;
		case OPT_DEVICES: o->devices = true; break;
		case OPT_SPECIALS: o->specials = true; break;
		case OPT_NO_PERMS: o->perms = false; break;
		case OPT_NO_TIMES: o->times = false; break;
		case OPT_NO_OWNER: o->owner = false; break;
		case OPT_NO_GROUP: o->group = false; break;
		case OPT_NO_LINKS: o->links = false; break;
		case OPT_NO_DEVICES: o->devices = false; break;
		case OPT_NO_SPECIALS: o->specials = false; break;
		case OPT_NO_D: o->devices = o->specials = false; break;
		case OPT_NO_RECURSIVE: o->recursive = false; break;
		case 'z': o->compress = true; break;
		case 'q': o->quiet = true; break;
		case 'v': o->verbose++; break;
		case 'i': o->itemize = true; break;
		case 'n': o->dry_run = true; break;
		case 'c': o->checksum = true; break;
		case 'W': o->whole_file = 1; break;
		case OPT_NO_WHOLE_FILE: o->whole_file = 0; break;
		case OPT_DELETE: o->del = true; break;
		case OPT_DELETE_DELAY: o->del = o->delete_delay = true; break;
		case OPT_DELETE_EXCLUDED: o->del = o->delete_excluded = true; break;
		case OPT_DELAY_UPDATES: o->delay_updates = true; break;
		case OPT_EXCLUDE: rc = xr_filters_add(o->filters, '-', optarg, "--exclude"); break;
		case OPT_INCLUDE: rc = xr_filters_add(o->filters, '+', optarg, "--include"); break;
		case OPT_EXCLUDE_FROM: rc = xr_filters_add_file(o->filters, '-', optarg); break;
		case OPT_INCLUDE_FROM: rc = xr_filters_add_file(o->filters, '+', optarg); break;
		case 'f': rc = xr_filters_add(o->filters, 0, optarg, "--filter"); break;
		case OPT_TIMEOUT:
			rc = parse_seconds("timeout", optarg, &o->timeout);
			have_timeout = true;
			break;
		case OPT_CONTIMEOUT:
			rc = parse_seconds("contimeout", optarg, &o->contimeout);
			have_contimeout = true;
			break;
		case OPT_LOG_FILE: rc = set_str(&o->log_file, optarg); break;
		case OPT_LOG_FILE_FORMAT: rc = set_str(&o->log_file_format, optarg); break;
		case OPT_OUT_FORMAT: rc = set_str(&o->out_format, optarg); break;
		case OPT_NUMERIC_IDS: o->numeric_ids = true; break;
		case OPT_STATS: o->stats = true; break;
		case OPT_PROGRESS: o->progress = true; break;
		case 'e': rc = set_str(&o->rsh, optarg); break;
		case OPT_RSYNC_PATH: rc = set_str(&o->rsync_path, optarg); break;
		case OPT_VERSION:
			printf("xroad-replicate version %s  protocol version 1\n", XR_VERSION);
			return 1;
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 1;
		case OPT_PROFILE: rc = set_str(&o->profile, optarg); break;
		case OPT_COMMIT_LAST: rc = add_commit_last(o, optarg); break;
		case OPT_PAUSE_FILE: rc = set_str(&o->pause_file, optarg); break;
		case OPT_WATCH: o->watch = true; break;
		case OPT_RECONCILE: rc = parse_seconds("reconcile", optarg, &o->reconcile); break;
		case OPT_WATCH_QUIET:
			rc = parse_seconds("watch-quiet", optarg, &o->watch_quiet_ms);
			break;
		case OPT_ROOT: rc = set_str(&o->root, optarg); break;
		case OPT_READ_ONLY: o->read_only = true; break;
		case OPT_WRITE_ONLY: o->write_only = true; break;
		case OPT_JSON: o->json = true; break;
		case OPT_MAX_AGE: {
			int v = 0;

			rc = parse_seconds("max-age", optarg, &v);
			if (rc == 0)
				o->max_age = v;
			break;
		}
		case OPT_STATE_DIR: rc = set_str(&o->state_dir, optarg); break;
		case OPT_HEALTH_PORT:
			rc = parse_seconds("health-port", optarg, &o->health_port);
			if (rc == 0 && (o->health_port < 1 || o->health_port > 65535)) {
				fprintf(stderr, "xroad-replicate: --health-port=%s: not a port number\n",
					optarg);
				rc = XR_ESYNTAX;
			}
			break;
		case OPT_HEALTH_BIND: rc = set_str(&o->health_bind, optarg); break;
		case OPT_ON_CHANGE: rc = add_on_change(o, optarg); break;
		case OPT_HOOK_TIMEOUT:
			rc = parse_seconds("hook-timeout", optarg, &o->hook_timeout);
			if (rc == 0 && o->hook_timeout == 0)
				o->hook_timeout = 60;
			break;
		case OPT_CONFIG:
		case OPT_NO_CONFIG:
			break;	/* read before the other options (merge_config) */
		case ':':
			fprintf(stderr, "xroad-replicate: option %s requires an argument\n",
				argv[optind - 1]);
			rc = XR_ESYNTAX;
			break;
		default:
			if (optopt)
				fprintf(stderr, "xroad-replicate: -%c: unknown option "
						"(not supported by xroad-replicate)\n", optopt);
			else
				fprintf(stderr, "xroad-replicate: %s: unknown option "
						"(not supported by xroad-replicate)\n",
					argv[optind - 1]);
			rc = XR_ESYNTAX;
			break;
		}
	}
	if (rc < 0)
		return rc;
	if (o->profile) {
		rc = apply_profile(o, have_timeout, have_contimeout);
		if (rc < 0)
			return rc;
	}
	xr_filters_set_delete_excluded(o->filters, o->delete_excluded);
	if (o->read_only && o->write_only) {
		fprintf(stderr, "xroad-replicate: --read-only and --write-only exclude each other\n");
		return XR_ESYNTAX;
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
	if (o->nargs == 0 && o->argv_owned && o->cmd != XR_CMD_STATUS &&
	    o->argv_owned[argc + 1] != NULL) {
		/* SRC and DEST from the configuration file (after the NULL, see config.h) */
		o->args = o->argv_owned + argc + 1;
		while (o->args[o->nargs])
			o->nargs++;
	}
	return 0;
}

void xr_opts_free(struct xr_opts *o)
{
	size_t i;

	if (o->filters)
		xr_filters_free(o->filters);
	for (i = 0; i < o->ncommit_last; i++)
		free(o->commit_last[i]);
	free(o->commit_last);
	free(o->log_file);
	free(o->log_file_format);
	free(o->out_format);
	free(o->rsh);
	free(o->rsync_path);
	free(o->profile);
	free(o->pause_file);
	free(o->root);
	free(o->state_dir);
	free(o->health_bind);
	for (i = 0; i < o->non_change; i++)
		free(o->on_change[i]);
	free(o->on_change);
	free(o->config);
	xr_config_free_argv(o->argv_owned, o->nargv_owned);
	memset(o, 0, sizeof(*o));
}

/* status.h - per-destination state file, the status command, the health responder. */
#ifndef XR_STATUS_H
#define XR_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xr/opts.h"

/*
 * Where: --state-dir DIR, else /var/lib/xroad-replicate when it is (or can
 * be created as) a writable directory, else $XDG_STATE_HOME/xroad-replicate,
 * else ~/.local/state/xroad-replicate.  The status command reads
 * /var/lib/xroad-replicate when it exists and is writable, or when it exists
 * and the per-user directory does not (a monitoring user reading root's).
 *
 * One file per destination, DIR/NAME.state, NAME the sanitised DEST
 * (xr_status_name: "/etc/xroad/" -> "etc-xroad", "host:/etc/xroad" ->
 * "host_etc-xroad", "/" -> "root"); a local DEST is made absolute first.
 * Written atomically after every change set and every failed run (a
 * ".NAME.state.PID.tmp" file, fsync, rename, fsync of DIR), never by a dry
 * run or a paused one-shot run.  Text, one "key=value" per line (values
 * have no newlines; readers ignore unknown keys):
 *
 *   version=1
 *   dest=/etc/xroad/            the destination (pull: absolute local path)
 *   peer=primary:/etc/xroad/    the other side (SRC for pull; local ones absolute)
 *   mode=pull                   pull, push, pull-watch or push-watch
 *   pid=1234                    the process that wrote the file
 *   session=up                  --watch: connected (down after a session ended)
 *   last_attempt=1714557600     epoch seconds of the last change set or failed run
 *   last_attempt_iso=2024-05-01T10:00:00Z
 *   last_success=1714557600     0 / "" before the first success
 *   last_success_iso=2024-05-01T10:00:00Z
 *   last_exit=0                 rsync exit code of the last attempt (24, vanished
 *                               source files, counts as a success: exit 0 here)
 *   last_error=                 its message; cleared by a success
 *   lag_ms=35                   one-shot: the run's duration (start to commit);
 *                               --watch: the change set's duration when the
 *                               transport reports it, else -1 (unknown)
 *   files=3                     entries created, updated or deleted by the last change set
 *   bytes=8192                  file data moved by the last change set
 *   wire_bytes=900              bytes on the wire for it (both directions)
 *   total_files=... total_bytes=... changesets=... failures=...   cumulative
 *   hook_time=1714557600        when the last hook failure happened (0 = none)
 *   hook_error=                 the last hook failure; cleared when all hooks succeed
 */

#define XR_STATUS_STR 512

struct xr_status {
	char dest[XR_STATUS_STR];
	char peer[XR_STATUS_STR];
	char mode[16];
	long pid;
	bool session_up;
	int64_t last_attempt, last_success;
	int last_exit;
	char last_error[XR_STATUS_STR];
	int64_t lag_ms;
	uint64_t files, bytes, wire_bytes;
	uint64_t total_files, total_bytes, changesets, failures;
	int64_t hook_time;
	char hook_error[XR_STATUS_STR];
};

/* Empties st (lag unknown). */
void xr_status_init(struct xr_status *st);

/* The file name stem for dest (see above); returns 0 or XR_ELIMIT when cap is too small. */
int xr_status_name(const char *dest, char *buf, size_t cap);

/*
 * The state directory: opt when given, else the default above; for_write
 * creates it (mode 0755, parents too).  Returns 0, XR_ELIMIT or XR_EFILEIO
 * (message printed).
 */
int xr_status_dir(const char *opt, bool for_write, char *buf, size_t cap);

/* The key=value text of st into buf; returns its length, or XR_ELIMIT. */
int xr_status_format(const struct xr_status *st, char *buf, size_t cap);
/* Fills st from key=value text; returns 0, or XR_EPROTO when it is not a state file. */
int xr_status_parse(const char *text, struct xr_status *st);

/* Writes DIR/NAME.state atomically; returns 0 or XR_EFILEIO (message printed). */
int xr_status_save(const char *dir, const char *name, const struct xr_status *st);
/* Reads DIR/NAME.state; returns 0, 1 when there is none, XR_EFILEIO or XR_EPROTO. */
int xr_status_load(const char *dir, const char *name, struct xr_status *st);

/*
 * The health decision, shared by status and the HTTP responder: healthy
 * when a run was recorded, the last attempt succeeded, and (max_age < 0, or
 * the last success is at most max_age seconds before now, or a --watch
 * session is up and its writer process alive).  Otherwise why gets the
 * reason ("no run recorded", "last run failed: ...", "last success 300 s
 * ago (max 180 s)").  st NULL means no state file.
 */
bool xr_status_healthy(const struct xr_status *st, int64_t now, long max_age, char *why,
		       size_t cap);

/* "2024-05-01T10:00:00Z" (UTC) for epoch t, "" for 0. */
void xr_status_iso(int64_t t, char buf[32]);

/*
 * The status command: a table (or --json) of every state file in the state
 * directory, or of DEST.  Returns the exit status: 0 when every one shown is
 * healthy (with --max-age: not older), 1 otherwise (no run recorded, last
 * run failed, too old, unreadable).
 */
int xr_status_main(const struct xr_opts *o);

/* ---- recording, on the side that runs the change sets (the client) ---- */

struct xr_session;

struct xr_status_rec {
	bool enabled;			/* false: dry run or no usable state dir */
	char dir[4096];
	char name[256];
	struct xr_status st;		/* as last written (keeps the totals) */
	double t0;			/* session start, monotonic seconds */
	double wall0;			/* session start, epoch seconds */
	uint64_t wire_prev;		/* connection bytes at the previous change set */
	bool recorded;			/* a change set was recorded in this session */
	int recorded_rc;
};

/*
 * Prepares recording for one destination: resolves the directory and
 * name, loads the previous state (totals carry on).  A state directory
 * that cannot be created is a warning and recording is off.  Returns 0.
 */
int xr_status_rec_begin(struct xr_status_rec *r, const struct xr_opts *o, const char *dest,
			const char *peer);
/* A session starts (the clock for lag and the wire-byte counter restart). */
void xr_status_rec_session(struct xr_status_rec *r);
/* Records one change set of s with its status rc (the session's on_cset). */
void xr_status_rec_cset(struct xr_status_rec *r, struct xr_session *s, int rc);
/*
 * Records the end of a run or --watch session with status rc: a failure
 * that no change set recorded is written, and a --watch session goes down.
 */
void xr_status_rec_end(struct xr_status_rec *r, int rc);
/* Records the hooks' outcome after a change set: err NULL = all succeeded. */
void xr_status_rec_hook(struct xr_status_rec *r, const char *err);

/* ---- the health responder (--health-port, --watch only) ---- */

/*
 * Binds bind_addr:port (NULL = 127.0.0.1) and forks a child that answers
 * every HTTP request (any method and path, at most 4 KiB read, 1 s read
 * timeout, "Connection: close") with "200 OK" and the body "OK <last
 * success>" when the state files dir/names[i].state are all healthy with
 * max_age, else "503 Service Unavailable" and the reason.  The child reads
 * the files on each request and dies with its parent (PR_SET_PDEATHSIG).
 * Returns 0 with *pid, XR_ESYNTAX (bad address) or XR_ESTART (bind/fork
 * failed; message printed).
 */
int xr_health_start(const char *bind_addr, int port, const char *dir, char *const names[],
		    size_t n, long max_age, pid_t *pid);

#endif

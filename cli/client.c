/* client.c - pull and push: reach the peer, run our role, report. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xr/client.h"
#include "xr/conn.h"
#include "xr/err.h"
#include "xr/log.h"
#include "xr/report.h"
#include "xr/session.h"
#include "xr/transport.h"

/* Seconds since an arbitrary start, for rates. */
static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Whether a path names "the contents of" (rsync's trailing slash). */
static bool has_trailing_slash(const char *p)
{
	size_t n = strlen(p);

	return n > 0 && p[n - 1] == '/';
}

/* Connects to the peer that serves loc (remote: ssh or -e; local: a forked serve). */
static int connect_peer(const struct xr_opts *o, const struct xr_location *loc,
			struct xr_conn **c)
{
	char *serve_local[] = {(char *)"xroad-replicate", (char *)"serve", NULL};
	char *remote_cmd[] = {o->rsync_path ? o->rsync_path : (char *)"xroad-replicate",
			      (char *)"serve", NULL};
	struct xr_rsh rsh;
	int rc;

	if (!loc->remote)
		return xr_transport_local(serve_local, o->timeout, c);
	rc = xr_rsh_parse(o->rsh, &rsh);
	if (rc < 0)
		return rc;
	rc = xr_transport_remote(&rsh, loc, remote_cmd, o->contimeout, o->timeout, c);
	xr_rsh_free(&rsh);
	return rc;
}

/* Runs one session against one peer; role says what this process does. */
static int run_session(const struct xr_opts *o, const struct xr_location *peer,
		       const char *local_path, enum xr_role server_role, bool trailing_slash)
{
	struct xr_wire_options wo;
	struct xr_session s;
	double t0 = now_sec();
	int rc, rc2;

	memset(&s, 0, sizeof(s));
	s.opts = o;
	rc = connect_peer(o, peer, &s.conn);
	if (rc < 0)
		return rc;
	rc = xr_wire_from_opts(o, server_role, peer->path, trailing_slash, &wo);
	if (rc == 0)
		rc = xr_client_handshake(&s, &wo);
	free(wo.rules);
	if (rc < 0)
		goto out;
	if (server_role == XR_ROLE_SENDER) {
		/* as rsync: a local copy's client is the one that builds the list */
		xr_logfile(peer->remote ? "receiving file list" : "building file list");
		rc = xr_receiver_run(&s, local_path, -1);
	} else {
		xr_logfile("building file list");
		rc = xr_sender_run(&s, local_path, has_trailing_slash(local_path), -1);
	}
	if (rc != XR_ESOCKET && rc != XR_ETIMEOUT) {
		xr_conn_send(s.conn, XR_MSG_BYE, NULL, 0);
		xr_conn_flush(s.conn);
	}
	if (rc == 0 || rc == XR_EPARTIAL || rc == XR_EVANISHED) {
		const struct xr_conn_stats *cs = xr_conn_stats(s.conn);

		xr_report_totals(o, &s.st, cs->bytes_out, cs->bytes_in, now_sec() - t0);
	}
out:
	rc2 = xr_conn_close(s.conn);
	if (rc == 0 && rc2 != 0 && peer->remote) {
		xr_error("the remote side exited with status %d", rc2);
		rc = XR_EPARTIAL;
	}
	return rc;
}

/* Sleeps ms milliseconds unless a stop signal arrives. */
static void sleep_unless_stopped(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	if (!xr_watch_stopping())
		nanosleep(&ts, NULL);
}

/*
 * --watch: keeps one session to the peer; when it breaks, reconnects with
 * exponential backoff (1 s doubling to 60 s, reset after a session that
 * lived a minute) and every new session starts with a full change set, so a
 * peer that was away converges.  Ends on SIGTERM/SIGINT.
 */
static int run_session_watch(const struct xr_opts *o, const struct xr_location *peer,
			     const char *local_path, enum xr_role server_role, bool trailing_slash)
{
	unsigned backoff = 1000;
	double started;
	int rc;

	xr_watch_signals();
	for (;;) {
		started = now_sec();
		rc = run_session(o, peer, local_path, server_role, trailing_slash);
		if (xr_watch_stopping())
			return 0;
		if (rc == XR_ESYNTAX || rc == XR_EUNSUPPORTED || rc == XR_EDENIED)
			return rc;
		if (now_sec() - started > 60)
			backoff = 1000;
		xr_warn("%s%s%s: session ended (%s); reconnecting in %u s",
			peer->host ? peer->host : "local", peer->host ? ":" : "", peer->path,
			xr_strerror(rc), backoff / 1000);
		xr_logfile("session ended: %s (code %d); reconnecting in %u s", xr_strerror(rc),
			   xr_exit_code(rc), backoff / 1000);
		sleep_unless_stopped(backoff);
		if (xr_watch_stopping())
			return 0;
		backoff = backoff * 2 > 60000 ? 60000 : backoff * 2;
	}
}

/* One session, or the reconnecting --watch loop. */
static int run_peer(const struct xr_opts *o, const struct xr_location *peer,
		    const char *local_path, enum xr_role server_role, bool trailing_slash)
{
	if (o->watch)
		return run_session_watch(o, peer, local_path, server_role, trailing_slash);
	return run_session(o, peer, local_path, server_role, trailing_slash);
}

/* True (and logged) when the pause flag exists: the run does nothing. */
static bool paused(const struct xr_opts *o)
{
	struct stat st;

	if (o->pause_file == NULL || lstat(o->pause_file, &st) != 0)
		return false;
	xr_logfile("paused: %s exists, nothing done", o->pause_file);
	xr_info(1, "paused: %s exists, nothing done", o->pause_file);
	return true;
}

/* pull SRC DEST: this process receives. */
static int client_pull(const struct xr_opts *o)
{
	struct xr_location src = {0}, dst = {0};
	int rc;

	if (o->nargs != 2) {
		xr_error("pull takes one SRC and one DEST (got %d arguments)", o->nargs);
		return XR_ESYNTAX;
	}
	rc = xr_location_parse(o->args[0], &src);
	if (rc == 0)
		rc = xr_location_parse(o->args[1], &dst);
	if (rc == 0 && dst.remote) {
		xr_error("pull: DEST must be a local path (use push to write to %s)", dst.host);
		rc = XR_ESYNTAX;
	}
	if (rc == 0)
		rc = run_peer(o, &src, dst.path, XR_ROLE_SENDER, has_trailing_slash(o->args[0]));
	xr_location_free(&src);
	xr_location_free(&dst);
	return rc;
}

/* push SRC DEST...: this process sends, to every DEST in parallel. */
static int client_push(const struct xr_opts *o)
{
	struct xr_location src = {0};
	struct xr_location *dst;
	pid_t *pids;
	int i, rc = 0, status, first = 0;

	if (o->nargs < 2) {
		xr_error("push takes a SRC and at least one DEST");
		return XR_ESYNTAX;
	}
	rc = xr_location_parse(o->args[0], &src);
	if (rc == 0 && src.remote) {
		xr_error("push: SRC must be a local path (use pull to read from %s)", src.host);
		rc = XR_ESYNTAX;
	}
	dst = calloc((size_t)o->nargs, sizeof(*dst));
	pids = calloc((size_t)o->nargs, sizeof(*pids));
	if (dst == NULL || pids == NULL)
		rc = XR_ENOMEM;
	for (i = 1; rc == 0 && i < o->nargs; i++)
		rc = xr_location_parse(o->args[i], &dst[i]);
	if (rc < 0)
		goto out;
	if (o->nargs == 2) {
		rc = run_peer(o, &dst[1], o->args[0], XR_ROLE_RECEIVER, false);
		goto out;
	}
	fflush(NULL);
	for (i = 1; i < o->nargs; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			rc = run_peer(o, &dst[i], o->args[0], XR_ROLE_RECEIVER, false);
			fflush(NULL);
			_exit(xr_exit_code(rc));
		}
		if (pids[i] < 0) {
			xr_error("fork failed: %s", strerror(errno));
			rc = XR_ESTART;
			break;
		}
	}
	for (i = 1; i < o->nargs; i++) {
		if (pids[i] <= 0)
			continue;
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
			xr_error("push to %s failed with exit code %d", o->args[i],
				 WEXITSTATUS(status));
			if (first == 0)
				first = WEXITSTATUS(status);
		} else if (WIFSIGNALED(status) && first == 0) {
			first = 20;
		}
	}
	if (rc == 0 && first)
		rc = -first;
out:
	for (i = 1; dst && i < o->nargs; i++)
		xr_location_free(&dst[i]);
	free(dst);
	free(pids);
	xr_location_free(&src);
	return rc;
}

int xr_client_main(const struct xr_opts *o)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	xr_log_init(o->quiet ? -1 : o->verbose, "");
	if (o->log_file && !o->dry_run) {
		rc = xr_log_open_file(o->log_file);
		if (rc < 0)
			return rc;
	}
	/* a one-shot run does nothing while paused; --watch holds and catches up */
	if (!o->watch && paused(o))
		return 0;
	if (o->cmd == XR_CMD_PULL)
		rc = client_pull(o);
	else
		rc = client_push(o);
	if (rc < 0 && rc != XR_ESYNTAX)
		xr_logfile("rsync error: %s (code %d)", xr_strerror(rc), xr_exit_code(rc));
	if (rc < 0 && rc != XR_ESYNTAX)
		fprintf(stderr, "xroad-replicate error: %s (code %d)\n", xr_strerror(rc),
			xr_exit_code(rc));
	xr_log_close_file();
	return rc;
}

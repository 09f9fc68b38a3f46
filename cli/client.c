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
#include "xr/hooks.h"
#include "xr/log.h"
#include "xr/report.h"
#include "xr/session.h"
#include "xr/status.h"
#include "xr/transport.h"

/* What the change sets of one destination report to: its status file and hooks. */
struct peer_ctx {
	const struct xr_opts *o;
	const char *dest;		/* DEST as given (XR_DEST for hooks) */
	struct xr_status_rec rec;
	struct xr_hooks hooks;
};

/*
 * Set by SIGHUP in --watch mode: re-read the configuration as soon as the
 * watcher is between change sets (at once when idle).
 */
static volatile sig_atomic_t reload_requested;

/* SIGHUP handler: asks for a re-read. */
static void on_sighup(int sig)
{
	(void)sig;
	reload_requested = 1;
}

/*
 * Installs on_sighup.  With restart, interrupted system calls resume (a
 * watcher's I/O); without, they fail with EINTR, which the waiting parent of
 * several push peers needs in order to forward the signal.  (poll() always
 * returns EINTR, so an idle watcher wakes either way.)
 */
static void install_sighup(bool restart)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sighup;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
}

/* SIGHUP: closes the log file and opens path (NULL: none) anew, after a rotation. */
static void reopen_log(const char *path)
{
	xr_log_close_file();
	if (path && xr_log_open_file(path) < 0)
		xr_warn("SIGHUP: %s: cannot reopen the log file", path);
}

/* Builds the hook list from o's --on-change specs; 0 or an xr_err. */
static int hooks_from_opts(const struct xr_opts *o, struct xr_hooks *h)
{
	int rc = 0;

	memset(h, 0, sizeof(*h));
	h->timeout = o->hook_timeout > 0 ? o->hook_timeout : 60;
	for (size_t i = 0; rc == 0 && i < o->non_change; i++)
		rc = xr_hooks_add(h, o->on_change[i], "--on-change");
	return rc;
}

/*
 * SIGHUP: parses the command line (and so the configuration file) again and
 * takes over what can change between change sets: hooks and their timeout,
 * the pause file, the log file (reopened: logrotate's postrotate sends the
 * SIGHUP).  Everything else needs a restart.  A bad configuration keeps the
 * old one (warning).
 */
static void reload_config(struct peer_ctx *p)
{
	/* the caller's options object (main's); only touched between change sets */
	struct xr_opts *live = (struct xr_opts *)p->o;
	struct xr_opts fresh;
	struct xr_hooks h;
	char **tmpv;
	char *tmp;
	size_t tmpn;
	int rc;

	reload_requested = 0;
	rc = xr_opts_parse(&fresh, live->argc0, live->argv0);
	if (rc == 0)
		rc = hooks_from_opts(&fresh, &h);
	else
		memset(&h, 0, sizeof(h));
	if (rc != 0) {
		xr_warn("SIGHUP: the configuration has errors; keeping the running one");
		xr_hooks_free(&h);
		xr_opts_free(&fresh);
		return;
	}
	tmp = live->pause_file, live->pause_file = fresh.pause_file, fresh.pause_file = tmp;
	tmp = live->log_file, live->log_file = fresh.log_file, fresh.log_file = tmp;
	tmpv = live->on_change, live->on_change = fresh.on_change, fresh.on_change = tmpv;
	tmpn = live->non_change, live->non_change = fresh.non_change, fresh.non_change = tmpn;
	live->hook_timeout = fresh.hook_timeout;
	xr_hooks_free(&p->hooks);
	p->hooks = h;
	reopen_log(live->log_file);
	xr_logfile("SIGHUP: configuration re-read (%zu hook(s), pause file %s)", p->hooks.n,
		   live->pause_file ? live->pause_file : "none");
	xr_opts_free(&fresh);
}

/* Frees the receiver's list of changed entries. */
static void free_changed(struct xr_session *s)
{
	for (size_t i = 0; i < s->nchanged; i++)
		free(s->changed[i]);
	free(s->changed);
	s->changed = NULL;
	s->nchanged = 0;
}

/* The session's on_cset: status file, then the hooks of a committed change set. */
static void on_cset(struct xr_session *s, int rc)
{
	struct peer_ctx *p = s->user;
	char err[XR_STATUS_STR];
	size_t ran = 0;
	int failed;

	if (reload_requested)
		reload_config(p);
	xr_status_rec_cset(&p->rec, s, rc);
	if ((rc == 0 || rc == XR_EVANISHED || rc == XR_EPARTIAL) && p->hooks.n > 0 &&
	    !p->o->dry_run && s->nchanged > 0) {
		failed = xr_hooks_run(&p->hooks, s->changed, s->nchanged, p->dest, &ran, err,
				      sizeof(err));
		if (ran > 0)
			xr_status_rec_hook(&p->rec, failed ? err : NULL);
	}
	free_changed(s);
}

/* The session's on_idle: a SIGHUP that came while waiting is acted on now. */
static void on_idle(struct xr_session *s)
{
	if (reload_requested)
		reload_config(s->user);
}

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
		       const char *local_path, enum xr_role server_role, bool trailing_slash,
		       struct peer_ctx *p)
{
	struct xr_wire_options wo;
	struct xr_session s;
	double t0 = now_sec();
	int rc, rc2;

	memset(&s, 0, sizeof(s));
	s.opts = o;
	s.on_cset = on_cset;
	s.on_idle = on_idle;
	s.user = p;
	rc = connect_peer(o, peer, &s.conn);
	if (rc < 0)
		return rc;
	rc = xr_wire_from_opts(o, server_role, peer->path, trailing_slash, &wo);
	if (o->whole_file < 0 && !peer->remote)
		wo.flags |= XR_OPT_WHOLE_FILE;	/* a local copy, as rsync */
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
	free_changed(&s);
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
			     const char *local_path, enum xr_role server_role, bool trailing_slash,
			     struct peer_ctx *p)
{
	unsigned backoff = 1000;
	double started;
	int rc;

	xr_watch_signals();
	for (;;) {
		if (reload_requested)
			reload_config(p);
		started = now_sec();
		xr_status_rec_session(&p->rec);
		rc = run_session(o, peer, local_path, server_role, trailing_slash, p);
		if (xr_watch_stopping()) {
			if (p->rec.recorded)
				xr_status_rec_end(&p->rec, 0);	/* the session goes down */
			return 0;
		}
		xr_status_rec_end(&p->rec, rc);
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

/*
 * One session, or the reconnecting --watch loop, for the destination
 * dest_arg (status file, hooks) with the other side peer_arg.
 */
static int run_peer(const struct xr_opts *o, const struct xr_location *peer,
		    const char *local_path, enum xr_role server_role, bool trailing_slash,
		    const char *dest_arg, const char *peer_arg)
{
	struct peer_ctx p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.o = o;
	p.dest = dest_arg;
	rc = hooks_from_opts(o, &p.hooks);
	if (rc == 0)
		rc = xr_status_rec_begin(&p.rec, o, dest_arg, peer_arg);
	if (rc < 0)
		goto out;
	if (o->watch) {
		rc = run_session_watch(o, peer, local_path, server_role, trailing_slash, &p);
	} else {
		xr_status_rec_session(&p.rec);
		rc = run_session(o, peer, local_path, server_role, trailing_slash, &p);
		xr_status_rec_end(&p.rec, rc);
	}
out:
	xr_hooks_free(&p.hooks);
	return rc;
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
	if (rc == 0) {
		struct xr_opts lo = *o;

		/* as rsync: a local copy sends whole files unless --no-whole-file */
		if (lo.whole_file < 0)
			lo.whole_file = !src.remote;
		rc = run_peer(&lo, &src, dst.path, XR_ROLE_SENDER, has_trailing_slash(o->args[0]),
			      o->args[1], o->args[0]);
	}
	xr_location_free(&src);
	xr_location_free(&dst);
	return rc;
}

/* push SRC DEST...: this process sends, to every DEST in parallel. */
static int client_push(const struct xr_opts *o)
{
	bool forwarded = false;
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
		rc = run_peer(o, &dst[1], o->args[0], XR_ROLE_RECEIVER, false, o->args[1],
			      o->args[0]);
		goto out;
	}
	fflush(NULL);
	if (o->watch) {
		xr_watch_signals();	/* the parent forwards SIGTERM/SIGINT to every peer */
		install_sighup(false);	/* and SIGHUP: its waitpid() must see them */
	}
	for (i = 1; i < o->nargs; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			if (o->watch)
				install_sighup(true);
			rc = run_peer(o, &dst[i], o->args[0], XR_ROLE_RECEIVER, false, o->args[i],
				      o->args[0]);
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
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR) {
			if (xr_watch_stopping() && !forwarded) {
				for (int k = 1; k < o->nargs; k++)
					if (pids[k] > 0)
						kill(pids[k], SIGTERM);
				forwarded = true;
			}
			if (reload_requested) {
				/* every peer re-reads; this process only reopens its log */
				reload_requested = 0;
				for (int k = 1; k < o->nargs; k++)
					if (pids[k] > 0)
						kill(pids[k], SIGHUP);
				reopen_log(o->log_file);
			}
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
			xr_error("push to %s failed with exit code %d", o->args[i],
				 WEXITSTATUS(status));
			if (first == 0)
				first = WEXITSTATUS(status);
		} else if (WIFSIGNALED(status) && first == 0) {
			first = 20;
		}
	}
	if (rc == 0 && first && !forwarded)
		rc = -first;
out:
	for (i = 1; dst && i < o->nargs; i++)
		xr_location_free(&dst[i]);
	free(dst);
	free(pids);
	xr_location_free(&src);
	return rc;
}

/* Refuses operations options that do not fit the command; 0 or XR_ESYNTAX. */
static int check_ops_options(const struct xr_opts *o)
{
	if (o->non_change > 0 && o->cmd == XR_CMD_PUSH) {
		xr_error("--on-change runs where files are received: use it with pull "
			 "(a push is received by \"serve\" on the other side)");
		return XR_ESYNTAX;
	}
	if (o->health_port > 0 && !o->watch) {
		xr_error("--health-port needs --watch (one-shot runs: use \"xroad-replicate "
			 "status --max-age SEC\")");
		return XR_ESYNTAX;
	}
	return 0;
}

/*
 * --health-port: starts the responder over the state files of every DEST
 * (pull: the one; push: all).  Returns 0 (*pid 0 when not asked for) or an
 * xr_err.
 */
static int start_health(const struct xr_opts *o, pid_t *pid)
{
	char dir[4096], **names;
	size_t n = 0;
	int rc = 0;

	*pid = 0;
	if (o->health_port <= 0 || o->dry_run)
		return 0;
	if (o->nargs < 2)
		return 0;	/* the command reports the missing arguments */
	names = calloc((size_t)o->nargs, sizeof(char *));
	if (names == NULL)
		return XR_ENOMEM;
	for (int i = 1; rc == 0 && i < o->nargs; i++) {
		names[n] = malloc(256);
		if (names[n] == NULL)
			rc = XR_ENOMEM;
		else if (xr_status_name(o->args[i], names[n++], 256) < 0)
			rc = XR_ESYNTAX;
	}
	if (rc == 0)
		rc = xr_status_dir(o->state_dir, true, dir, sizeof(dir));
	if (rc == 0)
		rc = xr_health_start(o->health_bind, o->health_port, dir, names, n, o->max_age,
				     pid);
	if (rc == 0)
		xr_logfile("health: answering on %s port %d", o->health_bind ? o->health_bind
									  : "127.0.0.1",
			   o->health_port);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int xr_client_main(const struct xr_opts *o)
{
	pid_t health = 0;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	xr_log_init(o->quiet ? -1 : o->verbose, "");
	rc = check_ops_options(o);
	if (rc < 0)
		return rc;
	if (o->log_file) {
		rc = xr_log_open_file(o->log_file);
		if (rc < 0)
			return rc;
	}
	/* a one-shot run does nothing while paused; --watch holds and catches up */
	if (!o->watch && paused(o))
		return 0;
	if (o->watch)
		install_sighup(true);
	rc = start_health(o, &health);
	if (rc < 0) {
		xr_log_close_file();
		return rc;
	}
	if (o->cmd == XR_CMD_PULL)
		rc = client_pull(o);
	else
		rc = client_push(o);
	if (health > 0) {
		kill(health, SIGTERM);
		while (waitpid(health, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (rc < 0 && rc != XR_ESYNTAX)
		xr_logfile("rsync error: %s (code %d)", xr_strerror(rc), xr_exit_code(rc));
	if (rc < 0 && rc != XR_ESYNTAX)
		fprintf(stderr, "xroad-replicate error: %s (code %d)\n", xr_strerror(rc),
			xr_exit_code(rc));
	xr_log_close_file();
	return rc;
}

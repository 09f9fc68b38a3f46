/* session.h - one connection's protocol roles: sender, receiver, serve. */
#ifndef XR_SESSION_H
#define XR_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "xr/conn.h"
#include "xr/opts.h"
#include "xr/wire.h"

/* Counters for --stats, the log file's closing line and the status file. */
struct xr_stats {
	uint64_t files_total;		/* entries in the sender's list */
	uint64_t files_reg, files_other;	/* regular files; links, devices... */
	uint64_t files_created, files_deleted, files_transferred;
	uint64_t total_size;		/* sum of regular file sizes */
	uint64_t transferred_size;	/* sizes of files whose data travelled */
	uint64_t literal, matched;	/* delta literal / matched bytes */
	uint64_t flist_size;
	double flist_time, xfer_time;
};

struct xr_session {
	const struct xr_opts *opts;	/* options in force (the server builds its own) */
	struct xr_conn *conn;
	bool is_server;
	uint64_t peer_caps;		/* capabilities both sides have (HELLO) */
	bool peer_itemize;		/* receiver sends ITEM lines to the peer */
	bool vanished, partial;		/* for exit codes 24 / 23 */
	uint64_t cset;			/* change set counter */
	struct xr_stats st;
	int status;			/* receiver's final status (RESULT) */
	bool paused_pending;		/* a change set was held by the pause flag */
	bool resync;			/* the peer asked for a full change set */
	uint64_t csets_applied;		/* change sets committed in this session */
	int64_t next_reconcile_ms;	/* --watch client: when to ask for a full change set */
	const char *watch_path;		/* what --watch watches (serve --root: the real path) */
	/*
	 * The receiver on the client side: one entry per change it reported in
	 * the current change set, "%-11.11s%s" (itemize string, then the name as
	 * %n; the ITEM frame text without its link part).  Emptied when a change
	 * set starts; the session's owner frees what is left (hooks.h).
	 */
	char **changed;
	size_t nchanged;
	/* called after every change set with its status (status file, hooks) */
	void (*on_cset)(struct xr_session *s, int status);
	/*
	 * --watch: called whenever a watch loop wakes between change sets (a
	 * signal, a timer, an event), so the owner can act on its signal flags
	 * (SIGHUP) at once rather than at the next change set
	 */
	void (*on_idle)(struct xr_session *s);
	void *user;
};

/*
 * Sends one change set of the tree at src (rsync trailing-slash meaning
 * given by trailing_slash) and answers the receiver's requests; returns the
 * receiver's RESULT status, or a local error.  root_fd >= 0 confines src
 * beneath it (serve --root).
 */
int xr_sender_run(struct xr_session *s, const char *src, bool trailing_slash, int root_fd);

/*
 * Receives one change set into dest: plan, requests, staging, verify,
 * journaled commit; itemized lines and the log as configured.  Returns 0,
 * or the xr_err that decides the exit code.
 */
int xr_receiver_run(struct xr_session *s, const char *dest, int root_fd);

/* Prints an ERROR frame's message; returns its xr_err code (XR_EPROTO if malformed). */
int xr_session_peer_error(struct xr_session *s, const uint8_t *p, size_t n);

/* Reports an ITEM frame (an itemized change made by the receiving peer). */
int xr_session_item_from_peer(struct xr_session *s, const uint8_t *p, size_t n);

/* The OPTIONS the client sends for o (server role, path, flags, rules). */
int xr_wire_from_opts(const struct xr_opts *o, enum xr_role server_role, const char *path,
		      bool trailing_slash, struct xr_wire_options *wo);

/* --watch: SIGTERM/SIGINT end the watch after the current change set. */
void xr_watch_signals(void);
bool xr_watch_stopping(void);

/* Client side of the handshake: HELLO, OPTIONS, HELLO back. */
int xr_client_handshake(struct xr_session *s, const struct xr_wire_options *wo);

/*
 * The serve command: speaks the protocol on stdin/stdout under the policy
 * of --root / --read-only / --write-only.  Returns the exit status.
 */
int xr_serve_main(const struct xr_opts *o);

#endif

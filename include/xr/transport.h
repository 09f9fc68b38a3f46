/* transport.h - reaching the peer: local pipe, remote shell program, libssh2. */
#ifndef XR_TRANSPORT_H
#define XR_TRANSPORT_H

#include <stdbool.h>
#include <sys/types.h>

#include "xr/conn.h"

/* "[USER@]HOST:PATH" split; local paths (no ':' before the first '/') are not remote. */
struct xr_location {
	bool remote;
	char *user;		/* NULL if not given */
	char *host;		/* NULL for local; "[::1]" brackets removed */
	char *path;		/* "" becomes "." (the login directory, as rsync) */
};
/* Parses arg; returns 0 or XR_ENOMEM / XR_ESYNTAX. */
int xr_location_parse(const char *arg, struct xr_location *loc);
void xr_location_free(struct xr_location *loc);

/*
 * The -e/--rsh command, parsed as rsync does (shell-like words, quotes).
 * When the program's basename is "ssh", the built-in libssh2 transport is
 * used and the ssh options are interpreted; an ssh option it cannot honour
 * is XR_EUNSUPPORTED with a message naming it.  Anything else is spawned.
 */
enum xr_hostkey_policy { XR_HOSTKEY_YES = 0, XR_HOSTKEY_ACCEPT_NEW, XR_HOSTKEY_NO };
struct xr_rsh {
	bool builtin;		/* program is ssh: use libssh2 */
	char **argv;		/* external program and its words (NULL-terminated) */
	int argc;
	/* built-in ssh settings (from -p -i -l -o ...) */
	int port;		/* 0 = 22 */
	char **identities;	/* -i / IdentityFile, in order */
	int nidentities;
	char *user;		/* -l / User= */
	int connect_timeout;	/* ConnectTimeout=, seconds, 0 = none */
	enum xr_hostkey_policy hostkey;
	char *known_hosts;	/* UserKnownHostsFile= (NULL = ~/.ssh/known_hosts) */
	bool batch_mode;	/* BatchMode=yes (we never prompt anyway) */
	int keepalive_interval;	/* ServerAliveInterval=, default 15 */
	int keepalive_count_max;/* ServerAliveCountMax=, default 3 */
	int addr_family;	/* -4 / -6 / AddressFamily=: AF_INET, AF_INET6; 0 = any */
};
/* NULL or "" rsh means plain "ssh". Returns 0, XR_ESYNTAX or XR_EUNSUPPORTED. */
int xr_rsh_parse(const char *rsh, struct xr_rsh *out);
void xr_rsh_free(struct xr_rsh *r);

/*
 * Starts the peer and returns a connection to it.
 *   local:    forks and execs this program ("/proc/self/exe") with
 *             serve_argv over a socketpair (as rsync does for local copies);
 *   external: execs rsh->argv + [-l USER] HOST + remote command (one
 *             string: remote_cmd words joined with spaces, each quoted for
 *             the remote shell) with stdin/stdout on a socketpair;
 *   builtin:  libssh2 over TCP to HOST: known_hosts checking, public-key /
 *             agent auth, an exec channel running remote_cmd, a large
 *             window, keepalives; non-blocking stream.
 * contimeout (seconds, 0 = none; for builtin the larger of it and
 * ConnectTimeout... the smaller non-zero wins) bounds TCP connect + SSH
 * handshake + auth: exceeded -> XR_ECONNTIMEOUT.  Host key problems and
 * auth failures are XR_ESSH with OpenSSH-style messages (SHA256 fingerprint).
 */
int xr_transport_local(char *const serve_argv[], int io_timeout, struct xr_conn **c);
int xr_transport_remote(const struct xr_rsh *rsh, const struct xr_location *loc,
			char *const remote_cmd[], int contimeout, int io_timeout,
			struct xr_conn **c);

#endif

/* ssh.h - private: the built-in libssh2 transport, used by remote.c. */
#ifndef XR_TRANSPORT_SSH_H
#define XR_TRANSPORT_SSH_H

#include "xr/conn.h"
#include "xr/transport.h"

/*
 * Connects to host (port from rsh, user already resolved), checks the host
 * key, authenticates and runs cmd (one string, already quoted for the remote
 * shell) on an exec channel.  contimeout (seconds, 0 = none) bounds TCP
 * connect through the start of the command: exceeded -> XR_ECONNTIMEOUT.
 * Returns 0 and *c, or XR_ESSH / XR_ECONNTIMEOUT / XR_ETIMEOUT / XR_ENOMEM.
 */
int xr_ssh_open(const struct xr_rsh *rsh, const char *user, const char *host, const char *cmd,
		int contimeout, int io_timeout, struct xr_conn **c);

#endif

/* session.c - handshake, option exchange and the serve command. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xr/conn.h"
#include "xr/err.h"
#include "xr/filter.h"
#include "xr/fs.h"
#include "xr/log.h"
#include "xr/manifest.h"
#include "xr/report.h"
#include "xr/session.h"
#include "xr/wire.h"

#ifndef XR_VERSION
#define XR_VERSION "0.1.0"
#endif

#define MY_CAPS (XR_CAP_ZLIB | XR_CAP_NSEC | XR_CAP_INCREMENTAL)

int xr_session_peer_error(struct xr_session *s, const uint8_t *p, size_t n)
{
	struct xr_text t = {0};
	int rc = xr_dec_text(p, n, &t);

	if (rc < 0) {
		xr_error("protocol error: malformed error message from the peer");
		return XR_EPROTO;
	}
	/* the client reports; a server just stops (the client printed it already) */
	if (s == NULL || !s->is_server)
		xr_error("%s", t.text);
	else
		xr_info(2, "peer: %s", t.text);
	rc = t.code < 0 ? t.code : XR_EPROTO;
	free(t.text);
	return rc;
}

int xr_session_item_from_peer(struct xr_session *s, const uint8_t *p, size_t n)
{
	struct xr_text t = {0};
	char itemize[12];
	char *name, *link;
	int rc = xr_dec_text(p, n, &t);

	if (rc < 0)
		return rc;
	if (strlen(t.text) < 12) {
		free(t.text);
		return XR_EPROTO;
	}
	memcpy(itemize, t.text, 11);
	itemize[11] = '\0';
	while (strlen(itemize) && itemize[strlen(itemize) - 1] == ' ')
		itemize[strlen(itemize) - 1] = '\0';
	name = t.text + 11;
	link = strchr(name, '\x01');
	if (link)
		*link++ = '\0';
	xr_report_item(s->opts, itemize, name, link ? link : "", true);
	free(t.text);
	return 0;
}

/* Encodes and sends our HELLO. */
static int send_hello(struct xr_conn *c)
{
	struct xr_hello h = {XR_PROTO_VERSION, MY_CAPS, (char *)"xroad-replicate " XR_VERSION};
	struct xr_buf b;
	int rc;

	xr_buf_init(&b);
	rc = xr_enc_hello(&b, &h);
	if (rc == 0)
		rc = xr_conn_send_buf(c, XR_MSG_HELLO, &b);
	xr_buf_free(&b);
	return rc;
}

/* Waits for the peer's HELLO; returns the negotiated capabilities in *caps. */
static int recv_hello(struct xr_conn *c, uint64_t *caps)
{
	struct xr_hello h = {0};
	const uint8_t *p;
	size_t n;
	uint8_t type;
	int rc;

	rc = xr_conn_wait_frame(c, &type, &p, &n);
	if (rc < 0) {
		if (rc == XR_ESOCKET)
			xr_error("connection unexpectedly closed before the protocol started "
				 "(is xroad-replicate installed on the remote side, and allowed?)");
		return rc == XR_ESOCKET ? XR_ESTART : rc;
	}
	if (type == XR_MSG_ERROR)
		return xr_session_peer_error(NULL, p, n);
	if (type != XR_MSG_HELLO || xr_dec_hello(p, n, &h) < 0) {
		xr_error("protocol error: the peer did not answer with a valid hello "
			 "(is the remote program xroad-replicate?)");
		return XR_ESTART;
	}
	if (h.version != XR_PROTO_VERSION) {
		xr_error("protocol version mismatch: ours %d, peer (%s) %u", XR_PROTO_VERSION,
			 h.program ? h.program : "?", h.version);
		xr_hello_free(&h);
		return XR_EPROTO;
	}
	*caps = h.caps & MY_CAPS;
	xr_hello_free(&h);
	return 0;
}

int xr_wire_from_opts(const struct xr_opts *o, enum xr_role server_role, const char *path,
		      bool trailing_slash, struct xr_wire_options *wo)
{
	size_t i;

	memset(wo, 0, sizeof(*wo));
	wo->server_role = (uint8_t)server_role;
	wo->flags = (o->recursive ? XR_OPT_RECURSIVE : 0) | (o->links ? XR_OPT_LINKS : 0) |
		    (o->perms ? XR_OPT_PERMS : 0) | (o->times ? XR_OPT_TIMES : 0) |
		    (o->group ? XR_OPT_GROUP : 0) | (o->owner ? XR_OPT_OWNER : 0) |
		    (o->devices ? XR_OPT_DEVICES : 0) | (o->specials ? XR_OPT_SPECIALS : 0) |
		    (o->checksum ? XR_OPT_CHECKSUM : 0) | (o->del ? XR_OPT_DELETE : 0) |
		    (o->delete_excluded ? XR_OPT_DELETE_EXCLUDED : 0) |
		    (o->numeric_ids ? XR_OPT_NUMERIC_IDS : 0) | (o->dry_run ? XR_OPT_DRY_RUN : 0) |
		    (o->compress ? XR_OPT_COMPRESS : 0) | (o->watch ? XR_OPT_WATCH : 0) |
		    (trailing_slash ? XR_OPT_TRAILING_SLASH : 0) | XR_OPT_ITEMIZE |
		    (o->whole_file > 0 ? XR_OPT_WHOLE_FILE : 0);
	wo->timeout = (uint32_t)o->timeout;
	wo->watch_quiet_ms = (uint32_t)o->watch_quiet_ms;
	wo->path = (char *)path;
	wo->nrules = o->filters ? xr_filters_count(o->filters) : 0;
	if (wo->nrules) {
		wo->rules = calloc(wo->nrules, sizeof(char *));
		if (wo->rules == NULL)
			return XR_ENOMEM;
		for (i = 0; i < wo->nrules; i++)
			wo->rules[i] = (char *)xr_filters_rule(o->filters, i);
	}
	wo->commit_last = o->commit_last;
	wo->ncommit_last = o->ncommit_last;
	return 0;
}

int xr_client_handshake(struct xr_session *s, const struct xr_wire_options *wo)
{
	struct xr_buf b;
	uint64_t caps = 0;
	int rc;

	rc = send_hello(s->conn);
	xr_buf_init(&b);
	if (rc == 0)
		rc = xr_enc_options(&b, wo);
	if (rc == 0)
		rc = xr_conn_send_buf(s->conn, XR_MSG_OPTIONS, &b);
	xr_buf_free(&b);
	if (rc == 0)
		rc = recv_hello(s->conn, &caps);
	s->peer_caps = caps;
	if (rc == 0 && s->opts->compress && (caps & XR_CAP_ZLIB))
		rc = xr_conn_set_compress(s->conn, 6);
	return rc;
}

/* Builds the server's own options from what the client asked for. */
static int opts_from_wire(const struct xr_wire_options *wo, const struct xr_opts *cmdline,
			  struct xr_opts *o)
{
	size_t i;
	int rc;

	memset(o, 0, sizeof(*o));
	o->cmd = XR_CMD_SERVE;
	o->recursive = wo->flags & XR_OPT_RECURSIVE;
	o->links = wo->flags & XR_OPT_LINKS;
	o->perms = wo->flags & XR_OPT_PERMS;
	o->times = wo->flags & XR_OPT_TIMES;
	o->group = wo->flags & XR_OPT_GROUP;
	o->owner = wo->flags & XR_OPT_OWNER;
	o->devices = wo->flags & XR_OPT_DEVICES;
	o->specials = wo->flags & XR_OPT_SPECIALS;
	o->checksum = wo->flags & XR_OPT_CHECKSUM;
	o->whole_file = (wo->flags & XR_OPT_WHOLE_FILE) ? 1 : 0;
	o->del = wo->flags & XR_OPT_DELETE;
	o->delete_excluded = wo->flags & XR_OPT_DELETE_EXCLUDED;
	o->numeric_ids = wo->flags & XR_OPT_NUMERIC_IDS;
	o->dry_run = wo->flags & XR_OPT_DRY_RUN;
	o->compress = wo->flags & XR_OPT_COMPRESS;
	o->watch = wo->flags & XR_OPT_WATCH;
	o->timeout = (int)wo->timeout;
	o->quiet = true;
	o->pause_file = cmdline->pause_file;
	o->watch_quiet_ms = (int)wo->watch_quiet_ms;
	o->filters = xr_filters_new();
	if (o->filters == NULL)
		return XR_ENOMEM;
	/* the server's own rules (serve --exclude, --profile) come first: they win */
	for (i = 0; cmdline->filters && i < xr_filters_count(cmdline->filters); i++) {
		rc = xr_filters_add(o->filters, 0, xr_filters_rule(cmdline->filters, i),
				    "serve's own filter rules");
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < wo->nrules; i++) {
		const char *r = wo->rules[i];

		/* the client expands merge files itself: a peer may not make us read files */
		if (r[0] == '.' || r[0] == ':' || !strncmp(r, "merge", 5) ||
		    !strncmp(r, "dir-merge", 9)) {
			xr_error("refusing the peer's merge rule \"%.40s\"", r);
			return XR_EDENIED;
		}
		rc = xr_filters_add(o->filters, 0, r, "peer's filter rules");
		if (rc < 0)
			return rc;
	}
	xr_filters_set_delete_excluded(o->filters, o->delete_excluded);
	o->commit_last = calloc(wo->ncommit_last + 1, sizeof(char *));
	if (o->commit_last == NULL)
		return XR_ENOMEM;
	for (i = 0; i < wo->ncommit_last; i++)
		o->commit_last[i] = wo->commit_last[i];
	o->ncommit_last = wo->ncommit_last;
	return 0;
}

/*
 * Maps the client's path onto the server's policy: with --root, a relative
 * path is taken beneath the root and an absolute one must lie inside it.
 * Returns the path to use (pointing into path or root-relative), or NULL.
 */
static const char *confine_path(const char *root, const char *path)
{
	size_t rl;

	if (root == NULL)
		return path;
	if (path[0] != '/')
		return path;
	rl = strlen(root);
	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
		return NULL;
	path += rl;
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

/* Copies path without trailing slashes ("data/" -> "data", "/" stays). */
static void strip_trailing_slashes(char *path)
{
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
}

/*
 * serve --root as a receiver: resolves the destination beneath the root
 * without following any symlink (creating its last component like rsync),
 * and makes it the working directory, so that the receiver's every later
 * operation is relative to a directory reached only through the root.
 */
static int enter_confined_dest(int root_fd, const char *path)
{
	const char *leaf;
	int fd, dfd, rc;

	fd = xr_fs_open(root_fd, path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0 && errno == ENOENT && fd != XR_EUNSAFE) {
		rc = xr_fs_open_parent(root_fd, path, &dfd, &leaf);
		if (rc < 0)
			return rc;
		if (mkdirat(dfd, leaf, 0755) < 0 && errno != EEXIST) {
			close(dfd);
			return XR_EFILEIO;
		}
		close(dfd);
		fd = xr_fs_open(root_fd, path, O_RDONLY | O_DIRECTORY, 0);
	}
	if (fd < 0)
		return fd;
	rc = fchdir(fd) < 0 ? XR_EFILEIO : 0;
	close(fd);
	return rc;
}

int xr_serve_main(const struct xr_opts *cmdline)
{
	struct xr_session s;
	struct xr_wire_options wo;
	struct xr_opts o;
	struct xr_conn *c = NULL;
	const uint8_t *p;
	const char *path;
	size_t n;
	uint8_t type;
	uint64_t caps = 0;
	int rc, root_fd = -1;
	bool have_wo = false;
	char watch_path[2 * XR_PATH_MAX + 2];
	char confined[XR_PATH_MAX + 1];

	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	signal(SIGPIPE, SIG_IGN);
	xr_log_init(0, "[serve] ");
	rc = xr_conn_new_fds(&c, STDIN_FILENO, STDOUT_FILENO, 0);
	if (rc < 0)
		return xr_exit_code(rc);
	s.conn = c;
	s.is_server = true;
	rc = recv_hello(c, &caps);
	if (rc < 0)
		goto out;
	rc = xr_conn_wait_frame(c, &type, &p, &n);
	if (rc < 0)
		goto out;
	if (type != XR_MSG_OPTIONS || xr_dec_options(p, n, &wo) < 0) {
		rc = XR_EPROTO;
		xr_conn_send_error(c, rc, "protocol error: expected options");
		goto out;
	}
	have_wo = true;
	rc = opts_from_wire(&wo, cmdline, &o);
	if (rc < 0) {
		xr_conn_send_error(c, rc == XR_ENOMEM ? rc : XR_ESYNTAX,
				   "the server refused the filter rules (%s)", xr_strerror(rc));
		goto out;
	}
	s.opts = &o;
	s.peer_itemize = wo.flags & XR_OPT_ITEMIZE;
	if (wo.server_role == XR_ROLE_RECEIVER && cmdline->read_only) {
		rc = XR_EDENIED;
		xr_conn_send_error(c, rc, "the server is read-only (serve --read-only): "
					  "refusing to receive files");
		goto out;
	}
	if (wo.server_role == XR_ROLE_SENDER && cmdline->write_only) {
		rc = XR_EDENIED;
		xr_conn_send_error(c, rc, "the server is write-only (serve --write-only): "
					  "refusing to send files");
		goto out;
	}
	path = confine_path(cmdline->root, wo.path);
	if (path != NULL && cmdline->root) {
		/* beneath --root, names are resolved component by component: no "dir/" */
		snprintf(confined, sizeof(confined), "%s", path);
		strip_trailing_slashes(confined);
		path = confined;
	}
	if (path == NULL) {
		rc = XR_EDENIED;
		xr_conn_send_error(c, rc, "%s: outside the served root %s", wo.path,
				   cmdline->root);
		goto out;
	}
	if (cmdline->root) {
		root_fd = open(cmdline->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (root_fd < 0) {
			rc = XR_ESELECT;
			xr_conn_send_error(c, rc, "%s: cannot open the served root: %s",
					   cmdline->root, strerror(errno));
			goto out;
		}
	}
	if (root_fd >= 0 && wo.server_role == XR_ROLE_RECEIVER) {
		rc = enter_confined_dest(root_fd, path);
		if (rc < 0) {
			xr_conn_send_error(c, rc, "%s: refused beneath the served root %s (%s)",
					   wo.path, cmdline->root, xr_strerror(rc));
			goto out;
		}
		path = ".";
	}
	rc = send_hello(c);
	s.peer_caps = caps;
	if (rc == 0 && o.compress && (caps & XR_CAP_ZLIB))
		rc = xr_conn_set_compress(c, 6);
	if (rc < 0)
		goto out;
	if (cmdline->root && wo.server_role == XR_ROLE_SENDER) {
		snprintf(watch_path, sizeof(watch_path), "%s/%s", cmdline->root, path);
		s.watch_path = watch_path;
	}
	if (o.watch)
		xr_watch_signals();
	if (wo.server_role == XR_ROLE_SENDER)
		rc = xr_sender_run(&s, path, wo.flags & XR_OPT_TRAILING_SLASH, root_fd);
	else if (wo.server_role == XR_ROLE_RECEIVER)
		rc = xr_receiver_run(&s, path, root_fd);
	else {
		rc = XR_EPROTO;
		xr_conn_send_error(c, rc, "protocol error: unknown role %u", wo.server_role);
	}
	if (rc == 0 || rc == XR_EPARTIAL || rc == XR_EVANISHED) {
		/*
		 * an orderly end (also a partial transfer, reported in RESULT): wait for
		 * the client's BYE so neither side writes into a closed pipe
		 */
		while (xr_conn_wait_frame(c, &type, &p, &n) == 1 && type != XR_MSG_BYE)
			;
	}
out:
	if (root_fd >= 0)
		close(root_fd);
	if (have_wo)
		xr_options_free(&wo);
	if (o.filters)
		xr_filters_free(o.filters);
	free(o.commit_last);
	xr_conn_close(c);
	return xr_exit_code(rc);
}

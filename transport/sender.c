/* sender.c - the sending role: the file list out, file data for each request. */
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xr/commit.h"
#include "xr/delta.h"
#include "xr/err.h"
#include "xr/filter.h"
#include "xr/fs.h"
#include "xr/hash.h"
#include "xr/log.h"
#include "xr/manifest.h"
#include "xr/session.h"
#include "xr/watch.h"
#include "xr/wire.h"

/* Output queued beyond this waits for the peer before more is produced. */
#define SEND_HIGH_WATER (256u * 1024)
/* A file that keeps changing while read is retried this often. */
#define READ_RETRIES 3
#define FLIST_BATCH (60u * 1024)

/* Watch batches larger than this go as a full change set. */
#define INCREMENTAL_MAX_PATHS 20000u

/* Where the source's files are opened from. */
struct src_tree {
	int basefd;		/* directory the stripped paths are relative to */
	size_t strip;		/* bytes to strip from manifest paths ("name/") */
	const char *prefix;	/* walk prefix or NULL */
	struct xr_manifest m;
	bool walked;		/* a directory walk, not a single name: can go incremental */
	bool announced;		/* CSET_BEGIN is sent */
};

/*
 * Sends CSET_BEGIN.  A peer that knows incremental change sets also gets
 * flags and, when top is non-NULL, the name of the top entry ahead of the
 * walk (it then walks DEST meanwhile).
 */
static int send_cset_begin(struct xr_session *s, uint64_t flags, const char *top)
{
	struct xr_cset_begin cb = {s->cset, 0, NULL};
	struct xr_buf b;
	int rc;

	if (s->peer_caps & XR_CAP_INCREMENTAL) {
		cb.flags = flags | (top ? XR_CSET_TOP : 0);
		cb.top = (char *)top;
	}
	xr_buf_init(&b);
	rc = xr_enc_cset_begin(&b, &cb);
	if (rc == 0)
		rc = xr_conn_send_buf(s->conn, XR_MSG_CSET_BEGIN, &b);
	if (rc == 0 && cb.top)
		rc = xr_conn_flush(s->conn);	/* now, so the receiver walks while we do */
	xr_buf_free(&b);
	return rc;
}

/* Sets up the options of the sender's walks. */
static void sender_walk_opts(const struct xr_opts *o, struct xr_walk_opts *wo)
{
	memset(wo, 0, sizeof(*wo));
	wo->recursive = o->recursive;
	/* links and devices are listed; the receiver's plan skips them as rsync */
	wo->links = true;
	wo->devices = true;
	wo->checksum = o->checksum;
	wo->map_names = !o->numeric_ids;
	wo->side = XR_WALK_SENDER;
	wo->skip_name = XR_STATE_DIR;
}

/* Splits "a/b/c" into parent "a/b" and leaf "c" (allocated copies). */
static int split_path(const char *path, char **parent, char **leaf)
{
	size_t len = strlen(path);
	const char *slash;

	while (len > 1 && path[len - 1] == '/')
		len--;
	*parent = strndup(path, len);
	if (*parent == NULL)
		return XR_ENOMEM;
	slash = memrchr(*parent, '/', len);
	if (slash == NULL) {
		*leaf = strdup(*parent);
		strcpy(*parent, ".");
	} else {
		*leaf = strdup(slash + 1);
		if (slash == *parent)
			(*parent)[1] = '\0';
		else
			(*parent)[slash - *parent] = '\0';
	}
	return *leaf ? 0 : XR_ENOMEM;
}

/*
 * Opens path as the sender sees it: beneath root_fd when confined (absolute
 * paths must lie under the root's own path, given as root_path).
 */
static int open_source_path(const char *path, int root_fd, int flags)
{
	int fd;

	if (root_fd < 0) {
		fd = open(path, flags | O_CLOEXEC);
		return fd < 0 ? xr_err_from_errno(errno) : fd;
	}
	while (*path == '/')
		path++;
	if (*path == '\0')
		path = ".";
	return xr_fs_open(root_fd, path, flags | O_CLOEXEC, 0);
}

/*
 * Walks the source directory fd (prefix: its name in the list, NULL: ".")
 * into t, announcing the top entry first so the receiver walks DEST
 * meanwhile.  Returns as xr_walk().
 */
static int walk_source(struct xr_session *s, struct src_tree *t, int fd, const char *prefix,
		       const struct xr_walk_opts *wo, unsigned *vanished, unsigned *errors)
{
	int rc = send_cset_begin(s, 0, prefix ? prefix : ".");

	t->basefd = fd;
	t->announced = t->walked = true;
	if (rc < 0)
		return rc;
	return xr_walk(fd, prefix, s->opts->filters, wo, &t->m, vanished, errors);
}

/* Builds the sender's manifest of src with rsync's trailing-slash meaning. */
static int build_tree(struct xr_session *s, const char *src, bool trailing_slash, int root_fd,
		      struct src_tree *t)
{
	const struct xr_opts *o = s->opts;
	struct xr_walk_opts wo;
	char *parent = NULL, *leaf = NULL;
	struct stat st;
	unsigned vanished = 0, errors = 0;
	int fd = -1, rc;

	memset(t, 0, sizeof(*t));
	xr_manifest_init(&t->m);
	t->basefd = -1;
	sender_walk_opts(o, &wo);

	fd = open_source_path(src, root_fd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd >= 0 && (trailing_slash || !strcmp(src, ".") || !strcmp(src, "/"))) {
		rc = walk_source(s, t, fd, NULL, &wo, &vanished, &errors);
		goto walked;
	}
	if (fd < 0 && trailing_slash && root_fd >= 0) {
		/* beneath --root nothing is followed: "link/" would leave the root */
		xr_error("%s: not a directory beneath the served root (symlinks are not followed)",
			 src);
		rc = XR_EDENIED;
		goto out;
	}
	if (fd < 0 && trailing_slash) {
		/* "dir/" names a directory; a symlink to one is followed, as rsync */
		fd = open_source_path(src, root_fd, O_RDONLY | O_DIRECTORY);
		if (fd >= 0) {
			rc = walk_source(s, t, fd, NULL, &wo, &vanished, &errors);
			goto walked;
		}
	}
	rc = split_path(src, &parent, &leaf);
	if (rc < 0)
		goto out;
	if (!strcmp(leaf, "..") || !strcmp(leaf, ".") || !xr_path_valid(leaf)) {
		xr_error("%s: source name not allowed", src);
		rc = XR_ESELECT;
		goto out;
	}
	if (fd >= 0) {
		/* "dir": its contents appear under "leaf/" */
		if (!o->recursive) {
			xr_info(0, "skipping directory %s", leaf);
			close(fd);
			rc = 0;
			goto out;
		}
		t->strip = strlen(leaf) + 1;
		t->prefix = leaf;
		rc = walk_source(s, t, fd, leaf, &wo, &vanished, &errors);
		leaf = NULL;	/* kept for the prefix; freed with the tree */
		goto walked;
	}
	fd = open_source_path(parent, root_fd, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		xr_error("change_dir \"%s\" failed: %s", parent, strerror(errno));
		rc = XR_ESELECT;
		goto out;
	}
	t->basefd = fd;
	{
		struct xr_entry e;

		memset(&e, 0, sizeof(e));
		rc = xr_entry_stat(fd, leaf, leaf, &e);
		if (rc == XR_EVANISHED) {
			xr_error("link_stat \"%s\" failed: No such file or directory (2)", src);
			rc = XR_EPARTIAL;
			goto out;
		}
		if (rc < 0) {
			xr_error("link_stat \"%s\" failed: %s", src, strerror(errno));
			rc = XR_EPARTIAL;
			goto out;
		}
		if (e.type == XR_FT_LINK && !o->links) {
			xr_info(0, "skipping non-regular file \"%s\"", leaf);
		} else if (fstatat(fd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			rc = xr_manifest_add(&t->m, &e);
			if (rc == 0 && !o->numeric_ids)
				rc = xr_manifest_note_ids(&t->m, e.uid, e.gid);
		}
		xr_entry_free(&e);
	}
	goto out;
walked:
	if (rc == 0 && vanished)
		s->vanished = true;
	if (rc == 0 && errors)
		s->partial = true;
out:
	free(parent);
	free(leaf);	/* NULL once it became the prefix */
	return rc;
}

/* Opens the source file of entry e for reading; returns fd or negative xr_err. */
static int open_entry(const struct src_tree *t, const struct xr_entry *e)
{
	const char *rel = e->path;

	if (t->strip) {
		rel = strlen(rel) > t->strip ? rel + t->strip : ".";
	}
	return xr_fs_open(t->basefd, rel, O_RDONLY | O_CLOEXEC, 0);
}

/* Sends the SCOPE frames of an incremental change set. */
static int send_scope(struct xr_session *s, const struct xr_scope *sc)
{
	struct xr_buf b;
	int rc = 0;

	xr_buf_init(&b);
	for (size_t i = 0; rc == 0 && i < sc->n; i++) {
		rc = xr_enc_scope_item(&b, &sc->v[i]);
		if (rc == 0 && (b.len >= FLIST_BATCH || i + 1 == sc->n)) {
			rc = xr_conn_send_buf(s->conn, XR_MSG_SCOPE, &b);
			xr_buf_reset(&b);
		}
	}
	xr_buf_free(&b);
	return rc;
}

/* Sends the change set's header (scope: incremental) and file list. */
static int send_flist(struct xr_session *s, struct src_tree *t, const struct xr_scope *scope)
{
	struct xr_flist_coder coder;
	struct xr_buf b;
	size_t i;
	int rc = 0;

	xr_buf_init(&b);
	if (!t->announced)
		rc = send_cset_begin(s, scope ? XR_CSET_INCREMENTAL : 0, NULL);
	t->announced = true;
	if (rc == 0 && scope)
		rc = send_scope(s, scope);
	if (rc == 0 && !s->opts->numeric_ids && t->m.nusers) {
		rc = xr_enc_idmap(&b, 'u', t->m.users, t->m.nusers);
		if (rc == 0)
			rc = xr_conn_send_buf(s->conn, XR_MSG_IDMAP, &b);
	}
	if (rc == 0 && !s->opts->numeric_ids && t->m.ngroups) {
		xr_buf_reset(&b);
		rc = xr_enc_idmap(&b, 'g', t->m.groups, t->m.ngroups);
		if (rc == 0)
			rc = xr_conn_send_buf(s->conn, XR_MSG_IDMAP, &b);
	}
	xr_flist_coder_init(&coder);
	xr_buf_reset(&b);
	for (i = 0; rc == 0 && i < t->m.n; i++) {
		rc = xr_enc_entry(&b, &coder, &t->m.e[i]);
		if (rc == 0 && (b.len >= FLIST_BATCH || i + 1 == t->m.n)) {
			s->st.flist_size += b.len;
			rc = xr_conn_send_buf(s->conn, XR_MSG_FLIST, &b);
			xr_buf_reset(&b);
		}
		if (rc == 0 && xr_conn_pending(s->conn) > SEND_HIGH_WATER)
			rc = xr_conn_flush(s->conn);
	}
	if (rc == 0) {
		xr_buf_reset(&b);
		rc = xr_enc_u64(&b, t->m.n);
		if (rc == 0)
			rc = xr_conn_send_buf(s->conn, XR_MSG_FLIST_END, &b);
	}
	xr_buf_free(&b);
	return rc;
}

/* Queues one small message built by enc. */
static int send_abort(struct xr_session *s, uint64_t idx, uint8_t reason)
{
	struct xr_file_abort fa = {idx, reason};
	struct xr_buf b;
	int rc;

	xr_buf_init(&b);
	rc = xr_enc_file_abort(&b, &fa);
	if (rc == 0)
		rc = xr_conn_send_buf(s->conn, XR_MSG_FILE_ABORT, &b);
	xr_buf_free(&b);
	return rc;
}

static int send_begin(struct xr_session *s, uint64_t idx, uint8_t kind, uint64_t size)
{
	struct xr_file_begin fb = {idx, kind, size};
	struct xr_buf b;
	int rc;

	xr_buf_init(&b);
	rc = xr_enc_file_begin(&b, &fb);
	if (rc == 0)
		rc = xr_conn_send_buf(s->conn, XR_MSG_FILE_BEGIN, &b);
	xr_buf_free(&b);
	return rc;
}

static int send_end(struct xr_session *s, uint64_t idx, uint64_t size, const struct xr_hash *h,
		    const struct stat *st)
{
	struct xr_file_end fe;
	struct xr_buf b;
	int rc;

	memset(&fe, 0, sizeof(fe));
	fe.idx = idx;
	fe.size = size;
	fe.hash = *h;
	fe.mtime_sec = st->st_mtim.tv_sec;
	fe.mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	xr_buf_init(&b);
	rc = xr_enc_file_end(&b, &fe);
	if (rc == 0)
		rc = xr_conn_send_buf(s->conn, XR_MSG_FILE_END, &b);
	xr_buf_free(&b);
	return rc;
}

/* True when the file changed between the two fstat()s (a torn read). */
static bool changed_while_read(const struct stat *a, const struct stat *b)
{
	return a->st_size != b->st_size || a->st_ino != b->st_ino ||
	       a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec ||
	       a->st_ctim.tv_sec != b->st_ctim.tv_sec || a->st_ctim.tv_nsec != b->st_ctim.tv_nsec;
}

/* Waits until the output queue has room, keeping the connection alive. */
static int wait_room(struct xr_session *s)
{
	int rc = 0;

	while (rc == 0 && xr_conn_pending(s->conn) > SEND_HIGH_WATER)
		rc = xr_conn_pump(s->conn, 1000);
	return rc;
}

/*
 * Streams one attempt at fd's content (whole, or as a delta against sig),
 * returning its hash and size.
 */
static int stream_content(struct xr_session *s, int fd, struct xr_sig_load *sig, bool whole,
			  uint64_t limit, struct xr_hash *h, uint64_t *size)
{
	uint8_t *buf = malloc(XR_DATA_CHUNK);
	struct xr_delta_gen *dg = NULL;
	struct xr_hasher hs = {0};
	bool done = false;
	size_t len;
	off_t off = 0;
	ssize_t n;
	int rc;

	if (buf == NULL)
		return XR_ENOMEM;
	if (whole) {
		rc = xr_hasher_init(&hs);
		while (rc == 0) {
			if ((uint64_t)off >= limit)
				break;	/* grown since fstat: the caller sees it and retries */
			n = pread(fd, buf,
				  limit - (uint64_t)off < XR_DATA_CHUNK ? (size_t)(limit - (uint64_t)off)
									 : XR_DATA_CHUNK,
				  off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = XR_EFILEIO;
				break;
			}
			if (n == 0)
				break;
			off += n;
			xr_hasher_update(&hs, buf, (size_t)n);
			rc = wait_room(s);
			if (rc == 0)
				rc = xr_conn_send(s->conn, XR_MSG_FILE_DATA, buf, (size_t)n);
		}
		if (rc == 0) {
			xr_hasher_final(&hs, h);
			*size = (uint64_t)off;
			s->st.literal += (uint64_t)off;
		}
		xr_hasher_free(&hs);
		free(buf);
		return rc;
	}
	rc = xr_delta_gen_begin_max(&dg, sig, fd, limit);
	while (rc == 0 && !done) {
		rc = xr_delta_gen_next(dg, buf, XR_DATA_CHUNK, &len, &done);
		if (rc == 0 && len) {
			rc = wait_room(s);
			if (rc == 0)
				rc = xr_conn_send(s->conn, XR_MSG_FILE_DATA, buf, len);
			s->st.literal += len;
		}
	}
	if (rc == 0)
		xr_delta_gen_result(dg, h, size);
	xr_delta_gen_free(dg);
	free(buf);
	return rc;
}

/* Answers one request: SAME, a delta, or the whole file; retries torn reads. */
static int serve_request(struct xr_session *s, struct src_tree *t, const struct xr_request *req,
			 struct xr_sig_load *sig)
{
	const struct xr_entry *e = &t->m.e[req->idx];
	struct stat before, after;
	struct xr_hash h;
	uint64_t size;
	int fd, rc, attempt;

	fd = open_entry(t, e);
	if (fd < 0) {
		if (fd == XR_EVANISHED || errno == ENOENT) {
			xr_warn("file has vanished: \"%s\"", e->path);
			s->vanished = true;
			return send_abort(s, req->idx, XR_ABORT_VANISHED);
		}
		xr_error("send_files failed to open \"%s\": %s", e->path, strerror(errno));
		s->partial = true;
		return send_abort(s, req->idx, XR_ABORT_READ_ERROR);
	}
	for (attempt = 0; attempt <= READ_RETRIES; attempt++) {
		if (fstat(fd, &before) < 0 || !S_ISREG(before.st_mode))
			goto read_error;
		if (req->have_hash && (uint64_t)before.st_size == req->basis_size) {
			rc = xr_hash_fd(fd, &h, &size);
			if (rc < 0)
				goto read_error;
			if (fstat(fd, &after) < 0)
				goto read_error;
			if (changed_while_read(&before, &after))
				continue;
			if (!memcmp(&h, &req->basis_hash, sizeof(h))) {
				rc = send_begin(s, req->idx, XR_FILE_SAME, size);
				if (rc == 0)
					rc = send_end(s, req->idx, size, &h, &after);
				s->st.matched += size;
				goto out;
			}
		}
		rc = send_begin(s, req->idx, sig ? XR_FILE_DELTA : XR_FILE_WHOLE,
				(uint64_t)before.st_size);
		if (rc < 0)
			goto out;
		rc = stream_content(s, fd, sig, sig == NULL, (uint64_t)before.st_size, &h, &size);
		if (rc == XR_EFILEIO)
			goto read_error;
		if (rc < 0)
			goto out;
		if (fstat(fd, &after) < 0)
			goto read_error;
		/* size is set: stream_content returned 0 (the analyzer assumes > 0 too) */
		/* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
		if (!changed_while_read(&before, &after) && size == (uint64_t)after.st_size) {
			rc = send_end(s, req->idx, size, &h, &after);
			s->st.transferred_size += size;
			goto out;
		}
		xr_info(2, "%s: changed while being read, sending again", e->path);
		rc = send_abort(s, req->idx, XR_ABORT_RETRY);
		if (rc < 0)
			goto out;
	}
	xr_warn("%s: kept changing while being read; not sent", e->path);
	s->partial = true;
	rc = send_abort(s, req->idx, XR_ABORT_READ_ERROR);
	goto out;
read_error:
	xr_error("read errors mapping \"%s\": %s", e->path, strerror(errno));
	s->partial = true;
	rc = send_abort(s, req->idx, XR_ABORT_READ_ERROR);
out:
	close(fd);
	return rc;
}

/* Receives SIG frames for idx into a loaded signature. */
static int load_signature(struct xr_session *s, uint64_t idx, struct xr_sig_load **sigp)
{
	const uint8_t *p;
	size_t n;
	uint8_t type;
	uint64_t v;
	int rc;

	rc = xr_sig_load_begin(sigp);
	while (rc == 0) {
		rc = xr_conn_wait_frame(s->conn, &type, &p, &n);
		if (rc < 0)
			break;
		rc = 0;
		if (type == XR_MSG_SIG) {
			rc = xr_sig_load_feed(*sigp, p, n);
		} else if (type == XR_MSG_SIG_END) {
			rc = xr_dec_u64(p, n, &v);
			if (rc == 0 && v != idx)
				rc = XR_EPROTO;
			if (rc == 0)
				return xr_sig_load_finish(*sigp);
		} else if (type != XR_MSG_KEEPALIVE) {
			xr_error("protocol error: unexpected message %u in a signature", type);
			rc = XR_EPROTO;
		}
	}
	return rc;
}

/* Starts a change set: counters and flags of the last one are cleared. */
static void cset_start(struct xr_session *s)
{
	memset(&s->st, 0, sizeof(s->st));
	s->status = 0;
	s->vanished = s->partial = false;
	s->cset++;
}

/* Frees a source tree and leaves it empty. */
static void src_tree_free(struct src_tree *t)
{
	if (t->basefd >= 0)
		close(t->basefd);
	free((char *)t->prefix);
	xr_manifest_free(&t->m);
	memset(t, 0, sizeof(*t));
	t->basefd = -1;
}

/*
 * Sends the list of t (scope: an incremental change set), then data for
 * each request; returns the RESULT status, or a local error.
 */
static int run_cset(struct xr_session *s, struct src_tree *t, const struct xr_scope *scope)
{
	struct xr_request req;
	struct xr_result res;
	struct xr_sig_load *sig = NULL;
	const uint8_t *p;
	size_t n;
	uint8_t type;
	bool req_end = false, peer_failed = false, got_result = false;
	int rc;

	s->st.files_total = t->m.n;
	for (size_t i = 0; i < t->m.n; i++)
		if (t->m.e[i].type == XR_FT_REG) {
			s->st.files_reg++;
			s->st.total_size += t->m.e[i].size;
		}
	rc = send_flist(s, t, scope);
	while (rc == 0 && !req_end) {
		rc = xr_conn_wait_frame(s->conn, &type, &p, &n);
		if (rc < 0)
			break;
		rc = 0;
		switch (type) {
		case XR_MSG_REQUEST:
			rc = xr_dec_request(p, n, &req);
			if (rc == 0 && (req.idx >= t->m.n || t->m.e[req.idx].type != XR_FT_REG)) {
				xr_error("protocol error: request for a non-file index %llu",
					 (unsigned long long)req.idx);
				rc = XR_EPROTO;
			}
			if (rc == 0 && req.have_basis)
				rc = load_signature(s, req.idx, &sig);
			if (rc == 0)
				rc = serve_request(s, t, &req, sig);
			xr_sig_load_free(sig);
			sig = NULL;
			break;
		case XR_MSG_REQ_END:
			req_end = true;
			rc = xr_conn_send(s->conn, XR_MSG_CSET_END, NULL, 0);
			break;
		case XR_MSG_KEEPALIVE:
			break;
		case XR_MSG_RESYNC:
			s->resync = true;
			break;
		case XR_MSG_ERROR:
			peer_failed = true;
			rc = xr_session_peer_error(s, p, n);
			break;
		default:
			xr_error("protocol error: unexpected message %u from the receiver", type);
			rc = XR_EPROTO;
		}
	}
	/* the receiver commits, then reports what it did */
	while (rc == 0) {
		rc = xr_conn_wait_frame(s->conn, &type, &p, &n);
		if (rc < 0)
			break;
		rc = 0;
		if (type == XR_MSG_ITEM) {
			rc = xr_session_item_from_peer(s, p, n);
		} else if (type == XR_MSG_RESULT) {
			rc = xr_dec_result(p, n, &res);
			got_result = rc == 0;
			if (rc == 0 && res.status == XR_RESULT_PAUSED) {
				/* the receiver's pause flag held it: nothing applied, not an error */
				xr_logfile("receiver paused: nothing applied");
				xr_info(1, "receiver paused: nothing applied");
				res.status = 0;
			}
			if (rc == 0) {
				s->status = res.status;
				s->st.files_created = res.files_changed;
				s->st.files_deleted = res.files_deleted;
				s->st.files_transferred = res.files_total;
			}
			break;
		} else if (type == XR_MSG_RESYNC) {
			s->resync = true;
		} else if (type == XR_MSG_ERROR) {
			peer_failed = true;
			rc = xr_session_peer_error(s, p, n);
		} else if (type != XR_MSG_KEEPALIVE) {
			xr_error("protocol error: unexpected message %u after the file data", type);
			rc = XR_EPROTO;
		}
	}
	if (rc == XR_ESOCKET && !peer_failed) {
		const uint8_t *ep;
		size_t en;

		/* the receiver may have stopped with a reason (disk full...) and closed */
		if (xr_conn_salvage_error(s->conn, &ep, &en) == 1) {
			peer_failed = true;
			rc = xr_session_peer_error(s, ep, en);
		}
	}
	if (rc < 0 && !got_result && !peer_failed && rc != XR_ESOCKET && rc != XR_ETIMEOUT)
		xr_conn_send_error(s->conn, rc, "the sender failed: %s", xr_strerror(rc));
	if (rc == 0)
		rc = s->status;
	return rc;
}

/*
 * Sends one full change set of src; returns as run_cset().  With keep, the
 * tree is handed to the caller (--watch: the base of incremental change
 * sets), else freed.
 */
static int send_cset(struct xr_session *s, const char *src, bool trailing_slash, int root_fd,
		     struct src_tree *keep)
{
	struct src_tree t;
	int rc;

	cset_start(s);
	rc = build_tree(s, src, trailing_slash, root_fd, &t);
	if (rc < 0)
		xr_conn_send_error(s->conn, rc, "%s: cannot read the source (%s)", src,
				   xr_strerror(rc));
	else
		rc = run_cset(s, &t, NULL);
	if (keep && rc >= 0 && t.walked) {
		*keep = t;
		return rc;
	}
	src_tree_free(&t);
	return rc;
}

/* The path in the manifest of the watched path w (relative to the watched directory). */
static int manifest_path(const struct src_tree *t, const char *w, char *out, size_t cap)
{
	int len;

	if (w[0] == '\0' || strcmp(w, ".") == 0)
		len = snprintf(out, cap, "%s", t->prefix ? t->prefix : ".");
	else if (t->prefix)
		len = snprintf(out, cap, "%s/%s", t->prefix, w);
	else
		len = snprintf(out, cap, "%s", w);
	return len < 0 || (size_t)len >= cap ? XR_ELIMIT : 0;
}

/*
 * Adds path to sc: the whole subtree unless tree already has it as a
 * directory (then only its own attributes can have changed; what changed
 * inside it is reported by name).
 */
static int scope_add_path(struct xr_scope *sc, const struct src_tree *tree, const char *path)
{
	const struct xr_entry *old = xr_manifest_find(&tree->m, path);

	return xr_scope_add(sc, path, !(old && old->type == XR_FT_DIR));
}

/*
 * Sends an incremental change set for the watched paths (the batch of
 * xr_watch_take()): only they and their directories are statted, listed
 * and compared; then tree is brought up to date.  Returns as run_cset(),
 * or XR_ENOMEM with tree no longer usable (the caller goes full).
 */
static int send_incremental(struct xr_session *s, struct src_tree *tree, char **paths,
			    size_t npaths)
{
	struct xr_walk_opts wo;
	struct xr_scope sc;
	struct src_tree d;
	char mp[XR_PATH_MAX + 1];
	unsigned vanished = 0, errors = 0;
	int rc = 0, rc2;

	cset_start(s);
	xr_scope_init(&sc);
	for (size_t i = 0; rc == 0 && i < npaths; i++) {
		char *slash;

		if (manifest_path(tree, paths[i], mp, sizeof(mp)) < 0)
			continue;	/* too long to be listed by a walk either */
		rc = scope_add_path(&sc, tree, mp);
		/* its directory's mtime changed with it */
		slash = strrchr(mp, '/');
		if (rc == 0 && slash) {
			*slash = '\0';
			rc = scope_add_path(&sc, tree, mp);
		} else if (rc == 0 && strcmp(mp, ".") != 0 && !tree->prefix) {
			rc = scope_add_path(&sc, tree, ".");
		}
	}
	if (rc == 0)
		rc = xr_scope_normalize(&sc);
	memset(&d, 0, sizeof(d));
	xr_manifest_init(&d.m);
	d.basefd = tree->basefd;
	d.strip = tree->strip;
	d.prefix = tree->prefix;
	sender_walk_opts(s->opts, &wo);
	if (rc == 0)
		rc = xr_walk_scope(tree->basefd, tree->prefix, &sc, s->opts->filters, &wo, &d.m,
				   &vanished, &errors);
	/*
	 * A directory replaced by another one under the same name (mv d d.old;
	 * mv d.new d) is no longer the directory listed before: what the old one
	 * held must go too, so it is listed (and compared) with all it holds.
	 */
	if (rc == 0 && xr_scope_mark_replaced(&sc, &tree->m, &d.m)) {
		xr_manifest_free(&d.m);
		xr_manifest_init(&d.m);
		rc = xr_scope_normalize(&sc);
		if (rc == 0)
			rc = xr_walk_scope(tree->basefd, tree->prefix, &sc, s->opts->filters, &wo,
					   &d.m, &vanished, &errors);
	}
	if (rc < 0) {
		xr_conn_send_error(s->conn, rc, "cannot read the source (%s)", xr_strerror(rc));
		goto out;
	}
	s->vanished = vanished > 0;
	s->partial = errors > 0;
	xr_info(2, "watch: incremental change set %llu: %zu path(s) in scope, %zu listed",
		(unsigned long long)s->cset, sc.n, d.m.n);
	rc = run_cset(s, &d, &sc);
	/* the source's state is what was listed, whatever the receiver made of it */
	rc2 = xr_manifest_splice(&tree->m, &sc, &d.m);
	if (rc2 < 0 && rc >= 0)
		rc = rc2;
out:
	xr_manifest_free(&d.m);
	xr_scope_free(&sc);
	return rc;
}

/* Set by SIGTERM/SIGINT in --watch mode: finish the current change set, then stop. */
static volatile sig_atomic_t watch_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

/* Installs the --watch stop handlers (no SA_RESTART, so poll() wakes up). */
void xr_watch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

bool xr_watch_stopping(void)
{
	return watch_stop != 0;
}

/* Milliseconds on the monotonic clock. */
static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True for errors after which the session cannot go on. */
static bool session_fatal(int rc)
{
	return rc == XR_ESOCKET || rc == XR_ETIMEOUT || rc == XR_EPROTO || rc == XR_ELIMIT ||
	       rc == XR_ENOMEM || rc == XR_ESTART || rc == XR_ESSH || rc == XR_EDENIED;
}

/*
 * True when src no longer names the directory tree was listed from (it was
 * removed, or moved away and maybe replaced): then only a full change set,
 * which reads src again, may say what the source holds - an incremental one
 * would ship the deletion of everything.
 */
static bool source_moved(const char *src, int root_fd, const struct src_tree *tree)
{
	struct stat a, b;
	int fd;
	bool moved;

	if (fstat(tree->basefd, &a) < 0 || a.st_nlink == 0)
		return true;
	fd = open_source_path(src, root_fd, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return true;
	moved = fstat(fd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino;
	close(fd);
	return moved;
}

/* Appends the batch paths to the pending ones (ownership moves); returns 0 or XR_ENOMEM. */
static int pend_add(char ***pend, size_t *npend, char **paths, size_t n)
{
	char **np;

	if (n == 0) {
		free(paths);
		return 0;
	}
	np = realloc(*pend, (*npend + n) * sizeof(*np));
	if (np == NULL) {
		xr_watch_free_paths(paths, n);
		return XR_ENOMEM;
	}
	memcpy(np + *npend, paths, n * sizeof(*np));
	free(paths);
	*pend = np;
	*npend += n;
	return 0;
}

/*
 * --watch on the sending side: after the initial change set, waits on
 * inotify and the connection (no polling), ships one change set per
 * coalesced batch - incremental when the peer takes them and the last one
 * went through, else full - answers RESYNC, sends KEEPALIVE when idle and a
 * full reconcile every --reconcile seconds (when this side is the client).
 * tree is the last full change set's list, kept up to date.
 */
static int watch_loop(struct xr_session *s, const char *src, bool trailing_slash, int root_fd,
		      struct xr_watch *w, struct src_tree *tree, bool tree_ok)
{
	const struct xr_opts *o = s->opts;
	const uint8_t *p;
	char **paths, **pend = NULL;
	size_t n, npaths, npend = 0;
	uint8_t type;
	bool ready, rescan, pending = false, full = false;
	int64_t now, ka_ms, next_ka, next_reconcile, wait, retry_at = INT64_MAX, backoff = 1000;
	int rc = 0, due;

	ka_ms = o->timeout > 0 ? (int64_t)o->timeout * 1000 / 3 : 10000;
	now = mono_ms();
	next_ka = now + ka_ms;
	next_reconcile = (!s->is_server && o->reconcile > 0) ? now + (int64_t)o->reconcile * 1000
							      : INT64_MAX;
	while (!watch_stop) {
		if (s->resync || pending) {
			bool incremental = !s->resync && !full && tree_ok &&
					   (s->peer_caps & XR_CAP_INCREMENTAL) &&
					   npend <= INCREMENTAL_MAX_PATHS &&
					   !source_moved(src, root_fd, tree);

			s->resync = pending = full = false;
			if (incremental) {
				rc = send_incremental(s, tree, pend, npend);
			} else {
				xr_info(2, "watch: full change set %llu",
					(unsigned long long)s->cset + 1);
				src_tree_free(tree);
				rc = send_cset(s, src, trailing_slash, root_fd, tree);
			}
			xr_watch_free_paths(pend, npend);
			pend = NULL;
			npend = 0;
			/* a change set that did not go through leaves the receiver unknown */
			tree_ok = rc == 0 && tree->walked;
			if (rc < 0 && session_fatal(rc))
				break;
			if (rc != 0) {
				/* do not wait for the next change or --reconcile: try again */
				retry_at = mono_ms() + backoff;
				xr_info(1, "watch: change set %llu failed; a full one in %lld s",
					(unsigned long long)s->cset, (long long)backoff / 1000);
				backoff = backoff * 2 > 60000 ? 60000 : backoff * 2;
			} else {
				retry_at = INT64_MAX;
				backoff = 1000;
			}
			if (s->on_cset)
				s->on_cset(s, rc);
			next_ka = mono_ms() + ka_ms;
			continue;
		}
		rc = xr_conn_recv(s->conn, &type, &p, &n);
		if (rc < 0)
			break;
		if (rc == 1) {
			rc = 0;
			if (type == XR_MSG_RESYNC)
				s->resync = true;
			else if (type == XR_MSG_BYE)
				break;
			else if (type == XR_MSG_ERROR) {
				rc = xr_session_peer_error(s, p, n);
				break;
			} else if (type != XR_MSG_KEEPALIVE) {
				xr_error("protocol error: unexpected message %u while watching", type);
				rc = XR_EPROTO;
				break;
			}
			continue;
		}
		now = mono_ms();
		due = xr_watch_due_ms(w);
		wait = next_ka - now;
		if (next_reconcile - now < wait)
			wait = next_reconcile - now;
		if (retry_at - now < wait)
			wait = retry_at - now;
		if (due >= 0 && due < wait)
			wait = due;
		if (wait < 0)
			wait = 0;
		ready = false;
		rc = xr_conn_pump_fd(s->conn, (int)wait, xr_watch_fd(w), &ready);
		if (rc < 0)
			break;
		if (s->on_idle)
			s->on_idle(s);
		if (ready) {
			rc = xr_watch_process(w);
			if (rc < 0)
				break;
		}
		if (xr_watch_due_ms(w) == 0) {
			rc = xr_watch_take(w, &paths, &npaths, &rescan);
			if (rc < 0)
				break;
			xr_info(2, "watch: %zu changed path(s)%s", npaths, rescan ? ", rescan" : "");
			if (rescan)
				full = true;
			if (pend_add(&pend, &npend, paths, npaths) < 0)
				full = true;	/* out of memory for the names: walk it all */
			pending = true;
		}
		now = mono_ms();
		if (now >= next_reconcile) {
			pending = full = true;
			next_reconcile = now + (int64_t)o->reconcile * 1000;
		}
		if (now >= retry_at) {
			pending = full = true;
			retry_at = INT64_MAX;
		}
		if (now >= next_ka) {
			rc = xr_conn_send(s->conn, XR_MSG_KEEPALIVE, NULL, 0);
			if (rc < 0)
				break;
			next_ka = now + ka_ms;
		}
	}
	xr_watch_free_paths(pend, npend);
	if (watch_stop && rc >= 0)
		rc = 0;	/* a clean stop: the client's BYE ends the session */
	return rc;
}

int xr_sender_run(struct xr_session *s, const char *src, bool trailing_slash, int root_fd)
{
	const struct xr_opts *o = s->opts;
	struct xr_watch_opts wo;
	struct xr_watch *w = NULL;
	struct src_tree tree;
	int rc;

	memset(&tree, 0, sizeof(tree));
	tree.basefd = -1;
	if (o->watch) {
		/* watching starts before the full change set: nothing changed during it is lost */
		memset(&wo, 0, sizeof(wo));
		wo.filters = o->filters;
		wo.skip_name = XR_STATE_DIR;
		wo.quiet_ms = o->watch_quiet_ms > 0 ? (unsigned)o->watch_quiet_ms : 10;
		wo.max_delay_ms = wo.quiet_ms * 10 > 100 ? wo.quiet_ms * 10 : 100;
		rc = xr_watch_open(&w, s->watch_path ? s->watch_path : src, &wo);
		if (rc < 0) {
			xr_conn_send_error(s->conn, rc, "%s: cannot watch the source (%s)", src,
					   xr_strerror(rc));
			return rc;
		}
	}
	rc = send_cset(s, src, trailing_slash, root_fd, o->watch ? &tree : NULL);
	if (s->on_cset)
		s->on_cset(s, rc);
	if (o->watch && !(rc < 0 && session_fatal(rc)))
		rc = watch_loop(s, src, trailing_slash, root_fd, w, &tree, rc == 0 && tree.walked);
	src_tree_free(&tree);
	xr_watch_close(w);
	return rc;
}

/* receiver.c - the receiving role: plan, requests, staging, verify, commit. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xr/commit.h"
#include "xr/delta.h"
#include "xr/err.h"
#include "xr/filter.h"
#include "xr/fs.h"
#include "xr/hash.h"
#include "xr/log.h"
#include "xr/manifest.h"
#include "xr/meta.h"
#include "xr/plan.h"
#include "xr/report.h"
#include "xr/session.h"
#include "xr/wire.h"

/* Requests and signatures are produced while less than this is queued. */
#define RECV_HIGH_WATER (256u * 1024)
/* Basis files smaller than this are replaced whole: a signature costs more. */
#define DELTA_MIN_BASIS 2048u

/* One file whose data was requested. */
struct want {
	uint32_t item;		/* plan item */
	bool have_hash;
	bool skipped;		/* sender could not read it */
	struct xr_hash basis_hash;
};

/* The file currently arriving. */
struct incoming {
	bool active;
	uint8_t kind;
	int fd;			/* staged file */
	uint32_t stage_id;
	int basis_fd;
	struct xr_patch *patch;
	struct xr_hasher hash;
	uint64_t bytes;
	uint64_t limit;		/* announced size: more is a hostile or broken sender */
	double started;		/* for --progress rates */
	const char *path;	/* the file's name, for messages */
};

struct receiver {
	struct xr_session *s;
	const struct xr_opts *o;
	struct xr_manifest src, dst;
	struct xr_plan plan;
	struct xr_plan_opts po;
	struct xr_meta_opts mo;
	struct xr_dest dest;
	bool have_dest;
	bool created_root;	/* DEST did not exist: "created directory" */
	char *single_src_name;	/* "file newname": the sender's name, for reports */
	int rootfd;		/* DEST root, -1 when absent (dry run) */
	struct xr_txn *txn;
	struct want *wants;
	size_t nwants, next_req, next_resp;
	struct xr_sig_gen *sg;
	int sg_fd;
	bool req_end_sent, cset_end;
	struct incoming in;
	bool *dir_noted;	/* per src entry: directory META/MKDIR recorded */
	bool peer_failed;	/* the sender reported a fatal error */
	const char *dest_path;	/* DEST as given */
	bool incremental;	/* only the paths of scope are listed, on both sides */
	struct xr_scope scope;
	char *early_top;	/* DEST walked below this top entry while the list came */
	bool dest_opened;	/* open_dest() ran */
};

/* Seconds on the monotonic clock. */
static double mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sink for patched / whole data: write to the staged file and hash it. */
static int stage_sink(void *ctx, const void *buf, size_t len)
{
	struct incoming *in = ctx;
	int rc;

	if (len > in->limit - in->bytes) {
		xr_error("protocol error: the sender sent more data than the %llu bytes it announced",
			 (unsigned long long)in->limit);
		return XR_ESTREAM;
	}
	rc = xr_write_all(in->fd, buf, len);
	if (rc < 0) {
		xr_error("write failed on \"%s\": %s (%d)", in->path ? in->path : "?",
			 strerror(errno), errno);
		return rc;
	}
	xr_hasher_update(&in->hash, buf, len);
	in->bytes += len;
	return 0;
}

/* Whether the pause flag exists (SPEC §6): nothing is applied while it does. */
static bool pause_flag(const struct xr_opts *o)
{
	struct stat st;

	return o->pause_file && lstat(o->pause_file, &st) == 0;
}

/* Queues a RESYNC: the sender then ships a full change set. */
static int ask_resync(struct receiver *r)
{
	return xr_conn_send(r->s->conn, XR_MSG_RESYNC, NULL, 0);
}

/*
 * Waits for the first frame of the next change set.  In --watch, while
 * waiting: asks for a full change set once a held pause is lifted (checked
 * each second only while paused) and every --reconcile seconds (client
 * side), calls the session's on_idle after each wake-up; stops on SIGTERM.
 * Returns 1 with a frame, 2 when stopping, or a negative xr_err.
 */
static int wait_between_csets(struct receiver *r, uint8_t *type, const uint8_t **p, size_t *n)
{
	struct xr_session *s = r->s;
	const struct xr_opts *o = r->o;
	struct timespec ts;
	int64_t now, wait;
	int rc;

	for (;;) {
		rc = xr_conn_recv(s->conn, type, p, n);
		if (rc != 0)
			return rc;
		if (o->watch && xr_watch_stopping())
			return 2;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (o->watch && !s->is_server && o->reconcile > 0) {
			if (s->next_reconcile_ms == 0)
				s->next_reconcile_ms = now + (int64_t)o->reconcile * 1000;
			if (now >= s->next_reconcile_ms) {
				s->next_reconcile_ms = now + (int64_t)o->reconcile * 1000;
				rc = ask_resync(r);
				if (rc < 0)
					return rc;
			}
		}
		if (s->paused_pending && !pause_flag(o)) {
			s->paused_pending = false;
			xr_logfile("pause flag %s removed: catching up", o->pause_file);
			rc = ask_resync(r);
			if (rc < 0)
				return rc;
		}
		wait = o->watch ? 1000 : -1;
		rc = xr_conn_pump(s->conn, (int)wait);
		if (rc < 0)
			return rc;
		if (o->watch && s->on_idle)
			s->on_idle(s);
	}
}

/* Requests nothing of this change set and waits for its end; returns 0 or an xr_err. */
static int skip_cset(struct receiver *r)
{
	const uint8_t *p;
	size_t n;
	uint8_t type;
	int rc;

	r->req_end_sent = true;
	rc = xr_conn_send(r->s->conn, XR_MSG_REQ_END, NULL, 0);
	while (rc == 0) {
		rc = xr_conn_wait_frame(r->s->conn, &type, &p, &n);
		if (rc < 0)
			return rc;
		rc = 0;
		if (type == XR_MSG_CSET_END)
			break;
		if (type == XR_MSG_ERROR) {
			r->peer_failed = true;
			return xr_session_peer_error(r->s, p, n);
		}
		if (type != XR_MSG_KEEPALIVE && type != XR_MSG_RESYNC)
			return XR_EPROTO;
	}
	return rc;
}

/*
 * The pause flag holds this change set: no request, nothing applied; the
 * sender gets RESULT "paused" and a RESYNC follows when the flag is gone.
 */
static int hold_paused(struct receiver *r)
{
	if (!r->s->paused_pending)
		xr_logfile("paused: %s exists, holding changes", r->o->pause_file);
	r->s->paused_pending = true;
	return skip_cset(r);
}

static int open_dest(struct receiver *r, const char *dest);
static int walk_dest_top(struct receiver *r, const char *top);

/*
 * The sender named its top directory before walking the source: unless
 * paused, DEST is opened and walked below it meanwhile (both sides walk at
 * once).  Nothing is written.  Returns 0 or the xr_err of opening DEST.
 */
static int walk_early(struct receiver *r, const char *top)
{
	int rc;

	if (pause_flag(r->o) || r->dest_opened)
		return 0;
	rc = open_dest(r, r->dest_path);
	r->dest_opened = true;
	if (rc < 0)
		return rc;
	rc = walk_dest_top(r, top);
	if (rc == 1) {
		r->early_top = strdup(top);
		rc = r->early_top ? 0 : XR_ENOMEM;
	}
	return rc;
}

/* Receives CSET_BEGIN, IDMAP and FLIST frames into r->src. */
static int recv_flist(struct receiver *r)
{
	struct xr_flist_coder coder;
	const uint8_t *p;
	size_t n;
	uint8_t type;
	uint64_t v;
	char kind;
	bool begun = false;
	int rc;

	xr_flist_coder_init(&coder);
	for (;;) {
		if (!begun)
			rc = wait_between_csets(r, &type, &p, &n);
		else
			rc = xr_conn_wait_frame(r->s->conn, &type, &p, &n);
		if (rc < 0 || rc == 2)
			return rc;
		switch (type) {
		case XR_MSG_BYE:
			if (begun)
				return XR_EPROTO;
			return 2;
		case XR_MSG_CSET_BEGIN: {
			struct xr_cset_begin cb;

			rc = xr_dec_cset_begin(p, n, &cb);
			if (rc < 0 || begun) {
				xr_cset_begin_free(&cb);
				return rc < 0 ? rc : XR_EPROTO;
			}
			r->s->cset = cb.cset;
			r->incremental = cb.flags & XR_CSET_INCREMENTAL;
			begun = true;
			if (cb.top && !r->incremental)
				rc = walk_early(r, cb.top);
			xr_cset_begin_free(&cb);
			if (rc < 0)
				return rc;
			break;
		}
		case XR_MSG_SCOPE:
			if (!begun || !r->incremental || r->src.n) {
				xr_error("protocol error: a change set scope outside an incremental "
					 "change set's header");
				return XR_EPROTO;
			}
			rc = xr_dec_scope(p, n, &r->scope);
			if (rc < 0) {
				xr_error("protocol error: invalid change set scope from the sender (%s)",
					 xr_strerror(rc));
				return rc;
			}
			break;
		case XR_MSG_IDMAP:
			/* tables accumulate over frames, so the decoder's limit bounds them all */
			if (n < 1 || (p[0] != 'u' && p[0] != 'g'))
				return XR_EPROTO;
			if (p[0] == 'u')
				rc = xr_dec_idmap(p, n, &kind, &r->src.users, &r->src.nusers);
			else
				rc = xr_dec_idmap(p, n, &kind, &r->src.groups, &r->src.ngroups);
			if (rc < 0) {
				xr_error("protocol error: invalid user/group table from the sender (%s)",
					 xr_strerror(rc));
				return rc;
			}
			break;
		case XR_MSG_FLIST:
			if (!begun)
				return XR_EPROTO;
			r->s->st.flist_size += n;
			rc = xr_dec_flist(p, n, &coder, &r->src);
			if (rc < 0) {
				xr_error("protocol error: invalid file list from the sender (%s)",
					 xr_strerror(rc));
				return rc;
			}
			break;
		case XR_MSG_FLIST_END:
			rc = xr_dec_u64(p, n, &v);
			if (rc == 0 && v != r->src.n) {
				xr_error("protocol error: file list count %llu, received %zu",
					 (unsigned long long)v, r->src.n);
				rc = XR_EPROTO;
			}
			return rc;
		case XR_MSG_ERROR:
			r->peer_failed = true;
			return xr_session_peer_error(r->s, p, n);
		case XR_MSG_KEEPALIVE:
			break;
		default:
			xr_error("protocol error: unexpected message %u in the file list", type);
			return XR_EPROTO;
		}
	}
}

/*
 * The receiver enforces its own excludes whatever the sender lists (SPEC
 * §2): an entry our rules hide, or one inside a directory they hide, is
 * dropped from the sender's list, so it is neither written nor - being
 * excluded - deleted.
 */
static int drop_own_excludes(struct receiver *r)
{
	struct xr_manifest *m = &r->src;
	char hidden[XR_PATH_MAX + 2] = "";
	size_t hlen = 0, i, j = 0;

	if (r->o->filters == NULL)
		return 0;
	for (i = 0; i < m->n; i++) {
		struct xr_entry *e = &m->e[i];
		bool drop = false;

		/* inside a hidden directory ("dir/"), listed before it or (incremental) not */
		if ((hlen && !strncmp(e->path, hidden, hlen)) ||
		    (r->incremental &&
		     xr_filters_excluded_above(r->o->filters, e->path, XR_SIDE_SENDER)))
			drop = true;
		else if (strcmp(e->path, ".") != 0 &&
			 xr_filters_excluded(r->o->filters, e->path, e->type == XR_FT_DIR,
					     XR_SIDE_SENDER)) {
			drop = true;
			xr_info(2, "%s: excluded by the receiver's rules, ignored", e->path);
			if (e->type == XR_FT_DIR) {
				hlen = (size_t)snprintf(hidden, sizeof(hidden), "%s/", e->path);
			}
		}
		if (drop) {
			xr_entry_free(e);
			continue;
		}
		m->e[j++] = *e;
	}
	m->n = j;
	return 0;
}

/* The receiver's walk options. */
static void dest_walk_opts(const struct xr_opts *o, struct xr_walk_opts *wo)
{
	memset(wo, 0, sizeof(*wo));
	wo->recursive = o->recursive;
	wo->links = true;
	wo->devices = true;
	wo->checksum = o->checksum;
	wo->side = XR_WALK_RECEIVER;
	wo->skip_name = XR_STATE_DIR;
}

/*
 * Walks DEST below the top directory entry top ("." or a name) into r->dst.
 * Returns 1 when walked, 0 when there is nothing to walk that way (DEST
 * new, or top is not a directory there), or a negative xr_err.
 */
static int walk_dest_top(struct receiver *r, const char *top)
{
	struct xr_walk_opts wo;
	unsigned vanished = 0, errors = 0;
	int fd, rc;

	if (r->rootfd < 0 || r->created_root)
		return 0;
	dest_walk_opts(r->o, &wo);
	if (!strcmp(top, ".")) {
		rc = xr_walk(r->rootfd, NULL, r->o->filters, &wo, &r->dst, &vanished, &errors);
		return rc < 0 ? rc : 1;
	}
	fd = xr_fs_open(r->rootfd, top, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	rc = xr_walk(fd, top, r->o->filters, &wo, &r->dst, &vanished, &errors);
	close(fd);
	return rc < 0 ? rc : 1;
}

/*
 * An incremental change set: every entry the sender listed must lie in
 * its scope; DEST is listed for the scope only, each item whose sender
 * entry is gone or no directory with what is below it.  Returns 0, or
 * XR_EPROTO for a list that strays from its scope.
 */
static int walk_dest_scope(struct receiver *r)
{
	struct xr_walk_opts wo;
	unsigned vanished = 0, errors = 0;
	size_t i, j = 0;
	int rc;

	xr_scope_normalize(&r->scope);
	for (i = 0; i < r->src.n; i++) {
		if (!xr_scope_covers(&r->scope, r->src.e[i].path)) {
			xr_error("protocol error: %s is listed outside the change set's scope",
				 r->src.e[i].path);
			return XR_EPROTO;
		}
	}
	for (i = 0; i < r->scope.n; i++) {
		struct xr_scope_item it = r->scope.v[i];
		const struct xr_entry *se = xr_manifest_find(&r->src, it.path);

		if (!se || se->type != XR_FT_DIR)
			it.subtree = true;
		if (r->o->filters && strcmp(it.path, ".") != 0 &&
		    (xr_filters_excluded_above(r->o->filters, it.path, XR_SIDE_SENDER) ||
		     xr_filters_excluded(r->o->filters, it.path, se && se->type == XR_FT_DIR,
					 XR_SIDE_SENDER))) {
			free(it.path);	/* hidden by our own rules: neither listed nor touched */
		} else {
			r->scope.v[j++] = it;
		}
	}
	r->scope.n = j;
	xr_scope_normalize(&r->scope);
	if (r->rootfd < 0 || r->created_root)
		return 0;
	dest_walk_opts(r->o, &wo);
	rc = xr_walk_scope(r->rootfd, NULL, &r->scope, r->o->filters, &wo, &r->dst, &vanished,
			   &errors);
	xr_info(2, "incremental change set %llu: %zu scope item(s), %zu listed by the sender, "
		"%zu in DEST", (unsigned long long)r->s->cset, r->scope.n, r->src.n, r->dst.n);
	return rc;
}

/*
 * An incremental change set assumes DEST holds the directories above what
 * it lists (the last change set left them there).  Returns true when one
 * is missing (DEST drifted: someone removed it by hand).
 */
static bool dest_drifted(struct receiver *r)
{
	char parent[XR_PATH_MAX + 1], ok[XR_PATH_MAX + 1] = "";
	const struct xr_entry *pe;

	/* a directory listed by itself is one whose contents DEST has (they did not change) */
	for (size_t i = 0; i < r->scope.n; i++) {
		if (r->scope.v[i].subtree)
			continue;
		pe = xr_manifest_find(&r->dst, r->scope.v[i].path);
		if (!pe || pe->type != XR_FT_DIR) {
			xr_info(1, "%s: no directory in DEST, which the change set builds on",
				r->scope.v[i].path);
			return true;
		}
	}
	for (size_t i = 0; i < r->src.n; i++) {
		const char *path = r->src.e[i].path, *slash = strrchr(path, '/');
		int fd;

		if (!strcmp(path, "."))
			continue;
		if (slash == NULL) {
			if (r->rootfd < 0 || r->created_root)
				return true;
			continue;
		}
		memcpy(parent, path, (size_t)(slash - path));
		parent[slash - path] = '\0';
		pe = xr_manifest_find(&r->src, parent);
		if ((pe && pe->type == XR_FT_DIR) || !strcmp(parent, ok))
			continue;
		pe = xr_manifest_find(&r->dst, parent);
		if (pe && pe->type == XR_FT_DIR)
			continue;
		if (r->rootfd < 0)
			return true;
		fd = xr_fs_open(r->rootfd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
		if (fd < 0) {
			xr_info(1, "%s: missing in DEST, which the change set builds on", parent);
			return true;
		}
		close(fd);
		strcpy(ok, parent);
	}
	return false;
}

/* Walks what DEST already holds of the transfer into r->dst. */
static int walk_dest(struct receiver *r)
{
	const struct xr_opts *o = r->o;
	const struct xr_entry *top;
	struct xr_entry e;
	int fd, rc;

	if (r->early_top) {
		top = r->src.n ? &r->src.e[0] : NULL;
		if (top && top->type == XR_FT_DIR && !strcmp(top->path, r->early_top))
			return 0;	/* walked while the list came */
		xr_manifest_free(&r->dst);
	}
	if (r->incremental)
		return walk_dest_scope(r);
	if (r->rootfd < 0 || r->src.n == 0 || r->created_root)
		return 0;
	top = &r->src.e[0];
	if (top->type == XR_FT_DIR && (!strcmp(top->path, ".") || strchr(top->path, '/') == NULL)) {
		rc = walk_dest_top(r, top->path);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	/* a single name: what is there now, if anything */
	for (size_t i = 0; i < r->src.n; i++) {
		if (strchr(r->src.e[i].path, '/') != NULL)
			continue;
		memset(&e, 0, sizeof(e));
		rc = xr_entry_stat(r->rootfd, r->src.e[i].path, r->src.e[i].path, &e);
		if (rc == 0) {
			if (o->checksum && e.type == XR_FT_REG) {
				fd = xr_fs_open(r->rootfd, e.path, O_RDONLY | O_CLOEXEC, 0);
				if (fd >= 0) {
					uint64_t sz;

					e.has_hash = xr_hash_fd(fd, &e.hash, &sz) == 0;
					close(fd);
				}
			}
			rc = xr_manifest_add(&r->dst, &e);
			xr_entry_free(&e);
			if (rc < 0)
				return rc;
		}
	}
	return xr_manifest_sort(&r->dst);
}

/* Records a META for the directory containing path (once), so its mtime ends as the sender's. */
static int note_parent(struct receiver *r, const char *path)
{
	char parent[XR_PATH_MAX + 1];
	const char *slash = strrchr(path, '/');
	struct xr_entry *e;
	size_t idx;

	if (!r->o->times)
		return 0;
	if (slash == NULL) {
		if (!strcmp(path, "."))
			return 0;
		strcpy(parent, ".");
	} else {
		memcpy(parent, path, (size_t)(slash - path));
		parent[slash - path] = '\0';
	}
	e = xr_manifest_find(&r->src, parent);
	if (e == NULL || e->type != XR_FT_DIR)
		return 0;
	idx = (size_t)(e - r->src.e);
	if (r->dir_noted[idx])
		return 0;
	r->dir_noted[idx] = true;
	return r->txn ? xr_txn_meta(r->txn, e) : 0;
}

/* True when the directory at dst index i has entries below it in the walk. */
static bool dir_not_empty(const struct xr_manifest *dst, size_t i)
{
	size_t len = strlen(dst->e[i].path);

	return i + 1 < dst->n && !strncmp(dst->e[i + 1].path, dst->e[i].path, len) &&
	       dst->e[i + 1].path[len] == '/';
}

/* Records every change that needs no file data, and collects those that do. */
static int record_changes(struct receiver *r)
{
	size_t i;
	int rc = 0;

	r->wants = calloc(r->plan.n + 1, sizeof(*r->wants));
	r->dir_noted = calloc(r->src.n + 1, sizeof(bool));
	if (r->wants == NULL || r->dir_noted == NULL)
		return XR_ENOMEM;
	for (i = 0; rc == 0 && i < r->plan.n; i++) {
		struct xr_plan_item *it = &r->plan.items[i];
		struct xr_entry *e = &r->src.e[it->src];
		uint8_t old = it->dst >= 0 ? r->dst.e[it->dst].type : 0;

		if (it->act == XR_ACT_REPLACE && old == XR_FT_DIR && e->type != XR_FT_DIR &&
		    !r->o->del && dir_not_empty(&r->dst, (size_t)it->dst)) {
			/* as rsync without --delete: the directory and what is in it stay */
			if (!r->s->is_server && !r->o->quiet)
				printf("cannot delete non-empty directory: %s\n",
				       r->dst.e[it->dst].path);
			xr_logfile("cannot delete non-empty directory: %s", r->dst.e[it->dst].path);
			xr_error("could not make way for new %s: %s",
				 e->type == XR_FT_LINK ? "symlink" : "regular file", e->path);
			r->s->partial = true;
			it->itemize[0] = '\0';	/* not reported: nothing happened */
			continue;
		}
		if (it->need_data) {
			r->wants[r->nwants++].item = (uint32_t)i;
			continue;
		}
		if (r->txn == NULL)
			continue;
		if (e->type == XR_FT_DIR && it->act != XR_ACT_META && strcmp(e->path, ".") != 0) {
			rc = xr_txn_mkdir(r->txn, e, old);
			r->dir_noted[it->src] = true;
		} else if (e->type == XR_FT_DIR) {
			/* attributes only; DEST itself exists by now (xr_dest_open made it) */
			rc = xr_txn_meta(r->txn, e);
			r->dir_noted[it->src] = true;
		} else if (it->act == XR_ACT_META) {
			rc = xr_txn_meta(r->txn, e);
		} else {
			rc = xr_txn_stage_special(r->txn, e, old);
		}
		if (rc == 0 && it->act != XR_ACT_META)
			rc = note_parent(r, e->path);
	}
	for (i = 0; rc == 0 && r->txn && i < r->plan.ndel; i++) {
		const struct xr_entry *d = &r->dst.e[r->plan.deletions[i]];

		rc = xr_txn_delete(r->txn, d->path, d->type);
		if (rc == 0)
			rc = note_parent(r, d->path);
	}
	return rc;
}

/* Queues the next piece of request traffic; returns 1 when it queued something. */
static int generate(struct receiver *r)
{
	struct xr_request req;
	struct xr_buf b;
	uint8_t chunk[XR_DATA_CHUNK];
	size_t len;
	bool done;
	int rc;

	if (r->sg) {
		rc = xr_sig_gen_next(r->sg, chunk, sizeof(chunk), &len, &done);
		if (rc < 0) {
			xr_error("%s: reading the basis file failed: %s",
				 r->src.e[r->plan.items[r->wants[r->next_req].item].src].path,
				 strerror(errno));
			return rc;
		}
		if (len) {
			rc = xr_conn_send(r->s->conn, XR_MSG_SIG, chunk, len);
			if (rc < 0)
				return rc;
		}
		if (!done)
			return 1;
		xr_sig_gen_free(r->sg);
		r->sg = NULL;
		close(r->sg_fd);
		r->sg_fd = -1;
		xr_buf_init(&b);
		rc = xr_enc_u64(&b, r->plan.items[r->wants[r->next_req].item].src);
		if (rc == 0)
			rc = xr_conn_send_buf(r->s->conn, XR_MSG_SIG_END, &b);
		xr_buf_free(&b);
		r->next_req++;
		return rc < 0 ? rc : 1;
	}
	if (r->next_req < r->nwants) {
		struct want *w = &r->wants[r->next_req];
		struct xr_plan_item *it = &r->plan.items[w->item];
		const struct xr_entry *se = &r->src.e[it->src];
		const struct xr_entry *de = it->dst >= 0 ? &r->dst.e[it->dst] : NULL;
		int fd = -1;

		memset(&req, 0, sizeof(req));
		req.idx = it->src;
		if (de && de->type == XR_FT_REG && r->rootfd >= 0)
			fd = xr_fs_open(r->rootfd, de->path, O_RDONLY | O_CLOEXEC, 0);
		if (fd >= 0) {
			req.basis_size = de->size;
			if (de->size == se->size) {
				uint64_t sz;

				if (xr_hash_fd(fd, &req.basis_hash, &sz) == 0 && sz == de->size) {
					req.have_hash = true;
					w->have_hash = true;
					w->basis_hash = req.basis_hash;
				}
			}
			req.have_basis = de->size >= DELTA_MIN_BASIS && r->o->whole_file <= 0;
		}
		xr_buf_init(&b);
		rc = xr_enc_request(&b, &req);
		if (rc == 0)
			rc = xr_conn_send_buf(r->s->conn, XR_MSG_REQUEST, &b);
		xr_buf_free(&b);
		if (rc == 0 && req.have_basis) {
			rc = xr_sig_gen_begin(&r->sg, fd, de->size);
			r->sg_fd = fd;
			fd = -1;
		} else {
			r->next_req++;
		}
		if (fd >= 0)
			close(fd);
		return rc < 0 ? rc : 1;
	}
	if (!r->req_end_sent) {
		r->req_end_sent = true;
		rc = xr_conn_send(r->s->conn, XR_MSG_REQ_END, NULL, 0);
		return rc < 0 ? rc : 1;
	}
	return 0;
}

/* Releases the state of the file being received. */
static void incoming_reset(struct receiver *r, bool drop)
{
	struct incoming *in = &r->in;

	if (in->patch)
		xr_patch_free(in->patch);
	in->patch = NULL;
	if (in->basis_fd >= 0)
		close(in->basis_fd);
	in->basis_fd = -1;
	if (drop && in->fd >= 0 && r->txn)
		xr_txn_stage_drop(r->txn, in->stage_id, in->fd);
	in->fd = -1;
	xr_hasher_free(&in->hash);
	in->active = false;
	in->bytes = 0;
}

/* The want that the next FILE_* message must concern. */
static struct want *current_want(struct receiver *r, uint64_t idx)
{
	struct want *w;

	if (r->next_resp >= r->nwants || r->next_resp >= r->next_req) {
		xr_error("protocol error: file data that was not requested");
		return NULL;
	}
	w = &r->wants[r->next_resp];
	if (r->plan.items[w->item].src != idx) {
		xr_error("protocol error: file data out of order");
		return NULL;
	}
	return w;
}

/* FILE_BEGIN: opens the staged file (and the basis for a delta). */
static int file_begin(struct receiver *r, const uint8_t *p, size_t n)
{
	struct xr_file_begin fb;
	struct incoming *in = &r->in;
	struct want *w;
	struct xr_plan_item *it;
	const struct xr_entry *de;
	int rc;

	rc = xr_dec_file_begin(p, n, &fb);
	if (rc < 0)
		return rc;
	if (in->active || (w = current_want(r, fb.idx)) == NULL)
		return XR_EPROTO;
	it = &r->plan.items[w->item];
	de = it->dst >= 0 ? &r->dst.e[it->dst] : NULL;
	memset(in, 0, sizeof(*in));
	in->fd = -1;
	in->basis_fd = -1;
	in->active = true;
	in->kind = fb.kind;
	in->limit = fb.size;
	in->path = r->src.e[it->src].path;
	in->started = mono_sec();
	if (fb.kind == XR_FILE_SAME) {
		if (!w->have_hash) {
			xr_error("protocol error: 'same content' for a file without a basis hash");
			return XR_EPROTO;
		}
		return 0;
	}
	if (fb.kind != XR_FILE_WHOLE && fb.kind != XR_FILE_DELTA)
		return XR_EPROTO;
	rc = xr_hasher_init(&in->hash);
	if (rc < 0)
		return rc;
	if (r->txn) {
		rc = xr_txn_stage_open(r->txn, r->src.e[it->src].path, &in->fd, &in->stage_id);
		if (rc < 0)
			return rc;
	} else {
		in->fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (in->fd < 0)
			return XR_EFILEIO;
	}
	if (fb.kind == XR_FILE_DELTA) {
		if (de == NULL || de->type != XR_FT_REG || r->rootfd < 0) {
			xr_error("protocol error: delta for a file without a basis");
			return XR_EPROTO;
		}
		in->basis_fd = xr_fs_open(r->rootfd, de->path, O_RDONLY | O_CLOEXEC, 0);
		if (in->basis_fd < 0) {
			xr_error("%s: open basis file failed: %s", de->path, strerror(errno));
			return XR_EFILEIO;
		}
		rc = xr_patch_begin(&in->patch, in->basis_fd, de->size, stage_sink, in);
	}
	return rc;
}

/* FILE_END: verifies the content hash and stages the file's final attributes. */
static int file_end(struct receiver *r, const uint8_t *p, size_t n)
{
	struct xr_file_end fe;
	struct incoming *in = &r->in;
	struct want *w;
	struct xr_plan_item *it;
	struct xr_entry e;
	struct xr_hash got;
	int rc;

	rc = xr_dec_file_end(p, n, &fe);
	if (rc < 0)
		return rc;
	if (!in->active || (w = current_want(r, fe.idx)) == NULL)
		return XR_EPROTO;
	it = &r->plan.items[w->item];
	e = r->src.e[it->src];
	e.size = fe.size;
	e.mtime_sec = fe.mtime_sec;
	e.mtime_nsec = fe.mtime_nsec;
	if (in->kind == XR_FILE_SAME) {
		if (memcmp(&fe.hash, &w->basis_hash, sizeof(fe.hash)) != 0) {
			xr_error("protocol error: %s: 'same content' with a different hash",
				 e.path);
			return XR_EPROTO;
		}
		in->active = false;
		r->next_resp++;
		r->s->st.matched += fe.size;
		/* same bytes: only attributes change, no content travels */
		it->same_content = true;
		if (r->txn)
			rc = xr_txn_meta(r->txn, &e);
		return rc;
	}
	if (in->patch) {
		uint64_t lit, copied;

		rc = xr_patch_finish(in->patch);
		if (rc < 0) {
			xr_error("%s: the delta from the sender is corrupt", e.path);
			return rc;
		}
		xr_patch_stats(in->patch, &lit, &copied);
		r->s->st.literal += lit;
		r->s->st.matched += copied;
	}
	xr_hasher_final(&in->hash, &got);
	if (in->bytes != fe.size || memcmp(&got, &fe.hash, sizeof(got)) != 0) {
		char a[33], b[33];

		xr_hash_hex(&got, a);
		xr_hash_hex(&fe.hash, b);
		xr_error("%s: received data does not match the sender's hash "
			 "(%llu bytes, xxh3-128 %s; expected %llu bytes, %s)",
			 e.path, (unsigned long long)in->bytes, a, (unsigned long long)fe.size, b);
		return XR_ESTREAM;
	}
	if (r->txn) {
		uint8_t old = it->dst >= 0 ? r->dst.e[it->dst].type : 0;

		rc = xr_txn_stage_done(r->txn, in->stage_id, in->fd, &e, old);
		in->fd = -1;
		if (rc < 0)
			return rc;
	}
	r->s->st.files_transferred++;
	r->s->st.transferred_size += fe.size;
	if (!r->s->is_server)
		xr_report_progress(r->o, e.path, fe.size, mono_sec() - in->started,
				   r->s->st.files_transferred, r->nwants - r->next_resp - 1,
				   r->src.n);
	incoming_reset(r, false);
	r->next_resp++;
	return 0;
}

/* Handles one frame from the sender during the data phase. */
static int handle_frame(struct receiver *r, uint8_t type, const uint8_t *p, size_t n)
{
	struct xr_file_abort fa;
	struct want *w;
	int rc;

	switch (type) {
	case XR_MSG_FILE_BEGIN:
		return file_begin(r, p, n);
	case XR_MSG_FILE_DATA:
		if (!r->in.active || r->in.kind == XR_FILE_SAME)
			return XR_EPROTO;
		if (r->in.patch) {
			rc = xr_patch_feed(r->in.patch, p, n);
			if (rc == XR_ESTREAM)
				xr_error("%s: the delta from the sender is corrupt",
					 r->src.e[r->plan.items[r->wants[r->next_resp].item].src].path);
			return rc;
		}
		r->s->st.literal += n;
		return stage_sink(&r->in, p, n);
	case XR_MSG_FILE_END:
		return file_end(r, p, n);
	case XR_MSG_FILE_ABORT:
		rc = xr_dec_file_abort(p, n, &fa);
		if (rc < 0)
			return rc;
		if ((w = current_want(r, fa.idx)) == NULL)
			return XR_EPROTO;
		incoming_reset(r, true);
		if (fa.reason == XR_ABORT_RETRY)
			return 0;
		w->skipped = true;
		r->plan.items[w->item].itemize[0] = '\0';	/* not applied: not reported */
		if (fa.reason == XR_ABORT_VANISHED)
			r->s->vanished = true;
		else
			r->s->partial = true;
		r->next_resp++;
		return 0;
	case XR_MSG_CSET_END:
		if (r->next_resp != r->nwants || !r->req_end_sent || r->in.active) {
			xr_error("protocol error: change set ended with %zu of %zu files answered",
				 r->next_resp, r->nwants);
			return XR_EPROTO;
		}
		r->cset_end = true;
		return 0;
	case XR_MSG_KEEPALIVE:
		return 0;
	case XR_MSG_ERROR:
		r->peer_failed = true;
		return xr_session_peer_error(r->s, p, n);
	default:
		xr_error("protocol error: unexpected message %u from the sender", type);
		return XR_EPROTO;
	}
}

/* Runs the request/data exchange until the sender's CSET_END. */
static int exchange(struct receiver *r)
{
	const uint8_t *p;
	size_t n;
	uint8_t type;
	int rc, more = 1;

	while (!r->cset_end) {
		more = 0;
		while (xr_conn_pending(r->s->conn) < RECV_HIGH_WATER) {
			more = generate(r);
			if (more <= 0)
				break;
		}
		if (more < 0)
			return more;
		rc = xr_conn_recv(r->s->conn, &type, &p, &n);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			rc = handle_frame(r, type, p, n);
			if (rc < 0)
				return rc;
			continue;
		}
		rc = xr_conn_pump(r->s->conn, more ? 0 : 1000);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Formats the %n and %L parts of an entry for reports. */
static void item_names(const struct xr_entry *e, char *name, size_t cap, char *link, size_t lcap)
{
	snprintf(name, cap, "%s%s", !strcmp(e->path, ".") ? "." : e->path,
		 e->type == XR_FT_DIR ? "/" : "");
	if (e->type == XR_FT_LINK && e->link)
		snprintf(link, lcap, " -> %s", e->link);
	else
		link[0] = '\0';
}

/* Records a change for the client's hooks (session.h: changed); 0 or XR_ENOMEM. */
static int note_changed(struct xr_session *s, const char *itemize, const char *name)
{
	char **v = realloc(s->changed, (s->nchanged + 1) * sizeof(char *));

	if (v == NULL)
		return XR_ENOMEM;
	s->changed = v;
	if (asprintf(&v[s->nchanged], "%-11.11s%s", itemize, name) < 0)
		return XR_ENOMEM;
	s->nchanged++;
	return 0;
}

/* Reports one change locally, or as an ITEM to a client peer. */
static int report(struct receiver *r, const char *itemize, const struct xr_entry *e,
		  bool same_content)
{
	char name[XR_PATH_MAX + 8], link[XR_PATH_MAX + 8];
	char line[2 * XR_PATH_MAX + 40];
	struct xr_text t;
	struct xr_buf b;
	int rc;

	item_names(e, name, sizeof(name), link, sizeof(link));
	if (r->single_src_name && e == &r->src.e[0])
		snprintf(name, sizeof(name), "%s", r->single_src_name);
	if (!r->s->is_server) {
		xr_report_item(r->o, itemize, name, link, false);
		if (same_content) {
			/* printed as rsync does (">f..t"), but for hooks only attributes changed */
			char attr[12];

			snprintf(attr, sizeof(attr), ".%s", itemize + 1);
			return note_changed(r->s, attr, name);
		}
		return note_changed(r->s, itemize, name);
	}
	if (!r->s->peer_itemize)
		return 0;
	/* ITEM: 11 itemize chars, then the name, then "\x01" and the %L part */
	snprintf(line, sizeof(line), "%-11.11s%s%s%s", itemize, name, link[0] ? "\x01" : "",
		 link);
	t.code = 0;
	t.text = line;
	xr_buf_init(&b);
	rc = xr_enc_text(&b, &t);
	if (rc == 0)
		rc = xr_conn_send_buf(r->s->conn, XR_MSG_ITEM, &b);
	xr_buf_free(&b);
	return rc;
}

/* Reports every applied change, deletions first as rsync's --delete-delay... order. */
static int report_all(struct receiver *r)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < r->plan.ndel; i++) {
		struct xr_entry d = r->dst.e[r->plan.deletions[i]];

		d.link = NULL;	/* rsync prints "*deleting   name" without the target */
		rc = report(r, "*deleting", &d, false);
	}
	/* an empty itemize marks what was not applied (not sent, or refused) */
	for (i = 0; rc == 0 && i < r->plan.n; i++) {
		if (r->plan.items[i].itemize[0])
			rc = report(r, r->plan.items[i].itemize, &r->src.e[r->plan.items[i].src],
				    r->plan.items[i].same_content);
	}
	return rc;
}

/* Decides the DEST root: "file newname" writes the single file as newname. */
static int open_dest(struct receiver *r, const char *dest)
{
	const struct xr_opts *o = r->o;
	char *parent = NULL, *copy = NULL;
	struct stat st;
	size_t len = strlen(dest);
	bool single = !r->incremental && r->src.n == 1 && r->src.e[0].type != XR_FT_DIR;
	int recovered = 0, rc = 0;

	if (single && !(len && dest[len - 1] == '/') &&
	    !(stat(dest, &st) == 0 && S_ISDIR(st.st_mode))) {
		char *slash;

		copy = strdup(dest);
		if (copy == NULL)
			return XR_ENOMEM;
		slash = strrchr(copy, '/');
		if (slash && slash[1] == '\0') {
			rc = XR_ESELECT;
			goto out;
		}
		r->single_src_name = strdup(r->src.e[0].path);
		if (slash) {
			*slash = '\0';
			parent = strdup(slash == copy ? "/" : copy);
			free(r->src.e[0].path);
			r->src.e[0].path = strdup(slash + 1);
		} else {
			parent = strdup(".");
			free(r->src.e[0].path);
			r->src.e[0].path = strdup(copy);
		}
		if (parent == NULL || r->src.e[0].path == NULL || !xr_path_valid(r->src.e[0].path)) {
			rc = XR_ESELECT;
			goto out;
		}
		dest = parent;
	}
	if (lstat(dest, &st) < 0 && errno == ENOENT) {
		char line[XR_PATH_MAX + 32];

		size_t dl = strlen(dest);

		while (dl > 1 && dest[dl - 1] == '/')
			dl--;
		r->created_root = true;
		snprintf(line, sizeof(line), "created directory %.*s", (int)dl, dest);
		if (!r->s->is_server) {
			if ((o->itemize || o->verbose > 0) && !o->quiet)
				printf("%s\n", line);
			xr_logfile("%s", line);
		}
	}
	if (o->dry_run) {
		r->rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r->rootfd < 0 && errno != ENOENT) {
			xr_error("%s: opendir failed: %s", dest, strerror(errno));
			rc = XR_EFILEIO;
		}
		goto out;
	}
	rc = xr_dest_open(&r->dest, dest, true, &recovered);
	if (rc < 0)
		goto out;
	r->have_dest = true;
	r->rootfd = r->dest.rootfd;
	if (recovered)
		xr_warn("%s: completed an interrupted commit before this run", dest);
	rc = xr_txn_begin(&r->dest, &r->mo, &r->txn);
out:
	free(parent);
	free(copy);
	return rc;
}

/* Sends RESULT (the change set is committed or failed) to the sender. */
static int send_result(struct receiver *r, int status)
{
	struct xr_result res;
	struct xr_buf b;
	int rc;

	memset(&res, 0, sizeof(res));
	res.status = status;
	res.files_total = r->s->st.files_transferred;
	res.files_changed = r->s->st.files_created;
	res.files_deleted = r->plan.ndel;
	res.cset = r->s->cset;
	xr_buf_init(&b);
	rc = xr_enc_result(&b, &res);
	if (rc == 0)
		rc = xr_conn_send_buf(r->s->conn, XR_MSG_RESULT, &b);
	xr_buf_free(&b);
	if (rc == 0)
		rc = xr_conn_flush(r->s->conn);
	return rc;
}

/* Receives and applies one change set; returns 2 when the session ended first. */
static int receive_one(struct xr_session *s, const char *dest)
{
	const struct xr_opts *o = s->opts;
	struct receiver r;
	struct timespec t0, t1;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&s->st, 0, sizeof(s->st));
	s->vanished = s->partial = false;
	for (size_t i = 0; i < s->nchanged; i++)
		free(s->changed[i]);
	free(s->changed);
	s->changed = NULL;
	s->nchanged = 0;
	r.s = s;
	r.o = o;
	r.rootfd = -1;
	r.dest_path = dest;
	xr_scope_init(&r.scope);
	r.sg_fd = -1;
	r.in.fd = -1;
	r.in.basis_fd = -1;
	xr_manifest_init(&r.src);
	xr_manifest_init(&r.dst);
	xr_plan_init(&r.plan);
	r.mo.perms = o->perms;
	r.mo.times = o->times;
	r.mo.owner = o->owner;
	r.mo.group = o->group;
	r.mo.is_root = geteuid() == 0;
	r.mo.numeric_ids = o->numeric_ids;
	r.po.perms = o->perms;
	r.po.times = o->times;
	r.po.owner = o->owner;
	r.po.group = o->group;
	r.po.links = o->links;
	r.po.devices = o->devices || o->specials;
	r.po.checksum = o->checksum;
	r.po.del = o->del;
	r.po.delete_excluded = o->delete_excluded;
	r.po.is_root = r.mo.is_root;
	r.po.exact_times = o->watch;

	rc = recv_flist(&r);
	if (rc == 2)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (rc < 0)
		goto fail;
	if (pause_flag(o)) {
		rc = hold_paused(&r);
		if (rc == 0)
			rc = send_result(&r, XR_RESULT_PAUSED);
		if (rc == 0)
			rc = XR_RESULT_PAUSED;
		goto out;
	}
	rc = drop_own_excludes(&r);
	if (rc < 0)
		goto fail;
	xr_manifest_trim(&r.src);
	for (size_t i = 0; i < r.src.n; i++) {
		xr_meta_map_ids(&r.src, &r.mo, &r.src.e[i]);
		if (r.src.e[i].type == XR_FT_REG) {
			s->st.files_reg++;
			s->st.total_size += r.src.e[i].size;
		} else if (r.src.e[i].type != XR_FT_DIR) {
			s->st.files_other++;
		}
	}
	s->st.files_total = r.src.n;
	if (!r.dest_opened) {
		rc = open_dest(&r, dest);
		r.dest_opened = true;
		if (rc < 0)
			goto fail;
	}
	rc = walk_dest(&r);
	xr_manifest_trim(&r.dst);
	if (rc == 0 && r.incremental && dest_drifted(&r)) {
		/* apply nothing of it; a full change set repairs DEST */
		xr_logfile("%s: DEST differs from what the change set builds on: full reconcile",
			   dest);
		rc = ask_resync(&r);
		if (rc == 0)
			rc = skip_cset(&r);
		if (rc == 0)
			rc = send_result(&r, 0);
		if (rc < 0)
			goto fail;
		goto out;
	}
	if (rc == 0)
		rc = xr_plan_build(&r.src, &r.dst, o->filters, &r.po, &r.plan);
	if (rc == 0 && r.txn) {
		/* an op per item and deletion, and a META per directory whose entries change */
		size_t ndirs = 0;

		for (size_t i = 0; i < r.src.n; i++)
			ndirs += r.src.e[i].type == XR_FT_DIR;
		rc = xr_txn_reserve(r.txn, r.plan.n + r.plan.ndel + ndirs + 16);
	}
	if (rc == 0)
		rc = record_changes(&r);
	for (size_t i = 0; rc == 0 && i < r.plan.n; i++)
		if (r.plan.items[i].act == XR_ACT_CREATE || r.plan.items[i].act == XR_ACT_REPLACE)
			s->st.files_created++;
	if (rc == 0)
		rc = exchange(&r);
	if (rc < 0)
		goto fail;
	/* the file data for the sender's writes is all here: commit (or not) */
	for (size_t i = 0; i < r.nwants; i++)
		if (!r.wants[i].skipped)
			note_parent(&r, r.src.e[r.plan.items[r.wants[i].item].src].path);
	free(r.wants);	/* the commit's journal needs the memory more */
	r.wants = NULL;
	free(r.dir_noted);
	r.dir_noted = NULL;
	if (r.txn && xr_txn_count(r.txn) > 0) {
		rc = xr_txn_commit(r.txn, (const char *const *)o->commit_last);
		r.txn = NULL;
		if (rc < 0)
			goto fail;
	}
	rc = report_all(&r);
	s->st.files_deleted = r.plan.ndel;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s->st.xfer_time = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (rc == 0 && s->partial)
		rc = XR_EPARTIAL;
	else if (rc == 0 && s->vanished)
		rc = XR_EVANISHED;
	{
		int rc2 = send_result(&r, rc);

		if (rc == 0)
			rc = rc2;
	}
	goto out;
fail:
	if (rc != XR_ESOCKET && rc != XR_ETIMEOUT && !r.peer_failed)
		xr_conn_send_error(s->conn, rc, "%s: nothing changed (%s)", dest, xr_strerror(rc));
out:
	incoming_reset(&r, true);
	if (r.sg) {
		xr_sig_gen_free(r.sg);
		close(r.sg_fd);
	}
	if (r.txn)
		xr_txn_abort(r.txn);
	if (r.have_dest)
		xr_dest_close(&r.dest);
	else if (r.rootfd >= 0)
		close(r.rootfd);
	xr_plan_free(&r.plan);
	xr_manifest_free(&r.src);
	xr_manifest_free(&r.dst);
	free(r.wants);
	free(r.dir_noted);
	free(r.single_src_name);
	free(r.early_top);
	xr_scope_free(&r.scope);
	if (o->watch && !s->is_server)
		fflush(stdout);	/* a watcher's output (a log, the journal) follows each change set */
	return rc;
}

/* Errors after which a --watch session cannot continue. */
static bool r_peer_gone(int rc)
{
	return rc == XR_ESTART || rc == XR_ESSH || rc == XR_EDENIED;
}

int xr_receiver_run(struct xr_session *s, const char *dest, int root_fd)
{
	int rc, last = 0;

	(void)root_fd;	/* serve --root already made DEST the working directory */
	for (;;) {
		rc = receive_one(s, dest);
		if (rc == 2)
			return last;
		if (s->on_cset && rc != XR_RESULT_PAUSED)
			s->on_cset(s, rc);
		if (rc == XR_RESULT_PAUSED)
			rc = 0;
		if (!s->opts->watch)
			return rc;
		if (rc < 0 && (rc == XR_ESOCKET || rc == XR_ETIMEOUT || rc == XR_EPROTO ||
			       rc == XR_ELIMIT || rc == XR_ENOMEM || r_peer_gone(rc)))
			return rc;
		if (rc == 0)
			s->csets_applied++;
		last = rc;
	}
}

/*
 * xr_hostile - a misbehaving peer for the hostile-peer tests (tests/integration/hostile.sh).
 *
 * As a hostile SENDER, started by the client as its remote shell:
 *   XR_HOSTILE_MODE=dotdot xroad-replicate pull -a --delete -e xr_hostile x:/src/ DEST/
 * It is spawned as "xr_hostile [-l USER] HOST CMD" (ignored) and speaks on stdin/stdout.
 *
 * As a hostile CLIENT of a serve it starts itself:
 *   xr_hostile --client pull|push -- xroad-replicate serve --root R [--read-only]
 * "pull" asks the server to send XR_HOSTILE_PATH (with the filter rule XR_HOSTILE_RULE
 * if set) and prints what it gets ("entry: PATH TYPE", "data: PATH: TEXT"); "push" asks the
 * server to receive into XR_HOSTILE_PATH and then behaves as the sender mode
 * XR_HOSTILE_MODE.  Both print "error: CODE TEXT" for an ERROR frame and finally
 * "serve-exit: N" (or "serve-signal: N").
 *
 * Sender modes (XR_HOSTILE_MODE): ok, dotdot, absolute, dotdot-mid, symlink-parent,
 * symlink-parent-dir, nul-name, long-name, long-path, unsorted, duplicate, huge-frame,
 * varint-long, varint-overflow, truncated, unrequested, badhash, delta-past, endless,
 * bad-magic, bad-version, abs-symlink, abs-symlink-child, idmap-flood, huge-error,
 * scope-outside, scope-plain, scope-dotdot.
 * XR_HOSTILE_TARGET is the absolute path used by "absolute" and the symlink modes.
 * What the peer did is appended to the file XR_HOSTILE_LOG (one "key: value" per line):
 * "receiver-error: CODE TEXT", "eof", "result: STATUS", "endless-bytes: N",
 * "endless-stopped: yes|no", "idmap-sent: N".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xr/conn.h"
#include "xr/delta.h"
#include "xr/err.h"
#include "xr/fs.h"
#include "xr/hash.h"
#include "xr/log.h"
#include "xr/manifest.h"
#include "xr/wire.h"

#define SAFETY_SECONDS 40		/* the tool never outlives a broken test */
#define ENDLESS_CAP (64ull << 20)	/* the endless stream gives up after this */
#define IDMAP_TOTAL 1000000u
#define IDMAP_PER_FRAME 50000u
#define MTIME 1700000000

/* One entry the hostile sender lists (path may hold any bytes). */
struct spec {
	const char *path;
	size_t plen;
	uint8_t type;
	const char *data;	/* regular file content */
	size_t dlen;
	const char *link;
	int64_t mtime;
	uint64_t size;		/* announced size (defaults to dlen) */
};

/* The peer connection and what the tool was asked to do. */
struct hostile {
	struct xr_conn *c;
	int fd;			/* the stream fd (for raw bytes) */
	const char *mode;
	FILE *log;
	struct spec specs[8];
	size_t nspecs;
	char *longbuf;		/* storage for over-long names */
	bool print;		/* client mode: print what arrives on stdout */
};

/* Appends a line to XR_HOSTILE_LOG (if set). */
static void note(struct hostile *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct hostile *h, const char *fmt, ...)
{
	va_list ap;

	if (h->print) {
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
		fflush(stdout);
	}
	if (!h->log)
		return;
	va_start(ap, fmt);
	vfprintf(h->log, fmt, ap);
	va_end(ap);
	fputc('\n', h->log);
	fflush(h->log);
}

/* True when the mode is m. */
static bool is(const struct hostile *h, const char *m)
{
	return strcmp(h->mode, m) == 0;
}

/* Queues a frame built in b and writes it out; returns 0 or the error. */
static int send_buf(struct hostile *h, uint8_t type, struct xr_buf *b)
{
	int rc = xr_conn_send(h->c, type, b->p, b->len);

	if (rc == 0)
		rc = xr_conn_flush(h->c);
	return rc;
}

/* Writes raw bytes to the stream after what is queued; returns 0 or XR_ESOCKET. */
static int send_raw(struct hostile *h, const void *p, size_t n)
{
	const uint8_t *q = p;
	struct pollfd pfd;
	int rc = xr_conn_flush(h->c);

	while (rc == 0 && n > 0) {
		ssize_t w = write(h->fd, q, n);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			pfd.fd = h->fd;
			pfd.events = POLLOUT;
			poll(&pfd, 1, 1000);
			continue;
		}
		if (w <= 0)
			return XR_ESOCKET;
		q += w;
		n -= (size_t)w;
	}
	return rc;
}

/* Sends a frame with a raw payload (no checks on its content). */
static int send_raw_frame(struct hostile *h, uint8_t type, const void *p, size_t n)
{
	uint8_t hdr[5];
	uint32_t len = (uint32_t)(n + 1);
	int rc;

	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
	hdr[4] = type;
	rc = send_raw(h, hdr, sizeof(hdr));
	if (rc == 0)
		rc = send_raw(h, p, n);
	return rc;
}

/* Sends a single-varint message. */
static int send_u64(struct hostile *h, uint8_t type, uint64_t v)
{
	struct xr_buf b;
	int rc;

	xr_buf_init(&b);
	xr_put_varint(&b, v);
	rc = send_buf(h, type, &b);
	xr_buf_free(&b);
	return rc;
}

/* Logs the text of an ERROR frame (at most 200 bytes of it). */
static void note_error(struct hostile *h, const uint8_t *p, size_t n)
{
	struct xr_text t;

	if (xr_dec_text(p, n, &t) == 0) {
		note(h, "%s: %d %.200s", h->print ? "error" : "receiver-error", t.code, t.text);
		free(t.text);
	} else {
		note(h, "%s: malformed", h->print ? "error" : "receiver-error");
	}
}

/* Reads and logs frames until the peer's ERROR, RESULT or EOF; returns 0. */
static int drain(struct hostile *h)
{
	const uint8_t *p;
	struct xr_result res;
	uint8_t type;
	size_t n;
	int rc;

	for (;;) {
		rc = xr_conn_wait_frame(h->c, &type, &p, &n);
		if (rc < 0) {
			note(h, "eof");
			return 0;
		}
		if (type == XR_MSG_ERROR) {
			note_error(h, p, n);
			return 0;
		}
		if (type == XR_MSG_RESULT && xr_dec_result(p, n, &res) == 0) {
			note(h, "result: %d", res.status);
			if (h->print) {
				xr_conn_send(h->c, XR_MSG_BYE, NULL, 0);
				xr_conn_flush(h->c);
				return 0;
			}
			/* as serve: wait for the client's BYE so its last frames are not cut */
			while (xr_conn_wait_frame(h->c, &type, &p, &n) == 1 && type != XR_MSG_BYE)
				;
			return 0;
		}
	}
}

/* ---- the file list --------------------------------------------------------------------- */

/* Adds a spec; data NULL for non-files. */
static void add(struct hostile *h, const char *path, size_t plen, uint8_t type, const char *data,
		const char *link)
{
	struct spec *s = &h->specs[h->nspecs++];

	memset(s, 0, sizeof(*s));
	s->path = path;
	s->plen = plen;
	s->type = type;
	s->data = data;
	s->dlen = data ? strlen(data) : 0;
	s->size = s->dlen;
	s->link = link;
	s->mtime = MTIME + 1000;
}

/* Encodes one entry without any of the encoder's checks (shared prefix 0). */
static void put_entry_raw(struct xr_buf *b, const struct spec *s)
{
	struct xr_hash hash;
	unsigned flags = 0;

	if (s->type == XR_FT_REG)
		flags |= 1;	/* ENT_HASH */
	if (s->type == XR_FT_LINK)
		flags |= 2;	/* ENT_LINK */
	xr_put_varint(b, flags);
	xr_put_varint(b, 0);
	xr_put_blob(b, s->path, s->plen);
	xr_put_u8(b, s->type);
	xr_put_varint(b, s->type == XR_FT_DIR ? 0755 : s->type == XR_FT_LINK ? 0777 : 0644);
	xr_put_varint(b, (uint64_t)getuid());
	xr_put_varint(b, (uint64_t)getgid());
	xr_put_varint(b, s->type == XR_FT_REG ? s->size : 0);
	xr_put_svarint(b, s->mtime);
	xr_put_varint(b, 0);
	if (s->type == XR_FT_LINK)
		xr_put_str(b, s->link);
	if (s->type == XR_FT_REG) {
		xr_hash_buf(s->data, s->dlen, &hash);
		xr_put_bytes(b, hash.b, XR_HASH_LEN);
	}
}

/* The file list of each mode (entry "." first); returns false for an unknown mode. */
static bool build_specs(struct hostile *h, const char *target)
{
	static const char *const simple[][2] = {
		{"dotdot", "../escape"}, {"dotdot-mid", "a/../../x"},
		{"symlink-parent", "link/evil"}, {"badhash", "new.txt"}, {"ok", "new.txt"},
		{"unrequested", "new.txt"}, {"idmap-flood", "new.txt"},
		{"scope-outside", "new.txt"}, {"scope-plain", "new.txt"},
		{"scope-dotdot", "new.txt"},
	};
	size_t i;

	add(h, ".", 1, XR_FT_DIR, NULL, NULL);
	for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (is(h, simple[i][0])) {
			add(h, simple[i][1], strlen(simple[i][1]), XR_FT_REG, "hostile data\n", NULL);
			if (is(h, "unrequested")) {
				/* DEST holds same.txt with this size and mtime: never requested */
				add(h, "same.txt", 8, XR_FT_REG, "same\n", NULL);
				h->specs[2].mtime = MTIME;
			}
			return true;
		}
	if (is(h, "absolute")) {
		add(h, target, strlen(target), XR_FT_REG, "hostile data\n", NULL);
	} else if (is(h, "symlink-parent-dir")) {
		add(h, "link", 4, XR_FT_DIR, NULL, NULL);
		add(h, "link/evil", 9, XR_FT_REG, "hostile data\n", NULL);
	} else if (is(h, "nul-name")) {
		add(h, "a\0b", 3, XR_FT_REG, "hostile data\n", NULL);
	} else if (is(h, "long-name")) {
		h->longbuf = malloc(XR_NAME_MAX + 2);
		memset(h->longbuf, 'n', XR_NAME_MAX + 1);
		h->longbuf[XR_NAME_MAX + 1] = '\0';
		add(h, h->longbuf, XR_NAME_MAX + 1, XR_FT_REG, "hostile data\n", NULL);
	} else if (is(h, "long-path")) {
		/* 17 valid components of 250 bytes: 4266 bytes in all */
		size_t len = 17 * 251 - 1;

		h->longbuf = malloc(len + 1);
		memset(h->longbuf, 'p', len);
		for (i = 250; i < len; i += 251)
			h->longbuf[i] = '/';
		h->longbuf[len] = '\0';
		add(h, h->longbuf, len, XR_FT_REG, "hostile data\n", NULL);
	} else if (is(h, "unsorted")) {
		add(h, "b.txt", 5, XR_FT_REG, "b\n", NULL);
		add(h, "a.txt", 5, XR_FT_REG, "a\n", NULL);
	} else if (is(h, "duplicate")) {
		add(h, "a.txt", 5, XR_FT_REG, "a\n", NULL);
		add(h, "a.txt", 5, XR_FT_REG, "a\n", NULL);
	} else if (is(h, "delta-past")) {
		/* DEST holds a 4096-byte big.bin: the receiver asks with a basis */
		add(h, "big.bin", 7, XR_FT_REG, "", NULL);
		h->specs[1].size = 8192;
	} else if (is(h, "endless")) {
		add(h, "ten.txt", 7, XR_FT_REG, "0123456789", NULL);
	} else if (is(h, "abs-symlink")) {
		add(h, "lnk", 3, XR_FT_LINK, NULL, target);
	} else if (is(h, "abs-symlink-child")) {
		add(h, "lnk", 3, XR_FT_LINK, NULL, target);
		add(h, "lnk/file", 8, XR_FT_REG, "hostile data\n", NULL);
	} else if (!is(h, "huge-frame") && !is(h, "varint-long") && !is(h, "varint-overflow") &&
		   !is(h, "truncated") && !is(h, "bad-magic") && !is(h, "bad-version") &&
		   !is(h, "huge-error")) {
		return false;
	}
	return true;
}

/* Sends IDMAP frames with IDMAP_TOTAL distinct users until the peer stops reading. */
static int idmap_flood(struct hostile *h)
{
	struct xr_buf b;
	char name[32];
	uint32_t id = 100000;
	unsigned sent = 0, k;
	int rc = 0;

	xr_buf_init(&b);
	while (rc == 0 && sent < IDMAP_TOTAL) {
		xr_buf_reset(&b);
		xr_put_u8(&b, 'u');
		for (k = 0; k < IDMAP_PER_FRAME; k++, id++) {
			snprintf(name, sizeof(name), "u%u", id);
			xr_put_varint(&b, id);
			xr_put_str(&b, name);
		}
		rc = send_buf(h, XR_MSG_IDMAP, &b);
		if (rc == 0)
			sent += IDMAP_PER_FRAME;
	}
	xr_buf_free(&b);
	note(h, "idmap-sent: %u", sent);
	return rc;
}

/*
 * CSET_BEGIN and SCOPE of the scope-* modes: an incremental change set whose
 * list strays outside its scope (the list names "." and new.txt, the scope
 * only "other"), a SCOPE frame in a full change set, a scope path "../x".
 */
static int send_scope(struct hostile *h)
{
	struct xr_cset_begin cb = {0, is(h, "scope-plain") ? 0 : XR_CSET_INCREMENTAL, NULL};
	const char *path = is(h, "scope-dotdot") ? "../x" : "other";
	struct xr_buf b;
	int rc;

	xr_buf_init(&b);
	rc = xr_enc_cset_begin(&b, &cb);
	if (rc == 0)
		rc = send_buf(h, XR_MSG_CSET_BEGIN, &b);
	xr_buf_reset(&b);
	xr_put_u8(&b, 0);
	xr_put_str(&b, path);	/* raw: the encoder would refuse "../x" */
	if (rc == 0)
		rc = send_buf(h, XR_MSG_SCOPE, &b);
	xr_buf_free(&b);
	return rc;
}

/* CSET_BEGIN, the mode's IDMAP / FLIST / FLIST_END. */
static int send_flist(struct hostile *h)
{
	struct xr_buf b;
	size_t i;
	int rc;

	if (is(h, "scope-outside") || is(h, "scope-plain") || is(h, "scope-dotdot"))
		rc = send_scope(h);
	else
		rc = send_u64(h, XR_MSG_CSET_BEGIN, 0);
	if (rc == 0 && is(h, "idmap-flood"))
		rc = idmap_flood(h);
	xr_buf_init(&b);
	for (i = 0; i < h->nspecs; i++)
		put_entry_raw(&b, &h->specs[i]);
	if (rc == 0)
		rc = send_buf(h, XR_MSG_FLIST, &b);
	xr_buf_free(&b);
	if (rc == 0)
		rc = send_u64(h, XR_MSG_FLIST_END, h->nspecs);
	return rc;
}

/* ---- file data ------------------------------------------------------------------------- */

/* FILE_BEGIN announcing the size the file list gave (the receiver's cap). */
static int send_begin(struct hostile *h, uint64_t idx, uint8_t kind)
{
	struct xr_file_begin fb = {idx, kind, 5};

	if (idx < h->nspecs)
		fb.size = h->specs[idx].size ? h->specs[idx].size : h->specs[idx].dlen;
	struct xr_buf b;
	int rc;

	xr_buf_init(&b);
	rc = xr_enc_file_begin(&b, &fb);
	if (rc == 0)
		rc = send_buf(h, XR_MSG_FILE_BEGIN, &b);
	xr_buf_free(&b);
	return rc;
}

static int send_end(struct hostile *h, uint64_t idx, uint64_t size, const struct xr_hash *hash,
		    int64_t mtime)
{
	struct xr_file_end fe;
	struct xr_buf b;
	int rc;

	memset(&fe, 0, sizeof(fe));
	fe.idx = idx;
	fe.size = size;
	fe.hash = *hash;
	fe.mtime_sec = mtime;
	xr_buf_init(&b);
	rc = xr_enc_file_end(&b, &fe);
	if (rc == 0)
		rc = send_buf(h, XR_MSG_FILE_END, &b);
	xr_buf_free(&b);
	return rc;
}

/* A memfd holding n bytes of a fixed pattern; returns the fd or -1. */
static int pattern_fd(size_t n)
{
	int fd = memfd_create("xr_hostile", 0);
	uint8_t *buf = malloc(n);
	size_t i;

	if (fd < 0 || buf == NULL) {
		free(buf);
		return -1;
	}
	for (i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 7 + i / 251);
	if (xr_write_all(fd, buf, n) < 0) {
		close(fd);
		fd = -1;
	}
	free(buf);
	return fd;
}

/*
 * The delta of an 8192-byte file against a signature of itself: a COPY of
 * [0, 8192) that reaches past the receiver's 4096-byte basis.
 */
static int delta_past(struct hostile *h, uint64_t idx)
{
	struct xr_sig_gen *sg = NULL;
	struct xr_sig_load *sl = NULL;
	struct xr_delta_gen *dg = NULL;
	static uint8_t buf[XR_DATA_CHUNK];
	struct xr_hash hash;
	uint64_t size = 0;
	bool done = false;
	size_t len;
	int fd = pattern_fd(8192), rc;

	if (fd < 0)
		return XR_EFILEIO;
	rc = xr_sig_gen_begin(&sg, fd, 8192);
	if (rc == 0)
		rc = xr_sig_load_begin(&sl);
	while (rc == 0 && !done) {
		rc = xr_sig_gen_next(sg, buf, sizeof(buf), &len, &done);
		if (rc == 0 && len)
			rc = xr_sig_load_feed(sl, buf, len);
	}
	if (rc == 0)
		rc = xr_sig_load_finish(sl);
	if (rc == 0)
		rc = xr_delta_gen_begin(&dg, sl, fd);
	if (rc == 0)
		rc = send_begin(h, idx, XR_FILE_DELTA);
	done = false;
	while (rc == 0 && !done) {
		rc = xr_delta_gen_next(dg, buf, sizeof(buf), &len, &done);
		if (rc == 0 && len)
			rc = xr_conn_send(h->c, XR_MSG_FILE_DATA, buf, len);
	}
	if (rc == 0) {
		xr_delta_gen_result(dg, &hash, &size);
		rc = send_end(h, idx, size, &hash, MTIME + 1000);
	}
	xr_delta_gen_free(dg);
	xr_sig_load_free(sl);
	xr_sig_gen_free(sg);
	close(fd);
	return rc;
}

/* FILE_DATA without end for a 10-byte file; logs how far the receiver let it go. */
static int endless(struct hostile *h, uint64_t idx)
{
	static uint8_t buf[XR_DATA_CHUNK];
	const struct xr_conn_stats *st = xr_conn_stats(h->c);
	uint64_t start = st->bytes_out;
	int rc;

	memset(buf, 'E', sizeof(buf));
	rc = send_begin(h, idx, XR_FILE_WHOLE);
	while (rc == 0 && st->bytes_out - start < ENDLESS_CAP) {
		rc = xr_conn_send(h->c, XR_MSG_FILE_DATA, buf, sizeof(buf));
		while (rc == 0 && xr_conn_pending(h->c) > 4 * XR_DATA_CHUNK)
			rc = xr_conn_pump(h->c, 1000);
	}
	note(h, "endless-bytes: %llu", (unsigned long long)(st->bytes_out - start));
	note(h, "endless-stopped: %s", rc == 0 ? "no" : "yes");
	return rc == 0 ? 1 : rc;	/* not stopped: give up and close */
}

/* Answers one REQUEST as the mode says; returns 0, > 0 to quit at once, or an error. */
static int answer(struct hostile *h, const struct xr_request *req)
{
	const struct spec *s;
	struct xr_hash hash;

	if (req->idx >= h->nspecs || h->specs[req->idx].type != XR_FT_REG) {
		note(h, "bad-request: %llu", (unsigned long long)req->idx);
		return XR_EPROTO;
	}
	s = &h->specs[req->idx];
	note(h, "request: %s%s", s->path, req->have_basis ? " (basis)" : "");
	if (is(h, "delta-past"))
		return delta_past(h, req->idx);
	if (is(h, "endless"))
		return endless(h, req->idx);
	xr_hash_buf(s->data, s->dlen, &hash);
	if (is(h, "badhash"))
		hash.b[0] ^= 0xff;
	if (send_begin(h, req->idx, XR_FILE_WHOLE) < 0 ||
	    xr_conn_send(h->c, XR_MSG_FILE_DATA, s->data, s->dlen) < 0)
		return XR_ESOCKET;
	return send_end(h, req->idx, s->dlen, &hash, s->mtime);
}

/* Reads SIG frames up to SIG_END; returns 0 or an error. */
static int skip_signature(struct hostile *h)
{
	const uint8_t *p;
	uint8_t type;
	size_t n;
	int rc;

	for (;;) {
		rc = xr_conn_wait_frame(h->c, &type, &p, &n);
		if (rc < 0)
			return rc;
		if (type == XR_MSG_SIG_END)
			return 0;
		if (type == XR_MSG_ERROR) {
			note_error(h, p, n);
			return XR_EPROTO;
		}
	}
}

/* The request / data phase: answers requests, ends the change set, waits for RESULT. */
static int serve_requests(struct hostile *h)
{
	struct xr_request req;
	const uint8_t *p;
	uint8_t type;
	size_t n;
	int rc;

	for (;;) {
		rc = xr_conn_wait_frame(h->c, &type, &p, &n);
		if (rc < 0) {
			note(h, "eof");
			return 0;
		}
		switch (type) {
		case XR_MSG_REQUEST:
			if (xr_dec_request(p, n, &req) < 0)
				return XR_EPROTO;
			if (req.have_basis && skip_signature(h) < 0)
				return 0;
			rc = answer(h, &req);
			if (rc > 0)
				return 0;
			if (rc < 0)
				return drain(h);
			break;
		case XR_MSG_REQ_END:
			xr_conn_send(h->c, XR_MSG_CSET_END, NULL, 0);
			return drain(h);
		case XR_MSG_ERROR:
			note_error(h, p, n);
			return 0;
		default:
			break;
		}
	}
}

/* Everything after the handshake, as the sender. */
static int run_sender(struct hostile *h)
{
	static const uint8_t long_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					      0xff, 0xff, 0xff, 0x01};
	static const uint8_t over_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					      0xff, 0xff, 0x02};
	static const uint8_t huge_hdr[] = {0xff, 0xff, 0xff, 0xff, XR_MSG_FLIST};
	static const uint8_t trunc[] = {0, 0, 0, 100, XR_MSG_FLIST, 0, 0, 1, 'x', 2, 0};
	struct xr_hash hash;
	struct xr_buf b;
	int rc;

	if (is(h, "huge-frame")) {
		send_u64(h, XR_MSG_CSET_BEGIN, 0);
		send_raw(h, huge_hdr, sizeof(huge_hdr));
		return drain(h);
	}
	if (is(h, "varint-long") || is(h, "varint-overflow")) {
		/* an FLIST entry whose flags varint is too long / overflows 64 bits */
		send_u64(h, XR_MSG_CSET_BEGIN, 0);
		if (is(h, "varint-long"))
			send_raw_frame(h, XR_MSG_FLIST, long_varint, sizeof(long_varint));
		else
			send_raw_frame(h, XR_MSG_FLIST, over_varint, sizeof(over_varint));
		return drain(h);
	}
	if (is(h, "truncated")) {
		send_u64(h, XR_MSG_CSET_BEGIN, 0);
		send_raw(h, trunc, sizeof(trunc));
		note(h, "eof-sent");
		return 0;	/* exit: the peer sees EOF inside the frame */
	}
	if (is(h, "huge-error")) {
		size_t len = 1u << 20;
		char *text = malloc(len);

		memset(text, 'Z', len);
		xr_buf_init(&b);
		xr_put_svarint(&b, XR_EFILEIO);
		xr_put_blob(&b, text, len - 16);
		rc = send_raw_frame(h, XR_MSG_ERROR, b.p, b.len);
		xr_buf_free(&b);
		free(text);
		return rc == 0 ? drain(h) : 0;
	}
	rc = send_flist(h);
	if (rc < 0)
		return drain(h);
	if (is(h, "unrequested")) {
		/* data for same.txt (index 2), which the receiver has and never asks for */
		xr_hash_buf("same\n", 5, &hash);
		send_begin(h, 2, XR_FILE_WHOLE);
		xr_conn_send(h->c, XR_MSG_FILE_DATA, "same\n", 5);
		send_end(h, 2, 5, &hash, MTIME);
	}
	return serve_requests(h);
}

/* Receives the client's HELLO and OPTIONS, answers with the mode's HELLO. */
static int sender_handshake(struct hostile *h)
{
	struct xr_hello hello = {XR_PROTO_VERSION, XR_CAP_NSEC, (char *)"xr_hostile"};
	const uint8_t *p;
	uint8_t type;
	struct xr_buf b;
	size_t n;
	int rc, i;

	for (i = 0; i < 2; i++) {
		rc = xr_conn_wait_frame(h->c, &type, &p, &n);
		if (rc < 0)
			return rc;
	}
	if (is(h, "bad-version"))
		hello.version = 99;
	xr_buf_init(&b);
	rc = xr_enc_hello(&b, &hello);
	if (rc == 0 && is(h, "bad-magic"))
		b.p[7] = '\0';	/* "XRREPL\r\0" */
	if (rc == 0)
		rc = send_buf(h, XR_MSG_HELLO, &b);
	xr_buf_free(&b);
	return rc;
}

/* ---- client mode ----------------------------------------------------------------------- */

/* Starts argv with stdin/stdout on a socketpair; returns our end, or -1. */
static int spawn(char **argv, pid_t *pid)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	*pid = fork();
	if (*pid < 0)
		return -1;
	if (*pid == 0) {
		dup2(sv[1], 0);
		dup2(sv[1], 1);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(sv[1]);
	return sv[0];
}

/* Prints up to 60 bytes of data, escaping what is not printable. */
static void print_data(const char *path, const uint8_t *p, size_t n)
{
	size_t i;

	printf("data: %s: ", path);
	for (i = 0; i < n && i < 60; i++)
		putchar(p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' ? p[i] : '.');
	putchar('\n');
}

/* Client "pull": receives the server's list and every file's data, printing them. */
static int client_receive(struct hostile *h)
{
	struct xr_flist_coder coder;
	struct xr_manifest m;
	struct xr_request req;
	struct xr_file_begin fb;
	struct xr_buf b;
	const uint8_t *p;
	uint8_t type;
	size_t n, i, cur = 0;
	int rc;

	xr_manifest_init(&m);
	xr_flist_coder_init(&coder);
	for (;;) {
		rc = xr_conn_wait_frame(h->c, &type, &p, &n);
		if (rc < 0)
			break;
		if (type == XR_MSG_ERROR) {
			note_error(h, p, n);
			break;
		}
		if (type == XR_MSG_FLIST) {
			if (xr_dec_flist(p, n, &coder, &m) < 0) {
				printf("bad-flist\n");
				break;
			}
		} else if (type == XR_MSG_FLIST_END) {
			xr_buf_init(&b);
			for (i = 0; i < m.n; i++) {
				printf("entry: %s %u%s%s\n", m.e[i].path, m.e[i].type,
				       m.e[i].link ? " -> " : "", m.e[i].link ? m.e[i].link : "");
				if (m.e[i].type != XR_FT_REG)
					continue;
				memset(&req, 0, sizeof(req));
				req.idx = i;
				xr_buf_reset(&b);
				xr_enc_request(&b, &req);
				xr_conn_send(h->c, XR_MSG_REQUEST, b.p, b.len);
			}
			xr_buf_free(&b);
			xr_conn_send(h->c, XR_MSG_REQ_END, NULL, 0);
		} else if (type == XR_MSG_FILE_BEGIN) {
			if (xr_dec_file_begin(p, n, &fb) == 0 && fb.idx < m.n)
				cur = (size_t)fb.idx;
		} else if (type == XR_MSG_FILE_DATA && cur < m.n) {
			print_data(m.e[cur].path, p, n);
		} else if (type == XR_MSG_CSET_END) {
			struct xr_result res;

			memset(&res, 0, sizeof(res));
			xr_buf_init(&b);
			xr_enc_result(&b, &res);
			xr_conn_send(h->c, XR_MSG_RESULT, b.p, b.len);
			xr_buf_free(&b);
			xr_conn_send(h->c, XR_MSG_BYE, NULL, 0);
			xr_conn_flush(h->c);
			break;
		}
	}
	fflush(stdout);
	xr_manifest_free(&m);
	return 0;
}

/* xr_hostile --client pull|push -- PROG ARGS... */
static int client_main(struct hostile *h, const char *what, char **argv)
{
	struct xr_hello hello = {XR_PROTO_VERSION, XR_CAP_NSEC, (char *)"xr_hostile"};
	struct xr_wire_options wo;
	const char *rule = getenv("XR_HOSTILE_RULE");
	char *rules[1];
	const uint8_t *p;
	uint8_t type;
	struct xr_buf b;
	size_t n;
	pid_t pid;
	int fd, status, rc;

	h->print = true;
	fd = spawn(argv, &pid);
	if (fd < 0 || xr_conn_new_fds(&h->c, fd, fd, 0) < 0) {
		perror("xr_hostile: spawn");
		return 2;
	}
	h->fd = fd;
	memset(&wo, 0, sizeof(wo));
	wo.server_role = strcmp(what, "push") == 0 ? XR_ROLE_RECEIVER : XR_ROLE_SENDER;
	wo.flags = XR_OPT_RECURSIVE | XR_OPT_LINKS | XR_OPT_PERMS | XR_OPT_TIMES |
		   XR_OPT_TRAILING_SLASH;
	wo.path = getenv("XR_HOSTILE_PATH") ? getenv("XR_HOSTILE_PATH") : (char *)".";
	if (rule) {
		rules[0] = (char *)rule;
		wo.rules = rules;
		wo.nrules = 1;
	}
	xr_buf_init(&b);
	rc = xr_enc_hello(&b, &hello);
	if (rc == 0)
		rc = send_buf(h, XR_MSG_HELLO, &b);
	xr_buf_reset(&b);
	if (rc == 0)
		rc = xr_enc_options(&b, &wo);
	if (rc == 0)
		rc = send_buf(h, XR_MSG_OPTIONS, &b);
	xr_buf_free(&b);
	if (rc == 0)
		rc = xr_conn_wait_frame(h->c, &type, &p, &n);
	if (rc == 1 && type == XR_MSG_ERROR) {
		note_error(h, p, n);
	} else if (rc == 1 && type == XR_MSG_HELLO) {
		printf("hello\n");
		if (wo.server_role == XR_ROLE_SENDER)
			client_receive(h);
		else if (run_sender(h) < 0)
			printf("sender-failed\n");
	} else {
		printf("no-hello: %d\n", rc);
	}
	fflush(stdout);
	xr_conn_close(h->c);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		printf("serve-exit: %d\n", WEXITSTATUS(status));
	else
		printf("serve-signal: %d\n", WTERMSIG(status));
	return 0;
}

int main(int argc, char **argv)
{
	struct hostile h;
	const char *logpath = getenv("XR_HOSTILE_LOG");
	const char *target = getenv("XR_HOSTILE_TARGET");
	int rc;

	memset(&h, 0, sizeof(h));
	signal(SIGPIPE, SIG_IGN);
	alarm(SAFETY_SECONDS);
	xr_log_init(-1, "[hostile] ");
	h.mode = getenv("XR_HOSTILE_MODE") ? getenv("XR_HOSTILE_MODE") : "ok";
	h.log = logpath ? fopen(logpath, "a") : NULL;
	if (!build_specs(&h, target ? target : "/tmp/xr-hostile-target")) {
		fprintf(stderr, "xr_hostile: unknown mode %s\n", h.mode);
		return 2;
	}
	note(&h, "mode: %s", h.mode);
	if (argc >= 4 && strcmp(argv[1], "--client") == 0 && strcmp(argv[3], "--") == 0 &&
	    argc >= 5) {
		rc = client_main(&h, argv[2], argv + 4);
		goto out;
	}
	h.fd = 1;
	rc = xr_conn_new_fds(&h.c, 0, 1, 0);
	if (rc == 0)
		rc = sender_handshake(&h);
	if (rc == 0)
		rc = run_sender(&h);
	else
		note(&h, "handshake: %d", rc);
	if (is(&h, "bad-magic") || is(&h, "bad-version"))
		drain(&h);
	xr_conn_close(h.c);
	rc = 0;
out:
	if (h.log)
		fclose(h.log);
	free(h.longbuf);
	return rc;
}

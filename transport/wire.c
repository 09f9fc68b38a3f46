/* wire.c - message codec: varints, strings, and every protocol message. */
#include <stdlib.h>
#include <string.h>

#include "xr/err.h"
#include "xr/wire.h"

/*
 * Encoders append to the buffer (callers reset it between messages) and,
 * on failure, leave it as it was.  Decoders free what they allocated and
 * leave the output zeroed on failure.
 */

#define HELLO_PROGRAM_MAX 255
#define IDNAME_MAX 255
#define IDMAP_MAX 65536		/* ids per table, over all IDMAP messages */
#define NSEC_LIMIT 1000000000u

/* FLIST entry flags. */
#define ENT_HASH (1u << 0)
#define ENT_LINK (1u << 1)
#define ENT_RDEV (1u << 2)
#define ENT_KNOWN (ENT_HASH | ENT_LINK | ENT_RDEV)

/* REQUEST flags. */
#define REQ_BASIS (1u << 0)
#define REQ_HASH (1u << 1)

/* ---- output buffer ------------------------------------------------------ */

void xr_buf_init(struct xr_buf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}

/* Frees the buffer's memory and makes it empty again. */
void xr_buf_free(struct xr_buf *b)
{
	free(b->p);
	xr_buf_init(b);
}

/* Empties the buffer, keeping its memory; clears the oom flag. */
void xr_buf_reset(struct xr_buf *b)
{
	b->len = 0;
	b->oom = false;
}

/* Makes room for n more bytes; returns false (and sets oom) on failure. */
static bool buf_reserve(struct xr_buf *b, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (b->oom)
		return false;
	if (n > SIZE_MAX - b->len)
		goto fail;
	need = b->len + n;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->p, cap);
	if (!p)
		goto fail;
	b->p = p;
	b->cap = cap;
	return true;
fail:
	b->oom = true;
	return false;
}

/* Appends n raw bytes (sets oom on allocation failure). */
void xr_put_bytes(struct xr_buf *b, const void *p, size_t n)
{
	if (n == 0 || !buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Appends one byte. */
void xr_put_u8(struct xr_buf *b, uint8_t v)
{
	xr_put_bytes(b, &v, 1);
}

/* Unsigned LEB128: 7 bits per byte, low group first, high bit = more. */
void xr_put_varint(struct xr_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	xr_put_bytes(b, tmp, n);
}

/* Zigzag: 0, -1, 1, -2 ... map to 0, 1, 2, 3 ... */
void xr_put_svarint(struct xr_buf *b, int64_t v)
{
	uint64_t u = (uint64_t)v;

	xr_put_varint(b, (u << 1) ^ (v < 0 ? UINT64_MAX : 0));
}

/* Appends a varint length and then the n bytes. */
void xr_put_blob(struct xr_buf *b, const void *p, size_t n)
{
	xr_put_varint(b, n);
	xr_put_bytes(b, p, n);
}

/* A NULL string is sent as "". */
void xr_put_str(struct xr_buf *b, const char *s)
{
	if (!s)
		s = "";
	xr_put_blob(b, s, strlen(s));
}

/* ---- reader ------------------------------------------------------------- */

void xr_rd_init(struct xr_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p ? len : 0;
	r->off = 0;
	r->err = 0;
}

/* Records the first error only. */
static void rd_fail(struct xr_rd *r, int err)
{
	if (!r->err)
		r->err = err;
}

/* True if n more bytes are there; otherwise sets XR_EPROTO. */
static bool rd_have(struct xr_rd *r, size_t n)
{
	if (r->err)
		return false;
	if (n > r->len - r->off) {
		rd_fail(r, XR_EPROTO);
		return false;
	}
	return true;
}

/* Reads one byte; 0 with XR_EPROTO at the end of the payload. */
uint8_t xr_get_u8(struct xr_rd *r)
{
	if (!rd_have(r, 1))
		return 0;
	return r->p[r->off++];
}

/* Refuses more than 10 bytes, values beyond 64 bits and non-minimal forms. */
uint64_t xr_get_varint(struct xr_rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t i;

	for (i = 0; i < 10; i++) {
		uint8_t c = xr_get_u8(r);

		if (r->err)
			return 0;
		if (i == 9 && c > 1) {
			rd_fail(r, XR_EPROTO);	/* more than 64 bits */
			return 0;
		}
		v |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
		if (!(c & 0x80)) {
			if (c == 0 && i > 0) {
				rd_fail(r, XR_EPROTO);	/* non-minimal */
				return 0;
			}
			return v;
		}
	}
	rd_fail(r, XR_EPROTO);
	return 0;
}

/* Reads a zigzag-encoded signed varint. */
int64_t xr_get_svarint(struct xr_rd *r)
{
	uint64_t u = xr_get_varint(r);

	return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

/* Copies n raw bytes into out (zeroed on failure). */
void xr_get_bytes(struct xr_rd *r, void *out, size_t n)
{
	if (!rd_have(r, n)) {
		if (n)
			memset(out, 0, n);
		return;
	}
	if (n)
		memcpy(out, r->p + r->off, n);
	r->off += n;
}

/* Returns a view of a length-prefixed run of <= max bytes, or NULL (XR_ELIMIT / XR_EPROTO). */
const uint8_t *xr_get_blob(struct xr_rd *r, size_t max, size_t *n)
{
	uint64_t len = xr_get_varint(r);
	const uint8_t *p;

	*n = 0;
	if (r->err)
		return NULL;
	if (len > max) {
		rd_fail(r, XR_ELIMIT);
		return NULL;
	}
	if (!rd_have(r, (size_t)len))
		return NULL;
	p = r->p ? r->p + r->off : (const uint8_t *)"";
	r->off += (size_t)len;
	*n = (size_t)len;
	return p;
}

/* Returns a malloc'd NUL-terminated copy of a string of <= max bytes without NUL, or NULL. */
char *xr_get_str(struct xr_rd *r, size_t max)
{
	size_t n;
	const uint8_t *p = xr_get_blob(r, max, &n);
	char *s;

	if (!p)
		return NULL;
	if (memchr(p, 0, n)) {
		rd_fail(r, XR_EPROTO);
		return NULL;
	}
	s = malloc(n + 1);
	if (!s) {
		rd_fail(r, XR_ENOMEM);
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Returns the sticky error, or XR_EPROTO if bytes are left over, else 0. */
int xr_rd_end(struct xr_rd *r)
{
	if (r->err)
		return r->err;
	if (r->off != r->len)
		r->err = XR_EPROTO;
	return r->err;
}

/* Reads a varint that must fit 32 bits. */
static uint32_t get_u32(struct xr_rd *r)
{
	uint64_t v = xr_get_varint(r);

	if (v > UINT32_MAX) {
		rd_fail(r, XR_EPROTO);
		return 0;
	}
	return (uint32_t)v;
}

/* Reads a signed varint that must fit 32 bits. */
static int32_t get_s32(struct xr_rd *r)
{
	int64_t v = xr_get_svarint(r);

	if (v < INT32_MIN || v > INT32_MAX) {
		rd_fail(r, XR_EPROTO);
		return 0;
	}
	return (int32_t)v;
}

/* Finishes an encoder: XR_ENOMEM if the buffer ran out, undoing the append. */
static int enc_done(struct xr_buf *b, size_t start)
{
	if (!b->oom)
		return 0;
	b->len = start;
	return XR_ENOMEM;
}

/* Checks a string an encoder is about to send against max. */
static int enc_str_ok(const char *s, size_t max)
{
	return s && strlen(s) > max ? XR_ELIMIT : 0;
}

/* ---- HELLO -------------------------------------------------------------- */

/* HELLO: magic, varint version, varint caps, program string. */
int xr_enc_hello(struct xr_buf *b, const struct xr_hello *h)
{
	size_t start = b->len;

	if (enc_str_ok(h->program, HELLO_PROGRAM_MAX))
		return XR_ELIMIT;
	xr_put_bytes(b, XR_PROTO_MAGIC, 8);
	xr_put_varint(b, h->version);
	xr_put_varint(b, h->caps);
	xr_put_str(b, h->program);
	return enc_done(b, start);
}

/* Decodes HELLO; wrong magic is XR_EPROTO. */
int xr_dec_hello(const void *p, size_t n, struct xr_hello *h)
{
	struct xr_rd r;
	char magic[8];
	int rc;

	memset(h, 0, sizeof(*h));
	xr_rd_init(&r, p, n);
	xr_get_bytes(&r, magic, sizeof(magic));
	if (!r.err && memcmp(magic, XR_PROTO_MAGIC, sizeof(magic)) != 0)
		rd_fail(&r, XR_EPROTO);
	h->version = get_u32(&r);
	h->caps = xr_get_varint(&r);
	h->program = xr_get_str(&r, HELLO_PROGRAM_MAX);
	rc = xr_rd_end(&r);
	if (rc)
		xr_hello_free(h);
	return rc;
}

/* Frees what xr_dec_hello allocated. */
void xr_hello_free(struct xr_hello *h)
{
	free(h->program);
	memset(h, 0, sizeof(*h));
}

/* ---- OPTIONS ------------------------------------------------------------ */

/* Encodes a counted list of strings, each <= max bytes. */
static int enc_strlist(struct xr_buf *b, char *const *v, size_t n, size_t max)
{
	size_t i;

	if (n > XR_MAX_RULES)
		return XR_ELIMIT;
	for (i = 0; i < n; i++)
		if (enc_str_ok(v[i], max))
			return XR_ELIMIT;
	xr_put_varint(b, n);
	for (i = 0; i < n; i++)
		xr_put_str(b, v[i]);
	return 0;
}

/* Decodes a counted list of at most XR_MAX_RULES strings of <= max bytes. */
static void dec_strlist(struct xr_rd *r, char ***out, size_t *nout, size_t max)
{
	uint64_t n = xr_get_varint(r);
	char **v;
	size_t i;

	*out = NULL;
	*nout = 0;
	if (r->err || n == 0)
		return;
	if (n > XR_MAX_RULES) {
		rd_fail(r, XR_ELIMIT);
		return;
	}
	if (n > r->len - r->off) {	/* each string takes at least one byte */
		rd_fail(r, XR_EPROTO);
		return;
	}
	v = calloc((size_t)n, sizeof(*v));
	if (!v) {
		rd_fail(r, XR_ENOMEM);
		return;
	}
	*out = v;
	for (i = 0; i < n && !r->err; i++) {
		v[i] = xr_get_str(r, max);
		if (v[i])
			*nout = i + 1;
	}
}

/* OPTIONS: role, flags, timeout, watch quiet time, server path, rules, commit-last. */
int xr_enc_options(struct xr_buf *b, const struct xr_wire_options *o)
{
	size_t start = b->len;
	int rc;

	if (enc_str_ok(o->path, XR_PATH_MAX))
		return XR_ELIMIT;
	xr_put_u8(b, o->server_role);
	xr_put_varint(b, o->flags);
	xr_put_varint(b, o->timeout);
	xr_put_varint(b, o->watch_quiet_ms);
	xr_put_str(b, o->path);
	rc = enc_strlist(b, o->rules, o->nrules, XR_MAX_RULE_LEN);
	if (!rc)
		rc = enc_strlist(b, o->commit_last, o->ncommit_last, XR_MAX_RULE_LEN);
	if (rc) {
		b->len = start;
		return rc;
	}
	return enc_done(b, start);
}

/* Decodes OPTIONS; the path may be absolute (a server path) but has no NUL. */
int xr_dec_options(const void *p, size_t n, struct xr_wire_options *o)
{
	struct xr_rd r;
	int rc;

	memset(o, 0, sizeof(*o));
	xr_rd_init(&r, p, n);
	o->server_role = xr_get_u8(&r);
	if (!r.err && o->server_role != XR_ROLE_SENDER && o->server_role != XR_ROLE_RECEIVER)
		rd_fail(&r, XR_EPROTO);
	o->flags = get_u32(&r);
	o->timeout = get_u32(&r);
	o->watch_quiet_ms = get_u32(&r);
	o->path = xr_get_str(&r, XR_PATH_MAX);
	dec_strlist(&r, &o->rules, &o->nrules, XR_MAX_RULE_LEN);
	if (!r.err)
		dec_strlist(&r, &o->commit_last, &o->ncommit_last, XR_MAX_RULE_LEN);
	rc = xr_rd_end(&r);
	if (rc)
		xr_options_free(o);
	return rc;
}

/* Frees what xr_dec_options allocated and zeroes o. */
void xr_options_free(struct xr_wire_options *o)
{
	size_t i;

	for (i = 0; i < o->nrules; i++)
		free(o->rules[i]);
	for (i = 0; i < o->ncommit_last; i++)
		free(o->commit_last[i]);
	free(o->rules);
	free(o->commit_last);
	free(o->path);
	memset(o, 0, sizeof(*o));
}

/* ---- ERROR / LOG / ITEM ------------------------------------------------- */

/* Text: svarint code, string of <= XR_MAX_MSG_LEN bytes. */
int xr_enc_text(struct xr_buf *b, const struct xr_text *t)
{
	size_t start = b->len;

	if (enc_str_ok(t->text, XR_MAX_MSG_LEN))
		return XR_ELIMIT;
	xr_put_svarint(b, t->code);
	xr_put_str(b, t->text);
	return enc_done(b, start);
}

/* Decodes a text message; the caller frees t->text. */
int xr_dec_text(const void *p, size_t n, struct xr_text *t)
{
	struct xr_rd r;
	int rc;

	memset(t, 0, sizeof(*t));
	xr_rd_init(&r, p, n);
	t->code = get_s32(&r);
	t->text = xr_get_str(&r, XR_MAX_MSG_LEN);
	rc = xr_rd_end(&r);
	if (rc) {
		free(t->text);
		t->text = NULL;
		t->code = 0;
	}
	return rc;
}

/* ---- IDMAP -------------------------------------------------------------- */

/* IDMAP: kind byte, then (varint id, name) pairs to the end of the payload. */
int xr_enc_idmap(struct xr_buf *b, char kind, const struct xr_idname *ids, size_t n)
{
	size_t start = b->len, i;

	if (kind != 'u' && kind != 'g')
		return XR_EPROTO;
	if (n > IDMAP_MAX)
		return XR_ELIMIT;
	for (i = 0; i < n; i++)
		if (!ids[i].name || !ids[i].name[0] || strlen(ids[i].name) > IDNAME_MAX)
			return XR_ELIMIT;
	xr_put_u8(b, (uint8_t)kind);
	for (i = 0; i < n; i++) {
		xr_put_varint(b, ids[i].id);
		xr_put_str(b, ids[i].name);
	}
	return enc_done(b, start);
}

/* qsort order of id/name pairs: by id. */
static int idname_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct xr_idname *)a)->id, y = ((const struct xr_idname *)b)->id;

	return (x > y) - (x < y);
}

/* True if id is in the sorted v[0..n). */
static bool idmap_has(const struct xr_idname *v, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].id == id)
			return true;
		if (v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * Merges the k new pairs at v[n0..n0+k) into v[0..n0) so that the table is
 * sorted by id; returns XR_EPROTO on a duplicate id (nothing merged then)
 * or XR_ENOMEM.
 */
static int idmap_merge(struct xr_idname *v, size_t n0, size_t k)
{
	struct xr_idname *tail, *tmp;
	size_t i, j, o;

	if (k == 0)
		return 0;
	tail = v + n0;
	qsort(tail, k, sizeof(*tail), idname_cmp);
	for (i = 1; i < k; i++)
		if (tail[i - 1].id == tail[i].id)
			return XR_EPROTO;
	for (i = 1; i < n0; i++)
		if (v[i - 1].id > v[i].id)	/* a table not built by us */
			break;
	if (i < n0)
		qsort(v, n0, sizeof(*v), idname_cmp);
	for (i = 0; i < k; i++)
		if (idmap_has(v, n0, tail[i].id))
			return XR_EPROTO;
	if (n0 == 0 || v[n0 - 1].id < tail[0].id)
		return 0;
	tmp = malloc(k * sizeof(*tmp));
	if (!tmp)
		return XR_ENOMEM;
	memcpy(tmp, tail, k * sizeof(*tmp));
	i = n0;
	j = k;
	o = n0 + k;
	while (j > 0) {		/* merge from the back */
		if (i > 0 && v[i - 1].id > tmp[j - 1].id)
			v[--o] = v[--i];
		else
			v[--o] = tmp[--j];
	}
	free(tmp);
	return 0;
}

/* Decodes IDMAP, appending to *ids (kept sorted by id); on error nothing is appended. */
int xr_dec_idmap(const void *p, size_t n, char *kind, struct xr_idname **ids, size_t *count)
{
	struct xr_rd r;
	struct xr_idname *v = *ids, *nv;
	size_t n0 = *count, k = 0, cap = n0, i;
	int rc;

	xr_rd_init(&r, p, n);
	*kind = (char)xr_get_u8(&r);
	if (!r.err && *kind != 'u' && *kind != 'g')
		rd_fail(&r, XR_EPROTO);
	while (!r.err && r.off < r.len) {
		uint32_t id = get_u32(&r);
		char *name = xr_get_str(&r, IDNAME_MAX);

		if (!name)
			break;
		if (!name[0]) {
			free(name);
			rd_fail(&r, XR_EPROTO);
			break;
		}
		if (n0 + k >= IDMAP_MAX) {
			free(name);
			rd_fail(&r, XR_ELIMIT);
			break;
		}
		if (n0 + k == cap) {
			size_t nc = cap < 16 ? 16 : cap * 2;

			nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				free(name);
				rd_fail(&r, XR_ENOMEM);
				break;
			}
			v = nv;
			cap = nc;
			*ids = v;
		}
		v[n0 + k].id = id;
		v[n0 + k].name = name;
		k++;
	}
	rc = xr_rd_end(&r);
	if (!rc)
		rc = idmap_merge(v, n0, k);
	if (rc) {
		for (i = 0; i < k; i++)
			free(v[n0 + i].name);
		return rc;
	}
	*count = n0 + k;
	return 0;
}

/* ---- FLIST -------------------------------------------------------------- */

void xr_flist_coder_init(struct xr_flist_coder *c)
{
	c->prev[0] = '\0';
}

/* True for a member of enum xr_ftype. */
static bool ftype_known(uint8_t t)
{
	return t >= XR_FT_REG && t <= XR_FT_SOCK;
}

/* True for device types (which carry rdev). */
static bool ftype_dev(uint8_t t)
{
	return t == XR_FT_CHR || t == XR_FT_BLK;
}

/*
 * Appends one entry, its path prefix-compressed against the previous one.
 * The path must be valid and sort after the previous path (XR_EPROTO), the
 * link target <= XR_PATH_MAX (XR_ELIMIT); mode is masked to 07777, the
 * hash is sent for regular files only and rdev for devices only.
 */
int xr_enc_entry(struct xr_buf *b, struct xr_flist_coder *c, const struct xr_entry *e)
{
	size_t start = b->len, shared = 0, plen;
	unsigned flags = 0;

	if (!e->path || !ftype_known(e->type) || e->mtime_nsec >= NSEC_LIMIT)
		return XR_EPROTO;
	plen = strlen(e->path);
	if (plen > XR_PATH_MAX)
		return XR_ELIMIT;
	if (!xr_path_valid(e->path) || (c->prev[0] && xr_path_cmp(c->prev, e->path) >= 0))
		return XR_EPROTO;
	if (e->type == XR_FT_LINK) {
		if (!e->link || !e->link[0])
			return XR_EPROTO;
		if (strlen(e->link) > XR_PATH_MAX)
			return XR_ELIMIT;
		flags |= ENT_LINK;
	}
	if (e->type == XR_FT_REG && e->has_hash)
		flags |= ENT_HASH;
	if (ftype_dev(e->type) && e->rdev)
		flags |= ENT_RDEV;
	while (c->prev[shared] && c->prev[shared] == e->path[shared])
		shared++;
	xr_put_varint(b, flags);
	xr_put_varint(b, shared);
	xr_put_blob(b, e->path + shared, plen - shared);
	xr_put_u8(b, e->type);
	xr_put_varint(b, e->mode & 07777);
	xr_put_varint(b, e->uid);
	xr_put_varint(b, e->gid);
	xr_put_varint(b, e->size);
	xr_put_svarint(b, e->mtime_sec);
	xr_put_varint(b, e->mtime_nsec);
	if (flags & ENT_RDEV)
		xr_put_varint(b, e->rdev);
	if (flags & ENT_LINK)
		xr_put_str(b, e->link);
	if (flags & ENT_HASH)
		xr_put_bytes(b, e->hash.b, XR_HASH_LEN);
	if (b->oom)
		return enc_done(b, start);
	memcpy(c->prev, e->path, plen + 1);
	return 0;
}

/* Decodes one entry into e (path in pathbuf, link malloc'd) and checks it. */
static void dec_entry(struct xr_rd *r, const char *prev, char *pathbuf, struct xr_entry *e)
{
	uint64_t flags, shared, mode;
	size_t slen;
	const uint8_t *suffix;

	memset(e, 0, sizeof(*e));
	flags = xr_get_varint(r);
	if (!r->err && (flags & ~(uint64_t)ENT_KNOWN))
		rd_fail(r, XR_EPROTO);
	shared = xr_get_varint(r);
	if (!r->err && shared > strlen(prev))
		rd_fail(r, XR_EPROTO);
	suffix = xr_get_blob(r, XR_PATH_MAX, &slen);
	if (r->err)
		return;
	if (shared + slen > XR_PATH_MAX) {
		rd_fail(r, XR_ELIMIT);
		return;
	}
	memcpy(pathbuf, prev, (size_t)shared);
	memcpy(pathbuf + shared, suffix, slen);
	pathbuf[shared + slen] = '\0';
	/* "" (start of a change set) precedes everything, even "." */
	if (memchr(suffix, 0, slen) || !xr_path_valid(pathbuf) ||
	    (prev[0] && xr_path_cmp(prev, pathbuf) >= 0)) {
		rd_fail(r, XR_EPROTO);
		return;
	}
	e->path = pathbuf;
	e->type = xr_get_u8(r);
	mode = xr_get_varint(r);
	e->uid = get_u32(r);
	e->gid = get_u32(r);
	e->size = xr_get_varint(r);
	e->mtime_sec = xr_get_svarint(r);
	e->mtime_nsec = get_u32(r);
	if (r->err)
		return;
	if (!ftype_known(e->type) || mode > 07777 || e->mtime_nsec >= NSEC_LIMIT ||
	    ((flags & ENT_HASH) && e->type != XR_FT_REG) ||
	    ((flags & ENT_RDEV) && !ftype_dev(e->type)) ||
	    (!(flags & ENT_LINK) != (e->type != XR_FT_LINK))) {
		rd_fail(r, XR_EPROTO);
		return;
	}
	e->mode = (uint32_t)mode;
	if (flags & ENT_RDEV)
		e->rdev = xr_get_varint(r);
	if (flags & ENT_LINK) {
		e->link = xr_get_str(r, XR_PATH_MAX);
		if (e->link && !e->link[0])
			rd_fail(r, XR_EPROTO);
	}
	if (flags & ENT_HASH) {
		xr_get_bytes(r, e->hash.b, XR_HASH_LEN);
		e->has_hash = true;
	}
}

/*
 * Decodes a whole FLIST payload, appending to m and advancing c->prev.
 * On error m and c are left as they were.
 */
int xr_dec_flist(const void *p, size_t n, struct xr_flist_coder *c, struct xr_manifest *m)
{
	struct xr_rd r;
	struct xr_entry e;
	size_t n0 = m->n;
	char *pathbuf = NULL, *prev = NULL, *tmp;
	int rc = XR_ENOMEM;

	pathbuf = malloc(XR_PATH_MAX + 1);
	prev = malloc(XR_PATH_MAX + 1);
	if (!pathbuf || !prev)
		goto out;
	memcpy(prev, c->prev, strlen(c->prev) + 1);
	xr_rd_init(&r, p, n);
	while (!r.err && r.off < r.len) {
		dec_entry(&r, prev, pathbuf, &e);
		if (!r.err)
			rd_fail(&r, xr_manifest_add(m, &e));
		free(e.link);
		tmp = prev;
		prev = pathbuf;
		pathbuf = tmp;
	}
	rc = xr_rd_end(&r);
	if (rc) {
		while (m->n > n0)
			xr_entry_free(&m->e[--m->n]);
		goto out;
	}
	if (m->n > n0)
		memcpy(c->prev, prev, strlen(prev) + 1);
out:
	free(pathbuf);
	free(prev);
	return rc;
}

/* ---- small fixed messages ----------------------------------------------- */

/* REQUEST: varint idx, flag byte, varint basis size, [hash]. */
int xr_enc_request(struct xr_buf *b, const struct xr_request *r)
{
	size_t start = b->len;
	uint8_t flags = (uint8_t)((r->have_basis ? REQ_BASIS : 0) | (r->have_hash ? REQ_HASH : 0));

	xr_put_varint(b, r->idx);
	xr_put_u8(b, flags);
	xr_put_varint(b, r->basis_size);
	if (r->have_hash)
		xr_put_bytes(b, r->basis_hash.b, XR_HASH_LEN);
	return enc_done(b, start);
}

/* Decodes REQUEST; unknown flag bits are XR_EPROTO. */
int xr_dec_request(const void *p, size_t n, struct xr_request *q)
{
	struct xr_rd r;
	uint8_t flags;

	memset(q, 0, sizeof(*q));
	xr_rd_init(&r, p, n);
	q->idx = xr_get_varint(&r);
	flags = xr_get_u8(&r);
	if (flags & ~(REQ_BASIS | REQ_HASH))
		rd_fail(&r, XR_EPROTO);
	q->have_basis = flags & REQ_BASIS;
	q->have_hash = flags & REQ_HASH;
	q->basis_size = xr_get_varint(&r);
	if (q->have_hash)
		xr_get_bytes(&r, q->basis_hash.b, XR_HASH_LEN);
	if (xr_rd_end(&r)) {
		memset(q, 0, sizeof(*q));
		return r.err;
	}
	return 0;
}

/* FILE_BEGIN: varint idx, kind byte. */
int xr_enc_file_begin(struct xr_buf *b, const struct xr_file_begin *f)
{
	size_t start = b->len;

	if (f->kind < XR_FILE_WHOLE || f->kind > XR_FILE_SAME)
		return XR_EPROTO;
	xr_put_varint(b, f->idx);
	xr_put_u8(b, f->kind);
	xr_put_varint(b, f->size);
	return enc_done(b, start);
}

/* Decodes FILE_BEGIN; an unknown kind is XR_EPROTO. */
int xr_dec_file_begin(const void *p, size_t n, struct xr_file_begin *f)
{
	struct xr_rd r;

	memset(f, 0, sizeof(*f));
	xr_rd_init(&r, p, n);
	f->idx = xr_get_varint(&r);
	f->kind = xr_get_u8(&r);
	f->size = xr_get_varint(&r);
	if (!r.err && (f->kind < XR_FILE_WHOLE || f->kind > XR_FILE_SAME))
		rd_fail(&r, XR_EPROTO);
	if (xr_rd_end(&r)) {
		memset(f, 0, sizeof(*f));
		return r.err;
	}
	return 0;
}

/* FILE_END: varint idx, varint size, hash, svarint sec, varint nsec. */
int xr_enc_file_end(struct xr_buf *b, const struct xr_file_end *f)
{
	size_t start = b->len;

	if (f->mtime_nsec >= NSEC_LIMIT)
		return XR_EPROTO;
	xr_put_varint(b, f->idx);
	xr_put_varint(b, f->size);
	xr_put_bytes(b, f->hash.b, XR_HASH_LEN);
	xr_put_svarint(b, f->mtime_sec);
	xr_put_varint(b, f->mtime_nsec);
	return enc_done(b, start);
}

/* Decodes FILE_END; nsec >= 1e9 is XR_EPROTO. */
int xr_dec_file_end(const void *p, size_t n, struct xr_file_end *f)
{
	struct xr_rd r;

	memset(f, 0, sizeof(*f));
	xr_rd_init(&r, p, n);
	f->idx = xr_get_varint(&r);
	f->size = xr_get_varint(&r);
	xr_get_bytes(&r, f->hash.b, XR_HASH_LEN);
	f->mtime_sec = xr_get_svarint(&r);
	f->mtime_nsec = get_u32(&r);
	if (!r.err && f->mtime_nsec >= NSEC_LIMIT)
		rd_fail(&r, XR_EPROTO);
	if (xr_rd_end(&r)) {
		memset(f, 0, sizeof(*f));
		return r.err;
	}
	return 0;
}

/* FILE_ABORT: varint idx, reason byte. */
int xr_enc_file_abort(struct xr_buf *b, const struct xr_file_abort *f)
{
	size_t start = b->len;

	if (f->reason < XR_ABORT_VANISHED || f->reason > XR_ABORT_RETRY)
		return XR_EPROTO;
	xr_put_varint(b, f->idx);
	xr_put_u8(b, f->reason);
	return enc_done(b, start);
}

/* Decodes FILE_ABORT; an unknown reason is XR_EPROTO. */
int xr_dec_file_abort(const void *p, size_t n, struct xr_file_abort *f)
{
	struct xr_rd r;

	memset(f, 0, sizeof(*f));
	xr_rd_init(&r, p, n);
	f->idx = xr_get_varint(&r);
	f->reason = xr_get_u8(&r);
	if (!r.err && (f->reason < XR_ABORT_VANISHED || f->reason > XR_ABORT_RETRY))
		rd_fail(&r, XR_EPROTO);
	if (xr_rd_end(&r)) {
		memset(f, 0, sizeof(*f));
		return r.err;
	}
	return 0;
}

/* A payload of one varint. */
int xr_enc_u64(struct xr_buf *b, uint64_t v)
{
	size_t start = b->len;

	xr_put_varint(b, v);
	return enc_done(b, start);
}

/* CSET_BEGIN: varint cset [varint flags [string top]]. */
int xr_enc_cset_begin(struct xr_buf *b, const struct xr_cset_begin *c)
{
	size_t start = b->len;

	if (c->flags & ~(uint64_t)(XR_CSET_INCREMENTAL | XR_CSET_TOP))
		return XR_EPROTO;
	if ((c->flags & XR_CSET_TOP) &&
	    (!c->top || strlen(c->top) > XR_NAME_MAX || strchr(c->top, '/') ||
	     (strcmp(c->top, ".") && !xr_path_valid(c->top))))
		return XR_ELIMIT;
	xr_put_varint(b, c->cset);
	if (c->flags) {
		xr_put_varint(b, c->flags);
		if (c->flags & XR_CSET_TOP)
			xr_put_str(b, c->top);
	}
	return enc_done(b, start);
}

/* Decodes CSET_BEGIN; the short form (a bare number) has no flags. */
int xr_dec_cset_begin(const void *p, size_t n, struct xr_cset_begin *c)
{
	struct xr_rd r;

	memset(c, 0, sizeof(*c));
	xr_rd_init(&r, p, n);
	c->cset = xr_get_varint(&r);
	if (!r.err && r.off < r.len) {
		c->flags = xr_get_varint(&r);
		if (!r.err && (c->flags & ~(uint64_t)(XR_CSET_INCREMENTAL | XR_CSET_TOP)))
			rd_fail(&r, XR_EPROTO);
		if (!r.err && (c->flags & XR_CSET_TOP)) {
			c->top = xr_get_str(&r, XR_NAME_MAX);
			if (c->top && (strchr(c->top, '/') ||
				       (strcmp(c->top, ".") && !xr_path_valid(c->top))))
				rd_fail(&r, XR_EPROTO);
		}
	}
	if (xr_rd_end(&r)) {
		xr_cset_begin_free(c);
		return r.err;
	}
	return 0;
}

void xr_cset_begin_free(struct xr_cset_begin *c)
{
	free(c->top);
	c->top = NULL;
}

/* One SCOPE item: u8 flags, string path. */
int xr_enc_scope_item(struct xr_buf *b, const struct xr_scope_item *it)
{
	size_t start = b->len;

	if (strlen(it->path) >= XR_PATH_MAX || (strcmp(it->path, ".") && !xr_path_valid(it->path)))
		return XR_ELIMIT;	/* what the decoder would refuse */
	xr_put_u8(b, it->subtree ? XR_SCOPE_SUBTREE : 0);
	xr_put_str(b, it->path);
	return enc_done(b, start);
}

/* Decodes every item of a SCOPE payload into sc. */
int xr_dec_scope(const void *p, size_t n, struct xr_scope *sc)
{
	struct xr_rd r;

	xr_rd_init(&r, p, n);
	while (!r.err && r.off < r.len) {
		uint8_t fl = xr_get_u8(&r);
		char *path;

		if (!r.err && (fl & ~XR_SCOPE_SUBTREE))
			rd_fail(&r, XR_EPROTO);
		if (!r.err && sc->n >= XR_MAX_SCOPE)
			rd_fail(&r, XR_ELIMIT);
		path = r.err ? NULL : xr_get_str(&r, XR_PATH_MAX);
		if (path && strcmp(path, ".") && !xr_path_valid(path))
			rd_fail(&r, XR_EPROTO);
		if (path && !r.err)
			rd_fail(&r, xr_scope_add(sc, path, fl & XR_SCOPE_SUBTREE));
		free(path);
	}
	if (r.err == 0 && n == 0)
		rd_fail(&r, XR_EPROTO);	/* an empty frame says nothing */
	return xr_rd_end(&r);
}

/* Decodes a one-varint payload. */
int xr_dec_u64(const void *p, size_t n, uint64_t *v)
{
	struct xr_rd r;

	xr_rd_init(&r, p, n);
	*v = xr_get_varint(&r);
	if (xr_rd_end(&r)) {
		*v = 0;
		return r.err;
	}
	return 0;
}

/* RESULT: svarint status, then seven varint counters. */
int xr_enc_result(struct xr_buf *b, const struct xr_result *q)
{
	size_t start = b->len;

	xr_put_svarint(b, q->status);
	xr_put_varint(b, q->files_total);
	xr_put_varint(b, q->files_changed);
	xr_put_varint(b, q->files_deleted);
	xr_put_varint(b, q->bytes_literal);
	xr_put_varint(b, q->bytes_matched);
	xr_put_varint(b, q->total_size);
	xr_put_varint(b, q->cset);
	return enc_done(b, start);
}

/* Decodes RESULT; a status outside 32 bits is XR_EPROTO. */
int xr_dec_result(const void *p, size_t n, struct xr_result *q)
{
	struct xr_rd r;

	memset(q, 0, sizeof(*q));
	xr_rd_init(&r, p, n);
	q->status = get_s32(&r);
	q->files_total = xr_get_varint(&r);
	q->files_changed = xr_get_varint(&r);
	q->files_deleted = xr_get_varint(&r);
	q->bytes_literal = xr_get_varint(&r);
	q->bytes_matched = xr_get_varint(&r);
	q->total_size = xr_get_varint(&r);
	q->cset = xr_get_varint(&r);
	if (xr_rd_end(&r)) {
		memset(q, 0, sizeof(*q));
		return r.err;
	}
	return 0;
}

/* wire.h - message codec: typed frames with hard size limits. */
#ifndef XR_WIRE_H
#define XR_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xr/hash.h"
#include "xr/manifest.h"

/*
 * A frame is   u32 length (big-endian; counts type byte + payload)
 *              u8  type (enum xr_msg; bit 0x80 = payload is zlib-compressed)
 *              payload
 * and length - 1 <= XR_FRAME_MAX.  Integers inside payloads are unsigned
 * LEB128 varints (at most 10 bytes, value must fit 64 bits), signed ones
 * zigzag-encoded; strings and byte runs are a varint length then the bytes.
 * Every decoder checks every length against what remains and against the
 * limits below, and fails with XR_EPROTO (malformed) or XR_ELIMIT.
 *
 * Session shape (one connection may carry many change sets):
 *   client -> server  HELLO, OPTIONS
 *   server -> client  HELLO            (or ERROR and close)
 *   then per change set, sender -> receiver:
 *     CSET_BEGIN, SCOPE* (incremental only), IDMAP*, FLIST*, FLIST_END
 *   receiver -> sender: (REQUEST [SIG* SIG_END])* REQ_END
 *   sender -> receiver: for each request, in order:
 *     FILE_BEGIN, FILE_DATA*, FILE_END   or FILE_ABORT (then maybe again)
 *     ... CSET_END
 *   receiver -> sender: ITEM* (itemized changes, for the client's output),
 *     RESULT (status + counters; the commit has happened or failed)
 *   KEEPALIVE any time; ERROR is fatal; BYE closes cleanly.
 */

#define XR_PROTO_MAGIC "XRREPL\r\n"	/* 8 bytes */
#define XR_PROTO_VERSION 1
#define XR_FRAME_MAX (1u << 20)		/* payload bytes */
#define XR_DATA_CHUNK (64u * 1024)	/* FILE_DATA / SIG payload the sender produces */
#define XR_MAX_RULES 10000
#define XR_MAX_RULE_LEN 4096
#define XR_MAX_MSG_LEN 8192		/* ERROR / LOG / ITEM text */

/* Capability bits negotiated in HELLO (the intersection is used). */
#define XR_CAP_ZLIB (1u << 0)
#define XR_CAP_WATCH (1u << 1)
#define XR_CAP_NSEC (1u << 2)
#define XR_CAP_INCREMENTAL (1u << 3)	/* CSET_BEGIN flags, SCOPE: incremental change sets */

enum xr_msg {
	XR_MSG_HELLO = 1,
	XR_MSG_OPTIONS = 2,
	XR_MSG_ERROR = 3,
	XR_MSG_LOG = 4,
	XR_MSG_CSET_BEGIN = 10,
	XR_MSG_IDMAP = 11,
	XR_MSG_FLIST = 12,
	XR_MSG_FLIST_END = 13,
	XR_MSG_SCOPE = 14,	/* incremental change set: the paths it covers */
	XR_MSG_REQUEST = 20,
	XR_MSG_SIG = 21,
	XR_MSG_SIG_END = 22,
	XR_MSG_FILE_BEGIN = 23,
	XR_MSG_FILE_DATA = 24,
	XR_MSG_FILE_END = 25,
	XR_MSG_FILE_ABORT = 26,
	XR_MSG_REQ_END = 27,
	XR_MSG_CSET_END = 28,
	XR_MSG_RESYNC = 29,	/* receiver -> sender: send a full change set (after a pause) */
	XR_MSG_ITEM = 30,
	XR_MSG_RESULT = 31,
	XR_MSG_KEEPALIVE = 40,
	XR_MSG_BYE = 41,
};
#define XR_MSG_COMPRESSED 0x80u

/* Growable output buffer. */
struct xr_buf {
	uint8_t *p;
	size_t len, cap;
	bool oom;		/* an append failed; encoders then return XR_ENOMEM */
};
void xr_buf_init(struct xr_buf *b);
void xr_buf_free(struct xr_buf *b);
void xr_buf_reset(struct xr_buf *b);
void xr_put_u8(struct xr_buf *b, uint8_t v);
void xr_put_varint(struct xr_buf *b, uint64_t v);
void xr_put_svarint(struct xr_buf *b, int64_t v);
void xr_put_bytes(struct xr_buf *b, const void *p, size_t n);	/* raw, no length */
void xr_put_str(struct xr_buf *b, const char *s);			/* varint len + bytes */
void xr_put_blob(struct xr_buf *b, const void *p, size_t n);	/* varint len + bytes */

/* Bounds-checked reader over a payload; any failure sets err and sticks. */
struct xr_rd {
	const uint8_t *p;
	size_t len, off;
	int err;		/* 0 or XR_EPROTO / XR_ELIMIT */
};
void xr_rd_init(struct xr_rd *r, const void *p, size_t len);
uint8_t xr_get_u8(struct xr_rd *r);
uint64_t xr_get_varint(struct xr_rd *r);
int64_t xr_get_svarint(struct xr_rd *r);
void xr_get_bytes(struct xr_rd *r, void *out, size_t n);
/* String of at most max bytes without NUL; returns malloc'd copy or NULL (err set). */
char *xr_get_str(struct xr_rd *r, size_t max);
/* Blob view (no copy) of at most max bytes. */
const uint8_t *xr_get_blob(struct xr_rd *r, size_t max, size_t *n);
/* XR_EPROTO unless the whole payload was consumed without error. */
int xr_rd_end(struct xr_rd *r);

/* ---- messages ---------------------------------------------------------- */

struct xr_hello {
	uint32_t version;
	uint64_t caps;
	char *program;		/* "xroad-replicate 0.1.0" */
};
int xr_enc_hello(struct xr_buf *b, const struct xr_hello *h);
int xr_dec_hello(const void *p, size_t n, struct xr_hello *h);
void xr_hello_free(struct xr_hello *h);

/* Flags of OPTIONS (what the client asks the server to do). */
#define XR_OPT_RECURSIVE (1u << 0)
#define XR_OPT_LINKS (1u << 1)
#define XR_OPT_PERMS (1u << 2)
#define XR_OPT_TIMES (1u << 3)
#define XR_OPT_GROUP (1u << 4)
#define XR_OPT_OWNER (1u << 5)
#define XR_OPT_DEVICES (1u << 6)
#define XR_OPT_SPECIALS (1u << 7)
#define XR_OPT_CHECKSUM (1u << 8)
#define XR_OPT_DELETE (1u << 9)
#define XR_OPT_DELETE_EXCLUDED (1u << 10)
#define XR_OPT_NUMERIC_IDS (1u << 11)
#define XR_OPT_DRY_RUN (1u << 12)
#define XR_OPT_COMPRESS (1u << 13)
#define XR_OPT_WATCH (1u << 14)
#define XR_OPT_TRAILING_SLASH (1u << 15)	/* SRC ended in "/" */
#define XR_OPT_ITEMIZE (1u << 16)		/* receiver sends ITEM messages */
#define XR_OPT_WHOLE_FILE (1u << 17)		/* no deltas: files travel whole */

enum xr_role {
	XR_ROLE_SENDER = 1,	/* the server sends (client pulls) */
	XR_ROLE_RECEIVER = 2,	/* the server receives (client pushes) */
};

struct xr_wire_options {
	uint8_t server_role;	/* enum xr_role */
	uint32_t flags;
	uint32_t timeout;	/* --timeout seconds, 0 = none */
	uint32_t watch_quiet_ms;
	char *path;		/* path on the server, <= XR_PATH_MAX */
	char **rules;		/* canonical filter rules (xr_filters_rule) */
	size_t nrules;
	char **commit_last;	/* patterns */
	size_t ncommit_last;
};
int xr_enc_options(struct xr_buf *b, const struct xr_wire_options *o);
int xr_dec_options(const void *p, size_t n, struct xr_wire_options *o);
void xr_options_free(struct xr_wire_options *o);

/* ERROR / LOG / ITEM: an exit-code-bearing code and a text line. */
struct xr_text {
	int32_t code;		/* ERROR: xr_err; LOG: level; ITEM: 0 */
	char *text;		/* <= XR_MAX_MSG_LEN, no NUL */
};
int xr_enc_text(struct xr_buf *b, const struct xr_text *t);
int xr_dec_text(const void *p, size_t n, struct xr_text *t);

/* IDMAP: u8 kind ('u' or 'g'), then pairs (id, name) until the end. */
int xr_enc_idmap(struct xr_buf *b, char kind, const struct xr_idname *ids, size_t n);
/* Appends decoded pairs to *ids / *n (names <= 255 bytes, ids unique). */
int xr_dec_idmap(const void *p, size_t n, char *kind, struct xr_idname **ids, size_t *count);

/*
 * FLIST: a batch of entries.  Each entry: varint flags, path as
 * (varint shared-prefix length with the previous path in the stream,
 * suffix string), type, mode, uid, gid, size, mtime (svarint sec, varint
 * nsec), then rdev / link target / hash as the type and flags say.  The
 * decoder validates every path with xr_path_valid() and that it sorts
 * strictly after the previous one (xr_path_cmp), so a peer cannot send
 * duplicates or unsorted lists.  prev is the previous path of the stream
 * ("" at the start of a change set) and is updated.
 */
struct xr_flist_coder {
	char prev[XR_PATH_MAX + 1];
};
void xr_flist_coder_init(struct xr_flist_coder *c);
int xr_enc_entry(struct xr_buf *b, struct xr_flist_coder *c, const struct xr_entry *e);
/* Decodes every entry in an FLIST payload and appends them to m. */
int xr_dec_flist(const void *p, size_t n, struct xr_flist_coder *c, struct xr_manifest *m);

/* Simple fixed messages. */
struct xr_request {
	uint64_t idx;		/* index in the sender's manifest of this change set */
	bool have_basis;	/* a signature follows (SIG* SIG_END) */
	bool have_hash;		/* basis_hash valid: reply SAME if equal */
	uint64_t basis_size;
	struct xr_hash basis_hash;
};
int xr_enc_request(struct xr_buf *b, const struct xr_request *r);
int xr_dec_request(const void *p, size_t n, struct xr_request *r);

enum xr_file_kind { XR_FILE_WHOLE = 1, XR_FILE_DELTA = 2, XR_FILE_SAME = 3 };
struct xr_file_begin {
	uint64_t idx;
	uint8_t kind;
	uint64_t size;		/* the file's size when opened: the receiver accepts no more */
};
int xr_enc_file_begin(struct xr_buf *b, const struct xr_file_begin *f);
int xr_dec_file_begin(const void *p, size_t n, struct xr_file_begin *f);

struct xr_file_end {
	uint64_t idx;
	uint64_t size;		/* size of the reconstructed file */
	struct xr_hash hash;	/* XXH3-128 of the reconstructed file */
	int64_t mtime_sec;	/* the source's mtime at the time it was read */
	uint32_t mtime_nsec;
};
int xr_enc_file_end(struct xr_buf *b, const struct xr_file_end *f);
int xr_dec_file_end(const void *p, size_t n, struct xr_file_end *f);

enum xr_abort_reason { XR_ABORT_VANISHED = 1, XR_ABORT_READ_ERROR = 2, XR_ABORT_RETRY = 3 };
struct xr_file_abort {
	uint64_t idx;
	uint8_t reason;
};
int xr_enc_file_abort(struct xr_buf *b, const struct xr_file_abort *f);
int xr_dec_file_abort(const void *p, size_t n, struct xr_file_abort *f);

/*
 * CSET_BEGIN: the change set's number, then (optional, absent = 0) flags
 * and, with XR_CSET_TOP, the name of the transfer's top directory entry
 * ("." or one valid name) sent before the sender walks, so the receiver can
 * walk DEST meanwhile.  An incremental change set's FLIST holds only the
 * entries its SCOPE frames cover.
 */
#define XR_CSET_INCREMENTAL (1u << 0)
#define XR_CSET_TOP (1u << 1)
struct xr_cset_begin {
	uint64_t cset;
	uint64_t flags;
	char *top;		/* with XR_CSET_TOP; malloc'd by the decoder */
};
int xr_enc_cset_begin(struct xr_buf *b, const struct xr_cset_begin *c);
int xr_dec_cset_begin(const void *p, size_t n, struct xr_cset_begin *c);
void xr_cset_begin_free(struct xr_cset_begin *c);

/*
 * SCOPE: items of an incremental change set's scope, each a flags byte
 * (XR_SCOPE_SUBTREE) and a path ("." or valid, xr_path_valid).  The decoder
 * appends to sc and fails with XR_ELIMIT past XR_MAX_SCOPE items in all.
 */
#define XR_SCOPE_SUBTREE 1u
#define XR_MAX_SCOPE 1000000u
int xr_enc_scope_item(struct xr_buf *b, const struct xr_scope_item *it);
int xr_dec_scope(const void *p, size_t n, struct xr_scope *sc);

/* A single varint payload (FLIST_END count, SIG_END idx, ...). */
int xr_enc_u64(struct xr_buf *b, uint64_t v);
int xr_dec_u64(const void *p, size_t n, uint64_t *v);

#define XR_RESULT_PAUSED 1	/* RESULT status: held by the pause flag, nothing applied */
struct xr_result {
	int32_t status;		/* xr_err of the receiver's run, 0 = committed */
	uint64_t files_total, files_changed, files_deleted;
	uint64_t bytes_literal, bytes_matched, total_size;
	uint64_t cset;
};
int xr_enc_result(struct xr_buf *b, const struct xr_result *r);
int xr_dec_result(const void *p, size_t n, struct xr_result *r);

#endif

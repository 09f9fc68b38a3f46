/* delta.h - librsync signature, delta and patch, streamed in bounded memory. */
#ifndef XR_DELTA_H
#define XR_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xr/hash.h"

/*
 * All jobs wrap librsync's job API (rs_*_begin, rs_job_iter with rs_buffers_t)
 * and never hold a whole file: memory is O(block buffers + signature).
 * Signatures use RS_RK_BLAKE2_SIG_MAGIC with block and strong lengths from
 * rs_sig_args(basis size).
 *
 * Pull-style jobs (sig_gen, delta_gen) read their file themselves with
 * pread() and produce output into a caller buffer, so that a poll loop can
 * ask for "at most N bytes" when the socket has room.  Push-style jobs
 * (sig_load, patch) are fed input chunks as frames arrive.
 */

/* Called with each chunk of output; returns 0 or a negative xr_err to stop. */
typedef int (*xr_sink_fn)(void *ctx, const void *buf, size_t len);

/* --- signature of the receiver's basis file ---------------------------- */
struct xr_sig_gen;
/* Starts a signature of fd (size bytes). Returns 0 or XR_ENOMEM. */
int xr_sig_gen_begin(struct xr_sig_gen **job, int fd, uint64_t size);
/*
 * Writes up to cap bytes of signature into buf, sets *len; *done becomes
 * true after the last byte.  Returns 0, XR_EFILEIO (read error, errno set)
 * or XR_ENOMEM.
 */
int xr_sig_gen_next(struct xr_sig_gen *job, void *buf, size_t cap, size_t *len, bool *done);
void xr_sig_gen_free(struct xr_sig_gen *job);

/* --- loading a received signature (sender side) ------------------------ */
/* The largest signature xr_sig_load accepts. */
#define XR_SIG_MAX_BYTES (64u * 1024u * 1024u)

struct xr_sig_load;
int xr_sig_load_begin(struct xr_sig_load **job);
/* Feeds bytes; returns 0, or XR_ESTREAM for a malformed signature. */
int xr_sig_load_feed(struct xr_sig_load *job, const void *buf, size_t len);
/*
 * Ends the input, builds the hash table; returns 0 or XR_ESTREAM.
 * Refuses signatures larger than XR_SIG_MAX_BYTES (XR_ELIMIT) in feed().
 */
int xr_sig_load_finish(struct xr_sig_load *job);
void xr_sig_load_free(struct xr_sig_load *job);

/* --- delta of the sender's file against a loaded signature ------------- */
struct xr_delta_gen;
/*
 * Starts a delta of fd (read with pread from offset 0 until EOF) against
 * sig (must stay alive until xr_delta_gen_free; NULL means "no basis": the
 * delta is then literal data only, still in librsync delta format).  The
 * job hashes what it reads (XXH3-128) so the caller learns the hash of
 * exactly the bytes it encoded.
 */
int xr_delta_gen_begin(struct xr_delta_gen **job, struct xr_sig_load *sig, int fd);
/*
 * The same, encoding at most limit bytes of fd: a file that grew since it
 * was announced is cut at its announced size (the caller's fstat after the
 * read sees the change and sends it again).
 */
int xr_delta_gen_begin_max(struct xr_delta_gen **job, struct xr_sig_load *sig, int fd,
			   uint64_t limit);
int xr_delta_gen_next(struct xr_delta_gen *job, void *buf, size_t cap, size_t *len, bool *done);
/* After done: hash and byte count of the source bytes that were encoded. */
void xr_delta_gen_result(struct xr_delta_gen *job, struct xr_hash *hash, uint64_t *size);
void xr_delta_gen_free(struct xr_delta_gen *job);

/* --- applying a delta (receiver side) ---------------------------------- */
struct xr_patch;
/*
 * Starts a patch of basis_fd (read with pread; the delta may only reference
 * bytes inside [0, basis_size) - anything else is XR_ESTREAM) writing the
 * result through sink.
 */
int xr_patch_begin(struct xr_patch **job, int basis_fd, uint64_t basis_size, xr_sink_fn sink,
		   void *sink_ctx);
/* Feeds delta bytes; returns 0, XR_ESTREAM (corrupt delta), or the sink's error. */
int xr_patch_feed(struct xr_patch *job, const void *buf, size_t len);
/* Ends the input; returns 0 or XR_ESTREAM if the delta was truncated. */
int xr_patch_finish(struct xr_patch *job);
/* Bytes the delta carried literally and bytes it copied from the basis, so far. */
void xr_patch_stats(const struct xr_patch *job, uint64_t *literal, uint64_t *copied);
void xr_patch_free(struct xr_patch *job);

#endif

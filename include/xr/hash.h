/* hash.h - XXH3-128 content hashes. */
#ifndef XR_HASH_H
#define XR_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

#define XR_HASH_LEN 16

/* Canonical big-endian XXH3-128 digest. */
struct xr_hash {
	uint8_t b[XR_HASH_LEN];
};

struct xr_hasher {
	XXH3_state_t *st;
};

/* Starts a streaming hash; returns 0 or XR_ENOMEM. */
int xr_hasher_init(struct xr_hasher *h);
void xr_hasher_update(struct xr_hasher *h, const void *buf, size_t len);
/* Writes the digest; the hasher may be reused after xr_hasher_reset(). */
void xr_hasher_final(struct xr_hasher *h, struct xr_hash *out);
void xr_hasher_reset(struct xr_hasher *h);
void xr_hasher_free(struct xr_hasher *h);

/* One-shot hash of a buffer. */
void xr_hash_buf(const void *buf, size_t len, struct xr_hash *out);

/*
 * Hashes a whole open file from offset 0 with pread in 256 KiB chunks.
 * Returns 0, or XR_EFILEIO with errno set.  *size receives bytes read.
 */
int xr_hash_fd(int fd, struct xr_hash *out, uint64_t *size);

/* Formats as 32 lowercase hex chars + NUL into buf (33 bytes). */
void xr_hash_hex(const struct xr_hash *h, char buf[33]);

#endif

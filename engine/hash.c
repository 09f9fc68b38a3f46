/* hash.c - XXH3-128 content hashes, streaming and over whole files. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/hash.h"
#include "xr/log.h"

#define HASH_CHUNK (256u * 1024u)

/* Starts a streaming hash; returns 0 or XR_ENOMEM. */
int xr_hasher_init(struct xr_hasher *h)
{
	h->st = XXH3_createState();
	if (!h->st) {
		errno = ENOMEM;
		return XR_ENOMEM;
	}
	XXH3_128bits_reset(h->st);
	return 0;
}

/* Adds len bytes at buf to the running hash. */
void xr_hasher_update(struct xr_hasher *h, const void *buf, size_t len)
{
	if (len)
		XXH3_128bits_update(h->st, buf, len);
}

/* Writes the canonical digest of everything hashed since the last reset. */
void xr_hasher_final(struct xr_hasher *h, struct xr_hash *out)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->st));
	_Static_assert(sizeof(c.digest) == XR_HASH_LEN, "XXH128 canonical size");
	for (size_t i = 0; i < XR_HASH_LEN; i++)
		out->b[i] = c.digest[i];
}

/* Forgets everything hashed so far. */
void xr_hasher_reset(struct xr_hasher *h)
{
	XXH3_128bits_reset(h->st);
}

/* Releases the hasher's state; safe on a hasher whose init failed. */
void xr_hasher_free(struct xr_hasher *h)
{
	if (h->st)
		XXH3_freeState(h->st);
	h->st = NULL;
}

/* One-shot canonical hash of a buffer. */
void xr_hash_buf(const void *buf, size_t len, struct xr_hash *out)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, len));
	for (size_t i = 0; i < XR_HASH_LEN; i++)
		out->b[i] = c.digest[i];
}

/*
 * Hashes fd from offset 0 to EOF with pread in 256 KiB chunks, retrying
 * EINTR.  Returns 0, XR_EFILEIO (errno set) or XR_ENOMEM.
 */
int xr_hash_fd(int fd, struct xr_hash *out, uint64_t *size)
{
	struct xr_hasher h = {NULL};
	unsigned char *buf;
	uint64_t off = 0;
	ssize_t n;
	int rc, saved;

	buf = malloc(HASH_CHUNK);
	if (!buf) {
		errno = ENOMEM;
		return XR_ENOMEM;
	}
	rc = xr_hasher_init(&h);
	if (rc < 0)
		goto out;
	for (;;) {
		n = pread(fd, buf, HASH_CHUNK, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			XR_TRACE("pread");
			rc = XR_EFILEIO;
			goto out;
		}
		if (n == 0)
			break;
		xr_hasher_update(&h, buf, (size_t)n);
		off += (uint64_t)n;
	}
	xr_hasher_final(&h, out);
	if (size)
		*size = off;
	rc = 0;
out:
	saved = errno;
	xr_hasher_free(&h);
	free(buf);
	errno = saved;
	return rc;
}

/* Formats h as 32 lowercase hex digits and a NUL. */
void xr_hash_hex(const struct xr_hash *h, char buf[33])
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < XR_HASH_LEN; i++) {
		buf[2 * i] = hex[h->b[i] >> 4];
		buf[2 * i + 1] = hex[h->b[i] & 0xf];
	}
	buf[2 * XR_HASH_LEN] = '\0';
}

/*
 * fuzz_flist.c - libFuzzer target for the FLIST decoder.
 * The first byte picks where the rest is split into two FLIST messages of
 * one stream (the prefix state carries over).  What decodes must be sorted,
 * valid, and survive a re-encode / decode round trip unchanged.
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_flist.c \
 *     transport/wire.c engine/manifest.c ... -lz
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xr/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless the two entries carry the same transmitted fields. */
static void same_entry(const struct xr_entry *a, const struct xr_entry *b)
{
	if (strcmp(a->path, b->path) || a->type != b->type || a->mode != b->mode ||
	    a->uid != b->uid || a->gid != b->gid || a->size != b->size ||
	    a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec ||
	    a->rdev != b->rdev || a->has_hash != b->has_hash ||
	    (a->has_hash && memcmp(a->hash.b, b->hash.b, XR_HASH_LEN)) ||
	    (!a->link != !b->link) || (a->link && strcmp(a->link, b->link)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xr_flist_coder c;
	struct xr_manifest m, m2;
	struct xr_buf b;
	size_t split, i;
	int rc;

	if (size < 1)
		return 0;
	split = (size - 1) * data[0] / 255;
	data++;
	size--;
	xr_flist_coder_init(&c);
	xr_manifest_init(&m);
	xr_manifest_init(&m2);
	xr_buf_init(&b);
	rc = xr_dec_flist(data, split, &c, &m);
	if (!rc) {
		size_t n1 = m.n;

		rc = xr_dec_flist(data + split, size - split, &c, &m);
		if (rc && m.n != n1)
			abort();	/* a failed message leaves nothing behind */
	}
	if (rc)
		goto out;
	for (i = 0; i < m.n; i++) {
		if (!xr_path_valid(m.e[i].path) || m.e[i].mode > 07777 ||
		    m.e[i].mtime_nsec >= 1000000000u)
			abort();
		if (i > 0 && xr_path_cmp(m.e[i - 1].path, m.e[i].path) >= 0)
			abort();
	}
	if (m.n && strcmp(c.prev, m.e[m.n - 1].path))
		abort();
	xr_flist_coder_init(&c);
	for (i = 0; i < m.n; i++)
		if (xr_enc_entry(&b, &c, &m.e[i]))
			abort();
	xr_flist_coder_init(&c);
	if (xr_dec_flist(b.p, b.len, &c, &m2) || m2.n != m.n)
		abort();
	for (i = 0; i < m.n; i++)
		same_entry(&m.e[i], &m2.e[i]);
out:
	xr_buf_free(&b);
	xr_manifest_free(&m);
	xr_manifest_free(&m2);
	return 0;
}

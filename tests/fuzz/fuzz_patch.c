/*
 * fuzz_patch.c - libFuzzer target for the parsers of received librsync data:
 * the input is applied as a delta to a fixed small basis (xr_patch), loaded
 * as a signature (xr_sig_load) and, when that succeeds, used to delta the
 * basis (xr_delta_gen), which exercises the signature search.
 *
 *   clang -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_patch.c engine/delta.c engine/hash.c engine/err.c engine/log.c \
 *     -lrsync -lxxhash
 *   ./a.out -max_total_time=20 tests/fuzz/corpus/patch
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xr/delta.h"
#include "xr/err.h"

#define BASIS_LEN 4096
/* A bound on patch output, so that COPY loops cannot run for long. */
#define OUT_MAX (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzer's basis file: a memfd with BASIS_LEN patterned bytes. */
static int basis_fd(void)
{
	static int fd = -1;
	unsigned char buf[BASIS_LEN];

	if (fd >= 0)
		return fd;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + (i >> 5));
	fd = memfd_create("xr-fuzz-basis", 0);
	if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		abort();
	return fd;
}

/* Counts patch output; refuses more than OUT_MAX bytes. */
static int count_sink(void *ctx, const void *buf, size_t len)
{
	size_t *total = ctx;

	(void)buf;
	if (len == 0 || len > OUT_MAX - *total)
		return XR_ELIMIT;
	*total += len;
	return 0;
}

/* Checks that rc is 0 or one of the errors the API documents. */
static void expect(int rc, int a, int b, int c)
{
	if (rc != 0 && rc != a && rc != b && rc != c)
		abort();
}

/* Applies data as a delta, fed in two pieces. */
static void fuzz_patch(const uint8_t *data, size_t size)
{
	struct xr_patch *p;
	size_t total = 0, half = size / 2;
	int rc;

	if (xr_patch_begin(&p, basis_fd(), BASIS_LEN, count_sink, &total) != 0)
		abort();
	rc = xr_patch_feed(p, data, half);
	if (rc == 0)
		rc = xr_patch_feed(p, data + half, size - half);
	if (rc == 0)
		rc = xr_patch_finish(p);
	expect(rc, XR_ESTREAM, XR_ELIMIT, XR_ENOMEM);
	xr_patch_free(p);
}

/* Loads data as a signature and, if it loads, deltas the basis against it. */
static void fuzz_signature(const uint8_t *data, size_t size)
{
	struct xr_sig_load *l;
	struct xr_delta_gen *g;
	unsigned char out[4096];
	bool done = false;
	size_t len;
	int rc;

	if (xr_sig_load_begin(&l) != 0)
		abort();
	rc = xr_sig_load_feed(l, data, size / 3);
	if (rc == 0)
		rc = xr_sig_load_feed(l, data + size / 3, size - size / 3);
	if (rc == 0)
		rc = xr_sig_load_finish(l);
	expect(rc, XR_ESTREAM, XR_ELIMIT, XR_ENOMEM);
	if (rc == 0) {
		if (xr_delta_gen_begin(&g, l, basis_fd()) != 0)
			abort();
		while (!done)
			if (xr_delta_gen_next(g, out, sizeof(out), &len, &done) != 0)
				abort();
		xr_delta_gen_free(g);
	}
	xr_sig_load_free(l);
}

/* libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_patch(data, size);
	fuzz_signature(data, size);
	return 0;
}

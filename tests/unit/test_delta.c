/* test_delta.c - librsync signature/delta/patch round trips, corrupt input, bounded memory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xr/delta.h"
#include "xr/err.h"
#include "xr/hash.h"

/* ---- helpers ---------------------------------------------------------- */

/* A growable byte buffer. */
struct bytes {
	unsigned char *p;
	size_t len, cap;
};

/* Appends len bytes to b. */
static void bytes_add(struct bytes *b, const void *buf, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + len)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, buf, len);
	b->len += len;
}

/* A small deterministic generator (xorshift64*). */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* Returns a value in [0, n) (n > 0). */
static size_t rnd_below(uint64_t *s, size_t n)
{
	return (size_t)(rnd(s) % n);
}

/* Fills buf with random bytes, or with repetitive config-like text. */
static void fill(uint64_t *s, unsigned char *buf, size_t len)
{
	static const char *words[] = {"[section]\n", "key = value\n", "# comment line\n",
				      "<entry id=\"", "\"/>\n", "signer.keyconf=", "0123456789",
				      "\n"};
	size_t i = 0;

	if (rnd_below(s, 2)) {
		for (i = 0; i < len; i++)
			buf[i] = (unsigned char)(rnd(s) >> 40);
		return;
	}
	while (i < len) {
		const char *w = words[rnd_below(s, 8)];
		size_t n = strlen(w);

		if (n > len - i)
			n = len - i;
		memcpy(buf + i, w, n);
		i += n;
		if (i < len && rnd_below(s, 4) == 0)
			buf[i++] = (unsigned char)(rnd(s) >> 40);
	}
}

/* Creates a fresh scratch directory; returns its malloc'd path. */
static char *scratch(void)
{
	char *p = strdup("/tmp/xr-delta-XXXXXX");

	assert_non_null(p);
	assert_non_null(mkdtemp(p));
	return p;
}

/* Removes a scratch directory and the files in it. */
static void rmtree(char *p)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
	assert_int_equal(system(cmd), 0);
	free(p);
}

/* (Re)writes dir/name with len bytes of buf; returns an O_RDWR fd. */
static int put_file(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[512];
	size_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	while (off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
	return fd;
}

/*
 * Picks an output cap or feed size: often tiny when small is true,
 * otherwise log-uniform between 1 (or 512) and 64 KiB.
 */
static size_t pick_size(uint64_t *s, bool small)
{
	size_t bits, base;

	if (small && rnd_below(s, 3) == 0)
		return 1 + rnd_below(s, 8);
	bits = (small ? 0 : 9) + rnd_below(s, small ? 17 : 8);
	base = (size_t)1 << bits;
	return base + rnd_below(s, base);
}

/* Runs a signature job over fd with random caps; returns the signature. */
static struct bytes make_sig(int fd, uint64_t size, uint64_t *s, bool small)
{
	struct bytes sig = {0};
	struct xr_sig_gen *g;
	unsigned char buf[128 * 1024];
	bool done = false;
	size_t len;

	assert_int_equal(xr_sig_gen_begin(&g, fd, size), 0);
	while (!done) {
		size_t cap = pick_size(s, small);

		assert_int_equal(xr_sig_gen_next(g, buf, cap, &len, &done), 0);
		assert_true(len <= cap);
		bytes_add(&sig, buf, len);
	}
	/* after the end: nothing more, still done */
	assert_int_equal(xr_sig_gen_next(g, buf, sizeof(buf), &len, &done), 0);
	assert_int_equal(len, 0);
	assert_true(done);
	xr_sig_gen_free(g);
	return sig;
}

/* Loads sig in random pieces; returns the loaded signature. */
static struct xr_sig_load *load_sig(const struct bytes *sig, uint64_t *s, bool small)
{
	struct xr_sig_load *l;
	size_t off = 0;

	assert_int_equal(xr_sig_load_begin(&l), 0);
	while (off < sig->len) {
		size_t n = pick_size(s, small);

		if (n > sig->len - off)
			n = sig->len - off;
		assert_int_equal(xr_sig_load_feed(l, sig->p + off, n), 0);
		off += n;
	}
	assert_int_equal(xr_sig_load_finish(l), 0);
	return l;
}

/* Runs a delta job of fd against sig with random caps; returns the delta. */
static struct bytes make_delta(struct xr_sig_load *sig, int fd, uint64_t *s, bool small,
			       struct xr_hash *hash, uint64_t *size)
{
	struct bytes d = {0};
	struct xr_delta_gen *g;
	unsigned char buf[128 * 1024];
	bool done = false;
	size_t len;

	assert_int_equal(xr_delta_gen_begin(&g, sig, fd), 0);
	while (!done) {
		size_t cap = pick_size(s, small);

		assert_int_equal(xr_delta_gen_next(g, buf, cap, &len, &done), 0);
		assert_true(len <= cap);
		bytes_add(&d, buf, len);
	}
	assert_int_equal(xr_delta_gen_next(g, buf, sizeof(buf), &len, &done), 0);
	assert_int_equal(len, 0);
	assert_true(done);
	xr_delta_gen_result(g, hash, size);
	xr_delta_gen_free(g);
	return d;
}

/* Sink that appends to a struct bytes. */
static int sink_bytes(void *ctx, const void *buf, size_t len)
{
	assert_true(len > 0);
	bytes_add(ctx, buf, len);
	return 0;
}

/*
 * Patches basis_fd with delta fed in random pieces; stores the output in
 * *out and returns the first error (of feed or finish), or 0.
 */
static int apply(int basis_fd, uint64_t basis_size, const struct bytes *delta, uint64_t *s,
		 bool small, struct bytes *out)
{
	struct xr_patch *p;
	size_t off = 0;
	int rc = 0;

	assert_int_equal(xr_patch_begin(&p, basis_fd, basis_size, sink_bytes, out), 0);
	while (off < delta->len && rc == 0) {
		size_t n = pick_size(s, small);

		if (n > delta->len - off)
			n = delta->len - off;
		rc = xr_patch_feed(p, delta->p + off, n);
		off += n;
	}
	if (rc == 0)
		rc = xr_patch_finish(p);
	xr_patch_free(p);
	return rc;
}

/* Applies one random edit to *buf (len *len, capacity cap). */
static void mutate_once(uint64_t *s, unsigned char *buf, size_t *len, size_t cap)
{
	size_t n = *len, pos, k;

	switch (rnd_below(s, 7)) {
	case 0: /* insert */
		k = 1 + rnd_below(s, rnd_below(s, 4) ? 64 : 20000);
		if (n + k > cap)
			k = cap - n;
		pos = rnd_below(s, n + 1);
		memmove(buf + pos + k, buf + pos, n - pos);
		fill(s, buf + pos, k);
		*len = n + k;
		break;
	case 1: /* delete */
		if (n == 0)
			break;
		pos = rnd_below(s, n);
		k = 1 + rnd_below(s, n - pos < 30000 ? n - pos : 30000);
		memmove(buf + pos, buf + pos + k, n - pos - k);
		*len = n - k;
		break;
	case 2: /* overwrite */
		if (n == 0)
			break;
		pos = rnd_below(s, n);
		k = 1 + rnd_below(s, n - pos < 5000 ? n - pos : 5000);
		fill(s, buf + pos, k);
		break;
	case 3: /* append */
		k = 1 + rnd_below(s, 50000);
		if (n + k > cap)
			k = cap - n;
		fill(s, buf + n, k);
		*len = n + k;
		break;
	case 4: /* truncate */
		*len = rnd_below(s, n + 1);
		break;
	case 5: /* move a block elsewhere */
		if (n < 2)
			break;
		k = 1 + rnd_below(s, n / 2);
		pos = rnd_below(s, n - k + 1);
		memmove(buf + rnd_below(s, n - k + 1), buf + pos, k);
		break;
	default: /* duplicate a block at the end */
		if (n == 0)
			break;
		pos = rnd_below(s, n);
		k = 1 + rnd_below(s, n - pos);
		if (n + k > cap)
			k = cap - n;
		memmove(buf + n, buf + pos, k);
		*len = n + k;
		break;
	}
}

/* Peak resident set (VmHWM) in KiB. */
static long vm_hwm_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	assert_true(kib > 0);
	return kib;
}

/* Current resident set (VmRSS) in KiB. */
static long vm_rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	assert_true(kib > 0);
	return kib;
}

/* ---- tests ------------------------------------------------------------- */

/* Byte i of the large test's basis. */
static unsigned char big_byte(uint64_t i)
{
	uint64_t x = (i / 8 + 1) * 0x9E3779B97F4A7C15ULL;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 32;
	return (unsigned char)(x >> (8 * (i % 8)));
}

/* Writes the large basis (or, with edits, the new file) chunk by chunk. */
static int big_file(const char *dir, const char *name, uint64_t size, bool edits)
{
	unsigned char buf[64 * 1024];
	char path[512];
	uint64_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	while (off < size) {
		size_t n = sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = big_byte(off + i);
		/* edits: a changed run every 8 MiB, and a 3-byte insertion at 20 MiB */
		if (edits && off % (8u << 20) == 0)
			memset(buf + 100, 'E', 333);
		if (edits && off == (20u << 20))
			assert_int_equal(write(fd, "INS", 3), 3);
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		off += n;
	}
	return fd;
}

/* Sink that hashes and counts the patched output (nothing is kept). */
struct hash_sink {
	struct xr_hasher h;
	uint64_t n;
};

/* Adds a chunk of patch output to the running hash. */
static int sink_hash(void *ctx, const void *buf, size_t len)
{
	struct hash_sink *hs = ctx;

	xr_hasher_update(&hs->h, buf, len);
	hs->n += len;
	return 0;
}

/*
 * A 64 MiB file goes through signature, delta and patch, pipelined; the
 * peak resident set grows by far less than the file size.  Runs first so
 * that no earlier test has raised the peak.
 */
static void test_large_file_bounded_memory(void **state)
{
	const uint64_t size = 64u << 20;
	char *dir = scratch();
	int basis = big_file(dir, "basis", size, false);
	int newfd = big_file(dir, "new", size, true);
	struct bytes sig = {0};
	struct xr_sig_load *l;
	struct xr_sig_gen *sg;
	struct xr_delta_gen *dg;
	struct xr_patch *p;
	struct hash_sink hs = {{NULL}, 0};
	struct xr_hash want, got, dh;
	uint64_t want_size, dsize, delta_bytes = 0;
	unsigned char *buf = malloc(64 * 1024);
	long base, peak;
	bool done = false;
	size_t len;
	FILE *f;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(xr_hash_fd(newfd, &want, &want_size), 0);
	assert_int_equal(want_size, size + 3);

	/* reset the peak to the current resident set, if the kernel allows */
	f = fopen("/proc/self/clear_refs", "w");
	if (f) {
		fputs("5", f);
		fclose(f);
	}
	base = vm_rss_kib();

	assert_int_equal(xr_sig_gen_begin(&sg, basis, size), 0);
	while (!done) {
		assert_int_equal(xr_sig_gen_next(sg, buf, 64 * 1024, &len, &done), 0);
		bytes_add(&sig, buf, len);
	}
	xr_sig_gen_free(sg);
	assert_true(sig.len < (1u << 20));
	l = load_sig(&sig, &(uint64_t){42}, false);

	assert_int_equal(xr_hasher_init(&hs.h), 0);
	assert_int_equal(xr_patch_begin(&p, basis, size, sink_hash, &hs), 0);
	assert_int_equal(xr_delta_gen_begin(&dg, l, newfd), 0);
	done = false;
	while (!done) {
		assert_int_equal(xr_delta_gen_next(dg, buf, 64 * 1024, &len, &done), 0);
		delta_bytes += len;
		assert_int_equal(xr_patch_feed(p, buf, len), 0);
	}
	assert_int_equal(xr_patch_finish(p), 0);
	xr_delta_gen_result(dg, &dh, &dsize);
	peak = vm_hwm_kib();

	xr_hasher_final(&hs.h, &got);
	assert_int_equal(hs.n, size + 3);
	assert_memory_equal(got.b, want.b, XR_HASH_LEN);
	assert_memory_equal(dh.b, want.b, XR_HASH_LEN);
	assert_int_equal(dsize, size + 3);
	/* the delta reused the basis: a few changed blocks, not 64 MiB */
	assert_true(delta_bytes < (1u << 20));
	/* 64 MiB through the pipeline; the process grew by under 24 MiB */
	print_message("      peak RSS growth %ld KiB for a %llu KiB file, delta %llu B\n",
		      peak - base, (unsigned long long)size / 1024,
		      (unsigned long long)delta_bytes);
	assert_true(peak - base < 24 * 1024);

	xr_delta_gen_free(dg);
	xr_patch_free(p);
	xr_hasher_free(&hs.h);
	xr_sig_load_free(l);
	free(sig.p);
	free(buf);
	close(basis);
	close(newfd);
	rmtree(dir);
}

/*
 * The randomized round trip: ~200 random basis files, each mutated at
 * random, go through sig_gen -> sig_load -> delta_gen -> patch with random
 * output caps and feed sizes; the result equals the new file byte for byte
 * and the delta job reports its hash and size.
 */
static void test_random_round_trip(void **state)
{
	const size_t max = 6u << 20;
	unsigned char *basis = malloc(max), *target = malloc(max);
	char *dir = scratch();
	uint64_t s = 0x1234567887654321ULL;
	int iters = 200;

	(void)state;
	assert_non_null(basis);
	assert_non_null(target);
	for (int it = 0; it < iters; it++) {
		size_t blen, tlen, r = rnd_below(&s, 20);
		struct bytes sig, delta, out = {0};
		struct xr_sig_load *l;
		struct xr_hash h, want;
		uint64_t hsize = 0;
		int bfd, tfd;
		bool small;

		if (r == 0)
			blen = 0;
		else if (r < 10)
			blen = rnd_below(&s, 4096);
		else if (r < 16)
			blen = rnd_below(&s, 256 * 1024);
		else if (r < 19)
			blen = rnd_below(&s, 1u << 20);
		else
			blen = rnd_below(&s, 5u << 20);
		fill(&s, basis, blen);
		if (rnd_below(&s, 15) == 0) {
			tlen = rnd_below(&s, blen + 1000);
			fill(&s, target, tlen);
		} else {
			int edits = 1 + (int)rnd_below(&s, 4);

			memcpy(target, basis, blen);
			tlen = blen;
			for (int e = 0; e < edits; e++)
				mutate_once(&s, target, &tlen, max);
		}
		small = blen < 300 * 1024 && tlen < 300 * 1024;
		bfd = put_file(dir, "basis", basis, blen);
		tfd = put_file(dir, "new", target, tlen);

		sig = make_sig(bfd, blen, &s, small);
		l = load_sig(&sig, &s, small);
		delta = make_delta(l, tfd, &s, small, &h, &hsize);
		assert_int_equal(apply(bfd, blen, &delta, &s, small, &out), 0);

		assert_int_equal(out.len, tlen);
		if (tlen)
			assert_memory_equal(out.p, target, tlen);
		xr_hash_buf(target, tlen, &want);
		assert_memory_equal(h.b, want.b, XR_HASH_LEN);
		assert_int_equal(hsize, tlen);

		xr_sig_load_free(l);
		free(sig.p);
		free(delta.p);
		free(out.p);
		close(bfd);
		close(tfd);
	}
	free(basis);
	free(target);
	rmtree(dir);
}

/* Output is the same bytes whatever the caps; 1-byte caps work. */
static void test_tiny_caps_same_output(void **state)
{
	const size_t n = 150000;
	unsigned char *a = malloc(n), *b = malloc(n);
	char *dir = scratch();
	uint64_t s = 99;
	struct bytes sig1 = {0}, sig2 = {0}, d1 = {0}, d2 = {0}, out = {0};
	struct xr_sig_load *l;
	struct xr_delta_gen *dg;
	struct xr_sig_gen *sg;
	unsigned char c[1];
	bool done = false;
	size_t len;
	struct xr_hash h;
	int bfd, nfd;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	fill(&s, a, n);
	memcpy(b, a, n);
	memset(b + 70000, 'x', 500);
	bfd = put_file(dir, "basis", a, n);
	nfd = put_file(dir, "new", b, n);

	/* signature with cap 1, and with one big cap */
	assert_int_equal(xr_sig_gen_begin(&sg, bfd, n), 0);
	while (!done) {
		assert_int_equal(xr_sig_gen_next(sg, c, 1, &len, &done), 0);
		assert_true(len <= 1);
		bytes_add(&sig1, c, len);
	}
	xr_sig_gen_free(sg);
	assert_int_equal(xr_sig_gen_begin(&sg, bfd, n), 0);
	sig2.p = malloc(1u << 20);
	assert_non_null(sig2.p);
	assert_int_equal(xr_sig_gen_next(sg, sig2.p, 1u << 20, &sig2.len, &done), 0);
	assert_true(done);
	xr_sig_gen_free(sg);
	assert_int_equal(sig1.len, sig2.len);
	assert_memory_equal(sig1.p, sig2.p, sig1.len);
	/* 12-byte header + (4 + 32)-byte sums for every block */
	assert_true(sig1.len > 12);

	l = load_sig(&sig1, &s, true);
	done = false;
	assert_int_equal(xr_delta_gen_begin(&dg, l, nfd), 0);
	while (!done) {
		assert_int_equal(xr_delta_gen_next(dg, c, 1, &len, &done), 0);
		bytes_add(&d1, c, len);
	}
	xr_delta_gen_free(dg);
	d2 = make_delta(l, nfd, &(uint64_t){5}, false, &h, NULL);
	assert_int_equal(d1.len, d2.len);
	assert_memory_equal(d1.p, d2.p, d1.len);
	/* a 500-byte change in 150 kB: the delta is mostly COPY commands */
	assert_true(d1.len < 10000);

	/* patch fed one byte at a time */
	{
		struct xr_patch *p;

		assert_int_equal(xr_patch_begin(&p, bfd, n, sink_bytes, &out), 0);
		for (size_t i = 0; i < d1.len; i++)
			assert_int_equal(xr_patch_feed(p, d1.p + i, 1), 0);
		assert_int_equal(xr_patch_feed(p, NULL, 0), 0);
		assert_int_equal(xr_patch_finish(p), 0);
		/* finishing twice is harmless */
		assert_int_equal(xr_patch_finish(p), 0);
		xr_patch_free(p);
	}
	assert_int_equal(out.len, n);
	assert_memory_equal(out.p, b, n);

	xr_sig_load_free(l);
	free(sig1.p);
	free(sig2.p);
	free(d1.p);
	free(d2.p);
	free(out.p);
	free(a);
	free(b);
	close(bfd);
	close(nfd);
	rmtree(dir);
}

/* Without a signature the delta is literal data that patches from any basis. */
static void test_no_signature(void **state)
{
	const size_t n = 300000;
	unsigned char *t = malloc(n);
	char *dir = scratch();
	uint64_t s = 7;
	struct bytes d, out = {0}, out2 = {0};
	struct xr_hash h, want;
	uint64_t size;
	int nfd, empty, other;

	(void)state;
	assert_non_null(t);
	fill(&s, t, n);
	nfd = put_file(dir, "new", t, n);
	empty = put_file(dir, "empty", "", 0);
	/* a basis with the same content: still no COPY may appear */
	other = put_file(dir, "other", t, n);

	d = make_delta(NULL, nfd, &s, false, &h, &size);
	assert_true(d.len > n);
	assert_int_equal(size, n);
	xr_hash_buf(t, n, &want);
	assert_memory_equal(h.b, want.b, XR_HASH_LEN);
	/* librsync delta magic "rs\x026" */
	assert_memory_equal(d.p, "rs\x02\x36", 4);
	assert_int_equal(apply(empty, 0, &d, &s, false, &out), 0);
	assert_int_equal(out.len, n);
	assert_memory_equal(out.p, t, n);
	assert_int_equal(apply(other, 0, &d, &s, false, &out2), 0);
	assert_int_equal(out2.len, n);
	free(d.p);

	/* an empty source gives a minimal delta and the empty hash */
	d = make_delta(NULL, empty, &s, true, &h, &size);
	assert_int_equal(size, 0);
	xr_hash_buf("", 0, &want);
	assert_memory_equal(h.b, want.b, XR_HASH_LEN);
	free(out.p);
	out = (struct bytes){0};
	assert_int_equal(apply(empty, 0, &d, &s, true, &out), 0);
	assert_int_equal(out.len, 0);

	free(d.p);
	free(out.p);
	free(out2.p);
	free(t);
	close(nfd);
	close(empty);
	close(other);
	rmtree(dir);
}

/* A delta whose COPY reaches past the basis fails with XR_ESTREAM. */
static void test_copy_outside_basis(void **state)
{
	const size_t n = 200000;
	unsigned char *a = malloc(n);
	char *dir = scratch();
	uint64_t s = 3;
	struct bytes sig, d, out = {0};
	struct xr_sig_load *l;
	struct xr_hash h;
	int bfd, short_fd;

	(void)state;
	assert_non_null(a);
	fill(&s, a, n);
	bfd = put_file(dir, "basis", a, n);
	sig = make_sig(bfd, n, &s, false);
	l = load_sig(&sig, &s, false);
	/* the new file is the basis itself: one long COPY to the end */
	d = make_delta(l, bfd, &s, false, &h, NULL);
	assert_true(d.len < 100);

	/* the full basis works */
	assert_int_equal(apply(bfd, n, &d, &s, false, &out), 0);
	assert_int_equal(out.len, n);

	/* a truncated basis file */
	short_fd = put_file(dir, "short", a, n / 2);
	assert_int_equal(apply(short_fd, n / 2, &d, &s, false, &out), XR_ESTREAM);
	/* the real file is long enough, but the declared size is not */
	assert_int_equal(apply(bfd, n - 1, &d, &s, false, &out), XR_ESTREAM);
	assert_int_equal(apply(bfd, 0, &d, &s, true, &out), XR_ESTREAM);

	/* a basis that shrank under the patch is a file I/O error */
	assert_int_equal(apply(short_fd, n, &d, &s, false, &out), XR_EFILEIO);

	/* hand-made COPY commands: negative, huge and past-the-end positions */
	{
		/* 0x54: COPY, 8-byte position -1, 8-byte length 4096; 0x00: END */
		static const unsigned char neg[] = {'r',  's',	0x02, 0x36, 0x54, 0xff, 0xff,
						    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
						    0,	  0,	0,    0,    0,	  0x10, 0,
						    0x00};
		/* 0x4d: COPY, 4-byte position, 1-byte length */
		static const unsigned char past[] = {'r', 's', 0x02, 0x36, 0x4d,
						     0x00, 0x03, 0x0d, 0x40, 0x01, 0x00};
		static const unsigned char ok[] = {'r', 's', 0x02, 0x36, 0x4d,
						   0x00, 0x03, 0x0d, 0x3f, 0x01, 0x00};
		struct bytes cmd;

		cmd = (struct bytes){(unsigned char *)neg, sizeof(neg), 0};
		assert_int_equal(apply(bfd, n, &cmd, &s, false, &out), XR_ESTREAM);
		/* COPY(pos 200000 = 0x30d40, len 1): one past the end */
		cmd = (struct bytes){(unsigned char *)past, sizeof(past), 0};
		assert_int_equal(apply(bfd, n, &cmd, &s, false, &out), XR_ESTREAM);
		/* COPY(pos 199999, len 1): the last byte */
		free(out.p);
		out = (struct bytes){0};
		cmd = (struct bytes){(unsigned char *)ok, sizeof(ok), 0};
		assert_int_equal(apply(bfd, n, &cmd, &s, false, &out), 0);
		assert_int_equal(out.len, 1);
		assert_int_equal(out.p[0], a[n - 1]);
	}

	xr_sig_load_free(l);
	free(sig.p);
	free(d.p);
	free(out.p);
	free(a);
	close(bfd);
	close(short_fd);
	rmtree(dir);
}

/* Every proper prefix of a delta fails at finish; extra bytes fail too. */
static void test_truncated_delta(void **state)
{
	const size_t n = 20000;
	unsigned char *a = malloc(n), *b = malloc(n);
	char *dir = scratch();
	uint64_t s = 17;
	struct bytes sig, d, out = {0};
	struct xr_sig_load *l;
	struct xr_patch *p;
	int bfd, nfd;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	fill(&s, a, n);
	memcpy(b, a, n);
	fill(&s, b + 5000, 3000);
	bfd = put_file(dir, "basis", a, n);
	nfd = put_file(dir, "new", b, n);
	sig = make_sig(bfd, n, &s, false);
	l = load_sig(&sig, &s, false);
	d = make_delta(l, nfd, &s, false, NULL, NULL);
	assert_true(d.len > 3000);

	for (size_t cut = 0; cut < d.len; cut += (cut < 64 ? 1 : 97)) {
		assert_int_equal(xr_patch_begin(&p, bfd, n, sink_bytes, &out), 0);
		assert_int_equal(xr_patch_feed(p, d.p, cut), 0);
		assert_int_equal(xr_patch_finish(p), XR_ESTREAM);
		/* the error sticks */
		assert_int_equal(xr_patch_feed(p, d.p + cut, d.len - cut), XR_ESTREAM);
		xr_patch_free(p);
		out.len = 0;
	}

	/* trailing garbage after the END command */
	assert_int_equal(xr_patch_begin(&p, bfd, n, sink_bytes, &out), 0);
	assert_int_equal(xr_patch_feed(p, d.p, d.len), 0);
	assert_int_equal(out.len, n);
	assert_int_equal(xr_patch_feed(p, "x", 1), XR_ESTREAM);
	xr_patch_free(p);
	out.len = 0;
	{
		struct bytes extra = {0};

		bytes_add(&extra, d.p, d.len);
		bytes_add(&extra, "junk", 4);
		assert_int_equal(apply(bfd, n, &extra, &s, false, &out), XR_ESTREAM);
		free(extra.p);
	}

	/* not a delta at all: bad magic, a signature, an unknown command */
	{
		struct bytes bad = {(unsigned char *)"hello world", 11, 0};

		assert_int_equal(apply(bfd, n, &bad, &s, false, &out), XR_ESTREAM);
		assert_int_equal(apply(bfd, n, &sig, &s, false, &out), XR_ESTREAM);
		bad = (struct bytes){(unsigned char *)"rs\x02\x36\xff\xff\xff\xff", 8, 0};
		assert_int_equal(apply(bfd, n, &bad, &s, false, &out), XR_ESTREAM);
	}

	xr_sig_load_free(l);
	free(sig.p);
	free(d.p);
	free(out.p);
	free(a);
	free(b);
	close(bfd);
	close(nfd);
	rmtree(dir);
}

/* Feeds buf (len) to a new signature loader; returns the first error or 0. */
static int try_sig(const void *buf, size_t len)
{
	struct xr_sig_load *l;
	int rc;

	assert_int_equal(xr_sig_load_begin(&l), 0);
	rc = xr_sig_load_feed(l, buf, len);
	if (rc == 0)
		rc = xr_sig_load_finish(l);
	xr_sig_load_free(l);
	return rc;
}

/* Malformed signatures are XR_ESTREAM; errors stick. */
static void test_garbage_signature(void **state)
{
	char *dir = scratch();
	uint64_t s = 5;
	unsigned char junk[5000], good[64];
	struct bytes sig;
	struct xr_sig_load *l;
	int fd;

	(void)state;
	fd = put_file(dir, "basis", "0123456789abcdef0123456789", 26);
	sig = make_sig(fd, 26, &s, false);
	/* header: magic, block length, strong sum length (minimal for the size) */
	size_t strong = sig.p[11];
	assert_true(strong >= 2 && strong <= 32);
	assert_int_equal(sig.len, 12 + 4 + strong);
	assert_int_equal(try_sig(sig.p, sig.len), 0);
	memcpy(good, sig.p, sig.len);

	for (int i = 0; i < 20; i++) {
		for (size_t k = 0; k < sizeof(junk); k++)
			junk[k] = (unsigned char)rnd(&s);
		assert_int_equal(try_sig(junk, 1 + rnd_below(&s, sizeof(junk))), XR_ESTREAM);
	}
	assert_int_equal(try_sig("", 0), XR_ESTREAM);
	/* truncated header, truncated block sum */
	assert_int_equal(try_sig(good, 7), XR_ESTREAM);
	assert_int_equal(try_sig(good, 12 + 4 + strong - 1), XR_ESTREAM);
	assert_int_equal(try_sig(good, 12 + 2), XR_ESTREAM);
	/* a header alone is a valid signature of an empty file */
	assert_int_equal(try_sig(good, 12), 0);
	/* MD4 magic, zero block length, a 33-byte strong sum */
	good[3] = 0x36;
	assert_int_equal(try_sig(good, sig.len), XR_ESTREAM);
	memcpy(good, sig.p, sig.len);
	memset(good + 4, 0, 4);
	assert_int_equal(try_sig(good, sig.len), XR_ESTREAM);
	memcpy(good, sig.p, sig.len);
	good[11] = 33;
	assert_int_equal(try_sig(good, sig.len), XR_ESTREAM);

	/* the error sticks; delta_gen refuses an unfinished signature */
	assert_int_equal(xr_sig_load_begin(&l), 0);
	assert_int_equal(xr_sig_load_feed(l, "garbage!garbage!", 16), XR_ESTREAM);
	assert_int_equal(xr_sig_load_feed(l, sig.p, sig.len), XR_ESTREAM);
	assert_int_equal(xr_sig_load_finish(l), XR_ESTREAM);
	xr_sig_load_free(l);
	{
		struct xr_delta_gen *dg = NULL;

		assert_int_equal(xr_sig_load_begin(&l), 0);
		assert_int_equal(xr_sig_load_feed(l, sig.p, sig.len), 0);
		assert_int_equal(xr_delta_gen_begin(&dg, l, fd), XR_ESTREAM);
		assert_null(dg);
		assert_int_equal(xr_sig_load_finish(l), 0);
		/* bytes after finish are refused */
		assert_int_equal(xr_sig_load_feed(l, "x", 1), XR_ESTREAM);
		xr_sig_load_free(l);
	}

	free(sig.p);
	close(fd);
	rmtree(dir);
}

/* librsync's own error messages never reach stderr. */
static void test_librsync_is_quiet(void **state)
{
	char *dir = scratch();
	char path[512];
	struct bytes out = {0};
	struct bytes bad = {(unsigned char *)"rs\x02\x36\xff", 5, 0};
	uint64_t s = 1;
	int saved, errfd, bfd;
	struct stat st;

	(void)state;
	bfd = put_file(dir, "basis", "abc", 3);
	snprintf(path, sizeof(path), "%s/stderr", dir);
	errfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(errfd >= 0);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(errfd, 2), 2);

	/* a bogus command and a bad magic number: both make librsync log errors */
	assert_int_equal(apply(bfd, 3, &bad, &s, false, &out), XR_ESTREAM);
	bad = (struct bytes){(unsigned char *)"RS\x02\x36\x00", 5, 0};
	assert_int_equal(apply(bfd, 3, &bad, &s, false, &out), XR_ESTREAM);
	assert_int_equal(try_sig("rs\x01\x47\0\0\0\0\0\0\0\0", 12), XR_ESTREAM);

	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	assert_int_equal(fstat(errfd, &st), 0);
	assert_int_equal(st.st_size, 0);
	close(errfd);
	close(bfd);
	free(out.p);
	rmtree(dir);
}

/* A signature bigger than XR_SIG_MAX_BYTES is refused with XR_ELIMIT. */
static void test_signature_limit(void **state)
{
	size_t big = XR_SIG_MAX_BYTES;
	struct xr_sig_load *l;
	uint64_t s = 1;
	struct bytes sig;
	char *dir = scratch();
	void *zeros;
	int fd;

	(void)state;
	fd = put_file(dir, "basis", "abc", 3);
	sig = make_sig(fd, 3, &s, false);
	/* untouched anonymous pages: nothing is read before the size check */
	zeros = mmap(NULL, big, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(zeros != MAP_FAILED);

	assert_int_equal(xr_sig_load_begin(&l), 0);
	assert_int_equal(xr_sig_load_feed(l, sig.p, sig.len), 0);
	assert_int_equal(xr_sig_load_feed(l, zeros, big - sig.len + 1), XR_ELIMIT);
	assert_int_equal(xr_sig_load_feed(l, sig.p, 1), XR_ELIMIT);
	assert_int_equal(xr_sig_load_finish(l), XR_ELIMIT);
	xr_sig_load_free(l);

	assert_int_equal(xr_sig_load_begin(&l), 0);
	assert_int_equal(xr_sig_load_feed(l, zeros, big + 1), XR_ELIMIT);
	xr_sig_load_free(l);

	munmap(zeros, big);
	free(sig.p);
	close(fd);
	rmtree(dir);
}

/* A sink that refuses after a number of calls. */
struct refusing_sink {
	int calls, allow;
};

/* Accepts `allow` chunks, then returns XR_EFILEIO. */
static int sink_refuse(void *ctx, const void *buf, size_t len)
{
	struct refusing_sink *rs = ctx;

	(void)buf;
	(void)len;
	if (rs->calls++ >= rs->allow)
		return XR_EFILEIO;
	return 0;
}

/* The sink's error stops the patch and is returned, also later. */
static void test_sink_error(void **state)
{
	const size_t n = 500000;
	unsigned char *t = malloc(n);
	char *dir = scratch();
	uint64_t s = 8;
	struct refusing_sink rs = {0, 2};
	struct xr_patch *p;
	struct bytes d;
	int nfd, empty;

	(void)state;
	assert_non_null(t);
	fill(&s, t, n);
	nfd = put_file(dir, "new", t, n);
	empty = put_file(dir, "empty", "", 0);
	d = make_delta(NULL, nfd, &s, false, NULL, NULL);

	assert_int_equal(xr_patch_begin(&p, empty, 0, sink_refuse, &rs), 0);
	assert_int_equal(xr_patch_feed(p, d.p, d.len), XR_EFILEIO);
	assert_int_equal(rs.calls, 3);
	assert_int_equal(xr_patch_feed(p, d.p, 1), XR_EFILEIO);
	assert_int_equal(xr_patch_finish(p), XR_EFILEIO);
	assert_int_equal(rs.calls, 3);
	xr_patch_free(p);

	/* the first output chunk refused, after a feed that produced nothing */
	rs = (struct refusing_sink){0, 0};
	assert_int_equal(xr_patch_begin(&p, empty, 0, sink_refuse, &rs), 0);
	assert_int_equal(xr_patch_feed(p, d.p, 4), 0);
	assert_int_equal(xr_patch_feed(p, d.p + 4, d.len - 4), XR_EFILEIO);
	xr_patch_free(p);

	free(d.p);
	free(t);
	close(nfd);
	close(empty);
	rmtree(dir);
}

/* Read errors on the source are XR_EFILEIO and stick. */
static void test_read_errors(void **state)
{
	char *dir = scratch();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct xr_sig_gen *sg;
	struct xr_delta_gen *dg;
	unsigned char buf[256];
	bool done = true;
	size_t len = 99;

	(void)state;
	assert_true(dfd >= 0);
	assert_int_equal(xr_sig_gen_begin(&sg, dfd, 100), 0);
	assert_int_equal(xr_sig_gen_next(sg, buf, sizeof(buf), &len, &done), XR_EFILEIO);
	assert_int_equal(errno, EISDIR);
	assert_int_equal(len, 0);
	assert_false(done);
	assert_int_equal(xr_sig_gen_next(sg, buf, sizeof(buf), &len, &done), XR_EFILEIO);
	xr_sig_gen_free(sg);

	assert_int_equal(xr_delta_gen_begin(&dg, NULL, dfd), 0);
	assert_int_equal(xr_delta_gen_next(dg, buf, sizeof(buf), &len, &done), XR_EFILEIO);
	assert_int_equal(errno, EISDIR);
	xr_delta_gen_free(dg);

	/* freeing NULL jobs is harmless */
	xr_sig_gen_free(NULL);
	xr_sig_load_free(NULL);
	xr_delta_gen_free(NULL);
	xr_patch_free(NULL);
	close(dfd);
	rmtree(dir);
}

/* A signature of a file shorter than the declared size covers what is there. */
static void test_sig_size_limits_read(void **state)
{
	char *dir = scratch();
	unsigned char buf[40000];
	uint64_t s = 77;
	struct bytes sig_all, sig_part, d, out = {0};
	struct xr_sig_load *l;
	int fd;

	(void)state;
	fill(&s, buf, sizeof(buf));
	fd = put_file(dir, "basis", buf, sizeof(buf));
	/* only the first 10000 bytes are signed: a delta of the whole file
	 * then needs literal data for the rest, and patches against a
	 * 10000-byte basis */
	sig_part = make_sig(fd, 10000, &s, false);
	sig_all = make_sig(fd, sizeof(buf), &s, false);
	assert_true(sig_part.len < sig_all.len);
	l = load_sig(&sig_part, &s, false);
	d = make_delta(l, fd, &s, false, NULL, NULL);
	assert_int_equal(apply(fd, 10000, &d, &s, false, &out), 0);
	assert_int_equal(out.len, sizeof(buf));
	assert_memory_equal(out.p, buf, sizeof(buf));
	xr_sig_load_free(l);
	free(sig_all.p);
	free(sig_part.p);
	free(d.p);
	free(out.p);
	close(fd);
	rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_file_bounded_memory),
		cmocka_unit_test(test_random_round_trip),
		cmocka_unit_test(test_tiny_caps_same_output),
		cmocka_unit_test(test_no_signature),
		cmocka_unit_test(test_copy_outside_basis),
		cmocka_unit_test(test_truncated_delta),
		cmocka_unit_test(test_garbage_signature),
		cmocka_unit_test(test_signature_limit),
		cmocka_unit_test(test_librsync_is_quiet),
		cmocka_unit_test(test_sink_error),
		cmocka_unit_test(test_read_errors),
		cmocka_unit_test(test_sig_size_limits_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_hash.c - XXH3-128 known vectors, streaming, hex and whole-file hashing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "xr/err.h"
#include "xr/hash.h"

/* ---- helpers ---------------------------------------------------------- */

/* Creates a fresh scratch directory; returns its malloc'd path. */
static char *scratch(void)
{
	char *p = strdup("/tmp/xr-hash-XXXXXX");

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

/* Fills buf with xxHash's sanity-test byte generator (tests/sanity_test.c). */
static void sanity_buffer(unsigned char *buf, size_t len)
{
	uint64_t gen = 2654435761U;

	for (size_t i = 0; i < len; i++) {
		buf[i] = (unsigned char)(gen >> 56);
		gen *= 11400714785074694797ULL;
	}
}

/* Fills buf with deterministic pseudo-random bytes from seed. */
static void random_bytes(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)(x >> 24);
	}
}

/* Returns the hex form of a hash in a static buffer. */
static const char *hex(const struct xr_hash *h)
{
	static char buf[33];

	xr_hash_hex(h, buf);
	return buf;
}

/* Formats an XXH128 value (high64, low64) the way xxhsum -H2 prints it. */
static void ref_hex(const void *buf, size_t len, char out[33])
{
	XXH128_hash_t r = XXH3_128bits(buf, len);

	snprintf(out, 33, "%016llx%016llx", (unsigned long long)r.high64,
		 (unsigned long long)r.low64);
}

/* Writes len bytes of buf to path; returns an O_RDONLY fd. */
static int write_file(const char *path, const unsigned char *buf, size_t len)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	size_t off = 0;

	assert_true(fd >= 0);
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
	return fd;
}

/* ---- tests ------------------------------------------------------------- */

/* Known XXH3-128 digests from xxHash's own test vectors. */
static void test_known_vectors(void **state)
{
	static const char fox[] = "The quick brown fox jumps over the lazy dog";
	static const struct {
		size_t len;
		const char *hex;
	} sanity[] = {
		{1, "a6cd5e9392000f6ac44bdff4074eecdb"},
		{6, "082afe0b8162d12a3e7039bdda43cfc6"},
		{12, "6e3efd8fc7802b18061a192713f69ad9"},
	};
	unsigned char buf[16];
	struct xr_hash h;

	(void)state;
	xr_hash_buf("", 0, &h);
	assert_string_equal(hex(&h), "99aa06d3014798d86001c324468d497f");
	assert_int_equal(h.b[0], 0x99);
	assert_int_equal(h.b[15], 0x7f);

	xr_hash_buf(fox, strlen(fox), &h);
	assert_string_equal(hex(&h), "ddd650205ca3e7fa24a1cc2e3a8a7651");

	sanity_buffer(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(sanity) / sizeof(sanity[0]); i++) {
		xr_hash_buf(buf, sanity[i].len, &h);
		assert_string_equal(hex(&h), sanity[i].hex);
	}
}

/* xr_hash_buf matches the library's XXH3_128bits on many lengths. */
static void test_matches_reference(void **state)
{
	static const size_t lens[] = {0,   1,   3,    4,    8,    9,    16,    17,    128,
				      129, 240, 241,  1023, 1024, 4096, 65535, 65536, 100001};
	unsigned char *buf = malloc(100001);
	char ref[33];
	struct xr_hash h;

	(void)state;
	assert_non_null(buf);
	random_bytes(buf, 100001, 7);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		xr_hash_buf(buf, lens[i], &h);
		ref_hex(buf, lens[i], ref);
		assert_string_equal(hex(&h), ref);
	}
	free(buf);
}

/* Streaming in uneven pieces equals the one-shot hash; reset starts over. */
static void test_streaming(void **state)
{
	const size_t len = 3 * 1024 * 1024 + 17;
	unsigned char *buf = malloc(len);
	struct xr_hasher hs;
	struct xr_hash one, st, other;
	size_t off = 0, step = 1;

	(void)state;
	assert_non_null(buf);
	random_bytes(buf, len, 11);
	xr_hash_buf(buf, len, &one);

	assert_int_equal(xr_hasher_init(&hs), 0);
	while (off < len) {
		size_t n = step < len - off ? step : len - off;

		xr_hasher_update(&hs, buf + off, n);
		off += n;
		step = step * 3 + 1;
		if (step > 300000)
			step = 1;
	}
	xr_hasher_final(&hs, &st);
	assert_memory_equal(one.b, st.b, XR_HASH_LEN);

	/* final does not consume the state */
	xr_hasher_final(&hs, &other);
	assert_memory_equal(one.b, other.b, XR_HASH_LEN);

	/* reused after reset, and a different input gives a different digest */
	xr_hasher_reset(&hs);
	xr_hasher_update(&hs, buf, len - 1);
	xr_hasher_final(&hs, &other);
	xr_hash_buf(buf, len - 1, &st);
	assert_memory_equal(st.b, other.b, XR_HASH_LEN);
	assert_memory_not_equal(one.b, other.b, XR_HASH_LEN);

	/* empty update and an empty stream */
	xr_hasher_reset(&hs);
	xr_hasher_update(&hs, NULL, 0);
	xr_hasher_final(&hs, &other);
	assert_string_equal(hex(&other), "99aa06d3014798d86001c324468d497f");
	xr_hasher_free(&hs);
	assert_null(hs.st);
	xr_hasher_free(&hs);
	free(buf);
}

/* xr_hash_fd on 0 B, 1 B, 256 KiB +- 1 and several MB equals the buffer hash. */
static void test_hash_fd(void **state)
{
	static const size_t sizes[] = {0,
				       1,
				       256 * 1024 - 1,
				       256 * 1024,
				       256 * 1024 + 1,
				       512 * 1024,
				       5 * 1024 * 1024 + 333};
	const size_t max = 5 * 1024 * 1024 + 333;
	unsigned char *buf = malloc(max);
	char *dir = scratch();
	char path[256];
	struct xr_hash a, b;
	uint64_t size;

	(void)state;
	assert_non_null(buf);
	random_bytes(buf, max, 23);
	snprintf(path, sizeof(path), "%s/f", dir);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int fd = write_file(path, buf, sizes[i]);

		/* the file offset must not matter: hashing starts at 0 */
		assert_true(lseek(fd, 0, SEEK_END) >= 0);
		size = 12345;
		assert_int_equal(xr_hash_fd(fd, &a, &size), 0);
		assert_int_equal(size, sizes[i]);
		xr_hash_buf(buf, sizes[i], &b);
		assert_memory_equal(a.b, b.b, XR_HASH_LEN);
		close(fd);
	}
	rmtree(dir);
	free(buf);
}

/* A read error is XR_EFILEIO with errno set. */
static void test_hash_fd_error(void **state)
{
	char *dir = scratch();
	struct xr_hash h;
	uint64_t size = 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	(void)state;
	assert_true(fd >= 0);
	errno = 0;
	assert_int_equal(xr_hash_fd(fd, &h, &size), XR_EFILEIO);
	assert_int_equal(errno, EISDIR);
	close(fd);
	errno = 0;
	assert_int_equal(xr_hash_fd(-1, &h, &size), XR_EFILEIO);
	assert_int_equal(errno, EBADF);
	rmtree(dir);
}

/* Hex output is 32 lowercase digits, most significant byte first. */
static void test_hex(void **state)
{
	struct xr_hash h;
	char buf[33];

	(void)state;
	for (int i = 0; i < XR_HASH_LEN; i++)
		h.b[i] = (uint8_t)(i * 17 + 10);
	memset(buf, 'X', sizeof(buf));
	xr_hash_hex(&h, buf);
	assert_string_equal(buf, "0a1b2c3d4e5f708192a3b4c5d6e7f809");
	assert_int_equal(strlen(buf), 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors), cmocka_unit_test(test_matches_reference),
		cmocka_unit_test(test_streaming),     cmocka_unit_test(test_hash_fd),
		cmocka_unit_test(test_hash_fd_error), cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

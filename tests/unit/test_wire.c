/* test_wire.c - the message codec: round trips, limits, malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr/err.h"
#include "xr/wire.h"

/* ---- helpers ------------------------------------------------------------ */

/* A decoder under test: decodes p[0..n) and frees what it decoded; returns its rc. */
typedef int (*dec_fn)(const void *p, size_t n);

/*
 * Feeds every proper prefix of an encoded message to dec and expects an
 * error each time (never a crash: ASan runs watch for reads past the end).
 */
static void expect_truncations_fail(const struct xr_buf *b, dec_fn dec)
{
	size_t i;

	for (i = 0; i < b->len; i++) {
		uint8_t *copy = malloc(i ? i : 1);	/* exact size: ASan sees over-reads */

		assert_non_null(copy);
		memcpy(copy, b->p, i);
		assert_true(dec(copy, i) < 0);
		free(copy);
	}
	assert_int_equal(dec(b->p, b->len), 0);
}

/* Appends a junk byte and expects the decoder to refuse the trailing garbage. */
static void expect_trailing_fails(const struct xr_buf *b, dec_fn dec)
{
	struct xr_buf t;

	xr_buf_init(&t);
	xr_put_bytes(&t, b->p, b->len);
	xr_put_u8(&t, 0);
	assert_int_equal(dec(t.p, t.len), XR_EPROTO);
	xr_buf_free(&t);
}

/* Fills a hash with a recognizable pattern. */
static void fill_hash(struct xr_hash *h, uint8_t seed)
{
	for (int i = 0; i < XR_HASH_LEN; i++)
		h->b[i] = (uint8_t)(seed * 31 + i);
}

/* ---- primitives --------------------------------------------------------- */

/* Varints: lengths, round trips and the malformed forms. */
static void test_varint_edges(void **state)
{
	static const struct {
		uint64_t v;
		size_t len;
	} cases[] = {
		{0, 1}, {1, 1}, {127, 1}, {128, 2}, {16383, 2}, {16384, 3},
		{UINT32_MAX, 5}, {(uint64_t)UINT32_MAX + 1, 5}, {INT64_MAX, 9},
		{(uint64_t)INT64_MAX + 1, 10}, {UINT64_MAX, 10},
	};
	struct xr_buf b;
	struct xr_rd r;
	size_t i;

	(void)state;
	xr_buf_init(&b);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		xr_buf_reset(&b);
		xr_put_varint(&b, cases[i].v);
		assert_int_equal(b.len, cases[i].len);
		xr_rd_init(&r, b.p, b.len);
		assert_true(xr_get_varint(&r) == cases[i].v);
		assert_int_equal(xr_rd_end(&r), 0);
	}
	/* 128 is 0x80 0x01 */
	xr_buf_reset(&b);
	xr_put_varint(&b, 128);
	assert_int_equal(b.p[0], 0x80);
	assert_int_equal(b.p[1], 0x01);

	{
		static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
						 0x80, 0x80, 0x80, 0x80, 0x01};
		static const uint8_t overflow[] = {0xff, 0xff, 0xff, 0xff, 0xff,
						   0xff, 0xff, 0xff, 0xff, 0x02};
		static const uint8_t nonmin[] = {0x80, 0x00};
		static const uint8_t nonmin2[] = {0xff, 0x80, 0x00};
		static const uint8_t trunc[] = {0x80};

		xr_rd_init(&r, eleven, sizeof(eleven));
		assert_int_equal(xr_get_varint(&r), 0);
		assert_int_equal(r.err, XR_EPROTO);
		xr_rd_init(&r, overflow, sizeof(overflow));
		xr_get_varint(&r);
		assert_int_equal(r.err, XR_EPROTO);
		xr_rd_init(&r, nonmin, sizeof(nonmin));
		xr_get_varint(&r);
		assert_int_equal(r.err, XR_EPROTO);
		xr_rd_init(&r, nonmin2, sizeof(nonmin2));
		xr_get_varint(&r);
		assert_int_equal(r.err, XR_EPROTO);
		xr_rd_init(&r, trunc, sizeof(trunc));
		xr_get_varint(&r);
		assert_int_equal(r.err, XR_EPROTO);
		xr_rd_init(&r, NULL, 0);
		xr_get_varint(&r);
		assert_int_equal(r.err, XR_EPROTO);
	}
	xr_buf_free(&b);
}

/* Zigzag encoding of signed values. */
static void test_svarint(void **state)
{
	static const int64_t vals[] = {0, -1, 1, -2, 63, -64, 64, INT32_MIN, INT32_MAX,
				       INT64_MIN, INT64_MAX, -1700000000, 1700000000};
	struct xr_buf b;
	struct xr_rd r;
	size_t i;

	(void)state;
	xr_buf_init(&b);
	xr_put_svarint(&b, -1);
	xr_put_svarint(&b, 1);
	xr_put_svarint(&b, -64);
	assert_int_equal(b.len, 3);
	assert_int_equal(b.p[0], 1);
	assert_int_equal(b.p[1], 2);
	assert_int_equal(b.p[2], 127);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		xr_buf_reset(&b);
		xr_put_svarint(&b, vals[i]);
		assert_true(b.len <= 10);
		xr_rd_init(&r, b.p, b.len);
		assert_true(xr_get_svarint(&r) == vals[i]);
		assert_int_equal(xr_rd_end(&r), 0);
	}
	xr_buf_free(&b);
}

/* The reader: sticky errors, xr_rd_end, u8 and raw bytes. */
static void test_reader_sticky(void **state)
{
	static const uint8_t d[] = {7, 0x05, 1, 2};
	struct xr_rd r;
	uint8_t out[5];

	(void)state;
	xr_rd_init(&r, d, sizeof(d));
	assert_int_equal(xr_get_u8(&r), 7);
	assert_int_equal(xr_rd_end(&r), XR_EPROTO);	/* bytes left */
	xr_rd_init(&r, d, sizeof(d));
	xr_get_bytes(&r, out, 4);
	assert_memory_equal(out, d, 4);
	assert_int_equal(xr_rd_end(&r), 0);
	xr_get_u8(&r);					/* past the end */
	assert_int_equal(r.err, XR_EPROTO);
	/* the error sticks: later reads return 0 even though data would fit */
	r.off = 0;
	assert_int_equal(xr_get_u8(&r), 0);
	assert_int_equal(xr_get_varint(&r), 0);
	assert_null(xr_get_str(&r, 10));
	assert_int_equal(xr_rd_end(&r), XR_EPROTO);
	/* a short raw read fails and zeroes the output */
	xr_rd_init(&r, d, sizeof(d));
	memset(out, 0xaa, sizeof(out));
	xr_get_bytes(&r, out, 5);
	assert_int_equal(r.err, XR_EPROTO);
	assert_int_equal(out[0], 0);
}

/* Strings and blobs: limits, NUL bytes, lengths beyond the payload. */
static void test_strings(void **state)
{
	struct xr_buf b;
	struct xr_rd r;
	const uint8_t *v;
	size_t n;
	char *s;

	(void)state;
	xr_buf_init(&b);
	xr_put_str(&b, "hello");
	xr_put_str(&b, NULL);
	xr_put_blob(&b, "a\0b", 3);
	xr_rd_init(&r, b.p, b.len);
	s = xr_get_str(&r, 5);
	assert_string_equal(s, "hello");
	free(s);
	s = xr_get_str(&r, 5);
	assert_string_equal(s, "");
	free(s);
	v = xr_get_blob(&r, 3, &n);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "a\0b", 3);
	assert_int_equal(xr_rd_end(&r), 0);

	/* too long for max */
	xr_rd_init(&r, b.p, b.len);
	assert_null(xr_get_str(&r, 4));
	assert_int_equal(r.err, XR_ELIMIT);
	/* NUL inside a string */
	xr_rd_init(&r, b.p, b.len);
	free(xr_get_str(&r, 5));
	free(xr_get_str(&r, 5));
	assert_null(xr_get_str(&r, 10));
	assert_int_equal(r.err, XR_EPROTO);
	/* a length pointing beyond the payload */
	xr_buf_reset(&b);
	xr_put_varint(&b, 10);
	xr_put_bytes(&b, "abc", 3);
	xr_rd_init(&r, b.p, b.len);
	assert_null(xr_get_str(&r, 100));
	assert_int_equal(r.err, XR_EPROTO);
	/* a huge length is a limit error, not an allocation */
	xr_buf_reset(&b);
	xr_put_varint(&b, UINT64_MAX);
	xr_rd_init(&r, b.p, b.len);
	assert_null(xr_get_blob(&r, SIZE_MAX, &n));
	assert_int_equal(r.err, XR_EPROTO);
	xr_rd_init(&r, b.p, b.len);
	assert_null(xr_get_str(&r, XR_MAX_MSG_LEN));
	assert_int_equal(r.err, XR_ELIMIT);
	xr_buf_free(&b);
}

/* The buffer grows over many appends and reset keeps its memory. */
static void test_buf_growth(void **state)
{
	struct xr_buf b;
	size_t i, cap;

	(void)state;
	xr_buf_init(&b);
	for (i = 0; i < 100000; i++)
		xr_put_u8(&b, (uint8_t)i);
	assert_false(b.oom);
	assert_int_equal(b.len, 100000);
	for (i = 0; i < 100000; i++)
		assert_int_equal(b.p[i], (uint8_t)i);
	cap = b.cap;
	xr_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	/* an oom buffer is refused by encoders and leaves no partial message */
	b.oom = true;
	assert_int_equal(xr_enc_u64(&b, 5), XR_ENOMEM);
	assert_int_equal(b.len, 0);
	xr_buf_free(&b);
	assert_null(b.p);
}

/* ---- HELLO -------------------------------------------------------------- */

static int dec_hello_fn(const void *p, size_t n)
{
	struct xr_hello h;
	int rc = xr_dec_hello(p, n, &h);

	xr_hello_free(&h);
	return rc;
}

/* HELLO round trip, truncations, trailing bytes, wrong magic. */
static void test_hello(void **state)
{
	struct xr_hello h = {XR_PROTO_VERSION, XR_CAP_ZLIB | XR_CAP_NSEC,
			     (char *)"xroad-replicate 0.1.0"}, d;
	struct xr_buf b;

	(void)state;
	xr_buf_init(&b);
	assert_int_equal(xr_enc_hello(&b, &h), 0);
	assert_memory_equal(b.p, XR_PROTO_MAGIC, 8);
	assert_int_equal(xr_dec_hello(b.p, b.len, &d), 0);
	assert_int_equal(d.version, XR_PROTO_VERSION);
	assert_true(d.caps == (XR_CAP_ZLIB | XR_CAP_NSEC));
	assert_string_equal(d.program, h.program);
	xr_hello_free(&d);
	assert_null(d.program);
	expect_truncations_fail(&b, dec_hello_fn);
	expect_trailing_fails(&b, dec_hello_fn);

	/* wrong magic */
	b.p[0] = 'Y';
	assert_int_equal(xr_dec_hello(b.p, b.len, &d), XR_EPROTO);
	assert_null(d.program);
	/* rsync's greeting is not ours either */
	assert_int_equal(xr_dec_hello("@RSYNCD: 32.0\n", 14, &d), XR_EPROTO);
	xr_buf_free(&b);
}

/* ---- OPTIONS ------------------------------------------------------------ */

static int dec_options_fn(const void *p, size_t n)
{
	struct xr_wire_options o;
	int rc = xr_dec_options(p, n, &o);

	xr_options_free(&o);
	return rc;
}

/* OPTIONS round trip with rules, without rules, and a bad role. */
static void test_options(void **state)
{
	char *rules[] = {(char *)"- *.bak", (char *)"+ conf.d/", (char *)"P /keep"};
	char *last[] = {(char *)"signer/keyconf.xml"};
	struct xr_wire_options o = {
		.server_role = XR_ROLE_RECEIVER,
		.flags = XR_OPT_RECURSIVE | XR_OPT_TIMES | XR_OPT_ITEMIZE,
		.timeout = 10,
		.watch_quiet_ms = 250,
		.path = (char *)"/etc/xroad/",
		.rules = rules,
		.nrules = 3,
		.commit_last = last,
		.ncommit_last = 1,
	}, d;
	struct xr_buf b;

	(void)state;
	xr_buf_init(&b);
	assert_int_equal(xr_enc_options(&b, &o), 0);
	assert_int_equal(xr_dec_options(b.p, b.len, &d), 0);
	assert_int_equal(d.server_role, XR_ROLE_RECEIVER);
	assert_int_equal(d.flags, o.flags);
	assert_int_equal(d.timeout, 10);
	assert_int_equal(d.watch_quiet_ms, 250);
	assert_string_equal(d.path, "/etc/xroad/");
	assert_int_equal(d.nrules, 3);
	assert_string_equal(d.rules[0], "- *.bak");
	assert_string_equal(d.rules[2], "P /keep");
	assert_int_equal(d.ncommit_last, 1);
	assert_string_equal(d.commit_last[0], "signer/keyconf.xml");
	xr_options_free(&d);
	expect_truncations_fail(&b, dec_options_fn);
	expect_trailing_fails(&b, dec_options_fn);

	/* no rules at all */
	o.nrules = o.ncommit_last = 0;
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_options(&b, &o), 0);
	assert_int_equal(xr_dec_options(b.p, b.len, &d), 0);
	assert_int_equal(d.nrules, 0);
	assert_null(d.rules);
	xr_options_free(&d);

	/* bad role */
	b.p[0] = 3;
	assert_int_equal(xr_dec_options(b.p, b.len, &d), XR_EPROTO);
	xr_buf_free(&b);
}

/* OPTIONS limits: rule count, rule length, path length, NUL in the path. */
static void test_options_limits(void **state)
{
	struct xr_wire_options o = {.server_role = XR_ROLE_SENDER, .path = (char *)"x"}, d;
	char *big = malloc(XR_PATH_MAX + 2);
	char *one[1];
	struct xr_buf b;
	size_t i;

	(void)state;
	assert_non_null(big);
	xr_buf_init(&b);
	memset(big, 'r', XR_PATH_MAX + 1);
	big[XR_PATH_MAX + 1] = '\0';
	/* encoder refuses what the decoder would refuse */
	o.path = big;
	assert_int_equal(xr_enc_options(&b, &o), XR_ELIMIT);
	assert_int_equal(b.len, 0);
	o.path = (char *)"x";
	one[0] = big;
	o.rules = one;
	o.nrules = 1;
	assert_int_equal(xr_enc_options(&b, &o), XR_ELIMIT);	/* 4097 > XR_MAX_RULE_LEN */
	assert_int_equal(b.len, 0);
	o.commit_last = one;
	o.ncommit_last = 1;
	o.nrules = 0;
	assert_int_equal(xr_enc_options(&b, &o), XR_ELIMIT);
	assert_int_equal(b.len, 0);

	/* hand-made: too many rules */
	xr_put_u8(&b, XR_ROLE_SENDER);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_str(&b, "/p");
	xr_put_varint(&b, XR_MAX_RULES + 1);
	for (i = 0; i < XR_MAX_RULES + 1; i++)
		xr_put_str(&b, "- x");
	xr_put_varint(&b, 0);
	assert_int_equal(xr_dec_options(b.p, b.len, &d), XR_ELIMIT);
	assert_null(d.rules);

	/* hand-made: a rule one byte too long */
	xr_buf_reset(&b);
	xr_put_u8(&b, XR_ROLE_SENDER);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_str(&b, "/p");
	xr_put_varint(&b, 2);
	xr_put_str(&b, "- ok");
	big[XR_MAX_RULE_LEN + 1] = '\0';
	xr_put_str(&b, big);
	xr_put_varint(&b, 0);
	assert_int_equal(xr_dec_options(b.p, b.len, &d), XR_ELIMIT);
	assert_null(d.rules);

	/* a rule count larger than the bytes left */
	xr_buf_reset(&b);
	xr_put_u8(&b, XR_ROLE_SENDER);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_str(&b, "/p");
	xr_put_varint(&b, 5000);
	xr_put_varint(&b, 0);
	assert_int_equal(xr_dec_options(b.p, b.len, &d), XR_EPROTO);

	/* NUL in the path, and flags beyond 32 bits */
	xr_buf_reset(&b);
	xr_put_u8(&b, XR_ROLE_SENDER);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_blob(&b, "/a\0b", 4);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	assert_int_equal(xr_dec_options(b.p, b.len, &d), XR_EPROTO);
	xr_buf_reset(&b);
	xr_put_u8(&b, XR_ROLE_SENDER);
	xr_put_varint(&b, (uint64_t)1 << 32);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_str(&b, "/p");
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	assert_int_equal(xr_dec_options(b.p, b.len, &d), XR_EPROTO);
	free(big);
	xr_buf_free(&b);
}

/* ---- ERROR / LOG / ITEM ------------------------------------------------- */

static int dec_text_fn(const void *p, size_t n)
{
	struct xr_text t;
	int rc = xr_dec_text(p, n, &t);

	free(t.text);
	return rc;
}

/* ERROR/LOG/ITEM text: round trip, the length limit, NUL, code range. */
static void test_text(void **state)
{
	struct xr_text t = {XR_ETIMEOUT, (char *)"conf.d/local.ini: rename: No space"}, d;
	char *big = malloc(XR_MAX_MSG_LEN + 2);
	struct xr_buf b;

	(void)state;
	assert_non_null(big);
	xr_buf_init(&b);
	assert_int_equal(xr_enc_text(&b, &t), 0);
	assert_int_equal(xr_dec_text(b.p, b.len, &d), 0);
	assert_int_equal(d.code, XR_ETIMEOUT);
	assert_string_equal(d.text, t.text);
	free(d.text);
	expect_truncations_fail(&b, dec_text_fn);
	expect_trailing_fails(&b, dec_text_fn);

	/* exactly the limit passes, one more byte does not */
	memset(big, 'm', XR_MAX_MSG_LEN + 1);
	big[XR_MAX_MSG_LEN] = '\0';
	t.text = big;
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_text(&b, &t), 0);
	assert_int_equal(xr_dec_text(b.p, b.len, &d), 0);
	assert_int_equal(strlen(d.text), XR_MAX_MSG_LEN);
	free(d.text);
	big[XR_MAX_MSG_LEN] = 'm';
	big[XR_MAX_MSG_LEN + 1] = '\0';
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_text(&b, &t), XR_ELIMIT);
	xr_put_svarint(&b, 0);
	xr_put_str(&b, big);
	assert_int_equal(xr_dec_text(b.p, b.len, &d), XR_ELIMIT);
	assert_null(d.text);

	/* NUL inside, and a code outside 32 bits */
	xr_buf_reset(&b);
	xr_put_svarint(&b, 1);
	xr_put_blob(&b, "ab\0c", 4);
	assert_int_equal(xr_dec_text(b.p, b.len, &d), XR_EPROTO);
	xr_buf_reset(&b);
	xr_put_svarint(&b, (int64_t)INT32_MIN - 1);
	xr_put_str(&b, "x");
	assert_int_equal(xr_dec_text(b.p, b.len, &d), XR_EPROTO);
	free(big);
	xr_buf_free(&b);
}

/* ---- IDMAP -------------------------------------------------------------- */

static void free_ids(struct xr_idname *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i].name);
	free(ids);
}

/* IDMAP: appending, sorting, duplicate ids, truncation, limits. */
static void test_idmap(void **state)
{
	struct xr_idname in1[] = {{999, (char *)"xroad"}, {0, (char *)"root"},
				  {105, (char *)"ssl-cert"}};
	struct xr_idname in2[] = {{50, (char *)"staff"}, {2000, (char *)"x"}};
	struct xr_idname dup[] = {{105, (char *)"other"}};
	struct xr_idname *ids = NULL;
	size_t n = 0, i, len;
	struct xr_buf b;
	char kind = 0;
	char name[300];

	(void)state;
	xr_buf_init(&b);
	assert_int_equal(xr_enc_idmap(&b, 'u', in1, 3), 0);
	assert_int_equal(xr_dec_idmap(b.p, b.len, &kind, &ids, &n), 0);
	assert_int_equal(kind, 'u');
	assert_int_equal(n, 3);
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_idmap(&b, 'u', in2, 2), 0);
	assert_int_equal(xr_dec_idmap(b.p, b.len, &kind, &ids, &n), 0);
	assert_int_equal(n, 5);
	/* the table ends up sorted by id */
	for (i = 1; i < n; i++)
		assert_true(ids[i - 1].id < ids[i].id);
	assert_int_equal(ids[0].id, 0);
	assert_string_equal(ids[0].name, "root");
	assert_int_equal(ids[2].id, 105);
	assert_string_equal(ids[2].name, "ssl-cert");
	assert_string_equal(ids[4].name, "x");

	/* an id already known: refused, table unchanged */
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_idmap(&b, 'u', dup, 1), 0);
	assert_int_equal(xr_dec_idmap(b.p, b.len, &kind, &ids, &n), XR_EPROTO);
	assert_int_equal(n, 5);
	assert_string_equal(ids[2].name, "ssl-cert");
	/* a duplicate within one message */
	xr_buf_reset(&b);
	xr_put_u8(&b, 'g');
	xr_put_varint(&b, 7);
	xr_put_str(&b, "a");
	xr_put_varint(&b, 7);
	xr_put_str(&b, "b");
	assert_int_equal(xr_dec_idmap(b.p, b.len, &kind, &ids, &n), XR_EPROTO);
	assert_int_equal(n, 5);
	free_ids(ids, n);

	/* the whole message is refused on truncation; never a partial table */
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_idmap(&b, 'g', in1, 3), 0);
	len = b.len;
	for (i = 0; i < len; i++) {
		ids = NULL;
		n = 0;
		int rc = xr_dec_idmap(b.p, i, &kind, &ids, &n);

		/* cuts between pairs are valid shorter maps */
		if (rc == 0)
			assert_true(n < 3);
		else
			assert_int_equal(n, 0);
		free_ids(ids, n);
	}

	/* bad kind, empty name, name too long, id beyond 32 bits */
	ids = NULL;
	n = 0;
	assert_int_equal(xr_enc_idmap(&b, 'x', in1, 1), XR_EPROTO);
	xr_buf_reset(&b);
	xr_put_u8(&b, 'x');
	assert_int_equal(xr_dec_idmap(b.p, b.len, &kind, &ids, &n), XR_EPROTO);
	xr_buf_reset(&b);
	xr_put_u8(&b, 'u');
	xr_put_varint(&b, 1);
	xr_put_str(&b, "");
	assert_int_equal(xr_dec_idmap(b.p, b.len, &kind, &ids, &n), XR_EPROTO);
	memset(name, 'n', 256);
	name[256] = '\0';
	xr_buf_reset(&b);
	xr_put_u8(&b, 'u');
	xr_put_varint(&b, 1);
	xr_put_str(&b, name);
	assert_int_equal(xr_dec_idmap(b.p, b.len, &kind, &ids, &n), XR_ELIMIT);
	name[255] = '\0';
	xr_buf_reset(&b);
	xr_put_u8(&b, 'u');
	xr_put_varint(&b, 1);
	xr_put_str(&b, name);
	assert_int_equal(xr_dec_idmap(b.p, b.len, &kind, &ids, &n), 0);
	assert_int_equal(n, 1);
	xr_buf_reset(&b);
	xr_put_u8(&b, 'u');
	xr_put_varint(&b, (uint64_t)UINT32_MAX + 1);
	xr_put_str(&b, "big");
	assert_int_equal(xr_dec_idmap(b.p, b.len, &kind, &ids, &n), XR_EPROTO);
	assert_int_equal(n, 1);
	free_ids(ids, n);
	xr_buf_free(&b);
}

/* ---- FLIST -------------------------------------------------------------- */

/* The test tree: every type, the root, a shared-prefix run, "/" ordering. */
static struct xr_entry sample[] = {
	{.path = (char *)".", .type = XR_FT_DIR, .mode = 0755, .mtime_sec = 1700000000},
	{.path = (char *)"conf.d", .type = XR_FT_DIR, .mode = 02750, .uid = 999, .gid = 999},
	{.path = (char *)"conf.d/local.ini", .type = XR_FT_REG, .mode = 0640, .size = 1234,
	 .mtime_sec = 1700000001, .mtime_nsec = 999999999, .has_hash = true},
	{.path = (char *)"conf.d/local.ini.bak", .type = XR_FT_REG, .mode = 0600, .size = 0},
	{.path = (char *)"conf.d-x", .type = XR_FT_LINK, .mode = 0777,
	 .link = (char *)"/etc/xroad/conf.d"},
	{.path = (char *)"dev", .type = XR_FT_DIR, .mode = 01777},
	{.path = (char *)"dev/null", .type = XR_FT_CHR, .mode = 0666, .rdev = 0x103},
	{.path = (char *)"dev/sda", .type = XR_FT_BLK, .mode = 0660, .rdev = 0},
	{.path = (char *)"fifo", .type = XR_FT_FIFO, .mode = 0644, .mtime_sec = -5,
	 .mtime_nsec = 1},
	{.path = (char *)"sock", .type = XR_FT_SOCK, .mode = 0755, .uid = UINT32_MAX,
	 .gid = UINT32_MAX, .mtime_sec = INT64_MIN},
	{.path = (char *)"z\xc3\xa9", .type = XR_FT_REG, .mode = 04755, .size = UINT64_MAX,
	 .mtime_sec = INT64_MAX, .has_hash = true},
};
#define NSAMPLE (sizeof(sample) / sizeof(sample[0]))

/* Asserts that two entries carry the same transmitted fields. */
static void check_entry(const struct xr_entry *a, const struct xr_entry *b)
{
	assert_string_equal(a->path, b->path);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_true(a->size == b->size);
	assert_true(a->mtime_sec == b->mtime_sec);
	assert_int_equal(a->mtime_nsec, b->mtime_nsec);
	assert_true(a->rdev == b->rdev);
	assert_int_equal(a->has_hash, b->has_hash);
	if (a->has_hash)
		assert_memory_equal(a->hash.b, b->hash.b, XR_HASH_LEN);
	if (a->link)
		assert_string_equal(a->link, b->link);
	else
		assert_null(b->link);
}

/* Gives the sample entries that have a hash a distinct one. */
static void flist_setup_hashes(void)
{
	for (size_t i = 0; i < NSAMPLE; i++)
		if (sample[i].has_hash)
			fill_hash(&sample[i].hash, (uint8_t)i);
}

/* Encodes sample[from..to) into b with coder c. */
static void enc_range(struct xr_buf *b, struct xr_flist_coder *c, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		assert_int_equal(xr_enc_entry(b, c, &sample[i]), 0);
}

/* FLIST over two messages of one stream decodes to the same entries. */
static void test_flist_roundtrip(void **state)
{
	struct xr_flist_coder ec, dc;
	struct xr_manifest m;
	struct xr_buf b;
	size_t i, half = NSAMPLE / 2;

	(void)state;
	flist_setup_hashes();
	xr_buf_init(&b);
	xr_manifest_init(&m);
	xr_flist_coder_init(&ec);
	xr_flist_coder_init(&dc);
	/* two FLIST messages, the prefix state carried across */
	enc_range(&b, &ec, 0, half);
	assert_int_equal(xr_dec_flist(b.p, b.len, &dc, &m), 0);
	assert_string_equal(dc.prev, sample[half - 1].path);
	xr_buf_reset(&b);
	enc_range(&b, &ec, half, NSAMPLE);
	assert_int_equal(xr_dec_flist(b.p, b.len, &dc, &m), 0);
	assert_int_equal(m.n, NSAMPLE);
	for (i = 0; i < NSAMPLE; i++)
		check_entry(&sample[i], &m.e[i]);
	/* an empty FLIST is fine and changes nothing */
	assert_int_equal(xr_dec_flist(NULL, 0, &dc, &m), 0);
	assert_int_equal(m.n, NSAMPLE);
	xr_manifest_free(&m);

	/* prefix compression actually shares: "conf.d/local.ini.bak" costs little */
	xr_flist_coder_init(&ec);
	xr_buf_reset(&b);
	enc_range(&b, &ec, 0, 3);
	i = b.len;
	enc_range(&b, &ec, 3, 4);
	assert_true(b.len - i < 4 + 1 + 1 + 10 + strlen(".bak") + 4);
	xr_buf_free(&b);
}

/* Every truncation either fails or yields a prefix of the list; state then unchanged. */
static void test_flist_truncated(void **state)
{
	struct xr_flist_coder ec, dc;
	struct xr_manifest m;
	struct xr_buf b;
	size_t i, j;

	(void)state;
	flist_setup_hashes();
	xr_buf_init(&b);
	xr_flist_coder_init(&ec);
	enc_range(&b, &ec, 0, NSAMPLE);
	for (i = 0; i < b.len; i++) {
		uint8_t *copy = malloc(i ? i : 1);
		int rc;

		assert_non_null(copy);
		memcpy(copy, b.p, i);
		xr_manifest_init(&m);
		xr_flist_coder_init(&dc);
		rc = xr_dec_flist(copy, i, &dc, &m);
		if (rc == 0) {
			assert_true(m.n < NSAMPLE);
			for (j = 0; j < m.n; j++)
				check_entry(&sample[j], &m.e[j]);
		} else {
			assert_int_equal(m.n, 0);
			assert_string_equal(dc.prev, "");
		}
		xr_manifest_free(&m);
		free(copy);
	}
	xr_buf_free(&b);
}

/* Writes one entry by hand (no checks) for malformed-input tests. */
static void put_raw_entry(struct xr_buf *b, uint64_t flags, uint64_t shared, const char *suffix,
			  size_t slen, uint8_t type, uint64_t mode, uint64_t nsec)
{
	xr_put_varint(b, flags);
	xr_put_varint(b, shared);
	xr_put_blob(b, suffix, slen);
	xr_put_u8(b, type);
	xr_put_varint(b, mode);
	xr_put_varint(b, 0);	/* uid */
	xr_put_varint(b, 0);	/* gid */
	xr_put_varint(b, 0);	/* size */
	xr_put_svarint(b, 0);	/* sec */
	xr_put_varint(b, nsec);
}

/* Decodes b with a fresh coder and manifest; returns the rc (manifest must stay empty on error). */
static int dec_fresh(const struct xr_buf *b)
{
	struct xr_flist_coder c;
	struct xr_manifest m;
	int rc;

	xr_flist_coder_init(&c);
	xr_manifest_init(&m);
	rc = xr_dec_flist(b->p, b->len, &c, &m);
	if (rc)
		assert_int_equal(m.n, 0);
	xr_manifest_free(&m);
	return rc;
}

/* Unsorted, duplicate, invalid or oversized entries are refused whole. */
static void test_flist_refused(void **state)
{
	static const char *bad_paths[] = {"../x", "/abs", "a//b", "a/./b", "a/..", "x/", "..",
					  "a/../b", "./a"};
	struct xr_entry e = {.type = XR_FT_REG, .mode = 0644};
	struct xr_flist_coder c1, c2;
	struct xr_buf b;
	char *longp = malloc(XR_PATH_MAX + 2);
	size_t i;

	(void)state;
	assert_non_null(longp);
	xr_buf_init(&b);

	/* unsorted: "b" then "a" */
	xr_flist_coder_init(&c1);
	xr_flist_coder_init(&c2);
	e.path = (char *)"b";
	assert_int_equal(xr_enc_entry(&b, &c1, &e), 0);
	e.path = (char *)"a";
	assert_int_equal(xr_enc_entry(&b, &c1, &e), XR_EPROTO);	/* encoder refuses too */
	assert_int_equal(xr_enc_entry(&b, &c2, &e), 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	/* "a/b" must come before "a.b" ('/' sorts first) */
	xr_buf_reset(&b);
	xr_flist_coder_init(&c1);
	xr_flist_coder_init(&c2);
	e.path = (char *)"a.b";
	assert_int_equal(xr_enc_entry(&b, &c1, &e), 0);
	e.path = (char *)"a/b";
	assert_int_equal(xr_enc_entry(&b, &c2, &e), 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	/* duplicate */
	xr_buf_reset(&b);
	xr_flist_coder_init(&c1);
	xr_flist_coder_init(&c2);
	e.path = (char *)"dup";
	assert_int_equal(xr_enc_entry(&b, &c1, &e), 0);
	assert_int_equal(xr_enc_entry(&b, &c1, &e), XR_EPROTO);
	assert_int_equal(xr_enc_entry(&b, &c2, &e), 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	/* a good first entry then a bad one: nothing is kept */
	{
		struct xr_flist_coder c;
		struct xr_manifest m;

		xr_flist_coder_init(&c);
		xr_manifest_init(&m);
		assert_int_equal(xr_dec_flist(b.p, b.len, &c, &m), XR_EPROTO);
		assert_int_equal(m.n, 0);
		assert_string_equal(c.prev, "");
		xr_manifest_free(&m);
	}

	/* invalid paths, by the encoder and by hand */
	for (i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		xr_buf_reset(&b);
		xr_flist_coder_init(&c1);
		e.path = (char *)bad_paths[i];
		assert_int_equal(xr_enc_entry(&b, &c1, &e), XR_EPROTO);
		put_raw_entry(&b, 0, 0, bad_paths[i], strlen(bad_paths[i]), XR_FT_REG, 0644, 0);
		assert_int_equal(dec_fresh(&b), XR_EPROTO);
	}
	/* empty path, NUL in a path */
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, "", 0, XR_FT_REG, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, "a\0b", 3, XR_FT_REG, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	/* a component longer than XR_NAME_MAX */
	memset(longp, 'n', XR_NAME_MAX + 1);
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, longp, XR_NAME_MAX + 1, XR_FT_REG, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	/* a path longer than XR_PATH_MAX, alone and through the shared prefix */
	for (i = 0; i <= XR_PATH_MAX; i++)
		longp[i] = (i % 100 == 99) ? '/' : 'p';
	longp[XR_PATH_MAX + 1] = '\0';
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, longp, XR_PATH_MAX + 1, XR_FT_REG, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_ELIMIT);
	xr_flist_coder_init(&c1);
	e.path = longp;
	assert_int_equal(xr_enc_entry(&b, &c1, &e), XR_ELIMIT);
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, longp, 3998, XR_FT_DIR, 0755, 0);
	put_raw_entry(&b, 0, 3998, longp + 3998, XR_PATH_MAX + 1 - 3998, XR_FT_REG, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_ELIMIT);
	/* a shared prefix longer than the previous path */
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, "ab", 2, XR_FT_REG, 0644, 0);
	put_raw_entry(&b, 0, 3, "c", 1, XR_FT_REG, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 2, "c", 1, XR_FT_REG, 0644, 0);
	put_raw_entry(&b, 0, 1, "c", 1, XR_FT_REG, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);

	/* unknown type, mode beyond 07777, nsec >= 1e9, unknown flags */
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, "a", 1, 0, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, "a", 1, 8, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, "a", 1, XR_FT_REG, 010000, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, "a", 1, XR_FT_REG, 0644, 1000000000);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 8, 0, "a", 1, XR_FT_REG, 0644, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, "a", 1, XR_FT_REG, 0644, 999999999);
	assert_int_equal(dec_fresh(&b), 0);
	/* hash on a directory, rdev on a regular file, link flag mismatches */
	xr_buf_reset(&b);
	put_raw_entry(&b, 1, 0, "a", 1, XR_FT_DIR, 0755, 0);
	xr_put_bytes(&b, "0123456789abcdef", 16);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 4, 0, "a", 1, XR_FT_REG, 0644, 0);
	xr_put_varint(&b, 5);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 0, 0, "a", 1, XR_FT_LINK, 0777, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 2, 0, "a", 1, XR_FT_REG, 0644, 0);
	xr_put_str(&b, "target");
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 2, 0, "a", 1, XR_FT_LINK, 0777, 0);
	xr_put_str(&b, "");
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 2, 0, "a", 1, XR_FT_LINK, 0777, 0);
	xr_put_blob(&b, "t\0x", 3);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	xr_buf_reset(&b);
	put_raw_entry(&b, 2, 0, "a", 1, XR_FT_LINK, 0777, 0);
	xr_put_str(&b, "../../etc/passwd");	/* targets are data, not confined here */
	assert_int_equal(dec_fresh(&b), 0);
	/* symlink target too long */
	memset(longp, 't', XR_PATH_MAX + 1);
	longp[XR_PATH_MAX + 1] = '\0';
	xr_buf_reset(&b);
	put_raw_entry(&b, 2, 0, "a", 1, XR_FT_LINK, 0777, 0);
	xr_put_str(&b, longp);
	assert_int_equal(dec_fresh(&b), XR_ELIMIT);
	xr_flist_coder_init(&c1);
	e.path = (char *)"l";
	e.type = XR_FT_LINK;
	e.link = longp;
	assert_int_equal(xr_enc_entry(&b, &c1, &e), XR_ELIMIT);
	e.link = NULL;
	assert_int_equal(xr_enc_entry(&b, &c1, &e), XR_EPROTO);
	/* uid beyond 32 bits */
	xr_buf_reset(&b);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_str(&b, "a");
	xr_put_u8(&b, XR_FT_REG);
	xr_put_varint(&b, 0644);
	xr_put_varint(&b, (uint64_t)1 << 32);
	xr_put_varint(&b, 0);
	xr_put_varint(&b, 0);
	xr_put_svarint(&b, 0);
	xr_put_varint(&b, 0);
	assert_int_equal(dec_fresh(&b), XR_EPROTO);
	free(longp);
	xr_buf_free(&b);
}

/* The encoder masks type bits out of mode and sends hash/rdev only where they belong. */
static void test_flist_encoder_normalizes(void **state)
{
	struct xr_entry d = {.path = (char *)"d", .type = XR_FT_DIR, .mode = 040755,
			     .has_hash = true, .rdev = 77};
	struct xr_flist_coder c;
	struct xr_manifest m;
	struct xr_buf b;

	(void)state;
	xr_buf_init(&b);
	xr_manifest_init(&m);
	xr_flist_coder_init(&c);
	assert_int_equal(xr_enc_entry(&b, &c, &d), 0);
	xr_flist_coder_init(&c);
	assert_int_equal(xr_dec_flist(b.p, b.len, &c, &m), 0);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.e[0].mode, 0755);
	assert_false(m.e[0].has_hash);
	assert_true(m.e[0].rdev == 0);
	/* bad type or nsec refused by the encoder */
	d.path = (char *)"e";
	d.type = 9;
	assert_int_equal(xr_enc_entry(&b, &c, &d), XR_EPROTO);
	d.type = XR_FT_DIR;
	d.mtime_nsec = 1000000000;
	assert_int_equal(xr_enc_entry(&b, &c, &d), XR_EPROTO);
	xr_manifest_free(&m);
	xr_buf_free(&b);
}

/* ---- fixed messages ----------------------------------------------------- */

static int dec_request_fn(const void *p, size_t n)
{
	struct xr_request r;

	return xr_dec_request(p, n, &r);
}

/* dec_fn for FILE_BEGIN. */
static int dec_file_begin_fn(const void *p, size_t n)
{
	struct xr_file_begin f;

	return xr_dec_file_begin(p, n, &f);
}

/* dec_fn for FILE_END. */
static int dec_file_end_fn(const void *p, size_t n)
{
	struct xr_file_end f;

	return xr_dec_file_end(p, n, &f);
}

/* dec_fn for FILE_ABORT. */
static int dec_file_abort_fn(const void *p, size_t n)
{
	struct xr_file_abort f;

	return xr_dec_file_abort(p, n, &f);
}

/* dec_fn for one-varint payloads. */
static int dec_u64_fn(const void *p, size_t n)
{
	uint64_t v;

	return xr_dec_u64(p, n, &v);
}

/* dec_fn for RESULT. */
static int dec_result_fn(const void *p, size_t n)
{
	struct xr_result r;

	return xr_dec_result(p, n, &r);
}

/* REQUEST with and without a basis; unknown flags refused. */
static void test_request(void **state)
{
	struct xr_request r = {.idx = 123456, .have_basis = true, .have_hash = true,
			       .basis_size = 1u << 30}, d;
	struct xr_buf b;

	(void)state;
	fill_hash(&r.basis_hash, 9);
	xr_buf_init(&b);
	assert_int_equal(xr_enc_request(&b, &r), 0);
	assert_int_equal(xr_dec_request(b.p, b.len, &d), 0);
	assert_true(d.idx == 123456);
	assert_true(d.have_basis && d.have_hash);
	assert_true(d.basis_size == 1u << 30);
	assert_memory_equal(d.basis_hash.b, r.basis_hash.b, XR_HASH_LEN);
	expect_truncations_fail(&b, dec_request_fn);
	expect_trailing_fails(&b, dec_request_fn);
	/* without a basis: no hash bytes */
	r.have_basis = r.have_hash = false;
	r.basis_size = 0;
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_request(&b, &r), 0);
	assert_true(b.len < 8);
	assert_int_equal(xr_dec_request(b.p, b.len, &d), 0);
	assert_false(d.have_basis || d.have_hash);
	expect_truncations_fail(&b, dec_request_fn);
	/* unknown flag bits */
	b.p[b.len - 2] = 0x04;
	assert_int_equal(xr_dec_request(b.p, b.len, &d), XR_EPROTO);
	xr_buf_free(&b);
}

/* FILE_BEGIN / FILE_END / FILE_ABORT round trips and bad values. */
static void test_file_msgs(void **state)
{
	struct xr_file_begin fb = {.idx = 42, .kind = XR_FILE_DELTA, .size = (uint64_t)1 << 40}, dfb;
	struct xr_file_end fe = {.idx = 42, .size = 99999, .mtime_sec = -1,
				 .mtime_nsec = 999999999}, dfe;
	struct xr_file_abort fa = {.idx = UINT64_MAX, .reason = XR_ABORT_RETRY}, dfa;
	struct xr_buf b;

	(void)state;
	fill_hash(&fe.hash, 3);
	xr_buf_init(&b);
	assert_int_equal(xr_enc_file_begin(&b, &fb), 0);
	assert_int_equal(xr_dec_file_begin(b.p, b.len, &dfb), 0);
	assert_true(dfb.idx == 42);
	assert_int_equal(dfb.kind, XR_FILE_DELTA);
	assert_true(dfb.size == (1ull << 40));
	expect_truncations_fail(&b, dec_file_begin_fn);
	expect_trailing_fails(&b, dec_file_begin_fn);
	/* the kind byte follows the one-byte varint idx */
	b.p[1] = 4;
	assert_int_equal(xr_dec_file_begin(b.p, b.len, &dfb), XR_EPROTO);
	b.p[1] = 0;
	assert_int_equal(xr_dec_file_begin(b.p, b.len, &dfb), XR_EPROTO);
	fb.kind = 0;
	assert_int_equal(xr_enc_file_begin(&b, &fb), XR_EPROTO);

	xr_buf_reset(&b);
	assert_int_equal(xr_enc_file_end(&b, &fe), 0);
	assert_int_equal(xr_dec_file_end(b.p, b.len, &dfe), 0);
	assert_true(dfe.idx == 42 && dfe.size == 99999 && dfe.mtime_sec == -1);
	assert_int_equal(dfe.mtime_nsec, 999999999);
	assert_memory_equal(dfe.hash.b, fe.hash.b, XR_HASH_LEN);
	expect_truncations_fail(&b, dec_file_end_fn);
	expect_trailing_fails(&b, dec_file_end_fn);
	fe.mtime_nsec = 1000000000;
	assert_int_equal(xr_enc_file_end(&b, &fe), XR_EPROTO);
	xr_buf_reset(&b);
	xr_put_varint(&b, 1);
	xr_put_varint(&b, 1);
	xr_put_bytes(&b, fe.hash.b, XR_HASH_LEN);
	xr_put_svarint(&b, 0);
	xr_put_varint(&b, 1000000000);
	assert_int_equal(xr_dec_file_end(b.p, b.len, &dfe), XR_EPROTO);

	xr_buf_reset(&b);
	assert_int_equal(xr_enc_file_abort(&b, &fa), 0);
	assert_int_equal(xr_dec_file_abort(b.p, b.len, &dfa), 0);
	assert_true(dfa.idx == UINT64_MAX);
	assert_int_equal(dfa.reason, XR_ABORT_RETRY);
	expect_truncations_fail(&b, dec_file_abort_fn);
	expect_trailing_fails(&b, dec_file_abort_fn);
	b.p[b.len - 1] = 9;
	assert_int_equal(xr_dec_file_abort(b.p, b.len, &dfa), XR_EPROTO);
	fa.reason = 0;
	assert_int_equal(xr_enc_file_abort(&b, &fa), XR_EPROTO);
	xr_buf_free(&b);
}

/* One-varint payloads and RESULT. */
static void test_u64_and_result(void **state)
{
	struct xr_result r = {.status = XR_EPARTIAL, .files_total = 1, .files_changed = 2,
			      .files_deleted = 3, .bytes_literal = 4, .bytes_matched = 5,
			      .total_size = UINT64_MAX, .cset = 7}, d;
	struct xr_buf b;
	uint64_t v;

	(void)state;
	xr_buf_init(&b);
	assert_int_equal(xr_enc_u64(&b, UINT64_MAX), 0);
	assert_int_equal(xr_dec_u64(b.p, b.len, &v), 0);
	assert_true(v == UINT64_MAX);
	expect_truncations_fail(&b, dec_u64_fn);
	expect_trailing_fails(&b, dec_u64_fn);

	xr_buf_reset(&b);
	assert_int_equal(xr_enc_result(&b, &r), 0);
	assert_int_equal(xr_dec_result(b.p, b.len, &d), 0);
	assert_int_equal(d.status, XR_EPARTIAL);
	assert_true(d.files_total == 1 && d.files_changed == 2 && d.files_deleted == 3);
	assert_true(d.bytes_literal == 4 && d.bytes_matched == 5);
	assert_true(d.total_size == UINT64_MAX && d.cset == 7);
	expect_truncations_fail(&b, dec_result_fn);
	expect_trailing_fails(&b, dec_result_fn);
	xr_buf_reset(&b);
	xr_put_svarint(&b, (int64_t)INT32_MAX + 1);
	for (int i = 0; i < 7; i++)
		xr_put_varint(&b, 0);
	assert_int_equal(xr_dec_result(b.p, b.len, &d), XR_EPROTO);
	xr_buf_free(&b);
}

/* ---- incremental change sets -------------------------------------------- */

/* dec_fn for CSET_BEGIN. */
static int dec_cset_begin_fn(const void *p, size_t n)
{
	struct xr_cset_begin c;
	int rc = xr_dec_cset_begin(p, n, &c);

	if (rc)
		assert_null(c.top);	/* nothing left to free after a failure */
	xr_cset_begin_free(&c);
	return rc;
}

/* dec_fn for SCOPE (into a fresh scope). */
static int dec_scope_fn(const void *p, size_t n)
{
	struct xr_scope sc;
	int rc;

	xr_scope_init(&sc);
	rc = xr_dec_scope(p, n, &sc);
	xr_scope_free(&sc);
	return rc;
}

/* Encodes CSET_BEGIN by hand: cset, flags, then top (if non-NULL) of len bytes. */
static void put_cset(struct xr_buf *b, uint64_t cset, uint64_t flags, const char *top, size_t len)
{
	xr_buf_reset(b);
	xr_put_varint(b, cset);
	xr_put_varint(b, flags);
	if (top)
		xr_put_blob(b, top, len);
}

/*
 * Every proper prefix of an encoded CSET_BEGIN fails, except the bare
 * number (the short form), which must decode with no flags.
 */
static void expect_cset_truncations(const struct xr_buf *b, size_t numlen, uint64_t cset)
{
	for (size_t i = 0; i < b->len; i++) {
		uint8_t *copy = malloc(i ? i : 1);
		struct xr_cset_begin c;

		assert_non_null(copy);
		memcpy(copy, b->p, i);
		if (i == numlen) {
			assert_int_equal(xr_dec_cset_begin(copy, i, &c), 0);
			assert_true(c.cset == cset);
			assert_true(c.flags == 0);
			assert_null(c.top);
		} else {
			assert_true(dec_cset_begin_fn(copy, i) < 0);
		}
		free(copy);
	}
}

/* CSET_BEGIN: the short form, flags and top, and what is refused. */
static void test_cset_begin(void **state)
{
	struct xr_cset_begin c = {.cset = 300, .flags = XR_CSET_INCREMENTAL | XR_CSET_TOP,
				  .top = "xroad"}, d;
	char name[XR_NAME_MAX + 2];
	struct xr_buf b;

	(void)state;
	xr_buf_init(&b);
	/* the short form: a bare varint, as older peers send it */
	xr_put_varint(&b, 5);
	assert_int_equal(xr_dec_cset_begin(b.p, b.len, &d), 0);
	assert_true(d.cset == 5 && d.flags == 0);
	assert_null(d.top);
	xr_cset_begin_free(&d);
	xr_put_u8(&b, 0);	/* an explicit zero: the same */
	assert_int_equal(xr_dec_cset_begin(b.p, b.len, &d), 0);
	assert_true(d.cset == 5 && d.flags == 0);
	assert_null(d.top);
	expect_cset_truncations(&b, 1, 5);
	expect_trailing_fails(&b, dec_cset_begin_fn);
	/* and the encoder writes it for flags 0 */
	xr_buf_reset(&b);
	d.top = "ignored";
	assert_int_equal(xr_enc_cset_begin(&b, &d), 0);
	assert_int_equal(b.len, 1);
	assert_int_equal(b.p[0], 5);

	/* flags and top */
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_cset_begin(&b, &c), 0);
	assert_int_equal(b.len, 2 + 1 + 1 + 5);
	assert_int_equal(xr_dec_cset_begin(b.p, b.len, &d), 0);
	assert_true(d.cset == 300);
	assert_true(d.flags == (XR_CSET_INCREMENTAL | XR_CSET_TOP));
	assert_string_equal(d.top, "xroad");
	assert_ptr_not_equal(d.top, c.top);
	xr_cset_begin_free(&d);
	assert_null(d.top);
	xr_cset_begin_free(&d);	/* twice is harmless */
	expect_cset_truncations(&b, 2, 300);
	expect_trailing_fails(&b, dec_cset_begin_fn);
	/* top "." and a name of XR_NAME_MAX bytes, without XR_CSET_INCREMENTAL */
	c.flags = XR_CSET_TOP;
	c.top = ".";
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_cset_begin(&b, &c), 0);
	assert_int_equal(xr_dec_cset_begin(b.p, b.len, &d), 0);
	assert_true(d.flags == XR_CSET_TOP);
	assert_string_equal(d.top, ".");
	xr_cset_begin_free(&d);
	memset(name, 'n', XR_NAME_MAX);
	name[XR_NAME_MAX] = '\0';
	c.top = name;
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_cset_begin(&b, &c), 0);
	assert_int_equal(xr_dec_cset_begin(b.p, b.len, &d), 0);
	assert_string_equal(d.top, name);
	xr_cset_begin_free(&d);
	/* XR_CSET_INCREMENTAL alone: no top */
	c.cset = UINT64_MAX;
	c.flags = XR_CSET_INCREMENTAL;
	c.top = "not sent";
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_cset_begin(&b, &c), 0);
	assert_int_equal(b.len, 10 + 1);
	assert_int_equal(xr_dec_cset_begin(b.p, b.len, &d), 0);
	assert_true(d.cset == UINT64_MAX && d.flags == XR_CSET_INCREMENTAL);
	assert_null(d.top);
	expect_cset_truncations(&b, 10, UINT64_MAX);
	expect_trailing_fails(&b, dec_cset_begin_fn);

	/* refused: unknown flag bits */
	put_cset(&b, 1, 1u << 2, NULL, 0);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	put_cset(&b, 1, XR_CSET_INCREMENTAL | (1ull << 63), NULL, 0);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	put_cset(&b, 1, XR_CSET_TOP | (1u << 7), "x", 1);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	/* a non-minimal flags varint */
	xr_buf_reset(&b);
	xr_put_varint(&b, 1);
	xr_put_u8(&b, 0x81);
	xr_put_u8(&b, 0x00);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	/* bad tops: more than one name, "..", empty, NUL inside, too long, missing */
	put_cset(&b, 1, XR_CSET_TOP, "a/b", 3);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	put_cset(&b, 1, XR_CSET_TOP, "/", 1);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	put_cset(&b, 1, XR_CSET_TOP, "x/", 2);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	put_cset(&b, 1, XR_CSET_TOP, "..", 2);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	put_cset(&b, 1, XR_CSET_TOP | XR_CSET_INCREMENTAL, "", 0);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	put_cset(&b, 1, XR_CSET_TOP, "a\0b", 3);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	memset(name, 'n', sizeof(name));
	put_cset(&b, 1, XR_CSET_TOP, name, XR_NAME_MAX + 1);
	assert_true(dec_cset_begin_fn(b.p, b.len) < 0);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_ELIMIT);
	put_cset(&b, 1, XR_CSET_TOP, NULL, 0);
	assert_int_equal(dec_cset_begin_fn(b.p, b.len), XR_EPROTO);
	/* the encoder refuses XR_CSET_TOP without a top, or one too long */
	c.flags = XR_CSET_TOP;
	c.top = NULL;
	xr_buf_reset(&b);
	assert_int_equal(xr_enc_cset_begin(&b, &c), XR_ELIMIT);
	c.top = name;
	name[XR_NAME_MAX + 1] = '\0';
	assert_int_equal(xr_enc_cset_begin(&b, &c), XR_ELIMIT);
	xr_buf_free(&b);
}

/* Appends one SCOPE item by hand: flags byte, then a path of len bytes. */
static void put_item(struct xr_buf *b, uint8_t flags, const char *path, size_t len)
{
	xr_put_u8(b, flags);
	xr_put_blob(b, path, len);
}

/* SCOPE: round trip, truncations at and between item boundaries. */
static void test_scope(void **state)
{
	static const struct xr_scope_item items[] = {
		{".", true}, {"conf.d", false}, {"conf.d/local.ini", true},
		{"a b/\xc3\xa4", false}, {"-x", true}, {".hidden/..a", false},
	};
	const size_t nitems = sizeof(items) / sizeof(items[0]);
	size_t ends[sizeof(items) / sizeof(items[0])];
	struct xr_scope sc;
	struct xr_buf b;
	size_t i, k;

	(void)state;
	xr_buf_init(&b);
	for (i = 0; i < nitems; i++) {
		assert_int_equal(xr_enc_scope_item(&b, &items[i]), 0);
		ends[i] = b.len;
	}
	/* the layout: flags byte, then the path as a string */
	assert_int_equal(b.p[0], XR_SCOPE_SUBTREE);
	assert_int_equal(b.p[1], 1);
	assert_int_equal(b.p[2], '.');
	assert_int_equal(b.p[3], 0);
	xr_scope_init(&sc);
	assert_int_equal(xr_dec_scope(b.p, b.len, &sc), 0);
	assert_int_equal(sc.n, nitems);
	for (i = 0; i < nitems; i++) {
		assert_string_equal(sc.v[i].path, items[i].path);
		assert_int_equal(sc.v[i].subtree, items[i].subtree);
	}
	/* a second frame appends (the order is kept: the receiver normalizes) */
	assert_int_equal(xr_dec_scope(b.p, ends[0], &sc), 0);
	assert_int_equal(sc.n, nitems + 1);
	assert_string_equal(sc.v[nitems].path, ".");
	xr_scope_free(&sc);
	/* a prefix decodes only if it ends where an item ends, and then to those items */
	for (i = 0; i < b.len; i++) {
		uint8_t *copy = malloc(i ? i : 1);
		int rc;

		assert_non_null(copy);
		memcpy(copy, b.p, i);
		xr_scope_init(&sc);
		rc = xr_dec_scope(copy, i, &sc);
		for (k = 0; k < nitems && ends[k] != i; k++)
			;
		if (k < nitems) {
			assert_int_equal(rc, 0);
			assert_int_equal(sc.n, k + 1);
			assert_string_equal(sc.v[k].path, items[k].path);
		} else {
			assert_true(rc < 0);
		}
		xr_scope_free(&sc);
		free(copy);
	}
	expect_trailing_fails(&b, dec_scope_fn);
	/* the encoder refuses a path longer than XR_PATH_MAX */
	{
		char *big = malloc(XR_PATH_MAX + 2);
		struct xr_scope_item it = {big, false};

		assert_non_null(big);
		memset(big, 'p', XR_PATH_MAX + 1);
		big[XR_PATH_MAX + 1] = '\0';
		xr_buf_reset(&b);
		assert_int_equal(xr_enc_scope_item(&b, &it), XR_ELIMIT);
		assert_int_equal(b.len, 0);
		free(big);
	}
	xr_buf_free(&b);
}

/* SCOPE: malformed payloads. */
static void test_scope_refused(void **state)
{
	static const char *bad[] = {"", "../x", "/abs", "a//b", "a/./b", "a/", "..", "./a",
				    "a/..", "/"};
	static const uint8_t flags[] = {2, 3, 0x80, 0x81, 0xff};
	char *big = malloc(XR_PATH_MAX + 2);
	struct xr_buf b;
	size_t i;

	(void)state;
	assert_non_null(big);
	xr_buf_init(&b);
	/* an empty frame says nothing */
	assert_int_equal(dec_scope_fn(NULL, 0), XR_EPROTO);
	assert_int_equal(dec_scope_fn("", 0), XR_EPROTO);
	/* unknown flag bits, alone and after a good item */
	for (i = 0; i < sizeof(flags); i++) {
		xr_buf_reset(&b);
		put_item(&b, flags[i], "a", 1);
		assert_int_equal(dec_scope_fn(b.p, b.len), XR_EPROTO);
		xr_buf_reset(&b);
		put_item(&b, 0, "ok", 2);
		put_item(&b, flags[i], "a", 1);
		assert_int_equal(dec_scope_fn(b.p, b.len), XR_EPROTO);
	}
	/* invalid paths */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		xr_buf_reset(&b);
		put_item(&b, XR_SCOPE_SUBTREE, bad[i], strlen(bad[i]));
		if (dec_scope_fn(b.p, b.len) != XR_EPROTO)
			fail_msg("scope path \"%s\" not refused", bad[i]);
		xr_buf_reset(&b);
		put_item(&b, 0, "ok", 2);
		put_item(&b, 0, bad[i], strlen(bad[i]));
		assert_int_equal(dec_scope_fn(b.p, b.len), XR_EPROTO);
	}
	/* a NUL inside the length */
	xr_buf_reset(&b);
	put_item(&b, 0, "a\0b", 3);
	assert_int_equal(dec_scope_fn(b.p, b.len), XR_EPROTO);
	xr_buf_reset(&b);
	put_item(&b, 0, "ab\0", 3);
	assert_int_equal(dec_scope_fn(b.p, b.len), XR_EPROTO);
	/* a component longer than XR_NAME_MAX; a path of XR_PATH_MAX bytes and more */
	memset(big, 'p', XR_PATH_MAX + 1);
	xr_buf_reset(&b);
	put_item(&b, 0, big, XR_NAME_MAX + 1);
	assert_int_equal(dec_scope_fn(b.p, b.len), XR_EPROTO);
	for (i = XR_NAME_MAX; i < XR_PATH_MAX + 1; i += XR_NAME_MAX + 1)
		big[i] = '/';
	xr_buf_reset(&b);
	put_item(&b, 0, big, XR_PATH_MAX - 1);
	assert_int_equal(dec_scope_fn(b.p, b.len), 0);
	xr_buf_reset(&b);
	put_item(&b, 0, big, XR_PATH_MAX);
	assert_int_equal(dec_scope_fn(b.p, b.len), XR_EPROTO);
	xr_buf_reset(&b);
	put_item(&b, 0, big, XR_PATH_MAX + 1);
	assert_int_equal(dec_scope_fn(b.p, b.len), XR_ELIMIT);
	/* a flags byte without its path, a path length past the end */
	xr_buf_reset(&b);
	put_item(&b, 0, "ok", 2);
	xr_put_u8(&b, XR_SCOPE_SUBTREE);
	assert_int_equal(dec_scope_fn(b.p, b.len), XR_EPROTO);
	xr_put_varint(&b, 5);
	xr_put_bytes(&b, "abc", 3);
	assert_int_equal(dec_scope_fn(b.p, b.len), XR_EPROTO);
	xr_buf_free(&b);
	free(big);
}

/* SCOPE: no more than XR_MAX_SCOPE items in all, over any number of frames. */
static void test_scope_limit(void **state)
{
	struct xr_scope_item it = {"a", false};
	struct xr_scope sc;
	struct xr_buf b, one;
	size_t i;

	(void)state;
	xr_buf_init(&b);
	xr_buf_init(&one);
	for (i = 0; i < XR_MAX_SCOPE; i++)
		assert_int_equal(xr_enc_scope_item(&b, &it), 0);
	assert_int_equal(b.len, 3 * (size_t)XR_MAX_SCOPE);
	xr_put_u8(&one, 0);
	xr_put_str(&one, "b");
	xr_scope_init(&sc);
	/* one item over in a single payload */
	xr_put_bytes(&b, one.p, one.len);
	assert_int_equal(xr_dec_scope(b.p, b.len, &sc), XR_ELIMIT);
	xr_scope_free(&sc);
	/* exactly the limit, then one more frame */
	assert_int_equal(xr_dec_scope(b.p, b.len - one.len, &sc), 0);
	assert_int_equal(sc.n, XR_MAX_SCOPE);
	assert_int_equal(xr_dec_scope(one.p, one.len, &sc), XR_ELIMIT);
	assert_int_equal(sc.n, XR_MAX_SCOPE);
	/* one below: the first of two more fits, the second does not */
	free(sc.v[--sc.n].path);
	xr_put_bytes(&one, one.p, one.len);
	assert_int_equal(xr_dec_scope(one.p, one.len, &sc), XR_ELIMIT);
	assert_int_equal(sc.n, XR_MAX_SCOPE);
	xr_scope_free(&sc);
	xr_buf_free(&b);
	xr_buf_free(&one);
}

/* Runs the codec tests. */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_edges),
		cmocka_unit_test(test_svarint),
		cmocka_unit_test(test_reader_sticky),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_buf_growth),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_options_limits),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_idmap),
		cmocka_unit_test(test_flist_roundtrip),
		cmocka_unit_test(test_flist_truncated),
		cmocka_unit_test(test_flist_refused),
		cmocka_unit_test(test_flist_encoder_normalizes),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_file_msgs),
		cmocka_unit_test(test_u64_and_result),
		cmocka_unit_test(test_cset_begin),
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_scope_refused),
		cmocka_unit_test(test_scope_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

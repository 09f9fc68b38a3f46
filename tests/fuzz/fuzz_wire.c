/*
 * fuzz_wire.c - libFuzzer target for every message decoder.
 * The first input byte picks the decoder, the rest is the payload.  A
 * payload that decodes must re-encode, and that encoding must decode and
 * re-encode to the same bytes.
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_wire.c \
 *     transport/wire.c engine/manifest.c ... -lz
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xr/err.h"
#include "xr/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { D_HELLO, D_OPTIONS, D_TEXT, D_IDMAP, D_FLIST, D_REQUEST, D_FILE_BEGIN, D_FILE_END,
       D_FILE_ABORT, D_U64, D_CSET_BEGIN, D_SCOPE, D_RESULT, D_COUNT };

/* Decodes p as message kind k and re-encodes it into out; returns the decoder's rc. */
static int roundtrip(int k, const uint8_t *p, size_t n, struct xr_buf *out)
{
	int rc = 0;

	switch (k) {
	case D_HELLO: {
		struct xr_hello h;

		rc = xr_dec_hello(p, n, &h);
		if (!rc && xr_enc_hello(out, &h))
			abort();
		xr_hello_free(&h);
		break;
	}
	case D_OPTIONS: {
		struct xr_wire_options o;

		rc = xr_dec_options(p, n, &o);
		if (!rc && xr_enc_options(out, &o))
			abort();
		xr_options_free(&o);
		break;
	}
	case D_TEXT: {
		struct xr_text t;

		rc = xr_dec_text(p, n, &t);
		if (!rc && xr_enc_text(out, &t))
			abort();
		free(t.text);
		break;
	}
	case D_IDMAP: {
		struct xr_idname *ids = NULL;
		size_t cnt = 0, i;
		char kind;

		rc = xr_dec_idmap(p, n, &kind, &ids, &cnt);
		if (!rc && xr_enc_idmap(out, kind, ids, cnt))
			abort();
		for (i = 0; i < cnt; i++)
			free(ids[i].name);
		free(ids);
		break;
	}
	case D_FLIST: {
		struct xr_flist_coder c;
		struct xr_manifest m;
		size_t i;

		xr_flist_coder_init(&c);
		xr_manifest_init(&m);
		rc = xr_dec_flist(p, n, &c, &m);
		if (!rc) {
			xr_flist_coder_init(&c);
			for (i = 0; i < m.n; i++)
				if (xr_enc_entry(out, &c, &m.e[i]))
					abort();
		}
		xr_manifest_free(&m);
		break;
	}
	case D_REQUEST: {
		struct xr_request r;

		rc = xr_dec_request(p, n, &r);
		if (!rc && xr_enc_request(out, &r))
			abort();
		break;
	}
	case D_FILE_BEGIN: {
		struct xr_file_begin f;

		rc = xr_dec_file_begin(p, n, &f);
		if (!rc && xr_enc_file_begin(out, &f))
			abort();
		break;
	}
	case D_FILE_END: {
		struct xr_file_end f;

		rc = xr_dec_file_end(p, n, &f);
		if (!rc && xr_enc_file_end(out, &f))
			abort();
		break;
	}
	case D_FILE_ABORT: {
		struct xr_file_abort f;

		rc = xr_dec_file_abort(p, n, &f);
		if (!rc && xr_enc_file_abort(out, &f))
			abort();
		break;
	}
	case D_U64: {
		uint64_t v;

		rc = xr_dec_u64(p, n, &v);
		if (!rc && xr_enc_u64(out, v))
			abort();
		break;
	}
	case D_CSET_BEGIN: {
		struct xr_cset_begin c;

		rc = xr_dec_cset_begin(p, n, &c);
		if (!rc && xr_enc_cset_begin(out, &c))
			abort();
		xr_cset_begin_free(&c);
		break;
	}
	case D_SCOPE: {
		struct xr_scope sc;

		xr_scope_init(&sc);
		rc = xr_dec_scope(p, n, &sc);
		for (size_t i = 0; !rc && i < sc.n; i++)
			if (xr_enc_scope_item(out, &sc.v[i]))
				abort();
		xr_scope_free(&sc);
		break;
	}
	default: {
		struct xr_result r;

		rc = xr_dec_result(p, n, &r);
		if (!rc && xr_enc_result(out, &r))
			abort();
		break;
	}
	}
	/* decoders fail only with these */
	if (rc && rc != XR_EPROTO && rc != XR_ELIMIT && rc != XR_ENOMEM)
		abort();
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xr_buf a, b;
	int k;

	if (size < 1)
		return 0;
	k = data[0] % D_COUNT;
	xr_buf_init(&a);
	xr_buf_init(&b);
	if (roundtrip(k, data + 1, size - 1, &a) == 0) {
		if (roundtrip(k, a.p, a.len, &b) != 0)
			abort();
		if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0))
			abort();
	}
	xr_buf_free(&a);
	xr_buf_free(&b);
	return 0;
}

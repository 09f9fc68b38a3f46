/*
 * fuzz_journal.c - libFuzzer target for the commit journal parser
 * (xr_journal_parse): a journal found at recovery is read back from disk and
 * must be refused, not trusted, when damaged.  On success every op must
 * satisfy what the replay relies on (valid confined paths, known ops and
 * types, symlink targets only on symlink renames).
 *
 *   clang -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_journal.c engine/commit.c engine/fs.c engine/meta.c \
 *     engine/manifest.c engine/filter.c engine/hash.c engine/err.c engine/log.c \
 *     -lxxhash
 *   ./a.out -max_total_time=20 tests/fuzz/corpus/journal
 * Adding -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION makes the parser skip
 * the checksums, so the fuzzer also reaches the field checks behind them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xr/commit.h"
#include "xr/err.h"
#include "xr/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks the promises of a successful parse; aborts (a finding) when broken. */
static void check_ops(const struct xr_journal_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct xr_journal_op *o = &ops[i];
		bool root = strcmp(o->path, ".") == 0;

		if (!strchr("RMNDAF", o->op) || o->op == 0)
			abort();
		if (!xr_path_valid(o->path) || (root && o->op != 'A' && o->op != 'F'))
			abort();
		if (o->type < XR_FT_REG || o->type > XR_FT_SOCK)
			abort();
		if ((o->link != NULL) != (o->op == 'N' && o->type == XR_FT_LINK))
			abort();
		if (o->link && (!*o->link || strlen(o->link) > XR_PATH_MAX))
			abort();
		if (o->mode > 07777 || o->mtime_nsec >= 1000000000u)
			abort();
		if (o->op != 'A' && o->flags != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xr_journal_op *ops = NULL;
	size_t n = 0;
	int rc;

	rc = xr_journal_parse(data, size, &ops, &n);
	if (rc == 0) {
		check_ops(ops, n);
		xr_journal_ops_free(ops, n);
	} else if (ops != NULL || (rc != XR_ESTREAM && rc != XR_ENOMEM)) {
		abort();
	}
	return 0;
}

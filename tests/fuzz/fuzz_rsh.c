/*
 * fuzz_rsh.c - libFuzzer target for the -e/--rsh parser and the location
 * parser (both take user-supplied text from the command line or a config).
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_rsh.c \
 *     transport/remote.c transport/ssh.c engine/err.c engine/log.c ... -lssh2 -lcrypto
 * The input is split at the first NUL: location, then -e text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xr/err.h"
#include "xr/log.h"
#include "xr/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks the invariants of a parsed -e command. */
static void check_rsh(const struct xr_rsh *r)
{
	int i;

	if (r->argc < 1 || !r->argv || r->argv[r->argc] != NULL)
		abort();
	for (i = 0; i < r->argc; i++)
		if (!r->argv[i])
			abort();
	for (i = 0; i < r->nidentities; i++)
		if (!r->identities[i])
			abort();
	if (r->port < 0 || r->port > 65535 || r->connect_timeout < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), *rsh;
	struct xr_location loc;
	struct xr_rsh r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	rsh = buf + strlen(buf) + 1;
	if (rsh > buf + size)
		rsh = buf + size;
	xr_log_init(-1, "");
	if (xr_location_parse(buf, &loc) == 0) {
		if (!loc.path || (loc.remote && (!loc.host || !*loc.host)) ||
		    (!loc.remote && (loc.host || loc.user)))
			abort();
		xr_location_free(&loc);
	}
	if (xr_rsh_parse(rsh, &r) == 0) {
		check_rsh(&r);
		xr_rsh_free(&r);
	} else if (r.argv) {
		abort();
	}
	free(buf);
	return 0;
}

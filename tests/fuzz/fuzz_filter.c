/* fuzz_filter.c - libFuzzer target: input lines become filter rules, then paths are matched.
 * Most inputs are bad rules and print an error; run with -close_fd_mask=2 to hide them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xr/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Paths exercising anchors, depth, dot files and wildcard characters. */
static const char *const paths[] = {
	"foo", "a/foo", "a/b/c", "conf.d/node.ini", "dir", "dir/x/y", ".hidden", "x*y",
	"[a]", "a\\b", "ns/very/deep/path/to/some/file.txt",
};

/*
 * Splits data into lines, adds each as a full rule (kind 0; "merge" lines
 * are skipped so the fuzzer does not read arbitrary files), checks the
 * canonical texts round trip, and matches the paths on both sides.
 * Pattern/text pairs from the first two lines also go through xr_wildmatch.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xr_filters *f, *g;
	char *buf, *line, *next;
	const char *lines[2] = {NULL, NULL};
	size_t i, k, nlines = 0;

	if (size > 4096)
		return 0;
	buf = malloc(size + 1);
	f = xr_filters_new();
	g = xr_filters_new();
	if (!buf || !f || !g)
		goto out;
	memcpy(buf, data, size);
	buf[size] = '\0';
	xr_filters_set_delete_excluded(f, size & 1);
	for (line = buf; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (nlines < 2)
			lines[nlines] = line;
		nlines++;
		if (strncmp(line, "merge", 5) == 0 || line[0] == '.')
			continue;
		xr_filters_add(f, (nlines % 5 == 0) ? '-' : 0, line, "fuzz");
	}
	if (lines[0] && lines[1])
		(void)xr_wildmatch(lines[0], lines[1]);
	xr_filters_set_delete_excluded(g, size & 1);
	for (i = 0; i < xr_filters_count(f); i++)
		if (xr_filters_add(g, 0, xr_filters_rule(f, i), "fuzz-canonical") != 0)
			abort();
	if (xr_filters_count(g) != xr_filters_count(f))
		abort();
	for (k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
		for (i = 0; i < 4; i++) {
			bool dir = i & 1;
			enum xr_filter_side side = (i & 2) ? XR_SIDE_RECEIVER : XR_SIDE_SENDER;

			if (xr_filters_excluded(f, paths[k], dir, side)
			    != xr_filters_excluded(g, paths[k], dir, side))
				abort();
		}
	}
out:
	xr_filters_free(f);
	xr_filters_free(g);
	free(buf);
	return 0;
}

/*
 * xr_latency - measures how long a change on the primary takes to show up on
 * secondaries (a measurement tool for tests/integration/watch.sh, not product
 * code).  For each of COUNT changes it writes SRC/NAME with a sequence number
 * (mode rename: SRC/NAME.tmp then rename(2) over SRC/NAME, as the signer
 * saves keyconf.xml; mode inplace: open with O_TRUNC, write, close), takes the
 * time right after rename()/close(), then polls DEST/NAME on every DEST every
 * 0.5 ms until it holds that content, and records the delay per DEST.
 *
 *   xr_latency [-n COUNT] [-g GAP_MS] [-t TIMEOUT_MS] [-m rename|inplace]
 *              SRC NAME DEST...
 *
 * Prints "# latency DEST: n=N p50=X p95=X p99=X max=X ms" per DEST and one
 * line over all DESTs; exits 0 when every change arrived everywhere within
 * TIMEOUT_MS (default 5000), 1 when one did not, 2 on a usage or I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_DESTS 8
#define CONTENT_MAX 256

/* Monotonic time in microseconds. */
static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Sleeps us microseconds. */
static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000L, (us % 1000000L) * 1000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Writes len bytes of buf to fd; returns 0 or -1. */
static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Writes content to src/name (in place, or tmp + rename); returns 0 or -1 (with a message). */
static int make_change(const char *src, const char *name, int inplace, const char *content)
{
	char path[4096], tmp[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", src, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(inplace ? path : tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 || write_all(fd, content, strlen(content)) < 0) {
		fprintf(stderr, "xr_latency: %s: write: %s\n", inplace ? path : tmp,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "xr_latency: %s: close: %s\n", path, strerror(errno));
		return -1;
	}
	if (!inplace && rename(tmp, path) < 0) {
		fprintf(stderr, "xr_latency: %s: rename: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Returns 1 when path holds exactly content, else 0. */
static int holds(const char *path, const char *content)
{
	char buf[CONTENT_MAX + 1];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	return strcmp(buf, content) == 0;
}

/* qsort comparator for long long; returns <0, 0 or >0. */
static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile p (0..100) of n sorted values, in ms. */
static double pct(const long long *v, int n, int p)
{
	int rank = (p * n + 99) / 100;

	if (rank < 1)
		rank = 1;
	return (double)v[rank - 1] / 1000.0;
}

/* Prints one "# latency" line for n values (sorted here). */
static void report(const char *label, long long *v, int n, int missing)
{
	if (n == 0) {
		printf("# latency %s: no change arrived (%d missing)\n", label, missing);
		return;
	}
	qsort(v, (size_t)n, sizeof(*v), cmp_ll);
	printf("# latency %s: n=%d p50=%.2f p95=%.2f p99=%.2f max=%.2f ms%s\n", label, n,
	       pct(v, n, 50), pct(v, n, 95), pct(v, n, 99), (double)v[n - 1] / 1000.0,
	       missing ? " (some missing)" : "");
}

int main(int argc, char **argv)
{
	long long *lat[MAX_DESTS], *all, t0, t;
	char path[MAX_DESTS][4096], content[CONTENT_MAX];
	int count = 50, gap_ms = 20, timeout_ms = 5000, inplace = 0;
	int nd, i, d, opt, pending, got[MAX_DESTS] = {0}, nall = 0, missing = 0;
	int done[MAX_DESTS];

	while ((opt = getopt(argc, argv, "n:g:t:m:")) != -1) {
		switch (opt) {
		case 'n':
			count = atoi(optarg);
			break;
		case 'g':
			gap_ms = atoi(optarg);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 'm':
			inplace = strcmp(optarg, "inplace") == 0;
			break;
		default:
			goto usage;
		}
	}
	nd = argc - optind - 2;
	if (count < 1 || nd < 1 || nd > MAX_DESTS)
		goto usage;
	all = calloc((size_t)(count * nd), sizeof(*all));
	if (all == NULL)
		return 2;
	for (d = 0; d < nd; d++) {
		lat[d] = calloc((size_t)count, sizeof(**lat));
		if (lat[d] == NULL)
			return 2;
		snprintf(path[d], sizeof(path[d]), "%s/%s", argv[optind + 2 + d], argv[optind + 1]);
	}
	for (i = 1; i <= count; i++) {
		snprintf(content, sizeof(content), "xr_latency sequence %d pid %ld\n", i,
			 (long)getpid());
		if (make_change(argv[optind], argv[optind + 1], inplace, content) < 0)
			return 2;
		t0 = now_us();
		pending = nd;
		memset(done, 0, sizeof(done));
		while (pending > 0) {
			t = now_us();
			for (d = 0; d < nd; d++) {
				if (done[d] || !holds(path[d], content))
					continue;
				done[d] = 1;
				pending--;
				lat[d][got[d]++] = t - t0;
				all[nall++] = t - t0;
			}
			if (pending == 0)
				break;
			if (t - t0 > (long long)timeout_ms * 1000) {
				for (d = 0; d < nd; d++) {
					if (done[d])
						continue;
					fprintf(stderr, "xr_latency: change %d did not reach %s "
						"within %d ms\n", i, path[d], timeout_ms);
				}
				missing += pending;
				break;
			}
			sleep_us(500);
		}
		sleep_us((long)gap_ms * 1000L);
	}
	for (d = 0; d < nd; d++)
		report(argv[optind + 2 + d], lat[d], got[d], count - got[d]);
	report(inplace ? "all (close to in place)" : "all (rename to in place)", all, nall,
	       missing);
	for (d = 0; d < nd; d++)
		free(lat[d]);
	free(all);
	return missing ? 1 : 0;
usage:
	fprintf(stderr, "usage: xr_latency [-n COUNT] [-g GAP_MS] [-t TIMEOUT_MS] "
		"[-m rename|inplace] SRC NAME DEST...\n");
	return 2;
}

/*
 * latency - change-to-applied latency of a replicator: writes changes on the primary and
 * watches the secondaries with inotify (no polling bias) until each change is there.
 *
 *   latency [-n COUNT] [-g GAP_MS | -r RATE] [-f NFILES] [-s SUBDIR] [-t TIMEOUT_MS]
 *           [-w WAIT_MS] [-o RAWFILE] SRC DEST...
 *
 * Change i (0 <= i < COUNT) rewrites SRC/SUBDIR/lat-K.txt, K = i % NFILES (default 1), the way
 * the X-Road signer saves keyconf.xml: the new content ("seq i" and ~200 bytes) goes to
 * lat-K.txt.tmp (excluded by the guide's "*.tmp"), then rename(2) puts it in place; t0 is
 * taken right after rename() returns. Changes are issued on a fixed schedule, one every GAP_MS
 * (default 50) or RATE per second; a late write does not shift the later ones.
 *
 * Every DEST/SUBDIR is watched with inotify (IN_MOVED_TO, IN_CLOSE_WRITE); on an event for
 * lat-K.txt the file is read, and every change of that file with seq <= the seq found is
 * counted as arrived at that DEST now (a change overwritten on the primary before the
 * replicator shipped it arrives with its successor: "superseded"). As a safety net, files with
 * a change pending for more than 20 ms are also re-read every 20 ms ("found by the fallback
 * check", reported; 0 in a healthy run). SUBDIR (default bench-lat) must exist on SRC; the
 * tool waits up to WAIT_MS (default 30000) for it to appear on every DEST first.
 *
 * The latency of a change is the time from t0 until it is present with the new content on
 * EVERY DEST (the maximum over the DESTs). RAWFILE gets one line per change:
 *   SEQ LAT_ALL_US LAT_DEST1_US ... LAT_DESTN_US    (-1: never arrived)
 * stdout gets a summary: "changes N arrived N superseded N fallback N p50 X p95 X p99 X max X"
 * (milliseconds, nearest rank, over the changes that arrived everywhere). Gives up TIMEOUT_MS
 * (default 10000) after the last write. Exits 0 when every change arrived everywhere, 1 when
 * some did not, 2 on a usage or I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_DESTS 16
#define MAX_FILES 1024
#define FALLBACK_US 20000LL

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static const char *src, *sub = "bench-lat";
static const char *dests[MAX_DESTS];
static int ndest, nfiles = 1, count = 100;
static long long *t0;		/* [count] time after rename, 0 = not issued yet */
static long long *arr;		/* [count * ndest] arrival time, 0 = not yet */
static int *sup;		/* [count] 1 when arrived with a successor somewhere */
static int *nxt;		/* [ndest * nfiles] the lowest seq of file K not arrived at DEST */
static int issued, fallback_hits;
static int wd[MAX_DESTS];

/* Writes change seq to SRC/SUB/lat-K.txt via tmp + rename; returns 0 or -1. */
static int write_change(int seq)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], buf[512];
	int k = seq % nfiles, fd, len;

	snprintf(path, sizeof(path), "%s/%s/lat-%d.txt", src, sub, k);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	len = snprintf(buf, sizeof(buf), "seq %d\n%0200d\n", seq, seq * 7919);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 || write(fd, buf, (size_t)len) != len || close(fd) != 0) {
		perror(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

/* Reads DEST d's copy of file k and marks what it holds as arrived at time now; returns the
 * number of changes newly marked. */
static int check_file(int d, int k, long long now, int by_fallback)
{
	char path[PATH_MAX], buf[64];
	int fd, seq, got = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s/lat-%d.txt", dests[d], sub, k);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (sscanf(buf, "seq %d", &seq) != 1)
		return 0;
	while (nxt[d * nfiles + k] <= seq && nxt[d * nfiles + k] < issued) {
		int i = nxt[d * nfiles + k];

		arr[(long)i * ndest + d] = now;
		if (i < seq)
			sup[i] = 1;
		nxt[d * nfiles + k] += nfiles;
		got++;
	}
	if (by_fallback)
		fallback_hits += got;
	return got;
}

/* Returns 1 when every issued change has arrived at every DEST. */
static int all_arrived(void)
{
	int d, k;

	for (d = 0; d < ndest; d++)
		for (k = 0; k < nfiles; k++)
			if (nxt[d * nfiles + k] < issued)
				return 0;
	return 1;
}

/* Handles the pending inotify events; returns 0 or -1. */
static int read_events(int ifd)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n = read(ifd, buf, sizeof(buf));
	long long now = now_us();
	char *p;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	for (p = buf; p < buf + n;) {
		struct inotify_event *ev = (struct inotify_event *)p;
		int d, k;

		p += sizeof(*ev) + ev->len;
		if (ev->mask & IN_Q_OVERFLOW) {
			for (d = 0; d < ndest; d++)
				for (k = 0; k < nfiles; k++)
					check_file(d, k, now, 0);
			continue;
		}
		if (!ev->len || sscanf(ev->name, "lat-%d.txt", &k) != 1 || k < 0 || k >= nfiles ||
			strstr(ev->name, ".tmp"))
			continue;
		for (d = 0; d < ndest && wd[d] != ev->wd; d++)
			;
		if (d < ndest)
			check_file(d, k, now, 0);
	}
	return 0;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* Runs the measurement; returns the exit status. */
int main(int argc, char **argv)
{
	long long period = 50000, timeout = 10000000, wait_dirs = 30000000, start, last = 0;
	long long lastcheck = 0, *lat;
	const char *rawfile = NULL;
	int opt, ifd, d, i, ok = 0, nsup = 0;
	FILE *raw = NULL;

	while ((opt = getopt(argc, argv, "n:g:r:f:s:t:w:o:")) != -1) {
		switch (opt) {
		case 'n': count = atoi(optarg); break;
		case 'g': period = (long long)(atof(optarg) * 1000); break;
		case 'r': period = (long long)(1e6 / atof(optarg)); break;
		case 'f': nfiles = atoi(optarg); break;
		case 's': sub = optarg; break;
		case 't': timeout = atoll(optarg) * 1000; break;
		case 'w': wait_dirs = atoll(optarg) * 1000; break;
		case 'o': rawfile = optarg; break;
		default: goto usage;
		}
	}
	if (argc - optind < 2 || argc - optind - 1 > MAX_DESTS || count < 1 || nfiles < 1 ||
		nfiles > MAX_FILES || period < 0)
		goto usage;
	src = argv[optind];
	for (i = optind + 1; i < argc; i++)
		dests[ndest++] = argv[i];
	umask(027);
	t0 = calloc((size_t)count, sizeof(*t0));
	arr = calloc((size_t)count * (size_t)ndest, sizeof(*arr));
	sup = calloc((size_t)count, sizeof(*sup));
	nxt = calloc((size_t)ndest * (size_t)nfiles, sizeof(*nxt));
	lat = calloc((size_t)count, sizeof(*lat));
	if (!t0 || !arr || !sup || !nxt || !lat)
		return perror("calloc"), 2;
	for (d = 0; d < ndest; d++)
		for (i = 0; i < nfiles; i++)
			nxt[d * nfiles + i] = i;

	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0)
		return perror("inotify_init1"), 2;
	start = now_us();
	for (d = 0; d < ndest; d++) {
		char path[PATH_MAX];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dests[d], sub);
		while (stat(path, &st) != 0) {
			if (now_us() - start > wait_dirs) {
				fprintf(stderr, "latency: %s did not appear\n", path);
				return 2;
			}
			usleep(10000);
		}
		wd[d] = inotify_add_watch(ifd, path, IN_MOVED_TO | IN_CLOSE_WRITE);
		if (wd[d] < 0)
			return perror(path), 2;
	}

	start = now_us() + 100000;
	for (;;) {
		long long now = now_us(), next, tmo;
		struct pollfd pf = {ifd, POLLIN, 0};

		while (issued < count && now >= start + issued * period) {
			if (write_change(issued) != 0)
				return 2;
			t0[issued] = now_us();
			last = t0[issued];
			issued++;
			now = now_us();
		}
		if (issued == count && (all_arrived() || now - last > timeout))
			break;
		/* safety net: re-read files with a change pending for FALLBACK_US (after taking
		 * the queued events, so that an event is never beaten by the re-read) */
		if (now - lastcheck >= FALLBACK_US) {
			if (read_events(ifd) < 0)
				return perror("inotify read"), 2;
			now = now_us();
			lastcheck = now;
			for (d = 0; d < ndest; d++)
				for (i = 0; i < nfiles; i++) {
					int s = nxt[d * nfiles + i];

					if (s < issued && now - t0[s] >= FALLBACK_US)
						check_file(d, i, now, 1);
				}
		}
		next = issued < count ? start + issued * period : now + FALLBACK_US;
		if (next > lastcheck + FALLBACK_US)
			next = lastcheck + FALLBACK_US;
		tmo = (next - now + 999) / 1000;
		if (poll(&pf, 1, tmo < 0 ? 0 : (int)tmo) > 0 && read_events(ifd) < 0)
			return perror("inotify read"), 2;
	}

	if (rawfile && !(raw = fopen(rawfile, "w")))
		return perror(rawfile), 2;
	for (i = 0; i < count; i++) {
		long long m = 0;

		for (d = 0; d < ndest; d++) {
			long long a = arr[(long)i * ndest + d];

			if (!a) {
				m = -1;
				break;
			}
			if (a - t0[i] > m)
				m = a - t0[i];
		}
		if (m >= 0)
			lat[ok++] = m < 0 ? 0 : m;
		nsup += sup[i];
		if (raw) {
			fprintf(raw, "%d %lld", i, m);
			for (d = 0; d < ndest; d++) {
				long long a = arr[(long)i * ndest + d];

				fprintf(raw, " %lld", a ? a - t0[i] : -1LL);
			}
			fputc('\n', raw);
		}
	}
	if (raw)
		fclose(raw);
	qsort(lat, (size_t)ok, sizeof(*lat), cmp_ll);
#define PCT(p) (ok ? (double)lat[(ok * (p) + 99) / 100 - 1] / 1000.0 : -1.0)
	printf("changes %d arrived %d superseded %d fallback %d p50 %.2f p95 %.2f p99 %.2f "
		"max %.2f\n", count, ok, nsup, fallback_hits, PCT(50), PCT(95), PCT(99), PCT(100));
	return ok == count ? 0 : 1;
usage:
	fprintf(stderr, "usage: latency [-n COUNT] [-g GAP_MS | -r RATE] [-f NFILES] [-s SUBDIR]"
		" [-t TIMEOUT_MS] [-w WAIT_MS] [-o RAWFILE] SRC DEST...\n");
	return 2;
}

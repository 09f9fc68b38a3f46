/*
 * xr_ssh_probe - drives the transport end to end: parses LOCATION and -e as
 * the CLI does, starts the remote command (default "cat") through
 * xr_transport_remote (or xr_transport_local for a local LOCATION), sends
 * frames of random sizes up to XR_FRAME_MAX, reads them back echoed and
 * verifies them.  Exits with xr_exit_code() of the first error, or with the
 * remote command's exit status.
 *
 *   xr_ssh_probe [-e RSH] [--contimeout S] [--timeout S] [-n FRAMES] [--seed N]
 *                LOCATION [-- REMOTE-COMMAND...]
 *   xr_ssh_probe --echo              copy stdin to stdout (local serve side)
 *   xr_ssh_probe --silent-listener   listen on 127.0.0.1, print the port, never accept
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "xr/conn.h"
#include "xr/err.h"
#include "xr/log.h"
#include "xr/transport.h"
#include "xr/wire.h"

#define IN_FLIGHT 4

/* xorshift64* step. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Fills frame i (size and bytes are a function of seed and i); returns its size. */
static size_t make_frame(uint64_t seed, uint64_t i, uint8_t *buf)
{
	uint64_t s = seed ^ (i + 1) * 0x9e3779b97f4a7c15ull, r;
	size_t len, k;

	r = rnd(&s);
	if (i == 0)
		len = XR_FRAME_MAX;
	else if (i == 1)
		len = 0;
	else if (r % 4 == 0)
		len = (size_t)(rnd(&s) % (XR_FRAME_MAX + 1));
	else
		len = (size_t)(rnd(&s) % 4096);
	for (k = 0; k < len; k++) {
		if (k % 8 == 0)
			r = rnd(&s);
		buf[k] = (uint8_t)(r >> (8 * (k % 8)));
	}
	return len;
}

/* Copies stdin to stdout until EOF; returns the exit code. */
static int echo_main(void)
{
	static char buf[65536];
	ssize_t n, w, off;

	signal(SIGPIPE, SIG_IGN);
	while ((n = read(0, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (off = 0; off < n; off += w) {
			w = write(1, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w < 0)
				return 1;
		}
	}
	return 0;
}

/* Listens on 127.0.0.1 (ephemeral port), prints the port, never accepts. */
static int listener_main(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("listener");
		return 1;
	}
	printf("%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (;;)
		pause();
}

/* Returns CLOCK_MONOTONIC seconds as a double. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends frames and checks the echo; returns 0 or an xr_err. */
static int run_echo(struct xr_conn *c, uint64_t seed, long frames, uint64_t *bytes)
{
	uint8_t *want = malloc(XR_FRAME_MAX), *out = malloc(XR_FRAME_MAX);
	const uint8_t *p;
	long sent = 0, got = 0;
	size_t n, wlen;
	uint8_t type;
	int rc = 0;

	if (!want || !out) {
		rc = XR_ENOMEM;
		goto out;
	}
	while (got < frames) {
		while (sent < frames && sent - got < IN_FLIGHT) {
			n = make_frame(seed, (uint64_t)sent, out);
			rc = xr_conn_send(c, XR_MSG_FILE_DATA, out, n);
			if (rc)
				goto out;
			sent++;
		}
		rc = xr_conn_wait_frame(c, &type, &p, &n);
		if (rc < 0)
			goto out;
		rc = 0;
		wlen = make_frame(seed, (uint64_t)got, want);
		if (type != XR_MSG_FILE_DATA || n != wlen || (n && memcmp(p, want, n) != 0)) {
			fprintf(stderr, "xr_ssh_probe: frame %ld: echo differs (type %u, %zu bytes, "
				"expected %zu)\n", got, type, n, wlen);
			rc = XR_ESTREAM;
			goto out;
		}
		*bytes += n;
		got++;
	}
out:
	free(want);
	free(out);
	return rc;
}

/* Prints usage; returns exit code 1. */
static int usage(void)
{
	fprintf(stderr, "usage: xr_ssh_probe [-e RSH] [--contimeout S] [--timeout S] "
			"[-n FRAMES] [--seed N] LOCATION [-- CMD...]\n"
			"       xr_ssh_probe --echo | --silent-listener\n");
	return 1;
}

int main(int argc, char **argv)
{
	static char *default_cmd[] = {"cat", NULL};
	char *local_argv[] = {argv[0], "--echo", NULL};
	const char *rsh_arg = NULL, *where = NULL;
	char **cmd = default_cmd;
	struct xr_location loc;
	struct xr_rsh rsh;
	struct xr_conn *c = NULL;
	int contimeout = 0, timeout = 0, i, err, status;
	long frames = 20;
	uint64_t seed = (uint64_t)time(NULL), bytes = 0;
	double t0;

	if (argc == 2 && !strcmp(argv[1], "--echo"))
		return echo_main();
	if (argc == 2 && !strcmp(argv[1], "--silent-listener"))
		return listener_main();
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			if (i + 1 < argc)
				cmd = argv + i + 1;
			break;
		} else if (!strcmp(argv[i], "-e") && i + 1 < argc) {
			rsh_arg = argv[++i];
		} else if (!strcmp(argv[i], "--contimeout") && i + 1 < argc) {
			contimeout = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			timeout = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			frames = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else if (argv[i][0] == '-' || where) {
			return usage();
		} else {
			where = argv[i];
		}
	}
	if (!where)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	xr_log_init(0, "");
	err = xr_location_parse(where, &loc);
	if (err)
		return xr_exit_code(err);
	err = xr_rsh_parse(rsh_arg, &rsh);
	if (err) {
		xr_location_free(&loc);
		return xr_exit_code(err);
	}
	t0 = now_s();
	if (loc.remote)
		err = xr_transport_remote(&rsh, &loc, cmd, contimeout, timeout, &c);
	else
		err = xr_transport_local(local_argv, timeout, &c);
	if (!err)
		err = run_echo(c, seed, frames, &bytes);
	status = c ? xr_conn_close(c) : 0;
	if (err) {
		fprintf(stderr, "xr_ssh_probe: %s (exit %d)\n", xr_strerror(err),
			xr_exit_code(err));
	} else {
		printf("ok: %ld frames, %llu bytes echoed in %.2f s via %s (%s), remote status "
		       "%d, seed %llu\n", frames, (unsigned long long)bytes, now_s() - t0,
		       !loc.remote ? "local pipe" : rsh.builtin ? "libssh2" : rsh.argv[0],
		       where, status, (unsigned long long)seed);
	}
	xr_rsh_free(&rsh);
	xr_location_free(&loc);
	if (err)
		return xr_exit_code(err);
	return status < 0 ? xr_exit_code(status) : status;
}

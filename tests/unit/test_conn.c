/* test_conn.c - the framed connection over real socketpairs, pipes and processes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "xr/conn.h"
#include "xr/err.h"

/* ---- helpers ------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A 64-bit mixer (splitmix finalizer) for deterministic test data. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Size of frame idx of stream seed: some empty, some exactly XR_FRAME_MAX. */
static size_t frame_size(unsigned seed, unsigned idx)
{
	if (idx % 5 == 0)
		return 0;
	if (idx % 7 == 0)
		return XR_FRAME_MAX;
	return (size_t)(mix((uint64_t)seed << 32 | idx) % 300000);
}

/* Type of frame idx: mostly compressible types, some not. */
static uint8_t frame_type(unsigned idx)
{
	static const uint8_t types[] = {XR_MSG_FILE_DATA, XR_MSG_SIG, XR_MSG_KEEPALIVE,
					XR_MSG_FLIST, XR_MSG_FILE_DATA};

	return types[idx % 5];
}

/* Fills buf: odd frames are random bytes, even ones compressible text. */
static void frame_fill(unsigned seed, unsigned idx, uint8_t *buf, size_t len)
{
	uint64_t s = mix((uint64_t)seed << 32 | idx | 1u << 31);
	size_t i;

	for (i = 0; i < len; i++) {
		if (idx % 2) {
			s = mix(s + i);
			buf[i] = (uint8_t)s;
		} else {
			buf[i] = (uint8_t)("<key>value</key>\n"[(i + idx) % 17]);
		}
	}
}

struct xfer_result {
	int rc;				/* 0 or the failing step's error */
	struct xr_conn_stats st;
	uint64_t payload_out;
	uint64_t text_out;		/* text payload in frames small enough to deflate */
};

/*
 * Sends n frames of stream seed_out while receiving and checking n frames
 * of stream seed_in, both at once over fd; closes the connection.
 */
static struct xfer_result exchange(int fd, unsigned n, unsigned seed_out, unsigned seed_in,
				   bool compress)
{
	struct xfer_result res = {0};
	struct xr_conn *c;
	uint8_t *buf = malloc(XR_FRAME_MAX), *want = malloc(XR_FRAME_MAX);
	unsigned sent = 0, got = 0;

	if (!buf || !want || xr_conn_new_fds(&c, fd, fd, 20)) {
		res.rc = -9999;
		goto out;
	}
	if (compress && xr_conn_set_compress(c, 6)) {
		res.rc = -9998;
		goto close;
	}
	while (sent < n || got < n || xr_conn_pending(c) > 0) {
		const uint8_t *p;
		size_t len;
		uint8_t type;
		int rc;

		while (sent < n && xr_conn_pending(c) < 2u * XR_FRAME_MAX) {
			size_t sz = frame_size(seed_out, sent);

			frame_fill(seed_out, sent, buf, sz);
			rc = xr_conn_send(c, frame_type(sent), buf, sz);
			if (rc) {
				res.rc = rc;
				goto close;
			}
			res.payload_out += sz;
			type = frame_type(sent);
			if (sent % 2 == 0 && sz < XR_FRAME_MAX &&
			    (type == XR_MSG_FILE_DATA || type == XR_MSG_SIG))
				res.text_out += sz;
			sent++;
		}
		rc = xr_conn_pump(c, 100);
		if (rc) {
			res.rc = rc;
			goto close;
		}
		while ((rc = xr_conn_recv(c, &type, &p, &len)) == 1) {
			size_t sz = frame_size(seed_in, got);

			frame_fill(seed_in, got, want, sz);
			if (got >= n || type != frame_type(got) || len != sz ||
			    memcmp(p, want, sz) != 0) {
				res.rc = -9997;
				goto close;
			}
			got++;
		}
		/* the peer may close as soon as it has everything from us */
		if (rc < 0 && !(rc == XR_ESOCKET && got == n)) {
			res.rc = rc;
			goto close;
		}
	}
	res.st = *xr_conn_stats(c);
close:
	xr_conn_close(c);
out:
	free(buf);
	free(want);
	return res;
}

/* Waits for pid and returns its exit status (or 100 + signal). */
static int wait_child(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 100 + WTERMSIG(st);
}

/* Runs exchange() in this process and a forked peer at the same time. */
static void bidirectional(bool compress)
{
	const unsigned n = 60;
	struct xfer_result res;
	int sv[2];
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(60);	/* never outlive a failed test for long */
		close(sv[0]);
		res = exchange(sv[1], n, 2, 1, compress);
		if (res.rc)
			fprintf(stderr, "peer: exchange failed: %d\n", res.rc);
		_exit(res.rc == 0 ? 0 : 1);
	}
	close(sv[1]);
	res = exchange(sv[0], n, 1, 2, compress);
	assert_int_equal(res.rc, 0);
	assert_int_equal(wait_child(pid), 0);
	assert_true(res.st.frames_out == n);
	assert_true(res.st.frames_in == n);
	if (compress) {	/* the text frames shrink to less than half */
		assert_true(res.text_out > 1000000);
		assert_true(res.st.bytes_out < res.payload_out + 5 * n - res.text_out / 2);
	}
	else
		assert_true(res.st.bytes_out == res.payload_out + 5 * n);
}

/* Both directions at once, large frames, no compression. */
static void test_bidirectional(void **state)
{
	(void)state;
	bidirectional(false);
}

/* Both directions at once with zlib on. */
static void test_bidirectional_compressed(void **state)
{
	(void)state;
	bidirectional(true);
}

/* Writes all of buf to a (blocking) fd. */
static void write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

/* Writes a raw frame header (length counts the type byte) and the type. */
static void write_hdr(int fd, uint32_t len, uint8_t type)
{
	uint8_t h[5] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			(uint8_t)len, type};

	write_all(fd, h, sizeof(h));
}

/* A connection on sv[0] of a new socketpair; the raw peer end is sv[1]. */
static struct xr_conn *pair_conn(int sv[2], int io_timeout)
{
	struct xr_conn *c;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(xr_conn_new_fds(&c, sv[0], sv[0], io_timeout), 0);
	return c;
}

/* Pumps and receives for at most 5 s; returns what xr_conn_recv / pump returned. */
static int recv_within(struct xr_conn *c, uint8_t *type, const uint8_t **p, size_t *len)
{
	double end = now_s() + 5;
	int rc;

	while (now_s() < end) {
		rc = xr_conn_recv(c, type, p, len);
		if (rc)
			return rc;
		rc = xr_conn_pump(c, 100);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- framing ------------------------------------------------------------ */

static void test_basic_frames(void **state)
{
	struct xr_conn *a, *b;
	const uint8_t *p;
	uint8_t type;
	size_t len;
	int sv[2];
	struct xr_buf buf;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(xr_conn_new_fds(&a, sv[0], sv[0], 5), 0);
	assert_int_equal(xr_conn_new_fds(&b, sv[1], sv[1], 5), 0);
	assert_int_equal(xr_conn_send(a, XR_MSG_KEEPALIVE, NULL, 0), 0);
	assert_int_equal(xr_conn_pending(a), 5);
	xr_buf_init(&buf);
	assert_int_equal(xr_enc_u64(&buf, 77), 0);
	assert_int_equal(xr_conn_send_buf(a, XR_MSG_CSET_BEGIN, &buf), 0);
	assert_int_equal(xr_conn_send_error(a, XR_EDENIED, "%s: refused %d", "etc", 7), 0);
	/* nothing arrives before pumping */
	assert_int_equal(xr_conn_recv(b, &type, &p, &len), 0);
	assert_int_equal(xr_conn_flush(a), 0);
	assert_int_equal(xr_conn_pending(a), 0);

	assert_int_equal(recv_within(b, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_KEEPALIVE);
	assert_int_equal(len, 0);
	assert_int_equal(recv_within(b, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_CSET_BEGIN);
	{
		uint64_t v;

		assert_int_equal(xr_dec_u64(p, len, &v), 0);
		assert_true(v == 77);
	}
	assert_int_equal(xr_conn_wait_frame(b, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_ERROR);
	{
		struct xr_text t;

		assert_int_equal(xr_dec_text(p, len, &t), 0);
		assert_int_equal(t.code, XR_EDENIED);
		assert_string_equal(t.text, "etc: refused 7");
		free(t.text);
	}
	assert_true(xr_conn_stats(a)->frames_out == 3);
	assert_true(xr_conn_stats(b)->frames_in == 3);
	assert_true(xr_conn_stats(a)->bytes_out == xr_conn_stats(b)->bytes_in);
	/* an oom buffer is refused */
	buf.oom = true;
	assert_int_equal(xr_conn_send_buf(a, XR_MSG_CSET_BEGIN, &buf), XR_ENOMEM);
	xr_buf_free(&buf);
	assert_int_equal(xr_conn_close(a), 0);
	/* the peer closed: XR_ESOCKET */
	assert_int_equal(recv_within(b, &type, &p, &len), XR_ESOCKET);
	assert_int_equal(xr_conn_close(b), 0);
}

/* Sending more than XR_FRAME_MAX is refused; exactly XR_FRAME_MAX is fine. */
static void test_oversized_send(void **state)
{
	uint8_t *big = calloc(1, XR_FRAME_MAX + 1);
	struct xr_conn *c;
	int sv[2];

	(void)state;
	assert_non_null(big);
	c = pair_conn(sv, 5);
	assert_int_equal(xr_conn_send(c, XR_MSG_FILE_DATA, big, XR_FRAME_MAX + 1), XR_ELIMIT);
	assert_int_equal(xr_conn_pending(c), 0);
	assert_int_equal(xr_conn_send(c, XR_MSG_FILE_DATA, big, XR_FRAME_MAX), 0);
	assert_int_equal(xr_conn_pending(c), XR_FRAME_MAX + 5);
	close(sv[1]);
	/* the peer is gone: flushing fails (MSG_NOSIGNAL, no SIGPIPE) */
	assert_int_equal(xr_conn_flush(c), XR_ESOCKET);
	xr_conn_close(c);
	free(big);
}

/* An oversized or zero length header is refused from the header alone. */
static void test_oversized_recv(void **state)
{
	static const uint32_t bad[] = {XR_FRAME_MAX + 2, UINT32_MAX, 0};
	static const int want[] = {XR_ELIMIT, XR_ELIMIT, XR_EPROTO};
	const uint8_t *p;
	uint8_t type;
	size_t len, i;
	int sv[2];

	(void)state;
	for (i = 0; i < 3; i++) {
		struct xr_conn *c = pair_conn(sv, 5);

		/* two good frames first; they are still handed out */
		write_hdr(sv[1], 1, XR_MSG_KEEPALIVE);
		write_hdr(sv[1], 4, XR_MSG_LOG);
		write_all(sv[1], "abc", 3);
		write_hdr(sv[1], bad[i], XR_MSG_FILE_DATA);	/* no body follows */
		assert_int_equal(recv_within(c, &type, &p, &len), 1);
		assert_int_equal(type, XR_MSG_KEEPALIVE);
		assert_int_equal(recv_within(c, &type, &p, &len), 1);
		assert_int_equal(type, XR_MSG_LOG);
		assert_int_equal(len, 3);
		assert_memory_equal(p, "abc", 3);
		assert_int_equal(recv_within(c, &type, &p, &len), want[i]);
		/* and it sticks */
		assert_int_equal(xr_conn_recv(c, &type, &p, &len), want[i]);
		/* input stayed bounded: nothing but the headers was read */
		assert_true(xr_conn_stats(c)->bytes_in <= 5 + 8 + 5);
		close(sv[1]);
		xr_conn_close(c);
	}
}

/* A frame of exactly XR_FRAME_MAX payload is accepted on receive. */
static void test_max_frame_recv(void **state)
{
	uint8_t *big = malloc(XR_FRAME_MAX);
	struct xr_conn *a, *b;
	const uint8_t *p;
	uint8_t type;
	size_t len;
	int sv[2];

	(void)state;
	assert_non_null(big);
	frame_fill(3, 1, big, XR_FRAME_MAX);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(xr_conn_new_fds(&a, sv[0], sv[0], 5), 0);
	assert_int_equal(xr_conn_new_fds(&b, sv[1], sv[1], 5), 0);
	assert_int_equal(xr_conn_send(a, XR_MSG_SIG, big, XR_FRAME_MAX), 0);
	while (xr_conn_pending(a) > 0) {
		assert_int_equal(xr_conn_pump(a, 0), 0);
		assert_int_equal(xr_conn_pump(b, 0), 0);
	}
	assert_int_equal(recv_within(b, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_SIG);
	assert_int_equal(len, XR_FRAME_MAX);
	assert_memory_equal(p, big, XR_FRAME_MAX);
	xr_conn_close(a);
	xr_conn_close(b);
	free(big);
}

/* EOF in the middle of a frame, or right after complete ones, is XR_ESOCKET. */
static void test_eof(void **state)
{
	struct xr_conn *c;
	const uint8_t *p;
	uint8_t type;
	size_t len;
	int sv[2];

	(void)state;
	/* mid-frame */
	c = pair_conn(sv, 5);
	write_hdr(sv[1], 101, XR_MSG_FILE_DATA);
	write_all(sv[1], "0123456789", 10);
	close(sv[1]);
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), XR_ESOCKET);
	xr_conn_close(c);
	/* mid-header */
	c = pair_conn(sv, 5);
	write_all(sv[1], "\0\0", 2);
	close(sv[1]);
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), XR_ESOCKET);
	xr_conn_close(c);
	/* complete frames are handed out before the EOF is reported */
	c = pair_conn(sv, 5);
	write_hdr(sv[1], 3, XR_MSG_LOG);
	write_all(sv[1], "hi", 2);
	write_hdr(sv[1], 1, XR_MSG_BYE);
	close(sv[1]);
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_LOG);
	assert_memory_equal(p, "hi", 2);
	/* pump until EOF is seen, then the buffered frame still comes first */
	for (int i = 0; i < 5; i++)
		assert_int_equal(xr_conn_pump(c, 50), 0);
	assert_int_equal(xr_conn_recv(c, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_BYE);
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), XR_ESOCKET);
	assert_int_equal(xr_conn_recv(c, &type, &p, &len), XR_ESOCKET);
	xr_conn_close(c);
}

/* Reading stops once a complete frame is buffered. */
static void test_bounded_input(void **state)
{
	const unsigned nframes = 200;
	const size_t fsz = 100000;
	struct xr_conn *c;
	const uint8_t *p;
	uint8_t type, *buf = malloc(fsz), *want = malloc(fsz);
	size_t len;
	unsigned i;
	int sv[2];
	pid_t pid;

	(void)state;
	assert_non_null(buf);
	assert_non_null(want);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(60);	/* never outlive a failed test for long */
		close(sv[0]);
		for (i = 0; i < nframes; i++) {
			frame_fill(9, i, buf, fsz);
			write_hdr(sv[1], (uint32_t)fsz + 1, XR_MSG_FILE_DATA);
			write_all(sv[1], buf, fsz);
		}
		_exit(0);
	}
	close(sv[1]);
	assert_int_equal(xr_conn_new_fds(&c, sv[0], sv[0], 10), 0);
	for (i = 0; i < 30; i++)
		assert_int_equal(xr_conn_pump(c, 20), 0);
	/* at most the first frame plus the read-ahead */
	assert_true(xr_conn_stats(c)->bytes_in >= fsz + 5);
	assert_true(xr_conn_stats(c)->bytes_in <= fsz + 5 + 64 * 1024);
	for (i = 0; i < nframes; i++) {
		assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), 1);
		frame_fill(9, i, want, fsz);
		assert_int_equal(len, fsz);
		assert_memory_equal(p, want, fsz);
		assert_true(xr_conn_stats(c)->bytes_in <= (uint64_t)(i + 2) * (fsz + 5) + 65536);
	}
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), XR_ESOCKET);
	xr_conn_close(c);
	assert_int_equal(wait_child(pid), 0);
	free(buf);
	free(want);
}

/* ---- timeouts and ticks ------------------------------------------------- */

static void test_io_timeout_read(void **state)
{
	struct xr_conn *c;
	const uint8_t *p;
	uint8_t type;
	size_t len;
	double t0, dt;
	int sv[2];

	(void)state;
	c = pair_conn(sv, 1);
	t0 = now_s();
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), XR_ETIMEOUT);
	dt = now_s() - t0;
	assert_true(dt >= 0.95 && dt < 2.5);
	xr_conn_close(c);
	close(sv[1]);

	/* progress resets the clock: a frame every 0.6 s keeps a 1 s timeout happy */
	c = pair_conn(sv, 1);
	t0 = now_s();
	for (int i = 0; i < 4; i++) {
		usleep(600000);
		write_hdr(sv[1], 1, XR_MSG_KEEPALIVE);
		assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), 1);
	}
	assert_true(now_s() - t0 >= 2.3);
	xr_conn_close(c);
	close(sv[1]);
}

/* A peer that does not read: flushing times out. */
static void test_io_timeout_write(void **state)
{
	uint8_t *big = calloc(1, XR_FRAME_MAX);
	struct xr_conn *c;
	double t0, dt;
	int sv[2], i;

	(void)state;
	assert_non_null(big);
	c = pair_conn(sv, 1);
	for (i = 0; i < 8; i++)
		assert_int_equal(xr_conn_send(c, XR_MSG_FILE_DATA, big, XR_FRAME_MAX), 0);
	t0 = now_s();
	assert_int_equal(xr_conn_flush(c), XR_ETIMEOUT);
	dt = now_s() - t0;
	assert_true(dt >= 0.95 && dt < 2.5);
	assert_true(xr_conn_pending(c) > 0);
	close(sv[1]);
	xr_conn_close(c);
	free(big);
}

/* pump_fd waits for an extra fd too, even when the connection has nothing to do. */
static void test_pump_fd(void **state)
{
	struct xr_conn *c;
	const uint8_t *p;
	uint8_t type;
	size_t len;
	bool ready = true;
	double t0, dt;
	int sv[2], pp[2];

	(void)state;
	assert_int_equal(pipe(pp), 0);
	c = pair_conn(sv, 1);
	/* nothing anywhere: waits the whole timeout */
	t0 = now_s();
	assert_int_equal(xr_conn_pump_fd(c, 300, pp[0], &ready), 0);
	dt = now_s() - t0;
	assert_false(ready);
	assert_true(dt >= 0.28 && dt < 1.0);
	/* the extra fd becomes readable: returns at once */
	assert_int_equal(write(pp[1], "x", 1), 1);
	t0 = now_s();
	assert_int_equal(xr_conn_pump_fd(c, 5000, pp[0], &ready), 0);
	assert_true(ready);
	assert_true(now_s() - t0 < 0.5);
	assert_int_equal(read(pp[0], &type, 1), 1);
	/* a frame is buffered and nothing is queued: the connection waits for
	 * nothing, so waiting on the extra fd is not an I/O timeout */
	write_hdr(sv[1], 1, XR_MSG_KEEPALIVE);
	write_hdr(sv[1], 1, XR_MSG_BYE);
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_KEEPALIVE);
	assert_int_equal(xr_conn_pump(c, 200), 0);	/* reads the BYE, then nothing to do */
	t0 = now_s();
	assert_int_equal(xr_conn_pump_fd(c, 1500, pp[0], &ready), 0);
	assert_false(ready);
	assert_true(now_s() - t0 >= 1.4);
	assert_int_equal(xr_conn_recv(c, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_BYE);
	/* now input is wanted again: the 1 s I/O timeout applies */
	assert_int_equal(xr_conn_pump_fd(c, 3000, pp[0], &ready), XR_ETIMEOUT);
	xr_conn_close(c);
	close(sv[1]);
	close(pp[0]);
	close(pp[1]);
}

struct tick_stream {
	int fd;
	int ticks;
	int fail_after;		/* tick returns XR_ESSH on this call (0 = never) */
};

/* Test stream read. */
static ssize_t ts_read(void *ctx, void *buf, size_t len)
{
	struct tick_stream *s = ctx;
	ssize_t n = read(s->fd, buf, len);

	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : XR_ESOCKET;
	return n;
}

/* Test stream write. */
static ssize_t ts_write(void *ctx, const void *buf, size_t len)
{
	struct tick_stream *s = ctx;
	ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : XR_ESOCKET;
	return n;
}

/* Test stream pollfds: its one socket. */
static int ts_pollfds(void *ctx, bool want_read, bool want_write, struct pollfd *pfd, int max)
{
	struct tick_stream *s = ctx;

	assert_true(max >= 1);
	pfd[0].fd = s->fd;
	pfd[0].events = (short)((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0));
	pfd[0].revents = 0;
	return 1;
}

/* Counts ticks; fails with XR_ESSH from call fail_after on. */
static int ts_tick(void *ctx)
{
	struct tick_stream *s = ctx;

	s->ticks++;
	return s->fail_after && s->ticks >= s->fail_after ? XR_ESSH : 0;
}

/* Closes the socket; returns 42 to check close's status is passed up. */
static int ts_close(void *ctx)
{
	struct tick_stream *s = ctx;

	close(s->fd);
	return 42;
}

static const struct xr_stream_ops tick_ops = {ts_read, ts_write, ts_pollfds, ts_tick, ts_close};

/* The stream's tick runs about every second while waiting; its error stops the wait. */
static void test_tick(void **state)
{
	struct tick_stream s = {0};
	struct xr_conn *c;
	const uint8_t *p;
	uint8_t type;
	size_t len;
	int sv[2];
	double t0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	s.fd = sv[0];
	assert_int_equal(xr_conn_new(&c, &tick_ops, &s, 0), 0);
	t0 = now_s();
	assert_int_equal(xr_conn_pump(c, 2600), 0);
	assert_true(now_s() - t0 >= 2.5);
	assert_true(s.ticks >= 2 && s.ticks <= 3);
	s.fail_after = s.ticks + 1;
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), XR_ESSH);
	/* close returns the stream's status */
	assert_int_equal(xr_conn_close(c), 42);
	close(sv[1]);
}

/* ---- compression -------------------------------------------------------- */

/* Deflates in with the (raw, sync-flushed) format the connection uses and frames it. */
static void write_deflated(int fd, z_stream *z, const void *in, size_t n, uint8_t type)
{
	size_t cap = deflateBound(z, (uLong)n) + 64;
	uint8_t *out = malloc(cap);

	assert_non_null(out);
	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = (uInt)n;
	z->next_out = out;
	z->avail_out = (uInt)cap;
	assert_int_equal(deflate(z, Z_SYNC_FLUSH), Z_OK);
	assert_int_equal(z->avail_in, 0);
	write_hdr(fd, (uint32_t)(cap - z->avail_out + 1), type);
	write_all(fd, out, cap - z->avail_out);
	free(out);
}

/* A frame that inflates beyond XR_FRAME_MAX is refused (zip bomb). */
static void test_zip_bomb(void **state)
{
	uint8_t *zeros = calloc(1, 4u << 20);
	struct xr_conn *c;
	const uint8_t *p;
	uint8_t type;
	size_t len;
	z_stream z;
	int sv[2];
	pid_t pid;

	(void)state;
	assert_non_null(zeros);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(60);	/* never outlive a failed test for long */
		close(sv[0]);
		memset(&z, 0, sizeof(z));
		if (deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			_exit(1);
		write_deflated(sv[1], &z, "hello", 5, XR_MSG_FILE_DATA | XR_MSG_COMPRESSED);
		write_deflated(sv[1], &z, zeros, XR_FRAME_MAX, XR_MSG_SIG | XR_MSG_COMPRESSED);
		write_deflated(sv[1], &z, zeros, 4u << 20, XR_MSG_FILE_DATA | XR_MSG_COMPRESSED);
		deflateEnd(&z);
		while (read(sv[1], zeros, 4096) > 0)	/* keep the socket open until EOF */
			;
		_exit(0);
	}
	close(sv[1]);
	assert_int_equal(xr_conn_new_fds(&c, sv[0], sv[0], 5), 0);
	assert_int_equal(xr_conn_set_compress(c, 6), 0);
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_FILE_DATA);
	assert_int_equal(len, 5);
	assert_memory_equal(p, "hello", 5);
	/* exactly the limit inflates fine */
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), 1);
	assert_int_equal(type, XR_MSG_SIG);
	assert_int_equal(len, XR_FRAME_MAX);
	assert_memory_equal(p, zeros, XR_FRAME_MAX);
	/* 4 MiB from a few KiB: refused */
	assert_true(xr_conn_stats(c)->bytes_in < 64 * 1024);
	assert_int_equal(xr_conn_wait_frame(c, &type, &p, &len), XR_ELIMIT);
	xr_conn_close(c);
	assert_int_equal(wait_child(pid), 0);
	free(zeros);
}

/* Compressed frames when compression is off, on other types, or corrupt: XR_EPROTO. */
static void test_bad_compressed(void **state)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x13, 0x37};
	struct xr_conn *c;
	const uint8_t *p;
	uint8_t type;
	size_t len;
	int sv[2];

	(void)state;
	c = pair_conn(sv, 5);
	write_hdr(sv[1], 3, XR_MSG_FILE_DATA | XR_MSG_COMPRESSED);
	write_all(sv[1], "\x02\x00", 2);
	assert_int_equal(recv_within(c, &type, &p, &len), XR_EPROTO);
	close(sv[1]);
	xr_conn_close(c);

	c = pair_conn(sv, 5);
	assert_int_equal(xr_conn_set_compress(c, 6), 0);
	write_hdr(sv[1], 3, XR_MSG_KEEPALIVE | XR_MSG_COMPRESSED);
	write_all(sv[1], "\x02\x00", 2);
	assert_int_equal(recv_within(c, &type, &p, &len), XR_EPROTO);
	close(sv[1]);
	xr_conn_close(c);

	c = pair_conn(sv, 5);
	assert_int_equal(xr_conn_set_compress(c, 6), 0);
	write_hdr(sv[1], sizeof(junk) + 1, XR_MSG_FILE_DATA | XR_MSG_COMPRESSED);
	write_all(sv[1], junk, sizeof(junk));
	assert_int_equal(recv_within(c, &type, &p, &len), XR_EPROTO);
	assert_int_equal(xr_conn_set_compress(c, 42), 0);	/* already on: no-op */
	close(sv[1]);
	xr_conn_close(c);

	c = pair_conn(sv, 5);
	assert_int_equal(xr_conn_set_compress(c, 42), XR_ESYNTAX);
	close(sv[1]);
	xr_conn_close(c);
}

/* ---- fd handling -------------------------------------------------------- */

static bool fd_is_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* Two pipes in a loop; close closes both fds of each side. */
static void test_pipes(void **state)
{
	struct xr_conn *a, *b;
	const uint8_t *p;
	uint8_t type;
	size_t len;
	int ab[2], ba[2], i;

	(void)state;
	signal(SIGPIPE, SIG_IGN);	/* pipes rely on the caller for this */
	assert_int_equal(pipe(ab), 0);
	assert_int_equal(pipe(ba), 0);
	assert_int_equal(xr_conn_new_fds(&a, ba[0], ab[1], 5), 0);
	assert_int_equal(xr_conn_new_fds(&b, ab[0], ba[1], 5), 0);
	assert_true(fcntl(ab[1], F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(ab[0], F_GETFL) & O_NONBLOCK);
	for (i = 0; i < 50; i++) {
		char msg[16];

		snprintf(msg, sizeof(msg), "m%d", i);
		assert_int_equal(xr_conn_send(a, XR_MSG_LOG, msg, strlen(msg)), 0);
		assert_int_equal(xr_conn_send(b, XR_MSG_ITEM, msg, strlen(msg)), 0);
	}
	assert_int_equal(xr_conn_flush(a), 0);
	assert_int_equal(xr_conn_flush(b), 0);
	for (i = 0; i < 50; i++) {
		char msg[16];

		snprintf(msg, sizeof(msg), "m%d", i);
		assert_int_equal(recv_within(b, &type, &p, &len), 1);
		assert_int_equal(type, XR_MSG_LOG);
		assert_int_equal(len, strlen(msg));
		assert_memory_equal(p, msg, len);
		assert_int_equal(recv_within(a, &type, &p, &len), 1);
		assert_int_equal(type, XR_MSG_ITEM);
		assert_memory_equal(p, msg, len);
	}
	assert_int_equal(xr_conn_close(a), 0);
	assert_true(fd_is_closed(ba[0]) && fd_is_closed(ab[1]));
	/* b's peer is gone: writing fails with EPIPE rather than killing us */
	assert_int_equal(xr_conn_send(b, XR_MSG_BYE, NULL, 0), 0);
	assert_int_equal(xr_conn_flush(b), XR_ESOCKET);
	xr_conn_close(b);
	assert_true(fd_is_closed(ab[0]) && fd_is_closed(ba[1]));
	signal(SIGPIPE, SIG_DFL);
}

/* On a socket a dead peer is XR_ESOCKET even with SIGPIPE at its default action. */
static void test_no_sigpipe_on_socket(void **state)
{
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(60);	/* never outlive a failed test for long */
		struct xr_conn *c;
		int sv[2], rc;

		signal(SIGPIPE, SIG_DFL);
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || xr_conn_new_fds(&c, sv[0], sv[0], 5))
			_exit(2);
		close(sv[1]);
		xr_conn_send(c, XR_MSG_BYE, NULL, 0);
		rc = xr_conn_flush(c);
		xr_conn_close(c);
		_exit(rc == XR_ESOCKET ? 0 : 3);
	}
	assert_int_equal(wait_child(pid), 0);
	{
		int sv[2];
		struct xr_conn *c = pair_conn(sv, 5);

		/* the same fd for both directions is closed (once) */
		xr_conn_close(c);
		assert_true(fd_is_closed(sv[0]));
		close(sv[1]);
	}
}

/* close() flushes what is queued before closing. */
static void test_close_flushes(void **state)
{
	uint8_t *big = calloc(1, XR_FRAME_MAX);
	struct xr_conn *c;
	int sv[2], i;
	pid_t pid;

	(void)state;
	assert_non_null(big);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(60);	/* never outlive a failed test for long */
		uint64_t total = 0;
		ssize_t n;

		close(sv[0]);
		usleep(200000);
		while ((n = read(sv[1], big, XR_FRAME_MAX)) > 0)
			total += (uint64_t)n;
		_exit(total == 3ull * (XR_FRAME_MAX + 5) + 5 ? 0 : 1);
	}
	close(sv[1]);
	assert_int_equal(xr_conn_new_fds(&c, sv[0], sv[0], 0), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(xr_conn_send(c, XR_MSG_FILE_DATA, big, XR_FRAME_MAX), 0);
	assert_int_equal(xr_conn_send(c, XR_MSG_BYE, NULL, 0), 0);
	assert_int_equal(xr_conn_close(c), 0);
	assert_int_equal(wait_child(pid), 0);
	free(big);
}

/* Runs the connection tests. */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_frames),
		cmocka_unit_test(test_oversized_send),
		cmocka_unit_test(test_oversized_recv),
		cmocka_unit_test(test_max_frame_recv),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_bounded_input),
		cmocka_unit_test(test_bidirectional),
		cmocka_unit_test(test_bidirectional_compressed),
		cmocka_unit_test(test_io_timeout_read),
		cmocka_unit_test(test_io_timeout_write),
		cmocka_unit_test(test_pump_fd),
		cmocka_unit_test(test_tick),
		cmocka_unit_test(test_zip_bomb),
		cmocka_unit_test(test_bad_compressed),
		cmocka_unit_test(test_pipes),
		cmocka_unit_test(test_no_sigpipe_on_socket),
		cmocka_unit_test(test_close_flushes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* conn.c - framed, buffered, non-blocking connection with optional zlib. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define ZLIB_CONST	/* next_in is const: no cast through uintptr_t */
#include <zlib.h>

#include "xr/conn.h"
#include "xr/err.h"
#include "xr/log.h"

#define HDR_LEN 5			/* u32 length + type byte */
#define READ_AHEAD (64u * 1024)		/* read-ahead beyond the current frame */
#define TICK_MS 1000
#define CLOSE_IDLE_MS 60000		/* flush bound at close without --timeout */

struct xr_conn {
	const struct xr_stream_ops *ops;
	void *ctx;
	int io_timeout;			/* seconds, 0 = none */

	/* output queue: bytes [ooff, olen) of obuf are still to be written */
	uint8_t *obuf;
	size_t ooff, olen, ocap;

	/* input: bytes [ioff, ilen) of ibuf are read and not yet handed out */
	uint8_t *ibuf;
	size_t ioff, ilen, icap;
	bool eof;			/* the peer closed its side */
	int rx_err;			/* malformed / oversized frame header seen */
	int io_err;			/* sticky stream error */

	/* the payload handed out by xr_conn_recv */
	uint8_t *cur;
	size_t ccap;

	bool zon;
	z_stream def, inf;

	int64_t idle_ms;		/* time waited without any byte moving */
	int64_t last_tick;
	struct xr_conn_stats st;
};

/* Monotonic clock in milliseconds. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads a big-endian u32. */
static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Writes a big-endian u32. */
static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * Grows *buf to hold at least need bytes, plus an eighth, in 4 KiB steps
 * (not doubling: the high-water marks bound what is queued, so the buffers
 * settle after a few steps, and a doubled 256 KiB would be a wasted
 * quarter MiB).  Returns 0 or XR_ENOMEM.
 */
static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	size_t nc;
	uint8_t *p;

	if (need <= *cap)
		return 0;
	if (need > SIZE_MAX / 2)
		return XR_ENOMEM;
	nc = (need + need / 8 + 4095) & ~(size_t)4095;
	p = realloc(*buf, nc);
	if (!p)
		return XR_ENOMEM;
	*buf = p;
	*cap = nc;
	return 0;
}

/* Wraps a stream in a connection; returns 0 or XR_ENOMEM (ctx is not closed then). */
int xr_conn_new(struct xr_conn **cp, const struct xr_stream_ops *ops, void *ctx, int io_timeout)
{
	struct xr_conn *c = calloc(1, sizeof(*c));

	*cp = NULL;
	if (!c)
		return XR_ENOMEM;
	c->ops = ops;
	c->ctx = ctx;
	c->io_timeout = io_timeout > 0 ? io_timeout : 0;
	c->last_tick = now_ms();
	*cp = c;
	return 0;
}

/* ---- plain fd streams --------------------------------------------------- */

/*
 * SIGPIPE: writes to a socket use send(MSG_NOSIGNAL), so a vanished peer is
 * a plain EPIPE.  Writes to a pipe use write(); processes that talk over
 * pipes (serve on stdin/stdout) must ignore SIGPIPE themselves.
 */
struct fd_stream {
	int rfd, wfd;
	bool wsock;
};

/* read(2) mapped onto the stream conventions. */
static ssize_t fd_read(void *ctx, void *buf, size_t len)
{
	struct fd_stream *s = ctx;
	ssize_t n;

	do
		n = read(s->rfd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -EAGAIN;
	xr_error("connection: read: %s", strerror(errno));
	return XR_ESOCKET;
}

/* write(2) / send(2) mapped onto the stream conventions. */
static ssize_t fd_write(void *ctx, const void *buf, size_t len)
{
	struct fd_stream *s = ctx;
	ssize_t n;

	do {
		if (s->wsock)
			n = send(s->wfd, buf, len, MSG_NOSIGNAL);
		else
			n = write(s->wfd, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -EAGAIN;
	xr_error("connection: write: %s", strerror(errno));
	return XR_ESOCKET;
}

/* One pollfd per fd and direction wanted (one in all when the fds are equal). */
static int fd_pollfds(void *ctx, bool want_read, bool want_write, struct pollfd *pfd, int max)
{
	struct fd_stream *s = ctx;
	int n = 0;

	if (want_read && n < max) {
		pfd[n].fd = s->rfd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		n++;
	}
	if (want_write) {
		if (n > 0 && s->wfd == s->rfd) {
			pfd[0].events |= POLLOUT;
		} else if (n < max) {
			pfd[n].fd = s->wfd;
			pfd[n].events = POLLOUT;
			pfd[n].revents = 0;
			n++;
		}
	}
	return n;
}

/* Closes both fds (once when they are the same) and frees the context. */
static int fd_close(void *ctx)
{
	struct fd_stream *s = ctx;

	close(s->rfd);
	if (s->wfd != s->rfd)
		close(s->wfd);
	free(s);
	return 0;
}

static const struct xr_stream_ops fd_ops = {
	.read = fd_read,
	.write = fd_write,
	.pollfds = fd_pollfds,
	.tick = NULL,
	.close = fd_close,
};

/* Sets O_NONBLOCK on fd; returns 0 or XR_ESOCKET. */
static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		xr_error("connection: fcntl O_NONBLOCK on fd %d: %s", fd, strerror(errno));
		return XR_ESOCKET;
	}
	return 0;
}

/* Wraps rfd/wfd (made non-blocking); the connection owns them even on failure. */
int xr_conn_new_fds(struct xr_conn **c, int rfd, int wfd, int io_timeout)
{
	struct fd_stream *s = NULL;
	struct stat st;
	int rc;

	*c = NULL;
	rc = set_nonblock(rfd);
	if (!rc && wfd != rfd)
		rc = set_nonblock(wfd);
	if (rc)
		goto fail;
	s = malloc(sizeof(*s));
	if (!s) {
		rc = XR_ENOMEM;
		goto fail;
	}
	s->rfd = rfd;
	s->wfd = wfd;
	s->wsock = fstat(wfd, &st) == 0 && S_ISSOCK(st.st_mode);
	rc = xr_conn_new(c, &fd_ops, s, io_timeout);
	if (rc) {
		free(s);
		goto fail;
	}
	return 0;
fail:
	close(rfd);
	if (wfd != rfd)
		close(wfd);
	return rc;
}

/* ---- compression -------------------------------------------------------- */

/* Starts raw deflate/inflate streams, one per direction, for the whole connection. */
int xr_conn_set_compress(struct xr_conn *c, int level)
{
	if (c->zon)
		return 0;
	if (level < Z_DEFAULT_COMPRESSION || level > Z_BEST_COMPRESSION)
		return XR_ESYNTAX;
	if (deflateInit2(&c->def, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return XR_ENOMEM;
	if (inflateInit2(&c->inf, -15) != Z_OK) {
		deflateEnd(&c->def);
		return XR_ENOMEM;
	}
	c->zon = true;
	return 0;
}

/* True for the frame types that are deflated when compression is on. */
static bool compressible(uint8_t type)
{
	return type == XR_MSG_FILE_DATA || type == XR_MSG_SIG || type == XR_MSG_FLIST;
}

/* ---- sending ------------------------------------------------------------ */

/* Makes room for n more queued bytes, dropping what was written; 0 or XR_ENOMEM. */
static int out_reserve(struct xr_conn *c, size_t n)
{
	if (c->ooff > 0 && (c->ooff == c->olen || c->olen + n > c->ocap)) {
		memmove(c->obuf, c->obuf + c->ooff, c->olen - c->ooff);
		c->olen -= c->ooff;
		c->ooff = 0;
	}
	if (n > SIZE_MAX - c->olen)
		return XR_ENOMEM;
	return grow(&c->obuf, &c->ocap, c->olen + n);
}

/* Deflates payload after a reserved header at obuf[olen]; returns compressed size or < 0. */
static long deflate_payload(struct xr_conn *c, const void *payload, size_t len)
{
	size_t bound = deflateBound(&c->def, (uLong)len) + 16, out = 0;
	int zr;

	if (out_reserve(c, HDR_LEN + bound))
		return XR_ENOMEM;
	c->def.next_in = (const Bytef *)payload;
	c->def.avail_in = (uInt)len;
	for (;;) {
		c->def.next_out = c->obuf + c->olen + HDR_LEN + out;
		c->def.avail_out = (uInt)(bound - out);
		zr = deflate(&c->def, Z_SYNC_FLUSH);
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return XR_ENOMEM;
		out = bound - c->def.avail_out;
		if (c->def.avail_out > 0 && c->def.avail_in == 0)
			break;
		/* the bound was not enough: more room, without moving what is queued */
		bound += 4096;
		if (grow(&c->obuf, &c->ocap, c->olen + HDR_LEN + bound))
			return XR_ENOMEM;
	}
	return (long)out;
}

/* Queues a frame; FILE_DATA / SIG payloads are deflated when compression is on. */
int xr_conn_send(struct xr_conn *c, uint8_t type, const void *payload, size_t len)
{
	size_t plen = len;
	uint8_t t = type;

	if (len > XR_FRAME_MAX)
		return XR_ELIMIT;
	/* deflate only what surely stays within a frame, so both streams stay in step */
	if (c->zon && compressible(type) && len > 0 &&
	    deflateBound(&c->def, (uLong)len) + 16 <= XR_FRAME_MAX) {
		long z = deflate_payload(c, payload, len);

		/* the deflate stream has moved on: the connection cannot continue */
		if (z >= 0 && (size_t)z > XR_FRAME_MAX)
			z = XR_ELIMIT;
		if (z < 0)
			return c->io_err = (int)z;
		plen = (size_t)z;
		t = (uint8_t)(type | XR_MSG_COMPRESSED);
	} else {
		if (out_reserve(c, HDR_LEN + len))
			return XR_ENOMEM;
		if (len)
			memcpy(c->obuf + c->olen + HDR_LEN, payload, len);
	}
	put_be32(c->obuf + c->olen, (uint32_t)(plen + 1));
	c->obuf[c->olen + 4] = t;
	c->olen += HDR_LEN + plen;
	c->st.frames_out++;
	return 0;
}

/* Queues an encoded buffer as a frame; XR_ENOMEM if encoding ran out of memory. */
int xr_conn_send_buf(struct xr_conn *c, uint8_t type, const struct xr_buf *b)
{
	if (b->oom)
		return XR_ENOMEM;
	return xr_conn_send(c, type, b->p, b->len);
}

/* Returns the number of queued bytes not yet written. */
size_t xr_conn_pending(const struct xr_conn *c)
{
	return c->olen - c->ooff;
}

/* Encodes ERROR(code, formatted text, truncated to XR_MAX_MSG_LEN) and queues it. */
int xr_conn_send_error(struct xr_conn *c, int code, const char *fmt, ...)
{
	char text[XR_MAX_MSG_LEN + 1];
	struct xr_text t;
	struct xr_buf b;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	t.code = code;
	t.text = text;
	xr_buf_init(&b);
	rc = xr_enc_text(&b, &t);
	if (!rc)
		rc = xr_conn_send_buf(c, XR_MSG_ERROR, &b);
	xr_buf_free(&b);
	return rc;
}

/* ---- receiving ---------------------------------------------------------- */

/*
 * Looks at the unconsumed input: returns the size of the complete frame at
 * its start, 0 if it is not complete yet, or XR_EPROTO / XR_ELIMIT for a
 * bad header (detected from the header alone, before buffering the body).
 */
static long frame_at_head(struct xr_conn *c, size_t *need)
{
	size_t have = c->ilen - c->ioff;
	uint32_t len;

	*need = HDR_LEN;
	if (have < 4)
		return 0;
	len = get_be32(c->ibuf + c->ioff);
	if (len == 0)
		return XR_EPROTO;
	if (len - 1 > XR_FRAME_MAX)
		return XR_ELIMIT;
	*need = 4 + (size_t)len;
	return have >= *need ? (long)*need : 0;
}

/* Inflates a compressed payload into cur; returns its size or XR_EPROTO / XR_ELIMIT. */
static long inflate_payload(struct xr_conn *c, const uint8_t *p, size_t n)
{
	size_t out;
	int zr;

	if (grow(&c->cur, &c->ccap, (size_t)XR_FRAME_MAX + 1))
		return XR_ENOMEM;
	c->inf.next_in = (const Bytef *)p;
	c->inf.avail_in = (uInt)n;
	c->inf.next_out = c->cur;
	c->inf.avail_out = XR_FRAME_MAX + 1;
	while (c->inf.avail_in > 0 && c->inf.avail_out > 0) {
		zr = inflate(&c->inf, Z_SYNC_FLUSH);
		if (zr == Z_BUF_ERROR)
			break;
		if (zr != Z_OK)
			return XR_EPROTO;	/* corrupt data, or the stream claims to end */
	}
	out = XR_FRAME_MAX + 1 - c->inf.avail_out;
	if (out > XR_FRAME_MAX)
		return XR_ELIMIT;
	if (c->inf.avail_in > 0)
		return XR_EPROTO;
	return (long)out;
}

/* Hands out the next complete buffered frame (1), or 0, or the error that ends input. */
int xr_conn_recv(struct xr_conn *c, uint8_t *type, const uint8_t **payload, size_t *len)
{
	size_t need, plen;
	long fl = frame_at_head(c, &need);
	const uint8_t *p;
	uint8_t t;

	if (fl < 0)
		return c->rx_err = (int)fl;
	if (fl == 0) {
		if (c->rx_err)
			return c->rx_err;
		if (c->io_err)
			return c->io_err;
		if (c->eof)
			return XR_ESOCKET;
		return 0;
	}
	t = c->ibuf[c->ioff + 4];
	p = c->ibuf + c->ioff + HDR_LEN;
	plen = (size_t)fl - HDR_LEN;
	if (t & XR_MSG_COMPRESSED) {
		long z;

		t = (uint8_t)(t & ~XR_MSG_COMPRESSED);
		if (!c->zon || !compressible(t))
			return c->rx_err = XR_EPROTO;
		z = inflate_payload(c, p, plen);
		if (z < 0)
			return c->rx_err = (int)z;
		plen = (size_t)z;
	} else {
		/* a copy, so that pumping may move the input buffer meanwhile */
		if (grow(&c->cur, &c->ccap, plen ? plen : 1))
			return XR_ENOMEM;
		if (plen)
			memcpy(c->cur, p, plen);
	}
	c->ioff += (size_t)fl;
	if (c->ioff == c->ilen)
		c->ioff = c->ilen = 0;
	c->st.frames_in++;
	*type = t;
	*payload = c->cur;
	*len = plen;
	return 1;
}

/* ---- pumping ------------------------------------------------------------ */

/* True while more input should be read: no complete frame buffered, no EOF/error. */
static bool want_read(struct xr_conn *c)
{
	size_t need;

	if (c->eof || c->io_err || c->rx_err)
		return false;
	return frame_at_head(c, &need) == 0;
}

/* Writes queued bytes until done or EAGAIN; sets *moved; returns 0 or an error. */
static int pump_write(struct xr_conn *c, bool *moved)
{
	while (c->ooff < c->olen) {
		ssize_t n = c->ops->write(c->ctx, c->obuf + c->ooff, c->olen - c->ooff);

		if (n == -EAGAIN)
			break;
		if (n <= 0)
			return c->io_err = n < 0 ? (int)n : XR_ESOCKET;
		c->ooff += (size_t)n;
		c->st.bytes_out += (uint64_t)n;
		*moved = true;
	}
	if (c->ooff == c->olen)
		c->ooff = c->olen = 0;
	return 0;
}

/*
 * Reads until EAGAIN, EOF or a complete frame is buffered (reading at most
 * READ_AHEAD beyond the frame still missing); returns 0 or an error.
 */
static int pump_read(struct xr_conn *c, bool *moved)
{
	while (want_read(c)) {
		size_t need, have, want;
		ssize_t n;

		frame_at_head(c, &need);
		have = c->ilen - c->ioff;
		want = need > have ? need - have : 0;
		if (want < READ_AHEAD)
			want = READ_AHEAD;
		if (c->ioff > 0 && c->ilen + want > c->icap) {
			memmove(c->ibuf, c->ibuf + c->ioff, have);
			c->ioff = 0;
			c->ilen = have;
		}
		if (grow(&c->ibuf, &c->icap, c->ilen + want))
			return XR_ENOMEM;
		n = c->ops->read(c->ctx, c->ibuf + c->ilen, want);
		if (n == -EAGAIN)
			break;
		if (n == 0) {
			c->eof = true;
			*moved = true;
			break;
		}
		if (n < 0)
			return c->io_err = (int)n;
		c->ilen += (size_t)n;
		c->st.bytes_in += (uint64_t)n;
		*moved = true;
	}
	return 0;
}

/* Calls the stream's tick when a second has passed since the last one. */
static int maybe_tick(struct xr_conn *c, int64_t now)
{
	if (now - c->last_tick < TICK_MS)
		return 0;
	c->last_tick = now;
	return c->ops->tick ? c->ops->tick(c->ctx) : 0;
}

/* True if fd (or -1 for none) is readable right now. */
static bool fd_readable_now(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};

	return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

/*
 * Moves bytes both ways and, if nothing moved, waits (in slices of at most a
 * second, calling tick) for the stream and for extra_fd (-1 = none).  Only
 * time spent waiting for the peer counts towards --timeout, so a caller busy
 * between pumps does not time out.  Returns 0 on progress, when extra_fd is
 * readable (*extra_ready) or when timeout_ms elapsed; XR_ETIMEOUT, or an error.
 */
static int pump_wait(struct xr_conn *c, int timeout_ms, int extra_fd, bool *extra_ready)
{
	int pr;
	int64_t start = now_ms(), now, t0, slice;
	struct pollfd pfd[9];
	bool moved, wr, rd;
	int rc, npfd, n;

	if (c->io_err)
		return c->io_err;
	for (;;) {
		moved = false;
		rc = pump_write(c, &moved);
		if (!rc)
			rc = pump_read(c, &moved);
		if (rc)
			return rc;
		if (moved) {
			c->idle_ms = 0;
			if (fd_readable_now(extra_fd))
				*extra_ready = true;
			return 0;
		}
		wr = c->ooff < c->olen;
		rd = want_read(c);
		if (!wr && !rd && extra_fd < 0)
			return 0;	/* nothing to wait for */
		if ((wr || rd) && c->io_timeout && c->idle_ms >= (int64_t)c->io_timeout * 1000)
			return XR_ETIMEOUT;
		now = now_ms();
		rc = maybe_tick(c, now);
		if (rc)
			return rc;
		if (timeout_ms >= 0 && now - start >= timeout_ms)
			return 0;
		slice = c->last_tick + TICK_MS - now;
		if (timeout_ms >= 0 && start + timeout_ms - now < slice)
			slice = start + timeout_ms - now;
		if ((wr || rd) && c->io_timeout &&
		    (int64_t)c->io_timeout * 1000 - c->idle_ms < slice)
			slice = (int64_t)c->io_timeout * 1000 - c->idle_ms;
		if (slice < 0)
			slice = 0;
		npfd = 0;
		if (wr || rd)
			npfd = c->ops->pollfds(c->ctx, rd, wr, pfd, 8);
		if (npfd < 0)
			npfd = 0;
		n = npfd;
		if (extra_fd >= 0) {
			pfd[n].fd = extra_fd;
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			n++;
		}
		t0 = now_ms();
		pr = poll(pfd, (nfds_t)n, (int)slice);
		if (pr < 0 && errno != EINTR) {
			xr_error("connection: poll: %s", strerror(errno));
			return XR_ESOCKET;
		}
		if (wr || rd)
			c->idle_ms += now_ms() - t0;
		if (pr < 0)
			return 0;	/* a signal: let the caller look at its flags */
		if (extra_fd >= 0 && (pfd[npfd].revents & (POLLIN | POLLHUP | POLLERR))) {
			*extra_ready = true;
			return 0;
		}
	}
}

/*
 * Moves bytes both ways and, if nothing moved, waits up to timeout_ms for
 * the stream (see pump_wait).  Returns 0, XR_ETIMEOUT or an error.
 */
int xr_conn_pump(struct xr_conn *c, int timeout_ms)
{
	bool unused = false;

	return pump_wait(c, timeout_ms, -1, &unused);
}

/*
 * Like xr_conn_pump, also waiting for extra_fd to become readable (then 0
 * with *extra_ready set), even when the connection has nothing to do.
 */
int xr_conn_pump_fd(struct xr_conn *c, int timeout_ms, int extra_fd, bool *extra_ready)
{
	*extra_ready = false;
	return pump_wait(c, timeout_ms, extra_fd, extra_ready);
}

/* Pumps until the output queue is empty; returns 0 or the pump's error. */
int xr_conn_flush(struct xr_conn *c)
{
	int rc;

	while (xr_conn_pending(c) > 0) {
		rc = xr_conn_pump(c, -1);
		if (rc)
			return rc;
	}
	return 0;
}

/* Pumps until a frame can be handed out; returns 1 or a negative xr_err. */
int xr_conn_wait_frame(struct xr_conn *c, uint8_t *type, const uint8_t **payload, size_t *len)
{
	int rc;

	for (;;) {
		rc = xr_conn_recv(c, type, payload, len);
		if (rc)
			return rc;
		rc = xr_conn_pump(c, -1);
		if (rc)
			return rc;
	}
}

/* Returns the byte and frame counters. */
const struct xr_conn_stats *xr_conn_stats(const struct xr_conn *c)
{
	return &c->st;
}

/*
 * Flushes what is queued (giving up after --timeout, or a minute without
 * progress when there is none), closes the stream and frees c.  Returns the
 * stream's close status, else the flush error.
 */
int xr_conn_close(struct xr_conn *c)
{
	int frc = 0, crc;

	if (!c)
		return 0;
	if (!c->io_timeout)
		c->io_timeout = CLOSE_IDLE_MS / 1000;
	if (!c->io_err)
		frc = xr_conn_flush(c);
	crc = c->ops->close ? c->ops->close(c->ctx) : 0;
	if (c->zon) {
		deflateEnd(&c->def);
		inflateEnd(&c->inf);
	}
	free(c->obuf);
	free(c->ibuf);
	free(c->cur);
	free(c);
	return crc ? crc : frc;
}

/*
 * After a failed write (the peer closed: EPIPE), reads what the peer sent
 * before it went away - usually its ERROR frame - so that the cause, not
 * "broken pipe", is reported.  Returns 1 and the ERROR payload, or 0.
 */
int xr_conn_salvage_error(struct xr_conn *c, const uint8_t **payload, size_t *len)
{
	int saved = c->io_err, rc;
	bool moved = false;
	uint8_t type = 0;

	c->io_err = 0;
	c->olen = c->ooff = 0;	/* nothing more will be written */
	for (int i = 0; i < 64; i++) {
		rc = xr_conn_recv(c, &type, payload, len);
		if (rc == 1 && type == XR_MSG_ERROR) {
			c->io_err = saved;
			return 1;
		}
		if (rc == 1)
			continue;
		moved = false;
		if (rc < 0 || pump_read(c, &moved) != 0 || !moved)
			break;
	}
	c->io_err = saved;
	return 0;
}

/* conn.h - a framed, buffered, non-blocking connection over any byte stream. */
#ifndef XR_CONN_H
#define XR_CONN_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xr/wire.h"

/*
 * The byte stream under a connection: a pipe/socketpair pair of fds, or a
 * libssh2 channel.  All calls are non-blocking.
 */
struct xr_stream_ops {
	/* > 0 bytes, 0 at EOF, -EAGAIN when it would block, else negative xr_err */
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	/* > 0 bytes written, -EAGAIN when it would block, else negative xr_err */
	ssize_t (*write)(void *ctx, const void *buf, size_t len);
	/*
	 * Fills at most max pollfds to wait for readability (want_read) and/or
	 * writability (want_write); returns how many were filled.  A libssh2
	 * stream maps both onto its socket and its block directions.
	 */
	int (*pollfds)(void *ctx, bool want_read, bool want_write, struct pollfd *pfd, int max);
	/* Called at least every second while waiting; may send keepalives. */
	int (*tick)(void *ctx);
	/* Half-close / close and free ctx; returns the peer's exit status or 0. */
	int (*close)(void *ctx);
};

struct xr_conn_stats {
	uint64_t bytes_in, bytes_out;	/* on the wire (after compression) */
	uint64_t frames_in, frames_out;
};

struct xr_conn;

/*
 * Wraps a stream.  io_timeout is --timeout in seconds (0 = none): no byte
 * in either direction for that long while we wait is XR_ETIMEOUT.
 */
int xr_conn_new(struct xr_conn **c, const struct xr_stream_ops *ops, void *ctx, int io_timeout);
/* A connection over two plain fds (made non-blocking); owns the fds. */
int xr_conn_new_fds(struct xr_conn **c, int rfd, int wfd, int io_timeout);
/* Flushes (bounded by the timeout), closes the stream, frees; returns stream close status. */
int xr_conn_close(struct xr_conn *c);

/* Turns on zlib for FILE_DATA and SIG payloads (both sides must agree). */
int xr_conn_set_compress(struct xr_conn *c, int level);

/*
 * Queues a frame (type, payload).  The payload is copied (compressed when
 * enabled for its type).  Returns 0, XR_ELIMIT (payload > XR_FRAME_MAX) or
 * XR_ENOMEM.  Queued bytes are written by xr_conn_pump / xr_conn_flush.
 */
int xr_conn_send(struct xr_conn *c, uint8_t type, const void *payload, size_t len);
/* Like xr_conn_send with an encoded buffer. */
int xr_conn_send_buf(struct xr_conn *c, uint8_t type, const struct xr_buf *b);
/* Bytes queued and not yet written. */
size_t xr_conn_pending(const struct xr_conn *c);

/*
 * Returns 1 and the next complete frame if one has been read (payload is
 * decompressed; it stays valid until the next xr_conn_recv), 0 if none is
 * available yet, XR_EPROTO/XR_ELIMIT for a malformed or oversized frame,
 * XR_ESOCKET when the peer closed the stream.  Never blocks.
 */
int xr_conn_recv(struct xr_conn *c, uint8_t *type, const uint8_t **payload, size_t *len);

/*
 * Does I/O: writes queued bytes, reads into the input buffer (only while
 * fewer than one frame is buffered, so input stays bounded), and waits up
 * to timeout_ms (-1 = until something happens) when neither is possible.
 * Returns 0, XR_ETIMEOUT when the --timeout elapsed without any progress,
 * XR_ESOCKET on I/O error, or the stream's error.
 */
int xr_conn_pump(struct xr_conn *c, int timeout_ms);

/*
 * xr_conn_pump that also waits for extra_fd (POLLIN) - the inotify fd of a
 * watcher, or a signal fd: returns 0 with *extra_ready set when it became
 * readable.  Waits even when the connection has nothing to do.
 */
int xr_conn_pump_fd(struct xr_conn *c, int timeout_ms, int extra_fd, bool *extra_ready);

/* Writes everything queued (pumping, reading stays bounded). */
int xr_conn_flush(struct xr_conn *c);

/*
 * Blocks until a frame arrives (pumping writes meanwhile); returns 1 and the
 * frame, or a negative xr_err (XR_ESOCKET on EOF, XR_ETIMEOUT).
 */
int xr_conn_wait_frame(struct xr_conn *c, uint8_t *type, const uint8_t **payload, size_t *len);

const struct xr_conn_stats *xr_conn_stats(const struct xr_conn *c);

/*
 * After a write failed because the peer closed, looks for the ERROR frame
 * it sent before closing; returns 1 and its payload, or 0.
 */
int xr_conn_salvage_error(struct xr_conn *c, const uint8_t **payload, size_t *len);

/* Encodes and sends ERROR(code, message). */
int xr_conn_send_error(struct xr_conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif

/* delta.c - librsync signature, delta and patch jobs, streamed in bounded memory. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librsync.h>

#include "xr/delta.h"
#include "xr/err.h"
#include "xr/hash.h"
#include "xr/log.h"

/* Bytes read from a source file per pread, and patch output per sink call. */
#define IO_CHUNK (64u * 1024u)
#define SIG_HEADER_LEN 12u
/* Blocks bigger than this come from no plausible rs_sig_args() result. */
#define SIG_MAX_BLOCK_LEN (1u << 24)

/* A pull-style job: librsync reads fd through a private input buffer. */
struct pull {
	rs_job_t *job;
	int fd;
	uint64_t off;		/* next pread offset */
	uint64_t limit;		/* stop reading here */
	unsigned char *in;	/* IO_CHUNK bytes */
	size_t in_pos, in_len;	/* unconsumed input */
	bool eof;
	bool done;
	int err;		/* sticky error */
	struct xr_hasher *hasher;	/* hashes what is read, or NULL */
};

struct xr_sig_gen {
	struct pull p;
};

struct xr_sig_load {
	rs_job_t *job;
	rs_signature_t *sig;
	uint64_t total;		/* bytes fed */
	unsigned char hdr[SIG_HEADER_LEN];
	size_t strong_len;
	bool job_done;		/* librsync saw the end */
	bool ready;		/* hash table built */
	int err;
};

struct xr_delta_gen {
	struct pull p;
	struct xr_sig_load *own_sig;	/* the empty signature for sig == NULL */
	struct xr_hasher hasher;
};

struct xr_patch {
	rs_job_t *job;
	int fd;
	uint64_t basis_size;
	xr_sink_fn sink;
	void *sink_ctx;
	unsigned char *out;	/* IO_CHUNK bytes */
	bool done;
	int err;		/* sticky error */
	int copy_err;		/* why the copy callback failed */
};

/* ---- librsync's diagnostics -------------------------------------------- */

static pthread_once_t trace_once = PTHREAD_ONCE_INIT;

/* Keeps librsync's error messages off stderr; they join the error trace. */
static void rs_log_to_trace(rs_loglevel level, char const *msg)
{
	static const char prefix[] = "librsync: ";
	char line[128];
	size_t len;

	if (level > RS_LOG_ERR)
		return;
	if (strncmp(msg, prefix, sizeof(prefix) - 1) == 0)
		msg += sizeof(prefix) - 1;
	len = strlen(msg);
	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		len--;
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	memcpy(line, msg, len);
	line[len] = '\0';
	xr_trace("librsync", 0, line);
}

/* Installs the quiet logger once per process. */
static void trace_setup(void)
{
	rs_trace_set_level(RS_LOG_ERR);
	rs_trace_to(rs_log_to_trace);
}

/* Makes sure librsync is quiet before a job starts. */
static void quiet_librsync(void)
{
	pthread_once(&trace_once, trace_setup);
}

/* Maps a failed librsync result to an xr_err. */
static int rs_to_err(rs_result r)
{
	return r == RS_MEM_ERROR ? XR_ENOMEM : XR_ESTREAM;
}

/* Reads a 32-bit big-endian integer. */
static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- pull-style jobs ----------------------------------------------------- */

/* Prepares p to read fd up to limit bytes; returns 0 or XR_ENOMEM. */
static int pull_init(struct pull *p, int fd, uint64_t limit)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->limit = limit;
	p->in = malloc(IO_CHUNK);
	return p->in ? 0 : XR_ENOMEM;
}

/* Refills the empty input buffer; returns 0 or XR_EFILEIO (errno set). */
static int pull_fill(struct pull *p)
{
	size_t want = IO_CHUNK;
	ssize_t n;

	p->in_pos = 0;
	if (p->limit - p->off < want)
		want = (size_t)(p->limit - p->off);
	if (want == 0) {
		p->eof = true;
		return 0;
	}
	do
		n = pread(p->fd, p->in, want, (off_t)p->off);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		XR_TRACE("pread source");
		return XR_EFILEIO;
	}
	if (n == 0) {
		p->eof = true;
		return 0;
	}
	if (p->hasher)
		xr_hasher_update(p->hasher, p->in, (size_t)n);
	p->off += (uint64_t)n;
	p->in_len = (size_t)n;
	return 0;
}

/*
 * Runs the job until cap bytes of output are in buf or it ends.  Sets *len
 * and *done; returns 0 or a sticky XR_EFILEIO, XR_ENOMEM or XR_ESTREAM.
 */
static int pull_next(struct pull *p, void *buf, size_t cap, size_t *len, bool *done)
{
	size_t produced = 0, in_before, out_before;
	rs_buffers_t b;
	rs_result r;

	*len = 0;
	*done = p->done;
	if (p->err || p->done)
		return p->err;
	while (produced < cap) {
		if (p->in_len == 0 && !p->eof) {
			p->err = pull_fill(p);
			if (p->err)
				return p->err;
		}
		b.next_in = (char *)p->in + p->in_pos;
		b.avail_in = p->in_len;
		b.eof_in = p->eof;
		b.next_out = (char *)buf + produced;
		b.avail_out = cap - produced;
		in_before = b.avail_in;
		out_before = b.avail_out;
		r = rs_job_iter(p->job, &b);
		p->in_pos += in_before - b.avail_in;
		p->in_len = b.avail_in;
		produced += out_before - b.avail_out;
		if (r == RS_DONE) {
			p->done = true;
			break;
		}
		if (r != RS_BLOCKED) {
			XR_TRACE(rs_strerror(r));
			p->err = rs_to_err(r);
			return p->err;
		}
		/* Blocked without progress, nothing left to read: a stuck job. */
		if (in_before == b.avail_in && out_before == b.avail_out && p->eof) {
			XR_TRACE("librsync job made no progress");
			p->err = XR_ESTREAM;
			return p->err;
		}
	}
	*len = produced;
	*done = p->done;
	return 0;
}

/* Releases a pull job's resources. */
static void pull_free(struct pull *p)
{
	if (p->job)
		rs_job_free(p->job);
	free(p->in);
}

/* ---- signature generation ------------------------------------------------ */

/*
 * rsync's block size (generator.c sum_sizes_sqroot): 700 bytes up to
 * 700*700, then sqrt(size) rounded down to a multiple of 8, at most 128 KiB.
 * Larger than librsync's own choice (256 bytes for small files): fewer
 * blocks, so a signature a third the size for a typical 8 KB keyconf.xml.
 */
static size_t rsync_block_len(uint64_t size)
{
	uint64_t b = 700;

	if (size > 700u * 700u) {
		while (b * b < size)
			b <<= 1;
		/* bisect down to floor(sqrt(size)) */
		uint64_t lo = b >> 1, hi = b;

		while (lo + 1 < hi) {
			uint64_t mid = (lo + hi) / 2;

			if (mid * mid <= size)
				lo = mid;
			else
				hi = mid;
		}
		b = lo & ~(uint64_t)7;
	}
	if (b > 128u * 1024)
		b = 128u * 1024;
	return (size_t)b;
}

/* Starts a signature of the first size bytes of fd; returns 0 or XR_ENOMEM. */
int xr_sig_gen_begin(struct xr_sig_gen **job, int fd, uint64_t size)
{
	rs_magic_number magic = RS_RK_BLAKE2_SIG_MAGIC;
	/*
	 * strong_len -1 asks rs_sig_args for the minimum safe strong sum for
	 * this size (as rsync sizes its s2length): a weaker block sum only
	 * risks a wrong match, which the whole-file XXH3-128 check catches.
	 */
	size_t block_len = 0, strong_len = (size_t)-1;
	struct xr_sig_gen *g;
	int rc;

	quiet_librsync();
	*job = NULL;
	if (size > INTMAX_MAX)
		size = INTMAX_MAX;
	block_len = rsync_block_len(size);
	if (rs_sig_args((rs_long_t)size, &magic, &block_len, &strong_len) != RS_DONE) {
		XR_TRACE("rs_sig_args");
		return XR_ESTREAM;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return XR_ENOMEM;
	rc = pull_init(&g->p, fd, size);
	if (rc < 0)
		goto out;
	g->p.job = rs_sig_begin(block_len, strong_len, magic);
	if (!g->p.job) {
		rc = XR_ENOMEM;
		goto out;
	}
	*job = g;
	return 0;
out:
	xr_sig_gen_free(g);
	return rc;
}

/* Writes up to cap signature bytes into buf; see delta.h. */
int xr_sig_gen_next(struct xr_sig_gen *job, void *buf, size_t cap, size_t *len, bool *done)
{
	return pull_next(&job->p, buf, cap, len, done);
}

/* Frees a signature job (NULL is fine). */
void xr_sig_gen_free(struct xr_sig_gen *job)
{
	if (!job)
		return;
	pull_free(&job->p);
	free(job);
}

/* ---- signature loading ----------------------------------------------------- */

/* Starts loading a signature; returns 0 or XR_ENOMEM. */
int xr_sig_load_begin(struct xr_sig_load **job)
{
	struct xr_sig_load *s;

	quiet_librsync();
	*job = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return XR_ENOMEM;
	s->job = rs_loadsig_begin(&s->sig);
	if (!s->job || !s->sig) {
		xr_sig_load_free(s);
		return XR_ENOMEM;
	}
	*job = s;
	return 0;
}

/*
 * Checks the 12-byte header (magic, block length, strong sum length)
 * against what xr_sig_gen produces; returns 0 or XR_ESTREAM.
 */
static int sig_check_header(struct xr_sig_load *s)
{
	uint32_t magic = get_be32(s->hdr);
	uint32_t block_len = get_be32(s->hdr + 4);
	uint32_t strong_len = get_be32(s->hdr + 8);

	if (magic != (uint32_t)RS_RK_BLAKE2_SIG_MAGIC) {
		XR_TRACE("signature: bad magic");
		return XR_ESTREAM;
	}
	if (block_len < 1 || block_len > SIG_MAX_BLOCK_LEN || strong_len < 1 ||
	    strong_len > RS_MAX_STRONG_SUM_LENGTH) {
		XR_TRACE("signature: implausible block or sum length");
		return XR_ESTREAM;
	}
	s->strong_len = strong_len;
	return 0;
}

/*
 * Runs the loadsig job over the input in b until it has taken all of it
 * (or, at EOF, until it ends); returns 0 or XR_ESTREAM / XR_ENOMEM.
 */
static int sig_load_run(struct xr_sig_load *s, rs_buffers_t *b)
{
	size_t in_before;
	rs_result r;

	for (;;) {
		in_before = b->avail_in;
		r = rs_job_iter(s->job, b);
		if (r == RS_DONE) {
			s->job_done = true;
			if (b->avail_in) {
				XR_TRACE("signature: data after the end");
				return XR_ESTREAM;
			}
			return 0;
		}
		if (r != RS_BLOCKED) {
			XR_TRACE(rs_strerror(r));
			return rs_to_err(r);
		}
		if (b->eof_in) {
			XR_TRACE("signature: loader blocked at end of input");
			return XR_ESTREAM;
		}
		if (b->avail_in == 0)
			return 0;
		if (b->avail_in == in_before) {
			XR_TRACE("signature: loader made no progress");
			return XR_ESTREAM;
		}
	}
}

/* Feeds signature bytes; returns 0, XR_ESTREAM, XR_ELIMIT or XR_ENOMEM. */
int xr_sig_load_feed(struct xr_sig_load *job, const void *buf, size_t len)
{
	rs_buffers_t b = {0};
	size_t take;

	if (job->err)
		return job->err;
	if (job->ready || job->job_done) {
		if (len == 0)
			return 0;
		XR_TRACE("signature: data after the end");
		return job->err = XR_ESTREAM;
	}
	if (len == 0)
		return 0;
	if (len > XR_SIG_MAX_BYTES - job->total) {
		XR_TRACE("signature larger than XR_SIG_MAX_BYTES");
		return job->err = XR_ELIMIT;
	}
	if (job->total < SIG_HEADER_LEN) {
		take = SIG_HEADER_LEN - (size_t)job->total;
		if (take > len)
			take = len;
		memcpy(job->hdr + job->total, buf, take);
		if (job->total + take == SIG_HEADER_LEN) {
			job->err = sig_check_header(job);
			if (job->err)
				return job->err;
		}
	}
	job->total += len;
	b.next_in = (char *)buf;
	b.avail_in = len;
	job->err = sig_load_run(job, &b);
	return job->err;
}

/* Ends the input and indexes the signature; returns 0, XR_ESTREAM or XR_ENOMEM. */
int xr_sig_load_finish(struct xr_sig_load *job)
{
	rs_buffers_t b = {0};
	rs_result r;

	if (job->err || job->ready)
		return job->err;
	if (job->total < SIG_HEADER_LEN ||
	    (job->total - SIG_HEADER_LEN) % (4 + job->strong_len) != 0) {
		XR_TRACE("signature truncated");
		return job->err = XR_ESTREAM;
	}
	if (!job->job_done) {
		b.eof_in = 1;
		job->err = sig_load_run(job, &b);
		if (job->err)
			return job->err;
	}
	rs_job_free(job->job);
	job->job = NULL;
	r = rs_build_hash_table(job->sig);
	if (r != RS_DONE) {
		XR_TRACE(rs_strerror(r));
		return job->err = rs_to_err(r);
	}
	job->ready = true;
	return 0;
}

/* Frees a signature and its loader (NULL is fine). */
void xr_sig_load_free(struct xr_sig_load *job)
{
	if (!job)
		return;
	if (job->job)
		rs_job_free(job->job);
	if (job->sig)
		rs_free_sumset(job->sig);
	free(job);
}

/*
 * Builds the signature of an empty file in memory, so that a delta without
 * a basis is still a librsync delta; returns 0, XR_ENOMEM or XR_ESTREAM.
 */
static int empty_signature(struct xr_sig_load **out)
{
	rs_magic_number magic = RS_RK_BLAKE2_SIG_MAGIC;
	size_t block_len = 0, strong_len = 0;
	char hdr[64];
	rs_buffers_t b = {0};
	rs_job_t *job;
	rs_result r;
	int rc;

	*out = NULL;
	if (rs_sig_args(0, &magic, &block_len, &strong_len) != RS_DONE)
		return XR_ESTREAM;
	job = rs_sig_begin(block_len, strong_len, magic);
	if (!job)
		return XR_ENOMEM;
	b.eof_in = 1;
	b.next_out = hdr;
	b.avail_out = sizeof(hdr);
	r = rs_job_iter(job, &b);
	rs_job_free(job);
	if (r != RS_DONE) {
		XR_TRACE(rs_strerror(r));
		return rs_to_err(r);
	}
	rc = xr_sig_load_begin(out);
	if (rc < 0)
		return rc;
	rc = xr_sig_load_feed(*out, hdr, sizeof(hdr) - b.avail_out);
	if (rc == 0)
		rc = xr_sig_load_finish(*out);
	if (rc < 0) {
		xr_sig_load_free(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- delta generation ------------------------------------------------------ */

/* Starts a delta of fd against sig (NULL: no basis); returns 0, XR_ENOMEM or XR_ESTREAM. */
int xr_delta_gen_begin(struct xr_delta_gen **job, struct xr_sig_load *sig, int fd)
{
	return xr_delta_gen_begin_max(job, sig, fd, UINT64_MAX);
}

/* As xr_delta_gen_begin, reading at most limit bytes of fd. */
int xr_delta_gen_begin_max(struct xr_delta_gen **job, struct xr_sig_load *sig, int fd,
			   uint64_t limit)
{
	struct xr_delta_gen *d;
	int rc;

	quiet_librsync();
	*job = NULL;
	if (sig && !sig->ready) {
		XR_TRACE("delta against an unfinished signature");
		return XR_ESTREAM;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return XR_ENOMEM;
	rc = pull_init(&d->p, fd, limit);
	if (rc < 0)
		goto out;
	rc = xr_hasher_init(&d->hasher);
	if (rc < 0)
		goto out;
	d->p.hasher = &d->hasher;
	if (!sig) {
		rc = empty_signature(&d->own_sig);
		if (rc < 0)
			goto out;
		sig = d->own_sig;
	}
	d->p.job = rs_delta_begin(sig->sig);
	if (!d->p.job) {
		rc = XR_ENOMEM;
		goto out;
	}
	*job = d;
	return 0;
out:
	xr_delta_gen_free(d);
	return rc;
}

/* Writes up to cap delta bytes into buf; see delta.h. */
int xr_delta_gen_next(struct xr_delta_gen *job, void *buf, size_t cap, size_t *len, bool *done)
{
	return pull_next(&job->p, buf, cap, len, done);
}

/* Reports the hash and size of the source bytes read so far (all, once done). */
void xr_delta_gen_result(struct xr_delta_gen *job, struct xr_hash *hash, uint64_t *size)
{
	if (hash)
		xr_hasher_final(&job->hasher, hash);
	if (size)
		*size = job->p.off;
}

/* Frees a delta job (NULL is fine); the caller's signature is left alone. */
void xr_delta_gen_free(struct xr_delta_gen *job)
{
	if (!job)
		return;
	pull_free(&job->p);
	xr_hasher_free(&job->hasher);
	xr_sig_load_free(job->own_sig);
	free(job);
}

/* ---- patch ------------------------------------------------------------------ */

/*
 * librsync's copy callback: reads *len bytes of the basis at pos into *buf.
 * A range outside [0, basis_size) fails the job (RS_CORRUPT, XR_ESTREAM);
 * a read error or a basis that shrank fails it with XR_EFILEIO.
 */
static rs_result patch_copy(void *arg, rs_long_t pos, size_t *len, void **buf)
{
	struct xr_patch *p = arg;
	size_t want = *len, got = 0;
	ssize_t n;

	if (pos < 0 || (uint64_t)pos > p->basis_size || want > p->basis_size - (uint64_t)pos ||
	    want == 0) {
		XR_TRACE("delta copies from outside the basis");
		p->copy_err = XR_ESTREAM;
		return RS_CORRUPT;
	}
	while (got < want) {
		n = pread(p->fd, (char *)*buf + got, want - got, (off_t)pos + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			XR_TRACE("pread basis");
			p->copy_err = XR_EFILEIO;
			return RS_IO_ERROR;
		}
		got += (size_t)n;
	}
	return RS_DONE;
}

/* Starts a patch of basis_fd writing through sink; returns 0 or XR_ENOMEM. */
int xr_patch_begin(struct xr_patch **job, int basis_fd, uint64_t basis_size, xr_sink_fn sink,
		   void *sink_ctx)
{
	struct xr_patch *p;

	quiet_librsync();
	*job = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return XR_ENOMEM;
	p->fd = basis_fd;
	p->basis_size = basis_size;
	p->sink = sink;
	p->sink_ctx = sink_ctx;
	p->out = malloc(IO_CHUNK);
	if (p->out)
		p->job = rs_patch_begin(patch_copy, p);
	if (!p->out || !p->job) {
		xr_patch_free(p);
		return XR_ENOMEM;
	}
	*job = p;
	return 0;
}

/*
 * Runs the patch job over the input in b, passing output to the sink,
 * until the input is used up (or, at EOF, the delta ends).  Returns 0,
 * XR_ESTREAM, XR_EFILEIO, XR_ENOMEM or the sink's error.
 */
static int patch_run(struct xr_patch *p, rs_buffers_t *b)
{
	size_t in_before, produced;
	rs_result r;
	int rc;

	for (;;) {
		b->next_out = (char *)p->out;
		b->avail_out = IO_CHUNK;
		in_before = b->avail_in;
		r = rs_job_iter(p->job, b);
		produced = IO_CHUNK - b->avail_out;
		if (r != RS_DONE && r != RS_BLOCKED) {
			XR_TRACE(rs_strerror(r));
			return p->copy_err ? p->copy_err : rs_to_err(r);
		}
		if (produced) {
			rc = p->sink(p->sink_ctx, p->out, produced);
			if (rc < 0) {
				XR_TRACE("patch output refused");
				return rc;
			}
		}
		if (r == RS_DONE) {
			p->done = true;
			if (b->avail_in) {
				XR_TRACE("delta: data after the end");
				return XR_ESTREAM;
			}
			return 0;
		}
		if (produced == IO_CHUNK)
			continue;	/* the job may have more output */
		if (b->eof_in) {
			XR_TRACE("delta: patch blocked at end of input");
			return XR_ESTREAM;
		}
		if (b->avail_in == 0)
			return 0;
		if (b->avail_in == in_before && produced == 0) {
			XR_TRACE("delta: patch made no progress");
			return XR_ESTREAM;
		}
	}
}

/* Feeds delta bytes; returns 0, XR_ESTREAM, XR_EFILEIO, XR_ENOMEM or the sink's error. */
int xr_patch_feed(struct xr_patch *job, const void *buf, size_t len)
{
	rs_buffers_t b = {0};

	if (job->err)
		return job->err;
	if (job->done) {
		if (len == 0)
			return 0;
		XR_TRACE("delta: data after the end");
		return job->err = XR_ESTREAM;
	}
	if (len == 0)
		return 0;
	b.next_in = (char *)buf;
	b.avail_in = len;
	job->err = patch_run(job, &b);
	return job->err;
}

/* Ends the delta; returns 0, or XR_ESTREAM if it was truncated (or the sink's error). */
int xr_patch_finish(struct xr_patch *job)
{
	rs_buffers_t b = {0};

	if (job->err || job->done)
		return job->err;
	b.eof_in = 1;
	job->err = patch_run(job, &b);
	return job->err;
}

/* Bytes the delta carried literally and bytes it copied from the basis, so far. */
void xr_patch_stats(const struct xr_patch *job, uint64_t *literal, uint64_t *copied)
{
	const rs_stats_t *st = rs_job_statistics(job->job);

	*literal = (uint64_t)st->lit_bytes;
	*copied = (uint64_t)st->copy_bytes;
}

/* Frees a patch job (NULL is fine). */
void xr_patch_free(struct xr_patch *job)
{
	if (!job)
		return;
	if (job->job)
		rs_job_free(job->job);
	free(job->out);
	free(job);
}

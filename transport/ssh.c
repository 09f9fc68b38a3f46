/* ssh.c - the built-in SSH transport: libssh2 exec channel, non-blocking, driven from poll. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>
#include <openssl/evp.h>

#include "xr/err.h"
#include "xr/log.h"
#include "xr/transport.h"
#include "ssh.h"

#define SSH_WINDOW (8u * 1024 * 1024)
#define SSH_PACKET 32768u
#define SSH_CHUNK 32700u	/* libssh2 sends at most this much per channel write */
#define SSH_CLOSE_WAIT_S 10
#define ERRLINE_MAX 1024

/* Which libssh2 call left a packet half-sent (it must be completed first). */
enum pending { PEND_NONE = 0, PEND_WRITE, PEND_READ };

struct ssh_stream {
	int sock;
	int ready_fd;			/* eventfd that is always readable: "data buffered" */
	LIBSSH2_SESSION *session;
	LIBSSH2_CHANNEL *channel;
	char host[300];			/* "host" or "[host]:port", for messages */
	int interval, count_max;	/* ServerAlive* */
	long long last_rx_ms;		/* last bytes from the server (recv callback) */
	int close_wait_s;
	enum pending pend;
	int pend_dirs;			/* block directions when it got pending */
	unsigned char wbuf[SSH_CHUNK];	/* copy of the write that is pending */
	size_t wlen;
	size_t wcredit;			/* bytes libssh2 took that write() has not reported */
	bool wblock_in;			/* last write waited for a window adjust */
	unsigned char rbuf[SSH_CHUNK];	/* data read while completing a pending read */
	size_t rlen, roff;
	bool dead;			/* the connection failed: close() does not wait */
	bool io_off;			/* freeing: socket callbacks fail at once */
	unsigned known_types;		/* bit t: known_hosts has keytypes[t] for the host */
	char errline[ERRLINE_MAX];	/* remote stderr, line-buffered */
	size_t errlen;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

/* Returns CLOCK_MONOTONIC in milliseconds. */
static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds until deadline for poll (-1 = no deadline, 0 = expired). */
static int ms_left(long long deadline)
{
	long long left;

	if (deadline < 0)
		return -1;
	left = deadline - mono_ms();
	if (left <= 0)
		return 0;
	return left > 1000000 ? 1000000 : (int)left;
}

/* The last libssh2 error message of the session. */
static const char *ssh_errmsg(LIBSSH2_SESSION *session)
{
	char *msg = NULL;

	if (!session)
		return "unknown error";
	libssh2_session_last_error(session, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown error";
}

/* The running user's home directory (pw_dir, falling back to $HOME), or NULL. */
static const char *home_dir(void)
{
	struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_dir && *pw->pw_dir)
		return pw->pw_dir;
	return getenv("HOME");
}

/* Expands a leading "~/" against the home directory into out; returns 0 or XR_ESSH. */
static int expand_path(const char *path, char *out, size_t outlen)
{
	const char *home;
	int n;

	if (path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
		home = home_dir();
		if (!home) {
			xr_error("ssh: cannot expand %s: no home directory", path);
			return XR_ESSH;
		}
		n = snprintf(out, outlen, "%s%s", home, path + 1);
	} else {
		n = snprintf(out, outlen, "%s", path);
	}
	if (n < 0 || (size_t)n >= outlen) {
		xr_error("ssh: path too long: %s", path);
		return XR_ESSH;
	}
	return 0;
}

/* libssh2 recv callback: plain recv() that remembers when the server last spoke. */
static ssize_t ssh_recv_cb(libssh2_socket_t fd, void *buf, size_t len, int flags, void **abstract)
{
	struct ssh_stream *s = *abstract;
	ssize_t n;

	if (s->io_off)
		return -ECONNRESET;
	n = recv(fd, buf, len, flags);

	if (n > 0)
		s->last_rx_ms = mono_ms();
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

/* libssh2 send callback: send() without SIGPIPE; fails at once while freeing. */
static ssize_t ssh_send_cb(libssh2_socket_t fd, const void *buf, size_t len, int flags,
			   void **abstract)
{
	struct ssh_stream *s = *abstract;
	ssize_t n;

	if (s->io_off)
		return -EPIPE;
	n = send(fd, buf, len, flags | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

/*
 * Waits until the socket is ready in the direction libssh2 last blocked on,
 * or deadline.  Returns 0, or tmo_err when the deadline passed.
 */
static int wait_socket(struct ssh_stream *s, long long deadline, int tmo_err)
{
	struct pollfd pfd;
	int dirs = libssh2_session_block_directions(s->session);
	int left = ms_left(deadline);

	if (left == 0)
		return tmo_err;
	pfd.fd = s->sock;
	pfd.events = 0;
	if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
		pfd.events |= POLLIN;
	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		pfd.events |= POLLOUT;
	if (!pfd.events)
		pfd.events = POLLIN;	/* nothing blocked: wait for the server */
	if (poll(&pfd, 1, left) == 0 && ms_left(deadline) == 0)
		return tmo_err;
	return 0;
}

/* ------------------------------------------------------------------ */
/* TCP                                                                 */

/*
 * Connects to host:port (any address of the wanted family) until deadline.
 * Returns 0 and the non-blocking socket, XR_ECONNTIMEOUT (timeout_err) or
 * XR_ESSH, with OpenSSH's messages.
 */
static int tcp_connect(const char *host, int port, int family, long long deadline, int tmo_err,
		       int *sockp)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	struct pollfd pfd;
	socklen_t sl;
	int fd = -1, rc, soerr = 0, one = 1, left;
	bool expired = false;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family ? family : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc) {
		xr_error("ssh: Could not resolve hostname %s: %s", host, gai_strerror(rc));
		return XR_ESSH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			soerr = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		soerr = errno;
		if (soerr == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			do {
				left = ms_left(deadline);
				rc = left == 0 ? 0 : poll(&pfd, 1, left);
			} while (rc < 0 && errno == EINTR);
			if (rc == 0) {
				soerr = ETIMEDOUT;
				expired = true;
			} else {
				sl = sizeof(soerr);
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
					soerr = errno;
				if (soerr == 0)
					break;
			}
		}
		close(fd);
		fd = -1;
		if (expired)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		/* as ssh: our ConnectTimeout is exit 35 (rsync's), the kernel's is ssh's 255 */
		xr_error("ssh: connect to host %s port %d: %s", host, port,
			 soerr == ETIMEDOUT ? "Connection timed out" : strerror(soerr));
		return expired ? tmo_err : XR_ESSH;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*sockp = fd;
	return 0;
}

/* ------------------------------------------------------------------ */
/* host keys                                                           */

struct keytype {
	int hostkey_type;	/* LIBSSH2_HOSTKEY_TYPE_* */
	int known_bit;		/* LIBSSH2_KNOWNHOST_KEY_* */
	const char *name;	/* as OpenSSH prints it */
	const char *algs;	/* hostkey algorithm names, prefix match */
};

static const struct keytype keytypes[] = {
	{LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ED25519", "ssh-ed25519"},
	{LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ECDSA",
	 "ecdsa-sha2-nistp256"},
	{LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ECDSA",
	 "ecdsa-sha2-nistp384"},
	{LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ECDSA",
	 "ecdsa-sha2-nistp521"},
	{LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "RSA", "rsa-sha2-,ssh-rsa"},
	{LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "DSA", "ssh-dss"},
};
#define NKEYTYPES (sizeof(keytypes) / sizeof(keytypes[0]))

/* True when algorithm name alg belongs to key type kt. */
static bool alg_of_type(const char *alg, const struct keytype *kt)
{
	const char *p = kt->algs, *comma;
	size_t n;

	while (*p) {
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		if (strncmp(alg, p, n) == 0)
			return true;
		p += n + (comma ? 1 : 0);
	}
	return false;
}

/*
 * Loads known_hosts line by line (lines libssh2 cannot parse, e.g. markers
 * or unknown key types, are skipped, as OpenSSH ignores what it does not
 * understand).  A missing file is an empty list.  Returns 0 or XR_ESSH.
 */
static int load_known_hosts(LIBSSH2_KNOWNHOSTS *kh, const char *path)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		xr_error("ssh: %s: open: %s", path, strerror(errno));
		return XR_ESSH;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[0] == '@')
			continue;
		libssh2_knownhost_readline(kh, line, (size_t)n, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	}
	free(line);
	fclose(f);
	return 0;
}

/*
 * Reorders the host key algorithms so that types already known for the host
 * come first (as OpenSSH does), so a host known only by its RSA key is not
 * rejected for offering ED25519.  Best effort: returns nothing.
 */
static void prefer_known_types(struct ssh_stream *s, LIBSSH2_KNOWNHOSTS *kh, const char *host,
			       int kport)
{
	LIBSSH2_SESSION *session = s->session;
	bool known[NKEYTYPES] = {false};
	const char **algs = NULL;
	char pref[1024];
	size_t len = 0, t, pass;
	int n, i, rc;
	bool any = false;

	for (t = 0; t < NKEYTYPES; t++) {
		rc = libssh2_knownhost_checkp(kh, host, kport, "\0", 1,
					      LIBSSH2_KNOWNHOST_TYPE_PLAIN |
						      LIBSSH2_KNOWNHOST_KEYENC_RAW |
						      keytypes[t].known_bit,
					      NULL);
		known[t] = rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH ||
			   rc == LIBSSH2_KNOWNHOST_CHECK_MATCH;
		any = any || known[t];
		if (known[t])
			s->known_types |= 1u << t;
	}
	if (!any)
		return;
	n = libssh2_session_supported_algs(session, LIBSSH2_METHOD_HOSTKEY, &algs);
	if (n <= 0)
		return;
	pref[0] = '\0';
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			bool is_known = false;

			for (t = 0; t < NKEYTYPES; t++)
				if (known[t] && alg_of_type(algs[i], &keytypes[t]))
					is_known = true;
			if (is_known != (pass == 0))
				continue;
			if (len + strlen(algs[i]) + 2 >= sizeof(pref))
				break;
			len += (size_t)snprintf(pref + len, sizeof(pref) - len, "%s%s",
						len ? "," : "", algs[i]);
		}
	}
	libssh2_free(session, (void *)algs);
	libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, pref);
}

/* Writes OpenSSH's "SHA256:<unpadded base64>" fingerprint of a key blob into out. */
static void fingerprint(const char *key, size_t len, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned char b64[2 * EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n;

	if (!EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL)) {
		snprintf(out, outlen, "SHA256:?");
		return;
	}
	n = EVP_EncodeBlock(b64, md, (int)mdlen);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, outlen, "SHA256:%.*s", n, (const char *)b64);
}

/*
 * Appends the host's key to known_hosts (creating ~/.ssh 0700 and the file
 * 0600 when needed); returns 0 or -1 (a warning has been printed).
 */
static int append_known_host(LIBSSH2_KNOWNHOSTS *kh, const char *path, const char *name,
			     const char *key, size_t keylen, int known_bit)
{
	struct libssh2_knownhost *store = NULL;
	char line[16384], dir[4096], *slash;
	size_t outlen = 0;
	int fd, rc;
	ssize_t w;

	rc = libssh2_knownhost_addc(kh, name, NULL, key, keylen, NULL, 0,
				    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
					    known_bit,
				    &store);
	if (rc || !store ||
	    libssh2_knownhost_writeline(kh, store, line, sizeof(line), &outlen,
					LIBSSH2_KNOWNHOST_FILE_OPENSSH)) {
		xr_warn("ssh: failed to add the host to the list of known hosts (%s)", path);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			xr_warn("ssh: %s: mkdir: %s", dir, strerror(errno));
			return -1;
		}
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		xr_warn("ssh: failed to add the host to the list of known hosts (%s): %s", path,
			strerror(errno));
		return -1;
	}
	w = write(fd, line, outlen);
	if (w != (ssize_t)outlen || fsync(fd) < 0) {
		xr_warn("ssh: %s: write: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Checks the server's host key against known_hosts under the policy.
 * Returns 0 to go on, XR_ESSH with OpenSSH's messages to refuse.
 */
static int check_hostkey(struct ssh_stream *s, LIBSSH2_KNOWNHOSTS *kh, const char *path,
			 const char *host, int port, enum xr_hostkey_policy policy)
{
	const struct keytype *kt = NULL;
	const char *key;
	char fp[128];
	size_t len = 0, t;
	int type = 0, rc;

	key = libssh2_session_hostkey(s->session, &len, &type);
	if (!key) {
		xr_error("ssh: %s: no host key: %s", s->host, ssh_errmsg(s->session));
		return XR_ESSH;
	}
	for (t = 0; t < NKEYTYPES; t++)
		if (keytypes[t].hostkey_type == type)
			kt = &keytypes[t];
	if (!kt) {
		xr_error("ssh: %s: unsupported host key type %d", s->host, type);
		return XR_ESSH;
	}
	fingerprint(key, len, fp, sizeof(fp));
	rc = libssh2_knownhost_checkp(kh, host, port == 22 ? -1 : port, key, len,
				      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
					      kt->known_bit,
				      NULL);
	if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		return 0;
	if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		xr_error("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@");
		xr_error("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @");
		xr_error("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@");
		xr_error("IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!");
		xr_error("Someone could be eavesdropping on you right now "
			 "(man-in-the-middle attack)!");
		xr_error("It is also possible that a host key has just been changed.");
		xr_error("The fingerprint for the %s key sent by the remote host is", kt->name);
		xr_error("%s.", fp);
		xr_error("Please contact your system administrator.");
		xr_error("Add correct host key in %s to get rid of this message.", path);
		if (policy == XR_HOSTKEY_NO) {
			xr_warn("%s host key for %s has changed; continuing because "
				"StrictHostKeyChecking=no", kt->name, s->host);
			return 0;
		}
		xr_error("Host key for %s has changed and you have requested strict checking.",
			 s->host);
		xr_error("Host key verification failed.");
		return XR_ESSH;
	}
	if (rc != LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
		xr_error("ssh: %s: checking the host key failed: %s", s->host,
			 ssh_errmsg(s->session));
		return XR_ESSH;
	}
	if (policy == XR_HOSTKEY_YES) {
		xr_error("The authenticity of host '%s' can't be established.", s->host);
		xr_error("%s key fingerprint is %s.", kt->name, fp);
		for (t = 0; t < NKEYTYPES; t++)
			if (s->known_types & (1u << t))
				xr_error("%s has a %s key for this host, but the server did not "
					 "offer a %s host key that this libssh2 (%s) can verify%s",
					 path, keytypes[t].name, keytypes[t].name,
					 libssh2_version(0),
					 keytypes[t].known_bit == LIBSSH2_KNOWNHOST_KEY_SSHRSA
						 ? " (libssh2 before 1.11 knows only ssh-rsa/SHA-1 "
						   "host key signatures; add the server's ed25519 "
						   "or ecdsa key)"
						 : "");
		xr_error("No %s host key is known for %s (in %s) and you have requested strict "
			 "checking.", kt->name, s->host, path);
		xr_error("Host key verification failed.");
		return XR_ESSH;
	}
	if (policy == XR_HOSTKEY_ACCEPT_NEW) {
		if (append_known_host(kh, path, s->host, key, len, kt->known_bit) == 0)
			xr_warn("Warning: Permanently added '%s' (%s) to the list of known hosts.",
				s->host, kt->name);
		return 0;
	}
	xr_warn("Warning: %s host key for '%s' (%s) is not known; not verified "
		"(StrictHostKeyChecking=no).", kt->name, s->host, fp);
	return 0;
}

/* ------------------------------------------------------------------ */
/* authentication                                                      */

/* Reads a big-endian u32 length-prefixed string at *off of raw[0..len); NULL if short. */
static const unsigned char *blob_string(const unsigned char *raw, size_t len, size_t *off,
					uint32_t *slen)
{
	const unsigned char *p;

	if (*off + 4 > len)
		return NULL;
	p = raw + *off;
	*slen = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (*slen > len - *off - 4)
		return NULL;
	*off += 4 + *slen;
	return p + 4;
}

/*
 * Looks at a private key file: sets *encrypted when it is passphrase-
 * protected (OpenSSH format with a cipher other than "none", or an
 * encrypted PEM / PKCS#8 key) and *rsa when it is an RSA key.
 */
static void key_info(const char *path, bool *encrypted, bool *rsa)
{
	static const char begin[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
	char text[16384], b64[1024];
	unsigned char raw[1024];
	const unsigned char *cipher, *type;
	uint32_t clen, tlen, skip;
	size_t n, m = 0, off = 15;
	const char *p;
	int dec, i;
	FILE *f = fopen(path, "re");

	*encrypted = *rsa = false;
	if (!f)
		return;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	*encrypted = strstr(text, "Proc-Type: 4,ENCRYPTED") ||
		     strstr(text, "BEGIN ENCRYPTED PRIVATE KEY");
	*rsa = strstr(text, "BEGIN RSA PRIVATE KEY") != NULL;
	p = strstr(text, begin);
	if (!p)
		return;
	for (p += sizeof(begin) - 1; *p && *p != '-' && m < sizeof(b64); p++)
		if (*p != '\n' && *p != '\r' && *p != ' ')
			b64[m++] = *p;
	m -= m % 4;
	dec = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)m);
	/* "openssh-key-v1\0", ciphername, kdfname, kdfoptions, u32 nkeys, pubkey */
	if (dec < 19 || memcmp(raw, "openssh-key-v1", 15) != 0)
		return;
	cipher = blob_string(raw, (size_t)dec, &off, &clen);
	if (!cipher)
		return;
	*encrypted = !(clen == 4 && memcmp(cipher, "none", 4) == 0);
	for (i = 0; i < 2; i++)
		if (!blob_string(raw, (size_t)dec, &off, &skip))
			return;
	off += 4 + 4;	/* nkeys, then the length of the public key blob */
	type = blob_string(raw, (size_t)dec, &off, &tlen);
	*rsa = type && tlen == 7 && memcmp(type, "ssh-rsa", 7) == 0;
}

/* Loops a libssh2 call while it returns EAGAIN, waiting on the socket. */
#define SSH_RETRY(s, rc, call, deadline, tmo_err)                                   \
	do {                                                                          \
		while (((rc) = (call)) == LIBSSH2_ERROR_EAGAIN) {                     \
			int w_ = wait_socket((s), (deadline), (tmo_err));             \
			if (w_) {                                                     \
				(rc) = w_;                                            \
				break;                                                \
			}                                                             \
		}                                                                     \
	} while (0)

/*
 * Tries the keys of a running ssh-agent.  Returns 1 when authenticated,
 * 0 when none was accepted (or there is no agent), or a negative xr_err.
 */
static int auth_agent(struct ssh_stream *s, const char *user, long long deadline, int tmo_err)
{
	LIBSSH2_AGENT *agent;
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	int rc, result = 0;

	if (!getenv("SSH_AUTH_SOCK"))
		return 0;
	agent = libssh2_agent_init(s->session);
	if (!agent)
		return 0;
	if (libssh2_agent_connect(agent) || libssh2_agent_list_identities(agent)) {
		xr_warn("ssh: cannot use the ssh-agent: %s", ssh_errmsg(s->session));
		goto out;
	}
	while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
		SSH_RETRY(s, rc, libssh2_agent_userauth(agent, user, id), deadline, tmo_err);
		if (rc == 0) {
			result = 1;
			break;
		}
		if (rc == tmo_err) {
			result = rc;
			break;
		}
		if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED &&
		    rc != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED && rc != LIBSSH2_ERROR_AGENT_PROTOCOL) {
			xr_error("ssh: agent authentication: %s", ssh_errmsg(s->session));
			result = XR_ESSH;
			break;
		}
		prev = id;
	}
out:
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return result;
}

/*
 * Tries one identity file.  Returns 1 when authenticated, 0 when refused
 * or unusable (*encrypted set for a passphrase-protected key), or a
 * negative xr_err.
 */
static int auth_keyfile(struct ssh_stream *s, const char *user, const char *path, bool explicit,
			bool *encrypted, long long deadline, int tmo_err)
{
	bool enc, rsa;
	int rc;

	if (access(path, R_OK) < 0) {
		if (explicit)
			xr_warn("Warning: Identity file %s not accessible: %s.", path,
				strerror(errno));
		return 0;
	}
	key_info(path, &enc, &rsa);
	if (enc) {
		*encrypted = true;
		xr_warn("ssh: identity file %s is passphrase-protected; skipped (no prompt)",
			path);
		return 0;
	}
	SSH_RETRY(s, rc,
		  libssh2_userauth_publickey_fromfile_ex(s->session, user,
							 (unsigned int)strlen(user), NULL, path,
							 NULL),
		  deadline, tmo_err);
	if (rc == 0)
		return 1;
	if (rc == tmo_err)
		return rc;
	if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
		if (rsa && !libssh2_version(0x010b00))
			xr_warn("ssh: RSA key %s was refused; libssh2 %s signs RSA keys only with "
				"ssh-rsa (SHA-1), which OpenSSH 8.8 and later refuse by default: "
				"use an ed25519 or ecdsa key", path, libssh2_version(0));
		return 0;
	}
	if (rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED) {
		xr_warn("ssh: identity file %s: %s", path, ssh_errmsg(s->session));
		return 0;
	}
	xr_error("ssh: public key authentication with %s: %s", path, ssh_errmsg(s->session));
	return XR_ESSH;
}

/*
 * Authenticates as user: agent keys, then identity files (-i / IdentityFile,
 * else ~/.ssh/id_ed25519, id_ecdsa, id_rsa).  Returns 0, XR_ESSH with
 * "Permission denied (...)", or the timeout error.
 */
static int ssh_auth(struct ssh_stream *s, const struct xr_rsh *rsh, const char *user,
		    long long deadline, int tmo_err)
{
	static const char *const defaults[] = {"~/.ssh/id_ed25519", "~/.ssh/id_ecdsa",
					       "~/.ssh/id_rsa"};
	char methods[256], path[4096];
	const char *list, *candidate;
	bool encrypted = false, explicit = rsh->nidentities > 0;
	int rc, i, n;

	for (;;) {
		list = libssh2_userauth_list(s->session, user, (unsigned int)strlen(user));
		if (list || libssh2_userauth_authenticated(s->session))
			break;
		rc = libssh2_session_last_errno(s->session);
		if (rc != LIBSSH2_ERROR_EAGAIN) {
			xr_error("ssh: %s: authentication: %s", s->host, ssh_errmsg(s->session));
			return XR_ESSH;
		}
		rc = wait_socket(s, deadline, tmo_err);
		if (rc)
			goto timeout;
	}
	if (!list)
		return 0;	/* "none" authentication succeeded */
	snprintf(methods, sizeof(methods), "%s", list);
	if (!strstr(methods, "publickey"))
		goto denied;
	rc = auth_agent(s, user, deadline, tmo_err);
	if (rc == 1)
		return 0;
	if (rc < 0)
		goto fail;
	n = explicit ? rsh->nidentities : (int)(sizeof(defaults) / sizeof(defaults[0]));
	for (i = 0; i < n; i++) {
		candidate = explicit ? rsh->identities[i] : defaults[i];
		if (expand_path(candidate, path, sizeof(path)))
			continue;
		rc = auth_keyfile(s, user, path, explicit, &encrypted, deadline, tmo_err);
		if (rc == 1)
			return 0;
		if (rc < 0)
			goto fail;
	}
	if (encrypted)
		xr_error("ssh: a passphrase-protected identity was not used: load it into "
			 "ssh-agent (ssh-add) and set SSH_AUTH_SOCK; the built-in transport "
			 "never prompts for passphrases");
denied:
	xr_error("%s@%s: Permission denied (%s).", user, s->host, methods);
	return XR_ESSH;
fail:
	if (rc == tmo_err)
		goto timeout;
	return rc;
timeout:
	xr_error("ssh: connect to host %s: authentication timed out", s->host);
	return tmo_err;
}

/* ------------------------------------------------------------------ */
/* the stream                                                          */

/* Writes a complete remote stderr line (or a flushed partial one) to our stderr. */
static void flush_errline(struct ssh_stream *s)
{
	if (!s->errlen)
		return;
	fprintf(stderr, "%.*s\n", (int)s->errlen, s->errline);
	fflush(stderr);
	s->errlen = 0;
}

/* Copies remote stderr bytes to our stderr, a line at a time. */
static void emit_stderr(struct ssh_stream *s, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (!s->errlen)
				fputc('\n', stderr);
			flush_errline(s);
			continue;
		}
		if (s->errlen == sizeof(s->errline))
			flush_errline(s);
		s->errline[s->errlen++] = p[i];
	}
}

/* Records a pending half-sent packet after an EAGAIN from an operation of kind k. */
static void note_eagain(struct ssh_stream *s, enum pending k)
{
	int dirs = libssh2_session_block_directions(s->session);

	if ((dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) && s->pend == PEND_NONE) {
		s->pend = k;
		s->pend_dirs = dirs;
	}
}

/* Reports a libssh2 I/O failure; returns XR_ESOCKET. */
static int io_failed(struct ssh_stream *s, const char *op, ssize_t rc)
{
	xr_error("ssh: %s: %s: %s (%d)", s->host, op, ssh_errmsg(s->session), (int)rc);
	s->dead = true;
	return XR_ESOCKET;
}

/* Drains the remote's stderr.  Returns 0, -EAGAIN (a packet is half-sent) or XR_ESOCKET. */
static int drain_stderr(struct ssh_stream *s)
{
	char buf[4096];
	ssize_t n;

	for (;;) {
		n = libssh2_channel_read_stderr(s->channel, buf, sizeof(buf));
		if (n > 0) {
			emit_stderr(s, buf, (size_t)n);
			continue;
		}
		if (n == 0)
			return 0;
		if (n == LIBSSH2_ERROR_EAGAIN) {
			note_eagain(s, PEND_READ);
			return s->pend ? -EAGAIN : 0;
		}
		return io_failed(s, "read stderr", n);
	}
}

/*
 * Completes a half-sent packet left by an earlier call (libssh2 must finish
 * it before any other send).  Returns 0 when none is pending any more,
 * -EAGAIN while it still is, or XR_ESOCKET.
 */
static int settle(struct ssh_stream *s)
{
	ssize_t n;

	if (s->pend == PEND_WRITE) {
		n = libssh2_channel_write(s->channel, (const char *)s->wbuf, s->wlen);
		if (n == LIBSSH2_ERROR_EAGAIN)
			return -EAGAIN;
		if (n < 0)
			return io_failed(s, "write", n);
		s->wcredit += (size_t)n;
		s->wlen = 0;
		s->pend = PEND_NONE;
	} else if (s->pend == PEND_READ) {
		if (s->rlen > s->roff)
			return 0;	/* cannot happen: reads stop while rbuf has data */
		n = libssh2_channel_read(s->channel, (char *)s->rbuf, sizeof(s->rbuf));
		if (n == LIBSSH2_ERROR_EAGAIN) {
			if (libssh2_session_block_directions(s->session) &
			    LIBSSH2_SESSION_BLOCK_OUTBOUND)
				return -EAGAIN;
			n = 0;
		}
		if (n < 0)
			return io_failed(s, "read", n);
		s->rlen = (size_t)n;
		s->roff = 0;
		s->pend = PEND_NONE;
	}
	return 0;
}

/* Stream read: remote stdout; remote stderr is copied to ours on the way. */
static ssize_t ssh_read(void *ctx, void *buf, size_t len)
{
	struct ssh_stream *s = ctx;
	ssize_t n;
	int rc;

	if (s->rlen > s->roff) {
		n = (ssize_t)(s->rlen - s->roff < len ? s->rlen - s->roff : len);
		memcpy(buf, s->rbuf + s->roff, (size_t)n);
		s->roff += (size_t)n;
		return n;
	}
	rc = settle(s);
	if (rc)
		return rc;
	rc = drain_stderr(s);
	if (rc)
		return rc;
	n = libssh2_channel_read(s->channel, buf, len);
	if (n > 0)
		return n;
	if (n == LIBSSH2_ERROR_EAGAIN) {
		note_eagain(s, PEND_READ);
		return -EAGAIN;
	}
	if (n == 0) {
		if (!libssh2_channel_eof(s->channel))
			return -EAGAIN;
		drain_stderr(s);
		flush_errline(s);
		return 0;
	}
	return io_failed(s, "read", n);
}

/* Stream write: remote stdin. */
static ssize_t ssh_write(void *ctx, const void *buf, size_t len)
{
	struct ssh_stream *s = ctx;
	ssize_t n;
	size_t take;
	int rc;

	if (s->wcredit) {
		take = s->wcredit < len ? s->wcredit : len;
		s->wcredit -= take;
		return (ssize_t)take;
	}
	if (s->pend == PEND_READ) {
		rc = settle(s);
		if (rc)
			return rc;
	}
	if (s->pend == PEND_WRITE) {
		rc = settle(s);
		if (rc)
			return rc;
		take = s->wcredit < len ? s->wcredit : len;
		s->wcredit -= take;
		return (ssize_t)take;
	}
	n = libssh2_channel_write(s->channel, buf, len);
	if (n > 0) {
		s->wblock_in = false;
		return n;
	}
	if (n == LIBSSH2_ERROR_EAGAIN || n == 0) {
		s->wblock_in = !(libssh2_session_block_directions(s->session) &
				 LIBSSH2_SESSION_BLOCK_OUTBOUND);
		if (!s->wblock_in) {
			s->wlen = len < sizeof(s->wbuf) ? len : sizeof(s->wbuf);
			memcpy(s->wbuf, buf, s->wlen);
			note_eagain(s, PEND_WRITE);
		}
		return -EAGAIN;
	}
	return io_failed(s, "write", n);
}

/* True when a read would return something without touching the socket. */
static bool data_buffered(struct ssh_stream *s)
{
	return s->rlen > s->roff || s->wcredit ||
	       libssh2_poll_channel_read(s->channel, 1) > 0 || libssh2_channel_eof(s->channel);
}

/* Maps the wanted directions and libssh2's block directions onto the socket. */
static int ssh_pollfds(void *ctx, bool want_read, bool want_write, struct pollfd *pfd, int max)
{
	struct ssh_stream *s = ctx;
	short ev = 0;
	int n = 0;

	if (max < 1)
		return 0;
	if (s->pend) {
		if (s->pend_dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
			ev |= POLLOUT;
		if (s->pend_dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
			ev |= POLLIN;
	} else {
		if (want_read)
			ev |= POLLIN;
		if (want_write)
			ev |= s->wblock_in ? POLLIN : POLLOUT;
	}
	pfd[n].fd = s->sock;
	pfd[n].events = ev;
	pfd[n++].revents = 0;
	if ((want_read || (want_write && s->wcredit)) && max > n && data_buffered(s)) {
		pfd[n].fd = s->ready_fd;
		pfd[n].events = POLLIN;
		pfd[n++].revents = 0;
	}
	return n;
}

/*
 * Periodic work: completes half-sent packets, copies remote stderr, sends
 * keepalives and gives up after ServerAliveCountMax unanswered ones.
 * Returns 0 or XR_ESSH / XR_ESOCKET.
 */
static int ssh_tick(void *ctx)
{
	struct ssh_stream *s = ctx;
	struct pollfd pfd;
	long long idle;
	int next = 0, rc;

	rc = settle(s);
	if (rc == 0 && s->rlen == s->roff)
		rc = drain_stderr(s);
	if (rc && rc != -EAGAIN)
		return rc;
	if (s->interval <= 0)
		return 0;
	idle = mono_ms() - s->last_rx_ms;
	/* one second of slack: libssh2 counts keepalive time in whole seconds */
	if (idle >= (long long)s->interval * 1000 * (s->count_max + 1) + 1000) {
		xr_error("ssh: Timeout, server %s not responding.", s->host);
		s->dead = true;
		return XR_ESSH;
	}
	if (s->pend || idle < (long long)s->interval * 1000)
		return 0;
	pfd.fd = s->sock;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
		return 0;
	rc = libssh2_keepalive_send(s->session, &next);
	if (rc && rc != LIBSSH2_ERROR_EAGAIN && rc != LIBSSH2_ERROR_BAD_USE)
		return io_failed(s, "keepalive", rc);
	return 0;
}

/*
 * Frees everything of the stream.  A last disconnect message is tried
 * without waiting; then socket I/O is cut off so that libssh2 cannot return
 * EAGAIN (and keep its memory) while freeing.
 */
static void ssh_free(struct ssh_stream *s)
{
	if (s->session && !s->dead)
		libssh2_session_disconnect(s->session, "closed");
	s->io_off = true;
	if (s->channel)
		libssh2_channel_free(s->channel);
	if (s->session)
		libssh2_session_free(s->session);
	if (s->sock >= 0)
		close(s->sock);
	if (s->ready_fd >= 0)
		close(s->ready_fd);
	free(s);
}

/* Like SSH_RETRY for the close path: waits on the socket until deadline. */
static int close_wait(struct ssh_stream *s, long long deadline)
{
	return wait_socket(s, deadline, XR_ETIMEOUT);
}

/*
 * Sends EOF, waits (bounded) for the remote command to finish and the
 * channel to close, frees everything.  Returns the remote exit status
 * (255 when it was killed by a signal or did not finish in time).
 */
static int ssh_close(void *ctx)
{
	struct ssh_stream *s = ctx;
	long long deadline = mono_ms() + (long long)s->close_wait_s * 1000;
	char scratch[16384], *sig = NULL;
	ssize_t n;
	int status = 255;

	if (s->dead) {
		ssh_free(s);
		return status;
	}
	while (settle(s) == -EAGAIN)
		if (close_wait(s, deadline))
			goto out;
	if (s->pend)
		goto out;
	while (libssh2_channel_send_eof(s->channel) == LIBSSH2_ERROR_EAGAIN)
		if (close_wait(s, deadline))
			goto out;
	for (;;) {
		n = libssh2_channel_read_stderr(s->channel, scratch, sizeof(scratch));
		if (n > 0) {
			emit_stderr(s, scratch, (size_t)n);
			continue;
		}
		n = libssh2_channel_read(s->channel, scratch, sizeof(scratch));
		if (n > 0)
			continue;
		if (n == 0 && libssh2_channel_eof(s->channel))
			break;
		if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
			goto out;
		if (close_wait(s, deadline))
			goto out;
	}
	while (libssh2_channel_wait_closed(s->channel) == LIBSSH2_ERROR_EAGAIN)
		if (close_wait(s, deadline))
			goto out;
	flush_errline(s);
	if (libssh2_channel_get_exit_signal(s->channel, &sig, NULL, NULL, NULL, NULL, NULL) == 0 &&
	    sig) {
		xr_error("ssh: %s: remote command killed by signal %s", s->host, sig);
		libssh2_free(s->session, sig);
		goto out;
	}
	status = libssh2_channel_get_exit_status(s->channel);
out:
	flush_errline(s);
	if (status == 255 && mono_ms() >= deadline)
		xr_warn("ssh: %s: remote command did not finish within %d s", s->host,
			s->close_wait_s);
	ssh_free(s);
	return status;
}

static const struct xr_stream_ops ssh_ops = {
	.read = ssh_read,
	.write = ssh_write,
	.pollfds = ssh_pollfds,
	.tick = ssh_tick,
	.close = ssh_close,
};

/* ------------------------------------------------------------------ */
/* connecting                                                          */

/*
 * Handshake, host key, authentication, exec channel.  Returns 0 or an
 * xr_err (messages printed).
 */
static int ssh_establish(struct ssh_stream *s, const struct xr_rsh *rsh, const char *user,
			 const char *host, int port, const char *cmd, long long deadline,
			 int tmo_err)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	char khpath[4096];
	int rc, err;

	err = expand_path(rsh->known_hosts ? rsh->known_hosts : "~/.ssh/known_hosts", khpath,
			  sizeof(khpath));
	if (err)
		return err;
	kh = libssh2_knownhost_init(s->session);
	if (!kh)
		return XR_ENOMEM;
	err = load_known_hosts(kh, khpath);
	if (err)
		goto out;
	prefer_known_types(s, kh, host, port == 22 ? -1 : port);

	SSH_RETRY(s, rc, libssh2_session_handshake(s->session, s->sock), deadline, tmo_err);
	if (rc == tmo_err) {
		xr_error("ssh: connect to host %s port %d: Connection timed out during banner "
			 "exchange", host, port);
		err = tmo_err;
		goto out;
	}
	if (rc) {
		xr_error("ssh: connect to host %s port %d: SSH handshake failed: %s", host, port,
			 ssh_errmsg(s->session));
		err = XR_ESSH;
		goto out;
	}
	err = check_hostkey(s, kh, khpath, host, port, rsh->hostkey);
	if (err)
		goto out;
	err = ssh_auth(s, rsh, user, deadline, tmo_err);
	if (err)
		goto out;

	for (;;) {
		s->channel = libssh2_channel_open_ex(s->session, "session", 7, SSH_WINDOW,
						     SSH_PACKET, NULL, 0);
		if (s->channel)
			break;
		if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN) {
			xr_error("ssh: %s: cannot open a channel: %s", s->host,
				 ssh_errmsg(s->session));
			err = XR_ESSH;
			goto out;
		}
		if ((err = wait_socket(s, deadline, tmo_err)) != 0) {
			xr_error("ssh: %s: opening a channel timed out", s->host);
			goto out;
		}
	}
	SSH_RETRY(s, rc,
		  libssh2_channel_process_startup(s->channel, "exec", 4, cmd,
						  (unsigned int)strlen(cmd)),
		  deadline, tmo_err);
	if (rc) {
		xr_error("ssh: %s: cannot run the remote command: %s", s->host,
			 rc == tmo_err ? "timed out" : ssh_errmsg(s->session));
		err = rc == tmo_err ? tmo_err : XR_ESSH;
		goto out;
	}
out:
	libssh2_knownhost_free(kh);
	return err;
}

int xr_ssh_open(const struct xr_rsh *rsh, const char *user, const char *host, const char *cmd,
		int contimeout, int io_timeout, struct xr_conn **c)
{
	struct ssh_stream *s;
	int port = rsh->port > 0 ? rsh->port : 22;
	long long deadline = -1;
	int tmo_err = XR_ECONNTIMEOUT, err;

	*c = NULL;
	if (contimeout > 0) {
		deadline = mono_ms() + (long long)contimeout * 1000;
	} else if (io_timeout > 0) {
		deadline = mono_ms() + (long long)io_timeout * 1000;
		tmo_err = XR_ETIMEOUT;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return XR_ENOMEM;
	s->sock = -1;
	/* libssh2 treats an interval of 1 as 2 */
	s->interval = rsh->keepalive_interval == 1 ? 2 : rsh->keepalive_interval;
	s->count_max = rsh->keepalive_count_max;
	s->close_wait_s = io_timeout > 0 ? io_timeout : SSH_CLOSE_WAIT_S;
	if (port == 22)
		snprintf(s->host, sizeof(s->host), "%s", host);
	else
		snprintf(s->host, sizeof(s->host), "[%s]:%d", host, port);
	s->ready_fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->ready_fd < 0) {
		err = XR_ENOMEM;
		goto fail;
	}
	err = tcp_connect(host, port, rsh->addr_family, deadline, tmo_err, &s->sock);
	if (err)
		goto fail;
	if (libssh2_init(0)) {
		xr_error("ssh: libssh2 initialisation failed");
		err = XR_ESSH;
		goto fail;
	}
	s->session = libssh2_session_init_ex(NULL, NULL, NULL, s);
	if (!s->session) {
		err = XR_ENOMEM;
		goto fail;
	}
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_RECV, (void *)ssh_recv_cb);
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_SEND, (void *)ssh_send_cb);
	libssh2_session_set_blocking(s->session, 0);
	s->last_rx_ms = mono_ms();
	err = ssh_establish(s, rsh, user, host, port, cmd, deadline, tmo_err);
	if (err)
		goto fail;
	if (s->interval > 0)
		libssh2_keepalive_config(s->session, 1, (unsigned int)s->interval);
	s->last_rx_ms = mono_ms();
	err = xr_conn_new(c, &ssh_ops, s, io_timeout);
	if (err) {
		*c = NULL;
		ssh_close(s);
	}
	return err;
fail:
	ssh_free(s);
	return err;
}

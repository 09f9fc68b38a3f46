/* remote.c - locations, the -e/--rsh command, and spawning the peer (local or remote shell). */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/log.h"
#include "xr/transport.h"
#include "ssh.h"

#define RSH_MAX_WORDS 256
#define CHILD_TERM_GRACE_MS 2000
#define CLOSE_WAIT_DEFAULT_S 30

/* ------------------------------------------------------------------ */
/* locations                                                           */

/* Copies n bytes of s into a new NUL-terminated string; returns it or NULL. */
static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void xr_location_free(struct xr_location *loc)
{
	if (!loc)
		return;
	free(loc->user);
	free(loc->host);
	free(loc->path);
	loc->user = loc->host = loc->path = NULL;
	loc->remote = false;
}

/*
 * Finds the host part of arg as rsync's parse_hostspec() does.  Returns true
 * for a remote spec and sets the user/host spans and the path start.
 */
static bool split_hostspec(const char *arg, const char **user, size_t *userlen,
			   const char **host, size_t *hostlen, const char **path)
{
	const char *s, *host_start = arg;
	size_t hlen = 0;
	bool bracket = false;

	*user = NULL;
	*userlen = 0;
	for (s = arg;; s++) {
		if (*s == '\0' || *s == '/')
			return false;
		if (*s == ':') {
			if (!bracket)
				hlen = (size_t)(s - host_start);
			break;
		}
		if (*s == '@') {
			*user = arg;
			*userlen = (size_t)(s - arg);
			host_start = s + 1;
		} else if (*s == '[') {
			if (s != host_start)
				return false;
			host_start = ++s;
			while (*s && *s != ']' && *s != '/')
				s++;
			hlen = (size_t)(s - host_start);
			if (*s != ']' || (s[1] && s[1] != '/' && s[1] != ':') || !hlen)
				return false;
			bracket = true;
		}
	}
	*host = host_start;
	*hostlen = hlen;
	*path = s + 1;
	return true;
}

int xr_location_parse(const char *arg, struct xr_location *loc)
{
	const char *user, *host, *path;
	size_t userlen, hostlen;

	memset(loc, 0, sizeof(*loc));
	if (strncasecmp(arg, "rsync://", 8) == 0) {
		xr_error("%s: rsync daemon locations are not supported (use HOST:PATH over ssh)",
			 arg);
		return XR_EUNSUPPORTED;
	}
	if (!split_hostspec(arg, &user, &userlen, &host, &hostlen, &path)) {
		loc->path = strdup(arg[0] ? arg : ".");
		return loc->path ? 0 : XR_ENOMEM;
	}
	if (*path == ':') {
		xr_error("%s: rsync daemon locations (HOST::MODULE) are not supported", arg);
		return XR_EUNSUPPORTED;
	}
	if (hostlen == 0) {
		xr_error("%s: empty host name", arg);
		return XR_ESYNTAX;
	}
	if (user && userlen == 0) {
		xr_error("%s: empty user name", arg);
		return XR_ESYNTAX;
	}
	loc->remote = true;
	loc->host = dup_n(host, hostlen);
	loc->path = strdup(*path ? path : ".");
	if (user)
		loc->user = dup_n(user, userlen);
	if (!loc->host || !loc->path || (user && !loc->user)) {
		xr_location_free(loc);
		return XR_ENOMEM;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* -e / --rsh                                                          */

void xr_rsh_free(struct xr_rsh *r)
{
	int i;

	if (!r)
		return;
	for (i = 0; r->argv && i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
	for (i = 0; r->identities && i < r->nidentities; i++)
		free(r->identities[i]);
	free(r->identities);
	free(r->user);
	free(r->known_hosts);
	memset(r, 0, sizeof(*r));
}

/*
 * Splits cmd into words exactly as rsync's do_cmd(): words are separated by
 * spaces, '...' and "..." quote (a doubled quote character inside quotes is
 * one literal quote), backslashes are not special.  Returns 0, XR_ESYNTAX
 * (unbalanced quote, too many words) or XR_ENOMEM.
 */
static int split_words(const char *cmd, struct xr_rsh *r)
{
	size_t n = strlen(cmd);
	char *buf = malloc(n + 1), *t;
	const char *f;
	char quote = '\0';
	int err = 0;

	r->argv = calloc(RSH_MAX_WORDS + 1, sizeof(char *));
	if (!buf || !r->argv) {
		err = XR_ENOMEM;
		goto out;
	}
	for (f = cmd; *f; f++) {
		if (*f == ' ')
			continue;
		if (r->argc >= RSH_MAX_WORDS) {
			xr_error("-e: too many words in remote-shell command");
			err = XR_ESYNTAX;
			goto out;
		}
		t = buf;
		while (*f != ' ' || quote) {
			if (*f == '\0') {
				if (quote) {
					xr_error("Missing trailing-%c in remote-shell command.", quote);
					err = XR_ESYNTAX;
					goto out;
				}
				f--;
				break;
			}
			if (*f == '\'' || *f == '"') {
				if (!quote) {
					quote = *f++;
					continue;
				}
				if (*f == quote && *++f != quote) {
					quote = '\0';
					continue;
				}
			}
			*t++ = *f++;
		}
		r->argv[r->argc] = dup_n(buf, (size_t)(t - buf));
		if (!r->argv[r->argc]) {
			err = XR_ENOMEM;
			goto out;
		}
		r->argc++;
	}
out:
	free(buf);
	return err;
}

/* Parses a non-negative number of seconds with an optional s/m/h unit; -1 if bad. */
static int parse_seconds(const char *v)
{
	char *end;
	long n;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || n > 86400 * 365)
		return -1;
	if (*end == 's' || *end == 'S')
		end++;
	else if (*end == 'm' || *end == 'M')
		n *= 60, end++;
	else if (*end == 'h' || *end == 'H')
		n *= 3600, end++;
	return *end ? -1 : (int)n;
}

/* Parses a TCP port 1..65535; returns it or -1. */
static int parse_port(const char *v)
{
	char *end;
	long n;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	return (errno || *end || n < 1 || n > 65535) ? -1 : (int)n;
}

/* Parses an ssh yes/no value: 1, 0, or -1 when it is neither. */
static int parse_yesno(const char *v)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true"))
		return 1;
	if (!strcasecmp(v, "no") || !strcasecmp(v, "false"))
		return 0;
	return -1;
}

/* Replaces *slot with a copy of v; returns 0 or XR_ENOMEM. */
static int set_str(char **slot, const char *v)
{
	char *p = strdup(v);

	if (!p)
		return XR_ENOMEM;
	free(*slot);
	*slot = p;
	return 0;
}

/* Appends an identity file; returns 0 or XR_ENOMEM. */
static int add_identity(struct xr_rsh *r, const char *v)
{
	char **n = realloc(r->identities, (size_t)(r->nidentities + 2) * sizeof(char *));

	if (!n)
		return XR_ENOMEM;
	r->identities = n;
	n[r->nidentities] = strdup(v);
	if (!n[r->nidentities])
		return XR_ENOMEM;
	n[++r->nidentities] = NULL;
	return 0;
}

/* Prints the "not supported by the built-in transport" message; returns XR_EUNSUPPORTED. */
static int unsupported(const char *what)
{
	xr_error("-e: ssh option '%s' is not supported by the built-in transport; "
		 "use a wrapper program", what);
	return XR_EUNSUPPORTED;
}

/* LogLevel values OpenSSH knows. */
static bool is_loglevel(const char *v)
{
	static const char *const levels[] = {"QUIET", "FATAL", "ERROR", "INFO", "VERBOSE",
					     "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3"};
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (!strcasecmp(v, levels[i]))
			return true;
	return false;
}

/* Options that only switch off what we never do; value must be the given one. */
static const struct {
	const char *key;
	const char *value;
} harmless_opts[] = {
	{"PasswordAuthentication", "no"},
	{"KbdInteractiveAuthentication", "no"},
	{"ChallengeResponseAuthentication", "no"},
	{"PubkeyAuthentication", "yes"},
	{"ForwardAgent", "no"},
	{"ForwardX11", "no"},
	{"RequestTTY", "no"},
	{"Compression", "no"},
};

/*
 * Applies one "-o" argument ("Key=Value", "Key Value", "Key = Value").
 * Returns 0, XR_ESYNTAX (bad value), XR_EUNSUPPORTED or XR_ENOMEM.
 */
static int apply_o(struct xr_rsh *r, const char *arg)
{
	char key[64], val[4096], shown[4200];
	const char *p = arg, *v;
	size_t klen = 0, vlen;
	int n, err = 0;
	size_t i;

	snprintf(shown, sizeof(shown), "-o %s", arg);
	while (*p == ' ' || *p == '\t')
		p++;
	while ((p[klen] >= 'A' && p[klen] <= 'Z') || (p[klen] >= 'a' && p[klen] <= 'z') ||
	       (p[klen] >= '0' && p[klen] <= '9'))
		klen++;
	if (klen == 0 || klen >= sizeof(key))
		return unsupported(shown);
	memcpy(key, p, klen);
	key[klen] = '\0';
	v = p + klen;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '=')
		v++;
	while (*v == ' ' || *v == '\t')
		v++;
	vlen = strlen(v);
	while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
		v++, vlen -= 2;
	if (vlen == 0 || vlen >= sizeof(val)) {
		xr_error("-e: ssh option '%s': missing or too long value", shown);
		return XR_ESYNTAX;
	}
	memcpy(val, v, vlen);
	val[vlen] = '\0';

	if (!strcasecmp(key, "ConnectTimeout")) {
		if ((n = parse_seconds(val)) < 0)
			goto bad;
		r->connect_timeout = n;
	} else if (!strcasecmp(key, "Port")) {
		if ((n = parse_port(val)) < 0)
			goto bad;
		r->port = n;
	} else if (!strcasecmp(key, "User")) {
		err = set_str(&r->user, val);
	} else if (!strcasecmp(key, "IdentityFile")) {
		err = add_identity(r, val);
	} else if (!strcasecmp(key, "StrictHostKeyChecking")) {
		if (!strcasecmp(val, "yes") || !strcasecmp(val, "ask"))
			r->hostkey = XR_HOSTKEY_YES;
		else if (!strcasecmp(val, "accept-new"))
			r->hostkey = XR_HOSTKEY_ACCEPT_NEW;
		else if (!strcasecmp(val, "no") || !strcasecmp(val, "off"))
			r->hostkey = XR_HOSTKEY_NO;
		else
			goto bad;
	} else if (!strcasecmp(key, "UserKnownHostsFile")) {
		if (strpbrk(val, " \t"))
			return unsupported(shown);
		err = set_str(&r->known_hosts, val);
	} else if (!strcasecmp(key, "BatchMode")) {
		if ((n = parse_yesno(val)) < 0)
			goto bad;
		r->batch_mode = n;
	} else if (!strcasecmp(key, "ServerAliveInterval")) {
		if ((n = parse_seconds(val)) < 0)
			goto bad;
		r->keepalive_interval = n;
	} else if (!strcasecmp(key, "ServerAliveCountMax")) {
		if ((n = parse_seconds(val)) < 0 || strpbrk(val, "smhSMH"))
			goto bad;
		r->keepalive_count_max = n;
	} else if (!strcasecmp(key, "LogLevel")) {
		if (!is_loglevel(val))
			goto bad;
	} else if (!strcasecmp(key, "AddressFamily")) {
		if (!strcasecmp(val, "any"))
			r->addr_family = 0;
		else if (!strcasecmp(val, "inet"))
			r->addr_family = AF_INET;
		else if (!strcasecmp(val, "inet6"))
			r->addr_family = AF_INET6;
		else
			goto bad;
	} else {
		for (i = 0; i < sizeof(harmless_opts) / sizeof(harmless_opts[0]); i++)
			if (!strcasecmp(key, harmless_opts[i].key))
				break;
		if (i == sizeof(harmless_opts) / sizeof(harmless_opts[0]) ||
		    parse_yesno(val) != parse_yesno(harmless_opts[i].value))
			return unsupported(shown);
	}
	return err;
bad:
	xr_error("-e: ssh option '%s': bad value '%s'", shown, val);
	return XR_ESYNTAX;
}

/*
 * Interprets the words after "ssh" for the built-in transport (OpenSSH's
 * getopt conventions: bundled flags, "-p22" or "-p 22").  Returns 0,
 * XR_ESYNTAX, XR_EUNSUPPORTED or XR_ENOMEM.
 */
static int parse_ssh_args(struct xr_rsh *r)
{
	char shown[64];
	const char *w, *p, *val;
	int i, n, err;

	for (i = 1; i < r->argc; i++) {
		w = r->argv[i];
		if (w[0] != '-' || w[1] == '\0' || !strcmp(w, "--")) {
			xr_error("-e: ssh argument '%s' is not supported by the built-in transport; "
				 "use a wrapper program", w);
			return XR_EUNSUPPORTED;
		}
		for (p = w + 1; *p; p++) {
			switch (*p) {
			case 'q':
			case 'x':
			case 'T':
			case 'a':
				continue;
			case '4':
				r->addr_family = AF_INET;
				continue;
			case '6':
				r->addr_family = AF_INET6;
				continue;
			case 'p':
			case 'i':
			case 'l':
			case 'o':
				break;
			default:
				snprintf(shown, sizeof(shown), "-%c", *p);
				return unsupported(shown);
			}
			val = p[1] ? p + 1 : (i + 1 < r->argc ? r->argv[++i] : NULL);
			if (!val) {
				xr_error("-e: ssh option '-%c' requires an argument", *p);
				return XR_ESYNTAX;
			}
			err = 0;
			if (*p == 'p') {
				if ((n = parse_port(val)) < 0) {
					xr_error("-e: ssh option '-p': bad port '%s'", val);
					return XR_ESYNTAX;
				}
				r->port = n;
			} else if (*p == 'i') {
				err = add_identity(r, val);
			} else if (*p == 'l') {
				err = set_str(&r->user, val);
			} else {
				err = apply_o(r, val);
			}
			if (err)
				return err;
			break;
		}
	}
	return 0;
}

int xr_rsh_parse(const char *rsh, struct xr_rsh *out)
{
	const char *base;
	int err;

	memset(out, 0, sizeof(*out));
	out->hostkey = XR_HOSTKEY_YES;
	out->keepalive_interval = 15;
	out->keepalive_count_max = 3;
	err = split_words(rsh && *rsh ? rsh : "ssh", out);
	if (!err && out->argc == 0) {
		free(out->argv);
		out->argv = NULL;
		err = split_words("ssh", out);
	}
	if (err)
		goto out;
	/* argc >= 1 here, so argv[0] is set (the analyzer loses argc across split_words) */
	base = strrchr(out->argv[0], '/'); /* NOLINT(clang-analyzer-core.NonNullParamChecker) */
	base = base ? base + 1 : out->argv[0];
	if (strcmp(base, "ssh") == 0) {
		out->builtin = true;
		err = parse_ssh_args(out);
	}
out:
	if (err)
		xr_rsh_free(out);
	return err;
}

/* ------------------------------------------------------------------ */
/* the remote command string                                          */

/* True when c needs no quoting for a POSIX shell. */
static bool shell_safe(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("_@%+=:,./-", c) != NULL;
}

/*
 * Joins words with spaces, single-quoting each word after the first that
 * needs it for the remote shell (the first, --rsync-path, may be a shell
 * snippet such as "cd /x && xroad-replicate", as rsync allows).  Returns a
 * new string or NULL (out of memory).
 */
static char *join_quoted(char *const words[])
{
	size_t cap = 1, len = 0, i;
	const char *w;
	char *s;
	bool safe;

	for (i = 0; words[i]; i++)
		cap += strlen(words[i]) * 4 + 3;
	s = malloc(cap);
	if (!s)
		return NULL;
	for (i = 0; words[i]; i++) {
		if (i)
			s[len++] = ' ';
		/* the program (--rsync-path) goes to the remote shell as written, like rsync */
		safe = i == 0 || words[i][0] != '\0';
		for (w = words[i]; *w && safe && i > 0; w++)
			safe = shell_safe(*w);
		if (safe) {
			memcpy(s + len, words[i], strlen(words[i]));
			len += strlen(words[i]);
			continue;
		}
		s[len++] = '\'';
		for (w = words[i]; *w; w++) {
			if (*w == '\'') {
				memcpy(s + len, "'\\''", 4);
				len += 4;
			} else {
				s[len++] = *w;
			}
		}
		s[len++] = '\'';
	}
	s[len] = '\0';
	return s;
}

/* ------------------------------------------------------------------ */
/* a child process on a socketpair                                     */

struct child_stream {
	int fd;			/* our end of the socketpair */
	pid_t pid;
	int close_wait_s;	/* how long close() waits for the child */
	const char *what;	/* "remote shell" / "local serve", for messages */
};

/* Returns CLOCK_MONOTONIC in milliseconds. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads from the child; > 0, 0 at EOF, -EAGAIN, or XR_ESOCKET. */
static ssize_t child_read(void *ctx, void *buf, size_t len)
{
	struct child_stream *cs = ctx;
	ssize_t n = read(cs->fd, buf, len);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -EAGAIN;
	if (errno == ECONNRESET)
		return 0;
	xr_error("%s: read: %s", cs->what, strerror(errno));
	return XR_ESOCKET;
}

/* Writes to the child; > 0, -EAGAIN, or XR_ESOCKET (the child is gone). */
static ssize_t child_write(void *ctx, const void *buf, size_t len)
{
	struct child_stream *cs = ctx;
	ssize_t n = send(cs->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -EAGAIN;
	xr_error("%s: write: %s", cs->what, strerror(errno));
	return XR_ESOCKET;
}

/* One pollfd on the socket for the wanted directions; returns 1. */
static int child_pollfds(void *ctx, bool want_read, bool want_write, struct pollfd *pfd, int max)
{
	struct child_stream *cs = ctx;

	if (max < 1)
		return 0;
	pfd->fd = cs->fd;
	pfd->events = (short)((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0));
	pfd->revents = 0;
	return 1;
}

/* Nothing periodic to do for a child process. */
static int child_tick(void *ctx)
{
	(void)ctx;
	return 0;
}

/* Turns a wait status into an exit code (128 + signal when killed). */
static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/*
 * Waits for pid until deadline (ms, monotonic); returns true and *status
 * when it was reaped.
 */
static bool reap_until(pid_t pid, long long deadline, int *status)
{
	struct timespec nap = {0, 10 * 1000000};
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR) {
			*status = 255 << 8;
			return true;
		}
		if (now_ms() >= deadline)
			return false;
		nanosleep(&nap, NULL);
	}
}

/*
 * Reaps the child: waits up to wait_s seconds, then SIGTERM, then SIGKILL.
 * Returns its exit code (128 + signal if killed).
 */
static int reap_child(pid_t pid, int wait_s, const char *what)
{
	int status = 0;

	if (reap_until(pid, now_ms() + (long long)wait_s * 1000, &status))
		return status_code(status);
	xr_warn("%s (pid %ld) did not exit after %d s; terminating it", what, (long)pid, wait_s);
	kill(pid, SIGTERM);
	if (reap_until(pid, now_ms() + CHILD_TERM_GRACE_MS, &status))
		return status_code(status);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status_code(status);
}

/*
 * Half-closes our side, drains what the child still sends (bounded), closes
 * the socket and reaps the child; returns the child's exit code.
 */
/* At most this much of the peer's output is read and dropped while closing. */
#define CLOSE_DRAIN_MAX (1u << 20)

static int child_close(void *ctx)
{
	struct child_stream *cs = ctx;
	long long deadline = now_ms() + (long long)cs->close_wait_s * 1000;
	struct pollfd pfd;
	char scratch[4096];
	ssize_t n;
	size_t drained = 0;
	int code, left;

	shutdown(cs->fd, SHUT_WR);
	for (;;) {
		n = read(cs->fd, scratch, sizeof(scratch));
		/* drain what a well-behaved peer still says, but not an endless stream */
		if (n > 0 && (drained += (size_t)n) < CLOSE_DRAIN_MAX)
			continue;
		if (n > 0)
			break;
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			break;
		left = (int)(deadline - now_ms());
		if (left <= 0)
			break;
		pfd.fd = cs->fd;
		pfd.events = POLLIN;
		poll(&pfd, 1, left);
	}
	close(cs->fd);
	left = (int)((deadline - now_ms()) / 1000);
	code = reap_child(cs->pid, left > 0 ? left : 1, cs->what);
	free(cs);
	return code;
}

static const struct xr_stream_ops child_ops = {
	.read = child_read,
	.write = child_write,
	.pollfds = child_pollfds,
	.tick = child_tick,
	.close = child_close,
};

/*
 * Forks and execs path (searched in PATH when search) with argv, its stdin
 * and stdout on one end of a socketpair and stderr inherited.  Returns 0
 * with the pid and our (non-blocking, close-on-exec) end, or XR_ESTART.
 */
static int spawn(const char *path, char *const argv[], bool search, pid_t *pidp, int *fdp)
{
	int sv[2] = {-1, -1}, ep[2] = {-1, -1}, fd, e = 0, err = 0;
	sigset_t all;
	ssize_t n;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(ep, O_CLOEXEC) < 0) {
		xr_error("%s: socketpair/pipe: %s", path, strerror(errno));
		err = XR_ESTART;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		xr_error("%s: fork: %s", path, strerror(errno));
		err = XR_ESTART;
		goto out;
	}
	if (pid == 0) {
		/* child: only async-signal-safe calls from here on */
		fd = sv[1] > 2 ? sv[1] : fcntl(sv[1], F_DUPFD_CLOEXEC, 3);
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
			goto child_fail;
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (search)
			execvp(path, argv);
		else
			execv(path, argv);
child_fail:
		e = errno;
		if (write(ep[1], &e, sizeof(e)) < 0) {
			/* nothing more we can do */
		}
		_exit(127);
	}
	close(sv[1]);
	sv[1] = -1;
	close(ep[1]);
	ep[1] = -1;
	do
		n = read(ep[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(e)) {
		xr_error("failed to exec %s: %s", path, strerror(e));
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		err = XR_ESTART;
		goto out;
	}
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	*pidp = pid;
	*fdp = sv[0];
	sv[0] = -1;
out:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (ep[0] >= 0)
		close(ep[0]);
	if (ep[1] >= 0)
		close(ep[1]);
	return err;
}

/* Spawns and wraps the child in a connection; returns 0, XR_ESTART or XR_ENOMEM. */
static int spawn_conn(const char *path, char *const argv[], bool search, const char *what,
		      int io_timeout, struct xr_conn **c)
{
	struct child_stream *cs = calloc(1, sizeof(*cs));
	int err;

	if (!cs)
		return XR_ENOMEM;
	err = spawn(path, argv, search, &cs->pid, &cs->fd);
	if (err) {
		free(cs);
		return err;
	}
	cs->what = what;
	cs->close_wait_s = io_timeout > 0 ? io_timeout : CLOSE_WAIT_DEFAULT_S;
	err = xr_conn_new(c, &child_ops, cs, io_timeout);
	if (err) {
		child_close(cs);
		*c = NULL;
	}
	return err;
}

int xr_transport_local(char *const serve_argv[], int io_timeout, struct xr_conn **c)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	/*
	 * the resolved path rather than /proc/self/exe itself: under valgrind (or
	 * any loader) the latter names the loader, the former our program
	 */
	if (n <= 0 || (size_t)n >= sizeof(self) - 1)
		return spawn_conn("/proc/self/exe", serve_argv, false, "local serve", io_timeout, c);
	self[n] = '\0';
	return spawn_conn(self, serve_argv, false, "local serve", io_timeout, c);
}

/* The running user's login name (static storage), or NULL. */
static const char *running_user(void)
{
	struct passwd *pw = getpwuid(geteuid());

	return pw ? pw->pw_name : getenv("USER");
}

int xr_transport_remote(const struct xr_rsh *rsh, const struct xr_location *loc,
			char *const remote_cmd[], int contimeout, int io_timeout,
			struct xr_conn **c)
{
	char **argv = NULL, *cmd = NULL;
	const char *user;
	int i, n = 0, tmo, err;

	*c = NULL;
	if (!loc->remote || !loc->host) {
		xr_error("internal: remote transport for a local path");
		return XR_ESYNTAX;
	}
	cmd = join_quoted(remote_cmd);
	if (!cmd)
		return XR_ENOMEM;
	if (rsh->builtin) {
		user = loc->user ? loc->user : rsh->user ? rsh->user : running_user();
		if (!user) {
			xr_error("ssh: cannot determine the user name for uid %ld", (long)geteuid());
			err = XR_ESSH;
			goto out;
		}
		tmo = contimeout;
		if (rsh->connect_timeout > 0 && (tmo == 0 || rsh->connect_timeout < tmo))
			tmo = rsh->connect_timeout;
		err = xr_ssh_open(rsh, user, loc->host, cmd, tmo, io_timeout, c);
		goto out;
	}
	argv = calloc((size_t)rsh->argc + 5, sizeof(char *));
	if (!argv) {
		err = XR_ENOMEM;
		goto out;
	}
	for (i = 0; i < rsh->argc; i++)
		argv[n++] = rsh->argv[i];
	if (loc->user) {
		argv[n++] = (char *)"-l";
		argv[n++] = loc->user;
	}
	argv[n++] = loc->host;
	argv[n++] = cmd;
	argv[n] = NULL;
	err = spawn_conn(argv[0], argv, true, "remote shell", io_timeout, c);
out:
	free(argv);
	free(cmd);
	return err;
}

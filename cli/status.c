/* status.c - the per-destination state file, the status command and the health responder. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xr/conn.h"
#include "xr/err.h"
#include "xr/hooks.h"
#include "xr/log.h"
#include "xr/session.h"
#include "xr/status.h"

#define STATE_SYSTEM_DIR "/var/lib/xroad-replicate"
#define STATE_SUFFIX ".state"
#define STATE_MAX_SIZE 65536
#define HEALTH_DEFAULT_MAX_AGE 180
#define HEALTH_REQ_MAX 4096

/* Epoch seconds now. */
static int64_t wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* Seconds on the monotonic clock. */
static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void xr_status_iso(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	buf[0] = '\0';
	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		return;
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void xr_status_init(struct xr_status *st)
{
	memset(st, 0, sizeof(*st));
	st->lag_ms = -1;
}

/* Copies src into a fixed field, newlines made spaces, truncated. */
static void set_field(char *dst, size_t cap, const char *src)
{
	size_t i;

	for (i = 0; src && src[i] && i + 1 < cap; i++) {
		dst[i] = src[i];
		if (dst[i] == '\n' || dst[i] == '\r')
			dst[i] = ' ';
	}
	dst[i] = '\0';
}

/* True when arg names a remote location ("HOST:PATH", ':' before any '/'). */
static bool is_remote(const char *arg)
{
	const char *colon = strchr(arg, ':'), *slash = strchr(arg, '/');

	return colon && (!slash || colon < slash);
}

/* A local dest made absolute (cwd prefixed); remote ones unchanged.  0 or XR_ELIMIT. */
static int absolute_dest(const char *dest, char *buf, size_t cap)
{
	char cwd[PATH_MAX];
	int n;

	if (is_remote(dest) || dest[0] == '/') {
		n = snprintf(buf, cap, "%s", dest);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return XR_ELIMIT;
		while (dest[0] == '.' && dest[1] == '/')
			dest += 2;
		n = snprintf(buf, cap, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "",
			     strcmp(dest, ".") ? dest : "");
	}
	return n < 0 || (size_t)n >= cap ? XR_ELIMIT : 0;
}

int xr_status_name(const char *dest, char *buf, size_t cap)
{
	char abs[PATH_MAX + 256];
	size_t o = 0;
	const char *p;
	char prev = '-';
	int rc = absolute_dest(dest, abs, sizeof(abs));

	if (rc < 0)
		return rc;
	for (p = abs; *p; p++) {
		char c = *p;

		if (c == '/')
			c = '-';
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			c = '_';
		if ((c == '-' || c == '_') && (prev == '-' || prev == '_')) {
			if (c == '_' && o > 0 && buf[o - 1] == '-')
				buf[o - 1] = '_';
			continue;
		}
		if (o + 1 >= cap)
			return XR_ELIMIT;
		buf[o++] = c;
		prev = c;
	}
	while (o > 0 && (buf[o - 1] == '-' || buf[o - 1] == '_'))
		o--;
	if (o == 0 || (o == 1 && buf[0] == '.')) {
		if (cap < 5)
			return XR_ELIMIT;
		strcpy(buf, "root");
		return 0;
	}
	if (buf[0] == '.')
		buf[0] = '_';	/* never a hidden file (the temp files are) */
	buf[o] = '\0';
	return 0;
}

/* mkdir -p path with mode 0755; 0 or -1 (errno set). */
static int mkdir_parents(const char *path)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* The per-user state directory ($XDG_STATE_HOME or ~/.local/state, + /xroad-replicate). */
static int user_state_dir(char *buf, size_t cap)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, cap, "%s/xroad-replicate", xdg);
	else if (home && home[0])
		n = snprintf(buf, cap, "%s/.local/state/xroad-replicate", home);
	else
		n = snprintf(buf, cap, "/tmp/xroad-replicate-%u", (unsigned)getuid());
	return n < 0 || (size_t)n >= cap ? XR_ELIMIT : 0;
}

/* True if path is a directory we may write (or it is absent and its parent is writable). */
static bool system_dir_writable(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0)
		return S_ISDIR(st.st_mode) && access(path, W_OK | X_OK) == 0;
	return errno == ENOENT && access("/var/lib", W_OK | X_OK) == 0;
}

int xr_status_dir(const char *opt, bool for_write, char *buf, size_t cap)
{
	struct stat st;
	int rc = 0, n;

	if (opt && opt[0]) {
		n = snprintf(buf, cap, "%s", opt);
		if (n < 0 || (size_t)n >= cap)
			return XR_ELIMIT;
	} else if (system_dir_writable(STATE_SYSTEM_DIR)) {
		snprintf(buf, cap, "%s", STATE_SYSTEM_DIR);
	} else {
		rc = user_state_dir(buf, cap);
		if (rc < 0)
			return rc;
		/* a reader of the system's state (monitoring user) */
		if (!for_write && stat(STATE_SYSTEM_DIR, &st) == 0 && S_ISDIR(st.st_mode) &&
		    stat(buf, &st) != 0)
			snprintf(buf, cap, "%s", STATE_SYSTEM_DIR);
	}
	if (for_write && mkdir_parents(buf) < 0) {
		xr_error("%s: create state directory: %s", buf, strerror(errno));
		return XR_EFILEIO;
	}
	return 0;
}

int xr_status_format(const struct xr_status *st_in, char *buf, size_t cap)
{
	char la[32], ls[32];
	struct xr_status clean = *st_in, *st = &clean;
	int n;

	/* one value per line, whatever the fields hold */
	set_field(clean.dest, sizeof(clean.dest), st_in->dest);
	set_field(clean.peer, sizeof(clean.peer), st_in->peer);
	set_field(clean.mode, sizeof(clean.mode), st_in->mode);
	set_field(clean.last_error, sizeof(clean.last_error), st_in->last_error);
	set_field(clean.hook_error, sizeof(clean.hook_error), st_in->hook_error);
	xr_status_iso(st->last_attempt, la);
	xr_status_iso(st->last_success, ls);
	n = snprintf(buf, cap,
		     "version=1\ndest=%s\npeer=%s\nmode=%s\npid=%ld\nsession=%s\n"
		     "last_attempt=%" PRId64 "\nlast_attempt_iso=%s\n"
		     "last_success=%" PRId64 "\nlast_success_iso=%s\n"
		     "last_exit=%d\nlast_error=%s\nlag_ms=%" PRId64 "\n"
		     "files=%" PRIu64 "\nbytes=%" PRIu64 "\nwire_bytes=%" PRIu64 "\n"
		     "total_files=%" PRIu64 "\ntotal_bytes=%" PRIu64 "\n"
		     "changesets=%" PRIu64 "\nfailures=%" PRIu64 "\n"
		     "hook_time=%" PRId64 "\nhook_error=%s\n",
		     st->dest, st->peer, st->mode, st->pid, st->session_up ? "up" : "down",
		     st->last_attempt, la, st->last_success, ls, st->last_exit, st->last_error,
		     st->lag_ms, st->files, st->bytes, st->wire_bytes, st->total_files,
		     st->total_bytes, st->changesets, st->failures, st->hook_time,
		     st->hook_error);
	if (n < 0 || (size_t)n >= cap)
		return XR_ELIMIT;
	return n;
}

/* Parses a signed decimal; false when v is not one. */
static bool parse_i64(const char *v, int64_t *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return false;
	*out = (int64_t)x;
	return true;
}

/* Parses an unsigned decimal; false when v is not one. */
static bool parse_u64(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	if (v[0] == '-')
		return false;
	x = strtoull(v, &end, 10);
	if (errno || end == v || *end)
		return false;
	*out = (uint64_t)x;
	return true;
}

/* Applies one key=value line to st; false when a known key has a bad value. */
static bool apply_kv(struct xr_status *st, const char *k, const char *v, bool *versioned)
{
	int64_t i = 0;

	if (!strcmp(k, "version")) {
		*versioned = parse_i64(v, &i) && i >= 1;
		return *versioned;
	}
	if (!strcmp(k, "dest"))
		set_field(st->dest, sizeof(st->dest), v);
	else if (!strcmp(k, "peer"))
		set_field(st->peer, sizeof(st->peer), v);
	else if (!strcmp(k, "mode"))
		set_field(st->mode, sizeof(st->mode), v);
	else if (!strcmp(k, "last_error"))
		set_field(st->last_error, sizeof(st->last_error), v);
	else if (!strcmp(k, "hook_error"))
		set_field(st->hook_error, sizeof(st->hook_error), v);
	else if (!strcmp(k, "session"))
		st->session_up = !strcmp(v, "up");
	else if (!strcmp(k, "pid")) {
		if (!parse_i64(v, &i))
			return false;
		st->pid = (long)i;
	} else if (!strcmp(k, "last_exit")) {
		if (!parse_i64(v, &i) || i < 0 || i > 255)
			return false;
		st->last_exit = (int)i;
	} else if (!strcmp(k, "last_attempt"))
		return parse_i64(v, &st->last_attempt);
	else if (!strcmp(k, "last_success"))
		return parse_i64(v, &st->last_success);
	else if (!strcmp(k, "lag_ms"))
		return parse_i64(v, &st->lag_ms);
	else if (!strcmp(k, "hook_time"))
		return parse_i64(v, &st->hook_time);
	else if (!strcmp(k, "files"))
		return parse_u64(v, &st->files);
	else if (!strcmp(k, "bytes"))
		return parse_u64(v, &st->bytes);
	else if (!strcmp(k, "wire_bytes"))
		return parse_u64(v, &st->wire_bytes);
	else if (!strcmp(k, "total_files"))
		return parse_u64(v, &st->total_files);
	else if (!strcmp(k, "total_bytes"))
		return parse_u64(v, &st->total_bytes);
	else if (!strcmp(k, "changesets"))
		return parse_u64(v, &st->changesets);
	else if (!strcmp(k, "failures"))
		return parse_u64(v, &st->failures);
	return true;
}

int xr_status_parse(const char *text, struct xr_status *st)
{
	char line[XR_STATUS_STR + 64];
	const char *p = text, *nl;
	bool versioned = false;

	xr_status_init(st);
	while (*p) {
		size_t len;
		char *eq;

		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl ? nl + 1 : p + strlen(p);
		eq = strchr(line, '=');
		if (eq == NULL) {
			if (line[0])
				return XR_EPROTO;
			continue;
		}
		*eq = '\0';
		if (!apply_kv(st, line, eq + 1, &versioned))
			return XR_EPROTO;
	}
	return versioned ? 0 : XR_EPROTO;
}

/* Writes all of buf to fd; 0 or -1 (errno set). */
static int write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

int xr_status_save(const char *dir, const char *name, const struct xr_status *st)
{
	char text[8192], tmp[300], final[300];
	const char *op = "open";
	int dfd, fd = -1, len, rc = XR_EFILEIO;

	len = xr_status_format(st, text, sizeof(text));
	if (len < 0)
		return len;
	snprintf(tmp, sizeof(tmp), ".%.200s%s.%ld.tmp", name, STATE_SUFFIX, (long)getpid());
	snprintf(final, sizeof(final), "%.200s%s", name, STATE_SUFFIX);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		xr_error("%s: open state directory: %s", dir, strerror(errno));
		return XR_EFILEIO;
	}
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		goto fail;
	op = "write";
	if (write_all(fd, text, (size_t)len) < 0)
		goto fail;
	op = "fsync";
	if (fsync(fd) < 0)
		goto fail;
	op = "close";
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	op = "rename into place";
	if (renameat(dfd, tmp, dfd, final) < 0)
		goto fail;
	fsync(dfd);
	rc = 0;
	goto out;
fail:
	xr_error("%s/%s: %s: %s", dir, final, op, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlinkat(dfd, tmp, 0);
out:
	close(dfd);
	return rc;
}

/* Reads a state file below dfd into st; as xr_status_load. */
static int load_at(int dfd, const char *file, struct xr_status *st)
{
	char *text;
	size_t n = 0;
	ssize_t r;
	int fd, rc;

	fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 1 : XR_EFILEIO;
	text = malloc(STATE_MAX_SIZE + 1);
	if (text == NULL) {
		close(fd);
		return XR_ENOMEM;
	}
	while (n < STATE_MAX_SIZE) {
		r = read(fd, text + n, STATE_MAX_SIZE - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(text);
			close(fd);
			return XR_EFILEIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	text[n] = '\0';
	rc = xr_status_parse(text, st);
	free(text);
	return rc;
}

int xr_status_load(const char *dir, const char *name, struct xr_status *st)
{
	char file[300];
	int dfd, rc;

	snprintf(file, sizeof(file), "%.200s%s", name, STATE_SUFFIX);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 1 : XR_EFILEIO;
	rc = load_at(dfd, file, st);
	close(dfd);
	return rc;
}

/* True if process pid exists (ours or another user's). */
static bool pid_alive(long pid)
{
	if (pid <= 0)
		return false;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

bool xr_status_healthy(const struct xr_status *st, int64_t now, long max_age, char *why,
		       size_t cap)
{
	int64_t age;

	if (st == NULL || (st->last_attempt == 0 && st->last_success == 0)) {
		snprintf(why, cap, "no run recorded");
		return false;
	}
	if (st->last_exit != 0) {
		snprintf(why, cap, "last run failed (code %d): %s", st->last_exit,
			 st->last_error[0] ? st->last_error : "unknown error");
		return false;
	}
	if (max_age < 0) {
		snprintf(why, cap, "ok");
		return true;
	}
	if (st->last_success == 0) {
		snprintf(why, cap, "no successful run recorded");
		return false;
	}
	age = now - st->last_success;
	if (age <= max_age) {
		snprintf(why, cap, "ok");
		return true;
	}
	if (st->session_up && pid_alive(st->pid)) {
		snprintf(why, cap, "ok (watching, idle)");
		return true;
	}
	snprintf(why, cap, "last success %" PRId64 " s ago (max %ld s)", age, max_age);
	return false;
}

/* ---- the status command ------------------------------------------------- */

/* One destination to show: its name and state (loaded or not). */
struct shown {
	char name[256];
	struct xr_status st;
	int load;			/* xr_status_load's result */
};

/* Prints s as a JSON string literal. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* One destination as a JSON object. */
static void print_json_one(const struct shown *d, bool healthy, const char *why, int64_t now)
{
	const struct xr_status *st = &d->st;
	char la[32], ls[32];

	printf("    {\"name\": ");
	json_str(d->name);
	printf(", \"healthy\": %s, \"reason\": ", healthy ? "true" : "false");
	json_str(why);
	if (d->load != 0) {
		printf(", \"recorded\": false}");
		return;
	}
	xr_status_iso(st->last_attempt, la);
	xr_status_iso(st->last_success, ls);
	printf(", \"recorded\": true,\n      \"dest\": ");
	json_str(st->dest);
	printf(", \"peer\": ");
	json_str(st->peer);
	printf(", \"mode\": ");
	json_str(st->mode);
	printf(", \"pid\": %ld, \"session_up\": %s,\n", st->pid, st->session_up ? "true" : "false");
	printf("      \"last_attempt\": %" PRId64 ", \"last_attempt_iso\": \"%s\",\n",
	       st->last_attempt, la);
	printf("      \"last_success\": %" PRId64 ", \"last_success_iso\": \"%s\", ",
	       st->last_success, ls);
	if (st->last_success > 0)
		printf("\"age_s\": %" PRId64 ",\n", now - st->last_success);
	else
		printf("\"age_s\": null,\n");
	printf("      \"last_exit\": %d, \"last_error\": ", st->last_exit);
	json_str(st->last_error);
	printf(", \"lag_ms\": %" PRId64 ",\n", st->lag_ms);
	printf("      \"files\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"wire_bytes\": %" PRIu64
	       ",\n", st->files, st->bytes, st->wire_bytes);
	printf("      \"total_files\": %" PRIu64 ", \"total_bytes\": %" PRIu64
	       ", \"changesets\": %" PRIu64 ", \"failures\": %" PRIu64 ",\n",
	       st->total_files, st->total_bytes, st->changesets, st->failures);
	printf("      \"hook_time\": %" PRId64 ", \"hook_error\": ", st->hook_time);
	json_str(st->hook_error);
	printf("}");
}

/* "12s", "5m03s", "2h10m", "3d04h" for an age in seconds. */
static void human_age(int64_t s, char buf[24])
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, 24, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, 24, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, 24, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, 24, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

/* One destination as a table row, the reason and hook error on lines below. */
static void print_row(const struct shown *d, bool healthy, const char *why, int64_t now)
{
	const struct xr_status *st = &d->st;
	char ls[32], age[24], lag[24];
	const char *state;

	if (d->load != 0) {
		printf("%-28s %-10s %-7s %s\n", d->name, "-", "NO RUN", why);
		return;
	}
	state = healthy ? "ok" : st->last_exit ? "FAILED" : "STALE";
	xr_status_iso(st->last_success, ls);
	if (st->last_success > 0)
		human_age(now - st->last_success, age);
	else
		snprintf(age, sizeof(age), "-");
	if (st->lag_ms >= 0)
		snprintf(lag, sizeof(lag), "%" PRId64 "ms", st->lag_ms);
	else
		snprintf(lag, sizeof(lag), "-");
	printf("%-28s %-10s %-7s %-20s %7s %8s %6" PRIu64 " %10" PRIu64 "\n",
	       st->dest[0] ? st->dest : d->name, st->mode, state, ls[0] ? ls : "never", age, lag,
	       st->files, st->bytes);
	if (!healthy)
		printf("    %s\n", why);
	if (st->hook_error[0]) {
		char ht[32];

		xr_status_iso(st->hook_time, ht);
		printf("    last hook error (%s): %s\n", ht, st->hook_error);
	}
}

/* Appends one destination to the list; 0 or XR_ENOMEM. */
static int add_shown(struct shown **v, size_t *n, const char *name)
{
	struct shown *nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (nv == NULL)
		return XR_ENOMEM;
	*v = nv;
	memset(&nv[*n], 0, sizeof(nv[*n]));
	snprintf(nv[*n].name, sizeof(nv[*n].name), "%s", name);
	(*n)++;
	return 0;
}

/* Comparison for qsort: by name. */
static int cmp_shown(const void *a, const void *b)
{
	return strcmp(((const struct shown *)a)->name, ((const struct shown *)b)->name);
}

/* Lists dir's *.state files into v; a missing dir is an empty list.  0 or an xr_err. */
static int list_states(const char *dir, struct shown **v, size_t *n)
{
	struct dirent *de;
	DIR *d;
	int dfd, rc = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		xr_error("%s: open state directory: %s", dir, strerror(errno));
		return XR_EFILEIO;
	}
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return XR_EFILEIO;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name), sl = strlen(STATE_SUFFIX);
		char name[256];

		if (de->d_name[0] == '.' || len <= sl || len - sl >= sizeof(name) ||
		    strcmp(de->d_name + len - sl, STATE_SUFFIX))
			continue;
		memcpy(name, de->d_name, len - sl);
		name[len - sl] = '\0';
		rc = add_shown(v, n, name);
		if (rc == 0)
			(*v)[*n - 1].load = load_at(dirfd(d), de->d_name, &(*v)[*n - 1].st);
	}
	closedir(d);
	if (*n > 1)
		qsort(*v, *n, sizeof(**v), cmp_shown);
	return rc;
}

int xr_status_main(const struct xr_opts *o)
{
	char dir[4096], why[XR_STATUS_STR + 4096 + 600];
	struct shown *v = NULL;
	size_t n = 0;
	int64_t now = wall_now();
	bool all_ok = true;
	int rc;

	if (o->nargs > 1) {
		xr_error("status takes at most one DEST (got %d)", o->nargs);
		return 1;
	}
	rc = xr_status_dir(o->state_dir, false, dir, sizeof(dir));
	if (rc < 0)
		return 1;
	if (o->nargs == 1) {
		char name[256];

		if (xr_status_name(o->args[0], name, sizeof(name)) < 0) {
			xr_error("%s: destination name too long", o->args[0]);
			return 1;
		}
		rc = add_shown(&v, &n, name);
		if (rc == 0)
			v[0].load = xr_status_load(dir, name, &v[0].st);
	} else {
		rc = list_states(dir, &v, &n);
	}
	if (rc < 0) {
		free(v);
		return 1;
	}
	if (o->json)
		printf("{\n  \"state_dir\": ");
	if (o->json) {
		json_str(dir);
		printf(",\n  \"destinations\": [\n");
	} else if (n > 0) {
		printf("%-28s %-10s %-7s %-20s %7s %8s %6s %10s\n", "DEST", "MODE", "STATE",
		       "LAST SUCCESS", "AGE", "LAG", "FILES", "BYTES");
	}
	for (size_t i = 0; i < n; i++) {
		bool ok;

		why[0] = '\0';
		if (v[i].load < 0)
			snprintf(why, sizeof(why), "unreadable state file %s/%s%s", dir, v[i].name,
				 STATE_SUFFIX);
		ok = v[i].load == 0 && xr_status_healthy(&v[i].st, now, o->max_age, why,
							 sizeof(why));
		if (v[i].load == 1)
			snprintf(why, sizeof(why), "no run recorded");
		all_ok = all_ok && ok;
		if (o->json) {
			print_json_one(&v[i], ok, why, now);
			printf("%s\n", i + 1 < n ? "," : "");
		} else {
			print_row(&v[i], ok, why, now);
		}
	}
	if (n == 0)
		all_ok = false;
	if (o->json)
		printf("  ],\n  \"healthy\": %s\n}\n", all_ok ? "true" : "false");
	else if (n == 0)
		printf("no run recorded (state directory %s)\n", dir);
	free(v);
	return all_ok ? 0 : 1;
}

/* ---- recording ---------------------------------------------------------- */

int xr_status_rec_begin(struct xr_status_rec *r, const struct xr_opts *o, const char *dest,
			const char *peer)
{
	char abs[PATH_MAX + 256], peer_abs[PATH_MAX + 256];
	int rc;

	memset(r, 0, sizeof(*r));
	xr_status_init(&r->st);
	if (o->dry_run)
		return 0;
	if (xr_status_name(dest, r->name, sizeof(r->name)) < 0 ||
	    absolute_dest(dest, abs, sizeof(abs)) < 0 ||
	    absolute_dest(peer, peer_abs, sizeof(peer_abs)) < 0) {
		xr_warn("%s: destination name too long for a state file; no status recorded",
			dest);
		return 0;
	}
	if (xr_status_dir(o->state_dir, true, r->dir, sizeof(r->dir)) < 0) {
		xr_warn("no status recorded for %s (see --state-dir)", dest);
		return 0;
	}
	rc = xr_status_load(r->dir, r->name, &r->st);
	if (rc < 0) {
		xr_warn("%s/%s%s: unreadable state file, starting afresh", r->dir, r->name,
			STATE_SUFFIX);
		xr_status_init(&r->st);
	}
	set_field(r->st.dest, sizeof(r->st.dest), abs);
	set_field(r->st.peer, sizeof(r->st.peer), peer_abs);
	snprintf(r->st.mode, sizeof(r->st.mode), "%s%s", o->cmd == XR_CMD_PUSH ? "push" : "pull",
		 o->watch ? "-watch" : "");
	r->st.pid = (long)getpid();
	r->st.session_up = false;
	r->enabled = true;
	return 0;
}

void xr_status_rec_session(struct xr_status_rec *r)
{
	r->t0 = mono_now();
	r->wall0 = (double)wall_now();
	r->wire_prev = 0;
	r->recorded = false;
	r->recorded_rc = 0;
}

/* Records a failure with rc at now. */
static void rec_failure(struct xr_status_rec *r, int rc)
{
	r->st.last_attempt = wall_now();
	r->st.last_exit = xr_exit_code(rc);
	snprintf(r->st.last_error, sizeof(r->st.last_error), "%s", xr_strerror(rc));
	r->st.failures++;
}

void xr_status_rec_cset(struct xr_status_rec *r, struct xr_session *s, int rc)
{
	const struct xr_conn_stats *cs;
	uint64_t wire = 0, files = 0;
	bool first = !r->recorded;

	if (!r->enabled)
		return;
	r->recorded = true;
	r->recorded_rc = rc;
	r->st.pid = (long)getpid();
	if (s->conn) {
		cs = xr_conn_stats(s->conn);
		wire = cs->bytes_in + cs->bytes_out;
	}
	r->st.wire_bytes = wire >= r->wire_prev ? wire - r->wire_prev : wire;
	r->wire_prev = wire;
	if (rc != 0 && rc != XR_EVANISHED) {
		rec_failure(r, rc);
		r->st.session_up = false;
		xr_status_save(r->dir, r->name, &r->st);
		return;
	}
	/* the receiver's list of changes when it is here, else its counters */
	for (size_t i = 0; i < s->nchanged; i++) {
		const char *name;

		if (xr_hook_changed_entry(s->changed[i], &name))
			files++;
	}
	if (s->nchanged == 0)
		files = s->st.files_transferred + s->st.files_deleted;
	r->st.last_attempt = r->st.last_success = wall_now();
	r->st.last_exit = 0;
	r->st.last_error[0] = '\0';
	if (first)
		r->st.lag_ms = (int64_t)((mono_now() - r->t0) * 1000.0);
	else if (s->st.xfer_time > 0)
		r->st.lag_ms = (int64_t)(s->st.xfer_time * 1000.0);
	else
		r->st.lag_ms = -1;
	r->st.files = files;
	r->st.bytes = s->st.transferred_size;
	r->st.total_files += r->st.files;
	r->st.total_bytes += r->st.bytes;
	r->st.changesets++;
	r->st.session_up = s->opts->watch;
	xr_status_save(r->dir, r->name, &r->st);
}

void xr_status_rec_end(struct xr_status_rec *r, int rc)
{
	bool changed = false;

	if (!r->enabled)
		return;
	if (rc != 0 && rc != XR_EVANISHED && !(r->recorded && r->recorded_rc == rc)) {
		rec_failure(r, rc);
		changed = true;
	} else if (rc == 0 && !r->recorded) {
		r->st.last_attempt = r->st.last_success = wall_now();
		r->st.last_exit = 0;
		r->st.last_error[0] = '\0';
		r->st.lag_ms = (int64_t)((mono_now() - r->t0) * 1000.0);
		r->st.files = r->st.bytes = r->st.wire_bytes = 0;
		changed = true;
	}
	if (r->st.session_up) {
		r->st.session_up = false;
		changed = true;
	}
	if (changed)
		xr_status_save(r->dir, r->name, &r->st);
}

void xr_status_rec_hook(struct xr_status_rec *r, const char *err)
{
	if (!r->enabled)
		return;
	if (err) {
		r->st.hook_time = wall_now();
		set_field(r->st.hook_error, sizeof(r->st.hook_error), err);
	} else if (r->st.hook_error[0] == '\0') {
		return;
	} else {
		r->st.hook_error[0] = '\0';
	}
	xr_status_save(r->dir, r->name, &r->st);
}

/* ---- the health responder ----------------------------------------------- */

/* Binds and listens on addr:port; returns the socket or a negative xr_err. */
static int health_listen(const char *addr, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (port <= 0 || port > 65535) {
		xr_error("--health-port=%d: not a port number", port);
		return XR_ESYNTAX;
	}
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		len = sizeof(*a6);
	} else {
		xr_error("--health-bind=%s: not an IPv4 or IPv6 address", addr);
		return XR_ESYNTAX;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		xr_error("health: socket: %s", strerror(errno));
		return XR_ESTART;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
		xr_error("health: bind %s port %d: %s", addr, port, strerror(errno));
		close(fd);
		return XR_ESTART;
	}
	return fd;
}

/* Reads the request (up to HEALTH_REQ_MAX, 1 s); true if it ends or fills, "HEAD" noted. */
static bool health_read_request(int fd, bool *head)
{
	char buf[HEALTH_REQ_MAX + 1];
	size_t n = 0;
	double deadline = mono_now() + 1.0;

	while (n < HEALTH_REQ_MAX) {
		struct pollfd pfd = {fd, POLLIN, 0};
		double left = deadline - mono_now();
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
			return false;
		r = recv(fd, buf + n, HEALTH_REQ_MAX - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			break;
	}
	buf[n] = '\0';
	*head = !strncmp(buf, "HEAD ", 5);
	return n > 0;
}

/* Answers one connection with the health of the state files. */
static void health_answer(int fd, const char *dir, char *const names[], size_t n,
			  long max_age)
{
	char body[2048], why[XR_STATUS_STR + 64], resp[3072], iso[32];
	struct xr_status st;
	int64_t now = wall_now(), oldest = 0;
	bool ok = true, head = false;
	size_t used = 0;
	int len;

	if (!health_read_request(fd, &head))
		return;
	body[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int rc = xr_status_load(dir, names[i], &st);
		bool h = rc == 0 && xr_status_healthy(&st, now, max_age, why, sizeof(why));

		if (rc == 1)
			snprintf(why, sizeof(why), "no run recorded");
		else if (rc < 0)
			snprintf(why, sizeof(why), "unreadable state file");
		if (!h) {
			ok = false;
			len = snprintf(body + used, sizeof(body) - used, "%s%s: %s",
				       used ? "; " : "FAIL ", names[i], why);
			if (len > 0 && (size_t)len < sizeof(body) - used)
				used += (size_t)len;
		} else if (oldest == 0 || st.last_success < oldest) {
			oldest = st.last_success;
		}
	}
	if (ok) {
		xr_status_iso(oldest, iso);
		snprintf(body, sizeof(body), "OK %s", iso);
	}
	len = snprintf(resp, sizeof(resp),
		       "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		       "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s%s",
		       ok ? "200 OK" : "503 Service Unavailable", strlen(body) + 1,
		       head ? "" : body, head ? "" : "\n");
	if (len > 0)
		send(fd, resp, (size_t)len < sizeof(resp) ? (size_t)len : sizeof(resp) - 1,
		     MSG_NOSIGNAL);
}

/* The responder child: accept, answer, close; forever (until the parent dies). */
static void health_child(int lfd, pid_t parent, const char *dir, char *const names[],
			 size_t n, long max_age)
{
	struct timeval tv = {1, 0};
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR)
				usleep(100000);
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		health_answer(fd, dir, names, n, max_age);
		close(fd);
	}
}

int xr_health_start(const char *bind_addr, int port, const char *dir, char *const names[],
		    size_t n, long max_age, pid_t *pid)
{
	pid_t parent = getpid();
	int lfd;

	lfd = health_listen(bind_addr ? bind_addr : "127.0.0.1", port);
	if (lfd < 0)
		return lfd;
	if (max_age < 0)
		max_age = HEALTH_DEFAULT_MAX_AGE;
	fflush(NULL);
	*pid = fork();
	if (*pid < 0) {
		xr_error("health: fork: %s", strerror(errno));
		close(lfd);
		return XR_ESTART;
	}
	if (*pid == 0)
		health_child(lfd, parent, dir, names, n, max_age);
	close(lfd);
	return 0;
}

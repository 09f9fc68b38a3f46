/* hooks.c - --on-change PATTERN=COMMAND: commands run after a commit changed matching files. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/filter.h"
#include "xr/hooks.h"
#include "xr/log.h"

#define HOOK_KILL_GRACE_MS 2000
#define HOOK_LINE_MAX 1024

int xr_hooks_add(struct xr_hooks *h, const char *spec, const char *origin)
{
	const char *eq = strchr(spec, '=');
	struct xr_hook *nv;
	char *pat, *cmd;

	if (eq == NULL || eq == spec || eq[1] == '\0') {
		xr_error("%s: \"%s\": expected PATTERN=COMMAND", origin, spec);
		return XR_ESYNTAX;
	}
	pat = strndup(spec, (size_t)(eq - spec));
	cmd = strdup(eq + 1);
	nv = realloc(h->v, (h->n + 1) * sizeof(*nv));
	if (pat == NULL || cmd == NULL || nv == NULL) {
		free(pat);
		free(cmd);
		if (nv)
			h->v = nv;
		return XR_ENOMEM;
	}
	h->v = nv;
	h->v[h->n].pattern = pat;
	h->v[h->n].command = cmd;
	h->n++;
	return 0;
}

void xr_hooks_free(struct xr_hooks *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].pattern);
		free(h->v[i].command);
	}
	free(h->v);
	h->v = NULL;
	h->n = 0;
}

/* Matches pat (no anchor, no trailing "/") against path as a filter rule would. */
static bool match_unanchored(const char *pat, const char *path)
{
	const char *p;

	if (strchr(pat, '/') == NULL && strstr(pat, "**") == NULL) {
		p = strrchr(path, '/');
		return xr_wildmatch(pat, p ? p + 1 : path);
	}
	if (xr_wildmatch(pat, path))
		return true;
	for (p = strchr(path, '/'); p; p = strchr(p + 1, '/'))
		if (xr_wildmatch(pat, p + 1))
			return true;
	return false;
}

bool xr_hook_matches(const char *pattern, const char *path)
{
	char pat[4096], name[4096];
	size_t pl = strlen(pattern), nl = strlen(path);
	bool anchored = pattern[0] == '/', is_dir, dir_only, ok;
	const char *pp = anchored ? pattern + 1 : pattern;

	if (pl >= sizeof(pat) || nl >= sizeof(name) || nl == 0)
		return false;
	memcpy(name, path, nl + 1);
	is_dir = name[nl - 1] == '/';
	while (nl > 0 && name[nl - 1] == '/')
		name[--nl] = '\0';
	pl = strlen(pp);
	memcpy(pat, pp, pl + 1);
	/* "dir/" plus three stars: the directory itself and everything inside it */
	if (pl >= 4 && !strcmp(pat + pl - 4, "/***")) {
		pat[pl - 4] = '\0';
		if (anchored ? xr_wildmatch(pat, name) : match_unanchored(pat, name))
			return true;
		pat[pl - 4] = '/';
		pat[pl - 1] = '\0';	/* "dir/" plus two stars */
		return anchored ? xr_wildmatch(pat, name) : match_unanchored(pat, name);
	}
	dir_only = pl > 0 && pat[pl - 1] == '/';
	while (pl > 0 && pat[pl - 1] == '/')
		pat[--pl] = '\0';
	if (pl == 0 || (dir_only && !is_dir))
		return false;
	ok = anchored ? xr_wildmatch(pat, name) : match_unanchored(pat, name);
	return ok;
}

bool xr_hook_changed_entry(const char *entry, const char **name)
{
	size_t n = strlen(entry);

	if (n <= 11) {
		*name = entry + n;
		return false;
	}
	*name = entry + 11;
	return entry[0] == '>' || entry[0] == '<' || entry[0] == 'c' || entry[0] == 'h' ||
	       entry[0] == '*';
}

/* Milliseconds on the monotonic clock. */
static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs the complete lines in buf[0..*len) ("hook: LINE"), keeps the rest. */
static void log_lines(char *buf, size_t *len, bool flush)
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', *len - (size_t)(start - buf))) != NULL) {
		*nl = '\0';
		xr_logfile("hook: %s", start);
		xr_info(1, "hook: %s", start);
		start = nl + 1;
	}
	*len -= (size_t)(start - buf);
	memmove(buf, start, *len);
	if ((flush && *len > 0) || *len >= HOOK_LINE_MAX - 1) {
		buf[*len] = '\0';
		xr_logfile("hook: %s", buf);
		xr_info(1, "hook: %s", buf);
		*len = 0;
	}
}

/* The child: own process group, stdin /dev/null, output into the pipe, then sh -c. */
static void exec_child(const char *command, int wfd, const char *dest, const char *changed)
{
	int fd = open("/dev/null", O_RDONLY);

	setpgid(0, 0);
	if (fd >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
	dup2(wfd, 1);
	dup2(wfd, 2);
	if (wfd > 2)
		close(wfd);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (dest)
		setenv("XR_DEST", dest, 1);
	if (changed)
		setenv("XR_CHANGED", changed, 1);
	execl("/bin/sh", "sh", "-c", command, (char *)NULL);
	_exit(127);
}

int xr_hook_exec(const char *command, int timeout, const char *dest, const char *changed,
		 bool *timed_out)
{
	char buf[HOOK_LINE_MAX];
	size_t len = 0;
	long long deadline, kill_at = 0;
	bool eof = false, termed = false;
	int pfd[2], status = -1;
	pid_t pid, w = 0;

	*timed_out = false;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		xr_error("hook: pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		xr_error("hook: fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0)
		exec_child(command, pfd[1], dest, changed);
	setpgid(pid, pid);	/* also here: no race with the kill below */
	close(pfd[1]);
	deadline = mono_ms() + (long long)(timeout > 0 ? timeout : 60) * 1000;
	for (;;) {
		long long now = mono_ms(), wait = 100;
		struct pollfd p = {pfd[0], POLLIN, 0};

		if (w == 0) {
			w = waitpid(pid, &status, WNOHANG);
			if (w < 0 && errno == EINTR)
				w = 0;
		}
		if (w != 0 && eof)
			break;
		if (w != 0) {
			/* exited; whatever still holds the pipe (a background child) is not waited for */
			ssize_t r = 0;

			if (poll(&p, 1, 0) > 0)
				r = read(pfd[0], buf + len, sizeof(buf) - 1 - len);
			if (r <= 0)
				break;
			len += (size_t)r;
			log_lines(buf, &len, false);
			continue;
		}
		if (!termed && now >= deadline) {
			*timed_out = termed = true;
			kill(-pid, SIGTERM);
			kill_at = now + HOOK_KILL_GRACE_MS;
		} else if (termed && kill_at && now >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = 0;
		}
		if (eof) {
			struct timespec ts = {0, 50 * 1000000L};

			nanosleep(&ts, NULL);
			continue;
		}
		if (poll(&p, 1, (int)wait) > 0) {
			ssize_t r = read(pfd[0], buf + len, sizeof(buf) - 1 - len);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				eof = true;
				continue;
			}
			len += (size_t)r;
			log_lines(buf, &len, false);
		}
	}
	log_lines(buf, &len, true);
	close(pfd[0]);
	if (w < 0)
		return -1;
	/* a killed group may leave members behind; make sure nothing outlives the timeout */
	if (termed)
		kill(-pid, SIGKILL);
	return status;
}

/* Appends s and a newline to the growing string *acc; false on ENOMEM. */
static bool append_line(char **acc, size_t *len, const char *s)
{
	size_t n = strlen(s);
	char *nv = realloc(*acc, *len + n + 2);

	if (nv == NULL)
		return false;
	memcpy(nv + *len, s, n);
	*len += n;
	nv[(*len)++] = '\n';
	nv[*len] = '\0';
	*acc = nv;
	return true;
}

int xr_hooks_run(const struct xr_hooks *h, char *const changed[], size_t n, const char *dest,
		 size_t *ran, char *err, size_t cap)
{
	int failed = 0;

	if (ran)
		*ran = 0;
	if (err && cap)
		err[0] = '\0';
	for (size_t i = 0; i < h->n; i++) {
		const struct xr_hook *k = &h->v[i];
		char *list = NULL, why[96];
		size_t len = 0, hits = 0;
		bool timed_out;
		int st;

		for (size_t j = 0; j < n; j++) {
			const char *name;

			if (!xr_hook_changed_entry(changed[j], &name) ||
			    !xr_hook_matches(k->pattern, name))
				continue;
			if (!append_line(&list, &len, name)) {
				free(list);
				return failed + 1;
			}
			hits++;
		}
		if (hits == 0)
			continue;
		xr_logfile("hook %s: %zu changed path(s), running: %s", k->pattern, hits,
			   k->command);
		xr_info(1, "hook %s: running %s", k->pattern, k->command);
		if (ran)
			(*ran)++;
		st = xr_hook_exec(k->command, h->timeout, dest, list, &timed_out);
		free(list);
		if (timed_out)
			snprintf(why, sizeof(why), "killed after the timeout of %d s", h->timeout);
		else if (st == -1)
			snprintf(why, sizeof(why), "could not start");
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			xr_logfile("hook %s: done", k->pattern);
			continue;
		} else if (WIFEXITED(st))
			snprintf(why, sizeof(why), "exit %d", WEXITSTATUS(st));
		else
			snprintf(why, sizeof(why), "signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		failed++;
		xr_error("hook %s=%s failed: %s", k->pattern, k->command, why);
		if (err && cap)
			snprintf(err, cap, "%s=%s: %s", k->pattern, k->command, why);
	}
	return failed;
}

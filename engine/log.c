/* log.c - diagnostics, verbose output and the rsync-format log file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/log.h"

#define TRACE_DEPTH 16

/* Process-wide logging state: one process has one stderr and one log file. */
static struct {
	int verbosity;
	const char *prefix;
	int fd;
	char trace[TRACE_DEPTH][96];
	int ntrace;
} lg = {0, "", -1, {{0}}, 0};

void xr_log_init(int verbosity, const char *role_prefix)
{
	lg.verbosity = verbosity;
	lg.prefix = role_prefix ? role_prefix : "";
}

int xr_log_verbosity(void)
{
	return lg.verbosity;
}

int xr_log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0) {
		fprintf(stderr, "xroad-replicate: failed to open log-file %s: %s\n", path,
			strerror(errno));
		return XR_EFILEIO;
	}
	if (lg.fd >= 0)
		close(lg.fd);
	lg.fd = fd;
	return 0;
}

void xr_log_close_file(void)
{
	if (lg.fd >= 0)
		close(lg.fd);
	lg.fd = -1;
}

/* Writes one "YYYY/MM/DD HH:MM:SS [PID] text" line to the log file. */
__attribute__((format(printf, 1, 0))) void xr_vlogfile(const char *fmt, va_list ap)
{
	char line[9000];
	struct tm tm;
	time_t now;
	int n, m;

	if (lg.fd < 0)
		return;
	now = time(NULL);
	localtime_r(&now, &tm);
	n = (int)strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S ", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "[%ld] ", (long)getpid());
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(lg.fd, line, (size_t)n) < 0) {
		/* a failing log must not stop the transfer */
	}
}

void xr_logfile(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	xr_vlogfile(fmt, ap);
	va_end(ap);
}

/* Prints "xroad-replicate: [prefix]msg" to stderr and logs it. */
__attribute__((format(printf, 1, 0))) static void emit(const char *fmt, va_list ap)
{
	char msg[8192];
	va_list cp;

	va_copy(cp, ap);
	vsnprintf(msg, sizeof(msg), fmt, cp);
	va_end(cp);
	fprintf(stderr, "xroad-replicate: %s%s\n", lg.prefix, msg);
	fflush(stderr);
	xr_logfile("%s%s", lg.prefix, msg);
}

void xr_error(const char *fmt, ...)
{
	va_list ap;
	int i;

	va_start(ap, fmt);
	emit(fmt, ap);
	va_end(ap);
	if (lg.verbosity >= 2)
		for (i = lg.ntrace - 1; i >= 0; i--)
			fprintf(stderr, "  at %s\n", lg.trace[i]);
	lg.ntrace = 0;
}

void xr_warn(const char *fmt, ...)
{
	va_list ap;

	if (lg.verbosity < 0)
		return;
	va_start(ap, fmt);
	emit(fmt, ap);
	va_end(ap);
}

void xr_info(int level, const char *fmt, ...)
{
	va_list ap;

	if (lg.verbosity < level)
		return;
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

void xr_trace(const char *func, int line, const char *what)
{
	if (lg.ntrace >= TRACE_DEPTH)
		return;
	snprintf(lg.trace[lg.ntrace++], sizeof(lg.trace[0]), "%s:%d: %s", func, line, what);
}

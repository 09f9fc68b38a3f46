/* log.h - diagnostics to stderr, verbose output and rsync-format log file. */
#ifndef XR_LOG_H
#define XR_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/*
 * Diagnostics go to stderr as "xroad-replicate: <message>" (prefixed
 * "[serve] " on the server side, as rsync prefixes "[sender]").
 * When a log file is open, errors and xr_logfile() lines also go there in
 * rsync's format: "YYYY/MM/DD HH:MM:SS [PID] <text>".
 */

/* Sets the verbosity (-v count, -q makes it -1) and the role prefix. */
void xr_log_init(int verbosity, const char *role_prefix);
int xr_log_verbosity(void);

/* Opens (append, 0640 created) the --log-file; returns 0 or XR_EFILEIO. */
int xr_log_open_file(const char *path);
void xr_log_close_file(void);

/* An error: always printed (even with -q), and logged. */
void xr_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning: printed unless -q, logged. */
void xr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Informational output on stdout when verbosity >= level. */
void xr_info(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line for the log file only (itemized changes, totals). */
void xr_logfile(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xr_vlogfile(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * Error trace, after openrsync's ERRX1: records "func:line: what" so that an
 * error travelling up leaves a trail; printed with -vv or on protocol errors.
 */
#define XR_TRACE(what) xr_trace(__func__, __LINE__, (what))
void xr_trace(const char *func, int line, const char *what);

#endif

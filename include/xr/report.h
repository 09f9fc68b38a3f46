/* report.h - itemized output on stdout and in the log file, --stats. */
#ifndef XR_REPORT_H
#define XR_REPORT_H

#include <stdbool.h>

#include "xr/opts.h"
#include "xr/session.h"

/*
 * Reports one change as rsync does: itemize is the 11-char %i string (or
 * "*deleting" for a deletion), name the %n form (directories end in "/"),
 * link the %L suffix (" -> target" or "").  Prints on stdout with -i
 * ("%i %n%L") or -v ("%n%L", new or transferred items only, "deleting
 * NAME"), and writes the log file line with --log-file-format (default
 * "%i %n%L").  as_sender turns a leading '>' into '<' (push, as rsync).
 */
void xr_report_item(const struct xr_opts *o, const char *itemize, const char *name,
		    const char *link, bool as_sender);

/*
 * --progress: one rsync-style line per file when its data has arrived (or
 * has been sent): the name, then "SIZE 100%  RATE  (xfr#N, to-chk=M/T)".
 */
void xr_report_progress(const struct xr_opts *o, const char *name, uint64_t size,
			double seconds, uint64_t xfr, uint64_t left, uint64_t total);

/* The closing lines: --stats block, -v summary, the log file's totals line. */
void xr_report_totals(const struct xr_opts *o, const struct xr_stats *st, uint64_t sent,
		      uint64_t received, double seconds);

/* Formats n with thousands separators as rsync does ("65,346"). */
const char *xr_bignum(uint64_t n, char buf[32]);

#endif

/* report.c - itemized output on stdout and in the log file, --stats. */
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include "xr/log.h"
#include "xr/report.h"

const char *xr_bignum(uint64_t n, char buf[32])
{
	char tmp[32];
	int len = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)n);
	int i, j = 0;

	for (i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf[j++] = ',';
		buf[j++] = tmp[i];
	}
	buf[j] = '\0';
	return buf;
}

/*
 * Escapes a name as rsync prints it: bytes that are not printable in the
 * current locale (control characters but tab; bytes >= 0x80 unless they
 * form a printable multibyte character) become "\#ooo".
 */
static void escape_name(const char *in, char *out, size_t cap)
{
	mbstate_t ps;
	size_t len = 0, n, k;
	wchar_t wc;

	memset(&ps, 0, sizeof(ps));
	while (*in && len + 6 < cap) {
		n = mbrtowc(&wc, in, strlen(in), &ps);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0 ||
		    (!iswprint((wint_t)wc) && wc != L'\t')) {
			memset(&ps, 0, sizeof(ps));
			len += (size_t)snprintf(out + len, cap - len, "\\#%03o",
						(unsigned)(unsigned char)*in);
			in++;
			continue;
		}
		for (k = 0; k < n && len + 1 < cap; k++)
			out[len++] = in[k];
		in += n;
	}
	out[len] = '\0';
}

/* Expands rsync's log-format escapes (%i %n %L %f %o %%) into out. */
static void format_line(const char *fmt, const char *itemize, const char *name, const char *link,
			bool deletion, bool as_sender, char *out, size_t cap)
{
	size_t len = 0;
	const char *p;
	const char *add;
	char one[2] = {0, 0};

	for (p = fmt; *p && len + 1 < cap; p++) {
		add = NULL;
		if (*p != '%' || p[1] == '\0') {
			one[0] = *p;
			add = one;
		} else {
			p++;
			while (*p == '-' || *p == '\'' || (*p >= '0' && *p <= '9'))
				p++;
			switch (*p) {
			case 'i': add = itemize; break;
			case 'n':
			case 'f': add = name; break;
			case 'L': add = link; break;
			case 'o': add = deletion ? "del." : as_sender ? "send" : "recv"; break;
			case '%': add = "%"; break;
			default: add = ""; break;
			}
		}
		while (*add && len + 1 < cap)
			out[len++] = *add++;
	}
	out[len] = '\0';
}

void xr_report_item(const struct xr_opts *o, const char *itemize, const char *name,
		    const char *link, bool as_sender)
{
	char line[9000];
	char iz[32];
	bool deletion = !strncmp(itemize, "*deleting", 9);
	bool significant;

	char ename[4 * 4096 + 8], elink[4 * 4096 + 8];

	escape_name(name, ename, sizeof(ename));
	escape_name(link, elink, sizeof(elink));
	name = ename;
	link = elink;
	snprintf(iz, sizeof(iz), "%s", deletion ? "*deleting  " : itemize);
	if (as_sender && iz[0] == '>')
		iz[0] = '<';
	significant = deletion || iz[0] == '<' || iz[0] == '>' || strstr(iz, "+++") != NULL;
	if (o->itemize && !o->quiet) {
		format_line(o->out_format ? o->out_format : "%i %n%L", iz, name, link, deletion,
			    as_sender, line, sizeof(line));
		printf("%s\n", line);
	} else if (o->verbose > 0 && !o->quiet && (significant || o->verbose > 1)) {
		if (deletion)
			printf("deleting %s\n", name);
		else {
			format_line(o->out_format ? o->out_format : "%n%L", iz, name, link,
				    deletion, as_sender, line, sizeof(line));
			printf("%s\n", line);
		}
	}
	/*
	 * rsync's dry run logs what its generator decides (directories, links)
	 * but not transfers or deletions, which its receiver would log: the same
	 * here, so log parsers see what they see with rsync
	 */
	if (o->dry_run && (deletion || iz[0] == '>' || iz[0] == '<'))
		return;
	format_line(o->log_file_format ? o->log_file_format : "%i %n%L", iz, name, link, deletion,
		    as_sender, line, sizeof(line));
	xr_logfile("%s", line);
}

void xr_report_totals(const struct xr_opts *o, const struct xr_stats *st, uint64_t sent,
		      uint64_t received, double seconds)
{
	char a[32], b[32], c[32], d[32];
	double rate = seconds > 0 ? (double)(sent + received) / seconds : 0;
	double speedup = (sent + received) ? (double)st->total_size / (double)(sent + received) : 0;

	if (o->stats && !o->quiet) {
		printf("\nNumber of files: %s (reg: %s, dir: %s)\n", xr_bignum(st->files_total, a),
		       xr_bignum(st->files_reg, b),
		       xr_bignum(st->files_total - st->files_reg - st->files_other, c));
		printf("Number of created files: %s\n", xr_bignum(st->files_created, a));
		printf("Number of deleted files: %s\n", xr_bignum(st->files_deleted, a));
		printf("Number of regular files transferred: %s\n",
		       xr_bignum(st->files_transferred, a));
		printf("Total file size: %s bytes\n", xr_bignum(st->total_size, a));
		printf("Total transferred file size: %s bytes\n",
		       xr_bignum(st->transferred_size, a));
		printf("Literal data: %s bytes\n", xr_bignum(st->literal, a));
		printf("Matched data: %s bytes\n", xr_bignum(st->matched, a));
		printf("File list size: %s\n", xr_bignum(st->flist_size, a));
		printf("File list generation time: %.3f seconds\n", st->flist_time);
		printf("File list transfer time: %.3f seconds\n", st->xfer_time);
		printf("Total bytes sent: %s\n", xr_bignum(sent, a));
		printf("Total bytes received: %s\n", xr_bignum(received, a));
	}
	if ((o->stats || o->verbose > 0) && !o->quiet) {
		printf("\nsent %s bytes  received %s bytes  %s.%02d bytes/sec\n", xr_bignum(sent, a),
		       xr_bignum(received, b), xr_bignum((uint64_t)rate, c),
		       (int)((rate - (double)(uint64_t)rate) * 100));
		printf("total size is %s  speedup is %.2f%s\n", xr_bignum(st->total_size, d),
		       speedup, o->dry_run ? " (DRY RUN)" : "");
	}
	/* the log file has plain numbers (rsync 3.x) */
	xr_logfile("sent %llu bytes  received %llu bytes  total size %llu",
		   (unsigned long long)sent, (unsigned long long)received,
		   (unsigned long long)st->total_size);
	fflush(stdout);
}

void xr_report_progress(const struct xr_opts *o, const char *name, uint64_t size,
			double seconds, uint64_t xfr, uint64_t left, uint64_t total)
{
	char a[32];
	double rate = seconds > 0 ? (double)size / seconds : 0;
	const char *unit = "B/s";

	if (!o->progress || o->quiet)
		return;
	if (rate >= 1024 * 1024) {
		rate /= 1024 * 1024;
		unit = "MB/s";
	} else if (rate >= 1024) {
		rate /= 1024;
		unit = "kB/s";
	}
	printf("%s\n%15s 100%% %7.2f%s (xfr#%llu, to-chk=%llu/%llu)\n", name, xr_bignum(size, a),
	       rate, unit, (unsigned long long)xfr, (unsigned long long)left,
	       (unsigned long long)total);
	fflush(stdout);
}

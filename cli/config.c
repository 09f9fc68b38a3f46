/* config.c - the ini configuration file, turned into options under the command line's. */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr/config.h"
#include "xr/err.h"
#include "xr/log.h"

enum key_kind { K_STR, K_SECONDS, K_PORT, K_BOOL, K_LIST, K_SOURCE, K_DEST };

/* One known key: section, name, kind and the long option it becomes. */
struct key {
	const char *section, *name;
	enum key_kind kind;
	const char *option;
};

static const struct key keys[] = {
	{"sync", "source", K_SOURCE, NULL},
	{"sync", "destination", K_DEST, NULL},
	{"sync", "profile", K_STR, "profile"},
	{"sync", "log_file", K_STR, "log-file"},
	{"sync", "pause_file", K_STR, "pause-file"},
	{"sync", "rsh", K_STR, "rsh"},
	{"sync", "rsync_path", K_STR, "rsync-path"},
	{"sync", "timeout", K_SECONDS, "timeout"},
	{"sync", "contimeout", K_SECONDS, "contimeout"},
	{"sync", "reconcile", K_SECONDS, "reconcile"},
	{"sync", "watch", K_BOOL, "watch"},
	{"sync", "archive", K_BOOL, "archive"},
	{"sync", "compress", K_BOOL, "compress"},
	{"sync", "quiet", K_BOOL, "quiet"},
	{"sync", "delete", K_BOOL, "delete"},
	{"sync", "delete_delay", K_BOOL, "delete-delay"},
	{"sync", "checksum", K_BOOL, "checksum"},
	{"sync", "itemize", K_BOOL, "itemize-changes"},
	{"sync", "exclude", K_LIST, "exclude"},
	{"sync", "include", K_LIST, "include"},
	{"sync", "filter", K_LIST, "filter"},
	{"sync", "commit_last", K_LIST, "commit-last"},
	{"hooks", "on_change", K_LIST, "on-change"},
	{"hooks", "timeout", K_SECONDS, "hook-timeout"},
	{"health", "port", K_PORT, "health-port"},
	{"health", "bind", K_STR, "health-bind"},
	{"health", "max_age", K_SECONDS, "max-age"},
	{"status", "state_dir", K_STR, "state-dir"},
};

/* The handler's state: the result and the first error (inih gives its line). */
struct loader {
	struct xr_config *c;
	const char *path;
	char error[512];
};

/* Appends a copy of s to a string list; false on ENOMEM. */
static bool push_str(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));

	if (nv == NULL)
		return false;
	*v = nv;
	nv[*n] = strdup(s);
	if (nv[*n] == NULL)
		return false;
	(*n)++;
	return true;
}

/* Parses yes/no words; -1 when v is none of them. */
static int parse_bool(const char *v)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]))
			return 1;
		if (!strcasecmp(v, no[i]))
			return 0;
	}
	return -1;
}

/* True when v is a whole non-negative number no greater than max. */
static bool is_number(const char *v, long max)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	return !errno && end != v && *end == '\0' && x >= 0 && x <= max;
}

/* inih callback: checks and records one key; 0 (error) stops nothing but is reported. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct loader *l = user;
	struct xr_config *c = l->c;
	const struct key *k = NULL;
	char opt[4200];
	int b;

	if (l->error[0])
		return 1;	/* keep the first error only */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcasecmp(keys[i].section, section) && !strcasecmp(keys[i].name, name))
			k = &keys[i];
	if (k == NULL) {
		snprintf(l->error, sizeof(l->error), "[%s] %s: unknown key", section, name);
		return 0;
	}
	if (value[0] == '\0' && k->kind != K_STR) {
		snprintf(l->error, sizeof(l->error), "[%s] %s: empty value", section, name);
		return 0;
	}
	switch (k->kind) {
	case K_SOURCE:
		if (c->have_source) {
			snprintf(l->error, sizeof(l->error), "[%s] %s: given twice", section, name);
			return 0;
		}
		/* the source goes first */
		if (!push_str(&c->args, &c->nargs, value))
			goto nomem;
		{
			char *src = c->args[c->nargs - 1];

			memmove(c->args + 1, c->args, (c->nargs - 1) * sizeof(char *));
			c->args[0] = src;
		}
		c->have_source = true;
		return 1;
	case K_DEST:
		if (!push_str(&c->args, &c->nargs, value))
			goto nomem;
		return 1;
	case K_BOOL:
		b = parse_bool(value);
		if (b < 0) {
			snprintf(l->error, sizeof(l->error),
				 "[%s] %s = %s: expected yes or no", section, name, value);
			return 0;
		}
		if (b == 0)
			return 1;
		snprintf(opt, sizeof(opt), "--%s", k->option);
		if (!push_str(&c->opts, &c->nopts, opt))
			goto nomem;
		return 1;
	case K_SECONDS:
	case K_PORT:
		if (!is_number(value, k->kind == K_PORT ? 65535 : INT_MAX)) {
			snprintf(l->error, sizeof(l->error), "[%s] %s = %s: not a %s", section, name,
				 value, k->kind == K_PORT ? "port number" : "number of seconds");
			return 0;
		}
		break;
	case K_STR:
	case K_LIST:
		break;
	}
	if (snprintf(opt, sizeof(opt), "--%s=%s", k->option, value) >= (int)sizeof(opt)) {
		snprintf(l->error, sizeof(l->error), "[%s] %s: value too long", section, name);
		return 0;
	}
	if (k->kind == K_LIST ? push_str(&c->lists, &c->nlists, opt)
			      : push_str(&c->opts, &c->nopts, opt))
		return 1;
nomem:
	snprintf(l->error, sizeof(l->error), "out of memory");
	return 0;
}

int xr_config_load(const char *path, struct xr_config *c)
{
	struct loader l;
	FILE *f;
	int line;

	memset(c, 0, sizeof(*c));
	memset(&l, 0, sizeof(l));
	l.c = c;
	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return 1;
		xr_error("%s: open configuration file: %s", path, strerror(errno));
		return XR_EFILEIO;
	}
	line = ini_parse_file(f, on_key, &l);
	fclose(f);
	if (line == 0 && c->nargs > 0 && !c->have_source) {
		xr_error("%s: [sync] destination given without a source", path);
		xr_config_free(c);
		return XR_ESYNTAX;
	}
	if (line == 0)
		return 0;
	if (line < 0)
		xr_error("%s: read configuration file: %s", path,
			 line == -2 ? "out of memory" : "I/O error");
	else if (l.error[0])
		xr_error("%s:%d: %s", path, line, l.error);
	else
		xr_error("%s:%d: syntax error (expected [section] or key = value)", path, line);
	xr_config_free(c);
	return line == -2 ? XR_ENOMEM : line < 0 ? XR_EFILEIO : XR_ESYNTAX;
}

/* Frees a list of n strings and the list. */
static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void xr_config_free(struct xr_config *c)
{
	free_list(c->opts, c->nopts);
	free_list(c->lists, c->nlists);
	free_list(c->args, c->nargs);
	memset(c, 0, sizeof(*c));
}

int xr_config_merge_argv(const struct xr_config *c, int argc, char **argv, int *nargc,
			 char ***nargv, int *ntotal)
{
	int dashdash = argc, total, k = 0;
	char **v;

	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dashdash = i;
			break;
		}
	total = argc + (int)(c->nopts + c->nlists + c->nargs) + 2;
	v = calloc((size_t)total, sizeof(char *));
	if (v == NULL)
		return XR_ENOMEM;
	for (int i = 0; i < argc && i < 2; i++)
		v[k++] = strdup(argv[i]);
	for (size_t i = 0; i < c->nopts; i++)
		v[k++] = strdup(c->opts[i]);
	for (int i = 2; i < dashdash; i++)
		v[k++] = strdup(argv[i]);
	for (size_t i = 0; i < c->nlists; i++)
		v[k++] = strdup(c->lists[i]);
	for (int i = dashdash; i < argc; i++)
		v[k++] = strdup(argv[i]);
	*nargc = k;
	v[k++] = NULL;
	for (size_t i = 0; i < c->nargs; i++)
		v[k++] = strdup(c->args[i]);
	v[k++] = NULL;
	*ntotal = k;
	*nargv = v;
	for (int i = 0; i < k; i++)
		if (v[i] == NULL && i != *nargc && i != k - 1) {
			xr_config_free_argv(v, k);
			return XR_ENOMEM;
		}
	return 0;
}

void xr_config_free_argv(char **v, int ntotal)
{
	if (v == NULL)
		return;
	for (int i = 0; i < ntotal; i++)
		free(v[i]);
	free(v);
}

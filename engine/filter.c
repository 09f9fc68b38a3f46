/* filter.c - rsync's filter rules: parsing, merge files and matching. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr/err.h"
#include "xr/filter.h"
#include "xr/log.h"
#include "xr/manifest.h"

/* Rule flags; the names follow rsync's FILTRULE_* so the semantics can be compared. */
enum {
	R_INCLUDE = 1u << 0,	    /* '+' (else '-')                          */
	R_SENDER = 1u << 1,	    /* 's' / H / S                             */
	R_RECEIVER = 1u << 2,	    /* 'r' / P / R                             */
	R_NEGATE = 1u << 3,	    /* '!' modifier                            */
	R_DIRECTORY = 1u << 4,	    /* pattern had a trailing '/'              */
	R_WILD = 1u << 5,	    /* pattern has one of "*[?"                */
	R_WILD2 = 1u << 6,	    /* pattern has "**"                        */
	R_WILD2_PREFIX = 1u << 7,   /* pattern starts with "**"                */
	R_WILD3_SUFFIX = 1u << 8,   /* pattern ends with "***"                 */
	R_SIDES = R_SENDER | R_RECEIVER,
};

/* How the text of one rule is read. */
enum parse_mode {
	MODE_FULL,	/* -f / merge-file line: "+ pat", "hide,s pat", "!" ...      */
	MODE_OLD,	/* --include/--exclude(-from): pattern, "+ "/"- " prefix, "!" */
	MODE_BARE,	/* "merge,-"/"merge,+" file: every line is a pattern          */
};

#define MERGE_DEPTH_MAX 16
#define LINE_MAX_LEN 65536

struct rule {
	char *pattern;		/* without the trailing '/' (R_DIRECTORY)  */
	char *text;		/* canonical text, see xr_filters_rule()   */
	unsigned flags;
	unsigned slash_cnt;	/* '/' in pattern (incl. a leading one)    */
};

struct xr_filters {
	struct rule *v;
	size_t n, cap;
	bool delete_excluded;
};

/* What a rule's container (a merge rule, or the caller) passes down to it. */
struct parse_ctx {
	enum parse_mode mode;
	unsigned inherit;	/* R_INCLUDE for MODE_OLD/BARE defaults, R_SIDES of a merge */
	int depth;
	const char *origin;
};

static int parse_file(struct xr_filters *f, FILE *fp, const char *name,
		      const struct parse_ctx *ctx);

/* ---- wildmatch ------------------------------------------------------------ */

#define WM_FALSE 0
#define WM_TRUE 1
#define WM_ABORT_ALL (-1)
#define WM_ABORT_TO_STARSTAR (-2)

/* Is name (len bytes) the POSIX class t_ch belongs to; -1 for an unknown class name. */
static int char_class(const unsigned char *name, size_t len, unsigned char t_ch)
{
	static const struct {
		const char *name;
		int (*fn)(int);
	} classes[] = {
		{"alnum", isalnum}, {"alpha", isalpha}, {"blank", isblank},
		{"cntrl", iscntrl}, {"digit", isdigit}, {"graph", isgraph},
		{"lower", islower}, {"print", isprint}, {"punct", ispunct},
		{"space", isspace}, {"upper", isupper}, {"xdigit", isxdigit},
	};
	size_t i;

	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strlen(classes[i].name) == len && memcmp(classes[i].name, name, len) == 0)
			return classes[i].fn(t_ch) != 0;
	return -1;
}

/*
 * Matches p against text followed by the strings in more[] (a virtual
 * concatenation).  Returns WM_TRUE, WM_FALSE, or an abort code that tells
 * the "*" / "**" loops of the callers to stop trying further positions.
 */
static int dowild(const unsigned char *p, const unsigned char *text,
		  const unsigned char *const *more)
{
	unsigned char p_ch;

	for (; (p_ch = *p) != '\0'; text++, p++) {
		unsigned char t_ch, prev_ch;
		int matched, special;

		while ((t_ch = *text) == '\0') {
			if (*more == NULL) {
				if (p_ch != '*')
					return WM_ABORT_ALL;
				break;
			}
			text = *more++;
		}

		switch (p_ch) {
		case '\\':
			/* the next character literally; "\" at the end matches nothing */
			p_ch = *++p;
			/* FALLTHROUGH */
		default:
			if (t_ch != p_ch)
				return WM_FALSE;
			continue;
		case '?':
			if (t_ch == '/')
				return WM_FALSE;
			continue;
		case '*':
			special = 0;
			if (*++p == '*') {
				while (*++p == '*')
					;
				special = 1;
			}
			if (*p == '\0') {
				/* trailing "**" matches all, trailing "*" only without '/' */
				if (!special) {
					do {
						if (strchr((const char *)text, '/'))
							return WM_FALSE;
					} while ((text = *more++) != NULL);
				}
				return WM_TRUE;
			}
			for (;;) {
				if (t_ch == '\0') {
					if ((text = *more++) == NULL)
						break;
					t_ch = *text;
					continue;
				}
				matched = dowild(p, text, more);
				if (matched != WM_FALSE) {
					if (!special || matched != WM_ABORT_TO_STARSTAR)
						return matched;
				} else if (!special && t_ch == '/') {
					return WM_ABORT_TO_STARSTAR;
				}
				t_ch = *++text;
			}
			return WM_ABORT_ALL;
		case '[':
			p_ch = *++p;
			if (p_ch == '^')
				p_ch = '!';
			special = p_ch == '!';
			if (special)
				p_ch = *++p;
			prev_ch = 0;
			matched = 0;
			/* the first character is a member even if it is ']' */
			do {
				if (!p_ch)
					return WM_ABORT_ALL;
				if (p_ch == '\\') {
					p_ch = *++p;
					if (!p_ch)
						return WM_ABORT_ALL;
					if (t_ch == p_ch)
						matched = 1;
				} else if (p_ch == '-' && prev_ch && p[1] && p[1] != ']') {
					p_ch = *++p;
					if (p_ch == '\\') {
						p_ch = *++p;
						if (!p_ch)
							return WM_ABORT_ALL;
					}
					if (t_ch <= p_ch && t_ch >= prev_ch)
						matched = 1;
					p_ch = 0; /* no range may start here */
				} else if (p_ch == '[' && p[1] == ':') {
					const unsigned char *s = p + 2;
					const unsigned char *e = s;
					int r;

					while (*e && *e != ']')
						e++;
					if (!*e)
						return WM_ABORT_ALL;
					if (e - s < 1 || e[-1] != ':') {
						/* no ":]": a plain '[' member */
						if (t_ch == '[')
							matched = 1;
						p_ch = '[';
						continue;
					}
					r = char_class(s, (size_t)(e - s - 1), t_ch);
					if (r < 0)
						return WM_ABORT_ALL;
					if (r)
						matched = 1;
					p = e;
					p_ch = 0;
				} else if (t_ch == p_ch) {
					matched = 1;
				}
			} while (prev_ch = p_ch, (p_ch = *++p) != ']');
			if (matched == special || t_ch == '/')
				return WM_FALSE;
			continue;
		}
	}

	do {
		if (*text)
			return WM_FALSE;
	} while ((text = *more++) != NULL);
	return WM_TRUE;
}

/* rsync's wildmatch(): true if the whole of text matches pattern. */
bool xr_wildmatch(const char *pattern, const char *text)
{
	static const unsigned char *const none[] = {NULL};

	return dowild((const unsigned char *)pattern, (const unsigned char *)text, none)
	       == WM_TRUE;
}

/*
 * Finds where the last count '/'-separated elements of the concatenation of
 * strs[] begin.  Returns the start, with *idx the index of the following
 * string, or NULL if there are fewer elements.
 */
static const unsigned char *trailing_elements(const unsigned char *const *strs, size_t *idx,
					      unsigned count)
{
	size_t n = 0, i;

	while (strs[n])
		n++;
	for (i = n; i-- > 0;) {
		size_t len = strlen((const char *)strs[i]);

		while (len-- > 0) {
			if (strs[i][len] == '/' && !--count) {
				*idx = i + 1;
				return strs[i] + len + 1;
			}
		}
	}
	if (count == 1 && n > 0) {
		*idx = 1;
		return strs[0];
	}
	return NULL;
}

/*
 * Matches pattern against the concatenation of strs[]: where 0 at the
 * start only, > 0 against the last "where" elements, < 0 at the start and
 * after every '/'.  Returns true on a match.
 */
static bool wildmatch_array(const char *pattern, const unsigned char *const *strs, int where)
{
	const unsigned char *p = (const unsigned char *)pattern;
	const unsigned char *text;
	size_t idx = 1;
	int matched;

	if (where > 0)
		text = trailing_elements(strs, &idx, (unsigned)where);
	else
		text = strs[0];
	if (!text)
		return false;

	matched = dowild(p, text, strs + idx);
	if (matched != WM_TRUE && where < 0 && matched != WM_ABORT_ALL) {
		for (;;) {
			if (*text == '\0') {
				if ((text = strs[idx++]) == NULL)
					return false;
				continue;
			}
			if (*text++ == '/') {
				matched = dowild(p, text, strs + idx);
				if (matched != WM_FALSE && matched != WM_ABORT_TO_STARSTAR)
					break;
			}
		}
	}
	return matched == WM_TRUE;
}

/* ---- matching a rule ------------------------------------------------------ */

/* True if rule r matches path (relative to the transfer root), as rsync's rule_matches(). */
static bool rule_matches(const struct rule *r, const char *path, bool is_dir)
{
	bool hit = !(r->flags & R_NEGATE);
	const unsigned char *strs[4];
	const char *name = path + (*path == '/');
	const char *pat = r->pattern;
	size_t n = 0;
	bool anchored = false;
	int where;

	if (!*name)
		return false;
	if (!r->slash_cnt && !(r->flags & R_WILD2)) {
		const char *slash = strrchr(name, '/');

		if (slash)
			name = slash + 1;
	} else if (r->flags & R_WILD2_PREFIX) {
		/* lets a leading "**" + "/" match at the start */
		strs[n++] = (const unsigned char *)"/";
	}
	strs[n++] = (const unsigned char *)name;
	if (is_dir) {
		/* lets a trailing "/" + "***" match the directory itself */
		if (r->flags & R_WILD3_SUFFIX)
			strs[n++] = (const unsigned char *)"/";
	} else if (r->flags & R_DIRECTORY) {
		return !hit;
	}
	strs[n] = NULL;

	if (*pat == '/') {
		anchored = true;
		pat++;
	}
	if (!anchored && r->slash_cnt && !(r->flags & R_WILD2))
		where = (int)r->slash_cnt + 1;
	else if (!anchored && !(r->flags & R_WILD2_PREFIX) && (r->flags & R_WILD2))
		where = -1;
	else
		where = 0;

	if (r->flags & R_WILD)
		return wildmatch_array(pat, strs, where) ? hit : !hit;
	/* a literal pattern: one string (the prefix/suffix cases imply R_WILD) */
	if (anchored)
		return strcmp(name, pat) == 0 ? hit : !hit;
	{
		size_t l1 = strlen(name), l2 = strlen(pat);

		if (l2 <= l1 && strcmp(name + (l1 - l2), pat) == 0
		    && (l1 == l2 || name[l1 - l2 - 1] == '/'))
			return hit;
	}
	return !hit;
}

/* True if rule r is in force on side, given --delete-excluded. */
static bool rule_applies(const struct xr_filters *f, const struct rule *r,
			 enum xr_filter_side side)
{
	unsigned sides = r->flags & R_SIDES;

	if (!sides && f->delete_excluded)
		sides = R_SENDER;
	if (!sides)
		return true;
	return (sides & (side == XR_SIDE_SENDER ? R_SENDER : R_RECEIVER)) != 0;
}

/* First matching rule in force on side decides; true if it is an exclude. */
bool xr_filters_excluded(const struct xr_filters *f, const char *path, bool is_dir,
			 enum xr_filter_side side)
{
	size_t i;

	if (!f || !path)
		return false;
	for (i = 0; i < f->n; i++) {
		const struct rule *r = &f->v[i];

		if (rule_applies(f, r, side) && rule_matches(r, path, is_dir))
			return !(r->flags & R_INCLUDE);
	}
	return false;
}

/* ---- the rule list -------------------------------------------------------- */

/* Returns an empty list, or NULL on ENOMEM. */
struct xr_filters *xr_filters_new(void)
{
	return calloc(1, sizeof(struct xr_filters));
}

/* Frees every rule of f, leaving it empty. */
static void clear_rules(struct xr_filters *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->v[i].pattern);
		free(f->v[i].text);
	}
	f->n = 0;
}

/* Frees f and all its rules; NULL is a no-op. */
void xr_filters_free(struct xr_filters *f)
{
	if (!f)
		return;
	clear_rules(f);
	free(f->v);
	free(f);
}

/* (Re)builds r->text, "<+|->[s][r][!] pattern[/]"; returns 0 or XR_ENOMEM. */
static int rule_make_text(const struct xr_filters *f, struct rule *r)
{
	unsigned sides = r->flags & R_SIDES;
	size_t plen = strlen(r->pattern);
	char *t, *o;

	if (!sides && f->delete_excluded)
		sides = R_SENDER;
	t = malloc(plen + 8);
	if (!t)
		return XR_ENOMEM;
	o = t;
	*o++ = (r->flags & R_INCLUDE) ? '+' : '-';
	if (sides & R_SENDER)
		*o++ = 's';
	if (sides & R_RECEIVER)
		*o++ = 'r';
	if (r->flags & R_NEGATE)
		*o++ = '!';
	*o++ = ' ';
	memcpy(o, r->pattern, plen);
	o += plen;
	if (r->flags & R_DIRECTORY)
		*o++ = '/';
	*o = '\0';
	free(r->text);
	r->text = t;
	return 0;
}

/*
 * Appends a rule with flags (R_INCLUDE, sides, R_NEGATE) and the pattern of
 * len bytes at pat; derives the pattern flags as rsync's add_rule().
 * Returns 0 or XR_ENOMEM.
 */
static int append_rule(struct xr_filters *f, unsigned flags, const char *pat, size_t len)
{
	struct rule r = {NULL, NULL, flags, 0};
	const char *cp;
	size_t i;

	if (len > 1 && pat[len - 1] == '/') {
		len--;
		r.flags |= R_DIRECTORY;
	}
	for (i = 0; i < len; i++)
		if (pat[i] == '/')
			r.slash_cnt++;
	r.pattern = malloc(len + 1);
	if (!r.pattern)
		return XR_ENOMEM;
	memcpy(r.pattern, pat, len);
	r.pattern[len] = '\0';
	if (strpbrk(r.pattern, "*[?")) {
		r.flags |= R_WILD;
		cp = strstr(r.pattern, "**");
		if (cp) {
			r.flags |= R_WILD2;
			if (cp == r.pattern)
				r.flags |= R_WILD2_PREFIX;
			if (len >= 3 && strcmp(r.pattern + len - 3, "***") == 0)
				r.flags |= R_WILD3_SUFFIX;
		}
	}
	if (rule_make_text(f, &r) < 0)
		goto fail;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		struct rule *v = realloc(f->v, cap * sizeof(*v));

		if (!v)
			goto fail;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = r;
	return 0;
fail:
	free(r.pattern);
	free(r.text);
	return XR_ENOMEM;
}

/* ---- parsing -------------------------------------------------------------- */

/*
 * If s starts with the long rule name word followed by whitespace, '_',
 * ',' or the end, returns the position of its last letter (or of the ','),
 * from where the modifier scan continues; else NULL.
 */
static const char *long_name(const char *s, const char *word)
{
	size_t len = strlen(word);

	if (strncmp(s, word, len) != 0)
		return NULL;
	if (isspace((unsigned char)s[len]) || s[len] == '_' || !s[len])
		return s + len - 1;
	if (s[len] == ',')
		return s + len;
	return NULL;
}

/* Reads the merge file named by the rule and adds its rules; returns as xr_filters_add(). */
static int merge_file(struct xr_filters *f, const char *name, unsigned flags, bool bare,
		      const struct parse_ctx *ctx)
{
	struct parse_ctx sub;
	FILE *fp;
	int ret;

	if (ctx->depth >= MERGE_DEPTH_MAX) {
		xr_error("%s: merge %s: merge files nested too deeply", ctx->origin, name);
		return XR_ESYNTAX;
	}
	sub.mode = bare ? MODE_BARE : MODE_FULL;
	sub.inherit = flags & (R_SIDES | R_INCLUDE);
	sub.depth = ctx->depth + 1;
	sub.origin = name;
	fp = fopen(name, "r");
	if (!fp) {
		xr_error("%s: open merge file %s: %s", ctx->origin, name, strerror(errno));
		return XR_EFILEIO;
	}
	ret = parse_file(f, fp, name, &sub);
	fclose(fp);
	return ret;
}

/* Reports an invalid modifier as rsync does; returns XR_ESYNTAX. */
static int bad_modifier(const struct parse_ctx *ctx, const char *rule, const char *at)
{
	xr_error("%s: invalid modifier '%c' at position %d in filter rule: %s", ctx->origin,
		 *at, (int)(at - rule), rule);
	return XR_ESYNTAX;
}

/* Reports a valid rsync rule form that xroad-replicate refuses; returns XR_EUNSUPPORTED. */
static int unsupported(const struct parse_ctx *ctx, const char *what, const char *rule)
{
	xr_error("%s: %s not supported: %s", ctx->origin, what, rule);
	return XR_EUNSUPPORTED;
}

/*
 * Parses one rule in MODE_FULL: the rule letter or long name, modifiers,
 * one ' ' or '_', then the pattern.  On success sets *flags, *pat, *kind
 * ('+', '-', '.' merge, '!' clear) and *bare (merge "-"/"+" modifier).
 * Returns 0, XR_ESYNTAX or XR_EUNSUPPORTED.
 */
static int parse_full(const char *rule, const struct parse_ctx *ctx, unsigned *flags,
		      const char **pat, int *kind, bool *bare)
{
	static const struct {
		const char *word;
		char ch;
	} names[] = {
		{"clear", '!'}, {"dir-merge", ':'}, {"exclude", '-'}, {"hide", 'H'},
		{"include", '+'}, {"merge", '.'}, {"protect", 'P'}, {"risk", 'R'},
		{"show", 'S'},
	};
	const char *s = rule;
	bool side_letter = false, is_merge;
	char ch = 0;
	size_t i;

	*flags = 0;
	*bare = false;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (*s == names[i].word[0]) {
			s = long_name(s, names[i].word);
			if (s)
				ch = names[i].ch;
			break;
		}
	}
	if (i == sizeof(names) / sizeof(names[0])) {
		ch = *s;
		if (s[1] == ',')
			s++;
	}
	switch (ch) {
	case '+':
		*flags |= R_INCLUDE;
		break;
	case '-':
	case '.':
	case '!':
		break;
	case 'S':
		*flags |= R_INCLUDE;
		/* FALLTHROUGH */
	case 'H':
		*flags |= R_SENDER;
		side_letter = true;
		break;
	case 'R':
		*flags |= R_INCLUDE;
		/* FALLTHROUGH */
	case 'P':
		*flags |= R_RECEIVER;
		side_letter = true;
		break;
	case ':':
		return unsupported(ctx, "per-directory merge rules (dir-merge, ':') are", rule);
	default:
		xr_error("%s: unknown filter rule: `%s'", ctx->origin, rule);
		return XR_ESYNTAX;
	}
	is_merge = ch == '.';
	while (ch != '!' && *++s && *s != ' ' && *s != '_') {
		switch (*s) {
		case '-':
		case '+':
			if (!is_merge || *bare)
				return bad_modifier(ctx, rule, s);
			*bare = true;
			if (*s == '+')
				*flags |= R_INCLUDE;
			break;
		case '!':
			if (is_merge)
				return bad_modifier(ctx, rule, s);
			*flags |= R_NEGATE;
			break;
		case 's':
		case 'r':
			if (side_letter)
				return bad_modifier(ctx, rule, s);
			*flags |= *s == 's' ? R_SENDER : R_RECEIVER;
			break;
		case '/':
			return unsupported(ctx, "the '/' modifier (match the absolute path) is",
					   rule);
		case 'x':
			return unsupported(ctx, "the 'x' modifier (xattr names) is", rule);
		case 'p':
			return unsupported(ctx, "the 'p' modifier (perishable) is", rule);
		case 'C':
			if (*bare || side_letter)
				return bad_modifier(ctx, rule, s);
			return unsupported(ctx, "the 'C' modifier (CVS ignore rules) is", rule);
		case 'e':
		case 'n':
		case 'w':
			if (!is_merge)
				return bad_modifier(ctx, rule, s);
			return unsupported(ctx, "the merge modifiers 'e', 'n' and 'w' are", rule);
		default:
			return bad_modifier(ctx, rule, s);
		}
	}
	if (*s)
		s++;
	if (ch == '!' && *s) {
		xr_error("%s: '!' rule has trailing characters: %s", ctx->origin, rule);
		return XR_ESYNTAX;
	}
	if (ch != '!' && !*s) {
		xr_error("%s: unexpected end of filter rule: %s", ctx->origin, rule);
		return XR_ESYNTAX;
	}
	*pat = s;
	*kind = ch == '!' || ch == '.' ? ch : ((*flags & R_INCLUDE) ? '+' : '-');
	return 0;
}

/* Parses and applies one rule text under ctx; returns as xr_filters_add(). */
static int add_rule_text(struct xr_filters *f, const char *rule, const struct parse_ctx *ctx)
{
	unsigned flags = 0;
	const char *pat = rule;
	int kind = 0, ret;
	bool bare = false;

	if (!*rule)
		return 0;
	switch (ctx->mode) {
	case MODE_FULL:
		ret = parse_full(rule, ctx, &flags, &pat, &kind, &bare);
		if (ret < 0)
			return ret;
		break;
	case MODE_OLD:
		flags = ctx->inherit & R_INCLUDE;
		if ((rule[0] == '-' || rule[0] == '+') && rule[1] == ' ') {
			flags = rule[0] == '+' ? R_INCLUDE : 0;
			pat = rule + 2;
		} else if (strcmp(rule, "!") == 0) {
			clear_rules(f);
			return 0;
		}
		if (!*pat) {
			xr_error("%s: unexpected end of filter rule: %s", ctx->origin, rule);
			return XR_ESYNTAX;
		}
		kind = (flags & R_INCLUDE) ? '+' : '-';
		break;
	default:
		flags = ctx->inherit & R_INCLUDE;
		kind = (flags & R_INCLUDE) ? '+' : '-';
		break;
	}
	if (kind == '!') {
		clear_rules(f);
		return 0;
	}
	if (ctx->inherit & R_SIDES) {
		if (flags & R_SIDES) {
			xr_error("%s: specified-side merge file contains specified-side filter: %s",
				 ctx->origin, rule);
			return XR_ESYNTAX;
		}
		flags |= ctx->inherit & R_SIDES;
	}
	if (kind == '.')
		return merge_file(f, pat, flags, bare, ctx);
	return append_rule(f, flags, pat, strlen(pat));
}

/* Parses one rule of kind 0, '+' or '-'; returns 0, XR_ESYNTAX, XR_EUNSUPPORTED, XR_EFILEIO. */
int xr_filters_add(struct xr_filters *f, int kind, const char *rule, const char *origin)
{
	struct parse_ctx ctx;

	ctx.origin = origin ? origin : "--filter";
	ctx.depth = 0;
	ctx.inherit = kind == '+' ? R_INCLUDE : 0;
	if (kind == 0) {
		ctx.mode = MODE_FULL;
	} else if (kind == '+' || kind == '-') {
		ctx.mode = MODE_OLD;
	} else {
		xr_error("%s: bad filter rule kind %d", ctx.origin, kind);
		return XR_ESYNTAX;
	}
	if (!f || !rule)
		return XR_ESYNTAX;
	return add_rule_text(f, rule, &ctx);
}

/*
 * Reads fp line by line as rsync's parse_filter_file(): '\n' and '\r' end a
 * line, empty lines and lines starting with ';' or '#' are skipped, each
 * other line is a rule under ctx, named "name:N" in messages.
 * Returns as xr_filters_add().
 */
static int parse_file(struct xr_filters *f, FILE *fp, const char *name,
		      const struct parse_ctx *ctx)
{
	struct parse_ctx line_ctx = *ctx;
	char *origin = NULL, *line = NULL;
	size_t len = 0, cap = 0;
	unsigned long lineno = 1;
	int ch, prev = 0, ret = 0;

	origin = malloc(strlen(name) + 24);
	/* zeroed: lets the static analyzer see the NUL-terminated rule text (no cost) */
	line = calloc(cap = 256, 1);
	if (!origin || !line) {
		ret = XR_ENOMEM;
		goto out;
	}
	line_ctx.origin = origin;
	for (;;) {
		ch = getc(fp);
		if (ch != EOF && ch != '\n' && ch != '\r') {
			if (len + 1 >= cap) {
				char *nl;

				if (cap >= LINE_MAX_LEN) {
					xr_error("%s:%lu: filter rule too long", name, lineno);
					ret = XR_ESYNTAX;
					goto out;
				}
				nl = realloc(line, cap * 2);
				if (!nl) {
					ret = XR_ENOMEM;
					goto out;
				}
				line = nl;
				cap *= 2;
			}
			line[len++] = (char)ch;
			prev = ch;
			continue;
		}
		line[len] = '\0';
		if (len && line[0] != ';' && line[0] != '#') {
			snprintf(origin, strlen(name) + 24, "%s:%lu", name, lineno);
			ret = add_rule_text(f, line, &line_ctx);
			if (ret < 0)
				goto out;
		}
		len = 0;
		if (ch == EOF)
			break;
		/* "\r\n" is one line end */
		if (ch == '\r' || prev != '\r')
			lineno++;
		prev = ch;
	}
	if (ferror(fp)) {
		xr_error("%s: read filter file: %s", name, strerror(errno));
		ret = XR_EFILEIO;
	}
out:
	free(origin);
	free(line);
	return ret;
}

/* Adds every rule of the file path ("-" = stdin); returns as xr_filters_add(). */
int xr_filters_add_file(struct xr_filters *f, int kind, const char *path)
{
	struct parse_ctx ctx;
	FILE *fp;
	int ret;

	if (!f || !path)
		return XR_ESYNTAX;
	ctx.depth = 0;
	ctx.origin = path;
	ctx.inherit = kind == '+' ? R_INCLUDE : 0;
	if (kind == 0) {
		ctx.mode = MODE_FULL;
	} else if (kind == '+' || kind == '-') {
		ctx.mode = MODE_OLD;
	} else {
		xr_error("%s: bad filter rule kind %d", path, kind);
		return XR_ESYNTAX;
	}
	if (strcmp(path, "-") == 0)
		return parse_file(f, stdin, "-", &ctx);
	fp = fopen(path, "r");
	if (!fp) {
		xr_error("%s: open filter file: %s", path, strerror(errno));
		return XR_EFILEIO;
	}
	ret = parse_file(f, fp, path, &ctx);
	fclose(fp);
	return ret;
}

/* Sets --delete-excluded and refreshes the canonical texts. */
void xr_filters_set_delete_excluded(struct xr_filters *f, bool on)
{
	size_t i;

	if (!f)
		return;
	f->delete_excluded = on;
	/* the canonical texts show the effective sides; on ENOMEM the old text stays */
	for (i = 0; i < f->n; i++)
		(void)rule_make_text(f, &f->v[i]);
}

/* Returns the number of rules. */
size_t xr_filters_count(const struct xr_filters *f)
{
	return f ? f->n : 0;
}

/* Returns rule i's canonical text, or NULL if i is out of range. */
const char *xr_filters_rule(const struct xr_filters *f, size_t i)
{
	if (!f || i >= f->n)
		return NULL;
	return f->v[i].text;
}

/* True if a proper ancestor of path is excluded for side (see filter.h). */
bool xr_filters_excluded_above(const struct xr_filters *f, const char *path,
			       enum xr_filter_side side)
{
	char buf[XR_PATH_MAX + 1];
	size_t len = strlen(path);

	if (!f)
		return false;
	if (len > XR_PATH_MAX)
		return true;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i < len; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (xr_filters_excluded(f, buf, true, side))
			return true;
		buf[i] = '/';
	}
	return false;
}

/* test_filter.c - rsync filter rules: wildmatch, patterns, rule lists, files, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xr/err.h"
#include "xr/filter.h"

/*
 * Every expected value in the tables below was produced by the real rsync
 * 3.5.0 (protocol 32): a scratch tree holding just the path (its parent
 * directories let through by "+ /parent/" rules ahead of the rule under
 * test), "rsync -rn --out-format=%n --exclude=PATTERN src/ dst/" for the
 * sender side, and "rsync -rnv --delete" with the path only in dst/ for the
 * receiver side (deleted = not protected).
 */

/* ---- pattern table: --exclude=PATTERN, one path ---------------------------- */

struct pattern_case {
	const char *pattern;
	const char *path;
	bool is_dir;
	bool excluded;
};

static const struct pattern_case pattern_cases[] = {
	{"foo", "foo", false, true},
	{"foo", "foo", true, true},
	{"foo", "a/foo", false, true},
	{"foo", "a/b/foo", true, true},
	{"foo", "foobar", false, false},
	{"foo", "xfoo", false, false},
	{"foo", "foo/bar", false, false},
	{"foo", "a/xfoo", false, false},
	{"foo/", "foo", true, true},
	{"foo/", "foo", false, false},
	{"foo/", "a/foo", true, true},
	{"foo/", "a/foo", false, false},
	{"foo/", "foo/bar", false, false},
	{"*/", "x", true, true},
	{"*/", "x", false, false},
	{"*/", "a/b", true, true},
	{"/foo", "foo", false, true},
	{"/foo", "foo", true, true},
	{"/foo", "a/foo", false, false},
	{"/foo", "foo/bar", false, false},
	{"/foo/", "foo", true, true},
	{"/foo/", "foo", false, false},
	{"/a/b", "a/b", false, true},
	{"/a/b", "x/a/b", false, false},
	{"/a/b/", "a/b", true, true},
	{"/a/b/", "a/b", false, false},
	{"/a/*", "a/x", false, true},
	{"/a/*", "a/x/y", false, false},
	{"/a/*", "b/a/x", false, false},
	{"/*", "x", false, true},
	{"/*", "a/x", false, false},
	{"/*/", "x", true, true},
	{"a/b", "a/b", false, true},
	{"a/b", "x/a/b", false, true},
	{"a/b", "xa/b", false, false},
	{"a/b", "a/b/c", false, false},
	{"a/b", "x/y/a/b", true, true},
	{"a/*", "a/x", false, true},
	{"a/*", "z/a/x", false, true},
	{"a/*", "a/x/y", false, false},
	{"a/*", "za/x", false, false},
	{"*/b", "a/b", false, true},
	{"*/b", "x/a/b", false, true},
	{"*/b", "b", false, false},
	{"a/b/", "x/a/b", true, true},
	{"a/b/", "x/a/b", false, false},
	{"a/*/c", "a/b/c", false, true},
	{"a/*/c", "a/b/d/c", false, false},
	{"a/*/c", "q/a/b/c", false, true},
	{"b/c", "a/b/c", false, true},
	{"a/c", "a/b/c", false, false},
	{"*", "x", false, true},
	{"*", "a/b", true, true},
	{"*.ini", "x.ini", false, true},
	{"*.ini", "d/x.ini", false, true},
	{"*.ini", "x.ini.bak", false, false},
	{"*.ini", ".ini", false, true},
	{"x*", "x", false, true},
	{"x*", "xyz", false, true},
	{"x*", "yx", false, false},
	{"*x*", "axb", false, true},
	{"a*b*c", "abc", false, true},
	{"a*b*c", "aXbYc", false, true},
	{"a*b*c", "aXbY", false, false},
	{"*.*", "noext", false, false},
	{"*.*", "a.b", false, true},
	{"?", "x", false, true},
	{"?", "xy", false, false},
	{"??", "xy", false, true},
	{"f?o", "foo", false, true},
	{"f?o", "fo", false, false},
	{"a?b", "a/b", false, false},
	{"/a?b", "a/b", false, false},
	{"*.?", "x.c", false, true},
	{"*.?", "x.cc", false, false},
	{"[abc]", "a", false, true},
	{"[abc]", "d", false, false},
	{"[a-c]x", "bx", false, true},
	{"[a-c]x", "dx", false, false},
	{"[!a-c]x", "dx", false, true},
	{"[!a-c]x", "ax", false, false},
	{"[^a-c]x", "dx", false, true},
	{"[^a-c]x", "bx", false, false},
	{"[]]x", "]x", false, true},
	{"[]a]x", "ax", false, true},
	{"[!]]x", "]x", false, false},
	{"[a-]x", "-x", false, true},
	{"[-a]x", "-x", false, true},
	{"[[:digit:]]*", "1abc", false, true},
	{"[[:digit:]]*", "abc", false, false},
	{"[[:alpha:]]", "q", false, true},
	{"[[:alpha:]]", "7", false, false},
	{"[[:upper:][:digit:]]", "Q", false, true},
	{"[[:upper:][:digit:]]", "q", false, false},
	{"[[:space:]]", " ", false, true},
	{"[[:punct:]]", ",", false, true},
	{"[[:xdigit:]]", "f", false, true},
	{"[[:xdigit:]]", "g", false, false},
	{"[[:lower:]]x", "ax", false, true},
	{"[[:alnum:]]x", "_x", false, false},
	{"[[:bogus:]]", "b", false, false},
	{"[a", "[a", false, false},
	{"a[/]b", "a/b", false, false},
	{"/a[/]b", "a/b", false, false},
	{"a[!a]b", "a/b", false, false},
	{"x[.]y", "x.y", false, true},
	{"\\*", "*", false, true},
	{"\\*", "x", false, false},
	{"a\\?", "a?", false, true},
	{"a\\?", "ab", false, false},
	{"\\[a]", "[a]", false, true},
	{"\\[a]", "a", false, false},
	{"[\\]]x", "]x", false, true},
	{"f\\oo", "foo", false, false},
	{"f\\oo", "f\\oo", false, true},
	{"f\\o*", "foo", false, true},
	{"*\\", "a\\", false, false},
	{"**", "x", false, true},
	{"**", "a/b/c", false, true},
	{"**/foo", "foo", false, true},
	{"**/foo", "a/foo", false, true},
	{"**/foo", "a/b/foo", true, true},
	{"**/foo", "a/foo/x", false, false},
	{"a/**", "a/x", false, true},
	{"a/**", "a/x/y", false, true},
	{"a/**", "a", true, false},
	{"a/**", "z/a/x", false, true},
	{"a/**/c", "a/c", false, false},
	{"a/**/c", "a/b/c", false, true},
	{"a/**/c", "a/b/d/c", false, true},
	{"a/**/c", "z/a/b/c", false, true},
	{"/a/**", "a/x/y", false, true},
	{"/a/**", "z/a/x", false, false},
	{"/a/**/c", "a/b/c", false, true},
	{"/a/**/c", "a/c", false, false},
	{"**c", "abc", false, true},
	{"**c", "a/b/c", false, true},
	{"x**", "xa/b", false, true},
	{"x**", "a/xb", false, true},
	{"x**", "a/xb/c", false, true},
	{"a**z", "a/b/z", false, true},
	{"a**z", "q/a/b/z", false, true},
	{"**.ini", "d/e/x.ini", false, true},
	{"/**.ini", "d/x.ini", false, true},
	{"**/b/*", "a/b/c", false, true},
	{"**/b/*", "b/c", false, true},
	{"**/b/*", "b/c/d", false, false},
	{"*/**", "a/b", false, true},
	{"*/**", "a", true, false},
	{"a*/**/z", "ab/c/z", false, true},
	{"a*/**/z", "x/ab/z", false, false},
	{"dir/***", "dir", true, true},
	{"dir/***", "dir", false, false},
	{"dir/***", "dir/x", false, true},
	{"dir/***", "dir/x/y", true, true},
	{"dir/***", "a/dir", true, true},
	{"dir/***", "a/dir/x", false, true},
	{"dir/***", "dirx", true, false},
	{"/dir/***", "dir", true, true},
	{"/dir/***", "a/dir", true, false},
	{"/dir/***", "dir/x/y", false, true},
	{"a/b/***", "a/b", true, true},
	{"a/b/***", "x/a/b", true, true},
	{"a/b/***", "a", true, false},
	{"***", "x", false, true},
	{"***", "a/b", true, true},
	{"/a/***/", "a/b", true, true},
	{"/a/***/", "a/b", false, false},
	{"/a/***/", "a", true, true},
	{"a***", "a", true, true},
	{"a***", "ab/c", false, true},
	{"/", "x", false, false},
	{".", "x", false, false},
	{".hidden", "a/.hidden", false, true},
	{"*~", "a/x~", false, true},
	{"/a//", "a", true, false},
	{"a//", "a", true, false},
	{" sp", " sp", false, true},
	{"!x", "!x", false, true},
	{"#x", "#x", false, true},
};

/* ---- rule lists: ":rule" (-f), "-:pattern" (--exclude), "+:pattern" (--include) */

struct list_case {
	const char *rules[4];
	const char *path;
	bool is_dir;
	bool delete_excluded;
	bool sender_excluded;
	bool receiver_excluded;
};

static const struct list_case list_cases[] = {
	{{":+ foo", ":- *", NULL}, "foo", false, false, false, false},
	{{":+ foo", ":- *", NULL}, "bar", false, false, true, true},
	{{":- *", ":+ foo", NULL}, "foo", false, false, true, true},
	{{":- foo", ":+ foo", NULL}, "foo", false, false, true, true},
	{{"+:*.ini", "-:*", NULL}, "x.ini", false, false, false, false},
	{{"+:*.ini", "-:*", NULL}, "x.txt", false, false, true, true},
	{{"+:*/", "-:*", NULL}, "d", true, false, false, false},
	{{":-! *.ini", NULL}, "x.ini", false, false, false, false},
	{{":-! *.ini", NULL}, "x.txt", false, false, true, true},
	{{":-! d/", NULL}, "f", false, false, true, true},
	{{":-! d/", NULL}, "d", true, false, false, false},
	{{":- foo", NULL}, "foo", false, false, true, true},
	{{":- foo", NULL}, "foo", false, true, true, false},
	{{":H foo", NULL}, "foo", false, false, true, false},
	{{":hide foo", NULL}, "foo", false, false, true, false},
	{{":S foo", ":H *", NULL}, "foo", false, false, false, false},
	{{":show foo", ":hide *", NULL}, "bar", false, false, true, false},
	{{":P foo", NULL}, "foo", false, false, false, true},
	{{":protect foo", NULL}, "foo", false, true, false, true},
	{{":R foo", ":P *", NULL}, "foo", false, false, false, false},
	{{":risk foo", ":P *", NULL}, "bar", false, false, false, true},
	{{":P *", ":R foo", NULL}, "foo", false, false, false, true},
	{{":-s foo", NULL}, "foo", false, false, true, false},
	{{":-r foo", NULL}, "foo", false, false, false, true},
	{{":-r foo", NULL}, "foo", false, true, false, true},
	{{":-,s foo", NULL}, "foo", false, false, true, false},
	{{":exclude,r foo", NULL}, "foo", false, false, false, true},
	{{":-sr foo", NULL}, "foo", false, false, true, true},
	{{":-sr foo", NULL}, "foo", false, true, true, true},
	{{":+s foo", ":- foo", NULL}, "foo", false, false, false, true},
	{{":+r foo", ":- foo", NULL}, "foo", false, false, true, false},
	{{":+ foo", ":- *", NULL}, "bar", false, true, true, false},
	{{":+ foo", ":- *", NULL}, "foo", false, true, false, false},
	{{":P foo", ":- foo", NULL}, "foo", false, true, true, true},
	{{":- foo", ":!", ":- bar", NULL}, "foo", false, false, false, false},
	{{":- foo", ":clear", ":- bar", NULL}, "bar", false, false, true, true},
	{{"-:foo", "-:!", "-:bar", NULL}, "foo", false, false, false, false},
	{{"-:+ foo", "-:*", NULL}, "foo", false, false, false, false},
	{{"+:- foo", "+:*", NULL}, "foo", false, false, true, true},
	{{"-:!foo", NULL}, "!foo", false, false, true, true},
	{{":-_foo", NULL}, "foo", false, false, true, true},
	{{":exclude_foo", NULL}, "foo", false, false, true, true},
	{{":-  foo", NULL}, " foo", false, false, true, true},
	{{":include,s foo", ":- *", NULL}, "foo", false, false, false, true},
	{{":- /conf.d/node.ini", NULL}, "conf.d/node.ini", false, false, true, true},
	{{":- /conf.d/node.ini", NULL}, "x/conf.d/node.ini", false, false, false, false},
	{{":+ /conf.d/", ":+ /conf.d/*.ini", ":- *", NULL}, "conf.d/a.ini", false, false,
	 false, false},
	{{":+ /conf.d/", ":+ /conf.d/*.ini", ":- *", NULL}, "conf.d/a.txt", false, false,
	 true, true},
};

/* Adds ":rule" (-f) or "-:pattern" / "+:pattern" (--exclude / --include). */
static int add_spec(struct xr_filters *f, const char *spec)
{
	if (spec[0] == ':')
		return xr_filters_add(f, 0, spec + 1, "--filter");
	return xr_filters_add(f, spec[0], spec + 2, "--filter");
}

/* ---- stderr capture, to check that messages name origin and cause ---------- */

struct capture {
	int saved;
	char path[64];
};

/* Redirects stderr into a temp file. */
static void capture_start(struct capture *c)
{
	int fd;

	strcpy(c->path, "/tmp/xr-filter-err-XXXXXX");
	fd = mkstemp(c->path);
	assert_true(fd >= 0);
	fflush(stderr);
	c->saved = dup(2);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
}

/* Restores stderr; returns what was written (malloc'd, NUL-terminated). */
static char *capture_end(struct capture *c)
{
	char *buf = calloc(1, 4096);
	FILE *fp;
	size_t n;

	assert_non_null(buf);
	fflush(stderr);
	assert_int_equal(dup2(c->saved, 2), 2);
	close(c->saved);
	fp = fopen(c->path, "r");
	assert_non_null(fp);
	n = fread(buf, 1, 4095, fp);
	buf[n] = '\0';
	fclose(fp);
	unlink(c->path);
	return buf;
}

/* ---- temp dir with rule files -------------------------------------------- */

struct tmpdir {
	char path[64];
	char *names[16];
	int n;
};

/* Writes name (inside td) with content; returns its full path (owned by td). */
static const char *td_write(struct tmpdir *td, const char *name, const char *content)
{
	char *full;
	FILE *fp;

	assert_true(td->n < 16);
	full = malloc(strlen(td->path) + strlen(name) + 2);
	assert_non_null(full);
	sprintf(full, "%s/%s", td->path, name);
	fp = fopen(full, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(content, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	td->names[td->n++] = full;
	return full;
}

static int td_setup(void **state)
{
	struct tmpdir *td = calloc(1, sizeof(*td));

	if (!td)
		return -1;
	strcpy(td->path, "/tmp/xr-filter-XXXXXX");
	if (!mkdtemp(td->path)) {
		free(td);
		return -1;
	}
	*state = td;
	return 0;
}

static int td_teardown(void **state)
{
	struct tmpdir *td = *state;
	int i;

	for (i = 0; i < td->n; i++) {
		unlink(td->names[i]);
		free(td->names[i]);
	}
	rmdir(td->path);
	free(td);
	return 0;
}

/* Returns pre + the temp dir + post (malloc'd). */
static char *td_fmt(const struct tmpdir *td, const char *pre, const char *post)
{
	char *s = malloc(strlen(pre) + strlen(td->path) + strlen(post) + 1);

	assert_non_null(s);
	sprintf(s, "%s%s%s", pre, td->path, post);
	return s;
}

/* Asserts the sender/receiver verdicts for a regular file path. */
static void expect(const struct xr_filters *f, const char *path, bool snd, bool rcv)
{
	if (xr_filters_excluded(f, path, false, XR_SIDE_SENDER) != snd
	    || xr_filters_excluded(f, path, false, XR_SIDE_RECEIVER) != rcv)
		fail_msg("'%s': expected sender %d receiver %d, got %d %d", path, snd, rcv,
			 xr_filters_excluded(f, path, false, XR_SIDE_SENDER),
			 xr_filters_excluded(f, path, false, XR_SIDE_RECEIVER));
}

/* ---- tests --------------------------------------------------------------- */

/* xr_wildmatch on its own (rsync's wildmatch test vectors, a selection). */
static void test_wildmatch(void **state)
{
	static const struct {
		const char *p, *t;
		bool m;
	} w[] = {
		{"foo", "foo", true},	    {"foo", "bar", false},     {"", "", true},
		{"???", "foo", true},	    {"??", "foo", false},      {"*", "foo", true},
		{"f*", "foo", true},	    {"*f", "foo", false},      {"*foo*", "foo", true},
		{"*ob*a*r*", "foobar", true}, {"*ab", "aaaaaaabababab", true},
		{"foo\\*", "foo*", true},   {"foo\\*bar", "foobar", false},
		{"f\\\\oo", "f\\oo", true}, {"*[al]?", "ball", true}, {"[ten]", "ten", false},
		{"**[!te]", "ten", true},   {"**[!ten]", "ten", false}, {"t[a-g]n", "ten", true},
		{"t[!a-g]n", "ten", false}, {"t[!a-g]n", "ton", true}, {"t[^a-g]n", "ton", true},
		{"a[]]b", "a]b", true},	    {"a[]-]b", "a-b", true},   {"a[]-]b", "a]b", true},
		{"a[]-]b", "aab", false},   {"a[]a-]b", "aab", true},  {"]", "]", true},
		{"foo*bar", "foo/baz/bar", false}, {"foo**bar", "foo/baz/bar", true},
		{"foo?bar", "foo/bar", false}, {"foo[/]bar", "foo/bar", false},
		{"foo/*/bar", "foo/bba/arr/bar", false}, {"foo/**/bar", "foo/bba/arr/bar", true},
		{"**/foo", "XXX/foo", true}, {"*/foo", "bar/baz/foo", false},
		{"[[:alpha:]][[:digit:]][[:upper:]]", "a1B", true},
		{"[[:digit:][:upper:][:space:]]", "a", false},
		{"[[:digit:][:upper:][:space:]]", " ", true}, {"[[:digit:]", "1", false},
		{"[[:xdigit:]]", "A", true}, {"[a-c[:digit:]x-z]", "5", true},
		{"[a-c[:digit:]x-z]", "q", false}, {"[\\-_]", "-", true}, {"[\\]]", "]", true},
		{"[\\]]", "\\", false},	    {"[[]", "[", true},	       {"[", "[", false},
		{"*X*i", "abcXdefXghi", true},
		{"-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
		 "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1", true},
		{"XXX/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
		 "XXX/adobe/courier/bold/o/normal//12/120/75/75/X/70/iso8859/1", false},
		{"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt", true},
		{"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz", false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (xr_wildmatch(w[i].p, w[i].t) != w[i].m)
			fail_msg("wildmatch(\"%s\", \"%s\") != %d", w[i].p, w[i].t, w[i].m);
}

/* The pattern table: each pattern as --exclude, checked on both sides. */
static void test_pattern_table(void **state)
{
	size_t i, n = sizeof(pattern_cases) / sizeof(pattern_cases[0]);

	(void)state;
	assert_true(n >= 120);
	for (i = 0; i < n; i++) {
		const struct pattern_case *c = &pattern_cases[i];
		struct xr_filters *f = xr_filters_new();
		bool s, r;

		assert_non_null(f);
		assert_int_equal(xr_filters_add(f, '-', c->pattern, "--exclude"), 0);
		assert_int_equal(xr_filters_count(f), 1);
		s = xr_filters_excluded(f, c->path, c->is_dir, XR_SIDE_SENDER);
		r = xr_filters_excluded(f, c->path, c->is_dir, XR_SIDE_RECEIVER);
		xr_filters_free(f);
		if (s != c->excluded || r != c->excluded)
			fail_msg("case %zu: --exclude='%s' on '%s'%s: expected %d, got %d/%d", i,
				 c->pattern, c->path, c->is_dir ? " (dir)" : "", c->excluded, s, r);
	}
}

/* Rule lists: first match wins, sides, --delete-excluded, clear, old prefixes. */
static void test_rule_lists(void **state)
{
	size_t i, j, n = sizeof(list_cases) / sizeof(list_cases[0]);

	(void)state;
	for (i = 0; i < n; i++) {
		const struct list_case *c = &list_cases[i];
		struct xr_filters *f = xr_filters_new();
		bool s, r;

		assert_non_null(f);
		for (j = 0; c->rules[j]; j++)
			assert_int_equal(add_spec(f, c->rules[j]), 0);
		xr_filters_set_delete_excluded(f, c->delete_excluded);
		s = xr_filters_excluded(f, c->path, c->is_dir, XR_SIDE_SENDER);
		r = xr_filters_excluded(f, c->path, c->is_dir, XR_SIDE_RECEIVER);
		xr_filters_free(f);
		if (s != c->sender_excluded || r != c->receiver_excluded)
			fail_msg("list case %zu ('%s' ...) on '%s': expected %d/%d, got %d/%d", i,
				 c->rules[0], c->path, c->sender_excluded, c->receiver_excluded,
				 s, r);
	}
}

/* Order does not matter for --delete-excluded, and empty rules add nothing. */
static void test_delete_excluded_and_empty(void **state)
{
	struct xr_filters *f = xr_filters_new();

	(void)state;
	assert_non_null(f);
	assert_int_equal(xr_filters_add(f, 0, "", "--filter"), 0);
	assert_int_equal(xr_filters_add(f, '-', "", "--exclude"), 0);
	assert_int_equal(xr_filters_count(f), 0);
	assert_false(xr_filters_excluded(f, "foo", false, XR_SIDE_SENDER));
	xr_filters_set_delete_excluded(f, true);
	assert_int_equal(xr_filters_add(f, 0, "- foo", "--filter"), 0);
	assert_int_equal(xr_filters_add(f, 0, "P bar", "--filter"), 0);
	expect(f, "foo", true, false);
	expect(f, "bar", false, true);
	assert_string_equal(xr_filters_rule(f, 0), "-s foo");
	xr_filters_set_delete_excluded(f, false);
	expect(f, "foo", true, true);
	assert_string_equal(xr_filters_rule(f, 0), "- foo");
	assert_string_equal(xr_filters_rule(f, 1), "-r bar");
	assert_null(xr_filters_rule(f, 2));
	assert_false(xr_filters_excluded(f, "", false, XR_SIDE_SENDER));
	xr_filters_free(f);
}

/* merge / "." files, with side and "-"/"+" modifiers, nesting and "!" inside. */
static void test_merge_files(void **state)
{
	struct tmpdir *td = *state;
	struct xr_filters *f;
	char *rule, *outer;

	td_write(td, "keep.rules", "# comment\n; comment\n\n+ keep\n- *.bak\r\n- /top\n");
	td_write(td, "side.rules", "- foo\n");
	td_write(td, "bare.rules", "+ foo\n*.o\n");
	td_write(td, "inc.rules", "foo\n");
	td_write(td, "inner.rules", "+ foo\n");
	td_write(td, "clear.rules", "!\n- bar\n");
	outer = td_fmt(td, "merge ", "/inner.rules\n- *\n");
	td_write(td, "outer.rules", outer);
	free(outer);

	f = xr_filters_new();
	assert_non_null(f);
	rule = td_fmt(td, "merge ", "/keep.rules");
	assert_int_equal(xr_filters_add(f, 0, rule, "--filter"), 0);
	free(rule);
	assert_int_equal(xr_filters_count(f), 3);
	expect(f, "keep", false, false);
	expect(f, "x.bak", true, true);
	expect(f, "top", true, true);
	expect(f, "d/top", false, false);
	expect(f, "other", false, false);
	assert_string_equal(xr_filters_rule(f, 0), "+ keep");
	assert_string_equal(xr_filters_rule(f, 2), "- /top");
	xr_filters_free(f);

	f = xr_filters_new();
	rule = td_fmt(td, ". ", "/keep.rules");
	assert_int_equal(xr_filters_add(f, 0, rule, "--filter"), 0);
	free(rule);
	expect(f, "x.bak", true, true);
	expect(f, "other", false, false);
	xr_filters_free(f);

	f = xr_filters_new();
	rule = td_fmt(td, "merge,s ", "/side.rules");
	assert_int_equal(xr_filters_add(f, 0, rule, "--filter"), 0);
	free(rule);
	expect(f, "foo", true, false);
	assert_string_equal(xr_filters_rule(f, 0), "-s foo");
	xr_filters_free(f);

	f = xr_filters_new();
	rule = td_fmt(td, "merge,r ", "/side.rules");
	assert_int_equal(xr_filters_add(f, 0, rule, "--filter"), 0);
	free(rule);
	expect(f, "foo", false, true);
	xr_filters_free(f);

	f = xr_filters_new();
	rule = td_fmt(td, "merge,- ", "/bare.rules");
	assert_int_equal(xr_filters_add(f, 0, rule, "--filter"), 0);
	free(rule);
	expect(f, "+ foo", true, true);
	expect(f, "foo", false, false);
	expect(f, "x.o", true, true);
	assert_string_equal(xr_filters_rule(f, 0), "- + foo");
	xr_filters_free(f);

	f = xr_filters_new();
	rule = td_fmt(td, "merge,+ ", "/inc.rules");
	assert_int_equal(xr_filters_add(f, 0, rule, "--filter"), 0);
	assert_int_equal(xr_filters_add(f, 0, "- *", "--filter"), 0);
	free(rule);
	expect(f, "foo", false, false);
	expect(f, "bar", true, true);
	xr_filters_free(f);

	f = xr_filters_new();
	rule = td_fmt(td, "merge ", "/outer.rules");
	assert_int_equal(xr_filters_add(f, 0, rule, "--filter"), 0);
	free(rule);
	assert_int_equal(xr_filters_count(f), 2);
	expect(f, "foo", false, false);
	expect(f, "bar", true, true);
	xr_filters_free(f);

	f = xr_filters_new();
	assert_int_equal(xr_filters_add(f, 0, "- foo", "--filter"), 0);
	rule = td_fmt(td, "merge ", "/clear.rules");
	assert_int_equal(xr_filters_add(f, 0, rule, "--filter"), 0);
	free(rule);
	assert_int_equal(xr_filters_count(f), 1);
	expect(f, "foo", false, false);
	expect(f, "bar", true, true);
	xr_filters_free(f);

	/* the same files through xr_filters_add_file(kind 0) */
	f = xr_filters_new();
	rule = td_fmt(td, "", "/outer.rules");
	assert_int_equal(xr_filters_add_file(f, 0, rule), 0);
	free(rule);
	expect(f, "foo", false, false);
	expect(f, "bar", true, true);
	xr_filters_free(f);
}

/* --exclude-from / --include-from: comments, CR, "+ "/"- " prefixes, "!". */
static void test_exclude_from(void **state)
{
	struct tmpdir *td = *state;
	struct xr_filters *f;
	const char *x1, *x2, *i1, *sp, *crlf;

	x1 = td_write(td, "x1.list", "# c\n; c\n\nfoo\r\n+ keep\n*.tmp\n");
	x2 = td_write(td, "x2.list", "foo\n!\nbar\n");
	i1 = td_write(td, "i1.list", "*.ini\n- *.txt\n");
	sp = td_write(td, "sp.list", " \n");
	crlf = td_write(td, "crlf.list", "a\r\nb\rc\r\n\r\n#x\r\n");

	f = xr_filters_new();
	assert_non_null(f);
	assert_int_equal(xr_filters_add_file(f, '-', x1), 0);
	assert_int_equal(xr_filters_count(f), 3);
	expect(f, "foo", true, true);
	expect(f, "keep", false, false);
	expect(f, "a.tmp", true, true);
	expect(f, "x", false, false);
	expect(f, "#", false, false);
	xr_filters_free(f);

	f = xr_filters_new();
	assert_int_equal(xr_filters_add_file(f, '-', x2), 0);
	expect(f, "foo", false, false);
	expect(f, "bar", true, true);
	xr_filters_free(f);

	f = xr_filters_new();
	assert_int_equal(xr_filters_add_file(f, '+', i1), 0);
	assert_int_equal(xr_filters_add(f, '-', "*", "--exclude"), 0);
	expect(f, "a.ini", false, false);
	expect(f, "a.txt", true, true);
	expect(f, "z", true, true);
	assert_string_equal(xr_filters_rule(f, 0), "+ *.ini");
	assert_string_equal(xr_filters_rule(f, 1), "- *.txt");
	xr_filters_free(f);

	/* a line of spaces is a pattern in an exclude list */
	f = xr_filters_new();
	assert_int_equal(xr_filters_add_file(f, '-', sp), 0);
	expect(f, " ", true, true);
	expect(f, "x", false, false);
	xr_filters_free(f);

	/* '\r' ends a line as '\n' does */
	f = xr_filters_new();
	assert_int_equal(xr_filters_add_file(f, '-', crlf), 0);
	assert_int_equal(xr_filters_count(f), 3);
	expect(f, "a", true, true);
	expect(f, "b", true, true);
	expect(f, "c", true, true);
	xr_filters_free(f);
}

/* Path "-" reads standard input. */
static void test_stdin(void **state)
{
	struct tmpdir *td = *state;
	struct xr_filters *f = xr_filters_new();
	const char *list = td_write(td, "stdin.list", "- foo\n+ bar\n*\n");
	int fd = open(list, O_RDONLY), saved = dup(0);

	assert_non_null(f);
	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(dup2(fd, 0), 0);
	close(fd);
	assert_int_equal(xr_filters_add_file(f, '-', "-"), 0);
	assert_int_equal(dup2(saved, 0), 0);
	close(saved);
	clearerr(stdin);
	assert_int_equal(xr_filters_count(f), 3);
	expect(f, "foo", true, true);
	expect(f, "bar", false, false);
	expect(f, "baz", true, true);
	xr_filters_free(f);
}

/* Bad and unsupported rules: return code and a message naming origin and cause. */
static void test_errors(void **state)
{
	static const struct {
		int kind;
		const char *rule;
		int ret;
		const char *msg;
	} e[] = {
		{0, "-", XR_ESYNTAX, "unexpected end of filter rule"},
		{0, "- ", XR_ESYNTAX, "unexpected end of filter rule"},
		{0, "merge", XR_ESYNTAX, "unexpected end of filter rule"},
		{'-', "- ", XR_ESYNTAX, "unexpected end of filter rule"},
		{0, "x foo", XR_ESYNTAX, "unknown filter rule"},
		{0, "excludefoo", XR_ESYNTAX, "unknown filter rule"},
		{0, " - foo", XR_ESYNTAX, "unknown filter rule"},
		{0, "Pr foo", XR_ESYNTAX, "invalid modifier 'r'"},
		{0, "Hs foo", XR_ESYNTAX, "invalid modifier 's'"},
		{0, "-q foo", XR_ESYNTAX, "invalid modifier 'q'"},
		{0, "-e foo", XR_ESYNTAX, "invalid modifier 'e'"},
		{0, "PC", XR_ESYNTAX, "invalid modifier 'C'"},
		{0, "merge,! x", XR_ESYNTAX, "invalid modifier '!'"},
		{0, "merge,-+ x", XR_ESYNTAX, "invalid modifier '+'"},
		{0, "+- foo", XR_ESYNTAX, "invalid modifier '-'"},
		{0, "! ", XR_ESYNTAX, "trailing characters"},
		{0, "clear x", XR_ESYNTAX, "trailing characters"},
		{0, ": .rsync-filter", XR_EUNSUPPORTED, "dir-merge"},
		{0, "dir-merge .rsync-filter", XR_EUNSUPPORTED, "dir-merge"},
		{0, "-/ foo", XR_EUNSUPPORTED, "'/' modifier"},
		{0, "-x foo", XR_EUNSUPPORTED, "'x' modifier"},
		{0, "-p foo", XR_EUNSUPPORTED, "'p' modifier"},
		{0, "-C", XR_EUNSUPPORTED, "'C' modifier"},
		{0, "+C foo", XR_EUNSUPPORTED, "'C' modifier"},
		{0, "merge,e x", XR_EUNSUPPORTED, "'e', 'n' and 'w'"},
		{0, "merge,n x", XR_EUNSUPPORTED, "'e', 'n' and 'w'"},
		{0, "merge,w x", XR_EUNSUPPORTED, "'e', 'n' and 'w'"},
		{0, "merge /nonexistent/xr-filter", XR_EFILEIO, "No such file or directory"},
		{'x', "foo", XR_ESYNTAX, "bad filter rule kind"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		struct xr_filters *f = xr_filters_new();
		struct capture cap;
		char *out;
		int ret;

		assert_non_null(f);
		capture_start(&cap);
		ret = xr_filters_add(f, e[i].kind, e[i].rule, "--filter");
		out = capture_end(&cap);
		if (ret != e[i].ret || !strstr(out, "--filter") || !strstr(out, e[i].msg))
			fail_msg("rule '%s': got %d (want %d), message \"%s\" (want \"%s\")",
				 e[i].rule, ret, e[i].ret, out, e[i].msg);
		assert_int_equal(xr_filters_count(f), 0);
		free(out);
		xr_filters_free(f);
	}
}

/* Errors inside files name "file:line"; a missing file is XR_EFILEIO. */
static void test_file_errors(void **state)
{
	struct tmpdir *td = *state;
	struct xr_filters *f = xr_filters_new();
	const char *bad = td_write(td, "bad.rules", "# ok\n- foo\r\n\n+ bar\nbogus rule\n");
	const char *side = td_write(td, "side2.rules", "- foo\n-r bar\n");
	const char *self = td_write(td, "self.rules", "merge self.rules\n");
	char want[128], *out, *rule;
	struct capture cap;
	int ret, cwd;

	assert_non_null(f);
	capture_start(&cap);
	ret = xr_filters_add_file(f, 0, bad);
	out = capture_end(&cap);
	assert_int_equal(ret, XR_ESYNTAX);
	snprintf(want, sizeof(want), "%s:5: unknown filter rule", bad);
	if (!strstr(out, want))
		fail_msg("message \"%s\" lacks \"%s\"", out, want);
	free(out);

	capture_start(&cap);
	rule = td_fmt(td, "merge,s ", "/side2.rules");
	ret = xr_filters_add(f, 0, rule, "--filter");
	free(rule);
	out = capture_end(&cap);
	assert_int_equal(ret, XR_ESYNTAX);
	snprintf(want, sizeof(want), "%s:2: specified-side merge file", side);
	if (!strstr(out, want))
		fail_msg("message \"%s\" lacks \"%s\"", out, want);
	free(out);

	/* a merge file that merges itself stops at the nesting limit */
	cwd = open(".", O_RDONLY | O_DIRECTORY);
	assert_true(cwd >= 0);
	assert_int_equal(chdir(td->path), 0);
	capture_start(&cap);
	ret = xr_filters_add_file(f, 0, self);
	out = capture_end(&cap);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	assert_int_equal(ret, XR_ESYNTAX);
	assert_non_null(strstr(out, "nested too deeply"));
	free(out);

	capture_start(&cap);
	ret = xr_filters_add_file(f, '-', "/nonexistent/xr-filter.list");
	out = capture_end(&cap);
	assert_int_equal(ret, XR_EFILEIO);
	assert_non_null(strstr(out, "/nonexistent/xr-filter.list"));
	free(out);
	xr_filters_free(f);
}

/* Canonical texts: the expected strings, and a rebuild from them behaves the same. */
static void test_canonical(void **state)
{
	static const struct {
		int kind;
		const char *rule, *canon;
	} c[] = {
		{0, "- foo", "- foo"},		{0, "+ foo", "+ foo"},
		{0, "exclude foo/", "- foo/"},	{0, "include /a/**", "+ /a/**"},
		{0, "P foo", "-r foo"},		{0, "protect foo", "-r foo"},
		{0, "R foo", "+r foo"},		{0, "risk foo", "+r foo"},
		{0, "H foo", "-s foo"},		{0, "hide foo", "-s foo"},
		{0, "S foo", "+s foo"},		{0, "show foo", "+s foo"},
		{0, "-! *.ini", "-! *.ini"},	{0, "-!rs x", "-sr! x"},
		{0, "-,s foo", "-s foo"},	{0, "exclude,r foo", "-r foo"},
		{0, "-_foo", "- foo"},		{0, "-  foo", "-  foo"},
		{0, "- _x", "- _x"},		{0, "- a//", "- a//"},
		{0, "- /", "- /"},		{0, "+ dir/***", "+ dir/***"},
		{'-', "foo", "- foo"},		{'-', "+ foo", "+ foo"},
		{'+', "foo", "+ foo"},		{'+', "- foo", "- foo"},
		{'-', "!foo", "- !foo"},	{'-', "- - x", "- - x"},
		{'-', "a\nb", "- a\nb"},	{'-', "[!a]\\*", "- [!a]\\*"},
	};
	static const char *const paths[] = {
		"foo", "foo/bar", "a/foo", "x.ini", "x", "a", "a/b", "dir", "dir/x", " foo",
		"_x", "!foo", "- x", "+ foo", "a\nb", "b*", "a/**",
	};
	struct xr_filters *f = xr_filters_new(), *g;
	size_t i, k;
	int d, side;

	(void)state;
	assert_non_null(f);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		assert_int_equal(xr_filters_add(f, c[i].kind, c[i].rule, "--filter"), 0);
		if (strcmp(xr_filters_rule(f, i), c[i].canon) != 0)
			fail_msg("'%s' -> '%s', want '%s'", c[i].rule, xr_filters_rule(f, i),
				 c[i].canon);
	}
	/* every pattern of the table, too */
	for (k = 0; k < sizeof(pattern_cases) / sizeof(pattern_cases[0]); k++)
		assert_int_equal(xr_filters_add(f, '-', pattern_cases[k].pattern, "t"), 0);
	for (d = 0; d < 2; d++) {
		xr_filters_set_delete_excluded(f, d);
		g = xr_filters_new();
		assert_non_null(g);
		for (i = 0; i < xr_filters_count(f); i++)
			assert_int_equal(xr_filters_add(g, 0, xr_filters_rule(f, i), "t"), 0);
		assert_int_equal(xr_filters_count(g), xr_filters_count(f));
		for (i = 0; i < xr_filters_count(f); i++)
			assert_string_equal(xr_filters_rule(g, i), xr_filters_rule(f, i));
		/* rule by rule: each rule alone decides the same on both lists */
		for (i = 0; i < xr_filters_count(f); i++) {
			struct xr_filters *a = xr_filters_new(), *b = xr_filters_new();

			assert_int_equal(xr_filters_add(a, 0, xr_filters_rule(f, i), "t"), 0);
			assert_int_equal(xr_filters_add(b, 0, xr_filters_rule(g, i), "t"), 0);
			for (k = 0; k < sizeof(paths) / sizeof(paths[0]); k++)
				for (side = 0; side < 2; side++)
					assert_int_equal(
						xr_filters_excluded(a, paths[k], k & 1,
								    (enum xr_filter_side)side),
						xr_filters_excluded(b, paths[k], k & 1,
								    (enum xr_filter_side)side));
			xr_filters_free(a);
			xr_filters_free(b);
		}
		xr_filters_free(g);
	}
	/* "-!rs x": both sides, negated */
	g = xr_filters_new();
	assert_int_equal(xr_filters_add(g, 0, "-!rs x", "t"), 0);
	assert_true(xr_filters_excluded(g, "y", false, XR_SIDE_SENDER));
	assert_true(xr_filters_excluded(g, "y", false, XR_SIDE_RECEIVER));
	assert_false(xr_filters_excluded(g, "x", false, XR_SIDE_RECEIVER));
	xr_filters_free(g);
	xr_filters_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wildmatch),
		cmocka_unit_test(test_pattern_table),
		cmocka_unit_test(test_rule_lists),
		cmocka_unit_test(test_delete_excluded_and_empty),
		cmocka_unit_test_setup_teardown(test_merge_files, td_setup, td_teardown),
		cmocka_unit_test_setup_teardown(test_exclude_from, td_setup, td_teardown),
		cmocka_unit_test_setup_teardown(test_stdin, td_setup, td_teardown),
		cmocka_unit_test(test_errors),
		cmocka_unit_test_setup_teardown(test_file_errors, td_setup, td_teardown),
		cmocka_unit_test(test_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

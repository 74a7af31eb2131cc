/*
 * catalog.c - every test of every suite, as the first worker listed them.
 *
 * A suite may hold a million tests and the manager must stay under a few
 * hundred bytes per test, so nothing here is a pointer per test: strings
 * go into one arena and are named by 32-bit offsets, file names and tag
 * lists are interned (a suite has few files and many tests), and a test
 * is a 24-byte record found by its index. The list hash is recomputed
 * from the pieces as they arrive, so a lost or mangled piece is caught
 * before any test runs.
 *
 * It must never trust a piece: every field is checked, and a piece out
 * of order is an error, not a guess.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

struct cat_suite {
	uint32_t		 path;		/* arena offset */
	uint32_t		 first;		/* global index of its first test */
	size_t			 count;		/* tests received */
	struct sha256_ctx	*sha;		/* until the suite ends */
	char			 hash[SHA256_HEX_LEN + 1];
	int			 ended;
};

struct catalog {
	char			*arena;
	size_t			 alen, acap;
	uint32_t		*itab;		/* interned offsets, open addressing */
	size_t			 icap, icount;
	struct cat_test		*tests;
	size_t			 ntests, tcap;
	struct cat_suite	*suites;
	uint16_t		 nsuites;
};

struct catalog *
cat_new(void)
{
	struct catalog *c = xcalloc(1, sizeof *c);

	/* Offset 0 is the empty string, so "no string" never needs a test. */
	c->acap = 4096;
	c->arena = xmalloc(c->acap);
	c->arena[0] = '\0';
	c->alen = 1;
	return c;
}

void
cat_free(struct catalog *c)
{
	uint16_t s;
	char hex[SHA256_HEX_LEN + 1];

	if (c == NULL)
		return;
	for (s = 0; s < c->nsuites; s++)
		if (c->suites[s].sha != NULL)
			sha256_finish_hex(c->suites[s].sha, hex);
	free(c->suites);
	free(c->tests);
	free(c->itab);
	free(c->arena);
	free(c);
}

static uint32_t
cat_put(struct catalog *c, const char *p, size_t len)
{
	uint32_t off;

	if (c->alen + len + 1 > UINT32_MAX - 1)
		fatalx("catalog: more than 4 GiB of test names");
	while (c->alen + len + 1 > c->acap) {
		c->acap *= 2;
		c->arena = xreallocarray(c->arena, 1, c->acap);
	}
	off = (uint32_t)c->alen;
	memcpy(c->arena + c->alen, p, len);
	c->arena[c->alen + len] = '\0';
	c->alen += len + 1;
	return off;
}

static uint32_t
cat_hash_str(const char *p, size_t len)
{
	uint32_t h = 2166136261u;	/* FNV-1a: short strings, no attacker */

	while (len-- > 0)
		h = (h ^ (unsigned char)*p++) * 16777619u;
	return h;
}

static void
cat_intern_grow(struct catalog *c)
{
	uint32_t *old = c->itab, off;
	size_t oldcap = c->icap, i, j;

	c->icap = oldcap == 0 ? 64 : oldcap * 2;
	c->itab = xcalloc(c->icap, sizeof *c->itab);
	for (i = 0; i < oldcap; i++) {
		if ((off = old[i]) == 0)
			continue;
		j = cat_hash_str(c->arena + off, strlen(c->arena + off)) &
		    (c->icap - 1);
		while (c->itab[j] != 0)
			j = (j + 1) & (c->icap - 1);
		c->itab[j] = off;
	}
	free(old);
}

/* The one copy of a string many tests share (file names, tag lists). */
static uint32_t
cat_intern(struct catalog *c, const char *p, size_t len)
{
	size_t j;
	uint32_t off;

	if (len == 0)
		return 0;
	if ((c->icount + 1) * 2 > c->icap)
		cat_intern_grow(c);
	j = cat_hash_str(p, len) & (c->icap - 1);
	while ((off = c->itab[j]) != 0) {
		if (strncmp(c->arena + off, p, len) == 0 &&
		    c->arena[off + len] == '\0')
			return off;
		j = (j + 1) & (c->icap - 1);
	}
	off = cat_put(c, p, len);
	c->itab[j] = off;
	c->icount++;
	return off;
}

uint16_t
cat_suite_add(struct catalog *c, const char *path)
{
	struct cat_suite *s;

	if (c->nsuites == UINT16_MAX)
		fatalx("catalog: too many suites");
	c->suites = xreallocarray(c->suites, c->nsuites + 1, sizeof *c->suites);
	s = &c->suites[c->nsuites];
	memset(s, 0, sizeof *s);
	s->path = cat_put(c, path, strlen(path));
	s->first = (uint32_t)c->ntests;
	s->sha = sha256_new();
	return c->nsuites++;
}

/* "a,b,c" from a JSON array of strings; CAT_NONE when empty. */
static int
cat_tags(struct catalog *c, json_t *arr, uint32_t *out)
{
	char buf[1024];
	size_t i, n = 0, len;
	json_t *v;

	*out = CAT_NONE;
	if (arr == NULL || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return -1;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return -1;
		len = json_string_length(v);
		if (n + len + 2 > sizeof buf)
			return -1;
		if (n > 0)
			buf[n++] = ',';
		memcpy(buf + n, json_string_value(v), len);
		n += len;
	}
	if (n > 0)
		*out = cat_intern(c, buf, n);
	return 0;
}

/* group (a string) and its strategy; serial (a boolean). */
static int
cat_group(struct catalog *c, struct cat_test *t, json_t *e)
{
	static const char *const words[] = { "free", "serial",
	    "isolated_free", "isolated_serial" };
	json_t *g = json_object_get(e, "group");
	const char *st = json_get_str(e, "strategy", "free");
	size_t i;

	t->group = CAT_NONE;
	if (json_is_true(json_object_get(e, "serial")))
		t->flags |= CAT_F_SERIAL;
	if (g == NULL || json_is_null(g))
		return 0;
	if (!json_is_string(g) || json_string_length(g) == 0)
		return -1;
	t->group = cat_intern(c, json_string_value(g), json_string_length(g));
	for (i = 0; i < DM_NELEM(words); i++)
		if (strcmp(st, words[i]) == 0) {
			t->strategy = (uint8_t)i;
			return 0;
		}
	return -1;
}

static int
cat_add_entry(struct catalog *c, struct cat_suite *s, uint16_t sn, json_t *e,
    char *why, size_t whylen)
{
	json_t *id = json_object_get(e, "id"), *file = json_object_get(e,
	    "file"), *line = json_object_get(e, "line");
	struct cat_test *t;
	char hdr[32];
	int n;

	if (!json_is_object(e) || !json_is_string(id) ||
	    json_string_length(id) == 0 || !json_is_string(file) ||
	    !json_is_integer(line)) {
		snprintf(why, whylen, "test %zu of the list lacks an id, file "
		    "or line", s->count);
		return -1;
	}
	if (c->ntests == c->tcap) {
		c->tcap = c->tcap == 0 ? 256 : c->tcap * 2;
		c->tests = xreallocarray(c->tests, c->tcap, sizeof *c->tests);
	}
	t = &c->tests[c->ntests];
	memset(t, 0, sizeof *t);
	t->id = cat_put(c, json_string_value(id), json_string_length(id));
	t->file = cat_intern(c, json_string_value(file),
	    json_string_length(file));
	t->line = (int32_t)json_integer_value(line);
	t->timeout = (float)json_get_num(e, "timeout", 0);
	t->suite = sn;
	if (json_is_string(json_object_get(e, "todo")))
		t->flags |= CAT_F_TODO;
	if (json_is_string(json_object_get(e, "skip")) ||
	    json_is_true(json_object_get(e, "skip")))
		t->flags |= CAT_F_SKIP;
	if (cat_tags(c, json_object_get(e, "tags"), &t->tags) == -1 ||
	    cat_tags(c, json_object_get(e, "lock"), &t->lock) == -1) {
		snprintf(why, whylen, "test '%s' has tags or locks that are "
		    "not a list of strings", json_string_value(id));
		return -1;
	}
	if (cat_group(c, t, e) == -1) {
		snprintf(why, whylen, "test '%s' has a group or strategy that "
		    "is not one distmgr knows", json_string_value(id));
		return -1;
	}
	/* The hash the worker answers covers "id\tfile:line\n" per test. */
	sha256_update(s->sha, json_string_value(id), json_string_length(id));
	sha256_update(s->sha, "\t", 1);
	sha256_update(s->sha, json_string_value(file),
	    json_string_length(file));
	n = snprintf(hdr, sizeof hdr, ":%d\n", (int)t->line);
	sha256_update(s->sha, hdr, (size_t)n);
	c->ntests++;
	s->count++;
	return 0;
}

int
cat_add_piece(struct catalog *c, uint16_t sn, json_t *piece, char *why,
    size_t whylen)
{
	struct cat_suite *s;
	json_t *tests = json_object_get(piece, "tests"), *e;
	long long first = json_get_int(piece, "first", -1);
	size_t i;

	if (sn >= c->nsuites || c->suites[sn].ended) {
		snprintf(why, whylen, "a piece of a list that is not expected");
		return -1;
	}
	s = &c->suites[sn];
	if (first < 0 || (size_t)first != s->count) {
		snprintf(why, whylen, "a piece of the list out of order "
		    "(starts at %lld, expected %zu)", first, s->count);
		return -1;
	}
	if (!json_is_array(tests)) {
		snprintf(why, whylen, "a piece of the list without tests");
		return -1;
	}
	if (s->first + s->count + json_array_size(tests) >= CAT_NONE) {
		snprintf(why, whylen, "too many tests");
		return -1;
	}
	json_array_foreach(tests, i, e)
		if (cat_add_entry(c, s, sn, e, why, whylen) == -1)
			return -1;
	return 0;
}

int
cat_suite_end(struct catalog *c, uint16_t sn, size_t count, const char *hash,
    char *why, size_t whylen)
{
	struct cat_suite *s;

	if (sn >= c->nsuites || c->suites[sn].ended) {
		snprintf(why, whylen, "no such list");
		return -1;
	}
	s = &c->suites[sn];
	sha256_finish_hex(s->sha, s->hash);
	s->sha = NULL;
	s->ended = 1;
	if (count != s->count) {
		snprintf(why, whylen, "the worker counted %zu tests but sent "
		    "%zu", count, s->count);
		return -1;
	}
	if (hash == NULL || strcmp(hash, s->hash) != 0) {
		snprintf(why, whylen, "the list's hash is %s but the worker "
		    "says %s", s->hash, hash != NULL ? hash : "nothing");
		return -1;
	}
	return 0;
}

size_t
cat_ntests(const struct catalog *c)
{
	return c->ntests;
}

uint16_t
cat_nsuites(const struct catalog *c)
{
	return c->nsuites;
}

const struct cat_test *
cat_test(const struct catalog *c, uint32_t i)
{
	return &c->tests[i];
}

const char *
cat_str(const struct catalog *c, uint32_t off)
{
	return off == CAT_NONE ? "" : c->arena + off;
}

const char *
cat_id(const struct catalog *c, uint32_t i)
{
	return c->arena + c->tests[i].id;
}

const char *
cat_suite_path(const struct catalog *c, uint16_t s)
{
	return c->arena + c->suites[s].path;
}

const char *
cat_suite_hash(const struct catalog *c, uint16_t s)
{
	return c->suites[s].hash;
}

size_t
cat_suite_count(const struct catalog *c, uint16_t s)
{
	return c->suites[s].count;
}

uint32_t
cat_suite_first(const struct catalog *c, uint16_t s)
{
	return c->suites[s].first;
}

size_t
cat_memory(const struct catalog *c)
{
	return sizeof *c + c->acap + c->icap * sizeof *c->itab +
	    c->tcap * sizeof *c->tests + c->nsuites * sizeof *c->suites;
}

/* ---- diff ------------------------------------------------------------ */

/* A throwaway index of one suite's ids, for the diff only. */
struct cat_index {
	uint32_t	*slot;		/* test index + 1, 0 empty */
	size_t		 cap;
};

static void
cat_index_build(const struct catalog *c, uint16_t s, struct cat_index *ix)
{
	const struct cat_suite *su = &c->suites[s];
	const char *id;
	size_t i, j;

	for (ix->cap = 16; ix->cap < su->count * 2; ix->cap *= 2)
		;
	ix->slot = xcalloc(ix->cap, sizeof *ix->slot);
	for (i = su->first; i < su->first + su->count; i++) {
		id = cat_id(c, (uint32_t)i);
		j = cat_hash_str(id, strlen(id)) & (ix->cap - 1);
		while (ix->slot[j] != 0)
			j = (j + 1) & (ix->cap - 1);
		ix->slot[j] = (uint32_t)i + 1;
	}
}

static uint32_t
cat_index_find(const struct catalog *c, const struct cat_index *ix,
    const char *id)
{
	size_t j = cat_hash_str(id, strlen(id)) & (ix->cap - 1);

	for (; ix->slot[j] != 0; j = (j + 1) & (ix->cap - 1))
		if (strcmp(cat_id(c, ix->slot[j] - 1), id) == 0)
			return ix->slot[j] - 1;
	return CAT_NONE;
}

struct cat_emit {
	void		(*fn)(const char *, void *);
	void		*arg;
	size_t		 max, n;
};

static void DM_PRINTF(2, 3)
cat_emit(struct cat_emit *e, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (e->n++ >= e->max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	e->fn(line, e->arg);
}

/* Tests of suite sa in a that b lacks or defines elsewhere. */
static void
cat_diff_one_way(const struct catalog *a, uint16_t sa, const char *na,
    const struct catalog *b, const struct cat_index *ixb, const char *nb,
    int places, struct cat_emit *e)
{
	const struct cat_suite *su = &a->suites[sa];
	const struct cat_test *ta, *tb;
	uint32_t i, j;

	for (i = su->first; i < su->first + su->count; i++) {
		ta = &a->tests[i];
		if ((j = cat_index_find(b, ixb, cat_id(a, i))) == CAT_NONE) {
			cat_emit(e, "only on %s: %s (%s:%d)", na, cat_id(a, i),
			    cat_str(a, ta->file), (int)ta->line);
			continue;
		}
		tb = &b->tests[j];
		if (places && (ta->line != tb->line ||
		    strcmp(cat_str(a, ta->file), cat_str(b, tb->file)) != 0))
			cat_emit(e, "%s: %s:%d on %s, %s:%d on %s",
			    cat_id(a, i), cat_str(a, ta->file), (int)ta->line,
			    na, cat_str(b, tb->file), (int)tb->line, nb);
	}
}

size_t
cat_diff(const struct catalog *a, uint16_t sa, const char *na,
    const struct catalog *b, uint16_t sb, const char *nb, size_t max,
    void (*emit)(const char *, void *), void *arg)
{
	struct cat_index ixa, ixb;
	struct cat_emit e = { emit, arg, max, 0 };

	cat_index_build(a, sa, &ixa);
	cat_index_build(b, sb, &ixb);
	cat_diff_one_way(a, sa, na, b, &ixb, nb, 1, &e);
	cat_diff_one_way(b, sb, nb, a, &ixa, na, 0, &e);
	free(ixa.slot);
	free(ixb.slot);
	/* Same tests in the same places but another order still changes the
	 * hash: say so rather than print nothing. */
	if (e.n == 0)
		cat_emit(&e, "the same tests in another order");
	return e.n;
}

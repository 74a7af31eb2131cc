/*
 * tells.c - the two tells every test sends, encoded by hand: test_started,
 * and a test_result that says nothing but pass and a duration. jansson's
 * general encoder formats every number through printf, and building and
 * dumping these two boxes was two thirds of an in-process test's cost.
 * Their shape is fixed and their values are integers and a duration, so
 * the text is written here and sent with amp_tell_encoded.
 *
 * The test list (suite_tests) too: building an object per test and
 * dumping it was most of a large suite's start-up. An entry with nothing
 * but its id, file, line and timeout, all printable ASCII, is written
 * here; any other goes through jansson.
 *
 * Nothing a test produced may go through here: messages, files and
 * output are text from user code and go through jansson, which repairs
 * and escapes them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"

/* Long enough for the longer box with the largest values. */
#define TELL_MAX	192

static char *
put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

static char *
put_uint(char *p, unsigned long long v)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = digits[--n];
	return p;
}

/* Seconds with nine decimals: exact to the nanosecond, and a JSON number
 * whatever the value (a negative or absurd one is clamped). */
static char *
put_seconds(char *p, double seconds)
{
	unsigned long long ns, frac;
	int i;

	if (!(seconds > 0))
		seconds = 0;
	if (seconds > 1e10)
		seconds = 1e10;
	ns = (unsigned long long)(seconds * 1e9 + 0.5);
	p = put_uint(p, ns / 1000000000ULL);
	*p++ = '.';
	frac = ns % 1000000000ULL;
	for (i = 8; i >= 0; i--) {
		p[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	return p + 9;
}

static char *
put_ref(char *p, int suite, size_t test)
{
	p = put_str(p, "{\"suite\":");
	p = put_uint(p, (unsigned)suite);
	p = put_str(p, ",\"test\":");
	return put_uint(p, test);
}

int
tell_test_started(struct amp_conn *c, int suite, size_t test)
{
	char text[TELL_MAX], *p = put_ref(text, suite, test);

	p = put_str(p, ",\"_command\":\"test_started\"}");
	return amp_tell_encoded(c, text, (size_t)(p - text));
}

int
tell_test_passed(struct amp_conn *c, int suite, size_t test,
    double duration)
{
	char text[TELL_MAX], *p = put_ref(text, suite, test);

	p = put_str(p, ",\"outcome\":\"pass\",\"duration\":");
	p = put_seconds(p, duration);
	p = put_str(p, ",\"_command\":\"test_result\"}");
	return amp_tell_encoded(c, text, (size_t)(p - text));
}

/* A growing text. */
struct text {
	char	*p;
	size_t	 len, cap;
};

static void
text_need(struct text *t, size_t n)
{
	if (t->len + n <= t->cap)
		return;
	while (t->len + n > t->cap)
		t->cap = t->cap == 0 ? 4096 : t->cap * 2;
	t->p = xreallocarray(t->p, t->cap, 1);
}

static void
text_add(struct text *t, const char *s, size_t n)
{
	text_need(t, n);
	memcpy(t->p + t->len, s, n);
	t->len += n;
}

static void
text_str(struct text *t, const char *s)
{
	text_add(t, s, strlen(s));
}

/* An entry suite_test_plain allows: its strings need no escaping. */
static void
text_plain_entry(struct text *t, const struct suite_test *st)
{
	char num[40];
	double timeout = suite_test_timeout(st);
	int n;

	text_str(t, "{\"id\":\"");
	text_str(t, st->def->suite);
	text_add(t, "/", 1);
	text_str(t, st->def->name);
	text_str(t, "\",\"file\":\"");
	text_str(t, st->def->file);
	text_str(t, "\",\"line\":");
	n = snprintf(num, sizeof num, "%d", st->def->line);
	text_add(t, num, (size_t)n);
	/* jansson has no infinite reals: suite_test_json leaves it out. */
	if (timeout > 0 && isfinite(timeout)) {
		/* As jansson writes a real: the same value comes back. */
		n = snprintf(num, sizeof num, ",\"timeout\":%.17g", timeout);
		text_add(t, num, (size_t)n);
		if (strpbrk(num + 11, ".eE") == NULL)
			text_add(t, ".0", 2);
	}
	text_add(t, "}", 1);
}

int
tell_suite_tests(struct amp_conn *c, const char *shown, const struct suite *s,
    size_t from, size_t to)
{
	struct text t = { NULL, 0, 0 };
	json_t *v;
	char *dumped;
	size_t i;
	int rc;

	text_str(&t, "{\"suite\":");
	v = json_string_lossy(shown, strlen(shown));
	dumped = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(v);
	if (dumped == NULL)
		fatalx("cannot encode a suite's name");
	text_str(&t, dumped);
	free(dumped);
	text_str(&t, ",\"first\":");
	text_need(&t, 24);
	t.len = (size_t)(put_uint(t.p + t.len, from) - t.p);
	text_str(&t, ",\"tests\":[");
	for (i = from; i < to; i++) {
		const struct suite_test *st = suite_get(s, i);

		if (i > from)
			text_add(&t, ",", 1);
		if (suite_test_plain(s, st)) {
			text_plain_entry(&t, st);
			continue;
		}
		v = suite_test_json(s, st);
		dumped = json_dumps(v, JSON_COMPACT);
		json_decref(v);
		if (dumped == NULL)
			fatalx("cannot encode a test's entry");
		text_str(&t, dumped);
		free(dumped);
	}
	text_str(&t, "],\"_command\":\"suite_tests\"}");
	rc = amp_tell_encoded(c, t.p, t.len);
	free(t.p);
	return rc;
}

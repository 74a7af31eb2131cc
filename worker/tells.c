/*
 * tells.c - the two tells every test sends, encoded by hand: test_started,
 * and a test_result that says nothing but pass and a duration. jansson's
 * general encoder formats every number through printf, and building and
 * dumping these two boxes was two thirds of an in-process test's cost.
 * Their shape is fixed and their values are integers and a duration, so
 * the text is written here and sent with amp_tell_encoded.
 *
 * Nothing a test produced may go through here: messages, files and
 * output are text from user code and go through jansson, which repairs
 * and escapes them.
 */
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

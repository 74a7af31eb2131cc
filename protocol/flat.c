/*
 * flat.c - the fast path of the frame decoder, for the boxes that make
 * up nearly all the traffic: a test's start and its result, one flat
 * object of a handful of short ASCII strings and numbers. jansson's
 * general parser spends most of the manager's time on them; this one
 * builds the same json_t without its lexer's generality.
 *
 * A test list (suite_tests) is the other bulk: arrays of such objects,
 * a thousand a frame. Objects and arrays nested up to FLAT_MAX_NEST deep
 * are taken too, so that a large suite's list does not go through the
 * general parser either.
 *
 * What it must never do: accept a text the general parser would refuse,
 * or give a different value. It declines (returns NULL) at the first
 * thing it does not handle -- an escape, a byte outside printable ASCII,
 * a value nested deeper, a duplicate key, a long or odd number, anything
 * after the object -- and the caller then runs the general parser, which
 * decides and reports. tests/unit/test_frame.c and fuzz/fuzz_frame.c
 * compare the two.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "protocol.h"

/* Keys and string values longer than this go the general way. */
#define FLAT_MAX_STRING	256
/* Integers with more digits could overflow json_int_t. */
#define FLAT_MAX_DIGITS	18
/* Objects and arrays inside one another, the frame's own object counted:
 * a piece of a test list is 3 deep (the box, tests, an entry), 4 with an
 * entry's tags. Deeper goes the general way. */
#define FLAT_MAX_NEST	4

struct flat {
	const unsigned char	*p;
	const unsigned char	*end;
};

static void
flat_ws(struct flat *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' ||
	    *f->p == '\n' || *f->p == '\r'))
		f->p++;
}

/* A string of printable ASCII without escapes; its body in *s, *n. */
static int
flat_string(struct flat *f, const char **s, size_t *n)
{
	const unsigned char *q;

	if (f->p >= f->end || *f->p != '"')
		return -1;
	for (q = ++f->p; q < f->end && *q != '"'; q++)
		if (*q < 0x20 || *q > 0x7e || *q == '\\')
			return -1;
	if (q >= f->end || (size_t)(q - f->p) > FLAT_MAX_STRING)
		return -1;
	*s = (const char *)f->p;
	*n = (size_t)(q - f->p);
	f->p = q + 1;
	return 0;
}

static int
flat_digits(struct flat *f)
{
	const unsigned char *start = f->p;

	while (f->p < f->end && *f->p >= '0' && *f->p <= '9')
		f->p++;
	return (int)(f->p - start);
}

/* A number exactly as JSON's grammar has it. */
static json_t *
flat_number(struct flat *f)
{
	const unsigned char *start = f->p;
	char buf[64], *endp;
	int digits, is_int = 1;
	size_t n;
	double d;

	if (f->p < f->end && *f->p == '-')
		f->p++;
	if (f->p < f->end && *f->p == '0')
		f->p++, digits = 1;
	else if ((digits = flat_digits(f)) == 0)
		return NULL;
	if (f->p < f->end && *f->p == '.') {
		f->p++;
		is_int = 0;
		if (flat_digits(f) == 0)
			return NULL;
	}
	if (f->p < f->end && (*f->p == 'e' || *f->p == 'E')) {
		f->p++;
		is_int = 0;
		if (f->p < f->end && (*f->p == '+' || *f->p == '-'))
			f->p++;
		if (flat_digits(f) == 0)
			return NULL;
	}
	n = (size_t)(f->p - start);
	if (n >= sizeof buf || (is_int && digits > FLAT_MAX_DIGITS))
		return NULL;
	memcpy(buf, start, n);
	buf[n] = '\0';
	if (is_int)
		return json_integer((json_int_t)strtoll(buf, NULL, 10));
	d = strtod(buf, &endp);
	if (*endp != '\0' || !isfinite(d))
		return NULL;
	return json_real(d);
}

static json_t *
flat_word(struct flat *f, const char *w, json_t *v)
{
	size_t n = strlen(w);

	if ((size_t)(f->end - f->p) < n || memcmp(f->p, w, n) != 0)
		return NULL;
	f->p += n;
	return v;
}

static json_t	*flat_object(struct flat *, int depth);
static json_t	*flat_array(struct flat *, int depth);

/* A value at the given depth (that of the object or array holding it). */
static json_t *
flat_value(struct flat *f, int depth)
{
	const char *s;
	size_t n;

	if (f->p >= f->end)
		return NULL;
	switch (*f->p) {
	case '"':
		if (flat_string(f, &s, &n) == -1)
			return NULL;
		return json_stringn_nocheck(s, n);
	case 't':
		return flat_word(f, "true", json_true());
	case 'f':
		return flat_word(f, "false", json_false());
	case 'n':
		return flat_word(f, "null", json_null());
	case '{':
		return depth < FLAT_MAX_NEST ? flat_object(f, depth + 1) : NULL;
	case '[':
		return depth < FLAT_MAX_NEST ? flat_array(f, depth + 1) : NULL;
	default:
		return flat_number(f);
	}
}

/* One "key": value member into obj; 0, or -1 to decline. */
static int
flat_member(struct flat *f, json_t *obj, int depth)
{
	char key[FLAT_MAX_STRING + 1];
	const char *s;
	size_t n;
	json_t *v;

	if (flat_string(f, &s, &n) == -1)
		return -1;
	memcpy(key, s, n);
	key[n] = '\0';
	flat_ws(f);
	if (f->p >= f->end || *f->p++ != ':')
		return -1;
	flat_ws(f);
	if ((v = flat_value(f, depth)) == NULL)
		return -1;
	/* A duplicate is for the general parser to refuse and report. */
	if (json_object_get(obj, key) != NULL ||
	    json_object_set_new_nocheck(obj, key, v) == -1) {
		json_decref(v);
		return -1;
	}
	flat_ws(f);
	return 0;
}

/* An object, its '{' next; depth counts it. */
static json_t *
flat_object(struct flat *f, int depth)
{
	json_t *obj;

	if (f->p >= f->end || *f->p++ != '{')
		return NULL;
	obj = json_object();
	flat_ws(f);
	if (f->p < f->end && *f->p == '}') {
		f->p++;
		return obj;
	}
	for (;;) {
		if (flat_member(f, obj, depth) == -1)
			break;
		if (f->p < f->end && *f->p == ',') {
			f->p++;
			flat_ws(f);
			continue;
		}
		if (f->p < f->end && *f->p == '}') {
			f->p++;
			return obj;
		}
		break;
	}
	json_decref(obj);
	return NULL;
}

/* An array, its '[' next; depth counts it. */
static json_t *
flat_array(struct flat *f, int depth)
{
	json_t *arr, *v;

	if (f->p >= f->end || *f->p++ != '[')
		return NULL;
	arr = json_array();
	flat_ws(f);
	if (f->p < f->end && *f->p == ']') {
		f->p++;
		return arr;
	}
	for (;;) {
		if ((v = flat_value(f, depth)) == NULL ||
		    json_array_append_new(arr, v) == -1)
			break;
		flat_ws(f);
		if (f->p < f->end && *f->p == ',') {
			f->p++;
			flat_ws(f);
			continue;
		}
		if (f->p < f->end && *f->p == ']') {
			f->p++;
			return arr;
		}
		break;
	}
	json_decref(arr);
	return NULL;
}

json_t *
flat_parse(const unsigned char *p, size_t len)
{
	struct flat f = { p, p + len };
	json_t *obj;

	flat_ws(&f);
	if ((obj = flat_object(&f, 1)) == NULL)
		return NULL;
	flat_ws(&f);
	if (f.p != f.end) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/*
 * test_frame.c - the frame decoder and encoder: every split of the input,
 * every distinct error, the limit boundaries, and the round trip.
 *
 * main() installs counting allocators in jansson and libevent before
 * anything else runs, so that "refused before anything is allocated" is
 * checked, not assumed.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "testutil.h"

/* ---- allocation counting ----------------------------------------------- */

static unsigned long n_allocs;

static void *
count_malloc(size_t n)
{
	n_allocs++;
	return malloc(n);
}

static void *
count_realloc(void *p, size_t n)
{
	n_allocs++;
	return realloc(p, n);
}

/* ---- helpers ----------------------------------------------------------- */

/* Appends a hand-made frame: a 4-byte length, then len bytes of json. */
static void
add_frame(struct evbuffer *b, const char *json, size_t len)
{
	unsigned char h[4];

	h[0] = (unsigned char)(len >> 24);
	h[1] = (unsigned char)(len >> 16);
	h[2] = (unsigned char)(len >> 8);
	h[3] = (unsigned char)len;
	evbuffer_add(b, h, 4);
	evbuffer_add(b, json, len);
}

static int
decode_buf(const char *json, size_t len, size_t limit, json_t **out,
    struct frame_err *err)
{
	struct evbuffer *in = evbuffer_new();
	int rc;

	add_frame(in, json, len);
	rc = frame_decode(in, limit, out, err);
	evbuffer_free(in);
	return rc;
}

/* A JSON object {"a":"xxx...x"} of exactly len bytes (len >= 8). */
static char *
object_of_len(size_t len)
{
	char *s = xmalloc(len + 1);

	memcpy(s, "{\"a\":\"", 6);
	memset(s + 6, 'x', len - 8);
	memcpy(s + len - 2, "\"}", 3);
	return s;
}

/* {"a": [[...[ 1 ]...]]}: an object holding depth-1 nested arrays. */
static char *
nested(int depth)
{
	size_t len = 8 + 2 * (size_t)depth;
	char *s = xmalloc(len), *p = s;
	int i;

	p += sprintf(p, "{\"a\":");
	for (i = 1; i < depth; i++)
		*p++ = '[';
	*p++ = '1';
	for (i = 1; i < depth; i++)
		*p++ = ']';
	*p++ = '}';
	*p = '\0';
	return s;
}

/* Three frames of different shapes, concatenated. */
static const char *three[] = {
	"{\"_command\":\"ping\",\"_ask\":\"1\"}",
	"{\"s\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",\"n\":[1,2.5,null]}",
	"{}",
};

static struct evbuffer *
three_frames(void)
{
	struct evbuffer *b = evbuffer_new();
	size_t i;

	for (i = 0; i < DM_NELEM(three); i++)
		add_frame(b, three[i], strlen(three[i]));
	return b;
}

static void
check_is(json_t *got, const char *json)
{
	json_t *want = json_loads(json, 0, NULL);

	ck_assert_ptr_nonnull(want);
	ck_assert_msg(json_equal(got, want), "decoded frame differs from %s",
	    json);
	json_decref(want);
}

/* Decodes every whole frame in in, checking each against three[]. */
static int
drain_three(struct evbuffer *in, int seen)
{
	struct frame_err err;
	json_t *o;
	int rc;

	while ((rc = frame_decode(in, 1024, &o, &err)) == 1) {
		ck_assert_int_lt(seen, 3);
		check_is(o, three[seen++]);
		json_decref(o);
	}
	ck_assert_msg(rc == 0, "unexpected error %s: %s",
	    frame_error_name(err.code), err.text);
	return seen;
}

/* ---- splitting --------------------------------------------------------- */

START_TEST(test_decode_simple)
{
	json_t *o = NULL;
	struct frame_err err;

	ck_assert_int_eq(decode_buf("{\"a\":1}", 7, 1024, &o, &err), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "a")), 1);
	json_decref(o);
}
END_TEST

START_TEST(test_split_at_every_byte)
{
	struct evbuffer *all = three_frames(), *in;
	size_t total = evbuffer_get_length(all), k;
	unsigned char *bytes = evbuffer_pullup(all, -1);
	int seen;

	for (k = 0; k <= total; k++) {
		in = evbuffer_new();
		evbuffer_add(in, bytes, k);
		seen = drain_three(in, 0);
		evbuffer_add(in, bytes + k, total - k);
		seen = drain_three(in, seen);
		ck_assert_msg(seen == 3, "split at %zu: %d frames", k, seen);
		ck_assert_uint_eq(evbuffer_get_length(in), 0);
		evbuffer_free(in);
	}
	evbuffer_free(all);
}
END_TEST

START_TEST(test_one_byte_at_a_time)
{
	struct evbuffer *all = three_frames(), *in = evbuffer_new();
	size_t total = evbuffer_get_length(all), k;
	unsigned char *bytes = evbuffer_pullup(all, -1);
	int seen = 0;

	for (k = 0; k < total; k++) {
		evbuffer_add(in, bytes + k, 1);
		seen = drain_three(in, seen);
	}
	ck_assert_int_eq(seen, 3);
	ck_assert_uint_eq(evbuffer_get_length(in), 0);
	evbuffer_free(in);
	evbuffer_free(all);
}
END_TEST

START_TEST(test_many_frames_in_one_buffer)
{
	struct evbuffer *in = evbuffer_new();
	struct frame_err err;
	char json[64];
	json_t *o;
	int i, n;

	for (i = 0; i < 1000; i++) {
		n = snprintf(json, sizeof json, "{\"i\":%d}", i);
		add_frame(in, json, (size_t)n);
	}
	for (i = 0; i < 1000; i++) {
		ck_assert_int_eq(frame_decode(in, 1024, &o, &err), 1);
		ck_assert_int_eq(json_integer_value(json_object_get(o, "i")),
		    i);
		json_decref(o);
	}
	ck_assert_int_eq(frame_decode(in, 1024, &o, &err), 0);
	ck_assert_uint_eq(evbuffer_get_length(in), 0);
	evbuffer_free(in);
}
END_TEST

START_TEST(test_frame_then_half_of_next)
{
	struct evbuffer *in = evbuffer_new();
	struct frame_err err;
	json_t *o = NULL;
	const char *next = "{\"second\":true}";

	add_frame(in, "{\"first\":1}", 11);
	add_frame(in, next, strlen(next));
	evbuffer_drain(in, 0);
	/* Keep the first frame and half of the second. */
	{
		struct evbuffer *half = evbuffer_new();
		size_t keep = 4 + 11 + (4 + strlen(next)) / 2;

		evbuffer_remove_buffer(in, half, keep);
		evbuffer_free(in);
		in = half;
	}
	ck_assert_int_eq(frame_decode(in, 1024, &o, &err), 1);
	check_is(o, "{\"first\":1}");
	json_decref(o);
	o = NULL;
	ck_assert_int_eq(frame_decode(in, 1024, &o, &err), 0);
	ck_assert_ptr_null(o);
	/* Nothing of the half frame was consumed. */
	ck_assert_uint_eq(evbuffer_get_length(in), (4 + strlen(next)) / 2);
	evbuffer_add(in, next + (4 + strlen(next)) / 2 - 4,
	    strlen(next) - ((4 + strlen(next)) / 2 - 4));
	ck_assert_int_eq(frame_decode(in, 1024, &o, &err), 1);
	check_is(o, next);
	json_decref(o);
	evbuffer_free(in);
}
END_TEST

START_TEST(test_short_header_waits)
{
	struct evbuffer *in = evbuffer_new();
	struct frame_err err;
	json_t *o = NULL;

	evbuffer_add(in, "\0\0\0", 3);
	ck_assert_int_eq(frame_decode(in, 1024, &o, &err), 0);
	ck_assert_uint_eq(evbuffer_get_length(in), 3);
	ck_assert_int_eq(frame_decode_mem("\0\0\0", 3, 1024, &o, &err), 0);
	ck_assert_int_eq(frame_decode_mem("", 0, 1024, &o, &err), 0);
	ck_assert_ptr_null(o);
	evbuffer_free(in);
}
END_TEST

/* ---- errors ------------------------------------------------------------ */

static const struct {
	const char *json;
	size_t len;		/* 0: strlen */
	enum frame_error code;
} bad[] = {
	{ "[1,2]", 0, FRAME_E_NOT_OBJECT },
	{ "1", 0, FRAME_E_NOT_OBJECT },
	{ "\"text\"", 0, FRAME_E_NOT_OBJECT },
	{ "null", 0, FRAME_E_NOT_OBJECT },
	{ "true", 0, FRAME_E_NOT_OBJECT },
	{ "{\"a\":", 0, FRAME_E_NOT_JSON },
	{ "{} {}", 0, FRAME_E_NOT_JSON },	/* trailing bytes */
	{ "{}x", 0, FRAME_E_NOT_JSON },
	{ "{}]", 0, FRAME_E_NOT_JSON },
	{ "{'a':1}", 0, FRAME_E_NOT_JSON },
	{ "{\"a\":01}", 0, FRAME_E_NOT_JSON },
	{ "{\"a\":1e999}", 0, FRAME_E_NOT_JSON },
	/* A lone surrogate escape is refused by the parser as such. */
	{ "{\"a\":\"\\ud800\"}", 0, FRAME_E_NOT_JSON },
	{ "   ", 0, FRAME_E_NOT_JSON },
	{ "{\"a\":1,\"a\":2}", 0, FRAME_E_DUPLICATE_KEY },
	{ "{\"x\":{\"b\":1,\"b\":1}}", 0, FRAME_E_DUPLICATE_KEY },
	{ "{\"a\":\"\xff\"}", 0, FRAME_E_BAD_UTF8 },
	{ "{\"a\":\"\xc0\xaf\"}", 0, FRAME_E_BAD_UTF8 },	/* overlong */
	{ "{\"a\":\"\xe0\x80\xaf\"}", 0, FRAME_E_BAD_UTF8 },	/* overlong */
	{ "{\"a\":\"\xed\xa0\x80\"}", 0, FRAME_E_BAD_UTF8 },	/* surrogate */
	{ "{\"a\":\"\xf4\x90\x80\x80\"}", 0, FRAME_E_BAD_UTF8 },
	{ "{\"a\":\"\xc3\"}", 0, FRAME_E_BAD_UTF8 },		/* truncated */
	{ "{\"\xff\":1}", 0, FRAME_E_BAD_UTF8 },		/* in a key */
	{ "{\"a\":\"\\u0000\"}", 0, FRAME_E_BAD_UTF8 },	/* escaped NUL */
	{ "{\"\\u0000\":1}", 0, FRAME_E_BAD_UTF8 },		/* in a key */
	{ "{\"a\":\"\0\"}", 9, FRAME_E_BAD_UTF8 },		/* raw NUL */
	{ "{\"a\":1}\0", 8, FRAME_E_BAD_UTF8 },		/* raw NUL after */
};

START_TEST(test_decode_error)
{
	const char *json = bad[_i].json;
	size_t len = bad[_i].len != 0 ? bad[_i].len : strlen(json);
	json_t *o = NULL;
	struct frame_err err;
	long used;

	memset(&err, 0, sizeof err);
	ck_assert_int_eq(decode_buf(json, len, 1024, &o, &err), -1);
	ck_assert_msg(err.code == bad[_i].code, "case %d (%s): got %s (%s)",
	    _i, json, frame_error_name(err.code), err.text);
	ck_assert_ptr_null(o);
	ck_assert_uint_gt(strlen(err.text), 0);

	/* frame_decode_mem agrees. */
	{
		unsigned char buf[64];

		ck_assert_uint_le(len + 4, sizeof buf);
		buf[0] = buf[1] = buf[2] = 0;
		buf[3] = (unsigned char)len;
		memcpy(buf + 4, json, len);
		memset(&err, 0, sizeof err);
		used = frame_decode_mem(buf, len + 4, 1024, &o, &err);
		ck_assert_int_eq(used, -1);
		ck_assert_str_eq(frame_error_name(err.code),
		    frame_error_name(bad[_i].code));
		ck_assert_ptr_null(o);
	}
}
END_TEST

START_TEST(test_error_texts)
{
	struct frame_err err;
	json_t *o = NULL;

	ck_assert_int_eq(decode_buf("[1]", 3, 1024, &o, &err), -1);
	ck_assert_str_eq(err.text, "frame holds JSON that is not an object");
	ck_assert_int_eq(decode_buf("{\"a\":1,\"a\":2}", 13, 1024, &o, &err),
	    -1);
	ck_assert_str_eq(err.text, "frame has a duplicate key: duplicate "
	    "object key near '\"a\"'");
	ck_assert_int_eq(decode_buf("{\"a\":1}\0", 8, 1024, &o, &err), -1);
	ck_assert_str_eq(err.text, "frame holds a NUL byte at byte 7");
}
END_TEST

START_TEST(test_empty_frame)
{
	struct evbuffer *in = evbuffer_new();
	struct frame_err err;
	json_t *o = NULL;

	evbuffer_add(in, "\0\0\0\0{}", 6);
	ck_assert_int_eq(frame_decode(in, 1024, &o, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_EMPTY);
	ck_assert_str_eq(frame_error_name(err.code), "FRAME_EMPTY");
	ck_assert_str_eq(err.text, "frame of length zero");
	ck_assert_int_eq(frame_decode_mem("\0\0\0\0", 4, 1024, &o, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_EMPTY);
	ck_assert_ptr_null(o);
	evbuffer_free(in);
}
END_TEST

/* A header announcing 2 GiB is refused as soon as the header is in, with
 * nothing allocated and the payload never waited for. */
START_TEST(test_too_long_refused_at_header)
{
	struct evbuffer *in = evbuffer_new();
	struct frame_err err;
	json_t *o = NULL;
	unsigned long before;

	/* The counting allocator is in use. */
	before = n_allocs;
	evbuffer_add(in, "\x80\0\0\0", 4);
	ck_assert_uint_gt(n_allocs, before);
	before = n_allocs;
	ck_assert_int_eq(frame_decode(in, FRAME_LIMIT_DEFAULT, &o, &err), -1);
	ck_assert_uint_eq(n_allocs, before);
	ck_assert_int_eq(err.code, FRAME_E_TOO_LONG);
	ck_assert_str_eq(frame_error_name(err.code), "FRAME_TOO_LONG");
	ck_assert_str_eq(err.text, "frame of 2147483648 bytes is over the "
	    "limit of 1048576 bytes");
	ck_assert_ptr_null(o);

	before = n_allocs;
	ck_assert_int_eq(frame_decode_mem("\xff\xff\xff\xff", 4,
	    FRAME_LIMIT_MAX, &o, &err), -1);
	ck_assert_uint_eq(n_allocs, before);
	ck_assert_int_eq(err.code, FRAME_E_TOO_LONG);
	ck_assert_str_eq(err.text, "frame of 4294967295 bytes is over the "
	    "limit of 67108864 bytes");
	evbuffer_free(in);
}
END_TEST

/* Even with the whole oversized payload buffered (in many pieces), it is
 * refused without being gathered into one block or parsed. */
START_TEST(test_too_long_not_gathered)
{
	struct evbuffer *in = evbuffer_new();
	size_t len = FRAME_LIMIT_PREAUTH + 1, off;
	char *json = object_of_len(len);
	unsigned char h[4] = { 0, 1, 0, 1 };	/* 65537 */
	struct frame_err err;
	json_t *o = NULL;
	unsigned long before;

	evbuffer_add(in, h, 4);
	for (off = 0; off < len; off += 1000)
		evbuffer_add(in, json + off,
		    len - off < 1000 ? len - off : 1000);
	before = n_allocs;
	ck_assert_int_eq(frame_decode(in, FRAME_LIMIT_PREAUTH, &o, &err), -1);
	ck_assert_uint_eq(n_allocs, before);
	ck_assert_int_eq(err.code, FRAME_E_TOO_LONG);
	ck_assert_ptr_null(o);
	free(json);
	evbuffer_free(in);
}
END_TEST

START_TEST(test_limit_boundary)
{
	static const size_t limits[] = { 8, 100, FRAME_LIMIT_PREAUTH,
	    FRAME_LIMIT_DEFAULT };
	size_t limit = limits[_i];
	char *at = object_of_len(limit), *over = object_of_len(limit + 1);
	struct frame_err err;
	json_t *o = NULL;
	char want[100];

	ck_assert_int_eq(decode_buf(at, limit, limit, &o, &err), 1);
	ck_assert_uint_eq(json_string_length(json_object_get(o, "a")),
	    limit - 8);
	json_decref(o);
	o = NULL;
	ck_assert_int_eq(decode_buf(over, limit + 1, limit, &o, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_TOO_LONG);
	snprintf(want, sizeof want, "frame of %zu bytes is over the limit of "
	    "%zu bytes", limit + 1, limit);
	ck_assert_str_eq(err.text, want);
	ck_assert_ptr_null(o);
	free(at);
	free(over);
}
END_TEST

START_TEST(test_depth_boundary)
{
	char *ok = nested(FRAME_MAX_DEPTH), *deep = nested(FRAME_MAX_DEPTH + 1);
	struct frame_err err;
	json_t *o = NULL;

	ck_assert_int_eq(FRAME_MAX_DEPTH, 32);
	ck_assert_int_eq(decode_buf(ok, strlen(ok), 1024, &o, &err), 1);
	json_decref(o);
	o = NULL;
	ck_assert_int_eq(decode_buf(deep, strlen(deep), 1024, &o, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_TOO_DEEP);
	ck_assert_str_eq(frame_error_name(err.code), "FRAME_TOO_DEEP");
	ck_assert_str_eq(err.text,
	    "frame nests objects and arrays deeper than 32");
	ck_assert_ptr_null(o);
	free(ok);
	free(deep);
}
END_TEST

START_TEST(test_depth_ignores_strings)
{
	/* Brackets inside strings, with escaped quotes, do not nest. */
	const char *s = "{\"a\":\"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\","
	    "\"b\":\"\\\\\",\"c\":[[[{}]]]}";
	struct frame_err err;
	json_t *o = NULL;

	ck_assert_int_eq(decode_buf(s, strlen(s), 1024, &o, &err), 1);
	json_decref(o);
}
END_TEST

START_TEST(test_very_deep_refused)
{
	size_t n = 200000, i;
	char *s = xmalloc(n + 1);
	struct frame_err err;
	json_t *o = NULL;

	s[0] = '{';
	for (i = 1; i < n; i++)
		s[i] = '[';
	ck_assert_int_eq(decode_buf(s, n, FRAME_LIMIT_DEFAULT, &o, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_TOO_DEEP);
	/* A backslash as the last byte inside an open string. */
	ck_assert_int_eq(decode_buf("{\"a\":\"\\", 7, 1024, &o, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_NOT_JSON);
	free(s);
}
END_TEST

START_TEST(test_decode_mem)
{
	unsigned char buf[256];
	size_t n1, n2;
	struct frame_err err;
	json_t *o = NULL;

	n1 = tu_frame_bytes("{\"a\":1}", buf, sizeof buf);
	n2 = tu_frame_bytes("{\"b\":2}", buf + n1, sizeof buf - n1);
	ck_assert_int_eq(frame_decode_mem(buf, n1 + n2, 1024, &o, &err),
	    (long)n1);
	check_is(o, "{\"a\":1}");
	json_decref(o);
	ck_assert_int_eq(frame_decode_mem(buf + n1, n2, 1024, &o, &err),
	    (long)n2);
	check_is(o, "{\"b\":2}");
	json_decref(o);
	o = NULL;
	/* Every strict prefix needs more. */
	for (n2 = 0; n2 < n1; n2++)
		ck_assert_int_eq(frame_decode_mem(buf, n2, 1024, &o, &err), 0);
	ck_assert_ptr_null(o);
	/* The limit applies here too. */
	ck_assert_int_eq(frame_decode_mem(buf, n1, 6, &o, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_TOO_LONG);
	ck_assert_int_eq(frame_decode_mem(buf, n1, 7, &o, &err), (long)n1);
	json_decref(o);
}
END_TEST

START_TEST(test_error_names)
{
	ck_assert_str_eq(frame_error_name(FRAME_E_NONE), "OK");
	ck_assert_str_eq(frame_error_name(FRAME_E_EMPTY), "FRAME_EMPTY");
	ck_assert_str_eq(frame_error_name(FRAME_E_TOO_LONG), "FRAME_TOO_LONG");
	ck_assert_str_eq(frame_error_name(FRAME_E_NOT_JSON), "FRAME_NOT_JSON");
	ck_assert_str_eq(frame_error_name(FRAME_E_NOT_OBJECT),
	    "FRAME_NOT_OBJECT");
	ck_assert_str_eq(frame_error_name(FRAME_E_BAD_UTF8), "FRAME_BAD_UTF8");
	ck_assert_str_eq(frame_error_name(FRAME_E_TOO_DEEP), "FRAME_TOO_DEEP");
	ck_assert_str_eq(frame_error_name(FRAME_E_DUPLICATE_KEY),
	    "FRAME_DUPLICATE_KEY");
	ck_assert_str_eq(frame_error_name(FRAME_E_ENCODE), "FRAME_ENCODE");
	ck_assert_str_eq(frame_error_name((enum frame_error)99),
	    "FRAME_UNKNOWN");
}
END_TEST

/* ---- encoder ----------------------------------------------------------- */

START_TEST(test_encode_round_trip)
{
	static const char *objs[] = {
		"{}",
		"{\"_command\":\"run\",\"_ask\":\"7\",\"tests\":[12,13,14]}",
		"{\"s\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \\\" \\\\ \\n\\t\\u0001\"}",
		"{\"i\":-9223372036854775808,\"j\":9223372036854775807}",
		"{\"r\":1.5,\"z\":-0.0,\"e\":1e300,\"t\":true,\"f\":false,\"n\":null}",
		"{\"o\":{\"p\":{\"q\":[[],{},[{}]]}}}",
	};
	struct evbuffer *b = evbuffer_new();
	struct frame_err err;
	json_t *in, *out;
	unsigned char *p;
	size_t i, len;

	for (i = 0; i < DM_NELEM(objs); i++) {
		in = json_loads(objs[i], 0, NULL);
		ck_assert_ptr_nonnull(in);
		ck_assert_int_eq(frame_encode(b, in, 1024, &err), 0);
		len = evbuffer_get_length(b);
		p = evbuffer_pullup(b, -1);
		ck_assert_uint_eq(len - 4, (size_t)p[0] << 24 |
		    (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]);
		ck_assert_int_eq(frame_decode(b, 1024, &out, &err), 1);
		ck_assert_msg(json_equal(in, out), "%s changed", objs[i]);
		ck_assert_uint_eq(evbuffer_get_length(b), 0);
		json_decref(in);
		json_decref(out);
	}
	evbuffer_free(b);
}
END_TEST

START_TEST(test_encode_many_sizes)
{
	struct evbuffer *b = evbuffer_new();
	struct frame_err err;
	json_t *in, *out;
	char *s;
	size_t len;

	/* Sizes across the scratch buffer's growth, back and forth. */
	for (len = 8; len < 200000; len = len * 3 + 1) {
		s = object_of_len(len);
		in = json_loads(s, 0, NULL);
		ck_assert_int_eq(frame_encode(b, in, FRAME_LIMIT_DEFAULT, &err),
		    0);
		ck_assert_uint_eq(evbuffer_get_length(b), len + 4);
		json_decref(in);
		in = json_pack("{s:i}", "small", 1);
		ck_assert_int_eq(frame_encode(b, in, FRAME_LIMIT_DEFAULT, &err),
		    0);
		ck_assert_int_eq(frame_decode(b, FRAME_LIMIT_DEFAULT, &out,
		    &err), 1);
		ck_assert_uint_eq(json_string_length(json_object_get(out, "a")),
		    len - 8);
		json_decref(out);
		ck_assert_int_eq(frame_decode(b, FRAME_LIMIT_DEFAULT, &out,
		    &err), 1);
		ck_assert_msg(json_equal(in, out), "small frame changed");
		json_decref(out);
		json_decref(in);
		free(s);
	}
	evbuffer_free(b);
}
END_TEST

START_TEST(test_encode_limit)
{
	struct evbuffer *b = evbuffer_new();
	struct frame_err err;
	char *s;
	json_t *o;
	size_t limit = FRAME_LIMIT_PREAUTH;

	/* Exactly the limit: sent. */
	s = object_of_len(limit);
	o = json_loads(s, 0, NULL);
	ck_assert_int_eq(frame_encode(b, o, limit, &err), 0);
	ck_assert_uint_eq(evbuffer_get_length(b), limit + 4);
	json_decref(o);
	free(s);
	/* One over: refused, and nothing appended. */
	s = object_of_len(limit + 1);
	o = json_loads(s, 0, NULL);
	ck_assert_int_eq(frame_encode(b, o, limit, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_TOO_LONG);
	ck_assert_str_eq(err.text, "frame of 65537 bytes is over the limit "
	    "of 65536 bytes");
	ck_assert_uint_eq(evbuffer_get_length(b), limit + 4);
	/* Refused again once the scratch buffer has grown past it. */
	ck_assert_int_eq(frame_encode(b, o, 10 * limit, &err), 0);
	ck_assert_int_eq(frame_encode(b, o, limit, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_TOO_LONG);
	ck_assert_uint_eq(evbuffer_get_length(b), 2 * limit + 9);
	json_decref(o);
	free(s);
	evbuffer_free(b);
}
END_TEST

/* The encoder never produces a frame the decoder would refuse. */
START_TEST(test_encode_refuses_what_decoder_refuses)
{
	struct evbuffer *b = evbuffer_new();
	struct frame_err err;
	json_t *o, *inner;
	char *ok = nested(FRAME_MAX_DEPTH);

	o = json_array();
	ck_assert_int_eq(frame_encode(b, o, 1024, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_NOT_OBJECT);
	json_decref(o);

	/* 33 levels: refused; 32: sent. */
	o = json_loads(ok, 0, NULL);
	ck_assert_int_eq(frame_encode(b, o, 1024, &err), 0);
	evbuffer_drain(b, evbuffer_get_length(b));
	inner = json_object();
	json_object_set_new(inner, "deeper", o);
	ck_assert_int_eq(frame_encode(b, inner, 1024, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_TOO_DEEP);
	json_decref(inner);

	/* A string with U+0000 (possible with json_stringn). */
	o = json_pack("{s:s#}", "a", "x\0y", 3);
	ck_assert_int_eq(frame_encode(b, o, 1024, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_BAD_UTF8);
	json_decref(o);
	/* ... but a backslash followed by "u0000" is only text. */
	o = json_pack("{s:s}", "a", "\\u0000");
	ck_assert_int_eq(frame_encode(b, o, 1024, &err), 0);
	ck_assert_int_eq(frame_decode(b, 1024, &inner, &err), 1);
	ck_assert_str_eq(json_string_value(json_object_get(inner, "a")),
	    "\\u0000");
	json_decref(inner);
	json_decref(o);

	/* Invalid UTF-8 smuggled past jansson's checks. */
	o = json_object();
	json_object_set_new(o, "a", json_stringn_nocheck("\xff", 1));
	ck_assert_int_eq(frame_encode(b, o, 1024, &err), -1);
	ck_assert_int_eq(err.code, FRAME_E_ENCODE);
	json_decref(o);

	ck_assert_uint_eq(evbuffer_get_length(b), 0);
	free(ok);
	evbuffer_free(b);
}
END_TEST

/* The fast path for flat objects: what it takes it builds exactly as
 * jansson does; everything else it leaves to jansson. */
static const struct {
	const char	*json;
	int		 fast;		/* taken by flat_parse */
} flat_cases[] = {
	{ "{\"suite\":0,\"test\":12,\"outcome\":\"pass\","
	  "\"duration\":1.5e-06,\"_command\":\"test_result\"}", 1 },
	{ " {\"a\" : -0 , \"b\":-12.5E+3,\"c\":true,\"d\":false,"
	  "\"e\":null,\"f\":\"\",\"g\":0.0} \n", 1 },
	{ "{}", 1 },
	{ "{\"i\":999999999999999999}", 1 },
	{ "{\"i\":1234567890123456789}", 0 },	/* 19 digits: jansson */
	{ "{\"a\":01}", 0 },
	{ "{\"a\":1.}", 0 },
	{ "{\"a\":.5}", 0 },
	{ "{\"a\":1e}", 0 },
	{ "{\"a\":-}", 0 },
	{ "{\"a\":1e999}", 0 },
	{ "{\"a\":\"\\n\"}", 0 },		/* escapes: jansson */
	{ "{\"a\":\"\xc3\xa9\"}", 0 },		/* non-ASCII: jansson */
	{ "{\"a\":[1]}", 1 },			/* nested, shallow */
	{ "{\"suite\":\"m.so\",\"first\":0,\"tests\":[{\"id\":\"m/a\","
	  "\"file\":\"m.c\",\"line\":3,\"tags\":[\"x\",\"y\"]},{\"id\":"
	  "\"m/b\",\"file\":\"m.c\",\"line\":9,\"timeout\":2.5}],"
	  "\"_command\":\"suite_tests\"}", 1 },	/* a list piece */
	{ "{\"a\":[],\"b\":{},\"c\":[ {} , [ ] ]}", 1 },
	{ "{\"a\":[[[1]]]}", 1 },		/* 4 deep */
	{ "{\"a\":[[[[1]]]]}", 0 },		/* 5: jansson */
	{ "{\"a\":[1,]}", 0 },
	{ "{\"a\":[,1]}", 0 },
	{ "{\"a\":[1 2]}", 0 },
	{ "{\"a\":[1}", 0 },
	{ "{\"a\":{\"b\":1,\"b\":2}}", 0 },	/* nested duplicate */
	{ "{\"a\":[\"\\u0041\"]}", 0 },	/* an escape inside */
	{ "{\"a\":1,\"a\":2}", 0 },		/* duplicate: jansson says */
	{ "{\"a\":1,}", 0 },
	{ "{\"a\":1} x", 0 },
	{ "{\"a\" 1}", 0 },
	{ "[1]", 0 },
	{ "{\"a\":tru}", 0 },
	{ "", 0 },
};

START_TEST(test_flat_agrees_with_jansson)
{
	const char *j = flat_cases[_i].json;
	json_t *fast = flat_parse((const unsigned char *)j, strlen(j)), *slow;
	json_error_t jerr;

	ck_assert_msg((fast != NULL) == flat_cases[_i].fast,
	    "flat_parse %s '%s'", fast != NULL ? "took" : "declined", j);
	if (fast == NULL)
		return;
	slow = json_loadb(j, strlen(j), JSON_REJECT_DUPLICATES, &jerr);
	ck_assert_msg(slow != NULL, "jansson refuses '%s'", j);
	ck_assert_msg(json_equal(fast, slow), "'%s' differs", j);
	json_decref(fast);
	json_decref(slow);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("frame");
	TCase *tc;
	SRunner *sr;
	int failed;

	/* Before any allocation by either library. */
	event_set_mem_functions(count_malloc, count_realloc, free);
	json_set_alloc_funcs(count_malloc, free);

	tc = tcase_create("split");
	tcase_add_test(tc, test_decode_simple);
	tcase_add_test(tc, test_split_at_every_byte);
	tcase_add_test(tc, test_one_byte_at_a_time);
	tcase_add_test(tc, test_many_frames_in_one_buffer);
	tcase_add_test(tc, test_frame_then_half_of_next);
	tcase_add_test(tc, test_short_header_waits);
	tcase_add_loop_test(tc, test_flat_agrees_with_jansson, 0,
	    DM_NELEM(flat_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, test_decode_error, 0, DM_NELEM(bad));
	tcase_add_test(tc, test_error_texts);
	tcase_add_test(tc, test_empty_frame);
	tcase_add_test(tc, test_too_long_refused_at_header);
	tcase_add_test(tc, test_too_long_not_gathered);
	tcase_add_loop_test(tc, test_limit_boundary, 0, 4);
	tcase_add_test(tc, test_depth_boundary);
	tcase_add_test(tc, test_depth_ignores_strings);
	tcase_add_test(tc, test_very_deep_refused);
	tcase_add_test(tc, test_decode_mem);
	tcase_add_test(tc, test_error_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_test(tc, test_encode_round_trip);
	tcase_add_test(tc, test_encode_many_sizes);
	tcase_add_test(tc, test_encode_limit);
	tcase_add_test(tc, test_encode_refuses_what_decoder_refuses);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

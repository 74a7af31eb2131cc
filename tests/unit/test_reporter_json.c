/*
 * test_reporter_json.c - the JSON-lines reporter fed through the vtable:
 * every line parsed back with jansson, every field of every event
 * checked, lines written as events happen, output clipped.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"
#include "reporter_fixture.h"

static char tmpdir[256];
static char jsonfile[300];

static void
setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/json.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(jsonfile, sizeof jsonfile, "%s/events.jsonl", tmpdir);
}

static void
teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static char *const fx_argv[] = { "distmgr", "-j", "2", "--json",
	"events.jsonl", "build/suites/basic.so", NULL };

static struct reporter *
new_json(void)
{
	char why[256] = "";
	struct reporter *r = reporter_json_new(NULL, jsonfile, fx_argv, why,
	    sizeof why);

	ck_assert_msg(r != NULL, "reporter_json_new: %s", why);
	return r;
}

/* Every line of the file as a JSON array of objects; each line must
 * be one complete object ending in '\n'. */
static json_t *
read_events(void)
{
	char *text = fx_slurp(jsonfile, NULL), *line, *nl;
	json_t *all = json_array(), *ev;
	json_error_t err;

	ck_assert_ptr_nonnull(text);
	for (line = text; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		ck_assert_msg(nl != NULL, "last line has no newline: %s", line);
		*nl = '\0';
		ev = json_loads(line, 0, &err);
		ck_assert_msg(ev != NULL, "bad JSON line '%s': %s", line,
		    err.text);
		ck_assert(json_is_object(ev));
		/* Epoch seconds with their milliseconds, not cut to 10
		 * significant digits. */
		ck_assert(json_is_real(json_object_get(ev, "time")));
		ck_assert(fabs(json_real_value(json_object_get(ev, "time")) -
		    clock_wall()) < 3600);
		json_array_append_new(all, ev);
	}
	free(text);
	return all;
}

static const char *
str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(v != NULL, "no key %s", key);
	return json_is_null(v) ? "(null)" : json_string_value(v);
}

static long long
num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "key %s is not an integer", key);
	return json_integer_value(v);
}

START_TEST(test_event_sequence)
{
	static const char *const want[] = { "run_start", "worker_up",
	    "worker_up", "test", "test", "test", "test", "test", "test",
	    "test", "test", "test", "test", "notice", "worker_down",
	    "run_end" };
	struct reporter *r = new_json();
	json_t *all;

	fx_run_all(r);
	r->ops->free(r);
	all = read_events();
	ck_assert_uint_eq(json_array_size(all), DM_NELEM(want));
	for (size_t i = 0; i < DM_NELEM(want); i++)
		ck_assert_str_eq(str(json_array_get(all, i), "event"), want[i]);
	json_decref(all);
}
END_TEST

START_TEST(test_run_start_and_workers)
{
	struct reporter *r = new_json();
	json_t *all, *ev, *w;
	char *argv;

	fx_run_all(r);
	r->ops->free(r);
	all = read_events();
	ev = json_array_get(all, 0);
	ck_assert_str_eq(str(ev, "run_id"), "r-42");
	ck_assert_int_eq(num(ev, "tests"), 10);
	ck_assert_int_eq(num(ev, "workers"), 2);
	ck_assert_str_eq(str(ev, "dist"), "load");
	ck_assert(json_is_true(json_object_get(ev, "boxed")));
	ck_assert(json_is_null(json_object_get(ev, "seed")));
	ck_assert(json_real_value(json_object_get(ev, "start")) ==
	    1700000000.0);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(ev,
	    "suites"), 0)), "build/suites/basic.so");
	argv = json_dumps(json_object_get(ev, "argv"), JSON_COMPACT);
	ck_assert_str_eq(argv, "[\"distmgr\",\"-j\",\"2\",\"--json\","
	    "\"events.jsonl\",\"build/suites/basic.so\"]");
	free(argv);
	ck_assert_str_eq(str(ev, "version"), DM_VERSION);
	ck_assert_int_eq(num(ev, "report_durations"), 0);

	w = json_object_get(json_array_get(all, 2), "worker");
	ck_assert_str_eq(str(w, "id"), "w1");
	ck_assert_str_eq(str(w, "spec"), "ssh=farm1");
	ck_assert_str_eq(str(w, "hostname"), "farm1");
	ck_assert_str_eq(str(w, "os"), "linux");
	ck_assert_str_eq(str(w, "arch"), "aarch64");
	ck_assert_int_eq(num(w, "cpus"), 8);
	ck_assert_int_eq(num(w, "pid"), 202);
	ck_assert_str_eq(str(w, "version"), "0.1.0");

	ev = json_array_get(all, 14);
	ck_assert_str_eq(str(ev, "why"), "exited");
	ck_assert_str_eq(str(json_object_get(ev, "worker"), "id"), "w1");
	ev = json_array_get(all, 13);
	ck_assert_str_eq(str(ev, "level"), "warning");
	ck_assert_str_eq(str(ev, "text"), "worker w1 restarted");
	json_decref(all);
}
END_TEST

/* Every field of test_report, for the failing test with nasty output. */
START_TEST(test_test_event_fields)
{
	struct reporter *r = new_json();
	json_t *all, *ev;
	size_t n;
	char *fixed;

	fx_run_all(r);
	r->ops->free(r);
	all = read_events();
	ev = json_array_get(all, 4);
	ck_assert_int_eq(num(ev, "n"), 2);
	ck_assert_str_eq(str(ev, "id"), "math/fails");
	ck_assert_str_eq(str(ev, "suite"), "math");
	ck_assert_str_eq(str(ev, "name"), "fails");
	ck_assert_str_eq(str(ev, "suite_path"), "build/suites/basic.so");
	ck_assert_str_eq(str(ev, "file"), "tests/suites/basic.c");
	ck_assert_int_eq(num(ev, "line"), 10);
	ck_assert_str_eq(str(ev, "worker"), "w0");
	ck_assert_str_eq(str(ev, "host"), "hostA");
	ck_assert_str_eq(str(ev, "outcome"), "fail");
	ck_assert_str_eq(str(ev, "message"), "expected 4 == 5");
	ck_assert_str_eq(str(ev, "fail_file"), "tests/suites/basic.c");
	ck_assert_int_eq(num(ev, "fail_line"), 17);
	ck_assert(json_real_value(json_object_get(ev, "duration")) == 0.002);
	ck_assert_int_eq(num(ev, "signal"), 0);
	ck_assert(json_is_null(json_object_get(ev, "signal_name")));
	ck_assert_int_eq(num(ev, "exit_status"), -1);
	ck_assert_int_eq(num(ev, "attempts"), 1);
	/* Output comes back as the repaired UTF-8 of what was printed. */
	fixed = utf8_repair(fx_nasty_out, sizeof fx_nasty_out - 1, &n);
	ck_assert_str_eq(str(ev, "stdout"), fixed);
	free(fixed);
	ck_assert_int_eq(num(ev, "stdout_bytes"), sizeof fx_nasty_out - 1);
	ck_assert_str_eq(str(ev, "stderr"), "to stderr\n");
	ck_assert_int_eq(num(ev, "stderr_bytes"), 10);

	ev = json_array_get(all, 6);	/* the crash */
	ck_assert_str_eq(str(ev, "outcome"), "crash");
	ck_assert_int_eq(num(ev, "signal"), 11);
	ck_assert_str_eq(str(ev, "signal_name"), "SIGSEGV");
	ck_assert(json_is_null(json_object_get(ev, "message")));
	ck_assert(json_is_null(json_object_get(ev, "fail_file")));
	ck_assert_str_eq(str(ev, "stdout"), "");
	ck_assert_int_eq(num(ev, "stdout_bytes"), 0);
	ck_assert_int_eq(num(json_array_get(all, 11), "attempts"), 2);
	json_decref(all);
}
END_TEST

START_TEST(test_run_end_totals)
{
	struct reporter *r = new_json();
	json_t *all, *ev, *c, *slow;

	fx_run_all(r);
	r->ops->free(r);
	all = read_events();
	ev = json_array_get(all, 15);
	ck_assert(json_real_value(json_object_get(ev, "elapsed")) == 5.5);
	ck_assert_int_eq(num(ev, "exit_code"), 1);
	ck_assert(json_is_false(json_object_get(ev, "interrupted")));
	ck_assert(json_is_null(json_object_get(ev, "stop_reason")));
	ck_assert_int_eq(num(ev, "total"), 10);
	ck_assert_int_eq(num(ev, "reported"), 10);
	c = json_object_get(ev, "counts");
	ck_assert_uint_eq(json_object_size(c), OUT__COUNT - 1);
	ck_assert_int_eq(num(c, "pass"), 1);
	ck_assert_int_eq(num(c, "not_run"), 1);
	ck_assert_int_eq(num(c, "timeout"), 1);
	ck_assert_str_eq(str(ev, "line"), "1 passed, 1 failed, 1 errors, "
	    "1 crashed, 1 timed out, 1 skipped, 1 xfailed, 1 xpassed, 1 flaky, "
	    "1 not run in 5.50s");
	slow = json_object_get(ev, "slowest");
	ck_assert_uint_eq(json_array_size(slow), 10);
	ck_assert_str_eq(str(json_array_get(slow, 0), "id"), "io/hangs");
	ck_assert_str_eq(str(json_array_get(slow, 0), "outcome"), "timeout");
	ck_assert_str_eq(str(json_array_get(slow, 1), "id"), "net/retry");
	ck_assert_str_eq(str(json_array_get(slow, 2), "id"), "io/segv");
	ck_assert_str_eq(str(json_array_get(slow, 2), "worker"), "w1");
	/* No --report-durations: no listing. */
	ck_assert_ptr_null(json_object_get(ev, "durations"));
	json_decref(all);
}
END_TEST

static double
real(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_number(v), "key %s is not a number", key);
	return json_number_value(v);
}

/* --report-durations 2: the two slowest of each run, with what the
 * cache knew of them before it; a second run (--looponfail) starts its
 * own listing. */
START_TEST(test_report_durations)
{
	struct reporter *r = new_json();
	struct run_info ri = fx_run_info;
	struct run_summary s = fx_summary(fx_reports, FX_NREPORTS);
	struct test_report t;
	json_t *all, *ev, *d, *e;
	double total = 0;

	ri.report_durations = 2;
	fx_start(r, &ri);
	for (size_t i = 0; i < FX_NREPORTS; i++) {
		t = fx_reports[i];
		total += t.duration;
		if (strcmp(t.id, "io/hangs") == 0) {
			t.nhistory = 3;
			t.history[0] = 4.0;
			t.history[1] = 4.5;
			t.history[2] = 3.0;
			t.expected = 4.0;
		}
		fx_result(r, &t);
	}
	fx_end(r, &s);
	ri.run_id = "r-43";
	fx_start(r, &ri);
	t = fx_reports[0];
	fx_result(r, &t);
	s = fx_summary(fx_reports, 1);
	r->ops->run_end(r, &s);
	r->ops->free(r);

	all = read_events();
	ev = json_array_get(all, 0);
	ck_assert_int_eq(num(ev, "report_durations"), 2);
	ev = json_array_get(all, 15);
	ck_assert_str_eq(str(ev, "event"), "run_end");
	d = json_object_get(ev, "durations");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(num(d, "count"), 2);
	ck_assert_int_eq(num(d, "timed"), 10);
	ck_assert(fabs(real(d, "total") - total) < 1e-9);
	ck_assert_uint_eq(json_array_size(json_object_get(d, "tests")), 2);
	e = json_array_get(json_object_get(d, "tests"), 0);
	ck_assert_str_eq(str(e, "id"), "io/hangs");
	ck_assert(real(e, "duration") == 5.0);
	ck_assert_str_eq(str(e, "worker"), "w0");
	ck_assert_str_eq(str(e, "outcome"), "timeout");
	ck_assert(real(e, "expected") == 4.0);
	ck_assert(real(e, "change") == 1.0);
	ck_assert_uint_eq(json_array_size(json_object_get(e, "history")), 3);
	ck_assert(json_real_value(json_array_get(json_object_get(e,
	    "history"), 1)) == 4.5);
	/* Never seen before: no history, and nothing expected. */
	e = json_array_get(json_object_get(d, "tests"), 1);
	ck_assert_str_eq(str(e, "id"), "net/retry");
	ck_assert(json_is_null(json_object_get(e, "expected")));
	ck_assert(json_is_null(json_object_get(e, "change")));
	ck_assert_uint_eq(json_array_size(json_object_get(e, "history")), 0);

	/* The second run: its own events, counted from 1 again. */
	ev = json_array_get(all, 16);
	ck_assert_str_eq(str(ev, "event"), "run_start");
	ck_assert_str_eq(str(ev, "run_id"), "r-43");
	ev = json_array_get(all, 19);
	ck_assert_str_eq(str(ev, "event"), "test");
	ck_assert_int_eq(num(ev, "n"), 1);
	ev = json_array_get(all, 20);
	ck_assert_str_eq(str(ev, "event"), "run_end");
	ck_assert_int_eq(num(ev, "reported"), 1);
	ck_assert_uint_eq(json_array_size(json_object_get(ev, "slowest")), 1);
	d = json_object_get(ev, "durations");
	ck_assert_int_eq(num(d, "timed"), 1);
	ck_assert_str_eq(str(json_array_get(json_object_get(d, "tests"), 0),
	    "id"), "math/adds");
	ck_assert_uint_eq(json_array_size(json_object_get(d, "tests")), 1);
	ck_assert_uint_eq(json_array_size(all), 21);
	json_decref(all);
}
END_TEST

/* tail -f sees each event when it happens. */
START_TEST(test_line_per_event_now)
{
	struct reporter *r = new_json();
	json_t *all;

	fx_start(r, &fx_run_info);
	fx_result(r, &fx_reports[0]);
	all = read_events();
	ck_assert_uint_eq(json_array_size(all), 4);
	ck_assert_str_eq(str(json_array_get(all, 3), "id"), "math/adds");
	json_decref(all);
	r->ops->free(r);
}
END_TEST

START_TEST(test_output_is_clipped)
{
	struct reporter *r = new_json();
	struct test_report t = fx_reports[0];
	size_t big = 4u * 1024 * 1024;
	char *out = xmalloc(big + 1);
	const char *s;
	json_t *all, *ev;

	memset(out, 'y', big);
	out[big] = '\0';
	t.out = out;
	t.out_len = big;
	t.err = out;
	t.err_len = big;
	fx_start(r, &fx_run_info);
	fx_result(r, &t);
	r->ops->free(r);
	free(out);
	all = read_events();
	ev = json_array_get(all, 3);
	s = str(ev, "stdout");
	ck_assert_uint_lt(strlen(s), 70 * 1024);
	ck_assert_ptr_nonnull(strstr(s, "\n[... 4128768 bytes omitted ...]\n"));
	ck_assert_int_eq(num(ev, "stdout_bytes"), (long long)big);
	ck_assert_uint_lt(strlen(str(ev, "stderr")), 70 * 1024);
	json_decref(all);
}
END_TEST

/* Every byte value in output, message and id: each line still parses,
 * and gives back exactly the repaired UTF-8 of what was printed. */
START_TEST(test_every_byte)
{
	struct reporter *r = new_json();
	struct test_report t = fx_reports[1];
	char all[512], msg[256], *want;
	size_t n;
	json_t *all_ev, *ev;

	for (int i = 0; i < 512; i++)
		all[i] = (char)(i % 256);
	for (int i = 0; i < 255; i++)
		msg[i] = (char)(255 - i);
	msg[255] = '\0';
	t.out = all;
	t.out_len = sizeof all;
	t.err = all + 7;
	t.err_len = 300;
	t.message = msg;
	t.id = "we\"ird/na\\me\x01\x7f\xc3\xa9";
	t.duration = -0.0;
	fx_start(r, &fx_run_info);
	fx_result(r, &t);
	t.duration = 1e300;	/* not a duration JSON can carry: null */
	fx_result(r, &t);
	r->ops->free(r);
	all_ev = read_events();
	ev = json_array_get(all_ev, 3);
	want = utf8_repair(all, sizeof all, &n);
	ck_assert_str_eq(str(ev, "stdout"), want);
	free(want);
	want = utf8_repair(all + 7, 300, &n);
	ck_assert_str_eq(str(ev, "stderr"), want);
	free(want);
	want = utf8_repair(msg, strlen(msg), &n);
	ck_assert_str_eq(str(ev, "message"), want);
	free(want);
	ck_assert_str_eq(str(ev, "id"), "we\"ird/na\\me\x01\x7f\xc3\xa9");
	ck_assert_str_eq(str(ev, "suite"), "we\"ird");
	ck_assert(json_real_value(json_object_get(ev, "duration")) == 0.0);
	ck_assert(json_is_null(json_object_get(json_array_get(all_ev, 4),
	    "duration")));
	json_decref(all_ev);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reporter-json");
	TCase *tc = tcase_create("json");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_event_sequence);
	tcase_add_test(tc, test_run_start_and_workers);
	tcase_add_test(tc, test_test_event_fields);
	tcase_add_test(tc, test_run_end_totals);
	tcase_add_test(tc, test_report_durations);
	tcase_add_test(tc, test_line_per_event_now);
	tcase_add_test(tc, test_output_is_clipped);
	tcase_add_test(tc, test_every_byte);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

/*
 * test_reporter_tap.c - the TAP reporter fed through the vtable: the
 * exact stream, what prove concludes from it, the YAML blocks read back
 * by TAP::Parser, and the bail-out of a run that ends early.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"
#include "reporter_fixture.h"

static char tmpdir[256];
static char tapfile[300];

static void
setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/tap.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(tapfile, sizeof tapfile, "%s/run.tap", tmpdir);
}

static void
teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct reporter *
new_tap(void)
{
	char why[256] = "";
	struct reporter *r = reporter_tap_new(NULL, tapfile, why, sizeof why);

	ck_assert_msg(r != NULL, "reporter_tap_new: %s", why);
	return r;
}

/* Runs cmd; its stdout (at most size - 1 bytes) into out; its status. */
static int
run_cmd(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");
	size_t n;

	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	return pclose(p);
}

static const char expected_tap[] =
"TAP version 13\n"
"1..10\n"
"ok 1 - math/adds\n"
"not ok 2 - math/fails\n"
"  ---\n"
"  outcome: fail\n"
"  message: \"expected 4 == 5\"\n"
"  file: \"tests/suites/basic.c\"\n"
"  line: 17\n"
"  duration: 0.002000\n"
"  worker: \"w0\"\n"
"  host: \"hostA\"\n"
"  stdout: \"a<b>&\\\"c\\\" ]]> \\x01\\x1B[31mred\\x1B[0m "
    "\xef\xbf\xbd\xef\xbf\xbd bad \xef\xbf\xbe nul:\\x00:end\\n\"\n"
"  stderr: \"to stderr\\n\"\n"
"  ...\n"
"not ok 3 - math/errs\n"
"  ---\n"
"  outcome: error\n"
"  message: \"fixture init failed\"\n"
"  file: \"tests/suites/basic.c\"\n"
"  line: 10\n"
"  duration: 0.001000\n"
"  worker: \"w0\"\n"
"  host: \"hostA\"\n"
"  ...\n"
"not ok 4 - io/segv\n"
"  ---\n"
"  outcome: crash\n"
"  file: \"tests/suites/basic.c\"\n"
"  line: 10\n"
"  duration: 0.010000\n"
"  worker: \"w1\"\n"
"  host: \"farm1\"\n"
"  signal: SIGSEGV\n"
"  ...\n"
"not ok 5 - io/hangs\n"
"  ---\n"
"  outcome: timeout\n"
"  message: \"timed out after 5 s\"\n"
"  file: \"tests/suites/basic.c\"\n"
"  line: 10\n"
"  duration: 5.000000\n"
"  worker: \"w0\"\n"
"  host: \"hostA\"\n"
"  ...\n"
"ok 6 - io/later # SKIP no network here\n"
"  ---\n"
"  outcome: skip\n"
"  message: \"no network\\nhere\"\n"
"  file: \"tests/suites/basic.c\"\n"
"  line: 10\n"
"  duration: 0.000000\n"
"  worker: \"w0\"\n"
"  host: \"hostA\"\n"
"  ...\n"
"not ok 7 - net/flaky # TODO bug #12\n"
"  ---\n"
"  outcome: xfail\n"
"  message: \"bug #12\"\n"
"  file: \"tests/suites/basic.c\"\n"
"  line: 10\n"
"  duration: 0.003000\n"
"  worker: \"w0\"\n"
"  host: \"hostA\"\n"
"  ...\n"
"not ok 8 - net/stale\n"
"  ---\n"
"  outcome: xpass\n"
"  message: \"passed, but is marked todo: bug 7\"\n"
"  file: \"tests/suites/basic.c\"\n"
"  line: 10\n"
"  duration: 0.004000\n"
"  worker: \"w0\"\n"
"  host: \"hostA\"\n"
"  ...\n"
"ok 9 - net/retry\n"
"  ---\n"
"  outcome: flaky\n"
"  file: \"tests/suites/basic.c\"\n"
"  line: 10\n"
"  duration: 0.250000\n"
"  worker: \"w0\"\n"
"  host: \"hostA\"\n"
"  attempts: 2\n"
"  ...\n"
"ok 10 - net/never # SKIP not run: stopped after 1 failure (-x)\n"
"  ---\n"
"  outcome: not_run\n"
"  message: \"stopped after 1 failure (-x)\"\n"
"  file: \"tests/suites/basic.c\"\n"
"  line: 10\n"
"  duration: 0.000000\n"
"  worker: \"w0\"\n"
"  host: \"hostA\"\n"
"  ...\n"
"# distmgr: 1 passed, 1 failed, 1 errors, 1 crashed, 1 timed out, "
    "1 skipped, 1 xfailed, 1 xpassed, 1 flaky, 1 not run in 5.50s\n";

START_TEST(test_exact_stream)
{
	struct reporter *r = new_tap();
	char *got;

	fx_run_all(r);
	r->ops->free(r);
	got = fx_slurp(tapfile, NULL);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, expected_tap);
	free(got);
}
END_TEST

/* Lines are written as results arrive, not at the end. */
START_TEST(test_streams_as_it_goes)
{
	struct reporter *r = new_tap();
	char *got;

	fx_start(r, &fx_run_info);
	fx_result(r, &fx_reports[0]);
	got = fx_slurp(tapfile, NULL);
	ck_assert_str_eq(got, "TAP version 13\n1..10\nok 1 - math/adds\n");
	free(got);
	r->ops->free(r);
}
END_TEST

/* --looponfail: a second run starts the file over as a document of its
 * own, which prove reads alone. */
START_TEST(test_second_run_is_a_new_document)
{
	struct reporter *r = new_tap();
	struct run_info ri = fx_run_info;
	struct run_summary s;
	char *got, cmd[700], out[8192];

	fx_run_all(r);
	ri.ntests = 1;
	fx_start(r, &ri);
	fx_result(r, &fx_reports[0]);
	s = fx_summary(fx_reports, 1);
	s.exit_code = 0;
	r->ops->run_end(r, &s);
	r->ops->free(r);
	got = fx_slurp(tapfile, NULL);
	ck_assert_str_eq(got, "TAP version 13\n1..1\nok 1 - math/adds\n"
	    "# distmgr: 1 passed in 5.50s\n");
	free(got);
	snprintf(cmd, sizeof cmd, "prove -e cat '%s' 2>&1", tapfile);
	ck_assert_msg(run_cmd(cmd, out, sizeof out) == 0, "%s", out);
}
END_TEST

/* prove must fail exactly the tests distmgr fails: fail, error, crash,
 * timeout, and the stale todo (xpass); xfail is a TODO that failed. */
START_TEST(test_prove_verdict)
{
	struct reporter *r = new_tap();
	char cmd[700], out[8192];
	int rc;

	fx_run_all(r);
	r->ops->free(r);
	snprintf(cmd, sizeof cmd, "prove -e cat '%s' 2>&1", tapfile);
	rc = run_cmd(cmd, out, sizeof out);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(out, "Failed tests:  2-5, 8\n") != NULL, "%s",
	    out);
	ck_assert_msg(strstr(out, "Tests: 10 Failed: 5)") != NULL, "%s", out);
}
END_TEST

START_TEST(test_prove_passes_a_good_run)
{
	static const int good[] = { 0, 5, 6, 8, 9 };	/* pass skip xfail
							   flaky not_run */
	struct test_report reports[5];
	struct run_info ri = fx_run_info;
	struct run_summary s;
	struct reporter *r = new_tap();
	char cmd[700], out[8192];
	int rc;

	for (size_t i = 0; i < 5; i++)
		reports[i] = fx_reports[good[i]];
	ri.ntests = 5;
	s = fx_summary(reports, 5);
	fx_start(r, &ri);
	for (size_t i = 0; i < 5; i++)
		fx_result(r, &reports[i]);
	fx_end(r, &s);
	r->ops->free(r);
	snprintf(cmd, sizeof cmd, "prove -e cat '%s' 2>&1", tapfile);
	rc = run_cmd(cmd, out, sizeof out);
	ck_assert_msg(rc == 0, "prove failed: %s", out);
	ck_assert_msg(strstr(out, "All tests successful.") != NULL, "%s", out);
}
END_TEST

/* Every YAML block parses with TAP::Parser's own reader, and gives back
 * the exact strings. */
START_TEST(test_yaml_reads_back)
{
	static const char perl[] =
	    "perl -MTAP::Parser -e '"
	    "local $/; open my $f, \"<\", $ARGV[0] or die; my $t = <$f>;"
	    "my $p = TAP::Parser->new({tap => $t}); my $n = 0;"
	    "while (my $r = $p->next) {"
	    " $n = $r->number if $r->is_test;"
	    " next unless $r->is_yaml; my $d = $r->data;"
	    " for my $k (qw(outcome message line worker stderr attempts)) {"
	    "  next unless defined $d->{$k}; my $v = $d->{$k};"
	    "  $v =~ s/\\n/<NL>/g; print \"$n $k=$v\\n\" } }' '%s' 2>&1";
	struct reporter *r = new_tap();
	char cmd[1500], out[8192];

	fx_run_all(r);
	r->ops->free(r);
	snprintf(cmd, sizeof cmd, perl, tapfile);
	ck_assert_int_eq(run_cmd(cmd, out, sizeof out), 0);
	ck_assert_str_eq(out,
	    "2 outcome=fail\n2 message=expected 4 == 5\n2 line=17\n"
	    "2 worker=w0\n2 stderr=to stderr<NL>\n"
	    "3 outcome=error\n3 message=fixture init failed\n3 line=10\n"
	    "3 worker=w0\n"
	    "4 outcome=crash\n4 line=10\n4 worker=w1\n"
	    "5 outcome=timeout\n5 message=timed out after 5 s\n5 line=10\n"
	    "5 worker=w0\n"
	    "6 outcome=skip\n6 message=no network<NL>here\n6 line=10\n"
	    "6 worker=w0\n"
	    "7 outcome=xfail\n7 message=bug #12\n7 line=10\n7 worker=w0\n"
	    "8 outcome=xpass\n8 message=passed, but is marked todo: bug 7\n"
	    "8 line=10\n8 worker=w0\n"
	    "9 outcome=flaky\n9 line=10\n9 worker=w0\n9 attempts=2\n"
	    "10 outcome=not_run\n10 message=stopped after 1 failure (-x)\n"
	    "10 line=10\n10 worker=w0\n");
}
END_TEST

/* Ctrl-C after three results: the consumer is told why the plan was
 * not met. */
START_TEST(test_bail_out_when_short)
{
	struct reporter *r = new_tap();
	struct run_summary s = fx_summary(fx_reports, 3);
	char *got, cmd[700], out[8192];

	s.interrupted = 1;
	s.exit_code = 2;
	fx_start(r, &fx_run_info);
	for (size_t i = 0; i < 3; i++)
		fx_result(r, &fx_reports[i]);
	r->ops->run_end(r, &s);
	r->ops->free(r);
	got = fx_slurp(tapfile, NULL);
	ck_assert_ptr_nonnull(strstr(got, "  ...\nBail out! interrupted\n"
	    "# distmgr: 1 passed, 1 failed, 1 errors in 5.50s\n"));
	free(got);
	snprintf(cmd, sizeof cmd, "prove -e cat '%s' 2>&1", tapfile);
	ck_assert_int_ne(run_cmd(cmd, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "Bailout called") != NULL ||
	    strstr(out, "Bailed out") != NULL, "%s", out);
}
END_TEST

/* A test id or reason holding '#' or a newline cannot forge a
 * directive or a line. */
START_TEST(test_hostile_text)
{
	struct reporter *r = new_tap();
	struct test_report t = fx_reports[0];
	struct run_info ri = fx_run_info;
	char *got;

	t.id = "a/b # SKIP\nok 99 - forged";
	ri.ntests = 1;
	fx_start(r, &ri);
	fx_result(r, &t);
	r->ops->free(r);
	got = fx_slurp(tapfile, NULL);
	ck_assert_str_eq(got, "TAP version 13\n1..1\n"
	    "ok 1 - a/b \\# SKIP ok 99 - forged\n");
	free(got);
}
END_TEST

START_TEST(test_cannot_create)
{
	char why[256] = "";

	ck_assert_ptr_null(reporter_tap_new(NULL, "/nonexistent/dir/x.tap",
	    why, sizeof why));
	ck_assert_str_eq(why, "tap: cannot create /nonexistent/dir/x.tap: "
	    "No such file or directory");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reporter-tap");
	TCase *tc = tcase_create("tap");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_exact_stream);
	tcase_add_test(tc, test_streams_as_it_goes);
	tcase_add_test(tc, test_second_run_is_a_new_document);
	tcase_add_test(tc, test_prove_verdict);
	tcase_add_test(tc, test_prove_passes_a_good_run);
	tcase_add_test(tc, test_yaml_reads_back);
	tcase_add_test(tc, test_bail_out_when_short);
	tcase_add_test(tc, test_hostile_text);
	tcase_add_test(tc, test_cannot_create);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

/*
 * test_outcome.c - outcome words, parsing, and the closing line exactly
 * as CI systems will read it.
 */
#include <check.h>
#include <string.h>

#include "common.h"
#include "manager.h"

START_TEST(test_words)
{
	static const char *names[] = { "pass", "fail", "error", "crash",
	    "timeout", "skip", "xfail", "xpass", "flaky", "not_run" };
	static const char *words[] = { "passed", "failed", "errors",
	    "crashed", "timed out", "skipped", "xfailed", "xpassed", "flaky",
	    "not run" };
	static const char *tags[] = { "PASS", "FAIL", "ERROR", "CRASH",
	    "TIMEOUT", "SKIP", "XFAIL", "XPASS", "FLAKY", "NOTRUN" };
	int o;

	for (o = OUT_PASS; o < OUT__COUNT; o++) {
		ck_assert_str_eq(outcome_name(o), names[o - 1]);
		ck_assert_str_eq(outcome_summary_word(o), words[o - 1]);
		ck_assert_str_eq(outcome_tag(o), tags[o - 1]);
	}
	ck_assert_str_eq(outcome_name((enum outcome)99), "?");
	ck_assert_str_eq(outcome_tag((enum outcome)-1), "?");
}
END_TEST

START_TEST(test_parse)
{
	enum outcome o = OUT_NONE;
	int i;

	for (i = OUT_PASS; i < OUT__COUNT; i++) {
		ck_assert_int_eq(outcome_parse(outcome_name(i), &o), 0);
		ck_assert_int_eq(o, i);
	}
	ck_assert_int_eq(outcome_parse("interrupted", &o), 0);
	ck_assert_int_eq(o, OUT_NOT_RUN);
	o = OUT_PASS;
	ck_assert_int_eq(outcome_parse("none", &o), -1);
	ck_assert_int_eq(outcome_parse("PASS", &o), -1);
	ck_assert_int_eq(outcome_parse("passed", &o), -1);
	ck_assert_int_eq(outcome_parse("", &o), -1);
	ck_assert_int_eq(outcome_parse(NULL, &o), -1);
	ck_assert_int_eq(o, OUT_PASS);		/* untouched on error */
}
END_TEST

START_TEST(test_is_failure)
{
	ck_assert(!outcome_is_failure(OUT_NONE));
	ck_assert(!outcome_is_failure(OUT_PASS));
	ck_assert(outcome_is_failure(OUT_FAIL));
	ck_assert(outcome_is_failure(OUT_ERROR));
	ck_assert(outcome_is_failure(OUT_CRASH));
	ck_assert(outcome_is_failure(OUT_TIMEOUT));
	ck_assert(!outcome_is_failure(OUT_SKIP));
	ck_assert(!outcome_is_failure(OUT_XFAIL));
	ck_assert(outcome_is_failure(OUT_XPASS));
	ck_assert(!outcome_is_failure(OUT_FLAKY));
	ck_assert(!outcome_is_failure(OUT_NOT_RUN));
	ck_assert(!outcome_is_failure((enum outcome)1000));
}
END_TEST

START_TEST(test_counts_line)
{
	struct counts c = { { 0 } };
	char buf[256];

	c.n[OUT_PASS] = 120;
	c.n[OUT_FAIL] = 3;
	c.n[OUT_SKIP] = 1;
	c.n[OUT_XFAIL] = 2;
	counts_line(&c, 4.2149, buf, sizeof buf);
	ck_assert_str_eq(buf, "120 passed, 3 failed, 1 skipped, 2 xfailed "
	    "in 4.21s");
	ck_assert_uint_eq(counts_total(&c), 126);
}
END_TEST

START_TEST(test_counts_line_every_word)
{
	struct counts c = { { 0 } };
	char buf[256];
	int o;

	for (o = OUT_PASS; o < OUT__COUNT; o++)
		c.n[o] = 1;
	counts_line(&c, 61, buf, sizeof buf);
	/* The issue fixes these words, "1 errors" included. */
	ck_assert_str_eq(buf, "1 passed, 1 failed, 1 errors, 1 crashed, "
	    "1 timed out, 1 skipped, 1 xfailed, 1 xpassed, 1 flaky, "
	    "1 not run in 61.00s");
}
END_TEST

START_TEST(test_counts_line_edges)
{
	struct counts c = { { 0 } };
	char buf[256], small[12];

	counts_line(&c, 0.014, buf, sizeof buf);
	ck_assert_str_eq(buf, "no tests ran in 0.01s");
	counts_line(&c, -3, buf, sizeof buf);
	ck_assert_str_eq(buf, "no tests ran in 0.00s");
	c.n[OUT_NOT_RUN] = 7;
	c.n[OUT_CRASH] = 2;
	counts_line(&c, 1, buf, sizeof buf);
	ck_assert_str_eq(buf, "2 crashed, 7 not run in 1.00s");

	/* A short buffer is cut, terminated, and never overrun. */
	memset(small, 'x', sizeof small);
	counts_line(&c, 1, small, sizeof small);
	ck_assert_uint_lt(strlen(small), sizeof small);
	ck_assert(strncmp(small, "2 crashed, 7 not run", strlen(small)) == 0);
	counts_line(&c, 1, small, 0);		/* must not write */
	counts_line(&c, 1, small, 1);
	ck_assert_str_eq(small, "");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("outcome");
	TCase *tc = tcase_create("outcome");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_words);
	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_is_failure);
	tcase_add_test(tc, test_counts_line);
	tcase_add_test(tc, test_counts_line_every_word);
	tcase_add_test(tc, test_counts_line_edges);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

/*
 * test_daemon_slots.c - who gets the daemon's next free slot: the run
 * holding the fewest, round-robin among equals, the longest waiting
 * among runs never served, first come first served within a run; and
 * the bookkeeping of runs that wait, leave and come back.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "worker.h"

static char items[32];	/* their addresses are the items */

static char *
grant(struct slots *sl, const char *want_run)
{
	const char *run = NULL;
	char *item = slots_grant(sl, &run);

	ck_assert_msg(item != NULL, "no grant");
	ck_assert_str_eq(run, want_run);
	return item;
}

START_TEST(test_free_slots_go_at_once)
{
	struct slots *sl = slots_new(2);

	ck_assert_ptr_null(slots_grant(sl, NULL));
	slots_wait(sl, "A", &items[0]);
	ck_assert_ptr_eq(grant(sl, "A"), &items[0]);
	slots_wait(sl, "A", &items[1]);
	ck_assert_ptr_eq(grant(sl, "A"), &items[1]);
	slots_wait(sl, "A", &items[2]);
	ck_assert_ptr_null(slots_grant(sl, NULL));
	ck_assert_int_eq(slots_busy(sl), 2);
	ck_assert_uint_eq(slots_waiting(sl), 1);
	ck_assert_int_eq(slots_running(sl, "A"), 2);
	slots_free(sl);
}
END_TEST

/* A late manager catches up: it gets every freed slot until it holds as
 * many as the one that came first. */
START_TEST(test_fewest_first)
{
	struct slots *sl = slots_new(4);
	int i;

	for (i = 0; i < 6; i++)
		slots_wait(sl, "A", &items[i]);
	for (i = 0; i < 4; i++)
		ck_assert_ptr_eq(grant(sl, "A"), &items[i]);
	for (i = 10; i < 14; i++)
		slots_wait(sl, "B", &items[i]);
	slots_release(sl, "A");
	ck_assert_ptr_eq(grant(sl, "B"), &items[10]);
	slots_release(sl, "A");
	ck_assert_ptr_eq(grant(sl, "B"), &items[11]);
	/* Two each now: a freed slot goes back to the run that freed it. */
	slots_release(sl, "B");
	ck_assert_ptr_eq(grant(sl, "B"), &items[12]);
	slots_release(sl, "A");
	ck_assert_ptr_eq(grant(sl, "A"), &items[4]);
	/* Two free slots among equals: round-robin, A was served last. */
	slots_release(sl, "A");
	slots_release(sl, "B");
	ck_assert_ptr_eq(grant(sl, "B"), &items[13]);
	ck_assert_ptr_eq(grant(sl, "A"), &items[5]);
	ck_assert_int_eq(slots_running(sl, "A"), 2);
	ck_assert_int_eq(slots_running(sl, "B"), 2);
	slots_free(sl);
}
END_TEST

/* Three runs, one slot: strict rotation A, B, C, A, B, C. */
START_TEST(test_round_robin)
{
	struct slots *sl = slots_new(1);
	const char *order[] = { "A", "B", "C", "A", "B", "C" };
	const char *run;
	int i;

	for (i = 0; i < 3; i++) {
		slots_wait(sl, "A", &items[i]);
		slots_wait(sl, "B", &items[10 + i]);
		slots_wait(sl, "C", &items[20 + i]);
	}
	for (i = 0; i < 6; i++) {
		ck_assert_ptr_nonnull(slots_grant(sl, &run));
		ck_assert_str_eq(run, order[i]);
		slots_release(sl, order[i]);
	}
	slots_free(sl);
}
END_TEST

/* Never served: the run whose first connection waited longest. */
START_TEST(test_longest_waiting_first)
{
	struct slots *sl = slots_new(1);

	slots_wait(sl, "X", &items[0]);
	ck_assert_ptr_eq(grant(sl, "X"), &items[0]);
	slots_wait(sl, "C", &items[1]);
	slots_wait(sl, "B", &items[2]);
	slots_wait(sl, "C", &items[3]);
	slots_release(sl, "X");
	ck_assert_ptr_eq(grant(sl, "C"), &items[1]);
	slots_release(sl, "C");
	ck_assert_ptr_eq(grant(sl, "B"), &items[2]);
	slots_free(sl);
}
END_TEST

/* A connection that went away while waiting is never granted; a run
 * with nothing left is forgotten, and starts afresh when it returns. */
START_TEST(test_forget)
{
	struct slots *sl = slots_new(1);

	slots_wait(sl, "A", &items[0]);
	ck_assert_ptr_eq(grant(sl, "A"), &items[0]);
	slots_wait(sl, "B", &items[1]);
	slots_wait(sl, "B", &items[2]);
	ck_assert_int_eq(slots_forget(sl, &items[1]), 0);
	ck_assert_int_eq(slots_forget(sl, &items[1]), -1);
	ck_assert_uint_eq(slots_waiting(sl), 1);
	slots_release(sl, "A");
	ck_assert_ptr_eq(grant(sl, "B"), &items[2]);
	slots_release(sl, "B");
	ck_assert_int_eq(slots_busy(sl), 0);
	ck_assert_int_eq(slots_running(sl, "B"), 0);
	ck_assert_ptr_null(slots_grant(sl, NULL));
	slots_wait(sl, "B", &items[3]);
	ck_assert_ptr_eq(grant(sl, "B"), &items[3]);
	slots_free(sl);
}
END_TEST

/* An empty run_id (a hello without one) is a run like any other. */
START_TEST(test_empty_run_id)
{
	struct slots *sl = slots_new(1);

	slots_wait(sl, "", &items[0]);
	slots_wait(sl, "", &items[1]);
	ck_assert_ptr_eq(grant(sl, ""), &items[0]);
	slots_release(sl, "");
	ck_assert_ptr_eq(grant(sl, ""), &items[1]);
	slots_free(sl);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("daemon_slots");
	TCase *tc = tcase_create("slots");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_free_slots_go_at_once);
	tcase_add_test(tc, test_fewest_first);
	tcase_add_test(tc, test_round_robin);
	tcase_add_test(tc, test_longest_waiting_first);
	tcase_add_test(tc, test_forget);
	tcase_add_test(tc, test_empty_run_id);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

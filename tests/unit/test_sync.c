/*
 * test_sync.c - the manager's locks, board and trails.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "manager.h"

struct grant {
	int	 got;
	int	 died;
	int	 dropped;
};

static void
on_grant(void *arg, int died)
{
	struct grant *g = arg;

	g->got++;
	g->died = died;
}

static void
on_drop(void *arg)
{
	((struct grant *)arg)->dropped++;
}

START_TEST(test_lock_fifo)
{
	struct sync *s = sync_new();
	struct grant g2 = { 0 }, g3 = { 0 };
	int died = -1;

	ck_assert_int_eq(sync_lock(s, "db", 1, on_grant, NULL, &died), 1);
	ck_assert_int_eq(died, 0);
	ck_assert_int_eq(sync_lock(s, "db", 1, on_grant, NULL, &died), -1);
	ck_assert_int_eq(sync_lock(s, "db", 2, on_grant, &g2, &died), 0);
	ck_assert_int_eq(sync_lock(s, "db", 3, on_grant, &g3, &died), 0);
	ck_assert_int_eq(sync_unlock(s, "db", 3), -1);	/* not the holder */
	ck_assert_int_eq(sync_unlock(s, "db", 1), 0);
	ck_assert_int_eq(g2.got, 1);
	ck_assert_int_eq(g2.died, 0);
	ck_assert_int_eq(g3.got, 0);
	ck_assert_int_eq(sync_unlock(s, "db", 2), 0);
	ck_assert_int_eq(g3.got, 1);
	ck_assert_int_eq(sync_unlock(s, "db", 3), 0);
	ck_assert_int_eq(sync_unlock(s, "db", 3), -1);
	/* Another lock name is independent. */
	ck_assert_int_eq(sync_lock(s, "port", 9, on_grant, NULL, &died), 1);
	sync_free(s);
}
END_TEST

START_TEST(test_holder_dies)
{
	struct sync *s = sync_new();
	struct grant g2 = { 0 }, g3 = { 0 };
	int died;

	ck_assert_int_eq(sync_lock(s, "a", 1, on_grant, NULL, &died), 1);
	ck_assert_int_eq(sync_lock(s, "b", 1, on_grant, NULL, &died), 1);
	ck_assert_int_eq(sync_lock(s, "a", 2, on_grant, &g2, &died), 0);
	ck_assert_int_eq(sync_lock(s, "b", 3, on_grant, &g3, &died), 0);
	/* 3 also waits on a: when 3 goes, that wait is dropped. */
	ck_assert_uint_eq(sync_owner_gone(s, 1, 1, on_drop), 2);
	ck_assert_int_eq(g2.got, 1);
	ck_assert_int_eq(g2.died, 1);
	ck_assert_int_eq(g3.got, 1);
	ck_assert_int_eq(g3.died, 1);
	/* A lock nobody waited for remembers the death for its next taker. */
	ck_assert_int_eq(sync_lock(s, "c", 4, on_grant, NULL, &died), 1);
	sync_owner_gone(s, 4, 1, NULL);
	ck_assert_int_eq(sync_lock(s, "c", 5, on_grant, NULL, &died), 1);
	ck_assert_int_eq(died, 1);
	ck_assert_int_eq(sync_unlock(s, "c", 5), 0);
	ck_assert_int_eq(sync_lock(s, "c", 6, on_grant, NULL, &died), 1);
	ck_assert_int_eq(died, 0);
	/* A waiter that goes is dropped without a grant. */
	struct grant g7 = { 0 };
	ck_assert_int_eq(sync_lock(s, "c", 7, on_grant, &g7, &died), 0);
	sync_owner_gone(s, 7, 0, on_drop);
	ck_assert_int_eq(g7.dropped, 1);
	ck_assert_int_eq(sync_unlock(s, "c", 6), 0);
	ck_assert_int_eq(g7.got, 0);
	sync_free(s);
}
END_TEST

START_TEST(test_board)
{
	struct sync *s = sync_new();
	char *big;

	ck_assert_ptr_null(sync_board_get(s, "k"));
	ck_assert_int_eq(sync_board_set(s, "k", "v1"), 0);
	ck_assert_int_eq(sync_board_set(s, "k", "{\"json\": true}"), 0);
	ck_assert_str_eq(sync_board_get(s, "k"), "{\"json\": true}");
	big = malloc(SYNC_BOARD_MAX + 1);
	memset(big, 'x', SYNC_BOARD_MAX);
	big[SYNC_BOARD_MAX] = '\0';
	ck_assert_int_eq(sync_board_set(s, "big", big), -1);
	big[SYNC_BOARD_MAX - 100] = '\0';
	ck_assert_int_eq(sync_board_set(s, "big", big), 0);
	ck_assert_int_eq(sync_board_set(s, "k", big), -1);
	ck_assert_str_eq(sync_board_get(s, "k"), "{\"json\": true}");
	free(big);
	sync_free(s);
}
END_TEST

START_TEST(test_trail)
{
	struct sync *s = sync_new();
	int i, starts = 0, finishes = 0;

	/* 50 users, overlapping: one start, one finish. */
	for (i = 0; i < 50; i++)
		starts += sync_trail(s, "db", 0);
	for (i = 0; i < 49; i++)
		finishes += sync_trail(s, "db", 1);
	ck_assert_int_eq(finishes, 0);
	finishes += sync_trail(s, "db", 1);
	ck_assert_int_eq(starts, 1);
	ck_assert_int_eq(finishes, 1);
	/* Later users never set up or tear down again. */
	ck_assert_int_eq(sync_trail(s, "db", 0), 0);
	ck_assert_int_eq(sync_trail(s, "db", 1), 0);
	ck_assert_int_eq(sync_trail(s, "other", 1), 0);
	sync_free(s);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("sync");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_lock_fifo);
	tcase_add_test(tc, test_holder_dies);
	tcase_add_test(tc, test_board);
	tcase_add_test(tc, test_trail);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

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

struct held {
	int	 answered;
	int	 result;
	int	 dropped;
};

static void
on_answer(void *arg, int result)
{
	struct held *h = arg;

	h->answered++;
	h->result = result;
}

static void
on_drop_held(void *arg)
{
	((struct held *)arg)->dropped++;
}

/* start, answered at once. */
static int
start(struct sync *s, const char *name, uint64_t owner)
{
	int r = -1;

	ck_assert_int_eq(sync_trail(s, name, 0, owner, 0, on_answer, NULL,
	    &r), 1);
	return r;
}

/* finish that must be answered at once. */
static int
finish(struct sync *s, const char *name, uint64_t owner)
{
	int r = -1;

	ck_assert_int_eq(sync_trail(s, name, 1, owner, 0, on_answer, NULL,
	    &r), 1);
	return r;
}

START_TEST(test_trail)
{
	struct sync *s = sync_new();
	struct held h = { 0 };
	int i, starts = 0, finishes = 0, r;

	/* 50 users, overlapping: one start, and the last finish held. */
	for (i = 0; i < 50; i++)
		starts += start(s, "db", (uint64_t)i);
	for (i = 0; i < 49; i++)
		finishes += finish(s, "db", (uint64_t)i);
	ck_assert_int_eq(starts, 1);
	ck_assert_int_eq(finishes, 0);
	ck_assert_int_eq(sync_trail(s, "db", 1, 49, 10.0, on_answer, &h, &r),
	    0);
	ck_assert_uint_eq(sync_trail_held(s), 1);
	ck_assert(sync_trail_holds(s, 49, UINT64_MAX));
	/* Not yet due; then nothing else can come: it is the last. */
	ck_assert_uint_eq(sync_trail_release(s, 5.0), 0);
	ck_assert_uint_eq(sync_trail_release(s, -1), 1);
	ck_assert_int_eq(h.answered, 1);
	ck_assert_int_eq(h.result, 1);
	ck_assert_uint_eq(sync_trail_held(s), 0);
	/* Torn down: the next user sets it up again. */
	ck_assert_int_eq(start(s, "db", 60), 1);
	/* A finish from one that never started is never the last. */
	ck_assert_int_eq(finish(s, "other", 1), 0);
	ck_assert_int_eq(finish(s, "db", 61), 0);
	sync_free(s);
}
END_TEST

/* One user ends before the next begins: the thing must stay up for it. */
START_TEST(test_trail_gap)
{
	struct sync *s = sync_new();
	struct held h = { 0 }, h2 = { 0 };
	int r;

	ck_assert_int_eq(start(s, "db", 1), 1);
	ck_assert_int_eq(sync_trail(s, "db", 1, 1, 99, on_answer, &h, &r), 0);
	ck_assert_int_eq(start(s, "db", 2), 0);	/* still up */
	ck_assert_int_eq(h.answered, 1);
	ck_assert_int_eq(h.result, 0);		/* 1 was not the last */
	ck_assert_int_eq(sync_trail(s, "db", 1, 2, 99, on_answer, &h2, &r),
	    0);
	/* Past its deadline: released as the last. */
	ck_assert_uint_eq(sync_trail_release(s, 100.0), 1);
	ck_assert_int_eq(h2.result, 1);
	/* answer NULL: the last finish is told at once. */
	ck_assert_int_eq(start(s, "db", 3), 1);
	ck_assert_int_eq(sync_trail(s, "db", 1, 3, 0, NULL, NULL, &r), 1);
	ck_assert_int_eq(r, 1);
	sync_free(s);
}
END_TEST

/* A user that dies leaves the count; a held finish of a dead owner is
 * dropped, and the thing stays up for the next user to tear down. */
START_TEST(test_trail_owner_gone)
{
	struct sync *s = sync_new();
	struct held h = { 0 };
	int r;

	ck_assert_int_eq(start(s, "db", 1), 1);
	ck_assert_int_eq(start(s, "db", 2), 0);
	sync_owner_gone(s, 2, 1, on_drop_held);	/* died between the two */
	ck_assert_int_eq(sync_trail(s, "db", 1, 1, 9, on_answer, &h, &r), 0);
	sync_owner_gone(s, 1, 1, on_drop_held);
	ck_assert_int_eq(h.dropped, 1);
	ck_assert_int_eq(h.answered, 0);
	ck_assert_uint_eq(sync_trail_held(s), 0);
	ck_assert_int_eq(start(s, "db", 3), 0);	/* never torn down */
	ck_assert_int_eq(sync_trail(s, "db", 1, 3, 0, NULL, NULL, &r), 1);
	ck_assert_int_eq(r, 1);
	sync_free(s);
}
END_TEST

/* A worker lost: every owner of its slot goes, and no other's. */
START_TEST(test_owners_gone_by_slot)
{
	struct sync *s = sync_new();
	struct grant g = { 0 };
	int died;

	ck_assert_int_eq(sync_lock(s, "a", SYNC_OWNER(3, 7), on_grant, NULL,
	    &died), 1);
	ck_assert_int_eq(sync_lock(s, "b", SYNC_OWNER(3, SYNC_OWNER_GROUP),
	    on_grant, NULL, &died), 1);
	ck_assert_int_eq(sync_lock(s, "c", SYNC_OWNER(4, 7), on_grant, NULL,
	    &died), 1);
	ck_assert_int_eq(sync_lock(s, "a", SYNC_OWNER(5, 1), on_grant, &g,
	    &died), 0);
	ck_assert_uint_eq(sync_owners_gone(s, SYNC_OWNER(3, 0),
	    SYNC_OWNER_SLOT_MASK, 1, NULL), 2);
	ck_assert_int_eq(g.got, 1);
	ck_assert_int_eq(g.died, 1);
	ck_assert_int_eq(sync_unlock(s, "c", SYNC_OWNER(4, 7)), 0);
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
	tcase_add_test(tc, test_trail_gap);
	tcase_add_test(tc, test_trail_owner_gone);
	tcase_add_test(tc, test_owners_gone_by_slot);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

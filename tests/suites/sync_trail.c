/*
 * sync_trail.c - 50 tests on one trail: the first to start sets the
 * shared resource up, the last to finish tears it down (pytest-mp's
 * mp_trail). Each records "setup", "use" or "teardown" (record.h), so
 * that a checker can count one set-up, one tear-down, and every use
 * between them.
 *
 * A start is true for one test only, but the others return at once: as
 * pytest-mp's trail runs its block under a lock, the recipe takes a
 * lock around the start and the set-up, so that no test uses the
 * resource before it is ready. Never around the finish: the last
 * finish waits to learn whether another test starts the trail, and a
 * test blocked on the lock could not.
 */
#include <distmgr.h>

#include "record.h"

static void
use(const char *id)
{
	double t;
	int r;

	DM_ASSERT_EQ(dm_lock("shared.setup"), 0);
	r = dm_trail("shared", DM_START);
	DM_ASSERT(r >= 0, "dm_trail(DM_START) failed");
	if (r == 1) {
		t = rec_now();
		rec_nap(50);	/* an expensive set-up */
		rec_line("setup", id, t, rec_now());
	}
	DM_ASSERT_EQ(dm_unlock("shared.setup"), 0);
	rec_work(id, 20);
	r = dm_trail("shared", DM_FINISH);
	DM_ASSERT(r >= 0, "dm_trail(DM_FINISH) failed");
	if (r == 1) {
		t = rec_now();
		rec_line("teardown", id, t, t);
	}
}

#define T(n) DM_TEST(trail, t##n) { use("trail/t" #n); }
#define T10(n) T(n##0) T(n##1) T(n##2) T(n##3) T(n##4) \
	T(n##5) T(n##6) T(n##7) T(n##8) T(n##9)
T10(0) T10(1) T10(2) T10(3) T10(4)

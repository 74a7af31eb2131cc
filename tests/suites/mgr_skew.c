/*
 * mgr_skew.c - tests of different lengths, the longest defined last, and
 * one failure defined last: the second run, knowing the history, must
 * run the failure first (--ff) and then the longest first.
 */
#include <time.h>

#include <distmgr.h>

static void
nap(long ms)
{
	struct timespec ts = { 0, ms * 1000 * 1000 };

	while (nanosleep(&ts, &ts) == -1)
		;
}

DM_TEST(skew, a_short) { nap(5); }
DM_TEST(skew, b_short) { nap(5); }
DM_TEST(skew, c_medium) { nap(60); }
DM_TEST(skew, d_long) { nap(150); }
DM_TEST(skew, e_fails) { DM_ASSERT(0, "always"); }

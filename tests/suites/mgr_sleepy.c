/*
 * mgr_sleepy.c - 40 tests of 100 ms each: a run long enough to kill,
 * stop or interrupt a worker in the middle of.
 */
#include <time.h>

#include <distmgr.h>

static void
nap(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	while (nanosleep(&ts, &ts) == -1)
		;
}

#define S(n) DM_TEST(sleepy, s##n) { nap(); }
#define S10(n) S(n##0) S(n##1) S(n##2) S(n##3) S(n##4) \
	S(n##5) S(n##6) S(n##7) S(n##8) S(n##9)
S10(0) S10(1) S10(2) S10(3)

/*
 * farm_slow.c - 48 tests of 250 ms each: on four workers a run of about
 * three seconds, long enough to cut a farm host's link, kill its daemon
 * or start a late one while it goes on.
 */
#include <time.h>

#include <distmgr.h>

static void
nap(void)
{
	struct timespec ts = { 0, 250 * 1000 * 1000 };

	while (nanosleep(&ts, &ts) == -1)
		;
}

#define S(n) DM_TEST(slow, s##n) { nap(); }
#define S8(n) S(n##0) S(n##1) S(n##2) S(n##3) S(n##4) S(n##5) S(n##6) \
	S(n##7)
S8(0) S8(1) S8(2) S8(3) S8(4) S8(5)

/*
 * sync_counter.c - 100 tests that each add one to a counter file under
 * dm_lock("counter"), reading, pausing and writing it back: without the
 * lock, tests running at the same time lose updates. The file is
 * $SYNC_COUNTER (a test without it skips). Each test also leaves
 * "pid start end" on a line of $SYNC_COUNTER.log while it held the lock,
 * so that a checker can see no two holds overlapped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <distmgr.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bump(void)
{
	const char *path = getenv("SYNC_COUNTER");
	struct timespec nap = { 0, 2 * 1000 * 1000 };
	char logpath[4096];
	double t0, t1;
	long n = 0;
	FILE *f;

	if (path == NULL)
		DM_SKIP("SYNC_COUNTER is not set");
	DM_ASSERT(dm_lock("counter") >= 0, "dm_lock failed");
	t0 = now();
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	nanosleep(&nap, NULL);	/* a window for a lost update */
	f = fopen(path, "w");
	DM_ASSERT(f != NULL, "cannot write %s", path);
	fprintf(f, "%ld\n", n + 1);
	fclose(f);
	t1 = now();
	snprintf(logpath, sizeof logpath, "%s.log", path);
	if ((f = fopen(logpath, "a")) != NULL) {
		fprintf(f, "%ld %.6f %.6f\n", (long)getpid(), t0, t1);
		fclose(f);
	}
	DM_ASSERT_EQ(dm_unlock("counter"), 0);
}

#define B(n) DM_TEST(counter, c##n) { bump(); }
#define B10(n) B(n##0) B(n##1) B(n##2) B(n##3) B(n##4) \
	B(n##5) B(n##6) B(n##7) B(n##8) B(n##9)
B10(0) B10(1) B10(2) B10(3) B10(4) B10(5) B10(6) B10(7) B10(8) B10(9)

/*
 * daemon.c - tests for driving distworker --listen: quick ones, slow
 * ones to stop a daemon in the middle of, one that reads what a manager
 * shipped into the directory it runs in, and one that crashes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <distmgr.h>

static void
nap(double seconds)
{
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1)
		;
}

/* Leaves its pid where DAEMON_TEST_PIDS says, for a test that wants to
 * know whether it was killed. */
static void
note_pid(const char *what)
{
	const char *dir = getenv("DAEMON_TEST_PIDS");
	char path[512];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof path, "%s/%s", dir, what);
	if ((f = fopen(path, "w")) != NULL) {
		fprintf(f, "%ld\n", (long)getpid());
		fclose(f);
	}
}

DM_TEST(daemon, pass) { DM_ASSERT_EQ(1 + 1, 2); }

DM_TEST(daemon, second) { DM_ASSERT_EQ(2 + 2, 4); }

DM_TEST(daemon, sleep1)
{
	note_pid("sleep1");
	nap(1.0);
}

DM_TEST(daemon, sleep_long)
{
	note_pid("sleep_long");
	nap(60.0);
}

/* hello's chdir put it where the manager shipped data/hello.txt. */
DM_TEST(daemon, reads_shipped)
{
	char buf[64], cwd[1024];
	FILE *f = fopen("hello.txt", "r");
	size_t n;

	DM_ASSERT(getcwd(cwd, sizeof cwd) != NULL);
	printf("cwd %s\n", cwd);
	DM_ASSERT_NOT_NULL(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	DM_ASSERT_STR_EQ(buf, "shipped\n");
}

DM_TEST(daemon, crash)
{
	volatile int *nowhere = NULL;

	*nowhere = 1;
}

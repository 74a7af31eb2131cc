/*
 * deaths.c - tests that end their process: crashes, exit(), expected
 * signals and exit codes, and hangs that only a timeout ends. Run boxed
 * even by an in-process worker when they say they expect to die.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <distmgr.h>

static void
segv(void)
{
	volatile int *p = NULL;

	*p = 1;
}

static void
hang(void)
{
	for (;;)
		pause();
}

static void
exit_in_init(void)
{
	exit(2);
}

/* Passes: in-process, its result must reach the manager before the next
 * test takes the worker down. */
DM_TEST(deaths, fine) { }
DM_TEST(deaths, segv) { segv(); }
DM_TEST(deaths, abort) { abort(); }
DM_TEST(deaths, exit3) { exit(3); }
DM_TEST(deaths, exit0) { exit(0); }
DM_TEST(deaths, expect_abort, .signal = SIGABRT) { abort(); }
DM_TEST(deaths, expect_exit3, .exit_code = 3) { exit(3); }
DM_TEST(deaths, expect_exit0, .exit_code = 0) { exit(0); }
DM_TEST(deaths, expect_abort_returned, .signal = SIGABRT) { }
DM_TEST(deaths, expect_exit3_returned, .exit_code = 3) { }
DM_TEST(deaths, expect_exit3_got4, .exit_code = 3) { exit(4); }
DM_TEST(deaths, expect_abort_got_segv, .signal = SIGABRT) { segv(); }
DM_TEST(deaths, todo_crash, .todo = "bug 7") { segv(); }
DM_TEST(deaths, exit_in_init, .init = exit_in_init) { }

DM_TEST(deaths, print_then_crash)
{
	printf("before the crash\n");
	fprintf(stderr, "on stderr too\n");
	segv();
}

DM_TEST(deaths, timeout, .timeout = 0.3) { hang(); }
/* Takes the worker's default timeout (hello's, or --timeout). */
DM_TEST(deaths, hang) { hang(); }

/* Ends when the worker kills it; first says who it is, for the test that
 * checks it is gone. */
DM_TEST(deaths, hang_pidfile)
{
	const char *path = getenv("DM_TEST_PIDFILE");
	FILE *f;

	if (path != NULL && (f = fopen(path, "w")) != NULL) {
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	hang();
}

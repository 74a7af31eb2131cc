/*
 * webgate.c - the run the live dashboard's browser test watches
 * (tests/integration/web-browser.sh, once distmgr has --web).
 *
 * 40 tests: one fails with a message and output, one crashes, two are
 * skipped, and webgate/gate waits until the file named by $DM_WEB_GATE
 * exists (at most two minutes), so that the test can look at the page
 * while the run is still going, without racing it: every other test has
 * finished by then, whatever the order.
 */
#include <distmgr.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

DM_TEST(webgate, gate)
{
	const char *gate = getenv("DM_WEB_GATE");
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	struct stat st;

	for (int i = 0; gate != NULL && i < 1200 && stat(gate, &st) == -1; i++)
		nanosleep(&ts, NULL);
}

DM_TEST(webgate, fails)
{
	printf("stdout of the failing test\n");
	fflush(stdout);
	DM_FAIL("expected %d, got %d", 42, 41);
}

DM_TEST(webgate, crashes)
{
	volatile int *nowhere = NULL;

	*nowhere = 1;
}

DM_TEST(webgate, skipped, .skip = "no printer here") { }
DM_TEST(webgate, skipped_too, .skip = "not on this platform") { }

#define PASSES(n) DM_TEST(webgate, pass_##n) { DM_ASSERT_EQ(1 + 1, 2); }
PASSES(01) PASSES(02) PASSES(03) PASSES(04) PASSES(05) PASSES(06) PASSES(07)
PASSES(08) PASSES(09) PASSES(10) PASSES(11) PASSES(12) PASSES(13) PASSES(14)
PASSES(15) PASSES(16) PASSES(17) PASSES(18) PASSES(19) PASSES(20) PASSES(21)
PASSES(22) PASSES(23) PASSES(24) PASSES(25) PASSES(26) PASSES(27) PASSES(28)
PASSES(29) PASSES(30) PASSES(31) PASSES(32) PASSES(33) PASSES(34) PASSES(35)

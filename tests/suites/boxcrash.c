/*
 * boxcrash.c - a suite whose constructor crashes in the box helper
 * (distworker-box) and nowhere else: the worker loads it, its boxed
 * tests cannot run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <distmgr.h>

__attribute__((constructor)) static void
crash_in_helper(void)
{
	if (strcmp(program_invocation_short_name, "distworker-box") == 0)
		abort();
}

DM_TEST(boxcrash, t1) { }
DM_TEST(boxcrash, t2) { }
DM_TEST(boxcrash, t3) { }
DM_TEST(boxcrash, t4) { }

/*
 * chatty.c - a suite whose constructor prints when it is loaded: that is
 * no test's output, and must not be attributed to the first test run.
 */
#include <stdio.h>

#include <distmgr.h>

__attribute__((constructor)) static void
say_hello(void)
{
	printf("constructor output\n");
	fprintf(stderr, "constructor error output\n");
}

DM_TEST(chatty, first) { printf("test output\n"); }

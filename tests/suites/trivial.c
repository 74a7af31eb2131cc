/* trivial.c - one test that does nothing: what the benchmarks run. */
#include <distmgr.h>

static volatile int calls;

DM_TEST(trivial, nothing) { calls++; }

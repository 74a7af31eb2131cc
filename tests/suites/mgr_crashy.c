/*
 * mgr_crashy.c - 1010 quick tests of which the 10 named crash_* die of
 * SIGSEGV: in-process each takes its worker down, and the manager must
 * blame exactly these, however the deaths race with its writes.
 */
#include <signal.h>

#include <distmgr.h>

#define P(n) DM_TEST(crashy, p##n) { }
#define P10(n) P(n##0) P(n##1) P(n##2) P(n##3) P(n##4) \
	P(n##5) P(n##6) P(n##7) P(n##8) P(n##9)
#define C(n) DM_TEST(crashy, crash_##n) { raise(SIGSEGV); }
#define BLOCK(n) P10(n##0) P10(n##1) P10(n##2) P10(n##3) P10(n##4) \
	C(n) P10(n##5) P10(n##6) P10(n##7) P10(n##8) P10(n##9)

BLOCK(0) BLOCK(1) BLOCK(2) BLOCK(3) BLOCK(4) BLOCK(5) BLOCK(6) BLOCK(7)
BLOCK(8) BLOCK(9)

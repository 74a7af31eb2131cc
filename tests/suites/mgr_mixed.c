/*
 * mgr_mixed.c - one test of each kind the manager must report, for
 * tests/integration/manager.sh: passes, a failure, crashes, a hang with a
 * short limit, a skip and a todo that crashes.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <distmgr.h>

#define P(n) DM_TEST(mixed, pass##n) { DM_ASSERT_EQ(n + 1, 1 + n); }
P(0) P(1) P(2) P(3) P(4) P(5) P(6) P(7) P(8) P(9)

DM_TEST(mixed, fail) { DM_ASSERT_EQ(2 + 2, 5, "arithmetic"); }
DM_TEST(mixed, segv) { raise(SIGSEGV); }
DM_TEST(mixed, abort) { abort(); }
DM_TEST(mixed, hang, .timeout = 0.5) { for (;;) pause(); }
DM_TEST(mixed, skip, .skip = "not here") { }
DM_TEST(mixed, todo_crash, .todo = "bug 1") { raise(SIGSEGV); }

/*
 * wgroups.c - serial groups and the synchronisation calls as the worker
 * alone runs them (tests/unit/test_worker.c plays the manager): a group
 * whose tests share the process its init set up, one whose init fails,
 * one whose fini fails, and a test calling every dm_ function.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <distmgr.h>

static int shared;

static void g_init(void) { printf("init\n"); shared = 1; }
static void g_fini(void) { printf("fini %d\n", shared); }
DM_GROUP(g, .strategy = "serial", .init = g_init, .fini = g_fini);

#define G(n) DM_TEST(g, n, .group = "g") {				\
	DM_ASSERT(shared > 0, "not set up");				\
	printf("pid=%ld n=%d\n", (long)getpid(), shared++);		\
}
G(a)
G(b)
G(c)

static void bad_init(void) { printf("bad init\n"); DM_FAIL("no database"); } /* @bad_group_init */
DM_GROUP(bad, .strategy = "isolated_serial", .init = bad_init);
DM_TEST(bad, x, .group = "bad") { printf("x ran\n"); }
DM_TEST(bad, y, .group = "bad") { printf("y ran\n"); }

static void bad_fini(void) { DM_FAIL("cannot clean up"); } /* @bad_group_fini */
DM_GROUP(badfini, .strategy = "serial", .fini = bad_fini);
DM_TEST(badfini, p, .group = "badfini") { }
DM_TEST(badfini, q, .group = "badfini") { }

DM_TEST(sync, calls)
{
	char *v = dm_board_get("k");

	printf("lock=%d board=%s set=%d trail=%d unlock=%d\n", dm_lock("db"),
	    v != NULL ? v : "(null)", dm_board_set("k", "v"),
	    dm_trail("t", DM_START), dm_unlock("db"));
	free(v);
}

/* The box helper ignores SIGINT and SIGTERM; its tests must not. */
DM_TEST(sig, term, .signal = SIGTERM) { raise(SIGTERM); }
DM_TEST(sig, intr, .signal = SIGINT) { raise(SIGINT); }

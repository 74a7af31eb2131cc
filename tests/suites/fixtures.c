/*
 * fixtures.c - per-test init and fini, and the DM_SUITE defaults a suite
 * gives its tests: a failing fixture is an error, a skipping one skips,
 * fini runs after a failed test.
 */
#include <stdio.h>
#include <unistd.h>

#include <distmgr.h>

static int initialised;

static void
say_init(void)
{
	printf("init\n");
}

static void
say_fini(void)
{
	printf("fini\n");
}

static void
bad_init(void)
{
	DM_ASSERT_EQ(1, 2, "no database"); /* @bad_init */
}

static void
bad_fini(void)
{
	DM_FAIL("cannot clean up"); /* @bad_fini */
}

static void
skip_init(void)
{
	DM_SKIP("no network"); /* @skip_init */
}

static void
default_init(void)
{
	initialised = 1;
}

DM_TEST(fixtures, order, .init = say_init, .fini = say_fini)
{
	printf("test\n");
}

DM_TEST(fixtures, init_fails, .init = bad_init, .fini = say_fini)
{
	printf("test\n");
}

DM_TEST(fixtures, fini_fails, .fini = bad_fini) { printf("test\n"); }
DM_TEST(fixtures, init_skips, .init = skip_init) { DM_FAIL("ran"); }

DM_TEST(fixtures, fini_after_failure, .fini = say_fini)
{
	DM_FAIL("boom"); /* @boom */
}

/* The test's own failure is its result even when fini fails too. */
DM_TEST(fixtures, both_fail, .fini = bad_fini)
{
	DM_FAIL("first"); /* @first */
}

DM_SUITE(defaulted, .init = default_init, .timeout = 0.25,
    .tags = "slow, db");

DM_TEST(defaulted, uses_init) { DM_ASSERT_EQ(initialised, 1); }
DM_TEST(defaulted, slow) { for (;;) pause(); }
DM_TEST(defaulted, tagged, .tags = "db, net", .group = "g1",
    .lock = "printer,disk", .serial = 1) { }

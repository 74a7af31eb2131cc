/*
 * outcomes.c - one test per outcome a test can reach on its own (pass,
 * fail for every assertion, skip, xfail, xpass) with messages the
 * worker's tests check word for word. Lines marked with an @name comment
 * are found by that name: keep the markers on the assertion's line.
 */
#include <distmgr.h>

static int one = 1, two = 2;
static const char *hello = "hello";
static const char *nothing = NULL;

DM_TEST(outcomes, pass) { DM_ASSERT_EQ(one + one, 2); }

DM_TEST(outcomes, assert)
{
	DM_ASSERT(one + one == 3); /* @assert */
}

DM_TEST(outcomes, assert_message)
{
	DM_ASSERT(two == 3, "two was %d", two); /* @assert_message */
}

DM_TEST(outcomes, eq) { DM_ASSERT_EQ(one + one, 3); /* @eq */ }
DM_TEST(outcomes, ne) { DM_ASSERT_NE(two, 2); /* @ne */ }
DM_TEST(outcomes, lt) { DM_ASSERT_LT(3, two); /* @lt */ }
DM_TEST(outcomes, le) { DM_ASSERT_LE(3, two); /* @le */ }
DM_TEST(outcomes, gt) { DM_ASSERT_GT(one, two); /* @gt */ }
DM_TEST(outcomes, ge) { DM_ASSERT_GE(one, two, "in %s", "ge"); /* @ge */ }
DM_TEST(outcomes, str_eq) { DM_ASSERT_STR_EQ(hello, "world"); /* @str_eq */ }
DM_TEST(outcomes, str_ne) { DM_ASSERT_STR_NE(hello, "hello"); /* @str_ne */ }
DM_TEST(outcomes, str_null) { DM_ASSERT_STR_EQ(nothing, "x"); /* @str_null */ }

DM_TEST(outcomes, mem_eq)
{
	unsigned char a[4] = { 1, 2, 3, 4 }, b[4] = { 1, 2, 9, 4 };

	DM_ASSERT_MEM_EQ(a, b, sizeof a); /* @mem_eq */
}

DM_TEST(outcomes, null) { DM_ASSERT_NULL(hello); /* @null */ }
DM_TEST(outcomes, not_null) { DM_ASSERT_NOT_NULL(nothing); /* @not_null */ }

DM_TEST(outcomes, float_eq)
{
	DM_ASSERT_FLOAT_EQ(0.5 + 0.25, 0.7, 0.01); /* @float_eq */
}

DM_TEST(outcomes, float_ok) { DM_ASSERT_FLOAT_EQ(0.1 + 0.2, 0.3, 1e-9); }

DM_TEST(outcomes, fail) { DM_FAIL("broken %d times", 42); /* @fail */ }
DM_TEST(outcomes, fail_bare) { DM_FAIL(); /* @fail_bare */ }
DM_TEST(outcomes, skip_call) { DM_SKIP("not on %s", "tuesday"); /* @skip_call */ }
DM_TEST(outcomes, skip_option, .skip = "needs a printer") { DM_FAIL("ran"); }
DM_TEST(outcomes, xfail, .todo = "bug 12") { DM_ASSERT_EQ(one, two); /* @xfail */ }
DM_TEST(outcomes, xpass, .todo = "bug 13") { DM_ASSERT_EQ(one, one); }

/* The first failing assertion ends the test: the second is not reached. */
DM_TEST(outcomes, first_failure_ends)
{
	DM_ASSERT_EQ(one, 1);
	DM_ASSERT_EQ(one, 5); /* @first_failure */
	DM_ASSERT_EQ(one, 6);
}

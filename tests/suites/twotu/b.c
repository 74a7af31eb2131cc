/* twotu/b.c - the second translation unit of the twotu suite. */
#include <distmgr.h>

#include "shared.h"

int
twice(int x)
{
	return 2 * x;
}

DM_TEST(two, in_b, .tags = "net, slow") { DM_ASSERT_EQ(twice(1), 2); }
DM_TEST(other, in_b) { DM_ASSERT_EQ(twice(0), 0); }

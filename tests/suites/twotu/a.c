/* twotu/a.c - a suite built from two translation units (see b.c). */
#include <distmgr.h>

#include "shared.h"

DM_SUITE(two, .tags = "slow");

DM_TEST(two, in_a) { DM_ASSERT_EQ(twice(2), 4); }
DM_TEST(two, also_in_a) { DM_ASSERT_EQ(twice(3), 7); /* @also_in_a */ }

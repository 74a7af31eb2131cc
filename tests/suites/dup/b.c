/* dup/b.c - the second definition of d/same. */
#include <distmgr.h>

DM_TEST(d, unique_b) { }
DM_TEST(d, same) { }

/* dup/a.c - a bad suite: the same test id in two files (see b.c). */
#include <distmgr.h>

DM_TEST(d, unique_a) { }
DM_TEST(d, same) { }

/*
 * conflict.c - a group whose strategy is declared twice, differently:
 * loading it must fail with a message naming both places.
 */
#include <distmgr.h>

DM_GROUP(db, .strategy = "serial");

DM_TEST(conflict, a, .group = "db") { }
DM_TEST(conflict, b, .group = "db", .strategy = "isolated_free") { }

/*
 * groups.c - one suite with every strategy, resource locks and serial
 * tests, each test recording when it ran and in which process
 * (record.h), for tests/integration/groups.sh to check what each
 * strategy promises:
 *
 *   free       8 tests that may overlap each other and anything else
 *   isofree    4 tests (isolated_free): nothing outside them meanwhile
 *   isoser     4 tests (isolated_serial, DM_GROUP set-up and tear-down)
 *   ser        6 tests (serial, DM_GROUP set-up and tear-down): one
 *              process, one after another, sharing what the set-up made
 *   db         4 tests holding the resource lock "db"
 *   alone      2 tests marked .serial
 */
#include <string.h>

#include <distmgr.h>

#include "record.h"

/* ---- free ---------------------------------------------------------------- */

#define F(n) DM_TEST(free, f##n, .group = "free") { rec_work("free/f" #n, 150); }
F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)

/* ---- isolated_free --------------------------------------------------------- */

#define IF(n) DM_TEST(isofree, i##n, .group = "isofree", \
	.strategy = "isolated_free") { rec_work("isofree/i" #n, 100); }
IF(0) IF(1) IF(2) IF(3)

/* ---- serial groups, with their set-up --------------------------------------- */

/* What a group's set-up leaves for its tests: they share its process. */
static int ser_ready, ser_count, isoser_ready;

static void
ser_init(void)
{
	double t = rec_now();

	ser_ready = 1;
	ser_count = 0;
	rec_line("setup", "ser", t, t);
}

static void
ser_fini(void)
{
	double t = rec_now();

	DM_ASSERT_EQ(ser_ready, 1);
	ser_ready = 0;
	rec_line("teardown", "ser", t, t);
}

DM_GROUP(ser, .strategy = "serial", .init = ser_init, .fini = ser_fini);

/* Each test finds the set-up done, and its predecessors' counts. */
#define S(n) DM_TEST(ser, s##n, .group = "ser") {			\
	DM_ASSERT_EQ(ser_ready, 1, "the group's set-up did not run here"); \
	ser_count++;							\
	rec_work("ser/s" #n, 50);					\
}
S(0) S(1) S(2) S(3) S(4) S(5)

static void
isoser_init(void)
{
	double t = rec_now();

	isoser_ready = 1;
	rec_line("setup", "isoser", t, t);
}

static void
isoser_fini(void)
{
	double t = rec_now();

	rec_line("teardown", "isoser", t, t);
}

DM_GROUP(isoser, .strategy = "isolated_serial", .init = isoser_init,
    .fini = isoser_fini);

#define IS(n) DM_TEST(isoser, s##n, .group = "isoser") {		\
	DM_ASSERT_EQ(isoser_ready, 1);					\
	rec_work("isoser/s" #n, 80);					\
}
IS(0) IS(1) IS(2) IS(3)

/* ---- a resource lock, and tests that run alone ------------------------------ */

#define L(n) DM_TEST(db, l##n, .lock = "db") { rec_work("db/l" #n, 80); }
L(0) L(1) L(2) L(3)

DM_TEST(alone, a0, .serial = 1) { rec_work("alone/a0", 100); }
DM_TEST(alone, a1, .serial = 1) { rec_work("alone/a1", 100); }

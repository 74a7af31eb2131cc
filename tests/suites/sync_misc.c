/*
 * sync_misc.c - the board, and locks whose holder dies: each group of
 * tests is picked with -k by tests/integration/groups.sh.
 *
 *   board      set and get strings and JSON text; a key never set
 *   crash      holder takes "L", says so in $DM_MARK, and crashes;
 *              waiter waits for the mark, then takes "L" and must be
 *              told the previous holder died
 *   hang       the same with a holder that times out
 *   recover    a serial group whose third test kills its worker: the
 *              rest run as a group again, set up again, elsewhere
 */
#include <sys/stat.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <distmgr.h>

#include "record.h"

/* ---- the board ------------------------------------------------------------- */

DM_TEST(board, strings)
{
	char key[64], *v;

	snprintf(key, sizeof key, "k.%ld", (long)getpid());
	DM_ASSERT_EQ(dm_board_set(key, "hello world"), 0);
	v = dm_board_get(key);
	DM_ASSERT(v != NULL && strcmp(v, "hello world") == 0, "got '%s'",
	    v != NULL ? v : "(null)");
	free(v);
	DM_ASSERT_EQ(dm_board_set(key, "again"), 0);
	v = dm_board_get(key);
	DM_ASSERT(v != NULL && strcmp(v, "again") == 0, "an update is seen");
	free(v);
}

DM_TEST(board, json)
{
	const char *json = "{\"port\": 5432, \"hosts\": [\"a\", \"b\"]}";
	char *v;

	DM_ASSERT_EQ(dm_board_set("db.config", json), 0);
	v = dm_board_get("db.config");
	DM_ASSERT(v != NULL && strcmp(v, json) == 0, "got '%s'",
	    v != NULL ? v : "(null)");
	free(v);
}

DM_TEST(board, unset)
{
	DM_ASSERT(dm_board_get("no such key, ever") == NULL);
}

/* ---- a lock holder that dies ----------------------------------------------- */

static void
wait_mark(void)
{
	const char *mark = getenv("DM_MARK");
	struct stat st;
	int i;

	DM_ASSERT(mark != NULL, "DM_MARK is not set");
	for (i = 0; i < 3000 && stat(mark, &st) == -1; i++)
		rec_nap(10);
	DM_ASSERT(i < 3000, "the holder never took the lock");
}

static void
hold(void)
{
	const char *mark = getenv("DM_MARK");
	FILE *f;

	DM_ASSERT(mark != NULL, "DM_MARK is not set");
	DM_ASSERT_EQ(dm_lock("L"), 0);
	if ((f = fopen(mark, "w")) != NULL)
		fclose(f);
}

DM_TEST(crash, holder) { hold(); rec_nap(200); abort(); }
DM_TEST(crash, waiter, .timeout = 60)
{
	wait_mark();
	DM_ASSERT_EQ(dm_lock("L"), 1, "the waiter is told the holder died");
	DM_ASSERT_EQ(dm_unlock("L"), 0);
	DM_ASSERT_EQ(dm_lock("L"), 0, "and the next is not told again");
	DM_ASSERT_EQ(dm_unlock("L"), 0);
}

DM_TEST(hang, holder, .timeout = 1) { hold(); for (;;) rec_nap(1000); }
DM_TEST(hang, waiter, .timeout = 60)
{
	wait_mark();
	DM_ASSERT_EQ(dm_lock("L"), 1, "the waiter is told the holder died");
	DM_ASSERT_EQ(dm_unlock("L"), 0);
}

/* ---- a worker killed inside a serial group ---------------------------------- */

static int recover_ready;

static void
recover_init(void)
{
	double t = rec_now();

	recover_ready = 1;
	rec_line("setup", "recover", t, t);
}

static void
recover_fini(void)
{
	double t = rec_now();

	rec_line("teardown", "recover", t, t);
}

DM_GROUP(recover, .strategy = "serial", .init = recover_init,
    .fini = recover_fini);

/* The worker: this process in-process, else the box helper's parent. */
static pid_t
worker_pid(void)
{
	char path[64], comm[64] = "", line[512];
	pid_t helper = getppid();
	long ppid = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/comm", (long)helper);
	if ((f = fopen(path, "r")) != NULL) {
		if (fgets(comm, sizeof comm, f) == NULL)
			comm[0] = '\0';
		fclose(f);
	}
	if (strncmp(comm, "distworker-box", 14) != 0)
		return getpid();
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)helper);
	if ((f = fopen(path, "r")) != NULL) {
		if (fgets(line, sizeof line, f) != NULL &&
		    strrchr(line, ')') != NULL)
			sscanf(strrchr(line, ')') + 2, "%*c %ld", &ppid);
		fclose(f);
	}
	return (pid_t)ppid;
}

#define R(n) DM_TEST(recover, r##n, .group = "recover") {		\
	DM_ASSERT_EQ(recover_ready, 1, "not set up in this process");	\
	rec_work("recover/r" #n, 30);					\
}
R(0)
R(1)
DM_TEST(recover, r2, .group = "recover")
{
	pid_t w = worker_pid();

	rec_work("recover/r2", 30);
	DM_ASSERT(w > 1, "cannot find the worker");
	kill(w, SIGKILL);
	rec_nap(5000);
}
R(3)
R(4)
R(5)

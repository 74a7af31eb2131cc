/*
 * boxer.c - tests that go after the box helper a boxed worker forks them
 * from (distworker-box): kill it, stop it, leave a process outside their
 * group; and ask for a lock, the board and a trail through the
 * synchronisation channel, which answers "not available" for now.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <distmgr.h>

static void
hang(void)
{
	for (;;)
		pause();
}

DM_TEST(boxer, fine) { }

/* Says who runs it (its parent, the helper), for the test that kills
 * the helper from outside, and waits for that. */
DM_TEST(boxer, helper_pid)
{
	const char *path = getenv("DM_TEST_PIDFILE");
	FILE *f;

	DM_ASSERT_NOT_NULL(path);
	DM_ASSERT_NOT_NULL(f = fopen(path, "w"));
	fprintf(f, "%d\n", (int)getppid());
	fclose(f);
	hang();
}

DM_TEST(boxer, kills_helper)
{
	kill(getppid(), SIGKILL);
	hang();
}

DM_TEST(boxer, stops_helper, .timeout = 0.3)
{
	kill(getppid(), SIGSTOP);
}

static char *
escaped_pidfile(char *buf, size_t len)
{
	snprintf(buf, len, "%s/escaped.pid", getenv("TMPDIR"));
	return buf;
}

/* Leaves a process in a session of its own: not in the test's group. */
DM_TEST(boxer, escapes)
{
	char path[4096], tmp[4200];
	struct timespec ts = { 0, 1000 * 1000 };
	struct stat st;
	FILE *f;
	int i;

	escaped_pidfile(path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (fork() == 0) {
		setsid();
		if ((f = fopen(tmp, "w")) != NULL) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
			rename(tmp, path);
		}
		sleep(1000);
		_exit(0);
	}
	for (i = 0; i < 5000 && stat(path, &st) == -1; i++)
		nanosleep(&ts, NULL);
	DM_ASSERT_EQ(stat(path, &st), 0, "the escaped child never wrote");
}

/* Runs after escapes: that process is gone (and reaped) already. */
DM_TEST(boxer, escaped_gone)
{
	char path[4096];
	FILE *f;
	int pid = 0;

	DM_ASSERT_NOT_NULL(f = fopen(escaped_pidfile(path, sizeof path), "r"));
	DM_ASSERT_EQ(fscanf(f, "%d", &pid), 1);
	fclose(f);
	DM_ASSERT_EQ(kill(pid, 0), -1, "pid %d outlived its test", pid);
	DM_ASSERT_EQ(errno, ESRCH);
}

/* A process the test forked shares its channel, and answers could
 * cross: its calls are refused (-1), never sent. */
DM_TEST(boxer, sync_not_available)
{
	pid_t pid;
	int status;

	if ((pid = fork()) == 0)
		_exit(dm_lock("db") == -1 && dm_unlock("db") == -1 &&
		    dm_board_set("key", "value") == -1 &&
		    dm_board_get("key") == NULL &&
		    dm_trail("setup", DM_START) == -1 ? 0 : 1);
	DM_ASSERT(pid > 0);
	DM_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	DM_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "a forked process was answered");
}

/* Where it runs: the worker's directory. */
DM_TEST(boxer, cwd)
{
	char buf[4096];

	DM_ASSERT_NOT_NULL(getcwd(buf, sizeof buf));
	printf("%s\n", buf);
}

/*
 * isolation.c - what a test can do to its surroundings: flood its output,
 * leave a child behind, read stdin, leak memory, fail from a thread or a
 * forked child; and what it is given: the DISTMGR_* variables and its own
 * TMPDIR.
 */
#include <sys/wait.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <distmgr.h>

/* 3 MiB of numbered lines, far over the cap the tests set. */
DM_TEST(isolation, flood)
{
	int i;

	for (i = 0; i < 3 * 1024 * 1024 / 32; i++)
		printf("line %08d of the flood ......\n", i);
	fprintf(stderr, "flood done\n");
}

DM_TEST(isolation, streams)
{
	printf("to stdout\n");
	fprintf(stderr, "to stderr\n");
	printf("no newline");
}

static char *
pidfile(char *buf, size_t len)
{
	snprintf(buf, len, "%s/lingering.pid", getenv("TMPDIR"));
	return buf;
}

/* Leaves a child that would sleep for a long time. */
DM_TEST(isolation, lingers)
{
	char path[4096];
	FILE *f;
	pid_t pid;

	if ((pid = fork()) == 0) {
		sleep(1000);
		_exit(0);
	}
	DM_ASSERT_GT(pid, 0);
	DM_ASSERT_NOT_NULL(f = fopen(pidfile(path, sizeof path), "w"));
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
}

/* Runs after lingers: its child must be gone (reaped, not a zombie). */
DM_TEST(isolation, lingers_gone)
{
	char path[4096];
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	FILE *f;
	int pid = 0, i;

	DM_ASSERT_NOT_NULL(f = fopen(pidfile(path, sizeof path), "r"));
	DM_ASSERT_EQ(fscanf(f, "%d", &pid), 1);
	fclose(f);
	for (i = 0; i < 500 && kill(pid, 0) == 0; i++)
		nanosleep(&ts, NULL);
	DM_ASSERT_EQ(kill(pid, 0), -1, "pid %d is still there", pid);
	DM_ASSERT_EQ(errno, ESRCH);
}

DM_TEST(isolation, stdin)
{
	char c;

	DM_ASSERT_EQ(read(0, &c, 1), 0, "stdin is not at its end");
	DM_ASSERT_EQ(getchar(), EOF);
}

DM_TEST(isolation, env)
{
	const char *names[] = { "DISTMGR_WORKER", "DISTMGR_WORKER_COUNT",
	    "DISTMGR_RUN_ID", "TMPDIR", "DM_TEST_EXTRA" };
	char path[4096];
	FILE *f;
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		printf("%s=%s\n", names[i], getenv(names[i]) != NULL ?
		    getenv(names[i]) : "(unset)");
	snprintf(path, sizeof path, "%s/written", getenv("TMPDIR"));
	DM_ASSERT_NOT_NULL(f = fopen(path, "w"), "TMPDIR is not writable");
	fclose(f);
}

/* Deliberate leaks are the test's business, not LeakSanitizer's. */
DM_TEST(isolation, leak)
{
	char *p = malloc(1000);

	DM_ASSERT_NOT_NULL(p);
	p[0] = 1;
	p = NULL;
}

DM_TEST(isolation, leak_then_exit, .exit_code = 0)
{
	char *p = malloc(1000);

	DM_ASSERT_NOT_NULL(p);
	p[0] = 1;
	exit(0);
}

static void *
failing_thread(void *arg)
{
	(void)arg;
	DM_FAIL("from a thread"); /* @thread */
	return NULL;
}

DM_TEST(isolation, thread_fails)
{
	pthread_t t;

	DM_ASSERT_EQ(pthread_create(&t, NULL, failing_thread, NULL), 0);
	pthread_join(t, NULL);
}

/* An assertion in a process the test forked ends that process only. */
DM_TEST(isolation, fork_asserts)
{
	pid_t pid;
	int status;

	if ((pid = fork()) == 0) {
		DM_ASSERT_EQ(1, 2, "in the forked child"); /* @forked */
		_exit(0);
	}
	DM_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	DM_ASSERT(WIFEXITED(status));
	DM_ASSERT_EQ(WEXITSTATUS(status), 1);
}

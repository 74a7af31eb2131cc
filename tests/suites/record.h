/*
 * record.h - for the integration suites of groups, locks and trails:
 * each test appends one line "what id pid start end" (seconds of
 * CLOCK_MONOTONIC, the same clock in every process of the machine) to
 * the file $DM_RECORD with one write(2) in O_APPEND, so that lines from
 * tests running at the same time never mix. Without $DM_RECORD nothing
 * is written.
 */
#ifndef RECORD_H
#define RECORD_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double
rec_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
rec_nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1)
		;
}

static void
rec_line(const char *what, const char *id, double start, double end)
{
	const char *path = getenv("DM_RECORD");
	char buf[512];
	int fd, n;

	if (path == NULL)
		return;
	n = snprintf(buf, sizeof buf, "%s %s %ld %.6f %.6f\n", what, id,
	    (long)getpid(), start, end);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644)) == -1)
		return;
	(void)!write(fd, buf, (size_t)n);
	close(fd);
}

/* A test's body: ms of "work", recorded as id. */
static void
rec_work(const char *id, int ms)
{
	double start = rec_now();

	rec_nap(ms);
	rec_line("test", id, start, rec_now());
}

#endif /* RECORD_H */

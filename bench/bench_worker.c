/*
 * bench_worker.c - how fast one distworker runs a trivial test.
 *
 *   bench_worker floor N     a plain fork, call, waitpid loop here: the
 *                            physical floor of boxed execution
 *   bench_worker floor-worker N
 *                            the same loop after loading every shared
 *                            object a running distworker has mapped (its
 *                            libraries and the suite): what forking a
 *                            process shaped like the worker costs
 *   bench_worker boxed N     distworker --stdio, a child per test, forked
 *                            by its box helper (distworker-box)
 *   bench_worker boxed-fork N
 *                            the same with DISTWORKER_BOX=none: each child
 *                            forked by the worker itself, as before the
 *                            helper
 *   bench_worker inproc N    distworker --stdio with boxed false
 *
 * Each prints one line: "MODE N tests in S s: R/s, C us CPU per test",
 * where C counts the CPU time of every process doing the work (the
 * worker and its test children, or the floor's loop and its children;
 * not the reader): on a machine shared with other work it varies far
 * less than the wall-clock rate (the helper's and its children's count
 * once the worker reaps the helper as it exits). The worker runs the
 * suite build/suites/trivial.so; this process is the manager, and reads
 * every frame the worker sends without decoding its JSON (it only looks
 * for its answers and counts test_result tells), so that what is
 * measured is the worker, not the reader. Nothing here asserts a time.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* Tests per run batch: "0," each, well inside a 1 MiB frame. */
#define BATCH		100000
#define READ_SIZE	(1024 * 1024)

struct reader {
	int		 fd;
	unsigned char	*buf;
	size_t		 len;
	uint64_t	 results;
};

static volatile int floor_calls;

/* CPU seconds of this process (self) or of its reaped children. */
static double
cpu_seconds(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
trivial(void)
{
	floor_calls++;
}

static double
bench_floor(long n, double *cpu)
{
	double c0 = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN);
	double t0 = clock_mono();
	pid_t pid;
	long i;

	for (i = 0; i < n; i++) {
		if ((pid = fork()) == -1)
			fatal("fork");
		if (pid == 0) {
			trivial();
			_exit(0);
		}
		waitpid(pid, NULL, 0);
	}
	*cpu = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN) - c0;
	return clock_mono() - t0;
}

static void
send_frame(int fd, const char *json)
{
	size_t n = strlen(json), off = 0;
	unsigned char hdr[4] = { n >> 24, n >> 16, n >> 8, n };
	ssize_t w;

	if (write(fd, hdr, 4) != 4)
		fatal("write");
	while (off < n) {
		if ((w = write(fd, json + off, n - off)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("write");
		}
		off += (size_t)w;
	}
}

/* Reads frames until the answer (or error) to tag; counts results. */
static void
read_until(struct reader *r, const char *tag)
{
	char want_a[64], want_e[64];
	size_t off, n;
	ssize_t got;
	int done = 0;

	snprintf(want_a, sizeof want_a, "\"_answer\":\"%s\"", tag);
	snprintf(want_e, sizeof want_e, "\"_error\":\"%s\"", tag);
	while (!done) {
		if ((got = read(r->fd, r->buf + r->len, READ_SIZE)) <= 0)
			fatalx("the worker went away (%s)", got == 0 ? "end" :
			    strerror(errno));
		r->len += (size_t)got;
		for (off = 0; r->len - off >= 4; off += 4 + n) {
			n = (size_t)r->buf[off] << 24 | r->buf[off + 1] << 16 |
			    r->buf[off + 2] << 8 | r->buf[off + 3];
			if (r->len - off - 4 < n)
				break;
			if (memmem(r->buf + off + 4, n, "\"test_result\"", 13))
				r->results++;
			else if (memmem(r->buf + off + 4, n, want_e,
			    strlen(want_e)))
				fatalx("error: %.*s", (int)n, r->buf + off + 4);
			else if (memmem(r->buf + off + 4, n, want_a,
			    strlen(want_a)))
				done = 1;
		}
		memmove(r->buf, r->buf + off, r->len - off);
		r->len -= off;
	}
}

static pid_t
spawn_worker(int *fd)
{
	char *bin;
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair");
	xasprintf(&bin, "%s/bin/distworker", getenv("DM_BUILD") != NULL ?
	    getenv("DM_BUILD") : "build");
	if ((pid = fork()) == 0) {
		dup2(sv[1], 0);
		dup2(sv[1], 1);
		execl(bin, "distworker", "--stdio", (char *)NULL);
		_exit(127);
	}
	free(bin);
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

/* Loads what a worker at work has mapped: start one, load the suite,
 * read its maps, stop it. */
static void
load_like_worker(void)
{
	struct reader r = { 0 };
	char frame[512], path[64], line[4096], *so, *seen = xstrdup(""), *more;
	FILE *f;
	pid_t pid = spawn_worker(&r.fd);

	r.buf = xmalloc(2 * READ_SIZE + 4096);
	send_frame(r.fd, "{\"_command\":\"hello\",\"_ask\":\"h\",\"protocol\":1,"
	    "\"manager\":\"bench\",\"run_id\":\"b\",\"worker_id\":\"w0\","
	    "\"worker_count\":1}");
	read_until(&r, "h");
	snprintf(frame, sizeof frame, "{\"_command\":\"load\",\"_ask\":\"l\","
	    "\"path\":\"%s/suites/trivial.so\"}", getenv("DM_BUILD") != NULL ?
	    getenv("DM_BUILD") : "build");
	send_frame(r.fd, frame);
	read_until(&r, "l");
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		fatal("%s", path);
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if ((so = strchr(line, '/')) == NULL || strstr(so, ".so") ==
		    NULL || strstr(seen, so) != NULL)
			continue;
		if (dlopen(so, RTLD_NOW | RTLD_GLOBAL) == NULL)
			fatalx("%s", dlerror());
		xasprintf(&more, "%s\n%s", seen, so);
		free(seen);
		seen = more;
	}
	fclose(f);
	close(r.fd);
	waitpid(pid, NULL, 0);
	free(r.buf);
	free(seen);
}

static char *
batch_frame(int tag, long n)
{
	char *s = xmalloc((size_t)n * 2 + 128);
	int off;
	long i;

	off = sprintf(s, "{\"_command\":\"run\",\"_ask\":\"%d\",\"suite\":0,"
	    "\"tests\":[", tag);
	for (i = 0; i < n; i++)
		off += sprintf(s + off, i ? ",0" : "0");
	sprintf(s + off, "]}");
	return s;
}

/* The worker's CPU, its children's included, counts once it is reaped:
 * the time of its start, hello and load is a few milliseconds of it. */
static double
bench_worker(long n, int boxed, double *cpu)
{
	double c0 = cpu_seconds(RUSAGE_CHILDREN);
	struct reader r = { 0 };
	char frame[512], tag[16], *batch;
	double t0, t;
	long sent = 0;
	int tags = 0;
	pid_t pid = spawn_worker(&r.fd);

	r.buf = xmalloc(2 * READ_SIZE + 4096);
	snprintf(frame, sizeof frame, "{\"_command\":\"hello\",\"_ask\":\"h\","
	    "\"protocol\":1,\"manager\":\"bench\",\"run_id\":\"bench\","
	    "\"worker_id\":\"w0\",\"worker_count\":1,\"boxed\":%s}",
	    boxed ? "true" : "false");
	send_frame(r.fd, frame);
	read_until(&r, "h");
	snprintf(frame, sizeof frame, "{\"_command\":\"load\",\"_ask\":\"l\","
	    "\"path\":\"%s/suites/trivial.so\"}", getenv("DM_BUILD") != NULL ?
	    getenv("DM_BUILD") : "build");
	send_frame(r.fd, frame);
	read_until(&r, "l");
	t0 = clock_mono();
	/* Every batch up front: the worker queues them and never idles. */
	while (sent < n) {
		batch = batch_frame(++tags, n - sent < BATCH ? n - sent : BATCH);
		send_frame(r.fd, batch);
		free(batch);
		sent += BATCH;
	}
	snprintf(tag, sizeof tag, "%d", tags);
	read_until(&r, tag);
	t = clock_mono() - t0;
	if ((long)r.results != n)
		fatalx("%llu results for %ld tests",
		    (unsigned long long)r.results, n);
	close(r.fd);
	waitpid(pid, NULL, 0);
	*cpu = cpu_seconds(RUSAGE_CHILDREN) - c0;
	free(r.buf);
	return t;
}

int
main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 10000;
	double t, cpu;

	log_init("bench_worker", LOG_LVL_WARN);
	if (argc < 2 || n <= 0)
		fatalx("usage: bench_worker floor|floor-worker|boxed|"
		    "boxed-fork|inproc N");
	if (strcmp(argv[1], "floor") == 0)
		t = bench_floor(n, &cpu);
	else if (strcmp(argv[1], "floor-worker") == 0) {
		load_like_worker();
		t = bench_floor(n, &cpu);
	}
	else if (strcmp(argv[1], "boxed") == 0) {
		unsetenv("DISTWORKER_BOX");
		t = bench_worker(n, 1, &cpu);
	} else if (strcmp(argv[1], "boxed-fork") == 0) {
		setenv("DISTWORKER_BOX", "none", 1);
		t = bench_worker(n, 1, &cpu);
	}
	else if (strcmp(argv[1], "inproc") == 0)
		t = bench_worker(n, 0, &cpu);
	else
		fatalx("unknown mode %s", argv[1]);
	printf("%s %ld tests in %.3f s: %.0f/s, %.1f us CPU per test\n",
	    argv[1], n, t, (double)n / t, cpu * 1e6 / (double)n);
	return 0;
}

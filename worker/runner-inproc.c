/*
 * runner-inproc.c - tests run in the worker itself (hello's boxed false,
 * or distworker --no-fork): for debuggers, and for speed when a suite is
 * trusted. Fixtures still run; an assertion jumps back through host.c.
 *
 * Output is captured cheaply: fds 1 and 2 point at two memory files for
 * as long as the runner exists, and after each test one lseek per stream
 * says whether the test printed anything. The worker's own log lines go
 * to a copy of the original stderr meanwhile.
 *
 * What it cannot do is survive the test: a crash, an exit() or a hang
 * takes the worker with it (tests expected to die are run boxed instead).
 * The session makes sure every earlier result has been written out
 * before a test starts, and lastword.c writes that test's own result as
 * the worker goes, so that no result is lost.
 */
#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "worker.h"

struct inproc {
	const struct runner_config	*cfg;
	int				 mfd[2];	/* stdout, stderr */
	int				 saved[2];	/* the worker's 1, 2 */
	struct capture			 cap[2];
	struct test_end			 end;
	volatile int			 phase;
};

static void
inproc_capture_start(struct inproc *ip)
{
	static const char *names[2] = { "distworker-stdout",
	    "distworker-stderr" };
	int i;

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < 2; i++) {
		if ((ip->mfd[i] = memfd_create(names[i], MFD_CLOEXEC)) == -1)
			fatal("memfd_create");
		if ((ip->saved[i] = fcntl(i + 1, F_DUPFD_CLOEXEC, 3)) == -1)
			fatal("dup of fd %d", i + 1);
		if (dup2(ip->mfd[i], i + 1) == -1)
			fatal("dup2 onto fd %d", i + 1);
		capture_init(&ip->cap[i], ip->cfg->output_cap);
	}
	log_set_fd(ip->saved[1]);
}

struct inproc *
inproc_new(const struct runner_config *cfg)
{
	struct inproc *ip = xcalloc(1, sizeof *ip);

	ip->cfg = cfg;
	ip->mfd[0] = ip->mfd[1] = ip->saved[0] = ip->saved[1] = -1;
	if (cfg->capture)
		inproc_capture_start(ip);
	host_set_process(getpid());
	return ip;
}

void
inproc_free(struct inproc *ip)
{
	int i;

	if (ip == NULL)
		return;
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < 2; i++) {
		if (ip->saved[i] == -1)
			continue;
		dup2(ip->saved[i], i + 1);
		close(ip->saved[i]);
		close(ip->mfd[i]);
		capture_free(&ip->cap[i]);
	}
	log_set_fd(2);
	free(ip);
}

/* What the test wrote to one stream, and an empty file for the next. */
static const char *
inproc_collect(struct inproc *ip, int i, size_t *len)
{
	off_t size = lseek(ip->mfd[i], 0, SEEK_CUR);
	const char *data;

	*len = 0;
	if (size <= 0)
		return NULL;
	data = capture_file_tail(&ip->cap[i], ip->mfd[i], (uint64_t)size,
	    len);
	if (ftruncate(ip->mfd[i], 0) == -1 ||
	    lseek(ip->mfd[i], 0, SEEK_SET) == -1)
		log_warn("cannot reset the output file: %s", strerror(errno));
	return data;
}

void
inproc_discard_output(struct inproc *ip)
{
	size_t len;
	int i;

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < 2 && ip->mfd[0] != -1; i++) {
		inproc_collect(ip, i, &len);
		capture_reset(&ip->cap[i]);
	}
}

void
inproc_run(struct inproc *ip, const struct suite_test *t,
    void (*group_fini)(void), struct runner_result *res)
{
	double started = clock_mono();
	struct test_end fend;

	host_ignore_leaks(1);
	host_call(suite_test_init(t), t->def->fn, suite_test_fini(t),
	    &ip->end, &ip->phase);
	/* A group's fini after its last test: what it prints is that
	 * test's, and so is its failure, unless the test failed itself. */
	if (group_fini != NULL) {
		syncc_group_fixture(ip->cfg->sync, 1);
		if (host_call_fixture(PHASE_FINI, group_fini, &fend,
		    &ip->phase) != HOW_RETURNED && ip->end.how == HOW_RETURNED)
			memcpy(&ip->end, &fend, sizeof fend);
		syncc_group_fixture(ip->cfg->sync, 0);
	}
	host_ignore_leaks(0);
	if (__fpending(stdout) > 0 || __fpending(stderr) > 0) {
		fflush(stdout);
		fflush(stderr);
	}
	runner_judge(t, &ip->end, ip->phase, 1, 0, res);
	res->duration = clock_mono() - started;
	if (ip->mfd[0] != -1) {
		res->out = inproc_collect(ip, 0, &res->out_len);
		res->err = inproc_collect(ip, 1, &res->err_len);
	}
}

void
inproc_take_output(struct inproc *ip, struct runner_result *res)
{
	fflush(stdout);
	fflush(stderr);
	if (ip->mfd[0] != -1) {
		res->out = inproc_collect(ip, 0, &res->out_len);
		res->err = inproc_collect(ip, 1, &res->err_len);
	}
}

int
inproc_fixture(struct inproc *ip, int ph, void (*fn)(void),
    struct test_end *end)
{
	int how;

	host_ignore_leaks(1);
	how = host_call_fixture(ph, fn, end, &ip->phase);
	host_ignore_leaks(0);
	if (__fpending(stdout) > 0 || __fpending(stderr) > 0) {
		fflush(stdout);
		fflush(stderr);
	}
	return how;
}

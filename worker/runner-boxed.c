/*
 * runner-boxed.c - the default runner: each test in a child forked from
 * the loaded worker, in its own process group, stdin from /dev/null,
 * stdout and stderr on pipes read into per-stream captures, a timer that
 * kills the whole group, and a report left in a page shared with the
 * parent (written before the child leaves, so it survives the child
 * crashing right after).
 *
 * Most tests are quick, and what a quick test costs is mostly the fork:
 * so the worker waits a few milliseconds for the child with SIGCHLD
 * blocked, doing nothing (every page it wrote meanwhile would be copied
 * for the child), and reaps it there; only a test that takes longer is
 * handed to the event loop - pipe events, the timeout timer, SIGCHLD.
 *
 * Whatever the child does - crash, exit, hang, flood its output, fork and
 * leave - the parent gets one result for it and nothing it left behind
 * in its process group outlives it. The parent never waits on a child
 * for longer than BOX_QUICK_WAIT.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "common.h"
#include "worker.h"
#include "box.h"

/* The child's report is a struct box_page (box.h), as with the box
 * helper; only its state, phase and end are used here. Only the child
 * writes it, and only the test child itself: host.c stops a process the
 * test forked from reaching it. */

/* Reads per callback from one pipe, so that a flooding test cannot keep
 * the loop from everything else; and at most when draining a pipe that
 * something outside the test's group may still be writing to. */
#define BOX_READS_PER_WAKE	16
#define BOX_READS_PER_DRAIN	1024
/* Seconds a test may take and still be reaped without the event loop. */
#define BOX_QUICK_WAIT		0.005
/* The fatal and job-control signals whose handlers a child resets. */
#define BOX_RESET_MAX		16

struct boxed {
	struct event_base		*base;
	const struct runner_config	*cfg;
	runner_done_fn			 done;
	void				*ctx;
	pid_t				 parent;
	int				 devnull;
	int				*close_fds;	/* in the child */
	size_t				 nclose;
	struct box_page			*page;
	struct event			*sigchld;
	struct event			 timer;
	struct event			 out_ev, err_ev;
	int				 watching;	/* pipe events added */
	sigset_t			 chld;		/* SIGCHLD alone */
	int				 reset[BOX_RESET_MAX];
	size_t				 nreset;
	int				 reset_known;

	/* The running test; pid 0 when none. */
	pid_t				 pid;
	const struct suite		*suite;
	size_t				 index;
	const struct suite_test		*test;
	const struct dm_group_def	*gdef;	/* its serial group's */
	double				 started;
	double				 timeout;
	enum runner_stop		 stopped;
	int				 out_fd, err_fd;	/* -1: closed */
	struct capture			 out, err;
	struct runner_result		 res;	/* of a test not started */
};

static char	stdout_buf[BUFSIZ];

static void	boxed_sigchld_cb(evutil_socket_t, short, void *);
static void	boxed_timer_cb(evutil_socket_t, short, void *);
static void	boxed_read_cb(evutil_socket_t, short, void *);

struct boxed *
boxed_new(struct event_base *base, const struct runner_config *cfg,
    runner_done_fn done, void *ctx)
{
	struct boxed *b = xcalloc(1, sizeof *b);

	b->base = base;
	b->cfg = cfg;
	b->done = done;
	b->ctx = ctx;
	b->parent = getpid();
	b->out_fd = b->err_fd = -1;
	if ((b->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		fatal("/dev/null");
	b->page = mmap(NULL, sizeof *b->page, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b->page == MAP_FAILED)
		fatal("mmap of the result page");
	b->sigchld = evsignal_new(base, SIGCHLD, boxed_sigchld_cb, b);
	if (b->sigchld == NULL || event_add(b->sigchld, NULL) == -1)
		fatalx("cannot watch SIGCHLD");
	evtimer_assign(&b->timer, base, boxed_timer_cb, b);
	sigemptyset(&b->chld);
	sigaddset(&b->chld, SIGCHLD);
	capture_init(&b->out, cfg->output_cap);
	capture_init(&b->err, cfg->output_cap);
	/* Line by line, so that what a test printed before crashing is
	 * kept; set once here for every child to inherit (glibc keeps a
	 * used stream's buffering unless given a buffer of its own). */
	fflush(stdout);
	setvbuf(stdout, stdout_buf, _IOLBF, sizeof stdout_buf);
	return b;
}

void
boxed_close_in_child(struct boxed *b, int fd)
{
	b->close_fds = xreallocarray(b->close_fds, b->nclose + 1,
	    sizeof *b->close_fds);
	b->close_fds[b->nclose++] = fd;
}

int
boxed_busy(const struct boxed *b)
{
	return b->pid != 0;
}

/* ---- the child ----------------------------------------------------------- */

/* What the worker set up for itself must not reach the test: its signal
 * handlers would write into the worker's own event loop, and a
 * sanitizer's handlers for fatal signals would turn a test's crash into
 * an exit. Found once, so that a child resets only what is set (the
 * worker's handlers are all in place before its first test). */
static void
boxed_find_handlers(struct boxed *b)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP,
	    SIGPIPE, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP,
	    SIGSYS, SIGALRM };
	struct sigaction sa;
	size_t i;

	for (i = 0; i < DM_NELEM(sigs) && b->nreset < BOX_RESET_MAX; i++)
		if (sigaction(sigs[i], NULL, &sa) == 0 &&
		    sa.sa_handler != SIG_DFL)
			b->reset[b->nreset++] = sigs[i];
	b->reset_known = 1;
}

static void
boxed_child_signals(struct boxed *b)
{
	struct sigaction sa;
	sigset_t none;
	size_t i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < b->nreset; i++)
		sigaction(b->reset[i], &sa, NULL);
	/* The parent blocked SIGCHLD around the fork. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The pipes' own descriptors stay open in the child: they are
 * close-on-exec, and closing them would only cost the test time. */
static void
boxed_child_fds(struct boxed *b, const int pipes[4])
{
	size_t i;

	dup2(b->devnull, 0);
	if (pipes[0] != -1) {
		dup2(pipes[1], 1);
		dup2(pipes[3], 2);
	}
	for (i = 0; i < b->nclose; i++)
		close(b->close_fds[i]);
}

static void DM_NORETURN
boxed_child(struct boxed *b, const struct suite_test *t, const int pipes[4])
{
	host_ignore_leaks(1);
	setpgid(0, 0);
	/* Dies with the worker; and if the worker is already gone, now. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != b->parent)
		_exit(127);
	boxed_child_signals(b);
	boxed_child_fds(b, pipes);
	host_set_process(getpid());
	b->page->state = BOX_RUNNING;
	/* Without the helper a serial group's tests share no process:
	 * each is set up and torn down around itself. */
	if (b->gdef != NULL && host_call_fixture(PHASE_INIT,
	    b->gdef->opt.init, &b->page->end, &b->page->phase) !=
	    HOW_RETURNED)
		goto done;
	host_call(suite_test_init(t), t->def->fn, suite_test_fini(t),
	    &b->page->end, &b->page->phase);
	if (b->gdef != NULL) {
		struct test_end fend;

		if (host_call_fixture(PHASE_FINI, b->gdef->opt.fini, &fend,
		    &b->page->phase) != HOW_RETURNED &&
		    b->page->end.how == HOW_RETURNED)
			memcpy(&b->page->end, &fend, sizeof fend);
	}
done:
	if (__fpending(stdout) > 0 || __fpending(stderr) > 0) {
		fflush(stdout);
		fflush(stderr);
	}
	__atomic_store_n(&b->page->state, BOX_DONE, __ATOMIC_RELEASE);
	_exit(0);
}

/* ---- the parent ---------------------------------------------------------- */

static int
boxed_fail_now(struct boxed *b, const struct suite *s, size_t index,
    const char *what)
{
	memset(&b->res, 0, sizeof b->res);
	b->res.outcome = OUTCOME_ERROR;
	b->res.exit_status = -1;
	snprintf(b->res.message, sizeof b->res.message, "the test could not "
	    "be started: %s: %s", what, strerror(errno));
	b->done(b->ctx, s, index, &b->res);
	return 1;
}

static int
boxed_pipes(struct boxed *b, int pipes[4])
{
	pipes[0] = pipes[1] = pipes[2] = pipes[3] = -1;
	if (!b->cfg->capture)
		return 0;
	if (pipe2(pipes, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(pipes + 2, O_CLOEXEC) == -1) {
		close(pipes[0]);
		close(pipes[1]);
		return -1;
	}
	return 0;
}

static void
boxed_watch(struct boxed *b, struct event *ev, int fd)
{
	if (fd == -1)
		return;
	fd_set_nonblock(fd, 1);
	event_assign(ev, b->base, fd, EV_READ | EV_PERSIST, boxed_read_cb, b);
	event_add(ev, NULL);
}

/* What is left of the test's time when the loop takes it over. */
static void
boxed_arm_timer(struct boxed *b)
{
	struct timeval tv;
	double left;

	if (b->timeout <= 0)
		return;
	/* The loop's cached time may be old: in-process tests, and quick
	 * boxed ones, run without a turn of the loop. */
	event_base_update_cache_time(b->base);
	left = b->timeout - (clock_mono() - b->started);
	if (left < 0)
		left = 0;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	evtimer_add(&b->timer, &tv);
}

/* A child must not print again what this process had buffered. Looking
 * writes nothing, so it copies no page for a child either. */
static void
boxed_flush_stdio(void)
{
	if (__fpending(stdout) > 0 || __fpending(stderr) > 0) {
		fflush(stdout);
		fflush(stderr);
	}
}

/*
 * With SIGCHLD blocked since before the fork, waits up to BOX_QUICK_WAIT
 * (or the test's timeout, if shorter) for the test's child, reaping any
 * other child that ends meanwhile. Returns 1 with *status when the
 * test's child ended, 0 when it still runs.
 */
static int
boxed_quick_wait(struct boxed *b, int *status)
{
	double wait = BOX_QUICK_WAIT, left;
	struct timespec ts;
	pid_t pid;
	int st, got;

	if (b->timeout > 0 && b->timeout < wait)
		wait = b->timeout;
	for (;;) {
		if ((left = b->started + wait - clock_mono()) <= 0)
			return 0;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		if (sigtimedwait(&b->chld, NULL, &ts) == -1 && errno != EINTR)
			return 0;
		got = 0;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			if (pid == b->pid) {
				*status = st;
				got = 1;
			}
		if (got)
			return 1;
	}
}

static void	boxed_finish(struct boxed *, int);

/* Forks the test's child, with SIGCHLD blocked (saved has the mask to
 * restore) and its report page reset. The child never returns. */
static pid_t
boxed_spawn(struct boxed *b, const struct suite_test *t, const int pipes[4],
    sigset_t *saved)
{
	pid_t pid;

	boxed_flush_stdio();
	b->page->state = BOX_IDLE;
	b->page->phase = PHASE_NONE;
	sigprocmask(SIG_BLOCK, &b->chld, saved);
	b->started = clock_mono();
	if ((pid = fork()) == 0)
		boxed_child(b, t, pipes);
	if (pid == -1) {
		sigprocmask(SIG_SETMASK, saved, NULL);
		for (int i = 0; i < 4; i++)
			if (pipes[i] != -1)
				close(pipes[i]);
		return -1;
	}
	/* Also here: the group must exist before a timeout may kill it. */
	setpgid(pid, pid);
	if (pipes[0] != -1) {
		close(pipes[1]);
		close(pipes[3]);
	}
	return pid;
}

int
boxed_start(struct boxed *b, const struct suite *s, size_t index,
    const struct runner_group *g)
{
	const struct suite_test *t = suite_get(s, index);
	sigset_t saved;
	int pipes[4], status;

	b->gdef = g != NULL && g->group != NULL ? g->group->def : NULL;
	if (!b->reset_known)
		boxed_find_handlers(b);
	if (boxed_pipes(b, pipes) == -1)
		return boxed_fail_now(b, s, index, "pipe");
	if ((b->pid = boxed_spawn(b, t, pipes, &saved)) == -1) {
		b->pid = 0;
		return boxed_fail_now(b, s, index, "fork");
	}
	b->suite = s;
	b->index = index;
	b->test = t;
	b->stopped = STOP_NONE;
	b->timeout = runner_timeout(b->cfg, t);
	b->out_fd = pipes[0];
	b->err_fd = pipes[2];
	if (boxed_quick_wait(b, &status)) {
		sigprocmask(SIG_SETMASK, &saved, NULL);
		boxed_finish(b, status);
		return 1;
	}
	/* A longer test: the loop watches it from here. A SIGCHLD that came
	 * since the last look is delivered as the mask is restored. */
	boxed_watch(b, &b->out_ev, b->out_fd);
	boxed_watch(b, &b->err_ev, b->err_fd);
	b->watching = b->out_fd != -1;
	boxed_arm_timer(b);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	return 0;
}

static void
boxed_close_stream(struct boxed *b, struct event *ev, int *fd)
{
	if (*fd == -1)
		return;
	if (b->watching)
		event_del(ev);
	close(*fd);
	*fd = -1;
}

/* Reads what the pipe holds now (a flooding test gets a few reads per
 * wake-up); closes it at end of file. */
static void
boxed_read(struct boxed *b, struct event *ev, int *fd, struct capture *c)
{
	ssize_t n;
	int reads = 0;

	while (*fd != -1 && reads++ < BOX_READS_PER_WAKE) {
		n = capture_read_fd(c, *fd);
		if (n > 0)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		boxed_close_stream(b, ev, fd);
	}
}

/* Takes what the pipe holds once the child is gone - all it wrote is
 * there - without waiting for whoever else may hold the other end, and
 * closes it. FIONREAD keeps a blocking pipe from blocking. */
static void
boxed_drain(struct boxed *b, struct event *ev, int *fd, struct capture *c)
{
	int avail, reads = 0;

	while (*fd != -1 && reads++ < BOX_READS_PER_DRAIN &&
	    ioctl(*fd, FIONREAD, &avail) == 0 && avail > 0)
		if (capture_read_fd(c, *fd) <= 0)
			break;
	boxed_close_stream(b, ev, fd);
}

static void
boxed_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct boxed *b = arg;

	(void)what;
	if (fd == b->out_fd)
		boxed_read(b, &b->out_ev, &b->out_fd, &b->out);
	else if (fd == b->err_fd)
		boxed_read(b, &b->err_ev, &b->err_fd, &b->err);
}

static void
boxed_kill(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);	/* in case it left its group */
}

static void
boxed_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct boxed *b = arg;

	(void)fd;
	(void)what;
	if (b->pid == 0)
		return;
	b->stopped = STOP_TIMEOUT;
	boxed_kill(b->pid);
}

void
boxed_stop(struct boxed *b, enum runner_stop why)
{
	if (b->pid == 0)
		return;
	b->stopped = why;
	boxed_kill(b->pid);
}

static void
boxed_judge(struct boxed *b, int status, struct runner_result *res)
{
	struct test_end end;
	int finished = runner_read_page(b->page, &end);
	int phase = b->page->phase;

	/* A test that ended on its own just before it was killed keeps its
	 * own result. */
	if (b->stopped != STOP_NONE && !(finished && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0))
		runner_judge_stopped(b->stopped, b->timeout, res);
	else
		runner_judge(b->test, &end, phase, finished, status, res);
}

/*
 * The done callback may start the next test, and a quick one finishes
 * inside it: so the finished test's output and result are handed over
 * in storage of their own, the next test gets empty captures, and the
 * buffers come back afterwards to be reused.
 */
static void
boxed_finish(struct boxed *b, int status)
{
	struct capture out, err;
	struct runner_result res;
	pid_t pid = b->pid;

	/* Whatever the test left in its group goes with it. */
	kill(-pid, SIGKILL);
	if (b->timeout > 0)
		evtimer_del(&b->timer);
	boxed_drain(b, &b->out_ev, &b->out_fd, &b->out);
	boxed_drain(b, &b->err_ev, &b->err_fd, &b->err);
	b->watching = 0;
	boxed_judge(b, status, &res);
	res.duration = clock_mono() - b->started;
	out = b->out;
	err = b->err;
	capture_init(&b->out, b->cfg->output_cap);
	capture_init(&b->err, b->cfg->output_cap);
	res.out = capture_data(&out, &res.out_len);
	res.err = capture_data(&err, &res.err_len);
	b->pid = 0;
	b->done(b->ctx, b->suite, b->index, &res);
	capture_give_back(&b->out, &out);
	capture_give_back(&b->err, &err);
}

/* Every child that ended: the test's, and orphans the worker adopted. */
static void
boxed_sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct boxed *b = arg;
	pid_t pid;
	int status;

	(void)fd;
	(void)what;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (pid == b->pid)
			boxed_finish(b, status);
}

void
boxed_free(struct boxed *b)
{
	if (b == NULL)
		return;
	if (b->pid != 0) {
		boxed_kill(b->pid);
		while (waitpid(b->pid, NULL, 0) == -1 && errno == EINTR)
			;
		b->pid = 0;
	}
	boxed_close_stream(b, &b->out_ev, &b->out_fd);
	boxed_close_stream(b, &b->err_ev, &b->err_fd);
	evtimer_del(&b->timer);
	event_free(b->sigchld);
	munmap(b->page, sizeof *b->page);
	close(b->devnull);
	capture_free(&b->out);
	capture_free(&b->err);
	free(b->close_fds);
	free(b);
}

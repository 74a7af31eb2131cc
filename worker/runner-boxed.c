/*
 * runner-boxed.c - the default runner: each test in a child forked from
 * the loaded worker, in its own process group, stdin from /dev/null,
 * stdout and stderr on pipes read into per-stream captures, a timer that
 * kills the whole group, and a report left in a page shared with the
 * parent (written before the child leaves, so it survives the child
 * crashing right after).
 *
 * Whatever the child does - crash, exit, hang, flood its output, fork and
 * leave - the parent gets one result for it and nothing it left behind
 * in its process group outlives it. The parent must never block on the
 * child: everything it waits for comes through the event loop.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "common.h"
#include "worker.h"

enum box_state { BOX_IDLE = 0, BOX_RUNNING, BOX_DONE };

/* The child's report. Only the child writes it, and only the test child
 * itself: host.c stops a process the test forked from reaching it. */
struct box_page {
	volatile int	 state;		/* enum box_state */
	volatile int	 phase;		/* enum test_phase */
	struct test_end	 end;
};

/* Reads per callback from one pipe, so that a flooding test cannot keep
 * the loop from everything else; and at most when draining a pipe that
 * something outside the test's group may still be writing to. */
#define BOX_READS_PER_WAKE	16
#define BOX_READS_PER_DRAIN	1024

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

	/* The running test; pid 0 when none. */
	pid_t				 pid;
	const struct suite		*suite;
	size_t				 index;
	const struct suite_test		*test;
	double				 started;
	double				 timeout;
	enum runner_stop		 stopped;
	int				 out_fd, err_fd;	/* -1: closed */
	struct capture			 out, err;
	struct test_result		 res;
};

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
	capture_init(&b->out, cfg->output_cap);
	capture_init(&b->err, cfg->output_cap);
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
 * an exit. */
static void
boxed_child_signals(void)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP,
	    SIGPIPE, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP };
	struct sigaction sa;
	sigset_t none;
	size_t i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < DM_NELEM(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void
boxed_child_fds(struct boxed *b, const int pipes[4])
{
	size_t i;

	dup2(b->devnull, 0);
	if (pipes[0] != -1) {
		dup2(pipes[1], 1);
		dup2(pipes[3], 2);
		for (i = 0; i < 4; i++)
			close(pipes[i]);
	}
	for (i = 0; i < b->nclose; i++)
		close(b->close_fds[i]);
}

static char	child_stdout_buf[BUFSIZ];

static void DM_NORETURN
boxed_child(struct boxed *b, const struct suite_test *t, const int pipes[4])
{
	host_ignore_leaks(1);
	setpgid(0, 0);
	/* Dies with the worker; and if the worker is already gone, now. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != b->parent)
		_exit(127);
	boxed_child_signals();
	boxed_child_fds(b, pipes);
	/* Line by line, so that what a test printed before crashing is
	 * kept. glibc keeps a used stream's full buffering unless it is
	 * given a buffer of its own. */
	setvbuf(stdout, child_stdout_buf, _IOLBF, sizeof child_stdout_buf);
	host_set_process(getpid());
	b->page->state = BOX_RUNNING;
	host_call(t, &b->page->end, &b->page->phase);
	fflush(stdout);
	fflush(stderr);
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
boxed_watch(struct boxed *b, struct event *ev, int *slot, int fd)
{
	*slot = fd;
	if (fd == -1)
		return;
	fd_set_nonblock(fd, 1);
	event_assign(ev, b->base, fd, EV_READ | EV_PERSIST, boxed_read_cb, b);
	event_add(ev, NULL);
}

static void
boxed_arm_timer(struct boxed *b)
{
	struct timeval tv;

	b->timeout = runner_timeout(b->cfg, b->test);
	if (b->timeout <= 0)
		return;
	tv.tv_sec = (time_t)b->timeout;
	tv.tv_usec = (suseconds_t)((b->timeout - (double)tv.tv_sec) * 1e6);
	/* The loop's cached time may be old: in-process tests run before
	 * this one took no turn of the loop. */
	event_base_update_cache_time(b->base);
	evtimer_add(&b->timer, &tv);
}

int
boxed_start(struct boxed *b, const struct suite *s, size_t index)
{
	const struct suite_test *t = suite_get(s, index);
	int pipes[4];
	pid_t pid;

	if (boxed_pipes(b, pipes) == -1)
		return boxed_fail_now(b, s, index, "pipe");
	/* A child must not print again what the parent had buffered. */
	fflush(stdout);
	fflush(stderr);
	b->page->state = BOX_IDLE;
	b->page->phase = PHASE_NONE;
	b->started = clock_mono();
	if ((pid = fork()) == -1) {
		for (int i = 0; i < 4; i++)
			if (pipes[i] != -1)
				close(pipes[i]);
		return boxed_fail_now(b, s, index, "fork");
	}
	if (pid == 0)
		boxed_child(b, t, pipes);
	/* Also here: the group must exist before a timeout may kill it. */
	setpgid(pid, pid);
	b->pid = pid;
	b->suite = s;
	b->index = index;
	b->test = t;
	b->stopped = STOP_NONE;
	if (pipes[0] != -1) {
		close(pipes[1]);
		close(pipes[3]);
	}
	boxed_watch(b, &b->out_ev, &b->out_fd, pipes[0]);
	boxed_watch(b, &b->err_ev, &b->err_fd, pipes[2]);
	boxed_arm_timer(b);
	return 0;
}

static void
boxed_close_stream(struct event *ev, int *fd)
{
	if (*fd == -1)
		return;
	event_del(ev);
	close(*fd);
	*fd = -1;
}

/* Reads what the pipe holds; closes it at end of file. With drain, reads
 * until nothing is left now (the child is gone: what it wrote is all
 * there, and whoever else holds the pipe is not waited for). */
static void
boxed_read(struct event *ev, int *fd, struct capture *c, int drain)
{
	ssize_t n;
	int reads = 0;

	while (*fd != -1 && reads++ < (drain ? BOX_READS_PER_DRAIN :
	    BOX_READS_PER_WAKE)) {
		n = capture_read_fd(c, *fd);
		if (n > 0)
			continue;
		if (n == -1 && errno == EAGAIN && !drain)
			return;
		boxed_close_stream(ev, fd);
	}
	if (drain)
		boxed_close_stream(ev, fd);
}

static void
boxed_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct boxed *b = arg;

	(void)what;
	if (fd == b->out_fd)
		boxed_read(&b->out_ev, &b->out_fd, &b->out, 0);
	else if (fd == b->err_fd)
		boxed_read(&b->err_ev, &b->err_fd, &b->err, 0);
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

/* The page is the test's memory too: make it safe to read. */
static int
boxed_read_page(struct boxed *b, struct test_end *end)
{
	int state = __atomic_load_n(&b->page->state, __ATOMIC_ACQUIRE);

	*end = b->page->end;
	end->file[sizeof end->file - 1] = '\0';
	end->message[sizeof end->message - 1] = '\0';
	if (end->how != HOW_FAIL && end->how != HOW_SKIP)
		end->how = end->how == HOW_RETURNED ? HOW_RETURNED : HOW_FAIL;
	if (end->phase < PHASE_INIT || end->phase > PHASE_FINI)
		end->phase = PHASE_TEST;
	return state == BOX_DONE;
}

static void
boxed_judge(struct boxed *b, int status)
{
	static struct test_end end;
	int finished = boxed_read_page(b, &end);
	int phase = b->page->phase;

	/* A test that ended on its own just before it was killed keeps its
	 * own result. */
	if (b->stopped != STOP_NONE && !(finished && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0))
		runner_judge_stopped(b->stopped, b->timeout, &b->res);
	else
		runner_judge(b->test, &end, phase, finished, status, &b->res);
}

static void
boxed_finish(struct boxed *b, int status)
{
	pid_t pid = b->pid;

	/* Whatever the test left in its group goes with it. */
	kill(-pid, SIGKILL);
	evtimer_del(&b->timer);
	boxed_read(&b->out_ev, &b->out_fd, &b->out, 1);
	boxed_read(&b->err_ev, &b->err_fd, &b->err, 1);
	boxed_judge(b, status);
	b->res.duration = clock_mono() - b->started;
	b->res.out = capture_data(&b->out, &b->res.out_len);
	b->res.err = capture_data(&b->err, &b->res.err_len);
	b->pid = 0;
	b->done(b->ctx, b->suite, b->index, &b->res);
	capture_reset(&b->out);
	capture_reset(&b->err);
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
	boxed_close_stream(&b->out_ev, &b->out_fd);
	boxed_close_stream(&b->err_ev, &b->err_fd);
	evtimer_del(&b->timer);
	event_free(b->sigchld);
	munmap(b->page, sizeof *b->page);
	close(b->devnull);
	capture_free(&b->out);
	capture_free(&b->err);
	free(b->close_fds);
	free(b);
}

/*
 * runner-boxer.c - the boxed runner, with a box helper: each test runs in
 * a child of distworker-box (worker/box/box.c), a small process that
 * loaded the same suite, so that a test costs the fork of that process
 * and not of the worker: forking copies the parent's page tables, and the
 * worker's (libevent, jansson, OpenSSL, its heap) cost twice a bare
 * fork's. The helper is started for a suite when its first boxed test
 * runs, and again after it dies.
 *
 * The worker keeps the rest. A test's stdout and stderr are pipes made
 * once per helper, the helper's own fds 1 and 2, which every child
 * inherits; the helper reports a test only once every process the test
 * left is gone, so that all the test wrote is in the pipes then, and
 * nothing else writes there. The child's report is in a page the three
 * share; the helper sends the wait status; the worker judges. Timeouts
 * are the worker's: it kills the test's group by the pid the helper put
 * in the page, and the helper if it does not answer after that.
 *
 * Per test the worker sends one message and, for a test under
 * BOXER_QUICK_WAIT, waits for the answer in ppoll without a turn of the
 * event loop, arming no timer; a longer test is handed to the loop.
 *
 * Whatever the test or the helper does - crash, exit, hang, flood its
 * output, kill the helper - the test gets one result, the helper is
 * started again for the next test, and nothing the test left outlives
 * it.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "common.h"
#include "worker.h"
#include "box.h"

#ifndef DM_LIBEXECDIR
#define DM_LIBEXECDIR "/usr/local/libexec/distmgr"
#endif
#ifndef DM_BINDIR
#define DM_BINDIR "/usr/local/bin"
#endif

/* Seconds a test may take and still be waited for without the loop. */
#define BOXER_QUICK_WAIT	0.005
/* Reads per callback from one pipe, so that a flooding test cannot keep
 * the loop from everything else; and at most when draining. */
#define BOXER_READS_PER_WAKE	16
#define BOXER_READS_PER_DRAIN	1024
/* Helpers in a row that die before they have loaded the suite: then its
 * tests fail at once instead of each trying again. */
#define BOXER_START_TRIES	3
/* Seconds a helper has to report a test the worker killed. */
#define BOXER_STOP_GRACE	2.0
/* Seconds a dead helper has to become a zombie once its socket closed. */
#define BOXER_REAP_SECONDS	1.0
/* The worker's fds a helper gets are moved at least this high, clear of
 * the numbers they are given in the helper. */
#define BOXER_FD_MIN		10

extern char **environ;

struct boxer;

/* One helper, for one loaded suite. */
struct box {
	struct boxer		*b;
	const struct suite	*suite;
	pid_t			 pid;		/* 0: none running */
	int			 reaped;	/* status holds its end */
	int			 status;
	int			 ready;		/* READY came */
	int			 ctl, out, err;	/* -1: closed */
	struct event		 ctl_ev, out_ev, err_ev;
	int			 failed_starts;	/* in a row */
	char			 why[BOX_TEXT_MAX];	/* the last FAILED */
};

struct boxer {
	struct event_base		*base;
	const struct runner_config	*cfg;
	runner_done_fn			 done;
	void				*ctx;
	char				 helper[PATH_MAX];
	int				 devnull;
	int				 page_fd;
	struct box_page			*page;
	int				 sync[2];	/* ours, the tests' */
	struct event			 sync_ev;
	struct event			*sigchld;
	struct event			 timer;	/* timeout, then grace */
	struct event			 later;	/* ends a test not sent */
	struct box			**boxes;
	size_t				 nboxes;

	/* The running test; box NULL when none. */
	struct box			*box;
	const struct suite		*suite;
	size_t				 index;
	const struct suite_test		*test;
	struct runner_group		 grp;	/* run 0: no group's */
	int				 sent;	/* RUN went out */
	double				 started;
	double				 timeout;
	enum runner_stop		 stopped;
	int				 grace;	/* the timer is the grace */
	struct capture			 out, err;
	struct runner_result		 res;
};

static void	box_ctl_cb(evutil_socket_t, short, void *);
static void	box_stream_cb(evutil_socket_t, short, void *);
static void	boxer_timer_cb(evutil_socket_t, short, void *);
static void	boxer_later_cb(evutil_socket_t, short, void *);
static void	boxer_sigchld_cb(evutil_socket_t, short, void *);
static void	boxer_sync_cb(evutil_socket_t, short, void *);
static int	box_recv(struct boxer *, struct box *);
static int	box_lost(struct boxer *, struct box *);

/* ---- finding the helper ------------------------------------------------- */

static int
boxer_executable(const char *path)
{
	return access(path, X_OK) == 0;
}

/* As distmgr finds distworker: next to this program, then in the
 * install's libexec; DISTWORKER_BOX names one, or "none" for none. */
static int
boxer_find_helper(char *out, size_t len)
{
	const char *env = getenv("DISTWORKER_BOX");
	char self[PATH_MAX - 64], *slash;
	ssize_t n;

	if (env != NULL && env[0] != '\0') {
		if (strcmp(env, "none") == 0)
			return -1;
		snprintf(out, len, "%s", env);
		return boxer_executable(out) ? 0 : -1;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			snprintf(out, len, "%s/%s", self, BOX_HELPER_NAME);
			if (boxer_executable(out))
				return 0;
			snprintf(out, len, "%s/../libexec/distmgr/%s", self,
			    BOX_HELPER_NAME);
			if (boxer_executable(out))
				return 0;
		}
	}
	snprintf(out, len, "%s/%s", DM_LIBEXECDIR, BOX_HELPER_NAME);
	if (boxer_executable(out))
		return 0;
	snprintf(out, len, "%s/%s", DM_BINDIR, BOX_HELPER_NAME);
	return boxer_executable(out) ? 0 : -1;
}

/* ---- the runner ----------------------------------------------------------- */

static int
boxer_fds(struct boxer *b)
{
	void *p;

	b->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	b->page_fd = memfd_create("distworker-page", MFD_CLOEXEC);
	if (b->devnull == -1 || b->page_fd == -1 ||
	    ftruncate(b->page_fd, sizeof *b->page) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    b->sync) == -1)
		return -1;
	if ((b->devnull = fd_move_above(b->devnull, BOXER_FD_MIN)) == -1 ||
	    (b->page_fd = fd_move_above(b->page_fd, BOXER_FD_MIN)) == -1 ||
	    (b->sync[1] = fd_move_above(b->sync[1], BOXER_FD_MIN)) == -1 ||
	    fd_set_nonblock(b->sync[0], 1) == -1)
		return -1;
	p = mmap(NULL, sizeof *b->page, PROT_READ | PROT_WRITE, MAP_SHARED,
	    b->page_fd, 0);
	if (p == MAP_FAILED)
		return -1;
	b->page = p;
	return 0;
}

struct boxer *
boxer_new(struct event_base *base, const struct runner_config *cfg,
    runner_done_fn done, void *ctx)
{
	struct boxer *b = xcalloc(1, sizeof *b);

	if (boxer_find_helper(b->helper, sizeof b->helper) == -1) {
		free(b);
		return NULL;
	}
	b->base = base;
	b->cfg = cfg;
	b->done = done;
	b->ctx = ctx;
	b->devnull = b->page_fd = b->sync[0] = b->sync[1] = -1;
	if (boxer_fds(b) == -1)
		fatal("cannot set up the boxed runner");
	b->sigchld = evsignal_new(base, SIGCHLD, boxer_sigchld_cb, b);
	if (b->sigchld == NULL || event_add(b->sigchld, NULL) == -1)
		fatalx("cannot watch SIGCHLD");
	evtimer_assign(&b->timer, base, boxer_timer_cb, b);
	evtimer_assign(&b->later, base, boxer_later_cb, b);
	event_assign(&b->sync_ev, base, b->sync[0], EV_READ | EV_PERSIST,
	    boxer_sync_cb, b);
	event_add(&b->sync_ev, NULL);
	capture_init(&b->out, cfg->output_cap);
	capture_init(&b->err, cfg->output_cap);
	log_debug("boxed tests run through %s", b->helper);
	return b;
}

int
boxer_busy(const struct boxer *b)
{
	return b->box != NULL;
}

static void
boxer_close_fd(int *fd)
{
	if (*fd != -1)
		close(*fd);
	*fd = -1;
}

static void
box_close_stream(struct event *ev, int *fd)
{
	if (*fd == -1)
		return;
	event_del(ev);
	boxer_close_fd(fd);
}

static void
box_close(struct box *box)
{
	box_close_stream(&box->ctl_ev, &box->ctl);
	box_close_stream(&box->out_ev, &box->out);
	box_close_stream(&box->err_ev, &box->err);
}

/* Kills the running test's group; the helper reports it (or is killed
 * after BOXER_STOP_GRACE). A test stopped before the helper stored its
 * pid is killed by the helper as soon as it does (box.h). */
static void
boxer_kill_test(struct boxer *b)
{
	pid_t pid;

	__atomic_store_n(&b->page->stop, 1, __ATOMIC_SEQ_CST);
	pid = __atomic_load_n(&b->page->pid, __ATOMIC_SEQ_CST);
	if (pid > 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);	/* in case it left its group */
	}
}

void
boxer_free(struct boxer *b)
{
	size_t i;

	if (b == NULL)
		return;
	if (b->box != NULL && b->sent)
		boxer_kill_test(b);
	for (i = 0; i < b->nboxes; i++) {
		box_close(b->boxes[i]);
		if (b->boxes[i]->pid != 0 && !b->boxes[i]->reaped) {
			kill(b->boxes[i]->pid, SIGKILL);
			while (waitpid(b->boxes[i]->pid, NULL, 0) == -1 &&
			    errno == EINTR)
				;
		}
		free(b->boxes[i]);
	}
	free(b->boxes);
	evtimer_del(&b->timer);
	evtimer_del(&b->later);
	event_del(&b->sync_ev);
	event_free(b->sigchld);
	munmap(b->page, sizeof *b->page);
	boxer_close_fd(&b->devnull);
	boxer_close_fd(&b->page_fd);
	boxer_close_fd(&b->sync[0]);
	boxer_close_fd(&b->sync[1]);
	capture_free(&b->out);
	capture_free(&b->err);
	free(b);
}

/* ---- starting a helper ------------------------------------------------------ */

static struct box *
box_of(struct boxer *b, const struct suite *s)
{
	struct box *box;
	size_t i;

	for (i = 0; i < b->nboxes; i++)
		if (b->boxes[i]->suite == s)
			return b->boxes[i];
	box = xcalloc(1, sizeof *box);
	box->b = b;
	box->suite = s;
	box->ctl = box->out = box->err = -1;
	b->boxes = xreallocarray(b->boxes, b->nboxes + 1, sizeof *b->boxes);
	b->boxes[b->nboxes++] = box;
	return box;
}

static int
box_spawn_actions(struct boxer *b, posix_spawn_file_actions_t *fa,
    posix_spawnattr_t *attr, int ctl, int out, int err)
{
	sigset_t all, none;

	sigfillset(&all);
	sigemptyset(&none);
	if (posix_spawn_file_actions_init(fa) != 0)
		return -1;
	if (posix_spawnattr_init(attr) != 0) {
		posix_spawn_file_actions_destroy(fa);
		return -1;
	}
	/* Signals as a fresh program has them: the worker ignores SIGPIPE,
	 * and tests must not. */
	posix_spawnattr_setsigdefault(attr, &all);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF |
	    POSIX_SPAWN_SETSIGMASK);
	posix_spawn_file_actions_adddup2(fa, b->devnull, 0);
	if (out != -1) {
		posix_spawn_file_actions_adddup2(fa, out, 1);
		posix_spawn_file_actions_adddup2(fa, err, 2);
	}
	posix_spawn_file_actions_adddup2(fa, ctl, BOX_FD_CONTROL);
	posix_spawn_file_actions_adddup2(fa, b->page_fd, BOX_FD_PAGE);
	posix_spawn_file_actions_adddup2(fa, b->sync[1], BOX_FD_SYNC);
	posix_spawn_file_actions_addclosefrom_np(fa, BOX_FD_FIRST_FREE);
	return 0;
}

static void
box_watch(struct box *box, struct event *ev, int fd,
    event_callback_fn cb)
{
	fd_set_nonblock(fd, 1);
	event_assign(ev, box->b->base, fd, EV_READ | EV_PERSIST, cb, box);
	event_add(ev, NULL);
}

/* Starts box's helper with the worker's environment and directory as
 * they are now. -1 with errno when it cannot be. */
static int
box_spawn(struct boxer *b, struct box *box)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int sv[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	char path[PATH_MAX], wpid[24], ver[16], *argv[5];
	int rc = -1, saved;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1 ||
	    (sv[1] = fd_move_above(sv[1], BOXER_FD_MIN)) == -1)
		goto out;
	if (b->cfg->capture && (pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(err, O_CLOEXEC) == -1 ||
	    (out[1] = fd_move_above(out[1], BOXER_FD_MIN)) == -1 ||
	    (err[1] = fd_move_above(err[1], BOXER_FD_MIN)) == -1))
		goto out;
	if (realpath(suite_path(box->suite), path) == NULL)
		snprintf(path, sizeof path, "%s", suite_path(box->suite));
	snprintf(wpid, sizeof wpid, "%ld", (long)getpid());
	snprintf(ver, sizeof ver, "%d", BOX_VERSION);
	argv[0] = (char *)BOX_HELPER_NAME;
	argv[1] = path;
	argv[2] = wpid;
	argv[3] = ver;
	argv[4] = NULL;
	if (box_spawn_actions(b, &fa, &attr, sv[1], out[1], err[1]) == -1)
		goto out;
	errno = posix_spawn(&box->pid, b->helper, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (errno != 0) {
		box->pid = 0;
		goto out;
	}
	box->reaped = box->ready = 0;
	box->why[0] = '\0';
	box->ctl = sv[0];
	box->out = out[0];
	box->err = err[0];
	sv[0] = out[0] = err[0] = -1;
	box_watch(box, &box->ctl_ev, box->ctl, box_ctl_cb);
	if (box->out != -1) {
		box_watch(box, &box->out_ev, box->out, box_stream_cb);
		box_watch(box, &box->err_ev, box->err, box_stream_cb);
	}
	rc = 0;
out:
	saved = errno;
	boxer_close_fd(&sv[0]);
	boxer_close_fd(&sv[1]);
	boxer_close_fd(&out[0]);
	boxer_close_fd(&out[1]);
	boxer_close_fd(&err[0]);
	boxer_close_fd(&err[1]);
	errno = saved;
	return rc;
}

/* ---- output ---------------------------------------------------------------- */

/* Reads what fd holds now, at most reads times, into the running test's
 * capture when it is this helper's and sent, or into nothing (what the
 * suite's constructors printed, before READY). Closes it at end of
 * file: the helper and everything it started are gone. */
static void
box_read(struct box *box, int *fd, struct event *ev, int reads)
{
	struct boxer *b = box->b;
	struct capture *c = fd == &box->out ? &b->out : &b->err;
	char scrap[4096];
	ssize_t n;

	while (*fd != -1 && reads-- > 0) {
		if (b->box == box && b->sent)
			n = capture_read_fd(c, *fd);
		else
			n = read(*fd, scrap, sizeof scrap);
		if (n > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		box_close_stream(ev, fd);
	}
}

static void
box_stream_cb(evutil_socket_t fd, short what, void *arg)
{
	struct box *box = arg;

	(void)what;
	if (fd == box->out)
		box_read(box, &box->out, &box->out_ev, BOXER_READS_PER_WAKE);
	else if (fd == box->err)
		box_read(box, &box->err, &box->err_ev, BOXER_READS_PER_WAKE);
}

/* All a finished test wrote is in the pipes by now: take it. One ppoll
 * says whether there is anything at all. */
static void
box_drain(struct box *box)
{
	struct pollfd pfd[2] = { { box->out, POLLIN, 0 },
	    { box->err, POLLIN, 0 } };

	if (box->out == -1 && box->err == -1)
		return;
	if (poll(pfd, 2, 0) <= 0)
		return;
	if (pfd[0].revents != 0)
		box_read(box, &box->out, &box->out_ev, BOXER_READS_PER_DRAIN);
	if (pfd[1].revents != 0)
		box_read(box, &box->err, &box->err_ev, BOXER_READS_PER_DRAIN);
}

/* ---- a test's end ---------------------------------------------------------- */

/*
 * The done callback may start the next test, and a quick one finishes
 * inside it: so the finished test's output and result are handed over
 * in storage of their own, the next test gets empty captures, and the
 * buffers come back afterwards to be reused.
 */
static void
boxer_report(struct boxer *b, struct runner_result *res)
{
	struct capture out, err;

	evtimer_del(&b->timer);
	b->grace = 0;
	out = b->out;
	err = b->err;
	capture_init(&b->out, b->cfg->output_cap);
	capture_init(&b->err, b->cfg->output_cap);
	res->out = capture_data(&out, &res->out_len);
	res->err = capture_data(&err, &res->err_len);
	/* What the test asked and we have not read is not the next one's. */
	syncc_read(b->cfg->sync, b->sync[0], 0, 0);
	b->box = NULL;
	b->done(b->ctx, b->suite, b->index, res);
	capture_give_back(&b->out, &out);
	capture_give_back(&b->err, &err);
}

static void
boxer_finish(struct boxer *b, const struct box_msg *m)
{
	struct runner_result res;
	struct test_end end;
	int finished, status = m->status;

	box_drain(b->box);
	finished = runner_read_page(b->page, &end);
	if ((m->flags & BOX_DONE_NOT_STARTED) && b->stopped == STOP_NONE) {
		runner_judge_unstarted(m->error != 0 ? "fork" : NULL,
		    m->error != 0 ? strerror(m->error) : m->text, &res);
	} else if (b->stopped != STOP_NONE && !(finished &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0))
		/* A test that ended on its own just before it was killed
		 * keeps its own result. */
		runner_judge_stopped(b->stopped, b->timeout, &res);
	else
		runner_judge(b->test, &end, b->page->phase, finished, status,
		    &res);
	if (m->flags & BOX_DONE_LINGERED)
		log_warn("a process test %zu left survived SIGKILL for %g s",
		    b->index, BOX_SWEEP_SECONDS);
	res.duration = clock_mono() - b->started;
	boxer_report(b, &res);
}

/* A test that never reached a helper, stopped. */
static void
boxer_finish_unsent(struct boxer *b)
{
	struct runner_result res;

	runner_judge_stopped(b->stopped, b->timeout, &res);
	res.duration = clock_mono() - b->started;
	boxer_report(b, &res);
}

static void
boxer_arm(struct boxer *b, double seconds)
{
	struct timeval tv;

	if (seconds < 0)
		seconds = 0;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	evtimer_add(&b->timer, &tv);
}

/* What is left of the test's time when the loop takes it over. */
static void
boxer_arm_timeout(struct boxer *b)
{
	if (b->timeout <= 0)
		return;
	/* The loop's cached time may be old: quick tests run without a
	 * turn of the loop. */
	event_base_update_cache_time(b->base);
	b->grace = 0;
	boxer_arm(b, b->timeout - (clock_mono() - b->started));
}

/* ---- one test ------------------------------------------------------------- */

static int
boxer_fail_now(struct boxer *b, const struct suite *s, size_t index,
    const char *what, const char *why)
{
	struct runner_result res;

	runner_judge_unstarted(what, why, &res);
	res.duration = 0;
	b->done(b->ctx, s, index, &res);
	return 1;
}

/* Sends the running test to its helper. -1 when the helper is gone (its
 * end of file, read next, ends the test). */
static int
box_send_run(struct boxer *b)
{
	struct box_msg m;
	ssize_t n;

	b->page->state = BOX_IDLE;
	b->page->phase = PHASE_NONE;
	b->page->pid = 0;
	b->page->stop = 0;
	memset(&m, 0, BOX_MSG_HEAD);
	m.type = BOX_MSG_RUN;
	m.version = BOX_VERSION;
	m.test = (uint32_t)b->test->at;
	m.defaults = (int32_t)b->test->defaults_at;
	m.line = b->test->def->line;
	m.group_run = b->grp.run;
	m.group = b->grp.run != 0 ? (int32_t)b->grp.group->def_at : -1;
	m.run_flags = b->grp.run != 0 && b->grp.last ? BOX_RUN_LAST : 0;
	b->page->group_fixture = 0;
	b->started = clock_mono();
	b->sent = 1;
	do
		n = send(b->box->ctl, &m, BOX_MSG_HEAD, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)BOX_MSG_HEAD ? 0 : -1;
}

/*
 * Waits up to BOXER_QUICK_WAIT (or the test's timeout, if shorter) for
 * the helper's answer, reading output meanwhile. Returns 1 when the test
 * ended (and was reported), 0 when it still runs.
 */
static int
boxer_quick_wait(struct boxer *b, struct box *box)
{
	double wait = BOXER_QUICK_WAIT, left;
	struct pollfd pfd[4];
	struct timespec ts;
	int i;

	if (b->timeout > 0 && b->timeout < wait)
		wait = b->timeout;
	for (;;) {
		if ((left = b->started + wait - clock_mono()) <= 0)
			return 0;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		pfd[0] = (struct pollfd){ box->ctl, POLLIN, 0 };
		pfd[1] = (struct pollfd){ box->out, POLLIN, 0 };
		pfd[2] = (struct pollfd){ box->err, POLLIN, 0 };
		pfd[3] = (struct pollfd){ b->sync[0], POLLIN, 0 };
		if (ppoll(pfd, 4, &ts, NULL) == -1 && errno != EINTR)
			return 0;
		/* A test that asks waits for the manager: for the loop. */
		if (pfd[3].revents != 0) {
			boxer_sync_cb(b->sync[0], EV_READ, b);
			return 0;
		}
		for (i = 1; i < 3; i++)
			if (pfd[i].revents != 0)
				box_read(box, i == 1 ? &box->out : &box->err,
				    i == 1 ? &box->out_ev : &box->err_ev, 1);
		if (pfd[0].revents != 0 && box_recv(b, box))
			return 1;
		if (b->box != box)
			return 1;
	}
}

/* The helper has the suite: the test waiting for it goes. Returns 1
 * when it ended already. */
static int
boxer_go(struct boxer *b, struct box *box)
{
	if (box_send_run(b) == -1)
		return box_lost(b, box);
	if (boxer_quick_wait(b, box))
		return 1;
	boxer_arm_timeout(b);
	return 0;
}

int
boxer_start(struct boxer *b, const struct suite *s, size_t index,
    const struct runner_group *g)
{
	struct box *box = box_of(b, s);
	char why[BOX_TEXT_MAX + 64];

	if (box->failed_starts >= BOXER_START_TRIES) {
		snprintf(why, sizeof why, "%s (gave up after %d tries)",
		    box->why, BOXER_START_TRIES);
		return boxer_fail_now(b, s, index, "the box helper cannot "
		    "load the suite", why);
	}
	if (box->pid == 0 && box_spawn(b, box) == -1)
		return boxer_fail_now(b, s, index, "cannot start "
		    BOX_HELPER_NAME, strerror(errno));
	b->box = box;
	b->suite = s;
	b->index = index;
	b->test = suite_get(s, index);
	memset(&b->grp, 0, sizeof b->grp);
	if (g != NULL && g->group != NULL)
		b->grp = *g;
	b->stopped = STOP_NONE;
	b->timeout = runner_timeout(b->cfg, b->test);
	b->sent = 0;
	b->started = clock_mono();
	if (box->ready)
		return boxer_go(b, box);
	/* The loop hears READY; the test's time covers the load. */
	boxer_arm_timeout(b);
	return 0;
}

void
boxer_stop(struct boxer *b, enum runner_stop why)
{
	if (b->box == NULL)
		return;
	b->stopped = why;
	if (!b->sent) {
		/* From the loop: the caller is not ready for the result. */
		struct timeval now = { 0, 0 };

		evtimer_add(&b->later, &now);
		return;
	}
	boxer_kill_test(b);
	b->grace = 1;
	boxer_arm(b, BOXER_STOP_GRACE);
}

static void
boxer_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct boxer *b = arg;

	(void)fd;
	(void)what;
	if (b->box != NULL && !b->sent && b->stopped != STOP_NONE)
		boxer_finish_unsent(b);
}

static void
boxer_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct boxer *b = arg;
	struct box *box = b->box;

	(void)fd;
	(void)what;
	if (box == NULL)
		return;
	if (b->grace || !b->sent) {
		/* A helper that does not answer, or does not load the suite
		 * in the test's time: it goes, and the test with it. */
		if (b->stopped == STOP_NONE)
			b->stopped = STOP_TIMEOUT;
		if (box->pid != 0 && !box->reaped)
			kill(box->pid, SIGKILL);
		box_lost(b, box);
		return;
	}
	b->stopped = STOP_TIMEOUT;
	boxer_kill_test(b);
	b->grace = 1;
	boxer_arm(b, BOXER_STOP_GRACE);
}

/* ---- the helper's messages ---------------------------------------------- */

/* Drops what the helper's start-up printed, and sends the test that
 * waited for it. */
static int
box_ready(struct boxer *b, struct box *box)
{
	box->ready = 1;
	box->failed_starts = 0;
	box_drain(box);
	if (b->box != box || b->sent)
		return 0;
	if (b->stopped != STOP_NONE) {
		boxer_finish_unsent(b);
		return 1;
	}
	return boxer_go(b, box);
}

/* Reads one message from box's helper and acts on it. Returns 1 when
 * the running test ended. */
static int
box_recv(struct boxer *b, struct box *box)
{
	struct box_msg m;
	ssize_t n;

	do
		n = recv(box->ctl, &m, sizeof m, MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EAGAIN)
		return 0;
	if (n < (ssize_t)BOX_MSG_HEAD || m.version != BOX_VERSION) {
		if (n > 0)
			snprintf(box->why, sizeof box->why, "%.400s "
			    "speaks another version", b->helper);
		if (box->pid != 0 && !box->reaped)
			kill(box->pid, SIGKILL);
		return box_lost(b, box);
	}
	if ((size_t)n > BOX_MSG_HEAD)
		m.text[n - (ssize_t)BOX_MSG_HEAD - 1] = '\0';
	else
		m.text[0] = '\0';
	switch (m.type) {
	case BOX_MSG_READY:
		return box_ready(b, box);
	case BOX_MSG_FAILED:
		snprintf(box->why, sizeof box->why, "%s", m.text);
		return 0;	/* its end of file follows */
	case BOX_MSG_DONE:
		if (b->box != box || !b->sent)
			return 0;
		boxer_finish(b, &m);
		return 1;
	default:
		return 0;
	}
}

static void
box_ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct box *box = arg;
	int i;

	(void)fd;
	(void)what;
	/* A few at most: READY and DONE, or end of file. */
	for (i = 0; i < 4 && box->ctl != -1; i++)
		if (box_recv(box->b, box) || box->ctl == -1)
			break;
}

/* ---- a helper's death ----------------------------------------------------- */

/* Its wait status, once it is a zombie (its socket closes as it exits,
 * a moment before); killed if it lingers. */
static int
box_reap(struct box *box)
{
	double until = clock_mono() + BOXER_REAP_SECONDS;
	struct timespec ts = { 0, 1000 * 1000 };
	pid_t got;

	while (!box->reaped) {
		got = waitpid(box->pid, &box->status, WNOHANG);
		if (got == box->pid || (got == -1 && errno == ECHILD))
			box->reaped = 1;
		else if (clock_mono() > until)
			kill(box->pid, SIGKILL);
		else
			nanosleep(&ts, NULL);
	}
	return box->status;
}

static void
box_say_death(struct box *box, int status, char *buf, size_t len)
{
	char name[32];

	if (box->why[0] != '\0')
		snprintf(buf, len, "%s", box->why);
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "%s died of %s", BOX_HELPER_NAME,
		    runner_signal_name(WTERMSIG(status), name, sizeof name));
	else
		snprintf(buf, len, "%s exited with status %d",
		    BOX_HELPER_NAME, WEXITSTATUS(status));
}

/*
 * box's helper is gone (or going): reaps it, and ends the test it ran -
 * by what it reported before, if it did; else as lost with the helper.
 * The next test of its suite starts a new one. Returns 1 when a test
 * ended.
 */
static int
box_lost(struct boxer *b, struct box *box)
{
	struct runner_result res;
	struct test_end end;
	char why[BOX_TEXT_MAX];
	int running = b->box == box, status = 0, finished;
	pid_t pid;

	if (running && b->sent)
		box_drain(box);
	box_close(box);
	if (box->pid != 0)
		status = box_reap(box);
	box_say_death(box, status, why, sizeof why);
	if (!box->ready) {
		/* Said again to the tests that find it given up on. */
		box->failed_starts++;
		memcpy(box->why, why, sizeof box->why);
	}
	box->pid = 0;
	box->ready = 0;
	if (!running)
		return 0;
	/* The child died with the helper; what it left did not. */
	if (b->sent && (pid = __atomic_load_n(&b->page->pid,
	    __ATOMIC_SEQ_CST)) > 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	finished = b->sent && runner_read_page(b->page, &end);
	if (b->stopped != STOP_NONE)
		runner_judge_stopped(b->stopped, b->timeout, &res);
	else if (!b->sent)
		runner_judge_unstarted("the box helper cannot load the suite",
		    why, &res);
	else if (finished)
		runner_judge(b->test, &end, b->page->phase, 1, 0, &res);
	else
		runner_judge_lost(b->test, why, &res);
	res.duration = clock_mono() - b->started;
	boxer_report(b, &res);
	return 1;
}

/* Helpers that died, and orphans of tests whose helper died before them. */
static void
boxer_sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct boxer *b = arg;
	size_t i;
	pid_t pid;
	int status;

	(void)fd;
	(void)what;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (i = 0; i < b->nboxes; i++) {
			if (b->boxes[i]->pid != pid)
				continue;
			b->boxes[i]->reaped = 1;
			b->boxes[i]->status = status;
			box_lost(b, b->boxes[i]);
		}
}

/* ---- synchronisation -------------------------------------------------------- */

/*
 * A test asks for a lock, the board or a trail (box.h): the running
 * test's process (its child, or its group's) is the one asking, and its
 * asks go to the manager (syncclient.c), answered on the channel when
 * the manager answers. The loop never waits for them.
 */
static pid_t
boxer_running_pid(const struct boxer *b)
{
	if (b->box == NULL || !b->sent)
		return 0;
	return __atomic_load_n(&b->page->pid, __ATOMIC_SEQ_CST);
}

static void
boxer_sync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct boxer *b = arg;

	(void)what;
	syncc_read(b->cfg->sync, fd, boxer_running_pid(b),
	    __atomic_load_n(&b->page->group_fixture, __ATOMIC_SEQ_CST));
}

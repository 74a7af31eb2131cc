/*
 * box.c - distworker-box, the worker's box helper. A worker running
 * tests boxed starts one per loaded suite; it loads the same suite and
 * forks a child per test on the worker's word, so that what a boxed test
 * costs is the fork of this small process: the worker, with libevent,
 * jansson, OpenSSL and its heap mapped, forks at twice the cost. A
 * serial group's tests share one child instead, which runs the group's
 * set-up, its tests in turn and its tear-down.
 *
 *   distworker-box SUITE WORKER-PID VERSION
 *
 * with the descriptors box.h names. The worker keeps everything else:
 * the protocol, the output (fds 1 and 2 here are its pipes), timeouts
 * (it kills a test's group by the pid this process leaves in the page),
 * and judging the outcome from the wait status sent back and the report
 * the child left in the page.
 *
 * What it must never do: link anything but libc; print on fds 1 and 2
 * (they are the tests' output); outlive the worker (PR_SET_PDEATHSIG,
 * and end of file on the control socket); report a test before every
 * process it left is gone (it is the subreaper of its tests, and kills
 * and reaps whatever they leave, in their group or not); run anything
 * after its own exit handlers (a child always leaves with _exit).
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "box.h"

#define BOX_ENTRY_NAME		"dm_suite_entry_v1"
/* The fatal and job-control signals whose handlers a child resets. */
#define BOX_RESET_MAX		16

typedef const struct dm_registry *(*box_entry_fn)(const struct dm_host *);

static const struct dm_registry	*reg;
static struct box_page		*page;
static pid_t			 self;
static int			 reset[BOX_RESET_MAX];
static size_t			 nreset;
static char			 stdout_buf[BUFSIZ];
/* What the helper ignores and its tests must not: a Ctrl-C or a
 * timeout(1) reaches the worker's whole process group, and the worker,
 * not the helper dying first, says what became of the running test. */
static const int		 box_ignored[] = { SIGINT, SIGTERM, SIGHUP };

static void
box_send(struct box_msg *m, size_t len)
{
	ssize_t n;

	do
		n = send(BOX_FD_CONTROL, m, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)len)
		_exit(1);	/* the worker is gone */
}

static void DM_NORETURN DM_PRINTF(1, 2)
box_fail(const char *fmt, ...)
{
	struct box_msg m;
	va_list ap;

	memset(&m, 0, sizeof m);
	m.type = BOX_MSG_FAILED;
	m.version = BOX_VERSION;
	va_start(ap, fmt);
	vsnprintf(m.text, sizeof m.text, fmt, ap);
	va_end(ap);
	box_send(&m, BOX_MSG_HEAD + strlen(m.text) + 1);
	_exit(1);
}

/* ---- loading ------------------------------------------------------------- */

static void
box_load(const char *path)
{
	char local[PATH_MAX + 3];
	box_entry_fn entry;
	const char *why;
	void *dl;

	/* As suite.c does: a name without a slash is the file named. */
	if (strchr(path, '/') == NULL) {
		snprintf(local, sizeof local, "./%s", path);
		path = local;
	}
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		why = dlerror();
		box_fail("cannot load %s: %s", path, why != NULL ? why : "?");
	}
	*(void **)&entry = dlsym(dl, BOX_ENTRY_NAME);
	if (entry == NULL)
		box_fail("%s has no %s", path, BOX_ENTRY_NAME);
	reg = entry(host_get());
	if (reg == NULL || reg->abi != DM_ABI_VERSION ||
	    (reg->ntests > 0 && reg->tests == NULL) ||
	    (reg->nsuites > 0 && reg->suites == NULL) ||
	    (reg->ngroups > 0 && reg->groups == NULL))
		box_fail("%s gives no registry of suite ABI %d", path,
		    DM_ABI_VERSION);
}

/* What the worker's own start-up set (a sanitizer's handlers for fatal
 * signals) must not reach a test: a crash must be the test's death. */
static void
box_find_handlers(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
	    SIGTRAP, SIGSYS, SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE,
	    SIGALRM };
	struct sigaction sa;
	size_t i;

	for (i = 0; i < DM_NELEM(sigs) && nreset < BOX_RESET_MAX; i++)
		if (sigaction(sigs[i], NULL, &sa) == 0 &&
		    sa.sa_handler != SIG_DFL)
			reset[nreset++] = sigs[i];
}

/* ---- the child ------------------------------------------------------------ */

/* What every process that runs tests does first. */
static void
box_child_setup(void)
{
	struct sigaction sa;
	size_t i;

	host_ignore_leaks(1);
	setpgid(0, 0);
	/* Dies with the helper; and if the helper is already gone, now. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != self)
		_exit(127);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < nreset; i++)
		sigaction(reset[i], &sa, NULL);
	for (i = 0; i < DM_NELEM(box_ignored); i++)
		sigaction(box_ignored[i], &sa, NULL);
	/* A test must not speak for the helper. */
	close(BOX_FD_CONTROL);
	host_set_process(getpid());
	/* The helper stores it too, but a test may ask for a lock before
	 * it does: the worker answers only the pid in the page. */
	__atomic_store_n(&page->pid, getpid(), __ATOMIC_SEQ_CST);
}

static void
box_flush(void)
{
	if (__fpending(stdout) > 0 || __fpending(stderr) > 0) {
		fflush(stdout);
		fflush(stderr);
	}
}

static void DM_NORETURN
box_child(const struct dm_test *t, const struct dm_suite_def *d)
{
	box_child_setup();
	page->state = BOX_RUNNING;
	host_call(t->opt.init != NULL ? t->opt.init : d != NULL ?
	    d->opt.init : NULL, t->fn, t->opt.fini != NULL ? t->opt.fini :
	    d != NULL ? d->opt.fini : NULL, &page->end, &page->phase);
	box_flush();
	__atomic_store_n(&page->state, BOX_DONE, __ATOMIC_RELEASE);
	_exit(0);
}

/* ---- after a test ------------------------------------------------------------ */

/* Kills every child of this process (orphans of tests, which it adopted
 * as their subreaper) and its group but except (0: none); returns how
 * many there were. */
static int
box_kill_children(pid_t except)
{
	char path[64];
	FILE *f;
	long pid;
	int n = 0;

	snprintf(path, sizeof path, "/proc/self/task/%ld/children",
	    (long)self);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fscanf(f, "%ld", &pid) == 1) {
		if ((pid_t)pid == except)
			continue;
		kill(-(pid_t)pid, SIGKILL);
		kill((pid_t)pid, SIGKILL);
		n++;
	}
	fclose(f);
	return n;
}

/* Reaps what the test left until nothing is left: at once when it left
 * nothing, which is one call. 0, or -1 when something survives. */
static int
box_sweep(void)
{
	struct timespec ts = { 0, 200 * 1000 }, start, now;
	pid_t pid;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0 ||
		    (pid == -1 && errno == EINTR))
			;
		if (pid == -1)
			return 0;	/* ECHILD: none left */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) +
		    (double)(now.tv_nsec - start.tv_nsec) / 1e9 >
		    BOX_SWEEP_SECONDS)
			return -1;
		box_kill_children(0);
		nanosleep(&ts, NULL);
	}
}

/* Waits for the test's child, reaping any orphan that ends meanwhile;
 * kills the child's group while the child, unreaped, still holds its
 * number; then reaps it. */
static int
box_wait(pid_t pid)
{
	siginfo_t si;
	int status = 0;

	for (;;) {
		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (si.si_pid == pid)
			break;
		waitpid(si.si_pid, NULL, 0);
	}
	kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	return status;
}

/* ---- one test -------------------------------------------------------------- */

static void
box_done(uint32_t flags, int status, int error, const char *text)
{
	struct box_msg m;
	size_t len = BOX_MSG_HEAD;

	memset(&m, 0, BOX_MSG_HEAD);
	m.type = BOX_MSG_DONE;
	m.version = BOX_VERSION;
	m.flags = flags;
	m.status = status;
	m.error = error;
	if (text != NULL) {
		snprintf(m.text, sizeof m.text, "%s", text);
		len += strlen(m.text) + 1;
	}
	box_send(&m, len);
}

/* The registry's test the worker names, if it is the one it means. */
static const struct dm_test *
box_find(const struct box_msg *m, const struct dm_suite_def **d)
{
	const struct dm_test *t;

	*d = NULL;
	if (m->test >= reg->ntests || (t = reg->tests[m->test]) == NULL ||
	    t->abi != DM_ABI_VERSION || t->fn == NULL || t->line != m->line)
		return NULL;
	if (m->group_run != 0 && m->group >= 0 &&
	    ((size_t)m->group >= reg->ngroups || reg->groups == NULL ||
	    reg->groups[m->group] == NULL ||
	    reg->groups[m->group]->abi != DM_ABI_VERSION))
		return NULL;
	if (m->defaults >= 0) {
		if ((size_t)m->defaults >= reg->nsuites ||
		    (*d = reg->suites[m->defaults]) == NULL ||
		    (*d)->abi != DM_ABI_VERSION)
			return NULL;
	}
	return t;
}

/* ---- a serial group's process ------------------------------------------- */

/*
 * A serial group's tests run one after another in one process, forked
 * from here for the group's run (the worker numbers each run of a
 * group: a new number is a new process). It runs the group's init
 * first, then each test the helper passes it on a socketpair, and the
 * group's fini after the last; each test's report goes in the page as
 * a test child's does. If it dies (a crash, a timeout's SIGKILL), the
 * next test of the run gets a new one, set up again; if its init
 * fails, every test of the run is told so, and init is not run again.
 */
struct box_gcmd {
	uint32_t	 test;
	int32_t		 defaults;
	uint32_t	 flags;
};

static pid_t		 gpid;		/* the group's process; 0: none */
static uint32_t		 grun;		/* the run it serves */
static int		 gsock = -1;	/* to it */
static int		 gpidfd = -1;	/* readable when it has ended */
static int		 ginit_failed;	/* grun's init failed: ginit_end */
static struct test_end	 ginit_end;

/* Kills everything this process started since the test began: what a
 * test leaves must not outlive it, even in a process that does. */
static void
box_group_reap_own(void)
{
	char path[64];
	FILE *f;
	long pid;

	snprintf(path, sizeof path, "/proc/self/task/%ld/children",
	    (long)getpid());
	if ((f = fopen(path, "re")) == NULL)
		return;
	while (fscanf(f, "%ld", &pid) == 1) {
		kill(-(pid_t)pid, SIGKILL);
		kill((pid_t)pid, SIGKILL);
		while (waitpid((pid_t)pid, NULL, 0) == -1 && errno == EINTR)
			;
	}
	fclose(f);
}

static void DM_NORETURN
box_group_child(const struct dm_group_def *g, int sock)
{
	const struct dm_suite_def *d;
	const struct dm_test *t;
	struct test_end fend;
	struct box_gcmd c;
	ssize_t n;

	box_child_setup();
	page->state = BOX_RUNNING;
	page->group_fixture = 1;
	if (host_call_fixture(PHASE_INIT, g != NULL ? g->opt.init : NULL,
	    &page->end, &page->phase) != HOW_RETURNED) {
		box_flush();
		__atomic_store_n(&page->state, BOX_DONE, __ATOMIC_RELEASE);
		_exit(0);
	}
	page->group_fixture = 0;
	for (;;) {
		n = recv(sock, &c, sizeof c, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof c)
			_exit(0);
		/* The helper checked both against the registry. */
		t = reg->tests[c.test];
		d = c.defaults >= 0 ? reg->suites[c.defaults] : NULL;
		page->state = BOX_RUNNING;
		host_call(t->opt.init != NULL ? t->opt.init : d != NULL ?
		    d->opt.init : NULL, t->fn, t->opt.fini != NULL ?
		    t->opt.fini : d != NULL ? d->opt.fini : NULL, &page->end,
		    &page->phase);
		if (c.flags & BOX_RUN_LAST) {
			page->group_fixture = 1;
			/* The test's own failure is what its result says. */
			if (host_call_fixture(PHASE_FINI, g != NULL ?
			    g->opt.fini : NULL, &fend, &page->phase) !=
			    HOW_RETURNED && page->end.how == HOW_RETURNED)
				memcpy(&page->end, &fend, sizeof fend);
			page->group_fixture = 0;
		}
		box_flush();
		box_group_reap_own();
		__atomic_store_n(&page->state, BOX_DONE, __ATOMIC_RELEASE);
		if (c.flags & BOX_RUN_LAST)
			_exit(0);
		while (send(sock, &c, 1, MSG_NOSIGNAL) == -1 && errno == EINTR)
			;
	}
}

static void
box_group_forget(void)
{
	if (gsock != -1)
		close(gsock);
	if (gpidfd != -1)
		close(gpidfd);
	gsock = gpidfd = -1;
	gpid = 0;
}

/* Ends the group's process (its run is over, or another begins). */
static void
box_group_kill(void)
{
	if (gpid == 0)
		return;
	kill(-gpid, SIGKILL);
	kill(gpid, SIGKILL);
	while (waitpid(gpid, NULL, 0) == -1 && errno == EINTR)
		;
	box_group_forget();
}

static int
box_group_start(const struct box_msg *m)
{
	const struct dm_group_def *g = m->group >= 0 ? reg->groups[m->group] :
	    NULL;
	int sv[2], saved;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		saved = errno;
		close(sv[0]);
		close(sv[1]);
		errno = saved;
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		box_group_child(g, sv[1]);
	}
	close(sv[1]);
	setpgid(pid, pid);
	gpid = pid;
	gsock = sv[0];
	if ((gpidfd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1) {
		saved = errno;
		box_group_kill();
		errno = saved;
		return -1;
	}
	return 0;
}

/* Reaps orphans of the group's tests that have ended, never the group's
 * own process (its pidfd says when it ends). */
static void
box_group_reap_orphans(void)
{
	siginfo_t si;

	for (;;) {
		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == -1 ||
		    si.si_pid == 0 || si.si_pid == gpid)
			return;
		waitpid(si.si_pid, NULL, 0);
	}
}

/* Waits for the group's process to be done with its test: 1 when it
 * said so, 0 when it ended (*status says how; it is reaped and
 * forgotten). */
static int
box_group_wait(int *status)
{
	struct pollfd pfd[2];
	char c;
	ssize_t n;

	for (;;) {
		pfd[0] = (struct pollfd){ gsock, POLLIN, 0 };
		pfd[1] = (struct pollfd){ gpidfd, POLLIN, 0 };
		if (poll(pfd, 2, 200) == -1 && errno != EINTR)
			pfd[1].revents = POLLIN;	/* cannot wait: end it */
		box_group_reap_orphans();
		if (pfd[0].revents & POLLIN) {
			n = recv(gsock, &c, 1, MSG_DONTWAIT);
			if (n == 1)
				return 1;
		}
		if (pfd[1].revents == 0)
			continue;
		kill(-gpid, SIGKILL);
		while (waitpid(gpid, status, 0) == -1 && errno == EINTR)
			;
		box_group_forget();
		return 0;
	}
}

/* Kills and reaps what the group's test left outside its process: until
 * only the group's process is left. 0, or -1 when something survives. */
static int
box_group_sweep(void)
{
	struct timespec ts = { 0, 200 * 1000 }, start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		box_group_reap_orphans();
		if (box_kill_children(gpid) == 0)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) +
		    (double)(now.tv_nsec - start.tv_nsec) / 1e9 >
		    BOX_SWEEP_SECONDS)
			return -1;
		nanosleep(&ts, NULL);
	}
}

static void
box_run_group(const struct box_msg *m)
{
	struct box_gcmd c;
	uint32_t flags = 0;
	int status = 0;

	if (m->group_run != grun) {
		box_group_kill();
		grun = m->group_run;
		ginit_failed = 0;
	}
	if (ginit_failed) {
		memcpy(&page->end, &ginit_end, sizeof page->end);
		page->phase = PHASE_INIT;
		__atomic_store_n(&page->state, BOX_DONE, __ATOMIC_RELEASE);
		box_done(0, 0, 0, NULL);
		return;
	}
	if (gpid == 0 && box_group_start(m) == -1) {
		box_done(BOX_DONE_NOT_STARTED, 0, errno, NULL);
		return;
	}
	__atomic_store_n(&page->pid, gpid, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&page->stop, __ATOMIC_SEQ_CST)) {
		kill(-gpid, SIGKILL);
		kill(gpid, SIGKILL);
	}
	memset(&c, 0, sizeof c);
	c.test = m->test;
	c.defaults = m->defaults;
	c.flags = m->run_flags;
	/* If it is gone already, the wait says how. */
	(void)!send(gsock, &c, sizeof c, MSG_NOSIGNAL);
	if (box_group_wait(&status) == 0 && !(m->run_flags & BOX_RUN_LAST) &&
	    WIFEXITED(status) && __atomic_load_n(&page->state,
	    __ATOMIC_ACQUIRE) == BOX_DONE) {
		/* It ended on its own before its last test: its init. */
		ginit_failed = 1;
		memcpy(&ginit_end, (const void *)&page->end, sizeof ginit_end);
	}
	if ((gpid != 0 ? box_group_sweep() : box_sweep()) == -1)
		flags |= BOX_DONE_LINGERED;
	box_done(flags, status, 0, NULL);
}

static void
box_run(const struct box_msg *m)
{
	const struct dm_suite_def *d;
	const struct dm_test *t = box_find(m, &d);
	uint32_t flags = 0;
	pid_t pid;
	int status;

	if (t == NULL) {
		box_done(BOX_DONE_NOT_STARTED, 0, 0, "the suite's registry "
		    "differs from the worker's: was it rebuilt meanwhile?");
		return;
	}
	if (m->group_run != 0) {
		box_run_group(m);
		return;
	}
	/* A group's process is done with once a test of no group comes. */
	box_group_kill();
	grun = 0;
	if ((pid = fork()) == -1) {
		box_done(BOX_DONE_NOT_STARTED, 0, errno, NULL);
		return;
	}
	if (pid == 0)
		box_child(t, d);
	/* Also here: the group must exist before the worker may kill it. */
	setpgid(pid, pid);
	__atomic_store_n(&page->pid, pid, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&page->stop, __ATOMIC_SEQ_CST)) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	status = box_wait(pid);
	if (box_sweep() == -1)
		flags |= BOX_DONE_LINGERED;
	box_done(flags, status, 0, NULL);
}

static void
box_serve(void)
{
	struct box_msg m;
	ssize_t n;

	for (;;) {
		n = recv(BOX_FD_CONTROL, &m, sizeof m, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);	/* the worker closed, or is gone */
		if ((size_t)n >= BOX_MSG_HEAD && m.type == BOX_MSG_RUN)
			box_run(&m);
	}
}

static void
box_setup(pid_t worker)
{
	void *p;

	self = getpid();
	/* Dies with the worker; and if the worker is already gone, now. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != worker)
		_exit(1);
	/* Whatever a test leaves becomes this process's to kill. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	p = mmap(NULL, sizeof *page, PROT_READ | PROT_WRITE, MAP_SHARED,
	    BOX_FD_PAGE, 0);
	if (p == MAP_FAILED)
		box_fail("cannot map the result page: %s", strerror(errno));
	page = p;
	close(BOX_FD_PAGE);
	/* Tests get the channel when the worker gave one. */
	host_set_sync_fd(fcntl(BOX_FD_SYNC, F_GETFD) != -1 ? BOX_FD_SYNC : -1);
}

int
main(int argc, char **argv)
{
	struct box_msg m;
	size_t i;

	if (argc != 4 || fcntl(BOX_FD_CONTROL, F_GETFD) == -1) {
		fprintf(stderr, "%s: started by distworker only\n", argv[0]);
		return 2;
	}
	if (atoi(argv[3]) != BOX_VERSION)
		box_fail("%s speaks version %d, the worker %s", argv[0],
		    BOX_VERSION, argv[3]);
	box_setup((pid_t)atol(argv[2]));
	/* Line by line, so that what a test printed before crashing is
	 * kept; set once here, before the suite can print, for every child
	 * to inherit. */
	setvbuf(stdout, stdout_buf, _IOLBF, sizeof stdout_buf);
	box_load(argv[1]);
	/* What constructors printed goes out now, before READY: the worker
	 * drops it, and no child inherits it to print again. */
	fflush(stdout);
	fflush(stderr);
	box_find_handlers();
	for (i = 0; i < DM_NELEM(box_ignored); i++)
		signal(box_ignored[i], SIG_IGN);
	memset(&m, 0, sizeof m);
	m.type = BOX_MSG_READY;
	m.version = BOX_VERSION;
	box_send(&m, BOX_MSG_HEAD);
	box_serve();
	return 0;
}

/*
 * lastword.c - the last word of an in-process worker that a test takes
 * down. A test that crashes, calls exit() or hangs in the worker itself
 * ends the worker; before it goes, the worker writes that test's result
 * (crash, with the signal or the status; or timeout) straight to the
 * manager's fd, so that the test has a result like any other.
 *
 * This runs in a signal handler or in exit(): it must only use what is
 * async-signal-safe (no malloc, no stdio, no locks), must write only when
 * a test of this process is running (a child the test forked shares the
 * fd, and is not the worker), and must then let the worker die as it
 * would have. The session flushes every earlier frame before a test
 * starts, so nothing else is half-written on the fd.
 */
#include <sys/time.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "worker.h"

/* Fatal signals the worker reports before dying of them. */
static const int lastword_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL,
	SIGABRT, SIGTRAP, SIGSYS };
/* The timer of an in-process test's timeout. */
#define LASTWORD_TIMER_SIGNAL	SIGALRM
#define LASTWORD_FRAME_MAX	512

static struct sigaction	 lastword_old[DM_NELEM(lastword_signals)];
static int		 lastword_fd = -1;
static pid_t		 lastword_pid;
static volatile sig_atomic_t lastword_armed;
static int		 lastword_suite;
static size_t		 lastword_test;
static double		 lastword_timeout;
static int		 lastword_todo;	/* a crash is then xfail */
static struct timespec	 lastword_started;

/* ---- the frame, built without anything that is not signal-safe -------- */

struct lastword_buf {
	char	 text[LASTWORD_FRAME_MAX];
	size_t	 len;
};

static void
lw_str(struct lastword_buf *b, const char *s)
{
	while (*s != '\0' && b->len < sizeof b->text - 1)
		b->text[b->len++] = *s++;
}

static void
lw_uint(struct lastword_buf *b, unsigned long long v)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0 && b->len < sizeof b->text - 1)
		b->text[b->len++] = digits[--n];
}

static void
lw_seconds(struct lastword_buf *b, double s)
{
	unsigned long long ms = s > 0 ? (unsigned long long)(s * 1000) : 0;

	lw_uint(b, ms / 1000);
	lw_str(b, ".");
	b->text[b->len++] = (char)('0' + ms / 100 % 10);
	b->text[b->len++] = (char)('0' + ms / 10 % 10);
	b->text[b->len++] = (char)('0' + ms % 10);
}

/* Seconds as people read them and as the boxed runner's %g prints them:
 * "0.5", "1", "2.25" -- the same digits without trailing zeros. */
static void
lw_seconds_short(struct lastword_buf *b, double s)
{
	lw_seconds(b, s);
	while (b->text[b->len - 1] == '0')
		b->len--;
	if (b->text[b->len - 1] == '.')
		b->len--;
}

static double
lw_elapsed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - lastword_started.tv_sec) +
	    (double)(now.tv_nsec - lastword_started.tv_nsec) / 1e9;
}

/* Writes {"suite":..,"test":..,"outcome":..,"duration":..,"message":..,
 * extra,"_command":"test_result"} as one frame. what holds only text
 * this file wrote: nothing in it needs escaping. */
static void
lw_send(const char *outcome, const char *what, const char *extra)
{
	struct lastword_buf b;
	unsigned char hdr[4];
	size_t n;

	b.len = 0;
	lw_str(&b, "{\"suite\":");
	lw_uint(&b, (unsigned)lastword_suite);
	lw_str(&b, ",\"test\":");
	lw_uint(&b, lastword_test);
	lw_str(&b, ",\"outcome\":\"");
	lw_str(&b, outcome);
	lw_str(&b, "\",\"duration\":");
	lw_seconds(&b, lw_elapsed());
	lw_str(&b, ",\"message\":\"");
	lw_str(&b, what);
	lw_str(&b, "; the worker ran it in-process and died with it\"");
	lw_str(&b, extra);
	lw_str(&b, ",\"_command\":\"test_result\"}");
	n = b.len;
	hdr[0] = (unsigned char)(n >> 24);
	hdr[1] = (unsigned char)(n >> 16);
	hdr[2] = (unsigned char)(n >> 8);
	hdr[3] = (unsigned char)n;
	(void)!write(lastword_fd, hdr, sizeof hdr);
	(void)!write(lastword_fd, b.text, n);
}

static int
lw_mine(void)
{
	return lastword_armed && lastword_fd != -1 && getpid() == lastword_pid;
}

/* ---- the three ways a test ends the worker ----------------------------- */

static void
lastword_signal(int sig, siginfo_t *si, void *uc)
{
	struct lastword_buf what, extra;
	const char *abbrev = sigabbrev_np(sig), *descr = sigdescr_np(sig);
	size_t i;

	if (lw_mine()) {
		lastword_armed = 0;
		what.len = extra.len = 0;
		lw_str(&what, "died of SIG");
		lw_str(&what, abbrev != NULL ? abbrev : "?");
		lw_str(&what, " (");
		lw_str(&what, descr != NULL ? descr : "unknown signal");
		lw_str(&what, ")");
		what.text[what.len] = '\0';
		lw_str(&extra, ",\"signal\":");
		lw_uint(&extra, (unsigned)sig);
		lw_str(&extra, ",\"signal_name\":\"SIG");
		lw_str(&extra, abbrev != NULL ? abbrev : "?");
		lw_str(&extra, "\"");
		extra.text[extra.len] = '\0';
		lw_send(lastword_todo ? "xfail" : "crash", what.text,
		    extra.text);
	}
	/* Then die of it as before: the earlier handler (a sanitizer's)
	 * or the default action. */
	for (i = 0; i < DM_NELEM(lastword_signals); i++) {
		if (lastword_signals[i] != sig)
			continue;
		sigaction(sig, &lastword_old[i], NULL);
		if ((lastword_old[i].sa_flags & SA_SIGINFO) &&
		    lastword_old[i].sa_sigaction != NULL)
			lastword_old[i].sa_sigaction(sig, si, uc);
		else if (lastword_old[i].sa_handler != SIG_DFL &&
		    lastword_old[i].sa_handler != SIG_IGN)
			lastword_old[i].sa_handler(sig);
		else
			raise(sig);
		return;
	}
}

static void
lastword_timer(int sig)
{
	struct lastword_buf what;

	(void)sig;
	if (!lw_mine())
		return;
	what.len = 0;
	lw_str(&what, "timed out after ");
	lw_seconds_short(&what, lastword_timeout);
	lw_str(&what, " s");
	what.text[what.len] = '\0';
	lw_send("timeout", what.text, "");
	/* The test cannot be stopped where it is: the worker goes. */
	_exit(EXIT_INTERNAL);
}

static void
lastword_exit(int status, void *arg)
{
	struct lastword_buf what, extra;

	(void)arg;
	if (!lw_mine())
		return;
	lastword_armed = 0;
	what.len = extra.len = 0;
	lw_str(&what, "exited with status ");
	lw_uint(&what, (unsigned)(status & 0xff));
	what.text[what.len] = '\0';
	lw_str(&extra, ",\"exit_status\":");
	lw_uint(&extra, (unsigned)(status & 0xff));
	extra.text[extra.len] = '\0';
	lw_send(lastword_todo ? "xfail" : "crash", what.text, extra.text);
}

/* ---- arming ---------------------------------------------------------------- */

void
lastword_install(int fd)
{
	struct sigaction sa;
	size_t i;

	lastword_fd = fd;
	lastword_pid = getpid();
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = lastword_signal;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	for (i = 0; i < DM_NELEM(lastword_signals); i++)
		sigaction(lastword_signals[i], &sa, &lastword_old[i]);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = lastword_timer;
	sigaction(LASTWORD_TIMER_SIGNAL, &sa, NULL);
	on_exit(lastword_exit, NULL);
}

void
lastword_arm(int suite, size_t test, double timeout, int todo)
{
	struct itimerval it;

	if (lastword_fd == -1)
		return;
	lastword_suite = suite;
	lastword_test = test;
	lastword_timeout = timeout;
	lastword_todo = todo;
	clock_gettime(CLOCK_MONOTONIC, &lastword_started);
	lastword_armed = 1;
	if (timeout > 0) {
		memset(&it, 0, sizeof it);
		it.it_value.tv_sec = (time_t)timeout;
		it.it_value.tv_usec = (suseconds_t)((timeout -
		    (double)it.it_value.tv_sec) * 1e6);
		if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
			it.it_value.tv_usec = 1;
		setitimer(ITIMER_REAL, &it, NULL);
	}
}

void
lastword_disarm(void)
{
	struct itimerval it;

	if (lastword_fd == -1)
		return;
	if (lastword_timeout > 0) {
		memset(&it, 0, sizeof it);
		setitimer(ITIMER_REAL, &it, NULL);
	}
	lastword_armed = 0;
}

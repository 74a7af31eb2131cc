/*
 * host.c - the worker's side of the suite ABI: struct dm_host, whose end()
 * is what every failed assertion, DM_FAIL and DM_SKIP call, and the
 * running of one test's init fixture, body and fini fixture in the
 * current process (a boxed child, or the worker itself in-process).
 *
 * end() never returns: in the thread and process running the test it
 * jumps back here; in a thread the test started it records the failure
 * and ends that thread; in a process the test forked it ends that
 * process. It must stay cheap and must not allocate: it may run in a
 * child whose heap the test has just corrupted.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "worker.h"

#if defined(__SANITIZE_ADDRESS__)
#define HOST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOST_LSAN 1
#endif
#endif
#ifdef HOST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static void DM_NORETURN host_end(enum dm_end how, const char *file, int line,
	    const char *message);

static const struct dm_host host = {
	sizeof(struct dm_host), host_end, NULL, NULL, NULL, NULL, NULL
};

static sigjmp_buf		 host_jmp;
static struct test_end		*host_current;	/* the phase's record */
static volatile sig_atomic_t	 host_active;	/* a phase is running */
static pthread_t		 host_thread;	/* the thread running it */
static pid_t			 host_pid;	/* the process running it */

/* The first failure reported from another thread of the test. */
static struct test_end		 host_thread_end;
static int			 host_thread_state;	/* 0, 1 writing, 2 set */

const struct dm_host *
host_get(void)
{
	return &host;
}

void
host_set_process(pid_t pid)
{
	host_pid = pid;
}

void
host_ignore_leaks(int on)
{
#ifdef HOST_LSAN
	if (on)
		__lsan_disable();
	else
		__lsan_enable();
#else
	(void)on;
#endif
}

const char *
host_phase_name(int phase)
{
	switch (phase) {
	case PHASE_INIT:
		return "the init fixture";
	case PHASE_FINI:
		return "the fini fixture";
	default:
		return "the test";
	}
}

static void
host_record(struct test_end *end, enum dm_end how, const char *file,
    int line, const char *message)
{
	end->how = how == DM_END_SKIP ? HOW_SKIP : HOW_FAIL;
	end->line = line;
	snprintf(end->file, sizeof end->file, "%s", file != NULL ? file : "");
	snprintf(end->message, sizeof end->message, "%s",
	    message != NULL ? message : "");
}

/* An assertion in a process the test forked: it ends that process the
 * way a failing program would, saying why on its stderr. */
static void DM_NORETURN
host_end_elsewhere(const char *file, int line, const char *message)
{
	char buf[RESULT_MESSAGE_MAX + RESULT_FILE_MAX + 32];
	int n;

	n = snprintf(buf, sizeof buf, "%s:%d: %s\n", file != NULL ? file : "?",
	    line, message != NULL ? message : "");
	if (n > 0)
		(void)!write(2, buf, (size_t)n < sizeof buf ? (size_t)n :
		    sizeof buf - 1);
	_exit(1);
}

static void DM_NORETURN
host_end_thread(enum dm_end how, const char *file, int line,
    const char *message)
{
	int expected = 0;

	if (__atomic_compare_exchange_n(&host_thread_state, &expected, 1, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		host_record(&host_thread_end, how, file, line, message);
		__atomic_store_n(&host_thread_state, 2, __ATOMIC_RELEASE);
	}
	pthread_exit(NULL);
}

static void DM_NORETURN
host_end(enum dm_end how, const char *file, int line, const char *message)
{
	if (host_pid != 0 && getpid() != host_pid)
		host_end_elsewhere(file, line, message);
	if (!pthread_equal(pthread_self(), host_thread))
		host_end_thread(how, file, line, message);
	if (!host_active) {
		/* Called after the test ended (a destructor, an atexit
		 * handler): nothing to end but the process. */
		fprintf(stderr, "%s:%d: %s (outside any test)\n",
		    file != NULL ? file : "?", line,
		    message != NULL ? message : "");
		abort();
	}
	host_record(host_current, how, file, line, message);
	siglongjmp(host_jmp, 1);
}

/* A failure another thread reported counts when the phase returned. */
static void
host_take_thread_failure(struct test_end *end)
{
	if (__atomic_load_n(&host_thread_state, __ATOMIC_ACQUIRE) != 2)
		return;
	end->how = host_thread_end.how;
	end->line = host_thread_end.line;
	memcpy(end->file, host_thread_end.file, sizeof end->file);
	memcpy(end->message, host_thread_end.message, sizeof end->message);
	__atomic_store_n(&host_thread_state, 0, __ATOMIC_RELEASE);
}

static int
host_phase(int ph, void (*fn)(void), struct test_end *end,
    volatile int *phase)
{
	*phase = ph;
	host_current = end;
	host_active = 1;
	if (sigsetjmp(host_jmp, 0) == 0) {
		fn();
		end->how = HOW_RETURNED;
		host_take_thread_failure(end);
	}
	host_active = 0;
	host_current->phase = ph;
	return host_current->how;
}

static void
host_end_clear(struct test_end *end)
{
	end->how = HOW_RETURNED;
	end->phase = PHASE_TEST;
	end->line = 0;
	end->file[0] = '\0';
	end->message[0] = '\0';
}

void
host_call(const struct suite_test *t, struct test_end *end,
    volatile int *phase)
{
	void (*init)(void) = suite_test_init(t);
	void (*fini)(void) = suite_test_fini(t);
	struct test_end fini_end;

	host_thread = pthread_self();
	__atomic_store_n(&host_thread_state, 0, __ATOMIC_RELEASE);
	host_end_clear(end);
	if (init != NULL && host_phase(PHASE_INIT, init, end, phase) !=
	    HOW_RETURNED)
		return;		/* fini undoes what init did: not run */
	host_phase(PHASE_TEST, t->def->fn, end, phase);
	if (fini == NULL)
		return;
	host_end_clear(&fini_end);
	/* A failing test's own failure is what its result reports. */
	if (host_phase(PHASE_FINI, fini, &fini_end, phase) != HOW_RETURNED &&
	    end->how == HOW_RETURNED)
		memcpy(end, &fini_end, sizeof *end);
}

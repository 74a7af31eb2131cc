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
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "host.h"
#include "box.h"

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
static int	host_lock(const char *name);
static int	host_unlock(const char *name);
static int	host_board_set(const char *key, const char *value);
static char	*host_board_get(const char *key);
static int	host_trail(const char *name, enum dm_trail_phase phase);

static const struct dm_host host = {
	sizeof(struct dm_host), host_end, host_lock, host_unlock,
	host_board_set, host_board_get, host_trail
};

static sigjmp_buf		 host_jmp;
static struct test_end		*host_current;	/* the phase's record */
static volatile sig_atomic_t	 host_active;	/* a phase is running */
static pthread_t		 host_thread;	/* the thread running it */
static pid_t			 host_pid;	/* the process running it */

/* The synchronisation channel (host_set_sync_fd), or the worker's own
 * hook (host_set_sync_call); one call at a time. */
static int			 host_sync_fd = -1;
static host_sync_fn		 host_sync_call;
static pthread_mutex_t		 host_sync_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t			 host_sync_count;

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
host_set_sync_fd(int fd)
{
	host_sync_fd = fd;
}

void
host_set_sync_call(host_sync_fn fn)
{
	host_sync_call = fn;
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
host_call(void (*init)(void), void (*fn)(void), void (*fini)(void),
    struct test_end *end, volatile int *phase)
{
	struct test_end fini_end;

	host_thread = pthread_self();
	__atomic_store_n(&host_thread_state, 0, __ATOMIC_RELEASE);
	host_end_clear(end);
	if (init != NULL && host_phase(PHASE_INIT, init, end, phase) !=
	    HOW_RETURNED)
		return;		/* fini undoes what init did: not run */
	host_phase(PHASE_TEST, fn, end, phase);
	if (fini == NULL)
		return;
	host_end_clear(&fini_end);
	/* A failing test's own failure is what its result reports. */
	if (host_phase(PHASE_FINI, fini, &fini_end, phase) != HOW_RETURNED &&
	    end->how == HOW_RETURNED)
		memcpy(end, &fini_end, sizeof *end);
}

int
host_call_fixture(int ph, void (*fn)(void), struct test_end *end,
    volatile int *phase)
{
	host_thread = pthread_self();
	__atomic_store_n(&host_thread_state, 0, __ATOMIC_RELEASE);
	host_end_clear(end);
	if (fn == NULL)
		return HOW_RETURNED;
	return host_phase(ph, fn, end, phase);
}

/* ---- synchronisation ----------------------------------------------------- */

/*
 * One request and its answer on the sync channel. Only the test's own
 * process asks (a process it forked shares the channel, and answers
 * could cross); its threads take turns. -1 when there is no channel, a
 * string is too long, or the worker is gone.
 */
static int
host_sync(uint32_t op, const char *a, const char *b, int32_t arg,
    char **value)
{
	struct box_sync_req req;
	struct box_sync_reply rep;
	struct iovec iov[3];
	char buf[BOX_SYNC_STRING_MAX];
	struct msghdr mh;
	size_t alen = a != NULL ? strlen(a) : 0, blen = b != NULL ? strlen(b) : 0;
	ssize_t n;

	if (getpid() != host_pid || a == NULL)
		return -1;
	if (host_sync_call != NULL) {
		pthread_mutex_lock(&host_sync_lock);
		n = host_sync_call(op, a, b, arg, value);
		pthread_mutex_unlock(&host_sync_lock);
		return (int)n;
	}
	if (host_sync_fd == -1 || alen > BOX_SYNC_STRING_MAX ||
	    blen > BOX_SYNC_STRING_MAX)
		return -1;
	memset(&req, 0, sizeof req);
	req.op = op;
	req.arg = arg;
	req.alen = (uint32_t)alen;
	req.blen = (uint32_t)blen;
	iov[0] = (struct iovec){ &req, sizeof req };
	iov[1] = (struct iovec){ (void *)a, alen };
	iov[2] = (struct iovec){ (void *)(b != NULL ? b : ""), blen };
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = iov;
	mh.msg_iovlen = 3;
	pthread_mutex_lock(&host_sync_lock);
	req.id = (uint64_t)host_pid << 32 | ++host_sync_count;
	n = sendmsg(host_sync_fd, &mh, MSG_NOSIGNAL);
	if (n == (ssize_t)(sizeof req + alen + blen)) {
		iov[0] = (struct iovec){ &rep, sizeof rep };
		iov[1] = (struct iovec){ buf, sizeof buf };
		mh.msg_iovlen = 2;
		do
			n = recvmsg(host_sync_fd, &mh, 0);
		while ((n == -1 && errno == EINTR) ||
		    (n >= (ssize_t)sizeof rep && rep.id != req.id));
	} else
		n = -1;
	pthread_mutex_unlock(&host_sync_lock);
	if (n < (ssize_t)sizeof rep || rep.len > (uint32_t)n - sizeof rep)
		return -1;
	if (value != NULL && rep.rc == 0 && rep.has_value) {
		if ((*value = malloc((size_t)rep.len + 1)) == NULL)
			return -1;
		memcpy(*value, buf, rep.len);
		(*value)[rep.len] = '\0';
	}
	return rep.rc;
}

static int
host_lock(const char *name)
{
	return host_sync(BOX_SYNC_LOCK, name, NULL, 0, NULL);
}

static int
host_unlock(const char *name)
{
	return host_sync(BOX_SYNC_UNLOCK, name, NULL, 0, NULL);
}

static int
host_board_set(const char *key, const char *value)
{
	return host_sync(BOX_SYNC_BOARD_SET, key, value != NULL ? value : "",
	    0, NULL);
}

static char *
host_board_get(const char *key)
{
	char *value = NULL;

	if (host_sync(BOX_SYNC_BOARD_GET, key, NULL, 0, &value) != 0)
		return NULL;
	return value;
}

static int
host_trail(const char *name, enum dm_trail_phase phase)
{
	return host_sync(BOX_SYNC_TRAIL, name, NULL, (int32_t)phase, NULL);
}

/*
 * host.h - the suite-facing side of one test's run (host.c), shared by
 * distworker and its box helper distworker-box (worker/box/): how a
 * test's body and fixtures ended, and the calls that run them.
 *
 * Libc only: the box helper links nothing else, so nothing here may
 * bring in libevent, jansson or OpenSSL.
 */
#ifndef DM_HOST_H
#define DM_HOST_H

#include <sys/types.h>

#include <stdint.h>

#ifndef DM_HOST_SIDE
#define DM_HOST_SIDE
#endif
#include "distmgr.h"

#define RESULT_MESSAGE_MAX	2048
#define RESULT_FILE_MAX		1024

enum test_phase { PHASE_NONE = 0, PHASE_INIT, PHASE_TEST, PHASE_FINI };
/* How a phase ended: DM_END_FAIL and DM_END_SKIP come from the suite. */
enum test_how { HOW_RETURNED = 0, HOW_FAIL = DM_END_FAIL,
	HOW_SKIP = DM_END_SKIP };

/* How a test's body and fixtures ended, as the process that ran them saw
 * it. Boxed, it lives in a page shared with the worker. */
struct test_end {
	int	 how;		/* enum test_how */
	int	 phase;		/* enum test_phase where it ended */
	int	 line;
	char	 file[RESULT_FILE_MAX];
	char	 message[RESULT_MESSAGE_MAX];
};

const struct dm_host *host_get(void);
/* The process that runs tests from now on (a boxed child sets itself);
 * an assertion in any other process ends that process instead. */
void	host_set_process(pid_t pid);
/* Runs init (if any), fn, and fini (if any, and when init succeeded) in
 * this process. *phase tracks where it is, for a crash to be placed. */
void	host_call(void (*init)(void), void (*fn)(void), void (*fini)(void),
	    struct test_end *end, volatile int *phase);
/* Runs a group's init or fini (ph: PHASE_INIT or PHASE_FINI) alone,
 * recording its end likewise; returns end->how (HOW_RETURNED when fn is
 * NULL). */
int	host_call_fixture(int ph, void (*fn)(void), struct test_end *end,
	    volatile int *phase);
const char *host_phase_name(int phase);
/* Under LeakSanitizer: from now on (on) or no longer, allocations are not
 * leaks. A test's deliberate leaks are the test's business. */
void	host_ignore_leaks(int on);

/*
 * The synchronisation calls (dm_lock, dm_unlock, dm_board_set,
 * dm_board_get, dm_trail; distmgr(3)) go, from the test's own process,
 * over fd as one request each, and block for the answer. fd is a
 * SOCK_SEQPACKET socket whose other end the worker watches in its event
 * loop (see box.h for the messages); -1, the default, answers every call
 * with -1 (NULL for dm_board_get): not available. Only the boxed runner
 * with its helper sets it.
 */
void	host_set_sync_fd(int fd);
/* In the worker's own process (in-process tests), the calls go to fn
 * instead, which asks the manager itself (NULL: back to the channel).
 * A process forked from the worker must set NULL before it runs a test. */
typedef int (*host_sync_fn)(uint32_t op, const char *a, const char *b,
	    int arg, char **value);
void	host_set_sync_call(host_sync_fn fn);

#endif /* DM_HOST_H */

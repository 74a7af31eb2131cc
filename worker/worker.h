/*
 * worker.h - what worker/ exports: loading a suite and its test list
 * (suite.c), running one test boxed or in the worker itself (runner.c,
 * runner-boxer.c, runner-boxed.c, runner-inproc.c, capture.c,
 * lastword.c; host.c and host.h, shared with the box helper, and box.h,
 * what the worker and the helper say to each other), the
 * worker's temporary directory and environment (env.c), the protocol
 * session behind --stdio (session.c, tells.c) and the debugging command
 * line (cli.c). blobcache.h is the blob cache's own.
 *
 * Everything else in the folder is static. Nothing here may let a test
 * take the worker down by anything but a crash in in-process mode.
 */
#ifndef DM_WORKER_H
#define DM_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "host.h"

struct event_base;

/* Exit statuses, as pytest's (DESIGN.md). */
#define EXIT_OK			0
#define EXIT_TESTS_FAILED	1
#define EXIT_INTERRUPTED	2
#define EXIT_INTERNAL		3
#define EXIT_USAGE		4
#define EXIT_NO_TESTS		5

/* ---- suite.c: a loaded suite and its test list ------------------------ */

/* Load errors, as distmgr-protocol(7) names them. */
#define SUITE_E_NO_SUCH_FILE	"NO_SUCH_FILE"
#define SUITE_E_NOT_A_SUITE	"NOT_A_SUITE"
#define SUITE_E_ABI_MISMATCH	"ABI_MISMATCH"
#define SUITE_E_DUPLICATE_ID	"DUPLICATE_ID"
#define SUITE_E_NO_TESTS	"NO_TESTS"
#define SUITE_E_FAILED		"FAILED"
#define SUITE_E_BAD_OPTION	"BAD_OPTION"
#define SUITE_E_STRATEGY_CONFLICT "STRATEGY_CONFLICT"

/* A suite's strings are refused above this many bytes: every list entry
 * must fit well inside one frame. */
#define SUITE_STRING_MAX	4096
/* Entries per suite_tests tell (distmgr-protocol(7)). */
#define SUITE_LIST_PIECE	1000

struct suite_error {
	const char	*code;		/* SUITE_E_* */
	char		 text[1024];	/* a sentence for humans */
};

/* One test, with the suite's DM_SUITE defaults it falls back on. Both
 * pointers point into the loaded suite, which is never unloaded. */
struct suite_test {
	const struct dm_test		*def;
	const struct dm_suite_def	*defaults;	/* NULL: none */
	/* Where the registry the suite's entry point returns has them
	 * (defaults_at -1: none): how the box helper, which loads the
	 * suite again, finds the same test. */
	size_t				 at;
	long				 defaults_at;
	long				 group;		/* suite_group_get; -1 */
};

/* Strategies of groups (distmgr(3)). */
enum suite_strategy { STRATEGY_FREE = 0, STRATEGY_SERIAL,
	STRATEGY_ISOLATED_FREE, STRATEGY_ISOLATED_SERIAL };

/* A group its tests name (.group, DM_SUITE's .group, or the suite's own
 * name for a test that sets a strategy and no group), with its one
 * strategy and its DM_GROUP declaration, if any. */
struct suite_group {
	const char			*name;
	enum suite_strategy		 strategy;
	const struct dm_group_def	*def;		/* NULL: none */
	long				 def_at;	/* in the registry; -1 */
};

struct suite;

/* dlopens path, validates its registry and orders its tests (by file in
 * link order, then line). NULL with err filled when it is not a usable
 * suite; the suite is then unloaded again. host is handed to the suite
 * and must outlive it. */
struct suite	*suite_load(const char *path, const struct dm_host *host,
		    struct suite_error *err);
/* Frees what suite_load allocated; the shared object stays mapped, since
 * memory a test or the suite's constructors made may still point in. */
void		 suite_free(struct suite *);
const char	*suite_path(const struct suite *);
size_t		 suite_count(const struct suite *);
const struct suite_test *suite_get(const struct suite *, size_t index);
/* sha256 hex of "id\tfile:line\n" over the list (distmgr-protocol(7)). */
const char	*suite_hash(const struct suite *);
/* The index of the test with this id, or -1. */
long		 suite_find(const struct suite *, const char *id);
/* The suite's groups: the one a test is in (suite_test's group), or by
 * name (-1 when none is called so). */
const struct suite_group *suite_group_get(const struct suite *, long group);
long		 suite_group_find(const struct suite *, const char *name);
/* The registry the suite's entry point returned (the box helper, which
 * loads the suite again, finds tests and groups by their places in it). */
const struct dm_registry *suite_registry(const struct suite *);
/* "free", "serial", "isolated_free", "isolated_serial"; and back (-1). */
const char	*suite_strategy_name(enum suite_strategy);
int		 suite_strategy_parse(const char *);

/* "suite/name" into buf (cut to fit). */
const char	*suite_test_id(const struct suite_test *, char *buf,
		    size_t len);
/* The effective options: the test's, else the suite's default. */
double		 suite_test_timeout(const struct suite_test *);
void		(*suite_test_init(const struct suite_test *))(void);
void		(*suite_test_fini(const struct suite_test *))(void);
/* A test whose end kills its process (.signal or .exit_code). */
int		 suite_test_expects_death(const struct suite_test *);
/* The list entry distmgr-protocol(7) describes; caller owns it. */
json_t		*suite_test_json(const struct suite *,
		    const struct suite_test *);

/* ---- capture.c: the kept tail of one output stream -------------------- */

/* Bytes read from a pipe at a time. */
#define CAPTURE_READ_CHUNK	(64u * 1024)
/* Room kept in front of the data for the line saying what was cut. */
#define CAPTURE_HEADROOM	128

/* Keeps at most cap bytes, the last ones, and counts what it dropped.
 * The buffer grows on demand and is reused across tests. */
struct capture {
	char		*buf;
	size_t		 size;		/* allocated */
	size_t		 start;		/* data begins at buf + start */
	size_t		 len;
	size_t		 cap;
	uint64_t	 total;		/* bytes seen since the reset */
};

void	capture_init(struct capture *, size_t cap);
void	capture_reset(struct capture *);
void	capture_free(struct capture *);
/* Takes old's buffer back into c when c has none yet (and it is small
 * enough to keep); frees it else. */
void	capture_give_back(struct capture *c, struct capture *old);
void	capture_add(struct capture *, const void *data, size_t len);
/* Reads what fd has now. Returns the bytes read, 0 at end of file, or -1
 * (errno EAGAIN when there is nothing more for now). */
ssize_t	capture_read_fd(struct capture *, int fd);
/* The kept bytes, preceded by a line saying how many were cut when any
 * were; valid until the next call on the capture. */
const char *capture_data(struct capture *, size_t *len);
/* Takes the last cap bytes of the first size bytes of file fd, for
 * output that went to a file; then capture_data() as above. */
const char *capture_file_tail(struct capture *, int fd, uint64_t size,
	    size_t *len);
/* The marker line for cut bytes; returns its length. */
size_t	capture_cut_line(char *buf, size_t size, uint64_t cut, size_t kept);

/* ---- host.c: see host.h ---------------------------------------------- */

/* ---- runner.c: one test at a time, boxed or in-process ---------------- */

enum test_outcome {
	OUTCOME_PASS = 0, OUTCOME_FAIL, OUTCOME_ERROR, OUTCOME_SKIP,
	OUTCOME_XFAIL, OUTCOME_XPASS, OUTCOME_CRASH, OUTCOME_TIMEOUT,
	OUTCOME_INTERRUPTED,
	OUTCOME_COUNT
};

const char *test_outcome_name(enum test_outcome);
/* Counts against the run, as with distmgr: fail, error, crash, timeout,
 * xpass (a todo that passes is stale) and interrupted. */
int	test_outcome_failed(enum test_outcome);

/* What one finished test produced. out and err are borrowed: valid
 * until the done callback returns. */
struct runner_result {
	enum test_outcome	 outcome;
	double		 duration;	/* seconds */
	char		 message[RESULT_MESSAGE_MAX];	/* "": none */
	char		 file[RESULT_FILE_MAX];		/* "": none */
	int		 line;
	int		 signal;	/* 0: none */
	int		 exit_status;	/* -1: none */
	const char	*out;
	size_t		 out_len;
	const char	*err;
	size_t		 err_len;
};

/* "SIGSEGV" (or "signal 77"), for results and messages. */
const char *runner_signal_name(int sig, char *buf, size_t len);

#define RUNNER_OUTPUT_CAP_DEFAULT	(1024u * 1024)
#define RUNNER_OUTPUT_CAP_MAX		(64u * 1024 * 1024)

struct runner_config {
	int	 boxed;		/* fork per test (else in the worker) */
	int	 capture;	/* capture stdout and stderr per test */
	double	 timeout;	/* for tests that set none; 0: none */
	double	 multiplier;	/* applied to every timeout */
	size_t	 output_cap;	/* bytes kept per test and stream */
	struct syncc *sync;	/* tests' dm_lock and the rest; NULL: -1 */
};

/* Why a running test was killed. */
enum runner_stop { STOP_NONE = 0, STOP_TIMEOUT, STOP_CANCEL, STOP_SHUTDOWN,
	STOP_EXIT };

/* A test of one run of a serial group (runner_start_group): the run's
 * tests share one process, set up by the group's init before the first
 * and torn down by its fini after the last. */
struct runner_group {
	uint32_t			 run;	/* a new number: a new run */
	const struct suite_group	*group;
	int				 last;	/* the run's last test */
};

struct runner;
typedef void (*runner_done_fn)(void *ctx, const struct suite *,
	    size_t index, const struct runner_result *);

/* done runs once per started test, from runner_start itself when the
 * test finished at once (skip, in-process, cannot fork) or later from
 * the event loop. */
struct runner	*runner_new(struct event_base *, const struct runner_config *,
		    runner_done_fn done, void *ctx);
/* Kills and reaps a running test without reporting it. */
void		 runner_free(struct runner *);
/* An fd a test's child must not inherit (the protocol channel). */
void		 runner_close_in_child(struct runner *, int fd);
/* Returns 1 when the test has already finished, 0 when it runs. */
int		 runner_start(struct runner *, const struct suite *,
		    size_t index);
/* The same for a serial group's test (g NULL: none). Without the box
 * helper, boxed, each test still gets a child of its own, with the
 * group's init and fini around it. */
int		 runner_start_group(struct runner *, const struct suite *,
		    size_t index, const struct runner_group *g);
int		 runner_busy(const struct runner *);
/* The handle results name the suite by (for lastword.c). */
void		 runner_name_suite(struct runner *, int handle);
/* Forgets output written outside any test (a suite's constructors). */
void		 runner_discard_output(struct runner *);
/* Kills the running test; its result (interrupted) follows from the
 * loop. Does nothing when none runs. */
void		 runner_stop(struct runner *, enum runner_stop why);
/* The timeout a test gets under this configuration; 0: none. */
double		 runner_timeout(const struct runner_config *,
		    const struct suite_test *);

/* Internal to the runners. The outcome of a test whose process ended:
 * finished says it got through host_call (end is then complete), else
 * wait_status tells how it died, and phase where. */
void	runner_judge(const struct suite_test *, const struct test_end *end,
	    int phase, int finished, int wait_status, struct runner_result *res);
/* The outcome of a test the runner killed. */
void	runner_judge_stopped(enum runner_stop why, double timeout,
	    struct runner_result *res);
/* An error: the test could not be started ("what: why", or why). */
void	runner_judge_unstarted(const char *what, const char *why,
	    struct runner_result *res);
/* A crash: the box helper running the test died (why says how). */
void	runner_judge_lost(const struct suite_test *, const char *why,
	    struct runner_result *res);
/* Copies the child's report out of the shared page, made safe to read
 * (the page is the test's memory too); returns whether the child got
 * through host_call. */
struct box_page;
int	runner_read_page(struct box_page *, struct test_end *end);

/* runner-boxed.c: each test forked from the worker itself; the boxed
 * runner when no box helper is installed. */

struct boxed;
struct boxed	*boxed_new(struct event_base *, const struct runner_config *,
		    runner_done_fn done, void *ctx);
void		 boxed_free(struct boxed *);
void		 boxed_close_in_child(struct boxed *, int fd);
/* g (may be NULL): a serial group's test, set up and torn down around
 * itself, since without the helper no process is shared. */
int		 boxed_start(struct boxed *, const struct suite *,
		    size_t index, const struct runner_group *g);
int		 boxed_busy(const struct boxed *);
void		 boxed_stop(struct boxed *, enum runner_stop why);

/*
 * runner-boxer.c: each test forked by the suite's box helper
 * (distworker-box). boxer_new returns NULL when no helper is found.
 *
 * The hook for dm_lock, dm_unlock, dm_board_set, dm_board_get and
 * dm_trail (distmgr(3)): a test's child sends each call as one request
 * on a SOCK_SEQPACKET channel it inherits and blocks for the answer
 * (host.c, box.h); the worker reads requests in boxer_sync_cb, from its
 * event loop, while the test runs (one at a time: the running test is
 * the one asking), asks the manager (syncclient.c) and sends the
 * box_sync_reply when its answer comes. In-process the calls are asked
 * by the test's own thread (syncclient.c); without a helper they
 * return -1.
 */
struct boxer;
struct boxer	*boxer_new(struct event_base *, const struct runner_config *,
		    runner_done_fn done, void *ctx);
void		 boxer_free(struct boxer *);
int		 boxer_start(struct boxer *, const struct suite *,
		    size_t index, const struct runner_group *g);
int		 boxer_busy(const struct boxer *);
void		 boxer_stop(struct boxer *, enum runner_stop why);

struct inproc;
struct inproc	*inproc_new(const struct runner_config *);
void		 inproc_free(struct inproc *);
/* Runs the test, then group_fini (NULL: none) when it is a serial
 * group's last. */
void		 inproc_run(struct inproc *, const struct suite_test *,
		    void (*group_fini)(void), struct runner_result *res);
/* What was printed since the last test, as res's output. */
void		 inproc_take_output(struct inproc *, struct runner_result *res);
void		 inproc_discard_output(struct inproc *);
/* A group's init or fini (ph) in the worker; end->how is returned. */
int		 inproc_fixture(struct inproc *, int ph, void (*fn)(void),
		    struct test_end *end);

/* ---- syncclient.c: a test's synchronisation calls, asked of the manager */

struct syncc;
struct amp_conn;
struct syncc	*syncc_new(void);
void		 syncc_free(struct syncc *);
/* The manager's connection (NULL once it has closed: calls answer -1). */
void		 syncc_set_conn(struct syncc *, struct amp_conn *);
/* The test running now, which asks name; clear when it has ended. */
void		 syncc_set_test(struct syncc *, int suite, long test);
/* In-process, while a serial group's init or fini runs (on): its asks
 * are the group's (test -1), held until the group's run ends. */
void		 syncc_group_fixture(struct syncc *, int on);
void		 syncc_clear_test(struct syncc *);
/* Boxed: reads the requests waiting on fd (the worker's end of the sync
 * channel), forwards those of the process pid (the running test's, 0:
 * none; its group's init or fini when group_fixture) and answers each
 * on fd when the manager has. Returns how many were read. */
size_t		 syncc_read(struct syncc *, int fd, pid_t pid,
		    int group_fixture);
/* In-process: the calls of tests run in this process go to sc (NULL:
 * none), asked synchronously. */
void		 syncc_inproc_install(struct syncc *);

/* ---- tells.c: the per-test tells, encoded by hand ---------------------- */

struct amp_conn;

/* test_started, and a test_result of outcome pass with only a duration:
 * the two boxes every passing test costs. 0, or -1 as amp_tell. */
int	tell_test_started(struct amp_conn *, int suite, size_t test);
int	tell_test_passed(struct amp_conn *, int suite, size_t test,
	    double duration);

/* ---- lastword.c: an in-process worker's last result -------------------- */

/* From now on a test run in-process that crashes, exits or runs over its
 * time gets its result written to fd before the worker dies. */
void	lastword_install(int fd);
/* Around each test run in-process: the ids its result names, its
 * timeout (0: none; a timer is armed otherwise), and whether it is marked
 * todo (a crash is then xfail, as when boxed). */
void	lastword_arm(int suite, size_t test, double timeout, int todo);
void	lastword_disarm(void);

/* ---- env.c: the worker's temporary directory and environment ---------- */

/* Creates the worker's directory under $TMPDIR (or /tmp); it is removed
 * when this process exits, never when a test's child does. */
int		 workdir_create(char *why, size_t whylen);
const char	*workdir_path(void);
void		 workdir_remove(void);
/* Sets DISTMGR_WORKER, DISTMGR_WORKER_COUNT, DISTMGR_RUN_ID and TMPDIR
 * for the tests to come. */
void		 env_set_worker(const char *worker_id, long long count,
		    const char *run_id);
/* Kills children the worker adopted (PR_SET_CHILD_SUBREAPER) that are
 * still alive: what tests left behind outside their process group. */
void		 env_kill_adopted(void);
/* Makes this process the reaper of its descendants' orphans. */
void		 env_become_subreaper(void);

/* ---- session.c: the protocol over --stdio ------------------------------ */

/* Serves the manager on fds 0 and 1 until it closes the connection or
 * says shutdown. Returns the exit status. */
int	session_stdio_main(void);

/* ---- cli.c: the debugging command line --------------------------------- */

struct cli_options {
	const char	*suite;
	char *const	*ids;		/* tests to run; none: all */
	int		 nids;
	int		 boxed;
	double		 timeout;
	size_t		 output_cap;
	int		 verbose;
};

int	cli_list(const struct cli_options *);
int	cli_run(const struct cli_options *);

#endif /* DM_WORKER_H */

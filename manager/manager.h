/*
 * manager.h - what the parts of distmgr export to each other.
 *
 * The flow:  options -> catalog (the tests of every suite) -> select ->
 * history order -> scheduler <-> pool (workers, transports) -> the
 * distreporter -> reporters (terminal, later JUnit/TAP/JSON/web).
 *
 * Dependencies point down this list and never back: a reporter knows
 * nothing of workers' connections or of the scheduler; the scheduler
 * does no I/O.
 */
#ifndef DM_MANAGER_H
#define DM_MANAGER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct event_base;
struct amp_request;

/* Exit codes, as pytest's. */
#define EXIT_ALL_PASSED		0
#define EXIT_TESTS_FAILED	1
#define EXIT_INTERRUPTED	2
#define EXIT_INTERNAL		3
#define EXIT_USAGE		4
#define EXIT_NO_TESTS		5

/* ---- outcome.c ------------------------------------------------------- */

/* In the order the closing line names them. */
enum outcome {
	OUT_NONE = 0,		/* no final result yet */
	OUT_PASS,
	OUT_FAIL,
	OUT_ERROR,
	OUT_CRASH,
	OUT_TIMEOUT,
	OUT_SKIP,
	OUT_XFAIL,
	OUT_XPASS,
	OUT_FLAKY,		/* failed, then passed on a rerun */
	OUT_NOT_RUN,		/* the run stopped first, or interrupted */
	OUT__COUNT
};

/* "pass", "fail", ... "not_run": the protocol's and the JSON's words. */
const char	*outcome_name(enum outcome);
/* "passed", "failed", "errors", "crashed", "timed out", "skipped",
 * "xfailed", "xpassed", "flaky", "not run": the closing line's words. */
const char	*outcome_summary_word(enum outcome);
/* "PASS", "FAIL", "ERROR", "CRASH", "TIMEOUT", "SKIP", "XFAIL", "XPASS",
 * "FLAKY", "NOTRUN": the -v line's tag. */
const char	*outcome_tag(enum outcome);
/* Parses a worker's outcome word; "interrupted" gives OUT_NOT_RUN.
 * Returns 0, or -1 for a word it does not know. */
int		 outcome_parse(const char *word, enum outcome *out);
/* Does this outcome make the run fail (exit 1)? fail, error, crash,
 * timeout and xpass do; a todo that passes means the todo is stale. */
int		 outcome_is_failure(enum outcome);

/* Counts per outcome, and the closing line built from them:
 * "120 passed, 3 failed, 1 skipped, 2 xfailed in 4.21s", naming only
 * the outcomes that occurred, in enum order; "no tests ran in 0.01s"
 * when all are zero. Writes into buf (always NUL-terminated). */
struct counts {
	size_t	n[OUT__COUNT];
};
size_t		 counts_total(const struct counts *);
void		 counts_line(const struct counts *, double elapsed, char *buf,
		    size_t size);

/* ---- what reporters are told --------------------------------------- */

/* A worker, as the node-info line shows it:
 * "[w3] popen -- linux x86_64, 2 cpus, pid 1234, distworker 0.1.0" */
struct worker_info {
	const char	*id;		/* "w3" */
	const char	*spec;		/* "popen", "ssh=farm1", ... */
	const char	*hostname;
	const char	*os;		/* "linux" */
	const char	*arch;		/* "x86_64" */
	int		 cpus;
	long		 pid;
	const char	*version;	/* the worker's */
	const char	*tmpdir;	/* what it leaves if killed: hello's
					   root, else its TMPDIR; or NULL */
};

struct run_info {
	const char	*run_id;
	size_t		 ntests;	/* selected: each gets one result */
	int		 nworkers;	/* asked for */
	const char	*dist;		/* "load", "each", "no" */
	int		 boxed;
	long long	 seed;		/* --random-order seed, or -1 */
	double		 start_wall;	/* seconds since the epoch */
	char *const	*suites;	/* the suite paths, [nsuites] */
	size_t		 nsuites;
	/* --report-durations: the JSON and web reports list this many
	 * slowest tests with their history; 0: no listing. */
	int		 report_durations;
};

#define REPORT_HISTORY_MAX	3	/* durations of a test the cache keeps */
#define REPORT_DURATIONS_DEFAULT 10	/* --report-durations without
					   --durations N */
#define REPORT_DURATIONS_MAX	1000

/* One test's final result, complete with its captured output. Every
 * pointer is valid for the duration of the reporter call only. */
struct test_report {
	const char	*id;		/* "suite/name" */
	const char	*suite_path;	/* the .so it came from */
	const char	*file;		/* where the test is defined */
	int		 line;
	const char	*worker;	/* "w3", the worker of the last attempt */
	const char	*host;		/* its hostname (--dist each: platform) */
	enum outcome	 outcome;
	const char	*message;	/* NULL when none */
	const char	*fail_file;	/* where it failed, NULL when unknown */
	int		 fail_line;
	double		 duration;	/* seconds, of the last attempt */
	int		 signal;	/* 0 when none */
	const char	*signal_name;	/* "SIGSEGV", NULL when none */
	int		 exit_status;	/* -1 when it did not exit */
	int		 attempts;	/* 1, or more after reruns */
	const char	*out;		/* captured stdout, NUL-terminated */
	size_t		 out_len;
	const char	*err;		/* captured stderr, NUL-terminated */
	size_t		 err_len;
	/* With --report-durations only: the test's recorded durations
	 * before this run (seconds, most recent first) and what the
	 * history expected of it, as the scheduler's estimate; both
	 * meaningful only when nhistory > 0. */
	int		 nhistory;
	double		 history[REPORT_HISTORY_MAX];
	double		 expected;
};

/* The live view: sent at most a few times a second. */
struct progress {
	size_t		 done;
	size_t		 total;
	struct counts	 counts;
	double		 elapsed;
	double		 eta;		/* seconds left, < 0 when unknown */
	size_t		 nworkers;	/* up now */
	const char *const *running;	/* per worker: test id or NULL */
	const char *const *workers;	/* per worker: "w3" */
};

struct run_summary {
	struct counts	 counts;
	double		 elapsed;
	int		 exit_code;
	int		 interrupted;	/* Ctrl-C */
	const char	*stop_reason;	/* "stopped after 1 failure (-x)", NULL */
};

/* ---- reporter.h-like vtable (reporters implement what they need) --- */

struct reporter;
struct reporter_ops {
	const char *name;
	void	(*run_start)(struct reporter *, const struct run_info *);
	void	(*worker_up)(struct reporter *, const struct worker_info *);
	void	(*worker_down)(struct reporter *, const struct worker_info *,
		    const char *why);
	/* The one-test-at-a-time sequence: test_start, test_output (zero or
	 * more, stdout then stderr), test_result, test_stop. */
	void	(*test_start)(struct reporter *, const struct test_report *);
	void	(*test_output)(struct reporter *, const struct test_report *,
		    const char *stream, const char *data, size_t len);
	void	(*test_result)(struct reporter *, const struct test_report *);
	void	(*test_stop)(struct reporter *, const struct test_report *);
	/* Not part of the sequence: what runs where, for live views. */
	void	(*progress)(struct reporter *, const struct progress *);
	/* A line the user should see (a worker restarted, a suite hash
	 * mismatch); level as log levels. */
	void	(*notice)(struct reporter *, int level, const char *text);
	void	(*run_end)(struct reporter *, const struct run_summary *);
	void	(*free)(struct reporter *);
};

struct reporter {
	const struct reporter_ops *ops;
	void		*priv;
};

/* ---- reporter-terminal.c ------------------------------------------- */

enum color_mode { COLOR_AUTO, COLOR_ALWAYS, COLOR_NEVER };

struct terminal_options {
	int		 verbosity;	/* -1 -q, 0 default, 1 -v, 2 -vv */
	enum color_mode	 color;
	int		 durations;	/* --durations N, 0 none */
	int		 show_output;	/* show captured output of failures */
};

/* Writes to fp (stdout); fd tells whether it is a terminal. base runs
 * the status line's timer. */
struct reporter *reporter_terminal_new(struct event_base *base, FILE *fp,
		    const struct terminal_options *);

/* ---- distreporter.c ------------------------------------------------ */

/*
 * Results from all workers go through here. Output arrives per (worker,
 * test) and is buffered, capped, until that test's result; then each
 * reporter sees start, output, result, stop for that test alone. The
 * pool never calls a reporter directly.
 */
struct distreporter;
struct distreporter *dr_new(void);
void	 dr_free(struct distreporter *);
/* Takes r; it is freed with the distreporter. */
void	 dr_add(struct distreporter *, struct reporter *r);
void	 dr_run_start(struct distreporter *, const struct run_info *);
void	 dr_worker_up(struct distreporter *, const struct worker_info *);
void	 dr_worker_down(struct distreporter *, const struct worker_info *,
	    const char *why);
/* Output of the test `test` (a catalog index) on worker slot `slot`. */
void	 dr_test_output(struct distreporter *, int slot, uint32_t test,
	    const char *stream, const char *data, size_t len);
/* Drops what was buffered for (slot, test): the attempt is rerun. */
void	 dr_test_discard(struct distreporter *, int slot, uint32_t test);
/* The final result: report's out/err are filled in from the buffer
 * (when the caller left them NULL), then every reporter sees the
 * sequence, then the buffer is freed. */
void	 dr_test_result(struct distreporter *, int slot, uint32_t test,
	    struct test_report *report);
void	 dr_progress(struct distreporter *, const struct progress *);
void	 dr_notice(struct distreporter *, int level, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	 dr_run_end(struct distreporter *, const struct run_summary *);
/* Drops every test's buffered output: a new run (--looponfail) must not
 * see the last one's. */
void	 dr_forget(struct distreporter *);

/* ---- history.c: the cache of durations and failures ---------------- */

/*
 * .distmgr/ in the working directory (--cache-dir, --no-cache): each
 * test's last durations and whether it failed last time, so the next
 * run orders failures first and the longest first. A missing or
 * corrupt cache is an empty one (with a warning), never an error.
 */
struct history;
struct history *history_open(const char *dir);	/* NULL dir: in memory */
void	 history_free(struct history *);
/* Seconds, or < 0 when the test has no recorded duration. */
double	 history_duration(const struct history *, const char *id);
/* The test's recorded durations in seconds, most recent first, at
 * most max of them into out; returns how many. */
size_t	 history_recent(const struct history *, const char *id, double *out,
	    size_t max);
int	 history_failed_last(const struct history *, const char *id);
/* How many tests failed last time (for --lf's message). */
size_t	 history_nfailed(const struct history *);
void	 history_record(struct history *, const char *id, enum outcome,
	    double duration);
/* Writes atomically (temporary file and rename). 0 or -1 with a
 * warning already logged. */
int	 history_save(struct history *);

/* ---- select.c: which tests run ------------------------------------- */

/* -k EXPR: glob patterns on "suite/name" combined with not, and, or
 * and parentheses; a bare word without glob characters matches as a
 * substring, as pytest's -k does. */
struct kexpr;
struct kexpr *kexpr_parse(const char *text, char *why, size_t whylen);
int	 kexpr_match(const struct kexpr *, const char *id);
void	 kexpr_free(struct kexpr *);
/* --tags EXPR: the same language over a test's comma-separated tags:
 * a word is true when the test has that tag. */
int	 kexpr_match_tags(const struct kexpr *, const char *tags);
/* --shard I/N: is id in shard i of n (1 <= i <= n)? Stable across runs
 * and machines: a hash of the id alone. */
int	 shard_has(const char *id, unsigned i, unsigned n);
/* Parses "I/N"; 0 or -1. */
int	 shard_parse(const char *text, unsigned *i, unsigned *n);


/* ==== the manager's core: options, catalog, scheduler, pool, run ==== */

/* ---- options.c: the command line ----------------------------------- */

enum dist_mode { DIST_LOAD, DIST_EACH, DIST_NO };

#define OPT_JOBS_AUTO		(-1)
#define OPT_WATCH_MAX		64	/* --watch DIR, at most */
#define OPT_DEFAULT_TIMEOUT	300.0	/* seconds, for tests that set none */
#define OPT_DEFAULT_HEARTBEAT	10.0	/* seconds of silence = hung */
#define OPT_MAX_WORKERS		4096	/* slots in one run */

struct options {
	int		 jobs;		/* -j; OPT_JOBS_AUTO, 0 (one, no dist) */
	const char	*worker;	/* --worker, or NULL: look for it */
	int		 boxed;		/* 0 with --no-fork */
	enum dist_mode	 dist;
	const char	*kexpr;		/* -k, compiled (and checked) by run */
	const char	*tags;		/* --tags, likewise */
	const char	*shard;		/* --shard I/N, checked by run */
	int		 list, list_json;
	int		 ff, lf;
	int		 random_order;
	long long	 seed;		/* -1: pick one */
	size_t		 maxfail;	/* 0: no limit; -x is 1 */
	int		 reruns;
	double		 timeout;	/* 0: none */
	double		 timeout_multiplier;
	int		 max_worker_restart;	/* -1: 4 x workers */
	const char	*cache_dir;	/* NULL: .distmgr */
	int		 no_cache;
	double		 heartbeat;	/* 0: off */
	int		 verbosity;	/* -1 -q, 0, 1 -v, 2 -vv */
	int		 durations;
	int		 report_durations;	/* --report-durations */
	int		 looponfail;	/* -f */
	const char	*watch[OPT_WATCH_MAX];	/* --watch DIR, with -f */
	size_t		 nwatch;
	enum color_mode	 color;
	const char	*junit_xml;	/* --junit-xml FILE */
	const char	*tap;		/* --tap FILE|- */
	const char	*json;		/* --json[=FILE|-]; with --list: JSON */
	const char	*web;		/* --web [ADDR:]PORT */
	char *const	*argv;		/* the whole command line, for --json */
	char *const	*suites;	/* borrowed from argv, [nsuites] */
	size_t		 nsuites;
	/* The farm (issue 5). Strings are borrowed from argv or from conf;
	 * the arrays and specs are the options' own (opt_free). */
	int		 jobs_set;	/* -j given (else only without --tx) */
	struct txspec	**tx;		/* --tx, the config's first */
	size_t		 ntx;
	const char	**ship;		/* --ship DIR */
	size_t		 nship;
	const char	**ship_ignore;	/* --ship-ignore GLOB */
	size_t		 nship_ignore;
	const char	*tls_cert, *tls_key, *tls_ca;
	const char	*ssh_command;	/* --ssh-command, DISTMGR_SSH_COMMAND */
	const char	*config;	/* --config FILE */
	int		 no_config;
	struct conf	*conf;		/* the file read, or NULL */
};

enum opt_result { OPT_RUN = 0, OPT_EXIT = 1, OPT_BAD = -1 };

/* Parses argv into o, after the config file: ./distmgr.conf when it
 * exists, --config FILE, none with --no-config (see distmgr.conf(5)).
 * OPT_RUN: go on; OPT_EXIT: --help or --version was printed to out,
 * exit 0; OPT_BAD: why holds the sentence to print before "try --help"
 * (a config file's mistakes name FILE:LINE), exit EXIT_USAGE. Whatever
 * the result, opt_free() frees what o holds. */
enum opt_result opt_parse(struct options *o, int argc, char **argv,
	    FILE *out, char *why, size_t whylen);
void	 opt_free(struct options *o);
void	 opt_usage(FILE *);
/* The workers to start: -j resolved against the CPUs, every --tx, and
 * --dist no (one). */
int	 opt_nworkers(const struct options *);

/* One worker slot as the options describe it. */
struct opt_slot {
	char			 id[32];	/* "w3", or from //id=NAME */
	const struct txspec	*tx;		/* NULL: a -j local worker */
	const char		*spec;		/* "popen", "ssh=farm2", as
						   the node line shows it */
	int			 group;		/* --dist each's host group */
};
/* The slots in order: -j's local workers first, then each --tx's. A
 * group is one --tx (with -j alone, as before, each local worker is a
 * group of its own). NULL with why when two workers would have one id.
 * *ngroups may be NULL. The array is the caller's to free. */
struct opt_slot *opt_slots(const struct options *, int *nslots,
	    int *ngroups, char *why, size_t whylen);

/* ---- catalog.c: every test of every suite --------------------------- */

/*
 * Built from the first worker's suite_tests pieces. Compact because a
 * suite may hold a million tests: strings live in one arena and are
 * named by offsets, file names and tags are interned, and a test is a
 * small fixed record found by its global index (suites one after the
 * other, in command-line order).
 */
#define CAT_NONE	UINT32_MAX

struct json_t;
typedef struct json_t json_t;

struct catalog;
struct cat_test {
	uint32_t	 id;		/* arena offset of "suite/name" */
	uint32_t	 file;		/* arena offset, interned */
	uint32_t	 tags;		/* arena offset, interned; CAT_NONE */
	uint32_t	 group;		/* arena offset, interned; CAT_NONE */
	uint32_t	 lock;		/* "a,b": arena offset, interned; CAT_NONE */
	int32_t		 line;
	float		 timeout;	/* the test's own; 0 none */
	uint16_t	 suite;		/* which suite file */
	uint8_t		 flags;		/* CAT_F_* */
	uint8_t		 strategy;	/* its group's: enum sched_strategy */
};
#define CAT_F_TODO	0x01
#define CAT_F_SKIP	0x02
#define CAT_F_SERIAL	0x04	/* runs with nothing else */

struct catalog *cat_new(void);
void	 cat_free(struct catalog *);
/* Starts the list of one suite file; returns its number. */
uint16_t cat_suite_add(struct catalog *, const char *path);
/* Adds one suite_tests piece for suite s. 0, or -1 with why (a piece
 * out of order, an entry without id/file/line). */
int	 cat_add_piece(struct catalog *, uint16_t s, struct json_t *piece, char *why,
	    size_t whylen);
/* Ends suite s: its count and hash must be what the pieces held. */
int	 cat_suite_end(struct catalog *, uint16_t s, size_t count,
	    const char *hash, char *why, size_t whylen);
size_t	 cat_ntests(const struct catalog *);
uint16_t cat_nsuites(const struct catalog *);
const struct cat_test *cat_test(const struct catalog *, uint32_t i);
const char *cat_str(const struct catalog *, uint32_t off);	/* "" for NONE */
const char *cat_id(const struct catalog *, uint32_t i);
const char *cat_suite_path(const struct catalog *, uint16_t s);
const char *cat_suite_hash(const struct catalog *, uint16_t s);
size_t	 cat_suite_count(const struct catalog *, uint16_t s);
/* Global index of suite s's first test; i - first is its index on the
 * worker. */
uint32_t cat_suite_first(const struct catalog *, uint16_t s);
/* Writes up to max lines of the difference between suite sa of a
 * (named na, as "w0") and suite sb of b (nb): tests only in one, and
 * tests defined at another place; returns how many differences there
 * are in all. */
size_t	 cat_diff(const struct catalog *a, uint16_t sa, const char *na,
	    const struct catalog *b, uint16_t sb, const char *nb, size_t max,
	    void (*emit)(const char *line, void *), void *arg);
/* Bytes held, for the scale benchmark. */
size_t	 cat_memory(const struct catalog *);

/* ---- scheduler.c: who runs what, next (pure logic, no I/O) ---------- */

/*
 * Works on units 0..n-1: in --dist load a unit is a selected test; in
 * --dist each unit u is test u % ntests pinned to host group u / ntests,
 * run by any slot of that group.
 * Times are the caller's monotonic seconds. The caller tells what
 * happened (a worker came, a test started or ended, a batch was
 * answered, a worker was lost) and asks what to send.
 */
struct sched;
struct sched_config {
	int		 each;		/* --dist each */
	int		 nslots;	/* workers at once */
	int		 reruns;
	size_t		 maxfail;	/* 0: no limit */
	int		(*is_failure)(enum outcome);
	/* --dist each: group[slot] in 0..ngroups-1 (borrowed; copied).
	 * NULL: every slot is a group of its own. */
	int		 ngroups;
	const int	*group;
};

#define SCHED_MAX_BATCH	1000	/* tests in one run ask */
#define SCHED_RTT_MAX	1.0	/* seconds: a round trip counts this at most */
#define SCHED_EST_NONE	(-1.0f)

/* ntests selected tests; order[ntests] their run order (NULL: 0..n-1);
 * est[ntests] expected seconds per test, SCHED_EST_NONE unknown (NULL:
 * all unknown). Both are copied. */
struct sched *sched_new(const struct sched_config *, uint32_t ntests,
	    const uint32_t *order, const float *est);
void	 sched_free(struct sched *);
uint32_t sched_nunits(const struct sched *);
/* The test a unit runs, and the group it is pinned to (-1 unless each).
 * sched_unit_of: the unit of test that slot runs (its group's). */
uint32_t sched_unit_test(const struct sched *, uint32_t unit);
int	 sched_unit_group(const struct sched *, uint32_t unit);
uint32_t sched_unit_of(const struct sched *, int slot, uint32_t test);
int	 sched_ngroups(const struct sched *);

void	 sched_worker_up(struct sched *, int slot, double now);
/* The round trip to slot's worker, in seconds (the pool measures it):
 * that much more work is kept in flight there. */
void	 sched_set_rtt(struct sched *, int slot, double rtt);
/* What slot should be sent now: fills units (room for max) and returns
 * how many; 0 when it has enough in flight, or nothing is left. */
size_t	 sched_next_batch(struct sched *, int slot, double now,
	    uint32_t *units, size_t max);
void	 sched_started(struct sched *, int slot, uint32_t unit, double now);

enum sched_verdict {
	SCHED_IGNORED,		/* not in flight on slot: a stray result */
	SCHED_FINAL,		/* report it, with *final as the outcome */
	SCHED_RERUN,		/* discard this attempt; it runs again */
};
enum sched_verdict sched_result(struct sched *, int slot, uint32_t unit,
	    enum outcome, double now, enum outcome *final);
/* A run ask was answered: the oldest batch of slot is over. Units of it
 * without a result go back to the queue (or, when stopping, are not
 * run); their number is returned. */
size_t	 sched_batch_done(struct sched *, int slot, double now);
/* The worker in slot is gone: the unit it was running, if any, is
 * returned in *running (else SCHED_NONE) still in flight for the
 * caller to give a result; the others go back to the queue front. */
#define SCHED_NONE	UINT32_MAX
void	 sched_worker_lost(struct sched *, int slot, uint32_t *running);
/* Takes back the unstarted units of slot (they go to the queue front);
 * returns how many. */
size_t	 sched_take_back(struct sched *, int slot);
int	 sched_running(const struct sched *, int slot, uint32_t *unit,
	    double *since);
size_t	 sched_inflight(const struct sched *, int slot);

/* Stop handing out (-x, --maxfail, Ctrl-C, no workers left). */
void	 sched_stop(struct sched *);
int	 sched_stopping(const struct sched *);
/* Has --maxfail been reached? */
int	 sched_maxfail_hit(const struct sched *);
/* Takes every unit not started and not in flight (in each: group's);
 * each becomes final as not run. Returns how many were written to units
 * (room for max); call until 0. */
size_t	 sched_drain(struct sched *, int group, uint32_t *units, size_t max);
/* Units with a final result, and in all. */
uint32_t sched_nfinal(const struct sched *);
int	 sched_finished(const struct sched *);
size_t	 sched_memory(const struct sched *);

/*
 * Groups, resource locks and serial tests (distmgr(3)), given once after
 * sched_new and before any worker is up; arrays are per selected test
 * (as sched_new's) and copied. group[t] is the caller's group of test t
 * (SCHED_NONE: none), strategy[g] a group's; serial[t] says the test
 * runs alone (NULL: none does); test t holds resource locks
 * locks[lock_first[t] .. lock_first[t + 1]), numbers below nlocks
 * (lock_first NULL: none). 0, or -1 when they do not fit.
 */
enum sched_strategy { SCHED_FREE = 0, SCHED_SERIAL, SCHED_ISOLATED_FREE,
	SCHED_ISOLATED_SERIAL };
struct sched_constraints {
	uint32_t	 ngroups;
	const uint8_t	*strategy;	/* [ngroups] */
	const uint32_t	*group;		/* [ntests], or NULL */
	const uint8_t	*serial;	/* [ntests], or NULL */
	uint32_t	 nlocks;
	const uint32_t	*lock_first;	/* [ntests + 1], or NULL */
	const uint32_t	*locks;
};
int	 sched_constrain(struct sched *, const struct sched_constraints *);
/* The group (the caller's) of the batch sched_next_batch just returned:
 * its units run in that group's one process; -1 when it is no group's. */
int32_t	 sched_batch_group(const struct sched *);
/* What the caller should say: an isolated phase begins or ends. */
enum { SCHED_EV_PHASE_START = 1, SCHED_EV_PHASE_END };
struct sched_event {
	int		 kind;
	int32_t		 group;		/* the caller's; -1: the serial tests */
	uint32_t	 tests;		/* the group's */
	int		 grouped;	/* isolated_serial: in one process */
	double		 seconds;	/* PHASE_END: how long it took */
};
/* 1 and *ev filled while there are events, oldest first; then 0. */
int	 sched_event(struct sched *, struct sched_event *);
/* Has something freed work for other slots (a lock released, a phase
 * begun or ended, a group's process done) since the last call? The
 * caller then asks every slot again. */
int	 sched_poked(struct sched *);
/* Is an isolated phase on, or waiting for the workers to finish? */
int	 sched_isolating(const struct sched *);

/* The run order: failed last time first (when ff), then the longest
 * first when any duration is known (unknown ones count as the mean of
 * the known), else definition order; with seed >= 0 a shuffle instead
 * of the duration order. Writes order[n]. */
void	 sched_order(uint32_t n, const float *est, const uint8_t *failed,
	    int ff, long long seed, uint32_t *order);

/* ---- transport-popen.c: a local worker process ---------------------- */

/*
 * A worker started as `distworker --stdio`: one end of a socketpair is
 * its stdin and stdout, a pipe its stderr. It leads its own process
 * group, so a Ctrl-C at the terminal does not reach it and a kill of
 * the group takes its boxed children too.
 */
struct tp_proc {
	long		 pid;
	int		 fd;		/* the protocol, ours to close */
	int		 errfd;		/* its stderr, ours to close */
};

/* Finds the worker program: given (--worker) if not NULL, else next to
 * self (the distmgr binary), then ../libexec/distmgr/ beside it, then
 * the install's libexec and bin, then PATH. Writes the path to out; 0,
 * or -1 with why. */
int	 tp_find_worker(const char *given, const char *self, char *out,
	    size_t outlen, char *why, size_t whylen);
/* Starts path --stdio; 0, or -1 with why (the exec error included). */
int	 tp_popen_start(const char *path, struct tp_proc *p, char *why,
	    size_t whylen);
/* Signals the worker's process group. */
void	 tp_kill(const struct tp_proc *p, int sig);
/* The child-process transport under popen, ssh and exec: argv[0] (a
 * path, not searched) with our socket as stdin and stdout, a pipe as
 * stderr, in its own process group. 0, or -1 with why. */
int	 tp_spawn(const char *const *argv, struct tp_proc *p, char *why,
	    size_t whylen);

/* ---- transport-ssh.c, transport-exec.c: workers through a command --- */

/* The argv of an ssh= worker: /bin/sh -c 'ssh "$@"' ssh -o BatchMode=yes
 * ... HOST 'WORKER' --stdio, or ssh_command (--ssh-command) in place of
 * ssh. tp_argv_free frees it. */
char	**tp_ssh_argv(const struct txspec *tx, const char *ssh_command);
void	 tp_argv_free(char **argv);
int	 tp_ssh_start(const struct txspec *tx, const char *ssh_command,
	    struct tp_proc *p, char *why, size_t whylen);
/* exec=COMMAND: /bin/sh -c COMMAND. */
int	 tp_exec_start(const char *command, struct tp_proc *p, char *why,
	    size_t whylen);

/* ---- transport-tcp.c: a distworker --listen daemon ------------------ */

#define TP_TCP_CONNECT_TIMEOUT	10	/* seconds to resolve, connect and
					   complete the TLS handshake */
struct tp_tcp;
struct evdns_base;
struct ssl_ctx_st;
struct bufferevent;
/* bev: the connection, ready (the caller's); or NULL and why. */
typedef void (*tp_tcp_fn)(void *arg, struct bufferevent *bev,
	    const char *why);
/* Connects to host:port: over TLS with tls (both sides authenticated;
 * the daemon's certificate must name host), or without (tls NULL) only
 * to a loopback address. keepalive: seconds of silence after which the
 * kernel gives up on the peer (0: its defaults). cb runs once, from the
 * loop, unless the connect is cancelled first. */
struct tp_tcp *tp_tcp_connect(struct event_base *, struct evdns_base *,
	    const char *host, int port, struct ssl_ctx_st *tls,
	    double keepalive, tp_tcp_fn cb, void *arg);
/* Stops and frees it, at any stage; from inside cb too (that is how
 * the caller frees it once it has the result). */
void	 tp_tcp_cancel(struct tp_tcp *);
/* Whether a TCP connection was made (what failed, if it then failed,
 * was TLS or the daemon, not the way to it). */
int	 tp_tcp_reached(const struct tp_tcp *);

/* ---- pool.c: the workers and the protocol with them ----------------- */

/*
 * Each slot holds one worker at a time: started, greeted with hello,
 * given the suites, fed batches, watched (heartbeat, in-process
 * timeouts), and when it dies reaped and reported once. The pool knows
 * suites only by their paths and handles; what a test is and what to
 * do with a result is the caller's (run.c), through pool_cbs.
 */
struct pool;

struct pool_config {
	const char	*worker;	/* path of distworker, for popen */
	int		 nslots;
	const struct opt_slot *slots;	/* [nslots]: id, spec, group */
	char *const	*suites;	/* paths, [nsuites] */
	const char *const *load_paths;	/* what a local worker loads (absolute
					   paths); NULL: suites */
	size_t		 nsuites;
	const char	*run_id;
	int		 worker_count;	/* DISTMGR_WORKER_COUNT */
	int		 boxed;
	double		 timeout;	/* hello's default timeout */
	double		 timeout_multiplier;
	double		 heartbeat;	/* seconds; 0 off */
	const struct ship *ship;	/* for workers not popen (NULL: none) */
	struct ssl_ctx_st *tls;		/* tcp=: NULL for plain loopback */
	const char	*ssh_command;	/* NULL: ssh */
};

/* How a worker ended. */
struct pool_loss {
	int		 expected;	/* we shut it down */
	int		 timed_out;	/* we killed it for its test's time */
	int		 signal;	/* that killed it, 0 none */
	int		 came_up;	/* its hello was answered */
	int		 remote;	/* not a local popen worker */
	int		 unreachable;	/* tcp=: no connection was made (the
					   host is down, or not yet up) */
	const char	*why;		/* a sentence: "host lost (...)" when
					   a far worker's host went away */
	const char	*err_tail;	/* the end of its stderr, "" none */
};

struct pool_cbs {
	/* The suites loaded; hashes[s] and counts[s] are the worker's. */
	void	(*loaded)(void *ctx, int slot, const char *const *hashes,
		    const size_t *counts);
	/* A part of a test list (only a worker asked for it sends one). */
	void	(*piece)(void *ctx, int slot, size_t suite, json_t *box);
	/* A load failed: the worker's error, worded for the user. */
	void	(*load_failed)(void *ctx, int slot, const char *code,
		    const char *why);
	/* Returns the test's limit in seconds (0: none) so the pool can
	 * enforce it when the worker cannot (in-process). */
	double	(*started)(void *ctx, int slot, size_t suite, uint32_t index);
	void	(*output)(void *ctx, int slot, size_t suite, uint32_t index,
		    const char *stream, const char *data, size_t len);
	void	(*result)(void *ctx, int slot, size_t suite, uint32_t index,
		    json_t *box);
	/* A run ask was answered (or failed: cancelled is then 1). */
	void	(*batch_done)(void *ctx, int slot, void *batch, int cancelled);
	/* The worker of slot is gone (and reaped, if it was a child). */
	void	(*lost)(void *ctx, int slot, const struct pool_loss *);
	void	(*up)(void *ctx, int slot, const struct worker_info *);
	/* A list asked for with pool_fetch_list has come (its pieces went
	 * to piece); why is NULL, or the worker's error. */
	void	(*listed)(void *ctx, int slot, size_t suite, const char *why);
	/* A far worker is loaded: what it was sent (bytes and blobs) and
	 * how many blobs it had already. */
	void	(*shipped)(void *ctx, int slot, uint64_t bytes, size_t sent,
		    size_t cached);
	/* A test asks for a lock, the board or a trail (lock, unlock,
	 * board_set, board_get, trail): index is the test's, or -1 for a
	 * group's own init and fini. The callee answers req, now or later.
	 * NULL: those asks fail. */
	void	(*sync)(void *ctx, int slot, size_t suite, long index,
		    struct amp_request *req, json_t *box);
};

struct pool *pool_new(struct event_base *, const struct pool_config *,
	    const struct pool_cbs *, void *ctx);
void	 pool_free(struct pool *);
/* Starts a worker in slot, through the slot's spec; list says which
 * suites' lists it sends (NULL: none; copied). 0, or -1 with why (it
 * could not be started). A tcp= worker is connected in the background:
 * one that cannot be reached ends as lost, not came_up. */
int	 pool_start(struct pool *, int slot, const int *list, char *why,
	    size_t whylen);
/* Asks slot to run tests (indices into suite's list) as one batch;
 * batch is handed back to batch_done. -1 when the worker is gone.
 * pool_run_group: the batch is a serial group's, group its name: the
 * worker runs it in one process, between the group's init and fini. */
int	 pool_run(struct pool *, int slot, size_t suite, const uint32_t *idx,
	    size_t n, void *batch);
int	 pool_run_group(struct pool *, int slot, size_t suite,
	    const char *group, const uint32_t *idx, size_t n, void *batch);
void	 pool_cancel(struct pool *, int slot);
/* Asks a loaded worker for its list of suite again (for a diff). */
void	 pool_fetch_list(struct pool *, int slot, size_t suite);
/* Asks the worker to exit; kill it if it has not within grace. */
void	 pool_shutdown(struct pool *, int slot, double grace);
void	 pool_kill(struct pool *, int slot, const char *why);
void	 pool_kill_all(struct pool *);
int	 pool_alive(const struct pool *, int slot);
int	 pool_nalive(const struct pool *);
const struct worker_info *pool_info(const struct pool *, int slot);
/* Seconds, the round trip to slot's worker as measured (0: local, or
 * not yet known). */
double	 pool_rtt(const struct pool *, int slot);
/* The loop calls this on SIGCHLD. */
void	 pool_reap(struct pool *);

/* ---- run.c: one run from options to exit code ----------------------- */

/* argv0 finds the worker next to distmgr. Returns the exit code. */
int	 run_main(const struct options *, const char *argv0);

/* What outlives one run: --looponfail runs many on one loop, with the
 * same reporters. Everything here is the caller's. */
struct run_env {
	struct event_base	*base;
	struct distreporter	*dr;	/* with the reporters in it */
	/* Only the tests with these ids (sorted by strcmp) among those
	 * the options select; NULL: all of those. A run that selects none
	 * of them reports nothing and returns EXIT_NO_TESTS. */
	const char *const	*only;
	size_t			 nonly;
};
/* One run on env's loop and reporters; the workers are started for it
 * and gone when it returns. Returns the exit code. */
int	 run_once(const struct options *, const char *argv0,
	    const struct run_env *env);
/* The reporters the options ask for, into dr. -1 when one cannot start
 * (said through dr). */
int	 run_reporters(struct event_base *, struct distreporter *,
	    const struct options *);
/* ---- tmpdir.c: what a dead local worker leaves ------------------- */

/* Removes path, a local worker's $TMPDIR/distworker.XXXXXX, if it is
 * still there: only a directory of that name that we own, never
 * following a symbolic link, at the top or inside. 0 (also when it is
 * gone already), or -1 with a sentence in why. */
int	 tmpdir_remove(const char *path, char *why, size_t whylen);

/* ---- watch.c: waiting for files to change (--looponfail) ------------ */

#define WATCH_CHANGED_MAX	32	/* changed names told by name */

/* changed[n]: what changed, as the user names it ("build/suite.so",
 * "src/net/io.c"); more: how many others. Valid during the call. */
typedef void (*watch_cb)(void *arg, const char *const *changed, size_t n,
	    size_t more);

struct watch;
/* NULL with why when inotify cannot be had. */
struct watch	*watch_new(struct event_base *, char *why, size_t whylen);
void		 watch_free(struct watch *);
/* A file, by its name in its directory: replaced, rewritten or removed,
 * it has changed. 0, or -1 with why. */
int		 watch_file(struct watch *, const char *path, char *why,
		    size_t whylen);
/* Every file under dir, subdirectories too (not hidden ones). 0, or -1
 * with why (not a directory, too many for inotify). */
int		 watch_dir(struct watch *, const char *dir, char *why,
		    size_t whylen);
/* Changes to path (a file, or a directory and all under it) are ours:
 * the reports and the cache. Call before watch_dir. */
void		 watch_ignore(struct watch *, const char *path);
/* cb is called once, WATCH_QUIET seconds after the last change of a
 * burst (at once, then, for changes made while it was not armed). */
void		 watch_arm(struct watch *, watch_cb cb, void *arg);
void		 watch_disarm(struct watch *);
/* Forgets changes seen so far (not yet told). */
void		 watch_drop_changes(struct watch *);

/* ---- looponfail.c: -f, --looponfail --------------------------------- */

/* Runs, waits for a change, runs the failed tests until they pass, then
 * all of them, until Ctrl-C. Returns the exit code: 2 when interrupted,
 * 3 or 4 when it cannot go on at all. */
int		 lf_main(const struct options *, const char *argv0);

/* ---- txspec.c: --tx execution specs -------------------------------- */

enum tx_kind { TX_POPEN, TX_SSH, TX_TCP, TX_EXEC };

struct tx_env {
	char	*name;
	char	*value;
};

struct txspec {
	char		*text;		/* as given */
	int		 count;		/* N of N*... */
	enum tx_kind	 kind;
	char		*user;		/* ssh: user@, or NULL */
	char		*host;		/* ssh, tcp */
	int		 port;		/* ssh, tcp; 0 when not given */
	char		*command;	/* exec */
	char		*chdir;		/* //chdir=DIR */
	char		*id;		/* //id=NAME */
	char		*worker;	/* //worker=PATH, the remote binary */
	int		 nice;		/* //nice=N */
	int		 has_nice;
	struct tx_env	*env;		/* //env:NAME=VALUE */
	size_t		 nenv;
};

/* NULL with a sentence ("bad --tx '...': ...") in why. */
struct txspec	*txspec_parse(const char *text, char *why, size_t whylen);
void		 txspec_free(struct txspec *);
const char	*txspec_kind_name(enum tx_kind);

/* ---- conf.c: the project file, distmgr.conf ------------------------ */

/*
 * Lines of "name = value" where name is a long option without its
 * dashes ("tx", "dist", "ship", "timeout"); '#' starts a comment; blank
 * lines are ignored. The command line adds to (lists) and overrides
 * (single values) what the file says; options.c applies both.
 */
struct conf_entry {
	char	*name;
	char	*value;
	int	 line;
};

struct conf {
	char			*path;
	struct conf_entry	*entries;
	size_t			 n;
};

/* NULL with "FILE:LINE: what" in why; a missing file is an error too
 * (callers decide whether to look). */
struct conf	*conf_load(const char *path, char *why, size_t whylen);
void		 conf_free(struct conf *);
/* "yes/no/true/false/on/off/1/0" into 1/0; -1 when it is none. */
int		 conf_bool(const char *value);

/* ---- ship.c: suites and --ship trees, sent by content --------------- */

/*
 * The manifest: every suite and every file of every --ship tree hashed
 * once per run, equal contents one blob. Suites are installed on a
 * worker under their file name (a number first when two share one);
 * a tree under its directory's last component.
 */
struct ship;
/* warn (may be NULL) hears each file skipped (a symbolic link out of
 * the tree, a special file). NULL with why when a file cannot be read
 * or the trees do not fit (two called alike, too many files). */
struct ship	*ship_new(char *const *suites, size_t nsuites,
		    const char *const *dirs, size_t ndirs,
		    const char *const *ignore, size_t nignore,
		    void (*warn)(void *arg, const char *text), void *arg,
		    char *why, size_t whylen);
void		 ship_free(struct ship *);
const char	*ship_suite_name(const struct ship *, size_t suite);
const char	*ship_suite_sha256(const struct ship *, size_t suite);
size_t		 ship_nblobs(const struct ship *);
size_t		 ship_ntree_files(const struct ship *);

/* One worker brought up to date: have, the missing blobs paced by the
 * connection's drain (call shipper_drain from on_drain), ship asks.
 * cb hears SHIP_QUEUED once all is sent (the loads may follow at once),
 * or SHIP_FAILED with a sentence (then nothing more); it may run inside
 * shipper_start. The shipper must outlive the connection's asks: free
 * it only once the connection has closed, or after SHIP_QUEUED and
 * shipper_done(). */
enum { SHIP_QUEUED, SHIP_FAILED };
typedef void (*shipper_fn)(void *arg, int event, const char *why);
struct shipper;
struct amp_conn;
struct shipper	*shipper_start(const struct ship *, struct amp_conn *,
		    int cache, shipper_fn cb, void *arg);
void		 shipper_drain(struct shipper *);
/* Bytes of blobs sent, blobs sent, blobs the worker had. */
void		 shipper_stats(const struct shipper *, uint64_t *bytes,
		    size_t *sent, size_t *cached);
int		 shipper_done(const struct shipper *);
void		 shipper_free(struct shipper *);

/* ---- sync.c: locks, board and trails shared by the run's tests ----- */

#define SYNC_BOARD_MAX	(16u * 1024 * 1024)	/* bytes on the board */

struct sync;
/* Tells a waiter it now holds the lock; previous_died when the holder
 * before it went away holding it. */
typedef void (*sync_grant_fn)(void *arg, int previous_died);

struct sync	*sync_new(void);
void		 sync_free(struct sync *);
/* 1: granted now (*previous_died set); 0: queued, grant() runs later;
 * -1: owner already holds it (locks are not recursive). */
int		 sync_lock(struct sync *, const char *name, uint64_t owner,
		    sync_grant_fn grant, void *arg, int *previous_died);
/* 0, or -1 when owner does not hold it. */
int		 sync_unlock(struct sync *, const char *name, uint64_t owner);
/* owner's test ended or its worker is gone: its waits are dropped
 * (drop(arg) for each, may be NULL) and its locks pass on, the next
 * holders told previous_died = died; its trail starts stop counting and
 * a trail finish it has held is dropped too. Returns the locks
 * released. sync_owners_gone does it for every owner whose bits under
 * mask are owner's (a worker's tests: SYNC_OWNER_SLOT_MASK). */
size_t		 sync_owner_gone(struct sync *, uint64_t owner, int died,
		    void (*drop)(void *arg));
size_t		 sync_owners_gone(struct sync *, uint64_t owner,
		    uint64_t mask, int died, void (*drop)(void *arg));
/* Owners as the manager makes them: the worker slot and the test's
 * catalog index, or SYNC_OWNER_GROUP for a group's own init and fini. */
#define SYNC_OWNER(slot, test)	((uint64_t)(uint32_t)(slot) << 32 | \
				 (uint32_t)(test))
#define SYNC_OWNER_GROUP	UINT32_MAX
#define SYNC_OWNER_SLOT_MASK	(~(uint64_t)UINT32_MAX)
/* 0, or -1 when the board would hold more than SYNC_BOARD_MAX. */
int		 sync_board_set(struct sync *, const char *key,
		    const char *value);
const char	*sync_board_get(const struct sync *, const char *key);
/*
 * Trails (pytest-mp's mp_trail): a start is true when the trail is not
 * set up (the first, or the first after a teardown); a finish is true
 * for the last user, the one that leaves nobody on the trail. That one
 * is held (returns 0; answer(arg, r) runs later): a start meanwhile
 * answers it false, and sync_trail_release answers it true, all held
 * ones (now < 0) or those past their deadline (the caller's clock).
 * Otherwise returns 1 with *result. A finish by an owner that never
 * started the trail is false; answer NULL answers a last finish at once.
 */
typedef void (*sync_answer_fn)(void *arg, int result);
int		 sync_trail(struct sync *, const char *name, int finish,
		    uint64_t owner, double deadline, sync_answer_fn answer,
		    void *arg, int *result);
size_t		 sync_trail_held(const struct sync *);
/* Does an owner under mask hold a trail finish? */
int		 sync_trail_holds(const struct sync *, uint64_t owner,
		    uint64_t mask);
size_t		 sync_trail_release(struct sync *, double now);

/* ---- syncask.c: the workers' asks, answered from sync.c ------------- */

/* Seconds a trail's last finish waits, at most, to learn whether another
 * test starts the trail (never more than half its test's limit). */
#define SYNC_TRAIL_LINGER	30.0

/* Answers req (lock, unlock, board_set, board_get, trail) for owner, now
 * or when sync.c can; deadline is a held trail finish's (the caller's
 * clock). */
void		 syncask_handle(struct sync *, uint64_t owner, double deadline,
		    struct amp_request *req, json_t *box);
/* sync_owner_gone's drop: a kept ask is answered with an error. */
void		 syncask_drop(void *arg);

/* ---- reporters for CI, tools and the browser (issue 6) ------------- */

/*
 * Each constructor returns NULL with a sentence in why when it cannot
 * start (the file cannot be created, the port is taken). A reporter
 * never blocks the event loop: what a slow reader cannot take yet is
 * buffered up to a cap, with a warning when it falls behind.
 */

/* --junit-xml FILE: JUnit XML as Jenkins and GitLab read it
 * (tests/junit.xsd), written when the run ends to a temporary file in
 * FILE's directory, fsync'd and renamed over FILE: FILE is always the
 * old report or a complete new one. */
struct reporter *reporter_junit_new(const char *path, char *why,
		    size_t whylen);

/* --tap FILE|-: TAP version 13, one line per test as results arrive,
 * "-" for stdout. base flushes output a pipe could not take at once. */
struct reporter *reporter_tap_new(struct event_base *base, const char *path,
		    char *why, size_t whylen);

/* --json FILE|-: one JSON object per line per event (the schema is in
 * distmgr(1)). argv, NULL-terminated (may be NULL), is recorded in the
 * run_start event as the options the run was given. */
struct reporter *reporter_json_new(struct event_base *base,
		    const char *path, char *const *argv, char *why,
		    size_t whylen);

/* --web [ADDR:]PORT: the live dashboard, served on base. ADDR defaults
 * to 127.0.0.1; port 0 picks a free port. The URL is printed on stderr
 * and given by reporter_web_url (valid while the reporter lives). */
struct reporter *reporter_web_new(struct event_base *base,
		    const char *addr_port, char *why, size_t whylen);
const char	*reporter_web_url(const struct reporter *);
/* How many browsers are following the run now. */
size_t		 reporter_web_clients(const struct reporter *);

/* ---- report-util.c, report-sink.c, xmlesc.c: what they share ------- */

/* A view of at most max bytes of p[0..len): a head and a tail, cut on
 * UTF-8 character boundaries, and how many bytes lie between them.
 * Output is bounded per test this way: the start says what the test
 * did, the end why it stopped. The spans point into p. */
struct rpt_clip {
	const char	*head;
	size_t		 head_len;
	const char	*tail;
	size_t		 tail_len;
	size_t		 omitted;
};
void	 rpt_clip(const char *p, size_t len, size_t max, struct rpt_clip *c);

/* The n slowest tests of a run, for the durations listings: a min-heap
 * of copies, bounded by max whatever the number of tests. */
struct rpt_slow {
	double		 duration;
	char		*id;
	char		*worker;
	enum outcome	 outcome;
	int		 nhistory;
	double		 history[REPORT_HISTORY_MAX];
	double		 expected;
};
struct rpt_top {
	struct rpt_slow	*e;
	size_t		 n;
	size_t		 max;
	double		 total;		/* every test's duration, summed */
	size_t		 count;		/* tests seen */
};
void	 rpt_top_init(struct rpt_top *, size_t max);
void	 rpt_top_add(struct rpt_top *, const struct test_report *);
/* Sorts e[0..n) longest first (ties by id); adding after this is
 * wrong until rpt_top_clear. */
void	 rpt_top_sort(struct rpt_top *);
/* Empties it for the next run; max stays. */
void	 rpt_top_clear(struct rpt_top *);
void	 rpt_top_free(struct rpt_top *);
/* Splits "suite/name" at the first '/': the suite into buf, the name
 * returned (pointing into id). No '/': suite "" and the whole id. */
const char *rpt_split_id(const char *id, char *buf, size_t size);

/* An output stream for reporters that stream (TAP, JSON): records are
 * written whole or not at all, never blocking. A regular file is
 * written at once; a pipe, FIFO, terminal or socket is written without
 * blocking, and what it cannot take waits in memory (up to a cap, then
 * records are dropped and counted) until base says it is writable. */
#define SINK_LIMIT_DEFAULT	(64u * 1024 * 1024)
#define SINK_WARN_AT		(1u * 1024 * 1024)
#define SINK_STALL_TIMEOUT	10.0	/* at the end: seconds without
					   progress before giving up */
struct sink;
/* path "-" is stdout. what ("tap") names the sink in warnings. */
struct sink *sink_open(struct event_base *base, const char *path,
	    const char *what, char *why, size_t whylen);
/* Over an fd the caller keeps open (tests; stdout). */
struct sink *sink_open_fd(struct event_base *base, int fd, const char *what,
	    const char *name);
/* Over a file description of its own for fd (reopened through /proc
 * when it is a pipe, FIFO or terminal, else a duplicate): fd itself,
 * which others share (stdout, stderr), never becomes non-blocking.
 * NULL with why when fd is closed. */
struct sink *sink_open_dup(struct event_base *base, int fd,
	    const char *what, const char *name, char *why, size_t whylen);
void	 sink_set_limit(struct sink *, size_t limit);
/* Queues one record; 0, or -1 when it was dropped. */
int	 sink_write(struct sink *, const char *data, size_t len);
/* Starts a file opened by name (not "-") over, empty: -1 for anything
 * else, which cannot be taken back. */
int	 sink_rewind(struct sink *);
/* Writes what is buffered, waiting at most stall seconds for a reader
 * that takes nothing. 0 when all was written, -1 otherwise. */
int	 sink_flush(struct sink *, double stall);
size_t	 sink_pending(const struct sink *);
uint64_t sink_dropped(const struct sink *);
/* Flushes (as sink_flush with SINK_STALL_TIMEOUT, unless an earlier
 * flush gave up), warns about what was lost, closes and frees. */
void	 sink_close(struct sink *);

/* XML 1.0 text from arbitrary bytes: invalid UTF-8 becomes U+FFFD,
 * characters XML forbids (most C0 controls, U+FFFE, U+FFFF) become the
 * text "\xNN" or "\uNNNN"; & < > are escaped, and in an attribute also
 * the quote and tab, newline and carriage return (as character
 * references, which attribute normalization keeps). */
void	 xml_escape(FILE *fp, const char *p, size_t len, int attr);

/* ---- webpage.c: the dashboard's page, webpage.html compiled in ------ */
extern const char web_page_html[];	/* NUL at web_page_html_end */
extern const char web_page_html_end[];

/* ---- web-state.c: what the dashboard shows, bounded ---------------- */

/*
 * Counts, a lane per worker with its last tests, the first failures,
 * the slowest tests, the last notices and the summary: the same few
 * hundred kilobytes whatever the number of tests. now is clock_mono();
 * times sent are seconds since run_start. The JSON returned is the
 * caller's (json_decref); jansson is included by whoever calls these.
 */
struct wst;
struct json_t;
struct wst *wst_new(double now);
void	 wst_free(struct wst *);
void	 wst_run_start(struct wst *, const struct run_info *, double now);
void	 wst_worker(struct wst *, const struct worker_info *, int up,
	    const char *why);
void	 wst_result(struct wst *, const struct test_report *, double now);
void	 wst_progress(struct wst *, const struct progress *, double now);
void	 wst_notice(struct wst *, int level, const char *text);
void	 wst_run_end(struct wst *, const struct run_summary *, double now);
/* Has anything changed since the last delta? */
int	 wst_dirty(const struct wst *);
/* Everything, for a browser that has just connected. */
struct json_t *wst_snapshot(const struct wst *, double now);
/* What changed since the last delta (or the whole state, with "reset",
 * when a lane was reused); marks it sent. */
struct json_t *wst_delta(struct wst *, double now);

#endif /* DM_MANAGER_H */

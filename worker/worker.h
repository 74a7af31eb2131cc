/*
 * worker.h - what worker/ exports: loading a suite and its test list
 * (suite.c), running one test boxed or in the worker itself (runner.c,
 * runner-boxer.c, runner-boxed.c, runner-inproc.c, capture.c,
 * lastword.c; host.c and host.h, shared with the box helper, and box.h,
 * what the worker and the helper say to each other), the
 * worker's temporary directory and environment (env.c), the protocol
 * session behind --stdio and behind each of a daemon's connections
 * (session.c, tells.c), what managers ship (shipping.c, blobcache.c),
 * the --listen daemon (daemon.c, daemon-net.c, daemon-slots.c) and the
 * debugging command line (cli.c).
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
/* Is the entry nothing but id, file, line and timeout, in printable
 * ASCII? tells.c then writes it without jansson. */
int		 suite_test_plain(const struct suite *,
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
/* suite_tests: the list entries of tests from..to-1 of s, the suite
 * named as shown. Plain entries (suite_test_plain) are written here,
 * the others by jansson. 0, or -1 as amp_tell. */
int	tell_suite_tests(struct amp_conn *, const char *shown,
	    const struct suite *s, size_t from, size_t to);

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
/* Removes path and everything under it, whatever the permissions, never
 * following a symbolic link. */
void		 env_remove_tree(const char *path);
/* Sets DISTMGR_WORKER, DISTMGR_WORKER_COUNT, DISTMGR_RUN_ID and TMPDIR
 * for the tests to come. */
void		 env_set_worker(const char *worker_id, long long count,
		    const char *run_id);
/* Kills children the worker adopted (PR_SET_CHILD_SUBREAPER) that are
 * still alive: what tests left behind outside their process group. */
void		 env_kill_adopted(void);
/* Makes this process the reaper of its descendants' orphans. */
void		 env_become_subreaper(void);

/* ---- session.c: the protocol, over --stdio or a daemon's connection ---- */

struct bufferevent;

/* Where a session's manager is, and how it got there. */
struct session_channel {
	struct event_base	*base;		/* borrowed */
	struct bufferevent	*in, *out;	/* taken; out may be in */
	int			 in_fd, out_fd;	/* theirs, kept from tests */
	int			 tls;		/* TLS authenticated the peer:
						   trusted at once; nothing
						   written behind the bev */
	int			 daemon;	/* a daemon's session: SIGTERM
						   drains; tests run in the
						   session directory */
	const char		*peer;		/* for logs; NULL: "manager" */
	const char		*cache_dir;	/* NULL: no shared cache */
	uint64_t		 cache_limit;	/* bytes; 0: none */
};

/* Serves the manager until it closes the connection, says shutdown, or
 * stops answering the heartbeat; frames already in ch->in's input are
 * read first. Returns the exit status. */
int	session_serve(const struct session_channel *ch);
/* --stdio: the same on fds 0 and 1. */
int	session_stdio_main(const char *cache_dir, uint64_t cache_limit);

/* ---- blobcache.c: the content-addressed cache of shipped files -------- */

#define BLOB_PATH_MAX		1024	/* bytes in a shipped relative path */
#define BLOB_TMP_STALE		3600	/* seconds before a tmp file is junk */
#define BLOB_CACHE_DEFAULT	(1024ull * 1024 * 1024)	/* 1 GiB */

struct blobcache;
struct blob_writer;

/* Opens (creating) DIR/blobs; limit in bytes, 0 for none. */
struct blobcache *blobcache_open(const char *dir, uint64_t limit, char *why,
	    size_t whylen);
void	 blobcache_close(struct blobcache *);
const char *blobcache_dir(const struct blobcache *);
/* Is the blob here? Marks it used. */
int	 blobcache_has(struct blobcache *, const char *hex);
/* Receiving a blob: size bytes announced, checked against the hash at
 * commit; nothing is visible to others before a successful commit. */
struct blob_writer *blobcache_begin(struct blobcache *, const char *hex,
	    uint64_t size, char *why, size_t whylen);
int	 blob_writer_write(struct blob_writer *, const void *data, size_t len,
	    char *why, size_t whylen);
/* Frees the writer whatever happens; -1 names what was wrong (a
 * corrupted transfer names both hashes). */
int	 blob_writer_commit(struct blob_writer *, char *why, size_t whylen);
void	 blob_writer_abort(struct blob_writer *);
/* Copies blob hex to relpath under the directory rootfd, with mode,
 * creating directories; relpath is checked with ship_path_ok. */
int	 blobcache_install(struct blobcache *, const char *hex, int rootfd,
	    const char *relpath, mode_t mode, char *why, size_t whylen);
/* Removes least recently used blobs past the limit and stale temporary
 * files; returns the bytes the cache holds after. */
uint64_t blobcache_evict(struct blobcache *);

/* Is hex 64 lowercase hex digits? */
int	 blob_hex_ok(const char *hex);
/* Is path a relative path without empty, "." or ".." components? */
int	 ship_path_ok(const char *path, char *why, size_t whylen);

/* ---- shipping.c: blobs, shipped files, the session directory ----------- */

/* Errors, as distmgr-protocol(7) names them. */
#define SHIP_E_NEED_BLOB	"NEED_BLOB"
#define SHIP_E_BLOB_CORRUPT	"BLOB_CORRUPT"
#define SHIP_E_BAD_PATH		"BAD_PATH"
/* Files per ship ask (distmgr-protocol(7)). */
#define SHIP_FILES_MAX		1000
/* Blobs received at once. */
#define SHIP_STREAMS_MAX	8

struct shipping;
struct ship_error {
	const char	*code;		/* SHIP_E_* or AMP_E_* */
	char		 text[600];	/* a sentence for humans */
};

/* The cache a worker uses unless told: $CACHE_DIRECTORY (systemd's),
 * $XDG_CACHE_HOME/distworker, or ~/.cache/distworker. -1 if none. */
int	 shipping_cache_default(char *buf, size_t len);
/* Creates this process's private directory under $TMPDIR, with the
 * session directory in it, and opens the blob cache at cache_dir (NULL:
 * none; when it cannot be opened, a private store serves instead). NULL
 * with a sentence in why. */
struct shipping *shipping_new(const char *cache_dir, uint64_t limit,
	    char *why, size_t whylen);
/* Removes the private directory (only in the process that made it). */
void	 shipping_free(struct shipping *);
const char *shipping_session_dir(const struct shipping *);
/* The private directory itself, removed with the worker. */
const char *shipping_private_dir(const struct shipping *);
/* Is the shared cache in use (hello's "cache")? */
int	 shipping_has_cache(const struct shipping *);
/* hello's chdir: an absolute directory, or one under the session
 * directory, made if missing. -1 with err. */
int	 shipping_chdir(struct shipping *, const char *dir,
	    struct ship_error *err);
/* Makes the session directory the current one. */
int	 shipping_enter(struct shipping *);
/* have: the hashes of blobs not in the cache (caller owns the array);
 * NULL with err for a malformed entry. */
json_t	*shipping_have(struct shipping *, json_t *blobs,
	    struct ship_error *err);
/* A blob chunk. Returns 1 when the blob's stream ended, well or not
 * (its hash is then in ended), 0 else. Failures are kept, for the load
 * or ship that wants the blob. */
int	 shipping_blob(struct shipping *, json_t *chunk,
	    char ended[SHA256_HEX_LEN + 1]);
/* Is blob hex on its way (a stream begun, not ended)? */
int	 shipping_receiving(struct shipping *, const char *hex);
/* The first blob files names that is on its way, or NULL. */
const char *shipping_ship_waits(struct shipping *, json_t *files);
/* load by sha256: installs the blob in the session directory as name
 * and gives its path (caller frees). -1 with err: NEED_BLOB,
 * BLOB_CORRUPT, BAD_ARGUMENT, FAILED. */
int	 shipping_install_suite(struct shipping *, const char *hex,
	    const char *name, char **path, struct ship_error *err);
/* ship: checks every entry, then that every blob is here, then installs
 * them under root. -1 with err, and nothing installed unless the error
 * came while installing. */
int	 shipping_ship(struct shipping *, const char *root, json_t *files,
	    size_t *nfiles, uint64_t *bytes, struct ship_error *err);

/* ---- daemon.c, daemon-net.c, daemon-slots.c: distworker --listen ------- */

/* Defaults of the daemon's options (distworker(8)). */
#define DAEMON_GRACE_DEFAULT		30.0	/* seconds */
#define DAEMON_HANDSHAKE_DEFAULT	10.0	/* seconds */
#define DAEMON_UNAUTH_DEFAULT		64	/* connections */
/* Authenticated connections that may wait for a slot at once. */
#define DAEMON_WAITING_MAX		1024

struct daemon_options {
	const char	*listen;	/* ADDR:PORT */
	int		 jobs;		/* slots */
	const char	*tls_cert, *tls_key, *tls_ca;	/* all or none */
	const char	*cache_dir;	/* NULL: shipping_cache_default */
	uint64_t	 cache_limit;	/* bytes; 0: none */
	const char	*log;		/* a file, "syslog", or NULL */
	const char	*pidfile;
	const char	*user;
	int		 foreground;
	double		 grace;
	double		 handshake_timeout;
	int		 max_unauth;
	int		 verbose;
};

/* Runs the daemon; returns the exit status (4 for a usage error such as
 * a non-loopback address without TLS, 3 when it cannot start). */
int	 daemon_main(const struct daemon_options *);

/* Internal to the daemon's files. */
struct addrinfo;
struct ssl_ctx_st;
struct dnet;
struct dconn;
struct dnet_config {
	double	 handshake_timeout;
	int	 max_unauth;
	/* A connection's hello came: it wants a slot. */
	void	(*ready)(void *ctx, struct dconn *, const char *run_id);
	/* A connection waiting for a slot closed. */
	void	(*gone)(void *ctx, struct dconn *);
	void	*ctx;
};
/* ADDR:PORT, [ADDR]:PORT, or :PORT for every address; *loopback says
 * whether every address found is a loopback one. */
int	 dnet_resolve(const char *spec, struct addrinfo **res,
	    int *loopback, char *why, size_t whylen);
struct dnet *dnet_new(struct event_base *, struct ssl_ctx_st *tls,
	    const struct dnet_config *);
int	 dnet_listen(struct dnet *, const struct addrinfo *, char *why,
	    size_t whylen);
void	 dnet_stop_listening(struct dnet *);
/* Closes every connection no session holds (those waiting: gone()). */
void	 dnet_close_all(struct dnet *, const char *why);
void	 dnet_free(struct dnet *);
struct bufferevent *dnet_child_keep(struct dnet *, struct dconn *keep,
	    int *fd);
const char *dconn_peer(const struct dconn *);
void	 dconn_close(struct dconn *, const char *why);
void	 dconn_quiesce(struct dconn *);
void	 dconn_handed_off(struct dconn *);

/* The slots and the fair queue in front of them. */
struct slots;
struct slots *slots_new(int total);
void	 slots_free(struct slots *);
/* item waits for a slot, for the run run_id. */
void	 slots_wait(struct slots *, const char *run_id, void *item);
/* A waiting item that went away; -1 if it was not waiting. */
int	 slots_forget(struct slots *, void *item);
/* The item that gets a free slot now, counted as running for its run
 * (*run_id, valid until the next call); NULL if none. */
void	*slots_grant(struct slots *, const char **run_id);
/* A session of run_id ended: its slot is free. */
void	 slots_release(struct slots *, const char *run_id);
int	 slots_busy(const struct slots *);
size_t	 slots_waiting(const struct slots *);
int	 slots_running(const struct slots *, const char *run_id);

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

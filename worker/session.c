/*
 * session.c - the protocol a manager speaks to its worker
 * (distmgr-protocol(7)), over --stdio or over a connection a daemon
 * accepted and forked this session for. The command table and its
 * handlers (hello, load, have, blob, ship, run, cancel, ping, shutdown),
 * the queue of run batches, the test lists sent in pieces, the results
 * streamed back as tells, and the worker's own heartbeat.
 *
 * Rules it keeps:
 * - with --stdio the channel is moved off fds 0 and 1 before anything
 *   else, so that nothing a test or a library prints can reach the
 *   manager as bytes;
 * - nothing is loaded, shipped or run before hello is answered;
 * - a batch is answered only after every one of its results is queued,
 *   and nothing new starts while the connection is congested;
 * - in-process, every earlier result is written to the fd before a test
 *   starts: a crash then costs that test only;
 * - a bad command gets an error and the worker keeps serving; only the
 *   manager closing the connection (or shutdown), or a manager that
 *   stops answering the heartbeat, ends it;
 * - over TLS nothing is ever written to the socket behind the
 *   bufferevent's back.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"

/* Raw bytes of test output per test_output chunk: text may grow six-fold
 * as JSON (control characters), and a chunk must fit a frame. */
#define SESSION_OUTPUT_CHUNK	(64u * 1024)
/* A suite_tests piece is cut before its entries could pass this. */
#define SESSION_PIECE_BYTES	(FRAME_LIMIT_DEFAULT / 2)
/* Tests that finish at once (in-process, quick boxed ones) run at most
 * so many, for at most so long, per turn of the event loop: results go
 * out and cancel and ping are read while a long batch runs. */
#define SESSION_PUMP_SLICE	512
#define SESSION_PUMP_SECONDS	0.01

/* Pings the manager may leave unanswered in a row before the session
 * ends (distmgr-protocol(7), hello's heartbeat). */
#define SESSION_PINGS_MISSED	3
/* hello's nice is taken from this range. */
#define SESSION_NICE_MAX	40

#define E_VERSION_MISMATCH	"VERSION_MISMATCH"
#define E_NO_SUCH_SUITE		"NO_SUCH_SUITE"
#define E_BAD_INDEX		"BAD_INDEX"

struct batch {
	TAILQ_ENTRY(batch)	 entry;
	struct amp_request	*req;
	int			 handle;
	const struct suite	*suite;
	size_t			*tests;
	size_t			 count;
	size_t			 next;		/* started */
	size_t			 ran;		/* results sent */
	int			 cancelled;
	/* A serial group's run: its tests share one process. */
	struct runner_group	 grp;		/* group NULL: none */
	size_t			 last;		/* its last test run */
};

/* A load whose answer waits for its test list to be sent. */
struct lister {
	TAILQ_ENTRY(lister)	 entry;
	struct amp_request	*req;
	int			 handle;
	const struct suite	*suite;
	size_t			 next;
};

/* An ask answered once the running test has stopped. */
struct waiter {
	TAILQ_ENTRY(waiter)	 entry;
	struct amp_request	*req;
	int			 shutdown;
};

/* A load or ship waiting for a blob that is still arriving; its handler
 * runs again when that blob's stream ends. */
struct parked {
	TAILQ_ENTRY(parked)	 entry;
	struct amp_request	*req;
	json_t			*box;
	amp_handler_fn		 handler;
	char			 hex[SHA256_HEX_LEN + 1];
};

struct session {
	const struct session_channel *ch;
	struct event_base	*base;
	struct amp_conn		*conn;		/* NULL once closed */
	int			 in_fd, out_fd;
	int			 said_hello;
	struct shipping		*ship;
	TAILQ_HEAD(, parked)	 parked;
	double			 heartbeat;	/* seconds; 0: none */
	struct event		*heartbeat_ev;
	int			 pings_out;	/* asked, not answered */
	int			 pings_missed;	/* ticks without a word */
	uint64_t		 frames_seen;
	int			 draining;	/* stop after the running test */
	int			 polite;	/* close_notify when we close */
	int			 devnull;
	struct runner_config	 cfg;
	struct runner		*runner;
	struct syncc		*sync;		/* tests' dm_lock and the rest */
	uint32_t		 group_runs;	/* serial group runs so far */
	struct suite		**suites;
	char			**shown;	/* each suite as load named it */
	size_t			 nsuites;
	TAILQ_HEAD(, batch)	 batches;
	TAILQ_HEAD(, lister)	 listers;
	TAILQ_HEAD(, waiter)	 waiters;
	int			 pumping;
	int			 start_sent;	/* in-process: started, not run */
	int			 waiting_write;
	int			 trim_heap;	/* before the next test */
	int			 shutting_down;
	struct event		*pump_ev;
	struct event		*write_ev;
	struct event		*signals[3];
	int			 exit_status;
};


static void	session_pump(struct session *);
static void	session_list_pump(struct session *);
static int	session_load_again(struct amp_request *, json_t *);

static struct session *
req_session(struct amp_request *req)
{
	return amp_conn_ctx(amp_request_conn(req));
}

static int
session_refuse_before_hello(struct session *s, struct amp_request *req)
{
	if (s->said_hello)
		return 0;
	amp_fail(req, AMP_E_FAILED, "'hello' must be answered before '%s'",
	    amp_request_command(req));
	return 1;
}

/* ---- hello --------------------------------------------------------------- */

static const struct amp_arg hello_args[] = {
	{ "protocol", AMP_T_INT, 0 },
	{ "manager", AMP_T_STRING, 0 },
	{ "run_id", AMP_T_STRING, 0 },
	{ "worker_id", AMP_T_STRING, 0 },
	{ "worker_count", AMP_T_INT, 0 },
	{ "boxed", AMP_T_BOOL, 1 },
	{ "timeout", AMP_T_NUMBER, 1 },
	{ "timeout_multiplier", AMP_T_NUMBER, 1 },
	{ "output_cap", AMP_T_INT, 1 },
	{ "env", AMP_T_OBJECT, 1 },
	{ "chdir", AMP_T_STRING, 1 },
	{ "nice", AMP_T_INT, 1 },
	{ "heartbeat", AMP_T_NUMBER, 1 },
	{ NULL, 0, 0 }
};

/* Fills cfg from hello's arguments; a sentence in why when one is out of
 * range. */
static int
hello_config(json_t *box, struct runner_config *cfg, char *why, size_t len)
{
	long long cap = json_get_int(box, "output_cap",
	    RUNNER_OUTPUT_CAP_DEFAULT);

	cfg->boxed = json_get_bool(box, "boxed", 1);
	cfg->capture = 1;
	cfg->timeout = json_get_num(box, "timeout", 0);
	cfg->multiplier = json_get_num(box, "timeout_multiplier", 1);
	if (!isfinite(cfg->timeout) || cfg->timeout < 0)
		snprintf(why, len, "argument 'timeout' must be 0 or more");
	else if (!isfinite(cfg->multiplier) || cfg->multiplier <= 0)
		snprintf(why, len, "argument 'timeout_multiplier' must be "
		    "more than 0");
	else if (cap < 1 || cap > (long long)RUNNER_OUTPUT_CAP_MAX)
		snprintf(why, len, "argument 'output_cap' must be from 1 to "
		    "%u", RUNNER_OUTPUT_CAP_MAX);
	else if (json_get_int(box, "worker_count", 0) < 1)
		snprintf(why, len, "argument 'worker_count' must be 1 or more");
	else if (!isfinite(json_get_num(box, "heartbeat", 0)) ||
	    json_get_num(box, "heartbeat", 0) < 0)
		snprintf(why, len, "argument 'heartbeat' must be 0 or more");
	else if (llabs(json_get_int(box, "nice", 0)) > SESSION_NICE_MAX)
		snprintf(why, len, "argument 'nice' must be from -%d to %d",
		    SESSION_NICE_MAX, SESSION_NICE_MAX);
	else {
		cfg->output_cap = (size_t)cap;
		return 0;
	}
	return -1;
}

static int
hello_check_env(json_t *env, char *why, size_t len)
{
	const char *key;
	json_t *v;

	json_object_foreach(env, key, v) {
		if (!json_is_string(v)) {
			snprintf(why, len, "env '%.100s' must be a string", key);
			return -1;
		}
		if (key[0] == '\0' || strchr(key, '=') != NULL) {
			snprintf(why, len, "env name '%.100s' is not a valid "
			    "variable name", key);
			return -1;
		}
	}
	return 0;
}

static json_t *
hello_answer(struct session *s)
{
	const char *sdir = shipping_session_dir(s->ship);
	const char *root = shipping_private_dir(s->ship);
	struct utsname u;
	char host[256];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (uname(&u) == -1)
		memset(&u, 0, sizeof u);
	if (gethostname(host, sizeof host) == -1)
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = '\0';
	return json_pack("{s:i, s:s, s:i, s:o, s:s, s:s, s:s, s:i, s:i, s:o, "
	    "s:o, s:o, s:b}",
	    "protocol", DM_PROTOCOL_VERSION, "version", DM_VERSION,
	    "abi", DM_ABI_VERSION, "hostname",
	    json_string_lossy(host, strlen(host)), "os", u.sysname,
	    "os_release", u.release, "arch", u.machine,
	    "cpus", (int)(cpus > 0 ? cpus : 1), "pid", (int)getpid(),
	    "tmpdir", json_string_lossy(workdir_path(),
	    strlen(workdir_path())),
	    "root", json_string_lossy(root, strlen(root)),
	    "session", json_string_lossy(sdir, strlen(sdir)),
	    "cache", shipping_has_cache(s->ship));
}

/* hello's chdir and nice, the two that can fail; FAILED (or BAD_PATH)
 * answered when one does. */
static int
hello_place(struct session *s, struct amp_request *req, json_t *box)
{
	const char *dir = json_get_str(box, "chdir", NULL);
	long long inc = json_get_int(box, "nice", 0);
	struct ship_error err;

	if (dir != NULL && shipping_chdir(s->ship, dir, &err) == -1) {
		amp_fail(req, err.code, "%s", err.text);
		return -1;
	}
	errno = 0;
	if (inc != 0 && nice((int)inc) == -1 && errno != 0) {
		amp_fail(req, AMP_E_FAILED, "cannot change the nice value by "
		    "%lld: %s", inc, strerror(errno));
		return -1;
	}
	return 0;
}

static void	session_heartbeat_start(struct session *);

static void	session_test_done(void *ctx, const struct suite *,
		    size_t index, const struct runner_result *);

static int
session_hello(struct amp_request *req, json_t *box)
{
	struct session *s = req_session(req);
	json_t *env = json_object_get(box, "env"), *v;
	long long proto = json_get_int(box, "protocol", 0);
	const char *key;
	char why[256];

	if (s->said_hello) {
		amp_fail(req, AMP_E_FAILED, "'hello' was already answered");
		return 0;
	}
	if (proto != DM_PROTOCOL_VERSION) {
		amp_fail(req, E_VERSION_MISMATCH, "this worker speaks protocol "
		    "%d, not %lld", DM_PROTOCOL_VERSION, proto);
		return 0;
	}
	if (hello_config(box, &s->cfg, why, sizeof why) == -1 ||
	    (env != NULL && hello_check_env(env, why, sizeof why) == -1)) {
		amp_fail(req, AMP_E_BAD_ARGUMENT, "%s", why);
		return 0;
	}
	if (hello_place(s, req, box) == -1)
		return 0;
	s->heartbeat = json_get_num(box, "heartbeat", 0);
	if (env != NULL)
		json_object_foreach(env, key, v)
			setenv(key, json_string_value(v), 1);
	env_set_worker(json_get_str(box, "worker_id", ""),
	    json_get_int(box, "worker_count", 1),
	    json_get_str(box, "run_id", ""));
	s->cfg.sync = s->sync;
	s->runner = runner_new(s->base, &s->cfg, session_test_done, s);
	/* Over TLS a last word written to the socket would break the
	 * stream: it goes nowhere, and the manager sees the worker lost. */
	if (!s->cfg.boxed) {
		lastword_install(s->ch->tls ? s->devnull : s->out_fd);
		syncc_inproc_install(s->sync);
	}
	runner_close_in_child(s->runner, s->in_fd);
	if (s->out_fd != s->in_fd)
		runner_close_in_child(s->runner, s->out_fd);
	s->said_hello = 1;
	amp_answer(req, hello_answer(s));
	/* The channel is the manager's own (or TLS authenticated it):
	 * trusted from here on. */
	amp_conn_set_limit(s->conn, FRAME_LIMIT_DEFAULT);
	session_heartbeat_start(s);
	return 0;
}

/* ---- load ----------------------------------------------------------------- */

static const struct amp_arg load_args[] = {
	{ "path", AMP_T_STRING, 1 },
	{ "sha256", AMP_T_STRING, 1 },
	{ "name", AMP_T_STRING, 1 },
	{ "list", AMP_T_BOOL, 1 },
	{ NULL, 0, 0 }
};

static json_t *
load_answer(int handle, const struct suite *suite)
{
	return json_pack("{s:i, s:I, s:s}", "suite", handle, "count",
	    (json_int_t)suite_count(suite), "hash", suite_hash(suite));
}

/* Keeps req until blob hex has arrived; handler then runs again. */
static void
session_park(struct session *s, struct amp_request *req, json_t *box,
    amp_handler_fn handler, const char *hex)
{
	struct parked *p = xcalloc(1, sizeof *p);

	p->req = req;
	p->box = json_incref(box);
	p->handler = handler;
	snprintf(p->hex, sizeof p->hex, "%s", hex);
	TAILQ_INSERT_TAIL(&s->parked, p, entry);
	log_debug("'%s' waits for blob %.12s", amp_request_command(req), hex);
}

/* Blob hex's stream ended: what waited for it runs again. */
static void
session_unpark(struct session *s, const char *hex)
{
	struct parked *p, *next;

	for (p = TAILQ_FIRST(&s->parked); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (strcmp(p->hex, hex) != 0)
			continue;
		TAILQ_REMOVE(&s->parked, p, entry);
		if (p->handler(p->req, p->box) == -1)
			amp_fail(p->req, AMP_E_FAILED, "command '%s' failed",
			    amp_request_command(p->req));
		json_decref(p->box);
		free(p);
		/* The handler may have parked again: start over. */
		next = TAILQ_FIRST(&s->parked);
	}
}

/* The file a load names: its path, or the shipped blob installed in
 * the session directory (caller frees). NULL when answered already or
 * parked. */
static char *
load_file(struct session *s, struct amp_request *req, json_t *box,
    const char **shown)
{
	const char *path = json_get_str(box, "path", NULL);
	const char *hex = json_get_str(box, "sha256", NULL);
	const char *name = json_get_str(box, "name", NULL);
	struct ship_error err;
	char *file;

	if ((path != NULL) == (hex != NULL || name != NULL) ||
	    (path == NULL && (hex == NULL || name == NULL))) {
		amp_fail(req, AMP_E_BAD_ARGUMENT, "give 'path', or 'sha256' "
		    "and 'name'");
		return NULL;
	}
	if (path != NULL) {
		*shown = path;
		return xstrdup(path);
	}
	*shown = name;
	if (blob_hex_ok(hex) && shipping_receiving(s->ship, hex)) {
		session_park(s, req, box, session_load_again, hex);
		return NULL;
	}
	if (shipping_install_suite(s->ship, hex, name, &file, &err) == -1) {
		amp_fail(req, err.code, "%s", err.text);
		return NULL;
	}
	return file;
}

static int
session_load(struct amp_request *req, json_t *box)
{
	struct session *s = req_session(req);
	struct suite_error err;
	struct suite *suite;
	struct lister *l;
	const char *shown;
	char *file;
	int handle;

	if (session_refuse_before_hello(s, req))
		return 0;
	if ((file = load_file(s, req, box, &shown)) == NULL)
		return 0;
	suite = suite_load(file, host_get(), &err);
	free(file);
	if (suite == NULL) {
		amp_fail(req, err.code, "%s", err.text);
		return 0;
	}
	/* What its constructors printed is no test's output. */
	runner_discard_output(s->runner);
	s->suites = xreallocarray(s->suites, s->nsuites + 1,
	    sizeof *s->suites);
	s->shown = xreallocarray(s->shown, s->nsuites + 1, sizeof *s->shown);
	handle = (int)s->nsuites;
	s->suites[s->nsuites] = suite;
	s->shown[s->nsuites++] = xstrdup(shown);
	if (!json_get_bool(box, "list", 1)) {
		amp_answer(req, load_answer(handle, suite));
		return 0;
	}
	l = xcalloc(1, sizeof *l);
	l->req = req;
	l->handle = handle;
	l->suite = suite;
	TAILQ_INSERT_TAIL(&s->listers, l, entry);
	session_list_pump(s);
	return 0;
}

/* A parked load, once its blob's stream ended. */
static int
session_load_again(struct amp_request *req, json_t *box)
{
	if (amp_request_conn(req) == NULL) {
		amp_request_drop(req);
		return 0;
	}
	return session_load(req, box);
}

/* An upper bound of the bytes a string takes in a JSON text. */
static size_t
json_size_bound(const char *v)
{
	size_t n = 2;

	for (; v != NULL && *v != '\0'; v++) {
		if ((unsigned char)*v < 0x20 || *v == '"' || *v == '\\')
			n += 6;
		else if ((unsigned char)*v >= 0x80)
			n += 3;	/* a byte repaired to U+FFFD, at worst */
		else
			n++;
	}
	return n;
}

static size_t
entry_size_bound(const struct suite_test *t)
{
	const struct dm_options *o = &t->def->opt;
	const struct dm_suite_options *so = t->defaults != NULL ?
	    &t->defaults->opt : NULL;

	return 256 + json_size_bound(t->def->suite) +
	    json_size_bound(t->def->name) + json_size_bound(t->def->file) +
	    json_size_bound(o->todo) + json_size_bound(o->skip) +
	    json_size_bound(o->group) + json_size_bound(o->strategy) +
	    json_size_bound(o->lock) + json_size_bound(o->tags) +
	    (so != NULL ? json_size_bound(so->tags) +
	    json_size_bound(so->group) + json_size_bound(so->strategy) : 0);
}

/* Sends the next piece of l's list; returns 1 when the list is done. */
static int
session_list_piece(struct session *s, struct lister *l)
{
	size_t count = suite_count(l->suite), bytes = 0, first = l->next;

	while (l->next < count && l->next - first < SUITE_LIST_PIECE) {
		bytes += entry_size_bound(suite_get(l->suite, l->next));
		if (bytes > SESSION_PIECE_BYTES && l->next > first)
			break;
		l->next++;
	}
	tell_suite_tests(s->conn, s->shown[l->handle], l->suite, first,
	    l->next);
	return l->next == count;
}

static void
session_list_pump(struct session *s)
{
	struct lister *l;

	while (s->conn != NULL && (l = TAILQ_FIRST(&s->listers)) != NULL) {
		if (amp_conn_congested(s->conn))
			return;
		if (!session_list_piece(s, l))
			continue;
		amp_answer(l->req, load_answer(l->handle, l->suite));
		TAILQ_REMOVE(&s->listers, l, entry);
		free(l);
	}
}

/* ---- run ------------------------------------------------------------------ */

static const struct amp_arg run_args[] = {
	{ "suite", AMP_T_INT, 0 },
	{ "tests", AMP_T_ARRAY, 0 },
	{ "group", AMP_T_STRING, 1 },
	{ NULL, 0, 0 }
};

/* A run that names a serial group: every test must be of it. Fills b's
 * group and its last test to run (not skipped). -1 when answered with
 * an error. */
static int
run_group(struct session *s, struct amp_request *req, const char *name,
    struct batch *b)
{
	const struct suite_group *g;
	const struct suite_test *t;
	long gi = suite_group_find(b->suite, name);
	size_t i;

	g = suite_group_get(b->suite, gi);
	if (g == NULL || (g->strategy != STRATEGY_SERIAL &&
	    g->strategy != STRATEGY_ISOLATED_SERIAL)) {
		amp_fail(req, AMP_E_BAD_ARGUMENT, "the suite has no serial "
		    "group '%.200s'", name);
		return -1;
	}
	for (i = 0; i < b->count; i++) {
		t = suite_get(b->suite, b->tests[i]);
		if (t->group != gi) {
			amp_fail(req, AMP_E_BAD_ARGUMENT, "tests[%zu] is not "
			    "of group '%.200s'", i, name);
			return -1;
		}
		if (t->def->opt.skip == NULL)
			b->last = i;
	}
	b->grp.group = g;
	b->grp.run = ++s->group_runs;
	if (b->grp.run == 0)
		b->grp.run = ++s->group_runs;	/* 0 is no group's */
	return 0;
}

/* Copies the indices out of the box; an error answered when one is bad. */
static size_t *
run_indices(struct amp_request *req, json_t *tests, const struct suite *s)
{
	size_t i, n = json_array_size(tests), count = suite_count(s);
	size_t *idx = xcalloc(n + 1, sizeof *idx);
	json_t *v;

	json_array_foreach(tests, i, v) {
		if (!json_is_integer(v)) {
			amp_fail(req, AMP_E_BAD_ARGUMENT, "argument 'tests' "
			    "must hold integers; tests[%zu] does not", i);
			free(idx);
			return NULL;
		}
		if (json_integer_value(v) < 0 ||
		    (unsigned long long)json_integer_value(v) >= count) {
			amp_fail(req, E_BAD_INDEX, "tests[%zu] is %lld, but "
			    "the suite's indices go from 0 to %zu", i,
			    (long long)json_integer_value(v), count - 1);
			free(idx);
			return NULL;
		}
		idx[i] = (size_t)json_integer_value(v);
	}
	return idx;
}

static int
session_run(struct amp_request *req, json_t *box)
{
	struct session *s = req_session(req);
	long long handle = json_get_int(box, "suite", -1);
	json_t *tests = json_object_get(box, "tests");
	struct batch *b;
	size_t *idx;

	if (session_refuse_before_hello(s, req))
		return 0;
	if (handle < 0 || (unsigned long long)handle >= s->nsuites) {
		amp_fail(req, E_NO_SUCH_SUITE, "no suite %lld: %zu loaded",
		    handle, s->nsuites);
		return 0;
	}
	if ((idx = run_indices(req, tests, s->suites[handle])) == NULL)
		return 0;
	b = xcalloc(1, sizeof *b);
	b->req = req;
	b->handle = (int)handle;
	b->suite = s->suites[handle];
	b->tests = idx;
	b->count = json_array_size(tests);
	if (json_object_get(box, "group") != NULL && run_group(s, req,
	    json_get_str(box, "group", ""), b) == -1) {
		free(b->tests);
		free(b);
		return 0;
	}
	TAILQ_INSERT_TAIL(&s->batches, b, entry);
	/* From the loop, once this box is freed: see session_pump_cb. */
	s->trim_heap = 1;
	event_active(s->pump_ev, EV_TIMEOUT, 1);
	return 0;
}

/* ---- results -------------------------------------------------------------- */

static json_t *
test_ref(int handle, size_t index)
{
	json_t *box = json_object();

	json_object_set_new(box, "suite", json_integer(handle));
	json_object_set_new(box, "test", json_integer((json_int_t)index));
	return box;
}

static void
send_output(struct session *s, int handle, size_t index, const char *stream,
    const char *data, size_t len)
{
	json_t *extra;

	if (len == 0)
		return;
	extra = test_ref(handle, index);
	stream_send(s->conn, "test_output", stream, data, len, 0,
	    SESSION_OUTPUT_CHUNK, extra);
	json_decref(extra);
}

/* A result with nothing to say but its outcome: most of them. */
static int
result_is_bare(const struct runner_result *res)
{
	return res->outcome == OUTCOME_PASS && res->message[0] == '\0' &&
	    res->file[0] == '\0' && res->signal == 0 && res->exit_status < 0;
}

static void
send_result(struct session *s, int handle, size_t index,
    const struct runner_result *res)
{
	json_t *box;
	char name[32];

	if (result_is_bare(res)) {
		tell_test_passed(s->conn, handle, index, res->duration);
		return;
	}
	box = test_ref(handle, index);

	json_object_set_new(box, "outcome",
	    json_string(test_outcome_name(res->outcome)));
	json_object_set_new(box, "duration", json_real(res->duration));
	if (res->message[0] != '\0')
		json_object_set_new(box, "message", json_string_lossy(
		    res->message, strlen(res->message)));
	if (res->file[0] != '\0') {
		json_object_set_new(box, "file", json_string_lossy(res->file,
		    strlen(res->file)));
		json_object_set_new(box, "line", json_integer(res->line));
	}
	if (res->signal != 0) {
		json_object_set_new(box, "signal", json_integer(res->signal));
		json_object_set_new(box, "signal_name", json_string(
		    runner_signal_name(res->signal, name, sizeof name)));
	}
	if (res->exit_status >= 0)
		json_object_set_new(box, "exit_status",
		    json_integer(res->exit_status));
	amp_tell(s->conn, "test_result", box);
}

static void
session_test_done(void *ctx, const struct suite *suite, size_t index,
    const struct runner_result *res)
{
	struct session *s = ctx;
	struct batch *b = TAILQ_FIRST(&s->batches);

	(void)suite;
	syncc_clear_test(s->sync);
	if (b == NULL || s->conn == NULL)
		return;
	send_output(s, b->handle, index, "stdout", res->out, res->out_len);
	send_output(s, b->handle, index, "stderr", res->err, res->err_len);
	send_result(s, b->handle, index, res);
	b->ran++;
	session_pump(s);
}

/* ---- the queue ------------------------------------------------------------ */

static void
session_batch_answer(struct session *s, struct batch *b)
{
	struct runner_result res;

	/* In-process, test_started went out for a test that never ran. */
	if (s->start_sent) {
		runner_judge_stopped(s->shutting_down ? STOP_SHUTDOWN :
		    STOP_CANCEL, 0, &res);
		res.duration = 0;
		send_result(s, b->handle, b->tests[b->next], &res);
		b->ran++;
		s->start_sent = 0;
	}
	amp_answer(b->req, json_pack("{s:I, s:b}", "ran", (json_int_t)b->ran,
	    "cancelled", b->cancelled));
	TAILQ_REMOVE(&s->batches, b, entry);
	free(b->tests);
	free(b);
}

static void
session_wait_writable(struct session *s)
{
	s->waiting_write = 1;
	event_add(s->write_ev, NULL);
}

/* Starts b's next test. In-process, the previous result and this test's
 * test_started must have reached the fd first. */
static void
session_start_next(struct session *s, struct batch *b)
{
	size_t index = b->tests[b->next];
	int rc;

	if (!s->start_sent) {
		tell_test_started(s->conn, b->handle, index);
		s->start_sent = 1;
	}
	if (!s->cfg.boxed) {
		rc = amp_conn_flush_now(s->conn);
		if (rc == 1)
			session_wait_writable(s);
		else if (rc == -1)
			amp_conn_close(s->conn, "cannot write to the manager",
			    0);
		if (rc != 0)
			return;
	}
	s->start_sent = 0;
	b->grp.last = b->next == b->last;
	b->next++;
	runner_name_suite(s->runner, b->handle);
	syncc_set_test(s->sync, b->handle, (long)index);
	runner_start_group(s->runner, b->suite, index,
	    b->grp.group != NULL ? &b->grp : NULL);
}

static void
session_answer_waiters(struct session *s)
{
	struct waiter *w;

	while ((w = TAILQ_FIRST(&s->waiters)) != NULL) {
		TAILQ_REMOVE(&s->waiters, w, entry);
		amp_answer(w->req, NULL);
		if (w->shutdown && s->conn != NULL) {
			s->polite = 1;
			amp_conn_close(s->conn, "shutdown", 1);
		}
		free(w);
	}
}

/* A test whose test_started went out (in-process) still runs when the
 * session drains: the manager counts it as running. */
static int
session_can_start(struct session *s)
{
	return s->conn != NULL && !amp_conn_closing(s->conn) &&
	    !amp_conn_congested(s->conn) && !s->waiting_write &&
	    (!s->draining || s->start_sent);
}

/* Ends the session once nothing runs: what was sent goes out first. The
 * batches not run are the manager's to give to others. */
static void
session_drain_check(struct session *s)
{
	if (!s->draining || s->conn == NULL || amp_conn_closing(s->conn) ||
	    (s->runner != NULL && runner_busy(s->runner)) || s->start_sent)
		return;
	log_info("stopping: no test runs, closing the connection");
	s->polite = 1;
	amp_conn_close(s->conn, "the worker is stopping", 1);
}

static void
session_pump(struct session *s)
{
	struct batch *b;
	double until = clock_mono() + SESSION_PUMP_SECONDS;
	int started = 0;

	if (s->pumping || s->conn == NULL || s->runner == NULL)
		return;
	s->pumping = 1;
	while (!runner_busy(s->runner) &&
	    (b = TAILQ_FIRST(&s->batches)) != NULL) {
		if (b->cancelled || b->next == b->count) {
			session_batch_answer(s, b);
			continue;
		}
		if (!session_can_start(s))
			break;
		if (started++ == SESSION_PUMP_SLICE || clock_mono() > until) {
			event_active(s->pump_ev, EV_TIMEOUT, 1);
			break;
		}
		session_start_next(s, b);
	}
	if (!runner_busy(s->runner) && (TAILQ_EMPTY(&s->batches) ||
	    !TAILQ_FIRST(&s->batches)->cancelled))
		session_answer_waiters(s);
	s->pumping = 0;
	session_drain_check(s);
}

static void
session_pump_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	/* A parsed batch leaves its JSON's memory free but resident, and
	 * every fork copies the page table of what is resident: a boxed
	 * test costs more for each megabyte the worker holds. */
	if (s->trim_heap) {
		malloc_trim(0);
		s->trim_heap = 0;
	}
	session_pump(s);
}

static void
session_writable_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	s->waiting_write = 0;
	session_pump(s);
}

/* ---- cancel, ping, shutdown ---------------------------------------------- */

/* Stops the running test and drops every batch queued so far; req is
 * answered once that is done. */
static void
session_stop_all(struct session *s, struct amp_request *req, int shutdown)
{
	struct waiter *w = xcalloc(1, sizeof *w);
	struct batch *b;

	TAILQ_FOREACH(b, &s->batches, entry)
		b->cancelled = 1;
	w->req = req;
	w->shutdown = shutdown;
	TAILQ_INSERT_TAIL(&s->waiters, w, entry);
	if (s->runner == NULL) {
		session_answer_waiters(s);
		return;
	}
	runner_stop(s->runner, shutdown ? STOP_SHUTDOWN : STOP_CANCEL);
	session_pump(s);
}

static int
session_cancel(struct amp_request *req, json_t *box)
{
	(void)box;
	session_stop_all(req_session(req), req, 0);
	return 0;
}

static int
session_shutdown(struct amp_request *req, json_t *box)
{
	struct session *s = req_session(req);

	(void)box;
	s->shutting_down = 1;
	session_stop_all(s, req, 1);
	return 0;
}

static int
session_ping(struct amp_request *req, json_t *box)
{
	(void)box;
	amp_answer(req, json_pack("{s:f}", "time", clock_mono()));
	return 0;
}

/* ---- have, blob, ship --------------------------------------------------- */

static const struct amp_arg have_args[] = {
	{ "blobs", AMP_T_ARRAY, 0 },
	{ NULL, 0, 0 }
};

static int
session_have(struct amp_request *req, json_t *box)
{
	struct session *s = req_session(req);
	struct ship_error err;
	json_t *missing;

	if (session_refuse_before_hello(s, req))
		return 0;
	missing = shipping_have(s->ship, json_object_get(box, "blobs"), &err);
	if (missing == NULL)
		amp_fail(req, err.code, "%s", err.text);
	else
		amp_answer(req, json_pack("{s:o}", "missing", missing));
	return 0;
}

static const struct amp_arg blob_args[] = {
	{ "stream", AMP_T_STRING, 0 },
	{ "seq", AMP_T_INT, 0 },
	{ "data", AMP_T_STRING, 0 },
	{ "last", AMP_T_BOOL, 0 },
	{ "size", AMP_T_INT, 1 },
	{ NULL, 0, 0 }
};

static int
session_blob(struct amp_request *req, json_t *box)
{
	struct session *s = req_session(req);
	char ended[SHA256_HEX_LEN + 1];

	if (!s->said_hello) {
		log_warn("a blob chunk before hello; ignored");
		return 0;
	}
	if (shipping_blob(s->ship, box, ended))
		session_unpark(s, ended);
	return 0;
}

static const struct amp_arg ship_args[] = {
	{ "root", AMP_T_STRING, 0 },
	{ "files", AMP_T_ARRAY, 0 },
	{ NULL, 0, 0 }
};

static int	session_ship_again(struct amp_request *, json_t *);

static int
session_ship(struct amp_request *req, json_t *box)
{
	struct session *s = req_session(req);
	json_t *files = json_object_get(box, "files");
	struct ship_error err;
	const char *hex;
	uint64_t bytes;
	size_t n;

	if (session_refuse_before_hello(s, req))
		return 0;
	if ((hex = shipping_ship_waits(s->ship, files)) != NULL) {
		session_park(s, req, box, session_ship_again, hex);
		return 0;
	}
	if (shipping_ship(s->ship, json_get_str(box, "root", ""), files, &n,
	    &bytes, &err) == -1) {
		amp_fail(req, err.code, "%s", err.text);
		return 0;
	}
	amp_answer(req, json_pack("{s:I, s:I}", "files", (json_int_t)n,
	    "bytes", (json_int_t)bytes));
	return 0;
}

static int
session_ship_again(struct amp_request *req, json_t *box)
{
	if (amp_request_conn(req) == NULL) {
		amp_request_drop(req);
		return 0;
	}
	return session_ship(req, box);
}

/* ---- the worker's heartbeat --------------------------------------------- */

static void
session_ping_answered(struct amp_conn *c, json_t *answer,
    const struct amp_error *err, void *arg)
{
	struct session *s = arg;

	(void)c;
	(void)answer;
	s->pings_out--;
	/* An error is an answer too: the manager is there to send it. */
	if (err == NULL || strcmp(err->code, AMP_E_CONNECTION_LOST) != 0)
		s->pings_missed = 0;
}

/*
 * Every heartbeat: a tick with a ping outstanding and not a frame from
 * the manager since the last tick is a ping missed; any frame counts as
 * a sign of life, since a ping's answer may queue behind a long stream.
 * SESSION_PINGS_MISSED of them in a row end the session, and with it the
 * running test: the manager vanished or the link was cut, and the slot
 * is wanted.
 */
static void
session_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t frames;

	(void)fd;
	(void)what;
	if (s->conn == NULL || amp_conn_closing(s->conn))
		return;
	amp_conn_counters(s->conn, &frames, NULL, NULL, NULL);
	if (frames != s->frames_seen)
		s->pings_missed = 0;
	else if (s->pings_out > 0)
		s->pings_missed++;
	s->frames_seen = frames;
	if (s->pings_missed >= SESSION_PINGS_MISSED) {
		log_warn("the manager answered none of %d pings in %.1f s: "
		    "ending the session", SESSION_PINGS_MISSED,
		    SESSION_PINGS_MISSED * s->heartbeat);
		s->exit_status = EXIT_INTERRUPTED;
		amp_conn_close(s->conn, "heartbeat lost", 0);
		return;
	}
	if (s->pings_out < SESSION_PINGS_MISSED) {
		s->pings_out++;
		amp_ask(s->conn, "ping", NULL, session_ping_answered, s);
	}
}

static void
session_heartbeat_start(struct session *s)
{
	struct timeval tv;

	if (s->heartbeat <= 0)
		return;
	tv.tv_sec = (time_t)s->heartbeat;
	tv.tv_usec = (suseconds_t)((s->heartbeat - (double)tv.tv_sec) * 1e6);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1;
	s->heartbeat_ev = event_new(s->base, -1, EV_PERSIST,
	    session_heartbeat_cb, s);
	if (s->heartbeat_ev == NULL || event_add(s->heartbeat_ev, &tv) == -1)
		fatalx("cannot start the heartbeat");
	amp_conn_counters(s->conn, &s->frames_seen, NULL, NULL, NULL);
}

static const struct amp_command session_commands[] = {
	{ "hello", session_hello, hello_args },
	{ "load", session_load, load_args },
	{ "have", session_have, have_args },
	{ "blob", session_blob, blob_args },
	{ "ship", session_ship, ship_args },
	{ "run", session_run, run_args },
	{ "cancel", session_cancel, NULL },
	{ "ping", session_ping, NULL },
	{ "shutdown", session_shutdown, NULL },
	{ NULL, NULL, NULL }
};

/* ---- the connection ------------------------------------------------------- */

/* Over TLS a close we chose says so (close_notify); a manager then sees
 * an orderly end, not a cut. Only once everything was written. */
static void
session_close_notify(struct session *s, struct amp_conn *c)
{
	struct bufferevent *bev = amp_conn_bev(c);
	SSL *ssl;

	if (!s->ch->tls || !s->polite ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	SSL_shutdown(ssl);
}

static void
session_on_close(struct amp_conn *c, const char *reason, void *ctx)
{
	struct session *s = ctx;

	if (!s->shutting_down && !s->draining)
		log_debug("manager connection closed: %s", reason);
	session_close_notify(s, c);
	s->conn = NULL;
	syncc_set_conn(s->sync, NULL);
	event_base_loopbreak(s->base);
}

static void
session_on_drain(struct amp_conn *c, void *ctx)
{
	struct session *s = ctx;

	(void)c;
	session_list_pump(s);
	session_pump(s);
}

static const struct amp_conn_cbs session_cbs = {
	session_on_close, session_on_drain
};

/*
 * --stdio: SIGTERM, SIGINT and SIGHUP end the worker at once, killing
 * the running test. A daemon's session: SIGTERM (the daemon stopping)
 * lets the running test finish and its result go out, then closes;
 * SIGINT ends it at once; SIGHUP is the daemon's (its logs), not ours.
 */
static void
session_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct session *s = arg;

	(void)what;
	if (s->ch->daemon && sig == SIGHUP)
		return;
	if (s->ch->daemon && sig == SIGTERM) {
		if (!s->draining)
			log_info("the daemon is stopping: finishing the "
			    "running test");
		s->draining = 1;
		session_drain_check(s);
		return;
	}
	log_info("signal %d: exiting", (int)sig);
	s->exit_status = EXIT_INTERRUPTED;
	event_base_loopbreak(s->base);
}

/* ---- the channel on fds 0 and 1 ------------------------------------------ */

static int
same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino &&
	    S_ISSOCK(sa.st_mode);
}

/* Moves the channel above fd 2; then fd 0 reads /dev/null and fd 1 is a
 * copy of fd 2, so that stray prints go where stderr goes. */
static int
stdio_channel(int *in, int *out)
{
	int one = same_file(0, 1), fd;

	if (fcntl(2, F_GETFD) == -1 &&
	    (fd = open("/dev/null", O_WRONLY)) != -1 && fd != 2) {
		dup2(fd, 2);
		close(fd);
	}
	if ((*in = fcntl(0, F_DUPFD_CLOEXEC, 3)) == -1)
		return -1;
	if ((*out = one ? *in : fcntl(1, F_DUPFD_CLOEXEC, 3)) == -1)
		return -1;
	if ((fd = open("/dev/null", O_RDONLY)) == -1 || dup2(fd, 0) == -1 ||
	    dup2(2, 1) == -1)
		return -1;
	if (fd != 0)
		close(fd);
	if (fd_set_nonblock(*in, 1) == -1 || fd_set_nonblock(*out, 1) == -1)
		return -1;
	return 0;
}

static void
session_events(struct session *s)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	size_t i;

	s->pump_ev = event_new(s->base, -1, 0, session_pump_cb, s);
	s->write_ev = event_new(s->base, s->out_fd, EV_WRITE,
	    session_writable_cb, s);
	if (s->pump_ev == NULL || s->write_ev == NULL)
		fatalx("cannot create events");
	for (i = 0; i < DM_NELEM(sigs); i++) {
		s->signals[i] = evsignal_new(s->base, sigs[i],
		    session_signal_cb, s);
		if (s->signals[i] == NULL ||
		    event_add(s->signals[i], NULL) == -1)
			fatalx("cannot watch signal %d", sigs[i]);
	}
}

static void
session_free(struct session *s)
{
	struct batch *b;
	struct lister *l;
	struct waiter *w;
	struct parked *p;
	size_t i;

	/* Kills and reaps a test still running: nobody is left to tell. */
	runner_free(s->runner);
	while ((b = TAILQ_FIRST(&s->batches)) != NULL) {
		TAILQ_REMOVE(&s->batches, b, entry);
		amp_request_drop(b->req);
		free(b->tests);
		free(b);
	}
	while ((l = TAILQ_FIRST(&s->listers)) != NULL) {
		TAILQ_REMOVE(&s->listers, l, entry);
		amp_request_drop(l->req);
		free(l);
	}
	while ((w = TAILQ_FIRST(&s->waiters)) != NULL) {
		TAILQ_REMOVE(&s->waiters, w, entry);
		amp_request_drop(w->req);
		free(w);
	}
	while ((p = TAILQ_FIRST(&s->parked)) != NULL) {
		TAILQ_REMOVE(&s->parked, p, entry);
		amp_request_drop(p->req);
		json_decref(p->box);
		free(p);
	}
	for (i = 0; i < s->nsuites; i++) {
		suite_free(s->suites[i]);
		free(s->shown[i]);
	}
	free(s->suites);
	free(s->shown);
	for (i = 0; i < DM_NELEM(s->signals); i++)
		if (s->signals[i] != NULL)
			event_free(s->signals[i]);
	if (s->heartbeat_ev != NULL)
		event_free(s->heartbeat_ev);
	event_free(s->pump_ev);
	event_free(s->write_ev);
}

/* What the session needs before the first frame: its directories, the
 * cache, and for a daemon's session the session directory as the
 * current one. */
static void
session_prepare(struct session *s, const struct session_channel *ch)
{
	char why[512];

	signal(SIGPIPE, SIG_IGN);
	env_become_subreaper();
	if ((s->ship = shipping_new(ch->cache_dir, ch->cache_limit, why,
	    sizeof why)) == NULL)
		fatalx("%s", why);
	/* The tests' temporary directory goes in the private one too: a
	 * worker that is killed leaves one directory behind, not two. */
	setenv("TMPDIR", shipping_private_dir(s->ship), 1);
	if (workdir_create(why, sizeof why) == -1)
		fatalx("%s", why);
	if (ch->daemon && shipping_enter(s->ship) == -1)
		fatal("cannot enter %s", shipping_session_dir(s->ship));
	if ((s->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
		fatal("/dev/null");
}

int
session_serve(const struct session_channel *ch)
{
	struct session s;

	memset(&s, 0, sizeof s);
	TAILQ_INIT(&s.batches);
	TAILQ_INIT(&s.listers);
	TAILQ_INIT(&s.waiters);
	TAILQ_INIT(&s.parked);
	s.ch = ch;
	s.base = ch->base;
	s.in_fd = ch->in_fd;
	s.out_fd = ch->out_fd;
	session_prepare(&s, ch);
	session_events(&s);
	if (ch->out == ch->in)
		s.conn = amp_conn_new(ch->in, session_commands, &session_cbs,
		    &s);
	else
		s.conn = amp_conn_new_split(ch->in, ch->out, session_commands,
		    &session_cbs, &s);
	amp_conn_set_name(s.conn, ch->peer != NULL ? ch->peer : "manager");
	/* TLS authenticated the manager already; and a daemon may have
	 * read its first frames into the bufferevent before forking us. */
	if (ch->tls)
		amp_conn_set_limit(s.conn, FRAME_LIMIT_DEFAULT);
	amp_conn_pause(s.conn);
	amp_conn_resume(s.conn);
	s.sync = syncc_new();
	syncc_set_conn(s.sync, s.conn);
	event_base_dispatch(s.base);
	if (s.conn != NULL)
		amp_conn_close(s.conn, "worker exiting", 0);
	/* Lets a closing connection finish and free itself. */
	event_base_loop(s.base, EVLOOP_NONBLOCK);
	session_free(&s);
	syncc_inproc_install(NULL);
	syncc_free(s.sync);
	env_kill_adopted();
	shipping_free(s.ship);
	workdir_remove();
	close(s.devnull);
	return s.exit_status;
}

int
session_stdio_main(const char *cache_dir, uint64_t cache_limit)
{
	struct session_channel ch;
	int rc;

	memset(&ch, 0, sizeof ch);
	ch.cache_dir = cache_dir;
	ch.cache_limit = cache_limit;
	if (stdio_channel(&ch.in_fd, &ch.out_fd) == -1)
		fatal("cannot set up the channel on fds 0 and 1");
	if ((ch.base = event_base_new()) == NULL)
		fatalx("cannot create an event base");
	ch.in = bufferevent_socket_new(ch.base, ch.in_fd,
	    BEV_OPT_CLOSE_ON_FREE);
	ch.out = ch.out_fd == ch.in_fd ? ch.in : bufferevent_socket_new(
	    ch.base, ch.out_fd, BEV_OPT_CLOSE_ON_FREE);
	if (ch.in == NULL || ch.out == NULL)
		fatalx("cannot create the manager connection");
	rc = session_serve(&ch);
	event_base_free(ch.base);
	return rc;
}

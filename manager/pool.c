/*
 * pool.c - the workers: starting them, the protocol with them, watching
 * them, and burying them.
 *
 * One slot holds one worker at a time; a worker is an incarnation (its
 * own heap object), so a callback meant for a dead worker can never
 * reach its replacement. A worker is gone when both its connection has
 * closed and its process has been reaped; only then is `lost` called,
 * exactly once, with the signal that killed it and the tail of its
 * stderr. Whatever was still unread on the connection is read first, so
 * a result the worker sent just before dying is never lost.
 *
 * It must never block, never kill a process it has reaped (the pid may
 * be reused), and never call back into the caller for a worker after
 * `lost`. It knows tests only as (suite, index) pairs.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

#define POOL_ERR_TAIL		2048	/* bytes of a worker's stderr kept */
#define POOL_START_TIMEOUT	60.0	/* hello and loads, at most */
#define POOL_REAP_GRACE		0.5	/* closed, not yet exited: then kill */
#define POOL_EOF_GRACE		1.0	/* exited, still open (a grandchild) */
#define POOL_TIMEOUT_GRACE	0.25	/* past a test's limit, in-process: */
#define POOL_TIMEOUT_SLACK	0.1	/* plus this much of the limit */
#define POOL_TICK		0.1	/* the watch timer */

enum wstate { W_STARTING, W_LOADING, W_READY, W_STOPPING };

struct worker {
	struct pool		*pool;
	int			 slot;
	enum wstate		 state;
	struct tp_proc		 proc;
	struct amp_conn		*conn;		/* NULL once closed */
	struct event		*err_ev;
	char			 err[POOL_ERR_TAIL];	/* a ring */
	size_t			 err_len, err_pos;
	int			 reaped, status, conn_closed;
	char			*why;		/* why we ended it, if we did */
	int			 timed_out;
	double			 spawned, last_heard, kill_at, close_at;
	int			 ping_out;
	/* Loading. */
	int			*handle;	/* per suite */
	char			**hash;
	size_t			*count;
	size_t			 loads_left;
	int			 load_failed;
	int			 hello_failed;	/* then its load errors say less */
	/* The test it runs, for limits it cannot keep itself. */
	int			 running;
	double			 deadline;	/* 0: none */
	struct worker_info	 info;
	char			 id[16];
	char			*hostname, *os, *arch, *version;
};

struct pool {
	struct event_base	*base;
	struct pool_config	 cfg;
	const struct pool_cbs	*cbs;
	void			*ctx;
	struct worker		**w;		/* [nslots] */
	struct event		*tick;
};

struct pool_batch {
	struct worker		*w;
	void			*batch;
};

static void	pool_finish(struct worker *);

/* ---- small things --------------------------------------------------------- */

static struct worker *
req_worker(struct amp_request *req)
{
	struct amp_conn *c = amp_request_conn(req);

	return c != NULL ? amp_conn_ctx(c) : NULL;
}

static void
heard(struct worker *w)
{
	w->last_heard = clock_mono();
	w->ping_out = 0;
}

static void
set_why(struct worker *w, const char *why)
{
	if (w->why == NULL)
		w->why = xstrdup(why);
}

/* The suite number of a handle the worker gave us, or -1. */
static int
suite_of_handle(const struct worker *w, long long h)
{
	size_t s;

	for (s = 0; s < w->pool->cfg.nsuites; s++)
		if (w->handle[s] == h)
			return (int)s;
	return -1;
}

static int
suite_of_path(const struct pool *p, const char *path)
{
	size_t s;

	for (s = 0; s < p->cfg.nsuites; s++)
		if (strcmp(p->cfg.suites[s], path) == 0)
			return (int)s;
	return -1;
}

/* ---- what the worker tells us --------------------------------------------- */

static int
h_suite_tests(struct amp_request *req, json_t *box)
{
	struct worker *w = req_worker(req);
	int s;

	if (w == NULL)
		return 0;
	heard(w);
	s = suite_of_path(w->pool, json_get_str(box, "suite", ""));
	if (s < 0) {
		log_warn("%s: a test list for a suite never loaded; ignored",
		    w->id);
		return 0;
	}
	w->pool->cbs->piece(w->pool->ctx, w->slot, (size_t)s, box);
	return 0;
}

/* suite and test of a tell, checked; 0 or -1. */
static int
tell_test(struct worker *w, json_t *box, int *s, uint32_t *idx)
{
	long long t = json_get_int(box, "test", -1);

	*s = suite_of_handle(w, json_get_int(box, "suite", -1));
	if (*s < 0 || t < 0 || t >= (long long)w->count[*s]) {
		log_warn("%s: %s for an unknown test; ignored", w->id,
		    json_get_str(box, "_command", "?"));
		return -1;
	}
	*idx = (uint32_t)t;
	return 0;
}

static int
h_test_started(struct amp_request *req, json_t *box)
{
	struct worker *w = req_worker(req);
	uint32_t idx;
	double limit;
	int s;

	if (w == NULL)
		return 0;
	heard(w);
	if (tell_test(w, box, &s, &idx) == -1)
		return 0;
	limit = w->pool->cbs->started(w->pool->ctx, w->slot, (size_t)s, idx);
	w->running = 1;
	/* Boxed, the worker keeps the limit itself; we only step in when it
	 * is well past, as a backstop. */
	w->deadline = limit <= 0 ? 0 : w->last_heard + limit +
	    POOL_TIMEOUT_GRACE + POOL_TIMEOUT_SLACK * limit +
	    (w->pool->cfg.boxed ? limit : 0);
	return 0;
}

static int
h_test_output(struct amp_request *req, json_t *box)
{
	struct worker *w = req_worker(req);
	const char *stream = json_get_str(box, "stream", "");
	json_t *data = json_object_get(box, "data");
	uint32_t idx;
	int s;

	if (w == NULL)
		return 0;
	heard(w);
	if (tell_test(w, box, &s, &idx) == -1)
		return 0;
	if ((strcmp(stream, "stdout") != 0 && strcmp(stream, "stderr") != 0) ||
	    !json_is_string(data)) {
		log_warn("%s: test_output without a stdout or stderr text; "
		    "ignored", w->id);
		return 0;
	}
	w->pool->cbs->output(w->pool->ctx, w->slot, (size_t)s, idx, stream,
	    json_string_value(data), json_string_length(data));
	return 0;
}

static int
h_test_result(struct amp_request *req, json_t *box)
{
	struct worker *w = req_worker(req);
	uint32_t idx;
	int s;

	if (w == NULL)
		return 0;
	heard(w);
	if (tell_test(w, box, &s, &idx) == -1)
		return 0;
	w->running = 0;
	w->deadline = 0;
	w->pool->cbs->result(w->pool->ctx, w->slot, (size_t)s, idx, box);
	return 0;
}

static int
h_log(struct amp_request *req, json_t *box)
{
	struct worker *w = req_worker(req);
	const char *level = json_get_str(box, "level", "info");
	const char *msg = json_get_str(box, "message", "");

	if (w == NULL)
		return 0;
	heard(w);
	if (strcmp(level, "error") == 0)
		log_error("%s: %s", w->id, msg);
	else if (strcmp(level, "warn") == 0)
		log_warn("%s: %s", w->id, msg);
	else if (strcmp(level, "info") == 0)
		log_info("%s: %s", w->id, msg);
	else
		log_debug("%s: %s", w->id, msg);
	return 0;
}

/* lock, unlock, board_set, board_get, trail: a test of this worker asks;
 * the caller answers. */
static int
h_sync(struct amp_request *req, json_t *box)
{
	struct worker *w = req_worker(req);
	long long t = json_get_int(box, "test", -1);
	int s;

	if (w == NULL)
		return 0;
	heard(w);
	s = suite_of_handle(w, json_get_int(box, "suite", -1));
	if (s < 0 || t < -1 || t >= (long long)w->count[s]) {
		amp_fail(req, AMP_E_BAD_ARGUMENT, "no test %lld in suite %lld",
		    t, json_get_int(box, "suite", -1));
		return 0;
	}
	if (w->pool->cbs->sync == NULL) {
		amp_fail(req, AMP_E_FAILED, "'%s' is not available",
		    amp_request_command(req));
		return 0;
	}
	w->pool->cbs->sync(w->pool->ctx, w->slot, (size_t)s, (long)t, req,
	    box);
	return 0;
}

static const struct amp_arg a_suite_tests[] = {
	{ "suite", AMP_T_STRING, 0 }, { "first", AMP_T_INT, 0 },
	{ "tests", AMP_T_ARRAY, 0 }, { NULL, 0, 0 }
};
static const struct amp_arg a_test[] = {
	{ "suite", AMP_T_INT, 0 }, { "test", AMP_T_INT, 0 }, { NULL, 0, 0 }
};
static const struct amp_arg a_result[] = {
	{ "suite", AMP_T_INT, 0 }, { "test", AMP_T_INT, 0 },
	{ "outcome", AMP_T_STRING, 0 }, { NULL, 0, 0 }
};
static const struct amp_arg a_log[] = {
	{ "message", AMP_T_STRING, 0 }, { NULL, 0, 0 }
};
static const struct amp_arg a_lock[] = {
	{ "name", AMP_T_STRING, 0 }, { "suite", AMP_T_INT, 0 },
	{ "test", AMP_T_INT, 0 }, { NULL, 0, 0 }
};
static const struct amp_arg a_board_set[] = {
	{ "key", AMP_T_STRING, 0 }, { "value", AMP_T_STRING, 0 },
	{ "suite", AMP_T_INT, 0 }, { "test", AMP_T_INT, 0 }, { NULL, 0, 0 }
};
static const struct amp_arg a_board_get[] = {
	{ "key", AMP_T_STRING, 0 }, { "suite", AMP_T_INT, 0 },
	{ "test", AMP_T_INT, 0 }, { NULL, 0, 0 }
};
static const struct amp_arg a_trail[] = {
	{ "name", AMP_T_STRING, 0 }, { "phase", AMP_T_STRING, 0 },
	{ "suite", AMP_T_INT, 0 }, { "test", AMP_T_INT, 0 }, { NULL, 0, 0 }
};

static const struct amp_command pool_table[] = {
	{ "suite_tests", h_suite_tests, a_suite_tests },
	{ "test_started", h_test_started, a_test },
	{ "test_output", h_test_output, a_test },
	{ "test_result", h_test_result, a_result },
	{ "log", h_log, a_log },
	{ "lock", h_sync, a_lock },
	{ "unlock", h_sync, a_lock },
	{ "board_set", h_sync, a_board_set },
	{ "board_get", h_sync, a_board_get },
	{ "trail", h_sync, a_trail },
	{ NULL, NULL, NULL }
};

/* ---- stderr ----------------------------------------------------------------- */

static void
err_keep(struct worker *w, const char *p, size_t n)
{
	size_t k;

	while (n > 0) {
		k = POOL_ERR_TAIL - w->err_pos;
		if (k > n)
			k = n;
		memcpy(w->err + w->err_pos, p, k);
		w->err_pos = (w->err_pos + k) % POOL_ERR_TAIL;
		if (w->err_len < POOL_ERR_TAIL)
			w->err_len = w->err_len + k > POOL_ERR_TAIL ?
			    POOL_ERR_TAIL : w->err_len + k;
		p += k;
		n -= k;
	}
}

static void
err_drain(struct worker *w)
{
	char buf[4096];
	ssize_t n;

	if (w->proc.errfd < 0)
		return;
	while ((n = read(w->proc.errfd, buf, sizeof buf)) > 0) {
		err_keep(w, buf, (size_t)n);
		if (log_get_level() >= LOG_LVL_DEBUG)
			log_debug("%s stderr: %.*s", w->id, (int)n, buf);
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		if (w->err_ev != NULL) {
			event_free(w->err_ev);
			w->err_ev = NULL;
		}
		close(w->proc.errfd);
		w->proc.errfd = -1;
	}
}

static void
err_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	err_drain(arg);
}

/* The last lines of its stderr, at most a few hundred bytes, one line. */
static char *
err_tail(struct worker *w)
{
	char flat[POOL_ERR_TAIL + 1], *p, *out;
	size_t i, start, n = w->err_len, keep = 400;

	start = (w->err_pos + POOL_ERR_TAIL - n) % POOL_ERR_TAIL;
	for (i = 0; i < n; i++)
		flat[i] = w->err[(start + i) % POOL_ERR_TAIL];
	while (n > 0 && (flat[n - 1] == '\n' || flat[n - 1] == '\r'))
		n--;
	flat[n] = '\0';
	p = n > keep ? flat + n - keep : flat;
	if (n > keep && (out = strchr(p, '\n')) != NULL && out[1] != '\0')
		p = out + 1;
	out = utf8_repair(p, strlen(p), &n);
	for (i = 0; i < n; i++)
		if (out[i] == '\n')
			out[i] = '|';
	return out;
}

/* ---- the connection ----------------------------------------------------------- */

static void
on_close(struct amp_conn *c, const char *reason, void *ctx)
{
	struct worker *w = ctx;

	(void)c;
	w->conn = NULL;
	w->conn_closed = 1;
	/* The socket's reason ("connection reset") says less than the wait
	 * status will: the message is made from that when it is reaped. */
	(void)reason;
	if (!w->reaped && w->kill_at == 0)
		w->kill_at = clock_mono() + POOL_REAP_GRACE;
	pool_finish(w);
}

static const struct amp_conn_cbs pool_conn_cbs = { on_close, NULL };

static void
worker_free(struct worker *w)
{
	size_t s;

	if (w->err_ev != NULL)
		event_free(w->err_ev);
	if (w->proc.errfd >= 0)
		close(w->proc.errfd);
	for (s = 0; s < w->pool->cfg.nsuites; s++)
		free(w->hash[s]);
	free(w->hash);
	free(w->handle);
	free(w->count);
	free(w->why);
	free(w->hostname);
	free(w->os);
	free(w->arch);
	free(w->version);
	free(w);
}

/* Both ends are down: tell the caller, once. */
static void
pool_finish(struct worker *w)
{
	struct pool *p = w->pool;
	int expected, timed_out, sig = 0, slot = w->slot;
	char *tail, *why;

	if (!w->conn_closed || !w->reaped)
		return;
	err_drain(w);
	tail = err_tail(w);
	if (WIFSIGNALED(w->status))
		sig = WTERMSIG(w->status);
	if (w->why != NULL)
		why = xstrdup(w->why);
	else if (sig != 0)
		xasprintf(&why, "worker %s (pid %ld) was killed by signal %d "
		    "(SIG%s: %s)", w->id, w->proc.pid, sig,
		    sigabbrev_np(sig) != NULL ? sigabbrev_np(sig) : "?",
		    strsignal(sig));
	else
		xasprintf(&why, "worker %s (pid %ld) exited with status %d",
		    w->id, w->proc.pid, WEXITSTATUS(w->status));
	expected = w->state == W_STOPPING;
	timed_out = w->timed_out;
	p->w[slot] = NULL;
	worker_free(w);
	p->cbs->lost(p->ctx, slot, expected, timed_out, sig, why, tail);
	free(why);
	free(tail);
}

/* ---- asks ------------------------------------------------------------------ */

/* One suite is loaded; when all are, the worker is ready. */
static void
on_load_done(struct worker *w)
{
	if (--w->loads_left > 0 || w->load_failed)
		return;
	w->state = W_READY;
	w->pool->cbs->loaded(w->pool->ctx, w->slot,
	    (const char *const *)w->hash, w->count);
}

static void
on_load(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct worker *w = amp_conn_ctx(c);
	size_t s = (size_t)(uintptr_t)arg;
	char empty[SHA256_HEX_LEN + 1];

	/* A suite without tests is an empty list, not a broken suite: the
	 * run then has nothing to collect (exit 5), as pytest's. */
	if (err != NULL && strcmp(err->code, "NO_TESTS") == 0) {
		heard(w);
		sha256_hex("", 0, empty);
		w->handle[s] = -1;
		w->count[s] = 0;
		w->hash[s] = xstrdup(empty);
		on_load_done(w);
		return;
	}
	if (err != NULL) {
		if (strcmp(err->code, AMP_E_CONNECTION_LOST) != 0 &&
		    !w->load_failed && !w->hello_failed) {
			w->load_failed = 1;
			w->pool->cbs->load_failed(w->pool->ctx, w->slot,
			    err->code, err->description);
		}
		return;
	}
	heard(w);
	w->handle[s] = (int)json_get_int(ans, "suite", -1);
	w->count[s] = (size_t)json_get_int(ans, "count", 0);
	w->hash[s] = xstrdup(json_get_str(ans, "hash", ""));
	on_load_done(w);
}

static char *
ans_str(json_t *ans, const char *key)
{
	return xstrdup(json_get_str(ans, key, "?"));
}

static void
on_hello(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct worker *w = amp_conn_ctx(c);

	(void)arg;
	if (err != NULL) {
		w->hello_failed = 1;
		if (strcmp(err->code, AMP_E_CONNECTION_LOST) != 0) {
			set_why(w, err->description);
			pool_kill(w->pool, w->slot, err->description);
		}
		return;
	}
	heard(w);
	amp_conn_set_limit(c, FRAME_LIMIT_DEFAULT);
	w->hostname = ans_str(ans, "hostname");
	w->os = ans_str(ans, "os");
	w->arch = ans_str(ans, "arch");
	w->version = ans_str(ans, "version");
	w->info.id = w->id;
	w->info.spec = "popen";
	w->info.hostname = w->hostname;
	w->info.os = w->os;
	w->info.arch = w->arch;
	w->info.cpus = (int)json_get_int(ans, "cpus", 0);
	w->info.pid = (long)json_get_int(ans, "pid", w->proc.pid);
	w->info.version = w->version;
	if (w->state == W_STARTING)
		w->state = W_LOADING;
	w->pool->cbs->up(w->pool->ctx, w->slot, &w->info);
}

/* The loads go right behind hello, without waiting for its answer: the
 * worker handles asks in order, and start-up with many workers on few
 * cores is a round trip shorter. */
static void
pool_ask_loads(struct worker *w, const int *list)
{
	size_t s;
	json_t *a;

	w->loads_left = w->pool->cfg.nsuites;
	for (s = 0; s < w->pool->cfg.nsuites; s++) {
		a = json_pack("{s:s, s:b}", "path", w->pool->cfg.suites[s],
		    "list", list != NULL && list[s]);
		amp_ask(w->conn, "load", a, on_load, (void *)(uintptr_t)s);
	}
}

static void
on_run(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct pool_batch *b = arg;
	struct worker *w = b->w;
	int status = 0;

	(void)c;
	if (err != NULL) {
		if (strcmp(err->code, AMP_E_CONNECTION_LOST) == 0)
			status = -1;
		else {
			log_warn("%s: run failed: %s: %s", w->id, err->code,
			    err->description);
			status = 1;
		}
	} else {
		heard(w);
		status = json_get_bool(ans, "cancelled", 0) ? 1 : 0;
	}
	w->pool->cbs->batch_done(w->pool->ctx, w->slot, b->batch, status);
	free(b);
}

static void
on_ping(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct worker *w = arg;

	(void)c;
	if (err == NULL || strcmp(err->code, AMP_E_CONNECTION_LOST) != 0)
		heard(w);
	(void)ans;
}

static void
on_shutdown(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	(void)ans;
	(void)arg;
	if (err == NULL || strcmp(err->code, AMP_E_CONNECTION_LOST) != 0)
		amp_conn_close(c, "shut down", 1);
}

static void
on_cancel(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	(void)c;
	(void)ans;
	(void)err;
	(void)arg;
}

/* ---- the watch -------------------------------------------------------------- */

static void
watch_one(struct pool *p, struct worker *w, double now)
{
	double h = p->cfg.heartbeat;
	char why[256];

	if (w->kill_at > 0 && now >= w->kill_at && !w->reaped) {
		w->kill_at = 0;
		tp_kill(&w->proc, SIGKILL);
	}
	if (w->close_at > 0 && now >= w->close_at && w->conn != NULL) {
		w->close_at = 0;
		amp_conn_close(w->conn, "the worker exited", 0);
	}
	if (w->conn == NULL || w->state == W_STOPPING)
		return;
	if (w->running && w->deadline > 0 && now > w->deadline) {
		w->timed_out = 1;
		pool_kill(p, w->slot, "its test ran past its time limit");
		return;
	}
	if (w->state < W_READY && now - w->spawned > POOL_START_TIMEOUT) {
		snprintf(why, sizeof why, "worker %s did not start within "
		    "%.0f s", w->id, POOL_START_TIMEOUT);
		pool_kill(p, w->slot, why);
		return;
	}
	/* Starting has its own limit (loading a big suite takes time), and
	 * in-process a running test holds the worker's loop. */
	if (h <= 0 || w->state < W_READY || (w->running && !p->cfg.boxed))
		return;
	if (now - w->last_heard > h) {
		snprintf(why, sizeof why, "worker %s stopped answering (no "
		    "heartbeat for %.1f s)", w->id, now - w->last_heard);
		pool_kill(p, w->slot, why);
	} else if (now - w->last_heard > h / 3 && !w->ping_out) {
		w->ping_out = 1;
		amp_ask(w->conn, "ping", NULL, on_ping, w);
	}
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	double now = clock_mono();
	int i;

	(void)fd;
	(void)what;
	for (i = 0; i < p->cfg.nslots; i++)
		if (p->w[i] != NULL)
			watch_one(p, p->w[i], now);
}

/* ---- the pool ---------------------------------------------------------------- */

struct pool *
pool_new(struct event_base *base, const struct pool_config *cfg,
    const struct pool_cbs *cbs, void *ctx)
{
	struct pool *p = xcalloc(1, sizeof *p);
	struct timeval tv = { 0, (int)(POOL_TICK * 1e6) };

	p->base = base;
	p->cfg = *cfg;
	p->cbs = cbs;
	p->ctx = ctx;
	p->w = xcalloc((size_t)cfg->nslots, sizeof *p->w);
	p->tick = event_new(base, -1, EV_PERSIST, tick_cb, p);
	event_add(p->tick, &tv);
	return p;
}

/* Only when every worker is gone: the caller waits for that. */
void
pool_free(struct pool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->cfg.nslots; i++)
		if (p->w[i] != NULL)
			fatalx("pool: freed with worker %s alive",
			    p->w[i]->id);
	event_free(p->tick);
	free(p->w);
	free(p);
}

static struct amp_conn *
pool_connect(struct pool *p, struct worker *w)
{
	struct bufferevent *bev;

	bev = bufferevent_socket_new(p->base, w->proc.fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatalx("pool: cannot create a bufferevent");
	w->proc.fd = -1;
	return amp_conn_new(bev, pool_table, &pool_conn_cbs, w);
}

static json_t *
pool_hello_args(const struct pool *p, const struct worker *w)
{
	json_t *a = json_pack("{s:i, s:s, s:s, s:s, s:i, s:b, s:f, s:f}",
	    "protocol", DM_PROTOCOL_VERSION, "manager", DM_VERSION,
	    "run_id", p->cfg.run_id, "worker_id", w->id,
	    "worker_count", p->cfg.worker_count, "boxed", p->cfg.boxed,
	    "timeout", p->cfg.timeout, "timeout_multiplier",
	    p->cfg.timeout_multiplier);

	if (a == NULL)
		fatalx("pool: cannot build hello");
	return a;
}

int
pool_start(struct pool *p, int slot, const int *list, char *why,
    size_t whylen)
{
	struct worker *w;
	size_t n = p->cfg.nsuites;

	if (slot < 0 || slot >= p->cfg.nslots || p->w[slot] != NULL) {
		snprintf(why, whylen, "slot %d is taken", slot);
		return -1;
	}
	w = xcalloc(1, sizeof *w);
	w->pool = p;
	w->slot = slot;
	w->proc.errfd = -1;
	snprintf(w->id, sizeof w->id, "w%d", slot);
	if (tp_popen_start(p->cfg.worker, &w->proc, why, whylen) == -1) {
		free(w);
		return -1;
	}
	w->handle = xcalloc(n + 1, sizeof *w->handle);
	w->hash = xcalloc(n + 1, sizeof *w->hash);
	w->count = xcalloc(n + 1, sizeof *w->count);
	w->spawned = w->last_heard = clock_mono();
	w->err_ev = event_new(p->base, w->proc.errfd, EV_READ | EV_PERSIST,
	    err_cb, w);
	event_add(w->err_ev, NULL);
	w->conn = pool_connect(p, w);
	amp_conn_set_name(w->conn, w->id);
	p->w[slot] = w;
	amp_ask(w->conn, "hello", pool_hello_args(p, w), on_hello, NULL);
	pool_ask_loads(w, list);
	return 0;
}

int
pool_run(struct pool *p, int slot, size_t suite, const uint32_t *idx,
    size_t n, void *batch)
{
	return pool_run_group(p, slot, suite, NULL, idx, n, batch);
}

int
pool_run_group(struct pool *p, int slot, size_t suite, const char *group,
    const uint32_t *idx, size_t n, void *batch)
{
	struct worker *w = slot >= 0 && slot < p->cfg.nslots ? p->w[slot] :
	    NULL;
	struct pool_batch *b;
	json_t *tests, *a;
	size_t i;

	if (w == NULL || w->conn == NULL || w->state != W_READY)
		return -1;
	tests = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(tests, json_integer(idx[i]));
	a = json_pack("{s:i, s:o}", "suite", w->handle[suite], "tests", tests);
	if (group != NULL)
		json_object_set_new(a, "group", json_string(group));
	b = xmalloc(sizeof *b);
	b->w = w;
	b->batch = batch;
	if (amp_ask(w->conn, "run", a, on_run, b) == -1)
		return 0;	/* on_run runs from the loop, as lost */
	return 0;
}

static void
on_fetch(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct worker *w = amp_conn_ctx(c);
	size_t s = (size_t)(uintptr_t)arg;

	(void)ans;
	if (err != NULL && strcmp(err->code, AMP_E_CONNECTION_LOST) == 0)
		return;
	heard(w);
	w->pool->cbs->listed(w->pool->ctx, w->slot, s,
	    err != NULL ? err->description : NULL);
}

void
pool_fetch_list(struct pool *p, int slot, size_t suite)
{
	struct worker *w = p->w[slot];

	if (w == NULL || w->conn == NULL || w->state != W_READY)
		return;
	amp_ask(w->conn, "load", json_pack("{s:s, s:b}", "path",
	    p->cfg.suites[suite], "list", 1), on_fetch,
	    (void *)(uintptr_t)suite);
}

void
pool_cancel(struct pool *p, int slot)
{
	struct worker *w = p->w[slot];

	if (w != NULL && w->conn != NULL && w->state == W_READY)
		amp_ask(w->conn, "cancel", NULL, on_cancel, NULL);
}

void
pool_shutdown(struct pool *p, int slot, double grace)
{
	struct worker *w = p->w[slot];

	if (w == NULL || w->state == W_STOPPING)
		return;
	w->state = W_STOPPING;
	if (w->kill_at == 0 || w->kill_at > clock_mono() + grace)
		w->kill_at = clock_mono() + grace;
	if (w->conn != NULL)
		amp_ask(w->conn, "shutdown", NULL, on_shutdown, NULL);
}

void
pool_kill(struct pool *p, int slot, const char *why)
{
	struct worker *w = p->w[slot];

	if (w == NULL)
		return;
	set_why(w, why);
	if (!w->reaped)
		tp_kill(&w->proc, SIGKILL);
	/* What it wrote before it died is still read: close comes later,
	 * when the socket says EOF or the reap says it is gone. */
}

void
pool_kill_all(struct pool *p)
{
	int i;

	for (i = 0; i < p->cfg.nslots; i++)
		if (p->w[i] != NULL) {
			p->w[i]->state = W_STOPPING;
			pool_kill(p, i, "killed");
		}
}

int
pool_alive(const struct pool *p, int slot)
{
	return slot >= 0 && slot < p->cfg.nslots && p->w[slot] != NULL;
}

int
pool_nalive(const struct pool *p)
{
	int i, n = 0;

	for (i = 0; i < p->cfg.nslots; i++)
		n += p->w[i] != NULL;
	return n;
}

const struct worker_info *
pool_info(const struct pool *p, int slot)
{
	struct worker *w = p->w[slot];

	return w != NULL && w->info.id != NULL ? &w->info : NULL;
}

void
pool_reap(struct pool *p)
{
	struct worker *w;
	pid_t pid;
	int st, i;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < p->cfg.nslots; i++) {
			w = p->w[i];
			if (w == NULL || w->proc.pid != pid || w->reaped)
				continue;
			w->reaped = 1;
			w->status = st;
			w->kill_at = 0;
			/* Read what is left before closing: a result sent
			 * just before the end must not be lost. */
			if (!w->conn_closed)
				w->close_at = clock_mono() + POOL_EOF_GRACE;
			pool_finish(w);
			break;
		}
	}
}

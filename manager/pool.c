/*
 * pool.c - the workers: starting them, the protocol with them, watching
 * them, and burying them.
 *
 * One slot holds one worker at a time; a worker is an incarnation (its
 * own heap object), so a callback meant for a dead worker can never
 * reach its replacement. A worker is reached through its slot's --tx
 * spec: a child process (popen, ssh, exec) whose stdin and stdout are
 * our socket, or a TCP connection to a daemon (tcp). A worker is gone
 * when both its connection has closed and its process, if it has one,
 * has been reaped; only then is `lost` called, exactly once, with the
 * signal that killed it and the tail of its stderr. Whatever was still
 * unread on the connection is read first, so a result the worker sent
 * just before dying is never lost.
 *
 * A local (popen) worker loads suites by path, its loads right behind
 * hello. Every other worker is on a machine whose files are not ours:
 * once hello is answered it is brought up to date by content (ship.c),
 * one worker of a host group at a time so that a host's cache receives
 * each blob once, and loads by sha256. A far worker is also pinged now
 * and then to measure the round trip the scheduler covers with work in
 * flight; an unanswered hello (a daemon with no free slot) is a worker
 * still starting, never a hung one.
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
#include <event2/dns.h>
#include <event2/event.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

#define POOL_ERR_TAIL		2048	/* bytes of a worker's stderr kept */
#define POOL_START_TIMEOUT	60.0	/* hello and loads, at most; far away,
					   loads without progress */
#define POOL_REAP_GRACE		0.5	/* closed, not yet exited: then kill */
#define POOL_EOF_GRACE		1.0	/* exited, still open (a grandchild) */
#define POOL_TIMEOUT_GRACE	0.25	/* past a test's limit, in-process: */
#define POOL_TIMEOUT_SLACK	0.1	/* plus this much of the limit */
#define POOL_TICK		0.1	/* the watch timer */
#define POOL_RTT_EVERY		2.0	/* seconds between round-trip pings */
#define POOL_RTT_SAMPLES	8	/* the round trip: the least of these */

enum wstate {
	W_CONNECTING,		/* tcp: resolving, connecting, TLS */
	W_STARTING,		/* hello asked, not answered */
	W_SHIPPING,		/* far away: have, blobs, ship */
	W_LOADING,		/* loads asked */
	W_READY,
	W_STOPPING,
};

struct worker {
	struct pool		*pool;
	int			 slot;
	enum wstate		 state;
	const struct opt_slot	*sc;
	enum tx_kind		 kind;
	int			 remote;	/* suites by content */
	int			 has_proc;	/* a child of ours */
	struct tp_proc		 proc;
	struct tp_tcp		*connecting;
	struct amp_conn		*conn;		/* NULL once closed */
	struct event		*err_ev;
	char			 err[POOL_ERR_TAIL];	/* a ring */
	size_t			 err_len, err_pos;
	int			 reaped, status, conn_closed;
	char			*why;		/* why we ended it, if we did */
	char			*close_reason;	/* the connection's */
	int			 timed_out;
	int			 host_lost;	/* not our doing, not its test's */
	int			 came_up;	/* hello was answered */
	int			 unreachable;	/* tcp=: never connected */
	double			 spawned, last_heard, kill_at, close_at;
	int			 ping_out;
	/* Shipping. */
	struct shipper		*shipper;
	int			 cache;		/* hello said it keeps blobs */
	int			 gate;		/* holds its group's gate */
	/* The round trip. */
	double			 rtt_sent, rtt_next;
	double			 rtt[POOL_RTT_SAMPLES];
	int			 nrtt;
	unsigned		 started, rtt_started;	/* tests begun */
	/* Loading. */
	const char		*const *load_name;	/* per suite, popen */
	int			*handle;	/* per suite */
	char			**hash;
	size_t			*count;
	size_t			 loads_left;
	int			 load_failed;
	int			 hello_failed;	/* then its load errors say less */
	int			*list;		/* per suite: send its test list */
	/* The test it runs, for limits it cannot keep itself. */
	int			 running;
	double			 deadline;	/* 0: none */
	struct worker_info	 info;
	char			*hostname, *os, *arch, *version, *tmpdir;
};

struct pool {
	struct event_base	*base;
	struct pool_config	 cfg;
	const struct pool_cbs	*cbs;
	void			*ctx;
	struct worker		**w;		/* [nslots] */
	struct event		*tick;
	struct evdns_base	*dns;		/* made when a tcp= needs it */
	int			*gate;		/* per group: the slot shipping,
						   or -1 */
	int			 ngroups;
};

struct pool_batch {
	struct worker		*w;
	void			*batch;
};

static void	pool_finish(struct worker *);
static void	pool_hard_stop(struct worker *);
static void	pool_ship_next(struct pool *, int group);
static void	on_rtt_ping(struct amp_conn *, json_t *,
		    const struct amp_error *, void *);

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

/* A test list names its suite as the load did: by path, or by the name
 * a shipped suite was installed under. */
static int
suite_of_name(const struct worker *w, const char *name)
{
	size_t s;

	for (s = 0; s < w->pool->cfg.nsuites; s++)
		if (w->remote ? strcmp(ship_suite_name(w->pool->cfg.ship, s),
		    name) == 0 : strcmp(w->load_name[s], name) == 0)
			return (int)s;
	return -1;
}

static void
rtt_sample(struct worker *w, double rtt)
{
	int i;

	if (w->nrtt == POOL_RTT_SAMPLES) {
		for (i = 1; i < POOL_RTT_SAMPLES; i++)
			w->rtt[i - 1] = w->rtt[i];
		w->nrtt--;
	}
	w->rtt[w->nrtt++] = rtt;
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
	s = suite_of_name(w, json_get_str(box, "suite", ""));
	if (s < 0) {
		log_warn("%s: a test list for a suite never loaded; ignored",
		    w->sc->id);
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
		log_warn("%s: %s for an unknown test; ignored", w->sc->id,
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
	w->started++;
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
		    "ignored", w->sc->id);
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
		log_error("%s: %s", w->sc->id, msg);
	else if (strcmp(level, "warn") == 0)
		log_warn("%s: %s", w->sc->id, msg);
	else if (strcmp(level, "info") == 0)
		log_info("%s: %s", w->sc->id, msg);
	else
		log_debug("%s: %s", w->sc->id, msg);
	return 0;
}

/* The worker's heartbeat: answered at once, from the loop. */
static int
h_ping(struct amp_request *req, json_t *box)
{
	struct worker *w = req_worker(req);

	(void)box;
	if (w != NULL)
		heard(w);
	amp_answer(req, json_pack("{s:f}", "time", clock_mono()));
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
	{ "ping", h_ping, NULL },
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
			log_debug("%s stderr: %.*s", w->sc->id, (int)n, buf);
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
	/* A child's socket reason ("closed by peer") says less than its
	 * wait status will; a daemon's connection has only the reason. */
	if (w->close_reason == NULL)
		w->close_reason = xstrdup(reason);
	if (!w->has_proc && w->why == NULL && w->state != W_STOPPING)
		w->host_lost = 1;
	if (w->has_proc && !w->reaped && w->kill_at == 0)
		w->kill_at = clock_mono() + POOL_REAP_GRACE;
	pool_finish(w);
}

static void
on_drain(struct amp_conn *c, void *ctx)
{
	struct worker *w = ctx;

	(void)c;
	if (w->shipper != NULL && w->state == W_SHIPPING) {
		/* Blobs going out are progress, though nothing comes in. */
		heard(w);
		shipper_drain(w->shipper);
	}
}

static const struct amp_conn_cbs pool_conn_cbs = { on_close, on_drain };

static void
worker_free(struct worker *w)
{
	size_t s;

	if (w->err_ev != NULL)
		event_free(w->err_ev);
	if (w->proc.errfd >= 0)
		close(w->proc.errfd);
	if (w->proc.fd >= 0)
		close(w->proc.fd);
	tp_tcp_cancel(w->connecting);
	shipper_free(w->shipper);
	for (s = 0; s < w->pool->cfg.nsuites; s++)
		free(w->hash[s]);
	free(w->hash);
	free(w->handle);
	free(w->count);
	free(w->list);
	free(w->why);
	free(w->close_reason);
	free(w->hostname);
	free(w->os);
	free(w->arch);
	free(w->version);
	free(w->tmpdir);
	free(w);
}

/* Why a worker ended, in a sentence for the user. */
static char *
loss_why(struct worker *w, int sig)
{
	char *why, *detail;

	if (w->why != NULL)
		detail = xstrdup(w->why);
	else if (!w->has_proc)
		xasprintf(&detail, "connection %s", w->close_reason != NULL ?
		    w->close_reason : "closed");
	else if (sig != 0)
		xasprintf(&detail, "worker %s (pid %ld) was killed by signal "
		    "%d (SIG%s: %s)", w->sc->id, w->proc.pid, sig,
		    sigabbrev_np(sig) != NULL ? sigabbrev_np(sig) : "?",
		    strsignal(sig));
	else
		xasprintf(&detail, "worker %s (pid %ld) exited with status %d",
		    w->sc->id, w->proc.pid, WEXITSTATUS(w->status));
	/* A far worker that went away without our doing: its host, or the
	 * way to it, is what failed as far as we can tell. */
	if (w->remote && w->came_up &&
	    (w->host_lost || (w->why == NULL && w->has_proc))) {
		xasprintf(&why, "host lost (%s: %s)", w->sc->spec, detail);
		free(detail);
		return why;
	}
	return detail;
}

/* Both ends are down: tell the caller, once. */
static void
pool_finish(struct worker *w)
{
	struct pool *p = w->pool;
	struct pool_loss loss;
	int sig = 0, slot = w->slot;
	char *tail, *why;

	if (!w->conn_closed || !w->reaped)
		return;
	err_drain(w);
	tail = err_tail(w);
	if (w->has_proc && WIFSIGNALED(w->status))
		sig = WTERMSIG(w->status);
	why = loss_why(w, sig);
	memset(&loss, 0, sizeof loss);
	loss.expected = w->state == W_STOPPING;
	loss.timed_out = w->timed_out;
	loss.signal = w->host_lost ? 0 : sig;
	loss.came_up = w->came_up;
	loss.remote = w->remote;
	loss.unreachable = w->unreachable;
	loss.why = why;
	loss.err_tail = tail;
	if (w->gate) {
		p->gate[w->sc->group] = -1;
		w->gate = 0;
	}
	p->w[slot] = NULL;
	worker_free(w);
	p->cbs->lost(p->ctx, slot, &loss);
	free(why);
	free(tail);
	pool_ship_next(p, p->cfg.slots[slot].group);
}

/* ---- asks ------------------------------------------------------------------ */

static void
pool_shipped(struct worker *w)
{
	uint64_t bytes = 0;
	size_t sent = 0, cached = 0;

	if (w->shipper == NULL)
		return;
	shipper_stats(w->shipper, &bytes, &sent, &cached);
	w->pool->cbs->shipped(w->pool->ctx, w->slot, bytes, sent, cached);
}

/* One suite is loaded; when all are, the worker is ready. */
static void
on_load_done(struct worker *w)
{
	struct pool *p = w->pool;

	if (--w->loads_left > 0 || w->load_failed)
		return;
	w->state = W_READY;
	if (w->gate) {
		/* Its loads are answered: every blob is in the host's cache,
		 * and the next worker of the group finds them there. */
		p->gate[w->sc->group] = -1;
		w->gate = 0;
		pool_ship_next(p, w->sc->group);
	}
	pool_shipped(w);
	p->cbs->loaded(p->ctx, w->slot, (const char *const *)w->hash,
	    w->count);
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
		    !w->load_failed && !w->hello_failed &&
		    w->state != W_STOPPING) {
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

static json_t *
load_args(const struct worker *w, size_t s, int list)
{
	const struct ship *sh = w->pool->cfg.ship;

	if (w->remote)
		return json_pack("{s:s, s:s, s:b}", "sha256",
		    ship_suite_sha256(sh, s), "name", ship_suite_name(sh, s),
		    "list", list);
	return json_pack("{s:s, s:b}", "path", w->load_name[s], "list", list);
}

/* A local worker's loads go right behind hello, without waiting for its
 * answer: the worker handles asks in order, and start-up with many
 * workers on few cores is a round trip shorter. A far one's follow its
 * blobs. */
static void
pool_ask_loads(struct worker *w)
{
	size_t s;

	w->loads_left = w->pool->cfg.nsuites;
	if (w->state == W_SHIPPING)
		w->state = W_LOADING;
	for (s = 0; s < w->pool->cfg.nsuites; s++)
		amp_ask(w->conn, "load", load_args(w, s, w->list[s]), on_load,
		    (void *)(uintptr_t)s);
}

static void
on_shipper(void *arg, int event, const char *why)
{
	struct worker *w = arg;

	if (w->state == W_STOPPING || w->conn == NULL)
		return;
	if (event == SHIP_FAILED) {
		/* A connection going away says why better than a blob it
		 * could not take. */
		if (amp_conn_closing(w->conn))
			return;
		set_why(w, why);
		pool_kill(w->pool, w->slot, why);
		return;
	}
	heard(w);
	pool_ask_loads(w);
}

/* A far worker that said hello starts its transfer, unless another of
 * its group is sending the same blobs into the same host's cache right
 * now. Without a cache there is nothing to share: it goes at once. */
static void
pool_ship(struct worker *w)
{
	struct pool *p = w->pool;
	int g = w->sc->group;

	if (w->cache) {
		if (p->gate[g] >= 0 && p->gate[g] != w->slot)
			return;		/* pool_ship_next wakes it */
		p->gate[g] = w->slot;
		w->gate = 1;
	}
	heard(w);
	w->shipper = shipper_start(p->cfg.ship, w->conn, w->cache, on_shipper,
	    w);
}

static void
pool_ship_next(struct pool *p, int group)
{
	int i;

	if (group < 0 || group >= p->ngroups || p->gate[group] >= 0)
		return;
	for (i = 0; i < p->cfg.nslots; i++)
		if (p->w[i] != NULL && p->w[i]->sc->group == group &&
		    p->w[i]->state == W_SHIPPING && p->w[i]->shipper == NULL &&
		    p->w[i]->conn != NULL) {
			pool_ship(p->w[i]);
			return;
		}
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
	double now = clock_mono();

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
	w->came_up = 1;
	/* hello's own round trip holds a daemon's session start, or ssh's:
	 * the first sample is a ping now, while the worker has nothing
	 * else to do. A sample too high would have the scheduler think the
	 * worker's first tests cost nothing. */
	if (w->remote) {
		w->rtt_sent = now;
		w->rtt_next = now + POOL_RTT_EVERY;
		amp_ask(c, "ping", NULL, on_rtt_ping, w);
	}
	amp_conn_set_limit(c, FRAME_LIMIT_DEFAULT);
	w->hostname = ans_str(ans, "hostname");
	w->os = ans_str(ans, "os");
	w->arch = ans_str(ans, "arch");
	w->version = ans_str(ans, "version");
	w->cache = json_get_bool(ans, "cache", 0);
	w->info.id = w->sc->id;
	w->info.spec = w->sc->spec;
	w->info.hostname = w->hostname;
	w->info.os = w->os;
	w->info.arch = w->arch;
	w->info.cpus = (int)json_get_int(ans, "cpus", 0);
	w->info.pid = (long)json_get_int(ans, "pid", w->proc.pid);
	w->info.version = w->version;
	/* A worker that keeps its TMPDIR in a session root names the root:
	 * killed, it leaves the root behind. */
	if (json_get_str(ans, "root", NULL) != NULL)
		w->tmpdir = xstrdup(json_get_str(ans, "root", NULL));
	else if (json_get_str(ans, "tmpdir", NULL) != NULL)
		w->tmpdir = xstrdup(json_get_str(ans, "tmpdir", NULL));
	w->info.tmpdir = w->tmpdir;
	if (w->state == W_STARTING)
		w->state = w->remote ? W_SHIPPING : W_LOADING;
	w->pool->cbs->up(w->pool->ctx, w->slot, &w->info);
	if (w->state == W_SHIPPING && w->conn != NULL)
		pool_ship(w);
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
			log_warn("%s: run failed: %s: %s", w->sc->id, err->code,
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
	(void)ans;
	if (err != NULL && strcmp(err->code, AMP_E_CONNECTION_LOST) == 0)
		return;
	heard(w);
}

/* A round-trip ping: only its answer's delay matters. */
static void
on_rtt_ping(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct worker *w = arg;

	(void)c;
	(void)ans;
	if (err != NULL && strcmp(err->code, AMP_E_CONNECTION_LOST) == 0)
		return;
	heard(w);
	/* In-process, a test that ran meanwhile held the answer back: the
	 * delay is the test's, not the network's. */
	if (err == NULL && w->rtt_sent > 0 && (w->pool->cfg.boxed ||
	    (w->started == w->rtt_started && !w->running)))
		rtt_sample(w, clock_mono() - w->rtt_sent);
	w->rtt_sent = 0;
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

static int
watch_start(struct pool *p, struct worker *w, double now)
{
	char why[256];

	/* A local worker has a minute from its start to be ready. A far one
	 * may wait for a free slot (hello unanswered) as long as it takes;
	 * once up, it must keep making progress. */
	if (w->state >= W_READY)
		return 0;
	if (!w->remote && now - w->spawned > POOL_START_TIMEOUT)
		snprintf(why, sizeof why, "worker %s did not start within "
		    "%.0f s", w->sc->id, POOL_START_TIMEOUT);
	else if (w->remote && w->came_up && w->shipper != NULL &&
	    now - w->last_heard > POOL_START_TIMEOUT)
		snprintf(why, sizeof why, "worker %s made no progress loading "
		    "for %.0f s", w->sc->id, POOL_START_TIMEOUT);
	else
		return 0;
	pool_kill(p, w->slot, why);
	return 1;
}

static void
watch_one(struct pool *p, struct worker *w, double now)
{
	double h = p->cfg.heartbeat;
	char why[256];

	if (w->kill_at > 0 && now >= w->kill_at) {
		w->kill_at = 0;
		pool_hard_stop(w);
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
	if (watch_start(p, w, now))
		return;
	if (w->remote && w->state == W_READY && w->rtt_sent == 0 &&
	    now >= w->rtt_next && (p->cfg.boxed || !w->running)) {
		w->rtt_sent = now;
		w->rtt_started = w->started;
		w->rtt_next = now + POOL_RTT_EVERY;
		amp_ask(w->conn, "ping", NULL, on_rtt_ping, w);
	}
	/* Starting has its own limit (loading a big suite takes time), and
	 * in-process a running test holds the worker's loop. */
	if (h <= 0 || w->state < W_READY || (w->running && !p->cfg.boxed))
		return;
	if (now - w->last_heard > h) {
		snprintf(why, sizeof why, "%s stopped answering (no heartbeat "
		    "for %.1f s)", w->remote ? "the worker's host" :
		    "the worker", now - w->last_heard);
		w->host_lost = w->remote;
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
	int i;

	p->base = base;
	p->cfg = *cfg;
	p->cbs = cbs;
	p->ctx = ctx;
	p->w = xcalloc((size_t)cfg->nslots, sizeof *p->w);
	for (i = 0; i < cfg->nslots; i++)
		if (cfg->slots[i].group >= p->ngroups)
			p->ngroups = cfg->slots[i].group + 1;
	p->gate = xcalloc((size_t)p->ngroups + 1, sizeof *p->gate);
	for (i = 0; i < p->ngroups; i++)
		p->gate[i] = -1;
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
			    p->w[i]->sc->id);
	event_free(p->tick);
	if (p->dns != NULL)
		evdns_base_free(p->dns, 1);
	free(p->gate);
	free(p->w);
	free(p);
}

static json_t *
pool_hello_args(const struct pool *p, const struct worker *w)
{
	const struct txspec *tx = w->sc->tx;
	json_t *env;
	size_t i;
	json_t *a = json_pack("{s:i, s:s, s:s, s:s, s:i, s:b, s:f, s:f}",
	    "protocol", DM_PROTOCOL_VERSION, "manager", DM_VERSION,
	    "run_id", p->cfg.run_id, "worker_id", w->sc->id,
	    "worker_count", p->cfg.worker_count, "boxed", p->cfg.boxed,
	    "timeout", p->cfg.timeout, "timeout_multiplier",
	    p->cfg.timeout_multiplier);

	if (a == NULL)
		fatalx("pool: cannot build hello");
	if (p->cfg.heartbeat > 0)
		json_object_set_new(a, "heartbeat",
		    json_real(p->cfg.heartbeat));
	if (tx == NULL)
		return a;
	if (tx->nenv > 0) {
		env = json_object();
		for (i = 0; i < tx->nenv; i++)
			json_object_set_new(env, tx->env[i].name,
			    json_string_lossy(tx->env[i].value,
			    strlen(tx->env[i].value)));
		json_object_set_new(a, "env", env);
	}
	if (tx->chdir != NULL)
		json_object_set_new(a, "chdir", json_string_lossy(tx->chdir,
		    strlen(tx->chdir)));
	if (tx->has_nice)
		json_object_set_new(a, "nice", json_integer(tx->nice));
	return a;
}

/* The channel is up: greet the worker. */
static void
pool_greet(struct pool *p, struct worker *w, struct bufferevent *bev)
{
	w->conn = amp_conn_new(bev, pool_table, &pool_conn_cbs, w);
	amp_conn_set_name(w->conn, w->sc->id);
	w->state = W_STARTING;
	w->last_heard = clock_mono();
	amp_ask(w->conn, "hello", pool_hello_args(p, w), on_hello, NULL);
	if (!w->remote)
		pool_ask_loads(w);
}

static void
on_connected(void *arg, struct bufferevent *bev, const char *why)
{
	struct worker *w = arg;

	/* why lives in the connect: keep it before that is freed. */
	if (bev == NULL) {
		set_why(w, why);
		w->unreachable = !tp_tcp_reached(w->connecting);
	}
	tp_tcp_cancel(w->connecting);
	w->connecting = NULL;
	if (bev == NULL) {
		w->conn_closed = 1;
		pool_finish(w);
		return;
	}
	pool_greet(w->pool, w, bev);
}

static int
pool_spawn(struct pool *p, struct worker *w, char *why, size_t whylen)
{
	const struct txspec *tx = w->sc->tx;

	switch (w->kind) {
	case TX_POPEN:
		return tp_popen_start(p->cfg.worker, &w->proc, why, whylen);
	case TX_SSH:
		return tp_ssh_start(tx, p->cfg.ssh_command, &w->proc, why,
		    whylen);
	case TX_EXEC:
		return tp_exec_start(tx->command, &w->proc, why, whylen);
	case TX_TCP:
		break;
	}
	snprintf(why, whylen, "not a child-process transport");
	return -1;
}

static int
pool_start_tcp(struct pool *p, struct worker *w, char *why, size_t whylen)
{
	if (p->dns == NULL && (p->dns = evdns_base_new(p->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL &&
	    (p->dns = evdns_base_new(p->base, 0)) == NULL) {
		snprintf(why, whylen, "cannot start a resolver");
		return -1;
	}
	w->reaped = 1;		/* no process of ours to wait for */
	w->state = W_CONNECTING;
	w->connecting = tp_tcp_connect(p->base, p->dns, w->sc->tx->host,
	    w->sc->tx->port, p->cfg.tls, p->cfg.heartbeat > 0 ?
	    3 * p->cfg.heartbeat : 0, on_connected, w);
	return 0;
}

int
pool_start(struct pool *p, int slot, const int *list, char *why,
    size_t whylen)
{
	struct worker *w;
	struct bufferevent *bev;
	size_t n = p->cfg.nsuites, s;

	if (slot < 0 || slot >= p->cfg.nslots || p->w[slot] != NULL) {
		snprintf(why, whylen, "slot %d is taken", slot);
		return -1;
	}
	w = xcalloc(1, sizeof *w);
	w->pool = p;
	w->slot = slot;
	w->sc = &p->cfg.slots[slot];
	w->kind = w->sc->tx != NULL ? w->sc->tx->kind : TX_POPEN;
	w->remote = w->kind != TX_POPEN;
	w->proc.fd = w->proc.errfd = -1;
	w->load_name = p->cfg.load_paths == NULL ?
	    (const char *const *)p->cfg.suites : p->cfg.load_paths;
	w->handle = xcalloc(n + 1, sizeof *w->handle);
	w->hash = xcalloc(n + 1, sizeof *w->hash);
	w->count = xcalloc(n + 1, sizeof *w->count);
	w->list = xcalloc(n + 1, sizeof *w->list);
	for (s = 0; s < n && list != NULL; s++)
		w->list[s] = list[s];
	w->spawned = w->last_heard = clock_mono();
	if (w->remote && p->cfg.ship == NULL) {
		snprintf(why, whylen, "%s: nothing to ship its suites with",
		    w->sc->id);
		worker_free(w);
		return -1;
	}
	if (w->kind == TX_TCP) {
		if (pool_start_tcp(p, w, why, whylen) == -1) {
			worker_free(w);
			return -1;
		}
		p->w[slot] = w;
		return 0;
	}
	if (pool_spawn(p, w, why, whylen) == -1) {
		worker_free(w);
		return -1;
	}
	w->has_proc = 1;
	w->err_ev = event_new(p->base, w->proc.errfd, EV_READ | EV_PERSIST,
	    err_cb, w);
	event_add(w->err_ev, NULL);
	bev = bufferevent_socket_new(p->base, w->proc.fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatalx("pool: cannot create a bufferevent");
	w->proc.fd = -1;
	p->w[slot] = w;
	pool_greet(p, w, bev);
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
	amp_ask(w->conn, "load", load_args(w, suite, 1), on_fetch,
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
	int greeted;

	if (w == NULL || w->state == W_STOPPING)
		return;
	greeted = w->came_up;
	w->state = W_STOPPING;
	/* One that never said hello (still connecting, or waiting for a
	 * free slot on its daemon) has nothing to finish. */
	if (!greeted && w->remote) {
		pool_kill(p, slot, "shut down before it came up");
		return;
	}
	if (w->kill_at == 0 || w->kill_at > clock_mono() + grace)
		w->kill_at = clock_mono() + grace;
	if (w->conn != NULL)
		amp_ask(w->conn, "shutdown", NULL, on_shutdown, NULL);
}

/* Ends it now: a child is killed (what it wrote is still read), a
 * connection closed, a connect given up. */
static void
pool_hard_stop(struct worker *w)
{
	if (w->has_proc) {
		if (!w->reaped)
			tp_kill(&w->proc, SIGKILL);
		return;
	}
	if (w->connecting != NULL) {
		tp_tcp_cancel(w->connecting);
		w->connecting = NULL;
		w->conn_closed = 1;
		pool_finish(w);
		return;
	}
	if (w->conn != NULL)
		amp_conn_close(w->conn, w->why != NULL ? w->why : "killed", 0);
}

void
pool_kill(struct pool *p, int slot, const char *why)
{
	struct worker *w = p->w[slot];

	if (w == NULL)
		return;
	set_why(w, why);
	/* What it wrote before it died is still read: close comes later,
	 * when the socket says EOF or the reap says it is gone. */
	pool_hard_stop(w);
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

double
pool_rtt(const struct pool *p, int slot)
{
	struct worker *w = slot >= 0 && slot < p->cfg.nslots ? p->w[slot] :
	    NULL;
	double best;
	int i;

	if (w == NULL || w->nrtt == 0)
		return 0;
	best = w->rtt[0];
	for (i = 1; i < w->nrtt; i++)
		if (w->rtt[i] < best)
			best = w->rtt[i];
	return best;
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
			if (w == NULL || !w->has_proc || w->proc.pid != pid ||
			    w->reaped)
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

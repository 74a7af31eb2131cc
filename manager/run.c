/*
 * run.c - one run, from the options to the exit code.
 *
 * Start every worker at once; the first sends the test lists, the others
 * only their hashes, and no test runs until every hash matches. Then
 * select (-k, --tags, --shard, --lf), order (history, --ff, random) and
 * hand the scheduler's batches to the pool; turn what comes back into
 * one final result per test for the distreporter; replace lost workers;
 * stop cleanly on -x, --maxfail, Ctrl-C or when nothing can run; and
 * count at the end that every selected test got exactly one result.
 *
 * It must never report a test twice, never leave a worker behind, and
 * never wait on something that cannot happen: every wait here has a
 * worker death or a timer that ends it.
 */
#include <sys/resource.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

#define RUN_SHUTDOWN_GRACE	5.0	/* seconds for a worker to exit */
#define RUN_STOP_GRACE		10.0	/* for cancelled work to come back */
#define RUN_PROGRESS_EVERY	0.2
#define RUN_DIFF_LINES		20
#define RUN_NONE		UINT32_MAX

enum phase { PH_START, PH_RUN, PH_END };

struct slotinfo {
	int		 loaded;
	char		**hash;		/* per suite */
	size_t		*count;
	struct worker_info info;
	char		*spec, *id, *hostname, *os, *arch, *version;
	int		 up;		/* worker_up told */
	int		 retired;	/* no more replacements */
};

struct run {
	const struct options	*o;
	struct event_base	*base;
	struct distreporter	*dr;
	struct history		*hist;
	struct pool		*pool;
	struct catalog		*cat;
	struct sched		*sched;
	char			 worker[PATH_MAX];
	char			 run_id[40];
	int			 nslots;
	struct slotinfo		*si;
	enum phase		 phase;
	int			 catalog_done;
	struct catalog		*diffcat;	/* a disagreeing worker's list */
	int			 diff_slot;
	uint32_t		 nsel;
	uint32_t		*sel;		/* selected -> catalog index */
	uint32_t		*sel_of;	/* catalog index -> selected */
	struct counts		 counts;
	int			 restarts, max_restarts;
	int			 interrupted, sigints;
	int			 error;		/* internal: exit 3 */
	int			 lost_work;	/* not run for want of workers */
	char			 stop_reason[160];
	double			 start, start_wall;
	long long		 seed;
	struct event		*ev_int, *ev_term, *ev_chld, *ev_progress,
				*ev_stop;
	const char		**running;	/* per slot, for progress */
	const char		**wnames;
	struct sync		*sync;		/* locks, board, trails */
	uint32_t		*gname;		/* per group: catalog offset */
};

struct run_batch {
	int	 asks;		/* run asks still unanswered */
	int	 lost;
	int	 group;		/* a serial group's: it owns sync asks */
};

static void	run_check_done(struct run *);
static void	run_dispatch(struct run *, int slot);
static void	run_stop(struct run *, const char *reason);
static void	run_dispatch_all(struct run *);

/* ---- small things ------------------------------------------------------- */

static void
run_fail(struct run *r, const char *fmt, ...) DM_PRINTF(2, 3);

/* An internal error: the run cannot go on (exit 3). */
static void
run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	xvasprintf(&text, fmt, ap);
	va_end(ap);
	if (!r->error)
		dr_notice(r->dr, LOG_LVL_ERROR, "%s", text);
	r->error = 1;
	free(text);
	run_stop(r, NULL);
}

static uint32_t
unit_cat(const struct run *r, uint32_t unit)
{
	return r->sel[sched_unit_test(r->sched, unit)];
}

static double
run_limit(const struct run *r, uint32_t ci)
{
	double t = cat_test(r->cat, ci)->timeout;

	if (t <= 0)
		t = r->o->timeout;
	return t * r->o->timeout_multiplier;
}

/* ---- results ------------------------------------------------------------ */

static void
run_report(struct run *r, int slot, uint32_t unit, enum outcome oc,
    json_t *box, const char *message)
{
	uint32_t ci = unit_cat(r, unit);
	const struct cat_test *t = cat_test(r->cat, ci);
	struct test_report tr;
	int dslot = slot >= 0 ? slot : r->nslots;

	memset(&tr, 0, sizeof tr);
	tr.id = cat_id(r->cat, ci);
	tr.suite_path = cat_suite_path(r->cat, t->suite);
	tr.file = cat_str(r->cat, t->file);
	tr.line = t->line;
	tr.worker = slot >= 0 ? r->si[slot].id : NULL;
	tr.host = slot >= 0 ? r->si[slot].hostname : NULL;
	tr.outcome = oc;
	tr.message = message;
	tr.exit_status = -1;
	tr.attempts = 1;
	if (box != NULL) {
		if (message == NULL)
			tr.message = json_get_str(box, "message", NULL);
		tr.fail_file = json_get_str(box, "file", NULL);
		tr.fail_line = (int)json_get_int(box, "line", 0);
		tr.duration = json_get_num(box, "duration", 0);
		tr.signal = (int)json_get_int(box, "signal", 0);
		tr.signal_name = json_get_str(box, "signal_name", NULL);
		tr.exit_status = (int)json_get_int(box, "exit_status", -1);
	}
	r->counts.n[oc]++;
	dr_test_result(r->dr, dslot, ci, &tr);
	if (r->hist != NULL && oc != OUT_NOT_RUN)
		history_record(r->hist, tr.id, oc, tr.duration);
}

static void
run_drain(struct run *r, int slot, const char *why)
{
	uint32_t units[256];
	size_t n, i;

	while ((n = sched_drain(r->sched, slot, units, DM_NELEM(units))) > 0)
		for (i = 0; i < n; i++)
			run_report(r, -1, units[i], OUT_NOT_RUN, NULL, why);
}

/* One attempt ended on slot: a final result, a rerun, or a stray. */
static void
run_attempt(struct run *r, int slot, uint32_t unit, enum outcome oc,
    json_t *box, const char *message)
{
	enum outcome fin;
	uint32_t ci = unit_cat(r, unit);

	switch (sched_result(r->sched, slot, unit, oc, clock_mono(), &fin)) {
	case SCHED_FINAL:
		run_report(r, slot, unit, fin, box, message);
		break;
	case SCHED_RERUN:
		dr_test_discard(r->dr, slot, ci);
		/* It must go to another worker, which may be idle. */
		run_dispatch_all(r);
		break;
	case SCHED_IGNORED:
		dr_test_discard(r->dr, slot, ci);
		log_debug("w%d: a result for %s it was not running; ignored",
		    slot, cat_id(r->cat, ci));
		break;
	}
	if (!sched_stopping(r->sched) && sched_maxfail_hit(r->sched)) {
		char why[160];

		if (r->o->maxfail == 1)
			snprintf(why, sizeof why, "stopped after the first "
			    "failure (-x)");
		else
			snprintf(why, sizeof why, "stopped after %zu failures "
			    "(--maxfail)", r->o->maxfail);
		run_stop(r, why);
	}
}

/* ---- pool callbacks ---------------------------------------------------- */

static int
unit_from(struct run *r, int slot, size_t suite, uint32_t index,
    uint32_t *unit)
{
	uint32_t ci, si;

	if (r->sched == NULL || index >= cat_suite_count(r->cat,
	    (uint16_t)suite))
		return -1;
	ci = cat_suite_first(r->cat, (uint16_t)suite) + index;
	if ((si = r->sel_of[ci]) == RUN_NONE)
		return -1;
	*unit = sched_unit_of(r->sched, slot, si);
	return 0;
}

static void
cb_up(void *ctx, int slot, const struct worker_info *wi)
{
	struct run *r = ctx;
	struct slotinfo *s = &r->si[slot];

	free(s->hostname);
	free(s->os);
	free(s->arch);
	free(s->version);
	s->hostname = xstrdup(wi->hostname);
	s->os = xstrdup(wi->os);
	s->arch = xstrdup(wi->arch);
	s->version = xstrdup(wi->version);
	s->info = *wi;
	s->info.id = s->id;
	s->info.spec = s->spec;
	s->info.hostname = s->hostname;
	s->info.os = s->os;
	s->info.arch = s->arch;
	s->info.version = s->version;
	s->up = 1;
	dr_worker_up(r->dr, &s->info);
}

static void
cb_piece(void *ctx, int slot, size_t suite, json_t *box)
{
	struct run *r = ctx;
	char why[256];

	if (r->diffcat != NULL && slot == r->diff_slot) {
		if (cat_add_piece(r->diffcat, (uint16_t)suite, box, why,
		    sizeof why) == -1)
			log_warn("%s: %s", r->si[slot].id, why);
		return;
	}
	if (slot != 0 || r->catalog_done || r->error)
		return;
	if (cat_add_piece(r->cat, (uint16_t)suite, box, why, sizeof why) == -1)
		run_fail(r, "%s: a bad test list from w0: %s",
		    r->o->suites[suite], why);
}

static void
cb_load_failed(void *ctx, int slot, const char *code, const char *why)
{
	struct run *r = ctx;

	if (r->phase == PH_END)
		return;
	if (r->phase == PH_START) {
		run_fail(r, "cannot load the suite: %s (%s)", why, code);
		return;
	}
	r->si[slot].retired = 1;
	pool_kill(r->pool, slot, "its suite would not load");
}

static void	run_startup_check(struct run *);
static void	run_replacement_check(struct run *, int slot);

static void
cb_loaded(void *ctx, int slot, const char *const *hashes,
    const size_t *counts)
{
	struct run *r = ctx;
	struct slotinfo *s = &r->si[slot];
	size_t i, n = r->o->nsuites;
	char why[256];

	for (i = 0; i < n; i++) {
		free(s->hash[i]);
		s->hash[i] = xstrdup(hashes[i]);
		s->count[i] = counts[i];
	}
	s->loaded = 1;
	if (r->phase == PH_END)
		return;
	if (r->phase != PH_START) {
		run_replacement_check(r, slot);
		return;
	}
	if (slot == 0 && !r->catalog_done && !r->error) {
		for (i = 0; i < n; i++)
			if (cat_suite_end(r->cat, (uint16_t)i, counts[i],
			    hashes[i], why, sizeof why) == -1) {
				run_fail(r, "%s: the test list from w0 is "
				    "broken: %s", r->o->suites[i], why);
				return;
			}
		r->catalog_done = 1;
	}
	run_startup_check(r);
}

static double
cb_started(void *ctx, int slot, size_t suite, uint32_t index)
{
	struct run *r = ctx;
	uint32_t unit;

	if (unit_from(r, slot, suite, index, &unit) == -1)
		return 0;
	sched_started(r->sched, slot, unit, clock_mono());
	return run_limit(r, unit_cat(r, unit));
}

static void
cb_output(void *ctx, int slot, size_t suite, uint32_t index,
    const char *stream, const char *data, size_t len)
{
	struct run *r = ctx;

	if (index >= cat_suite_count(r->cat, (uint16_t)suite))
		return;
	dr_test_output(r->dr, slot, cat_suite_first(r->cat, (uint16_t)suite) +
	    index, stream, data, len);
}

/* A test's attempt ended: what it held of locks and trails goes (told
 * to the next holder as a death when it crashed, timed out or was
 * stopped). */
static void
run_sync_ended(struct run *r, int slot, uint32_t ci, const char *outcome)
{
	int died = strcmp(outcome, "crash") == 0 ||
	    strcmp(outcome, "timeout") == 0 ||
	    strcmp(outcome, "interrupted") == 0;

	sync_owner_gone(r->sync, SYNC_OWNER(slot, ci), died, syncask_drop);
}

/*
 * A trail's last finish is held while another test may still start the
 * trail. Nothing else can once no other worker has work in flight (and
 * none is still starting): then it was the last. Held ones past their
 * deadline are released too.
 */
static void
run_trail_check(struct run *r)
{
	int i;

	if (r->sync == NULL || sync_trail_held(r->sync) == 0)
		return;
	sync_trail_release(r->sync, clock_mono());
	for (i = 0; i < r->nslots; i++) {
		if (!pool_alive(r->pool, i) || sync_trail_holds(r->sync,
		    SYNC_OWNER(i, 0), SYNC_OWNER_SLOT_MASK))
			continue;
		if (!r->si[i].loaded || (r->sched != NULL &&
		    sched_inflight(r->sched, i) > 0))
			return;
	}
	sync_trail_release(r->sync, -1);
}

static void
cb_sync(void *ctx, int slot, size_t suite, long index,
    struct amp_request *req, json_t *box)
{
	struct run *r = ctx;
	uint32_t ci = SYNC_OWNER_GROUP;
	double limit = r->o->timeout * r->o->timeout_multiplier, linger;

	if (index >= 0) {
		ci = cat_suite_first(r->cat, (uint16_t)suite) + (uint32_t)index;
		limit = run_limit(r, ci);
	}
	linger = SYNC_TRAIL_LINGER;
	if (limit > 0 && limit / 2 < linger)
		linger = limit / 2;
	syncask_handle(r->sync, SYNC_OWNER(slot, ci), clock_mono() + linger,
	    req, box);
	run_trail_check(r);
}

static void
cb_result(void *ctx, int slot, size_t suite, uint32_t index, json_t *box)
{
	struct run *r = ctx;
	const char *word = json_get_str(box, "outcome", "");
	enum outcome oc;
	uint32_t unit;
	char msg[160];

	if (index < cat_suite_count(r->cat, (uint16_t)suite))
		run_sync_ended(r, slot, cat_suite_first(r->cat,
		    (uint16_t)suite) + index, word);
	if (unit_from(r, slot, suite, index, &unit) == -1)
		return;
	if (outcome_parse(word, &oc) == -1 || oc == OUT_NONE ||
	    oc == OUT_FLAKY) {
		snprintf(msg, sizeof msg, "the worker reported an unknown "
		    "outcome '%.40s'", word);
		run_attempt(r, slot, unit, OUT_ERROR, box, msg);
	} else
		run_attempt(r, slot, unit, oc, box, oc == OUT_NOT_RUN &&
		    json_get_str(box, "message", NULL) == NULL ?
		    "interrupted" : NULL);
	run_dispatch(r, slot);
	run_check_done(r);
}

static void
cb_batch_done(void *ctx, int slot, void *batch, int status)
{
	struct run *r = ctx;
	struct run_batch *b = batch;

	if (status == -1)
		b->lost = 1;
	if (--b->asks > 0)
		return;
	if (b->group)
		sync_owner_gone(r->sync, SYNC_OWNER(slot, SYNC_OWNER_GROUP),
		    b->lost, syncask_drop);
	if (!b->lost && r->sched != NULL &&
	    sched_batch_done(r->sched, slot, clock_mono()) > 0)
		run_dispatch_all(r);
	free(b);
	run_dispatch(r, slot);
	run_check_done(r);
}

static void
crash_message(char *buf, size_t len, const char *why, int timed_out,
    double limit, const char *tail)
{
	int n;

	if (timed_out)
		n = snprintf(buf, len, "timed out after %.3g s; the worker "
		    "running it in-process was killed", limit);
	else
		n = snprintf(buf, len, "%s, while running this test", why);
	if (tail != NULL && *tail != '\0' && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "; its stderr ended: %s",
		    tail);
}

/* What the report of a test lost with its worker says beyond the
 * message: how long it ran and the signal. */
static json_t *
crash_box(double ran, int sig)
{
	char name[32];
	const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;
	json_t *box = json_pack("{s:f}", "duration", ran);

	if (sig > 0) {
		snprintf(name, sizeof name, "SIG%s", abbrev != NULL ? abbrev :
		    "?");
		json_object_set_new(box, "signal", json_integer(sig));
		json_object_set_new(box, "signal_name", json_string(name));
	}
	return box;
}

/* A test marked todo that takes its worker down failed as expected,
 * as it would have in a forked child. */
static enum outcome
lost_outcome(const struct run *r, uint32_t unit, int timed_out)
{
	if (cat_test(r->cat, unit_cat(r, unit))->flags & CAT_F_TODO)
		return OUT_XFAIL;
	return timed_out ? OUT_TIMEOUT : OUT_CRASH;
}

static int
run_may_restart(struct run *r, int slot)
{
	if (r->phase != PH_RUN || sched_stopping(r->sched) ||
	    r->si[slot].retired || sched_finished(r->sched))
		return 0;
	return 1;
}

static void
run_restart(struct run *r, int slot)
{
	char why[256];

	if (r->restarts >= r->max_restarts) {
		r->si[slot].retired = 1;
		if (!r->lost_work)
			dr_notice(r->dr, LOG_LVL_WARN, "not replacing %s: %d "
			    "workers replaced already, the limit "
			    "(--max-worker-restart) is %d", r->si[slot].id,
			    r->restarts, r->max_restarts);
		return;
	}
	r->restarts++;
	if (pool_start(r->pool, slot, NULL, why, sizeof why) == -1) {
		r->si[slot].retired = 1;
		dr_notice(r->dr, LOG_LVL_ERROR, "cannot replace %s: %s",
		    r->si[slot].id, why);
		return;
	}
	dr_notice(r->dr, LOG_LVL_INFO, "replacing worker %s (%d of %d "
	    "replacements)", r->si[slot].id, r->restarts, r->max_restarts);
}

static void
cb_lost(void *ctx, int slot, int expected, int timed_out, int sig,
    const char *why, const char *tail)
{
	struct run *r = ctx;
	uint32_t running;
	double since;
	json_t *box;
	char msg[1024];

	r->running[slot] = NULL;
	r->si[slot].loaded = 0;		/* a replacement loads anew */
	/* Whatever its tests held is released: they died with it. */
	sync_owners_gone(r->sync, SYNC_OWNER(slot, 0), SYNC_OWNER_SLOT_MASK, 1,
	    syncask_drop);
	if (r->si[slot].up) {
		r->si[slot].up = 0;
		dr_worker_down(r->dr, &r->si[slot].info, expected ? NULL : why);
	}
	if (r->phase == PH_START && !expected) {
		if (*tail != '\0')
			run_fail(r, "worker %s failed to start: %s; its stderr "
			    "ended: %s", r->si[slot].id, why, tail);
		else
			run_fail(r, "worker %s failed to start: %s",
			    r->si[slot].id, why);
	}
	if (r->sched != NULL) {
		if (!sched_running(r->sched, slot, &running, &since))
			since = clock_mono();
		sched_worker_lost(r->sched, slot, &running);
		if (running != SCHED_NONE) {
			box = crash_box(clock_mono() - since, sig);
			if (expected && sched_stopping(r->sched))
				/* We killed it to stop: the test did nothing
				 * wrong. */
				run_attempt(r, slot, running, OUT_NOT_RUN, box,
				    "interrupted");
			else {
				crash_message(msg, sizeof msg, why, timed_out,
				    run_limit(r, unit_cat(r, running)), tail);
				run_attempt(r, slot, running, lost_outcome(r,
				    running, timed_out), box, msg);
			}
			json_decref(box);
		}
		if (!expected && run_may_restart(r, slot))
			run_restart(r, slot);
		/* --dist each: a slot that ends for good leaves its own tests
		 * to nobody else. */
		if (r->o->dist == DIST_EACH && !pool_alive(r->pool, slot) &&
		    r->phase == PH_RUN)
			run_drain(r, slot, "not run: its worker was lost and "
			    "not replaced");
		run_dispatch_all(r);
	}
	run_check_done(r);
}

static void
emit_diff(const char *line, void *arg)
{
	struct run *r = arg;

	dr_notice(r->dr, LOG_LVL_ERROR, "  %s", line);
}

static void
cb_listed(void *ctx, int slot, size_t suite, const char *why)
{
	struct run *r = ctx;
	size_t n;

	if (r->diffcat == NULL || slot != r->diff_slot)
		return;
	if (why == NULL) {
		n = cat_diff(r->cat, (uint16_t)suite, "w0", r->diffcat,
		    (uint16_t)suite, r->si[slot].id, RUN_DIFF_LINES, emit_diff,
		    r);
		if (n > RUN_DIFF_LINES)
			dr_notice(r->dr, LOG_LVL_ERROR, "  ... and %zu more",
			    n - RUN_DIFF_LINES);
	} else
		dr_notice(r->dr, LOG_LVL_ERROR, "  (cannot get the list of %s: "
		    "%s)", r->si[slot].id, why);
	run_fail(r, "the workers disagree on the tests; nothing was run");
}

static const struct pool_cbs run_pool_cbs = {
	cb_loaded, cb_piece, cb_load_failed, cb_started, cb_output, cb_result,
	cb_batch_done, cb_lost, cb_up, cb_listed, cb_sync,
};

/* ---- handing out -------------------------------------------------------- */

/* A serial group's batch: one run ask (a group is one suite's), that
 * names the group. */
static void
run_dispatch_group(struct run *r, int slot, int32_t g, const uint32_t *units,
    size_t n, struct run_batch *b)
{
	uint32_t idx[SCHED_MAX_BATCH];
	uint16_t suite = cat_test(r->cat, unit_cat(r, units[0]))->suite;
	size_t i;

	for (i = 0; i < n; i++)
		idx[i] = unit_cat(r, units[i]) - cat_suite_first(r->cat, suite);
	b->group = 1;
	pool_run_group(r->pool, slot, suite, cat_str(r->cat, r->gname[g]),
	    idx, n, b);
}

/* The scheduler's events, said to the user: with -v, an isolated phase
 * beginning and ending. */
static void
run_events(struct run *r)
{
	struct sched_event ev;
	int level = r->o->verbosity > 0 ? LOG_LVL_INFO : LOG_LVL_DEBUG;
	char what[300];

	while (r->sched != NULL && sched_event(r->sched, &ev)) {
		if (ev.group >= 0)
			snprintf(what, sizeof what, "group '%s' (%s, %u test%s)",
			    cat_str(r->cat, r->gname[ev.group]), ev.grouped ?
			    "isolated_serial" : "isolated_free", ev.tests,
			    ev.tests == 1 ? "" : "s");
		else
			snprintf(what, sizeof what, "the serial tests (%u)",
			    ev.tests);
		if (ev.kind == SCHED_EV_PHASE_START)
			dr_notice(r->dr, level, "isolated phase begins: %s; "
			    "nothing else runs until it ends", what);
		else
			dr_notice(r->dr, level, "isolated phase ends: %s, after "
			    "%.2f s", what, ev.seconds);
	}
}

static void
run_dispatch(struct run *r, int slot)
{
	uint32_t units[SCHED_MAX_BATCH], idx[SCHED_MAX_BATCH];
	const struct cat_test *t;
	struct run_batch *b;
	size_t n, i, j, k;
	uint16_t suite;
	int32_t g;

	if (r->phase != PH_RUN || !pool_alive(r->pool, slot) ||
	    !r->si[slot].loaded)
		return;
	while ((n = sched_next_batch(r->sched, slot, clock_mono(), units,
	    SCHED_MAX_BATCH)) > 0) {
		b = xcalloc(1, sizeof *b);
		b->asks = 1;
		if ((g = sched_batch_group(r->sched)) >= 0) {
			run_dispatch_group(r, slot, g, units, n, b);
			continue;
		}
		/* One run ask per stretch of the same suite. */
		for (i = 0; i < n; i = j) {
			suite = cat_test(r->cat, unit_cat(r, units[i]))->suite;
			for (j = i, k = 0; j < n; j++, k++) {
				t = cat_test(r->cat, unit_cat(r, units[j]));
				if (t->suite != suite)
					break;
				idx[k] = unit_cat(r, units[j]) -
				    cat_suite_first(r->cat, suite);
			}
			b->asks += 1;
			pool_run(r->pool, slot, suite, idx, k, b);
		}
		/* The extra count kept b alive while asking. */
		if (--b->asks == 0)
			free(b);
	}
	run_events(r);
	/* A lock freed, a phase begun or ended: others may have work. */
	if (r->sched != NULL && sched_poked(r->sched))
		run_dispatch_all(r);
}

static void
run_dispatch_all(struct run *r)
{
	int i;

	for (i = 0; i < r->nslots; i++)
		run_dispatch(r, i);
}

/* ---- starting ----------------------------------------------------------- */

/* Which suites' lists differ between w0 and slot; 0 when none, else
 * 1 and *which the first. */
static int
run_hash_mismatch(struct run *r, int slot, size_t *which)
{
	struct slotinfo *s = &r->si[slot];
	size_t i;
	int bad = 0;

	for (i = 0; i < r->o->nsuites; i++) {
		if (strcmp(s->hash[i], cat_suite_hash(r->cat, (uint16_t)i)) == 0)
			continue;
		dr_notice(r->dr, LOG_LVL_ERROR, "%s: worker %s has another test "
		    "list than w0: %zu tests (hash %.12s), w0 has %zu (hash "
		    "%.12s)", r->o->suites[i], s->id, s->count[i], s->hash[i],
		    cat_suite_count(r->cat, (uint16_t)i),
		    cat_suite_hash(r->cat, (uint16_t)i));
		if (!bad)
			*which = i;
		bad = 1;
	}
	return bad;
}

static void
run_replacement_check(struct run *r, int slot)
{
	size_t which;

	if (run_hash_mismatch(r, slot, &which)) {
		r->si[slot].retired = 1;
		pool_kill(r->pool, slot, "its test list differs");
		return;
	}
	sched_worker_up(r->sched, slot, clock_mono());
	run_dispatch(r, slot);
}

static int	run_select(struct run *);
static void	run_begin(struct run *);

static void
run_startup_check(struct run *r)
{
	struct timeval tv = { (time_t)RUN_STOP_GRACE, 0 };
	size_t which = 0, s;
	int i, bad = 0;

	if (r->error || !r->catalog_done)
		return;
	for (i = 0; i < r->nslots; i++)
		if (!r->si[i].loaded)
			return;
	for (i = 1; i < r->nslots && !bad; i++)
		if (run_hash_mismatch(r, i, &which))
			bad = i;
	if (!bad) {
		run_begin(r);
		return;
	}
	/* Fetch that worker's list to say which tests differ; a worker
	 * that never answers is killed by the stop timer. */
	r->diffcat = cat_new();
	for (s = 0; s < r->o->nsuites; s++)
		cat_suite_add(r->diffcat, r->o->suites[s]);
	r->diff_slot = bad;
	dr_notice(r->dr, LOG_LVL_ERROR, "%s: tests that differ:",
	    r->o->suites[which]);
	pool_fetch_list(r->pool, bad, which);
	event_add(r->ev_stop, &tv);
}

/* ---- selection and order ------------------------------------------------- */

static int
run_select(struct run *r)
{
	const struct options *o = r->o;
	struct kexpr *k = NULL, *tags = NULL;
	size_t n = cat_ntests(r->cat), i;
	unsigned si = 0, sn = 0;
	uint32_t lf = 0;
	char why[256];
	const char *id;

	if (o->kexpr != NULL &&
	    (k = kexpr_parse(o->kexpr, why, sizeof why)) == NULL) {
		dr_notice(r->dr, LOG_LVL_ERROR, "-k: %s", why);
		return -1;
	}
	if (o->tags != NULL &&
	    (tags = kexpr_parse(o->tags, why, sizeof why)) == NULL) {
		dr_notice(r->dr, LOG_LVL_ERROR, "--tags: %s", why);
		kexpr_free(k);
		return -1;
	}
	if (o->shard != NULL && shard_parse(o->shard, &si, &sn) == -1) {
		dr_notice(r->dr, LOG_LVL_ERROR, "--shard wants I/N with 1 <= I "
		    "<= N, not '%s'", o->shard);
		kexpr_free(k);
		kexpr_free(tags);
		return -1;
	}
	if (o->lf && r->hist != NULL)
		for (i = 0; i < n; i++)
			lf += history_failed_last(r->hist, cat_id(r->cat,
			    (uint32_t)i)) != 0;
	r->sel = xcalloc(n + 1, sizeof *r->sel);
	r->sel_of = xcalloc(n + 1, sizeof *r->sel_of);
	for (i = 0; i < n; i++) {
		id = cat_id(r->cat, (uint32_t)i);
		r->sel_of[i] = RUN_NONE;
		if ((k != NULL && !kexpr_match(k, id)) || (tags != NULL &&
		    !kexpr_match_tags(tags, cat_str(r->cat,
		    cat_test(r->cat, (uint32_t)i)->tags))) ||
		    (sn > 0 && !shard_has(id, si, sn)) ||
		    (lf > 0 && !history_failed_last(r->hist, id)))
			continue;
		r->sel_of[i] = r->nsel;
		r->sel[r->nsel++] = (uint32_t)i;
	}
	if (o->lf && lf == 0)
		dr_notice(r->dr, LOG_LVL_INFO, "--lf: no failures last time; "
		    "running all selected tests");
	kexpr_free(k);
	kexpr_free(tags);
	return 0;
}

/* ---- groups and locks ------------------------------------------------------ */

/* A small table of 64-bit keys to numbers, for groups (suite, name) and
 * lock names: open addressing, grown at half full. */
struct keytab {
	uint64_t	*key;
	uint32_t	*val;
	size_t		 cap, n;
};

static uint32_t
keytab_get(struct keytab *t, uint64_t key, uint32_t next, int *added)
{
	size_t i, j;
	uint64_t *ok;
	uint32_t *ov;

	if ((t->n + 1) * 2 > t->cap) {
		ok = t->key;
		ov = t->val;
		t->cap = t->cap == 0 ? 64 : t->cap * 2;
		t->key = xcalloc(t->cap, sizeof *t->key);
		t->val = xcalloc(t->cap, sizeof *t->val);
		for (i = 0; i < t->cap / 2 && ok != NULL; i++) {
			if (ok[i] == 0)
				continue;
			for (j = (ok[i] * 0x9e3779b97f4a7c15ULL) >> 40;
			    t->key[j % t->cap] != 0; j++)
				;
			t->key[j % t->cap] = ok[i];
			t->val[j % t->cap] = ov[i];
		}
		free(ok);
		free(ov);
	}
	key++;	/* 0 marks a free slot */
	for (j = (key * 0x9e3779b97f4a7c15ULL) >> 40; t->key[j % t->cap] != 0;
	    j++)
		if (t->key[j % t->cap] == key) {
			*added = 0;
			return t->val[j % t->cap];
		}
	t->key[j % t->cap] = key;
	t->val[j % t->cap] = next;
	t->n++;
	*added = 1;
	return next;
}

static void
keytab_free(struct keytab *t)
{
	free(t->key);
	free(t->val);
}

/* A lock name's key: 64 bits of FNV-1a. Two names that collided would
 * only be one lock, never none. */
static uint64_t
name_key(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n-- > 0)
		h = (h ^ (unsigned char)*p++) * 0x100000001b3ULL;
	return h;
}

/* The lock names of test t (its "a,b", split), as numbers, appended. */
static void
run_test_locks(struct run *r, const struct cat_test *t, struct keytab *names,
    uint32_t *nlocks, uint32_t **locks, size_t *n, size_t *cap)
{
	const char *p = cat_str(r->cat, t->lock), *end;
	uint32_t id;
	int added;

	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		id = keytab_get(names, name_key(p, (size_t)(end - p)),
		    *nlocks, &added);
		if (added)
			(*nlocks)++;
		if (*n == *cap) {
			*cap = *cap == 0 ? 256 : *cap * 2;
			*locks = xreallocarray(*locks, *cap, sizeof **locks);
		}
		(*locks)[(*n)++] = id;
		p = *end == ',' ? end + 1 : end;
	}
}

/*
 * Each selected test's group (the catalog's group name within its suite
 * file), its group's strategy, .serial and resource locks, for the
 * scheduler. Nothing at all when no test has any: the scheduler then
 * costs what it did without them.
 */
static int
run_constrain(struct run *r)
{
	struct sched_constraints k;
	struct keytab groups, names;
	const struct cat_test *t;
	uint32_t *group, *lock_first = NULL, *locks = NULL, ng = 0, nl = 0, g,
	    i;
	uint8_t *strategy = NULL, *serial;
	size_t n = 0, cap = 0;
	int any = 0, added;

	memset(&groups, 0, sizeof groups);
	memset(&names, 0, sizeof names);
	group = xcalloc(r->nsel + 1, sizeof *group);
	serial = xcalloc(r->nsel + 1, 1);
	lock_first = xcalloc(r->nsel + 1, sizeof *lock_first);
	for (i = 0; i < r->nsel; i++) {
		t = cat_test(r->cat, r->sel[i]);
		group[i] = SCHED_NONE;
		serial[i] = (t->flags & CAT_F_SERIAL) != 0;
		any |= serial[i] || t->group != CAT_NONE || t->lock != CAT_NONE;
		lock_first[i] = (uint32_t)n;
		if (t->lock != CAT_NONE)
			run_test_locks(r, t, &names, &nl, &locks, &n, &cap);
		if (t->group == CAT_NONE)
			continue;
		g = keytab_get(&groups, (uint64_t)t->suite << 32 | t->group, ng,
		    &added);
		if (added) {
			r->gname = xreallocarray(r->gname, ng + 1,
			    sizeof *r->gname);
			strategy = xreallocarray(strategy, ng + 1, 1);
			r->gname[ng] = t->group;
			strategy[ng++] = t->strategy;
		}
		group[i] = g;
	}
	lock_first[r->nsel] = (uint32_t)n;
	memset(&k, 0, sizeof k);
	k.ngroups = ng;
	k.strategy = strategy;
	k.group = group;
	k.serial = serial;
	k.nlocks = nl;
	k.lock_first = nl > 0 ? lock_first : NULL;
	k.locks = locks;
	i = any ? (uint32_t)sched_constrain(r->sched, &k) : 0;
	keytab_free(&groups);
	keytab_free(&names);
	free(group);
	free(serial);
	free(lock_first);
	free(locks);
	free(strategy);
	return (int)i;
}

static uint32_t *
run_order(struct run *r, float **estp)
{
	uint32_t *order = xcalloc(r->nsel + 1, sizeof *order), i;
	float *est = xcalloc(r->nsel + 1, sizeof *est);
	uint8_t *failed = xcalloc(r->nsel + 1, 1);
	double d;

	for (i = 0; i < r->nsel; i++) {
		const char *id = cat_id(r->cat, r->sel[i]);

		d = r->hist != NULL ? history_duration(r->hist, id) : -1;
		est[i] = d < 0 ? SCHED_EST_NONE : (float)d;
		failed[i] = r->hist != NULL && history_failed_last(r->hist, id);
	}
	sched_order(r->nsel, est, failed, r->o->ff,
	    r->o->random_order ? r->seed : -1, order);
	free(failed);
	*estp = est;
	return order;
}

/* ---- --list ------------------------------------------------------------- */

static void
run_list_json(struct run *r)
{
	json_t *all = json_array(), *e, *tags;
	const struct cat_test *t;
	uint32_t i;
	char *text, *p, *save;

	for (i = 0; i < r->nsel; i++) {
		t = cat_test(r->cat, r->sel[i]);
		tags = json_array();
		text = xstrdup(cat_str(r->cat, t->tags));
		for (p = strtok_r(text, ",", &save); p != NULL;
		    p = strtok_r(NULL, ",", &save))
			json_array_append_new(tags, json_string(p));
		free(text);
		e = json_pack("{s:s, s:s, s:s, s:i, s:o, s:b, s:b}",
		    "id", cat_id(r->cat, r->sel[i]),
		    "suite", cat_suite_path(r->cat, t->suite),
		    "file", cat_str(r->cat, t->file), "line", (int)t->line,
		    "tags", tags, "todo", (t->flags & CAT_F_TODO) != 0,
		    "skip", (t->flags & CAT_F_SKIP) != 0);
		if (t->timeout > 0)
			json_object_set_new(e, "timeout",
			    json_real(t->timeout));
		json_array_append_new(all, e);
	}
	e = json_pack("{s:o, s:i}", "tests", all, "count", (int)r->nsel);
	json_dumpf(e, stdout, JSON_INDENT(1));
	fputc('\n', stdout);
	json_decref(e);
}

static void
run_list(struct run *r)
{
	const struct cat_test *t;
	uint32_t i;

	if (r->o->list_json) {
		run_list_json(r);
		return;
	}
	for (i = 0; i < r->nsel; i++) {
		t = cat_test(r->cat, r->sel[i]);
		if (r->o->verbosity > 0)
			printf("%s\t%s:%d\n", cat_id(r->cat, r->sel[i]),
			    cat_str(r->cat, t->file), (int)t->line);
		else
			printf("%s\n", cat_id(r->cat, r->sel[i]));
	}
	if (r->o->verbosity >= 0)
		printf("%u test%s\n", r->nsel, r->nsel == 1 ? "" : "s");
	fflush(stdout);
}

/* ---- the run proper ------------------------------------------------------ */

static void
run_shutdown_all(struct run *r)
{
	int i;

	for (i = 0; i < r->nslots; i++)
		if (pool_alive(r->pool, i))
			pool_shutdown(r->pool, i, RUN_SHUTDOWN_GRACE);
}

static void
run_info_start(struct run *r)
{
	struct run_info ri;

	memset(&ri, 0, sizeof ri);
	ri.run_id = r->run_id;
	ri.ntests = sched_nunits(r->sched);
	ri.nworkers = r->nslots;
	ri.dist = r->o->dist == DIST_EACH ? "each" :
	    (r->o->dist == DIST_NO || r->o->jobs == 0 ? "no" : "load");
	ri.boxed = r->o->boxed;
	ri.seed = r->o->random_order ? r->seed : -1;
	ri.start_wall = r->start_wall;
	ri.suites = r->o->suites;
	ri.nsuites = r->o->nsuites;
	dr_run_start(r->dr, &ri);
}

static void
run_begin(struct run *r)
{
	struct sched_config sc;
	uint32_t *order;
	float *est;
	int i;

	if (run_select(r) == -1) {
		r->error = 2;		/* a usage error, found late */
		run_stop(r, NULL);
		return;
	}
	if (r->o->list || r->nsel == 0) {
		if (r->o->list)
			run_list(r);
		r->phase = PH_END;
		run_shutdown_all(r);
		return;
	}
	memset(&sc, 0, sizeof sc);
	sc.each = r->o->dist == DIST_EACH;
	sc.nslots = r->nslots;
	sc.reruns = r->o->reruns;
	sc.maxfail = r->o->maxfail;
	sc.is_failure = outcome_is_failure;
	order = run_order(r, &est);
	r->sched = sched_new(&sc, r->nsel, order, est);
	free(order);
	free(est);
	if (r->sched == NULL) {
		run_fail(r, "too many tests to schedule (%u x %d workers)",
		    r->nsel, r->nslots);
		return;
	}
	if (run_constrain(r) == -1) {
		run_fail(r, "cannot schedule the groups and locks");
		return;
	}
	if (r->o->random_order)
		dr_notice(r->dr, LOG_LVL_WARN, "random order: "
		    "--random-order=%lld", r->seed);
	r->phase = PH_RUN;
	run_info_start(r);
	for (i = 0; i < r->nslots; i++)
		if (pool_alive(r->pool, i))
			sched_worker_up(r->sched, i, clock_mono());
	for (i = 0; i < r->nslots; i++)
		run_dispatch(r, i);
	run_check_done(r);
}

static int
run_any_worker(const struct run *r)
{
	int i;

	for (i = 0; i < r->nslots; i++)
		if (pool_alive(r->pool, i))
			return 1;
	return 0;
}

/* Everything final, or nothing left that could make it so. */
static void
run_check_done(struct run *r)
{
	int i;

	run_trail_check(r);
	if (r->phase == PH_RUN) {
		if (sched_stopping(r->sched))
			for (i = 0; i < (r->o->dist == DIST_EACH ? r->nslots :
			    1); i++)
				run_drain(r, r->o->dist == DIST_EACH ? i : -1,
				    "not run: the run stopped first");
		if (!sched_finished(r->sched) && !run_any_worker(r)) {
			r->lost_work = 1;
			dr_notice(r->dr, LOG_LVL_ERROR, "no workers left to run "
			    "the remaining %u tests (%d replaced, "
			    "--max-worker-restart is %d)",
			    sched_nunits(r->sched) - sched_nfinal(r->sched),
			    r->restarts, r->max_restarts);
			sched_stop(r->sched);
			for (i = 0; i < (r->o->dist == DIST_EACH ? r->nslots :
			    1); i++)
				run_drain(r, r->o->dist == DIST_EACH ? i : -1,
				    "not run: no workers were left");
		}
		if (sched_finished(r->sched)) {
			r->phase = PH_END;
			run_shutdown_all(r);
		}
	}
	if (r->phase == PH_END && !run_any_worker(r))
		event_base_loopbreak(r->base);
	else if (r->phase == PH_START && r->error && !run_any_worker(r))
		event_base_loopbreak(r->base);
}

static void
stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	pool_kill_all(r->pool);
}

static void
run_stop(struct run *r, const char *reason)
{
	struct timeval tv = { (time_t)RUN_STOP_GRACE, 0 };
	int i;

	if (reason != NULL && r->stop_reason[0] == '\0')
		snprintf(r->stop_reason, sizeof r->stop_reason, "%s", reason);
	if (r->phase != PH_RUN) {
		r->phase = PH_END;
		run_shutdown_all(r);
		run_check_done(r);
		return;
	}
	if (sched_stopping(r->sched))
		return;
	sched_stop(r->sched);
	for (i = 0; i < r->nslots; i++)
		if (sched_inflight(r->sched, i) > 0)
			pool_cancel(r->pool, i);
	/* A worker that cannot answer a cancel (a test stuck in-process
	 * without a limit) is killed rather than waited for. */
	event_add(r->ev_stop, &tv);
	run_check_done(r);
}

/* ---- signals and progress ------------------------------------------------ */

static void
sig_cb(evutil_socket_t sig, short what, void *arg)
{
	struct run *r = arg;

	(void)what;
	if (sig == SIGCHLD) {
		pool_reap(r->pool);
		return;
	}
	r->interrupted = 1;
	if (++r->sigints > 1) {
		dr_notice(r->dr, LOG_LVL_WARN, "interrupted again: killing "
		    "the workers");
		pool_kill_all(r->pool);
		return;
	}
	dr_notice(r->dr, LOG_LVL_WARN, "interrupted: stopping the workers "
	    "(interrupt again to kill them)");
	run_stop(r, "interrupted");
}

static void
progress_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	struct progress p;
	uint32_t u;
	double since;
	int i;

	(void)fd;
	(void)what;
	if (r->phase != PH_RUN)
		return;
	run_trail_check(r);
	memset(&p, 0, sizeof p);
	p.done = sched_nfinal(r->sched);
	p.total = sched_nunits(r->sched);
	p.counts = r->counts;
	p.elapsed = clock_mono() - r->start;
	p.eta = p.done > 0 ? p.elapsed / p.done * (p.total - p.done) : -1;
	for (i = 0; i < r->nslots; i++)
		r->running[i] = pool_alive(r->pool, i) &&
		    sched_running(r->sched, i, &u, &since) ?
		    cat_id(r->cat, unit_cat(r, u)) : NULL;
	p.nworkers = (size_t)r->nslots;
	p.running = r->running;
	p.workers = r->wnames;
	dr_progress(r->dr, &p);
}

/* ---- set-up and tear-down ------------------------------------------------ */

static void
run_make_id(struct run *r)
{
	struct timespec ts;
	unsigned long long x;

	clock_gettime(CLOCK_REALTIME, &ts);
	x = (unsigned long long)ts.tv_sec * 1000003ULL ^
	    (unsigned long long)ts.tv_nsec * 31ULL ^ (unsigned long long)getpid();
	snprintf(r->run_id, sizeof r->run_id, "%016llx", x);
	r->seed = r->o->seed >= 0 ? r->o->seed :
	    (long long)((x >> 1) % 1000000000ULL);
}

static int
stdout_taken(const char *path)
{
	return path != NULL && strcmp(path, "-") == 0;
}

/* Takes rep into the distreporter; NULL (it could not start) is an
 * error worded in why. */
static int
run_add(struct run *r, struct reporter *rep, const char *why)
{
	if (rep == NULL) {
		dr_notice(r->dr, LOG_LVL_ERROR, "%s", why);
		return -1;
	}
	dr_add(r->dr, rep);
	return 0;
}

/* The terminal, unless TAP or JSON lines have stdout, and each report
 * asked for. A report that cannot start is an error before any work. */
static int
run_reporters(struct run *r, const struct options *o)
{
	struct terminal_options to;
	char why[512];

	memset(&to, 0, sizeof to);
	to.verbosity = o->verbosity;
	to.color = o->color;
	to.durations = o->durations;
	to.show_output = 1;
	if (!stdout_taken(o->tap) && !stdout_taken(o->json))
		dr_add(r->dr, reporter_terminal_new(r->base, stdout, &to));
	if (o->junit_xml != NULL && run_add(r, reporter_junit_new(o->junit_xml,
	    why, sizeof why), why) == -1)
		return -1;
	if (o->tap != NULL && run_add(r, reporter_tap_new(r->base, o->tap,
	    why, sizeof why), why) == -1)
		return -1;
	if (o->json != NULL && run_add(r, reporter_json_new(r->base, o->json,
	    o->argv, why, sizeof why), why) == -1)
		return -1;
	if (o->web != NULL && run_add(r, reporter_web_new(r->base, o->web,
	    why, sizeof why), why) == -1)
		return -1;
	return 0;
}

static int
run_setup(struct run *r, const struct options *o, const char *argv0)
{
	struct pool_config pc;
	char why[512];
	int i;

	r->o = o;
	r->start = clock_mono();
	r->start_wall = clock_wall();
	r->dr = dr_new();
	if ((r->base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	if (!o->list && run_reporters(r, o) == -1)
		return -1;
	if (tp_find_worker(o->worker, argv0, r->worker, sizeof r->worker, why,
	    sizeof why) == -1) {
		dr_notice(r->dr, LOG_LVL_ERROR, "%s", why);
		return -1;
	}
	run_make_id(r);
	if (!o->no_cache)
		r->hist = history_open(o->cache_dir != NULL ? o->cache_dir :
		    ".distmgr");
	r->nslots = o->list ? 1 : opt_nworkers(o);
	r->max_restarts = o->max_worker_restart >= 0 ? o->max_worker_restart :
	    4 * r->nslots;
	r->si = xcalloc((size_t)r->nslots, sizeof *r->si);
	r->running = xcalloc((size_t)r->nslots, sizeof *r->running);
	r->wnames = xcalloc((size_t)r->nslots, sizeof *r->wnames);
	for (i = 0; i < r->nslots; i++) {
		xasprintf(&r->si[i].id, "w%d", i);
		r->si[i].spec = xstrdup("popen");
		r->si[i].hash = xcalloc(o->nsuites + 1, sizeof(char *));
		r->si[i].count = xcalloc(o->nsuites + 1, sizeof(size_t));
		r->wnames[i] = r->si[i].id;
	}
	r->cat = cat_new();
	r->sync = sync_new();
	for (i = 0; i < (int)o->nsuites; i++)
		cat_suite_add(r->cat, o->suites[i]);
	memset(&pc, 0, sizeof pc);
	pc.worker = r->worker;
	pc.nslots = r->nslots;
	pc.suites = o->suites;
	pc.nsuites = o->nsuites;
	pc.run_id = r->run_id;
	pc.worker_count = r->nslots;
	pc.boxed = o->boxed;
	pc.timeout = o->timeout;
	pc.timeout_multiplier = o->timeout_multiplier;
	pc.heartbeat = o->heartbeat;
	r->pool = pool_new(r->base, &pc, &run_pool_cbs, r);
	return 0;
}

static void
run_signals(struct run *r)
{
	struct timeval tv = { 0, (int)(RUN_PROGRESS_EVERY * 1e6) };

	signal(SIGPIPE, SIG_IGN);
	r->ev_int = evsignal_new(r->base, SIGINT, sig_cb, r);
	r->ev_term = evsignal_new(r->base, SIGTERM, sig_cb, r);
	r->ev_chld = evsignal_new(r->base, SIGCHLD, sig_cb, r);
	r->ev_progress = event_new(r->base, -1, EV_PERSIST, progress_cb, r);
	r->ev_stop = evtimer_new(r->base, stop_timer_cb, r);
	event_add(r->ev_int, NULL);
	event_add(r->ev_term, NULL);
	event_add(r->ev_chld, NULL);
	event_add(r->ev_progress, &tv);
}

/* Every worker at once; w0 lists the tests. */
static int
run_start_workers(struct run *r)
{
	int *list = xcalloc(r->o->nsuites + 1, sizeof *list);
	char why[512];
	size_t s;
	int i, rc = 0;

	for (s = 0; s < r->o->nsuites; s++)
		list[s] = 1;
	for (i = 0; i < r->nslots && rc == 0; i++)
		if (pool_start(r->pool, i, i == 0 ? list : NULL, why,
		    sizeof why) == -1) {
			run_fail(r, "%s", why);
			rc = -1;
		}
	free(list);
	return rc;
}

static void
run_teardown(struct run *r)
{
	int i;

	if (r->pool != NULL)
		pool_free(r->pool);
	if (r->ev_int != NULL) {
		event_free(r->ev_int);
		event_free(r->ev_term);
		event_free(r->ev_chld);
		event_free(r->ev_progress);
		event_free(r->ev_stop);
	}
	for (i = 0; r->si != NULL && i < r->nslots; i++) {
		for (size_t s = 0; s < r->o->nsuites; s++)
			free(r->si[i].hash[s]);
		free(r->si[i].hash);
		free(r->si[i].count);
		free(r->si[i].id);
		free(r->si[i].spec);
		free(r->si[i].hostname);
		free(r->si[i].os);
		free(r->si[i].arch);
		free(r->si[i].version);
	}
	free(r->si);
	free(r->running);
	free(r->wnames);
	sched_free(r->sched);
	sync_free(r->sync);
	free(r->gname);
	cat_free(r->cat);
	cat_free(r->diffcat);
	free(r->sel);
	free(r->sel_of);
	if (r->hist != NULL)
		history_free(r->hist);
	dr_free(r->dr);
	if (r->base != NULL)
		event_base_free(r->base);
}

/* The exit code, in pytest's order of precedence. */
static int
run_exit_code(const struct run *r)
{
	int o;

	if (r->error == 2)
		return EXIT_USAGE;
	if (r->error)
		return EXIT_INTERNAL;
	if (r->interrupted)
		return EXIT_INTERRUPTED;
	if (r->sched == NULL)
		return r->o->list && r->nsel > 0 ? EXIT_ALL_PASSED :
		    EXIT_NO_TESTS;
	for (o = OUT_PASS; o < OUT__COUNT; o++)
		if (r->counts.n[o] > 0 && outcome_is_failure((enum outcome)o))
			return EXIT_TESTS_FAILED;
	if (r->lost_work)
		return EXIT_INTERNAL;
	return EXIT_ALL_PASSED;
}

/* The invariant, counted: one final result per unit. */
static void
run_account(struct run *r)
{
	size_t total = counts_total(&r->counts);

	if (r->sched == NULL)
		return;
	if (!sched_finished(r->sched) || total != sched_nunits(r->sched)) {
		dr_notice(r->dr, LOG_LVL_ERROR, "internal error: %zu results "
		    "for %u tests", total, sched_nunits(r->sched));
		r->error = 1;
	}
}

static void
run_end(struct run *r)
{
	struct run_summary sum;

	memset(&sum, 0, sizeof sum);
	run_account(r);
	sum.counts = r->counts;
	sum.elapsed = clock_mono() - r->start;
	sum.exit_code = run_exit_code(r);
	sum.interrupted = r->interrupted;
	sum.stop_reason = r->stop_reason[0] != '\0' ? r->stop_reason : NULL;
	if (r->sched == NULL && !r->error && !r->o->list)
		dr_notice(r->dr, LOG_LVL_WARN, "no tests collected");
	if (r->sched != NULL || !r->o->list)
		dr_run_end(r->dr, &sum);
	if (r->hist != NULL && r->sched != NULL && !r->error)
		history_save(r->hist);
}

/* DISTMGR_STATS=1: what the benchmark reads about the manager itself. */
static void
run_stats(const struct run *r)
{
	struct rusage ru;
	uint32_t n = r->sched != NULL ? sched_nunits(r->sched) : 0;

	if (getenv("DISTMGR_STATS") == NULL || getrusage(RUSAGE_SELF, &ru))
		return;
	fprintf(stderr, "distmgr-stats: tests %u peak_rss_kb %ld "
	    "cpu_user %.3f cpu_sys %.3f catalog_bytes %zu sched_bytes %zu "
	    "elapsed %.3f\n", n, ru.ru_maxrss,
	    ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
	    r->cat != NULL ? cat_memory(r->cat) : 0,
	    r->sched != NULL ? sched_memory(r->sched) : 0,
	    clock_mono() - r->start);
}

int
run_main(const struct options *o, const char *argv0)
{
	struct run r;
	int code;

	memset(&r, 0, sizeof r);
	if (run_setup(&r, o, argv0) == -1) {
		run_teardown(&r);
		return EXIT_INTERNAL;
	}
	run_signals(&r);
	if (run_start_workers(&r) == 0 || run_any_worker(&r))
		event_base_dispatch(r.base);
	/* Only a killed worker is left if the loop ended early. */
	while (run_any_worker(&r)) {
		pool_kill_all(r.pool);
		event_base_loop(r.base, EVLOOP_ONCE);
	}
	run_end(&r);
	run_stats(&r);
	code = run_exit_code(&r);
	run_teardown(&r);
	return code;
}

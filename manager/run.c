/*
 * run.c - one run, from the options to the exit code.
 *
 * Start every worker at once, through its --tx spec; one (a local one if
 * there is any) sends the test lists, the others only their hashes, and
 * no test runs until every hash matches. Workers far away may take their
 * time: the run starts once the local ones are loaded and the far ones
 * have had RUN_JOIN_WAIT seconds, and one that comes later joins the run
 * (its hash checked first); one that never comes is reported and the
 * run goes on with the others. Then
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
#include <sys/stat.h>

#include <ctype.h>
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
#define RUN_JOIN_WAIT		3.0	/* seconds far workers get to be in
					   at the start */
#define RUN_REDIAL_EVERY	2	/* seconds between tries at a tcp=
					   host that could not be reached */

enum phase { PH_START, PH_RUN, PH_END };

struct slotinfo {
	int		 loaded;
	char		**hash;		/* per suite */
	size_t		*count;
	struct worker_info info;
	char		*hostname, *os, *arch, *version, *tmpdir;
	const char	*spec, *id;	/* the options' */
	int		 remote;	/* not popen: suites by content */
	int		 group;
	int		 up;		/* up, with its info in info */
	int		 up_told;	/* the reporters have heard worker_up */
	int		 retired;	/* no more replacements */
	int		 told;		/* its failure was told already */
	int		 redial;	/* unreachable: tried again while
					   tests remain (a host may join
					   late, or come back) */
};

struct run {
	const struct options	*o;
	const struct run_env	*env;	/* what --looponfail shares, or NULL */
	struct event_base	*base;
	struct distreporter	*dr;
	struct history		*hist;
	struct pool		*pool;
	struct catalog		*cat;
	struct sched		*sched;
	char			 worker[PATH_MAX];
	char			 run_id[40];
	int			 nslots, ngroups;
	struct opt_slot		*slots;
	struct slotinfo		*si;
	int			*group_of;	/* per slot, for the scheduler */
	struct ship		*ship;
	struct ssl_ctx_st	*tls;
	char			**load_paths;
	uint64_t		 shipped_bytes;
	enum phase		 phase;
	int			 lister;	/* the slot whose lists count,
						   -1: none yet */
	int			 listing;	/* lists asked again, unanswered */
	int			 join_waited;	/* RUN_JOIN_WAIT is over */
	int			 catalog_done;
	int			 run_started;	/* run_start was told */
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
				*ev_stop, *ev_join, *ev_redial;
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
	if (r->o->report_durations && r->hist != NULL) {
		/* Before history_record below: what earlier runs knew. */
		tr.nhistory = (int)history_recent(r->hist, tr.id, tr.history,
		    REPORT_HISTORY_MAX);
		tr.expected = tr.nhistory > 0 ? history_duration(r->hist,
		    tr.id) : -1;
	}
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
run_drain(struct run *r, int group, const char *why)
{
	uint32_t units[256];
	size_t n, i;

	while ((n = sched_drain(r->sched, group, units, DM_NELEM(units))) > 0)
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

/* Workers are announced after the run's header (run_start): those up
 * before it are told by run_begin, replacements at once. */
static void
run_tell_up(struct run *r, int slot)
{
	struct slotinfo *s = &r->si[slot];

	if (!r->run_started || !s->up || s->up_told)
		return;
	s->up_told = 1;
	dr_worker_up(r->dr, &s->info);
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
	free(s->tmpdir);
	s->tmpdir = wi->tmpdir != NULL ? xstrdup(wi->tmpdir) : NULL;
	s->hostname = xstrdup(wi->hostname);
	s->os = xstrdup(wi->os);
	/* "linux", as the node line's format has it, whatever case the
	 * worker's uname(2) gave ("Linux"). */
	for (char *c = s->os; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	s->arch = xstrdup(wi->arch);
	s->version = xstrdup(wi->version);
	s->info = *wi;
	s->info.id = s->id;
	s->info.spec = s->spec;
	s->info.hostname = s->hostname;
	s->info.os = s->os;
	s->info.arch = s->arch;
	s->info.version = s->version;
	s->info.tmpdir = s->tmpdir;
	s->up = 1;
	run_tell_up(r, slot);
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
	if (slot != r->lister || r->catalog_done || r->error)
		return;
	if (cat_add_piece(r->cat, (uint16_t)suite, box, why, sizeof why) == -1)
		run_fail(r, "%s: a bad test list from %s: %s",
		    r->o->suites[suite], r->si[slot].id, why);
}

/* "w3 (ssh=farm2)": a far worker is known by its spec too. */
static const char *
slot_name(const struct run *r, int slot, char *buf, size_t len)
{
	if (r->si[slot].remote)
		snprintf(buf, len, "%s (%s)", r->si[slot].id,
		    r->si[slot].spec);
	else
		snprintf(buf, len, "%s", r->si[slot].id);
	return buf;
}

static void
cb_load_failed(void *ctx, int slot, const char *code, const char *why)
{
	struct run *r = ctx;
	char name[128];

	if (r->phase == PH_END)
		return;
	/* A local worker that cannot load the suite means the suite is
	 * broken: the run cannot go on. A far one may lack what the suite
	 * needs, or have received it damaged: the others go on. */
	if (r->phase == PH_START && !r->si[slot].remote) {
		run_fail(r, "cannot load the suite: %s (%s)", why, code);
		return;
	}
	if (r->si[slot].remote && !r->si[slot].told) {
		dr_notice(r->dr, LOG_LVL_ERROR, "%s cannot load the suite: "
		    "%s (%s); going on without it", slot_name(r, slot, name,
		    sizeof name), why, code);
		r->si[slot].told = 1;
	}
	r->si[slot].retired = 1;
	pool_kill(r->pool, slot, "its suite would not load");
}

static void	run_startup_check(struct run *);
static void	run_replacement_check(struct run *, int slot);

/* The lister's lists are all in: the catalog is complete. */
static void
run_catalog_end(struct run *r, int slot, const char *const *hashes,
    const size_t *counts)
{
	size_t i, n = r->o->nsuites;
	char why[256];

	for (i = 0; i < n; i++)
		if (cat_suite_end(r->cat, (uint16_t)i, counts[i], hashes[i],
		    why, sizeof why) == -1) {
			run_fail(r, "%s: the test list from %s is broken: %s",
			    r->o->suites[i], r->si[slot].id, why);
			return;
		}
	r->catalog_done = 1;
}

/* The lister went away before its lists were complete: start the
 * catalog again from a worker that is loaded (now, or when one is). */
static void
run_relist(struct run *r)
{
	size_t s;
	int i;

	if (r->catalog_done || r->listing > 0 || r->error)
		return;
	for (i = 0; i < r->nslots; i++)
		if (r->si[i].loaded && pool_alive(r->pool, i))
			break;
	if (i == r->nslots) {
		r->lister = -1;
		return;
	}
	cat_free(r->cat);
	r->cat = cat_new();
	for (s = 0; s < r->o->nsuites; s++)
		cat_suite_add(r->cat, r->o->suites[s]);
	r->lister = i;
	r->listing = (int)r->o->nsuites;
	for (s = 0; s < r->o->nsuites; s++)
		pool_fetch_list(r->pool, i, s);
	if (r->o->nsuites == 0) {
		r->listing = 0;
		r->catalog_done = 1;
	}
}

static void
cb_loaded(void *ctx, int slot, const char *const *hashes,
    const size_t *counts)
{
	struct run *r = ctx;
	struct slotinfo *s = &r->si[slot];
	size_t i, n = r->o->nsuites;

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
	if (slot == r->lister && r->listing == 0 && !r->catalog_done &&
	    !r->error)
		run_catalog_end(r, slot, hashes, counts);
	else if (r->lister == -1)
		run_relist(r);
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

/* A worker removes its TMPDIR when it exits; one that was killed cannot.
 * Only a local worker's path is ours to remove. */
static void
run_remove_tmpdir(struct run *r, int slot)
{
	struct slotinfo *s = &r->si[slot];
	char why[512];

	if (s->tmpdir != NULL && !s->remote &&
	    tmpdir_remove(s->tmpdir, why, sizeof why) == -1)
		log_warn("%s: %s", s->id, why);
	free(s->tmpdir);
	s->tmpdir = NULL;
	s->info.tmpdir = NULL;
}

/* --dist each: a group with no worker left, nor one coming, leaves its
 * own tests to nobody else. */
static void
run_group_check(struct run *r, int group)
{
	int i;

	if (r->o->dist != DIST_EACH || r->phase != PH_RUN)
		return;
	for (i = 0; i < r->nslots; i++)
		if (r->si[i].group == group && pool_alive(r->pool, i))
			return;
	run_drain(r, group, "not run: its host group's workers were lost "
	    "and not replaced");
}

static void
run_redial_arm(struct run *r)
{
	struct timeval tv = { RUN_REDIAL_EVERY, 0 };

	if (!evtimer_pending(r->ev_redial, NULL))
		evtimer_add(r->ev_redial, &tv);
}

/* A far worker that went before it was loaded: reported once, and its
 * slot given up (the run goes on with the others). A tcp= host that
 * could not be reached at all is tried again while tests remain: it may
 * be booting, or its daemon restarting, and joins when it can. One that
 * answered and failed (TLS, a refusal) would fail the same way again. */
static void
run_never_came(struct run *r, int slot, const struct pool_loss *loss)
{
	char name[128];
	const char *again = "";

	r->si[slot].retired = 1;
	if (loss->unreachable && !loss->expected && !r->error &&
	    r->phase != PH_END) {
		r->si[slot].redial = 1;
		run_redial_arm(r);
		again = "; trying again while tests remain";
	}
	if (r->si[slot].told || loss->expected)
		return;
	r->si[slot].told = 1;
	if (*loss->err_tail != '\0')
		dr_notice(r->dr, LOG_LVL_WARN, "%s did not come up: %s; its "
		    "stderr ended: %s%s", slot_name(r, slot, name,
		    sizeof name), loss->why, loss->err_tail, again);
	else
		dr_notice(r->dr, LOG_LVL_WARN, "%s did not come up: %s%s",
		    slot_name(r, slot, name, sizeof name), loss->why, again);
}

/* Another try at the unreachable hosts, once the run is under way and
 * for as long as it has tests to give them. Never waited for: a run
 * whose other workers are all gone ends as it would without them. */
static void
redial_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	char why[512];
	int i;

	(void)fd;
	(void)what;
	if (r->error || r->phase == PH_END)
		return;
	if (r->phase == PH_START) {
		run_redial_arm(r);
		return;
	}
	if (sched_stopping(r->sched) || sched_finished(r->sched))
		return;
	for (i = 0; i < r->nslots; i++) {
		if (!r->si[i].redial || pool_alive(r->pool, i))
			continue;
		r->si[i].redial = 0;
		if (pool_start(r->pool, i, NULL, why, sizeof why) == 0)
			r->si[i].retired = 0;
	}
}

/* The test a lost worker was running gets its result. */
static void
run_lost_test(struct run *r, int slot, const struct pool_loss *loss)
{
	uint32_t running;
	double since;
	json_t *box;
	char msg[1024];

	if (!sched_running(r->sched, slot, &running, &since))
		since = clock_mono();
	sched_worker_lost(r->sched, slot, &running);
	if (running == SCHED_NONE)
		return;
	box = crash_box(clock_mono() - since, loss->signal);
	if (loss->expected && sched_stopping(r->sched))
		/* We killed it to stop: the test did nothing wrong. */
		run_attempt(r, slot, running, OUT_NOT_RUN, box, "interrupted");
	else {
		crash_message(msg, sizeof msg, loss->why, loss->timed_out,
		    run_limit(r, unit_cat(r, running)), loss->err_tail);
		run_attempt(r, slot, running, lost_outcome(r, running,
		    loss->timed_out), box, msg);
	}
	json_decref(box);
}

static void
cb_lost(void *ctx, int slot, const struct pool_loss *loss)
{
	struct run *r = ctx;
	int was_loaded = r->si[slot].loaded;

	run_remove_tmpdir(r, slot);
	r->running[slot] = NULL;
	r->si[slot].loaded = 0;		/* a replacement loads anew */
	/* Whatever its tests held is released: they died with it. */
	sync_owners_gone(r->sync, SYNC_OWNER(slot, 0), SYNC_OWNER_SLOT_MASK, 1,
	    syncask_drop);
	r->si[slot].up = 0;
	if (r->si[slot].up_told) {
		r->si[slot].up_told = 0;
		dr_worker_down(r->dr, &r->si[slot].info, loss->expected ?
		    NULL : loss->why);
	}
	if (r->si[slot].remote && (!was_loaded || r->phase == PH_START))
		run_never_came(r, slot, loss);
	else if (r->phase == PH_START && !loss->expected) {
		if (*loss->err_tail != '\0')
			run_fail(r, "worker %s failed to start: %s; its stderr "
			    "ended: %s", r->si[slot].id, loss->why,
			    loss->err_tail);
		else
			run_fail(r, "worker %s failed to start: %s",
			    r->si[slot].id, loss->why);
	}
	if (r->phase == PH_START && slot == r->lister && !r->catalog_done)
		run_relist(r);
	if (r->sched != NULL) {
		run_lost_test(r, slot, loss);
		if (!loss->expected && run_may_restart(r, slot))
			run_restart(r, slot);
		run_group_check(r, r->si[slot].group);
		run_dispatch_all(r);
	}
	if (r->phase == PH_START)
		run_startup_check(r);
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

	if (slot == r->lister && r->listing > 0) {
		if (why != NULL) {
			run_fail(r, "%s: cannot get the test list from %s: %s",
			    r->o->suites[suite], r->si[slot].id, why);
			return;
		}
		if (--r->listing == 0 && r->phase == PH_START) {
			run_catalog_end(r, slot,
			    (const char *const *)r->si[slot].hash,
			    r->si[slot].count);
			run_startup_check(r);
		}
		return;
	}
	if (r->diffcat == NULL || slot != r->diff_slot)
		return;
	if (why == NULL) {
		n = cat_diff(r->cat, (uint16_t)suite, r->si[r->lister].id,
		    r->diffcat,
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

/* With -v, what a far worker was sent: the second run of an unchanged
 * suite sends nothing. */
static void
cb_shipped(void *ctx, int slot, uint64_t bytes, size_t sent, size_t cached)
{
	struct run *r = ctx;

	r->shipped_bytes += bytes;
	if (r->o->verbosity < 1)
		return;
	if (sent == 0)
		dr_notice(r->dr, LOG_LVL_INFO, "[%s] shipped 0 bytes (%zu "
		    "file%s cached)", r->si[slot].id, cached,
		    cached == 1 ? "" : "s");
	else
		dr_notice(r->dr, LOG_LVL_INFO, "[%s] shipped %llu bytes (%zu "
		    "file%s sent, %zu cached)", r->si[slot].id,
		    (unsigned long long)bytes, sent, sent == 1 ? "" : "s",
		    cached);
}

static const struct pool_cbs run_pool_cbs = {
	cb_loaded, cb_piece, cb_load_failed, cb_started, cb_output, cb_result,
	cb_batch_done, cb_lost, cb_up, cb_listed, cb_shipped, cb_sync,
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
	if (r->si[slot].remote)
		sched_set_rtt(r->sched, slot, pool_rtt(r->pool, slot));
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
		    "list than %s: %zu tests (hash %.12s), %s has %zu (hash "
		    "%.12s)", r->o->suites[i], s->id, r->si[r->lister].id,
		    s->count[i], s->hash[i], r->si[r->lister].id,
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

/* Can the run begin? The catalog is complete, every local worker is
 * loaded, and every far one is loaded or has had RUN_JOIN_WAIT seconds
 * (it joins later). When no worker came up at all, nothing can run. */
static void
run_startup_check(struct run *r)
{
	struct timeval tv = { (time_t)RUN_STOP_GRACE, 0 };
	size_t which = 0, s;
	int i, bad = -1, nloaded = 0, pending = 0, pending_local = 0;

	if (r->error || r->phase != PH_START)
		return;
	for (i = 0; i < r->nslots; i++) {
		if (r->si[i].loaded)
			nloaded++;
		else if (!r->si[i].retired) {
			pending++;
			pending_local += !r->si[i].remote;
		}
	}
	if (nloaded == 0 && pending == 0) {
		run_fail(r, "no worker came up (%d tried)", r->nslots);
		return;
	}
	if (!r->catalog_done || nloaded == 0 || pending_local > 0 ||
	    (pending > 0 && !r->join_waited))
		return;
	for (i = 0; i < r->nslots && bad < 0; i++)
		if (i != r->lister && r->si[i].loaded &&
		    run_hash_mismatch(r, i, &which))
			bad = i;
	if (bad < 0) {
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

static void
join_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	r->join_waited = 1;
	run_startup_check(r);
	run_check_done(r);
}

/* ---- selection and order ------------------------------------------------- */

static int
run_cmp_id(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

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
	const struct run_env *env = r->env;

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
		    (lf > 0 && !history_failed_last(r->hist, id)) ||
		    (env != NULL && env->only != NULL &&
		    bsearch(&id, env->only, env->nonly, sizeof *env->only,
		    run_cmp_id) == NULL))
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

/* --list --json FILE|-: the list to FILE, or to stdout. */
static void
run_write_list(struct run *r, json_t *list)
{
	const char *path = r->o->json;
	int to_stdout = strcmp(path, "-") == 0;
	FILE *fp = to_stdout ? stdout : fopen(path, "w");
	int bad;

	if (fp == NULL) {
		run_fail(r, "--json: cannot create %s: %s", path,
		    strerror(errno));
		return;
	}
	bad = json_dumpf(list, fp, JSON_INDENT(1)) == -1 ||
	    fputc('\n', fp) == EOF || fflush(fp) == EOF;
	if (!to_stdout && fclose(fp) == EOF)
		bad = 1;
	if (bad)
		run_fail(r, "--json: cannot write %s: %s", to_stdout ?
		    "stdout" : path, strerror(errno));
}

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
	run_write_list(r, e);
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
	if (r->o->report_durations)
		ri.report_durations = r->o->durations <= 0 ?
		    REPORT_DURATIONS_DEFAULT : r->o->durations >
		    REPORT_DURATIONS_MAX ? REPORT_DURATIONS_MAX :
		    r->o->durations;
	dr_run_start(r->dr, &ri);
	r->run_started = 1;
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
	sc.ngroups = r->ngroups;
	sc.group = r->group_of;
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
	/* The header names the seed (--random-order=SEED): once. */
	r->phase = PH_RUN;
	run_info_start(r);
	for (i = 0; i < r->nslots; i++)
		run_tell_up(r, i);
	for (i = 0; i < r->nslots; i++)
		if (pool_alive(r->pool, i) && r->si[i].loaded)
			sched_worker_up(r->sched, i, clock_mono());
	for (i = 0; i < r->nslots; i++)
		run_dispatch(r, i);
	/* --dist each: a group none of whose workers came up. */
	for (i = 0; i < r->ngroups; i++)
		run_group_check(r, i);
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
			for (i = 0; i < (r->o->dist == DIST_EACH ?
			    r->ngroups : 1); i++)
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
			for (i = 0; i < (r->o->dist == DIST_EACH ?
			    r->ngroups : 1); i++)
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
run_add(struct distreporter *dr, struct reporter *rep, const char *why)
{
	if (rep == NULL) {
		dr_notice(dr, LOG_LVL_ERROR, "%s", why);
		return -1;
	}
	dr_add(dr, rep);
	return 0;
}

/* The terminal, unless TAP or JSON lines have stdout, and each report
 * asked for. A report that cannot start is an error before any work. */
int
run_reporters(struct event_base *base, struct distreporter *dr,
    const struct options *o)
{
	struct terminal_options to;
	char why[512];

	memset(&to, 0, sizeof to);
	to.verbosity = o->verbosity;
	to.color = o->color;
	to.durations = o->durations;
	to.show_output = 1;
	if (!stdout_taken(o->tap) && !stdout_taken(o->json))
		dr_add(dr, reporter_terminal_new(base, stdout, &to));
	if (o->junit_xml != NULL && run_add(dr, reporter_junit_new(
	    o->junit_xml, why, sizeof why), why) == -1)
		return -1;
	if (o->tap != NULL && run_add(dr, reporter_tap_new(base, o->tap,
	    why, sizeof why), why) == -1)
		return -1;
	if (o->json != NULL && run_add(dr, reporter_json_new(base, o->json,
	    o->argv, why, sizeof why), why) == -1)
		return -1;
	if (o->web != NULL && run_add(dr, reporter_web_new(base, o->web,
	    why, sizeof why), why) == -1)
		return -1;
	return 0;
}

static void
ship_warn(void *arg, const char *text)
{
	struct run *r = arg;

	dr_notice(r->dr, LOG_LVL_WARN, "%s", text);
}

/* What the workers are and how to reach them: the slots, their host
 * groups, the manifest for far ones, TLS for daemons, and the local
 * worker program for popen ones. -1 after a notice. */
static int
run_setup_slots(struct run *r, const struct options *o, const char *argv0)
{
	struct tls_files tf;
	char why[512];
	int i, remote = 0, local = 0, tcp = 0;

	if ((r->slots = opt_slots(o, &r->nslots, &r->ngroups, why,
	    sizeof why)) == NULL) {
		dr_notice(r->dr, LOG_LVL_ERROR, "%s", why);
		r->error = 2;
		return -1;
	}
	for (i = 0; i < r->nslots; i++) {
		if (r->slots[i].tx == NULL || r->slots[i].tx->kind == TX_POPEN)
			local++;
		else
			remote++;
		tcp += r->slots[i].tx != NULL && r->slots[i].tx->kind == TX_TCP;
	}
	if (local > 0 && tp_find_worker(o->worker, argv0, r->worker,
	    sizeof r->worker, why, sizeof why) == -1) {
		dr_notice(r->dr, LOG_LVL_ERROR, "%s", why);
		return -1;
	}
	if (remote > 0 && (r->ship = ship_new(o->suites, o->nsuites, o->ship,
	    o->nship, o->ship_ignore, o->nship_ignore, ship_warn, r, why,
	    sizeof why)) == NULL) {
		dr_notice(r->dr, LOG_LVL_ERROR, "%s", why);
		return -1;
	}
	if (tcp > 0 && o->tls_cert != NULL) {
		tf.ca = o->tls_ca;
		tf.cert = o->tls_cert;
		tf.key = o->tls_key;
		if ((r->tls = tls_client_ctx(&tf, why, sizeof why)) == NULL) {
			dr_notice(r->dr, LOG_LVL_ERROR, "%s", why);
			return -1;
		}
	}
	return 0;
}

/* A local worker may run elsewhere than here (//chdir=): it loads the
 * suites by absolute path. */
static char **
run_load_paths(const struct options *o)
{
	char **p = xcalloc(o->nsuites + 1, sizeof *p), cwd[PATH_MAX];
	size_t i;

	if (getcwd(cwd, sizeof cwd) == NULL)
		cwd[0] = '\0';
	for (i = 0; i < o->nsuites; i++) {
		if (o->suites[i][0] == '/' || cwd[0] == '\0')
			p[i] = xstrdup(o->suites[i]);
		else
			xasprintf(&p[i], "%s/%s", cwd, o->suites[i]);
	}
	return p;
}

static int
run_setup(struct run *r, const struct options *o, const char *argv0,
    const struct run_env *env)
{
	struct pool_config pc;
	int i;

	r->o = o;
	r->env = env;
	r->start = clock_mono();
	r->start_wall = clock_wall();
	if (env != NULL) {
		/* The loop and the reporters are the caller's; what the
		 * last run buffered is not this one's. */
		r->base = env->base;
		r->dr = env->dr;
		dr_forget(r->dr);
	} else {
		r->dr = dr_new();
		if ((r->base = event_base_new()) == NULL)
			fatalx("cannot create the event loop");
		if (!o->list && run_reporters(r->base, r->dr, o) == -1)
			return -1;
	}
	if (run_setup_slots(r, o, argv0) == -1)
		return -1;
	run_make_id(r);
	if (!o->no_cache)
		r->hist = history_open(o->cache_dir != NULL ? o->cache_dir :
		    ".distmgr");
	r->max_restarts = o->max_worker_restart >= 0 ? o->max_worker_restart :
	    4 * r->nslots;
	r->si = xcalloc((size_t)r->nslots, sizeof *r->si);
	r->group_of = xcalloc((size_t)r->nslots, sizeof *r->group_of);
	r->running = xcalloc((size_t)r->nslots, sizeof *r->running);
	r->wnames = xcalloc((size_t)r->nslots, sizeof *r->wnames);
	r->lister = 0;
	for (i = r->nslots - 1; i >= 0; i--) {
		r->si[i].id = r->slots[i].id;
		r->si[i].spec = r->slots[i].spec;
		r->si[i].group = r->group_of[i] = r->slots[i].group;
		r->si[i].remote = r->slots[i].tx != NULL &&
		    r->slots[i].tx->kind != TX_POPEN;
		r->si[i].hash = xcalloc(o->nsuites + 1, sizeof(char *));
		r->si[i].count = xcalloc(o->nsuites + 1, sizeof(size_t));
		r->wnames[i] = r->si[i].id;
		/* A local worker lists: it is the first to be loaded. */
		if (!r->si[i].remote)
			r->lister = i;
	}
	r->cat = cat_new();
	r->sync = sync_new();
	for (i = 0; i < (int)o->nsuites; i++)
		cat_suite_add(r->cat, o->suites[i]);
	r->load_paths = run_load_paths(o);
	memset(&pc, 0, sizeof pc);
	pc.worker = r->worker;
	pc.nslots = r->nslots;
	pc.slots = r->slots;
	pc.suites = o->suites;
	pc.load_paths = (const char *const *)r->load_paths;
	pc.nsuites = o->nsuites;
	pc.run_id = r->run_id;
	pc.worker_count = r->nslots;
	pc.boxed = o->boxed;
	pc.timeout = o->timeout;
	pc.timeout_multiplier = o->timeout_multiplier;
	pc.heartbeat = o->heartbeat;
	pc.ship = r->ship;
	pc.tls = r->tls;
	pc.ssh_command = o->ssh_command;
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
	r->ev_join = evtimer_new(r->base, join_timer_cb, r);
	r->ev_redial = evtimer_new(r->base, redial_timer_cb, r);
	event_add(r->ev_join, &(struct timeval){ (time_t)RUN_JOIN_WAIT,
	    (int)((RUN_JOIN_WAIT - (time_t)RUN_JOIN_WAIT) * 1e6) });
	event_add(r->ev_int, NULL);
	event_add(r->ev_term, NULL);
	event_add(r->ev_chld, NULL);
	event_add(r->ev_progress, &tv);
}

/* Every worker at once; the lister lists the tests. A local worker
 * that cannot be started is an error; a far one is reported (as when it
 * cannot be reached) and the others go on. */
static int
run_start_workers(struct run *r)
{
	int *list = xcalloc(r->o->nsuites + 1, sizeof *list);
	char why[512], name[128];
	size_t s;
	int i, rc = 0;

	for (s = 0; s < r->o->nsuites; s++)
		list[s] = 1;
	for (i = 0; i < r->nslots && rc == 0; i++) {
		if (pool_start(r->pool, i, i == r->lister ? list : NULL, why,
		    sizeof why) == 0)
			continue;
		if (!r->si[i].remote) {
			run_fail(r, "%s", why);
			rc = -1;
			continue;
		}
		dr_notice(r->dr, LOG_LVL_WARN, "%s did not come up: %s",
		    slot_name(r, i, name, sizeof name), why);
		r->si[i].retired = r->si[i].told = 1;
		if (i == r->lister)
			r->lister = -1;
	}
	free(list);
	if (rc == 0)
		run_startup_check(r);
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
		event_free(r->ev_join);
		event_free(r->ev_redial);
	}
	for (i = 0; r->si != NULL && i < r->nslots; i++) {
		for (size_t s = 0; s < r->o->nsuites; s++)
			free(r->si[i].hash[s]);
		free(r->si[i].hash);
		free(r->si[i].count);
		free(r->si[i].hostname);
		free(r->si[i].os);
		free(r->si[i].arch);
		free(r->si[i].version);
		free(r->si[i].tmpdir);
	}
	free(r->si);
	free(r->slots);
	free(r->group_of);
	for (i = 0; r->load_paths != NULL && r->load_paths[i] != NULL; i++)
		free(r->load_paths[i]);
	free(r->load_paths);
	ship_free(r->ship);
	if (r->tls != NULL)
		tls_ctx_free(r->tls);
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
	if (r->env != NULL)
		return;			/* the loop and reporters live on */
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
	/* Rerunning the failed tests of a suite that no longer has them
	 * (--looponfail) is no run: the caller says what happens next. */
	if (r->sched == NULL && !r->error && r->env != NULL &&
	    r->env->only != NULL)
		return;
	if (r->sched == NULL && !r->error && !r->o->list)
		dr_notice(r->dr, LOG_LVL_WARN, "no tests collected");
	/* A usage error is only its sentence: no "no tests ran" after it. */
	if ((r->sched != NULL || !r->o->list) && r->error != 2)
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
	    "elapsed %.3f shipped_bytes %llu\n", n, ru.ru_maxrss,
	    ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
	    r->cat != NULL ? cat_memory(r->cat) : 0,
	    r->sched != NULL ? sched_memory(r->sched) : 0,
	    clock_mono() - r->start, (unsigned long long)r->shipped_bytes);
}

int
run_main(const struct options *o, const char *argv0)
{
	return run_once(o, argv0, NULL);
}

int
run_once(const struct options *o, const char *argv0,
    const struct run_env *env)
{
	struct run r;
	int code;

	memset(&r, 0, sizeof r);
	if (run_setup(&r, o, argv0, env) == -1) {
		code = r.error == 2 ? EXIT_USAGE : EXIT_INTERNAL;
		run_teardown(&r);
		return code;
	}
	run_signals(&r);
	/* A loopbreak before the loop runs is forgotten: enter it only
	 * with something that can end it. */
	if ((run_start_workers(&r) == 0 && !r.error) || run_any_worker(&r))
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

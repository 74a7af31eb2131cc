/*
 * web-state.c - what the live dashboard shows, kept small: counts, one
 * lane per worker (what it runs now and the last tests it ran), the
 * first failures with their message and output, the slowest tests, the
 * last notices and the summary. A browser that connects mid-run gets all
 * of it as one snapshot; connected browsers get only what changed, as a
 * delta, at most once per tick.
 *
 * Its size must never grow with the number of tests: a million-test run
 * keeps the same few hundred kilobytes as a ten-test one. Everything a
 * test printed is clipped before it is kept. It does no I/O and knows
 * nothing of HTTP; reporter-web.c serves what it builds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

#define WST_LANES_MAX		256	/* workers shown; then down lanes
					   are reused */
#define WST_RING		64	/* last tests kept per lane */
#define WST_FAILURES_MAX	100	/* failures kept in full; the rest
					   are counted */
#define WST_SLOWEST		15	/* without --report-durations */
#define WST_DURATIONS_MAX	100	/* with it: at most this many */
#define WST_NOTICES		20
#define WST_MESSAGE_MAX		2048	/* bytes of a failure's message */
#define WST_OUTPUT_MAX		4096	/* bytes per stream of a failure */

struct wst_tl {
	double		 start;		/* seconds since the run started */
	double		 dur;
	enum outcome	 outcome;
	char		*id;
};

struct wst_lane {
	char		*id;
	json_t		*info;		/* spec, host, os, arch, cpus, pid */
	int		 up;
	char		*why;		/* why it went down */
	char		*running;	/* test id, or NULL */
	double		 since;		/* when it started running it */
	size_t		 ran;
	struct wst_tl	 ring[WST_RING];
	size_t		 head;		/* next slot */
	size_t		 len;
	size_t		 fresh;		/* entries since the last delta */
	int		 changed;
	int		 seen;		/* named by the last progress */
};

struct wst_slow {
	char		*id;
	char		*worker;
	double		 dur;
	enum outcome	 outcome;
	int		 nhistory;	/* --report-durations: the cache's */
	double		 history[REPORT_HISTORY_MAX];
	double		 expected;
};

struct wst {
	double		 t0;		/* clock of run_start */
	json_t		*run;
	int		 run_changed;
	size_t		 n[OUT__COUNT];
	size_t		 done;
	size_t		 total;
	double		 eta;
	struct wst_lane	*lanes;
	size_t		 nlanes;
	size_t		 last_lane;	/* lookup cache */
	json_t		*failures;	/* array, at most WST_FAILURES_MAX */
	size_t		 nfailures;	/* all of them */
	size_t		 failures_sent;
	struct wst_slow	*slow;		/* longest first, [slow_max] */
	size_t		 nslow;
	size_t		 slow_max;
	int		 slow_changed;
	json_t		*notices;	/* the last WST_NOTICES */
	size_t		 notices_fresh;
	json_t		*summary;
	int		 summary_changed;
	int		 lanes_reset;	/* a lane was reused for another worker */
	int		 dirty;
};

static double
wst_ms(double s)
{
	return floor(s * 1000.0 + 0.5) / 1000.0;
}

static double
wst_rel(const struct wst *st, double now)
{
	return now > st->t0 ? wst_ms(now - st->t0) : 0.0;
}

struct wst *
wst_new(double now)
{
	struct wst *st = xcalloc(1, sizeof *st);

	st->t0 = now;
	st->eta = -1;
	st->failures = json_array();
	st->notices = json_array();
	st->slow_max = WST_SLOWEST;
	st->slow = xcalloc(st->slow_max, sizeof *st->slow);
	return st;
}

static void
wst_lane_free(struct wst_lane *l)
{
	free(l->id);
	free(l->why);
	free(l->running);
	json_decref(l->info);
	for (size_t i = 0; i < WST_RING; i++)
		free(l->ring[i].id);
	memset(l, 0, sizeof *l);
}

static void
wst_slow_clear(struct wst_slow *s)
{
	free(s->id);
	free(s->worker);
}

void
wst_free(struct wst *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nlanes; i++)
		wst_lane_free(&st->lanes[i]);
	free(st->lanes);
	for (size_t i = 0; i < st->nslow; i++)
		wst_slow_clear(&st->slow[i]);
	free(st->slow);
	json_decref(st->run);
	json_decref(st->failures);
	json_decref(st->notices);
	json_decref(st->summary);
	free(st);
}

int
wst_dirty(const struct wst *st)
{
	return st->dirty;
}

static json_t *
wst_str(const char *s)
{
	return s != NULL ? json_string_lossy(s, strlen(s)) : json_null();
}

static json_t *
wst_clipped(const char *p, size_t len, size_t max)
{
	struct rpt_clip c;
	json_t *v;
	char *buf;
	int n;

	if (p == NULL || len == 0)
		return json_string("");
	rpt_clip(p, len, max, &c);
	if (c.omitted == 0)
		return json_string_lossy(p, len);
	buf = xmalloc(c.head_len + c.tail_len + 64);
	memcpy(buf, c.head, c.head_len);
	n = snprintf(buf + c.head_len, 64, "\n[... %zu bytes omitted ...]\n",
	    c.omitted);
	memcpy(buf + c.head_len + n, c.tail, c.tail_len);
	v = json_string_lossy(buf, c.head_len + (size_t)n + c.tail_len);
	free(buf);
	return v;
}

/* A new run with the same page (--looponfail): what the last one showed
 * goes, but for its notices; browsers get the whole state again. */
static void
wst_forget_run(struct wst *st, size_t slow_max)
{
	for (size_t i = 0; i < st->nlanes; i++)
		wst_lane_free(&st->lanes[i]);
	st->nlanes = st->last_lane = 0;
	for (size_t i = 0; i < st->nslow; i++)
		wst_slow_clear(&st->slow[i]);
	st->nslow = 0;
	if (slow_max != st->slow_max) {
		free(st->slow);
		st->slow_max = slow_max;
		st->slow = xcalloc(slow_max, sizeof *st->slow);
	}
	memset(st->n, 0, sizeof st->n);
	st->done = 0;
	st->eta = -1;
	json_decref(st->failures);
	st->failures = json_array();
	st->nfailures = st->failures_sent = 0;
	json_decref(st->summary);
	st->summary = NULL;
	st->lanes_reset = 1;
}

void
wst_run_start(struct wst *st, const struct run_info *ri, double now)
{
	json_t *suites = json_array();
	size_t slow_max = ri->report_durations <= 0 ? WST_SLOWEST :
	    ri->report_durations > WST_DURATIONS_MAX ? WST_DURATIONS_MAX :
	    (size_t)ri->report_durations;

	if (st->run != NULL || slow_max != st->slow_max)
		wst_forget_run(st, slow_max);
	for (size_t i = 0; i < ri->nsuites; i++)
		json_array_append_new(suites, wst_str(ri->suites[i]));
	json_decref(st->run);
	st->run = json_pack("{s:o,s:I,s:i,s:o,s:b,s:o,s:f,s:o,s:i}",
	    "run_id", wst_str(ri->run_id),
	    "tests", (json_int_t)ri->ntests,
	    "workers", ri->nworkers,
	    "dist", wst_str(ri->dist),
	    "boxed", ri->boxed,
	    "seed", ri->seed >= 0 ? json_integer(ri->seed) : json_null(),
	    "start", ri->start_wall,
	    "suites", suites,
	    "report_durations", ri->report_durations);
	st->t0 = now;
	st->total = ri->ntests;
	st->run_changed = st->dirty = 1;
}

/* The lane of worker id: found, made, or a reused one that is down.
 * NULL when every lane is busy with a live worker. */
static struct wst_lane *
wst_lane(struct wst *st, const char *id)
{
	struct wst_lane *l;
	size_t i;

	if (id == NULL)
		return NULL;
	if (st->last_lane < st->nlanes &&
	    strcmp(st->lanes[st->last_lane].id, id) == 0)
		return &st->lanes[st->last_lane];
	for (i = 0; i < st->nlanes; i++)
		if (strcmp(st->lanes[i].id, id) == 0)
			return &st->lanes[st->last_lane = i];
	if (st->nlanes < WST_LANES_MAX) {
		st->lanes = xreallocarray(st->lanes, st->nlanes + 1,
		    sizeof *st->lanes);
		i = st->nlanes++;
	} else {
		for (i = 0; i < st->nlanes && st->lanes[i].up; i++)
			;
		if (i == st->nlanes)
			return NULL;
		wst_lane_free(&st->lanes[i]);
		st->lanes_reset = 1;	/* clients must drop the old lane */
	}
	l = &st->lanes[st->last_lane = i];
	memset(l, 0, sizeof *l);
	l->id = xstrdup(id);
	l->up = 1;
	l->changed = 1;
	return l;
}

void
wst_worker(struct wst *st, const struct worker_info *w, int up,
    const char *why)
{
	struct wst_lane *l = wst_lane(st, w->id);

	if (l == NULL)
		return;
	json_decref(l->info);
	l->info = json_pack("{s:o,s:o,s:o,s:o,s:i,s:I,s:o}",
	    "spec", wst_str(w->spec), "host", wst_str(w->hostname),
	    "os", wst_str(w->os), "arch", wst_str(w->arch), "cpus", w->cpus,
	    "pid", (json_int_t)w->pid, "version", wst_str(w->version));
	l->up = up;
	free(l->why);
	l->why = why != NULL ? xstrdup(why) : NULL;
	if (!up) {
		free(l->running);
		l->running = NULL;
	}
	l->changed = st->dirty = 1;
}

static void
wst_lane_add(struct wst_lane *l, const struct test_report *t, double end)
{
	struct wst_tl *e = &l->ring[l->head];

	free(e->id);
	e->id = xstrdup(t->id);
	e->dur = t->duration > 0 ? t->duration : 0;
	e->start = end > e->dur ? end - e->dur : 0;
	e->outcome = t->outcome;
	l->head = (l->head + 1) % WST_RING;
	if (l->len < WST_RING)
		l->len++;
	if (l->fresh < WST_RING)
		l->fresh++;
	l->ran++;
	if (l->running != NULL && strcmp(l->running, t->id) == 0) {
		free(l->running);
		l->running = NULL;
	}
	l->changed = 1;
}

static void
wst_add_failure(struct wst *st, const struct test_report *t, double rel)
{
	json_t *f;

	st->nfailures++;
	if (json_array_size(st->failures) >= WST_FAILURES_MAX)
		return;
	f = json_pack("{s:I,s:o,s:s,s:o,s:o,s:i,s:o,s:o,s:f,s:f,s:o,s:i,"
	    "s:o,s:o}",
	    "seq", (json_int_t)st->nfailures,
	    "id", wst_str(t->id),
	    "outcome", outcome_name(t->outcome),
	    "message", t->message != NULL ? wst_clipped(t->message,
		strlen(t->message), WST_MESSAGE_MAX) : json_null(),
	    "file", wst_str(t->fail_file != NULL ? t->fail_file : t->file),
	    "line", t->fail_file != NULL ? t->fail_line : t->line,
	    "worker", wst_str(t->worker),
	    "host", wst_str(t->host),
	    "duration", wst_ms(t->duration),
	    "at", rel,
	    "signal", wst_str(t->signal_name),
	    "attempts", t->attempts,
	    "stdout", wst_clipped(t->out, t->out_len, WST_OUTPUT_MAX),
	    "stderr", wst_clipped(t->err, t->err_len, WST_OUTPUT_MAX));
	if (f != NULL)
		json_array_append_new(st->failures, f);
}

static void
wst_note_slow(struct wst *st, const struct test_report *t)
{
	struct wst_slow *s;
	size_t i;

	if (st->nslow == st->slow_max &&
	    t->duration <= st->slow[st->slow_max - 1].dur)
		return;
	if (st->nslow == st->slow_max)
		wst_slow_clear(&st->slow[--st->nslow]);
	for (i = st->nslow; i > 0 && st->slow[i - 1].dur < t->duration; i--)
		st->slow[i] = st->slow[i - 1];
	s = &st->slow[i];
	s->id = xstrdup(t->id);
	s->worker = t->worker != NULL ? xstrdup(t->worker) : NULL;
	s->dur = t->duration;
	s->outcome = t->outcome;
	s->nhistory = t->nhistory < 0 ? 0 : t->nhistory > REPORT_HISTORY_MAX ?
	    REPORT_HISTORY_MAX : t->nhistory;
	for (int k = 0; k < s->nhistory; k++)
		s->history[k] = wst_ms(t->history[k]);
	s->expected = s->nhistory > 0 ? t->expected : -1;
	st->nslow++;
	st->slow_changed = 1;
}

void
wst_result(struct wst *st, const struct test_report *t, double now)
{
	struct wst_lane *l;
	double rel = wst_rel(st, now);

	if (t->outcome > OUT_NONE && t->outcome < OUT__COUNT)
		st->n[t->outcome]++;
	st->done++;
	if ((l = wst_lane(st, t->worker)) != NULL)
		wst_lane_add(l, t, rel);
	if (outcome_is_failure(t->outcome))
		wst_add_failure(st, t, rel);
	wst_note_slow(st, t);
	st->dirty = 1;
}

static void
wst_set_running(struct wst_lane *l, const char *id, double rel)
{
	if (id == NULL ? l->running == NULL :
	    l->running != NULL && strcmp(l->running, id) == 0)
		return;
	free(l->running);
	l->running = id != NULL ? xstrdup(id) : NULL;
	l->since = rel;
	l->changed = 1;
}

void
wst_progress(struct wst *st, const struct progress *p, double now)
{
	double rel = wst_rel(st, now);
	struct wst_lane *l;

	for (size_t i = 0; i < st->nlanes; i++)
		st->lanes[i].seen = 0;
	for (size_t i = 0; i < p->nworkers && p->workers != NULL; i++) {
		if ((l = wst_lane(st, p->workers[i])) == NULL)
			continue;
		l->seen = 1;
		wst_set_running(l, p->running != NULL ? p->running[i] : NULL,
		    rel);
	}
	/* A worker the progress does not name runs nothing now. */
	for (size_t i = 0; i < st->nlanes; i++)
		if (!st->lanes[i].seen)
			wst_set_running(&st->lanes[i], NULL, rel);
	if (p->total > 0)
		st->total = p->total;
	st->eta = p->eta;
	st->dirty = 1;
}

void
wst_notice(struct wst *st, int level, const char *text)
{
	static const char *const names[] = { "error", "warning", "info",
	    "debug" };

	json_array_append_new(st->notices, json_pack("{s:s,s:o}",
	    "level", level >= 0 && (size_t)level < DM_NELEM(names) ?
	    names[level] : "info", "text", wst_clipped(text, text != NULL ?
	    strlen(text) : 0, WST_MESSAGE_MAX)));
	if (json_array_size(st->notices) > WST_NOTICES)
		json_array_remove(st->notices, 0);
	if (st->notices_fresh < WST_NOTICES)
		st->notices_fresh++;
	st->dirty = 1;
}

void
wst_run_end(struct wst *st, const struct run_summary *s, double now)
{
	char line[512];

	counts_line(&s->counts, s->elapsed, line, sizeof line);
	json_decref(st->summary);
	st->summary = json_pack("{s:s,s:f,s:i,s:b,s:o,s:f}",
	    "line", line, "elapsed", s->elapsed, "exit_code", s->exit_code,
	    "interrupted", s->interrupted, "stop_reason",
	    wst_str(s->stop_reason), "at", wst_rel(st, now));
	/* The summary's counts are the truth: they include tests that
	 * never got a result of their own. */
	for (int i = 0; i < OUT__COUNT; i++)
		st->n[i] = s->counts.n[i];
	st->done = counts_total(&s->counts);
	for (size_t i = 0; i < st->nlanes; i++)
		wst_set_running(&st->lanes[i], NULL, wst_rel(st, now));
	st->eta = 0;
	st->summary_changed = st->dirty = 1;
}

/* ---- what a browser is sent ---------------------------------------- */

static json_t *
wst_counts(const struct wst *st)
{
	json_t *o = json_object();

	for (int i = OUT_NONE + 1; i < OUT__COUNT; i++)
		json_object_set_new(o, outcome_name(i),
		    json_integer((json_int_t)st->n[i]));
	return o;
}

/* The last n timeline entries of l, oldest first. */
static json_t *
wst_timeline(const struct wst_lane *l, size_t n)
{
	json_t *a = json_array();
	size_t i, k;

	if (n > l->len)
		n = l->len;
	for (k = n; k > 0; k--) {
		i = (l->head + WST_RING - k) % WST_RING;
		json_array_append_new(a, json_pack("[f,f,s,o]",
		    wst_ms(l->ring[i].start), wst_ms(l->ring[i].dur),
		    outcome_name(l->ring[i].outcome), wst_str(l->ring[i].id)));
	}
	return a;
}

static json_t *
wst_lane_json(const struct wst_lane *l, size_t ntl)
{
	json_t *o = json_pack("{s:o,s:b,s:o,s:o,s:f,s:I,s:o}",
	    "id", wst_str(l->id), "up", l->up, "why", wst_str(l->why),
	    "running", wst_str(l->running), "since", l->since,
	    "ran", (json_int_t)l->ran, "tl", wst_timeline(l, ntl));

	if (l->info != NULL)
		json_object_update(o, l->info);
	return o;
}

static json_t *
wst_slowest(const struct wst *st)
{
	json_t *a = json_array();

	const struct wst_slow *s;
	json_t *e, *h;

	for (size_t i = 0; i < st->nslow; i++) {
		s = &st->slow[i];
		e = json_pack("{s:o,s:f,s:o,s:s}",
		    "id", wst_str(s->id), "duration", wst_ms(s->dur),
		    "worker", wst_str(s->worker),
		    "outcome", outcome_name(s->outcome));
		/* --report-durations: what the cache knew of it. */
		if (s->nhistory > 0) {
			h = json_array();
			for (int k = 0; k < s->nhistory; k++)
				json_array_append_new(h,
				    json_real(s->history[k]));
			json_object_set_new(e, "history", h);
			json_object_set_new(e, "expected",
			    json_real(wst_ms(s->expected)));
		}
		json_array_append_new(a, e);
	}
	return a;
}

/* What every message carries: small, and always current. */
static json_t *
wst_head(const struct wst *st, double now)
{
	return json_pack("{s:f,s:o,s:I,s:I,s:f,s:I}",
	    "t", wst_rel(st, now), "counts", wst_counts(st),
	    "done", (json_int_t)st->done, "total", (json_int_t)st->total,
	    "eta", st->eta, "nfailures", (json_int_t)st->nfailures);
}

static json_t *
wst_last(json_t *array, size_t n)
{
	json_t *a = json_array();
	size_t size = json_array_size(array);

	for (size_t i = size > n ? size - n : 0; i < size; i++)
		json_array_append(a, json_array_get(array, i));
	return a;
}

static void
wst_mark_sent(struct wst *st)
{
	for (size_t i = 0; i < st->nlanes; i++) {
		st->lanes[i].fresh = 0;
		st->lanes[i].changed = 0;
	}
	st->failures_sent = json_array_size(st->failures);
	st->notices_fresh = 0;
	st->run_changed = st->slow_changed = st->summary_changed = 0;
	st->lanes_reset = 0;
	st->dirty = 0;
}

json_t *
wst_snapshot(const struct wst *st, double now)
{
	json_t *m = wst_head(st, now), *lanes = json_array();

	for (size_t i = 0; i < st->nlanes; i++)
		json_array_append_new(lanes, wst_lane_json(&st->lanes[i],
		    WST_RING));
	json_object_set_new(m, "run", st->run != NULL ? json_incref(st->run) :
	    json_null());
	json_object_set_new(m, "lanes", lanes);
	json_object_set(m, "failures", st->failures);
	json_object_set_new(m, "slowest", wst_slowest(st));
	json_object_set(m, "notices", st->notices);
	json_object_set_new(m, "summary", st->summary != NULL ?
	    json_incref(st->summary) : json_null());
	return m;
}

json_t *
wst_delta(struct wst *st, double now)
{
	json_t *m = wst_head(st, now), *lanes = json_array();
	size_t nf = json_array_size(st->failures);

	/* A reused lane cannot be patched: send the whole state. */
	if (st->lanes_reset) {
		json_decref(m);
		json_decref(lanes);
		m = wst_snapshot(st, now);
		json_object_set_new(m, "reset", json_true());
		wst_mark_sent(st);
		return m;
	}
	for (size_t i = 0; i < st->nlanes; i++)
		if (st->lanes[i].changed)
			json_array_append_new(lanes, wst_lane_json(
			    &st->lanes[i], st->lanes[i].fresh));
	json_object_set_new(m, "lanes", lanes);
	if (st->run_changed && st->run != NULL)
		json_object_set(m, "run", st->run);
	if (nf > st->failures_sent)
		json_object_set_new(m, "failures", wst_last(st->failures,
		    nf - st->failures_sent));
	if (st->slow_changed)
		json_object_set_new(m, "slowest", wst_slowest(st));
	if (st->notices_fresh > 0)
		json_object_set_new(m, "notices", wst_last(st->notices,
		    st->notices_fresh));
	if (st->summary_changed && st->summary != NULL)
		json_object_set(m, "summary", st->summary);
	wst_mark_sent(st);
	return m;
}

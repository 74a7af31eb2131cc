/*
 * test_scheduler.c - the scheduler's decisions, with made-up clocks.
 *
 * A small discrete-event simulation plays the workers: each runs what it
 * was sent in order, takes a given time per test and answers a batch
 * when its last test is done, with a delay each way. The checks are what
 * a user would notice: the makespan against the ideal, every test
 * reported exactly once, a lost worker's tests run elsewhere.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

static int
fails(enum outcome o)
{
	return o == OUT_FAIL || o == OUT_ERROR || o == OUT_CRASH ||
	    o == OUT_TIMEOUT || o == OUT_XPASS;
}

/* ---- the simulation ------------------------------------------------- */

#define SIM_MAXW	32

/* A worker: what it was sent (with when it arrives), and the unit it
 * runs until `until`. */
struct sim_worker {
	uint32_t	*q;
	double		*arrive;
	int		*bend;		/* 1: last unit of a batch */
	size_t		 qh, qt, cap;
	int		 busy;
	double		 until;
	int		 dead;
};

struct sim {
	struct sched	*s;
	int		 nw;
	double		 lat;		/* a round trip */
	const double	*dur;		/* per test */
	struct sim_worker w[SIM_MAXW];
	double		 now;
	uint32_t	*reported;	/* per unit: final results seen */
	enum outcome	(*outcome_of)(uint32_t unit, int attempt);
	uint32_t	*attempts;
	int		*by;		/* per unit: the slot of its result */
	uint32_t	 nunits;
	size_t		 batches;
	double		*t0, *t1;	/* per unit: its last run */
	int		*on;		/* per unit: the slot of that run */
	int32_t		*bgrp;		/* per unit: its batch's group */
	size_t		*bno;		/* per unit: its batch's number */
};

static enum outcome
all_pass(uint32_t u, int attempt)
{
	(void)u;
	(void)attempt;
	return OUT_PASS;
}

static void
sim_init(struct sim *m, const struct sched_config *cfg, uint32_t n,
    const double *dur, const float *est, const uint32_t *order)
{
	int w;

	memset(m, 0, sizeof *m);
	m->s = sched_new(cfg, n, order, est);
	ck_assert_ptr_nonnull(m->s);
	m->nw = cfg->nslots;
	m->dur = dur;
	m->lat = 0.0002;
	m->nunits = sched_nunits(m->s);
	m->reported = xcalloc(m->nunits, sizeof *m->reported);
	m->attempts = xcalloc(m->nunits, sizeof *m->attempts);
	m->by = xcalloc(m->nunits, sizeof *m->by);
	m->t0 = xcalloc(m->nunits, sizeof *m->t0);
	m->t1 = xcalloc(m->nunits, sizeof *m->t1);
	m->on = xcalloc(m->nunits, sizeof *m->on);
	m->bgrp = xcalloc(m->nunits, sizeof *m->bgrp);
	m->bno = xcalloc(m->nunits, sizeof *m->bno);
	m->outcome_of = all_pass;
	for (w = 0; w < m->nw; w++) {
		m->w[w].cap = (size_t)m->nunits * 4 + 16;
		m->w[w].q = xcalloc(m->w[w].cap, sizeof *m->w[w].q);
		m->w[w].arrive = xcalloc(m->w[w].cap, sizeof *m->w[w].arrive);
		m->w[w].bend = xcalloc(m->w[w].cap, sizeof *m->w[w].bend);
	}
}

static void
sim_free(struct sim *m)
{
	int w;

	for (w = 0; w < m->nw; w++) {
		free(m->w[w].q);
		free(m->w[w].arrive);
		free(m->w[w].bend);
	}
	sched_free(m->s);
	free(m->reported);
	free(m->attempts);
	free(m->by);
	free(m->t0);
	free(m->t1);
	free(m->on);
	free(m->bgrp);
	free(m->bno);
}

static void
sim_feed(struct sim *m, int w)
{
	uint32_t units[SCHED_MAX_BATCH];
	struct sim_worker *sw = &m->w[w];
	size_t n, i;

	while ((n = sched_next_batch(m->s, w, m->now, units,
	    SCHED_MAX_BATCH)) > 0) {
		m->batches++;
		for (i = 0; i < n; i++) {
			m->bgrp[units[i]] = sched_batch_group(m->s);
			m->bno[units[i]] = m->batches;
			ck_assert_uint_lt(sw->qt, sw->cap);
			sw->bend[sw->qt] = i == n - 1;
			sw->arrive[sw->qt] = m->now + m->lat;
			sw->q[sw->qt++] = units[i];
		}
	}
}

static void
sim_feed_all(struct sim *m)
{
	int w;

	for (w = 0; w < m->nw; w++)
		if (!m->w[w].dead)
			sim_feed(m, w);
}

/* When worker w does its next thing: ends its test, or starts one. */
static int
sim_next_event(const struct sim *m, int w, double *t)
{
	const struct sim_worker *sw = &m->w[w];

	if (sw->dead)
		return 0;
	if (sw->busy) {
		*t = sw->until;
		return 1;
	}
	if (sw->qh == sw->qt)
		return 0;
	*t = sw->arrive[sw->qh] > m->now ? sw->arrive[sw->qh] : m->now;
	return 1;
}

static void
sim_step(struct sim *m, int w, double t)
{
	struct sim_worker *sw = &m->w[w];
	enum outcome o, fin;
	uint32_t u = sw->q[sw->qh];

	m->now = t;
	if (!sw->busy) {
		sw->busy = 1;
		sw->until = t + m->dur[sched_unit_test(m->s, u)];
		sched_started(m->s, w, u, t);
		m->t0[u] = t;
		m->on[u] = w;
		return;
	}
	sw->busy = 0;
	m->t1[u] = t;
	o = m->outcome_of(u, (int)m->attempts[u]++);
	if (sched_result(m->s, w, u, o, t, &fin) == SCHED_FINAL)
		m->reported[u]++;
	m->by[u] = w;
	if (sw->bend[sw->qh])
		sched_batch_done(m->s, w, t);
	sw->qh++;
	sim_feed_all(m);
}

/* Runs until every unit is final; returns the makespan. */
static double
sim_run(struct sim *m)
{
	int w, best, guard = 0;
	double t, tbest = 0;

	for (w = 0; w < m->nw; w++)
		sched_worker_up(m->s, w, 0);
	sim_feed_all(m);
	while (!sched_finished(m->s)) {
		ck_assert_int_lt(guard++, 10000000);
		best = -1;
		for (w = 0; w < m->nw; w++)
			if (sim_next_event(m, w, &t) &&
			    (best == -1 || t < tbest)) {
				best = w;
				tbest = t;
			}
		ck_assert_msg(best >= 0, "nobody has work but %u of %u "
		    "units are final", sched_nfinal(m->s), m->nunits);
		sim_step(m, best, tbest);
	}
	return m->now;
}

static void
sim_assert_once(const struct sim *m)
{
	uint32_t u;

	for (u = 0; u < m->nunits; u++)
		ck_assert_msg(m->reported[u] == 1, "unit %u reported %u "
		    "times", u, m->reported[u]);
	ck_assert_uint_eq(sched_nfinal(m->s), m->nunits);
}

static struct sched_config
cfg_load(int nslots)
{
	struct sched_config c = { 0, nslots, 0, 0, fails, 0, NULL };

	return c;
}

/* ---- makespans of the workloads -------------------------------- */

/* 1 x 2 s, 4 x 0.5 s, 15 x 0.1 s, 80 x 10 ms, the long ones defined last. */
static uint32_t
skewed(double *dur)
{
	uint32_t n = 0, i;

	for (i = 0; i < 80; i++)
		dur[n++] = 0.010;
	for (i = 0; i < 15; i++)
		dur[n++] = 0.1;
	for (i = 0; i < 4; i++)
		dur[n++] = 0.5;
	dur[n++] = 2.0;
	return n;
}

START_TEST(test_skewed_with_history_is_lpt)
{
	double dur[100];
	float est[100];
	uint32_t order[100], n = skewed(dur), i;
	struct sched_config c = cfg_load(4);
	struct sim m;
	double span;

	for (i = 0; i < n; i++)
		est[i] = (float)dur[i];
	sched_order(n, est, NULL, 1, -1, order);
	ck_assert_uint_eq(order[0], 99);	/* the 2 s test first */
	sim_init(&m, &c, n, dur, est, order);
	span = sim_run(&m);
	sim_assert_once(&m);
	ck_assert_msg(span < 2.0 * 1.02, "makespan %.3f s, ideal 2.0", span);
	sim_free(&m);
}
END_TEST

START_TEST(test_skewed_without_history_finishes)
{
	double dur[100];
	uint32_t n = skewed(dur);
	struct sched_config c = cfg_load(4);
	struct sim m;

	sim_init(&m, &c, n, dur, NULL, NULL);
	sim_run(&m);
	sim_assert_once(&m);
	sim_free(&m);
}
END_TEST

START_TEST(test_cpu_bound_near_ideal)
{
	double dur[64];
	struct sched_config c = cfg_load(2);
	struct sim m;
	double span;
	int i;

	for (i = 0; i < 64; i++)
		dur[i] = 0.050;
	sim_init(&m, &c, 64, dur, NULL, NULL);
	span = sim_run(&m);
	sim_assert_once(&m);
	ck_assert_msg(span < 1.6 * 1.03, "makespan %.3f s, ideal 1.6", span);
	sim_free(&m);
}
END_TEST

START_TEST(test_sleepy_sixteen_workers)
{
	double dur[200];
	struct sched_config c = cfg_load(16);
	struct sim m;
	double span;
	int i;

	for (i = 0; i < 200; i++)
		dur[i] = 0.050;
	sim_init(&m, &c, 200, dur, NULL, NULL);
	span = sim_run(&m);
	sim_assert_once(&m);
	/* 13 rounds of 50 ms is the best 200 tests on 16 workers allow. */
	ck_assert_msg(span < 0.650 * 1.02, "makespan %.3f s, ideal 0.65",
	    span);
	sim_free(&m);
}
END_TEST

START_TEST(test_trivial_tests_go_in_big_batches)
{
	static double dur[20000];
	struct sched_config c = cfg_load(2);
	struct sim m;
	double span;
	int i;

	for (i = 0; i < 20000; i++)
		dur[i] = 0.00001;
	sim_init(&m, &c, 20000, dur, NULL, NULL);
	m.lat = 0.00005;
	span = sim_run(&m);
	sim_assert_once(&m);
	/* Round trips must not dominate: far fewer batches than tests. */
	ck_assert_msg(m.batches < 200, "%zu batches for 20000 tests",
	    m.batches);
	ck_assert_msg(span < 0.1 * 1.5, "makespan %.3f s, ideal 0.1", span);
	sim_free(&m);
}
END_TEST

/* Equal long tests on as many workers: each starts at once rather than
 * queued behind another. */
START_TEST(test_no_prefetch_behind_long_test)
{
	double dur[3] = { 1.0, 1.0, 1.0 };
	float est[3] = { 1.0f, 1.0f, 1.0f };
	struct sched_config c = cfg_load(3);
	struct sim m;
	double span;

	sim_init(&m, &c, 3, dur, est, NULL);
	span = sim_run(&m);
	sim_assert_once(&m);
	ck_assert_msg(span < 1.01, "makespan %.3f s, ideal 1.0", span);
	sim_free(&m);
}
END_TEST

/* ---- order -------------------------------------------------------------- */

START_TEST(test_order)
{
	float est[5] = { 0.1f, SCHED_EST_NONE, 3.0f, 0.2f, SCHED_EST_NONE };
	uint8_t failed[5] = { 0, 0, 0, 1, 0 };
	uint32_t o[5], o2[5], seen = 0;
	int i;

	sched_order(5, NULL, NULL, 1, -1, o);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(o[i], (uint32_t)i);
	/* Failed first, then longest first; unknown counts as the mean
	 * (1.1 s) so it goes after the 3 s test, in definition order. */
	sched_order(5, est, failed, 1, -1, o);
	ck_assert_uint_eq(o[0], 3);
	ck_assert_uint_eq(o[1], 2);
	ck_assert_uint_eq(o[2], 1);
	ck_assert_uint_eq(o[3], 4);
	ck_assert_uint_eq(o[4], 0);
	sched_order(5, est, failed, 0, -1, o);
	ck_assert_uint_eq(o[0], 2);
	/* A seed gives the same permutation every time, ff still first. */
	sched_order(5, est, failed, 1, 42, o);
	sched_order(5, est, failed, 1, 42, o2);
	ck_assert_uint_eq(o[0], 3);
	for (i = 0; i < 5; i++) {
		ck_assert_uint_eq(o[i], o2[i]);
		seen |= 1u << o[i];
	}
	ck_assert_uint_eq(seen, 0x1f);
}
END_TEST

/* ---- faults ------------------------------------------------------------- */

START_TEST(test_worker_lost_requeues_at_front)
{
	struct sched_config c = cfg_load(2);
	float est[10];
	uint32_t u[SCHED_MAX_BATCH], u2[SCHED_MAX_BATCH], running, i;
	size_t n, n2;
	enum outcome fin;
	struct sched *s;

	for (i = 0; i < 10; i++)
		est[i] = 0.001f;
	s = sched_new(&c, 10, NULL, est);
	sched_worker_up(s, 0, 0);
	n = sched_next_batch(s, 0, 0, u, SCHED_MAX_BATCH);
	ck_assert_uint_ge(n, 3);
	sched_started(s, 0, u[0], 0);
	ck_assert_int_eq(sched_result(s, 0, u[0], OUT_PASS, 0.001, &fin),
	    SCHED_FINAL);
	sched_started(s, 0, u[1], 0.001);
	sched_worker_lost(s, 0, &running);
	ck_assert_uint_eq(running, u[1]);
	ck_assert_int_eq(sched_result(s, 0, running, OUT_CRASH, 0.002, &fin),
	    SCHED_FINAL);
	ck_assert_int_eq(fin, OUT_CRASH);
	/* A late result from the dead worker changes nothing. */
	ck_assert_int_eq(sched_result(s, 0, u[2], OUT_PASS, 0.003, &fin),
	    SCHED_IGNORED);
	sched_worker_up(s, 1, 0.002);
	n2 = sched_next_batch(s, 1, 0.002, u2, SCHED_MAX_BATCH);
	ck_assert_uint_ge(n2, 1);
	ck_assert_uint_eq(u2[0], u[2]);		/* the front, in order */
	ck_assert_uint_eq(sched_nfinal(s), 2);
	sched_free(s);
}
END_TEST

static enum outcome
fail_once(uint32_t u, int attempt)
{
	return u % 3 == 0 && attempt == 0 ? OUT_FAIL : OUT_PASS;
}

START_TEST(test_reruns_make_flaky)
{
	struct sched_config c = cfg_load(2);
	double dur[30];
	struct sim m;
	struct sched *s;
	uint32_t u[SCHED_MAX_BATCH], x;
	enum outcome fin;
	int i;

	for (i = 0; i < 30; i++)
		dur[i] = 0.01;
	c.reruns = 1;
	sim_init(&m, &c, 30, dur, NULL, NULL);
	m.outcome_of = fail_once;
	sim_run(&m);
	sim_assert_once(&m);
	for (i = 0; i < 30; i++)
		ck_assert_uint_eq(m.attempts[i], i % 3 == 0 ? 2 : 1);
	sim_free(&m);

	/* The rerun goes to the other worker while there is one. */
	s = sched_new(&c, 1, NULL, NULL);
	sched_worker_up(s, 0, 0);
	sched_worker_up(s, 1, 0);
	ck_assert_uint_eq(sched_next_batch(s, 0, 0, u, 10), 1);
	x = u[0];
	ck_assert_int_eq(sched_result(s, 0, x, OUT_CRASH, 1, &fin),
	    SCHED_RERUN);
	ck_assert_uint_eq(sched_next_batch(s, 0, 1, u, 10), 0);
	ck_assert_uint_eq(sched_next_batch(s, 1, 1, u, 10), 1);
	ck_assert_uint_eq(u[0], x);
	ck_assert_int_eq(sched_result(s, 1, x, OUT_PASS, 2, &fin),
	    SCHED_FINAL);
	ck_assert_int_eq(fin, OUT_FLAKY);
	ck_assert(sched_finished(s));
	sched_free(s);
}
END_TEST

START_TEST(test_maxfail_stops_and_drains)
{
	struct sched_config c = cfg_load(1);
	uint32_t u[SCHED_MAX_BATCH], d[SCHED_MAX_BATCH], total;
	float est[50];
	size_t n, nd, i;
	enum outcome fin;
	struct sched *s;

	for (i = 0; i < 50; i++)
		est[i] = 0.0001f;
	c.maxfail = 2;
	s = sched_new(&c, 50, NULL, est);
	sched_worker_up(s, 0, 0);
	n = sched_next_batch(s, 0, 0, u, SCHED_MAX_BATCH);
	ck_assert_uint_ge(n, 4);
	sched_result(s, 0, u[0], OUT_FAIL, 0.1, &fin);
	ck_assert(!sched_maxfail_hit(s));
	sched_result(s, 0, u[1], OUT_XPASS, 0.2, &fin);
	ck_assert(sched_maxfail_hit(s));
	sched_stop(s);
	ck_assert_uint_eq(sched_next_batch(s, 0, 0.3, u + n, 10), 0);
	/* The cancelled batch is answered: the rest of it is not run. */
	sched_result(s, 0, u[2], OUT_NOT_RUN, 0.3, &fin);
	ck_assert_int_eq(fin, OUT_NOT_RUN);
	ck_assert_uint_eq(sched_batch_done(s, 0, 0.4), n - 3);
	total = 3;
	while ((nd = sched_drain(s, -1, d, 7)) > 0)
		total += (uint32_t)nd;
	ck_assert_uint_eq(total, 50);
	ck_assert(sched_finished(s));
	sched_free(s);
}
END_TEST

START_TEST(test_batch_done_without_results_requeues)
{
	struct sched_config c = cfg_load(1);
	uint32_t u[SCHED_MAX_BATCH], u2[SCHED_MAX_BATCH];
	float est[8] = { 0.001f, 0.001f, 0.001f, 0.001f, 0.001f, 0.001f,
	    0.001f, 0.001f };
	enum outcome fin;
	size_t n;
	struct sched *s;

	s = sched_new(&c, 8, NULL, est);
	sched_worker_up(s, 0, 0);
	n = sched_next_batch(s, 0, 0, u, SCHED_MAX_BATCH);
	ck_assert_uint_ge(n, 2);
	sched_result(s, 0, u[0], OUT_PASS, 0.001, &fin);
	/* Answered with results missing: those run again, first. */
	ck_assert_uint_eq(sched_batch_done(s, 0, 0.002), n - 1);
	ck_assert_uint_ge(sched_next_batch(s, 0, 0.002, u2, SCHED_MAX_BATCH),
	    1);
	ck_assert_uint_eq(u2[0], u[1]);
	/* A second result for a final unit is ignored. */
	ck_assert_int_eq(sched_result(s, 0, u[0], OUT_PASS, 0.003, &fin),
	    SCHED_IGNORED);
	sched_free(s);
}
END_TEST

START_TEST(test_dist_each)
{
	struct sched_config c = cfg_load(3);
	double dur[10];
	struct sim m;
	uint32_t u, per[3] = { 0 };
	int i;

	c.each = 1;
	for (i = 0; i < 10; i++)
		dur[i] = 0.01;
	sim_init(&m, &c, 10, dur, NULL, NULL);
	ck_assert_uint_eq(m.nunits, 30);
	sim_run(&m);
	sim_assert_once(&m);
	for (u = 0; u < 30; u++)
		per[sched_unit_group(m.s, u)]++;
	ck_assert_uint_eq(per[0], 10);
	ck_assert_uint_eq(per[2], 10);
	ck_assert_uint_eq(sched_unit_of(m.s, 2, 4), 24);
	ck_assert_uint_eq(sched_unit_test(m.s, 24), 4);
	sim_free(&m);
}
END_TEST

/* --dist each over host groups: every test once per group, run by the
 * slots of that group only, shared among them. */
START_TEST(test_dist_each_groups)
{
	static const int group[4] = { 0, 0, 1, 1 };
	struct sched_config c = cfg_load(4);
	double dur[10];
	struct sim m;
	uint32_t u, per[4] = { 0 };
	int i;

	c.each = 1;
	c.ngroups = 2;
	c.group = group;
	for (i = 0; i < 10; i++)
		dur[i] = 0.01;
	sim_init(&m, &c, 10, dur, NULL, NULL);
	ck_assert_uint_eq(m.nunits, 20);
	ck_assert_int_eq(sched_ngroups(m.s), 2);
	ck_assert_uint_eq(sched_unit_of(m.s, 3, 4), 14);
	ck_assert_uint_eq(sched_unit_of(m.s, 1, 4), 4);
	sim_run(&m);
	sim_assert_once(&m);
	for (u = 0; u < 20; u++) {
		ck_assert_int_eq(group[m.by[u]], sched_unit_group(m.s, u));
		per[m.by[u]]++;
	}
	/* Both slots of each group took a share. */
	for (i = 0; i < 4; i++)
		ck_assert_uint_gt(per[i], 0);
	sim_free(&m);

	/* A group of no slots, or a slot in no group, is refused. */
	c.ngroups = 5;
	ck_assert_ptr_null(sched_new(&c, 10, NULL, NULL));
}
END_TEST

/* A worker 10 ms away running 0.2 ms tests: with its round trip known it
 * is kept busy; without, it idles a round trip per batch. */
START_TEST(test_rtt_keeps_far_workers_busy)
{
	static double dur[4000];
	struct sched_config c = cfg_load(2);
	struct sim m;
	double blind, aware;
	int i, rtt;

	for (i = 0; i < 4000; i++)
		dur[i] = 0.0002;
	for (rtt = 0; rtt < 2; rtt++) {
		sim_init(&m, &c, 4000, dur, NULL, NULL);
		m.lat = 0.010;
		if (rtt) {
			sched_set_rtt(m.s, 0, 0.010);
			sched_set_rtt(m.s, 1, 0.010);
		}
		if (rtt)
			aware = sim_run(&m);
		else
			blind = sim_run(&m);
		sim_assert_once(&m);
		sim_free(&m);
	}
	/* The ideal is 0.4 s, plus the first batch's way out. */
	ck_assert_msg(aware < 0.4 * 1.15, "makespan %.3f s with the round "
	    "trip known, ideal 0.4", aware);
	ck_assert_msg(blind > aware * 1.15, "without the round trip %.3f s, "
	    "with %.3f s", blind, aware);
}
END_TEST

/* A round trip measured too long (a busy daemon answering late) must not
 * make the first tests look free and hand one worker everything. */
START_TEST(test_rtt_overestimated)
{
	double dur[40];
	struct sched_config c = cfg_load(3);
	struct sim m;
	uint32_t per[3] = { 0 }, u;
	double span;
	int i;

	for (i = 0; i < 40; i++)
		dur[i] = 0.1;
	sim_init(&m, &c, 40, dur, NULL, NULL);
	sched_set_rtt(m.s, 1, 0.3);
	span = sim_run(&m);
	sim_assert_once(&m);
	for (u = 0; u < 40; u++)
		per[m.by[u]]++;
	ck_assert_msg(per[1] <= 16, "worker 1 ran %u of 40", per[1]);
	ck_assert_msg(span < 1.4 * 1.25, "makespan %.3f s, ideal 1.4", span);
	sim_free(&m);
}
END_TEST

/* Workers die at random moments; every unit still ends exactly once. */
START_TEST(test_random_deaths_keep_exactly_once)
{
	struct sched_config c = cfg_load(4);
	uint32_t u[SCHED_MAX_BATCH], d[64], running, n, i;
	uint32_t *seen, *flight[4], nf[4] = { 0 };
	enum outcome fin;
	struct sched *s;
	unsigned seed = 7;
	double now = 0;
	int w, step;
	size_t k, nd;

	n = 500;
	seen = xcalloc(n, sizeof *seen);
	for (w = 0; w < 4; w++)
		flight[w] = xcalloc(4 * SCHED_MAX_BATCH, sizeof *flight[w]);
	c.reruns = 1;
	s = sched_new(&c, n, NULL, NULL);
	for (w = 0; w < 4; w++)
		sched_worker_up(s, w, 0);
	for (step = 0; step < 100000 && !sched_finished(s); step++) {
		now += 0.001;
		w = rand_r(&seed) % 4;
		while ((k = sched_next_batch(s, w, now, u, 64)) > 0)
			for (i = 0; i < k; i++)
				flight[w][nf[w]++] = u[i];
		if (nf[w] == 0)
			continue;
		if (rand_r(&seed) % 50 == 0) {		/* dies */
			sched_started(s, w, flight[w][0], now);
			sched_worker_lost(s, w, &running);
			if (running != SCHED_NONE &&
			    sched_result(s, w, running, OUT_CRASH, now, &fin) ==
			    SCHED_FINAL)
				seen[running]++;
			nf[w] = 0;
			sched_worker_up(s, w, now);
			continue;
		}
		sched_started(s, w, flight[w][0], now);
		if (sched_result(s, w, flight[w][0], rand_r(&seed) % 10 == 0 ?
		    OUT_FAIL : OUT_PASS, now, &fin) == SCHED_FINAL)
			seen[flight[w][0]]++;
		memmove(flight[w], flight[w] + 1, --nf[w] * sizeof *flight[w]);
		if (step == 60000)
			sched_stop(s);
		if (sched_stopping(s))
			while ((nd = sched_drain(s, -1, d, 64)) > 0)
				for (i = 0; i < nd; i++)
					seen[d[i]]++;
	}
	ck_assert(sched_finished(s));
	for (i = 0; i < n; i++)
		ck_assert_msg(seen[i] == 1, "test %u final %u times", i,
		    seen[i]);
	for (w = 0; w < 4; w++)
		free(flight[w]);
	free(seen);
	sched_free(s);
}
END_TEST

/* ---- groups, locks and serial tests ------------------------------------ */

static int
overlaps(const struct sim *m, uint32_t a, uint32_t b)
{
	return m->t0[a] < m->t1[b] && m->t0[b] < m->t1[a];
}

/* A sim whose tests are constrained by k (set up before any worker). */
static void
sim_init_k(struct sim *m, const struct sched_config *cfg, uint32_t n,
    const double *dur, const float *est, const struct sched_constraints *k)
{
	sim_init(m, cfg, n, dur, est, NULL);
	ck_assert_int_eq(sched_constrain(m->s, k), 0);
	/* Once only, and before anything runs. */
	ck_assert_int_eq(sched_constrain(m->s, k), -1);
}

/* Tests 5, 15, ... 95 of 100 in group 0; the rest in none. */
static void
ten_in_group(uint32_t *grp, uint8_t *strat, enum sched_strategy st,
    struct sched_constraints *k)
{
	uint32_t i;

	for (i = 0; i < 100; i++)
		grp[i] = i % 10 == 5 ? 0 : SCHED_NONE;
	strat[0] = (uint8_t)st;
	memset(k, 0, sizeof *k);
	k->ngroups = 1;
	k->strategy = strat;
	k->group = grp;
}

static size_t
phase_events(struct sched *s, struct sched_event *ev, size_t max)
{
	size_t n = 0;

	while (n < max && sched_event(s, &ev[n]))
		n++;
	return n;
}

START_TEST(test_isolated_free_overlaps_nothing)
{
	struct sched_config c = cfg_load(8);
	struct sched_constraints k;
	struct sched_event ev[8];
	double dur[100];
	uint32_t grp[100], a, b;
	uint8_t strat[1];
	int slots_used = 0, used[8] = { 0 };
	double span;
	struct sim m;

	for (a = 0; a < 100; a++)
		dur[a] = 0.05;
	ten_in_group(grp, strat, SCHED_ISOLATED_FREE, &k);
	sim_init_k(&m, &c, 100, dur, NULL, &k);
	span = sim_run(&m);
	sim_assert_once(&m);
	for (a = 5; a < 100; a += 10) {
		for (b = 0; b < 100; b++)
			if (grp[b] == SCHED_NONE)
				ck_assert_msg(!overlaps(&m, a, b), "isolated %u "
				    "overlaps %u", a, b);
		ck_assert_int_eq(m.bgrp[a], -1);	/* each its own child */
		if (!used[m.on[a]]++)
			slots_used++;
	}
	/* Free inside: the phase used the workers. */
	ck_assert_int_ge(slots_used, 5);
	/* 2 rounds of the group, then 12 of the rest: 0.70 s at best. */
	ck_assert_msg(span < 0.70 * 1.10, "makespan %.3f", span);
	ck_assert_uint_eq(phase_events(m.s, ev, 8), 2);
	ck_assert_int_eq(ev[0].kind, SCHED_EV_PHASE_START);
	ck_assert_int_eq(ev[0].group, 0);
	ck_assert_uint_eq(ev[0].tests, 10);
	ck_assert_int_eq(ev[1].kind, SCHED_EV_PHASE_END);
	ck_assert_msg(ev[1].seconds > 0.09 && ev[1].seconds < 0.12,
	    "phase of %.3f s", ev[1].seconds);
	sim_free(&m);
}
END_TEST

START_TEST(test_isolated_serial_one_process_alone)
{
	struct sched_config c = cfg_load(4);
	struct sched_constraints k;
	struct sched_event ev[8];
	double dur[100];
	uint32_t grp[100], a, b;
	uint8_t strat[1];
	struct sim m;

	for (a = 0; a < 100; a++)
		dur[a] = 0.01;
	ten_in_group(grp, strat, SCHED_ISOLATED_SERIAL, &k);
	sim_init_k(&m, &c, 100, dur, NULL, &k);
	sim_run(&m);
	sim_assert_once(&m);
	for (a = 5; a < 100; a += 10) {
		ck_assert_int_eq(m.bgrp[a], 0);
		ck_assert_uint_eq(m.bno[a], m.bno[5]);	/* one batch */
		ck_assert_int_eq(m.on[a], m.on[5]);
		for (b = 0; b < 100; b++)
			if (grp[b] == SCHED_NONE)
				ck_assert(!overlaps(&m, a, b));
		if (a > 5)	/* in order, one after another */
			ck_assert(m.t0[a] >= m.t1[a - 10]);
	}
	ck_assert_uint_eq(phase_events(m.s, ev, 8), 2);
	ck_assert(ev[0].grouped);
	sim_free(&m);
}
END_TEST

/* serial: one process, but the rest runs beside it. */
START_TEST(test_serial_group_beside_the_rest)
{
	struct sched_config c = cfg_load(4);
	struct sched_constraints k;
	struct sched_event ev[8];
	double dur[100];
	uint32_t grp[100], a, b;
	uint8_t strat[1];
	int beside = 0;
	struct sim m;

	for (a = 0; a < 100; a++)
		dur[a] = 0.01;
	ten_in_group(grp, strat, SCHED_SERIAL, &k);
	sim_init_k(&m, &c, 100, dur, NULL, &k);
	sim_run(&m);
	sim_assert_once(&m);
	for (a = 5; a < 100; a += 10) {
		ck_assert_int_eq(m.bgrp[a], 0);
		ck_assert_uint_eq(m.bno[a], m.bno[5]);
		ck_assert_int_eq(m.on[a], m.on[5]);
		for (b = 0; b < 100; b++)
			beside += grp[b] == SCHED_NONE && overlaps(&m, a, b);
	}
	ck_assert_int_gt(beside, 10);
	ck_assert_uint_eq(phase_events(m.s, ev, 8), 0);
	for (b = 0; b < 100; b++)
		if (grp[b] == SCHED_NONE)
			ck_assert_int_eq(m.bgrp[b], -1);
	sim_free(&m);
}
END_TEST

/* A free group is no constraint at all. */
START_TEST(test_free_group_runs_in_parallel)
{
	struct sched_config c = cfg_load(4);
	struct sched_constraints k;
	double dur[100];
	uint32_t grp[100], a, b;
	uint8_t strat[1];
	int together = 0;
	struct sim m;

	for (a = 0; a < 100; a++)
		dur[a] = 0.01;
	ten_in_group(grp, strat, SCHED_FREE, &k);
	for (a = 0; a < 100; a++)
		grp[a] = a < 10 ? 0 : SCHED_NONE;
	sim_init_k(&m, &c, 100, dur, NULL, &k);
	sim_run(&m);
	sim_assert_once(&m);
	for (a = 0; a < 10; a++)
		for (b = 0; b < 10; b++)
			together += a != b && overlaps(&m, a, b);
	for (a = 0; a < 100; a++)
		ck_assert_int_eq(m.bgrp[a], -1);
	ck_assert_int_gt(together, 10);
	sim_free(&m);
}
END_TEST

START_TEST(test_serial_tests_run_alone)
{
	struct sched_config c = cfg_load(4);
	struct sched_constraints k;
	struct sched_event ev[8];
	double dur[50];
	uint8_t serial[50];
	uint32_t a, b;
	struct sim m;

	for (a = 0; a < 50; a++) {
		dur[a] = 0.01;
		serial[a] = a % 10 == 3;
	}
	memset(&k, 0, sizeof k);
	k.serial = serial;
	sim_init_k(&m, &c, 50, dur, NULL, &k);
	sim_run(&m);
	sim_assert_once(&m);
	for (a = 0; a < 50; a++)
		for (b = 0; b < 50; b++)
			if (serial[a] && a != b)
				ck_assert_msg(!overlaps(&m, a, b), "serial %u "
				    "overlaps %u", a, b);
	ck_assert_uint_eq(phase_events(m.s, ev, 8), 2);
	ck_assert_int_eq(ev[0].group, -1);
	ck_assert_uint_eq(ev[0].tests, 5);
	sim_free(&m);
}
END_TEST

/* Lock 0 on the even tests, 1 on every fifth; a few hold both. */
START_TEST(test_locks_never_overlap)
{
	struct sched_config c = cfg_load(8);
	struct sched_constraints k;
	double dur[100];
	uint32_t first[101], locks[200], a, b, n = 0;
	int free_overlap = 0;
	struct sim m;

	for (a = 0; a < 100; a++) {
		dur[a] = 0.002 + (a % 7) * 0.001;
		first[a] = n;
		if (a % 2 == 0)
			locks[n++] = 0;
		if (a % 5 == 0)
			locks[n++] = 1;
	}
	first[100] = n;
	memset(&k, 0, sizeof k);
	k.nlocks = 2;
	k.lock_first = first;
	k.locks = locks;
	sim_init_k(&m, &c, 100, dur, NULL, &k);
	sim_run(&m);
	sim_assert_once(&m);
	for (a = 0; a < 100; a++)
		for (b = a + 1; b < 100; b++) {
			if ((a % 2 == 0 && b % 2 == 0) ||
			    (a % 5 == 0 && b % 5 == 0))
				ck_assert_msg(!overlaps(&m, a, b), "%u and %u "
				    "share a lock and overlap", a, b);
			else if (a % 2 && b % 2 && a % 5 && b % 5)
				free_overlap += overlaps(&m, a, b);
		}
	/* The tests without locks still run side by side. */
	ck_assert_int_gt(free_overlap, 20);
	sim_free(&m);
}
END_TEST

/* A worker dies in the middle of a serial group: the test it ran is
 * the crash, the rest of the group runs as a group on another. */
START_TEST(test_group_rest_runs_elsewhere)
{
	struct sched_config c = cfg_load(2);
	struct sched_constraints k;
	uint32_t grp[10], u[SCHED_MAX_BATCH], u2[SCHED_MAX_BATCH], running, i;
	uint8_t strat[1] = { SCHED_SERIAL };
	enum outcome fin;
	struct sched *s;
	size_t n;

	for (i = 0; i < 10; i++)
		grp[i] = i < 5 ? 0 : SCHED_NONE;
	memset(&k, 0, sizeof k);
	k.ngroups = 1;
	k.strategy = strat;
	k.group = grp;
	s = sched_new(&c, 10, NULL, NULL);
	ck_assert_int_eq(sched_constrain(s, &k), 0);
	sched_worker_up(s, 0, 0);
	n = sched_next_batch(s, 0, 0, u, SCHED_MAX_BATCH);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(sched_batch_group(s), 0);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(u[i], i);
	sched_started(s, 0, 0, 0);
	ck_assert_int_eq(sched_result(s, 0, 0, OUT_PASS, 0.1, &fin),
	    SCHED_FINAL);
	sched_started(s, 0, 1, 0.1);
	sched_worker_lost(s, 0, &running);
	ck_assert_uint_eq(running, 1);
	ck_assert_int_eq(sched_result(s, 0, 1, OUT_CRASH, 0.2, &fin),
	    SCHED_FINAL);
	/* The replacement in slot 0 gets the others; slot 1 the group. */
	sched_worker_up(s, 0, 0.3);
	sched_worker_up(s, 1, 0.3);
	n = sched_next_batch(s, 0, 0.3, u, SCHED_MAX_BATCH);
	ck_assert_uint_ge(n, 1);
	ck_assert_int_eq(sched_batch_group(s), -1);
	ck_assert_uint_ge(u[0], 5);
	n = sched_next_batch(s, 1, 0.3, u2, SCHED_MAX_BATCH);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(sched_batch_group(s), 0);
	ck_assert_uint_eq(u2[0], 2);
	ck_assert_uint_eq(u2[2], 4);
	sched_free(s);

	/* Boxed: the group's process died, the worker answered the run
	 * early: the same. */
	s = sched_new(&c, 10, NULL, NULL);
	ck_assert_int_eq(sched_constrain(s, &k), 0);
	sched_worker_up(s, 0, 0);
	sched_worker_up(s, 1, 0);
	ck_assert_uint_eq(sched_next_batch(s, 0, 0, u, SCHED_MAX_BATCH), 5);
	sched_started(s, 0, 0, 0);
	ck_assert_int_eq(sched_result(s, 0, 0, OUT_CRASH, 0.1, &fin),
	    SCHED_FINAL);
	ck_assert_uint_eq(sched_batch_done(s, 0, 0.1), 4);
	ck_assert(sched_poked(s));
	n = sched_next_batch(s, 0, 0.1, u, SCHED_MAX_BATCH);
	ck_assert_int_eq(sched_batch_group(s), -1);
	n = sched_next_batch(s, 1, 0.1, u2, SCHED_MAX_BATCH);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(sched_batch_group(s), 0);
	ck_assert_uint_eq(u2[0], 1);
	sched_free(s);
}
END_TEST

/* --dist each: every worker runs its own copy of the group, whole. */
START_TEST(test_each_group_copies)
{
	struct sched_config c = cfg_load(3);
	struct sched_constraints k;
	double dur[10];
	uint32_t grp[10], u, i;
	uint8_t strat[1] = { SCHED_ISOLATED_SERIAL };
	size_t bno[3] = { 0, 0, 0 };
	struct sim m;

	c.each = 1;
	for (i = 0; i < 10; i++) {
		dur[i] = 0.01;
		grp[i] = i < 4 ? 0 : SCHED_NONE;
	}
	memset(&k, 0, sizeof k);
	k.ngroups = 1;
	k.strategy = strat;
	k.group = grp;
	sim_init_k(&m, &c, 10, dur, NULL, &k);
	sim_run(&m);
	sim_assert_once(&m);
	for (u = 0; u < 30; u++) {
		ck_assert_int_eq(m.on[u], sched_unit_group(m.s, u));
		if (sched_unit_test(m.s, u) >= 4)
			continue;
		ck_assert_int_eq(m.bgrp[u], 0);
		if (bno[m.on[u]] == 0)
			bno[m.on[u]] = m.bno[u];
		ck_assert_uint_eq(m.bno[u], bno[m.on[u]]);
	}
	sim_free(&m);
}
END_TEST

/* Everything at once, with failures rerun: each test ends once. */
START_TEST(test_constraints_with_reruns_once)
{
	struct sched_config c = cfg_load(4);
	struct sched_constraints k;
	double dur[100];
	uint32_t grp[100], first[101], locks[100], a, n = 0;
	uint8_t strat[3] = { SCHED_SERIAL, SCHED_ISOLATED_FREE,
	    SCHED_ISOLATED_SERIAL }, serial[100];
	struct sim m;

	c.reruns = 1;
	for (a = 0; a < 100; a++) {
		dur[a] = 0.001 * (1 + a % 5);
		grp[a] = a % 7 < 3 ? a % 7 : SCHED_NONE;
		serial[a] = a % 23 == 0;
		first[a] = n;
		if (a % 4 == 1)
			locks[n++] = 0;
	}
	first[100] = n;
	memset(&k, 0, sizeof k);
	k.ngroups = 3;
	k.strategy = strat;
	k.group = grp;
	k.serial = serial;
	k.nlocks = 1;
	k.lock_first = first;
	k.locks = locks;
	sim_init_k(&m, &c, 100, dur, NULL, &k);
	m.outcome_of = fail_once;
	sim_run(&m);
	sim_assert_once(&m);
	sim_free(&m);
}
END_TEST

/* The figure: 10% of the tests in one isolated group, and the
 * run within 10% of the best makespan that allows. */
START_TEST(test_isolated_tenth_near_ideal)
{
	struct sched_config c = cfg_load(8);
	struct sched_constraints k;
	double dur[200], sum_in = 0, sum_out = 0, max_in = 0, max_out = 0,
	    ideal, span;
	float est[200];
	uint32_t grp[200], a, x = 12345;
	uint8_t strat[1] = { SCHED_ISOLATED_FREE };
	struct sim m;

	for (a = 0; a < 200; a++) {
		x = x * 1103515245u + 12345u;
		dur[a] = 0.02 + (double)(x >> 16 & 0xff) / 255.0 * 0.18;
		est[a] = (float)dur[a];
		grp[a] = a % 10 == 0 ? 0 : SCHED_NONE;
		if (grp[a] == 0) {
			sum_in += dur[a];
			max_in = dur[a] > max_in ? dur[a] : max_in;
		} else {
			sum_out += dur[a];
			max_out = dur[a] > max_out ? dur[a] : max_out;
		}
	}
	ideal = (sum_in / 8 > max_in ? sum_in / 8 : max_in) +
	    (sum_out / 8 > max_out ? sum_out / 8 : max_out);
	memset(&k, 0, sizeof k);
	k.ngroups = 1;
	k.strategy = strat;
	k.group = grp;
	sim_init(&m, &c, 200, dur, est, NULL);
	ck_assert_int_eq(sched_constrain(m.s, &k), 0);
	span = sim_run(&m);
	sim_assert_once(&m);
	ck_assert_msg(span <= ideal * 1.10, "makespan %.3f s, ideal %.3f s",
	    span, ideal);
	sim_free(&m);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("scheduler");
	TCase *tc = tcase_create("scheduler");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_skewed_with_history_is_lpt);
	tcase_add_test(tc, test_skewed_without_history_finishes);
	tcase_add_test(tc, test_cpu_bound_near_ideal);
	tcase_add_test(tc, test_sleepy_sixteen_workers);
	tcase_add_test(tc, test_trivial_tests_go_in_big_batches);
	tcase_add_test(tc, test_no_prefetch_behind_long_test);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_worker_lost_requeues_at_front);
	tcase_add_test(tc, test_reruns_make_flaky);
	tcase_add_test(tc, test_maxfail_stops_and_drains);
	tcase_add_test(tc, test_batch_done_without_results_requeues);
	tcase_add_test(tc, test_dist_each);
	tcase_add_test(tc, test_dist_each_groups);
	tcase_add_test(tc, test_rtt_keeps_far_workers_busy);
	tcase_add_test(tc, test_rtt_overestimated);
	tcase_add_test(tc, test_random_deaths_keep_exactly_once);
	tcase_add_test(tc, test_isolated_free_overlaps_nothing);
	tcase_add_test(tc, test_isolated_serial_one_process_alone);
	tcase_add_test(tc, test_serial_group_beside_the_rest);
	tcase_add_test(tc, test_free_group_runs_in_parallel);
	tcase_add_test(tc, test_serial_tests_run_alone);
	tcase_add_test(tc, test_locks_never_overlap);
	tcase_add_test(tc, test_group_rest_runs_elsewhere);
	tcase_add_test(tc, test_each_group_copies);
	tcase_add_test(tc, test_constraints_with_reruns_once);
	tcase_add_test(tc, test_isolated_tenth_near_ideal);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

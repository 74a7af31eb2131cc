/*
 * scheduler.c - which tests go to which worker, and when: pure logic.
 *
 * The caller reports what happened (a worker is ready, a test started or
 * ended, a batch was answered, a worker was lost) with its own clock and
 * asks what to send. Nothing here does I/O, reads a clock or knows about
 * connections, so every decision can be tested with made-up times.
 *
 * --dist load is list scheduling with prefetch. Each worker keeps about
 * SCHED_LOW seconds of expected work in flight beyond the test it runs,
 * so it never waits for the manager; more would strand tests behind a
 * long one that another worker could have taken. A batch is sized to
 * min(SCHED_HIGH, what is left / (2 x workers)), so batches shrink
 * toward the end and the tail is short. A worker far away (its round
 * trip measured by the pool) gets that round trip's worth of work more in
 * flight, and batches that big, so that a result's way back and the next
 * batch's way out happen while it still has tests to run. Expected
 * times are the history's
 * durations plus the overhead observed in this run, or for tests without
 * history the mean cost observed so far; until anything has been
 * observed a worker gets one unknown test at a time.
 *
 * --dist each pins unit u to host group u / ntests; any slot of that
 * group may run it (without groups, each slot is a group of its own).
 *
 * Groups, locks and serial tests (sched_constrain, distmgr(3)) keep
 * their units out of the queue: a serial group's units wait in a copy
 * of the group (one per host group in --dist each) and go to one worker
 * as one batch, run in one process; an isolated group's, and the serial
 * tests', wait for a phase in which nothing else runs anywhere: nothing
 * more is handed out, the workers finish what they hold, the phase's
 * units run (on every worker, or on one), and then the rest resumes.
 * Phases come first, while the workers are still idle from starting,
 * so that none has to be drained; work that comes back after its phase
 * (reruns, the rest of a group whose process died) waits for the end of
 * the run. A test with resource locks waits in a lane of its first lock
 * and goes to a worker only when no other worker holds one of its locks
 * in flight.
 *
 * Invariant: a unit is in exactly one place (the queue, the rerun queue,
 * a host group's pinned queue, a lock's lane, a group's copy, a slot's
 * flight list) or final, and becomes final exactly once. Units are
 * linked through one next[] array, so the
 * scheduler costs a few bytes per test, whatever the number of tests.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

#define SCHED_LOW	0.005	/* seconds in flight beyond the running test */
#define SCHED_HIGH	0.050	/* seconds of work in one batch at most */
#define SCHED_GUESS	0.010	/* a test's cost before any was observed */
#define SCHED_ALPHA	0.05	/* weight of a new observation in the means */

enum { ST_QUEUED, ST_FLIGHT, ST_RUNNING, ST_FINAL };

/* A list of units linked through next[], with what it is expected to
 * cost: est_known for units with a known duration, plus nunknown units
 * costed at the observed mean. */
struct squeue {
	uint32_t	 head, tail, n, nunknown;
	double		 est_known;
};

struct sbatch {
	uint32_t	 count, got;
};

struct sslot {
	int		 up;
	int		 group;		/* --dist each: whose pinned units */
	double		 rtt;		/* seconds, a round trip to it */
	struct squeue	 flight;	/* sent, unstarted or running, in order */
	uint32_t	 running;	/* SCHED_NONE */
	double		 started;	/* when running began */
	double		 busy_from;	/* when the current test could start */
	struct sbatch	*b;		/* unanswered batches, oldest first */
	size_t		 bfirst, bn, bcap;
	uint32_t	 nphase;	/* units of the isolated phase in flight */
};

/* --dist each: a host group's units, run by any of its slots. */
struct sgroup {
	struct squeue	 pinned;
	int		 nup;
};

struct sched {
	struct sched_config cfg;
	uint32_t	 ntests, nunits;
	uint32_t	*next;
	uint8_t		*state;
	uint8_t		*attempts;
	int16_t		*last;		/* slot of the last attempt, -1 none */
	float		*est;		/* per test */
	struct squeue	 queue;		/* --dist load */
	struct squeue	 reruns;	/* failed, to run again elsewhere */
	struct sslot	*slots;
	struct sgroup	*groups;	/* [ngroups]; each only */
	int		 ngroups;
	int		 nup;
	uint32_t	 nfinal;
	size_t		 nfailures;
	int		 stopping;
	double		 mean;		/* observed cost of a test; 0 none yet */
	double		 overhead;	/* observed cost beyond known durations */
	struct scons	*c;		/* groups, locks; NULL: none */
};

/* ---- lists ------------------------------------------------------------ */

static void
sq_init(struct squeue *q)
{
	memset(q, 0, sizeof *q);
	q->head = q->tail = SCHED_NONE;
}

static uint32_t
unit_test(const struct sched *s, uint32_t u)
{
	return s->cfg.each ? u % s->ntests : u;
}

static void
sq_account(struct sched *s, struct squeue *q, uint32_t u, int sign)
{
	float e = s->est[unit_test(s, u)];

	if (e < 0)
		q->nunknown += sign;
	else
		q->est_known += sign * (double)e;
	q->n += sign;
	if (q->n == 0 || q->est_known < 0)
		q->est_known = 0;
}

static void
sq_push_tail(struct sched *s, struct squeue *q, uint32_t u)
{
	s->next[u] = SCHED_NONE;
	if (q->tail == SCHED_NONE)
		q->head = u;
	else
		s->next[q->tail] = u;
	q->tail = u;
	sq_account(s, q, u, 1);
}

static void
sq_push_head(struct sched *s, struct squeue *q, uint32_t u)
{
	s->next[u] = q->head;
	q->head = u;
	if (q->tail == SCHED_NONE)
		q->tail = u;
	sq_account(s, q, u, 1);
}

/* Removes u, found after prev (SCHED_NONE: u is the head). */
static void
sq_unlink(struct sched *s, struct squeue *q, uint32_t prev, uint32_t u)
{
	if (prev == SCHED_NONE)
		q->head = s->next[u];
	else
		s->next[prev] = s->next[u];
	if (q->tail == u)
		q->tail = prev;
	s->next[u] = SCHED_NONE;
	sq_account(s, q, u, -1);
}

static uint32_t
sq_pop(struct sched *s, struct squeue *q)
{
	uint32_t u = q->head;

	if (u != SCHED_NONE)
		sq_unlink(s, q, SCHED_NONE, u);
	return u;
}

/* Removes u wherever it is in q; 0, or -1 when it is not there. Results
 * come in order, so u is nearly always the head. */
static int
sq_remove(struct sched *s, struct squeue *q, uint32_t u)
{
	uint32_t prev = SCHED_NONE, v;

	for (v = q->head; v != SCHED_NONE; prev = v, v = s->next[v])
		if (v == u) {
			sq_unlink(s, q, prev, u);
			return 0;
		}
	return -1;
}

/* ---- estimates -------------------------------------------------------- */

static double
sched_mean(const struct sched *s)
{
	return s->mean > 0 ? s->mean : SCHED_GUESS;
}

static double
unit_est(const struct sched *s, uint32_t u)
{
	float e = s->est[unit_test(s, u)];

	return e < 0 ? sched_mean(s) : (double)e + s->overhead;
}

static double
sq_est(const struct sched *s, const struct squeue *q)
{
	return q->est_known + (q->n - q->nunknown) * s->overhead +
	    q->nunknown * sched_mean(s);
}

/* Expected seconds until slot has nothing left of what it was sent. A
 * test past its expected time is assumed to run as long again, so that
 * nothing is prefetched behind a test that turns out long. */
static double
slot_left(const struct sched *s, const struct sslot *w, double now)
{
	double left = sq_est(s, &w->flight), e, ran;

	if (w->running != SCHED_NONE) {
		e = unit_est(s, w->running);
		left -= e;	/* flight counts it; the clock says more */
		ran = now - w->started;
		left += ran < e ? e - ran : ran;
	}
	return left < 0 ? 0 : left;
}

static void
sched_observe(struct sched *s, uint32_t u, double cost)
{
	float e = s->est[unit_test(s, u)];
	double extra;

	if (cost < 0)
		cost = 0;
	if (e < 0) {
		s->mean = s->mean > 0 ? s->mean + SCHED_ALPHA * (cost - s->mean)
		    : (cost > 1e-6 ? cost : 1e-6);
		return;
	}
	extra = cost - (double)e;
	if (extra < 0)
		extra = 0;
	s->overhead += SCHED_ALPHA * (extra - s->overhead);
}

/* ---- groups, locks and serial tests ---------------------------------- */

struct sslot;
static void	slot_send(struct sched *, struct sslot *, uint32_t);
static void	slot_batch_open(struct sslot *, uint32_t);

#define SG_GROUPED	0x1	/* its units run in one process */
#define SG_ISOLATED	0x2	/* nothing else runs while it does */
#define SCHED_EVENTS	32	/* events kept for the caller */

enum { PH_IDLE, PH_DRAIN, PH_ON };

/* A group as the scheduler sees it: a user's group whose strategy is not
 * free, or (the last one) the serial tests. */
struct sgrp {
	uint8_t		 flags;
	uint8_t		 width;		/* slots at once in its phase; 0 any */
	int32_t		 user;		/* the caller's group; -1 serial tests */
	uint32_t	 rank;		/* its first test's place in the order */
	uint32_t	 ntests;
	int		 phased;	/* its first phase is over */
	double		 since;		/* its phase began */
};

/* A group's units for one pin (the host group they are pinned to in
 * --dist each; pin 0 in --dist load). */
struct scopy {
	struct squeue	 pending;
	int		 slot;		/* grouped: the slot running it, -1 */
	int		 avoid;		/* better elsewhere than here, -1 */
	uint32_t	 inflight;
};

/* A resource lock: the slot with units holding it in flight. */
struct slock {
	int		 slot;
	uint32_t	 count;
};

struct scons {
	uint32_t	*rank;		/* per test: its place in the order */
	uint32_t	*grp;		/* per test: its sgrp, or SCHED_NONE */
	struct sgrp	*g;
	uint32_t	 ng;
	int		 npins;
	struct scopy	*copy;		/* [ng * npins] */
	uint32_t	*lock_first;	/* [ntests + 1], or NULL */
	uint32_t	*locks;
	struct slock	*lock;		/* [nlocks] */
	uint32_t	 nlocks;
	struct squeue	*lane;		/* [nlocks * npins]: by first lock */
	uint32_t	 phase;		/* the isolated sgrp, SCHED_NONE */
	int		 phase_state;
	int		 poke;
	int32_t		 last_group;
	struct sched_event ev[SCHED_EVENTS];
	size_t		 ev_first, ev_n;
};

static int
unit_pin(const struct sched *s, uint32_t u)
{
	return s->cfg.each ? (int)(u / s->ntests) : 0;
}

static int
slot_pin(const struct sched *s, int slot)
{
	return s->cfg.each ? s->slots[slot].group : 0;
}

static struct scopy *
copy_of(const struct sched *s, uint32_t g, int pin)
{
	return &s->c->copy[(size_t)g * (size_t)s->c->npins + (size_t)pin];
}

static uint32_t
unit_grp(const struct sched *s, uint32_t u)
{
	return s->c == NULL ? SCHED_NONE : s->c->grp[unit_test(s, u)];
}

static uint32_t
unit_nlocks(const struct sched *s, uint32_t u, const uint32_t **locks)
{
	uint32_t t = unit_test(s, u);

	if (s->c == NULL || s->c->lock_first == NULL)
		return 0;
	*locks = s->c->locks + s->c->lock_first[t];
	return s->c->lock_first[t + 1] - s->c->lock_first[t];
}

/* May u go to slot as far as its locks go? */
static int
unit_locks_free(const struct sched *s, uint32_t u, int slot)
{
	const uint32_t *l;
	uint32_t i, n = unit_nlocks(s, u, &l);

	for (i = 0; i < n; i++)
		if (s->c->lock[l[i]].count > 0 && s->c->lock[l[i]].slot != slot)
			return 0;
	return 1;
}

static void
sched_emit(struct sched *s, int kind, uint32_t g)
{
	struct scons *c = s->c;
	struct sched_event *e;

	if (c->ev_n == SCHED_EVENTS) {	/* the caller is not reading */
		c->ev_first = (c->ev_first + 1) % SCHED_EVENTS;
		c->ev_n--;
	}
	e = &c->ev[(c->ev_first + c->ev_n++) % SCHED_EVENTS];
	e->kind = kind;
	e->group = c->g[g].user;
	e->tests = c->g[g].ntests;
	e->grouped = (c->g[g].flags & SG_GROUPED) != 0;
}

/* Where u waits when it is not in flight. */
static struct squeue *
unit_home(struct sched *s, uint32_t u)
{
	uint32_t g = unit_grp(s, u);
	const uint32_t *l;

	if (g != SCHED_NONE)
		return &copy_of(s, g, unit_pin(s, u))->pending;
	if (unit_nlocks(s, u, &l) > 0)
		return &s->c->lane[(size_t)l[0] * (size_t)s->c->npins +
		    (size_t)unit_pin(s, u)];
	return s->cfg.each ? &s->groups[unit_pin(s, u)].pinned : &s->queue;
}

/* u goes to slot w: it takes its locks there. */
static void
unit_sent(struct sched *s, int slot, uint32_t u)
{
	const uint32_t *l;
	uint32_t i, n, g;

	if (s->c == NULL)
		return;
	n = unit_nlocks(s, u, &l);
	for (i = 0; i < n; i++) {
		s->c->lock[l[i]].slot = slot;
		s->c->lock[l[i]].count++;
	}
	if ((g = unit_grp(s, u)) == SCHED_NONE)
		return;
	copy_of(s, g, unit_pin(s, u))->inflight++;
	if (g == s->c->phase)
		s->slots[slot].nphase++;
}

/* u left slot's flight (a result, or back to waiting): its locks go,
 * and whoever waited for them may now have work. */
static void
unit_landed(struct sched *s, int slot, uint32_t u)
{
	const uint32_t *l;
	uint32_t i, n, g;
	struct scopy *cp;

	if (s->c == NULL)
		return;
	n = unit_nlocks(s, u, &l);
	for (i = 0; i < n; i++)
		if (s->c->lock[l[i]].count > 0 &&
		    --s->c->lock[l[i]].count == 0)
			s->c->poke = 1;
	if ((g = unit_grp(s, u)) == SCHED_NONE)
		return;
	cp = copy_of(s, g, unit_pin(s, u));
	if (cp->inflight > 0 && --cp->inflight == 0) {
		cp->slot = -1;
		s->c->poke = 1;
	}
	if (g == s->c->phase && s->slots[slot].nphase > 0)
		s->slots[slot].nphase--;
}

/* Units of g waiting, on every pin. */
static uint32_t
grp_pending(const struct sched *s, uint32_t g)
{
	uint32_t n = 0;
	int p;

	for (p = 0; p < s->c->npins; p++)
		n += copy_of(s, g, p)->pending.n;
	return n;
}

static uint32_t
grp_inflight(const struct sched *s, uint32_t g)
{
	uint32_t n = 0;
	int p;

	for (p = 0; p < s->c->npins; p++)
		n += copy_of(s, g, p)->inflight;
	return n;
}

/* Is there anything but isolated work left to hand out? */
static int
sched_plain_left(const struct sched *s)
{
	uint32_t g, i;
	int w;

	if (s->queue.n > 0 || s->reruns.n > 0)
		return 1;
	for (w = 0; s->cfg.each && w < s->ngroups; w++)
		if (s->groups[w].pinned.n > 0)
			return 1;
	for (i = 0; i < s->c->nlocks * (uint32_t)s->c->npins; i++)
		if (s->c->lane[i].n > 0)
			return 1;
	for (g = 0; g < s->c->ng; g++)
		if (!(s->c->g[g].flags & SG_ISOLATED) && grp_pending(s, g) > 0)
			return 1;
	return 0;
}

static int
sched_all_idle(const struct sched *s)
{
	int w;

	for (w = 0; w < s->cfg.nslots; w++)
		if (s->slots[w].flight.n > 0)
			return 0;
	return 1;
}

/*
 * The isolated phase's state: a phase ends once its group has nothing
 * waiting or in flight; the next isolated group with work (its first
 * phase at once, work that came back only when nothing else is left)
 * then waits for every worker to finish what it holds, and begins.
 */
static void
sched_phase_update(struct sched *s, double now)
{
	struct scons *c = s->c;
	uint32_t g, best = SCHED_NONE;

	if (c == NULL || s->stopping)
		return;
	if (c->phase_state == PH_ON) {
		if (grp_pending(s, c->phase) > 0 ||
		    grp_inflight(s, c->phase) > 0)
			return;
		sched_emit(s, SCHED_EV_PHASE_END, c->phase);
		c->ev[(c->ev_first + c->ev_n - 1) % SCHED_EVENTS].seconds =
		    now - c->g[c->phase].since;
		c->g[c->phase].phased = 1;
		c->phase = SCHED_NONE;
		c->phase_state = PH_IDLE;
		c->poke = 1;
	}
	if (c->phase_state == PH_IDLE) {
		for (g = 0; g < c->ng; g++) {
			if (!(c->g[g].flags & SG_ISOLATED) ||
			    grp_pending(s, g) == 0)
				continue;
			if (c->g[g].phased && sched_plain_left(s))
				continue;
			if (best == SCHED_NONE || c->g[g].rank < c->g[best].rank)
				best = g;
		}
		if (best == SCHED_NONE)
			return;
		c->phase = best;
		c->phase_state = PH_DRAIN;
	}
	if (c->phase_state == PH_DRAIN && sched_all_idle(s)) {
		c->phase_state = PH_ON;
		c->g[c->phase].since = now;
		sched_emit(s, SCHED_EV_PHASE_START, c->phase);
		c->poke = 1;
	}
}

/* May slot take a unit of the phase now (its width)? */
static int
phase_room(const struct sched *s, int slot)
{
	const struct sgrp *g = &s->c->g[s->c->phase];
	int w, busy = 0;

	if (g->width == 0 || s->slots[slot].nphase > 0)
		return 1;
	for (w = 0; w < s->cfg.nslots; w++)
		busy += s->slots[w].nphase > 0;
	return busy < g->width;
}

/* A grouped copy slot may take now: the phase's group while it is on,
 * else serial groups (first, as the longest jobs). */
static struct scopy *
sched_pick_copy(struct sched *s, int slot, uint32_t *gp)
{
	struct scons *c = s->c;
	struct scopy *cp, *best = NULL;
	uint32_t g, lo, hi, u, bg = SCHED_NONE;

	if (c->phase_state == PH_ON) {
		lo = c->phase;
		hi = c->phase + 1;
		if (!phase_room(s, slot))
			return NULL;
	} else {
		lo = 0;
		hi = c->ng;
	}
	for (g = lo; g < hi; g++) {
		if (!(c->g[g].flags & SG_GROUPED) || (c->phase_state != PH_ON &&
		    (c->g[g].flags & SG_ISOLATED)))
			continue;
		cp = copy_of(s, g, slot_pin(s, slot));
		if (cp->pending.n == 0 || cp->slot != -1 ||
		    (cp->avoid == slot && (s->cfg.each ?
		    s->groups[s->slots[slot].group].nup : s->nup) > 1))
			continue;
		for (u = cp->pending.head; u != SCHED_NONE; u = s->next[u])
			if (!unit_locks_free(s, u, slot))
				break;
		if (u != SCHED_NONE)
			continue;
		if (best == NULL || c->g[g].rank < c->g[bg].rank) {
			best = cp;
			bg = g;
		}
	}
	*gp = bg;
	return best;
}

/* Sends one grouped copy as a batch of its own. */
static size_t
sched_send_copy(struct sched *s, int slot, struct scopy *cp, uint32_t g,
    double now, uint32_t *units, size_t max)
{
	struct sslot *w = &s->slots[slot];
	size_t n = 0;
	uint32_t u;

	if (w->flight.n == 0)
		w->busy_from = now;
	cp->slot = slot;
	cp->avoid = -1;
	while (n < max && (u = sq_pop(s, &cp->pending)) != SCHED_NONE) {
		slot_send(s, w, u);
		units[n++] = u;
	}
	slot_batch_open(w, (uint32_t)n);
	s->c->last_group = s->c->g[g].user;
	return n;
}

/* The next unit (not grouped) slot may take, with the queue it waits in:
 * the phase's while it is on; else the first in the run's order of the
 * queue's head and the heads of the lanes whose locks are free. */
static uint32_t
sched_peek(struct sched *s, int slot, struct squeue *q, struct squeue **from)
{
	struct scons *c = s->c;
	struct squeue *best = NULL, *l;
	uint32_t i;
	int pin = slot_pin(s, slot);

	if (c == NULL) {
		*from = q;
		return q->head;
	}
	if (c->phase_state == PH_DRAIN)
		return SCHED_NONE;
	if (c->phase_state == PH_ON) {
		l = &copy_of(s, c->phase, pin)->pending;
		if ((c->g[c->phase].flags & SG_GROUPED) || l->n == 0 ||
		    !phase_room(s, slot) || !unit_locks_free(s, l->head, slot))
			return SCHED_NONE;
		*from = l;
		return l->head;
	}
	if (q->n > 0)
		best = q;
	for (i = 0; i < c->nlocks; i++) {
		l = &c->lane[(size_t)i * (size_t)c->npins + (size_t)pin];
		if (l->n == 0 || !unit_locks_free(s, l->head, slot))
			continue;
		if (best == NULL || c->rank[unit_test(s, l->head)] <
		    c->rank[unit_test(s, best->head)])
			best = l;
	}
	if (best == NULL)
		return SCHED_NONE;
	*from = best;
	return best->head;
}

static uint8_t
grp_flags(enum sched_strategy st)
{
	switch (st) {
	case SCHED_SERIAL:
		return SG_GROUPED;
	case SCHED_ISOLATED_FREE:
		return SG_ISOLATED;
	case SCHED_ISOLATED_SERIAL:
		return SG_GROUPED | SG_ISOLATED;
	default:
		return 0;
	}
}

/* The caller's groups to ours: free ones are no group at all; a serial
 * test in a serial group makes it isolated_serial; the serial tests of
 * other groups go to the last sgrp, run one at a time in a phase. */
static void
scons_groups(struct sched *s, const struct sched_constraints *k,
    const uint32_t *order)
{
	struct scons *c = s->c;
	uint32_t *map = xcalloc(k->ngroups + 1, sizeof *map), t, g, ug, i;
	uint8_t *fl = xcalloc(k->ngroups + 1, 1);

	for (g = 0; g < k->ngroups; g++)
		fl[g] = grp_flags((enum sched_strategy)k->strategy[g]);
	for (t = 0; t < s->ntests && k->serial != NULL; t++) {
		ug = k->group != NULL ? k->group[t] : SCHED_NONE;
		if (k->serial[t] && ug != SCHED_NONE &&
		    (fl[ug] & SG_GROUPED))
			fl[ug] |= SG_ISOLATED;
	}
	c->g = xcalloc(k->ngroups + 2, sizeof *c->g);
	for (g = 0; g < k->ngroups; g++) {
		map[g] = SCHED_NONE;
		if (fl[g] == 0)
			continue;
		map[g] = c->ng;
		c->g[c->ng].flags = fl[g];
		c->g[c->ng].width = (fl[g] & SG_GROUPED) ? 1 : 0;
		c->g[c->ng].user = (int32_t)g;
		c->g[c->ng++].rank = SCHED_NONE;
	}
	/* The serial tests: isolated, one worker at a time. */
	c->g[c->ng].flags = SG_ISOLATED;
	c->g[c->ng].width = 1;
	c->g[c->ng].user = -1;
	c->g[c->ng].rank = SCHED_NONE;
	for (i = 0; i < s->ntests; i++) {
		t = order != NULL ? order[i] : i;
		ug = k->group != NULL ? k->group[t] : SCHED_NONE;
		g = ug != SCHED_NONE && ug < k->ngroups ? map[ug] : SCHED_NONE;
		if (k->serial != NULL && k->serial[t] && (g == SCHED_NONE ||
		    !(c->g[g].flags & SG_GROUPED)))
			g = c->ng;
		c->grp[t] = g;
		if (g != SCHED_NONE) {
			c->g[g].ntests++;
			if (c->g[g].rank == SCHED_NONE)
				c->g[g].rank = i;
		}
	}
	c->ng++;
	free(map);
	free(fl);
}

/* Expected seconds of what slot may still be handed, for batch sizes. */
static double
sched_left_est(const struct sched *s, int slot, const struct squeue *q)
{
	const struct scons *c = s->c;
	double e;
	uint32_t i;
	int pin = slot_pin(s, slot);

	if (c == NULL)
		return sq_est(s, q);
	if (c->phase_state == PH_ON)
		return sq_est(s, &copy_of(s, c->phase, pin)->pending);
	e = sq_est(s, q);
	for (i = 0; i < c->nlocks; i++)
		e += sq_est(s, &c->lane[(size_t)i * (size_t)c->npins +
		    (size_t)pin]);
	return e;
}

static void	sched_final(struct sched *, uint32_t, enum outcome);

/* sched_drain's part: what waits in lanes and groups (of host group
 * group in --dist each, of all in --dist load). */
static size_t
scons_drain(struct sched *s, int group, uint32_t *units, size_t max)
{
	struct scons *c = s->c;
	struct squeue *q;
	size_t n = 0;
	uint32_t i, u;
	int p, lo = 0, hi = c->npins;

	if (s->cfg.each) {
		if (group < 0 || group >= s->ngroups)
			return 0;
		lo = group;
		hi = group + 1;
	}
	for (p = lo; p < hi; p++)
		for (i = 0; i < c->nlocks + c->ng && n < max; i++) {
			q = i < c->nlocks ? &c->lane[(size_t)i *
			    (size_t)c->npins + (size_t)p] :
			    &copy_of(s, i - c->nlocks, p)->pending;
			while (n < max && (u = sq_pop(s, q)) != SCHED_NONE) {
				sched_final(s, u, OUT_NOT_RUN);
				units[n++] = u;
			}
		}
	return n;
}

int
sched_constrain(struct sched *s, const struct sched_constraints *k)
{
	struct scons *c;
	uint32_t i, t, u, n, *order;
	int w;

	if (s->c != NULL || s->nup > 0 || s->nfinal > 0)
		return -1;
	for (t = 0; t < s->ntests && k->lock_first != NULL; t++)
		if (k->lock_first[t] > k->lock_first[t + 1])
			return -1;
	for (n = 0; k->lock_first != NULL && n < k->lock_first[s->ntests]; n++)
		if (k->locks[n] >= k->nlocks)
			return -1;
	c = s->c = xcalloc(1, sizeof *c);
	c->npins = s->cfg.each ? s->ngroups : 1;
	c->rank = xcalloc(s->ntests + 1, sizeof *c->rank);
	c->grp = xcalloc(s->ntests + 1, sizeof *c->grp);
	c->phase = SCHED_NONE;
	c->last_group = -1;
	/* The order is the queue's (or the first pin's) as built. */
	order = xcalloc(s->ntests + 1, sizeof *order);
	i = 0;
	for (u = s->cfg.each ? s->groups[0].pinned.head : s->queue.head;
	    u != SCHED_NONE && i < s->ntests; u = s->next[u])
		order[i++] = unit_test(s, u);
	for (i = 0; i < s->ntests; i++)
		c->rank[order[i]] = i;
	scons_groups(s, k, order);
	free(order);
	if (k->lock_first != NULL && k->nlocks > 0) {
		c->nlocks = k->nlocks;
		c->lock_first = xcalloc(s->ntests + 1, sizeof *c->lock_first);
		memcpy(c->lock_first, k->lock_first, (s->ntests + 1) *
		    sizeof *c->lock_first);
		c->locks = xcalloc(k->lock_first[s->ntests] + 1,
		    sizeof *c->locks);
		memcpy(c->locks, k->locks, k->lock_first[s->ntests] *
		    sizeof *c->locks);
		c->lock = xcalloc(c->nlocks, sizeof *c->lock);
	}
	c->lane = xcalloc((size_t)c->nlocks * (size_t)c->npins + 1,
	    sizeof *c->lane);
	for (i = 0; i < c->nlocks * (uint32_t)c->npins; i++)
		sq_init(&c->lane[i]);
	c->copy = xcalloc((size_t)c->ng * (size_t)c->npins, sizeof *c->copy);
	for (i = 0; i < c->ng * (uint32_t)c->npins; i++) {
		sq_init(&c->copy[i].pending);
		c->copy[i].slot = c->copy[i].avoid = -1;
	}
	/* Each unit from the queue (in order) to where it waits. */
	for (w = 0; w < (s->cfg.each ? s->ngroups : 1); w++) {
		struct squeue all = s->cfg.each ? s->groups[w].pinned : s->queue;

		sq_init(s->cfg.each ? &s->groups[w].pinned : &s->queue);
		while (all.head != SCHED_NONE) {
			u = all.head;
			all.head = s->next[u];
			sq_push_tail(s, unit_home(s, u), u);
		}
	}
	return 0;
}

static void
scons_free(struct scons *c)
{
	if (c == NULL)
		return;
	free(c->rank);
	free(c->grp);
	free(c->g);
	free(c->copy);
	free(c->lock_first);
	free(c->locks);
	free(c->lock);
	free(c->lane);
	free(c);
}

int
sched_event(struct sched *s, struct sched_event *ev)
{
	struct scons *c = s->c;

	if (c == NULL || c->ev_n == 0)
		return 0;
	*ev = c->ev[c->ev_first];
	c->ev_first = (c->ev_first + 1) % SCHED_EVENTS;
	c->ev_n--;
	return 1;
}

int
sched_poked(struct sched *s)
{
	int p;

	if (s->c == NULL)
		return 0;
	p = s->c->poke;
	s->c->poke = 0;
	return p;
}

int32_t
sched_batch_group(const struct sched *s)
{
	return s->c != NULL ? s->c->last_group : -1;
}

int
sched_isolating(const struct sched *s)
{
	return s->c != NULL && s->c->phase_state != PH_IDLE;
}

/* ---- construction ------------------------------------------------------ */

struct sched *
sched_new(const struct sched_config *cfg, uint32_t ntests,
    const uint32_t *order, const float *est)
{
	struct sched *s;
	uint64_t nunits;
	uint32_t i, u;
	int w, ng;

	if (cfg->nslots < 1 || cfg->nslots > INT16_MAX)
		return NULL;
	ng = cfg->group != NULL ? cfg->ngroups : cfg->nslots;
	if (ng < 1 || ng > cfg->nslots)
		return NULL;
	for (w = 0; cfg->group != NULL && w < cfg->nslots; w++)
		if (cfg->group[w] < 0 || cfg->group[w] >= ng)
			return NULL;
	nunits = cfg->each ? (uint64_t)ntests * (uint64_t)ng : ntests;
	if (nunits >= SCHED_NONE)
		return NULL;
	s = xcalloc(1, sizeof *s);
	s->cfg = *cfg;
	s->cfg.group = NULL;	/* borrowed: copied into the slots */
	s->ngroups = ng;
	s->ntests = ntests;
	s->nunits = (uint32_t)nunits;
	s->next = xcalloc(s->nunits + 1, sizeof *s->next);
	s->state = xcalloc(s->nunits + 1, 1);
	s->attempts = xcalloc(s->nunits + 1, 1);
	s->last = xcalloc(s->nunits + 1, sizeof *s->last);
	s->est = xcalloc(ntests + 1, sizeof *s->est);
	for (i = 0; i < ntests; i++)
		s->est[i] = est != NULL ? est[i] : SCHED_EST_NONE;
	sq_init(&s->queue);
	sq_init(&s->reruns);
	s->slots = xcalloc((size_t)cfg->nslots, sizeof *s->slots);
	s->groups = xcalloc((size_t)ng, sizeof *s->groups);
	for (w = 0; w < cfg->nslots; w++) {
		sq_init(&s->slots[w].flight);
		s->slots[w].running = SCHED_NONE;
		s->slots[w].group = cfg->group != NULL ? cfg->group[w] : w;
	}
	for (w = 0; w < ng; w++)
		sq_init(&s->groups[w].pinned);
	for (u = 0; u < s->nunits; u++)
		s->last[u] = -1;
	for (w = 0; w < (cfg->each ? ng : 1); w++)
		for (i = 0; i < ntests; i++) {
			u = (uint32_t)w * ntests + (order != NULL ? order[i] : i);
			sq_push_tail(s, cfg->each ? &s->groups[w].pinned :
			    &s->queue, u);
		}
	return s;
}

void
sched_free(struct sched *s)
{
	int w;

	if (s == NULL)
		return;
	for (w = 0; w < s->cfg.nslots; w++)
		free(s->slots[w].b);
	free(s->slots);
	free(s->groups);
	free(s->next);
	free(s->state);
	free(s->attempts);
	free(s->last);
	free(s->est);
	scons_free(s->c);
	free(s);
}

uint32_t
sched_nunits(const struct sched *s)
{
	return s->nunits;
}

uint32_t
sched_unit_test(const struct sched *s, uint32_t u)
{
	return unit_test(s, u);
}

int
sched_unit_group(const struct sched *s, uint32_t u)
{
	return s->cfg.each ? (int)(u / s->ntests) : -1;
}

uint32_t
sched_unit_of(const struct sched *s, int slot, uint32_t test)
{
	if (!s->cfg.each || slot < 0 || slot >= s->cfg.nslots)
		return test;
	return (uint32_t)s->slots[slot].group * s->ntests + test;
}

int
sched_ngroups(const struct sched *s)
{
	return s->ngroups;
}

size_t
sched_memory(const struct sched *s)
{
	return sizeof *s + (size_t)(s->nunits + 1) * (sizeof *s->next + 2 +
	    sizeof *s->last) + (size_t)(s->ntests + 1) * sizeof *s->est +
	    (size_t)s->cfg.nslots * sizeof *s->slots +
	    (size_t)s->ngroups * sizeof *s->groups +
	    (s->c == NULL ? 0 : sizeof *s->c + (size_t)(s->ntests + 1) *
	    (sizeof *s->c->rank + sizeof *s->c->grp) +
	    (s->c->lock_first == NULL ? 0 : (size_t)(s->ntests + 1) *
	    sizeof *s->c->lock_first + (size_t)s->c->lock_first[s->ntests] *
	    sizeof *s->c->locks));
}

/* ---- handing out -------------------------------------------------------- */

static struct sslot *
slot_get(struct sched *s, int slot)
{
	if (slot < 0 || slot >= s->cfg.nslots)
		return NULL;
	return &s->slots[slot];
}

void
sched_worker_up(struct sched *s, int slot, double now)
{
	struct sslot *w = slot_get(s, slot);

	if (w == NULL || w->up)
		return;
	w->up = 1;
	w->busy_from = now;
	s->nup++;
	s->groups[w->group].nup++;
}

void
sched_set_rtt(struct sched *s, int slot, double rtt)
{
	struct sslot *w = slot_get(s, slot);

	if (w != NULL)
		w->rtt = rtt > 0 && rtt < SCHED_RTT_MAX ? rtt :
		    (rtt > 0 ? SCHED_RTT_MAX : 0);
}

static void
slot_batch_open(struct sslot *w, uint32_t count)
{
	size_t i;

	if (w->bn == w->bcap) {
		/* Unwrap into a bigger array: batches are few. */
		struct sbatch *nb = xcalloc(w->bcap ? w->bcap * 2 : 4,
		    sizeof *nb);

		for (i = 0; i < w->bn; i++)
			nb[i] = w->b[(w->bfirst + i) % w->bcap];
		free(w->b);
		w->b = nb;
		w->bfirst = 0;
		w->bcap = w->bcap ? w->bcap * 2 : 4;
	}
	w->b[(w->bfirst + w->bn) % w->bcap].count = count;
	w->b[(w->bfirst + w->bn) % w->bcap].got = 0;
	w->bn++;
}

/* A rerun that may go to slot: another worker than last time, unless
 * slot is the only one up. */
static uint32_t
sched_take_rerun(struct sched *s, int slot)
{
	uint32_t prev = SCHED_NONE, u;

	if (s->c != NULL && s->c->phase_state != PH_IDLE)
		return SCHED_NONE;
	for (u = s->reruns.head; u != SCHED_NONE; prev = u, u = s->next[u])
		if ((s->last[u] != slot || s->nup <= 1) && (s->c == NULL ||
		    unit_locks_free(s, u, slot))) {
			sq_unlink(s, &s->reruns, prev, u);
			return u;
		}
	return SCHED_NONE;
}

static void
slot_send(struct sched *s, struct sslot *w, uint32_t u)
{
	s->state[u] = ST_FLIGHT;
	sq_push_tail(s, &w->flight, u);
	unit_sent(s, (int)(w - s->slots), u);
}

size_t
sched_next_batch(struct sched *s, int slot, double now, uint32_t *units,
    size_t max)
{
	struct sslot *w = slot_get(s, slot);
	struct squeue *q, *from;
	struct scopy *cp;
	double left, budget, got = 0, e, high;
	size_t n = 0;
	uint32_t u, g;
	int nup;

	if (s->c != NULL) {
		s->c->last_group = -1;
		sched_phase_update(s, now);
	}
	if (w == NULL || !w->up || s->stopping || max == 0)
		return 0;
	q = s->cfg.each ? &s->groups[w->group].pinned : &s->queue;
	nup = s->cfg.each ? s->groups[w->group].nup : s->nup;
	if (s->c == NULL && q->n == 0 && (s->cfg.each || s->reruns.n == 0))
		return 0;
	if (s->c != NULL && s->c->phase_state == PH_DRAIN)
		return 0;
	left = slot_left(s, w, now);
	/* Far away, a result takes half a round trip to come back and the
	 * next batch half to arrive: what is in flight must last that. */
	if (w->flight.n > 0 && (left >= SCHED_LOW + w->rtt ||
	    w->flight.n >= 2 * SCHED_MAX_BATCH))
		return 0;
	if (s->c != NULL && (cp = sched_pick_copy(s, slot, &g)) != NULL)
		return sched_send_copy(s, slot, cp, g, now, units, max);
	high = SCHED_HIGH > SCHED_LOW + 2 * w->rtt ? SCHED_HIGH :
	    SCHED_LOW + 2 * w->rtt;
	budget = sched_left_est(s, slot, q) / (2.0 * (nup > 0 ? nup : 1));
	if (budget > high)
		budget = high;
	if (max > SCHED_MAX_BATCH)
		max = SCHED_MAX_BATCH;
	/* Nothing observed yet: one unknown test at a time, so that a first
	 * guess cannot commit a worker to a pile of long tests (a far one's
	 * round trip would otherwise be filled with guesses). */
	if (s->mean == 0 && q->nunknown > 0 && q->nunknown == q->n) {
		if (w->flight.n > 0)
			return 0;
		max = 1;
	}
	while (n < max) {
		u = s->cfg.each ? SCHED_NONE : sched_take_rerun(s, slot);
		if (u == SCHED_NONE) {
			if ((u = sched_peek(s, slot, q, &from)) == SCHED_NONE)
				break;
			e = unit_est(s, u);
			if (n > 0 && got + e > budget)
				break;
			sq_pop(s, from);
		} else
			e = unit_est(s, u);
		got += e;
		/* An idle worker starts when the batch gets there and its
		 * result takes as long to come back: not the test's cost. */
		if (w->flight.n == 0)
			w->busy_from = now + w->rtt;
		slot_send(s, w, u);
		units[n++] = u;
	}
	if (n > 0)
		slot_batch_open(w, (uint32_t)n);
	return n;
}

void
sched_started(struct sched *s, int slot, uint32_t u, double now)
{
	struct sslot *w = slot_get(s, slot);
	uint32_t v;

	if (w == NULL || u >= s->nunits || s->state[u] != ST_FLIGHT)
		return;
	/* Only a unit this slot holds (nearly always the first): a stray
	 * start changes nothing. */
	for (v = w->flight.head; v != SCHED_NONE && v != u; v = s->next[v])
		;
	if (v == SCHED_NONE)
		return;
	if (w->running != SCHED_NONE && s->state[w->running] == ST_RUNNING)
		s->state[w->running] = ST_FLIGHT;
	s->state[u] = ST_RUNNING;
	w->running = u;
	w->started = now;
}

/* ---- results ------------------------------------------------------------ */

static void
slot_batch_count(struct sslot *w)
{
	size_t i;
	struct sbatch *b;

	for (i = 0; i < w->bn; i++) {
		b = &w->b[(w->bfirst + i) % w->bcap];
		if (b->got < b->count) {
			b->got++;
			return;
		}
	}
}

static int
is_rerunnable(enum outcome o)
{
	return o == OUT_FAIL || o == OUT_ERROR || o == OUT_CRASH ||
	    o == OUT_TIMEOUT;
}

static void
sched_final(struct sched *s, uint32_t u, enum outcome o)
{
	s->state[u] = ST_FINAL;
	s->nfinal++;
	if (o != OUT_NOT_RUN && s->cfg.is_failure != NULL &&
	    s->cfg.is_failure(o))
		s->nfailures++;
}

enum sched_verdict
sched_result(struct sched *s, int slot, uint32_t u, enum outcome o,
    double now, enum outcome *final)
{
	struct sslot *w = slot_get(s, slot);

	if (w == NULL || u >= s->nunits || (s->state[u] != ST_FLIGHT &&
	    s->state[u] != ST_RUNNING))
		return SCHED_IGNORED;
	if (sq_remove(s, &w->flight, u) == -1)
		return SCHED_IGNORED;
	unit_landed(s, slot, u);
	slot_batch_count(w);
	/* From the previous result (or the send to an idle worker, plus
	 * the round trip) to this one: the worker's whole cost of a test,
	 * overhead included. A result sooner than the round trip allows
	 * says the round trip was overestimated, not that tests are free:
	 * it teaches nothing. */
	if (now >= w->busy_from)
		sched_observe(s, u, now - w->busy_from);
	w->busy_from = now;
	if (w->running == u)
		w->running = SCHED_NONE;
	s->last[u] = (int16_t)slot;
	if (s->attempts[u] < UINT8_MAX)
		s->attempts[u]++;
	if (is_rerunnable(o) && !s->stopping &&
	    s->attempts[u] <= s->cfg.reruns) {
		s->state[u] = ST_QUEUED;
		if (unit_grp(s, u) != SCHED_NONE) {
			/* Again in its group's process, on another worker. */
			sq_push_tail(s, unit_home(s, u), u);
			copy_of(s, unit_grp(s, u), unit_pin(s, u))->avoid = slot;
		} else if (s->cfg.each)
			sq_push_head(s, s->c != NULL ? unit_home(s, u) :
			    &s->groups[w->group].pinned, u);
		else
			sq_push_tail(s, &s->reruns, u);
		sched_phase_update(s, now);
		return SCHED_RERUN;
	}
	if (o == OUT_PASS && s->attempts[u] > 1)
		o = OUT_FLAKY;
	sched_final(s, u, o);
	*final = o;
	sched_phase_update(s, now);
	return SCHED_FINAL;
}

/* Moves slot's unstarted units (all but `keep`) back to the front of
 * their queue, in the order they were sent. */
static size_t
slot_requeue(struct sched *s, struct sslot *w, uint32_t keep, size_t limit)
{
	struct squeue *q = s->cfg.each ? &s->groups[w->group].pinned :
	    &s->queue;
	uint32_t tmp = SCHED_NONE, u, prev = SCHED_NONE, moved = 0;

	/* Detach up to limit units (not keep) onto a reversed stack, then
	 * push each to the front: the queue gets them in their old order. */
	for (u = w->flight.head; u != SCHED_NONE && moved < limit;) {
		uint32_t nx = s->next[u];

		if (u == keep) {
			prev = u;
			u = nx;
			continue;
		}
		sq_unlink(s, &w->flight, prev, u);
		unit_landed(s, (int)(w - s->slots), u);
		s->state[u] = ST_QUEUED;
		s->next[u] = tmp;
		tmp = u;
		moved++;
		u = nx;
	}
	while (tmp != SCHED_NONE) {
		u = tmp;
		tmp = s->next[u];
		if (s->c == NULL) {
			sq_push_head(s, q, u);
			continue;
		}
		sq_push_head(s, unit_home(s, u), u);
		/* The rest of a group whose process died runs elsewhere. */
		if (unit_grp(s, u) != SCHED_NONE)
			copy_of(s, unit_grp(s, u), unit_pin(s, u))->avoid =
			    (int)(w - s->slots);
	}
	return moved;
}

size_t
sched_batch_done(struct sched *s, int slot, double now)
{
	struct sslot *w = slot_get(s, slot);
	struct sbatch b;
	size_t left;

	if (w == NULL || w->bn == 0)
		return 0;
	b = w->b[w->bfirst];
	w->bfirst = (w->bfirst + 1) % w->bcap;
	w->bn--;
	if (b.got >= b.count)
		return 0;
	/* The batch ended without every result (cancelled, or a worker that
	 * answers too soon): those units are the oldest still in flight. */
	left = slot_requeue(s, w, SCHED_NONE, b.count - b.got);
	if (w->running != SCHED_NONE && s->state[w->running] != ST_RUNNING)
		w->running = SCHED_NONE;
	sched_phase_update(s, now);
	return left;
}

size_t
sched_take_back(struct sched *s, int slot)
{
	struct sslot *w = slot_get(s, slot);

	if (w == NULL)
		return 0;
	return slot_requeue(s, w, w->running, SIZE_MAX);
}

void
sched_worker_lost(struct sched *s, int slot, uint32_t *running)
{
	struct sslot *w = slot_get(s, slot);

	*running = SCHED_NONE;
	if (w == NULL)
		return;
	/* A unit whose start was not heard goes back with the rest: the
	 * worker announces a test before it runs it. */
	*running = w->running;
	slot_requeue(s, w, w->running, SIZE_MAX);
	w->bn = 0;
	w->bfirst = 0;
	if (w->up) {
		w->up = 0;
		s->nup--;
		s->groups[w->group].nup--;
	}
}

int
sched_running(const struct sched *s, int slot, uint32_t *u, double *since)
{
	const struct sslot *w;

	if (slot < 0 || slot >= s->cfg.nslots)
		return 0;
	w = &s->slots[slot];
	if (w->running == SCHED_NONE)
		return 0;
	*u = w->running;
	*since = w->started;
	return 1;
}

size_t
sched_inflight(const struct sched *s, int slot)
{
	if (slot < 0 || slot >= s->cfg.nslots)
		return 0;
	return s->slots[slot].flight.n;
}

/* ---- stopping ----------------------------------------------------------- */

void
sched_stop(struct sched *s)
{
	s->stopping = 1;
}

int
sched_stopping(const struct sched *s)
{
	return s->stopping;
}

int
sched_maxfail_hit(const struct sched *s)
{
	return s->cfg.maxfail > 0 && s->nfailures >= s->cfg.maxfail;
}

size_t
sched_drain(struct sched *s, int group, uint32_t *units, size_t max)
{
	struct squeue *q;
	size_t n = 0;
	uint32_t u;

	if (s->cfg.each) {
		if (group < 0 || group >= s->ngroups)
			return 0;
		q = &s->groups[group].pinned;
	} else
		q = s->reruns.n > 0 ? &s->reruns : &s->queue;
	while (n < max) {
		if ((u = sq_pop(s, q)) == SCHED_NONE) {
			if (s->cfg.each || q == &s->queue)
				break;
			q = &s->queue;
			continue;
		}
		sched_final(s, u, OUT_NOT_RUN);
		units[n++] = u;
	}
	if (s->c != NULL && n < max)
		n += scons_drain(s, group, units + n, max - n);
	return n;
}

uint32_t
sched_nfinal(const struct sched *s)
{
	return s->nfinal;
}

int
sched_finished(const struct sched *s)
{
	return s->nfinal == s->nunits;
}

/* ---- order -------------------------------------------------------------- */

struct okey {
	uint32_t	 i;		/* the test */
	uint32_t	 pos;		/* its place before sorting */
	uint8_t		 failed;
	float		 est;
};

static int
okey_cmp(const void *a, const void *b)
{
	const struct okey *x = a, *y = b;

	if (x->failed != y->failed)
		return x->failed ? -1 : 1;
	if (x->est != y->est)
		return x->est > y->est ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;	/* stable */
}

/* splitmix64: a seed gives the same shuffle on every machine. */
static uint64_t
order_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
order_shuffle(struct okey *k, uint32_t n, uint64_t seed)
{
	struct okey t;
	uint32_t i, j;

	for (i = n; i > 1; i--) {	/* Fisher-Yates */
		j = (uint32_t)(order_rand(&seed) % i);
		t = k[i - 1];
		k[i - 1] = k[j];
		k[j] = t;
	}
	for (i = 0; i < n; i++)
		k[i].pos = i;
}

void
sched_order(uint32_t n, const float *est, const uint8_t *failed, int ff,
    long long seed, uint32_t *order)
{
	struct okey *k = xcalloc(n + 1, sizeof *k);
	double sum = 0;
	uint32_t i, nknown = 0;
	float mean;

	for (i = 0; i < n; i++)
		if (est != NULL && est[i] >= 0) {
			sum += est[i];
			nknown++;
		}
	mean = nknown > 0 ? (float)(sum / nknown) : 0;
	for (i = 0; i < n; i++) {
		k[i].i = k[i].pos = i;
		k[i].failed = ff && failed != NULL && failed[i];
		/* A shuffle replaces the duration order; unknown durations
		 * count as the mean of the known ones. */
		k[i].est = nknown == 0 || seed >= 0 ? 0 :
		    (est[i] >= 0 ? est[i] : mean);
	}
	if (seed >= 0)
		order_shuffle(k, n, (uint64_t)seed);
	qsort(k, n, sizeof *k, okey_cmp);
	for (i = 0; i < n; i++)
		order[i] = k[i].i;
	free(k);
}

/*
 * daemon-slots.c - the daemon's slots and the queue in front of them:
 * who gets the next free slot when several managers want more than there
 * are.
 *
 * Each connection waits under its manager's run_id (from its hello).
 * A free slot goes to the run that holds the fewest slots now; among
 * equals, to the one served least recently, and among runs never served,
 * to the one waiting longest: round-robin, corrected so that a manager
 * that came late catches up with those that filled the slots first.
 * Within one run, connections are served in the order they came.
 *
 * Pure bookkeeping: no I/O, no time, nothing of connections but an
 * opaque pointer; daemon.c does the rest.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "worker.h"

struct slot_waiter {
	void		*item;
	uint64_t	 seq;		/* when it began to wait */
};

struct slot_run {
	char			*run_id;
	int			 running;
	struct slot_waiter	*queue;
	size_t			 nqueue;
	uint64_t		 served;	/* seq of its last grant; 0: never */
};

struct slots {
	int		 total;
	int		 busy;
	struct slot_run	*runs;
	size_t		 nruns;
	uint64_t	 seq;
};

struct slots *
slots_new(int total)
{
	struct slots *sl = xcalloc(1, sizeof *sl);

	sl->total = total;
	return sl;
}

static void
slots_drop_run(struct slots *sl, size_t i)
{
	free(sl->runs[i].run_id);
	free(sl->runs[i].queue);
	sl->runs[i] = sl->runs[--sl->nruns];
}

void
slots_free(struct slots *sl)
{
	if (sl == NULL)
		return;
	while (sl->nruns > 0)
		slots_drop_run(sl, sl->nruns - 1);
	free(sl->runs);
	free(sl);
}

static struct slot_run *
slots_run(struct slots *sl, const char *run_id, int create)
{
	size_t i;

	for (i = 0; i < sl->nruns; i++)
		if (strcmp(sl->runs[i].run_id, run_id) == 0)
			return &sl->runs[i];
	if (!create)
		return NULL;
	sl->runs = xreallocarray(sl->runs, sl->nruns + 1, sizeof *sl->runs);
	memset(&sl->runs[sl->nruns], 0, sizeof *sl->runs);
	sl->runs[sl->nruns].run_id = xstrdup(run_id);
	return &sl->runs[sl->nruns++];
}

/* Forgets a run that neither runs nor waits. */
static void
slots_tidy(struct slots *sl, struct slot_run *r)
{
	if (r->running == 0 && r->nqueue == 0)
		slots_drop_run(sl, (size_t)(r - sl->runs));
}

void
slots_wait(struct slots *sl, const char *run_id, void *item)
{
	struct slot_run *r = slots_run(sl, run_id, 1);

	r->queue = xreallocarray(r->queue, r->nqueue + 1, sizeof *r->queue);
	r->queue[r->nqueue].item = item;
	r->queue[r->nqueue++].seq = ++sl->seq;
}

int
slots_forget(struct slots *sl, void *item)
{
	struct slot_run *r;
	size_t i, k;

	for (i = 0; i < sl->nruns; i++) {
		r = &sl->runs[i];
		for (k = 0; k < r->nqueue; k++) {
			if (r->queue[k].item != item)
				continue;
			memmove(&r->queue[k], &r->queue[k + 1],
			    (r->nqueue - k - 1) * sizeof *r->queue);
			r->nqueue--;
			slots_tidy(sl, r);
			return 0;
		}
	}
	return -1;
}

/* Is a a better claim on the next slot than b? */
static int
slots_before(const struct slot_run *a, const struct slot_run *b)
{
	if (a->running != b->running)
		return a->running < b->running;
	if (a->served != b->served)
		return a->served < b->served;
	return a->queue[0].seq < b->queue[0].seq;
}

void *
slots_grant(struct slots *sl, const char **run_id)
{
	struct slot_run *best = NULL, *r;
	void *item;
	size_t i;

	if (sl->busy >= sl->total)
		return NULL;
	for (i = 0; i < sl->nruns; i++) {
		r = &sl->runs[i];
		if (r->nqueue > 0 && (best == NULL || slots_before(r, best)))
			best = r;
	}
	if (best == NULL)
		return NULL;
	item = best->queue[0].item;
	memmove(&best->queue[0], &best->queue[1],
	    (best->nqueue - 1) * sizeof *best->queue);
	best->nqueue--;
	best->running++;
	best->served = ++sl->seq;
	sl->busy++;
	if (run_id != NULL)
		*run_id = best->run_id;
	return item;
}

void
slots_release(struct slots *sl, const char *run_id)
{
	struct slot_run *r = slots_run(sl, run_id, 0);

	if (r == NULL || r->running == 0)
		fatalx("slots: a run that holds no slot released one");
	r->running--;
	sl->busy--;
	slots_tidy(sl, r);
}

int
slots_busy(const struct slots *sl)
{
	return sl->busy;
}

size_t
slots_waiting(const struct slots *sl)
{
	size_t i, n = 0;

	for (i = 0; i < sl->nruns; i++)
		n += sl->runs[i].nqueue;
	return n;
}

int
slots_running(const struct slots *sl, const char *run_id)
{
	size_t i;

	for (i = 0; i < sl->nruns; i++)
		if (strcmp(sl->runs[i].run_id, run_id) == 0)
			return sl->runs[i].running;
	return 0;
}

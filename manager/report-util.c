/*
 * report-util.c - small pieces the file and web reporters share: cutting
 * a test's output down to a bounded head and tail, splitting a test id
 * into its suite and name, and keeping the slowest tests of a run.
 *
 * The cutting and splitting are pure functions over the caller's memory
 * that never allocate, and nothing may ever split a UTF-8 character (a
 * reporter would then emit a replacement character in the middle of a
 * user's text). The slowest tests are a bounded heap of copies: a
 * passing test that is not among them costs one comparison.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

static int
rpt_is_continuation(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

void
rpt_clip(const char *p, size_t len, size_t max, struct rpt_clip *c)
{
	size_t h, t;

	memset(c, 0, sizeof *c);
	if (p == NULL)
		return;
	c->head = p;
	if (len <= max) {
		c->head_len = len;
		return;
	}
	/* A quarter for the start, the rest for the end: when a test
	 * crashes or times out, its last lines say why. */
	h = max / 4;
	t = len - (max - h);
	/* At most three steps each way: a UTF-8 character has at most
	 * three continuation bytes; bad input just gets cut. */
	for (int i = 0; i < 3 && h > 0 && rpt_is_continuation(p[h]); i++)
		h--;
	for (int i = 0; i < 3 && t < len && rpt_is_continuation(p[t]); i++)
		t++;
	c->head_len = h;
	c->tail = p + t;
	c->tail_len = len - t;
	c->omitted = t - h;
}

const char *
rpt_split_id(const char *id, char *buf, size_t size)
{
	const char *slash = strchr(id, '/');
	size_t n;

	if (size == 0)
		return id;
	if (slash == NULL) {
		buf[0] = '\0';
		return id;
	}
	n = (size_t)(slash - id);
	if (n >= size)
		n = size - 1;
	memcpy(buf, id, n);
	buf[n] = '\0';
	return slash + 1;
}

/* ---- the slowest tests of a run ------------------------------------ */

static void
rpt_slow_free(struct rpt_slow *s)
{
	free(s->id);
	free(s->worker);
}

static void
rpt_heap_down(struct rpt_slow *h, size_t n, size_t i)
{
	struct rpt_slow tmp;
	size_t c;

	while ((c = 2 * i + 1) < n) {
		if (c + 1 < n && h[c + 1].duration < h[c].duration)
			c++;
		if (h[i].duration <= h[c].duration)
			return;
		tmp = h[i];
		h[i] = h[c];
		h[c] = tmp;
		i = c;
	}
}

void
rpt_top_init(struct rpt_top *t, size_t max)
{
	memset(t, 0, sizeof *t);
	t->max = max;
	t->e = max > 0 ? xcalloc(max, sizeof *t->e) : NULL;
}

void
rpt_top_add(struct rpt_top *t, const struct test_report *r)
{
	struct rpt_slow s, tmp;
	size_t i;

	if (!(r->duration >= 0))
		return;
	t->count++;
	t->total += r->duration;
	if (t->max == 0 || (t->n == t->max && r->duration <= t->e[0].duration))
		return;			/* the common case: not among them */
	memset(&s, 0, sizeof s);
	s.duration = r->duration;
	s.id = xstrdup(r->id != NULL ? r->id : "?");
	s.worker = r->worker != NULL ? xstrdup(r->worker) : NULL;
	s.outcome = r->outcome;
	s.nhistory = r->nhistory < 0 ? 0 : r->nhistory > REPORT_HISTORY_MAX ?
	    REPORT_HISTORY_MAX : r->nhistory;
	for (i = 0; i < (size_t)s.nhistory; i++)
		s.history[i] = r->history[i];
	s.expected = s.nhistory > 0 ? r->expected : -1;
	if (t->n == t->max) {
		rpt_slow_free(&t->e[0]);
		t->e[0] = s;
		rpt_heap_down(t->e, t->n, 0);
		return;
	}
	i = t->n++;
	t->e[i] = s;
	while (i > 0 && t->e[(i - 1) / 2].duration > t->e[i].duration) {
		tmp = t->e[i];
		t->e[i] = t->e[(i - 1) / 2];
		t->e[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

static int
rpt_slow_cmp(const void *a, const void *b)
{
	const struct rpt_slow *x = a, *y = b;

	if (x->duration != y->duration)
		return x->duration < y->duration ? 1 : -1;
	return strcmp(x->id, y->id);
}

void
rpt_top_sort(struct rpt_top *t)
{
	if (t->n > 1)
		qsort(t->e, t->n, sizeof *t->e, rpt_slow_cmp);
}

void
rpt_top_clear(struct rpt_top *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		rpt_slow_free(&t->e[i]);
	t->n = 0;
	t->total = 0;
	t->count = 0;
}

void
rpt_top_free(struct rpt_top *t)
{
	rpt_top_clear(t);
	free(t->e);
	memset(t, 0, sizeof *t);
}

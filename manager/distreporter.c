/*
 * distreporter.c - the one door between the pool and the reporters.
 *
 * Workers run tests at the same time, so their output and results arrive
 * interleaved. Reporters (terminal, JUnit, TAP, JSON, web) are written as
 * if tests ran one after another: each sees test_start, test_output,
 * test_result, test_stop for one test, then for the next (Invariant 2).
 * This file makes that true, as trial's DistReporter does: output is held
 * per (worker slot, test) until the result, then the whole sequence is
 * played to every reporter at once, in completion order.
 *
 * It must never let two tests' sequences interleave, never hold more than
 * DR_STREAM_CAP (twice, while appending) per stream per test, and never
 * cost a passing test without output more than a lookup and the calls.
 * It does no I/O itself: only reporters write.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

/* The worker already caps each stream; this is the manager's own bound,
 * so that a broken or hostile worker cannot make it hold more. */
#define DR_STREAM_CAP		(1024u * 1024)
/* When cutting, the kept part starts at a line if one starts this near. */
#define DR_CUT_LINE_SEARCH	4096

struct dr_buf {
	char		*data;		/* NUL-terminated when non-NULL */
	size_t		 len;
	size_t		 size;		/* allocated, with room for the NUL */
	size_t		 cut;		/* bytes dropped from the front */
};

/* Output of one test on one worker slot, waiting for its result. */
struct dr_pending {
	uint32_t	 test;
	struct dr_buf	 out;
	struct dr_buf	 err;
};

/* A slot rarely holds more than one pending test: output is sent just
 * before the result. Several happen only with stale attempts. */
struct dr_slot {
	struct dr_pending *p;
	size_t		 n;
	size_t		 size;
};

struct distreporter {
	struct reporter	**r;
	size_t		 nr;
	struct dr_slot	*slots;
	size_t		 nslots;
	int		 in_sequence;	/* inside a test's sequence */
};

struct distreporter *
dr_new(void)
{
	return xcalloc(1, sizeof(struct distreporter));
}

static void
dr_buf_free(struct dr_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void
dr_free(struct distreporter *dr)
{
	size_t i, j;

	if (dr == NULL)
		return;
	/* dr_add took each reporter: its free op releases it all, and one
	 * without a free op is a bare malloc'd struct reporter. */
	for (i = 0; i < dr->nr; i++) {
		if (dr->r[i]->ops->free != NULL)
			dr->r[i]->ops->free(dr->r[i]);
		else
			free(dr->r[i]);
	}
	free(dr->r);
	for (i = 0; i < dr->nslots; i++) {
		for (j = 0; j < dr->slots[i].n; j++) {
			dr_buf_free(&dr->slots[i].p[j].out);
			dr_buf_free(&dr->slots[i].p[j].err);
		}
		free(dr->slots[i].p);
	}
	free(dr->slots);
	free(dr);
}

void
dr_forget(struct distreporter *dr)
{
	size_t i, j;

	for (i = 0; i < dr->nslots; i++) {
		for (j = 0; j < dr->slots[i].n; j++) {
			dr_buf_free(&dr->slots[i].p[j].out);
			dr_buf_free(&dr->slots[i].p[j].err);
		}
		dr->slots[i].n = 0;
	}
}

void
dr_add(struct distreporter *dr, struct reporter *r)
{
	dr->r = xreallocarray(dr->r, dr->nr + 1, sizeof *dr->r);
	dr->r[dr->nr++] = r;
}

/* Calls op on every reporter that implements it. */
#define DR_EACH(dr, op, ...) do {					\
	size_t dr__i;							\
	for (dr__i = 0; dr__i < (dr)->nr; dr__i++) {			\
		struct reporter *dr__r = (dr)->r[dr__i];		\
		if (dr__r->ops->op != NULL)				\
			dr__r->ops->op(dr__r, __VA_ARGS__);		\
	}								\
} while (0)

void
dr_run_start(struct distreporter *dr, const struct run_info *ri)
{
	DR_EACH(dr, run_start, ri);
}

void
dr_worker_up(struct distreporter *dr, const struct worker_info *wi)
{
	DR_EACH(dr, worker_up, wi);
}

void
dr_worker_down(struct distreporter *dr, const struct worker_info *wi,
    const char *why)
{
	DR_EACH(dr, worker_down, wi, why);
}

void
dr_progress(struct distreporter *dr, const struct progress *p)
{
	DR_EACH(dr, progress, p);
}

void
dr_run_end(struct distreporter *dr, const struct run_summary *s)
{
	DR_EACH(dr, run_end, s);
}

void
dr_notice(struct distreporter *dr, int level, const char *fmt, ...)
{
	va_list ap;
	char *text;
	size_t i;
	int heard = 0;

	va_start(ap, fmt);
	xvasprintf(&text, fmt, ap);
	va_end(ap);
	for (i = 0; i < dr->nr; i++) {
		if (dr->r[i]->ops->notice != NULL) {
			dr->r[i]->ops->notice(dr->r[i], level, text);
			heard = 1;
		}
	}
	/* With no reporter listening the user must still see it. */
	if (!heard && level <= LOG_LVL_WARN)
		(level == LOG_LVL_ERROR ? log_error : log_warn)("%s", text);
	free(text);
}

/* ---- buffering --------------------------------------------------------- */

static struct dr_slot *
dr_slot_get(struct distreporter *dr, int slot)
{
	size_t want;

	if (slot < 0)
		fatalx("distreporter: negative worker slot %d", slot);
	if ((size_t)slot >= dr->nslots) {
		want = (size_t)slot + 1;
		if (want < dr->nslots * 2)
			want = dr->nslots * 2;
		dr->slots = xreallocarray(dr->slots, want, sizeof *dr->slots);
		memset(dr->slots + dr->nslots, 0,
		    (want - dr->nslots) * sizeof *dr->slots);
		dr->nslots = want;
	}
	return &dr->slots[slot];
}

/* The pending entry for test on slot, or NULL (create: a new one). */
static struct dr_pending *
dr_pending_find(struct dr_slot *s, uint32_t test, int create)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (s->p[i].test == test)
			return &s->p[i];
	}
	if (!create)
		return NULL;
	if (s->n == s->size) {
		s->size = s->size == 0 ? 2 : s->size * 2;
		s->p = xreallocarray(s->p, s->size, sizeof *s->p);
	}
	memset(&s->p[s->n], 0, sizeof s->p[s->n]);
	s->p[s->n].test = test;
	return &s->p[s->n++];
}

static void
dr_pending_remove(struct dr_slot *s, struct dr_pending *p)
{
	size_t i = (size_t)(p - s->p);

	dr_buf_free(&p->out);
	dr_buf_free(&p->err);
	s->p[i] = s->p[--s->n];
}

/*
 * Appends, keeping the tail: the end of a test's output is nearest its
 * failure. The buffer may reach twice the cap so that a flood of small
 * chunks moves memory once per cap's worth, not once per chunk.
 */
static void
dr_buf_append(struct dr_buf *b, const char *data, size_t len)
{
	size_t drop, want;

	if (len >= DR_STREAM_CAP) {
		b->cut += b->len + (len - DR_STREAM_CAP);
		b->len = 0;
		data += len - DR_STREAM_CAP;
		len = DR_STREAM_CAP;
	}
	if (b->len + len > 2 * DR_STREAM_CAP) {
		drop = b->len + len - DR_STREAM_CAP;
		memmove(b->data, b->data + drop, b->len - drop);
		b->len -= drop;
		b->cut += drop;
	}
	if (b->len + len + 1 > b->size) {
		want = b->size < 256 ? 256 : b->size;
		while (want < b->len + len + 1)
			want *= 2;
		if (want > 2 * DR_STREAM_CAP + 1)
			want = 2 * DR_STREAM_CAP + 1;
		b->data = xreallocarray(b->data, want, 1);
		b->size = want;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/* Where the kept part should start after dropping the first drop bytes:
 * at a line if one starts soon, else at a character. */
static size_t
dr_cut_point(const struct dr_buf *b, size_t drop)
{
	const char *nl;
	size_t span;

	span = b->len - drop < DR_CUT_LINE_SEARCH ? b->len - drop :
	    DR_CUT_LINE_SEARCH;
	if (drop > 0 && b->data[drop - 1] == '\n')
		return drop;
	nl = memchr(b->data + drop, '\n', span);
	if (nl != NULL)
		return (size_t)(nl - b->data) + 1;
	while (drop < b->len && ((unsigned char)b->data[drop] & 0xc0) == 0x80)
		drop++;
	return drop;
}

/* Brings b within the cap and puts the line that says so in front. */
static void
dr_buf_finish(struct dr_buf *b, const char *stream)
{
	size_t drop = 0, keep;
	char *marked;
	int n;

	if (b->len > DR_STREAM_CAP)
		drop = b->len - DR_STREAM_CAP;
	if (b->cut == 0 && drop == 0)
		return;
	drop = dr_cut_point(b, drop);
	keep = b->len - drop;
	n = xasprintf(&marked, "[distmgr: %zu earlier bytes of %s cut, over "
	    "the %u MiB limit]\n%.*s", b->cut + drop, stream,
	    DR_STREAM_CAP / (1024 * 1024), (int)keep, b->data + drop);
	free(b->data);
	b->data = marked;
	b->len = (size_t)n;
	b->size = b->len + 1;
	b->cut = 0;
}

void
dr_test_output(struct distreporter *dr, int slot, uint32_t test,
    const char *stream, const char *data, size_t len)
{
	struct dr_pending *p;

	if (len == 0)
		return;
	p = dr_pending_find(dr_slot_get(dr, slot), test, 1);
	if (stream != NULL && strcmp(stream, "stderr") == 0)
		dr_buf_append(&p->err, data, len);
	else
		dr_buf_append(&p->out, data, len);
}

void
dr_test_discard(struct distreporter *dr, int slot, uint32_t test)
{
	struct dr_slot *s = dr_slot_get(dr, slot);
	struct dr_pending *p;

	if ((p = dr_pending_find(s, test, 0)) != NULL)
		dr_pending_remove(s, p);
}

/* ---- the sequence ------------------------------------------------------ */

static void
dr_fill_stream(const char **ptr, size_t *len, struct dr_buf *b,
    const char *stream)
{
	if (*ptr != NULL)
		return;			/* the caller's own text wins */
	if (b == NULL || b->len == 0) {
		*ptr = "";
		*len = 0;
		return;
	}
	dr_buf_finish(b, stream);
	*ptr = b->data;
	*len = b->len;
}

static void
dr_play(struct distreporter *dr, const struct test_report *tr)
{
	DR_EACH(dr, test_start, tr);
	if (tr->out_len > 0)
		DR_EACH(dr, test_output, tr, "stdout", tr->out, tr->out_len);
	if (tr->err_len > 0)
		DR_EACH(dr, test_output, tr, "stderr", tr->err, tr->err_len);
	DR_EACH(dr, test_result, tr);
	DR_EACH(dr, test_stop, tr);
}

void
dr_test_result(struct distreporter *dr, int slot, uint32_t test,
    struct test_report *report)
{
	struct dr_slot *s = dr_slot_get(dr, slot);
	struct dr_pending *p = NULL;
	const char *out = report->out, *err = report->err;
	size_t out_len = report->out_len, err_len = report->err_len;

	/* A reporter has no way back in; if one ever found one, two
	 * sequences would interleave. */
	if (dr->in_sequence)
		fatalx("distreporter: a result arrived inside another "
		    "test's sequence");
	if (s->n > 0)
		p = dr_pending_find(s, test, 0);
	dr_fill_stream(&report->out, &report->out_len, p ? &p->out : NULL,
	    "stdout");
	dr_fill_stream(&report->err, &report->err_len, p ? &p->err : NULL,
	    "stderr");
	dr->in_sequence = 1;
	dr_play(dr, report);
	dr->in_sequence = 0;
	/* What was filled in pointed into p: give the caller back its own. */
	report->out = out;
	report->out_len = out_len;
	report->err = err;
	report->err_len = err_len;
	if (p != NULL)
		dr_pending_remove(s, p);
}

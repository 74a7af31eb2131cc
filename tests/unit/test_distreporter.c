/*
 * test_distreporter.c - the distreporter turns interleaved output and
 * results from many workers into one test's sequence at a time, for
 * every reporter, with each test's own output and nothing else.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

/* A reporter that writes down what it is told, one line per call, and
 * checks Invariant 2 itself. */
struct rec {
	char		*log;
	size_t		 len;
	const char	*inside;	/* id between test_start and test_stop */
	int		 interleaved;
	int		*freed;
	size_t		 last_out_len;	/* from test_result */
	char		 last_out_tail[64];
};

static void
rec_add(struct reporter *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
rec_add(struct reporter *r, const char *fmt, ...)
{
	struct rec *x = r->priv;
	va_list ap;
	char *s;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	x->log = xreallocarray(x->log, x->len + strlen(s) + 2, 1);
	memcpy(x->log + x->len, s, strlen(s));
	x->len += strlen(s);
	x->log[x->len++] = '\n';
	x->log[x->len] = '\0';
	free(s);
}

static void
rec_start(struct reporter *r, const struct test_report *tr)
{
	struct rec *x = r->priv;

	if (x->inside != NULL)
		x->interleaved++;
	x->inside = tr->id;
	rec_add(r, "start %s", tr->id);
}

static void
rec_output(struct reporter *r, const struct test_report *tr,
    const char *stream, const char *data, size_t len)
{
	struct rec *x = r->priv;

	if (x->inside == NULL || strcmp(x->inside, tr->id) != 0)
		x->interleaved++;
	if (len < 200)
		rec_add(r, "output %s %s [%.*s]", tr->id, stream, (int)len,
		    data);
	else
		rec_add(r, "output %s %s %zu bytes", tr->id, stream, len);
}

static void
rec_result(struct reporter *r, const struct test_report *tr)
{
	struct rec *x = r->priv;
	size_t n = tr->out_len < 63 ? tr->out_len : 63;

	if (x->inside == NULL || strcmp(x->inside, tr->id) != 0)
		x->interleaved++;
	ck_assert_uint_eq(strlen(tr->out), tr->out_len);
	ck_assert_uint_eq(strlen(tr->err), tr->err_len);
	x->last_out_len = tr->out_len;
	memcpy(x->last_out_tail, tr->out + tr->out_len - n, n);
	x->last_out_tail[n] = '\0';
	rec_add(r, "result %s %s on %s", tr->id, outcome_name(tr->outcome),
	    tr->worker);
}

static void
rec_stop(struct reporter *r, const struct test_report *tr)
{
	struct rec *x = r->priv;

	if (x->inside == NULL || strcmp(x->inside, tr->id) != 0)
		x->interleaved++;
	x->inside = NULL;
	rec_add(r, "stop %s", tr->id);
}

static void
rec_up(struct reporter *r, const struct worker_info *wi)
{
	rec_add(r, "up %s", wi->id);
}

static void
rec_down(struct reporter *r, const struct worker_info *wi, const char *why)
{
	rec_add(r, "down %s: %s", wi->id, why);
}

static void
rec_notice(struct reporter *r, int level, const char *text)
{
	rec_add(r, "notice %d %s", level, text);
}

static void
rec_run_start(struct reporter *r, const struct run_info *ri)
{
	rec_add(r, "run_start %zu", ri->ntests);
}

static void
rec_run_end(struct reporter *r, const struct run_summary *s)
{
	rec_add(r, "run_end %d", s->exit_code);
}

static void
rec_progress(struct reporter *r, const struct progress *p)
{
	rec_add(r, "progress %zu/%zu", p->done, p->total);
}

static void
rec_free(struct reporter *r)
{
	struct rec *x = r->priv;

	(*x->freed)++;
	free(x->log);
	free(x);
	free(r);
}

static const struct reporter_ops rec_ops = {
	.name = "rec",
	.run_start = rec_run_start,
	.worker_up = rec_up,
	.worker_down = rec_down,
	.test_start = rec_start,
	.test_output = rec_output,
	.test_result = rec_result,
	.test_stop = rec_stop,
	.progress = rec_progress,
	.notice = rec_notice,
	.run_end = rec_run_end,
	.free = rec_free,
};

/* A reporter that implements only test_result: the rest must be skipped. */
static int sparse_results;

static void
sparse_result(struct reporter *r, const struct test_report *tr)
{
	(void)r;
	(void)tr;
	sparse_results++;
}

static const struct reporter_ops sparse_ops = {
	.name = "sparse",
	.test_result = sparse_result,
};

static struct rec *
rec_attach(struct distreporter *dr, int *freed)
{
	struct reporter *r = xcalloc(1, sizeof *r);
	struct rec *x = xcalloc(1, sizeof *x);

	x->freed = freed;
	r->ops = &rec_ops;
	r->priv = x;
	dr_add(dr, r);
	return x;
}

static void
result(struct distreporter *dr, int slot, uint32_t test, const char *id,
    const char *worker, enum outcome o)
{
	struct test_report tr;

	memset(&tr, 0, sizeof tr);
	tr.id = id;
	tr.worker = worker;
	tr.outcome = o;
	tr.exit_status = -1;
	tr.attempts = 1;
	dr_test_result(dr, slot, test, &tr);
	/* The caller's report comes back as it was given. */
	ck_assert_ptr_null(tr.out);
	ck_assert_ptr_null(tr.err);
}

#define OUT(dr, slot, test, stream, s) \
	dr_test_output(dr, slot, test, stream, s, strlen(s))

START_TEST(test_interleaved_workers)
{
	struct distreporter *dr = dr_new();
	int freed = 0;
	struct rec *a = rec_attach(dr, &freed), *b = rec_attach(dr, &freed);
	const char *want =
	    "start s/two\n"
	    "output s/two stdout [two says hi\n]\n"
	    "result s/two fail on w1\n"
	    "stop s/two\n"
	    "start s/one\n"
	    "output s/one stdout [one: a\none: b\n]\n"
	    "output s/one stderr [one err\n]\n"
	    "result s/one pass on w0\n"
	    "stop s/one\n"
	    "start s/three\n"
	    "result s/three pass on w2\n"
	    "stop s/three\n";

	OUT(dr, 0, 1, "stdout", "one: a\n");
	OUT(dr, 1, 2, "stdout", "two says hi\n");
	OUT(dr, 0, 1, "stderr", "one err\n");
	OUT(dr, 0, 1, "stdout", "one: b\n");
	result(dr, 1, 2, "s/two", "w1", OUT_FAIL);
	result(dr, 0, 1, "s/one", "w0", OUT_PASS);
	result(dr, 2, 3, "s/three", "w2", OUT_PASS);
	ck_assert_str_eq(a->log, want);
	ck_assert_str_eq(b->log, want);
	ck_assert_int_eq(a->interleaved, 0);
	dr_free(dr);
	ck_assert_int_eq(freed, 2);
}
END_TEST

START_TEST(test_same_test_two_slots)
{
	struct distreporter *dr = dr_new();
	int freed = 0;
	struct rec *a = rec_attach(dr, &freed);

	/* --dist each: one test on every worker, each with its own output. */
	OUT(dr, 0, 7, "stdout", "from w0\n");
	OUT(dr, 1, 7, "stdout", "from w1\n");
	result(dr, 1, 7, "s/each", "w1", OUT_PASS);
	result(dr, 0, 7, "s/each", "w0", OUT_PASS);
	ck_assert_str_eq(a->log,
	    "start s/each\n"
	    "output s/each stdout [from w1\n]\n"
	    "result s/each pass on w1\n"
	    "stop s/each\n"
	    "start s/each\n"
	    "output s/each stdout [from w0\n]\n"
	    "result s/each pass on w0\n"
	    "stop s/each\n");
	dr_free(dr);
}
END_TEST

START_TEST(test_discard_and_stale)
{
	struct distreporter *dr = dr_new();
	int freed = 0;
	struct rec *a = rec_attach(dr, &freed);

	OUT(dr, 3, 9, "stdout", "first attempt\n");
	dr_test_discard(dr, 3, 9);
	dr_test_discard(dr, 3, 9);		/* twice is harmless */
	dr_test_discard(dr, 40, 1);		/* never seen */
	OUT(dr, 3, 9, "stdout", "second attempt\n");
	OUT(dr, 3, 10, "stdout", "left over, never reported\n");
	result(dr, 3, 9, "s/rerun", "w3", OUT_FLAKY);
	ck_assert_str_eq(a->log,
	    "start s/rerun\n"
	    "output s/rerun stdout [second attempt\n]\n"
	    "result s/rerun flaky on w3\n"
	    "stop s/rerun\n");
	dr_free(dr);			/* frees the left-over buffer (LSan) */
}
END_TEST

START_TEST(test_caller_output_wins)
{
	struct distreporter *dr = dr_new();
	int freed = 0;
	struct rec *a = rec_attach(dr, &freed);
	struct test_report tr;

	memset(&tr, 0, sizeof tr);
	tr.id = "s/crash";
	tr.worker = "w0";
	tr.outcome = OUT_CRASH;
	tr.err = "worker's stderr tail\n";
	tr.err_len = strlen(tr.err);
	OUT(dr, 0, 4, "stdout", "buffered out\n");
	OUT(dr, 0, 4, "stderr", "buffered err\n");
	dr_test_result(dr, 0, 4, &tr);
	ck_assert_str_eq(a->log,
	    "start s/crash\n"
	    "output s/crash stdout [buffered out\n]\n"
	    "output s/crash stderr [worker's stderr tail\n]\n"
	    "result s/crash crash on w0\n"
	    "stop s/crash\n");
	ck_assert_str_eq(tr.err, "worker's stderr tail\n");
	ck_assert_ptr_null(tr.out);
	dr_free(dr);
}
END_TEST

/* Captures the first line a reporter gets as output. */
static char first_line[200];

static void
first_output(struct reporter *r, const struct test_report *tr,
    const char *stream, const char *data, size_t len)
{
	const char *nl = memchr(data, '\n', len);

	(void)r;
	(void)tr;
	(void)stream;
	snprintf(first_line, sizeof first_line, "%.*s",
	    nl ? (int)(nl - data) : (int)len, data);
}

static const struct reporter_ops first_ops = {
	.name = "first",
	.test_output = first_output,
};

START_TEST(test_cap_keeps_tail)
{
	struct distreporter *dr = dr_new();
	int freed = 0;
	struct rec *a = rec_attach(dr, &freed);
	struct reporter *fr = xcalloc(1, sizeof *fr);
	char line[32];
	size_t i, total = 0;

	fr->ops = &first_ops;
	dr_add(dr, fr);
	/* Nearly 3 MiB in lines of 15 bytes: the last 1 MiB is kept. */
	for (i = 0; i < 3 * 65536; i++) {
		snprintf(line, sizeof line, "line %09zu\n", i);
		OUT(dr, 0, 1, "stdout", line);
		total += strlen(line);
	}
	result(dr, 0, 1, "s/flood", "w0", OUT_PASS);
	ck_assert_str_eq(a->last_out_tail + strlen(a->last_out_tail) - 30,
	    "line 000196606\nline 000196607\n");
	ck_assert_uint_le(a->last_out_len, 1024 * 1024 + 100);
	ck_assert_uint_ge(a->last_out_len, 1024 * 1024);
	ck_assert(strstr(a->log, "output s/flood stdout ") != NULL);
	ck_assert_uint_gt(total, 2 * 1024 * 1024);
	/* Whole lines are kept: 69905 of 15 bytes fit in 1 MiB. */
	ck_assert_uint_eq(total - 69905 * 15, 1900545);
	ck_assert_str_eq(first_line, "[distmgr: 1900545 earlier bytes of "
	    "stdout cut, over the 1 MiB limit]");
	dr_free(dr);
}
END_TEST

START_TEST(test_cap_marker)
{
	struct distreporter *dr = dr_new();
	struct reporter *rp = xcalloc(1, sizeof *rp);
	size_t big = 3 * 1024 * 1024 + 5;
	char *flood = xmalloc(big);

	rp->ops = &first_ops;
	dr_add(dr, rp);
	/* One chunk past the cap, with lines of 100 bytes. */
	memset(flood, 'x', big);
	for (size_t i = 99; i < big; i += 100)
		flood[i] = '\n';
	dr_test_output(dr, 2, 5, "stderr", flood, big);
	result(dr, 2, 5, "s/huge", "w2", OUT_FAIL);
	/* 3 MiB + 5 - 1 MiB cut, then on to the next line start. */
	ck_assert_str_eq(first_line, "[distmgr: 2097200 earlier bytes of "
	    "stderr cut, over the 1 MiB limit]");
	free(flood);
	dr_free(dr);
}
END_TEST

START_TEST(test_no_output_is_empty)
{
	struct distreporter *dr = dr_new();
	int freed = 0;
	struct rec *a = rec_attach(dr, &freed);

	/* Empty writes buffer nothing. */
	dr_test_output(dr, 0, 1, "stdout", "", 0);
	result(dr, 0, 1, "s/quiet", "w0", OUT_PASS);
	ck_assert_str_eq(a->log,
	    "start s/quiet\nresult s/quiet pass on w0\nstop s/quiet\n");
	ck_assert_uint_eq(a->last_out_len, 0);
	dr_free(dr);
}
END_TEST

START_TEST(test_sparse_reporter)
{
	struct distreporter *dr = dr_new();
	struct reporter *sp = xcalloc(1, sizeof *sp);
	struct worker_info wi = { .id = "w0" };
	size_t i;

	sp->ops = &sparse_ops;
	dr_add(dr, sp);
	sparse_results = 0;
	dr_worker_up(dr, &wi);
	/* Many results on many slots, some with output. */
	for (i = 0; i < 100000; i++) {
		if (i % 1000 == 0)
			OUT(dr, (int)(i % 16), (uint32_t)i, "stdout", "x");
		result(dr, (int)(i % 16), (uint32_t)i, "s/t", "w", OUT_PASS);
	}
	ck_assert_int_eq(sparse_results, 100000);
	dr_free(dr);
	/* sparse has no free op: dr_free freed sp itself (LSan checks). */
}
END_TEST

START_TEST(test_fan_out)
{
	struct distreporter *dr = dr_new();
	int freed = 0;
	struct rec *a = rec_attach(dr, &freed);
	struct worker_info wi = { .id = "w3", .spec = "popen" };
	struct run_info ri = { .ntests = 12 };
	struct progress p = { .done = 3, .total = 12 };
	struct run_summary s = { .exit_code = 1 };

	dr_run_start(dr, &ri);
	dr_worker_up(dr, &wi);
	dr_progress(dr, &p);
	dr_notice(dr, LOG_LVL_WARN, "worker %s restarted (%d of %d)", "w3",
	    1, 8);
	dr_worker_down(dr, &wi, "killed by SIGKILL");
	dr_run_end(dr, &s);
	ck_assert_str_eq(a->log,
	    "run_start 12\n"
	    "up w3\n"
	    "progress 3/12\n"
	    "notice 1 worker w3 restarted (1 of 8)\n"
	    "down w3: killed by SIGKILL\n"
	    "run_end 1\n");
	dr_free(dr);
	ck_assert_int_eq(freed, 1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("distreporter");
	TCase *tc = tcase_create("distreporter");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_interleaved_workers);
	tcase_add_test(tc, test_same_test_two_slots);
	tcase_add_test(tc, test_discard_and_stale);
	tcase_add_test(tc, test_caller_output_wins);
	tcase_add_test(tc, test_cap_keeps_tail);
	tcase_add_test(tc, test_cap_marker);
	tcase_add_test(tc, test_no_output_is_empty);
	tcase_add_test(tc, test_sparse_reporter);
	tcase_add_test(tc, test_fan_out);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

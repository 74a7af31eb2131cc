/*
 * reporter_fixture.h - a synthetic run that the reporters' unit tests
 * feed through the vtable: one test of every outcome, with messages and
 * output that hold what breaks naive writers (markup characters, control
 * bytes, a NUL, invalid UTF-8, U+FFFE, a line break in a reason).
 *
 * Header-only so that each test program gets its own copy; included by
 * tests/unit/test_reporter_*.c only.
 */
#ifndef DM_REPORTER_FIXTURE_H
#define DM_REPORTER_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "manager.h"

/* Not every test program uses every helper. */
#define FX_UNUSED __attribute__((unused))

static char *const fx_suites[] = { "build/suites/basic.so" };

static const struct run_info fx_run_info = {
	.run_id = "r-42",
	.ntests = 10,
	.nworkers = 2,
	.dist = "load",
	.boxed = 1,
	.seed = -1,
	.start_wall = 1700000000.0,	/* 2023-11-14T22:13:20 UTC */
	.suites = fx_suites,
	.nsuites = 1,
};

static const struct worker_info fx_workers[] = {
	{ .id = "w0", .spec = "popen", .hostname = "hostA", .os = "linux",
	  .arch = "x86_64", .cpus = 2, .pid = 101, .version = "0.1.0" },
	{ .id = "w1", .spec = "ssh=farm1", .hostname = "farm1",
	  .os = "linux", .arch = "aarch64", .cpus = 8, .pid = 202,
	  .version = "0.1.0" },
};

#define FX_REPORT(i, o, msg)						\
	.id = (i), .suite_path = "build/suites/basic.so",		\
	.file = "tests/suites/basic.c", .line = 10, .outcome = (o),	\
	.message = (msg), .exit_status = -1
#define FX_ON(w, h)	.worker = (w), .host = (h), .attempts = 1

/* Output with a NUL in it, so out_len matters. */
static const char fx_nasty_out[] = "a<b>&\"c\" ]]> \x01\x1b[31mred\x1b[0m "
    "\xff\xfe bad \xef\xbf\xbe nul:\0:end\n";

static const struct test_report fx_reports[] = {
	{ FX_REPORT("math/adds", OUT_PASS, NULL), FX_ON("w0", "hostA"),
	  .duration = 0.0012, .out = "hello\n", .out_len = 6 },
	{ FX_REPORT("math/fails", OUT_FAIL, "expected 4 == 5"),
	  FX_ON("w0", "hostA"), .fail_file = "tests/suites/basic.c",
	  .fail_line = 17, .duration = 0.002, .out = fx_nasty_out,
	  .out_len = sizeof fx_nasty_out - 1, .err = "to stderr\n",
	  .err_len = 10 },
	{ FX_REPORT("math/errs", OUT_ERROR, "fixture init failed"),
	  FX_ON("w0", "hostA"), .duration = 0.001 },
	{ FX_REPORT("io/segv", OUT_CRASH, NULL), FX_ON("w1", "farm1"),
	  .signal = 11, .signal_name = "SIGSEGV", .duration = 0.01 },
	{ FX_REPORT("io/hangs", OUT_TIMEOUT, "timed out after 5 s"),
	  FX_ON("w0", "hostA"), .duration = 5.0 },
	{ FX_REPORT("io/later", OUT_SKIP, "no network\nhere"),
	  FX_ON("w0", "hostA"), .duration = 0 },
	{ FX_REPORT("net/flaky", OUT_XFAIL, "bug #12"), FX_ON("w0", "hostA"),
	  .duration = 0.003 },
	/* distmgr words an xpass's message itself. */
	{ FX_REPORT("net/stale", OUT_XPASS, "passed, but is marked todo: bug 7"),
	  FX_ON("w0", "hostA"), .duration = 0.004 },
	{ FX_REPORT("net/retry", OUT_FLAKY, NULL), .worker = "w0",
	  .host = "hostA", .attempts = 2, .duration = 0.25 },
	{ FX_REPORT("net/never", OUT_NOT_RUN, "stopped after 1 failure (-x)"),
	  FX_ON("w0", "hostA"), .duration = 0 },
};
#define FX_NREPORTS	(sizeof fx_reports / sizeof fx_reports[0])

static FX_UNUSED void
fx_result(struct reporter *r, const struct test_report *t)
{
	const struct reporter_ops *o = r->ops;

	if (o->test_start != NULL)
		o->test_start(r, t);
	if (o->test_output != NULL && t->out_len > 0)
		o->test_output(r, t, "stdout", t->out, t->out_len);
	if (o->test_output != NULL && t->err_len > 0)
		o->test_output(r, t, "stderr", t->err, t->err_len);
	if (o->test_result != NULL)
		o->test_result(r, t);
	if (o->test_stop != NULL)
		o->test_stop(r, t);
}

static FX_UNUSED void
fx_start(struct reporter *r, const struct run_info *ri)
{
	const struct reporter_ops *o = r->ops;

	if (o->run_start != NULL)
		o->run_start(r, ri);
	for (size_t i = 0; i < 2 && o->worker_up != NULL; i++)
		o->worker_up(r, &fx_workers[i]);
}

static FX_UNUSED struct run_summary
fx_summary(const struct test_report *reports, size_t n)
{
	struct run_summary s;

	memset(&s, 0, sizeof s);
	for (size_t i = 0; i < n; i++)
		s.counts.n[reports[i].outcome]++;
	s.elapsed = 5.5;
	s.exit_code = 1;
	return s;
}

static FX_UNUSED void
fx_end(struct reporter *r, const struct run_summary *s)
{
	const struct reporter_ops *o = r->ops;

	if (o->notice != NULL)
		o->notice(r, 1, "worker w1 restarted");
	if (o->worker_down != NULL)
		o->worker_down(r, &fx_workers[1], "exited");
	if (o->run_end != NULL)
		o->run_end(r, s);
}

/* The whole fixture run: start, every report, end. */
static FX_UNUSED void
fx_run_all(struct reporter *r)
{
	struct run_summary s = fx_summary(fx_reports, FX_NREPORTS);

	fx_start(r, &fx_run_info);
	for (size_t i = 0; i < FX_NREPORTS; i++)
		fx_result(r, &fx_reports[i]);
	fx_end(r, &s);
}

static FX_UNUSED char *
fx_slurp(const char *path, size_t *lenp)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		fclose(fp);
		return NULL;
	}
	buf[n] = '\0';
	fclose(fp);
	if (lenp != NULL)
		*lenp = (size_t)n;
	return buf;
}

/* The top of the source tree: tests run from it, or DM_TOP says. */
static FX_UNUSED const char *
fx_top(void)
{
	const char *t = getenv("DM_TOP");

	return t != NULL ? t : ".";
}

#endif

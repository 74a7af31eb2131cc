/*
 * test_terminal.c - the terminal reporter, fed synthetic events through
 * its vtable, checked for the exact text a user sees: plain (a file),
 * with colour forced, -v, -q, --durations, and on a real pseudo-terminal
 * for the live status line, NO_COLOR and TERM=dumb.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sys/ioctl.h>

#include <event2/event.h>

#include "testutil.h"
#include "manager.h"

/* ---- feeding events ---------------------------------------------------- */

struct cap {
	FILE		*fp;
	char		*buf;
	size_t		 len;
	struct reporter	*r;
};

static void
cap_open(struct cap *c, int verbosity, enum color_mode color, int durations)
{
	struct terminal_options o = { verbosity, color, durations, 1 };

	memset(c, 0, sizeof *c);
	c->fp = open_memstream(&c->buf, &c->len);
	ck_assert_ptr_nonnull(c->fp);
	c->r = reporter_terminal_new(NULL, c->fp, &o);
}

/* Frees the reporter and returns everything it wrote (caller frees). */
static char *
cap_close(struct cap *c)
{
	c->r->ops->free(c->r);
	fclose(c->fp);
	return c->buf;
}

static void
run_start(struct reporter *r, size_t ntests, int nworkers)
{
	static char *suites[] = { "build/examples/demo.so" };
	struct run_info ri = {
		.run_id = "r1", .ntests = ntests, .nworkers = nworkers,
		.dist = "load", .boxed = 1, .seed = -1, .suites = suites,
		.nsuites = 1,
	};

	r->ops->run_start(r, &ri);
}

static struct test_report
report(const char *id, const char *worker, enum outcome o, double d)
{
	struct test_report tr;

	memset(&tr, 0, sizeof tr);
	tr.id = id;
	tr.suite_path = "build/examples/demo.so";
	tr.file = "examples/demo.c";
	tr.line = 10;
	tr.worker = worker;
	tr.host = "localhost";
	tr.outcome = o;
	tr.duration = d;
	tr.exit_status = -1;
	tr.attempts = 1;
	tr.out = "";
	tr.err = "";
	return tr;
}

static void
result(struct reporter *r, struct test_report *tr)
{
	r->ops->test_result(r, tr);
}

static void
run_end(struct reporter *r, const struct counts *c, double elapsed, int rc,
    const char *stop)
{
	struct run_summary s;

	memset(&s, 0, sizeof s);
	s.counts = *c;
	s.elapsed = elapsed;
	s.exit_code = rc;
	s.stop_reason = stop;
	r->ops->run_end(r, &s);
}

/* The demo-like run every format test uses: one of each outcome. */
static void
feed_mixed(struct reporter *r, struct counts *c)
{
	struct worker_info wi = { .id = "w3", .spec = "popen",
	    .hostname = "host1", .os = "linux", .arch = "x86_64", .cpus = 2,
	    .pid = 1234, .version = "0.1.0" };
	struct test_report tr;

	memset(c, 0, sizeof *c);
	run_start(r, 10, 4);
	r->ops->worker_up(r, &wi);
	tr = report("str/trim", "w0", OUT_PASS, 0.0002);
	result(r, &tr);
	tr = report("str/upper", "w1", OUT_FAIL, 0.0031);
	tr.message = "assertion failed: strcmp(s, \"ABC\") == 0";
	tr.fail_file = "examples/demo.c";
	tr.fail_line = 42;
	tr.out = "upper: input \"abc\"\nupper: got \"ABc\"\n";
	tr.out_len = strlen(tr.out);
	result(r, &tr);
	tr = report("parse/deep", "w2", OUT_CRASH, 0.012);
	tr.signal = 11;
	tr.signal_name = "SIGSEGV";
	tr.err = "parsing [[[[\n";
	tr.err_len = strlen(tr.err);
	result(r, &tr);
	tr = report("net/fetch", "w3", OUT_TIMEOUT, 1.0);
	tr.message = "timed out after 1.00 s";
	result(r, &tr);
	tr = report("locale/fr", "w0", OUT_SKIP, 0.00001);
	tr.message = "fr_FR.UTF-8 is not installed";
	result(r, &tr);
	tr = report("str/fold", "w1", OUT_XFAIL, 0.0005);
	tr.message = "unicode case folding (issue 17)";
	result(r, &tr);
	tr = report("str/old_todo", "w2", OUT_XPASS, 0.0004);
	result(r, &tr);
	tr = report("net/retry", "w3", OUT_FLAKY, 0.25);
	tr.attempts = 2;
	result(r, &tr);
	r->ops->notice(r, LOG_LVL_WARN, "worker w2 died (SIGKILL); "
	    "restarted it (1 of 16)");
	r->ops->notice(r, LOG_LVL_DEBUG, "not shown below -vv");
	tr = report("str/split", "w0", OUT_PASS, 65.4);
	result(r, &tr);
	tr = report("str/never", NULL, OUT_NOT_RUN, -1);
	result(r, &tr);
	c->n[OUT_PASS] = 2;
	c->n[OUT_FAIL] = 1;
	c->n[OUT_CRASH] = 1;
	c->n[OUT_TIMEOUT] = 1;
	c->n[OUT_SKIP] = 1;
	c->n[OUT_XFAIL] = 1;
	c->n[OUT_XPASS] = 1;
	c->n[OUT_FLAKY] = 1;
	c->n[OUT_NOT_RUN] = 1;
}

static const char *mixed_failures =
    "\n"
    "============================= FAILURES (4) =============================\n"
    "FAIL str/upper (w1, 3.1 ms)\n"
    "  examples/demo.c:42: assertion failed: strcmp(s, \"ABC\") == 0\n"
    "  ---- stdout ----\n"
    "  upper: input \"abc\"\n"
    "  upper: got \"ABc\"\n"
    "\n"
    "CRASH parse/deep (w2, 12.0 ms)\n"
    "  examples/demo.c:10: killed by SIGSEGV (signal 11)\n"
    "  ---- stderr ----\n"
    "  parsing [[[[\n"
    "\n"
    "TIMEOUT net/fetch (w3, 1.00 s)\n"
    "  examples/demo.c:10: timed out after 1.00 s\n"
    "\n"
    "XPASS str/old_todo (w2, 0.4 ms)\n"
    "  examples/demo.c:10: passed, but it is marked todo\n"
    "\n"
    "============== FLAKY (1): failed, then passed on a rerun ===============\n"
    "FLAKY net/retry (w3, passed on attempt 2)\n";

START_TEST(test_plain_default)
{
	struct cap c;
	struct counts n;
	char *out, want[4096];

	cap_open(&c, 0, COLOR_NEVER, 0);
	feed_mixed(c.r, &n);
	run_end(c.r, &n, 66.5, EXIT_TESTS_FAILED, NULL);
	out = cap_close(&c);
	snprintf(want, sizeof want, "%s%s%s",
	    "distmgr " DM_VERSION ": 10 tests from demo.so, 4 workers, "
	    "--dist load\n"
	    "[w1] FAIL str/upper (3.1 ms) - assertion failed: "
	    "strcmp(s, \"ABC\") == 0\n"
	    "[w2] CRASH parse/deep (12.0 ms) - killed by SIGSEGV\n"
	    "[w3] TIMEOUT net/fetch (1.00 s) - timed out after 1.00 s\n"
	    "[w2] XPASS str/old_todo (0.4 ms) - passed, but it is marked "
	    "todo\n"
	    "[w3] FLAKY net/retry (250.0 ms, 2 attempts)\n"
	    "warning: worker w2 died (SIGKILL); restarted it (1 of 16)\n",
	    mixed_failures,
	    "\n"
	    "distmgr: 2 passed, 1 failed, 1 crashed, 1 timed out, 1 skipped, "
	    "1 xfailed, 1 xpassed, 1 flaky, 1 not run in 66.50s\n");
	ck_assert_str_eq(out, want);
	ck_assert(strchr(out, '\033') == NULL);
	free(out);
}
END_TEST

START_TEST(test_verbose)
{
	struct cap c;
	struct counts n;
	char *out, want[4096];

	cap_open(&c, 1, COLOR_NEVER, 0);
	feed_mixed(c.r, &n);
	run_end(c.r, &n, 66.5, EXIT_TESTS_FAILED, NULL);
	out = cap_close(&c);
	snprintf(want, sizeof want, "%s%s%s",
	    "distmgr " DM_VERSION ": 10 tests from demo.so, 4 workers, "
	    "--dist load\n"
	    "[w3] popen -- linux x86_64, 2 cpus, pid 1234, distworker 0.1.0\n"
	    "[w0] PASS str/trim (0.2 ms)\n"
	    "[w1] FAIL str/upper (3.1 ms) - assertion failed: "
	    "strcmp(s, \"ABC\") == 0\n"
	    "[w2] CRASH parse/deep (12.0 ms) - killed by SIGSEGV\n"
	    "[w3] TIMEOUT net/fetch (1.00 s) - timed out after 1.00 s\n"
	    "[w0] SKIP locale/fr (10 \xc2\xb5s) - fr_FR.UTF-8 is not "
	    "installed\n"
	    "[w1] XFAIL str/fold (0.5 ms) - unicode case folding (issue 17)\n"
	    "[w2] XPASS str/old_todo (0.4 ms) - passed, but it is marked "
	    "todo\n"
	    "[w3] FLAKY net/retry (250.0 ms, 2 attempts)\n"
	    "warning: worker w2 died (SIGKILL); restarted it (1 of 16)\n"
	    "[w0] PASS str/split (1m05s)\n"
	    "[-] NOTRUN str/never\n",
	    mixed_failures,
	    "\n"
	    "distmgr: 2 passed, 1 failed, 1 crashed, 1 timed out, 1 skipped, "
	    "1 xfailed, 1 xpassed, 1 flaky, 1 not run in 66.50s\n");
	ck_assert_str_eq(out, want);
	free(out);
}
END_TEST

START_TEST(test_quiet)
{
	struct cap c;
	struct counts n;
	char *out;

	cap_open(&c, -1, COLOR_NEVER, 0);
	feed_mixed(c.r, &n);
	c.r->ops->notice(c.r, LOG_LVL_INFO, "not shown with -q");
	c.r->ops->notice(c.r, LOG_LVL_ERROR, "shown even with -q");
	run_end(c.r, &n, 0.5, EXIT_TESTS_FAILED, "stopped after 4 failures "
	    "(--maxfail 4)");
	out = cap_close(&c);
	ck_assert_str_eq(out,
	    "warning: worker w2 died (SIGKILL); restarted it (1 of 16)\n"
	    "error: shown even with -q\n"
	    "FAIL str/upper - examples/demo.c:42: assertion failed: "
	    "strcmp(s, \"ABC\") == 0\n"
	    "CRASH parse/deep - examples/demo.c:10: killed by SIGSEGV "
	    "(signal 11)\n"
	    "TIMEOUT net/fetch - examples/demo.c:10: timed out after 1.00 s\n"
	    "XPASS str/old_todo - examples/demo.c:10: passed, but it is "
	    "marked todo\n"
	    "stopped after 4 failures (--maxfail 4)\n"
	    "distmgr: 2 passed, 1 failed, 1 crashed, 1 timed out, 1 skipped, "
	    "1 xfailed, 1 xpassed, 1 flaky, 1 not run in 0.50s\n");
	free(out);
}
END_TEST

START_TEST(test_all_passed_and_empty)
{
	struct cap c;
	struct counts n = { { 0 } };
	struct test_report tr;
	char *out;

	cap_open(&c, -1, COLOR_NEVER, 0);
	run_start(c.r, 1, 1);
	tr = report("a/b", "w0", OUT_PASS, 0.001);
	result(c.r, &tr);
	n.n[OUT_PASS] = 1;
	run_end(c.r, &n, 0.01, EXIT_ALL_PASSED, NULL);
	out = cap_close(&c);
	ck_assert_str_eq(out, "distmgr: 1 passed in 0.01s\n");
	free(out);

	cap_open(&c, 0, COLOR_NEVER, 0);
	run_start(c.r, 0, 2);
	memset(&n, 0, sizeof n);
	run_end(c.r, &n, 0, EXIT_NO_TESTS, NULL);
	out = cap_close(&c);
	ck_assert_str_eq(out, "distmgr " DM_VERSION ": 0 tests from demo.so, "
	    "2 workers, --dist load\n\ndistmgr: no tests ran in 0.00s\n");
	free(out);
}
END_TEST

START_TEST(test_header)
{
	static char *two[] = { "build/a/unit.so", "net.so" };
	static char *five[] = { "1.so", "2.so", "3.so", "4.so", "5.so" };
	struct run_info ri = { .ntests = 1, .nworkers = 1, .dist = "each",
	    .boxed = 0, .seed = 1234, .suites = two, .nsuites = 2 };
	struct cap c;
	char *out;

	cap_open(&c, 0, COLOR_NEVER, 0);
	c.r->ops->run_start(c.r, &ri);
	ri.suites = five;
	ri.nsuites = 5;
	ri.boxed = 1;
	ri.seed = -1;
	ri.ntests = 3;
	c.r->ops->run_start(c.r, &ri);
	ri.nsuites = 0;
	c.r->ops->run_start(c.r, &ri);
	out = cap_close(&c);
	ck_assert_str_eq(out,
	    "distmgr " DM_VERSION ": 1 test from unit.so, net.so, 1 worker, "
	    "--dist each, in-process (--no-fork), --random-order=1234\n"
	    "distmgr " DM_VERSION ": 3 tests from 5 suites, 1 worker, "
	    "--dist each\n"
	    "distmgr " DM_VERSION ": 3 tests, 1 worker, --dist each\n");
	free(out);
}
END_TEST

START_TEST(test_color_forced)
{
	struct cap c;
	struct counts n = { { 0 } };
	struct test_report tr;
	char *out;

	cap_open(&c, 1, COLOR_ALWAYS, 0);
	run_start(c.r, 2, 1);
	tr = report("a/ok", "w0", OUT_PASS, 0.001);
	result(c.r, &tr);
	tr = report("a/bad", "w0", OUT_FAIL, 0.001);
	tr.message = "no";
	result(c.r, &tr);
	n.n[OUT_PASS] = 1;
	n.n[OUT_FAIL] = 1;
	run_end(c.r, &n, 1, EXIT_TESTS_FAILED, NULL);
	out = cap_close(&c);
	ck_assert_str_eq(out,
	    "\033[1mdistmgr " DM_VERSION ": 2 tests from demo.so, 1 worker, "
	    "--dist load\033[0m\n"
	    "[w0] \033[32mPASS\033[0m a/ok (1.0 ms)\n"
	    "[w0] \033[1;31mFAIL\033[0m a/bad (1.0 ms) - no\n"
	    "\n"
	    "\033[1m============================= FAILURES (1) =============================\033[0m\n"
	    "\033[1;31mFAIL\033[0m \033[1ma/bad\033[0m (w0, 1.0 ms)\n"
	    "  examples/demo.c:10: no\n"
	    "\n"
	    "\033[1;31mdistmgr: 1 passed, 1 failed in 1.00s\033[0m\n");
	free(out);

	/* All passed: green; nothing failed but some not run: yellow. */
	cap_open(&c, -1, COLOR_ALWAYS, 0);
	memset(&n, 0, sizeof n);
	n.n[OUT_PASS] = 3;
	run_end(c.r, &n, 1, EXIT_ALL_PASSED, NULL);
	out = cap_close(&c);
	ck_assert_str_eq(out,
	    "\033[1;32mdistmgr: 3 passed in 1.00s\033[0m\n");
	free(out);
	cap_open(&c, -1, COLOR_ALWAYS, 0);
	n.n[OUT_NOT_RUN] = 2;
	run_end(c.r, &n, 1, EXIT_INTERRUPTED, "interrupted (Ctrl-C)");
	out = cap_close(&c);
	ck_assert_str_eq(out,
	    "\033[33minterrupted (Ctrl-C)\033[0m\n"
	    "\033[1;33mdistmgr: 3 passed, 2 not run in 1.00s\033[0m\n");
	free(out);
}
END_TEST

START_TEST(test_durations)
{
	struct cap c;
	struct counts n = { { 0 } };
	struct test_report tr;
	char *out, id[32];
	unsigned i, v;

	cap_open(&c, -1, COLOR_NEVER, 4);
	run_start(c.r, 100000, 2);
	/* A permutation of 0..99999 ms: the top four are known. */
	for (i = 0; i < 100000; i++) {
		v = (i * 7919u) % 100000u;
		snprintf(id, sizeof id, "s/t%u", v);
		tr = report(id, i % 2 ? "w1" : "w0", OUT_PASS, v / 1000.0);
		result(c.r, &tr);
	}
	tr = report("s/never_ran", "w0", OUT_NOT_RUN, -1);
	result(c.r, &tr);
	n.n[OUT_PASS] = 100000;
	n.n[OUT_NOT_RUN] = 1;
	run_end(c.r, &n, 2, EXIT_INTERRUPTED, NULL);
	out = cap_close(&c);
	ck_assert_str_eq(out,
	    "\n"
	    "=========================== slowest 4 tests ============================\n"
	    "     1m40s  s/t99999 (w1)\n"
	    "     1m40s  s/t99998 (w0)\n"
	    "     1m40s  s/t99997 (w1)\n"
	    "     1m40s  s/t99996 (w0)\n"
	    "distmgr: 100000 passed, 1 not run in 2.00s\n");
	free(out);

	cap_open(&c, 0, COLOR_NEVER, 10);
	run_start(c.r, 3, 1);
	tr = report("s/a", "w0", OUT_PASS, 0.00002);
	result(c.r, &tr);
	tr = report("s/b", "w0", OUT_PASS, 0.5);
	result(c.r, &tr);
	tr = report("s/c", "w0", OUT_PASS, 12.25);
	result(c.r, &tr);
	n.n[OUT_PASS] = 3;
	n.n[OUT_NOT_RUN] = 0;
	run_end(c.r, &n, 13, EXIT_ALL_PASSED, NULL);
	out = cap_close(&c);
	ck_assert_str_eq(out,
	    "distmgr " DM_VERSION ": 3 tests from demo.so, 1 worker, "
	    "--dist load\n"
	    "\n"
	    "=========================== slowest 3 tests ============================\n"
	    "   12.25 s  s/c (w0)\n"
	    "  500.0 ms  s/b (w0)\n"
	    "     20 \xc2\xb5s  s/a (w0)\n"
	    "\n"
	    "distmgr: 3 passed in 13.00s\n");
	free(out);
}
END_TEST

START_TEST(test_output_bounded)
{
	struct cap c;
	struct counts n = { { 0 } };
	struct test_report tr;
	char *out, *big, *p;
	int i;

	big = xmalloc(100 * 32);
	p = big;
	for (i = 1; i <= 100; i++)
		p += sprintf(p, "line %d\n", i);
	cap_open(&c, 0, COLOR_NEVER, 0);
	run_start(c.r, 1, 1);
	tr = report("s/noisy", "w0", OUT_FAIL, 0.001);
	tr.out = big;
	tr.out_len = strlen(big);
	/* A test's control characters never reach the terminal raw. */
	tr.err = "\033[2Jcleared?\r\nbell\a\n";
	tr.err_len = strlen(tr.err);
	tr.message = "first line\nsecond line";
	result(c.r, &tr);
	n.n[OUT_FAIL] = 1;
	run_end(c.r, &n, 1, EXIT_TESTS_FAILED, NULL);
	out = cap_close(&c);
	free(big);
	p = strstr(out, "FAIL s/noisy (w0, 1.0 ms)\n");
	ck_assert_ptr_nonnull(p);
	ck_assert(strncmp(p, "FAIL s/noisy (w0, 1.0 ms)\n"
	    "  examples/demo.c:10: first line\n"
	    "  second line\n"
	    "  ---- stdout (60 earlier lines not shown) ----\n"
	    "  line 61\n", 120) == 0);
	ck_assert_msg(strstr(out, "  line 100\n"
	    "  ---- stderr ----\n"
	    "  ?[2Jcleared?\n"
	    "  bell?\n"
	    "\n"
	    "distmgr: 1 failed in 1.00s\n") != NULL, "%s", out);
	ck_assert(strchr(out, '\033') == NULL);
	ck_assert(strchr(out, '\r') == NULL);
	free(out);
}
END_TEST

START_TEST(test_worker_message_wins)
{
	struct cap c;
	struct counts n = { { 0 } };
	struct test_report tr;
	char *out;

	/* The worker words crashes itself; no second, made-up line. */
	cap_open(&c, 0, COLOR_NEVER, 0);
	run_start(c.r, 2, 1);
	tr = report("ini/get", "w0", OUT_CRASH, 0.003);
	tr.signal = 11;
	tr.signal_name = "SIGSEGV";
	tr.message = "died of SIGSEGV (Segmentation fault)";
	tr.out = "looking up server.user\n";
	tr.out_len = strlen(tr.out);
	result(c.r, &tr);
	tr = report("ini/exit", "w0", OUT_CRASH, 0.003);
	tr.exit_status = 3;
	result(c.r, &tr);
	n.n[OUT_CRASH] = 2;
	run_end(c.r, &n, 1, EXIT_TESTS_FAILED, NULL);
	out = cap_close(&c);
	ck_assert_str_eq(strstr(out, "CRASH ini/get (w0"),
	    "CRASH ini/get (w0, 3.0 ms)\n"
	    "  examples/demo.c:10: died of SIGSEGV (Segmentation fault)\n"
	    "  ---- stdout ----\n"
	    "  looking up server.user\n"
	    "\n"
	    "CRASH ini/exit (w0, 3.0 ms)\n"
	    "  examples/demo.c:10: exited with status 3\n"
	    "\n"
	    "distmgr: 2 crashed in 1.00s\n");
	free(out);
}
END_TEST

START_TEST(test_very_verbose)
{
	struct cap c;
	struct counts n = { { 0 } };
	struct test_report tr;
	char *out;

	cap_open(&c, 2, COLOR_NEVER, 0);
	tr = report("s/talks", "w0", OUT_PASS, 0.001);
	tr.out = "hello\n";
	tr.out_len = 6;
	tr.err = "warn: x";
	tr.err_len = 7;
	result(c.r, &tr);
	c.r->ops->notice(c.r, LOG_LVL_DEBUG, "batch of 3 to w0");
	n.n[OUT_PASS] = 1;
	run_end(c.r, &n, 1, EXIT_ALL_PASSED, NULL);
	out = cap_close(&c);
	ck_assert_str_eq(out,
	    "[w0] PASS s/talks (1.0 ms)\n"
	    "  ---- stdout ----\n"
	    "  hello\n"
	    "  ---- stderr ----\n"
	    "  warn: x\n"
	    "debug: batch of 3 to w0\n"
	    "\n"
	    "distmgr: 1 passed in 1.00s\n");
	free(out);
}
END_TEST

START_TEST(test_many_failures_bounded)
{
	struct cap c;
	struct counts n = { { 0 } };
	struct test_report tr;
	char *out, id[32];
	int i;

	cap_open(&c, -1, COLOR_NEVER, 0);
	run_start(c.r, 10005, 2);
	for (i = 0; i < 10005; i++) {
		snprintf(id, sizeof id, "s/f%d", i);
		tr = report(id, "w0", OUT_FAIL, 0.001);
		tr.message = "no";
		result(c.r, &tr);
	}
	n.n[OUT_FAIL] = 10005;
	run_end(c.r, &n, 1, EXIT_TESTS_FAILED, NULL);
	out = cap_close(&c);
	ck_assert(strstr(out, "FAIL s/f9999 - examples/demo.c:10: no\n"
	    "... and 5 more failures, not kept (the first 10000 are above)\n"
	    "distmgr: 10005 failed in 1.00s\n") != NULL);
	ck_assert(strstr(out, "s/f10000") == NULL);
	free(out);
}
END_TEST

START_TEST(test_second_run_starts_clean)
{
	struct cap c;
	struct counts n = { { 0 } };
	struct test_report tr;
	char *out;

	/* --looponfail runs again with the same reporter. */
	cap_open(&c, -1, COLOR_NEVER, 2);
	run_start(c.r, 1, 1);
	tr = report("s/broken", "w0", OUT_FAIL, 3);
	tr.message = "first run";
	result(c.r, &tr);
	n.n[OUT_FAIL] = 1;
	run_end(c.r, &n, 1, EXIT_TESTS_FAILED, NULL);
	run_start(c.r, 1, 1);
	tr = report("s/broken", "w0", OUT_PASS, 0.5);
	result(c.r, &tr);
	memset(&n, 0, sizeof n);
	n.n[OUT_PASS] = 1;
	run_end(c.r, &n, 1, EXIT_ALL_PASSED, NULL);
	out = cap_close(&c);
	ck_assert_str_eq(out,
	    "FAIL s/broken - examples/demo.c:10: first run\n"
	    "\n"
	    "============================ slowest 1 test ============================\n"
	    "    3.00 s  s/broken (w0)\n"
	    "distmgr: 1 failed in 1.00s\n"
	    "\n"
	    "============================ slowest 1 test ============================\n"
	    "  500.0 ms  s/broken (w0)\n"
	    "distmgr: 1 passed in 1.00s\n");
	free(out);
}
END_TEST

/* stdout a pipe nobody reads for now: with -v, 20,000 result lines
 * (far over the pipe's 64 KiB) go in without one call blocking; when
 * the reader comes back it gets every line, in order, and the end. */
START_TEST(test_stalled_pipe_never_blocks)
{
	struct event_base *base = event_base_new();
	struct terminal_options o = { 1, COLOR_NEVER, 0, 1 };
	struct counts n = { { 0 } };
	struct test_report tr;
	struct reporter *r;
	char id[32], want[64], *got = NULL, chunk[65536], *p;
	size_t len = 0;
	ssize_t k;
	double t0;
	int fds[2], i;
	FILE *fp;

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(fd_set_nonblock(fds[0], 1), 0);
	fp = fdopen(fds[1], "w");
	ck_assert_ptr_nonnull(fp);
	r = reporter_terminal_new(base, fp, &o);
	run_start(r, 20000, 1);
	t0 = clock_mono();
	for (i = 0; i < 20000; i++) {
		snprintf(id, sizeof id, "s/t%05d", i);
		tr = report(id, "w0", OUT_PASS, 0.001);
		result(r, &tr);
	}
	n.n[OUT_PASS] = 20000;
	run_end(r, &n, 1, EXIT_ALL_PASSED, NULL);
	ck_assert_msg(clock_mono() - t0 < 2.0, "the run waited for stdout");
	/* The reader is back: the loop drains what was kept. */
	while (len < 2 || memcmp(got + len - 2, "s\n", 2) != 0) {
		ck_assert_msg(clock_mono() - t0 < 20, "only %zu bytes", len);
		tu_loop_for(base, 0.01);
		while ((k = read(fds[0], chunk, sizeof chunk)) > 0) {
			got = xreallocarray(got, len + (size_t)k + 1, 1);
			memcpy(got + len, chunk, (size_t)k);
			len += (size_t)k;
		}
		got = xreallocarray(got, len + 1, 1);
		got[len] = '\0';
	}
	for (i = 0, p = got; i < 20000; i++) {
		snprintf(want, sizeof want, "[w0] PASS s/t%05d (1.0 ms)\n", i);
		p = strstr(p, want);
		ck_assert_msg(p != NULL, "line %d is missing", i);
	}
	ck_assert_ptr_nonnull(strstr(got, "distmgr: 20000 passed in 1.00s\n"));
	free(got);
	r->ops->free(r);
	fclose(fp);
	close(fds[0]);
	event_base_free(base);
}
END_TEST

/* ---- on a real terminal ------------------------------------------------ */

struct pty {
	int	 master;
	FILE	*fp;		/* the slave side, as stdout would be */
};

static void
pty_open(struct pty *p, int cols)
{
	struct termios tio;
	struct winsize ws = { .ws_row = 24, .ws_col = (unsigned short)cols };
	int slave;

	p->master = posix_openpt(O_RDWR | O_NOCTTY);
	ck_assert_int_ge(p->master, 0);
	ck_assert_int_eq(grantpt(p->master), 0);
	ck_assert_int_eq(unlockpt(p->master), 0);
	slave = open(ptsname(p->master), O_RDWR | O_NOCTTY);
	ck_assert_int_ge(slave, 0);
	/* Raw, so that what the reporter writes is what we read. */
	ck_assert_int_eq(tcgetattr(slave, &tio), 0);
	cfmakeraw(&tio);
	ck_assert_int_eq(tcsetattr(slave, TCSANOW, &tio), 0);
	ck_assert_int_eq(ioctl(p->master, TIOCSWINSZ, &ws), 0);
	fd_set_nonblock(p->master, 1);
	p->fp = fdopen(slave, "w");
	ck_assert_ptr_nonnull(p->fp);
}

/* Everything written so far (caller frees). */
static char *
pty_read(struct pty *p)
{
	char *buf = NULL, chunk[4096];
	size_t len = 0;
	ssize_t n;
	struct pollfd pfd = { p->master, POLLIN, 0 };

	fflush(p->fp);
	for (;;) {
		n = read(p->master, chunk, sizeof chunk);
		if (n > 0) {
			buf = xreallocarray(buf, len + (size_t)n + 1, 1);
			memcpy(buf + len, chunk, (size_t)n);
			len += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EAGAIN && poll(&pfd, 1, 100) > 0)
			continue;
		break;
	}
	if (buf == NULL)
		buf = xstrdup("");
	else
		buf[len] = '\0';
	return buf;
}

static void
pty_close(struct pty *p)
{
	fclose(p->fp);
	close(p->master);
}

static struct reporter *
tty_reporter(struct event_base *base, struct pty *p, int verbosity,
    enum color_mode color)
{
	struct terminal_options o = { verbosity, color, 0, 1 };

	return reporter_terminal_new(base, p->fp, &o);
}

START_TEST(test_tty_status_line)
{
	struct event_base *base = event_base_new();
	struct pty p;
	struct reporter *r;
	struct test_report tr;
	struct counts n = { { 0 } };
	const char *running[] = { "str/slow_one", NULL, "parse/big" };
	const char *workers[] = { "w0", "w1", "w2" };
	struct progress pr = { .done = 1, .total = 4, .eta = 3.0,
	    .nworkers = 3, .running = running, .workers = workers };
	char *out, *end;

	setenv("TERM", "xterm", 1);
	unsetenv("NO_COLOR");
	pty_open(&p, 200);
	r = tty_reporter(base, &p, 0, COLOR_NEVER);
	run_start(r, 4, 3);
	tr = report("str/trim", "w1", OUT_PASS, 0.001);
	result(r, &tr);
	r->ops->progress(r, &pr);
	tu_loop_for(base, 0.35);
	out = pty_read(&p);
	ck_assert_msg(strstr(out, "\r\033[K[ 25%] 1/4 | 1 passed, 0 failed | ")
	    != NULL, "%s", out);
	ck_assert_msg(strstr(out, ", ETA 3.0s | w0 str/slow_one, w2 parse/big")
	    != NULL, "%s", out);
	free(out);

	/* A failure goes above the status line, which comes back (on
	 * the next tick at the latest). */
	tr = report("parse/big", "w2", OUT_FAIL, 0.5);
	tr.message = "bad";
	result(r, &tr);
	tu_loop_for(base, 0.15);
	out = pty_read(&p);
	ck_assert_msg(strncmp(out, "\r\033[K[w2] FAIL parse/big (500.0 ms) - "
	    "bad\n\r\033[K[ 50%] 2/4 | 1 passed, 1 failed | ", 60) == 0,
	    "%s", out);
	free(out);

	n.n[OUT_PASS] = 1;
	n.n[OUT_FAIL] = 1;
	n.n[OUT_NOT_RUN] = 2;
	run_end(r, &n, 1, EXIT_INTERRUPTED, NULL);
	out = pty_read(&p);
	/* The status line is cleared for good before the summary. */
	ck_assert_msg(strncmp(out, "\r\033[K\n====", 9) == 0, "%s", out);
	end = strstr(out, "distmgr: 1 passed, 1 failed, 2 not run in 1.00s\n");
	ck_assert_ptr_nonnull(end);
	free(out);
	/* And the timer no longer runs. */
	tu_loop_for(base, 0.25);
	out = pty_read(&p);
	ck_assert_str_eq(out, "");
	free(out);
	r->ops->free(r);
	pty_close(&p);
	event_base_free(base);
}
END_TEST

START_TEST(test_tty_running_that_fits)
{
	struct event_base *base = event_base_new();
	struct pty p;
	struct reporter *r;
	const char *running[] = { "str/slow_one", NULL, "parse/big" };
	const char *workers[] = { "w0", "w1", "w2" };
	struct progress pr = { .done = 0, .total = 4, .eta = 3.0,
	    .nworkers = 3, .running = running, .workers = workers };
	char *out;

	setenv("TERM", "xterm", 1);
	pty_open(&p, 80);
	r = tty_reporter(base, &p, 0, COLOR_NEVER);
	run_start(r, 4, 3);
	r->ops->progress(r, &pr);
	tu_loop_for(base, 0.25);
	out = pty_read(&p);
	/* Whole entries only, then how many busy workers did not fit. */
	ck_assert_msg(strstr(out, ", ETA 3.0s | w0 str/slow_one (+1)\r") !=
	    NULL, "%s", out);
	free(out);
	r->ops->free(r);
	pty_close(&p);
	event_base_free(base);
}
END_TEST

/* The last status line drawn in out (cut in place), or NULL. */
static char *
last_status(char *out)
{
	char *p, *last = NULL, *end;

	for (p = out; (p = strstr(p, "\r\033[K[")) != NULL; p++)
		last = p + 4;
	if (last != NULL && (end = strpbrk(last, "\r\n")) != NULL)
		*end = '\0';
	return last;
}

START_TEST(test_tty_counts_as_closing)
{
	struct event_base *base = event_base_new();
	struct pty p;
	struct reporter *r;
	struct test_report tr;
	char *out, *line;

	setenv("TERM", "xterm", 1);
	unsetenv("NO_COLOR");
	pty_open(&p, 200);
	r = tty_reporter(base, &p, 0, COLOR_NEVER);
	run_start(r, 6, 2);
	tr = report("a/pass", "w0", OUT_PASS, 0.001);
	result(r, &tr);
	tr = report("a/todo", "w1", OUT_XFAIL, 0.001);
	result(r, &tr);
	tr = report("a/flaky", "w0", OUT_FLAKY, 0.001);
	tr.attempts = 2;
	result(r, &tr);
	tr = report("a/segv", "w1", OUT_CRASH, 0.001);
	tr.signal = 11;
	tr.signal_name = "SIGSEGV";
	result(r, &tr);
	tu_loop_for(base, 0.25);
	out = pty_read(&p);
	line = last_status(out);
	ck_assert_ptr_nonnull(line);
	/* An xfail and a flaky test are not "passed" here either: the
	 * words and counts are the closing line's. */
	ck_assert_msg(strncmp(line, "[ 66%] 4/6 | 1 passed, 0 failed, "
	    "1 crashed, 1 xfailed, 1 flaky | ", 60) == 0, "[%s]", line);
	free(out);
	r->ops->free(r);
	pty_close(&p);
	event_base_free(base);
}
END_TEST

START_TEST(test_tty_not_running_after_result)
{
	struct event_base *base = event_base_new();
	struct pty p;
	struct reporter *r;
	struct test_report tr;
	const char *running[] = { "s/first", "s/second" };
	const char *workers[] = { "w0", "w1" };
	struct progress pr = { .done = 0, .total = 2, .eta = 3.0,
	    .nworkers = 2, .running = running, .workers = workers };
	char *out, *line;

	setenv("TERM", "xterm", 1);
	unsetenv("NO_COLOR");
	pty_open(&p, 200);
	r = tty_reporter(base, &p, 0, COLOR_NEVER);
	run_start(r, 2, 2);
	r->ops->progress(r, &pr);
	tu_loop_for(base, 0.25);
	out = pty_read(&p);
	line = last_status(out);
	ck_assert_ptr_nonnull(line);
	ck_assert_msg(strstr(line, " | w0 s/first, w1 s/second") != NULL,
	    "[%s]", line);
	free(out);

	/* w0's test is done: it runs nothing until progress says so. */
	tr = report("s/first", "w0", OUT_PASS, 0.001);
	result(r, &tr);
	tu_loop_for(base, 0.25);
	out = pty_read(&p);
	line = last_status(out);
	ck_assert_ptr_nonnull(line);
	ck_assert_msg(strstr(line, " | w1 s/second") != NULL &&
	    strstr(line, "s/first") == NULL, "[%s]", line);
	free(out);

	/* After the last result nothing runs, and nothing is left to wait
	 * for, until run_end comes. */
	tr = report("s/second", "w1", OUT_PASS, 0.001);
	result(r, &tr);
	tu_loop_for(base, 0.25);
	out = pty_read(&p);
	line = last_status(out);
	ck_assert_ptr_nonnull(line);
	ck_assert_msg(strncmp(line, "[100%] 2/2 | 2 passed, 0 failed | ",
	    34) == 0, "[%s]", line);
	ck_assert_msg(strstr(line, "running") == NULL &&
	    strstr(line, " | w") == NULL && strstr(line, "ETA") == NULL,
	    "[%s]", line);
	free(out);
	r->ops->free(r);
	pty_close(&p);
	event_base_free(base);
}
END_TEST

START_TEST(test_tty_narrow_and_colour)
{
	struct event_base *base = event_base_new();
	struct pty p;
	struct reporter *r;
	char *out, *line, *nl;

	setenv("TERM", "xterm", 1);
	unsetenv("NO_COLOR");
	pty_open(&p, 30);
	r = tty_reporter(base, &p, 0, COLOR_AUTO);
	run_start(r, 1000, 3);
	tu_loop_for(base, 0.25);
	out = pty_read(&p);
	/* Colour on a terminal by default; the status line fits. */
	ck_assert_msg(strstr(out, "\033[1mdistmgr ") != NULL, "%s", out);
	line = strstr(out, "\r\033[K[  0%]");
	ck_assert_ptr_nonnull(line);
	line += 4;
	nl = strstr(line, "\r");
	if (nl != NULL)
		*nl = '\0';
	ck_assert_msg(strlen(line) <= 29, "[%s]", line);
	ck_assert_str_eq(line, "[  0%] 0/1000 | 0 passed, 0 f");
	free(out);
	r->ops->free(r);
	pty_close(&p);
	event_base_free(base);
}
END_TEST

START_TEST(test_tty_no_color_env)
{
	struct pty p;
	struct reporter *r;
	struct counts n = { { 0 } };
	char *out;

	setenv("TERM", "xterm", 1);
	setenv("NO_COLOR", "", 1);	/* any value, even empty */
	pty_open(&p, 80);
	r = tty_reporter(NULL, &p, -1, COLOR_AUTO);
	n.n[OUT_PASS] = 1;
	run_end(r, &n, 1, EXIT_ALL_PASSED, NULL);
	out = pty_read(&p);
	ck_assert_str_eq(out, "distmgr: 1 passed in 1.00s\n");
	free(out);
	r->ops->free(r);
	/* --color=always wins over NO_COLOR. */
	r = tty_reporter(NULL, &p, -1, COLOR_ALWAYS);
	run_end(r, &n, 1, EXIT_ALL_PASSED, NULL);
	out = pty_read(&p);
	ck_assert_str_eq(out, "\033[1;32mdistmgr: 1 passed in 1.00s\033[0m\n");
	free(out);
	r->ops->free(r);
	pty_close(&p);
}
END_TEST

START_TEST(test_tty_dumb)
{
	struct event_base *base = event_base_new();
	struct pty p;
	struct reporter *r;
	char *out;

	setenv("TERM", "dumb", 1);
	unsetenv("NO_COLOR");
	pty_open(&p, 80);
	r = tty_reporter(base, &p, 0, COLOR_AUTO);
	run_start(r, 10, 1);
	tu_loop_for(base, 0.25);
	out = pty_read(&p);
	ck_assert_str_eq(out, "distmgr " DM_VERSION ": 10 tests from "
	    "demo.so, 1 worker, --dist load\n");
	free(out);
	r->ops->free(r);
	pty_close(&p);
	event_base_free(base);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("terminal");
	TCase *tc = tcase_create("text");
	TCase *tt = tcase_create("tty");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_plain_default);
	tcase_add_test(tc, test_verbose);
	tcase_add_test(tc, test_quiet);
	tcase_add_test(tc, test_all_passed_and_empty);
	tcase_add_test(tc, test_header);
	tcase_add_test(tc, test_color_forced);
	tcase_add_test(tc, test_durations);
	tcase_add_test(tc, test_output_bounded);
	tcase_add_test(tc, test_worker_message_wins);
	tcase_add_test(tc, test_very_verbose);
	tcase_add_test(tc, test_many_failures_bounded);
	tcase_add_test(tc, test_second_run_starts_clean);
	tcase_add_test(tc, test_stalled_pipe_never_blocks);
	tcase_add_test(tt, test_tty_status_line);
	tcase_add_test(tt, test_tty_running_that_fits);
	tcase_add_test(tt, test_tty_counts_as_closing);
	tcase_add_test(tt, test_tty_not_running_after_result);
	tcase_add_test(tt, test_tty_narrow_and_colour);
	tcase_add_test(tt, test_tty_no_color_env);
	tcase_add_test(tt, test_tty_dumb);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tt);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

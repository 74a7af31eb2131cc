/*
 * test_options.c - the command line: defaults, every value option, and
 * the sentence a user sees for each mistake.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "manager.h"

static struct options o;
static char why[512];

/* Splits line at spaces into an argv; both live until the next call,
 * as the options point into them. */
static enum opt_result
parse(const char *line)
{
	static char buf[1024], *argv[64];
	static FILE *null;
	char *p, *save = NULL;
	int argc = 0;

	if (null == NULL)
		null = fopen("/dev/null", "w");
	snprintf(buf, sizeof buf, "distmgr %s", line);
	for (p = strtok_r(buf, " ", &save); p != NULL && argc < 63;
	    p = strtok_r(NULL, " ", &save))
		argv[argc++] = p;
	argv[argc] = NULL;
	return opt_parse(&o, argc, argv, null, why, sizeof why);
}

START_TEST(test_defaults)
{
	ck_assert_int_eq(parse("s.so"), OPT_RUN);
	ck_assert_int_eq(o.jobs, OPT_JOBS_AUTO);
	ck_assert_int_eq(o.boxed, 1);
	ck_assert_int_eq(o.dist, DIST_LOAD);
	ck_assert_int_eq(o.ff, 1);
	ck_assert_int_eq(o.seed, -1);
	ck_assert(o.timeout == OPT_DEFAULT_TIMEOUT);
	ck_assert(o.timeout_multiplier == 1.0);
	ck_assert_int_eq(o.max_worker_restart, -1);
	ck_assert_uint_eq(o.maxfail, 0);
	ck_assert_uint_eq(o.nsuites, 1);
	ck_assert_str_eq(o.suites[0], "s.so");
	ck_assert_int_ge(opt_nworkers(&o), 1);
}
END_TEST

START_TEST(test_values)
{
	ck_assert_int_eq(parse("-j 3 --no-fork --dist each -k a -x "
	    "--reruns 2 --timeout 1.5 --timeout-multiplier 2 "
	    "--max-worker-restart 7 --no-ff --lf --random-order=42 "
	    "--cache-dir /tmp/c --heartbeat 0.5 -vv --durations 5 "
	    "--color never --shard 1/2 --tags fast a.so b.so"), OPT_RUN);
	ck_assert_int_eq(o.jobs, 3);
	ck_assert_int_eq(o.boxed, 0);
	ck_assert_int_eq(o.dist, DIST_EACH);
	ck_assert_str_eq(o.kexpr, "a");
	ck_assert_uint_eq(o.maxfail, 1);
	ck_assert_int_eq(o.reruns, 2);
	ck_assert(o.timeout == 1.5);
	ck_assert(o.timeout_multiplier == 2);
	ck_assert_int_eq(o.max_worker_restart, 7);
	ck_assert_int_eq(o.ff, 0);
	ck_assert_int_eq(o.lf, 1);
	ck_assert_int_eq(o.random_order, 1);
	ck_assert_int_eq(o.seed, 42);
	ck_assert_str_eq(o.cache_dir, "/tmp/c");
	ck_assert(o.heartbeat == 0.5);
	ck_assert_int_eq(o.verbosity, 2);
	ck_assert_int_eq(o.durations, 5);
	ck_assert_int_eq(o.color, COLOR_NEVER);
	ck_assert_str_eq(o.shard, "1/2");
	ck_assert_str_eq(o.tags, "fast");
	ck_assert_uint_eq(o.nsuites, 2);
	ck_assert_int_eq(opt_nworkers(&o), 3);
	/* Options may follow the suites. */
	ck_assert_int_eq(parse("s.so -j 0 --maxfail 3"), OPT_RUN);
	ck_assert_int_eq(o.jobs, 0);
	ck_assert_int_eq(opt_nworkers(&o), 1);
	ck_assert_uint_eq(o.maxfail, 3);
	ck_assert_int_eq(parse("--dist no -j 8 s.so"), OPT_RUN);
	ck_assert_int_eq(opt_nworkers(&o), 1);
	ck_assert_int_eq(parse("--random-order -q s.so"), OPT_RUN);
	ck_assert_int_eq(o.seed, -1);
	ck_assert_int_eq(o.verbosity, -1);
}
END_TEST

START_TEST(test_mistakes)
{
	ck_assert_int_eq(parse(""), OPT_BAD);
	ck_assert_str_eq(why, "no suite given (distmgr [options] suite.so ...)");
	ck_assert_int_eq(parse("-j lots s.so"), OPT_BAD);
	ck_assert_str_eq(why, "-j wants a number of workers from 0 to 4096 or "
	    "'auto', not 'lots'");
	ck_assert_int_eq(parse("--dist some s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--dist wants one of load, each or no, not "
	    "'some'");
	ck_assert_int_eq(parse("--color=pink s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--color wants one of auto, always or never, "
	    "not 'pink'");
	ck_assert_int_eq(parse("--maxfail 0 s.so"), OPT_BAD);
	ck_assert_int_eq(parse("--timeout -1 s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--timeout wants a number of at least 0, not "
	    "'-1'");
	ck_assert_int_eq(parse("--timeout-multiplier 0 s.so"), OPT_BAD);
	ck_assert_int_eq(parse("--bogus s.so"), OPT_BAD);
	ck_assert_str_eq(why, "unknown option '--bogus'");
	ck_assert_int_eq(parse("-Z s.so"), OPT_BAD);
	ck_assert_str_eq(why, "unknown option '-Z'");
	ck_assert_int_eq(parse("s.so --reruns"), OPT_BAD);
	ck_assert_str_eq(why, "option '--reruns' needs a value");
	ck_assert_int_eq(parse("--list --junit-xml x.xml s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--list runs nothing to report: drop "
	    "--junit-xml, --tap and --web");
	ck_assert_int_eq(parse("--tap - --json - s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--tap - and --json cannot both write to stdout");
	/* --json takes a file: the old optional form must not take the
	 * suite, nor the next option, for it. */
	ck_assert_int_eq(parse("--list --json s.so"), OPT_BAD);
	ck_assert_str_eq(why, "no suite given: --json, --tap and --junit-xml "
	    "take a file name before the suites (- for stdout: --json - "
	    "suite.so)");
	ck_assert_int_eq(parse("--json -k x s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--json wants a file name or - for stdout, not "
	    "'-k' (write ./-k for a file of that name)");
	ck_assert_int_eq(parse("--junit-xml - s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--junit-xml wants a file name, not '-' (write "
	    "./- for a file of that name)");
	ck_assert_int_eq(parse("s.so --json"), OPT_BAD);
	ck_assert_str_eq(why, "option '--json' needs a value");
	ck_assert_int_eq(parse("--list --json - s.so"), OPT_RUN);
	ck_assert_int_eq(o.list_json, 1);
	ck_assert_str_eq(o.json, "-");
	ck_assert_int_eq(parse("--list --json l.json s.so"), OPT_RUN);
	ck_assert_int_eq(o.list_json, 1);
	ck_assert_str_eq(o.json, "l.json");
	ck_assert_int_eq(parse("--json out.json s.so"), OPT_RUN);
	ck_assert_int_eq(o.list_json, 0);
	ck_assert_str_eq(o.json, "out.json");
	ck_assert_uint_eq(o.nsuites, 1);
	ck_assert_str_eq(o.suites[0], "s.so");
	ck_assert_int_eq(parse("--json=r.jsonl --tap t.tap --junit-xml j.xml "
	    "--web 0 s.so"), OPT_RUN);
	ck_assert_str_eq(o.json, "r.jsonl");
	ck_assert_str_eq(o.tap, "t.tap");
	ck_assert_str_eq(o.junit_xml, "j.xml");
	ck_assert_str_eq(o.web, "0");
	ck_assert_int_eq(parse("--dist each -j 0 s.so"), OPT_BAD);
	/* -f, --watch, --report-durations. */
	ck_assert_int_eq(parse("-f --watch src --watch data s.so"), OPT_RUN);
	ck_assert_int_eq(o.looponfail, 1);
	ck_assert_uint_eq(o.nwatch, 2);
	ck_assert_str_eq(o.watch[0], "src");
	ck_assert_str_eq(o.watch[1], "data");
	ck_assert_int_eq(parse("--looponfail s.so"), OPT_RUN);
	ck_assert_int_eq(o.looponfail, 1);
	ck_assert_uint_eq(o.nwatch, 0);
	ck_assert_int_eq(parse("--watch src s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--watch is for --looponfail (-f): add -f, or "
	    "drop --watch");
	ck_assert_int_eq(parse("-f --list s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--looponfail runs tests; --list only lists "
	    "them: use one or the other");
	ck_assert_int_eq(parse("--report-durations s.so"), OPT_RUN);
	ck_assert_int_eq(o.report_durations, 1);
	ck_assert_int_eq(o.looponfail, 0);
	/* Mistakes in the expressions are usage errors before any run. */
	ck_assert_int_eq(parse("-k (a s.so"), OPT_BAD);
	ck_assert_int_eq(strncmp(why, "-k: ", 4), 0);
	ck_assert_int_eq(parse("--tags not s.so"), OPT_BAD);
	ck_assert_int_eq(strncmp(why, "--tags: ", 8), 0);
	ck_assert_int_eq(parse("--shard 3/2 s.so"), OPT_BAD);
	ck_assert_str_eq(why, "--shard wants I/N with 1 <= I <= N, not '3/2'");
	ck_assert_int_eq(parse("--help"), OPT_EXIT);
	ck_assert_int_eq(parse("--version"), OPT_EXIT);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("options");
	TCase *tc = tcase_create("options");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_mistakes);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

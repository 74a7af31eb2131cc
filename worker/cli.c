/*
 * cli.c - distworker's debugging modes, without a manager:
 *
 *   distworker --list suite.so              the list, as "id<TAB>file:line"
 *   distworker --run suite.so [ID...]       run, print results, exit 0/1
 *   gdb --args distworker --no-fork --run suite.so math/adds
 *
 * The same suite loader and runners as --stdio, printing instead of
 * speaking the protocol. With --no-fork tests run in this process and
 * write straight to the terminal, so that a debugger sees them as they
 * are; it must never install a handler that would keep Ctrl-C from
 * stopping a test that hangs there.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common.h"
#include "worker.h"

struct cli {
	const struct cli_options	*opt;
	struct runner_config		 cfg;
	struct suite			*suite;
	struct runner			*runner;
	struct event_base		*base;
	size_t				*tests;
	size_t				 ntests;
	size_t				 next;
	size_t				 counts[OUTCOME_COUNT];
	int				 pumping;
	int				 interrupted;
	int				 done;
};

static const char *const cli_labels[OUTCOME_COUNT] = {
	[OUTCOME_PASS] = "PASS",
	[OUTCOME_FAIL] = "FAIL",
	[OUTCOME_ERROR] = "ERROR",
	[OUTCOME_SKIP] = "SKIP",
	[OUTCOME_XFAIL] = "XFAIL",
	[OUTCOME_XPASS] = "XPASS",
	[OUTCOME_CRASH] = "CRASH",
	[OUTCOME_TIMEOUT] = "TIMEOUT",
	[OUTCOME_INTERRUPTED] = "INTR",
};

/* How the summary names each count, in the order it gives them. */
static const struct {
	enum outcome	 outcome;
	const char	*what;
} cli_summary_names[] = {
	{ OUTCOME_PASS, "passed" },
	{ OUTCOME_FAIL, "failed" },
	{ OUTCOME_ERROR, "errors" },
	{ OUTCOME_CRASH, "crashed" },
	{ OUTCOME_TIMEOUT, "timed out" },
	{ OUTCOME_SKIP, "skipped" },
	{ OUTCOME_XFAIL, "xfailed" },
	{ OUTCOME_XPASS, "xpassed" },
	{ OUTCOME_INTERRUPTED, "interrupted" },
};

static int
cli_load(const char *path, struct suite **out)
{
	struct suite_error err;

	if ((*out = suite_load(path, host_get(), &err)) != NULL)
		return EXIT_OK;
	fprintf(stderr, "%s: %s\n", log_progname(), err.text);
	if (strcmp(err.code, SUITE_E_NO_SUCH_FILE) == 0)
		return EXIT_USAGE;
	if (strcmp(err.code, SUITE_E_NO_TESTS) == 0)
		return EXIT_NO_TESTS;
	return EXIT_INTERNAL;
}

int
cli_list(const struct cli_options *opt)
{
	struct suite *suite;
	const struct suite_test *t;
	char id[2 * SUITE_STRING_MAX + 2];
	size_t i;
	int rc;

	if ((rc = cli_load(opt->suite, &suite)) != EXIT_OK)
		return rc;
	for (i = 0; i < suite_count(suite); i++) {
		t = suite_get(suite, i);
		printf("%s\t%s:%d\n", suite_test_id(t, id, sizeof id),
		    t->def->file, t->def->line);
	}
	if (opt->verbose)
		fprintf(stderr, "%zu tests, list hash %s\n", suite_count(suite),
		    suite_hash(suite));
	suite_free(suite);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_INTERNAL;
}

/* ---- choosing tests ------------------------------------------------------ */

/* Adds the tests one argument names: an id, or a suite name for all of
 * that suite's tests. */
static int
cli_select_one(struct cli *c, const char *arg)
{
	size_t i, before = c->ntests;
	long index;

	if (strchr(arg, '/') != NULL) {
		if ((index = suite_find(c->suite, arg)) >= 0)
			c->tests[c->ntests++] = (size_t)index;
	} else
		for (i = 0; i < suite_count(c->suite); i++)
			if (strcmp(suite_get(c->suite, i)->def->suite, arg) == 0)
				c->tests[c->ntests++] = i;
	if (c->ntests > before)
		return 0;
	fprintf(stderr, "%s: no test '%s' in %s\n", log_progname(), arg,
	    c->opt->suite);
	return -1;
}

static int
cli_select(struct cli *c)
{
	size_t i, n = suite_count(c->suite);
	int k;

	if (c->opt->nids == 0) {
		c->tests = xcalloc(n, sizeof *c->tests);
		for (i = 0; i < n; i++)
			c->tests[i] = i;
		c->ntests = n;
		return 0;
	}
	/* Each argument adds at most the whole suite. */
	c->tests = xreallocarray(NULL, n, (size_t)c->opt->nids *
	    sizeof *c->tests);
	for (k = 0; k < c->opt->nids; k++)
		if (cli_select_one(c, c->opt->ids[k]) == -1)
			return -1;
	return 0;
}

/* ---- printing ------------------------------------------------------------ */

static void
cli_print_stream(const char *name, const char *data, size_t len)
{
	size_t i, start = 0;

	if (len == 0)
		return;
	printf("      %s:\n", name);
	for (i = 0; i <= len; i++) {
		if (i < len && data[i] != '\n')
			continue;
		if (i > start || i < len)
			printf("      | %.*s\n", (int)(i - start), data + start);
		start = i + 1;
	}
}

static void
cli_print(const struct suite_test *t, const struct test_result *res)
{
	char id[2 * SUITE_STRING_MAX + 2], name[32];

	printf("%-7s %s (%.3f s)\n", cli_labels[res->outcome],
	    suite_test_id(t, id, sizeof id), res->duration);
	if (res->file[0] != '\0')
		printf("      %s:%d: %s\n", res->file, res->line, res->message);
	else if (res->message[0] != '\0')
		printf("      %s\n", res->message);
	if (res->signal != 0 && res->outcome == OUTCOME_PASS)
		printf("      died of %s, as expected\n",
		    signal_name(res->signal, name, sizeof name));
	cli_print_stream("stdout", res->out, res->out_len);
	cli_print_stream("stderr", res->err, res->err_len);
	fflush(stdout);
}

static void
cli_summary(const struct cli *c, double seconds)
{
	size_t i;
	const char *sep = "";

	printf("%s: ", log_progname());
	for (i = 0; i < DM_NELEM(cli_summary_names); i++) {
		if (c->counts[cli_summary_names[i].outcome] == 0 && i > 1)
			continue;
		printf("%s%zu %s", sep, c->counts[cli_summary_names[i].outcome],
		    cli_summary_names[i].what);
		sep = ", ";
	}
	printf(" in %.2f s\n", seconds);
}

/* ---- running ------------------------------------------------------------- */

static void cli_pump(struct cli *);

static void
cli_done(void *ctx, const struct suite *suite, size_t index,
    const struct test_result *res)
{
	struct cli *c = ctx;

	c->counts[res->outcome]++;
	cli_print(suite_get(suite, index), res);
	cli_pump(c);
}

static void
cli_pump(struct cli *c)
{
	char id[2 * SUITE_STRING_MAX + 2];
	size_t index;

	if (c->pumping)
		return;
	c->pumping = 1;
	while (!runner_busy(c->runner) && c->next < c->ntests &&
	    !c->interrupted) {
		index = c->tests[c->next++];
		if (!c->cfg.boxed) {
			/* Before a test that may take this process down. */
			printf("RUN     %s\n", suite_test_id(suite_get(c->suite,
			    index), id, sizeof id));
			fflush(stdout);
		}
		runner_start(c->runner, c->suite, index);
	}
	c->done = !runner_busy(c->runner) &&
	    (c->next == c->ntests || c->interrupted);
	c->pumping = 0;
}

static void
cli_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct cli *c = arg;

	(void)sig;
	(void)what;
	c->interrupted = 1;
	runner_stop(c->runner, STOP_EXIT);
	cli_pump(c);
}

static int
cli_exit_status(const struct cli *c)
{
	size_t i;

	if (c->interrupted)
		return EXIT_INTERRUPTED;
	for (i = 0; i < OUTCOME_COUNT; i++)
		if (c->counts[i] > 0 && outcome_is_failure((enum outcome)i))
			return EXIT_TESTS_FAILED;
	return EXIT_OK;
}

static void
cli_environment(void)
{
	char why[256];

	if (workdir_create(why, sizeof why) == -1)
		fatalx("%s", why);
	env_become_subreaper();
	env_set_worker(getenv("DISTMGR_WORKER") != NULL ?
	    getenv("DISTMGR_WORKER") : "w0",
	    getenv("DISTMGR_WORKER_COUNT") != NULL ?
	    atoll(getenv("DISTMGR_WORKER_COUNT")) : 1,
	    getenv("DISTMGR_RUN_ID") != NULL ? getenv("DISTMGR_RUN_ID") :
	    "local");
}

static void
cli_loop(struct cli *c)
{
	struct event *sigs[2] = { NULL, NULL };
	int i;

	/* In-process a signal would wait for the test to end: leave Ctrl-C
	 * its default. */
	for (i = 0; i < 2 && c->cfg.boxed; i++) {
		sigs[i] = evsignal_new(c->base, i == 0 ? SIGINT : SIGTERM,
		    cli_signal_cb, c);
		event_add(sigs[i], NULL);
	}
	cli_pump(c);
	while (!c->done)
		event_base_loop(c->base, EVLOOP_ONCE);
	for (i = 0; i < 2; i++)
		if (sigs[i] != NULL)
			event_free(sigs[i]);
}

int
cli_run(const struct cli_options *opt)
{
	struct cli c;
	double started;
	int rc;

	memset(&c, 0, sizeof c);
	c.opt = opt;
	c.cfg.boxed = opt->boxed;
	c.cfg.capture = opt->boxed;
	c.cfg.timeout = opt->timeout;
	c.cfg.multiplier = 1;
	c.cfg.output_cap = opt->output_cap;
	if ((rc = cli_load(opt->suite, &c.suite)) != EXIT_OK)
		return rc;
	if (cli_select(&c) == -1) {
		free(c.tests);
		suite_free(c.suite);
		return EXIT_USAGE;
	}
	cli_environment();
	if ((c.base = event_base_new()) == NULL)
		fatalx("cannot create an event base");
	c.runner = runner_new(c.base, &c.cfg, cli_done, &c);
	started = clock_mono();
	cli_loop(&c);
	cli_summary(&c, clock_mono() - started);
	runner_free(c.runner);
	event_base_free(c.base);
	free(c.tests);
	suite_free(c.suite);
	env_kill_adopted();
	workdir_remove();
	return cli_exit_status(&c);
}

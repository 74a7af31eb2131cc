/*
 * runner.c - runs one test at a time and says what became of it: picks
 * the boxed or the in-process runner for each test, skips what is marked
 * skip without running it, and turns how a test ended (its own report,
 * or how its process died) into an outcome, a message, a file and line.
 *
 * Judging must never trust the test: a boxed child may have died at any
 * point or scribbled over its report, so the wait status decides what
 * happened and the report only explains it.
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "worker.h"
#include "box.h"

struct runner {
	struct runner_config	 cfg;
	/* Also in-process, for tests that die: one of the two. */
	struct boxer		*boxer;	/* through the box helper */
	struct boxed		*boxed;	/* forked from the worker */
	struct inproc		*inproc;	/* NULL when boxed */
	runner_done_fn		 done;
	void			*ctx;
	int			 handle;	/* of the suite, for lastword */
	struct runner_result	 res;
	/* In-process, the serial group's run now set up, and how. */
	uint32_t		 grun;
	int			 ginit_failed;
	struct test_end		 gend;
};

static const char *const test_outcome_names[OUTCOME_COUNT] = {
	[OUTCOME_PASS] = "pass",
	[OUTCOME_FAIL] = "fail",
	[OUTCOME_ERROR] = "error",
	[OUTCOME_SKIP] = "skip",
	[OUTCOME_XFAIL] = "xfail",
	[OUTCOME_XPASS] = "xpass",
	[OUTCOME_CRASH] = "crash",
	[OUTCOME_TIMEOUT] = "timeout",
	[OUTCOME_INTERRUPTED] = "interrupted",
};

const char *
test_outcome_name(enum test_outcome o)
{
	return (unsigned)o < OUTCOME_COUNT ? test_outcome_names[o] : "error";
}

int
test_outcome_failed(enum test_outcome o)
{
	return o == OUTCOME_FAIL || o == OUTCOME_ERROR || o == OUTCOME_CRASH ||
	    o == OUTCOME_TIMEOUT || o == OUTCOME_XPASS ||
	    o == OUTCOME_INTERRUPTED;
}

const char *
runner_signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev != NULL)
		snprintf(buf, len, "SIG%s", abbrev);
	else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(buf, len, "signal %d", sig);
	return buf;
}

/* ---- judging ------------------------------------------------------------ */

static void
result_clear(struct runner_result *res)
{
	res->outcome = OUTCOME_PASS;
	res->message[0] = '\0';
	res->file[0] = '\0';
	res->line = 0;
	res->signal = 0;
	res->exit_status = -1;
	res->out = res->err = NULL;
	res->out_len = res->err_len = 0;
}

static void DM_PRINTF(2, 3)
result_say(struct runner_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->message, sizeof res->message, fmt, ap);
	va_end(ap);
}

/* "; expected SIGABRT" or "; expected exit status 3", or "". */
static const char *
expectation(const struct suite_test *t, char *buf, size_t len)
{
	char name[32];

	if (t->def->opt.signal != 0)
		snprintf(buf, len, "; expected %s",
		    runner_signal_name(t->def->opt.signal, name, sizeof name));
	else if (t->def->opt.exit_code != DM_NO_EXIT_CODE)
		snprintf(buf, len, "; expected exit status %d",
		    t->def->opt.exit_code);
	else
		buf[0] = '\0';
	return buf;
}

static const char *
phase_note(int phase, char *buf, size_t len)
{
	if (phase == PHASE_INIT || phase == PHASE_FINI)
		snprintf(buf, len, " in %s", host_phase_name(phase));
	else
		buf[0] = '\0';
	return buf;
}

static void
judge_returned(const struct suite_test *t, struct runner_result *res)
{
	char name[32];

	if (t->def->opt.signal != 0) {
		res->outcome = OUTCOME_FAIL;
		result_say(res, "expected to die of %s, but the test returned",
		    runner_signal_name(t->def->opt.signal, name, sizeof name));
	} else if (t->def->opt.exit_code != DM_NO_EXIT_CODE) {
		res->outcome = OUTCOME_FAIL;
		result_say(res, "expected to exit with status %d, but the test "
		    "returned", t->def->opt.exit_code);
	} else
		res->outcome = OUTCOME_PASS;
}

static void
judge_end(const struct suite_test *t, const struct test_end *end,
    struct runner_result *res)
{
	if (end->how == HOW_RETURNED) {
		judge_returned(t, res);
		return;
	}
	snprintf(res->file, sizeof res->file, "%s", end->file);
	res->line = end->line;
	if (end->how == HOW_SKIP) {
		res->outcome = OUTCOME_SKIP;
		result_say(res, "%s", end->message[0] != '\0' ? end->message :
		    "skipped");
	} else if (end->phase == PHASE_INIT || end->phase == PHASE_FINI) {
		res->outcome = OUTCOME_ERROR;
		result_say(res, "%s fixture failed: %s",
		    end->phase == PHASE_INIT ? "init" : "fini", end->message);
	} else {
		res->outcome = OUTCOME_FAIL;
		result_say(res, "%s", end->message[0] != '\0' ? end->message :
		    "failed");
	}
}

static void
judge_signal(const struct suite_test *t, int phase, int sig,
    struct runner_result *res)
{
	char name[32], where[40], want[64];

	res->signal = sig;
	if (sig == t->def->opt.signal && phase == PHASE_TEST) {
		res->outcome = OUTCOME_PASS;
		return;
	}
	res->outcome = OUTCOME_CRASH;
	result_say(res, "died of %s (%s)%s%s", runner_signal_name(sig, name,
	    sizeof name), sigdescr_np(sig) != NULL ? sigdescr_np(sig) :
	    "unknown signal", phase_note(phase, where, sizeof where),
	    expectation(t, want, sizeof want));
}

static void
judge_exit(const struct suite_test *t, int phase, int code,
    struct runner_result *res)
{
	char where[40], want[64];

	res->exit_status = code;
	if (code == t->def->opt.exit_code && phase == PHASE_TEST) {
		res->outcome = OUTCOME_PASS;
		return;
	}
	res->outcome = OUTCOME_CRASH;
	result_say(res, "exited with status %d%s%s", code,
	    phase_note(phase, where, sizeof where),
	    expectation(t, want, sizeof want));
}

/* A test marked todo is expected to fail: failing (or crashing, the
 * usual reason to mark one) is xfail, passing is news. */
static void
judge_todo(const struct suite_test *t, struct runner_result *res)
{
	if (res->outcome == OUTCOME_FAIL || res->outcome == OUTCOME_CRASH)
		res->outcome = OUTCOME_XFAIL;
	else if (res->outcome == OUTCOME_PASS) {
		res->outcome = OUTCOME_XPASS;
		result_say(res, "passed, but is marked todo: %s",
		    t->def->opt.todo);
	}
}

void
runner_judge(const struct suite_test *t, const struct test_end *end,
    int phase, int finished, int wait_status, struct runner_result *res)
{
	result_clear(res);
	if (finished)
		judge_end(t, end, res);
	else if (WIFSIGNALED(wait_status))
		judge_signal(t, phase, WTERMSIG(wait_status), res);
	else
		judge_exit(t, phase, WEXITSTATUS(wait_status), res);
	if (t->def->opt.todo != NULL)
		judge_todo(t, res);
}

void
runner_judge_stopped(enum runner_stop why, double timeout,
    struct runner_result *res)
{
	result_clear(res);
	switch (why) {
	case STOP_TIMEOUT:
		res->outcome = OUTCOME_TIMEOUT;
		result_say(res, "timed out after %g s; killed with its process "
		    "group", timeout);
		return;
	case STOP_CANCEL:
		result_say(res, "interrupted by cancel");
		break;
	case STOP_SHUTDOWN:
		result_say(res, "interrupted by shutdown");
		break;
	default:
		result_say(res, "interrupted: the worker is exiting");
		break;
	}
	res->outcome = OUTCOME_INTERRUPTED;
}

void
runner_judge_unstarted(const char *what, const char *why,
    struct runner_result *res)
{
	result_clear(res);
	res->outcome = OUTCOME_ERROR;
	if (what != NULL)
		result_say(res, "the test could not be started: %s: %s", what,
		    why);
	else
		result_say(res, "the test could not be started: %s", why);
}

void
runner_judge_lost(const struct suite_test *t, const char *why,
    struct runner_result *res)
{
	result_clear(res);
	res->outcome = OUTCOME_CRASH;
	result_say(res, "lost with its box helper: %s", why);
	if (t->def->opt.todo != NULL)
		judge_todo(t, res);
}

int
runner_read_page(struct box_page *page, struct test_end *end)
{
	int state = __atomic_load_n(&page->state, __ATOMIC_ACQUIRE);

	*end = page->end;
	end->file[sizeof end->file - 1] = '\0';
	end->message[sizeof end->message - 1] = '\0';
	if (end->how != HOW_FAIL && end->how != HOW_SKIP)
		end->how = end->how == HOW_RETURNED ? HOW_RETURNED : HOW_FAIL;
	if (end->phase < PHASE_INIT || end->phase > PHASE_FINI)
		end->phase = PHASE_TEST;
	return state == BOX_DONE;
}

/* ---- dispatch ----------------------------------------------------------- */

double
runner_timeout(const struct runner_config *cfg, const struct suite_test *t)
{
	double timeout = suite_test_timeout(t);

	if (timeout <= 0)
		timeout = cfg->timeout;
	return timeout > 0 ? timeout * cfg->multiplier : 0;
}

struct runner *
runner_new(struct event_base *base, const struct runner_config *cfg,
    runner_done_fn done, void *ctx)
{
	struct runner *r = xcalloc(1, sizeof *r);

	r->cfg = *cfg;
	if (r->cfg.multiplier <= 0)
		r->cfg.multiplier = 1;
	r->done = done;
	r->ctx = ctx;
	if ((r->boxer = boxer_new(base, &r->cfg, done, ctx)) == NULL)
		r->boxed = boxed_new(base, &r->cfg, done, ctx);
	if (!r->cfg.boxed)
		r->inproc = inproc_new(&r->cfg);
	return r;
}

void
runner_free(struct runner *r)
{
	if (r == NULL)
		return;
	boxer_free(r->boxer);
	if (r->boxed != NULL)
		boxed_free(r->boxed);
	inproc_free(r->inproc);
	free(r);
}

void
runner_close_in_child(struct runner *r, int fd)
{
	/* The box helper starts with nothing of the worker's but what it
	 * is given. */
	if (r->boxed != NULL)
		boxed_close_in_child(r->boxed, fd);
}

int
runner_busy(const struct runner *r)
{
	return r->boxer != NULL ? boxer_busy(r->boxer) : boxed_busy(r->boxed);
}

void
runner_name_suite(struct runner *r, int handle)
{
	r->handle = handle;
}

void
runner_discard_output(struct runner *r)
{
	/* Boxed, a test's output goes to pipes made for it alone. */
	if (r->inproc != NULL)
		inproc_discard_output(r->inproc);
}

void
runner_stop(struct runner *r, enum runner_stop why)
{
	if (r->boxer != NULL)
		boxer_stop(r->boxer, why);
	else
		boxed_stop(r->boxed, why);
}

/* In-process, a serial group's test: its run's init first, its fini
 * after the last. Asks made from either are the group's (test -1). */
static void
runner_inproc_group(struct runner *r, const struct suite_test *t,
    size_t index, const struct runner_group *g)
{
	const struct dm_group_def *def = g->group->def;

	if (g->run != r->grun) {
		r->grun = g->run;
		syncc_group_fixture(r->cfg.sync, 1);
		r->ginit_failed = inproc_fixture(r->inproc, PHASE_INIT,
		    def != NULL ? def->opt.init : NULL, &r->gend) !=
		    HOW_RETURNED;
		syncc_group_fixture(r->cfg.sync, 0);
	}
	if (r->ginit_failed) {
		/* Said to every test of the run; init runs once. */
		runner_judge(t, &r->gend, PHASE_INIT, 1, 0, &r->res);
		r->res.duration = 0;
		inproc_take_output(r->inproc, &r->res);
		return;
	}
	lastword_arm(r->handle, index, runner_timeout(&r->cfg, t),
	    t->def->opt.todo != NULL);
	inproc_run(r->inproc, t, g->last && def != NULL ? def->opt.fini :
	    NULL, &r->res);
	lastword_disarm();
	if (g->last)
		r->grun = 0;
}

int
runner_start(struct runner *r, const struct suite *s, size_t index)
{
	return runner_start_group(r, s, index, NULL);
}

int
runner_start_group(struct runner *r, const struct suite *s, size_t index,
    const struct runner_group *g)
{
	const struct suite_test *t = suite_get(s, index);

	if (t->def->opt.skip != NULL) {
		result_clear(&r->res);
		r->res.outcome = OUTCOME_SKIP;
		result_say(&r->res, "%s", t->def->opt.skip);
		r->res.duration = 0;
		r->done(r->ctx, s, index, &r->res);
		return 1;
	}
	if (g != NULL && g->group == NULL)
		g = NULL;
	/* A test meant to kill its process would take the worker along. */
	if (r->inproc == NULL || suite_test_expects_death(t))
		return r->boxer != NULL ? boxer_start(r->boxer, s, index,
		    r->inproc == NULL ? g : NULL) : boxed_start(r->boxed, s,
		    index, r->inproc == NULL ? g : NULL);
	if (g != NULL)
		runner_inproc_group(r, t, index, g);
	else {
		lastword_arm(r->handle, index, runner_timeout(&r->cfg, t),
		    t->def->opt.todo != NULL);
		inproc_run(r->inproc, t, NULL, &r->res);
		lastword_disarm();
	}
	r->done(r->ctx, s, index, &r->res);
	return 1;
}

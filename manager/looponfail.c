/*
 * looponfail.c - -f, --looponfail: run, wait for a change, run again, as
 * pytest-xdist's looponfail does. After a run with failures only the
 * tests that failed run, at each change, until they all pass; then the
 * whole selection runs at once. After a run without a failure the whole
 * selection runs again at the next change.
 *
 * Every run is run_once() on one event loop with one set of reporters,
 * which start each run afresh (the terminal's closing line, the JSON
 * events and the dashboard are per run; JUnit and a TAP file hold the
 * last run). Workers are started for each run and gone after it: a
 * rebuilt suite must be loaded anew, and a worker that has dlopen()ed
 * the old file under the same path cannot be trusted to forget it (its
 * constructors ran, its code may still be mapped).
 *
 * The watch (watch.c) starts before the first run, so a rebuild that
 * lands while tests run is not missed. It must leave on Ctrl-C, waiting
 * or running, with exit 2 and no worker left (run_once leaves none).
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "manager.h"

#define LF_NAMES_SHOWN	3	/* changed files named, then "and N more" */

struct lf {
	const struct options	*o;
	struct event_base	*base;
	struct distreporter	*dr;
	struct watch		*watch;
	struct event		*ev_int, *ev_term;
	char			**seen;		/* failed in the run going on */
	size_t			 nseen, seen_size;
	char			**only;		/* to run next; NULL: all */
	size_t			 nonly;
	int			 waiting;
	int			 told_gone;	/* that a suite is gone */
	int			 interrupted;
	char			*changed;	/* what the wait saw */
};

/* ---- the failures of each run, heard as a reporter ------------------- */

static void
lf_seen_clear(struct lf *lf)
{
	for (size_t i = 0; i < lf->nseen; i++)
		free(lf->seen[i]);
	lf->nseen = 0;
}

static void
lf_rep_run_start(struct reporter *r, const struct run_info *ri)
{
	(void)ri;
	lf_seen_clear(r->priv);
}

static void
lf_rep_test_result(struct reporter *r, const struct test_report *t)
{
	struct lf *lf = r->priv;

	if (!outcome_is_failure(t->outcome) || t->id == NULL)
		return;
	if (lf->nseen == lf->seen_size) {
		lf->seen_size = lf->seen_size * 2 + 16;
		lf->seen = xreallocarray(lf->seen, lf->seen_size,
		    sizeof *lf->seen);
	}
	lf->seen[lf->nseen++] = xstrdup(t->id);
}

static void
lf_rep_free(struct reporter *r)
{
	free(r);
}

static const struct reporter_ops lf_rep_ops = {
	.name = "looponfail",
	.run_start = lf_rep_run_start,
	.test_result = lf_rep_test_result,
	.free = lf_rep_free,
};

static int
lf_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The next run's tests: what failed in this one (sorted, each once, as
 * run_env wants them), or all when list is NULL. Takes the strings. */
static void
lf_set_only(struct lf *lf, char **list, size_t n)
{
	size_t i, k;

	for (i = 0; i < lf->nonly; i++)
		free(lf->only[i]);
	free(lf->only);
	lf->only = list;
	lf->nonly = n;
	if (list == NULL)
		return;
	qsort(list, n, sizeof *list, lf_cmp);
	/* --dist each reports a test once per worker. */
	for (i = k = 0; i < n; i++) {
		if (k > 0 && strcmp(list[k - 1], list[i]) == 0)
			free(list[i]);
		else
			list[k++] = list[i];
	}
	lf->nonly = k;
}

/* Takes this run's failures as the next run's tests. */
static void
lf_take_seen(struct lf *lf)
{
	char **list = lf->nseen > 0 ? lf->seen : NULL;
	size_t n = lf->nseen;

	if (list == NULL) {
		lf_set_only(lf, NULL, 0);
		return;
	}
	lf->seen = NULL;
	lf->nseen = lf->seen_size = 0;
	lf_set_only(lf, list, n);
}

/* ---- words --------------------------------------------------------- */

static const char *
lf_plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* "build/a.so" / "build/a.so or under src" / "3 suites or under src and
 * data": what a change to is awaited. Caller frees. */
static char *
lf_watched(const struct options *o)
{
	char *s, *t;
	size_t i;

	if (o->nsuites <= LF_NAMES_SHOWN) {
		s = xstrdup(o->suites[0]);
		for (i = 1; i < o->nsuites; i++) {
			xasprintf(&t, "%s%s%s", s, i + 1 == o->nsuites ?
			    " or " : ", ", o->suites[i]);
			free(s);
			s = t;
		}
	} else
		xasprintf(&s, "the %zu suites", o->nsuites);
	for (i = 0; i < o->nwatch && i < LF_NAMES_SHOWN; i++) {
		xasprintf(&t, "%s%s%s", s, i == 0 ? " or under " :
		    i + 1 == o->nwatch ? " and " : ", ", o->watch[i]);
		free(s);
		s = t;
	}
	if (o->nwatch > LF_NAMES_SHOWN) {
		xasprintf(&t, "%s and %zu more directories", s,
		    o->nwatch - LF_NAMES_SHOWN);
		free(s);
		s = t;
	}
	return s;
}

/* "the 2 tests that failed" / "all tests" */
static void
lf_next(const struct lf *lf, char *buf, size_t size)
{
	if (lf->only == NULL)
		snprintf(buf, size, "all tests");
	else
		snprintf(buf, size, "the %zu %s that failed", lf->nonly,
		    lf_plural(lf->nonly, "test", "tests"));
}

/* ---- waiting ------------------------------------------------------- */

static void
lf_on_change(void *arg, const char *const *changed, size_t n, size_t more)
{
	struct lf *lf = arg;
	char *s, *t;
	size_t i, shown = n < LF_NAMES_SHOWN ? n : LF_NAMES_SHOWN;

	/* A suite removed (make clean) is no reason to run: it will be
	 * back, and that is the change to run for. */
	for (i = 0; i < lf->o->nsuites; i++)
		if (access(lf->o->suites[i], F_OK) == -1) {
			if (!lf->told_gone)
				dr_notice(lf->dr, LOG_LVL_INFO, "looponfail: "
				    "%s is gone; waiting for it to come back",
				    lf->o->suites[i]);
			lf->told_gone = 1;
			watch_arm(lf->watch, lf_on_change, lf);
			return;
		}

	s = xstrdup(n > 0 ? changed[0] : "");
	for (i = 1; i < shown; i++) {
		xasprintf(&t, "%s, %s", s, changed[i]);
		free(s);
		s = t;
	}
	if (n - shown + more > 0) {
		xasprintf(&t, "%s%s%zu more", s, n > 0 ? " and " : "",
		    n - shown + more);
		free(s);
		s = t;
	}
	free(lf->changed);
	lf->changed = s;
	event_base_loopbreak(lf->base);
}

/* Ctrl-C or SIGTERM: waiting, it ends the wait; running, the run's own
 * handler stops the run, which then returns EXIT_INTERRUPTED. */
static void
lf_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct lf *lf = arg;

	(void)sig;
	(void)what;
	lf->interrupted = 1;
	if (lf->waiting)
		event_base_loopbreak(lf->base);
}

/* Until something changes (0) or Ctrl-C (-1). after says what the last
 * run left: "1 test failed". */
static int
lf_wait(struct lf *lf, const char *after)
{
	char next[96], *what = lf_watched(lf->o);

	lf_next(lf, next, sizeof next);
	dr_notice(lf->dr, LOG_LVL_INFO, "looponfail: %s; waiting for a "
	    "change to %s (Ctrl-C to quit)", after, what);
	free(what);
	lf->waiting = 1;
	lf->told_gone = 0;
	watch_arm(lf->watch, lf_on_change, lf);
	if (!lf->interrupted)
		event_base_dispatch(lf->base);
	watch_disarm(lf->watch);
	lf->waiting = 0;
	if (lf->interrupted) {
		dr_notice(lf->dr, LOG_LVL_INFO, "looponfail: interrupted");
		return -1;
	}
	dr_notice(lf->dr, LOG_LVL_INFO, "looponfail: %s changed; running %s",
	    lf->changed != NULL ? lf->changed : "something", next);
	return 0;
}

/* ---- the loop ------------------------------------------------------ */

static int
lf_setup(struct lf *lf, const struct options *o, const char *argv0)
{
	const char *report[3] = { o->junit_xml, o->tap, o->json };
	struct reporter *rep;
	char why[512], worker[PATH_MAX];
	size_t i;

	lf->o = o;
	if ((lf->base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	lf->dr = dr_new();
	if (run_reporters(lf->base, lf->dr, o) == -1)
		return EXIT_INTERNAL;
	rep = xcalloc(1, sizeof *rep);
	rep->ops = &lf_rep_ops;
	rep->priv = lf;
	dr_add(lf->dr, rep);
	/* No worker program is no reason to wait for a change. */
	if (tp_find_worker(o->worker, argv0, worker, sizeof worker, why,
	    sizeof why) == -1) {
		dr_notice(lf->dr, LOG_LVL_ERROR, "%s", why);
		return EXIT_INTERNAL;
	}
	if ((lf->watch = watch_new(lf->base, why, sizeof why)) == NULL) {
		dr_notice(lf->dr, LOG_LVL_ERROR, "--looponfail: %s", why);
		return EXIT_INTERNAL;
	}
	/* What distmgr writes itself is no change. */
	for (i = 0; i < DM_NELEM(report); i++)
		if (report[i] != NULL && strcmp(report[i], "-") != 0)
			watch_ignore(lf->watch, report[i]);
	if (!o->no_cache)
		watch_ignore(lf->watch, o->cache_dir != NULL ? o->cache_dir :
		    ".distmgr");
	for (i = 0; i < o->nsuites; i++)
		if (watch_file(lf->watch, o->suites[i], why, sizeof why) ==
		    -1) {
			dr_notice(lf->dr, LOG_LVL_ERROR, "--looponfail: %s",
			    why);
			return EXIT_INTERNAL;
		}
	for (i = 0; i < o->nwatch; i++)
		if (watch_dir(lf->watch, o->watch[i], why, sizeof why) == -1) {
			dr_notice(lf->dr, LOG_LVL_ERROR, "%s", why);
			return EXIT_USAGE;
		}
	/* Always ours, so that no Ctrl-C between two runs finds the
	 * default action. */
	lf->ev_int = evsignal_new(lf->base, SIGINT, lf_on_signal, lf);
	lf->ev_term = evsignal_new(lf->base, SIGTERM, lf_on_signal, lf);
	event_add(lf->ev_int, NULL);
	event_add(lf->ev_term, NULL);
	return 0;
}

static void
lf_teardown(struct lf *lf)
{
	if (lf->ev_int != NULL) {
		event_free(lf->ev_int);
		event_free(lf->ev_term);
	}
	watch_free(lf->watch);
	/* The reporters write their last words (and wait, bounded, for
	 * slow readers) here. */
	dr_free(lf->dr);
	lf_seen_clear(lf);
	free(lf->seen);
	lf_set_only(lf, NULL, 0);
	free(lf->changed);
	if (lf->base != NULL)
		event_base_free(lf->base);
}

/* What the run that just ended says about the next; 1 when the next run
 * is due at once, without waiting. after is set for the wait. */
static int
lf_after_run(struct lf *lf, int code, char *after, size_t size)
{
	size_t was = lf->nonly;

	if (lf->only != NULL && code == EXIT_NO_TESTS) {
		dr_notice(lf->dr, LOG_LVL_INFO, "looponfail: the tests that "
		    "failed are gone from the selection; running all tests");
		lf_set_only(lf, NULL, 0);
		return 1;
	}
	if (code != EXIT_ALL_PASSED && code != EXIT_TESTS_FAILED) {
		/* No verdict on the tests (a suite that would not load, none
		 * collected): the same tests, once something changes. */
		snprintf(after, size, "%s", code == EXIT_NO_TESTS ?
		    "no tests were collected" : "the run could not be done");
		return 0;
	}
	lf_take_seen(lf);
	if (lf->only == NULL && was > 0) {
		if (was == 1)
			dr_notice(lf->dr, LOG_LVL_INFO, "looponfail: the test "
			    "that failed passes now; running all tests");
		else
			dr_notice(lf->dr, LOG_LVL_INFO, "looponfail: the %zu "
			    "tests that failed pass now; running all tests",
			    was);
		return 1;
	}
	if (lf->only == NULL)
		snprintf(after, size, "all passed");
	else
		snprintf(after, size, "%zu %s failed", lf->nonly,
		    lf_plural(lf->nonly, "test", "tests"));
	return 0;
}

int
lf_main(const struct options *o, const char *argv0)
{
	struct lf lf;
	struct run_env env;
	char after[128];
	int code;

	memset(&lf, 0, sizeof lf);
	if ((code = lf_setup(&lf, o, argv0)) != 0) {
		lf_teardown(&lf);
		return code;
	}
	for (;;) {
		memset(&env, 0, sizeof env);
		env.base = lf.base;
		env.dr = lf.dr;
		env.only = (const char *const *)lf.only;
		env.nonly = lf.nonly;
		code = run_once(o, argv0, &env);
		if (code == EXIT_INTERRUPTED || code == EXIT_USAGE ||
		    lf.interrupted) {
			code = code == EXIT_USAGE ? code : EXIT_INTERRUPTED;
			break;
		}
		if (lf_after_run(&lf, code, after, sizeof after))
			continue;
		if (lf_wait(&lf, after) == -1) {
			code = EXIT_INTERRUPTED;
			break;
		}
	}
	lf_teardown(&lf);
	return code;
}

/*
 * outcome.c - the words for a test's outcome, and the closing line.
 *
 * One table holds every spelling of an outcome (the protocol's word, the
 * closing line's word, the -v tag) so that they cannot drift apart. The
 * closing line is what CI systems grep: its words and their order are
 * fixed by the issue and must never change without a release note.
 *
 * Nothing here does I/O or allocates.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "manager.h"

struct outcome_words {
	const char	*name;		/* protocol and JSON */
	const char	*summary;	/* closing line */
	const char	*tag;		/* -v line */
	int		 failure;	/* makes the run exit 1 */
};

static const struct outcome_words outcome_table[OUT__COUNT] = {
	[OUT_NONE]	= { "none",	"unfinished",	"NONE",		0 },
	[OUT_PASS]	= { "pass",	"passed",	"PASS",		0 },
	[OUT_FAIL]	= { "fail",	"failed",	"FAIL",		1 },
	[OUT_ERROR]	= { "error",	"errors",	"ERROR",	1 },
	[OUT_CRASH]	= { "crash",	"crashed",	"CRASH",	1 },
	[OUT_TIMEOUT]	= { "timeout",	"timed out",	"TIMEOUT",	1 },
	[OUT_SKIP]	= { "skip",	"skipped",	"SKIP",		0 },
	[OUT_XFAIL]	= { "xfail",	"xfailed",	"XFAIL",	0 },
	/* A todo that passes means the todo is stale: a failure. */
	[OUT_XPASS]	= { "xpass",	"xpassed",	"XPASS",	1 },
	[OUT_FLAKY]	= { "flaky",	"flaky",	"FLAKY",	0 },
	[OUT_NOT_RUN]	= { "not_run",	"not run",	"NOTRUN",	0 },
};

static const struct outcome_words *
outcome_words(enum outcome o)
{
	static const struct outcome_words unknown = { "?", "?", "?", 0 };

	if ((unsigned)o >= OUT__COUNT)
		return &unknown;
	return &outcome_table[o];
}

const char *
outcome_name(enum outcome o)
{
	return outcome_words(o)->name;
}

const char *
outcome_summary_word(enum outcome o)
{
	return outcome_words(o)->summary;
}

const char *
outcome_tag(enum outcome o)
{
	return outcome_words(o)->tag;
}

int
outcome_is_failure(enum outcome o)
{
	return outcome_words(o)->failure;
}

int
outcome_parse(const char *word, enum outcome *out)
{
	int o;

	if (word == NULL)
		return -1;
	/* The worker says "interrupted" for a test that cancel or shutdown
	 * killed: the run stopped before it could finish, so "not run". */
	if (strcmp(word, "interrupted") == 0) {
		*out = OUT_NOT_RUN;
		return 0;
	}
	for (o = OUT_NONE + 1; o < OUT__COUNT; o++) {
		if (strcmp(word, outcome_table[o].name) == 0) {
			*out = (enum outcome)o;
			return 0;
		}
	}
	return -1;
}

size_t
counts_total(const struct counts *c)
{
	size_t total = 0;
	int o;

	for (o = 0; o < OUT__COUNT; o++)
		total += c->n[o];
	return total;
}

void
counts_line(const struct counts *c, double elapsed, char *buf, size_t size)
{
	size_t used = 0;
	int o, n;

	if (size == 0)
		return;
	buf[0] = '\0';
	if (!(elapsed >= 0))		/* negative, or NaN */
		elapsed = 0;
	for (o = OUT_NONE + 1; o < OUT__COUNT; o++) {
		if (c->n[o] == 0)
			continue;
		n = snprintf(buf + used, size - used, "%s%zu %s",
		    used > 0 ? ", " : "", c->n[o], outcome_table[o].summary);
		if (n < 0 || (size_t)n >= size - used)
			return;		/* cut; snprintf left it terminated */
		used += (size_t)n;
	}
	snprintf(buf + used, size - used, "%s in %.2fs",
	    used > 0 ? "" : "no tests ran", elapsed);
}

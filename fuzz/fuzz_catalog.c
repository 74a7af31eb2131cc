/*
 * fuzz_catalog.c - libFuzzer harness for the manager's reading of a
 * worker's test list (manager/catalog.c): suite_tests pieces and the
 * load answer's count and hash come from the worker, which over tcp=,
 * ssh= or exec= is another machine.
 *
 * The input is a JSON array of steps for up to three suites:
 *   {"suite": S, "piece": {"first": N, "tests": [...]}}
 *   {"suite": S, "end": COUNT, "hash": "..."}
 * A step for a suite that does not exist, a piece out of order or a
 * broken entry is refused as the run would refuse it; what was accepted
 * is then read back whole.
 *
 * Checked, beyond "no crash, no leak": the same steps build the same
 * catalog twice, and cat_diff finds no difference between the two; the
 * counts add up; every test's strings are readable and its id is the
 * one it was given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSUITES		3
#define MAX_STEPS	64

static void
bug(const char *what)
{
	fprintf(stderr, "fuzz_catalog: %s\n", what);
	abort();
}

/* cat_diff is for lists whose hashes differ: of two equal ones it can
 * only say that the order changed. */
static void
emit(const char *line, void *arg)
{
	(void)arg;
	if (strcmp(line, "the same tests in another order") != 0)
		bug("a list differs from itself");
}

/* Builds a catalog from steps; ended[s] says whether suite s ended
 * well. */
static struct catalog *
build(json_t *steps, int ended[NSUITES])
{
	struct catalog *c = cat_new();
	char why[512];
	json_t *st;
	size_t i;
	long long s;
	int broken[NSUITES] = { 0 };

	cat_suite_add(c, "a.so");
	cat_suite_add(c, "b.so");
	cat_suite_add(c, "c.so");
	json_array_foreach(steps, i, st) {
		if (i >= MAX_STEPS)
			break;
		s = json_get_int(st, "suite", -1);
		if (s < 0 || s >= NSUITES || broken[s])
			continue;
		if (json_object_get(st, "piece") != NULL) {
			if (cat_add_piece(c, (uint16_t)s, json_object_get(st,
			    "piece"), why, sizeof why) == -1)
				broken[s] = 1;	/* the run would stop */
		} else if (json_object_get(st, "end") != NULL) {
			ended[s] = cat_suite_end(c, (uint16_t)s,
			    (size_t)json_get_int(st, "end", 0),
			    json_get_str(st, "hash", NULL), why, sizeof why) ==
			    0;
			broken[s] = !ended[s];
		}
	}
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int ended_a[NSUITES] = { 0 }, ended_b[NSUITES] = { 0 };
	struct catalog *a, *b;
	const struct cat_test *t;
	json_error_t jerr;
	json_t *steps;
	size_t n = 0, i;
	uint16_t s;

	steps = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (!json_is_array(steps)) {
		json_decref(steps);
		return 0;
	}
	a = build(steps, ended_a);
	b = build(steps, ended_b);
	if (cat_nsuites(a) != NSUITES || cat_ntests(a) != cat_ntests(b))
		bug("two builds of one list differ in size");
	for (s = 0; s < NSUITES; s++) {
		if (ended_a[s] != ended_b[s])
			bug("two builds of one list end differently");
		n += cat_suite_count(a, s);
		if (cat_suite_first(a, s) + cat_suite_count(a, s) >
		    cat_ntests(a))
			bug("a suite reaches past the catalog");
		if (ended_a[s] && cat_diff(a, s, "a", b, s, "b", 10, emit,
		    NULL) != 1)
			bug("a list differs from itself");
		if (ended_a[s] && strcmp(cat_suite_hash(a, s),
		    cat_suite_hash(b, s)) != 0)
			bug("one list, two hashes");
	}
	if (n != cat_ntests(a))
		bug("the suites' counts do not add up");
	for (i = 0; i < cat_ntests(a); i++) {
		t = cat_test(a, (uint32_t)i);
		if (t == NULL || t->suite >= NSUITES)
			bug("a test without its suite");
		if (strlen(cat_id(a, (uint32_t)i)) == 0)
			bug("a test with an empty id");
		(void)strlen(cat_str(a, t->file));
		(void)strlen(cat_str(a, t->tags));
		(void)strlen(cat_str(a, t->group));
		(void)strlen(cat_str(a, t->lock));
	}
	(void)cat_memory(a);
	cat_free(a);
	cat_free(b);
	json_decref(steps);
	return 0;
}

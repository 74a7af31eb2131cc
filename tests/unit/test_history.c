/*
 * test_history.c - the durations and failures cache: what it answers
 * after a round trip, that a damaged file is an empty history with one
 * warning, that concurrent saves never leave a mix, and that a million
 * tests fit.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"

/* A fresh directory under the system's temporary one. */
static char *
tmpdir(void)
{
	char *d = xstrdup("/tmp/dm-history-XXXXXX");

	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

static void
rmtree(const char *d)
{
	char *cmd;

	xasprintf(&cmd, "rm -rf '%s'", d);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

static char *
path_in(const char *dir, const char *name)
{
	char *p;

	xasprintf(&p, "%s/%s", dir, name);
	return p;
}

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
	fclose(fp);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	ck_assert_ptr_nonnull(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = xmalloc((size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

/* Log lines go to a file while f runs; returns them (caller frees). */
static int log_fd = -1;
static char log_path[64];

static void
log_capture(void)
{
	strcpy(log_path, "/tmp/dm-history-log-XXXXXX");
	log_fd = mkstemp(log_path);
	ck_assert_int_ge(log_fd, 0);
	log_set_fd(log_fd);
}

static char *
log_release(void)
{
	char *s = read_file(log_path, NULL);

	log_set_fd(2);
	close(log_fd);
	unlink(log_path);
	return s;
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_memory_only)
{
	struct history *h = history_open(NULL);

	ck_assert(history_duration(h, "a/b") < 0);
	ck_assert(!history_failed_last(h, "a/b"));
	history_record(h, "a/b", OUT_FAIL, 0.25);
	ck_assert(history_failed_last(h, "a/b"));
	ck_assert_uint_eq(history_nfailed(h), 1);
	ck_assert(history_duration(h, "a/b") == 0.25);
	ck_assert_int_eq(history_save(h), 0);	/* nowhere to: fine */
	history_free(h);
}
END_TEST

START_TEST(test_round_trip)
{
	char *d = tmpdir(), *cache = path_in(d, "sub/.distmgr"), *text, *file;
	struct history *h;

	log_capture();
	h = history_open(cache);		/* nothing there: no warning */
	history_record(h, "math/adds", OUT_PASS, 0.000123);
	history_record(h, "math/slow", OUT_PASS, 2.0);
	history_record(h, "math/slow", OUT_PASS, 2.5);
	history_record(h, "str/trim", OUT_FAIL, 0.01);
	history_record(h, "str/crash", OUT_CRASH, 0.02);
	history_record(h, "str/flaky", OUT_FAIL, 0.01);
	history_record(h, "str/flaky", OUT_FLAKY, 0.03);
	history_record(h, "str/stopped", OUT_NOT_RUN, 5);	/* ignored */
	history_record(h, "str/weird", OUT_TIMEOUT, -1);	/* no time */
	ck_assert_uint_eq(history_nfailed(h), 3);
	ck_assert_int_eq(history_save(h), 0);
	history_free(h);

	file = path_in(cache, "history");
	text = read_file(file, NULL);
	free(file);
	text[strlen(text) - 18] = '\0';		/* " checksum\n" */
	ck_assert_str_eq(text, "distmgr-history 1\ngeneration 1\n"
	    "0 1 123 math/adds\n"
	    "0 1 2500000,2000000 math/slow\n"
	    "1 1 10000 str/trim\n"
	    "1 1 20000 str/crash\n"
	    "0 1 30000,10000 str/flaky\n"
	    "1 1 - str/weird\n"
	    "end 6");
	free(text);
	/* The new directory is marked as a cache. */
	file = path_in(cache, ".gitignore");
	text = read_file(file, NULL);
	free(file);
	ck_assert(strstr(text, "\n*\n") != NULL);
	free(text);

	h = history_open(cache);
	ck_assert(history_duration(h, "math/adds") == 0.000123);
	ck_assert(history_duration(h, "math/slow") == 2.25);	/* mean */
	ck_assert(history_duration(h, "str/weird") < 0);
	ck_assert(history_duration(h, "str/stopped") < 0);
	ck_assert(history_failed_last(h, "str/trim"));
	ck_assert(history_failed_last(h, "str/crash"));
	ck_assert(history_failed_last(h, "str/weird"));
	ck_assert(!history_failed_last(h, "str/flaky"));
	ck_assert(!history_failed_last(h, "math/adds"));
	ck_assert_uint_eq(history_nfailed(h), 3);
	/* Second run: generation 2; a fix clears the failure. */
	history_record(h, "str/trim", OUT_PASS, 0.02);
	history_record(h, "math/slow", OUT_PASS, 9.0);
	ck_assert_uint_eq(history_nfailed(h), 2);
	/* Median of the last three: one slow run does not count much. */
	ck_assert(history_duration(h, "math/slow") == 2.5);
	history_record(h, "math/slow", OUT_PASS, 2.1);
	ck_assert(history_duration(h, "math/slow") == 2.5);
	history_record(h, "math/slow", OUT_PASS, 2.2);	/* 9.0 drops out */
	ck_assert(history_duration(h, "math/slow") == 2.2);
	ck_assert_int_eq(history_save(h), 0);
	history_free(h);
	text = log_release();
	ck_assert_str_eq(text, "");
	free(text);

	h = history_open(cache);
	ck_assert(!history_failed_last(h, "str/trim"));
	ck_assert(history_duration(h, "str/trim") == 0.015);
	history_free(h);
	rmtree(d);
	free(d);
	free(cache);
}
END_TEST

/* Each damaged file must give an empty history and exactly one warning
 * that names the file. */
static void
expect_corrupt(const char *dir, const char *data, size_t len,
    const char *reason)
{
	char *file = path_in(dir, "history"), *log;
	struct history *h;

	write_file(file, data, len);
	log_capture();
	h = history_open(dir);
	log = log_release();
	ck_assert_msg(count_lines(log) == 1, "%s: log [%s]", reason, log);
	ck_assert_msg(strstr(log, file) != NULL && strstr(log, reason) &&
	    strstr(log, "starting with an empty history"), "log [%s]", log);
	ck_assert(history_duration(h, "a/b") < 0);
	ck_assert(!history_failed_last(h, "a/b"));
	ck_assert_uint_eq(history_nfailed(h), 0);
	/* And it still works and can be saved over the damage. */
	history_record(h, "a/b", OUT_PASS, 1);
	ck_assert_int_eq(history_save(h), 0);
	history_free(h);
	h = history_open(dir);
	ck_assert(history_duration(h, "a/b") == 1);
	history_free(h);
	free(log);
	free(file);
}

START_TEST(test_corrupt)
{
	char *d = tmpdir(), *good, *bad, junk[4096];
	size_t len, i;
	struct history *h;

	h = history_open(d);
	history_record(h, "math/adds", OUT_FAIL, 0.5);
	history_record(h, "math/subs", OUT_PASS, 0.25);
	ck_assert_int_eq(history_save(h), 0);
	history_free(h);
	bad = path_in(d, "history");
	good = read_file(bad, &len);
	free(bad);

	expect_corrupt(d, "", 0, "not a distmgr history file");
	expect_corrupt(d, "hello\n", 6, "not a distmgr history file");
	expect_corrupt(d, "distmgr-history 2\nfuture\n", 25,
	    "written by another version");
	/* Truncated anywhere: the end line and checksum catch it. */
	for (i = 20; i < len; i += 7)
		expect_corrupt(d, good, i, "truncated or damaged");
	/* One byte changed in the body. */
	bad = xstrdup(good);
	strstr(bad, "math/adds")[8] = 'z';
	expect_corrupt(d, bad, len, "truncated or damaged");
	free(bad);
	/* Binary junk with NULs. */
	for (i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 131 + 7);
	expect_corrupt(d, junk, sizeof junk, "not a distmgr history file");
	/* A directory where the file should be. */
	bad = path_in(d, "history");
	unlink(bad);
	ck_assert_int_eq(mkdir(bad, 0777), 0);
	log_capture();
	h = history_open(d);
	free(good);
	good = log_release();
	ck_assert_int_eq(count_lines(good), 1);
	ck_assert(strstr(good, "not a regular file") != NULL);
	ck_assert_int_eq(history_save(h), 0);	/* nothing recorded */
	history_record(h, "a/b", OUT_PASS, 1);
	log_capture();
	ck_assert_int_eq(history_save(h), -1);	/* cannot rename over it */
	free(good);
	good = log_release();
	ck_assert_int_eq(count_lines(good), 1);
	ck_assert(strstr(good, "cannot save the history") != NULL);
	history_free(h);
	free(good);
	free(bad);
	rmtree(d);
	free(d);
}
END_TEST

/* A well-formed file (right checksum) whose lines are wrong. */
static void
with_sum(char *buf, size_t size, const char *body, size_t count)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *p;

	for (p = body; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ULL;
	}
	snprintf(buf, size, "%send %zu %016llx\n", body, count,
	    (unsigned long long)h);
}

START_TEST(test_bad_lines)
{
	static const struct { const char *body; size_t n; const char *why; }
	    cases[] = {
		{ "distmgr-history 1\ngeneration 1\n2 1 5 a/b\n", 1,
		    "a malformed line" },
		{ "distmgr-history 1\ngeneration 1\n0 1 5,6,7,8 a/b\n", 1,
		    "a malformed line" },
		{ "distmgr-history 1\ngeneration 1\n0 1 99999999999 a/b\n", 1,
		    "a malformed line" },
		{ "distmgr-history 1\ngeneration 1\n0 1 5 \n", 1,
		    "a malformed test id" },
		{ "distmgr-history 1\ngeneration 1\n0 1 5 a/b\n", 2,
		    "a wrong count of tests" },
		{ "distmgr-history 1\ngeneration x\n", 0,
		    "a bad generation line" },
		{ "distmgr-history 1\n0 1 5 a/b\n", 1, "no generation line" },
	};
	char *d = tmpdir(), buf[512];
	size_t i;

	for (i = 0; i < DM_NELEM(cases); i++) {
		with_sum(buf, sizeof buf, cases[i].body, cases[i].n);
		expect_corrupt(d, buf, strlen(buf), cases[i].why);
	}
	/* The same, well formed, loads. */
	with_sum(buf, sizeof buf, "distmgr-history 1\ngeneration 4\n"
	    "1 4 5,6,7 a/b\n0 3 - c/d e\n", 2);
	{
		char *file = path_in(d, "history");

		write_file(file, buf, strlen(buf));
		free(file);
	}
	{
		struct history *h = history_open(d);

		ck_assert(history_duration(h, "a/b") == 6e-6);
		ck_assert(history_failed_last(h, "a/b"));
		ck_assert(history_duration(h, "c/d e") < 0);
		ck_assert_uint_eq(history_nfailed(h), 1);
		history_free(h);
	}
	rmtree(d);
	free(d);
}
END_TEST

START_TEST(test_forgets_old_tests)
{
	char *d = tmpdir();
	struct history *h;
	int run;

	h = history_open(d);
	history_record(h, "old/renamed", OUT_FAIL, 1);
	history_save(h);
	history_free(h);
	for (run = 0; run < 101; run++) {
		h = history_open(d);
		ck_assert(history_failed_last(h, "old/renamed"));
		history_record(h, "new/name", OUT_PASS, 1);
		history_save(h);
		history_free(h);
	}
	h = history_open(d);
	ck_assert(!history_failed_last(h, "old/renamed"));
	ck_assert_uint_eq(history_nfailed(h), 0);
	ck_assert(history_duration(h, "new/name") == 1);
	history_free(h);
	rmtree(d);
	free(d);
}
END_TEST

/* Eight runs save into one directory at once, each its own tests, many
 * times; a reader meanwhile must never see a damaged file, and what is
 * left holds each run's tests all or not at all. */
START_TEST(test_concurrent_saves)
{
	enum { WRITERS = 8, TESTS = 2000, SAVES = 15 };
	char *d = tmpdir(), id[64], *log;
	pid_t pids[WRITERS];
	struct history *h;
	int w, s, t, status, found, owner = -1, reads = 0;

	for (w = 0; w < WRITERS; w++) {
		if ((pids[w] = fork()) == 0) {
			for (s = 0; s < SAVES; s++) {
				h = history_open(d);
				for (t = 0; t < TESTS; t++) {
					snprintf(id, sizeof id, "w%d/t%d", w,
					    t);
					history_record(h, id, OUT_PASS, t);
				}
				if (history_save(h) != 0)
					_exit(1);
				history_free(h);
			}
			_exit(0);
		}
		ck_assert_int_gt(pids[w], 0);
	}
	log_capture();
	for (w = 0; w < WRITERS; ) {
		h = history_open(d);
		history_free(h);
		reads++;
		if (waitpid(pids[w], &status, WNOHANG) == pids[w]) {
			ck_assert(WIFEXITED(status));
			ck_assert_int_eq(WEXITSTATUS(status), 0);
			w++;
		}
	}
	log = log_release();
	ck_assert_msg(strcmp(log, "") == 0, "after %d reads: %s", reads, log);
	free(log);
	/* Whole: every test of exactly the writers whose file it was. */
	h = history_open(d);
	for (w = 0; w < WRITERS; w++) {
		found = 0;
		for (t = 0; t < TESTS; t++) {
			snprintf(id, sizeof id, "w%d/t%d", w, t);
			found += history_duration(h, id) >= 0;
		}
		ck_assert(found == 0 || found == TESTS);
		if (found == TESTS)
			owner = w;
	}
	ck_assert_int_ge(owner, 0);
	history_free(h);
	rmtree(d);
	free(d);
}
END_TEST

START_TEST(test_million)
{
	enum { N = 1000000 };
	char *d = tmpdir(), id[64];
	struct history *h;
	size_t i, before, used, fails = 0;
	struct stat st;
	char *file = path_in(d, "history");
	double t0;

	h = history_open(d);
	for (i = 0; i < N; i++) {
		snprintf(id, sizeof id, "suite_%zu/test_number_%zu", i % 97, i);
		history_record(h, id, i % 1000 == 0 ? OUT_FAIL : OUT_PASS,
		    (double)(i % 5000) / 1e4);
	}
	t0 = clock_mono();
	ck_assert_int_eq(history_save(h), 0);
	printf("1M tests: saved in %.3fs\n", clock_mono() - t0);
	history_free(h);
	ck_assert_int_eq(stat(file, &st), 0);
	printf("1M tests: %lld bytes on disk\n", (long long)st.st_size);
	ck_assert_int_lt(st.st_size, 60 * N);

	before = mallinfo2().uordblks;
	t0 = clock_mono();
	h = history_open(d);
	printf("1M tests: loaded in %.3fs\n", clock_mono() - t0);
	used = mallinfo2().uordblks - before;
	printf("1M tests: %zu bytes in memory (%zu per test)\n", used,
	    used / N);
#if !defined(__SANITIZE_ADDRESS__)
	/* The manager has 300 bytes per test for everything. */
	ck_assert_uint_lt(used / N, 100);
#endif
	for (i = 0; i < N; i += 997) {
		snprintf(id, sizeof id, "suite_%zu/test_number_%zu", i % 97, i);
		ck_assert(history_duration(h, id) ==
		    (double)((i % 5000) * 100) / 1e6);
		ck_assert(history_failed_last(h, id) == (i % 1000 == 0));
	}
	for (i = 0; i < N; i++)
		fails += i % 1000 == 0;
	ck_assert_uint_eq(history_nfailed(h), fails);
	ck_assert(history_duration(h, "suite_1/test_number_0") < 0);
	history_free(h);
	rmtree(d);
	free(file);
	free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("history");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_memory_only);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_bad_lines);
	tcase_add_test(tc, test_forgets_old_tests);
	tcase_add_test(tc, test_concurrent_saves);
	tcase_add_test(tc, test_million);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

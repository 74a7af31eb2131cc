/*
 * test_watch.c - what --looponfail waits for: a suite rewritten, renamed
 * into place, or removed with its directory and built again; files under
 * a --watch tree, in directories made after the watch began; told once
 * per burst, by name; and never distmgr's own files, hidden ones or an
 * editor's.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "testutil.h"
#include "manager.h"

static char top[256];
static char got[4096];
static int calls;

static void
setup(void)
{
	snprintf(top, sizeof top, "%s/dmwatch.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(top));
	got[0] = '\0';
	calls = 0;
}

static void
teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes rel (under top) with some bytes. */
static void
put(const char *rel)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s/%s", top, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
}

static void
sh(const char *fmt)
{
	char cmd[1024];

	snprintf(cmd, sizeof cmd, "cd '%s' && %s", top, fmt);
	ck_assert_int_eq(system(cmd), 0);
}

/* Records what was told, with top taken off the names. */
static void
on_change(void *arg, const char *const *changed, size_t n, size_t more)
{
	size_t len = strlen(top);

	(void)arg;
	calls++;
	got[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *c = changed[i];

		if (strncmp(c, top, len) == 0)
			c += len + 1;
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s",
		    i > 0 ? " " : "", c);
	}
	if (more > 0)
		snprintf(got + strlen(got), sizeof got - strlen(got),
		    " +%zu", more);
}

static struct watch *
new_watch(struct event_base *base)
{
	char why[256];
	struct watch *w = watch_new(base, why, sizeof why);

	ck_assert_msg(w != NULL, "%s", why);
	return w;
}

START_TEST(test_suite_file)
{
	struct event_base *base = event_base_new();
	struct watch *w = new_watch(base);
	char path[512], why[256];

	sh("mkdir build && echo old >build/s.so");
	snprintf(path, sizeof path, "%s/build/s.so", top);
	ck_assert_int_eq(watch_file(w, path, why, sizeof why), 0);
	watch_arm(w, on_change, NULL);

	/* Other files in its directory, hidden ones, backups: nothing. */
	put("build/other.so");
	put("build/.s.so.tmp");
	put("build/s.so~");
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 0);

	/* Written in place, many times: told once, when it is quiet. */
	for (int i = 0; i < 5; i++) {
		put("build/s.so");
		tu_loop_for(base, 0.05);
	}
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 1);
	ck_assert_str_eq(got, "build/s.so");

	/* Not armed: kept for the next wait, which ends at once. */
	sh("echo new >build/s.so.new && mv build/s.so.new build/s.so");
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 1);
	watch_arm(w, on_change, NULL);
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 2);
	ck_assert_str_eq(got, "build/s.so");

	/* make clean, then a build: its directory is found again. */
	watch_arm(w, on_change, NULL);
	sh("rm -rf build");
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 3);	/* removed: the caller decides */
	watch_arm(w, on_change, NULL);
	sh("mkdir build && echo again >build/s.so");
	tu_loop_for(base, 2.5);
	ck_assert_int_eq(calls, 4);
	ck_assert_str_eq(got, "build/s.so");
	watch_free(w);
	event_base_free(base);
}
END_TEST

START_TEST(test_tree)
{
	struct event_base *base = event_base_new();
	struct watch *w = new_watch(base);
	char path[512], why[256];

	sh("mkdir -p src/net .git reports && echo a >src/a.c");
	snprintf(path, sizeof path, "%s/reports", top);
	watch_ignore(w, path);
	snprintf(path, sizeof path, "%s/out.json", top);
	watch_ignore(w, path);
	ck_assert_int_eq(watch_dir(w, top, why, sizeof why), 0);
	watch_arm(w, on_change, NULL);

	/* Our reports and hidden directories are not changes. */
	put("out.json");
	put("reports/j.xml");
	put(".git/index");
	put("src/.a.c.swp");
	put("src/4913");
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 0);

	/* Files anywhere under it, by name, each once. */
	put("src/a.c");
	put("src/net/io.c");
	put("src/a.c");
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 1);
	ck_assert_str_eq(got, "src/a.c src/net/io.c");

	/* A directory made after the watch began is watched too. */
	watch_arm(w, on_change, NULL);
	sh("mkdir -p src/new");
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 2);
	ck_assert_str_eq(got, "src/new");
	watch_arm(w, on_change, NULL);
	put("src/new/x.h");
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 3);
	ck_assert_str_eq(got, "src/new/x.h");

	/* Removing a file is a change. */
	watch_arm(w, on_change, NULL);
	sh("rm src/a.c");
	tu_loop_for(base, 0.8);
	ck_assert_int_eq(calls, 4);
	ck_assert_str_eq(got, "src/a.c");
	watch_free(w);
	event_base_free(base);
}
END_TEST

START_TEST(test_mistakes)
{
	struct event_base *base = event_base_new();
	struct watch *w = new_watch(base);
	char path[512], why[256];

	snprintf(path, sizeof path, "%s/nothing", top);
	ck_assert_int_eq(watch_dir(w, path, why, sizeof why), -1);
	ck_assert_msg(strstr(why, "No such file or directory") != NULL, "%s",
	    why);
	put("file");
	snprintf(path, sizeof path, "%s/file", top);
	ck_assert_int_eq(watch_dir(w, path, why, sizeof why), -1);
	ck_assert_msg(strstr(why, "not a directory") != NULL, "%s", why);
	watch_free(w);
	event_base_free(base);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("watch");
	TCase *tc = tcase_create("watch");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_suite_file);
	tcase_add_test(tc, test_tree);
	tcase_add_test(tc, test_mistakes);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

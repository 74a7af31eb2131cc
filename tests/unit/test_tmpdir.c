/*
 * test_tmpdir.c - removing a dead worker's temporary directory: all of
 * it, whatever a test made unreadable, and nothing else: not what a
 * symbolic link inside points to, not a link put in its place, not a
 * directory of another name.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"

static char top[256];
static char why[512];

static void
mk(const char *rel, const char *what, mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s/%s", top, rel);
	if (strcmp(what, "dir") == 0)
		ck_assert_int_eq(mkdir(path, mode), 0);
	else {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, "x", 1), 1);
		close(fd);
	}
}

static int
exists(const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", top, rel);
	return lstat(path, &st) == 0;
}

static void
setup(void)
{
	snprintf(top, sizeof top, "%s/dmtmpdir.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(top));
}

static void
teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; "
	    "rm -rf '%s'", top, top);
	(void)system(cmd);
}

START_TEST(test_removes_all_and_no_more)
{
	char path[512], link[512];

	/* What a worker and its tests leave: files, a deep tree, a
	 * directory they made unreadable, and links out of it. */
	mk("outside", "dir", 0700);
	mk("outside/precious", "file", 0600);
	mk("distworker.AbC123", "dir", 0700);
	mk("distworker.AbC123/file", "file", 0600);
	mk("distworker.AbC123/a", "dir", 0700);
	mk("distworker.AbC123/a/b", "dir", 0700);
	mk("distworker.AbC123/a/b/c", "file", 0400);
	mk("distworker.AbC123/locked", "dir", 0700);
	mk("distworker.AbC123/locked/inside", "file", 0600);
	snprintf(path, sizeof path, "%s/distworker.AbC123/locked", top);
	ck_assert_int_eq(chmod(path, 0), 0);
	mk("distworker.AbC123/readonly", "dir", 0700);
	mk("distworker.AbC123/readonly/inside", "file", 0600);
	snprintf(path, sizeof path, "%s/distworker.AbC123/readonly", top);
	ck_assert_int_eq(chmod(path, 0500), 0);
	snprintf(path, sizeof path, "%s/outside", top);
	snprintf(link, sizeof link, "%s/distworker.AbC123/to-outside", top);
	ck_assert_int_eq(symlink(path, link), 0);
	snprintf(link, sizeof link, "%s/distworker.AbC123/a/up", top);
	ck_assert_int_eq(symlink("../../../outside", link), 0);

	snprintf(path, sizeof path, "%s/distworker.AbC123", top);
	ck_assert_msg(tmpdir_remove(path, why, sizeof why) == 0, "%s", why);
	ck_assert(!exists("distworker.AbC123"));
	ck_assert(exists("outside/precious"));
	/* Gone already is no error: the worker usually removes it. */
	ck_assert_msg(tmpdir_remove(path, why, sizeof why) == 0, "%s", why);

	/* A session root, the TMPDIR inside it, goes whole. */
	mk("distworker-session.Q1w2e3", "dir", 0700);
	mk("distworker-session.Q1w2e3/private", "dir", 0700);
	mk("distworker-session.Q1w2e3/private/distworker.Zz9", "dir", 0700);
	mk("distworker-session.Q1w2e3/private/distworker.Zz9/f", "file",
	    0600);
	snprintf(path, sizeof path, "%s/distworker-session.Q1w2e3", top);
	ck_assert_msg(tmpdir_remove(path, why, sizeof why) == 0, "%s", why);
	ck_assert(!exists("distworker-session.Q1w2e3"));
}
END_TEST

START_TEST(test_refuses_what_is_not_a_worker_dir)
{
	char path[512], link[512];

	mk("outside", "dir", 0700);
	mk("outside/precious", "file", 0600);
	mk("mine", "dir", 0700);

	/* Not a worker's name. */
	snprintf(path, sizeof path, "%s/mine", top);
	ck_assert_int_eq(tmpdir_remove(path, why, sizeof why), -1);
	ck_assert(exists("mine"));
	snprintf(path, sizeof path, "%s/distworker.", top);
	ck_assert_int_eq(tmpdir_remove(path, why, sizeof why), -1);
	snprintf(path, sizeof path, "%s/distworker-session.", top);
	ck_assert_int_eq(tmpdir_remove(path, why, sizeof why), -1);
	mk("distworker-sessionX", "dir", 0700);
	snprintf(path, sizeof path, "%s/distworker-sessionX", top);
	ck_assert_int_eq(tmpdir_remove(path, why, sizeof why), -1);
	ck_assert(exists("distworker-sessionX"));
	ck_assert_int_eq(tmpdir_remove("distworker.x", why, sizeof why), -1);
	ck_assert_str_eq(why, "'distworker.x' is not a worker's temporary "
	    "directory");
	snprintf(path, sizeof path, "%s/distworker.x/../mine", top);
	ck_assert_int_eq(tmpdir_remove(path, why, sizeof why), -1);
	ck_assert(exists("mine"));

	/* A link in the directory's place: neither followed nor removed. */
	snprintf(path, sizeof path, "%s/outside", top);
	snprintf(link, sizeof link, "%s/distworker.Link00", top);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_int_eq(tmpdir_remove(link, why, sizeof why), -1);
	ck_assert(exists("outside/precious"));
	ck_assert(exists("distworker.Link00"));

	/* A file of that name is not a directory. */
	mk("distworker.File00", "file", 0600);
	snprintf(path, sizeof path, "%s/distworker.File00", top);
	ck_assert_int_eq(tmpdir_remove(path, why, sizeof why), -1);
	ck_assert(exists("distworker.File00"));
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("tmpdir");
	TCase *tc = tcase_create("tmpdir");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_removes_all_and_no_more);
	tcase_add_test(tc, test_refuses_what_is_not_a_worker_dir);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

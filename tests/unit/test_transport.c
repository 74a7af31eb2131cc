/*
 * test_transport.c - finding distworker and starting it: --worker that
 * does not exist or cannot run, the PATH fallback, a spawn that fails
 * with the exec error, and a started process in its own process group
 * with our socket as its stdin and stdout.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"

/* When distworker is installed here, the PATH checks cannot be made. */
#define DM_DEFAULT_LIBEXEC_PROBE "/usr/local/libexec/distmgr/distworker"

START_TEST(test_find_worker)
{
	char dir[] = "/tmp/dmtp.XXXXXX", path[512], out[512], why[512];
	const char *old = getenv("PATH");
	char *saved = old != NULL ? xstrdup(old) : NULL;
	FILE *fp;

	ck_assert_int_eq(tp_find_worker("/nonexistent/dw", NULL, out,
	    sizeof out, why, sizeof why), -1);
	ck_assert_str_eq(why, "--worker /nonexistent/dw: No such file or "
	    "directory");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/plain", dir);
	fp = fopen(path, "w");
	fclose(fp);
	chmod(path, 0644);
	ck_assert_int_eq(tp_find_worker(path, NULL, out, sizeof out, why,
	    sizeof why), -1);
	ck_assert(strstr(why, "plain: not an executable file") != NULL);
	unlink(path);
	ck_assert_int_eq(tp_find_worker("/bin/true", NULL, out, sizeof out,
	    why, sizeof why), 0);
	ck_assert_str_eq(out, "/bin/true");

	/* Not next to this program, nor installed: PATH has it. */
	snprintf(path, sizeof path, "%s/distworker", dir);
	fp = fopen(path, "w");
	fputs("#!/bin/sh\n", fp);
	fclose(fp);
	chmod(path, 0755);
	setenv("PATH", dir, 1);
	if (access(DM_DEFAULT_LIBEXEC_PROBE, X_OK) != 0) {
		ck_assert_int_eq(tp_find_worker(NULL, NULL, out, sizeof out,
		    why, sizeof why), 0);
		ck_assert_str_eq(out, path);
	}
	setenv("PATH", "/nonexistent", 1);
	if (access(DM_DEFAULT_LIBEXEC_PROBE, X_OK) != 0) {
		ck_assert_int_eq(tp_find_worker(NULL, NULL, out, sizeof out,
		    why, sizeof why), -1);
		ck_assert(strstr(why, "give one with --worker") != NULL);
	}
	if (saved != NULL)
		setenv("PATH", saved, 1);
	free(saved);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_start)
{
	struct tp_proc p;
	char why[512], buf[64];
	int st;
	ssize_t n;

	ck_assert_int_eq(tp_popen_start("/nonexistent/dw", &p, why,
	    sizeof why), -1);
	ck_assert_str_eq(why, "cannot start /nonexistent/dw: No such file or "
	    "directory");
	/* cat --stdio would fail; sh reads its script from our socket. */
	ck_assert_int_eq(tp_popen_start("/bin/sh", &p, why, sizeof why), 0);
	ck_assert_int_eq(getpgid((pid_t)p.pid), (pid_t)p.pid);
	fd_set_nonblock(p.fd, 0);
	/* sh --stdio is not an option sh knows: it says so on stderr. */
	ck_assert_int_eq(waitpid((pid_t)p.pid, &st, 0), (pid_t)p.pid);
	fd_set_nonblock(p.errfd, 0);
	n = read(p.errfd, buf, sizeof buf - 1);
	ck_assert_int_gt(n, 0);
	close(p.fd);
	close(p.errfd);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("transport");
	TCase *tc = tcase_create("popen");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_find_worker);
	tcase_add_test(tc, test_start);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

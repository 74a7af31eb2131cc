/*
 * test_txspec.c - --tx execution specs and the distmgr.conf reader.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "manager.h"

static struct txspec *
ok(const char *text)
{
	char why[256];
	struct txspec *tx = txspec_parse(text, why, sizeof why);

	ck_assert_msg(tx != NULL, "%s: %s", text, why);
	return tx;
}

static void
bad(const char *text, const char *want)
{
	char why[256];
	struct txspec *tx = txspec_parse(text, why, sizeof why);

	ck_assert_msg(tx == NULL, "%s parsed", text);
	ck_assert_msg(strstr(why, want) != NULL, "%s: '%s' lacks '%s'", text,
	    why, want);
}

START_TEST(test_kinds)
{
	struct txspec *tx;

	tx = ok("popen");
	ck_assert_int_eq(tx->kind, TX_POPEN);
	ck_assert_int_eq(tx->count, 1);
	txspec_free(tx);

	tx = ok("8*tcp=farm1:7700");
	ck_assert_int_eq(tx->kind, TX_TCP);
	ck_assert_int_eq(tx->count, 8);
	ck_assert_str_eq(tx->host, "farm1");
	ck_assert_int_eq(tx->port, 7700);
	txspec_free(tx);

	tx = ok("tcp=[::1]:7700");
	ck_assert_str_eq(tx->host, "::1");
	ck_assert_int_eq(tx->port, 7700);
	txspec_free(tx);

	tx = ok("2*ssh=ci@farm2:2222");
	ck_assert_int_eq(tx->kind, TX_SSH);
	ck_assert_str_eq(tx->user, "ci");
	ck_assert_str_eq(tx->host, "farm2");
	ck_assert_int_eq(tx->port, 2222);
	txspec_free(tx);

	tx = ok("ssh=farm3");
	ck_assert_ptr_null(tx->user);
	ck_assert_int_eq(tx->port, 0);
	txspec_free(tx);

	tx = ok("4*exec=srun -N1 distworker --stdio");
	ck_assert_int_eq(tx->kind, TX_EXEC);
	ck_assert_str_eq(tx->command, "srun -N1 distworker --stdio");
	txspec_free(tx);
}
END_TEST

START_TEST(test_modifiers)
{
	struct txspec *tx = ok("ssh=farm//chdir=/tmp/x//env:CC=clang"
	    "//env:X=a=b//id=big//nice=5//worker=/opt/bin/distworker");

	ck_assert_str_eq(tx->chdir, "/tmp/x");
	ck_assert_int_eq(tx->nenv, 2);
	ck_assert_str_eq(tx->env[0].name, "CC");
	ck_assert_str_eq(tx->env[0].value, "clang");
	ck_assert_str_eq(tx->env[1].value, "a=b");
	ck_assert_str_eq(tx->id, "big");
	ck_assert_int_eq(tx->nice, 5);
	ck_assert_int_eq(tx->has_nice, 1);
	ck_assert_str_eq(tx->worker, "/opt/bin/distworker");
	txspec_free(tx);
}
END_TEST

START_TEST(test_errors)
{
	bad("", "unknown kind ''");
	bad("rsh=x", "unknown kind 'rsh'");
	bad("0*popen", "count must be 1 to 1024");
	bad("5000*popen", "count must be 1 to 1024");
	bad("popen=x", "popen takes no value");
	bad("tcp=farm", "needs host:port");
	bad("tcp=farm:0", "port must be 1 to 65535");
	bad("tcp=farm:http", "port must be 1 to 65535");
	bad("tcp=[::1:7700", "unclosed '['");
	bad("ssh=", "ssh needs");
	bad("ssh=@h", "empty user");
	bad("exec=", "exec needs =COMMAND");
	bad("popen//nice=99", "nice must be -20 to 19");
	bad("popen//color=red", "unknown modifier 'color'");
	bad("popen//chdir", "is not KEY=VALUE");
	bad("tcp=:77", "no host");
}
END_TEST

static char *
write_tmp(const char *text)
{
	static char path[64];
	FILE *fp;
	int fd;

	snprintf(path, sizeof path, "/tmp/dmconf.XXXXXX");
	ck_assert_int_ge(fd = mkstemp(path), 0);
	fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
	return path;
}

START_TEST(test_conf)
{
	char why[256], *path;
	struct conf *c;

	path = write_tmp("# farm\n\ntx = 4*popen\n  tx=8*tcp=f:77 \n"
	    "ship-ignore = *.o # not a comment\nexitfirst = yes\n");
	c = conf_load(path, why, sizeof why);
	ck_assert_msg(c != NULL, "%s", why);
	ck_assert_int_eq(c->n, 4);
	ck_assert_str_eq(c->entries[0].name, "tx");
	ck_assert_str_eq(c->entries[0].value, "4*popen");
	ck_assert_int_eq(c->entries[0].line, 3);
	ck_assert_str_eq(c->entries[1].value, "8*tcp=f:77");
	ck_assert_str_eq(c->entries[2].value, "*.o # not a comment");
	ck_assert_int_eq(conf_bool(c->entries[3].value), 1);
	conf_free(c);
	unlink(path);

	path = write_tmp("tx = popen\njust words\n");
	ck_assert_ptr_null(conf_load(path, why, sizeof why));
	ck_assert_msg(strstr(why, ":2: expected 'name = value'") != NULL, "%s",
	    why);
	unlink(path);

	path = write_tmp("= 3\n");
	ck_assert_ptr_null(conf_load(path, why, sizeof why));
	ck_assert_msg(strstr(why, ":1: '' is not a setting name") != NULL,
	    "%s", why);
	unlink(path);

	ck_assert_ptr_null(conf_load("/nonexistent/distmgr.conf", why,
	    sizeof why));
	ck_assert_str_eq(why,
	    "/nonexistent/distmgr.conf: No such file or directory");
	ck_assert_int_eq(conf_bool("Off"), 0);
	ck_assert_int_eq(conf_bool("maybe"), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("txspec");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_kinds);
	tcase_add_test(tc, test_modifiers);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_conf);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

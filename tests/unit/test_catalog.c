/*
 * test_catalog.c - the test list as the first worker sends it: pieces,
 * the hash check, interning, and the diff printed on a mismatch.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

static json_t *
piece(int first, const char *json_tests)
{
	json_t *p = json_pack("{s:s, s:i}", "suite", "s.so", "first", first);
	json_error_t e;

	json_object_set_new(p, "tests", json_loads(json_tests, 0, &e));
	return p;
}

static const char *A = "[{\"id\":\"m/a\",\"file\":\"m.c\",\"line\":3},"
    "{\"id\":\"m/b\",\"file\":\"m.c\",\"line\":7,\"timeout\":2.5,"
    "\"todo\":\"bug\",\"tags\":[\"slow\",\"net\"]}]";
static const char *B = "[{\"id\":\"n/c\",\"file\":\"n.c\",\"line\":1,"
    "\"skip\":\"later\"}]";

static void
lines_hash(const char *text, char out[SHA256_HEX_LEN + 1])
{
	sha256_hex(text, strlen(text), out);
}

START_TEST(test_pieces_and_hash)
{
	struct catalog *c = cat_new();
	char why[256], hash[SHA256_HEX_LEN + 1];
	const struct cat_test *t;
	json_t *p;
	uint16_t s;

	lines_hash("m/a\tm.c:3\nm/b\tm.c:7\nn/c\tn.c:1\n", hash);
	s = cat_suite_add(c, "s.so");
	p = piece(0, A);
	ck_assert_int_eq(cat_add_piece(c, s, p, why, sizeof why), 0);
	json_decref(p);
	/* A piece that skips ahead is refused. */
	p = piece(5, B);
	ck_assert_int_eq(cat_add_piece(c, s, p, why, sizeof why), -1);
	ck_assert_str_eq(why, "a piece of the list out of order (starts at 5, "
	    "expected 2)");
	json_decref(p);
	p = piece(2, B);
	ck_assert_int_eq(cat_add_piece(c, s, p, why, sizeof why), 0);
	json_decref(p);
	ck_assert_int_eq(cat_suite_end(c, s, 3, hash, why, sizeof why), 0);
	ck_assert_uint_eq(cat_ntests(c), 3);
	ck_assert_str_eq(cat_id(c, 1), "m/b");
	t = cat_test(c, 1);
	ck_assert_int_eq(t->line, 7);
	ck_assert(t->flags & CAT_F_TODO);
	ck_assert_str_eq(cat_str(c, t->tags), "slow,net");
	ck_assert(t->timeout > 2.4f && t->timeout < 2.6f);
	/* One copy of a file name however many tests use it. */
	ck_assert_uint_eq(cat_test(c, 0)->file, t->file);
	ck_assert(cat_test(c, 2)->flags & CAT_F_SKIP);
	ck_assert_str_eq(cat_suite_path(c, s), "s.so");
	cat_free(c);
}
END_TEST

START_TEST(test_bad_count_or_hash)
{
	struct catalog *c = cat_new();
	char why[256];
	json_t *p = piece(0, A);
	uint16_t s = cat_suite_add(c, "s.so");

	ck_assert_int_eq(cat_add_piece(c, s, p, why, sizeof why), 0);
	ck_assert_int_eq(cat_suite_end(c, s, 3, "x", why, sizeof why), -1);
	ck_assert_str_eq(why, "the worker counted 3 tests but sent 2");
	json_decref(p);
	s = cat_suite_add(c, "t.so");
	p = piece(0, B);
	ck_assert_int_eq(cat_add_piece(c, s, p, why, sizeof why), 0);
	ck_assert_int_eq(cat_suite_end(c, s, 1, "abc", why, sizeof why), -1);
	ck_assert(strstr(why, "but the worker says abc") != NULL);
	ck_assert_uint_eq(cat_suite_first(c, s), 2);
	json_decref(p);
	p = piece(0, "[{\"id\":\"x\",\"line\":1}]");
	s = cat_suite_add(c, "u.so");
	ck_assert_int_eq(cat_add_piece(c, s, p, why, sizeof why), -1);
	json_decref(p);
	cat_free(c);
}
END_TEST

static char diffbuf[2048];

static void
collect(const char *line, void *arg)
{
	(void)arg;
	strcat(diffbuf, line);
	strcat(diffbuf, "\n");
}

START_TEST(test_diff)
{
	struct catalog *a = cat_new(), *b = cat_new();
	char why[256];
	json_t *p;
	uint16_t sa = cat_suite_add(a, "s.so"), sb = cat_suite_add(b, "s.so");

	p = piece(0, A);
	cat_add_piece(a, sa, p, why, sizeof why);
	json_decref(p);
	p = piece(0, "[{\"id\":\"m/a\",\"file\":\"m.c\",\"line\":4},"
	    "{\"id\":\"m/z\",\"file\":\"m.c\",\"line\":9}]");
	cat_add_piece(b, sb, p, why, sizeof why);
	json_decref(p);
	diffbuf[0] = '\0';
	ck_assert_uint_eq(cat_diff(a, sa, "w0", b, sb, "w3", 10, collect, NULL),
	    3);
	ck_assert_str_eq(diffbuf, "m/a: m.c:3 on w0, m.c:4 on w3\n"
	    "only on w0: m/b (m.c:7)\n"
	    "only on w3: m/z (m.c:9)\n");
	cat_free(a);
	cat_free(b);
}
END_TEST

START_TEST(test_many_tests_are_compact)
{
	struct catalog *c = cat_new();
	char why[256], buf[64];
	json_t *p, *arr, *e;
	uint16_t s = cat_suite_add(c, "big.so");
	int i, k;

	for (k = 0; k < 100; k++) {
		arr = json_array();
		for (i = 0; i < 1000; i++) {
			snprintf(buf, sizeof buf, "big/t%d", k * 1000 + i);
			e = json_pack("{s:s, s:s, s:i}", "id", buf, "file",
			    "big.c", "line", i);
			json_array_append_new(arr, e);
		}
		p = json_pack("{s:i, s:o}", "first", k * 1000, "tests", arr);
		ck_assert_int_eq(cat_add_piece(c, s, p, why, sizeof why), 0);
		json_decref(p);
	}
	ck_assert_uint_eq(cat_ntests(c), 100000);
	/* 32 bytes a record, the id, and slack from doubling. */
	ck_assert_msg(cat_memory(c) < 100000 * 80, "%zu bytes",
	    cat_memory(c));
	cat_free(c);
}
END_TEST

/* A test's group, strategy, locks and .serial, as the scheduler needs
 * them; a strategy distmgr does not know is a broken list. */
START_TEST(test_groups_and_locks)
{
	struct catalog *c = cat_new();
	const struct cat_test *t;
	char why[256];
	json_t *p;
	uint16_t s;

	s = cat_suite_add(c, "s.so");
	p = piece(0, "[{\"id\":\"g/a\",\"file\":\"g.c\",\"line\":1,"
	    "\"group\":\"db\",\"strategy\":\"isolated_serial\","
	    "\"lock\":[\"port\",\"disk\"]},"
	    "{\"id\":\"g/b\",\"file\":\"g.c\",\"line\":2,\"serial\":true},"
	    "{\"id\":\"g/c\",\"file\":\"g.c\",\"line\":3,\"group\":\"db\","
	    "\"strategy\":\"isolated_serial\",\"lock\":[\"port\"]}]");
	ck_assert_int_eq(cat_add_piece(c, s, p, why, sizeof why), 0);
	json_decref(p);
	t = cat_test(c, 0);
	ck_assert_str_eq(cat_str(c, t->group), "db");
	ck_assert_int_eq(t->strategy, SCHED_ISOLATED_SERIAL);
	ck_assert_str_eq(cat_str(c, t->lock), "port,disk");
	ck_assert_int_eq(t->flags & CAT_F_SERIAL, 0);
	ck_assert_uint_eq(cat_test(c, 2)->group, t->group);	/* interned */
	t = cat_test(c, 1);
	ck_assert_uint_eq(t->group, CAT_NONE);
	ck_assert_uint_eq(t->lock, CAT_NONE);
	ck_assert_int_eq(t->flags & CAT_F_SERIAL, CAT_F_SERIAL);
	p = piece(3, "[{\"id\":\"g/d\",\"file\":\"g.c\",\"line\":4,"
	    "\"group\":\"db\",\"strategy\":\"sometimes\"}]");
	ck_assert_int_eq(cat_add_piece(c, s, p, why, sizeof why), -1);
	ck_assert_str_eq(why, "test 'g/d' has a group or strategy that is not "
	    "one distmgr knows");
	json_decref(p);
	cat_free(c);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("catalog");
	TCase *tc = tcase_create("catalog");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_pieces_and_hash);
	tcase_add_test(tc, test_bad_count_or_hash);
	tcase_add_test(tc, test_diff);
	tcase_add_test(tc, test_many_tests_are_compact);
	tcase_add_test(tc, test_groups_and_locks);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

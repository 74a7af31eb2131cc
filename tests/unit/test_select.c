/*
 * test_select.c - -k and --tags expressions (what they select, and the
 * exact error a user sees for a bad one) and --shard.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

static const char *ids[] = {
	"math/adds", "math/subtracts", "math/divides_by_zero",
	"str/trim", "str/split_empty", "str/Split_unicode",
	"parse/ini_sections", "parse/int_overflow", "net/fetch",
};

/* The ids expr selects, joined by spaces. */
static const char *
selected(const char *expr)
{
	static char buf[512];
	char why[200];
	struct kexpr *k = kexpr_parse(expr, why, sizeof why);
	size_t i;

	ck_assert_msg(k != NULL, "%s: %s", expr, why);
	buf[0] = '\0';
	for (i = 0; i < DM_NELEM(ids); i++) {
		if (!kexpr_match(k, ids[i]))
			continue;
		if (buf[0] != '\0')
			strcat(buf, " ");
		strcat(buf, ids[i]);
	}
	kexpr_free(k);
	return buf;
}

static const char *
error_of(const char *expr)
{
	static char why[200];
	struct kexpr *k;

	memset(why, 'x', sizeof why);
	k = kexpr_parse(expr, why, sizeof why);
	ck_assert_msg(k == NULL, "%s parsed", expr);
	return why;
}

START_TEST(test_words_and_globs)
{
	ck_assert_str_eq(selected("trim"), "str/trim");
	ck_assert_str_eq(selected("split"),
	    "str/split_empty str/Split_unicode");	/* any case */
	ck_assert_str_eq(selected("math/"),
	    "math/adds math/subtracts math/divides_by_zero");
	ck_assert_str_eq(selected("math/*s"), "math/adds math/subtracts");
	/* A glob is matched against the whole id: no implicit stars. */
	ck_assert_str_eq(selected("math"),
	    "math/adds math/subtracts math/divides_by_zero");
	ck_assert_str_eq(selected("*/in?_*"),
	    "parse/ini_sections parse/int_overflow");
	ck_assert_str_eq(selected("m[a]th/a*"), "math/adds");
	ck_assert_str_eq(selected("STR/TRIM"), "str/trim");
	ck_assert_str_eq(selected("nothing_like_it"), "");
}
END_TEST

START_TEST(test_operators)
{
	ck_assert_str_eq(selected("math and not zero"),
	    "math/adds math/subtracts");
	ck_assert_str_eq(selected("trim or fetch"), "str/trim net/fetch");
	ck_assert_str_eq(selected("not (math or str or parse)"), "net/fetch");
	/* and binds tighter than or. */
	ck_assert_str_eq(selected("trim or math and adds"),
	    "math/adds str/trim");
	ck_assert_str_eq(selected("(trim or math) and adds"), "math/adds");
	ck_assert_str_eq(selected("not not trim"), "str/trim");
	ck_assert_str_eq(selected("  ( ( trim ) )  "), "str/trim");
	ck_assert_str_eq(selected("str/*and*"), "");	/* 'and' in a word */
	ck_assert_str_eq(selected("a and s and u and b"),
	    "math/subtracts");
}
END_TEST

START_TEST(test_empty_selects_all)
{
	ck_assert_str_eq(selected(""), "math/adds math/subtracts "
	    "math/divides_by_zero str/trim str/split_empty str/Split_unicode "
	    "parse/ini_sections parse/int_overflow net/fetch");
	ck_assert_str_eq(selected(" \t "), selected(""));
}
END_TEST

START_TEST(test_errors)
{
	ck_assert_str_eq(error_of("math and"),
	    "column 9: expected a pattern after 'and', found the end of "
	    "the expression");
	ck_assert_str_eq(error_of("math or or str"),
	    "column 9: expected a pattern after 'or', found 'or'");
	ck_assert_str_eq(error_of("math str"),
	    "column 6: expected 'and', 'or' or the end of the expression, "
	    "found 'str'");
	ck_assert_str_eq(error_of("(math or str"),
	    "column 1: '(' is never closed");
	ck_assert_str_eq(error_of("a and (b or (c)"),
	    "column 7: '(' is never closed");
	ck_assert_str_eq(error_of("math)"),
	    "column 5: unexpected ')' with no '(' before it");
	ck_assert_str_eq(error_of("()"),
	    "column 2: expected a pattern after '(', found ')'");
	ck_assert_str_eq(error_of("not"),
	    "column 4: expected a pattern after 'not', found the end of "
	    "the expression");
	ck_assert_str_eq(error_of("and math"),
	    "column 1: expected a pattern, found 'and'");
	ck_assert_str_eq(error_of(")"), "column 1: expected a pattern, "
	    "found ')'");
}
END_TEST

START_TEST(test_error_edges)
{
	char deep[300], why[8];
	struct kexpr *k;
	int i;

	for (i = 0; i < 100; i++)
		deep[i] = '(';
	strcpy(deep + 100, "x");
	ck_assert_str_eq(error_of(deep),
	    "column 65: nested too deeply (at most 64 levels)");
	/* A long chain is not nesting. */
	deep[0] = '\0';
	for (i = 0; i < 60; i++)
		strcat(deep, "not ");
	strcat(deep, "x");
	k = kexpr_parse(deep, NULL, 0);		/* no room for why: fine */
	ck_assert_ptr_nonnull(k);
	ck_assert(kexpr_match(k, "x"));
	kexpr_free(k);
	/* A short why buffer is cut, terminated. */
	ck_assert_ptr_null(kexpr_parse("a b", why, sizeof why));
	ck_assert_str_eq(why, "column ");
	ck_assert_ptr_null(kexpr_parse("a b", NULL, 0));
}
END_TEST

START_TEST(test_long_chain)
{
	size_t n = 20000, i;
	char *text = xmalloc(n * 6 + 16), *p = text;
	struct kexpr *k;

	/* "zz or zz or ... or trim": a loop, not 20000 levels of calls. */
	for (i = 0; i < n; i++)
		p += sprintf(p, "zz or ");
	strcpy(p, "trim");
	k = kexpr_parse(text, NULL, 0);
	ck_assert_ptr_nonnull(k);
	ck_assert(kexpr_match(k, "str/trim"));
	ck_assert(!kexpr_match(k, "math/adds"));
	kexpr_free(k);
	free(text);
}
END_TEST

START_TEST(test_tags)
{
	char why[200];
	struct kexpr *k = kexpr_parse("slow and not (network or gpu*)", why,
	    sizeof why);

	ck_assert_ptr_nonnull(k);
	ck_assert(kexpr_match_tags(k, "slow"));
	ck_assert(kexpr_match_tags(k, "fast, slow ,io"));
	ck_assert(!kexpr_match_tags(k, "slow,network"));
	ck_assert(!kexpr_match_tags(k, "gpu-nvidia,slow"));
	ck_assert(!kexpr_match_tags(k, "slowish"));	/* whole tags only */
	ck_assert(!kexpr_match_tags(k, "SLOW"));	/* tags keep case */
	ck_assert(!kexpr_match_tags(k, ""));
	ck_assert(!kexpr_match_tags(k, NULL));
	ck_assert(!kexpr_match_tags(k, ",,,"));
	kexpr_free(k);
	k = kexpr_parse("not network", why, sizeof why);
	ck_assert(kexpr_match_tags(k, NULL));
	ck_assert(kexpr_match_tags(k, "networking"));
	kexpr_free(k);
}
END_TEST

START_TEST(test_shard_parse)
{
	static const char *bad[] = { "0/4", "5/4", "1/0", "0/0", "", "1",
	    "1/", "/2", "a/b", "1/2x", " 1/2", "1/2 ", "+1/2", "-1/2",
	    "1//2", "1/4294967296", "99999999999/1" };
	unsigned i = 77, n = 77;
	size_t j;

	ck_assert_int_eq(shard_parse("1/4", &i, &n), 0);
	ck_assert_uint_eq(i, 1);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(shard_parse("4/4", &i, &n), 0);
	ck_assert_int_eq(shard_parse("1/1", &i, &n), 0);
	ck_assert_int_eq(shard_parse("007/10", &i, &n), 0);
	ck_assert_uint_eq(i, 7);
	i = n = 77;
	for (j = 0; j < DM_NELEM(bad); j++)
		ck_assert_msg(shard_parse(bad[j], &i, &n) == -1, "%s", bad[j]);
	ck_assert_int_eq(shard_parse(NULL, &i, &n), -1);
	ck_assert_uint_eq(i, 77);
	ck_assert_uint_eq(n, 77);
}
END_TEST

START_TEST(test_shard_partition)
{
	enum { N = 7, TESTS = 70000 };
	size_t per[N] = { 0 };
	char id[64];
	unsigned s, hits;
	size_t t;

	for (t = 0; t < TESTS; t++) {
		snprintf(id, sizeof id, "suite%zu/test_%zu", t % 13, t);
		hits = 0;
		for (s = 1; s <= N; s++) {
			if (shard_has(id, s, N)) {
				per[s - 1]++;
				hits++;
			}
		}
		ck_assert_uint_eq(hits, 1);	/* exactly one shard */
	}
	for (s = 0; s < N; s++)			/* roughly even */
		ck_assert_msg(per[s] > TESTS / N * 9 / 10 &&
		    per[s] < TESTS / N * 11 / 10, "shard %u: %zu", s + 1,
		    per[s]);
	ck_assert(!shard_has("a/b", 0, 3));
	ck_assert(!shard_has("a/b", 4, 3));
	ck_assert(!shard_has("a/b", 1, 0));
	ck_assert(shard_has("a/b", 1, 1));
}
END_TEST

START_TEST(test_shard_stable)
{
	/* Pinned: these must never move, or CI shards change between
	 * releases. Computed independently (FNV-1a 64, then fmix64, modulo
	 * N, plus one) in a few lines of Python. */
	static const struct {
		const char	*id;
		unsigned	 n4, n10;
	} pin[] = {
		{ "math/adds", 1, 1 }, { "str/trim", 1, 5 },
		{ "parse/ini", 4, 6 }, { "net/fetch", 4, 10 },
		{ "", 3, 3 }, { "demo/slow_parse", 3, 5 },
	};
	size_t j;

	for (j = 0; j < DM_NELEM(pin); j++) {
		ck_assert_msg(shard_has(pin[j].id, pin[j].n4, 4), "%s",
		    pin[j].id);
		ck_assert_msg(shard_has(pin[j].id, pin[j].n10, 10), "%s",
		    pin[j].id);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("select");
	TCase *tc = tcase_create("select");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_words_and_globs);
	tcase_add_test(tc, test_operators);
	tcase_add_test(tc, test_empty_selects_all);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_error_edges);
	tcase_add_test(tc, test_long_chain);
	tcase_add_test(tc, test_tags);
	tcase_add_test(tc, test_shard_parse);
	tcase_add_test(tc, test_shard_partition);
	tcase_add_test(tc, test_shard_stable);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

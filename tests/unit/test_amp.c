/*
 * test_amp.c - the ask/answer/error layer over a real socketpair and
 * event loop.
 */
#include <check.h>
#include <string.h>

#include <event2/event.h>

#include "testutil.h"

static int
h_add(struct amp_request *req, json_t *box)
{
	long long a = json_get_int(box, "a", 0), b = json_get_int(box, "b", 0);

	amp_answer(req, json_pack("{s:I}", "sum", (json_int_t)(a + b)));
	return 0;
}

static struct amp_request *kept;

static int
h_slow(struct amp_request *req, json_t *box)
{
	(void)box;
	kept = req;		/* answered never: the connection drops */
	return 0;
}

static const struct amp_arg add_args[] = {
	{ "a", AMP_T_INT, 0 }, { "b", AMP_T_INT, 0 }, { NULL, 0, 0 }
};
static const struct amp_command table[] = {
	{ "add", h_add, add_args },
	{ "slow", h_slow, NULL },
	{ NULL, NULL, NULL }
};

struct answer {
	int	 done;
	long long sum;
	char	 code[64];
	char	 text[256];
};

static void
on_answer(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct answer *a = arg;

	(void)c;
	a->done++;
	if (err != NULL) {
		snprintf(a->code, sizeof a->code, "%s", err->code);
		snprintf(a->text, sizeof a->text, "%s", err->description);
	} else
		a->sum = json_get_int(ans, "sum", -1);
}

START_TEST(test_ask_answer)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer a = { 0 }, u = { 0 }, bad = { 0 };

	tu_pair_open(base, &p, NULL, table);
	ck_assert_int_eq(amp_ask(p.a, "add", json_pack("{s:i,s:i}", "a", 2,
	    "b", 3), on_answer, &a), 0);
	ck_assert_int_eq(amp_ask(p.a, "nope", NULL, on_answer, &u), 0);
	ck_assert_int_eq(amp_ask(p.a, "add", json_pack("{s:i,s:s}", "a", 2,
	    "b", "x"), on_answer, &bad), 0);
	tu_loop_until(base, &bad.done, 5);
	ck_assert_int_eq(a.done, 1);
	ck_assert_int_eq(a.sum, 5);
	ck_assert_str_eq(u.code, AMP_E_UNHANDLED);
	ck_assert_str_eq(bad.code, AMP_E_BAD_ARGUMENT);
	ck_assert_str_eq(bad.text, "argument 'b' must be an integer");
	amp_conn_close(p.a, "test over", 0);
	tu_loop_until(base, &p.b_closed, 5);
	ck_assert_int_eq(p.a_closed, 1);
	ck_assert_str_eq(p.b_reason, "closed by peer");
	event_base_free(base);
}
END_TEST

START_TEST(test_drop_fails_asks_once)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer a = { 0 };

	tu_pair_open(base, &p, NULL, table);
	ck_assert_int_eq(amp_ask(p.a, "slow", NULL, on_answer, &a), 0);
	tu_loop_for(base, 0.05);
	amp_conn_close(p.b, "bye", 0);
	tu_loop_until(base, &p.a_closed, 5);
	ck_assert_int_eq(a.done, 1);
	ck_assert_str_eq(a.code, AMP_E_CONNECTION_LOST);
	ck_assert_ptr_nonnull(kept);
	ck_assert_ptr_null(amp_request_conn(kept));
	amp_request_drop(kept);
	event_base_free(base);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("amp");
	TCase *tc = tcase_create("basic");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_ask_answer);
	tcase_add_test(tc, test_drop_fails_asks_once);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

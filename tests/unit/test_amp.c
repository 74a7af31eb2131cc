/*
 * test_amp.c - the ask/answer/error layer over a real socketpair (or
 * pipes) and event loop: answers, errors, argument checks, exactly-once
 * failure of asks when the connection drops, closing, flow control.
 *
 * Where what matters is the exact bytes on the wire, or that nothing is
 * sent, the peer is a raw socket read and written here. Nothing waits
 * for a time to pass: every wait is tu_loop_until with a deadline.
 */
#include <sys/socket.h>

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "testutil.h"

#define DEADLINE 10.0

/* ---- the command table the far end serves ------------------------------ */

static int tells_seen;
static int tell_wanted_answer = -1;
static struct amp_request *kept[8];
static int n_kept;

static int
h_add(struct amp_request *req, json_t *box)
{
	long long a = json_get_int(box, "a", 0), b = json_get_int(box, "b", 0);

	if (!amp_request_wants_answer(req)) {
		tells_seen++;
		tell_wanted_answer = 0;
	}
	amp_answer(req, json_pack("{s:I}", "sum", (json_int_t)(a + b)));
	return 0;
}

static int
h_slow(struct amp_request *req, json_t *box)
{
	(void)box;
	ck_assert_int_lt(n_kept, (int)DM_NELEM(kept));
	kept[n_kept++] = req;	/* answered later, or never */
	return 0;
}

static int
h_boom(struct amp_request *req, json_t *box)
{
	(void)req;
	(void)box;
	return -1;
}

static int
h_refuse(struct amp_request *req, json_t *box)
{
	amp_fail(req, "NO_SUCH_SUITE", "no suite %lld loaded",
	    json_get_int(box, "suite", -1));
	return 0;
}

static int
h_big(struct amp_request *req, json_t *box)
{
	size_t n = (size_t)json_get_int(box, "n", 0);
	char *s = xmalloc(n + 1);

	memset(s, 'x', n);
	s[n] = '\0';
	amp_answer(req, json_pack("{s:s}", "blob", s));
	free(s);
	return 0;
}

static int
h_long_error(struct amp_request *req, json_t *box)
{
	const char *unit = json_get_str(box, "unit", "a");
	size_t n = (size_t)json_get_int(box, "n", 0), i, ul = strlen(unit);
	char *s = xmalloc(n * ul + 2);

	s[0] = '>';
	for (i = 0; i < n; i++)
		memcpy(s + 1 + i * ul, unit, ul);
	s[1 + n * ul] = '\0';
	amp_fail(req, "LONG", "%s", s);
	free(s);
	return 0;
}

static int
h_count(struct amp_request *req, json_t *box)
{
	(void)req;
	(void)box;
	tells_seen++;
	return 0;
}

static const struct amp_arg add_args[] = {
	{ "a", AMP_T_INT, 0 }, { "b", AMP_T_INT, 0 }, { NULL, 0, 0 }
};
static const struct amp_arg typed_args[] = {
	{ "s", AMP_T_STRING, 0 },
	{ "i", AMP_T_INT, 0 },
	{ "n", AMP_T_NUMBER, 0 },
	{ "b", AMP_T_BOOL, 0 },
	{ "a", AMP_T_ARRAY, 0 },
	{ "o", AMP_T_OBJECT, 0 },
	{ "x", AMP_T_ANY, 0 },
	{ "opt", AMP_T_INT, 1 },
	{ NULL, 0, 0 }
};
static const struct amp_command table[] = {
	{ "add", h_add, add_args },
	{ "slow", h_slow, NULL },
	{ "later", h_slow, NULL },
	{ "boom", h_boom, NULL },
	{ "refuse", h_refuse, NULL },
	{ "typed", h_add, typed_args },
	{ "big", h_big, NULL },
	{ "long_error", h_long_error, NULL },
	{ "count", h_count, NULL },
	{ NULL, NULL, NULL }
};

/* ---- answers ----------------------------------------------------------- */

struct answer {
	int	 done;		/* times the callback ran */
	long long sum;
	char	 code[64];
	char	 text[4096];
	size_t	 text_len;
	json_t	*box;		/* a copy of the answer */
};

static int answers_total;

static void
on_answer(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct answer *a = arg;

	(void)c;
	a->done++;
	answers_total++;
	if (err != NULL) {
		snprintf(a->code, sizeof a->code, "%s", err->code);
		snprintf(a->text, sizeof a->text, "%s", err->description);
		a->text_len = strlen(err->description);
	} else {
		a->sum = json_get_int(ans, "sum", -1);
		json_decref(a->box);
		a->box = json_deep_copy(ans);
	}
}

/* Runs base until *counter reaches want, or DEADLINE passes. */
static int
loop_until_count(struct event_base *base, volatile int *counter, int want)
{
	double end = clock_mono() + DEADLINE;

	while (*counter < want && clock_mono() < end)
		tu_loop_for(base, 0.005);
	return *counter;
}

/* ---- connection ends with their own callbacks -------------------------- */

struct end {
	struct amp_conn	*c;
	int		 closed;
	char		 reason[512];
	int		 drains;
	struct answer	*watch;		/* asks to look at when closing */
	int		 nwatch;
	int		 done_at_close;
	int		 ask_on_close;
	struct answer	 late;		/* the ask made inside on_close */
};

static void
end_close(struct amp_conn *c, const char *reason, void *ctx)
{
	struct end *e = ctx;
	int i;

	e->closed++;
	e->c = NULL;
	snprintf(e->reason, sizeof e->reason, "%s", reason);
	for (i = 0; i < e->nwatch; i++)
		e->done_at_close += e->watch[i].done;
	if (e->ask_on_close)
		ck_assert_int_eq(amp_ask(c, "add", NULL, on_answer, &e->late),
		    -1);
}

static void
end_drain(struct amp_conn *c, void *ctx)
{
	struct end *e = ctx;

	(void)c;
	e->drains++;
}

static const struct amp_conn_cbs end_cbs = { end_close, end_drain };

static void
socketpair_bevs(struct event_base *base, struct bufferevent **b0,
    struct bufferevent **b1)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fatal("socketpair");
	*b0 = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	*b1 = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
}

static void
open_ends(struct event_base *base, struct end *a, struct end *b,
    const struct amp_command *ta, const struct amp_command *tb)
{
	struct bufferevent *b0, *b1;

	socketpair_bevs(base, &b0, &b1);
	memset(a, 0, sizeof *a);
	memset(b, 0, sizeof *b);
	a->c = amp_conn_new(b0, ta, &end_cbs, a);
	b->c = amp_conn_new(b1, tb, &end_cbs, b);
	amp_conn_set_name(a->c, "a");
	amp_conn_set_name(b->c, "b");
}

/* ---- a raw peer -------------------------------------------------------- */

/* One frame from fd within DEADLINE, running base so that the connection
 * under test can write; NULL on EOF or when the deadline passes. */
static json_t *
raw_recv(struct event_base *base, int fd, struct evbuffer *buf)
{
	double end = clock_mono() + DEADLINE;
	struct pollfd pfd = { fd, POLLIN, 0 };
	struct frame_err err;
	json_t *o;
	int rc;

	for (;;) {
		rc = frame_decode(buf, FRAME_LIMIT_MAX, &o, &err);
		ck_assert_msg(rc != -1, "raw peer got a broken frame: %s",
		    err.text);
		if (rc == 1)
			return o;
		if (clock_mono() > end)
			return NULL;
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 5) == 1 && evbuffer_read(buf, fd, 65536) == 0)
			return NULL;
	}
}

static void
raw_send_bytes(struct event_base *base, int fd, const void *p, size_t len)
{
	const unsigned char *b = p;
	double end = clock_mono() + DEADLINE;
	ssize_t n;

	while (len > 0) {
		ck_assert_msg(clock_mono() < end, "raw peer cannot write");
		n = write(fd, b, len);
		if (n == -1) {
			ck_assert_int_eq(errno, EAGAIN);
			event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
			continue;
		}
		b += n;
		len -= (size_t)n;
	}
}

static void
raw_send(struct event_base *base, int fd, const char *json)
{
	struct evbuffer *b = evbuffer_new();
	json_t *o = json_loads(json, 0, NULL);
	struct frame_err err;

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(frame_encode(b, o, FRAME_LIMIT_MAX, &err), 0);
	raw_send_bytes(base, fd, evbuffer_pullup(b, -1),
	    evbuffer_get_length(b));
	json_decref(o);
	evbuffer_free(b);
}

static void
check_is(json_t *got, const char *json)
{
	json_t *want = json_loads(json, 0, NULL);
	char *g = got != NULL ? json_dumps(got, JSON_SORT_KEYS) : NULL;

	ck_assert_ptr_nonnull(want);
	ck_assert_msg(got != NULL && json_equal(got, want), "got %s, want %s",
	    g != NULL ? g : "nothing", json);
	free(g);
	json_decref(want);
}

/* ---- asks and answers -------------------------------------------------- */

START_TEST(test_ask_answer)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer a = { 0 };
	uint64_t fin, fout, bin, bout;

	tu_pair_open(base, &p, NULL, table);
	ck_assert_int_eq(amp_ask(p.a, "add", json_pack("{s:i,s:i}", "a", 2,
	    "b", 3), on_answer, &a), 0);
	ck_assert_int_eq(a.done, 0);		/* never inside the call */
	ck_assert(tu_loop_until(base, &a.done, DEADLINE));
	ck_assert_int_eq(a.done, 1);
	ck_assert_int_eq(a.sum, 5);
	ck_assert_str_eq(json_get_str(a.box, "_answer", ""), "1");
	ck_assert_int_eq(json_object_size(a.box), 2);
	amp_conn_counters(p.a, &fin, &fout, &bin, &bout);
	ck_assert_int_eq(fin, 1);
	ck_assert_int_eq(fout, 1);
	ck_assert_int_eq(bout, 4 + strlen(
	    "{\"a\":2,\"b\":3,\"_command\":\"add\",\"_ask\":\"1\"}"));
	ck_assert_int_eq(bin, 4 + strlen("{\"sum\":5,\"_answer\":\"1\"}"));
	amp_conn_counters(p.b, &fin, &fout, NULL, NULL);
	ck_assert_int_eq(fin, 1);
	ck_assert_int_eq(fout, 1);

	amp_conn_close(p.a, "test over", 0);
	ck_assert(tu_loop_until(base, &p.b_closed, DEADLINE));
	ck_assert_int_eq(p.a_closed, 1);
	ck_assert_str_eq(p.a_reason, "test over");
	ck_assert_str_eq(p.b_reason, "closed by peer");
	json_decref(a.box);
	event_base_free(base);
}
END_TEST

/* Asks are answered in any order and each answer finds its own ask. */
START_TEST(test_many_asks_both_ways)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer ab[50], ba[50];
	int i;

	memset(ab, 0, sizeof ab);
	memset(ba, 0, sizeof ba);
	tu_pair_open(base, &p, table, table);
	for (i = 0; i < 50; i++) {
		ck_assert_int_eq(amp_ask(p.a, "add", json_pack("{s:i,s:i}",
		    "a", i, "b", 1000), on_answer, &ab[i]), 0);
		ck_assert_int_eq(amp_ask(p.b, "add", json_pack("{s:i,s:i}",
		    "a", i, "b", 2000), on_answer, &ba[i]), 0);
	}
	ck_assert_int_eq(loop_until_count(base, &answers_total, 100), 100);
	for (i = 0; i < 50; i++) {
		ck_assert_int_eq(ab[i].done, 1);
		ck_assert_int_eq(ab[i].sum, i + 1000);
		ck_assert_int_eq(ba[i].done, 1);
		ck_assert_int_eq(ba[i].sum, i + 2000);
		json_decref(ab[i].box);
		json_decref(ba[i].box);
	}
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

START_TEST(test_peer_error_passed_through)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer a = { 0 };

	tu_pair_open(base, &p, NULL, table);
	amp_ask(p.a, "refuse", json_pack("{s:i}", "suite", 7), on_answer, &a);
	ck_assert(tu_loop_until(base, &a.done, DEADLINE));
	ck_assert_int_eq(a.done, 1);
	ck_assert_str_eq(a.code, "NO_SUCH_SUITE");
	ck_assert_str_eq(a.text, "no suite 7 loaded");
	ck_assert_ptr_null(a.box);
	ck_assert_int_eq(p.a_closed + p.b_closed, 0);
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

START_TEST(test_unknown_command_keeps_connection)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer u = { 0 }, e = { 0 }, a = { 0 };

	tu_pair_open(base, &p, NULL, table);
	amp_ask(p.a, "nope", NULL, on_answer, &u);
	amp_ask(p.a, "", NULL, on_answer, &e);
	ck_assert(tu_loop_until(base, &e.done, DEADLINE));
	ck_assert_int_eq(u.done, 1);
	ck_assert_str_eq(u.code, AMP_E_UNHANDLED);
	ck_assert_str_eq(u.code, "UNHANDLED");
	ck_assert_str_eq(u.text, "unknown command");
	ck_assert_str_eq(e.code, AMP_E_UNHANDLED);
	ck_assert_str_eq(e.text, "empty command name");
	/* Still open, and still answering. */
	amp_ask(p.a, "add", json_pack("{s:i,s:i}", "a", 1, "b", 1), on_answer,
	    &a);
	ck_assert(tu_loop_until(base, &a.done, DEADLINE));
	ck_assert_int_eq(a.sum, 2);
	ck_assert_int_eq(p.a_closed + p.b_closed, 0);
	json_decref(a.box);
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

/* One bad argument at a time, over the wire; the sentence is exact. */
static const struct {
	const char *box;
	const char *why;	/* NULL: accepted */
} typed_cases[] = {
	{ "{\"s\":1,\"i\":1,\"n\":1,\"b\":true,\"a\":[],\"o\":{},\"x\":0}",
	  "argument 's' must be a string" },
	{ "{\"s\":\"\",\"i\":1.0,\"n\":1,\"b\":true,\"a\":[],\"o\":{},\"x\":0}",
	  "argument 'i' must be an integer" },
	{ "{\"s\":\"\",\"i\":1,\"n\":\"1\",\"b\":true,\"a\":[],\"o\":{},\"x\":0}",
	  "argument 'n' must be a number" },
	{ "{\"s\":\"\",\"i\":1,\"n\":1,\"b\":1,\"a\":[],\"o\":{},\"x\":0}",
	  "argument 'b' must be a boolean" },
	{ "{\"s\":\"\",\"i\":1,\"n\":1,\"b\":true,\"a\":{},\"o\":{},\"x\":0}",
	  "argument 'a' must be an array" },
	{ "{\"s\":\"\",\"i\":1,\"n\":1,\"b\":true,\"a\":[],\"o\":[],\"x\":0}",
	  "argument 'o' must be an object" },
	{ "{\"s\":\"\",\"i\":1,\"n\":1,\"b\":true,\"a\":[],\"o\":{}}",
	  "missing argument 'x'" },
	{ "{\"s\":\"\",\"i\":1,\"n\":1,\"b\":true,\"a\":[],\"o\":{},\"x\":null}",
	  "missing argument 'x'" },
	{ "{\"i\":1,\"n\":1,\"b\":true,\"a\":[],\"o\":{},\"x\":0}",
	  "missing argument 's'" },
	{ "{\"s\":\"\",\"i\":1,\"n\":1,\"b\":true,\"a\":[],\"o\":{},\"x\":0,"
	  "\"opt\":\"7\"}", "argument 'opt' must be an integer" },
	/* Accepted: a real is a number, an optional may be missing or null,
	 * any type is any value, extra keys are ignored. */
	{ "{\"s\":\"\",\"i\":1,\"n\":1.5,\"b\":false,\"a\":[1],\"o\":{},"
	  "\"x\":[]}", NULL },
	{ "{\"s\":\"\",\"i\":-1,\"n\":1,\"b\":true,\"a\":[],\"o\":{},\"x\":\"\","
	  "\"opt\":null,\"extra\":1}", NULL },
};

START_TEST(test_bad_argument_each_type)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer a = { 0 };
	char why[256];
	json_t *box = json_loads(typed_cases[_i].box, 0, NULL);

	ck_assert_ptr_nonnull(box);
	/* The check itself. */
	if (typed_cases[_i].why != NULL) {
		ck_assert_int_eq(amp_check_args(box, typed_args, why,
		    sizeof why), -1);
		ck_assert_str_eq(why, typed_cases[_i].why);
	} else
		ck_assert_int_eq(amp_check_args(box, typed_args, why,
		    sizeof why), 0);

	/* The same over the wire. */
	tu_pair_open(base, &p, NULL, table);
	amp_ask(p.a, "typed", box, on_answer, &a);
	ck_assert(tu_loop_until(base, &a.done, DEADLINE));
	if (typed_cases[_i].why != NULL) {
		ck_assert_str_eq(a.code, AMP_E_BAD_ARGUMENT);
		ck_assert_str_eq(a.code, "BAD_ARGUMENT");
		ck_assert_str_eq(a.text, typed_cases[_i].why);
	} else {
		ck_assert_str_eq(a.code, "");
		ck_assert_ptr_nonnull(a.box);
	}
	json_decref(a.box);
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

START_TEST(test_type_names)
{
	ck_assert_str_eq(amp_type_name(AMP_T_STRING), "a string");
	ck_assert_str_eq(amp_type_name(AMP_T_INT), "an integer");
	ck_assert_str_eq(amp_type_name(AMP_T_NUMBER), "a number");
	ck_assert_str_eq(amp_type_name(AMP_T_BOOL), "a boolean");
	ck_assert_str_eq(amp_type_name(AMP_T_ARRAY), "an array");
	ck_assert_str_eq(amp_type_name(AMP_T_OBJECT), "an object");
	ck_assert_str_eq(amp_type_name(AMP_T_ANY), "any value");
	ck_assert_str_eq(amp_type_name((enum amp_type)0), "an unknown type");
	ck_assert_str_eq(amp_type_name((enum amp_type)42), "an unknown type");
}
END_TEST

START_TEST(test_handler_failure_answers_failed)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer a = { 0 }, b = { 0 };

	tu_pair_open(base, &p, NULL, table);
	amp_ask(p.a, "boom", NULL, on_answer, &a);
	amp_ask(p.a, "add", json_pack("{s:i,s:i}", "a", 1, "b", 2), on_answer,
	    &b);
	ck_assert(tu_loop_until(base, &b.done, DEADLINE));
	ck_assert_int_eq(a.done, 1);
	ck_assert_str_eq(a.code, AMP_E_FAILED);
	ck_assert_str_eq(a.code, "FAILED");
	ck_assert_str_eq(a.text, "command 'boom' failed");
	ck_assert_int_eq(b.sum, 3);	/* only that command failed */
	ck_assert_int_eq(p.a_closed + p.b_closed, 0);
	json_decref(b.box);
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

START_TEST(test_answer_later)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer a = { 0 };
	volatile int *got = &n_kept;

	tu_pair_open(base, &p, NULL, table);
	amp_ask(p.a, "later", NULL, on_answer, &a);
	ck_assert(tu_loop_until(base, got, DEADLINE));
	tu_loop_for(base, 0.05);
	ck_assert_int_eq(a.done, 0);	/* kept: no answer yet */
	ck_assert_ptr_eq(amp_request_conn(kept[0]), p.b);
	ck_assert_str_eq(amp_request_command(kept[0]), "later");
	ck_assert_int_eq(amp_request_wants_answer(kept[0]), 1);
	amp_answer(kept[0], json_pack("{s:i}", "sum", 42));
	ck_assert(tu_loop_until(base, &a.done, DEADLINE));
	ck_assert_int_eq(a.done, 1);
	ck_assert_int_eq(a.sum, 42);
	json_decref(a.box);
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

/* Tells, even unknown, malformed or failing ones, get nothing back: the
 * first frame the raw peer reads answers the ask it sent after them. */
START_TEST(test_tells_get_no_answer)
{
	struct event_base *base = event_base_new();
	struct evbuffer *buf = evbuffer_new();
	struct amp_conn *c;
	struct end e = { 0 };
	json_t *o;
	int fd;

	c = tu_conn_raw(base, table, &end_cbs, &e, &fd);
	raw_send(base, fd, "{\"_command\":\"add\",\"a\":1,\"b\":2}");
	raw_send(base, fd, "{\"_command\":\"nope\"}");
	raw_send(base, fd, "{\"_command\":\"add\",\"a\":\"x\"}");
	raw_send(base, fd, "{\"_command\":\"boom\"}");
	raw_send(base, fd, "{\"_command\":\"refuse\"}");
	raw_send(base, fd, "{\"_command\":7}");
	raw_send(base, fd, "{\"_command\":\"add\",\"_ask\":5,\"a\":1,\"b\":2}");
	raw_send(base, fd, "{\"nothing\":\"here\"}");
	raw_send(base, fd, "{\"_answer\":\"12\"}");
	raw_send(base, fd, "{\"_command\":\"add\",\"_ask\":\"99\",\"a\":4,"
	    "\"b\":5}");
	o = raw_recv(base, fd, buf);
	check_is(o, "{\"_answer\":\"99\",\"sum\":9}");
	json_decref(o);
	ck_assert_int_eq(tells_seen, 1);	/* only the good tell ran */
	ck_assert_int_eq(tell_wanted_answer, 0);
	ck_assert_int_eq(e.closed, 0);
	amp_conn_close(c, "over", 0);
	ck_assert(tu_loop_until(base, &e.closed, DEADLINE));
	close(fd);
	evbuffer_free(buf);
	event_base_free(base);
}
END_TEST

/* The exact boxes on the wire for an answer and for each error. */
START_TEST(test_wire_format)
{
	struct event_base *base = event_base_new();
	struct evbuffer *buf = evbuffer_new();
	struct amp_conn *c;
	struct end e = { 0 };
	json_t *o;
	int fd;

	c = tu_conn_raw(base, table, &end_cbs, &e, &fd);
	raw_send(base, fd, "{\"_command\":\"add\",\"_ask\":\"x-1\",\"a\":1,"
	    "\"b\":1}");
	raw_send(base, fd, "{\"_command\":\"nope\",\"_ask\":\"x-2\"}");
	raw_send(base, fd, "{\"_command\":\"add\",\"_ask\":\"x-3\"}");
	raw_send(base, fd, "{\"_command\":\"boom\",\"_ask\":\"x-4\"}");
	o = raw_recv(base, fd, buf);
	check_is(o, "{\"_answer\":\"x-1\",\"sum\":2}");
	json_decref(o);
	o = raw_recv(base, fd, buf);
	check_is(o, "{\"_error\":\"x-2\",\"_error_code\":\"UNHANDLED\","
	    "\"_error_description\":\"unknown command\"}");
	json_decref(o);
	o = raw_recv(base, fd, buf);
	check_is(o, "{\"_error\":\"x-3\",\"_error_code\":\"BAD_ARGUMENT\","
	    "\"_error_description\":\"missing argument 'a'\"}");
	json_decref(o);
	o = raw_recv(base, fd, buf);
	check_is(o, "{\"_error\":\"x-4\",\"_error_code\":\"FAILED\","
	    "\"_error_description\":\"command 'boom' failed\"}");
	json_decref(o);

	/* And an ask from this side: tags count from 1, as strings. */
	amp_ask(c, "ping", json_pack("{s:i}", "n", 1), on_answer, &(struct
	    answer){ 0 });
	o = raw_recv(base, fd, buf);
	check_is(o, "{\"_command\":\"ping\",\"_ask\":\"1\",\"n\":1}");
	json_decref(o);
	amp_conn_close(c, "over", 0);
	ck_assert(tu_loop_until(base, &e.closed, DEADLINE));
	close(fd);
	evbuffer_free(buf);
	event_base_free(base);
}
END_TEST

/* amp_ask_sync: the reply without the loop; the inline command (a
 * ping) answered meanwhile; everything else kept, in order, for the
 * loop; an error reply; a peer gone. */
START_TEST(test_ask_sync)
{
	struct event_base *base = event_base_new();
	struct evbuffer *buf = evbuffer_new();
	struct amp_conn *c;
	struct end e = { 0 };
	json_t *o, *reply;
	int fd;

	c = tu_conn_raw(base, table, &end_cbs, &e, &fd);
	tells_seen = 0;
	raw_send(base, fd, "{\"_command\":\"count\"}");
	raw_send(base, fd, "{\"_command\":\"add\",\"_ask\":\"p1\",\"a\":1,"
	    "\"b\":1}");
	raw_send(base, fd, "{\"_answer\":\"7\"}");	/* not ours: kept */
	raw_send(base, fd, "{\"_answer\":\"s1\",\"got\":true}");
	raw_send(base, fd, "{\"_command\":\"count\"}");
	ck_assert_int_eq(amp_ask_sync(c, "lock", json_pack("{s:s}", "name",
	    "db"), "add", &reply), 0);
	ck_assert(json_is_true(json_object_get(reply, "got")));
	json_decref(reply);
	ck_assert_int_eq(tells_seen, 0);
	o = raw_recv(base, fd, buf);
	check_is(o, "{\"_command\":\"lock\",\"_ask\":\"s1\",\"name\":\"db\"}");
	json_decref(o);
	o = raw_recv(base, fd, buf);
	check_is(o, "{\"_answer\":\"p1\",\"sum\":2}");
	json_decref(o);
	/* The loop gets the rest, the kept first. */
	ck_assert_int_eq(loop_until_count(base, &tells_seen, 2), 2);
	raw_send(base, fd, "{\"_error\":\"s2\",\"_error_code\":\"NOT_HELD\","
	    "\"_error_description\":\"no\"}");
	ck_assert_int_eq(amp_ask_sync(c, "unlock", NULL, NULL, &reply), 1);
	ck_assert_str_eq(json_get_str(reply, "_error_code", ""), "NOT_HELD");
	json_decref(reply);
	o = raw_recv(base, fd, buf);
	check_is(o, "{\"_command\":\"unlock\",\"_ask\":\"s2\"}");
	json_decref(o);
	close(fd);
	ck_assert_int_eq(amp_ask_sync(c, "lock", NULL, NULL, &reply), -1);
	ck_assert_ptr_null(reply);
	ck_assert(tu_loop_until(base, &e.closed, DEADLINE));
	evbuffer_free(buf);
	event_base_free(base);
}
END_TEST

/* ---- the connection dropping ------------------------------------------- */

START_TEST(test_drop_fails_every_ask_once)
{
	struct event_base *base = event_base_new();
	struct end a, b;
	struct answer ans[5];
	int i;

	memset(ans, 0, sizeof ans);
	open_ends(base, &a, &b, NULL, table);
	a.watch = ans;
	a.nwatch = 5;
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(amp_ask(a.c, "slow", NULL, on_answer, &ans[i]),
		    0);
	ck_assert_int_eq(loop_until_count(base, &n_kept, 5), 5);
	amp_conn_close(b.c, "bye", 0);
	ck_assert(tu_loop_until(base, &a.closed, DEADLINE));
	tu_loop_for(base, 0.05);	/* nothing more may come */
	ck_assert_int_eq(a.closed, 1);
	ck_assert_int_eq(b.closed, 1);
	ck_assert_str_eq(a.reason, "closed by peer");
	ck_assert_str_eq(b.reason, "bye");
	ck_assert_int_eq(a.done_at_close, 5);	/* all failed before on_close */
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(ans[i].done, 1);
		ck_assert_str_eq(ans[i].code, AMP_E_CONNECTION_LOST);
		ck_assert_str_eq(ans[i].code, "CONNECTION_LOST");
		ck_assert_str_eq(ans[i].text,
		    "connection to a lost: closed by peer");
	}
	/* The far end's kept requests outlive it and only free. */
	for (i = 0; i < 5; i++) {
		ck_assert_ptr_null(amp_request_conn(kept[i]));
		ck_assert_str_eq(amp_request_command(kept[i]), "slow");
		if (i == 0)
			amp_answer(kept[i], json_pack("{s:i}", "sum", 1));
		else if (i == 1)
			amp_fail(kept[i], "X", "late");
		else
			amp_request_drop(kept[i]);
	}
	event_base_free(base);
}
END_TEST

/* An ask on a closing connection is not sent, and its callback still
 * runs exactly once, from the loop, with CONNECTION_LOST. */
START_TEST(test_ask_while_closing)
{
	struct event_base *base = event_base_new();
	struct end a, b;
	struct answer ans = { 0 };

	open_ends(base, &a, &b, NULL, table);
	amp_conn_close(a.c, "going away", 0);
	ck_assert_int_eq(amp_conn_closing(a.c), 1);
	ck_assert_int_eq(amp_ask(a.c, "add", NULL, on_answer, &ans), -1);
	ck_assert_int_eq(amp_tell(a.c, "add", NULL), -1);
	ck_assert_int_eq(ans.done, 0);
	ck_assert(tu_loop_until(base, &a.closed, DEADLINE));
	ck_assert_int_eq(ans.done, 1);
	ck_assert_str_eq(ans.code, AMP_E_CONNECTION_LOST);
	ck_assert_str_eq(ans.text, "connection to a lost: going away");
	tu_loop_until(base, &b.closed, DEADLINE);
	event_base_free(base);
}
END_TEST

struct reasker {
	struct answer	 first;
	struct answer	 second;
};

static void
on_answer_reask(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct reasker *r = arg;

	on_answer(c, ans, err, &r->first);
	/* Retry at once, as a naive caller would, on the dying connection. */
	ck_assert_int_eq(amp_ask(c, "add", NULL, on_answer, &r->second), -1);
}

/* Asks made from a CONNECTION_LOST callback and from on_close are failed
 * too, each exactly once. */
START_TEST(test_ask_from_callbacks_while_finishing)
{
	struct event_base *base = event_base_new();
	struct end a, b;
	struct reasker r;

	memset(&r, 0, sizeof r);
	open_ends(base, &a, &b, NULL, table);
	a.ask_on_close = 1;
	amp_ask(a.c, "slow", NULL, on_answer_reask, &r);
	ck_assert_int_eq(loop_until_count(base, &n_kept, 1), 1);
	amp_conn_close(b.c, "bye", 0);
	ck_assert(tu_loop_until(base, &a.closed, DEADLINE));
	tu_loop_for(base, 0.05);
	ck_assert_int_eq(r.first.done, 1);
	ck_assert_str_eq(r.first.code, AMP_E_CONNECTION_LOST);
	ck_assert_int_eq(r.second.done, 1);
	ck_assert_str_eq(r.second.code, AMP_E_CONNECTION_LOST);
	ck_assert_int_eq(a.late.done, 1);
	ck_assert_str_eq(a.late.code, AMP_E_CONNECTION_LOST);
	ck_assert_str_eq(a.late.text, "connection to a lost: closed by peer");
	amp_request_drop(kept[0]);
	event_base_free(base);
}
END_TEST

/* An ask too large to frame is not sent; its callback runs once from the
 * loop with FAILED, and the connection carries on. */
START_TEST(test_ask_too_large)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer big = { 0 }, a = { 0 };
	char *s = xmalloc(70000), want[200];
	json_t *args;
	size_t n;

	memset(s, 'x', 69999);
	s[69999] = '\0';
	tu_pair_open(base, &p, NULL, table);
	args = json_pack("{s:s}", "blob", s);
	json_object_set_new(args, "_command", json_string("add"));
	json_object_set_new(args, "_ask", json_string("1"));
	n = json_dumpb(args, NULL, 0, JSON_COMPACT);
	json_object_del(args, "_command");
	json_object_del(args, "_ask");
	ck_assert_int_eq(amp_ask(p.a, "add", args, on_answer, &big), -1);
	ck_assert_int_eq(big.done, 0);
	ck_assert_int_eq(amp_ask(p.a, "add", json_pack("{s:i,s:i}", "a", 1,
	    "b", 2), on_answer, &a), 0);
	ck_assert(tu_loop_until(base, &a.done, DEADLINE));
	ck_assert(tu_loop_until(base, &big.done, DEADLINE));
	ck_assert_int_eq(big.done, 1);
	ck_assert_str_eq(big.code, AMP_E_FAILED);
	snprintf(want, sizeof want, "ask 'add' not sent: frame of %zu bytes "
	    "is over the limit of 65536 bytes", n);
	ck_assert_str_eq(big.text, want);
	ck_assert_int_eq(a.sum, 3);
	ck_assert_int_eq(p.a_closed + p.b_closed, 0);
	/* A tell too large is refused at once. */
	ck_assert_int_eq(amp_tell(p.a, "add", json_pack("{s:s}", "blob", s)),
	    -1);
	json_decref(a.box);
	free(s);
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

/* An answer too large to frame reaches the asker as FAILED, instead of
 * leaving it waiting for ever. */
START_TEST(test_answer_too_large)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer big = { 0 }, ok = { 0 };
	char want[200];
	json_t *box;
	char *s = xmalloc(70001);
	size_t n;

	memset(s, 'x', 70000);
	s[70000] = '\0';
	box = json_pack("{s:s,s:s}", "blob", s, "_answer", "1");
	n = json_dumpb(box, NULL, 0, JSON_COMPACT);
	json_decref(box);
	free(s);

	tu_pair_open(base, &p, NULL, table);
	amp_ask(p.a, "big", json_pack("{s:i}", "n", 70000), on_answer, &big);
	amp_ask(p.a, "big", json_pack("{s:i}", "n", 100), on_answer, &ok);
	ck_assert(tu_loop_until(base, &ok.done, DEADLINE));
	ck_assert_int_eq(big.done, 1);
	ck_assert_str_eq(big.code, AMP_E_FAILED);
	snprintf(want, sizeof want, "answer to 'big' not sent: frame of %zu "
	    "bytes is over the limit of 65536 bytes", n);
	ck_assert_str_eq(big.text, want);
	ck_assert_uint_eq(strlen(json_get_str(ok.box, "blob", "")), 100);
	/* With the limit raised on both ends, the same answer goes through. */
	amp_conn_set_limit(p.a, FRAME_LIMIT_DEFAULT);
	amp_conn_set_limit(p.b, FRAME_LIMIT_DEFAULT);
	memset(&big, 0, sizeof big);
	amp_ask(p.a, "big", json_pack("{s:i}", "n", 70000), on_answer, &big);
	ck_assert(tu_loop_until(base, &big.done, DEADLINE));
	ck_assert_str_eq(big.code, "");
	ck_assert_uint_eq(strlen(json_get_str(big.box, "blob", "")), 70000);
	json_decref(ok.box);
	json_decref(big.box);
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

/* A handler's error description is cut to 2048 bytes, between
 * characters, so that the error always fits in a frame. */
START_TEST(test_long_error_description_cut)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer ascii = { 0 }, multi = { 0 };

	tu_pair_open(base, &p, NULL, table);
	amp_ask(p.a, "long_error", json_pack("{s:i}", "n", 100000),
	    on_answer, &ascii);
	/* ">" then 2-byte characters: byte 2048 is a character's middle. */
	amp_ask(p.a, "long_error", json_pack("{s:i,s:s}", "n", 30000, "unit",
	    "\xc3\xa9"), on_answer, &multi);
	ck_assert(tu_loop_until(base, &multi.done, DEADLINE));
	ck_assert_int_eq(ascii.done, 1);
	ck_assert_str_eq(ascii.code, "LONG");
	ck_assert_uint_eq(ascii.text_len, 2048);
	ck_assert_str_eq(multi.code, "LONG");
	ck_assert_uint_eq(multi.text_len, 2047);
	ck_assert_uint_eq(utf8_valid_prefix(multi.text, multi.text_len),
	    2047);
	ck_assert_int_eq(p.a_closed + p.b_closed, 0);
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

/* A broken frame closes the connection, the reason names the error, and
 * the asks outstanding on it fail with that reason. */
static const struct {
	const char *bytes;
	size_t len;
	const char *reason;
} broken[] = {
	{ "\0\0\0\0", 4,
	  "broken frame (FRAME_EMPTY): frame of length zero" },
	{ "\x80\0\0\0", 4,	/* no payload follows: refused at the header */
	  "broken frame (FRAME_TOO_LONG): frame of 2147483648 bytes is over "
	  "the limit of 65536 bytes" },
	{ "\0\0\0\3{}x", 7,
	  "broken frame (FRAME_NOT_JSON): frame is not JSON at byte 3: end "
	  "of file expected near 'x'" },
	{ "\0\0\0\3[1]", 7,
	  "broken frame (FRAME_NOT_OBJECT): frame holds JSON that is not an "
	  "object" },
	{ "\0\0\0\x08{\"a\":\"\xff\"}", 12,
	  "broken frame (FRAME_BAD_UTF8): frame is not valid UTF-8 at byte 6: "
	  "unable to decode byte 0xff near '\"'" },
	{ "\0\0\0\x0d{\"a\":1,\"a\":2}", 17,
	  "broken frame (FRAME_DUPLICATE_KEY): frame has a duplicate key: "
	  "duplicate object key near '\"a\"'" },
	{ NULL, 0, NULL },	/* balanced, but 33 deep: built below */
};

START_TEST(test_broken_frame_closes)
{
	struct event_base *base = event_base_new();
	struct amp_conn *c;
	struct end e = { 0 };
	struct answer a = { 0 };
	char want[400];
	const char *reason = broken[_i].reason;
	int fd;

	c = tu_conn_raw(base, table, &end_cbs, &e, &fd);
	ck_assert_int_eq(amp_ask(c, "x", NULL, on_answer, &a), 0);
	if (reason == NULL) {
		/* Build the 33-deep frame properly. */
		static char deep[200];
		char *p = deep + 4;
		int i;

		p += sprintf(p, "{\"a\":");
		for (i = 0; i < 32; i++)
			*p++ = '[';
		for (i = 0; i < 32; i++)
			*p++ = ']';
		*p++ = '}';
		deep[0] = deep[1] = deep[2] = 0;
		deep[3] = (char)(p - deep - 4);
		raw_send_bytes(base, fd, deep, (size_t)(p - deep));
		reason = "broken frame (FRAME_TOO_DEEP): frame nests objects "
		    "and arrays deeper than 32";
	} else
		raw_send_bytes(base, fd, broken[_i].bytes, broken[_i].len);
	ck_assert(tu_loop_until(base, &e.closed, DEADLINE));
	ck_assert_str_eq(e.reason, reason);
	ck_assert_int_eq(a.done, 1);
	ck_assert_str_eq(a.code, AMP_E_CONNECTION_LOST);
	snprintf(want, sizeof want, "connection to peer lost: %s", reason);
	ck_assert_str_eq(a.text, want);
	close(fd);
	event_base_free(base);
}
END_TEST

/* Frames between the two limits are refused until the limit is raised. */
START_TEST(test_limit_is_the_connections)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	char *s = xmalloc(100000);

	memset(s, 'y', 99999);
	s[99999] = '\0';
	tu_pair_open(base, &p, table, table);
	ck_assert_uint_eq(amp_conn_limit(p.a), FRAME_LIMIT_PREAUTH);
	amp_conn_set_limit(p.a, FRAME_LIMIT_MAX * 2);
	ck_assert_uint_eq(amp_conn_limit(p.a), FRAME_LIMIT_MAX);
	amp_conn_set_limit(p.a, FRAME_LIMIT_DEFAULT);
	ck_assert_uint_eq(amp_conn_limit(p.a), FRAME_LIMIT_DEFAULT);

	/* b has not raised its limit: it refuses the frame and closes. */
	ck_assert_int_eq(amp_tell(p.a, "count", json_pack("{s:s}", "s", s)),
	    0);
	ck_assert(tu_loop_until(base, &p.b_closed, DEADLINE));
	ck_assert_int_eq(tells_seen, 0);
	ck_assert_str_eq(p.b_reason, "broken frame (FRAME_TOO_LONG): frame of "
	    "100026 bytes is over the limit of 65536 bytes");
	ck_assert(tu_loop_until(base, &p.a_closed, DEADLINE));

	/* Raised, the same frame is taken. */
	tu_pair_open(base, &p, table, table);
	amp_conn_set_limit(p.a, FRAME_LIMIT_DEFAULT);
	amp_conn_set_limit(p.b, FRAME_LIMIT_DEFAULT);
	ck_assert_int_eq(amp_tell(p.a, "count", json_pack("{s:s}", "s", s)),
	    0);
	ck_assert(tu_loop_until(base, &tells_seen, DEADLINE));
	ck_assert_int_eq(p.b_closed, 0);
	free(s);
	amp_conn_close(p.a, "over", 0);
	tu_loop_until(base, &p.b_closed, DEADLINE);
	event_base_free(base);
}
END_TEST

/* ---- closing ----------------------------------------------------------- */

/* Close with flush: everything queued before the close arrives, then the
 * peer sees the close. */
START_TEST(test_close_with_flush_delivers)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	char *s = xmalloc(1001);
	int i;

	memset(s, 'z', 1000);
	s[1000] = '\0';
	tu_pair_open(base, &p, NULL, table);
	/* About 2 MB: far more than the socket buffers hold. */
	for (i = 0; i < 2000; i++)
		ck_assert_int_eq(amp_tell(p.a, "count",
		    json_pack("{s:s,s:i}", "s", s, "i", i)), 0);
	ck_assert_uint_gt(amp_conn_output_len(p.a), 1000000);
	amp_conn_close(p.a, "done sending", 1);
	amp_conn_close(p.a, "done sending", 1);	/* twice is harmless */
	ck_assert(tu_loop_until(base, &p.b_closed, DEADLINE));
	ck_assert_int_eq(tells_seen, 2000);
	ck_assert_str_eq(p.b_reason, "closed by peer");
	ck_assert(tu_loop_until(base, &p.a_closed, DEADLINE));
	ck_assert_str_eq(p.a_reason, "done sending");
	free(s);
	event_base_free(base);
}
END_TEST

/* A second close without flush cuts short a flush the peer never reads. */
START_TEST(test_close_without_flush_cuts_flush)
{
	struct event_base *base = event_base_new();
	struct amp_conn *c;
	struct end e = { 0 };
	char *s = xmalloc(60001);
	int fd, i;

	memset(s, 'z', 60000);
	s[60000] = '\0';
	c = tu_conn_raw(base, table, &end_cbs, &e, &fd);
	for (i = 0; i < 20; i++)
		amp_tell(c, "count", json_pack("{s:s}", "s", s));
	amp_conn_close(c, "flushing", 1);
	tu_loop_for(base, 0.1);
	ck_assert_int_eq(e.closed, 0);		/* still flushing */
	amp_conn_close(c, "give up", 0);
	ck_assert(tu_loop_until(base, &e.closed, DEADLINE));
	ck_assert_str_eq(e.reason, "flushing");
	close(fd);
	free(s);
	event_base_free(base);
}
END_TEST

/* A flush the peer never reads ends after AMP_FLUSH_TIMEOUT. */
START_TEST(test_flush_gives_up)
{
	struct event_base *base = event_base_new();
	struct amp_conn *c;
	struct end e = { 0 };
	char *s = xmalloc(60001);
	int fd, i;

	memset(s, 'z', 60000);
	s[60000] = '\0';
	c = tu_conn_raw(base, table, &end_cbs, &e, &fd);
	for (i = 0; i < 20; i++)
		amp_tell(c, "count", json_pack("{s:s}", "s", s));
	amp_conn_close(c, "flushing", 1);
	ck_assert(tu_loop_until(base, &e.closed, AMP_FLUSH_TIMEOUT + DEADLINE));
	ck_assert_str_eq(e.reason, "flushing");
	close(fd);
	free(s);
	event_base_free(base);
}
END_TEST

static int
h_close_twice(struct amp_request *req, json_t *box)
{
	struct amp_conn *c = amp_request_conn(req);

	(void)box;
	amp_conn_close(c, "handler closed it", 0);
	amp_conn_close(c, "and again", 0);
	ck_assert_int_eq(amp_conn_closing(c), 1);
	return -1;	/* FAILED cannot be sent: closing */
}

static const struct amp_command close_table[] = {
	{ "close", h_close_twice, NULL },
	{ "count", h_count, NULL },
	{ NULL, NULL, NULL }
};

/* Closing from inside a handler is deferred: the handler finishes, the
 * frames after it are not handled, on_close runs once. */
START_TEST(test_close_inside_handler)
{
	struct event_base *base = event_base_new();
	struct end a, b;
	struct answer ans = { 0 };

	open_ends(base, &a, &b, NULL, close_table);
	amp_ask(a.c, "close", NULL, on_answer, &ans);
	amp_tell(a.c, "count", NULL);
	ck_assert(tu_loop_until(base, &a.closed, DEADLINE));
	ck_assert(tu_loop_until(base, &b.closed, DEADLINE));
	tu_loop_for(base, 0.05);
	ck_assert_int_eq(b.closed, 1);
	ck_assert_str_eq(b.reason, "handler closed it");
	ck_assert_int_eq(tells_seen, 0);
	ck_assert_int_eq(ans.done, 1);
	ck_assert_str_eq(ans.code, AMP_E_CONNECTION_LOST);
	event_base_free(base);
}
END_TEST

/* ---- flow control ------------------------------------------------------ */

static int
h_pause_first(struct amp_request *req, json_t *box)
{
	(void)box;
	if (++tells_seen == 1)
		amp_conn_pause(amp_request_conn(req));
	return 0;
}

static const struct amp_command pause_table[] = {
	{ "count", h_pause_first, NULL },
	{ NULL, NULL, NULL }
};

/* Frames already read into the buffer when the handler paused are
 * handled on resume, without waiting for another byte from the peer. */
START_TEST(test_pause_resume_buffered)
{
	struct event_base *base = event_base_new();
	struct evbuffer *all = evbuffer_new();
	struct amp_conn *c;
	struct end e = { 0 };
	struct frame_err err;
	json_t *o = json_pack("{s:s}", "_command", "count");
	int fd, i;

	c = tu_conn_raw(base, pause_table, &end_cbs, &e, &fd);
	for (i = 0; i < 5; i++)
		frame_encode(all, o, 1024, &err);
	/* All five in one write, so they arrive in one read. */
	raw_send_bytes(base, fd, evbuffer_pullup(all, -1),
	    evbuffer_get_length(all));
	ck_assert(tu_loop_until(base, &tells_seen, DEADLINE));
	tu_loop_for(base, 0.1);
	ck_assert_int_eq(tells_seen, 1);		/* paused */
	amp_conn_resume(c);
	amp_conn_resume(c);				/* twice is harmless */
	ck_assert_int_eq(loop_until_count(base, &tells_seen, 5), 5);
	ck_assert_int_eq(e.closed, 0);
	/* And reading goes on after resume. */
	raw_send_bytes(base, fd, evbuffer_pullup(all, -1), 4 + 20);
	ck_assert_int_eq(loop_until_count(base, &tells_seen, 6), 6);
	amp_conn_close(c, "over", 0);
	tu_loop_until(base, &e.closed, DEADLINE);
	json_decref(o);
	evbuffer_free(all);
	close(fd);
	event_base_free(base);
}
END_TEST

/* Tells of about 60 KiB until the connection says it is congested. */
static int
fill_until_congested(struct amp_conn *c)
{
	char *s = xmalloc(60001);
	int n = 0;

	memset(s, 'q', 60000);
	s[60000] = '\0';
	while (!amp_conn_congested(c) && n < 1000) {
		ck_assert_int_eq(amp_tell(c, "count",
		    json_pack("{s:s}", "s", s)), 0);
		n++;
	}
	free(s);
	return n;
}

static void
discard_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[65536];

	(void)what;
	(void)arg;
	while (read(fd, buf, sizeof buf) > 0)
		;
}

/* With a peer that does not read, the sender sees congestion; when the
 * peer reads, on_drain fires once and congestion ends. */
START_TEST(test_backpressure)
{
	struct event_base *base = event_base_new();
	struct amp_conn *c;
	struct end e = { 0 };
	struct event *reader;
	int fd, n;

	c = tu_conn_raw(base, table, &end_cbs, &e, &fd);
	ck_assert_int_eq(amp_conn_congested(c), 0);
	n = fill_until_congested(c);
	ck_assert_int_eq(amp_conn_congested(c), 1);
	ck_assert_uint_gt(amp_conn_output_len(c), AMP_OUTPUT_HIGH);
	ck_assert_int_lt(n, 1000);
	tu_loop_for(base, 0.1);		/* the peer reads nothing */
	ck_assert_int_eq(e.drains, 0);
	ck_assert_int_eq(amp_conn_congested(c), 1);

	reader = event_new(base, fd, EV_READ | EV_PERSIST, discard_cb, NULL);
	event_add(reader, NULL);
	ck_assert(tu_loop_until(base, &e.drains, DEADLINE));
	ck_assert_int_eq(e.drains, 1);
	ck_assert_int_eq(amp_conn_congested(c), 0);
	ck_assert_uint_le(amp_conn_output_len(c), AMP_OUTPUT_LOW);
	tu_loop_for(base, 0.05);
	ck_assert_int_eq(e.drains, 1);	/* once per congestion */
	event_free(reader);
	amp_conn_close(c, "over", 0);
	tu_loop_until(base, &e.closed, DEADLINE);
	close(fd);
	event_base_free(base);
}
END_TEST

/* amp_conn_flush_now writes what is queued before the loop runs. */
START_TEST(test_flush_now)
{
	struct event_base *base = event_base_new();
	struct evbuffer *buf = evbuffer_new();
	struct amp_conn *c;
	struct end e = { 0 };
	struct frame_err err;
	json_t *o;
	int fd, i;

	c = tu_conn_raw(base, table, &end_cbs, &e, &fd);
	ck_assert_int_eq(amp_conn_flush_now(c), 0);	/* nothing queued */
	for (i = 0; i < 3; i++)
		amp_tell(c, "count", json_pack("{s:i}", "i", i));
	ck_assert_uint_gt(amp_conn_output_len(c), 0);
	ck_assert_int_eq(amp_conn_flush_now(c), 0);
	ck_assert_uint_eq(amp_conn_output_len(c), 0);
	/* Read without running the loop: the bytes are already there. */
	while (evbuffer_read(buf, fd, 65536) > 0)
		;
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(frame_decode(buf, 1024, &o, &err), 1);
		ck_assert_int_eq(json_get_int(o, "i", -1), i);
		json_decref(o);
	}
	ck_assert_uint_eq(evbuffer_get_length(buf), 0);
	amp_conn_close(c, "over", 0);
	ck_assert_int_eq(amp_conn_flush_now(c), -1);	/* closing */
	tu_loop_until(base, &e.closed, DEADLINE);
	evbuffer_free(buf);
	close(fd);
	event_base_free(base);
}
END_TEST

/* When amp_conn_flush_now is what empties a congested connection, the
 * bufferevent never calls back: on_drain must still come. */
START_TEST(test_flush_now_ends_congestion)
{
	struct event_base *base = event_base_new();
	struct amp_conn *c;
	struct end e = { 0 };
	char buf[65536];
	int fd, rc = 1, rounds = 0;
	double end;

	c = tu_conn_raw(base, table, &end_cbs, &e, &fd);
	fill_until_congested(c);
	ck_assert_int_eq(amp_conn_congested(c), 1);
	/* The peer reads, and only flush_now writes: no loop. */
	end = clock_mono() + DEADLINE;
	while (rc != 0 && clock_mono() < end) {
		while (read(fd, buf, sizeof buf) > 0)
			;
		rc = amp_conn_flush_now(c);
		ck_assert_int_ne(rc, -1);
		rounds++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(amp_conn_output_len(c), 0);
	ck_assert_int_eq(e.drains, 0);		/* from the loop, not inside */
	ck_assert(tu_loop_until(base, &e.drains, DEADLINE));
	ck_assert_int_eq(e.drains, 1);
	ck_assert_int_eq(amp_conn_congested(c), 0);
	amp_conn_close(c, "over", 0);
	tu_loop_until(base, &e.closed, DEADLINE);
	close(fd);
	event_base_free(base);
}
END_TEST

/* A filter that XORs every byte, standing for TLS: the socket carries
 * transformed bytes. */
static enum bufferevent_filter_result
xor_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *ctx)
{
	unsigned char b[4096];
	size_t len = evbuffer_get_length(src);
	int n, i;

	(void)limit;
	(void)mode;
	(void)ctx;
	while (len > 0) {
		n = (int)evbuffer_copyout(src, b, len < sizeof b ? len :
		    sizeof b);
		if (n <= 0 || evbuffer_drain(src, (size_t)n) == -1)
			return BEV_ERROR;	/* never spin on a stuck one */
		for (i = 0; i < n; i++)
			b[i] ^= 0x5a;
		evbuffer_add(dst, b, (size_t)n);
		len -= (size_t)n;
	}
	return BEV_OK;
}

/* Under a filter (or TLS) flush_now must not write plain bytes to the
 * socket behind it: the loop sends them, transformed. */
START_TEST(test_flush_now_under_filter)
{
	struct event_base *base = event_base_new();
	struct bufferevent *b0, *b1, *f0, *f1;
	struct end a, b;
	struct answer ans = { 0 };
	int i;

	socketpair_bevs(base, &b0, &b1);
	f0 = bufferevent_filter_new(b0, xor_filter, xor_filter,
	    BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
	f1 = bufferevent_filter_new(b1, xor_filter, xor_filter,
	    BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.c = amp_conn_new(f0, NULL, &end_cbs, &a);
	b.c = amp_conn_new(f1, table, &end_cbs, &b);
	for (i = 0; i < 3; i++)
		amp_tell(a.c, "count", json_pack("{s:i}", "i", i));
	amp_conn_flush_now(a.c);
	amp_ask(a.c, "add", json_pack("{s:i,s:i}", "a", 1, "b", 1), on_answer,
	    &ans);
	ck_assert(tu_loop_until(base, &ans.done, DEADLINE));
	ck_assert_msg(b.closed == 0, "b closed: %s", b.reason);
	ck_assert_int_eq(ans.sum, 2);
	ck_assert_int_eq(tells_seen, 3);
	json_decref(ans.box);
	amp_conn_close(a.c, "over", 0);
	ck_assert(tu_loop_until(base, &b.closed, DEADLINE));
	event_base_free(base);
}
END_TEST

/* A TLS context; the server's has a throw-away self-signed certificate. */
static SSL_CTX *
tls_ctx(int server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() :
	    TLS_client_method());
	EVP_PKEY *key;
	X509 *x;

	ck_assert_ptr_nonnull(ctx);
	if (!server) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	key = EVP_EC_gen("P-256");
	x = X509_new();
	ck_assert_ptr_nonnull(key);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"distmgr-test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, x), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

/* Over TLS, flush_now must leave the bytes to the bufferevent, which
 * encrypts them: written to the socket directly they would break the
 * handshake or the record stream. */
START_TEST(test_flush_now_under_tls)
{
	struct event_base *base = event_base_new();
	SSL_CTX *sctx = tls_ctx(1), *cctx = tls_ctx(0);
	struct bufferevent *bc, *bs;
	struct end a, b;
	struct answer ans = { 0 };
	int sv[2], i;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	bc = bufferevent_openssl_socket_new(base, sv[0], SSL_new(cctx),
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	bs = bufferevent_openssl_socket_new(base, sv[1], SSL_new(sctx),
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.c = amp_conn_new(bc, NULL, &end_cbs, &a);
	b.c = amp_conn_new(bs, table, &end_cbs, &b);
	/* Before the handshake, then after it has had a chance to run. */
	for (i = 0; i < 3; i++)
		amp_tell(a.c, "count", json_pack("{s:i}", "i", i));
	ck_assert_int_eq(amp_conn_flush_now(a.c), 1);	/* left to the loop */
	ck_assert_uint_gt(amp_conn_output_len(a.c), 0);
	ck_assert_int_eq(loop_until_count(base, &tells_seen, 3), 3);
	amp_tell(a.c, "count", NULL);
	amp_conn_flush_now(a.c);
	amp_ask(a.c, "add", json_pack("{s:i,s:i}", "a", 2, "b", 2), on_answer,
	    &ans);
	ck_assert(tu_loop_until(base, &ans.done, DEADLINE));
	ck_assert_msg(b.closed == 0, "b closed: %s", b.reason);
	ck_assert_int_eq(ans.sum, 4);
	ck_assert_int_eq(tells_seen, 4);
	json_decref(ans.box);
	amp_conn_close(a.c, "over", 0);
	ck_assert(tu_loop_until(base, &b.closed, DEADLINE));
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	event_base_free(base);
}
END_TEST

/* ---- the split constructor --------------------------------------------- */

static struct bufferevent *
pipe_bev(struct event_base *base, int fd)
{
	fd_set_nonblock(fd, 1);
	fd_set_cloexec(fd, 1);
	return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
}

START_TEST(test_split_over_pipes)
{
	struct event_base *base = event_base_new();
	struct end a, b;
	struct answer ab = { 0 }, ba = { 0 }, lost = { 0 };
	int p1[2], p2[2];

	/* p1: a writes, b reads; p2: b writes, a reads. */
	ck_assert_int_eq(pipe(p1), 0);
	ck_assert_int_eq(pipe(p2), 0);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.c = amp_conn_new_split(pipe_bev(base, p2[0]), pipe_bev(base, p1[1]),
	    table, &end_cbs, &a);
	b.c = amp_conn_new_split(pipe_bev(base, p1[0]), pipe_bev(base, p2[1]),
	    table, &end_cbs, &b);
	amp_conn_set_name(a.c, "a");
	amp_conn_set_name(b.c, "b");
	ck_assert_ptr_nonnull(amp_conn_bev(a.c));
	amp_ask(a.c, "add", json_pack("{s:i,s:i}", "a", 20, "b", 1),
	    on_answer, &ab);
	amp_ask(b.c, "add", json_pack("{s:i,s:i}", "a", 30, "b", 2),
	    on_answer, &ba);
	ck_assert(tu_loop_until(base, &ab.done, DEADLINE));
	ck_assert(tu_loop_until(base, &ba.done, DEADLINE));
	ck_assert_int_eq(ab.sum, 21);
	ck_assert_int_eq(ba.sum, 32);
	/* Closing a closes both its pipes: b's reads end, its ask fails. */
	amp_ask(b.c, "slow", NULL, on_answer, &lost);
	ck_assert_int_eq(loop_until_count(base, &n_kept, 1), 1);
	amp_conn_close(a.c, "a is done", 0);
	ck_assert(tu_loop_until(base, &b.closed, DEADLINE));
	ck_assert_str_eq(b.reason, "closed by peer");
	ck_assert_int_eq(lost.done, 1);
	ck_assert_str_eq(lost.code, AMP_E_CONNECTION_LOST);
	ck_assert_str_eq(lost.text, "connection to b lost: closed by peer");
	amp_request_drop(kept[0]);
	json_decref(ab.box);
	json_decref(ba.box);
	event_base_free(base);
}
END_TEST

/* ---- accessors --------------------------------------------------------- */

START_TEST(test_accessors)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct answer u = { 0 }, a = { 0 };
	int x;

	tu_pair_open(base, &p, NULL, NULL);
	ck_assert_str_eq(amp_conn_name(p.a), "a");
	amp_conn_set_name(p.a, "w3");
	ck_assert_str_eq(amp_conn_name(p.a), "w3");
	amp_conn_set_name(p.a, amp_conn_name(p.a));	/* its own name */
	ck_assert_str_eq(amp_conn_name(p.a), "w3");
	ck_assert_ptr_eq(amp_conn_ctx(p.a), &p);
	amp_conn_set_ctx(p.a, &x);
	ck_assert_ptr_eq(amp_conn_ctx(p.a), &x);
	amp_conn_set_ctx(p.a, &p);
	ck_assert_ptr_nonnull(amp_conn_bev(p.a));
	ck_assert_int_eq(amp_conn_closing(p.a), 0);
	/* No table yet: everything is unknown. Then one is set. */
	amp_ask(p.a, "add", NULL, on_answer, &u);
	ck_assert(tu_loop_until(base, &u.done, DEADLINE));
	ck_assert_str_eq(u.code, AMP_E_UNHANDLED);
	amp_conn_set_table(p.b, table);
	amp_ask(p.a, "add", json_pack("{s:i,s:i}", "a", 1, "b", 2), on_answer,
	    &a);
	ck_assert(tu_loop_until(base, &a.done, DEADLINE));
	ck_assert_int_eq(a.sum, 3);
	json_decref(a.box);
	amp_conn_close(p.b, "over", 0);
	ck_assert(tu_loop_until(base, &p.a_closed, DEADLINE));
	event_base_free(base);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("amp");
	TCase *tc;
	SRunner *sr;
	int failed;

	/* A peer that closes must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);

	tc = tcase_create("ask");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ask_answer);
	tcase_add_test(tc, test_many_asks_both_ways);
	tcase_add_test(tc, test_peer_error_passed_through);
	tcase_add_test(tc, test_unknown_command_keeps_connection);
	tcase_add_loop_test(tc, test_bad_argument_each_type, 0,
	    DM_NELEM(typed_cases));
	tcase_add_test(tc, test_type_names);
	tcase_add_test(tc, test_handler_failure_answers_failed);
	tcase_add_test(tc, test_answer_later);
	tcase_add_test(tc, test_tells_get_no_answer);
	tcase_add_test(tc, test_wire_format);
	tcase_add_test(tc, test_ask_sync);
	tcase_add_test(tc, test_ask_too_large);
	tcase_add_test(tc, test_answer_too_large);
	tcase_add_test(tc, test_long_error_description_cut);
	tcase_add_test(tc, test_accessors);
	suite_add_tcase(s, tc);

	tc = tcase_create("drop");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_drop_fails_every_ask_once);
	tcase_add_test(tc, test_ask_while_closing);
	tcase_add_test(tc, test_ask_from_callbacks_while_finishing);
	tcase_add_loop_test(tc, test_broken_frame_closes, 0,
	    DM_NELEM(broken));
	tcase_add_test(tc, test_limit_is_the_connections);
	tcase_add_test(tc, test_close_with_flush_delivers);
	tcase_add_test(tc, test_close_without_flush_cuts_flush);
	tcase_add_test(tc, test_flush_gives_up);
	tcase_add_test(tc, test_close_inside_handler);
	suite_add_tcase(s, tc);

	tc = tcase_create("flow");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_pause_resume_buffered);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_flush_now);
	tcase_add_test(tc, test_flush_now_ends_congestion);
	tcase_add_test(tc, test_flush_now_under_filter);
	tcase_add_test(tc, test_flush_now_under_tls);
	tcase_add_test(tc, test_split_over_pipes);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

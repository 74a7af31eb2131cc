/*
 * test_stream.c - payloads larger than a frame: reassembly of binary and
 * text chunks under a cap, every way a chunk can be refused, text cut
 * only between characters, chunks that always fit the connection's frame
 * limit, and the paced sender under congestion.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "testutil.h"

#define DEADLINE 10.0

/* ---- hand-made chunks -------------------------------------------------- */

static json_t *
chunk(long long seq, const char *data, int last)
{
	return json_pack("{s:s, s:I, s:s, s:b}", "stream", "s1", "seq",
	    (json_int_t)seq, "data", data, "last", last);
}

/* Adds a chunk, taking it; returns stream_rx_add's result. */
static int
add(struct stream_rx *rx, json_t *c, char *why, size_t whylen)
{
	int rc = stream_rx_add(rx, c, why, whylen);

	json_decref(c);
	return rc;
}

START_TEST(test_rx_binary)
{
	struct stream_rx *rx = stream_rx_new(100, 1);
	const unsigned char *d;
	unsigned char *taken;
	char why[200];
	size_t len;

	ck_assert_int_eq(add(rx, chunk(0, "Zm9v", 0), why, sizeof why), 0);
	ck_assert_int_eq(add(rx, chunk(1, "YmFy", 0), why, sizeof why), 0);
	ck_assert_int_eq(add(rx, chunk(2, "AP8=", 1), why, sizeof why), 1);
	d = stream_rx_data(rx, &len);
	ck_assert_uint_eq(len, 8);
	ck_assert_mem_eq(d, "foobar\0\xff", 8);
	taken = stream_rx_take(rx, &len);
	ck_assert_uint_eq(len, 8);
	ck_assert_mem_eq(taken, "foobar\0\xff", 8);
	ck_assert_int_eq(taken[8], '\0');	/* NUL-terminated */
	free(taken);
	/* Taking resets: a new stream starts at seq 0. */
	d = stream_rx_data(rx, &len);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq((const char *)d, "");
	ck_assert_int_eq(add(rx, chunk(0, "", 1), why, sizeof why), 1);
	taken = stream_rx_take(rx, &len);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq((char *)taken, "");
	free(taken);
	stream_rx_free(rx);
	stream_rx_free(NULL);
}
END_TEST

START_TEST(test_rx_text)
{
	struct stream_rx *rx = stream_rx_new(100, 0);
	char why[200];
	unsigned char *t;
	size_t len;

	ck_assert_int_eq(add(rx, chunk(0, "h\xc3\xa9", 0), why, sizeof why),
	    0);
	ck_assert_int_eq(add(rx, chunk(1, "llo ", 0), why, sizeof why), 0);
	ck_assert_int_eq(add(rx, chunk(2, "\xe2\x82\xac", 1), why,
	    sizeof why), 1);
	t = stream_rx_take(rx, &len);
	ck_assert_uint_eq(len, 10);
	ck_assert_str_eq((char *)t, "h\xc3\xa9llo \xe2\x82\xac");
	free(t);
	stream_rx_free(rx);
}
END_TEST

START_TEST(test_rx_out_of_order)
{
	struct stream_rx *rx = stream_rx_new(100, 0);
	char why[200];

	ck_assert_int_eq(add(rx, chunk(0, "a", 0), why, sizeof why), 0);
	ck_assert_int_eq(add(rx, chunk(2, "c", 0), why, sizeof why), -1);
	ck_assert_str_eq(why, "chunk 2 out of order (expected 1)");
	ck_assert_int_eq(add(rx, chunk(0, "a", 0), why, sizeof why), -1);
	ck_assert_str_eq(why, "chunk 0 out of order (expected 1)");
	ck_assert_int_eq(add(rx, chunk(-1, "a", 0), why, sizeof why), -1);
	ck_assert_str_eq(why, "chunk -1 out of order (expected 1)");
	stream_rx_free(rx);

	rx = stream_rx_new(100, 0);
	ck_assert_int_eq(add(rx, chunk(1, "b", 0), why, sizeof why), -1);
	ck_assert_str_eq(why, "chunk 1 out of order (expected 0)");
	ck_assert_int_eq(add(rx, json_pack("{s:s}", "data", "x"), why,
	    sizeof why), -1);
	ck_assert_str_eq(why, "chunk needs an integer 'seq' and a string "
	    "'data'");
	ck_assert_int_eq(add(rx, json_pack("{s:i,s:i}", "seq", 0, "data", 1),
	    why, sizeof why), -1);
	ck_assert_str_eq(why, "chunk needs an integer 'seq' and a string "
	    "'data'");
	ck_assert_int_eq(add(rx, json_pack("{s:f,s:s}", "seq", 0.0, "data",
	    ""), why, sizeof why), -1);
	ck_assert_str_eq(why, "chunk needs an integer 'seq' and a string "
	    "'data'");
	stream_rx_free(rx);
}
END_TEST

START_TEST(test_rx_cap)
{
	struct stream_rx *rx = stream_rx_new(10, 0);
	char why[200];
	unsigned char *t;
	size_t len;

	/* Exactly the cap, in two chunks: taken. */
	ck_assert_int_eq(add(rx, chunk(0, "123456", 0), why, sizeof why), 0);
	ck_assert_int_eq(add(rx, chunk(1, "7890", 1), why, sizeof why), 1);
	t = stream_rx_take(rx, &len);
	ck_assert_str_eq((char *)t, "1234567890");
	free(t);
	/* One byte over: refused, and the message names the cap. */
	ck_assert_int_eq(add(rx, chunk(0, "123456", 0), why, sizeof why), 0);
	ck_assert_int_eq(add(rx, chunk(1, "78901", 1), why, sizeof why), -1);
	ck_assert_str_eq(why, "stream is over its cap of 10 bytes");
	stream_rx_free(rx);

	/* Binary: the decoded size counts, checked before decoding. */
	rx = stream_rx_new(5, 1);
	ck_assert_int_eq(add(rx, chunk(0, "Zm9vYmE=", 0), why, sizeof why), 0);
	stream_rx_free(rx);
	rx = stream_rx_new(5, 1);
	ck_assert_int_eq(add(rx, chunk(0, "Zm9vYmFy", 0), why, sizeof why),
	    -1);
	ck_assert_str_eq(why, "stream is over its cap of 5 bytes");
	stream_rx_free(rx);

	/* A cap of zero takes only empty streams. */
	rx = stream_rx_new(0, 0);
	ck_assert_int_eq(add(rx, chunk(0, "", 1), why, sizeof why), 1);
	stream_rx_free(rx);
	rx = stream_rx_new(0, 0);
	ck_assert_int_eq(add(rx, chunk(0, "x", 1), why, sizeof why), -1);
	ck_assert_str_eq(why, "stream is over its cap of 0 bytes");
	stream_rx_free(rx);
}
END_TEST

START_TEST(test_rx_bad_base64)
{
	/* "=" and "==" once made the decoded size underflow, and were
	 * reported as over the cap. */
	static const char *bad[] = { "Zm9", "Zh==", "Zm9v!!!!", "Zg==Zg==",
	    "Zm 9", "====", "=", "==", "A=", "Zm9v=" };
	struct stream_rx *rx;
	char why[200];
	size_t i;

	for (i = 0; i < DM_NELEM(bad); i++) {
		rx = stream_rx_new(100, 1);
		ck_assert_int_eq(add(rx, chunk(0, "Zm9v", 0), why, sizeof why),
		    0);
		ck_assert_int_eq(add(rx, chunk(1, bad[i], 0), why, sizeof why),
		    -1);
		ck_assert_str_eq(why, "chunk 1 is not valid base64");
		stream_rx_free(rx);
	}
}
END_TEST

START_TEST(test_rx_after_last)
{
	struct stream_rx *rx = stream_rx_new(100, 0);
	char why[200];

	ck_assert_int_eq(add(rx, chunk(0, "a", 1), why, sizeof why), 1);
	ck_assert_int_eq(add(rx, chunk(1, "b", 0), why, sizeof why), -1);
	ck_assert_str_eq(why, "chunk after the last one");
	stream_rx_free(rx);
}
END_TEST

/* ---- over a connection ------------------------------------------------- */

/* What the receiving end collected. */
static struct {
	struct stream_rx *rx;
	int		 chunks;
	int		 done;
	int		 ended;		/* done or failed */
	int		 failed;
	int		 failed_at;	/* the chunk that failed, from 1 */
	char		 why[200];
	size_t		 max_data;	/* longest data seen, in bytes */
	size_t		 max_raw;	/* longest chunk before repair */
	int		 extra_ok;	/* every chunk carried the extras */
	char		*pieces[64];	/* text of the first chunks */
} got;

static int
h_out(struct amp_request *req, json_t *box)
{
	json_t *data = json_object_get(box, "data");
	int rc;

	(void)req;
	got.chunks++;
	if (json_string_length(data) > got.max_data)
		got.max_data = json_string_length(data);
	if (got.chunks <= (int)DM_NELEM(got.pieces))
		got.pieces[got.chunks - 1] = xstrdup(json_string_value(data));
	if (json_get_int(box, "suite", -1) != 3 ||
	    strcmp(json_get_str(box, "test_name", ""), "t") != 0)
		got.extra_ok = 0;
	if (got.failed)
		return 0;	/* the stream was abandoned */
	rc = stream_rx_add(got.rx, box, got.why, sizeof got.why);
	if (rc != 0)
		got.ended = 1;
	if (rc == -1) {
		got.failed++;
		got.failed_at = got.chunks;
	}
	else if (rc == 1)
		got.done++;
	return 0;
}

static const struct amp_arg out_args[] = {
	{ "stream", AMP_T_STRING, 0 }, { "seq", AMP_T_INT, 0 },
	{ "data", AMP_T_STRING, 0 }, { "last", AMP_T_BOOL, 0 },
	{ NULL, 0, 0 }
};
static const struct amp_command table[] = {
	{ "test_output", h_out, out_args },
	{ NULL, NULL, NULL }
};

static void
got_reset(size_t cap, int binary)
{
	size_t i;

	for (i = 0; i < DM_NELEM(got.pieces); i++)
		free(got.pieces[i]);
	stream_rx_free(got.rx);
	memset(&got, 0, sizeof got);
	got.rx = stream_rx_new(cap, binary);
	got.extra_ok = 1;
}

static void
got_free(void)
{
	got_reset(0, 0);
	stream_rx_free(got.rx);
	got.rx = NULL;
}

static void
pair_close(struct event_base *base, struct tu_pair *p)
{
	amp_conn_close(p->a, "over", 0);
	ck_assert(tu_loop_until(base, &p->b_closed, DEADLINE));
	ck_assert(tu_loop_until(base, &p->a_closed, DEADLINE));
}

/* Sends data as a stream from a to b and checks what b rebuilt. */
static void
round_trip(const void *data, size_t len, int binary, size_t chunksz,
    size_t limit, const void *want, size_t wantlen)
{
	struct event_base *base = event_base_new();
	json_t *extra = json_pack("{s:i,s:s}", "suite", 3, "test_name", "t");
	struct tu_pair p;
	const unsigned char *d;
	size_t n;

	got_reset(wantlen, binary);
	tu_pair_open(base, &p, NULL, table);
	amp_conn_set_limit(p.a, limit);
	amp_conn_set_limit(p.b, limit);
	ck_assert_int_eq(stream_send(p.a, "test_output", "stdout", data, len,
	    binary, chunksz, extra), 0);
	ck_assert(tu_loop_until(base, &got.ended, DEADLINE));
	ck_assert_msg(got.failed == 0, "stream refused: %s", got.why);
	ck_assert_int_eq(got.extra_ok, 1);
	ck_assert_int_eq(p.b_closed, 0);
	d = stream_rx_data(got.rx, &n);
	ck_assert_uint_eq(n, wantlen);
	ck_assert_msg(memcmp(d, want, n) == 0, "reassembled data differs");
	json_decref(extra);
	pair_close(base, &p);
	event_base_free(base);
}

START_TEST(test_send_binary_round_trip)
{
	size_t len = 1000003, i;
	unsigned char *data = xmalloc(len);

	for (i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 131 + (i >> 8));
	round_trip(data, len, 1, 65536, FRAME_LIMIT_DEFAULT, data, len);
	ck_assert_int_eq(got.chunks, 16);	/* ceil(1000003 / 65536) */
	ck_assert_uint_le(got.max_data, base64_encoded_len(65536));
	round_trip(data, 0, 1, 0, FRAME_LIMIT_DEFAULT, "", 0);
	ck_assert_int_eq(got.chunks, 1);	/* one empty, last chunk */
	round_trip(data, 1, 1, 1, FRAME_LIMIT_DEFAULT, data, 1);
	ck_assert_int_eq(got.chunks, 1);
	/* No data at all, not even a buffer. */
	round_trip(NULL, 0, 1, 0, FRAME_LIMIT_DEFAULT, "", 0);
	ck_assert_int_eq(got.chunks, 1);
	round_trip(NULL, 0, 0, 0, FRAME_LIMIT_DEFAULT, "", 0);
	ck_assert_int_eq(got.chunks, 1);
	got_free();
	free(data);
}
END_TEST

START_TEST(test_send_text_round_trip)
{
	const char *t = "line one\nligne deux: \xc3\xa9t\xc3\xa9\n";

	/* 27 bytes by 5: the fifth cut would split the second e-acute, so
	 * it moves back one byte: 5, 5, 5, 5, 4 and 3 bytes. */
	round_trip(t, strlen(t), 0, 5, FRAME_LIMIT_PREAUTH, t, strlen(t));
	ck_assert_int_eq(got.chunks, 6);
	ck_assert_str_eq(got.pieces[4], " \xc3\xa9t");
	ck_assert_str_eq(got.pieces[5], "\xc3\xa9\n");
	/* Bytes that are not UTF-8, and NUL, arrive repaired. */
	round_trip("ok\xff\0!", 5, 0, 0, FRAME_LIMIT_PREAUTH,
	    "ok\xef\xbf\xbd\xef\xbf\xbd!", 9);
	got_free();
}
END_TEST

/* Text of 1-, 2-, 3- and 4-byte characters, at every chunk size from 1
 * to 8: no chunk splits a character (a split one would come back as
 * U+FFFD), and the text comes back whole. */
START_TEST(test_text_never_splits_a_character)
{
	static const char text[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
	    "b\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xc3\xa9\xc3\xa9\xe2\x82\xac"
	    "cd\xe2\x82\xac\xe2\x82\xac\xf0\x9f\x98\x80z";
	size_t chunksz = (size_t)_i, len = sizeof text - 1;
	int i;

	round_trip(text, len, 0, chunksz, FRAME_LIMIT_PREAUTH, text, len);
	for (i = 0; i < got.chunks && i < (int)DM_NELEM(got.pieces); i++) {
		ck_assert_msg(strstr(got.pieces[i], "\xef\xbf\xbd") == NULL,
		    "chunk size %zu: chunk %d has U+FFFD", chunksz, i);
		/* Never longer than asked, but for one whole character. */
		ck_assert_uint_le(strlen(got.pieces[i]),
		    chunksz < 4 ? 4 : chunksz);
	}
	got_free();
}
END_TEST

/* Binary at the default chunk size passes the 64 KiB limit before
 * authentication: chunks are sized to the connection. */
START_TEST(test_chunks_fit_preauth_limit)
{
	size_t len = 300000, i;
	unsigned char *data = xmalloc(len);

	for (i = 0; i < len; i++)
		data[i] = (unsigned char)(i ^ (i >> 9));
	round_trip(data, len, 1, 0, FRAME_LIMIT_PREAUTH, data, len);
	ck_assert_uint_le(got.max_data, FRAME_LIMIT_PREAUTH);
	ck_assert_int_ge(got.chunks, 7);	/* 300000 * 4/3 / 64 KiB */
	got_free();
	free(data);
}
END_TEST

/* Text that is all control characters grows six-fold in JSON; at the
 * default chunk size it still fits the 1 MiB limit. */
START_TEST(test_chunks_fit_escaped_text)
{
	size_t len = 400000;
	char *data = xmalloc(len);

	memset(data, '\x01', len);
	round_trip(data, len, 0, 0, FRAME_LIMIT_DEFAULT, data, len);
	ck_assert_int_ge(got.chunks, 3);
	got_free();
	free(data);
}
END_TEST

START_TEST(test_rx_cap_over_the_wire)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	char data[100];

	memset(data, 'x', sizeof data);
	got_reset(64, 0);
	tu_pair_open(base, &p, NULL, table);
	ck_assert_int_eq(stream_send(p.a, "test_output", "stdout", data,
	    sizeof data, 0, 30, NULL), 0);
	ck_assert(tu_loop_until(base, &got.failed, DEADLINE));
	ck_assert_str_eq(got.why, "stream is over its cap of 64 bytes");
	ck_assert_int_eq(got.failed_at, 3);	/* 30 + 30, then 30 is over */
	pair_close(base, &p);
	got_free();
	event_base_free(base);
}
END_TEST

/* ---- the paced sender -------------------------------------------------- */

struct pacer {
	struct stream_tx *tx;
	int		  pumps;
	int		  stalls;	/* pumps that stopped for congestion */
	int		  finished;
	int		  closed;
	char		  reason[256];
};

static void
pacer_pump(struct pacer *pc)
{
	int rc = stream_tx_pump(pc->tx);

	ck_assert_int_ne(rc, -1);
	pc->pumps++;
	if (rc == 0)
		pc->stalls++;
	else
		pc->finished = 1;
}

static void
pacer_drain(struct amp_conn *c, void *ctx)
{
	(void)c;
	pacer_pump(ctx);
}

static void
pacer_close(struct amp_conn *c, const char *reason, void *ctx)
{
	struct pacer *pc = ctx;

	(void)c;
	pc->closed = 1;
	snprintf(pc->reason, sizeof pc->reason, "%s", reason);
}

static const struct amp_conn_cbs pacer_cbs = { pacer_close, pacer_drain };

static void
recv_close(struct amp_conn *c, const char *reason, void *ctx)
{
	(void)c;
	(void)reason;
	*(int *)ctx = 1;
}

static const struct amp_conn_cbs recv_cbs = { recv_close, NULL };

/* 8 MiB to a receiver that is paused: the sender stops at congestion
 * with most of the payload not queued, resumes from on_drain, and the
 * receiver gets every byte in order. */
START_TEST(test_tx_paced_under_congestion)
{
	struct event_base *base = event_base_new();
	struct bufferevent *b0, *b1;
	struct amp_conn *a, *b;
	struct pacer pc;
	volatile int b_closed = 0;
	size_t len = 8u * 1024 * 1024, i, n;
	unsigned char *data = xmalloc(len);
	const unsigned char *d;
	int sv[2];

	for (i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 7 + (i >> 16));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fatal("socketpair");
	b0 = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	b1 = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	memset(&pc, 0, sizeof pc);
	a = amp_conn_new(b0, NULL, &pacer_cbs, &pc);
	b = amp_conn_new(b1, table, &recv_cbs, (void *)&b_closed);
	amp_conn_set_limit(a, FRAME_LIMIT_DEFAULT);
	amp_conn_set_limit(b, FRAME_LIMIT_DEFAULT);
	got_reset(len, 1);
	amp_conn_pause(b);

	pc.tx = stream_tx_new(a, "test_output", "blob", data, len, 0, NULL);
	pacer_pump(&pc);
	ck_assert_int_eq(pc.stalls, 1);
	ck_assert_int_eq(amp_conn_congested(a), 1);
	ck_assert_uint_lt(amp_conn_output_len(a), len);	/* not all queued */
	tu_loop_for(base, 0.1);
	ck_assert_int_eq(pc.finished, 0);		/* b reads nothing */
	ck_assert_int_eq(got.chunks, 0);

	amp_conn_resume(b);
	ck_assert(tu_loop_until(base, &got.done, DEADLINE * 3));
	ck_assert_int_eq(pc.finished, 1);
	ck_assert_int_ge(pc.stalls, 1);
	ck_assert_int_eq(got.failed, 0);
	ck_assert_int_eq(got.chunks, 32);	/* 8 MiB / 256 KiB */
	d = stream_rx_data(got.rx, &n);
	ck_assert_uint_eq(n, len);
	ck_assert_msg(memcmp(d, data, len) == 0, "payload differs");
	/* A pump after the end sends nothing more. */
	ck_assert_int_eq(stream_tx_pump(pc.tx), 1);
	stream_tx_free(pc.tx);
	stream_tx_free(NULL);
	amp_conn_close(a, "over", 0);
	ck_assert(tu_loop_until(base, &b_closed, DEADLINE));
	ck_assert_int_eq(pc.closed, 1);
	got_free();
	free(data);
	event_base_free(base);
}
END_TEST

/* A pump on a closing connection fails, again and again; on a live one
 * the chunks are numbered from 0 with none skipped. */
START_TEST(test_tx_on_closing_connection)
{
	struct event_base *base = event_base_new();
	struct tu_pair p;
	struct stream_tx *tx;
	unsigned char data[10] = "0123456789";

	tu_pair_open(base, &p, NULL, table);
	tx = stream_tx_new(p.a, "test_output", "blob", data, sizeof data, 4,
	    NULL);
	amp_conn_close(p.a, "gone", 0);
	ck_assert_int_eq(stream_tx_pump(tx), -1);
	ck_assert_int_eq(stream_tx_pump(tx), -1);
	stream_tx_free(tx);
	ck_assert(tu_loop_until(base, &p.a_closed, DEADLINE));
	ck_assert(tu_loop_until(base, &p.b_closed, DEADLINE));

	/* And on a live one, three chunks of 4, 4 and 2, seq 0..2. */
	got_reset(100, 1);
	tu_pair_open(base, &p, NULL, table);
	tx = stream_tx_new(p.a, "test_output", "blob", data, sizeof data, 4,
	    NULL);
	ck_assert_int_eq(stream_tx_pump(tx), 1);
	ck_assert(tu_loop_until(base, &got.done, DEADLINE));
	ck_assert_int_eq(got.chunks, 3);
	ck_assert_int_eq(got.failed, 0);
	stream_tx_free(tx);
	pair_close(base, &p);
	got_free();
	event_base_free(base);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("stream");
	TCase *tc;
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);

	tc = tcase_create("rx");
	tcase_add_test(tc, test_rx_binary);
	tcase_add_test(tc, test_rx_text);
	tcase_add_test(tc, test_rx_out_of_order);
	tcase_add_test(tc, test_rx_cap);
	tcase_add_test(tc, test_rx_bad_base64);
	tcase_add_test(tc, test_rx_after_last);
	suite_add_tcase(s, tc);

	tc = tcase_create("send");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_send_binary_round_trip);
	tcase_add_test(tc, test_send_text_round_trip);
	tcase_add_loop_test(tc, test_text_never_splits_a_character, 1, 9);
	tcase_add_test(tc, test_chunks_fit_preauth_limit);
	tcase_add_test(tc, test_chunks_fit_escaped_text);
	tcase_add_test(tc, test_rx_cap_over_the_wire);
	tcase_add_test(tc, test_tx_paced_under_congestion);
	tcase_add_test(tc, test_tx_on_closing_connection);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

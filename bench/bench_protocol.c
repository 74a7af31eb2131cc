/*
 * bench_protocol.c - how fast frames go: encoded and decoded in memory,
 * and sent through a real socketpair by the AMP layer with the event
 * loop, for a small box shaped like a test_result (about 150 bytes) and
 * a large one shaped like a 64 KiB test_output chunk; plus ask/answer
 * round trips with one ask outstanding.
 *
 *   bench_protocol [SECONDS]	each row runs about SECONDS (default 1)
 *
 * A benchmark, not a test: it prints a table and asserts nothing about
 * time. Figures are for comparing one change with the next on the same
 * machine.
 */
#include <sys/socket.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common.h"
#include "protocol.h"

static double seconds = 1.0;

struct row {
	const char	*what;
	double		 frames;
	double		 bytes;		/* on the wire, headers included */
	double		 elapsed;
};

static void
print_row(const struct row *r)
{
	double fps = r->frames / r->elapsed;

	if (r->bytes > 0)
		printf("%-34s %12.0f %10.1f\n", r->what, fps,
		    r->bytes / r->elapsed / 1e6);
	else
		printf("%-34s %12.0f %10s\n", r->what, fps, "-");
}

static json_t *
small_box(void)
{
	return json_pack("{s:s, s:i, s:i, s:s, s:f, s:s, s:s, s:i}",
	    "_command", "test_result", "suite", 0, "test", 1234,
	    "outcome", "fail", "duration", 0.001234,
	    "message", "expected 4, got 5", "file", "tests/test_math.c",
	    "line", 42);
}

static json_t *
large_box(void)
{
	char *data = xmalloc(65536 + 1);
	json_t *box;

	memset(data, 'x', 65536);
	data[65536] = '\0';
	box = json_pack("{s:s, s:s, s:i, s:s, s:b, s:i, s:i}",
	    "_command", "test_output", "stream", "stdout", "seq", 7,
	    "data", data, "last", 0, "suite", 0, "test", 1234);
	free(data);
	return box;
}

/* ---- in memory --------------------------------------------------------- */

static void
bench_memory(const char *what, json_t *box)
{
	struct evbuffer *buf = evbuffer_new();
	struct frame_err err;
	struct row r = { what, 0, 0, 0 };
	double start = clock_mono();
	json_t *back;
	int i;

	do {
		for (i = 0; i < 64; i++) {
			if (frame_encode(buf, box, FRAME_LIMIT_DEFAULT,
			    &err) == -1)
				fatalx("encode: %s", err.text);
			r.bytes += (double)evbuffer_get_length(buf);
			if (frame_decode(buf, FRAME_LIMIT_DEFAULT, &back,
			    &err) != 1)
				fatalx("decode: %s", err.text);
			json_decref(back);
		}
		r.frames += 64;
		r.elapsed = clock_mono() - start;
	} while (r.elapsed < seconds);
	print_row(&r);
	evbuffer_free(buf);
}

/* jansson alone, dumping and loading the same box: the floor under the
 * row above, so the cost of framing shows as the difference. */
static void
bench_jansson(const char *what, json_t *box)
{
	struct row r = { what, 0, 0, 0 };
	size_t size = json_dumpb(box, NULL, 0, JSON_COMPACT), n;
	char *buf = xmalloc(size);
	double start = clock_mono();
	json_t *back;
	int i;

	do {
		for (i = 0; i < 64; i++) {
			n = json_dumpb(box, buf, size, JSON_COMPACT);
			back = json_loadb(buf, n, JSON_REJECT_DUPLICATES,
			    NULL);
			if (back == NULL)
				fatalx("jansson cannot load its own dump");
			json_decref(back);
			r.bytes += (double)(n + FRAME_HEADER_SIZE);
		}
		r.frames += 64;
		r.elapsed = clock_mono() - start;
	} while (r.elapsed < seconds);
	print_row(&r);
	free(buf);
}

/* ---- through a socketpair ---------------------------------------------- */

struct flow {
	struct event_base *base;
	struct amp_conn	*tx, *rx;
	json_t		*box;
	double		 start;
	uint64_t	 sent, received;
	int		 sending_done;
	int		 done;
	int		 closed;
};

static struct flow flow;

static int
h_count(struct amp_request *req, json_t *box)
{
	(void)req;
	(void)box;
	flow.received++;
	if (flow.sending_done && flow.received == flow.sent)
		flow.done = 1;
	return 0;
}

static const struct amp_command rx_table[] = {
	{ "test_result", h_count, NULL },
	{ "test_output", h_count, NULL },
	{ NULL, NULL, NULL }
};

/* Sends until congested or until time is up; on_drain calls again. */
static void
pump(void)
{
	while (!flow.sending_done && !amp_conn_congested(flow.tx)) {
		if (amp_tell(flow.tx, json_string_value(json_object_get(
		    flow.box, "_command")), json_deep_copy(flow.box)) == -1)
			fatalx("tell failed");
		flow.sent++;
		if ((flow.sent & 63) == 0 &&
		    clock_mono() - flow.start >= seconds)
			flow.sending_done = 1;
	}
	if (flow.sending_done && flow.received == flow.sent)
		flow.done = 1;
}

static void
on_drain(struct amp_conn *c, void *ctx)
{
	(void)c;
	(void)ctx;
	pump();
}

static void
on_close(struct amp_conn *c, const char *reason, void *ctx)
{
	(void)c;
	(void)ctx;
	if (!flow.done)
		fatalx("connection closed early: %s", reason);
	flow.closed++;
}

static const struct amp_conn_cbs cbs = { on_close, on_drain };

static void
open_pair(struct event_base *base, const struct amp_command *tx_table,
    const struct amp_command *rxt)
{
	struct bufferevent *b0, *b1;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fatal("socketpair");
	b0 = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	b1 = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	flow.tx = amp_conn_new(b0, tx_table, &cbs, NULL);
	flow.rx = amp_conn_new(b1, rxt, &cbs, NULL);
	amp_conn_set_limit(flow.tx, FRAME_LIMIT_DEFAULT);
	amp_conn_set_limit(flow.rx, FRAME_LIMIT_DEFAULT);
}

static void
close_pair(void)
{
	flow.done = 1;
	amp_conn_close(flow.tx, "bench over", 0);
	amp_conn_close(flow.rx, "bench over", 0);
	while (flow.closed < 2)
		event_base_loop(flow.base, EVLOOP_ONCE);
}

static void
bench_socket(const char *what, json_t *box)
{
	struct row r = { what, 0, 0, 0 };
	uint64_t bytes;

	memset(&flow, 0, sizeof flow);
	flow.base = event_base_new();
	flow.box = box;
	open_pair(flow.base, NULL, rx_table);
	flow.start = clock_mono();
	pump();
	while (!flow.done)
		event_base_loop(flow.base, EVLOOP_ONCE);
	r.elapsed = clock_mono() - flow.start;
	amp_conn_counters(flow.rx, NULL, NULL, &bytes, NULL);
	r.frames = (double)flow.received;
	r.bytes = (double)bytes;
	print_row(&r);
	close_pair();
	event_base_free(flow.base);
}

/* ---- ask/answer round trips -------------------------------------------- */

static int
h_ping(struct amp_request *req, json_t *box)
{
	amp_answer(req, json_pack("{s:O}", "n", json_object_get(box, "n")));
	return 0;
}

static const struct amp_command ping_table[] = {
	{ "ping", h_ping, NULL },
	{ NULL, NULL, NULL }
};

static void
on_pong(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	(void)ans;
	(void)arg;
	if (err != NULL) {
		if (flow.done)
			return;
		fatalx("ping failed: %s: %s", err->code, err->description);
	}
	flow.received++;
	if (clock_mono() - flow.start >= seconds) {
		flow.done = 1;
		return;
	}
	amp_ask(c, "ping", json_pack("{s:I}", "n", (json_int_t)flow.received),
	    on_pong, NULL);
}

static void
bench_asks(void)
{
	struct row r = { "socketpair ask/answer, 1 in flight", 0, 0, 0 };

	memset(&flow, 0, sizeof flow);
	flow.base = event_base_new();
	open_pair(flow.base, NULL, ping_table);
	flow.start = clock_mono();
	amp_ask(flow.tx, "ping", json_pack("{s:i}", "n", 0), on_pong, NULL);
	while (!flow.done)
		event_base_loop(flow.base, EVLOOP_ONCE);
	r.elapsed = clock_mono() - flow.start;
	r.frames = (double)flow.received;
	print_row(&r);
	close_pair();
	event_base_free(flow.base);
}

int
main(int argc, char **argv)
{
	json_t *small = small_box(), *large = large_box();
	struct evbuffer *b = evbuffer_new();
	struct frame_err err;
	size_t small_len, large_len;

	signal(SIGPIPE, SIG_IGN);
	log_init("bench_protocol", LOG_LVL_WARN);
	if (argc > 1 && (seconds = atof(argv[1])) <= 0)
		fatalx("usage: bench_protocol [SECONDS]");
	frame_encode(b, small, FRAME_LIMIT_DEFAULT, &err);
	small_len = evbuffer_get_length(b);
	evbuffer_drain(b, small_len);
	frame_encode(b, large, FRAME_LIMIT_DEFAULT, &err);
	large_len = evbuffer_get_length(b);
	evbuffer_free(b);

	printf("frames of %zu bytes (small) and %zu bytes (large), "
	    "headers included; %.1f s per row\n\n", small_len, large_len,
	    seconds);
	printf("%-34s %12s %10s\n", "what", "frames/s", "MB/s");
	bench_memory("memory encode+decode, small", small);
	bench_jansson("  jansson dump+load alone, small", small);
	bench_memory("memory encode+decode, large", large);
	bench_jansson("  jansson dump+load alone, large", large);
	bench_socket("socketpair + event loop, small", small);
	bench_socket("socketpair + event loop, large", large);
	bench_asks();
	json_decref(small);
	json_decref(large);
	return 0;
}

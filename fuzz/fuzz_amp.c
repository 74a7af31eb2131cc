/*
 * fuzz_amp.c - libFuzzer harness for the AMP dispatcher: a real
 * amp_conn over a socketpair, with a small command table (a handler that
 * answers, one that fails, one that keeps its request, one that answers
 * the kept ones, one with typed arguments, one that closes), and three
 * asks of its own outstanding. The fuzzer's bytes are what the peer
 * writes; the loop runs until the connection has closed.
 *
 * Checked, beyond "no crash, no leak, no hang": every ask's callback ran
 * exactly once (asks made from callbacks included), and everything the
 * layer wrote back is well-framed, each box an answer or a complete
 * error.
 *
 * Input: one byte of flags (bit 0: trust the peer with the larger limit
 * from the start; bit 1: re-ask from answer callbacks; bit 2: the peer's
 * bytes, at most SYNC_INPUT_MAX of them, are all sent at once and read
 * by amp_ask_sync, as an in-process test's dm_lock reads them, before
 * the loop gets what it kept), then the bytes the peer sends.
 *
 * With bit 2, also checked: amp_ask_sync returns the reply it says it
 * does (an answer, an error, or nothing), and an "echo" it answers
 * inline is a well-framed answer like the loop's.
 */
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common.h"
#include "protocol.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_ASKS		3	/* asked at the start */
#define MAX_ASKS	(N_ASKS * 2)	/* and once again each, at most */
#define MAX_KEPT	16
/* Bytes the peer may send before amp_ask_sync reads: what it writes
 * back meanwhile must fit the socket, since the peer reads only after. */
#define SYNC_INPUT_MAX	8192

static struct {
	struct amp_conn	*conn;
	int		 closed;
	int		 reask;
	int		 calls[MAX_ASKS];
	int		 n_asks;
	struct amp_request *kept[MAX_KEPT];
	int		 n_kept;
} st;

static void
bug(const char *what)
{
	fprintf(stderr, "fuzz_amp: %s\n", what);
	abort();
}

static void
on_answer(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	int i = (int)(intptr_t)arg;

	if ((ans == NULL) == (err == NULL))
		bug("an answer callback with both or neither");
	if (err != NULL && (err->code == NULL || err->description == NULL))
		bug("an error without code or description");
	st.calls[i]++;
	if (st.reask && i < N_ASKS && st.n_asks < MAX_ASKS)
		amp_ask(c, "again", NULL, on_answer,
		    (void *)(intptr_t)st.n_asks++);
}

static int
h_echo(struct amp_request *req, json_t *box)
{
	json_t *res = json_object();

	json_object_set(res, "v", json_object_get(box, "v"));
	amp_answer(req, res);
	return 0;
}

static int
h_fail(struct amp_request *req, json_t *box)
{
	(void)req;
	(void)box;
	return -1;
}

static int
h_refuse(struct amp_request *req, json_t *box)
{
	amp_fail(req, "REFUSED", "refused %s",
	    json_get_str(box, "why", "for no reason"));
	return 0;
}

static int
h_keep(struct amp_request *req, json_t *box)
{
	(void)box;
	if (!amp_request_wants_answer(req) || st.n_kept == MAX_KEPT)
		return 0;
	st.kept[st.n_kept++] = req;
	return 0;
}

static int
h_release(struct amp_request *req, json_t *box)
{
	(void)box;
	while (st.n_kept > 0)
		amp_answer(st.kept[--st.n_kept], json_pack("{s:b}", "late", 1));
	amp_answer(req, NULL);
	return 0;
}

static int
h_trust(struct amp_request *req, json_t *box)
{
	amp_conn_set_limit(amp_request_conn(req),
	    (size_t)json_get_int(box, "limit", FRAME_LIMIT_DEFAULT) & 0xffffff);
	amp_answer(req, NULL);
	return 0;
}

static int
h_close(struct amp_request *req, json_t *box)
{
	amp_conn_close(amp_request_conn(req), "asked to close",
	    json_get_bool(box, "flush", 0));
	return -1;
}

static int
h_stream(struct amp_request *req, json_t *box)
{
	struct stream_rx *rx = stream_rx_new(64, json_get_bool(box, "bin", 0));
	char why[200];

	if (stream_rx_add(rx, box, why, sizeof why) == -1)
		amp_fail(req, "BAD_CHUNK", "%s", why);
	else
		amp_answer(req, NULL);
	stream_rx_free(rx);
	return 0;
}

static const struct amp_arg typed_args[] = {
	{ "s", AMP_T_STRING, 0 }, { "i", AMP_T_INT, 0 },
	{ "n", AMP_T_NUMBER, 1 }, { "b", AMP_T_BOOL, 1 },
	{ "a", AMP_T_ARRAY, 1 }, { "o", AMP_T_OBJECT, 1 },
	{ "x", AMP_T_ANY, 0 }, { NULL, 0, 0 }
};

static const struct amp_command table[] = {
	{ "echo", h_echo, NULL },
	{ "typed", h_echo, typed_args },
	{ "fail", h_fail, NULL },
	{ "refuse", h_refuse, NULL },
	{ "keep", h_keep, NULL },
	{ "release", h_release, NULL },
	{ "trust", h_trust, NULL },
	{ "close", h_close, NULL },
	{ "chunk", h_stream, NULL },
	{ NULL, NULL, NULL }
};

static void
on_close(struct amp_conn *c, const char *reason, void *ctx)
{
	(void)c;
	(void)ctx;
	if (reason == NULL || reason[0] == '\0')
		bug("closed without a reason");
	st.closed++;
	st.conn = NULL;
}

static const struct amp_conn_cbs cbs = { on_close, NULL };

static struct event *reader;

/* The peer reads everything the layer writes, until EOF. */
static void
peer_read(evutil_socket_t fd, short what, void *arg)
{
	int n;

	(void)what;
	while ((n = evbuffer_read(arg, fd, 65536)) > 0)
		;
	if (n == 0)
		event_del(reader);	/* else it fires for ever */
}

/* Everything written back is whole frames (bar a last one cut short by
 * the close), each an answer or a complete error. */
static void
check_replies(struct evbuffer *out)
{
	struct frame_err err;
	json_t *box;
	int rc;

	while ((rc = frame_decode(out, FRAME_LIMIT_MAX, &box, &err)) == 1) {
		if (json_object_get(box, "_command") != NULL) {
			if (!json_is_string(json_object_get(box, "_ask")))
				bug("our ask has no tag");
		} else if (json_is_string(json_object_get(box, "_error"))) {
			if (!json_is_string(json_object_get(box,
			    "_error_code")) || !json_is_string(
			    json_object_get(box, "_error_description")))
				bug("an error box without code or description");
		} else if (!json_is_string(json_object_get(box, "_answer")))
			bug("a box that is neither ask, answer nor error");
		json_decref(box);
	}
	if (rc == -1) {
		fprintf(stderr, "fuzz_amp: %s\n", err.text);
		bug("the layer wrote a broken frame");
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LVL_ERROR);	/* a warning per bad box is noise */
	return 0;
}

/* The peer sends everything and ends; amp_ask_sync reads it. Returns
 * the bytes left for the loop to write (none). */
static size_t
sync_ask(int fd, const uint8_t *p, size_t left)
{
	json_t *reply = NULL, *v;
	ssize_t n;
	int rc;

	while (left > 0) {
		n = write(fd, p, left);
		if (n <= 0)
			bug("the socket cannot take the sync input");
		p += n;
		left -= (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	rc = amp_ask_sync(st.conn, "sync", json_pack("{s:s}", "name", "x"),
	    "echo", &reply);
	if (rc == -1) {
		if (reply != NULL)
			bug("amp_ask_sync failed with a reply");
		return 0;
	}
	if (reply == NULL)
		bug("amp_ask_sync answered without a reply");
	v = json_object_get(reply, rc == 0 ? "_answer" : "_error");
	if (!json_is_string(v) || json_string_value(v)[0] != 's')
		bug("amp_ask_sync's reply is not its own");
	json_decref(reply);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event_base *base;
	struct bufferevent *bev;
	struct evbuffer *replies;
	const uint8_t *p;
	size_t left;
	ssize_t n;
	int sv[2], i, rounds;

	if (size < 1)
		return 0;
	memset(&st, 0, sizeof st);
	st.reask = data[0] & 2;
	base = event_base_new();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fatal("socketpair");
	bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	st.conn = amp_conn_new(bev, table, &cbs, NULL);
	if (data[0] & 1)
		amp_conn_set_limit(st.conn, FRAME_LIMIT_DEFAULT);
	for (i = 0; i < N_ASKS; i++)
		amp_ask(st.conn, "question", json_pack("{s:i}", "n", i),
		    on_answer, (void *)(intptr_t)st.n_asks++);
	replies = evbuffer_new();
	reader = event_new(base, sv[1], EV_READ | EV_PERSIST, peer_read,
	    replies);
	event_add(reader, NULL);

	/* Write the input as the peer, then end its side: the connection
	 * sees EOF once it has read everything. */
	p = data + 1;
	left = size - 1;
	if ((data[0] & 4) && left <= SYNC_INPUT_MAX)
		left = sync_ask(sv[1], p, left);
	for (rounds = 0; left > 0 && !st.closed && rounds < 100000; rounds++) {
		n = write(sv[1], p, left);
		if (n > 0) {
			p += n;
			left -= (size_t)n;
		} else if (errno != EAGAIN)
			break;		/* the layer closed its end */
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	shutdown(sv[1], SHUT_WR);
	for (rounds = 0; !st.closed && rounds < 100000; rounds++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	if (!st.closed)
		bug("the connection did not close after EOF");

	for (i = 0; i < st.n_asks; i++)
		if (st.calls[i] != 1)
			bug("an ask's callback did not run exactly once");
	/* Kept requests outlive the connection and only free. */
	for (i = 0; i < st.n_kept; i++) {
		if (amp_request_conn(st.kept[i]) != NULL)
			bug("a kept request still has its closed connection");
		amp_answer(st.kept[i], NULL);
	}
	while (evbuffer_read(replies, sv[1], 65536) > 0)
		;
	check_replies(replies);

	event_free(reader);
	evbuffer_free(replies);
	close(sv[1]);
	event_base_free(base);
	return 0;
}

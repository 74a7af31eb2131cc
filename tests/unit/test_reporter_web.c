/*
 * test_reporter_web.c - the live dashboard: its bounded state, and its
 * HTTP server spoken to over real sockets (the page, the SSE stream, a
 * browser that stops reading, one that vanishes, the final summary).
 *
 * With --serve it is instead a stand-in for a distmgr run, used by
 * tests/integration/web*.sh: it serves the dashboard and feeds it a
 * synthetic run on a timer (see serve_main).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "testutil.h"
#include "manager.h"
#include "reporter_fixture.h"

/* ---- the state ------------------------------------------------------ */

static json_t *
fixture_snapshot(struct wst *st)
{
	struct run_summary s = fx_summary(fx_reports, FX_NREPORTS);

	wst_run_start(st, &fx_run_info, 100.0);
	wst_worker(st, &fx_workers[0], 1, NULL);
	wst_worker(st, &fx_workers[1], 1, NULL);
	for (size_t i = 0; i < FX_NREPORTS; i++)
		wst_result(st, &fx_reports[i], 101.0 + (double)i);
	wst_notice(st, 1, "worker w1 restarted");
	wst_run_end(st, &s, 111.0);
	return wst_snapshot(st, 112.0);
}

START_TEST(test_state_snapshot)
{
	struct wst *st = wst_new(0);
	json_t *m = fixture_snapshot(st), *lanes, *w0, *f, *tl;

	ck_assert(json_real_value(json_object_get(m, "t")) == 12.0);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "done")), 10);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "total")), 10);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m,
	    "counts"), "crash")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m,
	    "run"), "run_id")), "r-42");
	lanes = json_object_get(m, "lanes");
	ck_assert_uint_eq(json_array_size(lanes), 2);
	w0 = json_array_get(lanes, 0);
	ck_assert_str_eq(json_string_value(json_object_get(w0, "id")), "w0");
	ck_assert_str_eq(json_string_value(json_object_get(w0, "host")),
	    "hostA");
	ck_assert_int_eq(json_integer_value(json_object_get(w0, "ran")), 9);
	tl = json_object_get(w0, "tl");
	ck_assert_uint_eq(json_array_size(tl), 9);
	/* [start, duration, outcome, id]; start = end - duration. */
	ck_assert(json_real_value(json_array_get(json_array_get(tl, 4), 0)) ==
	    6.0);
	ck_assert(json_real_value(json_array_get(json_array_get(tl, 3), 0)) ==
	    0.0);
	ck_assert_str_eq(json_string_value(json_array_get(json_array_get(tl,
	    1), 3)), "math/fails");
	ck_assert_str_eq(json_string_value(json_array_get(json_array_get(tl,
	    1), 2)), "fail");
	/* Failures: fail, error, crash, timeout, xpass, in that order. */
	f = json_object_get(m, "failures");
	ck_assert_uint_eq(json_array_size(f), 5);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "nfailures")),
	    5);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(f,
	    0), "message")), "expected 4 == 5");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(f,
	    0), "line")), 17);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(f,
	    0), "stderr")), "to stderr\n");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(f,
	    2), "signal")), "SIGSEGV");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(f,
	    4), "outcome")), "xpass");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    json_object_get(m, "slowest"), 0), "id")), "io/hangs");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m,
	    "summary"), "line")), "1 passed, 1 failed, 1 errors, 1 crashed, "
	    "1 timed out, 1 skipped, 1 xfailed, 1 xpassed, 1 flaky, 1 not run "
	    "in 5.50s");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    json_object_get(m, "notices"), 0), "text")), "worker w1 restarted");
	json_decref(m);
	wst_free(st);
}
END_TEST

/* A delta carries only what changed since the last one. */
START_TEST(test_state_delta)
{
	struct wst *st = wst_new(0);
	json_t *m;
	struct test_report t = fx_reports[0];
	const char *running[] = { "math/slow", NULL };
	const char *workers[] = { "w0", "w1" };
	struct progress p = { .nworkers = 2, .running = running,
	    .workers = workers, .total = 10, .eta = 3.5 };

	json_decref(fixture_snapshot(st));
	json_decref(wst_delta(st, 112.0));
	ck_assert_int_eq(wst_dirty(st), 0);
	wst_progress(st, &p, 113.0);
	t.worker = "w1";
	wst_result(st, &t, 114.0);
	ck_assert_int_eq(wst_dirty(st), 1);
	m = wst_delta(st, 114.0);
	ck_assert_int_eq(wst_dirty(st), 0);
	ck_assert_ptr_null(json_object_get(m, "failures"));
	ck_assert_ptr_null(json_object_get(m, "summary"));
	ck_assert_ptr_null(json_object_get(m, "run"));
	ck_assert_ptr_null(json_object_get(m, "notices"));
	ck_assert_uint_eq(json_array_size(json_object_get(m, "lanes")), 2);
	/* w0 now runs math/slow, since t = 13 s after the start. */
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    json_object_get(m, "lanes"), 0), "running")), "math/slow");
	ck_assert(json_real_value(json_object_get(json_array_get(
	    json_object_get(m, "lanes"), 0), "since")) == 13.0);
	/* w1 got one new timeline entry, not its whole history. */
	ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(
	    json_object_get(m, "lanes"), 1), "tl")), 1);
	ck_assert(json_real_value(json_object_get(m, "eta")) == 3.5);
	json_decref(m);
	wst_free(st);
}
END_TEST

/* --report-durations 3: the slowest three with what the cache knew;
 * then a second run on the same page (--looponfail) starts afresh, and
 * browsers are sent the whole new state, marked reset. */
START_TEST(test_state_durations_and_next_run)
{
	struct wst *st = wst_new(0);
	struct run_info ri = fx_run_info;
	struct run_summary s = fx_summary(fx_reports, FX_NREPORTS);
	struct test_report t;
	json_t *m, *slow, *e;

	ri.report_durations = 3;
	wst_run_start(st, &ri, 100.0);
	wst_worker(st, &fx_workers[0], 1, NULL);
	for (size_t i = 0; i < FX_NREPORTS; i++) {
		t = fx_reports[i];
		if (strcmp(t.id, "io/hangs") == 0) {
			t.nhistory = 2;
			t.history[0] = 2.5;
			t.history[1] = 1.5;
			t.expected = 2.0;
		}
		wst_result(st, &t, 101.0 + (double)i);
	}
	wst_notice(st, 2, "a notice of the first run");
	wst_run_end(st, &s, 111.0);
	m = wst_snapshot(st, 112.0);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m,
	    "run"), "report_durations")), 3);
	slow = json_object_get(m, "slowest");
	ck_assert_uint_eq(json_array_size(slow), 3);
	e = json_array_get(slow, 0);
	ck_assert_str_eq(json_string_value(json_object_get(e, "id")),
	    "io/hangs");
	ck_assert(json_real_value(json_object_get(e, "expected")) == 2.0);
	ck_assert_uint_eq(json_array_size(json_object_get(e, "history")), 2);
	ck_assert(json_real_value(json_array_get(json_object_get(e,
	    "history"), 0)) == 2.5);
	/* No history: the page says "new". */
	ck_assert_ptr_null(json_object_get(json_array_get(slow, 1),
	    "expected"));
	json_decref(m);
	json_decref(wst_delta(st, 112.0));

	/* The next run: one test, no failure, a fresh lane. */
	ri.run_id = "r-43";
	ri.ntests = 1;
	wst_run_start(st, &ri, 200.0);
	wst_worker(st, &fx_workers[1], 1, NULL);
	t = fx_reports[0];
	t.worker = "w1";
	wst_result(st, &t, 201.0);
	m = wst_delta(st, 201.5);
	ck_assert(json_is_true(json_object_get(m, "reset")));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m,
	    "run"), "run_id")), "r-43");
	ck_assert_int_eq(json_integer_value(json_object_get(m, "done")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "total")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m,
	    "counts"), "fail")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "nfailures")),
	    0);
	ck_assert_uint_eq(json_array_size(json_object_get(m, "failures")), 0);
	ck_assert(json_is_null(json_object_get(m, "summary")));
	ck_assert_uint_eq(json_array_size(json_object_get(m, "lanes")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    json_object_get(m, "lanes"), 0), "id")), "w1");
	ck_assert_uint_eq(json_array_size(json_object_get(m, "slowest")), 1);
	/* What was said between the runs stays on the page. */
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    json_object_get(m, "notices"), 0), "text")),
	    "a notice of the first run");
	json_decref(m);
	wst_free(st);
}
END_TEST

/* 200,000 results, a tenth failing with output, on 300 workers: the
 * snapshot a browser gets stays small, and every result is counted. */
START_TEST(test_state_is_bounded)
{
	struct wst *st = wst_new(0);
	struct test_report t = fx_reports[1];
	struct worker_info wi = fx_workers[0];
	char id[32], wid[16], *out = xmalloc(100000), *text;
	json_t *m;

	memset(out, 'o', 99999);
	out[99999] = '\0';
	t.out = out;
	t.out_len = 99999;
	t.id = id;
	t.worker = wid;
	wi.id = wid;
	for (int i = 0; i < 300; i++) {
		snprintf(wid, sizeof wid, "w%d", i);
		wst_worker(st, &wi, i < 250, NULL);
	}
	for (int i = 0; i < 200000; i++) {
		snprintf(id, sizeof id, "s/t%d", i);
		snprintf(wid, sizeof wid, "w%d", i % 300);
		t.outcome = i % 10 == 0 ? OUT_FAIL : OUT_PASS;
		t.duration = (double)(i % 1000) / 1000.0;
		wst_result(st, &t, (double)i / 1000.0);
	}
	m = wst_snapshot(st, 200.0);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "done")),
	    200000);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "nfailures")),
	    20000);
	ck_assert_uint_eq(json_array_size(json_object_get(m, "failures")), 100);
	ck_assert_uint_le(json_array_size(json_object_get(m, "lanes")), 256);
	ck_assert_uint_eq(json_array_size(json_object_get(m, "slowest")), 15);
	text = json_dumps(m, JSON_COMPACT);
	ck_assert_uint_lt(strlen(text), 3u * 1024 * 1024);
	free(text);
	json_decref(m);
	wst_free(st);
	free(out);
}
END_TEST

/* ---- the server, over real sockets ---------------------------------- */

struct client {
	int	 fd;
	char	*buf;
	size_t	 len;
	size_t	 size;
	int	 eof;
};

static int
url_port(const char *url)
{
	const char *c = strrchr(url, ':');

	return c != NULL ? atoi(c + 1) : -1;
}

static void
client_open(struct client *c, int port, const char *request, int rcvbuf)
{
	struct sockaddr_in sin;

	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	if (rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sin, sizeof sin),
	    0);
	ck_assert_int_eq(write(c->fd, request, strlen(request)),
	    (ssize_t)strlen(request));
	ck_assert_int_eq(fd_set_nonblock(c->fd, 1), 0);
}

static void
client_read(struct client *c)
{
	ssize_t n;

	for (;;) {
		if (c->size - c->len < 65537) {
			c->size = c->size * 2 + 65537;
			c->buf = xreallocarray(c->buf, c->size, 1);
		}
		n = read(c->fd, c->buf + c->len, c->size - c->len - 1);
		if (n == 0)
			c->eof = 1;
		if (n <= 0)
			break;
		c->len += (size_t)n;
	}
	if (c->buf != NULL)
		c->buf[c->len] = '\0';
}

/* Runs the loop and reads until the text holds want (or EOF, or the
 * deadline: a guard against hangs, not a timing assertion). */
static int
client_wait(struct event_base *base, struct client *c, const char *want)
{
	double end = clock_mono() + 20;

	while (clock_mono() < end) {
		client_read(c);
		if (c->buf != NULL && want != NULL && strstr(c->buf, want))
			return 1;
		if (c->eof)
			return want == NULL;
		tu_loop_for(base, 0.02);
	}
	return 0;
}

/* Runs the loop for about seconds while c reads all it is sent (and
 * keeps none of it): a browser that keeps up. */
static void
loop_reading(struct event_base *base, struct client *c, double seconds)
{
	double end = clock_mono() + seconds;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

	while (clock_mono() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		client_read(c);
		c->len = 0;
		(void)poll(&pfd, 1, 2);
	}
}

static void
client_close(struct client *c)
{
	close(c->fd);
	free(c->buf);
}

static struct reporter *
new_web(struct event_base *base)
{
	char why[256] = "";
	struct reporter *r = reporter_web_new(base, "127.0.0.1:0", why,
	    sizeof why);

	ck_assert_msg(r != NULL, "reporter_web_new: %s", why);
	ck_assert_int_gt(url_port(reporter_web_url(r)), 0);
	return r;
}

START_TEST(test_serves_the_page)
{
	struct event_base *base = event_base_new();
	struct reporter *r = new_web(base);
	struct client c;
	int port = url_port(reporter_web_url(r));

	ck_assert(strncmp(reporter_web_url(r), "http://127.0.0.1:", 17) == 0);
	client_open(&c, port, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", 0);
	ck_assert(client_wait(base, &c, NULL));
	ck_assert(strncmp(c.buf, "HTTP/1.0 200 OK\r\n", 17) == 0);
	ck_assert_ptr_nonnull(strstr(c.buf, "Content-Type: text/html; "
	    "charset=utf-8\r\n"));
	ck_assert_ptr_nonnull(strstr(c.buf, "Content-Security-Policy: "));
	ck_assert_ptr_nonnull(strstr(c.buf, "<title>distmgr</title>"));
	ck_assert_ptr_nonnull(strstr(c.buf, "new EventSource('events')"));
	ck_assert_ptr_nonnull(strstr(c.buf, "</html>\n"));
	client_close(&c);

	client_open(&c, port, "GET /nope HTTP/1.0\r\nHost: localhost\r\n\r\n",
	    0);
	ck_assert(client_wait(base, &c, NULL));
	ck_assert(strncmp(c.buf, "HTTP/1.0 404 Not Found\r\n", 24) == 0);
	client_close(&c);

	/* DNS rebinding: a page elsewhere must not read the run. */
	client_open(&c, port, "GET /state HTTP/1.0\r\nHost: evil.example:80"
	    "\r\n\r\n", 0);
	ck_assert(client_wait(base, &c, NULL));
	ck_assert(strncmp(c.buf, "HTTP/1.0 403 Forbidden\r\n", 24) == 0);
	client_close(&c);

	client_open(&c, port, "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\n"
	    "Content-Length: 0\r\n\r\n", 0);
	ck_assert(client_wait(base, &c, NULL));
	ck_assert(strncmp(c.buf, "HTTP/1.1 501 Not Implemented\r\n", 30) == 0);
	client_close(&c);
	r->ops->free(r);
	event_base_free(base);
}
END_TEST

START_TEST(test_state_json)
{
	struct event_base *base = event_base_new();
	struct reporter *r = new_web(base);
	struct client c;
	json_t *m;
	char *body;

	fx_run_all(r);
	client_open(&c, url_port(reporter_web_url(r)), "GET /state HTTP/1.0"
	    "\r\nHost: localhost:1\r\n\r\n", 0);
	ck_assert(client_wait(base, &c, NULL));
	ck_assert_ptr_nonnull(strstr(c.buf, "Content-Type: application/json"));
	body = strstr(c.buf, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	m = json_loads(body + 4, 0, NULL);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(json_integer_value(json_object_get(m, "done")), 10);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m,
	    "counts"), "fail")), 1);
	json_decref(m);
	client_close(&c);
	r->ops->free(r);
	event_base_free(base);
}
END_TEST

/* The stream: a snapshot first, then one update per tick however many
 * results arrived in it, and the summary at the end. */
START_TEST(test_event_stream)
{
	struct event_base *base = event_base_new();
	struct reporter *r = new_web(base);
	struct client c;
	struct test_report t = fx_reports[0];
	struct run_summary s;
	const char *u;
	int updates = 0;

	client_open(&c, url_port(reporter_web_url(r)), "GET /events HTTP/1.1"
	    "\r\nHost: 127.0.0.1\r\n\r\n", 0);
	ck_assert(client_wait(base, &c, "event: snapshot\ndata: {"));
	ck_assert(strncmp(c.buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
	ck_assert_ptr_nonnull(strstr(c.buf, "Content-Type: text/event-stream"));
	ck_assert_ptr_nonnull(strstr(c.buf, "retry: 2000\n\n"));
	ck_assert_uint_eq(reporter_web_clients(r), 1);

	fx_start(r, &fx_run_info);
	/* A thousand results before the loop runs again: one update. */
	for (int i = 0; i < 1000; i++)
		r->ops->test_result(r, &t);
	ck_assert(client_wait(base, &c, "\"done\":1000"));
	for (u = c.buf; (u = strstr(u, "event: update\n")) != NULL; u++)
		updates++;
	ck_assert_int_le(updates, 2);	/* run_start's, then the batch */
	ck_assert_ptr_nonnull(strstr(c.buf, "\"pass\":1000"));

	s = fx_summary(&t, 1);
	s.counts.n[OUT_PASS] = 1000;
	s.elapsed = 1.25;
	s.exit_code = 0;
	r->ops->run_end(r, &s);
	ck_assert(client_wait(base, &c, "\"line\":\"1000 passed in 1.25s\""));
	r->ops->free(r);
	/* Freed: the connection closes after what was sent. */
	ck_assert(client_wait(base, &c, NULL));
	client_close(&c);
	event_base_free(base);
}
END_TEST

/* distmgr ends its loop, reports the end and frees its reporters
 * without running the loop again: an open page must still get the
 * summary. */
START_TEST(test_summary_reaches_page_after_loop)
{
	struct event_base *base = event_base_new();
	struct reporter *r = new_web(base);
	struct client c;
	struct run_summary s = fx_summary(fx_reports, FX_NREPORTS);

	client_open(&c, url_port(reporter_web_url(r)), "GET /events HTTP/1.1"
	    "\r\nHost: 127.0.0.1\r\n\r\n", 0);
	ck_assert(client_wait(base, &c, "event: snapshot\n"));
	fx_start(r, &fx_run_info);
	for (size_t i = 0; i < FX_NREPORTS; i++)
		fx_result(r, &fx_reports[i]);
	r->ops->run_end(r, &s);
	r->ops->free(r);
	event_base_free(base);
	/* No loop from here on: what arrives was written by free. */
	fd_set_nonblock(c.fd, 0);
	while (!c.eof) {
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN };

		ck_assert_int_eq(poll(&pfd, 1, 20000), 1);
		client_read(&c);
	}
	ck_assert_ptr_nonnull(strstr(c.buf, "\"summary\":{\"line\":\"1 passed, "
	    "1 failed,"));
	ck_assert_ptr_nonnull(strstr(c.buf, "\"done\":10,"));
	client_close(&c);
}
END_TEST

/* A browser that connects mid-run gets everything so far at once. */
START_TEST(test_late_browser_catches_up)
{
	struct event_base *base = event_base_new();
	struct reporter *r = new_web(base);
	struct client c;

	fx_start(r, &fx_run_info);
	for (size_t i = 0; i < 5; i++)
		fx_result(r, &fx_reports[i]);
	tu_loop_for(base, 0.05);
	client_open(&c, url_port(reporter_web_url(r)), "GET /events HTTP/1.1"
	    "\r\nHost: [::1]:8\r\n\r\n", 0);
	ck_assert(client_wait(base, &c, "event: snapshot\n"));
	ck_assert(client_wait(base, &c, "\n\n"));
	ck_assert_ptr_nonnull(strstr(c.buf, "\"done\":5"));
	ck_assert_ptr_nonnull(strstr(c.buf, "\"message\":\"expected 4 == 5\""));
	ck_assert_ptr_nonnull(strstr(c.buf, "\"signal\":\"SIGSEGV\""));
	client_close(&c);
	r->ops->free(r);
	event_base_free(base);
}
END_TEST

/* One browser stops reading: it is cut off once it falls behind, the
 * run goes on, and a browser that reads is not disturbed. */
START_TEST(test_stalled_browser_is_dropped)
{
	struct event_base *base = event_base_new();
	struct reporter *r = new_web(base);
	struct client slow, good;
	struct test_report t = fx_reports[0];
	char id[64], wid[16];
	int port = url_port(reporter_web_url(r));

	signal(SIGPIPE, SIG_IGN);
	client_open(&slow, port, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "\r\n", 4096);
	client_open(&good, port, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "\r\n", 0);
	ck_assert(client_wait(base, &good, "event: snapshot\n"));
	ck_assert_uint_eq(reporter_web_clients(r), 2);
	fx_start(r, &fx_run_info);
	t.id = id;
	t.worker = wid;
	/* Each round changes 256 lanes by 64 tests: about a megabyte of
	 * updates per tick, which the slow browser never reads. */
	for (int round = 0; round < 200 && reporter_web_clients(r) == 2;
	    round++) {
		for (int i = 0; i < 256 * 64; i++) {
			snprintf(wid, sizeof wid, "w%d", i % 256);
			snprintf(id, sizeof id, "suite/a_rather_long_test_name_%d_%d",
			    round, i);
			r->ops->test_result(r, &t);
		}
		loop_reading(base, &good, 0.12);
	}
	ck_assert_uint_eq(reporter_web_clients(r), 1);
	/* The good one still gets updates. */
	r->ops->test_result(r, &t);
	ck_assert(client_wait(base, &good, "event: update\n"));
	client_close(&slow);
	client_close(&good);
	r->ops->free(r);
	event_base_free(base);
}
END_TEST

/* A browser that closes its tab is forgotten. */
START_TEST(test_vanished_browser)
{
	struct event_base *base = event_base_new();
	struct reporter *r = new_web(base);
	struct client c;
	struct test_report t = fx_reports[0];
	double end;

	signal(SIGPIPE, SIG_IGN);
	client_open(&c, url_port(reporter_web_url(r)), "GET /events HTTP/1.1"
	    "\r\nHost: 127.0.0.1\r\n\r\n", 0);
	ck_assert(client_wait(base, &c, "event: snapshot\n"));
	client_close(&c);
	end = clock_mono() + 20;
	while (reporter_web_clients(r) > 0 && clock_mono() < end) {
		r->ops->test_result(r, &t);
		tu_loop_for(base, 0.05);
	}
	ck_assert_uint_eq(reporter_web_clients(r), 0);
	r->ops->free(r);
	event_base_free(base);
}
END_TEST

START_TEST(test_too_many_browsers)
{
	struct event_base *base = event_base_new();
	struct reporter *r = new_web(base);
	struct client c[33];
	int port = url_port(reporter_web_url(r));

	for (int i = 0; i < 33; i++) {
		client_open(&c[i], port, "GET /events HTTP/1.1\r\nHost: "
		    "127.0.0.1\r\n\r\n", 0);
		ck_assert(client_wait(base, &c[i], i < 32 ? "event: snapshot\n" :
		    "HTTP/1.1 503"));
	}
	ck_assert_uint_eq(reporter_web_clients(r), 32);
	for (int i = 0; i < 33; i++)
		client_close(&c[i]);
	r->ops->free(r);
	event_base_free(base);
}
END_TEST

START_TEST(test_listen_errors)
{
	struct event_base *base = event_base_new();
	struct reporter *r = new_web(base), *r2;
	char why[256], spec[64];

	snprintf(spec, sizeof spec, "127.0.0.1:%d",
	    url_port(reporter_web_url(r)));
	ck_assert_ptr_null(reporter_web_new(base, spec, why, sizeof why));
	ck_assert_msg(strstr(why, "Address already in use") != NULL, "%s", why);
	ck_assert_ptr_null(reporter_web_new(base, "70000", why, sizeof why));
	ck_assert_str_eq(why, "web: '70000' is not [ADDR:]PORT (a port 0-65535, "
	    "0 for any free port)");
	ck_assert_ptr_null(reporter_web_new(base, ":80", why, sizeof why));
	ck_assert_ptr_null(reporter_web_new(base, "::1:80", why, sizeof why));
	ck_assert_ptr_null(reporter_web_new(base, "x", why, sizeof why));
	r2 = reporter_web_new(base, "[::1]:0", why, sizeof why);
	if (r2 != NULL) {	/* where IPv6 loopback exists */
		ck_assert(strncmp(reporter_web_url(r2), "http://[::1]:", 13) == 0);
		r2->ops->free(r2);
	}
	r->ops->free(r);
	event_base_free(base);
}
END_TEST

/* ---- --serve: a synthetic run for the integration tests ------------- */

/*
 * test_reporter_web --serve [--tests N] [--gate FILE] [--quit FILE]
 *
 * Prints "url URL" and serves the dashboard while feeding it N results
 * (default 40) on a 20 ms timer from three workers: a failure at the
 * third ("expected 42, got 41", with output), a crash at the eighth,
 * the rest mostly passes. With --gate it stops halfway until FILE
 * exists, so a test can look at the page mid-run without racing it.
 * It prints "ended" after run_end and exits when --quit FILE exists
 * (or after 120 s), freeing the reporter as distmgr does.
 */
struct serve {
	struct event_base *base;
	struct reporter	*r;
	struct event	*timer;
	const char	*gate;
	const char	*quit;
	int		 ntests;
	int		 n;
	int		 ended;
	double		 end_at;
	struct counts	 counts;
	char		 running[3][64];
};

static const char *const serve_workers[] = { "w0", "w1", "w2" };

static void
serve_progress(struct serve *s)
{
	const char *running[3];
	struct progress p;

	memset(&p, 0, sizeof p);
	for (int i = 0; i < 3; i++)
		running[i] = s->running[i][0] != '\0' ? s->running[i] : NULL;
	p.done = (size_t)s->n;
	p.total = (size_t)s->ntests;
	p.counts = s->counts;
	p.nworkers = 3;
	p.running = running;
	p.workers = serve_workers;
	p.eta = (s->ntests - s->n) * 0.02;
	s->r->ops->progress(s->r, &p);
}

static void
serve_one(struct serve *s)
{
	struct test_report t;
	char id[64], msg[64];
	int k = s->n % 3;

	memset(&t, 0, sizeof t);
	snprintf(id, sizeof id, "demo/test_%03d", s->n + 1);
	t.id = id;
	t.suite_path = "demo.so";
	t.file = "demo.c";
	t.line = 10 + s->n;
	t.worker = serve_workers[k];
	t.host = "localhost";
	t.outcome = OUT_PASS;
	t.duration = 0.005 + 0.001 * (s->n % 7);
	t.exit_status = -1;
	t.attempts = 1;
	if (s->n == 2) {
		t.outcome = OUT_FAIL;
		snprintf(msg, sizeof msg, "expected 42, got 41");
		t.message = msg;
		t.fail_file = "demo.c";
		t.fail_line = 33;
		t.out = "stdout of the failing test\n";
		t.out_len = strlen(t.out);
	} else if (s->n == 7) {
		t.outcome = OUT_CRASH;
		t.signal = 11;
		t.signal_name = "SIGSEGV";
	} else if (s->n % 11 == 5)
		t.outcome = OUT_SKIP;
	s->counts.n[t.outcome]++;
	s->n++;
	fx_result(s->r, &t);
	snprintf(s->running[k], sizeof s->running[k], "demo/test_%03d",
	    s->n + 3);
	serve_progress(s);
}

static void
serve_end(struct serve *s)
{
	struct run_summary sum;

	memset(&sum, 0, sizeof sum);
	sum.counts = s->counts;
	sum.elapsed = s->ntests * 0.02;
	sum.exit_code = 1;
	for (int i = 0; i < 3; i++)
		s->running[i][0] = '\0';
	s->r->ops->run_end(s->r, &sum);
	s->ended = 1;
	s->end_at = clock_mono();
	printf("ended\n");
	fflush(stdout);
}

static void
serve_tick(evutil_socket_t fd, short what, void *arg)
{
	struct serve *s = arg;
	struct stat st;

	(void)fd;
	(void)what;
	if (s->ended) {
		if ((s->quit != NULL && stat(s->quit, &st) == 0) ||
		    clock_mono() - s->end_at > 120)
			event_base_loopbreak(s->base);
		return;
	}
	if (s->gate != NULL && s->n == s->ntests / 2 &&
	    stat(s->gate, &st) == -1)
		return;
	if (s->n < s->ntests)
		serve_one(s);
	else
		serve_end(s);
}

static int
serve_main(int argc, char **argv)
{
	struct serve s;
	struct run_info ri = fx_run_info;
	struct worker_info wi = fx_workers[0];
	struct timeval tv = { 0, 20000 };
	char why[256];

	memset(&s, 0, sizeof s);
	s.ntests = 40;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--tests") == 0)
			s.ntests = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--gate") == 0)
			s.gate = argv[i + 1];
		else if (strcmp(argv[i], "--quit") == 0)
			s.quit = argv[i + 1];
	}
	signal(SIGPIPE, SIG_IGN);
	s.base = event_base_new();
	s.r = reporter_web_new(s.base, "127.0.0.1:0", why, sizeof why);
	if (s.r == NULL) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	printf("url %s\n", reporter_web_url(s.r));
	fflush(stdout);
	ri.ntests = (size_t)s.ntests;
	ri.nworkers = 3;
	ri.run_id = "serve-1";
	ri.start_wall = clock_wall();
	s.r->ops->run_start(s.r, &ri);
	for (int i = 0; i < 3; i++) {
		wi.id = serve_workers[i];
		wi.pid = 1000 + i;
		s.r->ops->worker_up(s.r, &wi);
	}
	s.timer = event_new(s.base, -1, EV_PERSIST, serve_tick, &s);
	event_add(s.timer, &tv);
	event_base_dispatch(s.base);
	event_free(s.timer);
	s.r->ops->free(s.r);
	event_base_free(s.base);
	return 0;
}

int
main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;
	SRunner *sr;
	int nf;

	if (argc > 1 && strcmp(argv[1], "--serve") == 0)
		return serve_main(argc, argv);
	s = suite_create("reporter-web");
	tc = tcase_create("web");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_state_snapshot);
	tcase_add_test(tc, test_state_delta);
	tcase_add_test(tc, test_state_durations_and_next_run);
	tcase_add_test(tc, test_state_is_bounded);
	tcase_add_test(tc, test_serves_the_page);
	tcase_add_test(tc, test_state_json);
	tcase_add_test(tc, test_event_stream);
	tcase_add_test(tc, test_summary_reaches_page_after_loop);
	tcase_add_test(tc, test_late_browser_catches_up);
	tcase_add_test(tc, test_stalled_browser_is_dropped);
	tcase_add_test(tc, test_vanished_browser);
	tcase_add_test(tc, test_too_many_browsers);
	tcase_add_test(tc, test_listen_errors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

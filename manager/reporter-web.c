/*
 * reporter-web.c - --web [ADDR:]PORT: the live dashboard, served by the
 * manager itself with libevent's evhttp.
 *
 *   GET /        the page (HTML, CSS and JS compiled in: webpage.c)
 *   GET /events  server-sent events: "snapshot" once, then "update"
 *                deltas at most every WEB_TICK_MS
 *   GET /state   the snapshot as plain JSON, for scripts
 *
 * The run must never wait for a browser. Results only update the bounded
 * state in web-state.c; a timer turns what changed into one message per
 * tick, so a hundred thousand results a second cost each browser ten
 * messages. A browser that does not read falls behind by at most
 * WEB_CLIENT_QUEUE_MAX bytes and is then disconnected (its EventSource
 * reconnects and gets a fresh snapshot); nothing ever blocks on a
 * socket, except the bounded flush when the reporter is freed, so that
 * an open page sees the final summary.
 *
 * It listens on loopback unless told otherwise, and then answers only
 * requests whose Host names a loopback address, so that a web page
 * elsewhere cannot read test output through DNS rebinding.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

#define WEB_TICK_MS		100
#define WEB_KEEPALIVE		15.0	/* seconds between comments when
					   nothing changes, to find dead
					   browsers */
#define WEB_CLIENTS_MAX		32
#define WEB_CLIENT_QUEUE_MAX	(4u * 1024 * 1024)
#define WEB_FLUSH_TIMEOUT	1.0	/* at the end, for all browsers */
#define WEB_HTTP_TIMEOUT	30	/* seconds: a stuck request */
#define WEB_RETRY_MS		2000	/* EventSource reconnect delay */

struct web_client {
	struct web		*w;
	struct evhttp_request	*req;
	struct evhttp_connection *evcon;
	int			 drop;		/* we close it at the next reap */
	int			 gone;		/* its connection is freed */
	int			 owns_req;	/* libevent left req to us */
	int			 closing;	/* we are freeing its connection */
};

struct web {
	struct event_base	*base;
	struct evhttp		*http;
	struct wst		*st;
	struct web_client	**clients;
	size_t			 nclients;
	struct event		*tick;
	struct event		*reap;
	double			 last_send;
	int			 loopback;
	int			 freeing;
	char			 url[160];
};

static void	web_reap_now(struct web *);

/* ---- sending -------------------------------------------------------- */

static size_t
web_client_queued(const struct web_client *c)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);

	return evbuffer_get_length(bufferevent_get_output(bev));
}

static void
web_schedule_reap(struct web *w)
{
	if (!w->freeing)
		event_active(w->reap, EV_TIMEOUT, 0);
}

static void
web_client_send(struct web_client *c, const char *msg, size_t len)
{
	struct evbuffer *b;

	if (c->drop || c->gone)
		return;
	if (web_client_queued(c) + len > WEB_CLIENT_QUEUE_MAX) {
		/* Its page reconnects and starts over from a snapshot. */
		log_debug("web: a browser fell behind; disconnecting it");
		c->drop = 1;
		web_schedule_reap(c->w);
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		fatalx("web: out of memory");
	evbuffer_add(b, msg, len);
	evhttp_send_reply_chunk(c->req, b);
	evbuffer_free(b);
}

static char *
web_event_text(const char *event, json_t *data, size_t *len)
{
	char *json, *msg;

	/* Compact JSON has no newline, so one data: line holds it. */
	json = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(data);
	if (json == NULL)
		fatalx("web: cannot encode an update");
	*len = (size_t)xasprintf(&msg, "event: %s\ndata: %s\n\n", event, json);
	free(json);
	return msg;
}

static void
web_broadcast(struct web *w, const char *msg, size_t len)
{
	for (size_t i = 0; i < w->nclients; i++)
		web_client_send(w->clients[i], msg, len);
	w->last_send = clock_mono();
}

/* Sends what changed to every browser, now. */
static void
web_flush_delta(struct web *w)
{
	char *msg;
	size_t len;

	if (!wst_dirty(w->st))
		return;
	if (w->nclients == 0) {
		/* Nobody to tell: mark it sent, snapshots cover it. */
		json_decref(wst_delta(w->st, clock_mono()));
		return;
	}
	msg = web_event_text("update", wst_delta(w->st, clock_mono()), &len);
	web_broadcast(w, msg, len);
	free(msg);
}

static void
web_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;

	(void)fd;
	(void)what;
	if (w->nclients == 0) {
		event_del(w->tick);
		return;
	}
	if (wst_dirty(w->st))
		web_flush_delta(w);
	else if (clock_mono() - w->last_send > WEB_KEEPALIVE)
		web_broadcast(w, ": keepalive\n\n", 13);
}

/* ---- clients -------------------------------------------------------- */

static void
web_client_free(struct web_client *c)
{
	if (c->owns_req && c->req != NULL)
		evhttp_request_free(c->req);
	free(c);
}

/* libevent frees the connection: the browser went away, or evhttp_free.
 * When the request was detached from it, it is ours to free. */
static void
web_on_close(struct evhttp_connection *evcon, void *arg)
{
	struct web_client *c = arg;

	(void)evcon;
	if (c->closing)
		return;
	c->gone = 1;
	c->evcon = NULL;
	if (evhttp_request_get_connection(c->req) == NULL)
		c->owns_req = 1;
	else
		c->req = NULL;	/* freed with the connection */
	web_schedule_reap(c->w);
}

static void
web_reap_now(struct web *w)
{
	size_t i, j;
	struct web_client *c;

	for (i = j = 0; i < w->nclients; i++) {
		c = w->clients[i];
		if (c->drop && !c->gone) {
			c->closing = 1;
			evhttp_connection_free(c->evcon);
			c->req = NULL;
			c->gone = 1;
		}
		if (c->gone)
			web_client_free(c);
		else
			w->clients[j++] = c;
	}
	w->nclients = j;
}

static void
web_on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	web_reap_now(arg);
}

/* ---- requests ------------------------------------------------------- */

static void
web_common_headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

static void
web_reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL)
		fatalx("web: out of memory");
	web_common_headers(req, "text/plain; charset=utf-8");
	evbuffer_add_printf(b, "%s\n", text);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void
web_serve_page(struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL)
		fatalx("web: out of memory");
	web_common_headers(req, "text/html; charset=utf-8");
	/* Everything the page needs is inline; it may only talk back to
	 * this server. */
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Security-Policy", "default-src 'none'; "
	    "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
	    "connect-src 'self'; img-src data:");
	evbuffer_add_reference(b, web_page_html,
	    (size_t)(web_page_html_end - web_page_html), NULL, NULL);
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

static void
web_serve_state(struct web *w, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	json_t *snap = wst_snapshot(w->st, clock_mono());
	char *json = json_dumps(snap, 0);

	json_decref(snap);
	if (b == NULL || json == NULL)
		fatalx("web: out of memory");
	web_common_headers(req, "application/json");
	evbuffer_add(b, json, strlen(json));
	evbuffer_add(b, "\n", 1);
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
	free(json);
}

static void
web_serve_events(struct web *w, struct evhttp_request *req)
{
	struct web_client *c;
	char *msg, retry[32];
	size_t len;

	if (w->nclients >= WEB_CLIENTS_MAX) {
		web_reply_text(req, 503, "Service Unavailable",
		    "too many browsers are watching this run");
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->w = w;
	c->req = req;
	c->evcon = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(c->evcon, web_on_close, c);
	/* Browsers that are already watching get what changed first, so
	 * that the snapshot and their deltas meet without a gap. */
	web_flush_delta(w);
	web_common_headers(req, "text/event-stream; charset=utf-8");
	evhttp_send_reply_start(req, HTTP_OK, "OK");
	w->clients = xreallocarray(w->clients, w->nclients + 1,
	    sizeof *w->clients);
	w->clients[w->nclients++] = c;
	snprintf(retry, sizeof retry, "retry: %d\n\n", WEB_RETRY_MS);
	web_client_send(c, retry, strlen(retry));
	msg = web_event_text("snapshot", wst_snapshot(w->st, clock_mono()),
	    &len);
	web_client_send(c, msg, len);
	free(msg);
	if (!event_pending(w->tick, EV_TIMEOUT, NULL)) {
		struct timeval tv = { 0, WEB_TICK_MS * 1000 };

		event_add(w->tick, &tv);
	}
}

/* Host: must name a loopback address when we listen on loopback. */
static int
web_host_ok(const struct web *w, struct evhttp_request *req)
{
	const char *host = evhttp_request_get_host(req);
	char buf[256], *colon;
	struct in_addr a4;

	if (!w->loopback)
		return 1;
	if (host == NULL)
		return 0;
	snprintf(buf, sizeof buf, "%s", host);
	if (buf[0] == '[')
		return strncmp(buf, "[::1]", 5) == 0;
	if ((colon = strrchr(buf, ':')) != NULL)
		*colon = '\0';
	if (strcasecmp(buf, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, buf, &a4) == 1 &&
	    (ntohl(a4.s_addr) >> 24) == 127;
}

static void
web_route(struct evhttp_request *req, void *arg)
{
	struct web *w = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	int head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;

	if (w->freeing) {
		web_reply_text(req, 503, "Service Unavailable", "the run is over");
		return;
	}
	if (!web_host_ok(w, req)) {
		web_reply_text(req, 403, "Forbidden",
		    "this dashboard answers only on a loopback address");
		return;
	}
	if (path == NULL || *path == '\0' || strcmp(path, "/") == 0 ||
	    strcmp(path, "/index.html") == 0)
		web_serve_page(req);
	else if (strcmp(path, "/events") == 0 && !head)
		web_serve_events(w, req);
	else if (strcmp(path, "/state") == 0)
		web_serve_state(w, req);
	else
		web_reply_text(req, HTTP_NOTFOUND, "Not Found", "not found");
}

/* ---- the reporter --------------------------------------------------- */

static void
web_run_start(struct reporter *r, const struct run_info *ri)
{
	struct web *w = r->priv;

	wst_run_start(w->st, ri, clock_mono());
	web_flush_delta(w);
}

static void
web_worker_up(struct reporter *r, const struct worker_info *wi)
{
	struct web *w = r->priv;

	wst_worker(w->st, wi, 1, NULL);
}

static void
web_worker_down(struct reporter *r, const struct worker_info *wi,
    const char *why)
{
	struct web *w = r->priv;

	wst_worker(w->st, wi, 0, why);
}

static void
web_test_result(struct reporter *r, const struct test_report *t)
{
	struct web *w = r->priv;

	wst_result(w->st, t, clock_mono());
}

static void
web_progress(struct reporter *r, const struct progress *p)
{
	struct web *w = r->priv;

	wst_progress(w->st, p, clock_mono());
}

static void
web_notice(struct reporter *r, int level, const char *text)
{
	struct web *w = r->priv;

	wst_notice(w->st, level, text);
}

static void
web_run_end(struct reporter *r, const struct run_summary *s)
{
	struct web *w = r->priv;

	wst_run_end(w->st, s, clock_mono());
	/* distmgr may exit right after this: no waiting for the tick. */
	web_flush_delta(w);
}

/* Gives each open page a moment to receive what it was sent, so that it
 * shows the final summary after distmgr exits. Bounded in total. */
static void
web_flush_clients(struct web *w)
{
	double deadline = clock_mono() + WEB_FLUSH_TIMEOUT, left;
	struct bufferevent *bev;
	struct evbuffer *out;
	struct pollfd pfd;
	int fd;

	for (size_t i = 0; i < w->nclients; i++) {
		struct web_client *c = w->clients[i];

		if (c->gone || c->drop)
			continue;
		bev = evhttp_connection_get_bufferevent(c->evcon);
		out = bufferevent_get_output(bev);
		fd = bufferevent_getfd(bev);
		/* A socket bufferevent keeps its output's front frozen so
		 * that only it writes; the loop has stopped, so we do. */
		evbuffer_unfreeze(out, 1);
		while (evbuffer_get_length(out) > 0 &&
		    (left = deadline - clock_mono()) > 0) {
			if (evbuffer_write(out, fd) == -1 && errno != EAGAIN &&
			    errno != EINTR)
				break;
			if (evbuffer_get_length(out) == 0)
				break;
			pfd.fd = fd;
			pfd.events = POLLOUT;
			(void)poll(&pfd, 1, (int)(left * 1000) + 1);
		}
		evbuffer_freeze(out, 1);
	}
}

static void
web_free(struct reporter *r)
{
	struct web *w = r->priv;

	web_flush_delta(w);
	web_reap_now(w);
	web_flush_clients(w);
	w->freeing = 1;
	for (size_t i = 0; i < w->nclients; i++)
		w->clients[i]->closing = 1;
	/* Frees every connection and the requests still attached. */
	evhttp_free(w->http);
	for (size_t i = 0; i < w->nclients; i++) {
		w->clients[i]->req = NULL;
		web_client_free(w->clients[i]);
	}
	free(w->clients);
	event_free(w->tick);
	event_free(w->reap);
	wst_free(w->st);
	free(w);
	free(r);
}

static const struct reporter_ops web_ops = {
	.name = "web",
	.run_start = web_run_start,
	.worker_up = web_worker_up,
	.worker_down = web_worker_down,
	.test_result = web_test_result,
	.progress = web_progress,
	.notice = web_notice,
	.run_end = web_run_end,
	.free = web_free,
};

/* "PORT", "ADDR:PORT" or "[V6]:PORT" into addr and port. */
static int
web_parse_addr(const char *spec, char *addr, size_t size, int *port,
    char *why, size_t whylen)
{
	const char *p, *colon = strrchr(spec, ':');
	char *end;
	long n;

	if (colon == NULL) {
		snprintf(addr, size, "127.0.0.1");
		p = spec;
	} else if (spec[0] == '[' && colon > spec && colon[-1] == ']') {
		snprintf(addr, size, "%.*s", (int)(colon - spec - 2), spec + 1);
		p = colon + 1;
	} else {
		snprintf(addr, size, "%.*s", (int)(colon - spec), spec);
		p = colon + 1;
	}
	errno = 0;
	n = strtol(p, &end, 10);
	if (*addr == '\0' || *p == '\0' || *end != '\0' || errno != 0 ||
	    n < 0 || n > 65535 || (colon != NULL && strchr(addr, ':') != NULL &&
	    spec[0] != '[')) {
		snprintf(why, whylen, "web: '%s' is not [ADDR:]PORT (a port "
		    "0-65535, 0 for any free port)", spec);
		return -1;
	}
	*port = (int)n;
	return 0;
}

/* The URL to print, and whether we listen on loopback only. */
static void
web_name_self(struct web *w, struct evhttp_bound_socket *bs)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[INET6_ADDRSTRLEN + 2], name[128];
	int port = 0;

	memset(&ss, 0, sizeof ss);
	(void)getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
	    &sl);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		port = ntohs(s6->sin6_port);
		w->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
		host[0] = '[';
		inet_ntop(AF_INET6, &s6->sin6_addr, host + 1, sizeof host - 2);
		strcat(host, "]");
		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			host[0] = '\0';
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		port = ntohs(s4->sin_port);
		w->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
			host[0] = '\0';
	}
	if (host[0] == '\0') {
		if (gethostname(name, sizeof name) == -1)
			snprintf(name, sizeof name, "localhost");
		name[sizeof name - 1] = '\0';
		snprintf(host, sizeof host, "%.*s", (int)sizeof host - 1, name);
	}
	snprintf(w->url, sizeof w->url, "http://%s:%d/", host, port);
}

struct reporter *
reporter_web_new(struct event_base *base, const char *addr_port, char *why,
    size_t whylen)
{
	struct evhttp_bound_socket *bs;
	struct reporter *r;
	struct web *w;
	char addr[128];
	int port;

	if (addr_port == NULL || web_parse_addr(addr_port, addr, sizeof addr,
	    &port, why, whylen) == -1)
		return NULL;
	w = xcalloc(1, sizeof *w);
	w->base = base;
	if ((w->http = evhttp_new(base)) == NULL)
		fatalx("web: cannot create the HTTP server");
	errno = 0;
	if ((bs = evhttp_bind_socket_with_handle(w->http, addr,
	    (ev_uint16_t)port)) == NULL) {
		snprintf(why, whylen, "web: cannot listen on %s: %s", addr_port,
		    errno != 0 ? strerror(errno) : "unknown address");
		evhttp_free(w->http);
		free(w);
		return NULL;
	}
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(w->http, 16 * 1024);
	evhttp_set_max_body_size(w->http, 0);
	evhttp_set_timeout(w->http, WEB_HTTP_TIMEOUT);
	evhttp_set_gencb(w->http, web_route, w);
	w->st = wst_new(clock_mono());
	w->tick = event_new(base, -1, EV_PERSIST, web_on_tick, w);
	w->reap = event_new(base, -1, 0, web_on_reap, w);
	if (w->tick == NULL || w->reap == NULL)
		fatalx("web: cannot create events");
	web_name_self(w, bs);
	fprintf(stderr, "%s: live dashboard at %s\n", log_progname(), w->url);
	if (!w->loopback)
		log_warn("web: the dashboard is reachable from the network "
		    "and has no password; it shows every test's output");
	r = xcalloc(1, sizeof *r);
	r->ops = &web_ops;
	r->priv = w;
	return r;
}

const char *
reporter_web_url(const struct reporter *r)
{
	const struct web *w = r->priv;

	return w->url;
}

size_t
reporter_web_clients(const struct reporter *r)
{
	const struct web *w = r->priv;
	size_t n = 0;

	for (size_t i = 0; i < w->nclients; i++)
		if (!w->clients[i]->gone && !w->clients[i]->drop)
			n++;
	return n;
}

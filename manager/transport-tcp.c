/*
 * transport-tcp.c - a worker in a running `distworker --listen` daemon:
 * resolve the name (without blocking), connect to each address in turn,
 * then the TLS handshake in which this manager shows its certificate and
 * checks the daemon's against the farm's CA and the name or address the
 * user gave. Plain TCP is allowed only when every byte stays on this
 * machine: the address connected to must be a loopback one.
 *
 * The socket gets TCP_NODELAY (a result is one small frame: waiting to
 * coalesce would cost a round trip per test), keepalives and a user
 * timeout, so that a peer gone silent is noticed even while nothing is
 * being said, as when a daemon with no free slot has not yet answered
 * hello.
 *
 * It must never call back inside tp_tcp_connect (the result goes through
 * the event loop), never hand over a connection whose handshake has not
 * completed, and must free everything on cancel at any stage.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

enum tcp_state { TT_RESOLVING, TT_CONNECTING, TT_HANDSHAKE, TT_DONE };

struct tp_tcp {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct evdns_getaddrinfo_request *req;
	struct ssl_ctx_st	*tls;
	char			*host;
	int			 port;
	double			 keepalive;
	enum tcp_state		 state;
	struct evutil_addrinfo	*ai, *cur;
	int			 fd;
	int			 cancelled;	/* free when the resolver is */
	int			 reached;	/* a TCP connection was made */
	struct event		*conn_ev;	/* the connect's completion */
	struct event		*deadline;	/* for all of it */
	struct event		*done_ev;	/* the result, from the loop */
	struct bufferevent	*bev;
	char			 why[512];
	tp_tcp_fn		 cb;
	void			*arg;
};

static void	tt_try(struct tp_tcp *);

/* The result, handed over from the loop. */
static void
tt_finish(struct tp_tcp *t, const char *fmt, ...) DM_PRINTF(2, 3);

static void
tt_finish(struct tp_tcp *t, const char *fmt, ...)
{
	va_list ap;

	if (t->state == TT_DONE)
		return;
	t->state = TT_DONE;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(t->why, sizeof t->why, fmt, ap);
		va_end(ap);
	}
	event_del(t->deadline);
	if (t->conn_ev != NULL)
		event_del(t->conn_ev);
	event_active(t->done_ev, EV_TIMEOUT, 0);
}

static void
tt_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp_tcp *t = arg;
	struct bufferevent *bev = t->bev;

	(void)fd;
	(void)what;
	t->bev = NULL;
	/* The callback may cancel (free) t: nothing of t after it. */
	t->cb(t->arg, t->why[0] == '\0' ? bev : NULL,
	    t->why[0] == '\0' ? NULL : t->why);
}

static int
tt_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr)
		    >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

/* Best effort: a socket without them still works, only slower to
 * notice a dead peer. */
static void
tt_sockopts(int fd, double keepalive)
{
	int one = 1, idle, cnt = 3;
	unsigned timeout;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (keepalive <= 0)
		return;
	idle = keepalive / 3 >= 1 ? (int)(keepalive / 3) : 1;
	timeout = (unsigned)(keepalive * 1000);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout,
	    sizeof timeout);
}

static void
tt_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tp_tcp *t = arg;
	char why[400];

	if (what & BEV_EVENT_CONNECTED) {
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		tt_finish(t, NULL);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		tls_error(bev, why, sizeof why);
		bufferevent_free(bev);
		t->bev = NULL;
		tt_finish(t, "TLS handshake with %s:%d: %s", t->host, t->port,
		    why);
	}
}

/* Connected: TLS, or plain when the address is a loopback one. */
static void
tt_connected(struct tp_tcp *t)
{
	int fd = t->fd;

	t->fd = -1;
	t->reached = 1;
	tt_sockopts(fd, t->keepalive);
	if (t->tls == NULL) {
		if (!tt_is_loopback(t->cur->ai_addr)) {
			close(fd);
			tt_finish(t, "%s:%d is not on this machine: TLS is "
			    "needed (--tls-cert, --tls-key, --tls-ca)", t->host,
			    t->port);
			return;
		}
		t->bev = bufferevent_socket_new(t->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
		if (t->bev == NULL) {
			close(fd);
			tt_finish(t, "cannot create a bufferevent");
			return;
		}
		tt_finish(t, NULL);
		return;
	}
	t->state = TT_HANDSHAKE;
	if ((t->bev = tls_connect(t->base, t->tls, fd, t->host)) == NULL) {
		tt_finish(t, "cannot start TLS with %s:%d", t->host, t->port);
		return;
	}
	bufferevent_setcb(t->bev, NULL, NULL, tt_event_cb, t);
	bufferevent_enable(t->bev, EV_READ | EV_WRITE);
}

static void
tt_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp_tcp *t = arg;
	socklen_t len = sizeof(int);
	int err = 0;
	char addr[INET6_ADDRSTRLEN + 1];

	(void)fd;
	(void)what;
	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		close(t->fd);
		t->fd = -1;
		if (getnameinfo(t->cur->ai_addr, t->cur->ai_addrlen, addr,
		    sizeof addr, NULL, 0, NI_NUMERICHOST) != 0)
			snprintf(addr, sizeof addr, "?");
		snprintf(t->why, sizeof t->why, "cannot connect to %s:%d (%s): "
		    "%s", t->host, t->port, addr, strerror(err));
		t->cur = t->cur->ai_next;
		tt_try(t);
		return;
	}
	tt_connected(t);
}

/* The next address; the last error stays in why when none is left. */
static void
tt_try(struct tp_tcp *t)
{
	for (; t->cur != NULL; t->cur = t->cur->ai_next) {
		t->fd = socket(t->cur->ai_family, t->cur->ai_socktype |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, t->cur->ai_protocol);
		if (t->fd == -1)
			continue;
		if (connect(t->fd, t->cur->ai_addr, t->cur->ai_addrlen) == 0) {
			tt_connected(t);
			return;
		}
		if (errno == EINPROGRESS)
			break;
		snprintf(t->why, sizeof t->why, "cannot connect to %s:%d: %s",
		    t->host, t->port, strerror(errno));
		close(t->fd);
		t->fd = -1;
	}
	if (t->cur == NULL) {
		/* The last address's error is in why already. */
		if (t->why[0] == '\0')
			snprintf(t->why, sizeof t->why, "%s: no address to "
			    "connect to", t->host);
		tt_finish(t, NULL);
		return;
	}
	t->state = TT_CONNECTING;
	if (t->conn_ev != NULL)
		event_free(t->conn_ev);
	t->conn_ev = event_new(t->base, t->fd, EV_WRITE, tt_connect_cb, t);
	event_add(t->conn_ev, NULL);
}

static void
tt_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct tp_tcp *t = arg;

	t->req = NULL;
	if (t->cancelled) {
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		tp_tcp_cancel(t);
		return;
	}
	if (t->state == TT_DONE) {	/* the deadline came first */
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		return;
	}
	if (err != 0) {
		tt_finish(t, "cannot resolve %s: %s", t->host,
		    evutil_gai_strerror(err));
		return;
	}
	t->ai = t->cur = ai;
	t->why[0] = '\0';
	tt_try(t);
}

/* The whole of it has one deadline: a host that takes its time to
 * accept or to answer the handshake never came up. */
static void
tt_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp_tcp *t = arg;

	(void)fd;
	(void)what;
	switch (t->state) {
	case TT_RESOLVING:
		tt_finish(t, "resolving %s timed out", t->host);
		break;
	case TT_CONNECTING:
		close(t->fd);
		t->fd = -1;
		tt_finish(t, "connecting to %s:%d timed out", t->host,
		    t->port);
		break;
	case TT_HANDSHAKE:
		bufferevent_free(t->bev);
		t->bev = NULL;
		tt_finish(t, "the TLS handshake with %s:%d timed out", t->host,
		    t->port);
		break;
	case TT_DONE:
		break;
	}
}

struct tp_tcp *
tp_tcp_connect(struct event_base *base, struct evdns_base *dns,
    const char *host, int port, struct ssl_ctx_st *tls, double keepalive,
    tp_tcp_fn cb, void *arg)
{
	struct tp_tcp *t = xcalloc(1, sizeof *t);
	struct evutil_addrinfo hints;
	struct timeval tv = { TP_TCP_CONNECT_TIMEOUT, 0 };
	char port_s[16];

	t->base = base;
	t->dns = dns;
	t->tls = tls;
	t->host = xstrdup(host);
	t->port = port;
	t->keepalive = keepalive;
	t->fd = -1;
	t->cb = cb;
	t->arg = arg;
	t->done_ev = event_new(base, -1, 0, tt_done_cb, t);
	t->deadline = evtimer_new(base, tt_deadline_cb, t);
	event_add(t->deadline, &tv);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	snprintf(port_s, sizeof port_s, "%d", port);
	/* A numeric host, or one the resolver knows at once, calls back
	 * inside this call; that only starts the connect. */
	t->req = evdns_getaddrinfo(dns, host, port_s, &hints, tt_resolved, t);
	return t;
}

int
tp_tcp_reached(const struct tp_tcp *t)
{
	return t != NULL && t->reached;
}

void
tp_tcp_cancel(struct tp_tcp *t)
{
	if (t == NULL)
		return;
	if (t->req != NULL) {
		/* The resolver calls back later, with a cancel: t is freed
		 * then. Until then nothing of it may run. */
		t->cancelled = 1;
		t->state = TT_DONE;
		event_del(t->deadline);
		event_del(t->done_ev);
		evdns_getaddrinfo_cancel(t->req);
		return;
	}
	if (t->fd >= 0)
		close(t->fd);
	if (t->bev != NULL)
		bufferevent_free(t->bev);
	if (t->ai != NULL)
		evutil_freeaddrinfo(t->ai);
	if (t->conn_ev != NULL)
		event_free(t->conn_ev);
	event_free(t->deadline);
	event_free(t->done_ev);
	free(t->host);
	free(t);
}

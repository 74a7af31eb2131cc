/*
 * daemon-net.c - the daemon's side of the network before a session
 * exists: the listening sockets, accepting (paused on a timer when
 * descriptors run out), and each connection until its manager's hello
 * has come: the TLS handshake that authenticates it, the deadline, the
 * cap on unauthenticated connections, and the first frame, looked at in
 * place for the hello's run_id and left for the session to read.
 *
 * What it must never do: read a frame from a peer that TLS has not
 * authenticated; hold an unauthenticated connection past the deadline,
 * or more of them than the cap; spin on accept when descriptors run out;
 * touch a connection a session was forked for, except to let go of it
 * without a byte on the wire; or free a connection inside the callback
 * that noticed its end (a deferred free does it).
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"

/* Connections accepted per wakeup of a listener: the rest wait for the
 * next turn of the loop, so that a flood cannot starve the others. */
#define DNET_ACCEPT_BATCH	32
/* How long accepting pauses when descriptors (or memory) run out. */
#define DNET_ACCEPT_PAUSE	0.5
#define DNET_BACKLOG		128
/* Refusals logged in a second, at most: a flood must not fill the disk
 * with its log. */
#define DNET_REFUSALS_LOGGED	20
/* Reads of what a refused peer had already sent, before its socket is
 * closed (at most this many, of DNET_DRAIN_CHUNK bytes). */
#define DNET_DRAIN_READS	16
#define DNET_DRAIN_CHUNK	4096

enum dconn_state {
	DC_HANDSHAKE,		/* TLS handshake under way */
	DC_HELLO,		/* waiting for the first frame */
	DC_WAITING,		/* hello came; waiting for a slot */
	DC_DEAD,		/* to be freed from the loop */
};

struct dconn {
	TAILQ_ENTRY(dconn)	 entry;
	struct dnet		*net;
	struct bufferevent	*bev;
	int			 fd;
	enum dconn_state	 state;
	int			 counted;	/* in net->unauth */
	struct event		*deadline;
	char			 peer[INET6_ADDRSTRLEN + 8];
	char			 cn[128];
};

struct dlistener {
	int		 fd;
	struct event	*ev;
	char		 name[INET6_ADDRSTRLEN + 8];
};

struct dnet {
	struct event_base	*base;
	struct ssl_ctx_st	*tls;
	struct dnet_config	 cfg;
	struct dlistener	*ls;
	size_t			 nls;
	TAILQ_HEAD(, dconn)	 conns;		/* oldest first */
	TAILQ_HEAD(, dconn)	 dead;
	int			 unauth;
	struct event		*resume_ev;	/* accepting paused */
	struct event		*reap_ev;	/* frees the dead */
	int			 paused;
	double			 refused_since;	/* this second's refusals */
	int			 refused;
	int			 refused_quiet;	/* of them, not logged */
};

/* ---- addresses ---------------------------------------------------------- */

static void
dnet_name(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	const void *a;
	int port;

	if (sa->sa_family == AF_INET6) {
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		port = ntohs(((const struct sockaddr_in6 *)(const void *)
		    sa)->sin6_port);
	} else {
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		port = ntohs(((const struct sockaddr_in *)(const void *)
		    sa)->sin_port);
	}
	if (inet_ntop(sa->sa_family, a, host, sizeof host) == NULL)
		snprintf(host, sizeof host, "?");
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
	    host, port);
}

static int
dnet_is_loopback(const struct sockaddr *sa)
{
	const struct in6_addr *a6;

	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family != AF_INET6)
		return 0;
	a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) &&
	    a6->s6_addr[12] == 127);
}

int
dnet_resolve(const char *spec, struct addrinfo **res, int *loopback,
    char *why, size_t whylen)
{
	struct addrinfo hints, *ai;
	const char *colon = strrchr(spec, ':'), *port;
	char host[256];
	size_t n;
	int rc;

	if (colon == NULL || colon[1] == '\0') {
		snprintf(why, whylen, "--listen wants ADDR:PORT, not '%s'",
		    spec);
		return -1;
	}
	port = colon + 1;
	n = (size_t)(colon - spec);
	if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') {
		spec++;
		n -= 2;
	}
	if (n >= sizeof host) {
		snprintf(why, whylen, "address too long in '%s'", spec);
		return -1;
	}
	memcpy(host, spec, n);
	host[n] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(n == 0 || strcmp(host, "*") == 0 ? NULL : host,
	    port, &hints, res);
	if (rc != 0) {
		snprintf(why, whylen, "cannot listen on '%s': %s", colon - n ==
		    spec ? spec : host, gai_strerror(rc));
		return -1;
	}
	*loopback = 1;
	for (ai = *res; ai != NULL; ai = ai->ai_next)
		if (!dnet_is_loopback(ai->ai_addr))
			*loopback = 0;
	return 0;
}

/* ---- connections -------------------------------------------------------- */

static void DM_PRINTF(3, 4)
dnet_refuse(struct dnet *n, const struct dconn *c, const char *fmt, ...)
{
	double now = clock_mono();
	char msg[512];
	va_list ap;

	if (now - n->refused_since >= 1.0) {
		if (n->refused_quiet > 0)
			log_warn("%d more connections were refused in a second "
			    "than the log says", n->refused_quiet);
		n->refused_since = now;
		n->refused = n->refused_quiet = 0;
	}
	if (++n->refused > DNET_REFUSALS_LOGGED) {
		n->refused_quiet++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_warn("%s: refused: %s", c->peer, msg);
}

static void	dconn_read_cb(struct bufferevent *, void *);
static void	dconn_event_cb(struct bufferevent *, short, void *);

static size_t
dnet_limit(const struct dnet *n)
{
	/* TLS authenticated the manager before its first frame. */
	return n->tls != NULL ? FRAME_LIMIT_DEFAULT : FRAME_LIMIT_PREAUTH;
}

static void
dconn_uncount(struct dconn *c)
{
	if (c->counted) {
		c->counted = 0;
		c->net->unauth--;
	}
}

/* Ends c from the loop, never inside the caller. */
void
dconn_close(struct dconn *c, const char *why)
{
	struct dnet *n = c->net;

	if (c->state == DC_DEAD)
		return;
	if (why != NULL)
		log_info("%s: closed: %s", c->peer, why);
	dconn_uncount(c);
	c->state = DC_DEAD;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	event_del(c->deadline);
	TAILQ_REMOVE(&n->conns, c, entry);
	TAILQ_INSERT_TAIL(&n->dead, c, entry);
	event_active(n->reap_ev, EV_TIMEOUT, 1);
}

static void
dconn_free(struct dconn *c)
{
	bufferevent_free(c->bev);
	event_free(c->deadline);
	free(c);
}

/*
 * A socket closed with unread bytes sends a reset, and a reset makes the
 * peer's kernel drop what it had not read yet: our last words, the TLS
 * alert that says why it was refused ("unknown ca"). What it sent before
 * is read and dropped here first (bounded, without waiting), so that the
 * close is a FIN after them.
 */
static void
dconn_drain(struct dconn *c)
{
	char buf[DNET_DRAIN_CHUNK];
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	int i;

	for (i = 0; fd >= 0 && i < DNET_DRAIN_READS; i++)
		if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
			break;
}

/* The dead: never a connection handed to a session (that one is only
 * forgotten, see dconn_handed_off). */
static void
dnet_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dnet *n = arg;
	struct dconn *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&n->dead)) != NULL) {
		TAILQ_REMOVE(&n->dead, c, entry);
		dconn_drain(c);
		dconn_free(c);
	}
}

static void
dconn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dconn *c = arg;

	(void)fd;
	(void)what;
	dnet_refuse(c->net, c, "no %s within %g s",
	    c->state == DC_HANDSHAKE ? "TLS handshake" : "hello",
	    c->net->cfg.handshake_timeout);
	dconn_close(c, NULL);
}

/* The oldest connection not yet authenticated goes, to make room; -1
 * when there is none. */
static int
dnet_evict(struct dnet *n)
{
	struct dconn *c;

	TAILQ_FOREACH(c, &n->conns, entry)
		if (c->counted)
			break;
	if (c == NULL)
		return -1;
	dnet_refuse(n, c, "%d connections are not authenticated yet, and "
	    "this one is the oldest", n->unauth);
	dconn_close(c, NULL);
	return 0;
}

static void
dnet_accepted(struct dnet *n, int fd, const struct sockaddr *sa)
{
	struct timeval tv;
	struct dconn *c = xcalloc(1, sizeof *c);
	int one = 1;

	c->net = n;
	c->fd = fd;
	dnet_name(sa, c->peer, sizeof c->peer);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	while (n->unauth >= n->cfg.max_unauth && dnet_evict(n) == 0)
		;
	c->bev = n->tls != NULL ? tls_accept(n->base, n->tls, fd) :
	    bufferevent_socket_new(n->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->deadline = evtimer_new(n->base, dconn_deadline_cb, c);
	if (c->bev == NULL || c->deadline == NULL) {
		log_error("%s: cannot serve a connection", c->peer);
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else if (n->tls == NULL)
			close(fd);
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		return;
	}
	c->state = n->tls != NULL ? DC_HANDSHAKE : DC_HELLO;
	c->counted = 1;
	n->unauth++;
	bufferevent_setcb(c->bev, dconn_read_cb, NULL, dconn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, FRAME_HEADER_SIZE +
	    dnet_limit(n));
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	tv.tv_sec = (time_t)n->cfg.handshake_timeout;
	tv.tv_usec = (suseconds_t)((n->cfg.handshake_timeout -
	    (double)tv.tv_sec) * 1e6);
	evtimer_add(c->deadline, &tv);
	TAILQ_INSERT_TAIL(&n->conns, c, entry);
	log_debug("%s: connected", c->peer);
}

/* The first frame, looked at where it lies: the session reads it again.
 * Returns the hello box (caller frees), or NULL: not all here yet, or
 * refused (c is then closing). */
static json_t *
dconn_peek(struct dconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in), limit = dnet_limit(c->net);
	unsigned char hdr[FRAME_HEADER_SIZE], *p;
	struct frame_err ferr = { .code = FRAME_E_NONE };
	json_t *box = NULL;
	uint32_t n;

	if (len < FRAME_HEADER_SIZE)
		return NULL;
	evbuffer_copyout(in, hdr, sizeof hdr);
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	if (n == 0 || n > limit) {
		dnet_refuse(c->net, c, "a first frame of %lu bytes (the limit "
		    "is %zu)", (unsigned long)n, limit);
		dconn_close(c, NULL);
		return NULL;
	}
	if (len < FRAME_HEADER_SIZE + n)
		return NULL;
	p = evbuffer_pullup(in, FRAME_HEADER_SIZE + n);
	if (p == NULL || frame_decode_mem(p, FRAME_HEADER_SIZE + n, limit,
	    &box, &ferr) <= 0) {
		dnet_refuse(c->net, c, "broken frame (%s): %s",
		    frame_error_name(ferr.code), ferr.text);
		dconn_close(c, NULL);
		return NULL;
	}
	if (strcmp(json_get_str(box, "_command", ""), "hello") != 0 ||
	    !json_is_string(json_object_get(box, "_ask"))) {
		dnet_refuse(c->net, c, "the first frame is not a hello ask");
		json_decref(box);
		dconn_close(c, NULL);
		return NULL;
	}
	return box;
}

static void
dconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct dconn *c = arg;
	struct dnet *n = c->net;
	json_t *hello;

	(void)bev;
	if (c->state != DC_HELLO || (hello = dconn_peek(c)) == NULL)
		return;
	dconn_uncount(c);
	event_del(c->deadline);
	c->state = DC_WAITING;
	n->cfg.ready(n->cfg.ctx, c, json_get_str(hello, "run_id", ""));
	json_decref(hello);
}

static void
dconn_authenticated(struct dconn *c)
{
	tls_peer_name(c->bev, c->cn, sizeof c->cn);
	log_info("%s: authenticated as '%s'", c->peer, c->cn);
	dconn_uncount(c);
	c->state = DC_HELLO;
	/* The hello may be here already. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		dconn_read_cb(c->bev, c);
}

static void
dconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dconn *c = arg;
	struct dnet *n = c->net;
	char why[300];

	if (what & BEV_EVENT_CONNECTED) {
		dconn_authenticated(c);
		return;
	}
	switch (c->state) {
	case DC_HANDSHAKE:
		tls_error(bev, why, sizeof why);
		dnet_refuse(n, c, "%s", why);
		dconn_close(c, NULL);
		break;
	case DC_HELLO:
		dconn_close(c, "before hello");
		break;
	case DC_WAITING:
		n->cfg.gone(n->cfg.ctx, c);
		dconn_close(c, "while waiting for a slot");
		break;
	case DC_DEAD:
		break;
	}
}

const char *
dconn_peer(const struct dconn *c)
{
	return c->peer;
}

void
dconn_quiesce(struct dconn *c)
{
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_del(c->deadline);
}

/*
 * The parent's copy, once a session was forked for c: the child holds
 * the connection and its TLS state, so this side must neither send a
 * close_notify nor shut the socket down -- only forget the state and
 * close its descriptor.
 */
void
dconn_handed_off(struct dconn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	if (ssl != NULL) {
		SSL_set_quiet_shutdown(ssl, 1);
		SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN |
		    SSL_RECEIVED_SHUTDOWN);
	}
	dconn_uncount(c);
	TAILQ_REMOVE(&c->net->conns, c, entry);
	dconn_free(c);
}

/* ---- listening ---------------------------------------------------------- */

static void
dnet_pause(struct dnet *n, int err)
{
	struct timeval tv = { 0, (suseconds_t)(DNET_ACCEPT_PAUSE * 1e6) };
	size_t i;

	if (!n->paused)
		log_warn("accept: %s: not accepting for %g s", strerror(err),
		    DNET_ACCEPT_PAUSE);
	n->paused = 1;
	for (i = 0; i < n->nls; i++)
		event_del(n->ls[i].ev);
	evtimer_add(n->resume_ev, &tv);
}

static void
dnet_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dnet *n = arg;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < n->nls; i++)
		event_add(n->ls[i].ev, NULL);
}

static void
dnet_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct dnet *n = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	int i, fd;

	(void)what;
	for (i = 0; i < DNET_ACCEPT_BATCH; i++) {
		len = sizeof ss;
		fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK |
		    SOCK_CLOEXEC);
		if (fd != -1) {
			if (n->paused)
				log_info("accepting again");
			n->paused = 0;
			dnet_accepted(n, fd, (struct sockaddr *)&ss);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			dnet_pause(n, errno);
		else if (errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR && errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		return;
	}
}

struct dnet *
dnet_new(struct event_base *base, struct ssl_ctx_st *tls,
    const struct dnet_config *cfg)
{
	struct dnet *n = xcalloc(1, sizeof *n);

	n->base = base;
	n->tls = tls;
	n->cfg = *cfg;
	TAILQ_INIT(&n->conns);
	TAILQ_INIT(&n->dead);
	n->resume_ev = evtimer_new(base, dnet_resume_cb, n);
	n->reap_ev = event_new(base, -1, 0, dnet_reap_cb, n);
	if (n->resume_ev == NULL || n->reap_ev == NULL)
		fatalx("cannot create events");
	return n;
}

static int
dnet_bind(struct dnet *n, const struct addrinfo *ai, char *why,
    size_t whylen)
{
	struct dlistener *l;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char name[INET6_ADDRSTRLEN + 8];
	int fd, one = 1;

	dnet_name(ai->ai_addr, name, sizeof name);
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd == -1) {
		snprintf(why, whylen, "cannot listen on %s: %s", name,
		    strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, DNET_BACKLOG) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		snprintf(why, whylen, "cannot listen on %s: %s", name,
		    strerror(errno));
		close(fd);
		return -1;
	}
	n->ls = xreallocarray(n->ls, n->nls + 1, sizeof *n->ls);
	l = &n->ls[n->nls++];
	l->fd = fd;
	dnet_name((struct sockaddr *)&ss, l->name, sizeof l->name);
	l->ev = event_new(n->base, fd, EV_READ | EV_PERSIST, dnet_accept_cb,
	    n);
	if (l->ev == NULL || event_add(l->ev, NULL) == -1)
		fatalx("cannot watch a listening socket");
	log_info("listening on %s", l->name);
	return 0;
}

int
dnet_listen(struct dnet *n, const struct addrinfo *res, char *why,
    size_t whylen)
{
	const struct addrinfo *ai;
	char first[300] = "";

	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (dnet_bind(n, ai, why, whylen) == -1) {
			log_warn("%s", why);
			if (first[0] == '\0')
				snprintf(first, sizeof first, "%s", why);
		}
	if (n->nls > 0)
		return 0;
	snprintf(why, whylen, "%s", first[0] != '\0' ? first :
	    "no address to listen on");
	return -1;
}

void
dnet_stop_listening(struct dnet *n)
{
	size_t i;

	for (i = 0; i < n->nls; i++) {
		event_free(n->ls[i].ev);
		close(n->ls[i].fd);
	}
	free(n->ls);
	n->ls = NULL;
	n->nls = 0;
	event_del(n->resume_ev);
}

void
dnet_close_all(struct dnet *n, const char *why)
{
	struct dconn *c;

	while ((c = TAILQ_FIRST(&n->conns)) != NULL) {
		if (c->state == DC_WAITING)
			n->cfg.gone(n->cfg.ctx, c);
		dconn_close(c, why);
	}
}

void
dnet_free(struct dnet *n)
{
	struct dconn *c;

	if (n == NULL)
		return;
	dnet_stop_listening(n);
	while ((c = TAILQ_FIRST(&n->conns)) != NULL) {
		TAILQ_REMOVE(&n->conns, c, entry);
		dconn_free(c);
	}
	while ((c = TAILQ_FIRST(&n->dead)) != NULL) {
		TAILQ_REMOVE(&n->dead, c, entry);
		dconn_free(c);
	}
	event_free(n->resume_ev);
	event_free(n->reap_ev);
	free(n);
}

/*
 * In a session's child, after event_reinit: every other connection and
 * the listeners go (closing only this process's descriptors; nothing is
 * sent), and keep's bufferevent is handed over, its first frames still
 * in its input.
 */
struct bufferevent *
dnet_child_keep(struct dnet *n, struct dconn *keep, int *fd)
{
	struct bufferevent *bev = keep->bev;

	*fd = keep->fd;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	TAILQ_REMOVE(&n->conns, keep, entry);
	event_free(keep->deadline);
	free(keep);
	dnet_free(n);
	return bev;
}

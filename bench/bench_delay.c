/*
 * bench_delay.c - a TCP relay that adds latency, for the farm's benchmark
 * and tests where tc netem is not available (a kernel without sch_netem):
 *
 *   bench_delay LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS [HOLD_FILE]
 *
 * Listens on 127.0.0.1:LISTEN_PORT; each connection is relayed to
 * TARGET_HOST:TARGET_PORT with every byte held DELAY_MS / 2 milliseconds
 * in each direction, so that a round trip takes DELAY_MS longer, as
 * `tc qdisc add dev eth0 root netem delay DELAY_MS` on one side would.
 * Bytes keep their order; TLS passes through untouched. While HOLD_FILE
 * exists nothing is passed on either way (a link cut without a reset).
 * Prints "ready" on stdout once it listens.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common.h"

struct chunk {
	TAILQ_ENTRY(chunk)	 entry;
	double			 due;
	size_t			 len;
	unsigned char		 data[];
};
TAILQ_HEAD(chunks, chunk);

struct way {
	struct bufferevent	*from, *to;
	struct chunks		 q;
	struct event		*timer;
	int			 eof;
	struct pair		*pair;
};

struct pair {
	struct way		 up, down;
	int			 closed;
};

static double delay;		/* seconds each way */
static const char *hold_file;
static struct sockaddr_storage target;
static socklen_t target_len;
static struct event_base *base;

static int
held(void)
{
	struct stat sb;

	return hold_file != NULL && stat(hold_file, &sb) == 0;
}

static void
pair_close(struct pair *p)
{
	struct chunk *c;
	struct way *w[2] = { &p->up, &p->down };
	int i;

	if (p->closed)
		return;
	p->closed = 1;
	for (i = 0; i < 2; i++) {
		while ((c = TAILQ_FIRST(&w[i]->q)) != NULL) {
			TAILQ_REMOVE(&w[i]->q, c, entry);
			free(c);
		}
		event_free(w[i]->timer);
	}
	bufferevent_free(p->up.from);
	bufferevent_free(p->down.from);
	free(p);
}

static void
way_arm(struct way *w)
{
	struct chunk *c = TAILQ_FIRST(&w->q);
	struct timeval tv;
	double left;

	if (c == NULL)
		return;
	left = held() ? 0.01 : c->due - clock_mono();
	if (left < 0)
		left = 0;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	evtimer_add(w->timer, &tv);
}

static void
way_timer(evutil_socket_t fd, short what, void *arg)
{
	struct way *w = arg;
	struct chunk *c;
	double now = clock_mono();

	(void)fd;
	(void)what;
	if (held()) {
		way_arm(w);
		return;
	}
	while ((c = TAILQ_FIRST(&w->q)) != NULL && c->due <= now) {
		TAILQ_REMOVE(&w->q, c, entry);
		bufferevent_write(w->to, c->data, c->len);
		free(c);
	}
	if (TAILQ_EMPTY(&w->q) && w->eof) {
		pair_close(w->pair);
		return;
	}
	way_arm(w);
}

static void
way_read(struct bufferevent *bev, void *arg)
{
	struct way *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	struct chunk *c;

	if (n == 0)
		return;
	c = xmalloc(sizeof *c + n);
	c->len = n;
	c->due = clock_mono() + delay;
	evbuffer_remove(in, c->data, n);
	TAILQ_INSERT_TAIL(&w->q, c, entry);
	if (!evtimer_pending(w->timer, NULL))
		way_arm(w);
}

static void
way_event(struct bufferevent *bev, short what, void *arg)
{
	struct way *w = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* What is on its way still arrives, then the pair ends. */
		w->eof = 1;
		if (TAILQ_EMPTY(&w->q))
			pair_close(w->pair);
	}
}

static void
way_init(struct pair *p, struct way *w, struct bufferevent *from,
    struct bufferevent *to)
{
	w->pair = p;
	w->from = from;
	w->to = to;
	TAILQ_INIT(&w->q);
	w->timer = evtimer_new(base, way_timer, w);
	bufferevent_setcb(from, way_read, NULL, way_event, w);
	bufferevent_enable(from, EV_READ | EV_WRITE);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	struct pair *p = xcalloc(1, sizeof *p);
	struct bufferevent *a, *b;
	int one = 1;

	(void)l;
	(void)sa;
	(void)len;
	(void)arg;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	a = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	way_init(p, &p->up, a, b);
	way_init(p, &p->down, b, a);
	if (bufferevent_socket_connect(b, (struct sockaddr *)&target,
	    (int)target_len) == -1) {
		pair_close(p);
		return;
	}
	setsockopt(bufferevent_getfd(b), IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof one);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct evconnlistener *l;
	struct event_config *cfg;
	int len = sizeof target;

	if (argc < 5) {
		fprintf(stderr, "usage: bench_delay LISTEN_PORT TARGET_HOST "
		    "TARGET_PORT DELAY_MS [HOLD_FILE]\n");
		return 4;
	}
	delay = atof(argv[4]) / 2000.0;
	hold_file = argc > 5 ? argv[5] : NULL;
	if (evutil_parse_sockaddr_port(argv[2], (struct sockaddr *)&target,
	    &len) == -1) {
		fprintf(stderr, "bench_delay: %s: not an address\n", argv[2]);
		return 4;
	}
	target_len = (socklen_t)len;
	((struct sockaddr_in *)&target)->sin_port = htons(
	    (unsigned short)atoi(argv[3]));
	/* Millisecond timers would add up to a millisecond each way. */
	cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	l = evconnlistener_new_bind(base, on_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
	    (struct sockaddr *)&sa, sizeof sa);
	if (l == NULL) {
		perror("bench_delay: listen");
		return 3;
	}
	printf("ready\n");
	fflush(stdout);
	event_base_dispatch(base);
	evconnlistener_free(l);
	event_base_free(base);
	return 0;
}

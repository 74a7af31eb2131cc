/*
 * testutil.c - shared helpers for the Check programs (see testutil.h).
 */
#include <sys/socket.h>

#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>

#include "testutil.h"

static void
tu_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

int
tu_loop_until(struct event_base *base, volatile int *flag, double seconds)
{
	double end = clock_mono() + seconds;
	struct event *tick;
	struct timeval tv = { 0, 10000 };

	/* A periodic timer so the loop wakes to look at the flag. */
	tick = event_new(base, -1, EV_PERSIST, tu_tick, NULL);
	event_add(tick, &tv);
	while (!*flag && clock_mono() < end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
	return *flag;
}

void
tu_loop_for(struct event_base *base, double seconds)
{
	volatile int never = 0;

	tu_loop_until(base, &never, seconds);
}

static void
tu_pair_close_a(struct amp_conn *c, const char *reason, void *ctx)
{
	struct tu_pair *p = ctx;

	(void)c;
	p->a_closed = 1;
	p->a = NULL;
	snprintf(p->a_reason, sizeof p->a_reason, "%s", reason);
}

static void
tu_pair_close_b(struct amp_conn *c, const char *reason, void *ctx)
{
	struct tu_pair *p = ctx;

	(void)c;
	p->b_closed = 1;
	p->b = NULL;
	snprintf(p->b_reason, sizeof p->b_reason, "%s", reason);
}

static const struct amp_conn_cbs tu_cbs_a = { tu_pair_close_a, NULL };
static const struct amp_conn_cbs tu_cbs_b = { tu_pair_close_b, NULL };

void
tu_pair_open(struct event_base *base, struct tu_pair *p,
    const struct amp_command *ta, const struct amp_command *tb)
{
	struct bufferevent *ba, *bb;
	int sv[2];

	memset(p, 0, sizeof *p);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fatal("socketpair");
	ba = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	bb = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	p->a = amp_conn_new(ba, ta, &tu_cbs_a, p);
	p->b = amp_conn_new(bb, tb, &tu_cbs_b, p);
	amp_conn_set_name(p->a, "a");
	amp_conn_set_name(p->b, "b");
}

struct amp_conn *
tu_conn_raw(struct event_base *base, const struct amp_command *table,
    const struct amp_conn_cbs *cbs, void *ctx, int *peer_fd)
{
	struct bufferevent *bev;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fatal("socketpair");
	bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	*peer_fd = sv[1];
	return amp_conn_new(bev, table, cbs, ctx);
}

size_t
tu_frame_bytes(const char *json, unsigned char *out, size_t outlen)
{
	size_t n = strlen(json);

	if (n + 4 > outlen)
		fatalx("tu_frame_bytes: %zu bytes do not fit", n);
	out[0] = (unsigned char)(n >> 24);
	out[1] = (unsigned char)(n >> 16);
	out[2] = (unsigned char)(n >> 8);
	out[3] = (unsigned char)n;
	memcpy(out + 4, json, n);
	return n + 4;
}

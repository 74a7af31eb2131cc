/*
 * amp.c - the ask/answer/error layer over a bufferevent, after Twisted's
 * AMP: a box with "_command" and an optional "_ask" tag is a command; the
 * peer answers with "_answer" (echoing the tag) or "_error" with a code
 * and a description. Commands are declared in a table with their
 * arguments, which are checked here before any handler runs.
 *
 * Rules this file keeps:
 * - only a broken frame or an I/O error closes a connection: an unknown
 *   command, bad arguments or a failing handler answer an error for that
 *   one command;
 * - every ask we send gets its callback exactly once, the answer, the
 *   peer's error, or CONNECTION_LOST when the connection goes;
 * - a connection is never freed inside a callback that is using it: close
 *   is deferred to the event loop;
 * - a sender can see congestion and wait for the drain callback, so a
 *   slow peer cannot make us buffer without bound.
 */
#include <sys/queue.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>

#include "common.h"
#include "protocol.h"

/* Error descriptions we send are cut to this many bytes, so that an
 * error always fits in a frame whatever a handler wrote. */
#define AMP_DESCRIPTION_MAX	2048

/* An ask we sent, waiting for its answer; or one we could not send,
 * waiting for the loop to fail it (why says how). */
struct amp_ask {
	TAILQ_ENTRY(amp_ask) entry;
	uint64_t	 tag;
	amp_answer_fn	 cb;
	void		*arg;
	char		*why;
};

/* A frame that arrived while amp_ask_sync waited, kept for the loop. */
struct amp_held {
	TAILQ_ENTRY(amp_held) entry;
	json_t		*box;
};

/* An ask we received, until it is answered. */
struct amp_request {
	TAILQ_ENTRY(amp_request) entry;
	struct amp_conn	*conn;		/* NULL once the connection is gone */
	char		*tag;		/* NULL for a tell */
	const char	*command;	/* the table's name: static */
	int		 on_heap;	/* asks are; tells live on the stack */
};

struct amp_conn {
	struct bufferevent		*in;	/* reads from here */
	struct bufferevent		*out;	/* writes here; may be == in */
	const struct amp_command	*table;
	const struct amp_conn_cbs	*cbs;
	void				*ctx;
	char				*name;
	size_t				 limit;
	uint64_t			 next_tag;
	TAILQ_HEAD(, amp_ask)		 asks;	/* sent, unanswered */
	TAILQ_HEAD(, amp_ask)		 unsent; /* to fail from the loop */
	TAILQ_HEAD(, amp_request)	 requests;
	struct amp_request		*current; /* in its handler */
	TAILQ_HEAD(, amp_held)		 held;	/* for the loop, in order */

	int		 closing;
	int		 flushing;
	int		 paused;
	int		 congested;
	int		 write_dead;	/* a write failed; reading goes on */
	char		*close_reason;
	struct event	*finish_ev;	/* deferred close */
	struct event	*flush_timer;
	struct event	*resume_ev;	/* deferred read after resume */
	struct event	*unsent_ev;	/* deferred failure of unsent asks */
	struct event	*dead_timer;	/* closes a write_dead connection */
	char		*dead_why;
	struct event	*drain_ev;	/* deferred on_drain after flush_now */

	uint64_t	 frames_in, frames_out, bytes_in, bytes_out;
};

static void	amp_read_cb(struct bufferevent *, void *);
static void	amp_write_cb(struct bufferevent *, void *);
static void	amp_event_cb(struct bufferevent *, short, void *);
static void	amp_finish_cb(evutil_socket_t, short, void *);
static void	amp_resume_cb(evutil_socket_t, short, void *);
static void	amp_unsent_cb(evutil_socket_t, short, void *);
static void	amp_drain_cb(evutil_socket_t, short, void *);

static const char *amp_type_names[] = {
	[AMP_T_STRING] = "a string",
	[AMP_T_INT] = "an integer",
	[AMP_T_NUMBER] = "a number",
	[AMP_T_BOOL] = "a boolean",
	[AMP_T_ARRAY] = "an array",
	[AMP_T_OBJECT] = "an object",
	[AMP_T_ANY] = "any value",
};

const char *
amp_type_name(enum amp_type t)
{
	if ((size_t)t >= DM_NELEM(amp_type_names) || amp_type_names[t] == NULL)
		return "an unknown type";
	return amp_type_names[t];
}

static struct amp_conn *
amp_conn_alloc(struct bufferevent *in, struct bufferevent *out,
    const struct amp_command *table, const struct amp_conn_cbs *cbs,
    void *ctx)
{
	struct amp_conn *c = xcalloc(1, sizeof *c);
	struct event_base *base = bufferevent_get_base(in);

	c->in = in;
	c->out = out;
	c->table = table;
	c->cbs = cbs;
	c->ctx = ctx;
	c->name = xstrdup("peer");
	c->limit = FRAME_LIMIT_PREAUTH;
	c->next_tag = 1;
	TAILQ_INIT(&c->asks);
	TAILQ_INIT(&c->unsent);
	TAILQ_INIT(&c->requests);
	TAILQ_INIT(&c->held);
	c->finish_ev = event_new(base, -1, 0, amp_finish_cb, c);
	c->resume_ev = event_new(base, -1, 0, amp_resume_cb, c);
	c->unsent_ev = event_new(base, -1, 0, amp_unsent_cb, c);
	c->drain_ev = event_new(base, -1, 0, amp_drain_cb, c);
	if (c->finish_ev == NULL || c->resume_ev == NULL ||
	    c->unsent_ev == NULL || c->drain_ev == NULL)
		fatalx("amp: cannot create events");

	bufferevent_setcb(in, amp_read_cb, in == out ? amp_write_cb : NULL,
	    amp_event_cb, c);
	if (out != in)
		bufferevent_setcb(out, NULL, amp_write_cb, amp_event_cb, c);
	bufferevent_setwatermark(out, EV_WRITE, AMP_OUTPUT_LOW, 0);
	bufferevent_enable(in, EV_READ);
	bufferevent_enable(out, EV_WRITE);
	return c;
}

struct amp_conn *
amp_conn_new(struct bufferevent *bev, const struct amp_command *table,
    const struct amp_conn_cbs *cbs, void *ctx)
{
	return amp_conn_alloc(bev, bev, table, cbs, ctx);
}

struct amp_conn *
amp_conn_new_split(struct bufferevent *in, struct bufferevent *out,
    const struct amp_command *table, const struct amp_conn_cbs *cbs,
    void *ctx)
{
	return amp_conn_alloc(in, out, table, cbs, ctx);
}

void
amp_conn_set_limit(struct amp_conn *c, size_t limit)
{
	if (limit > FRAME_LIMIT_MAX)
		limit = FRAME_LIMIT_MAX;
	c->limit = limit;
}

size_t
amp_conn_limit(const struct amp_conn *c)
{
	return c->limit;
}

void
amp_conn_set_table(struct amp_conn *c, const struct amp_command *table)
{
	c->table = table;
}

void *
amp_conn_ctx(const struct amp_conn *c)
{
	return c->ctx;
}

void
amp_conn_set_ctx(struct amp_conn *c, void *ctx)
{
	c->ctx = ctx;
}

void
amp_conn_set_name(struct amp_conn *c, const char *name)
{
	char *old = c->name;

	c->name = xstrdup(name);	/* name may be c->name itself */
	free(old);
}

const char *
amp_conn_name(const struct amp_conn *c)
{
	return c->name;
}

struct bufferevent *
amp_conn_bev(const struct amp_conn *c)
{
	return c->in;
}

int
amp_conn_closing(const struct amp_conn *c)
{
	return c->closing;
}

size_t
amp_conn_output_len(const struct amp_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->out));
}

int
amp_conn_congested(const struct amp_conn *c)
{
	return c->congested;
}

void
amp_conn_counters(const struct amp_conn *c, uint64_t *fin, uint64_t *fout,
    uint64_t *bin, uint64_t *bout)
{
	if (fin != NULL)
		*fin = c->frames_in;
	if (fout != NULL)
		*fout = c->frames_out;
	if (bin != NULL)
		*bin = c->bytes_in;
	if (bout != NULL)
		*bout = c->bytes_out;
}

/* ---- closing ---------------------------------------------------------- */

static void
amp_schedule_finish(struct amp_conn *c)
{
	event_active(c->finish_ev, EV_TIMEOUT, 1);
}

static void
amp_flush_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct amp_conn *c = arg;

	(void)fd;
	(void)what;
	c->flushing = 0;
	amp_schedule_finish(c);
}

void
amp_conn_close(struct amp_conn *c, const char *reason, int flush)
{
	struct timeval tv;

	if (c->closing) {
		/* A second close without flush cuts a pending flush short. */
		if (c->flushing && !flush) {
			c->flushing = 0;
			amp_schedule_finish(c);
		}
		return;
	}
	c->closing = 1;
	c->close_reason = xstrdup(reason != NULL ? reason : "closed");
	bufferevent_disable(c->in, EV_READ);
	if (flush && amp_conn_output_len(c) > 0) {
		c->flushing = 1;
		bufferevent_setwatermark(c->out, EV_WRITE, 0, 0);
		tv.tv_sec = (time_t)AMP_FLUSH_TIMEOUT;
		tv.tv_usec = 0;
		c->flush_timer = evtimer_new(bufferevent_get_base(c->in),
		    amp_flush_timeout_cb, c);
		if (c->flush_timer == NULL)
			fatalx("amp: cannot create flush timer");
		evtimer_add(c->flush_timer, &tv);
		return;
	}
	amp_schedule_finish(c);
}

static void
amp_conn_free(struct amp_conn *c)
{
	struct amp_held *h;

	while ((h = TAILQ_FIRST(&c->held)) != NULL) {
		TAILQ_REMOVE(&c->held, h, entry);
		json_decref(h->box);
		free(h);
	}
	if (c->out != c->in)
		bufferevent_free(c->out);
	bufferevent_free(c->in);
	event_free(c->finish_ev);
	event_free(c->resume_ev);
	event_free(c->unsent_ev);
	if (c->dead_timer != NULL)
		event_free(c->dead_timer);
	free(c->dead_why);
	event_free(c->drain_ev);
	if (c->flush_timer != NULL)
		event_free(c->flush_timer);
	free(c->close_reason);
	free(c->name);
	free(c);
}

/* Runs the callback of every ask that could not be sent, with its own
 * reason. Only ever from the loop. */
static void
amp_fail_unsent(struct amp_conn *c)
{
	struct amp_error err;
	struct amp_ask *a;

	while ((a = TAILQ_FIRST(&c->unsent)) != NULL) {
		TAILQ_REMOVE(&c->unsent, a, entry);
		err.code = AMP_E_FAILED;
		err.description = a->why;
		a->cb(c, NULL, &err, a->arg);
		free(a->why);
		free(a);
	}
}

static void
amp_unsent_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	amp_fail_unsent(arg);
}

/* Fails every outstanding ask with CONNECTION_LOST. A callback that asks
 * again on this closing connection adds to the list, and is failed in
 * the same loop. */
static void
amp_fail_asks(struct amp_conn *c)
{
	struct amp_error err;
	struct amp_ask *a;
	char why[256];

	snprintf(why, sizeof why, "connection to %s lost: %s", c->name,
	    c->close_reason);
	err.code = AMP_E_CONNECTION_LOST;
	err.description = why;
	while ((a = TAILQ_FIRST(&c->asks)) != NULL) {
		TAILQ_REMOVE(&c->asks, a, entry);
		a->cb(c, NULL, &err, a->arg);
		free(a);
	}
}

/* The one place a connection ends: from the loop, never from a caller. */
static void
amp_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct amp_conn *c = arg;
	struct amp_request *r;

	(void)fd;
	(void)what;
	if (c->flushing)
		return;		/* the write callback or the timer comes back */
	bufferevent_disable(c->in, EV_READ | EV_WRITE);
	bufferevent_disable(c->out, EV_READ | EV_WRITE);

	/* Unsent asks first: they failed before the connection did. Asks
	 * made from here on are queued unsent on c->asks (closing). */
	amp_fail_unsent(c);
	amp_fail_asks(c);
	while ((r = TAILQ_FIRST(&c->requests)) != NULL) {
		TAILQ_REMOVE(&c->requests, r, entry);
		r->conn = NULL;
	}
	if (c->cbs != NULL && c->cbs->on_close != NULL)
		c->cbs->on_close(c, c->close_reason, c->ctx);
	/* on_close may have asked too: those callbacks still run once. */
	amp_fail_asks(c);
	amp_conn_free(c);
}

/* ---- sending ---------------------------------------------------------- */

/* 0, or -1 when closing or when box cannot be framed (then ferr, if
 * not NULL, says why). */
static int
amp_send(struct amp_conn *c, json_t *box, struct frame_err *ferr)
{
	struct evbuffer *out = bufferevent_get_output(c->out);
	struct frame_err local;
	size_t before = evbuffer_get_length(out);

	if (ferr == NULL)
		ferr = &local;
	if (c->closing) {
		ferr->code = FRAME_E_NONE;
		snprintf(ferr->text, sizeof ferr->text, "connection closing");
		return -1;
	}
	/* The peer stopped reading and the close is coming with its EOF:
	 * what is sent now is dropped, and asks fail then, once. */
	if (c->write_dead)
		return 0;
	if (frame_encode(out, box, c->limit, ferr) == -1) {
		log_warn("%s: not sent: %s", c->name, ferr->text);
		return -1;
	}
	c->frames_out++;
	c->bytes_out += evbuffer_get_length(out) - before;
	if (!c->congested && evbuffer_get_length(out) > AMP_OUTPUT_HIGH)
		c->congested = 1;
	return 0;
}

int
amp_tell(struct amp_conn *c, const char *command, json_t *args)
{
	json_t *box = args != NULL ? args : json_object();
	int rc;

	json_object_set_new(box, "_command", json_string(command));
	rc = amp_send(c, box, NULL);
	json_decref(box);
	return rc;
}

int
amp_tell_encoded(struct amp_conn *c, const void *text, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->out);
	const unsigned char *p = text;
	unsigned char hdr[FRAME_HEADER_SIZE];

	if (c->closing || len < 2 || len > c->limit || p[0] != '{' ||
	    p[len - 1] != '}' || memchr(p, '\0', len) != NULL)
		return -1;
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	if (evbuffer_expand(out, sizeof hdr + len) == -1 ||
	    evbuffer_add(out, hdr, sizeof hdr) == -1 ||
	    evbuffer_add(out, text, len) == -1)
		return -1;
	c->frames_out++;
	c->bytes_out += sizeof hdr + len;
	if (!c->congested && evbuffer_get_length(out) > AMP_OUTPUT_HIGH)
		c->congested = 1;
	return 0;
}

/*
 * Whatever happens, cb runs exactly once and never inside this call: an
 * ask on a closing connection waits on c->asks, unsent, for the finish to
 * fail it with CONNECTION_LOST; one that cannot be framed waits on
 * c->unsent for the loop to fail it with the reason.
 */
int
amp_ask(struct amp_conn *c, const char *command, json_t *args,
    amp_answer_fn cb, void *arg)
{
	json_t *box = args != NULL ? args : json_object();
	struct frame_err ferr;
	struct amp_ask *a;
	char tag[24];
	int rc = -1;

	a = xcalloc(1, sizeof *a);
	a->tag = c->next_tag++;
	a->cb = cb;
	a->arg = arg;
	if (c->closing) {
		TAILQ_INSERT_TAIL(&c->asks, a, entry);
		json_decref(box);
		return -1;
	}
	snprintf(tag, sizeof tag, "%llu", (unsigned long long)a->tag);
	json_object_set_new(box, "_command", json_string(command));
	json_object_set_new(box, "_ask", json_string(tag));
	if (amp_send(c, box, &ferr) == 0) {
		TAILQ_INSERT_TAIL(&c->asks, a, entry);
		rc = 0;
	} else {
		xasprintf(&a->why, "ask '%s' not sent: %s", command,
		    ferr.text);
		TAILQ_INSERT_TAIL(&c->unsent, a, entry);
		event_active(c->unsent_ev, EV_TIMEOUT, 1);
	}
	json_decref(box);
	return rc;
}

/* ---- answering -------------------------------------------------------- */

static void
amp_request_free(struct amp_request *r)
{
	if (r->conn != NULL) {
		if (r->conn->current == r)
			r->conn->current = NULL;
		if (r->on_heap)
			TAILQ_REMOVE(&r->conn->requests, r, entry);
	}
	if (r->on_heap) {
		free(r->tag);
		free(r);
	}
}

static void
amp_send_error(struct amp_conn *c, const char *tag, const char *code,
    const char *text)
{
	size_t n = strlen(text);
	json_t *box;

	if (n > AMP_DESCRIPTION_MAX) {
		n = AMP_DESCRIPTION_MAX;
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;	/* not in the middle of a character */
	}
	box = json_pack("{s:s, s:s, s:o}", "_error", tag, "_error_code", code,
	    "_error_description", json_string_lossy(text, n));
	if (box == NULL)
		fatalx("amp: cannot build an error box");
	amp_send(c, box, NULL);
	json_decref(box);
}

void
amp_answer(struct amp_request *r, json_t *result)
{
	struct frame_err ferr;
	char *why;
	json_t *box;

	if (r->tag != NULL && r->conn != NULL && !r->conn->closing) {
		box = result != NULL ? result : json_object();
		json_object_set_new(box, "_answer", json_string(r->tag));
		if (amp_send(r->conn, box, &ferr) == -1) {
			/* The asker waits for exactly one reply: an answer
			 * that cannot be framed becomes an error it gets. */
			xasprintf(&why, "answer to '%s' not sent: %s",
			    r->command, ferr.text);
			amp_send_error(r->conn, r->tag, AMP_E_FAILED, why);
			free(why);
		}
		json_decref(box);
	} else if (result != NULL)
		json_decref(result);
	amp_request_free(r);
}

void
amp_fail(struct amp_request *r, const char *code, const char *fmt, ...)
{
	va_list ap;
	char *text;

	if (r->tag != NULL && r->conn != NULL) {
		va_start(ap, fmt);
		xvasprintf(&text, fmt, ap);
		va_end(ap);
		amp_send_error(r->conn, r->tag, code, text);
		free(text);
	}
	amp_request_free(r);
}

void
amp_request_drop(struct amp_request *r)
{
	amp_request_free(r);
}

struct amp_conn *
amp_request_conn(const struct amp_request *r)
{
	return r->conn;
}

const char *
amp_request_command(const struct amp_request *r)
{
	return r->command;
}

int
amp_request_wants_answer(const struct amp_request *r)
{
	return r->tag != NULL;
}

/* ---- receiving -------------------------------------------------------- */

static int
amp_type_ok(json_t *v, enum amp_type t)
{
	switch (t) {
	case AMP_T_STRING:
		return json_is_string(v);
	case AMP_T_INT:
		return json_is_integer(v);
	case AMP_T_NUMBER:
		return json_is_number(v);
	case AMP_T_BOOL:
		return json_is_boolean(v);
	case AMP_T_ARRAY:
		return json_is_array(v);
	case AMP_T_OBJECT:
		return json_is_object(v);
	case AMP_T_ANY:
		return 1;
	}
	return 0;
}

int
amp_check_args(json_t *box, const struct amp_arg *args, char *why,
    size_t whylen)
{
	const struct amp_arg *a;
	json_t *v;

	for (a = args; a != NULL && a->name != NULL; a++) {
		v = json_object_get(box, a->name);
		if (v == NULL || json_is_null(v)) {
			if (a->optional)
				continue;
			snprintf(why, whylen, "missing argument '%s'",
			    a->name);
			return -1;
		}
		if (!amp_type_ok(v, a->type)) {
			snprintf(why, whylen, "argument '%s' must be %s",
			    a->name, amp_type_name(a->type));
			return -1;
		}
	}
	return 0;
}

static const struct amp_command *
amp_lookup(const struct amp_command *table, const char *name)
{
	const struct amp_command *cmd;

	for (cmd = table; cmd != NULL && cmd->name != NULL; cmd++)
		if (strcmp(cmd->name, name) == 0)
			return cmd;
	return NULL;
}

static void
amp_dispatch_command(struct amp_conn *c, json_t *box, const char *name)
{
	const struct amp_command *cmd;
	struct amp_request tell, *r;
	json_t *jtag = json_object_get(box, "_ask");
	const char *tag = NULL;
	char why[256];
	int rc;

	if (jtag != NULL) {
		if (!json_is_string(jtag)) {
			log_warn("%s: command '%s' with an _ask that is not "
			    "a string; ignored", c->name, name);
			return;
		}
		tag = json_string_value(jtag);
	}
	if ((cmd = amp_lookup(c->table, name)) == NULL) {
		if (tag != NULL)
			amp_send_error(c, tag, AMP_E_UNHANDLED,
			    name[0] == '\0' ? "empty command name" :
			    "unknown command");
		else
			log_warn("%s: unknown command '%.64s' ignored",
			    c->name, name);
		return;
	}
	if (amp_check_args(box, cmd->args, why, sizeof why) == -1) {
		if (tag != NULL)
			amp_send_error(c, tag, AMP_E_BAD_ARGUMENT, why);
		else
			log_warn("%s: %s: %s; ignored", c->name, name, why);
		return;
	}
	if (tag != NULL) {
		r = xcalloc(1, sizeof *r);
		r->tag = xstrdup(tag);
		r->on_heap = 1;
		r->conn = c;
		TAILQ_INSERT_TAIL(&c->requests, r, entry);
	} else {
		memset(&tell, 0, sizeof tell);
		tell.conn = c;
		r = &tell;
	}
	r->command = cmd->name;
	c->current = r;
	rc = cmd->handler(r, box);
	if (c->current == r) {		/* not answered during the call */
		c->current = NULL;
		if (r == &tell)
			return;
		if (rc == -1)
			amp_fail(r, AMP_E_FAILED, "command '%s' failed",
			    cmd->name);
	}
}

static struct amp_ask *
amp_find_ask(struct amp_conn *c, json_t *jtag)
{
	struct amp_ask *a;
	const char *s;
	char *end;
	unsigned long long tag;

	if (!json_is_string(jtag))
		return NULL;
	s = json_string_value(jtag);
	errno = 0;
	tag = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return NULL;
	/* Answers mostly come in order: the first is usually the one. */
	TAILQ_FOREACH(a, &c->asks, entry)
		if (a->tag == tag)
			return a;
	return NULL;
}

static void
amp_dispatch_answer(struct amp_conn *c, json_t *box, json_t *jtag, int error)
{
	struct amp_error err;
	struct amp_ask *a;

	if ((a = amp_find_ask(c, jtag)) == NULL) {
		log_warn("%s: %s for an ask we did not make; ignored",
		    c->name, error ? "error" : "answer");
		return;
	}
	TAILQ_REMOVE(&c->asks, a, entry);
	if (error) {
		err.code = json_get_str(box, "_error_code", "UNKNOWN");
		err.description = json_get_str(box, "_error_description",
		    "(no description)");
		a->cb(c, NULL, &err, a->arg);
	} else
		a->cb(c, box, NULL, a->arg);
	free(a);
}

static void
amp_dispatch(struct amp_conn *c, json_t *box)
{
	json_t *v;

	if ((v = json_object_get(box, "_command")) != NULL) {
		if (json_is_string(v))
			amp_dispatch_command(c, box, json_string_value(v));
		else
			log_warn("%s: _command is not a string; ignored",
			    c->name);
	} else if ((v = json_object_get(box, "_answer")) != NULL)
		amp_dispatch_answer(c, box, v, 0);
	else if ((v = json_object_get(box, "_error")) != NULL)
		amp_dispatch_answer(c, box, v, 1);
	else
		log_warn("%s: box without _command, _answer or _error; "
		    "ignored", c->name);
}

static void
amp_read_cb(struct bufferevent *bev, void *arg)
{
	struct amp_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct frame_err ferr;
	json_t *box;
	size_t before;
	int rc;
	char why[300];
	struct amp_held *h;

	while (!c->closing && !c->paused) {
		/* What amp_ask_sync kept goes first: it came first. */
		if ((h = TAILQ_FIRST(&c->held)) != NULL) {
			TAILQ_REMOVE(&c->held, h, entry);
			amp_dispatch(c, h->box);
			json_decref(h->box);
			free(h);
			continue;
		}
		before = evbuffer_get_length(in);
		rc = frame_decode(in, c->limit, &box, &ferr);
		if (rc == 0)
			break;
		if (rc == -1) {
			snprintf(why, sizeof why, "broken frame (%s): %s",
			    frame_error_name(ferr.code), ferr.text);
			log_warn("%s: %s", c->name, why);
			amp_conn_close(c, why, 0);
			break;
		}
		c->frames_in++;
		c->bytes_in += before - evbuffer_get_length(in);
		amp_dispatch(c, box);
		json_decref(box);
	}
}

/* Congestion ends when output falls to the low mark, however it got
 * there: the bufferevent writing, or amp_conn_flush_now. */
static void
amp_check_drain(struct amp_conn *c)
{
	if (!c->congested || c->closing ||
	    amp_conn_output_len(c) > AMP_OUTPUT_LOW)
		return;
	c->congested = 0;
	if (c->cbs != NULL && c->cbs->on_drain != NULL)
		c->cbs->on_drain(c, c->ctx);
}

static void
amp_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	amp_check_drain(arg);
}

static void
amp_write_cb(struct bufferevent *bev, void *arg)
{
	struct amp_conn *c = arg;
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));

	if (c->flushing) {
		if (left == 0) {
			c->flushing = 0;
			amp_schedule_finish(c);
		}
		return;
	}
	amp_check_drain(c);
}

static void
amp_dead_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct amp_conn *c = arg;

	(void)fd;
	(void)what;
	amp_conn_close(c, c->dead_why, 0);
}

/*
 * A write failed (EPIPE: the peer is gone), but what the peer sent before
 * it went may still be unread, and a peer's last words (a result just
 * before it died) must not be lost. So stop writing, keep reading until
 * its EOF closes the connection, and close anyway after
 * AMP_FLUSH_TIMEOUT in case the read side never ends.
 */
static void
amp_write_failed(struct amp_conn *c, struct bufferevent *bev)
{
	struct timeval tv = { (time_t)AMP_FLUSH_TIMEOUT, 0 };
	struct evbuffer *out = bufferevent_get_output(c->out);

	xasprintf(&c->dead_why, "write error: %s",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	c->write_dead = 1;
	bufferevent_disable(bev, EV_WRITE);
	evbuffer_drain(out, evbuffer_get_length(out));
	c->dead_timer = evtimer_new(bufferevent_get_base(c->in),
	    amp_dead_timer_cb, c);
	if (c->dead_timer == NULL)
		fatalx("amp: cannot create a timer");
	evtimer_add(c->dead_timer, &tv);
}

static void
amp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct amp_conn *c = arg;
	char why[256];

	/* libevent reports a write to a gone peer as ERROR or as EOF, but
	 * always on the writing side. Over TLS nothing can be read after
	 * it (the TLS layer has stopped both ways, as when the write met
	 * the peer's alert): that is the end at once. */
	if ((what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) &&
	    (what & BEV_EVENT_WRITING) && !(what & BEV_EVENT_READING) &&
	    !c->closing && !c->write_dead && !tls_is_tls(bev)) {
		amp_write_failed(c, bev);
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "closed by peer");
	else if ((what & BEV_EVENT_ERROR) && tls_conn_error(bev, why,
	    sizeof why))
		;	/* TLS said what went wrong */
	else if ((what & BEV_EVENT_ERROR) && EVUTIL_SOCKET_ERROR() == 0)
		/* Nothing failed but the connection: the peer went. */
		snprintf(why, sizeof why, "closed by peer");
	else if (what & BEV_EVENT_ERROR)
		snprintf(why, sizeof why, "%s error: %s",
		    (what & BEV_EVENT_READING) ? "read" : "write",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		return;
	/* The peer is gone: there is nobody left to flush to, and a close
	 * without flush also cuts short one that was flushing. */
	amp_conn_close(c, why, 0);
}

/* ---- flow control ----------------------------------------------------- */

void
amp_conn_pause(struct amp_conn *c)
{
	c->paused = 1;
	bufferevent_disable(c->in, EV_READ);
}

static void
amp_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct amp_conn *c = arg;

	(void)fd;
	(void)what;
	if (!c->closing && !c->paused)
		amp_read_cb(c->in, c);
}

void
amp_conn_resume(struct amp_conn *c)
{
	if (!c->paused || c->closing)
		return;
	c->paused = 0;
	bufferevent_enable(c->in, EV_READ);
	/* Frames already buffered would wait for the next byte otherwise. */
	if (evbuffer_get_length(bufferevent_get_input(c->in)) > 0)
		event_active(c->resume_ev, EV_TIMEOUT, 1);
}

/*
 * Only a plain socket or pipe can be written to behind the bufferevent's
 * back. Under TLS or a filter, bufferevent_getfd() still gives the
 * socket, but it carries transformed bytes: ours written there would
 * corrupt the stream. Those are left to the loop.
 */
static int
amp_bev_is_plain(struct bufferevent *bev)
{
	return bufferevent_get_underlying(bev) == NULL &&
	    bufferevent_openssl_get_ssl(bev) == NULL;
}

int
amp_conn_flush_now(struct amp_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->out);
	evutil_socket_t fd = bufferevent_getfd(c->out);
	int rc = 0;

	if (c->closing)
		return -1;
	if (fd < 0 || !amp_bev_is_plain(c->out))
		return evbuffer_get_length(out) > 0 ? 1 : 0;
	/* A socket bufferevent (the only kind that gets here) freezes the
	 * front of its output so that only it drains it; it unfreezes around
	 * its own writes, and so do we. */
	evbuffer_unfreeze(out, 1);
	while (rc == 0 && evbuffer_get_length(out) > 0) {
		if (evbuffer_write(out, fd) != -1 || errno == EINTR)
			continue;
		rc = (errno == EAGAIN || errno == EWOULDBLOCK) ? 1 : -1;
	}
	evbuffer_freeze(out, 1);
	/* The bufferevent did not write this: whether its write callback
	 * still runs for an output someone else emptied is its own detail.
	 * Producers waiting for on_drain must not depend on it. */
	if (c->congested && evbuffer_get_length(out) <= AMP_OUTPUT_LOW)
		event_active(c->drain_ev, EV_TIMEOUT, 1);
	return rc;
}

/* ---- asking without the loop ----------------------------------------- */

/* Writes what is buffered, waiting for the socket as long as it takes.
 * 0, or -1 when the peer is gone. */
static int
amp_sync_flush(struct amp_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->out);
	evutil_socket_t fd = bufferevent_getfd(c->out);
	struct pollfd pfd;
	int rc = 0;

	evbuffer_unfreeze(out, 1);
	while (rc == 0 && evbuffer_get_length(out) > 0) {
		if (evbuffer_write(out, fd) != -1 || errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			rc = -1;
			break;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			rc = -1;
	}
	evbuffer_freeze(out, 1);
	return rc;
}

/* Reads what the socket has, waiting for it. 1 when bytes came, 0 at end
 * of file, -1 on error. */
static int
amp_sync_read(struct amp_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->in);
	evutil_socket_t fd = bufferevent_getfd(c->in);
	struct pollfd pfd;
	int n;

	for (;;) {
		evbuffer_unfreeze(in, 0);
		n = evbuffer_read(in, fd, 65536);
		evbuffer_freeze(in, 0);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			return -1;
	}
}

/* A frame that came while waiting: ours, answered inline, or kept. */
static int
amp_sync_take(struct amp_conn *c, json_t *box, const char *tag,
    const char *inline_cmd)
{
	struct amp_request *outer = c->current;
	struct amp_held *h;
	json_t *v;

	v = json_object_get(box, "_answer");
	if (v == NULL)
		v = json_object_get(box, "_error");
	if (v != NULL && json_is_string(v) && strcmp(json_string_value(v),
	    tag) == 0)
		return 1;
	v = json_object_get(box, "_command");
	if (inline_cmd != NULL && v != NULL && json_is_string(v) &&
	    strcmp(json_string_value(v), inline_cmd) == 0) {
		amp_dispatch(c, box);
		c->current = outer;
		json_decref(box);
		return 0;
	}
	h = xcalloc(1, sizeof *h);
	h->box = box;
	TAILQ_INSERT_TAIL(&c->held, h, entry);
	return 0;
}

int
amp_ask_sync(struct amp_conn *c, const char *command, json_t *args,
    const char *inline_cmd, json_t **reply)
{
	struct evbuffer *in = bufferevent_get_input(c->in);
	json_t *box = args != NULL ? args : json_object();
	struct frame_err ferr;
	char tag[24], why[300];
	size_t before;
	int rc;

	*reply = NULL;
	if (c->closing || c->write_dead || !amp_bev_is_plain(c->in) ||
	    !amp_bev_is_plain(c->out) || bufferevent_getfd(c->in) < 0 ||
	    bufferevent_getfd(c->out) < 0) {
		json_decref(box);
		return -1;
	}
	/* A tag the loop's asks never use: its answer is ours alone. */
	snprintf(tag, sizeof tag, "s%llu", (unsigned long long)c->next_tag++);
	json_object_set_new(box, "_command", json_string(command));
	json_object_set_new(box, "_ask", json_string(tag));
	rc = amp_send(c, box, &ferr);
	json_decref(box);
	if (rc == -1 || amp_sync_flush(c) == -1)
		return -1;
	for (;;) {
		before = evbuffer_get_length(in);
		rc = frame_decode(in, c->limit, &box, &ferr);
		if (rc == -1) {
			snprintf(why, sizeof why, "broken frame (%s): %s",
			    frame_error_name(ferr.code), ferr.text);
			amp_conn_close(c, why, 0);
			return -1;
		}
		if (rc == 1) {
			c->frames_in++;
			c->bytes_in += before - evbuffer_get_length(in);
			if (amp_sync_take(c, box, tag, inline_cmd)) {
				*reply = box;
				break;
			}
			/* An inline answer must go out before we wait. */
			if (amp_sync_flush(c) == -1)
				return -1;
			continue;
		}
		if (amp_sync_read(c) <= 0)
			return -1;	/* the loop sees the end itself */
	}
	/* What was kept, and bytes read beyond our answer, are the loop's. */
	if (!TAILQ_EMPTY(&c->held) || evbuffer_get_length(in) > 0)
		event_active(c->resume_ev, EV_TIMEOUT, 1);
	return json_object_get(*reply, "_error") != NULL ? 1 : 0;
}

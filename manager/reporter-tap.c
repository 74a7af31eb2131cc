/*
 * reporter-tap.c - --tap FILE|-: the run as TAP version 13, one line per
 * test in completion order, with a YAML diagnostics block for every test
 * that did not simply pass.
 *
 *   TAP version 13
 *   1..4
 *   ok 1 - math/adds
 *   not ok 2 - math/fails
 *     ---
 *     outcome: fail
 *     message: "expected 4, got 5"
 *     ...
 *   ok 3 - io/later # SKIP no network
 *   not ok 4 - net/flaky # TODO bug 12
 *
 * The verdict a TAP consumer draws must be distmgr's: skip and "not run"
 * are SKIP, an expected failure is a TODO that failed, and a todo test
 * that passed (xpass) is "not ok" without a directive, because distmgr
 * fails the run for it (a stale todo) and so must prove.
 *
 * Output goes through a sink, so a reader that stops reading never
 * stalls the run. With --looponfail each run is a document of its own:
 * a file is started over, a stream gets them one after the other. Strings in the YAML are double-quoted with only the
 * escapes TAP::Parser's YAMLish reader knows (\\ \" \n \t \r \xNN).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "common.h"
#include "manager.h"

#define TAP_REASON_MAX	200		/* bytes of a SKIP/TODO reason */
#define TAP_MESSAGE_MAX	(8u * 1024)	/* bytes of a message */
#define TAP_OUTPUT_MAX	(16u * 1024)	/* bytes per stream per test */

struct tap {
	struct sink	*out;
	struct evbuffer	*rec;		/* the record being built */
	size_t		 n;		/* tests so far */
	size_t		 plan;
	int		 planned;
	struct counts	 counts;
};

static void
tap_emit(struct tap *t)
{
	size_t len = evbuffer_get_length(t->rec);

	if (len == 0)
		return;
	sink_write(t->out, (const char *)evbuffer_pullup(t->rec, -1), len);
	evbuffer_drain(t->rec, len);
}

/* Text on the test line, without line breaks. In a description '#' and
 * '\' are escaped as TAP 13 asks, so that a test id can never look like
 * a directive; a directive's reason is the rest of the line and is left
 * as it is. */
static void
tap_line_text(struct evbuffer *b, const char *s, size_t max, int desc)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < max; i++) {
		if (desc && (s[i] == '#' || s[i] == '\\'))
			evbuffer_add(b, "\\", 1);
		if (s[i] == '\n' || s[i] == '\r' || s[i] == '\t')
			evbuffer_add(b, " ", 1);
		else if ((unsigned char)s[i] < 0x20)
			evbuffer_add(b, "?", 1);
		else
			evbuffer_add(b, &s[i], 1);
	}
	if (s[i] != '\0')
		evbuffer_add(b, "...", 3);
}

static void
tap_yaml_bytes(struct evbuffer *b, const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, n;

	while (i < len) {
		if (u[i] == '"' || u[i] == '\\') {
			evbuffer_add_printf(b, "\\%c", u[i]);
			i++;
		} else if (u[i] == '\n' || u[i] == '\t' || u[i] == '\r') {
			evbuffer_add(b, u[i] == '\n' ? "\\n" : u[i] == '\t' ?
			    "\\t" : "\\r", 2);
			i++;
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			evbuffer_add_printf(b, "\\x%02X", u[i]);
			i++;
		} else if (u[i] < 0x80) {
			evbuffer_add(b, &u[i], 1);
			i++;
		} else if ((n = utf8_valid_prefix(p + i, len - i < 4 ?
		    len - i : 4)) == 0) {
			evbuffer_add(b, "\xef\xbf\xbd", 3);	/* U+FFFD */
			i++;
		} else if (u[i] == 0xc2 && u[i + 1] < 0xa0) {
			/* C1 controls: YAML does not print them. */
			evbuffer_add_printf(b, "\\x%02X", u[i + 1]);
			i += 2;
		} else {
			/* One whole character: its lead byte says how long. */
			n = u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : 2;
			evbuffer_add(b, &u[i], n);
			i += n;
		}
	}
}

static void
tap_yaml_str(struct evbuffer *b, const char *key, const char *p, size_t len,
    size_t max)
{
	struct rpt_clip c;

	rpt_clip(p, len, max, &c);
	evbuffer_add_printf(b, "  %s: \"", key);
	tap_yaml_bytes(b, c.head, c.head_len);
	if (c.omitted > 0) {
		evbuffer_add_printf(b, "\\n[... %zu bytes omitted ...]\\n",
		    c.omitted);
		tap_yaml_bytes(b, c.tail, c.tail_len);
	}
	evbuffer_add(b, "\"\n", 2);
}

static void
tap_yaml(struct tap *t, const struct test_report *r)
{
	struct evbuffer *b = t->rec;

	evbuffer_add_printf(b, "  ---\n  outcome: %s\n",
	    outcome_name(r->outcome));
	if (r->message != NULL)
		tap_yaml_str(b, "message", r->message, strlen(r->message),
		    TAP_MESSAGE_MAX);
	if (r->fail_file != NULL || r->file != NULL) {
		tap_yaml_str(b, "file", r->fail_file != NULL ? r->fail_file :
		    r->file, strlen(r->fail_file != NULL ? r->fail_file :
		    r->file), TAP_MESSAGE_MAX);
		evbuffer_add_printf(b, "  line: %d\n", r->fail_file != NULL ?
		    r->fail_line : r->line);
	}
	evbuffer_add_printf(b, "  duration: %.6f\n", r->duration);
	if (r->worker != NULL)
		tap_yaml_str(b, "worker", r->worker, strlen(r->worker), 256);
	if (r->host != NULL)
		tap_yaml_str(b, "host", r->host, strlen(r->host), 256);
	if (r->attempts > 1)
		evbuffer_add_printf(b, "  attempts: %d\n", r->attempts);
	if (r->signal > 0)
		evbuffer_add_printf(b, "  signal: %s\n", r->signal_name != NULL ?
		    r->signal_name : "unknown");
	if (r->exit_status >= 0 && r->outcome == OUT_CRASH)
		evbuffer_add_printf(b, "  exit_status: %d\n", r->exit_status);
	if (r->out != NULL && r->out_len > 0)
		tap_yaml_str(b, "stdout", r->out, r->out_len, TAP_OUTPUT_MAX);
	if (r->err != NULL && r->err_len > 0)
		tap_yaml_str(b, "stderr", r->err, r->err_len, TAP_OUTPUT_MAX);
	evbuffer_add(b, "  ...\n", 6);
}

/* The directive and whether the line says "ok". */
static const char *
tap_directive(enum outcome o, int *ok)
{
	*ok = 1;
	switch (o) {
	case OUT_PASS:
	case OUT_FLAKY:
		return NULL;
	case OUT_SKIP:
	case OUT_NOT_RUN:
		return "SKIP";
	case OUT_XFAIL:
		*ok = 0;
		return "TODO";
	default:
		*ok = 0;
		return NULL;
	}
}

static void
tap_test_result(struct reporter *rep, const struct test_report *r)
{
	struct tap *t = rep->priv;
	const char *dir, *reason = r->message;
	int ok;

	if (r->outcome > OUT_NONE && r->outcome < OUT__COUNT)
		t->counts.n[r->outcome]++;
	dir = tap_directive(r->outcome, &ok);
	evbuffer_add_printf(t->rec, "%sok %zu - ", ok ? "" : "not ", ++t->n);
	tap_line_text(t->rec, r->id, 4096, 1);
	if (dir != NULL) {
		evbuffer_add_printf(t->rec, " # %s", dir);
		if (r->outcome == OUT_NOT_RUN)
			evbuffer_add_printf(t->rec, " not run%s",
			    reason != NULL ? ":" : "");
		if (reason != NULL) {
			evbuffer_add(t->rec, " ", 1);
			tap_line_text(t->rec, reason, TAP_REASON_MAX, 0);
		}
	}
	evbuffer_add(t->rec, "\n", 1);
	if (r->outcome != OUT_PASS)
		tap_yaml(t, r);
	tap_emit(t);
}

static void
tap_run_start(struct reporter *rep, const struct run_info *ri)
{
	struct tap *t = rep->priv;

	/* Another run (--looponfail) is another document: a file holds
	 * the last one, a stream has them one after the other. */
	if (t->planned) {
		(void)sink_rewind(t->out);
		t->n = 0;
		memset(&t->counts, 0, sizeof t->counts);
	}
	t->planned = 1;
	t->plan = ri->ntests;
	evbuffer_add_printf(t->rec, "TAP version 13\n1..%zu\n", t->plan);
	tap_emit(t);
}

static void
tap_run_end(struct reporter *rep, const struct run_summary *s)
{
	struct tap *t = rep->priv;
	char line[512];

	/* Fewer lines than the plan: say why, so that a consumer reports
	 * the cause and not only a bad plan. */
	if (t->planned && t->n < t->plan) {
		evbuffer_add_printf(t->rec, "Bail out! ");
		tap_line_text(t->rec, s->stop_reason != NULL ? s->stop_reason :
		    s->interrupted ? "interrupted" :
		    "the run ended before every test had a result", 256, 0);
		evbuffer_add(t->rec, "\n", 1);
	}
	counts_line(&t->counts, s->elapsed, line, sizeof line);
	evbuffer_add_printf(t->rec, "# distmgr: %s\n", line);
	tap_emit(t);
	sink_flush(t->out, SINK_STALL_TIMEOUT);
}

static void
tap_free(struct reporter *rep)
{
	struct tap *t = rep->priv;

	sink_close(t->out);
	evbuffer_free(t->rec);
	free(t);
	free(rep);
}

static const struct reporter_ops tap_ops = {
	.name = "tap",
	.run_start = tap_run_start,
	.test_result = tap_test_result,
	.run_end = tap_run_end,
	.free = tap_free,
};

struct reporter *
reporter_tap_new(struct event_base *base, const char *path, char *why,
    size_t whylen)
{
	struct reporter *rep;
	struct tap *t;
	struct sink *out;

	if (path == NULL || *path == '\0') {
		snprintf(why, whylen, "tap: no file name given");
		return NULL;
	}
	if ((out = sink_open(base, path, "tap", why, whylen)) == NULL)
		return NULL;
	t = xcalloc(1, sizeof *t);
	t->out = out;
	if ((t->rec = evbuffer_new()) == NULL)
		fatalx("tap: out of memory");
	rep = xcalloc(1, sizeof *rep);
	rep->ops = &tap_ops;
	rep->priv = t;
	return rep;
}

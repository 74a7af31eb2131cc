/*
 * reporter-json.c - --json FILE|-: the run as JSON lines, one object per
 * event, for tools: run_start, worker_up, worker_down, test, notice,
 * run_end. The schema is documented in distmgr(1) (JSON EVENTS); the
 * unit test parses every line back and checks every field.
 *
 * Each line is written as soon as its event happens, so `tail -f` and a
 * tool reading a pipe see the run live. It must never block the run (it
 * writes through a sink) and never write unbounded lines: a test's
 * output is clipped per stream, with its full size recorded.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

#define JSON_OUTPUT_MAX		(64u * 1024)	/* bytes per stream per test */
#define JSON_MESSAGE_MAX	(16u * 1024)
#define JSON_SLOWEST		10		/* tests listed in run_end */

struct json_slow {
	char		*id;
	char		*worker;
	double		 duration;
	enum outcome	 outcome;
};

struct jrep {
	struct sink	*out;
	json_t		*argv;		/* the command line, for run_start */
	size_t		 n;		/* tests so far */
	struct counts	 counts;
	struct json_slow slowest[JSON_SLOWEST];	/* longest first */
	size_t		 nslow;
};

static void
json_emit(struct jrep *j, json_t *ev)
{
	char *s;
	size_t len;

	/* 15 digits: an epoch time to the 10 microseconds, and 0.1 as 0.1
	 * (17 would print 0.10000000000000001). */
	s = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(ev);
	if (s == NULL)
		fatalx("json: cannot encode an event");
	len = strlen(s);
	s[len] = '\n';	/* over the NUL: one write per line */
	sink_write(j->out, s, len + 1);
	free(s);
}

/* Seconds since the epoch, to the millisecond. */
static double
json_time(double t)
{
	return floor(t * 1000.0 + 0.5) / 1000.0;
}

static json_t *
json_event(const char *name)
{
	return json_pack("{s:s,s:f}", "event", name, "time",
	    json_time(clock_wall()));
}

/* A string, or null when there is none. */
static json_t *
json_str_or_null(const char *s)
{
	return s != NULL ? json_string_lossy(s, strlen(s)) : json_null();
}

static json_t *
json_clipped(const char *p, size_t len, size_t max)
{
	struct rpt_clip c;
	char *buf, *w;
	json_t *v;
	int n;

	if (p == NULL)
		return json_string("");
	rpt_clip(p, len, max, &c);
	if (c.omitted == 0)
		return json_string_lossy(p, len);
	buf = w = xmalloc(c.head_len + c.tail_len + 64);
	memcpy(w, c.head, c.head_len);
	w += c.head_len;
	n = snprintf(w, 64, "\n[... %zu bytes omitted ...]\n", c.omitted);
	w += n;
	memcpy(w, c.tail, c.tail_len);
	w += c.tail_len;
	v = json_string_lossy(buf, (size_t)(w - buf));
	free(buf);
	return v;
}

static json_t *
json_worker(const struct worker_info *w)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:i,s:I,s:o}",
	    "id", json_str_or_null(w->id),
	    "spec", json_str_or_null(w->spec),
	    "hostname", json_str_or_null(w->hostname),
	    "os", json_str_or_null(w->os),
	    "arch", json_str_or_null(w->arch),
	    "cpus", w->cpus,
	    "pid", (json_int_t)w->pid,
	    "version", json_str_or_null(w->version));
}

static void
json_run_start(struct reporter *r, const struct run_info *ri)
{
	struct jrep *j = r->priv;
	json_t *ev = json_event("run_start"), *suites = json_array();

	for (size_t i = 0; i < ri->nsuites; i++)
		json_array_append_new(suites, json_str_or_null(ri->suites[i]));
	json_object_set_new(ev, "run_id", json_str_or_null(ri->run_id));
	json_object_set_new(ev, "tests", json_integer((json_int_t)ri->ntests));
	json_object_set_new(ev, "workers", json_integer(ri->nworkers));
	json_object_set_new(ev, "dist", json_str_or_null(ri->dist));
	json_object_set_new(ev, "boxed", json_boolean(ri->boxed));
	json_object_set_new(ev, "seed", ri->seed >= 0 ?
	    json_integer(ri->seed) : json_null());
	json_object_set_new(ev, "start", json_real(json_time(ri->start_wall)));
	json_object_set_new(ev, "suites", suites);
	json_object_set(ev, "argv", j->argv);
	json_object_set_new(ev, "version", json_string(DM_VERSION));
	json_emit(j, ev);
}

static void
json_worker_up(struct reporter *r, const struct worker_info *w)
{
	json_t *ev = json_event("worker_up");

	json_object_set_new(ev, "worker", json_worker(w));
	json_emit(r->priv, ev);
}

static void
json_worker_down(struct reporter *r, const struct worker_info *w,
    const char *why)
{
	json_t *ev = json_event("worker_down");

	json_object_set_new(ev, "worker", json_worker(w));
	json_object_set_new(ev, "why", json_str_or_null(why));
	json_emit(r->priv, ev);
}

/* Keeps the JSON_SLOWEST longest tests, longest first. */
static void
json_note_slow(struct jrep *j, const struct test_report *t)
{
	struct json_slow *s;
	size_t i;

	if (j->nslow == JSON_SLOWEST &&
	    t->duration <= j->slowest[JSON_SLOWEST - 1].duration)
		return;
	if (j->nslow == JSON_SLOWEST) {
		s = &j->slowest[--j->nslow];
		free(s->id);
		free(s->worker);
	}
	for (i = j->nslow; i > 0 && j->slowest[i - 1].duration < t->duration;
	    i--)
		j->slowest[i] = j->slowest[i - 1];
	s = &j->slowest[i];
	s->id = xstrdup(t->id);
	s->worker = t->worker != NULL ? xstrdup(t->worker) : NULL;
	s->duration = t->duration;
	s->outcome = t->outcome;
	j->nslow++;
}

static json_t *
json_test_fields(const struct test_report *t)
{
	char suite[256];
	const char *name = rpt_split_id(t->id, suite, sizeof suite);

	return json_pack("{s:o,s:s,s:o,s:o,s:o,s:i,s:o,s:o,s:o,s:o,s:o,s:i,"
	    "s:f,s:i,s:o,s:i,s:i}",
	    "id", json_str_or_null(t->id),
	    "suite", suite,
	    "name", json_str_or_null(name),
	    "suite_path", json_str_or_null(t->suite_path),
	    "file", json_str_or_null(t->file),
	    "line", t->line,
	    "worker", json_str_or_null(t->worker),
	    "host", json_str_or_null(t->host),
	    "outcome", json_str_or_null(outcome_name(t->outcome)),
	    "message", t->message != NULL ? json_clipped(t->message,
		strlen(t->message), JSON_MESSAGE_MAX) : json_null(),
	    "fail_file", json_str_or_null(t->fail_file),
	    "fail_line", t->fail_line,
	    "duration", t->duration,
	    "signal", t->signal,
	    "signal_name", json_str_or_null(t->signal_name),
	    "exit_status", t->exit_status,
	    "attempts", t->attempts);
}

static void
json_test_result(struct reporter *r, const struct test_report *t)
{
	struct jrep *j = r->priv;
	json_t *ev = json_event("test");

	if (t->outcome > OUT_NONE && t->outcome < OUT__COUNT)
		j->counts.n[t->outcome]++;
	json_note_slow(j, t);
	json_object_set_new(ev, "n", json_integer((json_int_t)++j->n));
	json_object_update_new(ev, json_test_fields(t));
	json_object_set_new(ev, "stdout", json_clipped(t->out, t->out_len,
	    JSON_OUTPUT_MAX));
	json_object_set_new(ev, "stdout_bytes", json_integer(
	    (json_int_t)(t->out != NULL ? t->out_len : 0)));
	json_object_set_new(ev, "stderr", json_clipped(t->err, t->err_len,
	    JSON_OUTPUT_MAX));
	json_object_set_new(ev, "stderr_bytes", json_integer(
	    (json_int_t)(t->err != NULL ? t->err_len : 0)));
	json_emit(j, ev);
}

static void
json_notice(struct reporter *r, int level, const char *text)
{
	static const char *const names[] = { "error", "warning", "info",
	    "debug" };
	json_t *ev = json_event("notice");

	json_object_set_new(ev, "level", json_string(level >= 0 &&
	    (size_t)level < DM_NELEM(names) ? names[level] : "info"));
	json_object_set_new(ev, "text", json_str_or_null(text));
	json_emit(r->priv, ev);
}

static json_t *
json_counts(const struct counts *c)
{
	json_t *o = json_object();

	for (int i = OUT_NONE + 1; i < OUT__COUNT; i++)
		json_object_set_new(o, outcome_name(i),
		    json_integer((json_int_t)c->n[i]));
	return o;
}

static json_t *
json_slowest(const struct jrep *j)
{
	json_t *a = json_array();

	for (size_t i = 0; i < j->nslow; i++)
		json_array_append_new(a, json_pack("{s:o,s:f,s:o,s:o}",
		    "id", json_str_or_null(j->slowest[i].id),
		    "duration", j->slowest[i].duration,
		    "worker", json_str_or_null(j->slowest[i].worker),
		    "outcome", json_str_or_null(outcome_name(
		    j->slowest[i].outcome))));
	return a;
}

static void
json_run_end(struct reporter *r, const struct run_summary *s)
{
	struct jrep *j = r->priv;
	json_t *ev = json_event("run_end");
	char line[512];

	counts_line(&s->counts, s->elapsed, line, sizeof line);
	json_object_set_new(ev, "elapsed", json_real(s->elapsed));
	json_object_set_new(ev, "exit_code", json_integer(s->exit_code));
	json_object_set_new(ev, "interrupted", json_boolean(s->interrupted));
	json_object_set_new(ev, "stop_reason", json_str_or_null(
	    s->stop_reason));
	json_object_set_new(ev, "counts", json_counts(&s->counts));
	json_object_set_new(ev, "total", json_integer(
	    (json_int_t)counts_total(&s->counts)));
	json_object_set_new(ev, "reported", json_integer((json_int_t)j->n));
	json_object_set_new(ev, "line", json_string(line));
	json_object_set_new(ev, "slowest", json_slowest(j));
	json_emit(j, ev);
	sink_flush(j->out, SINK_STALL_TIMEOUT);
}

static void
json_free(struct reporter *r)
{
	struct jrep *j = r->priv;

	sink_close(j->out);
	for (size_t i = 0; i < j->nslow; i++) {
		free(j->slowest[i].id);
		free(j->slowest[i].worker);
	}
	json_decref(j->argv);
	free(j);
	free(r);
}

static const struct reporter_ops json_ops = {
	.name = "json",
	.run_start = json_run_start,
	.worker_up = json_worker_up,
	.worker_down = json_worker_down,
	.test_result = json_test_result,
	.notice = json_notice,
	.run_end = json_run_end,
	.free = json_free,
};

struct reporter *
reporter_json_new(struct event_base *base, const char *path,
    char *const *argv, char *why, size_t whylen)
{
	struct reporter *r;
	struct jrep *j;
	struct sink *out;

	if (path == NULL || *path == '\0') {
		snprintf(why, whylen, "json: no file name given");
		return NULL;
	}
	if ((out = sink_open(base, path, "json", why, whylen)) == NULL)
		return NULL;
	j = xcalloc(1, sizeof *j);
	j->out = out;
	j->argv = json_array();
	for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
		json_array_append_new(j->argv, json_string_lossy(argv[i],
		    strlen(argv[i])));
	r = xcalloc(1, sizeof *r);
	r->ops = &json_ops;
	r->priv = j;
	return r;
}

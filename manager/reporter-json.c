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

/* A growing buffer, reused for every test event. */
struct jw {
	char	*p;
	size_t	 len;
	size_t	 size;
};

struct json_slow {
	char		*id;
	char		*worker;
	double		 duration;
	enum outcome	 outcome;
};

struct jrep {
	struct sink	*out;
	struct jw	 rec;		/* the test event being written */
	json_t		*argv;		/* the command line, for run_start */
	size_t		 n;		/* tests so far */
	struct counts	 counts;
	struct json_slow slowest[JSON_SLOWEST];	/* longest first */
	size_t		 nslow;
	struct rpt_top	 dur;		/* --report-durations */
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

/* What one run counted: --looponfail runs again with this reporter. */
static void
json_forget(struct jrep *j)
{
	for (size_t i = 0; i < j->nslow; i++) {
		free(j->slowest[i].id);
		free(j->slowest[i].worker);
	}
	j->nslow = 0;
	j->n = 0;
	memset(&j->counts, 0, sizeof j->counts);
	rpt_top_clear(&j->dur);
}

static void
json_run_start(struct reporter *r, const struct run_info *ri)
{
	struct jrep *j = r->priv;
	json_t *ev = json_event("run_start"), *suites = json_array();

	json_forget(j);
	if ((size_t)ri->report_durations != j->dur.max) {
		rpt_top_free(&j->dur);
		rpt_top_init(&j->dur, ri->report_durations > 0 ?
		    (size_t)ri->report_durations : 0);
	}

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
	json_object_set_new(ev, "report_durations",
	    json_integer(ri->report_durations));
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

/* ---- the test event, written directly ---------------------------------
 *
 * One per test, so it is the reporter's hot path: built with jansson and
 * printf it cost 10-40 us a result, a ceiling of a few ten thousand tests
 * a second. Appended byte by byte into one reused buffer it costs about
 * a microsecond. The other events are rare and keep using jansson. */

static void
jw_add(struct jw *b, const void *data, size_t n)
{
	if (b->size - b->len < n) {
		while (b->size - b->len < n)
			b->size = b->size * 2 + 256;
		b->p = xreallocarray(b->p, b->size, 1);
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

#define jw_lit(b, s)	jw_add((b), (s), sizeof(s) - 1)

static void
jw_int(struct jw *b, long long v)
{
	char buf[24], *e = buf + sizeof buf, *q = e;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v :
	    (unsigned long long)v;

	do
		*--q = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		*--q = '-';
	jw_add(b, q, (size_t)(e - q));
}

/* v with at most decimals digits after the point, trailing zeros
 * dropped but one kept ("5.0"), so that it reads back as a real; null
 * when it is not finite or too large for this, which JSON cannot hold
 * or a duration never is. */
static void
jw_fixed(struct jw *b, double v, int decimals)
{
	long long scale = 1, whole, frac;
	char digits[24];
	int n;

	for (int i = 0; i < decimals; i++)
		scale *= 10;
	if (!isfinite(v) || fabs(v) * (double)scale > 9e18) {
		jw_lit(b, "null");
		return;
	}
	frac = llround(fabs(v) * (double)scale);
	whole = frac / scale;
	frac %= scale;
	if (v < 0 && (whole > 0 || frac > 0))
		jw_lit(b, "-");
	jw_int(b, whole);
	jw_lit(b, ".");
	for (n = decimals; n > 0; n--, frac /= 10)
		digits[n - 1] = (char)('0' + frac % 10);
	for (n = decimals; n > 1 && digits[n - 1] == '0'; n--)
		;
	jw_add(b, digits, decimals > 0 ? (size_t)n : 0);
	if (decimals == 0)
		jw_lit(b, "0");
}

/* A JSON string's contents from arbitrary bytes, as json_string_lossy
 * would give them: invalid UTF-8 and NUL become U+FFFD. */
static void
jw_str_bytes(struct jw *b, const char *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, end, run;
	char esc[6] = { '\\', 'u', '0', '0', 0, 0 };

	while (i < len) {
		end = i + utf8_valid_prefix(p + i, len - i);
		for (run = i; i < end; i++) {
			if (u[i] >= 0x20 && u[i] != '"' && u[i] != '\\')
				continue;
			jw_add(b, p + run, i - run);
			run = i + 1;
			if (u[i] == '"')
				jw_lit(b, "\\\"");
			else if (u[i] == '\\')
				jw_lit(b, "\\\\");
			else if (u[i] == '\n')
				jw_lit(b, "\\n");
			else if (u[i] == '\t')
				jw_lit(b, "\\t");
			else {
				esc[4] = hex[u[i] >> 4];
				esc[5] = hex[u[i] & 15];
				jw_add(b, esc, sizeof esc);
			}
		}
		jw_add(b, p + run, end - run);
		if (i < len) {
			jw_lit(b, "\xef\xbf\xbd");
			i++;
		}
	}
}

/* key is the literal ",\"name\":" */
static void
jw_str(struct jw *b, const char *key, const char *s)
{
	jw_add(b, key, strlen(key));
	if (s == NULL) {
		jw_lit(b, "null");
		return;
	}
	jw_lit(b, "\"");
	jw_str_bytes(b, s, strlen(s));
	jw_lit(b, "\"");
}

static void
jw_clipped(struct jw *b, const char *key, const char *p, size_t len,
    size_t max)
{
	struct rpt_clip c;

	rpt_clip(p, p != NULL ? len : 0, max, &c);
	jw_add(b, key, strlen(key));
	jw_lit(b, "\"");
	jw_str_bytes(b, c.head, c.head_len);
	if (c.omitted > 0) {
		jw_lit(b, "\\n[... ");
		jw_int(b, (long long)c.omitted);
		jw_lit(b, " bytes omitted ...]\\n");
		jw_str_bytes(b, c.tail, c.tail_len);
	}
	jw_lit(b, "\"");
}

static void
jw_test(struct jw *b, size_t n, const struct test_report *t)
{
	char suite[256];
	const char *name = rpt_split_id(t->id, suite, sizeof suite);

	jw_lit(b, "{\"event\":\"test\",\"time\":");
	jw_fixed(b, clock_wall(), 3);
	jw_lit(b, ",\"n\":");
	jw_int(b, (long long)n);
	jw_str(b, ",\"id\":", t->id);
	jw_str(b, ",\"suite\":", suite);
	jw_str(b, ",\"name\":", name);
	jw_str(b, ",\"suite_path\":", t->suite_path);
	jw_str(b, ",\"file\":", t->file);
	jw_lit(b, ",\"line\":");
	jw_int(b, t->line);
	jw_str(b, ",\"worker\":", t->worker);
	jw_str(b, ",\"host\":", t->host);
	jw_str(b, ",\"outcome\":", outcome_name(t->outcome));
	if (t->message != NULL)
		jw_clipped(b, ",\"message\":", t->message, strlen(t->message),
		    JSON_MESSAGE_MAX);
	else
		jw_str(b, ",\"message\":", NULL);
	jw_str(b, ",\"fail_file\":", t->fail_file);
	jw_lit(b, ",\"fail_line\":");
	jw_int(b, t->fail_line);
	jw_lit(b, ",\"duration\":");
	jw_fixed(b, t->duration, 9);
	jw_lit(b, ",\"signal\":");
	jw_int(b, t->signal);
	jw_str(b, ",\"signal_name\":", t->signal_name);
	jw_lit(b, ",\"exit_status\":");
	jw_int(b, t->exit_status);
	jw_lit(b, ",\"attempts\":");
	jw_int(b, t->attempts);
	jw_clipped(b, ",\"stdout\":", t->out, t->out_len, JSON_OUTPUT_MAX);
	jw_lit(b, ",\"stdout_bytes\":");
	jw_int(b, t->out != NULL ? (long long)t->out_len : 0);
	jw_clipped(b, ",\"stderr\":", t->err, t->err_len, JSON_OUTPUT_MAX);
	jw_lit(b, ",\"stderr_bytes\":");
	jw_int(b, t->err != NULL ? (long long)t->err_len : 0);
	jw_lit(b, "}\n");
}

static void
json_test_result(struct reporter *r, const struct test_report *t)
{
	struct jrep *j = r->priv;

	if (t->outcome > OUT_NONE && t->outcome < OUT__COUNT)
		j->counts.n[t->outcome]++;
	json_note_slow(j, t);
	if (j->dur.max > 0)
		rpt_top_add(&j->dur, t);
	j->rec.len = 0;
	jw_test(&j->rec, ++j->n, t);
	sink_write(j->out, j->rec.p, j->rec.len);
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

/* A number, or null for "unknown". */
static json_t *
json_num_or_null(int known, double v)
{
	return known ? json_real(v) : json_null();
}

/* --report-durations: the N slowest tests with what the cache knew. */
static json_t *
json_durations(struct jrep *j)
{
	json_t *tests = json_array(), *hist, *e;
	const struct rpt_slow *d;

	rpt_top_sort(&j->dur);
	for (size_t i = 0; i < j->dur.n; i++) {
		d = &j->dur.e[i];
		hist = json_array();
		for (int k = 0; k < d->nhistory; k++)
			json_array_append_new(hist, json_real(d->history[k]));
		e = json_pack("{s:o,s:f,s:o,s:o,s:o,s:o,s:o}",
		    "id", json_str_or_null(d->id),
		    "duration", d->duration,
		    "worker", json_str_or_null(d->worker),
		    "outcome", json_str_or_null(outcome_name(d->outcome)),
		    "expected", json_num_or_null(d->nhistory > 0, d->expected),
		    "change", json_num_or_null(d->nhistory > 0,
		    d->duration - d->expected),
		    "history", hist);
		json_array_append_new(tests, e);
	}
	return json_pack("{s:I,s:I,s:f,s:o}",
	    "count", (json_int_t)j->dur.max,
	    "timed", (json_int_t)j->dur.count,
	    "total", j->dur.total, "tests", tests);
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
	if (j->dur.max > 0)
		json_object_set_new(ev, "durations", json_durations(j));
	json_emit(j, ev);
	sink_flush(j->out, SINK_STALL_TIMEOUT);
}

static void
json_free(struct reporter *r)
{
	struct jrep *j = r->priv;

	sink_close(j->out);
	json_forget(j);
	rpt_top_free(&j->dur);
	json_decref(j->argv);
	free(j->rec.p);
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

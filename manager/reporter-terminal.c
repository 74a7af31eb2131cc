/*
 * reporter-terminal.c - what a person at a terminal (or a CI log) sees.
 *
 * On a terminal: a live status line at the bottom, redrawn on a timer at
 * most TERM_TICK_TTY apart, with failures (and, with -v, every test)
 * printed above it as they happen. Elsewhere: the same lines, plain, no
 * escape codes (unless --color=always), and a progress line now and then
 * so that a CI log shows the run is alive. -q prints only the summary.
 * After the run: each failure with its message, place and captured
 * output, the flaky tests, the slowest tests (--durations N), and the
 * closing line "distmgr: 120 passed, 3 failed in 4.21s".
 *
 * It must never slow the run: text is built in a stdio buffer of its own
 * and flushed on the timer into a sink (report-sink.c) over a file
 * description of its own for stdout, written without blocking, so that a
 * pipe nobody reads costs memory up to a cap (with a warning when it
 * falls behind, then the rest of the output is dropped), never the event
 * loop; at the very end it waits for the reader, but at most
 * TERM_END_STALL seconds in which the reader takes nothing. A passing
 * test costs a few counters (and a heap comparison with --durations), and
 * with a million tests it keeps only what the end needs: bounded failure
 * records (TERM_MAX_FAILURES, their output within TERM_OUTPUT_BUDGET) and
 * a top-N heap of durations. It must never write a test's control
 * characters to the terminal raw: a test's output could otherwise clear
 * the screen or hide a failure.
 */
#include <sys/ioctl.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "manager.h"

#define TERM_TICK_TTY		0.1	/* seconds between status redraws */
#define TERM_TICK_PLAIN		1.0	/* seconds between flushes */
#define TERM_PLAIN_PROGRESS	60.0	/* seconds between plain progress */
#define TERM_MAX_FAILURES	10000	/* kept for the end, in full */
#define TERM_MAX_FLAKY		10000
#define TERM_MAX_MESSAGE	4096	/* bytes of a message kept */
#define TERM_OUTPUT_LINES	40	/* lines of each stream shown */
#define TERM_OUTPUT_BYTES	8192	/* bytes of each stream shown */
#define TERM_OUTPUT_BUDGET	(16u * 1024 * 1024)	/* all failures' */
#define TERM_RULE_WIDTH		72	/* of the section headings */
#define TERM_STATUS_MAX		1024	/* bytes of the status line */
#define TERM_BUFFER		(64u * 1024)	/* stdio's, before the sink */
#define TERM_END_STALL		30.0	/* seconds without progress at the
					   end before output is given up */

#define C_RESET		"\033[0m"
#define C_BOLD		"\033[1m"
#define C_RED		"\033[31m"
#define C_GREEN		"\033[32m"
#define C_YELLOW	"\033[33m"
#define C_BOLD_RED	"\033[1;31m"
#define C_BOLD_GREEN	"\033[1;32m"
#define C_BOLD_YELLOW	"\033[1;33m"

/* The tail of a captured stream, as the end will show it. */
struct term_tail {
	char		*text;		/* NULL when empty */
	size_t		 lines_cut;	/* earlier lines not kept */
	int		 over_budget;	/* not kept: memory budget spent */
};

struct term_failure {
	char		*id;
	enum outcome	 outcome;
	char		*worker;
	double		 duration;
	int		 attempts;
	char		*where;		/* "file:line", or NULL */
	char		*what;		/* first line: "killed by SIGSEGV" */
	char		*message;
	struct term_tail out;
	struct term_tail err;
};

struct term_slow {
	double		 duration;
	char		*id;
	char		*worker;
};

struct term {
	FILE		*fp;		/* where text goes: out itself, or a
					   stream into sink */
	FILE		*out;		/* the caller's (stdout) */
	struct sink	*sink;		/* out's descriptor, never blocking;
					   NULL: write to out itself */
	struct event	*timer;
	struct terminal_options opt;
	int		 tty;		/* draw the live status line */
	int		 color;
	int		 width;		/* columns, for the status line */

	size_t		 total;
	size_t		 done;
	struct counts	 counts;	/* as the closing line counts them */
	double		 start;		/* clock_mono() at run_start */
	double		 last_draw;
	double		 last_plain;
	int		 status_shown;
	int		 running_now;	/* between run_start and run_end */
	int		 ended;		/* a run ended: the next thing said
					   (--looponfail) comes after a blank
					   line */

	double		 eta;		/* from progress, < 0 unknown */
	char		**running;	/* per worker: test id or NULL */
	char		**workers;
	size_t		 nworkers;

	struct term_failure *fail;
	size_t		 nfail;
	size_t		 fail_size;
	size_t		 fail_dropped;	/* over TERM_MAX_FAILURES */
	size_t		 output_kept;	/* bytes, against the budget */
	char		**flaky;
	size_t		 nflaky;
	size_t		 flaky_dropped;
	struct term_slow *slow;		/* min-heap on duration */
	size_t		 nslow;
};

/* ---- writing ----------------------------------------------------------- */

static void
term_color(struct term *t, const char *code)
{
	if (t->color)
		fputs(code, t->fp);
}

/* Writes s[0..len) with every control character but tab and newline
 * shown as '?', and a CR before a newline dropped. */
static void
term_put_text(struct term *t, const char *s, size_t len)
{
	size_t i, run = 0;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != 0x7f)
			continue;
		if (c == '\n' || c == '\t')
			continue;
		fwrite(s + run, 1, i - run, t->fp);
		if (!(c == '\r' && i + 1 < len && s[i + 1] == '\n'))
			fputc('?', t->fp);
		run = i + 1;
	}
	fwrite(s + run, 1, len - run, t->fp);
}

static void
term_put_str(struct term *t, const char *s)
{
	if (s != NULL)
		term_put_text(t, s, strlen(s));
}

/* Takes the status line off the screen before anything else is written;
 * the caller puts it back with term_status_restore(). */
static void
term_status_clear(struct term *t)
{
	if (t->status_shown) {
		fputs("\r\033[K", t->fp);
		t->status_shown = 0;
	}
}

/* "12 µs", "0.2 ms", "4.21 s", "2m05s", "1h02m03s" */
static void
term_fmt_duration(char *buf, size_t size, double d)
{
	long s;

	if (!(d >= 0))
		snprintf(buf, size, "?");
	else if (d < 0.0001)
		snprintf(buf, size, "%.0f \xc2\xb5s", d * 1e6);
	else if (d < 0.99995)
		snprintf(buf, size, "%.1f ms", d * 1e3);
	else if (d < 59.995)
		snprintf(buf, size, "%.2f s", d);
	else if ((s = lround(d)) < 3600)
		snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(buf, size, "%ldh%02ldm%02lds", s / 3600,
		    s / 60 % 60, s % 60);
}

/* Elapsed time and ETA on the status line: "12.3s", "2m05s", "1h02m". */
static void
term_fmt_clock(char *buf, size_t size, double d)
{
	long s = lround(d < 0 ? 0 : d);

	if (d < 59.95)
		snprintf(buf, size, "%.1fs", d < 0 ? 0 : d);
	else if (s < 3600)
		snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(buf, size, "%ldh%02ldm", s / 3600, s / 60 % 60);
}

/* Columns a UTF-8 string takes (one per code point; good enough). */
static size_t
term_columns(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

static const char *
term_outcome_color(enum outcome o)
{
	switch (o) {
	case OUT_PASS:
		return C_GREEN;
	case OUT_SKIP:
	case OUT_XFAIL:
	case OUT_FLAKY:
	case OUT_NOT_RUN:
		return C_YELLOW;
	default:
		return outcome_is_failure(o) ? C_BOLD_RED : "";
	}
}

/* A centred heading: "============ FAILURES (3) ============". */
static void
term_heading(struct term *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
term_heading(struct term *t, const char *fmt, ...)
{
	char title[128];
	va_list ap;
	int len, left, right, i;

	va_start(ap, fmt);
	vsnprintf(title, sizeof title, fmt, ap);
	va_end(ap);
	len = (int)term_columns(title, strlen(title)) + 2;
	left = (TERM_RULE_WIDTH - len) / 2;
	right = TERM_RULE_WIDTH - len - left;
	term_color(t, C_BOLD);
	for (i = 0; i < left; i++)
		fputc('=', t->fp);
	fprintf(t->fp, " %s ", title);
	for (i = 0; i < right; i++)
		fputc('=', t->fp);
	term_color(t, C_RESET);
	fputc('\n', t->fp);
}

/* ---- the status line --------------------------------------------------- */

struct term_sbuf {
	char		 buf[TERM_STATUS_MAX];
	size_t		 len;
	size_t		 cols;
	size_t		 max;		/* columns available */
	int		 full;
};

/* Appends text (in color, when colours are on), cutting at max columns,
 * with control characters shown as '?'; escape codes take no columns. */
static void
term_sbuf_add(struct term_sbuf *sb, const struct term *t, const char *color,
    const char *text)
{
	size_t n = 0, room = sizeof sb->buf - sb->len - 16, cols = 0, i;
	unsigned char c;

	if (sb->full)
		return;
	while (text[n] != '\0' && n < room) {
		if (((unsigned char)text[n] & 0xc0) != 0x80) {
			if (sb->cols + cols == sb->max)
				break;
			cols++;
		}
		n++;
	}
	if (text[n] != '\0')
		sb->full = 1;
	if (n == 0)
		return;
	if (t->color && color != NULL)
		sb->len += (size_t)snprintf(sb->buf + sb->len,
		    sizeof sb->buf - sb->len, "%s", color);
	for (i = 0; i < n; i++) {
		c = (unsigned char)text[i];
		sb->buf[sb->len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (t->color && color != NULL)
		sb->len += (size_t)snprintf(sb->buf + sb->len,
		    sizeof sb->buf - sb->len, "%s", C_RESET);
	sb->cols += cols;
	sb->buf[sb->len] = '\0';
}

static double
term_eta(const struct term *t, double elapsed)
{
	if (t->total > 0 && t->done >= t->total)
		return -1;		/* nothing left: no estimate */
	if (t->eta >= 0)
		return t->eta;
	if (t->done == 0 || t->total <= t->done)
		return -1;
	return elapsed / (double)t->done * (double)(t->total - t->done);
}

/* " | w0 str/trim, w2 ini/parse (+5)": whole entries only, and how many
 * busy workers did not fit. */
static void
term_status_running(struct term *t, struct term_sbuf *sb)
{
	char part[256];
	size_t i, left = 0, cols;
	int first = 1;

	for (i = 0; i < t->nworkers; i++) {
		if (t->running[i] == NULL)
			continue;
		snprintf(part, sizeof part, "%s%s %s", first ? " | " : ", ",
		    t->workers[i] ? t->workers[i] : "?", t->running[i]);
		cols = term_columns(part, strlen(part));
		/* Room for this and a " (+NN)" after it. */
		if (left > 0 || sb->cols + cols + 6 > sb->max) {
			left++;
			continue;
		}
		term_sbuf_add(sb, t, NULL, part);
		first = 0;
	}
	if (left > 0) {
		snprintf(part, sizeof part, first ? " | %zu running" :
		    " (+%zu)", left);
		term_sbuf_add(sb, t, NULL, part);
	}
}

/* Whether the live counts name outcome o: passed and failed always,
 * the others once they occur. */
static int
term_counts_shows(const struct term *t, enum outcome o)
{
	return o == OUT_PASS || o == OUT_FAIL || t->counts.n[o] > 0;
}

/* "440 passed, 3 failed, 1 crashed, 2 xfailed": the closing line's
 * words with the closing line's meaning, so that the live counts and
 * the last line never disagree (an xfail is not counted as passed). */
static void
term_status_counts(struct term *t, struct term_sbuf *sb)
{
	char part[64];
	const char *color;
	int o, first = 1;

	for (o = OUT_PASS; o < OUT__COUNT; o++) {
		if (!term_counts_shows(t, (enum outcome)o))
			continue;
		snprintf(part, sizeof part, "%s%zu %s", first ? "" : ", ",
		    t->counts.n[o], outcome_summary_word((enum outcome)o));
		color = t->counts.n[o] == 0 ? NULL :
		    term_outcome_color((enum outcome)o);
		term_sbuf_add(sb, t, color != NULL && *color != '\0' ? color :
		    NULL, part);
		first = 0;
	}
}

/* "[ 45%] 450/1000 | 440 passed, 3 failed | 12.3s, ETA 15.0s | w0 a/b" */
static void
term_status_build(struct term *t, struct term_sbuf *sb)
{
	char part[256], clock1[32], clock2[32];
	double elapsed = clock_mono() - t->start, eta = term_eta(t, elapsed);

	memset(sb, 0, sizeof *sb);
	sb->max = t->width > 1 ? (size_t)t->width - 1 : 79;
	snprintf(part, sizeof part, "[%3zu%%] %zu/%zu",
	    t->total ? t->done * 100 / t->total : 0, t->done, t->total);
	term_sbuf_add(sb, t, NULL, part);
	term_sbuf_add(sb, t, NULL, " | ");
	term_status_counts(t, sb);
	term_fmt_clock(clock1, sizeof clock1, elapsed);
	if (eta >= 0) {
		term_fmt_clock(clock2, sizeof clock2, eta);
		snprintf(part, sizeof part, " | %s, ETA %s", clock1, clock2);
	} else
		snprintf(part, sizeof part, " | %s", clock1);
	term_sbuf_add(sb, t, NULL, part);
	term_status_running(t, sb);
}

/*
 * Draws the status line. From the timer (tick) it also looks at the
 * terminal's width and flushes; after a printed line it only goes into
 * stdio's buffer, which the next newline or tick writes: no system call
 * of its own per test, even with -v.
 */
static void
term_status_draw(struct term *t, int tick)
{
	struct term_sbuf sb;
	struct winsize ws;

	if (!t->tty || !t->running_now)
		return;
	if (tick && ioctl(fileno(t->out), TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col > 0)
		t->width = ws.ws_col;
	term_status_build(t, &sb);
	fputs("\r\033[K", t->fp);
	fwrite(sb.buf, 1, sb.len, t->fp);
	t->status_shown = 1;
	if (tick) {
		t->last_draw = clock_mono();
		fflush(t->fp);
	}
}

/* Puts the status line back after lines were printed above it. */
static void
term_status_restore(struct term *t)
{
	if (t->tty && !t->status_shown)
		term_status_draw(t, t->timer == NULL);
}

static void
term_plain_progress(struct term *t)
{
	char clock1[32], clock2[32];
	double elapsed = clock_mono() - t->start, eta = term_eta(t, elapsed);
	int o;

	term_fmt_clock(clock1, sizeof clock1, elapsed);
	term_fmt_clock(clock2, sizeof clock2, eta);
	fprintf(t->fp, "[progress] %zu/%zu done (%zu%%)", t->done, t->total,
	    t->total ? t->done * 100 / t->total : 0);
	for (o = OUT_PASS; o < OUT__COUNT; o++)
		if (term_counts_shows(t, (enum outcome)o))
			fprintf(t->fp, ", %zu %s", t->counts.n[o],
			    outcome_summary_word((enum outcome)o));
	fprintf(t->fp, ", %s elapsed%s%s\n", clock1, eta >= 0 ? ", ETA " : "",
	    eta >= 0 ? clock2 : "");
}

static void
term_tick(evutil_socket_t fd, short what, void *arg)
{
	struct term *t = arg;
	double now = clock_mono();

	(void)fd;
	(void)what;
	if (t->tty) {
		term_status_draw(t, 1);
		return;
	}
	if (t->opt.verbosity == 0 && now - t->last_plain >=
	    TERM_PLAIN_PROGRESS) {
		term_plain_progress(t);
		t->last_plain = now;
	}
	fflush(t->fp);
}

/* Without an event loop to tick, redraw from the events themselves. */
static void
term_untimed_tick(struct term *t)
{
	if (t->timer == NULL && t->tty &&
	    clock_mono() - t->last_draw >= TERM_TICK_TTY)
		term_status_draw(t, 1);
}

/* ---- per-test lines ---------------------------------------------------- */

static int
term_wants_line(const struct term *t, enum outcome o)
{
	if (t->opt.verbosity < 0)
		return 0;
	if (t->opt.verbosity > 0)
		return 1;
	return outcome_is_failure(o) || o == OUT_FLAKY;
}

/* The one-line reason: the message's first line, or what happened. */
static void
term_reason(const struct test_report *tr, char *buf, size_t size)
{
	const char *m = tr->message;

	if (m != NULL && *m != '\0')
		snprintf(buf, size, "%.*s", (int)strcspn(m, "\n"), m);
	else if (tr->outcome == OUT_CRASH && tr->signal > 0)
		snprintf(buf, size, "killed by %s", tr->signal_name ?
		    tr->signal_name : "a signal");
	else if (tr->outcome == OUT_CRASH && tr->exit_status >= 0)
		snprintf(buf, size, "exited with status %d", tr->exit_status);
	else if (tr->outcome == OUT_TIMEOUT)
		snprintf(buf, size, "timed out");
	else if (tr->outcome == OUT_XPASS)
		snprintf(buf, size, "passed, but it is marked todo");
	else
		buf[0] = '\0';
}

/* Captured output under a test's line (-vv), or under a failure. */
static void
term_put_indented(struct term *t, const char *label, const char *s,
    size_t len, size_t lines_cut)
{
	const char *p = s, *end = s + len, *nl;
	size_t n;

	if (len == 0)
		return;
	if (lines_cut > 0)
		fprintf(t->fp, "  ---- %s (%zu earlier %s not shown) ----\n",
		    label, lines_cut, lines_cut == 1 ? "line" : "lines");
	else
		fprintf(t->fp, "  ---- %s ----\n", label);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;		/* CRLF output */
		fputs("  ", t->fp);
		term_put_text(t, p, n);
		fputc('\n', t->fp);
		p = nl ? nl + 1 : end;
	}
}

/* "[w3] PASS math/adds (0.2 ms)", plus " - reason" when there is one. */
static void
term_test_line(struct term *t, const struct test_report *tr)
{
	char dur[32], reason[512];

	term_status_clear(t);
	term_fmt_duration(dur, sizeof dur, tr->duration);
	fputc('[', t->fp);
	term_put_str(t, tr->worker ? tr->worker : "-");	/* "-": none ran it */
	fputs("] ", t->fp);
	term_color(t, term_outcome_color(tr->outcome));
	fputs(outcome_tag(tr->outcome), t->fp);
	term_color(t, C_RESET);
	fputc(' ', t->fp);
	term_put_str(t, tr->id);
	if (tr->attempts > 1)
		fprintf(t->fp, " (%s, %d attempts)", dur, tr->attempts);
	else if (tr->duration >= 0)
		fprintf(t->fp, " (%s)", dur);
	term_reason(tr, reason, sizeof reason);
	if (reason[0] != '\0') {
		fputs(" - ", t->fp);
		term_put_str(t, reason);
	}
	fputc('\n', t->fp);
	if (t->opt.verbosity >= 2) {
		term_put_indented(t, "stdout", tr->out, tr->out_len, 0);
		term_put_indented(t, "stderr", tr->err, tr->err_len, 0);
	}
}

/* ---- what the end needs ------------------------------------------------ */

/* Where the last TERM_OUTPUT_LINES lines of s begin, moved on to a
 * later line (or character) if they hold more than TERM_OUTPUT_BYTES. */
static size_t
term_tail_start(const char *s, size_t len)
{
	size_t start = len, lines = 0;
	const char *nl;

	if (s[len - 1] == '\n')
		start--;		/* the last line's own newline */
	while (start > 0) {
		if (s[start - 1] == '\n' && ++lines == TERM_OUTPUT_LINES)
			return start;
		if (len - start >= TERM_OUTPUT_BYTES)
			break;
		start--;
	}
	if (start == 0)
		return 0;
	nl = memchr(s + start, '\n', len - 1 - start);
	if (nl != NULL)
		return (size_t)(nl - s) + 1;
	while (start < len && ((unsigned char)s[start] & 0xc0) == 0x80)
		start++;
	return start;
}

static void
term_tail_keep(struct term *t, struct term_tail *tail, const char *s,
    size_t len)
{
	size_t start, i;

	memset(tail, 0, sizeof *tail);
	if (s == NULL || len == 0 || !t->opt.show_output)
		return;
	start = term_tail_start(s, len);
	if (t->output_kept + (len - start) > TERM_OUTPUT_BUDGET) {
		tail->over_budget = 1;
		return;
	}
	t->output_kept += len - start;
	tail->text = xstrndup(s + start, len - start);
	for (i = 0; i < start; i++)
		tail->lines_cut += s[i] == '\n';
}

static char *
term_where(const struct test_report *tr)
{
	char *w = NULL;

	if (tr->fail_file != NULL)
		xasprintf(&w, "%s:%d", tr->fail_file, tr->fail_line);
	else if (tr->file != NULL)
		xasprintf(&w, "%s:%d", tr->file, tr->line);
	return w;
}

static void
term_keep_failure(struct term *t, const struct test_report *tr)
{
	struct term_failure *f;
	char what[256];

	if (t->nfail == TERM_MAX_FAILURES) {
		t->fail_dropped++;
		return;
	}
	if (t->nfail == t->fail_size) {
		t->fail_size = t->fail_size ? t->fail_size * 2 : 16;
		t->fail = xreallocarray(t->fail, t->fail_size, sizeof *t->fail);
	}
	f = &t->fail[t->nfail++];
	memset(f, 0, sizeof *f);
	f->id = xstrdup(tr->id ? tr->id : "?");
	f->outcome = tr->outcome;
	f->worker = xstrdup(tr->worker ? tr->worker : "?");
	f->duration = tr->duration;
	f->attempts = tr->attempts;
	f->where = term_where(tr);
	/* The worker's message says what happened; without one, say it
	 * from the signal or exit status. */
	if (tr->message != NULL && *tr->message != '\0')
		what[0] = '\0';
	else if (tr->outcome == OUT_CRASH && tr->signal > 0)
		snprintf(what, sizeof what, "killed by %s (signal %d)",
		    tr->signal_name ? tr->signal_name : "a signal", tr->signal);
	else if (tr->outcome == OUT_CRASH && tr->exit_status >= 0)
		snprintf(what, sizeof what, "exited with status %d",
		    tr->exit_status);
	else {
		term_reason(tr, what, sizeof what);
		if (what[0] == '\0')
			snprintf(what, sizeof what, "(no message)");
	}
	f->what = what[0] ? xstrdup(what) : NULL;
	if (tr->message != NULL && *tr->message != '\0')
		f->message = xstrndup(tr->message, TERM_MAX_MESSAGE);
	term_tail_keep(t, &f->out, tr->out, tr->out_len);
	term_tail_keep(t, &f->err, tr->err, tr->err_len);
}

static void
term_keep_flaky(struct term *t, const struct test_report *tr)
{
	char *s;

	if (t->nflaky == TERM_MAX_FLAKY) {
		t->flaky_dropped++;
		return;
	}
	xasprintf(&s, "%s (%s, passed on attempt %d)", tr->id ? tr->id : "?",
	    tr->worker ? tr->worker : "?", tr->attempts);
	t->flaky = xreallocarray(t->flaky, t->nflaky + 1, sizeof *t->flaky);
	t->flaky[t->nflaky++] = s;
}

/* A min-heap of the --durations N slowest: the root is the one to beat. */
static void
term_heap_down(struct term_slow *h, size_t n, size_t i)
{
	struct term_slow tmp;
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && h[c + 1].duration < h[c].duration)
			c++;
		if (h[i].duration <= h[c].duration)
			return;
		tmp = h[i];
		h[i] = h[c];
		h[c] = tmp;
		i = c;
	}
}

static void
term_keep_slow(struct term *t, const struct test_report *tr)
{
	size_t n = (size_t)t->opt.durations, i;
	struct term_slow s, tmp;

	if (t->nslow == n && tr->duration <= t->slow[0].duration)
		return;			/* the common case: not among them */
	s.duration = tr->duration;
	s.id = xstrdup(tr->id ? tr->id : "?");
	s.worker = xstrdup(tr->worker ? tr->worker : "?");
	if (t->nslow == n) {
		free(t->slow[0].id);
		free(t->slow[0].worker);
		t->slow[0] = s;
		term_heap_down(t->slow, n, 0);
		return;
	}
	i = t->nslow++;
	t->slow[i] = s;
	while (i > 0 && t->slow[(i - 1) / 2].duration > t->slow[i].duration) {
		tmp = t->slow[i];
		t->slow[i] = t->slow[(i - 1) / 2];
		t->slow[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

/* ---- after the run ----------------------------------------------------- */

static void
term_put_failure(struct term *t, const struct term_failure *f)
{
	char dur[32];
	const char *p, *nl;

	term_fmt_duration(dur, sizeof dur, f->duration);
	term_color(t, term_outcome_color(f->outcome));
	fputs(outcome_tag(f->outcome), t->fp);
	term_color(t, C_RESET);
	fputc(' ', t->fp);
	term_color(t, C_BOLD);
	term_put_str(t, f->id);
	term_color(t, C_RESET);
	fputs(" (", t->fp);
	term_put_str(t, f->worker);
	fprintf(t->fp, ", %s", dur);
	if (f->attempts > 1)
		fprintf(t->fp, ", %d attempts", f->attempts);
	fputs(")\n", t->fp);
	fputs("  ", t->fp);
	if (f->where != NULL) {
		term_put_str(t, f->where);
		fputs(": ", t->fp);
	}
	term_put_str(t, f->what);
	if (f->what != NULL && f->message != NULL)
		fputs("\n  ", t->fp);
	for (p = f->message; p != NULL && *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		term_put_text(t, p, nl ? (size_t)(nl - p) : strlen(p));
		if (nl == NULL || nl[1] == '\0')
			break;
		fputs("\n  ", t->fp);
	}
	fputc('\n', t->fp);
	term_put_indented(t, "stdout", f->out.text ? f->out.text : "",
	    f->out.text ? strlen(f->out.text) : 0, f->out.lines_cut);
	term_put_indented(t, "stderr", f->err.text ? f->err.text : "",
	    f->err.text ? strlen(f->err.text) : 0, f->err.lines_cut);
	if (f->out.over_budget || f->err.over_budget)
		fputs("  (output not kept: over the terminal's memory "
		    "budget)\n", t->fp);
}

/* -q: one line per failure. */
static void
term_put_failure_short(struct term *t, const struct term_failure *f)
{
	term_color(t, term_outcome_color(f->outcome));
	fputs(outcome_tag(f->outcome), t->fp);
	term_color(t, C_RESET);
	fputc(' ', t->fp);
	term_put_str(t, f->id);
	fputs(" - ", t->fp);
	if (f->where != NULL) {
		term_put_str(t, f->where);
		fputs(": ", t->fp);
	}
	if (f->what != NULL)
		term_put_str(t, f->what);
	else if (f->message != NULL)
		term_put_text(t, f->message, strcspn(f->message, "\n"));
	fputc('\n', t->fp);
}

static void
term_put_failures(struct term *t)
{
	size_t i;

	if (t->nfail == 0)
		return;
	if (t->opt.verbosity < 0) {
		for (i = 0; i < t->nfail; i++)
			term_put_failure_short(t, &t->fail[i]);
	} else {
		fputc('\n', t->fp);
		term_heading(t, "FAILURES (%zu)", t->nfail + t->fail_dropped);
		for (i = 0; i < t->nfail; i++) {
			if (i > 0)
				fputc('\n', t->fp);
			term_put_failure(t, &t->fail[i]);
		}
	}
	if (t->fail_dropped > 0)
		fprintf(t->fp, "... and %zu more failures, not kept (the "
		    "first %d are above)\n", t->fail_dropped,
		    TERM_MAX_FAILURES);
}

static void
term_put_flaky(struct term *t)
{
	size_t i;

	if (t->nflaky == 0 || t->opt.verbosity < 0)
		return;
	fputc('\n', t->fp);
	term_heading(t, "FLAKY (%zu): failed, then passed on a rerun",
	    t->nflaky + t->flaky_dropped);
	for (i = 0; i < t->nflaky; i++) {
		term_color(t, C_YELLOW);
		fputs("FLAKY", t->fp);
		term_color(t, C_RESET);
		fputc(' ', t->fp);
		term_put_str(t, t->flaky[i]);
		fputc('\n', t->fp);
	}
	if (t->flaky_dropped > 0)
		fprintf(t->fp, "... and %zu more\n", t->flaky_dropped);
}

static int
term_slow_cmp(const void *a, const void *b)
{
	const struct term_slow *x = a, *y = b;

	if (x->duration != y->duration)
		return x->duration < y->duration ? 1 : -1;
	return strcmp(x->id, y->id);
}

static void
term_put_durations(struct term *t)
{
	char dur[32];
	size_t i, cols;

	if (t->opt.durations <= 0)
		return;
	qsort(t->slow, t->nslow, sizeof *t->slow, term_slow_cmp);
	fputc('\n', t->fp);
	term_heading(t, "slowest %zu %s", t->nslow,
	    t->nslow == 1 ? "test" : "tests");
	for (i = 0; i < t->nslow; i++) {
		term_fmt_duration(dur, sizeof dur, t->slow[i].duration);
		for (cols = term_columns(dur, strlen(dur)); cols < 10; cols++)
			fputc(' ', t->fp);
		fprintf(t->fp, "%s  ", dur);
		term_put_str(t, t->slow[i].id);
		fputs(" (", t->fp);
		term_put_str(t, t->slow[i].worker);
		fputs(")\n", t->fp);
	}
}

static void
term_put_closing(struct term *t, const struct run_summary *s)
{
	char line[512];
	const char *color;
	size_t failures = 0;
	int o;

	for (o = 0; o < OUT__COUNT; o++)
		if (outcome_is_failure(o))
			failures += s->counts.n[o];
	if (s->stop_reason != NULL) {
		term_color(t, C_YELLOW);
		term_put_str(t, s->stop_reason);
		term_color(t, C_RESET);
		fputc('\n', t->fp);
	} else if (s->interrupted) {
		term_color(t, C_YELLOW);
		fputs("interrupted\n", t->fp);
		term_color(t, C_RESET);
	}
	counts_line(&s->counts, s->elapsed, line, sizeof line);
	if (failures > 0 || s->exit_code == EXIT_TESTS_FAILED)
		color = C_BOLD_RED;
	else if (s->exit_code == EXIT_ALL_PASSED && !s->interrupted &&
	    s->counts.n[OUT_NOT_RUN] == 0 && counts_total(&s->counts) > 0)
		color = C_BOLD_GREEN;
	else
		color = C_BOLD_YELLOW;
	term_color(t, color);
	fprintf(t->fp, "distmgr: %s", line);
	term_color(t, C_RESET);
	fputc('\n', t->fp);
}

/* ---- the vtable -------------------------------------------------------- */

static void	term_forget(struct term *);

/* The blank line between one run's end and what comes next. */
static void
term_after_end(struct term *t)
{
	if (t->ended && t->opt.verbosity >= 0)
		fputc('\n', t->fp);
	t->ended = 0;
}

static void
term_run_start(struct reporter *r, const struct run_info *ri)
{
	struct term *t = r->priv;
	const char *base;
	size_t i;
	struct timeval tv;
	double tick = t->tty ? TERM_TICK_TTY : TERM_TICK_PLAIN;

	term_forget(t);
	t->total = ri->ntests;
	t->start = t->last_plain = clock_mono();
	t->running_now = 1;
	if (t->timer != NULL) {
		tv.tv_sec = (time_t)tick;
		tv.tv_usec = (suseconds_t)((tick - (double)tv.tv_sec) * 1e6);
		evtimer_add(t->timer, &tv);
	}
	if (t->opt.verbosity < 0)
		return;
	term_status_clear(t);
	term_after_end(t);
	term_color(t, C_BOLD);
	fprintf(t->fp, "distmgr %s: %zu %s", DM_VERSION, ri->ntests,
	    ri->ntests == 1 ? "test" : "tests");
	if (ri->nsuites > 3)
		fprintf(t->fp, " from %zu suites", ri->nsuites);
	for (i = 0; i < ri->nsuites && ri->nsuites <= 3; i++) {
		base = strrchr(ri->suites[i], '/');
		fputs(i > 0 ? ", " : " from ", t->fp);
		term_put_str(t, base ? base + 1 : ri->suites[i]);
	}
	fprintf(t->fp, ", %d %s, --dist %s", ri->nworkers,
	    ri->nworkers == 1 ? "worker" : "workers",
	    ri->dist ? ri->dist : "load");
	if (!ri->boxed)
		fputs(", in-process (--no-fork)", t->fp);
	if (ri->seed >= 0)
		fprintf(t->fp, ", --random-order=%lld", ri->seed);
	term_color(t, C_RESET);
	fputc('\n', t->fp);
	term_status_restore(t);
}

/* "[w3] popen -- linux x86_64, 2 cpus, pid 1234, distworker 0.1.0" */
static void
term_worker_up(struct reporter *r, const struct worker_info *wi)
{
	struct term *t = r->priv;
	const char *sep = " -- ";

	if (t->opt.verbosity < 1)
		return;
	term_status_clear(t);
	fputc('[', t->fp);
	term_put_str(t, wi->id);
	fputs("] ", t->fp);
	term_put_str(t, wi->spec ? wi->spec : "?");
	if (wi->os != NULL || wi->arch != NULL) {
		fputs(sep, t->fp);
		term_put_str(t, wi->os);
		fputs(wi->os && wi->arch ? " " : "", t->fp);
		term_put_str(t, wi->arch);
		sep = ", ";
	}
	if (wi->cpus > 0) {
		fprintf(t->fp, "%s%d %s", sep, wi->cpus,
		    wi->cpus == 1 ? "cpu" : "cpus");
		sep = ", ";
	}
	if (wi->pid > 0) {
		fprintf(t->fp, "%spid %ld", sep, wi->pid);
		sep = ", ";
	}
	if (wi->version != NULL) {
		fprintf(t->fp, "%sdistworker ", sep);
		term_put_str(t, wi->version);
	}
	fputc('\n', t->fp);
	term_status_restore(t);
}

static void
term_worker_down(struct reporter *r, const struct worker_info *wi,
    const char *why)
{
	struct term *t = r->priv;

	if (t->opt.verbosity < 1 || why == NULL)
		return;
	term_status_clear(t);
	fputc('[', t->fp);
	term_put_str(t, wi->id);
	fputs("] down: ", t->fp);
	term_put_str(t, why);
	fputc('\n', t->fp);
	term_status_restore(t);
}

/*
 * A test with its result runs no more: the status line must not show it
 * until the next progress says what runs now (0.2 s later; or never,
 * after the last result). After the last one nothing runs at all.
 */
static void
term_not_running(struct term *t, const struct test_report *tr)
{
	size_t i;
	int all = t->total > 0 && t->done >= t->total;

	for (i = 0; i < t->nworkers; i++) {
		if (t->running[i] == NULL)
			continue;
		if (!all && (tr->id == NULL || strcmp(t->running[i],
		    tr->id) != 0 || (tr->worker != NULL &&
		    t->workers[i] != NULL && strcmp(t->workers[i],
		    tr->worker) != 0)))
			continue;
		free(t->running[i]);
		t->running[i] = NULL;
	}
}

static void
term_test_result(struct reporter *r, const struct test_report *tr)
{
	struct term *t = r->priv;
	enum outcome o = tr->outcome;

	t->done++;
	if (o > OUT_NONE && o < OUT__COUNT)
		t->counts.n[o]++;
	if (outcome_is_failure(o))
		term_keep_failure(t, tr);
	term_not_running(t, tr);
	if (o == OUT_FLAKY)
		term_keep_flaky(t, tr);
	if (t->opt.durations > 0 && tr->duration >= 0)
		term_keep_slow(t, tr);
	if (term_wants_line(t, o)) {
		term_test_line(t, tr);
		term_status_restore(t);
	} else
		term_untimed_tick(t);
}

static void
term_copy_running(struct term *t, const struct progress *p)
{
	size_t i;

	if (p->nworkers != t->nworkers) {
		for (i = 0; i < t->nworkers; i++) {
			free(t->running[i]);
			free(t->workers[i]);
		}
		t->nworkers = p->nworkers;
		t->running = xreallocarray(t->running, t->nworkers + 1,
		    sizeof *t->running);
		t->workers = xreallocarray(t->workers, t->nworkers + 1,
		    sizeof *t->workers);
		memset(t->running, 0, (t->nworkers + 1) * sizeof *t->running);
		memset(t->workers, 0, (t->nworkers + 1) * sizeof *t->workers);
	}
	for (i = 0; i < t->nworkers; i++) {
		const char *run = p->running ? p->running[i] : NULL;
		const char *w = p->workers ? p->workers[i] : NULL;

		if (run == NULL || t->running[i] == NULL ||
		    strcmp(run, t->running[i]) != 0) {
			free(t->running[i]);
			t->running[i] = run ? xstrdup(run) : NULL;
		}
		if (w == NULL || t->workers[i] == NULL ||
		    strcmp(w, t->workers[i]) != 0) {
			free(t->workers[i]);
			t->workers[i] = w ? xstrdup(w) : NULL;
		}
	}
}

static void
term_progress(struct reporter *r, const struct progress *p)
{
	struct term *t = r->priv;

	if (p->total > 0)
		t->total = p->total;
	t->eta = p->eta;
	if (t->tty)
		term_copy_running(t, p);
	term_untimed_tick(t);
}

static void
term_notice(struct reporter *r, int level, const char *text)
{
	struct term *t = r->priv;
	int shown = t->opt.verbosity < 0 ? LOG_LVL_WARN :
	    t->opt.verbosity < 2 ? LOG_LVL_INFO : LOG_LVL_DEBUG;

	if (level > shown)
		return;
	term_status_clear(t);
	term_after_end(t);
	if (level <= LOG_LVL_ERROR) {
		term_color(t, C_BOLD_RED);
		fputs("error: ", t->fp);
	} else if (level == LOG_LVL_WARN) {
		term_color(t, C_YELLOW);
		fputs("warning: ", t->fp);
	} else if (level >= LOG_LVL_DEBUG)
		fputs("debug: ", t->fp);
	term_put_str(t, text);
	term_color(t, C_RESET);
	fputc('\n', t->fp);
	term_status_restore(t);
	/* Between runs no timer flushes: what is said then is said now. */
	if (t->timer == NULL || level <= LOG_LVL_WARN || !t->running_now)
		fflush(t->fp);
}

static void
term_run_end(struct reporter *r, const struct run_summary *s)
{
	struct term *t = r->priv;

	t->running_now = 0;
	if (t->timer != NULL)
		evtimer_del(t->timer);
	term_status_clear(t);
	term_put_failures(t);
	term_put_flaky(t);
	term_put_durations(t);
	if (t->opt.verbosity >= 0)
		fputc('\n', t->fp);
	term_put_closing(t, s);
	fflush(t->fp);
	t->ended = 1;
}

/* Drops what one run kept for its end: --looponfail runs again with the
 * same reporter. */
static void
term_forget(struct term *t)
{
	size_t i;

	for (i = 0; i < t->nfail; i++) {
		free(t->fail[i].id);
		free(t->fail[i].worker);
		free(t->fail[i].where);
		free(t->fail[i].what);
		free(t->fail[i].message);
		free(t->fail[i].out.text);
		free(t->fail[i].err.text);
	}
	free(t->fail);
	for (i = 0; i < t->nflaky; i++)
		free(t->flaky[i]);
	free(t->flaky);
	for (i = 0; i < t->nslow; i++) {
		free(t->slow[i].id);
		free(t->slow[i].worker);
	}
	t->fail = NULL;
	t->flaky = NULL;
	t->nfail = t->fail_size = t->fail_dropped = t->output_kept = 0;
	t->nflaky = t->flaky_dropped = t->nslow = 0;
	t->done = 0;
	memset(&t->counts, 0, sizeof t->counts);
	t->eta = -1;
}

static void
term_free(struct reporter *r)
{
	struct term *t = r->priv;
	size_t i;

	if (t->timer != NULL)
		event_free(t->timer);
	term_forget(t);
	free(t->slow);
	for (i = 0; i < t->nworkers; i++) {
		free(t->running[i]);
		free(t->workers[i]);
	}
	free(t->running);
	free(t->workers);
	if (t->sink != NULL) {
		fclose(t->fp);		/* into the sink */
		sink_flush(t->sink, TERM_END_STALL);
		sink_close(t->sink);
	} else
		fflush(t->fp);
	free(t);
	free(r);
}

static const struct reporter_ops term_ops = {
	.name = "terminal",
	.run_start = term_run_start,
	.worker_up = term_worker_up,
	.worker_down = term_worker_down,
	.test_result = term_test_result,
	.progress = term_progress,
	.notice = term_notice,
	.run_end = term_run_end,
	.free = term_free,
};

/* A terminal that can take escape codes: not TERM=dumb. */
static int
term_is_terminal(FILE *fp)
{
	const char *term = getenv("TERM");
	int fd = fileno(fp);

	return fd >= 0 && isatty(fd) && (term == NULL ||
	    strcmp(term, "dumb") != 0);
}

static ssize_t
term_cookie_write(void *cookie, const char *buf, size_t size)
{
	struct term *t = cookie;

	/* What the sink cannot keep is dropped and counted there: stdio
	 * must never see a short write and retry. */
	(void)sink_write(t->sink, buf, size);
	return (ssize_t)size;
}

/* Text goes to out's descriptor through a sink, from a stdio stream of
 * our own; when that cannot be set up, straight to out as before. */
static void
term_open_sink(struct term *t, struct event_base *base)
{
	static const cookie_io_functions_t io = { .write = term_cookie_write };
	int fd = fileno(t->out);
	char why[256];
	FILE *fp;

	fflush(t->out);			/* what came before goes first */
	t->sink = sink_open_dup(base, fd, "terminal", fd == STDOUT_FILENO ?
	    "stdout" : "its output", why, sizeof why);
	if (t->sink == NULL)
		return;
	if ((fp = fopencookie(t, "w", io)) == NULL) {
		sink_close(t->sink);
		t->sink = NULL;
		return;
	}
	/* A terminal (a dumb one too) shows each line as it comes, as
	 * stdio's stdout would. */
	setvbuf(fp, NULL, isatty(fd) ? _IOLBF : _IOFBF, TERM_BUFFER);
	t->fp = fp;
}

struct reporter *
reporter_terminal_new(struct event_base *base, FILE *fp,
    const struct terminal_options *opt)
{
	struct reporter *r = xcalloc(1, sizeof *r);
	struct term *t = xcalloc(1, sizeof *t);
	int terminal = term_is_terminal(fp);
	struct winsize ws;

	t->fp = t->out = fp;
	t->opt = *opt;
	t->tty = terminal && opt->verbosity >= 0;
	/* NO_COLOR (any value, https://no-color.org) turns colour off;
	 * --color=always is the user asking, and wins. */
	if (opt->color == COLOR_ALWAYS)
		t->color = 1;
	else if (opt->color == COLOR_AUTO)
		t->color = terminal && getenv("NO_COLOR") == NULL;
	t->width = 80;
	if (terminal && ioctl(fileno(fp), TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col > 0)
		t->width = ws.ws_col;
	t->eta = -1;
	if (opt->durations > 0)
		t->slow = xcalloc((size_t)opt->durations, sizeof *t->slow);
	if (base != NULL)
		t->timer = event_new(base, -1, EV_PERSIST, term_tick, t);
	if (base != NULL && fileno(fp) >= 0)
		term_open_sink(t, base);
	r->ops = &term_ops;
	r->priv = t;
	return r;
}

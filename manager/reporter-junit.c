/*
 * reporter-junit.c - --junit-xml FILE: the run as JUnit XML, the format
 * Jenkins, GitLab and most CI servers read (tests/junit.xsd says which
 * subset we write).
 *
 * One <testsuite> per suite file (.so), one <testcase> per test with the
 * test's suite as classname; the worker and host that ran it are
 * testcase properties. Test cases are streamed to an unlinked temporary
 * file per suite as results arrive, so memory does not grow with the run;
 * the report is assembled when the run ends, because the totals come
 * first in the file.
 *
 * It must never leave FILE half-written: the report goes to a temporary
 * file in FILE's directory, is fsync'd, and is renamed over FILE; a crash
 * of distmgr leaves the old report or the complete new one. It must
 * never emit bytes XML forbids (every text goes through xml_escape) nor
 * unbounded text (messages and output are clipped per test).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"

#define JUNIT_MESSAGE_MAX	1024		/* bytes of a message attribute */
#define JUNIT_DETAIL_MAX	(64u * 1024)	/* bytes of a failure's text */
#define JUNIT_OUTPUT_MAX	(256u * 1024)	/* bytes per stream per test */
#define JUNIT_SUITES_MAX	1024		/* then they share the last */

struct junit_suite {
	char		*name;		/* the suite file's path */
	FILE		*body;		/* its <testcase>s, unlinked */
	size_t		 n[OUT__COUNT];
	double		 time;		/* sum of its tests' durations */
};

struct junit {
	char		*path;
	char		*dir;
	char		*base;
	struct junit_suite *suites;
	size_t		 nsuites;
	int		 broken;	/* a temporary file failed: keep FILE */
	/* What <properties> and the totals need from run_start. */
	char		*run_id;
	char		*dist;
	int		 boxed;
	long long	 seed;
	int		 nworkers;
	double		 start_wall;
};

/* A temporary file next to the report, so that rename() stays on one
 * filesystem. Unlinked at once when it only holds a part. */
static FILE *
junit_tmpfile(struct junit *j, const char *tag, int keep, char **name)
{
	char *tmpl;
	FILE *fp;
	int fd;

	xasprintf(&tmpl, "%s/.%s.%s.XXXXXX", j->dir, j->base, tag);
	if ((fd = mkstemp(tmpl)) == -1) {
		log_warn("junit: cannot create a file in %s: %s", j->dir,
		    strerror(errno));
		free(tmpl);
		return NULL;
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (!keep)
		unlink(tmpl);
	if ((fp = fdopen(fd, "w+")) == NULL)
		fatal("junit: fdopen");
	if (keep)
		*name = tmpl;
	else
		free(tmpl);
	return fp;
}

static struct junit_suite *
junit_suite(struct junit *j, const char *name)
{
	struct junit_suite *s;

	if (name == NULL)
		name = "distmgr";
	for (size_t i = j->nsuites; i > 0; i--)
		if (strcmp(j->suites[i - 1].name, name) == 0)
			return &j->suites[i - 1];
	if (j->nsuites == JUNIT_SUITES_MAX)
		return &j->suites[j->nsuites - 1];
	j->suites = xreallocarray(j->suites, j->nsuites + 1,
	    sizeof *j->suites);
	s = &j->suites[j->nsuites++];
	memset(s, 0, sizeof *s);
	s->name = xstrdup(name);
	if ((s->body = junit_tmpfile(j, "part", 0, NULL)) == NULL)
		j->broken = 1;
	return s;
}

static void
junit_attr(FILE *fp, const char *name, const char *value)
{
	fprintf(fp, " %s=\"", name);
	if (value != NULL)
		xml_escape(fp, value, strlen(value), 1);
	fputc('"', fp);
}

/* An attribute from text that may be long: clipped, with the cut
 * shown. */
static void
junit_attr_clipped(FILE *fp, const char *name, const char *value)
{
	struct rpt_clip c;

	rpt_clip(value, value != NULL ? strlen(value) : 0, JUNIT_MESSAGE_MAX,
	    &c);
	fprintf(fp, " %s=\"", name);
	xml_escape(fp, c.head, c.head_len, 1);
	if (c.omitted > 0) {
		fprintf(fp, " [... %zu bytes ...] ", c.omitted);
		xml_escape(fp, c.tail, c.tail_len, 1);
	}
	fputc('"', fp);
}

static void
junit_text_clipped(FILE *fp, const char *p, size_t len, size_t max)
{
	struct rpt_clip c;

	rpt_clip(p, len, max, &c);
	xml_escape(fp, c.head, c.head_len, 0);
	if (c.omitted > 0) {
		fprintf(fp, "\n[... %zu bytes omitted ...]\n", c.omitted);
		xml_escape(fp, c.tail, c.tail_len, 0);
	}
}

static void
junit_property(FILE *fp, int indent, const char *name, const char *value)
{
	fprintf(fp, "%*s<property", indent, "");
	junit_attr(fp, "name", name);
	junit_attr(fp, "value", value);
	fputs("/>\n", fp);
}

static void
junit_testcase_properties(FILE *fp, const struct test_report *t)
{
	char num[32];

	fputs("      <properties>\n", fp);
	if (t->worker != NULL)
		junit_property(fp, 8, "worker", t->worker);
	if (t->host != NULL)
		junit_property(fp, 8, "host", t->host);
	junit_property(fp, 8, "outcome", outcome_name(t->outcome));
	if (t->attempts > 1) {
		snprintf(num, sizeof num, "%d", t->attempts);
		junit_property(fp, 8, "attempts", num);
	}
	fputs("      </properties>\n", fp);
}

/* The message a <failure>, <error> or <skipped> carries: the test's own
 * when it has one, else a sentence built from what happened. */
static const char *
junit_message(const struct test_report *t, char *buf, size_t size)
{
	const char *m = t->message;

	switch (t->outcome) {
	case OUT_CRASH:
		if (m != NULL)
			return m;
		if (t->signal_name != NULL)
			snprintf(buf, size, "crashed: %s (signal %d)",
			    t->signal_name, t->signal);
		else if (t->signal > 0)
			snprintf(buf, size, "crashed: signal %d", t->signal);
		else
			snprintf(buf, size, "exited with status %d",
			    t->exit_status);
		return buf;
	case OUT_TIMEOUT:
		if (m != NULL)
			return m;
		snprintf(buf, size, "timed out after %.3f s", t->duration);
		return buf;
	case OUT_XPASS:
		/* distmgr words this one itself ("passed, but is marked
		 * todo: bug 13"); only a bare result needs words. */
		return m != NULL ? m : "passed, but is marked todo";
	case OUT_XFAIL:
		snprintf(buf, size, "expected failure%s%s",
		    m != NULL ? ": " : "", m != NULL ? m : "");
		return buf;
	case OUT_NOT_RUN:
		snprintf(buf, size, "not run%s%s", m != NULL ? ": " : "",
		    m != NULL ? m : " (the run stopped first)");
		return buf;
	default:
		return m != NULL ? m : outcome_name(t->outcome);
	}
}

/* <failure> or <error>: the message, then where, in the text. */
static void
junit_problem(FILE *fp, const char *elem, const char *type,
    const struct test_report *t, const char *msg)
{
	const char *file = t->fail_file != NULL ? t->fail_file : t->file;
	int line = t->fail_file != NULL ? t->fail_line : t->line;

	fprintf(fp, "      <%s", elem);
	junit_attr_clipped(fp, "message", msg);
	junit_attr(fp, "type", type);
	fputc('>', fp);
	if (file != NULL) {
		xml_escape(fp, file, strlen(file), 0);
		fprintf(fp, ":%d: ", line);
	}
	junit_text_clipped(fp, msg, strlen(msg), JUNIT_DETAIL_MAX);
	if (t->exit_status >= 0 && t->outcome == OUT_CRASH)
		fprintf(fp, "\nexit status %d", t->exit_status);
	fprintf(fp, "</%s>\n", elem);
}

static void
junit_verdict(FILE *fp, const struct test_report *t)
{
	char buf[JUNIT_MESSAGE_MAX + 64];
	const char *msg = junit_message(t, buf, sizeof buf);

	switch (t->outcome) {
	case OUT_FAIL:
	case OUT_XPASS:
		junit_problem(fp, "failure", outcome_name(t->outcome), t, msg);
		break;
	case OUT_ERROR:
	case OUT_CRASH:
	case OUT_TIMEOUT:
		junit_problem(fp, "error", outcome_name(t->outcome), t, msg);
		break;
	case OUT_SKIP:
	case OUT_XFAIL:
	case OUT_NOT_RUN:
		fputs("      <skipped", fp);
		junit_attr_clipped(fp, "message", msg);
		fputs("/>\n", fp);
		break;
	default:
		break;
	}
}

static void
junit_output(FILE *fp, const char *elem, const char *p, size_t len)
{
	if (p == NULL || len == 0)
		return;
	fprintf(fp, "      <%s>", elem);
	junit_text_clipped(fp, p, len, JUNIT_OUTPUT_MAX);
	fprintf(fp, "</%s>\n", elem);
}

static void
junit_test_result(struct reporter *r, const struct test_report *t)
{
	struct junit *j = r->priv;
	struct junit_suite *s = junit_suite(j, t->suite_path);
	char suite[256];
	const char *name = rpt_split_id(t->id, suite, sizeof suite);
	FILE *fp = s->body;

	if (t->outcome > OUT_NONE && t->outcome < OUT__COUNT)
		s->n[t->outcome]++;
	s->time += t->duration > 0 ? t->duration : 0;
	if (fp == NULL)
		return;
	fputs("    <testcase", fp);
	junit_attr(fp, "classname", suite[0] != '\0' ? suite : name);
	junit_attr(fp, "name", name);
	fprintf(fp, " time=\"%.3f\"", t->duration > 0 ? t->duration : 0.0);
	if (t->file != NULL) {
		junit_attr(fp, "file", t->file);
		fprintf(fp, " line=\"%d\"", t->line > 0 ? t->line : 0);
	}
	fputs(">\n", fp);
	junit_testcase_properties(fp, t);
	junit_verdict(fp, t);
	junit_output(fp, "system-out", t->out, t->out_len);
	junit_output(fp, "system-err", t->err, t->err_len);
	fputs("    </testcase>\n", fp);
}

/* Another run (--looponfail): the report is of that run alone. */
static void
junit_forget(struct junit *j)
{
	for (size_t i = 0; i < j->nsuites; i++) {
		if (j->suites[i].body != NULL)
			fclose(j->suites[i].body);
		free(j->suites[i].name);
	}
	j->nsuites = 0;
	j->broken = 0;
}

static void
junit_run_start(struct reporter *r, const struct run_info *ri)
{
	struct junit *j = r->priv;

	junit_forget(j);
	free(j->run_id);
	free(j->dist);
	j->run_id = ri->run_id != NULL ? xstrdup(ri->run_id) : NULL;
	j->dist = ri->dist != NULL ? xstrdup(ri->dist) : NULL;
	j->boxed = ri->boxed;
	j->seed = ri->seed;
	j->nworkers = ri->nworkers;
	j->start_wall = ri->start_wall;
	/* The order the user named the suites in, not the order in which
	 * their first results happened to arrive. */
	for (size_t i = 0; i < ri->nsuites; i++)
		junit_suite(j, ri->suites[i]);
}

/* failures, errors, skipped as JUnit counts them. */
static void
junit_tally(const size_t *n, size_t *tests, size_t *fail, size_t *err,
    size_t *skip)
{
	*tests = *fail = *err = *skip = 0;
	for (int o = OUT_NONE + 1; o < OUT__COUNT; o++)
		*tests += n[o];
	*fail = n[OUT_FAIL] + n[OUT_XPASS];
	*err = n[OUT_ERROR] + n[OUT_CRASH] + n[OUT_TIMEOUT];
	*skip = n[OUT_SKIP] + n[OUT_XFAIL] + n[OUT_NOT_RUN];
}

static void
junit_counts_attrs(FILE *fp, const size_t *n)
{
	size_t tests, fail, err, skip;

	junit_tally(n, &tests, &fail, &err, &skip);
	fprintf(fp, " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
	    "skipped=\"%zu\"", tests, fail, err, skip);
}

static void
junit_timestamp(double wall, char *buf, size_t size)
{
	time_t t = (time_t)wall;
	struct tm tm;

	/* Local time without a zone: the form the JUnit schema allows. */
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		snprintf(buf, size, "1970-01-01T00:00:00");
}

static void
junit_suite_properties(FILE *fp, const struct junit *j,
    const struct run_summary *sum)
{
	char num[32];

	fputs("    <properties>\n", fp);
	if (j->run_id != NULL)
		junit_property(fp, 6, "run_id", j->run_id);
	if (j->dist != NULL)
		junit_property(fp, 6, "dist", j->dist);
	junit_property(fp, 6, "boxed", j->boxed ? "true" : "false");
	snprintf(num, sizeof num, "%d", j->nworkers);
	junit_property(fp, 6, "workers", num);
	if (j->seed >= 0) {
		snprintf(num, sizeof num, "%lld", j->seed);
		junit_property(fp, 6, "random_seed", num);
	}
	junit_property(fp, 6, "distmgr_version", DM_VERSION);
	if (sum->interrupted)
		junit_property(fp, 6, "interrupted", "true");
	if (sum->stop_reason != NULL)
		junit_property(fp, 6, "stop_reason", sum->stop_reason);
	fputs("    </properties>\n", fp);
}

static int
junit_copy(FILE *to, FILE *from)
{
	char buf[65536];
	size_t n;

	if (fflush(from) != 0 || ferror(from) || fseek(from, 0, SEEK_SET) != 0)
		return -1;
	while ((n = fread(buf, 1, sizeof buf, from)) > 0)
		if (fwrite(buf, 1, n, to) != n)
			return -1;
	return ferror(from) ? -1 : 0;
}

static int
junit_write(struct junit *j, FILE *fp, const struct run_summary *sum)
{
	size_t total[OUT__COUNT] = { 0 };
	char stamp[32], host[256];

	junit_timestamp(j->start_wall > 0 ? j->start_wall : clock_wall(),
	    stamp, sizeof stamp);
	if (gethostname(host, sizeof host) == -1)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	for (size_t i = 0; i < j->nsuites; i++)
		for (int o = 0; o < OUT__COUNT; o++)
			total[o] += j->suites[i].n[o];
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", fp);
	fputs("<testsuites name=\"distmgr\"", fp);
	junit_counts_attrs(fp, total);
	fprintf(fp, " time=\"%.3f\" timestamp=\"%s\">\n",
	    sum->elapsed > 0 ? sum->elapsed : 0.0, stamp);
	for (size_t i = 0; i < j->nsuites; i++) {
		struct junit_suite *s = &j->suites[i];

		fputs("  <testsuite", fp);
		junit_attr(fp, "name", s->name);
		junit_counts_attrs(fp, s->n);
		fprintf(fp, " time=\"%.3f\" timestamp=\"%s\"", s->time, stamp);
		junit_attr(fp, "hostname", host);
		fprintf(fp, " id=\"%zu\">\n", i);
		junit_suite_properties(fp, j, sum);
		if (junit_copy(fp, s->body) == -1)
			return -1;
		fputs("  </testsuite>\n", fp);
	}
	fputs("</testsuites>\n", fp);
	return ferror(fp) ? -1 : 0;
}

/* The rename is durable only once the directory is synced too. */
static void
junit_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd != -1) {
		(void)fsync(fd);
		close(fd);
	}
}

static void
junit_run_end(struct reporter *r, const struct run_summary *sum)
{
	struct junit *j = r->priv;
	char *tmp = NULL;
	FILE *fp;
	mode_t mask;
	int ok;

	if (j->broken) {
		log_warn("junit: %s was not written (see above)", j->path);
		return;
	}
	if ((fp = junit_tmpfile(j, "tmp", 1, &tmp)) == NULL)
		return;
	mask = umask(0);
	umask(mask);
	(void)fchmod(fileno(fp), 0666 & ~mask);
	ok = junit_write(j, fp, sum) == 0 && fflush(fp) == 0 &&
	    fsync(fileno(fp)) == 0;
	if (fclose(fp) != 0)
		ok = 0;
	if (ok && rename(tmp, j->path) == 0)
		junit_sync_dir(j->dir);
	else {
		log_warn("junit: cannot write %s: %s", j->path,
		    strerror(errno));
		unlink(tmp);
	}
	free(tmp);
}

static void
junit_free(struct reporter *r)
{
	struct junit *j = r->priv;

	junit_forget(j);
	free(j->suites);
	free(j->run_id);
	free(j->dist);
	free(j->path);
	free(j->dir);
	free(j->base);
	free(j);
	free(r);
}

static const struct reporter_ops junit_ops = {
	.name = "junit",
	.run_start = junit_run_start,
	.test_result = junit_test_result,
	.run_end = junit_run_end,
	.free = junit_free,
};

struct reporter *
reporter_junit_new(const char *path, char *why, size_t whylen)
{
	struct junit *j;
	struct reporter *r;
	char *d, *b;
	struct stat st;

	if (path == NULL || *path == '\0') {
		snprintf(why, whylen, "junit: no file name given");
		return NULL;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "junit: %s is a directory", path);
		return NULL;
	}
	d = xstrdup(path);
	b = xstrdup(path);
	j = xcalloc(1, sizeof *j);
	j->path = xstrdup(path);
	j->dir = xstrdup(dirname(d));
	j->base = xstrdup(basename(b));
	j->seed = -1;
	free(d);
	free(b);
	/* Find out now, not after an hour-long run, that the report
	 * cannot be written there. */
	if (access(j->dir, W_OK | X_OK) == -1) {
		snprintf(why, whylen, "junit: cannot write in %s: %s", j->dir,
		    strerror(errno));
		r = xcalloc(1, sizeof *r);
		r->priv = j;
		junit_free(r);
		return NULL;
	}
	r = xcalloc(1, sizeof *r);
	r->ops = &junit_ops;
	r->priv = j;
	return r;
}

/*
 * test_worker.c - distworker --stdio driven as a manager drives it: the
 * real binary on a socketpair (or two pipes), spoken to through the
 * protocol layer, asked hello, load, run, cancel, ping and shutdown.
 * Every test asserts what a user would see: the outcome, the message
 * word for word, the file and the line, the output, the counts.
 *
 * Lines in the suites are found by markers ("@name" comments), so that
 * editing a suite does not silently break a line number here.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "testutil.h"

#define ASK_SECONDS	60.0

/* ---- a worker, and what it told us ---------------------------------------- */

struct worker {
	struct event_base	*base;
	struct amp_conn		*conn;
	pid_t			 pid;
	int			 closed;
	char			 close_reason[256];
	json_t			*list;		/* entries of suite_tests */
	json_t			*pieces;	/* [first, size] per piece */
	json_t			*results;	/* "suite:test" -> result box */
	json_t			*outputs;	/* "suite:test:stream" -> text */
	json_t			*events;	/* "started 0:3", ... in order */
	size_t			 list_at_answer;
};

struct reply {
	int	 done;
	json_t	*answer;	/* NULL on error */
	char	 code[64];
	char	 text[2048];
	size_t	 list_size;	/* the list received when the reply came */
};

static const char *
build_dir(void)
{
	const char *b = getenv("DM_BUILD");

	ck_assert_msg(b != NULL, "DM_BUILD unset: run through make check");
	return b;
}

static char *
suite_path_of(const char *name)
{
	char *p;

	xasprintf(&p, "%s/suites/%s.so", build_dir(), name);
	return p;
}

static struct worker *
w_of(struct amp_request *req)
{
	return amp_conn_ctx(amp_request_conn(req));
}

static void
w_event(struct worker *w, const char *what, json_t *box)
{
	char buf[128];

	snprintf(buf, sizeof buf, "%s %lld:%lld", what,
	    json_get_int(box, "suite", -1), json_get_int(box, "test", -1));
	json_array_append_new(w->events, json_string(buf));
}

static int
h_suite_tests(struct amp_request *req, json_t *box)
{
	struct worker *w = w_of(req);
	json_t *tests = json_object_get(box, "tests");

	json_array_extend(w->list, tests);
	json_array_append_new(w->pieces, json_pack("[I, I]",
	    (json_int_t)json_get_int(box, "first", -1),
	    (json_int_t)json_array_size(tests)));
	json_array_append_new(w->events, json_string("list"));
	return 0;
}

static int
h_test_started(struct amp_request *req, json_t *box)
{
	w_event(w_of(req), "started", box);
	return 0;
}

static int
h_test_output(struct amp_request *req, json_t *box)
{
	struct worker *w = w_of(req);
	char key[128], *text;
	const char *stream = json_get_str(box, "stream", "?");
	json_t *prev;

	snprintf(key, sizeof key, "%lld:%lld:%s", json_get_int(box, "suite", -1),
	    json_get_int(box, "test", -1), stream);
	prev = json_object_get(w->outputs, key);
	xasprintf(&text, "%s%s", prev != NULL ? json_string_value(prev) : "",
	    json_get_str(box, "data", ""));
	json_object_set_new(w->outputs, key, json_string(text));
	free(text);
	w_event(w, json_is_true(json_object_get(box, "last")) ?
	    "output-last" : "output", box);
	return 0;
}

static int
h_test_result(struct amp_request *req, json_t *box)
{
	struct worker *w = w_of(req);
	char key[64];

	snprintf(key, sizeof key, "%lld:%lld", json_get_int(box, "suite", -1),
	    json_get_int(box, "test", -1));
	json_object_set(w->results, key, box);
	w_event(w, "result", box);
	return 0;
}

/* The synchronisation asks, answered as a manager might: the lock's
 * previous holder died, the board holds "v-KEY", the trail's start is
 * true, the lock is not held. Each is an event naming its test. */
static int
h_sync(struct amp_request *req, json_t *box)
{
	struct worker *w = w_of(req);
	const char *cmd = amp_request_command(req);
	char buf[160];

	snprintf(buf, sizeof buf, "ask %s %lld:%lld", cmd,
	    json_get_int(box, "suite", -9), json_get_int(box, "test", -9));
	json_array_append_new(w->events, json_string(buf));
	if (strcmp(cmd, "lock") == 0)
		amp_answer(req, json_pack("{s:b}", "previous_died", 1));
	else if (strcmp(cmd, "board_get") == 0) {
		snprintf(buf, sizeof buf, "v-%s", json_get_str(box, "key", ""));
		amp_answer(req, json_pack("{s:s}", "value", buf));
	} else if (strcmp(cmd, "trail") == 0)
		amp_answer(req, json_pack("{s:b}", "result", 1));
	else if (strcmp(cmd, "unlock") == 0)
		amp_fail(req, "NOT_HELD", "not held");
	else
		amp_answer(req, NULL);
	return 0;
}

static const struct amp_command client_table[] = {
	{ "lock", h_sync, NULL },
	{ "unlock", h_sync, NULL },
	{ "board_get", h_sync, NULL },
	{ "board_set", h_sync, NULL },
	{ "trail", h_sync, NULL },
	{ "suite_tests", h_suite_tests, NULL },
	{ "test_started", h_test_started, NULL },
	{ "test_output", h_test_output, NULL },
	{ "test_result", h_test_result, NULL },
	{ NULL, NULL, NULL }
};

static void
on_close(struct amp_conn *c, const char *reason, void *ctx)
{
	struct worker *w = ctx;

	(void)c;
	w->closed = 1;
	w->conn = NULL;
	snprintf(w->close_reason, sizeof w->close_reason, "%s", reason);
}

static const struct amp_conn_cbs client_cbs = { on_close, NULL };

/* DISTWORKER_BOX for the next worker started: NULL leaves it unset (the
 * box helper next to distworker), "none" has it fork tests itself. */
static const char *worker_box;

/* Starts the worker on a socketpair, or on two pipes with split. */
static struct worker *
w_start(int split)
{
	struct worker *w = xcalloc(1, sizeof *w);
	char *bin;
	int sv[2], to[2], from[2];
	struct bufferevent *in, *out;

	signal(SIGPIPE, SIG_IGN);
	xasprintf(&bin, "%s/bin/distworker", build_dir());
	if (split) {
		ck_assert_int_eq(pipe2(to, O_CLOEXEC), 0);
		ck_assert_int_eq(pipe2(from, O_CLOEXEC), 0);
	} else
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
		    0, sv), 0);
	if ((w->pid = fork()) == 0) {
		dup2(split ? to[0] : sv[1], 0);
		dup2(split ? from[1] : sv[1], 1);
		if (worker_box != NULL)
			setenv("DISTWORKER_BOX", worker_box, 1);
		else
			unsetenv("DISTWORKER_BOX");
		execl(bin, "distworker", "--stdio", (char *)NULL);
		_exit(127);
	}
	free(bin);
	w->base = event_base_new();
	if (split) {
		close(to[0]);
		close(from[1]);
		evutil_make_socket_nonblocking(from[0]);
		evutil_make_socket_nonblocking(to[1]);
		in = bufferevent_socket_new(w->base, from[0],
		    BEV_OPT_CLOSE_ON_FREE);
		out = bufferevent_socket_new(w->base, to[1],
		    BEV_OPT_CLOSE_ON_FREE);
		w->conn = amp_conn_new_split(in, out, client_table,
		    &client_cbs, w);
	} else {
		close(sv[1]);
		evutil_make_socket_nonblocking(sv[0]);
		in = bufferevent_socket_new(w->base, sv[0],
		    BEV_OPT_CLOSE_ON_FREE);
		w->conn = amp_conn_new(in, client_table, &client_cbs, w);
	}
	w->list = json_array();
	w->pieces = json_array();
	w->results = json_object();
	w->outputs = json_object();
	w->events = json_array();
	return w;
}

static void
on_reply(struct amp_conn *c, json_t *answer, const struct amp_error *err,
    void *arg)
{
	struct reply *r = arg;
	struct worker *w = amp_conn_ctx(c);

	r->done = 1;
	r->list_size = json_array_size(w->list);
	if (err != NULL) {
		snprintf(r->code, sizeof r->code, "%s", err->code);
		snprintf(r->text, sizeof r->text, "%s", err->description);
	} else
		r->answer = json_incref(answer);
}

static void
w_ask_start(struct worker *w, struct reply *r, const char *cmd, json_t *args)
{
	memset(r, 0, sizeof *r);
	ck_assert_msg(w->conn != NULL, "asking %s of a closed worker", cmd);
	amp_ask(w->conn, cmd, args, on_reply, r);
}

static void
w_wait(struct worker *w, struct reply *r, const char *what)
{
	tu_loop_until(w->base, &r->done, ASK_SECONDS);
	ck_assert_msg(r->done, "no reply to %s", what);
}

static void
w_ask(struct worker *w, struct reply *r, const char *cmd, json_t *args)
{
	w_ask_start(w, r, cmd, args);
	w_wait(w, r, cmd);
}

static void
reply_clear(struct reply *r)
{
	json_decref(r->answer);
	r->answer = NULL;
}

static void
assert_error(struct reply *r, const char *code, const char *text)
{
	ck_assert_msg(r->answer == NULL, "expected %s, got an answer", code);
	ck_assert_str_eq(r->code, code);
	if (text != NULL)
		ck_assert_str_eq(r->text, text);
}

static void
assert_error_has(struct reply *r, const char *code, const char *part)
{
	assert_error(r, code, NULL);
	ck_assert_msg(strstr(r->text, part) != NULL, "'%s' not in '%s'", part,
	    r->text);
}

/* hello with the usual arguments, and extra (JSON text) merged in. */
static json_t *
hello_args(const char *extra)
{
	json_t *args = json_pack("{s:i, s:s, s:s, s:s, s:i}", "protocol", 1,
	    "manager", "test_worker", "run_id", "run-42", "worker_id", "w3",
	    "worker_count", 4);
	json_t *more;

	if (extra != NULL) {
		more = json_loads(extra, 0, NULL);
		ck_assert_msg(more != NULL, "bad JSON in test: %s", extra);
		json_object_update(args, more);
		json_decref(more);
	}
	return args;
}

static json_t *
w_hello(struct worker *w, const char *extra)
{
	struct reply r;

	w_ask(w, &r, "hello", hello_args(extra));
	ck_assert_msg(r.answer != NULL, "hello failed: %s %s", r.code, r.text);
	amp_conn_set_limit(w->conn, FRAME_LIMIT_DEFAULT);
	return r.answer;
}

/* What a manager does for a local worker that died: hello's answer names
 * its temporary and session directories, both in one of the worker's
 * own. 0 when all three were there, empty, and are gone. */
static int
remove_worker_dirs(json_t *hello)
{
	const char *session = json_get_str(hello, "session", "");
	char *root = xstrdup(session), *slash = strrchr(root, '/');
	int rc = rmdir(json_get_str(hello, "tmpdir", ""));

	if (slash != NULL)
		*slash = '\0';
	if (rmdir(session) == -1 || rmdir(root) == -1)
		rc = -1;
	free(root);
	return rc;
}

/* Loads a suite of the build; returns its handle. */
static int
w_load(struct worker *w, const char *name)
{
	struct reply r;
	char *path = suite_path_of(name);
	int handle;

	json_array_clear(w->list);
	json_array_clear(w->pieces);
	w_ask(w, &r, "load", json_pack("{s:s}", "path", path));
	free(path);
	ck_assert_msg(r.answer != NULL, "load %s failed: %s %s", name, r.code,
	    r.text);
	ck_assert_int_eq(json_get_int(r.answer, "count", -1),
	    json_array_size(w->list));
	handle = (int)json_get_int(r.answer, "suite", -1);
	reply_clear(&r);
	return handle;
}

static long
w_index(struct worker *w, const char *id)
{
	size_t i;
	json_t *e;

	json_array_foreach(w->list, i, e)
		if (strcmp(json_get_str(e, "id", ""), id) == 0)
			return (long)i;
	ck_abort_msg("no test %s in the list", id);
	return -1;
}

/* Runs the tests named (NULL-terminated) of the suite last loaded. */
static json_t *
w_run_ids(struct worker *w, int handle, const char *const *ids)
{
	json_t *tests = json_array();
	struct reply r;

	for (; *ids != NULL; ids++)
		json_array_append_new(tests, json_integer(w_index(w, *ids)));
	w_ask(w, &r, "run", json_pack("{s:i, s:o}", "suite", handle, "tests",
	    tests));
	ck_assert_msg(r.answer != NULL, "run failed: %s %s", r.code, r.text);
	return r.answer;
}

static json_t *
w_run_all(struct worker *w, int handle)
{
	json_t *tests = json_array();
	struct reply r;
	size_t i;

	for (i = 0; i < json_array_size(w->list); i++)
		json_array_append_new(tests, json_integer((json_int_t)i));
	w_ask(w, &r, "run", json_pack("{s:i, s:o}", "suite", handle, "tests",
	    tests));
	ck_assert_msg(r.answer != NULL, "run failed: %s %s", r.code, r.text);
	return r.answer;
}

static json_t *
w_result(struct worker *w, int handle, const char *id)
{
	char key[64];
	json_t *res;

	snprintf(key, sizeof key, "%d:%ld", handle, w_index(w, id));
	res = json_object_get(w->results, key);
	ck_assert_msg(res != NULL, "no result for %s", id);
	return res;
}

static const char *
w_output(struct worker *w, int handle, const char *id, const char *stream)
{
	char key[128];

	snprintf(key, sizeof key, "%d:%ld:%s", handle, w_index(w, id), stream);
	return json_get_str(w->outputs, key, "");
}

/* Closes our end and waits for the worker to exit; its wait status. */
static int
w_finish(struct worker *w)
{
	double end = clock_mono() + 20;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int status = -1;
	pid_t got = 0;

	if (w->conn != NULL)
		amp_conn_close(w->conn, "test over", 0);
	tu_loop_for(w->base, 0.01);
	while (clock_mono() < end && (got = waitpid(w->pid, &status,
	    WNOHANG)) == 0)
		nanosleep(&ts, NULL);
	if (got == 0) {
		kill(w->pid, SIGKILL);
		waitpid(w->pid, &status, 0);
		ck_abort_msg("the worker did not exit when its connection "
		    "closed");
	}
	json_decref(w->list);
	json_decref(w->pieces);
	json_decref(w->results);
	json_decref(w->outputs);
	json_decref(w->events);
	event_base_free(w->base);
	free(w);
	return status;
}

static void
w_finish_ok(struct worker *w)
{
	int status = w_finish(w);

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "worker wait status %d", status);
}

/* ---- what the suites say -------------------------------------------------- */

static void
assert_json(json_t *v, const char *want)
{
	char *got = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) :
	    NULL;

	ck_assert_msg(got != NULL && strcmp(got, want) == 0, "got %s, want %s",
	    got != NULL ? got : "(nothing)", want);
	free(got);
}

/* The line of file (relative to the top) that holds the marker. */
static int
marker_line(const char *file, const char *marker)
{
	char *path, line[1024];
	FILE *f;
	int n = 0;

	xasprintf(&path, "%s/%s", getenv("DM_TOP"), file);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot read %s", path);
	free(path);
	while (fgets(line, sizeof line, f) != NULL) {
		n++;
		if (strstr(line, marker) != NULL) {
			fclose(f);
			return n;
		}
	}
	fclose(f);
	ck_abort_msg("no marker %s in %s", marker, file);
	return -1;
}

/* outcome and message exactly; file and line when marker is given. */
static void
check_result(struct worker *w, int handle, const char *id,
    const char *outcome, const char *message, const char *file,
    const char *marker)
{
	json_t *res = w_result(w, handle, id);

	ck_assert_msg(strcmp(json_get_str(res, "outcome", ""), outcome) == 0,
	    "%s: outcome %s, wanted %s (message: %s)", id,
	    json_get_str(res, "outcome", ""), outcome,
	    json_get_str(res, "message", "(none)"));
	if (message != NULL)
		ck_assert_msg(strcmp(json_get_str(res, "message", ""),
		    message) == 0, "%s: message '%s', wanted '%s'", id,
		    json_get_str(res, "message", ""), message);
	else
		ck_assert_msg(json_object_get(res, "message") == NULL,
		    "%s: unexpected message '%s'", id,
		    json_get_str(res, "message", ""));
	if (marker != NULL) {
		ck_assert_str_eq(json_get_str(res, "file", ""), file);
		ck_assert_int_eq(json_get_int(res, "line", -1),
		    marker_line(file, marker));
	} else
		ck_assert_msg(json_object_get(res, "file") == NULL,
		    "%s: unexpected file", id);
	ck_assert(json_is_number(json_object_get(res, "duration")));
}

/* Every result came as started, output, result, in batch order, and the
 * answer said how many ran. */
static void
check_order(struct worker *w, json_t *answer, size_t count)
{
	size_t i, results = 0;
	json_t *e;
	const char *s, *open = NULL;

	ck_assert_int_eq(json_get_int(answer, "ran", -1), count);
	ck_assert(json_is_false(json_object_get(answer, "cancelled")));
	json_array_foreach(w->events, i, e) {
		s = json_string_value(e);
		if (strncmp(s, "started ", 8) == 0) {
			ck_assert_msg(open == NULL, "%s while %s open", s, open);
			open = s + 8;
		} else if (strncmp(s, "result ", 7) == 0) {
			ck_assert_msg(open != NULL && strcmp(open, s + 7) == 0,
			    "%s without its start", s);
			open = NULL;
			results++;
		} else if (strncmp(s, "output", 6) == 0)
			ck_assert_msg(open != NULL && strcmp(open,
			    strchr(s, ' ') + 1) == 0, "%s outside its test", s);
	}
	ck_assert_int_eq(results, count);
}

/* Loop tests run in modes: 0 boxed through the box helper, 1
 * in-process, 2 boxed with the worker forking tests itself. */
static const char *
mode_hello(int mode)
{
	return mode == 1 ? "{\"boxed\": false}" : "{\"boxed\": true}";
}

static struct worker *
w_start_mode(int mode)
{
	worker_box = mode == 2 ? "none" : NULL;
	return w_start(0);
}

/* ---- hello ----------------------------------------------------------------- */

START_TEST(test_hello)
{
	struct worker *w = w_start(0);
	json_t *a = w_hello(w, NULL);
	struct utsname u;
	struct stat st;
	char *tmpdir;

	uname(&u);
	ck_assert_int_eq(json_get_int(a, "protocol", 0), 1);
	ck_assert_str_eq(json_get_str(a, "version", ""), DM_VERSION);
	ck_assert_int_eq(json_get_int(a, "abi", 0), 1);
	ck_assert_str_eq(json_get_str(a, "os", ""), u.sysname);
	ck_assert_str_eq(json_get_str(a, "os_release", ""), u.release);
	ck_assert_str_eq(json_get_str(a, "arch", ""), u.machine);
	ck_assert_str_eq(json_get_str(a, "hostname", ""), u.nodename);
	ck_assert_int_ge(json_get_int(a, "cpus", 0), 1);
	ck_assert_int_eq(json_get_int(a, "pid", 0), w->pid);
	tmpdir = xstrdup(json_get_str(a, "tmpdir", ""));
	ck_assert_int_eq(stat(tmpdir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	json_decref(a);
	w_finish_ok(w);
	ck_assert_msg(stat(tmpdir, &st) == -1 && errno == ENOENT,
	    "%s was not removed", tmpdir);
	free(tmpdir);
}
END_TEST

START_TEST(test_hello_errors)
{
	struct worker *w = w_start(0);
	struct reply r;
	json_t *args;

	w_ask(w, &r, "ping", NULL);
	ck_assert(json_is_number(json_object_get(r.answer, "time")));
	reply_clear(&r);
	w_ask(w, &r, "load", json_pack("{s:s}", "path", "/x.so"));
	assert_error(&r, "FAILED", "'hello' must be answered before 'load'");
	w_ask(w, &r, "run", json_pack("{s:i, s:[]}", "suite", 0, "tests"));
	assert_error(&r, "FAILED", "'hello' must be answered before 'run'");
	w_ask(w, &r, "hello", hello_args("{\"protocol\": 2}"));
	assert_error(&r, "VERSION_MISMATCH",
	    "this worker speaks protocol 1, not 2");
	args = hello_args(NULL);
	json_object_del(args, "run_id");
	w_ask(w, &r, "hello", args);
	assert_error(&r, "BAD_ARGUMENT", "missing argument 'run_id'");
	w_ask(w, &r, "hello", hello_args("{\"timeout\": -1}"));
	assert_error(&r, "BAD_ARGUMENT", "argument 'timeout' must be 0 or more");
	w_ask(w, &r, "hello", hello_args("{\"timeout_multiplier\": 0}"));
	assert_error(&r, "BAD_ARGUMENT",
	    "argument 'timeout_multiplier' must be more than 0");
	w_ask(w, &r, "hello", hello_args("{\"output_cap\": 0}"));
	assert_error_has(&r, "BAD_ARGUMENT", "'output_cap' must be from 1 to");
	w_ask(w, &r, "hello", hello_args("{\"env\": {\"A\": 1}}"));
	assert_error(&r, "BAD_ARGUMENT", "env 'A' must be a string");
	w_ask(w, &r, "hello", hello_args("{\"boxed\": \"yes\"}"));
	assert_error(&r, "BAD_ARGUMENT", "argument 'boxed' must be a boolean");
	w_ask(w, &r, "frobnicate", NULL);
	assert_error(&r, "UNHANDLED", "unknown command");
	/* After all that, hello still works, once. */
	json_decref(w_hello(w, NULL));
	w_ask(w, &r, "hello", hello_args(NULL));
	assert_error(&r, "FAILED", "'hello' was already answered");
	w_ask(w, &r, "ping", NULL);
	ck_assert(r.answer != NULL);
	reply_clear(&r);
	w_finish_ok(w);
}
END_TEST

/* Before hello, a frame over 64 KiB is refused by closing; after, a
 * frame of 200 KiB is fine. */
START_TEST(test_frame_limit)
{
	struct worker *w = w_start(0);
	struct reply r;
	char *pad = xmalloc(200 * 1024 + 1);

	memset(pad, 'x', 200 * 1024);
	pad[200 * 1024] = '\0';
	amp_conn_set_limit(w->conn, FRAME_LIMIT_DEFAULT);
	w_ask(w, &r, "ping", json_pack("{s:s}", "pad", pad));
	assert_error(&r, "CONNECTION_LOST", NULL);
	w_finish_ok(w);

	w = w_start(0);
	json_decref(w_hello(w, NULL));
	w_ask(w, &r, "ping", json_pack("{s:s}", "pad", pad));
	ck_assert_msg(r.answer != NULL, "%s %s", r.code, r.text);
	reply_clear(&r);
	free(pad);
	w_finish_ok(w);
}
END_TEST

/* ---- load ------------------------------------------------------------------ */

static void
check_hash(struct worker *w, const char *hash)
{
	struct sha256_ctx *ctx = sha256_new();
	char line[4096], hex[SHA256_HEX_LEN + 1];
	size_t i;
	json_t *e;

	json_array_foreach(w->list, i, e) {
		snprintf(line, sizeof line, "%s\t%s:%lld\n",
		    json_get_str(e, "id", ""), json_get_str(e, "file", ""),
		    json_get_int(e, "line", 0));
		sha256_update(ctx, line, strlen(line));
	}
	sha256_finish_hex(ctx, hex);
	ck_assert_str_eq(hash, hex);
}

START_TEST(test_load_list)
{
	struct worker *w = w_start(0);
	struct reply r;
	char *path = suite_path_of("outcomes");
	json_t *e;

	json_decref(w_hello(w, NULL));
	w_ask(w, &r, "load", json_pack("{s:s}", "path", path));
	ck_assert_int_eq(json_get_int(r.answer, "suite", -1), 0);
	ck_assert_int_eq(json_get_int(r.answer, "count", -1), 24);
	ck_assert_int_eq(json_array_size(w->list), 24);
	ck_assert_int_eq(r.list_size, 24);	/* all before the answer */
	check_hash(w, json_get_str(r.answer, "hash", ""));
	e = json_array_get(w->list, 0);
	ck_assert_str_eq(json_get_str(e, "id", ""), "outcomes/pass");
	ck_assert_str_eq(json_get_str(e, "file", ""), "tests/suites/outcomes.c");
	ck_assert_int_eq(json_get_int(e, "line", 0), 13);
	e = json_array_get(w->list, w_index(w, "outcomes/skip_option"));
	ck_assert_str_eq(json_get_str(e, "skip", ""), "needs a printer");
	e = json_array_get(w->list, w_index(w, "outcomes/xfail"));
	ck_assert_str_eq(json_get_str(e, "todo", ""), "bug 12");
	ck_assert_ptr_null(json_object_get(e, "skip"));
	reply_clear(&r);

	/* The same suite again, without its list: a new handle, same hash. */
	json_array_clear(w->list);
	w_ask(w, &r, "load", json_pack("{s:s, s:b}", "path", path, "list", 0));
	ck_assert_int_eq(json_get_int(r.answer, "suite", -1), 1);
	ck_assert_int_eq(json_array_size(w->list), 0);
	reply_clear(&r);
	free(path);
	w_finish_ok(w);
}
END_TEST

START_TEST(test_load_options)
{
	struct worker *w = w_start(0);
	json_t *e;

	json_decref(w_hello(w, NULL));
	w_load(w, "fixtures");
	e = json_array_get(w->list, w_index(w, "defaulted/tagged"));
	assert_json(json_object_get(e, "tags"),
	    "[\"slow\",\"db\",\"net\"]");
	assert_json(json_object_get(e, "lock"),
	    "[\"printer\",\"disk\"]");
	ck_assert_str_eq(json_get_str(e, "group", ""), "g1");
	ck_assert(json_is_true(json_object_get(e, "serial")));
	ck_assert(json_get_num(e, "timeout", 0) == 0.25);	/* DM_SUITE */
	e = json_array_get(w->list, w_index(w, "fixtures/order"));
	ck_assert_ptr_null(json_object_get(e, "timeout"));
	ck_assert_ptr_null(json_object_get(e, "tags"));
	w_load(w, "deaths");
	e = json_array_get(w->list, w_index(w, "deaths/expect_abort"));
	ck_assert_int_eq(json_get_int(e, "signal", 0), SIGABRT);
	ck_assert_ptr_null(json_object_get(e, "exit_code"));
	e = json_array_get(w->list, w_index(w, "deaths/expect_exit0"));
	ck_assert_int_eq(json_get_int(e, "exit_code", -1), 0);
	e = json_array_get(w->list, w_index(w, "deaths/timeout"));
	ck_assert(json_get_num(e, "timeout", 0) == 0.3);
	w_finish_ok(w);
}
END_TEST

/* 2500 tests: three pieces, all before the answer, in source order. */
START_TEST(test_list_pieces)
{
	struct worker *w = w_start(0);
	struct reply r;
	char *path = suite_path_of("many"), id[32];
	size_t i;

	json_decref(w_hello(w, NULL));
	w_ask(w, &r, "load", json_pack("{s:s}", "path", path));
	ck_assert_int_eq(json_get_int(r.answer, "count", -1), 2500);
	ck_assert_int_eq(r.list_size, 2500);
	assert_json(w->pieces,
	    "[[0,1000],[1000,1000],[2000,500]]");
	for (i = 0; i < 2500; i++) {
		snprintf(id, sizeof id, "many/t%04zu", i);
		ck_assert_str_eq(json_get_str(json_array_get(w->list, i), "id",
		    ""), id);
	}
	check_hash(w, json_get_str(r.answer, "hash", ""));
	reply_clear(&r);
	free(path);
	w_finish_ok(w);
}
END_TEST

/* A suite from two files: both files' tests, each file in line order. */
START_TEST(test_two_units)
{
	struct worker *w = w_start(0);
	json_t *e;
	int h;
	size_t i;
	const char *file, *prev_file = "";
	long line, prev_line = 0;

	json_decref(w_hello(w, NULL));
	h = w_load(w, "twotu");
	ck_assert_int_eq(json_array_size(w->list), 4);
	json_array_foreach(w->list, i, e) {
		file = json_get_str(e, "file", "");
		line = (long)json_get_int(e, "line", 0);
		if (strcmp(file, prev_file) == 0)
			ck_assert_int_gt(line, prev_line);
		prev_file = file;
		prev_line = line;
	}
	e = json_array_get(w->list, w_index(w, "two/in_b"));
	ck_assert_str_eq(json_get_str(e, "file", ""), "tests/suites/twotu/b.c");
	assert_json(json_object_get(e, "tags"),
	    "[\"slow\",\"net\"]");
	json_decref(w_run_all(w, h));
	check_result(w, h, "two/in_a", "pass", NULL, NULL, NULL);
	check_result(w, h, "two/in_b", "pass", NULL, NULL, NULL);
	check_result(w, h, "other/in_b", "pass", NULL, NULL, NULL);
	check_result(w, h, "two/also_in_a", "fail",
	    "assertion failed: twice(3) == 7 (6 == 7)",
	    "tests/suites/twotu/a.c", "@also_in_a");
	w_finish_ok(w);
}
END_TEST

static void
check_load_error(struct worker *w, const char *path, const char *code,
    const char *part)
{
	struct reply r;

	w_ask(w, &r, "load", path != NULL ? json_pack("{s:s}", "path", path) :
	    json_pack("{s:i}", "path", 3));
	assert_error_has(&r, code, part);
	/* The worker keeps serving. */
	w_ask(w, &r, "ping", NULL);
	ck_assert(r.answer != NULL);
	reply_clear(&r);
}

START_TEST(test_load_errors)
{
	struct worker *w = w_start(0);
	char text[] = "/tmp/dm-test-text-XXXXXX", *p, *why;
	int fd;

	json_decref(w_hello(w, NULL));
	check_load_error(w, "/nonexistent/suite.so", "NO_SUCH_FILE",
	    "no such file: /nonexistent/suite.so");
	ck_assert_int_ge(fd = mkstemp(text), 0);
	/* Longer than an ELF header, so that dlopen reads one. */
	ck_assert_int_eq(write(fd, "This is a text file, not a shared object: "
	    "the worker must say so.\n", 67), 67);
	close(fd);
	check_load_error(w, text, "NOT_A_SUITE", "invalid ELF header");
	unlink(text);
	check_load_error(w, "/tmp", "NOT_A_SUITE",
	    "not a suite: /tmp is not a regular file");
	p = suite_path_of("empty");
	xasprintf(&why, "no tests in %s", p);
	check_load_error(w, p, "NO_TESTS", why);
	free(why);
	free(p);
	p = suite_path_of("dup");
	check_load_error(w, p, "DUPLICATE_ID", "duplicate test id d/same: ");
	check_load_error(w, p, "DUPLICATE_ID", "tests/suites/dup/a.c:5");
	check_load_error(w, p, "DUPLICATE_ID", "tests/suites/dup/b.c:5");
	free(p);
	check_load_error(w, NULL, "BAD_ARGUMENT",
	    "argument 'path' must be a string");
	/* And a good suite still loads, as the first handle. */
	ck_assert_int_eq(w_load(w, "outcomes"), 0);
	w_finish_ok(w);
}
END_TEST

START_TEST(test_run_errors)
{
	struct worker *w = w_start(0);
	struct reply r;
	int h;

	json_decref(w_hello(w, NULL));
	h = w_load(w, "outcomes");
	w_ask(w, &r, "run", json_pack("{s:i, s:[i]}", "suite", 7, "tests", 0));
	assert_error(&r, "NO_SUCH_SUITE", "no suite 7: 1 loaded");
	w_ask(w, &r, "run", json_pack("{s:i, s:[i, i]}", "suite", h, "tests",
	    0, 24));
	assert_error(&r, "BAD_INDEX",
	    "tests[1] is 24, but the suite's indices go from 0 to 23");
	w_ask(w, &r, "run", json_pack("{s:i, s:[i]}", "suite", h, "tests", -1));
	assert_error(&r, "BAD_INDEX",
	    "tests[0] is -1, but the suite's indices go from 0 to 23");
	w_ask(w, &r, "run", json_pack("{s:i, s:s}", "suite", h, "tests", "x"));
	assert_error(&r, "BAD_ARGUMENT", "argument 'tests' must be an array");
	w_ask(w, &r, "run", json_pack("{s:i, s:[s]}", "suite", h, "tests", "0"));
	assert_error(&r, "BAD_ARGUMENT",
	    "argument 'tests' must hold integers; tests[0] does not");
	w_ask(w, &r, "run", json_pack("{s:[i]}", "tests", 0));
	assert_error(&r, "BAD_ARGUMENT", "missing argument 'suite'");
	ck_assert_int_eq(json_object_size(w->results), 0);
	/* Nothing ran, and the worker keeps serving. */
	json_decref(w_run_ids(w, h, (const char *[]){ "outcomes/pass", NULL }));
	check_result(w, h, "outcomes/pass", "pass", NULL, NULL, NULL);
	w_ask(w, &r, "run", json_pack("{s:i, s:[]}", "suite", h, "tests"));
	ck_assert_int_eq(json_get_int(r.answer, "ran", -1), 0);
	reply_clear(&r);
	w_finish_ok(w);
}
END_TEST

START_TEST(test_ping)
{
	struct worker *w = w_start(0);
	struct reply r;
	double t1, t2;

	json_decref(w_hello(w, NULL));
	w_ask(w, &r, "ping", NULL);
	t1 = json_get_num(r.answer, "time", -1);
	reply_clear(&r);
	w_ask(w, &r, "ping", NULL);
	t2 = json_get_num(r.answer, "time", -1);
	reply_clear(&r);
	ck_assert(t1 > 0 && t2 >= t1);
	w_finish_ok(w);
}
END_TEST

/* ---- outcomes ------------------------------------------------------------ */

#define OUTC "tests/suites/outcomes.c"

START_TEST(test_outcomes)
{
	struct worker *w = w_start_mode(_i);
	json_t *a;
	int h;

	json_decref(w_hello(w, mode_hello(_i)));
	h = w_load(w, "outcomes");
	a = w_run_all(w, h);
	check_order(w, a, 24);
	json_decref(a);
	check_result(w, h, "outcomes/pass", "pass", NULL, NULL, NULL);
	check_result(w, h, "outcomes/assert", "fail",
	    "assertion failed: one + one == 3", OUTC, "@assert ");
	check_result(w, h, "outcomes/assert_message", "fail",
	    "assertion failed: two == 3: two was 2", OUTC, "@assert_message");
	check_result(w, h, "outcomes/eq", "fail",
	    "assertion failed: one + one == 3 (2 == 3)", OUTC, "@eq ");
	check_result(w, h, "outcomes/ne", "fail",
	    "assertion failed: two != 2 (2 != 2)", OUTC, "@ne ");
	check_result(w, h, "outcomes/lt", "fail",
	    "assertion failed: 3 < two (3 < 2)", OUTC, "@lt ");
	check_result(w, h, "outcomes/le", "fail",
	    "assertion failed: 3 <= two (3 <= 2)", OUTC, "@le ");
	check_result(w, h, "outcomes/gt", "fail",
	    "assertion failed: one > two (1 > 2)", OUTC, "@gt ");
	check_result(w, h, "outcomes/ge", "fail",
	    "assertion failed: one >= two (1 >= 2): in ge", OUTC, "@ge ");
	check_result(w, h, "outcomes/str_eq", "fail",
	    "assertion failed: hello == \"world\" (\"hello\" != \"world\")",
	    OUTC, "@str_eq ");
	check_result(w, h, "outcomes/str_ne", "fail",
	    "assertion failed: hello != \"hello\" (\"hello\" == \"hello\")",
	    OUTC, "@str_ne ");
	check_result(w, h, "outcomes/str_null", "fail",
	    "assertion failed: nothing == \"x\" (NULL != \"x\")", OUTC,
	    "@str_null ");
	check_result(w, h, "outcomes/mem_eq", "fail",
	    "assertion failed: a == b for 4 bytes (byte 2: 0x03 != 0x09)",
	    OUTC, "@mem_eq ");
	ck_assert(strncmp(json_get_str(w_result(w, h, "outcomes/null"),
	    "message", ""), "assertion failed: hello == NULL (0x", 35) == 0);
	check_result(w, h, "outcomes/not_null", "fail",
	    "assertion failed: nothing != NULL", OUTC, "@not_null ");
	check_result(w, h, "outcomes/float_eq", "fail",
	    "assertion failed: 0.5 + 0.25 == 0.7 within 0.01 "
	    "(0.75 != 0.69999999999999996)", OUTC, "@float_eq ");
	check_result(w, h, "outcomes/float_ok", "pass", NULL, NULL, NULL);
	check_result(w, h, "outcomes/fail", "fail", "broken 42 times", OUTC,
	    "@fail ");
	check_result(w, h, "outcomes/fail_bare", "fail", "failed", OUTC,
	    "@fail_bare ");
	check_result(w, h, "outcomes/skip_call", "skip", "not on tuesday", OUTC,
	    "@skip_call ");
	check_result(w, h, "outcomes/skip_option", "skip", "needs a printer",
	    NULL, NULL);
	check_result(w, h, "outcomes/xfail", "xfail",
	    "assertion failed: one == two (1 == 2)", OUTC, "@xfail ");
	check_result(w, h, "outcomes/xpass", "xpass",
	    "passed, but is marked todo: bug 13", NULL, NULL);
	check_result(w, h, "outcomes/first_failure_ends", "fail",
	    "assertion failed: one == 5 (1 == 5)", OUTC, "@first_failure ");
	w_finish_ok(w);
}
END_TEST

/* ---- deaths --------------------------------------------------------------- */

static void
check_signal(struct worker *w, int h, const char *id, int sig,
    const char *name)
{
	json_t *res = w_result(w, h, id);

	ck_assert_int_eq(json_get_int(res, "signal", 0), sig);
	ck_assert_str_eq(json_get_str(res, "signal_name", ""), name);
	ck_assert_ptr_null(json_object_get(res, "exit_status"));
}

static void
check_exit(struct worker *w, int h, const char *id, int status)
{
	json_t *res = w_result(w, h, id);

	ck_assert_int_eq(json_get_int(res, "exit_status", -1), status);
	ck_assert_ptr_null(json_object_get(res, "signal"));
}

static const char *const expected_deaths[] = {
	"deaths/expect_abort", "deaths/expect_exit3", "deaths/expect_exit0",
	"deaths/expect_abort_returned", "deaths/expect_exit3_returned",
	"deaths/expect_exit3_got4", NULL
};

/* Tests that say they die: the same results boxed and in-process (where
 * they are run boxed all the same). */
START_TEST(test_expected_deaths)
{
	struct worker *w = w_start_mode(_i);
	json_t *a;
	int h;

	json_decref(w_hello(w, mode_hello(_i)));
	h = w_load(w, "deaths");
	a = w_run_ids(w, h, expected_deaths);
	check_order(w, a, 6);
	json_decref(a);
	check_result(w, h, "deaths/expect_abort", "pass", NULL, NULL, NULL);
	check_signal(w, h, "deaths/expect_abort", SIGABRT, "SIGABRT");
	check_result(w, h, "deaths/expect_exit3", "pass", NULL, NULL, NULL);
	check_exit(w, h, "deaths/expect_exit3", 3);
	check_result(w, h, "deaths/expect_exit0", "pass", NULL, NULL, NULL);
	check_exit(w, h, "deaths/expect_exit0", 0);
	check_result(w, h, "deaths/expect_abort_returned", "fail",
	    "expected to die of SIGABRT, but the test returned", NULL, NULL);
	check_result(w, h, "deaths/expect_exit3_returned", "fail",
	    "expected to exit with status 3, but the test returned", NULL,
	    NULL);
	check_result(w, h, "deaths/expect_exit3_got4", "crash",
	    "exited with status 4; expected exit status 3", NULL, NULL);
	check_exit(w, h, "deaths/expect_exit3_got4", 4);
	w_finish_ok(w);
}
END_TEST

static const char *const crashes[] = {
	"deaths/segv", "deaths/abort", "deaths/exit3", "deaths/exit0",
	"deaths/expect_abort_got_segv", "deaths/todo_crash",
	"deaths/exit_in_init", "deaths/print_then_crash", "deaths/fine", NULL
};

START_TEST(test_crashes)
{
	struct worker *w;
	json_t *a;
	int h;

	w = w_start_mode(_i ? 2 : 0);
	json_decref(w_hello(w, NULL));
	h = w_load(w, "deaths");
	a = w_run_ids(w, h, crashes);
	check_order(w, a, 9);
	json_decref(a);
	check_result(w, h, "deaths/segv", "crash",
	    "died of SIGSEGV (Segmentation fault)", NULL, NULL);
	check_signal(w, h, "deaths/segv", SIGSEGV, "SIGSEGV");
	check_result(w, h, "deaths/abort", "crash", "died of SIGABRT (Aborted)",
	    NULL, NULL);
	check_signal(w, h, "deaths/abort", SIGABRT, "SIGABRT");
	check_result(w, h, "deaths/exit3", "crash", "exited with status 3",
	    NULL, NULL);
	check_exit(w, h, "deaths/exit3", 3);
	check_result(w, h, "deaths/exit0", "crash", "exited with status 0",
	    NULL, NULL);
	check_exit(w, h, "deaths/exit0", 0);
	check_result(w, h, "deaths/expect_abort_got_segv", "crash",
	    "died of SIGSEGV (Segmentation fault); expected SIGABRT", NULL,
	    NULL);
	check_result(w, h, "deaths/todo_crash", "xfail",
	    "died of SIGSEGV (Segmentation fault)", NULL, NULL);
	check_result(w, h, "deaths/exit_in_init", "crash",
	    "exited with status 2 in the init fixture", NULL, NULL);
	check_result(w, h, "deaths/print_then_crash", "crash",
	    "died of SIGSEGV (Segmentation fault)", NULL, NULL);
	ck_assert_str_eq(w_output(w, h, "deaths/print_then_crash", "stdout"),
	    "before the crash\n");
	ck_assert_str_eq(w_output(w, h, "deaths/print_then_crash", "stderr"),
	    "on stderr too\n");
	/* After all those, a test still passes. */
	check_result(w, h, "deaths/fine", "pass", NULL, NULL, NULL);
	w_finish_ok(w);
}
END_TEST

static void
check_timeout(const char *suite, const char *hello, const char *id,
    const char *message, double at_least)
{
	struct worker *w = w_start(0);
	int h;

	json_decref(w_hello(w, hello));
	h = w_load(w, suite);
	json_decref(w_run_ids(w, h, (const char *[]){ id, NULL }));
	check_result(w, h, id, "timeout", message, NULL, NULL);
	/* Killed after its time, not before. */
	ck_assert(json_get_num(w_result(w, h, id), "duration", 0) >= at_least);
	w_finish_ok(w);
}

START_TEST(test_timeouts)
{
	check_timeout("deaths", NULL, "deaths/timeout",
	    "timed out after 0.3 s; killed with its process group", 0.3);
	check_timeout("deaths", "{\"timeout\": 0.2}", "deaths/hang",
	    "timed out after 0.2 s; killed with its process group", 0.2);
	check_timeout("deaths", "{\"timeout\": 30, \"timeout_multiplier\": 2}",
	    "deaths/timeout",
	    "timed out after 0.6 s; killed with its process group", 0.6);
	check_timeout("fixtures", NULL, "defaulted/slow",
	    "timed out after 0.25 s; killed with its process group", 0.25);
}
END_TEST

/* In-process, a crash takes the worker down: but the result of the test
 * before it was written, and so were the start and the result of the one
 * that crashed; the test after it never started. */
START_TEST(test_inproc_crash)
{
	struct worker *w = w_start(0);
	struct reply r;
	char ev[64];
	int h, status;
	json_t *hello = w_hello(w, "{\"boxed\": false}");

	h = w_load(w, "deaths");
	w_ask(w, &r, "run", json_pack("{s:i, s:[i, i, i]}", "suite", h,
	    "tests", (int)w_index(w, "deaths/fine"),
	    (int)w_index(w, "deaths/segv"), (int)w_index(w, "deaths/abort")));
	assert_error(&r, "CONNECTION_LOST", NULL);
	check_result(w, h, "deaths/fine", "pass", NULL, NULL, NULL);
	check_result(w, h, "deaths/segv", "crash", "died of SIGSEGV "
	    "(Segmentation fault); the worker ran it in-process and died with "
	    "it", NULL, NULL);
	check_signal(w, h, "deaths/segv", SIGSEGV, "SIGSEGV");
	ck_assert_int_eq(json_object_size(w->results), 2);
	snprintf(ev, sizeof ev, "started 0:%ld", w_index(w, "deaths/segv"));
	ck_assert_str_eq(json_string_value(json_array_get(w->events, 3)), ev);
	/* Under AddressSanitizer the worker reports the crash and exits. */
	status = w_finish(w);
	ck_assert_msg((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
	    (WIFEXITED(status) && WEXITSTATUS(status) != 0),
	    "the worker survived a crash: wait status %d", status);
	ck_assert_int_eq(remove_worker_dirs(hello), 0);
	json_decref(hello);
}
END_TEST

/* In-process, a todo test that crashes is xfail, as when boxed. */
START_TEST(test_inproc_todo_crash)
{
	struct worker *w = w_start(0);
	struct reply r;
	int h;
	json_t *hello = w_hello(w, "{\"boxed\": false}");

	h = w_load(w, "deaths");
	w_ask(w, &r, "run", json_pack("{s:i, s:[i]}", "suite", h, "tests",
	    (int)w_index(w, "deaths/todo_crash")));
	assert_error(&r, "CONNECTION_LOST", NULL);
	check_result(w, h, "deaths/todo_crash", "xfail", "died of SIGSEGV "
	    "(Segmentation fault); the worker ran it in-process and died with "
	    "it", NULL, NULL);
	w_finish(w);
	remove_worker_dirs(hello);
	json_decref(hello);
}
END_TEST

/* In-process, exit() ends the worker, with the test's result said. */
START_TEST(test_inproc_exit)
{
	struct worker *w = w_start(0);
	struct reply r;
	int h, status;

	json_decref(w_hello(w, "{\"boxed\": false}"));
	h = w_load(w, "deaths");
	w_ask(w, &r, "run", json_pack("{s:i, s:[i]}", "suite", h, "tests",
	    (int)w_index(w, "deaths/exit3")));
	assert_error(&r, "CONNECTION_LOST", NULL);
	check_result(w, h, "deaths/exit3", "crash", "exited with status 3; the "
	    "worker ran it in-process and died with it", NULL, NULL);
	check_exit(w, h, "deaths/exit3", 3);
	status = w_finish(w);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3);
}
END_TEST

/* In-process, a test over its time cannot be stopped: the worker says so
 * and exits. */
START_TEST(test_inproc_timeout)
{
	struct worker *w = w_start(0);
	struct reply r;
	int h, status;
	json_t *hello = w_hello(w, "{\"boxed\": false}");

	h = w_load(w, "deaths");
	w_ask(w, &r, "run", json_pack("{s:i, s:[i]}", "suite", h, "tests",
	    (int)w_index(w, "deaths/timeout")));
	assert_error(&r, "CONNECTION_LOST", NULL);
	check_result(w, h, "deaths/timeout", "timeout", "timed out after 0.3 "
	    "s; the worker ran it in-process and died with it", NULL, NULL);
	ck_assert(json_get_num(w_result(w, h, "deaths/timeout"), "duration",
	    0) >= 0.3);
	status = w_finish(w);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	ck_assert_int_eq(remove_worker_dirs(hello), 0);
	json_decref(hello);
}
END_TEST

/* ---- isolation ------------------------------------------------------------ */

#define ISOC "tests/suites/isolation.c"

static void
check_flood(struct worker *w, int h)
{
	const char *out = w_output(w, h, "isolation/flood", "stdout");
	const char *end = "line 00098303 of the flood ......\n";
	size_t n = strlen(out);

	check_result(w, h, "isolation/flood", "pass", NULL, NULL, NULL);
	ck_assert_msg(strncmp(out, "[distworker: ", 13) == 0, "no marker: %.80s",
	    out);
	ck_assert(strstr(out, " bytes of output cut; the last ") != NULL);
	ck_assert_int_le(n, 65536 + 128);
	ck_assert_int_ge(n, 65536 - 4);
	ck_assert_str_eq(out + n - strlen(end), end);
	ck_assert_str_eq(w_output(w, h, "isolation/flood", "stderr"),
	    "flood done\n");
}

static void
check_env(struct worker *w, int h, const char *tmpdir)
{
	char *want;

	check_result(w, h, "isolation/env", "pass", NULL, NULL, NULL);
	xasprintf(&want, "DISTMGR_WORKER=w3\nDISTMGR_WORKER_COUNT=4\n"
	    "DISTMGR_RUN_ID=run-42\nTMPDIR=%s\nDM_TEST_EXTRA=from hello\n",
	    tmpdir);
	ck_assert_str_eq(w_output(w, h, "isolation/env", "stdout"), want);
	free(want);
}

static const char *const isolation_both[] = {
	"isolation/flood", "isolation/streams", "isolation/stdin",
	"isolation/env", "isolation/leak", "isolation/leak_then_exit",
	"isolation/thread_fails", "isolation/fork_asserts", NULL
};

START_TEST(test_isolation)
{
	struct worker *w;
	json_t *a, *hello;
	char *extra;
	int h;

	xasprintf(&extra, "{\"output_cap\": 65536, \"boxed\": %s, \"env\": "
	    "{\"DM_TEST_EXTRA\": \"from hello\"}}", _i == 1 ? "false" :
	    "true");
	w = w_start_mode(_i);
	hello = w_hello(w, extra);
	free(extra);
	h = w_load(w, "isolation");
	a = w_run_ids(w, h, isolation_both);
	check_order(w, a, 8);
	json_decref(a);
	check_flood(w, h);
	check_result(w, h, "isolation/streams", "pass", NULL, NULL, NULL);
	ck_assert_str_eq(w_output(w, h, "isolation/streams", "stdout"),
	    "to stdout\nno newline");
	ck_assert_str_eq(w_output(w, h, "isolation/streams", "stderr"),
	    "to stderr\n");
	check_result(w, h, "isolation/stdin", "pass", NULL, NULL, NULL);
	check_env(w, h, json_get_str(hello, "tmpdir", ""));
	check_result(w, h, "isolation/leak", "pass", NULL, NULL, NULL);
	check_result(w, h, "isolation/leak_then_exit", "pass", NULL, NULL,
	    NULL);
	check_result(w, h, "isolation/thread_fails", "fail", "from a thread",
	    ISOC, "@thread");
	check_result(w, h, "isolation/fork_asserts", "pass", NULL, NULL, NULL);
	ck_assert_msg(strstr(w_output(w, h, "isolation/fork_asserts", "stderr"),
	    "assertion failed: 1 == 2 (1 == 2): in the forked child") != NULL,
	    "the forked child's failure is not on the test's stderr");
	json_decref(hello);
	w_finish_ok(w);
}
END_TEST

/* What a suite's constructors print when it is loaded is nobody's. */
START_TEST(test_constructor_output)
{
	struct worker *w = w_start_mode(_i);
	int h;

	json_decref(w_hello(w, mode_hello(_i)));
	h = w_load(w, "chatty");
	json_decref(w_run_ids(w, h, (const char *[]){ "chatty/first", NULL }));
	check_result(w, h, "chatty/first", "pass", NULL, NULL, NULL);
	ck_assert_str_eq(w_output(w, h, "chatty/first", "stdout"),
	    "test output\n");
	ck_assert_str_eq(w_output(w, h, "chatty/first", "stderr"), "");
	w_finish_ok(w);
}
END_TEST

/* A child a test leaves behind is killed and reaped when the test ends,
 * and the next test starts without waiting for it. */
START_TEST(test_lingering_child)
{
	struct worker *w = w_start(0);
	int h;

	json_decref(w_hello(w, NULL));
	h = w_load(w, "isolation");
	json_decref(w_run_ids(w, h, (const char *[]){ "isolation/lingers",
	    "isolation/lingers_gone", NULL }));
	check_result(w, h, "isolation/lingers", "pass", NULL, NULL, NULL);
	check_result(w, h, "isolation/lingers_gone", "pass", NULL, NULL, NULL);
	ck_assert(json_get_num(w_result(w, h, "isolation/lingers"), "duration",
	    99) < 100);
	w_finish_ok(w);
}
END_TEST

/* ---- fixtures ------------------------------------------------------------- */

#define FIXC "tests/suites/fixtures.c"

static const char *const fixture_tests[] = {
	"fixtures/order", "fixtures/init_fails", "fixtures/fini_fails",
	"fixtures/init_skips", "fixtures/fini_after_failure",
	"fixtures/both_fail", "defaulted/uses_init", NULL
};

START_TEST(test_fixtures)
{
	struct worker *w = w_start_mode(_i);
	json_t *a;
	int h;

	json_decref(w_hello(w, mode_hello(_i)));
	h = w_load(w, "fixtures");
	a = w_run_ids(w, h, fixture_tests);
	check_order(w, a, 7);
	json_decref(a);
	check_result(w, h, "fixtures/order", "pass", NULL, NULL, NULL);
	ck_assert_str_eq(w_output(w, h, "fixtures/order", "stdout"),
	    "init\ntest\nfini\n");
	check_result(w, h, "fixtures/init_fails", "error",
	    "init fixture failed: assertion failed: 1 == 2 (1 == 2): "
	    "no database", FIXC, "@bad_init");
	/* Neither the test nor fini ran after init failed. */
	ck_assert_str_eq(w_output(w, h, "fixtures/init_fails", "stdout"), "");
	check_result(w, h, "fixtures/fini_fails", "error",
	    "fini fixture failed: cannot clean up", FIXC, "@bad_fini");
	ck_assert_str_eq(w_output(w, h, "fixtures/fini_fails", "stdout"),
	    "test\n");
	check_result(w, h, "fixtures/init_skips", "skip", "no network", FIXC,
	    "@skip_init");
	check_result(w, h, "fixtures/fini_after_failure", "fail", "boom", FIXC,
	    "@boom");
	ck_assert_str_eq(w_output(w, h, "fixtures/fini_after_failure",
	    "stdout"), "fini\n");
	check_result(w, h, "fixtures/both_fail", "fail", "first", FIXC,
	    "@first");
	check_result(w, h, "defaulted/uses_init", "pass", NULL, NULL, NULL);
	w_finish_ok(w);
}
END_TEST

/* ---- serial groups and the synchronisation calls ------------------------------ */

#define WGC "tests/suites/wgroups.c"

/* Runs the named tests of the last loaded suite as one run of group. */
static void
w_run_group(struct worker *w, int handle, const char *group,
    const char *const *ids, struct reply *r)
{
	json_t *tests = json_array();

	for (; *ids != NULL; ids++)
		json_array_append_new(tests, json_integer(w_index(w, *ids)));
	w_ask(w, r, "run", json_pack("{s:i, s:o, s:s}", "suite", handle,
	    "tests", tests, "group", group));
}

static int
has_event(struct worker *w, const char *event)
{
	size_t i;
	json_t *e;

	json_array_foreach(w->events, i, e)
		if (strcmp(json_string_value(e), event) == 0)
			return 1;
	return 0;
}

/* A serial group's run shares one process, set up once before its first
 * test and torn down once after its last; a failed init is every test's
 * error without running again; a failed fini is the last test's. */
START_TEST(test_groups)
{
	struct worker *w = w_start_mode(_i);
	const char *a, *b, *c;
	char pid[32];
	struct reply r;
	int h;

	json_decref(w_hello(w, mode_hello(_i)));
	h = w_load(w, "wgroups");
	w_run_group(w, h, "g", (const char *[]){ "g/a", "g/b", "g/c", NULL },
	    &r);
	ck_assert_msg(r.answer != NULL, "run failed: %s %s", r.code, r.text);
	ck_assert_int_eq(json_get_int(r.answer, "ran", -1), 3);
	reply_clear(&r);
	if (_i == 2) {
		/* Without the helper nothing is shared: each test is set up
		 * and torn down around itself, and still passes. */
		a = w_output(w, h, "g/b", "stdout");
		check_result(w, h, "g/b", "pass", NULL, NULL, NULL);
		ck_assert_msg(strncmp(a, "init\npid=", 9) == 0 &&
		    strstr(a, " n=1\nfini 2\n") != NULL, "g/b printed '%s'",
		    a);
		w_finish_ok(w);
		return;
	}
	check_result(w, h, "g/a", "pass", NULL, NULL, NULL);
	check_result(w, h, "g/c", "pass", NULL, NULL, NULL);
	a = w_output(w, h, "g/a", "stdout");
	b = w_output(w, h, "g/b", "stdout");
	c = w_output(w, h, "g/c", "stdout");
	ck_assert_msg(strncmp(a, "init\npid=", 9) == 0, "g/a printed '%s'", a);
	snprintf(pid, sizeof pid, "%.*s", (int)strcspn(a + 5, " "), a + 5);
	ck_assert_msg(strncmp(b, pid, strlen(pid)) == 0 &&
	    strstr(b, " n=2\n") != NULL, "g/b printed '%s', not %s n=2", b,
	    pid);
	ck_assert_msg(strncmp(c, pid, strlen(pid)) == 0 &&
	    strstr(c, " n=3\nfini 4\n") != NULL, "g/c printed '%s'", c);

	w_run_group(w, h, "bad", (const char *[]){ "bad/x", "bad/y", NULL },
	    &r);
	reply_clear(&r);
	check_result(w, h, "bad/x", "error",
	    "init fixture failed: no database", WGC, "@bad_group_init");
	check_result(w, h, "bad/y", "error",
	    "init fixture failed: no database", WGC, "@bad_group_init");
	ck_assert_str_eq(w_output(w, h, "bad/x", "stdout"), "bad init\n");
	ck_assert_str_eq(w_output(w, h, "bad/y", "stdout"), "");

	w_run_group(w, h, "badfini", (const char *[]){ "badfini/p",
	    "badfini/q", NULL }, &r);
	reply_clear(&r);
	check_result(w, h, "badfini/p", "pass", NULL, NULL, NULL);
	check_result(w, h, "badfini/q", "error",
	    "fini fixture failed: cannot clean up", WGC, "@bad_group_fini");

	/* The same group again is a new run: set up anew. */
	w_run_group(w, h, "g", (const char *[]){ "g/b", NULL }, &r);
	reply_clear(&r);
	b = w_output(w, h, "g/b", "stdout");
	/* (Outputs of one test add up here.) */
	ck_assert_msg(strstr(b, " n=2\ninit\npid=") != NULL &&
	    strstr(b, " n=1\nfini 2\n") != NULL, "g/b alone printed '%s'", b);
	w_finish_ok(w);
}
END_TEST

START_TEST(test_group_errors)
{
	struct worker *w = w_start(0);
	struct reply r;
	int h;

	json_decref(w_hello(w, NULL));
	h = w_load(w, "wgroups");
	w_run_group(w, h, "nope", (const char *[]){ "g/a", NULL }, &r);
	assert_error(&r, "BAD_ARGUMENT", "the suite has no serial group 'nope'");
	w_run_group(w, h, "g", (const char *[]){ "g/a", "bad/x", NULL }, &r);
	assert_error(&r, "BAD_ARGUMENT", "tests[1] is not of group 'g'");
	ck_assert_int_eq(json_object_size(w->results), 0);
	w_finish_ok(w);
}
END_TEST

/* dm_lock and the rest reach the manager as asks naming the test, and
 * return what it answers: boxed through the helper's channel, and
 * in-process on the worker's own connection. */
START_TEST(test_sync_calls)
{
	struct worker *w = w_start_mode(_i);
	char ev[64];
	int h;

	json_decref(w_hello(w, mode_hello(_i)));
	h = w_load(w, "wgroups");
	json_decref(w_run_ids(w, h, (const char *[]){ "sync/calls", NULL }));
	check_result(w, h, "sync/calls", "pass", NULL, NULL, NULL);
	ck_assert_str_eq(w_output(w, h, "sync/calls", "stdout"),
	    "lock=1 board=v-k set=0 trail=1 unlock=-1\n");
	snprintf(ev, sizeof ev, "ask lock %d:%ld", h, w_index(w,
	    "sync/calls"));
	ck_assert_msg(has_event(w, ev), "no event '%s'", ev);
	/* What the box helper ignores, a test still dies of. */
	json_decref(w_run_ids(w, h, (const char *[]){ "sig/term", "sig/intr",
	    NULL }));
	check_result(w, h, "sig/term", "pass", NULL, NULL, NULL);
	check_result(w, h, "sig/intr", "pass", NULL, NULL, NULL);
	w_finish_ok(w);
}
END_TEST

/* ---- cancel, shutdown, end of file ---------------------------------------- */

static void
wait_event(struct worker *w, const char *event)
{
	double end = clock_mono() + ASK_SECONDS;
	size_t i;
	json_t *e;

	while (clock_mono() < end) {
		json_array_foreach(w->events, i, e)
			if (strcmp(json_string_value(e), event) == 0)
				return;
		tu_loop_for(w->base, 0.01);
	}
	ck_abort_msg("no event '%s'", event);
}

START_TEST(test_cancel)
{
	struct worker *w = w_start(0);
	struct reply run1, run2, cancel;
	int h;
	char ev[64];

	json_decref(w_hello(w, NULL));
	h = w_load(w, "deaths");
	w_ask_start(w, &run1, "run", json_pack("{s:i, s:[i, i]}", "suite", h,
	    "tests", (int)w_index(w, "deaths/hang"),
	    (int)w_index(w, "deaths/fine")));
	w_ask_start(w, &run2, "run", json_pack("{s:i, s:[i]}", "suite", h,
	    "tests", (int)w_index(w, "deaths/fine")));
	snprintf(ev, sizeof ev, "started 0:%ld", w_index(w, "deaths/hang"));
	wait_event(w, ev);
	w_ask(w, &cancel, "cancel", NULL);
	ck_assert(cancel.answer != NULL);
	/* Both batches were answered before the cancel was. */
	ck_assert(run1.done && run2.done);
	ck_assert_int_eq(json_get_int(run1.answer, "ran", -1), 1);
	ck_assert(json_is_true(json_object_get(run1.answer, "cancelled")));
	ck_assert_int_eq(json_get_int(run2.answer, "ran", -1), 0);
	ck_assert(json_is_true(json_object_get(run2.answer, "cancelled")));
	check_result(w, h, "deaths/hang", "interrupted", "interrupted by cancel",
	    NULL, NULL);
	ck_assert_int_eq(json_object_size(w->results), 1);
	reply_clear(&run1);
	reply_clear(&run2);
	reply_clear(&cancel);
	/* The worker keeps serving. */
	json_decref(w_run_ids(w, h, (const char *[]){ "deaths/fine", NULL }));
	check_result(w, h, "deaths/fine", "pass", NULL, NULL, NULL);
	w_ask(w, &cancel, "cancel", NULL);	/* nothing to cancel */
	ck_assert(cancel.answer != NULL);
	reply_clear(&cancel);
	w_finish_ok(w);
}
END_TEST

START_TEST(test_shutdown)
{
	struct worker *w = w_start(0);
	struct reply run, down;
	int h;
	char ev[64];

	json_decref(w_hello(w, NULL));
	h = w_load(w, "deaths");
	w_ask_start(w, &run, "run", json_pack("{s:i, s:[i]}", "suite", h,
	    "tests", (int)w_index(w, "deaths/hang")));
	snprintf(ev, sizeof ev, "started 0:%ld", w_index(w, "deaths/hang"));
	wait_event(w, ev);
	w_ask(w, &down, "shutdown", NULL);
	ck_assert(down.answer != NULL);
	ck_assert(run.done && json_is_true(json_object_get(run.answer,
	    "cancelled")));
	check_result(w, h, "deaths/hang", "interrupted",
	    "interrupted by shutdown", NULL, NULL);
	tu_loop_until(w->base, &w->closed, 10);
	ck_assert_msg(w->closed, "the worker did not close after shutdown");
	reply_clear(&run);
	reply_clear(&down);
	w_finish_ok(w);
}
END_TEST

static pid_t
read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid;
}

/* The manager going away ends the worker and the test it was running. */
START_TEST(test_eof_kills_test)
{
	struct worker *w = w_start(0);
	char pidfile[] = "/tmp/dm-test-pid-XXXXXX", *extra, *tmpdir;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	struct stat st;
	json_t *hello;
	pid_t pid = 0;
	int fd, h, i;

	ck_assert_int_ge(fd = mkstemp(pidfile), 0);
	close(fd);
	xasprintf(&extra, "{\"env\": {\"DM_TEST_PIDFILE\": \"%s\"}}", pidfile);
	hello = w_hello(w, extra);
	tmpdir = xstrdup(json_get_str(hello, "tmpdir", ""));
	json_decref(hello);
	free(extra);
	h = w_load(w, "deaths");
	w_ask_start(w, &(struct reply){ 0 }, "run", json_pack("{s:i, s:[i]}",
	    "suite", h, "tests", (int)w_index(w, "deaths/hang_pidfile")));
	for (i = 0; i < 1000 && (pid = read_pid(pidfile)) == 0; i++)
		tu_loop_for(w->base, 0.01);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, 0), 0);
	w_finish_ok(w);
	for (i = 0; i < 500 && kill(pid, 0) == 0; i++)
		nanosleep(&ts, NULL);
	ck_assert_msg(kill(pid, 0) == -1 && errno == ESRCH,
	    "test process %d outlived its worker", (int)pid);
	ck_assert_msg(stat(tmpdir, &st) == -1, "%s was left behind", tmpdir);
	unlink(pidfile);
	free(tmpdir);
}
END_TEST

/* ---- the channel ---------------------------------------------------------- */

START_TEST(test_split_pipes)
{
	struct worker *w = w_start(1);
	struct reply r;
	int h;

	json_decref(w_hello(w, _i ? "{\"boxed\": false}" : NULL));
	h = w_load(w, "outcomes");
	json_decref(w_run_ids(w, h, (const char *[]){ "outcomes/pass",
	    "outcomes/eq", NULL }));
	check_result(w, h, "outcomes/pass", "pass", NULL, NULL, NULL);
	check_result(w, h, "outcomes/eq", "fail",
	    "assertion failed: one + one == 3 (2 == 3)", OUTC, "@eq ");
	w_ask(w, &r, "shutdown", NULL);
	ck_assert(r.answer != NULL);
	reply_clear(&r);
	w_finish_ok(w);
}
END_TEST

/* A batch of 2500: every result, in order, in both modes. */
START_TEST(test_big_batch)
{
	struct worker *w = w_start_mode(_i);
	json_t *a, *res;
	size_t i;
	char key[32];
	int h;

	json_decref(w_hello(w, mode_hello(_i)));
	h = w_load(w, "many");
	a = w_run_all(w, h);
	check_order(w, a, 2500);
	json_decref(a);
	for (i = 0; i < 2500; i++) {
		snprintf(key, sizeof key, "%d:%zu", h, i);
		res = json_object_get(w->results, key);
		ck_assert_str_eq(json_get_str(res, "outcome", ""), "pass");
	}
	w_finish_ok(w);
}
END_TEST

/* ---- the box helper ------------------------------------------------------- */

#define HELPER_DIED(how) "lost with its box helper: distworker-box died of " how

/* The helper killed from outside (as the OOM killer would) while a test
 * runs: that test crashes, the next runs in a new helper. */
START_TEST(test_helper_killed)
{
	struct worker *w = w_start(0);
	char pidfile[] = "/tmp/dm-test-pid-XXXXXX", *extra;
	struct reply run;
	pid_t pid = 0;
	int fd, h, i;

	ck_assert_int_ge(fd = mkstemp(pidfile), 0);
	close(fd);
	xasprintf(&extra, "{\"env\": {\"DM_TEST_PIDFILE\": \"%s\"}}", pidfile);
	json_decref(w_hello(w, extra));
	free(extra);
	h = w_load(w, "boxer");
	w_ask_start(w, &run, "run", json_pack("{s:i, s:[i, i]}", "suite", h,
	    "tests", (int)w_index(w, "boxer/helper_pid"),
	    (int)w_index(w, "boxer/fine")));
	for (i = 0; i < 1000 && (pid = read_pid(pidfile)) == 0; i++)
		tu_loop_for(w->base, 0.01);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	w_wait(w, &run, "run");
	check_order(w, run.answer, 2);
	check_result(w, h, "boxer/helper_pid", "crash", HELPER_DIED("SIGKILL"),
	    NULL, NULL);
	check_result(w, h, "boxer/fine", "pass", NULL, NULL, NULL);
	reply_clear(&run);
	unlink(pidfile);
	w_finish_ok(w);
}
END_TEST

/* A test that kills its parent, the helper, crashes as lost with it (a
 * test cannot kill the worker that way); one that stops it times out,
 * and the helper is replaced. */
START_TEST(test_helper_killed_by_test)
{
	struct worker *w = w_start(0);
	json_t *a;
	int h;

	json_decref(w_hello(w, NULL));
	h = w_load(w, "boxer");
	a = w_run_ids(w, h, (const char *[]){ "boxer/kills_helper",
	    "boxer/fine", "boxer/stops_helper", "boxer/cwd", NULL });
	check_order(w, a, 4);
	json_decref(a);
	check_result(w, h, "boxer/kills_helper", "crash",
	    HELPER_DIED("SIGKILL"), NULL, NULL);
	check_result(w, h, "boxer/fine", "pass", NULL, NULL, NULL);
	check_result(w, h, "boxer/stops_helper", "timeout", "timed out after "
	    "0.3 s; killed with its process group", NULL, NULL);
	check_result(w, h, "boxer/cwd", "pass", NULL, NULL, NULL);
	w_finish_ok(w);
}
END_TEST

/* A suite whose constructor crashes in the helper: its tests cannot be
 * started, and after three helpers in a row the worker stops trying. */
START_TEST(test_helper_cannot_load)
{
	struct worker *w = w_start(0);
	const char *want = "the test could not be started: the box helper "
	    "cannot load the suite: distworker-box died of SIGABRT";
	char *gave_up;
	json_t *a;
	int h;

	json_decref(w_hello(w, NULL));
	h = w_load(w, "boxcrash");
	a = w_run_all(w, h);
	check_order(w, a, 4);
	json_decref(a);
	check_result(w, h, "boxcrash/t1", "error", want, NULL, NULL);
	check_result(w, h, "boxcrash/t2", "error", want, NULL, NULL);
	check_result(w, h, "boxcrash/t3", "error", want, NULL, NULL);
	xasprintf(&gave_up, "%s (gave up after 3 tries)", want);
	check_result(w, h, "boxcrash/t4", "error", gave_up, NULL, NULL);
	free(gave_up);
	/* Another suite still runs. */
	h = w_load(w, "boxer");
	json_decref(w_run_ids(w, h, (const char *[]){ "boxer/fine", NULL }));
	check_result(w, h, "boxer/fine", "pass", NULL, NULL, NULL);
	w_finish_ok(w);
}
END_TEST

/* What a test leaves outside its group is gone before the next test
 * starts; tests run in the worker's directory; the synchronisation
 * calls answer "not available", in both boxed runners. */
START_TEST(test_helper_isolation)
{
	struct worker *w = w_start_mode(_i ? 2 : 0);
	char cwd[4096], *want;
	json_t *a;
	int h;

	json_decref(w_hello(w, NULL));
	h = w_load(w, "boxer");
	a = w_run_ids(w, h, (const char *[]){ "boxer/escapes",
	    "boxer/escaped_gone", "boxer/sync_not_available", "boxer/cwd",
	    NULL });
	check_order(w, a, 4);
	json_decref(a);
	check_result(w, h, "boxer/escapes", "pass", NULL, NULL, NULL);
	check_result(w, h, "boxer/sync_not_available", "pass", NULL, NULL,
	    NULL);
	check_result(w, h, "boxer/cwd", "pass", NULL, NULL, NULL);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
	xasprintf(&want, "%s\n", cwd);
	ck_assert_str_eq(w_output(w, h, "boxer/cwd", "stdout"), want);
	free(want);
	if (_i == 0)
		check_result(w, h, "boxer/escaped_gone", "pass", NULL, NULL,
		    NULL);
	w_finish_ok(w);
}
END_TEST

static Suite *
worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("stdio");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_hello);
	tcase_add_test(tc, test_hello_errors);
	tcase_add_test(tc, test_frame_limit);
	tcase_add_test(tc, test_load_list);
	tcase_add_test(tc, test_load_options);
	tcase_add_test(tc, test_list_pieces);
	tcase_add_test(tc, test_two_units);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_run_errors);
	tcase_add_test(tc, test_ping);
	tcase_add_loop_test(tc, test_outcomes, 0, 3);
	tcase_add_loop_test(tc, test_expected_deaths, 0, 3);
	tcase_add_loop_test(tc, test_crashes, 0, 2);
	tcase_add_test(tc, test_timeouts);
	tcase_add_test(tc, test_inproc_crash);
	tcase_add_test(tc, test_inproc_todo_crash);
	tcase_add_test(tc, test_inproc_exit);
	tcase_add_test(tc, test_inproc_timeout);
	tcase_add_loop_test(tc, test_isolation, 0, 3);
	tcase_add_test(tc, test_lingering_child);
	tcase_add_loop_test(tc, test_constructor_output, 0, 3);
	tcase_add_loop_test(tc, test_fixtures, 0, 3);
	tcase_add_loop_test(tc, test_groups, 0, 3);
	tcase_add_test(tc, test_group_errors);
	tcase_add_loop_test(tc, test_sync_calls, 0, 2);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_shutdown);
	tcase_add_test(tc, test_eof_kills_test);
	tcase_add_loop_test(tc, test_split_pipes, 0, 2);
	tcase_add_loop_test(tc, test_big_batch, 0, 3);
	tcase_add_test(tc, test_helper_killed);
	tcase_add_test(tc, test_helper_killed_by_test);
	tcase_add_test(tc, test_helper_cannot_load);
	tcase_add_loop_test(tc, test_helper_isolation, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(worker_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

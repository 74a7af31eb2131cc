/*
 * test_shipping.c - what a manager ships to distworker --stdio and the
 * rest of hello's farm arguments: suites loaded by hash through the blob
 * cache (shared by workers, or private when it cannot be opened), the
 * session directory and chdir into it, nice, argument errors, and the
 * worker's heartbeat ending a session whose manager stopped answering.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "testutil.h"

#define ASK_SECONDS	30.0

struct worker {
	struct event_base	*base;
	struct amp_conn		*conn;
	pid_t			 pid;
	int			 closed;
	json_t			*results;
	json_t			*shown;		/* suite_tests' "suite" */
	int			 pings;
	int			 mute;
	struct amp_request	*held[64];
	int			 nheld;
};

struct reply {
	int	 done;
	json_t	*answer;
	char	 code[64];
	char	 text[2048];
};

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/dmship.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *
build_dir(void)
{
	const char *b = getenv("DM_BUILD");

	ck_assert_msg(b != NULL, "DM_BUILD unset: run through make check");
	return b;
}

static struct worker *
w_of(struct amp_request *req)
{
	return amp_conn_ctx(amp_request_conn(req));
}

static int
h_suite_tests(struct amp_request *req, json_t *box)
{
	json_array_append(w_of(req)->shown, json_object_get(box, "suite"));
	return 0;
}

static int
h_ignore(struct amp_request *req, json_t *box)
{
	(void)req;
	(void)box;
	return 0;
}

static int
h_test_result(struct amp_request *req, json_t *box)
{
	char key[64];

	snprintf(key, sizeof key, "%lld:%lld", json_get_int(box, "suite", -1),
	    json_get_int(box, "test", -1));
	json_object_set(w_of(req)->results, key, box);
	return 0;
}

static int
h_ping(struct amp_request *req, json_t *box)
{
	struct worker *w = w_of(req);

	(void)box;
	w->pings++;
	if (w->mute && w->nheld < (int)DM_NELEM(w->held)) {
		w->held[w->nheld++] = req;
		return 0;
	}
	amp_answer(req, NULL);
	return 0;
}

static const struct amp_command table[] = {
	{ "suite_tests", h_suite_tests, NULL },
	{ "test_started", h_ignore, NULL },
	{ "test_output", h_ignore, NULL },
	{ "test_result", h_test_result, NULL },
	{ "ping", h_ping, NULL },
	{ NULL, NULL, NULL }
};

static void
on_close(struct amp_conn *c, const char *reason, void *ctx)
{
	struct worker *w = ctx;

	(void)c;
	(void)reason;
	w->closed = 1;
	w->conn = NULL;
}

static const struct amp_conn_cbs cbs = { on_close, NULL };

/* distworker --stdio --cache-dir cache (NULL: none given). */
static struct worker *
w_start(const char *cache)
{
	struct worker *w = xcalloc(1, sizeof *w);
	char *bin, tmp[128];
	int sv[2];

	signal(SIGPIPE, SIG_IGN);
	xasprintf(&bin, "%s/bin/distworker", build_dir());
	snprintf(tmp, sizeof tmp, "%s/tmp", dir);
	mkdir(tmp, 0700);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	if ((w->pid = fork()) == 0) {
		dup2(sv[1], 0);
		dup2(sv[1], 1);
		setenv("TMPDIR", tmp, 1);
		if (cache != NULL)
			execl(bin, "distworker", "--stdio", "--cache-dir", cache,
			    (char *)NULL);
		else
			execl(bin, "distworker", "--stdio", (char *)NULL);
		_exit(127);
	}
	free(bin);
	close(sv[1]);
	evutil_make_socket_nonblocking(sv[0]);
	w->base = event_base_new();
	w->conn = amp_conn_new(bufferevent_socket_new(w->base, sv[0],
	    BEV_OPT_CLOSE_ON_FREE), table, &cbs, w);
	w->results = json_object();
	w->shown = json_array();
	return w;
}

static void
on_reply(struct amp_conn *c, json_t *answer, const struct amp_error *err,
    void *arg)
{
	struct reply *r = arg;

	(void)c;
	r->done = 1;
	if (err != NULL) {
		snprintf(r->code, sizeof r->code, "%s", err->code);
		snprintf(r->text, sizeof r->text, "%s", err->description);
	} else
		r->answer = json_incref(answer);
}

static void
w_ask(struct worker *w, struct reply *r, const char *cmd, json_t *args)
{
	memset(r, 0, sizeof *r);
	ck_assert_msg(w->conn != NULL, "asking %s of a closed worker", cmd);
	amp_ask(w->conn, cmd, args, on_reply, r);
	tu_loop_until(w->base, &r->done, ASK_SECONDS);
	ck_assert_msg(r->done, "no reply to %s", cmd);
}

static void
reply_clear(struct reply *r)
{
	json_decref(r->answer);
	r->answer = NULL;
}

static json_t *
hello_args(const char *extra)
{
	json_t *a = json_pack("{s:i, s:s, s:s, s:s, s:i}", "protocol", 1,
	    "manager", "test_shipping", "run_id", "r", "worker_id", "w0",
	    "worker_count", 1), *more;

	if (extra != NULL) {
		more = json_loads(extra, 0, NULL);
		ck_assert_msg(more != NULL, "bad JSON: %s", extra);
		json_object_update(a, more);
		json_decref(more);
	}
	return a;
}

static json_t *
w_hello(struct worker *w, const char *extra)
{
	struct reply r;

	w_ask(w, &r, "hello", hello_args(extra));
	ck_assert_msg(r.answer != NULL, "hello: %s %s", r.code, r.text);
	amp_conn_set_limit(w->conn, FRAME_LIMIT_DEFAULT);
	return r.answer;
}

/* Closes our end; the worker's wait status. */
static int
w_finish(struct worker *w)
{
	double end = clock_mono() + 20;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int status = -1, i;
	pid_t got = 0;

	for (i = 0; i < w->nheld; i++)
		amp_request_drop(w->held[i]);
	if (w->conn != NULL)
		amp_conn_close(w->conn, "test over", 0);
	tu_loop_for(w->base, 0.01);
	while (clock_mono() < end && (got = waitpid(w->pid, &status,
	    WNOHANG)) == 0)
		nanosleep(&ts, NULL);
	if (got == 0) {
		kill(w->pid, SIGKILL);
		waitpid(w->pid, &status, 0);
		ck_abort_msg("the worker did not exit");
	}
	json_decref(w->results);
	json_decref(w->shown);
	event_base_free(w->base);
	free(w);
	return status;
}

static unsigned char *
suite_bytes(const char *name, size_t *len, char hex[SHA256_HEX_LEN + 1])
{
	char *path;
	unsigned char *buf;
	FILE *f;
	long n;

	xasprintf(&path, "%s/suites/%s.so", build_dir(), name);
	ck_assert_ptr_nonnull(f = fopen(path, "rb"));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = xmalloc((size_t)n);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	free(path);
	*len = (size_t)n;
	sha256_hex(buf, *len, hex);
	return buf;
}

static void
w_blob(struct worker *w, const void *data, size_t len, const char *hex)
{
	json_t *extra = json_pack("{s:I}", "size", (json_int_t)len);

	ck_assert_int_eq(stream_send(w->conn, "blob", hex, data, len, 1, 0,
	    extra), 0);
	json_decref(extra);
}

static size_t
w_missing(struct worker *w, const char *hex, size_t len)
{
	struct reply r;
	size_t n;

	w_ask(w, &r, "have", json_pack("{s:[{s:s, s:I}]}", "blobs", "sha256",
	    hex, "size", (json_int_t)len));
	ck_assert_msg(r.answer != NULL, "have: %s %s", r.code, r.text);
	n = json_array_size(json_object_get(r.answer, "missing"));
	reply_clear(&r);
	return n;
}

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- the cache ---------------------------------------------------------- */

/* The second worker on the same cache has the suite: nothing to send. */
START_TEST(test_cache_shared)
{
	char cache[128], hex[SHA256_HEX_LEN + 1], *session;
	unsigned char *so;
	size_t len;
	struct worker *w;
	struct reply r;
	json_t *a;
	int round;

	snprintf(cache, sizeof cache, "%s/cache", dir);
	so = suite_bytes("daemon", &len, hex);
	for (round = 0; round < 2; round++) {
		w = w_start(cache);
		a = w_hello(w, NULL);
		ck_assert(json_is_true(json_object_get(a, "cache")));
		session = xstrdup(json_get_str(a, "session", ""));
		ck_assert_msg(is_dir(session), "%s", session);
		json_decref(a);
		ck_assert_uint_eq(w_missing(w, hex, len), round == 0 ? 1 : 0);
		if (round == 0)
			w_blob(w, so, len, hex);
		w_ask(w, &r, "load", json_pack("{s:s, s:s}", "sha256", hex,
		    "name", "daemon.so"));
		ck_assert_msg(r.answer != NULL, "load: %s %s", r.code, r.text);
		ck_assert_int_eq(json_get_int(r.answer, "count", 0), 6);
		reply_clear(&r);
		/* Lists name the suite as the load did. */
		ck_assert_str_eq(json_string_value(json_array_get(w->shown, 0)),
		    "daemon.so");
		ck_assert_int_eq(w_finish(w), 0);
		ck_assert_msg(!is_dir(session), "%s was left", session);
		free(session);
	}
	free(so);
}
END_TEST

/* A cache that cannot be opened: blobs are the worker's alone, and it
 * says so. */
START_TEST(test_cache_unusable)
{
	char cache[128], hex[SHA256_HEX_LEN + 1];
	unsigned char *so;
	size_t len;
	struct worker *w;
	struct reply r;
	json_t *a;
	FILE *f;

	snprintf(cache, sizeof cache, "%s/file", dir);
	ck_assert_ptr_nonnull(f = fopen(cache, "w"));
	fclose(f);
	strcat(cache, "/cache");
	so = suite_bytes("daemon", &len, hex);
	w = w_start(cache);
	a = w_hello(w, NULL);
	ck_assert(json_is_false(json_object_get(a, "cache")));
	json_decref(a);
	ck_assert_uint_eq(w_missing(w, hex, len), 1);
	w_blob(w, so, len, hex);
	ck_assert_uint_eq(w_missing(w, hex, len), 0);
	w_ask(w, &r, "load", json_pack("{s:s, s:s}", "sha256", hex, "name",
	    "daemon.so"));
	ck_assert_msg(r.answer != NULL, "load: %s %s", r.code, r.text);
	reply_clear(&r);
	ck_assert_int_eq(w_finish(w), 0);
	free(so);
}
END_TEST

/* ---- hello's farm arguments --------------------------------------------- */

START_TEST(test_chdir_and_nice)
{
	char cache[128], link[64], cwd[PATH_MAX], want[PATH_MAX];
	struct worker *w;
	json_t *a;
	ssize_t n;
	int before;

	snprintf(cache, sizeof cache, "%s/cache", dir);
	before = getpriority(PRIO_PROCESS, 0);
	w = w_start(cache);
	a = w_hello(w, "{\"chdir\": \"a/b\", \"nice\": 3}");
	snprintf(link, sizeof link, "/proc/%ld/cwd", (long)w->pid);
	n = readlink(link, cwd, sizeof cwd - 1);
	ck_assert_int_gt(n, 0);
	cwd[n] = '\0';
	snprintf(want, sizeof want, "%s/a/b", json_get_str(a, "session", ""));
	ck_assert_str_eq(cwd, want);
	ck_assert_int_eq(getpriority(PRIO_PROCESS, (id_t)w->pid), before + 3);
	json_decref(a);
	ck_assert_int_eq(w_finish(w), 0);

	/* An absolute one is taken as it is. */
	w = w_start(cache);
	a = w_hello(w, "{\"chdir\": \"/\"}");
	snprintf(link, sizeof link, "/proc/%ld/cwd", (long)w->pid);
	n = readlink(link, cwd, sizeof cwd - 1);
	ck_assert_int_gt(n, 0);
	cwd[n] = '\0';
	ck_assert_str_eq(cwd, "/");
	json_decref(a);
	ck_assert_int_eq(w_finish(w), 0);
}
END_TEST

START_TEST(test_hello_farm_errors)
{
	char cache[128];
	struct worker *w;
	struct reply r;

	snprintf(cache, sizeof cache, "%s/cache", dir);
	w = w_start(cache);
	w_ask(w, &r, "have", json_pack("{s:[]}", "blobs"));
	ck_assert_str_eq(r.code, "FAILED");
	ck_assert_str_eq(r.text, "'hello' must be answered before 'have'");
	w_ask(w, &r, "hello", hello_args("{\"chdir\": \"../up\"}"));
	ck_assert_str_eq(r.code, "BAD_PATH");
	w_ask(w, &r, "hello", hello_args("{\"chdir\": \"/nonexistent/x\"}"));
	ck_assert_str_eq(r.code, "FAILED");
	ck_assert_msg(strstr(r.text, "/nonexistent/x") != NULL, "%s", r.text);
	w_ask(w, &r, "hello", hello_args("{\"nice\": 99}"));
	ck_assert_str_eq(r.code, "BAD_ARGUMENT");
	ck_assert_str_eq(r.text, "argument 'nice' must be from -40 to 40");
	w_ask(w, &r, "hello", hello_args("{\"heartbeat\": -1}"));
	ck_assert_str_eq(r.code, "BAD_ARGUMENT");
	ck_assert_str_eq(r.text, "argument 'heartbeat' must be 0 or more");
	/* None of those took: this one does. */
	json_decref(w_hello(w, NULL));
	ck_assert_int_eq(w_finish(w), 0);
}
END_TEST

START_TEST(test_load_and_ship_errors)
{
	char cache[128], hex[SHA256_HEX_LEN + 1], other[SHA256_HEX_LEN + 1];
	struct worker *w;
	struct reply r;
	json_t *files;
	int i;

	snprintf(cache, sizeof cache, "%s/cache", dir);
	sha256_hex("x", 1, hex);
	sha256_hex("y", 1, other);
	w = w_start(cache);
	json_decref(w_hello(w, NULL));
	w_ask(w, &r, "load", json_pack("{s:s, s:s}", "path", "/x.so",
	    "sha256", hex));
	ck_assert_str_eq(r.code, "BAD_ARGUMENT");
	ck_assert_str_eq(r.text, "give 'path', or 'sha256' and 'name'");
	w_ask(w, &r, "load", json_pack("{s:s}", "sha256", hex));
	ck_assert_str_eq(r.code, "BAD_ARGUMENT");
	w_ask(w, &r, "load", json_pack("{s:s, s:s}", "sha256", hex, "name",
	    "a/b.so"));
	ck_assert_str_eq(r.code, "BAD_ARGUMENT");
	ck_assert_str_eq(r.text, "argument 'name' must be a plain file name, "
	    "not 'a/b.so'");
	w_ask(w, &r, "load", json_pack("{s:s, s:s}", "sha256", "ABC", "name",
	    "b.so"));
	ck_assert_str_eq(r.code, "BAD_ARGUMENT");
	w_ask(w, &r, "have", json_pack("{s:[{s:s}]}", "blobs", "sha256", hex));
	ck_assert_str_eq(r.code, "BAD_ARGUMENT");
	ck_assert_msg(strstr(r.text, "blobs[0]") != NULL, "%s", r.text);
	/* Two blobs in, one name: the second is refused. */
	w_blob(w, "x", 1, hex);
	w_blob(w, "y", 1, other);
	w_ask(w, &r, "load", json_pack("{s:s, s:s}", "sha256", hex, "name",
	    "n.so"));
	ck_assert_str_eq(r.code, "NOT_A_SUITE");
	w_ask(w, &r, "load", json_pack("{s:s, s:s}", "sha256", other, "name",
	    "n.so"));
	ck_assert_str_eq(r.code, "FAILED");
	ck_assert_msg(strstr(r.text, "'n.so' already holds another suite") !=
	    NULL, "%s", r.text);
	files = json_array();
	for (i = 0; i <= 1000; i++)
		json_array_append_new(files, json_pack("{s:s, s:s, s:i}",
		    "path", "f", "sha256", hex, "mode", 0644));
	w_ask(w, &r, "ship", json_pack("{s:s, s:o}", "root", "d", "files",
	    files));
	ck_assert_str_eq(r.code, "BAD_ARGUMENT");
	ck_assert_str_eq(r.text, "at most 1000 files per ship, not 1001");
	w_ask(w, &r, "ship", json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "root",
	    "d", "files", "path", "a//b", "sha256", hex, "mode", 0644));
	ck_assert_str_eq(r.code, "BAD_PATH");
	w_ask(w, &r, "ship", json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "root",
	    "d", "files", "path", "f", "sha256", hex, "mode", 070000));
	ck_assert_str_eq(r.code, "BAD_ARGUMENT");
	ck_assert_int_eq(w_finish(w), 0);
}
END_TEST

/* ---- the heartbeat ------------------------------------------------------ */

/* Pings unanswered three times: the worker ends, killing its test, with
 * status 2. */
START_TEST(test_heartbeat_stdio)
{
	char cache[128], env[256], pidfile[300], buf[32];
	struct worker *w;
	struct reply r, run;
	double start;
	pid_t test_pid = 0;
	FILE *f;
	int status;

	snprintf(cache, sizeof cache, "%s/cache", dir);
	snprintf(env, sizeof env, "{\"heartbeat\": 0.1, \"env\": "
	    "{\"DAEMON_TEST_PIDS\": \"%s\"}}", dir);
	w = w_start(cache);
	json_decref(w_hello(w, env));
	{
		char *path;

		xasprintf(&path, "%s/suites/daemon.so", build_dir());
		w_ask(w, &r, "load", json_pack("{s:s}", "path", path));
		free(path);
		reply_clear(&r);
	}
	tu_loop_for(w->base, 0.5);
	ck_assert_int_ge(w->pings, 3);
	w->mute = 1;
	memset(&run, 0, sizeof run);
	amp_ask(w->conn, "run", json_pack("{s:i, s:[i]}", "suite", 0, "tests",
	    3), on_reply, &run);
	snprintf(pidfile, sizeof pidfile, "%s/sleep_long", dir);
	start = clock_mono();
	while (test_pid == 0 && clock_mono() - start < 5) {
		tu_loop_for(w->base, 0.02);
		if ((f = fopen(pidfile, "r")) != NULL) {
			if (fgets(buf, sizeof buf, f) != NULL)
				test_pid = (pid_t)atol(buf);
			fclose(f);
		}
	}
	ck_assert_int_gt(test_pid, 0);
	tu_loop_until(w->base, &w->closed, 5);
	ck_assert(w->closed);
	ck_assert_msg(clock_mono() - start < 2, "took %.1f s",
	    clock_mono() - start);
	status = w_finish(w);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2,
	    "status %#x", status);
	ck_assert_msg(kill(test_pid, 0) == -1 && errno == ESRCH,
	    "the test outlived its worker");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("shipping");
	TCase *tc = tcase_create("stdio");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cache_shared);
	tcase_add_test(tc, test_cache_unusable);
	tcase_add_test(tc, test_chdir_and_nice);
	tcase_add_test(tc, test_hello_farm_errors);
	tcase_add_test(tc, test_load_and_ship_errors);
	tcase_add_test(tc, test_heartbeat_stdio);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

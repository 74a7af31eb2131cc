/*
 * test_daemon.c - distworker --listen as managers and attackers meet it:
 * the real daemon on loopback, over plain TCP and over TLS with
 * certificates that contrib/make-certs.sh makes at test time, and in a
 * network namespace on an address of its own.
 *
 * Managers here are this program, speaking the protocol through the
 * same library distmgr uses. Attackers are raw sockets and hand-made
 * TLS clients. Every refusal is checked three ways: the connection
 * ends, no hello is ever answered, and the daemon's log says it refused
 * and never started a session.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

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
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "testutil.h"

#define ASK_SECONDS	30.0

static char certdir[256];

static const char *
build_dir(void)
{
	const char *b = getenv("DM_BUILD");

	ck_assert_msg(b != NULL, "DM_BUILD unset: run through make check");
	return b;
}

static void
sleep_for(double seconds)
{
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1)
		;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n = 0, size = 4096;

	buf = xmalloc(size);
	if (f != NULL) {
		while (!feof(f) && !ferror(f)) {
			if (size - n < 2048)
				buf = xreallocarray(buf, 2, size), size *= 2;
			n += fread(buf + n, 1, size - n - 1, f);
		}
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* ---- certificates, made once for every test ----------------------------- */

static void
make_certs(void)
{
	char cmd[1024];
	const char *top = getenv("DM_TOP");

	snprintf(certdir, sizeof certdir, "/tmp/dmdcert.XXXXXX");
	if (mkdtemp(certdir) == NULL)
		fatal("mkdtemp");
	snprintf(cmd, sizeof cmd,
	    "set -e; s=%s/contrib/make-certs.sh; d=%s;"
	    "sh $s $d/a ca; sh $s $d/a server srv; sh $s $d/a client cli;"
	    "sh $s $d/b ca; sh $s $d/b client cli", top ? top : ".", certdir);
	if (system(cmd) != 0)
		fatalx("make-certs.sh failed");
}

static void
cleanup_certs(void)
{
	char cmd[512];

	snprintf(cmd, sizeof cmd, "rm -rf %s", certdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", certdir);
}

static void
cert_path(char *buf, size_t len, const char *ca, const char *file)
{
	snprintf(buf, len, "%s/%s/%s", certdir, ca, file);
}

/* ---- the daemon --------------------------------------------------------- */

struct dproc {
	pid_t	 pid;
	char	 dir[64];
	char	 log[128];
	char	 addr[64];
	int	 port;
};

#define DP_TLS		0x1
#define DP_NO_WAIT	0x2	/* do not wait for "listening on" */

/* Starts a daemon on addr (port 0), in its own directory, with --user
 * nobody when we are root; extra ends with NULL. prefix (may be NULL)
 * runs it through another command (ip netns exec NS). */
static void
dp_start_at(struct dproc *dp, int flags, const char *addr,
    const char *const *prefix, const char *const *extra)
{
	char listen[96], cache[128], tmp[128], out[128];
	char cert[300], key[300], ca[300], *bin;
	const char *argv[64];
	double end;
	char *text, *p;
	int n = 0, fd;

	memset(dp, 0, sizeof *dp);
	snprintf(dp->dir, sizeof dp->dir, "/tmp/dmdaemon.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dp->dir));
	chmod(dp->dir, 0777);
	snprintf(dp->log, sizeof dp->log, "%s/log", dp->dir);
	snprintf(cache, sizeof cache, "%s/cache", dp->dir);
	snprintf(tmp, sizeof tmp, "%s/tmp", dp->dir);
	snprintf(out, sizeof out, "%s/out", dp->dir);
	mkdir(cache, 0777);
	mkdir(tmp, 0777);
	chmod(cache, 0777);
	chmod(tmp, 0777);
	snprintf(dp->addr, sizeof dp->addr, "%s", addr);
	snprintf(listen, sizeof listen, "%s:0", addr);
	xasprintf(&bin, "%s/bin/distworker", build_dir());
	while (prefix != NULL && *prefix != NULL)
		argv[n++] = *prefix++;
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--foreground";
	argv[n++] = "--log";
	argv[n++] = dp->log;
	argv[n++] = "--cache-dir";
	argv[n++] = cache;
	if (geteuid() == 0) {
		argv[n++] = "--user";
		argv[n++] = "nobody";
	}
	if (flags & DP_TLS) {
		cert_path(cert, sizeof cert, "a", "srv.pem");
		cert_path(key, sizeof key, "a", "srv.key");
		cert_path(ca, sizeof ca, "a", "ca.pem");
		argv[n++] = "--tls-cert";
		argv[n++] = cert;
		argv[n++] = "--tls-key";
		argv[n++] = key;
		argv[n++] = "--tls-ca";
		argv[n++] = ca;
	}
	while (extra != NULL && *extra != NULL && n < 62)
		argv[n++] = *extra++;
	argv[n] = NULL;
	if ((dp->pid = fork()) == 0) {
		setenv("TMPDIR", tmp, 1);
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644)) != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	free(bin);
	if (flags & DP_NO_WAIT)
		return;
	for (end = clock_mono() + 10; clock_mono() < end; sleep_for(0.02)) {
		text = read_file(dp->log);
		if ((p = strstr(text, "listening on ")) != NULL &&
		    strchr(p, '\n') != NULL) {
			p = strchr(p, '\n');
			while (p > text && p[-1] != ':')
				p--;
			dp->port = atoi(p);
			free(text);
			return;
		}
		free(text);
	}
	text = read_file(out);
	ck_abort_msg("the daemon did not start listening: %s", text);
}

static void
dp_start(struct dproc *dp, int flags, const char *const *extra)
{
	dp_start_at(dp, flags, "127.0.0.1", NULL, extra);
}

static char *
dp_log(const struct dproc *dp)
{
	return read_file(dp->log);
}

static int
dp_log_has(const struct dproc *dp, const char *needle)
{
	char *text = dp_log(dp);
	int yes = strstr(text, needle) != NULL;

	free(text);
	return yes;
}

/* Waits for needle in the log; asserts it came. */
static void
dp_wait_log(const struct dproc *dp, const char *needle, double seconds)
{
	double end = clock_mono() + seconds;
	char *text;

	while (clock_mono() < end) {
		if (dp_log_has(dp, needle))
			return;
		sleep_for(0.02);
	}
	text = dp_log(dp);
	ck_abort_msg("'%s' not in the daemon's log:\n%s", needle, text);
}

static int
count_in(const char *text, const char *needle)
{
	int n = 0;

	while ((text = strstr(text, needle)) != NULL) {
		n++;
		text += strlen(needle);
	}
	return n;
}

/* Waits up to seconds for the daemon to exit; its wait status, or -1. */
static int
dp_wait(struct dproc *dp, double seconds)
{
	double end = clock_mono() + seconds;
	int status;

	while (clock_mono() < end) {
		if (waitpid(dp->pid, &status, WNOHANG) == dp->pid) {
			dp->pid = 0;
			return status;
		}
		sleep_for(0.02);
	}
	return -1;
}

/* Under the sanitizers, a session's or the daemon's report lands in the
 * log or in the daemon's stderr: either fails the test. */
static void
dp_rmdir(struct dproc *dp)
{
	char cmd[128], out[128], *text;
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(out, sizeof out, "%s/%s", dp->dir, i ? "out" : "log");
		text = read_file(out);
		ck_assert_msg(strstr(text, "Sanitizer") == NULL &&
		    strstr(text, "runtime error") == NULL, "%s: %s", out, text);
		free(text);
	}

	snprintf(cmd, sizeof cmd, "rm -rf %s", dp->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dp->dir);
}

/* SIGTERM, and it must exit 0. */
static void
dp_stop(struct dproc *dp)
{
	int status;

	kill(dp->pid, SIGTERM);
	status = dp_wait(dp, 40);
	if (status == -1) {
		kill(dp->pid, SIGKILL);
		waitpid(dp->pid, &status, 0);
		ck_abort_msg("the daemon did not stop on SIGTERM");
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the daemon ended with status %#x", status);
	dp_rmdir(dp);
}

/* ---- a manager ---------------------------------------------------------- */

struct mgr {
	struct event_base	*base;
	struct amp_conn		*conn;
	struct ssl_ctx_st	*ctx;
	int			 closed;
	char			 reason[256];
	json_t			*results;	/* "suite:test" -> box */
	json_t			*outputs;	/* "suite:test:stream" -> text */
	size_t			 listed;
	int			 pings;
	int			 mute;		/* leave pings unanswered */
	struct amp_request	*held[256];
	int			 nheld;
};

struct reply {
	int	 done;
	json_t	*answer;
	char	 code[64];
	char	 text[2048];
};

static struct mgr *
m_of(struct amp_request *req)
{
	return amp_conn_ctx(amp_request_conn(req));
}

static int
h_suite_tests(struct amp_request *req, json_t *box)
{
	m_of(req)->listed += json_array_size(json_object_get(box, "tests"));
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
h_test_output(struct amp_request *req, json_t *box)
{
	struct mgr *m = m_of(req);
	char key[128], *text;
	json_t *prev;

	snprintf(key, sizeof key, "%lld:%lld:%s",
	    json_get_int(box, "suite", -1), json_get_int(box, "test", -1),
	    json_get_str(box, "stream", "?"));
	prev = json_object_get(m->outputs, key);
	xasprintf(&text, "%s%s", prev != NULL ? json_string_value(prev) : "",
	    json_get_str(box, "data", ""));
	json_object_set_new(m->outputs, key, json_string(text));
	free(text);
	return 0;
}

static int
h_test_result(struct amp_request *req, json_t *box)
{
	char key[64];

	snprintf(key, sizeof key, "%lld:%lld", json_get_int(box, "suite", -1),
	    json_get_int(box, "test", -1));
	json_object_set(m_of(req)->results, key, box);
	return 0;
}

static int
h_ping(struct amp_request *req, json_t *box)
{
	struct mgr *m = m_of(req);

	(void)box;
	m->pings++;
	if (m->mute && m->nheld < (int)DM_NELEM(m->held)) {
		m->held[m->nheld++] = req;
		return 0;
	}
	amp_answer(req, json_pack("{s:f}", "time", clock_mono()));
	return 0;
}

static const struct amp_command mgr_table[] = {
	{ "suite_tests", h_suite_tests, NULL },
	{ "test_started", h_ignore, NULL },
	{ "test_output", h_test_output, NULL },
	{ "test_result", h_test_result, NULL },
	{ "log", h_ignore, NULL },
	{ "ping", h_ping, NULL },
	{ NULL, NULL, NULL }
};

static void
m_on_close(struct amp_conn *c, const char *reason, void *ctx)
{
	struct mgr *m = ctx;

	(void)c;
	m->closed = 1;
	m->conn = NULL;
	snprintf(m->reason, sizeof m->reason, "%s", reason);
}

static const struct amp_conn_cbs mgr_cbs = { m_on_close, NULL };

static struct ssl_ctx_st *
client_ctx(const char *ca_dir, const char *cert_dir)
{
	char ca[300], cert[300], key[300], why[300];
	struct tls_files f = { ca, cert, key };
	struct ssl_ctx_st *ctx;

	cert_path(ca, sizeof ca, ca_dir, "ca.pem");
	cert_path(cert, sizeof cert, cert_dir, "cli.pem");
	cert_path(key, sizeof key, cert_dir, "cli.key");
	ctx = tls_client_ctx(&f, why, sizeof why);
	ck_assert_msg(ctx != NULL, "%s", why);
	return ctx;
}

static int
tcp_connect(const char *addr, int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, addr, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct mgr *
m_connect(const struct dproc *dp, int tls)
{
	struct mgr *m = xcalloc(1, sizeof *m);
	struct bufferevent *bev;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	m->base = event_base_new();
	m->results = json_object();
	m->outputs = json_object();
	fd = tcp_connect(dp->addr, dp->port);
	ck_assert_msg(fd >= 0, "cannot connect to the daemon: %s",
	    strerror(errno));
	evutil_make_socket_nonblocking(fd);
	if (tls) {
		m->ctx = client_ctx("a", "a");
		bev = tls_connect(m->base, m->ctx, fd, dp->addr);
	} else
		bev = bufferevent_socket_new(m->base, fd, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(bev);
	m->conn = amp_conn_new(bev, mgr_table, &mgr_cbs, m);
	return m;
}

static void
m_free(struct mgr *m)
{
	int i;

	for (i = 0; i < m->nheld; i++)
		amp_request_drop(m->held[i]);
	if (m->conn != NULL)
		amp_conn_close(m->conn, "test over", 0);
	tu_loop_for(m->base, 0.01);
	json_decref(m->results);
	json_decref(m->outputs);
	event_base_free(m->base);
	if (m->ctx != NULL)
		tls_ctx_free(m->ctx);
	free(m);
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
m_ask_start(struct mgr *m, struct reply *r, const char *cmd, json_t *args)
{
	memset(r, 0, sizeof *r);
	ck_assert_msg(m->conn != NULL, "asking %s on a closed connection: %s",
	    cmd, m->reason);
	amp_ask(m->conn, cmd, args, on_reply, r);
}

static void
m_ask(struct mgr *m, struct reply *r, const char *cmd, json_t *args)
{
	m_ask_start(m, r, cmd, args);
	tu_loop_until(m->base, &r->done, ASK_SECONDS);
	ck_assert_msg(r->done, "no reply to %s", cmd);
}

static json_t *
hello_args(const char *run_id, const char *extra)
{
	json_t *a = json_pack("{s:i, s:s, s:s, s:s, s:i}", "protocol", 1,
	    "manager", "test_daemon", "run_id", run_id, "worker_id", "w0",
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
m_hello(struct mgr *m, const char *run_id, const char *extra)
{
	struct reply r;

	m_ask(m, &r, "hello", hello_args(run_id, extra));
	ck_assert_msg(r.answer != NULL, "hello failed: %s %s", r.code, r.text);
	amp_conn_set_limit(m->conn, FRAME_LIMIT_DEFAULT);
	return r.answer;
}

static char *
suite_file(const char *name)
{
	char *p;

	xasprintf(&p, "%s/suites/%s.so", build_dir(), name);
	return p;
}

/* Loads by path; the handle. */
static int
m_load(struct mgr *m, const char *name)
{
	struct reply r;
	char *path = suite_file(name);
	int h;

	m_ask(m, &r, "load", json_pack("{s:s}", "path", path));
	free(path);
	ck_assert_msg(r.answer != NULL, "load failed: %s %s", r.code, r.text);
	h = (int)json_get_int(r.answer, "suite", -1);
	json_decref(r.answer);
	return h;
}

/* Runs tests (indices, -1 ended) of handle; asserts the answer. */
static void
m_run(struct mgr *m, int handle, const int *tests)
{
	json_t *t = json_array();
	struct reply r;

	for (; *tests >= 0; tests++)
		json_array_append_new(t, json_integer(*tests));
	m_ask(m, &r, "run", json_pack("{s:i, s:o}", "suite", handle, "tests",
	    t));
	ck_assert_msg(r.answer != NULL, "run failed: %s %s", r.code, r.text);
	json_decref(r.answer);
}

static const char *
m_outcome(struct mgr *m, int handle, int test)
{
	char key[64];

	snprintf(key, sizeof key, "%d:%d", handle, test);
	return json_get_str(json_object_get(m->results, key), "outcome",
	    "(none)");
}

/* The indices in the daemon suite's list (by file order). */
enum { T_PASS, T_SECOND, T_SLEEP1, T_SLEEP_LONG, T_READS_SHIPPED, T_CRASH,
	T_COUNT };

/* ---- blobs -------------------------------------------------------------- */

static void
m_send_blob(struct mgr *m, const void *data, size_t len, const char *hex)
{
	json_t *extra = json_pack("{s:I}", "size", (json_int_t)len);

	ck_assert_int_eq(stream_send(m->conn, "blob", hex, data, len, 1, 0,
	    extra), 0);
	json_decref(extra);
}

static unsigned char *
file_bytes(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = xmalloc((size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static json_t *
m_have(struct mgr *m, const char *hex, size_t size)
{
	struct reply r;

	m_ask(m, &r, "have", json_pack("{s:[{s:s, s:I}]}", "blobs", "sha256",
	    hex, "size", (json_int_t)size));
	ck_assert_msg(r.answer != NULL, "have failed: %s %s", r.code, r.text);
	return r.answer;
}

/* ---- runs --------------------------------------------------------------- */

START_TEST(test_plain_run)
{
	struct dproc dp;
	struct mgr *m;
	json_t *a;
	struct reply r;
	int h, tests[] = { T_PASS, T_SECOND, -1 };
	char *log;

	dp_start(&dp, 0, (const char *const[]){ "-j", "2", NULL });
	m = m_connect(&dp, 0);
	a = m_hello(m, "run-1", NULL);
	ck_assert_int_ne(json_get_int(a, "pid", 0), dp.pid);
	ck_assert(json_is_true(json_object_get(a, "cache")));
	ck_assert_msg(strstr(json_get_str(a, "session", ""), dp.dir) ==
	    json_get_str(a, "session", ""), "session %s not under %s",
	    json_get_str(a, "session", ""), dp.dir);
	json_decref(a);
	h = m_load(m, "daemon");
	ck_assert_int_eq(m->listed, T_COUNT);
	m_run(m, h, tests);
	ck_assert_str_eq(m_outcome(m, h, T_PASS), "pass");
	ck_assert_str_eq(m_outcome(m, h, T_SECOND), "pass");
	m_ask(m, &r, "shutdown", NULL);
	ck_assert_ptr_nonnull(r.answer);
	json_decref(r.answer);
	tu_loop_until(m->base, &m->closed, 10);
	ck_assert(m->closed);
	dp_wait_log(&dp, "ended (exit 0)", 10);
	log = dp_log(&dp);
	ck_assert_msg(strstr(log, "session") != NULL && strstr(log,
	    "started for run 'run-1'") != NULL, "%s", log);
	free(log);
	m_free(m);
	dp_stop(&dp);
}
END_TEST

/* A suite shipped by content over TLS; a second session of the same
 * daemon has it and needs no blob. */
START_TEST(test_tls_run_shipped)
{
	struct dproc dp;
	struct mgr *m;
	struct reply r;
	json_t *a;
	unsigned char *so;
	char hex[SHA256_HEX_LEN + 1], *path = suite_file("daemon");
	size_t len;
	int tests[] = { T_PASS, -1 }, round;
	uint64_t out_before, out_after;

	so = file_bytes(path, &len);
	sha256_hex(so, len, hex);
	dp_start(&dp, DP_TLS, NULL);
	for (round = 0; round < 2; round++) {
		m = m_connect(&dp, 1);
		json_decref(m_hello(m, "run-tls", NULL));
		a = m_have(m, hex, len);
		ck_assert_int_eq(json_array_size(json_object_get(a, "missing")),
		    round == 0 ? 1 : 0);
		json_decref(a);
		amp_conn_counters(m->conn, NULL, NULL, NULL, &out_before);
		if (round == 0)
			m_send_blob(m, so, len, hex);
		m_ask(m, &r, "load", json_pack("{s:s, s:s}", "sha256", hex,
		    "name", "daemon.so"));
		ck_assert_msg(r.answer != NULL, "load: %s %s", r.code, r.text);
		amp_conn_counters(m->conn, NULL, NULL, NULL, &out_after);
		if (round == 1)
			ck_assert_msg(out_after - out_before < 1024, "the second "
			    "load sent %llu bytes", (unsigned long long)
			    (out_after - out_before));
		else
			ck_assert_uint_gt(out_after - out_before, len);
		m_run(m, (int)json_get_int(r.answer, "suite", -1), tests);
		ck_assert_str_eq(m_outcome(m, 0, T_PASS), "pass");
		json_decref(r.answer);
		m_free(m);
	}
	ck_assert(dp_log_has(&dp, "authenticated as 'cli'"));
	free(so);
	free(path);
	dp_stop(&dp);
}
END_TEST

/* In-process over TLS: results go out through the bufferevent alone;
 * a test that crashes takes its session down without a stray byte on
 * the stream, and the slot is free again. */
START_TEST(test_tls_inproc)
{
	struct dproc dp;
	struct mgr *m;
	struct reply r;
	int h, tests[] = { T_PASS, T_SECOND, -1 };

	dp_start(&dp, DP_TLS, (const char *const[]){ "-j", "1", NULL });
	m = m_connect(&dp, 1);
	json_decref(m_hello(m, "inproc", "{\"boxed\": false}"));
	h = m_load(m, "daemon");
	m_run(m, h, tests);
	ck_assert_str_eq(m_outcome(m, h, T_PASS), "pass");
	ck_assert_str_eq(m_outcome(m, h, T_SECOND), "pass");
	m_ask(m, &r, "run", json_pack("{s:i, s:[i]}", "suite", h, "tests",
	    T_CRASH));
	ck_assert_str_eq(r.code, "CONNECTION_LOST");
	ck_assert_msg(strstr(m->reason, "broken frame") == NULL, "%s",
	    m->reason);
	/* Under AddressSanitizer the session reports the crash (into the
	 * test's captured output) and exits 1. */
	dp_wait_log(&dp, ") after ", 10);
	ck_assert(dp_log_has(&dp, "ended (killed by signal 11)") ||
	    dp_log_has(&dp, "ended (exit 1)"));
	m_free(m);
	m = m_connect(&dp, 1);
	json_decref(m_hello(m, "after-crash", NULL));
	m_free(m);
	dp_stop(&dp);
}
END_TEST

/* ---- refusals before authentication ------------------------------------- */

enum attack { A_NO_CERT, A_OTHER_CA, A_TLS10, A_PLAIN, A_COUNT };
static const char *const attack_names[A_COUNT] = {
	"a client without a certificate", "a client from another CA",
	"a TLS 1.0 client", "a plain TCP client"
};

static const char hello_json[] = "{\"_command\":\"hello\",\"_ask\":\"1\","
    "\"protocol\":1,\"manager\":\"evil\",\"run_id\":\"evil\","
    "\"worker_id\":\"w0\",\"worker_count\":1}";

static SSL_CTX *
attacker_ctx(enum attack a)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	char ca[300], cert[300], key[300];

	cert_path(ca, sizeof ca, "a", "ca.pem");
	SSL_CTX_load_verify_locations(c, ca, NULL);
	if (a == A_OTHER_CA) {
		cert_path(cert, sizeof cert, "b", "cli.pem");
		cert_path(key, sizeof key, "b", "cli.key");
		SSL_CTX_use_certificate_chain_file(c, cert);
		SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM);
	}
	if (a == A_TLS10) {
		cert_path(cert, sizeof cert, "a", "cli.pem");
		cert_path(key, sizeof key, "a", "cli.key");
		SSL_CTX_use_certificate_chain_file(c, cert);
		SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM);
		SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(c, TLS1_VERSION);
		SSL_CTX_set_security_level(c, 0);
	}
	return c;
}

/* Connects as the attacker, sends a hello, and reads what comes back
 * until the daemon closes (or 10 s pass). Returns the bytes read (in
 * plain text when the handshake got that far), -1 if never closed. */
static long
attack(const struct dproc *dp, enum attack a, char *got, size_t len)
{
	struct timeval tv = { 10, 0 };
	unsigned char frame[512];
	size_t flen = tu_frame_bytes(hello_json, frame, sizeof frame);
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	long total = 0, n;
	int fd = tcp_connect(dp->addr, dp->port);

	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (a != A_PLAIN) {
		ctx = attacker_ctx(a);
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		/* Under TLS 1.3 the client is done before the server has
		 * looked at its certificate: the refusal comes after. */
		if (SSL_connect(ssl) == 1)
			SSL_write(ssl, frame, (int)flen);
	} else
		(void)!write(fd, frame, flen);
	for (;;) {
		n = ssl != NULL ? SSL_read(ssl, got + total, (int)(len -
		    (size_t)total - 1)) : read(fd, got + total, len -
		    (size_t)total - 1);
		if (n <= 0)
			break;
		total += n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		total = -1;
	got[total > 0 ? total : 0] = '\0';
	if (ssl != NULL)
		SSL_free(ssl);
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	ERR_clear_error();
	close(fd);
	return total;
}

START_TEST(test_refused_before_auth)
{
	enum attack a = (enum attack)_i;
	struct dproc dp;
	struct mgr *m;
	char got[4096], *log;
	long n;

	dp_start(&dp, DP_TLS, NULL);
	n = attack(&dp, a, got, sizeof got);
	ck_assert_msg(n >= 0, "%s: the daemon did not close the connection",
	    attack_names[a]);
	ck_assert_msg(strstr(got, "_answer") == NULL, "%s got an answer: %s",
	    attack_names[a], got);
	dp_wait_log(&dp, "refused", 5);
	/* The daemon is none the worse: a manager gets its answer. */
	m = m_connect(&dp, 1);
	json_decref(m_hello(m, "good", NULL));
	m_free(m);
	log = dp_log(&dp);
	ck_assert_msg(count_in(log, "started for run") == 1, "%s: %s",
	    attack_names[a], log);
	ck_assert_msg(strstr(log, "run 'evil'") == NULL, "%s", log);
	ck_assert_msg(count_in(log, "authenticated as") == 1, "%s", log);
	free(log);
	dp_stop(&dp);
}
END_TEST

/* The first frame is over the limit before the peer is trusted: closed
 * before a byte of it is read, and the daemon serves the next. */
START_TEST(test_preauth_frame_limit)
{
	struct dproc dp;
	struct mgr *m;
	unsigned char hdr[4] = { 0, 1, 0x86, 0xa0 };	/* 100000 */
	char got[64];
	int fd;
	struct timeval tv = { 10, 0 };

	dp_start(&dp, 0, NULL);
	fd = tcp_connect(dp.addr, dp.port);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	ck_assert_int_eq(write(fd, hdr, 4), 4);
	ck_assert_int_eq(read(fd, got, sizeof got), 0);
	close(fd);
	dp_wait_log(&dp, "refused: a first frame of 100000 bytes (the limit "
	    "is 65536)", 5);
	/* A first frame that is not a hello is refused too. */
	fd = tcp_connect(dp.addr, dp.port);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	{
		unsigned char f[128];
		size_t n = tu_frame_bytes("{\"_command\":\"load\",\"_ask\":\"1\","
		    "\"path\":\"/x.so\"}", f, sizeof f);

		ck_assert_int_eq(write(fd, f, n), (ssize_t)n);
	}
	ck_assert_int_eq(read(fd, got, sizeof got), 0);
	close(fd);
	dp_wait_log(&dp, "refused: the first frame is not a hello ask", 5);
	m = m_connect(&dp, 0);
	json_decref(m_hello(m, "good", NULL));
	m_free(m);
	dp_stop(&dp);
}
END_TEST

/* A slow sender (a byte every 300 ms) is cut at the deadline, whether
 * in the TLS handshake or before its hello; meanwhile others are
 * served. */
START_TEST(test_slowloris)
{
	int tls = _i;
	struct dproc dp;
	struct mgr *m;
	unsigned char frame[512];
	size_t flen = tu_frame_bytes(hello_json, frame, sizeof frame), i;
	double start, took = 0;
	int fd;

	dp_start(&dp, tls ? DP_TLS : 0, (const char *const[]){
	    "--handshake-timeout", "1", NULL });
	fd = tcp_connect(dp.addr, dp.port);
	start = clock_mono();
	m = m_connect(&dp, tls);
	json_decref(m_hello(m, "good", NULL));
	for (i = 0; i < flen && i < 20; i++) {
		if (write(fd, frame + i, 1) != 1) {
			took = clock_mono() - start;
			break;
		}
		sleep_for(0.3);
	}
	ck_assert_msg(took > 0.8 && took < 3.5, "the slow sender was cut "
	    "after %.2f s", took);
	dp_wait_log(&dp, tls ? "refused: no TLS handshake within 1 s" :
	    "refused: no hello within 1 s", 5);
	close(fd);
	m_free(m);
	dp_stop(&dp);
}
END_TEST

/* More connections than the cap on unauthenticated ones, all idle: the
 * oldest are dropped to make room, and a manager gets through. */
START_TEST(test_flood)
{
	struct dproc dp;
	struct mgr *m;
	int fds[40], i, closed = 0;
	char c;
	char *log;

	dp_start(&dp, DP_TLS, (const char *const[]){ "--max-unauth", "8",
	    NULL });
	for (i = 0; i < 40; i++)
		ck_assert_int_ge(fds[i] = tcp_connect(dp.addr, dp.port), 0);
	m = m_connect(&dp, 1);
	json_decref(m_hello(m, "good", NULL));
	m_free(m);
	for (i = 0; i < 40; i++) {
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
		if (read(fds[i], &c, 1) == 0)
			closed++;
		close(fds[i]);
	}
	ck_assert_int_ge(closed, 32);
	log = dp_log(&dp);
	ck_assert_msg(strstr(log, "8 connections are not authenticated yet")
	    != NULL, "%s", log);
	free(log);
	dp_stop(&dp);
}
END_TEST

static double
cpu_seconds(pid_t pid)
{
	char path[64], *text, *p;
	unsigned long ut = 0, st = 0;
	int i;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	text = read_file(path);
	p = strrchr(text, ')');
	for (i = 0; p != NULL && i < 12; i++)
		p = strchr(p + 1, ' ');
	if (p != NULL)
		sscanf(p, " %lu %lu", &ut, &st);
	free(text);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Out of descriptors: accepting pauses on a timer instead of spinning,
 * and resumes once descriptors are free again. */
START_TEST(test_emfile_pauses)
{
	struct dproc dp;
	struct rlimit rl, old;
	struct mgr *m;
	int fds[80], i;
	double cpu;

	getrlimit(RLIMIT_NOFILE, &old);
	rl.rlim_cur = 48;
	rl.rlim_max = old.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);	/* inherited by the daemon */
	dp_start(&dp, 0, (const char *const[]){ "--max-unauth", "1000",
	    "--handshake-timeout", "30", NULL });
	setrlimit(RLIMIT_NOFILE, &old);
	for (i = 0; i < 80; i++)
		fds[i] = tcp_connect(dp.addr, dp.port);
	dp_wait_log(&dp, "accept: Too many open files: not accepting for 0.5 "
	    "s", 5);
	cpu = cpu_seconds(dp.pid);
	sleep_for(1.5);
	cpu = cpu_seconds(dp.pid) - cpu;
	ck_assert_msg(cpu < 0.3, "the daemon used %.2f s of CPU in 1.5 s "
	    "without descriptors", cpu);
	for (i = 0; i < 80; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	m = m_connect(&dp, 0);
	json_decref(m_hello(m, "good", NULL));
	m_free(m);
	dp_stop(&dp);
}
END_TEST

/* ---- slots -------------------------------------------------------------- */

struct waiting {
	struct mgr	*m;
	struct reply	 r;
};

static void
hello_start(struct waiting *w, const struct dproc *dp, const char *run)
{
	w->m = m_connect(dp, 0);
	m_ask_start(w->m, &w->r, "hello", hello_args(run, NULL));
	/* Sends it: nothing goes out but from the loop. */
	event_base_loop(w->m->base, EVLOOP_NONBLOCK);
}

/* Loops every manager a while; returns the index of one whose hello was
 * answered since the last call (-1 if none). */
static int
answered(struct waiting *ws, int n, double seconds)
{
	double end = clock_mono() + seconds;
	int i;

	while (clock_mono() < end) {
		for (i = 0; i < n; i++) {
			if (ws[i].m == NULL)
				continue;
			event_base_loop(ws[i].m->base, EVLOOP_NONBLOCK);
			if (ws[i].r.done == 1) {
				ws[i].r.done = 2;
				return i;
			}
		}
		sleep_for(0.01);
	}
	return -1;
}

static void
release(struct waiting *w)
{
	json_decref(w->r.answer);
	m_free(w->m);
	w->m = NULL;
}

/* Two slots; manager A fills them and waits with a third; B waits with
 * two. As sessions end, the freed slots go to B, then A, then B: the run
 * holding fewer slots first, round-robin among equals. */
START_TEST(test_fair_slots)
{
	struct dproc dp;
	struct waiting w[5];
	int a1, a2, who;

	memset(w, 0, sizeof w);
	dp_start(&dp, 0, (const char *const[]){ "-j", "2", NULL });
	hello_start(&w[0], &dp, "A");
	hello_start(&w[1], &dp, "A");
	a1 = answered(w, 2, 10);
	ck_assert_int_ge(a1, 0);
	a2 = answered(w, 2, 10);
	ck_assert_int_eq(a2, 1 - a1);
	hello_start(&w[2], &dp, "A");
	dp_wait_log(&dp, "waits, with 0 others", 5);
	hello_start(&w[3], &dp, "B");
	dp_wait_log(&dp, "waits, with 1 others", 5);
	hello_start(&w[4], &dp, "B");
	dp_wait_log(&dp, "waits, with 2 others", 5);
	ck_assert_int_eq(answered(&w[2], 3, 0.5), -1);

	release(&w[a1]);
	who = answered(&w[2], 3, 10);
	ck_assert_msg(who == 1, "the first free slot went to %d, not B", who);
	release(&w[a2]);
	who = answered(&w[2], 3, 10);
	ck_assert_msg(who == 0, "the second free slot went to %d, not A", who);
	release(&w[3]);
	who = answered(&w[2], 3, 10);
	ck_assert_msg(who == 2, "the third free slot went to %d, not B", who);
	release(&w[2]);
	release(&w[4]);
	dp_stop(&dp);
}
END_TEST

/* A manager that stops answering the worker's pings loses its session
 * (and its running test) after three heartbeats; the slot is free for
 * the next manager. One that answers keeps it. */
START_TEST(test_heartbeat)
{
	struct dproc dp;
	struct waiting next;
	struct mgr *m;
	struct reply r;
	int h, tests[] = { T_SLEEP_LONG, -1 };
	double start;

	memset(&next, 0, sizeof next);
	dp_start(&dp, 0, (const char *const[]){ "-j", "1", NULL });
	m = m_connect(&dp, 0);
	json_decref(m_hello(m, "hb", "{\"heartbeat\": 0.2}"));
	h = m_load(m, "daemon");
	tu_loop_for(m->base, 1.0);
	ck_assert_msg(m->pings >= 3, "%d pings in 1 s", m->pings);
	ck_assert(!m->closed);
	hello_start(&next, &dp, "next");
	m->mute = 1;
	start = clock_mono();
	m_ask_start(m, &r, "run", json_pack("{s:i, s:[i]}", "suite", h,
	    "tests", tests[0]));
	tu_loop_until(m->base, &m->closed, 10);
	ck_assert_msg(m->closed, "the session did not end");
	ck_assert_msg(clock_mono() - start < 3, "it took %.1f s",
	    clock_mono() - start);
	ck_assert_int_eq(answered(&next, 1, 10), 0);
	dp_wait_log(&dp, "answered none of 3 pings in 0.6 s", 5);
	release(&next);
	m_free(m);
	dp_stop(&dp);
}
END_TEST

/* ---- signals ------------------------------------------------------------ */

/* SIGTERM: no new connections; the running test finishes and its result
 * arrives; then the daemon exits 0. */
START_TEST(test_sigterm_grace)
{
	struct dproc dp;
	struct mgr *m;
	struct reply r;
	int h, status, tests[] = { T_SLEEP1, T_PASS, -1 };

	dp_start(&dp, 0, (const char *const[]){ "--grace", "20", NULL });
	m = m_connect(&dp, 0);
	json_decref(m_hello(m, "term", NULL));
	h = m_load(m, "daemon");
	m_ask_start(m, &r, "run", json_pack("{s:i, s:[i, i]}", "suite", h,
	    "tests", tests[0], tests[1]));
	tu_loop_for(m->base, 0.3);
	kill(dp.pid, SIGTERM);
	dp_wait_log(&dp, "stopping", 5);
	ck_assert_int_lt(tcp_connect(dp.addr, dp.port), 0);
	tu_loop_until(m->base, &m->closed, 10);
	ck_assert(m->closed);
	ck_assert_str_eq(m_outcome(m, h, T_SLEEP1), "pass");
	/* The batch's next test was not started: the manager gives it to
	 * another worker. */
	ck_assert_str_eq(m_outcome(m, h, T_PASS), "(none)");
	ck_assert_str_eq(r.code, "CONNECTION_LOST");
	status = dp_wait(&dp, 10);
	ck_assert_msg(status != -1 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "status %#x", status);
	ck_assert(dp_log_has(&dp, "every session has ended"));
	m_free(m);
	dp_rmdir(&dp);
}
END_TEST

/* A test that outlives the grace time is killed, and the daemon exits
 * 0 soon after. */
START_TEST(test_sigterm_kills_after_grace)
{
	struct dproc dp;
	struct mgr *m;
	struct reply r;
	char env[300], pidfile[300], *text;
	int h, status, tests[] = { T_SLEEP_LONG, -1 };
	double start;
	pid_t test_pid;

	dp_start(&dp, 0, (const char *const[]){ "--grace", "1", NULL });
	snprintf(env, sizeof env, "{\"env\": {\"DAEMON_TEST_PIDS\": \"%s\"}}",
	    dp.dir);
	m = m_connect(&dp, 0);
	json_decref(m_hello(m, "grace", env));
	h = m_load(m, "daemon");
	m_ask_start(m, &r, "run", json_pack("{s:i, s:[i]}", "suite", h,
	    "tests", tests[0]));
	snprintf(pidfile, sizeof pidfile, "%s/sleep_long", dp.dir);
	for (start = clock_mono(); access(pidfile, F_OK) != 0 &&
	    clock_mono() - start < 10;)
		tu_loop_for(m->base, 0.05);
	text = read_file(pidfile);
	test_pid = (pid_t)atol(text);
	free(text);
	ck_assert_int_gt(test_pid, 0);
	start = clock_mono();
	kill(dp.pid, SIGTERM);
	status = dp_wait(&dp, 10);
	ck_assert_msg(status != -1 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "status %#x", status);
	ck_assert_msg(clock_mono() - start < 5, "took %.1f s",
	    clock_mono() - start);
	ck_assert_msg(kill(test_pid, 0) == -1 && errno == ESRCH,
	    "the test %ld outlived the daemon", (long)test_pid);
	ck_assert(dp_log_has(&dp, "the grace time of 1 s is over"));
	tu_loop_until(m->base, &m->closed, 5);
	ck_assert(m->closed);
	m_free(m);
	dp_rmdir(&dp);
}
END_TEST

/* SIGHUP reopens the log: after logrotate moved it, new lines go to a
 * new file of the same name. */
START_TEST(test_sighup_reopens_log)
{
	struct dproc dp;
	struct mgr *m;
	char old[160];
	char *text;

	dp_start(&dp, 0, NULL);
	snprintf(old, sizeof old, "%s.1", dp.log);
	ck_assert_int_eq(rename(dp.log, old), 0);
	kill(dp.pid, SIGHUP);
	dp_wait_log(&dp, "SIGHUP: log reopened", 5);
	m = m_connect(&dp, 0);
	json_decref(m_hello(m, "after-hup", NULL));
	m_free(m);
	dp_wait_log(&dp, "started for run 'after-hup'", 5);
	text = read_file(old);
	ck_assert_msg(strstr(text, "listening on") != NULL &&
	    strstr(text, "after-hup") == NULL, "%s", text);
	free(text);
	dp_stop(&dp);
}
END_TEST

/* ---- shipping ----------------------------------------------------------- */

START_TEST(test_ship_and_chdir)
{
	struct dproc dp;
	struct mgr *m;
	struct reply r;
	const char content[] = "shipped\n";
	char hex[SHA256_HEX_LEN + 1], path[512], *text;
	json_t *a;
	struct stat st;
	int h, tests[] = { T_READS_SHIPPED, -1 };

	sha256_hex(content, strlen(content), hex);
	dp_start(&dp, 0, NULL);
	m = m_connect(&dp, 0);
	a = m_hello(m, "ship", "{\"chdir\": \"data\"}");
	m_send_blob(m, content, strlen(content), hex);
	m_ask(m, &r, "ship", json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "root",
	    "data", "files", "path", "hello.txt", "sha256", hex, "mode",
	    0640));
	ck_assert_msg(r.answer != NULL, "ship: %s %s", r.code, r.text);
	ck_assert_int_eq(json_get_int(r.answer, "files", -1), 1);
	ck_assert_int_eq(json_get_int(r.answer, "bytes", -1), 8);
	json_decref(r.answer);
	snprintf(path, sizeof path, "%s/data/hello.txt",
	    json_get_str(a, "session", ""));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	h = m_load(m, "daemon");
	m_run(m, h, tests);
	ck_assert_str_eq(m_outcome(m, h, T_READS_SHIPPED), "pass");
	text = xstrdup(json_get_str(m->outputs, "0:4:stdout", ""));
	snprintf(path, sizeof path, "cwd %s/data\n",
	    json_get_str(a, "session", ""));
	ck_assert_str_eq(text, path);
	free(text);
	json_decref(a);
	m_free(m);
	dp_stop(&dp);
}
END_TEST

START_TEST(test_ship_refusals)
{
	struct dproc dp;
	struct mgr *m;
	struct reply r;
	const char good[] = "good bytes\n", bad[] = "evil bytes\n";
	char hex[SHA256_HEX_LEN + 1], badhex[SHA256_HEX_LEN + 1];
	char path[512], want[512], other[SHA256_HEX_LEN + 1];
	json_t *a;

	sha256_hex(good, strlen(good), hex);
	sha256_hex(bad, strlen(bad), badhex);
	memset(other, 'a', SHA256_HEX_LEN);
	other[SHA256_HEX_LEN] = '\0';
	dp_start(&dp, 0, NULL);
	m = m_connect(&dp, 0);
	a = m_hello(m, "refuse", NULL);

	/* A blob we never sent. */
	m_ask(m, &r, "load", json_pack("{s:s, s:s}", "sha256", other, "name",
	    "x.so"));
	ck_assert_str_eq(r.code, "NEED_BLOB");
	/* Bytes that do not hash to the name they came under. */
	m_send_blob(m, bad, strlen(bad), hex);
	m_ask(m, &r, "load", json_pack("{s:s, s:s}", "sha256", hex, "name",
	    "x.so"));
	ck_assert_str_eq(r.code, "BLOB_CORRUPT");
	ck_assert_msg(strstr(r.text, hex) != NULL && strstr(r.text, badhex)
	    != NULL, "both hashes not named: %s", r.text);
	m_ask(m, &r, "ship", json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "root",
	    "d", "files", "path", "f", "sha256", hex, "mode", 0644));
	ck_assert_str_eq(r.code, "BLOB_CORRUPT");
	/* Paths that leave the session directory. */
	m_send_blob(m, good, strlen(good), hex);
	m_ask(m, &r, "ship", json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "root",
	    "d", "files", "path", "../../escape", "sha256", hex, "mode",
	    0644));
	ck_assert_str_eq(r.code, "BAD_PATH");
	ck_assert_msg(strstr(r.text, "'..'") != NULL, "%s", r.text);
	m_ask(m, &r, "ship", json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "root",
	    "/tmp", "files", "path", "escape", "sha256", hex, "mode", 0644));
	ck_assert_str_eq(r.code, "BAD_PATH");
	ck_assert_msg(strstr(r.text, "absolute") != NULL, "%s", r.text);
	m_ask(m, &r, "ship", json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "root",
	    "d", "files", "path", "/etc/escape", "sha256", hex, "mode",
	    0644));
	ck_assert_str_eq(r.code, "BAD_PATH");
	/* A symbolic link in the session directory is never followed. */
	snprintf(path, sizeof path, "%s/link", json_get_str(a, "session", ""));
	ck_assert_int_eq(symlink(dp.dir, path), 0);
	m_ask(m, &r, "ship", json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "root",
	    "link", "files", "path", "escape", "sha256", hex, "mode", 0644));
	ck_assert_str_eq(r.code, "BAD_PATH");
	ck_assert_msg(strstr(r.text, "symbolic link") != NULL, "%s", r.text);
	snprintf(want, sizeof want, "%s/escape", dp.dir);
	ck_assert_int_eq(access(want, F_OK), -1);
	/* The good blob, sent after the bad one, installs. */
	m_ask(m, &r, "ship", json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "root",
	    ".", "files", "path", "top.txt", "sha256", hex, "mode", 0644));
	ck_assert_msg(r.answer != NULL, "%s %s", r.code, r.text);
	json_decref(r.answer);
	json_decref(a);
	m_free(m);
	dp_stop(&dp);
}
END_TEST

/* A load that comes while its blob is still arriving waits for it. */
START_TEST(test_load_waits_for_blob)
{
	struct dproc dp;
	struct mgr *m;
	struct reply r;
	unsigned char *so;
	char hex[SHA256_HEX_LEN + 1], *path = suite_file("daemon");
	size_t len, half;
	json_t *first, *last;
	char *b64;

	so = file_bytes(path, &len);
	sha256_hex(so, len, hex);
	half = len / 2;
	dp_start(&dp, 0, NULL);
	m = m_connect(&dp, 0);
	json_decref(m_hello(m, "wait", NULL));
	b64 = xmalloc(base64_encoded_len(len) + 1);
	base64_encode(so, half, b64);
	first = json_pack("{s:s, s:i, s:s, s:b, s:I}", "stream", hex, "seq", 0,
	    "data", b64, "last", 0, "size", (json_int_t)len);
	base64_encode(so + half, len - half, b64);
	last = json_pack("{s:s, s:i, s:s, s:b}", "stream", hex, "seq", 1,
	    "data", b64, "last", 1);
	amp_tell(m->conn, "blob", first);
	m_ask_start(m, &r, "load", json_pack("{s:s, s:s}", "sha256", hex,
	    "name", "daemon.so"));
	tu_loop_for(m->base, 0.3);
	ck_assert_int_eq(r.done, 0);
	amp_tell(m->conn, "blob", last);
	tu_loop_until(m->base, &r.done, 10);
	ck_assert_msg(r.answer != NULL, "load: %s %s", r.code, r.text);
	ck_assert_int_eq(json_get_int(r.answer, "count", 0), T_COUNT);
	json_decref(r.answer);
	free(b64);
	free(so);
	free(path);
	m_free(m);
	dp_stop(&dp);
}
END_TEST

/* ---- a network namespace ------------------------------------------------ */

static int
sh(const char *fmt, ...) DM_PRINTF(1, 2);

static int
sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	xvasprintf(&cmd, fmt, ap);
	va_end(ap);
	rc = system(cmd);
	free(cmd);
	return rc;
}

static char netns_name[32];
static int netns_n;

/* Check ends a failed test with exit(): the namespace goes anyway. */
static void
netns_cleanup(void)
{
	if (netns_name[0] != '\0')
		sh("ip netns del %s 2>/dev/null; ip link del fwv%da 2>/dev/null",
		    netns_name, netns_n);
	netns_name[0] = '\0';
}

/* A farm host of its own: the daemon in a namespace on 10.213.X.2,
 * refusing to listen there without TLS, and serving a run with it. */
START_TEST(test_netns_host)
{
	struct dproc dp;
	struct mgr *m;
	char ns[32], addr[32], cmd[600], *bin;
	int n = (int)(getpid() % 200) + 20, rc, status, h;
	int tests[] = { T_PASS, -1 };

	if (geteuid() != 0 || sh("ip netns list >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_netns_host: not root or no ip netns; "
		    "skipped\n");
		return;
	}
	snprintf(ns, sizeof ns, "fwd%ld", (long)getpid());
	snprintf(addr, sizeof addr, "10.213.%d.2", n);
	snprintf(netns_name, sizeof netns_name, "%s", ns);
	netns_n = n;
	atexit(netns_cleanup);
	rc = sh("set -e; ip netns add %s; ip link add fwv%da type veth peer "
	    "name fwv%db; ip link set fwv%db netns %s; ip addr add "
	    "10.213.%d.1/24 dev fwv%da; ip link set fwv%da up; ip netns exec "
	    "%s ip addr add %s/24 dev fwv%db; ip netns exec %s ip link set "
	    "fwv%db up; ip netns exec %s ip link set lo up", ns, n, n, n, ns,
	    n, n, n, ns, addr, n, ns, n, ns);
	ck_assert_int_eq(rc, 0);
	/* Beyond loopback without TLS: refused, exit 4. */
	xasprintf(&bin, "%s/bin/distworker", build_dir());
	snprintf(cmd, sizeof cmd, "ip netns exec %s %s --listen %s:7700 "
	    "--foreground --user nobody 2>%s/refused", ns, bin, addr,
	    certdir);
	status = system(cmd);
	ck_assert_int_eq(WEXITSTATUS(status), 4);
	snprintf(cmd, sizeof cmd, "%s/refused", certdir);
	{
		char *text = read_file(cmd);

		ck_assert_msg(strstr(text, "refusing to listen on") != NULL &&
		    strstr(text, "without TLS") != NULL, "%s", text);
		free(text);
	}
	ck_assert_int_eq(sh("sh %s/contrib/make-certs.sh %s/a server ns IP:%s",
	    getenv("DM_TOP"), certdir, addr), 0);
	{
		char cert[300], key[300], ca[300];
		const char *pre[] = { "ip", "netns", "exec", ns, NULL };

		cert_path(cert, sizeof cert, "a", "ns.pem");
		cert_path(key, sizeof key, "a", "ns.key");
		cert_path(ca, sizeof ca, "a", "ca.pem");
		dp_start_at(&dp, 0, addr, pre, (const char *const[]){
		    "--tls-cert", cert, "--tls-key", key, "--tls-ca", ca,
		    NULL });
	}
	m = m_connect(&dp, 1);
	json_decref(m_hello(m, "netns", NULL));
	h = m_load(m, "daemon");
	m_run(m, h, tests);
	ck_assert_str_eq(m_outcome(m, h, T_PASS), "pass");
	m_free(m);
	dp_stop(&dp);
	netns_cleanup();
	free(bin);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("daemon");
	SRunner *sr;
	int failed;

	make_certs();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_plain_run);
	tcase_add_test(tc, test_tls_run_shipped);
	tcase_add_test(tc, test_tls_inproc);
	tcase_add_loop_test(tc, test_refused_before_auth, 0, A_COUNT);
	tcase_add_test(tc, test_preauth_frame_limit);
	tcase_add_loop_test(tc, test_slowloris, 0, 2);
	tcase_add_test(tc, test_flood);
	tcase_add_test(tc, test_emfile_pauses);
	tcase_add_test(tc, test_fair_slots);
	tcase_add_test(tc, test_heartbeat);
	tcase_add_test(tc, test_sigterm_grace);
	tcase_add_test(tc, test_sigterm_kills_after_grace);
	tcase_add_test(tc, test_sighup_reopens_log);
	tcase_add_test(tc, test_ship_and_chdir);
	tcase_add_test(tc, test_ship_refusals);
	tcase_add_test(tc, test_load_waits_for_blob);
	tcase_add_test(tc, test_netns_host);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cleanup_certs();
	return failed == 0 ? 0 : 1;
}

/*
 * syncclient.c - a test's dm_lock, dm_unlock, dm_board_set, dm_board_get
 * and dm_trail (distmgr(3)), asked of the manager, which alone decides
 * (distmgr-protocol(7), "Worker to manager").
 *
 * Boxed, a test's process sends each call on the sync channel and blocks
 * (host.c, box.h); the runner reads the channel from the event loop and
 * hands each request here: it goes to the manager as an ask naming the
 * test that runs, and its answer goes back on the channel when it comes.
 * The loop never waits. A request from a process that is not the running
 * test's (one that was killed while it asked) is answered -1 at once.
 *
 * In-process, the test holds the loop: the call is asked with
 * amp_ask_sync, which waits for its answer on the connection itself and
 * keeps whatever else arrives for the loop.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"
#include "box.h"

struct syncc {
	struct amp_conn	*conn;		/* NULL: calls answer -1 */
	int		 suite;		/* the running test, as asks name it */
	long		 test;
	int		 running;
	int		 group_fixture;	/* asks are the group's (test -1) */
};

/* An ask on its way for a boxed test. */
struct syncc_wait {
	int		 fd;
	uint64_t	 id;
	uint32_t	 op;
};

struct syncc *
syncc_new(void)
{
	return xcalloc(1, sizeof(struct syncc));
}

void
syncc_free(struct syncc *sc)
{
	free(sc);
}

void
syncc_set_conn(struct syncc *sc, struct amp_conn *conn)
{
	if (sc != NULL)
		sc->conn = conn;
}

void
syncc_set_test(struct syncc *sc, int suite, long test)
{
	if (sc == NULL)
		return;
	sc->suite = suite;
	sc->test = test;
	sc->running = 1;
	sc->group_fixture = 0;
}

void
syncc_group_fixture(struct syncc *sc, int on)
{
	if (sc != NULL)
		sc->group_fixture = on;
}

void
syncc_clear_test(struct syncc *sc)
{
	if (sc != NULL)
		sc->running = 0;
}

/* The ask for op; NULL (and *cmd untouched) for an op we do not know. */
static json_t *
syncc_args(const struct syncc *sc, uint32_t op, const char *a, const char *b,
    int arg, const char **cmd)
{
	json_t *args;

	switch (op) {
	case BOX_SYNC_LOCK:
	case BOX_SYNC_UNLOCK:
		*cmd = op == BOX_SYNC_LOCK ? "lock" : "unlock";
		args = json_pack("{s:o}", "name", json_string_lossy(a,
		    strlen(a)));
		break;
	case BOX_SYNC_BOARD_SET:
		*cmd = "board_set";
		args = json_pack("{s:o, s:o}", "key", json_string_lossy(a,
		    strlen(a)), "value", json_string_lossy(b, strlen(b)));
		break;
	case BOX_SYNC_BOARD_GET:
		*cmd = "board_get";
		args = json_pack("{s:o}", "key", json_string_lossy(a,
		    strlen(a)));
		break;
	case BOX_SYNC_TRAIL:
		if (arg != DM_START && arg != DM_FINISH)
			return NULL;
		*cmd = "trail";
		args = json_pack("{s:o, s:s}", "name", json_string_lossy(a,
		    strlen(a)), "phase", arg == DM_START ? "start" : "finish");
		break;
	default:
		return NULL;
	}
	json_object_set_new(args, "suite", json_integer(sc->suite));
	json_object_set_new(args, "test", json_integer(sc->group_fixture ? -1 :
	    sc->test));
	return args;
}

/* What the call returns, from the manager's reply (err: it failed). */
static int
syncc_rc(uint32_t op, json_t *ans, int err)
{
	if (err)
		return -1;
	switch (op) {
	case BOX_SYNC_LOCK:
		return json_get_bool(ans, "previous_died", 0) ? 1 : 0;
	case BOX_SYNC_TRAIL:
		return json_get_bool(ans, "result", 0) ? 1 : 0;
	default:
		return 0;
	}
}

/* ---- boxed: the channel -------------------------------------------------- */

static void
syncc_reply(int fd, uint64_t id, int rc, const char *value, size_t len)
{
	struct box_sync_reply rep;
	struct iovec iov[2];
	struct msghdr mh;

	memset(&rep, 0, sizeof rep);
	rep.id = id;
	rep.rc = rc;
	if (value != NULL && len <= BOX_SYNC_STRING_MAX) {
		rep.has_value = 1;
		rep.len = (uint32_t)len;
	} else if (value != NULL)
		rep.rc = -1;	/* more than the test's side can take */
	iov[0] = (struct iovec){ &rep, sizeof rep };
	iov[1] = (struct iovec){ (void *)(value != NULL ? value : ""),
	    rep.has_value ? rep.len : 0 };
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	/* A test that stopped reading (killed) must not block the worker:
	 * the answer is dropped if the channel is full. */
	(void)!sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void
syncc_answered(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct syncc_wait *w = arg;
	json_t *v = ans != NULL ? json_object_get(ans, "value") : NULL;

	(void)c;
	if (err == NULL && w->op == BOX_SYNC_BOARD_GET && json_is_string(v))
		syncc_reply(w->fd, w->id, 0, json_string_value(v),
		    json_string_length(v));
	else
		syncc_reply(w->fd, w->id, syncc_rc(w->op, ans, err != NULL),
		    NULL, 0);
	free(w);
}

/* One request, read by the runner from its end of the channel: n bytes
 * in buf. pid is the running test's process (0: none runs). */
static void
syncc_request(struct syncc *sc, int fd, const void *buf, size_t n,
    pid_t pid, int group_fixture)
{
	struct box_sync_req req;
	const char *p = (const char *)buf + sizeof req, *cmd = NULL;
	char a[BOX_SYNC_STRING_MAX + 1], b[BOX_SYNC_STRING_MAX + 1];
	struct syncc_wait *w;
	json_t *args;

	if (n < sizeof req)
		return;
	memcpy(&req, buf, sizeof req);
	if (req.alen > BOX_SYNC_STRING_MAX || req.blen > BOX_SYNC_STRING_MAX ||
	    sizeof req + req.alen + req.blen != n) {
		syncc_reply(fd, req.id, -1, NULL, 0);
		return;
	}
	memcpy(a, p, req.alen);
	a[req.alen] = '\0';
	memcpy(b, p + req.alen, req.blen);
	b[req.blen] = '\0';
	/* The id holds the asking pid: one from a test that has gone is
	 * not the running test's to ask for. */
	if (sc == NULL || sc->conn == NULL || !sc->running || pid <= 0 ||
	    (pid_t)(req.id >> 32) != pid ||
	    (args = syncc_args(sc, req.op, a, b, req.arg, &cmd)) == NULL) {
		syncc_reply(fd, req.id, -1, NULL, 0);
		return;
	}
	if (group_fixture)
		json_object_set_new(args, "test", json_integer(-1));
	w = xcalloc(1, sizeof *w);
	w->fd = fd;
	w->id = req.id;
	w->op = req.op;
	amp_ask(sc->conn, cmd, args, syncc_answered, w);
}

/* Reads every request waiting on fd; those of no running test are
 * answered -1. Returns how many were read. */
size_t
syncc_read(struct syncc *sc, int fd, pid_t pid, int group_fixture)
{
	char buf[sizeof(struct box_sync_req) + 2 * BOX_SYNC_STRING_MAX];
	size_t count = 0;
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		count++;
		syncc_request(sc, fd, buf, (size_t)n, pid, group_fixture);
	}
	return count;
}

/* ---- in-process ---------------------------------------------------------- */

static struct syncc *syncc_inproc;

/* host.c's hook: the call made from the worker's own process. */
static int
syncc_call(uint32_t op, const char *a, const char *b, int arg, char **value)
{
	struct syncc *sc = syncc_inproc;
	const char *cmd = NULL;
	json_t *args, *reply = NULL, *v;
	int rc;

	if (sc == NULL || sc->conn == NULL || !sc->running ||
	    (args = syncc_args(sc, op, a, b != NULL ? b : "", arg,
	    &cmd)) == NULL)
		return -1;
	/* A ping the manager sends meanwhile is answered at once. */
	rc = amp_ask_sync(sc->conn, cmd, args, "ping", &reply);
	if (rc == -1)
		return -1;
	v = json_object_get(reply, "value");
	if (rc == 0 && op == BOX_SYNC_BOARD_GET && value != NULL &&
	    json_is_string(v))
		*value = xstrdup(json_string_value(v));
	rc = syncc_rc(op, reply, rc != 0);
	json_decref(reply);
	return rc;
}

void
syncc_inproc_install(struct syncc *sc)
{
	syncc_inproc = sc;
	host_set_sync_call(sc != NULL ? syncc_call : NULL);
}

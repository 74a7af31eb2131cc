/*
 * daemon.c - distworker --listen: a long-running worker for managers
 * that connect over TCP. It starts up (the checks, the log, the pidfile,
 * the fall from root to --user, daemonizing), listens (daemon-net.c),
 * gives each manager connection whose hello came a slot (daemon-slots.c)
 * and forks a session process for it (session.c), reaps sessions, and
 * stops on SIGTERM: no new connections, running tests finish within the
 * grace time, then whatever is left is killed.
 *
 * What it must never do: load a suite or run a command itself (sessions
 * do, in their own processes); run as root (it refuses to, without a
 * --user to become before it listens); listen beyond loopback without
 * TLS; or let a session's child reach the daemon's event loop: the child
 * leaves it before event_reinit and touches nothing of the parent's.
 */
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"

struct dsession {
	TAILQ_ENTRY(dsession)	 entry;
	pid_t			 pid;
	char			*run_id;
	char			 peer[64];
	double			 started;
};

struct daemon {
	const struct daemon_options *opt;
	struct event_base	*base;
	struct ssl_ctx_st	*tls;
	struct addrinfo		*addrs;
	struct dnet		*net;
	struct slots		*slots;
	TAILQ_HEAD(, dsession)	 sessions;
	int			 nsessions;
	char			*cache_dir;
	char			*rundir;
	int			 pid_fd;
	int			 ready_fd;	/* to the parent that waits */
	int			 term_fd;	/* the terminal, in the
						   foreground with --log */
	struct {
		char	*name;
		char	*home;
		uid_t	 uid;
		gid_t	 gid;
	}			 user;		/* to become; name NULL: none */
	struct event		*signals[4];
	struct event		*grant_ev;
	struct event		*grace_ev;
	int			 stopping;
	/* In a session's child, once it left the loop: */
	struct dconn		*child_conn;
	char			 child_peer[64];
};

/* ---- start-up ----------------------------------------------------------- */

/* A start-up error: said where the user sees it (the terminal, or the
 * parent waiting for a daemonized child), logged, and the end. */
static void DM_PRINTF(3, 4) DM_NORETURN
daemon_fail(struct daemon *d, int status, const char *fmt, ...)
{
	char msg[1024], buf[1100];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	if (d->term_fd != -1) {
		n = snprintf(buf, sizeof buf, "distworker: %s\n", msg);
		(void)!write(d->term_fd, buf, (size_t)n);
	}
	if (d->ready_fd != -1) {
		n = snprintf(buf, sizeof buf, "%c%s", status, msg);
		(void)!write(d->ready_fd, buf, (size_t)n);
	}
	exit(status);
}

/* Start-up went well: the parent of a daemonized child may exit 0. */
static void
daemon_ready(struct daemon *d)
{
	char ok = 0;

	if (d->term_fd != -1) {
		close(d->term_fd);
		d->term_fd = -1;
	}
	if (d->ready_fd == -1)
		return;
	(void)!write(d->ready_fd, &ok, 1);
	close(d->ready_fd);
	d->ready_fd = -1;
}

/* The parent's side of daemonizing: waits for the daemon to be ready
 * (or to fail, with what it said), and exits with its status. */
static void DM_NORETURN
daemon_wait_child(int fd)
{
	char buf[1100];
	ssize_t n;
	size_t len = 0;

	while (len < sizeof buf - 1 && (n = read(fd, buf + len,
	    sizeof buf - 1 - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			break;
		len += (size_t)n;
		if (len >= 1 && buf[0] == 0)
			_exit(EXIT_OK);
	}
	if (len == 0) {
		fprintf(stderr, "distworker: the daemon died while starting; "
		    "see its log\n");
		_exit(EXIT_INTERNAL);
	}
	buf[len] = '\0';
	fprintf(stderr, "distworker: %s\n", buf + 1);
	_exit((unsigned char)buf[0]);
}

static void
daemon_detach(struct daemon *d)
{
	int p[2], fd;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		daemon_fail(d, EXIT_INTERNAL, "pipe: %s", strerror(errno));
	fflush(NULL);
	if ((pid = fork()) == -1)
		daemon_fail(d, EXIT_INTERNAL, "fork: %s", strerror(errno));
	if (pid > 0) {
		close(p[1]);
		daemon_wait_child(p[0]);
	}
	close(p[0]);
	d->ready_fd = p[1];
	setsid();
	/* Not a session leader: it can never get a terminal again. */
	if ((pid = fork()) == -1)
		daemon_fail(d, EXIT_INTERNAL, "fork: %s", strerror(errno));
	if (pid > 0)
		_exit(EXIT_OK);
	if (chdir("/") == -1)
		daemon_fail(d, EXIT_INTERNAL, "chdir /: %s", strerror(errno));
	if ((fd = open("/dev/null", O_RDWR)) == -1)
		daemon_fail(d, EXIT_INTERNAL, "/dev/null: %s", strerror(errno));
	dup2(fd, 0);
	dup2(fd, 1);
	if (d->opt->log == NULL || strcmp(d->opt->log, "syslog") == 0)
		dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* --log FILE: fd 2 becomes the file, for the daemon, its sessions, and
 * anything a library writes there. */
static int
daemon_open_log(const char *path, char *why, size_t whylen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd == -1) {
		snprintf(why, whylen, "cannot open the log %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (dup2(fd, 2) == -1) {
		snprintf(why, whylen, "dup2: %s", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void
daemon_log_setup(struct daemon *d)
{
	char why[512];

	if (d->opt->log == NULL)
		return;
	if (strcmp(d->opt->log, "syslog") == 0) {
		log_set_syslog(1);
		return;
	}
	if (d->opt->foreground)
		d->term_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (daemon_open_log(d->opt->log, why, sizeof why) == -1)
		daemon_fail(d, EXIT_USAGE, "%s", why);
	log_set_timestamps(1);
}

/* Locked for as long as the daemon (or a session of it) lives, so that
 * a second daemon on the same pidfile refuses to start. */
static void
daemon_pidfile_lock(struct daemon *d)
{
	const char *path = d->opt->pidfile;

	if (path == NULL)
		return;
	d->pid_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0644);
	if (d->pid_fd == -1)
		daemon_fail(d, EXIT_USAGE, "cannot open the pidfile %s: %s",
		    path, strerror(errno));
	if (flock(d->pid_fd, LOCK_EX | LOCK_NB) == -1)
		daemon_fail(d, EXIT_INTERNAL, "%s is locked: another "
		    "distworker runs with this pidfile", path);
}

static void
daemon_pidfile_write(struct daemon *d)
{
	char buf[32];
	int n;

	if (d->pid_fd == -1)
		return;
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(d->pid_fd, 0) == -1 ||
	    pwrite(d->pid_fd, buf, (size_t)n, 0) != n)
		daemon_fail(d, EXIT_INTERNAL, "cannot write the pidfile: %s",
		    strerror(errno));
}

/* Root becomes --user before a socket is opened. */
static void
daemon_drop_root(struct daemon *d)
{
	if (d->user.name == NULL)
		return;
	if (initgroups(d->user.name, d->user.gid) == -1 ||
	    setgid(d->user.gid) == -1 || setuid(d->user.uid) == -1)
		daemon_fail(d, EXIT_INTERNAL, "cannot become %s: %s",
		    d->user.name, strerror(errno));
	if (setuid(0) != -1 || seteuid(0) != -1)
		daemon_fail(d, EXIT_INTERNAL, "could become root again after "
		    "becoming %s", d->user.name);
	setenv("HOME", d->user.home, 1);
	setenv("USER", d->user.name, 1);
	setenv("LOGNAME", d->user.name, 1);
	unsetenv("XDG_CACHE_HOME");
	/* Like any process the user starts: its tests may read their own
	 * /proc entries and dump core. */
	prctl(PR_SET_DUMPABLE, 1);
	log_info("running as %s (uid %ld)", d->user.name, (long)d->user.uid);
}

/* --user, looked up while a usage error can still reach the terminal,
 * and copied: getpwnam's storage is overwritten by the next lookup. */
static void
daemon_check_user(struct daemon *d)
{
	const struct daemon_options *o = d->opt;
	struct passwd *pw;

	if (geteuid() == 0 && o->user == NULL)
		daemon_fail(d, EXIT_USAGE, "refusing to run as root: say "
		    "--user NAME, the user to run as");
	if (o->user == NULL)
		return;
	if ((pw = getpwnam(o->user)) == NULL)
		daemon_fail(d, EXIT_USAGE, "--user: no user '%s'", o->user);
	if (geteuid() != 0) {
		if (pw->pw_uid != geteuid())
			daemon_fail(d, EXIT_USAGE, "--user %s needs the daemon "
			    "to start as root", o->user);
		return;		/* already that user */
	}
	if (pw->pw_uid == 0)
		daemon_fail(d, EXIT_USAGE, "--user %s is root: name an "
		    "unprivileged user", o->user);
	d->user.name = xstrdup(pw->pw_name);
	d->user.home = xstrdup(pw->pw_dir);
	d->user.uid = pw->pw_uid;
	d->user.gid = pw->pw_gid;
}

/* The options that need no I/O, checked while a usage error can still
 * reach the terminal. */
static void
daemon_check(struct daemon *d)
{
	const struct daemon_options *o = d->opt;
	char why[512];
	int loopback;

	daemon_check_user(d);
	if (dnet_resolve(o->listen, &d->addrs, &loopback, why,
	    sizeof why) == -1)
		daemon_fail(d, EXIT_USAGE, "%s", why);
	if (!loopback && o->tls_cert == NULL)
		daemon_fail(d, EXIT_USAGE, "refusing to listen on %s without "
		    "TLS: beyond loopback, managers must be authenticated "
		    "(--tls-cert, --tls-key, --tls-ca; see distworker(8))",
		    o->listen);
}

/* TLS files are read while still root: the key may be readable by root
 * alone. */
static void
daemon_tls(struct daemon *d)
{
	struct tls_files f = { d->opt->tls_ca, d->opt->tls_cert,
		d->opt->tls_key };
	char why[512];

	if (d->opt->tls_cert == NULL)
		return;
	if ((d->tls = tls_server_ctx(&f, why, sizeof why)) == NULL)
		daemon_fail(d, EXIT_USAGE, "%s", why);
	/* Sessions are never resumed: no tickets to send after the
	 * handshake, nothing in flight when a session is forked. */
	SSL_CTX_set_num_tickets(d->tls, 0);
	SSL_CTX_set_session_cache_mode(d->tls, SSL_SESS_CACHE_OFF);
}

/* The shared blob cache, which belongs to the user the daemon runs as. */
static void
daemon_cache(struct daemon *d)
{
	char buf[PATH_MAX], why[512];
	struct blobcache *bc;

	if (d->opt->cache_dir != NULL)
		d->cache_dir = xstrdup(d->opt->cache_dir);
	else if (shipping_cache_default(buf, sizeof buf) == 0)
		d->cache_dir = xstrdup(buf);
	else
		daemon_fail(d, EXIT_USAGE, "no cache directory: say "
		    "--cache-dir DIR");
	if ((bc = blobcache_open(d->cache_dir, d->opt->cache_limit, why,
	    sizeof why)) == NULL)
		daemon_fail(d, EXIT_INTERNAL, "%s", why);
	blobcache_evict(bc);
	blobcache_close(bc);
}

/* The directory the sessions make theirs in, once nothing else can fail. */
static void
daemon_rundir(struct daemon *d)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	xasprintf(&d->rundir, "%s/distworkerd.XXXXXX", tmp);
	if (mkdtemp(d->rundir) == NULL)
		daemon_fail(d, EXIT_INTERNAL, "cannot create a directory under "
		    "%s: %s", tmp, strerror(errno));
}

/* ---- sessions ----------------------------------------------------------- */

static void	daemon_child(struct daemon *) DM_NORETURN;

static void
daemon_signals_block(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(how, &set, NULL);
}

/*
 * Forks c's session. The child must not run anything of the daemon's
 * loop again: it notes its connection and breaks out, and daemon_main
 * takes it from there (event_reinit first). Signals stay blocked across
 * the fork, so that none reaches the child through the parent's
 * signal pipe, which both share until then.
 */
static void
daemon_fork(struct daemon *d, struct dconn *c, const char *run_id)
{
	struct dsession *s;
	pid_t pid;

	dconn_quiesce(c);
	fflush(NULL);
	daemon_signals_block(SIG_BLOCK);
	pid = fork();
	if (pid == 0) {
		d->child_conn = c;
		snprintf(d->child_peer, sizeof d->child_peer, "%s",
		    dconn_peer(c));
		event_base_loopbreak(d->base);
		return;
	}
	daemon_signals_block(SIG_UNBLOCK);
	if (pid == -1) {
		log_error("%s: cannot fork a session: %s", dconn_peer(c),
		    strerror(errno));
		slots_release(d->slots, run_id);
		dconn_close(c, NULL);
		return;
	}
	s = xcalloc(1, sizeof *s);
	s->pid = pid;
	s->run_id = xstrdup(run_id);
	snprintf(s->peer, sizeof s->peer, "%s", dconn_peer(c));
	s->started = clock_mono();
	TAILQ_INSERT_TAIL(&d->sessions, s, entry);
	d->nsessions++;
	log_info("%s: session %ld started for run '%s' (%d of %d slots "
	    "busy)", s->peer, (long)pid, run_id, slots_busy(d->slots),
	    d->opt->jobs);
	dconn_handed_off(c);
}

static void
daemon_grant_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	const char *run_id;
	struct dconn *c;

	(void)fd;
	(void)what;
	while (!d->stopping && d->child_conn == NULL &&
	    (c = slots_grant(d->slots, &run_id)) != NULL)
		daemon_fork(d, c, run_id);
}

static void
daemon_conn_ready(void *ctx, struct dconn *c, const char *run_id)
{
	struct daemon *d = ctx;

	if (slots_waiting(d->slots) >= DAEMON_WAITING_MAX) {
		log_warn("%s: refused: %d connections already wait for a "
		    "slot", dconn_peer(c), DAEMON_WAITING_MAX);
		dconn_close(c, NULL);
		return;
	}
	slots_wait(d->slots, run_id, c);
	if (slots_busy(d->slots) >= d->opt->jobs)
		log_info("%s: all %d slots are busy: waits, with %zu others",
		    dconn_peer(c), d->opt->jobs, slots_waiting(d->slots) - 1);
	/* Forks from the loop, never inside the connection's callback. */
	event_active(d->grant_ev, EV_TIMEOUT, 1);
}

static void
daemon_conn_gone(void *ctx, struct dconn *c)
{
	struct daemon *d = ctx;

	slots_forget(d->slots, c);
}

/* Kills what a session that ended left behind: it was the subreaper of
 * its tests, and orphans of a dead one come to us. */
static void
daemon_kill_orphans(struct daemon *d)
{
	char path[64];
	struct dsession *s;
	long pid;
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/task/%ld/children",
	    (long)getpid());
	if ((f = fopen(path, "re")) == NULL)
		return;
	while (fscanf(f, "%ld", &pid) == 1) {
		TAILQ_FOREACH(s, &d->sessions, entry)
			if (s->pid == (pid_t)pid)
				break;
		if (s != NULL)
			continue;
		log_info("killing process %ld, left by a session", pid);
		kill(-(pid_t)pid, SIGKILL);
		kill((pid_t)pid, SIGKILL);
	}
	fclose(f);
}

static void
daemon_session_ended(struct daemon *d, struct dsession *s, int status)
{
	char how[64], *dir;

	if (WIFEXITED(status))
		snprintf(how, sizeof how, "exit %d", WEXITSTATUS(status));
	else
		snprintf(how, sizeof how, "killed by signal %d",
		    WTERMSIG(status));
	log_info("%s: session %ld ended (%s) after %.1f s", s->peer,
	    (long)s->pid, how, clock_mono() - s->started);
	xasprintf(&dir, "%s/s%ld", d->rundir, (long)s->pid);
	env_remove_tree(dir);
	free(dir);
	slots_release(d->slots, s->run_id);
	TAILQ_REMOVE(&d->sessions, s, entry);
	d->nsessions--;
	free(s->run_id);
	free(s);
}

static void
daemon_reap(struct daemon *d)
{
	struct dsession *s;
	int status, any = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH(s, &d->sessions, entry)
			if (s->pid == pid)
				break;
		if (s == NULL)
			continue;
		daemon_session_ended(d, s, status);
		any = 1;
	}
	if (!any)
		return;
	daemon_kill_orphans(d);
	if (d->stopping && d->nsessions == 0) {
		log_info("every session has ended");
		event_base_loopbreak(d->base);
	}
	event_active(d->grant_ev, EV_TIMEOUT, 1);
}

/* ---- signals ------------------------------------------------------------ */

static void
daemon_kill_all(struct daemon *d)
{
	if (d->nsessions > 0)
		log_warn("killing %d sessions and their tests", d->nsessions);
	env_kill_adopted();
}

static void
daemon_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	log_warn("the grace time of %g s is over", d->opt->grace);
	daemon_kill_all(d);
	event_base_loopbreak(d->base);
}

/* SIGTERM: no new connections; each session finishes its running test
 * and closes; after the grace time the rest is killed. A second SIGTERM
 * kills at once. */
static void
daemon_stop(struct daemon *d, int sig)
{
	struct timeval tv;
	struct dsession *s;

	if (d->stopping) {
		log_warn("signal %d again: not waiting", sig);
		daemon_kill_all(d);
		event_base_loopbreak(d->base);
		return;
	}
	d->stopping = 1;
	log_info("signal %d: stopping; %d sessions may finish their running "
	    "test within %g s", sig, d->nsessions, d->opt->grace);
	dnet_stop_listening(d->net);
	dnet_close_all(d->net, "the daemon is stopping");
	TAILQ_FOREACH(s, &d->sessions, entry)
		kill(s->pid, SIGTERM);
	if (d->nsessions == 0) {
		event_base_loopbreak(d->base);
		return;
	}
	tv.tv_sec = (time_t)d->opt->grace;
	tv.tv_usec = (suseconds_t)((d->opt->grace - (double)tv.tv_sec) * 1e6);
	evtimer_add(d->grace_ev, &tv);
}

static void
daemon_reopen_log(struct daemon *d)
{
	char why[512];

	if (d->opt->log == NULL || strcmp(d->opt->log, "syslog") == 0)
		return;
	if (daemon_open_log(d->opt->log, why, sizeof why) == -1)
		log_error("SIGHUP: %s; still writing to the old one", why);
	else
		log_info("SIGHUP: log reopened");
}

static void
daemon_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	switch (sig) {
	case SIGCHLD:
		daemon_reap(d);
		break;
	case SIGHUP:
		daemon_reopen_log(d);
		break;
	default:
		daemon_stop(d, (int)sig);
		break;
	}
}

static void
daemon_events(struct daemon *d)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < DM_NELEM(sigs); i++) {
		d->signals[i] = evsignal_new(d->base, sigs[i],
		    daemon_signal_cb, d);
		if (d->signals[i] == NULL ||
		    event_add(d->signals[i], NULL) == -1)
			fatalx("cannot watch signal %d", sigs[i]);
	}
	d->grant_ev = event_new(d->base, -1, 0, daemon_grant_cb, d);
	d->grace_ev = evtimer_new(d->base, daemon_grace_cb, d);
	if (d->grant_ev == NULL || d->grace_ev == NULL)
		fatalx("cannot create events");
}

static void
daemon_free(struct daemon *d)
{
	struct dsession *s;
	size_t i;

	dnet_free(d->net);
	while ((s = TAILQ_FIRST(&d->sessions)) != NULL) {
		TAILQ_REMOVE(&d->sessions, s, entry);
		free(s->run_id);
		free(s);
	}
	slots_free(d->slots);
	for (i = 0; i < DM_NELEM(d->signals); i++)
		if (d->signals[i] != NULL)
			event_free(d->signals[i]);
	event_free(d->grant_ev);
	event_free(d->grace_ev);
	if (d->addrs != NULL)
		freeaddrinfo(d->addrs);
	if (d->tls != NULL)
		tls_ctx_free(d->tls);
	if (d->pid_fd != -1)
		close(d->pid_fd);
	free(d->cache_dir);
	free(d->rundir);
	free(d->user.name);
	free(d->user.home);
}

/* ---- a session's child -------------------------------------------------- */

/*
 * The child of daemon_fork, out of the daemon's loop. The event base
 * still shares its epoll instance and signal pipe with the daemon:
 * event_reinit gives it its own before anything else, and only then do
 * the daemon's events and connections go (closing this process's copies
 * of their descriptors; nothing is sent). Then the session runs on the
 * connection, in its own directory under the daemon's.
 */
static void
daemon_child(struct daemon *d)
{
	static char name[64];
	struct session_channel ch;
	char *dir;
	int rc;

	if (event_reinit(d->base) == -1)
		_exit(EXIT_INTERNAL);
	daemon_signals_block(SIG_UNBLOCK);
	snprintf(name, sizeof name, "distworker[%ld]", (long)getpid());
	log_init(name, log_get_level());
	memset(&ch, 0, sizeof ch);
	ch.in = dnet_child_keep(d->net, d->child_conn, &ch.in_fd);
	d->net = NULL;
	ch.out = ch.in;
	ch.out_fd = ch.in_fd;
	ch.base = d->base;
	ch.tls = d->tls != NULL;
	ch.daemon = 1;
	ch.peer = d->child_peer;
	ch.cache_dir = d->cache_dir;
	ch.cache_limit = d->opt->cache_limit;
	xasprintf(&dir, "%s/s%ld", d->rundir, (long)getpid());
	if (mkdir(dir, 0700) == -1)
		fatal("%s", dir);
	setenv("TMPDIR", dir, 1);
	free(dir);
	d->cache_dir = NULL;
	daemon_free(d);
	rc = session_serve(&ch);
	event_base_free(ch.base);
	free((char *)ch.cache_dir);
	exit(rc);
}

/* ---- main --------------------------------------------------------------- */

int
daemon_main(const struct daemon_options *o)
{
	struct daemon d;
	struct dnet_config cfg;
	char why[512];

	memset(&d, 0, sizeof d);
	d.opt = o;
	d.pid_fd = d.ready_fd = d.term_fd = -1;
	TAILQ_INIT(&d.sessions);
	log_set_level(o->verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	daemon_check(&d);
	daemon_tls(&d);
	daemon_pidfile_lock(&d);
	if (!o->foreground)
		daemon_detach(&d);
	daemon_log_setup(&d);
	daemon_pidfile_write(&d);
	daemon_drop_root(&d);
	daemon_cache(&d);
	env_become_subreaper();
	if ((d.base = event_base_new()) == NULL)
		daemon_fail(&d, EXIT_INTERNAL, "cannot create an event base");
	daemon_events(&d);
	d.slots = slots_new(o->jobs);
	memset(&cfg, 0, sizeof cfg);
	cfg.handshake_timeout = o->handshake_timeout;
	cfg.max_unauth = o->max_unauth;
	cfg.ready = daemon_conn_ready;
	cfg.gone = daemon_conn_gone;
	cfg.ctx = &d;
	d.net = dnet_new(d.base, d.tls, &cfg);
	if (dnet_listen(d.net, d.addrs, why, sizeof why) == -1)
		daemon_fail(&d, EXIT_INTERNAL, "%s", why);
	daemon_rundir(&d);
	log_info("distworker %s: %d slots, %s, cache %s", DM_VERSION, o->jobs,
	    d.tls != NULL ? "TLS with client certificates" :
	    "plain TCP on loopback", d.cache_dir);
	daemon_ready(&d);
	event_base_dispatch(d.base);
	if (d.child_conn != NULL)
		daemon_child(&d);
	log_info("stopped");
	env_kill_adopted();
	env_remove_tree(d.rundir);
	if (o->pidfile != NULL)
		unlink(o->pidfile);
	daemon_free(&d);
	event_base_free(d.base);
	return EXIT_OK;
}

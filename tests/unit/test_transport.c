/*
 * test_transport.c - finding distworker and starting it: --worker that
 * does not exist or cannot run, the PATH fallback, a spawn that fails
 * with the exec error, and a started process in its own process group
 * with our socket as its stdin and stdout. The ssh= command line, an
 * exec= command, and tcp= connections: plain to loopback, refused, and
 * over TLS to a server whose certificate names the host or not.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "testutil.h"
#include "manager.h"

/* When distworker is installed here, the PATH checks cannot be made. */
#define DM_DEFAULT_LIBEXEC_PROBE "/usr/local/libexec/distmgr/distworker"

START_TEST(test_find_worker)
{
	char dir[] = "/tmp/dmtp.XXXXXX", path[512], out[512], why[512];
	const char *old = getenv("PATH");
	char *saved = old != NULL ? xstrdup(old) : NULL;
	FILE *fp;

	ck_assert_int_eq(tp_find_worker("/nonexistent/dw", NULL, out,
	    sizeof out, why, sizeof why), -1);
	ck_assert_str_eq(why, "--worker /nonexistent/dw: No such file or "
	    "directory");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/plain", dir);
	fp = fopen(path, "w");
	fclose(fp);
	chmod(path, 0644);
	ck_assert_int_eq(tp_find_worker(path, NULL, out, sizeof out, why,
	    sizeof why), -1);
	ck_assert(strstr(why, "plain: not an executable file") != NULL);
	unlink(path);
	ck_assert_int_eq(tp_find_worker("/bin/true", NULL, out, sizeof out,
	    why, sizeof why), 0);
	ck_assert_str_eq(out, "/bin/true");

	/* Not next to this program, nor installed: PATH has it. */
	snprintf(path, sizeof path, "%s/distworker", dir);
	fp = fopen(path, "w");
	fputs("#!/bin/sh\n", fp);
	fclose(fp);
	chmod(path, 0755);
	setenv("PATH", dir, 1);
	if (access(DM_DEFAULT_LIBEXEC_PROBE, X_OK) != 0) {
		ck_assert_int_eq(tp_find_worker(NULL, NULL, out, sizeof out,
		    why, sizeof why), 0);
		ck_assert_str_eq(out, path);
	}
	setenv("PATH", "/nonexistent", 1);
	if (access(DM_DEFAULT_LIBEXEC_PROBE, X_OK) != 0) {
		ck_assert_int_eq(tp_find_worker(NULL, NULL, out, sizeof out,
		    why, sizeof why), -1);
		ck_assert(strstr(why, "give one with --worker") != NULL);
	}
	if (saved != NULL)
		setenv("PATH", saved, 1);
	free(saved);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_start)
{
	struct tp_proc p;
	char why[512], buf[64];
	int st;
	ssize_t n;

	ck_assert_int_eq(tp_popen_start("/nonexistent/dw", &p, why,
	    sizeof why), -1);
	ck_assert_str_eq(why, "cannot start /nonexistent/dw: No such file or "
	    "directory");
	/* cat --stdio would fail; sh reads its script from our socket. */
	ck_assert_int_eq(tp_popen_start("/bin/sh", &p, why, sizeof why), 0);
	ck_assert_int_eq(getpgid((pid_t)p.pid), (pid_t)p.pid);
	fd_set_nonblock(p.fd, 0);
	/* sh --stdio is not an option sh knows: it says so on stderr. */
	ck_assert_int_eq(waitpid((pid_t)p.pid, &st, 0), (pid_t)p.pid);
	fd_set_nonblock(p.errfd, 0);
	n = read(p.errfd, buf, sizeof buf - 1);
	ck_assert_int_gt(n, 0);
	close(p.fd);
	close(p.errfd);
}
END_TEST

static char *
joined(char **argv)
{
	static char buf[1024];
	size_t i;

	buf[0] = '\0';
	for (i = 0; argv[i] != NULL; i++)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s[%s]",
		    i ? " " : "", argv[i]);
	return buf;
}

START_TEST(test_ssh_argv)
{
	char why[256], **argv;
	struct txspec *tx;

	tx = txspec_parse("2*ssh=ci@farm2:2222//worker=/opt/it's/distworker",
	    why, sizeof why);
	ck_assert_ptr_nonnull(tx);
	argv = tp_ssh_argv(tx, NULL);
	ck_assert_str_eq(joined(argv), "[/bin/sh] [-c] [exec ssh \"$@\"] [ssh] "
	    "[-o] [BatchMode=yes] [-T] [-x] [-p] [2222] [-l] [ci] [--] [farm2] "
	    "['/opt/it'\\''s/distworker' --stdio]");
	tp_argv_free(argv);
	txspec_free(tx);
	tx = txspec_parse("ssh=farm3", why, sizeof why);
	argv = tp_ssh_argv(tx, "ssh -F /tmp/farm.conf");
	ck_assert_str_eq(joined(argv), "[/bin/sh] [-c] [ssh -F /tmp/farm.conf "
	    "\"$@\"] [ssh] [-o] [BatchMode=yes] [-T] [-x] [--] [farm3] "
	    "['distworker' --stdio]");
	tp_argv_free(argv);
	txspec_free(tx);
}
END_TEST

START_TEST(test_exec)
{
	struct tp_proc p;
	char why[256], buf[64];
	ssize_t n;
	int st;

	ck_assert_int_eq(tp_exec_start("echo speaking >&2; exit 3", &p, why,
	    sizeof why), 0);
	ck_assert_int_eq(waitpid((pid_t)p.pid, &st, 0), (pid_t)p.pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	fd_set_nonblock(p.errfd, 0);
	n = read(p.errfd, buf, sizeof buf - 1);
	ck_assert_int_eq(n, 9);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "speaking\n");
	close(p.fd);
	close(p.errfd);
}
END_TEST

/* ---- tcp= ------------------------------------------------------------- */

struct got {
	int			 done;
	struct bufferevent	*bev;
	char			 why[512];
	struct tp_tcp		*t;
};

static void
on_tcp(void *arg, struct bufferevent *bev, const char *why)
{
	struct got *g = arg;

	g->done = 1;
	g->bev = bev;
	snprintf(g->why, sizeof g->why, "%s", why != NULL ? why : "");
	tp_tcp_cancel(g->t);
	g->t = NULL;
}

/* A listening socket on 127.0.0.1 (on all of 127/8 with any); its port
 * in *port. */
static int
listener_on(int any, int *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(any ? INADDR_ANY : INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static int
listener(int *port)
{
	return listener_on(0, port);
}

START_TEST(test_tcp_plain)
{
	struct event_base *base = event_base_new();
	struct evdns_base *dns = evdns_base_new(base, 0);
	struct got g;
	int lfd, port, cfd;

	memset(&g, 0, sizeof g);
	lfd = listener(&port);
	g.t = tp_tcp_connect(base, dns, "127.0.0.1", port, NULL, 3, on_tcp,
	    &g);
	ck_assert_int_eq(g.done, 0);	/* never inside the call */
	ck_assert(tu_loop_until(base, &g.done, 5));
	ck_assert_msg(g.bev != NULL, "%s", g.why);
	cfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(cfd, 0);
	bufferevent_free(g.bev);
	close(cfd);

	/* Nobody listening any more. */
	close(lfd);
	memset(&g, 0, sizeof g);
	g.t = tp_tcp_connect(base, dns, "127.0.0.1", port, NULL, 0, on_tcp,
	    &g);
	ck_assert(tu_loop_until(base, &g.done, 5));
	ck_assert_msg(g.bev == NULL, "connected: %s", g.why);
	ck_assert_msg(strstr(g.why, "cannot connect to 127.0.0.1:") != NULL &&
	    strstr(g.why, "Connection refused") != NULL, "%s", g.why);

	/* Cancelled before it could finish: nothing is called. */
	memset(&g, 0, sizeof g);
	lfd = listener(&port);
	tp_tcp_cancel(tp_tcp_connect(base, dns, "127.0.0.1", port, NULL, 0,
	    on_tcp, &g));
	tu_loop_for(base, 0.2);
	ck_assert_int_eq(g.done, 0);
	close(lfd);
	evdns_base_free(dns, 1);
	event_base_free(base);
}
END_TEST

/* The daemon's side of a handshake, in the same loop. */
struct srv {
	struct bufferevent	*bev;
	int			 done;
};

static void
srv_event(struct bufferevent *bev, short what, void *arg)
{
	struct srv *s = arg;

	(void)bev;
	s->done = what & BEV_EVENT_CONNECTED ? 1 : -1;
}

START_TEST(test_tcp_tls)
{
	char cmd[1024], dir[] = "/tmp/dmtt.XXXXXX", why[300];
	char ca[300], cert[300], key[300];
	struct tls_files f = { ca, cert, key };
	struct event_base *base = event_base_new();
	struct evdns_base *dns = evdns_base_new(base, 0);
	struct ssl_ctx_st *sctx, *cctx;
	struct srv sv;
	struct got g;
	int lfd, port, c, round;
	const char *top = getenv("DM_TOP");

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof cmd, "set -e; s=%s/contrib/make-certs.sh; d=%s;"
	    "sh $s $d ca; sh $s $d server srv; sh $s $d client cli",
	    top ? top : ".", dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	snprintf(cert, sizeof cert, "%s/srv.pem", dir);
	snprintf(key, sizeof key, "%s/srv.key", dir);
	sctx = tls_server_ctx(&f, why, sizeof why);
	ck_assert_msg(sctx != NULL, "%s", why);
	snprintf(cert, sizeof cert, "%s/cli.pem", dir);
	snprintf(key, sizeof key, "%s/cli.key", dir);
	cctx = tls_client_ctx(&f, why, sizeof why);
	ck_assert_msg(cctx != NULL, "%s", why);
	lfd = listener_on(1, &port);
	/* The server's certificate names localhost and 127.0.0.1: reached
	 * as 127.0.0.2, it is not the host meant. */
	for (round = 0; round < 2; round++) {
		memset(&g, 0, sizeof g);
		memset(&sv, 0, sizeof sv);
		g.t = tp_tcp_connect(base, dns, round == 0 ? "127.0.0.1" :
		    "127.0.0.2", port, cctx, 3, on_tcp, &g);
		while ((c = accept(lfd, NULL, NULL)) < 0)
			tu_loop_for(base, 0.01);
		fd_set_nonblock(c, 1);
		sv.bev = tls_accept(base, sctx, c);
		bufferevent_setcb(sv.bev, NULL, NULL, srv_event, &sv);
		bufferevent_enable(sv.bev, EV_READ | EV_WRITE);
		ck_assert(tu_loop_until(base, &g.done, 5));
		if (round == 0)
			ck_assert_msg(g.bev != NULL, "%s", g.why);
		else {
			ck_assert_ptr_null(g.bev);
			ck_assert_msg(strstr(g.why, "TLS handshake with "
			    "127.0.0.2:") != NULL && strstr(g.why,
			    "certificate verification failed") != NULL, "%s",
			    g.why);
		}
		if (g.bev != NULL)
			bufferevent_free(g.bev);
		bufferevent_free(sv.bev);
	}
	close(lfd);
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
	evdns_base_free(dns, 1);
	event_base_free(base);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("transport");
	TCase *tc = tcase_create("popen");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_find_worker);
	tcase_add_test(tc, test_start);
	tcase_add_test(tc, test_ssh_argv);
	tcase_add_test(tc, test_exec);
	tcase_add_test(tc, test_tcp_plain);
	tcase_add_test(tc, test_tcp_tls);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

/*
 * test_tls.c - TLS contexts and handshakes over a real socketpair: both
 * sides authenticated by one CA; a client without a certificate, with
 * one from another CA, or speaking TLS 1.0 is refused, and a server
 * whose certificate names another host is refused by the client.
 */
#include <sys/socket.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "testutil.h"

static char certdir[256];

static void
make_certs(void)
{
	char cmd[1024];
	const char *top = getenv("DM_TOP");

	if (certdir[0] != '\0')
		return;
	snprintf(certdir, sizeof certdir, "/tmp/dmtls.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(certdir));
	snprintf(cmd, sizeof cmd,
	    "set -e; s=%s/contrib/make-certs.sh; d=%s;"
	    "sh $s $d/a ca; sh $s $d/a server srv; sh $s $d/a client cli;"
	    "sh $s $d/b ca; sh $s $d/b client cli", top ? top : ".", certdir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
cleanup_certs(void)
{
	char cmd[512];

	if (certdir[0] == '\0')
		return;
	snprintf(cmd, sizeof cmd, "rm -rf %s", certdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", certdir);
}

static struct ssl_ctx_st *
ctx_for(int server, const char *ca_dir, const char *cert_dir, const char *name)
{
	char ca[300], cert[300], key[300], why[300];
	struct tls_files f = { ca, cert, key };
	struct ssl_ctx_st *ctx;

	snprintf(ca, sizeof ca, "%s/%s/ca.pem", certdir, ca_dir);
	snprintf(cert, sizeof cert, "%s/%s/%s.pem", certdir, cert_dir, name);
	snprintf(key, sizeof key, "%s/%s/%s.key", certdir, cert_dir, name);
	ctx = server ? tls_server_ctx(&f, why, sizeof why) :
	    tls_client_ctx(&f, why, sizeof why);
	ck_assert_msg(ctx != NULL, "%s", why);
	return ctx;
}

struct side {
	int	 done;		/* 1 connected, -1 failed */
	char	 why[300];
};

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct side *s = arg;

	if (what & BEV_EVENT_CONNECTED)
		s->done = 1;
	else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		s->done = -1;
		tls_error(bev, s->why, sizeof s->why);
	}
}

struct hs {
	struct side srv, cli;
	int both;
};

/* Runs a handshake between a server ctx and a client ctx; returns when
 * both sides have an outcome or 5 s pass. */
static void
handshake(struct ssl_ctx_st *sctx, struct ssl_ctx_st *cctx, const char *peer,
    struct hs *h)
{
	struct event_base *base = event_base_new();
	struct bufferevent *sb, *cb;
	int sv[2];
	double end = clock_mono() + 5;

	memset(h, 0, sizeof *h);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	sb = tls_accept(base, sctx, sv[0]);
	cb = tls_connect(base, cctx, sv[1], peer);
	ck_assert_ptr_nonnull(sb);
	ck_assert_ptr_nonnull(cb);
	bufferevent_setcb(sb, NULL, NULL, on_event, &h->srv);
	bufferevent_setcb(cb, NULL, NULL, on_event, &h->cli);
	bufferevent_enable(sb, EV_READ | EV_WRITE);
	bufferevent_enable(cb, EV_READ | EV_WRITE);
	while ((h->srv.done == 0 || h->cli.done == 0) && clock_mono() < end) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
		/* A side that failed closes; the other then sees EOF. */
		if (h->srv.done == -1 && h->cli.done == 0)
			bufferevent_free(sb), sb = NULL, h->srv.done = -2;
		if (h->cli.done == -1 && h->srv.done == 0)
			bufferevent_free(cb), cb = NULL, h->cli.done = -2;
	}
	if (sb != NULL)
		bufferevent_free(sb);
	if (cb != NULL)
		bufferevent_free(cb);
	event_base_free(base);
}

START_TEST(test_mutual_auth_ok)
{
	struct ssl_ctx_st *s, *c;
	struct hs h;

	make_certs();
	s = ctx_for(1, "a", "a", "srv");
	c = ctx_for(0, "a", "a", "cli");
	handshake(s, c, "127.0.0.1", &h);
	ck_assert_msg(h.srv.done == 1, "server: %s", h.srv.why);
	ck_assert_msg(h.cli.done == 1, "client: %s", h.cli.why);
	tls_ctx_free(s);
	tls_ctx_free(c);
}
END_TEST

START_TEST(test_client_without_cert_refused)
{
	struct ssl_ctx_st *s;
	SSL_CTX *c;
	struct hs h;
	char ca[300];

	make_certs();
	s = ctx_for(1, "a", "a", "srv");
	c = SSL_CTX_new(TLS_client_method());
	snprintf(ca, sizeof ca, "%s/a/ca.pem", certdir);
	SSL_CTX_load_verify_locations(c, ca, NULL);
	handshake(s, c, "127.0.0.1", &h);
	ck_assert_int_ne(h.srv.done, 1);
	ck_assert_msg(strstr(h.srv.why, "certificate") != NULL, "%s",
	    h.srv.why);
	tls_ctx_free(s);
	SSL_CTX_free(c);
}
END_TEST

START_TEST(test_client_from_other_ca_refused)
{
	struct ssl_ctx_st *s, *c;
	struct hs h;

	make_certs();
	s = ctx_for(1, "a", "a", "srv");
	/* Trusts the right CA for the server, but its own cert is from b. */
	c = ctx_for(0, "a", "b", "cli");
	handshake(s, c, "127.0.0.1", &h);
	ck_assert_int_ne(h.srv.done, 1);
	ck_assert_msg(strstr(h.srv.why, "certificate") != NULL, "%s",
	    h.srv.why);
	tls_ctx_free(s);
	tls_ctx_free(c);
}
END_TEST

START_TEST(test_tls10_refused)
{
	struct ssl_ctx_st *s, *c;
	struct hs h;

	make_certs();
	s = ctx_for(1, "a", "a", "srv");
	c = ctx_for(0, "a", "a", "cli");
	SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(c, TLS1_VERSION);
	SSL_CTX_set_security_level(c, 0);
	handshake(s, c, "127.0.0.1", &h);
	ck_assert_int_ne(h.srv.done, 1);
	ck_assert_int_ne(h.cli.done, 1);
	tls_ctx_free(s);
	tls_ctx_free(c);
}
END_TEST

START_TEST(test_wrong_server_name_refused)
{
	struct ssl_ctx_st *s, *c;
	struct hs h;

	make_certs();
	s = ctx_for(1, "a", "a", "srv");
	c = ctx_for(0, "a", "a", "cli");
	handshake(s, c, "10.9.9.9", &h);
	ck_assert_int_ne(h.cli.done, 1);
	ck_assert_msg(strstr(h.cli.why, "IP address mismatch") != NULL, "%s",
	    h.cli.why);
	tls_ctx_free(s);
	tls_ctx_free(c);
}
END_TEST

START_TEST(test_bad_files_named)
{
	struct tls_files f = { "/nonexistent/ca.pem", "/nonexistent/c.pem",
	    "/nonexistent/c.key" };
	char why[300];

	ck_assert_ptr_null(tls_server_ctx(&f, why, sizeof why));
	ck_assert_msg(strstr(why, "/nonexistent/c.pem") != NULL, "%s", why);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("handshake");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mutual_auth_ok);
	tcase_add_test(tc, test_client_without_cert_refused);
	tcase_add_test(tc, test_client_from_other_ca_refused);
	tcase_add_test(tc, test_tls10_refused);
	tcase_add_test(tc, test_wrong_server_name_refused);
	tcase_add_test(tc, test_bad_files_named);
	suite_add_tcase(s, tc);
	/* Certificates once for all tests: no fork, so they share them. */
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cleanup_certs();
	return failed == 0 ? 0 : 1;
}

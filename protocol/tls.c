/*
 * tls.c - TLS contexts and connections for the farm: the daemon and the
 * manager authenticate each other with certificates from one CA.
 *
 * What it must never do: accept a peer without a certificate from the
 * configured CA, accept a protocol older than TLS 1.2, or let a byte of
 * application data through before the handshake (and so the peer's
 * authentication) has completed -- libevent's OpenSSL bufferevent
 * delivers nothing to readers until then.
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common.h"
#include "protocol.h"

static void
tls_why(char *why, size_t whylen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char ebuf[256];

	if (e != 0)
		ERR_error_string_n(e, ebuf, sizeof ebuf);
	else
		snprintf(ebuf, sizeof ebuf, "unknown error");
	if (file != NULL)
		snprintf(why, whylen, "%s %s: %s", what, file, ebuf);
	else
		snprintf(why, whylen, "%s: %s", what, ebuf);
	ERR_clear_error();
}

static SSL_CTX *
tls_ctx_common(const SSL_METHOD *method, const struct tls_files *f,
    char *why, size_t whylen)
{
	SSL_CTX *ctx;

	if (f->ca == NULL || f->cert == NULL || f->key == NULL) {
		snprintf(why, whylen, "TLS needs a CA, a certificate and a key");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(method)) == NULL) {
		tls_why(why, whylen, "cannot create a TLS context", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1) {
		tls_why(why, whylen, "cannot load certificate", f->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1) {
		tls_why(why, whylen, "cannot load private key", f->key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_why(why, whylen, "key does not match certificate", f->key);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1) {
		tls_why(why, whylen, "cannot load CA", f->ca);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct ssl_ctx_st *
tls_server_ctx(const struct tls_files *f, char *why, size_t whylen)
{
	STACK_OF(X509_NAME) *names;
	SSL_CTX *ctx;

	if ((ctx = tls_ctx_common(TLS_server_method(), f, why, whylen)) == NULL)
		return NULL;
	/* A client without a certificate from our CA never gets through. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if ((names = SSL_load_client_CA_file(f->ca)) == NULL) {
		tls_why(why, whylen, "cannot read CA names from", f->ca);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	return ctx;
}

struct ssl_ctx_st *
tls_client_ctx(const struct tls_files *f, char *why, size_t whylen)
{
	SSL_CTX *ctx;

	if ((ctx = tls_ctx_common(TLS_client_method(), f, why, whylen)) == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

void
tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

struct bufferevent *
tls_accept(struct event_base *base, struct ssl_ctx_st *ctx, int fd)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL) {
		close(fd);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		close(fd);
	}
	return bev;
}

struct bufferevent *
tls_connect(struct event_base *base, struct ssl_ctx_st *ctx, int fd,
    const char *peer)
{
	struct in6_addr a6;
	struct in_addr a4;
	struct bufferevent *bev;
	X509_VERIFY_PARAM *param;
	SSL *ssl;
	int ok;

	if ((ssl = SSL_new(ctx)) == NULL) {
		close(fd);
		return NULL;
	}
	/* The daemon's certificate must name the host we meant to reach:
	 * an address in its IP SANs, or a name in its DNS SANs. */
	param = SSL_get0_param(ssl);
	if (inet_pton(AF_INET, peer, &a4) == 1 ||
	    inet_pton(AF_INET6, peer, &a6) == 1)
		ok = X509_VERIFY_PARAM_set1_ip_asc(param, peer);
	else {
		ok = SSL_set1_host(ssl, peer) &&
		    SSL_set_tlsext_host_name(ssl, peer);
	}
	if (!ok) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		close(fd);
	}
	return bev;
}

void
tls_error(struct bufferevent *bev, char *buf, size_t size)
{
	unsigned long e;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long vr;
	char ebuf[256];

	if (ssl != NULL &&
	    (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		snprintf(buf, size, "certificate verification failed: %s",
		    X509_verify_cert_error_string(vr));
		return;
	}
	if ((e = bufferevent_get_openssl_error(bev)) != 0) {
		ERR_error_string_n(e, ebuf, sizeof ebuf);
		/* Drain the rest so that it does not leak into later calls. */
		while (bufferevent_get_openssl_error(bev) != 0)
			;
		snprintf(buf, size, "TLS error: %s", ebuf);
		return;
	}
	snprintf(buf, size, "connection closed during the TLS handshake");
}

/*
 * libevent queues SSL_get_error()'s bare code (library 0) ahead of
 * OpenSSL's own errors. A peer that vanished without close_notify (a
 * killed process, a host gone) leaves nothing but that code, or
 * OpenSSL 3's "unexpected eof": the peer closed, as far as anyone here
 * can tell.
 */
int
tls_is_tls(struct bufferevent *bev)
{
	return bufferevent_openssl_get_ssl(bev) != NULL;
}

int
tls_conn_error(struct bufferevent *bev, char *buf, size_t size)
{
	unsigned long e, lib = 0;
	int any = 0;
	char ebuf[256];

	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		any = 1;
		if (ERR_GET_LIB(e) != 0 && lib == 0)
			lib = e;
	}
	if (!any)
		return 0;
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
	if (lib != 0 && ERR_GET_REASON(lib) ==
	    SSL_R_UNEXPECTED_EOF_WHILE_READING)
		lib = 0;
#endif
	if (lib == 0) {
		if (EVUTIL_SOCKET_ERROR() != 0)
			return 0;	/* the socket's error says more */
		snprintf(buf, size, "closed by peer");
		return 1;
	}
	ERR_error_string_n(lib, ebuf, sizeof ebuf);
	snprintf(buf, size, "TLS error: %s", ebuf);
	return 1;
}

void
tls_peer_name(struct bufferevent *bev, char *buf, size_t size)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509 *cert;
	X509_NAME *name;

	snprintf(buf, size, "?");
	if (ssl == NULL || (cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return;
	if ((name = X509_get_subject_name(cert)) != NULL)
		X509_NAME_get_text_by_NID(name, NID_commonName, buf, (int)size);
	X509_free(cert);
}

/*
 * txspec.c - execution specs, as pytest-xdist's --tx and execnet's xspec:
 *
 *   [N*]popen                      N local workers
 *   [N*]ssh=[user@]host[:port]     ssh host distworker --stdio
 *   [N*]tcp=host:port              a running distworker --listen
 *   [N*]exec=COMMAND               any command speaking on stdin/stdout
 *
 * followed by modifiers, each after "//": chdir=DIR, env:NAME=VALUE,
 * id=NAME, nice=N, worker=PATH.
 *
 * Parsing only: nothing here starts a process or opens a socket. Every
 * refusal is a sentence naming the part of the spec that is wrong.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

#define TX_MAX_COUNT	1024	/* workers one spec may ask for */

static const char *tx_kind_names[] = {
	[TX_POPEN] = "popen", [TX_SSH] = "ssh", [TX_TCP] = "tcp",
	[TX_EXEC] = "exec",
};

const char *
txspec_kind_name(enum tx_kind k)
{
	return (size_t)k < DM_NELEM(tx_kind_names) ? tx_kind_names[k] : "?";
}

void
txspec_free(struct txspec *tx)
{
	size_t i;

	if (tx == NULL)
		return;
	for (i = 0; i < tx->nenv; i++) {
		free(tx->env[i].name);
		free(tx->env[i].value);
	}
	free(tx->env);
	free(tx->text);
	free(tx->user);
	free(tx->host);
	free(tx->command);
	free(tx->chdir);
	free(tx->id);
	free(tx->worker);
	free(tx);
}

/* A decimal in [lo, hi]; 0 or -1. */
static int
tx_number(const char *s, size_t n, long lo, long hi, long *out)
{
	char buf[32], *end;
	long v;

	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!isdigit((unsigned char)buf[0]) && buf[0] != '-')
		return -1;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* host:port, with [v6]:port; port required when need_port. */
static int
tx_host_port(struct txspec *tx, const char *s, int need_port, char *why,
    size_t whylen)
{
	const char *colon, *host_end, *host = s;
	long port;

	if (*s == '[') {
		if ((host_end = strchr(s, ']')) == NULL) {
			snprintf(why, whylen, "'%s': unclosed '['", s);
			return -1;
		}
		host = s + 1;
		colon = host_end[1] == ':' ? host_end + 1 : NULL;
		if (host_end[1] != '\0' && colon == NULL) {
			snprintf(why, whylen, "'%s': junk after ']'", s);
			return -1;
		}
	} else {
		colon = strrchr(s, ':');
		host_end = colon != NULL ? colon : s + strlen(s);
	}
	if (host_end == host) {
		snprintf(why, whylen, "'%s': no host", s);
		return -1;
	}
	tx->host = xstrndup(host, (size_t)(host_end - host));
	if (colon == NULL) {
		if (need_port) {
			snprintf(why, whylen, "'%s': needs host:port", s);
			return -1;
		}
		return 0;
	}
	if (tx_number(colon + 1, strlen(colon + 1), 1, 65535, &port) == -1) {
		snprintf(why, whylen, "'%s': port must be 1 to 65535", s);
		return -1;
	}
	tx->port = (int)port;
	return 0;
}

static int
tx_kind_value(struct txspec *tx, const char *s, size_t n, char *why,
    size_t whylen)
{
	char *part = xstrndup(s, n), *eq, *at;
	int rc = -1;

	if ((eq = strchr(part, '=')) != NULL)
		*eq++ = '\0';
	if (strcmp(part, "popen") == 0) {
		tx->kind = TX_POPEN;
		if (eq != NULL)
			snprintf(why, whylen, "popen takes no value");
		else
			rc = 0;
	} else if (strcmp(part, "ssh") == 0 || strcmp(part, "tcp") == 0) {
		tx->kind = part[0] == 's' ? TX_SSH : TX_TCP;
		if (eq == NULL || *eq == '\0') {
			snprintf(why, whylen, "%s needs %s", part,
			    tx->kind == TX_SSH ? "=[user@]host[:port]" :
			    "=host:port");
		} else if (tx->kind == TX_SSH &&
		    (at = strchr(eq, '@')) != NULL) {
			if (at == eq)
				snprintf(why, whylen, "ssh: empty user");
			else {
				tx->user = xstrndup(eq, (size_t)(at - eq));
				rc = tx_host_port(tx, at + 1, 0, why, whylen);
			}
		} else
			rc = tx_host_port(tx, eq, tx->kind == TX_TCP, why,
			    whylen);
	} else if (strcmp(part, "exec") == 0) {
		tx->kind = TX_EXEC;
		if (eq == NULL || *eq == '\0')
			snprintf(why, whylen, "exec needs =COMMAND");
		else {
			tx->command = xstrdup(eq);
			rc = 0;
		}
	} else
		snprintf(why, whylen, "unknown kind '%s' (popen, ssh, tcp, "
		    "exec)", part);
	free(part);
	return rc;
}

static int
tx_modifier(struct txspec *tx, const char *s, size_t n, char *why,
    size_t whylen)
{
	char *m = xstrndup(s, n), *eq = strchr(m, '=');
	long v;
	int rc = 0;

	if (eq == NULL || eq == m) {
		snprintf(why, whylen, "modifier '%s' is not KEY=VALUE", m);
		free(m);
		return -1;
	}
	*eq++ = '\0';
	if (strcmp(m, "chdir") == 0 && *eq != '\0') {
		free(tx->chdir);
		tx->chdir = xstrdup(eq);
	} else if (strcmp(m, "id") == 0 && *eq != '\0') {
		free(tx->id);
		tx->id = xstrdup(eq);
	} else if (strcmp(m, "worker") == 0 && *eq != '\0') {
		free(tx->worker);
		tx->worker = xstrdup(eq);
	} else if (strcmp(m, "nice") == 0) {
		if (tx_number(eq, strlen(eq), -20, 19, &v) == -1) {
			snprintf(why, whylen, "nice must be -20 to 19");
			rc = -1;
		} else {
			tx->nice = (int)v;
			tx->has_nice = 1;
		}
	} else if (strncmp(m, "env:", 4) == 0 && m[4] != '\0') {
		tx->env = xreallocarray(tx->env, tx->nenv + 1,
		    sizeof *tx->env);
		tx->env[tx->nenv].name = xstrdup(m + 4);
		tx->env[tx->nenv].value = xstrdup(eq);
		tx->nenv++;
	} else {
		snprintf(why, whylen, "unknown modifier '%s' (chdir, env:NAME, "
		    "id, nice, worker)", m);
		rc = -1;
	}
	free(m);
	return rc;
}

struct txspec *
txspec_parse(const char *text, char *why, size_t whylen)
{
	struct txspec *tx = xcalloc(1, sizeof *tx);
	const char *p = text, *star, *mod, *end;
	char inner[256];
	long n;

	tx->text = xstrdup(text);
	tx->count = 1;
	/* N* only counts when what precedes '*' is all digits. */
	if ((star = strchr(p, '*')) != NULL && star > p &&
	    strspn(p, "0123456789") == (size_t)(star - p)) {
		if (tx_number(p, (size_t)(star - p), 1, TX_MAX_COUNT, &n) == -1) {
			snprintf(inner, sizeof inner, "count must be 1 to %d",
			    TX_MAX_COUNT);
			goto fail;
		}
		tx->count = (int)n;
		p = star + 1;
	}
	mod = strstr(p, "//");
	end = mod != NULL ? mod : p + strlen(p);
	if (tx_kind_value(tx, p, (size_t)(end - p), inner, sizeof inner) == -1)
		goto fail;
	while (mod != NULL) {
		p = mod + 2;
		mod = strstr(p, "//");
		end = mod != NULL ? mod : p + strlen(p);
		if (tx_modifier(tx, p, (size_t)(end - p), inner,
		    sizeof inner) == -1)
			goto fail;
	}
	return tx;
fail:
	snprintf(why, whylen, "bad --tx '%s': %s", text, inner);
	txspec_free(tx);
	return NULL;
}

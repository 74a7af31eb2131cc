/*
 * transport-ssh.c - a worker on another machine through the system's
 * OpenSSH: `ssh [-p PORT] [-l USER] HOST distworker --stdio`, so that the
 * user's keys, agent and ~/.ssh/config apply as they do for everything
 * else they run there. BatchMode: a password prompt would wait forever
 * on a terminal nobody watches; ssh fails at once instead and its stderr
 * says why.
 *
 * --ssh-command (or DISTMGR_SSH_COMMAND) replaces `ssh` with a command
 * line run by /bin/sh, as GIT_SSH_COMMAND does: `ssh -F farm.conf`.
 *
 * It must never pass the remote command unquoted: the remote shell reads
 * it, so //worker=PATH is quoted for that shell.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

#define TP_SSH_DEFAULT_WORKER	"distworker"

/* word quoted for a POSIX shell: 'it'\''s'. */
static char *
tp_shell_quote(const char *word)
{
	size_t n = 3, i = 0;
	const char *p;
	char *q;

	for (p = word; *p != '\0'; p++)
		n += *p == '\'' ? 4 : 1;
	q = xmalloc(n);
	q[i++] = '\'';
	for (p = word; *p != '\0'; p++) {
		if (*p == '\'') {
			memcpy(q + i, "'\\''", 4);
			i += 4;
		} else
			q[i++] = *p;
	}
	q[i++] = '\'';
	q[i] = '\0';
	return q;
}

/* /bin/sh -c 'ssh "$@"' ssh ARGS...: the shell finds ssh in PATH (which
 * posix_spawn does not search) and runs a --ssh-command as it is
 * written. */
char **
tp_ssh_argv(const struct txspec *tx, const char *ssh_command)
{
	char **argv = xcalloc(20, sizeof *argv), *worker;
	int n = 0;

	argv[n++] = xstrdup("/bin/sh");
	argv[n++] = xstrdup("-c");
	if (ssh_command != NULL && *ssh_command != '\0')
		xasprintf(&argv[n++], "%s \"$@\"", ssh_command);
	else
		argv[n++] = xstrdup("exec ssh \"$@\"");
	argv[n++] = xstrdup("ssh");		/* $0 */
	argv[n++] = xstrdup("-o");
	argv[n++] = xstrdup("BatchMode=yes");
	argv[n++] = xstrdup("-T");
	argv[n++] = xstrdup("-x");
	if (tx->port > 0) {
		argv[n++] = xstrdup("-p");
		xasprintf(&argv[n++], "%d", tx->port);
	}
	if (tx->user != NULL) {
		argv[n++] = xstrdup("-l");
		argv[n++] = xstrdup(tx->user);
	}
	argv[n++] = xstrdup("--");
	argv[n++] = xstrdup(tx->host);
	worker = tp_shell_quote(tx->worker != NULL ? tx->worker :
	    TP_SSH_DEFAULT_WORKER);
	xasprintf(&argv[n++], "%s --stdio", worker);
	free(worker);
	argv[n] = NULL;
	return argv;
}

void
tp_argv_free(char **argv)
{
	size_t i;

	for (i = 0; argv != NULL && argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

int
tp_ssh_start(const struct txspec *tx, const char *ssh_command,
    struct tp_proc *p, char *why, size_t whylen)
{
	char **argv = tp_ssh_argv(tx, ssh_command);
	int rc;

	rc = tp_spawn((const char *const *)argv, p, why, whylen);
	tp_argv_free(argv);
	return rc;
}

/*
 * transport-popen.c - starting a worker as a child process: `distworker
 * --stdio` on this machine (popen), and the child-process transport that
 * ssh= and exec= use too: any program with a socketpair as its stdin and
 * stdout and a pipe as its stderr, in a process group of its own.
 *
 * posix_spawn, not fork: the manager may hold a large catalog, and
 * glibc's posix_spawn uses vfork semantics, so starting sixteen workers
 * copies no page tables and reports an exec failure (a missing binary)
 * as an error here rather than as a child that exits.
 *
 * It must never leave a descriptor of ours in the worker (everything is
 * close-on-exec) nor a worker in our process group.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"

#ifndef DM_LIBEXECDIR
#define DM_LIBEXECDIR "/usr/local/libexec/distmgr"
#endif
#ifndef DM_BINDIR
#define DM_BINDIR "/usr/local/bin"
#endif

extern char **environ;

static int
tp_executable(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    access(path, X_OK) == 0;
}

/* The directory distmgr itself lives in, from /proc or argv[0]. */
static int
tp_self_dir(const char *self, char *dir, size_t len)
{
	char buf[PATH_MAX], *slash;
	ssize_t n;

	n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n > 0)
		buf[n] = '\0';
	else if (self != NULL && strchr(self, '/') != NULL &&
	    realpath(self, buf) != NULL)
		;
	else
		return -1;
	if ((slash = strrchr(buf, '/')) == NULL)
		return -1;
	*slash = '\0';
	if (snprintf(dir, len, "%s", buf) >= (int)len)
		return -1;
	return 0;
}

static int
tp_search_path(char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	int found = 0;

	if (path == NULL)
		return -1;
	copy = xstrdup(path);
	for (dir = strtok_r(copy, ":", &save); dir != NULL && !found;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, outlen, "%s/distworker", *dir ? dir : ".");
		found = tp_executable(out);
	}
	free(copy);
	return found ? 0 : -1;
}

int
tp_find_worker(const char *given, const char *self, char *out,
    size_t outlen, char *why, size_t whylen)
{
	char dir[PATH_MAX];
	const char *cand[4];
	size_t i, n = 0;

	if (given != NULL) {
		if (!tp_executable(given)) {
			snprintf(why, whylen, "--worker %s: %s", given,
			    access(given, F_OK) == 0 ? "not an executable "
			    "file" : strerror(errno));
			return -1;
		}
		snprintf(out, outlen, "%s", given);
		return 0;
	}
	if (tp_self_dir(self, dir, sizeof dir) == 0) {
		snprintf(out, outlen, "%s/distworker", dir);
		if (tp_executable(out))
			return 0;
		snprintf(out, outlen, "%s/../libexec/distmgr/distworker", dir);
		if (tp_executable(out))
			return 0;
	}
	cand[n++] = DM_LIBEXECDIR "/distworker";
	cand[n++] = DM_BINDIR "/distworker";
	for (i = 0; i < n; i++)
		if (tp_executable(cand[i])) {
			snprintf(out, outlen, "%s", cand[i]);
			return 0;
		}
	if (tp_search_path(out, outlen) == 0)
		return 0;
	snprintf(why, whylen, "cannot find distworker next to distmgr, in "
	    "%s, %s or PATH; give one with --worker", DM_LIBEXECDIR,
	    DM_BINDIR);
	return -1;
}

static int
tp_spawn_actions(posix_spawn_file_actions_t *fa, int sock, int errw)
{
	if (posix_spawn_file_actions_init(fa) != 0)
		return -1;
	if (posix_spawn_file_actions_adddup2(fa, sock, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(fa, sock, 1) != 0 ||
	    posix_spawn_file_actions_adddup2(fa, errw, 2) != 0) {
		posix_spawn_file_actions_destroy(fa);
		return -1;
	}
	return 0;
}

/* Its own process group; signals at their defaults, none blocked (we
 * route ours through libevent, which the worker must not inherit). */
static int
tp_spawn_attr(posix_spawnattr_t *at)
{
	sigset_t none, all;

	sigemptyset(&none);
	sigfillset(&all);
	if (posix_spawnattr_init(at) != 0)
		return -1;
	if (posix_spawnattr_setflags(at, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) != 0 ||
	    posix_spawnattr_setpgroup(at, 0) != 0 ||
	    posix_spawnattr_setsigmask(at, &none) != 0 ||
	    posix_spawnattr_setsigdefault(at, &all) != 0) {
		posix_spawnattr_destroy(at);
		return -1;
	}
	return 0;
}

int
tp_popen_start(const char *path, struct tp_proc *p, char *why, size_t whylen)
{
	const char *argv[3];

	argv[0] = path;
	argv[1] = "--stdio";
	argv[2] = NULL;
	return tp_spawn(argv, p, why, whylen);
}

int
tp_spawn(const char *const *argv, struct tp_proc *p, char *why,
    size_t whylen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int sv[2], ep[2], rc;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		return -1;
	}
	if (pipe2(ep, O_CLOEXEC) == -1) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (tp_spawn_actions(&fa, sv[1], ep[1]) == -1 ||
	    tp_spawn_attr(&at) == -1)
		fatalx("posix_spawn: cannot set up attributes");
	/* posix_spawn's argv is not const for history's sake only. */
	rc = posix_spawn(&pid, argv[0], &fa, &at, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(sv[1]);
	close(ep[1]);
	if (rc != 0) {
		snprintf(why, whylen, "cannot start %s: %s", argv[0],
		    strerror(rc));
		close(sv[0]);
		close(ep[0]);
		return -1;
	}
	fd_set_nonblock(sv[0], 1);
	fd_set_nonblock(ep[0], 1);
	p->pid = pid;
	p->fd = sv[0];
	p->errfd = ep[0];
	return 0;
}

void
tp_kill(const struct tp_proc *p, int sig)
{
	if (p->pid <= 0)
		return;
	/* The group takes boxed children along; the pid alone covers a
	 * worker that has not yet become a group leader. */
	if (kill(-(pid_t)p->pid, sig) == -1)
		kill((pid_t)p->pid, sig);
}

/*
 * env.c - what a worker gives its tests besides the test itself: its own
 * temporary directory (TMPDIR, removed when the worker exits), the
 * DISTMGR_* variables, and the reaping of whatever tests leave behind.
 *
 * The directory belongs to the worker process alone: a test's child that
 * calls exit() runs the worker's atexit handlers too, and must never
 * remove it.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "worker.h"

/* Deeper than this a test's tree is left for the system's cleaner: each
 * level holds a descriptor while it is removed. */
#define WORKDIR_MAX_DEPTH	200
/* How long the worker waits for adopted children it killed. */
#define ADOPTED_REAP_SECONDS	2.0

static char	workdir[PATH_MAX];
static pid_t	workdir_owner;

static void
workdir_atexit(void)
{
	if (getpid() == workdir_owner)
		workdir_remove();
}

int
workdir_create(char *why, size_t whylen)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (workdir[0] != '\0')
		return 0;
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	n = snprintf(workdir, sizeof workdir, "%s/distworker.XXXXXX", base);
	if (n < 0 || (size_t)n >= sizeof workdir) {
		snprintf(why, whylen, "TMPDIR is too long");
		workdir[0] = '\0';
		return -1;
	}
	if (mkdtemp(workdir) == NULL) {
		snprintf(why, whylen, "cannot create a directory under %s: "
		    "%s", base, strerror(errno));
		workdir[0] = '\0';
		return -1;
	}
	workdir_owner = getpid();
	atexit(workdir_atexit);
	setenv("TMPDIR", workdir, 1);
	return 0;
}

const char *
workdir_path(void)
{
	return workdir;
}

/* Removes name in dirfd, whatever it is and whatever its permissions. */
static void
remove_tree(int dirfd, const char *name, int depth)
{
	struct dirent *e;
	DIR *d;
	int fd;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return;
	if (depth > WORKDIR_MAX_DEPTH)
		return;
	fchmodat(dirfd, name, 0700, 0);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			remove_tree(fd, e->d_name, depth + 1);
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) == -1 && errno != ENOENT)
		log_warn("cannot remove %s: %s", name, strerror(errno));
}

void
env_remove_tree(const char *path)
{
	remove_tree(AT_FDCWD, path, 0);
}

void
workdir_remove(void)
{
	if (workdir[0] == '\0')
		return;
	remove_tree(AT_FDCWD, workdir, 0);
	workdir[0] = '\0';
}

void
env_set_worker(const char *worker_id, long long count, const char *run_id)
{
	char num[32];

	snprintf(num, sizeof num, "%lld", count);
	setenv("DISTMGR_WORKER", worker_id, 1);
	setenv("DISTMGR_WORKER_COUNT", num, 1);
	setenv("DISTMGR_RUN_ID", run_id, 1);
	if (workdir[0] != '\0')
		setenv("TMPDIR", workdir, 1);
}

void
env_become_subreaper(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_debug("no PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
}

/* Kills every child of this process, as /proc lists them. */
static int
kill_children(void)
{
	char path[64];
	FILE *f;
	long pid;
	int n = 0;

	snprintf(path, sizeof path, "/proc/self/task/%ld/children",
	    (long)getpid());
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fscanf(f, "%ld", &pid) == 1) {
		kill(-(pid_t)pid, SIGKILL);
		kill((pid_t)pid, SIGKILL);
		n++;
	}
	fclose(f);
	return n;
}

void
env_kill_adopted(void)
{
	double deadline = clock_mono() + ADOPTED_REAP_SECONDS;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	pid_t pid;

	if (kill_children() == 0)
		return;
	for (;;) {
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if ((pid == -1 && errno == ECHILD) || clock_mono() > deadline)
			return;
		nanosleep(&ts, NULL);
		kill_children();
	}
}

/*
 * tmpdir.c - removing the temporary directory a dead local worker left.
 *
 * A worker makes $TMPDIR/distworker.XXXXXX for its tests and removes it
 * when it exits (a worker that takes shipped files keeps that under its
 * session root, $TMPDIR/distworker-session.XXXXXX, and names the root); killed with SIGKILL (by us after a hang or a test past
 * its limit in-process, or by anyone) it cannot, and each such death
 * would leave one behind. The manager removes it once the worker is
 * reaped, knowing its path from hello's answer.
 *
 * It must only ever remove that directory: a local (popen) worker's, never
 * a path named by a remote one; only a directory named as a worker names
 * it and owned by us; and never follow a symbolic link, at the top or
 * inside, whatever a test left there (a link to $HOME must lose the link,
 * not $HOME). Every step goes through descriptors opened with O_NOFOLLOW,
 * so a name swapped for a link between a check and a use is never
 * followed.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"

#define TMPDIR_PREFIX		"distworker."	/* worker/env.c's name */
#define ROOT_PREFIX		"distworker-session."	/* shipping.c's */
#define TMPDIR_MAX_DEPTH	200	/* deeper is left, with a warning */

/* Opens name in dirfd as a directory we can read and empty, without
 * following a link; a directory a test made unreadable is opened by
 * path first and made ours again. -1 when it is not a directory. */
static int
tmpdir_open(int dirfd, const char *name)
{
	char proc[64];
	int fd, pfd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == EACCES) {
		pfd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (pfd == -1)
			return -1;
		/* chmod through the descriptor's /proc link: it names the
		 * directory opened, never whatever the name is now. */
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
		(void)chmod(proc, 0700);
		fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(pfd);
	}
	if (fd != -1)
		(void)fchmod(fd, 0700);	/* a read-only one cannot be emptied */
	return fd;
}

/* Empties the directory fd (closed here); 0, or -1 when something
 * stayed. */
static int
tmpdir_empty(int fd, int depth)
{
	struct dirent *e;
	DIR *d;
	int sub, rc = 0;

	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* Anything but a directory, a link included, goes at once. */
		if (unlinkat(fd, e->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = -1;
			continue;
		}
		if (depth >= TMPDIR_MAX_DEPTH ||
		    (sub = tmpdir_open(fd, e->d_name)) == -1) {
			rc = -1;
			continue;
		}
		if (tmpdir_empty(sub, depth + 1) == -1)
			rc = -1;
		if (unlinkat(fd, e->d_name, AT_REMOVEDIR) == -1 &&
		    errno != ENOENT)
			rc = -1;
	}
	closedir(d);
	return rc;
}

/* Is base prefix followed by something? */
static int
tmpdir_named(const char *base, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(base, prefix, n) == 0 && base[n] != '\0';
}

/* The path as a worker makes it: absolute, no "." or ".." on the way,
 * the last part "distworker.<something>" (its TMPDIR) or
 * "distworker-session.<something>" (the root that holds it). Splits it into parent and
 * base (both within buf). */
static int
tmpdir_check_name(const char *path, char *buf, size_t size, char **parent,
    char **base)
{
	char *slash;

	if (path[0] != '/' || strlen(path) >= size || strstr(path, "/./") ||
	    strstr(path, "/../"))
		return -1;
	snprintf(buf, size, "%s", path);
	while (strlen(buf) > 1 && buf[strlen(buf) - 1] == '/')
		buf[strlen(buf) - 1] = '\0';
	slash = strrchr(buf, '/');
	*base = slash + 1;
	if (!tmpdir_named(*base, TMPDIR_PREFIX) &&
	    !tmpdir_named(*base, ROOT_PREFIX))
		return -1;
	*slash = '\0';
	*parent = slash == buf ? "/" : buf;
	return 0;
}

int
tmpdir_remove(const char *path, char *why, size_t whylen)
{
	char buf[4096], *parent, *base;
	struct stat st, st2;
	int pfd, fd, rc;

	if (tmpdir_check_name(path, buf, sizeof buf, &parent, &base) == -1) {
		snprintf(why, whylen, "'%s' is not a worker's temporary "
		    "directory", path);
		return -1;
	}
	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, whylen, "%s: %s", parent, strerror(errno));
		return -1;
	}
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		close(pfd);
		return 0;	/* the worker removed it: the usual case */
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		close(pfd);
		snprintf(why, whylen, "%s is not a directory of ours; left "
		    "alone", path);
		return -1;
	}
	fd = tmpdir_open(pfd, base);
	/* The same directory that was checked, not one put in its place. */
	if (fd == -1 || fstat(fd, &st2) == -1 || st2.st_dev != st.st_dev ||
	    st2.st_ino != st.st_ino) {
		if (fd != -1)
			close(fd);
		close(pfd);
		snprintf(why, whylen, "%s changed while it was being removed; "
		    "left alone", path);
		return -1;
	}
	rc = tmpdir_empty(fd, 0);
	if (unlinkat(pfd, base, AT_REMOVEDIR) == -1 && errno != ENOENT)
		rc = -1;
	close(pfd);
	if (rc == -1)
		snprintf(why, whylen, "cannot remove all of %s", path);
	return rc;
}

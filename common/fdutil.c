/*
 * fdutil.c - file-descriptor flags. Every descriptor a daemon keeps is
 * close-on-exec so that a test's exec or a spawned worker never inherits
 * the protocol channel.
 */
#include <fcntl.h>
#include <unistd.h>

#include "common.h"

int
fd_set_nonblock(int fd, int on)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
}

int
fd_set_cloexec(int fd, int on)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFD)) == -1)
		return -1;
	fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, fl);
}

int
fd_move_above(int fd, int minfd)
{
	int nfd;

	if (fd >= minfd)
		return fd_set_cloexec(fd, 1) == -1 ? -1 : fd;
	if ((nfd = fcntl(fd, F_DUPFD_CLOEXEC, minfd)) == -1)
		return -1;
	close(fd);
	return nfd;
}

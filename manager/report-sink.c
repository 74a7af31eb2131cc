/*
 * report-sink.c - where the streaming reporters (TAP, JSON lines) write:
 * a file, stdout, a FIFO or a pipe to another program.
 *
 * It must never make the run wait for a reader. A regular file is
 * written at once (disks keep up); anything else is written without
 * blocking, and what the reader has not taken yet waits in memory, up to
 * a cap. A reader that falls further behind than the cap loses the rest
 * of the stream: the output then ends early, it never has a hole in the
 * middle, and a warning says how many records were lost. Records are
 * written whole or not at all.
 *
 * For stdout the descriptor is reopened through /proc so that the
 * non-blocking flag is set on a file description of our own, not on the
 * one the shell and the terminal reporter share.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common.h"
#include "manager.h"

#define SINK_CHUNK	(64u * 1024)	/* bytes per write of the backlog */

struct sink {
	char		*what;		/* "tap": names the sink in warnings */
	char		*name;		/* "stdout", or the path */
	int		 fd;
	int		 own_fd;
	int		 stream;	/* not a regular file: never block */
	int		 socket;	/* write with send(MSG_DONTWAIT) */
	int		 restore_fl;	/* fd flags to put back, or -1 */
	struct event	*ev;		/* writable, while a backlog waits */
	struct evbuffer	*pending;
	size_t		 limit;
	uint64_t	 dropped;	/* records */
	int		 warned_behind;
	int		 dropping;	/* fell past the cap: the rest is lost */
	int		 broken;	/* the reader is gone, or a write failed */
	int		 gave_up;	/* a flush timed out on a stalled reader */
	int		 rewindable;	/* a regular file we opened by name */
};

static void	sink_on_writable(evutil_socket_t, short, void *);

static ssize_t
sink_raw(struct sink *s, const void *p, size_t n)
{
	ssize_t r;

	do {
		if (s->socket)
			r = send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			r = write(s->fd, p, n);
	} while (r == -1 && errno == EINTR);
	return r;
}

static void
sink_fail(struct sink *s, int err)
{
	if (s->broken)
		return;
	s->broken = 1;
	if (err == EPIPE)
		log_warn("%s: the reader of %s has gone; no more %s output",
		    s->what, s->name, s->what);
	else
		log_warn("%s: cannot write to %s: %s; no more %s output",
		    s->what, s->name, strerror(err), s->what);
	if (s->ev != NULL)
		event_del(s->ev);
}

/* Writes as much of the backlog as the reader takes now. Returns the
 * bytes written, or -1 when the sink broke. */
static ssize_t
sink_drain(struct sink *s)
{
	size_t n, total = 0;
	ssize_t r;
	unsigned char *p;

	while (!s->broken && (n = evbuffer_get_length(s->pending)) > 0) {
		if (n > SINK_CHUNK)
			n = SINK_CHUNK;
		p = evbuffer_pullup(s->pending, n);
		if ((r = sink_raw(s, p, n)) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			sink_fail(s, errno);
			return -1;
		}
		evbuffer_drain(s->pending, (size_t)r);
		total += (size_t)r;
	}
	return (ssize_t)total;
}

static void
sink_arm(struct sink *s)
{
	if (s->ev != NULL && !s->broken && !event_pending(s->ev, EV_WRITE,
	    NULL))
		event_add(s->ev, NULL);
}

static void
sink_on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct sink *s = arg;

	(void)fd;
	(void)what;
	if (sink_drain(s) >= 0 && evbuffer_get_length(s->pending) == 0 &&
	    s->ev != NULL)
		event_del(s->ev);
}

/* A regular file: the write happens now, completely, or fails. */
static int
sink_write_file(struct sink *s, const char *p, size_t len)
{
	ssize_t r;

	while (len > 0) {
		if ((r = sink_raw(s, p, len)) == -1) {
			sink_fail(s, errno);
			s->dropped++;
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int
sink_drop(struct sink *s)
{
	s->dropped++;
	if (!s->dropping) {
		s->dropping = 1;
		log_warn("%s: %s fell %.1f MB behind; the rest of the %s "
		    "output is dropped (the run goes on)", s->what, s->name,
		    evbuffer_get_length(s->pending) / 1048576.0, s->what);
	}
	return -1;
}

int
sink_write(struct sink *s, const char *data, size_t len)
{
	ssize_t r;

	if (s->broken || s->dropping) {
		s->dropped++;
		return -1;
	}
	if (!s->stream)
		return sink_write_file(s, data, len);
	if (evbuffer_get_length(s->pending) > 0 && sink_drain(s) == -1) {
		s->dropped++;
		return -1;
	}
	if (evbuffer_get_length(s->pending) == 0) {
		if ((r = sink_raw(s, data, len)) == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				sink_fail(s, errno);
				s->dropped++;
				return -1;
			}
			r = 0;
		}
		/* Part of a record went out: the rest must follow, even
		 * over the cap, or the reader gets half a line. */
		data += r;
		len -= (size_t)r;
	} else if (evbuffer_get_length(s->pending) + len > s->limit)
		return sink_drop(s);
	if (len == 0)
		return 0;
	evbuffer_add(s->pending, data, len);
	if (!s->warned_behind && evbuffer_get_length(s->pending) >
	    SINK_WARN_AT) {
		s->warned_behind = 1;
		log_warn("%s: %s is not keeping up; buffering its output "
		    "(the run does not wait)", s->what, s->name);
	}
	sink_arm(s);
	return 0;
}

int
sink_flush(struct sink *s, double stall)
{
	struct pollfd pfd;
	double last = clock_mono(), left;
	ssize_t r;

	while (!s->broken && evbuffer_get_length(s->pending) > 0) {
		if ((r = sink_drain(s)) > 0)
			last = clock_mono();
		if (r == -1 || evbuffer_get_length(s->pending) == 0)
			break;
		left = stall - (clock_mono() - last);
		if (left <= 0) {
			s->gave_up = 1;
			log_warn("%s: %s took nothing for %.1f s; %zu bytes of "
			    "%s output are lost", s->what, s->name, stall,
			    evbuffer_get_length(s->pending), s->what);
			break;
		}
		pfd.fd = s->fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) == -1 &&
		    errno != EINTR) {
			sink_fail(s, errno);
			break;
		}
	}
	if (evbuffer_get_length(s->pending) == 0 && s->ev != NULL)
		event_del(s->ev);
	return evbuffer_get_length(s->pending) == 0 && !s->broken ? 0 : -1;
}

size_t
sink_pending(const struct sink *s)
{
	return evbuffer_get_length(s->pending);
}

uint64_t
sink_dropped(const struct sink *s)
{
	return s->dropped;
}

void
sink_set_limit(struct sink *s, size_t limit)
{
	s->limit = limit;
}

static struct sink *
sink_new(struct event_base *base, int fd, int own, const char *what,
    const char *name)
{
	struct sink *s = xcalloc(1, sizeof *s);
	struct stat st;

	s->what = xstrdup(what);
	s->name = xstrdup(name);
	s->fd = fd;
	s->own_fd = own;
	s->restore_fl = -1;
	s->limit = SINK_LIMIT_DEFAULT;
	s->pending = evbuffer_new();
	if (s->pending == NULL)
		fatalx("sink: out of memory");
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		return s;
	s->stream = 1;
	s->socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	if (base != NULL) {
		s->ev = event_new(base, fd, EV_WRITE | EV_PERSIST,
		    sink_on_writable, s);
		if (s->ev == NULL)
			fatalx("sink: cannot create an event");
	}
	return s;
}

/* A descriptor shared with others (stdout) gets O_NONBLOCK only for as
 * long as the sink lives. */
static void
sink_make_nonblocking(struct sink *s)
{
	int fl;

	if (!s->stream || s->socket || (fl = fcntl(s->fd, F_GETFL)) == -1 ||
	    (fl & O_NONBLOCK))
		return;
	if (fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) == 0)
		s->restore_fl = fl;
}

struct sink *
sink_open_fd(struct event_base *base, int fd, const char *what,
    const char *name)
{
	struct sink *s = sink_new(base, fd, 0, what, name);

	sink_make_nonblocking(s);
	return s;
}

struct sink *
sink_open_dup(struct event_base *base, int fd, const char *what,
    const char *name, char *why, size_t whylen)
{
	struct stat st;
	struct sink *s;
	char proc[64];
	int own = -1;

	if (fstat(fd, &st) == -1) {
		snprintf(why, whylen, "%s: %s is closed", what, name);
		return NULL;
	}
	/* A pipe, FIFO or terminal opened anew is a file description of
	 * our own, whose O_NONBLOCK nobody else sees. */
	if (!S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode)) {
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		own = open(proc, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	}
	if (own == -1 && (own = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1) {
		snprintf(why, whylen, "%s: cannot use %s: %s", what, name,
		    strerror(errno));
		return NULL;
	}
	s = sink_new(base, own, 1, what, name);
	sink_make_nonblocking(s);
	return s;
}

struct sink *
sink_open(struct event_base *base, const char *path, const char *what,
    char *why, size_t whylen)
{
	int fd;

	if (strcmp(path, "-") == 0)
		return sink_open_dup(base, STDOUT_FILENO, what, "stdout", why,
		    whylen);
	/* O_NONBLOCK: opening a FIFO must not wait for a reader. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC,
	    0666);
	if (fd == -1) {
		if (errno == ENXIO)
			snprintf(why, whylen, "%s: %s: nobody has the FIFO "
			    "open for reading", what, path);
		else
			snprintf(why, whylen, "%s: cannot create %s: %s", what,
			    path, strerror(errno));
		return NULL;
	}
	{
		struct sink *s = sink_new(base, fd, 1, what, path);

		s->rewindable = !s->stream;
		return s;
	}
}

int
sink_rewind(struct sink *s)
{
	if (!s->rewindable || s->broken)
		return -1;
	if (ftruncate(s->fd, 0) == -1 || lseek(s->fd, 0, SEEK_SET) == -1) {
		sink_fail(s, errno);
		return -1;
	}
	return 0;
}

void
sink_close(struct sink *s)
{
	size_t left;

	if (s == NULL)
		return;
	if (!s->gave_up && !s->broken)
		sink_flush(s, SINK_STALL_TIMEOUT);
	left = evbuffer_get_length(s->pending);
	if (s->dropped > 0)
		log_warn("%s: %llu records were not written to %s", s->what,
		    (unsigned long long)s->dropped, s->name);
	else if (left > 0 && !s->gave_up)
		log_warn("%s: %zu bytes were not written to %s", s->what,
		    left, s->name);
	if (s->ev != NULL)
		event_free(s->ev);
	evbuffer_free(s->pending);
	if (s->restore_fl != -1)
		(void)fcntl(s->fd, F_SETFL, s->restore_fl);
	if (s->own_fd)
		close(s->fd);
	free(s->what);
	free(s->name);
	free(s);
}

/*
 * log.c - one line per message on stderr (or the fd given), prefixed with
 * the program's name, so that a worker's lines can be told from the
 * manager's when both share a terminal.
 *
 * It must never allocate or block for long: it is called on error paths,
 * after fork in a test's child, and while memory is short. A daemon may
 * send its lines to syslog(3) instead, or stamp them with the time when
 * they go to a file of its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static const char *log_name = "distmgr";
static enum log_level log_level = LOG_LVL_WARN;
static int log_fd = 2;
static int log_to_syslog;
static int log_stamped;

void
log_init(const char *progname, enum log_level level)
{
	log_name = progname;
	log_level = level;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

void
log_set_fd(int fd)
{
	log_fd = fd;
}

void
log_set_syslog(int on)
{
	if (on && !log_to_syslog)
		openlog(log_name, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && log_to_syslog)
		closelog();
	log_to_syslog = on;
}

void
log_set_timestamps(int on)
{
	log_stamped = on;
}

const char *
log_progname(void)
{
	return log_name;
}

/* "2026-11-22T10:31:05+0100 " when lines are stamped; "" else. */
static void
log_stamp(char *buf, size_t size)
{
	struct tm tm;
	time_t now;

	buf[0] = '\0';
	if (!log_stamped)
		return;
	now = time(NULL);
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%S%z ", &tm) == 0)
		buf[0] = '\0';
}

static void DM_PRINTF(3, 0)
log_vwrite(int prio, const char *tag, const char *fmt, va_list ap,
    const char *suffix)
{
	char line[2048], stamp[64];
	int n, m;

	log_stamp(stamp, sizeof stamp);
	n = log_to_syslog ? snprintf(line, sizeof line, "%s", tag) :
	    snprintf(line, sizeof line, "%s%s: %s", stamp, log_name, tag);
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	m = vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (m < 0)
		m = 0;
	n = (size_t)(n + m) >= sizeof line - 1 ? (int)sizeof line - 2 : n + m;
	if (suffix != NULL) {
		m = snprintf(line + n, sizeof line - n, ": %s", suffix);
		if (m > 0)
			n = (size_t)(n + m) >= sizeof line - 1 ?
			    (int)sizeof line - 2 : n + m;
	}
	if (log_to_syslog) {
		line[n] = '\0';
		syslog(prio, "%s", line);
		return;
	}
	line[n++] = '\n';
	/* One write per line so lines from many processes do not mix. */
	while (write(log_fd, line, n) == -1 && errno == EINTR)
		;
}

#define LOG_FN(fn, lvl, prio, tag)				\
void								\
fn(const char *fmt, ...)					\
{								\
	va_list ap;						\
	int saved = errno;					\
								\
	if (log_level < (lvl))					\
		return;						\
	va_start(ap, fmt);					\
	log_vwrite(prio, tag, fmt, ap, NULL);			\
	va_end(ap);						\
	errno = saved;						\
}

LOG_FN(log_error, LOG_LVL_ERROR, LOG_ERR, "")
LOG_FN(log_warn, LOG_LVL_WARN, LOG_WARNING, "warning: ")
LOG_FN(log_info, LOG_LVL_INFO, LOG_INFO, "")
LOG_FN(log_debug, LOG_LVL_DEBUG, LOG_DEBUG, "debug: ")

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *why = strerror(errno);

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, "", fmt, ap, why);
	va_end(ap);
	exit(3);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, "", fmt, ap, NULL);
	va_end(ap);
	exit(3);
}

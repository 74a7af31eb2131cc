/*
 * log.c - one line per message on stderr (or the fd given), prefixed with
 * the program's name, so that a worker's lines can be told from the
 * manager's when both share a terminal.
 *
 * It must never allocate or block for long: it is called on error paths,
 * after fork in a test's child, and while memory is short.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static const char *log_name = "distmgr";
static enum log_level log_level = LOG_LVL_WARN;
static int log_fd = 2;

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

const char *
log_progname(void)
{
	return log_name;
}

static void DM_PRINTF(2, 0)
log_vwrite(const char *tag, const char *fmt, va_list ap, const char *suffix)
{
	char line[2048];
	int n, m;

	n = snprintf(line, sizeof line, "%s: %s", log_name, tag);
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
	line[n++] = '\n';
	/* One write per line so lines from many processes do not mix. */
	while (write(log_fd, line, n) == -1 && errno == EINTR)
		;
}

#define LOG_FN(fn, lvl, tag)					\
void								\
fn(const char *fmt, ...)					\
{								\
	va_list ap;						\
	int saved = errno;					\
								\
	if (log_level < (lvl))					\
		return;						\
	va_start(ap, fmt);					\
	log_vwrite(tag, fmt, ap, NULL);				\
	va_end(ap);						\
	errno = saved;						\
}

LOG_FN(log_error, LOG_LVL_ERROR, "")
LOG_FN(log_warn, LOG_LVL_WARN, "warning: ")
LOG_FN(log_info, LOG_LVL_INFO, "")
LOG_FN(log_debug, LOG_LVL_DEBUG, "debug: ")

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *why = strerror(errno);

	va_start(ap, fmt);
	log_vwrite("", fmt, ap, why);
	va_end(ap);
	exit(3);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("", fmt, ap, NULL);
	va_end(ap);
	exit(3);
}

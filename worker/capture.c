/*
 * capture.c - the tail of one output stream of one test, kept under a
 * cap. A test may print gigabytes; the worker keeps the last cap bytes
 * (where the failure usually is) and a line saying how much was cut, so
 * its memory stays bounded by about twice the cap whatever a test does.
 *
 * It must never grow past 2 * cap + CAPTURE_READ_CHUNK + CAPTURE_HEADROOM
 * bytes, and never allocate for a test that prints nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "worker.h"

void
capture_init(struct capture *c, size_t cap)
{
	memset(c, 0, sizeof *c);
	c->cap = cap > 0 ? cap : 1;
	c->start = CAPTURE_HEADROOM;
}

void
capture_reset(struct capture *c)
{
	c->start = CAPTURE_HEADROOM;
	c->len = 0;
	c->total = 0;
}

void
capture_free(struct capture *c)
{
	free(c->buf);
	c->buf = NULL;
	c->size = 0;
	capture_reset(c);
}

/* Makes room for want more bytes after the data: slides the data back to
 * its last cap bytes when the buffer is at its largest, grows it else. */
static void
capture_room(struct capture *c, size_t want)
{
	size_t limit = CAPTURE_HEADROOM + 2 * c->cap + CAPTURE_READ_CHUNK;
	size_t need = c->start + c->len + want, keep, size;

	if (need <= c->size)
		return;
	if (need > limit) {
		keep = c->len < c->cap ? c->len : c->cap;
		memmove(c->buf + CAPTURE_HEADROOM,
		    c->buf + c->start + c->len - keep, keep);
		c->start = CAPTURE_HEADROOM;
		c->len = keep;
		need = c->start + c->len + want;
		if (need <= c->size)
			return;
	}
	size = c->size < 4096 ? 4096 : c->size * 2;
	while (size < need)
		size *= 2;
	if (size > limit)
		size = limit;
	c->buf = xreallocarray(c->buf, 1, size);
	c->size = size;
}

void
capture_add(struct capture *c, const void *data, size_t len)
{
	const char *p = data;

	c->total += len;
	if (len > c->cap) {
		/* Only its tail can survive: drop the rest now. */
		p += len - c->cap;
		len = c->cap;
		c->len = 0;
		c->start = CAPTURE_HEADROOM;
	}
	capture_room(c, len);
	memcpy(c->buf + c->start + c->len, p, len);
	c->len += len;
}

ssize_t
capture_read_fd(struct capture *c, int fd)
{
	ssize_t n;

	capture_room(c, CAPTURE_READ_CHUNK);
	do
		n = read(fd, c->buf + c->start + c->len, CAPTURE_READ_CHUNK);
	while (n == -1 && errno == EINTR);
	if (n > 0) {
		c->len += (size_t)n;
		c->total += (uint64_t)n;
	}
	return n;
}

const char *
capture_file_tail(struct capture *c, int fd, uint64_t size, size_t *len)
{
	size_t want = size < c->cap ? (size_t)size : c->cap;
	ssize_t n;

	capture_reset(c);
	capture_room(c, want);
	do
		n = pread(fd, c->buf + c->start, want, (off_t)(size - want));
	while (n == -1 && errno == EINTR);
	c->len = n > 0 ? (size_t)n : 0;
	c->total = size - want + c->len;
	return capture_data(c, len);
}

size_t
capture_cut_line(char *buf, size_t size, uint64_t cut, size_t kept)
{
	int n;

	n = snprintf(buf, size, "[distworker: %llu bytes of output cut; "
	    "the last %zu follow]\n", (unsigned long long)cut, kept);
	return n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

const char *
capture_data(struct capture *c, size_t *len)
{
	char line[CAPTURE_HEADROOM];
	size_t keep, skip = 0, n;
	const char *tail;

	if (c->total <= c->cap || c->len == 0) {
		*len = c->len;
		return c->buf != NULL ? c->buf + c->start : "";
	}
	keep = c->len < c->cap ? c->len : c->cap;
	tail = c->buf + c->start + c->len - keep;
	/* Begin on a character, not inside one (at most 3 bytes in). */
	while (skip < 3 && skip < keep && ((unsigned char)tail[skip] & 0xc0)
	    == 0x80)
		skip++;
	tail += skip;
	keep -= skip;
	n = capture_cut_line(line, sizeof line, c->total - keep, keep);
	memcpy((char *)tail - n, line, n);
	c->start = (size_t)(tail - n - c->buf);
	c->len = keep + n;
	c->total = 0;	/* the cut is said once: a second call returns this */
	*len = c->len;
	return c->buf + c->start;
}

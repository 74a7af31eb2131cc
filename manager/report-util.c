/*
 * report-util.c - small pieces the file and web reporters share: cutting
 * a test's output down to a bounded head and tail, and splitting a test
 * id into its suite and name.
 *
 * Pure functions over the caller's memory: nothing here allocates, and
 * nothing may ever split a UTF-8 character (a reporter would then emit a
 * replacement character in the middle of a user's text).
 */
#include <string.h>

#include "common.h"
#include "manager.h"

static int
rpt_is_continuation(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

void
rpt_clip(const char *p, size_t len, size_t max, struct rpt_clip *c)
{
	size_t h, t;

	memset(c, 0, sizeof *c);
	if (p == NULL)
		return;
	c->head = p;
	if (len <= max) {
		c->head_len = len;
		return;
	}
	/* A quarter for the start, the rest for the end: when a test
	 * crashes or times out, its last lines say why. */
	h = max / 4;
	t = len - (max - h);
	/* At most three steps each way: a UTF-8 character has at most
	 * three continuation bytes; bad input just gets cut. */
	for (int i = 0; i < 3 && h > 0 && rpt_is_continuation(p[h]); i++)
		h--;
	for (int i = 0; i < 3 && t < len && rpt_is_continuation(p[t]); i++)
		t++;
	c->head_len = h;
	c->tail = p + t;
	c->tail_len = len - t;
	c->omitted = t - h;
}

const char *
rpt_split_id(const char *id, char *buf, size_t size)
{
	const char *slash = strchr(id, '/');
	size_t n;

	if (size == 0)
		return id;
	if (slash == NULL) {
		buf[0] = '\0';
		return id;
	}
	n = (size_t)(slash - id);
	if (n >= size)
		n = size - 1;
	memcpy(buf, id, n);
	buf[n] = '\0';
	return slash + 1;
}

/*
 * fuzz_frame.c - libFuzzer harness for the frame decoder and encoder.
 *
 * Input: one byte choosing the limit, three bytes giving the sizes of the
 * pieces the rest arrives in (cycled), then the byte stream itself. The
 * stream is decoded twice, from an evbuffer fed piece by piece and with
 * frame_decode_mem over the whole; both must see the same frames and end
 * the same way. Every decoded object is encoded again and must decode to
 * an equal object, and encoding must be a fixed point.
 *
 * Any disagreement is a bug: the harness aborts so that libFuzzer keeps
 * the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "common.h"
#include "protocol.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES	256

static const size_t limits[] = { 16, 200, FRAME_LIMIT_PREAUTH,
    FRAME_LIMIT_DEFAULT };

struct outcome {
	json_t	*frames[MAX_FRAMES];
	int	 n;
	int	 end;		/* 0: needs more, -1: error */
	enum frame_error code;
};

static void
bug(const char *what, const struct frame_err *err)
{
	fprintf(stderr, "fuzz_frame: %s%s%s\n", what,
	    err != NULL ? ": " : "", err != NULL ? err->text : "");
	abort();
}

/* Encodes obj, decodes it back: equal, and encoding it again gives the
 * same bytes. */
static void
check_round_trip(json_t *obj)
{
	struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
	struct frame_err err;
	json_t *back;
	size_t n;

	if (frame_encode(a, obj, FRAME_LIMIT_MAX, &err) == -1)
		bug("a decoded object does not encode", &err);
	n = evbuffer_get_length(a);
	evbuffer_add(b, evbuffer_pullup(a, -1), n);
	if (frame_decode(a, FRAME_LIMIT_MAX, &back, &err) != 1)
		bug("an encoded object does not decode", &err);
	if (!json_equal(obj, back))
		bug("round trip changed the object", NULL);
	if (frame_encode(a, back, FRAME_LIMIT_MAX, &err) == -1)
		bug("re-encoding failed", &err);
	if (evbuffer_get_length(a) != n ||
	    memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) != 0)
		bug("encoding is not a fixed point", NULL);
	json_decref(back);
	evbuffer_free(a);
	evbuffer_free(b);
}

static void
decode_pieces(const uint8_t *p, size_t len, size_t limit,
    const uint8_t sizes[3], struct outcome *o)
{
	struct evbuffer *in = evbuffer_new();
	struct frame_err err;
	size_t off = 0, n;
	json_t *obj;
	int rc = 0, k = 0;

	o->end = 0;
	while (rc != -1 && o->n < MAX_FRAMES) {
		while ((rc = frame_decode(in, limit, &obj, &err)) == 1) {
			if (o->n == MAX_FRAMES) {
				json_decref(obj);
				break;
			}
			o->frames[o->n++] = obj;
		}
		if (rc == -1) {
			o->end = -1;
			o->code = err.code;
			if (err.code == FRAME_E_NONE)
				bug("error without a code", &err);
			break;
		}
		if (off == len)
			break;
		n = (size_t)sizes[k++ % 3] + 1;
		if (n > len - off)
			n = len - off;
		evbuffer_add(in, p + off, n);
		off += n;
	}
	evbuffer_free(in);
}

static void
decode_whole(const uint8_t *p, size_t len, size_t limit, struct outcome *o)
{
	struct frame_err err;
	json_t *obj;
	long used;

	o->end = 0;
	while (o->n < MAX_FRAMES) {
		used = frame_decode_mem(p, len, limit, &obj, &err);
		if (used == 0)
			break;
		if (used < 0) {
			o->end = -1;
			o->code = err.code;
			break;
		}
		if ((size_t)used > len || used <= FRAME_HEADER_SIZE)
			bug("frame_decode_mem used an impossible length", NULL);
		o->frames[o->n++] = obj;
		p += used;
		len -= (size_t)used;
	}
}

/* The fast path for flat objects (flat.c) must never accept what
 * jansson refuses, nor build anything different: the whole input as one
 * payload goes to both. */
static void
check_flat(const uint8_t *p, size_t n)
{
	json_t *fast = flat_parse(p, n), *slow;
	json_error_t jerr;

	if (fast == NULL)
		return;
	slow = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (slow == NULL)
		bug("the flat parser accepted what jansson refuses", NULL);
	if (!json_equal(fast, slow))
		bug("the flat parser built a different object", NULL);
	json_decref(fast);
	json_decref(slow);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome a, b;
	size_t limit;
	int i;

	check_flat(data, size);
	if (size < 4)
		return 0;
	limit = limits[data[0] % DM_NELEM(limits)];
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	decode_pieces(data + 4, size - 4, limit, data + 1, &a);
	decode_whole(data + 4, size - 4, limit, &b);

	/* Only compare while neither stopped at MAX_FRAMES. */
	if (a.n < MAX_FRAMES && b.n < MAX_FRAMES) {
		if (a.n != b.n)
			bug("pieces and whole decode different frame counts",
			    NULL);
		if (a.end != b.end || (a.end == -1 && a.code != b.code))
			bug("pieces and whole end differently", NULL);
	}
	for (i = 0; i < a.n && i < b.n; i++)
		if (!json_equal(a.frames[i], b.frames[i]))
			bug("pieces and whole decode different objects", NULL);
	for (i = 0; i < a.n; i++) {
		if (!json_is_object(a.frames[i]))
			bug("decoded a frame that is not an object", NULL);
		check_round_trip(a.frames[i]);
		json_decref(a.frames[i]);
	}
	for (i = 0; i < b.n; i++)
		json_decref(b.frames[i]);
	return 0;
}

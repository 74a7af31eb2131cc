/*
 * frame.c - length-prefixed JSON frames.
 *
 * A frame is a 4-byte big-endian length N and N bytes holding exactly one
 * JSON object. This is the first code that touches what a peer sends, so
 * it must never allocate on the strength of a length it has not checked
 * against the connection's limit, never recurse as deep as the input
 * asks, and never crash or loop on any byte sequence. Each way a frame
 * can be bad is a distinct error the caller can show.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "common.h"
#include "protocol.h"

static const char *frame_error_names[] = {
	[FRAME_E_NONE] = "OK",
	[FRAME_E_EMPTY] = "FRAME_EMPTY",
	[FRAME_E_TOO_LONG] = "FRAME_TOO_LONG",
	[FRAME_E_NOT_JSON] = "FRAME_NOT_JSON",
	[FRAME_E_NOT_OBJECT] = "FRAME_NOT_OBJECT",
	[FRAME_E_BAD_UTF8] = "FRAME_BAD_UTF8",
	[FRAME_E_TOO_DEEP] = "FRAME_TOO_DEEP",
	[FRAME_E_DUPLICATE_KEY] = "FRAME_DUPLICATE_KEY",
	[FRAME_E_ENCODE] = "FRAME_ENCODE",
};

const char *
frame_error_name(enum frame_error e)
{
	if ((size_t)e >= DM_NELEM(frame_error_names))
		return "FRAME_UNKNOWN";
	return frame_error_names[e];
}

static int DM_PRINTF(3, 4)
frame_fail(struct frame_err *err, enum frame_error code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->text, sizeof err->text, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * Walks a JSON text without parsing it, for what the parser would either
 * accept or have to recurse for: the nesting of objects and arrays, and
 * the escape \u0000 inside a string. On malformed JSON the answers may be
 * wrong either way, but the parser then refuses the text anyway; what
 * matters is that it is never handed anything nested deeper than the
 * bound. Indices, not pointers, so that a backslash at the very end
 * cannot step past the buffer. Returns FRAME_E_NONE, FRAME_E_TOO_DEEP or
 * FRAME_E_BAD_UTF8 (with the offset of the escape in *at).
 */
static enum frame_error
frame_scan(const unsigned char *p, size_t len, size_t *at)
{
	size_t i = 0;
	int depth = 0;

	while (i < len) {
		switch (p[i++]) {
		case '"':
			for (; i < len && p[i] != '"'; i++) {
				if (p[i] != '\\')
					continue;
				if (len - i >= 6 &&
				    memcmp(p + i, "\\u0000", 6) == 0) {
					*at = i;
					return FRAME_E_BAD_UTF8;
				}
				i++;	/* the escaped character */
			}
			i++;		/* the closing quote */
			break;
		case '{':
		case '[':
			if (++depth > FRAME_MAX_DEPTH)
				return FRAME_E_TOO_DEEP;
			break;
		case '}':
		case ']':
			depth--;
			break;
		}
	}
	return FRAME_E_NONE;
}

/* Parses one payload already checked for length. 0 or -1. */
static int
frame_parse(const unsigned char *p, size_t len, json_t **out,
    struct frame_err *err)
{
	json_error_t jerr;
	const unsigned char *nul;
	json_t *obj;
	size_t at = 0;

	/* Most frames are small flat objects: built directly (flat.c), or
	 * declined and parsed below, which decides every error. */
	if ((*out = flat_parse(p, len)) != NULL)
		return 0;
	/* jansson calls a raw NUL a syntax error; to us, as to the UTF-8
	 * repair every sender does, it is a character frames cannot hold. */
	if ((nul = memchr(p, '\0', len)) != NULL)
		return frame_fail(err, FRAME_E_BAD_UTF8,
		    "frame holds a NUL byte at byte %zu", (size_t)(nul - p));
	switch (frame_scan(p, len, &at)) {
	case FRAME_E_TOO_DEEP:
		return frame_fail(err, FRAME_E_TOO_DEEP,
		    "frame nests objects and arrays deeper than %d",
		    FRAME_MAX_DEPTH);
	case FRAME_E_BAD_UTF8:
		return frame_fail(err, FRAME_E_BAD_UTF8,
		    "frame holds \\u0000 in a string at byte %zu", at);
	default:
		break;
	}
	/* Any JSON value, so that a scalar is told apart as not an object. */
	obj = json_loadb((const char *)p, len,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (obj == NULL) {
		switch (json_error_code(&jerr)) {
		case json_error_invalid_utf8:
		case json_error_null_character:
		case json_error_null_byte_in_key:
			return frame_fail(err, FRAME_E_BAD_UTF8,
			    "frame is not valid UTF-8 at byte %d: %s",
			    jerr.position, jerr.text);
		case json_error_duplicate_key:
			return frame_fail(err, FRAME_E_DUPLICATE_KEY,
			    "frame has a duplicate key: %s", jerr.text);
		case json_error_stack_overflow:
			return frame_fail(err, FRAME_E_TOO_DEEP,
			    "frame nests too deep: %s", jerr.text);
		default:
			return frame_fail(err, FRAME_E_NOT_JSON,
			    "frame is not JSON at byte %d: %s",
			    jerr.position, jerr.text);
		}
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		return frame_fail(err, FRAME_E_NOT_OBJECT,
		    "frame holds JSON that is not an object");
	}
	*out = obj;
	return 0;
}

static int
frame_check_length(uint32_t n, size_t limit, struct frame_err *err)
{
	if (n == 0)
		return frame_fail(err, FRAME_E_EMPTY, "frame of length zero");
	if (n > limit)
		return frame_fail(err, FRAME_E_TOO_LONG,
		    "frame of %lu bytes is over the limit of %zu bytes",
		    (unsigned long)n, limit);
	return 0;
}

static uint32_t
frame_get_be32(const unsigned char *h)
{
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | (uint32_t)h[3];
}

int
frame_decode(struct evbuffer *in, size_t limit, json_t **out,
    struct frame_err *err)
{
	unsigned char hdr[FRAME_HEADER_SIZE], *p;
	size_t have = evbuffer_get_length(in);
	uint32_t n;
	int rc;

	if (have < FRAME_HEADER_SIZE)
		return 0;
	if (evbuffer_copyout(in, hdr, sizeof hdr) != (ssize_t)sizeof hdr)
		return frame_fail(err, FRAME_E_NOT_JSON, "cannot read header");
	n = frame_get_be32(hdr);
	if (frame_check_length(n, limit, err) == -1)
		return -1;
	if (have - FRAME_HEADER_SIZE < n)
		return 0;
	/* Contiguous bytes for the parser; bounded by the limit above. */
	if ((p = evbuffer_pullup(in, FRAME_HEADER_SIZE + n)) == NULL)
		return frame_fail(err, FRAME_E_NOT_JSON, "cannot gather frame");
	rc = frame_parse(p + FRAME_HEADER_SIZE, n, out, err);
	evbuffer_drain(in, FRAME_HEADER_SIZE + n);
	return rc == 0 ? 1 : -1;
}

long
frame_decode_mem(const void *data, size_t len, size_t limit, json_t **out,
    struct frame_err *err)
{
	const unsigned char *p = data;
	uint32_t n;

	if (len < FRAME_HEADER_SIZE)
		return 0;
	n = frame_get_be32(p);
	if (frame_check_length(n, limit, err) == -1)
		return -1;
	if (len - FRAME_HEADER_SIZE < n)
		return 0;
	if (frame_parse(p + FRAME_HEADER_SIZE, n, out, err) == -1)
		return -1;
	return (long)(FRAME_HEADER_SIZE + n);
}

/*
 * The encoder serialises into one scratch buffer that lives as long as
 * the process: both daemons are single-threaded, and reusing it saves an
 * allocation per frame on the hottest path (a result per test).
 */
static char	*frame_scratch;
static size_t	 frame_scratch_size;

int
frame_encode(struct evbuffer *out, const json_t *obj, size_t limit,
    struct frame_err *err)
{
	unsigned char hdr[FRAME_HEADER_SIZE];
	size_t n, at;

	if (!json_is_object(obj))
		return frame_fail(err, FRAME_E_NOT_OBJECT,
		    "only objects can be framed");
	n = json_dumpb(obj, frame_scratch, frame_scratch_size, JSON_COMPACT);
	if (n > frame_scratch_size) {
		if (n > limit)
			return frame_fail(err, FRAME_E_TOO_LONG,
			    "frame of %zu bytes is over the limit of %zu bytes",
			    n, limit);
		frame_scratch_size = n < 4096 ? 4096 : n + n / 2;
		frame_scratch = xreallocarray(frame_scratch, 1,
		    frame_scratch_size);
		n = json_dumpb(obj, frame_scratch, frame_scratch_size,
		    JSON_COMPACT);
	}
	if (n == 0)
		return frame_fail(err, FRAME_E_ENCODE,
		    "object cannot be encoded as JSON");
	if (n > limit)
		return frame_fail(err, FRAME_E_TOO_LONG,
		    "frame of %zu bytes is over the limit of %zu bytes",
		    n, limit);
	/* What the peer's decoder would refuse, and close the connection
	 * for, is refused here instead: the sender's mistake stays the
	 * sender's. */
	switch (frame_scan((unsigned char *)frame_scratch, n, &at)) {
	case FRAME_E_TOO_DEEP:
		return frame_fail(err, FRAME_E_TOO_DEEP,
		    "object nests objects and arrays deeper than %d",
		    FRAME_MAX_DEPTH);
	case FRAME_E_BAD_UTF8:
		return frame_fail(err, FRAME_E_BAD_UTF8,
		    "object holds U+0000 in a string, which frames cannot "
		    "carry");
	default:
		break;
	}
	hdr[0] = (unsigned char)(n >> 24);
	hdr[1] = (unsigned char)(n >> 16);
	hdr[2] = (unsigned char)(n >> 8);
	hdr[3] = (unsigned char)n;
	if (evbuffer_expand(out, sizeof hdr + n) == -1 ||
	    evbuffer_add(out, hdr, sizeof hdr) == -1 ||
	    evbuffer_add(out, frame_scratch, n) == -1)
		return frame_fail(err, FRAME_E_ENCODE, "out of buffer memory");
	return 0;
}

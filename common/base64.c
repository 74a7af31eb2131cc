/*
 * base64.c - the standard alphabet with padding (RFC 4648), for binary
 * payloads carried inside JSON strings. The decoder is strict: anything
 * but canonical padded base64 is refused, so one payload has one
 * encoding and a corrupted chunk is noticed rather than half-decoded.
 */
#include <string.h>

#include "common.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

void
base64_encode(const void *data, size_t len, char *out)
{
	const unsigned char *p = data;
	size_t i;
	uint32_t v;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*out++ = b64_alphabet[v >> 18];
		*out++ = b64_alphabet[(v >> 12) & 63];
		*out++ = b64_alphabet[(v >> 6) & 63];
		*out++ = b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)p[i] << 16;
		*out++ = b64_alphabet[v >> 18];
		*out++ = b64_alphabet[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (len - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		*out++ = b64_alphabet[v >> 18];
		*out++ = b64_alphabet[(v >> 12) & 63];
		*out++ = b64_alphabet[(v >> 6) & 63];
		*out++ = '=';
	}
	*out = '\0';
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
base64_decode(const char *in, size_t len, void *out)
{
	unsigned char *o = out;
	size_t i, pad = 0;
	int a, b, c, d;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad = (len > 1 && in[len - 2] == '=') ? 2 : 1;
	for (i = 0; i < len; i += 4) {
		int last = (i + 4 == len);

		a = b64_value(in[i]);
		b = b64_value(in[i + 1]);
		c = (last && pad == 2) ? 0 : b64_value(in[i + 2]);
		d = (last && pad >= 1) ? 0 : b64_value(in[i + 3]);
		if (a < 0 || b < 0 || c < 0 || d < 0)
			return -1;
		/* Canonical: the bits under the padding must be zero. */
		if (last && pad == 2 && (b & 15) != 0)
			return -1;
		if (last && pad == 1 && (c & 3) != 0)
			return -1;
		*o++ = (unsigned char)(a << 2 | b >> 4);
		if (!(last && pad == 2))
			*o++ = (unsigned char)((b & 15) << 4 | c >> 2);
		if (!(last && pad >= 1))
			*o++ = (unsigned char)((c & 3) << 6 | d);
	}
	return (long)(o - (unsigned char *)out);
}

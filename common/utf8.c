/*
 * utf8.c - UTF-8 validation and repair (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). Test output is arbitrary bytes and
 * JSON strings must be valid UTF-8, so output is repaired before it is
 * framed: every bad sequence and every NUL becomes U+FFFD.
 */
#include <string.h>

#include "common.h"

/* Length of the valid sequence starting at p (1..4), or 0 if invalid. */
static size_t
utf8_seq_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];

	if (c < 0x80)
		return c == 0 ? 0 : 1;
	if (c >= 0xc2 && c <= 0xdf) {
		if (avail < 2 || (p[1] & 0xc0) != 0x80)
			return 0;
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		if (avail < 3 || (p[1] & 0xc0) != 0x80 ||
		    (p[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && p[1] < 0xa0)	/* overlong */
			return 0;
		if (c == 0xed && p[1] >= 0xa0)	/* surrogate */
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (avail < 4 || (p[1] & 0xc0) != 0x80 ||
		    (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && p[1] < 0x90)	/* overlong */
			return 0;
		if (c == 0xf4 && p[1] >= 0x90)	/* above U+10FFFF */
			return 0;
		return 4;
	}
	return 0;
}

size_t
utf8_valid_prefix(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if (p[i] >= 0x01 && p[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = utf8_seq_len(p + i, len - i)) == 0)
			break;
		i += n;
	}
	return i;
}

char *
utf8_repair(const char *s, size_t len, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, n, good;
	char *out;

	good = utf8_valid_prefix(s, len);
	if (len > (SIZE_MAX - 1) / 3)
		fatalx("utf8_repair: %zu bytes is too long", len);
	/* Worst case: every byte becomes the 3-byte U+FFFD. */
	out = xmalloc(good == len ? len + 1 : len * 3 + 1);
	memcpy(out, s, good);
	i = o = good;
	while (i < len) {
		n = utf8_seq_len(p + i, len - i);
		if (n == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return out;
}

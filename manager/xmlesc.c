/*
 * xmlesc.c - XML 1.0 text from arbitrary bytes, for the JUnit reporter.
 *
 * A test's output and messages are whatever the test printed: invalid
 * UTF-8, NUL, ANSI colour escapes. XML 1.0 forbids most control
 * characters even as character references, and one stray byte makes a CI
 * server reject the whole report. So every byte goes through here, and
 * what comes out must always be well-formed; it must never drop a
 * character silently (a replaced one stays visible as "\xNN").
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "manager.h"

/* The length of the UTF-8 sequence p[0..] starts, 1 for ASCII, or 0
 * when it is not a valid character. */
static size_t
xml_char_len(const unsigned char *p, size_t avail)
{
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xf0)
		n = 4;
	else if (p[0] >= 0xe0)
		n = 3;
	else
		n = 2;
	if (n > avail || utf8_valid_prefix((const char *)p, n) != n)
		return 0;
	return n;
}

/* What to write instead of the ASCII byte c, or NULL to keep it. */
static const char *
xml_ascii_subst(unsigned char c, int attr, char *tmp, size_t tmpsize)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";	/* "]]>" is not allowed in text */
	case '"':
		return attr ? "&quot;" : NULL;
	case '\t':
		return attr ? "&#9;" : NULL;
	case '\n':
		return attr ? "&#10;" : NULL;
	case '\r':
		return "&#13;";	/* a raw CR would be read back as LF */
	}
	if (c < 0x20 || c == 0x7f) {
		snprintf(tmp, tmpsize, "\\x%02X", c);
		return tmp;
	}
	return NULL;
}

void
xml_escape(FILE *fp, const char *s, size_t len, int attr)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0, n;
	const char *sub;
	char tmp[16];

	while (i < len) {
		n = xml_char_len(p + i, len - i);
		sub = NULL;
		if (n == 1)
			sub = xml_ascii_subst(p[i], attr, tmp, sizeof tmp);
		else if (n == 0)
			sub = "\xef\xbf\xbd";	/* U+FFFD */
		else if (n == 3 && p[i] == 0xef && p[i + 1] == 0xbf &&
		    p[i + 2] >= 0xbe) {
			snprintf(tmp, sizeof tmp, "\\u%s",
			    p[i + 2] == 0xbe ? "FFFE" : "FFFF");
			sub = tmp;
		}
		if (sub == NULL) {
			i += n;
			run += n;
			continue;
		}
		if (run > 0)
			fwrite(p + i - run, 1, run, fp);
		fputs(sub, fp);
		i += n == 0 ? 1 : n;
		run = 0;
	}
	if (run > 0)
		fwrite(p + i - run, 1, run, fp);
}

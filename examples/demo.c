/*
 * demo.c - the suite `make demo` runs: a small string and INI-parsing
 * library ("strkit") and its tests, as a user's own suite would look.
 *
 * Most tests pass. A few fail on purpose, each the way real suites fail,
 * so that the demo shows every kind of result distmgr reports:
 *
 *   str/title_case_hyphen      a bug: fails with a message and output
 *   ini/get_or_default         a bug: NULL dereference, SIGSEGV (crash)
 *   ini/reload_waits_for_writer waits for a writer that never comes
 *                              (timeout, .timeout = 1)
 *   ini/load_from_url          needs the network: skipped
 *   num/parse_hex              not implemented yet: .todo (xfail)
 *   *_fuzz, *_large, *_exhaustive   slower tests, to watch the status line
 *
 * It must stay a plain suite: nothing but <distmgr.h> and libc, built
 * with `cc -shared -fPIC`. The library lives in this file only because
 * the Makefile builds each C file in examples/ into its own suite.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <distmgr.h>

/* ==== strkit: the library under test =================================== */

/* Trims white space at both ends, in place. */
static char *
str_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* Splits s at sep into at most max fields (pointers into s, which is
 * modified); returns how many. */
static int
str_split(char *s, char sep, char **fields, int max)
{
	int n = 0;

	if (max <= 0)
		return 0;
	fields[n++] = s;
	for (; *s != '\0'; s++) {
		if (*s == sep && n < max) {
			*s = '\0';
			fields[n++] = s + 1;
		}
	}
	return n;
}

/* Joins fields with sep into out (size bytes); returns the length, or
 * -1 if it does not fit. */
static int
str_join(char *const *fields, int n, char sep, char *out, size_t size)
{
	size_t len = 0, flen;
	int i;

	for (i = 0; i < n; i++) {
		flen = strlen(fields[i]);
		if (len + flen + (i > 0) + 1 > size)
			return -1;
		if (i > 0)
			out[len++] = sep;
		memcpy(out + len, fields[i], flen);
		len += flen;
	}
	out[len] = '\0';
	return (int)len;
}

/* Upper-cases the first letter of each word. Bug: a word starts only
 * after a space, so "o'neil-smith" becomes "O'neil-smith". */
static void
str_title(char *s)
{
	int start = 1;

	for (; *s != '\0'; s++) {
		if (start && isalpha((unsigned char)*s))
			*s = (char)toupper((unsigned char)*s);
		start = *s == ' ';
	}
}

/* Parses a decimal long with overflow checks: 0, or -1 with errno. */
static int
num_parse_long(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (errno == ERANGE)
		return -1;
	*out = v;
	return 0;
}

/* Like num_parse_long, and "0x..." too, one day. */
static int
num_parse(const char *s, long *out)
{
	return num_parse_long(s, out);
}

#define INI_MAX 256

struct ini_entry {
	char	 section[64];
	char	 key[64];
	char	 value[256];
};

struct ini {
	struct ini_entry e[INI_MAX];
	int	 n;
	int	 line_error;		/* first bad line, 0 if none */
};

static void
ini_parse_line(struct ini *ini, char *line, char *section, int lineno)
{
	char *eq, *key, *value;

	line = str_trim(line);
	if (*line == '\0' || *line == ';' || *line == '#')
		return;
	if (*line == '[') {
		char *close = strchr(line, ']');

		if (close == NULL) {
			if (ini->line_error == 0)
				ini->line_error = lineno;
			return;
		}
		*close = '\0';
		snprintf(section, 64, "%s", str_trim(line + 1));
		return;
	}
	if ((eq = strchr(line, '=')) == NULL || ini->n == INI_MAX) {
		if (ini->line_error == 0)
			ini->line_error = lineno;
		return;
	}
	*eq = '\0';
	key = str_trim(line);
	value = str_trim(eq + 1);
	snprintf(ini->e[ini->n].section, 64, "%s", section);
	snprintf(ini->e[ini->n].key, 64, "%s", key);
	snprintf(ini->e[ini->n].value, 256, "%s", value);
	ini->n++;
}

static void
ini_parse(struct ini *ini, const char *text)
{
	char *copy = strdup(text), *line, *save = NULL, section[64] = "";
	int lineno = 0;

	memset(ini, 0, sizeof *ini);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		ini_parse_line(ini, line, section, ++lineno);
	free(copy);
}

static const char *
ini_get(const struct ini *ini, const char *section, const char *key)
{
	int i;

	for (i = ini->n - 1; i >= 0; i--) {
		if (strcmp(ini->e[i].section, section) == 0 &&
		    strcmp(ini->e[i].key, key) == 0)
			return ini->e[i].value;
	}
	return NULL;
}

/* Bug: the default is never used; a missing key gives NULL. */
static const char *
ini_get_or(const struct ini *ini, const char *section, const char *key,
    const char *dflt)
{
	const char *v = ini_get(ini, section, key);

	(void)dflt;
	return v;
}

/* A writer process would release the lock when it has written the file;
 * the test below never starts one. */
static volatile int ini_writer_done;

static int
ini_reload_shared(struct ini *ini, const char *text)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	while (!ini_writer_done)
		nanosleep(&ts, NULL);
	ini_parse(ini, text);
	return 0;
}

/* A small deterministic generator for the fuzz tests. */
static unsigned long
rng_next(unsigned long *state)
{
	*state = *state * 6364136223846793005UL + 1442695040888963407UL;
	return *state >> 33;
}

/* ==== the tests ========================================================= */

DM_SUITE(ini, .timeout = 10);

DM_TEST(str, trim_both_ends)
{
	char buf[] = "  hello world \t\n";

	DM_ASSERT_STR_EQ(str_trim(buf), "hello world");
}

DM_TEST(str, trim_empty)
{
	char buf[] = "   ";

	DM_ASSERT_STR_EQ(str_trim(buf), "");
}

DM_TEST(str, split_fields)
{
	char buf[] = "a,b,,d";
	char *f[8];

	DM_ASSERT_EQ(str_split(buf, ',', f, 8), 4);
	DM_ASSERT_STR_EQ(f[0], "a");
	DM_ASSERT_STR_EQ(f[2], "");
	DM_ASSERT_STR_EQ(f[3], "d");
}

DM_TEST(str, split_max_fields)
{
	char buf[] = "k=v=w";
	char *f[2] = { NULL, NULL };

	DM_ASSERT_EQ(str_split(buf, '=', f, 2), 2);
	DM_ASSERT_STR_EQ(f[1], "v=w");
}

DM_TEST(str, join_fields)
{
	char *f[] = { "usr", "local", "lib" };
	char out[32];

	DM_ASSERT_EQ(str_join(f, 3, '/', out, sizeof out), 13);
	DM_ASSERT_STR_EQ(out, "usr/local/lib");
}

DM_TEST(str, join_too_small)
{
	char *f[] = { "abc", "def" };
	char out[7];

	DM_ASSERT_EQ(str_join(f, 2, ',', out, sizeof out), -1);
}

DM_TEST(str, title_case_words)
{
	char buf[] = "the quick brown fox";

	str_title(buf);
	DM_ASSERT_STR_EQ(buf, "The Quick Brown Fox");
}

DM_TEST(str, title_case_hyphen)
{
	static const char *names[][2] = {
		{ "ada lovelace", "Ada Lovelace" },
		{ "jean-luc picard", "Jean-Luc Picard" },
		{ "o'neil-smith", "O'Neil-Smith" },
	};
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(buf, sizeof buf, "%s", names[i][0]);
		str_title(buf);
		printf("title(\"%s\") = \"%s\"\n", names[i][0], buf);
		DM_ASSERT_STR_EQ(buf, names[i][1], "name %zu of %zu", i + 1,
		    sizeof names / sizeof names[0]);
	}
}

DM_TEST(str, split_join_roundtrip_fuzz)
{
	unsigned long rng = 42;
	char buf[128], copy[128], out[128], *f[64];
	int iter, len, i, n;

	for (iter = 0; iter < 1500000; iter++) {
		len = (int)(rng_next(&rng) % 60);
		for (i = 0; i < len; i++)
			buf[i] = "ab,c"[rng_next(&rng) % 4];
		buf[len] = '\0';
		memcpy(copy, buf, (size_t)len + 1);
		n = str_split(buf, ',', f, 64);
		DM_ASSERT_GE(str_join(f, n, ',', out, sizeof out), 0);
		DM_ASSERT_STR_EQ(out, copy, "iteration %d", iter);
	}
}

DM_TEST(num, parse_decimal)
{
	long v = 0;

	DM_ASSERT_EQ(num_parse("12345", &v), 0);
	DM_ASSERT_EQ(v, 12345);
	DM_ASSERT_EQ(num_parse("-7", &v), 0);
	DM_ASSERT_EQ(v, -7);
}

DM_TEST(num, rejects_junk)
{
	long v;

	DM_ASSERT_EQ(num_parse("12abc", &v), -1);
	DM_ASSERT_EQ(num_parse("", &v), -1);
	DM_ASSERT_EQ(errno, EINVAL);
}

DM_TEST(num, detects_overflow)
{
	long v;

	DM_ASSERT_EQ(num_parse("99999999999999999999999", &v), -1);
	DM_ASSERT_EQ(errno, ERANGE);
}

DM_TEST(num, parse_hex, .todo = "hex literals are not supported yet "
    "(issue 12)")
{
	long v = 0;

	DM_ASSERT_EQ(num_parse("0x1f", &v), 0);
	DM_ASSERT_EQ(v, 31);
}

DM_TEST(num, parse_exhaustive)
{
	char buf[32];
	long i, v;

	for (i = -3000000; i <= 3000000; i += 1) {
		snprintf(buf, sizeof buf, "%ld", i);
		if (num_parse(buf, &v) != 0 || v != i)
			DM_FAIL("%s parsed as %ld", buf, v);
	}
}

static const char *config =
    "; strkit.ini\n"
    "[server]\n"
    "host = example.org\n"
    "port = 8080\n"
    "\n"
    "[client]\n"
    "retries=3\n"
    "# comment\n"
    "timeout = 2.5\n";

DM_TEST(ini, parse_sections)
{
	struct ini ini;

	ini_parse(&ini, config);
	DM_ASSERT_EQ(ini.n, 4);
	DM_ASSERT_EQ(ini.line_error, 0);
	DM_ASSERT_STR_EQ(ini_get(&ini, "server", "host"), "example.org");
	DM_ASSERT_STR_EQ(ini_get(&ini, "client", "timeout"), "2.5");
}

DM_TEST(ini, missing_key_is_null)
{
	struct ini ini;

	ini_parse(&ini, config);
	DM_ASSERT_NULL(ini_get(&ini, "server", "user"));
}

DM_TEST(ini, reports_bad_line)
{
	struct ini ini;

	ini_parse(&ini, "[a]\nx = 1\n[broken\ny = 2\n");
	DM_ASSERT_EQ(ini.line_error, 3);
}

DM_TEST(ini, get_or_default)
{
	struct ini ini;
	const char *user;

	ini_parse(&ini, config);
	printf("parsed %d keys; looking up server.user\n", ini.n);
	user = ini_get_or(&ini, "server", "user", "nobody");
	printf("user is %zu bytes long\n", strlen(user));
	DM_ASSERT_STR_EQ(user, "nobody");
}

DM_TEST(ini, reload_waits_for_writer, .timeout = 1)
{
	struct ini ini;

	printf("waiting for the writer to release strkit.ini\n");
	ini_reload_shared(&ini, config);
	DM_ASSERT_EQ(ini.n, 4);
}

DM_TEST(ini, load_from_url)
{
	if (getenv("STRKIT_NET") == NULL)
		DM_SKIP("needs network access; set STRKIT_NET=1 to run it");
}

DM_TEST(ini, parse_large)
{
	char *text, *p;
	struct ini ini;
	int round, i;

	text = malloc(250 * 64);
	DM_ASSERT_NOT_NULL(text);
	for (round = 0; round < 4000; round++) {
		p = text;
		p += sprintf(p, "[big]\n");
		for (i = 0; i < 250; i++)
			p += sprintf(p, "key%d = value number %d\n", i, round);
		ini_parse(&ini, text);
		DM_ASSERT_EQ(ini.n, 250);
		DM_ASSERT_NOT_NULL(ini_get(&ini, "big", "key249"));
	}
	free(text);
}

DM_TEST(ini, last_value_wins)
{
	struct ini ini;

	ini_parse(&ini, "[a]\nk = 1\nk = 2\n");
	DM_ASSERT_STR_EQ(ini_get(&ini, "a", "k"), "2");
}

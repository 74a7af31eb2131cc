/*
 * conf.c - the project file, distmgr.conf: "name = value" lines whose
 * names are distmgr's long options. This file only reads and splits
 * lines; options.c gives them meaning, so that a setting means the same
 * in the file as on the command line. Every refusal names the file and
 * the line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "manager.h"

#define CONF_MAX_LINE	4096
#define CONF_MAX_ENTRIES 10000

void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->entries[i].name);
		free(c->entries[i].value);
	}
	free(c->entries);
	free(c->path);
	free(c);
}

static char *
conf_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int
conf_name_ok(const char *name)
{
	const char *p;

	if (!isalpha((unsigned char)name[0]))
		return 0;
	for (p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return 0;
	return 1;
}

/* One line; 0, 1 when it held a setting, -1 with why. */
static int
conf_line(struct conf *c, char *line, int lineno, char *why, size_t whylen)
{
	char *eq, *name, *value;

	/* A '#' starts a comment only at the start of a line or after
	 * blanks, so that values may hold '#' (a glob, a URL fragment). */
	name = conf_trim(line);
	if (*name == '\0' || *name == '#')
		return 0;
	if ((eq = strchr(name, '=')) == NULL) {
		snprintf(why, whylen, "%s:%d: expected 'name = value'",
		    c->path, lineno);
		return -1;
	}
	*eq = '\0';
	name = conf_trim(name);
	value = conf_trim(eq + 1);
	if (!conf_name_ok(name)) {
		snprintf(why, whylen, "%s:%d: '%s' is not a setting name",
		    c->path, lineno, name);
		return -1;
	}
	if (c->n >= CONF_MAX_ENTRIES) {
		snprintf(why, whylen, "%s:%d: more than %d settings", c->path,
		    lineno, CONF_MAX_ENTRIES);
		return -1;
	}
	c->entries = xreallocarray(c->entries, c->n + 1, sizeof *c->entries);
	c->entries[c->n].name = xstrdup(name);
	c->entries[c->n].value = xstrdup(value);
	c->entries[c->n].line = lineno;
	c->n++;
	return 1;
}

struct conf *
conf_load(const char *path, char *why, size_t whylen)
{
	struct conf *c;
	FILE *fp;
	char buf[CONF_MAX_LINE + 2];
	int lineno = 0;
	size_t len;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	c = xcalloc(1, sizeof *c);
	c->path = xstrdup(path);
	while (fgets(buf, sizeof buf, fp) != NULL) {
		lineno++;
		len = strlen(buf);
		if (len > CONF_MAX_LINE && buf[len - 1] != '\n') {
			snprintf(why, whylen, "%s:%d: line longer than %d bytes",
			    path, lineno, CONF_MAX_LINE);
			goto fail;
		}
		if (conf_line(c, buf, lineno, why, whylen) == -1)
			goto fail;
	}
	if (ferror(fp)) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(fp);
	return c;
fail:
	fclose(fp);
	conf_free(c);
	return NULL;
}

int
conf_bool(const char *v)
{
	static const char *yes[] = { "yes", "true", "on", "1" };
	static const char *no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < DM_NELEM(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

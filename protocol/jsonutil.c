/*
 * jsonutil.c - small jansson helpers shared by both daemons: strings from
 * untrusted bytes, and lookups with defaults for optional fields.
 */
#include <stdlib.h>

#include "common.h"
#include "protocol.h"

json_t *
json_string_lossy(const char *p, size_t len)
{
	json_t *s;
	char *fixed;
	size_t n;

	/* jansson refuses a NULL pointer even for no bytes: an empty
	 * capture must not look like running out of memory. */
	if (len == 0)
		p = "";
	if (utf8_valid_prefix(p, len) == len)
		s = json_stringn_nocheck(p, len);
	else {
		fixed = utf8_repair(p, len, &n);
		s = json_stringn_nocheck(fixed, n);
		free(fixed);
	}
	if (s == NULL)
		fatalx("json: out of memory for a string of %zu bytes", len);
	return s;
}

const char *
json_get_str(const json_t *obj, const char *key, const char *dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : dflt;
}

long long
json_get_int(const json_t *obj, const char *key, long long dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

double
json_get_num(const json_t *obj, const char *key, double dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

int
json_get_bool(const json_t *obj, const char *key, int dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

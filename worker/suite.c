/*
 * suite.c - a suite shared object: dlopen, the versioned entry point, the
 * registry's validation, and the test list every worker must agree on
 * (its order, its entries and its hash, as distmgr-protocol(7) defines
 * them).
 *
 * The registry is the suite author's data and is checked before it is
 * believed: ABI versions first (a layout we do not know is never read
 * further), then names, lengths and duplicates. A bad suite is a load
 * error with a sentence, never a crash of the worker; what this file
 * cannot guard against is code the suite's constructors run in dlopen.
 */
#include <sys/stat.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"

struct suite {
	char			*path;
	void			*dl;
	const struct dm_registry *reg;
	struct suite_test	*tests;
	size_t			 ntests;
	struct suite_group	*groups;
	size_t			 ngroups;
	char			 hash[SHA256_HEX_LEN + 1];
};

/* Entry points of later ABIs, tried only to say why a suite is refused. */
#define SUITE_ENTRY_NAME	"dm_suite_entry_v1"
#define SUITE_NEWEST_ABI_PROBE	9

typedef const struct dm_registry *(*suite_entry_fn)(const struct dm_host *);

static int DM_PRINTF(3, 4)
suite_fail(struct suite_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof err->text, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- a small open-addressing table of indices -------------------------- */

/* Keys are whatever eq compares; slots hold index + 1 (0 is empty). */
struct itable {
	size_t	*slot;
	size_t	 mask;
};

typedef int (*itable_eq_fn)(size_t index, const void *key, const void *ctx);

static void
itable_init(struct itable *t, size_t n)
{
	size_t size = 16;

	while (size < n * 2)
		size *= 2;
	t->slot = xcalloc(size, sizeof *t->slot);
	t->mask = size - 1;
}

static void
itable_free(struct itable *t)
{
	free(t->slot);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t *
itable_find(struct itable *t, uint64_t hash, itable_eq_fn eq,
    const void *key, const void *ctx)
{
	size_t i = (size_t)hash & t->mask;

	while (t->slot[i] != 0 && !eq(t->slot[i] - 1, key, ctx))
		i = (i + 1) & t->mask;
	return &t->slot[i];
}

static uint64_t
fnv1a(uint64_t h, const char *s)
{
	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_SEED 0xcbf29ce484222325ULL

/* ---- loading ------------------------------------------------------------ */

static int
suite_open(struct suite *s, const char *path, struct suite_error *err)
{
	char local[PATH_MAX + 3];
	struct stat st;
	const char *why;

	if (stat(path, &st) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return suite_fail(err, SUITE_E_NO_SUCH_FILE,
			    "no such file: %s", path);
		return suite_fail(err, SUITE_E_FAILED, "cannot read %s: %s",
		    path, strerror(errno));
	}
	if (!S_ISREG(st.st_mode))
		return suite_fail(err, SUITE_E_NOT_A_SUITE,
		    "not a suite: %s is not a regular file", path);
	/* A name without a slash is searched for as a library: "./" makes
	 * it the file the user named. */
	if (strchr(path, '/') == NULL) {
		snprintf(local, sizeof local, "./%s", path);
		path = local;
	}
	/* RTLD_NOW: a missing symbol is a load error, not a crash in a test.
	 * RTLD_LOCAL: two suites never resolve to each other's symbols. */
	if ((s->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		why = dlerror();
		return suite_fail(err, SUITE_E_NOT_A_SUITE, "not a suite: %s",
		    why != NULL ? why : path);
	}
	return 0;
}

static int
suite_no_entry(struct suite *s, const char *path, struct suite_error *err)
{
	char name[64];
	int abi;

	for (abi = DM_ABI_VERSION + 1; abi <= SUITE_NEWEST_ABI_PROBE; abi++) {
		snprintf(name, sizeof name, "dm_suite_entry_v%d", abi);
		if (dlsym(s->dl, name) != NULL)
			return suite_fail(err, SUITE_E_ABI_MISMATCH,
			    "%s was built for suite ABI %d; this worker loads "
			    "ABI %d", path, abi, DM_ABI_VERSION);
	}
	return suite_fail(err, SUITE_E_NOT_A_SUITE, "not a suite: %s has no "
	    "%s (was it built with distmgr.h?)", path, SUITE_ENTRY_NAME);
}

static int
suite_enter(struct suite *s, const char *path, const struct dm_host *host,
    struct suite_error *err)
{
	suite_entry_fn entry;

	*(void **)&entry = dlsym(s->dl, SUITE_ENTRY_NAME);
	if (entry == NULL)
		return suite_no_entry(s, path, err);
	s->reg = entry(host);
	if (s->reg == NULL)
		return suite_fail(err, SUITE_E_NOT_A_SUITE,
		    "not a suite: %s gave no registry", path);
	if (s->reg->abi != DM_ABI_VERSION)
		return suite_fail(err, SUITE_E_ABI_MISMATCH,
		    "%s has a registry of suite ABI %u; this worker loads "
		    "ABI %d", path, s->reg->abi, DM_ABI_VERSION);
	if ((s->reg->ntests > 0 && s->reg->tests == NULL) ||
	    (s->reg->nsuites > 0 && s->reg->suites == NULL))
		return suite_fail(err, SUITE_E_NOT_A_SUITE,
		    "not a suite: %s has a registry without its arrays", path);
	return 0;
}

/* ---- validation --------------------------------------------------------- */

static int
suite_check_string(const char *what, const char *v, const struct dm_test *t,
    struct suite_error *err)
{
	size_t n;

	if (v == NULL)
		return 0;
	if ((n = strnlen(v, SUITE_STRING_MAX + 1)) > SUITE_STRING_MAX)
		return suite_fail(err, SUITE_E_NOT_A_SUITE, "not a suite: the "
		    "%s of %.64s/%.64s is longer than %d bytes", what,
		    t->suite, t->name, SUITE_STRING_MAX);
	return 0;
}

static int
suite_check_test(const struct dm_test *t, size_t i, const char *path,
    struct suite_error *err)
{
	if (t->abi != DM_ABI_VERSION)
		return suite_fail(err, SUITE_E_ABI_MISMATCH, "test #%zu of %s "
		    "was built for suite ABI %u; this worker loads ABI %d", i,
		    path, t->abi, DM_ABI_VERSION);
	if (t->suite == NULL || t->name == NULL || t->file == NULL ||
	    t->fn == NULL)
		return suite_fail(err, SUITE_E_NOT_A_SUITE, "not a suite: "
		    "test #%zu of %s lacks a name, file or function", i, path);
	if (suite_check_string("suite name", t->suite, t, err) == -1 ||
	    suite_check_string("name", t->name, t, err) == -1 ||
	    suite_check_string("file name", t->file, t, err) == -1 ||
	    suite_check_string("todo reason", t->opt.todo, t, err) == -1 ||
	    suite_check_string("skip reason", t->opt.skip, t, err) == -1 ||
	    suite_check_string("group", t->opt.group, t, err) == -1 ||
	    suite_check_string("strategy", t->opt.strategy, t, err) == -1 ||
	    suite_check_string("lock", t->opt.lock, t, err) == -1 ||
	    suite_check_string("tags", t->opt.tags, t, err) == -1)
		return -1;
	return 0;
}

/* Copies the tests out of the registry, skipping NULL entries (padding
 * some toolchains put between section entries). */
static int
suite_collect(struct suite *s, const char *path, struct suite_error *err)
{
	const struct dm_test *t;
	size_t i;

	s->tests = xcalloc(s->reg->ntests + 1, sizeof *s->tests);
	for (i = 0; i < s->reg->ntests; i++) {
		if ((t = s->reg->tests[i]) == NULL)
			continue;
		if (suite_check_test(t, i, path, err) == -1)
			return -1;
		s->tests[s->ntests].at = i;
		s->tests[s->ntests].defaults_at = -1;
		s->tests[s->ntests++].def = t;
	}
	if (s->ntests == 0)
		return suite_fail(err, SUITE_E_NO_TESTS, "no tests in %s",
		    path);
	return 0;
}

static int
id_eq(size_t index, const void *key, const void *ctx)
{
	const struct suite_test *tests = ctx;
	const struct dm_test *a = tests[index].def, *b = key;

	return strcmp(a->name, b->name) == 0 && strcmp(a->suite, b->suite) == 0;
}

static uint64_t
id_hash(const struct dm_test *t)
{
	return fnv1a(fnv1a(fnv1a(FNV_SEED, t->suite), "/"), t->name);
}

static int
suite_check_duplicates(struct suite *s, struct suite_error *err)
{
	struct itable tab;
	const struct dm_test *t, *first;
	size_t i, *slot;
	int rc = 0;

	itable_init(&tab, s->ntests);
	for (i = 0; i < s->ntests && rc == 0; i++) {
		t = s->tests[i].def;
		slot = itable_find(&tab, id_hash(t), id_eq, t, s->tests);
		if (*slot == 0) {
			*slot = i + 1;
			continue;
		}
		first = s->tests[*slot - 1].def;
		rc = suite_fail(err, SUITE_E_DUPLICATE_ID, "duplicate test id "
		    "%.200s/%.200s: %.250s:%d and %.250s:%d", t->suite,
		    t->name, first->file, first->line, t->file, t->line);
	}
	itable_free(&tab);
	return rc;
}

static int
suite_check_defaults(const struct dm_suite_def *d, size_t i,
    const char *path, struct suite_error *err)
{
	const char *v[] = { d->suite, d->file, d->opt.tags, d->opt.group,
	    d->opt.strategy };
	size_t k;

	if (d->suite == NULL || d->file == NULL)
		return suite_fail(err, SUITE_E_NOT_A_SUITE, "not a suite: "
		    "DM_SUITE #%zu of %s lacks a name or file", i, path);
	for (k = 0; k < DM_NELEM(v); k++)
		if (v[k] != NULL &&
		    strnlen(v[k], SUITE_STRING_MAX + 1) > SUITE_STRING_MAX)
			return suite_fail(err, SUITE_E_NOT_A_SUITE, "not a "
			    "suite: a string of DM_SUITE(%.64s) is longer "
			    "than %d bytes", d->suite, SUITE_STRING_MAX);
	return 0;
}

static int
sdef_eq(size_t index, const void *key, const void *ctx)
{
	const struct dm_suite_def *const *defs = ctx;

	return strcmp(defs[index]->suite, key) == 0;
}

/* Points every test at its suite's DM_SUITE defaults, if it has any. */
static int
suite_apply_defaults(struct suite *s, const char *path,
    struct suite_error *err)
{
	const struct dm_suite_def *const *defs = s->reg->suites, *d;
	struct itable tab;
	size_t i, *slot;
	int rc = 0;

	itable_init(&tab, s->reg->nsuites);
	for (i = 0; i < s->reg->nsuites && rc == 0; i++) {
		if ((d = defs[i]) == NULL)
			continue;
		if (d->abi != DM_ABI_VERSION) {
			rc = suite_fail(err, SUITE_E_ABI_MISMATCH, "DM_SUITE "
			    "#%zu of %s was built for suite ABI %u; this "
			    "worker loads ABI %d", i, path, d->abi,
			    DM_ABI_VERSION);
			break;
		}
		if ((rc = suite_check_defaults(d, i, path, err)) == -1)
			break;
		slot = itable_find(&tab, fnv1a(FNV_SEED, d->suite), sdef_eq,
		    d->suite, defs);
		if (*slot != 0)
			rc = suite_fail(err, SUITE_E_DUPLICATE_ID, "duplicate "
			    "DM_SUITE(%.200s): %.250s:%d and %.250s:%d",
			    d->suite, defs[*slot - 1]->file,
			    defs[*slot - 1]->line, d->file, d->line);
		else
			*slot = i + 1;
	}
	for (i = 0; i < s->ntests && rc == 0 && s->reg->nsuites > 0; i++) {
		slot = itable_find(&tab, fnv1a(FNV_SEED, s->tests[i].def->suite),
		    sdef_eq, s->tests[i].def->suite, defs);
		s->tests[i].defaults = *slot != 0 ? defs[*slot - 1] : NULL;
		s->tests[i].defaults_at = (long)*slot - 1;
	}
	itable_free(&tab);
	return rc;
}

/* ---- groups ---------------------------------------------------------------- */

static const char *const strategy_names[] = {
	[STRATEGY_FREE] = "free",
	[STRATEGY_SERIAL] = "serial",
	[STRATEGY_ISOLATED_FREE] = "isolated_free",
	[STRATEGY_ISOLATED_SERIAL] = "isolated_serial",
};

const char *
suite_strategy_name(enum suite_strategy st)
{
	return (size_t)st < DM_NELEM(strategy_names) ? strategy_names[st] :
	    "free";
}

int
suite_strategy_parse(const char *word)
{
	size_t i;

	for (i = 0; word != NULL && i < DM_NELEM(strategy_names); i++)
		if (strcmp(word, strategy_names[i]) == 0)
			return (int)i;
	return -1;
}

/* Where a group's strategy was said, for the message that names two. */
struct gplace {
	int		 set;
	int		 strategy;
	char		 where[600];
};

static int
group_eq(size_t index, const void *key, const void *ctx)
{
	const struct suite_group *g = ctx;

	return strcmp(g[index].name, key) == 0;
}

static int
strategy_word(const char *word, const char *where, struct suite_error *err)
{
	int st = suite_strategy_parse(word);

	if (st < 0)
		return suite_fail(err, SUITE_E_BAD_OPTION, "%s: unknown "
		    "strategy '%.64s' (free, serial, isolated_free or "
		    "isolated_serial)", where, word);
	return st;
}

/* The strategy declared at where joins g's; two that differ are an
 * error naming both places. */
static int
group_declare(const struct suite_group *g, struct gplace *pl, int st,
    const char *where, struct suite_error *err)
{
	if (!pl->set) {
		pl->set = 1;
		pl->strategy = st;
		snprintf(pl->where, sizeof pl->where, "%s", where);
		return 0;
	}
	if (pl->strategy == st)
		return 0;
	return suite_fail(err, SUITE_E_STRATEGY_CONFLICT, "group '%.200s' is "
	    "declared %s by %s and %s by %s", g->name,
	    suite_strategy_name((enum suite_strategy)pl->strategy), pl->where,
	    suite_strategy_name((enum suite_strategy)st), where);
}

/* The group called name, made when new; its DM_GROUP found in defs. */
static long
group_get(struct suite *s, struct itable *tab, struct gplace **pl,
    size_t *cap, const char *name)
{
	size_t *slot = itable_find(tab, fnv1a(FNV_SEED, name), group_eq, name,
	    s->groups);
	struct suite_group *g;

	if (*slot != 0)
		return (long)*slot - 1;
	if (s->ngroups == *cap) {
		*cap = *cap == 0 ? 8 : *cap * 2;
		s->groups = xreallocarray(s->groups, *cap, sizeof *s->groups);
		*pl = xreallocarray(*pl, *cap, sizeof **pl);
	}
	g = &s->groups[s->ngroups];
	memset(g, 0, sizeof *g);
	memset(&(*pl)[s->ngroups], 0, sizeof **pl);
	g->name = name;
	g->def_at = -1;
	*slot = ++s->ngroups;
	return (long)s->ngroups - 1;
}

static int
suite_check_group_def(const struct dm_group_def *d, size_t i,
    const char *path, struct suite_error *err)
{
	if (d->abi != DM_ABI_VERSION)
		return suite_fail(err, SUITE_E_ABI_MISMATCH, "DM_GROUP #%zu of "
		    "%s was built for suite ABI %u; this worker loads ABI %d",
		    i, path, d->abi, DM_ABI_VERSION);
	if (d->group == NULL || d->file == NULL)
		return suite_fail(err, SUITE_E_NOT_A_SUITE, "not a suite: "
		    "DM_GROUP #%zu of %s lacks a name or file", i, path);
	if (strnlen(d->group, SUITE_STRING_MAX + 1) > SUITE_STRING_MAX ||
	    strnlen(d->file, SUITE_STRING_MAX + 1) > SUITE_STRING_MAX ||
	    (d->opt.strategy != NULL && strnlen(d->opt.strategy,
	    SUITE_STRING_MAX + 1) > SUITE_STRING_MAX))
		return suite_fail(err, SUITE_E_NOT_A_SUITE, "not a suite: a "
		    "string of DM_GROUP #%zu is longer than %d bytes", i,
		    SUITE_STRING_MAX);
	return 0;
}

/* The DM_GROUP declarations: each group once, its strategy a word we
 * know. */
static int
suite_group_defs(struct suite *s, struct itable *tab, struct gplace **pl,
    size_t *cap, const char *path, struct suite_error *err)
{
	const struct dm_group_def *d;
	struct suite_group *g;
	char where[600];
	size_t i;
	long gi;
	int st;

	if (s->reg->ngroups > 0 && s->reg->groups == NULL)
		return suite_fail(err, SUITE_E_NOT_A_SUITE, "not a suite: %s "
		    "has a registry without its arrays", path);
	for (i = 0; i < s->reg->ngroups; i++) {
		if ((d = s->reg->groups[i]) == NULL)
			continue;
		if (suite_check_group_def(d, i, path, err) == -1)
			return -1;
		gi = group_get(s, tab, pl, cap, d->group);
		g = &s->groups[gi];
		snprintf(where, sizeof where, "DM_GROUP(%.200s) at %.250s:%d",
		    d->group, d->file, d->line);
		if (g->def != NULL)
			return suite_fail(err, SUITE_E_DUPLICATE_ID, "duplicate "
			    "DM_GROUP(%.200s): %.250s:%d and %.250s:%d",
			    d->group, g->def->file, g->def->line, d->file,
			    d->line);
		g->def = d;
		g->def_at = (long)i;
		if (d->opt.strategy == NULL)
			continue;
		if ((st = strategy_word(d->opt.strategy, where, err)) < 0 ||
		    group_declare(g, &(*pl)[gi], st, where, err) == -1)
			return -1;
	}
	return 0;
}

/* A test's group and what it says of the group's strategy. */
static int
suite_test_group(struct suite *s, struct suite_test *t, struct itable *tab,
    struct gplace **pl, size_t *cap, struct suite_error *err)
{
	const struct dm_test *d = t->def;
	const struct dm_suite_def *sd = t->defaults;
	const char *name = d->opt.group, *word = d->opt.strategy;
	char where[600];
	long gi;
	int st;

	if (name == NULL && sd != NULL)
		name = sd->opt.group;
	if (word != NULL)
		snprintf(where, sizeof where, "DM_TEST(%.100s, %.100s) at "
		    "%.250s:%d", d->suite, d->name, d->file, d->line);
	else if (sd != NULL && sd->opt.strategy != NULL) {
		word = sd->opt.strategy;
		snprintf(where, sizeof where, "DM_SUITE(%.200s) at %.250s:%d",
		    sd->suite, sd->file, sd->line);
	}
	/* A strategy without a group is the suite's own group. */
	if (name == NULL && word != NULL)
		name = d->suite;
	t->group = -1;
	if (name == NULL)
		return 0;
	gi = group_get(s, tab, pl, cap, name);
	t->group = gi;
	if (word == NULL)
		return 0;
	if ((st = strategy_word(word, where, err)) < 0)
		return -1;
	return group_declare(&s->groups[gi], &(*pl)[gi], st, where, err);
}

static int
suite_resolve_groups(struct suite *s, const char *path,
    struct suite_error *err)
{
	struct gplace *pl = NULL;
	struct itable tab;
	size_t i, cap = 0;
	int rc = 0;

	itable_init(&tab, s->reg->ngroups + s->ntests);
	rc = suite_group_defs(s, &tab, &pl, &cap, path, err);
	for (i = 0; i < s->ntests && rc == 0; i++)
		rc = suite_test_group(s, &s->tests[i], &tab, &pl, &cap, err);
	for (i = 0; i < s->ngroups && rc == 0; i++)
		s->groups[i].strategy = pl[i].set ?
		    (enum suite_strategy)pl[i].strategy : STRATEGY_FREE;
	itable_free(&tab);
	free(pl);
	return rc;
}

const struct suite_group *
suite_group_get(const struct suite *s, long group)
{
	return group >= 0 && (size_t)group < s->ngroups ? &s->groups[group] :
	    NULL;
}

long
suite_group_find(const struct suite *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->ngroups; i++)
		if (strcmp(s->groups[i].name, name) == 0)
			return (long)i;
	return -1;
}

const struct dm_registry *
suite_registry(const struct suite *s)
{
	return s->reg;
}

/* ---- order and hash ------------------------------------------------------ */

/* Files in the order the linker placed them, then lines: the order a
 * reader of the sources expects, whatever order a compiler emitted the
 * entries of one file in (GCC at -O2 reverses them). */
struct order_key {
	size_t				 file_rank;
	const struct dm_test		*t;
	const struct dm_suite_def	*defaults;
	size_t				 at;
	long				 defaults_at;
	size_t				 orig;
};

static int
order_cmp(const void *va, const void *vb)
{
	const struct order_key *a = va, *b = vb;
	int c;

	if (a->file_rank != b->file_rank)
		return a->file_rank < b->file_rank ? -1 : 1;
	if (a->t->line != b->t->line)
		return a->t->line < b->t->line ? -1 : 1;
	if ((c = strcmp(a->t->suite, b->t->suite)) != 0)
		return c;
	if ((c = strcmp(a->t->name, b->t->name)) != 0)
		return c;
	return a->orig < b->orig ? -1 : a->orig > b->orig;
}

static int
file_eq(size_t index, const void *key, const void *ctx)
{
	const struct order_key *keys = ctx;

	return strcmp(keys[index].t->file, key) == 0;
}

static void
suite_order(struct suite *s)
{
	struct order_key *keys = xcalloc(s->ntests, sizeof *keys);
	struct itable files;
	size_t i, *slot, nfiles = 0;

	itable_init(&files, s->ntests);
	for (i = 0; i < s->ntests; i++) {
		keys[i].t = s->tests[i].def;
		keys[i].defaults = s->tests[i].defaults;
		keys[i].at = s->tests[i].at;
		keys[i].defaults_at = s->tests[i].defaults_at;
		keys[i].orig = i;
		slot = itable_find(&files, fnv1a(FNV_SEED, keys[i].t->file),
		    file_eq, keys[i].t->file, keys);
		if (*slot == 0) {
			*slot = i + 1;
			keys[i].file_rank = nfiles++;
		} else
			keys[i].file_rank = keys[*slot - 1].file_rank;
	}
	itable_free(&files);
	qsort(keys, s->ntests, sizeof *keys, order_cmp);
	for (i = 0; i < s->ntests; i++) {
		s->tests[i].def = keys[i].t;
		s->tests[i].defaults = keys[i].defaults;
		s->tests[i].at = keys[i].at;
		s->tests[i].defaults_at = keys[i].defaults_at;
	}
	free(keys);
}

static void
suite_compute_hash(struct suite *s)
{
	struct sha256_ctx *ctx = sha256_new();
	const struct dm_test *t;
	char num[32];
	size_t i;
	int n;

	for (i = 0; i < s->ntests; i++) {
		t = s->tests[i].def;
		sha256_update(ctx, t->suite, strlen(t->suite));
		sha256_update(ctx, "/", 1);
		sha256_update(ctx, t->name, strlen(t->name));
		sha256_update(ctx, "\t", 1);
		sha256_update(ctx, t->file, strlen(t->file));
		n = snprintf(num, sizeof num, ":%d\n", t->line);
		sha256_update(ctx, num, (size_t)n);
	}
	sha256_finish_hex(ctx, s->hash);
}

struct suite *
suite_load(const char *path, const struct dm_host *host,
    struct suite_error *err)
{
	struct suite *s = xcalloc(1, sizeof *s);

	err->code = NULL;
	err->text[0] = '\0';
	if (suite_open(s, path, err) == -1 ||
	    suite_enter(s, path, host, err) == -1 ||
	    suite_collect(s, path, err) == -1 ||
	    suite_check_duplicates(s, err) == -1 ||
	    suite_apply_defaults(s, path, err) == -1 ||
	    (suite_order(s), suite_resolve_groups(s, path, err)) == -1) {
		/* Nothing of a refused suite ran but its constructors, so
		 * unloading it is safe. */
		if (s->dl != NULL)
			dlclose(s->dl);
		free(s->tests);
		free(s->groups);
		free(s);
		return NULL;
	}
	suite_compute_hash(s);
	s->path = xstrdup(path);
	return s;
}

void
suite_free(struct suite *s)
{
	if (s == NULL)
		return;
	free(s->tests);
	free(s->groups);
	free(s->path);
	free(s);
}

const char *
suite_path(const struct suite *s)
{
	return s->path;
}

size_t
suite_count(const struct suite *s)
{
	return s->ntests;
}

const struct suite_test *
suite_get(const struct suite *s, size_t index)
{
	return index < s->ntests ? &s->tests[index] : NULL;
}

const char *
suite_hash(const struct suite *s)
{
	return s->hash;
}

long
suite_find(const struct suite *s, const char *id)
{
	const char *slash = strchr(id, '/');
	const struct dm_test *t;
	size_t i, n;

	if (slash == NULL)
		return -1;
	n = (size_t)(slash - id);
	for (i = 0; i < s->ntests; i++) {
		t = s->tests[i].def;
		if (strncmp(t->suite, id, n) == 0 && t->suite[n] == '\0' &&
		    strcmp(t->name, slash + 1) == 0)
			return (long)i;
	}
	return -1;
}

/* ---- one test's options -------------------------------------------------- */

const char *
suite_test_id(const struct suite_test *t, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", t->def->suite, t->def->name);
	return buf;
}

double
suite_test_timeout(const struct suite_test *t)
{
	if (t->def->opt.timeout > 0)
		return t->def->opt.timeout;
	if (t->defaults != NULL && t->defaults->opt.timeout > 0)
		return t->defaults->opt.timeout;
	return 0;
}

void
(*suite_test_init(const struct suite_test *t))(void)
{
	if (t->def->opt.init != NULL)
		return t->def->opt.init;
	return t->defaults != NULL ? t->defaults->opt.init : NULL;
}

void
(*suite_test_fini(const struct suite_test *t))(void)
{
	if (t->def->opt.fini != NULL)
		return t->def->opt.fini;
	return t->defaults != NULL ? t->defaults->opt.fini : NULL;
}

int
suite_test_expects_death(const struct suite_test *t)
{
	return t->def->opt.signal != 0 ||
	    t->def->opt.exit_code != DM_NO_EXIT_CODE;
}

static void
json_set_text(json_t *obj, const char *key, const char *v)
{
	if (v != NULL)
		json_object_set_new(obj, key, json_string_lossy(v, strlen(v)));
}

/* Adds the comma-separated words of list to arr, each once. */
static void
json_add_words(json_t *arr, const char *list)
{
	const char *p = list, *end;
	size_t n, i;
	json_t *w;
	int seen;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		end = p + strcspn(p, ",");
		n = (size_t)(end - p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n > 0) {
			w = json_string_lossy(p, n);
			seen = 0;
			for (i = 0; i < json_array_size(arr) && !seen; i++)
				seen = json_equal(json_array_get(arr, i), w);
			if (seen)
				json_decref(w);
			else
				json_array_append_new(arr, w);
		}
		p = end;
	}
}

static void
json_set_words(json_t *obj, const char *key, const char *a, const char *b)
{
	json_t *arr = json_array();

	json_add_words(arr, a);
	json_add_words(arr, b);
	if (json_array_size(arr) > 0)
		json_object_set_new(obj, key, arr);
	else
		json_decref(arr);
}

/* Printable ASCII without '"' or '\\': written into JSON as it is. */
static int
plain_text(const char *v)
{
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

int
suite_test_plain(const struct suite *s, const struct suite_test *t)
{
	const struct dm_test *d = t->def;
	const struct dm_suite_options *so = t->defaults != NULL ?
	    &t->defaults->opt : NULL;

	/* Whatever suite_test_json would add beyond id, file, line and
	 * timeout makes the entry not plain. */
	return d->opt.todo == NULL && d->opt.skip == NULL &&
	    d->opt.signal == 0 && d->opt.exit_code == DM_NO_EXIT_CODE &&
	    suite_group_get(s, t->group) == NULL && !d->opt.serial &&
	    (d->opt.lock == NULL || d->opt.lock[0] == '\0') &&
	    (d->opt.tags == NULL || d->opt.tags[0] == '\0') &&
	    (so == NULL || so->tags == NULL || so->tags[0] == '\0') &&
	    plain_text(d->suite) && plain_text(d->name) &&
	    plain_text(d->file);
}

json_t *
suite_test_json(const struct suite *s, const struct suite_test *t)
{
	const struct suite_group *g = suite_group_get(s, t->group);
	const struct dm_test *d = t->def;
	const struct dm_suite_options *so = t->defaults != NULL ?
	    &t->defaults->opt : NULL;
	json_t *e = json_object();
	char id[2 * SUITE_STRING_MAX + 2];
	double timeout = suite_test_timeout(t);

	suite_test_id(t, id, sizeof id);
	json_set_text(e, "id", id);
	json_set_text(e, "file", d->file);
	json_object_set_new(e, "line", json_integer(d->line));
	if (timeout > 0)
		json_object_set_new(e, "timeout", json_real(timeout));
	json_set_text(e, "todo", d->opt.todo);
	json_set_text(e, "skip", d->opt.skip);
	if (d->opt.signal != 0)
		json_object_set_new(e, "signal", json_integer(d->opt.signal));
	if (d->opt.exit_code != DM_NO_EXIT_CODE)
		json_object_set_new(e, "exit_code",
		    json_integer(d->opt.exit_code));
	if (g != NULL) {
		json_set_text(e, "group", g->name);
		json_set_text(e, "strategy", suite_strategy_name(g->strategy));
	}
	if (d->opt.serial)
		json_object_set_new(e, "serial", json_true());
	json_set_words(e, "lock", d->opt.lock, NULL);
	json_set_words(e, "tags", so != NULL ? so->tags : NULL, d->opt.tags);
	return e;
}

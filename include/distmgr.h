/*
 * distmgr.h - the suite API of distmgr (see distmgr(3)).
 *
 *     #include <distmgr.h>
 *
 *     DM_TEST(math, adds)                    { DM_ASSERT_EQ(2 + 2, 4); }
 *     DM_TEST(math, slow, .timeout = 5)      { ... }
 *     DM_TEST(net, flaky, .todo = "bug 12")  { DM_ASSERT(0); }
 *     DM_TEST(io, aborts, .signal = SIGABRT) { abort(); }
 *
 *     cc -shared -fPIC -o suite.so a.c b.c && distmgr suite.so
 *
 * Header-only: a suite links nothing of distmgr's. Tests register
 * themselves in an ELF section at compile time, from any number of
 * translation units; the worker finds them through one exported,
 * versioned entry point, dm_suite_entry_v1, and hands the suite the
 * functions that end a test (struct dm_host). Everything named dm__ or
 * DM__ is internal.
 *
 * This header depends on nothing but libc and must stay usable from C11
 * and C++ (C++20 for designated options, which C++ wants in declaration
 * order: timeout, todo, skip, signal, exit_code, init, fini, group,
 * strategy, lock, tags, serial).
 */
#ifndef DISTMGR_H
#define DISTMGR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when anything below changes layout or meaning. A worker refuses
 * a suite built against an ABI it does not know. */
#define DM_ABI_VERSION 1

/* ---- options ---------------------------------------------------------- */

/* .exit_code when the test is not expected to exit. */
#define DM_NO_EXIT_CODE (-1)

/* In C++ every option has a default member initializer, so that options
 * left out are neither warned about nor garbage; in C the rest of a
 * designated initializer is zero. */
#ifdef __cplusplus
#define DM__DEFAULT(v) = v
#else
#define DM__DEFAULT(v)
#endif

/* Per-test options, given to DM_TEST as designated initializers. */
struct dm_options {
	double		 timeout DM__DEFAULT(0);	/* seconds; 0: the suite's */
	const char	*todo DM__DEFAULT(0);	/* expected to fail, and why */
	const char	*skip DM__DEFAULT(0);	/* do not run, and why */
	int		 signal DM__DEFAULT(0);	/* expected to die of it */
	int		 exit_code DM__DEFAULT(DM_NO_EXIT_CODE); /* or exit so */
	void		(*init)(void) DM__DEFAULT(0);	/* before, in its process */
	void		(*fini)(void) DM__DEFAULT(0);	/* after, even if it failed */
	const char	*group DM__DEFAULT(0);	/* a group (distmgr(3)) */
	const char	*strategy DM__DEFAULT(0); /* free, serial, isolated_... */
	const char	*lock DM__DEFAULT(0);	/* resource locks, comma-separated */
	const char	*tags DM__DEFAULT(0);	/* tags, comma-separated */
	int		 serial DM__DEFAULT(0);	/* run with nothing else at all */
};

/* Defaults for every test of a suite, given to DM_SUITE. */
struct dm_suite_options {
	double		 timeout DM__DEFAULT(0);
	void		(*init)(void) DM__DEFAULT(0);
	void		(*fini)(void) DM__DEFAULT(0);
	const char	*tags DM__DEFAULT(0);
	const char	*group DM__DEFAULT(0);
	const char	*strategy DM__DEFAULT(0);
};

/* A group's declaration, given to DM_GROUP: set up once before its first
 * test and torn down once after its last (serial strategies). */
struct dm_group_options {
	const char	*strategy DM__DEFAULT(0);
	void		(*init)(void) DM__DEFAULT(0);
	void		(*fini)(void) DM__DEFAULT(0);
};

/* ---- what a suite holds ------------------------------------------------ */

struct dm_test {
	unsigned		 abi;
	const char		*suite;
	const char		*name;
	const char		*file;
	int			 line;
	void			(*fn)(void);
	struct dm_options	 opt;
};

struct dm_suite_def {
	unsigned		 abi;
	const char		*suite;
	const char		*file;
	int			 line;
	struct dm_suite_options	 opt;
};

struct dm_group_def {
	unsigned		 abi;
	const char		*group;
	const char		*file;
	int			 line;
	struct dm_group_options	 opt;
};

/* What the worker gives the suite: the way a test ends early, and the
 * synchronisation between tests. size lets later versions grow it. */
enum dm_end { DM_END_FAIL = 1, DM_END_SKIP = 2 };
enum dm_trail_phase { DM_START = 1, DM_FINISH = 2 };

struct dm_host {
	size_t	 size;
	/* Ends the running test; never returns. */
	void	(*end)(enum dm_end how, const char *file, int line,
		    const char *message);
	int	(*lock)(const char *name);
	int	(*unlock)(const char *name);
	int	(*board_set)(const char *key, const char *value);
	char	*(*board_get)(const char *key);
	int	(*trail)(const char *name, enum dm_trail_phase phase);
};

/* What the entry point answers. */
struct dm_registry {
	unsigned			 abi;
	const struct dm_test *const	*tests;		/* [ntests] */
	size_t				 ntests;
	const struct dm_suite_def *const *suites;	/* [nsuites] */
	size_t				 nsuites;
	const struct dm_group_def *const *groups;	/* [ngroups] */
	size_t				 ngroups;
};

/* ---- registration (internal) ------------------------------------------ */

#define DM__CAT_(a, b) a##b
#define DM__CAT(a, b) DM__CAT_(a, b)

#if defined(__has_attribute)
#if __has_attribute(retain)
#define DM__RETAIN __attribute__((retain))
#endif
#endif
#ifndef DM__RETAIN
#define DM__RETAIN
#endif

#define DM__IN(sec) \
	__attribute__((used, section(sec), aligned(sizeof(void *)))) DM__RETAIN

/*
 * The worker includes this header for the layouts above and defines
 * DM_HOST_SIDE first: a suite's own definitions below (the section bounds,
 * dm__host, the entry point) must not exist in the worker, whose symbols
 * are exported (-rdynamic) and would otherwise be what a loaded suite's
 * references bind to.
 */
#ifdef DM_HOST_SIDE
extern const struct dm_host *dm__host;
#else

/* The linker names the bounds of each section; weak, so that a suite
 * without groups or suite defaults still links, and hidden, so that each
 * suite sees its own sections and not another's. */
#define DM__BOUNDS(sec, type)						\
	extern type *const __start_##sec[]				\
	    __attribute__((weak, visibility("hidden")));		\
	extern type *const __stop_##sec[]				\
	    __attribute__((weak, visibility("hidden")))

DM__BOUNDS(dm_tests_v1, const struct dm_test);
DM__BOUNDS(dm_suites_v1, const struct dm_suite_def);
DM__BOUNDS(dm_groups_v1, const struct dm_group_def);

/* One copy per suite however many files include this: weak definitions
 * merge at link time. */
__attribute__((weak)) const struct dm_host *dm__host;

__attribute__((weak, visibility("default"))) const struct dm_registry *
dm_suite_entry_v1(const struct dm_host *host);

__attribute__((weak, visibility("default"))) const struct dm_registry *
dm_suite_entry_v1(const struct dm_host *host)
{
	static struct dm_registry reg;

	dm__host = host;
	reg.abi = DM_ABI_VERSION;
	reg.tests = __start_dm_tests_v1;
	reg.ntests = __start_dm_tests_v1 == NULL ? 0 :
	    (size_t)(__stop_dm_tests_v1 - __start_dm_tests_v1);
	reg.suites = __start_dm_suites_v1;
	reg.nsuites = __start_dm_suites_v1 == NULL ? 0 :
	    (size_t)(__stop_dm_suites_v1 - __start_dm_suites_v1);
	reg.groups = __start_dm_groups_v1;
	reg.ngroups = __start_dm_groups_v1 == NULL ? 0 :
	    (size_t)(__stop_dm_groups_v1 - __start_dm_groups_v1);
	return &reg;
}
#endif /* DM_HOST_SIDE */

/* In C a designated option may override the default exit_code given
 * first; compilers warn about that override, so the warning is silenced
 * around the one initializer that does it. */
#if defined(__cplusplus)
#define DM__OPT_DEFAULTS
#define DM__OVERRIDE_BEGIN
#define DM__OVERRIDE_END
#elif defined(__clang__)
#define DM__OPT_DEFAULTS .exit_code = DM_NO_EXIT_CODE,
#define DM__OVERRIDE_BEGIN _Pragma("clang diagnostic push") \
	_Pragma("clang diagnostic ignored \"-Winitializer-overrides\"")
#define DM__OVERRIDE_END _Pragma("clang diagnostic pop")
#else
#define DM__OPT_DEFAULTS .exit_code = DM_NO_EXIT_CODE,
#define DM__OVERRIDE_BEGIN _Pragma("GCC diagnostic push") \
	_Pragma("GCC diagnostic ignored \"-Woverride-init\"")
#define DM__OVERRIDE_END _Pragma("GCC diagnostic pop")
#endif

/*
 * DM_TEST(suite, name, options...) { body }
 * The trailing empty argument lets DM_TEST(s, n) have no options in C11.
 */
#define DM_TEST(...) DM__TEST(__VA_ARGS__, )
#define DM__TEST(s, n, ...)						\
	static void dm__fn_##s##__##n(void);				\
	DM__OVERRIDE_BEGIN						\
	static const struct dm_test dm__test_##s##__##n = {		\
		DM_ABI_VERSION, #s, #n, __FILE__, __LINE__,		\
		dm__fn_##s##__##n, { DM__OPT_DEFAULTS __VA_ARGS__ }	\
	};								\
	DM__OVERRIDE_END						\
	DM__IN("dm_tests_v1") static const struct dm_test *const	\
	    dm__ptr_##s##__##n = &dm__test_##s##__##n;			\
	static void dm__fn_##s##__##n(void)

/* DM_SUITE(suite, options...); sets defaults for the suite's tests. */
#define DM_SUITE(...) DM__SUITE(__VA_ARGS__, )
#define DM__SUITE(s, ...)						\
	static const struct dm_suite_def dm__suite_##s = {		\
		DM_ABI_VERSION, #s, __FILE__, __LINE__, { __VA_ARGS__ } \
	};								\
	DM__IN("dm_suites_v1") static const struct dm_suite_def *const \
	    dm__suiteptr_##s = &dm__suite_##s

/* DM_GROUP(group, options...); declares a group's strategy and its
 * once-per-group set-up and tear-down. */
#define DM_GROUP(...) DM__GROUP(__VA_ARGS__, )
#define DM__GROUP(g, ...)						\
	static const struct dm_group_def dm__group_##g = {		\
		DM_ABI_VERSION, #g, __FILE__, __LINE__, { __VA_ARGS__ } \
	};								\
	DM__IN("dm_groups_v1") static const struct dm_group_def *const \
	    dm__groupptr_##g = &dm__group_##g

/* ---- ending a test (internal) ------------------------------------------ */

#define DM__MSG_MAX 1024

/* Formats "what" plus the user's optional message and ends the test.
 * Outside a worker (no host) it prints and aborts. The macros prefix the
 * user's format with one space, so that an absent message is " " rather
 * than an empty format (which compilers warn about); it is skipped here. */
static inline void
dm__vend(enum dm_end how, const char *file, int line, const char *what,
    const char *fmt, va_list ap)
{
	char msg[DM__MSG_MAX];
	size_t n;

	snprintf(msg, sizeof msg, "%s", what);
	n = strlen(msg);
	if (fmt != NULL && fmt[0] == ' ')
		fmt++;
	if (fmt != NULL && fmt[0] != '\0' && n + 2 < sizeof msg) {
		if (n > 0) {
			msg[n++] = ':';
			msg[n++] = ' ';
		}
		vsnprintf(msg + n, sizeof msg - n, fmt, ap);
	}
	if (dm__host != NULL && dm__host->end != NULL)
		dm__host->end(how, file, line, msg);
	fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	fflush(stderr);
	__builtin_trap();
}

static inline void __attribute__((format(printf, 4, 5)))
dm__end(enum dm_end how, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dm__vend(how, file, line, "", fmt, ap);
	va_end(ap);
}

static inline void __attribute__((format(printf, 4, 5)))
dm__failed(const char *file, int line, const char *what, const char *fmt,
    ...)
{
	va_list ap;

	va_start(ap, fmt);
	dm__vend(DM_END_FAIL, file, line, what, fmt, ap);
	va_end(ap);
}

/* Quotes a string for a message: "text", or NULL; long ones are cut. */
static inline const char *
dm__quote(char *buf, size_t size, const char *s)
{
	if (s == NULL)
		snprintf(buf, size, "NULL");
	else if (strlen(s) + 3 > size)
		snprintf(buf, size, "\"%.*s...\"", (int)size - 6, s);
	else
		snprintf(buf, size, "\"%s\"", s);
	return buf;
}

/* ---- assertions --------------------------------------------------------- */

/* Each takes an optional printf-style message after its operands; the
 * format must be a string literal. A failed assertion ends the test. */

#define DM_FAIL(...) dm__end(DM_END_FAIL, __FILE__, __LINE__, " " __VA_ARGS__)
#define DM_SKIP(...) dm__end(DM_END_SKIP, __FILE__, __LINE__, " " __VA_ARGS__)

#define DM_ASSERT(cond, ...) do {					\
	if (!(cond))							\
		dm__failed(__FILE__, __LINE__,				\
		    "assertion failed: " #cond, " " __VA_ARGS__);	\
} while (0)

#define DM__ASSERT_INT(a, op, b, ...) do {				\
	intmax_t dm__a = (intmax_t)(a), dm__b = (intmax_t)(b);		\
	if (!(dm__a op dm__b)) {					\
		char dm__w[DM__MSG_MAX];				\
		snprintf(dm__w, sizeof dm__w,				\
		    "assertion failed: %s %s %s (%jd %s %jd)",		\
		    #a, #op, #b, dm__a, #op, dm__b);			\
		dm__failed(__FILE__, __LINE__, dm__w, " " __VA_ARGS__);	\
	}								\
} while (0)

#define DM_ASSERT_EQ(a, b, ...) DM__ASSERT_INT(a, ==, b, __VA_ARGS__)
#define DM_ASSERT_NE(a, b, ...) DM__ASSERT_INT(a, !=, b, __VA_ARGS__)
#define DM_ASSERT_LT(a, b, ...) DM__ASSERT_INT(a, <, b, __VA_ARGS__)
#define DM_ASSERT_LE(a, b, ...) DM__ASSERT_INT(a, <=, b, __VA_ARGS__)
#define DM_ASSERT_GT(a, b, ...) DM__ASSERT_INT(a, >, b, __VA_ARGS__)
#define DM_ASSERT_GE(a, b, ...) DM__ASSERT_INT(a, >=, b, __VA_ARGS__)

#define DM__ASSERT_STR(a, want_eq, b, ...) do {				\
	const char *dm__a = (a), *dm__b = (b);				\
	int dm__eq = (dm__a == NULL || dm__b == NULL) ?			\
	    dm__a == dm__b : strcmp(dm__a, dm__b) == 0;			\
	if (dm__eq != (want_eq)) {					\
		char dm__w[DM__MSG_MAX], dm__qa[400], dm__qb[400];	\
		snprintf(dm__w, sizeof dm__w,				\
		    "assertion failed: %s %s %s (%s %s %s)", #a,	\
		    (want_eq) ? "==" : "!=", #b,			\
		    dm__quote(dm__qa, sizeof dm__qa, dm__a),		\
		    (want_eq) ? "!=" : "==",				\
		    dm__quote(dm__qb, sizeof dm__qb, dm__b));		\
		dm__failed(__FILE__, __LINE__, dm__w, " " __VA_ARGS__);	\
	}								\
} while (0)

#define DM_ASSERT_STR_EQ(a, b, ...) DM__ASSERT_STR(a, 1, b, __VA_ARGS__)
#define DM_ASSERT_STR_NE(a, b, ...) DM__ASSERT_STR(a, 0, b, __VA_ARGS__)

#define DM_ASSERT_MEM_EQ(a, b, n, ...) do {				\
	const unsigned char *dm__a = (const unsigned char *)(a);	\
	const unsigned char *dm__b = (const unsigned char *)(b);	\
	size_t dm__n = (n), dm__i;					\
	for (dm__i = 0; dm__i < dm__n; dm__i++)				\
		if (dm__a[dm__i] != dm__b[dm__i])			\
			break;						\
	if (dm__i < dm__n) {						\
		char dm__w[DM__MSG_MAX];				\
		snprintf(dm__w, sizeof dm__w,				\
		    "assertion failed: %s == %s for %zu bytes (byte %zu:" \
		    " 0x%02x != 0x%02x)", #a, #b, dm__n, dm__i,	\
		    dm__a[dm__i], dm__b[dm__i]);			\
		dm__failed(__FILE__, __LINE__, dm__w, " " __VA_ARGS__);	\
	}								\
} while (0)

#define DM_ASSERT_NULL(p, ...) do {					\
	const void *dm__p = (const void *)(p);				\
	if (dm__p != NULL) {						\
		char dm__w[DM__MSG_MAX];				\
		snprintf(dm__w, sizeof dm__w,				\
		    "assertion failed: %s == NULL (%p)", #p, dm__p);	\
		dm__failed(__FILE__, __LINE__, dm__w, " " __VA_ARGS__);	\
	}								\
} while (0)

#define DM_ASSERT_NOT_NULL(p, ...) do {					\
	if ((const void *)(p) == NULL)					\
		dm__failed(__FILE__, __LINE__,				\
		    "assertion failed: " #p " != NULL", " " __VA_ARGS__); \
} while (0)

#define DM_ASSERT_FLOAT_EQ(a, b, eps, ...) do {				\
	double dm__a = (double)(a), dm__b = (double)(b);		\
	double dm__e = (double)(eps), dm__d = dm__a - dm__b;		\
	if (!(dm__d <= dm__e && -dm__d <= dm__e)) {			\
		char dm__w[DM__MSG_MAX];				\
		snprintf(dm__w, sizeof dm__w,				\
		    "assertion failed: %s == %s within %s (%.17g != %.17g)", \
		    #a, #b, #eps, dm__a, dm__b);			\
		dm__failed(__FILE__, __LINE__, dm__w, " " __VA_ARGS__);	\
	}								\
} while (0)

/* ---- synchronisation between tests (distmgr(3)) ------------------------ */

/* A named mutex held across every worker of the run. Returns 0, 1 when
 * the previous holder died holding it, or -1 when it is not available. */
static inline int
dm_lock(const char *name)
{
	return dm__host != NULL && dm__host->lock != NULL ?
	    dm__host->lock(name) : -1;
}

static inline int
dm_unlock(const char *name)
{
	return dm__host != NULL && dm__host->unlock != NULL ?
	    dm__host->unlock(name) : -1;
}

/* A key/value board shared by the run. dm_board_get returns a copy the
 * caller frees, or NULL when the key is not set. */
static inline int
dm_board_set(const char *key, const char *value)
{
	return dm__host != NULL && dm__host->board_set != NULL ?
	    dm__host->board_set(key, value) : -1;
}

static inline char *
dm_board_get(const char *key)
{
	return dm__host != NULL && dm__host->board_get != NULL ?
	    dm__host->board_get(key) : NULL;
}

/* True for exactly one caller of DM_START (the first) and one of
 * DM_FINISH (the last of those that started). */
static inline int
dm_trail(const char *name, enum dm_trail_phase phase)
{
	return dm__host != NULL && dm__host->trail != NULL ?
	    dm__host->trail(name, phase) : -1;
}

#ifdef __cplusplus
}
#endif

#endif /* DISTMGR_H */

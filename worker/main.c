/*
 * main.c - distworker's command line: --stdio (the mode a manager
 * starts), and the debugging modes --list and --run (cli.c). Parses
 * options and hands over; it must not do any work of its own that a
 * manager-started worker would miss.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"

enum mode { MODE_NONE, MODE_STDIO, MODE_LIST, MODE_RUN };

enum { OPT_STDIO = 256, OPT_OUTPUT_CAP, OPT_CACHE_DIR, OPT_CACHE_SIZE };

static const struct option longopts[] = {
	{ "stdio", no_argument, NULL, OPT_STDIO },
	{ "list", no_argument, NULL, 'l' },
	{ "run", no_argument, NULL, 'r' },
	{ "no-fork", no_argument, NULL, 'n' },
	{ "timeout", required_argument, NULL, 't' },
	{ "output-cap", required_argument, NULL, OPT_OUTPUT_CAP },
	{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
	{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: distworker --stdio [-v] [--cache-dir DIR] [--cache-size BYTES]\n"
	    "       distworker --list SUITE.so\n"
	    "       distworker --run SUITE.so [ID | SUITE-NAME ...] [--no-fork]\n"
	    "                  [--timeout SECONDS] [--output-cap BYTES]\n"
	    "\n"
	    "  --stdio           serve a manager on stdin and stdout\n"
	    "  -l, --list        print the suite's tests, one \"id<TAB>file:line\" a line\n"
	    "  -r, --run         run the suite's tests (or those named) and print results\n"
	    "  -n, --no-fork     run tests in this process (for debuggers)\n"
	    "  -t, --timeout S   seconds for tests that set none (default: none)\n"
	    "      --output-cap B  bytes of output kept per test and stream\n"
	    "      --cache-dir D   the blob cache of shipped files (default:\n"
	    "                    $XDG_CACHE_HOME/distworker or ~/.cache/distworker)\n"
	    "      --cache-size B  its limit, with K, M, G or T; 0 for none (default 1G)\n"
	    "  -v, --verbose     say more on stderr\n"
	    "  -h, --help        this text\n"
	    "  -V, --version     the version\n"
	    "\n"
	    "Exit status: 0 all passed, 1 some failed, 2 interrupted,\n"
	    "3 internal error, 4 usage error, 5 no tests.\n"
	    "See distworker(8) and distmgr(3).\n");
}

static int DM_PRINTF(1, 2)
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "distworker: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'distworker --help'.\n");
	return EXIT_USAGE;
}

static int
parse_number(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *out >= 0 ? 0 : -1;
}

/* "512", "100M", "2G": bytes. */
static int
parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || s[0] == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end != '\0' || (shift > 0 && v > (~0ull >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* Where the blob cache is, and its limit: --stdio's. */
struct cache_options {
	const char	*dir;
	uint64_t	 limit;
	int		 set;
};

static int
set_mode(enum mode *mode, enum mode want)
{
	if (*mode != MODE_NONE && *mode != want)
		return -1;
	*mode = want;
	return 0;
}

/* Fills opt and mode from the options; returns -1 to go on, or the
 * status to exit with now (--help, --version, a usage error). */
static int
parse_options(int argc, char **argv, struct cli_options *opt,
    struct cache_options *cache, enum mode *mode)
{
	double num;
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":lrnt:vhV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case OPT_STDIO:
		case 'l':
		case 'r':
			if (set_mode(mode, ch == 'l' ? MODE_LIST : ch == 'r' ?
			    MODE_RUN : MODE_STDIO) == -1)
				return usage_error("--stdio, --list and --run "
				    "exclude each other");
			break;
		case 'n':
			opt->boxed = 0;
			break;
		case 't':
			if (parse_number(optarg, &opt->timeout) == -1)
				return usage_error("--timeout wants seconds, "
				    "not '%s'", optarg);
			break;
		case OPT_OUTPUT_CAP:
			if (parse_number(optarg, &num) == -1 || num < 1 ||
			    num > RUNNER_OUTPUT_CAP_MAX)
				return usage_error("--output-cap wants bytes "
				    "from 1 to %u, not '%s'",
				    RUNNER_OUTPUT_CAP_MAX, optarg);
			opt->output_cap = (size_t)num;
			break;
		case OPT_CACHE_DIR:
			if (optarg[0] == '\0')
				return usage_error("--cache-dir wants a "
				    "directory");
			cache->dir = optarg;
			cache->set = 1;
			break;
		case OPT_CACHE_SIZE:
			if (parse_size(optarg, &cache->limit) == -1)
				return usage_error("--cache-size wants bytes "
				    "(with K, M, G or T), not '%s'", optarg);
			cache->set = 1;
			break;
		case 'v':
			opt->verbose = 1;
			log_set_level(LOG_LVL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("distworker %s (protocol %d, suite ABI %d)\n",
			    DM_VERSION, DM_PROTOCOL_VERSION, DM_ABI_VERSION);
			return EXIT_OK;
		case ':':
			return usage_error("option '%s' needs an argument",
			    argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'",
			    argv[optind - 1]);
		}
	}
	return -1;
}

static int
stdio_main(const struct cache_options *cache, int argc)
{
	char buf[PATH_MAX];
	const char *dir = cache->dir;

	if (argc > 0)
		return usage_error("--stdio takes no arguments");
	if (dir == NULL && shipping_cache_default(buf, sizeof buf) == 0)
		dir = buf;
	return session_stdio_main(dir, cache->limit);
}

int
main(int argc, char **argv)
{
	struct cli_options opt;
	struct cache_options cache;
	enum mode mode = MODE_NONE;
	int rc;

	log_init("distworker", LOG_LVL_WARN);
	memset(&opt, 0, sizeof opt);
	memset(&cache, 0, sizeof cache);
	opt.boxed = 1;
	opt.output_cap = RUNNER_OUTPUT_CAP_DEFAULT;
	cache.limit = BLOB_CACHE_DEFAULT;
	if ((rc = parse_options(argc, argv, &opt, &cache, &mode)) != -1)
		return rc;
	argc -= optind;
	argv += optind;
	if (cache.set && mode != MODE_STDIO)
		return usage_error("--cache-dir and --cache-size are options "
		    "of --stdio");
	switch (mode) {
	case MODE_STDIO:
		return stdio_main(&cache, argc);
	case MODE_LIST:
	case MODE_RUN:
		if (argc < 1)
			return usage_error("which suite? (a .so file)");
		if (mode == MODE_LIST && argc > 1)
			return usage_error("--list takes one suite");
		opt.suite = argv[0];
		opt.ids = argv + 1;
		opt.nids = argc - 1;
		return mode == MODE_LIST ? cli_list(&opt) : cli_run(&opt);
	default:
		return usage_error("say --stdio, --list or --run");
	}
}

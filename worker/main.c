/*
 * main.c - distworker's command line: --stdio (the mode a manager
 * starts), --listen (the long-running daemon, daemon.c), and the
 * debugging modes --list and --run (cli.c). Parses options and hands
 * over; it must not do any work of its own that a manager-started worker
 * would miss.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"

enum mode { MODE_NONE, MODE_STDIO, MODE_LISTEN, MODE_LIST, MODE_RUN };

enum {
	OPT_STDIO = 256, OPT_LISTEN, OPT_OUTPUT_CAP, OPT_CACHE_DIR,
	OPT_CACHE_SIZE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_LOG,
	OPT_PIDFILE, OPT_FOREGROUND, OPT_USER, OPT_GRACE, OPT_HANDSHAKE,
	OPT_MAX_UNAUTH
};

static const struct option longopts[] = {
	{ "stdio", no_argument, NULL, OPT_STDIO },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "list", no_argument, NULL, 'l' },
	{ "run", no_argument, NULL, 'r' },
	{ "no-fork", no_argument, NULL, 'n' },
	{ "timeout", required_argument, NULL, 't' },
	{ "output-cap", required_argument, NULL, OPT_OUTPUT_CAP },
	{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
	{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
	{ "jobs", required_argument, NULL, 'j' },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "pidfile", required_argument, NULL, OPT_PIDFILE },
	{ "foreground", no_argument, NULL, OPT_FOREGROUND },
	{ "user", required_argument, NULL, OPT_USER },
	{ "grace", required_argument, NULL, OPT_GRACE },
	{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE },
	{ "max-unauth", required_argument, NULL, OPT_MAX_UNAUTH },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

struct main_options {
	struct cli_options	 cli;
	struct daemon_options	 daemon;
	int			 daemon_only;	/* the option that needs --listen */
	int			 cache_set;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: distworker --stdio [-v] [--cache-dir DIR] [--cache-size BYTES]\n"
	    "       distworker --listen ADDR:PORT [-j N] [--tls-cert FILE --tls-key FILE\n"
	    "                  --tls-ca FILE] [--cache-dir DIR] [--cache-size BYTES]\n"
	    "                  [--log FILE|syslog] [--pidfile FILE] [--foreground]\n"
	    "                  [--user NAME] [--grace SECONDS] [--handshake-timeout SECONDS]\n"
	    "                  [--max-unauth N] [-v]\n"
	    "       distworker --list SUITE.so\n"
	    "       distworker --run SUITE.so [ID | SUITE-NAME ...] [--no-fork]\n"
	    "                  [--timeout SECONDS] [--output-cap BYTES]\n"
	    "\n"
	    "  --stdio           serve a manager on stdin and stdout\n"
	    "  --listen A:P      serve managers that connect to A:P (a daemon)\n"
	    "  -l, --list        print the suite's tests, one \"id<TAB>file:line\" a line\n"
	    "  -r, --run         run the suite's tests (or those named) and print results\n"
	    "  -n, --no-fork     run tests in this process (for debuggers)\n"
	    "  -t, --timeout S   seconds for tests that set none (default: none)\n"
	    "      --output-cap B  bytes of output kept per test and stream\n"
	    "      --cache-dir D   the blob cache of shipped files (default:\n"
	    "                    $XDG_CACHE_HOME/distworker or ~/.cache/distworker)\n"
	    "      --cache-size B  its limit, with K, M, G or T; 0 for none (default 1G)\n"
	    "  -j, --jobs N      --listen: sessions at once (default: the CPUs)\n"
	    "      --tls-cert F, --tls-key F, --tls-ca F\n"
	    "                    --listen: this daemon's certificate and key, and the CA\n"
	    "                    that signs managers' certificates (needed beyond loopback)\n"
	    "      --log F       --listen: log to file F, or to syslog with 'syslog'\n"
	    "      --pidfile F   --listen: write the daemon's pid to F\n"
	    "      --foreground  --listen: do not detach (for systemd)\n"
	    "      --user U      --listen: the user to run as when started as root\n"
	    "      --grace S     --listen: on SIGTERM, seconds running tests may take\n"
	    "                    to finish (default 30)\n"
	    "      --handshake-timeout S  --listen: seconds a connection has for TLS\n"
	    "                    and hello (default 10)\n"
	    "      --max-unauth N  --listen: connections not yet authenticated (64)\n"
	    "  -v, --verbose     say more on stderr (or in the log)\n"
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

static int
parse_int(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
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

static int
set_mode(enum mode *mode, enum mode want)
{
	if (*mode != MODE_NONE && *mode != want)
		return -1;
	*mode = want;
	return 0;
}

/* The options only --listen takes; the first one given is remembered
 * for the error when the mode is another. */
static int
daemon_option(struct main_options *m, int ch, const char *arg)
{
	struct daemon_options *d = &m->daemon;
	double num;

	if (m->daemon_only == 0)
		m->daemon_only = ch;
	switch (ch) {
	case 'j':
		if (parse_int(arg, 1, 4096, &d->jobs) == -1)
			return usage_error("--jobs wants a number from 1 to "
			    "4096, not '%s'", arg);
		break;
	case OPT_TLS_CERT: d->tls_cert = arg; break;
	case OPT_TLS_KEY: d->tls_key = arg; break;
	case OPT_TLS_CA: d->tls_ca = arg; break;
	case OPT_LOG: d->log = arg; break;
	case OPT_PIDFILE: d->pidfile = arg; break;
	case OPT_FOREGROUND: d->foreground = 1; break;
	case OPT_USER: d->user = arg; break;
	case OPT_GRACE:
	case OPT_HANDSHAKE:
		if (parse_number(arg, &num) == -1 || num > 86400 ||
		    (ch == OPT_HANDSHAKE && num <= 0))
			return usage_error("%s wants seconds, not '%s'",
			    ch == OPT_GRACE ? "--grace" :
			    "--handshake-timeout", arg);
		*(ch == OPT_GRACE ? &d->grace : &d->handshake_timeout) = num;
		break;
	case OPT_MAX_UNAUTH:
		if (parse_int(arg, 1, 100000, &d->max_unauth) == -1)
			return usage_error("--max-unauth wants a number from 1 "
			    "to 100000, not '%s'", arg);
		break;
	}
	return -1;
}

/* Fills m and mode from the options; returns -1 to go on, or the
 * status to exit with now (--help, --version, a usage error). */
static int
parse_options(int argc, char **argv, struct main_options *m,
    enum mode *mode)
{
	struct cli_options *opt = &m->cli;
	double num;
	int ch, rc;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":lrnt:j:vhV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case OPT_STDIO:
		case OPT_LISTEN:
		case 'l':
		case 'r':
			if (set_mode(mode, ch == 'l' ? MODE_LIST : ch == 'r' ?
			    MODE_RUN : ch == OPT_LISTEN ? MODE_LISTEN :
			    MODE_STDIO) == -1)
				return usage_error("--stdio, --listen, --list "
				    "and --run exclude each other");
			if (ch == OPT_LISTEN)
				m->daemon.listen = optarg;
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
			m->daemon.cache_dir = optarg;
			m->cache_set = 1;
			break;
		case OPT_CACHE_SIZE:
			if (parse_size(optarg, &m->daemon.cache_limit) == -1)
				return usage_error("--cache-size wants bytes "
				    "(with K, M, G or T), not '%s'", optarg);
			m->cache_set = 1;
			break;
		case 'j':
		case OPT_TLS_CERT:
		case OPT_TLS_KEY:
		case OPT_TLS_CA:
		case OPT_LOG:
		case OPT_PIDFILE:
		case OPT_FOREGROUND:
		case OPT_USER:
		case OPT_GRACE:
		case OPT_HANDSHAKE:
		case OPT_MAX_UNAUTH:
			if ((rc = daemon_option(m, ch, optarg)) != -1)
				return rc;
			break;
		case 'v':
			opt->verbose = 1;
			m->daemon.verbose = 1;
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

static const char *
option_name(int ch)
{
	const struct option *o;

	for (o = longopts; o->name != NULL; o++)
		if (o->val == ch)
			return o->name;
	return "?";
}

static int
listen_main(struct main_options *m, int argc)
{
	struct daemon_options *d = &m->daemon;
	int ntls = (d->tls_cert != NULL) + (d->tls_key != NULL) +
	    (d->tls_ca != NULL);
	long cpus;

	if (argc > 0)
		return usage_error("--listen takes no arguments");
	if (ntls != 0 && ntls != 3)
		return usage_error("TLS needs all of --tls-cert, --tls-key "
		    "and --tls-ca");
	if (d->jobs == 0) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		d->jobs = cpus > 0 ? (int)cpus : 1;
	}
	return daemon_main(d);
}

static int
stdio_main(struct main_options *m, int argc)
{
	char buf[PATH_MAX];
	const char *dir = m->daemon.cache_dir;

	if (argc > 0)
		return usage_error("--stdio takes no arguments");
	if (dir == NULL && shipping_cache_default(buf, sizeof buf) == 0)
		dir = buf;
	return session_stdio_main(dir, m->daemon.cache_limit);
}

int
main(int argc, char **argv)
{
	struct main_options m;
	struct cli_options *opt = &m.cli;
	enum mode mode = MODE_NONE;
	int rc;

	log_init("distworker", LOG_LVL_WARN);
	memset(&m, 0, sizeof m);
	opt->boxed = 1;
	opt->output_cap = RUNNER_OUTPUT_CAP_DEFAULT;
	m.daemon.cache_limit = BLOB_CACHE_DEFAULT;
	m.daemon.grace = DAEMON_GRACE_DEFAULT;
	m.daemon.handshake_timeout = DAEMON_HANDSHAKE_DEFAULT;
	m.daemon.max_unauth = DAEMON_UNAUTH_DEFAULT;
	if ((rc = parse_options(argc, argv, &m, &mode)) != -1)
		return rc;
	argc -= optind;
	argv += optind;
	if (m.daemon_only != 0 && mode != MODE_LISTEN)
		return usage_error("--%s is an option of --listen",
		    option_name(m.daemon_only));
	if (m.cache_set && mode != MODE_LISTEN && mode != MODE_STDIO)
		return usage_error("--cache-dir and --cache-size are options "
		    "of --stdio and --listen");
	switch (mode) {
	case MODE_STDIO:
		return stdio_main(&m, argc);
	case MODE_LISTEN:
		return listen_main(&m, argc);
	case MODE_LIST:
	case MODE_RUN:
		if (argc < 1)
			return usage_error("which suite? (a .so file)");
		if (mode == MODE_LIST && argc > 1)
			return usage_error("--list takes one suite");
		opt->suite = argv[0];
		opt->ids = argv + 1;
		opt->nids = argc - 1;
		return mode == MODE_LIST ? cli_list(opt) : cli_run(opt);
	default:
		return usage_error("say --stdio, --listen, --list or --run");
	}
}

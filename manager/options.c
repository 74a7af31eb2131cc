/*
 * options.c - distmgr's command line: getopt_long with short and long
 * forms, --help and --version, and a clear sentence for every mistake;
 * and the project file, distmgr.conf, whose settings are the same long
 * options: the file is applied first, then the command line, so that the
 * command line adds to lists (--tx, --ship, --ship-ignore) and overrides
 * single values.
 *
 * It only parses and checks what can be checked without the suites: it
 * must never start a process, touch the cache or exit by itself (main
 * decides on the exit code). The expressions of -k, --tags and --shard
 * are compiled by run.c, which owns the selection; they are parsed here
 * once too, so that a mistake in one is a usage error like any other,
 * said before a worker starts.
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"
#include "protocol.h"

enum {
	O_WORKER = 256, O_NO_FORK, O_DIST, O_TAGS, O_SHARD, O_LIST, O_JSON,
	O_FF, O_NO_FF, O_LF, O_RANDOM, O_MAXFAIL, O_RERUNS, O_TIMEOUT,
	O_TIMEOUT_MULT, O_MAX_RESTART, O_CACHE_DIR, O_NO_CACHE, O_HEARTBEAT,
	O_DURATIONS, O_COLOR, O_JUNIT, O_TAP, O_WEB, O_REPORT_DURATIONS,
	O_WATCH, O_TX, O_SHIP, O_SHIP_IGNORE, O_TLS_CERT, O_TLS_KEY, O_TLS_CA,
	O_SSH_COMMAND, O_CONFIG, O_NO_CONFIG,
};

static const struct option opt_long[] = {
	{ "jobs", required_argument, NULL, 'j' },
	{ "worker", required_argument, NULL, O_WORKER },
	{ "no-fork", no_argument, NULL, O_NO_FORK },
	{ "dist", required_argument, NULL, O_DIST },
	{ "keyword", required_argument, NULL, 'k' },
	{ "tags", required_argument, NULL, O_TAGS },
	{ "shard", required_argument, NULL, O_SHARD },
	{ "list", no_argument, NULL, O_LIST },
	{ "json", required_argument, NULL, O_JSON },
	{ "junit-xml", required_argument, NULL, O_JUNIT },
	{ "tap", required_argument, NULL, O_TAP },
	{ "web", required_argument, NULL, O_WEB },
	{ "ff", no_argument, NULL, O_FF },
	{ "failed-first", no_argument, NULL, O_FF },
	{ "no-ff", no_argument, NULL, O_NO_FF },
	{ "lf", no_argument, NULL, O_LF },
	{ "last-failed", no_argument, NULL, O_LF },
	{ "random-order", optional_argument, NULL, O_RANDOM },
	{ "exitfirst", no_argument, NULL, 'x' },
	{ "looponfail", no_argument, NULL, 'f' },
	{ "watch", required_argument, NULL, O_WATCH },
	{ "maxfail", required_argument, NULL, O_MAXFAIL },
	{ "reruns", required_argument, NULL, O_RERUNS },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "timeout-multiplier", required_argument, NULL, O_TIMEOUT_MULT },
	{ "max-worker-restart", required_argument, NULL, O_MAX_RESTART },
	{ "cache-dir", required_argument, NULL, O_CACHE_DIR },
	{ "no-cache", no_argument, NULL, O_NO_CACHE },
	{ "heartbeat", required_argument, NULL, O_HEARTBEAT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "durations", required_argument, NULL, O_DURATIONS },
	{ "report-durations", no_argument, NULL, O_REPORT_DURATIONS },
	{ "color", required_argument, NULL, O_COLOR },
	{ "colour", required_argument, NULL, O_COLOR },
	{ "tx", required_argument, NULL, O_TX },
	{ "ship", required_argument, NULL, O_SHIP },
	{ "ship-ignore", required_argument, NULL, O_SHIP_IGNORE },
	{ "tls-cert", required_argument, NULL, O_TLS_CERT },
	{ "tls-key", required_argument, NULL, O_TLS_KEY },
	{ "tls-ca", required_argument, NULL, O_TLS_CA },
	{ "ssh-command", required_argument, NULL, O_SSH_COMMAND },
	{ "config", required_argument, NULL, O_CONFIG },
	{ "no-config", no_argument, NULL, O_NO_CONFIG },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* The short options' long names, for the config file. */
static const struct {
	int		 c;
	const char	*name;
} opt_short_names[] = {
	{ 'j', "jobs" }, { 'k', "keyword" }, { 'x', "exitfirst" },
	{ 'v', "verbose" }, { 'q', "quiet" },
};

/* Settings a config file may not hold: they are about this one
 * command, or about the file itself. */
static const char *const opt_not_in_conf[] = {
	"help", "version", "config", "no-config", "list", "looponfail",
	NULL
};

#define OPT_CONF_DEFAULT	"distmgr.conf"


void
opt_usage(FILE *fp)
{
	fputs(
"usage: distmgr [options] suite.so [more.so ...]\n"
"\n"
"Runs the tests of each suite across worker processes and reports every\n"
"result once.\n"
"\n"
"Workers:\n"
"  -j, --jobs N|auto        N local workers (default auto: one per CPU,\n"
"                           unless --tx is given); 0: one, no distribution\n"
"      --tx SPEC            workers from an execution spec (repeatable):\n"
"                           [N*]popen, [N*]ssh=[user@]host[:port],\n"
"                           [N*]tcp=host:port or [N*]exec=COMMAND, then\n"
"                           any of //chdir=DIR //env:NAME=VALUE //id=NAME\n"
"                           //nice=N //worker=PATH\n"
"      --worker PATH        the distworker program to start\n"
"      --no-fork            run tests inside the workers, not in a forked\n"
"                           child each (faster; a crash costs a worker)\n"
"      --dist load|each|no  share the tests out (load, the default), run\n"
"                           every test on every worker (each), or use one\n"
"                           worker (no)\n"
"      --max-worker-restart N  replace at most N lost workers (default 4x -j)\n"
"      --heartbeat S        a worker silent for S seconds is hung (default\n"
"                           10; 0: never)\n"
"      --ship DIR           send DIR, file by file, to the workers that get\n"
"                           suites by content (ssh, tcp, exec; repeatable)\n"
"      --ship-ignore GLOB   leave out the files GLOB matches (repeatable)\n"
"      --tls-cert FILE      this manager's certificate, for tcp= workers\n"
"      --tls-key FILE       its private key\n"
"      --tls-ca FILE        the farm's CA, which signed the daemons'\n"
"      --ssh-command CMD    the ssh to run for ssh= (default: ssh, or\n"
"                           DISTMGR_SSH_COMMAND)\n"
"      --config FILE        settings from FILE (default ./distmgr.conf when\n"
"                           it exists)\n"
"      --no-config          read no config file\n"
"\n"
"Selection and order:\n"
"  -k EXPR                  only tests whose suite/name matches EXPR (globs,\n"
"                           substrings, not, and, or, parentheses)\n"
"      --tags EXPR          only tests whose tags satisfy EXPR\n"
"      --shard I/N          only the I-th of N stable shards\n"
"      --list               list the selected tests and exit; with\n"
"                           --json FILE|-, as JSON (-: stdout, for tools)\n"
"      --ff, --no-ff        run last run's failures first (default on)\n"
"      --lf                 run only last run's failures\n"
"      --random-order[=SEED]  shuffle (the seed is printed for repeating)\n"
"      --cache-dir DIR      where durations and failures are kept\n"
"                           (default .distmgr)\n"
"      --no-cache           neither read nor write the cache\n"
"\n"
"Running:\n"
"  -x, --exitfirst          stop at the first failure\n"
"      --maxfail N          stop after N failures\n"
"      --reruns N           run a failed test again up to N times; one that\n"
"                           then passes is reported flaky\n"
"      --timeout S          seconds for tests that set none (default 300;\n"
"                           0: no limit)\n"
"      --timeout-multiplier F  scale every test's timeout by F\n"
"  -f, --looponfail         run, then wait for the suites (and every --watch\n"
"                           DIR) to change and run the failed tests again,\n"
"                           until they pass, then all; Ctrl-C to stop\n"
"      --watch DIR          with -f: also wait for changes under DIR\n"
"\n"
"Output:\n"
"      --junit-xml FILE     also write a JUnit XML report\n"
"      --tap FILE|-         also write TAP (-: stdout, instead of the terminal)\n"
"      --json FILE|-        also write JSON lines, one event each (-: stdout,\n"
"                           instead of the terminal)\n"
"      --web [ADDR:]PORT    serve a live dashboard (ADDR 127.0.0.1)\n"
"  -v, --verbose            a line per test and per worker (-vv: more)\n"
"  -q, --quiet              the summary only\n"
"      --durations N        show the N slowest tests\n"
"      --report-durations   list the N slowest tests (--durations N, else\n"
"                           10) with their durations from the cache in the\n"
"                           JSON and web reports\n"
"      --color WHEN         auto, always or never (NO_COLOR is honoured)\n"
"  -h, --help               this text\n"
"  -V, --version            the version\n"
"\n"
"Exit status: 0 all passed, 1 some failed, 2 interrupted, 3 internal\n"
"error, 4 usage error, 5 no tests collected.\n", fp);
}

static int
opt_int(const char *name, const char *text, long min, long max, long *out,
    char *why, size_t whylen)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
		snprintf(why, whylen, "%s wants a whole number from %ld to %ld, "
		    "not '%s'", name, min, max, text);
		return -1;
	}
	*out = v;
	return 0;
}

static int
opt_num(const char *name, const char *text, double min, double *out,
    char *why, size_t whylen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !isfinite(v) ||
	    v < min) {
		snprintf(why, whylen, "%s wants a number of at least %g, not "
		    "'%s'", name, min, text);
		return -1;
	}
	*out = v;
	return 0;
}

static int
opt_jobs(struct options *o, const char *text, char *why, size_t whylen)
{
	long v;

	if (strcmp(text, "auto") == 0) {
		o->jobs = OPT_JOBS_AUTO;
		return 0;
	}
	if (opt_int("-j", text, 0, 4096, &v, why, whylen) == -1) {
		snprintf(why, whylen, "-j wants a number of workers from 0 to "
		    "4096 or 'auto', not '%s'", text);
		return -1;
	}
	o->jobs = (int)v;
	return 0;
}

static int
opt_word(const char *name, const char *text, const char *const *words,
    int *out, char *why, size_t whylen)
{
	int i;

	for (i = 0; words[i] != NULL; i++)
		if (strcmp(text, words[i]) == 0) {
			*out = i;
			return 0;
		}
	snprintf(why, whylen, "%s wants one of", name);
	for (i = 0; words[i] != NULL; i++)
		snprintf(why + strlen(why), whylen - strlen(why), "%s %s",
		    i == 0 ? "" : (words[i + 1] == NULL ? " or" : ","),
		    words[i]);
	snprintf(why + strlen(why), whylen - strlen(why), ", not '%s'", text);
	return -1;
}

/* A report's file: "--json -k x" must not quietly write to "-k". */
static int
opt_file(const char *name, const char *arg, int dash_ok, const char **out,
    char *why, size_t whylen)
{
	if (arg[0] == '\0') {
		snprintf(why, whylen, "%s wants a file name%s", name,
		    dash_ok ? " or - for stdout" : "");
		return -1;
	}
	if (arg[0] == '-' && (arg[1] != '\0' || !dash_ok)) {
		snprintf(why, whylen, "%s wants a file name%s, not '%s' (write "
		    "./%s for a file of that name)", name, dash_ok ?
		    " or - for stdout" : "", arg, arg);
		return -1;
	}
	*out = arg;
	return 0;
}

static void
opt_defaults(struct options *o)
{
	memset(o, 0, sizeof *o);
	o->jobs = OPT_JOBS_AUTO;
	o->boxed = 1;
	o->dist = DIST_LOAD;
	o->ff = 1;
	o->seed = -1;
	o->timeout = OPT_DEFAULT_TIMEOUT;
	o->timeout_multiplier = 1.0;
	o->max_worker_restart = -1;
	o->heartbeat = OPT_DEFAULT_HEARTBEAT;
	o->color = COLOR_AUTO;
}

static int	opt_farm(struct options *, int, const char *, char *, size_t);

/* One option that takes a value or changes a setting; 0 or -1. */
static int
opt_one(struct options *o, int c, const char *arg, char *why, size_t whylen)
{
	static const char *const dists[] = { "load", "each", "no", NULL };
	static const char *const colors[] = { "auto", "always", "never", NULL };
	long v;
	int w;

	switch (c) {
	case 'j':
		o->jobs_set = 1;
		return opt_jobs(o, arg, why, whylen);
	case O_WORKER:
		o->worker = arg;
		return 0;
	case O_NO_FORK:
		o->boxed = 0;
		return 0;
	case O_DIST:
		if (opt_word("--dist", arg, dists, &w, why, whylen) == -1)
			return -1;
		o->dist = (enum dist_mode)w;
		return 0;
	case 'k':
		o->kexpr = arg;
		return 0;
	case O_TAGS:
		o->tags = arg;
		return 0;
	case O_SHARD:
		o->shard = arg;
		return 0;
	case O_LIST:
		o->list = 1;
		return 0;
	case O_JSON:
		/* In a run, the JSON lines reporter; with --list, the list
		 * as one JSON object. "-" is stdout in both. */
		return opt_file("--json", arg, 1, &o->json, why, whylen);
	case O_JUNIT:
		return opt_file("--junit-xml", arg, 0, &o->junit_xml, why,
		    whylen);
	case O_TAP:
		return opt_file("--tap", arg, 1, &o->tap, why, whylen);
	case O_WEB:
		o->web = arg;
		return 0;
	case O_FF:
		o->ff = 1;
		return 0;
	case O_NO_FF:
		o->ff = 0;
		return 0;
	case O_LF:
		o->lf = 1;
		return 0;
	case O_RANDOM:
		o->random_order = 1;
		if (arg == NULL)
			return 0;
		if (opt_int("--random-order", arg, 0, LONG_MAX, &v, why,
		    whylen) == -1)
			return -1;
		o->seed = v;
		return 0;
	case 'x':
		o->maxfail = 1;
		return 0;
	case 'f':
		o->looponfail = 1;
		return 0;
	case O_WATCH:
		if (o->nwatch == OPT_WATCH_MAX) {
			snprintf(why, whylen, "--watch: at most %d directories",
			    OPT_WATCH_MAX);
			return -1;
		}
		if (arg[0] == '\0') {
			snprintf(why, whylen, "--watch wants a directory");
			return -1;
		}
		o->watch[o->nwatch++] = arg;
		return 0;
	case O_MAXFAIL:
		if (opt_int("--maxfail", arg, 1, LONG_MAX, &v, why,
		    whylen) == -1)
			return -1;
		o->maxfail = (size_t)v;
		return 0;
	case O_RERUNS:
		if (opt_int("--reruns", arg, 0, 100, &v, why, whylen) == -1)
			return -1;
		o->reruns = (int)v;
		return 0;
	case O_TIMEOUT:
		return opt_num("--timeout", arg, 0, &o->timeout, why, whylen);
	case O_TIMEOUT_MULT:
		if (opt_num("--timeout-multiplier", arg, 0,
		    &o->timeout_multiplier, why, whylen) == -1)
			return -1;
		if (o->timeout_multiplier == 0) {
			snprintf(why, whylen, "--timeout-multiplier must be "
			    "more than 0 (use --timeout 0 for no limit)");
			return -1;
		}
		return 0;
	case O_MAX_RESTART:
		if (opt_int("--max-worker-restart", arg, 0, INT_MAX, &v, why,
		    whylen) == -1)
			return -1;
		o->max_worker_restart = (int)v;
		return 0;
	case O_CACHE_DIR:
		o->cache_dir = arg;
		return 0;
	case O_NO_CACHE:
		o->no_cache = 1;
		return 0;
	case O_HEARTBEAT:
		return opt_num("--heartbeat", arg, 0, &o->heartbeat, why,
		    whylen);
	case 'v':
		if (o->verbosity < 0)
			o->verbosity = 0;
		o->verbosity++;
		return 0;
	case 'q':
		o->verbosity = -1;
		return 0;
	case O_DURATIONS:
		if (opt_int("--durations", arg, 0, INT_MAX, &v, why,
		    whylen) == -1)
			return -1;
		o->durations = (int)v;
		return 0;
	case O_REPORT_DURATIONS:
		o->report_durations = 1;
		return 0;
	case O_COLOR:
		if (opt_word("--color", arg, colors, &w, why, whylen) == -1)
			return -1;
		o->color = (enum color_mode)w;
		return 0;
	}
	return opt_farm(o, c, arg, why, whylen);
}

static void
opt_push(const char ***list, size_t *n, const char *v)
{
	*list = xreallocarray(*list, *n + 1, sizeof **list);
	(*list)[(*n)++] = v;
}

/* The farm's options; 0 or -1. */
static int
opt_farm(struct options *o, int c, const char *arg, char *why, size_t whylen)
{
	struct txspec *tx;

	switch (c) {
	case O_TX:
		if ((tx = txspec_parse(arg, why, whylen)) == NULL)
			return -1;
		o->tx = xreallocarray(o->tx, o->ntx + 1, sizeof *o->tx);
		o->tx[o->ntx++] = tx;
		return 0;
	case O_SHIP:
		if (*arg == '\0') {
			snprintf(why, whylen, "--ship wants a directory");
			return -1;
		}
		opt_push(&o->ship, &o->nship, arg);
		return 0;
	case O_SHIP_IGNORE:
		opt_push(&o->ship_ignore, &o->nship_ignore, arg);
		return 0;
	case O_TLS_CERT:
		o->tls_cert = arg;
		return 0;
	case O_TLS_KEY:
		o->tls_key = arg;
		return 0;
	case O_TLS_CA:
		o->tls_ca = arg;
		return 0;
	case O_SSH_COMMAND:
		o->ssh_command = arg;
		return 0;
	case O_CONFIG:
		o->config = arg;
		return 0;
	case O_NO_CONFIG:
		o->no_config = 1;
		return 0;
	}
	snprintf(why, whylen, "unknown option");
	return -1;
}

/* -k or --tags: does it parse? */
static int
opt_check_expr(const char *name, const char *text, char *why, size_t whylen)
{
	struct kexpr *k;
	char sub[384];

	if (text == NULL)
		return 0;
	if ((k = kexpr_parse(text, sub, sizeof sub)) == NULL) {
		snprintf(why, whylen, "%s: %s", name, sub);
		return -1;
	}
	kexpr_free(k);
	return 0;
}

/* Is host an address on this machine's loopback, as written? Names
 * are looked up when connecting, and checked again then. */
static int
opt_numeric_remote(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) != 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return !IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}


static int
opt_check_farm(const struct options *o, char *why, size_t whylen)
{
	int tls = (o->tls_cert != NULL) + (o->tls_key != NULL) +
	    (o->tls_ca != NULL);
	size_t i;

	if (o->ntx > 0 && o->jobs == 0 && o->jobs_set) {
		snprintf(why, whylen, "-j 0 (one local worker, no "
		    "distribution) cannot go with --tx");
		return -1;
	}
	if (opt_nworkers(o) > OPT_MAX_WORKERS) {
		snprintf(why, whylen, "at most %d workers, not %d",
		    OPT_MAX_WORKERS, opt_nworkers(o));
		return -1;
	}
	if (tls != 0 && tls != 3) {
		snprintf(why, whylen, "--tls-cert, --tls-key and --tls-ca go "
		    "together");
		return -1;
	}
	for (i = 0; i < o->ntx; i++)
		if (o->tx[i]->kind == TX_TCP && tls == 0 &&
		    opt_numeric_remote(o->tx[i]->host)) {
			snprintf(why, whylen, "--tx %s: beyond loopback a "
			    "daemon is reached over TLS only (--tls-cert, "
			    "--tls-key, --tls-ca)", o->tx[i]->text);
			return -1;
		}
	return 0;
}

/* What cannot be seen one option at a time. */
static int
opt_check(const struct options *o, char *why, size_t whylen)
{
	unsigned si, sn;

	if (o->nsuites == 0) {
		/* Most likely "--json suite.so", the suite taken for the
		 * report's file name. */
		if (o->json != NULL || o->tap != NULL || o->junit_xml != NULL)
			snprintf(why, whylen, "no suite given: --json, --tap "
			    "and --junit-xml take a file name before the "
			    "suites (- for stdout: --json - suite.so)");
		else
			snprintf(why, whylen, "no suite given (distmgr "
			    "[options] suite.so ...)");
		return -1;
	}
	if (o->list && (o->junit_xml != NULL || o->tap != NULL ||
	    o->web != NULL)) {
		snprintf(why, whylen, "--list runs nothing to report: drop "
		    "--junit-xml, --tap and --web");
		return -1;
	}
	if (o->tap != NULL && o->json != NULL && strcmp(o->tap, "-") == 0 &&
	    strcmp(o->json, "-") == 0) {
		snprintf(why, whylen, "--tap - and --json cannot both write "
		    "to stdout");
		return -1;
	}
	if (opt_check_expr("-k", o->kexpr, why, whylen) == -1 ||
	    opt_check_expr("--tags", o->tags, why, whylen) == -1)
		return -1;
	if (o->shard != NULL && shard_parse(o->shard, &si, &sn) == -1) {
		snprintf(why, whylen, "--shard wants I/N with 1 <= I <= N, not "
		    "'%s'", o->shard);
		return -1;
	}
	if (o->nwatch > 0 && !o->looponfail) {
		snprintf(why, whylen, "--watch is for --looponfail (-f): add "
		    "-f, or drop --watch");
		return -1;
	}
	if (o->looponfail && o->list) {
		snprintf(why, whylen, "--looponfail runs tests; --list only "
		    "lists them: use one or the other");
		return -1;
	}
	if (o->dist == DIST_EACH && o->jobs == 0) {
		snprintf(why, whylen, "--dist each needs workers; -j 0 "
		    "means none");
		return -1;
	}
	return opt_check_farm(o, why, whylen);
}

/* An option as the command line gave it, kept until the config file
 * has been applied. */
struct opt_given {
	int		 c;
	const char	*arg;
};

/* The code of a setting named as a long option, or 0. */
static int
opt_code(const char *name, int *has_arg)
{
	size_t i;

	for (i = 0; i < DM_NELEM(opt_short_names); i++)
		if (strcmp(name, opt_short_names[i].name) == 0) {
			*has_arg = opt_short_names[i].c == 'j' ||
			    opt_short_names[i].c == 'k' ? required_argument :
			    no_argument;
			return opt_short_names[i].c;
		}
	for (i = 0; opt_long[i].name != NULL; i++)
		if (strcmp(name, opt_long[i].name) == 0) {
			*has_arg = opt_long[i].has_arg;
			return opt_long[i].val;
		}
	return 0;
}

/* The opposite of a flag set to no in a config file, or 0. */
static int
opt_opposite(int c)
{
	switch (c) {
	case O_FF:
		return O_NO_FF;
	case O_NO_FF:
		return O_FF;
	}
	return 0;
}

/* One config line's setting; 0, or -1 with "FILE:LINE: ..." in why. */
static int
opt_conf_entry(struct options *o, const struct conf *cf,
    const struct conf_entry *e, char *why, size_t whylen)
{
	char inner[400];
	int c, has_arg, b;
	size_t i;

	for (i = 0; opt_not_in_conf[i] != NULL; i++)
		if (strcmp(e->name, opt_not_in_conf[i]) == 0) {
			snprintf(why, whylen, "%s:%d: '%s' cannot be set in a "
			    "config file", cf->path, e->line, e->name);
			return -1;
		}
	if ((c = opt_code(e->name, &has_arg)) == 0) {
		snprintf(why, whylen, "%s:%d: unknown setting '%s' (settings "
		    "are distmgr's long options)", cf->path, e->line, e->name);
		return -1;
	}
	inner[0] = '\0';
	if (has_arg == no_argument) {
		if ((b = conf_bool(e->value)) == -1) {
			snprintf(why, whylen, "%s:%d: %s wants yes or no, not "
			    "'%s'", cf->path, e->line, e->name, e->value);
			return -1;
		}
		if (b == 0 && (c = opt_opposite(c)) == 0)
			return 0;
		if (opt_one(o, c, NULL, inner, sizeof inner) == 0)
			return 0;
	} else if (has_arg == required_argument && e->value[0] == '\0') {
		snprintf(why, whylen, "%s:%d: %s needs a value", cf->path,
		    e->line, e->name);
		return -1;
	} else if (opt_one(o, c, has_arg == optional_argument &&
	    e->value[0] == '\0' ? NULL : e->value, inner, sizeof inner) == 0)
		return 0;
	snprintf(why, whylen, "%s:%d: %s", cf->path, e->line, inner);
	return -1;
}

/* Reads and applies the config file the command line points to. */
static int
opt_conf(struct options *o, const char *path, int no_config, char *why,
    size_t whylen)
{
	size_t i;

	if (no_config)
		return 0;
	if (path == NULL) {
		if (access(OPT_CONF_DEFAULT, F_OK) == -1)
			return 0;
		path = OPT_CONF_DEFAULT;
	}
	if ((o->conf = conf_load(path, why, whylen)) == NULL)
		return -1;
	for (i = 0; i < o->conf->n; i++)
		if (opt_conf_entry(o, o->conf, &o->conf->entries[i], why,
		    whylen) == -1)
			return -1;
	return 0;
}

/* getopt's pass: --help and --version at once, the rest kept in order
 * in given[] (room for argc). */
static enum opt_result
opt_scan(int argc, char **argv, FILE *out, struct opt_given *given,
    size_t *ngiven, char *why, size_t whylen)
{
	int c;

	optind = 0;	/* 0: glibc starts afresh, permutation state too */
	opterr = 0;
	*ngiven = 0;
	/* Options may follow the suites, as with pytest; the leading ':'
	 * tells a missing value from an unknown option. */
	while ((c = getopt_long(argc, argv, ":j:k:xfvqhV", opt_long,
	    NULL)) != -1) {
		switch (c) {
		case 'h':
			opt_usage(out);
			return OPT_EXIT;
		case 'V':
			fprintf(out, "distmgr %s (protocol %d)\n", DM_VERSION,
			    DM_PROTOCOL_VERSION);
			return OPT_EXIT;
		case '?':
			if (optopt != 0)
				snprintf(why, whylen, "unknown option '-%c'",
				    optopt);
			else
				snprintf(why, whylen, "unknown option '%s'",
				    argv[optind - 1]);
			return OPT_BAD;
		case ':':
			snprintf(why, whylen, "option '%s' needs a value",
			    argv[optind - 1]);
			return OPT_BAD;
		default:
			given[*ngiven].c = c;
			given[*ngiven].arg = optarg;
			(*ngiven)++;
		}
	}
	return OPT_RUN;
}

enum opt_result
opt_parse(struct options *o, int argc, char **argv, FILE *out, char *why,
    size_t whylen)
{
	struct opt_given *given = xcalloc((size_t)argc + 1, sizeof *given);
	const char *config = NULL;
	enum opt_result rc;
	size_t n, i;
	int no_config = 0;

	opt_defaults(o);
	why[0] = '\0';
	if ((rc = opt_scan(argc, argv, out, given, &n, why, whylen)) !=
	    OPT_RUN)
		goto out;
	for (i = 0; i < n; i++) {
		if (given[i].c == O_CONFIG)
			config = given[i].arg;
		else if (given[i].c == O_NO_CONFIG)
			no_config = 1;
	}
	rc = OPT_BAD;
	if (opt_conf(o, config, no_config, why, whylen) == -1)
		goto out;
	for (i = 0; i < n; i++)
		if (opt_one(o, given[i].c, given[i].arg, why, whylen) == -1)
			goto out;
	o->list_json = o->list && o->json != NULL;
	if (o->ssh_command == NULL)
		o->ssh_command = getenv("DISTMGR_SSH_COMMAND");
	o->argv = argv;
	o->suites = argv + optind;
	o->nsuites = (size_t)(argc - optind);
	if (opt_check(o, why, whylen) == -1)
		goto out;
	rc = OPT_RUN;
out:
	free(given);
	return rc;
}

void
opt_free(struct options *o)
{
	size_t i;

	for (i = 0; i < o->ntx; i++)
		txspec_free(o->tx[i]);
	free(o->tx);
	free(o->ship);
	free(o->ship_ignore);
	conf_free(o->conf);
	o->tx = NULL;
	o->ship = o->ship_ignore = NULL;
	o->ntx = o->nship = o->nship_ignore = 0;
	o->conf = NULL;
}

/* -j's local workers: none when only --tx was given. */
static int
opt_local_workers(const struct options *o)
{
	long n;

	if (o->ntx > 0 && !o->jobs_set)
		return 0;
	if (o->jobs == 0)
		return 1;
	if (o->jobs > 0)
		return o->jobs;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (int)n;
}

/* One worker only: -j 0, --dist no, or a --list. */
static int
opt_just_one(const struct options *o)
{
	return o->jobs == 0 || o->dist == DIST_NO || o->list;
}

int
opt_nworkers(const struct options *o)
{
	int n = opt_local_workers(o);
	size_t i;

	if (opt_just_one(o))
		return 1;
	for (i = 0; i < o->ntx && n <= OPT_MAX_WORKERS; i++)
		n += o->tx[i]->count;
	return n;
}

/* What the node line shows: the spec without its count. */
static const char *
opt_spec_text(const struct txspec *tx)
{
	const char *star = strchr(tx->text, '*');

	if (star != NULL && strspn(tx->text, "0123456789") ==
	    (size_t)(star - tx->text))
		return star + 1;
	return tx->text;
}

static int
opt_id_ok(const char *id)
{
	const char *p;

	if (*id == '\0' || strlen(id) > 24)
		return 0;
	for (p = id; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' &&
		    *p != '.')
			return 0;
	return 1;
}

struct opt_slot *
opt_slots(const struct options *o, int *nslots, int *ngroups, char *why,
    size_t whylen)
{
	int total = opt_nworkers(o), local = opt_local_workers(o), n = 0, k;
	int group = 0, g;
	struct opt_slot *sl = xcalloc((size_t)total + 1, sizeof *sl);
	const struct txspec *tx;
	size_t i;

	for (k = 0; k < local && n < total; k++, n++) {
		snprintf(sl[n].id, sizeof sl[n].id, "w%d", n);
		sl[n].spec = "popen";
		/* -j alone: each local worker is a group (--dist each runs
		 * every test on every worker, as it always has). */
		sl[n].group = o->ntx == 0 ? group++ : 0;
	}
	if (local > 0 && o->ntx > 0)
		group = 1;
	for (i = 0; i < o->ntx && n < total; i++, group++) {
		tx = o->tx[i];
		if (tx->id != NULL && !opt_id_ok(tx->id)) {
			snprintf(why, whylen, "--tx %s: an id is at most 24 "
			    "letters, digits, '-', '_' or '.'", tx->text);
			goto fail;
		}
		for (k = 0; k < tx->count && n < total; k++, n++) {
			if (tx->id == NULL)
				snprintf(sl[n].id, sizeof sl[n].id, "w%d", n);
			else if (tx->count == 1)
				snprintf(sl[n].id, sizeof sl[n].id, "%s",
				    tx->id);
			else
				snprintf(sl[n].id, sizeof sl[n].id, "%s-%d",
				    tx->id, k);
			sl[n].tx = tx;
			sl[n].spec = opt_spec_text(tx);
			sl[n].group = group;
		}
	}
	for (k = 0; k < n; k++)
		for (g = 0; g < k; g++)
			if (strcmp(sl[k].id, sl[g].id) == 0) {
				snprintf(why, whylen, "two workers would be "
				    "called '%s': give another //id=",
				    sl[k].id);
				goto fail;
			}
	*nslots = n;
	if (ngroups != NULL)
		*ngroups = n > 0 ? sl[n - 1].group + 1 : 0;
	return sl;
fail:
	free(sl);
	return NULL;
}

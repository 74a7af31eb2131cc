/*
 * main.c - distmgr's main(): the command line, then one run.
 *
 * Nothing else lives here, so that everything the run does is in the
 * library the unit tests link.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "manager.h"

int
main(int argc, char **argv)
{
	struct options o;
	char why[512];
	int rc;

	log_init("distmgr", LOG_LVL_WARN);
	switch (opt_parse(&o, argc, argv, stdout, why, sizeof why)) {
	case OPT_EXIT:
		opt_free(&o);
		return EXIT_ALL_PASSED;
	case OPT_BAD:
		fprintf(stderr, "distmgr: %s\nTry 'distmgr --help'.\n", why);
		opt_free(&o);
		return EXIT_USAGE;
	case OPT_RUN:
		break;
	}
	if (o.verbosity >= 2)
		log_set_level(LOG_LVL_INFO);
	if (o.verbosity >= 3)
		log_set_level(LOG_LVL_DEBUG);
	rc = o.looponfail ? lf_main(&o, argv[0]) : run_main(&o, argv[0]);
	opt_free(&o);
	return rc;
}

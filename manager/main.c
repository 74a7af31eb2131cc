/*
 * main.c - distmgr's main(): the command line, then the run.
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

	log_init("distmgr", LOG_LVL_WARN);
	switch (opt_parse(&o, argc, argv, stdout, why, sizeof why)) {
	case OPT_EXIT:
		return EXIT_ALL_PASSED;
	case OPT_BAD:
		fprintf(stderr, "distmgr: %s\nTry 'distmgr --help'.\n", why);
		return EXIT_USAGE;
	case OPT_RUN:
		break;
	}
	fprintf(stderr, "distmgr: not built yet\n");
	return EXIT_INTERNAL;
}

/* empty.c - a bad suite: built with distmgr.h, but without any test. */
#include <distmgr.h>

int empty_suite_marker(void);

int
empty_suite_marker(void)
{
	return 0;
}

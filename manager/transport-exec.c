/*
 * transport-exec.c - a worker started by any command whose standard
 * input and output then speak the protocol: a cluster's launcher
 * (`srun -N1 distworker --stdio`, `kubectl exec -i pod -- distworker
 * --stdio`), a container, a wrapper script. The command is run by
 * /bin/sh -c, as the user wrote it, through the child-process transport.
 */
#include "common.h"
#include "manager.h"

int
tp_exec_start(const char *command, struct tp_proc *p, char *why,
    size_t whylen)
{
	const char *argv[4];

	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = command;
	argv[3] = NULL;
	return tp_spawn(argv, p, why, whylen);
}

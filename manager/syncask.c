/*
 * syncask.c - the workers' asks for synchronisation between tests (lock,
 * unlock, board_set, board_get, trail; distmgr-protocol(7)), answered
 * from sync.c, the run's one authority.
 *
 * An ask that cannot be answered yet (a lock another test holds, a
 * trail's last finish) keeps its request until sync.c grants it, or
 * drops it (the test ended, its worker was lost): a dropped ask is
 * answered with an error, so that the worker's callback still runs once
 * and its test, if it is still there, is told -1. Nothing here may
 * answer a request twice.
 */
#include <string.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

#define E_NOT_HELD	"NOT_HELD"
#define E_ALREADY_HELD	"ALREADY_HELD"
#define E_BOARD_FULL	"BOARD_FULL"

static void
syncask_granted(void *arg, int previous_died)
{
	amp_answer(arg, json_pack("{s:b}", "previous_died", previous_died));
}

static void
syncask_trail_answer(void *arg, int result)
{
	amp_answer(arg, json_pack("{s:b}", "result", result));
}

void
syncask_drop(void *arg)
{
	amp_fail(arg, AMP_E_FAILED, "the test that asked has ended");
}

static void
syncask_lock(struct sync *s, uint64_t owner, struct amp_request *req,
    const char *name)
{
	int died = 0;

	switch (sync_lock(s, name, owner, syncask_granted, req, &died)) {
	case 1:
		syncask_granted(req, died);
		break;
	case 0:
		break;		/* granted later, or dropped */
	default:
		amp_fail(req, E_ALREADY_HELD, "the test already holds lock "
		    "'%.200s' (locks are not recursive)", name);
		break;
	}
}

static void
syncask_trail(struct sync *s, uint64_t owner, double deadline,
    struct amp_request *req, const char *name, const char *phase)
{
	int finish, result;

	if (strcmp(phase, "start") == 0)
		finish = 0;
	else if (strcmp(phase, "finish") == 0)
		finish = 1;
	else {
		amp_fail(req, AMP_E_BAD_ARGUMENT, "argument 'phase' must be "
		    "'start' or 'finish'");
		return;
	}
	if (sync_trail(s, name, finish, owner, deadline, syncask_trail_answer,
	    req, &result) == 1)
		syncask_trail_answer(req, result);
}

void
syncask_handle(struct sync *s, uint64_t owner, double deadline,
    struct amp_request *req, json_t *box)
{
	const char *cmd = amp_request_command(req);
	const char *name = json_get_str(box, "name", "");
	const char *key = json_get_str(box, "key", "");
	const char *v;

	if (strcmp(cmd, "lock") == 0)
		syncask_lock(s, owner, req, name);
	else if (strcmp(cmd, "unlock") == 0) {
		if (sync_unlock(s, name, owner) == 0)
			amp_answer(req, NULL);
		else
			amp_fail(req, E_NOT_HELD, "the test does not hold "
			    "lock '%.200s'", name);
	} else if (strcmp(cmd, "board_set") == 0) {
		if (sync_board_set(s, key, json_get_str(box, "value", "")) == 0)
			amp_answer(req, NULL);
		else
			amp_fail(req, E_BOARD_FULL, "the board would hold more "
			    "than %u bytes", SYNC_BOARD_MAX);
	} else if (strcmp(cmd, "board_get") == 0) {
		v = sync_board_get(s, key);
		amp_answer(req, json_pack("{s:o}", "value", v != NULL ?
		    json_string(v) : json_null()));
	} else if (strcmp(cmd, "trail") == 0)
		syncask_trail(s, owner, deadline, req, name,
		    json_get_str(box, "phase", ""));
	else
		amp_fail(req, AMP_E_UNHANDLED, "unknown command");
}

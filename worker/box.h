/*
 * box.h - what distworker and its box helper, distworker-box, agree on:
 * the helper's descriptors, the messages on its control socket, the page
 * the worker, the helper and each test's child share, and the requests a
 * test's child makes on the synchronisation channel.
 *
 * The helper (worker/box/box.c) loads one suite and forks a child per
 * test: a small process forks at about the cost of a bare fork, where the
 * worker, with its libraries and heap, costs twice that (see
 * runner-boxer.c). Everything here is fixed-size and libc only; both
 * sides are built from one tree, and BOX_VERSION keeps a stray helper of
 * another build from being believed.
 */
#ifndef DM_BOX_H
#define DM_BOX_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "host.h"

#define BOX_VERSION		2
#define BOX_HELPER_NAME		"distworker-box"

/* The helper's descriptors, as the worker hands them over at spawn:
 * 0 reads /dev/null, 1 and 2 are the tests' output (pipes the worker
 * reads, or the worker's own 1 and 2 when it does not capture). */
#define BOX_FD_CONTROL		3	/* SOCK_SEQPACKET to the worker */
#define BOX_FD_PAGE		4	/* memfd of struct box_page */
#define BOX_FD_SYNC		5	/* tests' sync channel, or closed */
#define BOX_FD_FIRST_FREE	6

/* Messages on the control socket, one per packet. */
enum box_msg_type {
	BOX_MSG_READY = 1,	/* helper: the suite is loaded */
	BOX_MSG_FAILED,		/* helper: it cannot be; text says why */
	BOX_MSG_RUN,		/* worker: run one test */
	BOX_MSG_DONE,		/* helper: it ended; its group is gone */
};

/* DONE's flags. */
#define BOX_DONE_NOT_STARTED	0x1	/* error says why: fork, or a bad
					   index (text) */
#define BOX_DONE_LINGERED	0x2	/* something it left survived
					   SIGKILL for BOX_SWEEP_SECONDS */

/* RUN's run_flags. */
#define BOX_RUN_LAST		0x1	/* the group's last test: its
					   teardown follows, in its process */

#define BOX_TEXT_MAX		512
#define BOX_SWEEP_SECONDS	2.0

struct box_msg {
	uint32_t	 type;		/* enum box_msg_type */
	uint32_t	 version;	/* READY: BOX_VERSION */
	/* RUN: the test, as an index into the registry the suite's entry
	 * point returns (not the worker's sorted list), its DM_SUITE
	 * defaults likewise (-1: none), and its line, checked by the
	 * helper against the test it finds there. */
	uint32_t	 test;
	int32_t		 defaults;
	int32_t		 line;
	/* RUN, for a test of a serial group: which run of the group it
	 * belongs to (0: none; a new number is a new process and set-up),
	 * its DM_GROUP in the registry (-1: none), and BOX_RUN_LAST. */
	uint32_t	 group_run;
	int32_t		 group;
	uint32_t	 run_flags;
	int32_t		 status;	/* DONE: the child's wait status */
	int32_t		 error;		/* DONE: errno, when not started */
	uint32_t	 flags;		/* DONE: BOX_DONE_* */
	char		 text[BOX_TEXT_MAX];	/* FAILED, DONE: why */
};
/* A message without its text is this long. */
#define BOX_MSG_HEAD		offsetof(struct box_msg, text)

enum box_state { BOX_IDLE = 0, BOX_RUNNING, BOX_DONE };

/*
 * The page. The worker clears it before each RUN; the helper stores the
 * child's pid as soon as it has forked (the worker kills the test's
 * group by it), and the child writes its report, state last, before it
 * leaves, so that a crash right after loses nothing. stop is the
 * worker's: a test stopped before the helper knew its pid is killed by
 * the helper as soon as it does (both sides store, then load, with
 * sequential consistency: one of them sees the other).
 */
struct box_page {
	volatile int	 state;		/* enum box_state */
	volatile int	 phase;		/* enum test_phase */
	volatile pid_t	 pid;		/* the test's child; 0: none yet */
	volatile int	 stop;		/* the worker has stopped the test */
	volatile int	 group_fixture;	/* a group's init or fini runs */
	struct test_end	 end;
};

/*
 * The synchronisation channel (see host_set_sync_fd): a SOCK_SEQPACKET
 * socketpair per worker whose one end every test child inherits as
 * BOX_FD_SYNC. A request is a box_sync_req followed by alen bytes of its
 * first string (a lock, board key or trail name) and blen of its second
 * (a board value); the answer is a box_sync_reply followed by len bytes
 * of a value (board_get). One test runs at a time in a worker, so every
 * request is that test's (or, while the page says group_fixture, its
 * group's set-up or tear-down).
 */
enum box_sync_op {
	BOX_SYNC_LOCK = 1, BOX_SYNC_UNLOCK, BOX_SYNC_BOARD_SET,
	BOX_SYNC_BOARD_GET, BOX_SYNC_TRAIL
};

#define BOX_SYNC_STRING_MAX	4096

struct box_sync_req {
	uint64_t	 id;		/* the asking pid << 32, a count */
	uint32_t	 op;		/* enum box_sync_op */
	int32_t		 arg;		/* TRAIL: enum dm_trail_phase */
	uint32_t	 alen;
	uint32_t	 blen;
};

/* An answer names the request's id: one left unread by a test that was
 * killed while it waited is passed over by the next. */
struct box_sync_reply {
	uint64_t	 id;
	int32_t		 rc;		/* what the dm_ call returns */
	uint32_t	 has_value;	/* BOARD_GET: the key is set */
	uint32_t	 len;
	uint32_t	 pad;
};

#endif /* DM_BOX_H */

/*
 * testutil.h - what the Check programs share: an event loop that runs
 * until a condition holds or a deadline passes, and connected pairs of
 * protocol connections over a real socketpair.
 */
#ifndef DM_TESTUTIL_H
#define DM_TESTUTIL_H

#include <event2/event.h>

#include "common.h"
#include "protocol.h"

/* Runs base until *flag is non-zero or seconds pass; returns *flag. */
int	tu_loop_until(struct event_base *base, volatile int *flag,
	    double seconds);
/* Runs base for about seconds, whatever happens. */
void	tu_loop_for(struct event_base *base, double seconds);

/* Two connections joined by a socketpair. */
struct tu_pair {
	struct amp_conn	*a;
	struct amp_conn	*b;
	int		 a_closed, b_closed;
	char		 a_reason[256], b_reason[256];
};

/* Creates both ends on base with tables ta and tb (may be NULL); each
 * end's ctx is the pair, and on_close records the reason. */
void	tu_pair_open(struct event_base *base, struct tu_pair *p,
	    const struct amp_command *ta, const struct amp_command *tb);
/* A connection on one end of a socketpair; the other end's fd is
 * returned in *peer_fd for raw writes and reads. */
struct amp_conn *tu_conn_raw(struct event_base *base,
	    const struct amp_command *table, const struct amp_conn_cbs *cbs,
	    void *ctx, int *peer_fd);

/* A frame built by hand: 4-byte length then payload. */
size_t	tu_frame_bytes(const char *json, unsigned char *out, size_t outlen);

#endif

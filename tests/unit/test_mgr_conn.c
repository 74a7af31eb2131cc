/*
 * test_mgr_conn.c - what the manager relies on from a connection to a
 * worker that dies: its last frames are read even when our write to it
 * failed first (EPIPE). Without that, a worker's last result and the
 * test_started of the test that killed it were lost, and the crash was
 * blamed on an innocent test.
 */
#include <check.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "testutil.h"

static int notes, closed;
static char close_reason[256];

static int
h_note(struct amp_request *req, json_t *box)
{
	(void)req;
	(void)box;
	notes++;
	return 0;
}

static const struct amp_command table[] = {
	{ "note", h_note, NULL },
	{ NULL, NULL, NULL }
};

static void
on_close(struct amp_conn *c, const char *reason, void *ctx)
{
	(void)c;
	(void)ctx;
	closed = 1;
	snprintf(close_reason, sizeof close_reason, "%s", reason);
}

static const struct amp_conn_cbs cbs = { on_close, NULL };

START_TEST(test_last_words_after_write_error)
{
	struct event_base *base = event_base_new();
	unsigned char buf[256];
	struct amp_conn *c;
	size_t n;
	int peer, i;

	signal(SIGPIPE, SIG_IGN);
	notes = closed = 0;
	c = tu_conn_raw(base, table, &cbs, NULL, &peer);
	/* Not reading yet, so the write fails before anything is read. */
	amp_conn_pause(c);
	for (i = 0; i < 3; i++) {
		n = tu_frame_bytes("{\"_command\":\"note\"}", buf, sizeof buf);
		ck_assert_int_eq(write(peer, buf, n), (ssize_t)n);
	}
	close(peer);
	ck_assert_int_eq(amp_tell(c, "anything", NULL), 0);
	tu_loop_for(base, 0.1);
	ck_assert_msg(closed == 0, "closed too soon: %s", close_reason);
	amp_conn_resume(c);
	tu_loop_until(base, &closed, 5);
	ck_assert_int_eq(notes, 3);
	ck_assert_int_eq(closed, 1);
	ck_assert_str_eq(close_reason, "closed by peer");
	event_base_free(base);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("mgr_conn");
	TCase *tc = tcase_create("conn");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_last_words_after_write_error);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

/*
 * test_reporter_sink.c - the output of the streaming reporters when the
 * reader is slow, stopped or gone: writing never blocks, what is written
 * arrives whole and in order, a reader past the cap loses the end of the
 * stream (never a middle part), and stdout's shared flags are left alone.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "manager.h"
#include "reporter_fixture.h"

#define NRECORDS	20000
#define RECORD_LEN	100

static void
record(char *buf, int i)
{
	snprintf(buf, RECORD_LEN + 1, "%08d %0*d\n", i, RECORD_LEN - 10, 0);
}

/* Reads everything the pipe holds now into out (grown). */
static void
slurp_pipe(int fd, char **out, size_t *len, size_t *size)
{
	ssize_t n;

	for (;;) {
		if (*size - *len < 65536) {
			*size = *size * 2 + 65536;
			*out = xreallocarray(*out, *size, 1);
		}
		n = read(fd, *out + *len, *size - *len);
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
}

/* Nobody reads: 2 MB of records into a 256 KiB cap. Every call returns,
 * the first records are kept, the rest dropped; once the reader comes
 * back, what arrives is exactly records 0..k-1, whole. */
START_TEST(test_stalled_reader_never_blocks)
{
	struct event_base *base = event_base_new();
	int fds[2];
	struct sink *s;
	char rec[RECORD_LEN + 1], *got = NULL;
	size_t len = 0, size = 0, kept;
	int dropped_calls = 0;

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(fd_set_nonblock(fds[0], 1), 0);
	s = sink_open_fd(base, fds[1], "tap", "the pipe");
	sink_set_limit(s, 256 * 1024);
	for (int i = 0; i < NRECORDS; i++) {
		record(rec, i);
		if (sink_write(s, rec, RECORD_LEN) == -1)
			dropped_calls++;
	}
	ck_assert_int_gt(dropped_calls, 0);
	ck_assert_uint_eq(sink_dropped(s), (uint64_t)dropped_calls);
	ck_assert_uint_le(sink_pending(s), 256 * 1024);
	kept = NRECORDS - (size_t)dropped_calls;
	/* Dropping is for good: the stream ends early, without holes. */
	record(rec, 0);
	ck_assert_int_eq(sink_write(s, rec, RECORD_LEN), -1);

	while (sink_pending(s) > 0) {
		slurp_pipe(fds[0], &got, &len, &size);
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	slurp_pipe(fds[0], &got, &len, &size);
	ck_assert_uint_eq(len, kept * RECORD_LEN);
	for (size_t i = 0; i < kept; i++) {
		record(rec, (int)i);
		ck_assert_msg(memcmp(got + i * RECORD_LEN, rec, RECORD_LEN) == 0,
		    "record %zu differs", i);
	}
	free(got);
	sink_close(s);
	close(fds[0]);
	close(fds[1]);
	event_base_free(base);
}
END_TEST

/* A slow reader below the cap loses nothing. */
START_TEST(test_slow_reader_gets_everything)
{
	struct event_base *base = event_base_new();
	int fds[2];
	struct sink *s;
	char rec[RECORD_LEN + 1], *got = NULL;
	size_t len = 0, size = 0;

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(fd_set_nonblock(fds[0], 1), 0);
	s = sink_open_fd(base, fds[1], "json", "the pipe");
	for (int i = 0; i < NRECORDS; i++) {
		record(rec, i);
		ck_assert_int_eq(sink_write(s, rec, RECORD_LEN), 0);
		if (i % 5000 == 0) {
			slurp_pipe(fds[0], &got, &len, &size);
			event_base_loop(base, EVLOOP_NONBLOCK);
		}
	}
	while (sink_pending(s) > 0) {
		slurp_pipe(fds[0], &got, &len, &size);
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	slurp_pipe(fds[0], &got, &len, &size);
	ck_assert_uint_eq(len, (size_t)NRECORDS * RECORD_LEN);
	record(rec, NRECORDS - 1);
	ck_assert(memcmp(got + len - RECORD_LEN, rec, RECORD_LEN) == 0);
	ck_assert_uint_eq(sink_dropped(s), 0);
	free(got);
	sink_close(s);
	close(fds[0]);
	close(fds[1]);
	event_base_free(base);
}
END_TEST

/* At the end, a reader that takes nothing is given up on. */
START_TEST(test_flush_gives_up_on_stalled_reader)
{
	int fds[2];
	struct sink *s;
	char rec[RECORD_LEN + 1];

	ck_assert_int_eq(pipe(fds), 0);
	s = sink_open_fd(NULL, fds[1], "tap", "the pipe");
	for (int i = 0; i < 2000; i++) {
		record(rec, i);
		sink_write(s, rec, RECORD_LEN);
	}
	ck_assert_uint_gt(sink_pending(s), 0);
	ck_assert_int_eq(sink_flush(s, 0.2), -1);
	ck_assert_uint_gt(sink_pending(s), 0);
	sink_close(s);		/* must not wait again */
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* The reader went away: no SIGPIPE death, output stops, run goes on. */
START_TEST(test_reader_gone)
{
	int fds[2];
	struct sink *s;
	char rec[RECORD_LEN + 1];

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pipe(fds), 0);
	close(fds[0]);
	s = sink_open_fd(NULL, fds[1], "tap", "the pipe");
	record(rec, 1);
	ck_assert_int_eq(sink_write(s, rec, RECORD_LEN), -1);
	ck_assert_int_eq(sink_write(s, rec, RECORD_LEN), -1);
	ck_assert_uint_eq(sink_dropped(s), 2);
	ck_assert_int_eq(sink_flush(s, 5), -1);
	sink_close(s);
	close(fds[1]);
}
END_TEST

/* "-" on a pipe: output arrives, and stdout's file description (shared
 * with the shell and the terminal reporter) stays blocking. */
START_TEST(test_stdout_keeps_its_flags)
{
	int fds[2], fl;
	struct sink *s;
	char why[256], buf[64];
	ssize_t n;

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(dup2(fds[1], STDOUT_FILENO), STDOUT_FILENO);
	s = sink_open(NULL, "-", "tap", why, sizeof why);
	ck_assert_msg(s != NULL, "%s", why);
	fl = fcntl(STDOUT_FILENO, F_GETFL);
	ck_assert_int_eq(fl & O_NONBLOCK, 0);
	ck_assert_int_eq(sink_write(s, "ok 1\n", 5), 0);
	n = read(fds[0], buf, sizeof buf);
	ck_assert_int_eq(n, 5);
	ck_assert(memcmp(buf, "ok 1\n", 5) == 0);
	sink_close(s);
	ck_assert_int_eq(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK, 0);
}
END_TEST

START_TEST(test_fifo_without_reader)
{
	char dir[] = "/tmp/sinkfifo.XXXXXX", path[64], why[256];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/f", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_ptr_null(sink_open(NULL, path, "json", why, sizeof why));
	ck_assert_msg(strstr(why, "nobody has the FIFO open for reading") !=
	    NULL, "%s", why);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* A TAP reporter on a pipe that is not read during the run: feeding the
 * whole run does not block, and when the reader comes back it gets
 * every line, in order. */
START_TEST(test_tap_on_stalled_pipe)
{
	struct event_base *base = event_base_new();
	int fds[2], lines = 0;
	char path[64], why[256], *got = NULL, *p;
	size_t len = 0, size = 0;
	struct reporter *r;
	struct test_report t = fx_reports[1];
	struct run_info ri = fx_run_info;

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(fd_set_nonblock(fds[0], 1), 0);
	snprintf(path, sizeof path, "/proc/self/fd/%d", fds[1]);
	r = reporter_tap_new(base, path, why, sizeof why);
	ck_assert_msg(r != NULL, "%s", why);
	ri.ntests = 3000;
	fx_start(r, &ri);
	for (int i = 0; i < 3000; i++)
		fx_result(r, &t);
	for (int i = 0; i < 100000 && lines < 3000; i++) {
		slurp_pipe(fds[0], &got, &len, &size);
		event_base_loop(base, EVLOOP_NONBLOCK);
		got = xreallocarray(got, len + 1, 1);
		size = len + 1;
		got[len] = '\0';
		lines = 0;
		for (p = got; (p = strstr(p, "\nnot ok ")) != NULL; p++)
			lines++;
	}
	ck_assert_int_eq(lines, 3000);
	ck_assert(strncmp(got, "TAP version 13\n1..3000\nnot ok 1 - "
	    "math/fails\n", 40) == 0);
	ck_assert_ptr_nonnull(strstr(got, "\nnot ok 3000 - math/fails\n"));
	free(got);
	r->ops->free(r);
	close(fds[0]);
	close(fds[1]);
	event_base_free(base);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reporter-sink");
	TCase *tc = tcase_create("sink");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stalled_reader_never_blocks);
	tcase_add_test(tc, test_slow_reader_gets_everything);
	tcase_add_test(tc, test_flush_gives_up_on_stalled_reader);
	tcase_add_test(tc, test_reader_gone);
	tcase_add_test(tc, test_stdout_keeps_its_flags);
	tcase_add_test(tc, test_fifo_without_reader);
	tcase_add_test(tc, test_tap_on_stalled_pipe);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

/*
 * test_capture.c - the tail of a test's output under a cap: what is kept,
 * the line saying what was cut, characters not split, memory bounded, and
 * reading from a pipe and from a file.
 */
#include <sys/mman.h>

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "worker.h"

static char *
text_of(struct capture *c)
{
	size_t len;
	const char *p = capture_data(c, &len);

	return xstrndup(p, len);
}

START_TEST(test_nothing_allocates_nothing)
{
	struct capture c;
	size_t len = 99;

	capture_init(&c, 100);
	ck_assert_str_eq(capture_data(&c, &len), "");
	ck_assert_uint_eq(len, 0);
	ck_assert_ptr_null(c.buf);
	capture_free(&c);
}
END_TEST

START_TEST(test_under_the_cap_is_kept_whole)
{
	struct capture c;
	char *t;

	capture_init(&c, 100);
	capture_add(&c, "hello ", 6);
	capture_add(&c, "world\n", 6);
	t = text_of(&c);
	ck_assert_str_eq(t, "hello world\n");
	free(t);
	capture_free(&c);
}
END_TEST

/* 26 letters ten times over, cap 20: the last 20, and the count cut. */
START_TEST(test_over_the_cap_keeps_the_tail)
{
	struct capture c;
	char *t;
	int i;

	capture_init(&c, 20);
	for (i = 0; i < 10; i++)
		capture_add(&c, "abcdefghijklmnopqrstuvwxyz", 26);
	t = text_of(&c);
	ck_assert_str_eq(t, "[distworker: 240 bytes of output cut; the last 20 "
	    "follow]\nghijklmnopqrstuvwxyz");
	free(t);
	capture_free(&c);
}
END_TEST

START_TEST(test_one_piece_over_the_cap)
{
	struct capture c;
	char big[1000], *t;

	memset(big, 'x', sizeof big);
	big[sizeof big - 1] = 'y';
	capture_init(&c, 10);
	capture_add(&c, big, sizeof big);
	t = text_of(&c);
	ck_assert_str_eq(t, "[distworker: 990 bytes of output cut; the last 10 "
	    "follow]\nxxxxxxxxxy");
	free(t);
	capture_free(&c);
}
END_TEST

/* A cut inside a character moves to the next one. */
START_TEST(test_the_cut_does_not_split_a_character)
{
	struct capture c;
	/* "aé€x": a, é (2 bytes), € (3 bytes), x */
	const char s[] = "a\xc3\xa9\xe2\x82\xacx";
	char *t;

	capture_init(&c, 3);	/* would begin inside the euro sign */
	capture_add(&c, s, sizeof s - 1);
	t = text_of(&c);
	ck_assert_str_eq(t, "[distworker: 6 bytes of output cut; the last 1 "
	    "follow]\nx");
	free(t);
	capture_reset(&c);
	c.cap = 4;		/* begins on the euro sign's first byte */
	capture_add(&c, s, sizeof s - 1);
	t = text_of(&c);
	ck_assert_str_eq(t, "[distworker: 3 bytes of output cut; the last 4 "
	    "follow]\n\xe2\x82\xacx");
	free(t);
	capture_free(&c);
}
END_TEST

/* Ten megabytes in small pieces: the buffer stays near twice the cap. */
START_TEST(test_memory_stays_bounded)
{
	struct capture c;
	char piece[1000];
	size_t len;
	int i;

	memset(piece, 'z', sizeof piece);
	capture_init(&c, 4096);
	for (i = 0; i < 10000; i++)
		capture_add(&c, piece, sizeof piece);
	ck_assert_uint_le(c.size, CAPTURE_HEADROOM + 2 * 4096 +
	    CAPTURE_READ_CHUNK);
	capture_data(&c, &len);
	ck_assert_uint_le(len, 4096 + CAPTURE_HEADROOM);
	/* A big buffer is not kept for the next test. */
	capture_reset(&c);
	ck_assert_ptr_null(c.buf);
	capture_free(&c);
}
END_TEST

START_TEST(test_read_from_a_pipe)
{
	struct capture c;
	char buf[3000], *t;
	int fds[2];
	ssize_t n;

	ck_assert_int_eq(pipe(fds), 0);
	memset(buf, '.', sizeof buf);
	memcpy(buf + sizeof buf - 4, "end\n", 4);
	ck_assert_int_eq(write(fds[1], buf, sizeof buf), (int)sizeof buf);
	close(fds[1]);
	capture_init(&c, 10);
	while ((n = capture_read_fd(&c, fds[0])) > 0)
		;
	ck_assert_int_eq(n, 0);
	close(fds[0]);
	t = text_of(&c);
	ck_assert_str_eq(t, "[distworker: 2990 bytes of output cut; the last 10 "
	    "follow]\n......end\n");
	free(t);
	capture_free(&c);
}
END_TEST

START_TEST(test_tail_of_a_file)
{
	struct capture c;
	int fd = memfd_create("test", 0);
	size_t len;
	const char *p;
	char *t;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "0123456789abcdef", 16), 16);
	capture_init(&c, 6);
	p = capture_file_tail(&c, fd, 16, &len);
	t = xstrndup(p, len);
	ck_assert_str_eq(t, "[distworker: 10 bytes of output cut; the last 6 "
	    "follow]\nabcdef");
	free(t);
	capture_reset(&c);
	p = capture_file_tail(&c, fd, 4, &len);
	ck_assert_uint_eq(len, 4);
	ck_assert(memcmp(p, "0123", 4) == 0);
	close(fd);
	capture_free(&c);
}
END_TEST

/* The next test's capture takes a small buffer back; a used one is not
 * touched. */
START_TEST(test_give_back)
{
	struct capture a, b;

	capture_init(&a, 100);
	capture_add(&a, "x", 1);
	capture_init(&b, 100);
	capture_give_back(&b, &a);
	ck_assert_ptr_nonnull(b.buf);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_ptr_null(a.buf);
	capture_init(&a, 100);
	capture_add(&a, "y", 1);
	capture_give_back(&b, &a);	/* b has one: a's is freed */
	ck_assert_ptr_null(a.buf);
	capture_free(&b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("capture");
	TCase *tc = tcase_create("capture");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_nothing_allocates_nothing);
	tcase_add_test(tc, test_under_the_cap_is_kept_whole);
	tcase_add_test(tc, test_over_the_cap_keeps_the_tail);
	tcase_add_test(tc, test_one_piece_over_the_cap);
	tcase_add_test(tc, test_the_cut_does_not_split_a_character);
	tcase_add_test(tc, test_memory_stays_bounded);
	tcase_add_test(tc, test_read_from_a_pipe);
	tcase_add_test(tc, test_tail_of_a_file);
	tcase_add_test(tc, test_give_back);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

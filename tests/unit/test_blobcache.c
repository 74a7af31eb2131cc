/*
 * test_blobcache.c - the worker's content-addressed cache: verified
 * commits, refusal of corrupted transfers, LRU eviction past the limit,
 * and names from the network that try to escape.
 */
#include <sys/stat.h>

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "worker.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/dmblob.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int
put(struct blobcache *bc, const char *data, char *hex, char *why)
{
	struct blob_writer *w;
	size_t n = strlen(data);

	sha256_hex(data, n, hex);
	if ((w = blobcache_begin(bc, hex, n, why, 256)) == NULL)
		return -1;
	/* In two pieces, as chunks arrive. */
	if (blob_writer_write(w, data, n / 2, why, 256) == -1 ||
	    blob_writer_write(w, data + n / 2, n - n / 2, why, 256) == -1) {
		blob_writer_abort(w);
		return -1;
	}
	return blob_writer_commit(w, why, 256);
}

START_TEST(test_put_has_install)
{
	char why[256], hex[SHA256_HEX_LEN + 1], buf[64], path[128];
	struct blobcache *bc = blobcache_open(dir, 0, why, sizeof why);
	struct stat st;
	int root, fd;
	ssize_t n;

	ck_assert_msg(bc != NULL, "%s", why);
	ck_assert_int_eq(put(bc, "hello, farm\n", hex, why), 0);
	ck_assert_int_eq(blobcache_has(bc, hex), 1);
	snprintf(path, sizeof path, "%s/session", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	root = open(path, O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(blobcache_install(bc, hex, root, "data/in/f.txt",
	    0640, why, sizeof why), 0);
	/* Installing again replaces the file. */
	ck_assert_int_eq(blobcache_install(bc, hex, root, "data/in/f.txt",
	    0755, why, sizeof why), 0);
	snprintf(path, sizeof path, "%s/session/data/in/f.txt", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0755);
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	ck_assert_str_eq(buf, "hello, farm\n");
	close(root);
	blobcache_close(bc);
}
END_TEST

START_TEST(test_corrupted_refused)
{
	char why[256], hex[SHA256_HEX_LEN + 1];
	struct blobcache *bc = blobcache_open(dir, 0, why, sizeof why);
	struct blob_writer *w;

	sha256_hex("the real bytes", 14, hex);
	w = blobcache_begin(bc, hex, 14, why, sizeof why);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(blob_writer_write(w, "the fake bytes", 14, why,
	    sizeof why), 0);
	ck_assert_int_eq(blob_writer_commit(w, why, sizeof why), -1);
	ck_assert_msg(strstr(why, "corrupted transfer: sha256 is ") != NULL,
	    "%s", why);
	ck_assert_int_eq(blobcache_has(bc, hex), 0);

	/* Too long, too short. */
	w = blobcache_begin(bc, hex, 4, why, sizeof why);
	ck_assert_int_eq(blob_writer_write(w, "12345", 5, why, sizeof why), -1);
	ck_assert_str_eq(why, "blob longer than the 4 bytes announced");
	blob_writer_abort(w);
	w = blobcache_begin(bc, hex, 14, why, sizeof why);
	ck_assert_int_eq(blob_writer_commit(w, why, sizeof why), -1);
	ck_assert_str_eq(why, "blob ended after 0 of 14 bytes");
	ck_assert_ptr_null(blobcache_begin(bc, "../../etc/passwd", 1, why,
	    sizeof why));
	ck_assert_int_eq(blobcache_evict(bc), 0);	/* no tmp left */
	blobcache_close(bc);
}
END_TEST

START_TEST(test_lru_eviction)
{
	char why[256], h1[65], h2[65], h3[65], data[1000];
	struct blobcache *bc = blobcache_open(dir, 2500, why, sizeof why);
	struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } };
	char p1[256];

	memset(data, 'a', 999);
	data[999] = '\0';
	ck_assert_int_eq(put(bc, data, h1, why), 0);
	data[0] = 'b';
	ck_assert_int_eq(put(bc, data, h2, why), 0);
	/* h1 is used again; h2 is left old. */
	snprintf(p1, sizeof p1, "%s/blobs/%s", dir, h2);
	ck_assert_int_eq(utimensat(AT_FDCWD, p1, old, 0), 0);
	ck_assert_int_eq(blobcache_has(bc, h1), 1);
	data[0] = 'c';
	ck_assert_int_eq(put(bc, data, h3, why), 0);
	ck_assert_int_eq(blobcache_has(bc, h2), 0);
	ck_assert_int_eq(blobcache_has(bc, h1), 1);
	ck_assert_int_eq(blobcache_has(bc, h3), 1);
	ck_assert_ptr_null(blobcache_begin(bc, h1, 3000, why, sizeof why));
	ck_assert_str_eq(why, "blob of 3000 bytes is over the cache limit of "
	    "2500 bytes");
	blobcache_close(bc);
}
END_TEST

START_TEST(test_names_cannot_escape)
{
	static const char *bad[] = { "/etc/passwd", "../x", "a/../../x",
	    "a//b", "./a", "a/.", "", "a/" };
	char why[256], hex[65], path[128];
	struct blobcache *bc = blobcache_open(dir, 0, why, sizeof why);
	size_t i;
	int root;

	for (i = 0; i < DM_NELEM(bad); i++)
		ck_assert_msg(ship_path_ok(bad[i], why, sizeof why) == -1,
		    "'%s' accepted", bad[i]);
	ck_assert_int_eq(ship_path_ok("a/b.c/..d/e", why, sizeof why), 0);

	/* A symlink planted in the tree is not followed. */
	ck_assert_int_eq(put(bc, "x", hex, why), 0);
	snprintf(path, sizeof path, "%s/s", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/s/link", dir);
	ck_assert_int_eq(symlink("/tmp", path), 0);
	snprintf(path, sizeof path, "%s/s", dir);
	root = open(path, O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(blobcache_install(bc, hex, root, "link/escaped",
	    0644, why, sizeof why), -1);
	ck_assert_int_eq(access("/tmp/escaped", F_OK), -1);
	close(root);
	blobcache_close(bc);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("blobcache");
	TCase *tc = tcase_create("cache");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_put_has_install);
	tcase_add_test(tc, test_corrupted_refused);
	tcase_add_test(tc, test_lru_eviction);
	tcase_add_test(tc, test_names_cannot_escape);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

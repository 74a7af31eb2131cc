/*
 * test_ship.c - what far workers are sent: the manifest of suites and
 * --ship trees (equal contents one blob, ignored files left out, links
 * out of the tree skipped with a warning), and one worker's transfer
 * over a real connection to a scripted worker: have, the missing blobs
 * only, ship asks naming every file, and a file that changed since it
 * was hashed refused before it is sent.
 */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "manager.h"

static char top[64];
static char warnings[4096];
static int nwarnings;

static void
put(const char *rel, const char *text, mode_t mode)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", top, rel);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	chmod(path, mode);
}

static void
dir(const char *rel)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", top, rel);
	ck_assert_int_eq(mkdir(path, 0755), 0);
}

static void
link_to(const char *target, const char *rel)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", top, rel);
	ck_assert_int_eq(symlink(target, path), 0);
}

static void
on_warn(void *arg, const char *text)
{
	(void)arg;
	nwarnings++;
	snprintf(warnings + strlen(warnings), sizeof warnings -
	    strlen(warnings), "%s\n", text);
}

/* A tree: data/ with two equal files, a subdirectory, an object file and
 * a build directory to ignore, and links in, out, to a directory and to
 * nothing; and two suites of one name. */
static void
make_tree(void)
{
	char cmd[128];

	if (top[0] != '\0') {
		snprintf(cmd, sizeof cmd, "rm -rf %s", top);
		ck_assert_int_eq(system(cmd), 0);
	}
	snprintf(top, sizeof top, "/tmp/dmship.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(top));
	dir("data");
	dir("data/sub");
	dir("data/build");
	dir("a");
	dir("b");
	dir("other");
	dir("other/data");
	put("data/x.txt", "one\n", 0644);
	put("data/same.txt", "one\n", 0600);
	put("data/sub/run.sh", "#!/bin/sh\n", 0755);
	put("data/x.o", "object", 0644);
	put("data/build/junk", "junk", 0644);
	put("a/s.so", "suite a", 0644);
	put("b/s.so", "suite b", 0644);
	link_to("x.txt", "data/in");
	link_to("/etc/hostname", "data/out");
	link_to("sub", "data/dirlink");
	link_to("nowhere", "data/dangling");
	nwarnings = 0;
	warnings[0] = '\0';
}

static void
rm_tree(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", top);
	ck_assert_int_eq(system(cmd), 0);
	top[0] = '\0';
}

static struct ship *
manifest(const char **dirs, size_t ndirs, char *why, size_t whylen)
{
	static char sa[128], sb[128];
	char *suites[2] = { sa, sb };
	static const char *ignore[] = { "*.o", "build" };

	snprintf(sa, sizeof sa, "%s/a/s.so", top);
	snprintf(sb, sizeof sb, "%s/b/s.so", top);
	return ship_new(suites, 2, dirs, ndirs, ignore, 2, on_warn, NULL, why,
	    whylen);
}

START_TEST(test_manifest)
{
	char d1[128], d2[128], why[512];
	const char *dirs[2] = { d1, d2 };
	struct ship *sh;

	make_tree();
	snprintf(d1, sizeof d1, "%s/data", top);
	sh = manifest(dirs, 1, why, sizeof why);
	ck_assert_msg(sh != NULL, "%s", why);
	ck_assert_str_eq(ship_suite_name(sh, 0), "s.so");
	ck_assert_str_eq(ship_suite_name(sh, 1), "1-s.so");
	ck_assert_str_ne(ship_suite_sha256(sh, 0), ship_suite_sha256(sh, 1));
	/* in, same.txt, sub/run.sh, x.txt: 4 files, 2 contents + 2 suites */
	ck_assert_uint_eq(ship_ntree_files(sh), 4);
	ck_assert_uint_eq(ship_nblobs(sh), 4);
	ck_assert_int_eq(nwarnings, 3);
	ck_assert_msg(strstr(warnings, "skipped out: a symbolic link out of "
	    "the tree (to /etc/hostname)") != NULL, "%s", warnings);
	ck_assert_msg(strstr(warnings, "skipped dangling: a symbolic link to "
	    "nothing") != NULL, "%s", warnings);
	ck_assert_msg(strstr(warnings, "skipped dirlink: a symbolic link to "
	    "something not a regular file") != NULL, "%s", warnings);
	ship_free(sh);

	/* Two trees called alike on the workers. */
	snprintf(d2, sizeof d2, "%s/other/data/", top);
	ck_assert_ptr_null(manifest(dirs, 2, why, sizeof why));
	ck_assert_msg(strstr(why, "another --ship is also called 'data'") !=
	    NULL, "%s", why);
	snprintf(d2, sizeof d2, "%s/missing", top);
	ck_assert_ptr_null(manifest(dirs, 2, why, sizeof why));
	ck_assert_msg(strstr(why, "missing: No such file or directory") !=
	    NULL, "%s", why);
	snprintf(d2, sizeof d2, "%s/data/x.txt", top);
	ck_assert_ptr_null(manifest(dirs, 2, why, sizeof why));
	ck_assert_msg(strstr(why, "not a directory") != NULL, "%s", why);
	rm_tree();
}
END_TEST

/* ---- a scripted worker on the other end ------------------------------- */

struct peer {
	char		 have[8][65];	/* blobs it has */
	int		 nhave;
	char		 got[8][65];	/* blobs it received, checked */
	size_t		 got_size[8];
	int		 ngot;
	int		 bad;		/* a blob that did not match */
	char		 files[8][128];	/* "root/path mode" */
	int		 nfiles;
	int		 haves;		/* have asks */
	struct stream_rx *rx;
};

static struct peer peer;

static int
h_have(struct amp_request *req, json_t *box)
{
	json_t *missing = json_array(), *b;
	const char *hex;
	size_t i;
	int k, has;

	peer.haves++;
	json_array_foreach(json_object_get(box, "blobs"), i, b) {
		hex = json_get_str(b, "sha256", "");
		for (has = 0, k = 0; k < peer.nhave; k++)
			has |= strcmp(peer.have[k], hex) == 0;
		if (!has)
			json_array_append_new(missing, json_string(hex));
	}
	amp_answer(req, json_pack("{s:o}", "missing", missing));
	return 0;
}

static int
h_blob(struct amp_request *req, json_t *box)
{
	char why[256], hex[65];
	const unsigned char *p;
	size_t n;
	int rc;

	(void)req;
	if (json_get_int(box, "seq", -1) == 0) {
		stream_rx_free(peer.rx);
		peer.rx = stream_rx_new(1 << 20, 1);
	}
	rc = stream_rx_add(peer.rx, box, why, sizeof why);
	ck_assert_msg(rc >= 0, "%s", why);
	if (rc == 0)
		return 0;
	p = stream_rx_data(peer.rx, &n);
	sha256_hex(p, n, hex);
	if (strcmp(hex, json_get_str(box, "stream", "")) != 0 ||
	    (long long)n != json_get_int(box, "size", -1))
		peer.bad++;
	snprintf(peer.got[peer.ngot], 65, "%s", hex);
	peer.got_size[peer.ngot++] = n;
	return 0;
}

static int
h_ship(struct amp_request *req, json_t *box)
{
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(box, "files"), i, f)
		snprintf(peer.files[peer.nfiles++], 128, "%s/%s %o",
		    json_get_str(box, "root", ""), json_get_str(f, "path", ""),
		    (unsigned)json_get_int(f, "mode", 0));
	amp_answer(req, json_pack("{s:i}", "files", (int)i));
	return 0;
}

static void
peer_reset(void)
{
	stream_rx_free(peer.rx);
	memset(&peer, 0, sizeof peer);
}

static const struct amp_command peer_table[] = {
	{ "have", h_have, NULL },
	{ "blob", h_blob, NULL },
	{ "ship", h_ship, NULL },
	{ NULL, NULL, NULL }
};

static int events, last_event;
static char last_why[512];

static void
on_ship_event(void *arg, int event, const char *why)
{
	(void)arg;
	events++;
	last_event = event;
	snprintf(last_why, sizeof last_why, "%s", why != NULL ? why : "");
}

START_TEST(test_transfer)
{
	struct event_base *base = event_base_new();
	char d1[128], why[512];
	const char *dirs[1] = { d1 };
	struct shipper *sp;
	struct tu_pair p;
	struct ship *sh;
	uint64_t bytes;
	size_t sent, cached;
	int i;

	make_tree();
	snprintf(d1, sizeof d1, "%s/data", top);
	sh = manifest(dirs, 1, why, sizeof why);
	ck_assert_msg(sh != NULL, "%s", why);
	peer_reset();
	/* It has the first suite already. */
	snprintf(peer.have[peer.nhave++], 65, "%s", ship_suite_sha256(sh, 0));
	tu_pair_open(base, &p, NULL, peer_table);
	events = 0;
	sp = shipper_start(sh, p.a, 1, on_ship_event, NULL);
	tu_loop_until(base, &events, 5);
	ck_assert_int_eq(last_event, SHIP_QUEUED);
	tu_loop_for(base, 0.2);
	ck_assert(shipper_done(sp));
	ck_assert_int_eq(peer.haves, 1);
	ck_assert_int_eq(peer.bad, 0);
	ck_assert_int_eq(peer.ngot, 3);
	for (i = 0; i < peer.ngot; i++)
		ck_assert_str_ne(peer.got[i], ship_suite_sha256(sh, 0));
	shipper_stats(sp, &bytes, &sent, &cached);
	/* "suite b" (7), "one\n" (4), "#!/bin/sh\n" (10) */
	ck_assert_uint_eq(bytes, 21);
	ck_assert_uint_eq(sent, 3);
	ck_assert_uint_eq(cached, 1);
	ck_assert_int_eq(peer.nfiles, 4);
	ck_assert_str_eq(peer.files[0], "data/in 644");
	ck_assert_str_eq(peer.files[1], "data/same.txt 600");
	ck_assert_str_eq(peer.files[2], "data/sub/run.sh 755");
	ck_assert_str_eq(peer.files[3], "data/x.txt 644");
	shipper_free(sp);

	/* A worker without a cache is not asked: it gets everything. */
	peer_reset();
	events = 0;
	sp = shipper_start(sh, p.a, 0, on_ship_event, NULL);
	tu_loop_until(base, &events, 5);
	tu_loop_for(base, 0.2);
	ck_assert_int_eq(peer.haves, 0);
	ck_assert_int_eq(peer.ngot, 4);
	shipper_free(sp);

	/* A file that changed after it was hashed is not sent. */
	peer_reset();
	put("data/sub/run.sh", "#!/bin/sh\nexit 1\n", 0755);
	events = 0;
	sp = shipper_start(sh, p.a, 1, on_ship_event, NULL);
	tu_loop_until(base, &events, 5);
	ck_assert_int_eq(last_event, SHIP_FAILED);
	ck_assert_msg(strstr(last_why, "sub/run.sh changed while the run was "
	    "starting") != NULL, "%s", last_why);
	tu_loop_for(base, 0.2);
	ck_assert_int_eq(events, 1);
	ck_assert_int_eq(peer.ngot, 3);		/* the ones before it */
	ck_assert_int_eq(peer.nfiles, 0);
	shipper_free(sp);

	amp_conn_close(p.a, "done", 0);
	amp_conn_close(p.b, "done", 0);
	tu_loop_for(base, 0.05);
	peer_reset();
	ship_free(sh);
	event_base_free(base);
	rm_tree();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ship");
	TCase *tc = tcase_create("ship");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_manifest);
	tcase_add_test(tc, test_transfer);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}

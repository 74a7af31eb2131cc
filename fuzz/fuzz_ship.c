/*
 * fuzz_ship.c - libFuzzer harness for what a worker does with shipped
 * names and bytes (worker/shipping.c, worker/blobcache.c): the arguments
 * of have, blob, load-by-sha256, ship and hello's chdir come from the
 * network, and a name among them must never reach outside the session
 * directory or the blob cache.
 *
 * The input is a JSON array of steps, run in order on a fresh session
 * (the blob cache lives on between inputs, as a daemon's does):
 *   {"put": "TEXT"}          TEXT sent as a well-formed blob (its sha256
 *                            computed here, so that the fuzzer reaches
 *                            the installing code), in chunks of "chunk"
 *                            bytes if given
 *   {"blob": {...}}          a raw blob chunk, as the manager sends it
 *   {"have": [...]}          the blobs argument of have
 *   {"ship": {"root": R, "files": [...]}}
 *   {"load": {"sha256": H, "name": N}}
 *   {"chdir": DIR}
 * In files, "sha256" may be an integer k: the k-th put's hash.
 *
 * Checked, beyond "no crash, no leak": nothing appears beside the
 * session's own directory and the cache in the fuzzing root, and a
 * canary directory next to them is untouched; every file a ship says it
 * installed is a regular file inside the session directory; and when
 * the session ends, nothing of it is left.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STEPS	32
#define MAX_PUTS	8
#define CACHE_LIMIT	(256 * 1024)

static char	root[PATH_MAX];		/* the fuzzing root */
static char	tmpdir[PATH_MAX];	/* root/tmp: TMPDIR */
static char	cachedir[PATH_MAX];	/* root/cache */
static int	home = -1;		/* the cwd to come back to */

static void
bug(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_ship: %s%s%s\n", what, detail ? ": " : "",
	    detail ? detail : "");
	abort();
}

static void
at_exit(void)
{
	if (home != -1 && fchdir(home) == 0 && root[0] != '\0')
		env_remove_tree(root);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *t = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	(void)argc;
	(void)argv;
	snprintf(root, sizeof root, "%s/fuzz_ship.XXXXXX",
	    t != NULL && t[0] == '/' ? t : "/tmp");
	if (mkdtemp(root) == NULL)
		bug("mkdtemp", root);
	snprintf(tmpdir, sizeof tmpdir, "%s/tmp", root);
	snprintf(cachedir, sizeof cachedir, "%s/cache", root);
	snprintf(path, sizeof path, "%s/canary", root);
	if (mkdir(tmpdir, 0700) == -1 || mkdir(path, 0700) == -1)
		bug("mkdir", root);
	snprintf(path, sizeof path, "%s/canary/precious", root);
	if ((fd = open(path, O_WRONLY | O_CREAT, 0600)) == -1 ||
	    write(fd, "precious\n", 9) != 9 || close(fd) == -1)
		bug("canary", path);
	setenv("TMPDIR", tmpdir, 1);
	if ((home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		bug("open .", NULL);
	log_init("fuzz_ship", LOG_LVL_ERROR);
	atexit(at_exit);
	return 0;
}

/* The root holds tmp, cache and canary and nothing else; the canary is
 * as it was; tmp is empty when empty_tmp. */
static void
check_tree(int empty_tmp)
{
	char path[PATH_MAX], buf[16];
	struct dirent *e;
	DIR *d;
	int fd, n;

	if ((d = opendir(root)) == NULL)
		bug("opendir", root);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, "tmp") && strcmp(e->d_name, "cache") &&
		    strcmp(e->d_name, "canary"))
			bug("something escaped into the root", e->d_name);
	closedir(d);
	snprintf(path, sizeof path, "%s/canary", root);
	if ((d = opendir(path)) == NULL)
		bug("the canary directory is gone", NULL);
	n = 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	snprintf(path, sizeof path, "%s/canary/precious", root);
	if (n != 1 || (fd = open(path, O_RDONLY | O_NOFOLLOW)) == -1 ||
	    read(fd, buf, sizeof buf) != 9 || memcmp(buf, "precious\n", 9))
		bug("the canary changed", NULL);
	close(fd);
	if (!empty_tmp)
		return;
	if ((d = opendir(tmpdir)) == NULL)
		bug("opendir", tmpdir);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			bug("a session left something in TMPDIR", e->d_name);
	closedir(d);
}

/* Sends text as blob chunks of the given size; its hash into hex. */
static void
put(struct shipping *sh, const char *text, size_t len, size_t chunk,
    char hex[SHA256_HEX_LEN + 1])
{
	char ended[SHA256_HEX_LEN + 1], *b64;
	size_t off = 0, n;
	long long seq = 0;
	json_t *c;

	sha256_hex(text, len, hex);
	if (chunk == 0 || chunk > 4096)
		chunk = 4096;
	do {
		n = len - off < chunk ? len - off : chunk;
		b64 = xmalloc(n / 3 * 4 + 5);
		base64_encode((const unsigned char *)text + off, n, b64);
		c = json_pack("{s:s, s:I, s:s, s:b}", "stream", hex, "seq",
		    seq, "data", b64, "last", off + n == len);
		if (seq == 0)
			json_object_set_new(c, "size", json_integer(
			    (json_int_t)len));
		shipping_blob(sh, c, ended);
		json_decref(c);
		free(b64);
		off += n;
		seq++;
	} while (off < len);
}

/* files with integer sha256 entries replaced by the puts' hashes. */
static void
resolve_files(json_t *files, char puts[][SHA256_HEX_LEN + 1], int nputs)
{
	json_t *f, *h;
	size_t i;

	json_array_foreach(files, i, f) {
		h = json_object_get(f, "sha256");
		if (json_is_integer(h) && nputs > 0)
			json_object_set_new(f, "sha256", json_string(
			    puts[(size_t)json_integer_value(h) % (size_t)nputs]));
	}
}

/* Every file a successful ship installed is a regular file inside the
 * session directory. */
static void
check_shipped(struct shipping *sh, const char *sroot, json_t *files)
{
	const char *sess = shipping_session_dir(sh);
	char path[PATH_MAX * 2], real[PATH_MAX], sreal[PATH_MAX];
	struct stat st;
	json_t *f;
	size_t i;

	if (realpath(sess, sreal) == NULL)
		bug("the session directory is gone", sess);
	json_array_foreach(files, i, f) {
		snprintf(path, sizeof path, "%s/%s/%s", sess, sroot,
		    json_string_value(json_object_get(f, "path")));
		if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode))
			bug("a shipped file is not a regular file", path);
		if (realpath(path, real) == NULL ||
		    strncmp(real, sreal, strlen(sreal)) != 0 ||
		    real[strlen(sreal)] != '/')
			bug("a shipped file is outside the session", path);
	}
}

static void
step(struct shipping *sh, json_t *s, char puts[][SHA256_HEX_LEN + 1],
    int *nputs)
{
	struct ship_error err;
	char ended[SHA256_HEX_LEN + 1], *path;
	json_t *v, *files, *missing;
	uint64_t bytes;
	size_t n;

	if ((v = json_object_get(s, "put")) != NULL && json_is_string(v)) {
		put(sh, json_string_value(v), json_string_length(v),
		    (size_t)json_integer_value(json_object_get(s, "chunk")),
		    puts[*nputs % MAX_PUTS]);
		if (*nputs < MAX_PUTS)
			(*nputs)++;
	} else if ((v = json_object_get(s, "blob")) != NULL &&
	    json_is_object(v)) {
		shipping_blob(sh, v, ended);
	} else if ((v = json_object_get(s, "have")) != NULL &&
	    json_is_array(v)) {
		if ((missing = shipping_have(sh, v, &err)) != NULL)
			json_decref(missing);
	} else if ((v = json_object_get(s, "ship")) != NULL &&
	    json_is_object(v)) {
		const char *r = json_get_str(v, "root", ".");

		files = json_object_get(v, "files");
		if (!json_is_array(files))
			return;
		resolve_files(files, puts, *nputs);
		if (shipping_ship(sh, r, files, &n, &bytes, &err) == 0)
			check_shipped(sh, r, files);
	} else if ((v = json_object_get(s, "load")) != NULL &&
	    json_is_object(v)) {
		const char *h = json_get_str(v, "sha256", "");
		json_t *k = json_object_get(v, "sha256");

		if (json_is_integer(k) && *nputs > 0)
			h = puts[(size_t)json_integer_value(k) %
			    (size_t)*nputs];
		if (shipping_install_suite(sh, h, json_get_str(v, "name", ""),
		    &path, &err) == 0)
			free(path);
	} else if ((v = json_object_get(s, "chdir")) != NULL &&
	    json_is_string(v)) {
		shipping_chdir(sh, json_string_value(v), &err);
		if (fchdir(home) == -1)
			bug("fchdir", NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char puts[MAX_PUTS][SHA256_HEX_LEN + 1], why[512];
	struct shipping *sh;
	json_t *steps, *s;
	json_error_t jerr;
	int nputs = 0;
	size_t i;

	steps = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (!json_is_array(steps)) {
		json_decref(steps);
		return 0;
	}
	if ((sh = shipping_new(cachedir, CACHE_LIMIT, why, sizeof why)) ==
	    NULL)
		bug("shipping_new", why);
	json_array_foreach(steps, i, s) {
		if (i >= MAX_STEPS)
			break;
		if (json_is_object(s))
			step(sh, s, puts, &nputs);
		check_tree(0);
	}
	shipping_free(sh);
	json_decref(steps);
	if (fchdir(home) == -1)
		bug("fchdir", NULL);
	check_tree(1);
	return 0;
}

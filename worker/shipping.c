/*
 * shipping.c - what a manager ships to a worker by content
 * (distmgr-protocol(7): have, blob, ship, and load by sha256): the blob
 * cache behind them (blobcache.c), the session directory where shipped
 * trees and suites are installed, and hello's chdir into it.
 *
 * Every worker has one, --stdio or a daemon's session. The session
 * directory lives in a private directory of this process, removed when
 * it exits; so do the worker's temporary directory (env.c) and, when the
 * shared cache cannot be opened, a private blob store (hello then says
 * cache false).
 *
 * What it must never do: write outside the session directory and the
 * cache. Names from the network are checked (ship_path_ok), no existing
 * component is followed if it is a symbolic link, and a blob is usable
 * only once its size and sha256 have matched.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "protocol.h"
#include "worker.h"

/* Transfers whose failure is remembered for the load or ship that needs
 * the blob: the oldest is forgotten first. */
#define SHIP_FAILED_MAX		64

struct ship_rx {
	char			 hex[SHA256_HEX_LEN + 1];
	struct blob_writer	*w;		/* NULL: slot free */
	unsigned long long	 next_seq;
};

struct ship_failure {
	char		 hex[SHA256_HEX_LEN + 1];
	const char	*code;
	char		 text[400];
};

struct shipping {
	char			*root;		/* private; removed at exit */
	char			*session;	/* root/session */
	int			 sessionfd;
	struct blobcache	*cache;
	int			 shared;	/* cache is the shared one */
	struct ship_rx		 rx[SHIP_STREAMS_MAX];
	struct ship_failure	 failed[SHIP_FAILED_MAX];
	size_t			 nfailed;	/* ever; the ring holds the last */
	json_t			*suites;	/* name -> sha256, installed */
	pid_t			 owner;
};

/* The private directory of this process, for the atexit handler: a
 * test's child that calls exit() runs it too, and must leave it. */
static char	ship_root[PATH_MAX];
static pid_t	ship_root_owner;

static void
ship_atexit(void)
{
	if (ship_root[0] != '\0' && getpid() == ship_root_owner)
		env_remove_tree(ship_root);
}

static int DM_PRINTF(4, 5)
ship_fail(struct ship_error *err, const char *code, int rc,
    const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof err->text, fmt, ap);
	va_end(ap);
	return rc;
}

int
shipping_cache_default(char *buf, size_t len)
{
	const char *v;
	int n = -1;

	/* systemd's CacheDirectory= names the daemon's own. */
	if ((v = getenv("CACHE_DIRECTORY")) != NULL && v[0] == '/')
		n = snprintf(buf, len, "%s", v);
	else if ((v = getenv("XDG_CACHE_HOME")) != NULL && v[0] == '/')
		n = snprintf(buf, len, "%s/distworker", v);
	else if ((v = getenv("HOME")) != NULL && v[0] == '/')
		n = snprintf(buf, len, "%s/.cache/distworker", v);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

struct shipping *
shipping_new(const char *cache_dir, uint64_t limit, char *why, size_t whylen)
{
	struct shipping *sh;
	const char *tmp = getenv("TMPDIR");
	char *root, *session, *priv, cwhy[300];
	int fd;

	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	xasprintf(&root, "%s/distworker-session.XXXXXX", tmp);
	if (mkdtemp(root) == NULL) {
		snprintf(why, whylen, "cannot create a directory under %s: %s",
		    tmp, strerror(errno));
		free(root);
		return NULL;
	}
	xasprintf(&session, "%s/session", root);
	if (mkdir(session, 0700) == -1 || (fd = open(session, O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(why, whylen, "%s: %s", session, strerror(errno));
		env_remove_tree(root);
		free(root);
		free(session);
		return NULL;
	}
	sh = xcalloc(1, sizeof *sh);
	sh->root = root;
	sh->session = session;
	sh->sessionfd = fd;
	sh->suites = json_object();
	sh->owner = getpid();
	snprintf(ship_root, sizeof ship_root, "%s", root);
	if (ship_root_owner == 0)
		atexit(ship_atexit);
	ship_root_owner = sh->owner;
	if (cache_dir != NULL) {
		sh->cache = blobcache_open(cache_dir, limit, cwhy, sizeof cwhy);
		if (sh->cache == NULL)
			log_warn("no shared blob cache (%s): blobs are kept "
			    "for this session only", cwhy);
	}
	sh->shared = sh->cache != NULL;
	if (sh->cache == NULL) {
		xasprintf(&priv, "%s/cache", root);
		sh->cache = blobcache_open(priv, limit, cwhy, sizeof cwhy);
		free(priv);
		if (sh->cache == NULL) {
			snprintf(why, whylen, "%s", cwhy);
			shipping_free(sh);
			return NULL;
		}
	}
	return sh;
}

void
shipping_free(struct shipping *sh)
{
	size_t i;

	if (sh == NULL)
		return;
	for (i = 0; i < SHIP_STREAMS_MAX; i++)
		if (sh->rx[i].w != NULL)
			blob_writer_abort(sh->rx[i].w);
	blobcache_close(sh->cache);
	close(sh->sessionfd);
	if (getpid() == sh->owner) {
		env_remove_tree(sh->root);
		ship_root[0] = '\0';
	}
	json_decref(sh->suites);
	free(sh->session);
	free(sh->root);
	free(sh);
}

const char *
shipping_session_dir(const struct shipping *sh)
{
	return sh->session;
}

const char *
shipping_private_dir(const struct shipping *sh)
{
	return sh->root;
}

int
shipping_has_cache(const struct shipping *sh)
{
	return sh->shared;
}

/* ---- paths under the session directory ---------------------------------- */

/*
 * Walks the directories of relpath under the session directory (all of
 * its components when whole, else all but the last), refusing any that
 * is a symbolic link or not a directory; with create, makes the missing
 * ones. Returns an fd of the last directory reached, or -1 with err
 * (BAD_PATH for a link or a file in the way).
 */
static int
ship_walk(struct shipping *sh, const char *relpath, int whole, int create,
    struct ship_error *err)
{
	char comp[BLOB_PATH_MAX + 1];
	const char *p = relpath, *slash;
	struct stat st;
	size_t n;
	int fd = dup(sh->sessionfd), next;

	while (fd != -1 && *p != '\0') {
		slash = strchr(p, '/');
		if (slash == NULL && !whole)
			break;
		n = slash != NULL ? (size_t)(slash - p) : strlen(p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n + (slash != NULL);
		if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno != ENOENT || !create ||
			    (mkdirat(fd, comp, 0755) == -1 && errno != EEXIST))
				goto fail;
		} else if (S_ISLNK(st.st_mode)) {
			close(fd);
			return ship_fail(err, SHIP_E_BAD_PATH, -1, "'%.200s': "
			    "'%.200s' is a symbolic link", relpath, comp);
		} else if (!S_ISDIR(st.st_mode)) {
			close(fd);
			return ship_fail(err, SHIP_E_BAD_PATH, -1, "'%.200s': "
			    "'%.200s' is not a directory", relpath, comp);
		}
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(fd);
		fd = next;
	}
	if (fd != -1)
		return fd;
fail:
	if (fd != -1)
		close(fd);
	return ship_fail(err, AMP_E_FAILED, -1, "'%.200s': %s", relpath,
	    strerror(errno));
}

int
shipping_chdir(struct shipping *sh, const char *dir, struct ship_error *err)
{
	char why[300];
	int fd;

	if (dir[0] == '/') {
		if (chdir(dir) == -1)
			return ship_fail(err, AMP_E_FAILED, -1, "cannot change "
			    "to %.200s: %s", dir, strerror(errno));
		return 0;
	}
	if (ship_path_ok(dir, why, sizeof why) == -1)
		return ship_fail(err, SHIP_E_BAD_PATH, -1, "chdir: %s", why);
	if ((fd = ship_walk(sh, dir, 1, 1, err)) == -1)
		return -1;
	if (fchdir(fd) == -1) {
		ship_fail(err, AMP_E_FAILED, -1, "cannot change to %.200s: %s",
		    dir, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
shipping_enter(struct shipping *sh)
{
	return fchdir(sh->sessionfd);
}

/* ---- have and blob ------------------------------------------------------ */

static struct ship_failure *
ship_failure_of(struct shipping *sh, const char *hex)
{
	size_t i, n = sh->nfailed < SHIP_FAILED_MAX ? sh->nfailed :
	    SHIP_FAILED_MAX;

	for (i = 0; i < n; i++)
		if (strcmp(sh->failed[i].hex, hex) == 0)
			return &sh->failed[i];
	return NULL;
}

static void
ship_remember_failure(struct shipping *sh, const char *hex, const char *code,
    const char *why)
{
	struct ship_failure *f = ship_failure_of(sh, hex);

	if (f == NULL)
		f = &sh->failed[sh->nfailed++ % SHIP_FAILED_MAX];
	snprintf(f->hex, sizeof f->hex, "%s", hex);
	f->code = code;
	snprintf(f->text, sizeof f->text, "%s", why);
	log_warn("blob %.12s refused: %s", hex, why);
}

static void
ship_forget_failure(struct shipping *sh, const char *hex)
{
	struct ship_failure *f = ship_failure_of(sh, hex);

	if (f != NULL)
		f->hex[0] = '\0';
}

json_t *
shipping_have(struct shipping *sh, json_t *blobs, struct ship_error *err)
{
	json_t *missing = json_array(), *b;
	const char *hex;
	size_t i;

	json_array_foreach(blobs, i, b) {
		hex = json_get_str(b, "sha256", "");
		if (!json_is_object(b) || !blob_hex_ok(hex) ||
		    json_get_int(b, "size", -1) < 0) {
			json_decref(missing);
			ship_fail(err, AMP_E_BAD_ARGUMENT, -1, "blobs[%zu] must "
			    "be an object with 'sha256' (64 lowercase hex "
			    "digits) and 'size' (an integer, 0 or more)", i);
			return NULL;
		}
		if (!blobcache_has(sh->cache, hex))
			json_array_append_new(missing, json_string(hex));
	}
	return missing;
}

static struct ship_rx *
ship_rx_of(struct shipping *sh, const char *hex)
{
	size_t i;

	for (i = 0; i < SHIP_STREAMS_MAX; i++)
		if (sh->rx[i].w != NULL && strcmp(sh->rx[i].hex, hex) == 0)
			return &sh->rx[i];
	return NULL;
}

int
shipping_receiving(struct shipping *sh, const char *hex)
{
	return ship_rx_of(sh, hex) != NULL;
}

static void
ship_rx_fail(struct shipping *sh, struct ship_rx *rx, const char *hex,
    const char *code, const char *why)
{
	if (rx != NULL) {
		blob_writer_abort(rx->w);
		rx->w = NULL;
	}
	ship_remember_failure(sh, hex, code, why);
}

/* The first chunk: a writer for the blob. NULL when refused (the
 * failure is remembered). */
static struct ship_rx *
ship_rx_begin(struct shipping *sh, const char *hex, json_t *chunk)
{
	struct ship_rx *rx = ship_rx_of(sh, hex);
	long long size = json_get_int(chunk, "size", -1);
	char why[300];
	size_t i;

	if (rx != NULL) {	/* sent again from the start */
		blob_writer_abort(rx->w);
		rx->w = NULL;
	}
	ship_forget_failure(sh, hex);
	if (size < 0) {
		ship_rx_fail(sh, NULL, hex, SHIP_E_BLOB_CORRUPT, "the first "
		    "chunk has no 'size'");
		return NULL;
	}
	for (i = 0; i < SHIP_STREAMS_MAX && sh->rx[i].w != NULL; i++)
		;
	if (i == SHIP_STREAMS_MAX) {
		snprintf(why, sizeof why, "more than %d blobs sent at once",
		    SHIP_STREAMS_MAX);
		ship_rx_fail(sh, NULL, hex, AMP_E_FAILED, why);
		return NULL;
	}
	rx = &sh->rx[i];
	rx->w = blobcache_begin(sh->cache, hex, (uint64_t)size, why,
	    sizeof why);
	if (rx->w == NULL) {
		ship_rx_fail(sh, NULL, hex, AMP_E_FAILED, why);
		return NULL;
	}
	snprintf(rx->hex, sizeof rx->hex, "%s", hex);
	rx->next_seq = 0;
	return rx;
}

/* Writes the chunk's bytes; -1 when the stream failed (remembered). */
static int
ship_rx_data(struct shipping *sh, struct ship_rx *rx, json_t *chunk)
{
	json_t *jdata = json_object_get(chunk, "data");
	long long seq = json_get_int(chunk, "seq", -1);
	size_t n = json_string_length(jdata);
	unsigned char *buf;
	char why[300];
	long got;

	if (seq < 0 || (unsigned long long)seq != rx->next_seq) {
		snprintf(why, sizeof why, "chunk %lld out of order (expected "
		    "%llu)", seq, rx->next_seq);
		ship_rx_fail(sh, rx, rx->hex, SHIP_E_BLOB_CORRUPT, why);
		return -1;
	}
	if (!json_is_string(jdata)) {
		snprintf(why, sizeof why, "chunk %lld has no 'data'", seq);
		ship_rx_fail(sh, rx, rx->hex, SHIP_E_BLOB_CORRUPT, why);
		return -1;
	}
	buf = xmalloc(n / 4 * 3 + 3);
	got = base64_decode(json_string_value(jdata), n, buf);
	if (got < 0)
		snprintf(why, sizeof why, "chunk %lld is not valid base64", seq);
	if (got < 0 || blob_writer_write(rx->w, buf, (size_t)got, why,
	    sizeof why) == -1) {
		free(buf);
		ship_rx_fail(sh, rx, rx->hex, SHIP_E_BLOB_CORRUPT, why);
		return -1;
	}
	free(buf);
	rx->next_seq++;
	return 0;
}

int
shipping_blob(struct shipping *sh, json_t *chunk,
    char ended[SHA256_HEX_LEN + 1])
{
	const char *hex = json_get_str(chunk, "stream", "");
	struct ship_rx *rx;
	char why[300];
	int rc;

	if (!blob_hex_ok(hex)) {
		log_warn("a blob chunk whose stream is not a sha256; ignored");
		return 0;
	}
	snprintf(ended, SHA256_HEX_LEN + 1, "%s", hex);
	if (json_get_int(chunk, "seq", -1) == 0)
		rx = ship_rx_begin(sh, hex, chunk);
	else if ((rx = ship_rx_of(sh, hex)) == NULL) {
		/* The rest of a stream already refused says nothing new. */
		if (ship_failure_of(sh, hex) == NULL)
			ship_rx_fail(sh, NULL, hex, SHIP_E_BLOB_CORRUPT,
			    "a chunk of a blob whose first chunk never came");
		return 0;
	}
	if (rx == NULL || ship_rx_data(sh, rx, chunk) == -1)
		return 1;
	if (!json_is_true(json_object_get(chunk, "last")))
		return 0;
	rc = blob_writer_commit(rx->w, why, sizeof why);
	rx->w = NULL;
	if (rc == -1)
		ship_remember_failure(sh, hex, strncmp(why, "cache:", 6) == 0 ?
		    AMP_E_FAILED : SHIP_E_BLOB_CORRUPT, why);
	else
		log_debug("blob %.12s received", hex);
	return 1;
}

/* 0 when blob hex can be installed; -1 with err NEED_BLOB, or the code
 * of the transfer that failed. */
static int
ship_available(struct shipping *sh, const char *hex, const char *what,
    struct ship_error *err)
{
	struct ship_failure *f;

	if (blobcache_has(sh->cache, hex))
		return 0;
	if ((f = ship_failure_of(sh, hex)) != NULL)
		return ship_fail(err, f->code, -1, "blob for %.200s: %s", what,
		    f->text);
	return ship_fail(err, SHIP_E_NEED_BLOB, -1, "no blob %s for %.200s: "
	    "send it with 'blob' first", hex, what);
}

/* ---- load by sha256 ----------------------------------------------------- */

static int
ship_name_ok(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL &&
	    strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
	    strlen(name) <= NAME_MAX;
}

int
shipping_install_suite(struct shipping *sh, const char *hex,
    const char *name, char **path, struct ship_error *err)
{
	const char *had = json_get_str(sh->suites, name, NULL);
	char why[300];

	if (!blob_hex_ok(hex))
		return ship_fail(err, AMP_E_BAD_ARGUMENT, -1, "argument "
		    "'sha256' must be 64 lowercase hex digits");
	if (!ship_name_ok(name))
		return ship_fail(err, AMP_E_BAD_ARGUMENT, -1, "argument 'name' "
		    "must be a plain file name, not '%.200s'", name);
	if (had != NULL && strcmp(had, hex) != 0)
		return ship_fail(err, AMP_E_FAILED, -1, "'%.200s' already "
		    "holds another suite in this session (sha256 %s)", name,
		    had);
	if (had == NULL) {
		if (ship_available(sh, hex, name, err) == -1)
			return -1;
		/* A name a test or a ship made a directory or a link is
		 * replaced, never followed. */
		if (blobcache_install(sh->cache, hex, sh->sessionfd, name, 0755,
		    why, sizeof why) == -1)
			return ship_fail(err, AMP_E_FAILED, -1, "%s", why);
		json_object_set_new(sh->suites, name, json_string(hex));
	}
	xasprintf(path, "%s/%s", sh->session, name);
	return 0;
}

/* ---- ship --------------------------------------------------------------- */

/* root/path into buf; "." as root is the session directory itself. */
static int
ship_relpath(const char *root, const char *path, char *buf, size_t len)
{
	int n = strcmp(root, ".") == 0 ? snprintf(buf, len, "%s", path) :
	    snprintf(buf, len, "%s/%s", root, path);

	return n >= 0 && (size_t)n < len ? 0 : -1;
}

/* Checks one entry of files; -1 with err. */
static int
ship_check_file(struct shipping *sh, const char *root, json_t *f, size_t i,
    struct ship_error *err)
{
	char rel[BLOB_PATH_MAX + 2], why[300];
	const char *path = json_get_str(f, "path", NULL);
	long long mode = json_get_int(f, "mode", -1);
	int fd;

	if (!json_is_object(f) || path == NULL ||
	    !blob_hex_ok(json_get_str(f, "sha256", "")) || mode < 0 ||
	    mode > 07777)
		return ship_fail(err, AMP_E_BAD_ARGUMENT, -1, "files[%zu] must "
		    "be an object with 'path' (a string), 'sha256' (64 "
		    "lowercase hex digits) and 'mode' (permission bits)", i);
	if (ship_relpath(root, path, rel, sizeof rel) == -1)
		return ship_fail(err, SHIP_E_BAD_PATH, -1, "files[%zu]: path "
		    "longer than %d bytes", i, BLOB_PATH_MAX);
	if (ship_path_ok(rel, why, sizeof why) == -1)
		return ship_fail(err, SHIP_E_BAD_PATH, -1, "files[%zu]: %s", i,
		    why);
	if ((fd = ship_walk(sh, rel, 0, 0, err)) == -1)
		return strcmp(err->code, AMP_E_FAILED) == 0 ? 0 : -1;
	close(fd);
	return 0;
}

int
shipping_ship(struct shipping *sh, const char *root, json_t *files,
    size_t *nfiles, uint64_t *bytes, struct ship_error *err)
{
	char rel[BLOB_PATH_MAX + 2], why[300];
	const char *hex;
	struct stat st;
	json_t *f;
	size_t i;

	*nfiles = 0;
	*bytes = 0;
	if (json_array_size(files) > SHIP_FILES_MAX)
		return ship_fail(err, AMP_E_BAD_ARGUMENT, -1, "at most %d files "
		    "per ship, not %zu", SHIP_FILES_MAX,
		    json_array_size(files));
	if (strcmp(root, ".") != 0 && ship_path_ok(root, why, sizeof why) ==
	    -1)
		return ship_fail(err, SHIP_E_BAD_PATH, -1, "root: %s", why);
	json_array_foreach(files, i, f)
		if (ship_check_file(sh, root, f, i, err) == -1)
			return -1;
	json_array_foreach(files, i, f) {
		ship_relpath(root, json_get_str(f, "path", ""), rel,
		    sizeof rel);
		if (ship_available(sh, json_get_str(f, "sha256", ""), rel,
		    err) == -1)
			return -1;
	}
	json_array_foreach(files, i, f) {
		ship_relpath(root, json_get_str(f, "path", ""), rel,
		    sizeof rel);
		hex = json_get_str(f, "sha256", "");
		if (blobcache_install(sh->cache, hex, sh->sessionfd, rel,
		    (mode_t)json_get_int(f, "mode", 0644), why,
		    sizeof why) == -1)
			return ship_fail(err, strstr(why, "symbolic") != NULL ||
			    strstr(why, "directory") != NULL ?
			    SHIP_E_BAD_PATH : AMP_E_FAILED, -1, "%s", why);
		if (fstatat(sh->sessionfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
			*bytes += (uint64_t)st.st_size;
		(*nfiles)++;
	}
	return 0;
}

const char *
shipping_ship_waits(struct shipping *sh, json_t *files)
{
	const char *hex;
	json_t *f;
	size_t i;

	json_array_foreach(files, i, f) {
		hex = json_get_str(f, "sha256", "");
		if (blob_hex_ok(hex) && shipping_receiving(sh, hex))
			return hex;
	}
	return NULL;
}

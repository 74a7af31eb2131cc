/*
 * ship.c - what a worker on another machine is sent, by content: the
 * suites, and the trees --ship names.
 *
 * The manifest is made once per run: every file hashed (sha256), equal
 * contents kept as one blob. A shipper then brings one worker up to date
 * over its connection, as distmgr-protocol(7) says:
 *
 *   have (<= SHIP_HAVE_MAX blobs an ask)  ->  the hashes it lacks
 *   blob streams of those, paced by the connection's drain
 *   ship (<= SHIP_FILES_MAX files an ask) for each tree
 *
 * after which the caller sends its loads by sha256: the worker handles
 * boxes in order, so they find every blob there.
 *
 * A tree's symbolic links are followed only to regular files inside the
 * tree (shipped as copies); one pointing out of it, to a directory or
 * nowhere is skipped with a warning, so that nothing outside what the
 * user named ever leaves this machine. A file is read again when sent
 * and must still have the hash the worker was promised.
 *
 * It must never block on the network (blobs go out as the connection
 * drains) nor hold more than one file's bytes per worker at a time.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "protocol.h"
#include "manager.h"

#define SHIP_HAVE_MAX	1000		/* blobs in one have ask */
#define SHIP_FILES_MAX	1000		/* files in one ship ask */
#define SHIP_PATH_MAX	1024		/* bytes of a shipped relative path */
#define SHIP_MAX_FILES	1000000		/* files in all trees */
#define SHIP_MAX_DEPTH	64		/* directories deep */

struct ship_blob {
	char		 sha256[SHA256_HEX_LEN + 1];
	uint64_t	 size;
	char		*path;		/* where to read it here */
};

struct ship_file {
	char		*rel;		/* under its tree's root */
	size_t		 blob;
	unsigned	 mode;
};

struct ship_tree {
	char		*root;		/* its name on the worker */
	struct ship_file *files;
	size_t		 n;
};

struct ship {
	struct ship_blob *blobs;
	size_t		 nblobs;
	size_t		*suite_blob;	/* [nsuites] */
	char		**suite_name;	/* [nsuites] */
	size_t		 nsuites;
	struct ship_tree *trees;
	size_t		 ntrees;
	size_t		 nfiles;	/* in all trees */
	void		(*warn)(void *, const char *);
	void		*warn_arg;
};

/* ---- hashing ---------------------------------------------------------- */

/* The sha256 and size of a file; 0, or -1 with why. */
static int
ship_hash_file(const char *path, char hex[SHA256_HEX_LEN + 1],
    uint64_t *size, char *why, size_t whylen)
{
	struct sha256_ctx *h;
	char buf[65536];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	h = sha256_new();
	*size = 0;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		sha256_update(h, buf, (size_t)n);
		*size += (uint64_t)n;
	}
	sha256_finish_hex(h, hex);
	if (n == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* The blob holding path's content, added if new; -1 with why. */
static long
ship_blob_add(struct ship *sh, const char *path, char *why, size_t whylen)
{
	char hex[SHA256_HEX_LEN + 1];
	uint64_t size;
	size_t i;

	if (ship_hash_file(path, hex, &size, why, whylen) == -1)
		return -1;
	/* Linear, but over blobs already added: trees of a few thousand
	 * files hash far slower than this compares. */
	for (i = 0; i < sh->nblobs; i++)
		if (strcmp(sh->blobs[i].sha256, hex) == 0)
			return (long)i;
	sh->blobs = xreallocarray(sh->blobs, sh->nblobs + 1,
	    sizeof *sh->blobs);
	memcpy(sh->blobs[sh->nblobs].sha256, hex, sizeof hex);
	sh->blobs[sh->nblobs].size = size;
	sh->blobs[sh->nblobs].path = xstrdup(path);
	return (long)sh->nblobs++;
}

/* ---- the trees ------------------------------------------------------- */

static void
ship_warn(struct ship *sh, const char *fmt, ...) DM_PRINTF(2, 3);

static void
ship_warn(struct ship *sh, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	xvasprintf(&text, fmt, ap);
	va_end(ap);
	if (sh->warn != NULL)
		sh->warn(sh->warn_arg, text);
	free(text);
}

struct walk {
	struct ship		*sh;
	struct ship_tree	*t;
	const char		*top;		/* the directory as named */
	char			 real[PATH_MAX];	/* its real path */
	const char *const	*ignore;
	size_t			 nignore;
};

/* A glob without '/' is matched against the name, one with '/' against
 * the path under the root, as in .gitignore. */
static int
ship_ignored(const struct walk *wk, const char *rel, const char *name)
{
	size_t i;

	for (i = 0; i < wk->nignore; i++) {
		if (strchr(wk->ignore[i], '/') != NULL) {
			if (fnmatch(wk->ignore[i], rel, FNM_PATHNAME) == 0)
				return 1;
		} else if (fnmatch(wk->ignore[i], name, 0) == 0)
			return 1;
	}
	return 0;
}

static int
ship_inside(const struct walk *wk, const char *real)
{
	size_t n = strlen(wk->real);

	return strncmp(real, wk->real, n) == 0 && real[n] == '/';
}

static int
ship_add_file(struct walk *wk, const char *path, const char *rel,
    unsigned mode, char *why, size_t whylen)
{
	struct ship_tree *t = wk->t;
	long b;

	if (wk->sh->nfiles >= SHIP_MAX_FILES) {
		snprintf(why, whylen, "--ship %s: more than %d files", wk->top,
		    SHIP_MAX_FILES);
		return -1;
	}
	if ((b = ship_blob_add(wk->sh, path, why, whylen)) == -1)
		return -1;
	t->files = xreallocarray(t->files, t->n + 1, sizeof *t->files);
	t->files[t->n].rel = xstrdup(rel);
	t->files[t->n].blob = (size_t)b;
	t->files[t->n].mode = mode & 07777;
	t->n++;
	wk->sh->nfiles++;
	return 0;
}

/* A symbolic link: shipped as its target when that is a regular file
 * inside the tree, else skipped with a warning. */
static int
ship_link(struct walk *wk, const char *path, const char *rel, char *why,
    size_t whylen)
{
	char real[PATH_MAX];
	struct stat sb;

	if (realpath(path, real) == NULL || stat(real, &sb) == -1) {
		ship_warn(wk->sh, "--ship %s: skipped %s: a symbolic link to "
		    "nothing", wk->top, rel);
		return 0;
	}
	if (!ship_inside(wk, real)) {
		ship_warn(wk->sh, "--ship %s: skipped %s: a symbolic link out "
		    "of the tree (to %s)", wk->top, rel, real);
		return 0;
	}
	if (!S_ISREG(sb.st_mode)) {
		ship_warn(wk->sh, "--ship %s: skipped %s: a symbolic link to "
		    "something not a regular file", wk->top, rel);
		return 0;
	}
	return ship_add_file(wk, real, rel, sb.st_mode, why, whylen);
}

static int	ship_dir(struct walk *, const char *, const char *, int,
		    char *, size_t);

static int
ship_entry(struct walk *wk, const char *dir, const char *reldir,
    const char *name, int depth, char *why, size_t whylen)
{
	char path[PATH_MAX], rel[PATH_MAX];
	struct stat sb;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    (int)sizeof path || snprintf(rel, sizeof rel, "%s%s%s", reldir,
	    *reldir ? "/" : "", name) >= SHIP_PATH_MAX) {
		ship_warn(wk->sh, "--ship %s: skipped %s/%s: its path is over "
		    "%d bytes", wk->top, reldir, name, SHIP_PATH_MAX);
		return 0;
	}
	if (ship_ignored(wk, rel, name))
		return 0;
	if (lstat(path, &sb) == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(sb.st_mode))
		return ship_link(wk, path, rel, why, whylen);
	if (S_ISDIR(sb.st_mode))
		return ship_dir(wk, path, rel, depth + 1, why, whylen);
	if (S_ISREG(sb.st_mode))
		return ship_add_file(wk, path, rel, sb.st_mode, why, whylen);
	ship_warn(wk->sh, "--ship %s: skipped %s: not a regular file",
	    wk->top, rel);
	return 0;
}

static int
ship_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
ship_dir(struct walk *wk, const char *dir, const char *reldir, int depth,
    char *why, size_t whylen)
{
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, i;
	DIR *d;
	int rc = 0;

	if (depth > SHIP_MAX_DEPTH) {
		snprintf(why, whylen, "--ship %s: deeper than %d directories",
		    wk->top, SHIP_MAX_DEPTH);
		return -1;
	}
	if ((d = opendir(dir)) == NULL) {
		snprintf(why, whylen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		names = xreallocarray(names, n + 1, sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	/* In name order: the same tree gives the same asks every run. */
	if (n > 0)
		qsort(names, n, sizeof *names, ship_name_cmp);
	for (i = 0; i < n; i++) {
		if (rc == 0)
			rc = ship_entry(wk, dir, reldir, names[i], depth, why,
			    whylen);
		free(names[i]);
	}
	free(names);
	return rc;
}

/* The name a tree gets on the worker: its directory's last component. */
static char *
ship_root_name(const char *real)
{
	const char *slash = strrchr(real, '/');

	return xstrdup(slash != NULL && slash[1] != '\0' ? slash + 1 : real);
}

static int
ship_tree_add(struct ship *sh, const char *dir, const char *const *ignore,
    size_t nignore, char *why, size_t whylen)
{
	struct walk wk;
	struct stat sb;
	size_t i;
	char *root;

	memset(&wk, 0, sizeof wk);
	wk.sh = sh;
	wk.top = dir;
	wk.ignore = ignore;
	wk.nignore = nignore;
	if (realpath(dir, wk.real) == NULL || stat(wk.real, &sb) == -1) {
		snprintf(why, whylen, "--ship %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(why, whylen, "--ship %s: not a directory", dir);
		return -1;
	}
	if (strcmp(wk.real, "/") == 0) {
		snprintf(why, whylen, "--ship %s: not the whole file system",
		    dir);
		return -1;
	}
	root = ship_root_name(wk.real);
	for (i = 0; i < sh->ntrees; i++)
		if (strcmp(sh->trees[i].root, root) == 0) {
			snprintf(why, whylen, "--ship %s: another --ship is "
			    "also called '%s' on the workers", dir, root);
			free(root);
			return -1;
		}
	sh->trees = xreallocarray(sh->trees, sh->ntrees + 1,
	    sizeof *sh->trees);
	memset(&sh->trees[sh->ntrees], 0, sizeof *sh->trees);
	sh->trees[sh->ntrees].root = root;
	wk.t = &sh->trees[sh->ntrees++];
	return ship_dir(&wk, wk.real, "", 0, why, whylen);
}

/* ---- the manifest ----------------------------------------------------- */

/* Suites go by their file name; two of one name get a number first. */
static char *
ship_suite_name_for(const struct ship *sh, const char *path, size_t s)
{
	const char *base = strrchr(path, '/');
	char *name;
	size_t i;

	base = base != NULL ? base + 1 : path;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		base = "suite.so";
	for (i = 0; i < s; i++)
		if (strcmp(sh->suite_name[i], base) == 0) {
			xasprintf(&name, "%zu-%s", s, base);
			return name;
		}
	return xstrdup(base);
}

struct ship *
ship_new(char *const *suites, size_t nsuites, const char *const *dirs,
    size_t ndirs, const char *const *ignore, size_t nignore,
    void (*warn)(void *, const char *), void *arg, char *why, size_t whylen)
{
	struct ship *sh = xcalloc(1, sizeof *sh);
	size_t i;
	long b;

	sh->warn = warn;
	sh->warn_arg = arg;
	sh->suite_blob = xcalloc(nsuites + 1, sizeof *sh->suite_blob);
	sh->suite_name = xcalloc(nsuites + 1, sizeof *sh->suite_name);
	for (i = 0; i < nsuites; i++) {
		if ((b = ship_blob_add(sh, suites[i], why, whylen)) == -1)
			goto fail;
		sh->suite_blob[i] = (size_t)b;
		sh->suite_name[i] = ship_suite_name_for(sh, suites[i], i);
		sh->nsuites++;
	}
	for (i = 0; i < ndirs; i++)
		if (ship_tree_add(sh, dirs[i], ignore, nignore, why,
		    whylen) == -1)
			goto fail;
	return sh;
fail:
	ship_free(sh);
	return NULL;
}

void
ship_free(struct ship *sh)
{
	size_t i, j;

	if (sh == NULL)
		return;
	for (i = 0; i < sh->nblobs; i++)
		free(sh->blobs[i].path);
	free(sh->blobs);
	for (i = 0; i < sh->nsuites; i++)
		free(sh->suite_name[i]);
	free(sh->suite_name);
	free(sh->suite_blob);
	for (i = 0; i < sh->ntrees; i++) {
		for (j = 0; j < sh->trees[i].n; j++)
			free(sh->trees[i].files[j].rel);
		free(sh->trees[i].files);
		free(sh->trees[i].root);
	}
	free(sh->trees);
	free(sh);
}

const char *
ship_suite_name(const struct ship *sh, size_t s)
{
	return s < sh->nsuites ? sh->suite_name[s] : NULL;
}

const char *
ship_suite_sha256(const struct ship *sh, size_t s)
{
	return s < sh->nsuites ? sh->blobs[sh->suite_blob[s]].sha256 : NULL;
}

size_t
ship_nblobs(const struct ship *sh)
{
	return sh->nblobs;
}

size_t
ship_ntree_files(const struct ship *sh)
{
	return sh->nfiles;
}

/* ---- one worker's transfer -------------------------------------------- */

enum shipper_state { SS_HAVE, SS_BLOBS, SS_SHIP, SS_DONE, SS_FAILED };

struct shipper {
	const struct ship	*sh;
	struct amp_conn		*conn;
	enum shipper_state	 state;
	shipper_fn		 cb;
	void			*arg;
	uint8_t			*missing;	/* per blob */
	int			 asks;		/* have or ship unanswered */
	size_t			 next;		/* the next blob to look at */
	struct stream_tx	*tx;		/* the blob being sent */
	unsigned char		*data;		/* its bytes */
	uint64_t		 bytes;
	size_t			 sent, cached;
};

static void
shipper_fail(struct shipper *sp, const char *fmt, ...) DM_PRINTF(2, 3);

static void
shipper_fail(struct shipper *sp, const char *fmt, ...)
{
	va_list ap;
	char *text;

	if (sp->state == SS_FAILED)
		return;
	sp->state = SS_FAILED;
	va_start(ap, fmt);
	xvasprintf(&text, fmt, ap);
	va_end(ap);
	sp->cb(sp->arg, SHIP_FAILED, text);
	free(text);
}

/* Reads a blob to send and checks it is still what was hashed. */
static unsigned char *
shipper_read(struct shipper *sp, const struct ship_blob *b)
{
	char hex[SHA256_HEX_LEN + 1];
	unsigned char *data;
	size_t got = 0;
	ssize_t n;
	int fd;

	if (b->size > SIZE_MAX - 1 ||
	    (fd = open(b->path, O_RDONLY | O_CLOEXEC)) == -1) {
		shipper_fail(sp, "cannot send %s: %s", b->path,
		    strerror(errno));
		return NULL;
	}
	data = xmalloc((size_t)b->size + 1);
	while (got < b->size && (n = read(fd, data + got,
	    (size_t)b->size - got)) > 0)
		got += (size_t)n;
	/* One more byte read means the file grew. */
	if (got == b->size && read(fd, hex, 1) > 0)
		got++;
	close(fd);
	if (got == b->size)
		sha256_hex(data, got, hex);
	if (got != b->size || strcmp(hex, b->sha256) != 0) {
		shipper_fail(sp, "%s changed while the run was starting; run "
		    "again", b->path);
		free(data);
		return NULL;
	}
	return data;
}

static void	shipper_trees(struct shipper *);

/* Sends missing blobs while the connection takes them. */
static void
shipper_pump(struct shipper *sp)
{
	const struct ship_blob *b;
	json_t *extra;
	int rc;

	while (sp->state == SS_BLOBS) {
		if (sp->tx == NULL) {
			while (sp->next < sp->sh->nblobs &&
			    !sp->missing[sp->next])
				sp->next++;
			if (sp->next == sp->sh->nblobs) {
				shipper_trees(sp);
				return;
			}
			b = &sp->sh->blobs[sp->next];
			if ((sp->data = shipper_read(sp, b)) == NULL)
				return;
			extra = json_pack("{s:I}", "size", (json_int_t)b->size);
			sp->tx = stream_tx_new(sp->conn, "blob", b->sha256,
			    sp->data, (size_t)b->size, 0, extra);
			json_decref(extra);
		}
		if ((rc = stream_tx_pump(sp->tx)) == 0)
			return;		/* on_drain brings us back */
		stream_tx_free(sp->tx);
		sp->tx = NULL;
		free(sp->data);
		sp->data = NULL;
		if (rc == -1) {
			shipper_fail(sp, "cannot send a blob: the connection "
			    "is closing");
			return;
		}
		sp->bytes += sp->sh->blobs[sp->next].size;
		sp->sent++;
		sp->next++;
	}
}

static void
on_ship(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct shipper *sp = arg;

	(void)c;
	(void)ans;
	sp->asks--;
	if (err != NULL && strcmp(err->code, AMP_E_CONNECTION_LOST) != 0)
		shipper_fail(sp, "the worker refused the shipped files: %s "
		    "(%s)", err->description, err->code);
}

static void
shipper_trees(struct shipper *sp)
{
	const struct ship_tree *t;
	const struct ship_file *f;
	json_t *files;
	size_t i, j;

	sp->state = SS_SHIP;
	for (i = 0; i < sp->sh->ntrees; i++) {
		t = &sp->sh->trees[i];
		for (j = 0; j < t->n; j += SHIP_FILES_MAX) {
			files = json_array();
			for (f = t->files + j; f < t->files + t->n &&
			    f < t->files + j + SHIP_FILES_MAX; f++)
				json_array_append_new(files, json_pack(
				    "{s:s, s:s, s:i}", "path", f->rel,
				    "sha256", sp->sh->blobs[f->blob].sha256,
				    "mode", (int)f->mode));
			sp->asks++;
			amp_ask(sp->conn, "ship", json_pack("{s:s, s:o}",
			    "root", t->root, "files", files), on_ship, sp);
		}
	}
	sp->state = SS_DONE;
	sp->cb(sp->arg, SHIP_QUEUED, NULL);
}

static void
on_have(struct amp_conn *c, json_t *ans, const struct amp_error *err,
    void *arg)
{
	struct shipper *sp = arg;
	json_t *missing, *v;
	const char *hex;
	size_t i, k;

	(void)c;
	sp->asks--;
	if (sp->state != SS_HAVE)
		return;
	if (err != NULL) {
		if (strcmp(err->code, AMP_E_CONNECTION_LOST) != 0)
			shipper_fail(sp, "the worker cannot take shipped "
			    "suites: have: %s (%s)", err->description,
			    err->code);
		return;
	}
	missing = json_object_get(ans, "missing");
	if (!json_is_array(missing)) {
		shipper_fail(sp, "the worker's answer to have has no "
		    "'missing' array");
		return;
	}
	json_array_foreach(missing, i, v) {
		hex = json_is_string(v) ? json_string_value(v) : "";
		for (k = 0; k < sp->sh->nblobs; k++)
			if (strcmp(sp->sh->blobs[k].sha256, hex) == 0)
				sp->missing[k] = 1;
	}
	if (sp->asks > 0)
		return;
	for (k = 0; k < sp->sh->nblobs; k++)
		if (!sp->missing[k])
			sp->cached++;
	sp->state = SS_BLOBS;
	shipper_pump(sp);
}

struct shipper *
shipper_start(const struct ship *sh, struct amp_conn *conn, int cache,
    shipper_fn cb, void *arg)
{
	struct shipper *sp = xcalloc(1, sizeof *sp);
	json_t *blobs = NULL;
	size_t i;

	sp->sh = sh;
	sp->conn = conn;
	sp->cb = cb;
	sp->arg = arg;
	sp->missing = xcalloc(sh->nblobs + 1, 1);
	if (!cache || sh->nblobs == 0) {
		/* Without a cache it has nothing: no round trip to ask. */
		memset(sp->missing, 1, sh->nblobs);
		sp->state = SS_BLOBS;
		shipper_pump(sp);
		return sp;
	}
	sp->state = SS_HAVE;
	for (i = 0; i < sh->nblobs; i++) {
		if (i % SHIP_HAVE_MAX == 0) {
			blobs = json_array();
			sp->asks++;
		}
		json_array_append_new(blobs, json_pack("{s:s, s:I}", "sha256",
		    sh->blobs[i].sha256, "size", (json_int_t)sh->blobs[i].size));
		if (i % SHIP_HAVE_MAX == SHIP_HAVE_MAX - 1 ||
		    i == sh->nblobs - 1)
			amp_ask(conn, "have", json_pack("{s:o}", "blobs",
			    blobs), on_have, sp);
	}
	return sp;
}

void
shipper_drain(struct shipper *sp)
{
	if (sp != NULL && sp->state == SS_BLOBS)
		shipper_pump(sp);
}

void
shipper_stats(const struct shipper *sp, uint64_t *bytes, size_t *sent,
    size_t *cached)
{
	*bytes = sp->bytes;
	*sent = sp->sent;
	*cached = sp->cached;
}

int
shipper_done(const struct shipper *sp)
{
	return sp->state == SS_DONE && sp->asks == 0;
}

void
shipper_free(struct shipper *sp)
{
	if (sp == NULL)
		return;
	stream_tx_free(sp->tx);
	free(sp->data);
	free(sp->missing);
	free(sp);
}

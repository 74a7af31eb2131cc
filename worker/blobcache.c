/*
 * blobcache.c - the worker's content-addressed cache of shipped files:
 * suites and the trees --ship sends, stored once per sha256 under
 * DIR/blobs/, so that a second run of an unchanged suite sends nothing.
 *
 * Several session processes of one daemon share a cache, so a blob
 * appears only by rename of a complete, verified temporary file, and a
 * session copies what it uses into its own directory (a hard link when
 * it can), so eviction by another never pulls a file from under a test.
 * Least recently used blobs (by mtime, touched on each use) are evicted
 * past the size limit.
 *
 * What it must never do: write outside the directories it was given.
 * Names come from the network: no absolute paths, no "..", no empty or
 * "." components, and nothing is ever opened through a symlink.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "worker.h"

#define BLOB_TMP_PREFIX	"tmp."

struct blobcache {
	char		*dir;		/* DIR/blobs */
	int		 dirfd;
	uint64_t	 limit;		/* bytes; 0: no limit */
};

struct blob_writer {
	struct blobcache	*bc;
	char			 hex[SHA256_HEX_LEN + 1];
	char			 tmpname[64];
	int			 fd;
	uint64_t		 size;		/* announced */
	uint64_t		 written;
	struct sha256_ctx	*sha;
};

static int DM_PRINTF(3, 4)
bc_fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

int
blob_hex_ok(const char *hex)
{
	size_t i;

	for (i = 0; i < SHA256_HEX_LEN; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		    (hex[i] >= 'a' && hex[i] <= 'f')))
			return 0;
	return hex[SHA256_HEX_LEN] == '\0';
}

int
ship_path_ok(const char *path, char *why, size_t whylen)
{
	const char *p = path, *slash;
	size_t n;

	if (*path == '\0')
		return bc_fail(why, whylen, "empty path");
	if (*path == '/')
		return bc_fail(why, whylen, "'%.200s' is absolute", path);
	if (strlen(path) > BLOB_PATH_MAX)
		return bc_fail(why, whylen, "path longer than %d bytes",
		    BLOB_PATH_MAX);
	for (;;) {
		slash = strchr(p, '/');
		n = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return bc_fail(why, whylen, "'%.200s' has an empty, "
			    "'.' or '..' component", path);
		if (slash == NULL)
			return 0;
		p = slash + 1;
	}
}

/* mkdir -p of dir, one component at a time, refusing symlinks. */
static int
bc_mkdirs(const char *dir)
{
	char *copy = xstrdup(dir), *p;
	int rc = 0;

	for (p = copy + 1; rc == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(copy, 0700) == -1 && errno != EEXIST)
			rc = -1;
		*p = c;
		if (c == '\0')
			break;
	}
	free(copy);
	return rc;
}

struct blobcache *
blobcache_open(const char *dir, uint64_t limit, char *why, size_t whylen)
{
	struct blobcache *bc;
	char *blobs;
	int fd;

	xasprintf(&blobs, "%s/blobs", dir);
	if (bc_mkdirs(blobs) == -1 ||
	    (fd = open(blobs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		bc_fail(why, whylen, "cache %s: %s", blobs, strerror(errno));
		free(blobs);
		return NULL;
	}
	bc = xcalloc(1, sizeof *bc);
	bc->dir = blobs;
	bc->dirfd = fd;
	bc->limit = limit;
	return bc;
}

void
blobcache_close(struct blobcache *bc)
{
	if (bc == NULL)
		return;
	close(bc->dirfd);
	free(bc->dir);
	free(bc);
}

const char *
blobcache_dir(const struct blobcache *bc)
{
	return bc->dir;
}

int
blobcache_has(struct blobcache *bc, const char *hex)
{
	struct stat st;

	if (!blob_hex_ok(hex))
		return 0;
	if (fstatat(bc->dirfd, hex, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return 0;
	/* Mark it used now: eviction goes by mtime. */
	utimensat(bc->dirfd, hex, NULL, AT_SYMLINK_NOFOLLOW);
	return 1;
}

struct blob_writer *
blobcache_begin(struct blobcache *bc, const char *hex, uint64_t size,
    char *why, size_t whylen)
{
	struct blob_writer *w;
	static unsigned counter;	/* one process, one writer at a time */

	if (!blob_hex_ok(hex)) {
		bc_fail(why, whylen, "'%.80s' is not a sha256 in hex", hex);
		return NULL;
	}
	if (bc->limit != 0 && size > bc->limit) {
		bc_fail(why, whylen, "blob of %llu bytes is over the cache "
		    "limit of %llu bytes", (unsigned long long)size,
		    (unsigned long long)bc->limit);
		return NULL;
	}
	w = xcalloc(1, sizeof *w);
	w->bc = bc;
	memcpy(w->hex, hex, sizeof w->hex);
	w->size = size;
	snprintf(w->tmpname, sizeof w->tmpname, BLOB_TMP_PREFIX "%ld.%u",
	    (long)getpid(), counter++);
	w->fd = openat(bc->dirfd, w->tmpname, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd == -1) {
		bc_fail(why, whylen, "cache: %s", strerror(errno));
		free(w);
		return NULL;
	}
	w->sha = sha256_new();
	return w;
}

int
blob_writer_write(struct blob_writer *w, const void *data, size_t len,
    char *why, size_t whylen)
{
	const char *p = data;
	ssize_t n;

	if (len > w->size - w->written)
		return bc_fail(why, whylen, "blob longer than the %llu bytes "
		    "announced", (unsigned long long)w->size);
	sha256_update(w->sha, data, len);
	while (len > 0) {
		if ((n = write(w->fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return bc_fail(why, whylen, "cache: %s",
			    strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		w->written += (uint64_t)n;
	}
	return 0;
}

static void
bc_writer_free(struct blob_writer *w)
{
	if (w->fd != -1)
		close(w->fd);
	if (w->sha != NULL) {
		char junk[SHA256_HEX_LEN + 1];

		sha256_finish_hex(w->sha, junk);
	}
	free(w);
}

void
blob_writer_abort(struct blob_writer *w)
{
	if (w == NULL)
		return;
	unlinkat(w->bc->dirfd, w->tmpname, 0);
	bc_writer_free(w);
}

int
blob_writer_commit(struct blob_writer *w, char *why, size_t whylen)
{
	struct blobcache *bc = w->bc;
	char got[SHA256_HEX_LEN + 1];
	int rc = -1;

	sha256_finish_hex(w->sha, got);
	w->sha = NULL;
	if (w->written != w->size)
		bc_fail(why, whylen, "blob ended after %llu of %llu bytes",
		    (unsigned long long)w->written,
		    (unsigned long long)w->size);
	else if (strcmp(got, w->hex) != 0)
		bc_fail(why, whylen, "corrupted transfer: sha256 is %s, "
		    "expected %s", got, w->hex);
	else if (fsync(w->fd) == -1 || close(w->fd) == -1)
		bc_fail(why, whylen, "cache: %s", strerror(errno));
	else if (w->fd = -1, renameat(w->bc->dirfd, w->tmpname, w->bc->dirfd,
	    w->hex) == -1)
		bc_fail(why, whylen, "cache: %s", strerror(errno));
	else
		rc = 0;
	if (rc == -1)
		unlinkat(w->bc->dirfd, w->tmpname, 0);
	bc_writer_free(w);
	if (rc == 0)
		blobcache_evict(bc);
	return rc;
}

/* Opens dir components of relpath under rootfd, creating them; returns
 * the fd of the last directory and points *leaf at the file name. */
static int
bc_open_parent(int rootfd, const char *relpath, const char **leaf)
{
	char comp[BLOB_PATH_MAX + 1];
	const char *p = relpath, *slash;
	int fd = dup(rootfd), next;

	while (fd != -1 && (slash = strchr(p, '/')) != NULL) {
		memcpy(comp, p, (size_t)(slash - p));
		comp[slash - p] = '\0';
		if (mkdirat(fd, comp, 0755) == -1 && errno != EEXIST) {
			close(fd);
			return -1;
		}
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(fd);
		fd = next;
		p = slash + 1;
	}
	*leaf = p;
	return fd;
}

static int
bc_copy_fd(int in, int out)
{
	char buf[65536];
	ssize_t n, m, off;

	for (;;) {
		n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
		    errno != EOPNOTSUPP)
			return -1;
		break;
	}
	/* A plain copy where the kernel cannot copy between these files. */
	while ((n = read(in, buf, sizeof buf)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (off = 0; off < n; off += m)
			if ((m = write(out, buf + off, (size_t)(n - off))) == -1)
				return -1;
	}
	return 0;
}

int
blobcache_install(struct blobcache *bc, const char *hex, int rootfd,
    const char *relpath, mode_t mode, char *why, size_t whylen)
{
	const char *leaf;
	int dirfd, in = -1, out = -1, rc = -1;

	if (ship_path_ok(relpath, why, whylen) == -1)
		return -1;
	if (!blob_hex_ok(hex))
		return bc_fail(why, whylen, "not a sha256: '%.80s'", hex);
	if ((dirfd = bc_open_parent(rootfd, relpath, &leaf)) == -1)
		return bc_fail(why, whylen, "%s: %s", relpath, strerror(errno));
	/* A name that exists is replaced, never written through. */
	if (unlinkat(dirfd, leaf, 0) == -1 && errno != ENOENT) {
		bc_fail(why, whylen, "%s: %s", relpath, strerror(errno));
		goto out;
	}
	in = openat(bc->dirfd, hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in == -1) {
		bc_fail(why, whylen, "blob %.12s: %s", hex, strerror(errno));
		goto out;
	}
	out = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode & 0777);
	if (out == -1 || bc_copy_fd(in, out) == -1 ||
	    fchmod(out, mode & 0777) == -1) {
		bc_fail(why, whylen, "%s: %s", relpath, strerror(errno));
		goto out;
	}
	utimensat(bc->dirfd, hex, NULL, AT_SYMLINK_NOFOLLOW);
	rc = 0;
out:
	if (in != -1)
		close(in);
	if (out != -1 && close(out) == -1 && rc == 0)
		rc = bc_fail(why, whylen, "%s: %s", relpath, strerror(errno));
	close(dirfd);
	return rc;
}

struct bc_entry {
	char		 name[SHA256_HEX_LEN + 1];
	struct timespec	 mtime;
	uint64_t	 size;
};

static int
bc_entry_cmp(const void *a, const void *b)
{
	const struct bc_entry *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

uint64_t
blobcache_evict(struct blobcache *bc)
{
	struct bc_entry *e = NULL;
	size_t n = 0, i;
	uint64_t total = 0;
	struct dirent *d;
	struct stat st;
	time_t now = time(NULL);
	DIR *dir;
	int fd;

	if ((fd = dup(bc->dirfd)) == -1 || (dir = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	rewinddir(dir);
	while ((d = readdir(dir)) != NULL) {
		if (fstatat(bc->dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    -1 || !S_ISREG(st.st_mode))
			continue;
		/* Temporary files of writers that died long ago. */
		if (strncmp(d->d_name, BLOB_TMP_PREFIX,
		    strlen(BLOB_TMP_PREFIX)) == 0) {
			if (now - st.st_mtime > BLOB_TMP_STALE)
				unlinkat(bc->dirfd, d->d_name, 0);
			continue;
		}
		if (!blob_hex_ok(d->d_name))
			continue;
		e = xreallocarray(e, n + 1, sizeof *e);
		memcpy(e[n].name, d->d_name, sizeof e[n].name);
		e[n].mtime = st.st_mtim;
		e[n].size = (uint64_t)st.st_size;
		total += e[n].size;
		n++;
	}
	closedir(dir);
	if (bc->limit != 0 && total > bc->limit) {
		qsort(e, n, sizeof *e, bc_entry_cmp);
		for (i = 0; i < n && total > bc->limit; i++)
			if (unlinkat(bc->dirfd, e[i].name, 0) == 0)
				total -= e[i].size;
	}
	free(e);
	return total;
}

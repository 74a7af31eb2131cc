/*
 * blobcache.h - the worker's content-addressed cache of shipped files
 * (see blobcache.c).
 */
#ifndef DM_BLOBCACHE_H
#define DM_BLOBCACHE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#define BLOB_PATH_MAX		1024	/* bytes in a shipped relative path */
#define BLOB_TMP_STALE		3600	/* seconds before a tmp file is junk */
#define BLOB_CACHE_DEFAULT	(1024ull * 1024 * 1024)	/* 1 GiB */

struct blobcache;
struct blob_writer;

/* Opens (creating) DIR/blobs; limit in bytes, 0 for none. */
struct blobcache *blobcache_open(const char *dir, uint64_t limit, char *why,
	    size_t whylen);
void	 blobcache_close(struct blobcache *);
const char *blobcache_dir(const struct blobcache *);
/* Is the blob here? Marks it used. */
int	 blobcache_has(struct blobcache *, const char *hex);
/* Receiving a blob: size bytes announced, checked against the hash at
 * commit; nothing is visible to others before a successful commit. */
struct blob_writer *blobcache_begin(struct blobcache *, const char *hex,
	    uint64_t size, char *why, size_t whylen);
int	 blob_writer_write(struct blob_writer *, const void *data, size_t len,
	    char *why, size_t whylen);
/* Frees the writer whatever happens; -1 names what was wrong (a
 * corrupted transfer names both hashes). */
int	 blob_writer_commit(struct blob_writer *, char *why, size_t whylen);
void	 blob_writer_abort(struct blob_writer *);
/* Copies blob hex to relpath under the directory rootfd, with mode,
 * creating directories; relpath is checked with ship_path_ok. */
int	 blobcache_install(struct blobcache *, const char *hex, int rootfd,
	    const char *relpath, mode_t mode, char *why, size_t whylen);
/* Removes least recently used blobs past the limit and stale temporary
 * files; returns the bytes the cache holds after. */
uint64_t blobcache_evict(struct blobcache *);

/* Is hex 64 lowercase hex digits? */
int	 blob_hex_ok(const char *hex);
/* Is path a relative path without empty, "." or ".." components? */
int	 ship_path_ok(const char *path, char *why, size_t whylen);

#endif

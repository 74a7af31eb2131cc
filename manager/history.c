/*
 * history.c - what earlier runs learned: each test's recent durations and
 * whether it failed last time, so that the scheduler can run failures
 * first (--ff, --lf) and the longest tests first (LPT).
 *
 * The cache lives in DIR/history (DIR is .distmgr by default), a text
 * file meant to be read by people and written fast:
 *
 *     distmgr-history 1
 *     generation 17
 *     F SEEN US[,US[,US]] ID          one line per test
 *     end COUNT CHECKSUM
 *
 * F is 1 when the test failed last time, SEEN the generation (one per
 * saving run) it last ran in, US its last durations in microseconds, most
 * recent first ("-" for none), ID the rest of the line. CHECKSUM is the
 * 64-bit FNV-1a of every byte before the "end" line, in hex. A test not
 * seen for HISTORY_MAX_AGE runs is forgotten, so renamed tests do not
 * pile up (nor stay "failed" forever).
 *
 * It must scale to a million tests inside the manager's budget of 300
 * bytes per test (here about 80: a 28-byte entry, an 8-byte index slot
 * kept at most half full, the id), and it must never fail a run: a
 * missing file is an empty history, a corrupt or unreadable one is an
 * empty history and one warning, and a save that cannot be done is a
 * warning. Saves write a temporary file and rename it over the old one,
 * so a reader (or a concurrent run) sees the old file or the new one,
 * never a mix. There is no fsync: after a power loss the file may be
 * empty or torn, which the checksum turns into an empty history.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"

#define HISTORY_FILE		"history"
#define HISTORY_MAGIC		"distmgr-history 1"
#define HISTORY_KEEP		3		/* durations per test */
#define HISTORY_MAX_AGE		100		/* runs unseen, then dropped */
#define HISTORY_MAX_FILE	(1024L * 1024 * 1024)
#define HISTORY_MAX_US		UINT32_MAX	/* about 71 minutes */
#define HISTORY_WBUF		(64 * 1024)

struct hist_entry {
	uint32_t	 id;		/* offset of the id in the arena */
	uint32_t	 hash;
	uint32_t	 seen;		/* generation it last ran in */
	uint32_t	 us[HISTORY_KEEP];	/* most recent first */
	uint8_t		 nd;		/* how many of us[] are set */
	uint8_t		 failed;
};

/* The hash beside the entry number, so that a probe that misses does
 * not touch the entry: at a million tests, each touch is a cache miss. */
struct hist_slot {
	uint32_t	 entry;		/* entry + 1, or 0 for empty */
	uint32_t	 hash;
};

struct history {
	char		*dir;		/* NULL: in memory only */
	char		*arena;		/* the ids, each NUL-terminated */
	size_t		 arena_len;
	size_t		 arena_size;
	struct hist_entry *e;
	size_t		 ne;
	size_t		 e_size;
	struct hist_slot *index;
	size_t		 index_size;	/* a power of two */
	size_t		 nfailed;
	uint32_t	 gen;		/* this run's generation */
	int		 dirty;
};

/* ---- the table --------------------------------------------------------- */

static uint32_t
hist_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;	/* FNV-1a 32 */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	/* FNV's low bits, which pick the slot, cluster for ids that differ
	 * only at the end; MurmurHash3's fmix32 spreads them. */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static const char *
hist_id(const struct history *h, const struct hist_entry *e)
{
	return h->arena + e->id;
}

static void
hist_index_put(struct history *h, size_t entry)
{
	size_t mask = h->index_size - 1, i = h->e[entry].hash & mask;

	while (h->index[i].entry != 0)
		i = (i + 1) & mask;
	h->index[i].entry = (uint32_t)(entry + 1);
	h->index[i].hash = h->e[entry].hash;
}

static void
hist_index_grow(struct history *h, size_t want_entries)
{
	size_t size = h->index_size ? h->index_size : 64, i;

	while (size < want_entries * 2)
		size *= 2;
	if (size == h->index_size)
		return;
	free(h->index);
	h->index = xcalloc(size, sizeof *h->index);
	h->index_size = size;
	for (i = 0; i < h->ne; i++)
		hist_index_put(h, i);
}

static struct hist_entry *
hist_find(const struct history *h, const char *id, size_t len, uint32_t hash)
{
	size_t mask, i;
	struct hist_entry *e;

	if (h->index_size == 0)
		return NULL;
	mask = h->index_size - 1;
	for (i = hash & mask; h->index[i].entry != 0; i = (i + 1) & mask) {
		if (h->index[i].hash != hash)
			continue;
		e = &h->e[h->index[i].entry - 1];
		if (strncmp(hist_id(h, e), id, len) == 0 &&
		    hist_id(h, e)[len] == '\0')
			return e;
	}
	return NULL;
}

/* A new entry for id (not yet present), or NULL when the arena is full. */
static struct hist_entry *
hist_add(struct history *h, const char *id, size_t len, uint32_t hash)
{
	struct hist_entry *e;

	if (h->arena_len + len + 1 > UINT32_MAX || h->ne + 1 >= UINT32_MAX)
		return NULL;
	if (h->arena_len + len + 1 > h->arena_size) {
		h->arena_size = h->arena_size < 4096 ? 4096 : h->arena_size;
		while (h->arena_len + len + 1 > h->arena_size)
			h->arena_size += h->arena_size / 2;
		h->arena = xreallocarray(h->arena, h->arena_size, 1);
	}
	if (h->ne == h->e_size) {
		h->e_size = h->e_size < 64 ? 64 : h->e_size + h->e_size / 2;
		h->e = xreallocarray(h->e, h->e_size, sizeof *h->e);
	}
	if ((h->ne + 1) * 2 > h->index_size)
		hist_index_grow(h, h->ne + 1);
	e = &h->e[h->ne];
	memset(e, 0, sizeof *e);
	e->id = (uint32_t)h->arena_len;
	e->hash = hash;
	memcpy(h->arena + h->arena_len, id, len);
	h->arena[h->arena_len + len] = '\0';
	h->arena_len += len + 1;
	hist_index_put(h, h->ne++);
	return e;
}

static void
hist_clear(struct history *h)
{
	free(h->arena);
	free(h->e);
	free(h->index);
	h->arena = NULL;
	h->e = NULL;
	h->index = NULL;
	h->arena_len = h->arena_size = h->ne = h->e_size = 0;
	h->index_size = 0;
	h->nfailed = 0;
}

/* ---- loading ----------------------------------------------------------- */

struct hist_parse {
	const char	*p;
	const char	*end;
	size_t		 line;
	const char	*why;
};

static uint64_t
hist_sum(uint64_t h, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}
#define HIST_SUM_INIT	0xcbf29ce484222325ULL

/* Decimal digits, at most max, into *v; ps->p stops after them. */
static int
hist_digits(struct hist_parse *ps, uint64_t max, uint64_t *v)
{
	const char *start = ps->p;
	uint64_t x = 0;

	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
		x = x * 10 + (uint64_t)(*ps->p++ - '0');
		if (x > max)
			return -1;
	}
	*v = x;
	return ps->p == start || ps->p == ps->end ? -1 : 0;
}

/* A number, then the byte stop. */
static int
hist_number(struct hist_parse *ps, uint64_t max, char stop, uint64_t *v)
{
	if (hist_digits(ps, max, v) == -1 || *ps->p != stop)
		return -1;
	ps->p++;
	return 0;
}

/* "US[,US[,US]] " or "- " into e. */
static int
hist_parse_durations(struct hist_parse *ps, struct hist_entry *e)
{
	uint64_t v;
	char sep;

	e->nd = 0;
	if (ps->end - ps->p >= 2 && ps->p[0] == '-' && ps->p[1] == ' ') {
		ps->p += 2;
		return 0;
	}
	while (e->nd < HISTORY_KEEP) {
		if (hist_digits(ps, HISTORY_MAX_US, &v) == -1)
			return -1;
		e->us[e->nd++] = (uint32_t)v;
		sep = *ps->p++;
		if (sep == ' ')
			return 0;
		if (sep != ',')
			return -1;
	}
	return -1;
}

/* One test's line; ps->p is at its start and ends after its newline. */
static int
hist_parse_entry(struct history *h, struct hist_parse *ps)
{
	struct hist_entry tmp, *e;
	const char *id, *nl;
	uint64_t failed, seen;
	uint32_t hash;

	memset(&tmp, 0, sizeof tmp);
	if (hist_number(ps, 1, ' ', &failed) == -1 ||
	    hist_number(ps, UINT32_MAX, ' ', &seen) == -1 ||
	    hist_parse_durations(ps, &tmp) == -1) {
		ps->why = "a malformed line";
		return -1;
	}
	id = ps->p;
	nl = memchr(id, '\n', (size_t)(ps->end - id));
	if (nl == NULL || nl == id || memchr(id, '\0', (size_t)(nl - id))) {
		ps->why = "a malformed test id";
		return -1;
	}
	ps->p = nl + 1;
	hash = hist_hash(id, (size_t)(nl - id));
	if ((e = hist_find(h, id, (size_t)(nl - id), hash)) == NULL &&
	    (e = hist_add(h, id, (size_t)(nl - id), hash)) == NULL) {
		ps->why = "too many tests";
		return -1;
	}
	if (e->failed)
		h->nfailed--;
	memcpy(e->us, tmp.us, sizeof e->us);
	e->nd = tmp.nd;
	e->failed = (uint8_t)failed;
	e->seen = (uint32_t)seen;
	h->nfailed += e->failed;
	return 0;
}

/* Finds "end COUNT SUM\n" at the end of buf and checks the sum. */
static int
hist_parse_trailer(const char *buf, size_t len, size_t *count,
    const char **body_end)
{
	const char *last;
	unsigned long long n, sum;
	char tail[80];
	int used = 0;

	if (len < 2 || buf[len - 1] != '\n')
		return -1;
	for (last = buf + len - 1; last > buf && last[-1] != '\n'; last--)
		;
	if ((size_t)(buf + len - last) >= sizeof tail)
		return -1;
	memcpy(tail, last, (size_t)(buf + len - last));
	tail[buf + len - last] = '\0';
	if (sscanf(tail, "end %llu %16llx\n%n", &n, &sum, &used) != 2 ||
	    (size_t)used != strlen(tail))
		return -1;
	if (hist_sum(HIST_SUM_INIT, buf, (size_t)(last - buf)) != sum)
		return -1;
	*count = (size_t)n;
	*body_end = last;
	return 0;
}

/* Parses a whole file; on -1 *why says what was wrong. */
static int
hist_parse_file(struct history *h, const char *buf, size_t len,
    const char **why)
{
	struct hist_parse ps = { .p = buf, .end = buf + len };
	size_t count, n = 0;
	uint64_t gen;

	if (len < sizeof HISTORY_MAGIC ||
	    memcmp(buf, HISTORY_MAGIC "\n", sizeof HISTORY_MAGIC) != 0) {
		*why = strncmp(buf, "distmgr-history ", 16) == 0 && len > 16 ?
		    "written by another version of distmgr" :
		    "not a distmgr history file";
		return -1;
	}
	if (hist_parse_trailer(buf, len, &count, &ps.end) == -1) {
		*why = "truncated or damaged (bad end line or checksum)";
		return -1;
	}
	ps.p += sizeof HISTORY_MAGIC;
	if (ps.end - ps.p < 11 || memcmp(ps.p, "generation ", 11) != 0) {
		*why = "no generation line";
		return -1;
	}
	ps.p += 11;
	if (hist_number(&ps, UINT32_MAX - 1, '\n', &gen) == -1) {
		*why = "a bad generation line";
		return -1;
	}
	h->gen = (uint32_t)gen + 1;
	/* A line is at least 8 bytes: a lying count cannot make us
	 * allocate more than the file could hold. */
	hist_index_grow(h, count < len / 8 ? count : len / 8);
	while (ps.p < ps.end) {
		if (hist_parse_entry(h, &ps) == -1) {
			*why = ps.why;
			return -1;
		}
		n++;
	}
	if (n != count) {
		*why = "a wrong count of tests";
		return -1;
	}
	return 0;
}

static char *
hist_path(const struct history *h)
{
	char *path;

	xasprintf(&path, "%s/%s", h->dir, HISTORY_FILE);
	return path;
}

/* Reads the whole file: 1 read, 0 missing, -1 unreadable with *why. */
static int
hist_read(const char *path, char **buf, size_t *len, const char **why)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*why = strerror(errno);
		return errno == ENOENT ? 0 : -1;
	}
	if (fstat(fd, &st) == -1)
		*why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		*why = "not a regular file";
	else if (st.st_size > HISTORY_MAX_FILE)
		*why = "larger than 1 GiB";
	else
		*why = NULL;
	if (*why != NULL) {
		close(fd);
		return -1;
	}
	*buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size &&
	    (n = read(fd, *buf + got, (size_t)st.st_size - got)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*why = strerror(errno);
			free(*buf);
			*buf = NULL;
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	(*buf)[got] = '\0';
	*len = got;
	return 1;
}

static void
hist_load(struct history *h)
{
	char *path = hist_path(h), *buf = NULL;
	const char *why = NULL;
	size_t len = 0;
	int r;

	r = hist_read(path, &buf, &len, &why);
	if (r == 1 && hist_parse_file(h, buf, len, &why) == -1) {
		hist_clear(h);
		h->gen = 1;
		r = -1;
	}
	if (r == -1)
		log_warn("%s: %s; starting with an empty history", path, why);
	free(buf);
	free(path);
}

struct history *
history_open(const char *dir)
{
	struct history *h = xcalloc(1, sizeof *h);

	h->gen = 1;
	if (dir != NULL) {
		h->dir = xstrdup(dir);
		hist_load(h);
	}
	return h;
}

void
history_free(struct history *h)
{
	if (h == NULL)
		return;
	hist_clear(h);
	free(h->dir);
	free(h);
}

/* ---- questions and answers ---------------------------------------------- */

static const struct hist_entry *
hist_lookup(const struct history *h, const char *id)
{
	size_t len = strlen(id);

	return hist_find(h, id, len, hist_hash(id, len));
}

/*
 * One number for the scheduler: the last duration after one run, the
 * mean of two, the median of three, so that one slow run on a busy
 * machine does not reorder the next.
 */
double
history_duration(const struct history *h, const char *id)
{
	const struct hist_entry *e = hist_lookup(h, id);
	uint32_t a, b, c;

	if (e == NULL || e->nd == 0)
		return -1;
	if (e->nd == 1)
		return e->us[0] / 1e6;
	if (e->nd == 2)
		return ((double)e->us[0] + e->us[1]) / 2e6;
	a = e->us[0];
	b = e->us[1];
	c = e->us[2];
	if ((a <= b && b <= c) || (c <= b && b <= a))
		return b / 1e6;
	if ((b <= a && a <= c) || (c <= a && a <= b))
		return a / 1e6;
	return c / 1e6;
}

size_t
history_recent(const struct history *h, const char *id, double *out,
    size_t max)
{
	const struct hist_entry *e = hist_lookup(h, id);
	size_t i, n;

	if (e == NULL)
		return 0;
	n = e->nd < max ? e->nd : max;
	for (i = 0; i < n; i++)
		out[i] = e->us[i] / 1e6;
	return n;
}

int
history_failed_last(const struct history *h, const char *id)
{
	const struct hist_entry *e = hist_lookup(h, id);

	return e != NULL && e->failed;
}

size_t
history_nfailed(const struct history *h)
{
	return h->nfailed;
}

void
history_record(struct history *h, const char *id, enum outcome o,
    double duration)
{
	size_t len = strlen(id);
	uint32_t hash = hist_hash(id, len);
	struct hist_entry *e;
	double us;

	/* A test that did not run taught nothing, and may still be one
	 * that failed last time. */
	if (o == OUT_NONE || o == OUT_NOT_RUN || (unsigned)o >= OUT__COUNT)
		return;
	if ((e = hist_find(h, id, len, hash)) == NULL &&
	    (e = hist_add(h, id, len, hash)) == NULL)
		return;
	if (duration >= 0 && !isnan(duration)) {
		us = duration * 1e6 + 0.5;
		memmove(e->us + 1, e->us, sizeof e->us - sizeof e->us[0]);
		e->us[0] = us >= (double)HISTORY_MAX_US ? HISTORY_MAX_US :
		    (uint32_t)us;
		if (e->nd < HISTORY_KEEP)
			e->nd++;
	}
	h->nfailed -= e->failed;
	e->failed = outcome_is_failure(o) ? 1 : 0;
	h->nfailed += e->failed;
	e->seen = h->gen;
	h->dirty = 1;
}

/* ---- saving ------------------------------------------------------------ */

struct hist_writer {
	int		 fd;
	int		 failed;	/* errno of the first failure */
	uint64_t	 sum;
	size_t		 len;
	char		 buf[HISTORY_WBUF];
};

static void
hist_flush(struct hist_writer *w)
{
	size_t off = 0;
	ssize_t n;

	w->sum = hist_sum(w->sum, w->buf, w->len);
	while (off < w->len && !w->failed) {
		n = write(w->fd, w->buf + off, w->len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			w->failed = errno;
		else
			off += (size_t)n;
	}
	w->len = 0;
}

static void
hist_put(struct hist_writer *w, const char *s, size_t len)
{
	if (w->len + len > sizeof w->buf)
		hist_flush(w);
	if (len > sizeof w->buf) {	/* an enormous id: write it alone */
		w->sum = hist_sum(w->sum, s, len);
		if (!w->failed && write(w->fd, s, len) != (ssize_t)len)
			w->failed = errno ? errno : EIO;
		return;
	}
	memcpy(w->buf + w->len, s, len);
	w->len += len;
}

/* Decimal digits of v into end-backwards; returns the start. */
static char *
hist_utoa(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

static void
hist_put_entry(struct hist_writer *w, const struct history *h,
    const struct hist_entry *e)
{
	char line[96], *p = line, num[24];
	const char *id = hist_id(h, e), *s;
	int i;

	*p++ = e->failed ? '1' : '0';
	*p++ = ' ';
	s = hist_utoa(num + sizeof num, e->seen);
	memcpy(p, s, (size_t)(num + sizeof num - s));
	p += num + sizeof num - s;
	*p++ = ' ';
	if (e->nd == 0)
		*p++ = '-';
	for (i = 0; i < e->nd; i++) {
		if (i > 0)
			*p++ = ',';
		s = hist_utoa(num + sizeof num, e->us[i]);
		memcpy(p, s, (size_t)(num + sizeof num - s));
		p += num + sizeof num - s;
	}
	*p++ = ' ';
	hist_put(w, line, (size_t)(p - line));
	hist_put(w, id, strlen(id));
	hist_put(w, "\n", 1);
}

static int
hist_keep(const struct history *h, const struct hist_entry *e)
{
	return h->gen - e->seen <= HISTORY_MAX_AGE &&
	    strchr(hist_id(h, e), '\n') == NULL;
}

static void
hist_write_all(struct hist_writer *w, const struct history *h)
{
	char head[64];
	size_t i, n = 0;
	int len;

	len = snprintf(head, sizeof head, "%s\ngeneration %u\n",
	    HISTORY_MAGIC, h->gen);
	hist_put(w, head, (size_t)len);
	for (i = 0; i < h->ne; i++) {
		if (hist_keep(h, &h->e[i])) {
			hist_put_entry(w, h, &h->e[i]);
			n++;
		}
	}
	hist_flush(w);
	len = snprintf(head, sizeof head, "end %zu %016llx\n", n,
	    (unsigned long long)w->sum);
	hist_put(w, head, (size_t)len);
	hist_flush(w);
}

/* mkdir -p: 1 when dir was made here, 0 when it was there, -1. */
static int
hist_mkdirs(const char *dir)
{
	char *parent, *p;
	int r;

	if (mkdir(dir, 0777) == 0)
		return 1;
	if (errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -1;
	parent = xstrdup(dir);
	p = strrchr(parent, '/');
	while (p != NULL && p > parent && p[-1] == '/')
		p--;
	if (p == NULL || p == parent) {
		free(parent);
		errno = ENOENT;
		return -1;
	}
	*p = '\0';
	r = hist_mkdirs(parent);
	free(parent);
	if (r == -1)
		return -1;
	if (mkdir(dir, 0777) == 0)
		return 1;
	return errno == EEXIST ? 0 : -1;
}

static void
hist_write_marker(const char *dir, const char *name, const char *text)
{
	char *path;
	FILE *fp;

	xasprintf(&path, "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) != NULL) {
		fputs(text, fp);
		fclose(fp);
	}
	free(path);
}

/* A directory made here is marked as a cache, not for git nor for
 * backups, as pytest marks .pytest_cache. */
static int
hist_mkdir(const char *dir)
{
	int r = hist_mkdirs(dir);

	if (r == 1) {
		hist_write_marker(dir, ".gitignore", "# Created by distmgr: "
		    "its cache of test durations and failures.\n*\n");
		hist_write_marker(dir, "CACHEDIR.TAG", "Signature: "
		    "8a477f597d28d172789f06886806bc55\n"
		    "# This is distmgr's cache directory.\n");
	}
	return r == -1 ? -1 : 0;
}

int
history_save(struct history *h)
{
	struct hist_writer *w;
	char *tmp, *path;
	mode_t mask;
	int err = 0;

	if (h->dir == NULL || !h->dirty)
		return 0;
	if (hist_mkdir(h->dir) == -1) {
		log_warn("cannot create the cache directory %s: %s; the "
		    "history is not saved", h->dir, strerror(errno));
		return -1;
	}
	path = hist_path(h);
	xasprintf(&tmp, "%s/.%s.XXXXXX", h->dir, HISTORY_FILE);
	w = xcalloc(1, sizeof *w);
	w->sum = HIST_SUM_INIT;
	if ((w->fd = mkstemp(tmp)) == -1)
		err = errno;
	else {
		mask = umask(0);
		umask(mask);
		(void)fchmod(w->fd, 0666 & ~mask);
		hist_write_all(w, h);
		err = w->failed;
		if (close(w->fd) == -1 && err == 0)
			err = errno;
		if (err == 0 && rename(tmp, path) == -1)
			err = errno;
		if (err != 0)
			unlink(tmp);
	}
	if (err != 0)
		log_warn("cannot save the history to %s: %s", path,
		    strerror(err));
	else
		h->dirty = 0;
	free(w);
	free(tmp);
	free(path);
	return err == 0 ? 0 : -1;
}

/*
 * watch.c - waiting for files to change, for --looponfail: the suites,
 * and everything under each --watch DIR, with inotify(7).
 *
 * A rebuilt suite is usually written elsewhere and renamed over the old
 * one, which gives it a new inode, so directories are watched, never
 * files: a suite's directory for the suite's name, a --watch directory
 * for any name, and its subdirectories too (added as they appear). A
 * build writes many files in a burst; the waiter is told once, after
 * WATCH_QUIET seconds without another change, with the names that
 * changed. Changes that come while nobody waits (during a run) are kept
 * for the next wait. A watched directory that goes away (make clean) is
 * looked for again every WATCH_RETRY seconds; when it is back, what is
 * in it counts as changed.
 *
 * It must never report distmgr's own writes as changes: names starting
 * with a dot (the .distmgr cache, the JUnit report's temporary file,
 * editors' swap files) and backups are never changes, and the caller
 * names the reports and the cache to ignore. It never blocks and never
 * follows a symbolic link into another tree.
 */
#include <sys/inotify.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "manager.h"

#define WATCH_QUIET		0.25	/* seconds without a change */
#define WATCH_RETRY		1.0	/* seconds between looks for a gone
					   directory */
#define WATCH_DIRS_MAX		8192	/* directories under --watch */
#define WATCH_DEPTH_MAX		64
#define WATCH_MASK		(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | \
				 IN_DELETE | IN_CREATE | IN_DELETE_SELF | \
				 IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)
#define WATCH_FILE_CHANGE	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | \
				 IN_DELETE)

struct wdir {
	int		 wd;		/* -1 while it is gone */
	char		*path;		/* absolute, as the kernel sees it */
	char		*shown;		/* as the user named it ("src/net") */
	int		 top;		/* named by the caller: look for it
					   again when it goes */
	int		 tree;		/* any name counts; subdirectories too */
	char		**names;	/* else only these names count */
	size_t		 nnames;
};

struct watch {
	struct event_base *base;
	int		 fd;
	struct event	*ev;
	struct event	*quiet;
	struct event	*retry;
	struct wdir	*dirs;
	size_t		 ndirs;
	size_t		 ntree;		/* directories in trees, for the cap */
	int		 capped;	/* warned about the cap */
	char		**ignore;	/* absolute paths: files, or trees */
	size_t		 nignore;
	char		*changed[WATCH_CHANGED_MAX];
	size_t		 nchanged;
	size_t		 more;		/* changes not kept by name */
	int		 armed;
	watch_cb	 cb;
	void		*arg;
};

static int	watch_tree(struct watch *, const char *path, const char *shown,
		    int top, int depth);

/* ---- names ---------------------------------------------------------- */

/* Never a change: hidden names (the cache, temporary files, .git) and
 * editors' leftovers. */
static int
watch_boring(const char *name)
{
	size_t n = strlen(name);

	return name[0] == '.' || name[0] == '#' || n == 0 ||
	    name[n - 1] == '~' || strcmp(name, "4913") == 0 ||
	    (n > 4 && (strcmp(name + n - 4, ".swp") == 0 ||
	    strcmp(name + n - 4, ".swx") == 0));
}

/* path made absolute without touching a file that may not exist yet:
 * its directory resolved, its name kept. Caller frees. */
static char *
watch_abs(const char *path)
{
	char buf[PATH_MAX], *dir, *slash, *out;

	if (realpath(path, buf) != NULL)
		return xstrdup(buf);
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		free(dir);
		dir = xstrdup(".");
		slash = NULL;
	} else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (realpath(dir, buf) == NULL) {
		free(dir);
		return xstrdup(path);
	}
	free(dir);
	slash = strrchr(path, '/');
	xasprintf(&out, "%s/%s", strcmp(buf, "/") == 0 ? "" : buf,
	    slash != NULL ? slash + 1 : path);
	return out;
}

static int
watch_ignored(const struct watch *w, const char *path)
{
	size_t n;

	for (size_t i = 0; i < w->nignore; i++) {
		n = strlen(w->ignore[i]);
		if (strncmp(path, w->ignore[i], n) == 0 &&
		    (path[n] == '\0' || path[n] == '/'))
			return 1;
	}
	return 0;
}

/* "dir/name" as the user would write it; "name" for the current one. */
static char *
watch_join(const char *dir, const char *name)
{
	char *out;

	if (strcmp(dir, ".") == 0)
		return xstrdup(name);
	xasprintf(&out, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
	    name);
	return out;
}

/* ---- what changed ---------------------------------------------------- */

static void
watch_quiet_start(struct watch *w)
{
	struct timeval tv = { 0, (suseconds_t)(WATCH_QUIET * 1e6) };

	/* Every change puts the end of the burst further off. */
	evtimer_add(w->quiet, &tv);
}

/* Takes shown (freed here). */
static void
watch_changed(struct watch *w, char *shown)
{
	for (size_t i = 0; i < w->nchanged; i++)
		if (strcmp(w->changed[i], shown) == 0) {
			free(shown);
			goto out;
		}
	if (w->nchanged < WATCH_CHANGED_MAX)
		w->changed[w->nchanged++] = shown;
	else {
		w->more++;
		free(shown);
	}
out:
	if (w->armed)
		watch_quiet_start(w);
}

static void
watch_forget_changes(struct watch *w)
{
	for (size_t i = 0; i < w->nchanged; i++)
		free(w->changed[i]);
	w->nchanged = 0;
	w->more = 0;
}

static void
on_quiet(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	char *list[WATCH_CHANGED_MAX];
	size_t n = w->nchanged, more = w->more;

	(void)fd;
	(void)what;
	if (!w->armed || (n == 0 && more == 0))
		return;
	/* The list is the callback's to read, ours to free after. */
	memcpy(list, w->changed, n * sizeof *list);
	w->nchanged = 0;
	w->more = 0;
	w->armed = 0;
	w->cb(w->arg, (const char *const *)list, n, more);
	for (size_t i = 0; i < n; i++)
		free(list[i]);
}

/* ---- directories ------------------------------------------------------ */

static struct wdir *
watch_by_wd(struct watch *w, int wd)
{
	for (size_t i = 0; i < w->ndirs; i++)
		if (w->dirs[i].wd == wd)
			return &w->dirs[i];
	return NULL;
}

static struct wdir *
watch_by_path(struct watch *w, const char *path)
{
	for (size_t i = 0; i < w->ndirs; i++)
		if (strcmp(w->dirs[i].path, path) == 0)
			return &w->dirs[i];
	return NULL;
}

static struct wdir *
watch_new_dir(struct watch *w, const char *path, const char *shown)
{
	struct wdir *d;

	w->dirs = xreallocarray(w->dirs, w->ndirs + 1, sizeof *w->dirs);
	d = &w->dirs[w->ndirs++];
	memset(d, 0, sizeof *d);
	d->wd = -1;
	d->path = xstrdup(path);
	d->shown = xstrdup(shown);
	return d;
}

static void
watch_add_name(struct wdir *d, const char *name)
{
	for (size_t i = 0; i < d->nnames; i++)
		if (strcmp(d->names[i], name) == 0)
			return;
	d->names = xreallocarray(d->names, d->nnames + 1, sizeof *d->names);
	d->names[d->nnames++] = xstrdup(name);
}

/* Watches d's directory; 0, or -1 with errno. */
static int
watch_attach(struct watch *w, struct wdir *d)
{
	struct wdir *same;
	int wd;

	if ((wd = inotify_add_watch(w->fd, d->path, WATCH_MASK)) == -1)
		return -1;
	/* The same directory by another path (a bind mount): events come
	 * with one descriptor, so the first entry serves both. */
	if ((same = watch_by_wd(w, wd)) != NULL && same != d) {
		same->tree |= d->tree;
		same->top |= d->top;
		for (size_t i = 0; i < d->nnames; i++)
			watch_add_name(same, d->names[i]);
	}
	d->wd = wd;
	return 0;
}

/* A directory is back (or new): what it holds that counts has changed. */
static void
watch_found_again(struct watch *w, struct wdir *d)
{
	char *p;

	if (d->tree) {
		watch_changed(w, xstrdup(d->shown));
		return;
	}
	for (size_t i = 0; i < d->nnames; i++) {
		xasprintf(&p, "%s/%s", d->path, d->names[i]);
		if (access(p, F_OK) == 0)
			watch_changed(w, watch_join(d->shown, d->names[i]));
		free(p);
	}
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	struct timeval tv = { (time_t)WATCH_RETRY, 0 };
	int missing = 0;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < w->ndirs; i++) {
		struct wdir *d = &w->dirs[i];

		if (d->wd != -1 || !d->top)
			continue;
		if (watch_attach(w, d) == -1) {
			missing = 1;
			continue;
		}
		if (d->tree)
			(void)watch_tree(w, d->path, d->shown, 1, 0);
		/* watch_tree may have moved w->dirs. */
		watch_found_again(w, &w->dirs[i]);
	}
	if (missing)
		evtimer_add(w->retry, &tv);
}

static void
watch_gone(struct watch *w, struct wdir *d)
{
	struct timeval tv = { (time_t)WATCH_RETRY, 0 };

	d->wd = -1;
	if (d->top && !evtimer_pending(w->retry, NULL))
		evtimer_add(w->retry, &tv);
}

/* path and every directory under it (not hidden, not through a link). */
static int
watch_tree(struct watch *w, const char *path, const char *shown, int top,
    int depth)
{
	struct wdir *d;
	struct dirent *e;
	struct stat st;
	char *sub, *subshown;
	DIR *dir;
	int rc = 0;

	if ((d = watch_by_path(w, path)) == NULL) {
		if (!top && w->ntree >= WATCH_DIRS_MAX) {
			if (!w->capped)
				log_warn("--watch: more than %d directories "
				    "under %s; the rest are not watched",
				    WATCH_DIRS_MAX, shown);
			w->capped = 1;
			return 0;
		}
		d = watch_new_dir(w, path, shown);
		w->ntree++;
	}
	d->tree = 1;
	d->top |= top;
	if (d->wd == -1 && watch_attach(w, d) == -1)
		return -1;
	if (depth >= WATCH_DEPTH_MAX || (dir = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(dir)) != NULL) {
		if (watch_boring(e->d_name) || (e->d_type != DT_DIR &&
		    e->d_type != DT_UNKNOWN))
			continue;
		xasprintf(&sub, "%s/%s", path, e->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode) &&
		    !watch_ignored(w, sub)) {
			subshown = watch_join(shown, e->d_name);
			if (watch_tree(w, sub, subshown, 0, depth + 1) == -1)
				rc = -1;
			free(subshown);
		}
		free(sub);
	}
	closedir(dir);
	return rc;
}

/* ---- events ------------------------------------------------------------ */

static void
watch_event(struct watch *w, const struct inotify_event *ev)
{
	struct wdir *d;
	char *full, *shown;
	int wd = ev->wd;
	size_t i, at;

	if (ev->mask & IN_Q_OVERFLOW) {
		watch_changed(w, xstrdup("(more files than could be told)"));
		return;
	}
	if ((d = watch_by_wd(w, wd)) == NULL)
		return;
	if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (ev->mask & IN_IGNORED)
			watch_gone(w, d);
		return;
	}
	if (ev->len == 0 || watch_boring(ev->name))
		return;
	xasprintf(&full, "%s/%s", d->path, ev->name);
	if (watch_ignored(w, full)) {
		free(full);
		return;
	}
	if (ev->mask & IN_ISDIR) {
		/* Only trees care about directories; a new one is watched
		 * at once, with what it already holds. */
		if (d->tree) {
			shown = watch_join(d->shown, ev->name);
			if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
				at = (size_t)(d - w->dirs);
				(void)watch_tree(w, full, shown, 0, 1);
				d = &w->dirs[at];
			}
			watch_changed(w, shown);
		}
		free(full);
		return;
	}
	free(full);
	if (!(ev->mask & WATCH_FILE_CHANGE))
		return;
	for (i = 0; !d->tree && i < d->nnames; i++)
		if (strcmp(d->names[i], ev->name) == 0)
			break;
	if (!d->tree && i == d->nnames)
		return;
	watch_changed(w, watch_join(d->shown, ev->name));
}

static void
on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	char buf[16384] __attribute__((aligned(__alignof__(struct
	    inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;

	(void)what;
	for (;;) {
		n = read(fd, buf, sizeof buf);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return;		/* EAGAIN: all read */
		}
		for (char *p = buf; p < buf + n;
		    p += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)p;
			watch_event(w, ev);
		}
	}
}

/* ---- the interface ------------------------------------------------------ */

struct watch *
watch_new(struct event_base *base, char *why, size_t whylen)
{
	struct watch *w;
	int fd;

	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		snprintf(why, whylen, "cannot watch files (inotify): %s",
		    strerror(errno));
		return NULL;
	}
	w = xcalloc(1, sizeof *w);
	w->base = base;
	w->fd = fd;
	w->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_inotify, w);
	w->quiet = evtimer_new(base, on_quiet, w);
	w->retry = evtimer_new(base, on_retry, w);
	if (w->ev == NULL || w->quiet == NULL || w->retry == NULL)
		fatalx("watch: cannot create events");
	event_add(w->ev, NULL);
	return w;
}

void
watch_free(struct watch *w)
{
	if (w == NULL)
		return;
	event_free(w->ev);
	event_free(w->quiet);
	event_free(w->retry);
	close(w->fd);
	for (size_t i = 0; i < w->ndirs; i++) {
		free(w->dirs[i].path);
		free(w->dirs[i].shown);
		for (size_t k = 0; k < w->dirs[i].nnames; k++)
			free(w->dirs[i].names[k]);
		free(w->dirs[i].names);
	}
	free(w->dirs);
	for (size_t i = 0; i < w->nignore; i++)
		free(w->ignore[i]);
	free(w->ignore);
	watch_forget_changes(w);
	free(w);
}

int
watch_file(struct watch *w, const char *path, char *why, size_t whylen)
{
	char *abs = watch_abs(path), *slash, *shown, *name;
	struct wdir *d;

	slash = strrchr(abs, '/');
	name = xstrdup(slash + 1);
	*slash = '\0';
	shown = xstrdup(path);
	if ((slash = strrchr(shown, '/')) == NULL) {
		free(shown);
		shown = xstrdup(".");
	} else if (slash == shown)
		shown[1] = '\0';
	else
		*slash = '\0';
	if ((d = watch_by_path(w, abs[0] != '\0' ? abs : "/")) == NULL)
		d = watch_new_dir(w, abs[0] != '\0' ? abs : "/", shown);
	d->top = 1;
	watch_add_name(d, name);
	free(name);
	free(shown);
	free(abs);
	if (d->wd == -1 && watch_attach(w, d) == -1) {
		if (errno != ENOENT) {
			snprintf(why, whylen, "cannot watch %s: %s", d->path,
			    strerror(errno));
			return -1;
		}
		watch_gone(w, d);	/* looked for again */
	}
	return 0;
}

int
watch_dir(struct watch *w, const char *path, char *why, size_t whylen)
{
	struct stat st;
	char *abs;
	int rc;

	if (stat(path, &st) == -1) {
		snprintf(why, whylen, "--watch %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "--watch %s: not a directory", path);
		return -1;
	}
	abs = watch_abs(path);
	rc = watch_tree(w, abs, path, 1, 0);
	if (rc == -1)
		snprintf(why, whylen, "--watch %s: %s", path, errno == ENOSPC ?
		    "too many directories for inotify (see "
		    "/proc/sys/fs/inotify/max_user_watches)" : strerror(errno));
	free(abs);
	return rc;
}

void
watch_ignore(struct watch *w, const char *path)
{
	w->ignore = xreallocarray(w->ignore, w->nignore + 1,
	    sizeof *w->ignore);
	w->ignore[w->nignore++] = watch_abs(path);
}

void
watch_arm(struct watch *w, watch_cb cb, void *arg)
{
	w->cb = cb;
	w->arg = arg;
	w->armed = 1;
	/* Changes during the run: the next run is due once they settle. */
	if (w->nchanged > 0 || w->more > 0)
		watch_quiet_start(w);
}

void
watch_disarm(struct watch *w)
{
	w->armed = 0;
	evtimer_del(w->quiet);
}

void
watch_drop_changes(struct watch *w)
{
	watch_forget_changes(w);
}

/*
 * sync.c - the run's single authority for synchronisation between tests
 * (pytest-mp's mp_lock, mp_message_board and mp_trail): named locks
 * with FIFO waiters, a key/value board, and trails.
 *
 * Tests on every worker and host ask the manager, and only the manager
 * decides, so two tests can never both believe they hold a lock. An
 * owner is an opaque 64-bit key the caller chooses (worker slot and
 * test). When an owner goes away holding locks (it crashed, timed out,
 * or its worker died) the locks pass to the next waiters, who are told
 * the previous holder died.
 *
 * No I/O here: grants are delivered through the callback the waiter
 * gave, and the caller turns them into protocol answers.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

struct sync_waiter {
	uint64_t		 owner;
	sync_grant_fn		 grant;
	void			*arg;
	struct sync_waiter	*next;
};

struct sync_lock {
	char			*name;
	int			 held;
	uint64_t		 holder;
	int			 holder_died;	/* told to the next holder */
	struct sync_waiter	*head, *tail;
	struct sync_lock	*next;		/* in its bucket */
	struct sync_lock	*all_next;	/* in sync's list of all */
};

struct sync_kv {
	char		*key;
	char		*value;
	struct sync_kv	*next;
};

/* A test that started a trail and has not finished it. */
struct sync_user {
	uint64_t		 owner;
	unsigned long		 n;		/* its starts not yet finished */
	struct sync_user	*next;
};

struct sync_trail {
	char			*name;
	unsigned long		 active;	/* started, not yet finished */
	int			 up;		/* set up, not torn down */
	struct sync_user	*users;
	/* The finish that left nobody on the trail, waiting to learn
	 * whether it was the last (held_arg NULL: none). */
	uint64_t		 held_owner;
	sync_answer_fn		 held_answer;
	void			*held_arg;
	double			 held_deadline;
	struct sync_trail	*next;
};

#define SYNC_BUCKETS 256

struct sync {
	struct sync_lock	*locks[SYNC_BUCKETS];
	/* Every lock, for what a test's end must look at: each test that
	 * ends asks, and most runs have no lock at all. */
	struct sync_lock	*all_locks;
	struct sync_kv		*board[SYNC_BUCKETS];
	struct sync_trail	*trails;
	size_t			 board_bytes;
	size_t			 nheld;		/* trails with a held finish */
};

static unsigned
sync_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % SYNC_BUCKETS;
}

static void	trail_free_users(struct sync_trail *);
static void	trail_owner_gone(struct sync *, uint64_t owner, uint64_t mask,
		    void (*drop)(void *arg));

struct sync *
sync_new(void)
{
	return xcalloc(1, sizeof(struct sync));
}

void
sync_free(struct sync *s)
{
	struct sync_lock *l, *ln;
	struct sync_waiter *w, *wn;
	struct sync_kv *kv, *kn;
	struct sync_trail *t, *tn;
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < SYNC_BUCKETS; i++) {
		for (l = s->locks[i]; l != NULL; l = ln) {
			ln = l->next;
			for (w = l->head; w != NULL; w = wn) {
				wn = w->next;
				free(w);
			}
			free(l->name);
			free(l);
		}
		for (kv = s->board[i]; kv != NULL; kv = kn) {
			kn = kv->next;
			free(kv->key);
			free(kv->value);
			free(kv);
		}
	}
	for (t = s->trails; t != NULL; t = tn) {
		tn = t->next;
		trail_free_users(t);
		free(t->name);
		free(t);
	}
	free(s);
}

static struct sync_lock *
sync_find_lock(struct sync *s, const char *name, int create)
{
	unsigned h = sync_hash(name);
	struct sync_lock *l;

	for (l = s->locks[h]; l != NULL; l = l->next)
		if (strcmp(l->name, name) == 0)
			return l;
	if (!create)
		return NULL;
	l = xcalloc(1, sizeof *l);
	l->name = xstrdup(name);
	l->next = s->locks[h];
	s->locks[h] = l;
	l->all_next = s->all_locks;
	s->all_locks = l;
	return l;
}

int
sync_lock(struct sync *s, const char *name, uint64_t owner,
    sync_grant_fn grant, void *arg, int *previous_died)
{
	struct sync_lock *l = sync_find_lock(s, name, 1);
	struct sync_waiter *w;

	if (!l->held) {
		l->held = 1;
		l->holder = owner;
		*previous_died = l->holder_died;
		l->holder_died = 0;
		return 1;
	}
	if (l->holder == owner)
		return -1;	/* not recursive: it would wait for itself */
	w = xcalloc(1, sizeof *w);
	w->owner = owner;
	w->grant = grant;
	w->arg = arg;
	if (l->tail != NULL)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	return 0;
}

/* The lock is free: give it to the first waiter, if any. */
static void
sync_pass(struct sync_lock *l)
{
	struct sync_waiter *w = l->head;
	int died = l->holder_died;

	if (w == NULL) {
		l->held = 0;
		return;
	}
	l->head = w->next;
	if (l->head == NULL)
		l->tail = NULL;
	l->holder = w->owner;
	l->holder_died = 0;
	w->grant(w->arg, died);
	free(w);
}

int
sync_unlock(struct sync *s, const char *name, uint64_t owner)
{
	struct sync_lock *l = sync_find_lock(s, name, 0);

	if (l == NULL || !l->held || l->holder != owner)
		return -1;
	l->holder_died = 0;
	sync_pass(l);
	return 0;
}

/* Drops owner's waits; grants nothing. */
static void
sync_drop_waits(struct sync_lock *l, uint64_t owner, uint64_t mask,
    void (*drop)(void *arg))
{
	struct sync_waiter **wp = &l->head, *w, *prev = NULL;

	while ((w = *wp) != NULL) {
		if ((w->owner & mask) == owner) {
			*wp = w->next;
			if (l->tail == w)
				l->tail = prev;
			if (drop != NULL)
				drop(w->arg);
			free(w);
		} else {
			prev = w;
			wp = &w->next;
		}
	}
}

size_t
sync_owner_gone(struct sync *s, uint64_t owner, int died,
    void (*drop)(void *arg))
{
	return sync_owners_gone(s, owner, UINT64_MAX, died, drop);
}

size_t
sync_owners_gone(struct sync *s, uint64_t owner, uint64_t mask, int died,
    void (*drop)(void *arg))
{
	struct sync_lock *l;
	size_t released = 0;

	owner &= mask;
	for (l = s->all_locks; l != NULL; l = l->all_next) {
		sync_drop_waits(l, owner, mask, drop);
		if (l->held && (l->holder & mask) == owner) {
			l->holder_died = died;
			released++;
			sync_pass(l);
		}
	}
	trail_owner_gone(s, owner, mask, drop);
	return released;
}

int
sync_board_set(struct sync *s, const char *key, const char *value)
{
	unsigned h = sync_hash(key);
	struct sync_kv *kv;
	size_t old = 0, now = strlen(key) + strlen(value);

	for (kv = s->board[h]; kv != NULL; kv = kv->next)
		if (strcmp(kv->key, key) == 0)
			break;
	if (kv != NULL)
		old = strlen(kv->key) + strlen(kv->value);
	if (s->board_bytes - old + now > SYNC_BOARD_MAX)
		return -1;
	if (kv == NULL) {
		kv = xcalloc(1, sizeof *kv);
		kv->key = xstrdup(key);
		kv->next = s->board[h];
		s->board[h] = kv;
	} else
		free(kv->value);
	kv->value = xstrdup(value);
	s->board_bytes = s->board_bytes - old + now;
	return 0;
}

const char *
sync_board_get(const struct sync *s, const char *key)
{
	const struct sync_kv *kv;

	for (kv = s->board[sync_hash(key)]; kv != NULL; kv = kv->next)
		if (strcmp(kv->key, key) == 0)
			return kv->value;
	return NULL;
}

/* ---- trails -------------------------------------------------------------- */

/*
 * pytest-mp's mp_trail counts the tests on a trail: the first start sets
 * the shared thing up, the finish that leaves nobody on it tears it down.
 * Across workers that count touches zero whenever one test ends before
 * the next has started, and a teardown then would leave the next test
 * without what it was promised. So the finish that leaves nobody is held:
 * a start meanwhile answers it false (the thing stays up for the new
 * user), and only when nothing else can come (sync_trail_release, which
 * the caller invokes once no other test runs, or the deadline) is it
 * answered true. A trail torn down is set up again by its next start.
 */

static void
trail_free_users(struct sync_trail *t)
{
	struct sync_user *u, *un;

	for (u = t->users; u != NULL; u = un) {
		un = u->next;
		free(u);
	}
	t->users = NULL;
}

static struct sync_trail *
trail_find(struct sync *s, const char *name)
{
	struct sync_trail *t;

	for (t = s->trails; t != NULL; t = t->next)
		if (strcmp(t->name, name) == 0)
			return t;
	t = xcalloc(1, sizeof *t);
	t->name = xstrdup(name);
	t->next = s->trails;
	s->trails = t;
	return t;
}

/* Counts one more start (+1) or finish (-1) of owner; returns 0, or -1
 * for a finish owner never started (it is not a user of the trail). */
static int
trail_count(struct sync_trail *t, uint64_t owner, int delta)
{
	struct sync_user **up, *u;

	for (up = &t->users; (u = *up) != NULL; up = &u->next)
		if (u->owner == owner)
			break;
	if (delta > 0) {
		if (u == NULL) {
			u = xcalloc(1, sizeof *u);
			u->owner = owner;
			u->next = t->users;
			t->users = u;
		}
		u->n++;
		t->active++;
		return 0;
	}
	if (u == NULL)
		return -1;
	if (--u->n == 0) {
		*up = u->next;
		free(u);
	}
	t->active--;
	return 0;
}

static void
trail_unhold(struct sync *s, struct sync_trail *t, int result)
{
	sync_answer_fn answer = t->held_answer;
	void *arg = t->held_arg;

	t->held_answer = NULL;
	t->held_arg = NULL;
	s->nheld--;
	if (result)
		t->up = 0;
	answer(arg, result);
}

int
sync_trail(struct sync *s, const char *name, int finish, uint64_t owner,
    double deadline, sync_answer_fn answer, void *arg, int *result)
{
	struct sync_trail *t = trail_find(s, name);

	*result = 0;
	if (!finish) {
		trail_count(t, owner, 1);
		if (t->held_arg != NULL)
			trail_unhold(s, t, 0);	/* not the last after all */
		if (!t->up) {
			t->up = 1;
			*result = 1;
		}
		return 1;
	}
	if (trail_count(t, owner, -1) == -1 || t->active > 0)
		return 1;
	if (answer == NULL) {
		t->up = 0;
		*result = 1;
		return 1;
	}
	t->held_owner = owner;
	t->held_answer = answer;
	t->held_arg = arg;
	t->held_deadline = deadline;
	s->nheld++;
	return 0;
}

size_t
sync_trail_held(const struct sync *s)
{
	return s->nheld;
}

int
sync_trail_holds(const struct sync *s, uint64_t owner, uint64_t mask)
{
	const struct sync_trail *t;

	for (t = s->trails; t != NULL; t = t->next)
		if (t->held_arg != NULL && (t->held_owner & mask) ==
		    (owner & mask))
			return 1;
	return 0;
}

size_t
sync_trail_release(struct sync *s, double now)
{
	struct sync_trail *t;
	size_t n = 0;

	for (t = s->trails; t != NULL && s->nheld > 0; t = t->next)
		if (t->held_arg != NULL && (now < 0 || now >= t->held_deadline)) {
			trail_unhold(s, t, 1);
			n++;
		}
	return n;
}

/* owner's starts leave the count; a finish it has held is dropped, and
 * the thing stays set up for whoever comes next. */
static void
trail_owner_gone(struct sync *s, uint64_t owner, uint64_t mask,
    void (*drop)(void *arg))
{
	struct sync_trail *t;
	struct sync_user **up, *u;
	void *arg;

	for (t = s->trails; t != NULL; t = t->next) {
		for (up = &t->users; (u = *up) != NULL;) {
			if ((u->owner & mask) != owner) {
				up = &u->next;
				continue;
			}
			t->active -= u->n;
			*up = u->next;
			free(u);
		}
		if (t->held_arg != NULL && (t->held_owner & mask) == owner) {
			arg = t->held_arg;
			t->held_answer = NULL;
			t->held_arg = NULL;
			s->nheld--;
			if (drop != NULL)
				drop(arg);
		}
	}
}

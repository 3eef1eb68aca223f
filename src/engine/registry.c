/*
 * registry.c - the server's engine: one view per account (base snapshots +
 * delta), copy-on-write updates in commit order, and a background thread
 * that folds large deltas into a new base.
 *
 * The base is two snapshots: the exact policies (EMAIL, DOMAIN, IP) and the
 * regexes.  A rebuild recompiles the regex snapshot (its Hyperscan databases
 * take most of a rebuild's time) only when the folded delta touches a regex
 * -- a new or edited regex, or an id the regex snapshot holds -- so a stream
 * of exact-policy writes never recompiles Hyperscan.
 *
 * Invariants:
 *   - a view is immutable once published; acct->view is replaced, never
 *     edited, under acct->lock, and readers take a reference under the
 *     same lock (held for a pointer copy and an atomic increment);
 *   - delta entries are sorted by policy id, one per id, holding the
 *     newest version (or a deletion) compiled once, when it was written,
 *     into a one-policy snapshot -- so a new view costs pointer copies, not
 *     recompilation; every delta id shadows the base;
 *   - the delta's exact policies are also merged into at most two level
 *     snapshots (a small one rebuilt once more than SINGLES_MAX exact
 *     entries sit outside the levels, a large one once the small one would
 *     pass LEVEL_SMALL_MAX members), so that an evaluation probes the base, the
 *     regexes, two levels and at most SINGLES_MAX one-policy snapshots of
 *     exact policies however large the delta is (before the levels, a delta
 *     of 7,000 entries made every evaluation probe 7,000 snapshots: 1,150
 *     evaluations/s instead of 1.8 M).  A level remembers the entries it was
 *     built from; in a view, a level member that is not the view's entry
 *     for its id (edited, deleted, or folded into the base since) is
 *     shadowed in that level;
 *   - a view keeps each entry's id and kind (ENT_*: exact, compiled, member
 *     of which level) in arrays next to the entries, so a write merges
 *     arrays and reads no entry but its own;
 *   - entries carry the sequence number of the write that made them; a
 *     rebuild that started from a view at sequence S keeps, in the view it
 *     publishes, exactly the entries newer than S.
 */
#include "engine/engine_int.h"
#include "allowd/error.h"
#include "allowd/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A rebuild is queued when the delta passes max(DELTA_REBUILD_AT, base
 * policies / DELTA_REBUILD_RATIO) entries.  A rebuild recompiles the whole
 * base (Hyperscan included) while a delta entry costs every evaluation a
 * little: scaling the threshold with the base keeps the rebuild work per
 * write bounded (about RATIO policies recompiled per write) instead of
 * growing with the base, which under a stream of writes kept the rebuild
 * thread busy all the time.
 */
#define DELTA_REBUILD_AT 64
#define DELTA_REBUILD_RATIO 128
#define LOAD_PREFILTER_MAX 256  /* regexes compiled with Hyperscan during a load */
#define SINGLES_MAX 16       /* exact delta entries probed one by one, at most */
#define LEVEL_SMALL_MAX 256  /* live members of the small level, at most */

typedef struct dentry {
	atomic_int refs;
	int64_t id;
	uint64_t seq;
	allowd_policy *policy; /* NULL: deleted */
	allowd_snapshot *one;  /* the policy compiled alone; NULL when deleted */
} dentry;

/* Delta entries' exact policies compiled together (immutable, shared by views). */
typedef struct dlevel {
	atomic_int refs;
	allowd_snapshot *s;
	dentry **members; /* sorted by id; references held, so identity is meaningful */
	int64_t *ids;     /* members[i]->id, contiguous: walks read no entry */
	size_t n;
} dlevel;

/* What a view keeps about each entry, next to it, so that a write reads no entry. */
enum {
	ENT_EXACT = 1, /* an exact policy (not deleted, not a regex): levels hold these */
	ENT_ONE = 2,   /* has a one-policy snapshot (not deleted) */
	ENT_LV0 = 4,   /* a member of the view's lv[0] */
	ENT_LV1 = 8,   /* a member of the view's lv[1] */
	ENT_LV = ENT_LV0 | ENT_LV1,
};

/* The levels of a view being made: references and shadows, handed to view_make. */
typedef struct lvplan {
	dlevel *lv[2];
	int64_t *shadow[2]; /* sorted */
	size_t nshadow[2];
} lvplan;

typedef struct view {
	atomic_int refs;
	allowd_snapshot *base; /* exact policies */
	allowd_snapshot *rx;   /* regexes */
	int rx_final;          /* rx was built with the engine's options (not a load's) */
	dlevel *lv[2];         /* [0] small and newer, [1] large; NULL: none */
	int64_t *lv_shadow[2]; /* per level: sorted ids of members that are not current */
	size_t lv_nshadow[2];
	dentry **singles;      /* entries evaluated one by one: not in a level, with a policy */
	size_t n_singles;
	dentry **entries;
	uint8_t *kind;         /* ENT_* of each entry */
	int64_t *shadow;       /* the entries' ids: the base's and rx's shadow */
	size_t n;
	uint64_t seq;
} view;

/*
 * Reference counted: the map holds one, and every caller that found the
 * account holds one until it is done, so allowd_engine_drop_account never
 * frees an account an evaluation, a write or a rebuild is still using.
 */
typedef struct account {
	char id[64];
	atomic_int refs;
	pthread_mutex_t lock;
	view *view;
	int rebuild_queued;
	uint64_t rebuilds;
} account;

struct allowd_engine {
	allowd_engine_options opts;
	allowd_engine_options delta_opts;
	pthread_rwlock_t map_lock; /* guards accounts[] (not the accounts' views) */
	account **accounts;        /* sorted by id */
	size_t n_accounts, cap_accounts;
	atomic_uint_fast64_t seq;

	pthread_t thread;
	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond, idle_cond;
	char (*queue)[64];
	size_t n_queue, cap_queue;
	int busy, stopping, started;
};

/* ---- entries and views ---------------------------------------------- */

static void dentry_unref(dentry *d)
{
	if (d && atomic_fetch_sub(&d->refs, 1) == 1) {
		allowd_policy_free(d->policy);
		allowd_snapshot_unref(d->one);
		free(d);
	}
}

static void dlevel_unref(dlevel *l)
{
	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	allowd_snapshot_unref(l->s);
	for (size_t i = 0; i < l->n; i++)
		dentry_unref(l->members[i]);
	free(l->members);
	free(l->ids);
	free(l);
}

static uint8_t dentry_kind(const dentry *d)
{
	if (!d->policy)
		return 0;
	return (uint8_t)((d->policy->is_regex ? 0 : ENT_EXACT) | (d->one ? ENT_ONE : 0));
}

/* A level over members[0..n) (id-sorted, exact; references taken); 0 or ALLOWD_ERR. */
static int dlevel_build(dlevel **out, allowd_engine *e, dentry **members, size_t n)
{
	dlevel *l = calloc(1, sizeof(*l));
	allowd_policy **pols = calloc(n ? n : 1, sizeof(*pols));
	int rc;

	*out = NULL;
	if (!l || !pols || !(l->members = malloc((n ? n : 1) * sizeof(*l->members))) ||
	    !(l->ids = malloc((n ? n : 1) * sizeof(*l->ids)))) {
		free(pols);
		if (l) {
			free(l->members);
			free(l->ids);
		}
		free(l);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		pols[i] = members[i]->policy;
	if ((rc = allowd_snapshot_build(&l->s, pols, n, &e->delta_opts))) {
		free(pols);
		free(l->members);
		free(l->ids);
		free(l);
		return rc;
	}
	free(pols);
	atomic_init(&l->refs, 1);
	for (size_t i = 0; i < n; i++) {
		atomic_fetch_add(&members[i]->refs, 1);
		l->members[i] = members[i];
		l->ids[i] = members[i]->id;
	}
	l->n = n;
	*out = l;
	return 0;
}

/*
 * Marks in kind[i] (bit ENT_LV0 or ENT_LV1) the entries that are members of
 * l, and writes to shadow the ids of l's members that are not the entry for
 * their id; returns how many.  Both lists are sorted by id: one merge walk.
 */
static size_t level_walk(const dlevel *l, dentry *const *entries, const int64_t *ids, size_t n,
			 uint8_t *kind, uint8_t bit, int64_t *shadow)
{
	size_t i = 0, ns = 0;

	for (size_t j = 0; j < l->n; j++) {
		while (i < n && ids[i] < l->ids[j])
			i++;
		if (i < n && entries[i] == l->members[j])
			kind[i] |= bit;
		else
			shadow[ns++] = l->ids[j];
	}
	return ns;
}

static void view_unref(view *v)
{
	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	allowd_snapshot_unref(v->base);
	allowd_snapshot_unref(v->rx);
	for (int l = 0; l < 2; l++) {
		dlevel_unref(v->lv[l]);
		free(v->lv_shadow[l]);
	}
	free(v->singles);
	free(v->kind);
	for (size_t i = 0; i < v->n; i++)
		dentry_unref(v->entries[i]);
	free(v->entries);
	free(v->shadow);
	free(v);
}

/*
 * A new view over `base` and `rx` (references taken) with entries
 * (references taken), in one of two ways:
 *   - plan given (a write): ids and kind (ENT_* including the level bits)
 *     come from the caller, and the view takes over the plan's levels and
 *     shadows; nothing is read from the entries but their reference counts;
 *   - plan NULL (a load, a rebuild): ids and kinds are read from the
 *     entries, and their membership of the levels `walk` (NULL: none) is
 *     found by merge walks; a level none of whose members is current is
 *     left out.
 */
static int view_make(view **out, allowd_snapshot *base, allowd_snapshot *rx, int rx_final,
		     dentry **entries, const int64_t *ids, const uint8_t *kind, size_t n,
		     uint64_t seq, lvplan *plan, dlevel *const walk[2])
{
	view *v = calloc(1, sizeof(*v));

	if (!v || (n && (!(v->entries = malloc(n * sizeof(*v->entries))) ||
			 !(v->shadow = malloc(n * sizeof(*v->shadow))) ||
			 !(v->kind = malloc(n * sizeof(*v->kind))) ||
			 !(v->singles = malloc(n * sizeof(*v->singles)))))) {
		view_unref(v);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	atomic_init(&v->refs, 1);
	if (plan) {
		memcpy(v->shadow, ids, n * sizeof(*ids));
		memcpy(v->kind, kind, n);
		for (int l = 0; l < 2; l++) {
			v->lv[l] = plan->lv[l];
			v->lv_shadow[l] = plan->shadow[l];
			v->lv_nshadow[l] = plan->nshadow[l];
			plan->lv[l] = NULL;
			plan->shadow[l] = NULL;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			v->shadow[i] = entries[i]->id;
			v->kind[i] = dentry_kind(entries[i]);
		}
		for (int l = 0; l < 2 && walk; l++) {
			size_t ns;
			if (!walk[l])
				continue;
			if (!(v->lv_shadow[l] = malloc((walk[l]->n ? walk[l]->n : 1) * sizeof(int64_t)))) {
				view_unref(v);
				return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
			}
			ns = level_walk(walk[l], entries, v->shadow, n, v->kind,
					l ? ENT_LV1 : ENT_LV0, v->lv_shadow[l]);
			if (ns == walk[l]->n) { /* nothing current in it: not worth probing */
				free(v->lv_shadow[l]);
				v->lv_shadow[l] = NULL;
				continue;
			}
			atomic_fetch_add(&walk[l]->refs, 1);
			v->lv[l] = walk[l];
			v->lv_nshadow[l] = ns;
		}
	}
	for (size_t i = 0; i < n; i++)
		if ((v->kind[i] & ENT_ONE) && !(v->kind[i] & ENT_LV))
			v->singles[v->n_singles++] = entries[i];
	v->seq = seq;
	for (size_t i = 0; i < n; i++) {
		atomic_fetch_add(&entries[i]->refs, 1);
		v->entries[i] = entries[i];
	}
	v->n = n;
	allowd_snapshot_ref(base);
	v->base = base;
	allowd_snapshot_ref(rx);
	v->rx = rx;
	v->rx_final = rx_final;
	*out = v;
	return 0;
}

/* ---- accounts ------------------------------------------------------- */

static long find_index(allowd_engine *e, const char *id, int *found)
{
	size_t lo = 0, hi = e->n_accounts;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(e->accounts[mid]->id, id);
		if (c == 0) {
			*found = 1;
			return (long)mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return (long)lo;
}

static void account_unref(account *a)
{
	if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
		return;
	view_unref(a->view);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* The account, with a reference the caller releases (account_unref), or NULL. */
static account *find_account(allowd_engine *e, const char *id)
{
	account *a = NULL;
	int found;
	long i;

	pthread_rwlock_rdlock(&e->map_lock);
	i = find_index(e, id, &found);
	if (found) {
		a = e->accounts[i];
		atomic_fetch_add(&a->refs, 1);
	}
	pthread_rwlock_unlock(&e->map_lock);
	return a;
}

/* The account's state, created with an empty view when new; referenced as find_account's. */
static account *get_account(allowd_engine *e, const char *id)
{
	account *a = find_account(e, id);
	allowd_snapshot *empty = NULL;
	int found;
	long i;

	if (a)
		return a;
	pthread_rwlock_wrlock(&e->map_lock);
	i = find_index(e, id, &found);
	if (found) {
		a = e->accounts[i];
		atomic_fetch_add(&a->refs, 1);
		goto out;
	}
	if (e->n_accounts == e->cap_accounts) {
		size_t ncap = e->cap_accounts ? e->cap_accounts * 2 : 16;
		account **v = realloc(e->accounts, ncap * sizeof(*v));
		if (!v)
			goto out;
		e->accounts = v;
		e->cap_accounts = ncap;
	}
	if (!(a = calloc(1, sizeof(*a))) || allowd_snapshot_build(&empty, NULL, 0, &e->opts) ||
	    view_make(&a->view, empty, empty, 1, NULL, NULL, NULL, 0, 0, NULL, NULL)) {
		free(a);
		a = NULL;
		goto out;
	}
	snprintf(a->id, sizeof(a->id), "%s", id);
	atomic_init(&a->refs, 2); /* the map's and the caller's */
	pthread_mutex_init(&a->lock, NULL);
	memmove(&e->accounts[i + 1], &e->accounts[i],
		(e->n_accounts - (size_t)i) * sizeof(*e->accounts));
	e->accounts[i] = a;
	e->n_accounts++;
out:
	allowd_snapshot_unref(empty);
	pthread_rwlock_unlock(&e->map_lock);
	return a;
}

static view *current_view(account *a)
{
	view *v;
	pthread_mutex_lock(&a->lock);
	v = a->view;
	atomic_fetch_add(&v->refs, 1);
	pthread_mutex_unlock(&a->lock);
	return v;
}

/* ---- rebuilds ------------------------------------------------------- */

static void queue_rebuild(allowd_engine *e, account *a)
{
	if (a->rebuild_queued || !e->started)
		return;
	pthread_mutex_lock(&e->queue_lock);
	if (e->n_queue == e->cap_queue) {
		size_t ncap = e->cap_queue ? e->cap_queue * 2 : 8;
		char(*q)[64] = realloc(e->queue, ncap * sizeof(*q));
		if (!q) {
			pthread_mutex_unlock(&e->queue_lock);
			return; /* the delta keeps working; the next write retries */
		}
		e->queue = q;
		e->cap_queue = ncap;
	}
	snprintf(e->queue[e->n_queue++], 64, "%s", a->id);
	a->rebuild_queued = 1;
	pthread_cond_signal(&e->queue_cond);
	pthread_mutex_unlock(&e->queue_lock);
}

static bool shadowed(const view *v, int64_t id)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v->shadow[mid] == id)
			return true;
		if (v->shadow[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Appends the policies of `s` that the view's delta does not shadow; *hit when one is. */
static int add_unshadowed(allowd_policy_vec *out, const allowd_snapshot *s, const view *v,
			  int *hit)
{
	allowd_policy **all = NULL;
	size_t n = 0, i;
	int rc;

	if ((rc = engine_snapshot_policies(s, &all, &n)))
		return rc;
	for (i = 0; i < n && rc == 0; i++) {
		if (shadowed(v, all[i]->id)) {
			*hit = 1;
			allowd_policy_free(all[i]);
		} else {
			rc = allowd_policy_vec_push(out, all[i]);
		}
	}
	for (; i < n; i++)
		allowd_policy_free(all[i]);
	free(all);
	return rc;
}

/*
 * The view's whole set split into exact policies and regexes; *rx_dirty
 * when the regexes differ from v->rx (or v->rx is not final).
 */
static int view_policies(view *v, allowd_policy_vec *exact, allowd_policy_vec *regex,
			 int *rx_dirty)
{
	int rc, unused = 0;

	*rx_dirty = !v->rx_final;
	if ((rc = add_unshadowed(exact, v->base, v, &unused)) ||
	    (rc = add_unshadowed(regex, v->rx, v, rx_dirty)))
		return rc;
	for (size_t i = 0; i < v->n; i++) {
		allowd_policy *c = NULL;
		if (!v->entries[i]->policy)
			continue;
		if ((rc = allowd_policy_dup(&c, v->entries[i]->policy)))
			return rc;
		if (c->is_regex)
			*rx_dirty = 1;
		if ((rc = allowd_policy_vec_push(c->is_regex ? regex : exact, c)))
			return rc;
	}
	return 0;
}

static void rebuild(allowd_engine *e, account *a)
{
	view *from = current_view(a), *cur, *next = NULL;
	allowd_snapshot *base = NULL, *rx = NULL;
	allowd_policy_vec exact = {0}, regex = {0};
	dentry **keep = NULL;
	size_t k = 0;
	int rx_dirty = 0;

	pthread_mutex_lock(&a->lock);
	a->rebuild_queued = 0;
	pthread_mutex_unlock(&a->lock);
	if (view_policies(from, &exact, &regex, &rx_dirty) == 0 &&
	    allowd_snapshot_build(&base, exact.v, exact.n, &e->opts) == 0 &&
	    (!rx_dirty || allowd_snapshot_build(&rx, regex.v, regex.n, &e->opts) == 0)) {
		if (!rx_dirty) {
			allowd_snapshot_ref(from->rx);
			rx = from->rx;
		}
		pthread_mutex_lock(&a->lock);
		cur = a->view;
		if ((keep = malloc((cur->n + 1) * sizeof(*keep)))) {
			for (size_t i = 0; i < cur->n; i++)
				if (cur->entries[i]->seq > from->seq)
					keep[k++] = cur->entries[i];
			if (view_make(&next, base, rx, 1, keep, NULL, NULL, k, cur->seq, NULL,
				      cur->lv) == 0) {
				a->view = next;
				a->rebuilds++;
				view_unref(cur);
			}
		}
		pthread_mutex_unlock(&a->lock);
	} else {
		log_error("engine: rebuilding account %s failed: %s", a->id,
			  allowd_error_last()->message);
	}
	free(keep);
	allowd_policy_vec_clear(&exact);
	allowd_policy_vec_clear(&regex);
	allowd_snapshot_unref(base);
	allowd_snapshot_unref(rx);
	view_unref(from);
}

static void *rebuild_main(void *arg)
{
	allowd_engine *e = arg;
	char id[64];

	for (;;) {
		account *a;
		pthread_mutex_lock(&e->queue_lock);
		while (!e->n_queue && !e->stopping)
			pthread_cond_wait(&e->queue_cond, &e->queue_lock);
		if (e->stopping) {
			pthread_mutex_unlock(&e->queue_lock);
			break;
		}
		memcpy(id, e->queue[0], sizeof(id));
		memmove(e->queue, e->queue + 1, (e->n_queue - 1) * sizeof(*e->queue));
		e->n_queue--;
		e->busy = 1;
		pthread_mutex_unlock(&e->queue_lock);

		if ((a = find_account(e, id)))
			rebuild(e, a);
		account_unref(a);

		pthread_mutex_lock(&e->queue_lock);
		e->busy = 0;
		if (!e->n_queue)
			pthread_cond_broadcast(&e->idle_cond);
		pthread_mutex_unlock(&e->queue_lock);
	}
	return NULL;
}

void allowd_engine_quiesce(allowd_engine *e)
{
	pthread_mutex_lock(&e->queue_lock);
	while (e->n_queue || e->busy)
		pthread_cond_wait(&e->idle_cond, &e->queue_lock);
	pthread_mutex_unlock(&e->queue_lock);
}

/* ---- public --------------------------------------------------------- */

int allowd_engine_new(allowd_engine **out, const allowd_engine_options *opts)
{
	allowd_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	if (opts)
		e->opts = *opts;
	else
		allowd_engine_options_init(&e->opts);
	e->delta_opts = e->opts;
	e->delta_opts.use_prefilter = 0; /* small: PCRE2 alone, no compile latency */
	pthread_rwlock_init(&e->map_lock, NULL);
	pthread_mutex_init(&e->queue_lock, NULL);
	pthread_cond_init(&e->queue_cond, NULL);
	pthread_cond_init(&e->idle_cond, NULL);
	if (pthread_create(&e->thread, NULL, rebuild_main, e) != 0) {
		allowd_engine_free(e);
		return allowd_error_set(ALLOWD_ERR, NULL, "cannot start the engine's thread");
	}
	e->started = 1;
	*out = e;
	return 0;
}

void allowd_engine_free(allowd_engine *e)
{
	if (!e)
		return;
	if (e->started) {
		pthread_mutex_lock(&e->queue_lock);
		e->stopping = 1;
		pthread_cond_signal(&e->queue_cond);
		pthread_mutex_unlock(&e->queue_lock);
		pthread_join(e->thread, NULL);
	}
	for (size_t i = 0; i < e->n_accounts; i++)
		account_unref(e->accounts[i]); /* the caller's are all released by now */
	free(e->accounts);
	free(e->queue);
	pthread_rwlock_destroy(&e->map_lock);
	pthread_mutex_destroy(&e->queue_lock);
	pthread_cond_destroy(&e->queue_cond);
	pthread_cond_destroy(&e->idle_cond);
	free(e);
}

static int load_account(allowd_engine *e, account *a, allowd_policy *const *policies, size_t n)
{
	allowd_snapshot *base = NULL, *rx = NULL;
	allowd_policy **split = NULL;
	view *v = NULL, *old;
	size_t n_regex = 0, n_exact = 0;
	int rc;

	if (!a)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	if (!(split = malloc((n ? n : 1) * sizeof(*split))))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	/* exact policies first, then the regexes: both in id order */
	for (size_t i = 0; i < n; i++)
		if (!policies[i]->is_regex)
			split[n_exact++] = policies[i];
	for (size_t i = 0; i < n; i++)
		if (policies[i]->is_regex)
			split[n_exact + n_regex++] = policies[i];
	/*
	 * Compiling thousands of regexes into Hyperscan takes seconds: start
	 * serving at once with PCRE2 alone and let the rebuild thread add the
	 * prefilter.
	 */
	if ((rc = allowd_snapshot_build(&base, split, n_exact, &e->opts)) == 0 &&
	    (rc = allowd_snapshot_build(&rx, split + n_exact, n_regex,
					n_regex > LOAD_PREFILTER_MAX ? &e->delta_opts : &e->opts)) == 0)
		rc = view_make(&v, base, rx, n_regex <= LOAD_PREFILTER_MAX, NULL, NULL, NULL, 0,
			       atomic_load(&e->seq), NULL, NULL);
	allowd_snapshot_unref(base);
	allowd_snapshot_unref(rx);
	free(split);
	if (rc)
		return rc;
	pthread_mutex_lock(&a->lock);
	old = a->view;
	a->view = v;
	if (n_regex > LOAD_PREFILTER_MAX)
		queue_rebuild(e, a);
	pthread_mutex_unlock(&a->lock);
	view_unref(old);
	return 0;
}

/* By id, then by sequence: the newest version of an id sorts last. */
static int dentry_cmp(const void *x, const void *y)
{
	const dentry *a = *(dentry *const *)x, *b = *(dentry *const *)y;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void lvplan_clear(lvplan *p)
{
	for (int l = 0; l < 2; l++) {
		dlevel_unref(p->lv[l]);
		free(p->shadow[l]);
		p->lv[l] = NULL;
		p->shadow[l] = NULL;
		p->nshadow[l] = 0;
	}
}

/* Keeps level l of cur in p, its shadow grown by the members this write replaced. */
static int plan_keep(lvplan *p, const view *cur, int l, const int64_t *repl, size_t n_repl)
{
	size_t a = cur->lv_nshadow[l], i = 0, j = 0, k = 0;
	int64_t *m = malloc((a + n_repl ? a + n_repl : 1) * sizeof(*m));

	if (!m)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	while (i < a || j < n_repl) /* two sorted runs, no id in both */
		m[k++] = j == n_repl || (i < a && cur->lv_shadow[l][i] < repl[j]) ? cur->lv_shadow[l][i++]
										   : repl[j++];
	atomic_fetch_add(&cur->lv[l]->refs, 1);
	p->lv[l] = cur->lv[l];
	p->shadow[l] = m;
	p->nshadow[l] = k;
	return 0;
}

/*
 * The levels of the view a write makes over entries[0..k), whose kind[]
 * carries cur's level bits for the entries it kept; repl[l] lists (sorted)
 * the ids of cur's level-l members the write replaced.  The levels stay
 * while at most SINGLES_MAX exact entries sit outside them; else a new
 * small level takes the exact entries outside the large one, while that
 * stays within LEVEL_SMALL_MAX; else one large level takes every exact
 * entry.  kind[]'s level bits are updated to match.  A level build costs
 * in proportion to its members (the large one is bounded by the rebuild
 * threshold), once per SINGLES_MAX or LEVEL_SMALL_MAX writes.
 */
static int plan_levels(allowd_engine *e, dentry **entries, uint8_t *kind, size_t k,
		       const view *cur, int64_t *const repl[2], const size_t n_repl[2],
		       lvplan *out)
{
	dentry **pick = NULL;
	size_t singles = 0, live[2] = {0, 0}, n = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < k; i++) {
		if (!(kind[i] & ENT_EXACT))
			continue;
		singles += !(kind[i] & ENT_LV);
		live[0] += (kind[i] & ENT_LV0) != 0;
		live[1] += (kind[i] & ENT_LV1) != 0;
	}
	if (singles > SINGLES_MAX && !(pick = malloc(k * sizeof(*pick))))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	if (singles <= SINGLES_MAX) {
		for (int l = 0; l < 2 && !rc; l++)
			if (cur->lv[l] && live[l])
				rc = plan_keep(out, cur, l, repl[l], n_repl[l]);
	} else if (live[0] + singles <= LEVEL_SMALL_MAX) {
		for (size_t i = 0; i < k; i++)
			if ((kind[i] & ENT_EXACT) && !(kind[i] & ENT_LV1)) {
				pick[n++] = entries[i];
				kind[i] |= ENT_LV0;
			}
		if ((rc = dlevel_build(&out->lv[0], e, pick, n)) == 0 && cur->lv[1] && live[1])
			rc = plan_keep(out, cur, 1, repl[1], n_repl[1]);
	} else {
		for (size_t i = 0; i < k; i++) {
			kind[i] &= (uint8_t)~ENT_LV;
			if (kind[i] & ENT_EXACT) {
				pick[n++] = entries[i];
				kind[i] |= ENT_LV1;
			}
		}
		rc = dlevel_build(&out->lv[1], e, pick, n);
	}
	free(pick);
	if (rc)
		lvplan_clear(out);
	return rc;
}


static size_t rebuild_threshold(const view *v)
{
	size_t by_base = (allowd_snapshot_size(v->base) + allowd_snapshot_size(v->rx)) /
			 DELTA_REBUILD_RATIO;
	return by_base > DELTA_REBUILD_AT ? by_base : DELTA_REBUILD_AT;
}

static int apply_account(allowd_engine *e, account *a, const allowd_engine_change *changes,
			 size_t n)
{
	dentry **entries = NULL, **fresh = NULL;
	int64_t *ids = NULL, *repl[2] = {NULL, NULL};
	uint8_t *kind = NULL;
	size_t n_repl[2];
	lvplan plan;
	view *cur, *next = NULL;
	size_t k = 0, nf = 0;
	uint64_t seq_of_write = 0;
	int rc = 0;

	if (!a)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	if (!n)
		return 0;
	if (!(fresh = calloc(n, sizeof(*fresh))))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	/* the newest change per id wins; build entries outside the lock */
	for (size_t i = 0; i < n; i++) {
		dentry *d = calloc(1, sizeof(*d));
		if (!d || (changes[i].policy && allowd_policy_dup(&d->policy, changes[i].policy))) {
			free(d);
			rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
			goto out;
		}
		if (d->policy &&
		    (rc = allowd_snapshot_build(&d->one, &d->policy, 1, &e->delta_opts))) {
			allowd_policy_free(d->policy);
			free(d);
			goto out;
		}
		atomic_init(&d->refs, 1);
		d->id = changes[i].id;
		d->seq = atomic_fetch_add(&e->seq, 1) + 1;
		fresh[nf++] = d;
	}
	/* by id, newest last; then one entry per id, the newest */
	if (nf > 1) {
		size_t w = 0;
		uint64_t last_seq = fresh[nf - 1]->seq;
		qsort(fresh, nf, sizeof(*fresh), dentry_cmp);
		for (size_t j = 0; j < nf; j++) {
			if (j + 1 < nf && fresh[j + 1]->id == fresh[j]->id)
				dentry_unref(fresh[j]);
			else
				fresh[w++] = fresh[j];
		}
		nf = w;
		seq_of_write = last_seq;
	} else {
		seq_of_write = fresh[0]->seq;
	}

	/*
	 * Optimistic copy-on-write: build the next view from the current one
	 * outside the lock (evaluations keep running), publish it only if no
	 * rebuild swapped the view meanwhile, else start again from the new one.
	 */
	for (;;) {
		int published = 0;
		cur = current_view(a);
		k = 0;
		free(entries);
		free(ids);
		free(kind);
		free(repl[0]);
		free(repl[1]);
		ids = repl[0] = repl[1] = NULL;
		kind = NULL;
		n_repl[0] = n_repl[1] = 0;
		if (!(entries = malloc((cur->n + nf) * sizeof(*entries))) ||
		    !(ids = malloc((cur->n + nf) * sizeof(*ids))) ||
		    !(kind = malloc(cur->n + nf)) || !(repl[0] = malloc(nf * sizeof(int64_t))) ||
		    !(repl[1] = malloc(nf * sizeof(int64_t)))) {
			view_unref(cur);
			rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
			goto out;
		}
		/*
		 * Merge two id-sorted runs; a fresh entry replaces the current one.
		 * The current entries' ids and kinds come from the view's own arrays:
		 * a write reads only its fresh entries, not the whole delta.
		 */
		for (size_t i = 0, j = 0; i < cur->n || j < nf;) {
			if (j == nf || (i < cur->n && cur->shadow[i] < fresh[j]->id)) {
				ids[k] = cur->shadow[i];
				kind[k] = cur->kind[i];
				entries[k++] = cur->entries[i++];
			} else {
				if (i < cur->n && cur->shadow[i] == fresh[j]->id) {
					/* a level member replaced: shadowed in its level from now on */
					if (cur->kind[i] & ENT_LV0)
						repl[0][n_repl[0]++] = cur->shadow[i];
					if (cur->kind[i] & ENT_LV1)
						repl[1][n_repl[1]++] = cur->shadow[i];
					i++;
				}
				ids[k] = fresh[j]->id;
				kind[k] = dentry_kind(fresh[j]);
				entries[k++] = fresh[j++];
			}
		}
		if ((rc = plan_levels(e, entries, kind, k, cur, repl, n_repl, &plan))) {
			view_unref(cur);
			goto out;
		}
		rc = view_make(&next, cur->base, cur->rx, cur->rx_final, entries, ids, kind, k,
			       seq_of_write, &plan, NULL);
		lvplan_clear(&plan); /* what view_make did not take (on failure) */
		if (rc) {
			view_unref(cur);
			goto out;
		}
		pthread_mutex_lock(&a->lock);
		if (a->view == cur) {
			a->view = next;
			published = 1;
			if (k > rebuild_threshold(next))
				queue_rebuild(e, a);
		}
		pthread_mutex_unlock(&a->lock);
		if (published) {
			view_unref(cur); /* the account's reference */
			view_unref(cur); /* ours */
			break;
		}
		view_unref(next);
		view_unref(cur);
	}
out:
	free(entries);
	free(ids);
	free(kind);
	free(repl[0]);
	free(repl[1]);
	for (size_t j = 0; j < nf; j++)
		dentry_unref(fresh[j]);
	free(fresh);
	return rc;
}

int allowd_engine_load(allowd_engine *e, const char *account_id, allowd_policy *const *policies,
		       size_t n)
{
	account *a = get_account(e, account_id);
	int rc = load_account(e, a, policies, n);

	account_unref(a);
	return rc;
}

int allowd_engine_apply(allowd_engine *e, const char *account_id,
			const allowd_engine_change *changes, size_t n)
{
	account *a = get_account(e, account_id);
	int rc = apply_account(e, a, changes, n);

	account_unref(a);
	return rc;
}

void allowd_engine_drop_account(allowd_engine *e, const char *account_id)
{
	account *a = NULL;
	int found;
	long i;

	pthread_rwlock_wrlock(&e->map_lock);
	i = find_index(e, account_id, &found);
	if (found) {
		a = e->accounts[i];
		memmove(&e->accounts[i], &e->accounts[i + 1],
			(e->n_accounts - (size_t)i - 1) * sizeof(*e->accounts));
		e->n_accounts--;
	}
	pthread_rwlock_unlock(&e->map_lock);
	/*
	 * The map's reference: whoever found the account before (an evaluation,
	 * a write, a rebuild) keeps it alive until done; nobody can find it now.
	 */
	account_unref(a);
}

int allowd_engine_evaluate(allowd_engine *e, const char *account_id, const allowd_message *m,
			   allowd_decision *out)
{
	account *a = find_account(e, account_id);
	ematches ms;
	eprepared p;
	view *v;
	int rc;

	v = a ? current_view(a) : NULL;
	if ((rc = engine_prepare(&p, m, e->opts.subaddress_delimiter, v ? v->base : NULL))) {
		if (v)
			view_unref(v);
		account_unref(a);
		return rc;
	}
	ematches_init(&ms);
	if (v) {
		eshadow sh;
		sh.ids = v->shadow;
		sh.n = v->n;
		engine_collect(v->base, &p, &sh, &ms);
		engine_collect(v->rx, &p, &sh, &ms);
		for (int l = 0; l < 2; l++) {
			eshadow ls = {v->lv_shadow[l], v->lv_nshadow[l]};
			if (v->lv[l])
				engine_collect(v->lv[l]->s, &p, &ls, &ms);
		}
		for (size_t i = 0; i < v->n_singles; i++)
			engine_collect(v->singles[i]->one, &p, NULL, &ms);
		view_unref(v);
	}
	account_unref(a);
	rc = engine_decide(&p, &ms, out);
	ematches_free(&ms);
	engine_prepared_free(&p);
	return rc;
}

void allowd_engine_stats_get(allowd_engine *e, const char *account_id, allowd_engine_stats *out)
{
	account *a = find_account(e, account_id);
	memset(out, 0, sizeof(*out));
	if (a) {
		view *v = current_view(a);
		out->base_policies = allowd_snapshot_size(v->base) + allowd_snapshot_size(v->rx);
		out->delta_entries = v->n;
		out->delta_levels = (v->lv[0] != NULL) + (v->lv[1] != NULL);
		out->delta_singles = v->n_singles;
		view_unref(v);
		pthread_mutex_lock(&a->lock); /* the rebuild thread counts under it */
		out->rebuilds = a->rebuilds;
		pthread_mutex_unlock(&a->lock);
		account_unref(a);
	}
}

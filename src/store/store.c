/*
 * store.c - the public store API: picks a backend and dispatches to its
 * function table; also the helpers that release what the store returns,
 * the encoded-policy cache in front of policy reads (store/cache.h), and
 * the cross-process credentials generation.
 *
 * Every write function invalidates what it may have changed after the
 * backend returns (the write is durable then) and before its caller sees
 * the result, whatever the outcome: see store/cache.h for why that keeps
 * reads that start after an acknowledged write current.
 */
#include "allowd/store.h"
#include "allowd/error.h"
#include "allowd/log.h"
#include "store/cache.h"
#include "store/store_backend.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DEFAULT_CACHE_BYTES ((size_t)64 << 20)

/*
 * The page cache: recent list pages in encoded form, keyed by account and
 * every query parameter, direct-mapped.  A page is valid while the store's
 * list generation -- advanced after every policy write of any account,
 * creates included, before the write returns -- is the one read before the
 * page's read transaction began; so a list that starts after a write is
 * acknowledged never gets a page from before it.
 */
#define PAGE_SLOTS 256
#define PAGE_MAX_BYTES ((size_t)256 << 10) /* larger pages are not kept */

typedef struct page_slot {
	pthread_mutex_t lock;
	char *key;   /* NULL when empty */
	uint64_t gen;
	char *items; /* "[...]" */
	size_t len;
	int64_t count, total_count;
} page_slot;

struct allowd_store {
	const allowd_store_backend *be;
	void *impl;
	policy_cache *cache;
	_Atomic uint64_t list_gen;
	page_slot *pages; /* [PAGE_SLOTS] */
	void *credmap;             /* mapped "<path>-credgen", NULL when unavailable */
	_Atomic uint64_t *credgen; /* the counter in it */
};

/* Maps the shared credentials-generation counter next to the database. */
static void *map_credgen(const char *db_path)
{
	char path[4096];
	void *m;
	int fd, n = snprintf(path, sizeof(path), "%s-credgen", db_path);

	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return NULL;
	if (lseek(fd, 0, SEEK_END) < (off_t)sizeof(uint64_t) &&
	    ftruncate(fd, (off_t)sizeof(uint64_t)) != 0) {
		close(fd);
		return NULL;
	}
	m = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static void credentials_changed(allowd_store *s)
{
	if (s->credgen)
		atomic_fetch_add(s->credgen, 1);
}

static void pages_free(allowd_store *s)
{
	for (int i = 0; s->pages && i < PAGE_SLOTS; i++) {
		free(s->pages[i].key);
		free(s->pages[i].items);
		pthread_mutex_destroy(&s->pages[i].lock);
	}
	free(s->pages);
}

/* Called after every policy write (whatever its outcome), before it returns. */
static void policies_changed(allowd_store *s)
{
	atomic_fetch_add(&s->list_gen, 1);
}

/* Every parameter of a list query, as one string (malloc'ed; NULL on OOM). */
static char *page_key(const char *account_id, const allowd_list_query *q)
{
	const char *pattern = q->pattern ? q->pattern : "", *search = q->search ? q->search : "";
	size_t n = strlen(account_id) + strlen(pattern) + strlen(search) + 160;
	char *key = malloc(n);

	if (key && snprintf(key, n, "%s|%lld|%lld|%d|%d|%d|%d|%d|%d|%d|%d:%zu:%s|%d:%s", account_id,
			    (long long)q->page, (long long)q->per_page, q->pattern_type,
			    q->is_trusted_sender, q->is_acceptable_sender, q->is_exempt_recipient,
			    q->verify_sender, (int)q->order, (int)q->descending, q->pattern != NULL,
			    strlen(pattern), pattern, q->search != NULL, search) < 0) {
		free(key);
		return NULL;
	}
	return key;
}

static page_slot *page_slot_for(allowd_store *s, const char *key)
{
	uint32_t h = 2166136261u;
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &s->pages[h % PAGE_SLOTS];
}

int allowd_store_credentials_generation(allowd_store *s, uint64_t *out)
{
	if (!s->credgen)
		return ALLOWD_EUNAVAILABLE;
	*out = atomic_load(s->credgen);
	return 0;
}

int allowd_store_open(allowd_store **out, const allowd_store_options *opts)
{
	allowd_store *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	s->be = &allowd_store_sqlite;
	if (!(s->pages = calloc(PAGE_SLOTS, sizeof(*s->pages)))) {
		free(s);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	for (int i = 0; i < PAGE_SLOTS; i++)
		pthread_mutex_init(&s->pages[i].lock, NULL);
	if ((rc = policy_cache_new(&s->cache, opts->cache_bytes ? opts->cache_bytes
								 : DEFAULT_CACHE_BYTES))) {
		pages_free(s);
		free(s);
		return rc;
	}
	if ((rc = s->be->open(&s->impl, opts))) {
		policy_cache_free(s->cache);
		pages_free(s);
		free(s);
		return rc;
	}
	if ((s->credmap = map_credgen(opts->path)))
		s->credgen = s->credmap;
	else
		log_warn("store: cannot map %s-credgen: credential lookups will not be cached",
			 opts->path);
	*out = s;
	return 0;
}

void allowd_store_free(allowd_store *s)
{
	if (!s)
		return;
	s->be->close(s->impl);
	policy_cache_free(s->cache);
	pages_free(s);
	if (s->credmap)
		munmap(s->credmap, sizeof(uint64_t));
	free(s);
}

int allowd_store_schema_version(allowd_store *s)
{
	return s->be->schema_version(s->impl);
}

void allowd_list_query_init(allowd_list_query *q)
{
	memset(q, 0, sizeof(*q));
	q->page = 1;
	q->per_page = 20;
	q->pattern_type = ALLOWD_TRISTATE_ANY;
	q->is_trusted_sender = ALLOWD_TRISTATE_ANY;
	q->is_acceptable_sender = ALLOWD_TRISTATE_ANY;
	q->is_exempt_recipient = ALLOWD_TRISTATE_ANY;
	q->verify_sender = ALLOWD_TRISTATE_ANY;
	q->order = ALLOWD_ORDER_ID;
}

void allowd_policy_list_clear(allowd_policy_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		allowd_policy_free(l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

void allowd_batch_result_clear(allowd_batch_result *r)
{
	if (!r)
		return;
	free(r->deleted);
	allowd_policy_list_clear(&r->patched);
	allowd_policy_list_clear(&r->put);
	allowd_policy_list_clear(&r->posted);
	memset(r, 0, sizeof(*r));
}

void allowd_token_clear(allowd_token *t)
{
	if (!t)
		return;
	free(t->grants);
	free(t->ip_ranges);
	memset(t, 0, sizeof(*t));
}

void allowd_token_list_free(allowd_token *tokens, size_t n)
{
	for (size_t i = 0; tokens && i < n; i++)
		allowd_token_clear(&tokens[i]);
	free(tokens);
}

void allowd_user_list_free(allowd_user *users, size_t n)
{
	for (size_t i = 0; users && i < n; i++)
		allowd_user_clear(&users[i]);
	free(users);
}

void allowd_account_list_free(allowd_account *accounts, size_t n)
{
	for (size_t i = 0; accounts && i < n; i++)
		free(accounts[i].name);
	free(accounts);
}

void allowd_user_clear(allowd_user *u)
{
	if (!u)
		return;
	free(u->email);
	free(u->grants);
	memset(u, 0, sizeof(*u));
}

int allowd_store_policy_get(allowd_store *s, allowd_policy **out, const char *account_id,
			    int64_t id)
{
	return s->be->policy_get(s->impl, out, account_id, id);
}

int allowd_store_policy_get_encoded(allowd_store *s, char **out, size_t *len,
				    const char *account_id, int64_t id,
				    allowd_policy_encoder encode)
{
	allowd_policy *p = NULL;
	uint64_t ticket;
	char *bytes;
	int rc;

	if ((rc = policy_cache_get(s->cache, out, len, account_id, id)) == 1)
		return 0;
	if (rc)
		return rc;
	ticket = policy_cache_ticket(s->cache); /* before the read */
	if ((rc = s->be->policy_get(s->impl, &p, account_id, id)))
		return rc;
	if ((bytes = encode(p, len)))
		policy_cache_put(s->cache, ticket, account_id, id, p->modified_at, bytes, *len);
	allowd_policy_free(p);
	if (!bytes)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	*out = bytes;
	return 0;
}

struct encoded_list {
	allowd_store *s;
	const char *account_id;
	allowd_policy_encoder encode;
	uint64_t ticket;
	char *buf;
	size_t len, cap;
	int64_t count;
};

static int encode_row(void *ctx, const allowd_list_row *row)
{
	struct encoded_list *el = ctx;
	allowd_policy *p = NULL;
	char *bytes;
	size_t n;
	int rc;

	if ((rc = cache_buf_append(&el->buf, &el->len, &el->cap, el->count ? "," : "[", 1)))
		return rc;
	el->count++;
	rc = policy_cache_append(el->s->cache, &el->buf, &el->len, &el->cap, el->account_id,
				 row->id, row->version);
	if (rc)
		return rc == 1 ? 0 : rc;
	if ((rc = row->load(row, &p)))
		return rc;
	if (!(bytes = el->encode(p, &n))) {
		allowd_policy_free(p);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	policy_cache_put(el->s->cache, el->ticket, el->account_id, row->id, row->version, bytes, n);
	rc = cache_buf_append(&el->buf, &el->len, &el->cap, bytes, n);
	free(bytes);
	allowd_policy_free(p);
	return rc;
}

int allowd_store_policy_list_encoded(allowd_store *s, char **out, size_t *len, int64_t *count,
				     int64_t *total_count, const char *account_id,
				     const allowd_list_query *q, allowd_policy_encoder encode)
{
	struct encoded_list el = {s, account_id, encode, 0, NULL, 0, 0, 0};
	uint64_t gen = atomic_load(&s->list_gen); /* before the list's read transaction */
	char *key = page_key(account_id, q);
	page_slot *slot = key ? page_slot_for(s, key) : NULL;
	int rc;

	if (slot) {
		char *copy = NULL;
		pthread_mutex_lock(&slot->lock);
		if (slot->key && slot->gen == gen && strcmp(slot->key, key) == 0 &&
		    (copy = malloc(slot->len + 1))) {
			memcpy(copy, slot->items, slot->len + 1);
			*len = slot->len;
			*count = slot->count;
			*total_count = slot->total_count;
		}
		pthread_mutex_unlock(&slot->lock);
		if (copy) {
			free(key);
			*out = copy;
			return 0;
		}
	}

	el.ticket = policy_cache_ticket(s->cache); /* before the list's read transaction */
	if ((rc = s->be->policy_list_rows(s->impl, total_count, account_id, q, encode_row, &el)) ||
	    (rc = cache_buf_append(&el.buf, &el.len, &el.cap, el.count ? "]" : "[]",
				   el.count ? 1 : 2))) {
		free(el.buf);
		free(key);
		return rc;
	}
	if (slot && el.len <= PAGE_MAX_BYTES) {
		char *items = malloc(el.len + 1);
		if (items) {
			memcpy(items, el.buf, el.len + 1);
			pthread_mutex_lock(&slot->lock);
			free(slot->key);
			free(slot->items);
			slot->key = key;
			key = NULL;
			slot->gen = gen;
			slot->items = items;
			slot->len = el.len;
			slot->count = el.count;
			slot->total_count = *total_count;
			pthread_mutex_unlock(&slot->lock);
		}
	}
	free(key);
	*out = el.buf;
	*len = el.len;
	*count = el.count;
	return 0;
}

int allowd_store_policy_list(allowd_store *s, allowd_policy_list *out, const char *account_id,
			     const allowd_list_query *q)
{
	return s->be->policy_list(s->impl, out, account_id, q);
}

/* ---- policy writes ---------------------------------------------------- */

/*
 * A policy write in flight: what to invalidate once it is over, and whom
 * to tell.  Runs on the writer thread, after the commit and the hook.  The
 * ids come from the caller's arguments, borrowed until `done` returns.
 */
typedef struct pending_write {
	allowd_store *s;
	const char *account_id;
	int64_t id;            /* an edit's or delete's policy; 0 for creates and batches */
	const allowd_batch *b; /* a batch's ids */
	allowd_store_done done;
	void *ctx;
} pending_write;

/* A create needs no invalidation: a new id was never found, so never cached. */
static void write_over(void *ctx, int rc, const allowd_error *err)
{
	pending_write *pw = ctx;
	allowd_store *s = pw->s;
	const allowd_batch *b = pw->b;

	if (pw->id)
		policy_cache_invalidate(s->cache, pw->account_id, pw->id);
	for (size_t i = 0; b && i < b->n_deletes; i++)
		policy_cache_invalidate(s->cache, pw->account_id, b->deletes[i]);
	for (size_t i = 0; b && i < b->n_patches; i++)
		policy_cache_invalidate(s->cache, pw->account_id, b->patches[i].id);
	for (size_t i = 0; b && i < b->n_puts; i++)
		policy_cache_invalidate(s->cache, pw->account_id, b->puts[i].id);
	policies_changed(s);
	pw->done(pw->ctx, rc, err);
	free(pw);
}

static pending_write *pending_new(allowd_store *s, const char *account_id, int64_t id,
				  const allowd_batch *b, allowd_store_done done, void *ctx)
{
	pending_write *pw = malloc(sizeof(*pw));

	if (!pw) {
		allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		return NULL;
	}
	*pw = (pending_write){s, account_id, id, b, done, ctx};
	return pw;
}

/* rc from a backend's submission: on a refusal the pending write is ours to free. */
static int submitted(pending_write *pw, int rc)
{
	if (rc)
		free(pw);
	return rc;
}

int allowd_store_policy_create_async(allowd_store *s, const char *account_id, allowd_policy *p,
				     allowd_store_done done, void *ctx)
{
	pending_write *pw = pending_new(s, account_id, 0, NULL, done, ctx);
	if (!pw)
		return ALLOWD_ERR;
	return submitted(pw, s->be->policy_create(s->impl, account_id, p, write_over, pw));
}

int allowd_store_policy_update_async(allowd_store *s, allowd_policy **out,
				     const char *account_id, const allowd_policy_patch *patch,
				     allowd_store_done done, void *ctx)
{
	pending_write *pw = pending_new(s, account_id, patch->id, NULL, done, ctx);
	if (!pw)
		return ALLOWD_ERR;
	return submitted(pw,
			 s->be->policy_update(s->impl, out, account_id, patch, write_over, pw));
}

int allowd_store_policy_delete_async(allowd_store *s, const char *account_id, int64_t id,
				     allowd_store_done done, void *ctx)
{
	pending_write *pw = pending_new(s, account_id, id, NULL, done, ctx);
	if (!pw)
		return ALLOWD_ERR;
	return submitted(pw, s->be->policy_delete(s->impl, account_id, id, write_over, pw));
}

int allowd_store_batch_async(allowd_store *s, allowd_batch_result *out, const char *account_id,
			     const allowd_batch *b, allowd_store_done done, void *ctx)
{
	pending_write *pw = pending_new(s, account_id, 0, b, done, ctx);
	if (!pw)
		return ALLOWD_ERR;
	return submitted(pw, s->be->batch(s->impl, out, account_id, b, write_over, pw));
}

/*
 * The synchronous writes: the asynchronous ones and a wait.  The writer
 * signals under the waiter's lock and never touches it afterwards, so the
 * waiter may destroy it as soon as it sees `over`.
 */
typedef struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int over, rc;
	allowd_error err;
} waiter;

static void waiter_init(waiter *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->over = w->rc = 0;
}

static void waiter_done(void *ctx, int rc, const allowd_error *err)
{
	waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->rc = rc;
	if (rc)
		w->err = *err;
	w->over = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* rc: the submission's result.  Waits for the write and returns its result. */
static int waiter_wait(waiter *w, int rc)
{
	if (rc == 0) {
		pthread_mutex_lock(&w->lock);
		while (!w->over)
			pthread_cond_wait(&w->cond, &w->lock);
		pthread_mutex_unlock(&w->lock);
		if ((rc = w->rc))
			allowd_error_restore(&w->err);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	return rc;
}

int allowd_store_policy_create(allowd_store *s, const char *account_id, allowd_policy *p)
{
	waiter w;
	waiter_init(&w);
	return waiter_wait(&w, allowd_store_policy_create_async(s, account_id, p, waiter_done, &w));
}

int allowd_store_policy_update(allowd_store *s, allowd_policy **out, const char *account_id,
			       const allowd_policy_patch *patch)
{
	waiter w;
	waiter_init(&w);
	return waiter_wait(&w, allowd_store_policy_update_async(s, out, account_id, patch,
								 waiter_done, &w));
}

int allowd_store_policy_delete(allowd_store *s, const char *account_id, int64_t id)
{
	waiter w;
	waiter_init(&w);
	return waiter_wait(&w,
			   allowd_store_policy_delete_async(s, account_id, id, waiter_done, &w));
}

int allowd_store_batch(allowd_store *s, allowd_batch_result *out, const char *account_id,
		       const allowd_batch *b)
{
	waiter w;
	waiter_init(&w);
	return waiter_wait(&w, allowd_store_batch_async(s, out, account_id, b, waiter_done, &w));
}

int allowd_store_account_create(allowd_store *s, const char *id, const char *name)
{
	int rc = s->be->account_create(s->impl, id, name);
	credentials_changed(s);
	return rc;
}

int allowd_store_account_exists(allowd_store *s, const char *id)
{
	return s->be->account_exists(s->impl, id);
}

int allowd_store_account_count(allowd_store *s, int64_t *out)
{
	return s->be->account_count(s->impl, out);
}

int allowd_store_token_create(allowd_store *s, const allowd_token *t,
			      const unsigned char hash[ALLOWD_HASH_LEN])
{
	int rc = s->be->token_create(s->impl, t, hash);
	credentials_changed(s);
	return rc;
}

int allowd_store_token_find(allowd_store *s, allowd_token *out,
			    const unsigned char hash[ALLOWD_HASH_LEN])
{
	return s->be->token_find(s->impl, out, hash);
}

int allowd_store_user_create(allowd_store *s, const char *email,
			     const unsigned char key_hash[ALLOWD_HASH_LEN])
{
	int rc = s->be->user_create(s->impl, email, key_hash);
	credentials_changed(s);
	return rc;
}

int allowd_store_user_find(allowd_store *s, allowd_user *out, const char *email)
{
	return s->be->user_find(s->impl, out, email);
}

int allowd_store_membership_set(allowd_store *s, const char *email, const char *account_id,
				allowd_perm role)
{
	int rc = s->be->membership_set(s->impl, email, account_id, role);
	credentials_changed(s);
	return rc;
}

int allowd_store_account_list(allowd_store *s, allowd_account **out, size_t *n)
{
	return s->be->account_list(s->impl, out, n);
}

int allowd_store_account_delete(allowd_store *s, const char *id)
{
	int rc = s->be->account_delete(s->impl, id);
	policy_cache_invalidate_all(s->cache);
	policies_changed(s);
	credentials_changed(s);
	return rc;
}

int allowd_store_token_list(allowd_store *s, allowd_token **out, size_t *n)
{
	return s->be->token_list(s->impl, out, n);
}

int allowd_store_token_set_active(allowd_store *s, const char *id, bool active)
{
	int rc = s->be->token_set_active(s->impl, id, active);
	credentials_changed(s);
	return rc;
}

int allowd_store_token_delete(allowd_store *s, const char *id)
{
	int rc = s->be->token_delete(s->impl, id);
	credentials_changed(s);
	return rc;
}

void allowd_store_token_touch(allowd_store *s, const char *id, int64_t when)
{
	s->be->token_touch(s->impl, id, when);
}

int allowd_store_user_set_key(allowd_store *s, const char *email,
			      const unsigned char key_hash[ALLOWD_HASH_LEN])
{
	int rc = s->be->user_set_key(s->impl, email, key_hash);
	credentials_changed(s);
	return rc;
}

int allowd_store_user_delete(allowd_store *s, const char *email)
{
	int rc = s->be->user_delete(s->impl, email);
	credentials_changed(s);
	return rc;
}

int allowd_store_user_list(allowd_store *s, allowd_user **out, size_t *n)
{
	return s->be->user_list(s->impl, out, n);
}

int allowd_store_policy_scan(allowd_store *s, const char *account_id,
			     int (*fn)(void *ctx, allowd_policy *p), void *ctx)
{
	return s->be->policy_scan(s->impl, account_id, fn, ctx);
}

void allowd_store_set_hook(allowd_store *s, allowd_store_hook hook, void *ctx)
{
	s->be->set_hook(s->impl, hook, ctx);
}

/*
 * cache.c - the policy cache of src/store/cache.h: 64 shards, each a
 * chained hash table with an LRU list and a byte budget; one generation
 * for the whole cache, which every invalidation advances.
 */
#include "store/cache.h"
#include "allowd/error.h"
#include "allowd/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS  64
#define BUCKETS 1024 /* per shard */

typedef struct entry {
	struct entry *chain;       /* next in the bucket */
	struct entry *prev, *next; /* LRU: head is the most recent */
	uint32_t hash;
	int64_t id;
	int64_t version;
	char account[ALLOWD_ACCOUNT_ID_LEN + 1];
	size_t len;
	char bytes[]; /* len bytes, then a NUL */
} entry;

typedef struct shard {
	pthread_mutex_t lock;
	entry *buckets[BUCKETS];
	entry *head, *tail;
	size_t bytes, max_bytes;
} shard;

struct policy_cache {
	_Atomic uint64_t gen; /* advanced (under a shard lock) by every invalidation */
	shard shards[SHARDS];
};

int cache_buf_append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t ncap = *cap ? *cap : 256;
		char *nb;
		while (ncap < *len + n + 1)
			ncap *= 2;
		if (!(nb = realloc(*buf, ncap)))
			return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static uint32_t key_hash(const char *account_id, int64_t id)
{
	uint32_t h = 2166136261u;
	uint64_t v = (uint64_t)id;

	for (const char *p = account_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (int i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (unsigned char)(v & 0xff)) * 16777619u;
	return h;
}

static shard *shard_of(policy_cache *c, uint32_t h)
{
	return &c->shards[h % SHARDS];
}

static entry **slot_of(shard *s, uint32_t h, const char *account_id, int64_t id)
{
	entry **pp = &s->buckets[(h / SHARDS) % BUCKETS];

	for (; *pp; pp = &(*pp)->chain)
		if ((*pp)->hash == h && (*pp)->id == id && strcmp((*pp)->account, account_id) == 0)
			break;
	return pp;
}

static void lru_unlink(shard *s, entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(shard *s, entry *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head)
		s->head->prev = e;
	s->head = e;
	if (!s->tail)
		s->tail = e;
}

/* Unlinks and frees the entry at *pp. */
static void remove_at(shard *s, entry **pp)
{
	entry *e = *pp;

	*pp = e->chain;
	lru_unlink(s, e);
	s->bytes -= sizeof(*e) + e->len + 1;
	free(e);
}

/*
 * Removes `e`, an entry on the shard's LRU list (and so in its bucket).
 * False only if that invariant is broken; callers then stop rather than loop.
 */
static bool remove_entry(shard *s, const entry *e)
{
	entry **pp = slot_of(s, e->hash, e->account, e->id);

	if (!*pp)
		return false;
	remove_at(s, pp);
	return true;
}

int policy_cache_new(policy_cache **out, size_t max_bytes)
{
	policy_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	for (int i = 0; i < SHARDS; i++) {
		pthread_mutex_init(&c->shards[i].lock, NULL);
		c->shards[i].max_bytes = max_bytes / SHARDS;
	}
	*out = c;
	return 0;
}

void policy_cache_free(policy_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < SHARDS; i++) {
		shard *s = &c->shards[i];
		for (entry *e = s->head, *next; e; e = next) {
			next = e->next;
			free(e);
		}
		pthread_mutex_destroy(&s->lock);
	}
	free(c);
}

int policy_cache_get(policy_cache *c, char **out, size_t *len, const char *account_id, int64_t id)
{
	uint32_t h = key_hash(account_id, id);
	shard *s = shard_of(c, h);
	entry *e;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if ((e = *slot_of(s, h, account_id, id))) {
		char *copy = malloc(e->len + 1);
		if (copy) {
			memcpy(copy, e->bytes, e->len + 1);
			*out = copy;
			*len = e->len;
			lru_unlink(s, e);
			lru_push(s, e);
			rc = 1;
		} else {
			rc = ALLOWD_ERR;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (rc == ALLOWD_ERR)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	return rc;
}

int policy_cache_append(policy_cache *c, char **buf, size_t *len, size_t *cap,
                        const char *account_id, int64_t id, int64_t version)
{
	uint32_t h = key_hash(account_id, id);
	shard *s = shard_of(c, h);
	entry *e;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if ((e = *slot_of(s, h, account_id, id)) && e->version == version) {
		rc = cache_buf_append(buf, len, cap, e->bytes, e->len) ? ALLOWD_ERR : 1;
		if (rc == 1) {
			lru_unlink(s, e);
			lru_push(s, e);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

uint64_t policy_cache_ticket(policy_cache *c)
{
	return atomic_load(&c->gen);
}

void policy_cache_put(policy_cache *c, uint64_t ticket, const char *account_id, int64_t id,
                      int64_t version, const char *bytes, size_t len)
{
	uint32_t h = key_hash(account_id, id);
	shard *s = shard_of(c, h);
	size_t size = sizeof(entry) + len + 1;
	entry *e, **pp;

	if (size > s->max_bytes || strlen(account_id) > ALLOWD_ACCOUNT_ID_LEN ||
	    !(e = malloc(size)))
		return;
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->id = id;
	e->version = version;
	memcpy(e->account, account_id, strlen(account_id) + 1);
	e->len = len;
	memcpy(e->bytes, bytes, len);
	e->bytes[len] = '\0';

	pthread_mutex_lock(&s->lock);
	if (atomic_load(&c->gen) != ticket) { /* invalidated since the caller's read began */
		pthread_mutex_unlock(&s->lock);
		free(e);
		return;
	}
	if (*(pp = slot_of(s, h, account_id, id)))
		remove_at(s, pp);
	while (s->tail && s->bytes + size > s->max_bytes)
		if (!remove_entry(s, s->tail))
			break;
	e->chain = s->buckets[(h / SHARDS) % BUCKETS];
	s->buckets[(h / SHARDS) % BUCKETS] = e;
	lru_push(s, e);
	s->bytes += size;
	pthread_mutex_unlock(&s->lock);
}

void policy_cache_invalidate(policy_cache *c, const char *account_id, int64_t id)
{
	uint32_t h = key_hash(account_id, id);
	shard *s = shard_of(c, h);
	entry **pp;

	pthread_mutex_lock(&s->lock);
	atomic_fetch_add(&c->gen, 1);
	if (*(pp = slot_of(s, h, account_id, id)))
		remove_at(s, pp);
	pthread_mutex_unlock(&s->lock);
}

void policy_cache_invalidate_all(policy_cache *c)
{
	for (int i = 0; i < SHARDS; i++) {
		shard *s = &c->shards[i];
		pthread_mutex_lock(&s->lock);
		atomic_fetch_add(&c->gen, 1);
		while (s->head)
			if (!remove_entry(s, s->head))
				break;
		pthread_mutex_unlock(&s->lock);
	}
}

/*
 * cache.h - the store's read-through cache of each policy's encoded form
 * (private to src/store).  store.c fills it on a miss and invalidates it
 * after every write, before the write is acknowledged.
 *
 * Staleness rule: a reader takes a ticket (the cache's generation) BEFORE
 * it reads the policy from the database, and policy_cache_put() keeps the
 * bytes only if no invalidation happened since.  (The put happens while
 * holding a shard lock that every invalidation also takes, after the
 * generation check.)  A writer
 * invalidates after its commit.  So bytes read before a commit are either
 * refused (the invalidation came first) or removed by it (they came first),
 * and a read that starts after a write is acknowledged can only find bytes
 * read after the commit.
 *
 * Each entry also carries the version (modified_at) of the row it encodes:
 * a list, which reads rows inside one transaction, uses an entry only when
 * its version is the row's.
 *
 * Thread-safe: 64 shards, each under its own mutex.
 */
#ifndef ALLOWD_STORE_CACHE_H
#define ALLOWD_STORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct policy_cache policy_cache;

/* A cache holding at most about max_bytes of encoded policies (LRU per shard). */
int policy_cache_new(policy_cache **out, size_t max_bytes);
void policy_cache_free(policy_cache *c);

/*
 * On a hit, *out = a malloc'ed, NUL-terminated copy of the bytes (the
 * caller frees it), *len their length, and returns 1.  Returns 0 on a miss,
 * ALLOWD_ERR when out of memory.
 */
int policy_cache_get(policy_cache *c, char **out, size_t *len, const char *account_id, int64_t id);

/*
 * On a hit whose version is `version`, appends the bytes to the buffer
 * (see cache_buf_append) and returns 1; 0 on a miss; ALLOWD_ERR on OOM.
 */
int policy_cache_append(policy_cache *c, char **buf, size_t *len, size_t *cap,
                        const char *account_id, int64_t id, int64_t version);

/* The ticket to pass to policy_cache_put(); take it before reading the database. */
uint64_t policy_cache_ticket(policy_cache *c);

/* Keeps a copy of bytes[0..len) unless anything was invalidated since `ticket`. */
void policy_cache_put(policy_cache *c, uint64_t ticket, const char *account_id, int64_t id,
                      int64_t version, const char *bytes, size_t len);

/* Appends n bytes to a malloc'ed, NUL-terminated buffer; 0 or ALLOWD_ERR. */
int cache_buf_append(char **buf, size_t *len, size_t *cap, const void *p, size_t n);

/* Forgets one policy / every policy. */
void policy_cache_invalidate(policy_cache *c, const char *account_id, int64_t id);
void policy_cache_invalidate_all(policy_cache *c);

#endif

/*
 * ratelimit.c - sharded hash table of fixed windows.  Keys are hashed with
 * SipHash (libsodium crypto_shorthash) under a random key, so a client
 * cannot choose keys that collide.
 */
#include "allowd/ratelimit.h"
#include "allowd/error.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 16
#define BUCKETS_PER_SHARD 1024
#define KEY_MAX 512 /* longer keys are cut: no credential key comes close */

typedef struct entry {
	struct entry *next;
	int64_t window_start;
	int64_t count;
	char key[]; /* the whole key, compared in full */
} entry;

typedef struct shard {
	pthread_mutex_t lock;
	entry *buckets[BUCKETS_PER_SHARD];
	size_t live;
} shard;

struct allowd_ratelimit {
	int64_t limit, window_ms;
	size_t max_per_shard;
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
	shard shards[SHARDS];
};

int allowd_ratelimit_new(allowd_ratelimit **out, int64_t limit, int64_t window_ms,
			 size_t max_keys)
{
	allowd_ratelimit *r;

	if (sodium_init() < 0 || !(r = calloc(1, sizeof(*r))))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	r->limit = limit;
	r->window_ms = window_ms > 0 ? window_ms : 1;
	r->max_per_shard = max_keys / SHARDS + 1;
	randombytes_buf(r->hash_key, sizeof(r->hash_key));
	for (int i = 0; i < SHARDS; i++)
		pthread_mutex_init(&r->shards[i].lock, NULL);
	*out = r;
	return 0;
}

void allowd_ratelimit_free(allowd_ratelimit *r)
{
	if (!r)
		return;
	for (int i = 0; i < SHARDS; i++) {
		for (int b = 0; b < BUCKETS_PER_SHARD; b++) {
			entry *e = r->shards[i].buckets[b];
			while (e) {
				entry *next = e->next;
				free(e);
				e = next;
			}
		}
		pthread_mutex_destroy(&r->shards[i].lock);
	}
	free(r);
}

bool allowd_ratelimit_enabled(const allowd_ratelimit *r)
{
	return r && r->limit > 0;
}

/* Frees every entry of the shard whose window has ended. */
static void sweep(allowd_ratelimit *r, shard *sh, int64_t now)
{
	for (int b = 0; b < BUCKETS_PER_SHARD; b++) {
		entry **pp = &sh->buckets[b];
		while (*pp) {
			entry *e = *pp;
			if (now - e->window_start >= r->window_ms) {
				*pp = e->next;
				free(e);
				sh->live--;
			} else {
				pp = &e->next;
			}
		}
	}
}

void allowd_ratelimit_hit(allowd_ratelimit *r, const char *key, int64_t now, bool count,
			  allowd_ratelimit_state *out)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t hv;
	shard *sh;
	entry *e;
	size_t b;

	memset(out, 0, sizeof(*out));
	out->allowed = true;
	if (!allowd_ratelimit_enabled(r))
		return;
	out->limit = r->limit;
	crypto_shorthash(h, (const unsigned char *)key, strnlen(key, KEY_MAX), r->hash_key);
	memcpy(&hv, h, sizeof(hv));
	sh = &r->shards[hv % SHARDS];
	b = (size_t)((hv / SHARDS) % BUCKETS_PER_SHARD);

	pthread_mutex_lock(&sh->lock);
	for (e = sh->buckets[b]; e; e = e->next)
		if (strncmp(e->key, key, KEY_MAX) == 0)
			break;
	if (!e && count) {
		size_t klen = strnlen(key, KEY_MAX);
		if (sh->live >= r->max_per_shard)
			sweep(r, sh, now);
		if (sh->live < r->max_per_shard && (e = calloc(1, sizeof(*e) + klen + 1))) {
			memcpy(e->key, key, klen);
			e->window_start = now;
			e->next = sh->buckets[b];
			sh->buckets[b] = e;
			sh->live++;
		}
	}
	if (!e) {
		/* untracked (table full) or a peek at an unknown key: allow */
		out->remaining = r->limit;
		out->reset_ms = r->window_ms;
		pthread_mutex_unlock(&sh->lock);
		return;
	}
	if (now - e->window_start >= r->window_ms) {
		e->window_start = now;
		e->count = 0;
	}
	if (count && e->count < r->limit)
		e->count++;
	else if (count)
		out->allowed = false;
	if (!count && e->count >= r->limit)
		out->allowed = false;
	out->remaining = r->limit - e->count;
	out->reset_ms = e->window_start + r->window_ms - now;
	pthread_mutex_unlock(&sh->lock);
}

/*
 * store.h - durable storage of accounts, credentials and allow policies.
 *
 * One interface, several backends behind a function table
 * (src/store/store_backend.h): SQLite today, PostgreSQL next.  Every
 * function here is thread-safe.  A write returns only after it is durable
 * (it survives kill -9 and power loss as far as fsync allows); concurrent
 * writes share commits.
 *
 * Errors: ALLOWD_ENOTFOUND for an id not in the account, ALLOWD_EINVALID
 * and ALLOWD_EDUPLICATE for input rules that need the stored state,
 * ALLOWD_EUNAVAILABLE when the disk refuses a write, ALLOWD_ERR otherwise.
 */
#ifndef ALLOWD_STORE_H
#define ALLOWD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allowd/error.h"
#include "allowd/policy.h"

typedef struct allowd_store allowd_store;

typedef struct allowd_store_options {
	const char *path;   /* SQLite database file */
	int busy_timeout_ms; /* 0 = default (5000) */
	size_t cache_bytes;  /* encoded-policy cache budget; 0 = default (64 MiB) */
} allowd_store_options;

/* Opens (creating and migrating as needed) the store; free with allowd_store_free. */
int allowd_store_open(allowd_store **out, const allowd_store_options *opts);
void allowd_store_free(allowd_store *s);

/* Schema version the store is at (for tests and `allowctl`). */
int allowd_store_schema_version(allowd_store *s);

/* ---- allow policies ------------------------------------------------- */

typedef enum allowd_list_order {
	ALLOWD_ORDER_ID = 0,
	ALLOWD_ORDER_PATTERN,
	ALLOWD_ORDER_CREATED_AT,
} allowd_list_order;

#define ALLOWD_TRISTATE_ANY (-1)

typedef struct allowd_list_query {
	int64_t page;     /* >= 1 */
	int64_t per_page; /* 1..1000 */
	int pattern_type; /* allowd_pattern_type, or ALLOWD_TRISTATE_ANY */
	const char *pattern; /* exact match on the stored pattern, or NULL */
	const char *search;  /* case-insensitive substring of pattern or comments */
	int is_trusted_sender;    /* 0, 1 or ALLOWD_TRISTATE_ANY */
	int is_acceptable_sender;
	int is_exempt_recipient;
	int verify_sender;
	allowd_list_order order;
	bool descending;
} allowd_list_query;

/* Sets every filter to "any", page 1, 20 per page, ordered by id. */
void allowd_list_query_init(allowd_list_query *q);

typedef struct allowd_policy_list {
	allowd_policy **items; /* owned */
	size_t count;
	int64_t total_count;   /* all policies matching the filters */
} allowd_policy_list;

void allowd_policy_list_clear(allowd_policy_list *l);

/*
 * Validates and stores `p` (which must not have an id).  On success p->id,
 * created_at and modified_at are set.
 */
int allowd_store_policy_create(allowd_store *s, const char *account_id, allowd_policy *p);

int allowd_store_policy_get(allowd_store *s, allowd_policy **out, const char *account_id,
			    int64_t id);

/*
 * Turns a stored policy into bytes (malloc'ed, NUL-terminated; *len their
 * length), NULL when out of memory.  Must be a pure function of the policy.
 */
typedef char *(*allowd_policy_encoder)(const allowd_policy *p, size_t *len);

/*
 * A policy in its encoded form, from a read-through cache in front of
 * allowd_store_policy_get(): *out is a malloc'ed, NUL-terminated copy the
 * caller frees.  The store keeps one encoding per policy, so every caller
 * must pass the same `encode`.  The cache is invalidated by every write of
 * this store before that write returns, so a read that starts after a
 * write is acknowledged never sees the bytes of an older version.  (Writes
 * by other processes are not seen: policy writes go through the server.)
 */
int allowd_store_policy_get_encoded(allowd_store *s, char **out, size_t *len,
				    const char *account_id, int64_t id,
				    allowd_policy_encoder encode);

/* Applies the patch, validates the result and stores it; *out = the new policy. */
int allowd_store_policy_update(allowd_store *s, allowd_policy **out, const char *account_id,
			       const allowd_policy_patch *patch);

int allowd_store_policy_delete(allowd_store *s, const char *account_id, int64_t id);

int allowd_store_policy_list(allowd_store *s, allowd_policy_list *out, const char *account_id,
			     const allowd_list_query *q);

/*
 * allowd_store_policy_list() in encoded form: *out = "[e1,e2,...]" (a JSON
 * array when `encode` yields JSON values; malloc'ed, NUL-terminated, *len
 * bytes), *count the items on the page, *total_count as in the list.  Each
 * item comes from the cache of allowd_store_policy_get_encoded() when the
 * cached bytes are of the very version (modified_at) the list's read
 * transaction sees, and is encoded (and cached) otherwise; so the page is
 * one consistent snapshot, like allowd_store_policy_list().  Whole pages
 * are also kept (256 slots, pages up to 256 KiB) until the next policy
 * write of this store, creates included: a repeated query between writes
 * costs a copy.
 */
int allowd_store_policy_list_encoded(allowd_store *s, char **out, size_t *len, int64_t *count,
				     int64_t *total_count, const char *account_id,
				     const allowd_list_query *q, allowd_policy_encoder encode);

/*
 * A batch: deletes, then patches, then puts (full replacements keeping
 * created_at), then posts, in one transaction.  When one item fails nothing
 * is changed and the error's pointer names it ("/patches/3/pattern").
 */
typedef struct allowd_batch {
	const int64_t *deletes;
	size_t n_deletes;
	const allowd_policy_patch *patches;
	size_t n_patches;
	const allowd_policy_patch *puts; /* fields = ALLOWD_FIELDS_CREATE|COMMENTS */
	size_t n_puts;
	allowd_policy *const *posts;
	size_t n_posts;
} allowd_batch;

typedef struct allowd_batch_result {
	int64_t *deleted; /* ids, n_deletes of them */
	allowd_policy_list patched, put, posted;
} allowd_batch_result;

void allowd_batch_result_clear(allowd_batch_result *r);

int allowd_store_batch(allowd_store *s, allowd_batch_result *out, const char *account_id,
		       const allowd_batch *b);

/*
 * ---- asynchronous policy writes --------------------------------------
 *
 * Each policy write also comes in a form that does not wait for its group
 * commit, for servers that must not hold a thread per write in flight:
 *
 *  - it runs on the caller's thread what needs no database (the pattern
 *    checks and every rule but the duplicate check) and queues the write;
 *  - it returns 0 when the write was queued: done(ctx, rc, err) is then
 *    called exactly once, on the store's writer thread, at the point where
 *    the synchronous call would return -- after the COMMIT (rc 0: the
 *    write is durable), after the change hook and after this store's
 *    caches were invalidated -- or when the write failed (rc < 0 and err,
 *    borrowed for the call, the error the synchronous call would have left
 *    in the caller's slot: same code, message and pointer);
 *  - it returns an error code (this thread's error slot set) when the
 *    write was refused before it was queued (invalid input, the store
 *    shutting down, out of memory): then done is never called.
 *
 * Every argument (account_id, p, patch, b, out) is borrowed until done
 * returns; out and p are written by the writer thread before done is
 * called.  done must be quick (the writer commits the next group after it
 * returns) and must not call the store.  The synchronous functions above
 * are these plus a wait.
 */
typedef void (*allowd_store_done)(void *ctx, int rc, const allowd_error *err);

int allowd_store_policy_create_async(allowd_store *s, const char *account_id, allowd_policy *p,
				     allowd_store_done done, void *ctx);
int allowd_store_policy_update_async(allowd_store *s, allowd_policy **out,
				     const char *account_id, const allowd_policy_patch *patch,
				     allowd_store_done done, void *ctx);
int allowd_store_policy_delete_async(allowd_store *s, const char *account_id, int64_t id,
				     allowd_store_done done, void *ctx);
int allowd_store_batch_async(allowd_store *s, allowd_batch_result *out, const char *account_id,
			     const allowd_batch *b, allowd_store_done done, void *ctx);

/*
 * Streams every policy of an account, in id order, to fn (which takes
 * ownership of each policy).  A non-zero return from fn stops the scan and
 * is returned.  One read transaction: a consistent set.
 */
int allowd_store_policy_scan(allowd_store *s, const char *account_id,
			     int (*fn)(void *ctx, allowd_policy *p), void *ctx);

/* ---- change notification -------------------------------------------- */

typedef enum allowd_change_kind {
	ALLOWD_CHANGE_UPSERT = 1,     /* policy created or replaced */
	ALLOWD_CHANGE_DELETE,         /* policy deleted */
	ALLOWD_CHANGE_ACCOUNT_DELETE, /* account and all its policies deleted */
} allowd_change_kind;

typedef struct allowd_change {
	allowd_change_kind kind;
	const char *account_id;
	int64_t id;                  /* the policy's id (UPSERT, DELETE) */
	const allowd_policy *policy; /* the stored version (UPSERT); borrowed */
} allowd_change;

/*
 * Called with the changes of each successful write, after it is durable
 * and before the writer's caller is answered, in commit order, on the
 * store's writer thread -- so whatever the hook updates (the engine) is
 * current when a write is acknowledged.  The hook must be quick and must
 * not call back into the store's write functions.
 */
typedef void (*allowd_store_hook)(void *ctx, const allowd_change *changes, size_t n);
void allowd_store_set_hook(allowd_store *s, allowd_store_hook hook, void *ctx);

/* ---- accounts and credentials --------------------------------------- */

typedef enum allowd_perm {
	ALLOWD_PERM_NONE = 0,
	ALLOWD_PERM_READ = 1,
	ALLOWD_PERM_WRITE = 2,
} allowd_perm;

#define ALLOWD_ACCOUNT_ID_LEN 32
#define ALLOWD_HASH_LEN 32

int allowd_store_account_create(allowd_store *s, const char *id, const char *name);
/* 0 when the account exists, ALLOWD_ENOTFOUND otherwise. */
int allowd_store_account_exists(allowd_store *s, const char *id);
/* Number of accounts (used to detect a first start). */
int allowd_store_account_count(allowd_store *s, int64_t *out);

typedef struct allowd_account {
	char id[ALLOWD_ACCOUNT_ID_LEN + 1];
	char *name;
	int64_t created_at;
	int64_t policy_count;
} allowd_account;

int allowd_store_account_list(allowd_store *s, allowd_account **out, size_t *n);
void allowd_account_list_free(allowd_account *accounts, size_t n);
/* Deletes an account with its policies, token grants and memberships. */
int allowd_store_account_delete(allowd_store *s, const char *id);

typedef struct allowd_grant {
	char account_id[ALLOWD_ACCOUNT_ID_LEN + 1];
	allowd_perm perm;
} allowd_grant;

typedef struct allowd_token {
	char id[ALLOWD_ACCOUNT_ID_LEN + 1];
	bool active;
	int64_t not_before; /* ms, 0 = none */
	int64_t expires_on; /* ms, 0 = none */
	int64_t created_at; /* ms */
	int64_t last_used;  /* ms, 0 = never */
	char *ip_ranges;    /* comma-separated CIDRs; NULL or "" = any address */
	allowd_grant *grants;
	size_t n_grants;
} allowd_token;

void allowd_token_clear(allowd_token *t);

/* Every token, ordered by creation (*out: n tokens; free each with allowd_token_clear). */
int allowd_store_token_list(allowd_store *s, allowd_token **out, size_t *n);
void allowd_token_list_free(allowd_token *tokens, size_t n);
int allowd_store_token_set_active(allowd_store *s, const char *id, bool active);
/* Revokes (deletes) a token; ALLOWD_ENOTFOUND when there is none. */
int allowd_store_token_delete(allowd_store *s, const char *id);
/*
 * Records that a token was used at `when`.  Asynchronous and not durable:
 * it joins the next group commit without waiting for it.
 */
void allowd_store_token_touch(allowd_store *s, const char *id, int64_t when);

/* Stores a token whose secret hashes (keyed) to `hash`. */
int allowd_store_token_create(allowd_store *s, const allowd_token *t,
			      const unsigned char hash[ALLOWD_HASH_LEN]);
/* Finds the token whose secret hashes to `hash`; ALLOWD_ENOTFOUND when none. */
int allowd_store_token_find(allowd_store *s, allowd_token *out,
			    const unsigned char hash[ALLOWD_HASH_LEN]);

/*
 * The credentials generation: a counter, shared by every process that
 * opens the same database (a small mapped file next to it,
 * "<path>-credgen"), that advances after every write to accounts, tokens,
 * users or memberships, once that write is durable -- whichever process
 * (allowd, allowctl) made it.  A cache of credential lookups taken at
 * generation g is current while the generation is still g.  Returns 0, or
 * ALLOWD_EUNAVAILABLE when the counter file could not be mapped (then
 * nothing may be cached).
 */
int allowd_store_credentials_generation(allowd_store *s, uint64_t *out);

typedef struct allowd_user {
	char *email;
	unsigned char key_hash[ALLOWD_HASH_LEN];
	allowd_grant *grants; /* memberships: account and role */
	size_t n_grants;
} allowd_user;

void allowd_user_clear(allowd_user *u);

int allowd_store_user_create(allowd_store *s, const char *email,
			     const unsigned char key_hash[ALLOWD_HASH_LEN]);
/* Replaces a user's key hash (roll-key). */
int allowd_store_user_set_key(allowd_store *s, const char *email,
			      const unsigned char key_hash[ALLOWD_HASH_LEN]);
int allowd_store_user_delete(allowd_store *s, const char *email);
/* Every user with memberships (*out: n users; free with allowd_user_list_free). */
int allowd_store_user_list(allowd_store *s, allowd_user **out, size_t *n);
void allowd_user_list_free(allowd_user *users, size_t n);
int allowd_store_user_find(allowd_store *s, allowd_user *out, const char *email);
int allowd_store_membership_set(allowd_store *s, const char *email, const char *account_id,
				allowd_perm role);

#endif

/*
 * store_backend.h - the function table a storage backend implements.
 * store.c dispatches every public allowd_store_* call through it; each
 * backend lives in one file (store_sqlite.c, later store_pg.c).  The
 * contracts are those of include/allowd/store.h; `impl` is the backend's
 * own state.
 */
#ifndef ALLOWD_STORE_BACKEND_H
#define ALLOWD_STORE_BACKEND_H

#include "allowd/store.h"

/*
 * One row of a list page, handed to a policy_list_rows callback: the
 * policy's id and version (its modified_at, which every change advances),
 * and load(), which materialises the row (the caller frees the policy).
 * Valid only during the callback.
 */
typedef struct allowd_list_row {
	int64_t id;
	int64_t version;
	int (*load)(const struct allowd_list_row *row, allowd_policy **out);
	void *impl_row;
} allowd_list_row;

typedef struct allowd_store_backend {
	const char *name;
	int (*open)(void **out, const allowd_store_options *opts);
	void (*close)(void *impl);
	int (*schema_version)(void *impl);

	/*
	 * The policy writes are asynchronous only (the contract of the
	 * allowd_store_*_async functions, without the cache invalidation, which
	 * store.c does before it calls the caller's `done`); store.c builds the
	 * synchronous ones on them.
	 */
	int (*policy_create)(void *impl, const char *account_id, allowd_policy *p,
			     allowd_store_done done, void *ctx);
	int (*policy_get)(void *impl, allowd_policy **out, const char *account_id, int64_t id);
	int (*policy_update)(void *impl, allowd_policy **out, const char *account_id,
			     const allowd_policy_patch *patch, allowd_store_done done, void *ctx);
	int (*policy_delete)(void *impl, const char *account_id, int64_t id,
			     allowd_store_done done, void *ctx);
	int (*policy_list)(void *impl, allowd_policy_list *out, const char *account_id,
			   const allowd_list_query *q);
	int (*batch)(void *impl, allowd_batch_result *out, const char *account_id,
		     const allowd_batch *b, allowd_store_done done, void *ctx);
	/* policy_list, row by row: fn sees each row of the page in order, in one snapshot */
	int (*policy_list_rows)(void *impl, int64_t *total_count, const char *account_id,
				const allowd_list_query *q,
				int (*fn)(void *ctx, const allowd_list_row *row), void *ctx);

	int (*account_create)(void *impl, const char *id, const char *name);
	int (*account_exists)(void *impl, const char *id);
	int (*account_count)(void *impl, int64_t *out);
	int (*token_create)(void *impl, const allowd_token *t, const unsigned char *hash);
	int (*token_find)(void *impl, allowd_token *out, const unsigned char *hash);
	int (*user_create)(void *impl, const char *email, const unsigned char *key_hash);
	int (*user_find)(void *impl, allowd_user *out, const char *email);
	int (*membership_set)(void *impl, const char *email, const char *account_id,
			      allowd_perm role);
	int (*account_list)(void *impl, allowd_account **out, size_t *n);
	int (*account_delete)(void *impl, const char *id);
	int (*token_list)(void *impl, allowd_token **out, size_t *n);
	int (*token_set_active)(void *impl, const char *id, bool active);
	int (*token_delete)(void *impl, const char *id);
	void (*token_touch)(void *impl, const char *id, int64_t when);
	int (*user_set_key)(void *impl, const char *email, const unsigned char *key_hash);
	int (*user_delete)(void *impl, const char *email);
	int (*user_list)(void *impl, allowd_user **out, size_t *n);
	int (*policy_scan)(void *impl, const char *account_id, int (*fn)(void *, allowd_policy *),
			   void *ctx);
	void (*set_hook)(void *impl, allowd_store_hook hook, void *ctx);
} allowd_store_backend;

extern const allowd_store_backend allowd_store_sqlite;

#endif

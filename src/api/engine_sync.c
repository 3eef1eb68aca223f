/*
 * engine_sync.c - keeps the engine equal to the store: a start-up load of
 * every account, then the store's commit hook, which hands each durable
 * write to the engine before the write is acknowledged.
 */
#include "api/api.h"
#include "allowd/log.h"

#include <stdlib.h>
#include <string.h>

static int collect(void *ctx, allowd_policy *p)
{
	return allowd_policy_vec_push(ctx, p);
}

/*
 * Runs on the store's writer thread after each durable commit, with the
 * changes of every write of the commit in commit order.  Consecutive changes
 * of one account become one new view.
 */
static void on_commit(void *ctx, const allowd_change *changes, size_t n)
{
	allowd_engine *engine = ctx;
	allowd_engine_change local[64], *batch = local;
	size_t cap = sizeof(local) / sizeof(local[0]), i = 0;

	if (n > cap) {
		allowd_engine_change *v = malloc(n * sizeof(*v));
		if (v) { /* else: runs of at most 64, which is slower, not wrong */
			batch = v;
			cap = n;
		}
	}
	while (i < n) {
		const char *account = changes[i].account_id;
		size_t k = 0;
		if (changes[i].kind == ALLOWD_CHANGE_ACCOUNT_DELETE) {
			allowd_engine_drop_account(engine, account);
			i++;
			continue;
		}
		while (i < n && k < cap && changes[i].kind != ALLOWD_CHANGE_ACCOUNT_DELETE &&
		       strcmp(changes[i].account_id, account) == 0) {
			batch[k].id = changes[i].id;
			batch[k].policy =
				changes[i].kind == ALLOWD_CHANGE_UPSERT ? changes[i].policy : NULL;
			k++;
			i++;
		}
		if (allowd_engine_apply(engine, account, batch, k))
			log_error("engine: applying %zu changes to account %s failed: %s", k,
				  account, allowd_error_last()->message);
	}
	if (batch != local)
		free(batch);
}

int allowd_api_engine_attach(allowd_api *api)
{
	allowd_account *accounts = NULL;
	size_t n = 0;
	int rc;

	if ((rc = allowd_store_account_list(api->store, &accounts, &n)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		allowd_policy_vec l = {0};
		if ((rc = allowd_store_policy_scan(api->store, accounts[i].id, collect, &l)) == 0)
			rc = allowd_engine_load(api->engine, accounts[i].id, l.v, l.n);
		allowd_policy_vec_clear(&l);
	}
	allowd_account_list_free(accounts, n);
	if (rc == 0)
		allowd_store_set_hook(api->store, on_commit, api->engine);
	return rc;
}

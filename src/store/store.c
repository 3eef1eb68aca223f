/*
 * store.c - the public store API: picks a backend and dispatches to its
 * function table; also the helpers that release what the store returns.
 */
#include "allowd/store.h"
#include "allowd/error.h"
#include "store/store_backend.h"

#include <stdlib.h>
#include <string.h>

struct allowd_store {
	const allowd_store_backend *be;
	void *impl;
};

int allowd_store_open(allowd_store **out, const allowd_store_options *opts)
{
	allowd_store *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	s->be = &allowd_store_sqlite;
	if ((rc = s->be->open(&s->impl, opts))) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void allowd_store_free(allowd_store *s)
{
	if (!s)
		return;
	s->be->close(s->impl);
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

int allowd_store_policy_create(allowd_store *s, const char *account_id, allowd_policy *p)
{
	return s->be->policy_create(s->impl, account_id, p);
}

int allowd_store_policy_get(allowd_store *s, allowd_policy **out, const char *account_id,
			    int64_t id)
{
	return s->be->policy_get(s->impl, out, account_id, id);
}

int allowd_store_policy_update(allowd_store *s, allowd_policy **out, const char *account_id,
			       const allowd_policy_patch *patch)
{
	return s->be->policy_update(s->impl, out, account_id, patch);
}

int allowd_store_policy_delete(allowd_store *s, const char *account_id, int64_t id)
{
	return s->be->policy_delete(s->impl, account_id, id);
}

int allowd_store_policy_list(allowd_store *s, allowd_policy_list *out, const char *account_id,
			     const allowd_list_query *q)
{
	return s->be->policy_list(s->impl, out, account_id, q);
}

int allowd_store_batch(allowd_store *s, allowd_batch_result *out, const char *account_id,
		       const allowd_batch *b)
{
	return s->be->batch(s->impl, out, account_id, b);
}

int allowd_store_account_create(allowd_store *s, const char *id, const char *name)
{
	return s->be->account_create(s->impl, id, name);
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
	return s->be->token_create(s->impl, t, hash);
}

int allowd_store_token_find(allowd_store *s, allowd_token *out,
			    const unsigned char hash[ALLOWD_HASH_LEN])
{
	return s->be->token_find(s->impl, out, hash);
}

int allowd_store_user_create(allowd_store *s, const char *email,
			     const unsigned char key_hash[ALLOWD_HASH_LEN])
{
	return s->be->user_create(s->impl, email, key_hash);
}

int allowd_store_user_find(allowd_store *s, allowd_user *out, const char *email)
{
	return s->be->user_find(s->impl, out, email);
}

int allowd_store_membership_set(allowd_store *s, const char *email, const char *account_id,
				allowd_perm role)
{
	return s->be->membership_set(s->impl, email, account_id, role);
}

int allowd_store_account_list(allowd_store *s, allowd_account **out, size_t *n)
{
	return s->be->account_list(s->impl, out, n);
}

int allowd_store_account_delete(allowd_store *s, const char *id)
{
	return s->be->account_delete(s->impl, id);
}

int allowd_store_token_list(allowd_store *s, allowd_token **out, size_t *n)
{
	return s->be->token_list(s->impl, out, n);
}

int allowd_store_token_set_active(allowd_store *s, const char *id, bool active)
{
	return s->be->token_set_active(s->impl, id, active);
}

int allowd_store_token_delete(allowd_store *s, const char *id)
{
	return s->be->token_delete(s->impl, id);
}

void allowd_store_token_touch(allowd_store *s, const char *id, int64_t when)
{
	s->be->token_touch(s->impl, id, when);
}

int allowd_store_user_set_key(allowd_store *s, const char *email,
			      const unsigned char key_hash[ALLOWD_HASH_LEN])
{
	return s->be->user_set_key(s->impl, email, key_hash);
}

int allowd_store_user_delete(allowd_store *s, const char *email)
{
	return s->be->user_delete(s->impl, email);
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

/*
 * test_store.c - the store contract on the SQLite backend: CRUD, duplicate
 * detection, list filters and orders, all-or-nothing batches, concurrent
 * writers sharing commits, the asynchronous writes' completion contract,
 * credentials, and persistence across reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allowd/error.h"
#include "allowd/store.h"

#define ACC "0123456789abcdef0123456789abcdef"
#define OTHER "fedcba9876543210fedcba9876543210"

typedef struct fixture {
	char dir[64];
	char path[128];
	allowd_store *s;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	allowd_store_options o = {0};

	snprintf(f->dir, sizeof(f->dir), "/tmp/allowd-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	o.path = f->path;
	assert_int_equal(allowd_store_open(&f->s, &o), 0);
	assert_int_equal(allowd_store_account_create(f->s, ACC, "a"), 0);
	assert_int_equal(allowd_store_account_create(f->s, OTHER, "b"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[160];

	allowd_store_free(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static allowd_policy make(const char *pattern, allowd_pattern_type t)
{
	allowd_policy p;
	memset(&p, 0, sizeof(p));
	p.pattern = strdup(pattern);
	p.pattern_type = t;
	p.is_trusted_sender = true;
	return p;
}

static int64_t create(allowd_store *s, const char *acc, const char *pattern, allowd_pattern_type t)
{
	allowd_policy p = make(pattern, t);
	int64_t id;
	assert_int_equal(allowd_store_policy_create(s, acc, &p), 0);
	id = p.id;
	allowd_policy_clear(&p);
	return id;
}

static void create_sets_id_and_timestamps(void **state)
{
	fixture *f = *state;
	allowd_policy p = make("User@Example.com", ALLOWD_PATTERN_EMAIL), *got = NULL;

	assert_int_equal(allowd_store_policy_create(f->s, ACC, &p), 0);
	assert_true(p.id > 0);
	assert_true(p.created_at > 0);
	assert_int_equal(p.created_at, p.modified_at);
	assert_string_equal(p.pattern_norm, "user@example.com");
	assert_int_equal(allowd_store_policy_get(f->s, &got, ACC, p.id), 0);
	assert_string_equal(got->pattern, "User@Example.com");
	assert_null(got->comments);
	assert_true(got->is_trusted_sender);
	allowd_policy_free(got);
	allowd_policy_clear(&p);
}

static void invalid_policy_is_rejected_and_not_stored(void **state)
{
	fixture *f = *state;
	allowd_policy p = make("not an address", ALLOWD_PATTERN_EMAIL);
	allowd_policy_list l;
	allowd_list_query q;

	assert_int_equal(allowd_store_policy_create(f->s, ACC, &p), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/pattern");
	allowd_policy_clear(&p);
	allowd_list_query_init(&q);
	assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
	assert_int_equal(l.total_count, 0);
	allowd_policy_list_clear(&l);
}

static void duplicate_names_existing_id(void **state)
{
	fixture *f = *state;
	int64_t id = create(f->s, ACC, "example.com", ALLOWD_PATTERN_DOMAIN);
	allowd_policy p = make("EXAMPLE.com.", ALLOWD_PATTERN_DOMAIN);
	char want[64];

	assert_int_equal(allowd_store_policy_create(f->s, ACC, &p), ALLOWD_EDUPLICATE);
	snprintf(want, sizeof(want), "(id %lld)", (long long)id);
	assert_non_null(strstr(allowd_error_last()->message, want));
	allowd_policy_clear(&p);
	/* the same pattern in another account is independent */
	create(f->s, OTHER, "example.com", ALLOWD_PATTERN_DOMAIN);
}

static void update_moves_modified_only(void **state)
{
	fixture *f = *state;
	int64_t id = create(f->s, ACC, "a@example.com", ALLOWD_PATTERN_EMAIL);
	allowd_policy *before = NULL, *after = NULL;
	allowd_policy_patch patch;

	assert_int_equal(allowd_store_policy_get(f->s, &before, ACC, id), 0);
	memset(&patch, 0, sizeof(patch));
	patch.id = id;
	patch.fields = ALLOWD_FIELD_COMMENTS;
	patch.v.comments = "note";
	assert_int_equal(allowd_store_policy_update(f->s, &after, ACC, &patch), 0);
	assert_string_equal(after->comments, "note");
	assert_string_equal(after->pattern, "a@example.com");
	assert_int_equal(after->created_at, before->created_at);
	assert_true(after->modified_at > before->modified_at);
	allowd_policy_free(before);
	allowd_policy_free(after);
}

static void update_validates_the_merged_policy(void **state)
{
	fixture *f = *state;
	int64_t id = create(f->s, ACC, "example.org", ALLOWD_PATTERN_DOMAIN);
	allowd_policy_patch patch;
	allowd_policy *out = NULL;

	memset(&patch, 0, sizeof(patch));
	patch.id = id;
	patch.fields = ALLOWD_FIELD_IS_EXEMPT_RECIPIENT;
	patch.v.is_exempt_recipient = true;
	assert_int_equal(allowd_store_policy_update(f->s, &out, ACC, &patch), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/is_exempt_recipient");
	assert_null(out);
}

static void accounts_are_isolated(void **state)
{
	fixture *f = *state;
	int64_t id = create(f->s, ACC, "b@example.com", ALLOWD_PATTERN_EMAIL);
	allowd_policy *p = NULL;

	assert_int_equal(allowd_store_policy_get(f->s, &p, OTHER, id), ALLOWD_ENOTFOUND);
	assert_int_equal(allowd_store_policy_delete(f->s, OTHER, id), ALLOWD_ENOTFOUND);
	assert_int_equal(allowd_store_policy_get(f->s, &p, ACC, id), 0);
	allowd_policy_free(p);
}

static void deleted_ids_are_never_reused(void **state)
{
	fixture *f = *state;
	int64_t a = create(f->s, ACC, "c@example.com", ALLOWD_PATTERN_EMAIL);
	assert_int_equal(allowd_store_policy_delete(f->s, ACC, a), 0);
	assert_int_equal(allowd_store_policy_delete(f->s, ACC, a), ALLOWD_ENOTFOUND);
	assert_true(create(f->s, ACC, "c@example.com", ALLOWD_PATTERN_EMAIL) > a);
}

static void list_filters_orders_and_pages(void **state)
{
	fixture *f = *state;
	const char *names[] = {"d.example", "b.example", "c.example", "a.example", "e.example"};
	allowd_policy_list l;
	allowd_list_query q;

	for (int i = 0; i < 5; i++)
		create(f->s, ACC, names[i], ALLOWD_PATTERN_DOMAIN);
	create(f->s, ACC, "x@a.example", ALLOWD_PATTERN_EMAIL);

	allowd_list_query_init(&q);
	q.pattern_type = ALLOWD_PATTERN_DOMAIN;
	q.order = ALLOWD_ORDER_PATTERN;
	q.per_page = 2;
	q.page = 2;
	assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
	assert_int_equal(l.total_count, 5);
	assert_int_equal(l.count, 2);
	assert_string_equal(l.items[0]->pattern, "c.example");
	assert_string_equal(l.items[1]->pattern, "d.example");
	allowd_policy_list_clear(&l);

	q.descending = true;
	q.page = 1;
	assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
	assert_string_equal(l.items[0]->pattern, "e.example");
	allowd_policy_list_clear(&l);

	q.page = 4; /* past the end: empty, total still counted */
	assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
	assert_int_equal(l.count, 0);
	assert_int_equal(l.total_count, 5);
	allowd_policy_list_clear(&l);

	allowd_list_query_init(&q);
	q.search = "X@A"; /* case-insensitive substring */
	assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
	assert_int_equal(l.total_count, 1);
	assert_string_equal(l.items[0]->pattern, "x@a.example");
	allowd_policy_list_clear(&l);

	allowd_list_query_init(&q);
	q.search = "%"; /* LIKE metacharacters are literal */
	assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
	assert_int_equal(l.total_count, 0);
	allowd_policy_list_clear(&l);

	allowd_list_query_init(&q);
	q.is_acceptable_sender = 1;
	assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
	assert_int_equal(l.total_count, 0);
	allowd_policy_list_clear(&l);
}

static void batch_is_all_or_nothing(void **state)
{
	fixture *f = *state;
	int64_t keep = create(f->s, ACC, "keep@example.com", ALLOWD_PATTERN_EMAIL);
	allowd_policy good = make("new@example.com", ALLOWD_PATTERN_EMAIL);
	allowd_policy bad = make("10.0.0.1", ALLOWD_PATTERN_IP);
	allowd_policy *posts[2] = {&good, &bad};
	allowd_batch b = {.deletes = &keep, .n_deletes = 1, .posts = posts, .n_posts = 2};
	allowd_batch_result r;
	allowd_policy *p = NULL;

	assert_int_equal(allowd_store_batch(f->s, &r, ACC, &b), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/posts/1/pattern");
	assert_int_equal(allowd_store_policy_get(f->s, &p, ACC, keep), 0); /* delete undone */
	allowd_policy_free(p);

	b.n_posts = 1;
	assert_int_equal(allowd_store_batch(f->s, &r, ACC, &b), 0);
	assert_int_equal(r.deleted[0], keep);
	assert_int_equal(r.posted.count, 1);
	assert_string_equal(r.posted.items[0]->pattern, "new@example.com");
	allowd_batch_result_clear(&r);
	assert_int_equal(allowd_store_policy_get(f->s, &p, ACC, keep), ALLOWD_ENOTFOUND);
	allowd_policy_clear(&good);
	allowd_policy_clear(&bad);
}

static void batch_missing_delete_names_item(void **state)
{
	fixture *f = *state;
	int64_t ids[2] = {create(f->s, ACC, "z@example.com", ALLOWD_PATTERN_EMAIL), 999999};
	allowd_batch b = {.deletes = ids, .n_deletes = 2};
	allowd_batch_result r;

	assert_int_equal(allowd_store_batch(f->s, &r, ACC, &b), ALLOWD_ENOTFOUND);
	assert_string_equal(allowd_error_last()->pointer, "/deletes/1/id");
}

/* ---- asynchronous writes ---------------------------------------------- */

/* What a completion saw; the test thread waits on `cond` for it. */
typedef struct completion {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls, rc;
	int err_given; /* err was not NULL */
	allowd_error err;
	pthread_t thread;
} completion;

static void completion_init(completion *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

static void on_done(void *ctx, int rc, const allowd_error *err)
{
	completion *c = ctx;

	pthread_mutex_lock(&c->lock);
	c->calls++;
	c->rc = rc;
	c->err_given = err != NULL;
	if (err)
		c->err = *err;
	c->thread = pthread_self();
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void completion_wait(completion *c)
{
	pthread_mutex_lock(&c->lock);
	while (!c->calls)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

static void async_create_completes_on_the_writer_once_durable(void **state)
{
	fixture *f = *state;
	allowd_policy p = make("async@example.com", ALLOWD_PATTERN_EMAIL);
	allowd_policy *got = NULL;
	completion c;

	completion_init(&c);
	assert_int_equal(allowd_store_policy_create_async(f->s, ACC, &p, on_done, &c), 0);
	completion_wait(&c);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.rc, 0);
	assert_false(c.err_given);
	assert_false(pthread_equal(c.thread, pthread_self()));
	assert_true(p.id > 0);
	assert_int_equal(allowd_store_policy_get(f->s, &got, ACC, p.id), 0);
	assert_string_equal(got->pattern, "async@example.com");
	allowd_policy_free(got);
	allowd_policy_clear(&p);
}

/* Refused before it is queued: the error is the caller's, done is never called. */
static void async_write_refused_up_front_never_calls_done(void **state)
{
	fixture *f = *state;
	allowd_policy p = make("not an address", ALLOWD_PATTERN_EMAIL);
	completion c;

	completion_init(&c);
	assert_int_equal(allowd_store_policy_create_async(f->s, ACC, &p, on_done, &c),
			 ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/pattern");
	/* a later write completes, and this one's callback has still not run */
	create(f->s, ACC, "after@example.com", ALLOWD_PATTERN_EMAIL);
	pthread_mutex_lock(&c.lock);
	assert_int_equal(c.calls, 0);
	pthread_mutex_unlock(&c.lock);
	allowd_policy_clear(&p);
}

/* A failure in the writer reaches done with the error the synchronous call leaves. */
static void async_failure_carries_the_synchronous_error(void **state)
{
	fixture *f = *state;
	int64_t ids[2] = {create(f->s, ACC, "y@example.com", ALLOWD_PATTERN_EMAIL), 999999};
	allowd_batch b = {.deletes = ids, .n_deletes = 2};
	allowd_batch_result r;
	allowd_error sync;
	completion c;

	assert_int_equal(allowd_store_batch(f->s, &r, ACC, &b), ALLOWD_ENOTFOUND);
	sync = *allowd_error_last();
	allowd_error_clear();
	completion_init(&c);
	assert_int_equal(allowd_store_batch_async(f->s, &r, ACC, &b, on_done, &c), 0);
	completion_wait(&c);
	assert_int_equal(c.rc, ALLOWD_ENOTFOUND);
	assert_int_equal(c.err.code, sync.code);
	assert_string_equal(c.err.message, sync.message);
	assert_string_equal(c.err.pointer, "/deletes/1/id");
	assert_string_equal(c.err.pointer, sync.pointer);
	/* nothing of the batch was applied */
	allowd_policy *got = NULL;
	assert_int_equal(allowd_store_policy_get(f->s, &got, ACC, ids[0]), 0);
	allowd_policy_free(got);
}

struct writer_arg {
	allowd_store *s;
	int base;
	int64_t ids[50];
};

static void *writer(void *arg)
{
	struct writer_arg *w = arg;
	char pattern[64];
	for (int i = 0; i < 50; i++) {
		allowd_policy p;
		snprintf(pattern, sizeof(pattern), "w%d-%d@example.com", w->base, i);
		p = make(pattern, ALLOWD_PATTERN_EMAIL);
		if (allowd_store_policy_create(w->s, ACC, &p) != 0)
			w->ids[i] = -1;
		else
			w->ids[i] = p.id;
		allowd_policy_clear(&p);
	}
	return NULL;
}

static void concurrent_writers_all_succeed(void **state)
{
	fixture *f = *state;
	struct writer_arg args[8];
	pthread_t t[8];
	allowd_policy_list l;
	allowd_list_query q;

	for (int i = 0; i < 8; i++) {
		args[i].s = f->s;
		args[i].base = i;
		pthread_create(&t[i], NULL, writer, &args[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 50; j++)
			assert_true(args[i].ids[j] > 0);
	allowd_list_query_init(&q);
	assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
	assert_int_equal(l.total_count, 400);
	allowd_policy_list_clear(&l);
}

static void tokens_and_users_are_found_by_hash(void **state)
{
	fixture *f = *state;
	unsigned char h[ALLOWD_HASH_LEN], other[ALLOWD_HASH_LEN];
	allowd_grant g = {ACC, ALLOWD_PERM_READ};
	allowd_token t = {.id = "00000000000000000000000000000001", .active = true,
			  .grants = &g, .n_grants = 1};
	allowd_token got;
	allowd_user u;

	memset(h, 7, sizeof(h));
	memset(other, 8, sizeof(other));
	assert_int_equal(allowd_store_token_create(f->s, &t, h), 0);
	assert_int_equal(allowd_store_token_find(f->s, &got, h), 0);
	assert_string_equal(got.id, t.id);
	assert_int_equal(got.n_grants, 1);
	assert_int_equal(got.grants[0].perm, ALLOWD_PERM_READ);
	allowd_token_clear(&got);
	assert_int_equal(allowd_store_token_find(f->s, &got, other), ALLOWD_ENOTFOUND);

	assert_int_equal(allowd_store_user_create(f->s, "Ops@Example.com", other), 0);
	assert_int_equal(allowd_store_membership_set(f->s, "ops@example.com", ACC, ALLOWD_PERM_WRITE), 0);
	assert_int_equal(allowd_store_user_find(f->s, &u, "OPS@example.com"), 0);
	assert_memory_equal(u.key_hash, other, ALLOWD_HASH_LEN);
	assert_int_equal(u.n_grants, 1);
	assert_int_equal(u.grants[0].perm, ALLOWD_PERM_WRITE);
	allowd_user_clear(&u);
}

static void account_delete_cascades(void **state)
{
	fixture *f = *state;
	int64_t id = create(f->s, OTHER, "gone@example.com", ALLOWD_PATTERN_EMAIL);
	allowd_account *accs = NULL;
	allowd_policy *p = NULL;
	size_t n = 0;

	assert_int_equal(allowd_store_account_list(f->s, &accs, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(accs[1].id, OTHER);
	assert_int_equal(accs[1].policy_count, 1);
	allowd_account_list_free(accs, n);
	assert_int_equal(allowd_store_account_delete(f->s, OTHER), 0);
	assert_int_equal(allowd_store_account_delete(f->s, OTHER), ALLOWD_ENOTFOUND);
	assert_int_equal(allowd_store_account_exists(f->s, OTHER), ALLOWD_ENOTFOUND);
	assert_int_equal(allowd_store_policy_get(f->s, &p, OTHER, id), ALLOWD_ENOTFOUND);
}

static void token_lifecycle(void **state)
{
	fixture *f = *state;
	unsigned char h[ALLOWD_HASH_LEN];
	allowd_grant g = {ACC, ALLOWD_PERM_WRITE};
	allowd_token t = {.id = "000000000000000000000000000000aa", .active = true,
			  .ip_ranges = "192.0.2.0/24", .grants = &g, .n_grants = 1};
	allowd_token *list = NULL, got;
	size_t n = 0;

	memset(h, 3, sizeof(h));
	assert_int_equal(allowd_store_token_create(f->s, &t, h), 0);
	assert_int_equal(allowd_store_token_set_active(f->s, t.id, false), 0);
	allowd_store_token_touch(f->s, t.id, 12345);
	/* a synchronous write after the touch commits in the same or a later group */
	assert_int_equal(allowd_store_token_set_active(f->s, t.id, false), 0);
	assert_int_equal(allowd_store_token_list(f->s, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_false(list[0].active);
	assert_int_equal(list[0].last_used, 12345);
	assert_string_equal(list[0].ip_ranges, "192.0.2.0/24");
	assert_int_equal(list[0].n_grants, 1);
	allowd_token_list_free(list, n);
	assert_int_equal(allowd_store_token_delete(f->s, t.id), 0);
	assert_int_equal(allowd_store_token_find(f->s, &got, h), ALLOWD_ENOTFOUND);
	assert_int_equal(allowd_store_token_set_active(f->s, t.id, true), ALLOWD_ENOTFOUND);
}

static void user_lifecycle(void **state)
{
	fixture *f = *state;
	unsigned char h1[ALLOWD_HASH_LEN], h2[ALLOWD_HASH_LEN];
	allowd_user *users = NULL, u;
	size_t n = 0;

	memset(h1, 1, sizeof(h1));
	memset(h2, 2, sizeof(h2));
	assert_int_equal(allowd_store_user_create(f->s, "a@example.com", h1), 0);
	assert_int_equal(allowd_store_user_create(f->s, "A@example.com", h2), ALLOWD_EINVALID);
	assert_int_equal(allowd_store_membership_set(f->s, "a@example.com", ACC, ALLOWD_PERM_READ), 0);
	assert_int_equal(allowd_store_user_set_key(f->s, "a@example.com", h2), 0);
	assert_int_equal(allowd_store_user_find(f->s, &u, "a@example.com"), 0);
	assert_memory_equal(u.key_hash, h2, ALLOWD_HASH_LEN);
	allowd_user_clear(&u);
	assert_int_equal(allowd_store_user_list(f->s, &users, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(users[0].n_grants, 1);
	allowd_user_list_free(users, n);
	assert_int_equal(allowd_store_user_delete(f->s, "a@example.com"), 0);
	assert_int_equal(allowd_store_user_delete(f->s, "a@example.com"), ALLOWD_ENOTFOUND);
}

static void data_survives_reopen(void **state)
{
	fixture *f = *state;
	int64_t id = create(f->s, ACC, "persist@example.com", ALLOWD_PATTERN_EMAIL);
	allowd_store_options o = {.path = f->path};
	allowd_policy *p = NULL;

	allowd_store_free(f->s);
	assert_int_equal(allowd_store_open(&f->s, &o), 0);
	assert_int_equal(allowd_store_schema_version(f->s), 3);
	assert_int_equal(allowd_store_policy_get(f->s, &p, ACC, id), 0);
	assert_string_equal(p->pattern, "persist@example.com");
	allowd_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(create_sets_id_and_timestamps, setup, teardown),
		cmocka_unit_test_setup_teardown(invalid_policy_is_rejected_and_not_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(duplicate_names_existing_id, setup, teardown),
		cmocka_unit_test_setup_teardown(update_moves_modified_only, setup, teardown),
		cmocka_unit_test_setup_teardown(update_validates_the_merged_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(accounts_are_isolated, setup, teardown),
		cmocka_unit_test_setup_teardown(deleted_ids_are_never_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(list_filters_orders_and_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_is_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_missing_delete_names_item, setup, teardown),
		cmocka_unit_test_setup_teardown(async_create_completes_on_the_writer_once_durable,
						setup, teardown),
		cmocka_unit_test_setup_teardown(async_write_refused_up_front_never_calls_done, setup,
						teardown),
		cmocka_unit_test_setup_teardown(async_failure_carries_the_synchronous_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(concurrent_writers_all_succeed, setup, teardown),
		cmocka_unit_test_setup_teardown(tokens_and_users_are_found_by_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(account_delete_cascades, setup, teardown),
		cmocka_unit_test_setup_teardown(token_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(user_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(data_survives_reopen, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

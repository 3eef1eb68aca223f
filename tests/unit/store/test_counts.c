/*
 * test_counts.c - the list's total_count, which comes from the store's
 * per-(account, pattern_type, flags) counts: exact for every filter
 * combination after creates, edits that flip flags, deletes, batches that
 * commit or roll back, account deletes, and after the v2 -> v3 migration
 * backfills the counts of an existing database.  Each check compares the
 * store's answer with a recount of the account's policies.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "allowd/error.h"
#include "allowd/store.h"

#define ACC   "0123456789abcdef0123456789abcdef"
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

	snprintf(f->dir, sizeof(f->dir), "/tmp/allowd-counts-XXXXXX");
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

/* Policy i of a varied set: every pattern type and many flag combinations. */
static allowd_policy varied(const char *tag, int i)
{
	static const char *const comments[] = {NULL, "needle in a comment", "plain"};
	allowd_policy p;
	char buf[96];

	memset(&p, 0, sizeof(p));
	p.pattern_type = (allowd_pattern_type)(1 + i % 3);
	if (p.pattern_type == ALLOWD_PATTERN_EMAIL)
		snprintf(buf, sizeof(buf), "%s-user%d@example.com", tag, i);
	else if (p.pattern_type == ALLOWD_PATTERN_DOMAIN)
		snprintf(buf, sizeof(buf), "%s-host%d.example.org", tag, i);
	else
		snprintf(buf, sizeof(buf), "8.8.%d.%d", (tag[0] + i / 250) % 250, i % 250);
	p.pattern = strdup(buf);
	p.is_trusted_sender = (i >> 1) & 1;
	p.is_acceptable_sender = (i >> 2) & 1;
	p.is_exempt_recipient = p.pattern_type == ALLOWD_PATTERN_EMAIL && ((i >> 3) & 1);
	p.verify_sender = (i >> 4) & 1;
	if (!p.is_trusted_sender && !p.is_acceptable_sender && !p.is_exempt_recipient)
		p.is_trusted_sender = true;
	if (comments[i % 3])
		p.comments = strdup(comments[i % 3]);
	return p;
}

static int64_t create_varied(allowd_store *s, const char *acc, const char *tag, int i)
{
	allowd_policy p = varied(tag, i);
	int64_t id;

	assert_int_equal(allowd_store_policy_create(s, acc, &p), 0);
	id = p.id;
	allowd_policy_clear(&p);
	return id;
}

/* ---- the recount ------------------------------------------------------ */

typedef struct snapshot {
	allowd_policy **v;
	size_t n, cap;
} snapshot;

static int collect(void *ctx, allowd_policy *p)
{
	snapshot *sn = ctx;
	if (sn->n == sn->cap) {
		sn->cap = sn->cap ? sn->cap * 2 : 64;
		sn->v = realloc(sn->v, sn->cap * sizeof(*sn->v));
		assert_non_null(sn->v);
	}
	sn->v[sn->n++] = p;
	return 0;
}

static void snapshot_free(snapshot *sn)
{
	for (size_t i = 0; i < sn->n; i++)
		allowd_policy_free(sn->v[i]);
	free(sn->v);
}

static int matches(const allowd_policy *p, const allowd_list_query *q)
{
	const int want[4] = {q->is_trusted_sender, q->is_acceptable_sender, q->is_exempt_recipient,
	                     q->verify_sender};
	const int have[4] = {p->is_trusted_sender, p->is_acceptable_sender, p->is_exempt_recipient,
	                     p->verify_sender};

	if (q->pattern_type != ALLOWD_TRISTATE_ANY && (int)p->pattern_type != q->pattern_type)
		return 0;
	for (int i = 0; i < 4; i++)
		if (want[i] != ALLOWD_TRISTATE_ANY && want[i] != have[i])
			return 0;
	if (q->pattern && strcmp(p->pattern, q->pattern) != 0)
		return 0;
	if (q->search && !strcasestr(p->pattern, q->search) &&
	    !(p->comments && strcasestr(p->comments, q->search)))
		return 0;
	return 1;
}

static int64_t list_total(allowd_store *s, const char *acc, const allowd_list_query *q)
{
	allowd_policy_list l;
	int64_t total;

	assert_int_equal(allowd_store_policy_list(s, &l, acc, q), 0);
	total = l.total_count;
	allowd_policy_list_clear(&l);
	return total;
}

/*
 * For every pattern_type filter and every combination of the four flag
 * filters (absent, true, false), the list's total_count equals a recount;
 * returns the account's number of policies.
 */
static size_t assert_counts_exact(allowd_store *s, const char *acc)
{
	snapshot sn = {0};
	allowd_list_query q;
	size_t n;

	assert_int_equal(allowd_store_policy_scan(s, acc, collect, &sn), 0);
	for (int type = -1; type <= 3; type++)
		for (int combo = 0; combo < 81; combo++) {
			int v[4], c = combo;
			int64_t expect = 0;
			for (int k = 0; k < 4; k++, c /= 3)
				v[k] = c % 3 == 2 ? ALLOWD_TRISTATE_ANY : c % 3;
			allowd_list_query_init(&q);
			q.per_page = 1;
			q.pattern_type = type;
			q.is_trusted_sender = v[0];
			q.is_acceptable_sender = v[1];
			q.is_exempt_recipient = v[2];
			q.verify_sender = v[3];
			for (size_t i = 0; i < sn.n; i++)
				expect += matches(sn.v[i], &q);
			if (list_total(s, acc, &q) != expect)
				fail_msg(
				    "type %d flags %d/%d/%d/%d: total_count %lld, recount %lld",
				    type, v[0], v[1], v[2], v[3], (long long)list_total(s, acc, &q),
				    (long long)expect);
		}
	n = sn.n;
	snapshot_free(&sn);
	return n;
}

/* ---- tests ------------------------------------------------------------ */

static void counts_follow_creates_per_account(void **state)
{
	fixture *f = *state;

	for (int i = 0; i < 64; i++)
		create_varied(f->s, ACC, "a", i);
	for (int i = 0; i < 20; i++)
		create_varied(f->s, OTHER, "b", i);
	assert_int_equal(assert_counts_exact(f->s, ACC), 64);
	assert_int_equal(assert_counts_exact(f->s, OTHER), 20);
}

static void edits_that_flip_flags_move_the_counts(void **state)
{
	fixture *f = *state;
	int64_t ids[32];
	allowd_policy *out = NULL;

	for (int i = 0; i < 32; i++)
		ids[i] = create_varied(f->s, ACC, "e", i);
	for (int i = 0; i < 32; i += 3) {
		allowd_policy_patch patch;
		memset(&patch, 0, sizeof(patch));
		patch.id = ids[i];
		patch.fields = ALLOWD_FIELD_VERIFY_SENDER | ALLOWD_FIELD_IS_ACCEPTABLE_SENDER;
		patch.v.verify_sender = !((i >> 4) & 1);
		patch.v.is_acceptable_sender = true;
		assert_int_equal(allowd_store_policy_update(f->s, &out, ACC, &patch), 0);
		allowd_policy_free(out);
	}
	{ /* a change of pattern_type moves the policy between types */
		allowd_policy_patch patch;
		memset(&patch, 0, sizeof(patch));
		patch.id = ids[1]; /* a DOMAIN */
		patch.fields = ALLOWD_FIELD_PATTERN | ALLOWD_FIELD_PATTERN_TYPE;
		patch.v.pattern = strdup("moved@example.net");
		patch.v.pattern_type = ALLOWD_PATTERN_EMAIL;
		assert_int_equal(allowd_store_policy_update(f->s, &out, ACC, &patch), 0);
		allowd_policy_free(out);
		allowd_policy_clear(&patch.v);
	}
	{ /* an edit of the comments alone changes no count */
		allowd_policy_patch patch;
		memset(&patch, 0, sizeof(patch));
		patch.id = ids[2];
		patch.fields = ALLOWD_FIELD_COMMENTS;
		patch.v.comments = strdup("only the comment");
		assert_int_equal(allowd_store_policy_update(f->s, &out, ACC, &patch), 0);
		allowd_policy_free(out);
		allowd_policy_clear(&patch.v);
	}
	{ /* a failing edit changes nothing */
		allowd_policy_patch patch;
		memset(&patch, 0, sizeof(patch));
		patch.id = ids[4];
		patch.fields = ALLOWD_FIELD_IS_TRUSTED_SENDER | ALLOWD_FIELD_IS_ACCEPTABLE_SENDER |
		               ALLOWD_FIELD_IS_EXEMPT_RECIPIENT;
		assert_int_equal(allowd_store_policy_update(f->s, &out, ACC, &patch),
		                 ALLOWD_EINVALID);
	}
	assert_int_equal(assert_counts_exact(f->s, ACC), 32);
}

static void deletes_and_batches_keep_counts_exact(void **state)
{
	fixture *f = *state;
	int64_t ids[40];
	allowd_batch_result r;

	for (int i = 0; i < 40; i++)
		ids[i] = create_varied(f->s, ACC, "d", i);
	for (int i = 0; i < 40; i += 5)
		assert_int_equal(allowd_store_policy_delete(f->s, ACC, ids[i]), 0);
	assert_int_equal(allowd_store_policy_delete(f->s, ACC, ids[0]), ALLOWD_ENOTFOUND);
	assert_int_equal(assert_counts_exact(f->s, ACC), 32);

	/* a batch that commits: deletes, a patch that flips flags, a put, posts */
	{
		int64_t dels[2] = {ids[1], ids[2]};
		allowd_policy_patch patch, put;
		allowd_policy p0 = varied("bp", 100), p1 = varied("bp", 101);
		allowd_policy *posts[2] = {&p0, &p1};
		allowd_batch b;

		memset(&patch, 0, sizeof(patch));
		patch.id = ids[3];
		patch.fields = ALLOWD_FIELD_IS_TRUSTED_SENDER | ALLOWD_FIELD_VERIFY_SENDER;
		patch.v.is_trusted_sender = true;
		patch.v.verify_sender = true;
		memset(&put, 0, sizeof(put));
		put.id = ids[4];
		put.fields = ALLOWD_FIELDS_CREATE | ALLOWD_FIELD_COMMENTS;
		put.v = varied("put", 8);
		b = (allowd_batch){.deletes = dels,
		                   .n_deletes = 2,
		                   .patches = &patch,
		                   .n_patches = 1,
		                   .puts = &put,
		                   .n_puts = 1,
		                   .posts = posts,
		                   .n_posts = 2};
		assert_int_equal(allowd_store_batch(f->s, &r, ACC, &b), 0);
		allowd_batch_result_clear(&r);
		allowd_policy_clear(&put.v);
		allowd_policy_clear(&p0);
		allowd_policy_clear(&p1);
	}
	assert_int_equal(assert_counts_exact(f->s, ACC), 32);

	/* a batch whose last item fails: its deletes, patch and posts roll back */
	{
		int64_t dels[3] = {ids[6], ids[7], ids[8]};
		allowd_policy_patch patch;
		allowd_policy p0 = varied("rb", 200), bad = varied("rb", 201);
		allowd_policy *posts[2] = {&p0, &bad};
		allowd_batch b;

		memset(&patch, 0, sizeof(patch));
		patch.id = ids[9];
		patch.fields = ALLOWD_FIELD_IS_ACCEPTABLE_SENDER;
		patch.v.is_acceptable_sender = true;
		free(bad.pattern);
		bad.pattern = strdup("10.0.0.1"); /* private: invalid */
		bad.pattern_type = ALLOWD_PATTERN_IP;
		bad.is_exempt_recipient = false;
		bad.is_trusted_sender = true;
		b = (allowd_batch){.deletes = dels,
		                   .n_deletes = 3,
		                   .patches = &patch,
		                   .n_patches = 1,
		                   .posts = posts,
		                   .n_posts = 2};
		assert_int_equal(allowd_store_batch(f->s, &r, ACC, &b), ALLOWD_EINVALID);
		assert_string_equal(allowd_error_last()->pointer, "/posts/1/pattern");
		allowd_policy_clear(&p0);
		allowd_policy_clear(&bad);
	}
	assert_int_equal(assert_counts_exact(f->s, ACC), 32);
}

static void account_delete_drops_its_counts(void **state)
{
	fixture *f = *state;
	allowd_list_query q;

	for (int i = 0; i < 12; i++) {
		create_varied(f->s, ACC, "k", i);
		create_varied(f->s, OTHER, "o", i);
	}
	assert_int_equal(allowd_store_account_delete(f->s, OTHER), 0);
	allowd_list_query_init(&q);
	assert_int_equal(list_total(f->s, OTHER, &q), 0);
	assert_int_equal(assert_counts_exact(f->s, ACC), 12);
	/* the same id made again starts from zero */
	assert_int_equal(allowd_store_account_create(f->s, OTHER, "again"), 0);
	create_varied(f->s, OTHER, "n", 1);
	assert_int_equal(assert_counts_exact(f->s, OTHER), 1);
}

static void search_and_exact_pattern_totals_are_exact_across_pages(void **state)
{
	fixture *f = *state;
	allowd_list_query q;
	allowd_policy_list l;
	int64_t seen = 0;

	for (int i = 0; i < 45; i++)
		create_varied(f->s, ACC, "s", i);
	allowd_list_query_init(&q);
	q.search = "NEEDLE";
	q.per_page = 4;
	q.order = ALLOWD_ORDER_PATTERN;
	q.descending = true;
	for (q.page = 1;; q.page++) {
		assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
		assert_int_equal(l.total_count, 15); /* i % 3 == 1 */
		for (size_t i = 0; i < l.count; i++)
			assert_non_null(strstr(l.items[i]->comments, "needle"));
		if (l.count > 1)
			assert_true(strcmp(l.items[0]->pattern, l.items[1]->pattern) > 0);
		seen += (int64_t)l.count;
		allowd_policy_list_clear(&l);
		if (seen >= 15 || q.page > 10)
			break;
	}
	assert_int_equal(seen, 15);
	q.page++;
	assert_int_equal(allowd_store_policy_list(f->s, &l, ACC, &q), 0);
	assert_int_equal(l.count, 0);
	assert_int_equal(l.total_count, 15);
	allowd_policy_list_clear(&l);

	allowd_list_query_init(&q);
	q.pattern = "s-user3@example.com";
	q.order = ALLOWD_ORDER_CREATED_AT;
	assert_int_equal(list_total(f->s, ACC, &q), 1);
	q.is_trusted_sender = 0;
	assert_int_equal(list_total(f->s, ACC, &q), 0);
}

/* Turns the v3 database at `path` back into the v2 schema (same rows). */
static void downgrade_to_v2(const char *path)
{
	static const char *const sql =
	    "BEGIN;"
	    "DROP TRIGGER policies_count_insert;"
	    "DROP TRIGGER policies_count_delete;"
	    "DROP TRIGGER policies_count_update;"
	    "DROP TABLE policy_counts;"
	    "DROP INDEX policies_by_id;"
	    "DROP INDEX policies_by_pattern;"
	    "DROP INDEX policies_by_created;"
	    "DROP INDEX policies_by_type_pattern;"
	    "DROP INDEX policies_by_type_created;"
	    "CREATE INDEX policies_by_account ON policies (account_id);"
	    "CREATE INDEX policies_by_pattern ON policies (account_id, pattern, id);"
	    "CREATE INDEX policies_by_created ON policies (account_id, created_at, id);"
	    "CREATE INDEX policies_by_type_pattern ON policies (account_id, pattern_type, pattern, "
	    "id);"
	    "CREATE INDEX policies_by_type_created"
	    "  ON policies (account_id, pattern_type, created_at, id);"
	    "PRAGMA user_version = 2;"
	    "COMMIT;";
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("downgrade: %s", err);
	sqlite3_close(db);
}

static void migration_backfills_the_counts(void **state)
{
	fixture *f = *state;
	allowd_store_options o = {.path = f->path};
	int64_t first;

	first = create_varied(f->s, ACC, "m", 0);
	for (int i = 1; i < 50; i++)
		create_varied(f->s, ACC, "m", i);
	for (int i = 0; i < 7; i++)
		create_varied(f->s, OTHER, "x", i);
	assert_int_equal(allowd_store_policy_delete(f->s, ACC, first), 0);
	allowd_store_free(f->s);
	downgrade_to_v2(f->path);

	assert_int_equal(allowd_store_open(&f->s, &o), 0);
	assert_int_equal(allowd_store_schema_version(f->s), 3);
	assert_int_equal(assert_counts_exact(f->s, ACC), 49);
	assert_int_equal(assert_counts_exact(f->s, OTHER), 7);
	/* and the migrated store keeps counting */
	create_varied(f->s, ACC, "after", 3);
	assert_int_equal(assert_counts_exact(f->s, ACC), 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(counts_follow_creates_per_account, setup, teardown),
	    cmocka_unit_test_setup_teardown(edits_that_flip_flags_move_the_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(deletes_and_batches_keep_counts_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(account_delete_drops_its_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(search_and_exact_pattern_totals_are_exact_across_pages,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(migration_backfills_the_counts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_writes.c - the write path under concurrency: the pattern checks a
 * write needs (a regex's compile and cost probe) run on the requesting
 * client's thread, not on the store's single writer, so one client's costly
 * batch does not hold up everyone else's writes (docs/reliability.md, bug 8);
 * a check made before the write is queued never overrides what the writer
 * finds in the database; and policies that switch between exact patterns
 * and regexes are in effect at once, across the engine's background
 * rebuilds (which recompile the regexes only when a regex changed).
 */
#include "harness.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

static json_t *regex_policy(const char *pattern)
{
	return e2e_policy_obj(pattern, "EMAIL", true, true, false, false, false, NULL);
}

/*
 * Accepted by the create-time cost probe, but each costs tens of
 * milliseconds to check; (?#n) makes every pattern distinct.
 */
static char *quadratic_regex(int n)
{
	return e2e_strf(".*.*=.*(?#%d)", n);
}

/*
 * A slow request and the creates measured against it.  The slow request's
 * keep-alive connection is opened (with a cheap GET) before any create, and
 * the request itself is sent once every creator has had a create
 * acknowledged: from then on the creators' connections are new, each used
 * once, and none was accepted together with the slow one.  A create can
 * still wait for the slow request's handler when its connection happens to
 * be on the same libmicrohttpd thread at that moment (docs/reliability.md,
 * note B), whatever the store does; with CREATORS threads that is unlikely
 * to happen to all of them, and a stuck create is not counted (it is
 * answered after the slow request).  SETTLED_MS classifies creates, it waits
 * for nothing: only creates started that long after the slow request was
 * sent count, so none was queued in the store before it.
 */
#define SETTLED_MS 500
#define CREATORS   5

struct slow_request {
	e2e_server *s;
	const char *method, *path, *body;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int creators_ready;
	long sent_ms; /* 0 until sent; under lock */
	long status;
	long took_ms;
	int finished;
};

static void *send_slow_request(void *arg)
{
	struct slow_request *q = arg;
	e2e_client *c = e2e_client_new();
	e2e_request warm = {.path = q->s->policies, .client = c};
	e2e_request rq = {.method = q->method, .path = q->path, .body = q->body, .client = c};
	long sent, status = e2e_do(q->s, &warm)->status;

	if (status == 200) {
		pthread_mutex_lock(&q->lock);
		while (q->creators_ready < CREATORS)
			pthread_cond_wait(&q->cond, &q->lock);
		q->sent_ms = sent = e2e_now_ms();
		pthread_mutex_unlock(&q->lock);
		status = e2e_do(q->s, &rq)->status;
		q->took_ms = e2e_now_ms() - sent;
	}
	q->status = status;
	e2e_client_free(c);
	__atomic_store_n(&q->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct creator {
	e2e_server *s;
	struct slow_request *q;
	int id;
	int during, total, failed_status;
	long worst_ms;
};

static void *create_until_answered(void *arg)
{
	struct creator *k = arg;
	while (!__atomic_load_n(&k->q->finished, __ATOMIC_ACQUIRE)) {
		e2e_client *c = e2e_client_new();
		e2e_request rq = {
		    .method = "POST",
		    .path = k->s->policies,
		    .body = e2e_email_body(e2e_strf("other%d-%d@example.com", k->id, k->total)),
		    .client = c};
		long sent, t0 = e2e_now_ms();
		pthread_mutex_lock(&k->q->lock);
		sent = k->q->sent_ms;
		pthread_mutex_unlock(&k->q->lock);
		long status = e2e_do(k->s, &rq)->status;
		long t1 = e2e_now_ms();
		int unanswered = !__atomic_load_n(&k->q->finished, __ATOMIC_ACQUIRE);
		e2e_client_free(c);
		if (status != 201) {
			k->failed_status = (int)status;
			break;
		}
		if (k->total++ == 0) {
			pthread_mutex_lock(&k->q->lock);
			k->q->creators_ready++;
			pthread_cond_signal(&k->q->cond);
			pthread_mutex_unlock(&k->q->lock);
		}
		if (sent && unanswered && t0 - sent >= SETTLED_MS) {
			k->during++;
			if (t1 - t0 > k->worst_ms)
				k->worst_ms = t1 - t0;
		}
	}
	if (k->total == 0) { /* failed: never hold the slow request back */
		pthread_mutex_lock(&k->q->lock);
		k->q->creators_ready++;
		pthread_cond_signal(&k->q->cond);
		pthread_mutex_unlock(&k->q->lock);
	}
	return NULL;
}

/*
 * While `q` runs, CREATORS threads create one policy at a time on fresh
 * connections until `q` is answered.  Asserts that `q` succeeded, that
 * creates were acknowledged while it was still running, and that none of
 * them took more than a quarter of `q`'s time.  When the store's writer is
 * held by `q`, every create started after `q` was queued waits for it.
 */
static void creates_are_not_held_up_by(e2e_server *s, struct slow_request *q, const char *what)
{
	struct creator k[CREATORS];
	pthread_t t, ct[CREATORS];
	int during = 0, total = 0;
	long worst = 0;

	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	assert_int_equal(pthread_create(&t, NULL, send_slow_request, q), 0);
	for (int i = 0; i < CREATORS; i++) {
		k[i] = (struct creator){.s = s, .q = q, .id = i};
		assert_int_equal(pthread_create(&ct[i], NULL, create_until_answered, &k[i]), 0);
	}
	for (int i = 0; i < CREATORS; i++)
		pthread_join(ct[i], NULL);
	pthread_join(t, NULL);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	for (int i = 0; i < CREATORS; i++) {
		E2E_CHECK(k[i].failed_status == 0, "a create during %s: HTTP %d", what,
		          k[i].failed_status);
		during += k[i].during;
		total += k[i].total;
		if (k[i].worst_ms > worst)
			worst = k[i].worst_ms;
	}
	print_message("%s: HTTP %ld in %ld ms; %d creates, %d of them started %d ms or more "
	              "after it and acknowledged before it, the slowest in %ld ms\n",
	              what, q->status, q->took_ms, total, during, SETTLED_MS, worst);
	assert_int_equal(q->status, 200);
	E2E_CHECK(q->took_ms > 2 * SETTLED_MS, "%s took only %ld ms: nothing was measured", what,
	          q->took_ms);
	E2E_CHECK(during >= 3,
	          "only %d creates were acknowledged during %s (%ld ms): writes wait for it",
	          during, what, q->took_ms);
	E2E_CHECK(worst * 4 < q->took_ms,
	          "a create took %ld ms during %s (%ld ms): it waited for the batch's checks",
	          worst, what, q->took_ms);
}

static const char *const no_rate_limit[] = {"--rate-limit", "0", NULL};

E2E_TEST(a_batch_of_costly_regexes_does_not_hold_up_other_clients_creates)
{
	s = e2e_server_start(no_rate_limit);
	json_t *posts = e2e_keep(json_array());
	for (int i = 0; i < 100; i++)
		json_array_append(posts, regex_policy(quadratic_regex(i)));
	struct slow_request q = {.s = s,
	                         .method = "POST",
	                         .path = e2e_strf("%s/batch", s->policies),
	                         .body = e2e_batch_posts_body(posts)};
	creates_are_not_held_up_by(s, &q, "a batch posting 100 quadratic regexes");
	assert_true(E2E_TOTAL(s) >= 100 + 3);
}

E2E_TEST(a_batch_editing_patterns_into_costly_regexes_does_not_hold_up_other_clients_creates)
{
	s = e2e_server_start(no_rate_limit);
	json_t *posts = e2e_keep(json_array());
	for (int i = 0; i < 100; i++)
		json_array_append(posts, regex_policy(e2e_strf("cheap%d@.*", i)));
	json_t *made = E2E_ARR(E2E_BATCH(s, e2e_batch_posts_body(posts)), "posts");
	/* only the pattern changes: its type and is_regex come from the stored row */
	json_t *patches = e2e_keep(json_array());
	for (size_t i = 0; i < json_array_size(made); i++)
		json_array_append_new(patches, json_pack("{s:I,s:s}", "id",
		                                         E2E_INT(json_array_get(made, i), "id"),
		                                         "pattern", quadratic_regex((int)i)));
	json_t *body = e2e_keep(
	    json_pack("{s:[],s:O,s:[],s:[]}", "deletes", "patches", patches, "puts", "posts"));
	struct slow_request q = {.s = s,
	                         .method = "POST",
	                         .path = e2e_strf("%s/batch", s->policies),
	                         .body = e2e_dumps(body)};
	creates_are_not_held_up_by(s, &q, "a batch patching 100 patterns into quadratic regexes");
	json_t *first = E2E_FETCH(s, E2E_INT(json_array_get(made, 0), "id"));
	assert_string_equal(E2E_STR(first, "pattern"), quadratic_regex(0));
}

/* A PATCH that sets only the pattern is checked as the stored row's type: a regex here. */
E2E_TEST(a_patch_of_the_pattern_alone_is_checked_against_the_stored_type)
{
	json_int_t id = E2E_INT(E2E_CREATE(s, e2e_dumps(regex_policy("ok.*@example\\.com"))), "id");
	e2e_response *r =
	    e2e_send(s, "PATCH", "{\"pattern\":\"(a+)+$\"}", "%s/%lld", s->policies, (long long)id);
	json_t *err = E2E_ERR(r, 400, 0, "/pattern");
	E2E_CHECK(e2e_contains_ci(E2E_STR(err, "message"), "too costly"), "%s", e2e_dumps(err));
	r = e2e_send(s, "PATCH", "{\"pattern\":\"fine.*@example\\\\.com\"}", "%s/%lld", s->policies,
	             (long long)id);
	assert_string_equal(E2E_STR(E2E_OK(r, 200), "pattern"), "fine.*@example\\.com");
}

/*
 * The batch's patterns are checked before it is queued, against the rows as
 * they are then; an earlier item that changes the row's is_regex must make
 * the later item's pattern be judged by the new type, in both directions.
 */
E2E_TEST(an_earlier_item_of_a_batch_changes_how_a_later_pattern_is_checked)
{
	json_int_t rx = E2E_INT(E2E_CREATE(s, e2e_dumps(regex_policy("rx@example.com"))), "id");
	json_int_t em = E2E_INT(E2E_CREATE(s, e2e_email_body("em@example.com")), "id");
	json_t *before = E2E_LIST_ALL(s);

	/* valid as the stored regex, invalid once the first patch made it an address */
	char *body = e2e_strf("{\"deletes\":[],\"patches\":[{\"id\":%lld,\"is_regex\":false},"
	                      "{\"id\":%lld,\"pattern\":\"x[0-9]@example.com\"}],\"puts\":[],"
	                      "\"posts\":[]}",
	                      (long long)rx, (long long)rx);
	e2e_response *r = e2e_send(s, "POST", body, "%s/batch", s->policies);
	E2E_ERR(r, 400, 0, "/patches/1/pattern");
	E2E_JSON_EQ(before, E2E_LIST_ALL(s));

	/* invalid as the stored address, valid once the first patch made it a regex */
	body = e2e_strf("{\"deletes\":[],\"patches\":[{\"id\":%lld,\"is_regex\":true},"
	                "{\"id\":%lld,\"pattern\":\"e[mn]@example\\\\.com\"}],\"puts\":[],"
	                "\"posts\":[]}",
	                (long long)em, (long long)em);
	json_t *result = E2E_BATCH(s, body);
	json_t *patched = E2E_ARR(result, "patches");
	assert_int_equal(json_array_size(patched), 2);
	assert_string_equal(E2E_STR(json_array_get(patched, 1), "pattern"), "e[mn]@example\\.com");
	assert_true(E2E_BOOL(json_array_get(patched, 1), "is_regex"));
}

/* Items fail in order: a missing id before an invalid pattern checked up front. */
E2E_TEST(a_batch_reports_its_first_failing_item_even_when_a_later_pattern_is_invalid)
{
	char *body = "{\"deletes\":[{\"id\":999999}],\"patches\":[],\"puts\":[],"
	             "\"posts\":[{\"pattern\":\"(a+)+$\",\"pattern_type\":\"EMAIL\","
	             "\"is_regex\":true,\"is_trusted_sender\":true,\"is_acceptable_sender\":false,"
	             "\"is_exempt_recipient\":false,\"verify_sender\":false}]}";
	e2e_response *r = e2e_send(s, "POST", body, "%s/batch", s->policies);
	E2E_ERR(r, 400, 0, "/deletes/0/id");
}

/* ---- exact patterns and regexes across rebuilds ---------------------- */

/* Whether an evaluation of a message from `from` matches policy `id` on envelope_from. */
static bool matched_at(e2e_server *s, const char *from, json_int_t id, const char *file, int line)
{
	json_t *msg = e2e_keep(
	    json_pack("{s:s,s:[s]}", "envelope_from", from, "recipients", "nobody@rcpt.example"));
	e2e_response *r =
	    e2e_send(s, "POST", e2e_dumps(msg), "/allowd/v1/accounts/%s/evaluate", s->account_id);
	json_t *d = e2e_assert_ok_at(r, 200, file, line);
	json_t *ms = e2e_arr_at(d, "matches", file, line), *m;
	size_t i;
	int hits = 0;
	json_array_foreach(ms, i, m)
	{
		if (e2e_int_at(m, "policy_id", file, line) == id &&
		    strcmp(e2e_str_at(m, "field", file, line), "envelope_from") == 0)
			hits++;
	}
	if (hits > 1)
		e2e_fail_at(file, line, "policy %lld matched %d times: %s", (long long)id, hits,
		            r->body);
	return hits == 1;
}
#define MATCHED(s, from, id) matched_at((s), (from), (id), __FILE__, __LINE__)

static char *swap_body(int i, bool regex)
{
	json_t *o = regex ? regex_policy(e2e_strf("u%d@(swap|other)\\.example", i))
	                  : e2e_policy_obj(e2e_strf("u%d@swap.example", i), "EMAIL", false, true,
	                                   false, false, false, NULL);
	return e2e_dumps(o);
}

E2E_TEST(policies_switched_between_exact_and_regex_are_in_effect_across_rebuilds)
{
	enum { N = 30, ROUNDS = 8 };
	json_int_t ids[N];
	bool rx[N];

	for (int i = 0; i < N; i++) {
		rx[i] = i % 2;
		ids[i] = E2E_INT(E2E_CREATE(s, swap_body(i, rx[i])), "id");
		assert_true(MATCHED(s, e2e_strf("u%d@swap.example", i), ids[i]));
	}
	for (int round = 0; round < ROUNDS; round++) {
		/* new ids: the delta outgrows its 64 entries each round, so rebuilds run */
		json_t *fill = e2e_keep(json_array());
		for (int k = 0; k < 50; k++)
			json_array_append(
			    fill, e2e_policy_obj(e2e_strf("f%d-%d@fill.example", round, k), "EMAIL",
			                         false, true, false, false, false, NULL));
		E2E_BATCH(s, e2e_batch_posts_body(fill));
		/* meanwhile the rebuild folds the previous round's writes into the base */
		for (int i = 0; i < N; i++)
			E2E_CHECK(MATCHED(s, e2e_strf("u%d@swap.example", i), ids[i]),
			          "round %d: policy %lld (%s) is not in effect", round,
			          (long long)ids[i], rx[i] ? "a regex" : "exact");
		for (int i = 0; i < N; i++) {
			const char *from = e2e_strf("u%d@swap.example", i);
			rx[i] = !rx[i];
			const char *body =
			    rx[i] ? e2e_strf("{\"is_regex\":true,\"pattern\":\"u%d@(swap|other)"
			                     "\\\\.example\"}",
			                     i)
			          : e2e_strf(
			                "{\"is_regex\":false,\"pattern\":\"u%d@swap.example\"}", i);
			e2e_response *r =
			    e2e_send(s, "PATCH", body, "%s/%lld", s->policies, (long long)ids[i]);
			E2E_OK(r, 200);
			E2E_CHECK(MATCHED(s, from, ids[i]),
			          "round %d: policy %lld (%s, now %s) is not in effect", round,
			          (long long)ids[i], from, rx[i] ? "a regex" : "exact");
		}
		/* a delete, then the same address again as the other kind */
		int i = round % N;
		const char *from = e2e_strf("u%d@swap.example", i);
		E2E_OK(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)ids[i]), 200);
		E2E_CHECK(!MATCHED(s, from, ids[i]), "deleted policy %lld still matches",
		          (long long)ids[i]);
		rx[i] = !rx[i];
		ids[i] = E2E_INT(E2E_CREATE(s, swap_body(i, rx[i])), "id");
		assert_true(MATCHED(s, from, ids[i]));
	}
	for (int i = 0; i < N; i++)
		E2E_CHECK(MATCHED(s, e2e_strf("u%d@swap.example", i), ids[i]),
		          "policy %lld is not in effect at the end", (long long)ids[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE_BARE(a_batch_of_costly_regexes_does_not_hold_up_other_clients_creates),
	    E2E_CASE_BARE(
	        a_batch_editing_patterns_into_costly_regexes_does_not_hold_up_other_clients_creates),
	    E2E_CASE(a_patch_of_the_pattern_alone_is_checked_against_the_stored_type),
	    E2E_CASE(an_earlier_item_of_a_batch_changes_how_a_later_pattern_is_checked),
	    E2E_CASE(a_batch_reports_its_first_failing_item_even_when_a_later_pattern_is_invalid),
	    E2E_CASE(policies_switched_between_exact_and_regex_are_in_effect_across_rebuilds),
	};
	return cmocka_run_group_tests_name("e2e_writes", tests, NULL, NULL);
}

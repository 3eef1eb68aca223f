/*
 * test_durability.c - every acknowledged write survives SIGKILL (creates
 * from several threads at once, patches, deletes, batches), credentials
 * are written once and reused, ids are never reused across restarts, and
 * SIGTERM shuts down cleanly without losing acknowledged writes.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define THREADS    4
#define PER_THREAD 40

struct worker {
	e2e_server *s;
	int index;
	int max;           /* creates to attempt */
	int acked;         /* 201s received */
	json_t **policies; /* the acknowledged policies (borrowed from responses) */
	char error[512];   /* the first failure, "" when none */
	/* Shared with the main thread for the SIGTERM test. */
	pthread_mutex_t *lock;
	pthread_cond_t *progress;
	int *total_acked;
};

/* Creates policies until `max`, or until the first response that is not a 201. */
static void *create_loop(void *arg)
{
	struct worker *w = arg;
	e2e_client *c = e2e_client_new();
	for (int i = 0; i < w->max; i++) {
		char body[512];
		snprintf(body, sizeof(body),
		         "{\"pattern\":\"t%d-%d@example.com\",\"pattern_type\":\"EMAIL\","
		         "\"is_regex\":false,\"is_trusted_sender\":true,"
		         "\"is_acceptable_sender\":false,\"is_exempt_recipient\":false,"
		         "\"verify_sender\":true,\"comments\":\"thread %d\"}",
		         w->index, i, w->index);
		e2e_request rq = {
		    .method = "POST", .path = w->s->policies, .body = body, .client = c};
		e2e_response *r = e2e_do(w->s, &rq);
		json_t *result = json_object_get(r->json, "result");
		if (r->status != 201 || !json_is_integer(json_object_get(result, "id"))) {
			snprintf(w->error, sizeof(w->error), "create %d: HTTP %ld %s %s", i,
			         r->status, r->error ? r->error : "", r->body);
			break;
		}
		w->policies[w->acked++] = result;
		if (w->lock) {
			pthread_mutex_lock(w->lock);
			(*w->total_acked)++;
			pthread_cond_signal(w->progress);
			pthread_mutex_unlock(w->lock);
		}
	}
	e2e_client_free(c);
	return NULL;
}

static void start_workers(e2e_server *s, struct worker *w, pthread_t *t, int n, int max)
{
	for (int i = 0; i < n; i++) {
		w[i].s = s;
		w[i].index = i;
		w[i].max = max;
		w[i].policies = e2e_calloc((size_t)max, sizeof(json_t *));
		assert_int_equal(pthread_create(&t[i], NULL, create_loop, &w[i]), 0);
	}
}

/* Adds id → policy to `expected` (an object keyed by decimal id). */
static void expect_policy(json_t *expected, json_t *p)
{
	char key[32];
	snprintf(key, sizeof(key), "%lld", (long long)E2E_INT(p, "id"));
	json_object_set(expected, key, p);
}

/*
 * Every expected policy is present and equal, and at most `slack` others
 * exist (writes in flight when the server stopped, committed but never
 * acknowledged).
 */
static void assert_present_at(e2e_server *s, json_t *expected, size_t slack, const char *file,
                              int line)
{
	const char *key;
	json_t *want;
	json_object_foreach(expected, key, want)
	{
		json_int_t id = e2e_int_at(want, "id", file, line);
		e2e_response *r = e2e_get(s, "%s/%lld", s->policies, (long long)id);
		json_t *got = e2e_assert_ok_at(r, 200, file, line);
		e2e_assert_json_eq_at(got, want, file, line);
	}
	json_t *all = e2e_list_all_at(s, file, line);
	size_t n = json_array_size(all), acked = json_object_size(expected);
	if (n < acked || n > acked + slack)
		e2e_fail_at(file, line, "%zu policies listed, %zu acknowledged (slack %zu)", n,
		            acked, slack);
	if (e2e_total_at(s, file, line) != (json_int_t)n)
		e2e_fail_at(file, line, "total_count differs from the listed count %zu", n);
}

#define ASSERT_EXACTLY(s, expected) assert_present_at((s), (expected), 0, __FILE__, __LINE__)
#define ASSERT_PRESENT(s, expected, slack)                                                         \
	assert_present_at((s), (expected), (slack), __FILE__, __LINE__)

E2E_TEST(acknowledged_writes_survive_sigkill)
{
	json_t *expected = e2e_keep(json_object());
	struct worker w[THREADS] = {0};
	pthread_t t[THREADS];
	start_workers(s, w, t, THREADS, PER_THREAD);

	/* Meanwhile, on this thread: creates, patches, deletes and a batch. */
	json_int_t seq[40];
	for (int i = 0; i < 40; i++) {
		json_t *p = E2E_CREATE(s, e2e_email_body(e2e_strf("seq%d@example.com", i)));
		seq[i] = E2E_INT(p, "id");
		expect_policy(expected, p);
	}
	for (int i = 0; i < 10; i++) {
		char *body = e2e_strf("{\"comments\":\"patched %d\",\"verify_sender\":false}", i);
		json_t *p = E2E_OK(
		    e2e_send(s, "PATCH", body, "%s/%lld", s->policies, (long long)seq[i]), 200);
		expect_policy(expected, p);
	}
	for (int i = 30; i < 35; i++) {
		E2E_OK(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)seq[i]), 200);
		char key[32];
		snprintf(key, sizeof(key), "%lld", (long long)seq[i]);
		json_object_del(expected, key);
	}
	json_t *batch = E2E_CREATE_MANY(s, "batch", 50);
	size_t i;
	json_t *p;
	json_array_foreach(batch, i, p) expect_policy(expected, p);

	for (int k = 0; k < THREADS; k++) {
		pthread_join(t[k], NULL);
		E2E_CHECK(w[k].error[0] == '\0', "worker %d: %s", k, w[k].error);
		for (int j = 0; j < w[k].acked; j++)
			expect_policy(expected, w[k].policies[j]);
	}
	assert_int_equal(json_object_size(expected), 40 - 5 + 50 + THREADS * PER_THREAD);

	e2e_server_kill(s);
	e2e_server_restart(s);
	ASSERT_EXACTLY(s, expected);
}

E2E_TEST(sigterm_during_writes_loses_no_acknowledged_write)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t progress = PTHREAD_COND_INITIALIZER;
	int total = 0;
	struct worker w[THREADS] = {0};
	pthread_t t[THREADS];
	for (int k = 0; k < THREADS; k++) {
		w[k].lock = &lock;
		w[k].progress = &progress;
		w[k].total_acked = &total;
	}
	start_workers(s, w, t, THREADS, 400);

	pthread_mutex_lock(&lock);
	while (total < 20)
		pthread_cond_wait(&progress, &lock);
	pthread_mutex_unlock(&lock);
	e2e_server_stop(s); /* SIGTERM while the workers are still writing; exit status 0 */

	json_t *expected = e2e_keep(json_object());
	for (int k = 0; k < THREADS; k++) {
		pthread_join(t[k], NULL);
		for (int j = 0; j < w[k].acked; j++)
			expect_policy(expected, w[k].policies[j]);
	}
	E2E_CHECK(json_object_size(expected) >= 20, "only %zu writes acknowledged",
	          json_object_size(expected));
	e2e_server_restart(s);
	ASSERT_PRESENT(s, expected, THREADS);
}

E2E_TEST(sigterm_exits_zero_and_keeps_data)
{
	json_t *p = E2E_CREATE(s, E2E_SEED_BODY);
	e2e_server_stop(s);
	e2e_server_restart(s);
	E2E_JSON_EQ(E2E_FETCH(s, E2E_INT(p, "id")), p);
}

static bool all_of(const char *s, const char *set, size_t len)
{
	if (strlen(s) != len)
		return false;
	return strspn(s, set) == len;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	E2E_CHECK(f != NULL, "cannot open %s", path);
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return e2e_strf("%s", buf);
}

E2E_TEST(credentials_are_created_once_with_mode_0600)
{
	char *path = e2e_strf("%s/credentials.json", s->data_dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	E2E_CHECK((st.st_mode & 0777) == 0600, "credentials.json has mode %o, expected 600",
	          (unsigned)(st.st_mode & 0777));

	const char *hex = "0123456789abcdef";
	const char *token_chars =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
	E2E_CHECK(all_of(s->account_id, hex, 32), "account_id \"%s\" is not 32 lowercase hex",
	          s->account_id);
	E2E_CHECK(all_of(s->api_token, token_chars, 40), "api_token is not 40 [A-Za-z0-9_-]");
	E2E_CHECK(all_of(s->api_key, hex, 37), "api_key is not 37 lowercase hex");
	E2E_CHECK(strchr(s->email, '@') != NULL, "email \"%s\" has no @", s->email);

	json_t *creds = e2e_keep(json_load_file(path, 0, NULL));
	assert_int_equal(json_object_size(creds), 4);
}

E2E_TEST(credentials_are_reused_across_restarts)
{
	char *path = e2e_strf("%s/credentials.json", s->data_dir);
	char *first = read_file(path);
	char *token = e2e_strf("%s", s->api_token);
	E2E_CREATE(s, E2E_SEED_BODY);

	e2e_server_stop(s);
	e2e_server_restart(s);
	assert_string_equal(read_file(path), first);
	assert_string_equal(s->api_token, token);
	assert_int_equal(E2E_TOTAL(s), 1);

	e2e_server_kill(s);
	e2e_server_restart(s);
	assert_string_equal(read_file(path), first);
	e2e_request rq = {.method = "GET", .path = s->policies, .auth = E2E_AUTH_KEY};
	E2E_OK(e2e_do(s, &rq), 200);
}

E2E_TEST(ids_are_not_reused_after_restart)
{
	E2E_CREATE(s, e2e_email_body("a@example.com"));
	E2E_CREATE(s, e2e_email_body("b@example.com"));
	json_int_t last = E2E_INT(E2E_CREATE(s, e2e_email_body("c@example.com")), "id");
	E2E_OK(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)last), 200);

	e2e_server_kill(s);
	e2e_server_restart(s);
	json_int_t next = E2E_INT(E2E_CREATE(s, e2e_email_body("c@example.com")), "id");
	E2E_CHECK(next > last, "id %lld after restart, but %lld was already used", (long long)next,
	          (long long)last);

	E2E_OK(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)next), 200);
	e2e_server_stop(s);
	e2e_server_restart(s);
	json_int_t again = E2E_INT(E2E_CREATE(s, e2e_email_body("c@example.com")), "id");
	E2E_CHECK(again > next, "id %lld after restart, but %lld was already used",
	          (long long)again, (long long)next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE(acknowledged_writes_survive_sigkill),
	    E2E_CASE(sigterm_during_writes_loses_no_acknowledged_write),
	    E2E_CASE(sigterm_exits_zero_and_keeps_data),
	    E2E_CASE(credentials_are_created_once_with_mode_0600),
	    E2E_CASE(credentials_are_reused_across_restarts),
	    E2E_CASE(ids_are_not_reused_after_restart),
	};
	return cmocka_run_group_tests_name("e2e_durability", tests, NULL, NULL);
}

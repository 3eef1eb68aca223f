/*
 * test_suspend.c - a write waiting for its group commit does not hold its
 * HTTP thread (src/http/server.c suspends the connection until the store's
 * writer is done with it): with one server thread, reads on other
 * connections are answered while the writer is busy with a write, and many
 * more writes than threads are in flight at once, each acknowledged only
 * once it is durable.
 */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static const char *const one_thread[] = {"--threads", "1", "--rate-limit", "0", NULL};

/*
 * A batch that holds the store's writer for seconds while the HTTP thread
 * has almost nothing to do: item 0 makes the address policy `id` a regex,
 * and items 1..n give it quadratic regexes (accepted, ≈ 75 ms each to
 * check).  The pattern checks that run before the write is queued see the
 * stored row, an address, for which these patterns fail at once; the writer
 * finds a regex and checks each one itself (store_sqlite.c, "pattern
 * checks": a stale check costs time, never correctness).
 */
static char *writer_holding_batch(json_int_t id, int n)
{
	json_t *patches = e2e_keep(json_array());
	json_array_append_new(patches, json_pack("{s:I,s:b}", "id", id, "is_regex", 1));
	for (int i = 1; i <= n; i++)
		json_array_append_new(patches, json_pack("{s:I,s:s}", "id", id, "pattern",
		                                         e2e_strf(".*.*=.*(?#%d)", i)));
	return e2e_dumps(e2e_keep(
	    json_pack("{s:[],s:O,s:[],s:[]}", "deletes", "patches", patches, "puts", "posts")));
}

/*
 * One server thread: a GET on another connection is answered while a write
 * on that thread waits for the writer.  Before suspension, the thread sat in
 * the store until the batch was committed and every GET sent meanwhile
 * waited for it (docs/reliability.md, note B).
 */
/*
 * One round: the batch of n regexes on one connection, GETs on another until
 * the batch is answered.  Returns the batch's time; *during, *worst: GETs
 * answered before it, and the slowest of those.
 */
static long held_round(e2e_server *srv, json_int_t id, int n, int *during, long *worst)
{
	e2e_background h;
	e2e_client *c = e2e_client_new();
	e2e_request get = {.path = e2e_strf("%s/%lld", srv->policies, (long long)id), .client = c};
	int gets = 0;

	*during = 0;
	*worst = 0;
	E2E_CHECK(e2e_do(srv, &get)->status == 200, "the first GET failed");
	e2e_background_start(&h, srv,
	                     &(e2e_request){.method = "POST",
	                                    .path = e2e_strf("%s/batch", srv->policies),
	                                    .body = writer_holding_batch(id, n)});
	while (!e2e_background_done(&h)) {
		long t0 = e2e_now_ms();
		long status = e2e_do(srv, &get)->status;
		long took = e2e_now_ms() - t0;
		int unanswered = !e2e_background_done(&h);
		E2E_CHECK(status == 200, "GET during the batch: HTTP %ld", status);
		gets++;
		if (unanswered) {
			(*during)++;
			if (took > *worst)
				*worst = took;
		}
	}
	e2e_background_join(&h);
	e2e_client_free(c);
	print_message("batch of %d regexes held the writer: HTTP %ld in %ld ms; %d GETs on the "
	              "same server thread, %d answered before the batch, the slowest in %ld ms\n",
	              n, h.r->status, h.took_ms, gets, *during, *worst);
	assert_int_equal(h.r->status, 200);
	assert_string_equal(E2E_STR(E2E_FETCH(srv, id), "pattern"), e2e_strf(".*.*=.*(?#%d)", n));
	return h.took_ms;
}

/*
 * One server thread: a GET on another connection is answered while a write
 * on that thread waits for the writer.  Before suspension, the thread sat in
 * the store until the batch was committed and every GET sent meanwhile
 * waited for it (docs/reliability.md, note B).  The batch must hold the
 * writer for at least a second to measure anything; a fast machine gets a
 * bigger batch (30, 60, then 120 regexes).
 */
E2E_TEST(reads_on_the_same_thread_are_answered_while_a_write_waits_for_its_commit)
{
	s = e2e_server_start(one_thread);
	int during = 0;
	long worst = 0, took = 0;

	for (int n = 30; n <= 120 && took < 1000; n *= 2) {
		/* a fresh address policy each round: item 0 turns it into a regex */
		json_int_t id = E2E_INT(
		    E2E_CREATE(s, e2e_email_body(e2e_strf("held%d@example.com", n))), "id");
		took = held_round(s, id, n, &during, &worst);
	}
	E2E_CHECK(took >= 1000, "the batch took only %ld ms: nothing was measured", took);
	E2E_CHECK(during >= 10, "only %d GETs were answered during the batch (%ld ms)", during,
	          took);
	E2E_CHECK(worst * 4 < took,
	          "a GET took %ld ms during the batch (%ld ms): it waited for the commit", worst,
	          took);
}

#define CONCURRENT 32

struct creator {
	e2e_server *s;
	int i;
	pthread_mutex_t *lock;
	pthread_cond_t *go;
	int *ready, *start;
	long status;
	json_t *result; /* the acknowledged policy (test-owned via e2e_keep) */
};

static void *create_one(void *arg)
{
	struct creator *k = arg;
	e2e_client *c = e2e_client_new();
	e2e_request warm = {.path = "/healthz", .auth = E2E_AUTH_NONE, .client = c};
	e2e_request rq = {.method = "POST",
	                  .path = k->s->policies,
	                  .body = e2e_email_body(e2e_strf("many%d@example.com", k->i)),
	                  .client = c};
	e2e_response *r;

	e2e_do(k->s, &warm); /* connected before the creates start together */
	pthread_mutex_lock(k->lock);
	(*k->ready)++;
	pthread_cond_broadcast(k->go);
	while (!*k->start)
		pthread_cond_wait(k->go, k->lock);
	pthread_mutex_unlock(k->lock);
	r = e2e_do(k->s, &rq);
	k->status = r->status;
	if (r->json)
		k->result = json_object_get(r->json, "result");
	e2e_client_free(c);
	return NULL;
}

/*
 * One server thread, 32 creates at once: every one is acknowledged (201),
 * and every acknowledged one survives SIGKILL exactly as acknowledged.
 * Before suspension a thread held one write at a time, so at most
 * --threads writes shared a commit.
 */
E2E_TEST(many_more_concurrent_writes_than_threads_are_acknowledged_and_durable)
{
	s = e2e_server_start(one_thread);
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t go = PTHREAD_COND_INITIALIZER;
	int ready = 0, start = 0;
	struct creator k[CONCURRENT];
	pthread_t t[CONCURRENT];

	for (int i = 0; i < CONCURRENT; i++) {
		k[i] = (struct creator){.s = s, .i = i, .lock = &lock, .go = &go, .ready = &ready,
		                        .start = &start};
		assert_int_equal(pthread_create(&t[i], NULL, create_one, &k[i]), 0);
	}
	pthread_mutex_lock(&lock);
	while (ready < CONCURRENT)
		pthread_cond_wait(&go, &lock);
	start = 1;
	pthread_cond_broadcast(&go);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < CONCURRENT; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < CONCURRENT; i++) {
		E2E_CHECK(k[i].status == 201, "create %d: HTTP %ld", i, k[i].status);
		E2E_POLICY(k[i].result);
	}

	e2e_server_kill(s);
	e2e_server_restart(s);
	json_t *all = E2E_LIST_ALL(s);
	assert_int_equal(json_array_size(all), CONCURRENT);
	for (int i = 0; i < CONCURRENT; i++) {
		json_t *p = E2E_FETCH(s, E2E_INT(k[i].result, "id"));
		E2E_JSON_EQ(k[i].result, p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE_BARE(reads_on_the_same_thread_are_answered_while_a_write_waits_for_its_commit),
	    E2E_CASE_BARE(many_more_concurrent_writes_than_threads_are_acknowledged_and_durable),
	};
	return cmocka_run_group_tests_name("e2e_suspend", tests, NULL, NULL);
}

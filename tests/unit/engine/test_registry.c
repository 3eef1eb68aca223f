/*
 * test_registry.c - the server's engine (src/engine/registry.c): accounts
 * dropped and created again while other threads evaluate and write.
 *
 * Accounts are reference counted so that allowd_engine_drop_account never
 * frees one an evaluation, a write or a rebuild still uses.  The race test
 * below is what proves it: under ASan a freed account read by an evaluator
 * is a heap-use-after-free, under TSan an unsynchronised free is a race, and
 * the build without sanitizers still checks every decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "allowd/engine.h"

#define POLICY_ID 7
#define CYCLES 1500

static allowd_policy *policy(void)
{
	allowd_policy *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->id = POLICY_ID;
	p->pattern_type = ALLOWD_PATTERN_EMAIL;
	p->pattern = strdup("boss@example.com");
	p->pattern_norm = strdup("boss@example.com");
	p->is_trusted_sender = true;
	return p;
}

static void message(allowd_message *m)
{
	static const char *const rcpt[] = {"staff@corp.example"};

	memset(m, 0, sizeof(*m));
	m->envelope_from = "Boss@Example.com";
	m->recipients = rcpt;
	m->n_recipients = 1;
	m->client_ip = "192.0.2.1";
}

/*
 * 1: the decision is the policy's match; 0: no match; -1: anything else.
 * (No cmocka assertion here: the race test calls it from other threads.)
 */
static int check(const allowd_decision *d)
{
	if (d->n_matches == 0)
		return 0;
	if (d->n_matches == 1 && d->matches[0].policy_id == POLICY_ID &&
	    d->matches[0].field == ALLOWD_FIELD_ENVELOPE_FROM && d->n_recipients == 1 &&
	    d->recipients[0].waived == ALLOWD_DISP_VERDICTS)
		return 1;
	return -1;
}

static void dropped_account_has_no_policies_until_loaded_again(void **state)
{
	allowd_policy *p = policy();
	allowd_engine *e = NULL;
	allowd_message m;
	allowd_decision d;

	(void)state;
	message(&m);
	assert_int_equal(allowd_engine_new(&e, NULL), 0);
	assert_int_equal(allowd_engine_load(e, "acct", &p, 1), 0);
	assert_int_equal(allowd_engine_evaluate(e, "acct", &m, &d), 0);
	assert_int_equal(check(&d), 1);
	allowd_decision_clear(&d);

	allowd_engine_drop_account(e, "acct");
	allowd_engine_drop_account(e, "acct"); /* twice: nothing to drop */
	assert_int_equal(allowd_engine_evaluate(e, "acct", &m, &d), 0);
	assert_int_equal(check(&d), 0);
	allowd_decision_clear(&d);

	assert_int_equal(allowd_engine_load(e, "acct", &p, 1), 0);
	assert_int_equal(allowd_engine_evaluate(e, "acct", &m, &d), 0);
	assert_int_equal(check(&d), 1);
	allowd_decision_clear(&d);
	allowd_engine_free(e);
	allowd_policy_free(p);
}

typedef struct race {
	allowd_engine *e;
	allowd_policy *p;
	atomic_int stop;
	atomic_long evaluations, hits, writes, failures;
} race;

static void *evaluator(void *arg)
{
	race *r = arg;
	allowd_message m;

	message(&m);
	while (!atomic_load(&r->stop)) {
		allowd_decision d;
		allowd_engine_stats st;
		int c = allowd_engine_evaluate(r->e, "acct", &m, &d) == 0 ? check(&d) : -1;
		atomic_fetch_add(c < 0 ? &r->failures : &r->hits, c < 0 ? 1 : c);
		atomic_fetch_add(&r->evaluations, 1);
		allowd_decision_clear(&d);
		allowd_engine_stats_get(r->e, "acct", &st);
	}
	return NULL;
}

/* Writes the policy again and again: each write may create the account anew. */
static void *writer(void *arg)
{
	race *r = arg;
	allowd_engine_change c = {.id = POLICY_ID, .policy = r->p};

	while (!atomic_load(&r->stop)) {
		if (allowd_engine_apply(r->e, "acct", &c, 1) != 0)
			atomic_fetch_add(&r->failures, 1);
		atomic_fetch_add(&r->writes, 1);
	}
	return NULL;
}

static void drop_while_evaluating_and_writing(void **state)
{
	race r = {0};
	pthread_t ev[2], wr;

	(void)state;
	r.p = policy();
	assert_int_equal(allowd_engine_new(&r.e, NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&ev[i], NULL, evaluator, &r), 0);
	assert_int_equal(pthread_create(&wr, NULL, writer, &r), 0);
	for (int i = 0; i < CYCLES; i++) {
		assert_int_equal(allowd_engine_load(r.e, "acct", &r.p, 1), 0);
		allowd_engine_drop_account(r.e, "acct");
	}
	/*
	 * Keep dropping until the other threads have run alongside: evaluations
	 * that found the account with its policy, and writes that recreated it.
	 */
	for (long spins = 0; atomic_load(&r.evaluations) < 1000 || atomic_load(&r.writes) < 100 ||
			     atomic_load(&r.hits) == 0;
	     spins++) {
		if (spins == 100000000)
			fail_msg("the evaluator and writer threads made no progress");
		allowd_engine_drop_account(r.e, "acct");
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(ev[i], NULL), 0);
	assert_int_equal(pthread_join(wr, NULL), 0);
	assert_int_equal(atomic_load(&r.failures), 0);
	allowd_engine_free(r.e);
	allowd_policy_free(r.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(dropped_account_has_no_policies_until_loaded_again),
	    cmocka_unit_test(drop_while_evaluating_and_writing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

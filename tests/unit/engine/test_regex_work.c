/*
 * test_regex_work.c - what bounds the regex work of an evaluation: the
 * per-request budget (allowd_budget, docs/semantics.md "Regex work budget")
 * and the per-thread Hyperscan scratch, which must not outlive its thread.
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

#include "allowd/engine.h"
#include "allowd/error.h"
#include "allowd/policy.h"

#define N_COSTLY 40

static allowd_policy *mk(int64_t id, allowd_pattern_type t, int regex, const char *pattern)
{
	allowd_policy *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->id = id;
	p->pattern_type = t;
	p->is_regex = regex;
	p->pattern = strdup(pattern);
	p->pattern_norm = strdup(pattern);
	p->is_trusted_sender = true;
	return p;
}

typedef struct policies {
	allowd_policy *v[N_COSTLY + 2];
	size_t n;
} policies;

/*
 * N_COSTLY regexes that each run close to the match limit on worst(): they
 * pass the create-time probe but, together, cost milliseconds per subject.
 */
static void costly(policies *ps)
{
	char buf[64];
	ps->n = 0;
	for (int i = 0; i < N_COSTLY; i++) {
		snprintf(buf, sizeof(buf), "(?:a|ab|b)*c(?#%d)", i);
		ps->v[ps->n++] = mk(i + 1, ALLOWD_PATTERN_EMAIL, 1, buf);
	}
	ps->v[ps->n++] = mk(1000, ALLOWD_PATTERN_EMAIL, 0, "known@example.com");
}

static void policies_free(policies *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		allowd_policy_free(ps->v[i]);
}

/* The costliest subject the engine still matches (319 bytes). */
static const char *worst(void)
{
	static char s[ALLOWD_SUBJECT_MAX + 1];
	for (int i = 0; i < 158; i++)
		memcpy(s + 2 * i, "ab", 2);
	memcpy(s + 316, "bc!", 4);
	return s;
}

static allowd_snapshot *snapshot(policies *ps, int prefilter)
{
	allowd_engine_options o;
	allowd_snapshot *s = NULL;
	allowd_engine_options_init(&o);
	o.use_prefilter = prefilter;
	assert_int_equal(allowd_snapshot_build(&s, ps->v, ps->n, &o), 0);
	return s;
}

static void message(allowd_message *m, const char *from, allowd_budget *b)
{
	static const char *rcpt[1] = {"bob@example.org"};
	memset(m, 0, sizeof(*m));
	m->envelope_from = from;
	m->recipients = rcpt;
	m->n_recipients = 1;
	m->budget = b;
}

static void exhausted_budget_fails_the_evaluation_instead_of_skipping_regexes(void **state)
{
	policies ps;
	allowd_snapshot *s;
	allowd_budget b;
	allowd_message m;
	allowd_decision d;

	(void)state;
	costly(&ps);
	s = snapshot(&ps, 0);
	allowd_budget_init(&b, 1);
	message(&m, worst(), &b);
	assert_int_equal(allowd_evaluate(s, &m, &d), ALLOWD_EINVALID);
	assert_true(b.exhausted);
	assert_true(b.used_us >= 1000);
	assert_non_null(strstr(allowd_error_last()->message, "regex work budget"));
	assert_int_equal(d.n_matches, 0);
	assert_int_equal(d.n_recipients, 0);
	allowd_decision_clear(&d);
	allowd_snapshot_unref(s);
	policies_free(&ps);
}

static void work_stops_within_one_match_of_the_budget(void **state)
{
	policies ps;
	allowd_snapshot *s;
	allowd_budget b, unlimited;
	allowd_message m;
	allowd_decision d;

	const char *more[3];

	(void)state;
	costly(&ps);
	s = snapshot(&ps, 0);
	more[0] = more[1] = more[2] = worst();
	/* what all the regexes cost on four worst subjects, without a limit */
	allowd_budget_init(&unlimited, 0);
	unlimited.limit_us = INT64_MAX;
	message(&m, worst(), &unlimited);
	m.reply_to = more;
	m.n_reply_to = 3;
	assert_int_equal(allowd_evaluate(s, &m, &d), 0);
	allowd_decision_clear(&d);
	/*
	 * A budget of a tenth of that stops the work near it, not at the end;
	 * the bound is loose because the budget is wall-clock time and this
	 * machine may be busy.
	 */
	allowd_budget_init(&b, 1);
	b.limit_us = unlimited.used_us / 10 + 1;
	message(&m, worst(), &b);
	m.reply_to = more;
	m.n_reply_to = 3;
	assert_int_equal(allowd_evaluate(s, &m, &d), ALLOWD_EINVALID);
	print_message("regex work: %lld us unlimited, stopped at %lld us with a %lld us budget\n",
		      (long long)unlimited.used_us, (long long)b.used_us, (long long)b.limit_us);
	assert_true(b.used_us < unlimited.used_us);
	allowd_snapshot_unref(s);
	policies_free(&ps);
}

static void null_or_zero_budget_is_unlimited(void **state)
{
	policies ps;
	allowd_snapshot *s;
	allowd_budget zero;
	allowd_message m;
	allowd_decision d;

	(void)state;
	costly(&ps);
	s = snapshot(&ps, 1);
	message(&m, worst(), NULL);
	assert_int_equal(allowd_evaluate(s, &m, &d), 0);
	allowd_decision_clear(&d);
	allowd_budget_init(&zero, 0);
	message(&m, worst(), &zero);
	assert_int_equal(allowd_evaluate(s, &m, &d), 0);
	assert_false(zero.exhausted);
	assert_int_equal(zero.used_us, 0); /* the clock is not even read */
	allowd_decision_clear(&d);
	allowd_snapshot_unref(s);
	policies_free(&ps);
}

static void budget_is_shared_by_the_messages_of_a_request(void **state)
{
	policies ps;
	allowd_snapshot *s;
	allowd_budget b;
	allowd_message m;
	allowd_decision d;
	int64_t after_one;

	(void)state;
	costly(&ps);
	s = snapshot(&ps, 0);
	allowd_budget_init(&b, 600000);
	message(&m, "known@example.com", &b);
	assert_int_equal(allowd_evaluate(s, &m, &d), 0);
	assert_int_equal(d.n_matches, 1);
	allowd_decision_clear(&d);
	after_one = b.used_us;
	message(&m, worst(), &b);
	assert_int_equal(allowd_evaluate(s, &m, &d), 0);
	allowd_decision_clear(&d);
	assert_true(b.used_us > after_one);
	/* once spent, any later evaluation that needs regex work fails */
	b.limit_us = b.used_us;
	message(&m, "known@example.com", &b);
	assert_int_equal(allowd_evaluate(s, &m, &d), ALLOWD_EINVALID);
	allowd_snapshot_unref(s);
	policies_free(&ps);
}

static void exhausted_budget_does_not_fail_an_account_without_regexes(void **state)
{
	allowd_policy *p = mk(7, ALLOWD_PATTERN_EMAIL, 0, "known@example.com");
	allowd_snapshot *s = NULL;
	allowd_budget b;
	allowd_message m;
	allowd_decision d;

	(void)state;
	assert_int_equal(allowd_snapshot_build(&s, &p, 1, NULL), 0);
	allowd_budget_init(&b, 1);
	b.exhausted = 1;
	message(&m, "known@example.com", &b);
	assert_int_equal(allowd_evaluate(s, &m, &d), 0);
	assert_int_equal(d.n_matches, 1);
	allowd_decision_clear(&d);
	allowd_snapshot_unref(s);
	allowd_policy_free(p);
}

static void engine_evaluate_honours_the_budget(void **state)
{
	policies ps;
	allowd_engine *e = NULL;
	allowd_budget b;
	allowd_message m;
	allowd_decision d;

	(void)state;
	costly(&ps);
	assert_int_equal(allowd_engine_new(&e, NULL), 0);
	assert_int_equal(allowd_engine_load(e, "acct", ps.v, ps.n), 0);
	allowd_budget_init(&b, 1);
	message(&m, worst(), &b);
	assert_int_equal(allowd_engine_evaluate(e, "acct", &m, &d), ALLOWD_EINVALID);
	assert_true(b.exhausted);
	message(&m, worst(), NULL);
	assert_int_equal(allowd_engine_evaluate(e, "acct", &m, &d), 0);
	allowd_decision_clear(&d);
	allowd_engine_free(e);
	policies_free(&ps);
}

/*
 * A thread that scanned with Hyperscan leaves no scratch behind when it
 * exits (bug 9): LeakSanitizer fails this test in the ASan build otherwise.
 */
static void *evaluate_in_thread(void *arg)
{
	const allowd_snapshot *s = arg;
	allowd_message m;
	allowd_decision d;
	message(&m, "bounce-1@lists.example.com", NULL);
	if (allowd_evaluate(s, &m, &d) != 0)
		return (void *)1;
	allowd_decision_clear(&d);
	return NULL;
}

static void scratch_of_an_exited_thread_is_freed(void **state)
{
	policies ps;
	allowd_snapshot *s;
	void *rv = (void *)1;

	(void)state;
	costly(&ps);
	s = snapshot(&ps, 1);
	for (int i = 0; i < 4; i++) {
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, evaluate_in_thread, s), 0);
		assert_int_equal(pthread_join(t, &rv), 0);
		assert_null(rv);
	}
	allowd_snapshot_unref(s);
	policies_free(&ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(exhausted_budget_fails_the_evaluation_instead_of_skipping_regexes),
	    cmocka_unit_test(work_stops_within_one_match_of_the_budget),
	    cmocka_unit_test(null_or_zero_budget_is_unlimited),
	    cmocka_unit_test(budget_is_shared_by_the_messages_of_a_request),
	    cmocka_unit_test(exhausted_budget_does_not_fail_an_account_without_regexes),
	    cmocka_unit_test(engine_evaluate_honours_the_budget),
	    cmocka_unit_test(scratch_of_an_exited_thread_is_freed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

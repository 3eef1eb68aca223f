/*
 * test_check.c - unit tests for pattern checks made ahead of a write
 * (allowd_pattern_check_run) and their reuse by
 * allowd_policy_validate_checked: the verdict stands in for the pattern check
 * only for the exact (type, is_regex, pattern) it was made for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "allowd/error.h"
#include "allowd/policy.h"

static allowd_policy *policy(allowd_pattern_type type, bool is_regex, const char *pattern)
{
	allowd_policy *p = NULL;
	assert_int_equal(allowd_policy_new(&p), 0);
	p->pattern_type = type;
	p->is_regex = is_regex;
	p->is_trusted_sender = true;
	assert_int_equal(allowd_policy_set_string(&p->pattern, pattern), 0);
	return p;
}

static void a_valid_pattern_records_its_normalised_form(void **state)
{
	allowd_pattern_check c;
	(void)state;
	assert_int_equal(
	    allowd_pattern_check_run(&c, ALLOWD_PATTERN_EMAIL, false, "Bob@Example.COM"), 0);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.norm, "bob@example.com");
	assert_null(c.error);
	allowd_pattern_check_clear(&c);
	allowd_pattern_check_clear(&c); /* cleared twice: harmless */
}

static void an_invalid_pattern_records_its_error_and_pointer(void **state)
{
	allowd_pattern_check c;
	(void)state;
	assert_int_equal(allowd_pattern_check_run(&c, ALLOWD_PATTERN_EMAIL, true, "(a+)+$"), 0);
	assert_int_equal(c.rc, ALLOWD_EINVALID);
	assert_null(c.norm);
	assert_non_null(c.error);
	assert_string_equal(c.error->pointer, "/pattern");
	assert_non_null(strstr(c.error->message, "too costly"));
	allowd_pattern_check_clear(&c);
}

static void a_missing_pattern_checks_nothing(void **state)
{
	allowd_pattern_check c;
	(void)state;
	assert_int_equal(allowd_pattern_check_run(&c, ALLOWD_PATTERN_EMAIL, false, NULL), 0);
	assert_null(c.pattern);
	allowd_pattern_check_clear(&c);
}

/* A verdict planted for the policy's exact key is used as is: no pattern check runs. */
static void the_verdict_for_the_same_key_stands_in_for_the_check(void **state)
{
	allowd_pattern_check c;
	allowd_policy *p = policy(ALLOWD_PATTERN_EMAIL, false, "a@example.com");
	(void)state;
	assert_int_equal(allowd_pattern_check_run(&c, ALLOWD_PATTERN_EMAIL, false, "a@example.com"),
	                 0);
	free(c.norm);
	c.norm = strdup("planted");
	assert_int_equal(allowd_policy_validate_checked(p, &c), 0);
	assert_string_equal(p->pattern_norm, "planted");
	allowd_pattern_check_clear(&c);
	allowd_policy_free(p);
}

static void a_recorded_failure_is_returned_with_its_error(void **state)
{
	allowd_pattern_check c;
	allowd_policy *p = policy(ALLOWD_PATTERN_EMAIL, true, "(a*)*b");
	(void)state;
	assert_int_equal(allowd_pattern_check_run(&c, ALLOWD_PATTERN_EMAIL, true, "(a*)*b"), 0);
	allowd_error_clear();
	assert_int_equal(allowd_policy_validate_checked(p, &c), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/pattern");
	assert_string_equal(allowd_error_last()->message, c.error->message);
	allowd_pattern_check_clear(&c);
	allowd_policy_free(p);
}

/* A verdict on another type, regex flag or pattern is ignored: the policy is checked itself. */
static void a_verdict_for_another_key_is_ignored(void **state)
{
	allowd_pattern_check c;
	allowd_policy *as_email = policy(ALLOWD_PATTERN_EMAIL, false, "x[0-9]@example.com");
	allowd_policy *as_domain = policy(ALLOWD_PATTERN_DOMAIN, true, "x[0-9]@example.com");
	allowd_policy *other = policy(ALLOWD_PATTERN_EMAIL, true, "y[0-9]@example.com");
	(void)state;
	/* valid as a regex of type EMAIL */
	assert_int_equal(
	    allowd_pattern_check_run(&c, ALLOWD_PATTERN_EMAIL, true, "x[0-9]@example.com"), 0);
	assert_int_equal(c.rc, 0);
	assert_int_equal(allowd_policy_validate_checked(as_email, &c), ALLOWD_EINVALID);
	assert_int_equal(allowd_policy_validate_checked(as_domain, &c), 0);
	assert_string_equal(as_domain->pattern_norm, "x[0-9]@example.com");
	allowd_pattern_check_clear(&c);

	/* invalid as an address; the regex policy is valid all the same */
	assert_int_equal(
	    allowd_pattern_check_run(&c, ALLOWD_PATTERN_EMAIL, false, "y[0-9]@example.com"), 0);
	assert_int_equal(c.rc, ALLOWD_EINVALID);
	assert_int_equal(allowd_policy_validate_checked(other, &c), 0);
	allowd_pattern_check_clear(&c);
	allowd_policy_free(as_email);
	allowd_policy_free(as_domain);
	allowd_policy_free(other);
}

/* The rules between fields still apply when the pattern's verdict is reused. */
static void the_other_rules_still_apply_with_a_valid_verdict(void **state)
{
	allowd_pattern_check c;
	allowd_policy *p = policy(ALLOWD_PATTERN_DOMAIN, false, "example.com");
	(void)state;
	assert_int_equal(allowd_pattern_check_run(&c, ALLOWD_PATTERN_DOMAIN, false, "example.com"),
	                 0);
	p->is_trusted_sender = false;
	assert_int_equal(allowd_policy_validate_checked(p, &c), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/is_trusted_sender");
	p->is_trusted_sender = true;
	p->is_exempt_recipient = true;
	assert_int_equal(allowd_policy_validate_checked(p, &c), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/is_exempt_recipient");
	p->is_exempt_recipient = false;
	assert_int_equal(allowd_policy_validate_checked(p, &c), 0);
	assert_string_equal(p->pattern_norm, "example.com");
	allowd_pattern_check_clear(&c);
	allowd_policy_free(p);
}

static void no_verdict_means_a_full_check(void **state)
{
	allowd_policy *p = policy(ALLOWD_PATTERN_IP, false, "192.0.2.1");
	(void)state;
	/* documentation space is not globally reachable */
	assert_int_equal(allowd_policy_validate_checked(p, NULL), ALLOWD_EINVALID);
	assert_int_equal(allowd_policy_set_string(&p->pattern, "8.8.8.0/24"), 0);
	assert_int_equal(allowd_policy_validate_checked(p, NULL), 0);
	assert_string_equal(p->pattern_norm, "8.8.8.0/24");
	allowd_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_valid_pattern_records_its_normalised_form),
	    cmocka_unit_test(an_invalid_pattern_records_its_error_and_pointer),
	    cmocka_unit_test(a_missing_pattern_checks_nothing),
	    cmocka_unit_test(the_verdict_for_the_same_key_stands_in_for_the_check),
	    cmocka_unit_test(a_recorded_failure_is_returned_with_its_error),
	    cmocka_unit_test(a_verdict_for_another_key_is_ignored),
	    cmocka_unit_test(the_other_rules_still_apply_with_a_valid_verdict),
	    cmocka_unit_test(no_verdict_means_a_full_check),
	};
	return cmocka_run_group_tests_name("policy_check", tests, NULL, NULL);
}

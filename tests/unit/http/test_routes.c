/*
 * test_routes.c - the route table: parameters, literal segments before
 * parameters, 405 with the allowed methods, unknown paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/routes.h"

#define BASE "/accounts/0123456789abcdef0123456789abcdef/email-security/settings/allow_policies"

static void captures_parameters(void **state)
{
	route_match m;
	(void)state;
	allowd_route_match(&m, "GET", BASE "/2401");
	assert_non_null(m.route);
	assert_ptr_equal(m.route->handler, api_policy_get);
	assert_string_equal(m.account_id, "0123456789abcdef0123456789abcdef");
	assert_string_equal(m.policy_id, "2401");
	allowd_route_match(&m, "DELETE", BASE "/7");
	assert_ptr_equal(m.route->handler, api_policy_delete);
	allowd_route_match(&m, "PATCH", BASE "/7");
	assert_ptr_equal(m.route->handler, api_policy_edit);
}

static void batch_is_a_literal_route(void **state)
{
	route_match m;
	(void)state;
	allowd_route_match(&m, "POST", BASE "/batch");
	assert_ptr_equal(m.route->handler, api_policy_batch);
	allowd_route_match(&m, "POST", BASE);
	assert_ptr_equal(m.route->handler, api_policy_create);
	assert_int_equal(m.route->perm, ALLOWD_PERM_WRITE);
	allowd_route_match(&m, "GET", BASE);
	assert_ptr_equal(m.route->handler, api_policy_list);
	assert_int_equal(m.route->perm, ALLOWD_PERM_READ);
}

static void wrong_method_lists_allowed(void **state)
{
	route_match m;
	(void)state;
	allowd_route_match(&m, "PUT", BASE);
	assert_null(m.route);
	assert_true(m.method_mismatch);
	assert_string_equal(m.allow, "POST, GET");
	allowd_route_match(&m, "GET", BASE "/batch"); /* the literal route wins over :policy_id */
	assert_null(m.route);
	assert_true(m.method_mismatch);
	assert_string_equal(m.allow, "POST");
	allowd_route_match(&m, "POST", BASE "/5");
	assert_null(m.route);
	assert_true(m.method_mismatch);
	assert_non_null(strstr(m.allow, "PATCH"));
}

static void unknown_paths_do_not_match(void **state)
{
	route_match m;
	(void)state;
	const char *paths[] = {"/", "", "/accounts", BASE "/", BASE "/1/2", BASE "x",
			       "/accounts//email-security/settings/allow_policies", "/healthz/x"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		allowd_route_match(&m, "GET", paths[i]);
		assert_null(m.route);
		assert_false(m.method_mismatch);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(captures_parameters),
		cmocka_unit_test(batch_is_a_literal_route),
		cmocka_unit_test(wrong_method_lists_allowed),
		cmocka_unit_test(unknown_paths_do_not_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

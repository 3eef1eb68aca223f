/*
 * test_envelope.c - the success envelope around already-encoded results
 * (what GET one and list pages serve from the store's cache) is byte for
 * byte what jansson renders from the JSON values, for one policy, for a
 * page with result_info, for an empty page and for text that needs escapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api/api.h"

static allowd_policy sample(int64_t id, const char *pattern, const char *comments)
{
	allowd_policy p;

	memset(&p, 0, sizeof(p));
	p.id = id;
	p.pattern = strdup(pattern);
	p.pattern_type = ALLOWD_PATTERN_EMAIL;
	p.is_trusted_sender = true;
	p.verify_sender = true;
	p.comments = comments ? strdup(comments) : NULL;
	p.created_at = 1577471479117;
	p.modified_at = 1577471479118;
	return p;
}

/* Renders `result` both ways and asserts the bytes are equal. */
static void assert_same(json_t *result, json_t *info)
{
	api_response r = {.status = 200, .result = result, .result_info = info};
	char *text = json_dumps(result, JSON_COMPACT);
	char *want = allowd_api_render_success(&r);
	char *got;

	assert_non_null(text);
	assert_non_null(want);
	got = allowd_api_render_success_raw(text, strlen(text), info);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(text);
	free(want);
	free(got);
}

static void one_policy_renders_as_jansson_does(void **state)
{
	allowd_policy p = sample(2401, "test@example.com", NULL);
	json_t *o = allowd_json_encode_policy(&p);

	(void)state;
	assert_same(o, NULL);
	json_decref(o);
	allowd_policy_clear(&p);
}

static void a_page_with_result_info_renders_as_jansson_does(void **state)
{
	allowd_policy a = sample(1, "a@example.com", "quote \" backslash \\ tab \t é"),
	              b = sample(2, "b@example.com", "plain");
	json_t *arr = json_array(), *info;

	(void)state;
	json_array_append_new(arr, allowd_json_encode_policy(&a));
	json_array_append_new(arr, allowd_json_encode_policy(&b));
	info = json_pack("{s:I, s:I, s:I, s:I}", "page", (json_int_t)1, "per_page", (json_int_t)20,
	                 "count", (json_int_t)2, "total_count", (json_int_t)2);
	assert_same(arr, info);
	json_decref(arr);
	json_decref(info);
	allowd_policy_clear(&a);
	allowd_policy_clear(&b);
}

static void an_empty_page_renders_as_jansson_does(void **state)
{
	json_t *arr = json_array(), *info;

	(void)state;
	info = json_pack("{s:I, s:I, s:I, s:I}", "page", (json_int_t)9, "per_page", (json_int_t)100,
	                 "count", (json_int_t)0, "total_count", (json_int_t)5);
	assert_same(arr, info);
	json_decref(arr);
	json_decref(info);
}

static void a_prerendered_body_is_handed_over_once(void **state)
{
	api_response r = {.status = 200};
	char *body;

	(void)state;
	r.body = allowd_api_render_success_raw("null", 4, NULL);
	assert_non_null(r.body);
	body = allowd_api_render_success(&r);
	assert_null(r.body);
	assert_string_equal(body,
	                    "{\"success\":true,\"errors\":[],\"messages\":[],\"result\":null}");
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(one_policy_renders_as_jansson_does),
	    cmocka_unit_test(a_page_with_result_info_renders_as_jansson_does),
	    cmocka_unit_test(an_empty_page_renders_as_jansson_does),
	    cmocka_unit_test(a_prerendered_body_is_handed_over_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_routes.c - every route of docs/api.md over real HTTP, with and
 * without the /client/v4 prefix: create (the seed byte for byte),
 * get, patch, delete, list, batch, unknown routes, wrong methods, healthz.
 */
#include "harness.h"

#include <string.h>

static e2e_response *get_policy(e2e_server *s, const char *base, json_int_t id)
{
	return e2e_get(s, "%s/%lld", base, (long long)id);
}

E2E_TEST(healthz_answers_without_credentials)
{
	static const char *const paths[] = {"/healthz", "/client/v4/healthz"};
	for (size_t i = 0; i < 2; i++) {
		e2e_request rq = {.method = "GET", .path = paths[i], .auth = E2E_AUTH_NONE};
		e2e_response *r = e2e_do(s, &rq);
		E2E_CHECK(r->status == 200, "GET %s: expected 200, got %ld: %s", paths[i],
		          r->status, r->body);
	}
}

E2E_TEST(seed_create_returns_201_with_every_field)
{
	e2e_response *r = e2e_send(s, "POST", E2E_SEED_BODY, "%s", s->policies);
	json_t *p = E2E_OK(r, 201);
	E2E_POLICY(p);

	E2E_CHECK(E2E_INT(p, "id") >= 1, "id must be positive");
	assert_string_equal(E2E_STR(p, "pattern"), "test@example.com");
	assert_string_equal(E2E_STR(p, "pattern_type"), "EMAIL");
	assert_false(E2E_BOOL(p, "is_regex"));
	assert_true(E2E_BOOL(p, "is_trusted_sender"));
	assert_false(E2E_BOOL(p, "is_acceptable_sender"));
	assert_false(E2E_BOOL(p, "is_exempt_recipient"));
	assert_true(E2E_BOOL(p, "verify_sender"));
	assert_true(json_is_null(json_object_get(p, "comments")));
	assert_true(E2E_BOOL(p, "is_sender"));
	assert_false(E2E_BOOL(p, "is_recipient"));
	assert_false(E2E_BOOL(p, "is_spoof"));
	assert_true(e2e_is_timestamp(E2E_STR(p, "created_at")));
	assert_true(e2e_is_timestamp(E2E_STR(p, "modified_at")));
	assert_string_equal(E2E_STR(p, "last_modified"), E2E_STR(p, "modified_at"));
	assert_string_equal(E2E_STR(p, "created_at"), E2E_STR(p, "modified_at"));
	assert_int_equal(E2E_TOTAL(s), 1);
}

E2E_TEST(create_stores_comments)
{
	json_t *p = E2E_CREATE(s, "{\"pattern\":\"c@example.com\",\"pattern_type\":\"EMAIL\","
	                          "\"is_regex\":false,\"is_trusted_sender\":false,"
	                          "\"is_acceptable_sender\":true,\"is_exempt_recipient\":true,"
	                          "\"verify_sender\":false,\"comments\":\"Trust \\u00e9 all\"}");
	assert_string_equal(E2E_STR(p, "comments"), "Trust \xc3\xa9 all");
	assert_false(E2E_BOOL(p, "is_trusted_sender"));
	assert_false(E2E_BOOL(p, "is_sender"));
	assert_true(E2E_BOOL(p, "is_acceptable_sender"));
	assert_true(E2E_BOOL(p, "is_spoof"));
	assert_true(E2E_BOOL(p, "is_exempt_recipient"));
	assert_true(E2E_BOOL(p, "is_recipient"));
	assert_false(E2E_BOOL(p, "verify_sender"));
}

E2E_TEST(create_accepts_null_comments)
{
	json_t *p = E2E_CREATE(s, "{\"pattern\":\"n@example.com\",\"pattern_type\":\"EMAIL\","
	                          "\"is_regex\":false,\"is_trusted_sender\":true,"
	                          "\"is_acceptable_sender\":false,\"is_exempt_recipient\":false,"
	                          "\"verify_sender\":true,\"comments\":null}");
	assert_true(json_is_null(json_object_get(p, "comments")));
}

E2E_TEST(create_without_prefix_is_the_same_resource)
{
	e2e_response *r = e2e_send(s, "POST", E2E_SEED_BODY, "%s", s->policies_bare);
	json_t *created = E2E_OK(r, 201);
	E2E_POLICY(created);
	json_int_t id = E2E_INT(created, "id");

	E2E_JSON_EQ(E2E_OK(get_policy(s, s->policies, id), 200), created);
	E2E_JSON_EQ(E2E_OK(get_policy(s, s->policies_bare, id), 200), created);
}

E2E_TEST(get_returns_the_created_policy)
{
	json_t *created = E2E_CREATE(s, E2E_SEED_BODY);
	json_t *got = E2E_FETCH(s, E2E_INT(created, "id"));
	E2E_JSON_EQ(got, created);
}

E2E_TEST(get_unknown_id_is_404_1002)
{
	json_t *created = E2E_CREATE(s, E2E_SEED_BODY);
	json_int_t missing = E2E_INT(created, "id") + 1000;
	E2E_ERR(get_policy(s, s->policies, missing), 404, 1002, NULL);
	E2E_ERR(get_policy(s, s->policies_bare, missing), 404, 1002, NULL);
}

E2E_TEST(list_returns_created_policies_in_id_order)
{
	json_t *a = E2E_CREATE(s, e2e_email_body("a@example.com"));
	json_t *b = E2E_CREATE(s, e2e_email_body("b@example.com"));
	const char *bases[] = {s->policies, s->policies_bare};
	for (size_t i = 0; i < 2; i++) {
		e2e_response *r = e2e_get(s, "%s", bases[i]);
		json_t *result = E2E_OK(r, 200);
		assert_true(json_is_array(result));
		assert_int_equal(json_array_size(result), 2);
		E2E_JSON_EQ(json_array_get(result, 0), a);
		E2E_JSON_EQ(json_array_get(result, 1), b);
		json_t *info = json_object_get(r->json, "result_info");
		assert_int_equal(E2E_INT(info, "page"), 1);
		assert_int_equal(E2E_INT(info, "per_page"), 20);
		assert_int_equal(E2E_INT(info, "count"), 2);
		assert_int_equal(E2E_INT(info, "total_count"), 2);
	}
}

E2E_TEST(patch_changes_only_the_fields_present)
{
	json_t *before = E2E_CREATE(s, E2E_SEED_BODY);
	json_int_t id = E2E_INT(before, "id");

	e2e_response *r = e2e_send(s, "PATCH", "{\"comments\":\"now commented\"}", "%s/%lld",
	                           s->policies, (long long)id);
	json_t *after = E2E_OK(r, 200);
	E2E_POLICY(after);

	assert_string_equal(E2E_STR(after, "comments"), "now commented");
	static const char *const unchanged[] = {
	    "id",
	    "created_at",
	    "pattern",
	    "pattern_type",
	    "is_regex",
	    "is_trusted_sender",
	    "is_acceptable_sender",
	    "is_exempt_recipient",
	    "verify_sender",
	    "is_sender",
	    "is_recipient",
	    "is_spoof",
	};
	for (size_t i = 0; i < sizeof(unchanged) / sizeof(unchanged[0]); i++)
		E2E_CHECK(json_equal(json_object_get(before, unchanged[i]),
		                     json_object_get(after, unchanged[i])),
		          "PATCH changed \"%s\": %s -> %s", unchanged[i], e2e_dumps(before),
		          e2e_dumps(after));
	E2E_CHECK(strcmp(E2E_STR(after, "modified_at"), E2E_STR(before, "modified_at")) > 0,
	          "modified_at did not move forward: %s -> %s", E2E_STR(before, "modified_at"),
	          E2E_STR(after, "modified_at"));
	assert_string_equal(E2E_STR(after, "last_modified"), E2E_STR(after, "modified_at"));

	E2E_JSON_EQ(E2E_FETCH(s, id), after);
}

E2E_TEST(patch_changes_flags_and_pattern)
{
	json_t *before = E2E_CREATE(s, E2E_SEED_BODY);
	json_int_t id = E2E_INT(before, "id");
	e2e_response *r = e2e_send(s, "PATCH",
	                           "{\"pattern\":\"other@example.com\",\"verify_sender\":false,"
	                           "\"is_acceptable_sender\":true}",
	                           "%s/%lld", s->policies_bare, (long long)id);
	json_t *after = E2E_OK(r, 200);
	E2E_POLICY(after);
	assert_string_equal(E2E_STR(after, "pattern"), "other@example.com");
	assert_false(E2E_BOOL(after, "verify_sender"));
	assert_true(E2E_BOOL(after, "is_acceptable_sender"));
	assert_true(E2E_BOOL(after, "is_spoof"));
	assert_true(E2E_BOOL(after, "is_trusted_sender"));
	assert_string_equal(E2E_STR(after, "created_at"), E2E_STR(before, "created_at"));
	E2E_JSON_EQ(E2E_FETCH(s, id), after);
}

E2E_TEST(patch_deprecated_alias_sets_its_field)
{
	json_t *before = E2E_CREATE(s, E2E_SEED_BODY);
	json_int_t id = E2E_INT(before, "id");
	e2e_response *r = e2e_send(s, "PATCH", "{\"is_spoof\":true,\"is_sender\":false}", "%s/%lld",
	                           s->policies, (long long)id);
	json_t *after = E2E_OK(r, 200);
	E2E_POLICY(after);
	assert_true(E2E_BOOL(after, "is_acceptable_sender"));
	assert_false(E2E_BOOL(after, "is_trusted_sender"));
}

E2E_TEST(patch_can_clear_comments_with_null)
{
	json_t *p = E2E_CREATE(s, "{\"pattern\":\"c@example.com\",\"pattern_type\":\"EMAIL\","
	                          "\"is_regex\":false,\"is_trusted_sender\":true,"
	                          "\"is_acceptable_sender\":false,\"is_exempt_recipient\":false,"
	                          "\"verify_sender\":true,\"comments\":\"x\"}");
	e2e_response *r = e2e_send(s, "PATCH", "{\"comments\":null}", "%s/%lld", s->policies,
	                           (long long)E2E_INT(p, "id"));
	json_t *after = E2E_OK(r, 200);
	assert_true(json_is_null(json_object_get(after, "comments")));
}

E2E_TEST(every_patch_moves_modified_at_forward)
{
	json_t *p = E2E_CREATE(s, E2E_SEED_BODY);
	json_int_t id = E2E_INT(p, "id");
	const char *created = E2E_STR(p, "created_at");
	const char *prev = E2E_STR(p, "modified_at");
	for (int i = 0; i < 5; i++) {
		char *body = e2e_strf("{\"comments\":\"rev %d\"}", i);
		json_t *after =
		    E2E_OK(e2e_send(s, "PATCH", body, "%s/%lld", s->policies, (long long)id), 200);
		const char *now = E2E_STR(after, "modified_at");
		E2E_CHECK(strcmp(now, prev) > 0, "PATCH %d: modified_at %s is not after %s", i, now,
		          prev);
		assert_string_equal(E2E_STR(after, "created_at"), created);
		assert_string_equal(E2E_STR(after, "last_modified"), now);
		prev = now;
	}
}

E2E_TEST(patch_unknown_id_is_404)
{
	json_t *p = E2E_CREATE(s, E2E_SEED_BODY);
	E2E_ERR(e2e_send(s, "PATCH", "{\"comments\":\"x\"}", "%s/%lld", s->policies,
	                 (long long)E2E_INT(p, "id") + 1000),
	        404, 1002, NULL);
}

E2E_TEST(delete_returns_the_id_and_the_policy_is_gone)
{
	json_t *p = E2E_CREATE(s, E2E_SEED_BODY);
	json_int_t id = E2E_INT(p, "id");

	json_t *result =
	    E2E_OK(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)id), 200);
	json_t *expect = e2e_keep(json_pack("{s:I}", "id", (json_int_t)id));
	E2E_JSON_EQ(result, expect);

	E2E_ERR(get_policy(s, s->policies, id), 404, 1002, NULL);
	assert_int_equal(E2E_TOTAL(s), 0);
	E2E_ERR(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)id), 404, 1002,
	        NULL);
}

E2E_TEST(delete_without_prefix)
{
	json_t *p = E2E_CREATE(s, E2E_SEED_BODY);
	json_int_t id = E2E_INT(p, "id");
	json_t *result =
	    E2E_OK(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies_bare, (long long)id), 200);
	assert_int_equal(E2E_INT(result, "id"), id);
	E2E_ERR(get_policy(s, s->policies_bare, id), 404, 1002, NULL);
}

E2E_TEST(ids_increase_and_are_never_reused_after_delete)
{
	json_t *a = E2E_CREATE(s, e2e_email_body("a@example.com"));
	json_t *b = E2E_CREATE(s, e2e_email_body("b@example.com"));
	json_int_t ida = E2E_INT(a, "id"), idb = E2E_INT(b, "id");
	assert_true(idb > ida);

	E2E_OK(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)idb), 200);
	json_t *c = E2E_CREATE(s, e2e_email_body("b@example.com"));
	json_int_t idc = E2E_INT(c, "id");
	E2E_CHECK(idc > idb, "id %lld reused or went back (deleted %lld)", (long long)idc,
	          (long long)idb);

	E2E_OK(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)ida), 200);
	json_t *d = E2E_CREATE(s, e2e_email_body("a@example.com"));
	E2E_CHECK(E2E_INT(d, "id") > idc, "id went back after deleting the lowest");
}

E2E_TEST(batch_route_works_with_and_without_prefix)
{
	const char *body = "{\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":[]}";
	json_t *a = E2E_OK(e2e_send(s, "POST", body, "%s/batch", s->policies), 200);
	json_t *b = E2E_OK(e2e_send(s, "POST", body, "%s/batch", s->policies_bare), 200);
	json_t *expect =
	    e2e_keep(json_pack("{s:[],s:[],s:[],s:[]}", "deletes", "patches", "puts", "posts"));
	E2E_JSON_EQ(a, expect);
	E2E_JSON_EQ(b, expect);
}

E2E_TEST(unknown_route_is_404_7003)
{
	const char *paths[] = {
	    "/client/v4/nope",
	    "/nope",
	    "/",
	    "/client/v4",
	    e2e_strf("/client/v4/accounts/%s/email-security/settings/block_senders", s->account_id),
	    e2e_strf("/accounts/%s/email-security/settings/allow_policies/1/extra", s->account_id),
	    e2e_strf("/client/v3/accounts/%s/email-security/settings/allow_policies",
	             s->account_id),
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		e2e_response *r = e2e_get(s, "%s", paths[i]);
		E2E_CHECK(r->status == 404, "GET %s: expected 404, got %ld", paths[i], r->status);
		E2E_ERR(r, 404, 7003, NULL);
	}
}

static void assert_405(e2e_server *s, const char *method, const char *path,
                       const char *const *allowed)
{
	e2e_request rq = {.method = method,
	                  .path = path,
	                  .body = strcmp(method, "GET") && strcmp(method, "DELETE") ? "{}" : NULL};
	e2e_response *r = e2e_do(s, &rq);
	E2E_CHECK(r->status == 405, "%s %s: expected 405, got %ld: %s", method, path, r->status,
	          r->body);
	E2E_ERR(r, 405, 10405, NULL);
	const char *allow = e2e_header(r, "Allow");
	E2E_CHECK(allow != NULL, "%s %s: 405 without an Allow header", method, path);
	for (size_t i = 0; allowed[i]; i++)
		E2E_CHECK(strstr(allow, allowed[i]) != NULL, "%s %s: Allow \"%s\" lacks %s", method,
		          path, allow, allowed[i]);
}

E2E_TEST(wrong_method_is_405_10405_with_allow)
{
	static const char *const coll[] = {"GET", "POST", NULL};
	static const char *const item[] = {"GET", "PATCH", "DELETE", NULL};
	static const char *const batch[] = {"POST", NULL};
	json_t *p = E2E_CREATE(s, E2E_SEED_BODY);
	char *one = e2e_strf("%s/%lld", s->policies, (long long)E2E_INT(p, "id"));
	char *one_bare = e2e_strf("%s/%lld", s->policies_bare, (long long)E2E_INT(p, "id"));
	char *b = e2e_strf("%s/batch", s->policies);
	char *b_bare = e2e_strf("%s/batch", s->policies_bare);

	assert_405(s, "PUT", s->policies, coll);
	assert_405(s, "DELETE", s->policies, coll);
	assert_405(s, "PATCH", s->policies_bare, coll);
	assert_405(s, "POST", one, item);
	assert_405(s, "PUT", one_bare, item);
	assert_405(s, "GET", b, batch);
	assert_405(s, "DELETE", b_bare, batch);
	assert_int_equal(E2E_TOTAL(s), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE(healthz_answers_without_credentials),
	    E2E_CASE(seed_create_returns_201_with_every_field),
	    E2E_CASE(create_stores_comments),
	    E2E_CASE(create_accepts_null_comments),
	    E2E_CASE(create_without_prefix_is_the_same_resource),
	    E2E_CASE(get_returns_the_created_policy),
	    E2E_CASE(get_unknown_id_is_404_1002),
	    E2E_CASE(list_returns_created_policies_in_id_order),
	    E2E_CASE(patch_changes_only_the_fields_present),
	    E2E_CASE(patch_changes_flags_and_pattern),
	    E2E_CASE(patch_deprecated_alias_sets_its_field),
	    E2E_CASE(patch_can_clear_comments_with_null),
	    E2E_CASE(every_patch_moves_modified_at_forward),
	    E2E_CASE(patch_unknown_id_is_404),
	    E2E_CASE(delete_returns_the_id_and_the_policy_is_gone),
	    E2E_CASE(delete_without_prefix),
	    E2E_CASE(ids_increase_and_are_never_reused_after_delete),
	    E2E_CASE(batch_route_works_with_and_without_prefix),
	    E2E_CASE(unknown_route_is_404_7003),
	    E2E_CASE(wrong_method_is_405_10405_with_allow),
	};
	return cmocka_run_group_tests_name("e2e_routes", tests, NULL, NULL);
}

/*
 * test_batch.c - POST .../allow_policies/batch: the four required arrays,
 * the 1000-item bound, the order deletes → patches → puts → posts, the
 * result shape, and all-or-nothing failures whose pointer names the item.
 */
#include "harness.h"

#include <string.h>

static char *batch_body(json_t *deletes, json_t *patches, json_t *puts, json_t *posts)
{
	json_t *b = json_pack("{s:O,s:O,s:O,s:O}", "deletes", deletes, "patches", patches, "puts",
	                      puts, "posts", posts);
	return e2e_dumps(e2e_keep(b));
}

static json_t *arr(void)
{
	return e2e_keep(json_array());
}

static json_t *email(const char *pattern)
{
	return e2e_policy_obj(pattern, "EMAIL", false, true, false, false, true, NULL);
}

static json_t *with_id(json_t *obj, json_int_t id)
{
	json_t *copy = e2e_keep(json_deep_copy(obj));
	json_object_set_new(copy, "id", json_integer(id));
	return copy;
}

static json_t *id_obj(json_int_t id)
{
	return e2e_keep(json_pack("{s:I}", "id", id));
}

static json_t *one(json_t *item)
{
	json_t *a = arr();
	json_array_append(a, item);
	return a;
}

/*
 * POSTs a batch expected to fail with HTTP `status`, `code` (0: any) and a
 * source.pointer starting with `pointer`; asserts nothing changed.
 */
static json_t *reject_batch_at(e2e_server *s, const char *body, long status, int code,
                               const char *pointer, const char *file, int line)
{
	json_t *before = e2e_list_all_at(s, file, line);
	e2e_response *r = e2e_send(s, "POST", body, "%s/batch", s->policies);
	json_t *err = e2e_assert_err_at(r, status, code, NULL, file, line);
	const char *p = e2e_error_pointer(err);
	if (!p || strncmp(p, pointer, strlen(pointer)) != 0)
		e2e_fail_at(file, line, "expected a source.pointer under %s: %s", pointer, r->body);
	json_t *after = e2e_list_all_at(s, file, line);
	if (!json_equal(before, after))
		e2e_fail_at(file, line, "a failed batch changed the policies:\n  %s\n  %s",
		            e2e_dumps(before), e2e_dumps(after));
	return err;
}

#define REJECT_BATCH(s, body, code, pointer)                                                       \
	reject_batch_at((s), (body), 400, (code), (pointer), __FILE__, __LINE__)

E2E_TEST(empty_batch_returns_four_empty_arrays)
{
	json_t *result = E2E_BATCH(s, "{\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":[]}");
	json_t *expect =
	    e2e_keep(json_pack("{s:[],s:[],s:[],s:[]}", "deletes", "patches", "puts", "posts"));
	E2E_JSON_EQ(result, expect);
}

E2E_TEST(each_of_the_four_arrays_is_required)
{
	E2E_CREATE(s, E2E_SEED_BODY);
	static const char *const names[] = {"deletes", "patches", "puts", "posts"};
	for (size_t i = 0; i < 4; i++) {
		json_t *b = e2e_keep(
		    json_pack("{s:[],s:[],s:[],s:[]}", "deletes", "patches", "puts", "posts"));
		json_object_del(b, names[i]);
		char *pointer = e2e_strf("/%s", names[i]);
		json_t *err = REJECT_BATCH(s, e2e_dumps(b), 0, pointer);
		assert_string_equal(e2e_error_pointer(err), pointer);
	}
}

E2E_TEST(arrays_must_be_arrays_and_the_body_an_object)
{
	REJECT_BATCH(s, "{\"deletes\":{},\"patches\":[],\"puts\":[],\"posts\":[]}", 0, "/deletes");
	REJECT_BATCH(s, "{\"deletes\":[],\"patches\":null,\"puts\":[],\"posts\":[]}", 0,
	             "/patches");
	REJECT_BATCH(s, "{\"deletes\":[],\"patches\":[],\"puts\":\"\",\"posts\":[]}", 0, "/puts");
	REJECT_BATCH(s, "{\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":1}", 0, "/posts");
	json_t *before = E2E_LIST_ALL(s);
	E2E_ERR(e2e_send(s, "POST", "[]", "%s/batch", s->policies), 400, 1001, NULL);
	E2E_ERR(e2e_send(s, "POST", "{\"deletes\":[", "%s/batch", s->policies), 400, 1001, NULL);
	E2E_JSON_EQ(E2E_LIST_ALL(s), before);
}

E2E_TEST(more_than_1000_items_is_400)
{
	json_t *posts = arr();
	for (int i = 0; i < 1001; i++)
		json_array_append(posts, email(e2e_strf("u%d@example.com", i)));
	REJECT_BATCH(s, batch_body(arr(), arr(), arr(), posts), 0, "/posts");

	json_t *deletes = arr();
	for (int i = 0; i < 1001; i++)
		json_array_append(deletes, id_obj(i + 1));
	REJECT_BATCH(s, batch_body(deletes, arr(), arr(), arr()), 0, "/deletes");
	assert_int_equal(E2E_TOTAL(s), 0);
}

E2E_TEST(exactly_1000_posts_are_accepted)
{
	json_t *made = E2E_CREATE_MANY(s, "k", 1000);
	assert_int_equal(json_array_size(made), 1000);
	assert_int_equal(E2E_TOTAL(s), 1000);
	for (size_t i = 1; i < 1000; i++)
		E2E_CHECK(E2E_INT(json_array_get(made, i), "id") >
		              E2E_INT(json_array_get(made, i - 1), "id"),
		          "posts ids are not increasing at %zu", i);
}

E2E_TEST(results_list_what_each_array_did)
{
	json_t *a = E2E_CREATE(s, e2e_email_body("a@example.com"));
	json_t *b = E2E_CREATE(s, e2e_email_body("b@example.com"));
	json_t *c = E2E_CREATE(s, e2e_email_body("c@example.com"));
	json_int_t ida = E2E_INT(a, "id"), idb = E2E_INT(b, "id"), idc = E2E_INT(c, "id");

	json_t *patch = e2e_keep(json_pack("{s:I,s:s}", "id", idb, "comments", "patched"));
	json_t *put = with_id(
	    e2e_policy_obj("c2.example.com", "DOMAIN", false, false, true, false, false, "put"),
	    idc);
	char *body =
	    batch_body(one(id_obj(ida)), one(patch), one(put), one(email("d@example.com")));
	json_t *result = E2E_BATCH(s, body);

	E2E_JSON_EQ(E2E_ARR(result, "deletes"), one(id_obj(ida)));

	json_t *patched = json_array_get(E2E_ARR(result, "patches"), 0);
	assert_int_equal(json_array_size(E2E_ARR(result, "patches")), 1);
	E2E_POLICY(patched);
	assert_int_equal(E2E_INT(patched, "id"), idb);
	assert_string_equal(E2E_STR(patched, "comments"), "patched");
	assert_string_equal(E2E_STR(patched, "pattern"), "b@example.com");
	assert_string_equal(E2E_STR(patched, "created_at"), E2E_STR(b, "created_at"));
	E2E_CHECK(strcmp(E2E_STR(patched, "modified_at"), E2E_STR(b, "modified_at")) > 0,
	          "patch did not move modified_at");

	json_t *put_done = json_array_get(E2E_ARR(result, "puts"), 0);
	assert_int_equal(json_array_size(E2E_ARR(result, "puts")), 1);
	E2E_POLICY(put_done);
	assert_int_equal(E2E_INT(put_done, "id"), idc);
	assert_string_equal(E2E_STR(put_done, "pattern"), "c2.example.com");
	assert_string_equal(E2E_STR(put_done, "pattern_type"), "DOMAIN");
	assert_false(E2E_BOOL(put_done, "is_trusted_sender"));
	assert_true(E2E_BOOL(put_done, "is_acceptable_sender"));
	assert_false(E2E_BOOL(put_done, "verify_sender"));
	assert_string_equal(E2E_STR(put_done, "created_at"), E2E_STR(c, "created_at"));

	json_t *posted = json_array_get(E2E_ARR(result, "posts"), 0);
	assert_int_equal(json_array_size(E2E_ARR(result, "posts")), 1);
	E2E_POLICY(posted);
	E2E_CHECK(E2E_INT(posted, "id") > idc, "new id not above the existing ones");
	assert_string_equal(E2E_STR(posted, "pattern"), "d@example.com");

	E2E_ERR(e2e_get(s, "%s/%lld", s->policies, (long long)ida), 404, 1002, NULL);
	E2E_JSON_EQ(E2E_FETCH(s, idb), patched);
	E2E_JSON_EQ(E2E_FETCH(s, idc), put_done);
	E2E_JSON_EQ(E2E_FETCH(s, E2E_INT(posted, "id")), posted);
	assert_int_equal(E2E_TOTAL(s), 3);
}

E2E_TEST(deletes_apply_before_posts)
{
	json_int_t x = E2E_INT(E2E_CREATE(s, e2e_email_body("x@example.com")), "id");
	json_t *result =
	    E2E_BATCH(s, batch_body(one(id_obj(x)), arr(), arr(), one(email("x@example.com"))));
	json_t *posted = json_array_get(E2E_ARR(result, "posts"), 0);
	E2E_CHECK(E2E_INT(posted, "id") > x, "the re-created policy reused or lowered the id");
	assert_int_equal(E2E_TOTAL(s), 1);
}

E2E_TEST(patches_apply_before_posts)
{
	json_int_t y = E2E_INT(E2E_CREATE(s, e2e_email_body("y@example.com")), "id");
	json_t *patch = e2e_keep(json_pack("{s:I,s:s}", "id", y, "pattern", "y2@example.com"));
	E2E_BATCH(s, batch_body(arr(), one(patch), arr(), one(email("y@example.com"))));
	assert_string_equal(E2E_STR(E2E_FETCH(s, y), "pattern"), "y2@example.com");
	assert_int_equal(E2E_TOTAL(s), 2);
}

E2E_TEST(puts_apply_after_patches)
{
	json_int_t z = E2E_INT(E2E_CREATE(s, e2e_email_body("z@example.com")), "id");
	json_t *patch = e2e_keep(json_pack("{s:I,s:s}", "id", z, "comments", "from patch"));
	json_t *put = with_id(
	    e2e_policy_obj("z@example.com", "EMAIL", false, true, false, false, true, "from put"),
	    z);
	json_t *result = E2E_BATCH(s, batch_body(arr(), one(patch), one(put), arr()));
	assert_string_equal(E2E_STR(json_array_get(E2E_ARR(result, "patches"), 0), "comments"),
	                    "from patch");
	assert_string_equal(E2E_STR(json_array_get(E2E_ARR(result, "puts"), 0), "comments"),
	                    "from put");
	assert_string_equal(E2E_STR(E2E_FETCH(s, z), "comments"), "from put");
}

E2E_TEST(put_replaces_the_whole_policy_and_keeps_created_at)
{
	json_t *before = E2E_CREATE(s, "{\"pattern\":\"w@example.com\",\"pattern_type\":\"EMAIL\","
	                               "\"is_regex\":false,\"is_trusted_sender\":true,"
	                               "\"is_acceptable_sender\":true,\"is_exempt_recipient\":true,"
	                               "\"verify_sender\":true,\"comments\":\"old\"}");
	json_int_t w = E2E_INT(before, "id");
	json_t *put = with_id(
	    e2e_policy_obj("w@example.com", "EMAIL", false, true, false, false, false, NULL), w);
	json_object_set_new(put, "created_at", json_string("2000-01-01T00:00:00.000Z"));
	json_object_set_new(put, "modified_at", json_string("2000-01-01T00:00:00.000Z"));
	json_t *result = E2E_BATCH(s, batch_body(arr(), arr(), one(put), arr()));
	json_t *after = json_array_get(E2E_ARR(result, "puts"), 0);
	E2E_POLICY(after);
	assert_true(json_is_null(json_object_get(after, "comments")));
	assert_false(E2E_BOOL(after, "is_acceptable_sender"));
	assert_false(E2E_BOOL(after, "is_exempt_recipient"));
	assert_false(E2E_BOOL(after, "verify_sender"));
	assert_string_equal(E2E_STR(after, "created_at"), E2E_STR(before, "created_at"));
	E2E_CHECK(strcmp(E2E_STR(after, "modified_at"), E2E_STR(before, "modified_at")) > 0,
	          "put did not move modified_at forward");
	E2E_JSON_EQ(E2E_FETCH(s, w), after);
}

E2E_TEST(failing_post_rolls_back_the_whole_batch)
{
	json_int_t a = E2E_INT(E2E_CREATE(s, e2e_email_body("a@example.com")), "id");
	json_int_t b = E2E_INT(E2E_CREATE(s, e2e_email_body("b@example.com")), "id");
	json_t *patch = e2e_keep(json_pack("{s:I,s:s}", "id", b, "comments", "x"));
	json_t *posts = arr();
	json_array_append(posts, email("p0@example.com"));
	json_array_append(posts, email("p1@example.com"));
	json_array_append(posts, email("p2@example.com"));
	json_array_append(posts, email("not-an-email"));
	json_array_append(posts, email("p4@example.com"));
	json_t *err = REJECT_BATCH(s, batch_body(one(id_obj(a)), one(patch), arr(), posts), 1001,
	                           "/posts/3/pattern");
	assert_string_equal(e2e_error_pointer(err), "/posts/3/pattern");

	/* The ids burnt by a failed batch need not be reused, but nothing is visible. */
	json_t *c = E2E_CREATE(s, e2e_email_body("p0@example.com"));
	E2E_CHECK(E2E_INT(c, "id") > b, "ids went back");
}

E2E_TEST(delete_of_a_missing_id_fails_the_whole_batch)
{
	json_int_t a = E2E_INT(E2E_CREATE(s, e2e_email_body("a@example.com")), "id");
	json_t *deletes = arr();
	json_array_append(deletes, id_obj(a + 1000));
	json_array_append(deletes, id_obj(a));
	json_t *err = REJECT_BATCH(
	    s, batch_body(deletes, arr(), arr(), one(email("n@example.com"))), 0, "/deletes/0/id");
	assert_string_equal(e2e_error_pointer(err), "/deletes/0/id");

	deletes = arr();
	json_array_append(deletes, id_obj(a));
	json_array_append(deletes, id_obj(a));
	REJECT_BATCH(s, batch_body(deletes, arr(), arr(), arr()), 0, "/deletes/1");
}

E2E_TEST(patch_or_put_of_a_deleted_or_missing_id_fails)
{
	json_int_t a = E2E_INT(E2E_CREATE(s, e2e_email_body("a@example.com")), "id");
	json_t *patch = e2e_keep(json_pack("{s:I,s:s}", "id", a, "comments", "x"));
	REJECT_BATCH(s, batch_body(one(id_obj(a)), one(patch), arr(), arr()), 0, "/patches/0/id");

	json_t *missing = e2e_keep(json_pack("{s:I,s:s}", "id", a + 1000, "comments", "x"));
	REJECT_BATCH(s, batch_body(arr(), one(missing), arr(), arr()), 0, "/patches/0/id");

	json_t *put = with_id(email("a@example.com"), a + 1000);
	REJECT_BATCH(s, batch_body(arr(), arr(), one(put), arr()), 0, "/puts/0/id");
}

E2E_TEST(duplicate_inside_the_batch_fails_with_1003)
{
	json_t *posts = arr();
	json_array_append(posts, email("a@example.com"));
	json_array_append(posts, email("A@EXAMPLE.COM"));
	REJECT_BATCH(s, batch_body(arr(), arr(), arr(), posts), 1003, "/posts/1");

	E2E_CREATE(s, e2e_email_body("e@example.com"));
	posts = arr();
	json_array_append(posts, email("f@example.com"));
	json_array_append(posts, email("E@example.com"));
	REJECT_BATCH(s, batch_body(arr(), arr(), arr(), posts), 1003, "/posts/1");
}

E2E_TEST(delete_item_without_a_valid_id_is_named)
{
	E2E_CREATE(s, E2E_SEED_BODY);
	REJECT_BATCH(s, "{\"deletes\":[{\"id\":\"1\"}],\"patches\":[],\"puts\":[],\"posts\":[]}",
	             1001, "/deletes/0/id");
	REJECT_BATCH(s, "{\"deletes\":[{}],\"patches\":[],\"puts\":[],\"posts\":[]}", 1001,
	             "/deletes/0/id");
}

E2E_TEST(patch_item_without_an_id_is_named)
{
	E2E_CREATE(s, E2E_SEED_BODY);
	REJECT_BATCH(s,
	             "{\"deletes\":[],\"patches\":[{\"comments\":\"x\"}],\"puts\":[],"
	             "\"posts\":[]}",
	             1001, "/patches/0/id");
}

E2E_TEST(patch_item_with_an_unknown_field_is_named)
{
	json_int_t a = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	json_t *patch = e2e_keep(json_pack("{s:I,s:i}", "id", a, "foo", 1));
	REJECT_BATCH(s, batch_body(arr(), one(patch), arr(), arr()), 1001, "/patches/0/foo");
}

E2E_TEST(put_item_is_validated_like_a_create)
{
	json_int_t a = E2E_INT(E2E_CREATE(s, e2e_email_body("a@example.com")), "id");
	json_t *put = with_id(email("a@example.com"), a);
	json_object_del(put, "pattern_type");
	REJECT_BATCH(s, batch_body(arr(), arr(), one(put), arr()), 1001, "/puts/0/pattern_type");

	json_t *bad_put = with_id(
	    e2e_policy_obj("example.com", "DOMAIN", false, false, false, true, true, NULL), a);
	REJECT_BATCH(s, batch_body(arr(), arr(), one(bad_put), arr()), 1001,
	             "/puts/0/is_exempt_recipient");
}

E2E_TEST(post_item_is_validated_like_a_create)
{
	E2E_CREATE(s, E2E_SEED_BODY);
	json_t *posts = arr();
	json_array_append(posts, email("ok@example.com"));
	json_array_append(posts, with_id(email("b@example.com"), 5));
	REJECT_BATCH(s, batch_body(arr(), arr(), arr(), posts), 1001, "/posts/1/id");

	json_t *unknown = e2e_keep(json_deep_copy(email("c@example.com")));
	json_object_set_new(unknown, "foo", json_true());
	REJECT_BATCH(s, batch_body(arr(), arr(), arr(), one(unknown)), 1001, "/posts/0/foo");

	REJECT_BATCH(s, "{\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":[\"x\"]}", 1001,
	             "/posts/0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE(empty_batch_returns_four_empty_arrays),
	    E2E_CASE(each_of_the_four_arrays_is_required),
	    E2E_CASE(arrays_must_be_arrays_and_the_body_an_object),
	    E2E_CASE(more_than_1000_items_is_400),
	    E2E_CASE(exactly_1000_posts_are_accepted),
	    E2E_CASE(results_list_what_each_array_did),
	    E2E_CASE(deletes_apply_before_posts),
	    E2E_CASE(patches_apply_before_posts),
	    E2E_CASE(puts_apply_after_patches),
	    E2E_CASE(put_replaces_the_whole_policy_and_keeps_created_at),
	    E2E_CASE(failing_post_rolls_back_the_whole_batch),
	    E2E_CASE(delete_of_a_missing_id_fails_the_whole_batch),
	    E2E_CASE(patch_or_put_of_a_deleted_or_missing_id_fails),
	    E2E_CASE(duplicate_inside_the_batch_fails_with_1003),
	    E2E_CASE(delete_item_without_a_valid_id_is_named),
	    E2E_CASE(patch_item_without_an_id_is_named),
	    E2E_CASE(patch_item_with_an_unknown_field_is_named),
	    E2E_CASE(put_item_is_validated_like_a_create),
	    E2E_CASE(post_item_is_validated_like_a_create),
	};
	return cmocka_run_group_tests_name("e2e_batch", tests, NULL, NULL);
}

/*
 * test_validation.c - every validation rule of docs/api.md, sent as raw
 * bodies over HTTP; each rejection is a 400 (or 413) envelope naming the
 * field, and afterwards the account's policies are exactly as before.
 */
#include "harness.h"

#include <string.h>

static const char *const action_flags[] = {"is_trusted_sender", "is_acceptable_sender",
                                           "is_exempt_recipient"};

/*
 * Sends a request expected to fail with `status`/`code` (and `pointer`
 * unless NULL), then asserts every policy is unchanged.  Returns the error.
 */
static json_t *reject_at(e2e_server *s, const char *method, const char *path, const char *body,
                         size_t body_len, const char *content_type, long status, int code,
                         const char *pointer, const char *file, int line)
{
	json_t *before = e2e_list_all_at(s, file, line);
	e2e_request rq = {.method = method,
	                  .path = path,
	                  .body = body,
	                  .body_len = body_len,
	                  .content_type = content_type};
	e2e_response *r = e2e_do(s, &rq);
	json_t *err = e2e_assert_err_at(r, status, code, pointer, file, line);
	json_t *after = e2e_list_all_at(s, file, line);
	if (!json_equal(before, after))
		e2e_fail_at(file, line, "a rejected %s %s changed the policies:\n  %s\n  %s",
		            method, path, e2e_dumps(before), e2e_dumps(after));
	return err;
}

#define REJECT_CREATE(s, body, pointer)                                                            \
	reject_at((s), "POST", (s)->policies, (body), 0, NULL, 400, 1001, (pointer), __FILE__,     \
	          __LINE__)
#define REJECT_PATCH(s, id, body, pointer)                                                         \
	reject_at((s), "PATCH", e2e_strf("%s/%lld", (s)->policies, (long long)(id)), (body), 0,    \
	          NULL, 400, 1001, (pointer), __FILE__, __LINE__)

/* The seed with `key` set to the JSON text `value` (NULL: removed). */
static char *seed_with(const char *key, const char *value)
{
	json_t *o = e2e_keep(json_loads(E2E_SEED_BODY, 0, NULL));
	assert_non_null(o);
	if (value) {
		json_error_t err;
		json_t *v = json_loads(value, JSON_DECODE_ANY, &err);
		E2E_CHECK(v != NULL, "bad test value %s: %s", value, err.text);
		json_object_set_new(o, key, v);
	} else {
		json_object_del(o, key);
	}
	return e2e_dumps(o);
}

static char *body_of(const char *pattern, const char *type, bool is_regex, bool trusted,
                     bool acceptable, bool exempt)
{
	return e2e_dumps(
	    e2e_policy_obj(pattern, type, is_regex, trusted, acceptable, exempt, true, NULL));
}

static bool pointer_is_one_of(const json_t *err, const char *const *names, size_t n)
{
	const char *p = e2e_error_pointer(err);
	if (!p || p[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(p + 1, names[i]) == 0)
			return true;
	return false;
}

/* ---- body shape ------------------------------------------------------- */

E2E_TEST(malformed_json_is_400)
{
	static const char *const bodies[] = {
	    "{\"pattern\":",
	    "{'pattern':'a@example.com'}",
	    "{\"pattern\":\"a@example.com\",}",
	    "{\"pattern\":\"a@example.com\"",
	    "{} {}",
	    "{\"pattern\" \"a@example.com\"}",
	    "nul",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		REJECT_CREATE(s, bodies[i], NULL);
}

E2E_TEST(empty_body_is_400)
{
	reject_at(s, "POST", s->policies, "", 0, NULL, 400, 1001, NULL, __FILE__, __LINE__);
	e2e_request rq = {.method = "POST", .path = s->policies};
	E2E_ERR(e2e_do(s, &rq), 400, 1001, NULL);
	assert_int_equal(E2E_TOTAL(s), 0);
}

E2E_TEST(non_object_body_is_400)
{
	char *array_of_seed = e2e_strf("[%s]", E2E_SEED_BODY);
	const char *bodies[] = {"[]", array_of_seed, "\"test@example.com\"", "42", "null", "true"};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		REJECT_CREATE(s, bodies[i], NULL);
}

E2E_TEST(non_json_content_type_is_400)
{
	static const char *const types[] = {"text/plain", "application/x-www-form-urlencoded", "",
	                                    "application/jsonx", "multipart/form-data"};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		reject_at(s, "POST", s->policies, E2E_SEED_BODY, 0, types[i], 400, 1001, NULL,
		          __FILE__, __LINE__);
}

E2E_TEST(json_content_type_with_parameters_is_accepted)
{
	e2e_request rq = {.method = "POST",
	                  .path = s->policies,
	                  .body = E2E_SEED_BODY,
	                  .content_type = "application/json; charset=utf-8"};
	E2E_POLICY(E2E_OK(e2e_do(s, &rq), 201));
}

E2E_TEST(duplicate_keys_are_400)
{
	REJECT_CREATE(s,
	              "{\"pattern\":\"a@example.com\",\"pattern\":\"b@example.com\","
	              "\"pattern_type\":\"EMAIL\",\"is_regex\":false,\"is_trusted_sender\":true,"
	              "\"is_acceptable_sender\":false,\"is_exempt_recipient\":false,"
	              "\"verify_sender\":true}",
	              NULL);
}

E2E_TEST(deeply_nested_json_is_400_and_the_server_survives)
{
	char *deep =
	    e2e_strf("{\"comments\":%s1%s}", e2e_repeat("[", 100000), e2e_repeat("]", 100000));
	REJECT_CREATE(s, deep, NULL);
	REJECT_CREATE(s, e2e_repeat("[", 200000), NULL);
	e2e_request rq = {.path = "/healthz", .auth = E2E_AUTH_NONE};
	assert_int_equal(e2e_do(s, &rq)->status, 200);
}

/* ---- fields ----------------------------------------------------------- */

E2E_TEST(missing_each_required_field_is_named)
{
	static const char *const required[] = {
	    "pattern",           "pattern_type",         "is_regex",
	    "is_trusted_sender", "is_acceptable_sender", "is_exempt_recipient",
	    "verify_sender"};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		char *pointer = e2e_strf("/%s", required[i]);
		REJECT_CREATE(s, seed_with(required[i], NULL), pointer);
	}
}

E2E_TEST(deprecated_aliases_satisfy_required_fields)
{
	json_t *p = E2E_CREATE(s, "{\"pattern\":\"a@example.com\",\"pattern_type\":\"EMAIL\","
	                          "\"is_regex\":false,\"is_sender\":false,\"is_spoof\":true,"
	                          "\"is_recipient\":true,\"verify_sender\":true}");
	assert_false(E2E_BOOL(p, "is_trusted_sender"));
	assert_true(E2E_BOOL(p, "is_acceptable_sender"));
	assert_true(E2E_BOOL(p, "is_exempt_recipient"));
}

E2E_TEST(wrong_json_type_for_each_field_is_named)
{
	static const char *const cases[][2] = {
	    {"pattern", "1"},
	    {"pattern", "true"},
	    {"pattern", "null"},
	    {"pattern", "[\"a@example.com\"]"},
	    {"pattern", "{}"},
	    {"pattern_type", "1"},
	    {"pattern_type", "null"},
	    {"pattern_type", "[\"EMAIL\"]"},
	    {"is_regex", "\"false\""},
	    {"is_regex", "0"},
	    {"is_regex", "null"},
	    {"is_trusted_sender", "\"true\""},
	    {"is_trusted_sender", "1"},
	    {"is_trusted_sender", "null"},
	    {"is_acceptable_sender", "\"false\""},
	    {"is_acceptable_sender", "0"},
	    {"is_exempt_recipient", "\"false\""},
	    {"is_exempt_recipient", "[]"},
	    {"verify_sender", "\"true\""},
	    {"verify_sender", "1"},
	    {"comments", "5"},
	    {"comments", "true"},
	    {"comments", "[]"},
	    {"comments", "{}"},
	    {"is_sender", "\"true\""},
	    {"is_recipient", "0"},
	    {"is_spoof", "\"false\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *pointer = e2e_strf("/%s", cases[i][0]);
		REJECT_CREATE(s, seed_with(cases[i][0], cases[i][1]), pointer);
	}
}

E2E_TEST(unknown_field_is_rejected_by_name)
{
	json_t *err = REJECT_CREATE(s, seed_with("foo", "1"), "/foo");
	E2E_CHECK(e2e_contains_ci(json_string_value(json_object_get(err, "message")), "foo"),
	          "the message does not name the field: %s", e2e_dumps(err));
	REJECT_CREATE(s, seed_with("Pattern", "\"b@example.com\""), "/Pattern");
	REJECT_CREATE(s, seed_with("account_id", "\"x\""), "/account_id");
}

E2E_TEST(read_only_fields_are_rejected_on_create)
{
	static const char *const cases[][2] = {
	    {"id", "2401"},
	    {"created_at", "\"2019-12-27T18:11:19.117Z\""},
	    {"last_modified", "\"2019-12-27T18:11:19.117Z\""},
	    {"modified_at", "\"2019-12-27T18:11:19.117Z\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *pointer = e2e_strf("/%s", cases[i][0]);
		REJECT_CREATE(s, seed_with(cases[i][0], cases[i][1]), pointer);
	}
}

E2E_TEST(read_only_fields_are_rejected_on_patch)
{
	json_int_t id = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	REJECT_PATCH(s, id, "{\"id\":2401}", "/id");
	REJECT_PATCH(s, id, "{\"created_at\":\"2019-12-27T18:11:19.117Z\"}", "/created_at");
	REJECT_PATCH(s, id, "{\"last_modified\":\"2019-12-27T18:11:19.117Z\"}", "/last_modified");
	REJECT_PATCH(s, id, "{\"modified_at\":\"2019-12-27T18:11:19.117Z\"}", "/modified_at");
}

E2E_TEST(conflicting_deprecated_alias_is_400)
{
	static const char *const pairs[][3] = {
	    {"is_sender", "false", "is_trusted_sender"},     /* seed: true */
	    {"is_recipient", "true", "is_exempt_recipient"}, /* seed: false */
	    {"is_spoof", "true", "is_acceptable_sender"},    /* seed: false */
	};
	for (size_t i = 0; i < 3; i++) {
		json_t *err = REJECT_CREATE(s, seed_with(pairs[i][0], pairs[i][1]), NULL);
		const char *names[] = {pairs[i][0], pairs[i][2]};
		E2E_CHECK(pointer_is_one_of(err, names, 2), "conflict %s vs %s not named: %s",
		          pairs[i][0], pairs[i][2], e2e_dumps(err));
	}
}

E2E_TEST(agreeing_deprecated_alias_is_accepted)
{
	char *body = e2e_strf("{\"is_sender\":true,\"is_recipient\":false,\"is_spoof\":false,%s",
	                      &E2E_SEED_BODY[1]);
	json_t *p = E2E_CREATE(s, body);
	assert_true(E2E_BOOL(p, "is_trusted_sender"));
	assert_false(E2E_BOOL(p, "is_exempt_recipient"));
	assert_false(E2E_BOOL(p, "is_acceptable_sender"));
}

E2E_TEST(conflicting_deprecated_alias_on_patch_is_400)
{
	json_int_t id = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	json_t *err = REJECT_PATCH(s, id, "{\"is_trusted_sender\":true,\"is_sender\":false}", NULL);
	const char *names[] = {"is_sender", "is_trusted_sender"};
	E2E_CHECK(pointer_is_one_of(err, names, 2), "conflict not named: %s", e2e_dumps(err));
	E2E_OK(e2e_send(s, "PATCH", "{\"is_acceptable_sender\":true,\"is_spoof\":true}", "%s/%lld",
	                s->policies, (long long)id),
	       200);
}

/* ---- lengths and encodings -------------------------------------------- */

E2E_TEST(empty_pattern_is_400)
{
	REJECT_CREATE(s, seed_with("pattern", "\"\""), "/pattern");
}

E2E_TEST(pattern_over_1024_characters_is_400)
{
	/* 1013 + strlen("@example.com") = 1025 */
	char *email = e2e_strf("%s@example.com", e2e_repeat("a", 1013));
	REJECT_CREATE(s, body_of(email, "EMAIL", false, true, false, false), "/pattern");
	REJECT_CREATE(s, body_of(e2e_repeat("a", 1025), "EMAIL", true, true, false, false),
	              "/pattern");
	REJECT_CREATE(s, body_of(e2e_repeat("\xc3\xa9", 1025), "EMAIL", true, true, false, false),
	              "/pattern");
}

E2E_TEST(pattern_of_1024_characters_is_accepted)
{
	E2E_CREATE(s, body_of(e2e_repeat("a", 1024), "EMAIL", true, true, false, false));
	/* Characters, not bytes: 1024 two-byte characters. */
	E2E_CREATE(s, body_of(e2e_repeat("\xc3\xa9", 1024), "EMAIL", true, true, false, false));
}

E2E_TEST(comments_over_1024_characters_is_400)
{
	char *c1025 = e2e_strf("\"%s\"", e2e_repeat("c", 1025));
	REJECT_CREATE(s, seed_with("comments", c1025), "/comments");
	char *e1025 = e2e_strf("\"%s\"", e2e_repeat("\xc3\xa9", 1025));
	REJECT_CREATE(s, seed_with("comments", e1025), "/comments");
	json_int_t id = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	REJECT_PATCH(s, id, e2e_strf("{\"comments\":%s}", c1025), "/comments");
}

E2E_TEST(comments_of_1024_characters_is_accepted)
{
	char *c = e2e_repeat("c", 1024);
	json_t *p = E2E_CREATE(s, seed_with("comments", e2e_strf("\"%s\"", c)));
	assert_string_equal(E2E_STR(p, "comments"), c);
	char *e = e2e_repeat("\xc3\xa9", 1024);
	json_t *q = E2E_CREATE(s, body_of("b@example.com", "EMAIL", false, true, false, false));
	json_t *r = E2E_OK(e2e_send(s, "PATCH", e2e_strf("{\"comments\":\"%s\"}", e), "%s/%lld",
	                            s->policies, (long long)E2E_INT(q, "id")),
	                   200);
	assert_string_equal(E2E_STR(r, "comments"), e);
}

E2E_TEST(invalid_utf8_is_400)
{
	const char *tail =
	    ",\"pattern_type\":\"EMAIL\",\"is_regex\":true,\"is_trusted_sender\":true,"
	    "\"is_acceptable_sender\":false,\"is_exempt_recipient\":false,"
	    "\"verify_sender\":true";
	const char *bodies[] = {
	    e2e_strf("{\"pattern\":\"a\xff@example.com\"%s}", tail),
	    e2e_strf("{\"pattern\":\"a\xc3\x28@example.com\"%s}", tail),
	    e2e_strf("{\"pattern\":\"a\xc0\xaf@example.com\"%s}", tail),
	    e2e_strf("{\"pattern\":\"a\xed\xa0\x80@example.com\"%s}", tail),
	    e2e_strf("{\"pattern\":\"a\\ud800@example.com\"%s}", tail),
	    e2e_strf("{\"pattern\":\"a@example.com\"%s,\"comments\":\"bad \xfe\"}", tail),
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		REJECT_CREATE(s, bodies[i], NULL);
}

/* ---- rules ------------------------------------------------------------ */

E2E_TEST(pattern_type_must_be_email_domain_or_ip)
{
	static const char *const bad[] = {"\"UNKNOWN\"", "\"email\"", "\"Email\"", "\"\"",
	                                  "\"URL\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECT_CREATE(s, seed_with("pattern_type", bad[i]), "/pattern_type");
	json_int_t id = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	REJECT_PATCH(s, id, "{\"pattern_type\":\"UNKNOWN\"}", "/pattern_type");
}

E2E_TEST(at_least_one_action_flag_must_be_true)
{
	json_t *err =
	    REJECT_CREATE(s, body_of("a@example.com", "EMAIL", false, false, false, false), NULL);
	E2E_CHECK(pointer_is_one_of(err, action_flags, 3), "no flag named: %s", e2e_dumps(err));

	json_int_t id = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	err = REJECT_PATCH(s, id, "{\"is_trusted_sender\":false}", NULL);
	E2E_CHECK(pointer_is_one_of(err, action_flags, 3), "no flag named: %s", e2e_dumps(err));
}

E2E_TEST(each_action_flag_alone_is_enough)
{
	E2E_CREATE(s, body_of("a@example.com", "EMAIL", false, true, false, false));
	E2E_CREATE(s, body_of("b@example.com", "EMAIL", false, false, true, false));
	E2E_CREATE(s, body_of("c@example.com", "EMAIL", false, false, false, true));
}

E2E_TEST(exempt_recipient_only_for_email_or_regex)
{
	REJECT_CREATE(s, body_of("example.com", "DOMAIN", false, false, false, true),
	              "/is_exempt_recipient");
	REJECT_CREATE(s, body_of("1.2.3.4", "IP", false, true, false, true),
	              "/is_exempt_recipient");
	E2E_CREATE(s, body_of("a@example.com", "EMAIL", false, false, false, true));
	E2E_CREATE(s, body_of(".*\\.example\\.com", "DOMAIN", true, false, false, true));

	json_int_t id = E2E_INT(
	    E2E_CREATE(s, body_of("example.org", "DOMAIN", false, true, false, false)), "id");
	REJECT_PATCH(s, id, "{\"is_exempt_recipient\":true}", "/is_exempt_recipient");
}

E2E_TEST(invalid_email_patterns_are_400)
{
	const char *bad[] = {
	    "not-an-email",   "a@",
	    "@example.com",   "a b@example.com",
	    "a@@example.com", "a@exa mple.com",
	    "a@-example.com", "a@example..com",
	    "a.@example.com", e2e_strf("%s@example.com", e2e_repeat("l", 65)),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECT_CREATE(s, body_of(bad[i], "EMAIL", false, true, false, false), "/pattern");
}

E2E_TEST(valid_email_patterns_are_accepted)
{
	const char *good[] = {
	    "user.name+tag@example.com",
	    "user@b\xc3\xbc"
	    "cher.de",
	    "\"john doe\"@example.com",
	    e2e_strf("%s@example.com", e2e_repeat("l", 64)),
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_t *p = E2E_CREATE(s, body_of(good[i], "EMAIL", false, true, false, false));
		assert_string_equal(E2E_STR(p, "pattern"), good[i]);
	}
}

E2E_TEST(invalid_domain_patterns_are_400)
{
	const char *bad[] = {
	    "exa mple.com",
	    "example..com",
	    "-example.com",
	    "example-.com",
	    "http://example.com",
	    "a@example.com",
	    e2e_strf("%s.com", e2e_repeat("l", 64)),
	    e2e_strf("%scomx", e2e_repeat("abcdefghi.", 25)), /* 254 characters */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECT_CREATE(s, body_of(bad[i], "DOMAIN", false, true, false, false), "/pattern");
}

E2E_TEST(valid_domain_patterns_are_accepted)
{
	const char *good[] = {
	    "example.com",
	    "sub.example.co.uk",
	    "b\xc3\xbc"
	    "cher.de",
	    e2e_strf("%s.com", e2e_repeat("l", 63)),
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		E2E_CREATE(s, body_of(good[i], "DOMAIN", false, true, false, false));
}

E2E_TEST(invalid_ip_patterns_are_400)
{
	static const char *const bad[] = {
	    "10.0.0.1",  "127.0.0.1",       "192.168.1.1", "172.16.0.1",      "169.254.1.1",
	    "0.0.0.0",   "255.255.255.255", "10.0.0.0/8",  "1.2.3.4/24",      "1.2.3.0/33",
	    "300.1.2.3", "1.2.3",           "1.2.3.4.5",   "example.com",     "::1",
	    "::",        "fe80::1",         "fc00::1",     "::ffff:10.0.0.1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REJECT_CREATE(s, body_of(bad[i], "IP", false, true, false, false), "/pattern");
}

E2E_TEST(valid_ip_patterns_are_accepted)
{
	static const char *const good[] = {"1.2.3.4", "1.2.4.0/24", "8.8.8.8/32", "2606:4700::1111",
	                                   "2606:4700::/32"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		E2E_CREATE(s, body_of(good[i], "IP", false, true, false, false));
}

E2E_TEST(invalid_regex_is_400_with_the_offset)
{
	json_t *err =
	    REJECT_CREATE(s, body_of("(abc", "EMAIL", true, true, false, false), "/pattern");
	E2E_CHECK(e2e_contains_ci(json_string_value(json_object_get(err, "message")), "offset"),
	          "the message does not give the offset: %s", e2e_dumps(err));
	REJECT_CREATE(s, body_of("[a-", "DOMAIN", true, true, false, false), "/pattern");
	REJECT_CREATE(s, body_of("a{2,1}", "EMAIL", true, true, false, false), "/pattern");
	E2E_CREATE(s, body_of("^[a-z]+@example\\.com$", "EMAIL", true, true, false, false));
}

/* ---- uniqueness ------------------------------------------------------- */

E2E_TEST(duplicate_is_400_1003_naming_the_existing_id)
{
	json_int_t id = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	json_t *err = reject_at(s, "POST", s->policies,
	                        body_of("TEST@EXAMPLE.COM", "EMAIL", false, true, false, false), 0,
	                        NULL, 400, 1003, NULL, __FILE__, __LINE__);
	char *idstr = e2e_strf("%lld", (long long)id);
	E2E_CHECK(strstr(json_string_value(json_object_get(err, "message")), idstr) != NULL,
	          "the message does not name id %s: %s", idstr, e2e_dumps(err));
	reject_at(s, "POST", s->policies, E2E_SEED_BODY, 0, NULL, 400, 1003, NULL, __FILE__,
	          __LINE__);
}

E2E_TEST(duplicate_domain_is_case_and_idn_insensitive)
{
	E2E_CREATE(s, body_of("b\xc3\xbc"
	                      "cher.de",
	                      "DOMAIN", false, true, false, false));
	reject_at(s, "POST", s->policies,
	          body_of("xn--bcher-kva.de", "DOMAIN", false, true, false, false), 0, NULL, 400,
	          1003, NULL, __FILE__, __LINE__);
	E2E_CREATE(s, body_of("example.com", "DOMAIN", false, true, false, false));
	reject_at(s, "POST", s->policies,
	          body_of("EXAMPLE.com", "DOMAIN", false, true, false, false), 0, NULL, 400, 1003,
	          NULL, __FILE__, __LINE__);
}

E2E_TEST(same_pattern_with_other_is_regex_or_type_is_allowed)
{
	E2E_CREATE(s, E2E_SEED_BODY);
	E2E_CREATE(s, body_of("test@example.com", "EMAIL", true, true, false, false));
	E2E_CREATE(s, body_of("example", "EMAIL", true, true, false, false));
	E2E_CREATE(s, body_of("example", "DOMAIN", true, true, false, false));
	assert_int_equal(E2E_TOTAL(s), 4);
}

E2E_TEST(patch_into_a_duplicate_is_400_1003)
{
	json_int_t a = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	json_int_t b = E2E_INT(E2E_CREATE(s, e2e_email_body("other@example.com")), "id");
	json_t *err = reject_at(s, "PATCH", e2e_strf("%s/%lld", s->policies, (long long)b),
	                        "{\"pattern\":\"Test@Example.com\"}", 0, NULL, 400, 1003, NULL,
	                        __FILE__, __LINE__);
	char *idstr = e2e_strf("%lld", (long long)a);
	E2E_CHECK(strstr(json_string_value(json_object_get(err, "message")), idstr) != NULL,
	          "the message does not name id %s: %s", idstr, e2e_dumps(err));
	/* A policy is not a duplicate of itself. */
	E2E_OK(e2e_send(s, "PATCH", "{\"pattern\":\"TEST@example.com\"}", "%s/%lld", s->policies,
	                (long long)a),
	       200);
}

/* ---- PATCH ------------------------------------------------------------ */

E2E_TEST(patch_validates_the_merged_policy)
{
	json_int_t id = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	REJECT_PATCH(s, id, "{\"pattern\":\"not-an-email\"}", "/pattern");
	REJECT_PATCH(s, id, "{\"pattern\":\"\"}", "/pattern");
	REJECT_PATCH(s, id, "{\"pattern_type\":\"IP\"}", NULL);
	REJECT_PATCH(s, id, "{\"is_regex\":true,\"pattern\":\"(x\"}", "/pattern");
	REJECT_PATCH(s, id, "{\"pattern\":1}", "/pattern");
	REJECT_PATCH(s, id, "{\"verify_sender\":\"no\"}", "/verify_sender");
	REJECT_PATCH(s, id, "{\"foo\":true}", "/foo");
}

E2E_TEST(patch_body_shape_is_checked)
{
	json_int_t id = E2E_INT(E2E_CREATE(s, E2E_SEED_BODY), "id");
	char *path = e2e_strf("%s/%lld", s->policies, (long long)id);
	static const char *const bodies[] = {"[]", "\"x\"", "null", "{\"comments\":", "{} {}"};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		reject_at(s, "PATCH", path, bodies[i], 0, NULL, 400, 1001, NULL, __FILE__,
		          __LINE__);
	reject_at(s, "PATCH", path, "{\"comments\":\"x\"}", 0, "text/plain", 400, 1001, NULL,
	          __FILE__, __LINE__);
}

/* ---- path parameters -------------------------------------------------- */

E2E_TEST(policy_id_must_be_a_positive_32_bit_integer)
{
	E2E_CREATE(s, E2E_SEED_BODY);
	static const char *const bad[] = {"abc",        "0",   "-1",  "99999999999",
	                                  "2147483648", "1.5", "1e3", "0x10"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *path = e2e_strf("%s/%s", s->policies, bad[i]);
		reject_at(s, "GET", path, NULL, 0, NULL, 400, 1001, "/path/policy_id", __FILE__,
		          __LINE__);
		reject_at(s, "PATCH", path, "{\"comments\":\"x\"}", 0, NULL, 400, 1001,
		          "/path/policy_id", __FILE__, __LINE__);
		reject_at(s, "DELETE", path, NULL, 0, NULL, 400, 1001, "/path/policy_id", __FILE__,
		          __LINE__);
	}
}

E2E_TEST(account_id_must_be_32_hex_characters)
{
	E2E_CREATE(s, E2E_SEED_BODY);
	const char *bad[] = {"abc", e2e_repeat("a", 31), e2e_repeat("a", 33), e2e_repeat("z", 32),
	                     e2e_strf("%.31s-", s->account_id)};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *coll = e2e_strf(
		    "/client/v4/accounts/%s/email-security/settings/allow_policies", bad[i]);
		reject_at(s, "GET", coll, NULL, 0, NULL, 400, 1001, "/path/account_id", __FILE__,
		          __LINE__);
		reject_at(s, "POST", coll, e2e_email_body("new@example.com"), 0, NULL, 400, 1001,
		          "/path/account_id", __FILE__, __LINE__);
		reject_at(s, "GET", e2e_strf("%s/1", coll), NULL, 0, NULL, 400, 1001,
		          "/path/account_id", __FILE__, __LINE__);
	}
}

/* ---- body size -------------------------------------------------------- */

/* The seed padded with whitespace to exactly `size` bytes. */
static char *seed_of_size(size_t size)
{
	size_t base = strlen(E2E_SEED_BODY);
	assert_true(size > base);
	return e2e_strf("{%s%s", e2e_repeat(" ", size - base), &E2E_SEED_BODY[1]);
}

E2E_TEST(body_at_max_body_is_accepted)
{
	static const char *const args[] = {"--max-body", "4096", NULL};
	e2e_server *small = e2e_server_start(args);
	char *body = seed_of_size(4096);
	assert_int_equal(strlen(body), 4096);
	E2E_CREATE(small, body);
}

E2E_TEST(body_over_max_body_is_413)
{
	static const char *const args[] = {"--max-body", "4096", NULL};
	e2e_server *small = e2e_server_start(args);
	reject_at(small, "POST", small->policies, seed_of_size(4097), 0, NULL, 413, 1004, NULL,
	          __FILE__, __LINE__);
	reject_at(small, "POST", small->policies, seed_of_size(100000), 0, NULL, 413, 1004, NULL,
	          __FILE__, __LINE__);

	json_int_t id = E2E_INT(E2E_CREATE(small, E2E_SEED_BODY), "id");
	char *patch = e2e_strf("{%s\"comments\":\"x\"}", e2e_repeat(" ", 5000));
	reject_at(small, "PATCH", e2e_strf("%s/%lld", small->policies, (long long)id), patch, 0,
	          NULL, 413, 1004, NULL, __FILE__, __LINE__);
	char *batch = e2e_strf("{%s\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":[]}",
	                       e2e_repeat(" ", 5000));
	reject_at(small, "POST", e2e_strf("%s/batch", small->policies), batch, 0, NULL, 413, 1004,
	          NULL, __FILE__, __LINE__);
}

E2E_TEST(chunked_body_over_max_body_is_413)
{
	static const char *const args[] = {"--max-body", "4096", NULL};
	e2e_server *small = e2e_server_start(args);
	static const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
	json_t *before = E2E_LIST_ALL(small);
	e2e_request rq = {.method = "POST",
	                  .path = small->policies,
	                  .body = seed_of_size(20000),
	                  .headers = chunked};
	E2E_ERR(e2e_do(small, &rq), 413, 1004, NULL);
	E2E_JSON_EQ(E2E_LIST_ALL(small), before);
}

E2E_TEST(default_max_body_is_one_mebibyte)
{
	reject_at(s, "POST", s->policies, seed_of_size(1024 * 1024 + 1), 0, NULL, 413, 1004, NULL,
	          __FILE__, __LINE__);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE(malformed_json_is_400),
	    E2E_CASE(empty_body_is_400),
	    E2E_CASE(non_object_body_is_400),
	    E2E_CASE(non_json_content_type_is_400),
	    E2E_CASE(json_content_type_with_parameters_is_accepted),
	    E2E_CASE(duplicate_keys_are_400),
	    E2E_CASE(deeply_nested_json_is_400_and_the_server_survives),
	    E2E_CASE(missing_each_required_field_is_named),
	    E2E_CASE(deprecated_aliases_satisfy_required_fields),
	    E2E_CASE(wrong_json_type_for_each_field_is_named),
	    E2E_CASE(unknown_field_is_rejected_by_name),
	    E2E_CASE(read_only_fields_are_rejected_on_create),
	    E2E_CASE(read_only_fields_are_rejected_on_patch),
	    E2E_CASE(conflicting_deprecated_alias_is_400),
	    E2E_CASE(agreeing_deprecated_alias_is_accepted),
	    E2E_CASE(conflicting_deprecated_alias_on_patch_is_400),
	    E2E_CASE(empty_pattern_is_400),
	    E2E_CASE(pattern_over_1024_characters_is_400),
	    E2E_CASE(pattern_of_1024_characters_is_accepted),
	    E2E_CASE(comments_over_1024_characters_is_400),
	    E2E_CASE(comments_of_1024_characters_is_accepted),
	    E2E_CASE(invalid_utf8_is_400),
	    E2E_CASE(pattern_type_must_be_email_domain_or_ip),
	    E2E_CASE(at_least_one_action_flag_must_be_true),
	    E2E_CASE(each_action_flag_alone_is_enough),
	    E2E_CASE(exempt_recipient_only_for_email_or_regex),
	    E2E_CASE(invalid_email_patterns_are_400),
	    E2E_CASE(valid_email_patterns_are_accepted),
	    E2E_CASE(invalid_domain_patterns_are_400),
	    E2E_CASE(valid_domain_patterns_are_accepted),
	    E2E_CASE(invalid_ip_patterns_are_400),
	    E2E_CASE(valid_ip_patterns_are_accepted),
	    E2E_CASE(invalid_regex_is_400_with_the_offset),
	    E2E_CASE(duplicate_is_400_1003_naming_the_existing_id),
	    E2E_CASE(duplicate_domain_is_case_and_idn_insensitive),
	    E2E_CASE(same_pattern_with_other_is_regex_or_type_is_allowed),
	    E2E_CASE(patch_into_a_duplicate_is_400_1003),
	    E2E_CASE(patch_validates_the_merged_policy),
	    E2E_CASE(patch_body_shape_is_checked),
	    E2E_CASE(policy_id_must_be_a_positive_32_bit_integer),
	    E2E_CASE(account_id_must_be_32_hex_characters),
	    E2E_CASE_BARE(body_at_max_body_is_accepted),
	    E2E_CASE_BARE(body_over_max_body_is_413),
	    E2E_CASE_BARE(chunked_body_over_max_body_is_413),
	    E2E_CASE(default_max_body_is_one_mebibyte),
	};
	return cmocka_run_group_tests_name("e2e_validation", tests, NULL, NULL);
}

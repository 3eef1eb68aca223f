/*
 * test_policy_json.c - the policy JSON codec: required fields, types,
 * unknown and read-only fields, deprecated aliases, encoding, body parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "api/api.h"

#define SEED                                                                                       \
	"{\"is_acceptable_sender\":false,\"is_exempt_recipient\":false,\"is_regex\":false,"         \
	"\"is_trusted_sender\":true,\"pattern\":\"test@example.com\",\"pattern_type\":\"EMAIL\","   \
	"\"verify_sender\":true}"

static int decode(allowd_policy_patch *out, const char *text, policy_decode_mode mode)
{
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	int rc;
	assert_non_null(j);
	rc = allowd_json_decode_policy(out, j, mode);
	json_decref(j);
	return rc;
}

static void seed_decodes_with_every_field(void **state)
{
	allowd_policy_patch p;
	(void)state;
	assert_int_equal(decode(&p, SEED, DECODE_CREATE), 0);
	assert_int_equal(p.fields, ALLOWD_FIELDS_CREATE);
	assert_string_equal(p.v.pattern, "test@example.com");
	assert_int_equal(p.v.pattern_type, ALLOWD_PATTERN_EMAIL);
	assert_true(p.v.is_trusted_sender);
	assert_true(p.v.verify_sender);
	assert_false(p.v.is_regex);
	assert_null(p.v.comments);
	allowd_policy_clear(&p.v);
}

static void missing_field_is_named(void **state)
{
	allowd_policy_patch p;
	(void)state;
	assert_int_equal(decode(&p, "{\"pattern\":\"a@b.example\",\"pattern_type\":\"EMAIL\"}",
				DECODE_CREATE),
			 ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/is_regex");
	assert_non_null(strstr(allowd_error_last()->message, "is_regex is required"));
}

static void wrong_type_is_named(void **state)
{
	allowd_policy_patch p;
	(void)state;
	assert_int_equal(decode(&p, "{\"is_regex\":\"false\"}", DECODE_PATCH), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/is_regex");
	assert_int_equal(decode(&p, "{\"pattern\":5}", DECODE_PATCH), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/pattern");
	assert_int_equal(decode(&p, "{\"comments\":[]}", DECODE_PATCH), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/comments");
}

static void unknown_field_is_rejected_by_name(void **state)
{
	allowd_policy_patch p;
	(void)state;
	assert_int_equal(decode(&p, "{\"patern\":\"x\"}", DECODE_PATCH), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/patern");
	assert_non_null(strstr(allowd_error_last()->message, "unknown field 'patern'"));
	assert_int_equal(decode(&p, "{\"a/b~c\":1}", DECODE_PATCH), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/a~1b~0c");
}

static void read_only_fields_rejected_on_create_ignored_on_put(void **state)
{
	allowd_policy_patch p;
	(void)state;
	assert_int_equal(decode(&p, "{\"id\":5}", DECODE_CREATE), ALLOWD_EINVALID);
	assert_int_equal(decode(&p, "{\"created_at\":\"2020-01-01T00:00:00Z\"}", DECODE_PATCH),
			 ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/created_at");
	assert_int_equal(decode(&p,
				"{\"id\":7,\"created_at\":\"x\",\"modified_at\":\"y\",\"last_modified\":"
				"\"z\",\"is_acceptable_sender\":false,\"is_exempt_recipient\":false,"
				"\"is_regex\":false,\"is_trusted_sender\":true,\"pattern\":\"a@b.example\","
				"\"pattern_type\":\"EMAIL\",\"verify_sender\":true}",
				DECODE_PUT),
			 0);
	assert_int_equal(p.id, 7);
	allowd_policy_clear(&p.v);
}

static void batch_patch_requires_id(void **state)
{
	allowd_policy_patch p;
	(void)state;
	assert_int_equal(decode(&p, "{\"comments\":\"x\"}", DECODE_BATCH_PATCH), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/id");
	assert_int_equal(decode(&p, "{\"id\":0}", DECODE_BATCH_PATCH), ALLOWD_EINVALID);
	assert_int_equal(decode(&p, "{\"id\":2147483648}", DECODE_BATCH_PATCH), ALLOWD_EINVALID);
	assert_int_equal(decode(&p, "{\"id\":1.5}", DECODE_BATCH_PATCH), ALLOWD_EINVALID);
}

static void aliases_count_and_conflicts_fail(void **state)
{
	allowd_policy_patch p;
	(void)state;
	assert_int_equal(decode(&p, "{\"is_sender\":true,\"is_spoof\":true,\"is_recipient\":false}",
				DECODE_PATCH),
			 0);
	assert_true(p.fields & ALLOWD_FIELD_IS_TRUSTED_SENDER);
	assert_true(p.v.is_trusted_sender);
	assert_true(p.v.is_acceptable_sender);
	assert_true(p.fields & ALLOWD_FIELD_IS_EXEMPT_RECIPIENT);
	assert_int_equal(decode(&p, "{\"is_sender\":true,\"is_trusted_sender\":true}", DECODE_PATCH),
			 0);
	assert_int_equal(decode(&p, "{\"is_sender\":true,\"is_trusted_sender\":false}", DECODE_PATCH),
			 ALLOWD_EINVALID);
	assert_non_null(strstr(allowd_error_last()->message, "disagree"));
}

static void pattern_type_must_be_writable(void **state)
{
	allowd_policy_patch p;
	(void)state;
	assert_int_equal(decode(&p, "{\"pattern_type\":\"UNKNOWN\"}", DECODE_PATCH), ALLOWD_EINVALID);
	assert_int_equal(decode(&p, "{\"pattern_type\":\"email\"}", DECODE_PATCH), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "/pattern_type");
	assert_int_equal(decode(&p, "{\"pattern_type\":\"IP\",\"comments\":null}", DECODE_PATCH), 0);
	assert_true(p.fields & ALLOWD_FIELD_COMMENTS);
	assert_null(p.v.comments);
}

static void encode_mirrors_aliases_and_timestamps(void **state)
{
	allowd_policy p;
	json_t *j;
	(void)state;
	memset(&p, 0, sizeof(p));
	p.id = 2401;
	p.pattern = "test@example.com";
	p.pattern_type = ALLOWD_PATTERN_EMAIL;
	p.is_trusted_sender = true;
	p.is_exempt_recipient = true;
	p.created_at = 1577470279117LL;
	p.modified_at = 1577470280000LL;
	j = allowd_json_encode_policy(&p);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 2401);
	assert_string_equal(json_string_value(json_object_get(j, "created_at")),
			    "2019-12-27T18:11:19.117Z");
	assert_string_equal(json_string_value(json_object_get(j, "modified_at")),
			    "2019-12-27T18:11:20.000Z");
	assert_string_equal(json_string_value(json_object_get(j, "last_modified")),
			    "2019-12-27T18:11:20.000Z");
	assert_true(json_is_true(json_object_get(j, "is_sender")));
	assert_true(json_is_true(json_object_get(j, "is_recipient")));
	assert_true(json_is_false(json_object_get(j, "is_spoof")));
	assert_true(json_is_null(json_object_get(j, "comments")));
	assert_int_equal(json_object_size(j), 15);
	json_decref(j);
}

static void body_parsing_rules(void **state)
{
	json_t *j = NULL;
	(void)state;
	assert_int_equal(allowd_json_parse_body(&j, "text/plain", "{}", 2), ALLOWD_EINVALID);
	assert_int_equal(allowd_json_parse_body(&j, NULL, "{}", 2), ALLOWD_EINVALID);
	assert_int_equal(allowd_json_parse_body(&j, "application/json", "[]", 2), ALLOWD_EINVALID);
	assert_int_equal(allowd_json_parse_body(&j, "application/json", "{", 1), ALLOWD_EINVALID);
	assert_non_null(strstr(allowd_error_last()->message, "malformed JSON"));
	assert_int_equal(allowd_json_parse_body(&j, "application/json", "{\"a\":1,\"a\":2}", 13),
			 ALLOWD_EINVALID);
	assert_int_equal(allowd_json_parse_body(&j, "application/json", "{\"a\":\"\xff\"}", 8),
			 ALLOWD_EINVALID);
	assert_int_equal(allowd_json_parse_body(&j, "Application/JSON; charset=utf-8", "{}", 2), 0);
	json_decref(j);
}

static void policy_id_parsing(void **state)
{
	int64_t id;
	(void)state;
	assert_int_equal(allowd_parse_policy_id(&id, "2401"), 0);
	assert_int_equal(id, 2401);
	assert_int_equal(allowd_parse_policy_id(&id, "0"), ALLOWD_EINVALID);
	assert_int_equal(allowd_parse_policy_id(&id, "-1"), ALLOWD_EINVALID);
	assert_int_equal(allowd_parse_policy_id(&id, "+1"), ALLOWD_EINVALID);
	assert_int_equal(allowd_parse_policy_id(&id, "1x"), ALLOWD_EINVALID);
	assert_int_equal(allowd_parse_policy_id(&id, "2147483648"), ALLOWD_EINVALID);
	assert_int_equal(allowd_parse_policy_id(&id, ""), ALLOWD_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seed_decodes_with_every_field),
		cmocka_unit_test(missing_field_is_named),
		cmocka_unit_test(wrong_type_is_named),
		cmocka_unit_test(unknown_field_is_rejected_by_name),
		cmocka_unit_test(read_only_fields_rejected_on_create_ignored_on_put),
		cmocka_unit_test(batch_patch_requires_id),
		cmocka_unit_test(aliases_count_and_conflicts_fail),
		cmocka_unit_test(pattern_type_must_be_writable),
		cmocka_unit_test(encode_mirrors_aliases_and_timestamps),
		cmocka_unit_test(body_parsing_rules),
		cmocka_unit_test(policy_id_parsing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

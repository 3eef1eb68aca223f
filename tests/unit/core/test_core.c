/*
 * test_core.c - small shared pieces: RFC 3339 time, the option table, the
 * error table and error slot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "allowd/clock.h"
#include "allowd/config.h"
#include "allowd/error.h"

static void time_formats_with_milliseconds(void **state)
{
	char buf[ALLOWD_TIME_STR_MAX];
	(void)state;
	allowd_time_format(buf, sizeof(buf), 1577470279117LL);
	assert_string_equal(buf, "2019-12-27T18:11:19.117Z");
	allowd_time_format(buf, sizeof(buf), 0);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
}

static void time_parses_rfc3339(void **state)
{
	int64_t ms;
	(void)state;
	assert_int_equal(allowd_time_parse(&ms, "2019-12-27T18:11:19.117Z"), 0);
	assert_int_equal(ms, 1577470279117LL);
	assert_int_equal(allowd_time_parse(&ms, "2019-12-27T19:11:19.1+01:00"), 0);
	assert_int_equal(ms, 1577470279100LL);
	assert_int_equal(allowd_time_parse(&ms, "2019-12-27T18:11:19Z"), 0);
	assert_int_equal(allowd_time_parse(&ms, "2019-12-27 18:11:19Z"), ALLOWD_EINVALID);
	assert_int_equal(allowd_time_parse(&ms, "2019-13-27T18:11:19Z"), ALLOWD_EINVALID);
	assert_int_equal(allowd_time_parse(&ms, "2019-12-27T18:11:19"), ALLOWD_EINVALID);
	assert_int_equal(allowd_time_parse(&ms, ""), ALLOWD_EINVALID);
}

static void config_defaults_flags_and_env(void **state)
{
	allowd_config c;
	char *argv[] = {"allowd", "--listen", "127.0.0.1:0", "--threads=3", NULL};
	(void)state;
	setenv("ALLOWD_MAX_BODY", "4096", 1);
	setenv("ALLOWD_THREADS", "5", 1);
	allowd_config_defaults(&c);
	assert_string_equal(c.listen, "127.0.0.1:8787");
	assert_string_equal(c.data_dir, "./var");
	assert_int_equal(allowd_config_load(&c, 4, argv), 0);
	assert_string_equal(c.listen, "127.0.0.1:0");
	assert_int_equal(c.threads, 3); /* flag wins over env */
	assert_int_equal(c.max_body, 4096);
	allowd_config_clear(&c);
	unsetenv("ALLOWD_MAX_BODY");
	unsetenv("ALLOWD_THREADS");
}

static void config_rejects_bad_values(void **state)
{
	allowd_config c;
	char *bad_int[] = {"allowd", "--threads", "0", NULL};
	char *unknown[] = {"allowd", "--nope", "1", NULL};
	char *missing[] = {"allowd", "--listen", NULL};
	char *bad_bool[] = {"allowd", "--access-log", "maybe", NULL};
	(void)state;
	allowd_config_defaults(&c);
	assert_int_equal(allowd_config_load(&c, 3, bad_int), ALLOWD_EINVALID);
	assert_non_null(strstr(allowd_error_last()->message, "threads"));
	assert_int_equal(allowd_config_load(&c, 3, unknown), ALLOWD_EINVALID);
	assert_non_null(strstr(allowd_error_last()->message, "--nope"));
	assert_int_equal(allowd_config_load(&c, 2, missing), ALLOWD_EINVALID);
	assert_int_equal(allowd_config_load(&c, 3, bad_bool), ALLOWD_EINVALID);
	allowd_config_clear(&c);
}

static void error_table_maps_codes(void **state)
{
	(void)state;
	assert_int_equal(allowd_error_http_status(ALLOWD_EINVALID), 400);
	assert_int_equal(allowd_error_http_status(ALLOWD_EDUPLICATE), 400);
	assert_int_equal(allowd_error_http_status(ALLOWD_EBADHEADERS), 400);
	assert_int_equal(allowd_error_cf_code(ALLOWD_EBADHEADERS), 6003);
	assert_int_equal(allowd_error_http_status(ALLOWD_EAUTH), 403);
	assert_int_equal(allowd_error_cf_code(ALLOWD_EAUTH), 10000);
	assert_int_equal(allowd_error_http_status(ALLOWD_ENOTFOUND), 404);
	assert_int_equal(allowd_error_http_status(ALLOWD_ETOOLARGE), 413);
	assert_int_equal(allowd_error_http_status(ALLOWD_EUNAVAILABLE), 503);
	assert_int_equal(allowd_error_http_status(ALLOWD_ERR), 500);
	assert_int_equal(allowd_error_http_status(-999), 500);
}

static void error_slot_keeps_pointer_and_prefix(void **state)
{
	(void)state;
	assert_int_equal(allowd_error_set(ALLOWD_EINVALID, "/pattern", "bad %d", 7), ALLOWD_EINVALID);
	allowd_error_prefix_pointer("/posts/3");
	assert_string_equal(allowd_error_last()->pointer, "/posts/3/pattern");
	assert_string_equal(allowd_error_last()->message, "bad 7");
	allowd_error_clear();
	assert_int_equal(allowd_error_last()->code, 0);
}

/* "%.40s" of a key ending in "é" keeps only the é's first byte. */
static void error_message_cut_mid_character_keeps_the_text_before_it(void **state)
{
	const char *key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9"; /* 39 + 2 bytes */
	(void)state;
	allowd_error_set(ALLOWD_EINVALID, "/x", "unknown field '%.40s'", key);
	assert_string_equal(allowd_error_last()->message,
			    "unknown field 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'");
	allowd_error_set(ALLOWD_EINVALID, "/x", "unknown field '%.41s'", key);
	assert_string_equal(allowd_error_last()->message,
			    "unknown field 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9'");
}

static void error_pointer_cut_mid_character_is_kept(void **state)
{
	char ptr[64];
	(void)state;
	snprintf(ptr, sizeof(ptr), "/%.4s", "ab\xe2\x82\xac"); /* cuts the euro sign */
	allowd_error_set(ALLOWD_EINVALID, ptr, "bad");
	assert_string_equal(allowd_error_last()->pointer, "/ab");
	/* a four-byte character cut after each of its bytes */
	for (int cut = 1; cut < 4; cut++) {
		snprintf(ptr, sizeof(ptr), "/k%.*s", cut, "\xf0\x9f\x98\x80");
		allowd_error_set(ALLOWD_EINVALID, ptr, "bad");
		assert_string_equal(allowd_error_last()->pointer, "/k");
	}
	/* the prefix keeps a repaired pointer */
	allowd_error_prefix_pointer("/posts/1");
	assert_string_equal(allowd_error_last()->pointer, "/posts/1/k");
}

static void error_invalid_bytes_inside_a_message_become_question_marks(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"a\x80" "b", "a?b"},               /* stray continuation */
		{"a\xc0\xaf" "b", "a??b"},          /* overlong '/' */
		{"a\xe0\x80\xaf" "b", "a???b"},     /* overlong, three bytes */
		{"a\xed\xa0\x80" "b", "a???b"},     /* UTF-16 surrogate */
		{"a\xf4\x90\x80\x80" "b", "a????b"}, /* past U+10FFFF */
		{"a\xe2\x82" "b", "ab"},            /* a character cut short */
		{"a\xff\xfe" "b", "a??b"},
		{"a\xc3(b", "a(b"},               /* a lead byte without its continuation */
		{"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
		{"", ""},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		allowd_error_set(ALLOWD_EINVALID, cases[i].in, "%s", cases[i].in);
		assert_string_equal(allowd_error_last()->message, cases[i].out);
		assert_string_equal(allowd_error_last()->pointer, cases[i].out);
	}
}

/* A message longer than the slot is cut by the slot: still valid UTF-8. */
static void error_message_cut_by_the_slot_size_stays_valid(void **state)
{
	char big[ALLOWD_ERROR_MSG_MAX + 8];
	const allowd_error *e;
	(void)state;
	for (size_t i = 0; i + 2 < sizeof(big); i += 2) {
		big[i] = '\xc3';
		big[i + 1] = '\xa9';
	}
	big[sizeof(big) - 1] = '\0';
	allowd_error_set(ALLOWD_EINVALID, NULL, "%s", big);
	e = allowd_error_last();
	assert_int_equal(strlen(e->message), ALLOWD_ERROR_MSG_MAX - 2);
	assert_int_equal((unsigned char)e->message[strlen(e->message) - 1], 0xa9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(time_formats_with_milliseconds),
		cmocka_unit_test(time_parses_rfc3339),
		cmocka_unit_test(config_defaults_flags_and_env),
		cmocka_unit_test(config_rejects_bad_values),
		cmocka_unit_test(error_table_maps_codes),
		cmocka_unit_test(error_slot_keeps_pointer_and_prefix),
		cmocka_unit_test(error_message_cut_mid_character_keeps_the_text_before_it),
		cmocka_unit_test(error_pointer_cut_mid_character_is_kept),
		cmocka_unit_test(error_invalid_bytes_inside_a_message_become_question_marks),
		cmocka_unit_test(error_message_cut_by_the_slot_size_stays_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

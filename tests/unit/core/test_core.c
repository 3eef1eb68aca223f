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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(time_formats_with_milliseconds),
		cmocka_unit_test(time_parses_rfc3339),
		cmocka_unit_test(config_defaults_flags_and_env),
		cmocka_unit_test(config_rejects_bad_values),
		cmocka_unit_test(error_table_maps_codes),
		cmocka_unit_test(error_slot_keeps_pointer_and_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

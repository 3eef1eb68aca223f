/*
 * test_cli.c - allowctl in-process: every command, --json output, and the
 * exit codes scripts rely on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allowd/auth.h"
#include "allowd/cli.h"

static char dir[64];
static char out_buf[65536], err_buf[4096];

/* Runs allowctl --data-dir DIR --json ARGS...; captures stdout and stderr. */
static int ctl(const char *first, ...)
{
	char *argv[32];
	int argc = 0, rc;
	va_list ap;
	const char *a;
	FILE *out = tmpfile(), *err = tmpfile();
	size_t n;

	argv[argc++] = "allowctl";
	argv[argc++] = "--data-dir";
	argv[argc++] = dir;
	argv[argc++] = "--json";
	va_start(ap, first);
	for (a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)(uintptr_t)a;
	va_end(ap);
	argv[argc] = NULL;
	rc = allowd_cli_main(argc, argv, out, err);
	rewind(out);
	rewind(err);
	n = fread(out_buf, 1, sizeof(out_buf) - 1, out);
	out_buf[n] = '\0';
	n = fread(err_buf, 1, sizeof(err_buf) - 1, err);
	err_buf[n] = '\0';
	fclose(out);
	fclose(err);
	return rc;
}

static json_t *out_json(void)
{
	json_t *j = json_loads(out_buf, 0, NULL);
	assert_non_null(j);
	return j;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/allowctl-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static char *create_account(void)
{
	json_t *j;
	char *id;
	assert_int_equal(ctl("account", "create", "--name", "acme", NULL), 0);
	j = out_json();
	id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	assert_true(allowd_is_hex_id(id));
	return id;
}

static void accounts_create_list_delete(void **state)
{
	char *id = create_account();
	json_t *j;
	(void)state;
	assert_int_equal(ctl("account", "list", NULL), 0);
	j = out_json();
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "id")), id);
	json_decref(j);
	assert_int_equal(ctl("account", "delete", id, NULL), 0);
	assert_int_equal(ctl("account", "delete", id, NULL), ALLOWD_CLI_NOTFOUND);
	assert_int_equal(ctl("account", "delete", "nothex", NULL), ALLOWD_CLI_INVALID);
	assert_int_equal(ctl("account", "create", NULL), ALLOWD_CLI_USAGE);
	free(id);
}

static void users_and_keys(void **state)
{
	char *acc = create_account(), key1[64];
	json_t *j;
	(void)state;
	assert_int_equal(ctl("user", "create", "--email", "ops@example.com", NULL), 0);
	j = out_json();
	snprintf(key1, sizeof(key1), "%s", json_string_value(json_object_get(j, "api_key")));
	assert_int_equal(strlen(key1), ALLOWD_API_KEY_LEN);
	json_decref(j);
	assert_int_equal(ctl("user", "create", "--email", "ops@example.com", NULL), ALLOWD_CLI_INVALID);
	assert_int_equal(ctl("user", "create", "--email", "not an email", NULL), ALLOWD_CLI_INVALID);
	assert_int_equal(ctl("user", "add-to-account", "--email", "ops@example.com", "--account", acc,
			     "--role", "read", NULL),
			 0);
	assert_int_equal(ctl("user", "add-to-account", "--email", "ops@example.com", "--account", acc,
			     "--role", "admin", NULL),
			 ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("user", "add-to-account", "--email", "nobody@example.com", "--account",
			     acc, "--role", "read", NULL),
			 ALLOWD_CLI_NOTFOUND);
	assert_int_equal(ctl("user", "roll-key", "--email", "ops@example.com", NULL), 0);
	j = out_json();
	assert_string_not_equal(json_string_value(json_object_get(j, "api_key")), key1);
	json_decref(j);
	assert_int_equal(ctl("user", "list", NULL), 0);
	j = out_json();
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(json_array_get(j, 0), "accounts"), 0),
				    "role")),
			    "read");
	json_decref(j);
	assert_int_equal(ctl("user", "delete", "--email", "ops@example.com", NULL), 0);
	assert_int_equal(ctl("user", "delete", "--email", "ops@example.com", NULL), ALLOWD_CLI_NOTFOUND);
	free(acc);
}

static void tokens_lifecycle(void **state)
{
	char *a = create_account(), *b = create_account(), id[64];
	json_t *j, *t;
	(void)state;
	assert_int_equal(ctl("token", "create", "--account", a, "--perm", "write", "--account", b,
			     "--perm", "read", "--ip", "192.0.2.0/24", "--ip", "2001:db8::/32",
			     "--expires", "2099-01-01T00:00:00Z", NULL),
			 0);
	j = out_json();
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")));
	assert_int_equal(strlen(json_string_value(json_object_get(j, "token"))), ALLOWD_TOKEN_LEN);
	json_decref(j);
	assert_int_equal(ctl("token", "disable", id, NULL), 0);
	assert_int_equal(ctl("token", "list", NULL), 0);
	j = out_json();
	t = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(t, "status")), "disabled");
	assert_string_equal(json_string_value(json_object_get(t, "ip_ranges")),
			    "192.0.2.0/24,2001:db8::/32");
	assert_int_equal(json_array_size(json_object_get(t, "grants")), 2);
	assert_string_equal(json_string_value(json_object_get(t, "expires_on")),
			    "2099-01-01T00:00:00.000Z");
	json_decref(j);
	assert_int_equal(ctl("token", "enable", id, NULL), 0);
	assert_int_equal(ctl("token", "revoke", id, NULL), 0);
	assert_int_equal(ctl("token", "revoke", id, NULL), ALLOWD_CLI_NOTFOUND);
	/* bad inputs */
	assert_int_equal(ctl("token", "create", "--account", a, NULL), ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("token", "create", "--account", a, "--perm", "all", NULL),
			 ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("token", "create", "--account", a, "--perm", "read", "--ip", "bogus",
			     NULL),
			 ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("token", "create", "--account", a, "--perm", "read", "--expires",
			     "tomorrow", NULL),
			 ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("token", "create", "--account", "0123456789abcdef0123456789abcdef",
			     "--perm", "read", NULL),
			 ALLOWD_CLI_NOTFOUND);
	free(a);
	free(b);
}

static void usage_errors(void **state)
{
	(void)state;
	assert_int_equal(ctl("frob", "it", NULL), ALLOWD_CLI_USAGE);
	assert_non_null(strstr(err_buf, "unknown command"));
	assert_int_equal(ctl("account", "list", "--name", "x", NULL), ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("account", NULL), ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("--help", NULL), 0);
	assert_non_null(strstr(out_buf, "token create"));
	/*
	 * Errors inside the option loop, after a flag was stored: each exit
	 * frees the flags (LeakSanitizer fails the ASan run otherwise).
	 */
	assert_int_equal(ctl("--account", "abc", "--perm", NULL), ALLOWD_CLI_USAGE);
	assert_non_null(strstr(err_buf, "--perm"));
	assert_int_equal(ctl("--account", "abc", "--frob", "x", NULL), ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("--account", "abc", "--help", NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(accounts_create_list_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(users_and_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(tokens_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(usage_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

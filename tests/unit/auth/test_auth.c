/*
 * test_auth.c - credential shapes, wrong secrets, token states, the
 * both-credentials rule, authorisation, and the first-start bootstrap.
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
#include <sys/stat.h>
#include <unistd.h>

#include "allowd/auth.h"
#include "allowd/clock.h"
#include "allowd/error.h"

typedef struct fixture {
	char dir[64];
	allowd_store *s;
	allowd_auth *a;
	char account[64], token[64], email[64], key[64];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	allowd_store_options o = {0};
	char path[128];
	json_t *creds;
	int created;

	snprintf(f->dir, sizeof(f->dir), "/tmp/allowd-auth-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/t.db", f->dir);
	o.path = path;
	assert_int_equal(allowd_store_open(&f->s, &o), 0);
	assert_int_equal(allowd_auth_new(&f->a, f->s, f->dir), 0);
	assert_int_equal(allowd_auth_bootstrap(f->a, f->dir, &created), 0);
	assert_int_equal(created, 1);
	snprintf(path, sizeof(path), "%s/credentials.json", f->dir);
	creds = json_load_file(path, 0, NULL);
	assert_non_null(creds);
	snprintf(f->account, sizeof(f->account), "%s", json_string_value(json_object_get(creds, "account_id")));
	snprintf(f->token, sizeof(f->token), "Bearer %s", json_string_value(json_object_get(creds, "api_token")));
	snprintf(f->email, sizeof(f->email), "%s", json_string_value(json_object_get(creds, "email")));
	snprintf(f->key, sizeof(f->key), "%s", json_string_value(json_object_get(creds, "api_key")));
	json_decref(creds);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[128];
	allowd_auth_free(f->a);
	allowd_store_free(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int auth(fixture *f, const char *authorization, const char *email, const char *key,
		allowd_principal *p)
{
	allowd_credentials c = {authorization, email, key, "192.0.2.1"};
	allowd_principal tmp;
	int rc = allowd_auth_authenticate(f->a, p ? p : &tmp, &c);
	if (!p && rc == 0)
		allowd_principal_clear(&tmp);
	return rc;
}

static void assert_chain(int c0, int c1)
{
	const allowd_error *e = allowd_error_last();
	assert_int_equal(e->code, ALLOWD_EBADHEADERS);
	assert_int_equal(e->n_chain, c1 ? 2 : 1);
	assert_int_equal(e->chain[0], c0);
	if (c1)
		assert_int_equal(e->chain[1], c1);
}

static void bootstrap_writes_private_credentials_once(void **state)
{
	fixture *f = *state;
	char path[128];
	struct stat st;
	int created = -1;

	snprintf(path, sizeof(path), "%s/credentials.json", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(strlen(f->account), 32);
	assert_int_equal(strlen(f->token), 7 + ALLOWD_TOKEN_LEN);
	assert_int_equal(strlen(f->key), ALLOWD_API_KEY_LEN);
	assert_int_equal(allowd_auth_bootstrap(f->a, f->dir, &created), 0);
	assert_int_equal(created, 0);
}

static void missing_and_malformed_headers_give_chains(void **state)
{
	fixture *f = *state;
	assert_int_equal(auth(f, NULL, NULL, NULL, NULL), ALLOWD_EBADHEADERS);
	assert_chain(ALLOWD_CF_MISSING_EMAIL, ALLOWD_CF_MISSING_KEY);
	assert_int_equal(auth(f, NULL, f->email, NULL, NULL), ALLOWD_EBADHEADERS);
	assert_chain(ALLOWD_CF_MISSING_KEY, 0);
	assert_int_equal(auth(f, NULL, NULL, f->key, NULL), ALLOWD_EBADHEADERS);
	assert_chain(ALLOWD_CF_MISSING_EMAIL, 0);
	assert_int_equal(auth(f, NULL, f->email, "short", NULL), ALLOWD_EBADHEADERS);
	assert_chain(ALLOWD_CF_BAD_KEY, 0);
	assert_int_equal(auth(f, NULL, "no-at-sign", f->key, NULL), ALLOWD_EBADHEADERS);
	assert_chain(ALLOWD_CF_BAD_EMAIL, 0);
	assert_int_equal(auth(f, "Basic abc", NULL, NULL, NULL), ALLOWD_EBADHEADERS);
	assert_chain(ALLOWD_CF_BAD_AUTHORIZATION, 0);
	assert_int_equal(auth(f, "Bearer tooshort", NULL, NULL, NULL), ALLOWD_EBADHEADERS);
	assert_chain(ALLOWD_CF_BAD_AUTHORIZATION, 0);
}

static void wrong_secrets_are_authentication_errors(void **state)
{
	fixture *f = *state;
	char wrong[64];
	snprintf(wrong, sizeof(wrong), "%s", f->token);
	wrong[10] = wrong[10] == 'A' ? 'B' : 'A';
	assert_int_equal(auth(f, wrong, NULL, NULL, NULL), ALLOWD_EAUTH);
	snprintf(wrong, sizeof(wrong), "%s", f->key);
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	assert_int_equal(auth(f, NULL, f->email, wrong, NULL), ALLOWD_EAUTH);
	assert_int_equal(auth(f, NULL, "nobody@example.com", f->key, NULL), ALLOWD_EAUTH);
}

static void right_secrets_grant_write_on_own_account_only(void **state)
{
	fixture *f = *state;
	allowd_principal p;
	assert_int_equal(auth(f, f->token, NULL, NULL, &p), 0);
	assert_int_equal(allowd_auth_authorize(&p, f->account, ALLOWD_PERM_WRITE), 0);
	assert_int_equal(allowd_auth_authorize(&p, "00000000000000000000000000000000",
					       ALLOWD_PERM_READ),
			 ALLOWD_EFORBIDDEN);
	allowd_principal_clear(&p);
	assert_int_equal(auth(f, NULL, f->email, f->key, &p), 0);
	assert_int_equal(allowd_auth_authorize(&p, f->account, ALLOWD_PERM_WRITE), 0);
	allowd_principal_clear(&p);
}

static void a_wrong_credential_is_never_ignored(void **state)
{
	fixture *f = *state;
	char wrong[64];
	snprintf(wrong, sizeof(wrong), "%s", f->key);
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	assert_int_equal(auth(f, f->token, f->email, wrong, NULL), ALLOWD_EAUTH);
	assert_int_equal(auth(f, "Bearer 0000000000000000000000000000000000000000", f->email, f->key,
			      NULL),
			 ALLOWD_EAUTH);
	assert_int_equal(auth(f, f->token, f->email, f->key, NULL), 0);
}

static void read_token_cannot_write_and_expired_token_fails(void **state)
{
	fixture *f = *state;
	unsigned char hash[ALLOWD_HASH_LEN];
	allowd_grant g;
	allowd_token t = {.id = "0000000000000000000000000000000a", .active = true};
	allowd_principal p;
	const char *secret = "readreadreadreadreadreadreadreadreadread";
	char hdr[80];

	memcpy(g.account_id, f->account, sizeof(g.account_id));
	g.perm = ALLOWD_PERM_READ;
	t.grants = &g;
	t.n_grants = 1;
	allowd_auth_hash(f->a, hash, secret);
	assert_int_equal(allowd_store_token_create(f->s, &t, hash), 0);
	snprintf(hdr, sizeof(hdr), "Bearer %s", secret);
	assert_int_equal(auth(f, hdr, NULL, NULL, &p), 0);
	assert_int_equal(allowd_auth_authorize(&p, f->account, ALLOWD_PERM_READ), 0);
	assert_int_equal(allowd_auth_authorize(&p, f->account, ALLOWD_PERM_WRITE), ALLOWD_EFORBIDDEN);
	allowd_principal_clear(&p);
	/* both credentials: only the intersection (read) */
	assert_int_equal(auth(f, hdr, f->email, f->key, &p), 0);
	assert_int_equal(allowd_auth_authorize(&p, f->account, ALLOWD_PERM_WRITE), ALLOWD_EFORBIDDEN);
	allowd_principal_clear(&p);

	secret = "expiredexpiredexpiredexpiredexpiredexpir";
	memcpy(t.id, "0000000000000000000000000000000b", 33);
	t.expires_on = allowd_now_ms() - 1000;
	allowd_auth_hash(f->a, hash, secret);
	assert_int_equal(allowd_store_token_create(f->s, &t, hash), 0);
	snprintf(hdr, sizeof(hdr), "Bearer %s", secret);
	assert_int_equal(auth(f, hdr, NULL, NULL, NULL), ALLOWD_ETOKEN);
}

static void secrets_are_not_stored_in_clear(void **state)
{
	fixture *f = *state;
	char path[128], *buf;
	FILE *fp;
	long n;

	snprintf(path, sizeof(path), "%s/t.db", f->dir);
	allowd_store_free(f->s); /* checkpoint the WAL into the file */
	f->s = NULL;
	fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	assert_null(memmem(buf, (size_t)n, f->token + 7, ALLOWD_TOKEN_LEN));
	assert_null(memmem(buf, (size_t)n, f->key, ALLOWD_API_KEY_LEN));
	assert_non_null(memmem(buf, (size_t)n, f->account, 32)); /* sanity: the file is readable */
	free(buf);
	{
		allowd_store_options o = {.path = path};
		assert_int_equal(allowd_store_open(&f->s, &o), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(bootstrap_writes_private_credentials_once, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_and_malformed_headers_give_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(wrong_secrets_are_authentication_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(right_secrets_grant_write_on_own_account_only, setup, teardown),
		cmocka_unit_test_setup_teardown(a_wrong_credential_is_never_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(read_token_cannot_write_and_expired_token_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(secrets_are_not_stored_in_clear, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_credentials.c - credential headers through allowd_auth_authenticate
 * (src/auth/auth.c) against a real store bootstrapped with allowd's
 * first-start credentials, plus four more tokens: one limited to
 * 8.8.8.0/24 and 2606:4700::/32 with read-only access, one expired, one
 * disabled and one not yet valid.
 *
 * Input: byte 0 says which headers are present (bit 0 Authorization, bit 1
 * X-Auth-Email, bit 2 X-Auth-Key) and bits 3-4 the client address (none,
 * 8.8.8.8, 1.2.3.4, 2606:4700::5); the rest is split at NUL bytes into the
 * three values.  So that the fuzzer can reach the paths behind a right
 * secret, "$0".."$4" in a value stand for the five tokens, "$K" for the
 * Global API Key and "$E" for the user's email.
 *
 * Invariants: the outcome is exactly the one Cloudflare's rules give,
 * computed independently here -- header shapes first (EBADHEADERS with
 * the right error_chain), then every credential sent must be right (EAUTH
 * for a wrong one, ETOKEN for a token disabled, expired, not yet valid or
 * used from outside its ranges), and a request with both kinds gets the
 * intersection of their grants.  In particular bytes that do not hold a
 * real secret never authenticate, and the only codes are 0, EBADHEADERS,
 * EAUTH and ETOKEN.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "allowd/auth.h"
#include "allowd/clock.h"
#include "allowd/error.h"
#include "fuzz_common.h"

#define N_TOKENS 5
#define VALUE_MAX 8192

enum { T_BOOT, T_RANGED, T_EXPIRED, T_DISABLED, T_FUTURE };

static allowd_store *store;
static allowd_auth *auth;
static char account[ALLOWD_ACCOUNT_ID_LEN + 1];
static char tokens[N_TOKENS][ALLOWD_TOKEN_LEN + 1];
static char api_key[ALLOWD_API_KEY_LEN + 1];
static char email[64];

static void free_all(void)
{
	allowd_auth_free(auth);
	allowd_store_free(store);
}

static void add_token(int which, bool active, int64_t nbf, int64_t exp, const char *ranges,
		      allowd_perm perm)
{
	unsigned char hash[ALLOWD_HASH_LEN];
	allowd_grant g;
	allowd_token t;

	memset(&t, 0, sizeof(t));
	allowd_auth_random_id(t.id);
	allowd_auth_random_token(tokens[which]);
	t.active = true;
	t.not_before = nbf;
	t.expires_on = exp;
	t.ip_ranges = (char *)(uintptr_t)ranges;
	snprintf(g.account_id, sizeof(g.account_id), "%s", account);
	g.perm = perm;
	t.grants = &g;
	t.n_grants = 1;
	allowd_auth_hash(auth, hash, tokens[which]);
	if (allowd_store_token_create(store, &t, hash) != 0)
		abort();
	if (!active && allowd_store_token_set_active(store, t.id, false) != 0)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[600];
	allowd_store_options o = {.path = path, .busy_timeout_ms = 0};
	json_t *creds;
	json_error_t jerr;
	int created = 0;
	int64_t now = allowd_now_ms(), year = 365LL * 24 * 3600 * 1000;

	(void)argc;
	(void)argv;
	fuzz_path(path, sizeof(path), "auth.db");
	if (allowd_store_open(&store, &o) != 0 || allowd_auth_new(&auth, store, fuzz_tmpdir()) != 0 ||
	    allowd_auth_bootstrap(auth, fuzz_tmpdir(), &created) != 0 || !created)
		abort();
	fuzz_path(path, sizeof(path), "credentials.json");
	if (!(creds = json_load_file(path, 0, &jerr)))
		abort();
	snprintf(account, sizeof(account), "%s",
		 json_string_value(json_object_get(creds, "account_id")));
	snprintf(tokens[T_BOOT], sizeof(tokens[T_BOOT]), "%s",
		 json_string_value(json_object_get(creds, "api_token")));
	snprintf(api_key, sizeof(api_key), "%s", json_string_value(json_object_get(creds, "api_key")));
	snprintf(email, sizeof(email), "%s", json_string_value(json_object_get(creds, "email")));
	json_decref(creds);
	if (strlen(tokens[T_BOOT]) != ALLOWD_TOKEN_LEN || strlen(api_key) != ALLOWD_API_KEY_LEN)
		abort();

	add_token(T_RANGED, true, 0, 0, "8.8.8.0/24,2606:4700::/32", ALLOWD_PERM_READ);
	add_token(T_EXPIRED, true, 0, now - year, NULL, ALLOWD_PERM_WRITE);
	add_token(T_DISABLED, false, 0, 0, NULL, ALLOWD_PERM_WRITE);
	add_token(T_FUTURE, true, now + year, 0, NULL, ALLOWD_PERM_WRITE);
	atexit(free_all);
	return 0;
}

/* Copies src[0..n) into a NUL-terminated value, expanding the placeholders. */
static char *expand(const uint8_t *src, size_t n)
{
	char *out = malloc(VALUE_MAX + 1);
	size_t o = 0;

	if (!out)
		abort();
	for (size_t i = 0; i < n && o < VALUE_MAX; i++) {
		const char *sub = NULL;
		if (src[i] == '$' && i + 1 < n) {
			uint8_t c = src[i + 1];
			if (c >= '0' && c < '0' + N_TOKENS)
				sub = tokens[c - '0'];
			else if (c == 'K')
				sub = api_key;
			else if (c == 'E')
				sub = email;
		}
		if (sub) {
			size_t k = strlen(sub);
			if (o + k > VALUE_MAX)
				break;
			memcpy(out + o, sub, k);
			o += k;
			i++;
		} else {
			out[o++] = (char)src[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* ---- the rules, independently ------------------------------------------ */

static const char *bearer(const char *h)
{
	size_t i;
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	for (h += 7; *h == ' '; h++)
		;
	for (i = 0; h[i]; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '_')
			return NULL;
	return i == ALLOWD_TOKEN_LEN ? h : NULL;
}

static bool email_shape(const char *e)
{
	const char *at = strchr(e, '@');
	if (!at || at == e || !at[1] || strchr(at + 1, '@') || strlen(e) > 254)
		return false;
	for (; *e; e++)
		if ((unsigned char)*e <= ' ' || *e == 0x7f)
			return false;
	return true;
}

static bool key_shape(const char *k)
{
	size_t i;
	for (i = 0; k[i]; i++)
		if (!isxdigit((unsigned char)k[i]))
			return false;
	return i == ALLOWD_API_KEY_LEN;
}

typedef struct outcome {
	int rc;
	int chain[4], n_chain;
	allowd_perm perm; /* on the account, when rc == 0 */
	bool token_used;
} outcome;

static void expect(outcome *x, const allowd_credentials *c)
{
	const char *tok = NULL;
	bool pair = c->email || c->key;
	allowd_perm perm = ALLOWD_PERM_WRITE;

	memset(x, 0, sizeof(*x));
	if (!c->authorization && !pair) {
		x->rc = ALLOWD_EBADHEADERS;
		x->chain[x->n_chain++] = ALLOWD_CF_MISSING_EMAIL;
		x->chain[x->n_chain++] = ALLOWD_CF_MISSING_KEY;
		return;
	}
	if (c->authorization && !(tok = bearer(c->authorization))) {
		x->rc = ALLOWD_EBADHEADERS;
		x->chain[x->n_chain++] = ALLOWD_CF_BAD_AUTHORIZATION;
		return;
	}
	if (pair) {
		if (!c->email)
			x->chain[x->n_chain++] = ALLOWD_CF_MISSING_EMAIL;
		else if (!email_shape(c->email))
			x->chain[x->n_chain++] = ALLOWD_CF_BAD_EMAIL;
		if (!c->key)
			x->chain[x->n_chain++] = ALLOWD_CF_MISSING_KEY;
		else if (!key_shape(c->key))
			x->chain[x->n_chain++] = ALLOWD_CF_BAD_KEY;
		if (x->n_chain) {
			x->rc = ALLOWD_EBADHEADERS;
			return;
		}
	}
	if (tok) {
		int which = -1;
		for (int i = 0; i < N_TOKENS; i++)
			if (strcmp(tok, tokens[i]) == 0)
				which = i;
		if (which < 0) {
			x->rc = ALLOWD_EAUTH;
			return;
		}
		if (which == T_EXPIRED || which == T_DISABLED || which == T_FUTURE ||
		    (which == T_RANGED &&
		     !(c->client_ip && (strcmp(c->client_ip, "8.8.8.8") == 0 ||
					strcmp(c->client_ip, "2606:4700::5") == 0)))) {
			x->rc = ALLOWD_ETOKEN;
			return;
		}
		if (which == T_RANGED)
			perm = ALLOWD_PERM_READ;
		x->token_used = true;
	}
	if (pair && !(strcasecmp(c->email, email) == 0 && strcmp(c->key, api_key) == 0)) {
		x->rc = ALLOWD_EAUTH;
		return;
	}
	x->perm = perm;
}

static bool holds_secret(const allowd_credentials *c)
{
	for (int i = 0; i < N_TOKENS; i++)
		if (c->authorization && strstr(c->authorization, tokens[i]))
			return true;
	return c->key && strstr(c->key, api_key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ips[] = {NULL, "8.8.8.8", "1.2.3.4", "2606:4700::5"};
	char *values[3] = {NULL, NULL, NULL};
	const uint8_t *p, *end;
	allowd_credentials c;
	allowd_principal pr;
	outcome x;
	int rc;

	if (size < 1 || size > 3 * VALUE_MAX)
		return 0;
	p = data + 1;
	end = data + size;
	for (int i = 0; i < 3; i++) {
		const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
		size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
		if (data[0] & (1u << i))
			values[i] = expand(p, n);
		p = nul ? nul + 1 : end;
	}
	memset(&c, 0, sizeof(c));
	c.authorization = values[0];
	c.email = values[1];
	c.key = values[2];
	c.client_ip = ips[(data[0] >> 3) & 3u];

	expect(&x, &c);
	allowd_error_clear();
	rc = allowd_auth_authenticate(auth, &pr, &c);
	FUZZ_CHECK(rc == x.rc, "authenticate returned %d, the rules say %d (Authorization '%s', "
			       "X-Auth-Email '%s', X-Auth-Key '%s', client %s)",
		   rc, x.rc, c.authorization ? c.authorization : "(absent)",
		   c.email ? c.email : "(absent)", c.key ? c.key : "(absent)",
		   c.client_ip ? c.client_ip : "(none)");
	if (rc == 0) {
		FUZZ_CHECK(holds_secret(&c), "authenticated without a real secret");
		FUZZ_CHECK(allowd_auth_authorize(&pr, account, x.perm) == 0 &&
				   (x.perm == ALLOWD_PERM_WRITE ||
				    allowd_auth_authorize(&pr, account, ALLOWD_PERM_WRITE) != 0),
			   "the principal's permission on the account is not %d", (int)x.perm);
		FUZZ_CHECK(allowd_auth_authorize(&pr, "ffffffffffffffffffffffffffffffff",
						 ALLOWD_PERM_READ) != 0,
			   "a grant on an account nobody was given");
		FUZZ_CHECK((pr.token_id[0] != '\0') == x.token_used, "token_id '%s'", pr.token_id);
		FUZZ_CHECK(pr.rate_key[0] != '\0', "no rate-limit key");
	} else {
		const allowd_error *e = allowd_error_last();
		FUZZ_CHECK(e->code == rc, "error slot holds %d", e->code);
		FUZZ_CHECK(pr.grants == NULL && pr.n_grants == 0, "grants left on failure");
		if (rc == ALLOWD_EBADHEADERS) {
			FUZZ_CHECK(e->n_chain == x.n_chain, "error_chain has %d codes, expected %d",
				   e->n_chain, x.n_chain);
			for (int i = 0; i < x.n_chain; i++)
				FUZZ_CHECK(e->chain[i] == x.chain[i], "error_chain[%d] = %d, expected %d",
					   i, e->chain[i], x.chain[i]);
		}
		/* secrets never appear in messages */
		for (int i = 0; i < N_TOKENS; i++)
			FUZZ_CHECK(!strstr(e->message, tokens[i]), "a token in the error message");
		FUZZ_CHECK(!strstr(e->message, api_key), "the key in the error message");
	}
	allowd_principal_clear(&pr);
	for (int i = 0; i < 3; i++)
		free(values[i]);
	return 0;
}

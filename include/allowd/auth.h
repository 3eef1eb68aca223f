/*
 * auth.h - who is calling, and may they do this?
 *
 * Credentials arrive as Cloudflare sends them: `Authorization: Bearer
 * <token>` or `X-Auth-Email` + `X-Auth-Key` (the Global API Key).  Secrets
 * are never stored: the store keeps a keyed BLAKE2b hash (libsodium) of
 * each, under a server key kept in <data-dir>/auth.key (mode 0600), and
 * lookups compare hashes in constant time.
 *
 * When a request carries both kinds, both must be valid and the request
 * gets only what BOTH grant (the intersection): a wrong credential is
 * never ignored in favour of a right one.
 */
#ifndef ALLOWD_AUTH_H
#define ALLOWD_AUTH_H

#include <stddef.h>

#include "allowd/store.h"

typedef struct allowd_auth allowd_auth;

#define ALLOWD_TOKEN_LEN 40   /* [A-Za-z0-9_-] */
#define ALLOWD_API_KEY_LEN 37 /* lower-case hex */

/* Cloudflare error_chain codes under 6003. */
enum {
	ALLOWD_CF_MISSING_EMAIL = 6100,
	ALLOWD_CF_MISSING_KEY = 6101,
	ALLOWD_CF_BAD_EMAIL = 6102,
	ALLOWD_CF_BAD_KEY = 6103,
	ALLOWD_CF_BAD_AUTHORIZATION = 6111,
};

/* The message Cloudflare gives for an error_chain code. */
const char *allowd_auth_chain_message(int cf_code);

typedef struct allowd_credentials {
	const char *authorization; /* header values, NULL when absent */
	const char *email;
	const char *key;
	const char *client_ip;
} allowd_credentials;

typedef struct allowd_principal {
	allowd_grant *grants; /* account -> permission; owned */
	size_t n_grants;
	char token_id[ALLOWD_ACCOUNT_ID_LEN + 1]; /* "" when no token was used */
	int64_t not_before, expires_on;           /* the token's, ms; 0 = none */
	char rate_key[300]; /* what request limits count against: the token, else the user */
} allowd_principal;

void allowd_principal_clear(allowd_principal *p);

/*
 * Opens the authenticator over `store`, loading (or on first use creating)
 * the hashing key in <data_dir>/auth.key.
 */
int allowd_auth_new(allowd_auth **out, allowd_store *store, const char *data_dir);
void allowd_auth_free(allowd_auth *a);

/* Keyed hash of a secret, as stored. */
void allowd_auth_hash(const allowd_auth *a, unsigned char out[ALLOWD_HASH_LEN],
		      const char *secret);

/*
 * Authenticates the credentials.  Returns 0 and fills *out, or
 * ALLOWD_EBADHEADERS (missing or malformed; the error carries the chain),
 * ALLOWD_EAUTH (wrong key or token) or ALLOWD_ETOKEN (token disabled,
 * expired, not yet valid, or used from an address outside its ranges).
 * A token's last-used time is recorded at most once a minute.
 */
int allowd_auth_authenticate(allowd_auth *a, allowd_principal *out,
			     const allowd_credentials *c);

/* 0 when `p` holds at least `need` on `account_id`; ALLOWD_EFORBIDDEN otherwise. */
int allowd_auth_authorize(const allowd_principal *p, const char *account_id, allowd_perm need);

/*
 * On an empty store, creates the default account, a write token and a
 * user with a Global API Key, writes them to <data_dir>/credentials.json
 * (0600) and reports them through *created = 1.  Otherwise does nothing.
 */
int allowd_auth_bootstrap(allowd_auth *a, const char *data_dir, int *created);

/*
 * Checks a comma-separated list of CIDR blocks (a token's IP ranges) and
 * returns it normalised through *out (malloc'ed); ALLOWD_EINVALID names the
 * bad entry.
 */
int allowd_auth_ip_ranges_normalize(char **out, const char *ranges);

/* A fresh random secret: a 40-character API token or a 37-hex Global API Key. */
void allowd_auth_random_token(char out[ALLOWD_TOKEN_LEN + 1]);
void allowd_auth_random_key(char out[ALLOWD_API_KEY_LEN + 1]);
/* 32 random hex characters: an account or token id. */
void allowd_auth_random_id(char out[ALLOWD_ACCOUNT_ID_LEN + 1]);

/* True when s is 32 hexadecimal characters (an account or token id). */
int allowd_is_hex_id(const char *s);

#endif

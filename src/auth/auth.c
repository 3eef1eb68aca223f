/*
 * auth.c - credential checks (Cloudflare's header shapes), keyed hashing of
 * secrets, authorisation by account grant, and the first-start bootstrap.
 */
#include "allowd/auth.h"
#include "allowd/clock.h"
#include "allowd/error.h"
#include "allowd/log.h"
#include "allowd/netaddr.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_KEY_FILE "auth.key"
#define CREDENTIALS_FILE "credentials.json"
#define DEFAULT_EMAIL "admin@allowd.localhost"

/*
 * The token cache: what allowd_store_token_find() returned for a secret's
 * hash, so a keep-alive client's requests do not each read the database.
 * Direct-mapped by the hash (uniformly random).  An entry is used only
 * while the store's credentials generation is the one read BEFORE the
 * entry's database lookup -- every token, grant, account, user or
 * membership change, by allowd or allowctl, advances it, so disabling or
 * revoking a token takes effect on the next request -- and for at most
 * TOKEN_CACHE_TTL_MS (a backstop against changes made around the store,
 * e.g. with the sqlite3 shell).  Validity (active, not_before, expires_on,
 * IP ranges) is checked on every request against the entry, as against a
 * fresh row.  Wrong secrets are never cached.
 */
#define TOKEN_CACHE_SLOTS 256
#define TOKEN_CACHE_TTL_MS 5000

typedef struct token_slot {
	pthread_mutex_t lock;
	int valid;
	unsigned char hash[ALLOWD_HASH_LEN];
	uint64_t gen;
	int64_t filled_ms;
	allowd_token token; /* owns grants and ip_ranges */
} token_slot;

struct allowd_auth {
	allowd_store *store;
	token_slot *slots; /* [TOKEN_CACHE_SLOTS] */
	unsigned char key[crypto_generichash_KEYBYTES];
};

const char *allowd_auth_chain_message(int cf_code)
{
	switch (cf_code) {
	case ALLOWD_CF_MISSING_EMAIL:
		return "Missing X-Auth-Email header";
	case ALLOWD_CF_MISSING_KEY:
		return "Missing X-Auth-Key header";
	case ALLOWD_CF_BAD_EMAIL:
		return "Invalid format for X-Auth-Email header";
	case ALLOWD_CF_BAD_KEY:
		return "Invalid format for X-Auth-Key header";
	case ALLOWD_CF_BAD_AUTHORIZATION:
		return "Invalid format for Authorization header";
	default:
		return "Invalid request headers";
	}
}

void allowd_principal_clear(allowd_principal *p)
{
	if (!p)
		return;
	free(p->grants);
	memset(p, 0, sizeof(*p));
}

int allowd_is_hex_id(const char *s)
{
	size_t i;
	for (i = 0; s[i]; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return i == ALLOWD_ACCOUNT_ID_LEN;
}

static int path_join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= len)
		return allowd_error_set(ALLOWD_ERR, NULL, "path too long: %s/%s", dir, name);
	return 0;
}

/* Writes `len` bytes to `path` atomically (temp file, fsync, rename), mode 0600. */
static int write_file_atomic(const char *path, const void *data, size_t len)
{
	char tmp[4096];
	const char *p = data;
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return allowd_error_set(ALLOWD_ERR, NULL, "path too long: %s", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return allowd_error_set(ALLOWD_ERR, NULL, "cannot create %s: %s", tmp, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = allowd_error_set(ALLOWD_ERR, NULL, "cannot write %s: %s", tmp,
					      strerror(errno));
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (!rc && fsync(fd) != 0)
		rc = allowd_error_set(ALLOWD_ERR, NULL, "cannot sync %s: %s", tmp, strerror(errno));
	close(fd);
	if (!rc && rename(tmp, path) != 0)
		rc = allowd_error_set(ALLOWD_ERR, NULL, "cannot rename %s: %s", tmp, strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}

static int load_or_create_key(allowd_auth *a, const char *data_dir)
{
	char path[4096];
	int fd, rc;
	ssize_t n;

	if ((rc = path_join(path, sizeof(path), data_dir, AUTH_KEY_FILE)))
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, a->key, sizeof(a->key));
		close(fd);
		if (n != (ssize_t)sizeof(a->key))
			return allowd_error_set(ALLOWD_ERR, NULL, "%s is damaged (expected %zu bytes)",
						path, sizeof(a->key));
		return 0;
	}
	if (errno != ENOENT)
		return allowd_error_set(ALLOWD_ERR, NULL, "cannot read %s: %s", path, strerror(errno));
	randombytes_buf(a->key, sizeof(a->key));
	return write_file_atomic(path, a->key, sizeof(a->key));
}

int allowd_auth_new(allowd_auth **out, allowd_store *store, const char *data_dir)
{
	allowd_auth *a;
	int rc;

	if (sodium_init() < 0)
		return allowd_error_set(ALLOWD_ERR, NULL, "libsodium failed to initialise");
	if (!(a = sodium_malloc(sizeof(*a))))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	a->store = store;
	if (!(a->slots = calloc(TOKEN_CACHE_SLOTS, sizeof(*a->slots)))) {
		sodium_free(a);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	for (int i = 0; i < TOKEN_CACHE_SLOTS; i++)
		pthread_mutex_init(&a->slots[i].lock, NULL);
	if ((rc = load_or_create_key(a, data_dir))) {
		allowd_auth_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void allowd_auth_free(allowd_auth *a)
{
	if (!a)
		return;
	for (int i = 0; a->slots && i < TOKEN_CACHE_SLOTS; i++) {
		allowd_token_clear(&a->slots[i].token);
		pthread_mutex_destroy(&a->slots[i].lock);
	}
	free(a->slots);
	sodium_free(a); /* zeroes the key */
}

void allowd_auth_hash(const allowd_auth *a, unsigned char out[ALLOWD_HASH_LEN], const char *secret)
{
	crypto_generichash(out, ALLOWD_HASH_LEN, (const unsigned char *)secret, strlen(secret),
			   a->key, sizeof(a->key));
}

/* ---- header shapes -------------------------------------------------- */

static int is_token_char(int c)
{
	return isalnum(c) || c == '-' || c == '_';
}

/* Returns the token inside "Bearer <token>", or NULL when malformed. */
static const char *bearer_token(const char *h)
{
	size_t i;

	if (strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	for (i = 0; h[i]; i++)
		if (!is_token_char((unsigned char)h[i]))
			return NULL;
	return i == ALLOWD_TOKEN_LEN ? h : NULL;
}

static int valid_api_key(const char *k)
{
	size_t i;
	for (i = 0; k[i]; i++)
		if (!isxdigit((unsigned char)k[i]))
			return 0;
	return i == ALLOWD_API_KEY_LEN;
}

static int valid_email_header(const char *e)
{
	const char *at = strchr(e, '@');
	size_t len = strlen(e);

	if (!at || at == e || !at[1] || strchr(at + 1, '@') || len > 254)
		return 0;
	for (; *e; e++)
		if ((unsigned char)*e <= ' ' || *e == 0x7f)
			return 0;
	return 1;
}

/* ---- principals ----------------------------------------------------- */

static allowd_perm grant_for(const allowd_grant *g, size_t n, const char *account_id)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(g[i].account_id, account_id) == 0)
			return g[i].perm;
	return ALLOWD_PERM_NONE;
}

/* Keeps in `p` only what `g` also grants (the intersection). */
static void intersect(allowd_principal *p, const allowd_grant *g, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < p->n_grants; i++) {
		allowd_perm other = grant_for(g, n, p->grants[i].account_id);
		if (other < p->grants[i].perm)
			p->grants[i].perm = other;
		if (p->grants[i].perm != ALLOWD_PERM_NONE)
			p->grants[k++] = p->grants[i];
	}
	p->n_grants = k;
}

/* True when `ip` lies in one of the comma-separated blocks (or there are none). */
static bool ip_in_ranges(const char *ranges, const char *ip)
{
	char item[80];
	uint8_t addr[16];
	const char *p = ranges;

	if (!ranges || !*ranges)
		return true;
	if (!ip || allowd_ip_parse(addr, ip))
		return false;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		allowd_cidr c;
		if (n < sizeof(item)) {
			memcpy(item, p, n);
			item[n] = '\0';
			if (allowd_cidr_parse(&c, item) == 0 && allowd_cidr_contains(&c, addr))
				return true;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

int allowd_auth_ip_ranges_normalize(char **out, const char *ranges)
{
	size_t cap = strlen(ranges) + 1, len = 0;
	char *buf = malloc(cap), item[80];
	const char *p = ranges;

	if (!buf)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	buf[0] = '\0';
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		allowd_cidr c;
		if (n == 0 || n >= sizeof(item)) {
			free(buf);
			return allowd_error_set(ALLOWD_EINVALID, NULL, "empty or overlong IP range");
		}
		memcpy(item, p, n);
		item[n] = '\0';
		if (allowd_cidr_parse(&c, item)) {
			free(buf);
			return allowd_error_set(ALLOWD_EINVALID, NULL,
						"'%s' is not an IP address or CIDR block", item);
		}
		memcpy(buf + len, item, n);
		len += n;
		buf[len] = '\0';
		p += n;
		if (*p == ',') {
			p++;
			buf[len++] = ',';
			buf[len] = '\0';
		}
	}
	*out = buf;
	return 0;
}

/* A deep copy of a token (grants and ip_ranges); 0 or ALLOWD_ERR. */
static int token_copy(allowd_token *out, const allowd_token *t)
{
	*out = *t;
	out->grants = NULL;
	out->ip_ranges = NULL;
	if ((t->n_grants && !(out->grants = malloc(t->n_grants * sizeof(*t->grants)))) ||
	    (t->ip_ranges && !(out->ip_ranges = strdup(t->ip_ranges)))) {
		allowd_token_clear(out);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	if (t->n_grants)
		memcpy(out->grants, t->grants, t->n_grants * sizeof(*t->grants));
	return 0;
}

static token_slot *slot_for(allowd_auth *a, const unsigned char hash[ALLOWD_HASH_LEN])
{
	return &a->slots[((unsigned)hash[0] | (unsigned)hash[1] << 8) % TOKEN_CACHE_SLOTS];
}

/* allowd_store_token_find() through the token cache (see token_slot). */
static int find_token(allowd_auth *a, allowd_token *out, const unsigned char hash[ALLOWD_HASH_LEN],
		      int64_t now)
{
	token_slot *slot = slot_for(a, hash);
	uint64_t gen = 0;
	int cacheable = allowd_store_credentials_generation(a->store, &gen) == 0;
	int rc, hit = 0;

	if (cacheable) {
		pthread_mutex_lock(&slot->lock);
		if (slot->valid && slot->gen == gen && now - slot->filled_ms < TOKEN_CACHE_TTL_MS &&
		    now >= slot->filled_ms && sodium_memcmp(slot->hash, hash, ALLOWD_HASH_LEN) == 0)
			hit = token_copy(out, &slot->token) == 0;
		pthread_mutex_unlock(&slot->lock);
		if (hit)
			return 0;
	}
	if ((rc = allowd_store_token_find(a->store, out, hash)) || !cacheable)
		return rc;
	pthread_mutex_lock(&slot->lock);
	allowd_token_clear(&slot->token);
	slot->valid = token_copy(&slot->token, out) == 0;
	memcpy(slot->hash, hash, ALLOWD_HASH_LEN);
	slot->gen = gen; /* read before the lookup: a change since makes the entry stale */
	slot->filled_ms = now;
	pthread_mutex_unlock(&slot->lock);
	return 0;
}

/* Keeps a cached token's last-used time current after a touch. */
static void note_touch(allowd_auth *a, const unsigned char hash[ALLOWD_HASH_LEN], int64_t now)
{
	token_slot *slot = slot_for(a, hash);

	pthread_mutex_lock(&slot->lock);
	if (slot->valid && sodium_memcmp(slot->hash, hash, ALLOWD_HASH_LEN) == 0 &&
	    slot->token.last_used < now)
		slot->token.last_used = now;
	pthread_mutex_unlock(&slot->lock);
}

static int check_token(allowd_auth *a, allowd_principal *out, const char *token,
		       const char *client_ip)
{
	unsigned char hash[ALLOWD_HASH_LEN];
	allowd_token t;
	int64_t now = allowd_now_ms();
	int rc;

	allowd_auth_hash(a, hash, token);
	rc = find_token(a, &t, hash, now);
	if (rc == ALLOWD_ENOTFOUND)
		rc = allowd_error_set(ALLOWD_EAUTH, NULL, "Authentication error");
	else if (rc == 0 && (!t.active || (t.not_before && now < t.not_before) ||
			     (t.expires_on && now >= t.expires_on) ||
			     !ip_in_ranges(t.ip_ranges, client_ip))) {
		allowd_token_clear(&t);
		rc = allowd_error_set(ALLOWD_ETOKEN, NULL, "Invalid access token");
	} else if (rc == 0 && now - t.last_used >= 60000) {
		allowd_store_token_touch(a->store, t.id, now);
		note_touch(a, hash, now);
	}
	sodium_memzero(hash, sizeof(hash));
	if (rc)
		return rc;
	memcpy(out->token_id, t.id, sizeof(out->token_id));
	out->not_before = t.not_before;
	out->expires_on = t.expires_on;
	snprintf(out->rate_key, sizeof(out->rate_key), "token:%s", t.id);
	out->grants = t.grants;
	out->n_grants = t.n_grants;
	t.grants = NULL;
	allowd_token_clear(&t);
	return 0;
}

static int check_key(allowd_auth *a, allowd_user *u, const char *email, const char *key)
{
	unsigned char hash[ALLOWD_HASH_LEN];
	int rc, same;

	allowd_auth_hash(a, hash, key);
	rc = allowd_store_user_find(a->store, u, email);
	if (rc == ALLOWD_ENOTFOUND) {
		sodium_memzero(hash, sizeof(hash));
		return allowd_error_set(ALLOWD_EAUTH, NULL, "Authentication error");
	}
	if (rc)
		return rc;
	same = sodium_memcmp(hash, u->key_hash, ALLOWD_HASH_LEN) == 0;
	sodium_memzero(hash, sizeof(hash));
	if (!same) {
		allowd_user_clear(u);
		return allowd_error_set(ALLOWD_EAUTH, NULL, "Authentication error");
	}
	return 0;
}

int allowd_auth_authenticate(allowd_auth *a, allowd_principal *out, const allowd_credentials *c)
{
	const char *token = NULL;
	int has_key_pair = c->email || c->key;
	allowd_user u;
	int rc;

	memset(out, 0, sizeof(*out));

	/* 1. shapes: every header sent must be well formed */
	if (!c->authorization && !has_key_pair) {
		allowd_error_set(ALLOWD_EBADHEADERS, NULL, "Invalid request headers");
		allowd_error_chain_add(ALLOWD_CF_MISSING_EMAIL);
		allowd_error_chain_add(ALLOWD_CF_MISSING_KEY);
		return ALLOWD_EBADHEADERS;
	}
	if (c->authorization && !(token = bearer_token(c->authorization))) {
		allowd_error_set(ALLOWD_EBADHEADERS, NULL, "Invalid request headers");
		allowd_error_chain_add(ALLOWD_CF_BAD_AUTHORIZATION);
		return ALLOWD_EBADHEADERS;
	}
	if (has_key_pair) {
		int chain[2], n = 0;
		if (!c->email)
			chain[n++] = ALLOWD_CF_MISSING_EMAIL;
		else if (!valid_email_header(c->email))
			chain[n++] = ALLOWD_CF_BAD_EMAIL;
		if (!c->key)
			chain[n++] = ALLOWD_CF_MISSING_KEY;
		else if (!valid_api_key(c->key))
			chain[n++] = ALLOWD_CF_BAD_KEY;
		if (n) {
			allowd_error_set(ALLOWD_EBADHEADERS, NULL, "Invalid request headers");
			for (int i = 0; i < n; i++)
				allowd_error_chain_add(chain[i]);
			return ALLOWD_EBADHEADERS;
		}
	}

	/* 2. every credential sent must be right */
	if (token && (rc = check_token(a, out, token, c->client_ip)))
		goto fail;
	if (has_key_pair) {
		if ((rc = check_key(a, &u, c->email, c->key)))
			goto fail;
		if (token) {
			intersect(out, u.grants, u.n_grants);
		} else {
			out->grants = u.grants;
			out->n_grants = u.n_grants;
			u.grants = NULL;
			snprintf(out->rate_key, sizeof(out->rate_key), "user:%s", u.email);
		}
		allowd_user_clear(&u);
	}
	return 0;
fail:
	allowd_principal_clear(out);
	return rc;
}

int allowd_auth_authorize(const allowd_principal *p, const char *account_id, allowd_perm need)
{
	if (grant_for(p->grants, p->n_grants, account_id) >= need)
		return 0;
	return allowd_error_set(ALLOWD_EFORBIDDEN, NULL, "Authentication error");
}

/* ---- bootstrap ------------------------------------------------------ */

static void random_hex(char *out, size_t nchars)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < nchars; i++)
		out[i] = hex[randombytes_uniform(16)];
	out[nchars] = '\0';
}

static void random_token(char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	for (size_t i = 0; i < ALLOWD_TOKEN_LEN; i++)
		out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	out[ALLOWD_TOKEN_LEN] = '\0';
}

void allowd_auth_random_token(char out[ALLOWD_TOKEN_LEN + 1])
{
	random_token(out);
}

void allowd_auth_random_key(char out[ALLOWD_API_KEY_LEN + 1])
{
	random_hex(out, ALLOWD_API_KEY_LEN);
}

void allowd_auth_random_id(char out[ALLOWD_ACCOUNT_ID_LEN + 1])
{
	random_hex(out, ALLOWD_ACCOUNT_ID_LEN);
}

int allowd_auth_bootstrap(allowd_auth *a, const char *data_dir, int *created)
{
	char account[ALLOWD_ACCOUNT_ID_LEN + 1], token[ALLOWD_TOKEN_LEN + 1],
		key[ALLOWD_API_KEY_LEN + 1], path[4096];
	unsigned char hash[ALLOWD_HASH_LEN];
	allowd_grant grant;
	allowd_token t;
	json_t *creds = NULL;
	char *text = NULL;
	int64_t n;
	int rc;

	*created = 0;
	if ((rc = allowd_store_account_count(a->store, &n)))
		return rc;
	if (n > 0)
		return 0;

	random_hex(account, ALLOWD_ACCOUNT_ID_LEN);
	random_token(token);
	random_hex(key, ALLOWD_API_KEY_LEN);

	/* the file first: if we crash before the rows exist, the next start redoes both */
	creds = json_pack("{s:s, s:s, s:s, s:s}", "account_id", account, "api_token", token,
			  "email", DEFAULT_EMAIL, "api_key", key);
	if (!creds || !(text = json_dumps(creds, JSON_INDENT(2)))) {
		rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		goto out;
	}
	if ((rc = path_join(path, sizeof(path), data_dir, CREDENTIALS_FILE)) ||
	    (rc = write_file_atomic(path, text, strlen(text))))
		goto out;

	if ((rc = allowd_store_account_create(a->store, account, "default")))
		goto out;
	memset(&t, 0, sizeof(t));
	random_hex(t.id, ALLOWD_ACCOUNT_ID_LEN);
	t.active = true;
	snprintf(grant.account_id, sizeof(grant.account_id), "%s", account);
	grant.perm = ALLOWD_PERM_WRITE;
	t.grants = &grant;
	t.n_grants = 1;
	allowd_auth_hash(a, hash, token);
	if ((rc = allowd_store_token_create(a->store, &t, hash)))
		goto out;
	allowd_auth_hash(a, hash, key);
	if ((rc = allowd_store_user_create(a->store, DEFAULT_EMAIL, hash)) ||
	    (rc = allowd_store_membership_set(a->store, DEFAULT_EMAIL, account, ALLOWD_PERM_WRITE)))
		goto out;
	*created = 1;
out:
	if (text) {
		sodium_memzero(text, strlen(text));
		free(text);
	}
	json_decref(creds);
	sodium_memzero(token, sizeof(token));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hash, sizeof(hash));
	return rc;
}

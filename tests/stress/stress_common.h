/*
 * stress_common.h - small pieces the stress programs share on top of the e2e
 * harness: a seeded PRNG, a libcurl client that frees what it returns (the
 * harness keeps every response until teardown, too much for thousands of
 * requests per cycle), and read-only SQLite checks of a data directory.
 * Header-only (static functions) so each program stays one file.
 */
#ifndef STRESS_COMMON_H
#define STRESS_COMMON_H

#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- PRNG: splitmix64, so a seed fixes the schedule and the workload ---- */

static inline uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) (n > 0; the bias is irrelevant at these sizes). */
static inline uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return rnd_next(s) % n;
}

static inline bool rnd_chance(uint64_t *s, unsigned percent)
{
	return rnd_below(s, 100) < percent;
}

/* ---- HTTP ------------------------------------------------------------- */

typedef struct sclient {
	CURL *h;
	char *buf;
	size_t len, cap;
	char err[CURL_ERROR_SIZE];
} sclient;

typedef struct sresp {
	long status;           /* 0: transport error, see the client's err */
	json_t *json;          /* the parsed body or NULL; the caller decrefs */
	char content_type[64]; /* "" when none */
} sresp;

static inline size_t sclient_on_body(char *p, size_t size, size_t n, void *ud)
{
	sclient *c = ud;
	size_t add = size * n;
	if (c->len + add + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 16384;
		while (cap < c->len + add + 1)
			cap *= 2;
		char *b = realloc(c->buf, cap);
		if (!b)
			return 0;
		c->buf = b;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, p, add);
	c->len += add;
	c->buf[c->len] = '\0';
	return add;
}

static inline sclient *sclient_new(void)
{
	sclient *c = calloc(1, sizeof(*c));
	if (!c || !(c->h = curl_easy_init())) {
		fprintf(stderr, "stress: out of memory\n");
		abort();
	}
	return c;
}

static inline void sclient_free(sclient *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->h);
	free(c->buf);
	free(c);
}

/*
 * One request with the bearer token (NULL: none) and a JSON body (NULL:
 * none), on the client's keep-alive connection.  Never asserts; safe from
 * any thread that owns the client.
 */
static inline sresp sclient_do(sclient *c, const char *method, const char *url, const char *token,
                               const char *body)
{
	sresp r = {0, NULL, ""};
	struct curl_slist *hdrs = NULL;
	char auth[256];
	CURL *h = c->h;

	curl_easy_reset(h);
	c->len = 0;
	c->err[0] = '\0';
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->err);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sclient_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	}
	CURLcode cc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	if (cc != CURLE_OK) {
		if (!c->err[0])
			snprintf(c->err, sizeof(c->err), "%s", curl_easy_strerror(cc));
		return r;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
	char *ct = NULL;
	if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		snprintf(r.content_type, sizeof(r.content_type), "%s", ct);
	if (c->len)
		r.json = json_loadb(c->buf, c->len, JSON_REJECT_DUPLICATES, NULL);
	return r;
}

/* The body of the last response (NUL-terminated, borrowed), "" when none. */
static inline const char *sclient_body(const sclient *c)
{
	return c->buf && c->len ? c->buf : "";
}

/*
 * True when r is a Cloudflare failure envelope: success:false, result:null,
 * errors[0] {code == want_code (0: any), non-empty message}.  *why gets the
 * reason otherwise.
 */
static inline bool envelope_error_is(const sresp *r, int want_code, char *why, size_t whylen)
{
	json_t *j = r->json;
	if (strncmp(r->content_type, "application/json", 16) != 0) {
		snprintf(why, whylen, "Content-Type \"%s\", not application/json", r->content_type);
		return false;
	}
	json_t *errors = json_object_get(j, "errors");
	json_t *e0 = json_array_get(errors, 0);
	if (!json_is_object(j) || !json_is_false(json_object_get(j, "success")) ||
	    !json_is_null(json_object_get(j, "result")) ||
	    !json_is_array(json_object_get(j, "messages")) || !json_is_object(e0)) {
		snprintf(why, whylen, "not a failure envelope");
		return false;
	}
	json_t *code = json_object_get(e0, "code");
	json_t *msg = json_object_get(e0, "message");
	if (!json_is_integer(code) || !json_is_string(msg) || json_string_length(msg) == 0) {
		snprintf(why, whylen, "errors[0] lacks a code or a message");
		return false;
	}
	if (want_code && json_integer_value(code) != want_code) {
		snprintf(why, whylen, "error code %lld, expected %d",
		         (long long)json_integer_value(code), want_code);
		return false;
	}
	return true;
}

/* errors[0].source.pointer of a failure envelope, or NULL. */
static inline const char *envelope_pointer(const json_t *j)
{
	json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
	json_t *p = json_object_get(json_object_get(e0, "source"), "pointer");
	return json_is_string(p) ? json_string_value(p) : NULL;
}

/* ---- the database, read-only ----------------------------------------- */

typedef struct db_facts {
	char integrity[512];   /* PRAGMA integrity_check, rows joined by "; " */
	long long fk_problems; /* rows of PRAGMA foreign_key_check */
	long long policies;    /* SELECT count(*) FROM policies */
	long long seq;         /* sqlite_sequence for policies, 0 when absent */
	long long max_id;      /* max(id) of policies, 0 when empty */
} db_facts;

/*
 * Opens data_dir/allowd.db read-only (the server must not be running) and
 * gathers the facts above.  0, or -1 with *why.
 */
static inline int db_inspect(const char *data_dir, db_facts *f, char *why, size_t whylen)
{
	char path[4096];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s/allowd.db", data_dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		snprintf(why, whylen, "open %.300s read-only: %s", path,
		         db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
		goto sql_error;
	size_t used = 0;
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		int n = snprintf(f->integrity + used, sizeof(f->integrity) - used, "%s%s",
		                 used ? "; " : "", t ? t : "(null)");
		if (n > 0 && (size_t)n < sizeof(f->integrity) - used)
			used += (size_t)n;
	}
	if (step != SQLITE_DONE)
		goto sql_error;
	sqlite3_finalize(st);
	st = NULL;

	if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
		goto sql_error;
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		f->fk_problems++;
	if (step != SQLITE_DONE)
		goto sql_error;
	sqlite3_finalize(st);
	st = NULL;

	if (sqlite3_prepare_v2(db,
	                       "SELECT (SELECT count(*) FROM policies),"
	                       " (SELECT coalesce(max(id), 0) FROM policies),"
	                       " (SELECT CASE WHEN EXISTS (SELECT 1 FROM sqlite_master"
	                       "  WHERE name = 'sqlite_sequence') THEN -1 END)",
	                       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto sql_error;
	f->policies = sqlite3_column_int64(st, 0);
	f->max_id = sqlite3_column_int64(st, 1);
	f->seq = sqlite3_column_int64(st, 2); /* NULL (0): no AUTOINCREMENT table at all */
	sqlite3_finalize(st);
	st = NULL;
	if (f->seq == -1) {
		f->seq = 0;
		if (sqlite3_prepare_v2(db,
		                       "SELECT coalesce(max(seq), 0) FROM sqlite_sequence"
		                       " WHERE name = 'policies'",
		                       -1, &st, NULL) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_ROW)
			goto sql_error;
		f->seq = sqlite3_column_int64(st, 0);
	}
	rc = 0;
	goto out;

sql_error:
	snprintf(why, whylen, "%.300s: %s", path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

#endif

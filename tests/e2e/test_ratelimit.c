/*
 * test_ratelimit.c - the two request limits of issue 3, through the real
 * server: failed authentications per client address (429 10429 with
 * Retry-After, even for a valid credential once the address is throttled)
 * and requests per credential (Ratelimit and Ratelimit-Policy headers,
 * 429 past the limit, other credentials unaffected, 0 switches it off);
 * and GET /user/tokens/verify, which answers as Cloudflare does.  The
 * windows are long enough never to roll over during a test.
 */
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY "/client/v4/user/tokens/verify"

/* ---- credentials and requests ---------------------------------------------- */

static const char *const *bearer(const char *token)
{
	const char **h = e2e_calloc(2, sizeof(*h));
	h[0] = e2e_strf("Authorization: Bearer %s", token);
	return h;
}

static const char *const *key_pair(const char *email, const char *key)
{
	const char **h = e2e_calloc(3, sizeof(*h));
	h[0] = e2e_strf("X-Auth-Email: %s", email);
	h[1] = e2e_strf("X-Auth-Key: %s", key);
	return h;
}

/* A copy of a secret with its last character changed: well formed, but wrong. */
static const char *wrong(const char *secret)
{
	char *w = e2e_strf("%s", secret);
	size_t n = strlen(w);
	w[n - 1] = w[n - 1] == 'a' ? 'b' : 'a';
	return w;
}

static e2e_response *request_as(e2e_server *s, const char *const *cred, const char *method,
                                const char *path, const char *body)
{
	e2e_request rq = {
	    .method = method, .path = path, .body = body, .auth = E2E_AUTH_NONE, .headers = cred};
	return e2e_do(s, &rq);
}

static e2e_response *list_as(e2e_server *s, const char *const *cred)
{
	return request_as(s, cred, "GET", s->policies, NULL);
}

/* A token made with allowctl: write on the server's account, plus `extra` options. */
#define NEW_TOKEN(s, ...)                                                                          \
	E2E_CTL((s), "token", "create", "--account", (s)->account_id, "--perm", "write",           \
	        __VA_ARGS__)

static const char *const *new_token(e2e_server *s)
{
	json_t *t = E2E_CTL(s, "token", "create", "--account", s->account_id, "--perm", "write");
	return bearer(E2E_STR(t, "token"));
}

/* A user made with allowctl with write on the server's account; its key headers. */
static const char *const *new_user(e2e_server *s, const char *email)
{
	json_t *u = E2E_CTL(s, "user", "create", "--email", email);
	E2E_CTL(s, "user", "add-to-account", "--email", email, "--account", s->account_id, "--role",
	        "write");
	return key_pair(email, E2E_STR(u, "api_key"));
}

/* The account's policy count as allowctl sees it (no HTTP, so no limit applies). */
static json_int_t policy_count(e2e_server *s)
{
	json_t *accounts = E2E_CTL(s, "account", "list");
	size_t i;
	json_t *a;
	json_array_foreach(accounts, i, a)
	{
		if (strcmp(E2E_STR(a, "id"), s->account_id) == 0)
			return E2E_INT(a, "policies");
	}
	E2E_FAIL("allowctl account list does not show account %s", s->account_id);
}

/* ---- header checks ------------------------------------------------------- */

/* Reads a decimal at *p (advancing it); false when there is none. */
static bool read_int(const char **p, long long *out)
{
	char *end;
	errno = 0;
	*out = strtoll(*p, &end, 10);
	if (errno || end == *p || **p == '-' || **p == '+')
		return false;
	*p = end;
	return true;
}

/* Retry-After: whole seconds in [1, max]. */
static long long retry_after_at(const e2e_response *r, long long max, const char *file, int line)
{
	const char *v = e2e_header(r, "Retry-After");
	long long secs;
	const char *p = v;
	if (!v || !read_int(&p, &secs) || *p || secs < 1 || secs > max)
		e2e_fail_at(file, line, "Retry-After is \"%s\", expected seconds in [1, %lld]",
		            v ? v : "(none)", max);
	return secs;
}

/* A 429 in the envelope (code 10429) with a Retry-After of at most `max` seconds. */
static void assert_limited_at(const e2e_response *r, long long max, const char *file, int line)
{
	json_t *err = e2e_assert_err_at(r, 429, 10429, NULL, file, line);
	e2e_str_at(err, "message", file, line);
	retry_after_at(r, max, file, line);
}
#define ASSERT_LIMITED(r, max) assert_limited_at((r), (max), __FILE__, __LINE__)

/* The Ratelimit header `"default";r=R;t=T`: its R, with T in [1, window]. */
static long long remaining_at(const e2e_response *r, long long window, const char *file, int line)
{
	const char *v = e2e_header(r, "Ratelimit");
	const char *p = v;
	long long rem, t;
	if (!v || strncmp(p, "\"default\";r=", 12) != 0)
		e2e_fail_at(file, line, "Ratelimit is \"%s\", expected \"default\";r=N;t=N",
		            v ? v : "(none)");
	p += 12;
	if (!read_int(&p, &rem) || strncmp(p, ";t=", 3) != 0)
		e2e_fail_at(file, line, "Ratelimit \"%s\": bad r=", v);
	p += 3;
	if (!read_int(&p, &t) || *p || t < 1 || t > window)
		e2e_fail_at(file, line, "Ratelimit \"%s\": t is not in [1, %lld]", v, window);
	return rem;
}
#define REMAINING(r, window) remaining_at((r), (window), __FILE__, __LINE__)

static void assert_policy_at(const e2e_response *r, long long limit, long long window,
                             const char *file, int line)
{
	const char *v = e2e_header(r, "Ratelimit-Policy");
	char *want = e2e_strf("\"default\";q=%lld;w=%lld", limit, window);
	if (!v || strcmp(v, want) != 0)
		e2e_fail_at(file, line, "Ratelimit-Policy is \"%s\", expected \"%s\"",
		            v ? v : "(none)", want);
}
#define ASSERT_POLICY(r, limit, window) assert_policy_at((r), (limit), (window), __FILE__, __LINE__)

static void assert_no_limit_headers_at(const e2e_response *r, const char *file, int line)
{
	static const char *const names[] = {"Ratelimit", "Ratelimit-Policy", "Retry-After"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (e2e_header(r, names[i]))
			e2e_fail_at(file, line, "unexpected %s: %s", names[i],
			            e2e_header(r, names[i]));
}
#define ASSERT_NO_LIMIT_HEADERS(r) assert_no_limit_headers_at((r), __FILE__, __LINE__)

/* ---- failed authentications per client address -------------------------- */

static e2e_server *start_with_failure_limit_3(void)
{
	static const char *const args[] = {"--auth-failure-limit", "3", "--auth-failure-window",
	                                   "60", NULL};
	return e2e_server_start(args);
}

E2E_TEST(three_failed_authentications_throttle_the_address_even_for_a_valid_token)
{
	(void)s;
	e2e_server *srv = start_with_failure_limit_3();
	const char *const *bad = bearer(wrong(srv->api_token));
	const char *const *good = bearer(srv->api_token);

	E2E_OK(list_as(srv, good), 200);
	for (int i = 0; i < 3; i++) {
		e2e_response *r = list_as(srv, bad);
		E2E_ERR(r, 403, 10000, NULL);
		if (e2e_header(r, "Retry-After"))
			E2E_FAIL("failure %d of 3 already carries Retry-After", i + 1);
	}
	ASSERT_LIMITED(list_as(srv, good), 60);
	ASSERT_LIMITED(list_as(srv, bad), 60);
	ASSERT_LIMITED(list_as(srv, key_pair(srv->email, srv->api_key)), 60);
}

E2E_TEST(a_throttled_address_cannot_write)
{
	(void)s;
	e2e_server *srv = start_with_failure_limit_3();
	const char *const *bad = key_pair(srv->email, wrong(srv->api_key));
	for (int i = 0; i < 3; i++)
		E2E_ERR(list_as(srv, bad), 403, 10000, NULL);
	ASSERT_LIMITED(
	    request_as(srv, bearer(srv->api_token), "POST", srv->policies, E2E_SEED_BODY), 60);
	ASSERT_LIMITED(request_as(srv, bearer(srv->api_token), "POST",
	                          e2e_strf("%s/batch", srv->policies),
	                          "{\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":[]}"),
	               60);
	assert_int_equal(policy_count(srv), 0);
}

E2E_TEST(every_kind_of_failed_authentication_counts)
{
	(void)s;
	e2e_server *srv = start_with_failure_limit_3();
	json_t *t = NEW_TOKEN(srv, "--expires", e2e_rfc3339(-60));

	E2E_ERR(list_as(srv, key_pair(srv->email, wrong(srv->api_key))), 403, 10000, NULL);
	E2E_ERR(list_as(srv, bearer("malformed")), 400, 6003, NULL);
	E2E_ERR(list_as(srv, bearer(E2E_STR(t, "token"))), 403, 9109, NULL);
	ASSERT_LIMITED(list_as(srv, bearer(srv->api_token)), 60);
}

E2E_TEST(missing_credentials_count_as_failed_authentications)
{
	(void)s;
	e2e_server *srv = start_with_failure_limit_3();
	for (int i = 0; i < 3; i++)
		E2E_ERR(list_as(srv, NULL), 400, 6003, NULL);
	ASSERT_LIMITED(list_as(srv, bearer(srv->api_token)), 60);
}

E2E_TEST(successes_and_refused_grants_do_not_count_as_failed_authentications)
{
	(void)s;
	e2e_server *srv = start_with_failure_limit_3();
	const char *const *good = bearer(srv->api_token);
	const char *const *bad = bearer(wrong(srv->api_token));
	const char *other = E2E_STR(E2E_CTL(srv, "account", "create", "--name", "other"), "id");
	const char *other_list =
	    e2e_strf("/client/v4/accounts/%s/email-security/settings/allow_policies", other);

	for (int i = 0; i < 10; i++)
		E2E_OK(list_as(srv, good), 200);
	for (int i = 0; i < 10; i++) /* authenticated, but no grant there */
		E2E_ERR(request_as(srv, good, "GET", other_list, NULL), 403, 10000, NULL);
	E2E_ERR(list_as(srv, bad), 403, 10000, NULL);
	E2E_ERR(list_as(srv, bad), 403, 10000, NULL);
	E2E_OK(list_as(srv, good), 200);
	E2E_ERR(list_as(srv, bad), 403, 10000, NULL);
	ASSERT_LIMITED(list_as(srv, good), 60);
}

E2E_TEST(a_throttled_address_is_throttled_on_verify_but_not_on_healthz)
{
	(void)s;
	e2e_server *srv = start_with_failure_limit_3();
	for (int i = 0; i < 3; i++)
		E2E_ERR(request_as(srv, bearer(wrong(srv->api_token)), "GET", VERIFY, NULL), 403,
		        10000, NULL);
	ASSERT_LIMITED(request_as(srv, bearer(srv->api_token), "GET", VERIFY, NULL), 60);
	e2e_request health = {.method = "GET", .path = "/healthz", .auth = E2E_AUTH_NONE};
	assert_int_equal(e2e_do(srv, &health)->status, 200);
}

E2E_TEST(failed_authentications_default_to_60_a_minute)
{
	(void)s;
	e2e_server *srv = e2e_server_start(NULL);
	const char *const *bad = bearer(wrong(srv->api_token));
	for (int i = 0; i < 60; i++) {
		e2e_response *r = list_as(srv, bad);
		if (r->status != 403)
			E2E_FAIL("failure %d of 60: HTTP %ld: %s", i + 1, r->status, r->body);
	}
	ASSERT_LIMITED(list_as(srv, bearer(srv->api_token)), 60);
}

E2E_TEST(failure_limit_0_never_throttles)
{
	(void)s;
	static const char *const args[] = {"--auth-failure-limit", "0", NULL};
	e2e_server *srv = e2e_server_start(args);
	const char *const *bad = bearer(wrong(srv->api_token));
	for (int i = 0; i < 100; i++) {
		e2e_response *r = list_as(srv, bad);
		if (r->status != 403)
			E2E_FAIL("failure %d: HTTP %ld: %s", i + 1, r->status, r->body);
	}
	E2E_OK(list_as(srv, bearer(srv->api_token)), 200);
}

/* ---- requests per credential --------------------------------------------- */

static e2e_server *start_with_rate_limit_5(void)
{
	static const char *const args[] = {"--rate-limit", "5", NULL};
	return e2e_server_start(args);
}

E2E_TEST(five_requests_pass_counting_down_and_the_sixth_is_429)
{
	(void)s;
	e2e_server *srv = start_with_rate_limit_5();
	const char *const *tok = new_token(srv);
	/* every route counts against the same credential */
	e2e_response *rs[5];
	rs[0] = request_as(srv, tok, "POST", srv->policies, E2E_SEED_BODY);
	json_int_t id = E2E_INT(E2E_OK(rs[0], 201), "id");
	const char *one = e2e_strf("%s/%lld", srv->policies, (long long)id);
	rs[1] = list_as(srv, tok);
	rs[2] = request_as(srv, tok, "GET", one, NULL);
	rs[3] = request_as(srv, tok, "PATCH", one, "{\"comments\":\"x\"}");
	rs[4] = request_as(srv, tok, "GET", VERIFY, NULL);
	for (int i = 0; i < 5; i++) {
		E2E_OK(rs[i], i == 0 ? 201 : 200);
		ASSERT_POLICY(rs[i], 5, 300);
		long long r = REMAINING(rs[i], 300);
		if (r != 4 - i)
			E2E_FAIL("request %d of 5: Ratelimit r=%lld, expected %d", i + 1, r, 4 - i);
	}

	e2e_response *sixth = list_as(srv, tok);
	ASSERT_LIMITED(sixth, 300);
	if (e2e_header(sixth, "Ratelimit"))
		assert_int_equal(REMAINING(sixth, 300), 0);
	ASSERT_LIMITED(request_as(srv, tok, "GET", VERIFY, NULL), 300);
	ASSERT_LIMITED(request_as(srv, tok, "DELETE", one, NULL), 300);
	assert_int_equal(policy_count(srv), 1);
}

E2E_TEST(the_first_request_reports_the_whole_window)
{
	(void)s;
	e2e_server *srv = start_with_rate_limit_5();
	e2e_response *r = list_as(srv, new_token(srv));
	E2E_OK(r, 200);
	ASSERT_POLICY(r, 5, 300);
	assert_int_equal(REMAINING(r, 300), 4);
	if (e2e_header(r, "Retry-After"))
		E2E_FAIL("a request within the limit carries Retry-After");
}

E2E_TEST(a_limited_credential_cannot_write)
{
	(void)s;
	e2e_server *srv = start_with_rate_limit_5();
	const char *const *tok = new_token(srv);
	for (int i = 0; i < 5; i++)
		E2E_OK(list_as(srv, tok), 200);
	ASSERT_LIMITED(request_as(srv, tok, "POST", srv->policies, E2E_SEED_BODY), 300);
	ASSERT_LIMITED(
	    request_as(srv, tok, "POST", e2e_strf("%s/batch", srv->policies),
	               e2e_strf("{\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":[%s]}",
	                        E2E_SEED_BODY)),
	    300);
	assert_int_equal(policy_count(srv), 0);
}

E2E_TEST(other_credentials_are_unaffected_by_a_limited_one)
{
	(void)s;
	e2e_server *srv = start_with_rate_limit_5();
	const char *const *limited = new_token(srv);
	for (int i = 0; i < 5; i++)
		E2E_OK(list_as(srv, limited), 200);
	ASSERT_LIMITED(list_as(srv, limited), 300);

	const char *const *others[] = {
	    new_token(srv),
	    bearer(srv->api_token),
	    key_pair(srv->email, srv->api_key),
	    new_user(srv, "second@example.com"),
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		e2e_response *r = list_as(srv, others[i]);
		E2E_OK(r, 200);
		if (REMAINING(r, 300) != 4)
			E2E_FAIL("credential %zu: Ratelimit r=%lld, expected 4", i,
			         REMAINING(r, 300));
	}
	ASSERT_LIMITED(list_as(srv, limited), 300);
}

E2E_TEST(users_whose_long_emails_share_a_prefix_are_counted_separately)
{
	(void)s;
	e2e_server *srv = start_with_rate_limit_5();
	/* 150-character addresses that differ only in their last label */
	const char *domain = e2e_strf("%s.%s", e2e_repeat("d", 60), e2e_repeat("e", 60));
	const char *const *first =
	    new_user(srv, e2e_strf("%s@%s.%s.com", e2e_repeat("u", 20), domain, "first"));
	const char *const *second =
	    new_user(srv, e2e_strf("%s@%s.%s.com", e2e_repeat("u", 20), domain, "other"));
	for (int i = 0; i < 5; i++)
		E2E_OK(list_as(srv, first), 200);
	ASSERT_LIMITED(list_as(srv, first), 300);
	e2e_response *r = list_as(srv, second);
	E2E_OK(r, 200);
	assert_int_equal(REMAINING(r, 300), 4);
}

E2E_TEST(the_window_is_configurable)
{
	(void)s;
	static const char *const args[] = {"--rate-limit", "2", "--rate-limit-window", "60", NULL};
	e2e_server *srv = e2e_server_start(args);
	const char *const *tok = bearer(srv->api_token);
	e2e_response *r = list_as(srv, tok);
	ASSERT_POLICY(r, 2, 60);
	assert_int_equal(REMAINING(r, 60), 1);
	assert_int_equal(REMAINING(list_as(srv, tok), 60), 0);
	ASSERT_LIMITED(list_as(srv, tok), 60);
}

E2E_TEST(the_default_is_1200_requests_per_300_seconds)
{
	e2e_response *r = list_as(s, bearer(s->api_token));
	E2E_OK(r, 200);
	ASSERT_POLICY(r, 1200, 300);
	assert_int_equal(REMAINING(r, 300), 1199);
	assert_int_equal(REMAINING(list_as(s, bearer(s->api_token)), 300), 1198);
}

E2E_TEST(rate_limit_0_sends_no_headers_and_never_limits)
{
	(void)s;
	static const char *const args[] = {"--rate-limit", "0", NULL};
	e2e_server *srv = e2e_server_start(args);
	const char *const *tok = bearer(srv->api_token);
	for (int i = 0; i < 50; i++) {
		e2e_response *r = list_as(srv, tok);
		if (r->status != 200)
			E2E_FAIL("request %d of 50: HTTP %ld: %s", i + 1, r->status, r->body);
		ASSERT_NO_LIMIT_HEADERS(r);
	}
	e2e_response *verify = request_as(srv, tok, "GET", VERIFY, NULL);
	E2E_OK(verify, 200);
	ASSERT_NO_LIMIT_HEADERS(verify);
}

/* ---- GET /user/tokens/verify ---------------------------------------------- */

E2E_TEST(verify_answers_with_the_token_id_and_active)
{
	json_t *t = E2E_CTL(s, "token", "create", "--account", s->account_id, "--perm", "read");
	const char *paths[] = {VERIFY, "/user/tokens/verify"};
	for (size_t i = 0; i < 2; i++) {
		e2e_response *r = request_as(s, bearer(E2E_STR(t, "token")), "GET", paths[i], NULL);
		json_t *result = E2E_OK(r, 200);
		assert_string_equal(E2E_STR(result, "id"), E2E_STR(t, "id"));
		assert_string_equal(E2E_STR(result, "status"), "active");
		if (json_object_get(result, "expires_on") || json_object_get(result, "not_before"))
			E2E_FAIL("a token without a time window reports one: %s", r->body);
	}
}

E2E_TEST(verify_reports_the_tokens_time_window)
{
	json_t *t = NEW_TOKEN(s, "--not-before", "2020-01-02T03:04:05Z", "--expires",
	                      "2999-12-31T23:59:59Z");
	json_t *result =
	    E2E_OK(request_as(s, bearer(E2E_STR(t, "token")), "GET", VERIFY, NULL), 200);
	assert_string_equal(E2E_STR(result, "id"), E2E_STR(t, "id"));
	assert_string_equal(E2E_STR(result, "status"), "active");
	assert_string_equal(E2E_STR(result, "not_before"), "2020-01-02T03:04:05.000Z");
	assert_string_equal(E2E_STR(result, "expires_on"), "2999-12-31T23:59:59.000Z");
}

E2E_TEST(verify_knows_the_bootstrap_token)
{
	json_t *tokens = E2E_CTL(s, "token", "list");
	assert_int_equal(json_array_size(tokens), 1);
	json_t *result = E2E_OK(request_as(s, bearer(s->api_token), "GET", VERIFY, NULL), 200);
	assert_string_equal(E2E_STR(result, "id"), E2E_STR(json_array_get(tokens, 0), "id"));
	assert_string_equal(E2E_STR(result, "status"), "active");
}

E2E_TEST(verify_with_token_and_key_answers_for_the_token)
{
	const char *const both[] = {e2e_strf("Authorization: Bearer %s", s->api_token),
	                            e2e_strf("X-Auth-Email: %s", s->email),
	                            e2e_strf("X-Auth-Key: %s", s->api_key), NULL};
	json_t *result = E2E_OK(request_as(s, both, "GET", VERIFY, NULL), 200);
	json_t *tokens = E2E_CTL(s, "token", "list");
	assert_string_equal(E2E_STR(result, "id"), E2E_STR(json_array_get(tokens, 0), "id"));
	assert_string_equal(E2E_STR(result, "status"), "active");
}

static void assert_chain_at(const e2e_response *r, const char *chain, const char *file, int line)
{
	json_t *err = e2e_assert_err_at(r, 400, 6003, NULL, file, line);
	json_t *codes = e2e_keep(json_array());
	size_t i;
	json_t *e;
	json_array_foreach(e2e_arr_at(err, "error_chain", file, line), i, e)
	{
		json_array_append_new(codes, json_integer(e2e_int_at(e, "code", file, line)));
	}
	if (strcmp(e2e_dumps(codes), chain) != 0)
		e2e_fail_at(file, line, "error_chain codes %s, expected %s", e2e_dumps(codes),
		            chain);
}
#define ASSERT_CHAIN(r, chain) assert_chain_at((r), (chain), __FILE__, __LINE__)

E2E_TEST(verify_with_only_email_and_key_is_400_6003_6111)
{
	e2e_response *r = request_as(s, key_pair(s->email, s->api_key), "GET", VERIFY, NULL);
	ASSERT_CHAIN(r, "[6111]");
}

E2E_TEST(verify_without_credentials_is_400_6003)
{
	E2E_ERR(request_as(s, NULL, "GET", VERIFY, NULL), 400, 6003, NULL);
	ASSERT_CHAIN(request_as(s, bearer("short"), "GET", VERIFY, NULL), "[6111]");
}

E2E_TEST(verify_refuses_wrong_and_unusable_tokens)
{
	E2E_ERR(request_as(s, bearer(wrong(s->api_token)), "GET", VERIFY, NULL), 403, 10000, NULL);

	json_t *expired = NEW_TOKEN(s, "--expires", e2e_rfc3339(-60));
	E2E_ERR(request_as(s, bearer(E2E_STR(expired, "token")), "GET", VERIFY, NULL), 403, 9109,
	        NULL);
	json_t *early = NEW_TOKEN(s, "--not-before", e2e_rfc3339(3600));
	E2E_ERR(request_as(s, bearer(E2E_STR(early, "token")), "GET", VERIFY, NULL), 403, 9109,
	        NULL);
	json_t *elsewhere = NEW_TOKEN(s, "--ip", "192.0.2.0/24");
	E2E_ERR(request_as(s, bearer(E2E_STR(elsewhere, "token")), "GET", VERIFY, NULL), 403, 9109,
	        NULL);
	json_t *disabled = NEW_TOKEN(s, "--ip", "127.0.0.0/8");
	E2E_OK(request_as(s, bearer(E2E_STR(disabled, "token")), "GET", VERIFY, NULL), 200);
	E2E_CTL(s, "token", "disable", E2E_STR(disabled, "id"));
	E2E_ERR(request_as(s, bearer(E2E_STR(disabled, "token")), "GET", VERIFY, NULL), 403, 9109,
	        NULL);
	E2E_CTL(s, "token", "revoke", E2E_STR(disabled, "id"));
	E2E_ERR(request_as(s, bearer(E2E_STR(disabled, "token")), "GET", VERIFY, NULL), 403, 10000,
	        NULL);
}

E2E_TEST(verify_carries_the_rate_limit_headers_and_counts)
{
	(void)s;
	static const char *const args[] = {"--rate-limit", "2", NULL};
	e2e_server *srv = e2e_server_start(args);
	const char *const *tok = new_token(srv);
	e2e_response *r = request_as(srv, tok, "GET", VERIFY, NULL);
	E2E_OK(r, 200);
	ASSERT_POLICY(r, 2, 300);
	assert_int_equal(REMAINING(r, 300), 1);
	e2e_response *list = list_as(srv, tok);
	E2E_OK(list, 200);
	assert_int_equal(REMAINING(list, 300), 0);
	ASSERT_LIMITED(request_as(srv, tok, "GET", VERIFY, NULL), 300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE_BARE(three_failed_authentications_throttle_the_address_even_for_a_valid_token),
	    E2E_CASE_BARE(a_throttled_address_cannot_write),
	    E2E_CASE_BARE(every_kind_of_failed_authentication_counts),
	    E2E_CASE_BARE(missing_credentials_count_as_failed_authentications),
	    E2E_CASE_BARE(successes_and_refused_grants_do_not_count_as_failed_authentications),
	    E2E_CASE_BARE(a_throttled_address_is_throttled_on_verify_but_not_on_healthz),
	    E2E_CASE_BARE(failed_authentications_default_to_60_a_minute),
	    E2E_CASE_BARE(failure_limit_0_never_throttles),
	    E2E_CASE_BARE(five_requests_pass_counting_down_and_the_sixth_is_429),
	    E2E_CASE_BARE(the_first_request_reports_the_whole_window),
	    E2E_CASE_BARE(a_limited_credential_cannot_write),
	    E2E_CASE_BARE(other_credentials_are_unaffected_by_a_limited_one),
	    E2E_CASE_BARE(users_whose_long_emails_share_a_prefix_are_counted_separately),
	    E2E_CASE_BARE(the_window_is_configurable),
	    E2E_CASE(the_default_is_1200_requests_per_300_seconds),
	    E2E_CASE_BARE(rate_limit_0_sends_no_headers_and_never_limits),
	    E2E_CASE(verify_answers_with_the_token_id_and_active),
	    E2E_CASE(verify_reports_the_tokens_time_window),
	    E2E_CASE(verify_knows_the_bootstrap_token),
	    E2E_CASE(verify_with_token_and_key_answers_for_the_token),
	    E2E_CASE(verify_with_only_email_and_key_is_400_6003_6111),
	    E2E_CASE(verify_without_credentials_is_400_6003),
	    E2E_CASE(verify_refuses_wrong_and_unusable_tokens),
	    E2E_CASE_BARE(verify_carries_the_rate_limit_headers_and_counts),
	};
	return cmocka_run_group_tests_name("e2e_ratelimit", tests, NULL, NULL);
}

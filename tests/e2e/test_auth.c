/*
 * test_auth.c - Cloudflare's credential shapes: missing or malformed
 * headers are 400/6003 with an error_chain (6100, 6101, 6102, 6103, 6111),
 * a wrong token or key and another account are 403/10000, the email + key
 * path works, and a refused request changes nothing.
 */
#include "harness.h"

#include <string.h>

#define OTHER_ACCOUNT "0123456789abcdef0123456789abcdef"

/* A route to probe: method, path, body. */
struct route {
	const char *method;
	const char *path;
	const char *body;
};

/* Every route of an account, on `base` (an allow_policies collection path). */
static size_t routes_of(const char *base, json_int_t id, struct route *out)
{
	size_t n = 0;
	out[n++] = (struct route){"GET", base, NULL};
	out[n++] = (struct route){"POST", base, E2E_SEED_BODY};
	out[n++] = (struct route){"GET", e2e_strf("%s/%lld", base, (long long)id), NULL};
	out[n++] = (struct route){"PATCH", e2e_strf("%s/%lld", base, (long long)id),
	                          "{\"comments\":\"changed\"}"};
	out[n++] = (struct route){"DELETE", e2e_strf("%s/%lld", base, (long long)id), NULL};
	out[n++] =
	    (struct route){"POST", e2e_strf("%s/batch", base),
	                   e2e_strf("{\"deletes\":[{\"id\":%lld}],\"patches\":[],\"puts\":[],"
	                            "\"posts\":[]}",
	                            (long long)id)};
	return n;
}

/*
 * Sends every route (or, unless `all`, the list and the create: every
 * refusal counts against the server's failed-authentication limit) with
 * only `headers` as credentials and asserts a 400 6003 "Invalid request
 * headers" whose error_chain holds exactly `chain` (0-terminated); then
 * asserts nothing changed.
 */
static void assert_bad_headers_at(e2e_server *s, const char *const *headers, const int *chain,
                                  bool all, const char *file, int line)
{
	json_t *before = e2e_list_all_at(s, file, line);
	json_int_t id = e2e_int_at(json_array_get(before, 0), "id", file, line);
	struct route routes[8];
	size_t n = routes_of(s->policies, id, routes);
	routes[n++] =
	    (struct route){"GET", e2e_strf("%s/%lld", s->policies_bare, (long long)id), NULL};
	if (!all)
		n = 2;
	for (size_t i = 0; i < n; i++) {
		e2e_request rq = {.method = routes[i].method,
		                  .path = routes[i].path,
		                  .body = routes[i].body,
		                  .auth = E2E_AUTH_NONE,
		                  .headers = headers};
		e2e_response *r = e2e_do(s, &rq);
		if (r->status != 400)
			e2e_fail_at(file, line, "%s %s: expected 400, got %ld: %s",
			            routes[i].method, routes[i].path, r->status, r->body);
		json_t *err = e2e_assert_err_at(r, 400, 6003, NULL, file, line);
		const char *msg = e2e_str_at(err, "message", file, line);
		if (strcmp(msg, "Invalid request headers") != 0)
			e2e_fail_at(file, line, "6003 message is \"%s\"", msg);
		json_t *got = e2e_arr_at(err, "error_chain", file, line);
		json_t *codes = e2e_keep(json_array());
		json_t *want = e2e_keep(json_array());
		size_t k;
		json_t *e;
		json_array_foreach(got, k, e)
		{
			json_array_append_new(codes,
			                      json_integer(e2e_int_at(e, "code", file, line)));
			e2e_str_at(e, "message", file, line);
		}
		for (k = 0; chain[k]; k++)
			json_array_append_new(want, json_integer(chain[k]));
		if (!json_equal(codes, want))
			e2e_fail_at(file, line, "%s %s: error_chain codes %s, expected %s",
			            routes[i].method, routes[i].path, e2e_dumps(codes),
			            e2e_dumps(want));
		json_array_foreach(got, k, e)
		{
			json_int_t code = e2e_int_at(e, "code", file, line);
			const char *m = e2e_str_at(e, "message", file, line);
			if (code == 6100 && strcmp(m, "Missing X-Auth-Email header") != 0)
				e2e_fail_at(file, line, "6100 message is \"%s\"", m);
			if (code == 6101 && strcmp(m, "Missing X-Auth-Key header") != 0)
				e2e_fail_at(file, line, "6101 message is \"%s\"", m);
		}
	}
	json_t *after = e2e_list_all_at(s, file, line);
	if (!json_equal(before, after))
		e2e_fail_at(file, line, "a refused request changed the policies");
}

#define BAD_HEADERS_ON(s, all, headers, ...)                                                       \
	do {                                                                                       \
		static const int chain_[] = {__VA_ARGS__, 0};                                      \
		assert_bad_headers_at((s), (headers), chain_, (all), __FILE__, __LINE__);          \
	} while (0)
#define BAD_HEADERS(s, headers, ...) BAD_HEADERS_ON((s), false, (headers), __VA_ARGS__)

/* Sends every route of `base` with `rq_auth`/`headers` and asserts 403 10000. */
static void assert_forbidden_at(e2e_server *s, const char *base, enum e2e_auth auth,
                                const char *const *headers, const char *file, int line)
{
	json_t *before = e2e_list_all_at(s, file, line);
	json_int_t id = e2e_int_at(json_array_get(before, 0), "id", file, line);
	struct route routes[8];
	size_t n = routes_of(base, id, routes);
	for (size_t i = 0; i < n; i++) {
		e2e_request rq = {.method = routes[i].method,
		                  .path = routes[i].path,
		                  .body = routes[i].body,
		                  .auth = auth,
		                  .headers = headers};
		e2e_response *r = e2e_do(s, &rq);
		if (r->status != 403)
			e2e_fail_at(file, line, "%s %s: expected 403, got %ld: %s",
			            routes[i].method, routes[i].path, r->status, r->body);
		json_t *err = e2e_assert_err_at(r, 403, 10000, NULL, file, line);
		const char *msg = e2e_str_at(err, "message", file, line);
		if (strcmp(msg, "Authentication error") != 0)
			e2e_fail_at(file, line, "10000 message is \"%s\"", msg);
	}
	json_t *after = e2e_list_all_at(s, file, line);
	if (!json_equal(before, after))
		e2e_fail_at(file, line, "a refused request changed the policies");
}

#define FORBIDDEN(s, base, auth, headers)                                                          \
	assert_forbidden_at((s), (base), (auth), (headers), __FILE__, __LINE__)

static void seed(e2e_server *s)
{
	E2E_CREATE(s, E2E_SEED_BODY);
}

static const char *email_hdr(e2e_server *s)
{
	return e2e_strf("X-Auth-Email: %s", s->email);
}

static const char *key_hdr(e2e_server *s)
{
	return e2e_strf("X-Auth-Key: %s", s->api_key);
}

E2E_TEST(no_credentials_is_400_6003_with_6100_and_6101)
{
	seed(s);
	BAD_HEADERS_ON(s, true, NULL, 6100, 6101);
}

E2E_TEST(email_without_key_is_6101)
{
	seed(s);
	const char *h[] = {email_hdr(s), NULL};
	BAD_HEADERS_ON(s, true, h, 6101);
}

E2E_TEST(key_without_email_is_6100)
{
	seed(s);
	const char *h[] = {key_hdr(s), NULL};
	BAD_HEADERS_ON(s, true, h, 6100);
}

E2E_TEST(malformed_email_is_6102)
{
	seed(s);
	const char *h1[] = {"X-Auth-Email: not-an-email", key_hdr(s), NULL};
	BAD_HEADERS(s, h1, 6102);
	const char *h2[] = {"X-Auth-Email: a b@example.com", key_hdr(s), NULL};
	BAD_HEADERS(s, h2, 6102);
}

E2E_TEST(malformed_key_is_6103)
{
	seed(s);
	const char *h1[] = {email_hdr(s), e2e_strf("X-Auth-Key: %.36s", s->api_key), NULL};
	BAD_HEADERS(s, h1, 6103);
	const char *h2[] = {email_hdr(s), e2e_strf("X-Auth-Key: %s0", s->api_key), NULL};
	BAD_HEADERS(s, h2, 6103);
	const char *h3[] = {email_hdr(s), e2e_strf("X-Auth-Key: %.36sg", s->api_key), NULL};
	BAD_HEADERS(s, h3, 6103);
}

E2E_TEST(malformed_authorization_is_6111)
{
	seed(s);
	const char *values[] = {
	    "Bearer short",
	    e2e_strf("Bearer %s0", s->api_token),
	    e2e_strf("Bearer %.39s", s->api_token),
	    e2e_strf("Bearer %.39s!", s->api_token),
	    e2e_strf("Basic %s", s->api_token),
	    "Bearer",
	    s->api_token,
	};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		const char *h[] = {e2e_strf("Authorization: %s", values[i]), NULL};
		BAD_HEADERS(s, h, 6111);
	}
}

E2E_TEST(wrong_token_is_403_10000)
{
	seed(s);
	char *token = e2e_strf("%s", s->api_token);
	token[0] = token[0] == 'A' ? 'B' : 'A';
	const char *h[] = {e2e_strf("Authorization: Bearer %s", token), NULL};
	FORBIDDEN(s, s->policies, E2E_AUTH_NONE, h);
	FORBIDDEN(s, s->policies_bare, E2E_AUTH_NONE, h);
}

E2E_TEST(wrong_key_or_email_is_403_10000)
{
	seed(s);
	char *key = e2e_strf("%s", s->api_key);
	key[36] = key[36] == '0' ? '1' : '0';
	const char *h1[] = {email_hdr(s), e2e_strf("X-Auth-Key: %s", key), NULL};
	FORBIDDEN(s, s->policies, E2E_AUTH_NONE, h1);
	const char *h2[] = {"X-Auth-Email: someone.else@example.com", key_hdr(s), NULL};
	FORBIDDEN(s, s->policies, E2E_AUTH_NONE, h2);
}

E2E_TEST(email_and_key_work_on_every_route)
{
	e2e_request create = {
	    .method = "POST", .path = s->policies, .body = E2E_SEED_BODY, .auth = E2E_AUTH_KEY};
	json_t *p = E2E_OK(e2e_do(s, &create), 201);
	E2E_POLICY(p);
	char *one = e2e_strf("%s/%lld", s->policies, (long long)E2E_INT(p, "id"));

	e2e_request list = {.method = "GET", .path = s->policies_bare, .auth = E2E_AUTH_KEY};
	assert_int_equal(json_array_size(E2E_OK(e2e_do(s, &list), 200)), 1);
	e2e_request get = {.method = "GET", .path = one, .auth = E2E_AUTH_KEY};
	E2E_JSON_EQ(E2E_OK(e2e_do(s, &get), 200), p);
	e2e_request patch = {
	    .method = "PATCH", .path = one, .body = "{\"comments\":\"k\"}", .auth = E2E_AUTH_KEY};
	assert_string_equal(E2E_STR(E2E_OK(e2e_do(s, &patch), 200), "comments"), "k");
	e2e_request batch = {.method = "POST",
	                     .path = e2e_strf("%s/batch", s->policies),
	                     .body = "{\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":[]}",
	                     .auth = E2E_AUTH_KEY};
	E2E_OK(e2e_do(s, &batch), 200);
	e2e_request del = {.method = "DELETE", .path = one, .auth = E2E_AUTH_KEY};
	E2E_OK(e2e_do(s, &del), 200);
	assert_int_equal(E2E_TOTAL(s), 0);
}

E2E_TEST(another_account_is_403_10000_and_nothing_changes)
{
	seed(s);
	assert_string_not_equal(s->account_id, OTHER_ACCOUNT);
	const char *other =
	    "/client/v4/accounts/" OTHER_ACCOUNT "/email-security/settings/allow_policies";
	const char *other_bare =
	    "/accounts/" OTHER_ACCOUNT "/email-security/settings/allow_policies";
	FORBIDDEN(s, other, E2E_AUTH_TOKEN, NULL);
	FORBIDDEN(s, other_bare, E2E_AUTH_TOKEN, NULL);
	FORBIDDEN(s, other, E2E_AUTH_KEY, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE(no_credentials_is_400_6003_with_6100_and_6101),
	    E2E_CASE(email_without_key_is_6101),
	    E2E_CASE(key_without_email_is_6100),
	    E2E_CASE(malformed_email_is_6102),
	    E2E_CASE(malformed_key_is_6103),
	    E2E_CASE(malformed_authorization_is_6111),
	    E2E_CASE(wrong_token_is_403_10000),
	    E2E_CASE(wrong_key_or_email_is_403_10000),
	    E2E_CASE(email_and_key_work_on_every_route),
	    E2E_CASE(another_account_is_403_10000_and_nothing_changes),
	};
	return cmocka_run_group_tests_name("e2e_auth", tests, NULL, NULL);
}

/*
 * test_authz.c - the authorisation matrix of issue 3: each kind of
 * credential against every route, on its own account and on a second
 * account (made with allowctl) that holds policies of its own.  Every cell
 * asserts the status, the envelope code, exactly what changed in both
 * accounts (nothing, unless the cell is allowed), and that a refusal names
 * no policy and answers the same whether or not the policy id exists.
 */
#include "harness.h"

#include <ctype.h>
#include <string.h>

enum perm { NONE = 0, READ = 1, WRITE = 2 };
enum { OWN = 0, OTHER = 1 };

/* A policy id no account holds. */
#define ABSENT_ID 2147483000LL

/*
 * One server, started with --auth-failure-limit 0 so the matrix is not
 * throttled: the bootstrap account (OWN) and a second account (OTHER),
 * each holding a standing policy, and a trusted token that may write to
 * both, for setting up and inspecting.
 */
typedef struct world {
	e2e_server *s;
	const char *account[2];
	const char *policies[2]; /* the allow_policies collection of each account */
	const char *const *trusted;
	int serial; /* makes patterns unique */
} world;

/* What a credential may do on each account, and how it is refused where it may not. */
typedef struct expect {
	enum perm own, other;
	long status;
	int code;
	int chain[3]; /* a 6003's error_chain codes, 0-terminated */
} expect;

#define ALLOWS(own_, other_)                                                                       \
	((expect){.own = (own_), .other = (other_), .status = 403, .code = 10000})
#define DENIED(code_)    ((expect){.status = 403, .code = (code_)})
#define BAD_HEADERS(...) ((expect){.status = 400, .code = 6003, .chain = {__VA_ARGS__}})

typedef enum { LIST, GET, CREATE, EDIT, DELETE, BATCH, N_ROUTES } route_id;

static const struct route {
	const char *name;
	const char *method;
	enum perm need;
	long ok_status;
	bool has_id; /* names a policy */
} routes[N_ROUTES] = {
    [LIST] = {"list", "GET", READ, 200, false},
    [GET] = {"get", "GET", READ, 200, true},
    [CREATE] = {"create", "POST", WRITE, 201, false},
    [EDIT] = {"edit", "PATCH", WRITE, 200, true},
    [DELETE] = {"delete", "DELETE", WRITE, 200, true},
    [BATCH] = {"batch", "POST", WRITE, 200, true},
};

static const char *const account_name[2] = {"own", "other"};

/* ---- credentials -------------------------------------------------------- */

static const char *const *headers(const char *a, const char *b, const char *c)
{
	const char **h = e2e_calloc(4, sizeof(*h));
	h[0] = a;
	h[1] = a ? b : NULL;
	h[2] = a && b ? c : NULL;
	return h;
}

static const char *const *bearer(const char *token)
{
	return headers(e2e_strf("Authorization: Bearer %s", token), NULL, NULL);
}

static const char *const *key_pair(const char *email, const char *key)
{
	return headers(e2e_strf("X-Auth-Email: %s", email), e2e_strf("X-Auth-Key: %s", key), NULL);
}

/* Both credentials in one request, as the SDKs send them. */
static const char *const *both(const char *const *token, const char *const *pair)
{
	return headers(token[0], pair[0], pair[1]);
}

/* A copy of a secret with its last character changed: well formed, but wrong. */
static const char *wrong(const char *secret)
{
	char *w = e2e_strf("%s", secret);
	size_t n = strlen(w);
	w[n - 1] = w[n - 1] == 'a' ? 'b' : 'a';
	return w;
}

/* `allowctl token create` with these grants and options; returns {"id","token"}. */
#define NEW_TOKEN(w, ...) E2E_CTL((w)->s, "token", "create", __VA_ARGS__)

/*
 * A user made with allowctl, with `role` on `account`; returns its email +
 * key headers, and its email through *email_out unless that is NULL.
 */
static const char *const *new_user(world *w, const char *account, const char *role,
                                   const char **email_out)
{
	const char *email = e2e_strf("user%d@example.com", ++w->serial);
	if (email_out)
		*email_out = email;
	json_t *u = E2E_CTL(w->s, "user", "create", "--email", email);
	assert_string_equal(E2E_STR(u, "email"), email);
	E2E_CTL(w->s, "user", "add-to-account", "--email", email, "--account", account, "--role",
	        role);
	return key_pair(email, E2E_STR(u, "api_key"));
}

/* ---- requests ----------------------------------------------------------- */

static e2e_response *request_as(world *w, const char *const *cred, const char *method,
                                const char *path, const char *body)
{
	e2e_request rq = {
	    .method = method, .path = path, .body = body, .auth = E2E_AUTH_NONE, .headers = cred};
	return e2e_do(w->s, &rq);
}

/* Every policy of an account, in id order, read with the trusted token. */
static json_t *list_all(world *w, int acct)
{
	json_t *all = e2e_keep(json_array());
	for (int page = 1; page < 100; page++) {
		e2e_response *r =
		    request_as(w, w->trusted, "GET",
		               e2e_strf("%s?per_page=1000&page=%d", w->policies[acct], page), NULL);
		json_t *result = E2E_OK(r, 200);
		if (json_array_size(result) == 0)
			return all;
		json_array_extend(all, result);
	}
	E2E_FAIL("the list of the %s account does not end", account_name[acct]);
}

static json_t *create_with(world *w, int acct, const char *pattern)
{
	e2e_response *r =
	    request_as(w, w->trusted, "POST", w->policies[acct], e2e_email_body(pattern));
	json_t *p = E2E_OK(r, 201);
	E2E_POLICY(p);
	return p;
}

static world *world_new(void)
{
	static const char *const args[] = {"--auth-failure-limit", "0", NULL};
	world *w = e2e_calloc(1, sizeof(*w));
	w->s = e2e_server_start(args);
	w->account[OWN] = w->s->account_id;
	w->account[OTHER] = E2E_STR(E2E_CTL(w->s, "account", "create", "--name", "other"), "id");
	assert_string_not_equal(w->account[OWN], w->account[OTHER]);
	for (int a = 0; a < 2; a++)
		w->policies[a] = e2e_strf("/client/v4/accounts/%s/email-security/settings/"
		                          "allow_policies",
		                          w->account[a]);
	json_t *t = NEW_TOKEN(w, "--account", w->account[OWN], "--perm", "write", "--account",
	                      w->account[OTHER], "--perm", "write");
	w->trusted = bearer(E2E_STR(t, "token"));
	create_with(w, OWN, "standing@own.example");
	create_with(w, OTHER, "standing@other.example");
	return w;
}

/* ---- what a cell sends -------------------------------------------------- */

static const char *route_path(world *w, route_id r, int acct, json_int_t id)
{
	switch (r) {
	case LIST:
		return e2e_strf("%s?per_page=1000", w->policies[acct]);
	case CREATE:
		return w->policies[acct];
	case BATCH:
		return e2e_strf("%s/batch", w->policies[acct]);
	default:
		return e2e_strf("%s/%lld", w->policies[acct], (long long)id);
	}
}

static const char *route_body(route_id r, json_int_t id, const char *new_pattern)
{
	switch (r) {
	case CREATE:
		return e2e_email_body(new_pattern);
	case EDIT:
		return "{\"comments\":\"edited\"}";
	case BATCH:
		return e2e_strf("{\"deletes\":[],\"patches\":[{\"id\":%lld,\"comments\":"
		                "\"batched\"}],\"puts\":[],\"posts\":[]}",
		                (long long)id);
	default:
		return NULL;
	}
}

/* ---- expected lists ----------------------------------------------------- */

static json_t *without(json_t *list, json_int_t id)
{
	json_t *out = e2e_keep(json_array());
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		if (json_integer_value(json_object_get(p, "id")) != id)
			json_array_append(out, p);
	}
	return out;
}

static json_t *replaced(json_t *list, json_t *policy)
{
	json_int_t id = json_integer_value(json_object_get(policy, "id"));
	json_t *out = e2e_keep(json_array());
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		json_array_append(out,
		                  json_integer_value(json_object_get(p, "id")) == id ? policy : p);
	}
	return out;
}

static json_t *appended(json_t *list, json_t *policy)
{
	json_t *out = e2e_keep(json_copy(list));
	json_array_append(out, policy);
	return out;
}

static json_t *find(json_t *list, json_int_t id)
{
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		if (json_integer_value(json_object_get(p, "id")) == id)
			return p;
	}
	return NULL;
}

/* ---- what a refusal may not say ----------------------------------------- */

/* True when `s` holds the decimal `id` as a whole number. */
static bool has_number(const char *s, json_int_t id)
{
	char digits[32];
	snprintf(digits, sizeof(digits), "%lld", (long long)id);
	size_t n = strlen(digits);
	for (const char *p = strstr(s, digits); p; p = strstr(p + 1, digits))
		if ((p == s || !isdigit((unsigned char)p[-1])) && !isdigit((unsigned char)p[n]))
			return true;
	return false;
}

/* True when a value (not an error code) equals `id`, or a string holds it or `pattern`. */
static bool mentions(json_t *j, const char *key, json_int_t id, const char *pattern)
{
	const char *k;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		json_object_foreach(j, k, v)
		{
			if (mentions(v, k, id, pattern))
				return true;
		}
		return false;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
		{
			if (mentions(v, key, id, pattern))
				return true;
		}
		return false;
	case JSON_INTEGER:
		return !(key && strcmp(key, "code") == 0) && json_integer_value(j) == id;
	case JSON_STRING:
		return e2e_contains_ci(json_string_value(j), pattern) ||
		       has_number(json_string_value(j), id);
	default:
		return false;
	}
}

/* Fails when the response names any policy of `lists` (ids and patterns). */
static void assert_says_nothing(const e2e_response *r, json_t *const lists[2], const char *where)
{
	for (int a = 0; a < 2; a++) {
		size_t i;
		json_t *p;
		json_array_foreach(lists[a], i, p)
		{
			const char *pattern = E2E_STR(p, "pattern");
			json_int_t id = E2E_INT(p, "id");
			if (e2e_contains_ci(r->body, pattern) ||
			    mentions(r->json, NULL, id, pattern))
				E2E_FAIL("%s: the refusal mentions policy %lld (%s) of the %s "
				         "account: %s",
				         where, (long long)id, pattern, account_name[a], r->body);
		}
	}
}

/* ---- one cell ----------------------------------------------------------- */

static const char *message_for(int code)
{
	switch (code) {
	case 6003:
		return "Invalid request headers";
	case 9109:
		return "Invalid access token";
	default:
		return "Authentication error";
	}
}

static void assert_refused(const e2e_response *r, const expect *x, const char *where)
{
	if (r->status != x->status)
		E2E_FAIL("%s: expected HTTP %ld (code %d), got %ld: %s", where, x->status, x->code,
		         r->status, r->body);
	json_t *err = E2E_ERR(r, x->status, 0, NULL);
	json_t *errors = E2E_ARR(r->json, "errors");
	if (json_array_size(errors) != 1 || E2E_INT(err, "code") != x->code)
		E2E_FAIL("%s: expected exactly one error with code %d: %s", where, x->code,
		         r->body);
	if (strcmp(E2E_STR(err, "message"), message_for(x->code)) != 0)
		E2E_FAIL("%s: code %d with message \"%s\", expected \"%s\"", where, x->code,
		         E2E_STR(err, "message"), message_for(x->code));
	if (e2e_error_pointer(err))
		E2E_FAIL("%s: a credential error points at a field: %s", where, r->body);

	json_t *chain = json_object_get(err, "error_chain");
	json_t *want = e2e_keep(json_array());
	for (int i = 0; x->chain[i]; i++)
		json_array_append_new(want, json_integer(x->chain[i]));
	json_t *got = e2e_keep(json_array());
	size_t i;
	json_t *e;
	json_array_foreach(chain, i, e)
	{
		json_array_append_new(got, json_integer(E2E_INT(e, "code")));
		E2E_STR(e, "message");
	}
	if (!json_equal(got, want))
		E2E_FAIL("%s: error_chain codes %s, expected %s: %s", where, e2e_dumps(got),
		         e2e_dumps(want), r->body);
}

/* The success of an allowed cell, and the one change it made to its account. */
static void assert_allowed(const e2e_response *r, route_id route, json_int_t victim,
                           const char *new_pattern, json_t *before, json_t *after,
                           const char *where)
{
	if (r->status != routes[route].ok_status)
		E2E_FAIL("%s: expected HTTP %ld, got %ld: %s", where, routes[route].ok_status,
		         r->status, r->body);
	json_t *result = E2E_OK(r, routes[route].ok_status);
	json_t *expected = before;

	switch (route) {
	case LIST:
		if (!json_equal(result, before))
			E2E_FAIL("%s: the list is not the account's policies:\n  %s\n  %s", where,
			         e2e_dumps(result), e2e_dumps(before));
		break;
	case GET:
		E2E_JSON_EQ(result, find(before, victim));
		break;
	case CREATE:
		E2E_POLICY(result);
		assert_string_equal(E2E_STR(result, "pattern"), new_pattern);
		expected = appended(before, result);
		break;
	case EDIT:
		E2E_POLICY(result);
		assert_int_equal(E2E_INT(result, "id"), victim);
		assert_string_equal(E2E_STR(result, "comments"), "edited");
		expected = replaced(before, result);
		break;
	case DELETE:
		E2E_JSON_EQ(result, e2e_keep(json_pack("{s:I}", "id", (json_int_t)victim)));
		expected = without(before, victim);
		break;
	case BATCH: {
		json_t *patched = json_array_get(E2E_ARR(result, "patches"), 0);
		E2E_POLICY(patched);
		assert_int_equal(E2E_INT(patched, "id"), victim);
		assert_string_equal(E2E_STR(patched, "comments"), "batched");
		expected = replaced(before, patched);
		break;
	}
	default:
		E2E_FAIL("unknown route");
	}
	if (!json_equal(expected, after))
		E2E_FAIL("%s: the account holds\n  %s\nexpected\n  %s", where, e2e_dumps(after),
		         e2e_dumps(expected));
}

/*
 * One cell: a fresh victim policy in account `acct`, snapshots of both
 * accounts, the request, then the verdict and the snapshots again.
 */
static void run_cell(world *w, const char *kind, const char *const *cred, const expect *x,
                     route_id route, int acct, const char *file, int line)
{
	const struct route *rt = &routes[route];
	const char *where = e2e_strf("%s:%d: %s: %s on the %s account", file, line, kind, rt->name,
	                             account_name[acct]);
	int n = ++w->serial;
	json_int_t victim = E2E_INT(
	    create_with(w, acct, e2e_strf("victim%d@%s.example", n, account_name[acct])), "id");
	const char *new_pattern = e2e_strf("new%d@%s.example", n, account_name[acct]);
	json_t *before[2] = {list_all(w, OWN), list_all(w, OTHER)};

	e2e_response *r = request_as(w, cred, rt->method, route_path(w, route, acct, victim),
	                             route_body(route, victim, new_pattern));
	json_t *after[2] = {list_all(w, OWN), list_all(w, OTHER)};
	enum perm held = acct == OWN ? x->own : x->other;

	if (held >= rt->need) {
		assert_allowed(r, route, victim, new_pattern, before[acct], after[acct], where);
	} else {
		assert_refused(r, x, where);
		assert_says_nothing(r, before, where);
		if (e2e_contains_ci(r->body, new_pattern))
			E2E_FAIL("%s: the refusal echoes the request: %s", where, r->body);
		if (!json_equal(before[acct], after[acct]))
			E2E_FAIL("%s: a refused request changed the account:\n  %s\n  %s", where,
			         e2e_dumps(before[acct]), e2e_dumps(after[acct]));
		if (rt->has_id) {
			/* The same refusal, byte for byte, for an id that exists nowhere. */
			e2e_response *absent =
			    request_as(w, cred, rt->method, route_path(w, route, acct, ABSENT_ID),
			               route_body(route, ABSENT_ID, new_pattern));
			if (absent->status != r->status || strcmp(absent->body, r->body) != 0)
				E2E_FAIL("%s: an absent policy id is refused differently:\n  %ld "
				         "%s\n  %ld %s",
				         where, r->status, r->body, absent->status, absent->body);
		}
	}
	int untouched = 1 - acct;
	if (!json_equal(before[untouched], after[untouched]))
		E2E_FAIL("%s: the %s account changed:\n  %s\n  %s", where, account_name[untouched],
		         e2e_dumps(before[untouched]), e2e_dumps(after[untouched]));
}

/* Every route on both accounts with one credential. */
static void run_matrix(world *w, const char *kind, const char *const *cred, expect x,
                       const char *file, int line)
{
	size_t n = strlen(kind);
	if (n > 5 && strcmp(kind + n - 5, "_body") == 0) /* E2E_TEST's function */
		kind = e2e_strf("%.*s", (int)(n - 5), kind);
	for (int acct = OWN; acct <= OTHER; acct++)
		for (route_id r = LIST; r < N_ROUTES; r++)
			run_cell(w, kind, cred, &x, r, acct, file, line);
}

/* Runs the matrix for the credential of the enclosing test, which names the row. */
#define MATRIX(w, cred, expect) run_matrix((w), __func__, (cred), (expect), __FILE__, __LINE__)

/* ---- the rows: credentials that fail authentication ---------------------- */

E2E_TEST(no_credentials_are_400_6003_missing_email_and_key)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, headers(NULL, NULL, NULL), BAD_HEADERS(6100, 6101));
}

E2E_TEST(malformed_authorization_is_400_6003_6111)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, headers("Authorization: Bearer not-a-token!", NULL, NULL), BAD_HEADERS(6111));
}

E2E_TEST(malformed_api_key_is_400_6003_6103)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, key_pair(w->s->email, e2e_strf("%.36s", w->s->api_key)), BAD_HEADERS(6103));
}

E2E_TEST(malformed_email_is_400_6003_6102)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, key_pair("not-an-email", w->s->api_key), BAD_HEADERS(6102));
}

E2E_TEST(wrong_api_key_is_403_10000)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, key_pair(w->s->email, wrong(w->s->api_key)), DENIED(10000));
}

E2E_TEST(wrong_token_is_403_10000)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, bearer(wrong(w->s->api_token)), DENIED(10000));
}

/*
 * The unusable tokens below hold Write on both accounts, so that only the
 * token's own state can explain the refusal.
 */
#define WRITE_BOTH(w)                                                                              \
	"--account", (w)->account[OWN], "--perm", "write", "--account", (w)->account[OTHER],       \
	    "--perm", "write"

E2E_TEST(expired_token_is_403_9109)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, WRITE_BOTH(w), "--expires", e2e_rfc3339(-3600));
	MATRIX(w, bearer(E2E_STR(t, "token")), DENIED(9109));
}

E2E_TEST(disabled_token_is_403_9109)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, WRITE_BOTH(w));
	E2E_CTL(w->s, "token", "disable", E2E_STR(t, "id"));
	MATRIX(w, bearer(E2E_STR(t, "token")), DENIED(9109));
}

E2E_TEST(not_yet_valid_token_is_403_9109)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, WRITE_BOTH(w), "--not-before", e2e_rfc3339(86400));
	MATRIX(w, bearer(E2E_STR(t, "token")), DENIED(9109));
}

E2E_TEST(token_used_outside_its_ip_ranges_is_403_9109)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, WRITE_BOTH(w), "--ip", "192.0.2.0/24", "--ip", "2001:db8::/32");
	MATRIX(w, bearer(E2E_STR(t, "token")), DENIED(9109));
}

E2E_TEST(revoked_token_is_403_10000)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, WRITE_BOTH(w));
	E2E_CTL(w->s, "token", "revoke", E2E_STR(t, "id"));
	MATRIX(w, bearer(E2E_STR(t, "token")), DENIED(10000));
}

/* ---- the rows: credentials that authenticate ------------------------------ */

E2E_TEST(read_token_reads_its_account_and_nothing_else)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, "--account", w->account[OWN], "--perm", "read");
	MATRIX(w, bearer(E2E_STR(t, "token")), ALLOWS(READ, NONE));
}

E2E_TEST(write_token_does_everything_on_its_account_and_nothing_else)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, "--account", w->account[OWN], "--perm", "write");
	MATRIX(w, bearer(E2E_STR(t, "token")), ALLOWS(WRITE, NONE));
}

E2E_TEST(token_inside_its_time_window_and_ip_ranges_works)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, "--account", w->account[OWN], "--perm", "write", "--not-before",
	                      e2e_rfc3339(-3600), "--expires", e2e_rfc3339(86400), "--ip",
	                      "192.0.2.0/24", "--ip", "127.0.0.0/8");
	MATRIX(w, bearer(E2E_STR(t, "token")), ALLOWS(WRITE, NONE));
}

E2E_TEST(user_key_with_write_role_does_everything_on_its_account_and_nothing_else)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, new_user(w, w->account[OWN], "write", NULL), ALLOWS(WRITE, NONE));
}

E2E_TEST(user_key_with_read_role_reads_its_account_and_nothing_else)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, new_user(w, w->account[OWN], "read", NULL), ALLOWS(READ, NONE));
}

E2E_TEST(bootstrap_key_does_everything_on_its_account_and_nothing_else)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, key_pair(w->s->email, w->s->api_key), ALLOWS(WRITE, NONE));
}

/* ---- the rows: a token and a key in one request -------------------------- */

E2E_TEST(token_and_key_both_valid_work)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, "--account", w->account[OWN], "--perm", "write");
	MATRIX(w, both(bearer(E2E_STR(t, "token")), new_user(w, w->account[OWN], "write", NULL)),
	       ALLOWS(WRITE, NONE));
}

E2E_TEST(token_and_key_get_the_intersection_of_their_grants)
{
	(void)s;
	world *w = world_new();
	/* token: own write, other read; user: own read, other write */
	json_t *t = NEW_TOKEN(w, "--account", w->account[OWN], "--perm", "write", "--account",
	                      w->account[OTHER], "--perm", "read");
	const char *email;
	const char *const *user = new_user(w, w->account[OWN], "read", &email);
	E2E_CTL(w->s, "user", "add-to-account", "--email", email, "--account", w->account[OTHER],
	        "--role", "write");
	MATRIX(w, both(bearer(E2E_STR(t, "token")), user), ALLOWS(READ, READ));
}

E2E_TEST(valid_token_with_wrong_key_is_403_10000)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, WRITE_BOTH(w));
	MATRIX(w, both(bearer(E2E_STR(t, "token")), key_pair(w->s->email, wrong(w->s->api_key))),
	       DENIED(10000));
}

E2E_TEST(wrong_token_with_valid_key_is_403_10000)
{
	(void)s;
	world *w = world_new();
	MATRIX(w, both(bearer(wrong(w->s->api_token)), key_pair(w->s->email, w->s->api_key)),
	       DENIED(10000));
}

E2E_TEST(valid_token_with_malformed_key_is_400_6003_6103)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, WRITE_BOTH(w));
	MATRIX(w,
	       both(bearer(E2E_STR(t, "token")),
	            key_pair(w->s->email, e2e_strf("%s0", w->s->api_key))),
	       BAD_HEADERS(6103));
}

E2E_TEST(disabled_token_with_valid_key_is_403_9109)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, WRITE_BOTH(w));
	E2E_CTL(w->s, "token", "disable", E2E_STR(t, "id"));
	MATRIX(w, both(bearer(E2E_STR(t, "token")), key_pair(w->s->email, w->s->api_key)),
	       DENIED(9109));
}

/* ---- token state changes take effect at once ------------------------------ */

E2E_TEST(disabling_and_enabling_a_token_takes_effect_on_the_next_request)
{
	(void)s;
	world *w = world_new();
	json_t *t = NEW_TOKEN(w, "--account", w->account[OWN], "--perm", "read");
	const char *const *cred = bearer(E2E_STR(t, "token"));
	const char *list = w->policies[OWN];

	E2E_OK(request_as(w, cred, "GET", list, NULL), 200);
	E2E_CTL(w->s, "token", "disable", E2E_STR(t, "id"));
	E2E_ERR(request_as(w, cred, "GET", list, NULL), 403, 9109, NULL);
	E2E_CTL(w->s, "token", "enable", E2E_STR(t, "id"));
	E2E_OK(request_as(w, cred, "GET", list, NULL), 200);
	E2E_CTL(w->s, "token", "revoke", E2E_STR(t, "id"));
	E2E_ERR(request_as(w, cred, "GET", list, NULL), 403, 10000, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE_BARE(no_credentials_are_400_6003_missing_email_and_key),
	    E2E_CASE_BARE(malformed_authorization_is_400_6003_6111),
	    E2E_CASE_BARE(malformed_api_key_is_400_6003_6103),
	    E2E_CASE_BARE(malformed_email_is_400_6003_6102),
	    E2E_CASE_BARE(wrong_api_key_is_403_10000),
	    E2E_CASE_BARE(wrong_token_is_403_10000),
	    E2E_CASE_BARE(expired_token_is_403_9109),
	    E2E_CASE_BARE(disabled_token_is_403_9109),
	    E2E_CASE_BARE(not_yet_valid_token_is_403_9109),
	    E2E_CASE_BARE(token_used_outside_its_ip_ranges_is_403_9109),
	    E2E_CASE_BARE(revoked_token_is_403_10000),
	    E2E_CASE_BARE(read_token_reads_its_account_and_nothing_else),
	    E2E_CASE_BARE(write_token_does_everything_on_its_account_and_nothing_else),
	    E2E_CASE_BARE(token_inside_its_time_window_and_ip_ranges_works),
	    E2E_CASE_BARE(user_key_with_write_role_does_everything_on_its_account_and_nothing_else),
	    E2E_CASE_BARE(user_key_with_read_role_reads_its_account_and_nothing_else),
	    E2E_CASE_BARE(bootstrap_key_does_everything_on_its_account_and_nothing_else),
	    E2E_CASE_BARE(token_and_key_both_valid_work),
	    E2E_CASE_BARE(token_and_key_get_the_intersection_of_their_grants),
	    E2E_CASE_BARE(valid_token_with_wrong_key_is_403_10000),
	    E2E_CASE_BARE(wrong_token_with_valid_key_is_403_10000),
	    E2E_CASE_BARE(valid_token_with_malformed_key_is_400_6003_6103),
	    E2E_CASE_BARE(disabled_token_with_valid_key_is_403_9109),
	    E2E_CASE_BARE(disabling_and_enabling_a_token_takes_effect_on_the_next_request),
	};
	return cmocka_run_group_tests_name("e2e_authz", tests, NULL, NULL);
}

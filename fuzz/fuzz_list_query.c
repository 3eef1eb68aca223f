/*
 * fuzz_list_query.c - the list query string through api_policy_list
 * (src/api/policies.c, then the store's filtered, ordered page).
 *
 * Input: byte 0 mod 16 is how many parameters are read; the rest is split
 * at '&' into parameters and each at its first '=' into name and value (a
 * parameter without '=' has the empty value), as the HTTP layer hands them
 * over after percent-decoding.  The first parameter of a name wins.  The
 * store is opened once with the seeded policies (fuzz_common.c) and never
 * written.
 *
 * Invariants:
 *  - failure is ALLOWD_EINVALID with a pointer starting "/query/";
 *  - success: result_info echoes page and per_page, count <= per_page and
 *    equals the number of items; every item satisfies every filter; items
 *    are sorted as requested (ties by id, in the same direction); and the
 *    page is exactly the one an independent filter-sort-slice of the whole
 *    set gives, total_count included (for a search that is valid UTF-8,
 *    where LIKE's ASCII case folding is well defined).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "allowd/error.h"
#include "api/api.h"
#include "fuzz_common.h"

#define MAX_PARAMS 15

static allowd_store *store;
static allowd_policy_list all; /* the whole account, by id */

static void free_store(void)
{
	allowd_policy_list_clear(&all);
	allowd_store_free(store);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[600];
	allowd_store_options o = {.path = path, .busy_timeout_ms = 0};
	allowd_list_query q;

	(void)argc;
	(void)argv;
	fuzz_path(path, sizeof(path), "list.db");
	if (allowd_store_open(&store, &o) != 0)
		abort();
	fuzz_seed_policies(store);
	allowd_list_query_init(&q);
	q.per_page = ALLOWD_PER_PAGE_MAX;
	if (allowd_store_policy_list(store, &all, fuzz_account_id, &q) != 0)
		abort();
	atexit(free_store);
	return 0;
}

typedef struct params {
	char *name[MAX_PARAMS];
	char *value[MAX_PARAMS];
	int n;
} params;

/*
 * The query accessor.  policies.c's query_bool asks for the deprecated alias
 * of verify_sender, which has none, as name NULL; libmicrohttpd answers
 * NULL for that, and so does this.
 */
static const char *lookup(void *ctx, const char *name)
{
	const params *p = ctx;
	if (!name)
		return NULL;
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->name[i], name) == 0)
			return p->value[i];
	return NULL;
}

/* The effective query, read back the way the handler documents it (it succeeded). */
typedef struct want {
	int type, flags[4];
	const char *pattern, *search;
	int order; /* 0 id, 1 pattern, 2 created_at */
	bool desc;
} want;

static int tristate(params *p, const char *name, const char *alias)
{
	const char *s = lookup(p, name);
	if (!s && alias)
		s = lookup(p, alias);
	return !s ? -1 : strcmp(s, "true") == 0;
}

static void read_want(want *w, params *p)
{
	const char *s;

	w->type = (s = lookup(p, "pattern_type")) ? allowd_pattern_type_parse(s) : -1;
	w->flags[0] = tristate(p, "is_trusted_sender", "is_sender");
	w->flags[1] = tristate(p, "is_acceptable_sender", "is_spoof");
	w->flags[2] = tristate(p, "is_exempt_recipient", "is_recipient");
	w->flags[3] = tristate(p, "verify_sender", NULL);
	w->pattern = lookup(p, "pattern");
	w->search = (s = lookup(p, "search")) && *s ? s : NULL;
	s = lookup(p, "order");
	w->order = !s ? 0 : strcmp(s, "pattern") == 0 ? 1 : 2;
	s = lookup(p, "direction");
	w->desc = s && strcmp(s, "desc") == 0;
}

/* SQLite's LIKE '%s%' without ICU: ASCII case-insensitive substring. */
static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	if (!hay)
		return false;
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return n == 0;
}

static bool matches(const want *w, const allowd_policy *p, bool check_search)
{
	const bool f[4] = {p->is_trusted_sender, p->is_acceptable_sender, p->is_exempt_recipient,
			   p->verify_sender};
	if (w->type >= 0 && (int)p->pattern_type != w->type)
		return false;
	for (int i = 0; i < 4; i++)
		if (w->flags[i] >= 0 && (int)f[i] != w->flags[i])
			return false;
	if (w->pattern && strcmp(p->pattern, w->pattern) != 0)
		return false;
	if (check_search && w->search &&
	    !contains_ci(p->pattern, w->search) && !contains_ci(p->comments, w->search))
		return false;
	return true;
}

static const want *sort_want;

/* Ascending order of the requested key, ties by id. */
static int cmp_asc(const allowd_policy *a, const allowd_policy *b)
{
	int c = 0;
	if (sort_want->order == 1)
		c = strcmp(a->pattern, b->pattern);
	else if (sort_want->order == 2)
		c = (a->created_at > b->created_at) - (a->created_at < b->created_at);
	if (c == 0)
		c = (a->id > b->id) - (a->id < b->id);
	return c;
}

static int cmp_sort(const void *va, const void *vb)
{
	const allowd_policy *a = *(allowd_policy *const *)va, *b = *(allowd_policy *const *)vb;
	int c = cmp_asc(a, b);
	return sort_want->desc ? -c : c;
}

static void check_success(params *p, const api_response *resp)
{
	json_t *info = resp->result_info, *items = resp->result, *v;
	int64_t page = json_integer_value(json_object_get(info, "page"));
	int64_t per_page = json_integer_value(json_object_get(info, "per_page"));
	int64_t count = json_integer_value(json_object_get(info, "count"));
	int64_t total = json_integer_value(json_object_get(info, "total_count"));
	const allowd_policy *prev = NULL;
	allowd_policy **exp = calloc(all.count + 1, sizeof(*exp));
	size_t n_exp = 0, i;
	const char *s;
	bool exact;
	want w;

	FUZZ_CHECK(exp != NULL, "oom");
	FUZZ_CHECK(json_is_array(items) && json_is_object(info), "malformed response");
	FUZZ_CHECK((s = lookup(p, "page")) ? page == strtoll(s, NULL, 10) : page == 1,
		   "page %lld echoed for '%s'", (long long)page, s ? s : "(absent)");
	FUZZ_CHECK((s = lookup(p, "per_page")) ? per_page == strtoll(s, NULL, 10) : per_page == 20,
		   "per_page %lld echoed for '%s'", (long long)per_page, s ? s : "(absent)");
	FUZZ_CHECK(per_page >= 1 && per_page <= ALLOWD_PER_PAGE_MAX && page >= 1,
		   "page %lld per_page %lld accepted", (long long)page, (long long)per_page);
	FUZZ_CHECK(count >= 0 && count <= per_page && (size_t)count == json_array_size(items),
		   "count %lld, per_page %lld, %zu items", (long long)count, (long long)per_page,
		   json_array_size(items));

	read_want(&w, p);
	sort_want = &w;
	exact = !w.search || allowd_utf8_length(w.search, strlen(w.search)) >= 0;

	/* each item is a stored policy satisfying the filters, in order */
	json_array_foreach(items, i, v) {
		json_int_t id = json_integer_value(json_object_get(v, "id"));
		const allowd_policy *cur = NULL;
		for (size_t k = 0; k < all.count; k++)
			if (all.items[k]->id == id)
				cur = all.items[k];
		FUZZ_CHECK(cur != NULL, "item %zu: id %lld is not in the account", i, (long long)id);
		FUZZ_CHECK(matches(&w, cur, exact), "item %zu (id %lld, '%s') fails the filters", i,
			   (long long)id, cur->pattern);
		if (prev)
			FUZZ_CHECK(cmp_sort(&prev, &cur) < 0, "items %zu and %zu out of order", i - 1,
				   i);
		prev = cur;
	}

	if (!exact)
		goto out;
	for (i = 0; i < all.count; i++)
		if (matches(&w, all.items[i], true))
			exp[n_exp++] = all.items[i];
	FUZZ_CHECK(total == (int64_t)n_exp, "total_count %lld, expected %zu", (long long)total,
		   n_exp);
	qsort(exp, n_exp, sizeof(*exp), cmp_sort);
	{
		int64_t off = (page - 1) * per_page;
		size_t want_n = off >= (int64_t)n_exp ? 0
			       : (size_t)((int64_t)n_exp - off < per_page ? (int64_t)n_exp - off
									   : per_page);
		FUZZ_CHECK((size_t)count == want_n, "count %lld, expected %zu", (long long)count,
			   want_n);
		for (i = 0; i < want_n; i++)
			FUZZ_CHECK(json_integer_value(json_object_get(json_array_get(items, i), "id")) ==
					   exp[off + (int64_t)i]->id,
				   "item %zu is id %lld, expected %lld", i,
				   (long long)json_integer_value(
					   json_object_get(json_array_get(items, i), "id")),
				   (long long)exp[off + (int64_t)i]->id);
	}
out:
	free(exp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	allowd_api api;
	api_request req;
	api_response resp;
	params p;
	char *text, *cur;
	int rc, want_n;

	if (size < 1 || size > 65536)
		return 0;
	want_n = data[0] % 16;
	text = fuzz_strndup(data + 1, size - 1);
	memset(&p, 0, sizeof(p));
	cur = text;
	while (p.n < want_n && p.n < MAX_PARAMS && cur) {
		char *amp = strchr(cur, '&'), *eq;
		if (amp)
			*amp = '\0';
		eq = strchr(cur, '=');
		if (eq)
			*eq = '\0';
		p.name[p.n] = cur;
		p.value[p.n] = eq ? eq + 1 : cur + strlen(cur);
		p.n++;
		cur = amp ? amp + 1 : NULL;
	}

	memset(&api, 0, sizeof(api));
	api.store = store;
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.account_id = fuzz_account_id;
	req.query = lookup;
	req.ctx = &p;
	memset(&resp, 0, sizeof(resp));
	resp.status = 200;

	allowd_error_clear();
	rc = api_policy_list(&api, &req, &resp);
	if (rc != 0) {
		const allowd_error *e = allowd_error_last();
		FUZZ_CHECK(rc == ALLOWD_EINVALID, "list failed with code %d: %s", rc, e->message);
		FUZZ_CHECK(strncmp(e->pointer, "/query/", 7) == 0, "pointer '%s'", e->pointer);
		FUZZ_CHECK(e->message[0] != '\0', "empty message");
		FUZZ_CHECK(resp.result == NULL && resp.result_info == NULL && resp.body == NULL,
			   "a failure left a result");
	} else {
		/* the handler renders the whole envelope: read result and result_info back */
		json_t *doc = resp.body ? json_loads(resp.body, 0, NULL) : NULL;
		FUZZ_CHECK(doc != NULL, "the list's body is not JSON");
		resp.result = json_incref(json_object_get(doc, "result"));
		resp.result_info = json_incref(json_object_get(doc, "result_info"));
		json_decref(doc);
		free(resp.body);
		resp.body = NULL;
		check_success(&p, &resp);
	}
	json_decref(resp.result);
	json_decref(resp.result_info);
	free(text);
	return 0;
}

/*
 * test_list.c - the list route: page/per_page defaults and bounds,
 * result_info, every filter and deprecated alias, search, and ordering by
 * pattern and created_at in both directions with ties broken by id, walked
 * page by page to prove there is no overlap and no gap.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* Creates `posts` through one batch and returns their ids in order. */
static json_int_t *batch_create(e2e_server *s, json_t *posts)
{
	json_t *result = E2E_BATCH(s, e2e_batch_posts_body(posts));
	json_t *made = E2E_ARR(result, "posts");
	assert_int_equal(json_array_size(made), json_array_size(posts));
	json_int_t *ids = e2e_calloc(json_array_size(made) + 1, sizeof(*ids));
	for (size_t i = 0; i < json_array_size(made); i++) {
		E2E_POLICY(json_array_get(made, i));
		ids[i] = E2E_INT(json_array_get(made, i), "id");
	}
	return ids;
}

static json_t *list_ok(e2e_server *s, const char *query, json_t **info)
{
	e2e_response *r = e2e_get(s, "%s?%s", s->policies, query);
	json_t *result = E2E_OK(r, 200);
	E2E_CHECK(json_is_array(result), "?%s: result is not an array", query);
	*info = json_object_get(r->json, "result_info");
	E2E_CHECK(json_is_object(*info), "?%s: no result_info: %s", query, r->body);
	return result;
}

static void assert_info(const json_t *info, json_int_t page, json_int_t per_page, json_int_t count,
                        json_int_t total)
{
	json_t *expect = e2e_keep(json_pack("{s:I,s:I,s:I,s:I}", "page", page, "per_page", per_page,
	                                    "count", count, "total_count", total));
	json_t *got = e2e_keep(
	    json_pack("{s:O?,s:O?,s:O?,s:O?}", "page", json_object_get(info, "page"), "per_page",
	              json_object_get(info, "per_page"), "count", json_object_get(info, "count"),
	              "total_count", json_object_get(info, "total_count")));
	E2E_JSON_EQ(got, expect);
}

/* ---- pagination ------------------------------------------------------- */

E2E_TEST(empty_list_is_200_with_no_results)
{
	json_t *info;
	json_t *result = list_ok(s, "", &info);
	assert_int_equal(json_array_size(result), 0);
	assert_info(info, 1, 20, 0, 0);
}

E2E_TEST(pages_default_to_1_and_20)
{
	json_t *made = E2E_CREATE_MANY(s, "p", 25);
	json_t *info;
	json_t *first = list_ok(s, "", &info);
	assert_info(info, 1, 20, 20, 25);
	for (size_t i = 0; i < 20; i++)
		E2E_JSON_EQ(json_array_get(first, i), json_array_get(made, i));

	json_t *second = list_ok(s, "page=2", &info);
	assert_info(info, 2, 20, 5, 25);
	for (size_t i = 0; i < 5; i++)
		E2E_JSON_EQ(json_array_get(second, i), json_array_get(made, 20 + i));
}

E2E_TEST(per_page_bounds_are_inclusive)
{
	E2E_CREATE_MANY(s, "p", 3);
	json_t *info;
	assert_int_equal(json_array_size(list_ok(s, "per_page=1", &info)), 1);
	assert_info(info, 1, 1, 1, 3);
	assert_int_equal(json_array_size(list_ok(s, "per_page=1000", &info)), 3);
	assert_info(info, 1, 1000, 3, 3);
	assert_int_equal(json_array_size(list_ok(s, "per_page=2&page=2", &info)), 1);
	assert_info(info, 2, 2, 1, 3);
}

E2E_TEST(page_past_the_end_is_200_and_empty)
{
	E2E_CREATE_MANY(s, "p", 5);
	json_t *info;
	assert_int_equal(json_array_size(list_ok(s, "page=2", &info)), 0);
	assert_info(info, 2, 20, 0, 5);
	assert_int_equal(json_array_size(list_ok(s, "page=99&per_page=3", &info)), 0);
	assert_info(info, 99, 3, 0, 5);
	assert_int_equal(json_array_size(list_ok(s, "page=3&per_page=2", &info)), 1);
	assert_info(info, 3, 2, 1, 5);
}

E2E_TEST(out_of_range_page_parameters_are_400_naming_them)
{
	static const char *const cases[][2] = {
	    {"page=0", "/query/page"},
	    {"page=-1", "/query/page"},
	    {"page=abc", "/query/page"},
	    {"page=1.5", "/query/page"},
	    {"page=99999999999999999999", "/query/page"},
	    {"per_page=0", "/query/per_page"},
	    {"per_page=1001", "/query/per_page"},
	    {"per_page=abc", "/query/per_page"},
	    {"per_page=-5", "/query/per_page"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e2e_response *r = e2e_get(s, "%s?%s", s->policies, cases[i][0]);
		E2E_CHECK(r->status == 400, "?%s: expected 400, got %ld: %s", cases[i][0],
		          r->status, r->body);
		E2E_ERR(r, 400, 1001, cases[i][1]);
	}
}

E2E_TEST(invalid_filter_and_order_values_are_400_naming_them)
{
	static const char *const cases[][2] = {
	    {"order=id", "/query/order"},
	    {"order=", "/query/order"},
	    {"direction=up", "/query/direction"},
	    {"pattern_type=FOO", "/query/pattern_type"},
	    {"is_trusted_sender=yes", "/query/is_trusted_sender"},
	    {"is_trusted_sender=1", "/query/is_trusted_sender"},
	    {"is_acceptable_sender=maybe", "/query/is_acceptable_sender"},
	    {"is_exempt_recipient=maybe", "/query/is_exempt_recipient"},
	    {"verify_sender=maybe", "/query/verify_sender"},
	    {"is_sender=maybe", "/query/is_sender"},
	    {"is_recipient=maybe", "/query/is_recipient"},
	    {"is_spoof=maybe", "/query/is_spoof"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e2e_response *r = e2e_get(s, "%s?%s", s->policies, cases[i][0]);
		E2E_CHECK(r->status == 400, "?%s: expected 400, got %ld: %s", cases[i][0],
		          r->status, r->body);
		E2E_ERR(r, 400, 1001, cases[i][1]);
	}
}

E2E_TEST(unknown_query_parameters_are_ignored)
{
	E2E_CREATE_MANY(s, "p", 2);
	json_t *info;
	assert_int_equal(json_array_size(list_ok(s, "foo=bar&zzz=", &info)), 2);
	assert_info(info, 1, 20, 2, 2);
}

/* ---- filters ---------------------------------------------------------- */

/*
 * The fixture: index → pattern, type, regex, trusted, acceptable, exempt,
 * verify, comments.
 */
static json_int_t *make_fixture(e2e_server *s)
{
	json_t *posts = e2e_keep(json_array());
	json_array_append(posts, e2e_policy_obj("a@example.com", "EMAIL", false, true, false, false,
	                                        true, "Alpha note"));
	json_array_append(posts, e2e_policy_obj("b@example.net", "EMAIL", false, false, true, false,
	                                        false, NULL));
	json_array_append(posts, e2e_policy_obj("^c.*@corp\\.example$", "EMAIL", true, false, false,
	                                        true, true, "CORP team"));
	json_array_append(
	    posts, e2e_policy_obj("example.org", "DOMAIN", false, true, true, false, true, NULL));
	json_array_append(posts, e2e_policy_obj("example", "DOMAIN", true, false, true, false,
	                                        false, "mentions alpha too"));
	json_array_append(posts,
	                  e2e_policy_obj("1.2.3.4", "IP", false, true, false, false, false, NULL));
	json_array_append(
	    posts, e2e_policy_obj("8.8.8.0/24", "IP", false, false, true, false, true, "dns"));
	json_array_append(posts, e2e_policy_obj("under_score@example.com", "EMAIL", false, true,
	                                        false, false, false, "100% sure"));
	return batch_create(s, posts);
}

#define FIXTURE_SIZE 8

/* Asserts that ?query selects exactly the fixture indexes in `want` (-1 ends). */
static void assert_selects_at(e2e_server *s, const json_int_t *ids, const char *query,
                              const int *want, const char *file, int line)
{
	e2e_response *r = e2e_get(s, "%s?per_page=1000%s%s", s->policies, *query ? "&" : "", query);
	json_t *result = e2e_assert_ok_at(r, 200, file, line);
	json_int_t n = 0;
	for (; want[n] >= 0; n++)
		;
	json_t *got = e2e_keep(json_array());
	json_t *expect = e2e_keep(json_array());
	size_t i;
	json_t *p;
	json_array_foreach(result, i, p)
	    json_array_append_new(got, json_integer(e2e_int_at(p, "id", file, line)));
	for (json_int_t k = 0; k < n; k++)
		json_array_append_new(expect, json_integer(ids[want[k]]));
	if (!json_equal(got, expect))
		e2e_fail_at(file, line, "?%s selected ids %s, expected %s", query, e2e_dumps(got),
		            e2e_dumps(expect));
	json_t *info = json_object_get(r->json, "result_info");
	if (e2e_int_at(info, "total_count", file, line) != n ||
	    e2e_int_at(info, "count", file, line) != n)
		e2e_fail_at(file, line, "?%s: result_info %s, expected count = total_count = %lld",
		            query, e2e_dumps(info), (long long)n);
}

#define SELECTS(s, ids, query, ...)                                                                \
	do {                                                                                       \
		static const int want_[] = {__VA_ARGS__};                                          \
		assert_selects_at((s), (ids), (query), want_, __FILE__, __LINE__);                 \
	} while (0)

E2E_TEST(filter_by_pattern_type)
{
	json_int_t *ids = make_fixture(s);
	SELECTS(s, ids, "pattern_type=EMAIL", 0, 1, 2, 7, -1);
	SELECTS(s, ids, "pattern_type=DOMAIN", 3, 4, -1);
	SELECTS(s, ids, "pattern_type=IP", 5, 6, -1);
	SELECTS(s, ids, "", 0, 1, 2, 3, 4, 5, 6, 7, -1);
}

E2E_TEST(filter_by_exact_pattern)
{
	json_int_t *ids = make_fixture(s);
	SELECTS(s, ids, "pattern=example.org", 3, -1);
	SELECTS(s, ids, "pattern=example", 4, -1);
	SELECTS(s, ids, "pattern=a%40example.com", 0, -1);
	SELECTS(s, ids, "pattern=8.8.8.0%2F24", 6, -1);
	SELECTS(s, ids, "pattern=exam", -1);
	SELECTS(s, ids, "pattern=nothing.example", -1);
}

E2E_TEST(filter_by_trusted_sender_and_is_sender)
{
	json_int_t *ids = make_fixture(s);
	SELECTS(s, ids, "is_trusted_sender=true", 0, 3, 5, 7, -1);
	SELECTS(s, ids, "is_trusted_sender=false", 1, 2, 4, 6, -1);
	SELECTS(s, ids, "is_sender=true", 0, 3, 5, 7, -1);
	SELECTS(s, ids, "is_sender=false", 1, 2, 4, 6, -1);
}

E2E_TEST(filter_by_acceptable_sender_and_is_spoof)
{
	json_int_t *ids = make_fixture(s);
	SELECTS(s, ids, "is_acceptable_sender=true", 1, 3, 4, 6, -1);
	SELECTS(s, ids, "is_acceptable_sender=false", 0, 2, 5, 7, -1);
	SELECTS(s, ids, "is_spoof=true", 1, 3, 4, 6, -1);
	SELECTS(s, ids, "is_spoof=false", 0, 2, 5, 7, -1);
}

E2E_TEST(filter_by_exempt_recipient_and_is_recipient)
{
	json_int_t *ids = make_fixture(s);
	SELECTS(s, ids, "is_exempt_recipient=true", 2, -1);
	SELECTS(s, ids, "is_exempt_recipient=false", 0, 1, 3, 4, 5, 6, 7, -1);
	SELECTS(s, ids, "is_recipient=true", 2, -1);
	SELECTS(s, ids, "is_recipient=false", 0, 1, 3, 4, 5, 6, 7, -1);
}

E2E_TEST(filter_by_verify_sender)
{
	json_int_t *ids = make_fixture(s);
	SELECTS(s, ids, "verify_sender=true", 0, 2, 3, 6, -1);
	SELECTS(s, ids, "verify_sender=false", 1, 4, 5, 7, -1);
}

E2E_TEST(filters_combine_with_and)
{
	json_int_t *ids = make_fixture(s);
	SELECTS(s, ids, "pattern_type=EMAIL&is_trusted_sender=true", 0, 7, -1);
	SELECTS(s, ids, "pattern_type=IP&verify_sender=false", 5, -1);
	SELECTS(s, ids, "is_acceptable_sender=true&verify_sender=true&pattern_type=DOMAIN", 3, -1);
	SELECTS(s, ids, "is_sender=true&is_trusted_sender=true", 0, 3, 5, 7, -1);
	SELECTS(s, ids, "search=example&pattern_type=DOMAIN", 3, 4, -1);
	SELECTS(s, ids, "pattern_type=IP&is_exempt_recipient=true", -1);
}

E2E_TEST(search_is_case_insensitive_on_pattern_and_comments)
{
	json_int_t *ids = make_fixture(s);
	SELECTS(s, ids, "search=alpha", 0, 4, -1);
	SELECTS(s, ids, "search=ALPHA", 0, 4, -1);
	SELECTS(s, ids, "search=corp", 2, -1);
	SELECTS(s, ids, "search=EXAMPLE.NET", 1, -1);
	SELECTS(s, ids, "search=8.8", 6, -1);
	SELECTS(s, ids, "search=example", 0, 1, 2, 3, 4, 7, -1);
	SELECTS(s, ids, "search=DNS", 6, -1);
	SELECTS(s, ids, "search=zzz", -1);
}

E2E_TEST(search_treats_wildcard_characters_literally)
{
	json_int_t *ids = make_fixture(s);
	SELECTS(s, ids, "search=_", 7, -1);
	SELECTS(s, ids, "search=%25", 7, -1);
	SELECTS(s, ids, "search=r_s", 7, -1);
	SELECTS(s, ids, "search=a_e", -1);
	SELECTS(s, ids, "search=a%25m", -1);
	SELECTS(s, ids, "search=%5C", 2, -1);
}

/* ---- ordering --------------------------------------------------------- */

/*
 * Creates 44 policies in three commits (two batches, then single creates),
 * patterns out of id order, with three policies sharing one pattern.
 */
static json_t *make_ordering_fixture(e2e_server *s)
{
	static const char letters[] = "qwertyuiopasdfghjklzxcvbnm";
	json_t *posts = e2e_keep(json_array());
	for (int i = 0; i < 20; i++) {
		char *pattern = e2e_strf("%c%02d.example.com", letters[i % 26], 40 - i);
		json_array_append(posts, e2e_policy_obj(pattern, "DOMAIN", false, true, false,
		                                        false, true, NULL));
	}
	json_array_append(posts, e2e_policy_obj("m.example.com", "DOMAIN", false, true, false,
	                                        false, true, NULL));
	json_array_append(
	    posts, e2e_policy_obj("m.example.com", "DOMAIN", true, true, false, false, true, NULL));
	json_array_append(
	    posts, e2e_policy_obj("m.example.com", "EMAIL", true, true, false, false, true, NULL));
	batch_create(s, posts);

	posts = e2e_keep(json_array());
	for (int i = 0; i < 15; i++) {
		char *pattern = e2e_strf("%c%02d@example.com", letters[(i * 7) % 26], i);
		json_array_append(
		    posts, e2e_policy_obj(pattern, "EMAIL", false, true, false, false, true, NULL));
	}
	batch_create(s, posts);

	for (int i = 0; i < 6; i++)
		E2E_CREATE(s, e2e_email_body(e2e_strf("%c@example.org", letters[(i * 5) % 26])));
	return E2E_LIST_ALL(s);
}

/* Walks every page of ?query and returns the concatenated items. */
static json_t *walk_at(e2e_server *s, const char *query, int per_page, json_int_t total,
                       const char *file, int line)
{
	json_t *all = e2e_keep(json_array());
	for (int page = 1;; page++) {
		e2e_response *r = e2e_get(s, "%s?%s%sper_page=%d&page=%d", s->policies, query,
		                          *query ? "&" : "", per_page, page);
		json_t *result = e2e_assert_ok_at(r, 200, file, line);
		json_t *info = json_object_get(r->json, "result_info");
		if (e2e_int_at(info, "total_count", file, line) != total ||
		    e2e_int_at(info, "page", file, line) != page ||
		    e2e_int_at(info, "per_page", file, line) != per_page ||
		    e2e_int_at(info, "count", file, line) != (json_int_t)json_array_size(result))
			e2e_fail_at(file, line, "?%s page %d: bad result_info %s (total %lld)",
			            query, page, e2e_dumps(info), (long long)total);
		if (json_array_size(result) == 0)
			break;
		if (json_array_size(result) > (size_t)per_page)
			e2e_fail_at(file, line, "?%s page %d: more than per_page items", query,
			            page);
		json_array_extend(all, result);
		if (page > 1000)
			e2e_fail_at(file, line, "?%s never ends", query);
	}
	return all;
}

/* No item twice, none missing: `walked` holds exactly the ids of `expected`. */
static void assert_same_ids_at(const json_t *walked, const json_t *expected, const char *query,
                               const char *file, int line)
{
	size_t n = json_array_size(expected);
	if (json_array_size(walked) != n)
		e2e_fail_at(file, line, "?%s walked %zu items, expected %zu", query,
		            json_array_size(walked), n);
	for (size_t i = 0; i < n; i++) {
		json_int_t id = e2e_int_at(json_array_get(walked, i), "id", file, line);
		int seen = 0;
		for (size_t j = 0; j < n; j++)
			seen += e2e_int_at(json_array_get(walked, j), "id", file, line) == id;
		if (seen != 1)
			e2e_fail_at(file, line, "?%s: id %lld appears %d times", query,
			            (long long)id, seen);
		bool found = false;
		for (size_t j = 0; j < n && !found; j++) {
			json_t *want = json_array_get(expected, j);
			if (e2e_int_at(want, "id", file, line) == id) {
				found = true;
				if (!json_equal(want, json_array_get(walked, i)))
					e2e_fail_at(file, line, "?%s: id %lld differs", query,
					            (long long)id);
			}
		}
		if (!found)
			e2e_fail_at(file, line, "?%s: unexpected id %lld", query, (long long)id);
	}
}

/*
 * Consecutive items are ordered by `key` in `direction`, ties by id: id
 * ascending for asc; for desc either way, but the same way throughout.
 */
static void assert_ordered_at(const json_t *items, const char *key, bool desc, int min_ties,
                              const char *query, const char *file, int line)
{
	int tie_dir = desc ? 0 : 1; /* 1: ids ascend, -1: descend, 0: not yet seen */
	int ties = 0;
	for (size_t i = 1; i < json_array_size(items); i++) {
		json_t *a = json_array_get(items, i - 1), *b = json_array_get(items, i);
		int c = strcmp(e2e_str_at(a, key, file, line), e2e_str_at(b, key, file, line));
		if (desc)
			c = -c;
		if (c > 0)
			e2e_fail_at(file, line, "?%s: items %zu and %zu out of order: %s then %s",
			            query, i - 1, i, e2e_dumps(a), e2e_dumps(b));
		if (c < 0)
			continue;
		ties++;
		json_int_t ida = e2e_int_at(a, "id", file, line),
		           idb = e2e_int_at(b, "id", file, line);
		int d = idb > ida ? 1 : -1;
		if (tie_dir == 0)
			tie_dir = d;
		if (d != tie_dir)
			e2e_fail_at(file, line,
			            "?%s: tie at %zu not broken by id consistently (%lld, %lld)",
			            query, i, (long long)ida, (long long)idb);
	}
	if (ties < min_ties)
		e2e_fail_at(file, line, "?%s: %d ties, the fixture has at least %d", query, ties,
		            min_ties);
}

static void check_order_at(e2e_server *s, const json_t *all, const char *key, bool desc,
                           int per_page, const char *file, int line)
{
	char *query = e2e_strf("order=%s&direction=%s", key, desc ? "desc" : "asc");
	json_t *walked = walk_at(s, query, per_page, (json_int_t)json_array_size(all), file, line);
	assert_same_ids_at(walked, all, query, file, line);
	assert_ordered_at(walked, key, desc, strcmp(key, "pattern") == 0 ? 2 : 0, query, file,
	                  line);
}

#define CHECK_ORDER(s, all, key, desc, per_page)                                                   \
	check_order_at((s), (all), (key), (desc), (per_page), __FILE__, __LINE__)

E2E_TEST(order_by_pattern_asc_walks_every_page)
{
	json_t *all = make_ordering_fixture(s);
	CHECK_ORDER(s, all, "pattern", false, 7);
	CHECK_ORDER(s, all, "pattern", false, 1);
}

E2E_TEST(order_by_pattern_desc_walks_every_page)
{
	json_t *all = make_ordering_fixture(s);
	CHECK_ORDER(s, all, "pattern", true, 7);
	CHECK_ORDER(s, all, "pattern", true, 1);
}

E2E_TEST(order_by_created_at_asc_walks_every_page)
{
	json_t *all = make_ordering_fixture(s);
	CHECK_ORDER(s, all, "created_at", false, 7);
	CHECK_ORDER(s, all, "created_at", false, 3);
}

E2E_TEST(order_by_created_at_desc_walks_every_page)
{
	json_t *all = make_ordering_fixture(s);
	CHECK_ORDER(s, all, "created_at", true, 7);
	CHECK_ORDER(s, all, "created_at", true, 3);
}

E2E_TEST(direction_defaults_to_asc)
{
	json_t *all = make_ordering_fixture(s);
	json_t *a =
	    walk_at(s, "order=pattern", 10, (json_int_t)json_array_size(all), __FILE__, __LINE__);
	json_t *b = walk_at(s, "order=pattern&direction=asc", 10, (json_int_t)json_array_size(all),
	                    __FILE__, __LINE__);
	E2E_JSON_EQ(a, b);
}

E2E_TEST(default_order_is_by_id)
{
	json_t *all = make_ordering_fixture(s);
	json_t *walked = walk_at(s, "", 7, (json_int_t)json_array_size(all), __FILE__, __LINE__);
	assert_same_ids_at(walked, all, "(default)", __FILE__, __LINE__);
	for (size_t i = 1; i < json_array_size(walked); i++)
		E2E_CHECK(E2E_INT(json_array_get(walked, i), "id") >
		              E2E_INT(json_array_get(walked, i - 1), "id"),
		          "default order is not by id at %zu", i);
}

E2E_TEST(order_applies_within_a_filter)
{
	json_t *all = make_ordering_fixture(s);
	json_t *domains = e2e_keep(json_array());
	size_t i;
	json_t *p;
	json_array_foreach(all, i, p) if (strcmp(E2E_STR(p, "pattern_type"), "DOMAIN") == 0)
	    json_array_append(domains, p);
	const char *q = "pattern_type=DOMAIN&order=pattern&direction=desc";
	json_t *walked = walk_at(s, q, 4, (json_int_t)json_array_size(domains), __FILE__, __LINE__);
	assert_same_ids_at(walked, domains, q, __FILE__, __LINE__);
	assert_ordered_at(walked, "pattern", true, 1, q, __FILE__, __LINE__);
}

/* ---- counts and cached encodings after writes ---------------------------- */

/* True when policy p satisfies every "name=value" filter of `query` (EMAIL, true, ...). */
static int satisfies(const json_t *p, const char *query)
{
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", query);
	for (char *kv = strtok_r(buf, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		json_t *v;
		*eq = '\0';
		v = json_object_get(p, kv);
		if (json_is_string(v) ? strcmp(json_string_value(v), eq + 1) != 0
		                      : json_is_true(v) != (strcmp(eq + 1, "true") == 0))
			return 0;
	}
	return 1;
}

/* For each filter, total_count equals a recount over every policy of the account. */
static void assert_totals_exact_at(e2e_server *s, const char *file, int line)
{
	static const char *const filters[] = {
	    "pattern_type=EMAIL",
	    "pattern_type=DOMAIN",
	    "pattern_type=IP",
	    "is_trusted_sender=true",
	    "is_trusted_sender=false",
	    "is_acceptable_sender=true&pattern_type=EMAIL",
	    "is_exempt_recipient=false&verify_sender=true",
	    "verify_sender=false",
	    "pattern_type=IP&is_trusted_sender=false&is_acceptable_sender=true",
	    "pattern_type=EMAIL&is_trusted_sender=true&is_acceptable_sender=false&is_exempt_recipient="
	    "false&verify_sender=true",
	};
	json_t *all = E2E_LIST_ALL(s), *p, *info;
	size_t i;

	for (size_t f = 0; f < sizeof(filters) / sizeof(filters[0]); f++) {
		char query[300];
		json_int_t expect = 0;
		json_array_foreach(all, i, p) expect += satisfies(p, filters[f]);
		snprintf(query, sizeof(query), "per_page=1&%s", filters[f]);
		list_ok(s, query, &info);
		if (json_integer_value(json_object_get(info, "total_count")) != expect)
			e2e_fail_at(file, line, "?%s: total_count %lld, recount %lld", filters[f],
			            (long long)json_integer_value(json_object_get(info, "total_count")),
			            (long long)expect);
	}
	list_ok(s, "per_page=1", &info);
	E2E_CHECK(json_integer_value(json_object_get(info, "total_count")) ==
	              (json_int_t)json_array_size(all),
	          "unfiltered total_count is not the number of policies");
}
#define ASSERT_TOTALS_EXACT(s) assert_totals_exact_at((s), __FILE__, __LINE__)

E2E_TEST(total_count_and_items_are_exact_after_mixed_writes)
{
	json_int_t *ids = make_fixture(s);
	json_t *info, *result, *p;
	char body[512];

	ASSERT_TOTALS_EXACT(s);
	for (int i = 0; i < 8; i++) /* every policy read once: any cache is warm */
		E2E_FETCH(s, ids[i]);

	/* an edit that flips flags */
	E2E_OK(e2e_send(s, "PATCH", "{\"is_trusted_sender\":false,\"is_acceptable_sender\":true}",
	                "%s/%lld", s->policies, (long long)ids[0]),
	       200);
	p = E2E_FETCH(s, ids[0]);
	E2E_CHECK(!E2E_BOOL(p, "is_trusted_sender") && E2E_BOOL(p, "is_acceptable_sender"),
	          "GET after an acknowledged edit shows the old flags");
	result = list_ok(s, "pattern=a@example.com", &info);
	E2E_CHECK(json_array_size(result) == 1 &&
	              E2E_BOOL(json_array_get(result, 0), "is_acceptable_sender"),
	          "the list after an acknowledged edit shows the old flags");
	ASSERT_TOTALS_EXACT(s);

	/* a delete */
	E2E_OK(e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)ids[5]), 200);
	E2E_ERR(e2e_get(s, "%s/%lld", s->policies, (long long)ids[5]), 404, 1002, NULL);
	ASSERT_TOTALS_EXACT(s);

	/* a single create: every page listed before it is out of date */
	{
		size_t before = json_array_size(E2E_LIST_ALL(s));
		E2E_CREATE(s, e2e_email_body("single@example.com"));
		E2E_CHECK(json_array_size(E2E_LIST_ALL(s)) == before + 1,
		          "the list after an acknowledged create misses it");
		result = list_ok(s, "per_page=1&pattern=single@example.com", &info);
		E2E_CHECK(json_array_size(result) == 1, "the exact-pattern list misses a new policy");
	}
	ASSERT_TOTALS_EXACT(s);

	/* a batch: delete, patch (flip verify_sender and comments), post */
	snprintf(body, sizeof(body),
	         "{\"deletes\":[{\"id\":%lld}],\"patches\":[{\"id\":%lld,\"verify_sender\":true,"
	         "\"comments\":\"patched in a batch\"}],\"puts\":[],\"posts\":[%s]}",
	         (long long)ids[6], (long long)ids[1], e2e_email_body("new@example.com"));
	E2E_BATCH(s, body);
	E2E_ERR(e2e_get(s, "%s/%lld", s->policies, (long long)ids[6]), 404, 1002, NULL);
	p = E2E_FETCH(s, ids[1]);
	E2E_CHECK(E2E_BOOL(p, "verify_sender") &&
	              strcmp(E2E_STR(p, "comments"), "patched in a batch") == 0,
	          "GET after an acknowledged batch patch shows the old policy");
	ASSERT_TOTALS_EXACT(s);

	/* a batch that fails on its last item changes nothing */
	snprintf(body, sizeof(body),
	         "{\"deletes\":[{\"id\":%lld}],\"patches\":[{\"id\":%lld,\"verify_sender\":false}],"
	         "\"puts\":[],\"posts\":[%s]}",
	         (long long)ids[3], (long long)ids[1], e2e_email_body("not an address"));
	E2E_ERR(e2e_send(s, "POST", body, "%s/batch", s->policies), 400, 1001, "/posts/0/pattern");
	E2E_FETCH(s, ids[3]);
	E2E_CHECK(E2E_BOOL(E2E_FETCH(s, ids[1]), "verify_sender"),
	          "a rolled-back batch patch is visible");
	ASSERT_TOTALS_EXACT(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE(empty_list_is_200_with_no_results),
	    E2E_CASE(pages_default_to_1_and_20),
	    E2E_CASE(per_page_bounds_are_inclusive),
	    E2E_CASE(page_past_the_end_is_200_and_empty),
	    E2E_CASE(out_of_range_page_parameters_are_400_naming_them),
	    E2E_CASE(invalid_filter_and_order_values_are_400_naming_them),
	    E2E_CASE(unknown_query_parameters_are_ignored),
	    E2E_CASE(filter_by_pattern_type),
	    E2E_CASE(filter_by_exact_pattern),
	    E2E_CASE(filter_by_trusted_sender_and_is_sender),
	    E2E_CASE(filter_by_acceptable_sender_and_is_spoof),
	    E2E_CASE(filter_by_exempt_recipient_and_is_recipient),
	    E2E_CASE(filter_by_verify_sender),
	    E2E_CASE(filters_combine_with_and),
	    E2E_CASE(search_is_case_insensitive_on_pattern_and_comments),
	    E2E_CASE(search_treats_wildcard_characters_literally),
	    E2E_CASE(order_by_pattern_asc_walks_every_page),
	    E2E_CASE(order_by_pattern_desc_walks_every_page),
	    E2E_CASE(order_by_created_at_asc_walks_every_page),
	    E2E_CASE(order_by_created_at_desc_walks_every_page),
	    E2E_CASE(direction_defaults_to_asc),
	    E2E_CASE(default_order_is_by_id),
	    E2E_CASE(order_applies_within_a_filter),
	    E2E_CASE(total_count_and_items_are_exact_after_mixed_writes),
	};
	return cmocka_run_group_tests_name("e2e_list", tests, NULL, NULL);
}

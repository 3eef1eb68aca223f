/*
 * test_cache.c - the store's encoded-policy cache (src/store/cache.h): hits
 * are copies, a fill whose ticket predates an invalidation is refused,
 * lists see an entry only at the row's version, accounts are separate
 * keys, and the byte budget evicts the least recently used entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cache.h"

#define ACC   "0123456789abcdef0123456789abcdef"
#define OTHER "fedcba9876543210fedcba9876543210"

static char *get(policy_cache *c, const char *acc, int64_t id)
{
	char *out = NULL;
	size_t len = 0;
	int rc = policy_cache_get(c, &out, &len, acc, id);

	assert_true(rc == 0 || rc == 1);
	if (rc == 1)
		assert_int_equal(len, strlen(out));
	return rc == 1 ? out : NULL;
}

static void a_fill_is_found_as_a_copy(void **state)
{
	policy_cache *c = NULL;
	char *v;

	(void)state;
	assert_int_equal(policy_cache_new(&c, 1 << 20), 0);
	assert_null(get(c, ACC, 1));
	policy_cache_put(c, policy_cache_ticket(c), ACC, 1, 10, "{\"id\":1}", 8);
	v = get(c, ACC, 1);
	assert_string_equal(v, "{\"id\":1}");
	free(v);
	assert_null(get(c, OTHER, 1)); /* the account is part of the key */
	policy_cache_free(c);
}

static void a_fill_that_began_before_an_invalidation_is_refused(void **state)
{
	policy_cache *c = NULL;
	uint64_t ticket;
	char *v;

	(void)state;
	assert_int_equal(policy_cache_new(&c, 1 << 20), 0);
	ticket = policy_cache_ticket(c);                   /* a reader starts reading version 10 */
	policy_cache_invalidate(c, ACC, 1);                /* a write commits version 11 */
	policy_cache_put(c, ticket, ACC, 1, 10, "old", 3); /* the reader's stale fill */
	assert_null(get(c, ACC, 1));

	policy_cache_put(c, policy_cache_ticket(c), ACC, 1, 11, "new", 3);
	v = get(c, ACC, 1);
	assert_string_equal(v, "new");
	free(v);

	/* a fill that lands before the invalidation is removed by it */
	ticket = policy_cache_ticket(c);
	policy_cache_put(c, ticket, ACC, 2, 5, "two", 3);
	policy_cache_invalidate(c, ACC, 2);
	assert_null(get(c, ACC, 2));

	policy_cache_invalidate_all(c);
	assert_null(get(c, ACC, 1));
	policy_cache_free(c);
}

static void a_list_uses_an_entry_only_at_its_version(void **state)
{
	policy_cache *c = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;

	(void)state;
	assert_int_equal(policy_cache_new(&c, 1 << 20), 0);
	policy_cache_put(c, policy_cache_ticket(c), ACC, 7, 100, "seven", 5);
	assert_int_equal(policy_cache_append(c, &buf, &len, &cap, ACC, 7, 99), 0);
	assert_int_equal(policy_cache_append(c, &buf, &len, &cap, ACC, 8, 100), 0);
	assert_int_equal(policy_cache_append(c, &buf, &len, &cap, ACC, 7, 100), 1);
	assert_int_equal(cache_buf_append(&buf, &len, &cap, ",", 1), 0);
	assert_int_equal(policy_cache_append(c, &buf, &len, &cap, ACC, 7, 100), 1);
	assert_string_equal(buf, "seven,seven");
	free(buf);
	policy_cache_free(c);
}

static void the_budget_evicts_the_least_recently_used(void **state)
{
	policy_cache *c = NULL;
	char body[200], *v;
	int kept = 0;

	(void)state;
	/* 64 shards of ~4 KiB: far fewer than 2000 entries of ~300 bytes fit */
	assert_int_equal(policy_cache_new(&c, 64 * 4096), 0);
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	for (int64_t id = 1; id <= 2000; id++) {
		policy_cache_put(c, policy_cache_ticket(c), ACC, id, id, body, strlen(body));
		if ((v = get(c, ACC, 1))) { /* keep id 1 the most recently used */
			kept++;
			free(v);
		}
	}
	assert_int_equal(kept, 2000); /* the entry used after every fill was never evicted */
	{
		int found = 0;
		for (int64_t id = 1; id <= 2000; id++)
			if ((v = get(c, ACC, id))) {
				found++;
				free(v);
			}
		/* at most 4096 / (200 bytes + entry header) per shard */
		assert_true(found <= 64 * (4096 / 200));
		assert_true(found >= 64);
	}
	/* an entry larger than a shard's budget is not kept at all */
	{
		size_t n = 64 * 1024;
		char *big = malloc(n);
		memset(big, 'y', n);
		policy_cache_put(c, policy_cache_ticket(c), ACC, 9999, 1, big, n);
		assert_null(get(c, ACC, 9999));
		free(big);
	}
	policy_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_fill_is_found_as_a_copy),
	    cmocka_unit_test(a_fill_that_began_before_an_invalidation_is_refused),
	    cmocka_unit_test(a_list_uses_an_entry_only_at_its_version),
	    cmocka_unit_test(the_budget_evicts_the_least_recently_used),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

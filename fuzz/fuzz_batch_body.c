/*
 * fuzz_batch_body.c - a batch body through api_policy_batch (decoding in
 * src/api/policies.c, then the store's batch transaction) against a real
 * SQLite store.
 *
 * Every input starts from the same state: an account holding the seeded
 * policies (fuzz_common.c), ids 1..N.  A batch that reaches the store and
 * succeeds changes it, so after a success the store is closed and the
 * baseline database file copied back: inputs stay independent and a
 * finding replays from its one file.
 *
 * Invariants:
 *  - the handler returns 0, or ALLOWD_EINVALID / ALLOWD_EDUPLICATE with a
 *    message and a pointer that is "" or starts with '/' (an item's error
 *    names it: "/posts/3/pattern"); never a 5xx code;
 *  - a failing batch changes nothing: every policy reads back exactly as
 *    in the baseline (all or nothing);
 *  - a successful batch answers one result per item, in order, the deletes
 *    with the ids asked for, patched and put policies with their ids and
 *    posted ones with fresh ids above every baseline id; the account then
 *    holds baseline - deletes + posts policies, each posted policy reads
 *    back as answered, and each deleted id is gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allowd/error.h"
#include "api/api.h"
#include "fuzz_common.h"

static allowd_store *store;
static allowd_policy_list baseline;
static int64_t max_baseline_id;
static char base_path[600], work_path[600];
static bool debug; /* ALLOWD_FUZZ_DEBUG set: print each outcome */

static void open_store(void)
{
	allowd_store_options o = {.path = work_path, .busy_timeout_ms = 0};

	if (allowd_store_open(&store, &o) != 0) {
		fprintf(stderr, "fuzz: store_open %s: %s\n", work_path,
			allowd_error_last()->message);
		abort();
	}
}

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;

	if (!in || !out) {
		fprintf(stderr, "fuzz: copy %s -> %s: %s\n", from, to, strerror(errno));
		abort();
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			abort();
	if (ferror(in) || fclose(out) != 0)
		abort();
	fclose(in);
}

/* Closes the store and puts the baseline database back. */
static void reset_store(void)
{
	char p[640];

	allowd_store_free(store);
	store = NULL;
	snprintf(p, sizeof(p), "%s-wal", work_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", work_path);
	unlink(p);
	copy_file(base_path, work_path);
	open_store();
}

static void list_all(allowd_policy_list *out)
{
	allowd_list_query q;
	int rc;

	allowd_list_query_init(&q);
	q.per_page = ALLOWD_PER_PAGE_MAX;
	rc = allowd_store_policy_list(store, out, fuzz_account_id, &q);
	FUZZ_CHECK(rc == 0, "list failed: %s", allowd_error_last()->message);
	FUZZ_CHECK((int64_t)out->count == out->total_count, "more than one page of policies");
}

static void free_store(void)
{
	allowd_policy_list_clear(&baseline);
	allowd_store_free(store);
	store = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	allowd_store_options o = {.path = base_path, .busy_timeout_ms = 0};

	(void)argc;
	(void)argv;
	debug = getenv("ALLOWD_FUZZ_DEBUG") != NULL;
	fuzz_path(base_path, sizeof(base_path), "base.db");
	fuzz_path(work_path, sizeof(work_path), "work.db");
	if (allowd_store_open(&store, &o) != 0)
		abort();
	fuzz_seed_policies(store);
	allowd_store_free(store); /* checkpoints: base.db is whole without its WAL */
	copy_file(base_path, work_path);
	open_store();
	list_all(&baseline);
	for (size_t i = 0; i < baseline.count; i++)
		if (baseline.items[i]->id > max_baseline_id)
			max_baseline_id = baseline.items[i]->id;
	atexit(free_store);
	return 0;
}

static const char *req_query(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;
}

static bool in_baseline(int64_t id)
{
	for (size_t i = 0; i < baseline.count; i++)
		if (baseline.items[i]->id == id)
			return true;
	return false;
}

static void check_unchanged(const char *why)
{
	allowd_policy_list now;

	list_all(&now);
	FUZZ_CHECK(now.total_count == baseline.total_count,
		   "%s: %lld policies, the baseline has %lld", why, (long long)now.total_count,
		   (long long)baseline.total_count);
	for (size_t i = 0; i < now.count; i++)
		FUZZ_CHECK(fuzz_policy_equal(now.items[i], baseline.items[i], true),
			   "%s: policy %lld changed (pattern '%s', was '%s')", why,
			   (long long)now.items[i]->id, now.items[i]->pattern,
			   baseline.items[i]->pattern);
	allowd_policy_list_clear(&now);
}

static void check_success(json_t *body, json_t *result)
{
	static const char *const names[] = {"deletes", "patches", "puts", "posts"};
	allowd_policy_list now;
	int64_t expect;

	FUZZ_CHECK(json_is_object(result), "batch result is not an object");
	for (int k = 0; k < 4; k++) {
		json_t *in = json_object_get(body, names[k]), *out = json_object_get(result, names[k]);
		size_t i;
		json_t *v;
		FUZZ_CHECK(json_is_array(in) && json_is_array(out) &&
				   json_array_size(in) == json_array_size(out),
			   "%s: %zu items in, %zu out", names[k], json_array_size(in),
			   json_array_size(out));
		json_array_foreach(out, i, v) {
			json_int_t id = json_integer_value(json_object_get(v, "id"));
			json_t *asked = json_object_get(json_array_get(in, i), "id");
			FUZZ_CHECK(id >= 1 && id <= ALLOWD_POLICY_ID_MAX, "%s/%zu: id %lld", names[k], i,
				   (long long)id);
			if (k < 3)
				FUZZ_CHECK(json_integer_value(asked) == id,
					   "%s/%zu: asked for id %lld, answered %lld", names[k], i,
					   (long long)json_integer_value(asked), (long long)id);
			if (k == 1 || k == 2)
				FUZZ_CHECK(in_baseline(id), "%s/%zu: id %lld was never stored",
					   names[k], i, (long long)id);
			if (k == 3)
				FUZZ_CHECK(id > max_baseline_id, "posts/%zu: id %lld reused", i,
					   (long long)id);
		}
	}

	list_all(&now);
	expect = baseline.total_count -
		 (int64_t)json_array_size(json_object_get(body, "deletes")) +
		 (int64_t)json_array_size(json_object_get(body, "posts"));
	FUZZ_CHECK(now.total_count == expect, "%lld policies after the batch, expected %lld",
		   (long long)now.total_count, (long long)expect);
	for (size_t i = 0; i < json_array_size(json_object_get(result, "deletes")); i++) {
		json_int_t id = json_integer_value(
			json_object_get(json_array_get(json_object_get(result, "deletes"), i), "id"));
		for (size_t j = 0; j < now.count; j++)
			FUZZ_CHECK(now.items[j]->id != id, "deleted id %lld is still listed",
				   (long long)id);
	}
	for (size_t i = 0; i < json_array_size(json_object_get(result, "posts")); i++) {
		json_t *posted = json_array_get(json_object_get(result, "posts"), i);
		json_int_t id = json_integer_value(json_object_get(posted, "id"));
		json_t *enc = NULL;
		for (size_t j = 0; j < now.count; j++)
			if (now.items[j]->id == id)
				enc = allowd_json_encode_policy(now.items[j]);
		FUZZ_CHECK(enc && json_equal(enc, posted), "posted id %lld does not read back as answered",
			   (long long)id);
		json_decref(enc);
	}
	allowd_policy_list_clear(&now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	allowd_api api;
	api_request req;
	api_response resp;
	json_t *body = NULL;
	char *text;
	bool parsed;
	int rc;

	if (size > 256 * 1024)
		return 0;
	text = fuzz_strndup(data, size);
	memset(&api, 0, sizeof(api));
	api.store = store;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.account_id = fuzz_account_id;
	req.body = text;
	req.body_len = size;
	req.content_type = "application/json";
	req.query = req_query;
	memset(&resp, 0, sizeof(resp));
	resp.status = 200;

	/* the handler parses the body first; what does not parse cannot have written */
	parsed = allowd_json_parse_body(&body, "application/json", text, size) == 0;
	allowd_error_clear();
	rc = api_policy_batch(&api, &req, &resp);
	if (debug)
		fprintf(stderr, "batch: rc %d %s %s\n", rc, rc ? allowd_error_last()->pointer : "",
			rc ? allowd_error_last()->message : "ok");
	if (rc != 0) {
		const allowd_error *e = allowd_error_last();
		FUZZ_CHECK(rc == ALLOWD_EINVALID || rc == ALLOWD_EDUPLICATE,
			   "batch failed with code %d: %s", rc, e->message);
		FUZZ_CHECK(e->code == rc && e->message[0], "error slot: code %d message '%s'",
			   e->code, e->message);
		FUZZ_CHECK(e->pointer[0] == '\0' || e->pointer[0] == '/', "pointer '%s'",
			   e->pointer);
		FUZZ_CHECK(resp.result == NULL, "a failed batch left a result");
		if (parsed)
			check_unchanged("after a failed batch");
	} else {
		FUZZ_CHECK(parsed, "a batch succeeded on a body that does not parse");
		check_success(body, resp.result);
		reset_store();
	}
	json_decref(body);
	json_decref(resp.result);
	json_decref(resp.result_info);
	free(text);
	return 0;
}

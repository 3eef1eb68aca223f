/*
 * policies.c - handlers of the allow-policy routes: create, list, get,
 * edit, delete and batch.  Each decodes and validates its input, calls the
 * store and encodes the result; status codes come from the error table.
 */
#include "api/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int encode_list(json_t **out, const allowd_policy_list *l)
{
	json_t *arr = json_array();

	if (!arr)
		goto oom;
	for (size_t i = 0; i < l->count; i++) {
		json_t *o = allowd_json_encode_policy(l->items[i]);
		if (!o || json_array_append_new(arr, o))
			goto oom;
	}
	*out = arr;
	return 0;
oom:
	json_decref(arr);
	return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
}

static int result_policy(api_response *resp, const allowd_policy *p)
{
	if (!(resp->result = allowd_json_encode_policy(p)))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	return 0;
}

int api_policy_create(allowd_api *api, const api_request *req, api_response *resp)
{
	allowd_policy_patch in;
	json_t *body = NULL;
	int rc;

	if ((rc = allowd_json_parse_body(&body, req->content_type, req->body, req->body_len)))
		return rc;
	rc = allowd_json_decode_policy(&in, body, DECODE_CREATE);
	json_decref(body);
	if (rc)
		return rc;
	if ((rc = allowd_store_policy_create(api->store, req->account_id, &in.v)) == 0) {
		resp->status = 201;
		rc = result_policy(resp, &in.v);
	}
	allowd_policy_clear(&in.v);
	return rc;
}

/*
 * A policy as jansson writes it (compact): what the store's encoded-policy
 * cache keeps, so that GET one and list pages of unchanged policies cost a
 * copy instead of an encoding.
 */
static char *policy_text(const allowd_policy *p, size_t *len)
{
	json_t *o = allowd_json_encode_policy(p);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (text)
		*len = strlen(text);
	return text;
}

int api_policy_get(allowd_api *api, const api_request *req, api_response *resp)
{
	char *text = NULL;
	size_t len;
	int64_t id;
	int rc;

	if ((rc = allowd_parse_policy_id(&id, req->policy_id)) ||
	    (rc = allowd_store_policy_get_encoded(api->store, &text, &len, req->account_id, id,
						  policy_text)))
		return rc;
	resp->body = allowd_api_render_success_raw(text, len, NULL);
	free(text);
	return resp->body ? 0 : allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
}

int api_policy_edit(allowd_api *api, const api_request *req, api_response *resp)
{
	allowd_policy_patch patch;
	allowd_policy *p = NULL;
	json_t *body = NULL;
	int64_t id;
	int rc;

	if ((rc = allowd_parse_policy_id(&id, req->policy_id)) ||
	    (rc = allowd_json_parse_body(&body, req->content_type, req->body, req->body_len)))
		return rc;
	rc = allowd_json_decode_policy(&patch, body, DECODE_PATCH);
	json_decref(body);
	if (rc)
		return rc;
	patch.id = id;
	if ((rc = allowd_store_policy_update(api->store, &p, req->account_id, &patch)) == 0)
		rc = result_policy(resp, p);
	allowd_policy_free(p);
	allowd_policy_clear(&patch.v);
	return rc;
}

int api_policy_delete(allowd_api *api, const api_request *req, api_response *resp)
{
	int64_t id;
	int rc;

	if ((rc = allowd_parse_policy_id(&id, req->policy_id)) ||
	    (rc = allowd_store_policy_delete(api->store, req->account_id, id)))
		return rc;
	resp->result = json_pack("{s:I}", "id", (json_int_t)id);
	return resp->result ? 0 : allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
}

/* ---- list ----------------------------------------------------------- */

static int query_int(int64_t *out, const api_request *req, const char *name, int64_t min,
		     int64_t max)
{
	const char *s = req->query(req->ctx, name);
	char ptr[64];
	char *end;
	long long v;

	if (!s)
		return 0;
	snprintf(ptr, sizeof(ptr), "/query/%s", name);
	errno = 0;
	v = (*s >= '0' && *s <= '9') ? strtoll(s, &end, 10) : 0;
	if (!(*s >= '0' && *s <= '9') || errno || *end || v < min || v > max)
		return allowd_error_set(ALLOWD_EINVALID, ptr,
					"%s must be an integer between %lld and %lld", name,
					(long long)min, (long long)max);
	*out = v;
	return 0;
}

/* Reads a boolean filter and its deprecated alias into *out (tristate). */
static int query_bool(int *out, const api_request *req, const char *name, const char *alias)
{
	const char *names[2] = {name, alias};
	char ptr[64];

	for (int i = 0; i < 2; i++) {
		const char *s = req->query(req->ctx, names[i]);
		int v;
		if (!s)
			continue;
		snprintf(ptr, sizeof(ptr), "/query/%s", names[i]);
		if (strcmp(s, "true") == 0)
			v = 1;
		else if (strcmp(s, "false") == 0)
			v = 0;
		else
			return allowd_error_set(ALLOWD_EINVALID, ptr, "%s must be true or false",
						names[i]);
		if (*out != ALLOWD_TRISTATE_ANY && *out != v)
			return allowd_error_set(ALLOWD_EINVALID, ptr,
						"%s and %s disagree; %s is a deprecated alias of %s",
						name, alias, alias, name);
		*out = v;
	}
	return 0;
}

static int parse_list_query(allowd_list_query *q, const api_request *req)
{
	const char *s;
	int rc;

	allowd_list_query_init(q);
	if ((rc = query_int(&q->page, req, "page", 1, INT32_MAX)) ||
	    (rc = query_int(&q->per_page, req, "per_page", 1, ALLOWD_PER_PAGE_MAX)) ||
	    (rc = query_bool(&q->is_trusted_sender, req, "is_trusted_sender", "is_sender")) ||
	    (rc = query_bool(&q->is_acceptable_sender, req, "is_acceptable_sender", "is_spoof")) ||
	    (rc = query_bool(&q->is_exempt_recipient, req, "is_exempt_recipient", "is_recipient")) ||
	    (rc = query_bool(&q->verify_sender, req, "verify_sender", NULL)))
		return rc;
	if ((s = req->query(req->ctx, "pattern_type"))) {
		q->pattern_type = allowd_pattern_type_parse(s);
		if (q->pattern_type < 0)
			return allowd_error_set(ALLOWD_EINVALID, "/query/pattern_type",
						"pattern_type must be one of EMAIL, DOMAIN, IP, "
						"UNKNOWN");
	}
	if ((s = req->query(req->ctx, "order"))) {
		if (strcmp(s, "pattern") == 0)
			q->order = ALLOWD_ORDER_PATTERN;
		else if (strcmp(s, "created_at") == 0)
			q->order = ALLOWD_ORDER_CREATED_AT;
		else
			return allowd_error_set(ALLOWD_EINVALID, "/query/order",
						"order must be pattern or created_at");
	}
	if ((s = req->query(req->ctx, "direction"))) {
		if (strcmp(s, "desc") == 0)
			q->descending = true;
		else if (strcmp(s, "asc") != 0)
			return allowd_error_set(ALLOWD_EINVALID, "/query/direction",
						"direction must be asc or desc");
	}
	q->pattern = req->query(req->ctx, "pattern");
	if ((s = req->query(req->ctx, "search")) && *s)
		q->search = s;
	if ((q->pattern && strlen(q->pattern) > 4 * ALLOWD_PATTERN_MAX) ||
	    (q->search && strlen(q->search) > 4 * ALLOWD_PATTERN_MAX))
		return allowd_error_set(ALLOWD_EINVALID, q->search ? "/query/search" : "/query/pattern",
					"the filter is longer than %d bytes", 4 * ALLOWD_PATTERN_MAX);
	return 0;
}

int api_policy_list(allowd_api *api, const api_request *req, api_response *resp)
{
	allowd_list_query q;
	json_t *info = NULL;
	char *items = NULL;
	int64_t count, total;
	size_t len;
	int rc;

	if ((rc = parse_list_query(&q, req)) ||
	    (rc = allowd_store_policy_list_encoded(api->store, &items, &len, &count, &total,
						   req->account_id, &q, policy_text)))
		return rc;
	info = json_pack("{s:I, s:I, s:I, s:I}", "page", (json_int_t)q.page, "per_page",
			 (json_int_t)q.per_page, "count", (json_int_t)count, "total_count",
			 (json_int_t)total);
	if (!info || !(resp->body = allowd_api_render_success_raw(items, len, info)))
		rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	json_decref(info);
	free(items);
	return rc;
}

/* ---- batch ---------------------------------------------------------- */

typedef struct batch_input {
	int64_t *deletes;
	allowd_policy_patch *patches, *puts;
	allowd_policy **posts;
	size_t n_deletes, n_patches, n_puts, n_posts;
} batch_input;

static void batch_input_clear(batch_input *in)
{
	free(in->deletes);
	for (size_t i = 0; i < in->n_patches; i++)
		allowd_policy_clear(&in->patches[i].v);
	for (size_t i = 0; i < in->n_puts; i++)
		allowd_policy_clear(&in->puts[i].v);
	for (size_t i = 0; i < in->n_posts; i++)
		allowd_policy_free(in->posts[i]);
	free(in->patches);
	free(in->puts);
	free(in->posts);
}

static int batch_array(json_t **out, const json_t *body, const char *name)
{
	char ptr[32];
	json_t *a = json_object_get(body, name);

	snprintf(ptr, sizeof(ptr), "/%s", name);
	if (!a)
		return allowd_error_set(ALLOWD_EINVALID, ptr,
					"%s is required (send an empty array when unused)", name);
	if (!json_is_array(a))
		return allowd_error_set(ALLOWD_EINVALID, ptr, "%s must be an array", name);
	if (json_array_size(a) > ALLOWD_BATCH_MAX)
		return allowd_error_set(ALLOWD_EINVALID, ptr, "%s has %zu items; the limit is %d",
					name, json_array_size(a), ALLOWD_BATCH_MAX);
	*out = a;
	return 0;
}

static int decode_batch(batch_input *in, json_t *body)
{
	static const char *const names[] = {"deletes", "patches", "puts", "posts"};
	json_t *arr[4], *v;
	const char *key;
	char where[48];
	size_t i;
	int rc;

	json_object_foreach(body, key, v) {
		int known = 0;
		for (i = 0; i < 4; i++)
			known |= strcmp(key, names[i]) == 0;
		if (!known)
			return allowd_error_set(ALLOWD_EINVALID, NULL,
						"unknown field '%.100s' in a batch", key);
	}
	for (i = 0; i < 4; i++)
		if ((rc = batch_array(&arr[i], body, names[i])))
			return rc;

	if ((json_array_size(arr[0]) &&
	     !(in->deletes = calloc(json_array_size(arr[0]), sizeof(*in->deletes)))) ||
	    (json_array_size(arr[1]) &&
	     !(in->patches = calloc(json_array_size(arr[1]), sizeof(*in->patches)))) ||
	    (json_array_size(arr[2]) &&
	     !(in->puts = calloc(json_array_size(arr[2]), sizeof(*in->puts)))) ||
	    (json_array_size(arr[3]) &&
	     !(in->posts = calloc(json_array_size(arr[3]), sizeof(*in->posts)))))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");

	json_array_foreach(arr[0], i, v) {
		json_t *id = json_object_get(v, "id"), *x;
		const char *k;
		snprintf(where, sizeof(where), "/deletes/%zu", i);
		if (!json_is_object(v)) {
			rc = allowd_error_set(ALLOWD_EINVALID, "",
					      "a delete must be an object {\"id\": N}");
			goto item_failed;
		}
		json_object_foreach(v, k, x) {
			if (strcmp(k, "id") != 0) {
				char ptr[128];
				snprintf(ptr, sizeof(ptr), "/%.100s", k);
				rc = allowd_error_set(ALLOWD_EINVALID, ptr,
						      "unknown field '%.100s' in a delete", k);
				goto item_failed;
			}
		}
		if (!id) {
			rc = allowd_error_set(ALLOWD_EINVALID, "/id", "id is required");
			goto item_failed;
		}
		if (!json_is_integer(id) || json_integer_value(id) < 1 ||
		    json_integer_value(id) > ALLOWD_POLICY_ID_MAX) {
			rc = allowd_error_set(ALLOWD_EINVALID, "/id",
					      "id must be an integer between 1 and %d",
					      ALLOWD_POLICY_ID_MAX);
			goto item_failed;
		}
		in->deletes[in->n_deletes++] = json_integer_value(id);
	}
	json_array_foreach(arr[1], i, v) {
		snprintf(where, sizeof(where), "/patches/%zu", i);
		if ((rc = allowd_json_decode_policy(&in->patches[i], v, DECODE_BATCH_PATCH)))
			goto item_failed;
		in->n_patches++;
	}
	json_array_foreach(arr[2], i, v) {
		snprintf(where, sizeof(where), "/puts/%zu", i);
		if ((rc = allowd_json_decode_policy(&in->puts[i], v, DECODE_PUT)))
			goto item_failed;
		in->puts[i].fields |= ALLOWD_FIELD_COMMENTS; /* absent comments = null */
		in->n_puts++;
	}
	json_array_foreach(arr[3], i, v) {
		allowd_policy_patch p;
		snprintf(where, sizeof(where), "/posts/%zu", i);
		if ((rc = allowd_json_decode_policy(&p, v, DECODE_CREATE)))
			goto item_failed;
		if ((rc = allowd_policy_dup(&in->posts[i], &p.v))) {
			allowd_policy_clear(&p.v);
			return rc;
		}
		allowd_policy_clear(&p.v);
		in->n_posts++;
	}
	return 0;
item_failed:
	allowd_error_prefix_pointer(where);
	return rc;
}

int api_policy_batch(allowd_api *api, const api_request *req, api_response *resp)
{
	batch_input in;
	allowd_batch b;
	allowd_batch_result r;
	json_t *body = NULL, *deleted = NULL, *patched = NULL, *put = NULL, *posted = NULL;
	int rc;

	memset(&in, 0, sizeof(in));
	memset(&r, 0, sizeof(r));
	if ((rc = allowd_json_parse_body(&body, req->content_type, req->body, req->body_len)))
		return rc;
	if ((rc = decode_batch(&in, body)))
		goto out;
	b = (allowd_batch){
		.deletes = in.deletes,
		.n_deletes = in.n_deletes,
		.patches = in.patches,
		.n_patches = in.n_patches,
		.puts = in.puts,
		.n_puts = in.n_puts,
		.posts = in.posts,
		.n_posts = in.n_posts,
	};
	if ((rc = allowd_store_batch(api->store, &r, req->account_id, &b))) {
		/* an item naming a missing policy makes the batch invalid, not the route absent */
		if (rc == ALLOWD_ENOTFOUND) {
			allowd_error e = *allowd_error_last();
			e.code = rc = ALLOWD_EINVALID;
			e.cf_code = allowd_error_cf_code(ALLOWD_ENOTFOUND);
			allowd_error_restore(&e);
		}
		goto out;
	}
	if (!(deleted = json_array())) {
		rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < in.n_deletes; i++)
		json_array_append_new(deleted, json_pack("{s:I}", "id", (json_int_t)r.deleted[i]));
	if ((rc = encode_list(&patched, &r.patched)) || (rc = encode_list(&put, &r.put)) ||
	    (rc = encode_list(&posted, &r.posted)))
		goto out;
	resp->result = json_pack("{s:o, s:o, s:o, s:o}", "deletes", deleted, "patches", patched,
				 "puts", put, "posts", posted);
	deleted = patched = put = posted = NULL; /* "o" steals even on failure */
	if (!resp->result)
		rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
out:
	json_decref(deleted);
	json_decref(patched);
	json_decref(put);
	json_decref(posted);
	allowd_batch_result_clear(&r);
	batch_input_clear(&in);
	json_decref(body);
	return rc;
}

int api_health(allowd_api *api, const api_request *req, api_response *resp)
{
	(void)api;
	(void)req;
	resp->result = json_pack("{s:s}", "status", "ok");
	return resp->result ? 0 : allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
}

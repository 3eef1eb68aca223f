/*
 * policies.c - handlers of the allow-policy routes: create, list, get,
 * edit, delete and batch.  Each decodes and validates its input, calls the
 * store and encodes the result; status codes come from the error table.
 * The writes are split into start / finish (api.h) so that the HTTP layer
 * need not hold a thread while a write waits for its commit.
 */
#include "api/api.h"

#include <errno.h>
#include <pthread.h>
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

/* ---- writes --------------------------------------------------------- */

typedef enum write_kind { W_CREATE, W_EDIT, W_DELETE, W_BATCH } write_kind;

/*
 * A write in flight (see api.h): the decoded request, which the store
 * borrows until it calls stored(), and what the store hands back.  rc, err,
 * edited and r are written on the writer thread before `done` is called,
 * and read after it by the thread that finishes.
 */
struct api_write {
	write_kind kind;
	char *account_id;       /* owned copy: the route's buffer does not outlive start */
	int64_t id;             /* edit, delete */
	allowd_policy_patch in; /* create: the policy (in.v); edit: the patch */
	int has_in;
	allowd_policy *edited;  /* edit: the stored result */
	batch_input batch;
	allowd_batch b;
	allowd_batch_result r;
	void (*done)(void *ctx);
	void *ctx;
	int rc; /* the store's verdict */
	allowd_error err;
};

/* An item naming a missing policy makes the batch invalid, not the route absent. */
static int batch_error(int rc)
{
	if (rc == ALLOWD_ENOTFOUND) {
		allowd_error e = *allowd_error_last();
		e.code = rc = ALLOWD_EINVALID;
		e.cf_code = allowd_error_cf_code(ALLOWD_ENOTFOUND);
		allowd_error_restore(&e);
	}
	return rc;
}

void api_write_free(api_write *w)
{
	if (!w)
		return;
	free(w->account_id);
	if (w->has_in)
		allowd_policy_clear(&w->in.v);
	allowd_policy_free(w->edited);
	batch_input_clear(&w->batch);
	allowd_batch_result_clear(&w->r);
	free(w);
}

static int write_new(api_write **out, write_kind kind, const api_request *req,
		     void (*done)(void *ctx), void *ctx)
{
	api_write *w = calloc(1, sizeof(*w));

	if (!w || !(w->account_id = strdup(req->account_id ? req->account_id : ""))) {
		free(w);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	w->kind = kind;
	w->done = done;
	w->ctx = ctx;
	*out = w;
	return 0;
}

/* The store's completion (writer thread): keep the verdict, then tell the owner. */
static void stored(void *ctx, int rc, const allowd_error *err)
{
	api_write *w = ctx;

	w->rc = rc;
	if (rc)
		w->err = *err;
	w->done(w->ctx);
}

/* Hands w (decoded) to the store: 0 and *out = w, or the refusal (w freed). */
static int write_submit(api_write **out, allowd_api *api, api_write *w)
{
	int rc = ALLOWD_ERR;

	switch (w->kind) {
	case W_CREATE:
		rc = allowd_store_policy_create_async(api->store, w->account_id, &w->in.v, stored, w);
		break;
	case W_EDIT:
		rc = allowd_store_policy_update_async(api->store, &w->edited, w->account_id, &w->in,
						      stored, w);
		break;
	case W_DELETE:
		rc = allowd_store_policy_delete_async(api->store, w->account_id, w->id, stored, w);
		break;
	case W_BATCH:
		rc = allowd_store_batch_async(api->store, &w->r, w->account_id, &w->b, stored, w);
		if (rc)
			rc = batch_error(rc);
		break;
	}
	if (rc) {
		api_write_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/*
 * A create or an edit: the body decoded in `mode` into a new write of
 * `kind` (for an edit, of policy `id`), then submitted.
 */
static int write_start_with_body(api_write **out, allowd_api *api, const api_request *req,
				 write_kind kind, policy_decode_mode mode, int64_t id,
				 void (*done)(void *ctx), void *ctx)
{
	api_write *w = NULL;
	json_t *body = NULL;
	int rc;

	if ((rc = allowd_json_parse_body(&body, req->content_type, req->body, req->body_len)))
		return rc;
	if ((rc = write_new(&w, kind, req, done, ctx)) ||
	    (rc = allowd_json_decode_policy(&w->in, body, mode))) {
		json_decref(body);
		api_write_free(w);
		return rc;
	}
	json_decref(body);
	w->has_in = 1;
	if (kind == W_EDIT)
		w->in.id = w->id = id;
	return write_submit(out, api, w);
}

int api_policy_create_start(api_write **out, allowd_api *api, const api_request *req,
			    void (*done)(void *ctx), void *ctx)
{
	*out = NULL;
	return write_start_with_body(out, api, req, W_CREATE, DECODE_CREATE, 0, done, ctx);
}

int api_policy_edit_start(api_write **out, allowd_api *api, const api_request *req,
			  void (*done)(void *ctx), void *ctx)
{
	int64_t id;
	int rc;

	*out = NULL;
	if ((rc = allowd_parse_policy_id(&id, req->policy_id)))
		return rc;
	return write_start_with_body(out, api, req, W_EDIT, DECODE_PATCH, id, done, ctx);
}

int api_policy_delete_start(api_write **out, allowd_api *api, const api_request *req,
			    void (*done)(void *ctx), void *ctx)
{
	api_write *w = NULL;
	int64_t id;
	int rc;

	*out = NULL;
	if ((rc = allowd_parse_policy_id(&id, req->policy_id)) ||
	    (rc = write_new(&w, W_DELETE, req, done, ctx)))
		return rc;
	w->id = id;
	return write_submit(out, api, w);
}

int api_policy_batch_start(api_write **out, allowd_api *api, const api_request *req,
			   void (*done)(void *ctx), void *ctx)
{
	api_write *w = NULL;
	json_t *body = NULL;
	batch_input *in;
	int rc;

	*out = NULL;
	if ((rc = allowd_json_parse_body(&body, req->content_type, req->body, req->body_len)))
		return rc;
	if ((rc = write_new(&w, W_BATCH, req, done, ctx)) ||
	    (rc = decode_batch(&w->batch, body))) {
		json_decref(body);
		api_write_free(w);
		return rc;
	}
	json_decref(body);
	in = &w->batch;
	w->b = (allowd_batch){
		.deletes = in->deletes,
		.n_deletes = in->n_deletes,
		.patches = in->patches,
		.n_patches = in->n_patches,
		.puts = in->puts,
		.n_puts = in->n_puts,
		.posts = in->posts,
		.n_posts = in->n_posts,
	};
	return write_submit(out, api, w);
}

static int encode_batch(api_response *resp, const api_write *w)
{
	json_t *deleted = NULL, *patched = NULL, *put = NULL, *posted = NULL;
	int rc;

	if (!(deleted = json_array())) {
		rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < w->batch.n_deletes; i++)
		json_array_append_new(deleted, json_pack("{s:I}", "id", (json_int_t)w->r.deleted[i]));
	if ((rc = encode_list(&patched, &w->r.patched)) || (rc = encode_list(&put, &w->r.put)) ||
	    (rc = encode_list(&posted, &w->r.posted)))
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
	return rc;
}

int api_write_finish(api_write *w, api_response *resp)
{
	if (w->rc) {
		allowd_error_restore(&w->err);
		return w->kind == W_BATCH ? batch_error(w->rc) : w->rc;
	}
	switch (w->kind) {
	case W_CREATE:
		resp->status = 201;
		return result_policy(resp, &w->in.v);
	case W_EDIT:
		return result_policy(resp, w->edited);
	case W_DELETE:
		resp->result = json_pack("{s:I}", "id", (json_int_t)w->id);
		return resp->result ? 0 : allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	case W_BATCH:
		return encode_batch(resp, w);
	}
	return allowd_error_set(ALLOWD_ERR, NULL, "unknown write");
}

/*
 * The synchronous handlers: start, wait for the store, finish.  The writer
 * signals under the lock and touches nothing of ours afterwards.
 */
typedef struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int over;
} sync_wait;

static void sync_done(void *ctx)
{
	sync_wait *sw = ctx;

	pthread_mutex_lock(&sw->lock);
	sw->over = 1;
	pthread_cond_signal(&sw->cond);
	pthread_mutex_unlock(&sw->lock);
}

static int run_write(api_write_start start, allowd_api *api, const api_request *req,
		     api_response *resp)
{
	sync_wait sw = {.over = 0};
	api_write *w = NULL;
	int rc;

	pthread_mutex_init(&sw.lock, NULL);
	pthread_cond_init(&sw.cond, NULL);
	if ((rc = start(&w, api, req, sync_done, &sw)) == 0) {
		pthread_mutex_lock(&sw.lock);
		while (!sw.over)
			pthread_cond_wait(&sw.cond, &sw.lock);
		pthread_mutex_unlock(&sw.lock);
		rc = api_write_finish(w, resp);
		api_write_free(w);
	}
	pthread_mutex_destroy(&sw.lock);
	pthread_cond_destroy(&sw.cond);
	return rc;
}

int api_policy_create(allowd_api *api, const api_request *req, api_response *resp)
{
	return run_write(api_policy_create_start, api, req, resp);
}

int api_policy_edit(allowd_api *api, const api_request *req, api_response *resp)
{
	return run_write(api_policy_edit_start, api, req, resp);
}

int api_policy_delete(allowd_api *api, const api_request *req, api_response *resp)
{
	return run_write(api_policy_delete_start, api, req, resp);
}

int api_policy_batch(allowd_api *api, const api_request *req, api_response *resp)
{
	return run_write(api_policy_batch_start, api, req, resp);
}

int api_health(allowd_api *api, const api_request *req, api_response *resp)
{
	(void)api;
	(void)req;
	resp->result = json_pack("{s:s}", "status", "ok");
	return resp->result ? 0 : allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
}

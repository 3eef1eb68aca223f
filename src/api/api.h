/*
 * api.h - the API handlers: decode and validate a request, call the store,
 * encode the result.  Transport-free: the http module routes a request to a
 * handler, supplies the body and query accessors, and renders the reply
 * (success or the thread's last error) into Cloudflare's envelope with
 * allowd_api_render_*.
 */
#ifndef ALLOWD_API_H
#define ALLOWD_API_H

#include <jansson.h>
#include <stddef.h>

#include "allowd/auth.h"
#include "allowd/error.h"
#include "allowd/store.h"

#define ALLOWD_BATCH_MAX 1000
#define ALLOWD_PER_PAGE_MAX 1000

typedef struct allowd_api {
	allowd_store *store;
	allowd_auth *auth;
	struct allowd_ratelimit *requests;      /* per credential; may be NULL */
	struct allowd_ratelimit *auth_failures; /* per client IP; may be NULL */
	struct allowd_engine *engine;
	int64_t evaluate_budget_ms; /* regex work per evaluate request; 0 = unlimited */
} allowd_api;

typedef struct api_request {
	const char *method;
	const char *account_id; /* path parameters; NULL when the route has none */
	const char *policy_id;
	const char *body;       /* NUL-terminated; body_len excludes the NUL */
	size_t body_len;
	const char *content_type;
	/* value of a query parameter or NULL when absent */
	const char *(*query)(void *ctx, const char *name);
	void *ctx;
	const allowd_principal *principal; /* NULL on routes without credentials */
} api_request;

typedef struct api_response {
	int status;          /* 200 unless the handler says otherwise */
	json_t *result;      /* owned; NULL encodes null */
	json_t *result_info; /* owned; NULL omits it */
	char *body;          /* owned: a whole envelope already rendered by
				allowd_api_render_success (a cached policy); when
				set, result and result_info are unused */
} api_response;

/* A handler returns 0 and fills `resp`, or an allowd error code (error slot set). */
typedef int (*api_handler)(allowd_api *api, const api_request *req, api_response *resp);

int api_policy_create(allowd_api *api, const api_request *req, api_response *resp);
int api_policy_list(allowd_api *api, const api_request *req, api_response *resp);
int api_policy_get(allowd_api *api, const api_request *req, api_response *resp);
int api_policy_edit(allowd_api *api, const api_request *req, api_response *resp);
int api_policy_delete(allowd_api *api, const api_request *req, api_response *resp);
int api_policy_batch(allowd_api *api, const api_request *req, api_response *resp);
int api_health(allowd_api *api, const api_request *req, api_response *resp);

/*
 * The policy writes (create, edit, delete, batch) also come in steps, so
 * that the HTTP layer can let a write wait for its group commit without
 * holding its thread (src/http/server.c):
 *
 *  1. start, on the request's thread: decodes and validates the request
 *     (the store's pattern checks included) and hands the write to the
 *     store.  0: *out is the write in flight, and done(ctx) is called
 *     exactly once, on the store's writer thread, when the write is durable
 *     and applied to the engine, or has failed; `done` must be quick.  An
 *     error code (error slot set): nothing was queued, *out is NULL and
 *     done is never called.  `req` is borrowed for the call only.
 *  2. api_write_finish, after done, on the thread that answers: 0 with
 *     resp filled, or the write's error (the store's message and pointer)
 *     restored into this thread's error slot -- what the synchronous
 *     handler would have returned.
 *  3. api_write_free (NULL is fine).
 *
 * The handlers api_policy_create ... api_policy_batch above are the three
 * steps with a wait.
 */
typedef struct api_write api_write;
typedef int (*api_write_start)(api_write **out, allowd_api *api, const api_request *req,
			       void (*done)(void *ctx), void *ctx);

int api_policy_create_start(api_write **out, allowd_api *api, const api_request *req,
			    void (*done)(void *ctx), void *ctx);
int api_policy_edit_start(api_write **out, allowd_api *api, const api_request *req,
			  void (*done)(void *ctx), void *ctx);
int api_policy_delete_start(api_write **out, allowd_api *api, const api_request *req,
			    void (*done)(void *ctx), void *ctx);
int api_policy_batch_start(api_write **out, allowd_api *api, const api_request *req,
			   void (*done)(void *ctx), void *ctx);
int api_write_finish(api_write *w, api_response *resp);
void api_write_free(api_write *w);
int api_token_verify(allowd_api *api, const api_request *req, api_response *resp);
int api_evaluate(allowd_api *api, const api_request *req, api_response *resp);

/*
 * Loads every account's policies into the engine and subscribes it to the
 * store's changes (src/api/engine_sync.c).  Call once, before serving.
 */
int allowd_api_engine_attach(allowd_api *api);

/*
 * Renders the envelope; the returned string is malloc'ed (NULL on OOM).
 * When resp->body is set, returns it and clears resp->body (ownership
 * passes to the caller).
 */
char *allowd_api_render_success(api_response *resp);

/*
 * The same envelope around a result that is already JSON text (len bytes,
 * as json_dumps(result, JSON_COMPACT) writes it): byte for byte what
 * allowd_api_render_success() makes of that result and result_info (NULL
 * omits it).  Malloc'ed; NULL on OOM.
 */
char *allowd_api_render_success_raw(const char *result, size_t len, const json_t *result_info);
char *allowd_api_render_error(const allowd_error *e);

/* ---- JSON codec for message facts and decisions (evaluate.c) -------- */

#include "allowd/engine.h"

#define ALLOWD_EVAL_BATCH_MAX 1000
#define ALLOWD_EVAL_LIST_MAX 100     /* reply_to, recipients, A-R headers, authserv-ids */
#define ALLOWD_EVAL_VALUE_MAX 1024   /* bytes of one address, name or header value */

/* A decoded message: the facts plus the JSON document that owns their strings. */
typedef struct api_message {
	allowd_message m;
	const char *reply_to[ALLOWD_EVAL_LIST_MAX];
	const char *recipients[ALLOWD_EVAL_LIST_MAX];
	json_t *owner;
} api_message;

/*
 * Decodes one message object (strict: unknown fields, wrong types, bounds,
 * bad IPs and dispositions are 400 naming the field).  `obj` is borrowed
 * and must outlive out; release with api_message_clear.
 */
int allowd_json_decode_message(api_message *out, json_t *obj);
void api_message_clear(api_message *m);

/* Encodes a decision as the evaluate endpoint returns it (new reference). */
json_t *allowd_json_encode_decision(const allowd_decision *d);

/* ---- JSON codec for policies (policy_json.c) ------------------------ */

typedef enum policy_decode_mode {
	DECODE_CREATE,      /* seven fields required; read-only fields rejected */
	DECODE_PATCH,       /* any subset; read-only fields rejected */
	DECODE_BATCH_PATCH, /* as PATCH, plus a required id */
	DECODE_PUT,         /* as CREATE, plus a required id; timestamps ignored */
} policy_decode_mode;

/*
 * Decodes a policy object into `out` (its strings owned by out->v; release
 * with allowd_policy_clear(&out->v)).  Errors carry a pointer relative to
 * the object ("/pattern").
 */
int allowd_json_decode_policy(allowd_policy_patch *out, json_t *obj, policy_decode_mode mode);

/* Encodes a stored policy as Cloudflare returns it (new reference, NULL on OOM). */
json_t *allowd_json_encode_policy(const allowd_policy *p);

/* Parses a policy id (JSON integer or decimal text): 1..INT32_MAX. */
int allowd_parse_policy_id(int64_t *out, const char *s);

/*
 * Parses a request body: Content-Type must be application/json, the body a
 * single JSON object with no duplicate keys.
 */
int allowd_json_parse_body(json_t **out, const char *content_type, const char *body, size_t len);

#endif

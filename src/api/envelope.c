/*
 * envelope.c - Cloudflare's response envelope:
 * {"success","errors","messages","result"[,"result_info"]}.
 */
#include "api/api.h"
#include "allowd/auth.h"

#include <stdlib.h>
#include <string.h>

/*
 * What json_dumps(JSON_COMPACT) writes around "result" for the envelope of
 * allowd_api_render_success() (jansson keeps insertion order);
 * tests/unit/api/test_envelope.c proves the two renderings equal.
 */
#define SUCCESS_HEAD "{\"success\":true,\"errors\":[],\"messages\":[],\"result\":"
#define RESULT_INFO_KEY ",\"result_info\":"

static char *dump(json_t *root)
{
	char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return s;
}

char *allowd_api_render_success(api_response *resp)
{
	json_t *root;

	if (resp->body) {
		char *body = resp->body;
		resp->body = NULL;
		return body;
	}
	if (!(root = json_object()))
		return NULL;
	json_object_set_new(root, "success", json_true());
	json_object_set_new(root, "errors", json_array());
	json_object_set_new(root, "messages", json_array());
	json_object_set(root, "result", resp->result ? resp->result : json_null());
	if (resp->result_info)
		json_object_set(root, "result_info", resp->result_info);
	return dump(root);
}

char *allowd_api_render_success_raw(const char *result, size_t len, const json_t *result_info)
{
	char *info = result_info ? json_dumps(result_info, JSON_COMPACT) : NULL;
	size_t head = sizeof(SUCCESS_HEAD) - 1, key = sizeof(RESULT_INFO_KEY) - 1;
	size_t info_len = info ? strlen(info) : 0, total;
	char *out, *o;

	if (result_info && !info)
		return NULL;
	total = head + len + (info ? key + info_len : 0) + 2;
	if (total < len || !(out = malloc(total))) {
		free(info);
		return NULL;
	}
	o = out;
	memcpy(o, SUCCESS_HEAD, head);
	o += head;
	memcpy(o, result, len);
	o += len;
	if (info) {
		memcpy(o, RESULT_INFO_KEY, key);
		o += key;
		memcpy(o, info, info_len);
		o += info_len;
	}
	*o++ = '}';
	*o = '\0';
	free(info);
	return out;
}

char *allowd_api_render_error(const allowd_error *e)
{
	json_t *root = json_object(), *err = json_object(), *errors = json_array();
	int cf = e->cf_code ? e->cf_code : allowd_error_cf_code(e->code);
	const char *msg = e->message[0] ? e->message : allowd_error_default_message(e->code);

	if (!root || !err || !errors) {
		json_decref(root);
		json_decref(err);
		json_decref(errors);
		return NULL;
	}
	json_object_set_new(err, "code", json_integer(cf));
	{
		/* a message quoting invalid input may not be UTF-8: fall back */
		json_t *m = json_string(msg);
		if (!m)
			m = json_string(allowd_error_default_message(e->code));
		json_object_set_new(err, "message", m);
	}
	if (e->pointer[0])
		json_object_set_new(err, "source", json_pack("{s:s}", "pointer", e->pointer));
	if (e->n_chain) {
		json_t *chain = json_array();
		for (int i = 0; i < e->n_chain; i++)
			json_array_append_new(chain,
					      json_pack("{s:i, s:s}", "code", e->chain[i], "message",
							allowd_auth_chain_message(e->chain[i])));
		json_object_set_new(err, "error_chain", chain);
	}
	json_array_append_new(errors, err);
	json_object_set_new(root, "success", json_false());
	json_object_set_new(root, "errors", errors);
	json_object_set_new(root, "messages", json_array());
	json_object_set_new(root, "result", json_null());
	return dump(root);
}

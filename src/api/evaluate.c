/*
 * evaluate.c - POST /allowd/v1/accounts/{account_id}/evaluate (an allowd
 * extension): decodes message facts strictly, evaluates them against the
 * account's current policies, and encodes the decision.
 */
#include "api/api.h"
#include "allowd/netaddr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const message_fields[] = {
	"envelope_from", "header_from",		 "reply_to",	       "recipients",
	"client_ip",	 "server_name",		 "authentication_results", "trusted_authserv_ids",
	"auth",		 "dispositions",
};

static int bad(const char *ptr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(const char *ptr, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	allowd_error_setv(ALLOWD_EINVALID, ptr, fmt, ap);
	va_end(ap);
	return ALLOWD_EINVALID;
}

/* A string field: absent/null -> NULL; a string within the bound -> it. */
static int opt_string(const char **out, json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);
	char ptr[64];

	*out = NULL;
	snprintf(ptr, sizeof(ptr), "/%s", name);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return bad(ptr, "%s must be a string", name);
	if (json_string_length(v) > ALLOWD_EVAL_VALUE_MAX)
		return allowd_error_set(ALLOWD_EINVALID, ptr, "%s is longer than %d bytes", name,
					ALLOWD_EVAL_VALUE_MAX);
	if (memchr(json_string_value(v), '\0', json_string_length(v)))
		return bad(ptr, "%s contains a NUL character", name);
	*out = json_string_value(v);
	return 0;
}

/* An array of strings into out[] (at most ALLOWD_EVAL_LIST_MAX). */
static int string_list(const char **out, size_t *n, json_t *obj, const char *name)
{
	json_t *a = json_object_get(obj, name), *v;
	char ptr[80];
	size_t i;

	*n = 0;
	snprintf(ptr, sizeof(ptr), "/%s", name);
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return bad(ptr, "%s must be an array of strings", name);
	if (json_array_size(a) > ALLOWD_EVAL_LIST_MAX)
		return allowd_error_set(ALLOWD_EINVALID, ptr, "%s has more than %d items", name,
					ALLOWD_EVAL_LIST_MAX);
	json_array_foreach(a, i, v) {
		snprintf(ptr, sizeof(ptr), "/%s/%zu", name, i);
		if (!json_is_string(v))
			return bad(ptr, "items of %s must be strings", name);
		if (json_string_length(v) > ALLOWD_EVAL_VALUE_MAX ||
		    memchr(json_string_value(v), '\0', json_string_length(v)))
			return allowd_error_set(ALLOWD_EINVALID, ptr,
						"an item of %s is longer than %d bytes or has a NUL",
						name, ALLOWD_EVAL_VALUE_MAX);
		out[(*n)++] = json_string_value(v);
	}
	return 0;
}

static int decode_check(allowd_auth_check *out, json_t *obj, const char *ptr_base,
			const char *domain_key)
{
	const char *key;
	json_t *v;
	char ptr[96];

	if (!json_is_object(obj))
		return allowd_error_set(ALLOWD_EINVALID, ptr_base, "%s must be an object", ptr_base);
	json_object_foreach(obj, key, v) {
		snprintf(ptr, sizeof(ptr), "%s/%.40s", ptr_base, key);
		if (strcmp(key, "result") == 0) {
			int r;
			if (!json_is_string(v) ||
			    (r = allowd_auth_result_parse(json_string_value(v),
							  json_string_length(v))) < 0)
				return allowd_error_set(ALLOWD_EINVALID, ptr,
							"result must be one of none, pass, fail, "
							"softfail, neutral, temperror, permerror, "
							"policy");
			out->result = (allowd_auth_result)r;
		} else if (strcmp(key, domain_key) == 0) {
			char dom[ALLOWD_DOMAIN_MAX];
			if (!json_is_string(v) || json_string_length(v) >= sizeof(dom))
				return allowd_error_set(ALLOWD_EINVALID, ptr,
							"%s must be a domain name", domain_key);
			if (json_string_length(v) == 0) {
				out->domain[0] = '\0';
				continue;
			}
			{
				/* the same rules as a DOMAIN pattern: a host name, IDN allowed */
				char *norm = NULL;
				if (allowd_pattern_domain(&norm, json_string_value(v)))
					return allowd_error_set(ALLOWD_EINVALID, ptr,
								"'%.100s' is not a domain name: %s",
								json_string_value(v),
								allowd_error_last()->message);
				snprintf(dom, sizeof(dom), "%s", norm);
				free(norm);
			}
			memcpy(out->domain, dom, sizeof(dom));
		} else {
			return allowd_error_set(ALLOWD_EINVALID, ptr, "unknown field '%.40s'", key);
		}
	}
	if (!json_object_get(obj, "result"))
		return allowd_error_set(ALLOWD_EINVALID, ptr_base, "%s needs a result", ptr_base);
	return 0;
}

static int decode_auth(allowd_auth_facts *f, json_t *auth)
{
	const char *key;
	json_t *v;
	int rc;

	if (!auth || json_is_null(auth))
		return 0;
	if (!json_is_object(auth))
		return allowd_error_set(ALLOWD_EINVALID, "/auth", "auth must be an object");
	json_object_foreach(auth, key, v) {
		if (strcmp(key, "spf") == 0) {
			if ((rc = decode_check(&f->spf, v, "/auth/spf", "domain")))
				return rc;
		} else if (strcmp(key, "dmarc") == 0) {
			if ((rc = decode_check(&f->dmarc, v, "/auth/dmarc", "from_domain")))
				return rc;
		} else if (strcmp(key, "dkim") == 0) {
			size_t i;
			json_t *d;
			char ptr[64];
			if (!json_is_array(v) || json_array_size(v) > ALLOWD_DKIM_MAX)
				return allowd_error_set(ALLOWD_EINVALID, "/auth/dkim",
							"dkim must be an array of at most %d results",
							ALLOWD_DKIM_MAX);
			json_array_foreach(v, i, d) {
				snprintf(ptr, sizeof(ptr), "/auth/dkim/%zu", i);
				if ((rc = decode_check(&f->dkim[f->n_dkim], d, ptr, "domain")))
					return rc;
				f->n_dkim++;
			}
		} else {
			char ptr[64];
			snprintf(ptr, sizeof(ptr), "/auth/%.40s", key);
			return allowd_error_set(ALLOWD_EINVALID, ptr, "unknown field '%.40s'", key);
		}
	}
	return 0;
}

int allowd_json_decode_message(api_message *out, json_t *obj)
{
	const char *headers[ALLOWD_EVAL_LIST_MAX], *ids[ALLOWD_EVAL_LIST_MAX], *key, *disp[ALLOWD_EVAL_LIST_MAX];
	size_t n_headers = 0, n_ids = 0, n_disp = 0;
	allowd_message *m = &out->m;
	uint8_t ip[16];
	json_t *v;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj))
		return allowd_error_set(ALLOWD_EINVALID, NULL, "a message must be a JSON object");
	json_object_foreach(obj, key, v) {
		int known = 0;
		for (size_t i = 0; i < sizeof(message_fields) / sizeof(message_fields[0]); i++)
			known |= strcmp(key, message_fields[i]) == 0;
		if (!known) {
			char ptr[64];
			snprintf(ptr, sizeof(ptr), "/%.40s", key);
			return allowd_error_set(ALLOWD_EINVALID, ptr, "unknown field '%.40s'", key);
		}
	}
	if (!json_object_get(obj, "recipients"))
		return allowd_error_set(ALLOWD_EINVALID, "/recipients", "recipients is required");
	if ((rc = opt_string(&m->envelope_from, obj, "envelope_from")) ||
	    (rc = opt_string(&m->header_from, obj, "header_from")) ||
	    (rc = opt_string(&m->client_ip, obj, "client_ip")) ||
	    (rc = opt_string(&m->server_name, obj, "server_name")) ||
	    (rc = string_list(out->reply_to, &m->n_reply_to, obj, "reply_to")) ||
	    (rc = string_list(out->recipients, &m->n_recipients, obj, "recipients")) ||
	    (rc = string_list(headers, &n_headers, obj, "authentication_results")) ||
	    (rc = string_list(ids, &n_ids, obj, "trusted_authserv_ids")) ||
	    (rc = string_list(disp, &n_disp, obj, "dispositions")))
		return rc;
	if (m->n_recipients == 0)
		return allowd_error_set(ALLOWD_EINVALID, "/recipients",
					"recipients needs at least one address");
	m->reply_to = out->reply_to;
	m->recipients = out->recipients;
	if (m->client_ip && *m->client_ip && allowd_ip_parse(ip, m->client_ip))
		return allowd_error_set(ALLOWD_EINVALID, "/client_ip",
					"client_ip '%.64s' is not an IPv4 or IPv6 address",
					m->client_ip);
	for (size_t i = 0; i < n_disp; i++) {
		unsigned d = allowd_disposition_parse(disp[i]);
		char ptr[48];
		if (!d) {
			snprintf(ptr, sizeof(ptr), "/dispositions/%zu", i);
			return allowd_error_set(ALLOWD_EINVALID, ptr,
						"unknown disposition '%.40s' (MALICIOUS, MALICIOUS-BEC, "
						"SUSPICIOUS, SPOOF, SPAM, BULK, ENCRYPTED, EXTERNAL, "
						"NONE)",
						disp[i]);
		}
		m->dispositions |= d;
	}
	if ((rc = decode_auth(&m->auth, json_object_get(obj, "auth"))))
		return rc;
	for (size_t i = 0; i < n_headers; i++) {
		char ptr[64];
		if (allowd_authres_parse(&m->auth, headers[i], ids, n_ids)) {
			snprintf(ptr, sizeof(ptr), "/authentication_results/%zu", i);
			allowd_error_prefix_pointer(ptr);
			return ALLOWD_EINVALID;
		}
	}
	out->owner = obj;
	return 0;
}

void api_message_clear(api_message *m)
{
	memset(m, 0, sizeof(*m));
}

static json_t *disp_array(unsigned bits)
{
	json_t *a = json_array();
	for (int i = 0; a && i < ALLOWD_DISP_COUNT; i++)
		if (bits & (1u << i))
			json_array_append_new(a, json_string(allowd_disposition_name(1u << i)));
	return a;
}

json_t *allowd_json_encode_decision(const allowd_decision *d)
{
	json_t *root = json_object(), *rcpts = json_array(), *matches = json_array();

	if (!root || !rcpts || !matches)
		goto oom;
	for (size_t i = 0; i < d->n_recipients; i++) {
		const allowd_recipient_decision *r = &d->recipients[i];
		json_t *o = json_pack("{s:s, s:o, s:o, s:b}", "address", r->address ? r->address : "",
				      "waived", disp_array(r->waived), "remaining",
				      disp_array(r->remaining), "skip_link_following",
				      r->skip_link_following);
		if (!o || json_array_append_new(rcpts, o))
			goto oom;
	}
	for (size_t i = 0; i < d->n_matches; i++) {
		const allowd_match *mt = &d->matches[i];
		json_t *o = json_pack("{s:I, s:s, s:s, s:b, s:s}", "policy_id",
				      (json_int_t)mt->policy_id, "field", allowd_field_name(mt->field),
				      "value", mt->value, "honored", mt->honored, "verification",
				      mt->verification);
		if (!o) /* a value that is not UTF-8 cannot be echoed as a JSON string */
			o = json_pack("{s:I, s:s, s:n, s:b, s:s}", "policy_id",
				      (json_int_t)mt->policy_id, "field", allowd_field_name(mt->field),
				      "value", "honored", mt->honored, "verification",
				      mt->verification);
		if (!o || json_array_append_new(matches, o))
			goto oom;
	}
	json_object_set_new(root, "recipients", rcpts);
	json_object_set_new(root, "matches", matches);
	return root;
oom:
	json_decref(root);
	json_decref(rcpts);
	json_decref(matches);
	return NULL;
}

/*
 * Every message of one request draws on the same regex work budget
 * (--evaluate-budget): once it is spent, the request fails with a 400 naming
 * the message that ran out, never with a decision that skipped regexes.
 */
static int evaluate_one(allowd_api *api, const char *account, json_t *obj,
			allowd_budget *budget, json_t **out)
{
	api_message msg;
	allowd_decision d;
	int rc;

	if ((rc = allowd_json_decode_message(&msg, obj)))
		return rc;
	msg.m.budget = budget;
	if ((rc = allowd_engine_evaluate(api->engine, account, &msg.m, &d))) {
		api_message_clear(&msg);
		return rc;
	}
	*out = allowd_json_encode_decision(&d);
	allowd_decision_clear(&d);
	api_message_clear(&msg);
	return *out ? 0 : allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
}

int api_evaluate(allowd_api *api, const api_request *req, api_response *resp)
{
	json_t *body = NULL, *messages, *v, *one = NULL;
	allowd_budget budget;
	size_t i;
	int rc;

	allowd_budget_init(&budget, api->evaluate_budget_ms > 0 &&
					    api->evaluate_budget_ms <= UINT32_MAX
				    ? (uint32_t)api->evaluate_budget_ms
				    : 0);

	if ((rc = allowd_json_parse_body(&body, req->content_type, req->body, req->body_len)))
		return rc;
	if (!(messages = json_object_get(body, "messages"))) {
		if ((rc = evaluate_one(api, req->account_id, body, &budget, &one)) == 0)
			resp->result = one;
		goto out;
	}
	if (json_object_size(body) != 1) {
		const char *key;
		json_t *x;
		json_object_foreach(body, key, x) {
			char ptr[64];
			if (strcmp(key, "messages") == 0)
				continue;
			snprintf(ptr, sizeof(ptr), "/%.40s", key);
			rc = allowd_error_set(ALLOWD_EINVALID, ptr,
					      "a batch is {\"messages\": [...]} with no other field; "
					      "remove '%.40s'",
					      key);
			break;
		}
		goto out;
	}
	if (!json_is_array(messages) || json_array_size(messages) == 0 ||
	    json_array_size(messages) > ALLOWD_EVAL_BATCH_MAX) {
		rc = allowd_error_set(ALLOWD_EINVALID, "/messages",
				      "messages must be an array of 1 to %d messages",
				      ALLOWD_EVAL_BATCH_MAX);
		goto out;
	}
	if (!(resp->result = json_array())) {
		rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		goto out;
	}
	json_array_foreach(messages, i, v) {
		char ptr[32];
		if ((rc = evaluate_one(api, req->account_id, v, &budget, &one))) {
			snprintf(ptr, sizeof(ptr), "/messages/%zu", i);
			allowd_error_prefix_pointer(ptr);
			goto out;
		}
		json_array_append_new(resp->result, one);
	}
out:
	json_decref(body);
	return rc;
}

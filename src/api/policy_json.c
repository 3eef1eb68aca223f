/*
 * policy_json.c - the allow-policy JSON codec: strict decoding (types,
 * unknown and read-only fields, deprecated aliases) and Cloudflare's
 * encoding, including the deprecated mirrors.
 */
#include "api/api.h"
#include "allowd/clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind { K_STRING, K_STRING_OR_NULL, K_BOOL, K_READONLY, K_ID };

static const struct field {
	const char *name;
	unsigned bit;
	enum kind kind;
	const char *alias_of; /* for deprecated names */
} fields[] = {
	{"pattern", ALLOWD_FIELD_PATTERN, K_STRING, NULL},
	{"pattern_type", ALLOWD_FIELD_PATTERN_TYPE, K_STRING, NULL},
	{"is_regex", ALLOWD_FIELD_IS_REGEX, K_BOOL, NULL},
	{"is_trusted_sender", ALLOWD_FIELD_IS_TRUSTED_SENDER, K_BOOL, NULL},
	{"is_acceptable_sender", ALLOWD_FIELD_IS_ACCEPTABLE_SENDER, K_BOOL, NULL},
	{"is_exempt_recipient", ALLOWD_FIELD_IS_EXEMPT_RECIPIENT, K_BOOL, NULL},
	{"verify_sender", ALLOWD_FIELD_VERIFY_SENDER, K_BOOL, NULL},
	{"comments", ALLOWD_FIELD_COMMENTS, K_STRING_OR_NULL, NULL},
	{"is_sender", ALLOWD_FIELD_IS_TRUSTED_SENDER, K_BOOL, "is_trusted_sender"},
	{"is_spoof", ALLOWD_FIELD_IS_ACCEPTABLE_SENDER, K_BOOL, "is_acceptable_sender"},
	{"is_recipient", ALLOWD_FIELD_IS_EXEMPT_RECIPIENT, K_BOOL, "is_exempt_recipient"},
	{"id", 0, K_ID, NULL},
	{"created_at", 0, K_READONLY, NULL},
	{"last_modified", 0, K_READONLY, NULL},
	{"modified_at", 0, K_READONLY, NULL},
};

#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

/* The required fields of a create, in the order errors name them. */
static const char *const required[] = {"pattern",           "pattern_type",
				       "is_regex",          "is_trusted_sender",
				       "is_acceptable_sender", "is_exempt_recipient",
				       "verify_sender"};

/* "/<key>" with JSON-pointer escaping (~0, ~1) into buf. */
static const char *pointer_to(char *buf, size_t len, const char *key)
{
	size_t o = 0;
	buf[o++] = '/';
	for (; *key && o + 3 < len; key++) {
		if (*key == '~' || *key == '/') {
			buf[o++] = '~';
			buf[o++] = *key == '~' ? '0' : '1';
		} else {
			buf[o++] = *key;
		}
	}
	buf[o] = '\0';
	return buf;
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static bool get_bool(const allowd_policy *v, unsigned bit)
{
	switch (bit) {
	case ALLOWD_FIELD_IS_REGEX:
		return v->is_regex;
	case ALLOWD_FIELD_IS_TRUSTED_SENDER:
		return v->is_trusted_sender;
	case ALLOWD_FIELD_IS_ACCEPTABLE_SENDER:
		return v->is_acceptable_sender;
	case ALLOWD_FIELD_IS_EXEMPT_RECIPIENT:
		return v->is_exempt_recipient;
	default:
		return v->verify_sender;
	}
}

static void set_bool(allowd_policy *v, unsigned bit, bool b)
{
	switch (bit) {
	case ALLOWD_FIELD_IS_REGEX:
		v->is_regex = b;
		break;
	case ALLOWD_FIELD_IS_TRUSTED_SENDER:
		v->is_trusted_sender = b;
		break;
	case ALLOWD_FIELD_IS_ACCEPTABLE_SENDER:
		v->is_acceptable_sender = b;
		break;
	case ALLOWD_FIELD_IS_EXEMPT_RECIPIENT:
		v->is_exempt_recipient = b;
		break;
	default:
		v->verify_sender = b;
	}
}

int allowd_parse_policy_id(int64_t *out, const char *s)
{
	char *end;
	long long v;

	if (!s || !*s || *s < '0' || *s > '9')
		goto invalid;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 1 || v > ALLOWD_POLICY_ID_MAX)
		goto invalid;
	*out = v;
	return 0;
invalid:
	return allowd_error_set(ALLOWD_EINVALID, "/path/policy_id",
				"policy_id must be an integer between 1 and %d", ALLOWD_POLICY_ID_MAX);
}

static int decode_id(int64_t *out, const json_t *v)
{
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > ALLOWD_POLICY_ID_MAX)
		return allowd_error_set(ALLOWD_EINVALID, "/id",
					"id must be an integer between 1 and %d", ALLOWD_POLICY_ID_MAX);
	*out = json_integer_value(v);
	return 0;
}

int allowd_json_decode_policy(allowd_policy_patch *out, json_t *obj, policy_decode_mode mode)
{
	char ptr[ALLOWD_ERROR_PTR_MAX];
	const char *key;
	json_t *v;
	bool have_id = false;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj))
		return allowd_error_set(ALLOWD_EINVALID, NULL, "expected a JSON object, got %s",
					json_type_name(obj));

	json_object_foreach(obj, key, v) {
		const struct field *f = NULL;
		for (size_t i = 0; i < N_FIELDS; i++)
			if (strcmp(fields[i].name, key) == 0) {
				f = &fields[i];
				break;
			}
		pointer_to(ptr, sizeof(ptr), key);
		if (!f) {
			rc = allowd_error_set(ALLOWD_EINVALID, ptr, "unknown field '%.100s'", key);
			goto fail;
		}
		switch (f->kind) {
		case K_ID:
			if (mode == DECODE_CREATE || mode == DECODE_PATCH) {
				rc = allowd_error_set(ALLOWD_EINVALID, ptr, "id is read-only");
				goto fail;
			}
			if ((rc = decode_id(&out->id, v)))
				goto fail;
			have_id = true;
			continue;
		case K_READONLY:
			if (mode == DECODE_PUT)
				continue; /* a GET-modify-PUT client sends them back */
			rc = allowd_error_set(ALLOWD_EINVALID, ptr, "%s is read-only", key);
			goto fail;
		case K_BOOL:
			if (!json_is_boolean(v)) {
				rc = allowd_error_set(ALLOWD_EINVALID, ptr, "%s must be a boolean, not %s",
						      key, json_type_name(v));
				goto fail;
			}
			if ((out->fields & f->bit) && get_bool(&out->v, f->bit) != json_is_true(v)) {
				const char *other = f->alias_of;
				for (size_t i = 0; !other && i < N_FIELDS; i++)
					if (fields[i].bit == f->bit && fields[i].alias_of)
						other = fields[i].name;
				rc = allowd_error_set(ALLOWD_EINVALID, ptr,
						      "%s and %s disagree; %s is a deprecated alias "
						      "of %s",
						      key, other,
						      f->alias_of ? key : other,
						      f->alias_of ? f->alias_of : key);
				goto fail;
			}
			set_bool(&out->v, f->bit, json_is_true(v));
			break;
		case K_STRING_OR_NULL:
			if (json_is_null(v)) {
				free(out->v.comments);
				out->v.comments = NULL;
				break;
			}
			/* fall through */
		case K_STRING:
			if (!json_is_string(v)) {
				rc = allowd_error_set(ALLOWD_EINVALID, ptr, "%s must be a string%s, not %s",
						      key, f->kind == K_STRING_OR_NULL ? " or null" : "",
						      json_type_name(v));
				goto fail;
			}
			if (f->bit == ALLOWD_FIELD_PATTERN_TYPE) {
				int t = allowd_pattern_type_parse(json_string_value(v));
				if (t <= 0) {
					rc = allowd_error_set(ALLOWD_EINVALID, ptr,
							      "pattern_type must be one of EMAIL, "
							      "DOMAIN, IP");
					goto fail;
				}
				out->v.pattern_type = (allowd_pattern_type)t;
			} else if ((rc = allowd_policy_set_string(f->bit == ALLOWD_FIELD_PATTERN
									  ? &out->v.pattern
									  : &out->v.comments,
								  json_string_value(v)))) {
				goto fail;
			}
			break;
		}
		out->fields |= f->bit;
	}

	if ((mode == DECODE_BATCH_PATCH || mode == DECODE_PUT) && !have_id) {
		rc = allowd_error_set(ALLOWD_EINVALID, "/id", "id is required");
		goto fail;
	}
	if (mode == DECODE_CREATE || mode == DECODE_PUT) {
		for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
			if (!(out->fields & (1u << i))) {
				pointer_to(ptr, sizeof(ptr), required[i]);
				rc = allowd_error_set(ALLOWD_EINVALID, ptr, "%s is required",
						      required[i]);
				goto fail;
			}
	}
	return 0;
fail:
	allowd_policy_clear(&out->v);
	return rc;
}

json_t *allowd_json_encode_policy(const allowd_policy *p)
{
	char created[ALLOWD_TIME_STR_MAX], modified[ALLOWD_TIME_STR_MAX];

	allowd_time_format(created, sizeof(created), p->created_at);
	allowd_time_format(modified, sizeof(modified), p->modified_at);
	return json_pack("{s:I, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:s?, s:s, s:s, s:s, s:b, s:b, "
			 "s:b}",
			 "id", (json_int_t)p->id, "pattern", p->pattern, "pattern_type",
			 allowd_pattern_type_name(p->pattern_type), "is_regex", p->is_regex,
			 "is_trusted_sender", p->is_trusted_sender, "is_acceptable_sender",
			 p->is_acceptable_sender, "is_exempt_recipient", p->is_exempt_recipient,
			 "verify_sender", p->verify_sender, "comments", p->comments, "created_at",
			 created, "last_modified", modified, "modified_at", modified, "is_sender",
			 p->is_trusted_sender, "is_recipient", p->is_exempt_recipient, "is_spoof",
			 p->is_acceptable_sender);
}

/* True when the media type is application/json (parameters allowed). */
static int is_json_media_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, "application/json", n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

int allowd_json_parse_body(json_t **out, const char *content_type, const char *body, size_t len)
{
	json_error_t jerr;
	json_t *root;

	if (!is_json_media_type(content_type))
		return allowd_error_set(ALLOWD_EINVALID, NULL,
					"Content-Type must be application/json, not '%.80s'",
					content_type ? content_type : "(none)");
	if (len == 0)
		return allowd_error_set(ALLOWD_EINVALID, NULL, "a JSON body is required");
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return allowd_error_set(ALLOWD_EINVALID, NULL,
					"malformed JSON at line %d, column %d: %s", jerr.line,
					jerr.column, jerr.text);
	if (!json_is_object(root)) {
		allowd_error_set(ALLOWD_EINVALID, NULL, "the body must be a JSON object, not %s",
				 json_type_name(root));
		json_decref(root);
		return ALLOWD_EINVALID;
	}
	*out = root;
	return 0;
}

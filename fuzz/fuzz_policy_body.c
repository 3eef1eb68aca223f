/*
 * fuzz_policy_body.c - a request body through the policy JSON codec
 * (src/api/policy_json.c) and validation (src/policy).
 *
 * Input: the body of a create/edit request.
 *
 * Invariants:
 *  - allowd_json_parse_body accepts only a JSON object, and every decode
 *    mode returns 0 or ALLOWD_EINVALID with a pointer that is "" or starts
 *    with '/'; a failed decode owns no strings;
 *  - what each mode requires holds on success: CREATE and PUT have the
 *    seven required fields, PUT and BATCH_PATCH an id in 1..INT32_MAX,
 *    CREATE and PATCH none; a body CREATE accepts decodes identically as a
 *    PATCH, and one PUT accepts identically as a BATCH_PATCH once the
 *    read-only timestamps (which only PUT tolerates) are removed;
 *  - validation returns 0 or ALLOWD_EINVALID naming a field;
 *  - a policy that validates, stored (id and timestamps filled), encodes to
 *    JSON text that parses, decodes in PUT mode (which accepts the
 *    read-only fields) to an equal policy, has equal deprecated mirrors and
 *    timestamps that parse back to the same milliseconds, and validates
 *    again to the same pattern_norm, which is its own normal form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allowd/clock.h"
#include "allowd/error.h"
#include "api/api.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void check_error(int rc, const char *what)
{
	const allowd_error *e = allowd_error_last();

	FUZZ_CHECK(rc == ALLOWD_EINVALID, "%s returned %d", what, rc);
	FUZZ_CHECK(e->code == rc, "%s: error slot holds code %d", what, e->code);
	FUZZ_CHECK(e->pointer[0] == '\0' || e->pointer[0] == '/', "%s: pointer '%s'", what,
		   e->pointer);
	FUZZ_CHECK(e->message[0] != '\0', "%s: empty message", what);
}

static bool same_patch(const allowd_policy_patch *a, const allowd_policy_patch *b)
{
	return a->fields == b->fields && fuzz_policy_equal(&a->v, &b->v, false);
}

/* The decoded policy of a mode, or NULL when the mode rejects the body. */
static bool decode(allowd_policy_patch *out, json_t *body, policy_decode_mode mode,
		   const char *name)
{
	int rc;

	allowd_error_clear();
	rc = allowd_json_decode_policy(out, body, mode);
	if (rc != 0) {
		check_error(rc, name);
		FUZZ_CHECK(!out->v.pattern && !out->v.comments && !out->v.pattern_norm,
			   "%s: strings left behind on failure", name);
		return false;
	}
	if (mode == DECODE_CREATE || mode == DECODE_PUT)
		FUZZ_CHECK((out->fields & ALLOWD_FIELDS_CREATE) == ALLOWD_FIELDS_CREATE,
			   "%s accepted without the required fields (0x%x)", name, out->fields);
	if (mode == DECODE_PUT || mode == DECODE_BATCH_PATCH)
		FUZZ_CHECK(out->id >= 1 && out->id <= ALLOWD_POLICY_ID_MAX, "%s: id %lld", name,
			   (long long)out->id);
	else
		FUZZ_CHECK(out->id == 0, "%s: id %lld from a body that may not carry one", name,
			   (long long)out->id);
	FUZZ_CHECK((out->fields & ~0xffu) == 0, "%s: unknown field bits 0x%x", name, out->fields);
	FUZZ_CHECK(!(out->fields & ALLOWD_FIELD_PATTERN) || out->v.pattern,
		   "%s: pattern flagged but NULL", name);
	FUZZ_CHECK(!(out->fields & ALLOWD_FIELD_PATTERN_TYPE) ||
			   (out->v.pattern_type >= ALLOWD_PATTERN_EMAIL &&
			    out->v.pattern_type <= ALLOWD_PATTERN_IP),
		   "%s: pattern_type %d", name, (int)out->v.pattern_type);
	return true;
}

static void round_trip(allowd_policy *p, const uint8_t *data, size_t size)
{
	allowd_policy_patch back;
	json_t *enc, *parsed = NULL;
	char *text, *norm = NULL;
	char created[ALLOWD_TIME_STR_MAX];
	int64_t t;
	uint64_t h = 1469598103934665603ULL;
	int rc;

	/* stored-looking id and timestamps, derived from the input */
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ULL;
	p->id = (int64_t)(h % ALLOWD_POLICY_ID_MAX) + 1;
	p->created_at = (int64_t)((h >> 20) % 4102444800000ULL); /* before 2100 */
	p->modified_at = p->created_at + (int64_t)(h & 0xfffff);

	enc = allowd_json_encode_policy(p);
	FUZZ_CHECK(enc != NULL, "encode failed for pattern '%s'", p->pattern);
	FUZZ_CHECK(json_is_true(json_object_get(enc, "is_sender")) == p->is_trusted_sender &&
			   json_is_true(json_object_get(enc, "is_spoof")) == p->is_acceptable_sender &&
			   json_is_true(json_object_get(enc, "is_recipient")) ==
				   p->is_exempt_recipient,
		   "deprecated mirrors disagree");
	FUZZ_CHECK(json_equal(json_object_get(enc, "last_modified"),
			      json_object_get(enc, "modified_at")),
		   "last_modified != modified_at");
	snprintf(created, sizeof(created), "%s",
		 json_string_value(json_object_get(enc, "created_at")));
	FUZZ_CHECK(allowd_time_parse(&t, created) == 0 && t == p->created_at,
		   "created_at %lld encodes as '%s' which parses to %lld", (long long)p->created_at,
		   created, (long long)t);
	FUZZ_CHECK(allowd_time_parse(&t, json_string_value(json_object_get(enc, "modified_at"))) ==
				   0 &&
			   t == p->modified_at,
		   "modified_at does not round-trip");

	text = json_dumps(enc, JSON_COMPACT);
	FUZZ_CHECK(text != NULL, "json_dumps failed");
	json_decref(enc);
	rc = allowd_json_parse_body(&parsed, "application/json; charset=utf-8", text, strlen(text));
	FUZZ_CHECK(rc == 0, "the encoded policy does not parse: %s", text);
	rc = allowd_json_decode_policy(&back, parsed, DECODE_PUT);
	FUZZ_CHECK(rc == 0, "the encoded policy does not decode as a PUT: %s (%s)", text,
		   allowd_error_last()->message);
	FUZZ_CHECK(back.id == p->id, "id %lld came back as %lld", (long long)p->id,
		   (long long)back.id);
	FUZZ_CHECK(fuzz_policy_equal(&back.v, p, false), "round trip changed the policy: %s",
		   text);
	rc = allowd_policy_validate(&back.v);
	FUZZ_CHECK(rc == 0, "the round-tripped policy no longer validates: %s (%s)", text,
		   allowd_error_last()->message);
	FUZZ_CHECK(strcmp(back.v.pattern_norm, p->pattern_norm) == 0,
		   "pattern_norm '%s' became '%s'", p->pattern_norm, back.v.pattern_norm);

	/* normalisation is idempotent */
	rc = allowd_pattern_normalize(&norm, p->pattern_type, p->is_regex, p->pattern_norm);
	FUZZ_CHECK(rc == 0 && strcmp(norm, p->pattern_norm) == 0,
		   "pattern_norm '%s' normalises to '%s' (rc %d)", p->pattern_norm,
		   norm ? norm : "(null)", rc);
	free(norm);
	allowd_policy_clear(&back.v);
	json_decref(parsed);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	allowd_policy_patch create, patch, put, bpatch;
	json_t *body = NULL, *stripped;
	char *text;
	bool ok_create, ok_patch, ok_put, ok_bpatch;
	int rc;

	if (size > 65536)
		return 0;
	text = fuzz_strndup(data, size);
	allowd_error_clear();
	rc = allowd_json_parse_body(&body, "application/json", text, size);
	if (rc != 0) {
		check_error(rc, "parse_body");
		FUZZ_CHECK(body == NULL, "body set on failure");
		free(text);
		return 0;
	}
	FUZZ_CHECK(json_is_object(body), "parse_body returned a non-object");

	ok_create = decode(&create, body, DECODE_CREATE, "CREATE");
	ok_patch = decode(&patch, body, DECODE_PATCH, "PATCH");
	ok_put = decode(&put, body, DECODE_PUT, "PUT");
	/* PUT ignores the read-only timestamps a GET-modify-PUT client sends back */
	stripped = json_deep_copy(body);
	FUZZ_CHECK(stripped != NULL, "oom");
	json_object_del(stripped, "created_at");
	json_object_del(stripped, "last_modified");
	json_object_del(stripped, "modified_at");
	ok_bpatch = decode(&bpatch, stripped, DECODE_BATCH_PATCH, "BATCH_PATCH");
	json_decref(stripped);

	if (ok_create)
		FUZZ_CHECK(ok_patch && same_patch(&create, &patch),
			   "CREATE accepts a body PATCH decodes differently");
	if (ok_put)
		FUZZ_CHECK(ok_bpatch && same_patch(&put, &bpatch) && put.id == bpatch.id,
			   "PUT accepts a body BATCH_PATCH decodes differently");
	if (ok_create)
		FUZZ_CHECK(!ok_put && !ok_bpatch, "CREATE and PUT both accept one body");

	for (int i = 0; i < 2; i++) {
		allowd_policy_patch *d = i == 0 ? &create : &put;
		if (!(i == 0 ? ok_create : ok_put))
			continue;
		allowd_error_clear();
		rc = allowd_policy_validate(&d->v);
		if (rc != 0) {
			check_error(rc, "validate");
			FUZZ_CHECK(strlen(allowd_error_last()->pointer) > 1,
				   "validate failed without naming a field");
			continue;
		}
		FUZZ_CHECK(d->v.pattern_norm != NULL, "validated without pattern_norm");
		round_trip(&d->v, data, size);
	}

	if (ok_create)
		allowd_policy_clear(&create.v);
	if (ok_patch)
		allowd_policy_clear(&patch.v);
	if (ok_put)
		allowd_policy_clear(&put.v);
	if (ok_bpatch)
		allowd_policy_clear(&bpatch.v);
	json_decref(body);
	free(text);
	return 0;
}

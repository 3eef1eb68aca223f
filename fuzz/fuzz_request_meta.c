/*
 * fuzz_request_meta.c - the two small parsers of a request's envelope: the
 * policy id in the URL path (allowd_parse_policy_id) and the Content-Type
 * check of allowd_json_parse_body (src/api/policy_json.c).
 *
 * Input: the Content-Type value, a NUL, then the path's policy id (as the
 * router hands it over, percent-decoded).
 *
 * Invariants, each against an independent reading of the rule:
 *  - a policy id is accepted exactly when it is 1 to 10 ASCII digits whose
 *    value is 1..INT32_MAX (leading zeros allowed), and then parses to that
 *    value; otherwise ALLOWD_EINVALID on "/path/policy_id";
 *  - a Content-Type is accepted exactly when it is "application/json" in
 *    any case, with optional spaces around it and optionally followed by
 *    ';' and parameters; otherwise ALLOWD_EINVALID with no pointer.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "allowd/error.h"
#include "api/api.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static bool id_rule(const char *s, int64_t *value)
{
	int64_t v = 0;
	size_t i;

	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v <= ALLOWD_POLICY_ID_MAX)
			v = v * 10 + (s[i] - '0');
	}
	*value = v;
	return i > 0 && v >= 1 && v <= ALLOWD_POLICY_ID_MAX;
}

static bool media_rule(const char *ct)
{
	const char *p = ct;
	while (*p == ' ')
		p++;
	if (strncasecmp(p, "application/json", 16) != 0)
		return false;
	for (p += 16; *p == ' '; p++)
		;
	return *p == '\0' || *p == ';';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t ct_len = nul ? (size_t)(nul - data) : size;
	char *ct = fuzz_strndup(data, ct_len);
	char *id = fuzz_strndup(nul ? nul + 1 : data + size, nul ? size - ct_len - 1 : 0);
	json_t *body = NULL;
	int64_t got = -1, want = 0;
	bool ok;
	int rc;

	allowd_error_clear();
	rc = allowd_parse_policy_id(&got, id);
	ok = id_rule(id, &want);
	FUZZ_CHECK((rc == 0) == ok, "policy id '%s': rc %d, the rule says %s", id, rc,
		   ok ? "accept" : "reject");
	if (rc == 0)
		FUZZ_CHECK(got == want, "policy id '%s' parsed as %lld", id, (long long)got);
	else
		FUZZ_CHECK(rc == ALLOWD_EINVALID &&
				   strcmp(allowd_error_last()->pointer, "/path/policy_id") == 0,
			   "policy id '%s': code %d pointer '%s'", id, rc, allowd_error_last()->pointer);

	allowd_error_clear();
	rc = allowd_json_parse_body(&body, ct, "{}", 2);
	ok = media_rule(ct);
	FUZZ_CHECK((rc == 0) == ok, "Content-Type '%s': rc %d, the rule says %s", ct, rc,
		   ok ? "accept" : "reject");
	if (rc != 0)
		FUZZ_CHECK(rc == ALLOWD_EINVALID && allowd_error_last()->pointer[0] == '\0',
			   "Content-Type '%s': code %d pointer '%s'", ct, rc,
			   allowd_error_last()->pointer);
	json_decref(body);
	free(ct);
	free(id);
	return 0;
}

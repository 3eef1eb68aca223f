/*
 * fuzz_pattern.c - the pattern validators (src/policy/pattern.c).
 *
 * Input: byte 0 picks the validator (bits 0-1: EMAIL, DOMAIN, IP, regex;
 * for a regex bits 2-3 pick its pattern_type), the rest is the pattern.
 *
 * Invariants:
 *  - the result is 0 or ALLOWD_EINVALID on "/pattern" with a message, and a
 *    failure leaves *out NULL; allowd_pattern_normalize (the dispatcher)
 *    and allowd_policy_validate agree with the direct validator;
 *  - an accepted pattern obeys the common rules (valid UTF-8, 1..1024
 *    characters, no control character, no surrounding whitespace);
 *  - normalisation is idempotent: the normalised form is accepted and
 *    normalises to itself;
 *  - per type: EMAIL has one '@'-separated DOMAIN-valid domain and at most
 *    254 octets, no ASCII upper case; DOMAIN is lower-case LDH, <= 253
 *    octets, >= 2 labels, and the engine's domain normaliser gives the same
 *    form; IP parses with allowd_cidr_parse and is in canonical text; a
 *    regex normalises to itself;
 *  - a policy matches the text it was written from: an EMAIL policy the
 *    address, a DOMAIN policy an address at the domain, an IP policy the
 *    address -- in the reference evaluator and in a compiled snapshot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allowd/engine.h"
#include "allowd/error.h"
#include "allowd/netaddr.h"
#include "allowd/policy.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

typedef int (*validator)(char **out, const char *pattern);

static bool has_control_or_bad_edges(const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return true;
		/* C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8 */
		if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return true;
	}
	return n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
}

static void check_domain_form(const char *d, const char *what)
{
	size_t n = strlen(d), labels = 1, label_len = 0;

	FUZZ_CHECK(n >= 1 && n <= 253, "%s '%s' is %zu octets", what, d, n);
	FUZZ_CHECK(d[0] != '.' && d[n - 1] != '.', "%s '%s' has an edge dot", what, d);
	for (size_t i = 0; i < n; i++) {
		char c = d[i];
		if (c == '.') {
			FUZZ_CHECK(label_len > 0, "%s '%s' has an empty label", what, d);
			labels++;
			label_len = 0;
			continue;
		}
		FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-',
			   "%s '%s' has byte 0x%02x", what, d, (unsigned char)c);
		FUZZ_CHECK(++label_len <= 63, "%s '%s' has a label over 63 octets", what, d);
	}
	FUZZ_CHECK(labels >= 2, "%s '%s' has a single label", what, d);
}

/* The decision of one trusted-sender policy written from `pattern` for `m`. */
static void check_self_match(allowd_policy *p, const allowd_message *m, allowd_field field)
{
	allowd_policy *const pols[1] = {p};
	allowd_engine_options o;
	allowd_snapshot *snap = NULL;
	allowd_decision ref, eng;
	bool found = false;

	allowd_engine_options_init(&o);
	FUZZ_CHECK(allowd_evaluate_reference(pols, 1, &o, m, &ref) == 0, "reference failed");
	for (size_t i = 0; i < ref.n_matches; i++)
		found |= ref.matches[i].field == field && ref.matches[i].policy_id == p->id &&
			 ref.matches[i].honored;
	FUZZ_CHECK(found, "policy '%s' (norm '%s', type %s) does not match the %s it was written "
			  "from (reference evaluator)",
		   p->pattern, p->pattern_norm, allowd_pattern_type_name(p->pattern_type),
		   allowd_field_name(field));
	FUZZ_CHECK(ref.n_recipients == 1 && ref.recipients[0].waived == ALLOWD_DISP_VERDICTS,
		   "a matched trusted sender waived 0x%x, not every verdict",
		   ref.n_recipients ? ref.recipients[0].waived : 0);

	FUZZ_CHECK(allowd_snapshot_build(&snap, pols, 1, &o) == 0, "snapshot_build: %s",
		   allowd_error_last()->message);
	FUZZ_CHECK(allowd_evaluate(snap, m, &eng) == 0, "evaluate failed");
	FUZZ_CHECK(eng.n_matches == ref.n_matches && eng.recipients[0].waived == ref.recipients[0].waived,
		   "engine (%zu matches, waived 0x%x) and reference (%zu matches) disagree on "
		   "'%s'",
		   eng.n_matches, eng.recipients[0].waived, ref.n_matches, p->pattern);
	allowd_decision_clear(&eng);
	allowd_decision_clear(&ref);
	allowd_snapshot_unref(snap);
}

static void self_match(const char *pattern, allowd_pattern_type type)
{
	const char *rcpt[1] = {"someone@recipient.example"};
	allowd_message m;
	allowd_policy *p = NULL;
	char buf[2200];
	allowd_field field = ALLOWD_FIELD_ENVELOPE_FROM;

	FUZZ_CHECK(allowd_policy_new(&p) == 0, "oom");
	p->id = 7;
	p->pattern_type = type;
	p->is_trusted_sender = true;
	FUZZ_CHECK(allowd_policy_set_string(&p->pattern, pattern) == 0, "oom");
	FUZZ_CHECK(allowd_policy_validate(p) == 0, "validate rejects '%s' the validator accepted",
		   pattern);

	memset(&m, 0, sizeof(m));
	m.recipients = rcpt;
	m.n_recipients = 1;
	switch (type) {
	case ALLOWD_PATTERN_EMAIL:
		m.envelope_from = pattern;
		break;
	case ALLOWD_PATTERN_DOMAIN: {
		int n = snprintf(buf, sizeof(buf), "x@%s", pattern);
		if (n < 0 || (size_t)n >= sizeof(buf))
			goto out;
		m.envelope_from = buf;
		break;
	}
	default: {
		const char *slash = strchr(pattern, '/');
		size_t n = slash ? (size_t)(slash - pattern) : strlen(pattern);
		if (n >= sizeof(buf))
			goto out;
		memcpy(buf, pattern, n);
		buf[n] = '\0';
		m.client_ip = buf;
		field = ALLOWD_FIELD_CLIENT_IP;
		break;
	}
	}
	/* Message values are bounded by the API (1024 bytes); so is this check. */
	if (strlen(m.envelope_from ? m.envelope_from : m.client_ip) <= 1024)
		check_self_match(p, &m, field);
out:
	allowd_policy_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const validator direct[] = {allowd_pattern_email, allowd_pattern_domain,
					   allowd_pattern_ip, allowd_pattern_regex};
	static const allowd_pattern_type types[] = {ALLOWD_PATTERN_EMAIL, ALLOWD_PATTERN_DOMAIN,
						    ALLOWD_PATTERN_IP, ALLOWD_PATTERN_EMAIL};
	char *pattern, *out = NULL, *out2 = NULL, *again = NULL;
	allowd_pattern_type type;
	unsigned kind;
	bool regex;
	int rc, rc2;

	if (size < 1 || size > 8192)
		return 0;
	kind = data[0] & 3u;
	regex = kind == 3;
	type = regex ? (allowd_pattern_type)(1 + ((data[0] >> 2) & 3u) % 3) : types[kind];
	pattern = fuzz_strndup(data + 1, size - 1);

	allowd_error_clear();
	rc = direct[kind](&out, pattern);
	rc2 = allowd_pattern_normalize(&out2, type, regex, pattern);
	FUZZ_CHECK(rc == rc2, "direct validator %d, dispatcher %d on '%s'", rc, rc2, pattern);
	FUZZ_CHECK((out == NULL) == (out2 == NULL) && (!out || strcmp(out, out2) == 0),
		   "direct '%s' vs dispatcher '%s'", out ? out : "(null)", out2 ? out2 : "(null)");
	free(out2);
	out2 = NULL;

	if (rc != 0) {
		const allowd_error *e = allowd_error_last();
		FUZZ_CHECK(rc == ALLOWD_EINVALID, "unexpected code %d on '%s'", rc, pattern);
		FUZZ_CHECK(strcmp(e->pointer, "/pattern") == 0, "pointer '%s'", e->pointer);
		FUZZ_CHECK(e->message[0] != '\0', "empty message");
		FUZZ_CHECK(out == NULL, "*out set on failure");
		goto done;
	}

	FUZZ_CHECK(out != NULL, "success without a result");
	{
		long chars = allowd_utf8_length(pattern, strlen(pattern));
		FUZZ_CHECK(chars >= 1 && chars <= ALLOWD_PATTERN_MAX,
			   "accepted a pattern of %ld characters", chars);
		FUZZ_CHECK(!has_control_or_bad_edges(pattern),
			   "accepted a control character or edge space in '%s'", pattern);
		FUZZ_CHECK(allowd_utf8_length(out, strlen(out)) >= 1,
			   "normalised form '%s' is not UTF-8", out);
	}

	/* idempotent: the normalised form is valid and is its own normal form */
	rc2 = direct[kind](&again, out);
	FUZZ_CHECK(rc2 == 0, "normalised form '%s' of '%s' is rejected: %s", out, pattern,
		   allowd_error_last()->message);
	FUZZ_CHECK(strcmp(again, out) == 0, "not idempotent: '%s' -> '%s' -> '%s'", pattern, out,
		   again);

	switch (kind) {
	case 0: { /* EMAIL */
		const char *at = strrchr(out, '@');
		char *dom = NULL;
		FUZZ_CHECK(at && at != out, "'%s' has no local part", out);
		FUZZ_CHECK(strlen(out) <= 254, "'%s' is %zu octets", out, strlen(out));
		FUZZ_CHECK((size_t)(at - out) <= 64, "local part of '%s' is over 64 octets", out);
		for (const char *q = out; *q; q++)
			FUZZ_CHECK(!(*q >= 'A' && *q <= 'Z'), "upper case in '%s'", out);
		check_domain_form(at + 1, "email domain");
		FUZZ_CHECK(allowd_pattern_domain(&dom, at + 1) == 0 && strcmp(dom, at + 1) == 0,
			   "the domain of '%s' is not a normalised DOMAIN", out);
		free(dom);
		self_match(pattern, ALLOWD_PATTERN_EMAIL);
		break;
	}
	case 1: { /* DOMAIN */
		char eng[ALLOWD_DOMAIN_MAX + 2];
		check_domain_form(out, "domain");
		if (strlen(pattern) < 1024)
			FUZZ_CHECK((rc2 = allowd_domain_normalize(eng, sizeof(eng), pattern)) == 0 &&
					   strcmp(eng, out) == 0,
				   "validator '%s' -> '%s' but the engine's normaliser says '%s' (rc %d)",
				   pattern, out, rc2 == 0 ? eng : "", rc2);
		self_match(pattern, ALLOWD_PATTERN_DOMAIN);
		break;
	}
	case 2: { /* IP */
		allowd_cidr c1, c2;
		FUZZ_CHECK(allowd_cidr_parse(&c1, out) == 0, "'%s' does not parse as a CIDR", out);
		FUZZ_CHECK(allowd_cidr_parse(&c2, pattern) == 0, "'%s' (accepted) does not parse",
			   pattern);
		FUZZ_CHECK(c1.prefix == c2.prefix && memcmp(c1.addr, c2.addr, 16) == 0,
			   "'%s' and its normal form '%s' name different blocks", pattern, out);
		if (!strchr(out, '/')) {
			uint8_t a[16];
			FUZZ_CHECK(allowd_ip_parse(a, out) == 0, "'%s' is not an address", out);
		}
		self_match(pattern, ALLOWD_PATTERN_IP);
		break;
	}
	default: /* regex */
		FUZZ_CHECK(strcmp(out, pattern) == 0, "regex normalised '%s' -> '%s'", pattern, out);
		break;
	}
done:
	free(again);
	free(out);
	free(pattern);
	return 0;
}

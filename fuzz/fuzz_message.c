/*
 * fuzz_message.c - message facts through the evaluate endpoint's decoder
 * (allowd_json_decode_message, src/api/evaluate.c, which also runs the
 * Authentication-Results parser) and then the engine: a compiled snapshot
 * (allowd_evaluate) against the reference evaluator.
 *
 * Input: the JSON body of one message.  The policies are fixed and varied:
 * exact addresses and domains (IDN, quoted and subaddressed locals), IP
 * blocks, regexes of every type, acceptable-only senders, trusted senders,
 * exempt recipients, verify_sender, and a costly regex that reaches the
 * match limit.  Two engine configurations are compared: '+' subaddresses
 * with the Hyperscan prefilter, and '-' subaddresses with PCRE2 alone.
 *
 * Invariants:
 *  - decoding returns 0 or ALLOWD_EINVALID with a pointer "" or "/...";
 *    decoded facts respect the documented bounds;
 *  - the engine and the reference evaluator decide identically (matches,
 *    verification outcomes, per-recipient dispositions, link following);
 *  - per recipient, waived and remaining partition the requested
 *    dispositions (all six verdicts when none are given), informational
 *    labels are never waived;
 *  - the decision follows from its matches: a waiver needs an honoured
 *    match; MALICIOUS, MALICIOUS-BEC and SUSPICIOUS are waived only by an
 *    honoured trusted sender (any recipient) or an honoured exempt
 *    recipient (that recipient) -- never by an acceptable sender -- and
 *    the waived set is exactly what the honoured matches grant;
 *  - every match names a policy of the set, on a field that policy looks
 *    at; matches are sorted and unique; an unverified policy is always
 *    honoured, a reply-to match of a verify_sender policy never is;
 *  - the decision encodes as JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allowd/engine.h"
#include "allowd/error.h"
#include "api/api.h"
#include "fuzz_common.h"

#define DISP_SEVERE (ALLOWD_DISP_MALICIOUS | ALLOWD_DISP_MALICIOUS_BEC | ALLOWD_DISP_SUSPICIOUS)
#define DISP_ALL ((1u << ALLOWD_DISP_COUNT) - 1)

static const struct spec {
	const char *pattern;
	allowd_pattern_type type;
	bool regex, trusted, acceptable, exempt, verify;
} specs[] = {
	{"alice@example.com", ALLOWD_PATTERN_EMAIL, false, true, false, false, false},
	{"bob@example.com", ALLOWD_PATTERN_EMAIL, false, false, true, false, false},
	{"example.org", ALLOWD_PATTERN_DOMAIN, false, false, true, false, false},
	{"example.net", ALLOWD_PATTERN_DOMAIN, false, true, false, false, true},
	{"8.8.8.0/24", ALLOWD_PATTERN_IP, false, false, true, false, false},
	{"1.1.1.1", ALLOWD_PATTERN_IP, false, true, false, false, true},
	{"2606:4700::/32", ALLOWD_PATTERN_IP, false, true, false, false, false},
	{".*@acceptable\\.example", ALLOWD_PATTERN_EMAIL, true, false, true, false, false},
	{"(.+\\.)?trusted\\.example", ALLOWD_PATTERN_DOMAIN, true, true, false, false, false},
	{"ceo@corp.example", ALLOWD_PATTERN_EMAIL, false, false, false, true, false},
	{".*@exempt\\.corp\\.example", ALLOWD_PATTERN_EMAIL, true, false, false, true, true},
	{"(.+\\.)?rcpt\\.example", ALLOWD_PATTERN_DOMAIN, true, false, true, true, false},
	{"9\\.9\\.9\\.\\d+", ALLOWD_PATTERN_IP, true, false, true, false, false},
	{"\"John Doe\"@example.com", ALLOWD_PATTERN_EMAIL, false, true, true, false, false},
	{"Pel\xc3\xa9@B\xc3\xbc" "cher.example", ALLOWD_PATTERN_EMAIL, false, true, false, false,
	 true},
	{"b\xc3\xbc" "cher.example", ALLOWD_PATTERN_DOMAIN, false, false, true, false, true},
	{"news+list@example.com", ALLOWD_PATTERN_EMAIL, false, false, true, false, false},
	{"news-list@example.com", ALLOWD_PATTERN_EMAIL, false, true, false, false, false},
	{"2a00:1450:4001:82a::200e", ALLOWD_PATTERN_IP, false, false, true, false, false},
	{".*.*=.*", ALLOWD_PATTERN_EMAIL, true, false, true, false, false},
	{"support@example.com", ALLOWD_PATTERN_EMAIL, false, true, true, true, false},
	{"mx\\d*\\.example\\.(net|com)", ALLOWD_PATTERN_DOMAIN, true, true, false, true, true},
	{"x@xn--bcher-kva.example", ALLOWD_PATTERN_EMAIL, false, false, false, true, false},
	{"[a-z]+@mail\\.example\\.co\\.uk", ALLOWD_PATTERN_EMAIL, true, true, false, false, true},
	{"2606:4700:10::/48", ALLOWD_PATTERN_IP, false, false, true, false, true},
	{"example.co.uk", ALLOWD_PATTERN_DOMAIN, false, true, false, false, true},
};

#define N_POLICIES (sizeof(specs) / sizeof(specs[0]))
#define N_CONFIGS 2

static allowd_policy *policies[N_POLICIES];
static allowd_engine_options opts[N_CONFIGS];
static allowd_snapshot *snaps[N_CONFIGS];
static bool debug; /* ALLOWD_FUZZ_DEBUG set: print each decision */

static void free_all(void)
{
	for (int i = 0; i < N_CONFIGS; i++)
		allowd_snapshot_unref(snaps[i]);
	for (size_t i = 0; i < N_POLICIES; i++)
		allowd_policy_free(policies[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	debug = getenv("ALLOWD_FUZZ_DEBUG") != NULL;
	for (size_t i = 0; i < N_POLICIES; i++) {
		allowd_policy *p;
		if (allowd_policy_new(&p) != 0)
			abort();
		/* ids not in table order, so that sorting by id is exercised */
		p->id = (int64_t)((i * 7) % N_POLICIES) + 100;
		p->pattern_type = specs[i].type;
		p->is_regex = specs[i].regex;
		p->is_trusted_sender = specs[i].trusted;
		p->is_acceptable_sender = specs[i].acceptable;
		p->is_exempt_recipient = specs[i].exempt;
		p->verify_sender = specs[i].verify;
		if (allowd_policy_set_string(&p->pattern, specs[i].pattern) ||
		    allowd_policy_validate(p) != 0) {
			fprintf(stderr, "fuzz: policy %zu (%s): %s\n", i, specs[i].pattern,
				allowd_error_last()->message);
			abort();
		}
		policies[i] = p;
	}
	for (int c = 0; c < N_CONFIGS; c++) {
		allowd_engine_options_init(&opts[c]);
		opts[c].subaddress_delimiter = c == 0 ? '+' : '-';
		opts[c].use_prefilter = c == 0;
		if (allowd_snapshot_build(&snaps[c], policies, N_POLICIES, &opts[c]) != 0)
			abort();
	}
	atexit(free_all);
	return 0;
}

static const allowd_policy *policy_by_id(int64_t id)
{
	for (size_t i = 0; i < N_POLICIES; i++)
		if (policies[i]->id == id)
			return policies[i];
	return NULL;
}

static bool same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void compare(const allowd_decision *a, const allowd_decision *b, int config)
{
	FUZZ_CHECK(a->n_recipients == b->n_recipients && a->n_matches == b->n_matches,
		   "config %d: engine %zu recipients %zu matches, reference %zu / %zu", config,
		   a->n_recipients, a->n_matches, b->n_recipients, b->n_matches);
	FUZZ_CHECK(a->regex_limit_hits == b->regex_limit_hits,
		   "config %d: engine %d regex limit hits, reference %d", config,
		   a->regex_limit_hits, b->regex_limit_hits);
	for (size_t i = 0; i < a->n_recipients; i++) {
		const allowd_recipient_decision *x = &a->recipients[i], *y = &b->recipients[i];
		FUZZ_CHECK(x->address == y->address && x->waived == y->waived &&
				   x->remaining == y->remaining &&
				   x->skip_link_following == y->skip_link_following,
			   "config %d: recipient %zu: engine waived 0x%x remaining 0x%x skip %d, "
			   "reference 0x%x 0x%x %d",
			   config, i, x->waived, x->remaining, x->skip_link_following, y->waived,
			   y->remaining, y->skip_link_following);
	}
	for (size_t i = 0; i < a->n_matches; i++) {
		const allowd_match *x = &a->matches[i], *y = &b->matches[i];
		FUZZ_CHECK(x->policy_id == y->policy_id && x->field == y->field &&
				   x->index == y->index && same_text(x->value, y->value) &&
				   x->honored == y->honored && same_text(x->verification, y->verification),
			   "config %d: match %zu: engine policy %lld %s[%zu] '%s' honored %d '%s'; "
			   "reference policy %lld %s[%zu] '%s' honored %d '%s'",
			   config, i, (long long)x->policy_id, allowd_field_name(x->field), x->index,
			   x->value ? x->value : "(null)", x->honored,
			   x->verification ? x->verification : "(null)", (long long)y->policy_id,
			   allowd_field_name(y->field), y->index, y->value ? y->value : "(null)",
			   y->honored, y->verification ? y->verification : "(null)");
	}
}

static void check_decision(const allowd_decision *d, const allowd_message *m)
{
	unsigned base = m->dispositions ? m->dispositions : ALLOWD_DISP_VERDICTS;
	unsigned sender_waives = 0, *rcpt_waives;
	bool skip = false;

	FUZZ_CHECK(d->n_recipients == m->n_recipients, "%zu recipients decided, %zu given",
		   d->n_recipients, m->n_recipients);
	rcpt_waives = calloc(m->n_recipients + 1, sizeof(*rcpt_waives));
	FUZZ_CHECK(rcpt_waives != NULL, "oom");

	for (size_t i = 0; i < d->n_matches; i++) {
		const allowd_match *mt = &d->matches[i];
		const allowd_policy *p = policy_by_id(mt->policy_id);
		FUZZ_CHECK(p != NULL, "match %zu names unknown policy %lld", i,
			   (long long)mt->policy_id);
		FUZZ_CHECK(mt->value != NULL && mt->verification != NULL, "match %zu incomplete", i);
		if (i > 0) {
			const allowd_match *pv = &d->matches[i - 1];
			FUZZ_CHECK(pv->field < mt->field ||
					   (pv->field == mt->field &&
					    (pv->index < mt->index ||
					     (pv->index == mt->index && pv->policy_id < mt->policy_id))),
				   "matches %zu and %zu are not sorted and unique", i - 1, i);
		}
		if (!p->verify_sender)
			FUZZ_CHECK(mt->honored && strcmp(mt->verification, "not required") == 0,
				   "policy %lld needs no verification but was '%s' (honored %d)",
				   (long long)p->id, mt->verification, mt->honored);
		if (mt->field == ALLOWD_FIELD_REPLY_TO && p->verify_sender)
			FUZZ_CHECK(!mt->honored, "a reply-to match of policy %lld was honoured",
				   (long long)p->id);
		if (mt->field == ALLOWD_FIELD_RECIPIENT) {
			FUZZ_CHECK(p->is_exempt_recipient, "policy %lld matched a recipient but is not "
							   "an exempt-recipient policy",
				   (long long)p->id);
			FUZZ_CHECK(mt->index < m->n_recipients, "recipient index %zu", mt->index);
			if (mt->honored)
				rcpt_waives[mt->index] |= ALLOWD_DISP_VERDICTS;
		} else {
			FUZZ_CHECK(p->is_trusted_sender || p->is_acceptable_sender,
				   "policy %lld matched %s but is not a sender policy", (long long)p->id,
				   allowd_field_name(mt->field));
			if (mt->field == ALLOWD_FIELD_REPLY_TO)
				FUZZ_CHECK(mt->index < m->n_reply_to, "reply_to index %zu", mt->index);
			else
				FUZZ_CHECK(mt->index == 0, "index %zu on %s", mt->index,
					   allowd_field_name(mt->field));
			if (mt->field == ALLOWD_FIELD_CLIENT_IP)
				FUZZ_CHECK(p->pattern_type == ALLOWD_PATTERN_IP,
					   "%s policy %lld matched client_ip",
					   allowd_pattern_type_name(p->pattern_type), (long long)p->id);
			if (mt->field == ALLOWD_FIELD_SERVER_NAME)
				FUZZ_CHECK(p->pattern_type == ALLOWD_PATTERN_DOMAIN && p->is_regex,
					   "policy %lld matched server_name", (long long)p->id);
			if (mt->honored && p->is_trusted_sender) {
				sender_waives |= ALLOWD_DISP_VERDICTS;
				skip = true;
			} else if (mt->honored) {
				sender_waives |= ALLOWD_DISP_ACCEPTABLE;
			}
		}
	}

	for (size_t r = 0; r < d->n_recipients; r++) {
		const allowd_recipient_decision *rd = &d->recipients[r];
		unsigned expect = (sender_waives | rcpt_waives[r]) & base & ALLOWD_DISP_VERDICTS;
		FUZZ_CHECK(rd->address == m->recipients[r], "recipient %zu address not borrowed", r);
		FUZZ_CHECK((rd->waived & rd->remaining) == 0, "recipient %zu: waived 0x%x and "
							       "remaining 0x%x overlap",
			   r, rd->waived, rd->remaining);
		FUZZ_CHECK((rd->waived | rd->remaining) == base,
			   "recipient %zu: waived 0x%x + remaining 0x%x != requested 0x%x", r,
			   rd->waived, rd->remaining, base);
		FUZZ_CHECK((rd->waived & ~ALLOWD_DISP_VERDICTS) == 0,
			   "recipient %zu: an informational label was waived (0x%x)", r, rd->waived);
		FUZZ_CHECK(!(rd->waived & DISP_SEVERE) ||
				   ((sender_waives | rcpt_waives[r]) & DISP_SEVERE),
			   "recipient %zu: 0x%x waived without an honoured trusted sender or "
			   "exempt recipient",
			   r, rd->waived & DISP_SEVERE);
		FUZZ_CHECK(rd->waived == expect,
			   "recipient %zu: waived 0x%x, the honoured matches grant 0x%x", r,
			   rd->waived, expect);
		FUZZ_CHECK(rd->skip_link_following == skip, "recipient %zu: skip_link_following %d",
			   r, rd->skip_link_following);
	}
	free(rcpt_waives);
}

static void check_decoded(const allowd_message *m)
{
	const char *const singles[] = {m->envelope_from, m->header_from, m->client_ip,
				       m->server_name};

	FUZZ_CHECK(m->n_recipients >= 1 && m->n_recipients <= ALLOWD_EVAL_LIST_MAX,
		   "%zu recipients", m->n_recipients);
	FUZZ_CHECK(m->n_reply_to <= ALLOWD_EVAL_LIST_MAX, "%zu reply_to", m->n_reply_to);
	for (size_t i = 0; i < 4; i++)
		FUZZ_CHECK(!singles[i] || strlen(singles[i]) <= ALLOWD_EVAL_VALUE_MAX,
			   "a value of %zu bytes", strlen(singles[i]));
	for (size_t i = 0; i < m->n_recipients; i++)
		FUZZ_CHECK(m->recipients[i] && strlen(m->recipients[i]) <= ALLOWD_EVAL_VALUE_MAX,
			   "recipient %zu", i);
	for (size_t i = 0; i < m->n_reply_to; i++)
		FUZZ_CHECK(m->reply_to[i] && strlen(m->reply_to[i]) <= ALLOWD_EVAL_VALUE_MAX,
			   "reply_to %zu", i);
	FUZZ_CHECK((m->dispositions & ~DISP_ALL) == 0, "dispositions 0x%x", m->dispositions);
	FUZZ_CHECK(m->auth.n_dkim <= ALLOWD_DKIM_MAX, "n_dkim %zu", m->auth.n_dkim);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = NULL;
	api_message msg;
	char *text;
	int rc;

	if (size > 256 * 1024)
		return 0;
	text = fuzz_strndup(data, size);
	if (allowd_json_parse_body(&body, "application/json", text, size) != 0)
		goto out;
	allowd_error_clear();
	rc = allowd_json_decode_message(&msg, body);
	if (rc != 0) {
		const allowd_error *e = allowd_error_last();
		FUZZ_CHECK(rc == ALLOWD_EINVALID, "decode returned %d: %s", rc, e->message);
		FUZZ_CHECK(e->pointer[0] == '\0' || e->pointer[0] == '/', "pointer '%s'",
			   e->pointer);
		FUZZ_CHECK(e->message[0] != '\0', "empty message");
		goto out;
	}
	check_decoded(&msg.m);

	for (int c = 0; c < N_CONFIGS; c++) {
		allowd_decision eng, ref;
		json_t *enc;
		FUZZ_CHECK(allowd_evaluate(snaps[c], &msg.m, &eng) == 0, "evaluate failed");
		FUZZ_CHECK(allowd_evaluate_reference(policies, N_POLICIES, &opts[c], &msg.m, &ref) == 0,
			   "reference failed");
		compare(&eng, &ref, c);
		check_decision(&eng, &msg.m);
		enc = allowd_json_encode_decision(&eng);
		FUZZ_CHECK(enc != NULL, "the decision does not encode");
		if (debug) {
			char *s = json_dumps(enc, JSON_COMPACT);
			fprintf(stderr, "config %d: %s\n", c, s ? s : "?");
			free(s);
		}
		json_decref(enc);
		allowd_decision_clear(&eng);
		allowd_decision_clear(&ref);
	}
	api_message_clear(&msg);
out:
	json_decref(body);
	free(text);
	return 0;
}

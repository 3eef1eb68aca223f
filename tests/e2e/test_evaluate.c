/*
 * test_evaluate.c - POST /allowd/v1/accounts/{account_id}/evaluate over real
 * HTTP (issue 4): every API write is in effect for the next evaluation
 * (single writes, batches, failing batches, more writes than the engine's
 * delta holds before it rebuilds its base in the background), evaluations
 * survive SIGTERM and SIGKILL restarts, the endpoint validates as strictly
 * as the rest of the API, the semantics of docs/semantics.md hold through
 * the API, a pathological regex neither stalls the server nor gets
 * created when it cannot be bounded, and the regex work of one request is
 * bounded by --evaluate-budget.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- dispositions as bits (the engine's order) --------------------------- */

enum {
	MAL = 1u << 0,
	BEC = 1u << 1,
	SUS = 1u << 2,
	SPOOF = 1u << 3,
	SPAM = 1u << 4,
	BULK = 1u << 5,
	ENC = 1u << 6,
	EXT = 1u << 7,
	NONE = 1u << 8,
};
#define ALL6  (MAL | BEC | SUS | SPOOF | SPAM | BULK)
#define ACC   (SPOOF | SPAM | BULK) /* what an acceptable sender waives */
#define STAND (MAL | BEC | SUS)     /* what stands for an acceptable sender */

static const char *const disp_names[] = {"MALICIOUS", "MALICIOUS-BEC", "SUSPICIOUS",
                                         "SPOOF",     "SPAM",          "BULK",
                                         "ENCRYPTED", "EXTERNAL",      "NONE"};
#define N_DISP (sizeof(disp_names) / sizeof(disp_names[0]))

/* The verification strings of docs/semantics.md. */
#define NR    "not required"
#define SPF   "spf pass"
#define DMARC "dmarc pass"
#define DKIM  "dkim pass"
#define MSG   "message authenticated"
#define SNA   "sender not authenticated"
#define MNA   "message not authenticated"
#define RTN   "reply-to is never authenticated"

/* ---- JSON helpers --------------------------------------------------------- */

static json_t *j_at(json_t *v, const char *file, int line)
{
	if (!v)
		e2e_fail_at(file, line, "json_pack failed (test bug)");
	return e2e_keep(v);
}
/* A test-owned json_pack. */
#define J(...) j_at(json_pack(__VA_ARGS__), __FILE__, __LINE__)

static char *fmt_bits(unsigned bits)
{
	char *s = e2e_strf("[");
	for (size_t i = 0; i < N_DISP; i++)
		if (bits & (1u << i))
			s = e2e_strf("%s%s%s", s, strlen(s) > 1 ? "," : "", disp_names[i]);
	return e2e_strf("%s]", s);
}

/* A disposition array as bits; fails on anything but known, distinct names. */
static unsigned disp_bits_at(const json_t *arr, const char *what, const char *file, int line)
{
	unsigned bits = 0;
	size_t i;
	json_t *v;
	if (!json_is_array(arr))
		e2e_fail_at(file, line, "%s is not an array: %s", what, e2e_dumps(arr));
	json_array_foreach(arr, i, v)
	{
		size_t k = 0;
		if (!json_is_string(v))
			e2e_fail_at(file, line, "%s holds a non-string: %s", what, e2e_dumps(arr));
		while (k < N_DISP && strcmp(disp_names[k], json_string_value(v)) != 0)
			k++;
		if (k == N_DISP)
			e2e_fail_at(file, line, "%s holds an unknown disposition: %s", what,
			            e2e_dumps(arr));
		if (bits & (1u << k))
			e2e_fail_at(file, line, "%s repeats %s", what, disp_names[k]);
		bits |= 1u << k;
	}
	return bits;
}

/* The decision shape of docs/api.md: exactly these keys with these types. */
static void decision_shape_at(const json_t *d, const char *file, int line)
{
	static const char *const match_keys[] = {"policy_id", "field", "value", "honored",
	                                          "verification"};
	static const char *const fields[] = {"envelope_from", "header_from", "reply_to",
	                                     "recipient",     "client_ip",   "server_name"};
	size_t i;
	json_t *v;
	if (!json_is_object(d) || json_object_size(d) != 2)
		e2e_fail_at(file, line, "a decision is {recipients, matches}: %s", e2e_dumps(d));
	json_array_foreach(e2e_arr_at(d, "recipients", file, line), i, v)
	{
		if (json_object_size(v) != 4)
			e2e_fail_at(file, line, "a recipient has keys other than address, waived, "
			                        "remaining, skip_link_following: %s",
			            e2e_dumps(v));
		e2e_str_at(v, "address", file, line);
		e2e_bool_at(v, "skip_link_following", file, line);
		unsigned w = disp_bits_at(e2e_arr_at(v, "waived", file, line), "waived", file, line);
		unsigned r =
		    disp_bits_at(e2e_arr_at(v, "remaining", file, line), "remaining", file, line);
		if (w & r)
			e2e_fail_at(file, line, "waived and remaining overlap: %s", e2e_dumps(v));
		if (w & ~(unsigned)ALL6)
			e2e_fail_at(file, line, "an informational label was waived: %s",
			            e2e_dumps(v));
	}
	json_array_foreach(e2e_arr_at(d, "matches", file, line), i, v)
	{
		if (json_object_size(v) != 5)
			e2e_fail_at(file, line, "a match has other keys than the five: %s",
			            e2e_dumps(v));
		for (size_t k = 0; k < 5; k++)
			if (!json_object_get(v, match_keys[k]))
				e2e_fail_at(file, line, "a match lacks %s: %s", match_keys[k],
				            e2e_dumps(v));
		e2e_int_at(v, "policy_id", file, line);
		e2e_bool_at(v, "honored", file, line);
		e2e_str_at(v, "verification", file, line);
		const char *f = e2e_str_at(v, "field", file, line);
		size_t k = 0;
		while (k < 6 && strcmp(fields[k], f) != 0)
			k++;
		if (k == 6)
			e2e_fail_at(file, line, "unknown field in a match: %s", e2e_dumps(v));
	}
}

/* ---- the endpoint ----------------------------------------------------------- */

static const char *eval_path(e2e_server *s)
{
	return e2e_strf("/allowd/v1/accounts/%s/evaluate", s->account_id);
}

static e2e_response *eval_raw(e2e_server *s, const char *body)
{
	return e2e_send(s, "POST", body, "%s", eval_path(s));
}

/* Evaluates one message (a JSON object); asserts 200 and the shape; returns the decision. */
static json_t *eval_at(e2e_server *s, const json_t *msg, const char *file, int line)
{
	e2e_response *r = eval_raw(s, e2e_dumps(msg));
	json_t *d = e2e_assert_ok_at(r, 200, file, line);
	decision_shape_at(d, file, line);
	size_t n = json_array_size(json_object_get(msg, "recipients"));
	if (json_array_size(json_object_get(d, "recipients")) != n)
		e2e_fail_at(file, line, "%zu recipients in, %zu decisions out: %s", n,
		            json_array_size(json_object_get(d, "recipients")), r->body);
	return d;
}
#define EVAL(s, msg) eval_at((s), (msg), __FILE__, __LINE__)

/* Evaluates {"messages": msgs}; asserts an array of decisions, one per message. */
static json_t *eval_batch_at(e2e_server *s, const json_t *msgs, const char *file, int line)
{
	json_t *body = J("{s:O}", "messages", msgs);
	e2e_response *r = eval_raw(s, e2e_dumps(body));
	json_t *res = e2e_assert_ok_at(r, 200, file, line);
	if (!json_is_array(res) || json_array_size(res) != json_array_size(msgs))
		e2e_fail_at(file, line, "a batch of %zu messages answered %s",
		            json_array_size(msgs), e2e_dumps(res));
	size_t i;
	json_t *d;
	json_array_foreach(res, i, d)
	{
		decision_shape_at(d, file, line);
		size_t n = json_array_size(json_object_get(json_array_get(msgs, i), "recipients"));
		if (json_array_size(json_object_get(d, "recipients")) != n)
			e2e_fail_at(file, line, "message %zu: %zu recipients, %zu decisions", i, n,
			            json_array_size(json_object_get(d, "recipients")));
	}
	return res;
}
#define EVAL_BATCH(s, msgs) eval_batch_at((s), (msgs), __FILE__, __LINE__)

/* One expected match. */
static json_t *mt(json_int_t id, const char *field, const char *value, bool honored,
                  const char *verification)
{
	return J("{s:I, s:s, s:s, s:b, s:s}", "policy_id", id, "field", field, "value", value,
	         "honored", honored, "verification", verification);
}

/* The decision's matches equal `want` (NULL-terminated), in order. */
static void matches_at(const json_t *d, json_t *const *want, const char *file, int line)
{
	json_t *exp = e2e_keep(json_array());
	for (size_t i = 0; want[i]; i++)
		json_array_append(exp, want[i]);
	json_t *got = e2e_arr_at(d, "matches", file, line);
	if (!json_equal(got, exp))
		e2e_fail_at(file, line, "matches differ:\n  got      %s\n  expected %s",
		            e2e_dumps(got), e2e_dumps(exp));
}
#define MATCHES(d, ...) matches_at((d), (json_t *const[]){__VA_ARGS__, NULL}, __FILE__, __LINE__)
#define NO_MATCH(d)     matches_at((d), (json_t *const[]){NULL}, __FILE__, __LINE__)

/* Recipient i of decision d: its address, what is waived and what remains (as sets). */
static void rcpt_at(const json_t *d, size_t i, const char *address, unsigned waived,
                    unsigned remaining, bool skip, const char *file, int line)
{
	json_t *r = json_array_get(e2e_arr_at(d, "recipients", file, line), i);
	if (!r)
		e2e_fail_at(file, line, "no recipient %zu in %s", i, e2e_dumps(d));
	const char *addr = e2e_str_at(r, "address", file, line);
	unsigned w = disp_bits_at(e2e_arr_at(r, "waived", file, line), "waived", file, line);
	unsigned rem =
	    disp_bits_at(e2e_arr_at(r, "remaining", file, line), "remaining", file, line);
	bool sk = e2e_bool_at(r, "skip_link_following", file, line);
	if (strcmp(addr, address) != 0 || w != waived || rem != remaining || sk != skip)
		e2e_fail_at(file, line,
		            "recipient %zu: got %s waived %s remaining %s skip %d; expected %s "
		            "waived %s remaining %s skip %d\n  decision %s",
		            i, addr, fmt_bits(w), fmt_bits(rem), sk, address, fmt_bits(waived),
		            fmt_bits(remaining), skip, e2e_dumps(d));
}
#define RCPT(d, i, addr, waived, remaining, skip)                                                  \
	rcpt_at((d), (i), (addr), (waived), (remaining), (skip), __FILE__, __LINE__)

/* ---- policies ------------------------------------------------------------- */

static json_t *policy_at(e2e_server *s, const char *pattern, const char *type, bool regex,
                         bool trusted, bool acceptable, bool exempt, bool verify,
                         const char *file, int line)
{
	json_t *o = e2e_policy_obj(pattern, type, regex, trusted, acceptable, exempt, verify, NULL);
	json_t *p = e2e_create_at(s, e2e_dumps(o), file, line);
	if (strcmp(e2e_str_at(p, "pattern", file, line), pattern) != 0)
		e2e_fail_at(file, line, "created %s, stored %s", pattern, e2e_dumps(p));
	return p;
}
#define POLICY(s, pattern, type, regex, t, a, e, v)                                                \
	policy_at((s), (pattern), (type), (regex), (t), (a), (e), (v), __FILE__, __LINE__)

#define ID(p) E2E_INT((p), "id")

static json_t *patch_at(e2e_server *s, json_int_t id, const char *body, const char *file,
                        int line)
{
	e2e_response *r = e2e_send(s, "PATCH", body, "%s/%lld", s->policies, (long long)id);
	json_t *p = e2e_assert_ok_at(r, 200, file, line);
	e2e_assert_policy_at(p, file, line);
	return p;
}
#define PATCH(s, id, body) patch_at((s), (id), (body), __FILE__, __LINE__)

static void delete_at(e2e_server *s, json_int_t id, const char *file, int line)
{
	e2e_response *r = e2e_send(s, "DELETE", NULL, "%s/%lld", s->policies, (long long)id);
	json_t *res = e2e_assert_ok_at(r, 200, file, line);
	if (e2e_int_at(res, "id", file, line) != id)
		e2e_fail_at(file, line, "deleted %lld, answered %s", (long long)id, r->body);
}
#define DELETE(s, id) delete_at((s), (id), __FILE__, __LINE__)

/* A message from `from` (envelope and header) to one recipient, nothing else. */
static json_t *msg_from(const char *envelope_from, const char *header_from, const char *rcpt)
{
	json_t *m = J("{s:[s]}", "recipients", rcpt);
	if (envelope_from)
		json_object_set_new(m, "envelope_from", json_string(envelope_from));
	if (header_from)
		json_object_set_new(m, "header_from", json_string(header_from));
	return m;
}

/*
 * The probe of one plain EMAIL address: envelope_from = the only recipient =
 * `address`, with SPF passing for its domain.  A policy on that address (and
 * no other) matches it as a sender (trusted or acceptable) and/or as an
 * exempt recipient.
 */
static json_t *probe(const char *address)
{
	const char *at = strrchr(address, '@');
	return J("{s:s, s:[s], s:{s:{s:s, s:s}}}", "envelope_from", address, "recipients",
	         address, "auth", "spf", "result", "pass", "domain", at ? at + 1 : "");
}

/* The decision for probe(address) given the one policy on it (NULL: none). */
static void check_probe_at(const json_t *d, const json_t *policy, const char *address,
                           const char *file, int line)
{
	json_t *want[3] = {NULL, NULL, NULL};
	unsigned waived = 0;
	bool skip = false;
	if (policy) {
		json_int_t id = e2e_int_at(policy, "id", file, line);
		bool t = e2e_bool_at(policy, "is_trusted_sender", file, line);
		bool a = e2e_bool_at(policy, "is_acceptable_sender", file, line);
		bool e = e2e_bool_at(policy, "is_exempt_recipient", file, line);
		bool v = e2e_bool_at(policy, "verify_sender", file, line);
		size_t n = 0;
		if (t || a)
			want[n++] = mt(id, "envelope_from", address, true, v ? SPF : NR);
		if (e)
			want[n++] = mt(id, "recipient", address, true, v ? MSG : NR);
		waived = t || e ? ALL6 : a ? ACC : 0;
		skip = t;
	}
	matches_at(d, want, file, line);
	rcpt_at(d, 0, address, waived, ALL6 & ~waived, skip, file, line);
}

/*
 * A model of plain EMAIL policies: slot i holds its current policy (NULL
 * once deleted) and address; `dead` holds addresses no policy may match
 * (deleted, or renamed away).
 */
typedef struct model {
	json_t **policy;
	const char **address;
	size_t n, cap;
	const char **dead;
	size_t n_dead;
} model;

static model *model_new(size_t cap)
{
	model *m = e2e_calloc(1, sizeof(*m));
	m->cap = cap;
	m->policy = e2e_calloc(cap, sizeof(*m->policy));
	m->address = e2e_calloc(cap, sizeof(*m->address));
	m->dead = e2e_calloc(cap * 2, sizeof(*m->dead));
	return m;
}

static void model_add(model *m, json_t *p)
{
	assert_true(m->n < m->cap);
	m->policy[m->n] = p;
	m->address[m->n] = E2E_STR(p, "pattern");
	m->n++;
}

static void model_set(model *m, size_t i, json_t *p)
{
	const char *pattern = E2E_STR(p, "pattern");
	if (strcmp(pattern, m->address[i]) != 0)
		m->dead[m->n_dead++] = m->address[i];
	m->policy[i] = p;
	m->address[i] = pattern;
}

static void model_delete(model *m, size_t i)
{
	m->dead[m->n_dead++] = m->address[i];
	m->policy[i] = NULL;
}

#define ALL_SLOTS ((size_t)-1)

/*
 * One evaluation batch probing live policies and dead addresses: all of
 * them when `phase` is ALL_SLOTS; otherwise slot `touched`, the newest dead
 * address, and the sixteenth of the rest selected by `phase` (a rotating
 * sample, so consecutive calls cover everything).
 */
static void check_model_at(e2e_server *s, const model *m, size_t phase, size_t touched,
                           const char *file, int line)
{
#define PICK(i, newest) (phase == ALL_SLOTS || (i) == (newest) || (i) % 16 == phase % 16)
	json_t *msgs = e2e_keep(json_array());
	for (size_t i = 0; i < m->n; i++)
		if (m->policy[i] && PICK(i, touched))
			json_array_append(msgs, probe(m->address[i]));
	for (size_t i = 0; i < m->n_dead; i++)
		if (PICK(i, m->n_dead - 1))
			json_array_append(msgs, probe(m->dead[i]));
	if (json_array_size(msgs) == 0)
		return;
	json_t *res = eval_batch_at(s, msgs, file, line);
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->policy[i] && PICK(i, touched))
			check_probe_at(json_array_get(res, k++), m->policy[i], m->address[i], file,
			               line);
	for (size_t i = 0; i < m->n_dead; i++)
		if (PICK(i, m->n_dead - 1))
			check_probe_at(json_array_get(res, k++), NULL, m->dead[i], file, line);
#undef PICK
}
#define CHECK_MODEL(s, m) check_model_at((s), (m), ALL_SLOTS, ALL_SLOTS, __FILE__, __LINE__)
/* After write number `n` to slot `touched`: a sample, and everything every 32 writes. */
#define CHECK_WRITE(s, m, n, touched)                                                              \
	check_model_at((s), (m), (n) % 32 == 0 ? ALL_SLOTS : (n), (touched), __FILE__, __LINE__)

/* ==== 1. the life cycle of one policy: create, evaluate, edit, evaluate, delete ==== */

E2E_TEST(email_policy_lifecycle)
{
	json_t *p = POLICY(s, "alice@partner.example", "EMAIL", false, true, false, false, false);
	json_int_t id = ID(p);
	json_t *alice = msg_from("alice@partner.example", "someone@elsewhere.example",
	                         "r@corp.example");
	json_t *sub = msg_from("ALICE+news@Partner.Example", NULL, "r@corp.example");
	json_t *bob = msg_from(NULL, "bob@partner.example", "r@corp.example");

	/* trusted: every verdict waived, links skipped; subaddresses match */
	json_t *d = EVAL(s, alice);
	MATCHES(d, mt(id, "envelope_from", "alice@partner.example", true, NR));
	RCPT(d, 0, "r@corp.example", ALL6, 0, true);
	d = EVAL(s, sub);
	MATCHES(d, mt(id, "envelope_from", "ALICE+news@Partner.Example", true, NR));
	RCPT(d, 0, "r@corp.example", ALL6, 0, true);
	NO_MATCH(EVAL(s, bob));

	/* trusted -> acceptable: in effect for the very next evaluation */
	PATCH(s, id, "{\"is_trusted_sender\":false,\"is_acceptable_sender\":true}");
	d = EVAL(s, alice);
	MATCHES(d, mt(id, "envelope_from", "alice@partner.example", true, NR));
	RCPT(d, 0, "r@corp.example", ACC, STAND, false);

	/* verify_sender on: matched, reported, honoured no more */
	PATCH(s, id, "{\"verify_sender\":true}");
	d = EVAL(s, alice);
	MATCHES(d, mt(id, "envelope_from", "alice@partner.example", false, SNA));
	RCPT(d, 0, "r@corp.example", 0, ALL6, false);

	/* a new pattern: the old address no longer matches, the new one does */
	PATCH(s, id, "{\"pattern\":\"bob@partner.example\",\"verify_sender\":false}");
	d = EVAL(s, alice);
	NO_MATCH(d);
	RCPT(d, 0, "r@corp.example", 0, ALL6, false);
	NO_MATCH(EVAL(s, sub));
	d = EVAL(s, bob);
	MATCHES(d, mt(id, "header_from", "bob@partner.example", true, NR));
	RCPT(d, 0, "r@corp.example", ACC, STAND, false);

	/* exempt recipient instead of a sender policy */
	PATCH(s, id, "{\"is_acceptable_sender\":false,\"is_exempt_recipient\":true}");
	NO_MATCH(EVAL(s, bob));
	d = EVAL(s, msg_from(NULL, "bob@partner.example", "bob@partner.example"));
	MATCHES(d, mt(id, "recipient", "bob@partner.example", true, NR));
	RCPT(d, 0, "bob@partner.example", ALL6, 0, false);

	DELETE(s, id);
	d = EVAL(s, msg_from("bob@partner.example", "bob@partner.example", "bob@partner.example"));
	NO_MATCH(d);
	RCPT(d, 0, "bob@partner.example", 0, ALL6, false);
	NO_MATCH(EVAL(s, alice));
}

E2E_TEST(domain_policy_lifecycle)
{
	json_t *p = POLICY(s, "Partner.Example", "DOMAIN", false, true, false, false, false);
	json_int_t id = ID(p);
	json_t *m = msg_from(NULL, "x@PARTNER.example", "r@corp.example");
	json_t *subdomain = msg_from("x@mail.partner.example", "y@mail.partner.example",
	                             "r@corp.example");
	json_t *other = msg_from("z@other.example", NULL, "r@corp.example");

	json_t *d = EVAL(s, m);
	MATCHES(d, mt(id, "header_from", "partner.example", true, NR));
	RCPT(d, 0, "r@corp.example", ALL6, 0, true);
	NO_MATCH(EVAL(s, subdomain)); /* DOMAIN is exact */
	NO_MATCH(EVAL(s, other));

	PATCH(s, id, "{\"is_trusted_sender\":false,\"is_acceptable_sender\":true}");
	d = EVAL(s, m);
	MATCHES(d, mt(id, "header_from", "partner.example", true, NR));
	RCPT(d, 0, "r@corp.example", ACC, STAND, false);

	PATCH(s, id, "{\"pattern\":\"other.example\"}");
	d = EVAL(s, m);
	NO_MATCH(d);
	RCPT(d, 0, "r@corp.example", 0, ALL6, false);
	d = EVAL(s, other);
	MATCHES(d, mt(id, "envelope_from", "other.example", true, NR));
	RCPT(d, 0, "r@corp.example", ACC, STAND, false);

	DELETE(s, id);
	NO_MATCH(EVAL(s, other));
	NO_MATCH(EVAL(s, m));
}

E2E_TEST(ip_policy_lifecycle)
{
	json_t *p = POLICY(s, "8.8.8.0/24", "IP", false, true, false, false, true);
	json_int_t id = ID(p);
	json_t *v4 = J("{s:s, s:[s]}", "client_ip", "8.8.8.8", "recipients", "r@corp.example");
	json_t *v4_auth = J("{s:s, s:[s], s:{s:[{s:s, s:s}]}}", "client_ip", "8.8.8.8",
	                    "recipients", "r@corp.example", "auth", "dkim", "result", "pass",
	                    "domain", "anything.example");
	json_t *v4_out = J("{s:s, s:[s]}", "client_ip", "8.8.9.8", "recipients", "r@corp.example");
	json_t *v6 = J("{s:s, s:[s]}", "client_ip", "2606:4700::1", "recipients", "r@corp.example");

	/* verify_sender: the message must pass something */
	json_t *d = EVAL(s, v4);
	MATCHES(d, mt(id, "client_ip", "8.8.8.8", false, MNA));
	RCPT(d, 0, "r@corp.example", 0, ALL6, false);
	d = EVAL(s, v4_auth);
	MATCHES(d, mt(id, "client_ip", "8.8.8.8", true, MSG));
	RCPT(d, 0, "r@corp.example", ALL6, 0, true);
	NO_MATCH(EVAL(s, v4_out));
	NO_MATCH(EVAL(s, v6));

	PATCH(s, id, "{\"verify_sender\":false}");
	d = EVAL(s, v4);
	MATCHES(d, mt(id, "client_ip", "8.8.8.8", true, NR));
	RCPT(d, 0, "r@corp.example", ALL6, 0, true);

	PATCH(s, id, "{\"pattern\":\"2606:4700::/32\",\"is_trusted_sender\":false,"
	             "\"is_acceptable_sender\":true}");
	NO_MATCH(EVAL(s, v4));
	d = EVAL(s, v6);
	MATCHES(d, mt(id, "client_ip", "2606:4700::1", true, NR));
	RCPT(d, 0, "r@corp.example", ACC, STAND, false);

	DELETE(s, id);
	NO_MATCH(EVAL(s, v6));
	NO_MATCH(EVAL(s, v4));
}

E2E_TEST(regex_policy_lifecycle)
{
	/* a DOMAIN regex: address domains and server_name, the whole subject */
	json_t *p = POLICY(s, "(.+\\.)?partner\\.example", "DOMAIN", true, false, true, false, false);
	json_int_t id = ID(p);
	json_t *m = J("{s:s, s:s, s:s, s:[s]}", "envelope_from", "b@partner.example", "header_from",
	              "a@Mail.Partner.example", "server_name", "mx1.partner.example", "recipients",
	              "r@corp.example");
	json_t *near = J("{s:s, s:s, s:[s]}", "header_from", "a@evilpartner.example", "server_name",
	                 "partner.example.evil", "recipients", "r@corp.example");
	json_t *other = J("{s:s, s:[s]}", "header_from", "a@mail.other.example", "recipients",
	                  "r@corp.example");
	json_t *other_apex = J("{s:s, s:[s]}", "header_from", "a@other.example", "recipients",
	                       "r@corp.example");

	json_t *d = EVAL(s, m);
	MATCHES(d, mt(id, "envelope_from", "partner.example", true, NR),
	        mt(id, "header_from", "mail.partner.example", true, NR),
	        mt(id, "server_name", "mx1.partner.example", true, NR));
	RCPT(d, 0, "r@corp.example", ACC, STAND, false);
	NO_MATCH(EVAL(s, near));
	NO_MATCH(EVAL(s, other));

	PATCH(s, id, "{\"pattern\":\".*\\\\.other\\\\.example\",\"is_acceptable_sender\":false,"
	             "\"is_trusted_sender\":true}");
	NO_MATCH(EVAL(s, m));
	NO_MATCH(EVAL(s, other_apex));
	d = EVAL(s, other);
	MATCHES(d, mt(id, "header_from", "mail.other.example", true, NR));
	RCPT(d, 0, "r@corp.example", ALL6, 0, true);

	DELETE(s, id);
	NO_MATCH(EVAL(s, other));

	/* an EMAIL regex for exempt recipients, then turned into a sender policy */
	json_t *q = POLICY(s, "ops-[0-9]+@corp\\.example", "EMAIL", true, false, false, true, false);
	json_int_t qid = ID(q);
	json_t *to_ops = J("{s:s, s:[s,s,s]}", "envelope_from", "ops-7@corp.example", "recipients",
	                   "ceo@corp.example", "OPS-12@corp.example", "ops-x@corp.example");
	d = EVAL(s, to_ops);
	MATCHES(d, mt(qid, "recipient", "OPS-12@corp.example", true, NR));
	RCPT(d, 0, "ceo@corp.example", 0, ALL6, false);
	RCPT(d, 1, "OPS-12@corp.example", ALL6, 0, false);
	RCPT(d, 2, "ops-x@corp.example", 0, ALL6, false);

	PATCH(s, qid, "{\"is_exempt_recipient\":false,\"is_trusted_sender\":true}");
	d = EVAL(s, to_ops);
	MATCHES(d, mt(qid, "envelope_from", "ops-7@corp.example", true, NR));
	for (size_t i = 0; i < 3; i++)
		RCPT(d, i, E2E_STR(json_array_get(E2E_ARR(d, "recipients"), i), "address"), ALL6, 0,
		     true);

	DELETE(s, qid);
	d = EVAL(s, to_ops);
	NO_MATCH(d);
	RCPT(d, 1, "OPS-12@corp.example", 0, ALL6, false);
}

/* ==== 2. batches of writes ================================================= */

E2E_TEST(batch_writes_are_in_effect_at_once_and_failed_batches_change_nothing)
{
	enum { N = 24 };
	model *m = model_new(64);
	json_t *posts = e2e_keep(json_array());
	for (int i = 0; i < N; i++)
		json_array_append(posts, e2e_policy_obj(e2e_strf("b%d@batch.example", i), "EMAIL",
		                                        false, i % 3 == 0, i % 3 == 1, i % 3 == 2,
		                                        i % 2 == 0, NULL));
	json_array_append(posts, e2e_policy_obj("1.1.1.0/24", "IP", false, true, false, false,
	                                        false, NULL));
	json_array_append(posts, e2e_policy_obj("rx-[0-9]+@batch\\.example", "EMAIL", true, false,
	                                        false, true, false, NULL));
	json_t *made = E2E_ARR(E2E_BATCH(s, e2e_batch_posts_body(posts)), "posts");
	assert_int_equal(json_array_size(made), N + 2);
	for (int i = 0; i < N; i++)
		model_add(m, json_array_get(made, i));
	json_int_t ip_id = ID(json_array_get(made, N));
	json_int_t rx_id = ID(json_array_get(made, N + 1));
	CHECK_MODEL(s, m);
	json_t *extra = J("[{s:s, s:[s,s]}]", "client_ip", "1.1.1.1", "recipients",
	                  "x@batch.example", "rx-42@batch.example");
	json_t *d = json_array_get(EVAL_BATCH(s, extra), 0);
	MATCHES(d, mt(rx_id, "recipient", "rx-42@batch.example", true, NR),
	        mt(ip_id, "client_ip", "1.1.1.1", true, NR));
	RCPT(d, 0, "x@batch.example", ALL6, 0, true);
	RCPT(d, 1, "rx-42@batch.example", ALL6, 0, true);

	/* deletes, patches (flags, verify, pattern), puts and posts in one batch */
	json_t *b = J("{s:[], s:[], s:[], s:[]}", "deletes", "patches", "puts", "posts");
	for (int i = 0; i < 5; i++)
		json_array_append_new(json_object_get(b, "deletes"),
		                      json_pack("{s:I}", "id", ID(m->policy[i])));
	for (int i = 5; i < 12; i++) {
		bool t = E2E_BOOL(m->policy[i], "is_trusted_sender");
		bool a = E2E_BOOL(m->policy[i], "is_acceptable_sender");
		bool e = E2E_BOOL(m->policy[i], "is_exempt_recipient");
		bool v = E2E_BOOL(m->policy[i], "verify_sender");
		/* rotate trusted -> acceptable -> exempt -> trusted, flip verify */
		json_array_append_new(json_object_get(b, "patches"),
		                      json_pack("{s:I, s:b, s:b, s:b, s:b}", "id", ID(m->policy[i]),
		                                "is_trusted_sender", e, "is_acceptable_sender", t,
		                                "is_exempt_recipient", a, "verify_sender", !v));
	}
	json_array_append_new(json_object_get(b, "patches"),
	                      json_pack("{s:I, s:s}", "id", ID(m->policy[12]), "pattern",
	                                "renamed12@batch.example"));
	json_t *put = json_copy(e2e_policy_obj("put13@batch.example", "EMAIL", false, false, true,
	                                       false, false, NULL));
	json_object_set_new(put, "id", json_integer(ID(m->policy[13])));
	json_array_append_new(json_object_get(b, "puts"), put);
	for (int i = 0; i < 6; i++)
		json_array_append(json_object_get(b, "posts"),
		                  e2e_policy_obj(e2e_strf("n%d@batch.example", i), "EMAIL", false,
		                                 i % 2 == 0, i % 2 == 1, false, false, NULL));
	json_array_append_new(json_object_get(b, "deletes"), json_pack("{s:I}", "id", ip_id));
	json_t *res = E2E_BATCH(s, e2e_dumps(b));

	for (int i = 0; i < 5; i++)
		model_delete(m, (size_t)i);
	json_t *patched = E2E_ARR(res, "patches");
	assert_int_equal(json_array_size(patched), 8);
	for (int i = 5; i <= 12; i++)
		model_set(m, (size_t)i, json_array_get(patched, (size_t)i - 5));
	assert_int_equal(json_array_size(E2E_ARR(res, "puts")), 1);
	model_set(m, 13, json_array_get(E2E_ARR(res, "puts"), 0));
	json_t *posted = E2E_ARR(res, "posts");
	assert_int_equal(json_array_size(posted), 6);
	for (size_t i = 0; i < 6; i++)
		model_add(m, json_array_get(posted, i));
	CHECK_MODEL(s, m);
	d = json_array_get(EVAL_BATCH(s, extra), 0);
	MATCHES(d, mt(rx_id, "recipient", "rx-42@batch.example", true, NR));
	RCPT(d, 0, "x@batch.example", 0, ALL6, false);

	/* failing batches: nothing they held is in effect, nothing they undid is lost */
	json_t *probes = e2e_keep(json_array());
	for (size_t i = 0; i < m->n; i++)
		if (m->policy[i])
			json_array_append(probes, probe(m->address[i]));
	json_array_append(probes, probe("late@batch.example"));
	json_array_extend(probes, extra);
	json_t *before = EVAL_BATCH(s, probes);
	json_t *list_before = E2E_LIST_ALL(s);

	const char *failing[] = {
	    /* an invalid post after valid deletes, patches and posts */
	    e2e_strf("{\"deletes\":[{\"id\":%lld},{\"id\":%lld}],\"patches\":[{\"id\":%lld,"
	             "\"is_trusted_sender\":true,\"is_acceptable_sender\":false,"
	             "\"is_exempt_recipient\":false,\"pattern\":\"late@batch.example\"}],"
	             "\"puts\":[],\"posts\":[%s,%s]}",
	             (long long)ID(m->policy[14]), (long long)rx_id, (long long)ID(m->policy[15]),
	             e2e_dumps(e2e_policy_obj("late2@batch.example", "EMAIL", false, true, false,
	                                      false, false, NULL)),
	             e2e_dumps(e2e_policy_obj("not an address", "EMAIL", false, true, false,
	                                      false, false, NULL))),
	    /* a duplicate of a live policy in posts */
	    e2e_strf("{\"deletes\":[{\"id\":%lld}],\"patches\":[],\"puts\":[],\"posts\":[%s]}",
	             (long long)ID(m->policy[16]),
	             e2e_dumps(e2e_policy_obj(m->address[17], "EMAIL", false, true, false, false,
	                                      false, NULL))),
	    /* a delete of a policy that does not exist */
	    e2e_strf("{\"deletes\":[{\"id\":%lld},{\"id\":2147483000}],\"patches\":[],"
	             "\"puts\":[],\"posts\":[%s]}",
	             (long long)ID(m->policy[18]),
	             e2e_dumps(e2e_policy_obj("late@batch.example", "EMAIL", false, true, false,
	                                      false, false, NULL))),
	};
	for (size_t i = 0; i < sizeof(failing) / sizeof(failing[0]); i++) {
		e2e_response *r = e2e_send(s, "POST", failing[i], "%s/batch", s->policies);
		E2E_CHECK(r->status == 400 || r->status == 404,
		          "failing batch %zu: expected a 400 or 404, got %ld: %s", i, r->status,
		          r->body);
		E2E_ERR(r, r->status, 0, NULL);
		E2E_JSON_EQ(EVAL_BATCH(s, probes), before);
	}
	E2E_ERR(e2e_send(s, "POST", failing[0], "%s/batch", s->policies), 400, 1001,
	        "/posts/1/pattern");
	E2E_JSON_EQ(E2E_LIST_ALL(s), list_before);
	CHECK_MODEL(s, m);
}

/* ==== 3. more single writes than the delta holds before a base rebuild ===== */

E2E_TEST(every_write_is_in_effect_across_background_rebuilds)
{
	enum { N = 150 };
	model *m = model_new(N + 10);
	size_t writes = 0;

	for (int i = 0; i < N; i++) {
		model_add(m, POLICY(s, e2e_strf("w%d@many.example", i), "EMAIL", false, i % 3 == 0,
		                    i % 3 == 1, i % 3 == 2, i % 2 == 0));
		writes++;
		CHECK_WRITE(s, m, writes, m->n - 1);
	}
	/* edits: every 5th policy, renamed (every 10th) or flags rotated and verify flipped */
	for (size_t i = 0; i < N; i += 5) {
		json_t *p = m->policy[i];
		const char *body;
		if (i % 10 == 0) {
			body = e2e_strf("{\"pattern\":\"w%zu-renamed@many.example\"}", i);
		} else {
			bool t = E2E_BOOL(p, "is_trusted_sender");
			bool a = E2E_BOOL(p, "is_acceptable_sender");
			bool e = E2E_BOOL(p, "is_exempt_recipient");
			body = e2e_strf("{\"is_trusted_sender\":%s,\"is_acceptable_sender\":%s,"
			                "\"is_exempt_recipient\":%s,\"verify_sender\":%s}",
			                e ? "true" : "false", t ? "true" : "false",
			                a ? "true" : "false",
			                E2E_BOOL(p, "verify_sender") ? "false" : "true");
		}
		model_set(m, i, PATCH(s, ID(p), body));
		writes++;
		CHECK_WRITE(s, m, writes, i);
	}
	/* deletes: every 7th, renamed ones included */
	for (size_t i = 3; i < N; i += 7) {
		DELETE(s, ID(m->policy[i]));
		model_delete(m, i);
		writes++;
		CHECK_WRITE(s, m, writes, i);
	}
	/* and creates again on top of the deletes */
	for (int i = 0; i < 10; i++) {
		model_add(m, POLICY(s, e2e_strf("again%d@many.example", i), "EMAIL", false, true,
		                    false, false, false));
		writes++;
		CHECK_WRITE(s, m, writes, m->n - 1);
	}
	CHECK_MODEL(s, m);
	assert_true(writes > 3 * 64);

	/* every policy the list holds is in effect exactly as stored, and nothing else */
	json_t *all = E2E_LIST_ALL(s);
	size_t live = 0;
	for (size_t i = 0; i < m->n; i++)
		live += m->policy[i] != NULL;
	assert_int_equal(json_array_size(all), live);
	json_t *msgs = e2e_keep(json_array());
	size_t i;
	json_t *p;
	json_array_foreach(all, i, p) json_array_append(msgs, probe(E2E_STR(p, "pattern")));
	json_t *res = EVAL_BATCH(s, msgs);
	json_array_foreach(all, i, p)
	{
		check_probe_at(json_array_get(res, i), p, E2E_STR(p, "pattern"), __FILE__,
		               __LINE__);
		size_t k = 0;
		while (k < m->n && !(m->policy[k] && ID(m->policy[k]) == ID(p)))
			k++;
		E2E_CHECK(k < m->n, "the list holds policy %lld, which the test never wrote",
		          (long long)ID(p));
		E2E_JSON_EQ(p, m->policy[k]);
	}
}

/* ==== 4. restarts =========================================================== */

E2E_TEST(evaluations_survive_sigterm_and_sigkill_restarts)
{
	json_t *many = E2E_CREATE_MANY(s, "many", 80); /* trusted, verify_sender */
	json_t *dom = POLICY(s, "restart.example", "DOMAIN", false, false, true, false, false);
	json_t *ip = POLICY(s, "2a00:1450::/32", "IP", false, true, false, false, false);
	json_t *rx = POLICY(s, "(.+\\.)?rx\\.example", "DOMAIN", true, true, false, false, false);
	json_t *ex = POLICY(s, "vip@restart.example", "EMAIL", false, false, false, true, false);

	json_t *msgs = e2e_keep(json_array());
	size_t i;
	json_t *p;
	json_array_foreach(many, i, p) json_array_append(msgs, probe(E2E_STR(p, "pattern")));
	json_array_append(msgs, J("{s:s, s:s, s:s, s:[s,s]}", "header_from", "a@restart.example",
	                          "client_ip", "2a00:1450:4001::200e", "server_name",
	                          "mx.rx.example", "recipients", "vip@restart.example",
	                          "other@restart.example"));
	json_t *before = EVAL_BATCH(s, msgs);
	json_array_foreach(many, i, p)
	    check_probe_at(json_array_get(before, i), p, E2E_STR(p, "pattern"), __FILE__, __LINE__);
	json_t *d = json_array_get(before, 80);
	MATCHES(d, mt(ID(dom), "header_from", "restart.example", true, NR),
	        mt(ID(ex), "recipient", "vip@restart.example", true, NR),
	        mt(ID(ip), "client_ip", "2a00:1450:4001::200e", true, NR),
	        mt(ID(rx), "server_name", "mx.rx.example", true, NR));
	RCPT(d, 0, "vip@restart.example", ALL6, 0, true);
	RCPT(d, 1, "other@restart.example", ALL6, 0, true);

	e2e_server_stop(s);
	e2e_server_restart(s);
	E2E_JSON_EQ(EVAL_BATCH(s, msgs), before);

	/* writes after the restart, then SIGKILL: the reload sees them too */
	PATCH(s, ID(ip), "{\"is_trusted_sender\":false,\"is_acceptable_sender\":true}");
	DELETE(s, ID(rx));
	DELETE(s, ID(json_array_get(many, 0)));
	json_t *late = POLICY(s, "late@later.example", "EMAIL", false, true, false, false, false);
	json_array_append(msgs, probe("late@later.example"));
	json_t *mid = EVAL_BATCH(s, msgs);
	check_probe_at(json_array_get(mid, 0), NULL, E2E_STR(json_array_get(many, 0), "pattern"),
	               __FILE__, __LINE__);
	d = json_array_get(mid, 80);
	MATCHES(d, mt(ID(dom), "header_from", "restart.example", true, NR),
	        mt(ID(ex), "recipient", "vip@restart.example", true, NR),
	        mt(ID(ip), "client_ip", "2a00:1450:4001::200e", true, NR));
	RCPT(d, 0, "vip@restart.example", ALL6, 0, false);
	RCPT(d, 1, "other@restart.example", ACC, STAND, false);
	check_probe_at(json_array_get(mid, 81), late, "late@later.example", __FILE__, __LINE__);

	e2e_server_kill(s);
	e2e_server_restart(s);
	E2E_JSON_EQ(EVAL_BATCH(s, msgs), mid);
}

/* ==== 5. validation, routes and credentials ================================ */

typedef struct bad_case {
	const char *body;
	const char *pointer; /* NULL: the error is about the whole body */
} bad_case;

static void reject_at(e2e_server *s, const char *body, const char *pointer, const char *file,
                      int line)
{
	e2e_response *r = eval_raw(s, body);
	if (r->status != 400)
		e2e_fail_at(file, line, "expected 400 for %.300s, got %ld: %.500s", body, r->status,
		            r->body);
	json_t *err = e2e_assert_err_at(r, 400, 1001, pointer, file, line);
	if (!pointer && e2e_error_pointer(err))
		e2e_fail_at(file, line, "%.300s: no pointer expected: %s", body, r->body);
	if (!*e2e_str_at(err, "message", file, line))
		e2e_fail_at(file, line, "empty error message: %s", r->body);
}
#define REJECT(s, body, pointer) reject_at((s), (body), (pointer), __FILE__, __LINE__)

#define RCPTS "\"recipients\":[\"r@corp.example\"]"

E2E_TEST(invalid_messages_are_400_with_a_pointer)
{
	static const bad_case cases[] = {
	    /* the body */
	    {"[]", NULL},
	    {"[{" RCPTS "}]", NULL},
	    {"\"r@corp.example\"", NULL},
	    {"42", NULL},
	    {"null", NULL},
	    /* recipients */
	    {"{}", "/recipients"},
	    {"{\"envelope_from\":\"a@b.example\"}", "/recipients"},
	    {"{\"recipients\":[]}", "/recipients"},
	    {"{\"recipients\":null}", "/recipients"},
	    {"{\"recipients\":\"r@corp.example\"}", "/recipients"},
	    {"{\"recipients\":{}}", "/recipients"},
	    {"{\"recipients\":[\"r@corp.example\",7]}", "/recipients/1"},
	    {"{\"recipients\":[null]}", "/recipients/0"},
	    /* wrong types, field by field */
	    {"{" RCPTS ",\"envelope_from\":1}", "/envelope_from"},
	    {"{" RCPTS ",\"envelope_from\":[\"a@b.example\"]}", "/envelope_from"},
	    {"{" RCPTS ",\"header_from\":true}", "/header_from"},
	    {"{" RCPTS ",\"header_from\":{}}", "/header_from"},
	    {"{" RCPTS ",\"client_ip\":16843009}", "/client_ip"},
	    {"{" RCPTS ",\"server_name\":[]}", "/server_name"},
	    {"{" RCPTS ",\"reply_to\":\"a@b.example\"}", "/reply_to"},
	    {"{" RCPTS ",\"reply_to\":[\"a@b.example\",false]}", "/reply_to/1"},
	    {"{" RCPTS ",\"authentication_results\":\"mx.example.com; spf=pass\"}",
	     "/authentication_results"},
	    {"{" RCPTS ",\"authentication_results\":[1]}", "/authentication_results/0"},
	    {"{" RCPTS ",\"trusted_authserv_ids\":\"mx.example.com\"}", "/trusted_authserv_ids"},
	    {"{" RCPTS ",\"trusted_authserv_ids\":[\"mx.example.com\",{}]}",
	     "/trusted_authserv_ids/1"},
	    {"{" RCPTS ",\"dispositions\":\"SPAM\"}", "/dispositions"},
	    {"{" RCPTS ",\"dispositions\":[\"SPAM\",3]}", "/dispositions/1"},
	    {"{" RCPTS ",\"auth\":5}", "/auth"},
	    {"{" RCPTS ",\"auth\":[]}", "/auth"},
	    {"{" RCPTS ",\"auth\":{\"spf\":\"pass\"}}", "/auth/spf"},
	    {"{" RCPTS ",\"auth\":{\"dmarc\":[]}}", "/auth/dmarc"},
	    {"{" RCPTS ",\"auth\":{\"dkim\":{\"result\":\"pass\"}}}", "/auth/dkim"},
	    {"{" RCPTS ",\"auth\":{\"dkim\":[\"pass\"]}}", "/auth/dkim/0"},
	    {"{" RCPTS ",\"auth\":{\"spf\":{\"result\":1}}}", "/auth/spf/result"},
	    {"{" RCPTS ",\"auth\":{\"spf\":{\"result\":\"pass\",\"domain\":1}}}",
	     "/auth/spf/domain"},
	    {"{" RCPTS ",\"auth\":{\"dmarc\":{\"result\":\"pass\",\"from_domain\":[]}}}",
	     "/auth/dmarc/from_domain"},
	    {"{" RCPTS ",\"auth\":{\"dkim\":[{\"result\":\"pass\",\"domain\":\"a.example\"},"
	     "{\"result\":\"pass\",\"domain\":false}]}}",
	     "/auth/dkim/1/domain"},
	    /* a sub-object without its result */
	    {"{" RCPTS ",\"auth\":{\"spf\":{\"domain\":\"a.example\"}}}", "/auth/spf"},
	    /* unknown fields */
	    {"{" RCPTS ",\"subject\":\"hi\"}", "/subject"},
	    {"{" RCPTS ",\"Recipients\":[\"r@corp.example\"]}", "/Recipients"},
	    {"{" RCPTS ",\"auth\":{\"arc\":{\"result\":\"pass\"}}}", "/auth/arc"},
	    {"{" RCPTS ",\"auth\":{\"spf\":{\"result\":\"pass\",\"helo\":\"a.example\"}}}",
	     "/auth/spf/helo"},
	    {"{" RCPTS ",\"auth\":{\"dmarc\":{\"result\":\"pass\",\"domain\":\"a.example\"}}}",
	     "/auth/dmarc/domain"},
	    {"{" RCPTS ",\"auth\":{\"dkim\":[{\"result\":\"pass\",\"selector\":\"s1\"}]}}",
	     "/auth/dkim/0/selector"},
	    /* values */
	    {"{" RCPTS ",\"client_ip\":\"1.2.3\"}", "/client_ip"},
	    {"{" RCPTS ",\"client_ip\":\"8.8.8.0/24\"}", "/client_ip"},
	    {"{" RCPTS ",\"client_ip\":\"mail.example.com\"}", "/client_ip"},
	    {"{" RCPTS ",\"client_ip\":\"256.1.1.1\"}", "/client_ip"},
	    {"{" RCPTS ",\"client_ip\":\"2001:db8:::1\"}", "/client_ip"},
	    {"{" RCPTS ",\"dispositions\":[\"SPAMMY\"]}", "/dispositions/0"},
	    {"{" RCPTS ",\"dispositions\":[\"SPAM\",\"QUARANTINE\"]}", "/dispositions/1"},
	    {"{" RCPTS ",\"dispositions\":[\"\"]}", "/dispositions/0"},
	    {"{" RCPTS ",\"auth\":{\"spf\":{\"result\":\"passed\"}}}", "/auth/spf/result"},
	    {"{" RCPTS ",\"auth\":{\"dmarc\":{\"result\":\"bestguesspass\"}}}",
	     "/auth/dmarc/result"},
	    {"{" RCPTS ",\"auth\":{\"dkim\":[{\"result\":\"pass\"},{\"result\":\"ok\"}]}}",
	     "/auth/dkim/1/result"},
	    /* invalid Authentication-Results values from a trusted authserv-id */
	    {"{" RCPTS ",\"trusted_authserv_ids\":[\"mx.example.com\"],"
	     "\"authentication_results\":[\"mx.example.com; dkim=pass (x\"]}",
	     "/authentication_results/0"},
	    {"{" RCPTS ",\"trusted_authserv_ids\":[\"mx.example.com\"],"
	     "\"authentication_results\":[\"mx.example.com; spf=pass smtp.mailfrom=a.example\","
	     "\"mx.example.com; spf=pass )\"]}",
	     "/authentication_results/1"},
	    {"{" RCPTS ",\"trusted_authserv_ids\":[\"mx.example.com\"],"
	     "\"authentication_results\":[\"\"]}",
	     "/authentication_results/0"},
	    {"{" RCPTS ",\"trusted_authserv_ids\":[\"mx.example.com\"],"
	     "\"authentication_results\":[\"; spf=pass\"]}",
	     "/authentication_results/0"},
	    /* batches */
	    {"{\"messages\":[]}", "/messages"},
	    {"{\"messages\":{}}", "/messages"},
	    {"{\"messages\":null}", "/messages"},
	    {"{\"messages\":[{" RCPTS "},{" RCPTS "},{" RCPTS ",\"client_ip\":\"999.1.1.1\"}]}",
	     "/messages/2/client_ip"},
	    {"{\"messages\":[{" RCPTS "},{" RCPTS "},{}]}", "/messages/2/recipients"},
	    {"{\"messages\":[{" RCPTS "},{" RCPTS "},7]}", "/messages/2"},
	    {"{\"messages\":[{" RCPTS "},{" RCPTS "},{" RCPTS ",\"auth\":{\"dkim\":[{\"result\":"
	     "\"pass\"},{\"result\":\"yes\"}]}}]}",
	     "/messages/2/auth/dkim/1/result"},
	    {"{\"messages\":[{" RCPTS "},{" RCPTS "},{" RCPTS ",\"trusted_authserv_ids\":[\"mx"
	     ".example.com\"],\"authentication_results\":[\"mx.example.com spf=pass\"]}]}",
	     "/messages/2/authentication_results/0"},
	    {"{\"messages\":[{" RCPTS "},{" RCPTS "},{" RCPTS ",\"dispositions\":[\"X\"]}]}",
	     "/messages/2/dispositions/0"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		REJECT(s, cases[i].body, cases[i].pointer);

	/* more than 100 reply_to, recipients, headers, ids; exactly 100 is fine */
	const char *lists[] = {"reply_to", "recipients", "authentication_results",
	                       "trusted_authserv_ids", "dispositions"};
	for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
		const char *item = strcmp(lists[k], "dispositions") == 0 ? "\"SPAM\""
		                   : strcmp(lists[k], "authentication_results") == 0
		                       ? "\"other.example; spf=pass\""
		                       : "\"a@b.example\"";
		char *hundred = e2e_strf("%s", item);
		for (int i = 1; i < 100; i++)
			hundred = e2e_strf("%s,%s", hundred, item);
		const char *base = strcmp(lists[k], "recipients") == 0 ? "" : RCPTS ",";
		char *ok = e2e_strf("{%s\"%s\":[%s]}", base, lists[k], hundred);
		E2E_OK(eval_raw(s, ok), 200);
		REJECT(s, e2e_strf("{%s\"%s\":[%s,%s]}", base, lists[k], hundred, item),
		       e2e_strf("/%s", lists[k]));
	}

	/* a value of 1024 bytes is fine, 1025 is not */
	char *local_1012 = e2e_repeat("a", 1012);
	const char *addr_1024 = e2e_strf("%s@example.com", local_1012);
	const char *addr_1025 = e2e_strf("a%s", addr_1024);
	assert_int_equal(strlen(addr_1024), 1024);
	static const char *const scalars[] = {"envelope_from", "header_from", "server_name"};
	for (size_t k = 0; k < 3; k++) {
		E2E_OK(eval_raw(s, e2e_strf("{" RCPTS ",\"%s\":\"%s\"}", scalars[k], addr_1024)),
		       200);
		REJECT(s, e2e_strf("{" RCPTS ",\"%s\":\"%s\"}", scalars[k], addr_1025),
		       e2e_strf("/%s", scalars[k]));
	}
	E2E_OK(eval_raw(s, e2e_strf("{\"recipients\":[\"%s\"],\"reply_to\":[\"%s\"]}", addr_1024,
	                            addr_1024)),
	       200);
	REJECT(s, e2e_strf("{\"recipients\":[\"r@corp.example\",\"%s\"]}", addr_1025),
	       "/recipients/1");
	REJECT(s, e2e_strf("{" RCPTS ",\"reply_to\":[\"%s\"]}", addr_1025), "/reply_to/0");
	REJECT(s,
	       e2e_strf("{" RCPTS ",\"trusted_authserv_ids\":[\"mx.example.com\"],"
	                "\"authentication_results\":[\"mx.example.com; spf=pass smtp.mailfrom=%s\"]}",
	                addr_1025),
	       "/authentication_results/0");
	/* the bound is in bytes: 1024 two-byte characters are too long */
	REJECT(s, e2e_strf("{" RCPTS ",\"header_from\":\"%s\"}", e2e_repeat("\xc3\xa9", 1024)),
	       "/header_from");

	/* 1000 messages are fine, 1001 are not */
	json_t *batch = J("{s:[]}", "messages");
	for (int i = 0; i < 1000; i++)
		json_array_append(json_object_get(batch, "messages"),
		                  msg_from(NULL, NULL, e2e_strf("r%d@corp.example", i)));
	json_t *res = E2E_OK(eval_raw(s, e2e_dumps(batch)), 200);
	assert_int_equal(json_array_size(res), 1000);
	for (size_t i = 0; i < 1000; i += 111)
		RCPT(json_array_get(res, i), 0, e2e_strf("r%zu@corp.example", i), 0, ALL6, false);
	json_array_append(json_object_get(batch, "messages"), msg_from(NULL, NULL, "x@y.example"));
	REJECT(s, e2e_dumps(batch), "/messages");

	/* the body rules shared with the rest of the API */
	e2e_request rq = {.method = "POST",
	                  .path = eval_path(s),
	                  .body = "{" RCPTS "}",
	                  .content_type = "text/plain"};
	E2E_ERR(e2e_do(s, &rq), 400, 1001, NULL);
	E2E_ERR(eval_raw(s, "{" RCPTS "," RCPTS "}"), 400, 1001, NULL);
	E2E_ERR(eval_raw(s, "{\"recipients\":"), 400, 1001, NULL);
	e2e_request empty = {.method = "POST", .path = eval_path(s)};
	E2E_ERR(e2e_do(s, &empty), 400, 1001, NULL);
}

/* A batch body with a field besides "messages": the pointer names that field. */
E2E_TEST(batch_with_another_field_names_it)
{
	REJECT(s, "{\"messages\":[{" RCPTS "}],\"other\":1}", "/other");
	REJECT(s, "{\"messages\":[{" RCPTS "}]," RCPTS "}", "/recipients");
}

/*
 * Structured auth domains must be domain names ("'x' is not a domain name"),
 * as the Authentication-Results parser drops a result whose domain is not.
 */
E2E_TEST(auth_domains_must_be_domain_names)
{
	static const char *const bad[] = {"not a domain", "a..example", "bad!.example"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		REJECT(s,
		       e2e_strf("{" RCPTS ",\"auth\":{\"spf\":{\"result\":\"pass\",\"domain\":"
		                "\"%s\"}}}",
		                bad[i]),
		       "/auth/spf/domain");
		REJECT(s,
		       e2e_strf("{" RCPTS ",\"auth\":{\"dmarc\":{\"result\":\"pass\","
		                "\"from_domain\":\"%s\"}}}",
		                bad[i]),
		       "/auth/dmarc/from_domain");
		REJECT(s,
		       e2e_strf("{" RCPTS ",\"auth\":{\"dkim\":[{\"result\":\"pass\","
		                "\"domain\":\"%s\"}]}}",
		                bad[i]),
		       "/auth/dkim/0/domain");
	}
}

E2E_TEST(routes_permissions_and_credentials)
{
	json_t *p = POLICY(s, "ok@perm.example", "EMAIL", false, true, false, false, false);
	const char *body = "{\"envelope_from\":\"ok@perm.example\"," RCPTS "}";
	const char *path = eval_path(s);

	/* with and without the /client/v4 prefix */
	json_t *d = E2E_OK(eval_raw(s, body), 200);
	MATCHES(d, mt(ID(p), "envelope_from", "ok@perm.example", true, NR));
	json_t *prefixed = E2E_OK(e2e_send(s, "POST", body, "/client/v4%s", path), 200);
	E2E_JSON_EQ(prefixed, d);

	/* wrong methods: 405 naming POST */
	static const char *const methods[] = {"GET", "PUT", "PATCH", "DELETE"};
	for (size_t i = 0; i < 4; i++) {
		e2e_request rq = {.method = methods[i],
		                  .path = path,
		                  .body = strcmp(methods[i], "GET") && strcmp(methods[i], "DELETE")
		                              ? body
		                              : NULL};
		e2e_response *r = e2e_do(s, &rq);
		E2E_CHECK(r->status == 405, "%s evaluate: expected 405, got %ld: %s", methods[i],
		          r->status, r->body);
		E2E_ERR(r, 405, 10405, NULL);
		const char *allow = e2e_header(r, "Allow");
		E2E_CHECK(allow && strstr(allow, "POST"), "%s evaluate: Allow is %s", methods[i],
		          allow ? allow : "(missing)");
	}

	/* unknown paths next to it: 404 7003 */
	const char *unknown[] = {
	    e2e_strf("/allowd/v1/accounts/%s/evaluate/x", s->account_id),
	    e2e_strf("/allowd/v1/accounts/%s/evaluation", s->account_id),
	    e2e_strf("/allowd/v2/accounts/%s/evaluate", s->account_id),
	    e2e_strf("/allowd/v1/accounts/%s", s->account_id),
	};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		E2E_ERR(e2e_send(s, "POST", body, "%s", unknown[i]), 404, 7003, NULL);

	/* an account id that is not 32 hex characters */
	E2E_ERR(e2e_send(s, "POST", body, "/allowd/v1/accounts/%s/evaluate", "not-an-account"),
	        400, 0, NULL);

	/* no credentials */
	e2e_request anon = {.method = "POST", .path = path, .body = body, .auth = E2E_AUTH_NONE};
	E2E_ERR(e2e_do(s, &anon), 400, 6003, NULL);
	/* a wrong token */
	const char *const bad_token[] = {
	    e2e_strf("Authorization: Bearer %s", e2e_repeat("x", 40)), NULL};
	e2e_request wrong = {
	    .method = "POST", .path = path, .body = body, .auth = E2E_AUTH_NONE, .headers = bad_token};
	e2e_response *r = e2e_do(s, &wrong);
	E2E_CHECK(r->status == 403 || r->status == 400, "wrong token: got %ld: %s", r->status,
	          r->body);
	/* the email + key pair works like the token */
	e2e_request by_key = {.method = "POST", .path = path, .body = body, .auth = E2E_AUTH_KEY};
	E2E_JSON_EQ(E2E_OK(e2e_do(s, &by_key), 200), d);

	/* another account: 403 10000, and its policies are not consulted */
	const char *other = E2E_STR(E2E_CTL(s, "account", "create", "--name", "other"), "id");
	E2E_ERR(e2e_send(s, "POST", body, "/allowd/v1/accounts/%s/evaluate", other), 403, 10000,
	        NULL);
	E2E_ERR(e2e_send(s, "POST", body, "/allowd/v1/accounts/%s/evaluate",
	                 "0123456789abcdef0123456789abcdef"),
	        403, 10000, NULL);

	/* Read permission is enough; it does not allow writes */
	json_t *t = E2E_CTL(s, "token", "create", "--account", s->account_id, "--perm", "read");
	const char *const reader[] = {e2e_strf("Authorization: Bearer %s", E2E_STR(t, "token")),
	                              NULL};
	e2e_request ro = {
	    .method = "POST", .path = path, .body = body, .auth = E2E_AUTH_NONE, .headers = reader};
	E2E_JSON_EQ(E2E_OK(e2e_do(s, &ro), 200), d);
	e2e_request ro_write = {.method = "POST",
	                        .path = s->policies,
	                        .body = e2e_email_body("nope@perm.example"),
	                        .auth = E2E_AUTH_NONE,
	                        .headers = reader};
	E2E_ERR(e2e_do(s, &ro_write), 403, 10000, NULL);
	/* a read token for the other account only: 403 on this one */
	json_t *t2 = E2E_CTL(s, "token", "create", "--account", other, "--perm", "read");
	const char *const other_reader[] = {
	    e2e_strf("Authorization: Bearer %s", E2E_STR(t2, "token")), NULL};
	e2e_request ro_other = {.method = "POST",
	                        .path = path,
	                        .body = body,
	                        .auth = E2E_AUTH_NONE,
	                        .headers = other_reader};
	E2E_ERR(e2e_do(s, &ro_other), 403, 10000, NULL);
	/* on its own account it evaluates against that account's (empty) policy set */
	e2e_request ro_own = {.method = "POST",
	                      .path = e2e_strf("/allowd/v1/accounts/%s/evaluate", other),
	                      .body = body,
	                      .auth = E2E_AUTH_NONE,
	                      .headers = other_reader};
	d = E2E_OK(e2e_do(s, &ro_own), 200);
	NO_MATCH(d);
	RCPT(d, 0, "r@corp.example", 0, ALL6, false);
}

/* ==== 6. semantics through the API ========================================= */

E2E_TEST(authentication_results_count_only_from_trusted_authserv_ids)
{
	json_int_t id = ID(POLICY(s, "boss@bank.example", "EMAIL", false, true, false, false, true));
	const char *pass_all = "dmarc=pass header.from=bank.example; dkim=pass header.d=bank.example";
	struct {
		const char *headers[3];
		const char *trusted[3];
		const char *verification;
	} cases[] = {
	    /* 0: an untrusted authserv-id is ignored */
	    {{e2e_strf("evil.example; %s", pass_all)}, {"mx.example.com"}, SNA},
	    /* 1: the trusted one counts, ignoring ASCII case */
	    {{e2e_strf("mx.example.com; %s", pass_all)}, {"MX.Example.COM"}, DMARC},
	    /* 2: no trusted ids: nothing counts */
	    {{e2e_strf("mx.example.com; %s", pass_all)}, {NULL}, SNA},
	    /* 3: dkim of the organisational domain */
	    {{"mx.example.com; dkim=pass header.d=mail.bank.example"}, {"mx.example.com"}, DKIM},
	    /* 4: spf does not authenticate header_from */
	    {{"mx.example.com; spf=pass smtp.mailfrom=boss@bank.example"}, {"mx.example.com"}, SNA},
	    /* 5: an untrusted header's body is not even parsed */
	    {{"other.example; dmarc=pass (unbalanced", "other.example; dkim=\"unterminated"},
	     {"mx.example.com"},
	     SNA},
	    /* 6: untrusted pass, trusted fail */
	    {{"evil.example; dmarc=pass header.from=bank.example",
	      "mx.example.com; dmarc=fail header.from=bank.example"},
	     {"mx.example.com"},
	     SNA},
	    /* 7: trusted fail then trusted pass (a later hop): pass wins */
	    {{"mx.example.com; dmarc=fail header.from=bank.example",
	      "mx2.example.com; dmarc=pass header.from=bank.example"},
	     {"mx.example.com", "mx2.example.com"},
	     DMARC},
	    /* 8: a trusted id with a trailing dot is another id */
	    {{e2e_strf("mx.example.com.; %s", pass_all)}, {"mx.example.com"}, SNA},
	    /* 9: a malformed resinfo is skipped, the rest counts */
	    {{"mx.example.com; spf pass; dkim=pass header.d=bank.example"}, {"mx.example.com"},
	     DKIM},
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	json_t *msgs = e2e_keep(json_array());
	for (size_t i = 0; i < n; i++) {
		json_t *m = msg_from(NULL, "boss@bank.example", "r@corp.example");
		json_t *h = json_array(), *t = json_array();
		for (size_t k = 0; k < 3 && cases[i].headers[k]; k++)
			json_array_append_new(h, json_string(cases[i].headers[k]));
		for (size_t k = 0; k < 3 && cases[i].trusted[k]; k++)
			json_array_append_new(t, json_string(cases[i].trusted[k]));
		json_object_set_new(m, "authentication_results", h);
		json_object_set_new(m, "trusted_authserv_ids", t);
		json_array_append(msgs, m);
	}
	/* 10: structured auth combined with a header: the header's pass wins over a fail */
	json_array_append(msgs,
	                  J("{s:s, s:[s], s:{s:{s:s, s:s}}, s:[s], s:[s]}", "header_from",
	                    "boss@bank.example", "recipients", "r@corp.example", "auth", "dmarc",
	                    "result", "fail", "from_domain", "bank.example",
	                    "authentication_results",
	                    "mx.example.com; dmarc=pass header.from=bank.example",
	                    "trusted_authserv_ids", "mx.example.com"));
	json_t *res = EVAL_BATCH(s, msgs);
	for (size_t i = 0; i < n + 1; i++) {
		const char *why = i < n ? cases[i].verification : DMARC;
		bool honored = strcmp(why, SNA) != 0;
		json_t *d = json_array_get(res, i);
		const char *where = e2e_strf("%s [case %zu]", __FILE__, i);
		matches_at(d,
		           (json_t *const[]){mt(id, "header_from", "boss@bank.example", honored, why),
		                             NULL},
		           where, __LINE__);
		rcpt_at(d, 0, "r@corp.example", honored ? ALL6 : 0, honored ? 0 : ALL6, honored,
		        where, __LINE__);
	}
}

/*
 * docs/semantics.md: a header from an untrusted authserv-id "is ignored ...
 * and does not even look at the rest of the header, so an untrusted header
 * cannot cause an error either"; with no trusted ids nothing counts.
 */
E2E_TEST(untrusted_authentication_results_never_cause_errors)
{
	static const char *const headers[] = {
	    "other.example; spf=pass (unbalanced",
	    "other.example; dkim=\"unterminated",
	    "other.example spf=pass smtp.mailfrom=a.example",
	    "other.example 1 dkim=pass header.d=a.example",
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		json_t *m = J("{s:[s], s:[s], s:[s]}", "recipients", "r@corp.example",
		              "authentication_results", headers[i], "trusted_authserv_ids",
		              "mx.example.com");
		e2e_response *r = eval_raw(s, e2e_dumps(m));
		E2E_CHECK(r->status == 200, "untrusted header %s: expected 200, got %ld: %s",
		          headers[i], r->status, r->body);
		json_object_del(m, "trusted_authserv_ids");
		r = eval_raw(s, e2e_dumps(m));
		E2E_CHECK(r->status == 200,
		          "header %s with no trusted ids: expected 200, got %ld: %s", headers[i],
		          r->status, r->body);
	}
}

E2E_TEST(verify_sender_outcomes_and_their_strings)
{
	json_int_t alice =
	    ID(POLICY(s, "alice@mail.example.co.uk", "EMAIL", false, true, false, false, true));
	json_int_t boss = ID(POLICY(s, "boss@bank.example", "EMAIL", false, true, false, false, true));
	json_int_t free_ = ID(POLICY(s, "free@open.example", "EMAIL", false, true, false, false, false));
	json_int_t ip = ID(POLICY(s, "8.8.4.0/24", "IP", false, true, false, false, true));
	json_int_t relay =
	    ID(POLICY(s, "mx[0-9]\\.relay\\.example", "DOMAIN", true, false, true, false, true));
	json_int_t vip = ID(POLICY(s, "vip@corp.example", "EMAIL", false, false, false, true, true));
	const char *A = "alice@mail.example.co.uk", *B = "boss@bank.example";

	struct {
		json_t *msg;
		json_int_t id;
		const char *field, *value, *why;
		unsigned waived;
		bool skip;
	} cases[] = {
	    /* envelope_from: SPF for its domain, or aligned DMARC; SPF preferred */
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}}}", "envelope_from", A, "recipients", "r@corp.example",
	       "auth", "spf", "result", "pass", "domain", "mail.example.co.uk"),
	     alice, "envelope_from", A, SPF, ALL6, true},
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}}}", "envelope_from", A, "recipients", "r@corp.example",
	       "auth", "dmarc", "result", "pass", "from_domain", "example.co.uk"),
	     alice, "envelope_from", A, DMARC, ALL6, true},
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}, s:{s:s,s:s}}}", "envelope_from", A, "recipients",
	       "r@corp.example", "auth", "spf", "result", "pass", "domain", "mail.example.co.uk",
	       "dmarc", "result", "pass", "from_domain", "mail.example.co.uk"),
	     alice, "envelope_from", A, SPF, ALL6, true},
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}, s:{s:s,s:s}, s:[{s:s,s:s}]}}", "envelope_from", A,
	       "recipients", "r@corp.example", "auth", "spf", "result", "pass", "domain",
	       "other.example", "dmarc", "result", "pass", "from_domain", "other.co.uk", "dkim",
	       "result", "pass", "domain", "example.co.uk"),
	     alice, "envelope_from", A, SNA, 0, false},
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}}}", "envelope_from", A, "recipients", "r@corp.example",
	       "auth", "spf", "result", "softfail", "domain", "mail.example.co.uk"),
	     alice, "envelope_from", A, SNA, 0, false},
	    /* header_from: DMARC for the From domain, or DKIM of its organisational domain */
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}}}", "header_from", B, "recipients", "r@corp.example",
	       "auth", "dmarc", "result", "pass", "from_domain", "bank.example"),
	     boss, "header_from", B, DMARC, ALL6, true},
	    {J("{s:s, s:[s], s:{s:[{s:s,s:s},{s:s,s:s}]}}", "header_from", B, "recipients",
	       "r@corp.example", "auth", "dkim", "result", "fail", "domain", "bank.example",
	       "result", "pass", "domain", "mail.bank.example"),
	     boss, "header_from", B, DKIM, ALL6, true},
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}, s:[{s:s,s:s}]}}", "header_from", B, "recipients",
	       "r@corp.example", "auth", "dmarc", "result", "pass", "from_domain", "bank.example",
	       "dkim", "result", "pass", "domain", "bank.example"),
	     boss, "header_from", B, DMARC, ALL6, true},
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}, s:[{s:s,s:s}]}}", "header_from", B, "recipients",
	       "r@corp.example", "auth", "spf", "result", "pass", "domain", "bank.example", "dkim",
	       "result", "pass", "domain", "evilbank.example"),
	     boss, "header_from", B, SNA, 0, false},
	    /* verify_sender false */
	    {J("{s:s, s:[s]}", "envelope_from", "free@open.example", "recipients", "r@corp.example"),
	     free_, "envelope_from", "free@open.example", NR, ALL6, true},
	    /* client_ip, server_name, recipient: anything passing at all */
	    {J("{s:s, s:[s]}", "client_ip", "8.8.4.4", "recipients", "r@corp.example"), ip,
	     "client_ip", "8.8.4.4", MNA, 0, false},
	    {J("{s:s, s:[s], s:{s:[{s:s,s:s}]}}", "client_ip", "8.8.4.4", "recipients",
	       "r@corp.example", "auth", "dkim", "result", "pass", "domain", "unrelated.example"),
	     ip, "client_ip", "8.8.4.4", MSG, ALL6, true},
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}}}", "server_name", "mx1.relay.example", "recipients",
	       "r@corp.example", "auth", "spf", "result", "softfail", "domain", "relay.example"),
	     relay, "server_name", "mx1.relay.example", MNA, 0, false},
	    {J("{s:s, s:[s], s:{s:{s:s,s:s}}}", "server_name", "mx1.relay.example", "recipients",
	       "r@corp.example", "auth", "dmarc", "result", "pass", "from_domain", "x.example"),
	     relay, "server_name", "mx1.relay.example", MSG, ACC, false},
	    {J("{s:[s]}", "recipients", "vip@corp.example"), vip, "recipient", "vip@corp.example",
	     MNA, 0, false},
	    {J("{s:[s], s:{s:{s:s,s:s}}}", "recipients", "vip@corp.example", "auth", "spf",
	       "result", "pass", "domain", "anywhere.example"),
	     vip, "recipient", "vip@corp.example", MSG, ALL6, false},
	    /* reply_to: never, whatever passes */
	    {J("{s:[s], s:[s], s:{s:{s:s,s:s}, s:{s:s,s:s}, s:[{s:s,s:s}]}}", "reply_to", B,
	       "recipients", "r@corp.example", "auth", "spf", "result", "pass", "domain",
	       "bank.example", "dmarc", "result", "pass", "from_domain", "bank.example", "dkim",
	       "result", "pass", "domain", "bank.example"),
	     boss, "reply_to", B, RTN, 0, false},
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	json_t *msgs = e2e_keep(json_array());
	for (size_t i = 0; i < n; i++)
		json_array_append(msgs, cases[i].msg);
	json_t *res = EVAL_BATCH(s, msgs);
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_array_get(res, i);
		bool honored = strcmp(cases[i].why, SNA) && strcmp(cases[i].why, MNA) &&
		               strcmp(cases[i].why, RTN);
		const char *where = e2e_strf("%s [case %zu]", __FILE__, i);
		matches_at(d,
		           (json_t *const[]){mt(cases[i].id, cases[i].field, cases[i].value, honored,
		                                cases[i].why),
		                             NULL},
		           where, __LINE__);
		const char *addr = E2E_STR(json_array_get(E2E_ARR(d, "recipients"), 0), "address");
		rcpt_at(d, 0, addr, cases[i].waived, ALL6 & ~cases[i].waived, cases[i].skip, where,
		        __LINE__);
	}
}

E2E_TEST(reply_to_is_never_authenticated)
{
	json_int_t verified =
	    ID(POLICY(s, "helpdesk@vendor.example", "EMAIL", false, true, false, false, true));
	json_int_t dom = ID(POLICY(s, "vendor.example", "DOMAIN", false, false, true, false, true));

	/* the attacker passes DMARC for their own domain, even SPF/DKIM for the vendor */
	json_t *m = J("{s:s, s:s, s:[s,s], s:[s], s:{s:{s:s,s:s}, s:{s:s,s:s}, s:[{s:s,s:s}]}}",
	              "envelope_from", "x@evil.example", "header_from", "attacker@evil.example",
	              "reply_to", "someone@else.example", "HelpDesk@Vendor.example", "recipients",
	              "r@corp.example", "auth", "spf", "result", "pass", "domain",
	              "vendor.example", "dmarc", "result", "pass", "from_domain", "evil.example",
	              "dkim", "result", "pass", "domain", "vendor.example");
	json_t *d = EVAL(s, m);
	/* one value, two policies: listed by policy id */
	MATCHES(d, mt(verified, "reply_to", "HelpDesk@Vendor.example", false, RTN),
	        mt(dom, "reply_to", "vendor.example", false, RTN));
	RCPT(d, 0, "r@corp.example", 0, ALL6, false);

	/* without verify_sender a Reply-To match is honoured like any sender field */
	PATCH(s, verified, "{\"verify_sender\":false}");
	d = EVAL(s, m);
	MATCHES(d, mt(verified, "reply_to", "HelpDesk@Vendor.example", true, NR),
	        mt(dom, "reply_to", "vendor.example", false, RTN));
	RCPT(d, 0, "r@corp.example", ALL6, 0, true);

	/* the same vendor address as header_from, with DMARC for it, is authenticated */
	PATCH(s, verified, "{\"verify_sender\":true}");
	d = EVAL(s, J("{s:s, s:[s], s:[s], s:{s:{s:s,s:s}}}", "header_from",
	              "helpdesk@vendor.example", "reply_to", "helpdesk@vendor.example",
	              "recipients", "r@corp.example", "auth", "dmarc", "result", "pass",
	              "from_domain", "vendor.example"));
	MATCHES(d, mt(verified, "header_from", "helpdesk@vendor.example", true, DMARC),
	        mt(dom, "header_from", "vendor.example", true, DMARC),
	        mt(verified, "reply_to", "helpdesk@vendor.example", false, RTN),
	        mt(dom, "reply_to", "vendor.example", false, RTN));
	RCPT(d, 0, "r@corp.example", ALL6, 0, true);
}

E2E_TEST(exempt_recipient_waives_only_for_its_recipient)
{
	json_int_t vip = ID(POLICY(s, "vip@corp.example", "EMAIL", false, false, false, true, false));
	json_t *m = J("{s:s, s:s, s:[s,s,s,s], s:[s,s,s]}", "envelope_from", "vip@corp.example",
	              "header_from", "vip@corp.example", "recipients", "staff@corp.example",
	              "VIP@Corp.Example", "vip+board@corp.example", "vip.not@corp.example",
	              "dispositions", "MALICIOUS", "SPAM", "EXTERNAL");
	json_t *d = EVAL(s, m);
	/* the exempt policy does not look at the sender fields */
	MATCHES(d, mt(vip, "recipient", "VIP@Corp.Example", true, NR),
	        mt(vip, "recipient", "vip+board@corp.example", true, NR));
	RCPT(d, 0, "staff@corp.example", 0, MAL | SPAM | EXT, false);
	RCPT(d, 1, "VIP@Corp.Example", MAL | SPAM, EXT, false);
	RCPT(d, 2, "vip+board@corp.example", MAL | SPAM, EXT, false);
	RCPT(d, 3, "vip.not@corp.example", 0, MAL | SPAM | EXT, false);

	/* combined with an acceptable sender: per recipient, the union */
	json_int_t acc =
	    ID(POLICY(s, "corp.example", "DOMAIN", false, false, true, false, false));
	d = EVAL(s, m);
	MATCHES(d, mt(acc, "envelope_from", "corp.example", true, NR),
	        mt(acc, "header_from", "corp.example", true, NR),
	        mt(vip, "recipient", "VIP@Corp.Example", true, NR),
	        mt(vip, "recipient", "vip+board@corp.example", true, NR));
	RCPT(d, 0, "staff@corp.example", SPAM, MAL | EXT, false);
	RCPT(d, 1, "VIP@Corp.Example", MAL | SPAM, EXT, false);
	RCPT(d, 2, "vip+board@corp.example", MAL | SPAM, EXT, false);
	RCPT(d, 3, "vip.not@corp.example", SPAM, MAL | EXT, false);
}

E2E_TEST(informational_dispositions_always_remain)
{
	json_int_t news =
	    ID(POLICY(s, "news@list.example", "EMAIL", false, false, true, false, false));
	json_int_t ceo = ID(POLICY(s, "ceo@corp.example", "EMAIL", false, true, false, false, false));
	json_int_t vip = ID(POLICY(s, "vip@corp.example", "EMAIL", false, false, false, true, false));
	json_t *msgs =
	    J("[{s:s, s:[s], s:[s,s,s,s,s,s]}, {s:s, s:[s], s:[s,s,s]}, {s:[s,s], s:[s,s]},"
	      " {s:s, s:[s], s:[s,s,s,s,s,s,s,s,s]}]",
	      "envelope_from", "news@list.example", "recipients", "r@corp.example", "dispositions",
	      "MALICIOUS", "SPAM", "BULK", "ENCRYPTED", "EXTERNAL", "NONE", /* 0 */
	      "envelope_from", "ceo@corp.example", "recipients", "r@corp.example", "dispositions",
	      "ENCRYPTED", "EXTERNAL", "SPOOF", /* 1 */
	      "recipients", "vip@corp.example", "r@corp.example", "dispositions", "ENCRYPTED",
	      "NONE", /* 2 */
	      "header_from", "ceo@corp.example", "recipients", "r@corp.example", "dispositions",
	      "NONE", "EXTERNAL", "ENCRYPTED", "BULK", "SPAM", "SPOOF", "SUSPICIOUS",
	      "MALICIOUS-BEC", "MALICIOUS" /* 3 */);
	json_t *res = EVAL_BATCH(s, msgs);
	json_t *d = json_array_get(res, 0);
	MATCHES(d, mt(news, "envelope_from", "news@list.example", true, NR));
	RCPT(d, 0, "r@corp.example", SPAM | BULK, MAL | ENC | EXT | NONE, false);
	d = json_array_get(res, 1);
	MATCHES(d, mt(ceo, "envelope_from", "ceo@corp.example", true, NR));
	RCPT(d, 0, "r@corp.example", SPOOF, ENC | EXT, true);
	d = json_array_get(res, 2);
	MATCHES(d, mt(vip, "recipient", "vip@corp.example", true, NR));
	RCPT(d, 0, "vip@corp.example", 0, ENC | NONE, false);
	RCPT(d, 1, "r@corp.example", 0, ENC | NONE, false);
	d = json_array_get(res, 3);
	MATCHES(d, mt(ceo, "header_from", "ceo@corp.example", true, NR));
	RCPT(d, 0, "r@corp.example", ALL6, ENC | EXT | NONE, true);
}

E2E_TEST(without_dispositions_all_six_verdicts_are_considered)
{
	json_int_t news =
	    ID(POLICY(s, "news@list.example", "EMAIL", false, false, true, false, false));
	json_int_t ceo = ID(POLICY(s, "ceo@corp.example", "EMAIL", false, true, false, false, false));
	json_t *msgs = J("[{s:s, s:[s]}, {s:s, s:[s]}, {s:s, s:[s]}, {s:s, s:[s], s:n}]",
	                 "envelope_from", "news@list.example", "recipients", "r@corp.example",
	                 "envelope_from", "ceo@corp.example", "recipients", "r@corp.example",
	                 "envelope_from", "nobody@list.example", "recipients", "r@corp.example",
	                 "envelope_from", "news@list.example", "recipients", "r@corp.example",
	                 "dispositions");
	json_t *res = EVAL_BATCH(s, msgs);
	json_t *d = json_array_get(res, 0);
	MATCHES(d, mt(news, "envelope_from", "news@list.example", true, NR));
	RCPT(d, 0, "r@corp.example", ACC, STAND, false);
	d = json_array_get(res, 1);
	MATCHES(d, mt(ceo, "envelope_from", "ceo@corp.example", true, NR));
	RCPT(d, 0, "r@corp.example", ALL6, 0, true);
	d = json_array_get(res, 2);
	NO_MATCH(d);
	RCPT(d, 0, "r@corp.example", 0, ALL6, false);
	d = json_array_get(res, 3); /* null is absent */
	RCPT(d, 0, "r@corp.example", ACC, STAND, false);
}

E2E_TEST(a_batch_of_messages_answers_in_order)
{
	json_int_t a = ID(POLICY(s, "a@order.example", "EMAIL", false, true, false, false, false));
	json_int_t b = ID(POLICY(s, "b@order.example", "EMAIL", false, false, true, false, false));
	enum { N = 60 };
	json_t *msgs = e2e_keep(json_array());
	for (int i = 0; i < N; i++) {
		const char *from = i % 3 == 0 ? "a@order.example"
		                   : i % 3 == 1 ? "b@order.example"
		                                : "c@order.example";
		json_array_append(msgs, msg_from(i % 2 ? from : NULL, i % 2 ? NULL : from,
		                                 e2e_strf("r%d@corp.example", i)));
	}
	json_t *res = EVAL_BATCH(s, msgs);
	for (int i = 0; i < N; i++) {
		json_t *d = json_array_get(res, (size_t)i);
		const char *rcpt = e2e_strf("r%d@corp.example", i);
		const char *field = i % 2 ? "envelope_from" : "header_from";
		if (i % 3 == 0) {
			MATCHES(d, mt(a, field, "a@order.example", true, NR));
			RCPT(d, 0, rcpt, ALL6, 0, true);
		} else if (i % 3 == 1) {
			MATCHES(d, mt(b, field, "b@order.example", true, NR));
			RCPT(d, 0, rcpt, ACC, STAND, false);
		} else {
			NO_MATCH(d);
			RCPT(d, 0, rcpt, 0, ALL6, false);
		}
		/* each element equals the single-message answer */
		E2E_JSON_EQ(EVAL(s, json_array_get(msgs, (size_t)i)), d);
	}
}

/* ==== 7. the regex cost bound =============================================== */

struct heavy {
	e2e_server *s;
	const char *path;
	const char *body;
	int rounds;
	long status[8];
	char error[256];
	volatile int done;
};

static void *heavy_loop(void *arg)
{
	struct heavy *h = arg;
	e2e_client *c = e2e_client_new();
	for (int i = 0; i < h->rounds; i++) {
		e2e_request rq = {
		    .method = "POST", .path = h->path, .body = h->body, .client = c};
		e2e_response *r = e2e_do(h->s, &rq);
		h->status[i] = r->status;
		if (r->status != 200 && !h->error[0])
			snprintf(h->error, sizeof(h->error), "round %d: HTTP %ld %s", i, r->status,
			         r->error ? r->error : r->body);
	}
	e2e_client_free(c);
	__atomic_store_n(&h->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

E2E_TEST(pathological_regexes_are_bounded_or_rejected)
{
	/* the light requests below are many: no request limit on this server */
	static const char *const args[] = {"--rate-limit", "0", NULL};
	s = e2e_server_start(args);

	/* rejected at create time, naming the pattern */
	static const char *const costly[] = {"(a+)+$", "(a*)*b", "(\\w+\\s?)*$"};
	for (size_t i = 0; i < 3; i++) {
		json_t *o = e2e_policy_obj(costly[i], "EMAIL", true, true, false, false, false, NULL);
		e2e_response *r = e2e_send(s, "POST", e2e_dumps(o), "%s", s->policies);
		json_t *err = E2E_ERR(r, 400, 1001, "/pattern");
		E2E_CHECK(e2e_contains_ci(E2E_STR(err, "message"), "too costly"),
		          "%s: the error does not say \"too costly\": %s", costly[i], r->body);
	}
	assert_int_equal(E2E_TOTAL(s), 0);

	/* quadratic, accepted, and in effect */
	json_int_t id = ID(POLICY(s, ".*.*=.*", "EMAIL", true, true, false, false, false));
	json_int_t plain = ID(POLICY(s, "ok@fast.example", "EMAIL", false, true, false, false, false));
	json_t *d = EVAL(s, msg_from("a=b@x.example", NULL, "r@corp.example"));
	MATCHES(d, mt(id, "envelope_from", "a=b@x.example", true, NR));

	/*
	 * 1024-byte subjects that reach the end anchor only to fail on a final
	 * newline, with '=' everywhere: the worst case the match limit caps.
	 */
	const char *evil = e2e_strf("%s\n", e2e_repeat("=", 1023));
	const char *evil2 = e2e_strf("%s@xy.example\n", e2e_repeat("a=", 506));
	assert_int_equal(strlen(evil), 1024);
	assert_int_equal(strlen(evil2), 1024);
	double t0 = now_s();
	d = EVAL(s, msg_from(evil, NULL, "r@corp.example"));
	double took = now_s() - t0;
	print_message("one pathological 1024-byte subject: %.3f s\n", took);
	E2E_CHECK(took < 5.0, "an evaluation with one bounded subject took %.1f s", took);
	NO_MATCH(d); /* abandoned at the limit: no match */

	/* several such subjects in one message: envelope_from, header_from, reply_to */
	json_t *m = J("{s:s, s:s, s:[], s:[s]}", "envelope_from", evil, "header_from", evil2,
	              "reply_to", "recipients", "r@corp.example");
	for (int i = 0; i < 8; i++)
		json_array_append_new(json_object_get(m, "reply_to"),
		                      json_string(i % 2 ? evil : evil2));
	t0 = now_s();
	d = EVAL(s, m);
	took = now_s() - t0;
	print_message("one message with 10 pathological 1024-byte subjects: %.3f s\n", took);
	json_t *matches = E2E_ARR(d, "matches");
	size_t i;
	json_t *mm;
	json_array_foreach(matches, i, mm) assert_int_equal(E2E_INT(mm, "policy_id"), id);

	/* while another client keeps sending such messages, others are served */
	struct heavy h = {.s = s, .path = eval_path(s), .rounds = 4};
	h.body = e2e_dumps(m);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, heavy_loop, &h), 0);
	json_t *light = msg_from("ok@fast.example", NULL, "r@corp.example");
	int served = 0;
	do {
		d = EVAL(s, light);
		MATCHES(d, mt(plain, "envelope_from", "ok@fast.example", true, NR));
		e2e_request hz = {.method = "GET", .path = "/healthz", .auth = E2E_AUTH_NONE};
		E2E_CHECK(e2e_do(s, &hz)->status == 200, "healthz failed during regex load");
		served++;
	} while (!__atomic_load_n(&h.done, __ATOMIC_ACQUIRE) && served < 100000);
	pthread_join(t, NULL);
	E2E_CHECK(h.error[0] == '\0', "heavy evaluations: %s", h.error);
	print_message("%d light requests served during %d heavy evaluations\n", served, h.rounds);

	/* up to ALLOWD_SUBJECT_MAX (319 bytes) a subject is matched; beyond, never */
	const char *long_ok = e2e_strf("%s=b@x.example", e2e_repeat("a", 319 - 12));
	assert_int_equal(strlen(long_ok), 319);
	d = EVAL(s, msg_from(long_ok, NULL, "r@corp.example"));
	MATCHES(d, mt(id, "envelope_from", long_ok, true, NR));
	const char *too_long = e2e_strf("%s=b@x.example", e2e_repeat("a", 320 - 12));
	d = EVAL(s, msg_from(too_long, NULL, "r@corp.example"));
	NO_MATCH(d);
}

/* ---- the regex work budget of one request (bug 7) ------------------------- */

#define COSTLY_REGEXES 300

/*
 * Each regex match stops at the match limit, but a request carries many
 * subjects: 10 messages x 10 worst-case subjects against 300 accepted
 * regexes that each run to the limit would hold a pool thread for about a
 * minute.  With the default --evaluate-budget (1000 ms of regex matching
 * per request) the request ends soon after the budget with a 400 naming
 * the message that ran out, other requests are answered meanwhile, and a
 * light request still gets its decision.  Evaluating regexes also gives
 * every pool thread a Hyperscan scratch: the ASan build checks at stop
 * that none leaks (bug 9).
 */
E2E_TEST(regex_work_of_one_request_is_bounded_by_the_budget)
{
	static const char *const args[] = {"--rate-limit", "0", NULL};
	s = e2e_server_start(args);

	json_t *posts = e2e_keep(json_array());
	for (int i = 0; i < COSTLY_REGEXES; i++)
		json_array_append_new(posts,
		                      e2e_policy_obj(e2e_strf("(?:a|ab|b)*c(?#%d)", i), "EMAIL", true,
		                                     true, false, false, false, NULL));
	json_t *made = E2E_ARR(E2E_BATCH(s, e2e_batch_posts_body(posts)), "posts");
	assert_int_equal(json_array_size(made), COSTLY_REGEXES);
	json_int_t first = E2E_INT(json_array_get(made, 0), "id");
	json_int_t plain = ID(POLICY(s, "ok@fast.example", "EMAIL", false, true, false, false, false));

	/* the costliest subject still matched: 319 bytes that no regex matches */
	const char *w = e2e_strf("%sbc!", e2e_repeat("ab", 158));
	assert_int_equal(strlen(w), 319);
	const char *msg = e2e_strf("{\"recipients\":[\"x@y.example\"],\"envelope_from\":\"%s\","
	                           "\"header_from\":\"%s\",\"reply_to\":[%s]}",
	                           w, w,
	                           e2e_strf("\"%s\",\"%s\",\"%s\",\"%s\",\"%s\",\"%s\",\"%s\",\"%s\"",
	                                    w, w, w, w, w, w, w, w));
	const char *body = e2e_strf("{\"messages\":[%s,%s,%s,%s,%s,%s,%s,%s,%s,%s]}", msg, msg, msg,
	                            msg, msg, msg, msg, msg, msg, msg);

	e2e_background j;
	e2e_background_start(&j, s,
	                     &(e2e_request){.method = "POST", .path = eval_path(s), .body = body});
	json_t *light = msg_from("ok@fast.example", NULL, "r@corp.example");
	int served = 0;
	do {
		json_t *d = EVAL(s, light);
		MATCHES(d, mt(plain, "envelope_from", "ok@fast.example", true, NR));
		e2e_request hz = {.method = "GET", .path = "/healthz", .auth = E2E_AUTH_NONE};
		E2E_CHECK(e2e_do(s, &hz)->status == 200, "healthz failed during the costly request");
		served++;
	} while (!e2e_background_done(&j) && served < 100000);
	e2e_background_join(&j);
	print_message("100 worst-case subjects x %d regexes: HTTP %ld after %.3f s; %d light "
	              "requests served meanwhile\n",
	              COSTLY_REGEXES, j.r->status, (double)j.took_ms / 1000, served);
	/* 1 s of budget; the rest is slack for sanitizer builds and a busy machine */
	E2E_CHECK(j.took_ms < 6000, "the costly request took %.1f s: its regex work is not bounded",
	          (double)j.took_ms / 1000);
	json_t *err = E2E_ERR(j.r, 400, 1001, "/messages/0");
	E2E_CHECK(e2e_contains_ci(E2E_STR(err, "message"), "regex work budget"),
	          "the error does not name the budget: %s", j.r->body);
	E2E_CHECK(e2e_contains_ci(E2E_STR(err, "message"), "1000 ms"),
	          "the error does not give the budget: %s", j.r->body);

	/* the same regexes still match a subject they can afford */
	json_t *d = EVAL(s, msg_from("ababc", NULL, "r@corp.example"));
	E2E_CHECK(json_array_size(E2E_ARR(d, "matches")) == COSTLY_REGEXES,
	          "every regex matches \"ababc\": %s", e2e_dumps(d));
	assert_int_equal(E2E_INT(json_array_get(E2E_ARR(d, "matches"), 0), "policy_id"), first);
}

/* --evaluate-budget 0 switches the budget off; a small one answers sooner. */
E2E_TEST(evaluate_budget_option_sets_the_budget)
{
	static const char *const args[] = {"--rate-limit", "0", "--evaluate-budget", "50", NULL};
	s = e2e_server_start(args);

	json_t *posts = e2e_keep(json_array());
	for (int i = 0; i < 100; i++)
		json_array_append_new(posts,
		                      e2e_policy_obj(e2e_strf("(?:a|ab|b)*c(?#%d)", i), "EMAIL", true,
		                                     true, false, false, false, NULL));
	E2E_BATCH(s, e2e_batch_posts_body(posts));
	const char *w = e2e_strf("%sbc!", e2e_repeat("ab", 158));
	const char *one = e2e_strf("{\"recipients\":[\"x@y.example\"],\"envelope_from\":\"%s\","
	                           "\"header_from\":\"%s\",\"reply_to\":[\"%s\",\"%s\",\"%s\"]}",
	                           w, w, w, w, w);
	double t0 = now_s();
	e2e_response *r = eval_raw(s, one);
	double took = now_s() - t0;
	json_t *err = E2E_ERR(r, 400, 1001, NULL);
	E2E_CHECK(e2e_error_pointer(err) == NULL || !*e2e_error_pointer(err),
	          "a single message has no /messages pointer: %s", r->body);
	E2E_CHECK(e2e_contains_ci(E2E_STR(err, "message"), "50 ms"), "%s", r->body);
	print_message("5 worst subjects x 100 regexes, --evaluate-budget 50: %.3f s\n", took);
	E2E_CHECK(took < 3.0, "a 50 ms budget answered after %.1f s", took);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    E2E_CASE(email_policy_lifecycle),
	    E2E_CASE(domain_policy_lifecycle),
	    E2E_CASE(ip_policy_lifecycle),
	    E2E_CASE(regex_policy_lifecycle),
	    E2E_CASE(batch_writes_are_in_effect_at_once_and_failed_batches_change_nothing),
	    E2E_CASE(every_write_is_in_effect_across_background_rebuilds),
	    E2E_CASE(evaluations_survive_sigterm_and_sigkill_restarts),
	    E2E_CASE(invalid_messages_are_400_with_a_pointer),
	    E2E_CASE(batch_with_another_field_names_it),
	    E2E_CASE(auth_domains_must_be_domain_names),
	    E2E_CASE(routes_permissions_and_credentials),
	    E2E_CASE(authentication_results_count_only_from_trusted_authserv_ids),
	    E2E_CASE(untrusted_authentication_results_never_cause_errors),
	    E2E_CASE(verify_sender_outcomes_and_their_strings),
	    E2E_CASE(reply_to_is_never_authenticated),
	    E2E_CASE(exempt_recipient_waives_only_for_its_recipient),
	    E2E_CASE(informational_dispositions_always_remain),
	    E2E_CASE(without_dispositions_all_six_verdicts_are_considered),
	    E2E_CASE(a_batch_of_messages_answers_in_order),
	    E2E_CASE_BARE(pathological_regexes_are_bounded_or_rejected),
	    E2E_CASE_BARE(regex_work_of_one_request_is_bounded_by_the_budget),
	    E2E_CASE_BARE(evaluate_budget_option_sets_the_budget),
	};
	return cmocka_run_group_tests_name("e2e_evaluate", tests, NULL, NULL);
}

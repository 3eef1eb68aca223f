/*
 * test_semantics.c - the matching rules of docs/semantics.md, table-driven
 * (semantics_cases.h), run against both the reference evaluator and the
 * indexed engine (allowd_snapshot_build + allowd_evaluate).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allowd/engine.h"
#include "allowd/policy.h"

#include "semantics_cases.h"

/* ---- building a case ----------------------------------------------------- */

typedef struct built {
	allowd_policy pol[SEM_MAX_POL];
	allowd_policy *ptrs[SEM_MAX_POL];
	size_t n_pol;
	allowd_message msg;
	allowd_engine_options opts;
} built;

static const struct {
	const char *name;
	allowd_auth_result r;
} result_names[] = {
    {"none", ALLOWD_AUTH_NONE},           {"pass", ALLOWD_AUTH_PASS},
    {"fail", ALLOWD_AUTH_FAIL},           {"softfail", ALLOWD_AUTH_SOFTFAIL},
    {"neutral", ALLOWD_AUTH_NEUTRAL},     {"temperror", ALLOWD_AUTH_TEMPERROR},
    {"permerror", ALLOWD_AUTH_PERMERROR}, {"policy", ALLOWD_AUTH_POLICY},
};

/* "method=result:domain" into a check; the table is ours, so a typo fails the test. */
static void parse_check(allowd_auth_check *c, const char *tok, size_t len)
{
	const char *colon = memchr(tok, ':', len);
	size_t rlen, dlen;
	bool found = false;

	assert_non_null(colon);
	rlen = (size_t)(colon - tok);
	for (size_t i = 0; i < sizeof(result_names) / sizeof(result_names[0]); i++) {
		if (strlen(result_names[i].name) == rlen &&
		    memcmp(result_names[i].name, tok, rlen) == 0) {
			c->result = result_names[i].r;
			found = true;
		}
	}
	assert_true(found);
	dlen = len - rlen - 1;
	assert_true(dlen < sizeof(c->domain));
	memcpy(c->domain, colon + 1, dlen);
	c->domain[dlen] = '\0';
}

static void parse_auth(allowd_auth_facts *f, const char *s)
{
	memset(f, 0, sizeof(*f));
	while (s && *s) {
		size_t len = strcspn(s, " ");
		if (len > 4 && strncmp(s, "spf=", 4) == 0) {
			parse_check(&f->spf, s + 4, len - 4);
		} else if (len > 6 && strncmp(s, "dmarc=", 6) == 0) {
			parse_check(&f->dmarc, s + 6, len - 6);
		} else if (len > 5 && strncmp(s, "dkim=", 5) == 0) {
			assert_true(f->n_dkim < ALLOWD_DKIM_MAX);
			parse_check(&f->dkim[f->n_dkim++], s + 5, len - 5);
		} else {
			fail_msg("bad auth token in the table: %s", s);
		}
		s += len;
		while (*s == ' ')
			s++;
	}
}

static void build(built *b, const sem_case *c)
{
	memset(b, 0, sizeof(*b));
	for (size_t i = 0; i < SEM_MAX_POL && c->pol[i].id; i++) {
		const sem_policy *sp = &c->pol[i];
		allowd_policy *p = &b->pol[i];
		p->id = sp->id;
		p->pattern_type = sp->type;
		p->is_regex = sp->regex;
		p->is_trusted_sender = strchr(sp->flags, 'T') != NULL;
		p->is_acceptable_sender = strchr(sp->flags, 'A') != NULL;
		p->is_exempt_recipient = strchr(sp->flags, 'E') != NULL;
		p->verify_sender = strchr(sp->flags, 'V') != NULL;
		p->pattern = strdup(sp->norm);
		p->pattern_norm = strdup(sp->norm);
		assert_non_null(p->pattern);
		assert_non_null(p->pattern_norm);
		b->ptrs[i] = p;
		b->n_pol++;
	}
	b->msg.envelope_from = c->env;
	b->msg.header_from = c->hdr;
	b->msg.reply_to = c->reply;
	while (b->msg.n_reply_to < SEM_MAX_ADDR && c->reply[b->msg.n_reply_to])
		b->msg.n_reply_to++;
	b->msg.recipients = c->rcpt;
	while (b->msg.n_recipients < SEM_MAX_ADDR && c->rcpt[b->msg.n_recipients])
		b->msg.n_recipients++;
	b->msg.client_ip = c->ip;
	b->msg.server_name = c->helo;
	b->msg.dispositions = c->disp;
	parse_auth(&b->msg.auth, c->auth);

	allowd_engine_options_init(&b->opts);
	if (c->delim == DELIM_OFF)
		b->opts.subaddress_delimiter = '\0';
	else if (c->delim)
		b->opts.subaddress_delimiter = c->delim;
}

static void unbuild(built *b)
{
	for (size_t i = 0; i < b->n_pol; i++)
		allowd_policy_clear(&b->pol[i]);
}

/* ---- comparing ----------------------------------------------------------- */

static void disp_text(char *buf, size_t size, unsigned d)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned bit = 1; bit < (1u << ALLOWD_DISP_COUNT) && used < size; bit <<= 1) {
		if (!(d & bit))
			continue;
		int n = snprintf(buf + used, size - used, "%s%s", used ? "|" : "",
		                 allowd_disposition_name(bit));
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static void dump(const char *engine, const allowd_decision *d)
{
	char w[128], r[128];

	fprintf(stderr, "    %s returned %zu recipient(s), %zu match(es), %d limit hit(s):\n",
	        engine, d->n_recipients, d->n_matches, d->regex_limit_hits);
	for (size_t i = 0; i < d->n_recipients; i++) {
		disp_text(w, sizeof(w), d->recipients[i].waived);
		disp_text(r, sizeof(r), d->recipients[i].remaining);
		fprintf(stderr, "      rcpt %zu %s waived {%s} remaining {%s} skip %d\n", i,
		        d->recipients[i].address ? d->recipients[i].address : "(null)", w, r,
		        d->recipients[i].skip_link_following);
	}
	for (size_t i = 0; i < d->n_matches; i++) {
		const allowd_match *m = &d->matches[i];
		fprintf(stderr, "      match policy %lld %s[%zu] \"%s\" honored %d \"%s\"\n",
		        (long long)m->policy_id, allowd_field_name(m->field), m->index,
		        m->value ? m->value : "(null)", m->honored,
		        m->verification ? m->verification : "(null)");
	}
}

static bool same_text(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Returns whether `d` is the decision the case expects; explains when not. */
static bool check(const sem_case *c, const built *b, const allowd_decision *d, const char *engine)
{
	size_t n_exp = 0;
	bool ok = d->n_recipients == b->msg.n_recipients;

	for (size_t i = 0; ok && i < d->n_recipients; i++) {
		const allowd_recipient_decision *r = &d->recipients[i];
		ok = r->address == b->msg.recipients[i] && r->waived == c->out[i].waived &&
		     r->remaining == c->out[i].remaining &&
		     r->skip_link_following == c->out[i].skip;
	}
	while (n_exp < SEM_MAX_MATCH && c->match[n_exp].id)
		n_exp++;
	ok = ok && d->n_matches == n_exp && d->regex_limit_hits == c->limit_hits;
	for (size_t i = 0; ok && i < n_exp; i++) {
		const allowd_match *m = &d->matches[i];
		const sem_match *e = &c->match[i];
		ok = m->policy_id == e->id && m->field == e->field && m->index == e->index &&
		     same_text(m->value, e->value) && m->honored == e->honored &&
		     same_text(m->verification, e->why);
	}
	if (ok)
		return true;

	char w[128], r[128];
	fprintf(stderr,
	        "FAIL %s: %s\n  expected %zu recipient(s), %zu match(es), %d limit hit(s):\n",
	        engine, c->name, b->msg.n_recipients, n_exp, c->limit_hits);
	for (size_t i = 0; i < b->msg.n_recipients; i++) {
		disp_text(w, sizeof(w), c->out[i].waived);
		disp_text(r, sizeof(r), c->out[i].remaining);
		fprintf(stderr, "      rcpt %zu %s waived {%s} remaining {%s} skip %d\n", i,
		        b->msg.recipients[i], w, r, c->out[i].skip);
	}
	for (size_t i = 0; i < n_exp; i++)
		fprintf(stderr, "      match policy %lld %s[%zu] \"%s\" honored %d \"%s\"\n",
		        (long long)c->match[i].id, allowd_field_name(c->match[i].field),
		        c->match[i].index, c->match[i].value, c->match[i].honored, c->match[i].why);
	dump(engine, d);
	return false;
}

/* ---- running ------------------------------------------------------------- */

typedef int (*evaluator)(const built *b, allowd_decision *out);

static int run_reference(const built *b, allowd_decision *out)
{
	return allowd_evaluate_reference(b->ptrs, b->n_pol, &b->opts, &b->msg, out);
}

static int run_engine(const built *b, allowd_decision *out)
{
	allowd_snapshot *s = NULL;
	int rc = allowd_snapshot_build(&s, b->ptrs, b->n_pol, &b->opts);

	if (rc == 0) {
		rc = allowd_evaluate(s, &b->msg, out);
		allowd_snapshot_unref(s);
	}
	return rc;
}

static void run_table(evaluator ev, const char *engine)
{
	size_t failed = 0;

	for (size_t i = 0; i < SEM_N_CASES; i++) {
		const sem_case *c = &sem_cases[i];
		allowd_decision d;
		built b;
		int rc;

		build(&b, c);
		memset(&d, 0, sizeof(d));
		rc = ev(&b, &d);
		if (rc != 0) {
			fprintf(stderr, "FAIL %s: %s: returned %d\n", engine, c->name, rc);
			failed++;
		} else if (!check(c, &b, &d, engine)) {
			failed++;
		}
		allowd_decision_clear(&d);
		unbuild(&b);
	}
	if (failed)
		fail_msg("%s: %zu of %zu semantics cases failed (details above)", engine, failed,
		         (size_t)SEM_N_CASES);
}

static void table_covers_at_least_100_cases(void **state)
{
	(void)state;
	assert_true(SEM_N_CASES >= 100);
	for (size_t i = 0; i < SEM_N_CASES; i++)
		for (size_t j = i + 1; j < SEM_N_CASES; j++)
			if (strcmp(sem_cases[i].name, sem_cases[j].name) == 0)
				fail_msg("duplicate case name %s", sem_cases[i].name);
}

static void reference_follows_every_rule(void **state)
{
	(void)state;
	run_table(run_reference, "reference");
}

static void engine_follows_every_rule(void **state)
{
	(void)state;
	run_table(run_engine, "engine");
}

/* The case named `name`, built; fails when the table lacks it. */
static const sem_case *find_case(const char *name)
{
	for (size_t i = 0; i < SEM_N_CASES; i++)
		if (strcmp(sem_cases[i].name, name) == 0)
			return &sem_cases[i];
	fail_msg("no case %s", name);
	return NULL;
}

static void reference_null_options_are_the_defaults(void **state)
{
	const sem_case *c = find_case("subaddress_matches_base_policy");
	allowd_decision d;
	built b;

	(void)state;
	build(&b, c);
	assert_int_equal(allowd_evaluate_reference(b.ptrs, b.n_pol, NULL, &b.msg, &d), 0);
	assert_true(check(c, &b, &d, "reference (NULL options)"));
	allowd_decision_clear(&d);
	unbuild(&b);
}

/* A match limit of 1 abandons any regex match that has to backtrack. */
static void tiny_match_limit_counts_hits(evaluator ev, const char *engine)
{
	static const sem_case c = {
	    .name = "tiny_match_limit",
	    .pol = {P(1, EMAIL, true, "T", "(.*a){8}@.*"),
	            P(2, EMAIL, false, "T", "b@example.com")},
	    .hdr = "bananas-and-more@example.com",
	    .env = "b@example.com",
	    .rcpt = {BOB},
	};
	allowd_decision d;
	built b;

	build(&b, &c);
	b.opts.regex_match_limit = 1;
	memset(&d, 0, sizeof(d));
	assert_int_equal(ev(&b, &d), 0);
	if (d.n_matches != 1 || d.matches[0].policy_id != 2 || d.regex_limit_hits < 1) {
		dump(engine, &d);
		fail_msg("%s: a regex over the match limit must count as no match and a hit",
		         engine);
	}
	allowd_decision_clear(&d);
	unbuild(&b);
}

static void reference_match_limit_from_options(void **state)
{
	(void)state;
	tiny_match_limit_counts_hits(run_reference, "reference");
}

static void engine_match_limit_from_options(void **state)
{
	(void)state;
	tiny_match_limit_counts_hits(run_engine, "engine");
}

static void reference_invalid_utf8_subject_is_no_match(void **state)
{
	static const sem_case c = {
	    .name = "invalid_utf8",
	    .pol = {P(1, EMAIL, true, "T", ".*")},
	    .hdr = "\xff\xfe@example.com",
	    .rcpt = {BOB},
	};
	allowd_decision d;
	built b;

	(void)state;
	build(&b, &c);
	assert_int_equal(allowd_evaluate_reference(b.ptrs, b.n_pol, &b.opts, &b.msg, &d), 0);
	assert_int_equal(d.n_matches, 0);
	assert_int_equal(d.regex_limit_hits, 0);
	allowd_decision_clear(&d);
	unbuild(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(table_covers_at_least_100_cases),
	    cmocka_unit_test(reference_follows_every_rule),
	    cmocka_unit_test(engine_follows_every_rule),
	    cmocka_unit_test(reference_null_options_are_the_defaults),
	    cmocka_unit_test(reference_match_limit_from_options),
	    cmocka_unit_test(engine_match_limit_from_options),
	    cmocka_unit_test(reference_invalid_utf8_subject_is_no_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_differential.c - the indexed engine against the reference evaluator
 * on seeded random policy sets and random messages.  The vocabulary is
 * small and shared between policies and messages (domains, subaddresses,
 * case variants, IDN forms, IPs inside and outside blocks, passing and
 * failing authentication) so that most messages match something.  Every
 * decision must be identical, and allowd_evaluate_batch over runs of the
 * same messages must give what allowd_evaluate gives one at a time.  The
 * server's engine (allowd_engine_*) is held to the same standard under a
 * random stream of creates, edits and deletes.
 * ALLOWD_TEST_SEED=<n> replays a run (the registry test's rebuilds run on
 * their own thread, so its timing, not its writes, can differ).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "allowd/engine.h"
#include "allowd/error.h"
#include "allowd/policy.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- random numbers (xorshift64*) ----------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t pick(size_t n)
{
	return (size_t)(rnd() % n);
}

static bool chance(unsigned percent)
{
	return rnd() % 100 < percent;
}

#define ONE_OF(a) ((a)[pick(ARRAY_LEN(a))])

/* ---- the vocabulary ------------------------------------------------------- */

/* clang-format off */

static const char *const locals[] = {"alice", "bob",        "carol", "news",
				     "support", "a.b", "postmaster", "+news", "\"a b\""};
static const char *const tags[] = {"+news", "+a+b", "-x", "+Tag"};
/* Message-side spellings; policies spell them too and the validator normalises. */
static const char *const domains[] = {
    "example.com",      "mail.example.com",       "example.co.uk",  "mail.example.co.uk",
    "example.org",      "shop.example.org",       "corp.example",   "other.example",
    "b\xc3\xbc" "cher.example", "xn--bcher-kva.example", "mailer.example", "out.mailer.example",
    "B\xc3\x9c" "CHER.example", "XN--BCHER-KVA.example",
};
/* As an A-R parser reports them: A-labels, no trailing dot. */
static const char *const auth_domains[] = {
    "example.com", "mail.example.com", "example.co.uk", "mail.example.co.uk",
    "example.org", "corp.example",     "other.example", "xn--bcher-kva.example",
    "co.uk",       "mailer.example",   "",
};
static const char *const client_ips[] = {
    "8.8.8.8",      "8.8.8.200",       "8.8.9.1",          "1.1.1.1",
    "9.1.2.3",      "::ffff:8.8.8.8",  "::FFFF:1.1.1.1",   "2606:4700::1",
    "2606:4700:10::6816:1", "2606:4701::1", "2a00:1450:4001:82a::200e",
    "2A00:1450:4001:082A:0:0:0:200E", "8.8.8.x", "[8.8.8.8]",
};
static const char *const server_names[] = {
    "mx.example.net", "MX1.Example.NET", "out.mailer.example", "mx.example.com",
    "mail.example.co.uk", "mx.example.com.", "mx.b\xc3\xbc" "cher.example", "[8.8.8.8]",
};
static const char *const ip_patterns[] = {
    "8.8.8.8", "8.8.8.0/24", "8.0.0.0/7", "1.1.1.1", "9.1.2.3",
    "2606:4700::/32", "2606:4700::1", "2a00:1450::/32", "2a00:1450:4001:82a::200e",
};
static const char *const email_regexes[] = {
    ".*@example\\.com", "alice@.*", "(alice|bob)(\\+.*)?@(.+\\.)?example\\.com",
    "[a-z]+@corp\\.example", "support@.*", "postmaster", ".*@xn--bcher-kva\\.example",
    "\\Qa.b@example.com\\E", "ALICE@EXAMPLE\\.COM", "news\\+.*@.*", "\\u0061lice@.*",
    ".*@mail\\..*", "bob|carol@corp\\.example",
};
static const char *const domain_regexes[] = {
    "(.+\\.)?example\\.com", ".*\\.example\\.net", "example\\.co\\.uk", ".*\\.co\\.uk",
    "corp\\.example", "xn--bcher-kva\\.example", "mx\\d*\\.example\\.(net|com)", ".*mailer.*",
    ".*\\.xn--bcher-kva\\.example",
};
static const char *const ip_regexes[] = {
    "8\\.8\\.8\\.\\d+", "2606:4700:.*", "8\\.8\\..*", "1\\.1\\.1\\.1", "(8|9)\\..*",
    "2a00:1450:4001:82a::200e",
};

/* clang-format on */

/* ---- strings owned by one run ------------------------------------------------ */

#define POOL_MAX 64

typedef struct pool {
	char *s[POOL_MAX];
	size_t n;
} pool;

static const char *keep(pool *p, char *s)
{
	assert_non_null(s);
	assert_true(p->n < POOL_MAX);
	p->s[p->n++] = s;
	return s;
}

static void pool_clear(pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->s[i]);
	p->n = 0;
}

static void flip_case(char *s)
{
	for (; *s; s++)
		if (((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) && chance(50))
			*s ^= 0x20;
}

/* A domain as a message (or a policy author) might spell it. */
static char *random_domain(bool message)
{
	const char *d = ONE_OF(domains);
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "%s%s", d, message && chance(10) ? "." : "");
	char *s;

	assert_true(n > 0 && (size_t)n < sizeof(buf));
	s = strdup(buf);
	assert_non_null(s);
	if (chance(15))
		flip_case(s);
	return s;
}

static char *random_address(bool message)
{
	char buf[256];
	char *dom;
	int n;

	if (message && chance(3)) {
		static const char *const broken[] = {"alice", "@example.com", "alice@",
		                                     "Postmaster"};
		char *s = strdup(ONE_OF(broken));
		assert_non_null(s);
		return s;
	}
	dom = random_domain(message);
	n = snprintf(buf, sizeof(buf), "%s%s@%s", ONE_OF(locals), chance(30) ? ONE_OF(tags) : "",
	             dom);
	free(dom);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	if (chance(15))
		flip_case(buf);
	char *s = strdup(buf);
	assert_non_null(s);
	return s;
}

/* ---- random policies ------------------------------------------------------- */

/* A valid policy with pattern_norm set by the validator, as the store would. */
static allowd_policy *random_policy(int64_t id)
{
	for (;;) {
		allowd_policy *p = NULL;
		char *pattern;

		assert_int_equal(allowd_policy_new(&p), 0);
		p->id = id;
		p->pattern_type = (allowd_pattern_type)(1 + pick(3));
		p->is_regex = chance(35);
		if (p->is_regex) {
			const char *re =
			    p->pattern_type == ALLOWD_PATTERN_EMAIL    ? ONE_OF(email_regexes)
			    : p->pattern_type == ALLOWD_PATTERN_DOMAIN ? ONE_OF(domain_regexes)
			                                               : ONE_OF(ip_regexes);
			pattern = strdup(re);
		} else if (p->pattern_type == ALLOWD_PATTERN_EMAIL) {
			pattern = random_address(false);
		} else if (p->pattern_type == ALLOWD_PATTERN_DOMAIN) {
			pattern = random_domain(false);
		} else {
			pattern = strdup(ONE_OF(ip_patterns));
		}
		assert_non_null(pattern);
		p->pattern = pattern;
		do {
			p->is_trusted_sender = chance(40);
			p->is_acceptable_sender = chance(40);
			p->is_exempt_recipient = chance(35);
		} while (!p->is_trusted_sender && !p->is_acceptable_sender &&
		         !p->is_exempt_recipient);
		p->verify_sender = chance(30);
		if (allowd_policy_validate(p) == 0)
			return p;
		allowd_policy_free(p); /* e.g. exempt on a DOMAIN or IP pattern: draw again */
	}
}

/* ---- random messages ------------------------------------------------------- */

static void random_check(allowd_auth_check *c, const char *own_domain)
{
	static const allowd_auth_result results[] = {
	    ALLOWD_AUTH_NONE, ALLOWD_AUTH_PASS,     ALLOWD_AUTH_PASS,      ALLOWD_AUTH_PASS,
	    ALLOWD_AUTH_FAIL, ALLOWD_AUTH_SOFTFAIL, ALLOWD_AUTH_TEMPERROR,
	};
	const char *d = ONE_OF(auth_domains);
	char *at;
	int n;

	c->result = ONE_OF(results);
	/* Often the domain of the identity itself. */
	if (own_domain && (at = strrchr(own_domain, '@')) && chance(50) &&
	    strspn(at + 1, "abcdefghijklmnopqrstuvwxyz.-ABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
	        strlen(at + 1) &&
	    at[1] && at[strlen(at) - 1] != '.')
		d = at + 1;
	n = snprintf(c->domain, sizeof(c->domain), "%s", d);
	assert_true(n >= 0 && (size_t)n < sizeof(c->domain));
	/* Lower case, as engine.h promises; test_semantics.c covers other spellings. */
	for (char *q = c->domain; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
}

static void random_message(allowd_message *m, pool *p, const char **reply, const char **rcpt)
{
	static const unsigned disp_sets[] = {
	    0,
	    0,
	    0,
	    ALLOWD_DISP_SPAM,
	    ALLOWD_DISP_MALICIOUS | ALLOWD_DISP_SPOOF,
	    ALLOWD_DISP_MALICIOUS_BEC | ALLOWD_DISP_BULK | ALLOWD_DISP_EXTERNAL,
	    ALLOWD_DISP_ENCRYPTED | ALLOWD_DISP_NONE,
	    ALLOWD_DISP_SUSPICIOUS | ALLOWD_DISP_SPAM,
	};

	memset(m, 0, sizeof(*m));
	if (chance(8))
		m->envelope_from = chance(50) ? NULL : "";
	else
		m->envelope_from = keep(p, random_address(true));
	if (!chance(5))
		m->header_from = m->envelope_from && *m->envelope_from && chance(30)
		                     ? m->envelope_from
		                     : keep(p, random_address(true));
	m->n_reply_to = pick(3);
	for (size_t i = 0; i < m->n_reply_to; i++)
		reply[i] = keep(p, random_address(true));
	m->reply_to = reply;
	m->n_recipients = pick(4);
	for (size_t i = 0; i < m->n_recipients; i++) {
		if (chance(60)) {
			char buf[128];
			int n = snprintf(buf, sizeof(buf), "%s%s@corp.example", ONE_OF(locals),
			                 chance(20) ? "+lists" : "");
			assert_true(n > 0 && (size_t)n < sizeof(buf));
			if (chance(15))
				flip_case(buf);
			rcpt[i] = keep(p, strdup(buf));
		} else {
			rcpt[i] = keep(p, random_address(true));
		}
	}
	m->recipients = rcpt;
	if (!chance(10))
		m->client_ip = ONE_OF(client_ips);
	if (!chance(20))
		m->server_name = ONE_OF(server_names);
	if (!chance(20))
		random_check(&m->auth.spf, m->envelope_from);
	m->auth.n_dkim = pick(4);
	for (size_t i = 0; i < m->auth.n_dkim; i++)
		random_check(&m->auth.dkim[i], m->header_from);
	if (!chance(20))
		random_check(&m->auth.dmarc, m->header_from);
	m->dispositions = chance(30) ? (unsigned)pick(1u << ALLOWD_DISP_COUNT) : ONE_OF(disp_sets);
}

/* ---- comparing ------------------------------------------------------------- */

static const char *str(const char *s)
{
	return s ? s : "(null)";
}

static void dump_decision(const char *who, const allowd_decision *d)
{
	fprintf(stderr, "  %s: %zu recipient(s), %zu match(es), %d limit hit(s)\n", who,
	        d->n_recipients, d->n_matches, d->regex_limit_hits);
	for (size_t i = 0; i < d->n_recipients; i++)
		fprintf(stderr, "    rcpt %zu %s waived 0x%x remaining 0x%x skip %d\n", i,
		        str(d->recipients[i].address), d->recipients[i].waived,
		        d->recipients[i].remaining, d->recipients[i].skip_link_following);
	for (size_t i = 0; i < d->n_matches; i++) {
		const allowd_match *m = &d->matches[i];
		fprintf(stderr, "    match %lld %s[%zu] \"%s\" honored %d \"%s\"\n",
		        (long long)m->policy_id, allowd_field_name(m->field), m->index,
		        str(m->value), m->honored, str(m->verification));
	}
}

static void dump_case(allowd_policy *const *pols, size_t n, const allowd_engine_options *o,
                      const allowd_message *m)
{
	static const char *const rnames[] = {"none",    "pass",      "fail",      "softfail",
	                                     "neutral", "temperror", "permerror", "policy"};

	fprintf(stderr, "  options: delimiter '%c' (0x%02x), prefilter %d\n",
	        o->subaddress_delimiter ? o->subaddress_delimiter : '0',
	        (unsigned)(unsigned char)o->subaddress_delimiter, o->use_prefilter);
	fprintf(stderr, "  %zu policies:\n", n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "    id %lld %s%s %s%s%s%s \"%s\" (norm \"%s\")\n",
		        (long long)pols[i]->id, allowd_pattern_type_name(pols[i]->pattern_type),
		        pols[i]->is_regex ? " regex" : "", pols[i]->is_trusted_sender ? "T" : "",
		        pols[i]->is_acceptable_sender ? "A" : "",
		        pols[i]->is_exempt_recipient ? "E" : "", pols[i]->verify_sender ? "V" : "",
		        pols[i]->pattern, pols[i]->pattern_norm);
	fprintf(stderr,
	        "  message: envelope_from \"%s\" header_from \"%s\" client_ip \"%s\" "
	        "server_name \"%s\" dispositions 0x%x\n",
	        str(m->envelope_from), str(m->header_from), str(m->client_ip), str(m->server_name),
	        m->dispositions);
	for (size_t i = 0; i < m->n_reply_to; i++)
		fprintf(stderr, "    reply_to[%zu] \"%s\"\n", i, str(m->reply_to[i]));
	for (size_t i = 0; i < m->n_recipients; i++)
		fprintf(stderr, "    recipient[%zu] \"%s\"\n", i, str(m->recipients[i]));
	fprintf(stderr, "    spf %s \"%s\", dmarc %s \"%s\"\n", rnames[m->auth.spf.result],
	        m->auth.spf.domain, rnames[m->auth.dmarc.result], m->auth.dmarc.domain);
	for (size_t i = 0; i < m->auth.n_dkim; i++)
		fprintf(stderr, "    dkim %s \"%s\"\n", rnames[m->auth.dkim[i].result],
		        m->auth.dkim[i].domain);
}

static bool same_text(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static bool same_decision(const allowd_decision *a, const allowd_decision *b)
{
	if (a->n_recipients != b->n_recipients || a->n_matches != b->n_matches ||
	    a->regex_limit_hits != b->regex_limit_hits)
		return false;
	for (size_t i = 0; i < a->n_recipients; i++) {
		const allowd_recipient_decision *x = &a->recipients[i], *y = &b->recipients[i];
		if (x->address != y->address || x->waived != y->waived ||
		    x->remaining != y->remaining ||
		    x->skip_link_following != y->skip_link_following)
			return false;
	}
	for (size_t i = 0; i < a->n_matches; i++) {
		const allowd_match *x = &a->matches[i], *y = &b->matches[i];
		if (x->policy_id != y->policy_id || x->field != y->field || x->index != y->index ||
		    !same_text(x->value, y->value) || x->honored != y->honored ||
		    !same_text(x->verification, y->verification))
			return false;
	}
	return true;
}

/* ---- the runs ---------------------------------------------------------------- */

static uint64_t seed_from_env(void)
{
	const char *s = getenv("ALLOWD_TEST_SEED");
	char *end;
	unsigned long long v;

	if (s && *s) {
		errno = 0;
		v = strtoull(s, &end, 0);
		if (errno == 0 && *end == '\0' && v != 0)
			return (uint64_t)v;
		fail_msg("ALLOWD_TEST_SEED must be a non-zero integer, not \"%s\"", s);
	}
	return ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ULL;
}

typedef struct stats {
	size_t messages, matches, honored, decided_with_waiver, batched;
} stats;

/* Messages kept for one allowd_evaluate_batch call. */
#define BATCH_N 21

typedef struct batch {
	allowd_message m[BATCH_N];
	pool p[BATCH_N];
	const char *reply[BATCH_N][4], *rcpt[BATCH_N][4];
	size_t n, target;
} batch;

/* Evaluates the kept messages as one batch and one by one; false on a difference. */
static bool flush_batch(uint64_t seed, allowd_policy *const *pols, size_t n,
                        const allowd_engine_options *o, const allowd_snapshot *snap, batch *b,
                        stats *st)
{
	const allowd_message *v[BATCH_N];
	allowd_decision got[BATCH_N];
	size_t failed = (size_t)-1;
	bool ok = true;

	for (size_t i = 0; i < b->n; i++)
		v[i] = &b->m[i];
	assert_int_equal(allowd_evaluate_batch(snap, v, b->n, got, &failed), 0);
	assert_true(failed == (size_t)-1);
	for (size_t i = 0; i < b->n; i++) {
		allowd_decision want;
		assert_int_equal(allowd_evaluate(snap, v[i], &want), 0);
		if (ok && !same_decision(&want, &got[i])) {
			fprintf(stderr,
			        "BATCH DIFFERS (seed %llu, %zu policies, message %zu of a batch of "
			        "%zu); replay with ALLOWD_TEST_SEED=%llu\n",
			        (unsigned long long)seed, n, i, b->n, (unsigned long long)seed);
			dump_case(pols, n, o, v[i]);
			dump_decision("allowd_evaluate", &want);
			dump_decision("allowd_evaluate_batch", &got[i]);
			ok = false;
		}
		allowd_decision_clear(&want);
	}
	for (size_t i = 0; i < b->n; i++) {
		allowd_decision_clear(&got[i]);
		pool_clear(&b->p[i]);
	}
	st->batched += b->n;
	b->n = 0;
	b->target = 1 + pick(BATCH_N);
	return ok;
}

/*
 * One policy set of `n` policies and `n_messages` messages against it.
 * Returns false (after explaining) on the first disagreement.
 */
static bool run_set(uint64_t seed, size_t n, size_t n_messages, stats *st)
{
	allowd_policy **pols = calloc(n ? n : 1, sizeof(*pols));
	allowd_engine_options o;
	allowd_snapshot *snap = NULL;
	batch *b = calloc(1, sizeof(*b));
	bool ok = true;

	assert_non_null(b);
	b->target = 1 + pick(BATCH_N);
	assert_non_null(pols);
	/* Ids are a shuffled 1..n, so sorting by id is exercised. */
	for (size_t i = 0; i < n; i++)
		pols[i] = random_policy((int64_t)i + 1);
	for (size_t i = n; i > 1; i--) {
		size_t j = pick(i);
		int64_t t = pols[i - 1]->id;
		pols[i - 1]->id = pols[j]->id;
		pols[j]->id = t;
	}
	allowd_engine_options_init(&o);
	o.subaddress_delimiter = chance(70) ? '+' : chance(50) ? '-' : '\0';
	o.use_prefilter = chance(50);
	if (allowd_snapshot_build(&snap, pols, n, &o) != 0) {
		fprintf(stderr, "seed %llu: allowd_snapshot_build failed: %s\n",
		        (unsigned long long)seed, allowd_error_last()->message);
		dump_case(pols, n, &o, &(allowd_message){0});
		ok = false;
		goto done;
	}
	for (size_t k = 0; k < n_messages && ok; k++) {
		allowd_decision want, got;
		allowd_message *mp = &b->m[b->n];
		allowd_message m;

		random_message(mp, &b->p[b->n], b->reply[b->n], b->rcpt[b->n]);
		m = *mp;
		memset(&want, 0, sizeof(want));
		memset(&got, 0, sizeof(got));
		assert_int_equal(allowd_evaluate_reference(pols, n, &o, &m, &want), 0);
		assert_int_equal(allowd_evaluate(snap, &m, &got), 0);
		if (!same_decision(&want, &got)) {
			fprintf(stderr,
			        "DISAGREEMENT (seed %llu, %zu policies, message %zu); replay with "
			        "ALLOWD_TEST_SEED=%llu\n",
			        (unsigned long long)seed, n, k, (unsigned long long)seed);
			dump_case(pols, n, &o, &m);
			dump_decision("reference", &want);
			dump_decision("engine", &got);
			ok = false;
		}
		st->messages++;
		st->matches += want.n_matches;
		for (size_t i = 0; i < want.n_matches; i++)
			st->honored += want.matches[i].honored;
		for (size_t i = 0; i < want.n_recipients; i++)
			if (want.recipients[i].waived) {
				st->decided_with_waiver++;
				break;
			}
		allowd_decision_clear(&want);
		allowd_decision_clear(&got);
		if (++b->n == b->target || k + 1 == n_messages)
			ok = flush_batch(seed, pols, n, &o, snap, b, st) && ok;
	}
done:
	for (size_t i = 0; i < b->n; i++)
		pool_clear(&b->p[i]);
	free(b);
	allowd_snapshot_unref(snap);
	for (size_t i = 0; i < n; i++)
		allowd_policy_free(pols[i]);
	free(pols);
	return ok;
}

static void engine_equals_reference_on_random_mail(void **state)
{
	static const struct {
		size_t policies, sets, messages;
	} plan[] = {
	    {0, 1, 50}, {1, 25, 20}, {4, 12, 50}, {16, 6, 100}, {64, 4, 100}, {250, 1, 150},
	};
	uint64_t seed = seed_from_env();
	stats st = {0, 0, 0, 0, 0};

	(void)state;
	rng_state = seed;
	for (size_t i = 0; i < ARRAY_LEN(plan); i++)
		for (size_t s = 0; s < plan[i].sets; s++)
			if (!run_set(seed, plan[i].policies, plan[i].messages, &st))
				fail_msg("the engine disagrees with the reference; seed %llu "
				         "(ALLOWD_TEST_SEED=%llu replays it)",
				         (unsigned long long)seed, (unsigned long long)seed);
	print_message("seed %llu: %zu messages, %zu matches (%zu honoured), %zu with a waiver\n",
	              (unsigned long long)seed, st.messages, st.matches, st.honored,
	              st.decided_with_waiver);
	assert_true(st.messages >= 2000);
	assert_true(st.batched == st.messages);
	/* The vocabulary is meant to make matches common; guard against drift. */
	assert_true(st.matches > st.messages);
	assert_true(st.decided_with_waiver > st.messages / 4);
}

/*
 * A batch stops at the first message that fails, as a loop of
 * allowd_evaluate would: the ones before it are decided, it and the rest
 * are empty, and *failed names it.  Here the failure is a spent regex work
 * budget given to messages 11 onwards (a batch of 20 spans three groups).
 */
static void batch_stops_at_the_first_failing_message(void **state)
{
	allowd_policy *pols[2];
	allowd_snapshot *snap = NULL;
	allowd_message m[20];
	const allowd_message *v[20];
	allowd_decision got[20];
	allowd_budget spent;
	size_t failed = 0;

	(void)state;
	for (int i = 0; i < 2; i++) {
		pols[i] = calloc(1, sizeof(*pols[i]));
		assert_non_null(pols[i]);
		pols[i]->id = i + 1;
		pols[i]->pattern_type = i ? ALLOWD_PATTERN_DOMAIN : ALLOWD_PATTERN_EMAIL;
		pols[i]->is_regex = i == 1;
		pols[i]->pattern = strdup(i ? ".*\\.example" : "alice@bank.example");
		pols[i]->pattern_norm = strdup(pols[i]->pattern);
		pols[i]->is_trusted_sender = true;
	}
	assert_int_equal(allowd_snapshot_build(&snap, pols, 2, NULL), 0);
	allowd_budget_init(&spent, 1);
	spent.used_us = spent.limit_us;
	spent.exhausted = 1;
	for (size_t i = 0; i < 20; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].envelope_from = i % 2 ? "alice@bank.example" : "bob@other.example";
		m[i].budget = i >= 11 ? &spent : NULL;
		v[i] = &m[i];
	}
	assert_int_equal(allowd_evaluate_batch(snap, v, 20, got, &failed), ALLOWD_EINVALID);
	assert_int_equal(failed, 11);
	for (size_t i = 0; i < 20; i++) {
		allowd_decision want;
		if (i < 11) {
			assert_int_equal(allowd_evaluate(snap, v[i], &want), 0);
			assert_true(same_decision(&want, &got[i]));
			assert_int_equal(got[i].n_matches, i % 2 ? 2 : 1);
			allowd_decision_clear(&want);
		} else {
			assert_int_equal(got[i].n_matches, 0);
			assert_null(got[i].matches);
			assert_null(got[i].storage);
		}
		allowd_decision_clear(&got[i]);
	}
	/* nothing fails: every message decided */
	for (size_t i = 0; i < 20; i++)
		m[i].budget = NULL;
	failed = 99;
	assert_int_equal(allowd_evaluate_batch(snap, v, 20, got, &failed), 0);
	assert_int_equal(failed, 99);
	for (size_t i = 0; i < 20; i++)
		allowd_decision_clear(&got[i]);
	assert_int_equal(allowd_evaluate_batch(snap, v, 0, got, NULL), 0);
	allowd_snapshot_unref(snap);
	for (int i = 0; i < 2; i++)
		allowd_policy_free(pols[i]);
}

/*
 * The server's engine (registry: base, regexes, delta levels and one-policy
 * snapshots, background rebuilds) under a random stream of writes: after
 * every write its decisions must equal the reference's over the account's
 * current policies.  A base of filler policies that no message can match
 * (their domain is in no message) raises the rebuild threshold to 781
 * entries, so the delta passes through every shape: one-policy snapshots,
 * the small level, the large level, members edited, deleted or folded into
 * a rebuilt base while writes continue.
 */
#define FILLER 100000
#define WRITES 700

typedef struct live {
	allowd_policy **v; /* the current interesting policies, any order */
	size_t n;
	int64_t next_id;
} live;

static bool registry_check(uint64_t seed, allowd_engine *e, const live *l,
                           const allowd_engine_options *o, size_t write, stats *st)
{
	for (int k = 0; k < 2; k++) {
		allowd_message m;
		pool p = {0};
		const char *reply[4], *rcpt[4];
		allowd_decision want, got;
		bool same;

		random_message(&m, &p, reply, rcpt);
		assert_int_equal(allowd_evaluate_reference(l->v, l->n, o, &m, &want), 0);
		assert_int_equal(allowd_engine_evaluate(e, "acct", &m, &got), 0);
		same = same_decision(&want, &got);
		if (!same) {
			fprintf(stderr,
			        "REGISTRY DISAGREES (seed %llu, after write %zu, %zu live policies); "
			        "replay with ALLOWD_TEST_SEED=%llu\n",
			        (unsigned long long)seed, write, l->n, (unsigned long long)seed);
			dump_case(l->v, l->n, o, &m);
			dump_decision("reference", &want);
			dump_decision("registry", &got);
		}
		st->messages++;
		st->matches += want.n_matches;
		allowd_decision_clear(&want);
		allowd_decision_clear(&got);
		pool_clear(&p);
		if (!same)
			return false;
	}
	return true;
}

static void registry_equals_reference_under_writes(void **state)
{
	uint64_t seed = seed_from_env();
	allowd_policy **filler = calloc(FILLER + 64, sizeof(*filler));
	allowd_engine_options o;
	allowd_engine *e = NULL;
	allowd_engine_stats es;
	live l = {calloc(WRITES * 4 + 64, sizeof(allowd_policy *)), 0, FILLER + 1};
	stats st = {0, 0, 0, 0, 0};
	size_t max_delta = 0, with_two_levels = 0, max_singles = 0;
	char buf[64];

	(void)state;
	rng_state = seed ^ 0x5DEECE66DULL;
	assert_non_null(filler);
	assert_non_null(l.v);
	allowd_engine_options_init(&o);
	o.subaddress_delimiter = chance(70) ? '+' : '\0';
	for (size_t i = 0; i < FILLER; i++) {
		snprintf(buf, sizeof(buf), "filler%zu@filler.invalid", i);
		assert_int_equal(allowd_policy_new(&filler[i]), 0);
		filler[i]->id = (int64_t)i + 1;
		filler[i]->pattern_type = ALLOWD_PATTERN_EMAIL;
		filler[i]->pattern = strdup(buf);
		filler[i]->is_trusted_sender = true;
		assert_int_equal(allowd_policy_validate(filler[i]), 0);
	}
	for (size_t i = 0; i < 40; i++) {
		l.v[l.n] = random_policy(l.next_id++);
		filler[FILLER + i] = l.v[l.n++];
	}
	assert_int_equal(allowd_engine_new(&e, &o), 0);
	assert_int_equal(allowd_engine_load(e, "acct", filler, FILLER + 40), 0);
	for (size_t i = 0; i < FILLER; i++)
		allowd_policy_free(filler[i]);
	free(filler);

	for (size_t w = 0; w < WRITES; w++) {
		allowd_engine_change ch[4];
		allowd_policy *made[4] = {0}, *gone[4];
		size_t n = 1 + pick(4), n_gone = 0;
		for (size_t c = 0; c < n; c++) {
			unsigned r = (unsigned)pick(100);
			if (r < 60 || l.n < 10) { /* create */
				made[c] = random_policy(l.next_id++);
				ch[c] = (allowd_engine_change){made[c]->id, made[c]};
				l.v[l.n++] = made[c];
			} else if (r < 88) { /* edit: a new version, maybe of another kind */
				size_t i = pick(l.n);
				made[c] = random_policy(l.v[i]->id);
				ch[c] = (allowd_engine_change){made[c]->id, made[c]};
				gone[n_gone++] = l.v[i]; /* an earlier change may point at it */
				l.v[i] = made[c];
			} else { /* delete */
				size_t i = pick(l.n);
				ch[c] = (allowd_engine_change){l.v[i]->id, NULL};
				gone[n_gone++] = l.v[i];
				l.v[i] = l.v[--l.n];
			}
		}
		/* a change's policy must outlive the call only: the engine copies it */
		assert_int_equal(allowd_engine_apply(e, "acct", ch, n), 0);
		for (size_t g = 0; g < n_gone; g++)
			allowd_policy_free(gone[g]);
		allowd_engine_stats_get(e, "acct", &es);
		if (es.delta_entries > max_delta)
			max_delta = es.delta_entries;
		with_two_levels += es.delta_levels == 2;
		if (es.delta_singles > max_singles)
			max_singles = es.delta_singles;
		if (!registry_check(seed, e, &l, &o, w, &st))
			fail_msg("the registry disagrees with the reference; ALLOWD_TEST_SEED=%llu",
			         (unsigned long long)seed);
		if (chance(2))
			allowd_engine_quiesce(e); /* sometimes let a rebuild land first */
	}
	/* the last rebuild lands, and the account is checked once more after it */
	allowd_engine_quiesce(e);
	if (!registry_check(seed, e, &l, &o, WRITES, &st))
		fail_msg("the registry disagrees with the reference after its rebuild; "
		         "ALLOWD_TEST_SEED=%llu",
		         (unsigned long long)seed);
	allowd_engine_stats_get(e, "acct", &es);
	print_message("seed %llu: %zu writes, %zu messages, %zu matches, delta up to %zu entries, "
	              "%zu writes checked with both levels, up to %zu singles, %llu rebuilds\n",
	              (unsigned long long)seed, (size_t)WRITES, st.messages, st.matches, max_delta,
	              with_two_levels, max_singles, (unsigned long long)es.rebuilds);
	/*
	 * The stream must have checked many writes against both levels at once
	 * (members of both edited and deleted), and seen a rebuild land.  Singles:
	 * at most 16 exact ones, plus the delta's regexes.
	 */
	assert_true(with_two_levels >= 50);
	assert_true(es.rebuilds >= 1);
	assert_true(st.matches > st.messages / 2);
	allowd_engine_free(e);
	for (size_t i = 0; i < l.n; i++)
		allowd_policy_free(l.v[i]);
	free(l.v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(engine_equals_reference_on_random_mail),
	    cmocka_unit_test(batch_stops_at_the_first_failing_message),
	    cmocka_unit_test(registry_equals_reference_under_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

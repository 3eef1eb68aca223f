/*
 * reference.c - the reference evaluator: a plain loop over every policy and
 * every field of the message, applying docs/semantics.md ("Matching
 * policies to mail") with no index.  It shares no code with the indexed
 * engine (engine.c), so the differential tests compare two independent
 * readings of the rules; it is also the benchmark baseline.
 */
#include "allowd/engine.h"
#include "allowd/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <idn2.h>
#include <libpsl.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define DEFAULT_DELIMITER   '+'
#define DEFAULT_MATCH_LIMIT 100000u
#define DEFAULT_DEPTH_LIMIT 1000u
#define DISP_KNOWN          ((1u << ALLOWD_DISP_COUNT) - 1u)

/* The verification outcomes; both evaluators use exactly these texts. */
static const char V_NOT_REQUIRED[] = "not required";
static const char V_SPF[] = "spf pass";
static const char V_DMARC[] = "dmarc pass";
static const char V_DKIM[] = "dkim pass";
static const char V_MESSAGE[] = "message authenticated";
static const char V_SENDER_FAIL[] = "sender not authenticated";
static const char V_MESSAGE_FAIL[] = "message not authenticated";
static const char V_REPLY_TO[] = "reply-to is never authenticated";

/* One address of the message, normalised once per evaluation. */
struct addr {
	const char *raw;    /* as given; NULL when absent */
	char *norm;         /* "local@domain" normalised; NULL when it does not parse */
	char *base;         /* norm without its subaddress; NULL when there is none */
	const char *domain; /* points into norm; NULL with norm */
};

/* Everything about the message the loop compares against. */
struct facts {
	struct addr env, hdr;
	struct addr *reply; /* n_reply_to */
	struct addr *rcpt;  /* n_recipients */
	bool have_ip;
	uint8_t ip[16];                     /* IPv4 as IPv4-mapped IPv6 */
	char ip_text[INET6_ADDRSTRLEN];     /* inet_ntop form; dotted quad for IPv4 */
	char *server;                       /* server_name normalised as a domain, or NULL */
	char *spf_domain, *dmarc_domain;    /* normalised, NULL when unusable */
	char *dkim_domain[ALLOWD_DKIM_MAX]; /* normalised d= of passing signatures */
	bool any_pass;                      /* SPF, DKIM or DMARC passed at all */
};

/* A policy's regex, compiled on first use within one evaluation. */
struct regex {
	pcre2_code *code;
	bool tried;
};

/* The state of one evaluation. */
struct eval {
	const allowd_message *m;
	const allowd_engine_options *o;
	struct facts f;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_compile_context *cctx;
	allowd_match *matches;
	size_t n_matches, cap_matches;
	unsigned sender_waived;
	bool skip_links;
	unsigned *rcpt_waived; /* n_recipients */
	int limit_hits;
};

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool present(const char *s)
{
	return s && *s;
}

/* ---- normalisation ---------------------------------------------------- */

/* Longer addresses, domains and regex subjects match nothing (engine.h). */
#define SUBJECT_MAX ALLOWD_SUBJECT_MAX

/*
 * A domain as allowd compares it: ASCII lower case, IDN labels as A-labels
 * (libidn2, IDNA2008 non-transitional, which also maps case), one trailing
 * dot dropped.  Returns 0 and a new string (NULL when `s` is not a domain
 * libidn2 accepts, or is empty), or ALLOWD_ERR when out of memory.
 */
static int domain_norm(char **out, const char *s, size_t len)
{
	char *in = NULL, *res = NULL;
	uint8_t *a = NULL;
	size_t n;
	int rc;

	*out = NULL;
	if (len == 0 || len >= 4 * (SUBJECT_MAX + 1)) /* the engine reads at most this much */
		return 0;
	in = malloc(len + 1);
	if (!in)
		return ALLOWD_ERR;
	for (size_t i = 0; i < len; i++)
		in[i] = ascii_lower(s[i]);
	in[len] = '\0';
	{
		/* ASCII names are only case-folded: IDNA is for non-ASCII ones */
		bool ascii = true;
		for (size_t i = 0; i < len; i++)
			ascii = ascii && (unsigned char)in[i] < 0x80;
		if (ascii) {
			n = len;
			if (n > 0 && in[n - 1] == '.')
				in[--n] = '\0';
			if (n == 0 || n > SUBJECT_MAX) {
				free(in);
				return 0;
			}
			*out = in;
			return 0;
		}
	}
	rc = idn2_lookup_u8((const uint8_t *)in, &a, IDN2_NONTRANSITIONAL);
	free(in);
	if (rc == IDN2_MALLOC)
		return ALLOWD_ERR;
	if (rc != IDN2_OK)
		return 0;
	n = strlen((const char *)a);
	if (n > 0 && a[n - 1] == '.')
		n--;
	if (n > 0 && n <= SUBJECT_MAX) {
		res = malloc(n + 1);
		if (!res) {
			idn2_free(a);
			return ALLOWD_ERR;
		}
		for (size_t i = 0; i < n; i++)
			res[i] = ascii_lower((char)a[i]);
		res[n] = '\0';
	}
	idn2_free(a);
	*out = res;
	return 0;
}

/*
 * Splits `raw` at its last '@'; the local part is lower-cased (ASCII) and
 * the domain normalised.  An empty local part or a domain that does not
 * normalise leaves a->norm NULL.  `base` is the address with the local part
 * cut at the first subaddress delimiter, when that leaves a local part.
 */
static int addr_norm(struct addr *a, const char *raw, char delim)
{
	const char *at;
	char *dom = NULL;
	size_t llen, dlen, cut;
	int rc;

	memset(a, 0, sizeof(*a));
	if (!present(raw))
		return 0;
	a->raw = raw;
	at = strrchr(raw, '@');
	if (!at || at == raw)
		return 0;
	if ((rc = domain_norm(&dom, at + 1, strlen(at + 1))) != 0)
		return rc;
	if (!dom)
		return 0;
	llen = (size_t)(at - raw);
	dlen = strlen(dom);
	a->norm = malloc(llen + 1 + dlen + 1);
	if (!a->norm) {
		free(dom);
		return ALLOWD_ERR;
	}
	for (size_t i = 0; i < llen; i++)
		a->norm[i] = ascii_lower(raw[i]);
	a->norm[llen] = '@';
	memcpy(a->norm + llen + 1, dom, dlen + 1);
	a->domain = a->norm + llen + 1;
	free(dom);
	if (llen + 1 + dlen > SUBJECT_MAX) { /* too long to be an address */
		free(a->norm);
		a->norm = NULL;
		a->domain = NULL;
		return 0;
	}

	delim = ascii_lower(delim);
	for (cut = 0; delim && cut < llen && a->norm[cut] != delim; cut++)
		;
	if (delim && cut > 0 && cut < llen) {
		a->base = malloc(cut + 1 + dlen + 1);
		if (!a->base)
			return ALLOWD_ERR;
		memcpy(a->base, a->norm, cut);
		memcpy(a->base + cut, a->norm + llen, 1 + dlen + 1);
	}
	return 0;
}

static void addr_free(struct addr *a)
{
	free(a->norm);
	free(a->base);
}

/*
 * Parses a bare IPv4 or IPv6 address into 16 bytes, IPv4 (and
 * IPv4-mapped IPv6) as ::ffff:a.b.c.d.  Returns whether it parsed and
 * whether it is IPv4.
 */
static bool ip_parse(const char *s, uint8_t out[16], bool *v4)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = true;
		return true;
	}
	if (inet_pton(AF_INET6, s, out) != 1)
		return false;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	*v4 = memcmp(out, mapped, 12) == 0;
	return true;
}

/* Whether `ip` lies in the block `cidr` ("addr" or "addr/len", canonical). */
static bool cidr_contains(const char *cidr, const uint8_t ip[16])
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(cidr, '/');
	size_t hlen = slash ? (size_t)(slash - cidr) : strlen(cidr);
	uint8_t net[16];
	bool v4;
	long plen;

	if (hlen == 0 || hlen >= sizeof(host))
		return false;
	memcpy(host, cidr, hlen);
	host[hlen] = '\0';
	if (!ip_parse(host, net, &v4))
		return false;
	plen = v4 ? 32 : 128;
	if (slash) {
		char *end;
		errno = 0;
		plen = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || plen < 0 || plen > (v4 ? 32 : 128))
			return false;
	}
	if (v4)
		plen += 96;
	for (long bit = 0; bit < plen; bit++) {
		unsigned mask = 0x80u >> (bit % 8);
		if ((net[bit / 8] & mask) != (ip[bit / 8] & mask))
			return false;
	}
	return true;
}

/* The organisational domain (PSL registrable domain), or `d` itself. */
static const char *org_domain(const char *d)
{
	const psl_ctx_t *psl = psl_builtin();
	const char *r = psl ? psl_registrable_domain(psl, d) : NULL;
	return r ? r : d;
}

static bool same_org(const char *a, const char *b)
{
	return a && b && strcmp(org_domain(a), org_domain(b)) == 0;
}

static int facts_build(struct facts *f, const allowd_message *m, char delim)
{
	const allowd_auth_facts *au = &m->auth;
	int rc;

	if ((rc = addr_norm(&f->env, m->envelope_from, delim)) ||
	    (rc = addr_norm(&f->hdr, m->header_from, delim)))
		return rc;
	if (m->n_reply_to) {
		f->reply = calloc(m->n_reply_to, sizeof(*f->reply));
		if (!f->reply)
			return ALLOWD_ERR;
		for (size_t i = 0; i < m->n_reply_to; i++)
			if ((rc = addr_norm(&f->reply[i], m->reply_to[i], delim)))
				return rc;
	}
	if (m->n_recipients) {
		f->rcpt = calloc(m->n_recipients, sizeof(*f->rcpt));
		if (!f->rcpt)
			return ALLOWD_ERR;
		for (size_t i = 0; i < m->n_recipients; i++)
			if ((rc = addr_norm(&f->rcpt[i], m->recipients[i], delim)))
				return rc;
	}
	if (present(m->client_ip)) {
		bool v4;
		f->have_ip = ip_parse(m->client_ip, f->ip, &v4);
		if (f->have_ip && !inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? f->ip + 12 : f->ip,
		                             f->ip_text, sizeof(f->ip_text)))
			f->have_ip = false;
	}
	if (present(m->server_name) &&
	    (rc = domain_norm(&f->server, m->server_name, strlen(m->server_name))))
		return rc;

	if (au->spf.result == ALLOWD_AUTH_PASS &&
	    (rc = domain_norm(&f->spf_domain, au->spf.domain,
	                      strnlen(au->spf.domain, sizeof(au->spf.domain)))))
		return rc;
	if (au->dmarc.result == ALLOWD_AUTH_PASS &&
	    (rc = domain_norm(&f->dmarc_domain, au->dmarc.domain,
	                      strnlen(au->dmarc.domain, sizeof(au->dmarc.domain)))))
		return rc;
	f->any_pass = au->spf.result == ALLOWD_AUTH_PASS || au->dmarc.result == ALLOWD_AUTH_PASS;
	for (size_t i = 0; i < au->n_dkim && i < ALLOWD_DKIM_MAX; i++) {
		const allowd_auth_check *k = &au->dkim[i];
		if (k->result != ALLOWD_AUTH_PASS)
			continue;
		f->any_pass = true;
		if ((rc = domain_norm(&f->dkim_domain[i], k->domain,
		                      strnlen(k->domain, sizeof(k->domain)))))
			return rc;
	}
	return 0;
}

static void facts_free(struct facts *f, const allowd_message *m)
{
	addr_free(&f->env);
	addr_free(&f->hdr);
	for (size_t i = 0; f->reply && i < m->n_reply_to; i++)
		addr_free(&f->reply[i]);
	for (size_t i = 0; f->rcpt && i < m->n_recipients; i++)
		addr_free(&f->rcpt[i]);
	free(f->reply);
	free(f->rcpt);
	free(f->server);
	free(f->spf_domain);
	free(f->dmarc_domain);
	for (size_t i = 0; i < ALLOWD_DKIM_MAX; i++)
		free(f->dkim_domain[i]);
}

/* ---- matching --------------------------------------------------------- */

/*
 * Whether the policy's regex matches the whole subject.  A regex that does
 * not compile matches nothing; a match abandoned at the match, depth or
 * heap limit counts as no match and as a limit hit.
 */
static bool regex_matches(struct eval *e, const allowd_policy *p, struct regex *re,
                          const char *subject)
{
	int rc, err;
	PCRE2_SIZE off;

	if (!re->tried) {
		re->tried = true;
		re->code = pcre2_compile((PCRE2_SPTR)p->pattern_norm, PCRE2_ZERO_TERMINATED,
		                         PCRE2_UTF | PCRE2_CASELESS | PCRE2_ALT_BSUX |
		                             PCRE2_ANCHORED | PCRE2_ENDANCHORED,
		                         &err, &off, e->cctx);
		if (re->code) /* the engine matches with the JIT, which has no depth limit */
			pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
	}
	if (!re->code || strlen(subject) > SUBJECT_MAX)
		return false;
	rc = pcre2_match(re->code, (PCRE2_SPTR)subject, strlen(subject), 0, 0, e->md, e->mctx);
	if (rc >= 0)
		return true;
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	    rc == PCRE2_ERROR_HEAPLIMIT)
		e->limit_hits++;
	return false;
}

/*
 * Whether an EMAIL or DOMAIN policy matches an address; on a match *value
 * is what it matched: the address as given (EMAIL) or its normalised
 * domain (DOMAIN).
 */
static bool address_matches(struct eval *e, const allowd_policy *p, struct regex *re,
                            const struct addr *a, const char **value)
{
	const char *pn = p->pattern_norm;

	if (!a->raw)
		return false;
	if (p->pattern_type == ALLOWD_PATTERN_EMAIL) {
		*value = a->raw;
		if (p->is_regex)
			return regex_matches(e, p, re, a->norm ? a->norm : a->raw);
		return a->norm &&
		       (strcmp(a->norm, pn) == 0 || (a->base && strcmp(a->base, pn) == 0));
	}
	if (p->pattern_type == ALLOWD_PATTERN_DOMAIN && a->domain) {
		*value = a->domain;
		if (p->is_regex)
			return regex_matches(e, p, re, a->domain);
		return strcmp(a->domain, pn) == 0;
	}
	return false;
}

/* verify_sender: whether the identity matched in `field` is authenticated. */
static const char *verify(const struct facts *f, allowd_field field, const struct addr *a,
                          bool *honored)
{
	const char *d = a ? a->domain : NULL;

	*honored = true;
	switch (field) {
	case ALLOWD_FIELD_ENVELOPE_FROM:
		if (d && f->spf_domain && strcmp(f->spf_domain, d) == 0)
			return V_SPF;
		if (d && same_org(f->dmarc_domain, d))
			return V_DMARC;
		break;
	case ALLOWD_FIELD_HEADER_FROM:
		if (d && f->dmarc_domain && strcmp(f->dmarc_domain, d) == 0)
			return V_DMARC;
		for (size_t i = 0; d && i < ALLOWD_DKIM_MAX; i++)
			if (same_org(f->dkim_domain[i], d))
				return V_DKIM;
		break;
	case ALLOWD_FIELD_REPLY_TO:
		*honored = false;
		return V_REPLY_TO;
	case ALLOWD_FIELD_RECIPIENT:
	case ALLOWD_FIELD_CLIENT_IP:
	case ALLOWD_FIELD_SERVER_NAME:
		if (f->any_pass)
			return V_MESSAGE;
		*honored = false;
		return V_MESSAGE_FAIL;
	}
	*honored = false;
	return V_SENDER_FAIL;
}

/*
 * Records that policy p matched `value` in (field, index), checks
 * verify_sender and applies the effect of an honoured match: sender fields
 * carry the trusted / acceptable effect to every recipient, a recipient
 * field the exemption to that recipient only.
 */
static int record(struct eval *e, const allowd_policy *p, allowd_field field, size_t index,
                  const struct addr *a, const char *value)
{
	allowd_match *mt;
	bool honored = true;
	const char *why = V_NOT_REQUIRED;

	if (p->verify_sender)
		why = verify(&e->f, field, a, &honored);
	if (e->n_matches == e->cap_matches) {
		size_t cap = e->cap_matches ? 2 * e->cap_matches : 8;
		allowd_match *n;
		if (cap > SIZE_MAX / sizeof(*n))
			return ALLOWD_ERR;
		n = realloc(e->matches, cap * sizeof(*n));
		if (!n)
			return ALLOWD_ERR;
		e->matches = n;
		e->cap_matches = cap;
	}
	mt = &e->matches[e->n_matches];
	memset(mt, 0, sizeof(*mt));
	mt->value = strdup(value);
	if (!mt->value)
		return ALLOWD_ERR;
	mt->policy_id = p->id;
	mt->field = field;
	mt->index = index;
	mt->honored = honored;
	mt->verification = why;
	e->n_matches++;

	if (!honored)
		return 0;
	if (field == ALLOWD_FIELD_RECIPIENT) {
		e->rcpt_waived[index] |= ALLOWD_DISP_VERDICTS;
	} else if (p->is_trusted_sender) {
		e->sender_waived |= ALLOWD_DISP_VERDICTS;
		e->skip_links = true;
	} else if (p->is_acceptable_sender) {
		e->sender_waived |= ALLOWD_DISP_ACCEPTABLE;
	}
	return 0;
}

/* Tries one address field; records a match. */
static int try_address(struct eval *e, const allowd_policy *p, struct regex *re, allowd_field field,
                       size_t index, const struct addr *a)
{
	const char *value = NULL;

	if (!address_matches(e, p, re, a, &value))
		return 0;
	return record(e, p, field, index, a, value);
}

/* Every field policy p looks at, in the order of the table in the doc. */
static int apply_policy(struct eval *e, const allowd_policy *p)
{
	const allowd_message *m = e->m;
	const struct facts *f = &e->f;
	struct regex re = {NULL, false};
	bool sender = p->is_trusted_sender || p->is_acceptable_sender;
	int rc = 0;

	if (!p->pattern_norm)
		return 0;
	if (sender) {
		if ((rc = try_address(e, p, &re, ALLOWD_FIELD_ENVELOPE_FROM, 0, &f->env)) ||
		    (rc = try_address(e, p, &re, ALLOWD_FIELD_HEADER_FROM, 0, &f->hdr)))
			goto done;
		for (size_t i = 0; i < m->n_reply_to; i++)
			if ((rc = try_address(e, p, &re, ALLOWD_FIELD_REPLY_TO, i, &f->reply[i])))
				goto done;
		if (p->pattern_type == ALLOWD_PATTERN_IP && f->have_ip) {
			bool hit = p->is_regex ? regex_matches(e, p, &re, f->ip_text)
			                       : cidr_contains(p->pattern_norm, f->ip);
			if (hit &&
			    (rc = record(e, p, ALLOWD_FIELD_CLIENT_IP, 0, NULL, m->client_ip)))
				goto done;
		}
		if (p->pattern_type == ALLOWD_PATTERN_DOMAIN && p->is_regex && f->server &&
		    regex_matches(e, p, &re, f->server) &&
		    (rc = record(e, p, ALLOWD_FIELD_SERVER_NAME, 0, NULL, m->server_name)))
			goto done;
	}
	if (p->is_exempt_recipient && (p->pattern_type == ALLOWD_PATTERN_EMAIL ||
	                               (p->pattern_type == ALLOWD_PATTERN_DOMAIN && p->is_regex))) {
		for (size_t i = 0; i < m->n_recipients; i++)
			if ((rc = try_address(e, p, &re, ALLOWD_FIELD_RECIPIENT, i, &f->rcpt[i])))
				goto done;
	}
done:
	pcre2_code_free(re.code);
	return rc;
}

/* Field, index, policy id; an honoured duplicate first. */
static int match_cmp(const void *va, const void *vb)
{
	const allowd_match *a = va, *b = vb;

	if (a->field != b->field)
		return a->field < b->field ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	if (a->policy_id != b->policy_id)
		return a->policy_id < b->policy_id ? -1 : 1;
	if (a->honored != b->honored)
		return a->honored ? -1 : 1;
	return strcmp(a->verification, b->verification);
}

/* Sorts the matches and keeps one entry per (policy, field, index). */
static void matches_finish(struct eval *e)
{
	size_t w = 0;

	if (e->n_matches > 1)
		qsort(e->matches, e->n_matches, sizeof(*e->matches), match_cmp);
	for (size_t r = 0; r < e->n_matches; r++) {
		allowd_match *prev = w ? &e->matches[w - 1] : NULL;
		if (prev && prev->policy_id == e->matches[r].policy_id &&
		    prev->field == e->matches[r].field && prev->index == e->matches[r].index) {
			free(e->matches[r].value);
			continue;
		}
		e->matches[w++] = e->matches[r];
	}
	e->n_matches = w;
}

static void decision_free(allowd_decision *d)
{
	for (size_t i = 0; d->matches && i < d->n_matches; i++)
		free(d->matches[i].value);
	free(d->matches);
	free(d->recipients);
	memset(d, 0, sizeof(*d));
}

int allowd_evaluate_reference(allowd_policy *const *policies, size_t n,
                              const allowd_engine_options *opts, const allowd_message *m,
                              allowd_decision *out)
{
	allowd_engine_options defaults = {DEFAULT_DELIMITER, DEFAULT_MATCH_LIMIT,
	                                  DEFAULT_DEPTH_LIMIT, 1};
	struct eval e;
	unsigned base;
	int rc = ALLOWD_ERR;

	memset(out, 0, sizeof(*out));
	memset(&e, 0, sizeof(e));
	e.m = m;
	e.o = opts ? opts : &defaults;

	e.md = pcre2_match_data_create(1, NULL);
	e.mctx = pcre2_match_context_create(NULL);
	e.cctx = pcre2_compile_context_create(NULL);
	if (!e.md || !e.mctx || !e.cctx)
		goto done;
	pcre2_set_match_limit(e.mctx, e.o->regex_match_limit);
	pcre2_set_depth_limit(e.mctx, e.o->regex_depth_limit);
	pcre2_set_compile_extra_options(e.cctx, PCRE2_EXTRA_ALT_BSUX);
	if (m->n_recipients) {
		e.rcpt_waived = calloc(m->n_recipients, sizeof(*e.rcpt_waived));
		out->recipients = calloc(m->n_recipients, sizeof(*out->recipients));
		if (!e.rcpt_waived || !out->recipients)
			goto done;
	}
	if (facts_build(&e.f, m, e.o->subaddress_delimiter))
		goto done;

	for (size_t i = 0; i < n; i++)
		if (policies[i] && apply_policy(&e, policies[i]))
			goto done;
	matches_finish(&e);

	/* No dispositions given: decide against all six verdicts. */
	base = m->dispositions & DISP_KNOWN;
	if (base == 0)
		base = ALLOWD_DISP_VERDICTS;
	for (size_t i = 0; i < m->n_recipients; i++) {
		allowd_recipient_decision *r = &out->recipients[i];
		r->address = m->recipients[i];
		r->waived = (e.sender_waived | e.rcpt_waived[i]) & base & ALLOWD_DISP_VERDICTS;
		r->remaining = base & ~r->waived;
		r->skip_link_following = e.skip_links;
	}
	out->n_recipients = m->n_recipients;
	out->matches = e.matches;
	out->n_matches = e.n_matches;
	out->regex_limit_hits = e.limit_hits;
	e.matches = NULL;
	e.n_matches = 0;
	rc = 0;
done:
	if (rc) {
		allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		decision_free(out);
	}
	for (size_t i = 0; i < e.n_matches; i++)
		free(e.matches[i].value);
	free(e.matches);
	free(e.rcpt_waived);
	facts_free(&e.f, m);
	pcre2_match_data_free(e.md);
	pcre2_match_context_free(e.mctx);
	pcre2_compile_context_free(e.cctx);
	return rc;
}

/*
 * eval.c - `allowctl eval`: evaluates one message against an account's
 * stored policies with the engine the server uses, printing a report or,
 * with --json, exactly what the API's evaluate endpoint returns as result.
 * The facts come from flags, from an RFC 5322 file (--eml, read by eml.c),
 * or both; a flag replaces what the file says.  docs/semantics.md,
 * "allowctl eval", states every rule.
 */
#include "cli/cli_int.h"
#include "api/api.h"
#include "allowd/cli.h"
#include "allowd/config.h"
#include "allowd/engine.h"
#include "allowd/error.h"
#include "allowd/netaddr.h"
#include "allowd/policy.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Flags that may be given at most once. */
static const char *const single_flags[] = {
	"account", "envelope-from", "header-from", "client-ip", "server-name", "spf", "dmarc", "eml",
};

enum { OVERRIDE_SPF = 1, OVERRIDE_DKIM = 2, OVERRIDE_DMARC = 4 };

typedef struct eval_input {
	allowd_message m;
	eml_facts eml;
	const char *reply_to[EML_LIST_MAX];
	const char *recipients[EML_LIST_MAX];
	const char *authres[EML_LIST_MAX];
	size_t n_authres;
	const char *trusted[MAX_FLAG_VALUES];
	size_t n_trusted;
	/* where each fact came from, for the report: a flag or a header */
	const char *src_envelope_from, *src_header_from, *src_reply_to, *src_recipients,
		*src_client_ip, *src_server_name, *src_authres;
	allowd_auth_facts override; /* --spf, --dkim, --dmarc */
	unsigned overrides;         /* OVERRIDE_* */
	char account[ALLOWD_ACCOUNT_ID_LEN + 1];
	char envelope_from[EML_VALUE_MAX + 1]; /* --envelope-from without its angle brackets */
} eval_input;

typedef allowd_policy_vec policy_vec;

/* ---- helpers -------------------------------------------------------- */

static int fail(cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(cli *c, int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(c->err, "allowctl: ");
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->err);
	return code;
}

static flag *get(cli *c, const char *name)
{
	for (int i = 0; i < c->n_flags; i++)
		if (strcmp(c->flags[i].name, name) == 0)
			return &c->flags[i];
	return NULL;
}

static const char *get1(cli *c, const char *name)
{
	flag *f = get(c, name);
	return f && f->n ? f->values[0] : NULL;
}

/*
 * Prints text that may come from an untrusted message: C0 and C1 control
 * characters and DEL are escaped as \xNN so that a header cannot drive the
 * terminal.
 */
static void put(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	for (; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && *p <= 0x9f)) {
			fprintf(out, "\\x%02x", *p);
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) { /* U+0080..U+009F */
			fprintf(out, "\\x%02x\\x%02x", p[0], p[1]);
			p++;
		} else {
			fputc(*p, out);
		}
	}
}

static void put_disps(FILE *out, unsigned bits)
{
	int any = 0;
	for (int i = 0; i < ALLOWD_DISP_COUNT; i++)
		if (bits & (1u << i))
			fprintf(out, "%s%s", any++ ? " " : "", allowd_disposition_name(1u << i));
	if (!any)
		fputc('-', out);
}

/* ---- flags ---------------------------------------------------------- */

/* RESULT[:DOMAIN] as given to --spf, --dkim, --dmarc. */
static int parse_check(cli *c, allowd_auth_check *out, const char *flag_name, const char *arg,
		       int need_domain)
{
	const char *colon = strchr(arg, ':');
	size_t rlen = colon ? (size_t)(colon - arg) : strlen(arg);
	int r = allowd_auth_result_parse(arg, rlen);

	memset(out, 0, sizeof(*out));
	if (r < 0)
		return fail(c, ALLOWD_CLI_USAGE,
			    "--%s %s: '%.*s' is not a result (none, pass, fail, softfail, neutral, "
			    "temperror, permerror, policy)",
			    flag_name, arg, (int)(rlen > 40 ? 40 : rlen), arg);
	out->result = (allowd_auth_result)r;
	if (colon && colon[1]) {
		/* the API's rule for structured results: a host name, as a DOMAIN pattern */
		char *norm = NULL;
		if (allowd_pattern_domain(&norm, colon + 1))
			return fail(c, ALLOWD_CLI_USAGE, "--%s %s: not a domain name: %s", flag_name,
				    arg, allowd_error_last()->message);
		snprintf(out->domain, sizeof(out->domain), "%s", norm);
		free(norm);
	} else if (need_domain) {
		return fail(c, ALLOWD_CLI_USAGE, "--%s needs RESULT:DOMAIN (as in pass:example.com)",
			    flag_name);
	}
	return 0;
}

/*
 * Checks every flag's syntax before anything is opened or read: values
 * bounded, IP and result keywords and dispositions known.  Fills the parts
 * of `in` that come from flags alone.
 */
static int check_flags(cli *c, eval_input *in)
{
	static const char *const bounded[] = {"account",   "envelope-from", "header-from",
					      "reply-to",  "recipient",     "server-name",
					      "client-ip", "eml",	    "trusted-authserv-id"};
	allowd_auth_facts scratch;
	const char *v;
	flag *f;
	int rc;

	for (size_t i = 0; i < sizeof(single_flags) / sizeof(single_flags[0]); i++)
		if ((f = get(c, single_flags[i])) && f->n > 1)
			return fail(c, ALLOWD_CLI_USAGE, "--%s may be given once", single_flags[i]);
	for (size_t i = 0; i < sizeof(bounded) / sizeof(bounded[0]); i++)
		for (int k = 0; (f = get(c, bounded[i])) && k < f->n; k++)
			if (strlen(f->values[k]) > EML_VALUE_MAX)
				return fail(c, ALLOWD_CLI_USAGE, "--%s is longer than %d bytes",
					    bounded[i], EML_VALUE_MAX);
	if (!get1(c, "account"))
		return fail(c, ALLOWD_CLI_USAGE, "eval needs --account ID (see --help)");
	if ((v = get1(c, "client-ip")) && *v) {
		uint8_t ip[16];
		if (allowd_ip_parse(ip, v))
			return fail(c, ALLOWD_CLI_USAGE,
				    "--client-ip '%s' is not an IPv4 or IPv6 address", v);
	}
	if ((v = get1(c, "spf"))) {
		if ((rc = parse_check(c, &in->override.spf, "spf", v, 0)))
			return rc;
		in->overrides |= OVERRIDE_SPF;
	}
	if ((v = get1(c, "dmarc"))) {
		if ((rc = parse_check(c, &in->override.dmarc, "dmarc", v, 0)))
			return rc;
		in->overrides |= OVERRIDE_DMARC;
	}
	if ((f = get(c, "dkim"))) {
		if (f->n > ALLOWD_DKIM_MAX)
			return fail(c, ALLOWD_CLI_USAGE, "at most %d --dkim results", ALLOWD_DKIM_MAX);
		for (int k = 0; k < f->n; k++)
			if ((rc = parse_check(c, &in->override.dkim[in->override.n_dkim++], "dkim",
					      f->values[k], 1)))
				return rc;
		in->overrides |= OVERRIDE_DKIM;
	}
	for (int k = 0; (f = get(c, "disposition")) && k < f->n; k++) {
		char up[32];
		size_t len = strlen(f->values[k]);
		unsigned d = 0;
		if (len < sizeof(up)) {
			for (size_t j = 0; j <= len; j++)
				up[j] = (char)toupper((unsigned char)f->values[k][j]);
			d = allowd_disposition_parse(up);
		}
		if (!d)
			return fail(c, ALLOWD_CLI_USAGE,
				    "--disposition '%.40s' is not one of MALICIOUS, MALICIOUS-BEC, "
				    "SUSPICIOUS, SPOOF, SPAM, BULK, ENCRYPTED, EXTERNAL, NONE",
				    f->values[k]);
		in->m.dispositions |= d;
	}
	for (int k = 0; (f = get(c, "trusted-authserv-id")) && k < f->n; k++)
		in->trusted[in->n_trusted++] = f->values[k];
	/* an --auth-results value that is not a header is a bad flag, not a warning */
	for (int k = 0; (f = get(c, "auth-results")) && k < f->n; k++) {
		memset(&scratch, 0, sizeof(scratch));
		if (allowd_authres_parse(&scratch, f->values[k], in->trusted, in->n_trusted))
			return fail(c, ALLOWD_CLI_USAGE, "--auth-results #%d: %s", k + 1,
				    allowd_error_last()->message);
	}
	return 0;
}

/* ---- the facts: the file, then the flags over it -------------------- */

static void take_list(const char **dst, size_t *n, flag *f)
{
	*n = 0;
	for (int k = 0; k < f->n; k++)
		dst[(*n)++] = f->values[k];
}

static int gather(cli *c, eval_input *in)
{
	allowd_message *m = &in->m;
	eml_facts *e = &in->eml;
	const char *v;
	flag *f;

	if ((v = get1(c, "eml"))) {
		if (cli_eml_read(e, v, c->err))
			return fail(c, ALLOWD_CLI_FAILURE, "%s", allowd_error_last()->message);
		m->envelope_from = e->envelope_from;
		in->src_envelope_from = e->envelope_from ? "Return-Path" : NULL;
		m->header_from = e->header_from;
		in->src_header_from = e->header_from ? "From" : NULL;
		for (size_t i = 0; i < e->n_reply_to; i++)
			in->reply_to[i] = e->reply_to[i];
		m->n_reply_to = e->n_reply_to;
		in->src_reply_to = e->n_reply_to ? "Reply-To" : NULL;
		for (size_t i = 0; i < e->n_recipients; i++)
			in->recipients[i] = e->recipients[i];
		m->n_recipients = e->n_recipients;
		in->src_recipients = e->recipients_from;
		m->client_ip = e->client_ip;
		m->server_name = e->server_name;
		in->src_client_ip = e->client_ip ? "Received" : NULL;
		in->src_server_name = e->server_name ? "Received" : NULL;
		for (size_t i = 0; i < e->n_authres; i++)
			in->authres[i] = e->authres[i];
		in->n_authres = e->n_authres;
		in->src_authres = "the message";
	}
	if ((v = get1(c, "envelope-from"))) {
		/* "<>" and "" are a bounce; one pair of angle brackets is dropped */
		size_t len = strlen(v);
		if (len >= 2 && v[0] == '<' && v[len - 1] == '>') {
			memcpy(in->envelope_from, v + 1, len - 2);
			in->envelope_from[len - 2] = '\0';
			v = in->envelope_from;
		}
		m->envelope_from = v;
		in->src_envelope_from = "--envelope-from";
	}
	if ((v = get1(c, "header-from"))) {
		m->header_from = v;
		in->src_header_from = "--header-from";
	}
	if ((f = get(c, "reply-to"))) {
		take_list(in->reply_to, &m->n_reply_to, f);
		in->src_reply_to = "--reply-to";
	}
	if ((f = get(c, "recipient"))) {
		take_list(in->recipients, &m->n_recipients, f);
		in->src_recipients = "--recipient";
	}
	if ((v = get1(c, "client-ip"))) {
		m->client_ip = v;
		in->src_client_ip = "--client-ip";
	}
	if ((v = get1(c, "server-name"))) {
		m->server_name = v;
		in->src_server_name = "--server-name";
	}
	if ((f = get(c, "auth-results"))) {
		take_list(in->authres, &in->n_authres, f);
		in->src_authres = "--auth-results";
	}
	m->reply_to = in->reply_to;
	m->recipients = in->recipients;
	if (m->n_recipients == 0)
		return fail(c, ALLOWD_CLI_USAGE,
			    "no recipient: give --recipient ADDRESS%s",
			    get1(c, "eml") ? " (the message has no Delivered-To, X-Original-To, To "
					     "or Cc address)"
					   : "");
	return 0;
}

/*
 * Authentication facts: every Authentication-Results value in order (only
 * trusted authserv-ids count), then --spf, --dkim and --dmarc replace what
 * the headers said about their method.
 */
static void authenticate(cli *c, eval_input *in)
{
	allowd_auth_facts *a = &in->m.auth;

	memset(a, 0, sizeof(*a));
	if (in->n_authres && in->n_trusted == 0)
		fprintf(c->err,
			"allowctl: note: %zu Authentication-Results header%s from %s ignored: no "
			"--trusted-authserv-id given (only a trusted id's results count)\n",
			in->n_authres, in->n_authres == 1 ? "" : "s", in->src_authres);
	for (size_t i = 0; in->n_trusted && i < in->n_authres; i++)
		if (allowd_authres_parse(a, in->authres[i], in->trusted, in->n_trusted)) {
			fprintf(c->err,
				"allowctl: warning: Authentication-Results header #%zu of %s "
				"skipped: ",
				i + 1, in->src_authres);
			put(c->err, allowd_error_last()->message);
			fputc('\n', c->err);
		}
	if (in->overrides & OVERRIDE_SPF)
		a->spf = in->override.spf;
	if (in->overrides & OVERRIDE_DMARC)
		a->dmarc = in->override.dmarc;
	if (in->overrides & OVERRIDE_DKIM) {
		memcpy(a->dkim, in->override.dkim, sizeof(a->dkim));
		a->n_dkim = in->override.n_dkim;
	}
}

/* ---- policies and the engine ---------------------------------------- */

static int collect(void *ctx, allowd_policy *p)
{
	return allowd_policy_vec_push(ctx, p);
}

/* The engine options the server would use: its ALLOWD_* environment variables. */
static int engine_options(cli *c, allowd_engine_options *eo)
{
	char *argv0[] = {"allowctl", NULL};
	allowd_config cfg;
	int rc = ALLOWD_CLI_OK;

	allowd_engine_options_init(eo);
	allowd_config_defaults(&cfg);
	if (allowd_config_load(&cfg, 1, argv0))
		rc = fail(c, ALLOWD_CLI_USAGE, "%s", allowd_error_last()->message);
	else if (strlen(cfg.subaddress_delimiter) > 1)
		rc = fail(c, ALLOWD_CLI_USAGE,
			  "ALLOWD_SUBADDRESS_DELIMITER must be one character or empty");
	else {
		eo->subaddress_delimiter = cfg.subaddress_delimiter[0];
		eo->regex_match_limit = (uint32_t)cfg.regex_match_limit;
	}
	allowd_config_clear(&cfg);
	return rc;
}

/* ---- output --------------------------------------------------------- */

static void fact(FILE *out, const char *label, const char *value, const char *src)
{
	fprintf(out, "  %-14s ", label);
	if (value)
		put(out, value);
	else
		fputc('-', out);
	if (src)
		fprintf(out, "  (%s)", src);
	fputc('\n', out);
}

static void fact_list(FILE *out, const char *label, const char *const *v, size_t n,
		      const char *src)
{
	fprintf(out, "  %-14s ", label);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputs(", ", out);
		put(out, v[i]);
	}
	if (!n)
		fputc('-', out);
	if (src)
		fprintf(out, "  (%s)", src);
	fputc('\n', out);
}

static void fact_check(FILE *out, const char *label, const allowd_auth_check *k, size_t n)
{
	fprintf(out, "  %-14s ", label);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%s%s", i ? ", " : "", allowd_auth_result_name(k[i].result));
		if (k[i].domain[0]) {
			fputc(' ', out);
			put(out, k[i].domain);
		}
	}
	if (!n)
		fputs("none", out);
	fputc('\n', out);
}

static void report(cli *c, const eval_input *in, size_t n_policies, const allowd_decision *d)
{
	const allowd_message *m = &in->m;
	FILE *out = c->out;

	fprintf(out, "account %s, %zu polic%s\n", in->account, n_policies,
		n_policies == 1 ? "y" : "ies");
	fprintf(out, "message\n");
	if (m->envelope_from && !*m->envelope_from)
		fact(out, "envelope_from", "<> (bounce)", in->src_envelope_from);
	else
		fact(out, "envelope_from", m->envelope_from, in->src_envelope_from);
	fact(out, "header_from", m->header_from, in->src_header_from);
	fact_list(out, "reply_to", m->reply_to, m->n_reply_to, in->src_reply_to);
	fact_list(out, "recipients", m->recipients, m->n_recipients, in->src_recipients);
	fact(out, "client_ip", m->client_ip, in->src_client_ip);
	fact(out, "server_name", m->server_name, in->src_server_name);
	fact_check(out, "spf", &m->auth.spf, m->auth.spf.result != ALLOWD_AUTH_NONE);
	fact_check(out, "dkim", m->auth.dkim, m->auth.n_dkim);
	fact_check(out, "dmarc", &m->auth.dmarc, m->auth.dmarc.result != ALLOWD_AUTH_NONE);
	fprintf(out, "  %-14s ", "dispositions");
	if (m->dispositions)
		put_disps(out, m->dispositions);
	else
		fputs("(none given: all verdicts)", out);
	fprintf(out, "\nrecipients\n");
	for (size_t i = 0; i < d->n_recipients; i++) {
		const allowd_recipient_decision *r = &d->recipients[i];
		fputs("  ", out);
		put(out, r->address ? r->address : "");
		fprintf(out, "\n    %-20s ", "waived");
		put_disps(out, r->waived);
		fprintf(out, "\n    %-20s ", "remaining");
		put_disps(out, r->remaining);
		fprintf(out, "\n    %-20s %s\n", "skip link following",
			r->skip_link_following ? "yes" : "no");
	}
	fprintf(out, "matches%s\n", d->n_matches ? "" : ": none");
	for (size_t i = 0; i < d->n_matches; i++) {
		const allowd_match *mt = &d->matches[i];
		fprintf(out, "  policy %lld  %s  ", (long long)mt->policy_id,
			allowd_field_name(mt->field));
		put(out, mt->value ? mt->value : "");
		fprintf(out, "  honored %s  (%s)\n", mt->honored ? "yes" : "no", mt->verification);
	}
}

static int print_json(cli *c, const allowd_decision *d)
{
	json_t *j = allowd_json_encode_decision(d);
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

	json_decref(j);
	if (!s)
		return fail(c, ALLOWD_CLI_FAILURE, "out of memory");
	fprintf(c->out, "%s\n", s);
	free(s);
	return ALLOWD_CLI_OK;
}

/* ---- the command ---------------------------------------------------- */

int cli_eval(cli *c)
{
	eval_input *in = NULL;
	policy_vec pol = {0};
	allowd_snapshot *snap = NULL;
	allowd_engine_options eo;
	allowd_decision d;
	int rc, have_decision = 0;

	memset(&d, 0, sizeof(d));
	if (!(in = calloc(1, sizeof(*in))))
		return fail(c, ALLOWD_CLI_FAILURE, "out of memory");
	if ((rc = check_flags(c, in)) || (rc = engine_options(c, &eo)))
		goto out;
	if (!allowd_is_hex_id(get1(c, "account"))) {
		rc = fail(c, ALLOWD_CLI_INVALID,
			  "'%.100s' is not an account id (32 hexadecimal characters)",
			  get1(c, "account"));
		goto out;
	}
	snprintf(in->account, sizeof(in->account), "%s", get1(c, "account"));
	for (char *p = in->account; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if ((rc = allowd_store_account_exists(c->store, in->account))) {
		rc = rc == ALLOWD_ENOTFOUND
			     ? fail(c, ALLOWD_CLI_NOTFOUND, "no account %s", in->account)
			     : fail(c, ALLOWD_CLI_FAILURE, "%s", allowd_error_last()->message);
		goto out;
	}
	if ((rc = gather(c, in)))
		goto out;
	authenticate(c, in);
	if (allowd_store_policy_scan(c->store, in->account, collect, &pol) ||
	    allowd_snapshot_build(&snap, pol.v, pol.n, &eo) || allowd_evaluate(snap, &in->m, &d)) {
		rc = fail(c, ALLOWD_CLI_FAILURE, "%s", allowd_error_last()->message);
		goto out;
	}
	have_decision = 1;
	if (d.regex_limit_hits)
		fprintf(c->err,
			"allowctl: note: %d regex match%s abandoned at the match limit (counted as "
			"no match)\n",
			d.regex_limit_hits, d.regex_limit_hits == 1 ? "" : "es");
	if (c->json)
		rc = print_json(c, &d);
	else
		report(c, in, pol.n, &d);
out:
	if (have_decision)
		allowd_decision_clear(&d);
	allowd_snapshot_unref(snap);
	for (size_t i = 0; i < pol.n; i++)
		allowd_policy_free(pol.v[i]);
	free(pol.v);
	if (in)
		cli_eml_clear(&in->eml);
	free(in);
	return rc;
}

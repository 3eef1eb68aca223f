/*
 * test_authres.c - the Authentication-Results parser: real headers from
 * Gmail, Microsoft 365 and Fastmail, the RFC 8601 grammar's corners,
 * trust, merging across headers, and garbage that must not crash it.
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
#include "allowd/error.h"

static const char *const trust_mx[] = {"mx.example.com"};

static int parse(allowd_auth_facts *f, const char *value)
{
	return allowd_authres_parse(f, value, trust_mx, 1);
}

static int parse_as(allowd_auth_facts *f, const char *value, const char *id)
{
	const char *const trusted[] = {id};
	return allowd_authres_parse(f, value, trusted, 1);
}

/* Parses into fresh facts and expects success. */
static allowd_auth_facts parsed(const char *value)
{
	allowd_auth_facts f;
	memset(&f, 0, sizeof(f));
	assert_int_equal(parse(&f, value), 0);
	return f;
}

static void assert_untouched(const allowd_auth_facts *f)
{
	allowd_auth_facts zero;
	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(f, &zero, sizeof(zero));
}

static void assert_check(const allowd_auth_check *c, allowd_auth_result r, const char *domain)
{
	assert_string_equal(allowd_auth_result_name(c->result), allowd_auth_result_name(r));
	assert_string_equal(c->domain, domain);
}

/* "mx.example.com; dkim=pass header.d=<domain>" with a domain of n octets. */
static char *dkim_header_with_domain_len(size_t n)
{
	static const char head[] = "mx.example.com; dkim=pass header.d=";
	char *v = malloc(sizeof(head) + n);
	size_t i;

	assert_non_null(v);
	memcpy(v, head, sizeof(head) - 1);
	for (i = 0; i < n; i++)
		v[sizeof(head) - 1 + i] = (i % 64 == 63) ? '.' : 'a';
	v[sizeof(head) - 1 + n] = '\0';
	return v;
}

/* ---- result keywords ------------------------------------------------ */

static void result_names_round_trip(void **state)
{
	(void)state;
	for (int r = ALLOWD_AUTH_NONE; r <= ALLOWD_AUTH_POLICY; r++) {
		const char *name = allowd_auth_result_name((allowd_auth_result)r);
		assert_non_null(name);
		assert_int_equal(allowd_auth_result_parse(name, strlen(name)), r);
	}
	assert_string_equal(allowd_auth_result_name(ALLOWD_AUTH_SOFTFAIL), "softfail");
	assert_string_equal(allowd_auth_result_name(ALLOWD_AUTH_POLICY), "policy");
	assert_null(allowd_auth_result_name((allowd_auth_result)99));
}

static void result_parse_ignores_case_and_knows_hardfail(void **state)
{
	(void)state;
	assert_int_equal(allowd_auth_result_parse("PASS", 4), ALLOWD_AUTH_PASS);
	assert_int_equal(allowd_auth_result_parse("SoftFail", 8), ALLOWD_AUTH_SOFTFAIL);
	assert_int_equal(allowd_auth_result_parse("TempError", 9), ALLOWD_AUTH_TEMPERROR);
	assert_int_equal(allowd_auth_result_parse("permerror", 9), ALLOWD_AUTH_PERMERROR);
	assert_int_equal(allowd_auth_result_parse("hardfail", 8), ALLOWD_AUTH_FAIL);
	assert_int_equal(allowd_auth_result_parse("passing", 4), ALLOWD_AUTH_PASS);
	assert_int_equal(allowd_auth_result_parse("pas", 3), -1);
	assert_int_equal(allowd_auth_result_parse("passx", 5), -1);
	assert_int_equal(allowd_auth_result_parse("bestguesspass", 13), -1);
	assert_int_equal(allowd_auth_result_parse("", 0), -1);
	assert_int_equal(allowd_auth_result_parse(NULL, 4), -1);
}

/* ---- real headers --------------------------------------------------- */

static void gmail_header(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed(
	    "mx.example.com;\r\n"
	    "       dkim=pass header.i=@example.org header.s=20230601 header.b=Xy3/+AbC;\r\n"
	    "       arc=pass (i=1 spf=pass spfdomain=example.org dkim=pass dkdomain=example.org"
	    " dmarc=pass fromdomain=example.org);\r\n"
	    "       spf=pass (google.com: domain of alice@example.org designates 209.85.220.41"
	    " as permitted sender) smtp.mailfrom=alice@example.org;\r\n"
	    "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.org");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_PASS, "example.org");
	assert_check(&f.dmarc, ALLOWD_AUTH_PASS, "example.org");
}

static const char m365[] =
    "spf=pass (sender IP is 209.85.218.54) smtp.mailfrom=gmail.com; dkim=pass (signature was"
    " verified) header.d=gmail.com;dmarc=pass action=none header.from=gmail.com;compauth=pass"
    " reason=100";

static void microsoft365_form_is_trusted_only_through_empty_id(void **state)
{
	allowd_auth_facts f;
	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(parse(&f, m365), 0);
	assert_untouched(&f);

	assert_int_equal(parse_as(&f, m365, ""), 0);
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "gmail.com");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_PASS, "gmail.com");
	assert_check(&f.dmarc, ALLOWD_AUTH_PASS, "gmail.com");
}

static void microsoft365_bestguesspass_is_not_a_pass(void **state)
{
	allowd_auth_facts f;
	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(
	    parse_as(&f,
	             "spf=softfail (sender IP is 192.0.2.1) smtp.mailfrom=example.com; "
	             "dkim=none (message not signed) header.d=none;dmarc=bestguesspass "
	             "action=none header.from=example.com;compauth=pass reason=109",
	             ""),
	    0);
	assert_check(&f.spf, ALLOWD_AUTH_SOFTFAIL, "example.com");
	assert_check(&f.dmarc, ALLOWD_AUTH_NONE, "");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_NONE, "none");
}

static void fastmail_header_with_two_signatures_and_policy_properties(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed(
	    "mx.example.com;\r\n"
	    "    dkim=pass (2048-bit rsa key sha256) header.d=example.net header.i=@example.net"
	    " header.b=\"Qm9v/+Zz\" header.a=rsa-sha256 header.s=fm1 x-bits=2048;\r\n"
	    "    dkim=pass (2048-bit rsa key sha256) header.d=messagingengine.com"
	    " header.i=@messagingengine.com header.b=ZmFr header.a=rsa-sha256 header.s=fm1"
	    " x-bits=2048;\r\n"
	    "    dmarc=pass policy.published-domain-policy=none"
	    " policy.applied-disposition=none policy.evaluated-disposition=none"
	    " (p=none,d=none,d.eval=none) policy.policy-from=p header.from=example.net;\r\n"
	    "    iprev=pass smtp.remote-ip=66.111.4.25 (out1-smtp.messagingengine.com);\r\n"
	    "    spf=pass smtp.mailfrom=bob@example.net "
	    "smtp.helo=out1-smtp.messagingengine.com;\r\n"
	    "    x-aligned-from=pass (Address match);\r\n"
	    "    x-return-mx=pass header.domain=example.net policy.is_org=yes"
	    " (MX Records found: in1-smtp.messagingengine.com);\r\n"
	    "    x-tls=pass smtp.version=TLSv1.3 smtp.cipher=TLS_AES_256_GCM_SHA384"
	    " smtp.bits=256/256;\r\n"
	    "    x-vs=clean score=-100 state=0");
	assert_int_equal(f.n_dkim, 2);
	assert_check(&f.dkim[0], ALLOWD_AUTH_PASS, "example.net");
	assert_check(&f.dkim[1], ALLOWD_AUTH_PASS, "messagingengine.com");
	assert_check(&f.dmarc, ALLOWD_AUTH_PASS, "example.net");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.net");
}

/* ---- grammar -------------------------------------------------------- */

static void comments_may_hold_semicolons_equals_and_nesting(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com (a; b=c (nested; (deeper=1) \\) dkim=pass)) ;"
	           " spf=pass (x; y=z; header.from=evil.example) smtp.mailfrom=a@Example.COM;"
	           " dkim(;)=(=)fail(;)header.d(;)=(;)example.net");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_FAIL, "example.net");
	assert_check(&f.dmarc, ALLOWD_AUTH_NONE, "");
}

static void reason_is_a_quoted_string_with_escapes(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com; dkim=fail reason=\"signature \\\"verification\\\" failed; "
	           "body hash (mismatch\" header.d=example.com; dmarc=fail reason=policy"
	           " header.from=example.com");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_FAIL, "example.com");
	assert_check(&f.dmarc, ALLOWD_AUTH_FAIL, "example.com");
}

static void quoted_values_and_addresses(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com; spf=pass smtp.mailfrom=\"\\\"john@doe\\\"@Example.ORG\";"
	           " dkim=pass header.i=\"quoted local\"@Sub.Example.NET;"
	           " dmarc=pass header.from=\"example.com\"");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.org");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_PASS, "sub.example.net");
	assert_check(&f.dmarc, ALLOWD_AUTH_PASS, "example.com");
}

static void quoted_authserv_id(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("\"mx.example.com\"; spf=pass smtp.mailfrom=example.com");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
	f = parsed("\"mx\\.EXAMPLE.com\" 1; spf=pass smtp.mailfrom=example.com");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
	memset(&f, 0, sizeof(f));
	assert_int_equal(parse(&f, "\"\"; spf=pass smtp.mailfrom=example.com"), ALLOWD_EINVALID);
	assert_int_equal(parse_as(&f, "\"\"; spf=pass", ""), ALLOWD_EINVALID);
	assert_untouched(&f);
}

static void authserv_id_with_version(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com 1; spf=pass smtp.mailfrom=example.com");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
	f = parsed("mx.example.com (v) 01 (one); dkim/1=pass header.d=example.com");
	assert_int_equal(f.n_dkim, 1);

	f = parsed("mx.example.com 2; spf=pass smtp.mailfrom=example.com");
	assert_untouched(&f);
	f = parsed("mx.example.com; dkim/2=pass header.d=example.com; spf=pass"
	           " smtp.mailfrom=example.com");
	assert_int_equal(f.n_dkim, 0);
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
}

static void no_result_forms(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com; none");
	assert_untouched(&f);
	f = parsed("mx.example.com 1 ; NONE (nothing checked)");
	assert_untouched(&f);
	f = parsed("mx.example.com");
	assert_untouched(&f);
	f = parsed("mx.example.com;");
	assert_untouched(&f);
	f = parsed("mx.example.com; spf=pass smtp.mailfrom=example.com;;");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
}

static void folded_header_with_crlf(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("Authentication-Results: mx.example.com\r\n 1;\r\n\tspf=pass\r\n"
	           "  (a folded\r\n comment) smtp.mailfrom=\r\n user@example.com;\r\n"
	           " dkim=pass header.d=\"exam\r\n ple.org\";\r\n dmarc\r\n =\r\n pass\r\n"
	           " header.from\r\n =example.com\r\n");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
	/* Unfolding keeps the blank: "exam ple.org" is not a domain. */
	assert_int_equal(f.n_dkim, 0);
	assert_check(&f.dmarc, ALLOWD_AUTH_PASS, "example.com");
	f = parsed("mx.example.com;\n spf=fail\n smtp.mailfrom=example.com");
	assert_check(&f.spf, ALLOWD_AUTH_FAIL, "example.com");
}

static void keywords_are_case_insensitive(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("MX.EXAMPLE.COM; SPF=PASS SMTP.MAILFROM=User@EXAMPLE.COM;"
	           " DKIM=Pass HEADER.D=Example.Org; DMARC=FAIL HEADER.FROM=EXAMPLE.NET;"
	           " Spf=HardFail smtp.MailFrom=other.example");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_PASS, "example.org");
	assert_check(&f.dmarc, ALLOWD_AUTH_FAIL, "example.net");
	f = parsed("mx.example.com; spf=hardfail smtp.mailfrom=example.com");
	assert_check(&f.spf, ALLOWD_AUTH_FAIL, "example.com");
}

static void header_name_prefix_is_skipped(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=a.example");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "a.example");
	f = parsed("  authentication-results :mx.example.com; spf=pass smtp.mailfrom=b.example");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "b.example");
	f = parsed("AUTHENTICATION-RESULTS:\r\n\tmx.example.com; spf=pass smtp.mailfrom=c.example");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "c.example");
	memset(&f, 0, sizeof(f));
	/* Another header's name is not skipped: it reads as an untrusted
	   authserv-id, and an untrusted header is ignored, whatever follows. */
	assert_int_equal(parse(&f, "ARC-Authentication-Results: i=1; mx.example.com; spf=pass"), 0);
	assert_untouched(&f);
}

/* ---- domains -------------------------------------------------------- */

static void domains_lower_cased_and_trailing_dot_dropped(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com; spf=pass smtp.mailfrom=<User@Example.COM.>;"
	           " dkim=pass header.d=Mail.Example.ORG.; dmarc=pass header.from=Example.NET.");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
	assert_check(&f.dkim[0], ALLOWD_AUTH_PASS, "mail.example.org");
	assert_check(&f.dmarc, ALLOWD_AUTH_PASS, "example.net");
}

static void overlong_or_broken_domains_are_skipped(void **state)
{
	allowd_auth_facts f;
	char *v;
	(void)state;

	v = dkim_header_with_domain_len(253);
	f = parsed(v);
	assert_int_equal(f.n_dkim, 1);
	assert_int_equal(strlen(f.dkim[0].domain), 253);
	free(v);

	v = dkim_header_with_domain_len(254);
	f = parsed(v);
	assert_int_equal(f.n_dkim, 0);
	free(v);

	v = dkim_header_with_domain_len(10000);
	f = parsed(v);
	assert_int_equal(f.n_dkim, 0);
	free(v);

	f = parsed("mx.example.com; dkim=pass header.d=\"exa mple.com\";"
	           " dkim=pass header.d=a..example.com; dkim=pass header.d=.example.com;"
	           " dkim=pass header.d=example.com..; dkim=pass header.d=<example.com;"
	           " dkim=pass header.d=ex\"ample.com\"; dkim=pass header.d=good.example");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_PASS, "good.example");

	/* A long local part is fine: only the domain has to fit. */
	v = malloc(2000);
	assert_non_null(v);
	memcpy(v, "mx.example.com; spf=pass smtp.mailfrom=", 39);
	memset(v + 39, 'x', 1500);
	memcpy(v + 39 + 1500, "@Example.com", 13);
	f = parsed(v);
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");
	free(v);
}

static void spf_domain_falls_back_to_helo(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com; spf=pass smtp.helo=Mail.Example.com");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "mail.example.com");
	f = parsed("mx.example.com; spf=pass smtp.mailfrom=<> smtp.helo=mail.example.com");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "mail.example.com");
	f = parsed("mx.example.com; spf=pass smtp.mailfrom=\"\" smtp.helo=mail.example.com");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "mail.example.com");
	f = parsed(
	    "mx.example.com; spf=pass smtp.helo=mail.example.com smtp.mailfrom=a@example.org");
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.org");
	/* A mail-from that is not a domain does not fall back: the result is dropped. */
	f = parsed("mx.example.com; spf=pass smtp.mailfrom=a@bad!name.example smtp.helo=x.example");
	assert_check(&f.spf, ALLOWD_AUTH_NONE, "");
	f = parsed("mx.example.com; spf=none");
	assert_check(&f.spf, ALLOWD_AUTH_NONE, "");
}

static void dkim_domain_from_header_i_when_no_d(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com; dkim=pass header.i=alice@Sub.Example.com;"
	           " dkim=neutral header.i=@example.org header.d=signer.example;"
	           " dkim=none (message not signed)");
	assert_int_equal(f.n_dkim, 3);
	assert_check(&f.dkim[0], ALLOWD_AUTH_PASS, "sub.example.com");
	assert_check(&f.dkim[1], ALLOWD_AUTH_NEUTRAL, "signer.example");
	assert_check(&f.dkim[2], ALLOWD_AUTH_NONE, "");
}

/* ---- merging and trust ---------------------------------------------- */

static void several_dkim_results_kept_in_order_up_to_the_limit(void **state)
{
	allowd_auth_facts f;
	char v[4096];
	size_t n;
	(void)state;

	f = parsed("mx.example.com; dkim=fail header.d=a.example; dkim=pass header.d=b.example;"
	           " dkim=pass header.d=a.example; dkim=pass header.d=B.example.");
	assert_int_equal(f.n_dkim, 3);
	assert_check(&f.dkim[0], ALLOWD_AUTH_FAIL, "a.example");
	assert_check(&f.dkim[1], ALLOWD_AUTH_PASS, "b.example");
	assert_check(&f.dkim[2], ALLOWD_AUTH_PASS, "a.example");

	n = (size_t)snprintf(v, sizeof(v), "mx.example.com");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(v + n, sizeof(v) - n, "; dkim=pass header.d=d%d.example", i);
	assert_true(n < sizeof(v));
	f = parsed(v);
	assert_int_equal(f.n_dkim, ALLOWD_DKIM_MAX);
	assert_check(&f.dkim[ALLOWD_DKIM_MAX - 1], ALLOWD_AUTH_PASS, "d15.example");
}

static void several_headers_merge_and_pass_wins(void **state)
{
	allowd_auth_facts f;
	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(parse(&f,
	                       "mx.example.com; spf=fail smtp.mailfrom=a.example;"
	                       " dmarc=none header.from=a.example; dkim=pass header.d=a.example"),
	                 0);
	assert_check(&f.spf, ALLOWD_AUTH_FAIL, "a.example");
	assert_check(&f.dmarc, ALLOWD_AUTH_NONE, "a.example");

	assert_int_equal(parse(&f,
	                       "mx.example.com; spf=pass smtp.mailfrom=b.example;"
	                       " dmarc=fail header.from=a.example; dkim=fail header.d=b.example"),
	                 0);
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "b.example");
	assert_check(&f.dmarc, ALLOWD_AUTH_FAIL, "a.example");
	assert_int_equal(f.n_dkim, 2);

	assert_int_equal(parse(&f, "mx.example.com; spf=softfail smtp.mailfrom=c.example;"
	                           " dmarc=temperror header.from=a.example"),
	                 0);
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "b.example");
	assert_check(&f.dmarc, ALLOWD_AUTH_FAIL, "a.example");

	assert_int_equal(parse(&f, "mx.example.com; dmarc=pass header.from=a.example"), 0);
	assert_check(&f.dmarc, ALLOWD_AUTH_PASS, "a.example");
	assert_int_equal(f.n_dkim, 2);
}

static void untrusted_authserv_ids_change_nothing(void **state)
{
	static const char v[] =
	    "evil.example; spf=pass smtp.mailfrom=bank.example;"
	    " dkim=pass header.d=bank.example; dmarc=pass header.from=bank.example";
	const char *const several[] = {NULL, "mx.example.net", "EVIL.example.com", "evil.exampl"};
	allowd_auth_facts f;
	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(parse(&f, v), 0);
	assert_int_equal(allowd_authres_parse(&f, v, NULL, 0), 0);
	assert_int_equal(allowd_authres_parse(&f, v, trust_mx, 0), 0);
	assert_int_equal(allowd_authres_parse(&f, v, several, 4), 0);
	assert_int_equal(parse_as(&f, v, "evil.example."), 0);
	assert_int_equal(parse_as(&f, v, ""), 0);
	assert_untouched(&f);

	/* The trusted one counts, whatever its case. */
	assert_int_equal(parse_as(&f, v, "EVIL.Example"), 0);
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "bank.example");
}

static void untrusted_header_body_is_not_examined(void **state)
{
	allowd_auth_facts f;
	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(parse(&f, "other.example; spf=pass (unbalanced"), 0);
	assert_int_equal(parse(&f, "other.example; dkim=\"unterminated"), 0);
	assert_untouched(&f);
	/* The same bodies under a trusted id are invalid. */
	assert_int_equal(parse(&f, "mx.example.com; spf=pass (unbalanced"), ALLOWD_EINVALID);
	assert_int_equal(parse(&f, "mx.example.com; dkim=\"unterminated"), ALLOWD_EINVALID);
	assert_untouched(&f);
}

static void unknown_methods_are_skipped(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com; arc=pass (i=2 spf=pass) smtp.remote-ip=192.0.2.1;"
	           " iprev=pass policy.iprev=192.0.2.1 (mail.example.com);"
	           " auth=pass smtp.auth=alice@example.com; bimi=pass header.d=example.com"
	           " header.selector=default policy.authority=pass"
	           " policy.authority-uri=https://example.com/vmc.pem;"
	           " dkim-atps=neutral header.from=example.com; x-custom/3=weird"
	           " x.y=\"z; still quoted\"; spf=neutral smtp.mailfrom=example.com;"
	           " dkim=policy header.d=example.com policy.dkim-rules=unsigned-subject;"
	           " dmarc=permerror header.from=example.com");
	assert_check(&f.spf, ALLOWD_AUTH_NEUTRAL, "example.com");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_POLICY, "example.com");
	assert_check(&f.dmarc, ALLOWD_AUTH_PERMERROR, "example.com");
}

static void unknown_result_keyword_is_not_merged(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed(
	    "mx.example.com; spf=maybe smtp.mailfrom=example.com;"
	    " dkim=invalid header.d=example.com; dmarc=bestguesspass header.from=example.com");
	assert_untouched(&f);
}

static void malformed_resinfo_is_skipped_the_rest_counts(void **state)
{
	allowd_auth_facts f;
	(void)state;
	f = parsed("mx.example.com; spf=pass smtp.mailfrom=a.example garbage here;"
	           " dkim=pass header.d=b.example");
	assert_check(&f.spf, ALLOWD_AUTH_NONE, "");
	assert_int_equal(f.n_dkim, 1);

	f = parsed("mx.example.com; spf pass smtp.mailfrom=a.example; = pass;"
	           " dmarc=pass header.from; dkim=; spf=\"pass\" smtp.mailfrom=a.example;"
	           " dkim/=pass header.d=a.example; @@@ \"quoted ; inside\" (and ; here);"
	           " dmarc=fail header.from=c.example");
	assert_check(&f.spf, ALLOWD_AUTH_NONE, "");
	assert_int_equal(f.n_dkim, 0);
	assert_check(&f.dmarc, ALLOWD_AUTH_FAIL, "c.example");

	/* A property name needs ptype "." property "=" value. */
	f = parsed("mx.example.com; dkim=pass header.=a.example; dkim=pass header.d a.example;"
	           " dkim=pass header . d b.example; dkim=pass header.d=c.example x;"
	           " dkim=pass header (c) . (c) d (c) = (c) ok.example; dkim=pass header");
	assert_int_equal(f.n_dkim, 1);
	assert_check(&f.dkim[0], ALLOWD_AUTH_PASS, "ok.example");
}

/* ---- garbage -------------------------------------------------------- */

static void expect_invalid(const char *value)
{
	allowd_auth_facts f;
	memset(&f, 0, sizeof(f));
	allowd_error_clear();
	assert_int_equal(parse(&f, value), ALLOWD_EINVALID);
	assert_int_equal(allowd_error_last()->code, ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->pointer, "");
	assert_true(strlen(allowd_error_last()->message) > 0);
	assert_untouched(&f);
}

static void garbage_is_invalid(void **state)
{
	(void)state;
	expect_invalid("");
	expect_invalid("   \r\n\t ");
	expect_invalid("(only a comment) (and another)");
	expect_invalid("Authentication-Results:");
	expect_invalid("; spf=pass smtp.mailfrom=example.com");
	expect_invalid("((unbalanced) mx.example.com; spf=pass");
	expect_invalid("mx.example.com (open; spf=pass");
	expect_invalid("mx.example.com) ; spf=pass");
	expect_invalid("mx.example.com; spf=pass smtp.mailfrom=example.com )");
	expect_invalid("mx.example.com; spf=pass (unclosed \\) comment");
	expect_invalid("mx.example.com; spf=pass reason=\"unterminated");
	expect_invalid("mx.example.com; spf=pass reason=\"ends in a backslash\\");
	expect_invalid("mx.example.com spf=pass");
	expect_invalid("mx.example.com 1 2; spf=pass");
	expect_invalid("mx.example.com@example.com");
	{
		/* garbage after an UNTRUSTED authserv-id is ignored, never an error */
		allowd_auth_facts f;
		memset(&f, 0, sizeof(f));
		assert_int_equal(parse(&f, "alice@example.com"), 0);
		assert_int_equal(parse(&f, "other.example spf=pass smtp.mailfrom=a.example"), 0);
		assert_int_equal(parse(&f, "other.example 1 dkim=pass header.d=a.example"), 0);
		assert_untouched(&f);
	}
	expect_invalid("\"unterminated authserv-id; spf=pass");
	expect_invalid("\x01\x02\x03");
	expect_invalid("mx.example.com 1 (open");
	expect_invalid("mx.example.com; dkim/(open");
	expect_invalid("mx.example.com; dkim/1(open");
	expect_invalid("mx.example.com; dkim=(open");
	expect_invalid("mx.example.com; dkim=pass header(open");
	expect_invalid("mx.example.com; dkim=pass header.(open");
	expect_invalid("mx.example.com; dkim=pass header.d(open");
	expect_invalid("mx.example.com; dkim=pass header.d=(open");
}

static void error_message_names_the_offset(void **state)
{
	allowd_auth_facts f;
	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(parse(&f, "mx.example.com spf=pass"), ALLOWD_EINVALID);
	assert_string_equal(allowd_error_last()->message,
	                    "not an Authentication-Results value: expected ';' after the "
	                    "authserv-id, found 's' at offset 15");
	assert_int_equal(parse(&f, "mx.example.com; dkim=pass (x"), ALLOWD_EINVALID);
	assert_string_equal(
	    allowd_error_last()->message,
	    "not an Authentication-Results value: unterminated comment at offset 26");
}

static void error_leaves_facts_unchanged(void **state)
{
	allowd_auth_facts f;
	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(parse(&f, "mx.example.com; spf=pass smtp.mailfrom=example.com;"
	                           " dkim=pass header.d=example.com; dmarc=pass reason=\"oops"),
	                 ALLOWD_EINVALID);
	assert_untouched(&f);
	assert_int_equal(allowd_authres_parse(NULL, "mx.example.com; none", trust_mx, 1),
	                 ALLOWD_EINVALID);
	assert_int_equal(allowd_authres_parse(&f, NULL, trust_mx, 1), ALLOWD_EINVALID);
	assert_untouched(&f);
}

/* "mx.example.com; spf=pass <open>x<close> smtp.mailfrom=example.com" at depth n. */
static int parse_nested(size_t depth, bool in_body)
{
	allowd_auth_facts f;
	size_t n = 0, cap = 2 * depth + 128;
	char *v = malloc(cap);
	int rc;

	assert_non_null(v);
	n += (size_t)snprintf(v + n, cap - n, "%s", in_body ? "mx.example.com; spf=pass " : "");
	for (size_t i = 0; i < depth; i++)
		v[n++] = '(';
	v[n++] = 'x';
	for (size_t i = 0; i < depth; i++)
		v[n++] = ')';
	snprintf(v + n, cap - n, "%s",
	         in_body ? " smtp.mailfrom=example.com" : " mx.example.com; spf=pass");
	memset(&f, 0, sizeof(f));
	rc = parse(&f, v);
	if (rc == 0)
		assert_int_equal(f.spf.result, ALLOWD_AUTH_PASS);
	else
		assert_untouched(&f);
	free(v);
	return rc;
}

static void comment_nesting_is_bounded(void **state)
{
	(void)state;
	assert_int_equal(parse_nested(1, true), 0);
	assert_int_equal(parse_nested(32, true), 0);
	assert_int_equal(parse_nested(32, false), 0);
	assert_int_equal(parse_nested(33, true), ALLOWD_EINVALID);
	assert_int_equal(parse_nested(33, false), ALLOWD_EINVALID);
	assert_int_equal(parse_nested(1000, true), ALLOWD_EINVALID);
	assert_int_equal(parse_nested(1000, false), ALLOWD_EINVALID);
	assert_int_equal(parse_nested(30000, true), ALLOWD_EINVALID);
	assert_non_null(strstr(allowd_error_last()->message, "nested deeper than 32"));
}

static void assert_sane(const allowd_auth_facts *f)
{
	assert_true(f->n_dkim <= ALLOWD_DKIM_MAX);
	assert_non_null(allowd_auth_result_name(f->spf.result));
	assert_non_null(allowd_auth_result_name(f->dmarc.result));
	assert_non_null(memchr(f->spf.domain, '\0', sizeof(f->spf.domain)));
	assert_non_null(memchr(f->dmarc.domain, '\0', sizeof(f->dmarc.domain)));
	for (size_t i = 0; i < f->n_dkim; i++) {
		assert_non_null(allowd_auth_result_name(f->dkim[i].result));
		assert_non_null(memchr(f->dkim[i].domain, '\0', sizeof(f->dkim[i].domain)));
	}
}

/* Random bytes (never NUL) and random grammar pieces, with and without a trusted prefix. */
static void binary_junk_never_crashes(void **state)
{
	static const char *const pieces[] = {
	    "(",      ")",
	    "\"",     "\\",
	    ";",      "=",
	    ".",      "/",
	    "@",      " ",
	    "\r\n ",  "spf",
	    "dkim",   "dmarc",
	    "pass",   "none",
	    "smtp",   "mailfrom",
	    "header", "d",
	    "i",      "from",
	    "<",      ">",
	    "1",      "mx.example.com",
	    "reason", "x",
	};
	uint32_t seed = 12345;
	char v[700];
	allowd_auth_facts f;
	(void)state;

	for (int iter = 0; iter < 20000; iter++) {
		size_t n = 0, len;
		int rc;

		seed = seed * 1103515245u + 12345u;
		if (iter & 1)
			n = (size_t)snprintf(v, sizeof(v), "mx.example.com;");
		len = (seed >> 8) % 512;
		for (size_t i = 0; i < len && n < sizeof(v) - 20; i++) {
			seed = seed * 1103515245u + 12345u;
			if (iter & 2) {
				const char *p =
				    pieces[(seed >> 16) % (sizeof(pieces) / sizeof(*pieces))];
				size_t pl = strlen(p);
				memcpy(v + n, p, pl);
				n += pl;
			} else {
				v[n++] = (char)(1 + (seed >> 16) % 255);
			}
		}
		v[n] = '\0';
		memset(&f, 0, sizeof(f));
		rc = parse(&f, v);
		assert_true(rc == 0 || rc == ALLOWD_EINVALID);
		if (rc)
			assert_untouched(&f);
		assert_sane(&f);
	}
}

static void very_long_values(void **state)
{
	const size_t max = 65536;
	allowd_auth_facts f;
	char *v = malloc(max + 2);
	(void)state;

	assert_non_null(v);
	/* Over the bound: refused before anything is read. */
	memset(v, 'a', max + 1);
	v[max + 1] = '\0';
	memset(&f, 0, sizeof(f));
	assert_int_equal(parse(&f, v), ALLOWD_EINVALID);
	assert_non_null(strstr(allowd_error_last()->message, "longer than 65536"));

	/* At the bound: a long authserv-id-shaped token, no ';': just not trusted. */
	v[max] = '\0';
	assert_int_equal(parse(&f, v), 0);
	assert_untouched(&f);

	/* A long comment and a long reason inside a trusted header still parse. */
	memcpy(v, "mx.example.com; spf=pass (", 26);
	memset(v + 26, 'c', 40000);
	memcpy(v + 26 + 40000, ") reason=\"", 10);
	memset(v + 26 + 40000 + 10, 'r', 20000);
	snprintf(v + 26 + 40000 + 10 + 20000, 100, "\" smtp.mailfrom=example.com");
	assert_int_equal(parse(&f, v), 0);
	assert_check(&f.spf, ALLOWD_AUTH_PASS, "example.com");

	/* Thousands of results. */
	{
		size_t n = (size_t)snprintf(v, max, "mx.example.com");
		memset(&f, 0, sizeof(f));
		while (n + 40 < max)
			n += (size_t)snprintf(v + n, max - n, "; dkim=fail header.d=x%zu.example",
			                      n);
		assert_int_equal(parse(&f, v), 0);
		assert_int_equal(f.n_dkim, ALLOWD_DKIM_MAX);
	}
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(result_names_round_trip),
	    cmocka_unit_test(result_parse_ignores_case_and_knows_hardfail),
	    cmocka_unit_test(gmail_header),
	    cmocka_unit_test(microsoft365_form_is_trusted_only_through_empty_id),
	    cmocka_unit_test(microsoft365_bestguesspass_is_not_a_pass),
	    cmocka_unit_test(fastmail_header_with_two_signatures_and_policy_properties),
	    cmocka_unit_test(comments_may_hold_semicolons_equals_and_nesting),
	    cmocka_unit_test(reason_is_a_quoted_string_with_escapes),
	    cmocka_unit_test(quoted_values_and_addresses),
	    cmocka_unit_test(quoted_authserv_id),
	    cmocka_unit_test(authserv_id_with_version),
	    cmocka_unit_test(no_result_forms),
	    cmocka_unit_test(folded_header_with_crlf),
	    cmocka_unit_test(keywords_are_case_insensitive),
	    cmocka_unit_test(header_name_prefix_is_skipped),
	    cmocka_unit_test(domains_lower_cased_and_trailing_dot_dropped),
	    cmocka_unit_test(overlong_or_broken_domains_are_skipped),
	    cmocka_unit_test(spf_domain_falls_back_to_helo),
	    cmocka_unit_test(dkim_domain_from_header_i_when_no_d),
	    cmocka_unit_test(several_dkim_results_kept_in_order_up_to_the_limit),
	    cmocka_unit_test(several_headers_merge_and_pass_wins),
	    cmocka_unit_test(untrusted_authserv_ids_change_nothing),
	    cmocka_unit_test(untrusted_header_body_is_not_examined),
	    cmocka_unit_test(unknown_methods_are_skipped),
	    cmocka_unit_test(unknown_result_keyword_is_not_merged),
	    cmocka_unit_test(malformed_resinfo_is_skipped_the_rest_counts),
	    cmocka_unit_test(garbage_is_invalid),
	    cmocka_unit_test(error_message_names_the_offset),
	    cmocka_unit_test(error_leaves_facts_unchanged),
	    cmocka_unit_test(comment_nesting_is_bounded),
	    cmocka_unit_test(binary_junk_never_crashes),
	    cmocka_unit_test(very_long_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

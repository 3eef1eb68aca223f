/*
 * test_pattern.c - unit tests for src/policy/pattern.c: the EMAIL, DOMAIN,
 * IP and regex pattern rules and their normalised forms.  Table driven;
 * every case runs through allowd_pattern_normalize and through the
 * type's own validator, and both must agree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allowd/error.h"
#include "allowd/policy.h"

#define EMAIL  ALLOWD_PATTERN_EMAIL
#define DOMAIN ALLOWD_PATTERN_DOMAIN
#define IP     ALLOWD_PATTERN_IP

struct ok_case {
	const char *in;
	const char *norm;
};

struct bad_case {
	const char *in;
	const char *fragment; /* must occur in the error message */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers --------------------------------------------------------- */

static int call_validator(char **out, allowd_pattern_type type, bool is_regex, const char *in)
{
	if (is_regex)
		return allowd_pattern_regex(out, in);
	switch (type) {
	case ALLOWD_PATTERN_EMAIL:
		return allowd_pattern_email(out, in);
	case ALLOWD_PATTERN_DOMAIN:
		return allowd_pattern_domain(out, in);
	case ALLOWD_PATTERN_IP:
		return allowd_pattern_ip(out, in);
	default:
		return allowd_pattern_normalize(out, type, is_regex, in);
	}
}

static void expect_ok(allowd_pattern_type type, bool is_regex, const char *in, const char *norm)
{
	for (int via = 0; via < 2; via++) {
		char *out = NULL;
		int rc = via == 0 ? allowd_pattern_normalize(&out, type, is_regex, in)
		                  : call_validator(&out, type, is_regex, in);
		if (rc != 0)
			fail_msg("'%s' (type %d, regex %d, via %s): unexpected error %d: %s", in,
			         (int)type, (int)is_regex, via ? "validator" : "normalize", rc,
			         allowd_error_last()->message);
		if (!out || strcmp(out, norm) != 0)
			fail_msg("'%s': normalised to '%s', expected '%s'", in,
			         out ? out : "(null)", norm);
		free(out);
	}
}

static void expect_error(allowd_pattern_type type, bool is_regex, const char *in,
                         const char *fragment, const char *pointer, bool both)
{
	for (int via = 0; via < (both ? 2 : 1); via++) {
		char *out = (char *)"sentinel";
		int rc = via == 0 ? allowd_pattern_normalize(&out, type, is_regex, in)
		                  : call_validator(&out, type, is_regex, in);
		const allowd_error *e = allowd_error_last();
		if (rc != ALLOWD_EINVALID)
			fail_msg("'%s' (type %d, regex %d): expected ALLOWD_EINVALID, got %d (%s)",
			         in ? in : "(null)", (int)type, (int)is_regex, rc,
			         rc == 0 ? out : e->message);
		if (out != NULL)
			fail_msg("'%s': *out not NULL after failure", in ? in : "(null)");
		if (!strstr(e->message, fragment))
			fail_msg("'%s': message '%s' lacks '%s'", in ? in : "(null)", e->message,
			         fragment);
		if (strcmp(e->pointer, pointer) != 0)
			fail_msg("'%s': pointer '%s', expected '%s'", in ? in : "(null)",
			         e->pointer, pointer);
	}
}

static void expect_bad(allowd_pattern_type type, bool is_regex, const char *in,
                       const char *fragment)
{
	expect_error(type, is_regex, in, fragment, "/pattern", true);
}

static void ok_table(allowd_pattern_type type, bool is_regex, const struct ok_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect_ok(type, is_regex, c[i].in, c[i].norm);
}

static void bad_table(allowd_pattern_type type, bool is_regex, const struct bad_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect_bad(type, is_regex, c[i].in, c[i].fragment);
}

/* Concatenates `n` copies of `unit` and then `tail` into a new string. */
static char *repeat(const char *unit, size_t n, const char *tail)
{
	size_t u = strlen(unit), t = strlen(tail);
	char *s = malloc(u * n + t + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * u, unit, u);
	memcpy(s + u * n, tail, t + 1);
	return s;
}

/* A host name of exactly `len` octets: 63-octet labels, then the rest. */
static char *domain_of_length(size_t len)
{
	char *s = malloc(len + 1);
	size_t i = 0, in_label = 0;

	assert_non_null(s);
	while (i < len) {
		/* a dot every 64th octet, but never first or last */
		if (in_label == 63 && i + 1 < len) {
			s[i++] = '.';
			in_label = 0;
			continue;
		}
		s[i++] = 'a';
		in_label++;
	}
	s[len] = '\0';
	return s;
}

/* ---- allowd_utf8_length ---------------------------------------------- */

static void utf8_length_counts_scalar_values(void **state)
{
	static const struct {
		const char *s;
		long n;
	} cases[] = {
	    {"", 0},
	    {"abc", 3},
	    {"\xc3\xa9", 1},         /* U+00E9 */
	    {"\xe2\x82\xac", 1},     /* U+20AC */
	    {"\xf0\x9f\x98\x80", 1}, /* U+1F600 */
	    {"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 4},
	    {"\xed\x9f\xbf", 1},     /* U+D7FF, below the surrogates */
	    {"\xee\x80\x80", 1},     /* U+E000, above them */
	    {"\xef\xbf\xbf", 1},     /* U+FFFF */
	    {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF, the last scalar value */
	    {"\xc2\x80", 1},         /* U+0080, shortest two-byte form */
	    {"\xe0\xa0\x80", 1},     /* U+0800 */
	    {"\xf0\x90\x80\x80", 1}, /* U+10000 */
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		assert_int_equal(allowd_utf8_length(cases[i].s, strlen(cases[i].s)), cases[i].n);
	assert_int_equal(allowd_utf8_length("a\0b", 3), 3);
	assert_int_equal(allowd_utf8_length(NULL, 0), 0);
}

static void utf8_length_rejects_malformed_input(void **state)
{
	static const char *cases[] = {
	    "\x80",                 /* stray continuation byte */
	    "a\xbf",                /* stray continuation byte */
	    "\xc0\x80",             /* overlong NUL */
	    "\xc1\xbf",             /* overlong U+007F */
	    "\xe0\x9f\xbf",         /* overlong U+07FF */
	    "\xf0\x8f\xbf\xbf",     /* overlong U+FFFF */
	    "\xed\xa0\x80",         /* U+D800 surrogate */
	    "\xed\xbf\xbf",         /* U+DFFF surrogate */
	    "\xf4\x90\x80\x80",     /* U+110000 */
	    "\xf5\x80\x80\x80",     /* lead byte beyond U+10FFFF */
	    "\xf8\x88\x80\x80\x80", /* five-byte form */
	    "\xfe",
	    "\xff",
	    "\xc3",         /* truncated */
	    "\xe2\x82",     /* truncated */
	    "\xf0\x9f\x98", /* truncated */
	    "\xc3\x28",     /* bad continuation */
	    "\xe2\x28\xa1", /* bad continuation */
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		assert_int_equal(allowd_utf8_length(cases[i], strlen(cases[i])), -1);
	/* the length bounds the scan: half a character is invalid */
	assert_int_equal(allowd_utf8_length("\xc3\xa9", 1), -1);
	assert_int_equal(allowd_utf8_length(NULL, 1), -1);
}

/* ---- rules common to every pattern ---------------------------------- */

static const allowd_pattern_type all_types[] = {EMAIL, DOMAIN, IP};

static void pattern_rejects_invalid_utf8_for_every_type(void **state)
{
	static const char *cases[] = {
	    "\xc3\x28@example.com",
	    "user@ex\xc0\xafmple.com",
	    "\xe0\x80\xaf/example.com", /* overlong U+002F */
	    "\xed\xa0\x80.example.com",
	    "\xf4\x90\x80\x80",
	    "1.2.3.4\xff",
	    "example.com\xe2\x82",
	};
	(void)state;
	for (size_t t = 0; t < N(all_types); t++)
		for (size_t i = 0; i < N(cases); i++)
			for (int regex = 0; regex < 2; regex++)
				expect_bad(all_types[t], regex, cases[i], "not valid UTF-8");
}

static void pattern_rejects_null_and_empty(void **state)
{
	(void)state;
	for (size_t t = 0; t < N(all_types); t++)
		for (int regex = 0; regex < 2; regex++) {
			expect_bad(all_types[t], regex, "", "pattern is empty");
			expect_bad(all_types[t], regex, NULL, "pattern is required");
		}
}

static void pattern_accepts_1024_characters(void **state)
{
	static const char *units[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	(void)state;
	for (size_t i = 0; i < N(units); i++) {
		char *s = repeat(units[i], ALLOWD_PATTERN_MAX, "");
		assert_int_equal(allowd_utf8_length(s, strlen(s)), ALLOWD_PATTERN_MAX);
		expect_ok(EMAIL, true, s, s);
		free(s);
	}
}

static void pattern_rejects_1025_characters(void **state)
{
	static const char *units[] = {"a", "\xc3\xa9", "\xf0\x9f\x98\x80"};
	(void)state;
	for (size_t i = 0; i < N(units); i++) {
		char *s = repeat(units[i], ALLOWD_PATTERN_MAX + 1, "");
		for (size_t t = 0; t < N(all_types); t++)
			for (int regex = 0; regex < 2; regex++)
				expect_bad(all_types[t], regex, s,
				           "pattern is too long: 1025 characters, at most 1024");
		free(s);
	}
}

static void pattern_rejects_control_characters(void **state)
{
	static const struct bad_case cases[] = {
	    {"exa\tmple.com", "control character (U+0009) at offset 3"},
	    {"exa\nmple.com", "control character (U+000A)"},
	    {"exa\rmple.com", "control character (U+000D)"},
	    {"\x01"
	     "example.com",
	     "control character (U+0001) at offset 0"},
	    {"example\x1f.com", "control character (U+001F)"},
	    {"example\x7f.com", "control character (U+007F)"},
	    {"exampl\xc3\xa9\x1b.com", "control character (U+001B) at offset 7"},
	    {"example\xc2\x80.com", "control character (U+0080)"},
	    {"example\xc2\x9f.com", "control character (U+009F)"},
	};
	(void)state;
	for (size_t t = 0; t < N(all_types); t++)
		for (int regex = 0; regex < 2; regex++)
			bad_table(all_types[t], regex, cases, N(cases));
}

static void pattern_rejects_leading_and_trailing_whitespace(void **state)
{
	static const struct bad_case cases[] = {
	    {" example.com", "starts with whitespace (U+0020)"},
	    {"example.com ", "ends with whitespace (U+0020)"},
	    {"\texample.com", "starts with whitespace (U+0009)"},
	    {"example.com\n", "ends with whitespace (U+000A)"},
	    {"example.com\r\n", "ends with whitespace (U+000A)"},
	    {"\xc2\xa0"
	     "example.com",
	     "starts with whitespace (U+00A0)"},
	    {"example.com\xe3\x80\x80", "ends with whitespace (U+3000)"},
	    {"example.com\xe2\x80\xa8", "ends with whitespace (U+2028)"},
	    {"  ", "starts with whitespace"},
	};
	(void)state;
	for (size_t t = 0; t < N(all_types); t++)
		for (int regex = 0; regex < 2; regex++)
			bad_table(all_types[t], regex, cases, N(cases));
}

static void regex_allows_inner_spaces(void **state)
{
	(void)state;
	expect_ok(EMAIL, true, "John Doe.*", "John Doe.*");
}

static void normalize_rejects_unknown_pattern_type(void **state)
{
	(void)state;
	for (int regex = 0; regex < 2; regex++) {
		expect_error(ALLOWD_PATTERN_UNKNOWN, regex, "example.com",
		             "pattern_type UNKNOWN cannot be written", "/pattern_type", false);
		expect_error((allowd_pattern_type)7, regex, "example.com",
		             "pattern_type must be EMAIL, DOMAIN or IP", "/pattern_type", false);
	}
}

static void normalize_checks_the_pattern_before_the_type(void **state)
{
	(void)state;
	expect_error(ALLOWD_PATTERN_UNKNOWN, false, "", "pattern is empty", "/pattern", false);
}

/* ---- DOMAIN ---------------------------------------------------------- */

static void domain_normalises_to_lower_case_a_labels(void **state)
{
	static const struct ok_case cases[] = {
	    {"example.com", "example.com"},
	    {"Example.COM", "example.com"},
	    {"sub.example.co.uk", "sub.example.co.uk"},
	    {"a-b.example", "a-b.example"},
	    {"123.example", "123.example"},
	    {"example.c0m", "example.c0m"},
	    {"b\xc3\xbc"
	     "cher.example",
	     "xn--bcher-kva.example"},
	    {"B\xc3\x9c"
	     "CHER.example",
	     "xn--bcher-kva.example"},
	    {"Ex\xc3\xa4mple.COM", "xn--exmple-cua.com"},
	    {"xn--bcher-kva.example", "xn--bcher-kva.example"},
	    {"XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"},
	    {"fa\xc3\x9f.de", "xn--fa-hia.de"}, /* non-transitional: ß stays */
	    {"\xce\x91\xce\x92\xce\x93.gr", "xn--mxacd.gr"},
	    {"\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88",
	     "xn--r8jz45g.xn--zckzah"},
	    /* UTS #46 mapping: full-width letters, ideographic full stop */
	    {"\xef\xbd\x85\xef\xbd\x98\xef\xbd\x81\xef\xbd\x8d\xef\xbd\x90\xef\xbd\x8c\xef\xbd\x85."
	     "com",
	     "example.com"},
	    {"example\xe3\x80\x82"
	     "com",
	     "example.com"},
	};
	(void)state;
	ok_table(DOMAIN, false, cases, N(cases));
}

static void domain_drops_one_trailing_dot(void **state)
{
	static const struct ok_case cases[] = {
	    {"example.com.", "example.com"},
	    {"B\xc3\xbc"
	     "cher.example.",
	     "xn--bcher-kva.example"},
	    {"example.com\xe3\x80\x82", "example.com"},
	};
	(void)state;
	ok_table(DOMAIN, false, cases, N(cases));
	expect_bad(DOMAIN, false, "example.com..", "domain ends with more than one dot");
}

static void domain_rejects_empty_labels(void **state)
{
	static const struct bad_case cases[] = {
	    {".example.com", "domain starts with '.'"},
	    {"a..example.com", "empty label ('..')"},
	    {".", "domain is empty"},
	    {"..", "domain ends with more than one dot"},
	    /* UTS #46 maps U+200B to nothing: alone, it leaves an empty label */
	    {"\xe2\x80\x8b.example.com", "domain starts with '.'"},
	};
	(void)state;
	bad_table(DOMAIN, false, cases, N(cases));
	expect_ok(DOMAIN, false, "exa\xe2\x80\x8bmple.com", "example.com");
}

static void domain_label_of_63_octets_is_accepted(void **state)
{
	char *ascii = repeat("a", 63, ".com");
	char *idn = repeat("a", 55, "\xc3\xa4.com"); /* A-label of exactly 63 octets */
	char *idn_norm = repeat("a", 55, "-uve.com");
	char *want = malloc(strlen(idn_norm) + 5);
	(void)state;
	assert_non_null(want);
	memcpy(want, "xn--", 4);
	memcpy(want + 4, idn_norm, strlen(idn_norm) + 1);
	expect_ok(DOMAIN, false, ascii, ascii);
	expect_ok(DOMAIN, false, idn, want);
	free(ascii);
	free(idn);
	free(idn_norm);
	free(want);
}

static void domain_label_of_64_octets_is_rejected(void **state)
{
	char *ascii = repeat("a", 64, ".com");
	char *idn = repeat("a", 56, "\xc3\xa4.com"); /* A-label of 64 octets */
	char *middle = repeat("a", 64, "");
	char *deep = malloc(200);
	(void)state;
	assert_non_null(deep);
	assert_true(snprintf(deep, 200, "www.%s.example.com", middle) > 0);
	expect_bad(DOMAIN, false, ascii, "is 64 octets long, at most 63");
	expect_bad(DOMAIN, false, deep, "is 64 octets long, at most 63");
	expect_bad(DOMAIN, false, idn, "longer than 63 octets in A-label (xn--) form");
	free(ascii);
	free(idn);
	free(middle);
	free(deep);
}

static void domain_of_253_octets_is_accepted(void **state)
{
	char *d = domain_of_length(253);
	char *dot = repeat(d, 1, ".");
	(void)state;
	expect_ok(DOMAIN, false, d, d);
	expect_ok(DOMAIN, false, dot, d); /* the trailing dot does not count */
	free(d);
	free(dot);
}

static void domain_of_254_octets_is_rejected(void **state)
{
	char *d254 = domain_of_length(254);
	char *d300 = domain_of_length(300);
	char *idn = repeat("\xc3\xa4"
	                   "a.",
	                   80, "com"); /* 80 labels of 9 octets */
	(void)state;
	expect_bad(DOMAIN, false, d254, "domain is 254 octets long, at most 253");
	expect_bad(DOMAIN, false, d300, "domain is 300 octets long, at most 253");
	expect_bad(DOMAIN, false, idn, "longer than 253 octets");
	free(d254);
	free(d300);
	free(idn);
}

static void domain_requires_two_labels(void **state)
{
	static const struct bad_case cases[] = {
	    {"localhost", "'localhost' has a single label; at least two are required"},
	    {"localhost.", "single label"},
	    {"com", "single label"},
	    {"b\xc3\xbc"
	     "cher",
	     "'xn--bcher-kva' has a single label"},
	};
	(void)state;
	bad_table(DOMAIN, false, cases, N(cases));
}

static void domain_rejects_all_numeric_tld(void **state)
{
	static const struct bad_case cases[] = {
	    {"1.2.3.4", "top-level label of '1.2.3.4' is all digits; for an IP address use "
	                "pattern_type IP"},
	    {"8.8.8.8.", "use pattern_type IP"},
	    {"example.123", "is all digits"},
	    {"01.2.3.4", "use pattern_type IP"},
	};
	(void)state;
	bad_table(DOMAIN, false, cases, N(cases));
}

static void domain_rejects_ip_literals(void **state)
{
	(void)state;
	expect_bad(DOMAIN, false, "2606:4700::1",
	           "is an IPv6 address, not a domain; use pattern_type IP");
	expect_bad(DOMAIN, false, "2606:4700::/32", "no scheme, port, path or IP address");
}

static void domain_rejects_non_ldh_characters(void **state)
{
	static const struct bad_case cases[] = {
	    {"_dmarc.example.com", "label '_dmarc' contains '_'; only letters, digits and hyphens"},
	    {"exa mple.com", "contains ' '"},
	    {"exa$mple.com", "contains '$'"},
	    {"*.example.com", "for wildcards use is_regex"},
	    {"user@example.com", "for an address use pattern_type EMAIL"},
	    {"http://example.com", "no scheme, port, path"},
	    {"example.com:25", "contains ':'"},
	    {"example.com/path", "contains '/'"},
	    {"\"example\".com", "contains '\"'"},
	    /* UTS #46 maps U+2474 to "(1)", which is not LDH */
	    {"\xe2\x91\xb4.com", "contains '('"},
	};
	(void)state;
	bad_table(DOMAIN, false, cases, N(cases));
}

static void domain_reports_libidn2_errors(void **state)
{
	static const struct bad_case cases[] = {
	    {"-example.com", "hyphen"},
	    {"example-.com", "hyphen"},
	    {"ab--cd.com", "invalid domain 'ab--cd.com': "},
	    {"xn--abc.com", "invalid domain 'xn--abc.com': "},
	    {"xn--.com", "invalid domain"},
	    {"a\xe2\x80\x8c"
	     "b.com",
	     "invalid domain"}, /* ZWNJ outside its context */
	};
	(void)state;
	bad_table(DOMAIN, false, cases, N(cases));
}

/* ---- EMAIL ----------------------------------------------------------- */

static void email_normalises_case_and_domain(void **state)
{
	static const struct ok_case cases[] = {
	    {"user@example.com", "user@example.com"},
	    {"User@Ex\xc3\xa4mple.COM", "user@xn--exmple-cua.com"},
	    {"John.Doe@Example.com", "john.doe@example.com"},
	    {"first.last+tag@example.com", "first.last+tag@example.com"},
	    {"a!#$%&'*+-/=?^_`{|}~@example.com", "a!#$%&'*+-/=?^_`{|}~@example.com"},
	    {"A.B.C@EXAMPLE.COM", "a.b.c@example.com"},
	    {"user@b\xc3\xbc"
	     "cher.example",
	     "user@xn--bcher-kva.example"},
	    {"user@example.com.", "user@example.com"},
	    {"x@a.bc", "x@a.bc"},
	};
	(void)state;
	ok_table(EMAIL, false, cases, N(cases));
}

static void email_accepts_utf8_local_parts(void **state)
{
	static const struct ok_case cases[] = {
	    {"Pel\xc3\xa9@example.com", "pel\xc3\xa9@example.com"},
	    /* only ASCII is lower-cased */
	    {"\xc3\x84"
	     "Bc@example.com",
	     "\xc3\x84"
	     "bc@example.com"},
	    {"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
	     "\xe7\x94\xa8\xe6\x88\xb7@xn--fsqu00a.xn--4rr70v"},
	    {"j\xc3\xb6rg.m\xc3\xbcller@example.com", "j\xc3\xb6rg.m\xc3\xbcller@example.com"},
	};
	(void)state;
	ok_table(EMAIL, false, cases, N(cases));
}

static void email_accepts_quoted_local_parts(void **state)
{
	static const struct ok_case cases[] = {
	    {"\"John Doe\"@example.com", "\"john doe\"@example.com"},
	    {"\"a@b\"@example.com", "\"a@b\"@example.com"},
	    {"\"a\\\"b\"@example.com", "\"a\\\"b\"@example.com"},
	    {"\"a\\\\b\"@Example.com", "\"a\\\\b\"@example.com"},
	    {"\"\\A\"@example.com", "\"\\a\"@example.com"},
	    {"\"\"@example.com", "\"\"@example.com"},
	    {"\".a..b.\"@example.com", "\".a..b.\"@example.com"},
	    {"\"(comment),;:<>[]\"@example.com", "\"(comment),;:<>[]\"@example.com"},
	    {"\"Pel\xc3\xa9 x\"@example.com", "\"pel\xc3\xa9 x\"@example.com"},
	};
	(void)state;
	ok_table(EMAIL, false, cases, N(cases));
}

static void email_splits_at_the_last_at_sign(void **state)
{
	(void)state;
	expect_ok(EMAIL, false, "\"a@b@c\"@Example.com", "\"a@b@c\"@example.com");
	expect_bad(EMAIL, false, "a@b@example.com",
	           "'@' may appear in the local part only inside quotes");
	/* the last '@' is inside the quotes: the domain part is then invalid */
	expect_bad(EMAIL, false, "\"user@example.com\"",
	           "the quoted local part has no closing quote");
}

static void email_rejects_missing_parts(void **state)
{
	static const struct bad_case cases[] = {
	    {"example.com", "no '@'; for a whole domain use pattern_type DOMAIN"},
	    {"@example.com", "the local part (before '@') is empty"},
	    {"user@", "the domain (after '@') is empty"},
	    {"@", "the local part (before '@') is empty"},
	};
	(void)state;
	bad_table(EMAIL, false, cases, N(cases));
}

static void email_local_part_of_64_octets_is_accepted(void **state)
{
	char *ascii = repeat("a", 64, "@example.com");
	char *utf8 = repeat("\xc3\xa9", 32, "@example.com");
	(void)state;
	expect_ok(EMAIL, false, ascii, ascii);
	expect_ok(EMAIL, false, utf8, utf8);
	free(ascii);
	free(utf8);
}

static void email_local_part_of_65_octets_is_rejected(void **state)
{
	char *ascii = repeat("a", 65, "@example.com");
	char *utf8 = repeat("\xc3\xa9", 32, "a@example.com"); /* 33 characters, 65 octets */
	char *body = repeat("a", 63, "\"@example.com");       /* "aaa...": 65 octets */
	char *q = malloc(strlen(body) + 2);
	(void)state;
	assert_non_null(q);
	q[0] = '"';
	memcpy(q + 1, body, strlen(body) + 1);
	expect_bad(EMAIL, false, ascii, "the local part is 65 octets long, at most 64");
	expect_bad(EMAIL, false, utf8, "the local part is 65 octets long, at most 64");
	expect_bad(EMAIL, false, q, "the local part is 65 octets long, at most 64");
	free(ascii);
	free(utf8);
	free(body);
	free(q);
}

static void email_rejects_misplaced_dots(void **state)
{
	static const struct bad_case cases[] = {
	    {".user@example.com", "the local part starts with '.'"},
	    {"user.@example.com", "the local part ends with '.'"},
	    {"us..er@example.com", "the local part contains '..'"},
	    {".@example.com", "the local part starts with '.'"},
	};
	(void)state;
	bad_table(EMAIL, false, cases, N(cases));
}

static void email_rejects_specials_in_unquoted_local_parts(void **state)
{
	static const struct bad_case cases[] = {
	    {"a b@example.com", "character ' ' is not allowed in an unquoted local part"},
	    {"a(b)@example.com", "character '('"},
	    {"a,b@example.com", "character ','"},
	    {"a:b@example.com", "character ':'"},
	    {"a;b@example.com", "character ';'"},
	    {"a<b@example.com", "character '<'"},
	    {"a[b]@example.com", "character '['"},
	    {"a\\b@example.com", "character '\\'"},
	    {"a\"b\"@example.com", "character '\"'"},
	};
	(void)state;
	bad_table(EMAIL, false, cases, N(cases));
}

static void email_rejects_malformed_quoted_local_parts(void **state)
{
	static const struct bad_case cases[] = {
	    {"\"abc@example.com", "the quoted local part has no closing quote"},
	    {"\"@example.com", "the quoted local part has no closing quote"},
	    {"\"abc\\\"@example.com", "the quoted local part has no closing quote"},
	    {"\"abc\\@example.com", "ends with a lone '\\'"},
	    {"\"a\"b@example.com", "text follows the closing quote"},
	    {"\"a\".b@example.com", "text follows the closing quote"},
	    {"\"a\\\xc3\xa9\"@example.com", "must be followed by a printable ASCII character"},
	};
	(void)state;
	bad_table(EMAIL, false, cases, N(cases));
}

static void email_domain_follows_domain_rules(void **state)
{
	char *long_label = repeat("a", 64, ".com");
	char *addr = repeat("user@", 1, long_label);
	static const struct bad_case cases[] = {
	    {"user@localhost", "single label"},
	    {"user@1.2.3.4", "is all digits"},
	    {"user@[192.0.2.1]", "address literals such as [192.0.2.1] are not supported"},
	    {"user@[IPv6:2001:db8::1]", "address literals"},
	    {"user@exa_mple.com", "contains '_'"},
	    {"user@-example.com", "hyphen"},
	    {"user@example..com", "empty label"},
	    {"user@example.com..", "more than one dot"},
	    {"user@xn--abc.com", "invalid domain"},
	};
	(void)state;
	bad_table(EMAIL, false, cases, N(cases));
	expect_bad(EMAIL, false, addr, "is 64 octets long, at most 63");
	free(long_label);
	free(addr);
}

static void email_of_254_octets_is_accepted(void **state)
{
	char *local = repeat("a", 64, "@");
	char *domain = domain_of_length(189);
	char *addr = repeat(local, 1, domain);
	(void)state;
	assert_int_equal(strlen(addr), 254);
	expect_ok(EMAIL, false, addr, addr);
	free(local);
	free(domain);
	free(addr);
}

static void email_of_255_octets_is_rejected(void **state)
{
	char *local = repeat("a", 64, "@");
	char *domain = domain_of_length(190);
	char *addr = repeat(local, 1, domain);
	char *upper = repeat(addr, 1, "."); /* the dropped trailing dot does not count */
	(void)state;
	assert_int_equal(strlen(addr), 255);
	expect_bad(EMAIL, false, addr,
	           "the address is 255 octets long once normalised, at most 254");
	expect_bad(EMAIL, false, upper, "255 octets");
	free(local);
	free(domain);
	free(addr);
	free(upper);
}

/* ---- IP -------------------------------------------------------------- */

static void ip_normalises_to_canonical_text(void **state)
{
	static const struct ok_case cases[] = {
	    {"8.8.8.8", "8.8.8.8"},
	    {"1.1.1.1", "1.1.1.1"},
	    {"8.8.8.0/24", "8.8.8.0/24"},
	    {"8.0.0.0/7", "8.0.0.0/7"},
	    {"2606:4700:0::/32", "2606:4700::/32"},
	    {"2606:4700:0000:0000:0000:0000:0000:0001", "2606:4700::1"},
	    {"2606:4700::01", "2606:4700::1"},
	    {"2A00:1450:4001:0:0:0:0:200E", "2a00:1450:4001::200e"},
	    {"2606:4700:0:1:0:0:1:0", "2606:4700:0:1::1:0"},
	    {"2606:0:0:1:0:0:0:1", "2606:0:0:1::1"},            /* the longest zero run */
	    {"2606:1:0:0:1:0:0:1", "2606:1::1:0:0:1"},          /* the first of equal runs */
	    {"2606:4700:1:2:3:4:5:0", "2606:4700:1:2:3:4:5:0"}, /* no "::" for one group */
	    {"2001:4860:4860::8888", "2001:4860:4860::8888"},
	    {"2400::/6", "2400::/6"},
	};
	(void)state;
	ok_table(IP, false, cases, N(cases));
}

static void ip_drops_a_full_length_prefix(void **state)
{
	static const struct ok_case cases[] = {
	    {"1.2.3.4/32", "1.2.3.4"},
	    {"8.8.8.8/32", "8.8.8.8"},
	    {"2606:4700::1/128", "2606:4700::1"},
	    {"2606:4700::/127", "2606:4700::/127"},
	    {"1.2.3.4/31", "1.2.3.4/31"},
	};
	(void)state;
	ok_table(IP, false, cases, N(cases));
}

static void ip_turns_ipv4_mapped_ipv6_into_ipv4(void **state)
{
	static const struct ok_case cases[] = {
	    {"::ffff:8.8.8.8", "8.8.8.8"},         {"::FFFF:808:808", "8.8.8.8"},
	    {"0:0:0:0:0:ffff:8.8.8.8", "8.8.8.8"}, {"::ffff:8.8.8.8/128", "8.8.8.8"},
	    {"::ffff:8.8.8.0/120", "8.8.8.0/24"},  {"::ffff:8.0.0.0/103", "8.0.0.0/7"},
	};
	static const struct bad_case bad[] = {
	    {"::ffff:10.0.0.1", "10.0.0.1 is not globally reachable: 10.0.0.0/8 is private"},
	    {"::ffff:127.0.0.1", "127.0.0.0/8 is loopback"},
	    {"::ffff:192.168.0.0/112", "192.168.0.0/16 is private address space"},
	    {"::ffff:0:0/96", "0.0.0.0/0 overlaps"},
	    {"::ffff:8.8.8.8/120", "has host bits set; did you mean 8.8.8.0/24?"},
	    /* shorter than /96 it stays IPv6, outside 2000::/3 */
	    {"::ffff:0:0/95", "has host bits set"},
	    {"::/80", "::/3 is outside the global unicast space 2000::/3"},
	};
	(void)state;
	ok_table(IP, false, cases, N(cases));
	bad_table(IP, false, bad, N(bad));
}

static void ip_rejects_host_bits_and_suggests_the_network(void **state)
{
	static const struct bad_case cases[] = {
	    {"1.2.3.4/24", "1.2.3.4/24 has host bits set; did you mean 1.2.3.0/24?"},
	    {"1.2.3.128/24", "did you mean 1.2.3.0/24?"},
	    {"1.2.3.1/31", "did you mean 1.2.3.0/31?"},
	    {"8.8.8.8/0", "did you mean 0.0.0.0/0?"},
	    {"8.0.0.0/4", "8.0.0.0/4 has host bits set; did you mean 0.0.0.0/4?"},
	    {"2606:4700::1/32", "2606:4700::1/32 has host bits set; did you mean 2606:4700::/32?"},
	    {"2606:4700:4000::/33", "did you mean 2606:4700::/33?"},
	    {"2606:4700::1/127", "did you mean 2606:4700::/127?"},
	};
	(void)state;
	bad_table(IP, false, cases, N(cases));
}

static void ip_rejects_malformed_prefixes(void **state)
{
	static const struct bad_case cases[] = {
	    {"8.8.8.0/", "the prefix length after '/' is missing"},
	    {"8.8.8.0/024", "the prefix length '/024' has a leading zero"},
	    {"8.8.8.0/00", "has a leading zero"},
	    {"8.8.8.0/+24", "'/+24' is not a decimal number"},
	    {"8.8.8.0/-1", "is not a decimal number"},
	    {"8.8.8.0/ 24", "is not a decimal number"},
	    {"8.8.8.0/24x", "is not a decimal number"},
	    {"8.8.8.0/0x18", "is not a decimal number"},
	    {"8.8.8.0/24/24", "is not a decimal number"},
	    {"8.8.8.0/33", "'/33' is out of range; IPv4 prefixes are 0 to 32"},
	    {"2606:4700::/129", "IPv6 prefixes are 0 to 128"},
	    {"2606:4700::/99999999999999999999", "is out of range"},
	    {"/24", "the address before '/' is missing"},
	};
	(void)state;
	bad_table(IP, false, cases, N(cases));
}

static void ip_rejects_malformed_addresses(void **state)
{
	static const struct bad_case cases[] = {
	    {"01.2.3.4", "leading zeros are not allowed"},
	    {"1.2.3.04", "leading zeros are not allowed"},
	    {"1.2.3.00/24", "leading zeros are not allowed"},
	    {"1.2.3", "'1.2.3' is not an IPv4 address"},
	    {"1.2.3.4.5", "is not an IPv4 address"},
	    {"256.1.1.1", "is not an IPv4 address"},
	    {"1.2.3.", "is not an IPv4 address"},
	    {"0x1.2.3.4", "is not an IP address"},
	    {"example.com", "for a host name use pattern_type DOMAIN"},
	    {"2606:4700::g", "is not an IPv6 address"},
	    {"1:2:3:4:5:6:7:8:9", "is not an IPv6 address"},
	    {"2606:4700::00001", "is not an IPv6 address"},
	    {"2606:4700:::1", "is not an IPv6 address"},
	    {"[2606:4700::1]", "write it without brackets"},
	    {"fe80::1%eth0", "zone identifiers"},
	    {"2606:4700:0000:0000:0000:0000:0000:0000:0001", "is not an IPv6 address"},
	};
	(void)state;
	bad_table(IP, false, cases, N(cases));
}

static void ip_rejects_every_reserved_ipv4_range(void **state)
{
	static const struct bad_case cases[] = {
	    {"0.0.0.0", "0.0.0.0/8 is \"this network\""},
	    {"0.1.2.3", "0.0.0.0/8 is \"this network\""},
	    {"0.0.0.0/8", "0.0.0.0/8 is \"this network\""},
	    {"10.0.0.0/8", "10.0.0.0/8 is private address space"},
	    {"10.255.255.255", "10.0.0.0/8 is private address space"},
	    {"100.64.0.0/10", "100.64.0.0/10 is shared address space"},
	    {"100.127.255.255", "100.64.0.0/10 is shared address space"},
	    {"127.0.0.1", "127.0.0.0/8 is loopback address space"},
	    {"127.0.0.0/8", "127.0.0.0/8 is loopback address space"},
	    {"169.254.169.254", "169.254.0.0/16 is link-local address space"},
	    {"172.16.0.0/12", "172.16.0.0/12 is private address space"},
	    {"172.31.255.255", "172.16.0.0/12 is private address space"},
	    {"192.0.0.8", "192.0.0.0/24 is reserved for IETF protocol assignments"},
	    {"192.0.2.1", "192.0.2.0/24 is reserved for documentation (TEST-NET-1)"},
	    {"192.88.99.1", "192.88.99.0/24 is the deprecated 6to4 relay anycast range"},
	    {"192.168.1.0/24", "192.168.0.0/16 is private address space"},
	    {"198.18.0.0/15", "198.18.0.0/15 is reserved for benchmarking"},
	    {"198.19.255.255", "198.18.0.0/15 is reserved for benchmarking"},
	    {"198.51.100.7", "198.51.100.0/24 is reserved for documentation (TEST-NET-2)"},
	    {"203.0.113.0/24", "203.0.113.0/24 is reserved for documentation (TEST-NET-3)"},
	    {"224.0.0.1", "224.0.0.0/4 is multicast address space"},
	    {"239.255.255.255", "224.0.0.0/4 is multicast address space"},
	    {"240.0.0.1", "240.0.0.0/4 is reserved for future use"},
	    {"254.0.0.0/8", "240.0.0.0/4 is reserved for future use"},
	    {"255.255.255.0/24", "240.0.0.0/4 is reserved for future use"},
	    {"255.255.255.255", "255.255.255.255/32 is the limited broadcast address"},
	    {"255.255.255.255/32", "the limited broadcast address"},
	};
	(void)state;
	bad_table(IP, false, cases, N(cases));
	/* an exact match says so without repeating the block */
	expect_bad(IP, false, "10.0.0.0/8",
	           "10.0.0.0/8 is private address space; only globally reachable");
	expect_bad(IP, false, "10.1.2.3", "10.1.2.3 is not globally reachable: 10.0.0.0/8");
}

static void ip_rejects_ipv4_blocks_overlapping_reserved_space(void **state)
{
	static const struct bad_case cases[] = {
	    {"0.0.0.0/0", "0.0.0.0/0 overlaps address space that is not globally reachable: "
	                  "0.0.0.0/8"},
	    {"0.0.0.0/4", "0.0.0.0/8 is \"this network\""},
	    {"8.0.0.0/6", "8.0.0.0/6 overlaps address space that is not globally reachable: "
	                  "10.0.0.0/8 is private address space"},
	    {"100.0.0.0/8", "100.64.0.0/10 is shared address space"},
	    {"172.0.0.0/8", "172.16.0.0/12 is private address space"},
	    {"192.0.0.0/16", "192.0.0.0/24 is reserved for IETF protocol assignments"},
	    {"192.88.0.0/16", "192.88.99.0/24"},
	    {"198.0.0.0/8", "198.18.0.0/15"},
	    {"198.51.0.0/16", "198.51.100.0/24"},
	    {"203.0.0.0/16", "203.0.113.0/24"},
	    {"128.0.0.0/1", "169.254.0.0/16"},
	    {"224.0.0.0/3", "224.0.0.0/4 is multicast"},
	    {"192.168.0.0/15", "192.168.0.0/16 is private"},
	};
	(void)state;
	bad_table(IP, false, cases, N(cases));
}

static void ip_accepts_ipv4_next_to_reserved_space(void **state)
{
	static const char *cases[] = {
	    "1.0.0.0/8",       "9.255.255.255",   "11.0.0.0/8",      "100.63.255.255",
	    "100.128.0.0/9",   "126.255.255.255", "128.0.0.0/3",     "169.253.255.255",
	    "169.255.0.0/16",  "172.15.255.255",  "172.32.0.0/11",   "192.0.1.0/24",
	    "192.0.3.0/24",    "192.88.98.0/24",  "192.88.100.0/24", "192.167.255.255",
	    "192.169.0.0/16",  "198.17.255.255",  "198.20.0.0/14",   "198.51.99.0/24",
	    "198.51.101.0/24", "203.0.112.0/24",  "203.0.114.0/24",  "223.255.255.255",
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		expect_ok(IP, false, cases[i], cases[i]);
}

static void ip_rejects_every_reserved_ipv6_range(void **state)
{
	static const struct bad_case cases[] = {
	    {"::", "::/128 is the unspecified address"},
	    {"::/128", "::/128 is the unspecified address"},
	    {"::1", "::1/128 is the loopback address"},
	    {"::8.8.8.8", "::/96 is deprecated IPv4-compatible address space"},
	    {"64:ff9b::/96", "64:ff9b::/96 is the IPv4/IPv6 translation prefix (NAT64)"},
	    {"64:ff9b::8.8.8.8", "64:ff9b::/96 is the IPv4/IPv6 translation prefix"},
	    {"64:ff9b:1::1", "64:ff9b:1::/48 is the local-use IPv4/IPv6 translation prefix"},
	    {"100::1", "100::/64 is the discard-only prefix"},
	    {"fc00::/7", "fc00::/7 is unique-local address space"},
	    {"fd12:3456::1", "fc00::/7 is unique-local address space"},
	    {"fe80::/10", "fe80::/10 is link-local address space"},
	    {"fe80::1", "fe80::/10 is link-local address space"},
	    {"fec0::1", "fec0::/10 is deprecated site-local address space"},
	    {"ff02::1", "ff00::/8 is multicast address space"},
	    {"ff00::/8", "ff00::/8 is multicast address space"},
	    {"2001::/23", "2001::/23 is reserved for IETF protocol assignments"},
	    {"2001:100::1", "2001::/23 is reserved for IETF protocol assignments"},
	    {"2001::/32", "2001::/32 is the Teredo prefix"},
	    {"2001:0:4136:e378::1", "2001::/32 is the Teredo prefix"},
	    {"2001:2::1", "2001:2::/48 is reserved for benchmarking"},
	    {"2001:db8::/32", "2001:db8::/32 is reserved for documentation"},
	    {"2001:db8::1", "2001:db8::/32 is reserved for documentation"},
	    {"2002::/16", "2002::/16 is the 6to4 prefix"},
	    {"2002:c000:204::1", "2002::/16 is the 6to4 prefix"},
	    {"3fff::/20", "3fff::/20 is reserved for documentation"},
	    {"3fff:fff::1", "3fff::/20 is reserved for documentation"},
	};
	(void)state;
	bad_table(IP, false, cases, N(cases));
}

static void ip_rejects_ipv6_outside_2000_3(void **state)
{
	static const struct bad_case cases[] = {
	    {"1fff::1", "::/3 is outside the global unicast space 2000::/3"},
	    {"4000::1", "4000::/2 is outside the global unicast space 2000::/3"},
	    {"5f00::/16", "4000::/2 is outside"},
	    {"8000::1", "8000::/1 is outside the global unicast space 2000::/3"},
	    {"e000::/4", "8000::/1 is outside"},
	    {"::/0", "::/0 overlaps address space that is not globally reachable: ::/3"},
	    {"::/3", "::/3 is outside the global unicast space"},
	};
	(void)state;
	bad_table(IP, false, cases, N(cases));
}

static void ip_rejects_ipv6_blocks_overlapping_reserved_space(void **state)
{
	static const struct bad_case cases[] = {
	    {"2000::/3", "2000::/3 overlaps address space that is not globally reachable: "
	                 "2001::/23 is reserved for IETF protocol assignments"},
	    {"2000::/4", "2001::/23"},
	    {"2001::/16", "2001::/23"},
	    {"2001:db8::/31", "2001:db8::/32 is reserved for documentation"},
	    {"2002::/15", "2002::/16 is the 6to4 prefix"},
	    {"3000::/4", "3fff::/20 is reserved for documentation"},
	    {"3ff0::/12", "3fff::/20"},
	};
	(void)state;
	bad_table(IP, false, cases, N(cases));
}

static void ip_accepts_global_ipv6(void **state)
{
	static const char *cases[] = {
	    "2606:4700::/32", "2001:200::1", "2001:db9::/32", "2001:db7:ffff::1",     "2003::/16",
	    "3fff:1000::1",   "3ffe::/16",   "2400::/6",      "2a00:1450:4001::200e",
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		expect_ok(IP, false, cases[i], cases[i]);
}

/* ---- regex ----------------------------------------------------------- */

static void regex_is_stored_unchanged(void **state)
{
	static const struct ok_case cases[] = {
	    {".*@example\\.com$", ".*@example\\.com$"},
	    {"^User[0-9]+@Example\\.(com|net)$", "^User[0-9]+@Example\\.(com|net)$"},
	    {"[^@]+@example\\.com", "[^@]+@example\\.com"},
	    {"\xc3\xa9+@b\xc3\xbc"
	     "cher\\.example",
	     "\xc3\xa9+@b\xc3\xbc"
	     "cher\\.example"},
	    {"10\\.0\\.0\\.\\d+", "10\\.0\\.0\\.\\d+"},
	};
	(void)state;
	for (size_t t = 0; t < N(all_types); t++)
		ok_table(all_types[t], true, cases, N(cases));
}

static void regex_accepts_java_syntax(void **state)
{
	static const struct ok_case cases[] = {
	    {"\\u0041", "\\u0041"},
	    {"user\\u0040example\\.com", "user\\u0040example\\.com"},
	    {"\\x41", "\\x41"},
	    {"(?<name>a)\\k<name>", "(?<name>a)\\k<name>"},
	    {"\\p{L}+@\\p{Alpha}+\\.com", "\\p{L}+@\\p{Alpha}+\\.com"},
	    {"\\Qa.b\\E@x", "\\Qa.b\\E@x"},
	    {"(?i)ABC", "(?i)ABC"},
	    {"a++b*+c?+", "a++b*+c?+"},
	    {"(?=a)(?!b)(?<=c)(?<!d)", "(?=a)(?!b)(?<=c)(?<!d)"},
	};
	(void)state;
	ok_table(EMAIL, true, cases, N(cases));
}

static void regex_reports_syntax_errors_with_offset(void **state)
{
	static const struct bad_case cases[] = {
	    {"(abc", "invalid regular expression at offset 4: missing closing parenthesis"},
	    {"a)", "invalid regular expression at offset 1: unmatched closing parenthesis"},
	    {"[a", "at offset 2: missing terminating ] for character class"},
	    {"*a", "at offset 0: quantifier does not follow a repeatable item"},
	    {"a{2,1}", "at offset 5: numbers out of order in {} quantifier"},
	    {"\\k<n>", "reference to non-existent subpattern"},
	    {"(?<n>a", "missing closing parenthesis"},
	    /* offsets count characters, not bytes */
	    {"\xc3\xa9\xc3\xa9(", "invalid regular expression at offset 3: missing closing"},
	};
	(void)state;
	for (size_t t = 0; t < N(all_types); t++)
		bad_table(all_types[t], true, cases, N(cases));
}

static void regex_flag_skips_the_type_rules(void **state)
{
	(void)state;
	expect_ok(IP, true, "10.0.0.1", "10.0.0.1");
	expect_ok(DOMAIN, true, "localhost", "localhost");
	expect_ok(EMAIL, true, "no-at-sign", "no-at-sign");
}

/* Regexes whose backtracking explodes on long subjects are refused at write time. */
static void regex_with_unbounded_cost_is_rejected(void **state)
{
	static const char *const costly[] = {"(a+)+$", "(x+x+)+y", "(a*)*b", "(\\w+\\s?)*$",
					     "(.*a){12}"};
	static const char *const fine[] = {".*@example\\.com", "(.+\\.)?example\\.com",
					   "[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}",
					   "192\\.0\\.2\\.[0-9]+", "^user[0-9]*@corp\\.example$",
					   /* quadratic: bounded by the match limit at run time */
					   ".*.*=.*", "(.*)@(.*)\\.(.*)"};
	char *out = NULL;
	(void)state;
	for (size_t i = 0; i < sizeof(costly) / sizeof(costly[0]); i++) {
		assert_int_equal(allowd_pattern_regex(&out, costly[i]), ALLOWD_EINVALID);
		assert_null(out);
		assert_non_null(strstr(allowd_error_last()->message, "too costly"));
		assert_string_equal(allowd_error_last()->pointer, "/pattern");
	}
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		assert_int_equal(allowd_pattern_regex(&out, fine[i]), 0);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(utf8_length_counts_scalar_values),
	    cmocka_unit_test(utf8_length_rejects_malformed_input),
	    cmocka_unit_test(pattern_rejects_invalid_utf8_for_every_type),
	    cmocka_unit_test(pattern_rejects_null_and_empty),
	    cmocka_unit_test(pattern_accepts_1024_characters),
	    cmocka_unit_test(pattern_rejects_1025_characters),
	    cmocka_unit_test(pattern_rejects_control_characters),
	    cmocka_unit_test(pattern_rejects_leading_and_trailing_whitespace),
	    cmocka_unit_test(regex_allows_inner_spaces),
	    cmocka_unit_test(normalize_rejects_unknown_pattern_type),
	    cmocka_unit_test(normalize_checks_the_pattern_before_the_type),
	    cmocka_unit_test(domain_normalises_to_lower_case_a_labels),
	    cmocka_unit_test(domain_drops_one_trailing_dot),
	    cmocka_unit_test(domain_rejects_empty_labels),
	    cmocka_unit_test(domain_label_of_63_octets_is_accepted),
	    cmocka_unit_test(domain_label_of_64_octets_is_rejected),
	    cmocka_unit_test(domain_of_253_octets_is_accepted),
	    cmocka_unit_test(domain_of_254_octets_is_rejected),
	    cmocka_unit_test(domain_requires_two_labels),
	    cmocka_unit_test(domain_rejects_all_numeric_tld),
	    cmocka_unit_test(domain_rejects_ip_literals),
	    cmocka_unit_test(domain_rejects_non_ldh_characters),
	    cmocka_unit_test(domain_reports_libidn2_errors),
	    cmocka_unit_test(email_normalises_case_and_domain),
	    cmocka_unit_test(email_accepts_utf8_local_parts),
	    cmocka_unit_test(email_accepts_quoted_local_parts),
	    cmocka_unit_test(email_splits_at_the_last_at_sign),
	    cmocka_unit_test(email_rejects_missing_parts),
	    cmocka_unit_test(email_local_part_of_64_octets_is_accepted),
	    cmocka_unit_test(email_local_part_of_65_octets_is_rejected),
	    cmocka_unit_test(email_rejects_misplaced_dots),
	    cmocka_unit_test(email_rejects_specials_in_unquoted_local_parts),
	    cmocka_unit_test(email_rejects_malformed_quoted_local_parts),
	    cmocka_unit_test(email_domain_follows_domain_rules),
	    cmocka_unit_test(email_of_254_octets_is_accepted),
	    cmocka_unit_test(email_of_255_octets_is_rejected),
	    cmocka_unit_test(ip_normalises_to_canonical_text),
	    cmocka_unit_test(ip_drops_a_full_length_prefix),
	    cmocka_unit_test(ip_turns_ipv4_mapped_ipv6_into_ipv4),
	    cmocka_unit_test(ip_rejects_host_bits_and_suggests_the_network),
	    cmocka_unit_test(ip_rejects_malformed_prefixes),
	    cmocka_unit_test(ip_rejects_malformed_addresses),
	    cmocka_unit_test(ip_rejects_every_reserved_ipv4_range),
	    cmocka_unit_test(ip_rejects_ipv4_blocks_overlapping_reserved_space),
	    cmocka_unit_test(ip_accepts_ipv4_next_to_reserved_space),
	    cmocka_unit_test(ip_rejects_every_reserved_ipv6_range),
	    cmocka_unit_test(ip_rejects_ipv6_outside_2000_3),
	    cmocka_unit_test(ip_rejects_ipv6_blocks_overlapping_reserved_space),
	    cmocka_unit_test(ip_accepts_global_ipv6),
	    cmocka_unit_test(regex_is_stored_unchanged),
	    cmocka_unit_test(regex_accepts_java_syntax),
	    cmocka_unit_test(regex_reports_syntax_errors_with_offset),
	    cmocka_unit_test(regex_flag_skips_the_type_rules),
	    cmocka_unit_test(regex_with_unbounded_cost_is_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_authres.c - Authentication-Results header values through
 * allowd_authres_parse (src/engine/authres.c).
 *
 * Input: byte 0 picks the trusted authserv-ids (bits 0-1: none;
 * "mx.example.com"; the header's own first word, so that the fuzzer's
 * ids are trusted; "" and "mx.example.com") and the facts merged into
 * (bit 2: empty, or already holding spf pass, dkim results and a dmarc
 * fail); the rest, NUL-terminated, is the header value.
 *
 * Invariants:
 *  - the result is 0 or ALLOWD_EINVALID (with a message), and an invalid
 *    header leaves the facts byte for byte as they were;
 *  - with no trusted id nothing changes;
 *  - every domain is NUL-terminated within its array, at most 253 octets,
 *    lower case, made of letters, digits, '-', '_', non-ASCII bytes and
 *    single inner dots; every result is a known allowd_auth_result;
 *  - n_dkim <= ALLOWD_DKIM_MAX, results held before are kept in place
 *    (dkim is append-only; spf and dmarc change only from none or to pass,
 *    so a pass is never lost);
 *  - merging is idempotent: parsing the same header again changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allowd/engine.h"
#include "allowd/error.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void check_check(const allowd_auth_check *c, const char *what, size_t i)
{
	const char *d = c->domain;
	const char *nul = memchr(d, '\0', sizeof(c->domain));
	size_t n;

	FUZZ_CHECK((unsigned)c->result <= ALLOWD_AUTH_POLICY, "%s[%zu]: result %d", what, i,
		   (int)c->result);
	FUZZ_CHECK(nul != NULL, "%s[%zu]: domain not NUL-terminated", what, i);
	n = (size_t)(nul - d);
	FUZZ_CHECK(n <= 253, "%s[%zu]: domain of %zu octets", what, i, n);
	if (n == 0)
		return;
	FUZZ_CHECK(d[0] != '.' && d[n - 1] != '.', "%s[%zu]: domain '%s' has an edge dot", what, i,
		   d);
	for (size_t k = 0; k < n; k++) {
		unsigned char b = (unsigned char)d[k];
		FUZZ_CHECK(!(b >= 'A' && b <= 'Z'), "%s[%zu]: upper case in '%s'", what, i, d);
		FUZZ_CHECK((b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '-' || b == '_' ||
				   b >= 0x80 || (b == '.' && d[k + 1] != '.'),
			   "%s[%zu]: byte 0x%02x in domain '%s'", what, i, b, d);
	}
}

static void check_facts(const allowd_auth_facts *f)
{
	FUZZ_CHECK(f->n_dkim <= ALLOWD_DKIM_MAX, "n_dkim %zu", f->n_dkim);
	check_check(&f->spf, "spf", 0);
	check_check(&f->dmarc, "dmarc", 0);
	for (size_t i = 0; i < f->n_dkim; i++)
		check_check(&f->dkim[i], "dkim", i);
}

/* Field-wise: struct assignment need not copy padding. */
static bool check_equal(const allowd_auth_check *a, const allowd_auth_check *b)
{
	return a->result == b->result && strcmp(a->domain, b->domain) == 0;
}

static bool facts_equal(const allowd_auth_facts *a, const allowd_auth_facts *b)
{
	if (!check_equal(&a->spf, &b->spf) || !check_equal(&a->dmarc, &b->dmarc) ||
	    a->n_dkim != b->n_dkim)
		return false;
	for (size_t i = 0; i < a->n_dkim && i < ALLOWD_DKIM_MAX; i++)
		if (!check_equal(&a->dkim[i], &b->dkim[i]))
			return false;
	return true;
}

static void check_single_merge(const allowd_auth_check *before, const allowd_auth_check *after,
			       const char *what)
{
	if (before->result == ALLOWD_AUTH_NONE || after->result == ALLOWD_AUTH_PASS)
		return;
	FUZZ_CHECK(check_equal(before, after),
		   "%s changed from %s '%s' to %s '%s'", what,
		   allowd_auth_result_name(before->result), before->domain,
		   allowd_auth_result_name(after->result), after->domain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *trusted[2] = {NULL, NULL};
	size_t n_trusted = 0;
	allowd_auth_facts facts, before, again;
	char *value, first[128];
	int rc;

	if (size < 1 || size > 70000)
		return 0;
	value = fuzz_strndup(data + 1, size - 1);

	switch (data[0] & 3u) {
	case 0:
		break;
	case 1:
		trusted[n_trusted++] = "mx.example.com";
		break;
	case 2: {
		/* the first word, as the parser reads an unquoted authserv-id */
		size_t k = 0;
		const char *v = value;
		while (*v == ' ' || *v == '\t')
			v++;
		while (k + 1 < sizeof(first) && v[k] && v[k] != ' ' && v[k] != ';' && v[k] != '(' &&
		       v[k] != '\t' && v[k] != '\r' && v[k] != '\n')
			k++;
		memcpy(first, v, k);
		first[k] = '\0';
		trusted[n_trusted++] = first;
		break;
	}
	default:
		trusted[n_trusted++] = "";
		trusted[n_trusted++] = "mx.example.com";
		break;
	}

	/* fill every byte, padding included, so that memcmp compares the state */
	memset(&facts, 0, sizeof(facts));
	if (data[0] & 4u) {
		facts.spf.result = ALLOWD_AUTH_PASS;
		snprintf(facts.spf.domain, sizeof(facts.spf.domain), "a.example");
		facts.dkim[0].result = ALLOWD_AUTH_FAIL;
		snprintf(facts.dkim[0].domain, sizeof(facts.dkim[0].domain), "b.example");
		facts.dkim[1].result = ALLOWD_AUTH_PASS;
		facts.n_dkim = 2;
		facts.dmarc.result = ALLOWD_AUTH_FAIL;
		snprintf(facts.dmarc.domain, sizeof(facts.dmarc.domain), "c.example");
	}
	memcpy(&before, &facts, sizeof(facts));

	allowd_error_clear();
	rc = allowd_authres_parse(&facts, value, trusted, n_trusted);
	FUZZ_CHECK(rc == 0 || rc == ALLOWD_EINVALID, "returned %d", rc);
	if (rc != 0) {
		FUZZ_CHECK(allowd_error_last()->message[0] != '\0', "EINVALID without a message");
		FUZZ_CHECK(memcmp(&facts, &before, sizeof(facts)) == 0,
			   "an invalid header changed the facts");
		goto done;
	}
	if (n_trusted == 0)
		FUZZ_CHECK(memcmp(&facts, &before, sizeof(facts)) == 0,
			   "a header changed the facts with no trusted authserv-id");
	check_facts(&facts);

	FUZZ_CHECK(facts.n_dkim >= before.n_dkim, "dkim results lost");
	for (size_t i = 0; i < before.n_dkim; i++)
		FUZZ_CHECK(check_equal(&facts.dkim[i], &before.dkim[i]),
			   "dkim[%zu] held before was changed", i);
	check_single_merge(&before.spf, &facts.spf, "spf");
	check_single_merge(&before.dmarc, &facts.dmarc, "dmarc");

	again = facts;
	rc = allowd_authres_parse(&again, value, trusted, n_trusted);
	FUZZ_CHECK(rc == 0, "the header parsed once and failed the second time (%d)", rc);
	FUZZ_CHECK(facts_equal(&again, &facts),
		   "merging the same header twice is not idempotent (spf %s '%s' -> %s '%s', "
		   "dmarc %s -> %s, dkim %zu -> %zu)",
		   allowd_auth_result_name(facts.spf.result), facts.spf.domain,
		   allowd_auth_result_name(again.spf.result), again.spf.domain,
		   allowd_auth_result_name(facts.dmarc.result),
		   allowd_auth_result_name(again.dmarc.result), facts.n_dkim, again.n_dkim);
done:
	free(value);
	return 0;
}

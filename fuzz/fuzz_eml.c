/*
 * fuzz_eml.c - the .eml reader of `allowctl eval --eml` (src/cli/eml.c:
 * GMime for the header fields and address lists, cli_received_parse for
 * the topmost Received header), then the facts it yields through the
 * Authentication-Results parser and the engine, as allowctl does.
 *
 * Input: a message file (only its header section matters).  The same bytes
 * also go to cli_received_parse directly as one Received value.
 *
 * Invariants:
 *  - cli_eml_read returns 0, or ALLOWD_ERR with a message and the facts
 *    all cleared;
 *  - the facts respect their bounds: at most EML_LIST_MAX reply-to
 *    addresses, recipients and A-R headers; addresses at most
 *    EML_VALUE_MAX bytes; reply-to addresses and recipients free of
 *    case-insensitive duplicates; recipients_from set exactly when there
 *    are recipients; client_ip an address allowd_ip_parse accepts;
 *  - cli_received_parse: -1 with both outputs "" unless the value starts
 *    with "from"; ip "" or an address found verbatim in the first 4096
 *    bytes; helo "" or a name found verbatim there, never a literal; both
 *    NUL-terminated within their arrays;
 *  - every A-R value parses to 0 or ALLOWD_EINVALID, and the facts then
 *    decide identically in the engine and the reference evaluator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "allowd/engine.h"
#include "allowd/error.h"
#include "allowd/netaddr.h"
#include "cli/cli_int.h"
#include "fuzz_common.h"

static char path[600];
static FILE *devnull;
static allowd_policy *policies[6];
static size_t n_policies;
static allowd_snapshot *snap;

static const struct spec {
	const char *pattern;
	allowd_pattern_type type;
	bool regex, trusted, acceptable, exempt, verify;
} specs[] = {
	{"alice@example.com", ALLOWD_PATTERN_EMAIL, false, true, false, false, true},
	{"example.org", ALLOWD_PATTERN_DOMAIN, false, false, true, false, false},
	{"209.85.220.0/24", ALLOWD_PATTERN_IP, false, true, false, false, false},
	{"8.8.8.0/24", ALLOWD_PATTERN_IP, false, true, false, false, false},
	{"(.+\\.)?example\\.net", ALLOWD_PATTERN_DOMAIN, true, true, false, true, false},
	{".*@corp\\.example", ALLOWD_PATTERN_EMAIL, true, false, false, true, true},
};

static void free_all(void)
{
	allowd_snapshot_unref(snap);
	for (size_t i = 0; i < n_policies; i++)
		allowd_policy_free(policies[i]);
	if (devnull)
		fclose(devnull);
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_path(path, sizeof(path), "input.eml");
	if (!(devnull = fopen("/dev/null", "w")))
		abort();
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		allowd_policy *p;
		if (allowd_policy_new(&p) != 0)
			abort();
		p->id = (int64_t)i + 1;
		p->pattern_type = specs[i].type;
		p->is_regex = specs[i].regex;
		p->is_trusted_sender = specs[i].trusted;
		p->is_acceptable_sender = specs[i].acceptable;
		p->is_exempt_recipient = specs[i].exempt;
		p->verify_sender = specs[i].verify;
		if (allowd_policy_set_string(&p->pattern, specs[i].pattern) ||
		    allowd_policy_validate(p) != 0)
			abort();
		policies[n_policies++] = p;
	}
	if (allowd_snapshot_build(&snap, policies, n_policies, NULL) != 0)
		abort();
	atexit(free_all);
	return 0;
}

static bool found_in(const uint8_t *data, size_t size, const char *s)
{
	size_t n = strlen(s);
	if (size > 4096)
		size = 4096;
	return n <= size && memmem(data, size, s, n) != NULL;
}

static void check_received(const uint8_t *data, size_t size)
{
	char ip[64], helo[256];
	size_t i = 0;
	int rc;
	uint8_t addr[16];

	memset(ip, 'x', sizeof(ip));
	memset(helo, 'x', sizeof(helo));
	rc = cli_received_parse(ip, helo, (const char *)data, size);
	FUZZ_CHECK(memchr(ip, '\0', sizeof(ip)) && memchr(helo, '\0', sizeof(helo)),
		   "an output is not NUL-terminated");
	while (i < size && i < 4096 && strchr(" \t\r\n", data[i]) && data[i])
		i++;
	if (!(size - i >= 4 && strncasecmp((const char *)data + i, "from", 4) == 0)) {
		FUZZ_CHECK(rc == -1 && !ip[0] && !helo[0],
			   "a value not starting with 'from' gave rc %d ip '%s' helo '%s'", rc, ip,
			   helo);
		return;
	}
	if (rc != 0) {
		FUZZ_CHECK(rc == -1 && !ip[0] && !helo[0], "rc %d with outputs", rc);
		return;
	}
	if (ip[0]) {
		FUZZ_CHECK(allowd_ip_parse(addr, ip) == 0, "ip '%s' does not parse", ip);
		FUZZ_CHECK(found_in(data, size, ip), "ip '%s' is not in the value", ip);
	}
	if (helo[0]) {
		FUZZ_CHECK(helo[0] != '[', "helo '%s' is a literal", helo);
		FUZZ_CHECK(found_in(data, size, helo), "helo '%s' is not in the value", helo);
	}
}

static void check_list(char *const *v, size_t n, const char *what)
{
	FUZZ_CHECK(n <= EML_LIST_MAX, "%zu %s", n, what);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(v[i] && v[i][0] && strlen(v[i]) <= EML_VALUE_MAX, "%s %zu: '%s'", what,
			   i, v[i] ? v[i] : "(null)");
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(strcasecmp(v[k], v[i]) != 0, "%s %zu and %zu are duplicates ('%s')",
				   what, k, i, v[i]);
	}
}

static bool same_decision(const allowd_decision *a, const allowd_decision *b)
{
	if (a->n_recipients != b->n_recipients || a->n_matches != b->n_matches)
		return false;
	for (size_t i = 0; i < a->n_recipients; i++)
		if (a->recipients[i].waived != b->recipients[i].waived ||
		    a->recipients[i].remaining != b->recipients[i].remaining ||
		    a->recipients[i].skip_link_following != b->recipients[i].skip_link_following)
			return false;
	for (size_t i = 0; i < a->n_matches; i++)
		if (a->matches[i].policy_id != b->matches[i].policy_id ||
		    a->matches[i].field != b->matches[i].field ||
		    a->matches[i].index != b->matches[i].index ||
		    a->matches[i].honored != b->matches[i].honored ||
		    strcmp(a->matches[i].value, b->matches[i].value) != 0)
			return false;
	return true;
}

static void evaluate(const eml_facts *f)
{
	static const char *const trusted[] = {"mx.example.com", "mx.google.com", ""};
	allowd_message m;
	allowd_decision eng, ref;
	const char *reply[EML_LIST_MAX], *rcpt[EML_LIST_MAX];

	memset(&m, 0, sizeof(m));
	m.envelope_from = f->envelope_from;
	m.header_from = f->header_from;
	for (size_t i = 0; i < f->n_reply_to; i++)
		reply[i] = f->reply_to[i];
	for (size_t i = 0; i < f->n_recipients; i++)
		rcpt[i] = f->recipients[i];
	m.reply_to = reply;
	m.n_reply_to = f->n_reply_to;
	m.recipients = rcpt;
	m.n_recipients = f->n_recipients;
	m.client_ip = f->client_ip;
	m.server_name = f->server_name;
	for (size_t i = 0; i < f->n_authres; i++) {
		int rc = allowd_authres_parse(&m.auth, f->authres[i], trusted, 3);
		FUZZ_CHECK(rc == 0 || rc == ALLOWD_EINVALID, "authres_parse returned %d", rc);
	}
	FUZZ_CHECK(allowd_evaluate(snap, &m, &eng) == 0, "evaluate failed");
	FUZZ_CHECK(allowd_evaluate_reference(policies, n_policies, NULL, &m, &ref) == 0,
		   "reference failed");
	FUZZ_CHECK(same_decision(&eng, &ref), "the engine and the reference disagree on the "
					      "facts of this message");
	allowd_decision_clear(&eng);
	allowd_decision_clear(&ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	eml_facts f;
	FILE *out;
	int rc;

	if (size > 1024 * 1024)
		return 0;
	check_received(data, size);

	if (!(out = fopen(path, "wb")) || (size && fwrite(data, 1, size, out) != size) ||
	    fclose(out) != 0)
		abort();
	allowd_error_clear();
	rc = cli_eml_read(&f, path, devnull);
	if (rc != 0) {
		eml_facts zero;
		memset(&zero, 0, sizeof(zero));
		FUZZ_CHECK(rc == ALLOWD_ERR, "cli_eml_read returned %d", rc);
		FUZZ_CHECK(allowd_error_last()->message[0] != '\0', "no message");
		FUZZ_CHECK(memcmp(&f, &zero, sizeof(f)) == 0, "facts left on failure");
		return 0;
	}
	check_list(f.reply_to, f.n_reply_to, "reply-to");
	check_list(f.recipients, f.n_recipients, "recipients");
	FUZZ_CHECK(f.n_authres <= EML_LIST_MAX, "%zu A-R headers", f.n_authres);
	FUZZ_CHECK((f.recipients_from != NULL) == (f.n_recipients > 0),
		   "recipients_from '%s' with %zu recipients",
		   f.recipients_from ? f.recipients_from : "(null)", f.n_recipients);
	FUZZ_CHECK(!f.header_from || (f.header_from[0] && strlen(f.header_from) <= EML_VALUE_MAX),
		   "header_from '%s'", f.header_from);
	FUZZ_CHECK(!f.envelope_from || strlen(f.envelope_from) <= EML_VALUE_MAX,
		   "envelope_from of %zu bytes", strlen(f.envelope_from));
	if (f.client_ip) {
		uint8_t addr[16];
		FUZZ_CHECK(allowd_ip_parse(addr, f.client_ip) == 0, "client_ip '%s'", f.client_ip);
	}
	FUZZ_CHECK(!f.server_name || (f.server_name[0] && strlen(f.server_name) < 256),
		   "server_name '%s'", f.server_name);
	evaluate(&f);
	cli_eml_clear(&f);
	return 0;
}

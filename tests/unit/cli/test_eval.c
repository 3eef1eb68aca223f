/*
 * test_eval.c - `allowctl eval` in-process: facts from flags and from .eml
 * fixtures (tests/unit/cli/eml/), the decision as a report and as the API's
 * JSON, the Received tokenizer, and the exit codes scripts rely on.
 * Policies are written straight through the store API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "allowd/cli.h"
#include "allowd/engine.h"
#include "allowd/netaddr.h"
#include "allowd/store.h"
#include "api/api.h"
#include "cli/cli_int.h"

#define ACCOUNT "0123456789abcdef0123456789abcdef"
#define OTHER_ACCOUNT "fedcba9876543210fedcba9876543210"

static char dir[64], db_path[128], fixtures[512];
static char out_buf[1 << 20], err_buf[1 << 16];

/* Policy ids, as the store assigned them. */
static int64_t P_TRUSTED, P_ACCEPT, P_EXEMPT, P_BANK, P_GOOGLE_IP, P_V6, P_SERVER, P_REPLY,
	P_JUERGEN, P_NEWS, P_MXORG;

/* ---- harness -------------------------------------------------------- */

/* Runs allowctl --data-dir DIR [--json] ARGS...; captures stdout and stderr. */
static int run(int json, const char *first, va_list ap)
{
	char *argv[96];
	int argc = 0, rc;
	const char *a;
	FILE *out = tmpfile(), *err = tmpfile();
	size_t n;

	assert_non_null(out);
	assert_non_null(err);
	argv[argc++] = "allowctl";
	argv[argc++] = "--data-dir";
	argv[argc++] = dir;
	if (json)
		argv[argc++] = "--json";
	for (a = first; a; a = va_arg(ap, const char *)) {
		assert_true(argc < 95);
		argv[argc++] = (char *)(uintptr_t)a;
	}
	argv[argc] = NULL;
	rc = allowd_cli_main(argc, argv, out, err);
	rewind(out);
	rewind(err);
	n = fread(out_buf, 1, sizeof(out_buf) - 1, out);
	out_buf[n] = '\0';
	n = fread(err_buf, 1, sizeof(err_buf) - 1, err);
	err_buf[n] = '\0';
	fclose(out);
	fclose(err);
	return rc;
}

static int ctl(const char *first, ...)
{
	va_list ap;
	int rc;
	va_start(ap, first);
	rc = run(1, first, ap);
	va_end(ap);
	return rc;
}

static int ctl_text(const char *first, ...)
{
	va_list ap;
	int rc;
	va_start(ap, first);
	rc = run(0, first, ap);
	va_end(ap);
	return rc;
}

static const char *fixture(const char *name)
{
	static char path[640];
	snprintf(path, sizeof(path), "%s%s", fixtures, name);
	return path;
}

static json_t *out_json(void)
{
	json_error_t e;
	json_t *j = json_loads(out_buf, 0, &e);
	if (!j)
		fail_msg("not JSON (%s): %s", e.text, out_buf);
	return j;
}

/* The match for (field, policy) in a decision's JSON, or NULL. */
static json_t *find_match(json_t *j, const char *field, int64_t policy)
{
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(j, "matches"), i, m)
		if (strcmp(json_string_value(json_object_get(m, "field")), field) == 0 &&
		    json_integer_value(json_object_get(m, "policy_id")) == policy)
			return m;
	return NULL;
}

static void assert_match(json_t *j, const char *field, int64_t policy, const char *value,
			 int honored, const char *verification)
{
	json_t *m = find_match(j, field, policy);
	if (!m)
		fail_msg("no %s match for policy %lld in %s", field, (long long)policy, out_buf);
	assert_string_equal(json_string_value(json_object_get(m, "value")), value);
	assert_int_equal(json_is_true(json_object_get(m, "honored")), honored);
	assert_string_equal(json_string_value(json_object_get(m, "verification")), verification);
}

static size_t count_field(json_t *j, const char *field)
{
	size_t i, n = 0;
	json_t *m;
	json_array_foreach(json_object_get(j, "matches"), i, m)
		n += strcmp(json_string_value(json_object_get(m, "field")), field) == 0;
	return n;
}

/* Disposition names of recipients[i].key joined with spaces. */
static const char *disps(json_t *j, size_t i, const char *key)
{
	static char buf[256];
	size_t k, o = 0;
	json_t *v;
	buf[0] = '\0';
	json_array_foreach(json_object_get(json_array_get(json_object_get(j, "recipients"), i), key),
			   k, v)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? " " : "",
				      json_string_value(v));
	return buf;
}

static const char *rcpt(json_t *j, size_t i)
{
	return json_string_value(
		json_object_get(json_array_get(json_object_get(j, "recipients"), i), "address"));
}

static int skips_links(json_t *j, size_t i)
{
	return json_is_true(json_object_get(json_array_get(json_object_get(j, "recipients"), i),
					    "skip_link_following"));
}

static int64_t add_policy(allowd_store *s, allowd_pattern_type type, int regex, const char *pattern,
			  int trusted, int acceptable, int exempt, int verify)
{
	allowd_policy *p = NULL;
	int64_t id;
	assert_int_equal(allowd_policy_new(&p), 0);
	p->pattern_type = type;
	p->is_regex = regex;
	p->is_trusted_sender = trusted;
	p->is_acceptable_sender = acceptable;
	p->is_exempt_recipient = exempt;
	p->verify_sender = verify;
	assert_int_equal(allowd_policy_set_string(&p->pattern, pattern), 0);
	if (allowd_store_policy_create(s, ACCOUNT, p))
		fail_msg("policy %s: %s", pattern, allowd_error_last()->message);
	id = p->id;
	allowd_policy_free(p);
	return id;
}

static int group_setup(void **state)
{
	allowd_store_options so = {0};
	allowd_store *s = NULL;
	const char *slash = strrchr(__FILE__, '/');
	(void)state;

	snprintf(fixtures, sizeof(fixtures), "%.*seml/", slash ? (int)(slash - __FILE__ + 1) : 0,
		 __FILE__);
	snprintf(dir, sizeof(dir), "/tmp/allowctl-eval-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(db_path, sizeof(db_path), "%s/allowd.db", dir);
	so.path = db_path;
	assert_int_equal(allowd_store_open(&s, &so), 0);
	assert_int_equal(allowd_store_account_create(s, ACCOUNT, "acme"), 0);
	assert_int_equal(allowd_store_account_create(s, OTHER_ACCOUNT, "empty"), 0);
	P_TRUSTED = add_policy(s, ALLOWD_PATTERN_EMAIL, 0, "ceo@partner.example", 1, 0, 0, 0);
	P_ACCEPT = add_policy(s, ALLOWD_PATTERN_DOMAIN, 0, "newsletter.example", 0, 1, 0, 0);
	P_EXEMPT = add_policy(s, ALLOWD_PATTERN_EMAIL, 0, "abuse@corp.example", 0, 0, 1, 0);
	P_BANK = add_policy(s, ALLOWD_PATTERN_DOMAIN, 0, "bank.example", 1, 0, 0, 1);
	P_GOOGLE_IP = add_policy(s, ALLOWD_PATTERN_IP, 0, "209.85.128.0/17", 0, 1, 0, 0);
	P_V6 = add_policy(s, ALLOWD_PATTERN_IP, 0, "2a01:111:f400::/48", 0, 1, 0, 0);
	P_SERVER = add_policy(s, ALLOWD_PATTERN_DOMAIN, 1, "mail-sor-f[0-9]+\\.google\\.com", 0, 1,
			      0, 0);
	P_REPLY = add_policy(s, ALLOWD_PATTERN_EMAIL, 0, "replies@helpdesk.example", 0, 1, 0, 0);
	P_JUERGEN = add_policy(s, ALLOWD_PATTERN_EMAIL, 0, "juergen@mueller.example", 0, 1, 0, 0);
	P_NEWS = add_policy(s, ALLOWD_PATTERN_EMAIL, 0, "news@newsletter.example", 0, 1, 0, 1);
	P_MXORG = add_policy(s, ALLOWD_PATTERN_DOMAIN, 0, "mx.example.org", 0, 1, 0, 0);
	allowd_store_free(s);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* ---- flags only ----------------------------------------------------- */

static void trusted_sender_waives_every_verdict(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--header-from", "CEO@Partner.Example",
			     "--recipient", "bob@corp.example", NULL),
			 0);
	j = out_json();
	assert_string_equal(rcpt(j, 0), "bob@corp.example");
	assert_string_equal(disps(j, 0, "waived"),
			    "MALICIOUS MALICIOUS-BEC SUSPICIOUS SPOOF SPAM BULK");
	assert_string_equal(disps(j, 0, "remaining"), "");
	assert_true(skips_links(j, 0));
	assert_match(j, "header_from", P_TRUSTED, "CEO@Partner.Example", 1, "not required");
	assert_int_equal(json_array_size(json_object_get(j, "matches")), 1);
	json_decref(j);
}

static void acceptable_sender_waives_spoof_spam_bulk(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--envelope-from",
			     "promo@newsletter.example", "--recipient", "bob@corp.example", NULL),
			 0);
	j = out_json();
	assert_string_equal(disps(j, 0, "waived"), "SPOOF SPAM BULK");
	assert_string_equal(disps(j, 0, "remaining"), "MALICIOUS MALICIOUS-BEC SUSPICIOUS");
	assert_false(skips_links(j, 0));
	assert_match(j, "envelope_from", P_ACCEPT, "newsletter.example", 1, "not required");
	json_decref(j);

	/* with the scanner's dispositions: informational labels pass through */
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--envelope-from",
			     "promo@newsletter.example", "--recipient", "bob@corp.example",
			     "--disposition", "SPAM", "--disposition", "malicious", "--disposition",
			     "EXTERNAL", NULL),
			 0);
	j = out_json();
	assert_string_equal(disps(j, 0, "waived"), "SPAM");
	assert_string_equal(disps(j, 0, "remaining"), "MALICIOUS EXTERNAL");
	json_decref(j);
}

static void exempt_recipient_waives_for_that_recipient_only(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--header-from", "x@unknown.example",
			     "--recipient", "bob@corp.example", "--recipient", "abuse+spam@corp.example",
			     NULL),
			 0);
	j = out_json();
	assert_string_equal(rcpt(j, 0), "bob@corp.example");
	assert_string_equal(disps(j, 0, "waived"), "");
	assert_string_equal(rcpt(j, 1), "abuse+spam@corp.example");
	assert_string_equal(disps(j, 1, "waived"),
			    "MALICIOUS MALICIOUS-BEC SUSPICIOUS SPOOF SPAM BULK");
	assert_false(skips_links(j, 1));
	assert_match(j, "recipient", P_EXEMPT, "abuse+spam@corp.example", 1, "not required");
	json_decref(j);
}

static void verify_sender_needs_spf_pass(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--envelope-from", "alerts@bank.example",
			     "--recipient", "bob@corp.example", "--spf", "pass:bank.example", NULL),
			 0);
	j = out_json();
	assert_match(j, "envelope_from", P_BANK, "bank.example", 1, "spf pass");
	assert_true(skips_links(j, 0));
	json_decref(j);

	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--envelope-from", "alerts@bank.example",
			     "--recipient", "bob@corp.example", "--spf", "none", NULL),
			 0);
	j = out_json();
	assert_match(j, "envelope_from", P_BANK, "bank.example", 0, "sender not authenticated");
	assert_string_equal(disps(j, 0, "waived"), "");
	assert_false(skips_links(j, 0));
	json_decref(j);

	/* a pass for another domain, or for no named domain, does not verify */
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--envelope-from", "alerts@bank.example",
			     "--recipient", "bob@corp.example", "--spf", "PASS", "--dkim",
			     "pass:evil.example", NULL),
			 0);
	j = out_json();
	assert_match(j, "envelope_from", P_BANK, "bank.example", 0, "sender not authenticated");
	json_decref(j);

	/* DMARC aligned with the envelope domain also verifies it */
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--envelope-from",
			     "bounces@mail.bank.example", "--header-from", "alerts@bank.example",
			     "--recipient", "bob@corp.example", "--dmarc", "pass:bank.example", NULL),
			 0);
	j = out_json();
	assert_match(j, "header_from", P_BANK, "bank.example", 1, "dmarc pass");
	json_decref(j);
}

/* --json prints exactly allowd_json_encode_decision's JSON for the same facts. */
static void json_output_is_the_api_encoding(void **state)
{
	const char *recipients[] = {"bob@corp.example", "abuse@corp.example"};
	const char *reply_to[] = {"replies@helpdesk.example"};
	allowd_store_options so = {0};
	allowd_store *s = NULL;
	allowd_policy *pol[32];
	allowd_snapshot *snap = NULL;
	allowd_engine_options eo;
	allowd_message m;
	allowd_decision d;
	json_t *cli_json, *api_json, *expected;
	size_t n = 0;
	allowd_list_query q;
	allowd_policy_list l;
	(void)state;

	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--envelope-from", "<alerts@bank.example>",
			     "--header-from", "news@newsletter.example", "--reply-to",
			     "replies@helpdesk.example", "--recipient", "bob@corp.example",
			     "--recipient", "abuse@corp.example", "--client-ip", "209.85.220.41",
			     "--server-name", "mail-sor-f41.google.com", "--spf", "pass:other.example",
			     "--disposition", "SPOOF", "--disposition", "BULK", "--disposition",
			     "SUSPICIOUS", NULL),
			 0);
	cli_json = out_json();

	memset(&m, 0, sizeof(m));
	m.envelope_from = "alerts@bank.example";
	m.header_from = "news@newsletter.example";
	m.reply_to = reply_to;
	m.n_reply_to = 1;
	m.recipients = recipients;
	m.n_recipients = 2;
	m.client_ip = "209.85.220.41";
	m.server_name = "mail-sor-f41.google.com";
	m.auth.spf.result = ALLOWD_AUTH_PASS;
	snprintf(m.auth.spf.domain, sizeof(m.auth.spf.domain), "other.example");
	m.dispositions = ALLOWD_DISP_SPOOF | ALLOWD_DISP_BULK | ALLOWD_DISP_SUSPICIOUS;
	so.path = db_path;
	assert_int_equal(allowd_store_open(&s, &so), 0);
	allowd_list_query_init(&q);
	q.per_page = 1000;
	assert_int_equal(allowd_store_policy_list(s, &l, ACCOUNT, &q), 0);
	for (size_t i = 0; i < l.count && n < 32; i++)
		pol[n++] = l.items[i];
	allowd_engine_options_init(&eo);
	assert_int_equal(allowd_snapshot_build(&snap, pol, n, &eo), 0);
	assert_int_equal(allowd_evaluate(snap, &m, &d), 0);
	api_json = allowd_json_encode_decision(&d);
	assert_true(json_equal(cli_json, api_json));

	expected = json_pack(
		"{s:[{s:s, s:[s,s], s:[s], s:b}, {s:s, s:[s,s,s], s:[], s:b}], s:["
		"{s:I, s:s, s:s, s:b, s:s}, {s:I, s:s, s:s, s:b, s:s}, {s:I, s:s, s:s, s:b, s:s},"
		"{s:I, s:s, s:s, s:b, s:s}, {s:I, s:s, s:s, s:b, s:s}, {s:I, s:s, s:s, s:b, s:s},"
		"{s:I, s:s, s:s, s:b, s:s}]}",
		"recipients", /* */
		"address", "bob@corp.example", "waived", "SPOOF", "BULK", "remaining", "SUSPICIOUS",
		"skip_link_following", 0, /* */
		"address", "abuse@corp.example", "waived", "SUSPICIOUS", "SPOOF", "BULK",
		"remaining", "skip_link_following", 0, /* */
		"matches", /* */
		"policy_id", (json_int_t)P_BANK, "field", "envelope_from", "value", "bank.example",
		"honored", 0, "verification", "sender not authenticated", /* */
		"policy_id", (json_int_t)P_ACCEPT, "field", "header_from", "value",
		"newsletter.example", "honored", 1, "verification", "not required", /* */
		"policy_id", (json_int_t)P_NEWS, "field", "header_from", "value",
		"news@newsletter.example", "honored", 0, "verification", "sender not authenticated",
		"policy_id", (json_int_t)P_REPLY, "field", "reply_to", "value",
		"replies@helpdesk.example", "honored", 1, "verification", "not required", /* */
		"policy_id", (json_int_t)P_EXEMPT, "field", "recipient", "value",
		"abuse@corp.example", "honored", 1, "verification", "not required", /* */
		"policy_id", (json_int_t)P_GOOGLE_IP, "field", "client_ip", "value",
		"209.85.220.41", "honored", 1, "verification", "not required", /* */
		"policy_id", (json_int_t)P_SERVER, "field", "server_name", "value",
		"mail-sor-f41.google.com", "honored", 1, "verification", "not required");
	assert_non_null(expected);
	if (!json_equal(cli_json, expected)) {
		char *text = json_dumps(expected, JSON_INDENT(2));
		fail_msg("expected %s\ngot %s", text, out_buf);
	}
	json_decref(expected);
	json_decref(api_json);
	json_decref(cli_json);
	allowd_decision_clear(&d);
	allowd_snapshot_unref(snap);
	allowd_policy_list_clear(&l);
	allowd_store_free(s);
}

static void text_report_explains_the_decision(void **state)
{
	char line[128];
	(void)state;
	assert_int_equal(ctl_text("eval", "--account", ACCOUNT, "--envelope-from", "<>",
				  "--header-from", "ceo@partner.example", "--recipient",
				  "bob@corp.example", "--disposition", "SPAM", NULL),
			 0);
	assert_non_null(strstr(out_buf, "account " ACCOUNT ", 11 policies\n"));
	assert_non_null(strstr(out_buf, "envelope_from  <> (bounce)  (--envelope-from)\n"));
	assert_non_null(strstr(out_buf, "  bob@corp.example\n    waived               SPAM\n"));
	assert_non_null(strstr(out_buf, "    remaining            -\n"));
	assert_non_null(strstr(out_buf, "    skip link following  yes\n"));
	snprintf(line, sizeof(line),
		 "  policy %lld  header_from  ceo@partner.example  honored yes  (not required)\n",
		 (long long)P_TRUSTED);
	assert_non_null(strstr(out_buf, line));

	/* nothing matched: said so */
	assert_int_equal(ctl_text("eval", "--account", OTHER_ACCOUNT, "--recipient",
				  "bob@corp.example", NULL),
			 0);
	assert_non_null(strstr(out_buf, "matches: none\n"));
	assert_non_null(strstr(out_buf, "remaining            MALICIOUS MALICIOUS-BEC SUSPICIOUS "
					"SPOOF SPAM BULK\n"));
}

/* Values from a message are printed with control characters escaped. */
static void text_report_escapes_control_characters(void **state)
{
	(void)state;
	assert_int_equal(ctl_text("eval", "--account", ACCOUNT, "--header-from",
				  "evil\x1b[2Jx@example.com", "--recipient", "bob@corp.example\r",
				  NULL),
			 0);
	assert_null(strchr(out_buf, '\x1b'));
	assert_null(strchr(out_buf, '\r'));
	assert_non_null(strstr(out_buf, "evil\\x1b[2Jx@example.com"));
	assert_non_null(strstr(out_buf, "bob@corp.example\\x0d"));
}

/* ---- .eml files ----------------------------------------------------- */

static void eml_gmail_with_trusted_authserv_id(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("gmail.eml"),
			     "--trusted-authserv-id", "mx.google.com", NULL),
			 0);
	j = out_json();
	/* Delivered-To wins over To and Cc */
	assert_int_equal(json_array_size(json_object_get(j, "recipients")), 1);
	assert_string_equal(rcpt(j, 0), "bob@corp.example");
	assert_match(j, "envelope_from", P_BANK, "bank.example", 1, "spf pass");
	assert_match(j, "header_from", P_BANK, "bank.example", 1, "dmarc pass");
	assert_match(j, "client_ip", P_GOOGLE_IP, "209.85.220.41", 1, "not required");
	assert_match(j, "server_name", P_SERVER, "mail-sor-f41.google.com", 1, "not required");
	assert_string_equal(disps(j, 0, "waived"),
			    "MALICIOUS MALICIOUS-BEC SUSPICIOUS SPOOF SPAM BULK");
	assert_true(skips_links(j, 0));
	assert_string_equal(err_buf, "");
	json_decref(j);

	/* the report says where each fact came from */
	assert_int_equal(ctl_text("eval", "--account", ACCOUNT, "--eml", fixture("gmail.eml"),
				  "--trusted-authserv-id", "mx.google.com", NULL),
			 0);
	assert_non_null(strstr(out_buf, "header_from    alerts@bank.example  (From)\n"));
	assert_non_null(strstr(out_buf, "recipients     bob@corp.example  (Delivered-To)\n"));
	assert_non_null(strstr(out_buf, "client_ip      209.85.220.41  (Received)\n"));
	assert_non_null(strstr(out_buf, "spf            pass bank.example\n"));
	assert_non_null(strstr(out_buf, "dkim           pass bank.example\n"));
	assert_non_null(strstr(out_buf, "dmarc          pass bank.example\n"));
}

static void eml_authres_ignored_without_trusted_id(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("gmail.eml"), NULL), 0);
	j = out_json();
	assert_match(j, "envelope_from", P_BANK, "bank.example", 0, "sender not authenticated");
	assert_match(j, "header_from", P_BANK, "bank.example", 0, "sender not authenticated");
	assert_false(skips_links(j, 0));
	assert_non_null(strstr(err_buf, "1 Authentication-Results header from the message ignored: "
					"no --trusted-authserv-id given"));
	json_decref(j);

	/* another authserv-id is no better */
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("gmail.eml"),
			     "--trusted-authserv-id", "mx.corp.example", NULL),
			 0);
	j = out_json();
	assert_match(j, "header_from", P_BANK, "bank.example", 0, "sender not authenticated");
	json_decref(j);
}

static void eml_microsoft_header_without_authserv_id(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("microsoft.eml"), NULL),
			 0);
	j = out_json();
	/* X-Original-To is the recipient; a bare IPv6 in the comment is the client */
	assert_int_equal(json_array_size(json_object_get(j, "recipients")), 1);
	assert_string_equal(rcpt(j, 0), "team@corp.example");
	assert_match(j, "client_ip", P_V6, "2a01:111:f400:fe1e::100", 1, "not required");
	assert_match(j, "header_from", P_NEWS, "news@newsletter.example", 0,
		     "sender not authenticated");
	assert_match(j, "envelope_from", P_ACCEPT, "newsletter.example", 1, "not required");
	json_decref(j);

	/* Microsoft writes no authserv-id: it counts only when "" is trusted */
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("microsoft.eml"),
			     "--trusted-authserv-id", "", NULL),
			 0);
	j = out_json();
	assert_match(j, "header_from", P_NEWS, "news@newsletter.example", 1, "dmarc pass");
	json_decref(j);
}

static void eml_bounce_has_an_empty_envelope_from(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("bounce.eml"), NULL), 0);
	j = out_json();
	assert_int_equal(count_field(j, "envelope_from"), 0);
	assert_match(j, "header_from", P_MXORG, "mx.example.org", 1, "not required");
	assert_string_equal(disps(j, 0, "waived"), "SPOOF SPAM BULK");
	json_decref(j);
	assert_int_equal(ctl_text("eval", "--account", ACCOUNT, "--eml", fixture("bounce.eml"), NULL),
			 0);
	assert_non_null(strstr(out_buf, "envelope_from  <> (bounce)  (Return-Path)\n"));
	assert_non_null(strstr(out_buf, "server_name    mx.example.org  (Received)\n"));
}

static void eml_ipv6_received_literal(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("ipv6.eml"), NULL), 0);
	j = out_json();
	/* the topmost Received counts, not the one below it */
	assert_match(j, "client_ip", P_V6, "2a01:111:f400:7e1b::201", 1, "not required");
	assert_int_equal(count_field(j, "client_ip"), 1);
	json_decref(j);
	assert_int_equal(ctl_text("eval", "--account", ACCOUNT, "--eml", fixture("ipv6.eml"), NULL),
			 0);
	assert_non_null(strstr(out_buf, "client_ip      2a01:111:f400:7e1b::201  (Received)\n"));
	assert_non_null(strstr(out_buf, "server_name    mail.v6.example  (Received)\n"));
}

static void eml_display_names_encoded_words_and_folding(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("display.eml"), NULL),
			 0);
	j = out_json();
	/* From: an encoded-word display name, folded; the address as written */
	assert_match(j, "header_from", P_JUERGEN, "Juergen@Mueller.Example", 1, "not required");
	assert_match(j, "envelope_from", P_JUERGEN, "juergen@mueller.example", 1, "not required");
	assert_match(j, "reply_to", P_REPLY, "replies@helpdesk.example", 1, "not required");
	/* To + Cc, the duplicate BOB@ and the empty group dropped */
	assert_int_equal(json_array_size(json_object_get(j, "recipients")), 2);
	assert_string_equal(rcpt(j, 0), "bob@corp.example");
	assert_string_equal(rcpt(j, 1), "carol@corp.example");
	json_decref(j);
	assert_int_equal(ctl_text("eval", "--account", ACCOUNT, "--eml", fixture("display.eml"),
				  NULL),
			 0);
	assert_non_null(
		strstr(out_buf, "reply_to       replies@helpdesk.example, andre@elsewhere.example  "
				"(Reply-To)\n"));
	assert_non_null(strstr(out_buf, "client_ip      198.51.100.77  (Received)\n"));
	assert_non_null(strstr(out_buf, "server_name    mail.mueller.example  (Received)\n"));
}

static void eml_display_name_is_never_the_address(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("spoof.eml"), NULL), 0);
	j = out_json();
	assert_null(find_match(j, "header_from", P_TRUSTED));
	assert_null(find_match(j, "reply_to", P_TRUSTED));
	assert_int_equal(json_array_size(json_object_get(j, "matches")), 0);
	assert_string_equal(disps(j, 0, "waived"), "");
	json_decref(j);
}

static void eml_missing_headers(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("missing.eml"), NULL),
			 ALLOWD_CLI_USAGE);
	assert_non_null(strstr(err_buf, "no recipient"));
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("missing.eml"),
			     "--recipient", "abuse@corp.example", NULL),
			 0);
	j = out_json();
	assert_int_equal(json_array_size(json_object_get(j, "matches")), 1);
	assert_match(j, "recipient", P_EXEMPT, "abuse@corp.example", 1, "not required");
	json_decref(j);
	assert_int_equal(ctl_text("eval", "--account", ACCOUNT, "--eml", fixture("missing.eml"),
				  "--recipient", "abuse@corp.example", NULL),
			 0);
	assert_non_null(strstr(out_buf, "envelope_from  -\n"));
	assert_non_null(strstr(out_buf, "header_from    -\n"));
	assert_non_null(strstr(out_buf, "client_ip      -\n"));
}

static void eml_every_authres_header_in_order(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("multi_ar.eml"),
			     "--trusted-authserv-id", "MX.CORP.EXAMPLE", NULL),
			 0);
	j = out_json();
	/* #1 spf=fail counts; #2 is not a header and is skipped with a warning; #3's
	   DKIM pass of a subdomain verifies From; evil.example's dmarc and spf pass do not count */
	assert_non_null(strstr(err_buf, "warning: Authentication-Results header #2 of the message "
					"skipped"));
	assert_match(j, "envelope_from", P_BANK, "bank.example", 0, "sender not authenticated");
	assert_match(j, "header_from", P_BANK, "bank.example", 1, "dkim pass");
	assert_true(skips_links(j, 0));
	json_decref(j);
}

static void flags_override_the_message(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("gmail.eml"),
			     "--trusted-authserv-id", "mx.google.com", "--header-from",
			     "ceo@partner.example", "--client-ip", "192.0.2.1", "--server-name",
			     "other.example", "--recipient", "abuse@corp.example", "--spf",
			     "fail:bank.example", NULL),
			 0);
	j = out_json();
	assert_string_equal(rcpt(j, 0), "abuse@corp.example");
	assert_match(j, "header_from", P_TRUSTED, "ceo@partner.example", 1, "not required");
	assert_null(find_match(j, "header_from", P_BANK));
	assert_int_equal(count_field(j, "client_ip"), 0);
	assert_int_equal(count_field(j, "server_name"), 0);
	/* --spf replaced the header's pass; the aligned DMARC pass still verifies */
	assert_match(j, "envelope_from", P_BANK, "bank.example", 1, "dmarc pass");
	json_decref(j);

	/* --auth-results replaces the message's headers */
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("gmail.eml"),
			     "--trusted-authserv-id", "mx.google.com", "--auth-results",
			     "mx.google.com; spf=softfail smtp.mailfrom=bank.example", NULL),
			 0);
	j = out_json();
	assert_match(j, "envelope_from", P_BANK, "bank.example", 0, "sender not authenticated");
	assert_match(j, "header_from", P_BANK, "bank.example", 0, "sender not authenticated");
	json_decref(j);
}

static void auth_results_flags(void **state)
{
	json_t *j;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--header-from", "alerts@bank.example",
			     "--recipient", "bob@corp.example", "--auth-results",
			     "mx.corp.example; dmarc=fail header.from=bank.example", "--auth-results",
			     "mx.corp.example; dmarc=pass header.from=bank.example",
			     "--trusted-authserv-id", "mx.corp.example", NULL),
			 0);
	j = out_json();
	assert_match(j, "header_from", P_BANK, "bank.example", 1, "dmarc pass");
	json_decref(j);
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--header-from", "alerts@bank.example",
			     "--recipient", "bob@corp.example", "--auth-results",
			     "mx.corp.example; dmarc=pass header.from=bank.example", NULL),
			 0);
	j = out_json();
	assert_match(j, "header_from", P_BANK, "bank.example", 0, "sender not authenticated");
	assert_non_null(strstr(err_buf, "from --auth-results ignored"));
	json_decref(j);
}

static void eml_from_standard_input(void **state)
{
	int saved = dup(STDIN_FILENO), fd = open(fixture("ipv6.eml"), O_RDONLY);
	json_t *j;
	(void)state;
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	close(fd);
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", "-", NULL), 0);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	j = out_json();
	assert_match(j, "client_ip", P_V6, "2a01:111:f400:7e1b::201", 1, "not required");
	json_decref(j);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void eml_unreadable_or_not_a_message(void **state)
{
	char path[256];
	int fd;
	(void)state;
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("garbage.eml"),
			     "--recipient", "bob@corp.example", NULL),
			 ALLOWD_CLI_FAILURE);
	assert_non_null(strstr(err_buf, "is not an RFC 5322 message"));
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", fixture("no-such.eml"), NULL),
			 ALLOWD_CLI_FAILURE);
	assert_non_null(strstr(err_buf, "cannot open"));
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", dir, NULL), ALLOWD_CLI_FAILURE);
	assert_non_null(strstr(err_buf, "is a directory"));

	snprintf(path, sizeof(path), "%s/empty.eml", dir);
	write_file(path, "", 0);
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", path, NULL), ALLOWD_CLI_FAILURE);
	write_file(path, "\r\nFrom: a@b.example\r\n", 21); /* an empty header section */
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", path, NULL), ALLOWD_CLI_FAILURE);
	write_file(path, "From: a@b.example\0To: \xff\xfe\0\0\n\n", 29); /* NULs, bad UTF-8 */
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", path, "--recipient", "x@y.example",
			     NULL),
			 0);

	/* a header section over 1 MiB: refused before GMime sees it */
	{
		size_t len = EML_HEADER_MAX + 64;
		char *big = malloc(len);
		assert_non_null(big);
		memcpy(big, "From: a@b.example\n", 18);
		for (size_t i = 18; i + 4 <= len; i += 4)
			memcpy(big + i, "X:y\n", 4);
		snprintf(path, sizeof(path), "%s/many.eml", dir);
		write_file(path, big, len - len % 4);
		free(big);
		assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", path, NULL),
				 ALLOWD_CLI_FAILURE);
		assert_non_null(strstr(err_buf, "header section is"));
		unlink(path);
	}

	/* over 50 MiB: refused before it is read (a sparse file) */
	snprintf(path, sizeof(path), "%s/huge.eml", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)EML_FILE_MAX + 1), 0);
	close(fd);
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--eml", path, NULL), ALLOWD_CLI_FAILURE);
	assert_non_null(strstr(err_buf, "over 50 MiB are refused"));
	unlink(path);
}

/* Untrusted sizes: many addresses, a huge header, a deep MIME body. */
static void eml_bounded_inputs(void **state)
{
	size_t cap = 4u << 20, o = 0;
	char *msg = malloc(cap), path[256];
	json_t *j;
	(void)state;
	assert_non_null(msg);
	o += (size_t)snprintf(msg + o, cap - o, "From: a@b.example\nTo: ");
	for (int i = 0; i < 150; i++)
		o += (size_t)snprintf(msg + o, cap - o, "%su%d@corp.example", i ? ", " : "", i);
	o += (size_t)snprintf(msg + o, cap - o, "\nAuthentication-Results: mx.corp.example; spf=pass ");
	for (int i = 0; i < 7000; i++)
		o += (size_t)snprintf(msg + o, cap - o, "(comment) ");
	o += (size_t)snprintf(msg + o, cap - o,
			      "\nReceived: from %0300d.example (x [192.0.2.1]) by y\n"
			      "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b0\n\n",
			      0);
	for (int i = 1; i < 50000 && o + 100 < cap; i++)
		o += (size_t)snprintf(msg + o, cap - o,
				      "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i - 1,
				      i);
	snprintf(path, sizeof(path), "%s/bounded.eml", dir);
	write_file(path, msg, o);
	free(msg);
	assert_int_equal(ctl("eval", "--account", OTHER_ACCOUNT, "--eml", path,
			     "--trusted-authserv-id", "mx.corp.example", NULL),
			 0);
	j = out_json();
	assert_int_equal(json_array_size(json_object_get(j, "recipients")), EML_LIST_MAX);
	json_decref(j);
	assert_non_null(strstr(err_buf, "only the first 100 To and Cc addresses are evaluated"));
	assert_non_null(strstr(err_buf, "Authentication-Results header #1 of the message skipped"));
	unlink(path);
}

/* ---- the Received tokenizer ----------------------------------------- */

static void received_from_clause_table(void **state)
{
	static const struct {
		const char *value, *ip, *helo;
		int rc;
	} cases[] = {
		/* Postfix */
		{"from mail.example.com (mail.example.com [192.0.2.1]) by mx.example.net; date",
		 "192.0.2.1", "mail.example.com", 0},
		/* Postfix: the client's HELO literal is not its address */
		{"from [10.0.0.1] (unknown [198.51.100.7]) by mx", "198.51.100.7", "", 0},
		/* Gmail, folded */
		{" from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])\r\n"
		 "        by mx.google.com with SMTPS id x;\r\n",
		 "209.85.220.41", "mail-sor-f41.google.com", 0},
		{"FROM h (h [IPv6:2001:db8::1]) BY x", "2001:db8::1", "h", 0},
		{"from h (h [ipv6:2001:DB8::2])", "2001:DB8::2", "h", 0},
		/* Microsoft: a bare address in a comment */
		{"from AM6PR (2603:10a6:20b:1::1) by DB9PR (2603:10a6:10:2a8::14) with x",
		 "2603:10a6:20b:1::1", "AM6PR", 0},
		/* Exim without reverse DNS, with it, and with a HELO literal */
		{"from [192.0.2.9] (port=4567 helo=client.example) by mx", "192.0.2.9", "", 0},
		{"from host.example ([192.0.2.9]:4567 helo=client.example) by mx", "192.0.2.9",
		 "host.example", 0},
		{"from host.example (helo=[10.1.1.1]) ([192.0.2.9]) by mx", "192.0.2.9",
		 "host.example", 0},
		/* qmail: the HELO claim is skipped */
		{"from unknown (HELO [10.0.0.5]) (198.51.100.3) by mx", "198.51.100.3", "unknown", 0},
		{"from unknown (HELO 10.0.0.5) (198.51.100.3)", "198.51.100.3", "unknown", 0},
		/* sendmail */
		{"from helo.example (rdns.example [192.0.2.4] (may be forged)) by mx", "192.0.2.4",
		 "helo.example", 0},
		/* an invalid literal is passed over */
		{"from x (y [999.1.1.1]) (z [192.0.2.3])", "192.0.2.3", "x", 0},
		/* nested comments, quoted pairs */
		{"from x ((nested \\) [192.0.2.5]))", "192.0.2.5", "x", 0},
		/* the clause ends at by, with, id, for, via and ';' */
		{"from a.example by b.example ([192.0.2.55])", "", "a.example", 0},
		{"from a.example with esmtp ([192.0.2.55])", "", "a.example", 0},
		{"from a.example; (c [192.0.2.55])", "", "a.example", 0},
		{"from by b.example", "", "", 0},
		/* not a from clause */
		{"by 2002:a05:6a10:9f0e:b0:4d5:6c1a:2b3c with SMTP id abc; date", "", "", -1},
		{"fromage (x [192.0.2.1])", "", "", -1},
		{"", "", "", -1},
		/* degenerate */
		{"from", "", "", 0},
		{"from (x)", "", "", 0},
		{"from x (y [192.0.2.1", "", "x", 0},
		{"from x (y ((((((((((((((((((([192.0.2.1])", "", "x", 0},
		{"from x )([192.0.2.1])", "", "x", 0},
		{"from x (::1) ([::ffff:192.0.2.8])", "::ffff:192.0.2.8", "x", 0},
		{"from x (::1) (2001:db8::8)", "::1", "x", 0},
	};
	char ip[64], helo[256], long_helo[400];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = cli_received_parse(ip, helo, cases[i].value, strlen(cases[i].value));
		if (rc != cases[i].rc || strcmp(ip, cases[i].ip) || strcmp(helo, cases[i].helo))
			fail_msg("case %zu '%s': rc %d ip '%s' helo '%s'", i, cases[i].value, rc, ip,
				 helo);
	}
	/* a HELO name over 255 bytes is dropped, the IP still read */
	snprintf(long_helo, sizeof(long_helo), "from %0300d (x [192.0.2.1])", 7);
	assert_int_equal(cli_received_parse(ip, helo, long_helo, strlen(long_helo)), 0);
	assert_string_equal(helo, "");
	assert_string_equal(ip, "192.0.2.1");
	/* only the first 4096 bytes are read */
	{
		char *v = malloc(5000);
		assert_non_null(v);
		memcpy(v, "from x ", 7);
		memset(v + 7, ' ', 4993);
		memcpy(v + 4100, "([192.0.2.1])", 13);
		assert_int_equal(cli_received_parse(ip, helo, v, 5000), 0);
		assert_string_equal(ip, "");
		free(v);
	}
	assert_int_equal(cli_received_parse(ip, helo, NULL, 0), -1);
}

/* Random bytes drawn from the tokenizer's alphabet: never a crash, only valid IPs. */
static void received_random_input(void **state)
{
	static const char alphabet[] = "from by ()[]\\;:.0123456789abcdefIPv6helo=HELO \r\n\t\xff";
	char v[512], ip[64], helo[256];
	uint32_t x = 12345;
	uint8_t addr[16];
	(void)state;

	for (int iter = 0; iter < 20000; iter++) {
		size_t len;
		x = x * 1103515245u + 12345u;
		len = (x >> 8) % sizeof(v);
		memcpy(v, "from ", 5);
		for (size_t i = 5; i < len; i++) {
			x = x * 1103515245u + 12345u;
			v[i] = alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
		}
		cli_received_parse(ip, helo, v, len < 5 ? 5 : len);
		if (ip[0])
			assert_int_equal(allowd_ip_parse(addr, ip), 0);
		assert_true(strlen(helo) < 256);
	}
}

/* ---- exit codes ----------------------------------------------------- */

static void usage_errors_and_exit_codes(void **state)
{
	(void)state;
	/* 2: bad flags */
	assert_int_equal(ctl("eval", "--recipient", "a@b.example", NULL), ALLOWD_CLI_USAGE);
	assert_non_null(strstr(err_buf, "--account"));
	assert_int_equal(ctl("eval", "--account", ACCOUNT, NULL), ALLOWD_CLI_USAGE);
	assert_non_null(strstr(err_buf, "no recipient"));
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--recipient", "a@b.example",
			     "--client-ip", "192.0.2", NULL),
			 ALLOWD_CLI_USAGE);
	assert_non_null(strstr(err_buf, "not an IPv4 or IPv6 address"));
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--recipient", "a@b.example",
			     "--client-ip", "[192.0.2.1]", NULL),
			 ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--recipient", "a@b.example", "--spf",
			     "passed:example.com", NULL),
			 ALLOWD_CLI_USAGE);
	assert_non_null(strstr(err_buf, "is not a result"));
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--recipient", "a@b.example", "--dmarc",
			     "pass:not a domain", NULL),
			 ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--recipient", "a@b.example", "--dkim",
			     "pass", NULL),
			 ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--recipient", "a@b.example",
			     "--disposition", "PHISH", NULL),
			 ALLOWD_CLI_USAGE);
	assert_non_null(strstr(err_buf, "--disposition 'PHISH'"));
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--recipient", "a@b.example", "--spf",
			     "pass", "--spf", "fail", NULL),
			 ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--recipient", "a@b.example",
			     "--auth-results", "mx.corp.example; dkim=pass (x",
			     "--trusted-authserv-id", "mx.corp.example", NULL),
			 ALLOWD_CLI_USAGE);
	assert_non_null(strstr(err_buf, "--auth-results #1"));
	assert_int_equal(ctl("eval", "--account", ACCOUNT, "--recipient", "a@b.example", "--name",
			     "x", NULL),
			 ALLOWD_CLI_USAGE);
	assert_int_equal(ctl("eval", "extra", "--account", ACCOUNT, NULL), ALLOWD_CLI_USAGE);
	/* 3: no such account; 4: not an account id */
	assert_int_equal(ctl("eval", "--account", "00000000000000000000000000000000", "--recipient",
			     "a@b.example", NULL),
			 ALLOWD_CLI_NOTFOUND);
	assert_int_equal(ctl("eval", "--account", "acme", "--recipient", "a@b.example", NULL),
			 ALLOWD_CLI_INVALID);
	assert_int_equal(ctl("eval", "--account", ACCOUNT "00", "--recipient", "a@b.example", NULL),
			 ALLOWD_CLI_INVALID);
	/* upper-case ids are the same account */
	assert_int_equal(ctl("eval", "--account", "0123456789ABCDEF0123456789ABCDEF", "--recipient",
			     "a@b.example", NULL),
			 0);
	/* --help lists the command */
	assert_int_equal(ctl("--help", NULL), 0);
	assert_non_null(strstr(out_buf, "allowctl eval --account ID"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(trusted_sender_waives_every_verdict),
		cmocka_unit_test(acceptable_sender_waives_spoof_spam_bulk),
		cmocka_unit_test(exempt_recipient_waives_for_that_recipient_only),
		cmocka_unit_test(verify_sender_needs_spf_pass),
		cmocka_unit_test(json_output_is_the_api_encoding),
		cmocka_unit_test(text_report_explains_the_decision),
		cmocka_unit_test(text_report_escapes_control_characters),
		cmocka_unit_test(eml_gmail_with_trusted_authserv_id),
		cmocka_unit_test(eml_authres_ignored_without_trusted_id),
		cmocka_unit_test(eml_microsoft_header_without_authserv_id),
		cmocka_unit_test(eml_bounce_has_an_empty_envelope_from),
		cmocka_unit_test(eml_ipv6_received_literal),
		cmocka_unit_test(eml_display_names_encoded_words_and_folding),
		cmocka_unit_test(eml_display_name_is_never_the_address),
		cmocka_unit_test(eml_missing_headers),
		cmocka_unit_test(eml_every_authres_header_in_order),
		cmocka_unit_test(flags_override_the_message),
		cmocka_unit_test(auth_results_flags),
		cmocka_unit_test(eml_from_standard_input),
		cmocka_unit_test(eml_unreadable_or_not_a_message),
		cmocka_unit_test(eml_bounded_inputs),
		cmocka_unit_test(received_from_clause_table),
		cmocka_unit_test(received_random_input),
		cmocka_unit_test(usage_errors_and_exit_codes),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

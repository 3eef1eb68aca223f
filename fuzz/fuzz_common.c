/*
 * fuzz_common.c - helpers shared by the fuzz targets (fuzz_common.h): the
 * invariant failure path, the scratch directory, and the seeded policy set
 * the store-backed targets list, patch and delete.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allowd/error.h"

const char *const fuzz_account_id = "0123456789abcdef0123456789abcdef";

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n==fuzz== INVARIANT VIOLATED at %s:%d: %s\n==fuzz== ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n==fuzz== last allowd error: code %d pointer \"%s\" message \"%s\"\n",
		allowd_error_last()->code, allowd_error_last()->pointer,
		allowd_error_last()->message);
	fflush(stderr);
	abort();
}

/* ---- the scratch directory ------------------------------------------- */

static char tmpdir[512];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tmpdir(void)
{
	if (tmpdir[0])
		nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
	const char *base = getenv("ALLOWD_FUZZ_TMPDIR");
	int n;

	if (tmpdir[0])
		return tmpdir;
	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	n = snprintf(tmpdir, sizeof(tmpdir), "%s/allowd-fuzz-XXXXXX", base);
	if (n < 0 || (size_t)n >= sizeof(tmpdir) || !mkdtemp(tmpdir)) {
		fprintf(stderr, "fuzz: cannot create a directory under %s: %s\n", base,
			strerror(errno));
		abort();
	}
	atexit(remove_tmpdir);
	return tmpdir;
}

void fuzz_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", fuzz_tmpdir(), name);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "fuzz: path too long: %s/%s\n", fuzz_tmpdir(), name);
		abort();
	}
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool fuzz_policy_equal(const allowd_policy *a, const allowd_policy *b, bool all)
{
	if (all && (a->id != b->id || a->created_at != b->created_at ||
		    a->modified_at != b->modified_at || !same_str(a->pattern_norm, b->pattern_norm)))
		return false;
	return a->pattern_type == b->pattern_type && a->is_regex == b->is_regex &&
	       a->is_trusted_sender == b->is_trusted_sender &&
	       a->is_acceptable_sender == b->is_acceptable_sender &&
	       a->is_exempt_recipient == b->is_exempt_recipient &&
	       a->verify_sender == b->verify_sender && same_str(a->pattern, b->pattern) &&
	       same_str(a->comments, b->comments);
}

bool fuzz_is_error_code(int rc)
{
	return rc <= ALLOWD_ERR && rc >= ALLOWD_ETOKEN;
}

/* ---- the seeded account ---------------------------------------------- */

static const struct seed {
	const char *pattern;
	allowd_pattern_type type;
	bool regex, trusted, acceptable, exempt, verify;
	const char *comments;
} seeds[] = {
	{"alice@example.com", ALLOWD_PATTERN_EMAIL, false, true, false, false, false, "CEO"},
	{"Bob@Example.COM", ALLOWD_PATTERN_EMAIL, false, false, true, false, true, NULL},
	{"support+tickets@example.org", ALLOWD_PATTERN_EMAIL, false, false, false, true, false,
	 "helpdesk; 100% of tickets_"},
	{"\"john doe\"@example.net", ALLOWD_PATTERN_EMAIL, false, true, true, false, false, ""},
	{"pel\xc3\xa9@b\xc3\xbc" "cher.example", ALLOWD_PATTERN_EMAIL, false, true, false, true,
	 true, "caf\xc3\xa9 r\xc3\xa9sum\xc3\xa9"},
	{"example.com", ALLOWD_PATTERN_DOMAIN, false, false, true, false, false, "partner"},
	{"mail.example.co.uk", ALLOWD_PATTERN_DOMAIN, false, true, false, false, true, NULL},
	{"B\xc3\xbc" "cher.example", ALLOWD_PATTERN_DOMAIN, false, true, false, false, false,
	 "IDN"},
	{"8.8.8.0/24", ALLOWD_PATTERN_IP, false, true, false, false, false, "dns"},
	{"1.1.1.1", ALLOWD_PATTERN_IP, false, false, true, false, true, NULL},
	{"2606:4700::/32", ALLOWD_PATTERN_IP, false, true, true, false, false, "v6 block"},
	{"2a00:1450:4001:82a::200e", ALLOWD_PATTERN_IP, false, false, true, false, false, NULL},
	{".*@example\\.com", ALLOWD_PATTERN_EMAIL, true, true, false, false, false, "regex"},
	{"(alice|bob)(\\+.*)?@(.+\\.)?example\\.org", ALLOWD_PATTERN_EMAIL, true, false, true,
	 true, false, NULL},
	{"(.+\\.)?example\\.net", ALLOWD_PATTERN_DOMAIN, true, false, true, false, true,
	 "subdomains"},
	{"mx\\d*\\.example\\.(net|com)", ALLOWD_PATTERN_DOMAIN, true, true, false, true, false,
	 "MX"},
	{"8\\.8\\.4\\.\\d+", ALLOWD_PATTERN_IP, true, true, false, false, false, NULL},
	{"ALICE@corp.example", ALLOWD_PATTERN_EMAIL, false, false, false, true, false, "alice"},
	{"zeta.example", ALLOWD_PATTERN_DOMAIN, false, false, true, false, false, "Z"},
	{"Zulu.example", ALLOWD_PATTERN_DOMAIN, false, true, false, false, false, "z"},
	{"a_b@example.com", ALLOWD_PATTERN_EMAIL, false, true, false, false, false,
	 "under_score %"},
	{"9.9.9.9", ALLOWD_PATTERN_IP, false, true, false, false, false,
	 "\xe6\x97\xa5\xe6\x9c\xac"},
};

size_t fuzz_seed_policies(allowd_store *s)
{
	size_t n = 0;
	int rc;

	if ((rc = allowd_store_account_create(s, fuzz_account_id, "fuzz")) != 0) {
		fprintf(stderr, "fuzz: account_create: %s\n", allowd_error_last()->message);
		abort();
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		allowd_policy p;
		memset(&p, 0, sizeof(p));
		p.pattern_type = seeds[i].type;
		p.is_regex = seeds[i].regex;
		p.is_trusted_sender = seeds[i].trusted;
		p.is_acceptable_sender = seeds[i].acceptable;
		p.is_exempt_recipient = seeds[i].exempt;
		p.verify_sender = seeds[i].verify;
		if (allowd_policy_set_string(&p.pattern, seeds[i].pattern) ||
		    allowd_policy_set_string(&p.comments, seeds[i].comments))
			abort();
		if ((rc = allowd_store_policy_create(s, fuzz_account_id, &p)) != 0) {
			fprintf(stderr, "fuzz: seed policy %zu (%s): %s\n", i, seeds[i].pattern,
				allowd_error_last()->message);
			abort();
		}
		allowd_policy_clear(&p);
		n++;
	}
	return n;
}

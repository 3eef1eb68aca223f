/*
 * pattern.c - validation and normalisation of policy patterns (EMAIL,
 * DOMAIN, IP, regex).  Part of the policy layer: pure functions over
 * strings, built on libidn2, inet_pton/inet_ntop and PCRE2.  The rules and
 * their examples are in docs/semantics.md, "Pattern validation".
 */
#include "allowd/error.h"
#include "allowd/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <idn2.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define EMAIL_LOCAL_MAX  64  /* octets, RFC 5321 4.5.3.1.1 */
#define EMAIL_MAX        254 /* octets: the 256-octet path minus "<" and ">" */
#define DOMAIN_LABEL_MAX 63  /* octets */
#define DOMAIN_MAX       253 /* octets, without a trailing dot */
#define EXCERPT_MAX      40  /* bytes of user text quoted in a message */

static int invalid(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int invalid(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	allowd_error_setv(ALLOWD_EINVALID, "/pattern", fmt, ap);
	va_end(ap);
	return ALLOWD_EINVALID;
}

static int out_of_memory(void)
{
	allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	return ALLOWD_ERR;
}

static char *dup_range(const char *s, size_t len)
{
	char *p = malloc(len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ---- UTF-8 ---------------------------------------------------------- */

/*
 * Decodes the scalar value starting at s[*i] and advances *i past it.
 * Returns -1 for anything that is not well-formed UTF-8 (Unicode 3.9,
 * table 3-7): stray continuation bytes, truncated sequences, overlong
 * forms, surrogates (U+D800..U+DFFF) and values above U+10FFFF.
 */
static int utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
	unsigned char c = s[*i];
	uint32_t v, min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		(*i)++;
		return 0;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1, v = c & 0x1fu, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2, v = c & 0x0fu, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3, v = c & 0x07u, min = 0x10000;
	} else {
		return -1;
	}
	if (len - *i - 1 < n)
		return -1;
	for (size_t k = 1; k <= n; k++) {
		unsigned char b = s[*i + k];
		if ((b & 0xc0) != 0x80)
			return -1;
		v = (v << 6) | (b & 0x3fu);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return -1;
	*i += n + 1;
	*cp = v;
	return 0;
}

long allowd_utf8_length(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	long count = 0;
	uint32_t cp;

	if (!s)
		return len == 0 ? 0 : -1;
	if (len > (size_t)LONG_MAX)
		return -1;
	while (i < len) {
		if (utf8_next(u, len, &i, &cp) < 0)
			return -1;
		count++;
	}
	return count;
}

/* Unicode White_Space, including the ASCII and C1 controls among it. */
static bool is_space(uint32_t cp)
{
	return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* C0 controls, DEL and the C1 controls (general category Cc). */
static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/*
 * Copies at most EXCERPT_MAX bytes of s[0..len) into buf, cut at a
 * character boundary and marked with "..." when shortened, so that a
 * message quoting user text stays short and valid UTF-8.  `s` must be
 * valid UTF-8; buf must hold EXCERPT_MAX + 4 bytes.
 */
static const char *excerpt(char *buf, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, keep = 0;
	uint32_t cp;

	if (len <= EXCERPT_MAX) {
		memcpy(buf, s, len);
		buf[len] = '\0';
		return buf;
	}
	while (i < len && utf8_next(u, len, &i, &cp) == 0 && i <= EXCERPT_MAX)
		keep = i;
	memcpy(buf, s, keep);
	memcpy(buf + keep, "...", 4);
	return buf;
}

/*
 * The rules every pattern obeys, whatever its type: valid UTF-8, 1 to
 * ALLOWD_PATTERN_MAX characters, no leading or trailing whitespace, no
 * control characters.  Checked in that order, so the first message is
 * about the most basic problem.
 */
static int check_common(const char *pattern)
{
	const unsigned char *u = (const unsigned char *)pattern;
	size_t len, i = 0, at;
	long count = 0, control_at = -1;
	uint32_t cp, first = 0, last = 0, control = 0;

	if (!pattern)
		return invalid("pattern is required");
	len = strlen(pattern);
	while (i < len) {
		at = i;
		if (utf8_next(u, len, &i, &cp) < 0)
			return invalid(
			    "pattern is not valid UTF-8 (malformed sequence starting with "
			    "byte 0x%02X at byte offset %zu)",
			    u[at], at);
		if (count == 0)
			first = cp;
		last = cp;
		if (control_at < 0 && is_control(cp)) {
			control_at = count;
			control = cp;
		}
		count++;
	}
	if (count == 0)
		return invalid("pattern is empty");
	if (count > ALLOWD_PATTERN_MAX)
		return invalid("pattern is too long: %ld characters, at most %d", count,
		               ALLOWD_PATTERN_MAX);
	if (is_space(first))
		return invalid("pattern starts with whitespace (U+%04X); remove it",
		               (unsigned)first);
	if (is_space(last))
		return invalid("pattern ends with whitespace (U+%04X); remove it", (unsigned)last);
	if (control_at >= 0)
		return invalid("pattern contains a control character (U+%04X) at offset %ld",
		               (unsigned)control, control_at);
	return 0;
}

/* ---- DOMAIN --------------------------------------------------------- */

static bool all_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/*
 * Turns a libidn2 failure into a message.  Length failures get our own
 * wording (with the numbers when the input is plain ASCII, where the
 * A-label form has the same length as the input); anything else is
 * libidn2's own message.
 */
static int idn2_failure(int rc, const char *in)
{
	char ex[EXCERPT_MAX + 4];
	size_t len = strlen(in);

	if (rc == IDN2_MALLOC)
		return out_of_memory();
	if (rc == IDN2_TOO_BIG_DOMAIN) {
		if (all_ascii(in)) {
			if (len > 0 && in[len - 1] == '.')
				len--;
			return invalid("domain is %zu octets long, at most %d", len, DOMAIN_MAX);
		}
		return invalid("domain is longer than %d octets in A-label (xn--) form",
		               DOMAIN_MAX);
	}
	if (rc == IDN2_TOO_BIG_LABEL || rc == IDN2_PUNYCODE_BIG_OUTPUT) {
		for (const char *p = in; all_ascii(in) && *p;) {
			size_t n = strcspn(p, ".");
			if (n > DOMAIN_LABEL_MAX)
				return invalid("domain label '%s' is %zu octets long, at most %d",
				               excerpt(ex, p, n), n, DOMAIN_LABEL_MAX);
			p += n + (p[n] == '.');
		}
		return invalid("a domain label is longer than %d octets in A-label (xn--) form",
		               DOMAIN_LABEL_MAX);
	}
	return invalid("invalid domain '%s': %s", excerpt(ex, in, len), idn2_strerror(rc));
}

static int bad_label_char(const char *label, size_t n, char c)
{
	char ex[EXCERPT_MAX + 4];
	const char *hint = "";

	if (c == '@')
		hint = " (for an address use pattern_type EMAIL)";
	else if (c == '*')
		hint = " (for wildcards use is_regex)";
	else if (c == ':' || c == '/')
		hint =
		    " (a DOMAIN pattern is a bare host name: no scheme, port, path or IP address)";
	return invalid("domain label '%s' contains '%c'; only letters, digits and hyphens are "
	               "allowed%s",
	               excerpt(ex, label, n), c, hint);
}

/*
 * Checks the A-label form produced by libidn2 and copies it, lower-cased,
 * into *out.  Invariant on entry: `a` is ASCII, at most one trailing dot
 * is acceptable, and no other structure has been checked.
 */
static int check_alabels(char **out, const char *a)
{
	char ex[EXCERPT_MAX + 4];
	size_t len = strlen(a), labels = 0, start = 0, i;
	bool numeric = false;
	char *res;

	if (len > 0 && a[len - 1] == '.')
		len--;
	if (len == 0)
		return invalid("domain is empty");
	if (a[len - 1] == '.')
		return invalid("domain ends with more than one dot");
	for (i = 0; i <= len; i++) {
		if (i < len && a[i] != '.')
			continue;
		size_t n = i - start;
		const char *label = a + start;
		if (n == 0)
			return invalid(start == 0 ? "domain starts with '.'"
			                          : "domain contains an empty label ('..')");
		if (n > DOMAIN_LABEL_MAX)
			return invalid("domain label '%s' is %zu octets long, at most %d",
			               excerpt(ex, label, n), n, DOMAIN_LABEL_MAX);
		numeric = true;
		for (size_t k = 0; k < n; k++) {
			if (!is_alnum(label[k]) && label[k] != '-')
				return bad_label_char(label, n, label[k]);
			if (!is_digit(label[k]))
				numeric = false;
		}
		if (label[0] == '-' || label[n - 1] == '-')
			return invalid("domain label '%s' starts or ends with a hyphen",
			               excerpt(ex, label, n));
		labels++;
		start = i + 1;
	}
	if (len > DOMAIN_MAX)
		return invalid("domain is %zu octets long, at most %d", len, DOMAIN_MAX);
	if (labels < 2)
		return invalid("domain '%s' has a single label; at least two are required, "
		               "as in example.com",
		               excerpt(ex, a, len));
	if (numeric)
		return invalid("the top-level label of '%s' is all digits; for an IP address "
		               "use pattern_type IP",
		               excerpt(ex, a, len));
	res = dup_range(a, len);
	if (!res)
		return out_of_memory();
	for (i = 0; i < len; i++)
		res[i] = ascii_lower(res[i]);
	*out = res;
	return 0;
}

/*
 * The DOMAIN rules on a NUL-terminated string already known to be valid
 * UTF-8.  libidn2 does the IDNA2008 work (UTS #46 non-transitional
 * mapping, which also lower-cases and maps full stops such as U+3002 to
 * '.'); the structure is then checked on its A-label output, because that
 * is the form that is stored, compared and limited in length.
 */
static int domain_normalize(char **out, const char *in)
{
	uint8_t *a = NULL;
	int rc;

	rc = idn2_lookup_u8((const uint8_t *)in, &a, IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK)
		return idn2_failure(rc, in);
	rc = check_alabels(out, (const char *)a);
	idn2_free(a);
	return rc;
}

static int domain_pattern(char **out, const char *pattern)
{
	unsigned char addr[16];
	char ex[EXCERPT_MAX + 4];

	if (strchr(pattern, ':') && inet_pton(AF_INET6, pattern, addr) == 1)
		return invalid("'%s' is an IPv6 address, not a domain; use pattern_type IP",
		               excerpt(ex, pattern, strlen(pattern)));
	return domain_normalize(out, pattern);
}

/* ---- EMAIL ---------------------------------------------------------- */

static bool is_atext(char c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 5321 Dot-string, with RFC 6531's UTF8-non-ascii in atext. */
static int check_dot_string(const char *local, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = local[i];
		if (c == '.') {
			if (i == 0)
				return invalid("the local part starts with '.'");
			if (i == len - 1)
				return invalid("the local part ends with '.'");
			if (local[i - 1] == '.')
				return invalid("the local part contains '..'");
		} else if (c == '@') {
			return invalid("'@' may appear in the local part only inside quotes "
			               "(\"...\")");
		} else if ((unsigned char)c < 0x80 && !is_atext(c)) {
			return invalid("character '%c' is not allowed in an unquoted local part; "
			               "quote the local part (\"...\") to use it",
			               c);
		}
	}
	return 0;
}

/*
 * RFC 5321 Quoted-string: DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE,
 * with RFC 6531's UTF8-non-ascii in qtextSMTP.  The quotes must enclose the
 * whole local part.
 */
static int check_quoted_string(const char *local, size_t len)
{
	size_t i = 1;

	while (i < len) {
		unsigned char c = (unsigned char)local[i];
		if (c == '"') {
			if (i != len - 1)
				return invalid("text follows the closing quote of the local part; "
				               "the quotes must enclose the whole local part");
			return 0;
		}
		if (c == '\\') {
			if (i + 1 >= len)
				return invalid("the quoted local part ends with a lone '\\'");
			c = (unsigned char)local[i + 1];
			if (c < 0x20 || c > 0x7e)
				return invalid("'\\' in a quoted local part must be followed by a "
				               "printable ASCII character");
			i += 2;
			continue;
		}
		i++;
	}
	return invalid("the quoted local part has no closing quote");
}

static int email_pattern(char **out, const char *pattern)
{
	const char *at, *domain;
	char *dom = NULL, *res = NULL;
	size_t llen, dlen, total;
	int rc;

	at = strrchr(pattern, '@');
	if (!at)
		return invalid("an EMAIL pattern must be local-part@domain and has no '@'; "
		               "for a whole domain use pattern_type DOMAIN");
	llen = (size_t)(at - pattern);
	domain = at + 1;
	if (llen == 0)
		return invalid("the local part (before '@') is empty");
	if (*domain == '\0')
		return invalid("the domain (after '@') is empty");
	if (llen > EMAIL_LOCAL_MAX)
		return invalid("the local part is %zu octets long, at most %d", llen,
		               EMAIL_LOCAL_MAX);
	rc = pattern[0] == '"' ? check_quoted_string(pattern, llen)
	                       : check_dot_string(pattern, llen);
	if (rc != 0)
		return rc;
	if (*domain == '[')
		return invalid("address literals such as [192.0.2.1] are not supported after '@'; "
		               "use a domain name");

	if ((rc = domain_normalize(&dom, domain)) != 0)
		return rc;
	dlen = strlen(dom);
	total = llen + 1 + dlen;
	if (total > EMAIL_MAX) {
		rc = invalid("the address is %zu octets long once normalised, at most %d", total,
		             EMAIL_MAX);
		goto done;
	}
	res = malloc(total + 1);
	if (!res) {
		rc = out_of_memory();
		goto done;
	}
	for (size_t i = 0; i < llen; i++)
		res[i] = ascii_lower(pattern[i]);
	res[llen] = '@';
	memcpy(res + llen + 1, dom, dlen + 1);
	*out = res;
done:
	free(dom);
	return rc;
}

/* ---- IP ------------------------------------------------------------- */

/* An address block: family, address in network order, prefix length. */
struct block {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned plen;
};

/*
 * Address space that is not globally reachable; a block overlapping any
 * of these is rejected.  IPv6 outside 2000::/3 is covered by the three
 * "outside" rows; the other rows name well-known ranges more precisely.
 * The message names the most specific range containing the block, or, for
 * a block larger than a range, the first row it overlaps.  IPv4-mapped
 * IPv6 (::ffff:0:0/96) needs no row: such blocks are turned into IPv4
 * before this check, and shorter ones fall in ::/3.
 */
static const struct {
	const char *cidr;
	const char *what;
} reserved[] = {
    {"0.0.0.0/8", "\"this network\" (including the unspecified address 0.0.0.0)"},
    {"10.0.0.0/8", "private address space"},
    {"100.64.0.0/10", "shared address space (carrier-grade NAT)"},
    {"127.0.0.0/8", "loopback address space"},
    {"169.254.0.0/16", "link-local address space"},
    {"172.16.0.0/12", "private address space"},
    {"192.0.0.0/24", "reserved for IETF protocol assignments"},
    {"192.0.2.0/24", "reserved for documentation (TEST-NET-1)"},
    {"192.88.99.0/24", "the deprecated 6to4 relay anycast range"},
    {"192.168.0.0/16", "private address space"},
    {"198.18.0.0/15", "reserved for benchmarking"},
    {"198.51.100.0/24", "reserved for documentation (TEST-NET-2)"},
    {"203.0.113.0/24", "reserved for documentation (TEST-NET-3)"},
    {"224.0.0.0/4", "multicast address space"},
    {"240.0.0.0/4", "reserved for future use"},
    {"255.255.255.255/32", "the limited broadcast address"},

    {"::/3", "outside the global unicast space 2000::/3"},
    {"4000::/2", "outside the global unicast space 2000::/3"},
    {"8000::/1", "outside the global unicast space 2000::/3"},
    {"::/128", "the unspecified address"},
    {"::1/128", "the loopback address"},
    {"::/96", "deprecated IPv4-compatible address space"},
    {"64:ff9b::/96", "the IPv4/IPv6 translation prefix (NAT64)"},
    {"64:ff9b:1::/48", "the local-use IPv4/IPv6 translation prefix"},
    {"100::/64", "the discard-only prefix"},
    {"fc00::/7", "unique-local address space"},
    {"fe80::/10", "link-local address space"},
    {"fec0::/10", "deprecated site-local address space"},
    {"ff00::/8", "multicast address space"},
    {"2001::/23", "reserved for IETF protocol assignments"},
    {"2001::/32", "the Teredo prefix"},
    {"2001:2::/48", "reserved for benchmarking"},
    {"2001:db8::/32", "reserved for documentation"},
    {"2002::/16", "the 6to4 prefix"},
    {"3fff::/20", "reserved for documentation"},
};

/* Whether the first `bits` bits of a and b are equal. */
static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned mask = (0xffu << (8 - rest)) & 0xffu;
	return (a[whole] & mask) == (b[whole] & mask);
}

static void clear_host_bits(struct block *b)
{
	unsigned size = b->family == AF_INET ? 4 : 16;

	for (unsigned i = 0; i < size; i++) {
		unsigned keep = b->plen >= 8 * (i + 1) ? 8 : b->plen > 8 * i ? b->plen - 8 * i : 0;
		b->addr[i] &= (unsigned char)(0xff00u >> keep);
	}
}

/* Canonical text: inet_ntop, "/plen" unless the prefix is full length. */
static void format_block(char *buf, size_t size, const struct block *b)
{
	char addr[INET6_ADDRSTRLEN];
	unsigned full = b->family == AF_INET ? 32 : 128;

	if (!inet_ntop(b->family, b->addr, addr, sizeof(addr)))
		addr[0] = '\0';
	if (b->plen == full)
		snprintf(buf, size, "%s", addr);
	else
		snprintf(buf, size, "%s/%u", addr, b->plen);
}

/* Parses a row of `reserved`; the table is ours, so failure is a bug. */
static bool parse_cidr(const char *cidr, struct block *b)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(cidr, '/');
	char *end;
	long long plen;
	size_t n;

	if (!slash || (n = (size_t)(slash - cidr)) >= sizeof(addr))
		return false;
	memcpy(addr, cidr, n);
	addr[n] = '\0';
	b->family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(b->family, addr, b->addr) != 1)
		return false;
	errno = 0;
	plen = strtoll(slash + 1, &end, 10);
	if (errno != 0 || *end != '\0' || plen < 0 || plen > (b->family == AF_INET ? 32 : 128))
		return false;
	b->plen = (unsigned)plen;
	return true;
}

static int check_global(const struct block *b)
{
	char text[INET6_ADDRSTRLEN + 8];
	int contained = -1, overlapped = -1;
	unsigned best = 0;
	struct block r;

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (!parse_cidr(reserved[i].cidr, &r))
			return allowd_error_set(ALLOWD_ERR, NULL, "bad reserved range %s",
			                        reserved[i].cidr);
		if (r.family != b->family)
			continue;
		if (b->plen >= r.plen && prefix_equal(b->addr, r.addr, r.plen)) {
			if (contained < 0 || r.plen > best)
				contained = (int)i, best = r.plen;
		} else if (b->plen < r.plen && overlapped < 0 &&
		           prefix_equal(b->addr, r.addr, b->plen)) {
			overlapped = (int)i;
		}
	}
	format_block(text, sizeof(text), b);
	if (contained >= 0 && best == b->plen)
		return invalid("%s is %s; only globally reachable addresses are allowed",
		               reserved[contained].cidr, reserved[contained].what);
	if (contained >= 0)
		return invalid("%s is not globally reachable: %s is %s", text,
		               reserved[contained].cidr, reserved[contained].what);
	if (overlapped >= 0)
		return invalid("%s overlaps address space that is not globally reachable: %s is %s",
		               text, reserved[overlapped].cidr, reserved[overlapped].what);
	return 0;
}

/* "/plen": decimal, no sign, no leading zero, 0..max. */
static int parse_prefix(const char *s, unsigned max, unsigned *plen)
{
	char ex[EXCERPT_MAX + 4];
	size_t n = strlen(s);
	char *end;
	long long v;

	if (n == 0)
		return invalid("the prefix length after '/' is missing");
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return invalid("the prefix length '/%s' is not a decimal number",
			               excerpt(ex, s, n));
	if (n > 1 && s[0] == '0')
		return invalid("the prefix length '/%s' has a leading zero", excerpt(ex, s, n));
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > (long long)max)
		return invalid("the prefix length '/%s' is out of range; %s prefixes are 0 to %u",
		               excerpt(ex, s, n), max == 32 ? "IPv4" : "IPv6", max);
	*plen = (unsigned)v;
	return 0;
}

/* An explicit message for "01.2.3.4", which inet_pton rejects silently. */
static bool has_leading_zero(const char *addr)
{
	for (const char *p = addr; *p;) {
		size_t n = strspn(p, "0123456789");
		if (n > 1 && p[0] == '0')
			return true;
		p += n;
		if (*p)
			p++;
	}
	return false;
}

/* The address part of an IP pattern, s[0..n); not NUL-terminated. */
static int parse_address(const char *s, size_t n, struct block *b)
{
	char addr[INET6_ADDRSTRLEN], ex[EXCERPT_MAX + 4];
	bool v6 = memchr(s, ':', n) != NULL;
	bool fits = n < sizeof(addr); /* else only a prefix is examined, for the message */
	size_t k = fits ? n : sizeof(addr) - 1;

	if (n == 0)
		return invalid("the address before '/' is missing");
	excerpt(ex, s, n);
	memcpy(addr, s, k);
	addr[k] = '\0';
	if (v6) {
		b->family = AF_INET6;
		if (fits && inet_pton(AF_INET6, addr, b->addr) == 1)
			return 0;
		if (addr[0] == '[')
			return invalid("'%s' is not an IPv6 address; write it without brackets",
			               ex);
		if (strchr(addr, '%'))
			return invalid("'%s' is not an IPv6 address; zone identifiers (%%...) are "
			               "not allowed",
			               ex);
		return invalid("'%s' is not an IPv6 address", ex);
	}
	b->family = AF_INET;
	if (fits && inet_pton(AF_INET, addr, b->addr) == 1)
		return 0;
	if (strspn(addr, "0123456789.") == k && has_leading_zero(addr))
		return invalid("'%s' is not an IPv4 address: leading zeros are not allowed", ex);
	if (strspn(addr, "0123456789.") != k)
		return invalid("'%s' is not an IP address; for a host name use pattern_type DOMAIN",
		               ex);
	return invalid("'%s' is not an IPv4 address (four decimal numbers 0 to 255 "
	               "separated by dots)",
	               ex);
}

static bool is_v4_mapped(const unsigned char *a)
{
	static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

/*
 * Order: syntax (address, then prefix), IPv4-mapped to IPv4, host bits,
 * then global reachability on the resulting network.
 */
static int ip_pattern(char **out, const char *pattern)
{
	char text[INET6_ADDRSTRLEN + 8];
	const char *slash;
	struct block b, net;
	size_t n;
	int rc;

	memset(&b, 0, sizeof(b));
	slash = strchr(pattern, '/');
	n = slash ? (size_t)(slash - pattern) : strlen(pattern);
	if ((rc = parse_address(pattern, n, &b)) != 0)
		return rc;
	b.plen = b.family == AF_INET ? 32 : 128;
	if (slash && (rc = parse_prefix(slash + 1, b.plen, &b.plen)) != 0)
		return rc;

	if (b.family == AF_INET6 && b.plen >= 96 && is_v4_mapped(b.addr)) {
		b.family = AF_INET;
		memmove(b.addr, b.addr + 12, 4);
		memset(b.addr + 4, 0, sizeof(b.addr) - 4);
		b.plen -= 96;
	}
	net = b;
	clear_host_bits(&net);
	if (memcmp(net.addr, b.addr, sizeof(b.addr)) != 0) {
		format_block(text, sizeof(text), &net);
		return invalid("%s has host bits set; did you mean %s?", pattern, text);
	}
	if ((rc = check_global(&b)) != 0)
		return rc;

	format_block(text, sizeof(text), &b);
	*out = strdup(text);
	return *out ? 0 : out_of_memory();
}

/* ---- regex ---------------------------------------------------------- */

/*
 * Compiles once to prove the pattern is valid and discards the code.  The
 * options are the project's regex dialect (docs/semantics.md): UTF,
 * caseless, and PCRE2_ALT_BSUX + PCRE2_EXTRA_ALT_BSUX for Java's \uhhhh
 * (plus \u{h...}).  Compile cost is bounded by PCRE2 itself: at most
 * ALLOWD_PATTERN_MAX characters in, "regular expression is too large" out.
 */
/*
 * Regex cost.  The engine matches every regex anchored at both ends with
 * PCRE2's match limit (ALLOWD_REGEX_MATCH_LIMIT) per subject, and subjects
 * are at most ALLOWD_REGEX_PROBE_LEN bytes.  A regex that already exhausts
 * that budget on one of a few adversarial subjects of that length -- runs of
 * one character, with and without a non-matching tail -- would be abandoned
 * (never match) on real mail, so it is rejected here, where the client can
 * still fix it: (a+)+$ and .*.*=.* are the classic cases.
 */
static int regex_cost_probe(const char *pattern)
{
	enum { MAX_SEEDS = 12, MAX_TAILS = 11 };
	static const char extra[] = "a0.@-_";
	char seeds[40], subject[ALLOWD_REGEX_PROBE_LEN + 4], tail_buf[40][3];
	const char *tails[MAX_TAILS + 3];
	size_t n_tails;
	pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
	pcre2_match_context *mc = pcre2_match_context_create(NULL);
	pcre2_match_data *md = NULL;
	pcre2_code *code = NULL;
	size_t n_seeds = 0;
	int errcode, rc = 0;
	PCRE2_SIZE off;

	if (!cc || !mc)
		goto oom;
	pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
	code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	                     PCRE2_UTF | PCRE2_CASELESS | PCRE2_ALT_BSUX | PCRE2_ANCHORED |
	                             PCRE2_ENDANCHORED,
	                     &errcode, &off, cc);
	if (!code || !(md = pcre2_match_data_create_from_pattern(code, NULL)))
		goto oom;
	pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	pcre2_set_match_limit(mc, ALLOWD_REGEX_MATCH_LIMIT);
	pcre2_set_depth_limit(mc, ALLOWD_REGEX_DEPTH_LIMIT);
	/* the pattern's own literal characters, then a few common ones */
	for (const char *p = pattern; *p && n_seeds < MAX_SEEDS - 2; p++)
		if (((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '=') &&
		    !memchr(seeds, *p, n_seeds))
			seeds[n_seeds++] = *p;
	for (const char *p = extra; *p && n_seeds < MAX_SEEDS; p++)
		if (!memchr(seeds, *p, n_seeds))
			seeds[n_seeds++] = *p;
	/*
	 * Tails: none; a byte nothing matches; a newline (which '.' refuses);
	 * and each literal followed by a newline, which defeats PCRE2's
	 * required-character shortcut and forces the full backtracking search.
	 */
	n_tails = 0;
	tails[n_tails++] = "";
	tails[n_tails++] = "\x01";
	tails[n_tails++] = "\n";
	for (size_t i = 0; i < n_seeds && n_tails < MAX_TAILS; i++) {
		tail_buf[i][0] = seeds[i];
		tail_buf[i][1] = '\n';
		tail_buf[i][2] = '\0';
		tails[n_tails++] = tail_buf[i];
	}
	for (size_t i = 0; i < n_seeds && i < MAX_SEEDS && !rc; i++) {
		for (size_t t = 0; t < n_tails && !rc; t++) {
			size_t len = ALLOWD_REGEX_PROBE_LEN, tl = strlen(tails[t]);
			int m;
			memset(subject, seeds[i], len);
			memcpy(subject + len, tails[t], tl);
			len += tl;
			m = pcre2_match(code, (PCRE2_SPTR)subject, len, 0, 0, md, mc);
			if (m == PCRE2_ERROR_MATCHLIMIT || m == PCRE2_ERROR_DEPTHLIMIT ||
			    m == PCRE2_ERROR_HEAPLIMIT)
				rc = invalid("regular expression is too costly to match: it "
				             "backtracks catastrophically on %d repeated '%c' "
				             "characters; avoid nested or adjacent unbounded "
				             "quantifiers such as (a+)+ or .*.*",
				             ALLOWD_REGEX_PROBE_LEN, seeds[i]);
		}
	}
	goto done;
oom:
	rc = out_of_memory();
done:
	pcre2_match_data_free(md);
	pcre2_code_free(code);
	pcre2_match_context_free(mc);
	pcre2_compile_context_free(cc);
	return rc;
}

static int regex_pattern(char **out, const char *pattern)
{
	pcre2_compile_context *ctx = NULL;
	pcre2_code *code = NULL;
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE offset = 0;
	int errcode = 0, rc = 0;
	long chars;

	ctx = pcre2_compile_context_create(NULL);
	if (!ctx)
		return out_of_memory();
	pcre2_set_compile_extra_options(ctx, PCRE2_EXTRA_ALT_BSUX);
	code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	                     PCRE2_UTF | PCRE2_CASELESS | PCRE2_ALT_BSUX, &errcode, &offset, ctx);
	if (!code) {
		int m = pcre2_get_error_message(errcode, msg, sizeof(msg));
		if (m < 0 && m != PCRE2_ERROR_NOMEMORY)
			snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", errcode);
		/* PCRE2 reports code units (bytes); clients count characters. */
		chars = allowd_utf8_length(pattern, offset);
		rc = invalid("invalid regular expression at offset %ld: %s",
		             chars >= 0 ? chars : (long)offset, (const char *)msg);
		goto done;
	}
	if ((rc = regex_cost_probe(pattern)))
		goto done;
	*out = strdup(pattern);
	if (!*out)
		rc = out_of_memory();
done:
	pcre2_code_free(code);
	pcre2_compile_context_free(ctx);
	return rc;
}

/* ---- entry points --------------------------------------------------- */

/*
 * Each validator: `out` must not be NULL and is set to NULL first; on
 * success *out holds a malloc'ed normalised form the caller frees.
 * Returns 0, ALLOWD_EINVALID (pointer "/pattern", or "/pattern_type" from
 * allowd_pattern_normalize) or ALLOWD_ERR when memory runs out.  No shared
 * state beyond the thread-local error slot, so safe to call from any thread.
 */
int allowd_pattern_email(char **out, const char *pattern)
{
	int rc;

	*out = NULL;
	if ((rc = check_common(pattern)) != 0)
		return rc;
	return email_pattern(out, pattern);
}

int allowd_pattern_domain(char **out, const char *pattern)
{
	int rc;

	*out = NULL;
	if ((rc = check_common(pattern)) != 0)
		return rc;
	return domain_pattern(out, pattern);
}

int allowd_pattern_ip(char **out, const char *pattern)
{
	int rc;

	*out = NULL;
	if ((rc = check_common(pattern)) != 0)
		return rc;
	return ip_pattern(out, pattern);
}

int allowd_pattern_regex(char **out, const char *pattern)
{
	int rc;

	*out = NULL;
	if ((rc = check_common(pattern)) != 0)
		return rc;
	return regex_pattern(out, pattern);
}

/*
 * The common rules first, then the type: UNKNOWN (readable in stored data,
 * never writable) and values outside the enum fail on "/pattern_type".  A
 * regex is checked as a regex whatever its type.
 */
int allowd_pattern_normalize(char **out, allowd_pattern_type type, bool is_regex,
                             const char *pattern)
{
	int rc;

	*out = NULL;
	if ((rc = check_common(pattern)) != 0)
		return rc;
	if (type == ALLOWD_PATTERN_UNKNOWN)
		return allowd_error_set(ALLOWD_EINVALID, "/pattern_type",
		                        "pattern_type UNKNOWN cannot be written");
	if (type != ALLOWD_PATTERN_EMAIL && type != ALLOWD_PATTERN_DOMAIN &&
	    type != ALLOWD_PATTERN_IP)
		return allowd_error_set(ALLOWD_EINVALID, "/pattern_type",
		                        "pattern_type must be EMAIL, DOMAIN or IP");
	if (is_regex)
		return regex_pattern(out, pattern);
	switch (type) {
	case ALLOWD_PATTERN_EMAIL:
		return email_pattern(out, pattern);
	case ALLOWD_PATTERN_DOMAIN:
		return domain_pattern(out, pattern);
	default:
		return ip_pattern(out, pattern);
	}
}

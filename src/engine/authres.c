/*
 * authres.c - reads Authentication-Results header values (RFC 8601) into
 * allowd_auth_facts: the spf, dkim and dmarc results a trusted authserv-id
 * recorded.  Part of the engine; needs nothing but core/error.  The rules it
 * implements are in docs/semantics.md, "Authentication-Results".
 */
#include "allowd/engine.h"
#include "allowd/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The longest header value read, folding included (Postfix allows 100 KB per header). */
#define VALUE_MAX 65536
/* Comments nest at most this deep; "(((...)))" beyond it is not a header value. */
#define COMMENT_DEPTH_MAX 32
/* Room for a domain as written: 253 octets, a trailing dot, '>', slack. */
#define DOMAIN_RAW 260

/* ---- result keywords ------------------------------------------------ */

static const char *const result_names[] = {
    [ALLOWD_AUTH_NONE] = "none",           [ALLOWD_AUTH_PASS] = "pass",
    [ALLOWD_AUTH_FAIL] = "fail",           [ALLOWD_AUTH_SOFTFAIL] = "softfail",
    [ALLOWD_AUTH_NEUTRAL] = "neutral",     [ALLOWD_AUTH_TEMPERROR] = "temperror",
    [ALLOWD_AUTH_PERMERROR] = "permerror", [ALLOWD_AUTH_POLICY] = "policy",
};

#define N_RESULTS (sizeof(result_names) / sizeof(result_names[0]))

static int lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

/* Whether s[0..n) equals the lower-case literal `lit`, ignoring ASCII case. */
static bool span_is(const char *s, size_t n, const char *lit)
{
	for (size_t i = 0; i < n; i++)
		if (lit[i] == '\0' || lower((unsigned char)s[i]) != lit[i])
			return false;
	return lit[n] == '\0';
}

/*
 * The keyword of a result ("none", "pass", ...), or NULL when `r` is not an
 * allowd_auth_result.  The string is static.
 */
const char *allowd_auth_result_name(allowd_auth_result r)
{
	if ((unsigned)r >= N_RESULTS)
		return NULL;
	return result_names[r];
}

/*
 * Parses the `len` bytes at `s` (no terminator needed) as an RFC 8601
 * result keyword, ignoring ASCII case; "hardfail", the pre-RFC 7001 spelling
 * of an SPF fail, is read as ALLOWD_AUTH_FAIL.  Returns the
 * allowd_auth_result, or -1 for anything else (also when s is NULL).
 */
int allowd_auth_result_parse(const char *s, size_t len)
{
	if (!s)
		return -1;
	for (size_t i = 0; i < N_RESULTS; i++)
		if (span_is(s, len, result_names[i]))
			return (int)i;
	if (span_is(s, len, "hardfail"))
		return ALLOWD_AUTH_FAIL;
	return -1;
}

/* ---- lexical layer -------------------------------------------------- */

/*
 * A cursor over the value: p moves from base towards end and never passes
 * it, so no byte at or beyond end (the terminating NUL) is ever read.  Every
 * lexer function leaves p on the first byte it did not consume.
 */
typedef struct cursor {
	const char *p;
	const char *end;
	const char *base; /* the start of the value, for offsets in messages */
} cursor;

static int syntax_error(const cursor *c, const char *at, const char *what)
{
	return allowd_error_set(ALLOWD_EINVALID, NULL,
	                        "not an Authentication-Results value: %s at offset %zu", what,
	                        (size_t)(at - c->base));
}

/* The byte under the cursor (which is before the end) for messages: "'x'" or "byte 0x07". */
static void describe(char *buf, size_t len, const cursor *c)
{
	unsigned char ch = (unsigned char)*c->p;

	if (ch > 0x20 && ch < 0x7f)
		snprintf(buf, len, "'%c'", ch);
	else
		snprintf(buf, len, "byte 0x%02x", ch);
}

static bool is_ws(unsigned char ch)
{
	/* Folding (CRLF + WSP) and bare CR or LF are all whitespace here. */
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_alnum(unsigned char ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* RFC 2045 token characters, plus non-ASCII bytes (RFC 6532 UTF-8 ids). */
static bool is_token_char(unsigned char ch)
{
	if (ch <= 0x20 || ch == 0x7f)
		return false;
	if (ch >= 0x80)
		return true;
	return strchr("()<>@,;:\\\"/[]?=", ch) == NULL;
}

/* Method, result, ptype and property names: RFC 8601 Keyword, plus '_'. */
static bool is_keyword_char(unsigned char ch)
{
	return is_alnum(ch) || ch == '-' || ch == '_';
}

/*
 * Skips one comment, c->p on its '('.  Comments nest; a quoted pair ("\)")
 * is taken literally; ';', '=' and '"' inside mean nothing.  Iterative: the
 * depth is a counter, bounded by COMMENT_DEPTH_MAX.
 */
static int skip_comment(cursor *c)
{
	const char *open = c->p;
	int depth = 0;
	char msg[64];

	while (c->p < c->end) {
		char ch = *c->p++;
		if (ch == '\\') {
			if (c->p == c->end)
				break;
			c->p++;
		} else if (ch == '(') {
			if (++depth > COMMENT_DEPTH_MAX) {
				snprintf(msg, sizeof(msg), "comments nested deeper than %d levels",
				         COMMENT_DEPTH_MAX);
				return syntax_error(c, c->p - 1, msg);
			}
		} else if (ch == ')') {
			if (--depth == 0)
				return 0;
		}
	}
	return syntax_error(c, open, "unterminated comment");
}

/* Skips CFWS: whitespace (CR and LF included) and comments. */
static int skip_cfws(cursor *c)
{
	while (c->p < c->end) {
		if (is_ws((unsigned char)*c->p)) {
			c->p++;
		} else if (*c->p == '(') {
			int rc = skip_comment(c);
			if (rc)
				return rc;
		} else {
			break;
		}
	}
	return 0;
}

/*
 * Reads a quoted-string, c->p on its opening quote.  *s and *n receive the
 * content as written (quoted pairs not yet undone; the reader below does it).
 */
static int read_quoted(cursor *c, const char **s, size_t *n)
{
	const char *open = c->p;
	const char *start = ++c->p;

	while (c->p < c->end) {
		if (*c->p == '\\') {
			if (c->end - c->p < 2)
				break;
			c->p += 2;
		} else if (*c->p == '"') {
			*s = start;
			*n = (size_t)(c->p - start);
			c->p++;
			return 0;
		} else {
			c->p++;
		}
	}
	return syntax_error(c, open, "unterminated quoted string");
}

static size_t read_keyword(cursor *c, const char **s)
{
	*s = c->p;
	while (c->p < c->end && is_keyword_char((unsigned char)*c->p))
		c->p++;
	return (size_t)(c->p - *s);
}

/* Reads 1*DIGIT; false when there is none.  *one: the number is 1 ("01" is). */
static bool read_version(cursor *c, bool *one)
{
	const char *s = c->p, *q;

	while (c->p < c->end && is_digit((unsigned char)*c->p))
		c->p++;
	if (c->p == s)
		return false;
	for (q = s; q < c->p - 1 && *q == '0'; q++)
		;
	*one = c->p - q == 1 && *q == '1';
	return true;
}

/*
 * A value as written: an optional quoted-string (q, qn; q is NULL when there
 * is none) followed by unquoted text (r, rn).  This covers token, dot-atom,
 * quoted-string, "@domain", local@domain and "quoted local"@domain.
 */
typedef struct pvalue {
	const char *q;
	size_t qn;
	const char *r;
	size_t rn;
	bool set;
} pvalue;

/*
 * Unquoted text runs to whitespace, a comment, ';' or a quote.  Liberal on
 * purpose: header.b base64 carries '/', '+' and '=', Fastmail writes
 * "smtp.bits=256/256".
 */
static bool is_run_char(unsigned char ch)
{
	return !is_ws(ch) && ch != '(' && ch != ')' && ch != ';' && ch != '"';
}

static int read_pvalue(cursor *c, pvalue *v)
{
	memset(v, 0, sizeof(*v));
	v->set = true;
	if (c->p < c->end && *c->p == '"') {
		int rc = read_quoted(c, &v->q, &v->qn);
		if (rc)
			return rc;
		v->r = c->p;
		if (c->p == c->end || *c->p != '@')
			return 0;
	}
	v->r = c->p;
	while (c->p < c->end && is_run_char((unsigned char)*c->p))
		c->p++;
	v->rn = (size_t)(c->p - v->r);
	return 0;
}

/* Yields the bytes of a pvalue with quoted pairs undone and folding removed. */
typedef struct reader {
	const char *q, *qend;
	const char *r, *rend;
} reader;

static void reader_init(reader *rd, const pvalue *v)
{
	rd->q = v->q;
	rd->qend = v->q ? v->q + v->qn : NULL;
	rd->r = v->r;
	rd->rend = v->r ? v->r + v->rn : NULL;
}

static int reader_next(reader *rd)
{
	while (rd->q && rd->q < rd->qend) {
		unsigned char ch = (unsigned char)*rd->q++;
		if (ch == '\r' || ch == '\n')
			continue;
		if (ch == '\\' && rd->q < rd->qend)
			ch = (unsigned char)*rd->q++;
		return ch;
	}
	if (rd->r && rd->r < rd->rend)
		return (unsigned char)*rd->r++;
	return -1;
}

/* ---- domains -------------------------------------------------------- */

typedef enum dom_status {
	DOM_ABSENT = 0, /* the property is not there */
	DOM_EMPTY,      /* there, but names no domain: "", "<>", "@" */
	DOM_OK,
	DOM_BAD, /* too long or not a domain: the result is not used */
} dom_status;

/*
 * The domain a property value names: the part after the last '@' of an
 * address, or the whole value; one pair of angle brackets and one trailing
 * dot dropped, ASCII lower-cased.  A name longer than 253 octets, with an
 * empty label or with characters other than letters, digits, '-', '_' and
 * non-ASCII bytes is DOM_BAD, never truncated into some other domain.
 */
static dom_status extract_domain(const pvalue *v, char out[ALLOWD_DOMAIN_MAX])
{
	char raw[DOMAIN_RAW];
	size_t n = 0;
	bool overflow = false, angle = false, first = true;
	reader rd;
	int ch;

	reader_init(&rd, v);
	while ((ch = reader_next(&rd)) >= 0) {
		if (first) {
			first = false;
			if (ch == '<') {
				angle = true;
				continue;
			}
		}
		if (ch == '@') {
			n = 0;
			overflow = false;
		} else if (n == sizeof(raw)) {
			overflow = true;
		} else {
			raw[n++] = (char)ch;
		}
	}
	if (overflow)
		return DOM_BAD;
	if (angle) {
		if (n == 0 || raw[n - 1] != '>')
			return DOM_BAD;
		n--;
	}
	if (n > 0 && raw[n - 1] == '.')
		n--;
	if (n == 0)
		return DOM_EMPTY;
	if (n >= ALLOWD_DOMAIN_MAX)
		return DOM_BAD;
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)raw[i];
		if (b == '.') {
			if (i == 0 || i == n - 1 || raw[i - 1] == '.')
				return DOM_BAD;
		} else if (!is_alnum(b) && b != '-' && b != '_' && b < 0x80) {
			return DOM_BAD;
		}
		out[i] = (char)lower(b);
	}
	out[n] = '\0';
	return DOM_OK;
}

/* ---- resinfo -------------------------------------------------------- */

enum { METHOD_OTHER, METHOD_SPF, METHOD_DKIM, METHOD_DMARC };

/* The properties allowd reads; every other one is skipped. */
enum { PROP_MAILFROM, PROP_HELO, PROP_D, PROP_I, PROP_FROM, PROP_COUNT };

static const struct {
	const char *ptype;
	const char *property;
} props[PROP_COUNT] = {
    [PROP_MAILFROM] = {"smtp", "mailfrom"},
    [PROP_HELO] = {"smtp", "helo"},
    [PROP_D] = {"header", "d"},
    [PROP_I] = {"header", "i"},
    [PROP_FROM] = {"header", "from"},
};

typedef struct resinfo {
	bool empty;       /* "", or the no-result "none" */
	int method;       /* METHOD_* */
	bool version_one; /* no method-version, or version 1 */
	int result;       /* allowd_auth_result, or -1 for a keyword allowd does not know */
	pvalue prop[PROP_COUNT];
} resinfo;

/* parse_resinfo's outcomes besides a negative error code. */
enum { RES_OK = 0, RES_MALFORMED = 1 };

static int method_of(const char *s, size_t n)
{
	if (span_is(s, n, "spf"))
		return METHOD_SPF;
	if (span_is(s, n, "dkim"))
		return METHOD_DKIM;
	if (span_is(s, n, "dmarc"))
		return METHOD_DMARC;
	return METHOD_OTHER;
}

static int prop_of(const char *ptype, size_t np, const char *property, size_t nq)
{
	for (int i = 0; i < PROP_COUNT; i++)
		if (span_is(ptype, np, props[i].ptype) && span_is(property, nq, props[i].property))
			return i;
	return -1;
}

/*
 * Parses one resinfo after its ';' (or, for the Microsoft 365 form, the first
 * one, which has none):
 *
 *   [CFWS] method [CFWS "/" CFWS version] CFWS "=" CFWS result
 *          *( CFWS ( ptype CFWS "." CFWS property CFWS "=" CFWS pvalue
 *                  / name CFWS "=" CFWS pvalue ) ) CFWS
 *
 * The second property form covers reasonspec ("reason=...") and the
 * properties without a ptype that Microsoft ("action=none") and Fastmail
 * ("x-bits=2048") write.  The whole grammar is read for every method, known
 * or not.  Returns RES_OK with c->p on ';' or at the end, RES_MALFORMED with
 * c->p somewhere inside (the caller resynchronises), or ALLOWD_EINVALID for a
 * lexical error (an unbalanced comment or quote) that makes resynchronising
 * impossible.
 */
static int parse_resinfo(cursor *c, resinfo *ri)
{
	const char *kw, *kw2;
	size_t n, n2;
	bool versioned = false;
	pvalue v;
	int rc, slot;

	memset(ri, 0, sizeof(*ri));
	ri->result = -1;
	ri->version_one = true;
	if ((rc = skip_cfws(c)))
		return rc;
	if (c->p == c->end || *c->p == ';') {
		ri->empty = true;
		return RES_OK;
	}
	if ((n = read_keyword(c, &kw)) == 0)
		return RES_MALFORMED;
	if ((rc = skip_cfws(c)))
		return rc;
	if (c->p < c->end && *c->p == '/') {
		c->p++;
		versioned = true;
		if ((rc = skip_cfws(c)))
			return rc;
		if (!read_version(c, &ri->version_one))
			return RES_MALFORMED;
		if ((rc = skip_cfws(c)))
			return rc;
	}
	if (c->p == c->end || *c->p == ';') {
		if (!versioned && span_is(kw, n, "none")) {
			ri->empty = true;
			return RES_OK;
		}
		return RES_MALFORMED;
	}
	if (*c->p != '=')
		return RES_MALFORMED;
	c->p++;
	ri->method = method_of(kw, n);
	if ((rc = skip_cfws(c)))
		return rc;
	if ((n = read_keyword(c, &kw)) == 0)
		return RES_MALFORMED;
	ri->result = allowd_auth_result_parse(kw, n);

	for (;;) {
		if ((rc = skip_cfws(c)))
			return rc;
		if (c->p == c->end || *c->p == ';')
			return RES_OK;
		if ((n = read_keyword(c, &kw)) == 0)
			return RES_MALFORMED;
		if ((rc = skip_cfws(c)))
			return rc;
		if (c->p == c->end)
			return RES_MALFORMED;
		slot = -1;
		if (*c->p == '.') {
			c->p++;
			if ((rc = skip_cfws(c)))
				return rc;
			if ((n2 = read_keyword(c, &kw2)) == 0)
				return RES_MALFORMED;
			if ((rc = skip_cfws(c)))
				return rc;
			if (c->p == c->end || *c->p != '=')
				return RES_MALFORMED;
			slot = prop_of(kw, n, kw2, n2);
		} else if (*c->p != '=') {
			return RES_MALFORMED;
		}
		c->p++;
		if ((rc = skip_cfws(c)))
			return rc;
		if ((rc = read_pvalue(c, &v)))
			return rc;
		/* A property given twice: the first one counts. */
		if (slot >= 0 && !ri->prop[slot].set)
			ri->prop[slot] = v;
	}
}

/*
 * Skips the rest of a malformed resinfo up to the next ';' that is outside
 * comments and quoted strings.  Fails only where that ';' cannot be told
 * apart: an unbalanced comment or quote, or a stray ')'.
 */
static int resync(cursor *c)
{
	const char *s;
	size_t n;
	int rc;

	while (c->p < c->end && *c->p != ';') {
		switch (*c->p) {
		case '(':
			if ((rc = skip_comment(c)))
				return rc;
			break;
		case '"':
			if ((rc = read_quoted(c, &s, &n)))
				return rc;
			break;
		case ')':
			return syntax_error(c, c->p, "')' without a matching '('");
		default:
			c->p++;
		}
	}
	return 0;
}

/* ---- merging -------------------------------------------------------- */

/* The domain of `primary`, or of `fallback` when primary names none. */
static dom_status pick_domain(const resinfo *ri, int primary, int fallback,
                              char out[ALLOWD_DOMAIN_MAX])
{
	dom_status st = DOM_ABSENT;

	if (ri->prop[primary].set)
		st = extract_domain(&ri->prop[primary], out);
	if ((st == DOM_ABSENT || st == DOM_EMPTY) && fallback >= 0 && ri->prop[fallback].set)
		st = extract_domain(&ri->prop[fallback], out);
	if (st != DOM_OK)
		out[0] = '\0';
	return st;
}

/* spf and dmarc: the new result replaces a "none", and a pass replaces anything. */
static void merge_single(allowd_auth_check *dst, allowd_auth_result r,
                         const char dom[ALLOWD_DOMAIN_MAX])
{
	if (dst->result != ALLOWD_AUTH_NONE && r != ALLOWD_AUTH_PASS)
		return;
	dst->result = r;
	memcpy(dst->domain, dom, sizeof(dst->domain));
}

/* dkim: appended, up to ALLOWD_DKIM_MAX; an identical result already held is not repeated. */
static void merge_dkim(allowd_auth_facts *f, allowd_auth_result r,
                       const char dom[ALLOWD_DOMAIN_MAX])
{
	size_t n = f->n_dkim < ALLOWD_DKIM_MAX ? f->n_dkim : ALLOWD_DKIM_MAX;

	for (size_t i = 0; i < n; i++)
		if (f->dkim[i].result == r && strcmp(f->dkim[i].domain, dom) == 0)
			return;
	if (f->n_dkim >= ALLOWD_DKIM_MAX)
		return;
	f->dkim[f->n_dkim].result = r;
	memcpy(f->dkim[f->n_dkim].domain, dom, sizeof(f->dkim[0].domain));
	f->n_dkim++;
}

static void apply(allowd_auth_facts *f, const resinfo *ri)
{
	char dom[ALLOWD_DOMAIN_MAX] = "";
	dom_status st;

	if (ri->empty || ri->method == METHOD_OTHER || !ri->version_one || ri->result < 0)
		return;
	switch (ri->method) {
	case METHOD_SPF:
		st = pick_domain(ri, PROP_MAILFROM, PROP_HELO, dom);
		break;
	case METHOD_DKIM:
		st = pick_domain(ri, PROP_D, PROP_I, dom);
		break;
	default:
		st = pick_domain(ri, PROP_FROM, -1, dom);
		break;
	}
	if (st == DOM_BAD)
		return;
	if (ri->method == METHOD_SPF)
		merge_single(&f->spf, (allowd_auth_result)ri->result, dom);
	else if (ri->method == METHOD_DMARC)
		merge_single(&f->dmarc, (allowd_auth_result)ri->result, dom);
	else
		merge_dkim(f, (allowd_auth_result)ri->result, dom);
}

/* ---- the header ----------------------------------------------------- */

/* Skips "Authentication-Results:" (any case, blanks before the colon) if it is there. */
static void skip_field_name(cursor *c)
{
	static const char name[] = "authentication-results";
	const size_t len = sizeof(name) - 1;
	const char *p = c->p;

	while (p < c->end && (*p == ' ' || *p == '\t'))
		p++;
	if ((size_t)(c->end - p) < len || !span_is(p, len, name))
		return;
	p += len;
	while (p < c->end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < c->end && *p == ':')
		c->p = p + 1;
}

/*
 * Whether the authserv-id is one of `trusted`, ignoring ASCII case.  `no_id`:
 * the header has no authserv-id (the Microsoft 365 form), which only an
 * empty string in `trusted` matches.
 */
static bool is_trusted(const pvalue *id, bool no_id, const char *const *trusted, size_t n_trusted)
{
	if (!trusted)
		return false;
	for (size_t i = 0; i < n_trusted; i++) {
		const char *t = trusted[i];
		reader rd;
		size_t k = 0;
		int ch;

		if (!t)
			continue;
		if (no_id) {
			if (*t == '\0')
				return true;
			continue;
		}
		reader_init(&rd, id);
		while ((ch = reader_next(&rd)) >= 0 && t[k] != '\0' &&
		       lower(ch) == lower((unsigned char)t[k]))
			k++;
		if (ch < 0 && t[k] == '\0')
			return true;
	}
	return false;
}

/*
 * Parses one Authentication-Results header value and merges its spf, dkim
 * and dmarc results into *facts when its authserv-id is trusted.
 *
 *   value   the field body, NUL-terminated, at most 64 KiB; folded or not;
 *           an "Authentication-Results:" name in front is skipped.
 *   trusted n_trusted authserv-ids (NULL entries skipped; "" trusts the
 *           Microsoft 365 form, which has no authserv-id).  None: nothing
 *           is trusted.
 *
 * The authserv-id part ("id [version]" then ';' or the end) is always
 * checked.  An untrusted id, or an authres-version other than 1, returns 0
 * at once: the rest, which whoever wrote the header controls, is not looked
 * at.  For a trusted id every resinfo is read; one that is malformed is
 * skipped up to the next ';' and the others still count.
 *
 * Returns 0 (also when the header is ignored) or ALLOWD_EINVALID with a
 * message naming the offset: an empty value, no authserv-id, text after it
 * that is not ';', an unbalanced comment or quoted string, comments nested
 * deeper than 32, a value over 64 KiB.  On error *facts is unchanged.
 * Thread-safe; allocates nothing.
 */
int allowd_authres_parse(allowd_auth_facts *facts, const char *value, const char *const *trusted,
                         size_t n_trusted)
{
	allowd_auth_facts staged;
	cursor c;
	pvalue id;
	resinfo ri;
	size_t len;
	bool no_id = false, one = true, first = true;
	char found[32], msg[96];
	const char *start;
	int rc, res;

	if (!facts || !value)
		return allowd_error_set(ALLOWD_EINVALID, NULL,
		                        "no Authentication-Results value to parse");
	len = strnlen(value, VALUE_MAX + 1);
	if (len > VALUE_MAX)
		return allowd_error_set(ALLOWD_EINVALID, NULL,
		                        "Authentication-Results value is longer than %d bytes",
		                        VALUE_MAX);
	c.p = c.base = value;
	c.end = value + len;
	skip_field_name(&c);
	if ((rc = skip_cfws(&c)))
		return rc;
	if (c.p == c.end)
		return syntax_error(&c, c.p, "the value is empty (comments only, at most)");

	memset(&id, 0, sizeof(id));
	start = c.p;
	if (*c.p == '"') {
		reader rd;
		if ((rc = read_quoted(&c, &id.q, &id.qn)))
			return rc;
		reader_init(&rd, &id);
		if (reader_next(&rd) < 0)
			return syntax_error(&c, start, "the authserv-id is empty");
	} else {
		id.r = c.p;
		while (c.p < c.end && is_token_char((unsigned char)*c.p))
			c.p++;
		id.rn = (size_t)(c.p - id.r);
		if (id.rn == 0) {
			describe(found, sizeof(found), &c);
			snprintf(msg, sizeof(msg), "no authserv-id: found %s where it belongs",
			         found);
			return syntax_error(&c, c.p, msg);
		}
	}
	if ((rc = skip_cfws(&c)))
		return rc;
	if (!id.q && c.p < c.end && (*c.p == '=' || *c.p == '/')) {
		/* "spf=pass ...": Microsoft 365 writes no authserv-id. */
		no_id = true;
		c.p = start;
	} else if (c.p < c.end && is_digit((unsigned char)*c.p)) {
		read_version(&c, &one);
		if ((rc = skip_cfws(&c)))
			return rc;
	}
	/* a header from an untrusted authserv-id is ignored, whatever follows */
	if (!is_trusted(&id, no_id, trusted, n_trusted))
		return 0;
	if (!no_id && c.p < c.end && *c.p != ';') {
		describe(found, sizeof(found), &c);
		snprintf(msg, sizeof(msg), "expected ';' after the authserv-id, found %s", found);
		return syntax_error(&c, c.p, msg);
	}
	if (!one || !is_trusted(&id, no_id, trusted, n_trusted))
		return 0;

	staged = *facts;
	for (;;) {
		/* Each resinfo starts after a ';', except the first of the no-id form. */
		if (!first || !no_id) {
			if ((rc = skip_cfws(&c)))
				return rc;
			if (c.p == c.end)
				break;
			if (*c.p != ';') /* parse_resinfo and resync stop on ';' */
				return syntax_error(&c, c.p, "expected ';'");
			c.p++;
		}
		first = false;
		res = parse_resinfo(&c, &ri);
		if (res < 0)
			return res;
		if (res == RES_MALFORMED) {
			if ((rc = resync(&c)))
				return rc;
			continue;
		}
		apply(&staged, &ri);
	}
	*facts = staged;
	return 0;
}

/*
 * engine.c - what every evaluation shares: names, options, the prepared
 * message (addresses normalised once), verification of matched identities
 * and the effects that turn matches into a decision.
 */
#include "engine/engine_int.h"
#include "allowd/error.h"
#include "allowd/netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <idn2.h>
#include <libpsl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---------------------------------------------------------- */

static const char *const disp_names[ALLOWD_DISP_COUNT] = {
	"MALICIOUS", "MALICIOUS-BEC", "SUSPICIOUS", "SPOOF",
	"SPAM",      "BULK",          "ENCRYPTED",  "EXTERNAL",
	"NONE",
};

const char *allowd_disposition_name(unsigned d)
{
	for (int i = 0; i < ALLOWD_DISP_COUNT; i++)
		if (d == 1u << i)
			return disp_names[i];
	return NULL;
}

unsigned allowd_disposition_parse(const char *s)
{
	for (int i = 0; i < ALLOWD_DISP_COUNT; i++)
		if (strcmp(s, disp_names[i]) == 0)
			return 1u << i;
	return 0;
}

static const char *const field_names[] = {"envelope_from", "header_from", "reply_to",
					  "recipient",     "client_ip",   "server_name"};

const char *allowd_field_name(allowd_field f)
{
	if ((unsigned)f < sizeof(field_names) / sizeof(field_names[0]))
		return field_names[f];
	return "unknown";
}

void allowd_engine_options_init(allowd_engine_options *o)
{
	memset(o, 0, sizeof(*o));
	o->subaddress_delimiter = '+';
	o->regex_match_limit = ALLOWD_REGEX_MATCH_LIMIT;
	o->regex_depth_limit = ALLOWD_REGEX_DEPTH_LIMIT;
	o->use_prefilter = 1;
}

void allowd_budget_init(allowd_budget *b, uint32_t limit_ms)
{
	b->limit_us = (int64_t)limit_ms * 1000;
	b->used_us = 0;
	b->exhausted = 0;
}

/* ---- the keyed hash ------------------------------------------------- */

/*
 * NH hashing (Black et al., "UMAC: Fast and Secure Message Authentication",
 * 1999): the input is read as 64-bit words w[i], each split into 32-bit
 * halves, and h = k0 + sum(((lo(w[i]) + k[2i]) mod 2^32) *
 * ((hi(w[i]) + k[2i+1]) mod 2^32)) + k_len * len (mod 2^64), with keys drawn
 * at random once per process.  For two different inputs of the same length
 * the chance (over the keys) that the sums collide is at most 2^-32
 * whatever the inputs; for different lengths the k_len term alone keeps it
 * below 2^-55.  So an account owner who does not know the keys cannot choose
 * patterns that collide, which is what the tables need (a fixed hash such as
 * FNV has collisions that can be computed offline).  The last word is the
 * input's last eight bytes, overlapping the one before it (inputs of one
 * length are still read as different word sequences); an input shorter
 * than eight bytes is zero-padded.  The sum's low bits are weaker than its
 * high bits, so a fixed bijective mixer (MurmurHash3's finaliser) spreads
 * them before the low bits index a table.  It costs a multiply per eight
 * bytes: an address hashes in a fifth of SipHash-2-4's time (SipHash was the
 * largest cost of an exact lookup, then a multiply per four bytes the
 * largest part of what was left).  Longer inputs (never an address or a
 * domain the engine matches) take SipHash-2-4 under the same process key.
 */
#define HASH_WORDS 40 /* 320 bytes: ALLOWD_SUBJECT_MAX + 1 */

static uint64_t hash_keys[2 * HASH_WORDS + 2];
static unsigned char hash_sip_key[crypto_shorthash_KEYBYTES];
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static atomic_int hash_ready; /* set (release) once the keys are drawn */

static void hash_key_init(void)
{
	if (sodium_init() < 0)
		abort(); /* no entropy source: nothing in allowd can work */
	randombytes_buf(hash_keys, sizeof(hash_keys));
	randombytes_buf(hash_sip_key, sizeof(hash_sip_key));
	atomic_store_explicit(&hash_ready, 1, memory_order_release);
}

/* One NH term: the word's halves, each plus its key mod 2^32, multiplied. */
static inline uint64_t nh_term(uint64_t w, const uint64_t *k)
{
	return (uint64_t)(uint32_t)((uint32_t)w + (uint32_t)k[0]) *
	       (uint64_t)(uint32_t)((uint32_t)(w >> 32) + (uint32_t)k[1]);
}

/* Inputs too long for the NH keys; apart so that the common path saves no registers. */
__attribute__((noinline, cold)) static uint64_t hash_long(const void *data, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, data, len, hash_sip_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

/* MurmurHash3's finaliser: a bijection that spreads the sum's high bits down. */
static inline uint64_t hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t engine_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	const uint64_t *k = hash_keys + 1;
	uint64_t h, w = 0;
	size_t i = 0;

	if (!atomic_load_explicit(&hash_ready, memory_order_acquire))
		pthread_once(&hash_once, hash_key_init);
	if (len > HASH_WORDS * 8)
		return hash_long(p, len);
	h = hash_keys[0] + hash_keys[2 * HASH_WORDS + 1] * (uint64_t)len;
	if (len < 8) {
		for (; i < len; i++) /* zero-padded, as a little-endian load would read */
			w |= (uint64_t)p[i] << (8 * i);
		h += nh_term(w, k);
	} else {
		for (; i + 8 < len; i += 8, k += 2) {
			memcpy(&w, p + i, 8);
			h += nh_term(w, k);
		}
		memcpy(&w, p + len - 8, 8); /* the last eight bytes, maybe overlapping */
		h += nh_term(w, k);
	}
	return hash_mix(h);
}

void allowd_decision_clear(allowd_decision *d)
{
	if (!d)
		return;
	if (d->storage) {
		free(d->storage);
	} else {
		for (size_t i = 0; i < d->n_matches; i++)
			free(d->matches[i].value);
		free(d->matches);
		free(d->recipients);
	}
	memset(d, 0, sizeof(*d));
}

/* ---- normalisation -------------------------------------------------- */

/* tolower() of the "C" locale (allowd never calls setlocale), without the call. */
static inline char lower(unsigned char c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

int engine_domain(char *out, size_t len, const char *raw)
{
	size_t n = strlen(raw), i;
	int ascii = 1;

	if (n && raw[n - 1] == '.')
		n--;
	if (n == 0)
		return -1;
	for (i = 0; i < n; i++)
		if ((unsigned char)raw[i] >= 0x80)
			ascii = 0;
	if (ascii) {
		if (n >= len)
			return -1;
		/* the fast path: case folding only; no IDNA work for ASCII names */
		for (i = 0; i < n; i++)
			out[i] = lower((unsigned char)raw[i]);
		out[n] = '\0';
		return 0;
	} else {
		/* the limit is on the result: mapping can shorten (U+200B vanishes) */
		char tmp[4 * ADDR_MAX], *alabel = NULL;
		size_t alen;
		if (n >= sizeof(tmp))
			return -1;
		memcpy(tmp, raw, n);
		tmp[n] = '\0';
		if (idn2_lookup_u8((const uint8_t *)tmp, (uint8_t **)&alabel, IDN2_NONTRANSITIONAL) !=
		    IDN2_OK)
			return -1;
		alen = strlen(alabel);
		if (alen && alabel[alen - 1] == '.') /* a mapped full stop, such as U+3002 */
			alabel[--alen] = '\0';
		if (alen == 0) {
			idn2_free(alabel);
			return -1;
		}
		if (alen >= len) {
			idn2_free(alabel);
			return -1;
		}
		for (i = 0; i <= alen; i++)
			out[i] = (char)tolower((unsigned char)alabel[i]);
		idn2_free(alabel);
		return 0;
	}
}

int allowd_domain_normalize(char *out, size_t len, const char *raw)
{
	return engine_domain(out, len, raw);
}

/*
 * ASCII upper case to lower case in eight bytes at once; bytes >= 0x80 (and
 * everything else outside A-Z) are kept.  Each byte's high bit is used as a
 * flag: for a byte b < 0x80, b + (0x80 - 'A') has it set when b >= 'A' and
 * b + (0x80 - 'Z' - 1) when b > 'Z'; neither sum carries into the next byte.
 */
static inline uint64_t lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t b = x & ~high;
	uint64_t ge_a = b + ones * (0x80 - 'A'), gt_z = b + ones * (0x80 - 'Z' - 1);
	uint64_t upper = ge_a & ~gt_z & ~x & high;
	return x | (upper >> 2); /* 0x80 >> 2 == 0x20 == 'a' - 'A' */
}

/*
 * Copies n bytes of src to dst lower-cased (ASCII) and returns
 * engine_hash(dst, n), computed in the same pass: the copy goes eight bytes
 * at a time, the last eight overlapping, which are exactly the words the
 * hash reads.
 */
static inline uint64_t lower_copy_hash(char *dst, const char *src, size_t n)
{
	const uint64_t *k = hash_keys + 1;
	uint64_t h, w;
	size_t i = 0;

	if (n < 8 || n > HASH_WORDS * 8) {
		for (; i < n; i++)
			dst[i] = lower((unsigned char)src[i]);
		return engine_hash(dst, n);
	}
	if (!atomic_load_explicit(&hash_ready, memory_order_acquire))
		pthread_once(&hash_once, hash_key_init);
	h = hash_keys[0] + hash_keys[2 * HASH_WORDS + 1] * (uint64_t)n;
	for (; i + 8 < n; i += 8, k += 2) {
		memcpy(&w, src + i, 8);
		w = lower8(w);
		memcpy(dst + i, &w, 8);
		h += nh_term(w, k);
	}
	memcpy(&w, src + n - 8, 8); /* lower-casing a byte twice is harmless */
	w = lower8(w);
	memcpy(dst + n - 8, &w, 8);
	return hash_mix(h + nh_term(w, k));
}

/* Any byte >= 0x80 in s[0..n)? */
static inline int has_high(const char *s, size_t n)
{
	uint64_t any = 0, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		any |= w;
	}
	if (i < n && n >= 8) {
		memcpy(&w, s + n - 8, 8);
		any |= w;
	} else {
		for (; i < n; i++)
			any |= (unsigned char)s[i];
	}
	return (any & 0x8080808080808080ULL) != 0;
}

/*
 * The other hashes and the subaddress key of an address whose norm, domain
 * and h_norm are set.
 */
static void address_keys(eaddr *a, size_t local_len, size_t dl, char delim, int sender)
{
	a->norm_len = (uint16_t)(local_len + 1 + dl);
	a->domain_len = (uint16_t)dl;
	a->h_domain = sender ? engine_hash(a->domain, dl) : 0; /* only senders probe domains */
	a->h_sub = 0;
	a->sub_len = 0;
	if (delim) {
		const char *d = memchr(a->norm, lower((unsigned char)delim), local_len);
		if (d && d != a->norm) {
			size_t base = (size_t)(d - a->norm);
			memcpy(a->sub, a->norm, base);
			a->sub[base] = '@';
			memcpy(a->sub + base + 1, a->domain, dl + 1);
			a->sub_len = (uint16_t)(base + 1 + dl);
			a->h_sub = engine_hash(a->sub, a->sub_len);
		}
	}
}

/*
 * The general path: any length, IDN domains.  engine_address takes it for
 * what its one-pass path does not handle.
 */
static void address_slow(eaddr *a, const char *raw, char delim, int sender)
{
	const char *at;
	size_t local_len, i;

	if (!(at = strrchr(raw, '@')) || at == raw)
		return;
	local_len = (size_t)(at - raw);
	if (local_len + 2 >= sizeof(a->norm))
		return;
	for (i = 0; i < local_len; i++)
		a->norm[i] = lower((unsigned char)raw[i]);
	a->norm[local_len] = '@';
	if (engine_domain(a->norm + local_len + 1, sizeof(a->norm) - local_len - 1, at + 1)) {
		a->norm[0] = '\0';
		return;
	}
	a->domain = a->norm + local_len + 1;
	a->ok = 1;
	a->h_norm = engine_hash(a->norm, strlen(a->norm));
	address_keys(a, local_len, strlen(a->domain), delim, sender);
}

/*
 * An address is normalised in one pass when it fits the buffer and its
 * domain is ASCII (every address of ordinary mail): the whole text is
 * copied lower-cased eight bytes at a time, and hashed as it goes -- the
 * local part is lower-cased by the same rule as the domain's ASCII case
 * folding -- and the domain's one trailing dot dropped.  That gives the
 * same result as address_slow: for a text of at most sizeof(norm) - 1 bytes
 * the length checks there cannot fail.
 */
void engine_address(eaddr *a, const char *raw, char delim, int sender)
{
	size_t len, local_len, dl;
	const char *at;

	a->raw = raw;
	a->ok = 0;
	a->norm[0] = a->sub[0] = '\0';
	a->norm_len = a->sub_len = a->domain_len = 0;
	a->domain = a->norm;
	if (!raw || !*raw)
		return;
	len = strnlen(raw, sizeof(a->norm));
	if (len == sizeof(a->norm)) {
		address_slow(a, raw, delim, sender);
		return;
	}
	if (!(at = memrchr(raw, '@', len)) || at == raw)
		return;
	local_len = (size_t)(at - raw);
	dl = len - local_len - 1;
	if (has_high(at + 1, dl)) {
		address_slow(a, raw, delim, sender);
		return;
	}
	if (dl && at[dl] == '.')
		dl--;
	if (dl == 0)
		return;
	a->h_norm = lower_copy_hash(a->norm, raw, local_len + 1 + dl);
	a->norm[local_len + 1 + dl] = '\0';
	a->domain = a->norm + local_len + 1;
	a->ok = 1;
	address_keys(a, local_len, dl, delim, sender);
}

const char *engine_org_domain(const char *domain)
{
	static const psl_ctx_t *psl;
	const char *r;

	if (!psl)
		psl = psl_builtin(); /* static data: racing first calls store the same pointer */
	r = psl ? psl_registrable_domain(psl, domain) : NULL;
	return r ? r : domain;
}

/* ---- the prepared message ------------------------------------------- */

/* in, with its domain normalised (at most 253 bytes of it are read), into out. */
static void norm_check(allowd_auth_check *out, const allowd_auth_check *in)
{
	char raw[ALLOWD_DOMAIN_MAX];
	size_t n = strnlen(in->domain, sizeof(in->domain) - 1);
	const char *src = in->domain;

	out->result = in->result;
	if (!n) {
		out->domain[0] = '\0';
		return;
	}
	if (in->domain[n] != '\0') { /* 253 bytes and no terminator: only those count */
		memcpy(raw, in->domain, n);
		raw[n] = '\0';
		src = raw;
	}
	if (engine_domain(out->domain, sizeof(out->domain), src))
		out->domain[0] = '\0'; /* not a domain: it verifies nothing */
}

int engine_prepare(eprepared *p, const allowd_message *m, char delim,
		   const allowd_snapshot *warm)
{
	size_t n = 2 + m->n_reply_to, k = 0;

	/*
	 * No memset: the inline arrays are large and written before they are
	 * read.  The auth facts follow the fields read here; their first line is
	 * what a verified sender match reads first.
	 */
	__builtin_prefetch(&m->auth.spf);
	p->m = m;
	p->has_auth = 0;
	p->n_senders = p->n_recipients = 0;
	p->has_ip = p->has_ip_text = p->has_server = 0;
	p->ip_state = p->server_state = 0; /* computed when a snapshot needs them */
	p->ipq_for = NULL;
	p->budget = m->budget;
	if (warm) /* the IP slots first: their misses overlap with the addresses' work */
		engine_snapshot_warm_ip(warm, p);
	if (n <= 4) {
		p->senders = p->inline_senders;
		p->sender_field = p->inline_field;
		p->sender_index = p->inline_index;
	} else {
		p->senders = malloc(n * sizeof(*p->senders));
		p->sender_field = malloc(n * sizeof(*p->sender_field));
		p->sender_index = malloc(n * sizeof(*p->sender_index));
	}
	p->recipients = m->n_recipients <= 4 ? p->inline_recipients
					     : malloc(m->n_recipients * sizeof(*p->recipients));
	if (!p->senders || !p->sender_field || !p->sender_index || !p->recipients) {
		engine_prepared_free(p);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	/*
	 * Ask for every address's text at once, so that when the message is not
	 * in the cache its misses overlap instead of coming one per address.
	 */
	if (m->envelope_from)
		__builtin_prefetch(m->envelope_from);
	if (m->header_from)
		__builtin_prefetch(m->header_from);
	for (size_t i = 0; i < m->n_reply_to && i < 4; i++)
		__builtin_prefetch(m->reply_to[i]);
	for (size_t i = 0; i < m->n_recipients && i < 4; i++)
		__builtin_prefetch(m->recipients[i]);
	if (m->client_ip)
		__builtin_prefetch(m->client_ip);
	if (m->envelope_from && *m->envelope_from) {
		engine_address(&p->senders[k], m->envelope_from, delim, 1);
		if (warm)
			engine_snapshot_warm(warm, &p->senders[k], 1);
		p->sender_field[k] = ALLOWD_FIELD_ENVELOPE_FROM;
		p->sender_index[k++] = 0;
	}
	if (m->header_from && *m->header_from) {
		engine_address(&p->senders[k], m->header_from, delim, 1);
		if (warm)
			engine_snapshot_warm(warm, &p->senders[k], 1);
		p->sender_field[k] = ALLOWD_FIELD_HEADER_FROM;
		p->sender_index[k++] = 0;
	}
	for (size_t i = 0; i < m->n_reply_to; i++) {
		if (!m->reply_to[i] || !*m->reply_to[i])
			continue;
		engine_address(&p->senders[k], m->reply_to[i], delim, 1);
		if (warm)
			engine_snapshot_warm(warm, &p->senders[k], 1);
		p->sender_field[k] = ALLOWD_FIELD_REPLY_TO;
		p->sender_index[k++] = i;
	}
	p->n_senders = k;
	for (size_t i = 0; i < m->n_recipients; i++) {
		engine_address(&p->recipients[i], m->recipients[i] ? m->recipients[i] : "", delim,
			       0);
		if (warm)
			engine_snapshot_warm(warm, &p->recipients[i], 0);
	}
	p->n_recipients = m->n_recipients;
	p->dispositions = m->dispositions & ALLOWD_DISP_ALL;
	if (!p->dispositions)
		p->dispositions = ALLOWD_DISP_VERDICTS;
	return 0;
}

/*
 * A strict dotted quad, exactly what inet_pton(AF_INET) accepts: four
 * decimal numbers 0-255 without leading zeros, separated by single dots,
 * nothing before or after.  tests/unit/engine/test_prepare.c compares the
 * two on tricky and random inputs.
 */
int engine_ipv4_parse(uint8_t out[4], const char *s)
{
	for (int o = 0; o < 4; o++) {
		unsigned v = (unsigned char)*s++ - (unsigned)'0', d;
		if (v > 9)
			return -1; /* an empty octet or not a digit */
		if ((d = (unsigned char)*s - (unsigned)'0') <= 9) {
			if (v == 0)
				return -1; /* a leading zero */
			v = v * 10 + d;
			if ((d = (unsigned char)*++s - (unsigned)'0') <= 9) {
				v = v * 10 + d;
				if (v > 255)
					return -1;
				s++; /* a fourth digit fails below: it is neither '.' nor the end */
			}
		}
		out[o] = (uint8_t)v;
		if (*s != (o < 3 ? '.' : '\0'))
			return -1;
		s++;
	}
	return 0;
}

void engine_prepare_ip(eprepared *p)
{
	const char *t = p->m->client_ip;
	uint8_t ip[16];

	if (p->ip_state)
		return;
	p->ip_state = 1;
	p->has_ip = 0;
	if (!t || !*t)
		return;
	/*
	 * What allowd_ip_parse accepts, IPv4 first: a dotted quad has no ':',
	 * so it cannot be IPv6 (allowd_ip_parse tries IPv6 first); a text with
	 * a ':' is never a dotted quad and goes to allowd_ip_parse; a text with
	 * neither is nothing.
	 */
	if (engine_ipv4_parse(ip + 12, t) == 0) {
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		memcpy(ip, mapped, 12);
		p->has_ip = 1;
	} else if (strchr(t, ':') && allowd_ip_parse(ip, t) == 0) {
		p->has_ip = 1;
	}
	if (p->has_ip)
		memcpy(p->ip, ip, 16);
}

void engine_prepare_server(eprepared *p)
{
	const char *t = p->m->server_name;

	if (p->server_state)
		return;
	p->server_state = 1;
	p->has_server = t && *t && engine_domain(p->server, sizeof(p->server), t) == 0;
}

void engine_prepare_ip_text(eprepared *p)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	engine_prepare_ip(p);
	if (p->has_ip_text || !p->has_ip)
		return;
	if (memcmp(p->ip, mapped, 12) == 0)
		inet_ntop(AF_INET, p->ip + 12, p->ip_text, sizeof(p->ip_text));
	else
		inet_ntop(AF_INET6, p->ip, p->ip_text, sizeof(p->ip_text));
	p->has_ip_text = 1;
}

void engine_prepare_auth(eprepared *p)
{
	const allowd_auth_facts *f = &p->m->auth;

	if (p->has_auth)
		return;
	/* the authentication domains, normalised as message domains are */
	p->auth.n_dkim = f->n_dkim > ALLOWD_DKIM_MAX ? ALLOWD_DKIM_MAX : f->n_dkim;
	norm_check(&p->auth.spf, &f->spf);
	norm_check(&p->auth.dmarc, &f->dmarc);
	for (size_t i = 0; i < p->auth.n_dkim; i++)
		norm_check(&p->auth.dkim[i], &f->dkim[i]);
	p->has_auth = 1;
}

void engine_prepared_free(eprepared *p)
{
	if (p->senders != p->inline_senders)
		free(p->senders);
	if (p->sender_field != p->inline_field)
		free(p->sender_field);
	if (p->sender_index != p->inline_index)
		free(p->sender_index);
	if (p->recipients != p->inline_recipients)
		free(p->recipients);
	p->senders = NULL;
	p->sender_field = NULL;
	p->sender_index = NULL;
	p->recipients = NULL;
}

/* ---- the match vector ----------------------------------------------- */

void ematches_add(ematches *ms, int64_t id, uint8_t flags, allowd_field field, size_t index,
		  const char *value)
{
	if (!ms->v) {
		ms->v = ms->inline_v;
		ms->cap = sizeof(ms->inline_v) / sizeof(ms->inline_v[0]);
	}
	if (ms->n == ms->cap) {
		size_t ncap = ms->cap * 2;
		ematch *v = ms->v == ms->inline_v ? malloc(ncap * sizeof(*v))
						  : realloc(ms->v, ncap * sizeof(*v));
		if (!v) {
			ms->oom = 1;
			return;
		}
		if (ms->v == ms->inline_v)
			memcpy(v, ms->inline_v, ms->n * sizeof(*v));
		ms->v = v;
		ms->cap = ncap;
	}
	ms->v[ms->n++] = (ematch){id, flags, field, index, value};
}

void ematches_init(ematches *ms)
{
	ms->v = NULL;
	ms->n = ms->cap = 0;
	ms->regex_limit_hits = ms->oom = ms->budget_exhausted = 0;
}

void ematches_free(ematches *ms)
{
	if (ms->v != ms->inline_v)
		free(ms->v);
	ms->v = NULL;
	ms->n = ms->cap = 0;
}

static int match_cmp(const void *a, const void *b)
{
	const ematch *x = a, *y = b;
	if (x->field != y->field)
		return x->field < y->field ? -1 : 1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	if (x->policy_id != y->policy_id)
		return x->policy_id < y->policy_id ? -1 : 1;
	return 0;
}

/* ---- verification --------------------------------------------------- */

static int same_domain(const char *a, const char *b)
{
	return a && b && *a && *b && strcasecmp(a, b) == 0;
}

static int same_org(const char *a, const char *b)
{
	if (!a || !b || !*a || !*b)
		return 0;
	return strcasecmp(engine_org_domain(a), engine_org_domain(b)) == 0;
}

/* Results only: reads the message's facts, prepared or not. */
static int anything_passed(const allowd_auth_facts *f)
{
	size_t n = f->n_dkim > ALLOWD_DKIM_MAX ? ALLOWD_DKIM_MAX : f->n_dkim;

	if (f->spf.result == ALLOWD_AUTH_PASS || f->dmarc.result == ALLOWD_AUTH_PASS)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (f->dkim[i].result == ALLOWD_AUTH_PASS)
			return 1;
	return 0;
}

/* The normalised domain of the sender address a match refers to, or NULL. */
static const char *sender_domain(const eprepared *p, const ematch *mt)
{
	for (size_t i = 0; i < p->n_senders; i++)
		if (p->sender_field[i] == mt->field && p->sender_index[i] == mt->index)
			return p->senders[i].ok ? p->senders[i].domain : NULL;
	return NULL;
}

/* p->auth must be prepared when mt needs verification of a sender's domain. */
static const char *verify(const eprepared *p, const ematch *mt, bool *honored)
{
	const allowd_auth_facts *f = &p->auth;
	const char *d;

	*honored = true;
	if (!(mt->flags & CP_VERIFY))
		return "not required";
	switch (mt->field) {
	case ALLOWD_FIELD_ENVELOPE_FROM:
		d = sender_domain(p, mt);
		if (f->spf.result == ALLOWD_AUTH_PASS && same_domain(f->spf.domain, d))
			return "spf pass";
		if (f->dmarc.result == ALLOWD_AUTH_PASS && same_org(f->dmarc.domain, d))
			return "dmarc pass";
		break;
	case ALLOWD_FIELD_HEADER_FROM:
		d = sender_domain(p, mt);
		if (f->dmarc.result == ALLOWD_AUTH_PASS && same_domain(f->dmarc.domain, d))
			return "dmarc pass";
		for (size_t i = 0; i < f->n_dkim; i++)
			if (f->dkim[i].result == ALLOWD_AUTH_PASS && same_org(f->dkim[i].domain, d))
				return "dkim pass";
		break;
	case ALLOWD_FIELD_REPLY_TO:
		*honored = false;
		return "reply-to is never authenticated";
	default:
		if (anything_passed(&p->m->auth))
			return "message authenticated";
		*honored = false;
		return "message not authenticated";
	}
	*honored = false;
	return "sender not authenticated";
}

/* ---- the decision --------------------------------------------------- */

/* Sorts the match vector: insertion sort for the usual handful, qsort beyond. */
static void sort_matches(ematch *v, size_t n)
{
	if (n > 16) {
		qsort(v, n, sizeof(*v), match_cmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		ematch x = v[i];
		size_t j = i;
		for (; j > 0 && match_cmp(&v[j - 1], &x) > 0; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

int engine_decide(eprepared *p, ematches *ms, allowd_decision *out)
{
	const allowd_message *m = p->m;
	unsigned all_waived = 0, inline_waived[8], *rcpt_waived = inline_waived;
	bool skip_links = false;
	size_t k = 0, values = 0, size;
	char *block, *strings;

	memset(out, 0, sizeof(*out));
	if (ms->oom)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	if (ms->budget_exhausted)
		return allowd_error_set(
			ALLOWD_EINVALID, NULL,
			"evaluating this request needs more than its regex work budget (%lld ms, "
			"--evaluate-budget): send fewer messages or addresses per request, or "
			"simplify the account's costly regexes",
			p->budget ? (long long)(p->budget->limit_us / 1000) : 0LL);
	out->regex_limit_hits = ms->regex_limit_hits;
	sort_matches(ms->v, ms->n);
	for (size_t i = 0; i < ms->n; i++) {
		if (k == 0 || match_cmp(&ms->v[k - 1], &ms->v[i]) != 0)
			ms->v[k++] = ms->v[i];
		if ((ms->v[i].flags & CP_VERIFY) && (ms->v[i].field == ALLOWD_FIELD_ENVELOPE_FROM ||
						     ms->v[i].field == ALLOWD_FIELD_HEADER_FROM))
			engine_prepare_auth(p); /* domains to compare: normalise them now */
	}
	ms->n = k;

	/* one block: recipients, matches, then the matched values */
	for (size_t i = 0; i < ms->n; i++)
		values += strlen(ms->v[i].value ? ms->v[i].value : "") + 1;
	size = p->n_recipients * sizeof(*out->recipients) + ms->n * sizeof(*out->matches) + values;
	if (!(block = malloc(size ? size : 1)) ||
	    (p->n_recipients > 8 && !(rcpt_waived = malloc(p->n_recipients * sizeof(unsigned))))) {
		free(block);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	memset(rcpt_waived, 0, p->n_recipients * sizeof(unsigned));
	out->storage = block;
	out->recipients = (allowd_recipient_decision *)(void *)block;
	out->matches = (allowd_match *)(void *)(block + p->n_recipients * sizeof(*out->recipients));
	strings = (char *)(out->matches + ms->n);

	for (size_t i = 0; i < ms->n; i++) {
		const ematch *mt = &ms->v[i];
		allowd_match *o = &out->matches[i];
		size_t len = strlen(mt->value ? mt->value : "");
		o->policy_id = mt->policy_id;
		o->field = mt->field;
		o->index = mt->index;
		o->verification = verify(p, mt, &o->honored);
		memcpy(strings, mt->value ? mt->value : "", len + 1);
		o->value = strings;
		strings += len + 1;
		out->n_matches++;
		if (!o->honored)
			continue;
		if (mt->field == ALLOWD_FIELD_RECIPIENT) {
			if ((mt->flags & CP_EXEMPT) && mt->index < p->n_recipients)
				rcpt_waived[mt->index] |= ALLOWD_DISP_VERDICTS;
			continue;
		}
		if (mt->flags & CP_TRUSTED) {
			all_waived |= ALLOWD_DISP_VERDICTS;
			skip_links = true;
		}
		if (mt->flags & CP_ACCEPTABLE)
			all_waived |= ALLOWD_DISP_ACCEPTABLE;
	}
	for (size_t i = 0; i < p->n_recipients; i++) {
		allowd_recipient_decision *r = &out->recipients[i];
		r->address = m->recipients[i];
		r->waived = p->dispositions & ALLOWD_DISP_VERDICTS & (all_waived | rcpt_waived[i]);
		r->remaining = p->dispositions & ~r->waived;
		r->skip_link_following = skip_links;
	}
	out->n_recipients = p->n_recipients;
	if (rcpt_waived != inline_waived)
		free(rcpt_waived);
	return 0;
}

int allowd_evaluate(const allowd_snapshot *s, const allowd_message *m, allowd_decision *out)
{
	ematches ms;
	eprepared p;
	int rc;

	if ((rc = engine_prepare(&p, m, engine_snapshot_delimiter(s), s)))
		return rc;
	ematches_init(&ms);
	engine_collect(s, &p, NULL, &ms);
	rc = engine_decide(&p, &ms, out);
	ematches_free(&ms);
	engine_prepared_free(&p);
	return rc;
}

/*
 * snapshot.c - one account's policies compiled for matching.
 *
 * Layout (immutable once built):
 *   - pols[]: a compact record per policy (id, type, flags, offset of the
 *     normalised pattern in a string arena);
 *   - two open-addressing hash tables over the arena: exact EMAIL
 *     addresses and exact DOMAIN names.  An exact policy's string sits in
 *     the arena behind a small header (erec: id, flags, length), so a hit
 *     costs one slot and one record -- two cache misses -- and a candidate
 *     is rejected by its length before any byte is compared;
 *   - the IP blocks indexed by prefix length: per length in use, a hash
 *     table of network addresses (128-bit, IPv4 mapped into IPv6); a
 *     lookup masks the client address to each length in use and probes
 *     that table -- the nodes a prefix trie would visit on the address's
 *     path, but one memory access per length instead of one per node
 *     (docs/architecture.md has the measurements behind this choice);
 *   - per regex subject type (EMAIL, DOMAIN, IP): every regex compiled by
 *     PCRE2 (JIT, anchored at both ends, caseless) and, in shards of
 *     `REGEX_SHARD` patterns, a Hyperscan database compiled in PREFILTER
 *     mode -- a superset matcher -- so a subject is scanned once per shard
 *     and only the candidates it reports are confirmed by PCRE2.  Regexes
 *     Hyperscan cannot compile are confirmed directly, always.
 */
#include "engine/engine_int.h"
#include "allowd/clock.h"
#include "allowd/error.h"
#include "allowd/netaddr.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define REGEX_SHARD 1000
#define HUGE_PAGE (2u << 20)

typedef struct cpol {
	int32_t id;
	uint8_t type;
	uint8_t flags;
	uint32_t str; /* offset of pattern_norm in the arena */
} cpol;

/*
 * An exact policy as the hash tables see it: everything a match needs, next
 * to the string it is matched by.  8-byte aligned in the arena.
 */
typedef struct erec {
	int32_t id;
	uint8_t flags;
	uint8_t pad;
	uint16_t len; /* strlen(str) */
	char str[];   /* pattern_norm, NUL-terminated */
} erec;

#define REC_ALIGN 8

/*
 * Open addressing, linear probing.  A slot holds the key's 32-bit hash tag
 * (high half) and the erec's arena offset / REC_ALIGN + 1 (low half; 0 =
 * empty), so a probe that misses touches only the slot array, never the
 * record.
 */
typedef struct htab {
	uint64_t *slots;
	size_t mask;
} htab;

typedef struct ipent {
	uint8_t addr[16]; /* network address, host bits clear */
	uint32_t pol;     /* cpol index */
	uint8_t len;      /* prefix length */
} ipent;

typedef struct iptab {
	int len;         /* prefix length, 0..128 (IPv4 /n is 96+n) */
	uint64_t *slots; /* hash tag | ipent index + 1 */
	size_t mask;
} iptab;

typedef struct rentry {
	uint32_t pol; /* cpol index */
	pcre2_code *code;
} rentry;

typedef struct rshard {
	hs_database_t *db;
	uint32_t *members; /* rentry indices, by Hyperscan id */
	size_t n;
} rshard;

typedef struct rset {
	rentry *v;
	size_t n;
	rshard *shards;
	size_t n_shards;
	uint32_t *direct; /* rentry indices confirmed without a prefilter */
	size_t n_direct;
} rset;

enum { RS_EMAIL, RS_DOMAIN, RS_IP, RS_COUNT };

static atomic_uint_fast64_t snapshot_serial;

struct allowd_snapshot {
	atomic_int refs;
	allowd_engine_options opts;
	cpol *pols;
	size_t n;
	char *arena;
	size_t arena_len;
	htab emails, domains;
	ipent *ips;
	size_t n_ips;
	iptab ipt[129]; /* the lengths in use, longest first */
	int n_ipt;
	rset regex[RS_COUNT];
	pcre2_match_context *mctx;
	size_t memory;
	uint64_t serial; /* unique per snapshot in this process */
};

/*
 * Allocates a table that lookups hit at random: from 2 MiB up it is aligned
 * to 2 MiB and advised into transparent huge pages, so that a probe costs a
 * cache miss but rarely also a TLB miss and a page walk (doubly costly
 * under virtualisation).  Released with free().  NULL on failure.
 */
static void *table_alloc(size_t bytes, int zero)
{
	void *p = NULL;

	if (bytes < HUGE_PAGE)
		return zero ? calloc(1, bytes ? bytes : 1) : malloc(bytes ? bytes : 1);
	if (posix_memalign(&p, HUGE_PAGE, bytes))
		return NULL;
	(void)madvise(p, bytes, MADV_HUGEPAGE); /* advice: without it, plain pages */
	if (zero)
		memset(p, 0, bytes);
	return p;
}

/* ---- hashing -------------------------------------------------------- */

/* The exact and IP tables use engine_hash (keyed; engine.c has why). */
static uint64_t hash_str(const char *s)
{
	return engine_hash(s, strlen(s));
}

static int htab_init(htab *t, size_t n)
{
	size_t cap = 16;

	if (!n)
		return 0; /* no table: lookups skip it */
	while (cap < n * 2)
		cap <<= 1;
	if (!(t->slots = table_alloc(cap * sizeof(*t->slots), 1)))
		return -1;
	t->mask = cap - 1;
	return 0;
}

static void htab_put(htab *t, const char *key, size_t rec_off)
{
	uint64_t h = hash_str(key);
	size_t i = h & t->mask;
	while (t->slots[i])
		i = (i + 1) & t->mask;
	t->slots[i] = (h & 0xffffffff00000000ULL) | (uint64_t)(rec_off / REC_ALIGN + 1);
}

static inline const erec *slot_rec(const allowd_snapshot *s, uint64_t slot)
{
	return (const erec *)(const void *)(s->arena +
					     ((slot & 0xffffffffu) - 1) * (size_t)REC_ALIGN);
}

/* ---- IP blocks by prefix length ------------------------------------ */

static uint64_t hash_addr(const uint8_t *a)
{
	return engine_hash(a, 16);
}

static void mask_addr(uint8_t *out, const uint8_t *in, int len)
{
	int full = len / 8, rest = len % 8;
	uint8_t m[16];

	/*
	 * Built in a local and copied whole: a variable-length memset into `out`
	 * (which lives inside larger structures) makes the static analyzer
	 * forget everything around it.
	 */
	memcpy(m, in, 16);
	if (full < 16) {
		m[full] &= rest ? (uint8_t)(0xffu << (8 - rest)) : 0;
		memset(m + full + 1, 0, (size_t)(15 - full));
	}
	memcpy(out, m, 16);
}

static int iptab_cmp(const void *a, const void *b)
{
	return ((const iptab *)b)->len - ((const iptab *)a)->len;
}

/* Builds the per-length tables over s->ips; 0 or -1. */
static int build_ip_tables(allowd_snapshot *s)
{
	size_t count[129] = {0};

	for (size_t i = 0; i < s->n_ips; i++)
		count[s->ips[i].len]++;
	for (int len = 128; len >= 0; len--) {
		iptab *t;
		size_t cap = 16;
		if (!count[len])
			continue;
		t = &s->ipt[s->n_ipt++];
		t->len = len;
		while (cap < count[len] * 2)
			cap <<= 1;
		if (!(t->slots = table_alloc(cap * sizeof(*t->slots), 1)))
			return -1;
		t->mask = cap - 1;
	}
	for (size_t i = 0; i < s->n_ips; i++) {
		iptab *t = NULL;
		uint64_t h = hash_addr(s->ips[i].addr);
		size_t k;
		for (int j = 0; j < s->n_ipt; j++)
			if (s->ipt[j].len == s->ips[i].len)
				t = &s->ipt[j];
		k = h & t->mask;
		while (t->slots[k])
			k = (k + 1) & t->mask;
		t->slots[k] = (h & 0xffffffff00000000ULL) | (uint64_t)(i + 1);
	}
	qsort(s->ipt, (size_t)s->n_ipt, sizeof(*s->ipt), iptab_cmp);
	return 0;
}

/* ---- regexes -------------------------------------------------------- */

static pcre2_code *compile_regex(const char *pattern)
{
	pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
	pcre2_code *code;
	int err;
	PCRE2_SIZE off;

	if (!cc)
		return NULL;
	pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
	code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
			     PCRE2_UTF | PCRE2_CASELESS | PCRE2_ALT_BSUX | PCRE2_ANCHORED |
				     PCRE2_ENDANCHORED,
			     &err, &off, cc);
	pcre2_compile_context_free(cc);
	if (code)
		pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
	return code;
}

/*
 * Compiles entries [first, first+n) of rs into one Hyperscan database.
 * A pattern Hyperscan rejects is moved to the direct list and the rest is
 * compiled again.  Returns 0, or -1 when nothing could be compiled.
 */
static int compile_shard(allowd_snapshot *s, rset *rs, rshard *sh, size_t first, size_t n)
{
	const char **exprs = malloc(n * sizeof(*exprs));
	unsigned *flags = malloc(n * sizeof(*flags)), *ids = malloc(n * sizeof(*ids));
	uint32_t *members = malloc(n * sizeof(*members));
	size_t m = 0;
	int rc = -1;

	if (!exprs || !flags || !ids || !members)
		goto out;
	for (size_t i = 0; i < n; i++) {
		members[m] = (uint32_t)(first + i);
		exprs[m] = s->arena + s->pols[rs->v[first + i].pol].str;
		flags[m] = HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_UCP | HS_FLAG_SINGLEMATCH |
			   HS_FLAG_PREFILTER | HS_FLAG_ALLOWEMPTY;
		ids[m] = (unsigned)m;
		m++;
	}
	while (m > 0) {
		hs_compile_error_t *err = NULL;
		hs_database_t *db = NULL;
		if (hs_compile_multi(exprs, flags, ids, (unsigned)m, HS_MODE_BLOCK, NULL, &db, &err) ==
		    HS_SUCCESS) {
			sh->db = db;
			sh->members = members;
			sh->n = m;
			members = NULL;
			rc = 0;
			break;
		}
		if (!err || err->expression < 0 || (size_t)err->expression >= m) {
			hs_free_compile_error(err);
			break; /* not one pattern's fault: all stay direct */
		}
		/* move the culprit to the direct list and retry without it */
		rs->direct[rs->n_direct++] = members[err->expression];
		for (size_t k = (size_t)err->expression; k + 1 < m; k++) {
			members[k] = members[k + 1];
			exprs[k] = exprs[k + 1];
		}
		m--;
		for (size_t k = 0; k < m; k++)
			ids[k] = (unsigned)k;
		hs_free_compile_error(err);
	}
	if (rc && members)
		for (size_t k = 0; k < m; k++)
			rs->direct[rs->n_direct++] = members[k];
out:
	free(exprs);
	free(flags);
	free(ids);
	free(members);
	return rc;
}

static int build_regex_set(allowd_snapshot *s, rset *rs)
{
	if (!rs->n)
		return 0;
	if (!(rs->direct = malloc(rs->n * sizeof(*rs->direct))))
		return -1;
	if (!s->opts.use_prefilter || rs->n < 4) {
		for (size_t i = 0; i < rs->n; i++)
			rs->direct[rs->n_direct++] = (uint32_t)i;
		return 0;
	}
	rs->n_shards = (rs->n + REGEX_SHARD - 1) / REGEX_SHARD;
	if (!(rs->shards = calloc(rs->n_shards, sizeof(*rs->shards))))
		return -1;
	for (size_t k = 0; k < rs->n_shards; k++) {
		size_t first = k * REGEX_SHARD;
		size_t n = rs->n - first < REGEX_SHARD ? rs->n - first : REGEX_SHARD;
		compile_shard(s, rs, &rs->shards[k], first, n);
	}
	return 0;
}

/* ---- build and free ------------------------------------------------- */

static void snapshot_free(allowd_snapshot *s)
{
	for (int t = 0; t < RS_COUNT; t++) {
		rset *rs = &s->regex[t];
		for (size_t i = 0; i < rs->n; i++)
			pcre2_code_free(rs->v[i].code);
		for (size_t k = 0; k < rs->n_shards; k++) {
			hs_free_database(rs->shards[k].db);
			free(rs->shards[k].members);
		}
		free(rs->v);
		free(rs->shards);
		free(rs->direct);
	}
	pcre2_match_context_free(s->mctx);
	free(s->pols);
	free(s->arena);
	free(s->emails.slots);
	free(s->domains.slots);
	free(s->ips);
	for (int i = 0; i < s->n_ipt; i++)
		free(s->ipt[i].slots);
	free(s);
}

static int regex_kind(allowd_pattern_type t)
{
	return t == ALLOWD_PATTERN_EMAIL ? RS_EMAIL : t == ALLOWD_PATTERN_DOMAIN ? RS_DOMAIN : RS_IP;
}

int allowd_snapshot_build(allowd_snapshot **out, allowd_policy *const *policies, size_t n,
			  const allowd_engine_options *opts)
{
	allowd_snapshot *s = calloc(1, sizeof(*s));
	size_t arena = 0, n_email = 0, n_domain = 0, n_ip = 0, nre[RS_COUNT] = {0};

	if (!s)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	atomic_init(&s->refs, 1);
	s->serial = atomic_fetch_add(&snapshot_serial, 1) + 1;
	if (opts)
		s->opts = *opts;
	else
		allowd_engine_options_init(&s->opts);

	for (size_t i = 0; i < n; i++) {
		const allowd_policy *p = policies[i];
		const char *k = p->pattern_norm ? p->pattern_norm : p->pattern;
		size_t len = strlen(k ? k : "");
		if (!p->is_regex && (p->pattern_type == ALLOWD_PATTERN_EMAIL ||
				     p->pattern_type == ALLOWD_PATTERN_DOMAIN))
			/* alignment, header, string (an exact key is cut at 65535 bytes,
			   far beyond any valid pattern: it then matches nothing) */
			arena += REC_ALIGN - 1 + sizeof(erec) +
				 (len > UINT16_MAX ? UINT16_MAX : len) + 1;
		else
			arena += len + 1;
		if (p->is_regex)
			nre[regex_kind(p->pattern_type)]++;
		else if (p->pattern_type == ALLOWD_PATTERN_EMAIL)
			n_email++;
		else if (p->pattern_type == ALLOWD_PATTERN_DOMAIN)
			n_domain++;
		else if (p->pattern_type == ALLOWD_PATTERN_IP)
			n_ip++;
	}
	s->pols = table_alloc(n * sizeof(*s->pols), 0);
	s->arena = table_alloc(arena, 0);
	s->ips = table_alloc(n_ip * sizeof(*s->ips), 0);
	s->mctx = pcre2_match_context_create(NULL);
	if (!s->pols || !s->arena || !s->ips || !s->mctx ||
	    htab_init(&s->emails, n_email) || htab_init(&s->domains, n_domain))
		goto oom;
	for (int t = 0; t < RS_COUNT; t++)
		if (nre[t] && !(s->regex[t].v = calloc(nre[t], sizeof(*s->regex[t].v))))
			goto oom;
	pcre2_set_match_limit(s->mctx, s->opts.regex_match_limit ? s->opts.regex_match_limit
								 : 100000);
	pcre2_set_depth_limit(s->mctx, s->opts.regex_depth_limit ? s->opts.regex_depth_limit : 1000);

	for (size_t i = 0; i < n; i++) {
		const allowd_policy *p = policies[i];
		const char *k = p->pattern_norm ? p->pattern_norm : p->pattern;
		size_t len = strlen(k ? k : ""), rec_off = 0;
		int exact = !p->is_regex && (p->pattern_type == ALLOWD_PATTERN_EMAIL ||
					     p->pattern_type == ALLOWD_PATTERN_DOMAIN);
		cpol *c = &s->pols[s->n];
		uint32_t idx = (uint32_t)s->n;

		c->id = (int32_t)p->id;
		c->type = (uint8_t)p->pattern_type;
		c->flags = (uint8_t)((p->is_trusted_sender ? CP_TRUSTED : 0) |
				     (p->is_acceptable_sender ? CP_ACCEPTABLE : 0) |
				     (p->is_exempt_recipient ? CP_EXEMPT : 0) |
				     (p->verify_sender ? CP_VERIFY : 0) | (p->is_regex ? CP_REGEX : 0));
		if (exact && len > UINT16_MAX)
			len = UINT16_MAX; /* what the arena was sized for; never a valid pattern */
		if (exact) {
			erec *r;
			s->arena_len = (s->arena_len + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1);
			rec_off = s->arena_len;
			r = (erec *)(void *)(s->arena + rec_off);
			r->id = c->id;
			r->flags = c->flags;
			r->pad = 0;
			r->len = (uint16_t)len;
			s->arena_len += sizeof(erec);
		}
		c->str = (uint32_t)s->arena_len;
		memcpy(s->arena + s->arena_len, k ? k : "", len);
		s->arena[s->arena_len + len] = '\0';
		s->arena_len += len + 1;
		s->n++;

		if (p->is_regex) {
			rset *rs = &s->regex[regex_kind(p->pattern_type)];
			rentry *e = &rs->v[rs->n];
			e->pol = idx;
			if (!(e->code = compile_regex(s->arena + c->str)))
				continue; /* not a valid regex: it can match nothing */
			rs->n++;
		} else if (p->pattern_type == ALLOWD_PATTERN_EMAIL) {
			htab_put(&s->emails, s->arena + c->str, rec_off);
		} else if (p->pattern_type == ALLOWD_PATTERN_DOMAIN) {
			htab_put(&s->domains, s->arena + c->str, rec_off);
		} else if (p->pattern_type == ALLOWD_PATTERN_IP) {
			allowd_cidr cidr;
			if (allowd_cidr_parse(&cidr, s->arena + c->str) == 0) {
				ipent *e = &s->ips[s->n_ips++];
				memcpy(e->addr, cidr.addr, 16);
				e->pol = idx;
				e->len = (uint8_t)cidr.prefix;
			}
		}
	}
	allowd_error_clear();
	if (build_ip_tables(s))
		goto oom;
	for (int t = 0; t < RS_COUNT; t++)
		if (build_regex_set(s, &s->regex[t]))
			goto oom;
	s->memory = sizeof(*s) + n * (sizeof(cpol) + sizeof(uint32_t)) + arena +
		    (s->emails.slots ? s->emails.mask + 1 : 0) * sizeof(uint64_t) +
		    (s->domains.slots ? s->domains.mask + 1 : 0) * sizeof(uint64_t) +
		    n_ip * sizeof(ipent);
	for (int i = 0; i < s->n_ipt; i++)
		s->memory += (s->ipt[i].mask + 1) * sizeof(uint64_t);
	for (int t = 0; t < RS_COUNT; t++) {
		size_t sz;
		for (size_t i = 0; i < s->regex[t].n; i++)
			if (pcre2_pattern_info(s->regex[t].v[i].code, PCRE2_INFO_SIZE, &sz) == 0)
				s->memory += sz;
		for (size_t k = 0; k < s->regex[t].n_shards; k++)
			if (s->regex[t].shards[k].db &&
			    hs_database_size(s->regex[t].shards[k].db, &sz) == HS_SUCCESS)
				s->memory += sz;
	}
	*out = s;
	return 0;
oom:
	snapshot_free(s);
	return allowd_error_set(ALLOWD_ERR, NULL, "out of memory building a snapshot");
}

void allowd_snapshot_ref(allowd_snapshot *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void allowd_snapshot_unref(allowd_snapshot *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1)
		snapshot_free(s);
}

size_t allowd_snapshot_size(const allowd_snapshot *s)
{
	return s->n;
}

size_t allowd_snapshot_memory(const allowd_snapshot *s)
{
	return s->memory;
}

char engine_snapshot_delimiter(const allowd_snapshot *s)
{
	return s->opts.subaddress_delimiter;
}

int engine_snapshot_policies(const allowd_snapshot *s, allowd_policy ***out, size_t *n)
{
	allowd_policy **v = calloc(s->n ? s->n : 1, sizeof(*v));

	if (!v)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	for (size_t i = 0; i < s->n; i++) {
		const cpol *c = &s->pols[i];
		allowd_policy *p = calloc(1, sizeof(*p));
		if (!p || !(p->pattern = strdup(s->arena + c->str)) ||
		    !(p->pattern_norm = strdup(s->arena + c->str))) {
			allowd_policy_free(p);
			for (size_t k = 0; k < i; k++)
				allowd_policy_free(v[k]);
			free(v);
			return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		}
		p->id = c->id;
		p->pattern_type = (allowd_pattern_type)c->type;
		p->is_trusted_sender = c->flags & CP_TRUSTED;
		p->is_acceptable_sender = c->flags & CP_ACCEPTABLE;
		p->is_exempt_recipient = c->flags & CP_EXEMPT;
		p->verify_sender = c->flags & CP_VERIFY;
		p->is_regex = c->flags & CP_REGEX;
		v[i] = p;
	}
	*out = v;
	*n = s->n;
	return 0;
}

/* ---- collection ----------------------------------------------------- */

static int shadowed(const eshadow *sh, int64_t id)
{
	size_t lo = 0, hi;

	if (!sh || !sh->n)
		return 0;
	hi = sh->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (sh->ids[mid] == id)
			return 1;
		if (sh->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

typedef struct ctx {
	const allowd_snapshot *s;
	const eshadow *shadow;
	ematches *ms;
	pcre2_match_data *md;
	allowd_budget *budget; /* NULL: unlimited (the clock is never read) */
} ctx;

/*
 * Hyperscan needs a scratch area per scanning thread, big enough for every
 * database it scans.  Each thread keeps one and grows it once per snapshot
 * (identified by a process-wide serial, since addresses are reused).  The
 * scratch is also registered under a pthread key whose destructor frees it
 * when the thread exits (libmicrohttpd's pool threads at server stop), so
 * no thread's scratch outlives it.
 */
static _Thread_local hs_scratch_t *tls_scratch;
static _Thread_local uint64_t tls_scratch_serial;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_release(void *scratch)
{
	hs_free_scratch(scratch);
	tls_scratch = NULL;
	tls_scratch_serial = 0;
}

static void scratch_key_init(void)
{
	scratch_key_ok = pthread_key_create(&scratch_key, scratch_release) == 0;
}

/* Makes this thread's scratch fit every database of s; 0 or -1. */
static int scratch_for(const allowd_snapshot *s)
{
	int rc = 0;

	if (tls_scratch && tls_scratch_serial == s->serial)
		return 0;
	pthread_once(&scratch_once, scratch_key_init);
	if (!scratch_key_ok)
		return -1; /* it could never be freed: confirm directly instead */
	for (int t = 0; t < RS_COUNT && !rc; t++)
		for (size_t k = 0; k < s->regex[t].n_shards && !rc; k++)
			if (s->regex[t].shards[k].db &&
			    hs_alloc_scratch(s->regex[t].shards[k].db, &tls_scratch) != HS_SUCCESS)
				rc = -1;
	/* hs_alloc_scratch may have replaced the scratch, even when it failed later */
	if (pthread_setspecific(scratch_key, tls_scratch) != 0) {
		hs_free_scratch(tls_scratch);
		tls_scratch = NULL;
		rc = -1;
	}
	tls_scratch_serial = rc ? 0 : s->serial;
	return rc;
}

/*
 * Charges the regex work since *t0 to the budget and restarts *t0; true
 * once the budget is exhausted (and then ms->budget_exhausted is set).
 */
static int budget_spent(ctx *c, int64_t *t0)
{
	allowd_budget *b = c->budget;
	int64_t now;

	if (!b)
		return 0;
	now = allowd_monotonic_us();
	b->used_us += now - *t0;
	*t0 = now;
	if (b->used_us >= b->limit_us)
		b->exhausted = 1;
	if (b->exhausted)
		c->ms->budget_exhausted = 1;
	return b->exhausted;
}

/* Adds p if its flags fit the side: sender fields need a sender flag, recipients EXEMPT. */
static inline void consider_id(ctx *c, int32_t id, uint8_t flags, allowd_field field,
			       size_t index, const char *value)
{
	uint8_t need = field == ALLOWD_FIELD_RECIPIENT ? CP_EXEMPT : CP_SENDER;

	if (!(flags & need) || shadowed(c->shadow, id))
		return;
	ematches_add(c->ms, id, flags, field, index, value);
}

static inline void consider(ctx *c, uint32_t pol, allowd_field field, size_t index,
			    const char *value)
{
	const cpol *p = &c->s->pols[pol];
	consider_id(c, p->id, p->flags, field, index, value);
}

static int regex_confirm(ctx *c, const rentry *e, const char *subject, size_t len)
{
	int rc = pcre2_match(e->code, (PCRE2_SPTR)subject, len, 0, 0, c->md, c->s->mctx);
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	    rc == PCRE2_ERROR_HEAPLIMIT)
		c->ms->regex_limit_hits++;
	return rc >= 0;
}

typedef struct hs_hits {
	uint32_t *v;
	size_t n, cap;
	int oom; /* candidates were lost: the evaluation must fail, not miss them */
	uint32_t inline_v[32];
} hs_hits;

static int on_hs_match(unsigned id, unsigned long long from, unsigned long long to,
		       unsigned flags, void *arg)
{
	hs_hits *h = arg;
	(void)from;
	(void)to;
	(void)flags;
	if (h->n == h->cap) {
		size_t ncap = h->cap * 2;
		uint32_t *v = h->v == h->inline_v ? malloc(ncap * sizeof(*v))
						  : realloc(h->v, ncap * sizeof(*v));
		if (!v) {
			h->oom = 1;
			return 1; /* stop scanning */
		}
		if (h->v == h->inline_v)
			memcpy(v, h->inline_v, h->n * sizeof(*v));
		h->v = v;
		h->cap = ncap;
	}
	h->v[h->n++] = id;
	return 0;
}

/* Confirms entries idx[0..n) of rs by PCRE2; false once the budget ran out. */
static int confirm_list(ctx *c, const rset *rs, const uint32_t *idx, size_t n,
			const char *subject, size_t len, allowd_field field, size_t index,
			const char *value, int64_t *t0)
{
	for (size_t i = 0; i < n; i++) {
		const rentry *e = &rs->v[idx[i]];
		if (regex_confirm(c, e, subject, len))
			consider(c, e->pol, field, index, value);
		if (budget_spent(c, t0))
			return 0;
	}
	return 1;
}

/*
 * Matches every regex of set `kind` against subject; adds confirmed
 * matches.  The time it takes is charged to the budget after every
 * Hyperscan scan and every PCRE2 match, so an exhausted budget stops the
 * work within one match (itself bounded by the match limit).
 */
static void regex_scan(ctx *c, int kind, const char *subject, allowd_field field, size_t index,
		       const char *value)
{
	const rset *rs = &c->s->regex[kind];
	int64_t t0 = 0;
	size_t len;

	if (!rs->n || !subject)
		return;
	if (c->budget) {
		if (c->budget->exhausted) {
			c->ms->budget_exhausted = 1;
			return;
		}
		t0 = allowd_monotonic_us();
	}
	len = strlen(subject);
	if (len > ALLOWD_SUBJECT_MAX)
		return; /* too long to be an address, a domain or an IP: matches nothing */
	if (!c->md && !(c->md = pcre2_match_data_create(1, NULL))) {
		c->ms->oom = 1;
		return;
	}
	for (size_t k = 0; k < rs->n_shards; k++) {
		const rshard *sh = &rs->shards[k];
		hs_hits hits;
		hs_error_t rc;
		int go;
		if (!sh->db)
			continue;
		if (scratch_for(c->s)) {
			/* no scratch: confirm every member directly */
			if (!confirm_list(c, rs, sh->members, sh->n, subject, len, field, index, value,
					  &t0))
				return;
			continue;
		}
		hits.v = hits.inline_v;
		hits.n = 0;
		hits.oom = 0;
		hits.cap = sizeof(hits.inline_v) / sizeof(hits.inline_v[0]);
		rc = hs_scan(sh->db, subject, (unsigned)len, 0, tls_scratch, on_hs_match, &hits);
		if (hits.oom) {
			c->ms->oom = 1;
			if (hits.v != hits.inline_v)
				free(hits.v);
			return;
		}
		if (rc != HS_SUCCESS) {
			/* the prefilter failed (not expected): confirm every member instead */
			if (hits.v != hits.inline_v)
				free(hits.v);
			if (!confirm_list(c, rs, sh->members, sh->n, subject, len, field, index, value,
					  &t0))
				return;
			continue;
		}
		go = !budget_spent(c, &t0);
		for (size_t i = 0; go && i < hits.n; i++)
			hits.v[i] = sh->members[hits.v[i]];
		if (go)
			go = confirm_list(c, rs, hits.v, hits.n, subject, len, field, index, value, &t0);
		if (hits.v != hits.inline_v)
			free(hits.v);
		if (!go)
			return;
	}
	confirm_list(c, rs, rs->direct, rs->n_direct, subject, len, field, index, value, &t0);
}

/*
 * The client address's lookups, staged like the exact probes below: every
 * length's slot is prefetched first (ip_prefetch), then the first
 * candidate entry of each (ip_candidates), then they are compared (ip_run).
 */
static void ip_prefetch(const allowd_snapshot *s, ipquery *q, const uint8_t *addr)
{
	for (int j = 0; j < s->n_ipt; j++) {
		mask_addr(q->net[j], addr, s->ipt[j].len);
		q->h[j] = hash_addr(q->net[j]);
		__builtin_prefetch(&s->ipt[j].slots[q->h[j] & s->ipt[j].mask]);
	}
}

void engine_snapshot_warm_ip(const allowd_snapshot *s, eprepared *p)
{
	if (!s->n_ipt)
		return;
	engine_prepare_ip(p);
	if (!p->has_ip)
		return;
	ip_prefetch(s, &p->ipq, p->ip);
	p->ipq_for = s;
}

static void ip_candidates(const allowd_snapshot *s, const ipquery *q)
{
	for (int j = 0; j < s->n_ipt; j++) {
		const iptab *t = &s->ipt[j];
		uint64_t tag = q->h[j] & 0xffffffff00000000ULL;
		for (size_t k = q->h[j] & t->mask; t->slots[k]; k = (k + 1) & t->mask)
			if ((t->slots[k] & 0xffffffff00000000ULL) == tag) {
				__builtin_prefetch(&s->ips[(t->slots[k] & 0xffffffffu) - 1]);
				break;
			}
	}
}

static void ip_run(ctx *c, const ipquery *q, const char *value)
{
	const allowd_snapshot *s = c->s;

	for (int j = 0; j < s->n_ipt; j++) {
		const iptab *t = &s->ipt[j];
		uint64_t tag = q->h[j] & 0xffffffff00000000ULL;
		for (size_t k = q->h[j] & t->mask; t->slots[k]; k = (k + 1) & t->mask) {
			const ipent *e = &s->ips[(t->slots[k] & 0xffffffffu) - 1];
			if ((t->slots[k] & 0xffffffff00000000ULL) == tag &&
			    memcmp(e->addr, q->net[j], 16) == 0)
				consider(c, e->pol, ALLOWD_FIELD_CLIENT_IP, 0, value);
		}
	}
}

/*
 * The exact lookups of one message, in stages so that the cache misses of a
 * large account's tables overlap instead of adding up: every probe's slot
 * is prefetched (add_probe), then every probe's first candidate record
 * (probe_candidate: id, flags, length and string together), and only then
 * is anything compared (run_probe: the length first, then the bytes).  The
 * hashes and lengths come from the prepared message (computed once for
 * every snapshot).
 */
typedef struct probe {
	const htab *t;
	const char *key;
	size_t len;
	uint64_t h;
	size_t index;
	const char *value;
	uint64_t cand; /* the first slot with the key's tag; 0 = none */
	allowd_field field;
} probe;

#define PROBES_INLINE 32

static inline void add_probe(probe *v, size_t *n, const htab *t, const char *key, size_t len,
			     uint64_t h, allowd_field f, size_t index, const char *value)
{
	if (!len || !t->slots)
		return;
	v[*n] = (probe){.t = t, .key = key, .len = len, .h = h, .index = index, .value = value,
			.field = f};
	__builtin_prefetch(&t->slots[h & t->mask]);
	(*n)++;
}

void engine_snapshot_warm(const allowd_snapshot *s, const eaddr *a, int sender)
{
	if (!a->ok)
		return;
	if (s->emails.slots) {
		__builtin_prefetch(&s->emails.slots[a->h_norm & s->emails.mask]);
		if (a->sub_len)
			__builtin_prefetch(&s->emails.slots[a->h_sub & s->emails.mask]);
	}
	if (sender && s->domains.slots)
		__builtin_prefetch(&s->domains.slots[a->h_domain & s->domains.mask]);
}

static inline void probe_candidate(const allowd_snapshot *s, probe *pr)
{
	const htab *t = pr->t;
	uint64_t tag = pr->h & 0xffffffff00000000ULL;

	for (size_t i = pr->h & t->mask; t->slots[i]; i = (i + 1) & t->mask)
		if ((t->slots[i] & 0xffffffff00000000ULL) == tag) {
			const erec *r = slot_rec(s, t->slots[i]);
			pr->cand = t->slots[i];
			__builtin_prefetch(r);
			__builtin_prefetch(r->str + pr->len); /* the next line, when it spans two */
			return;
		}
}

static void run_probe(ctx *c, const probe *pr)
{
	const htab *t = pr->t;
	uint64_t tag = pr->h & 0xffffffff00000000ULL;

	if (!pr->cand)
		return; /* no slot carries the tag: no policy can match */
	for (size_t i = pr->h & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
		const erec *r;
		if ((t->slots[i] & 0xffffffff00000000ULL) != tag)
			continue;
		r = slot_rec(c->s, t->slots[i]);
		if (r->len == pr->len && memcmp(r->str, pr->key, pr->len) == 0)
			consider_id(c, r->id, r->flags, pr->field, pr->index, pr->value);
	}
}

static int has_regexes(const allowd_snapshot *s)
{
	return s->regex[RS_EMAIL].n || s->regex[RS_DOMAIN].n || s->regex[RS_IP].n;
}

/*
 * One message's collection in one snapshot, split at its memory stalls so
 * that allowd_evaluate_batch can interleave the stages of several messages:
 * collect_start hashes and prefetches every slot, collect_candidates reads
 * the slots and prefetches the first candidate records, collect_finish
 * compares and runs the regexes.  engine_collect runs the three in a row.
 */
typedef struct collect {
	ctx c;
	eprepared *p;
	probe inline_probes[PROBES_INLINE], *probes;
	size_t n_probes;
	int ip;   /* the client address is probed in the IP tables, with *q */
	int dead; /* out of memory: nothing more to do */
	const ipquery *q; /* p->ipq when p was prepared for this snapshot, else own_q */
	ipquery own_q;
} collect;

static void collect_start(collect *cs, const allowd_snapshot *s, eprepared *p,
			  const eshadow *shadow, ematches *ms)
{
	size_t max = 3 * p->n_senders + 2 * p->n_recipients;
	int exact = s->emails.slots || s->domains.slots;

	cs->c = (ctx){s, shadow, ms, NULL, NULL};
	cs->p = p;
	cs->probes = cs->inline_probes;
	cs->n_probes = 0;
	cs->ip = 0;
	cs->dead = 0;
	if (p->budget && p->budget->limit_us > 0)
		cs->c.budget = p->budget;
	if (exact && max > PROBES_INLINE && !(cs->probes = malloc(max * sizeof(*cs->probes)))) {
		cs->probes = cs->inline_probes;
		ms->oom = 1;
		cs->dead = 1;
		return;
	}
	if (s->n_ipt) {
		engine_prepare_ip(p);
		cs->ip = p->has_ip;
	}
	if (cs->ip && p->ipq_for == s) {
		cs->q = &p->ipq; /* computed and prefetched while p was prepared */
	} else if (cs->ip) {
		ip_prefetch(s, &cs->own_q, p->ip);
		cs->q = &cs->own_q;
	}
	for (size_t i = 0; exact && i < p->n_senders; i++) {
		const eaddr *a = &p->senders[i];
		if (!a->ok)
			continue;
		add_probe(cs->probes, &cs->n_probes, &s->emails, a->norm, a->norm_len, a->h_norm,
			  p->sender_field[i], p->sender_index[i], a->raw);
		add_probe(cs->probes, &cs->n_probes, &s->emails, a->sub, a->sub_len, a->h_sub,
			  p->sender_field[i], p->sender_index[i], a->raw);
		add_probe(cs->probes, &cs->n_probes, &s->domains, a->domain, a->domain_len,
			  a->h_domain, p->sender_field[i], p->sender_index[i], a->domain);
	}
	for (size_t i = 0; exact && i < p->n_recipients; i++) {
		const eaddr *a = &p->recipients[i];
		if (!a->ok)
			continue;
		add_probe(cs->probes, &cs->n_probes, &s->emails, a->norm, a->norm_len, a->h_norm,
			  ALLOWD_FIELD_RECIPIENT, i, a->raw);
		add_probe(cs->probes, &cs->n_probes, &s->emails, a->sub, a->sub_len, a->h_sub,
			  ALLOWD_FIELD_RECIPIENT, i, a->raw);
	}
}

static void collect_candidates(collect *cs)
{
	const allowd_snapshot *s = cs->c.s;

	if (cs->dead)
		return;
	if (cs->ip)
		ip_candidates(s, cs->q);
	for (size_t i = 0; i < cs->n_probes; i++)
		probe_candidate(s, &cs->probes[i]);
}

static void collect_finish(collect *cs)
{
	const allowd_snapshot *s = cs->c.s;
	eprepared *p = cs->p;
	ctx *c = &cs->c;

	if (cs->dead)
		return;
	if (cs->ip)
		ip_run(c, cs->q, p->m->client_ip);
	for (size_t i = 0; i < cs->n_probes; i++)
		run_probe(c, &cs->probes[i]);
	if (cs->probes != cs->inline_probes)
		free(cs->probes);
	cs->probes = cs->inline_probes;
	cs->n_probes = 0;
	if (!has_regexes(s))
		return; /* no Hyperscan, no PCRE2, no clock */

	for (size_t i = 0; i < p->n_senders; i++) {
		const eaddr *a = &p->senders[i];
		if (a->ok)
			regex_scan(c, RS_DOMAIN, a->domain, p->sender_field[i], p->sender_index[i],
				   a->domain);
		regex_scan(c, RS_EMAIL, a->ok ? a->norm : a->raw, p->sender_field[i],
			   p->sender_index[i], a->raw);
	}
	for (size_t i = 0; i < p->n_recipients; i++) {
		const eaddr *a = &p->recipients[i];
		if (a->ok)
			regex_scan(c, RS_DOMAIN, a->domain, ALLOWD_FIELD_RECIPIENT, i, a->domain);
		if (a->raw && *a->raw)
			regex_scan(c, RS_EMAIL, a->ok ? a->norm : a->raw, ALLOWD_FIELD_RECIPIENT, i,
				   a->raw);
	}
	if (s->regex[RS_IP].n) {
		engine_prepare_ip_text(p);
		if (p->has_ip)
			regex_scan(c, RS_IP, p->ip_text, ALLOWD_FIELD_CLIENT_IP, 0,
				   p->m->client_ip);
	}
	if (s->regex[RS_DOMAIN].n)
		engine_prepare_server(p);
	if (s->regex[RS_DOMAIN].n && p->has_server)
		regex_scan(c, RS_DOMAIN, p->server, ALLOWD_FIELD_SERVER_NAME, 0,
			   p->m->server_name);
	pcre2_match_data_free(c->md);
	c->md = NULL;
}

void engine_collect(const allowd_snapshot *s, eprepared *p, const eshadow *shadow,
		    ematches *ms)
{
	collect cs;

	collect_start(&cs, s, p, shadow, ms);
	collect_candidates(&cs);
	collect_finish(&cs);
}

/* ---- batches -------------------------------------------------------- */

/*
 * Messages in flight at once.  Each stage touches memory the previous one
 * prefetched for all of them, so the misses of BATCH_WIDTH messages
 * overlap; wider stops paying once the prefetches outnumber what the core
 * keeps in flight.
 */
#define BATCH_WIDTH 8

typedef struct batch_slot {
	eprepared p;
	ematches ms;
	collect cs;
} batch_slot;

/* The cache lines of m that preparing it reads first. */
static void prefetch_message(const allowd_message *m)
{
	__builtin_prefetch(m);
	__builtin_prefetch((const char *)m + 64);
}

static void prefetch_message_text(const allowd_message *m)
{
	if (m->envelope_from)
		__builtin_prefetch(m->envelope_from);
	if (m->header_from)
		__builtin_prefetch(m->header_from);
	if (m->n_recipients)
		__builtin_prefetch(m->recipients);
	if (m->client_ip)
		__builtin_prefetch(m->client_ip);
	__builtin_prefetch(&m->auth.spf);
}

int allowd_evaluate_batch(const allowd_snapshot *s, const allowd_message *const *messages,
			  size_t n, allowd_decision *out, size_t *failed)
{
	char delim = s->opts.subaddress_delimiter;
	batch_slot *v;
	size_t i = 0;
	int rc = 0;

	if (n == 1) { /* nothing to overlap: no batch state */
		memset(&out[0], 0, sizeof(out[0]));
		if ((rc = allowd_evaluate(s, messages[0], &out[0])) && failed)
			*failed = 0;
		return rc;
	}
	for (size_t k = 0; k < n; k++)
		memset(&out[k], 0, sizeof(out[k]));
	if (!n)
		return 0;
	if (!(v = malloc(BATCH_WIDTH * sizeof(*v)))) {
		rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		goto done;
	}
	for (size_t k = 0; k < n && k < BATCH_WIDTH; k++)
		prefetch_message(messages[k]);
	while (i < n) {
		size_t w = n - i < BATCH_WIDTH ? n - i : BATCH_WIDTH, ready = 0, k;
		int prc = 0;

		for (k = 0; k < w; k++)
			prefetch_message_text(messages[i + k]);
		for (k = i + w; k < n && k < i + 2 * BATCH_WIDTH; k++)
			prefetch_message(messages[k]);
		for (; ready < w; ready++) {
			if ((prc = engine_prepare(&v[ready].p, messages[i + ready], delim, NULL)))
				break; /* the messages before it are still decided */
			ematches_init(&v[ready].ms);
		}
		for (k = 0; k < ready; k++)
			collect_start(&v[k].cs, s, &v[k].p, NULL, &v[k].ms);
		for (k = 0; k < ready; k++)
			collect_candidates(&v[k].cs);
		for (k = 0; k < ready; k++)
			collect_finish(&v[k].cs);
		for (k = 0; k < ready && !rc; k++)
			rc = engine_decide(&v[k].p, &v[k].ms, &out[i + k]);
		for (size_t j = 0; j < ready; j++) {
			ematches_free(&v[j].ms);
			engine_prepared_free(&v[j].p);
		}
		if (rc) {
			i += k - 1; /* the message whose decision failed */
			break;
		}
		if (prc) {
			rc = prc;
			i += ready;
			break;
		}
		i += w;
	}
done:
	free(v);
	if (rc && failed)
		*failed = i;
	return rc;
}

/*
 * engine_int.h - private to src/engine: the prepared form of a message,
 * the match collector, and the compiled snapshot's layout.
 *
 * Evaluation is two phases so that a server can combine a large base
 * snapshot with a small delta of recent writes:
 *   1. collect: each snapshot adds the (policy, field, index) it matches
 *      to a match vector, skipping ids the caller says are shadowed;
 *   2. decide:  the vector is sorted and de-duplicated, verification and
 *      effects are applied, and the decision is written.
 */
#ifndef ALLOWD_ENGINE_INT_H
#define ALLOWD_ENGINE_INT_H

#include "allowd/engine.h"

#include <stdatomic.h>

#define ADDR_MAX (ALLOWD_SUBJECT_MAX + 1)

/*
 * One address of the message, normalised, with the keyed hashes of the three
 * strings the exact tables are probed with, computed once per message and
 * reused for every table and every snapshot (base and delta) it is probed in.
 */
typedef struct eaddr {
	const char *raw;      /* as the message gave it */
	int ok;               /* normalisation succeeded */
	char norm[ADDR_MAX];  /* local@domain, lower case, A-label domain */
	const char *domain;   /* points into norm */
	char sub[ADDR_MAX];   /* subaddress stripped ("" when there was none) */
	uint16_t norm_len, sub_len, domain_len; /* strlen of each; valid when ok */
	uint64_t h_norm, h_sub, h_domain; /* engine_hash of each; valid when ok (h_domain:
					    senders only, recipients never probe domains) */
} eaddr;

/*
 * The client address's lookups in one snapshot's IP tables: the address
 * masked to each prefix length the snapshot uses, and its hash.
 */
typedef struct ipquery {
	uint8_t net[129][16];
	uint64_t h[129];
} ipquery;

typedef struct eprepared {
	const allowd_message *m;
	eaddr *senders; /* envelope_from, header_from, reply_to... */
	allowd_field *sender_field;
	size_t *sender_index;
	size_t n_senders;
	eaddr *recipients;
	size_t n_recipients;
	/*
	 * client_ip and server_name are parsed and normalised only when a
	 * snapshot has something that could match them (engine_prepare_ip,
	 * engine_prepare_server): *_state is 0 until then.
	 */
	int ip_state, server_state;
	int has_ip;
	uint8_t ip[16];
	/* ipq holds the IP lookups in ipq_for (the warm snapshot), NULL: none yet */
	const allowd_snapshot *ipq_for;
	ipquery ipq;
	int has_ip_text;         /* ip_text is filled (lazily: only IP regexes need it) */
	char ip_text[64];        /* canonical inet_ntop form (IPv4 for mapped) */
	int has_server;
	char server[ADDR_MAX];   /* normalised server_name */
	unsigned dispositions;
	allowd_budget *budget;   /* m->budget: NULL = unlimited regex work */
	/*
	 * m->auth with every domain normalised: filled by engine_prepare_auth,
	 * only when an envelope_from or header_from match needs verification
	 * (the other fields need only the results; copying and normalising the
	 * whole struct for every message was a quarter of an exact lookup).
	 * Only spf, dmarc and dkim[0..n_dkim) are written.
	 */
	int has_auth;
	allowd_auth_facts auth;
	/* storage for the common case, so a typical message costs no allocation */
	eaddr inline_senders[4];
	allowd_field inline_field[4];
	size_t inline_index[4];
	eaddr inline_recipients[4];
} eprepared;

/* Flags of a compiled policy. */
enum {
	CP_TRUSTED = 1,
	CP_ACCEPTABLE = 2,
	CP_EXEMPT = 4,
	CP_VERIFY = 8,
	CP_REGEX = 16,
};
#define CP_SENDER (CP_TRUSTED | CP_ACCEPTABLE)

typedef struct ematch {
	int64_t policy_id;
	uint8_t flags;
	allowd_field field;
	size_t index;
	const char *value; /* borrowed from the message or the prepared message */
} ematch;

typedef struct ematches {
	ematch *v; /* inline until it outgrows it */
	size_t n, cap;
	int regex_limit_hits;
	int oom;
	int budget_exhausted;
	ematch inline_v[16];
} ematches;

void ematches_add(ematches *ms, int64_t id, uint8_t flags, allowd_field field, size_t index,
		  const char *value);
void ematches_init(ematches *ms);
void ematches_free(ematches *ms);

/* Shadowed ids: sorted; a base snapshot skips them (the delta has them). */
typedef struct eshadow {
	const int64_t *ids;
	size_t n;
} eshadow;

/*
 * Normalises and hashes m's addresses into p.  warm: a snapshot the message
 * is about to be matched in (or NULL): each address's table slots in it are
 * prefetched as soon as its hashes are known, so that the cache misses of a
 * large account overlap with preparing the rest of the message.
 */
int engine_prepare(eprepared *p, const allowd_message *m, char delim,
		   const allowd_snapshot *warm);
/* Prefetches the exact-table slots a's probes will read in s. */
void engine_snapshot_warm(const allowd_snapshot *s, const eaddr *a, int sender);
/*
 * When s has IP policies: parses the client address, computes its lookups
 * in s into p->ipq (p->ipq_for = s) and prefetches their slots.
 */
void engine_snapshot_warm_ip(const allowd_snapshot *s, eprepared *p);
void engine_prepared_free(eprepared *p);
/* Fills p->auth (normalised) once; later calls do nothing. */
void engine_prepare_auth(eprepared *p);
/* Parses client_ip into p->ip (p->has_ip) once; later calls do nothing. */
void engine_prepare_ip(eprepared *p);
/* Normalises server_name into p->server (p->has_server) once. */
void engine_prepare_server(eprepared *p);
/* Fills p->ip_text once, when client_ip parses; later calls do nothing. */
void engine_prepare_ip_text(eprepared *p);
/* Exactly inet_pton(AF_INET): 0 and the four bytes, or -1. */
int engine_ipv4_parse(uint8_t out[4], const char *s);

/*
 * The keyed hash of the exact tables (engine.c has the construction and
 * why): keys drawn at random once per process, because the strings in the
 * tables are chosen by account owners and a fixed hash would let them
 * compute colliding patterns offline; once per process, not per snapshot,
 * so that a message is hashed once for the base and every delta snapshot.
 */
uint64_t engine_hash(const void *data, size_t len);

/* Normalises an address into a (see eaddr); sets a->ok.  h_domain only for a sender. */
void engine_address(eaddr *a, const char *raw, char delim, int sender);
/* Lower-case A-label domain without trailing dot into out; 0 or -1. */
int engine_domain(char *out, size_t len, const char *raw);
/* The organisational (registrable) domain of a normalised domain. */
const char *engine_org_domain(const char *domain);

/*
 * Phase 1 for one snapshot.  Regex work is charged to p->budget; once it
 * is exhausted, regex matching stops and ms->budget_exhausted is set.
 */
void engine_collect(const allowd_snapshot *s, eprepared *p, const eshadow *shadow,
		    ematches *ms);
/*
 * Phase 2: sorts, de-duplicates, verifies and decides; 0, ALLOWD_ERR, or
 * ALLOWD_EINVALID when the regex work budget ran out during phase 1.
 */
int engine_decide(eprepared *p, ematches *ms, allowd_decision *out);

/* The subaddress delimiter the snapshot was built with. */
char engine_snapshot_delimiter(const allowd_snapshot *s);

/* The compiled policies of a snapshot, as policies again (for rebuilds). */
int engine_snapshot_policies(const allowd_snapshot *s, allowd_policy ***out, size_t *n);

#endif

/*
 * engine.h - applies allow policies to mail.
 *
 * A snapshot is one account's policies compiled for matching: exact
 * addresses and domains in keyed hash tables, IP blocks in one hash table
 * per prefix length, regexes behind a Hyperscan prefilter confirmed by
 * PCRE2.  Snapshots are
 * immutable and reference counted; evaluating is thread-safe and never
 * blocks writers.  docs/semantics.md states every matching rule.
 *
 * Usable without the server: build a snapshot from policies, evaluate
 * message facts against it, release it.
 */
#ifndef ALLOWD_ENGINE_H
#define ALLOWD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allowd/policy.h"

/* ---- dispositions ----------------------------------------------------- */

typedef enum allowd_disposition {
	ALLOWD_DISP_MALICIOUS = 1u << 0,
	ALLOWD_DISP_MALICIOUS_BEC = 1u << 1,
	ALLOWD_DISP_SUSPICIOUS = 1u << 2,
	ALLOWD_DISP_SPOOF = 1u << 3,
	ALLOWD_DISP_SPAM = 1u << 4,
	ALLOWD_DISP_BULK = 1u << 5,
	ALLOWD_DISP_ENCRYPTED = 1u << 6, /* informational: never waived */
	ALLOWD_DISP_EXTERNAL = 1u << 7,  /* informational: never waived */
	ALLOWD_DISP_NONE = 1u << 8,      /* informational: never waived */
} allowd_disposition;

#define ALLOWD_DISP_COUNT 9
#define ALLOWD_DISP_ALL 0x1ffu
/* The verdicts a policy can waive. */
#define ALLOWD_DISP_VERDICTS 0x3fu
/* What an acceptable sender waives. */
#define ALLOWD_DISP_ACCEPTABLE (ALLOWD_DISP_SPOOF | ALLOWD_DISP_SPAM | ALLOWD_DISP_BULK)

/* "MALICIOUS-BEC" etc. for bit `d`; NULL when d is not one bit of the set. */
const char *allowd_disposition_name(unsigned d);
/* Parses a name; 0 when unknown. */
unsigned allowd_disposition_parse(const char *s);

/*
 * Normalises a domain as the engine compares it: lower case, no trailing
 * dot, IDN as A-labels.  0, or -1 when it cannot be (empty, too long for
 * `len`, rejected by IDNA).
 */
int allowd_domain_normalize(char *out, size_t len, const char *raw);

/* ---- message facts ---------------------------------------------------- */

typedef enum allowd_auth_result {
	ALLOWD_AUTH_NONE = 0, /* absent or "none" */
	ALLOWD_AUTH_PASS,
	ALLOWD_AUTH_FAIL,
	ALLOWD_AUTH_SOFTFAIL,
	ALLOWD_AUTH_NEUTRAL,
	ALLOWD_AUTH_TEMPERROR,
	ALLOWD_AUTH_PERMERROR,
	ALLOWD_AUTH_POLICY,
} allowd_auth_result;

const char *allowd_auth_result_name(allowd_auth_result r);
/* Parses an RFC 8601 result keyword (case-insensitive); -1 when unknown. */
int allowd_auth_result_parse(const char *s, size_t len);

#define ALLOWD_DOMAIN_MAX 254
/*
 * The longest normalised address, domain or regex subject the engine
 * matches, in bytes; anything longer matches nothing (RFC 5321 caps a path
 * at 256 octets, so no deliverable address comes close).
 */
#define ALLOWD_SUBJECT_MAX 319
#define ALLOWD_DKIM_MAX 16

typedef struct allowd_auth_check {
	allowd_auth_result result;
	char domain[ALLOWD_DOMAIN_MAX]; /* SPF: the MAIL FROM (or HELO) domain; DKIM: d=;
					   DMARC: the From domain. Lower case, "" = unknown */
} allowd_auth_check;

/* spf, dmarc and n_dkim first: what most evaluations read sits on few cache lines */
typedef struct allowd_auth_facts {
	allowd_auth_check spf;
	allowd_auth_check dmarc;
	size_t n_dkim;
	allowd_auth_check dkim[ALLOWD_DKIM_MAX];
} allowd_auth_facts;

/*
 * Parses one Authentication-Results header value (RFC 8601) and merges its
 * spf, dkim and dmarc results into *facts -- only when its authserv-id is
 * one of `trusted` (case-insensitive); results from any other authserv-id
 * are ignored (RFC 8601 section 5).  A result already present is kept
 * unless the new one is a pass (several headers, several hops).
 * Returns 0 (also when ignored), or ALLOWD_EINVALID for a value that is not
 * an Authentication-Results header.
 */
int allowd_authres_parse(allowd_auth_facts *facts, const char *value, const char *const *trusted,
			 size_t n_trusted);

/*
 * A regex work budget: the wall-clock time one API request may spend
 * matching regexes (Hyperscan prefilter scans and PCRE2 confirmations),
 * summed over all its messages and subjects.  Each PCRE2 match is still
 * bounded by regex_match_limit; the budget bounds their sum.  The clock is
 * read only when a budget is set.  Not thread-safe: one per request.
 * docs/semantics.md ("Regex work budget") states the rules.
 */
typedef struct allowd_budget {
	int64_t limit_us;  /* <= 0: unlimited */
	int64_t used_us;   /* regex work charged so far */
	int exhausted;     /* set once used_us reached limit_us */
} allowd_budget;

/* A budget of `limit_ms` milliseconds; 0 = unlimited. */
void allowd_budget_init(allowd_budget *b, uint32_t limit_ms);

typedef struct allowd_message {
	const char *envelope_from; /* MAIL FROM; NULL or "" for a bounce */
	const char *header_from;   /* the address in From:, not the display name */
	const char *const *reply_to;
	size_t n_reply_to;
	const char *const *recipients; /* RCPT TO */
	size_t n_recipients;
	const char *client_ip;
	const char *server_name; /* HELO/EHLO or the client's host name */
	unsigned dispositions; /* allowd_disposition bits; 0 = all verdicts */
	/*
	 * The regex work budget this evaluation draws from (borrowed, updated);
	 * NULL = unlimited.  Several evaluations of one request share one.
	 */
	allowd_budget *budget;
	allowd_auth_facts auth; /* last: large, and mostly unread */
} allowd_message;

/* ---- the decision ----------------------------------------------------- */

typedef enum allowd_field {
	ALLOWD_FIELD_ENVELOPE_FROM = 0,
	ALLOWD_FIELD_HEADER_FROM,
	ALLOWD_FIELD_REPLY_TO,
	ALLOWD_FIELD_RECIPIENT,
	ALLOWD_FIELD_CLIENT_IP,
	ALLOWD_FIELD_SERVER_NAME,
} allowd_field;

const char *allowd_field_name(allowd_field f);

typedef struct allowd_match {
	int64_t policy_id;
	allowd_field field;
	char *value;        /* the value of the field that matched (owned) */
	bool honored;       /* false: verify_sender was set and verification failed */
	const char *verification; /* why it was (not) honoured; static text */
	size_t index;       /* the value's index in reply_to or recipients; 0 otherwise */
} allowd_match;

typedef struct allowd_recipient_decision {
	const char *address; /* borrowed from the message */
	unsigned waived;     /* dispositions waived for this recipient */
	unsigned remaining;  /* dispositions that stand */
	bool skip_link_following;
} allowd_recipient_decision;

/*
 * Matches are sorted by field (the enum order above), then index, then
 * policy id; a policy that matches one value twice (say as EMAIL and via a
 * subaddress) is listed once.
 */
typedef struct allowd_decision {
	allowd_recipient_decision *recipients; /* one per message recipient */
	size_t n_recipients;
	allowd_match *matches;
	size_t n_matches;
	int regex_limit_hits; /* regex matches abandoned at the match limit */
	void *storage; /* private: when set, one block holds all of the above */
} allowd_decision;

void allowd_decision_clear(allowd_decision *d);

/* ---- snapshots -------------------------------------------------------- */

typedef struct allowd_snapshot allowd_snapshot;

typedef struct allowd_engine_options {
	char subaddress_delimiter; /* '+' by default; '\0' disables subaddress matching */
	uint32_t regex_match_limit; /* PCRE2 match limit per subject (default 100000) */
	uint32_t regex_depth_limit; /* PCRE2 depth limit (default 1000) */
	int use_prefilter;          /* 1 (default): Hyperscan prefilter; 0: PCRE2 only */
} allowd_engine_options;

void allowd_engine_options_init(allowd_engine_options *o);

/*
 * Compiles `n` policies (validated, with pattern_norm set) into a snapshot
 * (reference count 1).  Regexes Hyperscan cannot compile are kept for
 * direct PCRE2 matching.  The policies are copied; the caller keeps them.
 */
int allowd_snapshot_build(allowd_snapshot **out, allowd_policy *const *policies, size_t n,
			  const allowd_engine_options *opts);
void allowd_snapshot_ref(allowd_snapshot *s);
void allowd_snapshot_unref(allowd_snapshot *s); /* frees at zero; NULL allowed */
size_t allowd_snapshot_size(const allowd_snapshot *s);
/* Approximate heap bytes held by the snapshot. */
size_t allowd_snapshot_memory(const allowd_snapshot *s);

/*
 * Evaluates the message against the snapshot.  Thread-safe (a budget must
 * not be shared between threads).  *out must be released with
 * allowd_decision_clear.  Returns 0, ALLOWD_ERR (memory), or
 * ALLOWD_EINVALID when m->budget is (or becomes) exhausted: the evaluation
 * is abandoned and *out is empty -- never a decision with regexes skipped.
 */
int allowd_evaluate(const allowd_snapshot *s, const allowd_message *m, allowd_decision *out);

/*
 * Evaluates n messages against one snapshot, as n calls of allowd_evaluate
 * in order would, into out[0..n): faster per message, because the memory
 * stalls of several messages' lookups overlap.  Returns 0 when every
 * message was decided.  Otherwise the code allowd_evaluate would have
 * returned for the first message that fails, whose index goes to *failed
 * (when not NULL); out[0..*failed) hold decisions, the rest are empty; the
 * caller releases every out[i] with allowd_decision_clear either way.  A
 * shared budget is drawn on in message order, but a few messages after the
 * failing one may already have been charged for.  Thread-safe as
 * allowd_evaluate.
 */
int allowd_evaluate_batch(const allowd_snapshot *s, const allowd_message *const *messages,
			  size_t n, allowd_decision *out, size_t *failed);

/*
 * The reference evaluator: a plain loop over the policies applying the
 * same rules with no index.  For differential tests and as the benchmark
 * baseline; not for production.
 */
int allowd_evaluate_reference(allowd_policy *const *policies, size_t n,
			      const allowd_engine_options *opts, const allowd_message *m,
			      allowd_decision *out);

/* ---- the engine: every account's policies, kept current -------------- */

/*
 * The server's engine: per account, an immutable view = a large base
 * snapshot + a small delta snapshot of the policies written since the base
 * was built (ids in the delta shadow the base).  Each write makes a new view
 * (cost proportional to the delta, not the account) and swaps it in under a
 * short lock; evaluations hold a reference to the view they started with,
 * so they never block writers and always see one consistent set.  When a
 * delta grows past a threshold, a background thread rebuilds the base
 * (Hyperscan compilation included) and swaps it in, keeping the changes
 * that arrived meanwhile.
 */
typedef struct allowd_engine allowd_engine;

int allowd_engine_new(allowd_engine **out, const allowd_engine_options *opts);
void allowd_engine_free(allowd_engine *e); /* NULL allowed; waits for a running rebuild */

/* Replaces an account's policies with `n` policies (copied): the start-up load. */
int allowd_engine_load(allowd_engine *e, const char *account_id, allowd_policy *const *policies,
		       size_t n);

typedef struct allowd_engine_change {
	int64_t id;
	const allowd_policy *policy; /* the new version; NULL = deleted */
} allowd_engine_change;

/* Applies committed writes of one account, in commit order; 0 or ALLOWD_ERR. */
int allowd_engine_apply(allowd_engine *e, const char *account_id,
			const allowd_engine_change *changes, size_t n);
void allowd_engine_drop_account(allowd_engine *e, const char *account_id);

/*
 * Evaluates against the account's current view (an unknown account has no
 * policies).  Return codes as allowd_evaluate.
 */
int allowd_engine_evaluate(allowd_engine *e, const char *account_id, const allowd_message *m,
			   allowd_decision *out);

typedef struct allowd_engine_stats {
	size_t base_policies, delta_entries;
	size_t delta_levels;  /* level snapshots merging the delta's exact policies: 0-2 */
	size_t delta_singles; /* delta entries evaluated as one-policy snapshots */
	uint64_t rebuilds;
} allowd_engine_stats;

void allowd_engine_stats_get(allowd_engine *e, const char *account_id, allowd_engine_stats *out);

/* Waits until no rebuild is queued or running (tests and benchmarks). */
void allowd_engine_quiesce(allowd_engine *e);

#endif

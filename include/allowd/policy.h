/*
 * policy.h - the allow-policy model: the object, its validation and the
 * normalised form every comparison uses.  JSON-free: the api layer decodes
 * and encodes; the store persists; the engine compiles.
 */
#ifndef ALLOWD_POLICY_H
#define ALLOWD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allowd/error.h"

typedef enum allowd_pattern_type {
	ALLOWD_PATTERN_UNKNOWN = 0, /* readable, never writable */
	ALLOWD_PATTERN_EMAIL = 1,
	ALLOWD_PATTERN_DOMAIN = 2,
	ALLOWD_PATTERN_IP = 3,
} allowd_pattern_type;

#define ALLOWD_PATTERN_MAX 1024  /* characters (Unicode scalar values) */
#define ALLOWD_COMMENTS_MAX 1024 /* characters */
#define ALLOWD_POLICY_ID_MAX INT32_MAX
#define ALLOWD_REGEX_MATCH_LIMIT 100000 /* PCRE2 match limit per regex and subject */
#define ALLOWD_REGEX_DEPTH_LIMIT 1000
#define ALLOWD_REGEX_PROBE_LEN 256     /* probe subjects: the longest valid address, rounded up */

typedef struct allowd_policy {
	int64_t id;          /* 0 until stored */
	int64_t created_at;  /* milliseconds since the Unix epoch, UTC */
	int64_t modified_at; /* idem; also reported as last_modified */
	allowd_pattern_type pattern_type;
	bool is_regex;
	bool is_trusted_sender;    /* deprecated alias: is_sender */
	bool is_acceptable_sender; /* deprecated alias: is_spoof */
	bool is_exempt_recipient;  /* deprecated alias: is_recipient */
	bool verify_sender;
	char *pattern;      /* as the client sent it */
	char *pattern_norm; /* normalised: the key for uniqueness and matching */
	char *comments;     /* NULL encodes JSON null */
} allowd_policy;

/* Bits of allowd_policy_patch.fields: which members a PATCH sets. */
enum {
	ALLOWD_FIELD_PATTERN = 1u << 0,
	ALLOWD_FIELD_PATTERN_TYPE = 1u << 1,
	ALLOWD_FIELD_IS_REGEX = 1u << 2,
	ALLOWD_FIELD_IS_TRUSTED_SENDER = 1u << 3,
	ALLOWD_FIELD_IS_ACCEPTABLE_SENDER = 1u << 4,
	ALLOWD_FIELD_IS_EXEMPT_RECIPIENT = 1u << 5,
	ALLOWD_FIELD_VERIFY_SENDER = 1u << 6,
	ALLOWD_FIELD_COMMENTS = 1u << 7,
	ALLOWD_FIELDS_CREATE = 0x7f, /* all but comments are required on create */
};

typedef struct allowd_policy_patch {
	int64_t id;
	unsigned fields;  /* ALLOWD_FIELD_* bits */
	allowd_policy v;  /* values of the fields that are set */
} allowd_policy_patch;

/* Allocates a zeroed policy; *out must be released with allowd_policy_free. */
int allowd_policy_new(allowd_policy **out);
void allowd_policy_free(allowd_policy *p);

/* A growable array of owned policies (store scans collect into one). */
typedef struct allowd_policy_vec {
	allowd_policy **v;
	size_t n, cap;
} allowd_policy_vec;

/* Appends p, which the vector then owns; on failure p is freed. */
int allowd_policy_vec_push(allowd_policy_vec *l, allowd_policy *p);
/* Frees every policy and the array; leaves an empty vector. */
void allowd_policy_vec_clear(allowd_policy_vec *l);
/* Releases the strings a policy owns without freeing the struct. */
void allowd_policy_clear(allowd_policy *p);
int allowd_policy_dup(allowd_policy **out, const allowd_policy *p);

/* Sets a string member, copying `s` (NULL allowed); 0 or ALLOWD_ERR. */
int allowd_policy_set_string(char **member, const char *s);

/*
 * Checks every rule a stored policy must satisfy and fills
 * p->pattern_norm.  Returns 0, or ALLOWD_EINVALID with the error's pointer
 * naming the field ("/pattern", "/is_exempt_recipient", ...).
 */
int allowd_policy_validate(allowd_policy *p);

/*
 * A pattern checked ahead of a write.  allowd_pattern_normalize is a pure
 * function of (type, is_regex, pattern), and for a regex it is costly (a
 * compile and a cost probe: up to ~100 ms).  The store runs it on the
 * caller's thread before it queues a write, so that its single writer
 * thread never does; allowd_policy_validate_checked then reuses the verdict.
 */
typedef struct allowd_pattern_check {
	allowd_pattern_type type;
	bool is_regex;
	char *pattern;       /* the pattern checked; NULL: nothing was checked */
	int rc;              /* the check's result: 0 or its error code */
	char *norm;          /* rc == 0: the normalised form */
	allowd_error *error; /* rc != 0: the error, with its pointer */
} allowd_pattern_check;

/*
 * Runs allowd_pattern_normalize(type, is_regex, pattern) and records the
 * verdict, valid or not, in *out (which the caller clears with
 * allowd_pattern_check_clear).  Returns 0 when a verdict was recorded (see
 * out->rc), ALLOWD_ERR when memory ran out.  `pattern` may be NULL: then
 * nothing is checked.  Thread-safe.
 */
int allowd_pattern_check_run(allowd_pattern_check *out, allowd_pattern_type type, bool is_regex,
			     const char *pattern);
void allowd_pattern_check_clear(allowd_pattern_check *c);

/*
 * allowd_policy_validate, except that when `c` (may be NULL) checked p's
 * (pattern_type, is_regex, pattern), its verdict stands in for the pattern
 * check: the same result and error, without the cost.  Any other policy is
 * checked in full, so a stale `c` costs time, never correctness.
 */
int allowd_policy_validate_checked(allowd_policy *p, const allowd_pattern_check *c);

/* Applies the set fields of `patch` to `p` (no validation). */
int allowd_policy_apply_patch(allowd_policy *p, const allowd_policy_patch *patch);

const char *allowd_pattern_type_name(allowd_pattern_type t);
/* Parses "EMAIL", "DOMAIN", "IP", "UNKNOWN"; -1 when not one of them. */
int allowd_pattern_type_parse(const char *s);

/*
 * Pattern validators (src/policy/pattern.c).  Each checks `pattern` for
 * its type and on success stores through *out a newly allocated normalised
 * form (caller frees).  On failure they return ALLOWD_EINVALID with pointer
 * "/pattern" and a message a human can act on.
 *
 * - email:  RFC 5321 mailbox; local part dot-atom or quoted string (<= 64
 *           octets); domain as allowd_pattern_domain.  Normalised lower
 *           case, domain as A-labels.
 * - domain: host name, IDN allowed (libidn2, IDNA2008 non-transitional),
 *           labels <= 63 octets, total <= 253, at least two labels, no
 *           trailing dot in the result.  Normalised to lower-case A-labels.
 * - ip:     IPv4 or IPv6 address or CIDR block, only globally reachable
 *           space, host bits clear.  Normalised to inet_ntop form, a full
 *           length prefix dropped, IPv4-mapped IPv6 turned into IPv4.
 * - regex:  compiles with PCRE2 in Java-compatible mode; the message gives
 *           the offset of a syntax error.  Normalised form = the pattern.
 */
int allowd_pattern_email(char **out, const char *pattern);
int allowd_pattern_domain(char **out, const char *pattern);
int allowd_pattern_ip(char **out, const char *pattern);
int allowd_pattern_regex(char **out, const char *pattern);

/* Dispatches on type and is_regex to the validators above. */
int allowd_pattern_normalize(char **out, allowd_pattern_type type, bool is_regex,
			     const char *pattern);

/* Number of Unicode scalar values in `s`, or -1 when `s` is not valid UTF-8. */
long allowd_utf8_length(const char *s, size_t len);

#endif

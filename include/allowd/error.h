/*
 * error.h - allowd's error model (libgit2 style).
 *
 * Every fallible function returns 0 on success or one of the negative
 * allowd_error_code values below, and leaves a one-line message (and, for
 * input errors, a JSON pointer to the offending field) in a thread-local
 * slot read with allowd_error_last().  One table in src/core/error.c maps
 * each code to an HTTP status and a Cloudflare envelope error code.
 */
#ifndef ALLOWD_ERROR_H
#define ALLOWD_ERROR_H

#include <stdarg.h>

typedef enum allowd_error_code {
	ALLOWD_OK = 0,
	ALLOWD_ERR = -1,               /* internal failure: 500 */
	ALLOWD_ENOTFOUND = -2,         /* no such object: 404 */
	ALLOWD_EINVALID = -3,          /* the client must fix its input: 400 */
	ALLOWD_EDUPLICATE = -4,        /* an equal policy exists: 400 (never 409) */
	ALLOWD_EBADHEADERS = -5,       /* missing or malformed credentials: 400, 6003 */
	ALLOWD_EAUTH = -6,             /* wrong key or token: 403, 10000 */
	ALLOWD_EFORBIDDEN = -7,        /* valid credential, no permission: 403, 10000 */
	ALLOWD_ETOOLARGE = -8,         /* body over the limit: 413 */
	ALLOWD_EUNAVAILABLE = -9,      /* storage failed or full: 503 */
	ALLOWD_EMETHOD = -10,          /* known path, wrong method: 405 */
	ALLOWD_ENOROUTE = -11,         /* unknown path: 404 */
	ALLOWD_ERATELIMIT = -12,       /* throttled: 429 */
	ALLOWD_ETOKEN = -13,           /* expired, disabled or out-of-range token: 403, 9109 */
	ALLOWD_EURITOOLONG = -14,      /* request target over --max-header-bytes: 414 */
	ALLOWD_EHEADERSTOOLARGE = -15, /* request line + headers over --max-header-bytes: 431 */
} allowd_error_code;

#define ALLOWD_ERROR_MSG_MAX 512
#define ALLOWD_ERROR_PTR_MAX 256

typedef struct allowd_error {
	int code;                            /* allowd_error_code */
	int cf_code;                         /* Cloudflare code; 0 = the table's default */
	char message[ALLOWD_ERROR_MSG_MAX];
	char pointer[ALLOWD_ERROR_PTR_MAX];  /* JSON pointer, "" when none */
	int chain[4];                        /* Cloudflare error_chain codes (6003) */
	int n_chain;
} allowd_error;

/*
 * Records an error for this thread and returns `code`, so that callers can
 * write `return allowd_error_set(ALLOWD_EINVALID, "/pattern", "...")`.
 * `pointer` may be NULL.
 */
int allowd_error_set(int code, const char *pointer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int allowd_error_setv(int code, const char *pointer, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* As allowd_error_set, with an explicit Cloudflare error code. */
int allowd_error_set_cf(int code, int cf_code, const char *pointer, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Appends a code to the current error's error_chain (at most 4 are kept). */
void allowd_error_chain_add(int cf_code);

/*
 * Makes a NUL-terminated string valid UTF-8 in place: a sequence cut short
 * by the end of the string is removed, any other invalid byte becomes '?'.
 * allowd_error_set* and allowd_error_prefix_pointer apply it to the message
 * and the pointer, so a "%.40s" of client text that ends mid-character
 * still renders.  Thread-safe (touches only s).
 */
void allowd_error_utf8_repair(char *s);

/* Prepends `prefix` to the current error's pointer ("/posts/3" + "/pattern"). */
void allowd_error_prefix_pointer(const char *prefix);

/* The last error recorded on this thread (borrowed; never NULL). */
const allowd_error *allowd_error_last(void);

/* Copies an error captured on another thread into this thread's slot. */
int allowd_error_restore(const allowd_error *e);

void allowd_error_clear(void);

/* The HTTP status, default Cloudflare code and default message for a code. */
int allowd_error_http_status(int code);
int allowd_error_cf_code(int code);
const char *allowd_error_default_message(int code);

#endif

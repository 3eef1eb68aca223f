/*
 * error.c - the thread-local error slot and the one table that maps allowd
 * error codes to HTTP statuses and Cloudflare envelope codes.
 */
#include "allowd/error.h"

#include <stdio.h>
#include <string.h>

static _Thread_local allowd_error last_error;

static const struct {
	int code;
	int http_status;
	int cf_code;
	const char *message;
} error_table[] = {
	{ALLOWD_ERR, 500, 1000, "Internal error"},
	{ALLOWD_ENOTFOUND, 404, 1002, "Not found"},
	{ALLOWD_EINVALID, 400, 1001, "Invalid input"},
	{ALLOWD_EDUPLICATE, 400, 1003, "Duplicate policy"},
	{ALLOWD_EBADHEADERS, 400, 6003, "Invalid request headers"},
	{ALLOWD_EAUTH, 403, 10000, "Authentication error"},
	{ALLOWD_EFORBIDDEN, 403, 10000, "Authentication error"},
	{ALLOWD_ETOOLARGE, 413, 1004, "Request entity too large"},
	{ALLOWD_EUNAVAILABLE, 503, 1005, "Service unavailable"},
	{ALLOWD_EMETHOD, 405, 10405, "Method not allowed"},
	{ALLOWD_ENOROUTE, 404, 7003, "No route for the URI"},
	{ALLOWD_ERATELIMIT, 429, 10429, "Rate limited"},
	{ALLOWD_ETOKEN, 403, 9109, "Invalid access token"},
	{ALLOWD_EURITOOLONG, 414, 1004, "URI too long"},
	{ALLOWD_EHEADERSTOOLARGE, 431, 1004, "Request header fields too large"},
};

static int table_index(int code)
{
	for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
		if (error_table[i].code == code)
			return (int)i;
	return 0; /* ALLOWD_ERR */
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF); otherwise -k, where k (0 < k < 4) bytes
 * start a sequence that is cut short (by the end of the string or by a byte
 * that cannot continue it), or 0 when the byte at s starts none.
 */
static int utf8_sequence(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	for (int i = 1; i < n; i++) {
		if (s[i] < lo || s[i] > hi)
			return i == 1 && s[i] >= 0x80 && s[i] <= 0xbf ? 0 : -i;
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

/*
 * Makes s valid UTF-8 in place.  A character cut short -- by a "%.40s" of
 * client text followed by more of the format, or by the buffer's own
 * limit -- is removed; every other byte that starts no valid sequence
 * becomes '?'.  The envelope's encoder refuses invalid UTF-8, so without
 * this the message and the pointer would be lost.
 */
void allowd_error_utf8_repair(char *s)
{
	unsigned char *r = (unsigned char *)s, *w = r;

	while (*r) {
		int n = utf8_sequence(r);
		if (n < 0) {
			r += -n;
		} else if (n == 0) {
			*w++ = '?';
			r++;
		} else {
			memmove(w, r, (size_t)n);
			w += n;
			r += n;
		}
	}
	*w = '\0';
}

int allowd_error_setv(int code, const char *pointer, const char *fmt, va_list ap)
{
	last_error.code = code;
	last_error.cf_code = 0;
	last_error.n_chain = 0;
	if (vsnprintf(last_error.message, sizeof(last_error.message), fmt, ap) < 0)
		last_error.message[0] = '\0';
	allowd_error_utf8_repair(last_error.message);
	if (pointer)
		snprintf(last_error.pointer, sizeof(last_error.pointer), "%s", pointer);
	else
		last_error.pointer[0] = '\0';
	allowd_error_utf8_repair(last_error.pointer);
	return code;
}

int allowd_error_set(int code, const char *pointer, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	allowd_error_setv(code, pointer, fmt, ap);
	va_end(ap);
	return code;
}

int allowd_error_set_cf(int code, int cf_code, const char *pointer, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	allowd_error_setv(code, pointer, fmt, ap);
	va_end(ap);
	last_error.cf_code = cf_code;
	return code;
}

void allowd_error_chain_add(int cf_code)
{
	if (last_error.n_chain < (int)(sizeof(last_error.chain) / sizeof(last_error.chain[0])))
		last_error.chain[last_error.n_chain++] = cf_code;
}

void allowd_error_prefix_pointer(const char *prefix)
{
	char buf[ALLOWD_ERROR_PTR_MAX];
	snprintf(buf, sizeof(buf), "%s%s", prefix, last_error.pointer);
	memcpy(last_error.pointer, buf, sizeof(buf));
	allowd_error_utf8_repair(last_error.pointer);
}

const allowd_error *allowd_error_last(void)
{
	return &last_error;
}

int allowd_error_restore(const allowd_error *e)
{
	last_error = *e;
	return e->code;
}

void allowd_error_clear(void)
{
	memset(&last_error, 0, sizeof(last_error));
}

int allowd_error_http_status(int code)
{
	return error_table[table_index(code)].http_status;
}

int allowd_error_cf_code(int code)
{
	return error_table[table_index(code)].cf_code;
}

const char *allowd_error_default_message(int code)
{
	return error_table[table_index(code)].message;
}

/*
 * ratelimit.h - fixed-window request counters keyed by a string (a client
 * IP, a credential id).  Thread-safe; memory is bounded: at most
 * `max_keys` live keys, expired ones swept first, and when the table is
 * still full a new key is not tracked (the limiter fails open rather than
 * refusing everyone).
 */
#ifndef ALLOWD_RATELIMIT_H
#define ALLOWD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct allowd_ratelimit allowd_ratelimit;

/* `limit` events per `window_ms`; limit 0 disables the limiter (every call allows). */
int allowd_ratelimit_new(allowd_ratelimit **out, int64_t limit, int64_t window_ms,
			 size_t max_keys);
void allowd_ratelimit_free(allowd_ratelimit *r);

typedef struct allowd_ratelimit_state {
	bool allowed;
	int64_t limit;
	int64_t remaining;   /* events left in this window */
	int64_t reset_ms;    /* until the window ends */
} allowd_ratelimit_state;

/* Counts one event for `key` (when `count`) and reports the window's state. */
void allowd_ratelimit_hit(allowd_ratelimit *r, const char *key, int64_t now_ms, bool count,
			  allowd_ratelimit_state *out);

bool allowd_ratelimit_enabled(const allowd_ratelimit *r);

#endif

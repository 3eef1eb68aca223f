/*
 * clock.h - wall-clock time in milliseconds and RFC 3339 formatting.
 */
#ifndef ALLOWD_CLOCK_H
#define ALLOWD_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define ALLOWD_TIME_STR_MAX 32

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t allowd_now_ms(void);

/* Microseconds from an arbitrary origin (CLOCK_MONOTONIC), for latencies. */
int64_t allowd_monotonic_us(void);

/* Formats `ms` as "2019-12-27T18:11:19.117Z" into buf (>= ALLOWD_TIME_STR_MAX). */
void allowd_time_format(char *buf, size_t len, int64_t ms);

/*
 * Parses an RFC 3339 timestamp ("2019-12-27T18:11:19Z", fractional
 * seconds and numeric offsets allowed) into milliseconds; 0 or EINVALID.
 */
int allowd_time_parse(int64_t *out, const char *s);

#endif

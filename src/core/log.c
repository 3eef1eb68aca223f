/*
 * log.c - the logging sink: one line per call, timestamped, to stderr by
 * default.  Lines are written with a single write(2) so concurrent threads
 * never interleave within a line.
 */
#include "allowd/log.h"
#include "allowd/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

allowd_log_level allowd_log_threshold = ALLOWD_LOG_INFO;

static allowd_log_sink sink;
static void *sink_ctx;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void allowd_log_set_sink(allowd_log_sink s, void *ctx)
{
	sink = s;
	sink_ctx = ctx;
}

int allowd_log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

void allowd_log_write(allowd_log_level level, const char *fmt, ...)
{
	char line[2048], ts[ALLOWD_TIME_STR_MAX];
	va_list ap;
	int n, m;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (sink) {
		sink(level, line, sink_ctx);
		return;
	}
	{
		char out[2200];
		allowd_time_format(ts, sizeof(ts), allowd_now_ms());
		m = snprintf(out, sizeof(out), "%s %s %s\n", ts, level_names[level], line);
		if (m < 0)
			return;
		if ((size_t)m >= sizeof(out))
			m = sizeof(out) - 1, out[m - 1] = '\n';
		if (write(STDERR_FILENO, out, (size_t)m) < 0)
			return;
	}
}

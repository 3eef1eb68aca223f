/*
 * log.h - level-checked logging.  The server logs to stderr; library
 * modules that could stand alone report through allowd_log_set_sink.
 * Never pass a secret to these functions.
 */
#ifndef ALLOWD_LOG_H
#define ALLOWD_LOG_H

typedef enum allowd_log_level {
	ALLOWD_LOG_ERROR = 0,
	ALLOWD_LOG_WARN = 1,
	ALLOWD_LOG_INFO = 2,
	ALLOWD_LOG_DEBUG = 3,
} allowd_log_level;

typedef void (*allowd_log_sink)(allowd_log_level level, const char *line, void *ctx);

extern allowd_log_level allowd_log_threshold;

/* Replaces the sink (default: a timestamped line on stderr). NULL restores it. */
void allowd_log_set_sink(allowd_log_sink sink, void *ctx);
/* Parses "error", "warn", "info", "debug"; -1 otherwise. */
int allowd_log_level_parse(const char *s);

void allowd_log_write(allowd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define ALLOWD_LOG(level, ...)                                                                     \
	do {                                                                                       \
		if ((level) <= allowd_log_threshold)                                               \
			allowd_log_write((level), __VA_ARGS__);                                    \
	} while (0)
#define log_error(...) ALLOWD_LOG(ALLOWD_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) ALLOWD_LOG(ALLOWD_LOG_WARN, __VA_ARGS__)
#define log_info(...) ALLOWD_LOG(ALLOWD_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ALLOWD_LOG(ALLOWD_LOG_DEBUG, __VA_ARGS__)

#endif

/*
 * config.h - server options.  One table (src/core/config.c) defines each
 * option's flag, environment variable, type, default, bounds and help; the
 * parser, `allowd --help` and docs/configuration.md all come from it.
 */
#ifndef ALLOWD_CONFIG_H
#define ALLOWD_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef struct allowd_config {
	char *listen;             /* ADDR:PORT; port 0 = any free port */
	char *data_dir;
	int64_t threads;          /* HTTP worker threads */
	int64_t max_body;         /* bytes */
	int64_t max_connections;
	int64_t connection_timeout; /* seconds of inactivity, and for a request to arrive */
	int64_t max_header_bytes; /* request target and request line + headers, bytes */
	char *log_level;
	int64_t access_log;       /* 0 or 1 */
	int64_t notify_fd;        /* -1 = none; otherwise write the bound port there */
	char *subaddress_delimiter; /* "" disables subaddress matching */
	int64_t regex_match_limit;
	int64_t evaluate_budget;  /* ms of regex matching per evaluate request; 0 = unlimited */
	int64_t rate_limit;       /* requests per credential per window; 0 = off */
	int64_t rate_limit_window; /* seconds */
	int64_t auth_failure_limit; /* failed authentications per client IP per window; 0 = off */
	int64_t auth_failure_window; /* seconds */
} allowd_config;

/* Sets every option to its default. */
void allowd_config_defaults(allowd_config *c);
void allowd_config_clear(allowd_config *c);

/*
 * Applies ALLOWD_* environment variables, then argv flags (which win).
 * Returns 0, 1 when --help or --version was printed (exit 0), or
 * ALLOWD_EINVALID with a message naming the option.
 */
int allowd_config_load(allowd_config *c, int argc, char **argv);

/* Prints the option table as `--help` text. */
void allowd_config_usage(FILE *out, const char *argv0);

/* Prints the option table as a Markdown table (docs/configuration.md). */
void allowd_config_markdown(FILE *out);

#endif

/*
 * config.c - the option table and its parser (flags and ALLOWD_* variables).
 */
#include "allowd/config.h"
#include "allowd/error.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_STRING, OPT_INT, OPT_BOOL };

static const struct option_def {
	const char *name; /* flag without "--"; env is ALLOWD_ + upper(name), '-' -> '_' */
	enum opt_type type;
	size_t offset;
	const char *def;
	int64_t min, max;
	const char *help;
} options[] = {
	{"listen", OPT_STRING, offsetof(allowd_config, listen), "127.0.0.1:8787", 0, 0,
	 "address and port to serve HTTP on (IPv6 as [::1]:8787; port 0 picks a free one)"},
	{"data-dir", OPT_STRING, offsetof(allowd_config, data_dir), "./var", 0, 0,
	 "directory holding the database, credentials.json and auth.key"},
	{"threads", OPT_INT, offsetof(allowd_config, threads), "8", 1, 256,
	 "HTTP worker threads; concurrent writes share one commit"},
	{"max-body", OPT_INT, offsetof(allowd_config, max_body), "1048576", 1024, 67108864,
	 "largest request body accepted, in bytes (larger: 413)"},
	{"max-connections", OPT_INT, offsetof(allowd_config, max_connections), "1024", 1, 65536,
	 "simultaneous client connections"},
	{"connection-timeout", OPT_INT, offsetof(allowd_config, connection_timeout), "30", 1,
	 3600, "seconds a connection may stay idle, and a request's line, headers and body may "
	       "take to arrive, before the connection is closed"},
	{"max-header-bytes", OPT_INT, offsetof(allowd_config, max_header_bytes), "16384", 8192,
	 1048576, "largest request target and request line + headers, in bytes (beyond: 414, 431)"},
	{"log-level", OPT_STRING, offsetof(allowd_config, log_level), "info", 0, 0,
	 "error, warn, info or debug"},
	{"access-log", OPT_BOOL, offsetof(allowd_config, access_log), "true", 0, 1,
	 "one line per request: id, method, path, status, microseconds"},
	{"rate-limit", OPT_INT, offsetof(allowd_config, rate_limit), "1200", 0, 100000000,
	 "requests per credential per window (Cloudflare's 1200 per 5 minutes); 0 switches it off"},
	{"rate-limit-window", OPT_INT, offsetof(allowd_config, rate_limit_window), "300", 1, 86400,
	 "seconds in a request-limit window"},
	{"auth-failure-limit", OPT_INT, offsetof(allowd_config, auth_failure_limit), "60", 0,
	 1000000, "failed authentications per client IP per window before 429; 0 switches it off"},
	{"auth-failure-window", OPT_INT, offsetof(allowd_config, auth_failure_window), "60", 1,
	 86400, "seconds in a failed-authentication window"},
	{"subaddress-delimiter", OPT_STRING, offsetof(allowd_config, subaddress_delimiter), "+", 0,
	 0, "a policy user@d also matches user<delim>tag@d; empty switches it off"},
	{"regex-match-limit", OPT_INT, offsetof(allowd_config, regex_match_limit), "100000", 1000,
	 100000000, "PCRE2 match limit per regex and subject; a match that hits it counts as none"},
	{"evaluate-budget", OPT_INT, offsetof(allowd_config, evaluate_budget), "1000", 0, 600000,
	 "milliseconds of regex matching one evaluate request may use in all (beyond: 400); 0 = off"},
	{"notify-fd", OPT_INT, offsetof(allowd_config, notify_fd), "-1", -1, 1024,
	 "file descriptor to write the bound port to once listening (for supervisors and tests)"},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static void env_name(char *buf, size_t len, const char *name)
{
	size_t o = (size_t)snprintf(buf, len, "ALLOWD_");
	for (; *name && o + 1 < len; name++)
		buf[o++] = *name == '-' ? '_' : (char)(*name >= 'a' && *name <= 'z' ? *name - 32 : *name);
	buf[o] = '\0';
}

static int set_value(allowd_config *c, const struct option_def *o, const char *v, const char *from)
{
	char *base = (char *)c;

	if (o->type == OPT_STRING) {
		char **slot = (char **)(base + o->offset);
		char *copy = strdup(v);
		if (!copy)
			return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		free(*slot);
		*slot = copy;
		return 0;
	}
	if (o->type == OPT_BOOL) {
		int64_t *slot = (int64_t *)(base + o->offset);
		if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
			*slot = 1;
		else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off"))
			*slot = 0;
		else
			return allowd_error_set(ALLOWD_EINVALID, NULL, "%s %s: expected true or false, got '%s'",
						from, o->name, v);
		return 0;
	}
	{
		int64_t *slot = (int64_t *)(base + o->offset);
		char *end;
		long long n;
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno || end == v || *end || n < o->min || n > o->max)
			return allowd_error_set(ALLOWD_EINVALID, NULL,
						"%s %s: expected an integer from %lld to %lld, got '%s'",
						from, o->name, (long long)o->min, (long long)o->max, v);
		*slot = n;
	}
	return 0;
}

void allowd_config_defaults(allowd_config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < N_OPTIONS; i++)
		set_value(c, &options[i], options[i].def, "default");
}

void allowd_config_clear(allowd_config *c)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (options[i].type == OPT_STRING) {
			char **slot = (char **)((char *)c + options[i].offset);
			free(*slot);
			*slot = NULL;
		}
}

int allowd_config_load(allowd_config *c, int argc, char **argv)
{
	char env[64];
	int rc;

	for (size_t i = 0; i < N_OPTIONS; i++) {
		const char *v;
		env_name(env, sizeof(env), options[i].name);
		if ((v = getenv(env)) && (rc = set_value(c, &options[i], v, env)))
			return rc;
	}
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a], *val = NULL, *eq;
		const struct option_def *o = NULL;
		size_t nlen;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			allowd_config_usage(stdout, argv[0]);
			return 1;
		}
		if (!strcmp(arg, "--help-markdown")) {
			allowd_config_markdown(stdout);
			return 1;
		}
		if (!strcmp(arg, "--version")) {
			printf("allowd 0.1.0\n");
			return 1;
		}
		if (strncmp(arg, "--", 2) != 0)
			return allowd_error_set(ALLOWD_EINVALID, NULL, "unexpected argument '%s'", arg);
		arg += 2;
		eq = strchr(arg, '=');
		nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		for (size_t i = 0; i < N_OPTIONS; i++)
			if (strlen(options[i].name) == nlen && !strncmp(options[i].name, arg, nlen))
				o = &options[i];
		if (!o)
			return allowd_error_set(ALLOWD_EINVALID, NULL,
						"unknown option '--%.*s' (see --help)", (int)nlen, arg);
		if (eq)
			val = eq + 1;
		else if (a + 1 < argc)
			val = argv[++a];
		else
			return allowd_error_set(ALLOWD_EINVALID, NULL, "option --%s needs a value",
						o->name);
		if ((rc = set_value(c, o, val, "option")))
			return rc;
	}
	return 0;
}

void allowd_config_usage(FILE *out, const char *argv0)
{
	char env[64];
	fprintf(out, "usage: %s [--option VALUE]...\n\n"
		     "Serves Cloudflare Email Security allow policies.  Every option can also be\n"
		     "set with its environment variable; flags win.\n\n",
		argv0);
	for (size_t i = 0; i < N_OPTIONS; i++) {
		env_name(env, sizeof(env), options[i].name);
		fprintf(out, "  --%-20s %s\n  %-22s default %s; env %s\n", options[i].name,
			options[i].help, "", options[i].def, env);
	}
}

void allowd_config_markdown(FILE *out)
{
	char env[64];
	fprintf(out, "| Flag | Environment | Default | Meaning |\n|---|---|---|---|\n");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		env_name(env, sizeof(env), options[i].name);
		fprintf(out, "| `--%s` | `%s` | `%s` | %s |\n", options[i].name, env, options[i].def,
			options[i].help);
	}
}

/*
 * cli.c - allowctl, the administration tool: accounts, users, tokens.
 * It opens the same store as the server (safe while the server runs:
 * SQLite serialises the writers) and prints a table, or with --json one
 * JSON value for scripts.  Exit codes are in allowd/cli.h.
 */
#include "allowd/cli.h"
#include "cli/cli_int.h"
#include "allowd/auth.h"
#include "allowd/clock.h"
#include "allowd/error.h"
#include "allowd/log.h"
#include "allowd/store.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct command {
	const char *noun, *verb; /* verb NULL: a one-word command (eval) */
	int (*run)(cli *c);
	const char *usage;
	const char *flags[MAX_FLAGS]; /* accepted flag names */
	int positional;               /* number of positional arguments */
} command;

/* ---- helpers -------------------------------------------------------- */

static int fail(cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(cli *c, int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(c->err, "allowctl: ");
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->err);
	return code;
}

/* Exit code for a library error, with its message printed. */
static int fail_error(cli *c, int rc)
{
	const allowd_error *e = allowd_error_last();
	int code = rc == ALLOWD_ENOTFOUND                             ? ALLOWD_CLI_NOTFOUND
	           : rc == ALLOWD_EINVALID || rc == ALLOWD_EDUPLICATE ? ALLOWD_CLI_INVALID
	                                                              : ALLOWD_CLI_FAILURE;
	return fail(c, code, "%s", e->message[0] ? e->message : allowd_error_default_message(rc));
}

static flag *find_flag(cli *c, const char *name)
{
	for (int i = 0; i < c->n_flags; i++)
		if (strcmp(c->flags[i].name, name) == 0)
			return &c->flags[i];
	return NULL;
}

static const char *flag_value(cli *c, const char *name)
{
	flag *f = find_flag(c, name);
	return f && f->n ? f->values[f->n - 1] : NULL;
}

static int emit(cli *c, json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (!s)
		return fail(c, ALLOWD_CLI_FAILURE, "out of memory");
	fprintf(c->out, "%s\n", s);
	free(s);
	return 0;
}

static void time_or_dash(char *buf, size_t len, int64_t ms)
{
	if (ms)
		allowd_time_format(buf, len, ms);
	else
		snprintf(buf, len, "-");
}

static const char *perm_name(allowd_perm p)
{
	return p == ALLOWD_PERM_WRITE ? "write" : p == ALLOWD_PERM_READ ? "read" : "none";
}

static int parse_perm(allowd_perm *out, const char *s)
{
	if (strcmp(s, "read") == 0)
		*out = ALLOWD_PERM_READ;
	else if (strcmp(s, "write") == 0)
		*out = ALLOWD_PERM_WRITE;
	else
		return -1;
	return 0;
}

static json_t *grants_json(const allowd_grant *g, size_t n, const char *key)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "account_id", g[i].account_id, key,
		                                   perm_name(g[i].perm)));
	return a;
}

static void grants_text(char *buf, size_t len, const allowd_grant *g, size_t n)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++) {
		int w = snprintf(buf + o, len - o, "%s%s:%s", i ? "," : "", g[i].account_id,
		                 perm_name(g[i].perm));
		if (w < 0)
			break;
		o += (size_t)w;
	}
	if (!n)
		snprintf(buf, len, "-");
}

static int need_account_id(cli *c, const char *id)
{
	if (!allowd_is_hex_id(id))
		return fail(c, ALLOWD_CLI_INVALID,
		            "'%s' is not an account id (32 hexadecimal characters)", id);
	return 0;
}

/* ---- accounts ------------------------------------------------------- */

static int account_create(cli *c)
{
	char id[ALLOWD_ACCOUNT_ID_LEN + 1];
	const char *name = flag_value(c, "name");
	int rc;

	if (!name || !*name)
		return fail(c, ALLOWD_CLI_USAGE, "account create needs --name NAME");
	allowd_auth_random_id(id);
	if ((rc = allowd_store_account_create(c->store, id, name)))
		return fail_error(c, rc);
	if (c->json) {
		json_t *j = json_pack("{s:s, s:s}", "id", id, "name", name);
		rc = emit(c, j);
		json_decref(j);
		return rc;
	}
	fprintf(c->out, "%s\n", id);
	return 0;
}

static int account_list(cli *c)
{
	allowd_account *a = NULL;
	size_t n = 0;
	char t[ALLOWD_TIME_STR_MAX];
	int rc;

	if ((rc = allowd_store_account_list(c->store, &a, &n)))
		return fail_error(c, rc);
	if (c->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			allowd_time_format(t, sizeof(t), a[i].created_at);
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I}", "id", a[i].id,
			                                     "name", a[i].name ? a[i].name : "",
			                                     "created_at", t, "policies",
			                                     (json_int_t)a[i].policy_count));
		}
		rc = emit(c, arr);
		json_decref(arr);
	} else {
		fprintf(c->out, "%-32s  %-24s  %8s  %s\n", "ID", "CREATED", "POLICIES", "NAME");
		for (size_t i = 0; i < n; i++) {
			allowd_time_format(t, sizeof(t), a[i].created_at);
			fprintf(c->out, "%-32s  %-24s  %8lld  %s\n", a[i].id, t,
			        (long long)a[i].policy_count, a[i].name ? a[i].name : "");
		}
	}
	allowd_account_list_free(a, n);
	return rc;
}

static int account_delete(cli *c)
{
	const char *id = c->positional[0];
	int rc;

	if ((rc = need_account_id(c, id)))
		return rc;
	if ((rc = allowd_store_account_delete(c->store, id)))
		return fail_error(c, rc);
	if (c->json) {
		json_t *j = json_pack("{s:s}", "id", id);
		rc = emit(c, j);
		json_decref(j);
		return rc;
	}
	fprintf(c->out, "deleted account %s\n", id);
	return 0;
}

/* ---- users ---------------------------------------------------------- */

static int print_email_key(cli *c, const char *email, const char *key)
{
	int rc = 0;
	if (c->json) {
		json_t *j = json_pack("{s:s, s:s}", "email", email, "api_key", key);
		rc = emit(c, j);
		json_decref(j);
	} else {
		fprintf(c->out,
		        "email:   %s\napi_key: %s\n(the key is shown once; only its hash is "
		        "kept)\n",
		        email, key);
	}
	return rc;
}

static int valid_email(cli *c, const char *email)
{
	char *norm = NULL;
	if (!email)
		return fail(c, ALLOWD_CLI_USAGE, "--email EMAIL is required");
	if (allowd_pattern_email(&norm, email))
		return fail(c, ALLOWD_CLI_INVALID, "--email %s: %s", email,
		            allowd_error_last()->message);
	free(norm);
	return 0;
}

static int user_create(cli *c)
{
	const char *email = flag_value(c, "email");
	char key[ALLOWD_API_KEY_LEN + 1];
	unsigned char hash[ALLOWD_HASH_LEN];
	allowd_user u;
	int rc;

	if ((rc = valid_email(c, email)))
		return rc;
	if (allowd_store_user_find(c->store, &u, email) == 0) {
		allowd_user_clear(&u);
		return fail(c, ALLOWD_CLI_INVALID, "user %s already exists", email);
	}
	allowd_auth_random_key(key);
	allowd_auth_hash(c->auth, hash, key);
	if ((rc = allowd_store_user_create(c->store, email, hash)))
		return fail_error(c, rc);
	rc = print_email_key(c, email, key);
	sodium_memzero(key, sizeof(key));
	return rc;
}

static int user_roll_key(cli *c)
{
	const char *email = flag_value(c, "email");
	char key[ALLOWD_API_KEY_LEN + 1];
	unsigned char hash[ALLOWD_HASH_LEN];
	int rc;

	if (!email)
		return fail(c, ALLOWD_CLI_USAGE, "user roll-key needs --email EMAIL");
	allowd_auth_random_key(key);
	allowd_auth_hash(c->auth, hash, key);
	if ((rc = allowd_store_user_set_key(c->store, email, hash)))
		return fail_error(c, rc);
	rc = print_email_key(c, email, key);
	sodium_memzero(key, sizeof(key));
	return rc;
}

static int user_add_to_account(cli *c)
{
	const char *email = flag_value(c, "email"), *acc = flag_value(c, "account"),
	           *role = flag_value(c, "role");
	allowd_perm perm;
	allowd_user u;
	int rc;

	if (!email || !acc || !role)
		return fail(c, ALLOWD_CLI_USAGE,
		            "user add-to-account needs --email E --account ID --role read|write");
	if (parse_perm(&perm, role))
		return fail(c, ALLOWD_CLI_USAGE, "--role must be read or write");
	if ((rc = need_account_id(c, acc)))
		return rc;
	if ((rc = allowd_store_user_find(c->store, &u, email)))
		return fail_error(c, rc);
	allowd_user_clear(&u);
	if ((rc = allowd_store_account_exists(c->store, acc)))
		return fail_error(c, rc);
	if ((rc = allowd_store_membership_set(c->store, email, acc, perm)))
		return fail_error(c, rc);
	if (c->json) {
		json_t *j =
		    json_pack("{s:s, s:s, s:s}", "email", email, "account_id", acc, "role", role);
		rc = emit(c, j);
		json_decref(j);
		return rc;
	}
	fprintf(c->out, "%s has %s on %s\n", email, role, acc);
	return 0;
}

static int user_list(cli *c)
{
	allowd_user *u = NULL;
	size_t n = 0;
	char g[512];
	int rc;

	if ((rc = allowd_store_user_list(c->store, &u, &n)))
		return fail_error(c, rc);
	if (c->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(
			    arr, json_pack("{s:s, s:o}", "email", u[i].email, "accounts",
			                   grants_json(u[i].grants, u[i].n_grants, "role")));
		rc = emit(c, arr);
		json_decref(arr);
	} else {
		fprintf(c->out, "%-32s  %s\n", "EMAIL", "ACCOUNTS (id:role)");
		for (size_t i = 0; i < n; i++) {
			grants_text(g, sizeof(g), u[i].grants, u[i].n_grants);
			fprintf(c->out, "%-32s  %s\n", u[i].email, g);
		}
	}
	allowd_user_list_free(u, n);
	return rc;
}

static int user_delete(cli *c)
{
	const char *email = flag_value(c, "email");
	int rc;

	if (!email)
		return fail(c, ALLOWD_CLI_USAGE, "user delete needs --email EMAIL");
	if ((rc = allowd_store_user_delete(c->store, email)))
		return fail_error(c, rc);
	if (c->json) {
		json_t *j = json_pack("{s:s}", "email", email);
		rc = emit(c, j);
		json_decref(j);
		return rc;
	}
	fprintf(c->out, "deleted user %s\n", email);
	return 0;
}

/* ---- tokens --------------------------------------------------------- */

static int token_create(cli *c)
{
	flag *accounts = find_flag(c, "account"), *perms = find_flag(c, "perm"),
	     *ips = find_flag(c, "ip");
	const char *expires = flag_value(c, "expires"), *not_before = flag_value(c, "not-before");
	allowd_grant grants[MAX_FLAG_VALUES];
	char secret[ALLOWD_TOKEN_LEN + 1], joined[4096] = "";
	unsigned char hash[ALLOWD_HASH_LEN];
	allowd_token t;
	size_t o = 0;
	int rc;

	memset(&t, 0, sizeof(t));
	if (!accounts || !perms || accounts->n != perms->n)
		return fail(c, ALLOWD_CLI_USAGE,
		            "token create needs one --perm read|write after each --account ID");
	for (int i = 0; i < accounts->n; i++) {
		if ((rc = need_account_id(c, accounts->values[i])))
			return rc;
		if (parse_perm(&grants[i].perm, perms->values[i]))
			return fail(c, ALLOWD_CLI_USAGE, "--perm must be read or write");
		if ((rc = allowd_store_account_exists(c->store, accounts->values[i])))
			return fail(c, ALLOWD_CLI_NOTFOUND, "no account %s", accounts->values[i]);
		snprintf(grants[i].account_id, sizeof(grants[i].account_id), "%s",
		         accounts->values[i]);
		for (char *p = grants[i].account_id; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p + 32);
	}
	if (expires && allowd_time_parse(&t.expires_on, expires))
		return fail(c, ALLOWD_CLI_USAGE, "--expires: %s", allowd_error_last()->message);
	if (not_before && allowd_time_parse(&t.not_before, not_before))
		return fail(c, ALLOWD_CLI_USAGE, "--not-before: %s", allowd_error_last()->message);
	for (int i = 0; ips && i < ips->n; i++) {
		int w =
		    snprintf(joined + o, sizeof(joined) - o, "%s%s", i ? "," : "", ips->values[i]);
		if (w < 0 || (size_t)w >= sizeof(joined) - o)
			return fail(c, ALLOWD_CLI_USAGE, "too many --ip ranges");
		o += (size_t)w;
	}
	if (o && allowd_auth_ip_ranges_normalize(&t.ip_ranges, joined))
		return fail(c, ALLOWD_CLI_USAGE, "--ip: %s", allowd_error_last()->message);
	allowd_auth_random_id(t.id);
	t.active = true;
	t.grants = grants;
	t.n_grants = (size_t)accounts->n;
	allowd_auth_random_token(secret);
	allowd_auth_hash(c->auth, hash, secret);
	rc = allowd_store_token_create(c->store, &t, hash);
	free(t.ip_ranges);
	if (rc) {
		sodium_memzero(secret, sizeof(secret));
		return fail_error(c, rc);
	}
	if (c->json) {
		json_t *j = json_pack("{s:s, s:s}", "id", t.id, "token", secret);
		rc = emit(c, j);
		json_decref(j);
	} else {
		fprintf(c->out,
		        "id:    %s\ntoken: %s\n(the token is shown once; only its hash is "
		        "kept)\n",
		        t.id, secret);
	}
	sodium_memzero(secret, sizeof(secret));
	return rc;
}

static const char *token_status(const allowd_token *t, int64_t now)
{
	if (!t->active)
		return "disabled";
	if (t->expires_on && now >= t->expires_on)
		return "expired";
	if (t->not_before && now < t->not_before)
		return "pending";
	return "active";
}

static int token_list(cli *c)
{
	allowd_token *t = NULL;
	size_t n = 0;
	char g[512], exp[ALLOWD_TIME_STR_MAX], used[ALLOWD_TIME_STR_MAX], nb[ALLOWD_TIME_STR_MAX];
	int64_t now = allowd_now_ms();
	int rc;

	if ((rc = allowd_store_token_list(c->store, &t, &n)))
		return fail_error(c, rc);
	if (c->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_pack("{s:s, s:s, s:o}", "id", t[i].id, "status",
			                      token_status(&t[i], now), "grants",
			                      grants_json(t[i].grants, t[i].n_grants, "perm"));
			time_or_dash(exp, sizeof(exp), t[i].expires_on);
			time_or_dash(nb, sizeof(nb), t[i].not_before);
			time_or_dash(used, sizeof(used), t[i].last_used);
			json_object_set_new(o, "expires_on",
			                    t[i].expires_on ? json_string(exp) : json_null());
			json_object_set_new(o, "not_before",
			                    t[i].not_before ? json_string(nb) : json_null());
			json_object_set_new(o, "last_used",
			                    t[i].last_used ? json_string(used) : json_null());
			json_object_set_new(o, "ip_ranges",
			                    json_string(t[i].ip_ranges ? t[i].ip_ranges : ""));
			json_array_append_new(arr, o);
		}
		rc = emit(c, arr);
		json_decref(arr);
	} else {
		fprintf(c->out, "%-32s  %-8s  %-24s  %-24s  %s\n", "ID", "STATUS", "EXPIRES",
		        "LAST USED", "GRANTS (account:perm)");
		for (size_t i = 0; i < n; i++) {
			grants_text(g, sizeof(g), t[i].grants, t[i].n_grants);
			time_or_dash(exp, sizeof(exp), t[i].expires_on);
			time_or_dash(used, sizeof(used), t[i].last_used);
			fprintf(c->out, "%-32s  %-8s  %-24s  %-24s  %s%s%s\n", t[i].id,
			        token_status(&t[i], now), exp, used, g,
			        t[i].ip_ranges && *t[i].ip_ranges ? " ip=" : "",
			        t[i].ip_ranges ? t[i].ip_ranges : "");
		}
	}
	allowd_token_list_free(t, n);
	return rc;
}

static int token_change(cli *c, const char *verb)
{
	const char *id = c->positional[0];
	int rc;

	if (!allowd_is_hex_id(id))
		return fail(c, ALLOWD_CLI_INVALID, "'%s' is not a token id", id);
	if (strcmp(verb, "revoke") == 0)
		rc = allowd_store_token_delete(c->store, id);
	else
		rc = allowd_store_token_set_active(c->store, id, strcmp(verb, "enable") == 0);
	if (rc)
		return fail_error(c, rc);
	if (c->json) {
		json_t *j = json_pack("{s:s, s:s}", "id", id, "status",
		                      strcmp(verb, "revoke") == 0   ? "revoked"
		                      : strcmp(verb, "enable") == 0 ? "active"
		                                                    : "disabled");
		rc = emit(c, j);
		json_decref(j);
		return rc;
	}
	fprintf(c->out, "token %s %sd\n", id, strcmp(verb, "revoke") == 0 ? "revoke" : verb);
	return 0;
}

static int token_disable(cli *c)
{
	return token_change(c, "disable");
}

static int token_enable(cli *c)
{
	return token_change(c, "enable");
}

static int token_revoke(cli *c)
{
	return token_change(c, "revoke");
}

/* ---- the command table ---------------------------------------------- */

static const command commands[] = {
    {"account", "create", account_create, "account create --name NAME", {"name"}, 0},
    {"account", "list", account_list, "account list", {NULL}, 0},
    {"account", "delete", account_delete, "account delete ID", {NULL}, 1},
    {"user", "create", user_create, "user create --email EMAIL", {"email"}, 0},
    {"user",
     "add-to-account",
     user_add_to_account,
     "user add-to-account --email EMAIL --account ID --role read|write",
     {"email", "account", "role"},
     0},
    {"user", "list", user_list, "user list", {NULL}, 0},
    {"user", "delete", user_delete, "user delete --email EMAIL", {"email"}, 0},
    {"user", "roll-key", user_roll_key, "user roll-key --email EMAIL", {"email"}, 0},
    {"token",
     "create",
     token_create,
     "token create --account ID --perm read|write [--account ID --perm ...] "
     "[--expires RFC3339] [--not-before RFC3339] [--ip CIDR]...",
     {"account", "perm", "expires", "not-before", "ip"},
     0},
    {"token", "list", token_list, "token list", {NULL}, 0},
    {"token", "disable", token_disable, "token disable ID", {NULL}, 1},
    {"token", "enable", token_enable, "token enable ID", {NULL}, 1},
    {"token", "revoke", token_revoke, "token revoke ID", {NULL}, 1},
    {"eval",
     NULL,
     cli_eval,
     "eval --account ID [--eml FILE|-] [--envelope-from A] [--header-from A] [--reply-to A]...\n"
     "                [--recipient A]... [--client-ip IP] [--server-name HOST]\n"
     "                [--auth-results VALUE]... [--trusted-authserv-id ID]...\n"
     "                [--spf RESULT[:DOMAIN]] [--dkim RESULT:DOMAIN]... [--dmarc RESULT[:DOMAIN]]\n"
     "                [--disposition D]...",
     {"account", "eml", "envelope-from", "header-from", "reply-to", "recipient", "client-ip",
      "server-name", "auth-results", "trusted-authserv-id", "spf", "dkim", "dmarc", "disposition"},
     0},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: allowctl [--data-dir DIR] [--json] COMMAND\n\n"
	        "Administers allowd's accounts, users and tokens (also while the server runs)\n"
	        "and evaluates messages against an account's policies.\n"
	        "--data-dir defaults to $ALLOWD_DATA_DIR or ./var, as for allowd.\n\n"
	        "Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  allowctl %s\n", commands[i].usage);
	fprintf(out,
	        "\nExit codes: 0 success, 1 failure, 2 usage, 3 not found, 4 invalid input.\n");
}

static int accepts(const command *cmd, const char *name)
{
	for (int i = 0; i < MAX_FLAGS && cmd->flags[i]; i++)
		if (strcmp(cmd->flags[i], name) == 0)
			return 1;
	return 0;
}

static int open_store(cli *c)
{
	char path[4096];
	allowd_store_options so = {0};

	if (mkdir(c->data_dir, 0700) != 0 && errno != EEXIST)
		return fail(c, ALLOWD_CLI_FAILURE, "cannot create %s: %s", c->data_dir,
		            strerror(errno));
	if (snprintf(path, sizeof(path), "%s/allowd.db", c->data_dir) >= (int)sizeof(path))
		return fail(c, ALLOWD_CLI_USAGE, "--data-dir is too long");
	so.path = path;
	if (allowd_store_open(&c->store, &so) || allowd_auth_new(&c->auth, c->store, c->data_dir))
		return fail(c, ALLOWD_CLI_FAILURE, "%s", allowd_error_last()->message);
	return 0;
}

int allowd_cli_main(int argc, char **argv, FILE *out, FILE *err)
{
	cli c;
	const command *cmd = NULL;
	const char *noun = NULL, *verb = NULL;
	int i, rc;

	memset(&c, 0, sizeof(c));
	c.out = out;
	c.err = err;
	c.data_dir = getenv("ALLOWD_DATA_DIR") ? getenv("ALLOWD_DATA_DIR") : "./var";
	allowd_log_threshold = ALLOWD_LOG_WARN;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(out);
			rc = 0;
			goto out;
		}
		if (strcmp(a, "--json") == 0) {
			c.json = 1;
		} else if (strncmp(a, "--", 2) == 0) {
			const char *name = a + 2, *eq = strchr(name, '='), *val;
			char fname[32];
			size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
			flag *f;
			if (nlen >= sizeof(fname)) {
				rc = fail(&c, ALLOWD_CLI_USAGE, "unknown option %s", a);
				goto out;
			}
			memcpy(fname, name, nlen);
			fname[nlen] = '\0';
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else {
				rc = fail(&c, ALLOWD_CLI_USAGE, "option --%s needs a value", fname);
				goto out;
			}
			if (strcmp(fname, "data-dir") == 0) {
				c.data_dir = val;
				continue;
			}
			if (!(f = find_flag(&c, fname))) {
				if (c.n_flags == MAX_FLAGS) {
					rc = fail(&c, ALLOWD_CLI_USAGE, "too many options");
					goto out;
				}
				f = &c.flags[c.n_flags++];
				if (!(f->name = strndup(fname, nlen))) {
					rc = fail(&c, ALLOWD_CLI_FAILURE, "out of memory");
					goto out;
				}
			}
			if (f->n == MAX_FLAG_VALUES) {
				rc = fail(&c, ALLOWD_CLI_USAGE, "too many --%s", fname);
				goto out;
			}
			f->values[f->n++] = val;
		} else if (!noun) {
			noun = a;
		} else if (!verb) {
			verb = a;
		} else if (c.n_positional < 4) {
			c.positional[c.n_positional++] = a;
		} else {
			rc = fail(&c, ALLOWD_CLI_USAGE, "too many arguments");
			goto out;
		}
	}
	for (size_t k = 0; noun && k < N_COMMANDS; k++)
		if (strcmp(commands[k].noun, noun) == 0 && !commands[k].verb)
			cmd = &commands[k];
	if (cmd && verb) { /* a one-word command: the second word is a positional argument */
		rc = fail(&c, ALLOWD_CLI_USAGE, "usage: allowctl %s", cmd->usage);
		goto out;
	}
	if (!cmd && (!noun || !verb)) {
		usage(err);
		rc = ALLOWD_CLI_USAGE;
		goto out;
	}
	for (size_t k = 0; !cmd && k < N_COMMANDS; k++)
		if (commands[k].verb && strcmp(commands[k].noun, noun) == 0 &&
		    strcmp(commands[k].verb, verb) == 0)
			cmd = &commands[k];
	if (!cmd) {
		rc = fail(&c, ALLOWD_CLI_USAGE, "unknown command '%s %s' (see --help)", noun, verb);
		goto out;
	}
	for (int k = 0; k < c.n_flags; k++)
		if (!accepts(cmd, c.flags[k].name)) {
			rc = fail(&c, ALLOWD_CLI_USAGE,
			          "%s%s%s does not take --%s; usage: allowctl %s", noun,
			          verb ? " " : "", verb ? verb : "", c.flags[k].name, cmd->usage);
			goto out;
		}
	if (c.n_positional != cmd->positional) {
		rc = fail(&c, ALLOWD_CLI_USAGE, "usage: allowctl %s", cmd->usage);
		goto out;
	}
	if ((rc = open_store(&c)))
		goto out;
	rc = cmd->run(&c);
out:
	for (int k = 0; k < c.n_flags; k++)
		free(c.flags[k].name);
	allowd_auth_free(c.auth);
	allowd_store_free(c.store);
	return rc;
}

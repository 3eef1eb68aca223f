/*
 * cli_int.h - what allowctl's command files share (src/cli only): the
 * parsed command line, and the commands and helpers that live outside
 * cli.c (eval.c evaluates a message, eml.c reads one with GMime).
 */
#ifndef ALLOWD_CLI_INT_H
#define ALLOWD_CLI_INT_H

#include <stddef.h>
#include <stdio.h>

#include "allowd/auth.h"
#include "allowd/store.h"

#define MAX_FLAGS 16       /* distinct --flags on one command line */
#define MAX_FLAG_VALUES 64 /* values of one repeated --flag */

typedef struct flag {
	char *name;
	const char *values[MAX_FLAG_VALUES];
	int n;
} flag;

typedef struct cli {
	const char *data_dir;
	int json;
	allowd_store *store;
	allowd_auth *auth;
	const char *positional[4];
	int n_positional;
	flag flags[MAX_FLAGS];
	int n_flags;
	FILE *out, *err;
} cli;

/* allowctl eval (eval.c): returns an ALLOWD_CLI_* exit code. */
int cli_eval(cli *c);

/* ---- reading a message file (eml.c) ---------------------------------- */

#define EML_FILE_MAX (50u * 1024 * 1024) /* larger files are refused */
#define EML_HEADER_MAX (1024u * 1024)    /* larger header sections too (Exim's header_maxsize) */
#define EML_LIST_MAX 100                 /* reply-to addresses, recipients, A-R headers */
#define EML_VALUE_MAX 1024               /* bytes of one address or name */

/*
 * The facts one RFC 5322 message gives.  Every string is owned by the
 * struct (cli_eml_clear).  NULL means the message does not say; an
 * envelope_from of "" is a bounce (Return-Path: <>).
 */
typedef struct eml_facts {
	char *envelope_from;
	char *header_from;
	char *reply_to[EML_LIST_MAX];
	size_t n_reply_to;
	char *recipients[EML_LIST_MAX];
	size_t n_recipients;
	const char *recipients_from; /* static: the header(s) the recipients came from */
	char *client_ip;
	char *server_name;
	char *authres[EML_LIST_MAX]; /* raw Authentication-Results values, top first */
	size_t n_authres;
} eml_facts;

/*
 * Reads the message in the file at `path` with GMime.  Problems that leave
 * a fact unknown (an address GMime cannot parse, a Received header without
 * an IP literal, too many recipients) are reported as warnings on `warn`
 * and the fact is left NULL.  Only the header section goes to GMime.
 * Returns 0, or ALLOWD_ERR (the file cannot be read, is larger than
 * EML_FILE_MAX, its header section larger than EML_HEADER_MAX, or it is not
 * a message: no header field) with the error slot set.  *out is always initialised; release it with
 * cli_eml_clear.  Thread-safe: GMime is initialised once per process.
 */
int cli_eml_read(eml_facts *out, const char *path, FILE *warn);
void cli_eml_clear(eml_facts *f);

/*
 * Reads the `from` clause of one Received header value (RFC 5321 section
 * 4.4; folding and comments allowed): the HELO/EHLO name right after
 * `from`, and the client's IP address.  The IP is, in order of preference:
 * the first [address literal] inside a comment of the clause, not one a
 * client claimed in HELO (qmail's "(HELO [x])", Exim's "helo=[x]"); then
 * the first bare address that fills a whole comment (Microsoft's
 * "(2603:10b6::1)", qmail's "(192.0.2.1)"); then an [address literal]
 * in the HELO position (Exim's "from [192.0.2.1] (helo=...)").  An
 * "IPv6:" prefix inside the brackets is dropped.  The clause ends at a
 * top-level `by`, `via`, `with`, `id`, `for` or `;`.
 *
 * `ip` gets the address as written (checked with allowd_ip_parse), `helo`
 * the name as written unless it is an address literal or longer than 255
 * bytes; either is "" when not found.  Reads at most the first 4096 bytes
 * of `value`.  Returns 0, or -1 when the value does not start with `from`
 * (both outputs then "").
 */
int cli_received_parse(char ip[64], char helo[256], const char *value, size_t len);

#endif

/*
 * cli.h - allowctl, the administration command line, as a library call so
 * that tests drive it in-process and src/allowctl.c stays a thin main.
 */
#ifndef ALLOWD_CLI_H
#define ALLOWD_CLI_H

#include <stdio.h>

/* Exit codes scripts can rely on. */
enum {
	ALLOWD_CLI_OK = 0,
	ALLOWD_CLI_FAILURE = 1,  /* storage or other runtime failure */
	ALLOWD_CLI_USAGE = 2,    /* bad command line */
	ALLOWD_CLI_NOTFOUND = 3, /* the account, user or token does not exist */
	ALLOWD_CLI_INVALID = 4,  /* input rejected (bad email, duplicate, ...) */
};

/* Runs allowctl with argv, printing results to `out` and errors to `err`. */
int allowd_cli_main(int argc, char **argv, FILE *out, FILE *err);

#endif

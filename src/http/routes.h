/*
 * routes.h - the route table: method, path pattern, handler (and for a
 * write its start, which the server uses instead), permission.
 * Path patterns are '/'-separated; a segment ":account_id" or ":policy_id"
 * captures that path parameter.  The first route whose path and method
 * match wins; a path that matches with another method is a 405.
 */
#ifndef ALLOWD_HTTP_ROUTES_H
#define ALLOWD_HTTP_ROUTES_H

#include "api/api.h"

typedef struct allowd_route {
	const char *method;
	const char *path;
	api_handler handler;
	api_write_start start; /* writes: the handler in steps (api.h), or NULL */
	allowd_perm perm; /* needed on the path's account */
	int auth;         /* 0: no credentials; 1: credentials; 2: credentials + account perm */
} allowd_route;

extern const allowd_route allowd_routes[];
extern const size_t allowd_routes_count;

#define ROUTE_PARAMS_MAX 2

typedef struct route_match {
	const allowd_route *route; /* NULL: no path matched */
	int method_mismatch;       /* a path matched, but not with this method */
	char allow[64];            /* methods of the matching path, for 405 */
	char account_id[80];
	char policy_id[80];
} route_match;

/* Matches `path` (without query string, /client/v4 prefix already removed). */
void allowd_route_match(route_match *m, const char *method, const char *path);

#endif

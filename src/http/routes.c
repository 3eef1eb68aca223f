/*
 * routes.c - the route table and the matcher over it.
 */
#include "http/routes.h"

#include <stdio.h>
#include <string.h>

#define POLICIES "/accounts/:account_id/email-security/settings/allow_policies"

enum { NO_AUTH = 0, AUTH = 1, AUTH_ACCOUNT = 2 };

const allowd_route allowd_routes[] = {
	{"POST", POLICIES "/batch", api_policy_batch, api_policy_batch_start, ALLOWD_PERM_WRITE,
	 AUTH_ACCOUNT},
	{"POST", POLICIES, api_policy_create, api_policy_create_start, ALLOWD_PERM_WRITE,
	 AUTH_ACCOUNT},
	{"GET", POLICIES, api_policy_list, NULL, ALLOWD_PERM_READ, AUTH_ACCOUNT},
	{"GET", POLICIES "/:policy_id", api_policy_get, NULL, ALLOWD_PERM_READ, AUTH_ACCOUNT},
	{"PATCH", POLICIES "/:policy_id", api_policy_edit, api_policy_edit_start, ALLOWD_PERM_WRITE,
	 AUTH_ACCOUNT},
	{"DELETE", POLICIES "/:policy_id", api_policy_delete, api_policy_delete_start,
	 ALLOWD_PERM_WRITE, AUTH_ACCOUNT},
	{"POST", "/allowd/v1/accounts/:account_id/evaluate", api_evaluate, NULL, ALLOWD_PERM_READ,
	 AUTH_ACCOUNT},
	{"GET", "/user/tokens/verify", api_token_verify, NULL, ALLOWD_PERM_NONE, AUTH},
	{"GET", "/healthz", api_health, NULL, ALLOWD_PERM_NONE, NO_AUTH},
};

const size_t allowd_routes_count = sizeof(allowd_routes) / sizeof(allowd_routes[0]);

/* Matches one route path against `path`, capturing parameters into m. */
static int path_matches(const char *pattern, const char *path, route_match *m)
{
	char account[sizeof(m->account_id)] = "", policy[sizeof(m->policy_id)] = "";

	while (*pattern && *path) {
		const char *pe, *se;
		size_t plen, slen;

		if (*pattern != '/' || *path != '/')
			return 0;
		pattern++;
		path++;
		pe = strchr(pattern, '/');
		se = strchr(path, '/');
		plen = pe ? (size_t)(pe - pattern) : strlen(pattern);
		slen = se ? (size_t)(se - path) : strlen(path);
		if (slen == 0)
			return 0;
		if (*pattern == ':') {
			char *dst = strncmp(pattern, ":account_id", plen) == 0 ? account : policy;
			if (slen >= sizeof(account))
				slen = sizeof(account) - 1; /* too long: fails validation later */
			memcpy(dst, path, slen);
			dst[slen] = '\0';
		} else if (plen != slen || memcmp(pattern, path, slen) != 0) {
			return 0;
		}
		pattern += plen;
		path += slen;
	}
	if (*pattern || *path)
		return 0;
	memcpy(m->account_id, account, sizeof(account));
	memcpy(m->policy_id, policy, sizeof(policy));
	return 1;
}

/* Number of ':' parameter segments: fewer is more specific. */
static int params_in(const char *pattern)
{
	int n = 0;
	for (; *pattern; pattern++)
		n += *pattern == ':';
	return n;
}

/*
 * Among the routes whose path matches, only the most specific (fewest
 * parameters) count: GET .../allow_policies/batch is a 405 on the batch
 * route, not a GET of a policy whose id is "batch".
 */
void allowd_route_match(route_match *m, const char *method, const char *path)
{
	size_t alen = 0;
	int best = 1 << 30;
	route_match tmp;

	for (size_t i = 0; i < allowd_routes_count; i++) {
		memset(&tmp, 0, sizeof(tmp));
		if (path_matches(allowd_routes[i].path, path, &tmp) &&
		    params_in(allowd_routes[i].path) < best)
			best = params_in(allowd_routes[i].path);
	}
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < allowd_routes_count; i++) {
		const allowd_route *r = &allowd_routes[i];

		memset(&tmp, 0, sizeof(tmp));
		if (params_in(r->path) != best || !path_matches(r->path, path, &tmp))
			continue;
		if (strcmp(r->method, method) == 0) {
			if (!m->route) {
				*m = tmp;
				m->route = r;
				alen = 0;
			}
			continue;
		}
		if (!strstr(m->allow, r->method)) {
			int n = snprintf(m->allow + alen, sizeof(m->allow) - alen, "%s%s",
					 alen ? ", " : "", r->method);
			if (n > 0 && (size_t)n < sizeof(m->allow) - alen)
				alen += (size_t)n;
		}
		m->method_mismatch = 1;
	}
	if (m->route)
		m->method_mismatch = 0;
}

/*
 * routes.c - the route table and the matcher over it.
 */
#include "http/routes.h"

#include <stdio.h>
#include <string.h>

#define POLICIES "/accounts/:account_id/email-security/settings/allow_policies"

const allowd_route allowd_routes[] = {
	{"POST", POLICIES "/batch", api_policy_batch, ALLOWD_PERM_WRITE},
	{"POST", POLICIES, api_policy_create, ALLOWD_PERM_WRITE},
	{"GET", POLICIES, api_policy_list, ALLOWD_PERM_READ},
	{"GET", POLICIES "/:policy_id", api_policy_get, ALLOWD_PERM_READ},
	{"PATCH", POLICIES "/:policy_id", api_policy_edit, ALLOWD_PERM_WRITE},
	{"DELETE", POLICIES "/:policy_id", api_policy_delete, ALLOWD_PERM_WRITE},
	{"GET", "/healthz", api_health, ALLOWD_PERM_NONE},
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

void allowd_route_match(route_match *m, const char *method, const char *path)
{
	size_t alen = 0;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < allowd_routes_count; i++) {
		route_match tmp;
		const allowd_route *r = &allowd_routes[i];

		memset(&tmp, 0, sizeof(tmp));
		if (!path_matches(r->path, path, &tmp))
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

/*
 * tokens.c - GET /user/tokens/verify, as Cloudflare answers it, so that
 * clients which verify their token at start-up work against allowd.
 */
#include "api/api.h"
#include "allowd/clock.h"

int api_token_verify(allowd_api *api, const api_request *req, api_response *resp)
{
	const allowd_principal *p = req->principal;
	char buf[ALLOWD_TIME_STR_MAX];
	json_t *r;

	(void)api;
	if (!p || !p->token_id[0]) {
		allowd_error_set(ALLOWD_EBADHEADERS, NULL, "Invalid request headers");
		allowd_error_chain_add(ALLOWD_CF_BAD_AUTHORIZATION);
		return ALLOWD_EBADHEADERS;
	}
	if (!(r = json_pack("{s:s, s:s}", "id", p->token_id, "status", "active")))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	if (p->not_before) {
		allowd_time_format(buf, sizeof(buf), p->not_before);
		json_object_set_new(r, "not_before", json_string(buf));
	}
	if (p->expires_on) {
		allowd_time_format(buf, sizeof(buf), p->expires_on);
		json_object_set_new(r, "expires_on", json_string(buf));
	}
	resp->result = r;
	return 0;
}

/*
 * server.h - the HTTP server: libmicrohttpd glue, routing, credentials,
 * envelopes and the access log.  The route table is src/http/routes.c.
 */
#ifndef ALLOWD_SERVER_H
#define ALLOWD_SERVER_H

#include "allowd/config.h"

typedef struct allowd_server allowd_server;
struct allowd_api;

/*
 * Binds cfg->listen and starts serving `api` (borrowed; must outlive the
 * server).  *port_out receives the bound port.
 */
int allowd_server_start(allowd_server **out, const allowd_config *cfg, struct allowd_api *api,
			int *port_out);

/*
 * Stops accepting connections, waits up to `grace_ms` for requests in
 * flight to finish, then stops and frees the server.  NULL is allowed.
 */
void allowd_server_stop(allowd_server *s, int grace_ms);

#endif

/*
 * server.c - libmicrohttpd glue.  Per request: bound the request line,
 * headers and framing, collect the body within --max-body and the request
 * deadline, match the route, authenticate and authorise, call the handler,
 * render Cloudflare's envelope, and write one access-log line when the
 * response has been sent.  A write's connection is suspended while the
 * write waits for its group commit (start_write), so it holds no thread.
 * Per-request memory is released in one place, on_completed().  Around libmicrohttpd: an acceptor thread hands each
 * connection to one of --threads single-threaded libmicrohttpd daemons
 * (acceptor_main), and a watchdog thread enforces the request deadlines and
 * drains connections that were answered before their body arrived
 * (watchdog_main).
 */
#include "allowd/server.h"
#include "allowd/auth.h"
#include "allowd/clock.h"
#include "allowd/log.h"
#include "allowd/ratelimit.h"
#include "api/api.h"
#include "http/routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define API_PREFIX "/client/v4"

/*
 * libmicrohttpd's per-connection memory is this many times --max-header-bytes,
 * so that a request line or header block somewhat past allowd's own limit
 * still reaches on_request and gets an enveloped 414 or 431; only one past
 * this gets libmicrohttpd's own (HTML) answer.
 */
#define POOL_FACTOR 2
/* How often the watchdog looks at the deadlines. */
#define WATCHDOG_TICK_MS 200
/* Connections drained at once after an early answer; more are just closed. */
#define MAX_LINGER 256

/*
 * One libmicrohttpd daemon per worker thread (see acceptor_main).  busy
 * counts requests between their headers and their completion; conns the
 * connections handed to it and not yet closed.
 */
typedef struct worker {
	struct MHD_Daemon *daemon;
	atomic_long busy;
	atomic_long conns;
} worker;

/*
 * One per TCP connection (libmicrohttpd's socket context), in the server's
 * list from MHD_CONNECTION_NOTIFY_STARTED to _CLOSED; libmicrohttpd closes
 * the socket only after _CLOSED, so fd is valid while the node is listed.
 * deadline_us is when the request being received must be complete (0: none,
 * a request is being handled or answered).  Guarded by allowd_server.conns_lock.
 */
typedef struct conn_node {
	struct conn_node *prev, *next;
	int fd;
	int64_t deadline_us;
	int shut;   /* the watchdog shut the socket down */
	int linger; /* answered before the body was read: drain it after the close */
	worker *w;  /* the daemon that serves it */
	size_t url_len; /* raw request target of the current request */
} conn_node;

typedef struct linger_fd {
	int fd;
	int64_t until_us;
	size_t budget; /* bytes still to discard */
} linger_fd;

struct allowd_server {
	worker *workers;
	int n_workers;
	allowd_api *api;
	int listen_fd;
	size_t max_body;
	int access_log;
	int64_t rate_window_s;
	atomic_uint_fast64_t next_id;
	uint32_t boot_id;
	int draining; /* under lock: the stop is waiting for writes, start no more */

	pthread_mutex_t lock; /* guards in_flight, writes, suspended and draining */
	pthread_cond_t idle;  /* in_flight, writes or suspended fell to 0 */
	long in_flight;       /* requests between their headers and their completion */
	long writes;          /* writes started whose write_done has not returned */
	long suspended;       /* write requests suspended and not yet back in on_request */

	size_t max_header;  /* --max-header-bytes: request line + headers */
	int64_t request_us; /* whole-request deadline; 0 = none */
	int64_t idle_us;    /* --connection-timeout */

	pthread_mutex_t conns_lock; /* guards conns, lingering, n_linger, stopping */
	conn_node *conns;
	linger_fd lingering[MAX_LINGER];
	int n_linger;
	int stopping;
	int wake[2]; /* pipe: wakes the watchdog for a new lingering socket or the stop */
	pthread_t watchdog;
	int watchdog_started;

	/* the acceptor (see acceptor_main); n_open and accept_stop under conns_lock */
	long max_conns;
	long n_open; /* handed to libmicrohttpd and not yet closed */
	int accept_stop;
	pthread_cond_t slot; /* n_open fell below max_conns, or accept_stop */
	int accept_wake[2];
	pthread_t acceptor;
	int acceptor_started;
};

typedef struct request {
	char id[24];
	int64_t start_us;
	char method[12];
	char path[160]; /* for the access log: printable, truncated */
	char *body;
	size_t body_len, body_cap;
	int too_large;
	size_t drained; /* bytes discarded after the body passed the limit */
	int responded;
	int close; /* answer with Connection: close */
	conn_node *cn;
	unsigned status;
	char ratelimit[96];        /* Ratelimit header, "" when none */
	char ratelimit_policy[96]; /* Ratelimit-Policy header */
	char retry_after[24];      /* Retry-After header on 429 */
	/* a write waiting for its commit on a suspended connection (start_write) */
	allowd_server *s;
	struct MHD_Connection *conn;
	api_write *write;   /* in flight or over; released by on_completed */
	int suspended;      /* suspended, not yet resumed into on_request */
	int start_failed;   /* the write was refused before it was queued: start_err */
	allowd_error start_err;
} request;

/* ---- responses ------------------------------------------------------ */

static enum MHD_Result send_json(struct MHD_Connection *conn, request *rq, unsigned status,
				 char *body, const char *allow)
{
	static char oom[] = "{\"success\":false,\"errors\":[{\"code\":1000,\"message\":"
				  "\"Internal error\"}],\"messages\":[],\"result\":null}";
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!body) {
		status = 500;
		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, oom,
						       MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	}
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, "X-Request-Id", rq->id);
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (rq->ratelimit[0]) {
		MHD_add_response_header(resp, "Ratelimit", rq->ratelimit);
		MHD_add_response_header(resp, "Ratelimit-Policy", rq->ratelimit_policy);
	}
	if (rq->retry_after[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, rq->retry_after);
	if (rq->close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	rq->status = status;
	rq->responded = 1;
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, request *rq, const char *allow)
{
	const allowd_error *e = allowd_error_last();
	if (e->code == ALLOWD_ERR)
		log_error("req=%s internal error: %s", rq->id, e->message);
	return send_json(conn, rq, (unsigned)allowd_error_http_status(e->code),
			 allowd_api_render_error(e), allow);
}

/* ---- dispatch ------------------------------------------------------- */

struct query_ctx {
	struct MHD_Connection *conn;
};

static const char *query_value(void *ctx, const char *name)
{
	struct query_ctx *q = ctx;
	return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
}

static const char *strip_prefix(const char *url)
{
	size_t n = strlen(API_PREFIX);
	if (strncmp(url, API_PREFIX, n) == 0 && (url[n] == '/' || url[n] == '\0'))
		return url[n] ? url + n : "/";
	return url;
}

static void client_ip(struct MHD_Connection *conn, char *ip, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	ip[0] = '\0';
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, ip,
			  (socklen_t)len);
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, ip,
			  (socklen_t)len);
}

static void set_retry_after(request *rq, int64_t reset_ms)
{
	snprintf(rq->retry_after, sizeof(rq->retry_after), "%lld",
		 (long long)((reset_ms + 999) / 1000));
}

/*
 * Credentials, rate limits and the account grant, in this order:
 *  1. a client IP with too many recent failed authentications gets 429;
 *  2. the credentials are checked (a failure counts against the IP);
 *  3. the credential's request window is counted (over it: 429);
 *  4. on account routes, the account id's shape, then the grant.
 * Fills *principal on success (the caller clears it).
 */
static int authenticate(allowd_server *s, struct MHD_Connection *conn, request *rq,
			route_match *m, allowd_principal *principal)
{
	char ip[INET6_ADDRSTRLEN];
	allowd_ratelimit_state st;
	allowd_credentials cred = {
		.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_AUTHORIZATION),
		.email = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Auth-Email"),
		.key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Auth-Key"),
		.client_ip = ip,
	};
	int64_t now = allowd_now_ms();
	int rc;

	client_ip(conn, ip, sizeof(ip));
	allowd_ratelimit_hit(s->api->auth_failures, ip, now, false, &st);
	if (!st.allowed) {
		set_retry_after(rq, st.reset_ms);
		return allowd_error_set(ALLOWD_ERATELIMIT, NULL,
					"too many failed authentications from this address; retry "
					"in %s seconds",
					rq->retry_after);
	}
	if ((rc = allowd_auth_authenticate(s->api->auth, principal, &cred))) {
		allowd_error local = *allowd_error_last();
		allowd_ratelimit_hit(s->api->auth_failures, ip, now, true, &st);
		return allowd_error_restore(&local);
	}
	if (allowd_ratelimit_enabled(s->api->requests)) {
		allowd_ratelimit_hit(s->api->requests, principal->rate_key, now, true, &st);
		snprintf(rq->ratelimit, sizeof(rq->ratelimit), "\"default\";r=%lld;t=%lld",
			 (long long)st.remaining, (long long)((st.reset_ms + 999) / 1000));
		snprintf(rq->ratelimit_policy, sizeof(rq->ratelimit_policy),
			 "\"default\";q=%lld;w=%lld", (long long)st.limit,
			 (long long)s->rate_window_s);
		if (!st.allowed) {
			set_retry_after(rq, st.reset_ms);
			return allowd_error_set(ALLOWD_ERATELIMIT, NULL,
						"rate limited: %lld requests per %lld seconds; retry "
						"in %s seconds",
						(long long)st.limit, (long long)s->rate_window_s,
						rq->retry_after);
		}
	}
	if (m->route->auth < 2)
		return 0;
	if (!allowd_is_hex_id(m->account_id))
		return allowd_error_set(ALLOWD_EINVALID, "/path/account_id",
					"account_id must be 32 hexadecimal characters");
	for (char *p = m->account_id; *p; p++) /* ids are stored lower case */
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p + 32);
	return allowd_auth_authorize(principal, m->account_id, m->route->perm);
}

/*
 * Writes wait for their group commit without holding the thread:
 *
 *   on_request (final call) --dispatch--> start_write: suspend the
 *     connection, then start the write (decode, validate, queue: api.h);
 *   the store's writer, once the write is durable and applied to the
 *     engine (or failed), calls write_done, which resumes the connection;
 *   libmicrohttpd calls on_request again --> finish_write: encode the
 *     result (or the write's error) and queue the response.
 *
 * The connection is suspended before the write is queued, so the writer
 * can never resume a connection that is not (yet) suspended.  When the
 * start fails (invalid input, the store refusing), the error is kept and
 * the connection resumed at once; finish_write answers it.  A suspended
 * request stays counted in in_flight (the stop waits for it) and in
 * `writes` until the writer is done with its connection; it is not counted
 * as busy for the acceptor, since it holds no thread.  libmicrohttpd does
 * not time out a suspended connection, and the request deadline is 0 once
 * the body is in, so the watchdog leaves it alone too.
 */
static void write_done(void *ctx)
{
	request *rq = ctx;
	allowd_server *s = rq->s;

	MHD_resume_connection(rq->conn); /* rq may be gone as soon as this returns */
	pthread_mutex_lock(&s->lock);
	if (--s->writes == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

/* What a handler sees of a request: route values, body, headers, query. */
static api_request api_request_of(struct MHD_Connection *conn, const request *rq,
				  const route_match *m, struct query_ctx *qctx,
				  allowd_principal *principal)
{
	return (api_request){
		.method = rq->method,
		.account_id = m->account_id,
		.policy_id = m->policy_id,
		.body = rq->body ? rq->body : "",
		.body_len = rq->body_len,
		.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							    MHD_HTTP_HEADER_CONTENT_TYPE),
		.query = query_value,
		.ctx = qctx,
		.principal = principal,
	};
}

/* Answers a handler's outcome: its error when rc, else resp in the envelope; frees resp. */
static enum MHD_Result send_outcome(struct MHD_Connection *conn, request *rq, int rc,
				    api_response *resp)
{
	enum MHD_Result ret;

	if (rc)
		ret = send_error(conn, rq, NULL);
	else
		ret = send_json(conn, rq, (unsigned)resp->status,
				allowd_api_render_success(resp), NULL);
	json_decref(resp->result);
	json_decref(resp->result_info);
	return ret;
}

static enum MHD_Result start_write(allowd_server *s, struct MHD_Connection *conn, request *rq,
				   route_match *m, allowd_principal *principal)
{
	struct query_ctx qctx = {conn};
	api_request req = api_request_of(conn, rq, m, &qctx, principal);
	int draining;

	pthread_mutex_lock(&s->lock);
	if (!(draining = s->draining)) {
		s->writes++;
		s->suspended++;
	}
	pthread_mutex_unlock(&s->lock);
	if (draining) {
		allowd_principal_clear(principal);
		allowd_error_set(ALLOWD_EUNAVAILABLE, NULL, "the server is shutting down");
		return send_error(conn, rq, NULL);
	}
	rq->s = s;
	rq->conn = conn;
	MHD_suspend_connection(conn);
	if (m->route->start(&rq->write, s->api, &req, write_done, rq)) {
		rq->start_failed = 1;
		rq->start_err = *allowd_error_last();
		write_done(rq);
	}
	allowd_principal_clear(principal);
	/* the thread is free from here until the resumed call (the checks kept it busy) */
	rq->suspended = 1;
	if (rq->cn && rq->cn->w)
		atomic_fetch_sub(&rq->cn->w->busy, 1);
	return MHD_YES;
}

/*
 * A write's request left the suspended state: back in on_request after the
 * resume (busy: it occupies its thread again), or closed without that call.
 */
static void unsuspend(allowd_server *s, request *rq, bool busy)
{
	rq->suspended = 0;
	if (busy && rq->cn && rq->cn->w)
		atomic_fetch_add(&rq->cn->w->busy, 1);
	pthread_mutex_lock(&s->lock);
	if (--s->suspended == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

/* The resumed call of a write's request: its answer. */
static enum MHD_Result finish_write(struct MHD_Connection *conn, request *rq)
{
	api_response resp = {.status = 200};

	unsuspend(rq->s, rq, true);
	if (rq->start_failed) {
		allowd_error_restore(&rq->start_err);
		return send_error(conn, rq, NULL);
	}
	allowd_error_clear();
	return send_outcome(conn, rq, api_write_finish(rq->write, &resp), &resp);
}

static enum MHD_Result dispatch(allowd_server *s, struct MHD_Connection *conn, request *rq,
				const char *url)
{
	allowd_principal principal = {0};
	struct query_ctx qctx = {conn};
	api_response resp = {.status = 200};
	api_request req;
	route_match m;
	int rc;

	allowd_error_clear();
	allowd_route_match(&m, rq->method, strip_prefix(url));
	if (!m.route) {
		if (m.method_mismatch) {
			allowd_error_set(ALLOWD_EMETHOD, NULL, "method %s is not allowed here (allowed: %s)",
					 rq->method, m.allow);
			return send_error(conn, rq, m.allow);
		}
		allowd_error_set(ALLOWD_ENOROUTE, NULL, "No route for the URI");
		return send_error(conn, rq, NULL);
	}

	if (m.route->auth && (rc = authenticate(s, conn, rq, &m, &principal))) {
		allowd_principal_clear(&principal);
		return send_error(conn, rq, NULL);
	}
	if (m.route->start)
		return start_write(s, conn, rq, &m, &principal);
	req = api_request_of(conn, rq, &m, &qctx, m.route->auth ? &principal : NULL);
	rc = m.route->handler(s->api, &req, &resp);
	allowd_principal_clear(&principal);
	return send_outcome(conn, rq, rc, &resp);
}

/* ---- connections, deadlines and lingering closes --------------------- */

static conn_node *node_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* Sets when the request being received on cn must be complete (0: no bound). */
static void set_deadline(allowd_server *s, conn_node *cn, int64_t deadline_us)
{
	if (!cn || !s->request_us)
		return;
	pthread_mutex_lock(&s->conns_lock);
	cn->deadline_us = deadline_us;
	pthread_mutex_unlock(&s->conns_lock);
}

/*
 * Tracks each connection from accept to close.  A new connection's first
 * request must be complete --connection-timeout after the accept; see
 * on_completed() for the requests that follow on a kept-alive connection.
 *
 * At the close of a connection that was answered before its body was read
 * (an early 413, a framing error), libmicrohttpd would close the socket with
 * the unread body in the kernel's buffer, which makes the kernel send a
 * reset: the client still sending gets a broken pipe and may lose the
 * answer.  So a duplicate of the socket is kept (libmicrohttpd has already
 * sent its FIN) and the watchdog discards what arrives until the client
 * closes, the drain budget is spent or --connection-timeout passes.
 */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	allowd_server *s = cls;
	conn_node *cn = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *di =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
		if (!(cn = calloc(1, sizeof(*cn))))
			return; /* not tracked: only the idle timeout applies */
		cn->fd = ci ? ci->connect_fd : -1;
		for (int i = 0; di && i < s->n_workers; i++)
			if (s->workers[i].daemon == di->daemon)
				cn->w = &s->workers[i];
		cn->deadline_us = s->request_us ? allowd_monotonic_us() + s->request_us : 0;
		pthread_mutex_lock(&s->conns_lock);
		cn->next = s->conns;
		if (s->conns)
			s->conns->prev = cn;
		s->conns = cn;
		pthread_mutex_unlock(&s->conns_lock);
		*socket_context = cn;
		return;
	}
	pthread_mutex_lock(&s->conns_lock);
	if (s->n_open-- == s->max_conns)
		pthread_cond_signal(&s->slot);
	if (!cn) {
		pthread_mutex_unlock(&s->conns_lock);
		return;
	}
	if (cn->w)
		atomic_fetch_sub(&cn->w->conns, 1);
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		s->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	if (cn->linger && !cn->shut && !s->stopping && cn->fd >= 0 && s->n_linger < MAX_LINGER) {
		int fd = fcntl(cn->fd, F_DUPFD_CLOEXEC, 0);
		if (fd >= 0) {
			shutdown(fd, SHUT_WR);
			s->lingering[s->n_linger++] = (linger_fd){
				.fd = fd,
				.until_us = allowd_monotonic_us() + s->idle_us,
				.budget = 4 * s->max_body + (1u << 20),
			};
			if (write(s->wake[1], "l", 1) < 0) {
				/* the pipe is full: the watchdog is awake anyway */
			}
		}
	}
	pthread_mutex_unlock(&s->conns_lock);
	free(cn);
	*socket_context = NULL;
}

/*
 * Discards what a lingering socket has, at most 1 MiB a call (the caller holds
 * conns_lock; poll() reports the rest at once); false once it is to be closed.
 */
static bool drain(linger_fd *l, int64_t now)
{
	char buf[16384];

	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(l->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			if ((size_t)n >= l->budget)
				return false;
			l->budget -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return now < l->until_us;
		return false; /* the client closed, or the socket failed */
	}
	return now < l->until_us;
}

/*
 * The watchdog.  Every WATCHDOG_TICK_MS it shuts down the sockets of
 * connections whose request is past its deadline (libmicrohttpd then reads
 * the end of the stream and closes the connection on its own thread, so
 * no libmicrohttpd state is touched here), and it drains lingering sockets
 * as data arrives.  The socket of a listed node is valid: libmicrohttpd
 * closes it only after MHD_CONNECTION_NOTIFY_CLOSED, which takes conns_lock.
 */
static void *watchdog_main(void *arg)
{
	allowd_server *s = arg;
	struct pollfd pfd[MAX_LINGER + 1];

	for (;;) {
		int n, stopping;
		int64_t now;

		pthread_mutex_lock(&s->conns_lock);
		stopping = s->stopping;
		n = s->n_linger;
		for (int i = 0; i < n; i++)
			pfd[i + 1] = (struct pollfd){.fd = s->lingering[i].fd, .events = POLLIN};
		pthread_mutex_unlock(&s->conns_lock);
		if (stopping)
			break;
		pfd[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
		if (poll(pfd, (nfds_t)n + 1, WATCHDOG_TICK_MS) > 0 && (pfd[0].revents & POLLIN)) {
			char b[64];
			if (read(s->wake[0], b, sizeof(b)) < 0) {
				/* nothing to read after all */
			}
		}

		now = allowd_monotonic_us();
		pthread_mutex_lock(&s->conns_lock);
		for (int i = 0; i < s->n_linger;) {
			if (drain(&s->lingering[i], now)) {
				i++;
				continue;
			}
			close(s->lingering[i].fd);
			s->lingering[i] = s->lingering[--s->n_linger];
		}
		for (conn_node *cn = s->conns; cn; cn = cn->next) {
			if (cn->shut || !cn->deadline_us || now < cn->deadline_us || cn->fd < 0)
				continue;
			shutdown(cn->fd, SHUT_RDWR);
			cn->shut = 1;
		}
		pthread_mutex_unlock(&s->conns_lock);
	}
	return NULL;
}

/*
 * The acceptor.  allowd accepts connections itself and hands each to one of
 * --threads single-threaded libmicrohttpd daemons (MHD_add_connection),
 * instead of a libmicrohttpd thread pool whose threads accept from the
 * shared listening socket up to their share of --max-connections.  That
 * scheme took the listening socket out of a thread's epoll set when the
 * thread reached its share, and under load such a thread was seen asleep in
 * epoll_wait while its connections waited (docs/reliability.md, bug 10).
 * Here no daemon ever reaches its limit (each may hold --max-connections),
 * and the acceptor keeps the total at --max-connections: at the limit it
 * stops accepting, so further clients wait in the kernel's listen backlog,
 * as before, until a connection closes (on_connection signals `slot`).
 *
 * A new connection goes to the daemon with the fewest requests in progress,
 * then the fewest connections: a thread busy with a slow request gets no
 * new clients (with the pool's shared socket, an idle thread won the race
 * to accept; libmicrohttpd's own MHD_add_connection into a pool picks the
 * thread by descriptor number, which sent every new connection of a client
 * that reconnects to the same busy thread).
 */
static worker *least_loaded(allowd_server *s)
{
	worker *best = &s->workers[0];
	long best_busy = atomic_load(&best->busy), best_conns = atomic_load(&best->conns);

	for (int i = 1; i < s->n_workers; i++) {
		long b = atomic_load(&s->workers[i].busy), c = atomic_load(&s->workers[i].conns);
		if (b < best_busy || (b == best_busy && c < best_conns)) {
			best = &s->workers[i];
			best_busy = b;
			best_conns = c;
		}
	}
	return best;
}

static void *acceptor_main(void *arg)
{
	allowd_server *s = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
				      {.fd = s->accept_wake[0], .events = POLLIN}};
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd, stop;
		worker *w;

		pthread_mutex_lock(&s->conns_lock);
		while (!s->accept_stop && s->n_open >= s->max_conns)
			pthread_cond_wait(&s->slot, &s->conns_lock);
		stop = s->accept_stop;
		pthread_mutex_unlock(&s->conns_lock);
		if (stop)
			break;
		if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
			continue; /* EINTR, or woken to look at accept_stop */
		fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warn("accept: %s; retrying in 100 ms", strerror(errno));
				poll(NULL, 0, 100); /* out of descriptors: the client waits */
			}
			continue;
		}
		pthread_mutex_lock(&s->conns_lock);
		s->n_open++;
		pthread_mutex_unlock(&s->conns_lock);
		w = least_loaded(s);
		atomic_fetch_add(&w->conns, 1); /* taken back at the close (on_connection) */
		if (MHD_add_connection(w->daemon, fd, (struct sockaddr *)&ss, sl) != MHD_YES) {
			/* libmicrohttpd closed it without the connection notifications */
			atomic_fetch_sub(&w->conns, 1);
			pthread_mutex_lock(&s->conns_lock);
			s->n_open--;
			pthread_mutex_unlock(&s->conns_lock);
		}
	}
	return NULL;
}

static void stop_acceptor(allowd_server *s)
{
	pthread_mutex_lock(&s->conns_lock);
	s->accept_stop = 1;
	pthread_cond_broadcast(&s->slot);
	pthread_mutex_unlock(&s->conns_lock);
	if (s->acceptor_started) {
		if (write(s->accept_wake[1], "s", 1) < 0) {
			/* the pipe is full: the acceptor wakes anyway */
		}
		pthread_join(s->acceptor, NULL);
		s->acceptor_started = 0;
	}
}

/*
 * Percent-decodes a request target in place (libmicrohttpd calls this for
 * the path and for each query argument), except that "%00" stays as it is:
 * a decoded NUL would end the C string, and ".../allow_policies/1%00x" would
 * silently become ".../allow_policies/1".  Kept, "1%00x" fails the policy id's
 * validation.  Invalid escapes ("%zz", a "%" at the end) are left alone, as
 * libmicrohttpd's own decoder does.
 */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t unescape(void *cls, struct MHD_Connection *conn, char *str)
{
	char *r = str, *w = str;
	(void)cls;
	(void)conn;

	while (*r) {
		int hi, lo;
		if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0 &&
		    (hi | lo) != 0) {
			*w++ = (char)(hi * 16 + lo);
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - str);
}

/* Called with the raw request target once the request line is read. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	conn_node *cn = node_of(conn);
	(void)cls;

	if (cn)
		cn->url_len = strlen(uri); /* only this connection's thread touches url_len */
	return NULL;
}

struct framing {
	int n_length, lengths_differ, n_coding;
	const char *length, *coding;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct framing *f = cls;
	(void)kind;

	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		if (f->n_length++ && strcmp(f->length, value ? value : "") != 0)
			f->lengths_differ = 1;
		f->length = value ? value : "";
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->n_coding++;
		f->coding = value ? value : "";
	}
	return MHD_YES;
}

/*
 * What libmicrohttpd lets through but HTTP does not (RFC 9112 sections 6.1
 * and 6.3): Content-Length headers that disagree (libmicrohttpd frames by
 * the first; a proxy in front may frame by another: request smuggling), a
 * Transfer-Encoding other than "chunked" (the body's length cannot be
 * determined), and Transfer-Encoding together with Content-Length.  Also
 * allowd's own limits on the request target and the header block.  Sets
 * the error and returns nonzero when the request is to be refused.
 */
static int check_request_head(allowd_server *s, struct MHD_Connection *conn, request *rq,
			      int *has_body)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	struct framing f = {0};

	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
	*has_body = f.n_coding || (f.n_length && strcmp(f.length, "0") != 0);
	if (rq->cn && rq->cn->url_len > s->max_header)
		return allowd_error_set(ALLOWD_EURITOOLONG, NULL,
					"the request target is longer than %zu bytes",
					s->max_header);
	if (ci && ci->header_size > s->max_header)
		return allowd_error_set(ALLOWD_EHEADERSTOOLARGE, NULL,
					"the request line and headers are larger than %zu bytes",
					s->max_header);
	if (f.lengths_differ)
		return allowd_error_set(ALLOWD_EINVALID, NULL,
					"conflicting Content-Length headers");
	if (f.n_coding && f.n_length)
		return allowd_error_set(ALLOWD_EINVALID, NULL,
					"Transfer-Encoding and Content-Length together");
	if (f.n_coding > 1 || (f.n_coding && strcasecmp(f.coding, "chunked") != 0))
		return allowd_error_set(ALLOWD_EINVALID, NULL,
					"unsupported Transfer-Encoding (only chunked is accepted)");
	return 0;
}

/* ---- libmicrohttpd callbacks ---------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	allowd_server *s = cls;
	request *rq = *con_cls;
	(void)version;

	if (!rq) {
		const char *cl;
		uint64_t n = atomic_fetch_add(&s->next_id, 1);
		int has_body = 0;

		if (!(rq = calloc(1, sizeof(*rq))))
			return MHD_NO;
		rq->cn = node_of(conn);
		rq->start_us = allowd_monotonic_us();
		snprintf(rq->id, sizeof(rq->id), "%08x%08llx", s->boot_id, (unsigned long long)n);
		snprintf(rq->method, sizeof(rq->method), "%s", method);
		snprintf(rq->path, sizeof(rq->path), "%s", url);
		for (char *p = rq->path; *p; p++)
			if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
				*p = '?';
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			unsigned long long v;
			errno = 0;
			v = strtoull(cl, &end, 10);
			if (errno || *end || v > s->max_body)
				rq->too_large = 1;
		}
		*con_cls = rq;
		pthread_mutex_lock(&s->lock);
		s->in_flight++;
		pthread_mutex_unlock(&s->lock);
		if (rq->cn && rq->cn->w)
			atomic_fetch_add(&rq->cn->w->busy, 1);
		if (check_request_head(s, conn, rq, &has_body)) {
			/* answered before any body is read: close, and drain it (on_connection) */
			rq->close = 1;
			if (has_body && rq->cn) {
				pthread_mutex_lock(&s->conns_lock);
				rq->cn->linger = 1;
				pthread_mutex_unlock(&s->conns_lock);
			}
			return send_error(conn, rq, NULL);
		}
		if (rq->too_large) {
			rq->close = 1;
			if (rq->cn) {
				pthread_mutex_lock(&s->conns_lock);
				rq->cn->linger = 1;
				pthread_mutex_unlock(&s->conns_lock);
			}
			/* answer before the body is sent (no 100 Continue) */
			allowd_error_set(ALLOWD_ETOOLARGE, NULL,
					 "the request body is larger than %zu bytes", s->max_body);
			return send_error(conn, rq, NULL);
		}
		return MHD_YES;
	}

	if (*upload_data_size) {
		size_t n = *upload_data_size;
		if (rq->responded) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (rq->too_large || n > s->max_body - rq->body_len) {
			/*
			 * A chunked body grew past the limit.  A response queued
			 * mid-upload is not delivered, so drain what follows and answer
			 * 413 at the end -- but drop clients that keep sending.
			 */
			rq->too_large = 1;
			rq->drained += n;
			*upload_data_size = 0;
			return rq->drained > 4 * s->max_body + (1u << 20) ? MHD_NO : MHD_YES;
		}
		if (rq->body_len + n + 1 > rq->body_cap) {
			size_t cap = rq->body_cap ? rq->body_cap : 4096;
			char *b;
			while (cap < rq->body_len + n + 1)
				cap *= 2;
			if (cap > s->max_body + 1)
				cap = s->max_body + 1;
			if (!(b = realloc(rq->body, cap)))
				return MHD_NO;
			rq->body = b;
			rq->body_cap = cap;
		}
		memcpy(rq->body + rq->body_len, upload_data, n);
		rq->body_len += n;
		rq->body[rq->body_len] = '\0';
		*upload_data_size = 0;
		return MHD_YES;
	}

	/* the request is complete: handling and answering it are not bounded here */
	set_deadline(s, rq->cn, 0);
	if (rq->responded)
		return MHD_YES;
	if (rq->s)
		return finish_write(conn, rq); /* resumed: the write is over */
	if (rq->too_large) {
		allowd_error_set(ALLOWD_ETOOLARGE, NULL, "the request body is larger than %zu bytes",
				 s->max_body);
		return send_error(conn, rq, NULL);
	}
	return dispatch(s, conn, rq, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	allowd_server *s = cls;
	request *rq = *con_cls;

	/*
	 * The next request on a kept-alive connection: its first byte may come
	 * at any time within the idle timeout, and it then has the whole
	 * request timeout, so the bound is both from now.
	 */
	if (s->request_us)
		set_deadline(s, node_of(conn), allowd_monotonic_us() + s->idle_us + s->request_us);
	if (!rq)
		return;
	if (s->access_log)
		log_info("req=%s %s %s status=%u us=%lld%s", rq->id, rq->method, rq->path, rq->status,
			 (long long)(allowd_monotonic_us() - rq->start_us),
			 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
	if (rq->suspended) /* resumed, but closed before on_request ran again */
		unsuspend(s, rq, false);
	else if (rq->cn && rq->cn->w)
		atomic_fetch_sub(&rq->cn->w->busy, 1);
	api_write_free(rq->write);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
	pthread_mutex_lock(&s->lock);
	if (--s->in_flight == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

/* ---- start and stop ------------------------------------------------- */

static int bind_listen(const char *listen_spec, int *port_out)
{
	char host[256];
	const char *colon = strrchr(listen_spec, ':');
	struct sockaddr_storage ss;
	socklen_t sl;
	char *end;
	long port;
	int fd, one = 1, family;
	size_t hlen;

	if (!colon)
		return allowd_error_set(ALLOWD_EINVALID, NULL, "--listen %s: expected ADDR:PORT",
					listen_spec);
	hlen = (size_t)(colon - listen_spec);
	if (hlen >= sizeof(host))
		return allowd_error_set(ALLOWD_EINVALID, NULL, "--listen: address too long");
	memcpy(host, listen_spec, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		return allowd_error_set(ALLOWD_EINVALID, NULL, "--listen %s: bad port", listen_spec);

	memset(&ss, 0, sizeof(ss));
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return allowd_error_set(ALLOWD_EINVALID, NULL, "--listen: bad IPv6 address");
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return allowd_error_set(ALLOWD_EINVALID, NULL, "--listen: bad IPv4 address '%s'",
						host);
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		sl = sizeof(*a);
	}
	family = ss.ss_family;
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return allowd_error_set(ALLOWD_ERR, NULL, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
		int e = errno;
		close(fd);
		return allowd_error_set(ALLOWD_EUNAVAILABLE, NULL, "cannot listen on %s: %s",
					listen_spec, strerror(e));
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*port_out = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* Stops the watchdog and closes the sockets it still drains. */
static void stop_watchdog(allowd_server *s)
{
	pthread_mutex_lock(&s->conns_lock);
	s->stopping = 1;
	pthread_mutex_unlock(&s->conns_lock);
	if (s->watchdog_started) {
		if (write(s->wake[1], "s", 1) < 0) {
			/* the pipe is full: the watchdog wakes anyway */
		}
		pthread_join(s->watchdog, NULL);
	}
	for (int i = 0; i < s->n_linger; i++)
		close(s->lingering[i].fd);
	s->n_linger = 0;
	for (int i = 0; i < 2; i++)
		if (s->wake[i] >= 0)
			close(s->wake[i]);
}

/*
 * Releases what a start made (a failed start's partial state included):
 * the daemons, the listening socket `fd`, the watchdog, the acceptor's
 * wake-up pipe and the locks.  The acceptor is stopped already.
 */
static void server_free(allowd_server *s, int fd)
{
	for (int i = 0; s->workers && i < s->n_workers; i++)
		MHD_stop_daemon(s->workers[i].daemon);
	free(s->workers);
	close(fd);
	stop_watchdog(s);
	for (int i = 0; i < 2; i++)
		if (s->accept_wake[i] >= 0)
			close(s->accept_wake[i]);
	pthread_cond_destroy(&s->slot);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->conns_lock);
	free(s);
}

int allowd_server_start(allowd_server **out, const allowd_config *cfg, allowd_api *api,
			int *port_out)
{
	allowd_server *s = calloc(1, sizeof(*s));
	int fd;

	if (!s)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	if ((fd = bind_listen(cfg->listen, port_out)) < 0) {
		free(s);
		return fd;
	}
	s->api = api;
	s->listen_fd = fd;
	s->max_body = (size_t)cfg->max_body;
	s->access_log = (int)cfg->access_log;
	s->rate_window_s = cfg->rate_limit_window;
	s->boot_id = randombytes_random();
	s->max_header = (size_t)cfg->max_header_bytes;
	s->idle_us = cfg->connection_timeout * 1000000;
	s->request_us = s->idle_us;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	pthread_mutex_init(&s->conns_lock, NULL);
	pthread_cond_init(&s->slot, NULL);
	s->wake[0] = s->wake[1] = -1;
	s->accept_wake[0] = s->accept_wake[1] = -1;
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
		allowd_error_set(ALLOWD_ERR, NULL, "cannot start the connection watchdog: %s",
				 strerror(errno));
		goto fail;
	}
	s->watchdog_started = 1;
	s->max_conns = (long)cfg->max_connections;
	if (pipe2(s->accept_wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		allowd_error_set(ALLOWD_ERR, NULL, "cannot set up the acceptor: %s",
				 strerror(errno));
		goto fail;
	}

	/* one daemon per thread, each allowed the whole limit (acceptor_main) */
	if (!(s->workers = calloc((size_t)cfg->threads, sizeof(*s->workers)))) {
		allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		goto fail;
	}
	for (; s->n_workers < (int)cfg->threads; s->n_workers++) {
		worker *w = &s->workers[s->n_workers];
		w->daemon = MHD_start_daemon(
			MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
				MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME,
			0, NULL, NULL, on_request, s, MHD_OPTION_CONNECTION_LIMIT,
			(unsigned int)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
			(unsigned int)cfg->connection_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
			(size_t)cfg->max_header_bytes * POOL_FACTOR, MHD_OPTION_NOTIFY_COMPLETED,
			on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
			MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_UNESCAPE_CALLBACK,
			unescape, s, MHD_OPTION_END);
		if (!w->daemon) {
			allowd_error_set(ALLOWD_ERR, NULL, "libmicrohttpd failed to start");
			goto fail;
		}
	}
	if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
		allowd_error_set(ALLOWD_ERR, NULL, "cannot start the acceptor");
		goto fail;
	}
	s->acceptor_started = 1;
	*out = s;
	return 0;

fail:
	server_free(s, fd);
	return ALLOWD_ERR;
}

void allowd_server_stop(allowd_server *s, int grace_ms)
{
	struct timespec deadline;

	if (!s)
		return;
	stop_acceptor(s); /* new clients wait in the backlog until the socket closes */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += grace_ms / 1000;
	deadline.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->lock);
	while (s->in_flight > 0)
		if (pthread_cond_timedwait(&s->idle, &s->lock, &deadline) == ETIMEDOUT)
			break;
	/*
	 * libmicrohttpd must not be stopped with a connection suspended, and the
	 * writer must not resume one of a stopped daemon: after the grace, no
	 * write starts any more, and those in flight are waited for without a
	 * bound (a queued write cannot be withdrawn; the writer finishes it), and
	 * so is the resumed call of each (so no connection is left suspended).
	 */
	s->draining = 1;
	while (s->writes > 0 || s->suspended > 0)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&s->conns_lock);
	s->stopping = 1; /* no lingering for the connections closed by the stop */
	pthread_mutex_unlock(&s->conns_lock);
	server_free(s, s->listen_fd);
}

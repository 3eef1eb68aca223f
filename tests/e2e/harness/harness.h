/*
 * harness.h - the end-to-end harness: runs the real allowd binary on a
 * kernel-chosen port in a fresh temp directory and drives it over HTTP
 * (libcurl), with envelope assertions on top of jansson and cmocka.
 *
 * Life cycle (H2O's spawn_h2o, Redis's start_server): E2E_CASE(test) runs
 * e2e_setup (one default server, passed to the test as `s`) and
 * e2e_teardown, which stops every server the test started, prints their
 * logs when the test failed, and always removes their temp directories.
 *
 * Memory: every response, string and JSON value the harness hands out is
 * owned by the current test and released by e2e_teardown, so tests never
 * free.  Everything here is for the main thread, except e2e_client_* and
 * e2e_do with an explicit client, which worker threads may call (they must
 * not use cmocka assertions; assert on the main thread afterwards).
 */
#ifndef E2E_HARNESS_H
#define E2E_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include <cmocka.h>
#include <jansson.h>

#define E2E_PRINTF(a, b) __attribute__((format(printf, a, b)))

typedef struct e2e_client e2e_client;

typedef struct e2e_server {
	char *tmp_dir;  /* removed by teardown */
	char *data_dir; /* tmp_dir/data, survives restarts */
	char *log_path; /* tmp_dir/server.log: the server's stdout and stderr */
	char **args;    /* extra command-line arguments, NULL-terminated */
	pid_t pid;      /* 0 when not running */
	int port;
	char base_url[64];
	/* From data_dir/credentials.json. */
	char account_id[128];
	char api_token[128];
	char email[256];
	char api_key[128];
	/* "/client/v4/accounts/<account_id>/email-security/settings/allow_policies" */
	char policies[320];
	/* The same without the /client/v4 prefix. */
	char policies_bare[320];
	e2e_client *client; /* the main thread's keep-alive client */
	bool log_shown;     /* the log was printed already */
	struct e2e_server *next;
} e2e_server;

enum e2e_auth {
	E2E_AUTH_TOKEN = 0, /* Authorization: Bearer <api_token> */
	E2E_AUTH_KEY,       /* X-Auth-Email + X-Auth-Key */
	E2E_AUTH_NONE,      /* no credentials (add your own through headers) */
};

typedef struct e2e_request {
	const char *method;       /* NULL = GET */
	const char *path;         /* appended to the base URL, e.g. s->policies */
	const char *body;         /* NULL = no body */
	size_t body_len;          /* 0 = strlen(body) */
	const char *content_type; /* NULL = application/json with a body; "" = no header */
	enum e2e_auth auth;
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
	e2e_client *client;         /* NULL = the server's main-thread client */
} e2e_request;

typedef struct e2e_response {
	long status; /* 0 when the transport failed (see error) */
	char *error; /* transport error or NULL */
	char *body;  /* NUL-terminated */
	size_t body_len;
	json_t *json; /* the parsed body, NULL when it is not JSON */
	size_t n_headers;
	char **header_names;
	char **header_values;
} e2e_response;

/* ---- life cycle ---------------------------------------------------- */

/* cmocka fixtures: a default server in *state, or none (*state = NULL). */
int e2e_setup(void **state);
int e2e_setup_bare(void **state);
int e2e_teardown(void **state);

/* Marks the running test as passed (E2E_TEST does it). */
void e2e_test_passed(void);

/*
 * Starts a server in a fresh temp dir with extra arguments (NULL or a
 * NULL-terminated list); fails the test when it does not come up.  The
 * server is owned by the test and cleaned up by e2e_teardown.
 */
e2e_server *e2e_server_start(const char *const *args);
/* SIGTERM, wait, and assert exit status 0 and a log free of sanitizer reports. */
void e2e_server_stop(e2e_server *s);
/* SIGKILL and wait. */
void e2e_server_kill(e2e_server *s);
/* Starts the (stopped or killed) server again on the same data dir. */
void e2e_server_restart(e2e_server *s);
/* Rereads data_dir/credentials.json into s (done by start and restart). */
void e2e_server_read_credentials(e2e_server *s);

#define E2E_TEST(name)                                                                             \
	static void name##_body(e2e_server *s);                                                    \
	static void name(void **state)                                                             \
	{                                                                                          \
		name##_body((e2e_server *)*state);                                                 \
		e2e_test_passed();                                                                 \
	}                                                                                          \
	static void name##_body(e2e_server *s)

#define E2E_CASE(name)      cmocka_unit_test_setup_teardown(name, e2e_setup, e2e_teardown)
#define E2E_CASE_BARE(name) cmocka_unit_test_setup_teardown(name, e2e_setup_bare, e2e_teardown)

/* ---- allowctl, files, times ------------------------------------------ */

/*
 * Runs `$ALLOWCTL_BIN --data-dir <s->data_dir> --json ARGS...` (args
 * NULL-terminated; the server may be running) and waits for it.  Returns
 * its exit status, or -1 when it did not exit normally.  *out (when not
 * NULL) gets its stdout parsed as JSON, NULL when that is not JSON; *err
 * (when not NULL) its stderr.  Both are test-owned.  Fails the test when
 * allowctl cannot be run or reports a sanitizer error.
 */
int e2e_allowctl(e2e_server *s, json_t **out, char **err, const char *const *args);
/* The same, asserting exit status 0 and a JSON stdout; returns it (borrowed). */
json_t *e2e_allowctl_ok_at(e2e_server *s, const char *file, int line, const char *const *args);
#define E2E_CTL(s, ...)                                                                            \
	e2e_allowctl_ok_at((s), __FILE__, __LINE__, (const char *const[]){__VA_ARGS__, NULL})

/*
 * A file's bytes, NUL-terminated and test-owned, with *len its size (len
 * may be NULL); NULL when it cannot be read.
 */
char *e2e_read_file(const char *path, size_t *len);

/* Milliseconds of CLOCK_MONOTONIC: for measuring how long something took. */
long e2e_now_ms(void);

/* An RFC 3339 UTC time `offset_s` seconds from now ("2030-01-02T03:04:05Z"), test-owned. */
char *e2e_rfc3339(long long offset_s);

/* ---- HTTP ------------------------------------------------------------ */

e2e_client *e2e_client_new(void);
void e2e_client_free(e2e_client *c);

/* Performs a request; never asserts, safe from worker threads with rq->client. */
e2e_response *e2e_do(e2e_server *s, const e2e_request *rq);
/* GET with the bearer token; the path is printf-formatted. */
e2e_response *e2e_get(e2e_server *s, const char *fmt, ...) E2E_PRINTF(2, 3);
/* METHOD with the bearer token and a JSON body (NULL = none). */
e2e_response *e2e_send(e2e_server *s, const char *method, const char *body, const char *fmt, ...)
    E2E_PRINTF(4, 5);
/* The value of a response header (case-insensitive name), or NULL. */
const char *e2e_header(const e2e_response *r, const char *name);

/*
 * One request in flight on its own thread and client, for tests that watch
 * the server while it is answered: e2e_background_start, poll
 * e2e_background_done, then e2e_background_join (always), after which r and
 * took_ms are set.  rq is copied; its strings must live until the join.
 */
typedef struct e2e_background {
	e2e_server *s;
	e2e_request rq;
	e2e_response *r;
	long took_ms;
	int done; /* atomic */
	pthread_t thread;
} e2e_background;

void e2e_background_start(e2e_background *b, e2e_server *s, const e2e_request *rq);
bool e2e_background_done(e2e_background *b);
void e2e_background_join(e2e_background *b);

/* ---- test-owned memory ----------------------------------------------- */

/* Zeroed memory for n items of `size` bytes. */
void *e2e_calloc(size_t n, size_t size);
char *e2e_strf(const char *fmt, ...) E2E_PRINTF(1, 2);
/* A string of n copies of `unit`. */
char *e2e_repeat(const char *unit, size_t n);
/* Hands a JSON reference to the test (decref'd at teardown); returns it. */
json_t *e2e_keep(json_t *j);
/* Compact JSON text of j. */
char *e2e_dumps(const json_t *j);

/* ---- assertions (fail at the caller's line) ------------------------- */

void e2e_fail_at(const char *file, int line, const char *fmt, ...) E2E_PRINTF(3, 4)
    __attribute__((noreturn));
#define E2E_FAIL(...) e2e_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define E2E_CHECK(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			e2e_fail_at(__FILE__, __LINE__, __VA_ARGS__);                              \
	} while (0)

/* Checks the envelope of any JSON response (both shapes, content type). */
void e2e_assert_envelope_at(const e2e_response *r, const char *file, int line);
/* status, success:true, errors:[], messages:[]; returns `result` (borrowed). */
json_t *e2e_assert_ok_at(const e2e_response *r, long status, const char *file, int line);
/*
 * status, success:false, result:null, every error {code ≥ 1000, message};
 * returns the first error with `code`, and when `pointer` is not NULL the
 * first whose source.pointer equals it.
 */
json_t *e2e_assert_err_at(const e2e_response *r, long status, int code, const char *pointer,
                          const char *file, int line);
#define E2E_OK(r, status) e2e_assert_ok_at((r), (status), __FILE__, __LINE__)
#define E2E_ERR(r, status, code, pointer)                                                          \
	e2e_assert_err_at((r), (status), (code), (pointer), __FILE__, __LINE__)

/* source.pointer of an error object, or NULL. */
const char *e2e_error_pointer(const json_t *error);

json_int_t e2e_int_at(const json_t *obj, const char *key, const char *file, int line);
const char *e2e_str_at(const json_t *obj, const char *key, const char *file, int line);
bool e2e_bool_at(const json_t *obj, const char *key, const char *file, int line);
json_t *e2e_arr_at(const json_t *obj, const char *key, const char *file, int line);
#define E2E_INT(obj, key)  e2e_int_at((obj), (key), __FILE__, __LINE__)
#define E2E_STR(obj, key)  e2e_str_at((obj), (key), __FILE__, __LINE__)
#define E2E_BOOL(obj, key) e2e_bool_at((obj), (key), __FILE__, __LINE__)
#define E2E_ARR(obj, key)  e2e_arr_at((obj), (key), __FILE__, __LINE__)

/* JSON equality with both texts in the failure message. */
void e2e_assert_json_eq_at(const json_t *a, const json_t *b, const char *file, int line);
#define E2E_JSON_EQ(a, b) e2e_assert_json_eq_at((a), (b), __FILE__, __LINE__)

/* Case-insensitive substring test. */
bool e2e_contains_ci(const char *haystack, const char *needle);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" with a plausible calendar date. */
bool e2e_is_timestamp(const char *s);

/*
 * A policy object as docs/api.md shows it: exactly the 15 keys, their JSON
 * types, a positive 32-bit id, millisecond UTC timestamps, last_modified ==
 * modified_at, created_at <= modified_at, and the deprecated aliases
 * mirroring their fields.
 */
void e2e_assert_policy_at(const json_t *p, const char *file, int line);
#define E2E_POLICY(p) e2e_assert_policy_at((p), __FILE__, __LINE__)

/* ---- policy helpers -------------------------------------------------- */

/* The seed request of the issue, byte for byte. */
#define E2E_SEED_BODY                                                                              \
	"{\"is_acceptable_sender\":false,\"is_exempt_recipient\":false,"                           \
	"\"is_regex\":false,\"is_trusted_sender\":true,\"pattern\":"                               \
	"\"test@example.com\",\"pattern_type\":\"EMAIL\",\"verify_sender\":true}"

/* A valid create body: a trusted, verified, non-regex EMAIL policy. */
char *e2e_email_body(const char *pattern);

/* POSTs `body` to s->policies, asserts 201 and a valid policy, returns it. */
json_t *e2e_create_at(e2e_server *s, const char *body, const char *file, int line);
#define E2E_CREATE(s, body) e2e_create_at((s), (body), __FILE__, __LINE__)

/* GETs one policy, asserts 200 and returns it. */
json_t *e2e_fetch_at(e2e_server *s, json_int_t id, const char *file, int line);
#define E2E_FETCH(s, id) e2e_fetch_at((s), (id), __FILE__, __LINE__)

/* result_info.total_count of the unfiltered list. */
json_int_t e2e_total_at(e2e_server *s, const char *file, int line);
#define E2E_TOTAL(s) e2e_total_at((s), __FILE__, __LINE__)

/* Every policy of the account, in id order (walks pages of 1000). */
json_t *e2e_list_all_at(e2e_server *s, const char *file, int line);
#define E2E_LIST_ALL(s) e2e_list_all_at((s), __FILE__, __LINE__)

/* POSTs a batch body, asserts 200 and returns `result`. */
json_t *e2e_batch_at(e2e_server *s, const char *body, const char *file, int line);
#define E2E_BATCH(s, body) e2e_batch_at((s), (body), __FILE__, __LINE__)

/* A batch body with only posts (the array is not consumed). */
char *e2e_batch_posts_body(const json_t *posts);

/* A create object (owned by the test) for the batch builders. */
json_t *e2e_policy_obj(const char *pattern, const char *pattern_type, bool is_regex, bool trusted,
                       bool acceptable, bool exempt, bool verify, const char *comments);

/* Creates n policies "<prefix><i>@example.com" through one batch; returns the posts result. */
json_t *e2e_create_many_at(e2e_server *s, const char *prefix, int n, const char *file, int line);
#define E2E_CREATE_MANY(s, prefix, n) e2e_create_many_at((s), (prefix), (n), __FILE__, __LINE__)

#endif

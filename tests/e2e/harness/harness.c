/*
 * harness.c - spawns allowd (port 0 + --notify-fd, no sleeps), talks to it
 * with libcurl, and checks Cloudflare envelopes.  See harness.h for the
 * ownership rules: everything handed to a test is released at teardown.
 */
#include "harness.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Generous bounds: the suite also runs under ASan on slow CI machines. */
#define START_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS  60000
#define HTTP_TIMEOUT_S   120L
#define LOG_TAIL_BYTES   16384

struct e2e_client {
	CURL *curl;
};

/* ---- small utilities -------------------------------------------------- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "e2e harness: out of memory\n");
		abort();
	}
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fprintf(stderr, "e2e harness: out of memory\n");
		abort();
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s);
	char *d = xmalloc(n + 1);
	memcpy(d, s, n + 1);
	return d;
}

static char *xvasprintf(const char *fmt, va_list ap) E2E_PRINTF(1, 0);
static char *xvasprintf(const char *fmt, va_list ap)
{
	char *out = NULL;
	if (vasprintf(&out, fmt, ap) < 0) {
		fprintf(stderr, "e2e harness: out of memory\n");
		abort();
	}
	return out;
}

static char *xasprintf(const char *fmt, ...) E2E_PRINTF(1, 2);
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

/* ---- test-owned memory ------------------------------------------------ */

struct owned {
	void (*release)(void *);
	void *p;
	struct owned *next;
};

static pthread_mutex_t owned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct owned *owned_head;

static void *own(void (*release)(void *), void *p)
{
	struct owned *o = xmalloc(sizeof(*o));
	o->release = release;
	o->p = p;
	pthread_mutex_lock(&owned_lock);
	o->next = owned_head;
	owned_head = o;
	pthread_mutex_unlock(&owned_lock);
	return p;
}

static void release_owned(void)
{
	pthread_mutex_lock(&owned_lock);
	struct owned *o = owned_head;
	owned_head = NULL;
	pthread_mutex_unlock(&owned_lock);
	while (o) {
		struct owned *next = o->next;
		o->release(o->p);
		free(o);
		o = next;
	}
}

static void decref(void *p)
{
	json_decref(p);
}

void *e2e_calloc(size_t n, size_t size)
{
	return own(free, xcalloc(n, size));
}

char *e2e_strf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return own(free, s);
}

char *e2e_repeat(const char *unit, size_t n)
{
	size_t ul = strlen(unit);
	char *s = xmalloc(ul * n + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * n] = '\0';
	return own(free, s);
}

json_t *e2e_keep(json_t *j)
{
	if (j)
		own(decref, j);
	return j;
}

char *e2e_dumps(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return e2e_strf("<unencodable>");
	return own(free, s);
}

/* ---- failure reporting ------------------------------------------------ */

static bool test_passed;
static e2e_server *servers; /* started by the running test */

void e2e_test_passed(void)
{
	test_passed = true;
}

void e2e_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	print_error("%s:%d: %s\n", file, line, msg);
	free(msg);
	_fail(file, line);
	abort(); /* _fail returns only outside a test */
}

/* A response body shortened for messages. */
static const char *excerpt(const e2e_response *r)
{
	if (!r)
		return "(no response)";
	if (r->status == 0)
		return e2e_strf("transport error: %s", r->error ? r->error : "?");
	if (r->body_len <= 2000)
		return r->body;
	return e2e_strf("%.2000s... (%zu bytes)", r->body, r->body_len);
}

static void print_log_tail(e2e_server *s, const char *why)
{
	s->log_shown = true;
	FILE *f = fopen(s->log_path, "r");
	fprintf(stderr, "---- allowd log (%s) %s: %s ----\n", why, s->tmp_dir, s->log_path);
	if (f) {
		if (fseek(f, 0, SEEK_END) == 0) {
			long size = ftell(f);
			if (size > LOG_TAIL_BYTES) {
				fseek(f, size - LOG_TAIL_BYTES, SEEK_SET);
				fprintf(stderr, "[... %ld earlier bytes ...]\n",
				        size - LOG_TAIL_BYTES);
			} else {
				fseek(f, 0, SEEK_SET);
			}
		}
		char buf[4096];
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, stderr);
		fclose(f);
	}
	fprintf(stderr, "---- end of allowd log ----\n");
}

/* What an ASan, LSan, UBSan or TSan report contains. */
static const char *const sanitizer_marks[] = {
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "ERROR: UndefinedBehaviorSanitizer",
};

/* True when the log holds an ASan, LSan, UBSan or TSan report. */
static bool log_has_sanitizer_report(const e2e_server *s)
{
	FILE *f = fopen(s->log_path, "r");
	if (!f)
		return false;
	bool found = false;
	char *line = NULL;
	size_t cap = 0;
	while (!found && getline(&line, &cap, f) >= 0) {
		for (size_t i = 0; i < sizeof(sanitizer_marks) / sizeof(sanitizer_marks[0]); i++)
			if (strstr(line, sanitizer_marks[i]))
				found = true;
	}
	free(line);
	fclose(f);
	return found;
}

/* ---- processes -------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_cleanup_at_exit(void)
{
	curl_global_cleanup();
}

static void curl_init_once(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		fprintf(stderr, "e2e harness: curl_global_init failed\n");
		abort();
	}
	atexit(curl_cleanup_at_exit);
}

static int mkdir_p(const char *path)
{
	char *p = xstrdup(path);
	int rc = 0;
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			rc = -1;
		*c = '/';
	}
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "e2e harness: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void rm_rf(const char *path)
{
	if (path)
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Waits for pid up to timeout_ms; 0 with *status, or -1 on timeout. */
static int wait_exit(pid_t pid, int timeout_ms, int *status)
{
#ifdef SYS_pidfd_open
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		int r;
		do
			r = poll(&p, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		close(pfd);
		if (r == 0)
			return -1;
	}
#else
	(void)timeout_ms;
#endif
	pid_t w;
	do
		w = waitpid(pid, status, 0);
	while (w < 0 && errno == EINTR);
	return w == pid ? 0 : -1;
}

static void describe_status(char *buf, size_t len, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "wait status %#x", status);
}

/*
 * Forks and execs the server, then blocks on the notify pipe until it
 * writes its port (or exits).  0, or -1 with a reason in `why`.
 */
static int spawn(e2e_server *s, char *why, size_t whylen)
{
	const char *bin = getenv("ALLOWD_BIN");
	if (!bin || !*bin) {
		snprintf(why, whylen, "ALLOWD_BIN is not set");
		return -1;
	}

	size_t nextra = 0;
	while (s->args && s->args[nextra])
		nextra++;
	char **argv = xcalloc(8 + nextra, sizeof(*argv));
	size_t a = 0;
	argv[a++] = xstrdup(bin);
	argv[a++] = xstrdup("--listen");
	argv[a++] = xstrdup("127.0.0.1:0");
	argv[a++] = xstrdup("--data-dir");
	argv[a++] = xstrdup(s->data_dir);
	argv[a++] = xstrdup("--notify-fd");
	argv[a++] = xstrdup("3");
	for (size_t i = 0; i < nextra; i++)
		argv[a++] = xstrdup(s->args[i]);
	argv[a] = NULL;

	/* The server reads ALLOWD_* as options: keep the test's own out. */
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **envp = xcalloc(nenv + 1, sizeof(*envp));
	size_t e = 0;
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "ALLOWD_", 7) != 0)
			envp[e++] = environ[i];
	envp[e] = NULL;

	int rc = -1;
	int pipefd[2] = {-1, -1};
	int logfd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (logfd < 0 || nullfd < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
		snprintf(why, whylen, "cannot prepare the child: %s", strerror(errno));
		goto done;
	}
	dprintf(logfd, "==== e2e harness: starting %s (data dir %s) ====\n", bin, s->data_dir);

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		goto done;
	}
	if (pid == 0) {
		/* Async-signal-safe calls only from here to exec. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		if (pipefd[1] == 3)
			fcntl(3, F_SETFD, 0);
		else
			dup2(pipefd[1], 3);
		execve(argv[0], argv, envp);
		{
			static const char msg[] = "e2e harness: execve failed, errno ";
			char num[16];
			int err = errno, k = (int)sizeof(num);
			num[--k] = '\n';
			do
				num[--k] = (char)('0' + err % 10);
			while ((err /= 10) > 0 && k > 0);
			(void)!write(2, msg, sizeof(msg) - 1);
			(void)!write(2, num + k, sizeof(num) - (size_t)k);
		}
		_exit(127);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	s->pid = pid;

	char buf[32];
	size_t got = 0;
	bool have_line = false;
	while (!have_line && got < sizeof(buf) - 1) {
		struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
		int r = poll(&p, 1, START_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(why, whylen, "no port on the notify fd within %d ms",
			         START_TIMEOUT_MS);
			break;
		}
		ssize_t n = read(pipefd[0], buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, whylen,
			         "the server closed the notify fd without a port line");
			break;
		}
		got += (size_t)n;
		buf[got] = '\0';
		have_line = strchr(buf, '\n') != NULL;
	}
	if (have_line) {
		char *end = NULL;
		errno = 0;
		long port = strtol(buf, &end, 10);
		if (errno || end == buf || *end != '\n' || port < 1 || port > 65535) {
			snprintf(why, whylen, "bad port line on the notify fd: \"%s\"", buf);
		} else {
			s->port = (int)port;
			snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d", s->port);
			rc = 0;
		}
	}
	if (rc != 0) {
		int status = 0;
		kill(pid, SIGKILL);
		if (wait_exit(pid, STOP_TIMEOUT_MS, &status) == 0) {
			char st[64];
			describe_status(st, sizeof(st), status);
			size_t used = strlen(why);
			snprintf(why + used, whylen - used, " (server: %s)", st);
		}
		s->pid = 0;
	}

done:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (logfd >= 0)
		close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
	free(envp);
	return rc;
}

static int copy_field(char *dst, size_t len, json_t *creds, const char *key, const char *path,
                      char *why, size_t whylen)
{
	json_t *v = json_object_get(creds, key);
	if (!json_is_string(v)) {
		snprintf(why, whylen, "%s: \"%s\" is missing or not a string", path, key);
		return -1;
	}
	if (snprintf(dst, len, "%s", json_string_value(v)) >= (int)len) {
		snprintf(why, whylen, "%s: \"%s\" is implausibly long", path, key);
		return -1;
	}
	return 0;
}

static int read_credentials(e2e_server *s, char *why, size_t whylen)
{
	char *path = e2e_strf("%s/credentials.json", s->data_dir);
	json_error_t err;
	json_t *creds = e2e_keep(json_load_file(path, 0, &err));
	if (!json_is_object(creds)) {
		snprintf(why, whylen, "%s: not a JSON object: %s", path, err.text);
		return -1;
	}
	if (copy_field(s->account_id, sizeof(s->account_id), creds, "account_id", path, why,
	               whylen) ||
	    copy_field(s->api_token, sizeof(s->api_token), creds, "api_token", path, why, whylen) ||
	    copy_field(s->email, sizeof(s->email), creds, "email", path, why, whylen) ||
	    copy_field(s->api_key, sizeof(s->api_key), creds, "api_key", path, why, whylen))
		return -1;
	snprintf(s->policies_bare, sizeof(s->policies_bare),
	         "/accounts/%s/email-security/settings/allow_policies", s->account_id);
	snprintf(s->policies, sizeof(s->policies),
	         "/client/v4/accounts/%s/email-security/settings/allow_policies", s->account_id);
	return 0;
}

void e2e_server_read_credentials(e2e_server *s)
{
	char why[512] = "";
	if (read_credentials(s, why, sizeof(why)) != 0)
		E2E_FAIL("%s", why);
}

/* Starts the process and reads its credentials; 0, or -1 with `why` (not running). */
static int start_process(e2e_server *s, char *why, size_t whylen)
{
	if (spawn(s, why, whylen) != 0)
		return -1;
	if (read_credentials(s, why, whylen) != 0) {
		e2e_server_kill(s);
		return -1;
	}
	return 0;
}

/*
 * A new server registered for cleanup (even when it fails to start: the
 * caller must then run cleanup_servers, which removes its directory).
 */
static e2e_server *server_new(const char *const *args, char *why, size_t whylen)
{
	pthread_once(&curl_once, curl_init_once);
	e2e_server *s = xcalloc(1, sizeof(*s));
	s->next = servers;
	servers = s;

	const char *root = getenv("ALLOWD_TEST_TMP");
	if (!root || !*root)
		root = "/tmp";
	if (mkdir_p(root) != 0) {
		snprintf(why, whylen, "cannot create %s: %s", root, strerror(errno));
		return NULL;
	}
	char *tmpl = xasprintf("%s/e2e-XXXXXX", root);
	if (!mkdtemp(tmpl)) {
		snprintf(why, whylen, "mkdtemp under %s: %s", root, strerror(errno));
		free(tmpl);
		return NULL;
	}
	s->tmp_dir = tmpl;
	s->data_dir = xasprintf("%s/data", s->tmp_dir);
	s->log_path = xasprintf("%s/server.log", s->tmp_dir);
	if (mkdir(s->data_dir, 0700) != 0) {
		snprintf(why, whylen, "mkdir %s: %s", s->data_dir, strerror(errno));
		return NULL;
	}

	size_t n = 0;
	while (args && args[n])
		n++;
	s->args = xcalloc(n + 1, sizeof(*s->args));
	for (size_t i = 0; i < n; i++)
		s->args[i] = xstrdup(args[i]);

	if (start_process(s, why, whylen) != 0) {
		print_log_tail(s, "start failed");
		return NULL;
	}
	return s;
}

e2e_server *e2e_server_start(const char *const *args)
{
	char why[512] = "";
	e2e_server *s = server_new(args, why, sizeof(why));
	if (!s)
		E2E_FAIL("cannot start allowd: %s", why);
	return s;
}

/* SIGTERM and wait; 0 when the server exited with status 0. */
static int terminate(e2e_server *s, char *why, size_t whylen)
{
	int status = 0;
	if (s->pid <= 0)
		return 0;
	kill(s->pid, SIGTERM);
	if (wait_exit(s->pid, STOP_TIMEOUT_MS, &status) != 0) {
		kill(s->pid, SIGKILL);
		wait_exit(s->pid, STOP_TIMEOUT_MS, &status);
		s->pid = 0;
		snprintf(why, whylen, "did not exit within %d ms of SIGTERM", STOP_TIMEOUT_MS);
		return -1;
	}
	s->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char st[64];
		describe_status(st, sizeof(st), status);
		snprintf(why, whylen, "SIGTERM ended it with %s, expected exit status 0", st);
		return -1;
	}
	return 0;
}

void e2e_server_stop(e2e_server *s)
{
	char why[256] = "";
	if (terminate(s, why, sizeof(why)) != 0) {
		print_log_tail(s, "bad shutdown");
		E2E_FAIL("allowd %s", why);
	}
	if (log_has_sanitizer_report(s)) {
		print_log_tail(s, "sanitizer report");
		E2E_FAIL("allowd's log holds a sanitizer report");
	}
}

void e2e_server_kill(e2e_server *s)
{
	int status = 0;
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	wait_exit(s->pid, STOP_TIMEOUT_MS, &status);
	s->pid = 0;
}

void e2e_server_restart(e2e_server *s)
{
	char why[512] = "";
	if (s->pid > 0)
		E2E_FAIL("restart of a running server");
	if (start_process(s, why, sizeof(why)) != 0) {
		print_log_tail(s, "restart failed");
		E2E_FAIL("cannot restart allowd: %s", why);
	}
}

static void server_free(e2e_server *s)
{
	rm_rf(s->tmp_dir);
	e2e_client_free(s->client);
	for (size_t i = 0; s->args && s->args[i]; i++)
		free(s->args[i]);
	free(s->args);
	free(s->tmp_dir);
	free(s->data_dir);
	free(s->log_path);
	free(s);
}

/*
 * Stops every server of the test (gracefully when it passed, checking the
 * exit status; SIGKILL otherwise), prints logs that explain a failure,
 * removes the temp dirs and releases test-owned memory.  Returns the
 * number of problems found (bad shutdowns, sanitizer reports).
 */
static int cleanup_servers(bool passed)
{
	int problems = 0;
	release_owned();
	while (servers) {
		e2e_server *s = servers;
		servers = s->next;
		char why[256] = "";
		if (s->pid > 0) {
			if (passed) {
				if (terminate(s, why, sizeof(why)) != 0) {
					fprintf(stderr, "e2e teardown: allowd %s\n", why);
					print_log_tail(s, "bad shutdown");
					problems++;
				}
			} else {
				e2e_server_kill(s);
			}
		}
		if (s->log_path && log_has_sanitizer_report(s)) {
			fprintf(stderr, "e2e teardown: allowd reported a sanitizer error\n");
			print_log_tail(s, "sanitizer report");
			problems++;
		} else if (!passed && s->log_path && !s->log_shown) {
			print_log_tail(s, "test failed");
		}
		server_free(s);
	}
	return problems;
}

int e2e_setup(void **state)
{
	char why[512] = "";
	test_passed = false;
	*state = server_new(NULL, why, sizeof(why));
	if (!*state) {
		/* cmocka skips the teardown of a failed setup: clean up here. */
		print_error("e2e setup: cannot start allowd: %s\n", why);
		cleanup_servers(false);
		return -1;
	}
	return 0;
}

int e2e_setup_bare(void **state)
{
	pthread_once(&curl_once, curl_init_once);
	test_passed = false;
	*state = NULL;
	return 0;
}

int e2e_teardown(void **state)
{
	int problems = cleanup_servers(test_passed);
	test_passed = false;
	*state = NULL;
	return problems ? -1 : 0;
}

/* ---- HTTP ------------------------------------------------------------- */

e2e_client *e2e_client_new(void)
{
	pthread_once(&curl_once, curl_init_once);
	e2e_client *c = xcalloc(1, sizeof(*c));
	c->curl = curl_easy_init();
	if (!c->curl) {
		fprintf(stderr, "e2e harness: curl_easy_init failed\n");
		abort();
	}
	return c;
}

void e2e_client_free(e2e_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c);
}

static void response_free(void *p)
{
	e2e_response *r = p;
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->header_names[i]);
		free(r->header_values[i]);
	}
	free(r->header_names);
	free(r->header_values);
	free(r->body);
	free(r->error);
	json_decref(r->json);
	free(r);
}

struct body_buf {
	char *data;
	size_t len, cap;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body_buf *b = ud;
	size_t n = size * nmemb;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	e2e_response *r = ud;
	size_t n = size * nitems;
	if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue, say): forget the old headers. */
		for (size_t i = 0; i < r->n_headers; i++) {
			free(r->header_names[i]);
			free(r->header_values[i]);
		}
		r->n_headers = 0;
		return n;
	}
	const char *colon = memchr(buf, ':', n);
	if (!colon)
		return n;
	size_t nl = (size_t)(colon - buf);
	const char *v = colon + 1;
	const char *end = buf + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	char **names = realloc(r->header_names, (r->n_headers + 1) * sizeof(*names));
	if (!names)
		return 0;
	r->header_names = names;
	char **values = realloc(r->header_values, (r->n_headers + 1) * sizeof(*values));
	if (!values)
		return 0;
	r->header_values = values;
	r->header_names[r->n_headers] = strndup(buf, nl);
	r->header_values[r->n_headers] = strndup(v, (size_t)(end - v));
	if (!r->header_names[r->n_headers] || !r->header_values[r->n_headers])
		return 0;
	r->n_headers++;
	return n;
}

e2e_response *e2e_do(e2e_server *s, const e2e_request *rq)
{
	e2e_response *r = own(response_free, xcalloc(1, sizeof(e2e_response)));
	e2e_client *c = rq->client;
	if (!c) {
		if (!s->client)
			s->client = e2e_client_new();
		c = s->client;
	}
	CURL *h = c->curl;
	curl_easy_reset(h);

	const char *method = rq->method ? rq->method : "GET";
	char *url = xasprintf("%s%s", s->base_url, rq->path ? rq->path : "/");
	struct curl_slist *hdrs = NULL;
	char *line;
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (rq->auth == E2E_AUTH_TOKEN) {
		line = xasprintf("Authorization: Bearer %s", s->api_token);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
	} else if (rq->auth == E2E_AUTH_KEY) {
		line = xasprintf("X-Auth-Email: %s", s->email);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
		line = xasprintf("X-Auth-Key: %s", s->api_key);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
	}
	if (rq->content_type && *rq->content_type) {
		line = xasprintf("Content-Type: %s", rq->content_type);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
	} else if (rq->body && !rq->content_type) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	} else {
		hdrs = curl_slist_append(hdrs, "Content-Type:");
	}
	for (size_t i = 0; rq->headers && rq->headers[i]; i++)
		hdrs = curl_slist_append(hdrs, rq->headers[i]);

	struct body_buf body = {0};
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (rq->body) {
		size_t len = rq->body_len ? rq->body_len : strlen(rq->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0 ||
	           strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	}

	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		r->error = xasprintf("%s %s: %s (%s)", method, url, curl_easy_strerror(cc), errbuf);
		r->status = 0;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	}
	curl_slist_free_all(hdrs);
	free(url);

	r->body = body.data ? body.data : xstrdup("");
	r->body_len = body.len;
	if (r->status != 0 && r->body_len > 0)
		r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
	return r;
}

long e2e_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *background_main(void *arg)
{
	e2e_background *b = arg;
	long t0 = e2e_now_ms();

	b->rq.client = e2e_client_new();
	b->r = e2e_do(b->s, &b->rq);
	b->took_ms = e2e_now_ms() - t0;
	e2e_client_free(b->rq.client);
	b->rq.client = NULL;
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

void e2e_background_start(e2e_background *b, e2e_server *s, const e2e_request *rq)
{
	memset(b, 0, sizeof(*b));
	b->s = s;
	b->rq = *rq;
	assert_int_equal(pthread_create(&b->thread, NULL, background_main, b), 0);
}

bool e2e_background_done(e2e_background *b)
{
	return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE) != 0;
}

void e2e_background_join(e2e_background *b)
{
	assert_int_equal(pthread_join(b->thread, NULL), 0);
}

e2e_response *e2e_get(e2e_server *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *path = xvasprintf(fmt, ap);
	va_end(ap);
	e2e_request rq = {.method = "GET", .path = path};
	e2e_response *r = e2e_do(s, &rq);
	free(path);
	return r;
}

e2e_response *e2e_send(e2e_server *s, const char *method, const char *body, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *path = xvasprintf(fmt, ap);
	va_end(ap);
	e2e_request rq = {.method = method, .path = path, .body = body};
	e2e_response *r = e2e_do(s, &rq);
	free(path);
	return r;
}

const char *e2e_header(const e2e_response *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->header_names[i], name) == 0)
			return r->header_values[i];
	return NULL;
}

/* ---- assertions ------------------------------------------------------- */

bool e2e_contains_ci(const char *haystack, const char *needle)
{
	return haystack && needle && strcasestr(haystack, needle) != NULL;
}

const char *e2e_error_pointer(const json_t *error)
{
	json_t *src = json_object_get(error, "source");
	json_t *ptr = json_object_get(src, "pointer");
	return json_is_string(ptr) ? json_string_value(ptr) : NULL;
}

void e2e_assert_envelope_at(const e2e_response *r, const char *file, int line)
{
	if (r->status == 0)
		e2e_fail_at(file, line, "no HTTP response: %s", r->error ? r->error : "?");
	if (!json_is_object(r->json))
		e2e_fail_at(file, line, "HTTP %ld with a body that is not a JSON object: %s",
		            r->status, excerpt(r));
	const char *ct = e2e_header(r, "Content-Type");
	if (!ct || strncasecmp(ct, "application/json", 16) != 0)
		e2e_fail_at(file, line,
		            "HTTP %ld: Content-Type is \"%s\", expected application/json",
		            r->status, ct ? ct : "(none)");
	json_t *success = json_object_get(r->json, "success");
	json_t *errors = json_object_get(r->json, "errors");
	json_t *messages = json_object_get(r->json, "messages");
	if (!json_is_boolean(success) || !json_is_array(errors) || !json_is_array(messages) ||
	    !json_object_get(r->json, "result"))
		e2e_fail_at(file, line,
		            "not an envelope (success bool, errors[], messages[], result): %s",
		            excerpt(r));
	if (json_is_true(success)) {
		if (json_array_size(errors) != 0)
			e2e_fail_at(file, line, "success:true with errors: %s", excerpt(r));
		return;
	}
	if (!json_is_null(json_object_get(r->json, "result")))
		e2e_fail_at(file, line, "success:false but result is not null: %s", excerpt(r));
	if (json_array_size(errors) == 0)
		e2e_fail_at(file, line, "success:false with no errors: %s", excerpt(r));
	size_t i;
	json_t *e;
	json_array_foreach(errors, i, e)
	{
		json_t *code = json_object_get(e, "code");
		if (!json_is_integer(code) || json_integer_value(code) < 1000)
			e2e_fail_at(file, line, "errors[%zu].code is not an integer >= 1000: %s", i,
			            excerpt(r));
		if (!json_is_string(json_object_get(e, "message")) ||
		    json_string_length(json_object_get(e, "message")) == 0)
			e2e_fail_at(file, line, "errors[%zu].message is not a non-empty string: %s",
			            i, excerpt(r));
		json_t *src = json_object_get(e, "source");
		if (src &&
		    !(json_is_object(src) && json_is_string(json_object_get(src, "pointer"))))
			e2e_fail_at(file, line,
			            "errors[%zu].source is not {\"pointer\": string}: %s", i,
			            excerpt(r));
	}
}

json_t *e2e_assert_ok_at(const e2e_response *r, long status, const char *file, int line)
{
	if (r->status != status)
		e2e_fail_at(file, line, "expected HTTP %ld, got %ld: %s", status, r->status,
		            excerpt(r));
	e2e_assert_envelope_at(r, file, line);
	if (!json_is_true(json_object_get(r->json, "success")))
		e2e_fail_at(file, line, "expected success:true: %s", excerpt(r));
	if (json_array_size(json_object_get(r->json, "messages")) != 0)
		e2e_fail_at(file, line, "expected messages:[]: %s", excerpt(r));
	return json_object_get(r->json, "result");
}

json_t *e2e_assert_err_at(const e2e_response *r, long status, int code, const char *pointer,
                          const char *file, int line)
{
	if (r->status != status)
		e2e_fail_at(file, line, "expected HTTP %ld (code %d%s%s), got %ld: %s", status,
		            code, pointer ? ", pointer " : "", pointer ? pointer : "", r->status,
		            excerpt(r));
	e2e_assert_envelope_at(r, file, line);
	if (!json_is_false(json_object_get(r->json, "success")))
		e2e_fail_at(file, line, "expected success:false: %s", excerpt(r));
	json_t *errors = json_object_get(r->json, "errors");
	size_t i;
	json_t *e;
	json_array_foreach(errors, i, e)
	{
		if (code && json_integer_value(json_object_get(e, "code")) != code)
			continue;
		if (pointer) {
			const char *p = e2e_error_pointer(e);
			if (!p || strcmp(p, pointer) != 0)
				continue;
		}
		return e;
	}
	e2e_fail_at(file, line, "expected an error with code %d%s%s: %s", code,
	            pointer ? " and source.pointer " : "", pointer ? pointer : "", excerpt(r));
}

static json_t *member(const json_t *obj, const char *key, const char *file, int line)
{
	if (!json_is_object(obj))
		e2e_fail_at(file, line, "not an object (looking for \"%s\"): %s", key,
		            e2e_dumps(obj));
	json_t *v = json_object_get(obj, key);
	if (!v)
		e2e_fail_at(file, line, "\"%s\" missing in %s", key, e2e_dumps(obj));
	return v;
}

json_int_t e2e_int_at(const json_t *obj, const char *key, const char *file, int line)
{
	json_t *v = member(obj, key, file, line);
	if (!json_is_integer(v))
		e2e_fail_at(file, line, "\"%s\" is not an integer in %s", key, e2e_dumps(obj));
	return json_integer_value(v);
}

const char *e2e_str_at(const json_t *obj, const char *key, const char *file, int line)
{
	json_t *v = member(obj, key, file, line);
	if (!json_is_string(v))
		e2e_fail_at(file, line, "\"%s\" is not a string in %s", key, e2e_dumps(obj));
	return json_string_value(v);
}

bool e2e_bool_at(const json_t *obj, const char *key, const char *file, int line)
{
	json_t *v = member(obj, key, file, line);
	if (!json_is_boolean(v))
		e2e_fail_at(file, line, "\"%s\" is not a boolean in %s", key, e2e_dumps(obj));
	return json_is_true(v);
}

json_t *e2e_arr_at(const json_t *obj, const char *key, const char *file, int line)
{
	json_t *v = member(obj, key, file, line);
	if (!json_is_array(v))
		e2e_fail_at(file, line, "\"%s\" is not an array in %s", key, e2e_dumps(obj));
	return v;
}

void e2e_assert_json_eq_at(const json_t *a, const json_t *b, const char *file, int line)
{
	if (!json_equal(a, b))
		e2e_fail_at(file, line, "JSON differs:\n  %s\n  %s", e2e_dumps(a), e2e_dumps(b));
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int num(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

bool e2e_is_timestamp(const char *s)
{
	/* 0123456789012345678901234 */
	/* 2019-12-27T18:11:19.117Z  */
	if (!s || strlen(s) != 24)
		return false;
	if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
	    s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) ||
	    s[16] != ':' || !digits(s + 17, 2) || s[19] != '.' || !digits(s + 20, 3) ||
	    s[23] != 'Z')
		return false;
	int year = num(s, 4), month = num(s + 5, 2), day = num(s + 8, 2);
	return year >= 2000 && month >= 1 && month <= 12 && day >= 1 && day <= 31 &&
	       num(s + 11, 2) < 24 && num(s + 14, 2) < 60 && num(s + 17, 2) < 60;
}

void e2e_assert_policy_at(const json_t *p, const char *file, int line)
{
	static const char *const keys[] = {
	    "id",
	    "created_at",
	    "last_modified",
	    "modified_at",
	    "pattern",
	    "pattern_type",
	    "is_regex",
	    "is_trusted_sender",
	    "is_acceptable_sender",
	    "is_exempt_recipient",
	    "verify_sender",
	    "comments",
	    "is_sender",
	    "is_recipient",
	    "is_spoof",
	};
	const size_t nkeys = sizeof(keys) / sizeof(keys[0]);
	if (!json_is_object(p))
		e2e_fail_at(file, line, "policy is not an object: %s", e2e_dumps(p));
	for (size_t i = 0; i < nkeys; i++)
		if (!json_object_get(p, keys[i]))
			e2e_fail_at(file, line, "policy lacks \"%s\": %s", keys[i], e2e_dumps(p));
	if (json_object_size(p) != nkeys)
		e2e_fail_at(file, line,
		            "policy has %zu keys, expected exactly the %zu documented: %s",
		            json_object_size(p), nkeys, e2e_dumps(p));

	json_int_t id = e2e_int_at(p, "id", file, line);
	if (id < 1 || id > INT32_MAX)
		e2e_fail_at(file, line, "id %lld is not a positive 32-bit integer", (long long)id);
	const char *created = e2e_str_at(p, "created_at", file, line);
	const char *modified = e2e_str_at(p, "modified_at", file, line);
	const char *last = e2e_str_at(p, "last_modified", file, line);
	if (!e2e_is_timestamp(created) || !e2e_is_timestamp(modified) || !e2e_is_timestamp(last))
		e2e_fail_at(file, line, "timestamps are not YYYY-MM-DDTHH:MM:SS.mmmZ: %s",
		            e2e_dumps(p));
	if (strcmp(last, modified) != 0)
		e2e_fail_at(file, line, "last_modified != modified_at: %s", e2e_dumps(p));
	if (strcmp(created, modified) > 0)
		e2e_fail_at(file, line, "created_at is after modified_at: %s", e2e_dumps(p));

	const char *pattern = e2e_str_at(p, "pattern", file, line);
	if (!*pattern)
		e2e_fail_at(file, line, "empty pattern: %s", e2e_dumps(p));
	const char *type = e2e_str_at(p, "pattern_type", file, line);
	if (strcmp(type, "EMAIL") && strcmp(type, "DOMAIN") && strcmp(type, "IP") &&
	    strcmp(type, "UNKNOWN"))
		e2e_fail_at(file, line, "bad pattern_type: %s", e2e_dumps(p));
	e2e_bool_at(p, "is_regex", file, line);
	e2e_bool_at(p, "verify_sender", file, line);
	json_t *comments = json_object_get(p, "comments");
	if (!json_is_string(comments) && !json_is_null(comments))
		e2e_fail_at(file, line, "comments is neither a string nor null: %s", e2e_dumps(p));
	if (e2e_bool_at(p, "is_sender", file, line) !=
	    e2e_bool_at(p, "is_trusted_sender", file, line))
		e2e_fail_at(file, line, "is_sender does not mirror is_trusted_sender: %s",
		            e2e_dumps(p));
	if (e2e_bool_at(p, "is_recipient", file, line) !=
	    e2e_bool_at(p, "is_exempt_recipient", file, line))
		e2e_fail_at(file, line, "is_recipient does not mirror is_exempt_recipient: %s",
		            e2e_dumps(p));
	if (e2e_bool_at(p, "is_spoof", file, line) !=
	    e2e_bool_at(p, "is_acceptable_sender", file, line))
		e2e_fail_at(file, line, "is_spoof does not mirror is_acceptable_sender: %s",
		            e2e_dumps(p));
}

/* ---- policy helpers --------------------------------------------------- */

char *e2e_email_body(const char *pattern)
{
	return e2e_strf("{\"pattern\":\"%s\",\"pattern_type\":\"EMAIL\",\"is_regex\":false,"
	                "\"is_trusted_sender\":true,\"is_acceptable_sender\":false,"
	                "\"is_exempt_recipient\":false,\"verify_sender\":true}",
	                pattern);
}

json_t *e2e_create_at(e2e_server *s, const char *body, const char *file, int line)
{
	e2e_response *r = e2e_send(s, "POST", body, "%s", s->policies);
	json_t *p = e2e_assert_ok_at(r, 201, file, line);
	e2e_assert_policy_at(p, file, line);
	return p;
}

json_t *e2e_fetch_at(e2e_server *s, json_int_t id, const char *file, int line)
{
	e2e_response *r = e2e_get(s, "%s/%lld", s->policies, (long long)id);
	json_t *p = e2e_assert_ok_at(r, 200, file, line);
	e2e_assert_policy_at(p, file, line);
	return p;
}

json_int_t e2e_total_at(e2e_server *s, const char *file, int line)
{
	e2e_response *r = e2e_get(s, "%s?per_page=1", s->policies);
	e2e_assert_ok_at(r, 200, file, line);
	json_t *info = json_object_get(r->json, "result_info");
	return e2e_int_at(info, "total_count", file, line);
}

json_t *e2e_list_all_at(e2e_server *s, const char *file, int line)
{
	json_t *all = e2e_keep(json_array());
	for (int page = 1;; page++) {
		e2e_response *r = e2e_get(s, "%s?per_page=1000&page=%d", s->policies, page);
		json_t *result = e2e_assert_ok_at(r, 200, file, line);
		if (!json_is_array(result))
			e2e_fail_at(file, line, "list result is not an array: %s", excerpt(r));
		if (json_array_size(result) == 0)
			break;
		json_array_extend(all, result);
		if (page > 1000)
			e2e_fail_at(file, line, "the list does not end");
	}
	return all;
}

json_t *e2e_batch_at(e2e_server *s, const char *body, const char *file, int line)
{
	e2e_response *r = e2e_send(s, "POST", body, "%s/batch", s->policies);
	json_t *result = e2e_assert_ok_at(r, 200, file, line);
	if (!json_is_object(result))
		e2e_fail_at(file, line, "batch result is not an object: %s", excerpt(r));
	return result;
}

char *e2e_batch_posts_body(const json_t *posts)
{
	json_t *b =
	    json_pack("{s:[], s:[], s:[], s:O}", "deletes", "patches", "puts", "posts", posts);
	char *s = e2e_dumps(b);
	json_decref(b);
	return s;
}

json_t *e2e_policy_obj(const char *pattern, const char *pattern_type, bool is_regex, bool trusted,
                       bool acceptable, bool exempt, bool verify, const char *comments)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b}", "pattern", pattern,
	                      "pattern_type", pattern_type, "is_regex", is_regex,
	                      "is_trusted_sender", trusted, "is_acceptable_sender", acceptable,
	                      "is_exempt_recipient", exempt, "verify_sender", verify);
	if (comments)
		json_object_set_new(o, "comments", json_string(comments));
	return e2e_keep(o);
}

json_t *e2e_create_many_at(e2e_server *s, const char *prefix, int n, const char *file, int line)
{
	json_t *created = e2e_keep(json_array());
	for (int start = 0; start < n; start += 1000) {
		int end = n - start > 1000 ? start + 1000 : n;
		json_t *posts = json_array();
		for (int i = start; i < end; i++) {
			char pattern[256];
			snprintf(pattern, sizeof(pattern), "%s%d@example.com", prefix, i);
			json_array_append(posts, e2e_policy_obj(pattern, "EMAIL", false, true,
			                                        false, false, true, NULL));
		}
		char *body = e2e_batch_posts_body(posts);
		json_decref(posts);
		json_t *result = e2e_batch_at(s, body, file, line);
		json_t *made = e2e_arr_at(result, "posts", file, line);
		if (json_array_size(made) != (size_t)(end - start))
			e2e_fail_at(file, line, "batch created %zu policies, expected %d",
			            json_array_size(made), end - start);
		json_array_extend(created, made);
	}
	return created;
}

/* ---- allowctl, files, times ------------------------------------------- */

char *e2e_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (cap - n < 4096) {
			char *b = realloc(buf, cap * 2);
			if (!b) {
				fprintf(stderr, "e2e harness: out of memory\n");
				abort();
			}
			buf = b;
			cap *= 2;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	bool failed = ferror(f) != 0;
	fclose(f);
	if (failed) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return own(free, buf);
}

char *e2e_rfc3339(long long offset_s)
{
	time_t t = time(NULL) + (time_t)offset_s;
	struct tm tm;
	char buf[32];
	if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		E2E_FAIL("cannot format the time %lld seconds from now", offset_s);
	return e2e_strf("%s", buf);
}

/* A temp file under the server's directory for one of allowctl's outputs. */
static int ctl_output_file(e2e_server *s, const char *what, char **path)
{
	*path = xasprintf("%s/allowctl-%s-XXXXXX", s->tmp_dir, what);
	int fd = mkostemp(*path, O_CLOEXEC);
	if (fd < 0)
		E2E_FAIL("mkostemp %s: %s", *path, strerror(errno));
	return fd;
}

int e2e_allowctl(e2e_server *s, json_t **out, char **err, const char *const *args)
{
	const char *bin = getenv("ALLOWCTL_BIN");
	if (!bin || !*bin)
		E2E_FAIL("ALLOWCTL_BIN is not set");

	size_t nargs = 0;
	while (args && args[nargs])
		nargs++;
	char **argv = xcalloc(nargs + 5, sizeof(*argv));
	size_t a = 0;
	argv[a++] = xstrdup(bin);
	argv[a++] = xstrdup("--data-dir");
	argv[a++] = xstrdup(s->data_dir);
	argv[a++] = xstrdup("--json");
	for (size_t i = 0; i < nargs; i++)
		argv[a++] = xstrdup(args[i]);
	argv[a] = NULL;

	/* As for the server: the test's own ALLOWD_* settings stay out. */
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **envp = xcalloc(nenv + 1, sizeof(*envp));
	size_t e = 0;
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "ALLOWD_", 7) != 0)
			envp[e++] = environ[i];
	envp[e] = NULL;

	char *out_path, *err_path;
	int out_fd = ctl_output_file(s, "out", &out_path);
	int err_fd = ctl_output_file(s, "err", &err_path);
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0)
		E2E_FAIL("open /dev/null: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		E2E_FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		/* Async-signal-safe calls only from here to exec. */
		dup2(null_fd, 0);
		dup2(out_fd, 1);
		dup2(err_fd, 2);
		execve(bin, argv, envp);
		_exit(127);
	}
	close(out_fd);
	close(err_fd);
	close(null_fd);
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
	free(envp);

	int status = 0;
	if (wait_exit(pid, STOP_TIMEOUT_MS, &status) != 0) {
		kill(pid, SIGKILL);
		wait_exit(pid, STOP_TIMEOUT_MS, &status);
		E2E_FAIL("allowctl did not finish within %d ms", STOP_TIMEOUT_MS);
	}
	char *out_text = e2e_read_file(out_path, NULL);
	char *err_text = e2e_read_file(err_path, NULL);
	unlink(out_path);
	unlink(err_path);
	free(out_path);
	free(err_path);
	if (!out_text || !err_text)
		E2E_FAIL("cannot read allowctl's output");
	for (size_t i = 0; i < sizeof(sanitizer_marks) / sizeof(sanitizer_marks[0]); i++)
		if (strstr(err_text, sanitizer_marks[i]))
			E2E_FAIL("allowctl reported a sanitizer error:\n%s", err_text);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && access(bin, X_OK) != 0)
		E2E_FAIL("cannot run allowctl %s", bin);
	if (out)
		*out = e2e_keep(json_loads(out_text, JSON_REJECT_DUPLICATES, NULL));
	if (err)
		*err = err_text;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

json_t *e2e_allowctl_ok_at(e2e_server *s, const char *file, int line, const char *const *args)
{
	json_t *out = NULL;
	char *err = NULL;
	int rc = e2e_allowctl(s, &out, &err, args);
	char *cmd = e2e_strf("allowctl");
	for (size_t i = 0; args && args[i]; i++)
		cmd = e2e_strf("%s %s", cmd, args[i]);
	if (rc != 0)
		e2e_fail_at(file, line, "%s: exit status %d, expected 0: %s", cmd, rc, err);
	if (!out)
		e2e_fail_at(file, line, "%s: stdout is not JSON", cmd);
	return out;
}

/*
 * diskfull.c - a full disk (issue 5).  allowd's data directory sits on a
 * small tmpfs (when this process may mount one: root in CI), or the server
 * runs under an RLIMIT_FSIZE set with prlimit(2) (anywhere on Linux).  The
 * space runs out under sequential and then concurrent writes, small and
 * large.  Writes must fail with a clean 503 envelope (code 1005), the server
 * must keep running and serving reads, no acknowledged write may be lost and
 * no rejected one may land, and writes must succeed again as soon as space
 * returns (a filler file deleted, the tmpfs remounted larger, the limit
 * raised).  Finally SIGKILL, PRAGMA integrity_check, restart: all still there.
 *
 * Usage: stress_diskfull [TEST-NAME-PATTERN] (ALLOWD_BIN, ALLOWD_TEST_TMP as for
 * the e2e tests); 'file_size*' runs only the case that needs no root.
 * Exit status 77 (ctest: skipped) when neither mechanism is available.
 */
#include "harness.h"
#include "stress_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TMPFS_SIZE    (6L * 1024 * 1024)
#define HEADROOM      (256L * 1024) /* room given back for the concurrent phase */
#define FULL_STREAK   8             /* consecutive 503s that prove the disk is full */
#define FULL_ATTEMPTS 400
/*
 * The concurrent phase: small writers beside big-batch writers.  Two big
 * batches in one group commit dirty more pages than SQLite's page cache
 * holds (2 MiB), so the cache spills into the WAL mid-transaction, where
 * the full disk makes a statement fail; the small commits still fit.
 */
#define SMALL_THREADS 6
#define SMALL_OPS     60
#define BIG_THREADS   3
#define BIG_OPS       4
#define BIG_POSTS     500
#define ROUNDS        3 /* of the concurrent phase, each with fresh headroom */

enum mode { MODE_TMPFS, MODE_RLIMIT };

static struct {
	e2e_server *s;
	enum mode mode;
	bool mounted;
	char filler[4200];
	char url[640];
	char health[128];
	pthread_mutex_t lock;
	json_t *acked;   /* "id" -> the policy as last acknowledged */
	sclient *client; /* the main thread's; freed by the teardown */
	unsigned long seq, writes_acked, writes_503;
	char comments[1025];
} t = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *const server_args[] = {
    "--rate-limit", "0", "--auth-failure-limit", "0", "--access-log", "false", "--max-body",
    "4194304",      NULL};

/* ---- the model: what was acknowledged --------------------------------- */

static unsigned long next_seq(void)
{
	pthread_mutex_lock(&t.lock);
	unsigned long n = t.seq++;
	pthread_mutex_unlock(&t.lock);
	return n;
}

static void ack_policy(json_t *p)
{
	char key[32];
	snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(json_object_get(p, "id")));
	pthread_mutex_lock(&t.lock);
	json_object_set(t.acked, key, p);
	pthread_mutex_unlock(&t.lock);
}

static void ack_delete(json_int_t id)
{
	char key[32];
	snprintf(key, sizeof(key), "%lld", (long long)id);
	pthread_mutex_lock(&t.lock);
	json_object_del(t.acked, key);
	pthread_mutex_unlock(&t.lock);
}

/* A random acknowledged id (0 when none), for edits and deletes. */
static json_int_t some_acked_id(uint64_t *rng)
{
	json_int_t id = 0;
	pthread_mutex_lock(&t.lock);
	size_t n = json_object_size(t.acked), k = n ? (size_t)rnd_below(rng, n) : 0;
	const char *key;
	json_t *v;
	json_object_foreach(t.acked, key, v)
	{
		if (k-- == 0) {
			id = json_integer_value(json_object_get(v, "id"));
			break;
		}
	}
	pthread_mutex_unlock(&t.lock);
	return id;
}

/* ---- requests ----------------------------------------------------------- */

static char *create_body(unsigned long n, bool long_pattern)
{
	json_t *o;
	if (long_pattern) {
		/* a 240-octet DOMAIN: large index entries, so big batches spill the cache */
		char pattern[300], label[64];
		snprintf(label, sizeof(label), "df%lu", n);
		snprintf(pattern, sizeof(pattern), "%s.%.60s.%.60s.%.60s.full.example", label,
		         t.comments, t.comments + 60, t.comments + 120);
		o = json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:s}", "pattern", pattern,
		              "pattern_type", "DOMAIN", "is_regex", 0, "is_trusted_sender", 1,
		              "is_acceptable_sender", 0, "is_exempt_recipient", 0, "verify_sender",
		              1, "comments", t.comments);
	} else {
		char pattern[64];
		snprintf(pattern, sizeof(pattern), "df%lu@full.example", n);
		o = json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:s}", "pattern", pattern,
		              "pattern_type", "EMAIL", "is_regex", 0, "is_trusted_sender", 1,
		              "is_acceptable_sender", 0, "is_exempt_recipient", 0, "verify_sender",
		              1, "comments", t.comments);
	}
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/*
 * 1: acknowledged with `ok_status`; 0: rejected with the clean 503 envelope
 * (code 1005, JSON); -1: anything else, described in `why`.
 */
static int classify(const sresp *r, long ok_status, const sclient *c, char *why, size_t len)
{
	char env[128];
	if (r->status == ok_status && json_is_true(json_object_get(r->json, "success")))
		return 1;
	if (r->status == 503 && envelope_error_is(r, 1005, env, sizeof(env)))
		return 0;
	if (r->status == 503)
		snprintf(why, len, "HTTP 503 but %s: %.600s", env, sclient_body(c));
	else if (r->status)
		snprintf(why, len, "HTTP %ld, expected %ld or 503: %.600s", r->status, ok_status,
		         sclient_body(c));
	else
		snprintf(why, len, "transport error: %s", c->err);
	return -1;
}

enum wkind { W_CREATE, W_PATCH, W_DELETE, W_BATCH, W_BIG_BATCH };

/*
 * One write of `kind` (an edit or delete of `id`; with id 0 they become a
 * create); records what was acknowledged and *created (may be NULL) gets a
 * created id.  Returns as classify.
 */
static int write_one(sclient *c, enum wkind kind, json_int_t id, json_int_t *created, char *why,
                     size_t len)
{
	char url[700];
	char *body = NULL;
	long ok = 200;
	sresp r;

	if ((kind == W_PATCH || kind == W_DELETE) && !id)
		kind = W_CREATE;
	switch (kind) {
	case W_CREATE:
		body = create_body(next_seq(), false);
		r = sclient_do(c, "POST", t.url, t.s->api_token, body);
		ok = 201;
		break;
	case W_PATCH: {
		snprintf(url, sizeof(url), "%s/%lld", t.url, (long long)id);
		json_t *p = json_pack("{s:s, s:b}", "comments", "edited while the disk is full",
		                      "verify_sender", (int)(next_seq() % 2));
		body = json_dumps(p, JSON_COMPACT);
		json_decref(p);
		r = sclient_do(c, "PATCH", url, t.s->api_token, body);
		break;
	}
	case W_DELETE:
		snprintf(url, sizeof(url), "%s/%lld", t.url, (long long)id);
		r = sclient_do(c, "DELETE", url, t.s->api_token, NULL);
		break;
	default: {
		size_t n = kind == W_BIG_BATCH ? BIG_POSTS : 3;
		json_t *posts = json_array();
		for (size_t i = 0; i < n; i++) {
			char *p = create_body(next_seq(), kind == W_BIG_BATCH);
			json_array_append_new(posts, json_loads(p, 0, NULL));
			free(p);
		}
		json_t *b = json_pack("{s:[], s:[], s:[], s:o}", "deletes", "patches", "puts",
		                      "posts", posts);
		body = json_dumps(b, JSON_COMPACT);
		json_decref(b);
		snprintf(url, sizeof(url), "%s/batch", t.url);
		r = sclient_do(c, "POST", url, t.s->api_token, body);
	}
	}
	free(body);

	int rc = classify(&r, ok, c, why, len);
	json_t *result = json_object_get(r.json, "result");
	if (rc == 1) {
		if (kind == W_CREATE || kind == W_PATCH) {
			ack_policy(result);
			if (kind == W_CREATE && created)
				*created = json_integer_value(json_object_get(result, "id"));
		} else if (kind == W_DELETE) {
			ack_delete(id);
		} else {
			size_t i;
			json_t *p;
			json_array_foreach(json_object_get(result, "posts"), i, p) ack_policy(p);
		}
	}
	pthread_mutex_lock(&t.lock);
	if (rc == 1)
		t.writes_acked++;
	else if (rc == 0)
		t.writes_503++;
	pthread_mutex_unlock(&t.lock);
	json_decref(r.json);
	return rc;
}

/* ---- checks ------------------------------------------------------------- */

static void assert_alive(const char *when)
{
	int status;
	pid_t p = waitpid(t.s->pid, &status, WNOHANG);
	if (p == t.s->pid) {
		t.s->pid = 0;
		E2E_FAIL("%s: allowd died (%s %d%s)", when,
		         WIFSIGNALED(status) ? "signal" : "exit status",
		         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
		         WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ ? ", SIGXFSZ" : "");
	}
}

/* Appends a line to a report (bounded). */
static void note(char *report, size_t len, const char *fmt, ...) E2E_PRINTF(3, 4);
static void note(char *report, size_t len, const char *fmt, ...)
{
	size_t used = strlen(report);
	if (used + 1 >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(report + used, len - used, fmt, ap);
	va_end(ap);
}

/*
 * After a transport error: waits (bounded) for the server to exit and, if it
 * did, fails with how it died.
 */
static void assert_not_dying(const char *when)
{
#ifdef SYS_pidfd_open
	int pfd = (int)syscall(SYS_pidfd_open, t.s->pid, 0);
	if (pfd >= 0) {
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		while (poll(&p, 1, 10000) < 0 && errno == EINTR)
			;
		close(pfd);
	}
#endif
	assert_alive(when);
}

/*
 * Reads work and show exactly the acknowledged policies: /healthz, the
 * whole list, and a GET of some of them.  Returns the number of policies
 * lost, changed or unexplained, with the first few in `report`.
 */
static size_t check_reads(sclient *c, const char *when, char *report, size_t len)
{
	size_t bad = 0;
	sresp r = sclient_do(c, "GET", t.health, NULL, NULL);
	long hs = r.status;
	json_decref(r.json);
	E2E_CHECK(hs == 200, "%s: /healthz answered HTTP %ld", when, hs);

	json_t *seen = json_object();
	for (int page = 1;; page++) {
		char url[700];
		snprintf(url, sizeof(url), "%s?per_page=1000&page=%d", t.url, page);
		r = sclient_do(c, "GET", url, t.s->api_token, NULL);
		json_t *result = json_object_get(r.json, "result");
		if (r.status != 200 || !json_is_array(result)) {
			char *msg = e2e_strf("%s: list page %d: HTTP %ld %.600s", when, page,
			                     r.status, r.status ? sclient_body(c) : c->err);
			json_decref(r.json);
			json_decref(seen);
			E2E_FAIL("%s", msg);
		}
		size_t i, n = json_array_size(result);
		json_t *p;
		json_array_foreach(result, i, p)
		{
			char key[32];
			snprintf(key, sizeof(key), "%lld",
			         (long long)json_integer_value(json_object_get(p, "id")));
			json_object_set(seen, key, p);
		}
		json_decref(r.json);
		if (n < 1000)
			break;
	}
	const char *key;
	json_t *want, *got;
	json_object_foreach(t.acked, key, want)
	{
		got = json_object_get(seen, key);
		if (json_equal(got, want))
			continue;
		if (bad++ < 3) {
			char *a = json_dumps(want, JSON_COMPACT);
			char *b = got ? json_dumps(got, JSON_COMPACT) : strdup("(absent)");
			note(report, len,
			     "\n  acknowledged policy %s %s:\n    want %.400s\n    now  %.400s",
			     key, got ? "DIFFERS" : "is LOST", a, b);
			free(a);
			free(b);
		}
	}
	json_object_foreach(seen, key, got)
	{
		if (json_object_get(t.acked, key))
			continue;
		if (bad++ < 3) {
			char *a = json_dumps(got, JSON_COMPACT);
			note(report, len,
			     "\n  policy %s exists though no write of it was acknowledged: %.400s",
			     key, a);
			free(a);
		}
	}
	json_decref(seen);

	/* single GETs of a few, as the SDKs read */
	size_t k = 0;
	json_object_foreach(t.acked, key, want)
	{
		if (k++ >= 10)
			break;
		char url[700];
		snprintf(url, sizeof(url), "%s/%s", t.url, key);
		r = sclient_do(c, "GET", url, t.s->api_token, NULL);
		bool same = r.status == 200 && json_equal(json_object_get(r.json, "result"), want);
		long st = r.status;
		json_decref(r.json);
		if (!same && bad++ < 3)
			note(report, len, "\n  GET policy %s: HTTP %ld, not as acknowledged", key,
			     st);
	}
	return bad;
}

static void assert_reads_match(sclient *c, const char *when)
{
	char report[4096] = "";
	size_t bad = check_reads(c, when, report, sizeof(report));
	if (bad)
		fprintf(stderr, "diskfull: %s:%s\n", when, report); /* cmocka cuts long messages */
	E2E_CHECK(bad == 0, "%s: %zu policies not as acknowledged (of %zu acknowledged)", when, bad,
	          json_object_size(t.acked));
}

/*
 * Writes of every kind until FULL_STREAK in a row are rejected with the
 * clean 503 envelope.  Some may still be acknowledged first (SQLite reuses
 * WAL space after a checkpoint); they are recorded like any other.
 */
static void assert_writes_rejected(sclient *c, const char *when)
{
	static const enum wkind cycle[] = {W_CREATE, W_PATCH, W_DELETE, W_BATCH};
	uint64_t rng = 7;
	int streak = 0, attempts = 0;
	char why[1024];
	while (streak < FULL_STREAK && attempts < FULL_ATTEMPTS) {
		enum wkind kind = cycle[attempts % 4];
		int rc = write_one(c, kind,
		                   kind == W_PATCH || kind == W_DELETE ? some_acked_id(&rng) : 0,
		                   NULL, why, sizeof(why));
		attempts++;
		E2E_CHECK(rc >= 0, "%s: write %d: %s", when, attempts, why);
		streak = rc == 0 ? streak + 1 : 0;
	}
	E2E_CHECK(streak >= FULL_STREAK, "%s: %d writes and still no %d rejections in a row", when,
	          attempts, FULL_STREAK);
	assert_alive(when);
}

/* Writes of every kind succeed (the first one included). */
static void assert_writes_succeed(sclient *c, const char *when)
{
	static const enum wkind cycle[] = {W_CREATE, W_PATCH, W_BATCH, W_DELETE, W_CREATE};
	uint64_t rng = 11;
	char why[1024];
	for (int i = 0; i < 10; i++) {
		enum wkind kind = cycle[i % 5];
		int rc = write_one(c, kind,
		                   kind == W_PATCH || kind == W_DELETE ? some_acked_id(&rng) : 0,
		                   NULL, why, sizeof(why));
		E2E_CHECK(rc == 1, "%s: write %d after space returned: %s", when, i + 1,
		          rc < 0 ? why : "rejected with 503");
	}
}

/* ---- concurrent writers near the limit -------------------------------- */

struct writer {
	int index;
	bool big;
	unsigned long acked, rejected, errors;
	char error[1200]; /* the first unexpected answer */
	pthread_t thread;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	sclient *c = sclient_new();
	uint64_t rng = 1000 + (uint64_t)w->index;
	int ops = w->big ? BIG_OPS : SMALL_OPS;
	json_int_t own[SMALL_OPS];
	size_t n_own = 0;
	for (int i = 0; i < ops; i++) {
		enum wkind kind = W_BIG_BATCH;
		size_t pick = 0;
		json_int_t id = 0, created = 0;
		if (!w->big) {
			uint64_t k = rnd_below(&rng, 100);
			kind = k < 60 || !n_own ? W_CREATE : k < 85 ? W_PATCH : W_DELETE;
			if (kind != W_CREATE)
				id = own[pick = (size_t)rnd_below(&rng, n_own)];
		}
		char why[1024];
		int rc = write_one(c, kind, id, &created, why, sizeof(why));
		if (rc < 0) {
			/* go on: the point is also what happens to the others' writes */
			if (!w->errors++)
				snprintf(w->error, sizeof(w->error), "writer %d, write %d: %s",
				         w->index, i, why);
			continue;
		}
		if (rc && created)
			own[n_own++] = created;
		if (rc && kind == W_DELETE)
			own[pick] = own[--n_own];
		rc ? w->acked++ : w->rejected++;
	}
	sclient_free(c);
	return NULL;
}

/*
 * Small creates, edits and deletes from several threads while one thread
 * posts batches big enough to spill SQLite's page cache mid-transaction:
 * with group commit they share transactions, so a failure inside one job
 * must not undo (or let through) another's acknowledged write.
 */
static void concurrent_writes(sclient *c, const char *when)
{
	struct writer w[SMALL_THREADS + BIG_THREADS];
	const int n = SMALL_THREADS + BIG_THREADS;
	memset(w, 0, sizeof(w));
	for (int i = 0; i < n; i++) {
		w[i].index = i;
		w[i].big = i >= SMALL_THREADS;
		E2E_CHECK(pthread_create(&w[i].thread, NULL, writer_main, &w[i]) == 0,
		          "pthread_create");
	}
	unsigned long acked = 0, rejected = 0, errors = 0;
	char report[8192] = "";
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		acked += w[i].acked;
		rejected += w[i].rejected;
		errors += w[i].errors;
		if (w[i].errors)
			note(report, sizeof(report), "\n  %lu unexpected answers; the first: %s",
			     w[i].errors, w[i].error);
	}
	assert_alive(when);
	printf("diskfull: %s: %lu writes acknowledged, %lu rejected with 503, %lu other "
	       "answers\n",
	       when, acked, rejected, errors);
	size_t bad = check_reads(c, when, report, sizeof(report));
	if (errors || bad)
		fprintf(stderr, "diskfull: %s:%s\n", when, report); /* cmocka cuts long messages */
	E2E_CHECK(errors == 0 && bad == 0,
	          "%s: %lu answers other than success or a clean 503, and %zu policies not as "
	          "acknowledged afterwards (of %zu acknowledged)",
	          when, errors, bad, json_object_size(t.acked));
}

/* ---- making the disk full ---------------------------------------------- */

static long long file_size(const char *dir, const char *name)
{
	char path[4200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* Fills the filesystem of t.filler to the last byte; returns the filler's size. */
static off_t fill_up(void)
{
	static char chunk[1 << 20];
	memset(chunk, 0x5a, sizeof(chunk));
	int fd = open(t.filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	E2E_CHECK(fd >= 0, "open %s: %s", t.filler, strerror(errno));
	off_t size = 0;
	for (size_t step = sizeof(chunk); step >= 512; step /= 8) {
		ssize_t n;
		while ((n = write(fd, chunk, step)) > 0)
			size += n;
		E2E_CHECK(n < 0 && errno == ENOSPC, "filling %s: %s", t.filler,
		          n < 0 ? strerror(errno) : "short write");
	}
	close(fd);
	return size;
}

/* Sets the server's RLIMIT_FSIZE soft limit (the hard limit stays). */
static void set_fsize_limit(rlim_t cur)
{
	struct rlimit old, rl;
	E2E_CHECK(prlimit(t.s->pid, RLIMIT_FSIZE, NULL, &old) == 0, "prlimit: %s", strerror(errno));
	rl.rlim_cur = cur;
	rl.rlim_max = old.rlim_max;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	E2E_CHECK(prlimit(t.s->pid, RLIMIT_FSIZE, &rl, NULL) == 0, "prlimit: %s", strerror(errno));
}

/* No more room: the filler takes the last byte, or no file may grow. */
static void make_full(void)
{
	if (t.mode == MODE_TMPFS)
		fill_up();
	else
		set_fsize_limit(0);
}

/* HEADROOM bytes of room again (for the WAL; the rest stays full). */
static void give_headroom(void)
{
	if (t.mode == MODE_TMPFS) {
		struct stat st;
		E2E_CHECK(stat(t.filler, &st) == 0, "stat %s: %s", t.filler, strerror(errno));
		off_t size = st.st_size > HEADROOM ? st.st_size - HEADROOM : 0;
		E2E_CHECK(truncate(t.filler, size) == 0, "truncate %s: %s", t.filler,
		          strerror(errno));
	} else {
		long long wal = file_size(t.s->data_dir, "allowd.db-wal");
		long long db = file_size(t.s->data_dir, "allowd.db");
		set_fsize_limit((rlim_t)((wal > db ? wal : db) + HEADROOM));
	}
}

static void give_all_space(void)
{
	if (t.mode == MODE_TMPFS)
		E2E_CHECK(unlink(t.filler) == 0, "unlink %s: %s", t.filler, strerror(errno));
	else
		set_fsize_limit(RLIM_INFINITY);
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	ssize_t n;
	if (in < 0 || (out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0)
		goto done;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto done;
	rc = n == 0 && fsync(out) == 0 ? 0 : -1;
done:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/*
 * Moves the (stopped) server's data directory onto a fresh tmpfs mounted
 * over the same path: the files are moved aside, the tmpfs mounted, and
 * the files copied in.
 */
static void data_dir_onto_tmpfs(void)
{
	const char *dd = t.s->data_dir;
	char *aside = e2e_strf("%s/data-aside", t.s->tmp_dir);
	E2E_CHECK(rename(dd, aside) == 0 && mkdir(dd, 0700) == 0, "moving %s aside: %s", dd,
	          strerror(errno));
	char opts[64];
	snprintf(opts, sizeof(opts), "size=%ld,mode=0700", TMPFS_SIZE);
	E2E_CHECK(mount("tmpfs", dd, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0,
	          "mount tmpfs on %s: %s", dd, strerror(errno));
	t.mounted = true;
	DIR *d = opendir(aside);
	E2E_CHECK(d != NULL, "opendir %s: %s", aside, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		char *from = e2e_strf("%s/%s", aside, e->d_name);
		if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		char *to = e2e_strf("%s/%s", dd, e->d_name);
		E2E_CHECK(copy_file(from, to, st.st_mode & 07777) == 0, "copy %s to %s: %s", from,
		          to, strerror(errno));
	}
	closedir(d);
}

static void unmount_data_dir(void)
{
	if (t.mounted && t.s && umount2(t.s->data_dir, MNT_DETACH) != 0)
		fprintf(stderr, "diskfull: umount %s: %s\n", t.s->data_dir, strerror(errno));
	t.mounted = false;
}

/* ---- the test ---------------------------------------------------------- */

static void set_urls(void)
{
	snprintf(t.url, sizeof(t.url), "%s%s", t.s->base_url, t.s->policies);
	snprintf(t.health, sizeof(t.health), "%s/healthz", t.s->base_url);
}

static void disk_full(enum mode mode)
{
	sclient *c = NULL;
	char why[1024];

	t.mode = mode;
	t.acked = json_object();
	t.seq = t.writes_acked = t.writes_503 = 0;
	for (size_t i = 0; i < sizeof(t.comments) - 1; i++)
		t.comments[i] = (char)('a' + (i * 7) % 26);
	t.comments[sizeof(t.comments) - 1] = '\0';

	t.s = e2e_server_start(server_args);
	if (mode == MODE_TMPFS) {
		e2e_server_stop(t.s);
		data_dir_onto_tmpfs();
		e2e_server_restart(t.s);
	}
	snprintf(t.filler, sizeof(t.filler), "%s/filler", t.s->data_dir);
	set_urls();
	c = t.client = sclient_new();

	/* acknowledged before the disk fills: these must survive everything */
	for (int i = 0; i < 30; i++) {
		int rc = write_one(c, i % 10 == 9 ? W_BATCH : W_CREATE, 0, NULL, why, sizeof(why));
		E2E_CHECK(rc == 1, "seeding, write %d: %s", i, rc ? why : "rejected with 503");
	}

	make_full();
	assert_writes_rejected(c, "disk full");
	assert_reads_match(c, "reads while the disk is full");

	for (int round = 1; round <= ROUNDS; round++) {
		give_headroom();
		concurrent_writes(
		    c, e2e_strf("concurrent writes with little room left, round %d", round));
	}

	give_all_space();
	assert_writes_succeed(c, "space returned");
	assert_reads_match(c, "after the space returned");

	if (mode == MODE_TMPFS) {
		/* again by shrinking the filesystem to what it holds, then growing it */
		struct statvfs v;
		E2E_CHECK(statvfs(t.s->data_dir, &v) == 0, "statvfs: %s", strerror(errno));
		unsigned long long used = (unsigned long long)(v.f_blocks - v.f_bfree) * v.f_frsize;
		char opts[64];
		snprintf(opts, sizeof(opts), "size=%llu", used);
		E2E_CHECK(mount("tmpfs", t.s->data_dir, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
		                opts) == 0,
		          "remount %s: %s", opts, strerror(errno));
		assert_writes_rejected(c, "tmpfs remounted to its used size");
		snprintf(opts, sizeof(opts), "size=%ld", 4 * TMPFS_SIZE);
		E2E_CHECK(mount("tmpfs", t.s->data_dir, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
		                opts) == 0,
		          "remount %s: %s", opts, strerror(errno));
	} else {
		set_fsize_limit(0);
		assert_writes_rejected(c, "RLIMIT_FSIZE lowered to 0 again");
		set_fsize_limit(RLIM_INFINITY);
	}
	assert_writes_succeed(c, "space returned again");
	assert_reads_match(c, "after the space returned again");

	/* durable: SIGKILL, a sound database, every acknowledged write after a restart */
	e2e_server_kill(t.s);
	db_facts f;
	E2E_CHECK(db_inspect(t.s->data_dir, &f, why, sizeof(why)) == 0, "%s", why);
	E2E_CHECK(strcmp(f.integrity, "ok") == 0, "PRAGMA integrity_check: %s", f.integrity);
	E2E_CHECK(f.policies == (long long)json_object_size(t.acked),
	          "the database holds %lld policies, %zu acknowledged", f.policies,
	          json_object_size(t.acked));
	e2e_server_restart(t.s);
	set_urls();
	assert_reads_match(c, "after SIGKILL and restart");

	printf("diskfull (%s): %lu writes acknowledged and all present, %lu rejected with a "
	       "clean 503 (code 1005) and none applied; %zu policies; integrity_check ok\n",
	       mode == MODE_TMPFS ? "tmpfs" : "RLIMIT_FSIZE", t.writes_acked, t.writes_503,
	       json_object_size(t.acked));
	e2e_server_stop(t.s);
	unmount_data_dir();
}

static bool can_mount;

E2E_TEST(tmpfs_fills_up_and_recovers)
{
	(void)s;
	if (!can_mount) {
		printf("diskfull: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); "
		       "the RLIMIT_FSIZE case covers the full disk\n");
		skip();
	}
	disk_full(MODE_TMPFS);
}

E2E_TEST(file_size_limit_fills_up_and_recovers)
{
	(void)s;
	disk_full(MODE_RLIMIT);
}

/*
 * As under systemd's LimitFSIZE= or `ulimit -f`: SIGXFSZ keeps its default
 * action (terminate with a core), so only allowd itself can keep a write
 * past the limit from killing it.
 */
E2E_TEST(file_size_limit_does_not_kill_the_server)
{
	(void)s;
	char why[1024];
	t.mode = MODE_RLIMIT;
	t.acked = json_object();
	memset(t.comments, 'c', sizeof(t.comments) - 1);
	signal(SIGXFSZ, SIG_DFL);
	t.s = e2e_server_start(server_args);
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit no_core = {0, 0};
	prlimit(t.s->pid, RLIMIT_CORE, &no_core, NULL); /* should SIGXFSZ kill it: no core file */
	set_urls();
	sclient *c = t.client = sclient_new();
	E2E_CHECK(write_one(c, W_CREATE, 0, NULL, why, sizeof(why)) == 1, "create: %s", why);

	set_fsize_limit(0);
	int rc = write_one(c, W_CREATE, 0, NULL, why, sizeof(why));
	if (rc < 0)
		assert_not_dying("a write past RLIMIT_FSIZE with SIGXFSZ at its default action");
	E2E_CHECK(rc == 0, "a write past RLIMIT_FSIZE: %s", rc ? why : "acknowledged");
	assert_reads_match(c, "reads past RLIMIT_FSIZE");
	set_fsize_limit(RLIM_INFINITY);
	assert_writes_succeed(c, "limit raised");
	e2e_server_stop(t.s);
}

static int teardown(void **state)
{
	unmount_data_dir();
	int rc = e2e_teardown(state);
	json_decref(t.acked);
	t.acked = NULL;
	sclient_free(t.client);
	t.client = NULL;
	t.s = NULL;
	return rc;
}

#define CASE(name) cmocka_unit_test_setup_teardown(name, e2e_setup_bare, teardown)

/* Can this process mount a tmpfs?  Tries one on a scratch directory. */
static bool probe_mount(void)
{
	const char *root = getenv("ALLOWD_TEST_TMP");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/diskfull-probe-XXXXXX", root && *root ? root : "/tmp");
	if (root && *root)
		mkdir(root, 0755);
	if (!mkdtemp(dir))
		return false;
	bool ok = mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") == 0;
	if (ok)
		umount2(dir, MNT_DETACH);
	rmdir(dir);
	return ok;
}

int main(int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr,
		        "usage: stress_diskfull [TEST-NAME-PATTERN]  (e.g. 'file_size*')\n");
		return 2;
	}
	if (argc == 2)
		cmocka_set_test_filter(argv[1]);
	/*
	 * Ignored signals stay ignored across exec: allowd inherits this, so a
	 * write past RLIMIT_FSIZE fails with EFBIG instead of killing it.
	 */
	signal(SIGXFSZ, SIG_IGN);
	can_mount = probe_mount();
	struct rlimit rl;
	bool can_limit = prlimit(0, RLIMIT_FSIZE, NULL, &rl) == 0;
	if (!can_mount && !can_limit) {
		printf("diskfull: SKIP: neither a tmpfs mount nor prlimit(RLIMIT_FSIZE) works "
		       "here\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
	    CASE(tmpfs_fills_up_and_recovers),
	    CASE(file_size_limit_fills_up_and_recovers),
	    CASE(file_size_limit_does_not_kill_the_server),
	};
	return cmocka_run_group_tests_name("stress_diskfull", tests, NULL, NULL) ? 1 : 0;
}

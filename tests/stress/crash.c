/*
 * crash.c - crash consistency under SIGKILL (issue 5).  Client threads drive
 * creates, edits, deletes and batches (some built to fail) against the real
 * allowd while the main thread SIGKILLs it after a random delay.  Then the
 * database must pass PRAGMA integrity_check (read-only, before the restart)
 * and, once restarted, hold exactly what was acknowledged: each id in its
 * last acknowledged state, each write in flight at the kill wholly applied
 * or wholly absent, no policy nobody asked for, and ids never reused.
 *
 * Usage: stress_crash [-c CYCLES] [-s SEED] [-t THREADS] [-d MAX_DELAY_MS] [-q]
 * (ALLOWD_BIN and ALLOWD_TEST_TMP as for the e2e tests).  The seed fixes the
 * kill schedule and every thread's workload; the interleaving is the kernel's.
 *
 * Ownership: each thread owns the ids it created and is the only one to
 * write them, so "the last acknowledged state of an id" is well defined; the
 * main thread reads the model only while the workers are joined.
 */
#include "harness.h"
#include "stress_common.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS   32
#define HIST          4  /* acknowledged states kept per id, for failure reports */
#define LIVE_SOFT_MAX 60 /* per thread: above it the mix leans to deletes */
#define GONE_KEEP     16 /* deleted ids a thread remembers for 404 probes */
#define START_WAIT_S  60 /* every worker must get a first response by then */

enum op_kind { OP_CREATE, OP_PATCH, OP_DELETE, OP_BATCH };

typedef struct hist_entry {
	unsigned cycle;
	const char *what; /* static string */
	json_t *state;    /* NULL: deleted */
} hist_entry;

/* One policy id, owned by the thread that created it. */
typedef struct rec {
	int64_t id;
	int owner;
	json_t *state; /* the last acknowledged policy object; NULL once deleted */
	unsigned n_hist;
	hist_entry hist[HIST];    /* ring, newest at (n_hist - 1) % HIST */
	const struct op *pending; /* the in-flight op touching it (main thread, per cycle) */
} rec;

/* An edit of an existing id inside an op: the content it must have after. */
typedef struct upd {
	rec *r;
	json_t *want; /* the eight content fields */
} upd;

typedef struct op {
	enum op_kind kind;
	const char *label;
	bool fails; /* built to fail: must change nothing */
	long want_status;
	int want_code;
	char want_pointer[64]; /* "" = not checked */
	const char *method;
	char url[640];
	char *body;
	rec **dels;
	size_t n_dels;
	upd *upds; /* patches first, then puts */
	size_t n_upds, n_patches;
	json_t **posts; /* expected content of each new policy, in order */
	size_t n_posts;
} op;

typedef struct worker {
	int index;
	uint64_t rng;
	unsigned long seq; /* makes every pattern unique, across cycles */
	rec **live;
	size_t n_live, cap_live;
	int64_t gone[GONE_KEEP];
	size_t n_gone;
	rec **born; /* created this cycle; the main thread files them by id */
	size_t n_born, cap_born;
	/* per cycle */
	unsigned cycle;
	int64_t floor; /* every id seen before this cycle is <= floor */
	sclient *http;
	op *inflight; /* the request a transport error cut off */
	unsigned long acked, acked_items, failed_ok, readbacks;
	char error[4096];
	pthread_t thread;
} worker;

static struct {
	unsigned cycles;
	uint64_t seed;
	int threads;
	unsigned max_delay_ms;
	bool quiet;
	uint64_t rng; /* the kill schedule */

	char base[512]; /* http://127.0.0.1:port/client/v4/accounts/.../allow_policies */
	char token[128];
	atomic_int stop, killed;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int started;

	rec **by_id;
	size_t cap_by_id;
	int64_t max_seen; /* the largest id ever acknowledged or listed */
	worker w[MAX_THREADS];

	sclient *verifier; /* the main thread's client; freed at exit, also after a failure */
	unsigned long t_acked, t_items, t_failed_ok, t_inflight, t_landed, t_absent, t_readbacks;
	long long max_policies;
} g = {
    .cycles = 50,
    .threads = 8,
    .max_delay_ms = 400,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fprintf(stderr, "crash: out of memory\n");
		abort();
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "crash: out of memory\n");
		abort();
	}
	return p;
}

static char *jdump(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s) {
		fprintf(stderr, "crash: cannot encode JSON\n");
		abort();
	}
	return s;
}

static void werr(worker *w, const char *fmt, ...) E2E_PRINTF(2, 3);
static void werr(worker *w, const char *fmt, ...)
{
	if (w->error[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(w->error, sizeof(w->error), "thread %d, cycle %u: ", w->index, w->cycle);
	vsnprintf(w->error + n, sizeof(w->error) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* ---- the model -------------------------------------------------------- */

static void rec_set(rec *r, json_t *state, unsigned cycle, const char *what)
{
	json_decref(r->state);
	r->state = json_incref(state);
	hist_entry *h = &r->hist[r->n_hist % HIST];
	json_decref(h->state);
	h->cycle = cycle;
	h->what = what;
	h->state = json_incref(state);
	r->n_hist++;
}

static void rec_free(rec *r)
{
	if (!r)
		return;
	json_decref(r->state);
	for (unsigned i = 0; i < HIST; i++)
		json_decref(r->hist[i].state);
	free(r);
}

/* The acknowledged history of r, oldest first (malloc'ed). */
static char *rec_history(const rec *r)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	fprintf(f, "id %" PRId64 " (thread %d), %u acknowledged states; the last %u:", r->id,
	        r->owner, r->n_hist, r->n_hist < HIST ? r->n_hist : HIST);
	unsigned first = r->n_hist > HIST ? r->n_hist - HIST : 0;
	for (unsigned k = first; k < r->n_hist; k++) {
		const hist_entry *h = &r->hist[k % HIST];
		char *s = h->state ? jdump(h->state) : NULL;
		fprintf(f, "\n    cycle %u, %s: %s", h->cycle, h->what, s ? s : "(deleted)");
		free(s);
	}
	fclose(f);
	return out;
}

static void live_add(worker *w, rec *r)
{
	if (w->n_live == w->cap_live) {
		w->cap_live = w->cap_live ? 2 * w->cap_live : 64;
		w->live = xrealloc(w->live, w->cap_live * sizeof(*w->live));
	}
	w->live[w->n_live++] = r;
}

static void live_remove(worker *w, rec *r)
{
	for (size_t i = 0; i < w->n_live; i++)
		if (w->live[i] == r) {
			w->live[i] = w->live[--w->n_live];
			return;
		}
}

static void gone_add(worker *w, int64_t id)
{
	w->gone[w->n_gone++ % GONE_KEEP] = id;
}

static void by_id_reserve(int64_t id)
{
	if ((size_t)id < g.cap_by_id)
		return;
	size_t cap = g.cap_by_id ? g.cap_by_id : 4096;
	while (cap <= (size_t)id)
		cap *= 2;
	g.by_id = xrealloc(g.by_id, cap * sizeof(*g.by_id));
	memset(g.by_id + g.cap_by_id, 0, (cap - g.cap_by_id) * sizeof(*g.by_id));
	g.cap_by_id = cap;
}

/* ---- policy content ----------------------------------------------------- */

static const char *const content_keys[] = {
    "pattern",
    "pattern_type",
    "is_regex",
    "is_trusted_sender",
    "is_acceptable_sender",
    "is_exempt_recipient",
    "verify_sender",
    "comments",
};
#define N_CONTENT (sizeof(content_keys) / sizeof(content_keys[0]))

/* The eight content fields of a policy (a new object). */
static json_t *content_of(const json_t *policy)
{
	json_t *c = json_object();
	for (size_t i = 0; i < N_CONTENT; i++) {
		json_t *v = json_object_get(policy, content_keys[i]);
		json_object_set_new(c, content_keys[i], v ? json_incref(v) : json_null());
	}
	return c;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/*
 * A policy object of the documented shape whose content equals `want`
 * (with the deprecated aliases mirroring their fields).
 */
static bool policy_matches(const json_t *p, const json_t *want, char *why, size_t len)
{
	static const char *const alias[][2] = {{"is_sender", "is_trusted_sender"},
	                                       {"is_recipient", "is_exempt_recipient"},
	                                       {"is_spoof", "is_acceptable_sender"}};
	if (!json_is_object(p) || json_object_size(p) != 15) {
		snprintf(why, len, "not a 15-key policy object");
		return false;
	}
	json_t *id = json_object_get(p, "id");
	if (!json_is_integer(id) || json_integer_value(id) < 1 ||
	    json_integer_value(id) > INT32_MAX) {
		snprintf(why, len, "id is not a positive 32-bit integer");
		return false;
	}
	for (size_t i = 0; i < N_CONTENT; i++)
		if (!json_equal(json_object_get(p, content_keys[i]),
		                json_object_get(want, content_keys[i]))) {
			snprintf(why, len, "%s differs from the request", content_keys[i]);
			return false;
		}
	for (size_t i = 0; i < 3; i++)
		if (!json_equal(json_object_get(p, alias[i][0]), json_object_get(p, alias[i][1]))) {
			snprintf(why, len, "%s does not mirror %s", alias[i][0], alias[i][1]);
			return false;
		}
	const char *c = jstr(p, "created_at"), *m = jstr(p, "modified_at");
	if (!e2e_is_timestamp(c) || !e2e_is_timestamp(m) ||
	    strcmp(m, jstr(p, "last_modified")) != 0 || strcmp(c, m) > 0) {
		snprintf(why, len, "bad timestamps");
		return false;
	}
	return true;
}

static char *fresh_pattern(worker *w, const char *type, bool regex)
{
	unsigned long n = w->seq++;
	char buf[128];
	if (regex && strcmp(type, "EMAIL") == 0)
		snprintf(buf, sizeof(buf), "^t%d-%lu@re\\.crash\\.example$", w->index, n);
	else if (regex)
		snprintf(buf, sizeof(buf), "^t%d-%lu\\.re\\.crash\\.example$", w->index, n);
	else if (strcmp(type, "EMAIL") == 0)
		snprintf(buf, sizeof(buf), "t%d-%lu@crash.example", w->index, n);
	else if (strcmp(type, "DOMAIN") == 0)
		snprintf(buf, sizeof(buf), "t%d-%lu.crash.example", w->index, n);
	else
		snprintf(buf, sizeof(buf), "2a00:%x:%lx:%lx::%lx", (unsigned)w->index + 1,
		         (n >> 32) & 0xffff, (n >> 16) & 0xffff, n & 0xffff);
	return strdup(buf);
}

static json_t *fresh_comments(worker *w)
{
	uint64_t k = rnd_below(&w->rng, 100);
	if (k < 35)
		return json_null();
	char buf[1100];
	if (k < 90) {
		snprintf(buf, sizeof(buf), "c%lu \xe2\x9c\x93 %08" PRIx64, w->seq++,
		         rnd_next(&w->rng) & 0xffffffffu);
	} else {
		size_t n = 200 + (size_t)rnd_below(&w->rng, 825); /* up to the 1024 limit */
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)('a' + (i * 7 + w->seq) % 26);
		buf[n] = '\0';
		w->seq++;
	}
	return json_string(buf);
}

/* A valid create content with a pattern never used before. */
static json_t *fresh_content(worker *w)
{
	static const struct {
		const char *type;
		bool regex;
	} kinds[] = {{"EMAIL", false}, {"EMAIL", false},  {"EMAIL", false},
	             {"EMAIL", false}, {"DOMAIN", false}, {"DOMAIN", false},
	             {"IP", false},    {"EMAIL", true},   {"DOMAIN", true}};
	size_t k = (size_t)rnd_below(&w->rng, sizeof(kinds) / sizeof(kinds[0]));
	bool exempt_ok = kinds[k].regex || strcmp(kinds[k].type, "EMAIL") == 0;
	bool trusted = rnd_chance(&w->rng, 70), acceptable = rnd_chance(&w->rng, 30);
	bool exempt = exempt_ok && rnd_chance(&w->rng, 30);
	if (!trusted && !acceptable && !exempt)
		trusted = true;
	char *pattern = fresh_pattern(w, kinds[k].type, kinds[k].regex);
	json_t *c = json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:o}", "pattern", pattern,
	                      "pattern_type", kinds[k].type, "is_regex", kinds[k].regex,
	                      "is_trusted_sender", trusted, "is_acceptable_sender", acceptable,
	                      "is_exempt_recipient", exempt, "verify_sender",
	                      rnd_chance(&w->rng, 50), "comments", fresh_comments(w));
	free(pattern);
	return c;
}

/* The request object for a content: "comments":null is sometimes left out. */
static json_t *content_request(worker *w, const json_t *content)
{
	json_t *o = json_deep_copy(content);
	if (json_is_null(json_object_get(o, "comments")) && rnd_chance(&w->rng, 50))
		json_object_del(o, "comments");
	return o;
}

static bool exempt_allowed(const json_t *content)
{
	return json_is_true(json_object_get(content, "is_regex")) ||
	       strcmp(jstr(content, "pattern_type"), "EMAIL") == 0;
}

/* Sets `field` (or its deprecated alias) in the patch and in the expected content. */
static void patch_set(worker *w, json_t *patch, json_t *want, const char *field, const char *alias,
                      json_t *value)
{
	const char *key = alias && rnd_chance(&w->rng, 25) ? alias : field;
	json_object_set(patch, key, value);
	json_object_set_new(want, field, value);
}

/* A valid PATCH body for r; *want gets the content it must produce. */
static json_t *fresh_patch(worker *w, const rec *r, json_t **want)
{
	json_t *patch = json_object();
	json_t *c = content_of(r->state);
	bool done[5] = {false};
	int changes = 1 + (int)rnd_below(&w->rng, 3);

	for (int i = 0; i < changes; i++) {
		int k = (int)rnd_below(&w->rng, 5);
		if (done[k])
			continue;
		done[k] = true;
		switch (k) {
		case 0:
			patch_set(w, patch, c, "comments", NULL, fresh_comments(w));
			break;
		case 1:
			patch_set(w, patch, c, "verify_sender", NULL,
			          json_boolean(!json_is_true(json_object_get(c, "verify_sender"))));
			break;
		case 2:
			patch_set(w, patch, c, "is_acceptable_sender", "is_spoof",
			          json_boolean(rnd_chance(&w->rng, 50)));
			break;
		case 3:
			if (exempt_allowed(c))
				patch_set(w, patch, c, "is_exempt_recipient", "is_recipient",
				          json_boolean(rnd_chance(&w->rng, 50)));
			else
				patch_set(w, patch, c, "is_trusted_sender", "is_sender",
				          json_true());
			break;
		default: {
			char *p = fresh_pattern(w, jstr(c, "pattern_type"),
			                        json_is_true(json_object_get(c, "is_regex")));
			patch_set(w, patch, c, "pattern", NULL, json_string(p));
			free(p);
		}
		}
	}
	if (json_object_size(patch) == 0)
		patch_set(w, patch, c, "comments", NULL, fresh_comments(w));
	if (!json_is_true(json_object_get(c, "is_trusted_sender")) &&
	    !json_is_true(json_object_get(c, "is_acceptable_sender")) &&
	    !json_is_true(json_object_get(c, "is_exempt_recipient"))) {
		if (json_object_get(patch, "is_sender"))
			json_object_del(patch, "is_sender");
		json_object_set_new(patch, "is_trusted_sender", json_true());
		json_object_set_new(c, "is_trusted_sender", json_true());
	}
	*want = c;
	return patch;
}

/* ---- operations ------------------------------------------------------- */

static op *op_new(enum op_kind kind, const char *label)
{
	op *o = xcalloc(1, sizeof(*o));
	o->kind = kind;
	o->label = label;
	return o;
}

static void op_free(op *o)
{
	if (!o)
		return;
	free(o->body);
	free(o->dels);
	for (size_t i = 0; i < o->n_upds; i++)
		json_decref(o->upds[i].want);
	free(o->upds);
	for (size_t i = 0; i < o->n_posts; i++)
		json_decref(o->posts[i]);
	free(o->posts);
	free(o);
}

static void op_expect_failure(op *o, long status, int code, const char *pointer)
{
	o->fails = true;
	o->want_status = status;
	o->want_code = code;
	snprintf(o->want_pointer, sizeof(o->want_pointer), "%s", pointer ? pointer : "");
}

static void op_url(op *o, const char *method, int64_t id, const char *suffix)
{
	o->method = method;
	if (id)
		snprintf(o->url, sizeof(o->url), "%s/%" PRId64, g.base, id);
	else
		snprintf(o->url, sizeof(o->url), "%s%s", g.base, suffix ? suffix : "");
}

/* Picks n distinct live recs (n <= n_live) into out. */
static void pick_live(worker *w, rec **out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i + (size_t)rnd_below(&w->rng, w->n_live - i);
		rec *t = w->live[i];
		w->live[i] = w->live[j];
		w->live[j] = t;
		out[i] = w->live[i];
	}
}

static op *op_create(worker *w)
{
	op *o = op_new(OP_CREATE, "create");
	o->posts = xcalloc(1, sizeof(*o->posts));
	o->posts[o->n_posts++] = fresh_content(w);
	json_t *req = content_request(w, o->posts[0]);
	o->body = jdump(req);
	json_decref(req);
	op_url(o, "POST", 0, NULL);
	return o;
}

static op *op_patch(worker *w, rec *r)
{
	op *o = op_new(OP_PATCH, "patch");
	o->upds = xcalloc(1, sizeof(*o->upds));
	json_t *want;
	json_t *patch = fresh_patch(w, r, &want);
	o->upds[0] = (upd){r, want};
	o->n_upds = o->n_patches = 1;
	o->body = jdump(patch);
	json_decref(patch);
	op_url(o, "PATCH", r->id, NULL);
	return o;
}

static op *op_delete(rec *r)
{
	op *o = op_new(OP_DELETE, "delete");
	o->dels = xcalloc(1, sizeof(*o->dels));
	o->dels[o->n_dels++] = r;
	op_url(o, "DELETE", r->id, NULL);
	return o;
}

/*
 * A batch of distinct live ids: n_del deletes, n_patch patches, n_put puts
 * and n_post posts.  `tail` (may be NULL) is appended to posts as is, and
 * `extra_patch_of_deleted` adds a patch of the first deleted id: both make
 * the batch fail.
 */
static op *op_batch(worker *w, const char *label, size_t n_del, size_t n_patch, size_t n_put,
                    size_t n_post, json_t *tail, bool extra_patch_of_deleted)
{
	op *o = op_new(OP_BATCH, label);
	size_t n_ids = n_del + n_patch + n_put;
	if (n_ids > w->n_live) {
		n_ids = w->n_live;
		n_del = n_del < n_ids ? n_del : n_ids;
		n_patch = n_patch < n_ids - n_del ? n_patch : n_ids - n_del;
		n_put = n_ids - n_del - n_patch;
	}
	rec **picked = xcalloc(n_ids, sizeof(*picked));
	pick_live(w, picked, n_ids);

	json_t *deletes = json_array(), *patches = json_array(), *puts = json_array(),
	       *posts = json_array();
	o->dels = xcalloc(n_del, sizeof(*o->dels));
	o->upds = xcalloc(n_patch + n_put, sizeof(*o->upds));
	o->posts = xcalloc(n_post, sizeof(*o->posts));
	for (size_t i = 0; i < n_del; i++) {
		o->dels[o->n_dels++] = picked[i];
		json_array_append_new(deletes, json_pack("{s:I}", "id", (json_int_t)picked[i]->id));
	}
	if (extra_patch_of_deleted && n_del)
		json_array_append_new(patches,
		                      json_pack("{s:I, s:s}", "id", (json_int_t)picked[0]->id,
		                                "comments", "patched after its delete"));
	for (size_t i = 0; i < n_patch; i++) {
		rec *r = picked[n_del + i];
		json_t *want, *p = fresh_patch(w, r, &want);
		json_object_set_new(p, "id", json_integer(r->id));
		json_array_append_new(patches, p);
		o->upds[o->n_upds++] = (upd){r, want};
	}
	o->n_patches = o->n_upds;
	for (size_t i = 0; i < n_put; i++) {
		rec *r = picked[n_del + n_patch + i];
		json_t *want = fresh_content(w);
		json_t *p = content_request(w, want);
		json_object_set_new(p, "id", json_integer(r->id));
		json_array_append_new(puts, p);
		o->upds[o->n_upds++] = (upd){r, want};
	}
	for (size_t i = 0; i < n_post; i++) {
		o->posts[o->n_posts++] = fresh_content(w);
		json_array_append_new(posts, content_request(w, o->posts[i]));
	}
	if (tail)
		json_array_append_new(posts, tail);
	json_t *b = json_pack("{s:o, s:o, s:o, s:o}", "deletes", deletes, "patches", patches,
	                      "puts", puts, "posts", posts);
	o->body = jdump(b);
	json_decref(b);
	free(picked);
	op_url(o, "POST", 0, "/batch");
	return o;
}

/* One of the requests built to fail, or NULL when none fits the current state. */
static op *op_failing(worker *w)
{
	op *o;
	char ptr[64];
	switch (rnd_below(&w->rng, 6)) {
	case 0: /* a create that duplicates a live policy */
		if (!w->n_live)
			return NULL;
		{
			rec *r;
			pick_live(w, &r, 1);
			o = op_new(OP_CREATE, "create-duplicate");
			json_t *c = content_of(r->state);
			json_object_set_new(c, "comments", json_string("a duplicate"));
			o->body = jdump(c);
			json_decref(c);
			op_url(o, "POST", 0, NULL);
			op_expect_failure(o, 400, 1003, "/pattern");
		}
		return o;
	case 1: /* edit or delete of an id deleted before */
		if (!w->n_gone)
			return NULL;
		{
			int64_t id = w->gone[rnd_below(&w->rng, w->n_gone < GONE_KEEP ? w->n_gone
			                                                              : GONE_KEEP)];
			if (rnd_chance(&w->rng, 50)) {
				o = op_new(OP_PATCH, "patch-deleted");
				o->body = strdup("{\"comments\":\"on a deleted id\"}");
				op_url(o, "PATCH", id, NULL);
			} else {
				o = op_new(OP_DELETE, "delete-deleted");
				op_url(o, "DELETE", id, NULL);
			}
			op_expect_failure(o, 404, 1002, "/id");
		}
		return o;
	case 2: /* an edit that breaks a field rule */
		for (size_t i = 0; i < w->n_live; i++) {
			if (exempt_allowed(w->live[i]->state))
				continue;
			o = op_new(OP_PATCH, "patch-invalid");
			o->body = strdup("{\"comments\":\"never\",\"is_exempt_recipient\":true}");
			op_url(o, "PATCH", w->live[i]->id, NULL);
			op_expect_failure(o, 400, 1001, "/is_exempt_recipient");
			return o;
		}
		return NULL;
	case 3: { /* a batch whose last post is invalid */
		size_t n_post = (size_t)rnd_below(&w->rng, 4);
		json_t *bad = fresh_content(w);
		json_object_set_new(bad, "pattern_type", json_string("UNKNOWN"));
		o = op_batch(w, "batch-invalid-tail", rnd_below(&w->rng, 3), rnd_below(&w->rng, 3),
		             rnd_below(&w->rng, 2), n_post, bad, false);
		snprintf(ptr, sizeof(ptr), "/posts/%zu/pattern_type", o->n_posts);
		op_expect_failure(o, 400, 1001, ptr);
		return o;
	}
	case 4: /* a batch that patches an id it deleted */
		if (!w->n_live)
			return NULL;
		o = op_batch(w, "batch-patch-after-delete", 1 + rnd_below(&w->rng, 2), 0, 0,
		             rnd_below(&w->rng, 3), NULL, true);
		/* a missing item makes the batch invalid: 400, code 1002 (policies.c) */
		op_expect_failure(o, 400, 1002, "/patches/0/id");
		return o;
	default: { /* a batch whose posts collide */
		size_t n_post = 1 + (size_t)rnd_below(&w->rng, 3);
		o = op_batch(w, "batch-duplicate-post", rnd_below(&w->rng, 2),
		             rnd_below(&w->rng, 2), rnd_below(&w->rng, 2), n_post, NULL, false);
		/* append a copy of the first post: the batch now fails at its index */
		json_t *b = json_loads(o->body, 0, NULL);
		json_t *posts = json_object_get(b, "posts");
		json_array_append(posts, json_array_get(posts, 0));
		free(o->body);
		o->body = jdump(b);
		json_decref(b);
		snprintf(ptr, sizeof(ptr), "/posts/%zu/pattern", o->n_posts);
		op_expect_failure(o, 400, 1003, ptr);
		return o;
	}
	}
}

/* The next request of thread w, drawn from its PRNG. */
static op *next_op(worker *w)
{
	for (;;) {
		uint64_t k = rnd_below(&w->rng, 100);
		bool crowded = w->n_live > LIVE_SOFT_MAX;
		if (w->n_live < 4 || k < 20) {
			if (!crowded)
				return op_create(w);
			k = 50;
		}
		if (k < 42) {
			rec *r;
			pick_live(w, &r, 1);
			return op_patch(w, r);
		}
		if (k < 54 || (crowded && k < 60)) {
			rec *r;
			pick_live(w, &r, 1);
			return op_delete(r);
		}
		if (k < 84) {
			if (rnd_chance(&w->rng, 4)) /* a bulk batch: a long transaction */
				return op_batch(w, "batch-bulk", 10 + rnd_below(&w->rng, 40),
				                rnd_below(&w->rng, 20), rnd_below(&w->rng, 10),
				                crowded ? 5 : 20 + rnd_below(&w->rng, 60), NULL,
				                false);
			return op_batch(w, "batch", rnd_below(&w->rng, crowded ? 6 : 3),
			                rnd_below(&w->rng, 4), rnd_below(&w->rng, 3),
			                crowded ? 0 : 1 + rnd_below(&w->rng, 4), NULL, false);
		}
		op *o = op_failing(w);
		if (o)
			return o;
	}
}

/* ---- checking responses -------------------------------------------------- */

/* r->state's replacement `got` after an acknowledged edit with content `want`. */
static bool edit_ok(worker *w, const op *o, const rec *r, const json_t *got, const json_t *want)
{
	char why[128];
	if (!policy_matches(got, want, why, sizeof(why)))
		;
	else if (json_integer_value(json_object_get(got, "id")) != r->id)
		snprintf(why, sizeof(why), "another id");
	else if (strcmp(jstr(got, "created_at"), jstr(r->state, "created_at")) != 0)
		snprintf(why, sizeof(why), "created_at changed");
	else if (strcmp(jstr(got, "modified_at"), jstr(r->state, "modified_at")) <= 0)
		snprintf(why, sizeof(why), "modified_at did not move forward");
	else
		return true;
	char *g1 = jdump(got), *g2 = jdump(want), *g3 = jdump(r->state);
	werr(w, "%s %s: edit of id %" PRId64 ": %s\n  got  %s\n  want %s\n  was  %s", o->label,
	     o->url, r->id, why, g1, g2, g3);
	free(g1);
	free(g2);
	free(g3);
	return false;
}

/* A new policy `got` acknowledged for the content `want`. */
static bool new_ok(worker *w, const op *o, const json_t *got, const json_t *want)
{
	char why[128];
	if (!policy_matches(got, want, why, sizeof(why)))
		;
	else if (strcmp(jstr(got, "created_at"), jstr(got, "modified_at")) != 0)
		snprintf(why, sizeof(why), "created_at != modified_at");
	else if (json_integer_value(json_object_get(got, "id")) <= w->floor)
		snprintf(why, sizeof(why), "id reused: every id up to %" PRId64 " was seen before",
		         w->floor);
	else
		return true;
	char *g1 = jdump(got), *g2 = jdump(want);
	werr(w, "%s: new policy: %s\n  got  %s\n  want %s", o->label, why, g1, g2);
	free(g1);
	free(g2);
	return false;
}

static rec *adopt_new(worker *w, json_t *policy, const char *what)
{
	rec *r = xcalloc(1, sizeof(*r));
	r->id = json_integer_value(json_object_get(policy, "id"));
	r->owner = w->index;
	rec_set(r, policy, w->cycle, what);
	live_add(w, r);
	if (w->n_born == w->cap_born) {
		w->cap_born = w->cap_born ? 2 * w->cap_born : 256;
		w->born = xrealloc(w->born, w->cap_born * sizeof(*w->born));
	}
	w->born[w->n_born++] = r;
	return r;
}

/*
 * After a rejected request: the ids it named still read as acknowledged and
 * none of its posts exists.  Returns 1 when done, 0 when the server went
 * away meanwhile (nothing to conclude), -1 on a violation.
 */
static int read_back_unchanged(worker *w, const op *o)
{
	char url[1024];
	for (size_t i = 0; i < o->n_dels + o->n_upds && i < 3; i++) {
		const rec *r = i < o->n_dels ? o->dels[i] : o->upds[i - o->n_dels].r;
		snprintf(url, sizeof(url), "%s/%" PRId64, g.base, r->id);
		sresp rr = sclient_do(w->http, "GET", url, g.token, NULL);
		if (rr.status == 0)
			return 0;
		json_t *got = json_object_get(rr.json, "result");
		bool same = rr.status == 200 && json_equal(got, r->state);
		if (!same) {
			char *want = jdump(r->state);
			werr(w,
			     "%s was rejected, yet id %" PRId64
			     " changed:\n  GET  HTTP %ld %.1500s\n"
			     "  want %s\n  request %.1500s",
			     o->label, r->id, rr.status, sclient_body(w->http), want, o->body);
			free(want);
		}
		json_decref(rr.json);
		w->readbacks++;
		if (!same)
			return -1;
	}
	for (size_t i = 0; i < o->n_posts && i < 2; i++) {
		char *esc = curl_easy_escape(w->http->h, jstr(o->posts[i], "pattern"), 0);
		snprintf(url, sizeof(url), "%s?per_page=5&pattern=%s", g.base, esc ? esc : "");
		curl_free(esc);
		sresp rr = sclient_do(w->http, "GET", url, g.token, NULL);
		if (rr.status == 0)
			return 0;
		json_t *info = json_object_get(rr.json, "result_info");
		bool none = rr.status == 200 &&
		            json_integer_value(json_object_get(info, "total_count")) == 0 &&
		            json_is_integer(json_object_get(info, "total_count"));
		if (!none)
			werr(w, "%s was rejected, yet its post %zu exists: HTTP %ld %.1500s",
			     o->label, i, rr.status, sclient_body(w->http));
		json_decref(rr.json);
		w->readbacks++;
		if (!none)
			return -1;
	}
	return 1;
}

/* Checks one response against the model and records what it acknowledged. 0 or -1. */
static int settle(worker *w, op *o, const sresp *r)
{
	const char *body = sclient_body(w->http);
	char why[160];

	if (o->fails) {
		const char *ptr = envelope_pointer(r->json);
		if (r->status != o->want_status ||
		    !envelope_error_is(r, o->want_code, why, sizeof(why)) ||
		    (o->want_pointer[0] && (!ptr || strcmp(ptr, o->want_pointer) != 0))) {
			werr(w,
			     "%s %s %s: expected HTTP %ld, code %d, pointer \"%s\"; got HTTP %ld: "
			     "%.1500s\n  request: %.1500s",
			     o->label, o->method, o->url, o->want_status, o->want_code,
			     o->want_pointer, r->status, body, o->body ? o->body : "");
			return -1;
		}
		w->failed_ok++;
		return read_back_unchanged(w, o) < 0 ? -1 : 0;
	}

	long want_status = o->kind == OP_CREATE ? 201 : 200;
	json_t *result = json_object_get(r->json, "result");
	if (r->status != want_status || !json_is_true(json_object_get(r->json, "success")) ||
	    json_array_size(json_object_get(r->json, "errors")) != 0) {
		werr(w,
		     "%s %s %s: expected HTTP %ld success, got HTTP %ld: %.1500s\n  request: "
		     "%.1500s",
		     o->label, o->method, o->url, want_status, r->status, body,
		     o->body ? o->body : "");
		return -1;
	}

	switch (o->kind) {
	case OP_CREATE:
		if (!new_ok(w, o, result, o->posts[0]))
			return -1;
		adopt_new(w, result, "create");
		w->acked_items++;
		break;
	case OP_PATCH: {
		rec *rr = o->upds[0].r;
		if (!edit_ok(w, o, rr, result, o->upds[0].want))
			return -1;
		rec_set(rr, result, w->cycle, "patch");
		w->acked_items++;
		break;
	}
	case OP_DELETE: {
		rec *rr = o->dels[0];
		if (json_object_size(result) != 1 ||
		    json_integer_value(json_object_get(result, "id")) != rr->id) {
			werr(w, "delete %" PRId64 ": result is %.500s", rr->id, body);
			return -1;
		}
		rec_set(rr, NULL, w->cycle, "delete");
		live_remove(w, rr);
		gone_add(w, rr->id);
		w->acked_items++;
		break;
	}
	case OP_BATCH: {
		json_t *dels = json_object_get(result, "deletes");
		json_t *patches = json_object_get(result, "patches");
		json_t *puts = json_object_get(result, "puts");
		json_t *posts = json_object_get(result, "posts");
		if (json_array_size(dels) != o->n_dels ||
		    json_array_size(patches) != o->n_patches ||
		    json_array_size(puts) != o->n_upds - o->n_patches ||
		    json_array_size(posts) != o->n_posts || json_object_size(result) != 4) {
			werr(w,
			     "%s: result arrays do not match the request: %.1500s\n  request: "
			     "%.1500s",
			     o->label, body, o->body);
			return -1;
		}
		for (size_t i = 0; i < o->n_dels; i++) {
			json_t *d = json_array_get(dels, i);
			if (json_object_size(d) != 1 ||
			    json_integer_value(json_object_get(d, "id")) != o->dels[i]->id) {
				werr(w, "%s: deletes[%zu] is not {\"id\":%" PRId64 "}: %.1500s",
				     o->label, i, o->dels[i]->id, body);
				return -1;
			}
		}
		for (size_t i = 0; i < o->n_upds; i++) {
			json_t *got = i < o->n_patches ? json_array_get(patches, i)
			                               : json_array_get(puts, i - o->n_patches);
			if (!edit_ok(w, o, o->upds[i].r, got, o->upds[i].want))
				return -1;
		}
		for (size_t i = 0; i < o->n_posts; i++)
			if (!new_ok(w, o, json_array_get(posts, i), o->posts[i]))
				return -1;
		for (size_t i = 0; i < o->n_dels; i++) {
			rec_set(o->dels[i], NULL, w->cycle, "batch delete");
			live_remove(w, o->dels[i]);
			gone_add(w, o->dels[i]->id);
		}
		for (size_t i = 0; i < o->n_upds; i++)
			rec_set(o->upds[i].r,
			        i < o->n_patches ? json_array_get(patches, i)
			                         : json_array_get(puts, i - o->n_patches),
			        w->cycle, i < o->n_patches ? "batch patch" : "batch put");
		for (size_t i = 0; i < o->n_posts; i++)
			adopt_new(w, json_array_get(posts, i), "batch post");
		w->acked_items += o->n_dels + o->n_upds + o->n_posts;
		break;
	}
	}
	w->acked++;
	return 0;
}

static void signal_started(void)
{
	pthread_mutex_lock(&g.lock);
	g.started++;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	bool signalled = false;

	while (!atomic_load(&g.stop)) {
		op *o = next_op(w);
		sresp r = sclient_do(w->http, o->method, o->url, g.token, o->body);
		if (!signalled) {
			signal_started();
			signalled = true;
		}
		if (r.status == 0) {
			if (!atomic_load(&g.killed))
				werr(w, "%s %s: transport error before the kill: %s", o->method,
				     o->url, w->http->err);
			w->inflight = o; /* may or may not have landed */
			break;
		}
		int rc = settle(w, o, &r);
		json_decref(r.json);
		op_free(o);
		if (rc)
			break;
	}
	if (!signalled)
		signal_started();
	return NULL;
}

/* ---- verification after the restart ----------------------------------- */

typedef struct listing {
	json_t *items;   /* every policy of the account, in id order */
	json_t *by_id;   /* "id" -> index */
	json_t *by_pat;  /* pattern -> index */
	bool *consumed;  /* explained by the model */
	long long total; /* result_info.total_count */
} listing;

/* The current listing; a file-scope object so that a failed check leaks nothing. */
static listing cur;

static long lookup(json_t *index, const char *key)
{
	json_t *v = json_object_get(index, key);
	return v ? (long)json_integer_value(v) : -1;
}

static long lookup_id(const listing *l, int64_t id)
{
	char key[32];
	snprintf(key, sizeof(key), "%" PRId64, id);
	return lookup(l->by_id, key);
}

static void fetch_listing(sclient *c, listing *l)
{
	char url[1024];
	l->items = json_array();
	l->by_id = json_object();
	l->by_pat = json_object();
	for (int page = 1;; page++) {
		snprintf(url, sizeof(url), "%s?per_page=1000&page=%d", g.base, page);
		sresp r = sclient_do(c, "GET", url, g.token, NULL);
		json_t *result = json_object_get(r.json, "result");
		if (r.status != 200 || !json_is_array(result)) {
			char copy[2048];
			snprintf(copy, sizeof(copy), "%s", r.status ? sclient_body(c) : c->err);
			json_decref(r.json);
			E2E_FAIL("list page %d after the restart: HTTP %ld %s", page, r.status,
			         copy);
		}
		if (page == 1)
			l->total = json_integer_value(
			    json_object_get(json_object_get(r.json, "result_info"), "total_count"));
		size_t n = json_array_size(result);
		json_array_extend(l->items, result);
		json_decref(r.json);
		if (n < 1000)
			break;
	}
	size_t i;
	json_t *p;
	l->consumed = xcalloc(json_array_size(l->items), sizeof(bool));
	json_array_foreach(l->items, i, p)
	{
		char key[32];
		json_int_t id = json_integer_value(json_object_get(p, "id"));
		snprintf(key, sizeof(key), "%lld", (long long)id);
		if (json_object_get(l->by_id, key))
			E2E_FAIL("id %lld is listed twice", (long long)id);
		json_object_set_new(l->by_id, key, json_integer((json_int_t)i));
		json_object_set_new(l->by_pat, jstr(p, "pattern"), json_integer((json_int_t)i));
	}
}

static void listing_clear(listing *l)
{
	json_decref(l->items);
	json_decref(l->by_id);
	json_decref(l->by_pat);
	free(l->consumed);
	memset(l, 0, sizeof(*l));
}

static json_t *listed(const listing *l, long pos)
{
	return pos < 0 ? NULL : json_array_get(l->items, (size_t)pos);
}

/*
 * Decides whether w's in-flight request landed: all of it or none of it
 * (and none of it when it was built to fail), then moves the model on.
 */
static void resolve_inflight(worker *w, const op *o, listing *l, unsigned *landed_out)
{
	size_t n = o->n_dels + o->n_upds + o->n_posts;
	bool *landed = xcalloc(n, sizeof(bool)), *absent = xcalloc(n, sizeof(bool));
	long *pos = xcalloc(n, sizeof(long));
	bool all_landed = true, all_absent = true;
	char why[128];
	size_t k = 0;

	for (size_t i = 0; i < o->n_dels; i++, k++) {
		pos[k] = lookup_id(l, o->dels[i]->id);
		landed[k] = pos[k] < 0;
		absent[k] = pos[k] >= 0 && json_equal(listed(l, pos[k]), o->dels[i]->state);
	}
	for (size_t i = 0; i < o->n_upds; i++, k++) {
		const rec *r = o->upds[i].r;
		json_t *p = listed(l, pos[k] = lookup_id(l, r->id));
		absent[k] = p && json_equal(p, r->state);
		landed[k] = p && policy_matches(p, o->upds[i].want, why, sizeof(why)) &&
		            strcmp(jstr(p, "created_at"), jstr(r->state, "created_at")) == 0 &&
		            strcmp(jstr(p, "modified_at"), jstr(r->state, "modified_at")) > 0;
	}
	for (size_t i = 0; i < o->n_posts; i++, k++) {
		json_t *p = listed(l, pos[k] = lookup(l->by_pat, jstr(o->posts[i], "pattern")));
		int64_t id = p ? json_integer_value(json_object_get(p, "id")) : 0;
		absent[k] = !p;
		landed[k] = p && !l->consumed[pos[k]] && id > w->floor &&
		            ((size_t)id >= g.cap_by_id || !g.by_id[id]) &&
		            policy_matches(p, o->posts[i], why, sizeof(why)) &&
		            strcmp(jstr(p, "created_at"), jstr(p, "modified_at")) == 0;
	}
	for (k = 0; k < n; k++) {
		all_landed &= landed[k];
		all_absent &= absent[k];
	}
	if (!(all_absent || (all_landed && !o->fails))) {
		char *out = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&out, &len);
		fprintf(f, "thread %d's %s in flight at the kill is %s:\n  request %s %s %.2000s",
		        w->index, o->label,
		        o->fails ? "a rejected request that left traces" : "half applied",
		        o->method, o->url, o->body ? o->body : "");
		for (k = 0; k < n; k++) {
			const char *what = k < o->n_dels               ? "delete"
			                   : k < o->n_dels + o->n_upds ? "edit"
			                                               : "post";
			char *now = pos[k] >= 0 ? jdump(listed(l, pos[k])) : NULL;
			fprintf(f, "\n  item %zu (%s): %s; now %s", k, what,
			        landed[k]   ? "applied"
			        : absent[k] ? "not applied"
			                    : "NEITHER",
			        now ? now : "(absent)");
			free(now);
		}
		fclose(f);
		char *msg = e2e_strf("%s", out);
		free(out);
		free(landed);
		free(absent);
		free(pos);
		E2E_FAIL("%s", msg);
	}

	if (all_absent) {
		for (k = 0; k < o->n_dels + o->n_upds; k++)
			l->consumed[pos[k]] = true;
	} else {
		for (size_t i = 0; i < o->n_dels; i++) {
			rec_set(o->dels[i], NULL, w->cycle, "delete in flight, applied");
			gone_add(w, o->dels[i]->id);
		}
		k = o->n_dels;
		for (size_t i = 0; i < o->n_upds; i++, k++) {
			rec_set(o->upds[i].r, listed(l, pos[k]), w->cycle,
			        "edit in flight, applied");
			l->consumed[pos[k]] = true;
		}
		for (size_t i = 0; i < o->n_posts; i++, k++) {
			rec *r = adopt_new(w, listed(l, pos[k]), "post in flight, applied");
			l->consumed[pos[k]] = true;
			by_id_reserve(r->id);
			g.by_id[r->id] = r;
		}
		*landed_out += 1;
	}
	free(landed);
	free(absent);
	free(pos);
}

static void verify_after_restart(sclient *c, const db_facts *facts, unsigned *landed,
                                 unsigned *absent)
{
	listing_clear(&cur);
	fetch_listing(c, &cur);
	size_t n = json_array_size(cur.items);

	/* the writes cut off by the kill */
	for (int t = 0; t < g.threads; t++) {
		op *o = g.w[t].inflight;
		if (!o)
			continue;
		for (size_t i = 0; i < o->n_dels; i++)
			o->dels[i]->pending = o;
		for (size_t i = 0; i < o->n_upds; i++)
			o->upds[i].r->pending = o;
		unsigned before = *landed;
		resolve_inflight(&g.w[t], o, &cur, landed);
		if (*landed == before)
			(*absent)++;
	}

	/* everything else: exactly as last acknowledged */
	for (size_t id = 1; id < g.cap_by_id; id++) {
		rec *r = g.by_id[id];
		if (!r)
			continue;
		if (r->pending) {
			r->pending = NULL;
			continue;
		}
		long pos = lookup_id(&cur, (int64_t)id);
		json_t *p = listed(&cur, pos);
		if ((!r->state && p) || (r->state && !json_equal(p, r->state))) {
			char *h = rec_history(r), *now = p ? jdump(p) : strdup("(absent)");
			char *msg = e2e_strf("%s policy %zu %s after the restart:\n  now %s\n  %s",
			                     r->state ? "acknowledged" : "deleted", id,
			                     !r->state ? "is BACK"
			                     : p       ? "DIFFERS"
			                               : "is LOST",
			                     now, h);
			free(h);
			free(now);
			E2E_FAIL("%s", msg);
		}
		if (p)
			cur.consumed[pos] = true;
	}
	for (size_t i = 0; i < n; i++)
		if (!cur.consumed[i]) {
			char *s = jdump(json_array_get(cur.items, i));
			char *msg = e2e_strf("%s", s);
			free(s);
			E2E_FAIL("a policy nobody wrote (or a write applied twice): %s", msg);
		}
	E2E_CHECK(cur.total == (long long)n, "total_count %lld, but %zu policies listed", cur.total,
	          n);
	E2E_CHECK(facts->policies == (long long)n,
	          "the database held %lld policies before the restart, the server lists %zu",
	          facts->policies, n);
	if ((long long)n > g.max_policies)
		g.max_policies = (long long)n;
	for (size_t i = 0; i < n; i++) {
		int64_t id =
		    json_integer_value(json_object_get(json_array_get(cur.items, i), "id"));
		if (id > g.max_seen)
			g.max_seen = id;
	}
	listing_clear(&cur);
}

/* ---- the cycle ---------------------------------------------------------- */

static void wait_started(void)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += START_WAIT_S;
	pthread_mutex_lock(&g.lock);
	int rc = 0;
	while (g.started < g.threads && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&g.cond, &g.lock, &until);
	int started = g.started;
	pthread_mutex_unlock(&g.lock);
	E2E_CHECK(started == g.threads, "only %d of %d threads got a response within %d s", started,
	          g.threads, START_WAIT_S);
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void run_cycle(e2e_server *s, unsigned cycle)
{
	snprintf(g.base, sizeof(g.base), "%s%s", s->base_url, s->policies);
	snprintf(g.token, sizeof(g.token), "%s", s->api_token);
	atomic_store(&g.stop, 0);
	atomic_store(&g.killed, 0);
	g.started = 0;
	for (int t = 0; t < g.threads; t++) {
		worker *w = &g.w[t];
		w->cycle = cycle;
		w->floor = g.max_seen;
		w->http = sclient_new();
		w->acked = w->acked_items = w->failed_ok = w->readbacks = 0;
		w->n_born = 0;
		E2E_CHECK(pthread_create(&w->thread, NULL, worker_main, w) == 0, "pthread_create");
	}
	wait_started();

	/* the schedule: a random moment, drawn from the seed */
	uint64_t delay_us = rnd_below(&g.rng, (uint64_t)g.max_delay_ms * 1000 + 1);
	sleep_us(delay_us);
	int status;
	pid_t dead = waitpid(s->pid, &status, WNOHANG);
	atomic_store(&g.killed, 1);
	if (dead == s->pid) {
		s->pid = 0;
		atomic_store(&g.stop, 1);
		for (int t = 0; t < g.threads; t++)
			pthread_join(g.w[t].thread, NULL);
		E2E_FAIL("allowd died on its own in cycle %u (wait status %#x)", cycle, status);
	}
	e2e_server_kill(s);
	atomic_store(&g.stop, 1);

	unsigned long acked = 0, items = 0, failed_ok = 0, readbacks = 0;
	unsigned inflight = 0;
	int64_t max_acked = 0;
	for (int t = 0; t < g.threads; t++) {
		worker *w = &g.w[t];
		pthread_join(w->thread, NULL);
		sclient_free(w->http);
		w->http = NULL;
		acked += w->acked;
		items += w->acked_items;
		failed_ok += w->failed_ok;
		readbacks += w->readbacks;
		inflight += w->inflight != NULL;
	}
	for (int t = 0; t < g.threads; t++)
		E2E_CHECK(g.w[t].error[0] == '\0', "%s", g.w[t].error);

	/* file the new ids: each once, above everything seen before */
	for (int t = 0; t < g.threads; t++) {
		worker *w = &g.w[t];
		for (size_t i = 0; i < w->n_born; i++) {
			rec *r = w->born[i];
			by_id_reserve(r->id);
			if (g.by_id[r->id]) {
				char *a = rec_history(g.by_id[r->id]), *b = rec_history(r);
				char *msg =
				    e2e_strf("id %" PRId64 " was handed out twice:\n  %s\n  %s",
				             r->id, a, b);
				free(a);
				free(b);
				E2E_FAIL("%s", msg);
			}
			g.by_id[r->id] = r;
			if (r->id > max_acked)
				max_acked = r->id;
		}
	}
	if (max_acked > g.max_seen)
		g.max_seen = max_acked;

	/* the database, read-only, before anything touches it again */
	db_facts facts;
	char why[512] = "";
	E2E_CHECK(db_inspect(s->data_dir, &facts, why, sizeof(why)) == 0, "cycle %u: %s", cycle,
	          why);
	E2E_CHECK(strcmp(facts.integrity, "ok") == 0, "cycle %u: PRAGMA integrity_check: %s", cycle,
	          facts.integrity);
	E2E_CHECK(facts.fk_problems == 0, "cycle %u: PRAGMA foreign_key_check: %lld rows", cycle,
	          facts.fk_problems);
	E2E_CHECK(facts.seq >= g.max_seen && facts.seq >= facts.max_id,
	          "cycle %u: sqlite_sequence is %lld, below id %lld already handed out", cycle,
	          facts.seq, (long long)(g.max_seen > facts.max_id ? g.max_seen : facts.max_id));

	e2e_server_restart(s);
	sclient_free(g.verifier);
	g.verifier = sclient_new();
	snprintf(g.base, sizeof(g.base), "%s%s", s->base_url, s->policies);
	unsigned landed = 0, absent = 0;
	verify_after_restart(g.verifier, &facts, &landed, &absent);

	/* the model moves on: live lists from the verified state */
	for (int t = 0; t < g.threads; t++) {
		g.w[t].n_live = 0;
		op_free(g.w[t].inflight);
		g.w[t].inflight = NULL;
	}
	for (size_t id = 1; id < g.cap_by_id; id++)
		if (g.by_id[id] && g.by_id[id]->state)
			live_add(&g.w[g.by_id[id]->owner], g.by_id[id]);

	g.t_acked += acked;
	g.t_items += items;
	g.t_failed_ok += failed_ok;
	g.t_inflight += inflight;
	g.t_landed += landed;
	g.t_absent += absent;
	g.t_readbacks += readbacks;
	if (!g.quiet || cycle + 1 == g.cycles || cycle % 25 == 0)
		printf(
		    "crash: cycle %u: SIGKILL after %.1f ms; %lu writes acknowledged (%lu policy "
		    "changes), %lu rejected as expected; %u in flight (%u applied, %u not); "
		    "%lld policies; integrity ok\n",
		    cycle + 1, (double)delay_us / 1000.0, acked, items, failed_ok, inflight, landed,
		    absent, facts.policies);
	fflush(stdout);
}

E2E_TEST(acknowledged_writes_survive_sigkill_cycles)
{
	(void)s;
	const char *args[] = {"--rate-limit", "0", "--auth-failure-limit", "0", NULL};
	e2e_server *srv = e2e_server_start(args);

	for (int t = 0; t < g.threads; t++) {
		g.w[t].index = t;
		g.w[t].rng = g.seed ^ (0x51ed270b27a2f1c3ULL * (uint64_t)(t + 1));
	}
	g.rng = g.seed;
	for (unsigned cycle = 0; cycle < g.cycles; cycle++)
		run_cycle(srv, cycle);

	/* after the last restart, a new id is above every id ever seen */
	sclient *c = g.verifier;
	char url[600];
	snprintf(url, sizeof(url), "%s%s", srv->base_url, srv->policies);
	sresp r = sclient_do(c, "POST", url, srv->api_token,
	                     "{\"pattern\":\"final@crash.example\",\"pattern_type\":\"EMAIL\","
	                     "\"is_regex\":false,\"is_trusted_sender\":true,"
	                     "\"is_acceptable_sender\":false,\"is_exempt_recipient\":false,"
	                     "\"verify_sender\":true}");
	json_int_t id =
	    json_integer_value(json_object_get(json_object_get(r.json, "result"), "id"));
	long status = r.status;
	json_decref(r.json);
	E2E_CHECK(status == 201, "the final create answered HTTP %ld", status);
	E2E_CHECK(id > g.max_seen, "id %lld after the last restart, but %lld was handed out before",
	          (long long)id, (long long)g.max_seen);

	printf("crash: done: seed %" PRIu64 ", %u cycles, %u SIGKILLs, %d threads; %lu writes "
	       "acknowledged (%lu policy changes) and all present; %lu rejected as expected "
	       "(%lu read-backs); %lu in flight at a kill (%lu applied whole, %lu not at all, none "
	       "half); integrity_check ok every time; ids up to %lld never reused; at most %lld "
	       "policies\n",
	       g.seed, g.cycles, g.cycles, g.threads, g.t_acked, g.t_items, g.t_failed_ok,
	       g.t_readbacks, g.t_inflight, g.t_landed, g.t_absent, (long long)g.max_seen,
	       g.max_policies);
	e2e_server_stop(srv);
}

static void free_model(void)
{
	listing_clear(&cur);
	sclient_free(g.verifier);
	g.verifier = NULL;
	for (int t = 0; t < g.threads; t++) {
		/* recs born in a cycle that failed before they were filed by id */
		for (size_t i = 0; i < g.w[t].n_born; i++) {
			rec *r = g.w[t].born[i];
			if ((size_t)r->id >= g.cap_by_id || g.by_id[r->id] != r)
				rec_free(r);
		}
		free(g.w[t].live);
		free(g.w[t].born);
		op_free(g.w[t].inflight);
	}
	for (size_t id = 0; id < g.cap_by_id; id++)
		rec_free(g.by_id[id]);
	free(g.by_id);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || !end || end == s || *end || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: stress_crash [-c CYCLES] [-s SEED] [-t THREADS (1-%d)] "
	        "[-d MAX_DELAY_MS] [-q]\n",
	        MAX_THREADS);
}

int main(int argc, char **argv)
{
	bool seeded = false;
	int opt;
	uint64_t v;
	while ((opt = getopt(argc, argv, "c:s:t:d:q")) != -1) {
		if (opt == 'q') {
			g.quiet = true;
			continue;
		}
		if (opt == '?' || parse_u64(optarg, &v) != 0) {
			usage();
			return 2;
		}
		if (opt == 'c' && v >= 1 && v <= 1000000)
			g.cycles = (unsigned)v;
		else if (opt == 's')
			g.seed = v, seeded = true;
		else if (opt == 't' && v >= 1 && v <= MAX_THREADS)
			g.threads = (int)v;
		else if (opt == 'd' && v <= 600000)
			g.max_delay_ms = (unsigned)v;
		else {
			usage();
			return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	if (!seeded) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		g.seed = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
		         ((uint64_t)getpid() << 32);
	}
	printf("crash: seed %" PRIu64 " (rerun with -s %" PRIu64 "), %u cycles, %d threads, "
	       "kill within %u ms\n",
	       g.seed, g.seed, g.cycles, g.threads, g.max_delay_ms);
	fflush(stdout);

	const struct CMUnitTest tests[] = {
	    E2E_CASE_BARE(acknowledged_writes_survive_sigkill_cycles),
	};
	int failed = cmocka_run_group_tests_name("stress_crash", tests, NULL, NULL);
	free_model();
	if (failed)
		printf("crash: FAILED; seed %" PRIu64 "\n", g.seed);
	return failed ? 1 : 0;
}

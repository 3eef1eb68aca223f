/*
 * store_sqlite.c - the embedded SQLite backend.
 *
 * Concurrency model:
 *  - Reads run on a per-thread read connection (WAL mode lets them proceed
 *    while a write commits), created on first use and closed at thread exit
 *    or when the store is freed.
 *  - Writes never run on the caller's thread.  Each write is a job handed
 *    to the single writer thread, which takes every job queued so far, runs
 *    them in ONE transaction (each inside its own SAVEPOINT so a failing
 *    job leaves the others intact), commits once with synchronous=FULL, and
 *    only then wakes the callers.  This is group commit: N concurrent
 *    writers share one fsync, and a caller is answered only after its write
 *    is durable.  If the COMMIT itself fails, every job in the group fails.
 */
#include "allowd/clock.h"
#include "allowd/error.h"
#include "allowd/log.h"
#include "store/store_backend.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- schema and migrations ------------------------------------------ */

/* The packed filter flags of a policy row (see policy_counts below); p is "", "NEW." or "OLD." */
#define POLICY_FLAGS(p)                                                                            \
	"((" p "is_trusted_sender != 0) | ((" p "is_acceptable_sender != 0) << 1) | ((" p           \
	"is_exempt_recipient != 0) << 2) | ((" p "verify_sender != 0) << 3))"

#define FILTER_COLS                                                                                \
	"is_trusted_sender, is_acceptable_sender, is_exempt_recipient, verify_sender, modified_at"

/*
 * migrations[i] brings the schema from version i to i + 1 (PRAGMA
 * user_version).  Append only; never edit a released step.
 */
static const char *const migrations[] = {
	/* 0 -> 1: accounts, credentials, policies */
	"CREATE TABLE accounts ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE users ("
	"  email TEXT PRIMARY KEY COLLATE NOCASE,"
	"  key_hash BLOB NOT NULL UNIQUE,"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE TABLE memberships ("
	"  email TEXT NOT NULL COLLATE NOCASE REFERENCES users(email) ON DELETE CASCADE,"
	"  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  role INTEGER NOT NULL,"
	"  PRIMARY KEY (email, account_id)"
	") WITHOUT ROWID;"
	"CREATE TABLE tokens ("
	"  id TEXT PRIMARY KEY,"
	"  secret_hash BLOB NOT NULL UNIQUE,"
	"  active INTEGER NOT NULL DEFAULT 1,"
	"  not_before INTEGER NOT NULL DEFAULT 0,"
	"  expires_on INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  last_used INTEGER"
	");"
	"CREATE TABLE token_grants ("
	"  token_id TEXT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
	"  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  perm INTEGER NOT NULL,"
	"  PRIMARY KEY (token_id, account_id)"
	") WITHOUT ROWID;"
	"CREATE TABLE policies ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  pattern TEXT NOT NULL,"
	"  pattern_norm TEXT NOT NULL,"
	"  pattern_type INTEGER NOT NULL,"
	"  is_regex INTEGER NOT NULL,"
	"  is_trusted_sender INTEGER NOT NULL,"
	"  is_acceptable_sender INTEGER NOT NULL,"
	"  is_exempt_recipient INTEGER NOT NULL,"
	"  verify_sender INTEGER NOT NULL,"
	"  comments TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  modified_at INTEGER NOT NULL"
	");"
	"CREATE UNIQUE INDEX policies_unique"
	"  ON policies (account_id, pattern_type, is_regex, pattern_norm);"
	"CREATE INDEX policies_by_account ON policies (account_id);"
	"CREATE INDEX policies_by_pattern ON policies (account_id, pattern, id);"
	"CREATE INDEX policies_by_created ON policies (account_id, created_at, id);"
	"CREATE INDEX policies_by_type_pattern ON policies (account_id, pattern_type, pattern, id);"
	"CREATE INDEX policies_by_type_created"
	"  ON policies (account_id, pattern_type, created_at, id);",
	/* 1 -> 2: token client-IP restrictions */
	"ALTER TABLE tokens ADD COLUMN ip_ranges TEXT NOT NULL DEFAULT '';",
	/*
	 * 2 -> 3: policy counts per (account, pattern_type, flag combination),
	 * so a list's total_count is a sum over at most 64 rows instead of a
	 * walk over every matching index entry.  `flags` packs the four list
	 * filters: bit 0 is_trusted_sender, 1 is_acceptable_sender,
	 * 2 is_exempt_recipient, 3 verify_sender.  Triggers keep the counts in
	 * the same transaction (and savepoint) as the row change, so a batch
	 * that rolls back rolls its counts back too; an account delete cascades.
	 */
	"CREATE TABLE policy_counts ("
	"  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  pattern_type INTEGER NOT NULL,"
	"  flags INTEGER NOT NULL,"
	"  n INTEGER NOT NULL,"
	"  PRIMARY KEY (account_id, pattern_type, flags)"
	") WITHOUT ROWID;"
	"INSERT INTO policy_counts (account_id, pattern_type, flags, n)"
	"  SELECT account_id, pattern_type, " POLICY_FLAGS("") ", count(*)"
	"  FROM policies GROUP BY 1, 2, 3;"
	"CREATE TRIGGER policies_count_insert AFTER INSERT ON policies BEGIN"
	"  INSERT INTO policy_counts (account_id, pattern_type, flags, n)"
	"  VALUES (NEW.account_id, NEW.pattern_type, " POLICY_FLAGS("NEW.") ", 1)"
	"  ON CONFLICT (account_id, pattern_type, flags) DO UPDATE SET n = n + 1;"
	"END;"
	"CREATE TRIGGER policies_count_delete AFTER DELETE ON policies BEGIN"
	"  UPDATE policy_counts SET n = n - 1 WHERE account_id = OLD.account_id"
	"  AND pattern_type = OLD.pattern_type AND flags = " POLICY_FLAGS("OLD.") ";"
	"END;"
	"CREATE TRIGGER policies_count_update AFTER UPDATE OF account_id, pattern_type,"
	"  is_trusted_sender, is_acceptable_sender, is_exempt_recipient, verify_sender"
	"  ON policies WHEN OLD.account_id IS NOT NEW.account_id"
	"  OR OLD.pattern_type IS NOT NEW.pattern_type"
	"  OR " POLICY_FLAGS("OLD.") " IS NOT " POLICY_FLAGS("NEW.") " BEGIN"
	"  UPDATE policy_counts SET n = n - 1 WHERE account_id = OLD.account_id"
	"  AND pattern_type = OLD.pattern_type AND flags = " POLICY_FLAGS("OLD.") ";"
	"  INSERT INTO policy_counts (account_id, pattern_type, flags, n)"
	"  VALUES (NEW.account_id, NEW.pattern_type, " POLICY_FLAGS("NEW.") ", 1)"
	"  ON CONFLICT (account_id, pattern_type, flags) DO UPDATE SET n = n + 1;"
	"END;"
	/*
	 * The list indexes end with the filter columns and modified_at, so a
	 * filtered page (and the rows its OFFSET skips) is decided from the
	 * index entries alone, and the page's ids and versions come from them
	 * too: the table is read only for rows whose encoding is not cached.
	 * policies_by_id replaces policies_by_account (same prefix).
	 */
	"DROP INDEX policies_by_account;"
	"DROP INDEX policies_by_pattern;"
	"DROP INDEX policies_by_created;"
	"DROP INDEX policies_by_type_pattern;"
	"DROP INDEX policies_by_type_created;"
	"CREATE INDEX policies_by_id ON policies (account_id, id, pattern_type, " FILTER_COLS ");"
	"CREATE INDEX policies_by_pattern"
	"  ON policies (account_id, pattern, id, pattern_type, " FILTER_COLS ");"
	"CREATE INDEX policies_by_created"
	"  ON policies (account_id, created_at, id, pattern_type, " FILTER_COLS ");"
	"CREATE INDEX policies_by_type_pattern"
	"  ON policies (account_id, pattern_type, pattern, id, " FILTER_COLS ");"
	"CREATE INDEX policies_by_type_created"
	"  ON policies (account_id, pattern_type, created_at, id, " FILTER_COLS ");",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- connections and prepared statements ---------------------------- */

enum stmt_id {
	ST_POLICY_GET,
	ST_POLICY_INSERT,
	ST_POLICY_UPDATE,
	ST_POLICY_DELETE,
	ST_POLICY_FIND_DUP,
	ST_ACCOUNT_INSERT,
	ST_ACCOUNT_EXISTS,
	ST_ACCOUNT_COUNT,
	ST_TOKEN_INSERT,
	ST_TOKEN_GRANT_INSERT,
	ST_TOKEN_FIND,
	ST_TOKEN_GRANTS,
	ST_USER_INSERT,
	ST_USER_FIND,
	ST_USER_GRANTS,
	ST_MEMBERSHIP_SET,
	ST_ACCOUNT_LIST,
	ST_ACCOUNT_DELETE,
	ST_TOKEN_LIST,
	ST_TOKEN_SET_ACTIVE,
	ST_TOKEN_DELETE,
	ST_TOKEN_TOUCH,
	ST_USER_SET_KEY,
	ST_USER_DELETE,
	ST_USER_LIST,
	ST_POLICY_COUNT,
	ST_BEGIN,
	ST_COMMIT,
	ST_COUNT
};

#define POLICY_COLUMNS                                                                             \
	"id, pattern, pattern_norm, pattern_type, is_regex, is_trusted_sender, "                   \
	"is_acceptable_sender, is_exempt_recipient, verify_sender, comments, created_at, "         \
	"modified_at"

#define TOKEN_COLUMNS                                                                              \
	"id, active, not_before, expires_on, created_at, coalesce(last_used, 0), ip_ranges"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_POLICY_GET] = "SELECT " POLICY_COLUMNS " FROM policies WHERE account_id = ?1 AND id = ?2",
	[ST_POLICY_INSERT] =
		"INSERT INTO policies (account_id, pattern, pattern_norm, pattern_type, is_regex,"
		" is_trusted_sender, is_acceptable_sender, is_exempt_recipient, verify_sender,"
		" comments, created_at, modified_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[ST_POLICY_UPDATE] =
		"UPDATE policies SET pattern = ?2, pattern_norm = ?3, pattern_type = ?4,"
		" is_regex = ?5, is_trusted_sender = ?6, is_acceptable_sender = ?7,"
		" is_exempt_recipient = ?8, verify_sender = ?9, comments = ?10, modified_at = ?12"
		" WHERE account_id = ?1 AND id = ?13",
	[ST_POLICY_DELETE] = "DELETE FROM policies WHERE account_id = ?1 AND id = ?2",
	[ST_POLICY_FIND_DUP] = "SELECT id FROM policies WHERE account_id = ?1 AND pattern_type = ?2"
			       " AND is_regex = ?3 AND pattern_norm = ?4 AND id != ?5",
	[ST_ACCOUNT_INSERT] = "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
	[ST_ACCOUNT_EXISTS] = "SELECT 1 FROM accounts WHERE id = ?1",
	[ST_ACCOUNT_COUNT] = "SELECT count(*) FROM accounts",
	[ST_TOKEN_INSERT] = "INSERT INTO tokens (id, secret_hash, active, not_before, expires_on,"
			    " created_at, ip_ranges) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_TOKEN_GRANT_INSERT] =
		"INSERT INTO token_grants (token_id, account_id, perm) VALUES (?1, ?2, ?3)",
	[ST_TOKEN_FIND] = "SELECT " TOKEN_COLUMNS " FROM tokens WHERE secret_hash = ?1",
	[ST_TOKEN_GRANTS] = "SELECT account_id, perm FROM token_grants WHERE token_id = ?1",
	[ST_USER_INSERT] = "INSERT INTO users (email, key_hash, created_at) VALUES (?1, ?2, ?3)",
	[ST_USER_FIND] = "SELECT email, key_hash FROM users WHERE email = ?1",
	[ST_USER_GRANTS] = "SELECT account_id, role FROM memberships WHERE email = ?1",
	[ST_MEMBERSHIP_SET] = "INSERT INTO memberships (email, account_id, role) VALUES (?1, ?2, ?3)"
			      " ON CONFLICT (email, account_id) DO UPDATE SET role = excluded.role",
	[ST_ACCOUNT_LIST] = "SELECT a.id, a.name, a.created_at,"
			    " (SELECT count(*) FROM policies p WHERE p.account_id = a.id)"
			    " FROM accounts a ORDER BY a.created_at, a.id",
	[ST_ACCOUNT_DELETE] = "DELETE FROM accounts WHERE id = ?1",
	[ST_TOKEN_LIST] = "SELECT " TOKEN_COLUMNS " FROM tokens ORDER BY created_at, id",
	[ST_TOKEN_SET_ACTIVE] = "UPDATE tokens SET active = ?2 WHERE id = ?1",
	[ST_TOKEN_DELETE] = "DELETE FROM tokens WHERE id = ?1",
	[ST_TOKEN_TOUCH] = "UPDATE tokens SET last_used = ?2 WHERE id = ?1"
			   " AND coalesce(last_used, 0) < ?2",
	[ST_USER_SET_KEY] = "UPDATE users SET key_hash = ?2 WHERE email = ?1",
	[ST_USER_DELETE] = "DELETE FROM users WHERE email = ?1",
	[ST_USER_LIST] = "SELECT email, key_hash FROM users ORDER BY email",
	[ST_POLICY_COUNT] = "SELECT coalesce(sum(n), 0) FROM policy_counts WHERE account_id = ?1"
			    " AND (?2 < 0 OR pattern_type = ?2) AND (flags & ?3) = ?4",
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
};

/*
 * A list query's shape: which filters it has, its order and direction.
 * Each shape has its own SQL text, prepared once per connection.
 */
enum {
	SHAPE_TYPE = 1,
	SHAPE_PATTERN = 2,
	SHAPE_TRUSTED = 4,
	SHAPE_ACCEPTABLE = 8,
	SHAPE_EXEMPT = 16,
	SHAPE_VERIFY = 32,
	SHAPE_SEARCH = 64,
	SHAPE_FILTERS = 128,
	LIST_SHAPES = SHAPE_FILTERS * 3 * 2,
};

typedef struct changes {
	allowd_change *v;
	size_t n, cap;
	int oom;
} changes;

typedef struct conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[ST_COUNT];
	struct sq *owner;
	struct conn *next;     /* in sq->conns */
	changes *recording;    /* the writer's current job's changes, or NULL */
	sqlite3_stmt **list_stmts;  /* [LIST_SHAPES] page queries, NULL until first used */
	sqlite3_stmt **count_stmts; /* [SHAPE_FILTERS] count(*) queries, idem */
} conn;

/*
 * A job ends in one of two ways once its group is committed (or failed) and
 * the hook has run: a synchronous caller (run_write) waits on `done`; an
 * owned job (release set: run_write_async, submit_policy_write) has its
 * completion callback called, if any, and is then released by the writer.
 */
typedef struct job {
	int (*fn)(conn *c, void *arg);
	void *arg;
	allowd_store_done on_done; /* owned jobs: told the outcome; may be NULL */
	void *on_done_ctx;
	void (*release)(struct job *j); /* owned jobs: frees the job and what it owns */
	changes changes; /* what the job changed, for the hook */
	int rc;
	allowd_error err;
	int done;
	struct job *next;
} job;

typedef struct sq {
	char *path;
	int busy_timeout_ms;
	pthread_key_t reader_key;

	pthread_mutex_t conns_lock; /* guards conns */
	conn *conns;                /* every open reader connection */

	conn *writer;
	pthread_t writer_thread;
	pthread_mutex_t lock; /* guards queue_*, stopping and job.done */
	pthread_cond_t wake;  /* the writer waits on it for jobs */
	pthread_cond_t done;  /* callers wait on it for their job */
	job *queue_head, *queue_tail;
	int stopping;
	int writer_started;
	allowd_store_hook hook; /* set before writes start; read by the writer */
	void *hook_ctx;
	struct writer_stats {   /* the writer's own; logged when the store closes */
		uint64_t commits, jobs, biggest;
		uint64_t ns_jobs, ns_commit, ns_hook; /* writer time: jobs, COMMIT, hook */
	} stats;
} sq;

static int db_error(sqlite3 *db, const char *what)
{
	int ec = sqlite3_extended_errcode(db);
	int primary = ec & 0xff;
	const char *msg = sqlite3_errmsg(db);

	if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_BUSY ||
	    primary == SQLITE_LOCKED || primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN) {
		log_error("store: %s: %s", what, msg);
		return allowd_error_set(ALLOWD_EUNAVAILABLE, NULL, "storage unavailable: %s", msg);
	}
	log_error("store: %s: %s (%d)", what, msg, ec);
	return allowd_error_set(ALLOWD_ERR, NULL, "storage error: %s", msg);
}

static int conn_exec(conn *c, const char *sql)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(c->db, sql);
	return 0;
}

static void conn_close(conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	for (int i = 0; c->list_stmts && i < LIST_SHAPES; i++)
		sqlite3_finalize(c->list_stmts[i]);
	for (int i = 0; c->count_stmts && i < SHAPE_FILTERS; i++)
		sqlite3_finalize(c->count_stmts[i]);
	free(c->list_stmts);
	free(c->count_stmts);
	sqlite3_close(c->db);
	free(c);
}

static int conn_open(conn **out, sq *s)
{
	conn *c = calloc(1, sizeof(*c));
	char pragmas[256];
	int rc;

	if (!c)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	c->owner = s;
	if (sqlite3_open_v2(s->path, &c->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = c->db ? db_error(c->db, "open")
			   : allowd_error_set(ALLOWD_ERR, NULL, "cannot open %s", s->path);
		conn_close(c);
		return rc;
	}
	sqlite3_extended_result_codes(c->db, 1);
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA busy_timeout = %d; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
		 s->busy_timeout_ms);
	if ((rc = conn_exec(c, pragmas))) {
		conn_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

static sqlite3_stmt *stmt(conn *c, enum stmt_id id)
{
	sqlite3_stmt *st = c->stmts[id];

	if (!st) {
		if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st,
				       NULL) != SQLITE_OK) {
			db_error(c->db, "prepare");
			return NULL;
		}
		c->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static void reader_destroy(void *arg)
{
	conn *c = arg, **pp;
	sq *s = c->owner;

	pthread_mutex_lock(&s->conns_lock);
	for (pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&s->conns_lock);
	conn_close(c);
}

/* The calling thread's read connection, opened on first use. */
static int reader(conn **out, sq *s)
{
	conn *c = pthread_getspecific(s->reader_key);
	int rc;

	if (!c) {
		if ((rc = conn_open(&c, s)) || !c)
			return rc ? rc : allowd_error_set(ALLOWD_ERR, NULL, "storage error: no connection");
		/*
		 * Readers map the database (the OS page cache, shared by every
		 * reader, instead of a private copy per connection) and keep a
		 * larger page cache for the WAL's pages.
		 */
		if ((rc = conn_exec(c, "PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -8192"))) {
			conn_close(c);
			return rc;
		}
		pthread_mutex_lock(&s->conns_lock);
		c->next = s->conns;
		s->conns = c;
		pthread_mutex_unlock(&s->conns_lock);
		pthread_setspecific(s->reader_key, c);
	}
	*out = c;
	return 0;
}

/* ---- the writer thread ---------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Appends the changes of a committed job to the group's; false when memory
 * ran out (the caller then hands the job's changes on alone).
 */
static bool changes_append(changes *all, const changes *one)
{
	if (all->n + one->n > all->cap) {
		size_t ncap = all->cap ? all->cap : 16;
		allowd_change *v;
		while (ncap < all->n + one->n)
			ncap *= 2;
		if (!(v = realloc(all->v, ncap * sizeof(*v))))
			return false;
		all->v = v;
		all->cap = ncap;
	}
	memcpy(all->v + all->n, one->v, one->n * sizeof(*one->v));
	all->n += one->n;
	return true;
}

static void *writer_main(void *arg)
{
	sq *s = arg;
	conn *c = s->writer;
	changes group = {0}; /* the changes of a commit, in commit order, for the hook */

	for (;;) {
		job *batch, *j, *owned, **owned_tail;
		int rc = 0;
		uint64_t t0, t1, t2, n_jobs = 0;

		pthread_mutex_lock(&s->lock);
		while (!s->queue_head && !s->stopping)
			pthread_cond_wait(&s->wake, &s->lock);
		batch = s->queue_head;
		s->queue_head = s->queue_tail = NULL;
		pthread_mutex_unlock(&s->lock);
		if (!batch)
			break; /* stopping and drained */

		t0 = mono_ns();
		rc = conn_exec(c, "BEGIN IMMEDIATE");
		for (j = batch; j; j = j->next) {
			if (rc) {
				j->rc = rc;
				j->err = *allowd_error_last();
				continue;
			}
			allowd_error_clear();
			c->recording = s->hook ? &j->changes : NULL;
			if ((j->rc = conn_exec(c, "SAVEPOINT job")) == 0) {
				j->rc = j->fn(c, j->arg);
				if (j->rc) {
					j->err = *allowd_error_last();
					if (!sqlite3_get_autocommit(c->db))
						conn_exec(c, "ROLLBACK TO job");
					j->changes.n = 0;
				}
				if (!sqlite3_get_autocommit(c->db) &&
				    conn_exec(c, "RELEASE job") != 0 && j->rc == 0) {
					j->rc = allowd_error_last()->code;
					j->err = *allowd_error_last();
				}
			} else {
				j->err = *allowd_error_last();
			}
			c->recording = NULL;
			/*
			 * On a full disk or an I/O error SQLite rolls back the whole
			 * transaction, not just the statement: every job of the group so
			 * far is lost.  Fail them all (the later ones too) rather than let
			 * a later SAVEPOINT start a fresh transaction behind their backs.
			 */
			if (sqlite3_get_autocommit(c->db)) {
				allowd_error lost;
				if (j->rc == ALLOWD_EUNAVAILABLE || j->rc == ALLOWD_ERR)
					lost = j->err;
				else {
					allowd_error_set(ALLOWD_EUNAVAILABLE, NULL,
							 "storage unavailable: the transaction was "
							 "rolled back");
					lost = *allowd_error_last();
				}
				for (job *k = batch; k != j->next; k = k->next) {
					if (k->rc == 0 || k == j) {
						k->rc = lost.code;
						k->err = lost;
					}
					k->changes.n = 0;
				}
				allowd_error_restore(&lost);
				rc = lost.code;
			}
		}
		if (rc && !sqlite3_get_autocommit(c->db))
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		t1 = mono_ns();
		if (!rc && (rc = conn_exec(c, "COMMIT")) != 0) {
			allowd_error commit_err = *allowd_error_last();
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			for (j = batch; j; j = j->next)
				if (j->rc == 0) {
					j->rc = commit_err.code;
					j->err = commit_err;
				}
		}
		t2 = mono_ns();
		/*
		 * Durable now: tell the hook, in commit order, before anyone is
		 * answered -- once for the whole group, so that the engine makes one
		 * new view per account and commit rather than one per write.
		 */
		group.n = 0;
		for (j = batch; j; j = j->next) {
			n_jobs++;
			if (!rc && j->rc == 0 && s->hook && j->changes.n &&
			    !changes_append(&group, &j->changes)) {
				if (group.n)
					s->hook(s->hook_ctx, group.v, group.n);
				group.n = 0;
				s->hook(s->hook_ctx, j->changes.v, j->changes.n);
			}
			if (j->changes.oom)
				log_error("store: out of memory recording changes; the engine may "
					  "be stale until restart");
		}
		if (group.n)
			s->hook(s->hook_ctx, group.v, group.n);
		for (j = batch; j; j = j->next) {
			free(j->changes.v);
			j->changes = (changes){0};
		}
		s->stats.commits++;
		s->stats.jobs += n_jobs;
		if (n_jobs > s->stats.biggest)
			s->stats.biggest = n_jobs;
		s->stats.ns_jobs += t1 - t0;
		s->stats.ns_commit += t2 - t1;
		s->stats.ns_hook += mono_ns() - t2;

		/*
		 * Answer: wake the synchronous callers, then (without the lock, in
		 * queue order) tell the owned jobs' callbacks and release those jobs.
		 */
		pthread_mutex_lock(&s->lock);
		owned = NULL;
		owned_tail = &owned;
		for (j = batch; j;) {
			job *next = j->next;
			if (j->release) {
				j->next = NULL;
				*owned_tail = j;
				owned_tail = &j->next;
			} else {
				j->done = 1; /* its owner may free j once this is seen */
			}
			j = next;
		}
		pthread_cond_broadcast(&s->done);
		pthread_mutex_unlock(&s->lock);
		for (j = owned; j;) {
			job *next = j->next;
			if (j->on_done)
				j->on_done(j->on_done_ctx, j->rc, j->rc ? &j->err : NULL);
			j->release(j);
			j = next;
		}
	}
	free(group.v);
	return NULL;
}

/* Runs fn(writer connection, arg) in the next group commit; waits until durable. */
static int run_write(sq *s, int (*fn)(conn *, void *), void *arg)
{
	job j;

	memset(&j, 0, sizeof(j));
	j.fn = fn;
	j.arg = arg;
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		return allowd_error_set(ALLOWD_EUNAVAILABLE, NULL, "the store is shutting down");
	}
	if (s->queue_tail)
		s->queue_tail->next = &j;
	else
		s->queue_head = &j;
	s->queue_tail = &j;
	pthread_cond_signal(&s->wake);
	while (!j.done)
		pthread_cond_wait(&s->done, &s->lock);
	pthread_mutex_unlock(&s->lock);
	if (j.rc)
		return allowd_error_restore(&j.err);
	return 0;
}

/*
 * Queues an owned job (j->release set) for the next group commit without
 * waiting.  False when the store is shutting down: then nothing is queued
 * and the job is still the caller's (no error is set).
 */
static bool queue_owned(sq *s, job *j)
{
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	if (s->queue_tail)
		s->queue_tail->next = j;
	else
		s->queue_head = j;
	s->queue_tail = j;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return true;
}

static void release_arg_and_job(job *j)
{
	free(j->arg);
	free(j);
}

/* Queues fn(writer, arg) for the next group commit without waiting; takes arg (malloc'ed). */
static void run_write_async(sq *s, int (*fn)(conn *, void *), void *arg)
{
	job *j = calloc(1, sizeof(*j));

	if (!j) {
		free(arg);
		return;
	}
	j->fn = fn;
	j->arg = arg;
	j->release = release_arg_and_job;
	if (!queue_owned(s, j))
		release_arg_and_job(j);
}

/* Notes a change of the running job for the hook (writer thread only). */
static void record(conn *c, allowd_change_kind kind, const char *account_id, int64_t id,
		   const allowd_policy *p)
{
	changes *ch = c->recording;

	if (!ch)
		return;
	if (ch->n == ch->cap) {
		size_t ncap = ch->cap ? ch->cap * 2 : 4;
		allowd_change *v = realloc(ch->v, ncap * sizeof(*v));
		if (!v) {
			ch->oom = 1;
			return;
		}
		ch->v = v;
		ch->cap = ncap;
	}
	ch->v[ch->n++] = (allowd_change){kind, account_id, id, p};
}

/* ---- row helpers ---------------------------------------------------- */

static char *column_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? strdup((const char *)t) : NULL;
}

static int row_to_policy(allowd_policy **out, sqlite3_stmt *st)
{
	allowd_policy *p = NULL;
	int rc;

	if ((rc = allowd_policy_new(&p)))
		return rc;
	p->id = sqlite3_column_int64(st, 0);
	p->pattern = column_strdup(st, 1);
	p->pattern_norm = column_strdup(st, 2);
	p->pattern_type = (allowd_pattern_type)sqlite3_column_int(st, 3);
	p->is_regex = sqlite3_column_int(st, 4);
	p->is_trusted_sender = sqlite3_column_int(st, 5);
	p->is_acceptable_sender = sqlite3_column_int(st, 6);
	p->is_exempt_recipient = sqlite3_column_int(st, 7);
	p->verify_sender = sqlite3_column_int(st, 8);
	p->comments = column_strdup(st, 9);
	p->created_at = sqlite3_column_int64(st, 10);
	p->modified_at = sqlite3_column_int64(st, 11);
	if (!p->pattern || !p->pattern_norm ||
	    (sqlite3_column_type(st, 9) != SQLITE_NULL && !p->comments)) {
		allowd_policy_free(p);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	*out = p;
	return 0;
}

static void bind_policy(sqlite3_stmt *st, const char *account_id, const allowd_policy *p)
{
	sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->pattern, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->pattern_norm, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)p->pattern_type);
	sqlite3_bind_int(st, 5, p->is_regex);
	sqlite3_bind_int(st, 6, p->is_trusted_sender);
	sqlite3_bind_int(st, 7, p->is_acceptable_sender);
	sqlite3_bind_int(st, 8, p->is_exempt_recipient);
	sqlite3_bind_int(st, 9, p->verify_sender);
	if (p->comments)
		sqlite3_bind_text(st, 10, p->comments, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 10);
	sqlite3_bind_int64(st, 11, p->created_at);
	sqlite3_bind_int64(st, 12, p->modified_at);
}

static int get_policy(conn *c, allowd_policy **out, const char *account_id, int64_t id)
{
	sqlite3_stmt *st = stmt(c, ST_POLICY_GET);
	int rc, step;

	*out = NULL;
	if (!st)
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		rc = row_to_policy(out, st);
	else if (step == SQLITE_DONE)
		rc = allowd_error_set(ALLOWD_ENOTFOUND, "/id", "no allow policy with id %lld",
				      (long long)id);
	else
		rc = db_error(c->db, "get policy");
	sqlite3_reset(st);
	/* success always yields a row: said once here for every caller (and the analyzer) */
	if (rc == 0 && !*out)
		rc = allowd_error_set(ALLOWD_ERR, NULL, "storage error: no row");
	return rc;
}

/* Fails with EDUPLICATE when another policy of the account has p's key. */
static int check_duplicate(conn *c, const char *account_id, const allowd_policy *p)
{
	sqlite3_stmt *st = stmt(c, ST_POLICY_FIND_DUP);
	int rc = 0, step;

	if (!st)
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)p->pattern_type);
	sqlite3_bind_int(st, 3, p->is_regex);
	sqlite3_bind_text(st, 4, p->pattern_norm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, p->id);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		rc = allowd_error_set(ALLOWD_EDUPLICATE, "/pattern",
				      "an allow policy with this pattern already exists (id %lld)",
				      (long long)sqlite3_column_int64(st, 0));
	else if (step != SQLITE_DONE)
		rc = db_error(c->db, "duplicate check");
	sqlite3_reset(st);
	return rc;
}

/* ---- write jobs (run on the writer thread, inside a transaction) ---- */

/*
 * `check`, when not NULL, is the pattern check the caller ran before the job
 * was queued (see "pattern checks" below): the writer reuses its verdict.
 */
static int tx_create(conn *c, const char *account_id, allowd_policy *p,
		     const allowd_pattern_check *check)
{
	sqlite3_stmt *st;
	int rc;

	if (p->id)
		return allowd_error_set(ALLOWD_EINVALID, "/id", "id is read-only");
	if ((rc = allowd_policy_validate_checked(p, check)) ||
	    (rc = check_duplicate(c, account_id, p)))
		return rc;
	p->created_at = p->modified_at = allowd_now_ms();
	if (!(st = stmt(c, ST_POLICY_INSERT)))
		return ALLOWD_ERR;
	bind_policy(st, account_id, p);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(c->db, "insert policy");
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	p->id = sqlite3_last_insert_rowid(c->db);
	if (p->id > ALLOWD_POLICY_ID_MAX)
		return allowd_error_set(ALLOWD_EUNAVAILABLE, NULL, "policy ids are exhausted");
	record(c, ALLOWD_CHANGE_UPSERT, account_id, p->id, p);
	return 0;
}

static int tx_update(conn *c, allowd_policy **out, const char *account_id,
		     const allowd_policy_patch *patch, bool replace, const allowd_pattern_check *check)
{
	allowd_policy *p = NULL;
	sqlite3_stmt *st;
	int64_t now;
	int rc;

	if ((rc = get_policy(c, &p, account_id, patch->id)))
		return rc;
	if (replace) {
		allowd_policy_set_string(&p->comments, NULL);
		p->is_trusted_sender = p->is_acceptable_sender = p->is_exempt_recipient = false;
	}
	if ((rc = allowd_policy_apply_patch(p, patch)) ||
	    (rc = allowd_policy_validate_checked(p, check)) ||
	    (rc = check_duplicate(c, account_id, p)))
		goto out;
	now = allowd_now_ms();
	p->modified_at = now > p->modified_at ? now : p->modified_at + 1;
	if (!(st = stmt(c, ST_POLICY_UPDATE))) {
		rc = ALLOWD_ERR;
		goto out;
	}
	bind_policy(st, account_id, p);
	sqlite3_bind_int64(st, 13, p->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c->db, "update policy");
	sqlite3_reset(st);
out:
	if (rc == 0 && out) {
		*out = p;
		record(c, ALLOWD_CHANGE_UPSERT, account_id, p->id, p);
	} else {
		allowd_policy_free(p);
	}
	return rc;
}

static int tx_delete(conn *c, const char *account_id, int64_t id)
{
	sqlite3_stmt *st = stmt(c, ST_POLICY_DELETE);
	int rc = 0;

	if (!st)
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(c->db, "delete policy");
	else if (sqlite3_changes(c->db) == 0)
		rc = allowd_error_set(ALLOWD_ENOTFOUND, "/id", "no allow policy with id %lld",
				      (long long)id);
	else
		record(c, ALLOWD_CHANGE_DELETE, account_id, id, NULL);
	sqlite3_reset(st);
	return rc;
}

struct policy_args {
	const char *account_id;
	allowd_policy *policy;
	allowd_policy **out;
	const allowd_policy_patch *patch;
	int64_t id;
	const allowd_batch *batch;
	allowd_batch_result *result;
	const allowd_pattern_check *checks; /* one per patch, put and post, or NULL */
};

static int job_create(conn *c, void *arg)
{
	struct policy_args *a = arg;
	return tx_create(c, a->account_id, a->policy, a->checks);
}

static int job_update(conn *c, void *arg)
{
	struct policy_args *a = arg;
	return tx_update(c, a->out, a->account_id, a->patch, false, a->checks);
}

static int job_delete(conn *c, void *arg)
{
	struct policy_args *a = arg;
	return tx_delete(c, a->account_id, a->id);
}

static int list_reserve(allowd_policy_list *l, size_t n)
{
	if (n && !(l->items = calloc(n, sizeof(*l->items))))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	return 0;
}

static int job_batch(conn *c, void *arg)
{
	struct policy_args *a = arg;
	const allowd_batch *b = a->batch;
	allowd_batch_result *r = a->result;
	const allowd_pattern_check *ck = a->checks;
	char where[64];
	int rc = 0;
	size_t i;

	memset(r, 0, sizeof(*r));
	if ((b->n_deletes && !(r->deleted = calloc(b->n_deletes, sizeof(*r->deleted)))) ||
	    list_reserve(&r->patched, b->n_patches) || list_reserve(&r->put, b->n_puts) ||
	    list_reserve(&r->posted, b->n_posts)) {
		rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		goto fail;
	}
	for (i = 0; i < b->n_deletes; i++) {
		if ((rc = tx_delete(c, a->account_id, b->deletes[i]))) {
			snprintf(where, sizeof(where), "/deletes/%zu", i);
			goto item_failed;
		}
		r->deleted[i] = b->deletes[i];
	}
	for (i = 0; i < b->n_patches; i++) {
		if ((rc = tx_update(c, &r->patched.items[i], a->account_id, &b->patches[i], false,
				    ck ? &ck[i] : NULL))) {
			snprintf(where, sizeof(where), "/patches/%zu", i);
			goto item_failed;
		}
		r->patched.count++;
	}
	for (i = 0; i < b->n_puts; i++) {
		if ((rc = tx_update(c, &r->put.items[i], a->account_id, &b->puts[i], true,
				    ck ? &ck[b->n_patches + i] : NULL))) {
			snprintf(where, sizeof(where), "/puts/%zu", i);
			goto item_failed;
		}
		r->put.count++;
	}
	for (i = 0; i < b->n_posts; i++) {
		allowd_policy *p = NULL;
		if ((rc = allowd_policy_dup(&p, b->posts[i])) ||
		    (rc = tx_create(c, a->account_id, p,
				    ck ? &ck[b->n_patches + b->n_puts + i] : NULL))) {
			allowd_policy_free(p);
			snprintf(where, sizeof(where), "/posts/%zu", i);
			goto item_failed;
		}
		r->posted.items[i] = p;
		r->posted.count++;
	}
	return 0;

item_failed:
	allowd_error_prefix_pointer(where);
fail:
	allowd_batch_result_clear(r);
	return rc;
}

/*
 * ---- pattern checks --------------------------------------------------
 *
 * A pattern check (for a regex: a PCRE2 compile and a cost probe, up to
 * ~100 ms) needs no database, so it runs here, on the caller's thread,
 * before the job is queued; the writer, which every client's write waits
 * for, only compares the policy's (type, is_regex, pattern) with the one
 * checked and keeps what needs the database: the existence of the row, the
 * duplicate check and the id.  An edit is checked against the row as read
 * now; when the writer finds another key (a concurrent edit, or an earlier
 * item of the same batch), it checks that one itself, so a stale check
 * costs time, never correctness.
 */

/*
 * Checks the pattern an edit (PATCH or PUT: a replacement resets only the
 * flags and comments) of a stored policy would leave.
 */
static int check_edit(sq *s, allowd_pattern_check *out, const char *account_id,
		      const allowd_policy_patch *patch)
{
	const unsigned key = ALLOWD_FIELD_PATTERN | ALLOWD_FIELD_PATTERN_TYPE | ALLOWD_FIELD_IS_REGEX;
	allowd_policy *row = NULL;
	conn *c;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((patch->fields & key) == key)
		return allowd_pattern_check_run(out, patch->v.pattern_type, patch->v.is_regex,
						patch->v.pattern);
	/* no row (yet) or no reader: nothing is checked here; the writer decides */
	if (reader(&c, s) || get_policy(c, &row, account_id, patch->id))
		return 0;
	rc = allowd_policy_apply_patch(row, patch);
	if (rc == 0)
		rc = allowd_pattern_check_run(out, row->pattern_type, row->is_regex, row->pattern);
	allowd_policy_free(row);
	return rc;
}

static void checks_free(allowd_pattern_check *checks, size_t n)
{
	for (size_t i = 0; checks && i < n; i++)
		allowd_pattern_check_clear(&checks[i]);
	free(checks);
}

/*
 * A policy write handed to the writer: the job, its arguments and the
 * pattern checks run here, all owned by the writer once queued and freed
 * after the completion callback (release_policy_write).
 */
typedef struct policy_write {
	job j;
	struct policy_args a;
	allowd_pattern_check *checks;
	size_t n_checks;
} policy_write;

static void release_policy_write(job *j)
{
	policy_write *w = (policy_write *)j; /* j is the first member */
	checks_free(w->checks, w->n_checks);
	free(w);
}

/* Allocates a policy write with n pattern checks (at least one slot). */
static int policy_write_new(policy_write **out, size_t n)
{
	policy_write *w = calloc(1, sizeof(*w));

	if (!w || !(w->checks = calloc(n ? n : 1, sizeof(*w->checks)))) {
		free(w);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	w->n_checks = n;
	*out = w;
	return 0;
}

/* Queues w (whose arguments are set) with fn; on failure w is freed. */
static int submit_policy_write(sq *s, policy_write *w, int (*fn)(conn *, void *),
			       allowd_store_done done, void *ctx)
{
	w->j.fn = fn;
	w->j.arg = &w->a;
	w->j.on_done = done;
	w->j.on_done_ctx = ctx;
	w->j.release = release_policy_write;
	w->a.checks = w->checks;
	if (!queue_owned(s, &w->j)) {
		release_policy_write(&w->j);
		return allowd_error_set(ALLOWD_EUNAVAILABLE, NULL, "the store is shutting down");
	}
	return 0;
}

static int sq_policy_create(void *impl, const char *account_id, allowd_policy *p,
			    allowd_store_done done, void *ctx)
{
	policy_write *w = NULL;
	int rc;

	if (p->id)
		return allowd_error_set(ALLOWD_EINVALID, "/id", "id is read-only");
	if ((rc = policy_write_new(&w, 1)))
		return rc;
	/* every rule but the duplicate check needs no database: fail without queueing */
	if ((rc = allowd_pattern_check_run(&w->checks[0], p->pattern_type, p->is_regex,
					   p->pattern)) ||
	    (rc = allowd_policy_validate_checked(p, &w->checks[0]))) {
		release_policy_write(&w->j);
		return rc;
	}
	w->a.account_id = account_id;
	w->a.policy = p;
	return submit_policy_write(impl, w, job_create, done, ctx);
}

static int sq_policy_update(void *impl, allowd_policy **out, const char *account_id,
			    const allowd_policy_patch *patch, allowd_store_done done, void *ctx)
{
	policy_write *w = NULL;
	int rc;

	if ((rc = policy_write_new(&w, 1)))
		return rc;
	if ((rc = check_edit(impl, &w->checks[0], account_id, patch))) {
		release_policy_write(&w->j);
		return rc;
	}
	w->a.account_id = account_id;
	w->a.out = out;
	w->a.patch = patch;
	return submit_policy_write(impl, w, job_update, done, ctx);
}

static int sq_policy_delete(void *impl, const char *account_id, int64_t id,
			    allowd_store_done done, void *ctx)
{
	policy_write *w = NULL;
	int rc;

	if ((rc = policy_write_new(&w, 0)))
		return rc;
	w->a.account_id = account_id;
	w->a.id = id;
	return submit_policy_write(impl, w, job_delete, done, ctx);
}

static int sq_batch(void *impl, allowd_batch_result *out, const char *account_id,
		    const allowd_batch *b, allowd_store_done done, void *ctx)
{
	size_t n = b->n_patches + b->n_puts + b->n_posts, i;
	policy_write *w = NULL;
	allowd_pattern_check *checks;
	int rc = 0;

	if ((rc = policy_write_new(&w, n)))
		return rc;
	checks = w->checks;
	for (i = 0; i < b->n_patches && !rc; i++)
		rc = check_edit(impl, &checks[i], account_id, &b->patches[i]);
	for (i = 0; i < b->n_puts && !rc; i++)
		rc = check_edit(impl, &checks[b->n_patches + i], account_id, &b->puts[i]);
	for (i = 0; i < b->n_posts && !rc; i++) {
		const allowd_policy *p = b->posts[i];
		rc = allowd_pattern_check_run(&checks[b->n_patches + b->n_puts + i],
					      p->pattern_type, p->is_regex, p->pattern);
	}
	if (rc) {
		release_policy_write(&w->j);
		return rc;
	}
	w->a.account_id = account_id;
	w->a.batch = b;
	w->a.result = out;
	return submit_policy_write(impl, w, job_batch, done, ctx);
}

/* ---- reads ---------------------------------------------------------- */

static int sq_policy_get(void *impl, allowd_policy **out, const char *account_id, int64_t id)
{
	conn *c;
	int rc;

	if ((rc = reader(&c, impl)))
		return rc;
	return get_policy(c, out, account_id, id);
}

/* Appends " AND <col> = ?" for each filter set in q; binds them later in order. */
static void list_where(sqlite3_str *sql, const allowd_list_query *q)
{
	sqlite3_str_appendall(sql, " WHERE account_id = ?");
	if (q->pattern_type != ALLOWD_TRISTATE_ANY)
		sqlite3_str_appendall(sql, " AND pattern_type = ?");
	if (q->pattern)
		sqlite3_str_appendall(sql, " AND pattern = ?");
	if (q->is_trusted_sender != ALLOWD_TRISTATE_ANY)
		sqlite3_str_appendall(sql, " AND is_trusted_sender = ?");
	if (q->is_acceptable_sender != ALLOWD_TRISTATE_ANY)
		sqlite3_str_appendall(sql, " AND is_acceptable_sender = ?");
	if (q->is_exempt_recipient != ALLOWD_TRISTATE_ANY)
		sqlite3_str_appendall(sql, " AND is_exempt_recipient = ?");
	if (q->verify_sender != ALLOWD_TRISTATE_ANY)
		sqlite3_str_appendall(sql, " AND verify_sender = ?");
	if (q->search)
		sqlite3_str_appendall(sql, " AND (pattern LIKE ? ESCAPE '\\'"
					   " OR comments LIKE ? ESCAPE '\\')");
}

static int list_bind(sqlite3_stmt *st, const char *account_id, const allowd_list_query *q,
		     const char *like)
{
	int i = 1;

	sqlite3_bind_text(st, i++, account_id, -1, SQLITE_STATIC);
	if (q->pattern_type != ALLOWD_TRISTATE_ANY)
		sqlite3_bind_int(st, i++, q->pattern_type);
	if (q->pattern)
		sqlite3_bind_text(st, i++, q->pattern, -1, SQLITE_STATIC);
	if (q->is_trusted_sender != ALLOWD_TRISTATE_ANY)
		sqlite3_bind_int(st, i++, q->is_trusted_sender);
	if (q->is_acceptable_sender != ALLOWD_TRISTATE_ANY)
		sqlite3_bind_int(st, i++, q->is_acceptable_sender);
	if (q->is_exempt_recipient != ALLOWD_TRISTATE_ANY)
		sqlite3_bind_int(st, i++, q->is_exempt_recipient);
	if (q->verify_sender != ALLOWD_TRISTATE_ANY)
		sqlite3_bind_int(st, i++, q->verify_sender);
	if (like) {
		sqlite3_bind_text(st, i++, like, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, i++, like, -1, SQLITE_STATIC);
	}
	return i;
}

/* "%<s with % _ \ escaped>%" for LIKE; NULL when s is NULL. */
static char *like_pattern(const char *s)
{
	size_t n = strlen(s);
	char *out, *o;

	if (n > (SIZE_MAX - 3) / 2 || !(out = malloc(2 * n + 3)))
		return NULL;
	o = out;
	*o++ = '%';
	for (; *s; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '%';
	*o = '\0';
	return out;
}

static unsigned filter_bits(const allowd_list_query *q)
{
	return (q->pattern_type != ALLOWD_TRISTATE_ANY ? SHAPE_TYPE : 0) |
	       (q->pattern ? SHAPE_PATTERN : 0) |
	       (q->is_trusted_sender != ALLOWD_TRISTATE_ANY ? SHAPE_TRUSTED : 0) |
	       (q->is_acceptable_sender != ALLOWD_TRISTATE_ANY ? SHAPE_ACCEPTABLE : 0) |
	       (q->is_exempt_recipient != ALLOWD_TRISTATE_ANY ? SHAPE_EXEMPT : 0) |
	       (q->verify_sender != ALLOWD_TRISTATE_ANY ? SHAPE_VERIFY : 0) |
	       (q->search ? SHAPE_SEARCH : 0);
}

/* The connection's prepared statement for slot `i` of `*cache` (n slots), built by sql_fn. */
static sqlite3_stmt *shape_stmt(conn *c, sqlite3_stmt ***cache, size_t n, size_t i,
				void (*sql_fn)(sqlite3_str *, const allowd_list_query *),
				const allowd_list_query *q)
{
	sqlite3_str *sql;
	sqlite3_stmt *st;
	char *text;

	if (!*cache && !(*cache = calloc(n, sizeof(**cache)))) {
		allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		return NULL;
	}
	if ((st = (*cache)[i])) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	sql = sqlite3_str_new(c->db);
	sql_fn(sql, q);
	text = sqlite3_str_finish(sql);
	if (!text || sqlite3_prepare_v3(c->db, text, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
			     SQLITE_OK) {
		sqlite3_free(text);
		db_error(c->db, "prepare list");
		return NULL;
	}
	sqlite3_free(text);
	(*cache)[i] = st;
	return st;
}

static void count_sql(sqlite3_str *sql, const allowd_list_query *q)
{
	sqlite3_str_appendall(sql, "SELECT count(*) FROM policies");
	list_where(sql, q);
}

/*
 * The page query: the ids and versions of the page's rows, which the list
 * indexes cover.  Without `search` it is LIMIT/OFFSET over an index in the
 * requested order; with `search` it has no LIMIT: the caller walks every
 * match once, counting them and keeping the page's rows.
 */
static void page_sql(sqlite3_str *sql, const allowd_list_query *q)
{
	static const char *const order_col[] = {"id", "pattern", "created_at"};
	const char *dir = q->descending ? "DESC" : "ASC";

	sqlite3_str_appendall(sql, "SELECT id, modified_at FROM policies");
	/*
	 * An exact pattern matches a handful of rows: find them, then sort them.
	 * A search reads every row of the account: in id order (nearly
	 * sequential in the table), then sorts the matches -- about 3x cheaper
	 * than visiting the rows in pattern or created_at order.
	 */
	if (q->pattern)
		sqlite3_str_appendall(sql, " INDEXED BY policies_by_pattern");
	else if (q->search)
		sqlite3_str_appendall(sql, " INDEXED BY policies_by_id");
	list_where(sql, q);
	if (q->order == ALLOWD_ORDER_ID)
		sqlite3_str_appendf(sql, " ORDER BY id %s", dir);
	else
		sqlite3_str_appendf(sql, " ORDER BY %s %s, id %s", order_col[q->order], dir, dir);
	if (!q->search)
		sqlite3_str_appendall(sql, " LIMIT ? OFFSET ?");
}

/* total_count from policy_counts: equality filters on pattern_type and the flags only. */
static int count_from_counts(conn *c, int64_t *out, const char *account_id,
			     const allowd_list_query *q)
{
	const int filters[4] = {q->is_trusted_sender, q->is_acceptable_sender,
				q->is_exempt_recipient, q->verify_sender};
	sqlite3_stmt *st = stmt(c, ST_POLICY_COUNT);
	int mask = 0, want = 0, rc = 0;

	if (!st)
		return ALLOWD_ERR;
	for (int i = 0; i < 4; i++)
		if (filters[i] != ALLOWD_TRISTATE_ANY) {
			mask |= 1 << i;
			want |= filters[i] ? 1 << i : 0;
		}
	sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, q->pattern_type);
	sqlite3_bind_int(st, 3, mask);
	sqlite3_bind_int(st, 4, want);
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		rc = db_error(c->db, "count");
	sqlite3_reset(st);
	return rc;
}

struct list_row_src {
	conn *c;
	const char *account_id;
};

/* Reads a page's row in the list's read transaction (so: the same snapshot). */
static int load_row(const allowd_list_row *row, allowd_policy **out)
{
	const struct list_row_src *src = row->impl_row;
	return get_policy(src->c, out, src->account_id, row->id);
}

/*
 * A list runs in one read transaction, so total_count and the page agree.
 * total_count costs:
 *  - no `pattern` and no `search`: a sum over policy_counts (<= 64 rows);
 *  - `pattern` (exact): count(*) over the matching entries of
 *    policies_by_pattern (a handful);
 *  - `search` (substring): no index can answer it, so the page query visits
 *    every policy of the account once, in order, counting the matches and
 *    keeping those of the page: one pass, O(policies in the account).
 */
static int sq_policy_list_rows(void *impl, int64_t *total_count, const char *account_id,
			       const allowd_list_query *q,
			       int (*fn)(void *ctx, const allowd_list_row *row), void *ctx)
{
	unsigned bits = filter_bits(q);
	size_t shape = ((size_t)bits * 3 + (size_t)q->order) * 2 + (q->descending ? 1 : 0);
	int64_t offset = (q->page - 1) * q->per_page, seen = 0;
	sqlite3_stmt *st = NULL, *begin, *commit;
	allowd_list_row row = {.load = load_row};
	struct list_row_src src;
	char *like = NULL;
	int in_tx = 0;
	conn *c;
	int rc, i, step;

	*total_count = 0;
	if ((rc = reader(&c, impl)))
		return rc;
	if (q->search && !(like = like_pattern(q->search)))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	src = (struct list_row_src){c, account_id};
	row.impl_row = &src;

	if (!(begin = stmt(c, ST_BEGIN))) {
		rc = ALLOWD_ERR;
		goto out;
	}
	step = sqlite3_step(begin);
	sqlite3_reset(begin);
	if (step != SQLITE_DONE) {
		rc = db_error(c->db, "begin");
		goto out;
	}
	in_tx = 1;

	if (!(bits & (SHAPE_PATTERN | SHAPE_SEARCH))) {
		if ((rc = count_from_counts(c, total_count, account_id, q)))
			goto out;
	} else if (!(bits & SHAPE_SEARCH)) {
		if (!(st = shape_stmt(c, &c->count_stmts, SHAPE_FILTERS, bits, count_sql, q))) {
			rc = ALLOWD_ERR;
			goto out;
		}
		list_bind(st, account_id, q, like);
		if (sqlite3_step(st) != SQLITE_ROW) {
			rc = db_error(c->db, "count");
			goto out;
		}
		*total_count = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}

	if (!(st = shape_stmt(c, &c->list_stmts, LIST_SHAPES, shape, page_sql, q))) {
		rc = ALLOWD_ERR;
		goto out;
	}
	i = list_bind(st, account_id, q, like);
	if (!q->search) {
		sqlite3_bind_int64(st, i++, q->per_page);
		sqlite3_bind_int64(st, i, offset);
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (q->search && (seen++ < offset || seen > offset + q->per_page))
			continue;
		row.id = sqlite3_column_int64(st, 0);
		row.version = sqlite3_column_int64(st, 1);
		if ((rc = fn(ctx, &row)))
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = db_error(c->db, "list");
	if (q->search)
		*total_count = seen;
out:
	if (st)
		sqlite3_reset(st);
	free(like);
	if (in_tx && (commit = stmt(c, ST_COMMIT))) {
		/* a read transaction: a failed COMMIT loses nothing, but say so */
		if (sqlite3_step(commit) != SQLITE_DONE && rc == 0)
			rc = db_error(c->db, "end of list read");
		sqlite3_reset(commit);
	}
	return rc;
}

struct list_collect {
	allowd_policy_list *out;
	size_t cap;
};

static int collect_row(void *ctx, const allowd_list_row *row)
{
	struct list_collect *lc = ctx;
	allowd_policy_list *out = lc->out;

	if (out->count == lc->cap) {
		size_t ncap = lc->cap ? lc->cap * 2 : 16;
		allowd_policy **items = realloc(out->items, ncap * sizeof(*items));
		if (!items)
			return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		out->items = items;
		lc->cap = ncap;
	}
	if (row->load(row, &out->items[out->count]))
		return ALLOWD_ERR;
	out->count++;
	return 0;
}

static int sq_policy_list(void *impl, allowd_policy_list *out, const char *account_id,
			  const allowd_list_query *q)
{
	struct list_collect lc = {out, 0};
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = sq_policy_list_rows(impl, &out->total_count, account_id, q, collect_row, &lc)))
		allowd_policy_list_clear(out);
	return rc;
}

/* ---- accounts and credentials --------------------------------------- */

struct cred_args {
	const char *id;
	const char *name;
	const allowd_token *token;
	const unsigned char *hash;
	allowd_perm perm;
};

static int step_done(conn *c, sqlite3_stmt *st, const char *what)
{
	int rc = 0, step = sqlite3_step(st);

	if ((step & 0xff) == SQLITE_CONSTRAINT)
		rc = allowd_error_set(ALLOWD_EINVALID, NULL, "%s: already exists or unknown reference",
				      what);
	else if (step != SQLITE_DONE)
		rc = db_error(c->db, what);
	sqlite3_reset(st);
	return rc;
}

static int job_account_create(conn *c, void *arg)
{
	struct cred_args *a = arg;
	sqlite3_stmt *st = stmt(c, ST_ACCOUNT_INSERT);

	if (!st)
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, allowd_now_ms());
	return step_done(c, st, "create account");
}

static int sq_account_create(void *impl, const char *id, const char *name)
{
	struct cred_args a = {.id = id, .name = name};
	return run_write(impl, job_account_create, &a);
}

static int single_int64(void *impl, enum stmt_id id, const char *arg, int64_t *out)
{
	sqlite3_stmt *st;
	conn *c;
	int rc = 0, step;

	if ((rc = reader(&c, impl)))
		return rc;
	if (!(st = stmt(c, id)))
		return ALLOWD_ERR;
	if (arg)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (step == SQLITE_DONE)
		rc = ALLOWD_ENOTFOUND;
	else
		rc = db_error(c->db, "query");
	sqlite3_reset(st);
	return rc;
}

static int sq_account_exists(void *impl, const char *id)
{
	int64_t v;
	int rc = single_int64(impl, ST_ACCOUNT_EXISTS, id, &v);
	if (rc == ALLOWD_ENOTFOUND)
		return allowd_error_set(ALLOWD_ENOTFOUND, NULL, "no such account");
	return rc;
}

static int sq_account_count(void *impl, int64_t *out)
{
	return single_int64(impl, ST_ACCOUNT_COUNT, NULL, out);
}

static int job_token_create(conn *c, void *arg)
{
	struct cred_args *a = arg;
	const allowd_token *t = a->token;
	sqlite3_stmt *st = stmt(c, ST_TOKEN_INSERT);
	int rc;

	if (!st)
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, a->hash, ALLOWD_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, t->active);
	sqlite3_bind_int64(st, 4, t->not_before);
	sqlite3_bind_int64(st, 5, t->expires_on);
	sqlite3_bind_int64(st, 6, allowd_now_ms());
	sqlite3_bind_text(st, 7, t->ip_ranges ? t->ip_ranges : "", -1, SQLITE_STATIC);
	if ((rc = step_done(c, st, "create token")))
		return rc;
	for (size_t i = 0; i < t->n_grants; i++) {
		if (!(st = stmt(c, ST_TOKEN_GRANT_INSERT)))
			return ALLOWD_ERR;
		sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, t->grants[i].account_id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)t->grants[i].perm);
		if ((rc = step_done(c, st, "grant token")))
			return rc;
	}
	return 0;
}

static int sq_token_create(void *impl, const allowd_token *t, const unsigned char *hash)
{
	struct cred_args a = {.token = t, .hash = hash};
	return run_write(impl, job_token_create, &a);
}

/* Reads (account_id, perm) rows of `id`'s grants into *grants. */
static int read_grants(conn *c, enum stmt_id which, const char *key, allowd_grant **grants,
		       size_t *n)
{
	sqlite3_stmt *st = stmt(c, which);
	size_t cap = 0;
	int step, rc = 0;

	*grants = NULL;
	*n = 0;
	if (!st)
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *acc = sqlite3_column_text(st, 0);
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			allowd_grant *g = realloc(*grants, ncap * sizeof(*g));
			if (!g) {
				rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
				break;
			}
			*grants = g;
			cap = ncap;
		}
		snprintf((*grants)[*n].account_id, sizeof((*grants)[*n].account_id), "%s",
			 acc ? (const char *)acc : "");
		(*grants)[*n].perm = (allowd_perm)sqlite3_column_int(st, 1);
		(*n)++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_error(c->db, "grants");
	sqlite3_reset(st);
	if (rc) {
		free(*grants);
		*grants = NULL;
		*n = 0;
	}
	return rc;
}

static int row_to_token(allowd_token *out, sqlite3_stmt *st)
{
	const unsigned char *id = sqlite3_column_text(st, 0);

	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", id ? (const char *)id : "");
	out->active = sqlite3_column_int(st, 1);
	out->not_before = sqlite3_column_int64(st, 2);
	out->expires_on = sqlite3_column_int64(st, 3);
	out->created_at = sqlite3_column_int64(st, 4);
	out->last_used = sqlite3_column_int64(st, 5);
	if (!(out->ip_ranges = column_strdup(st, 6)))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	return 0;
}

static int sq_token_find(void *impl, allowd_token *out, const unsigned char *hash)
{
	sqlite3_stmt *st;
	conn *c;
	int rc, step;

	memset(out, 0, sizeof(*out));
	if ((rc = reader(&c, impl)))
		return rc;
	if (!(st = stmt(c, ST_TOKEN_FIND)))
		return ALLOWD_ERR;
	sqlite3_bind_blob(st, 1, hash, ALLOWD_HASH_LEN, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		rc = row_to_token(out, st);
	} else {
		rc = step == SQLITE_DONE ? allowd_error_set(ALLOWD_ENOTFOUND, NULL, "no such token")
					 : db_error(c->db, "find token");
	}
	sqlite3_reset(st);
	if (rc == 0)
		rc = read_grants(c, ST_TOKEN_GRANTS, out->id, &out->grants, &out->n_grants);
	if (rc)
		allowd_token_clear(out);
	return rc;
}

static int job_user_create(conn *c, void *arg)
{
	struct cred_args *a = arg;
	sqlite3_stmt *st = stmt(c, ST_USER_INSERT);

	if (!st)
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, a->hash, ALLOWD_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, allowd_now_ms());
	return step_done(c, st, "create user");
}

static int sq_user_create(void *impl, const char *email, const unsigned char *key_hash)
{
	struct cred_args a = {.id = email, .hash = key_hash};
	return run_write(impl, job_user_create, &a);
}

static int sq_user_find(void *impl, allowd_user *out, const char *email)
{
	sqlite3_stmt *st;
	conn *c;
	int rc, step;

	memset(out, 0, sizeof(*out));
	if ((rc = reader(&c, impl)))
		return rc;
	if (!(st = stmt(c, ST_USER_FIND)))
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_bytes(st, 1) == ALLOWD_HASH_LEN) {
		out->email = column_strdup(st, 0);
		memcpy(out->key_hash, sqlite3_column_blob(st, 1), ALLOWD_HASH_LEN);
		rc = out->email ? 0 : allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	} else {
		rc = step == SQLITE_ROW || step == SQLITE_DONE
			     ? allowd_error_set(ALLOWD_ENOTFOUND, NULL, "no such user")
			     : db_error(c->db, "find user");
	}
	sqlite3_reset(st);
	if (rc == 0 && (rc = read_grants(c, ST_USER_GRANTS, email, &out->grants, &out->n_grants)))
		allowd_user_clear(out);
	return rc;
}

static int job_membership_set(conn *c, void *arg)
{
	struct cred_args *a = arg;
	sqlite3_stmt *st = stmt(c, ST_MEMBERSHIP_SET);

	if (!st)
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)a->perm);
	return step_done(c, st, "set membership");
}

static int sq_membership_set(void *impl, const char *email, const char *account_id,
			     allowd_perm role)
{
	struct cred_args a = {.id = account_id, .name = email, .perm = role};
	return run_write(impl, job_membership_set, &a);
}

/* Runs a one-statement write binding text ?1 (and optionally int ?2 or blob ?2). */
struct simple_args {
	enum stmt_id which;
	const char *key;
	int has_int;
	int64_t value;
	const unsigned char *blob;
	int must_change; /* ENOTFOUND when no row changed */
	const char *what;
};

static int job_simple(conn *c, void *arg)
{
	struct simple_args *a = arg;
	sqlite3_stmt *st = stmt(c, a->which);
	int rc;

	if (!st)
		return ALLOWD_ERR;
	sqlite3_bind_text(st, 1, a->key, -1, SQLITE_STATIC);
	if (a->has_int)
		sqlite3_bind_int64(st, 2, a->value);
	if (a->blob)
		sqlite3_bind_blob(st, 2, a->blob, ALLOWD_HASH_LEN, SQLITE_STATIC);
	if ((rc = step_done(c, st, a->what)))
		return rc;
	if (a->must_change && sqlite3_changes(c->db) == 0)
		return allowd_error_set(ALLOWD_ENOTFOUND, NULL, "%s: no such %s", a->what,
					a->which == ST_USER_SET_KEY || a->which == ST_USER_DELETE
						? "user"
					: a->which == ST_ACCOUNT_DELETE ? "account"
									: "token");
	return 0;
}

static int simple_write(void *impl, enum stmt_id which, const char *key, int has_int,
			int64_t value, const unsigned char *blob, const char *what)
{
	struct simple_args a = {which, key, has_int, value, blob, 1, what};
	return run_write(impl, job_simple, &a);
}

static int job_account_delete(conn *c, void *arg)
{
	struct simple_args *a = arg;
	int rc = job_simple(c, arg);
	if (rc == 0)
		record(c, ALLOWD_CHANGE_ACCOUNT_DELETE, a->key, 0, NULL);
	return rc;
}

static int sq_account_delete(void *impl, const char *id)
{
	struct simple_args a = {ST_ACCOUNT_DELETE, id, 0, 0, NULL, 1, "delete account"};
	return run_write(impl, job_account_delete, &a);
}

static int sq_token_set_active(void *impl, const char *id, bool active)
{
	return simple_write(impl, ST_TOKEN_SET_ACTIVE, id, 1, active, NULL, "update token");
}

static int sq_token_delete(void *impl, const char *id)
{
	return simple_write(impl, ST_TOKEN_DELETE, id, 0, 0, NULL, "revoke token");
}

static int sq_user_set_key(void *impl, const char *email, const unsigned char *key_hash)
{
	return simple_write(impl, ST_USER_SET_KEY, email, 0, 0, key_hash, "roll key");
}

static int sq_user_delete(void *impl, const char *email)
{
	return simple_write(impl, ST_USER_DELETE, email, 0, 0, NULL, "delete user");
}

struct touch_args {
	struct simple_args a;
	char id[ALLOWD_ACCOUNT_ID_LEN + 1];
};

static void sq_token_touch(void *impl, const char *id, int64_t when)
{
	struct touch_args *t = calloc(1, sizeof(*t));

	if (!t)
		return;
	snprintf(t->id, sizeof(t->id), "%s", id);
	t->a = (struct simple_args){ST_TOKEN_TOUCH, t->id, 1, when, NULL, 0, "touch token"};
	run_write_async(impl, job_simple, t);
}

/* Grows *items (of `size` bytes each) to hold one more; 0 or ALLOWD_ERR. */
static int grow(void **items, size_t *cap, size_t n, size_t size)
{
	void *p;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	if (!(p = realloc(*items, ncap * size)))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
	*items = p;
	*cap = ncap;
	return 0;
}

static int sq_account_list(void *impl, allowd_account **out, size_t *n)
{
	allowd_account *items = NULL;
	size_t cap = 0, count = 0;
	sqlite3_stmt *st;
	conn *c;
	int rc, step;

	if ((rc = reader(&c, impl)))
		return rc;
	if (!(st = stmt(c, ST_ACCOUNT_LIST)))
		return ALLOWD_ERR;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *id = sqlite3_column_text(st, 0);
		if ((rc = grow((void **)&items, &cap, count, sizeof(*items))))
			break;
		snprintf(items[count].id, sizeof(items[count].id), "%s", id ? (const char *)id : "");
		items[count].name = column_strdup(st, 1);
		items[count].created_at = sqlite3_column_int64(st, 2);
		items[count].policy_count = sqlite3_column_int64(st, 3);
		count++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_error(c->db, "list accounts");
	sqlite3_reset(st);
	if (rc) {
		allowd_account_list_free(items, count);
		return rc;
	}
	*out = items;
	*n = count;
	return 0;
}

static int sq_token_list(void *impl, allowd_token **out, size_t *n)
{
	allowd_token *items = NULL;
	size_t cap = 0, count = 0;
	sqlite3_stmt *st;
	conn *c;
	int rc, step;

	if ((rc = reader(&c, impl)))
		return rc;
	if (!(st = stmt(c, ST_TOKEN_LIST)))
		return ALLOWD_ERR;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = grow((void **)&items, &cap, count, sizeof(*items))) ||
		    (rc = row_to_token(&items[count], st)))
			break;
		count++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_error(c->db, "list tokens");
	sqlite3_reset(st);
	for (size_t i = 0; !rc && i < count; i++)
		rc = read_grants(c, ST_TOKEN_GRANTS, items[i].id, &items[i].grants,
				 &items[i].n_grants);
	if (rc) {
		allowd_token_list_free(items, cap > count ? count + 1 : count);
		return rc;
	}
	*out = items;
	*n = count;
	return 0;
}

static int sq_user_list(void *impl, allowd_user **out, size_t *n)
{
	allowd_user *items = NULL;
	size_t cap = 0, count = 0;
	sqlite3_stmt *st;
	conn *c;
	int rc, step;

	if ((rc = reader(&c, impl)))
		return rc;
	if (!(st = stmt(c, ST_USER_LIST)))
		return ALLOWD_ERR;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = grow((void **)&items, &cap, count, sizeof(*items))))
			break;
		if (!(items[count].email = column_strdup(st, 0))) {
			rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
			break;
		}
		count++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_error(c->db, "list users");
	sqlite3_reset(st);
	for (size_t i = 0; !rc && i < count; i++)
		rc = read_grants(c, ST_USER_GRANTS, items[i].email, &items[i].grants,
				 &items[i].n_grants);
	if (rc) {
		allowd_user_list_free(items, count);
		return rc;
	}
	*out = items;
	*n = count;
	return 0;
}

static int sq_policy_scan(void *impl, const char *account_id, int (*fn)(void *, allowd_policy *),
			  void *ctx)
{
	sqlite3_stmt *st = NULL;
	conn *c;
	int rc, step;

	if ((rc = reader(&c, impl)))
		return rc;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT " POLICY_COLUMNS " FROM policies WHERE account_id = ?1"
			       " ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(c->db, "prepare scan");
	sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		allowd_policy *p = NULL;
		if ((rc = row_to_policy(&p, st)) || (rc = fn(ctx, p)))
			break;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_error(c->db, "scan");
	sqlite3_finalize(st);
	return rc;
}

static void sq_set_hook(void *impl, allowd_store_hook hook, void *ctx)
{
	sq *s = impl;
	pthread_mutex_lock(&s->lock);
	s->hook = hook;
	s->hook_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}

/* ---- open and close ------------------------------------------------- */

static int migrate(conn *c)
{
	sqlite3_stmt *st = NULL;
	int version = 0, rc;

	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return db_error(c->db, "read schema version");
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > SCHEMA_VERSION)
		return allowd_error_set(ALLOWD_ERR, NULL,
					"database schema version %d is newer than this allowd (%d)",
					version, SCHEMA_VERSION);
	for (; version < SCHEMA_VERSION; version++) {
		char bump[64];
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", version + 1);
		if ((rc = conn_exec(c, "BEGIN IMMEDIATE")))
			return rc;
		if ((rc = conn_exec(c, migrations[version])) || (rc = conn_exec(c, bump))) {
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		if ((rc = conn_exec(c, "COMMIT")))
			return rc;
		log_info("store: migrated schema to version %d", version + 1);
	}
	return 0;
}

static void sq_close(void *impl)
{
	sq *s = impl;
	conn *c;

	if (!s)
		return;
	if (s->writer_started) {
		pthread_mutex_lock(&s->lock);
		s->stopping = 1;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->writer_thread, NULL);
		if (s->stats.commits) {
			const struct writer_stats *w = &s->stats;
			double per = (double)w->commits * 1000.0;
			log_info("store: writer: %llu jobs in %llu commits (%.2f per commit, at most "
				 "%llu); per commit %.1f us running jobs, %.1f us committing, "
				 "%.1f us in the hook",
				 (unsigned long long)w->jobs, (unsigned long long)w->commits,
				 (double)w->jobs / (double)w->commits,
				 (unsigned long long)w->biggest, (double)w->ns_jobs / per,
				 (double)w->ns_commit / per, (double)w->ns_hook / per);
		}
	}
	pthread_mutex_lock(&s->conns_lock);
	while ((c = s->conns)) {
		s->conns = c->next;
		conn_close(c);
	}
	pthread_mutex_unlock(&s->conns_lock);
	/* This thread's key value pointed at a closed connection: forget it. */
	pthread_setspecific(s->reader_key, NULL);
	pthread_key_delete(s->reader_key);
	if (s->writer) {
		/* checkpoint so the database file is whole without its WAL */
		sqlite3_exec(s->writer->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
		conn_close(s->writer);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->conns_lock);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->done);
	free(s->path);
	free(s);
}

static int sq_open(void **out, const allowd_store_options *opts)
{
	sq *s = calloc(1, sizeof(*s));
	int rc;

	if (!s || !(s->path = strdup(opts->path))) {
		free(s);
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	}
	s->busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->conns_lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	pthread_cond_init(&s->done, NULL);
	pthread_key_create(&s->reader_key, reader_destroy);

	if ((rc = conn_open(&s->writer, s)))
		goto fail;
	if ((rc = conn_exec(s->writer, "PRAGMA journal_mode = WAL")) || (rc = migrate(s->writer)))
		goto fail;
	if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
		rc = allowd_error_set(ALLOWD_ERR, NULL, "cannot start the writer thread");
		goto fail;
	}
	s->writer_started = 1;
	*out = s;
	return 0;
fail:
	sq_close(s);
	return rc;
}

static int sq_schema_version(void *impl)
{
	(void)impl;
	return SCHEMA_VERSION;
}

const allowd_store_backend allowd_store_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.schema_version = sq_schema_version,
	.policy_create = sq_policy_create,
	.policy_get = sq_policy_get,
	.policy_update = sq_policy_update,
	.policy_delete = sq_policy_delete,
	.policy_list = sq_policy_list,
	.policy_list_rows = sq_policy_list_rows,
	.batch = sq_batch,
	.account_create = sq_account_create,
	.account_exists = sq_account_exists,
	.account_count = sq_account_count,
	.token_create = sq_token_create,
	.token_find = sq_token_find,
	.user_create = sq_user_create,
	.user_find = sq_user_find,
	.membership_set = sq_membership_set,
	.account_list = sq_account_list,
	.account_delete = sq_account_delete,
	.token_list = sq_token_list,
	.token_set_active = sq_token_set_active,
	.token_delete = sq_token_delete,
	.token_touch = sq_token_touch,
	.user_set_key = sq_user_set_key,
	.user_delete = sq_user_delete,
	.user_list = sq_user_list,
	.policy_scan = sq_policy_scan,
	.set_hook = sq_set_hook,
};

/*
 * fuzz_common.h - what the fuzz targets share: the libFuzzer entry points,
 * an invariant check that aborts with a message, a scratch directory that
 * is removed at exit, and small helpers for splitting an input.  Linked into
 * every target, under libFuzzer and under the standalone replay driver.
 */
#ifndef ALLOWD_FUZZ_COMMON_H
#define ALLOWD_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allowd/policy.h"
#include "allowd/store.h"

/* The entry points every target defines (libFuzzer's names). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * An invariant: when `cond` is false, prints the target, file:line, the
 * condition and a formatted explanation to stderr and aborts, which
 * libFuzzer reports as a crash and saves the input.
 */
#define FUZZ_CHECK(cond, ...)                                                             \
	do {                                                                              \
		if (!(cond))                                                              \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                \
	} while (0)

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

/*
 * A fresh private directory for this process (under $ALLOWD_FUZZ_TMPDIR,
 * else /dev/shm when writable -- SQLite's fsyncs cost nothing there -- else
 * $TMPDIR or /tmp), removed with its contents at exit.  Aborts on failure.
 * Returns the same directory on every call.
 */
const char *fuzz_tmpdir(void);

/* "<tmpdir>/<name>" into buf; aborts when it does not fit. */
void fuzz_path(char *buf, size_t len, const char *name);

/* A NUL-terminated malloc'ed copy of data[0..size) (aborts on OOM). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Deep comparison of the stored fields of two policies (id and timestamps too when `all`). */
bool fuzz_policy_equal(const allowd_policy *a, const allowd_policy *b, bool all);

/* True when `s` equals one of the allowd_error_code values. */
bool fuzz_is_error_code(int rc);

/* The policies every store-backed target seeds its account with. */
extern const char *const fuzz_account_id;

/*
 * Creates `fuzz_account_id` in `s` and stores a fixed, varied set of
 * policies (every pattern type, regexes, each flag, comments and none,
 * patterns that sort interestingly); returns how many were stored.
 */
size_t fuzz_seed_policies(allowd_store *s);

#endif

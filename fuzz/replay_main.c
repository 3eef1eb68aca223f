/*
 * replay_main.c - a standalone driver for the fuzz targets, so that their
 * corpora replay as ordinary ctest tests under any compiler (libgit2's
 * standalone fuzz driver).  Usage: fuzz_<name>_replay PATH...  Each PATH is
 * a file or a directory whose regular files are replayed in name order; a
 * PATH that does not exist is skipped (a target may have no regressions
 * yet).  Prints how many inputs ran; an invariant failure aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return -1;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			uint8_t *b = realloc(buf, ncap);
			if (!b) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = b;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static int run_file(const char *path)
{
	uint8_t *data = NULL, *copy;
	size_t len = 0;

	if (read_file(path, &data, &len) != 0) {
		fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* an exact-size copy, so that ASan sees any read past the input */
	copy = malloc(len ? len : 1);
	if (!copy) {
		free(data);
		return -1;
	}
	if (len)
		memcpy(copy, data, len);
	free(data);
	if (getenv("ALLOWD_REPLAY_VERBOSE"))
		fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of `dir` in name order; returns the count or -1. */
static long run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	long count = 0;

	if (!d) {
		fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (!nn)
				abort();
			names = nn;
			cap = ncap;
		}
		if (!(names[n++] = strdup(e->d_name)))
			abort();
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		int len = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (len < 0 || (size_t)len >= sizeof(path) || stat(path, &st) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (run_file(path) != 0) {
			count = -1;
			break;
		}
		count++;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return count;
}

int main(int argc, char **argv)
{
	long total = 0;
	struct stat st;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		long n;
		if (stat(argv[i], &st) != 0) {
			printf("replay: %s: absent, skipped\n", argv[i]);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			n = run_dir(argv[i]);
		} else {
			n = run_file(argv[i]) == 0 ? 1 : -1;
		}
		if (n < 0)
			return 1;
		printf("replay: %s: %ld input(s)\n", argv[i], n);
		total += n;
	}
	printf("replay: %ld input(s) replayed, all invariants held\n", total);
	return 0;
}

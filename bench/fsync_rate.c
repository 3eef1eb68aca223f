/*
 * fsync_rate.c - how many durable single-block writes per second this disk
 * takes: N x (pwrite 4 KiB + fdatasync), one at a time, for a fixed time.
 *
 *   fsync_rate DIR [SECONDS]      (default 3 s)
 *
 * The file is preallocated and synced first, and the writes cycle over its
 * 64 blocks in place, so every fdatasync flushes data only (no size or
 * block-allocation metadata): the cheapest durable write this disk can do,
 * which is the ceiling for a server that syncs once per request.  Prints
 *
 *   fdatasync_ops_per_sec=N.N mean_us=N.N p50_us=N p99_us=N max_us=N ops=N
 *
 * and removes the file.  Used by bench/api.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define BLOCKS 64
#define MAX_SAMPLES (1 << 20)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_u32(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [SECONDS]\n", argv[0]);
		return 2;
	}
	double seconds = argc > 2 ? atof(argv[2]) : 3.0;
	if (seconds <= 0 || seconds > 60)
		seconds = 3.0;

	char path[4096];
	snprintf(path, sizeof path, "%s/fsync_rate.%ld.tmp", argv[1], (long)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return 1;
	}

	static char buf[BLOCK];
	for (int i = 0; i < BLOCKS; i++) {
		memset(buf, 'a' + i % 26, sizeof buf);
		if (pwrite(fd, buf, BLOCK, (off_t)i * BLOCK) != BLOCK) {
			fprintf(stderr, "pwrite: %s\n", strerror(errno));
			goto fail;
		}
	}
	if (fsync(fd) != 0) {
		fprintf(stderr, "fsync: %s\n", strerror(errno));
		goto fail;
	}

	unsigned *lat = malloc(sizeof *lat * MAX_SAMPLES);
	if (!lat)
		goto fail;
	long ops = 0;
	double sum_us = 0, start = now_s(), end = start + seconds, t = start;
	while (t < end && ops < MAX_SAMPLES) {
		memset(buf, (int)(ops & 0xff), 64); /* the block really changes */
		double t0 = now_s();
		if (pwrite(fd, buf, BLOCK, (off_t)(ops % BLOCKS) * BLOCK) != BLOCK) {
			fprintf(stderr, "pwrite: %s\n", strerror(errno));
			goto fail;
		}
		if (fdatasync(fd) != 0) {
			fprintf(stderr, "fdatasync: %s\n", strerror(errno));
			goto fail;
		}
		t = now_s();
		double us = (t - t0) * 1e6;
		lat[ops++] = (unsigned)us;
		sum_us += us;
	}
	double elapsed = t - start;
	qsort(lat, (size_t)ops, sizeof *lat, cmp_u32);
	printf("fdatasync_ops_per_sec=%.1f mean_us=%.1f p50_us=%u p99_us=%u max_us=%u ops=%ld\n",
	       (double)ops / elapsed, sum_us / (double)ops, lat[ops / 2], lat[(ops * 99) / 100],
	       lat[ops - 1], ops);
	free(lat);
	close(fd);
	unlink(path);
	return 0;
fail:
	close(fd);
	unlink(path);
	return 1;
}

/*
 * io-rand: random 4 KiB reads or writes on a block device with O_DIRECT, one
 * at a time (queue depth 1), for bench/io. Built statically by bench/io and
 * put into the guest's initrd (busybox has no fio).
 *
 * Usage: io-rand [-s SEED] DEV read|write COUNT
 *   Does COUNT pread/pwrite calls of 4096 bytes at offsets drawn uniformly
 *   (4 KiB aligned) from the whole device; a write run ends with one
 *   fdatasync (a flush), which is timed too. The same SEED gives the same
 *   offsets, so every VMM sees the same pattern.
 * Report (one line on standard output):
 *   io-rand: op=read count=N bytes=B secs=S iops=I mib_s=M
 * Exit status: 0 on success, 1 on an I/O error, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define BLOCK 4096

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: fast, and the same sequence everywhere. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(2685821657736338717);
}

static void usage(void)
{
	fprintf(stderr, "usage: io-rand [-s SEED] DEV read|write COUNT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t seed = 0x5eed1234abcdULL;
	int opt;

	while ((opt = getopt(argc, argv, "s:")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 3)
		usage();
	const char *dev = argv[optind];
	const char *op = argv[optind + 1];
	int writing;
	if (!strcmp(op, "read"))
		writing = 0;
	else if (!strcmp(op, "write"))
		writing = 1;
	else
		usage();
	char *end;
	long count = strtol(argv[optind + 2], &end, 10);
	if (*end || count <= 0)
		usage();
	if (!seed)
		seed = 1; /* xorshift must not start at zero */

	int fd = open(dev, (writing ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "io-rand: open %s with O_DIRECT: %s\n", dev, strerror(errno));
		return 1;
	}
	uint64_t size = 0;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			fprintf(stderr, "io-rand: BLKGETSIZE64 on %s: %s\n", dev, strerror(errno));
			return 1;
		}
	} else {
		off_t e = lseek(fd, 0, SEEK_END);
		size = e > 0 ? (uint64_t)e : 0;
	}
	uint64_t blocks = size / BLOCK;
	if (blocks == 0) {
		fprintf(stderr, "io-rand: %s is smaller than %d bytes\n", dev, BLOCK);
		return 1;
	}

	void *buf;
	if (posix_memalign(&buf, BLOCK, BLOCK)) {
		fprintf(stderr, "io-rand: out of memory\n");
		return 1;
	}
	memset(buf, 0xa5, BLOCK);

	double t0 = now_s();
	for (long i = 0; i < count; i++) {
		off_t off = (off_t)(rng_next(&seed) % blocks) * BLOCK;
		ssize_t n;

		if (writing) {
			((uint64_t *)buf)[0] = (uint64_t)i; /* not all the same block */
			n = pwrite(fd, buf, BLOCK, off);
		} else {
			n = pread(fd, buf, BLOCK, off);
		}
		if (n != BLOCK) {
			fprintf(stderr, "io-rand: %s at offset %lld of %s: %s\n", op, (long long)off, dev,
				n < 0 ? strerror(errno) : "short transfer");
			return 1;
		}
	}
	if (writing && fdatasync(fd) < 0) {
		fprintf(stderr, "io-rand: fdatasync %s: %s\n", dev, strerror(errno));
		return 1;
	}
	double secs = now_s() - t0;
	close(fd);

	double bytes = (double)count * BLOCK;
	printf("io-rand: op=%s count=%ld bytes=%.0f secs=%.6f iops=%.1f mib_s=%.3f\n", op, count, bytes,
	       secs, secs > 0 ? count / secs : 0.0, secs > 0 ? bytes / secs / 1048576.0 : 0.0);
	return 0;
}

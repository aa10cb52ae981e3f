/*
 * exitbench: the cost of one VM exit, measured from a guest's userspace.
 * Built statically by bench/nested and run as a guest program at each level.
 *
 * Usage: exitbench [-n MAX] [-s SECS] [-p PORT] OP...
 *   OP       cpuid  CPUID leaf 0: always intercepted, handled in the
 *                   hypervisor's kernel (KVM), never reaching its VMM
 *            outb   a byte written to PORT with OUT (ioperm): intercepted and
 *                   handed to the VMM's userspace as an I/O exit
 *   -n MAX   at most MAX operations per measurement (default 1000000)
 *   -s SECS  fewer operations when MAX would take longer than about SECS
 *            seconds, judged from a calibration run (default 60)
 *   -p PORT  the port for outb (default 0x80: no device of nestvm nor of QEMU
 *            microvm sits there, so both VMMs drop the write at once)
 * Prints, per OP, one line:
 *   exitbench: op=OP count=N total_ms=T ns_per_exit=X
 * N is the number of operations actually timed, below MAX when it was cut to
 * fit SECS. Exit status: 0, 1 on a failure (ioperm refused), 2 on usage errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <time.h>
#include <unistd.h>

static uint16_t port = 0x80;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void op_cpuid(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		uint32_t a = 0, b, c = 0, d;

		__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d) : : "memory");
	}
}

static void op_outb(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		__asm__ volatile("outb %b0, %w1" : : "a"((uint8_t)i), "Nd"(port) : "memory");
}

/* Nanoseconds that N operations took. */
static double timed(void (*fn)(unsigned long), unsigned long n)
{
	double t0 = now_ns();

	fn(n);
	return now_ns() - t0;
}

static void usage(void)
{
	fprintf(stderr, "usage: exitbench [-n MAX] [-s SECS] [-p PORT] cpuid|outb...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long max = 1000000;
	double secs = 60;
	char *end;
	int opt;

	while ((opt = getopt(argc, argv, "n:s:p:")) != -1) {
		switch (opt) {
		case 'n':
			max = strtoul(optarg, &end, 0);
			if (*end || !max)
				usage();
			break;
		case 's':
			secs = strtod(optarg, &end);
			if (*end || secs <= 0)
				usage();
			break;
		case 'p': {
			unsigned long p = strtoul(optarg, &end, 0);
			if (*end || p > 0xffff)
				usage();
			port = (uint16_t)p;
			break;
		}
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();

	for (int i = optind; i < argc; i++) {
		void (*fn)(unsigned long);

		if (!strcmp(argv[i], "cpuid")) {
			fn = op_cpuid;
		} else if (!strcmp(argv[i], "outb")) {
			if (ioperm(port, 1, 1) < 0) {
				fprintf(stderr, "exitbench: ioperm(0x%x): %s\n", port, strerror(errno));
				return 1;
			}
			fn = op_outb;
		} else {
			fprintf(stderr, "exitbench: unknown operation '%s' (cpuid, outb)\n", argv[i]);
			return 2;
		}
		/* Calibrate: grow a warm-up batch until it takes 20 ms, then
		 * size the timed run to fit SECS. */
		unsigned long n = 100;
		double ns = timed(fn, n < max ? n : max);
		while (ns < 20e6 && n < max) {
			n = n * 4 < max ? n * 4 : max;
			ns = timed(fn, n);
		}
		double per = ns / (double)n;
		unsigned long count = max;
		if (per * (double)max > secs * 1e9)
			count = (unsigned long)(secs * 1e9 / per);
		if (count < 1000)
			count = max < 1000 ? max : 1000;
		ns = timed(fn, count);
		printf("exitbench: op=%s count=%lu total_ms=%.1f ns_per_exit=%.1f\n",
		       argv[i], count, ns / 1e6, ns / (double)count);
		fflush(stdout);
	}
	return 0;
}

/*
 * kvmloop: the floor under a VM exit's cost, for bench/nested.
 *
 * The least a VMM can do: one VM with one vCPU and a few bytes of code, and
 * for an I/O exit nothing but KVM_RUN again. Run on a host (or in a
 * NestedHost) it times the same operations exitbench times from inside a
 * guest one level down, so that nestvm's figures can be set against what
 * any VMM could reach at that level. Built statically by bench/nested.
 *
 * The vCPU runs in 64-bit mode with paging (one identity-mapped 2 MiB
 * page), as a Linux guest and nestvm's tiny test guest do: in an emulated
 * host an exit from a paged guest costs measurably more than one from real
 * mode (about 2.5 us of 36 at level 1 in the simulated host), and the floor
 * is meant to be the same guest under the least VMM. -r runs in real mode
 * instead.
 *
 * Usage: kvmloop [-r] [-n MAX] [-s SECS] OP...
 *   OP       cpuid  the guest runs CPUID leaf 0 MAX times (KVM handles each
 *                   in the kernel), then one OUT that ends the measurement
 *            outb   the guest writes port 0x80 in a loop; each write comes
 *                   back here as KVM_EXIT_IO, MAX times
 *   -r       real mode, no paging
 *   -n MAX   at most MAX operations per measurement (default 1000000)
 *   -s SECS  fewer operations when MAX would take longer than about SECS
 *            seconds, judged from a calibration run (default 60)
 * Prints, per OP, the line exitbench prints:
 *   kvmloop: op=OP count=N total_ms=T ns_per_exit=X
 * Exit status: 0, 1 on a KVM failure (said on stderr), 2 on usage errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE  0x10000
#define CODE_ADDR 0x1000
#define DONE_PORT 0x81
#define PML4_ADDR 0x2000        /* then the PDPT and the page directory */

static int vm_fd, vcpu_fd;
static int real_mode;
static struct kvm_run *run;
static uint8_t *mem;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "kvmloop: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void setup(void)
{
	struct kvm_userspace_memory_region region = { 0 };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	long run_size;

	if (kvm < 0)
		die("/dev/kvm");
	vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		die("KVM_CREATE_VM");
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	region.memory_size = MEM_SIZE;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0)
		die("KVM_CREATE_VCPU");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
}

/* 64-bit mode (real mode with -r) at CODE_ADDR with code, ebp = count. */
static void load(const uint8_t *code, size_t len, uint32_t count)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = CODE_ADDR, .rflags = 2, .rbp = count };

	memcpy(mem + CODE_ADDR, code, len);
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (!real_mode) {
		uint64_t *pt = (uint64_t *)(mem + PML4_ADDR);
		struct kvm_segment data = { .limit = 0xffffffff, .selector = 0x10, .type = 3,
					    .present = 1, .db = 1, .s = 1, .g = 1 };
		struct kvm_segment code64 = { .limit = 0xffffffff, .selector = 0x08, .type = 11,
					      .present = 1, .s = 1, .l = 1, .g = 1 };

		/* PML4[0] -> PDPT[0] -> PD[0]: a 2 MiB page at 0, present and writable. */
		pt[0] = (PML4_ADDR + 0x1000) | 3;
		pt[512] = (PML4_ADDR + 0x2000) | 3;
		pt[1024] = 0x83;
		sregs.cs = code64;
		sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
		sregs.cr3 = PML4_ADDR;
		sregs.cr4 = 1u << 5;                    /* PAE */
		sregs.cr0 = (1u << 31) | (1u << 4) | 1; /* PG, ET, PE */
		sregs.efer = (1u << 10) | (1u << 8);    /* LMA, LME */
	}
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
}

static void run_once(void)
{
	while (ioctl(vcpu_fd, KVM_RUN, 0) < 0)
		if (errno != EINTR)
			die("KVM_RUN");
}

/* n CPUIDs in the guest, timed from here: one KVM_RUN until the OUT. */
static double measure_cpuid(unsigned long n)
{
	static const uint8_t code16[] = {
		0x66, 0x31, 0xc0,       /* l: xor eax, eax */
		0x0f, 0xa2,             /*    cpuid */
		0x66, 0x4d,             /*    dec ebp */
		0x75, 0xf7,             /*    jnz l */
		0xe6, DONE_PORT,        /*    out DONE_PORT, al */
		0xf4,                   /*    hlt */
	};
	static const uint8_t code64[] = {
		0x31, 0xc0,             /* l: xor eax, eax */
		0x0f, 0xa2,             /*    cpuid */
		0xff, 0xcd,             /*    dec ebp */
		0x75, 0xf8,             /*    jnz l */
		0xe6, DONE_PORT,        /*    out DONE_PORT, al */
		0xf4,                   /*    hlt */
	};
	double t0;

	if (real_mode)
		load(code16, sizeof(code16), (uint32_t)n);
	else
		load(code64, sizeof(code64), (uint32_t)n);
	t0 = now_ns();
	run_once();
	if (run->exit_reason != KVM_EXIT_IO || run->io.port != DONE_PORT) {
		fprintf(stderr, "kvmloop: cpuid: unexpected exit %u\n", run->exit_reason);
		exit(1);
	}
	return now_ns() - t0;
}

/* n OUTs, each an exit to here and straight back. */
static double measure_outb(unsigned long n)
{
	static const uint8_t code[] = {        /* the same in both modes */
		0xe6, 0x80,             /* l: out 0x80, al */
		0xeb, 0xfc,             /*    jmp l */
	};
	double t0;

	load(code, sizeof(code), 0);
	t0 = now_ns();
	for (unsigned long i = 0; i < n; i++) {
		run_once();
		if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x80) {
			fprintf(stderr, "kvmloop: outb: unexpected exit %u\n", run->exit_reason);
			exit(1);
		}
	}
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	unsigned long max = 1000000;
	double secs = 60;
	int opt;

	while ((opt = getopt(argc, argv, "rn:s:")) != -1) {
		char *end;

		switch (opt) {
		case 'r':
			real_mode = 1;
			break;
		case 'n':
			max = strtoul(optarg, &end, 0);
			if (*end || !max || max > 0xffffffffUL) {
				fprintf(stderr, "kvmloop: -n wants a count from 1 to 2^32-1\n");
				return 2;
			}
			break;
		case 's':
			secs = strtod(optarg, &end);
			if (*end || secs <= 0) {
				fprintf(stderr, "kvmloop: -s wants a positive number of seconds\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: kvmloop [-r] [-n MAX] [-s SECS] cpuid|outb...\n");
			return 2;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "usage: kvmloop [-r] [-n MAX] [-s SECS] cpuid|outb...\n");
		return 2;
	}
	setup();
	for (int i = optind; i < argc; i++) {
		double (*measure)(unsigned long);
		unsigned long n = max;
		double t;

		if (!strcmp(argv[i], "cpuid"))
			measure = measure_cpuid;
		else if (!strcmp(argv[i], "outb"))
			measure = measure_outb;
		else {
			fprintf(stderr, "kvmloop: unknown operation '%s' (cpuid, outb)\n", argv[i]);
			return 2;
		}
		/* Calibrate on 1000, then cut n to fit about secs. */
		t = measure(1000);
		if (t > 0 && t / 1000 * n > secs * 1e9)
			n = (unsigned long)(secs * 1e9 / (t / 1000));
		if (n < 1000)
			n = 1000;
		t = measure(n);
		printf("kvmloop: op=%s count=%lu total_ms=%.1f ns_per_exit=%.1f\n", argv[i], n, t / 1e6, t / n);
		fflush(stdout);
	}
	return 0;
}

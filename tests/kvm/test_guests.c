/* Tier 2: tiny guests on this host's /dev/kvm, built into the test. They
 * report through port 0xe9; each test checks what arrived and why the VM
 * stopped. Without /dev/kvm every test here skips, saying so. */
#include "harness.h"
#include "vm.h"
#include "arch/x86/layout.h"
#include "fake_bzimage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

HARNESS_DEFINE;

extern const uint8_t payload_real_io[], payload_real_io_end[];
extern const uint8_t payload_long_mmio[], payload_long_mmio_end[];
extern const uint8_t payload_long_smp[], payload_long_smp_end[];
extern const uint8_t payload_long_ud[], payload_long_ud_end[];
extern const uint8_t payload_fake_kernel[], payload_fake_kernel_end[];
extern const uint8_t payload_tiny_guest[], payload_tiny_guest_end[];
extern const uint8_t payload_long_reset[], payload_long_reset_end[];
extern const uint8_t payload_long_kbd_reset[], payload_long_kbd_reset_end[];

/* The port the payloads report through. */
struct reporter {
	pthread_mutex_t lock;
	uint32_t values[64];
	unsigned int n;
	uint8_t reply;
};

static void reporter_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct reporter *r = opaque;
	uint32_t v = 0;

	(void)offset;
	pthread_mutex_lock(&r->lock);
	if (is_write) {
		memcpy(&v, data, len > 4 ? 4 : len);
		if (r->n < 64)
			r->values[r->n++] = v;
	} else {
		memset(data, r->reply, len);
	}
	pthread_mutex_unlock(&r->lock);
}

struct mmio_dev {
	uint64_t written;
	uint32_t wlen;
};

static void mmio_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct mmio_dev *d = opaque;

	if (is_write && offset == 0) {
		memcpy(&d->written, data, len);
		d->wlen = len;
	} else if (!is_write && offset == 8) {
		uint64_t v = 0xcafef00d;
		memcpy(data, &v, len);
	}
}

static void need_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		SKIP("/dev/kvm unavailable here: %s", strerror(errno));
	close(fd);
}

static struct vm *payload_vm(const uint8_t *start, const uint8_t *end, bool real_mode,
			     unsigned int ncpus, bool irqchip, int console,
			     struct reporter *rep)
{
	static struct vm_payload pl;
	struct vm_config cfg = {
		.mem_size = 32 << 20, .ncpus = ncpus, .payload = &pl,
		.no_irqchip = !irqchip, .console_out = console,
	};
	struct vm *vm = calloc(1, sizeof(*vm));
	int r;

	pl = (struct vm_payload){ start, (size_t)(end - start), 0x1000, 0x1000, real_mode };
	CHECK(vm);
	r = vm_create(vm, &cfg);
	if (r < 0)
		FAILF("vm_create: %s", vm->err);
	pthread_mutex_init(&rep->lock, NULL);
	CHECK_EQ(bus_register(&vm->pio, 0xe9, 4, "report", reporter_io, rep), 0);
	return vm;
}

static void test_real_mode_port_io(void)
{
	struct reporter rep = { .reply = 0x10 };
	struct vm *vm;

	need_kvm();
	vm = payload_vm(payload_real_io, payload_real_io_end, true, 1, false, -1, &rep);
	CHECK_EQ(vm_run(vm), VM_STOP_HALT);
	CHECK_EQ(rep.n, 2);
	CHECK_EQ(rep.values[0], 0x42);
	CHECK_EQ(rep.values[1], 0x11);
	vm_destroy(vm);
	free(vm);
}

static void test_long_mode_mmio(void)
{
	struct reporter rep = { 0 };
	struct mmio_dev dev = { 0 };
	struct vm *vm;

	need_kvm();
	vm = payload_vm(payload_long_mmio, payload_long_mmio_end, false, 1, false, -1, &rep);
	CHECK_EQ(bus_register(&vm->mmio, LAYOUT_VIRTIO_MMIO_ADDR, 0x1000, "test", mmio_io, &dev), 0);
	CHECK_EQ(vm_run(vm), VM_STOP_HALT);
	CHECK_EQ(dev.wlen, 8);
	CHECK(dev.written == 0x1122334455667788ULL);
	CHECK_EQ(rep.n, 1);
	CHECK_EQ(rep.values[0], 0xcafef00d);
	vm_destroy(vm);
	free(vm);
}

static void test_several_vcpus(void)
{
	struct reporter rep = { 0 };
	unsigned int seen = 0;
	struct vm *vm;

	need_kvm();
	vm = payload_vm(payload_long_smp, payload_long_smp_end, false, 4, false, -1, &rep);
	CHECK_EQ(vm->ncpus, 4);
	CHECK_EQ(vm_run(vm), VM_STOP_HALT);
	CHECK_EQ(rep.n, 4);
	for (unsigned int i = 0; i < rep.n; i++) {
		CHECK(rep.values[i] < 4);
		seen |= 1u << rep.values[i];
	}
	CHECK_EQ(seen, 0xf);
	vm_destroy(vm);
	free(vm);
}

static void test_triple_fault_is_diagnosed(void)
{
	struct reporter rep = { 0 };
	struct vm *vm;

	need_kvm();
	vm = payload_vm(payload_long_ud, payload_long_ud_end, false, 1, false, -1, &rep);
	CHECK_EQ(vm_run(vm), VM_STOP_FAULT);
	CHECK(strstr(vm->diag, "triple fault"));
	CHECK(strstr(vm->diag, "rip="));
	vm_destroy(vm);
	free(vm);
}

/* A fake bzImage around payload_fake_kernel: the boot-protocol loader, the
 * zero page, COM1 output and ACPI S5 poweroff, with the in-kernel irqchip. */
static void test_linux_boot_protocol(void)
{
	static const char cmdline[] = "console=ttyS0 nestvm.test=1";
	static const uint8_t initrd[12345] = { 1 };
	struct reporter rep = { 0 };
	struct vm_config cfg;
	struct vm *vm;
	char out[256] = { 0 };
	size_t klen;
	uint8_t *kernel;
	int pipefd[2];
	ssize_t n;

	need_kvm();
	kernel = fake_bzimage(payload_fake_kernel,
			      (size_t)(payload_fake_kernel_end - payload_fake_kernel), 0, &klen);
	CHECK(kernel);
	CHECK_EQ(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);
	cfg = (struct vm_config){
		.mem_size = 64 << 20, .ncpus = 1, .kernel = BOOT_BLOB_MEM(kernel, klen),
		.initrd = BOOT_BLOB_MEM(initrd, sizeof(initrd)), .cmdline = cmdline,
		.console_out = pipefd[1],
	};
	vm = calloc(1, sizeof(*vm));
	CHECK(vm);
	if (vm_create(vm, &cfg) < 0)
		FAILF("vm_create: %s", vm->err);
	pthread_mutex_init(&rep.lock, NULL);
	CHECK_EQ(bus_register(&vm->pio, 0xe9, 4, "report", reporter_io, &rep), 0);
	CHECK_EQ(vm_run(vm), VM_STOP_POWEROFF);
	n = read(pipefd[0], out, sizeof(out) - 1);
	CHECK(n > 0);
	CHECK_STR(out, cmdline);
	CHECK_EQ(rep.n, 3);
	CHECK_EQ(rep.values[0], 3);                     /* low RAM, BIOS hole, high RAM */
	CHECK_EQ(rep.values[1], sizeof(initrd));
	CHECK_EQ(rep.values[2], LAYOUT_ACPI_ADDR);
	/* The RSDP the guest was pointed at is really there. */
	CHECK(!memcmp(guestmem_ptr(&vm->mem, LAYOUT_ACPI_ADDR, 8), "RSD PTR ", 8));
	vm_destroy(vm);
	free(vm);
	free(kernel);
	close(pipefd[0]);
	close(pipefd[1]);
}

/* The tiny guest's exit loop (bench/nested's like-for-like exit cost):
 * "xoN" writes port 0x80 exactly N times, "xcN" runs CPUID and writes
 * nothing; both print nothing and power off. */
static void test_tiny_guest_exit_loop(void)
{
	static const struct { const char *cmdline; unsigned int writes; } cases[] = {
		{ "xo7", 7 }, { "xo0", 0 }, { "xo12", 12 }, { "xc5", 0 },
	};
	size_t klen;
	uint8_t *kernel;

	need_kvm();
	kernel = fake_bzimage(payload_tiny_guest, (size_t)(payload_tiny_guest_end - payload_tiny_guest), 0, &klen);
	CHECK(kernel);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reporter rep = { 0 };
		struct vm_config cfg;
		struct vm *vm;
		char out[64] = { 0 };
		int pipefd[2];

		CHECK_EQ(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);
		cfg = (struct vm_config){
			.mem_size = 32 << 20, .ncpus = 1, .kernel = BOOT_BLOB_MEM(kernel, klen),
			.cmdline = cases[i].cmdline, .console_out = pipefd[1],
		};
		vm = calloc(1, sizeof(*vm));
		CHECK(vm);
		if (vm_create(vm, &cfg) < 0)
			FAILF("vm_create: %s", vm->err);
		pthread_mutex_init(&rep.lock, NULL);
		CHECK_EQ(bus_register(&vm->pio, 0x80, 1, "loop", reporter_io, &rep), 0);
		CHECK_EQ(vm_run(vm), VM_STOP_POWEROFF);
		if (rep.n != cases[i].writes)
			FAILF("\"%s\": %u writes to port 0x80, want %u", cases[i].cmdline, rep.n, cases[i].writes);
		CHECK_EQ(read(pipefd[0], out, sizeof(out)), -1);        /* nothing on the console */
		vm_destroy(vm);
		free(vm);
		close(pipefd[0]);
		close(pipefd[1]);
	}
	free(kernel);
}

/* Both ways a guest reboots end the machine with VM_STOP_RESET. */
static void test_guest_reset(void)
{
	static const struct { const uint8_t *start, *end; } cases[] = {
		{ payload_long_reset, payload_long_reset_end },
		{ payload_long_kbd_reset, payload_long_kbd_reset_end },
	};

	need_kvm();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reporter rep = { 0 };
		struct vm *vm = payload_vm(cases[i].start, cases[i].end, false, 1, true, -1, &rep);

		CHECK_EQ(vm_run(vm), VM_STOP_RESET);
		vm_destroy(vm);
		free(vm);
	}
}

/* Dynamic memory: the guest's RAM is the maximum, a virtio-balloon sits in
 * the last virtio-mmio window asking for the startup amount, and targets are
 * clamped to the bounds. */
static void test_dynamic_memory_balloon(void)
{
	struct vm_config cfg;
	struct virtio_balloon_info info;
	struct vm *vm;
	size_t klen;
	uint8_t *kernel;
	uint64_t win, applied = 0;
	uint32_t v = 0;

	need_kvm();
	kernel = fake_bzimage(payload_fake_kernel,
			      (size_t)(payload_fake_kernel_end - payload_fake_kernel), 0, &klen);
	CHECK(kernel);
	cfg = (struct vm_config){
		.mem_size = 128 << 20, .ncpus = 1, .kernel = BOOT_BLOB_MEM(kernel, klen),
		.cmdline = "console=ttyS0", .console_out = -1, .rng = true,
		.dynamic_memory = true, .memory_min = 32 << 20, .memory_startup = 64 << 20,
	};
	vm = calloc(1, sizeof(*vm));
	CHECK(vm);
	if (vm_create(vm, &cfg) < 0)
		FAILF("vm_create: %s", vm->err);
	CHECK_EQ(vm->mem.total, 128 << 20);
	CHECK(vm->balloon);
	CHECK_EQ(vm->nvirtio, 2);
	CHECK(vm->vdev[1] == vm->balloon);
	win = LAYOUT_VIRTIO_MMIO_ADDR + LAYOUT_VIRTIO_MMIO_SIZE;
	bus_access(&vm->mmio, win + 0x008, &v, 4, false);
	CHECK_EQ(v, 5);                                 /* device ID: balloon */
	bus_access(&vm->mmio, win + 0x100, &v, 4, false);
	CHECK_EQ(v, (64 << 20) / 4096);                 /* num_pages: max - startup */
	CHECK_EQ(vm_memory_info(vm, &info), 0);
	CHECK_EQ(info.target, 64 << 20);
	CHECK_EQ(vm_set_memory_target(vm, 1, &applied), 0);
	CHECK_EQ(applied, 32 << 20);
	CHECK_EQ(vm_set_memory_target(vm, 1ULL << 40, &applied), 0);
	CHECK_EQ(applied, 128 << 20);
	bus_access(&vm->mmio, win + 0x100, &v, 4, false);
	CHECK_EQ(v, 0);
	vm_destroy(vm);

	/* Bounds in the wrong order are refused before anything is built. */
	cfg.memory_min = 96 << 20;
	CHECK_EQ(vm_create(vm, &cfg), -EINVAL);
	CHECK(strstr(vm->err, "minimum <= startup <= maximum"));
	cfg.memory_min = 32 << 20;
	cfg.memory_startup = 256 << 20;
	CHECK_EQ(vm_create(vm, &cfg), -EINVAL);

	/* Without dynamic memory there is no balloon to ask. */
	cfg.dynamic_memory = false;
	if (vm_create(vm, &cfg) < 0)
		FAILF("vm_create: %s", vm->err);
	CHECK(!vm->balloon);
	CHECK_EQ(vm_set_memory_target(vm, 64 << 20, &applied), -ENOTSUP);
	CHECK_EQ(vm_memory_info(vm, &info), -ENOTSUP);
	vm_destroy(vm);
	free(vm);
	free(kernel);
}

static void test_probe_measures_speed(void)
{
	double mips = -1;

	need_kvm();
	CHECK_EQ(vm_probe_speed(NULL, &mips), 0);
	CHECK(mips > 0);
	printf("note: this host runs guest kernel code at %.1f M instructions/s (%s)\n", mips,
	       mips < VM_PROBE_MIN_MIPS ? "emulated" : "hardware speed");
}

static void test_missing_kvm_device(void)
{
	struct vm_payload pl = { payload_long_ud, 1, 0x1000, 0x1000, false };
	struct vm_config cfg = {
		.mem_size = 32 << 20, .ncpus = 1, .payload = &pl, .console_out = -1,
		.kvm_path = "/nonexistent/kvm",
	};
	struct vm *vm = calloc(1, sizeof(*vm));

	CHECK(vm);
	CHECK_EQ(vm_create(vm, &cfg), -ENOENT);
	CHECK(strstr(vm->err, "/nonexistent/kvm: no such device"));
	free(vm);
}

int main(void)
{
	RUN(test_missing_kvm_device);
	RUN(test_real_mode_port_io);
	RUN(test_long_mode_mmio);
	RUN(test_several_vcpus);
	RUN(test_triple_fault_is_diagnosed);
	RUN(test_linux_boot_protocol);
	RUN(test_guest_reset);
	RUN(test_tiny_guest_exit_loop);
	RUN(test_dynamic_memory_balloon);
	RUN(test_probe_measures_speed);
	return HARNESS_END();
}

/* Tier 2: a tiny hostile guest on this host's /dev/kvm (payload_long_hostile
 * in payloads.S). It drives the CMOS clock's date to its extremes, writes
 * a burst to the serial port through a console hub and its log, and hands the
 * virtio-rng indirect tables that span its RAM and loop, resetting the
 * device between attacks. The VMM must stay responsive throughout (a
 * thread reading the device's registers is answered within a bound), the
 * clock must show a date its registers can hold, and the device must serve
 * a good request after the last reset. Without /dev/kvm it skips. */
#include "harness.h"
#include "console.h"
#include "vm.h"
#include "arch/x86/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

HARNESS_DEFINE;

extern const uint8_t payload_long_hostile[], payload_long_hostile_end[];

#define HOSTILE_ROUNDS     4
#define STATUS_NEEDS_RESET 0x40
/* The longest a register read may wait on the device, in a simulated host
 * too: a walk of the table's 63 million entries takes seconds there. */
#define MAX_STALL_NS       (250ULL * 1000 * 1000)

struct reporter {
	pthread_mutex_t lock;
	uint32_t values[16];
	unsigned int n;
};

static void reporter_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct reporter *r = opaque;
	uint32_t v = 0;

	(void)offset;
	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	memcpy(&v, data, len > 4 ? 4 : len);
	pthread_mutex_lock(&r->lock);
	if (r->n < 16)
		r->values[r->n++] = v;
	pthread_mutex_unlock(&r->lock);
}

/* Reads the rng's status register from a thread of its own, as another
 * vCPU would while the guest runs, and keeps the longest wait: a walk done
 * under the device's locks shows as a long one. */
struct prober {
	struct vm *vm;
	_Atomic bool stop;
	uint64_t reads, max_ns;
	uint64_t control_max_ns;        /* the same wait for nothing: this host's own stalls */
};

static void *prober_thread(void *arg)
{
	struct prober *p = arg;
	struct timespec pause = { 0, 1000000 };

	while (!atomic_load(&p->stop)) {
		uint64_t t0 = util_now_ns(), dt;
		uint32_t v = 0;

		bus_access(&p->vm->mmio, LAYOUT_VIRTIO_MMIO_ADDR + 0x70, &v, 4, false);
		dt = util_now_ns() - t0;
		if (dt > p->max_ns)
			p->max_ns = dt;
		t0 = util_now_ns();
		for (volatile int i = 0; i < 100; i++)
			;
		dt = util_now_ns() - t0;
		if (dt > p->control_max_ns)
			p->control_max_ns = dt;
		p->reads++;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static void no_input(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
}

static int bcd(uint8_t v)
{
	if ((v & 0x0f) > 9 || (v >> 4) > 9)
		FAILF("the clock shows 0x%02x, not BCD", v);
	return (v >> 4) * 10 + (v & 0x0f);
}

static void test_hostile_guest(void)
{
	static struct vm_payload pl;
	struct reporter rep = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct prober prober = { 0 };
	char dir[] = "/tmp/nestvm-test-hostile-XXXXXX", log_path[64];
	struct console_hub *hub = NULL;
	struct vm_config cfg;
	struct stat st;
	struct vm *vm;
	pthread_t probe;
	uint64_t t0;
	int fd, com1, year;

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		SKIP("/dev/kvm unavailable here: %s", strerror(errno));
	close(fd);

	CHECK(mkdtemp(dir));
	snprintf(log_path, sizeof(log_path), "%s/console.log", dir);
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(console_hub_start(&hub, fd, log_path, NULL, no_input, NULL, &com1), 0);

	pl = (struct vm_payload){ payload_long_hostile,
				  (size_t)(payload_long_hostile_end - payload_long_hostile), 0x1000, 0x1000, false };
	cfg = (struct vm_config){ .mem_size = 1 << 30, .ncpus = 1, .payload = &pl, .rng = true,
				  .console_out = com1 };
	vm = calloc(1, sizeof(*vm));
	CHECK(vm);
	if (vm_create(vm, &cfg) < 0)
		FAILF("vm_create: %s", vm->err);
	CHECK_EQ(bus_register(&vm->pio, 0xe9, 4, "report", reporter_io, &rep), 0);
	/* virtio-rng serves a request with getrandom(), which on a host fresh
	 * from boot (a simulated one) waits seconds for its pool: wait here,
	 * not in the middle of what is measured. */
	{
		uint8_t seed[16];

		CHECK_EQ(getrandom(seed, sizeof(seed), 0), (ssize_t)sizeof(seed));
	}

	prober.vm = vm;
	CHECK_EQ(pthread_create(&probe, NULL, prober_thread, &prober), 0);
	t0 = util_now_ns();
	CHECK_EQ(vm_run(vm), VM_STOP_POWEROFF);
	atomic_store(&prober.stop, true);
	pthread_join(probe, NULL);
	printf("note: hostile guest ran %.2f s; %llu register reads, the longest %.3f ms "
	       "(a loop of nothing: %.3f ms)\n",
	       (double)(util_now_ns() - t0) / 1e9, (unsigned long long)prober.reads,
	       (double)prober.max_ns / 1e6, (double)prober.control_max_ns / 1e6);

	CHECK_EQ(rep.n, 1 + HOSTILE_ROUNDS + 2);
	year = bcd((uint8_t)(rep.values[0] >> 8)) * 100 + bcd((uint8_t)rep.values[0]);
	CHECK(year >= 0 && year <= 9999);
	for (unsigned int i = 1; i <= HOSTILE_ROUNDS; i++)
		if (!(rep.values[i] & STATUS_NEEDS_RESET))
			FAILF("round %u: status 0x%x, the device did not refuse the table", i, rep.values[i]);
	CHECK_EQ(rep.values[1 + HOSTILE_ROUNDS], 64);    /* after the reset: 64 random bytes */
	CHECK_EQ(rep.values[2 + HOSTILE_ROUNDS], 1);
	CHECK(!virtio_dev_is_broken(vm->vdev[0]));
	if (prober.max_ns > MAX_STALL_NS)
		FAILF("a register read waited %.3f s on the device", (double)prober.max_ns / 1e9);

	vm_destroy(vm);
	free(vm);
	console_hub_stop(hub);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, 4 << 10);                   /* the flood, whole */
	close(fd);
	harness_remove_tree(dir);
}

int main(void)
{
	RUN(test_hostile_guest);
	return HARNESS_END();
}

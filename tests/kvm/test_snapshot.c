/* Tier 2: a whole machine saved to a file while it runs and built anew from
 * it: the guest's counter, kept in its memory, goes on from exactly where it
 * was, with the irqchip and a virtio device in the state. A state is refused
 * by a machine of another shape, and when cut short. */
#include "harness.h"
#include "vm.h"
#include "vmstate.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

HARNESS_DEFINE;

extern const uint8_t payload_long_memcount[], payload_long_memcount_end[];

struct ticker {
	_Atomic uint32_t last, first;
};

static void ticker_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct ticker *t = opaque;
	uint32_t v = 0, zero = 0;

	(void)offset;
	if (!is_write)
		return;
	memcpy(&v, data, len > 4 ? 4 : len);
	atomic_compare_exchange_strong(&t->first, &zero, v);
	atomic_store(&t->last, v);
}

static void *run_thread(void *arg)
{
	return (void *)(uintptr_t)vm_run(arg);
}

static uint32_t wait_for(struct ticker *t, uint32_t at_least)
{
	for (int i = 0; i < 5000 && atomic_load(&t->last) < at_least; i++)
		usleep(1000);
	return atomic_load(&t->last);
}

static void need_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		SKIP("/dev/kvm unavailable here: %s", strerror(errno));
	close(fd);
}

static struct vm *make_vm(unsigned int ncpus, bool restore, struct ticker *t)
{
	static struct vm_payload pl;
	struct vm_config cfg = {
		.mem_size = 32 << 20, .ncpus = ncpus, .console_out = -1, .rng = true,
		.payload = restore ? NULL : &pl, .restore = restore,
	};
	struct vm *vm = calloc(1, sizeof(*vm));

	pl = (struct vm_payload){ payload_long_memcount,
		(size_t)(payload_long_memcount_end - payload_long_memcount), 0x1000, 0x1000, false };
	CHECK(vm);
	if (vm_create(vm, &cfg) < 0)
		FAILF("vm_create: %s", vm->err);
	CHECK_EQ(bus_register(&vm->pio, 0xe9, 4, "tick", ticker_io, t), 0);
	return vm;
}

static void destroy(struct vm *vm)
{
	vm_destroy(vm);
	free(vm);
}

/* Runs a machine until its counter passes 200, pauses it and saves it to
 * fd; returns the last count before the pause. */
static uint32_t save_running(int fd)
{
	struct ticker t = { 0 };
	struct vm *vm = make_vm(1, false, &t);
	struct snap_writer w;
	char err[512];
	pthread_t th;
	uint32_t last;

	CHECK_EQ(pthread_create(&th, NULL, run_thread, vm), 0);
	CHECK(wait_for(&t, 200) >= 200);
	vm_pause(vm);
	last = atomic_load(&t.last);
	snap_writer_init(&w, fd);
	if (vmstate_save(vm, "memory = 32M\n", &w, err, sizeof(err)) < 0)
		FAILF("save: %s", err);
	/* Paused, nothing moved while it was saved. */
	CHECK_EQ(atomic_load(&t.last), last);
	vm_request_stop(vm, VM_STOP_REQUEST, NULL);
	CHECK_EQ(pthread_join(th, NULL), 0);
	destroy(vm);
	printf("note: saved at count %u, %llu bytes of guest memory\n", last,
	       (unsigned long long)w.page_bytes);
	/* The guest touched a few pages of its 32 MiB: only those are saved. */
	CHECK(w.page_bytes > 0 && w.page_bytes < (1 << 20));
	return last;
}

static int scratch(void)
{
	char path[] = "/tmp/nestvm-vmstate-XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	unlink(path);
	return fd;
}

static void test_save_and_restore_running(void)
{
	struct ticker t = { 0 };
	struct vmstate_load l;
	struct vm *vm;
	char err[512];
	pthread_t th;
	uint32_t last;
	int fd;

	need_kvm();
	fd = scratch();
	last = save_running(fd);
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	if (vmstate_load_head(&l, fd, err, sizeof(err)) < 0)
		FAILF("load head: %s", err);
	CHECK_STR(l.config_text, "memory = 32M\n");
	CHECK_EQ(l.machine.ncpus, 1);
	CHECK(l.machine.irqchip);
	vm = make_vm(1, true, &t);
	if (vmstate_load_rest(&l, vm, err, sizeof(err)) < 0)
		FAILF("load: %s", err);
	vmstate_load_free(&l);
	CHECK_EQ(pthread_create(&th, NULL, run_thread, vm), 0);
	CHECK(wait_for(&t, last + 100) >= last + 100);
	/* Exactly where it stopped: the next count, not 1, not a skip. */
	CHECK_EQ(atomic_load(&t.first), last + 1);
	vm_request_stop(vm, VM_STOP_REQUEST, NULL);
	CHECK_EQ(pthread_join(th, NULL), 0);
	destroy(vm);
	close(fd);
}

static void test_refused_by_another_machine_or_cut(void)
{
	struct ticker t = { 0 };
	struct vmstate_load l;
	struct vm *vm;
	char err[512];
	off_t len;
	int fd;

	need_kvm();
	fd = scratch();
	(void)save_running(fd);
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	CHECK_EQ(vmstate_load_head(&l, fd, err, sizeof(err)), 0);
	vm = make_vm(2, true, &t);
	CHECK_EQ(vmstate_load_rest(&l, vm, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "1 vCPUs") && strstr(err, "this one has 2"));
	vmstate_load_free(&l);
	destroy(vm);

	len = lseek(fd, 0, SEEK_END);
	CHECK_EQ(ftruncate(fd, len - 100), 0);
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	CHECK_EQ(vmstate_load_head(&l, fd, err, sizeof(err)), 0);
	vm = make_vm(1, true, &t);
	CHECK(vmstate_load_rest(&l, vm, err, sizeof(err)) < 0);
	CHECK(strstr(err, "truncated"));
	vmstate_load_free(&l);
	destroy(vm);
	close(fd);
}

int main(void)
{
	RUN(test_save_and_restore_running);
	RUN(test_refused_by_another_machine_or_cut);
	return HARNESS_END();
}

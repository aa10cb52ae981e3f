/* Tier 2: a vCPU's whole state, nested state included where KVM has it, is
 * saved from one VM and resumed in another, which carries on exactly where
 * the first stopped. */
#include "harness.h"
#include "vm.h"
#include "arch/x86/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <pthread.h>
#include <unistd.h>

HARNESS_DEFINE;

extern const uint8_t payload_long_count[], payload_long_count_end[];
extern const uint8_t payload_long_forever[], payload_long_forever_end[];

struct counter {
	struct vm *vm;
	uint32_t values[8];
	unsigned int n;
	unsigned int stop_after;      /* request a stop after this many reports */
};

static void counter_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct counter *c = opaque;
	uint32_t v = 0;

	(void)offset;
	if (!is_write)
		return;
	memcpy(&v, data, len > 4 ? 4 : len);
	if (c->n < 8)
		c->values[c->n++] = v;
	if (c->n == c->stop_after)
		vm_request_stop(c->vm, VM_STOP_REQUEST, NULL);
}

static struct vm *count_vm(bool irqchip, struct counter *c)
{
	static struct vm_payload pl;
	struct vm_config cfg = {
		.mem_size = 32 << 20, .ncpus = 1, .payload = &pl,
		.no_irqchip = !irqchip, .console_out = -1,
	};
	struct vm *vm = calloc(1, sizeof(*vm));

	pl = (struct vm_payload){ payload_long_count,
		(size_t)(payload_long_count_end - payload_long_count), 0x1000, 0x1000, false };
	CHECK(vm);
	if (vm_create(vm, &cfg) < 0)
		FAILF("vm_create: %s", vm->err);
	c->vm = vm;
	CHECK_EQ(bus_register(&vm->pio, 0xe9, 4, "count", counter_io, c), 0);
	return vm;
}

static void save_and_resume(bool irqchip)
{
	struct counter a = { .stop_after = 1 }, b = { 0 };
	struct x86_vcpu_state st;
	struct kvm_msr_list *msrs = NULL;
	struct vm *va, *vb;
	int r;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		SKIP("/dev/kvm unavailable here: %s", strerror(errno));
	close(fd);
	va = count_vm(irqchip, &a);
	CHECK_EQ(vm_run(va), VM_STOP_REQUEST);
	CHECK_EQ(a.n, 1);
	CHECK_EQ(kvm_get_msr_index_list(&va->sys, &msrs), 0);
	CHECK(msrs->nmsrs > 0);
	CHECK_EQ(x86_vcpu_state_save(&va->vcpus[0].kvm, msrs, va->nested_state_size, irqchip, &st), 0);
	CHECK(st.msrs && st.msrs->nmsrs > 0);
	if (va->nested_state_size > 0) {
		CHECK(st.nested);
		CHECK(st.nested->size >= sizeof(*st.nested));
		CHECK(!x86_vcpu_state_in_guest_mode(&st));
		printf("note: nested state saved (%u bytes)\n", st.nested->size);
	} else {
		CHECK(!st.nested);
		printf("note: KVM here has no KVM_CAP_NESTED_STATE; nested state not exercised\n");
	}

	vb = count_vm(irqchip, &b);
	/* The second VM gets the first one's memory and vCPU: a resume. */
	memcpy(vb->mem.regions[0].host, va->mem.regions[0].host, va->mem.regions[0].size);
	r = x86_vcpu_state_restore(&vb->vcpus[0].kvm, &st);
	if (r < 0)
		FAILF("restore: %s failed: %s", kvm_last_op(), strerror(-r));
	CHECK_EQ(vm_run(vb), VM_STOP_POWEROFF);
	CHECK_EQ(b.n, 2);
	CHECK_EQ(b.values[0], 2);
	CHECK_EQ(b.values[1], 3);

	x86_vcpu_state_free(&st);
	free(msrs);
	vm_destroy(va);
	vm_destroy(vb);
	free(va);
	free(vb);
}

static void test_resume_without_irqchip(void)
{
	save_and_resume(false);
}

static void test_resume_with_irqchip(void)
{
	save_and_resume(true);
}

struct ticker {
	_Atomic uint32_t last;
};

static void ticker_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct ticker *t = opaque;
	uint32_t v = 0;

	(void)offset;
	if (is_write) {
		memcpy(&v, data, len > 4 ? 4 : len);
		atomic_store(&t->last, v);
	}
}

static void *run_thread(void *arg)
{
	return (void *)(uintptr_t)vm_run(arg);
}

static uint32_t wait_for_progress(struct ticker *t, uint32_t from)
{
	for (int i = 0; i < 2000 && atomic_load(&t->last) <= from; i++)
		usleep(1000);
	return atomic_load(&t->last);
}

/* Paused vCPUs make no progress; resumed ones carry on from where they were. */
static void test_pause_and_resume(void)
{
	static struct vm_payload pl;
	struct vm_config cfg = {
		.mem_size = 32 << 20, .ncpus = 2, .payload = &pl, .no_irqchip = true, .console_out = -1,
	};
	struct ticker t = { 0 };
	struct vm *vm;
	pthread_t th;
	void *why;
	uint32_t a, b;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		SKIP("/dev/kvm unavailable here: %s", strerror(errno));
	close(fd);
	/* Allocated once the test runs: a skipped test leaves nothing behind. */
	vm = calloc(1, sizeof(*vm));
	pl = (struct vm_payload){ payload_long_forever,
		(size_t)(payload_long_forever_end - payload_long_forever), 0x1000, 0x1000, false };
	CHECK(vm);
	if (vm_create(vm, &cfg) < 0)
		FAILF("vm_create: %s", vm->err);
	CHECK_EQ(bus_register(&vm->pio, 0xe9, 4, "tick", ticker_io, &t), 0);
	CHECK_EQ(pthread_create(&th, NULL, run_thread, vm), 0);
	CHECK(wait_for_progress(&t, 0) > 0);
	vm_pause(vm);
	CHECK(vm_is_paused(vm));
	CHECK_EQ(vm->parked, 2);
	a = atomic_load(&t.last);
	usleep(50000);
	b = atomic_load(&t.last);
	CHECK_EQ(a, b);
	vm_resume(vm);
	CHECK(wait_for_progress(&t, b) > b);
	vm_request_stop(vm, VM_STOP_REQUEST, NULL);
	CHECK_EQ(pthread_join(th, &why), 0);
	CHECK_EQ((uintptr_t)why, VM_STOP_REQUEST);
	vm_destroy(vm);
	free(vm);
}

int main(void)
{
	RUN(test_pause_and_resume);
	RUN(test_resume_without_irqchip);
	RUN(test_resume_with_irqchip);
	return HARNESS_END();
}

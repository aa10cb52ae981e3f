/* The one place that talks to KVM. Each wrapper names its ioctl so that a
 * failure can be reported as "KVM_CREATE_VM: Permission denied". */
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static __thread const char *last_op = "none";

const char *kvm_last_op(void)
{
	return last_op;
}

/* ioctl that retries on EINTR unless told not to, and returns -errno. */
static int kvm_do_ioctl(int fd, unsigned long req, void *arg, const char *name)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR && req != KVM_RUN);
	if (r < 0) {
		last_op = name;
		return -errno;
	}
	return r;
}

#define KVM_IOCTL(fd, req, arg) kvm_do_ioctl((fd), (req), (void *)(arg), #req)

int kvm_sys_open(struct kvm_sys *sys, const char *path)
{
	int r;

	sys->fd = open(path, O_RDWR | O_CLOEXEC);
	if (sys->fd < 0) {
		last_op = "open";
		return -errno;
	}
	r = KVM_IOCTL(sys->fd, KVM_GET_API_VERSION, 0);
	if (r >= 0 && r != KVM_API_VERSION)
		r = -EPROTO;
	if (r >= 0)
		r = KVM_IOCTL(sys->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < 0) {
		close(sys->fd);
		sys->fd = -1;
		return r;
	}
	sys->vcpu_mmap_size = r;
	return 0;
}

void kvm_sys_close(struct kvm_sys *sys)
{
	if (sys->fd >= 0)
		close(sys->fd);
	sys->fd = -1;
}

int kvm_check_extension(struct kvm_sys *sys, long cap)
{
	return KVM_IOCTL(sys->fd, KVM_CHECK_EXTENSION, cap);
}

int kvm_get_supported_cpuid(struct kvm_sys *sys, struct kvm_cpuid2 **out)
{
	unsigned int n = 64;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		int r;

		if (!c)
			return -ENOMEM;
		c->nent = n;
		r = KVM_IOCTL(sys->fd, KVM_GET_SUPPORTED_CPUID, c);
		if (r >= 0) {
			*out = c;
			return 0;
		}
		free(c);
		if (r != -E2BIG || n >= 4096)
			return r;
		n *= 2;
	}
}

int kvm_vm_create(struct kvm_sys *sys, struct kvm_vm *vm)
{
	int r = KVM_IOCTL(sys->fd, KVM_CREATE_VM, 0);

	if (r < 0)
		return r;
	vm->sys = sys;
	vm->fd = r;
	return 0;
}

void kvm_vm_destroy(struct kvm_vm *vm)
{
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
}

int kvm_vm_check_extension(struct kvm_vm *vm, long cap)
{
	return KVM_IOCTL(vm->fd, KVM_CHECK_EXTENSION, cap);
}

int kvm_vm_set_memory(struct kvm_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *host)
{
	return kvm_vm_set_memory_flags(vm, slot, gpa, size, host, 0);
}

int kvm_vm_set_tss_addr(struct kvm_vm *vm, uint64_t addr)
{
	return KVM_IOCTL(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)addr);
}

int kvm_vm_set_identity_map_addr(struct kvm_vm *vm, uint64_t addr)
{
	return KVM_IOCTL(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &addr);
}

int kvm_vm_create_irqchip(struct kvm_vm *vm)
{
	return KVM_IOCTL(vm->fd, KVM_CREATE_IRQCHIP, 0);
}

int kvm_vm_create_pit2(struct kvm_vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	return KVM_IOCTL(vm->fd, KVM_CREATE_PIT2, &pit);
}

int kvm_vm_irq_line(struct kvm_vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };

	return KVM_IOCTL(vm->fd, KVM_IRQ_LINE, &irq);
}

int kvm_vm_enable_cap(struct kvm_vm *vm, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap ec = { .cap = cap, .args = { arg0 } };

	return KVM_IOCTL(vm->fd, KVM_ENABLE_CAP, &ec);
}

int kvm_vcpu_create(struct kvm_vm *vm, unsigned int id, struct kvm_vcpu *vcpu)
{
	void *run;
	int fd = KVM_IOCTL(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);

	if (fd < 0)
		return fd;
	run = mmap(NULL, (size_t)vm->sys->vcpu_mmap_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (run == MAP_FAILED) {
		int err = -errno;
		last_op = "mmap(kvm_run)";
		close(fd);
		return err;
	}
	vcpu->fd = fd;
	vcpu->id = id;
	vcpu->run = run;
	vcpu->run_size = vm->sys->vcpu_mmap_size;
	return 0;
}

void kvm_vcpu_destroy(struct kvm_vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, (size_t)vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

int kvm_vcpu_run(struct kvm_vcpu *vcpu)
{
	int r = KVM_IOCTL(vcpu->fd, KVM_RUN, 0);

	return r < 0 ? r : 0;
}

int kvm_vcpu_get_regs(struct kvm_vcpu *vcpu, struct kvm_regs *regs)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_REGS, regs);
}

int kvm_vcpu_set_regs(struct kvm_vcpu *vcpu, const struct kvm_regs *regs)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_REGS, regs);
}

int kvm_vcpu_get_sregs(struct kvm_vcpu *vcpu, struct kvm_sregs *sregs)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_SREGS, sregs);
}

int kvm_vcpu_set_sregs(struct kvm_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_SREGS, sregs);
}

int kvm_vcpu_set_fpu(struct kvm_vcpu *vcpu, const struct kvm_fpu *fpu)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_FPU, fpu);
}

int kvm_vcpu_set_cpuid2(struct kvm_vcpu *vcpu, const struct kvm_cpuid2 *cpuid)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_CPUID2, cpuid);
}

int kvm_vcpu_set_msrs(struct kvm_vcpu *vcpu, const struct kvm_msrs *msrs)
{
	int r = KVM_IOCTL(vcpu->fd, KVM_SET_MSRS, msrs);

	/* KVM returns the number of MSRs it set; a short count is a failure. */
	if (r >= 0 && (uint32_t)r != msrs->nmsrs) {
		last_op = "KVM_SET_MSRS";
		return -EINVAL;
	}
	return r < 0 ? r : 0;
}

int kvm_vcpu_set_msrs_partial(struct kvm_vcpu *vcpu, const struct kvm_msrs *msrs)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_MSRS, msrs);
}

int kvm_vcpu_get_msrs(struct kvm_vcpu *vcpu, struct kvm_msrs *msrs)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_MSRS, msrs);
}

int kvm_vcpu_get_lapic(struct kvm_vcpu *vcpu, struct kvm_lapic_state *lapic)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_LAPIC, lapic);
}

int kvm_vcpu_set_lapic(struct kvm_vcpu *vcpu, const struct kvm_lapic_state *lapic)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_LAPIC, lapic);
}

int kvm_vcpu_get_tsc_khz(struct kvm_vcpu *vcpu)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_TSC_KHZ, NULL);
}

int kvm_vcpu_set_tsc_khz(struct kvm_vcpu *vcpu, uint32_t khz)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_TSC_KHZ, (uintptr_t)khz);
}

int kvm_vm_set_memory_flags(struct kvm_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
			    uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)host,
	};

	return KVM_IOCTL(vm->fd, KVM_SET_USER_MEMORY_REGION, &r);
}

int kvm_vm_get_dirty_log(struct kvm_vm *vm, uint32_t slot, uint64_t *bitmap)
{
	struct kvm_dirty_log d = { .slot = slot, .dirty_bitmap = bitmap };

	return KVM_IOCTL(vm->fd, KVM_GET_DIRTY_LOG, &d);
}

int kvm_vm_get_clock(struct kvm_vm *vm, struct kvm_clock_data *c)
{
	return KVM_IOCTL(vm->fd, KVM_GET_CLOCK, c);
}

int kvm_vm_set_clock(struct kvm_vm *vm, const struct kvm_clock_data *c)
{
	return KVM_IOCTL(vm->fd, KVM_SET_CLOCK, c);
}

int kvm_vm_get_irqchip(struct kvm_vm *vm, struct kvm_irqchip *chip)
{
	return KVM_IOCTL(vm->fd, KVM_GET_IRQCHIP, chip);
}

int kvm_vm_set_irqchip(struct kvm_vm *vm, const struct kvm_irqchip *chip)
{
	return KVM_IOCTL(vm->fd, KVM_SET_IRQCHIP, chip);
}

int kvm_vm_get_pit2(struct kvm_vm *vm, struct kvm_pit_state2 *pit)
{
	return KVM_IOCTL(vm->fd, KVM_GET_PIT2, pit);
}

int kvm_vm_set_pit2(struct kvm_vm *vm, const struct kvm_pit_state2 *pit)
{
	return KVM_IOCTL(vm->fd, KVM_SET_PIT2, pit);
}

int kvm_vcpu_get_mp_state(struct kvm_vcpu *vcpu, struct kvm_mp_state *mp)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_MP_STATE, mp);
}

int kvm_vcpu_set_mp_state(struct kvm_vcpu *vcpu, const struct kvm_mp_state *mp)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_MP_STATE, mp);
}

int kvm_vcpu_get_xsave(struct kvm_vcpu *vcpu, struct kvm_xsave *x)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_XSAVE, x);
}

int kvm_vcpu_set_xsave(struct kvm_vcpu *vcpu, const struct kvm_xsave *x)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_XSAVE, x);
}

int kvm_vcpu_get_xcrs(struct kvm_vcpu *vcpu, struct kvm_xcrs *x)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_XCRS, x);
}

int kvm_vcpu_set_xcrs(struct kvm_vcpu *vcpu, const struct kvm_xcrs *x)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_XCRS, x);
}

int kvm_vcpu_get_events(struct kvm_vcpu *vcpu, struct kvm_vcpu_events *ev)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_VCPU_EVENTS, ev);
}

int kvm_vcpu_set_events(struct kvm_vcpu *vcpu, const struct kvm_vcpu_events *ev)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_VCPU_EVENTS, ev);
}

int kvm_vcpu_get_debugregs(struct kvm_vcpu *vcpu, struct kvm_debugregs *d)
{
	return KVM_IOCTL(vcpu->fd, KVM_GET_DEBUGREGS, d);
}

int kvm_vcpu_set_debugregs(struct kvm_vcpu *vcpu, const struct kvm_debugregs *d)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_DEBUGREGS, d);
}

int kvm_get_msr_index_list(struct kvm_sys *sys, struct kvm_msr_list **out)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *l;
	int r = KVM_IOCTL(sys->fd, KVM_GET_MSR_INDEX_LIST, &probe);

	/* The first call fails with E2BIG and says how many there are. */
	if (r < 0 && r != -E2BIG)
		return r;
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	r = KVM_IOCTL(sys->fd, KVM_GET_MSR_INDEX_LIST, l);
	if (r < 0) {
		free(l);
		return r;
	}
	*out = l;
	return 0;
}

int kvm_vcpu_get_nested_state(struct kvm_vcpu *vcpu, int max_size, struct kvm_nested_state **out)
{
	struct kvm_nested_state *st;
	int r;

	if (max_size <= 0)
		return -ENOTSUP;
	if ((size_t)max_size < sizeof(*st))
		return -EINVAL;
	st = calloc(1, (size_t)max_size);
	if (!st)
		return -ENOMEM;
	st->size = (uint32_t)max_size;
	r = KVM_IOCTL(vcpu->fd, KVM_GET_NESTED_STATE, st);
	if (r < 0) {
		free(st);
		return r;
	}
	*out = st;
	return 0;
}

int kvm_vcpu_set_nested_state(struct kvm_vcpu *vcpu, const struct kvm_nested_state *st)
{
	return KVM_IOCTL(vcpu->fd, KVM_SET_NESTED_STATE, st);
}

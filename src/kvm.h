/* The one place that talks to KVM: every ioctl goes through here, failures
 * come back as -errno, and the last failing ioctl is named for messages. */
#ifndef NESTVM_KVM_H
#define NESTVM_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct kvm_sys {
	int fd;                 /* /dev/kvm */
	int vcpu_mmap_size;
};

struct kvm_vm {
	struct kvm_sys *sys;
	int fd;
};

struct kvm_vcpu {
	int fd;
	unsigned int id;
	struct kvm_run *run;
	int run_size;
};

/* The ioctl that failed last in this thread, for error messages. */
const char *kvm_last_op(void);

MUST_CHECK int kvm_sys_open(struct kvm_sys *sys, const char *path);
void kvm_sys_close(struct kvm_sys *sys);
MUST_CHECK int kvm_check_extension(struct kvm_sys *sys, long cap);
/* Fills a malloc'd kvm_cpuid2 with KVM_GET_SUPPORTED_CPUID. */
MUST_CHECK int kvm_get_supported_cpuid(struct kvm_sys *sys, struct kvm_cpuid2 **out);

MUST_CHECK int kvm_vm_create(struct kvm_sys *sys, struct kvm_vm *vm);
void kvm_vm_destroy(struct kvm_vm *vm);
MUST_CHECK int kvm_vm_check_extension(struct kvm_vm *vm, long cap);
MUST_CHECK int kvm_vm_set_memory(struct kvm_vm *vm, uint32_t slot, uint64_t gpa,
				 uint64_t size, void *host);
MUST_CHECK int kvm_vm_set_tss_addr(struct kvm_vm *vm, uint64_t addr);
MUST_CHECK int kvm_vm_set_identity_map_addr(struct kvm_vm *vm, uint64_t addr);
MUST_CHECK int kvm_vm_create_irqchip(struct kvm_vm *vm);
MUST_CHECK int kvm_vm_create_pit2(struct kvm_vm *vm);
MUST_CHECK int kvm_vm_irq_line(struct kvm_vm *vm, uint32_t gsi, int level);
MUST_CHECK int kvm_vm_enable_cap(struct kvm_vm *vm, uint32_t cap, uint64_t arg0);
/* Memory slot flags: KVM_MEM_LOG_DIRTY_PAGES turns dirty logging on. */
MUST_CHECK int kvm_vm_set_memory_flags(struct kvm_vm *vm, uint32_t slot, uint64_t gpa,
				       uint64_t size, void *host, uint32_t flags);
/* The slot's pages written since the last call, one bit each, into bitmap
 * (a whole number of 64-bit words); KVM clears them as it reports them. */
MUST_CHECK int kvm_vm_get_dirty_log(struct kvm_vm *vm, uint32_t slot, uint64_t *bitmap);
/* The guest's view of time (kvmclock) and the in-kernel PIC, IOAPIC and PIT. */
MUST_CHECK int kvm_vm_get_clock(struct kvm_vm *vm, struct kvm_clock_data *c);
MUST_CHECK int kvm_vm_set_clock(struct kvm_vm *vm, const struct kvm_clock_data *c);
MUST_CHECK int kvm_vm_get_irqchip(struct kvm_vm *vm, struct kvm_irqchip *chip);
MUST_CHECK int kvm_vm_set_irqchip(struct kvm_vm *vm, const struct kvm_irqchip *chip);
MUST_CHECK int kvm_vm_get_pit2(struct kvm_vm *vm, struct kvm_pit_state2 *pit);
MUST_CHECK int kvm_vm_set_pit2(struct kvm_vm *vm, const struct kvm_pit_state2 *pit);

MUST_CHECK int kvm_vcpu_create(struct kvm_vm *vm, unsigned int id, struct kvm_vcpu *vcpu);
void kvm_vcpu_destroy(struct kvm_vcpu *vcpu);
/* KVM_RUN; returns 0, -EINTR when a signal kicked it out, or -errno. */
MUST_CHECK int kvm_vcpu_run(struct kvm_vcpu *vcpu);
MUST_CHECK int kvm_vcpu_get_regs(struct kvm_vcpu *vcpu, struct kvm_regs *regs);
MUST_CHECK int kvm_vcpu_set_regs(struct kvm_vcpu *vcpu, const struct kvm_regs *regs);
MUST_CHECK int kvm_vcpu_get_sregs(struct kvm_vcpu *vcpu, struct kvm_sregs *sregs);
MUST_CHECK int kvm_vcpu_set_sregs(struct kvm_vcpu *vcpu, const struct kvm_sregs *sregs);
MUST_CHECK int kvm_vcpu_set_fpu(struct kvm_vcpu *vcpu, const struct kvm_fpu *fpu);
MUST_CHECK int kvm_vcpu_set_cpuid2(struct kvm_vcpu *vcpu, const struct kvm_cpuid2 *cpuid);
/* All or nothing: a short count is -EINVAL. */
MUST_CHECK int kvm_vcpu_set_msrs(struct kvm_vcpu *vcpu, const struct kvm_msrs *msrs);
/* Returns how many MSRs KVM wrote: it stops at the first it refuses. */
MUST_CHECK int kvm_vcpu_set_msrs_partial(struct kvm_vcpu *vcpu, const struct kvm_msrs *msrs);
/* Returns how many MSRs KVM read: it stops at the first it cannot. */
MUST_CHECK int kvm_vcpu_get_msrs(struct kvm_vcpu *vcpu, struct kvm_msrs *msrs);
MUST_CHECK int kvm_vcpu_get_lapic(struct kvm_vcpu *vcpu, struct kvm_lapic_state *lapic);
MUST_CHECK int kvm_vcpu_set_lapic(struct kvm_vcpu *vcpu, const struct kvm_lapic_state *lapic);
/* The guest's TSC frequency in kHz (KVM_GET_TSC_KHZ), or -errno. */
MUST_CHECK int kvm_vcpu_get_tsc_khz(struct kvm_vcpu *vcpu);
MUST_CHECK int kvm_vcpu_set_tsc_khz(struct kvm_vcpu *vcpu, uint32_t khz);
MUST_CHECK int kvm_vcpu_get_mp_state(struct kvm_vcpu *vcpu, struct kvm_mp_state *mp);
MUST_CHECK int kvm_vcpu_set_mp_state(struct kvm_vcpu *vcpu, const struct kvm_mp_state *mp);
MUST_CHECK int kvm_vcpu_get_xsave(struct kvm_vcpu *vcpu, struct kvm_xsave *x);
MUST_CHECK int kvm_vcpu_set_xsave(struct kvm_vcpu *vcpu, const struct kvm_xsave *x);
MUST_CHECK int kvm_vcpu_get_xcrs(struct kvm_vcpu *vcpu, struct kvm_xcrs *x);
MUST_CHECK int kvm_vcpu_set_xcrs(struct kvm_vcpu *vcpu, const struct kvm_xcrs *x);
MUST_CHECK int kvm_vcpu_get_events(struct kvm_vcpu *vcpu, struct kvm_vcpu_events *ev);
MUST_CHECK int kvm_vcpu_set_events(struct kvm_vcpu *vcpu, const struct kvm_vcpu_events *ev);
MUST_CHECK int kvm_vcpu_get_debugregs(struct kvm_vcpu *vcpu, struct kvm_debugregs *d);
MUST_CHECK int kvm_vcpu_set_debugregs(struct kvm_vcpu *vcpu, const struct kvm_debugregs *d);
/* The MSRs KVM can save and restore (KVM_GET_MSR_INDEX_LIST); *out is malloc'd. */
MUST_CHECK int kvm_get_msr_index_list(struct kvm_sys *sys, struct kvm_msr_list **out);
/* Nested virtualization state (KVM_CAP_NESTED_STATE); *out is malloc'd with
 * room for the size KVM reports. -ENOTSUP where the capability is absent. */
MUST_CHECK int kvm_vcpu_get_nested_state(struct kvm_vcpu *vcpu, int max_size,
					 struct kvm_nested_state **out);
MUST_CHECK int kvm_vcpu_set_nested_state(struct kvm_vcpu *vcpu,
					 const struct kvm_nested_state *st);

#endif

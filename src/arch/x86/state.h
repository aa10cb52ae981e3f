/* The whole architectural state of an x86 vCPU, nested virtualization state
 * included, read from and written back to KVM: the base of checkpoints,
 * save/restore and migration of a VM whose own VMs are running. */
#ifndef NESTVM_ARCH_X86_STATE_H
#define NESTVM_ARCH_X86_STATE_H

#include "kvm.h"
#include "snap.h"

struct x86_vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs debugregs;
	struct kvm_msrs *msrs;            /* malloc'd, every MSR KVM can save */
	struct kvm_nested_state *nested;  /* malloc'd; NULL without the capability */
	bool has_xcrs;
	bool irqchip;                     /* lapic and mp state are meaningful */
	struct kvm_xsave xsave;           /* last: its type ends in a flexible array */
};

/* msr_list: from kvm_get_msr_index_list(); nested_size: KVM_CAP_NESTED_STATE. */
MUST_CHECK int x86_vcpu_state_save(struct kvm_vcpu *vcpu, const struct kvm_msr_list *msr_list,
				   int nested_size, bool irqchip, struct x86_vcpu_state *st);
MUST_CHECK int x86_vcpu_state_restore(struct kvm_vcpu *vcpu, const struct x86_vcpu_state *st);
void x86_vcpu_state_free(struct x86_vcpu_state *st);

/* True while the vCPU runs a nested guest of its own (guest mode). */
bool x86_vcpu_state_in_guest_mode(const struct x86_vcpu_state *st);

/* The state as fields of a saved state. get fills st (free it with
 * x86_vcpu_state_free) and refuses what this host's KVM could not take:
 * nested state larger than max_nested (KVM_CAP_NESTED_STATE here), any
 * kernel structure of another size. */
void x86_vcpu_state_put(const struct x86_vcpu_state *st, struct snap_buf *b);
MUST_CHECK int x86_vcpu_state_get(struct x86_vcpu_state *st, struct snap_cur *c, int max_nested);

#endif

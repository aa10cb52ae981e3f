/* Saving and restoring an x86 vCPU. The order of the restore follows the
 * dependencies between the pieces: control registers (EFER.SVME, CR4.VMXE)
 * before the nested state that requires them, MSRs after it, and pending
 * events last. */
#include "arch/x86/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* KVM_GET_MSRS and KVM_SET_MSRS stop at the first MSR they refuse (some in
 * the index list exist only with some features, such as the TSC deadline
 * without an in-kernel LAPIC): skip that one and go on. Each call handles
 * a bounded batch, as KVM takes fewer than 256 at a time. */
#define MSR_BATCH 128

static int x86_msrs_each(struct kvm_vcpu *vcpu, const struct kvm_msr_entry *in, uint32_t n,
			 bool write, struct kvm_msrs *out)
{
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + MSR_BATCH * sizeof(struct kvm_msr_entry)];
	} b;
	uint32_t next = 0;

	if (out)
		out->nmsrs = 0;
	while (next < n) {
		int r;

		b.hdr.nmsrs = MIN(n - next, (uint32_t)MSR_BATCH);
		b.hdr.pad = 0;
		memcpy(b.hdr.entries, in + next, b.hdr.nmsrs * sizeof(in[0]));
		r = write ? kvm_vcpu_set_msrs_partial(vcpu, &b.hdr) : kvm_vcpu_get_msrs(vcpu, &b.hdr);
		if (r < 0)
			return r;
		if (out) {
			memcpy(&out->entries[out->nmsrs], b.hdr.entries, (size_t)r * sizeof(in[0]));
			out->nmsrs += (uint32_t)r;
		}
		/* All done, or skip the one refused. */
		next += (uint32_t)r == b.hdr.nmsrs ? (uint32_t)r : (uint32_t)r + 1;
	}
	return 0;
}

static int x86_save_msrs(struct kvm_vcpu *vcpu, const struct kvm_msr_list *list, struct kvm_msrs *out)
{
	struct kvm_msr_entry *in = calloc(list->nmsrs ? list->nmsrs : 1, sizeof(*in));
	int r;

	if (!in)
		return -ENOMEM;
	for (uint32_t i = 0; i < list->nmsrs; i++)
		in[i].index = list->indices[i];
	r = x86_msrs_each(vcpu, in, list->nmsrs, false, out);
	free(in);
	return r;
}

int x86_vcpu_state_save(struct kvm_vcpu *vcpu, const struct kvm_msr_list *msr_list,
			int nested_size, bool irqchip, struct x86_vcpu_state *st)
{
	int r;

	memset(st, 0, sizeof(*st));
	st->irqchip = irqchip;
	r = kvm_vcpu_get_regs(vcpu, &st->regs);
	if (r >= 0)
		r = kvm_vcpu_get_sregs(vcpu, &st->sregs);
	if (r >= 0)
		r = kvm_vcpu_get_xsave(vcpu, &st->xsave);
	if (r >= 0) {
		/* Without XSAVE on the host KVM reports no XCRs and refuses any. */
		st->has_xcrs = kvm_vcpu_get_xcrs(vcpu, &st->xcrs) >= 0 && st->xcrs.nr_xcrs > 0;
		r = kvm_vcpu_get_events(vcpu, &st->events);
	}
	if (r >= 0)
		r = kvm_vcpu_get_debugregs(vcpu, &st->debugregs);
	if (r >= 0 && irqchip) {
		r = kvm_vcpu_get_lapic(vcpu, &st->lapic);
		if (r >= 0)
			r = kvm_vcpu_get_mp_state(vcpu, &st->mp);
	}
	if (r >= 0 && msr_list) {
		st->msrs = calloc(1, sizeof(*st->msrs) + msr_list->nmsrs * sizeof(st->msrs->entries[0]));
		if (!st->msrs) {
			r = -ENOMEM;
		} else {
			r = x86_save_msrs(vcpu, msr_list, st->msrs);
		}
	}
	if (r >= 0 && nested_size > 0)
		r = kvm_vcpu_get_nested_state(vcpu, nested_size, &st->nested);
	if (r < 0)
		x86_vcpu_state_free(st);
	return r;
}

int x86_vcpu_state_restore(struct kvm_vcpu *vcpu, const struct x86_vcpu_state *st)
{
	int r;

	r = kvm_vcpu_set_regs(vcpu, &st->regs);
	if (r >= 0)
		r = kvm_vcpu_set_xsave(vcpu, &st->xsave);
	if (r >= 0 && st->has_xcrs)
		r = kvm_vcpu_set_xcrs(vcpu, &st->xcrs);
	if (r >= 0)
		r = kvm_vcpu_set_sregs(vcpu, &st->sregs);
	if (r >= 0 && st->nested)
		r = kvm_vcpu_set_nested_state(vcpu, st->nested);
	if (r >= 0 && st->msrs)
		r = x86_msrs_each(vcpu, st->msrs->entries, st->msrs->nmsrs, true, NULL);
	if (r >= 0 && st->irqchip) {
		r = kvm_vcpu_set_mp_state(vcpu, &st->mp);
		if (r >= 0)
			r = kvm_vcpu_set_lapic(vcpu, &st->lapic);
	}
	if (r >= 0)
		r = kvm_vcpu_set_events(vcpu, &st->events);
	if (r >= 0)
		r = kvm_vcpu_set_debugregs(vcpu, &st->debugregs);
	return r;
}

void x86_vcpu_state_free(struct x86_vcpu_state *st)
{
	free(st->msrs);
	free(st->nested);
	st->msrs = NULL;
	st->nested = NULL;
}

bool x86_vcpu_state_in_guest_mode(const struct x86_vcpu_state *st)
{
	return st->nested && (st->nested->flags & KVM_STATE_NESTED_GUEST_MODE);
}

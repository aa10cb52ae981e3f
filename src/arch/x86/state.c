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

/* IA32_FEATURE_CONTROL and the VMX capability MSRs: KVM refuses to change
 * them once the vCPU is in VMX operation, which the nested state puts it in. */
static bool x86_msr_is_feature(uint32_t index)
{
	return index == 0x3a || (index >= 0x480 && index <= 0x492);
}

static int x86_restore_msrs(struct kvm_vcpu *vcpu, const struct kvm_msrs *msrs, bool features)
{
	struct kvm_msr_entry *pick = calloc(msrs->nmsrs ? msrs->nmsrs : 1, sizeof(*pick));
	uint32_t n = 0;
	int r;

	if (!pick)
		return -ENOMEM;
	for (uint32_t i = 0; i < msrs->nmsrs; i++)
		if (x86_msr_is_feature(msrs->entries[i].index) == features)
			pick[n++] = msrs->entries[i];
	r = x86_msrs_each(vcpu, pick, n, true, NULL);
	free(pick);
	return r;
}

/* The order follows what each piece needs in place before it, as QEMU's
 * kvm_arch_put_registers and the kernel's state_test do it: the CPUID is
 * the vCPU's since it was made; the feature MSRs, then SREGS (EFER.SVME,
 * CR4.VMXE) before the nested state; REGS before EVENTS. */
int x86_vcpu_state_restore(struct kvm_vcpu *vcpu, const struct x86_vcpu_state *st)
{
	int r = 0;

	if (st->msrs)
		r = x86_restore_msrs(vcpu, st->msrs, true);
	if (r >= 0)
		r = kvm_vcpu_set_sregs(vcpu, &st->sregs);
	if (r >= 0 && st->nested)
		r = kvm_vcpu_set_nested_state(vcpu, st->nested);
	if (r >= 0)
		r = kvm_vcpu_set_regs(vcpu, &st->regs);
	if (r >= 0)
		r = kvm_vcpu_set_xsave(vcpu, &st->xsave);
	if (r >= 0 && st->has_xcrs)
		r = kvm_vcpu_set_xcrs(vcpu, &st->xcrs);
	if (r >= 0 && st->msrs)
		r = x86_restore_msrs(vcpu, st->msrs, false);
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

/* ---- as fields of a saved state ---- */

#define X86_MAX_MSRS 4096

void x86_vcpu_state_put(const struct x86_vcpu_state *st, struct snap_buf *b)
{
	snap_put_u8(b, st->irqchip);
	snap_put_struct(b, &st->regs, sizeof(st->regs));
	snap_put_struct(b, &st->sregs, sizeof(st->sregs));
	snap_put_struct(b, &st->xsave, sizeof(st->xsave));
	snap_put_u8(b, st->has_xcrs);
	snap_put_struct(b, &st->xcrs, sizeof(st->xcrs));
	snap_put_struct(b, &st->lapic, sizeof(st->lapic));
	snap_put_struct(b, &st->events, sizeof(st->events));
	snap_put_struct(b, &st->mp, sizeof(st->mp));
	snap_put_struct(b, &st->debugregs, sizeof(st->debugregs));
	snap_put_u32(b, st->msrs ? st->msrs->nmsrs : 0);
	for (uint32_t i = 0; st->msrs && i < st->msrs->nmsrs; i++) {
		snap_put_u32(b, st->msrs->entries[i].index);
		snap_put_u64(b, st->msrs->entries[i].data);
	}
	/* Always the blob KVM gave, a bare header outside guest mode included. */
	snap_put_u32(b, st->nested ? st->nested->size : 0);
	if (st->nested)
		snap_put_bytes(b, st->nested, st->nested->size);
}

int x86_vcpu_state_get(struct x86_vcpu_state *st, struct snap_cur *c, int max_nested)
{
	uint32_t n;

	memset(st, 0, sizeof(*st));
	st->irqchip = snap_get_bool(c);
	snap_get_struct(c, &st->regs, sizeof(st->regs), "registers");
	snap_get_struct(c, &st->sregs, sizeof(st->sregs), "special registers");
	snap_get_struct(c, &st->xsave, sizeof(st->xsave), "an XSAVE area");
	st->has_xcrs = snap_get_bool(c);
	snap_get_struct(c, &st->xcrs, sizeof(st->xcrs), "XCRs");
	snap_get_struct(c, &st->lapic, sizeof(st->lapic), "a local APIC");
	snap_get_struct(c, &st->events, sizeof(st->events), "pending events");
	snap_get_struct(c, &st->mp, sizeof(st->mp), "an MP state");
	snap_get_struct(c, &st->debugregs, sizeof(st->debugregs), "debug registers");
	n = snap_get_u32(c);
	if (!c->bad && n > X86_MAX_MSRS)
		snap_cur_fail(c, "%u MSRs, more than any vCPU has", n);
	if (c->bad)
		return -EINVAL;
	st->msrs = calloc(1, sizeof(*st->msrs) + (size_t)n * sizeof(st->msrs->entries[0]));
	if (!st->msrs)
		return -ENOMEM;
	st->msrs->nmsrs = n;
	for (uint32_t i = 0; i < n; i++) {
		st->msrs->entries[i].index = snap_get_u32(c);
		st->msrs->entries[i].data = snap_get_u64(c);
	}
	n = snap_get_u32(c);
	if (!c->bad && n) {
		if (n < sizeof(struct kvm_nested_state))
			snap_cur_fail(c, "nested state of %u bytes, shorter than its header", n);
		else if (max_nested <= 0)
			snap_cur_fail(c, "nested state (%u bytes), but KVM on this host saves and restores none "
				      "(no KVM_CAP_NESTED_STATE)", n);
		else if (n > (uint32_t)max_nested)
			snap_cur_fail(c, "nested state of %u bytes, more than this host's KVM takes (%d)", n,
				      max_nested);
	}
	if (!c->bad && n) {
		st->nested = calloc(1, n);
		if (!st->nested) {
			x86_vcpu_state_free(st);
			return -ENOMEM;
		}
		snap_get_bytes(c, st->nested, n);
		if (!c->bad && st->nested->size != n)
			snap_cur_fail(c, "nested state whose header says %u bytes where %u came", st->nested->size, n);
	}
	if (c->bad) {
		x86_vcpu_state_free(st);
		return -EINVAL;
	}
	return 0;
}

/* x86 vCPU state at power-on: the GDT and identity page tables the 64-bit
 * entry needs, segment and control registers, FPU, MSRs and LAPIC LINTs. */
#ifndef NESTVM_ARCH_X86_CPU_H
#define NESTVM_ARCH_X86_CPU_H

#include <stdio.h>

#include "guestmem.h"
#include "kvm.h"

/* Writes the GDT and the page tables that identity-map the low 4 GiB. */
MUST_CHECK int x86_write_boot_tables(const struct guestmem *mem);
/* 64-bit mode at rip with rsi as the boot argument (Linux: the zero page). */
MUST_CHECK int x86_setup_long_mode(struct kvm_vcpu *vcpu, uint64_t rip, uint64_t rsi);
/* Real mode with CS base 0 at rip (< 64 KiB): for test payloads. */
MUST_CHECK int x86_setup_real_mode(struct kvm_vcpu *vcpu, uint64_t rip);
/* FPU, MSR and LAPIC state every vCPU needs before its first KVM_RUN. */
MUST_CHECK int x86_setup_vcpu_common(struct kvm_vcpu *vcpu, bool irqchip);
/* One line of registers for a diagnosis ("rip=... cr0=..."). */
void x86_dump_regs(struct kvm_vcpu *vcpu, FILE *out);

#endif

/* The CPUID a vCPU sees: what KVM supports, with the topology of this VM,
 * nestvm's hypervisor leaves, and the virtualization extensions filtered by
 * the VM's setting. Pure: tests feed it made-up tables. */
#ifndef NESTVM_ARCH_X86_CPUID_H
#define NESTVM_ARCH_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define CPUID_NESTVM_LEAF      0x40000100u
#define CPUID_NESTVM_SIGNATURE "NestVMNestVM"

enum cpuid_vendor { CPUID_VENDOR_OTHER, CPUID_VENDOR_INTEL, CPUID_VENDOR_AMD };

struct cpuid_config {
	unsigned int ncpus;
	bool expose_virt;         /* pass VMX/SVM through */
};

enum cpuid_vendor cpuid_vendor(const struct kvm_cpuid2 *c);
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index);
/* True when the table offers VMX or SVM. */
bool cpuid_has_virt(const struct kvm_cpuid2 *c);

/* A malloc'd table for the vCPU with APIC ID apic_id, or NULL on ENOMEM. */
struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *supported,
			       const struct cpuid_config *cfg, unsigned int apic_id);

#endif

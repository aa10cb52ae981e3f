/* The Intel MultiProcessor table (MP spec 1.4): processors, the I/O APIC and
 * how each of its pins is wired, for guests booted with acpi=off or built
 * without ACPI, as Firecracker's guests often are. Pure: no KVM, no I/O. */
#ifndef NESTVM_ARCH_X86_MPTABLE_H
#define NESTVM_ARCH_X86_MPTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mptable_config {
	unsigned int ncpus;             /* 1..255: APIC IDs 0..n-1, the first boots */
	uint64_t lapic_addr;
	uint64_t ioapic_addr;
	uint8_t ioapic_id;
	unsigned int ioapic_pins;       /* each gets an interrupt entry, bus IRQ = pin */
	uint32_t level_pins;            /* bit per pin: level-triggered, active high */
};

/* Builds the floating pointer (at offset 0 of buf: put it where Linux scans,
 * the last KiB of base memory) and the configuration table after it, seen
 * by the guest at gpa. Returns the bytes used, -EINVAL for a bad config,
 * -ENOSPC if buf is too small. */
__attribute__((warn_unused_result))
ssize_t mptable_build(void *buf, size_t len, uint64_t gpa, const struct mptable_config *cfg);

#endif

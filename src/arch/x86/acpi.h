/* ACPI tables for an x86 nestvm machine, built in C (AML included) into a
 * buffer the guest sees at a fixed physical address. Pure: no KVM, no I/O. */
#ifndef NESTVM_ARCH_X86_ACPI_H
#define NESTVM_ARCH_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A memory-mapped device declared in the DSDT (virtio-mmio: hid "LNRO0005"). */
struct acpi_mmio_dev {
	uint64_t base;
	uint32_t size;
	uint32_t gsi;          /* IOAPIC pin, level-triggered, active high */
	const char *hid;
};

struct acpi_config {
	unsigned int ncpus;            /* 1..255: one enabled LAPIC each, APIC IDs 0..n-1 */
	uint64_t lapic_addr;
	uint64_t ioapic_addr;
	uint8_t ioapic_id;
	uint16_t pm1a_evt_port;        /* 4 bytes: PM1_STS, PM1_EN */
	uint16_t pm1a_cnt_port;        /* 2 bytes: PM1_CNT */
	uint8_t sci_irq;               /* level, active high, through an override */
	uint16_t reset_port;           /* FADT RESET_REG in system I/O space */
	uint8_t reset_value;
	uint8_t slp_typ_s5;            /* \_S5 SLP_TYPa */
	uint16_t com1_port;            /* declared as PNP0501 in the DSDT, 0 = none */
	uint8_t com1_irq;
	/* The keyboard controller, declared as a PS/2 keyboard (PNP0303) and
	 * no mouse, so that Linux does not probe for an aux port that is not
	 * there (seconds of timeouts); 0 = none. Data port; command at +4. */
	uint16_t i8042_port;
	uint8_t i8042_irq;
	const struct acpi_mmio_dev *mmio;
	unsigned int nmmio;
};

/* Builds RSDP (at offset 0 of buf), XSDT, FADT, FACS, DSDT and MADT into buf,
 * which the guest sees at guest physical address gpa. Returns the number of
 * bytes used, -EINVAL for a bad config, or -ENOSPC if buf is too small. */
__attribute__((warn_unused_result))
ssize_t acpi_build(void *buf, size_t len, uint64_t gpa, const struct acpi_config *cfg);

/* Sum of bytes, for table checksums (exposed for tests). */
uint8_t acpi_checksum(const void *p, size_t len);

#endif

/* The MP table: a floating pointer, then the configuration table with one
 * processor entry per vCPU, one ISA bus, the I/O APIC, an interrupt entry
 * per pin, and the local APICs' LINT0 (ExtINT) and LINT1 (NMI). It says
 * what the MADT says, for kernels that do not read ACPI. */
#include "arch/x86/mptable.h"

#include <errno.h>
#include <string.h>

#define MP_FP_LEN               16
#define MP_HDR_LEN              44
#define MP_CPU_LEN              20
#define MP_SHORT_LEN            8       /* bus, I/O APIC, interrupt entries */
#define MP_SPEC_REV             4       /* 1.4 */

enum { MP_CPU, MP_BUS, MP_IOAPIC, MP_IOINT, MP_LINT };
#define MP_INT_INT              0
#define MP_INT_NMI              1
#define MP_INT_EXTINT           3
#define MP_CPU_ENABLED          1u
#define MP_CPU_BSP              2u
#define MP_IRQ_HIGH_LEVEL       0x000du /* polarity 01 (high), trigger 11 (level) */
#define MP_APIC_VERSION         0x14
#define MP_IOAPIC_VERSION       0x11
#define MP_ISA_BUS              0
#define MP_ALL_LAPICS           0xff

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

static uint8_t *mp_short(uint8_t *p, uint8_t type)
{
	memset(p, 0, MP_SHORT_LEN);
	p[0] = type;
	return p;
}

ssize_t mptable_build(void *buf, size_t len, uint64_t gpa, const struct mptable_config *cfg)
{
	size_t need, off;
	unsigned int entries;
	uint8_t *b = buf, *t, *p;

	if (!cfg->ncpus || cfg->ncpus > 255 || !cfg->ioapic_pins || cfg->ioapic_pins > 32 ||
	    cfg->ioapic_id < cfg->ncpus || gpa + MP_FP_LEN > UINT32_MAX)
		return -EINVAL;
	entries = cfg->ncpus + 2 + cfg->ioapic_pins + 2;
	need = MP_FP_LEN + MP_HDR_LEN + cfg->ncpus * MP_CPU_LEN + (entries - cfg->ncpus) * MP_SHORT_LEN;
	if (need > len || need > 0xffff + MP_FP_LEN)
		return -ENOSPC;
	memset(b, 0, need);

	/* The floating pointer: no default configuration, the table follows. */
	memcpy(b, "_MP_", 4);
	put32(b + 4, (uint32_t)(gpa + MP_FP_LEN));
	b[8] = 1;                       /* length in 16-byte units */
	b[9] = MP_SPEC_REV;

	t = b + MP_FP_LEN;
	memcpy(t, "PCMP", 4);
	put16(t + 4, (uint16_t)(need - MP_FP_LEN));
	t[6] = MP_SPEC_REV;
	memcpy(t + 8, "NESTVM  ", 8);
	memcpy(t + 16, "NESTVM MP   ", 12);
	put16(t + 34, (uint16_t)entries);
	put32(t + 36, (uint32_t)cfg->lapic_addr);

	off = MP_FP_LEN + MP_HDR_LEN;
	for (unsigned int i = 0; i < cfg->ncpus; i++, off += MP_CPU_LEN) {
		p = b + off;
		p[0] = MP_CPU;
		p[1] = (uint8_t)i;
		p[2] = MP_APIC_VERSION;
		p[3] = (uint8_t)(MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0));
		put32(p + 4, 0x600);    /* family 6: the kernel reads CPUID anyway */
		put32(p + 8, 0x201);    /* FPU, APIC */
	}
	p = mp_short(b + off, MP_BUS);
	p[1] = MP_ISA_BUS;
	memcpy(p + 2, "ISA   ", 6);
	off += MP_SHORT_LEN;
	p = mp_short(b + off, MP_IOAPIC);
	p[1] = cfg->ioapic_id;
	p[2] = MP_IOAPIC_VERSION;
	p[3] = 1;                       /* enabled */
	put32(p + 4, (uint32_t)cfg->ioapic_addr);
	off += MP_SHORT_LEN;
	/* Pin n is bus IRQ n, as in the MADT (no IRQ0 override: KVM's PIT
	 * raises pin 0); the level pins are the SCI and the virtio windows. */
	for (unsigned int pin = 0; pin < cfg->ioapic_pins; pin++, off += MP_SHORT_LEN) {
		p = mp_short(b + off, MP_IOINT);
		p[1] = MP_INT_INT;
		put16(p + 2, (cfg->level_pins >> pin) & 1 ? MP_IRQ_HIGH_LEVEL : 0);
		p[4] = MP_ISA_BUS;
		p[5] = (uint8_t)pin;
		p[6] = cfg->ioapic_id;
		p[7] = (uint8_t)pin;
	}
	p = mp_short(b + off, MP_LINT);
	p[1] = MP_INT_EXTINT;
	p[6] = MP_ALL_LAPICS;
	p[7] = 0;                       /* LINT0 */
	off += MP_SHORT_LEN;
	p = mp_short(b + off, MP_LINT);
	p[1] = MP_INT_NMI;
	p[6] = MP_ALL_LAPICS;
	p[7] = 1;                       /* LINT1 */
	off += MP_SHORT_LEN;

	t[7] = mp_checksum(t, off - MP_FP_LEN);
	b[10] = mp_checksum(b, MP_FP_LEN);
	return (ssize_t)off;
}

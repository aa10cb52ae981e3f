/* x86 vCPU power-on state for the Linux 64-bit boot protocol and for the
 * real- and long-mode payloads of the tests. */
#include "arch/x86/cpu.h"
#include "arch/x86/layout.h"

#include <errno.h>
#include <string.h>

#define CR0_PE  (1u << 0)
#define CR0_MP  (1u << 1)
#define CR0_ET  (1u << 4)
#define CR0_NE  (1u << 5)
#define CR0_PG  (1u << 31)
#define CR4_PAE (1u << 5)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)
#define PTE_P   (1ULL << 0)
#define PTE_RW  (1ULL << 1)
#define PTE_PS  (1ULL << 7)

#define GDT_CODE64  2      /* selector 0x10, __BOOT_CS */
#define GDT_DATA    3      /* selector 0x18, __BOOT_DS */
#define GDT_TSS     4      /* selector 0x20 */
#define GDT_ENTRIES 5

#define MSR_IA32_MISC_ENABLE 0x000001a0
#define MISC_ENABLE_FAST_STRING 1ULL

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
	       ((uint64_t)(limit & 0x000f0000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
	       (uint64_t)(limit & 0x0000ffff);
}

static struct kvm_segment seg_from_gdt(uint64_t e, uint16_t index)
{
	return (struct kvm_segment){
		.base = (uint32_t)(((e >> 16) & 0xffffff) | ((e >> 32) & 0xff000000)),
		.limit = (uint32_t)((e & 0xffff) | ((e >> 32) & 0xf0000)),
		.selector = (uint16_t)(index * 8),
		.type = (e >> 40) & 0xf,
		.s = (e >> 44) & 1,
		.dpl = (e >> 45) & 3,
		.present = (e >> 47) & 1,
		.avl = (e >> 52) & 1,
		.l = (e >> 53) & 1,
		.db = (e >> 54) & 1,
		.g = (e >> 55) & 1,
	};
}

static const uint64_t *boot_gdt(void)
{
	static uint64_t gdt[GDT_ENTRIES];

	gdt[GDT_CODE64] = gdt_entry(0xa09b, 0, 0xfffff);
	gdt[GDT_DATA] = gdt_entry(0xc093, 0, 0xfffff);
	gdt[GDT_TSS] = gdt_entry(0x008b, 0, 0x67);
	return gdt;
}

int x86_write_boot_tables(const struct guestmem *mem)
{
	uint64_t *pml4 = guestmem_ptr(mem, LAYOUT_PML4_ADDR, 4096);
	uint64_t *pdpt = guestmem_ptr(mem, LAYOUT_PDPT_ADDR, 4096);
	uint64_t *pd = guestmem_ptr(mem, LAYOUT_PD_ADDR, 4096 * LAYOUT_PD_PAGES);
	int r;

	if (!pml4 || !pdpt || !pd)
		return -ENOMEM;
	r = guestmem_write(mem, LAYOUT_GDT_ADDR, boot_gdt(), GDT_ENTRIES * 8);
	if (r < 0)
		return r;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT_ADDR | PTE_P | PTE_RW;
	for (unsigned int i = 0; i < LAYOUT_PD_PAGES; i++)
		pdpt[i] = (LAYOUT_PD_ADDR + i * 4096ULL) | PTE_P | PTE_RW;
	for (unsigned int i = 0; i < 512 * LAYOUT_PD_PAGES; i++)
		pd[i] = ((uint64_t)i << 21) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

int x86_setup_long_mode(struct kvm_vcpu *vcpu, uint64_t rip, uint64_t rsi)
{
	const uint64_t *gdt = boot_gdt();
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rflags = 2,
		.rip = rip,
		.rsi = rsi,
		.rsp = LAYOUT_BOOT_STACK_TOP,
		.rbp = LAYOUT_BOOT_STACK_TOP,
	};
	struct kvm_segment data;
	int r;

	r = kvm_vcpu_get_sregs(vcpu, &sregs);
	if (r < 0)
		return r;
	sregs.gdt.base = LAYOUT_GDT_ADDR;
	sregs.gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cs = seg_from_gdt(gdt[GDT_CODE64], GDT_CODE64);
	data = seg_from_gdt(gdt[GDT_DATA], GDT_DATA);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = seg_from_gdt(gdt[GDT_TSS], GDT_TSS);
	sregs.cr3 = LAYOUT_PML4_ADDR;
	sregs.cr4 |= CR4_PAE;
	sregs.cr0 |= CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
	sregs.efer |= EFER_LME | EFER_LMA;
	r = kvm_vcpu_set_sregs(vcpu, &sregs);
	if (r < 0)
		return r;
	return kvm_vcpu_set_regs(vcpu, &regs);
}

int x86_setup_real_mode(struct kvm_vcpu *vcpu, uint64_t rip)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 2, .rip = rip, .rsp = 0xfff0 };
	int r;

	r = kvm_vcpu_get_sregs(vcpu, &sregs);
	if (r < 0)
		return r;
	sregs.cs.selector = 0;
	sregs.cs.base = 0;
	r = kvm_vcpu_set_sregs(vcpu, &sregs);
	if (r < 0)
		return r;
	return kvm_vcpu_set_regs(vcpu, &regs);
}

int x86_setup_vcpu_common(struct kvm_vcpu *vcpu, bool irqchip)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} msrs = { .hdr.nmsrs = 1 };
	struct kvm_lapic_state lapic;
	uint32_t lvt;
	int r;

	r = kvm_vcpu_set_fpu(vcpu, &fpu);
	if (r < 0)
		return r;
	msrs.hdr.entries[0] = (struct kvm_msr_entry){
		.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING,
	};
	r = kvm_vcpu_set_msrs(vcpu, &msrs.hdr);
	if (r < 0)
		return r;
	if (!irqchip)
		return 0;
	/* Virtual-wire mode until the guest programs its APIC: LINT0 carries
	 * the PIC's interrupts, LINT1 NMIs. */
	r = kvm_vcpu_get_lapic(vcpu, &lapic);
	if (r < 0)
		return r;
	memcpy(&lvt, &lapic.regs[APIC_LVT0], 4);
	lvt = (lvt & ~0x700u) | (APIC_MODE_EXTINT << 8);
	memcpy(&lapic.regs[APIC_LVT0], &lvt, 4);
	memcpy(&lvt, &lapic.regs[APIC_LVT1], 4);
	lvt = (lvt & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(&lapic.regs[APIC_LVT1], &lvt, 4);
	return kvm_vcpu_set_lapic(vcpu, &lapic);
}

void x86_dump_regs(struct kvm_vcpu *vcpu, FILE *out)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (kvm_vcpu_get_regs(vcpu, &r) < 0 || kvm_vcpu_get_sregs(vcpu, &s) < 0) {
		fprintf(out, "vcpu%u: registers unavailable\n", vcpu->id);
		return;
	}
	fprintf(out,
		"vcpu%u: rip=%016llx rsp=%016llx rflags=%08llx cs=%04x cr0=%08llx cr2=%016llx cr3=%016llx cr4=%08llx efer=%llx\n"
		"vcpu%u: rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx rsi=%016llx rdi=%016llx\n",
		vcpu->id, r.rip, r.rsp, r.rflags, s.cs.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer,
		vcpu->id, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi);
}

/* CPUID for a vCPU. Topology is one socket of ncpus cores, one thread each,
 * APIC IDs 0..n-1; KVM's own leaves stay at 0x40000000 so guests find
 * kvmclock, and nestvm's signature sits at 0x40000100. */
#include "arch/x86/cpuid.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CPUID_1_ECX_VMX         (1u << 5)
#define CPUID_1_ECX_HYPERVISOR  (1u << 31)
#define CPUID_1_EDX_HTT         (1u << 28)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define CPUID_80000001_ECX_SVM  (1u << 2)
/* Room for the leaves we add: three per topology leaf and our own. */
#define CPUID_EXTRA 8

static uint32_t sig_word(const char *s)
{
	uint32_t v;
	memcpy(&v, s, 4);
	return v;
}

enum cpuid_vendor cpuid_vendor(const struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != 0)
			continue;
		if (e->ebx == sig_word("Genu") && e->edx == sig_word("ineI") && e->ecx == sig_word("ntel"))
			return CPUID_VENDOR_INTEL;
		if (e->ebx == sig_word("Auth") && e->edx == sig_word("enti") && e->ecx == sig_word("cAMD"))
			return CPUID_VENDOR_AMD;
		if (e->ebx == sig_word("Hygo") && e->edx == sig_word("nGen") && e->ecx == sig_word("uine"))
			return CPUID_VENDOR_AMD;
	}
	return CPUID_VENDOR_OTHER;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == fn &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

bool cpuid_has_virt(const struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e;

	e = cpuid_find((struct kvm_cpuid2 *)c, 1, 0);
	if (e && (e->ecx & CPUID_1_ECX_VMX))
		return true;
	e = cpuid_find((struct kvm_cpuid2 *)c, 0x80000001, 0);
	return e && (e->ecx & CPUID_80000001_ECX_SVM);
}

static unsigned int order_base_2(unsigned int n)
{
	unsigned int s = 0;
	while ((1u << s) < n)
		s++;
	return s;
}

static void add_entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index, uint32_t flags,
		      uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = fn, .index = index, .flags = flags,
		.eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx,
	};
}

/* Leaves 0xb and 0x1f: an SMT level of one thread and a core level of n. */
static void add_topology(struct kvm_cpuid2 *c, uint32_t fn, unsigned int ncpus, unsigned int apic_id)
{
	uint32_t f = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

	add_entry(c, fn, 0, f, 0, 1, (1u << 8) | 0, apic_id);
	add_entry(c, fn, 1, f, order_base_2(ncpus), ncpus, (2u << 8) | 1, apic_id);
	add_entry(c, fn, 2, f, 0, 0, 2, apic_id);
}

struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *supported,
			       const struct cpuid_config *cfg, unsigned int apic_id)
{
	enum cpuid_vendor vendor = cpuid_vendor(supported);
	unsigned int n = cfg->ncpus ? cfg->ncpus : 1;
	uint32_t max_basic = 0;
	struct kvm_cpuid2 *c;
	const char *sig = CPUID_NESTVM_SIGNATURE;

	c = calloc(1, sizeof(*c) + (supported->nent + CPUID_EXTRA) * sizeof(c->entries[0]));
	if (!c)
		return NULL;
	for (uint32_t i = 0; i < supported->nent; i++) {
		struct kvm_cpuid_entry2 e = supported->entries[i];

		if (e.function == 0)
			max_basic = e.eax;
		/* Replaced below with this VM's topology and our own leaf. */
		if (e.function == 0xb || e.function == 0x1f || e.function == CPUID_NESTVM_LEAF)
			continue;
		switch (e.function) {
		case 1:
			e.ebx = (e.ebx & 0xffff) | (apic_id << 24) | ((n > 255 ? 255 : n) << 16);
			if (!((e.ebx >> 8) & 0xff))
				e.ebx |= 8 << 8;             /* CLFLUSH line: 64 bytes */
			if (n > 1)
				e.edx |= CPUID_1_EDX_HTT;
			else
				e.edx &= ~CPUID_1_EDX_HTT;
			e.ecx |= CPUID_1_ECX_HYPERVISOR;
			if (!cfg->expose_virt)
				e.ecx &= ~CPUID_1_ECX_VMX;
			break;
		case 4:
			if (!(e.eax & 0x1f))             /* no more caches */
				break;
			e.eax &= 0x3fff;
			e.eax |= (MIN(n, 64u) - 1) << 26;   /* a 6-bit field */
			if (((e.eax >> 5) & 7) >= 3)     /* the last level is shared */
				e.eax |= (n - 1) << 14;
			break;
		case 0x80000001:
			if (!cfg->expose_virt)
				e.ecx &= ~CPUID_80000001_ECX_SVM;
			/* CmpLegacy follows HTT, as on a single-core part. */
			if (vendor == CPUID_VENDOR_AMD && n > 1)
				e.ecx |= CPUID_80000001_ECX_CMP_LEGACY;
			else
				e.ecx &= ~CPUID_80000001_ECX_CMP_LEGACY;
			break;
		case 0x8000000a:                     /* SVM features */
			if (!cfg->expose_virt)
				e.eax = e.ebx = e.ecx = e.edx = 0;
			break;
		case 0x80000008:
			if (vendor == CPUID_VENDOR_AMD)
				e.ecx = (e.ecx & ~0xf0ffu) | (order_base_2(n) << 12) | (n - 1);
			break;
		case 0x8000001e:
			e.eax = apic_id;
			e.ebx = apic_id & 0xff;          /* core ID; one thread per core */
			e.ecx = 0;
			break;
		default:
			break;
		}
		c->entries[c->nent++] = e;
	}
	if (max_basic >= 0xb)
		add_topology(c, 0xb, n, apic_id);
	if (max_basic >= 0x1f)
		add_topology(c, 0x1f, n, apic_id);
	add_entry(c, CPUID_NESTVM_LEAF, 0, 0, CPUID_NESTVM_LEAF,
		  sig_word(sig), sig_word(sig + 4), sig_word(sig + 8));
	return c;
}

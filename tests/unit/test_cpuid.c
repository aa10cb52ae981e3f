/* Tier 1: the CPUID a vCPU sees, built from made-up "supported" tables of an
 * Intel-like and an AMD-like host: topology, hypervisor leaves and the
 * filtering of VMX/SVM. */
#include "harness.h"
#include "arch/x86/cpuid.h"
#include "util.h"

#include <stdlib.h>

HARNESS_DEFINE;

#define IDX KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/* A host leaf that cpuid_build must replace, recognisable if it leaks through. */
#define HOST_TOPO_MARK 0xdead0000u

static uint32_t word(const char *s)
{
	uint32_t v;
	memcpy(&v, s, 4);
	return v;
}

static struct kvm_cpuid2 *table_of(const struct kvm_cpuid_entry2 *e, unsigned int n)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

	CHECK(c);
	c->nent = n;
	memcpy(c->entries, e, n * sizeof(e[0]));
	return c;
}

static struct kvm_cpuid2 *intel_table(void)
{
	const struct kvm_cpuid_entry2 e[] = {
		{ .function = 0, .eax = 0x1f, .ebx = word("Genu"), .edx = word("ineI"), .ecx = word("ntel") },
		/* Host APIC ID 0x17 and 16 logical CPUs in EBX; VMX and HTT set. */
		{ .function = 1, .eax = 0x000906ea, .ebx = 0x17100800, .ecx = 0x7ffafbbf | (1u << 5),
		  .edx = 0xbfebfbff },
		/* Deterministic cache parameters: L1d, L2, L3, then the end. */
		{ .function = 4, .index = 0, .flags = IDX, .eax = 0x1c004121, .ebx = 0x01c0003f, .ecx = 0x3f },
		{ .function = 4, .index = 1, .flags = IDX, .eax = 0x1c004143, .ebx = 0x00c0003f, .ecx = 0x3ff },
		{ .function = 4, .index = 2, .flags = IDX, .eax = 0x1c03c163, .ebx = 0x03c0003f, .ecx = 0x2fff },
		{ .function = 4, .index = 3, .flags = IDX, .eax = 0 },
		{ .function = 7, .index = 0, .flags = IDX, .ebx = 0x029c6fbf },
		/* The host's own topology: must not reach the guest. */
		{ .function = 0xb, .index = 0, .flags = IDX, .eax = 1, .ebx = 2, .ecx = 0x100, .edx = HOST_TOPO_MARK },
		{ .function = 0xb, .index = 1, .flags = IDX, .eax = 4, .ebx = 16, .ecx = 0x201, .edx = HOST_TOPO_MARK },
		{ .function = 0x1f, .index = 0, .flags = IDX, .eax = 1, .ebx = 2, .ecx = 0x100, .edx = HOST_TOPO_MARK },
		{ .function = 0x40000000, .eax = 0x40000001, .ebx = word("KVMK"), .ecx = word("VMKV"), .edx = word("M\0\0\0") },
		{ .function = 0x40000001, .eax = 0x01007afb },
		{ .function = 0x80000000, .eax = 0x80000008 },
		{ .function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800 },
		{ .function = 0x80000008, .eax = 0x3027, .ecx = 0 },
	};
	return table_of(e, ARRAY_SIZE(e));
}

static struct kvm_cpuid2 *amd_table(void)
{
	const struct kvm_cpuid_entry2 e[] = {
		{ .function = 0, .eax = 0xd, .ebx = word("Auth"), .edx = word("enti"), .ecx = word("cAMD") },
		{ .function = 1, .eax = 0x00a20f10, .ebx = 0x05100800, .ecx = 0x7ed8320b, .edx = 0x178bfbff },
		{ .function = 0xd, .index = 0, .flags = IDX, .eax = 0x207, .ebx = 0x340, .ecx = 0x380 },
		{ .function = 0x40000000, .eax = 0x40000001, .ebx = word("KVMK"), .ecx = word("VMKV"), .edx = word("M\0\0\0") },
		{ .function = 0x80000000, .eax = 0x8000001f, .ebx = word("Auth"), .edx = word("enti"), .ecx = word("cAMD") },
		{ .function = 0x80000001, .eax = 0x00a20f10, .ecx = 0x75c237fd | (1u << 2), .edx = 0x2fd3fbff },
		/* Host: 16 cores, ApicIdCoreIdSize 7, and a perf-tsc bit above 15. */
		{ .function = 0x80000008, .eax = 0x3030, .ebx = 0x0300d207, .ecx = 0x0001700f },
		{ .function = 0x8000000a, .eax = 1, .ebx = 0x8000, .edx = 0x0001bcff },
		{ .function = 0x8000001e, .eax = 0x2a, .ebx = 0x0115, .ecx = 0x0300 },
	};
	return table_of(e, ARRAY_SIZE(e));
}

static unsigned int count_fn(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	unsigned int n = 0;

	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			n++;
	return n;
}

static struct kvm_cpuid_entry2 *must_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, fn, index);

	if (!e)
		FAILF("leaf 0x%x.%u missing", fn, index);
	return e;
}

static struct kvm_cpuid2 *build(const struct kvm_cpuid2 *sup, unsigned int ncpus, bool virt,
				unsigned int apic_id)
{
	struct cpuid_config cfg = { .ncpus = ncpus, .expose_virt = virt };
	struct kvm_cpuid2 *c = cpuid_build(sup, &cfg, apic_id);

	CHECK(c);
	return c;
}

static unsigned int log2_ceil(unsigned int n)
{
	unsigned int s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

static void test_vendor_and_virt(void)
{
	struct kvm_cpuid2 *intel = intel_table(), *amd = amd_table();
	struct kvm_cpuid_entry2 *e;

	CHECK_EQ(cpuid_vendor(intel), CPUID_VENDOR_INTEL);
	CHECK_EQ(cpuid_vendor(amd), CPUID_VENDOR_AMD);
	CHECK(cpuid_has_virt(intel));
	CHECK(cpuid_has_virt(amd));

	must_find(intel, 1, 0)->ecx &= ~(1u << 5);
	CHECK(!cpuid_has_virt(intel));
	must_find(amd, 0x80000001, 0)->ecx &= ~(1u << 2);
	CHECK(!cpuid_has_virt(amd));

	e = must_find(intel, 0, 0);
	e->ecx = word("ntex");
	CHECK_EQ(cpuid_vendor(intel), CPUID_VENDOR_OTHER);
	free(intel);
	free(amd);
}

static void test_find_honours_index(void)
{
	struct kvm_cpuid2 *c = intel_table();

	CHECK_EQ(must_find(c, 4, 2)->eax, 0x1c03c163);
	CHECK_EQ(must_find(c, 4, 1)->eax, 0x1c004143);
	CHECK(!cpuid_find(c, 4, 7));
	/* Leaves without a significant index match whatever index is asked. */
	CHECK_EQ(must_find(c, 0x80000008, 5)->eax, 0x3027);
	CHECK(!cpuid_find(c, 0x12345678, 0));
	free(c);
}

static void check_leaf1(struct kvm_cpuid2 *c, unsigned int ncpus, unsigned int apic_id)
{
	struct kvm_cpuid_entry2 *e = must_find(c, 1, 0);

	CHECK_EQ(e->ebx >> 24, apic_id);
	CHECK_EQ((e->ebx >> 16) & 0xff, ncpus);
	CHECK_EQ((e->ebx >> 8) & 0xff, 8);            /* CLFLUSH size kept */
	CHECK_EQ(!!(e->edx & (1u << 28)), ncpus > 1);  /* HTT */
	CHECK(e->ecx & (1u << 31));                    /* hypervisor */
}

static void check_topology(struct kvm_cpuid2 *c, uint32_t fn, unsigned int ncpus, unsigned int apic_id)
{
	struct kvm_cpuid_entry2 *e;

	for (uint32_t sub = 0; sub < 3; sub++) {
		if (count_fn(c, fn, sub) != 1)
			FAILF("leaf 0x%x.%u appears %u times, want once", fn, sub, count_fn(c, fn, sub));
	}
	e = must_find(c, fn, 0);
	CHECK(e->flags & IDX);
	CHECK_EQ(e->ebx, 1);
	CHECK_EQ((e->ecx >> 8) & 0xff, 1);             /* SMT */
	CHECK_EQ(e->ecx & 0xff, 0);
	CHECK_EQ(e->eax & 0x1f, 0);
	CHECK_EQ(e->edx, apic_id);
	e = must_find(c, fn, 1);
	CHECK_EQ(e->ebx, ncpus);
	CHECK_EQ((e->ecx >> 8) & 0xff, 2);             /* core */
	CHECK_EQ(e->ecx & 0xff, 1);
	CHECK_EQ(e->eax & 0x1f, log2_ceil(ncpus));
	CHECK_EQ(e->edx, apic_id);
	e = must_find(c, fn, 2);
	CHECK_EQ((e->ecx >> 8) & 0xff, 0);             /* invalid: the end */
	CHECK_EQ(e->ebx, 0);
	CHECK_EQ(e->edx, apic_id);
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].edx == HOST_TOPO_MARK)
			FAILF("host leaf 0x%x.%u leaked into the guest table", fn, c->entries[i].index);
}

static void test_intel_topology(void)
{
	static const unsigned int counts[] = { 1, 2, 8 };
	struct kvm_cpuid2 *sup = intel_table();

	for (size_t k = 0; k < ARRAY_SIZE(counts); k++) {
		unsigned int n = counts[k];

		for (unsigned int apic = 0; apic < n; apic++) {
			struct kvm_cpuid2 *c = build(sup, n, false, apic);

			check_leaf1(c, n, apic);
			check_topology(c, 0xb, n, apic);
			check_topology(c, 0x1f, n, apic);
			for (uint32_t sub = 0; sub < 3; sub++) {
				struct kvm_cpuid_entry2 *e = must_find(c, 4, sub);
				CHECK_EQ(e->eax >> 26, n - 1);
				CHECK_EQ(e->eax & 0x1f, sup->entries[2 + sub].eax & 0x1f);   /* type kept */
				CHECK_EQ((e->eax >> 5) & 7, sub + 1);                        /* level kept */
				/* L1 and L2 are per core; only the L3 is shared. */
				CHECK_EQ((e->eax >> 14) & 0xfff, sub == 2 ? n - 1 : 0);
			}
			CHECK_EQ(must_find(c, 4, 3)->eax, 0);
			free(c);
		}
	}
	free(sup);
}

static void test_intel_virt_filter(void)
{
	struct kvm_cpuid2 *sup = intel_table();
	struct kvm_cpuid2 *off = build(sup, 2, false, 1), *on = build(sup, 2, true, 1);

	CHECK(!(must_find(off, 1, 0)->ecx & (1u << 5)));
	CHECK(!cpuid_has_virt(off));
	CHECK(must_find(on, 1, 0)->ecx & (1u << 5));
	CHECK(cpuid_has_virt(on));
	/* Everything else in leaf 1 ECX passes through. */
	CHECK_EQ(must_find(off, 1, 0)->ecx | (1u << 5) | (1u << 31),
		 must_find(sup, 1, 0)->ecx | (1u << 31));
	CHECK_EQ(must_find(off, 7, 0)->ebx, 0x029c6fbf);
	free(off);
	free(on);
	free(sup);
}

static void test_hypervisor_leaves(void)
{
	struct kvm_cpuid2 *sup = intel_table();
	struct kvm_cpuid2 *c = build(sup, 1, false, 0);
	struct kvm_cpuid_entry2 *e;
	char sig[13];

	e = must_find(c, CPUID_NESTVM_LEAF, 0);
	memcpy(sig, &e->ebx, 4);
	memcpy(sig + 4, &e->ecx, 4);
	memcpy(sig + 8, &e->edx, 4);
	sig[12] = 0;
	CHECK_STR(sig, "NestVMNestVM");
	CHECK_EQ(count_fn(c, CPUID_NESTVM_LEAF, 0), 1);
	/* KVM's leaves stay at the base so guests find kvmclock. */
	e = must_find(c, 0x40000000, 0);
	CHECK_EQ(e->ebx, word("KVMK"));
	CHECK_EQ(e->ecx, word("VMKV"));
	CHECK_EQ(e->eax, 0x40000001);
	CHECK_EQ(must_find(c, 0x40000001, 0)->eax, 0x01007afb);
	free(c);

	/* A host table that already carries our leaf does not get it twice. */
	{
		struct kvm_cpuid2 *big = calloc(1, sizeof(*big) + (sup->nent + 1) * sizeof(big->entries[0]));
		CHECK(big);
		memcpy(big, sup, sizeof(*sup) + sup->nent * sizeof(sup->entries[0]));
		big->entries[big->nent++] = (struct kvm_cpuid_entry2){ .function = CPUID_NESTVM_LEAF, .ebx = 1 };
		c = build(big, 2, false, 0);
		CHECK_EQ(count_fn(c, CPUID_NESTVM_LEAF, 0), 1);
		CHECK_EQ(must_find(c, CPUID_NESTVM_LEAF, 0)->ebx, word("Nest"));
		free(c);
		free(big);
	}
	free(sup);
}

static void test_amd(void)
{
	static const unsigned int counts[] = { 1, 2, 8 };
	struct kvm_cpuid2 *sup = amd_table();

	for (size_t k = 0; k < ARRAY_SIZE(counts); k++) {
		unsigned int n = counts[k];
		unsigned int apic = n - 1;
		struct kvm_cpuid2 *off = build(sup, n, false, apic), *on = build(sup, n, true, apic);
		struct kvm_cpuid_entry2 *e;

		check_leaf1(off, n, apic);
		/* Max basic leaf 0xd: leaf 0xb is in range and describes this
		 * VM; leaf 0x1f is beyond it and not invented. */
		check_topology(off, 0xb, n, apic);
		CHECK(!cpuid_find(off, 0x1f, 0));

		e = must_find(off, 0x80000008, 0);
		CHECK_EQ(e->ecx & 0xff, n - 1);
		CHECK_EQ((e->ecx >> 12) & 0xf, log2_ceil(n));
		CHECK_EQ(e->ecx & 0xffff0000u, 0x00010000u);   /* bits above 15 kept */
		CHECK_EQ(e->eax, 0x3030);
		CHECK_EQ(!!(must_find(off, 0x80000001, 0)->ecx & (1u << 1)), n > 1);   /* CmpLegacy */

		e = must_find(off, 0x8000001e, 0);
		CHECK_EQ(e->eax, apic);
		CHECK_EQ(e->ebx & 0xff, apic);
		CHECK_EQ((e->ebx >> 8) & 0xff, 0);              /* one thread per core */

		/* SVM hidden and its feature leaf zeroed... */
		CHECK(!(must_find(off, 0x80000001, 0)->ecx & (1u << 2)));
		e = must_find(off, 0x8000000a, 0);
		CHECK(!e->eax && !e->ebx && !e->ecx && !e->edx);
		CHECK(!cpuid_has_virt(off));
		/* ...or passed through untouched. */
		CHECK(must_find(on, 0x80000001, 0)->ecx & (1u << 2));
		e = must_find(on, 0x8000000a, 0);
		CHECK_EQ(e->eax, 1);
		CHECK_EQ(e->ebx, 0x8000);
		CHECK_EQ(e->edx, 0x0001bcff);
		CHECK(cpuid_has_virt(on));
		CHECK_EQ(cpuid_vendor(on), CPUID_VENDOR_AMD);
		free(off);
		free(on);
	}
	free(sup);
}

static void test_intel_leaves_untouched_by_amd_rules(void)
{
	struct kvm_cpuid2 *sup = intel_table();
	struct kvm_cpuid2 *c = build(sup, 8, false, 3);

	/* 0x80000008 ECX is AMD's core count; Intel's stays as the host had it. */
	CHECK_EQ(must_find(c, 0x80000008, 0)->ecx, 0);
	CHECK(!(must_find(c, 0x80000001, 0)->ecx & (1u << 1)));
	free(c);
	free(sup);
}

static void test_zero_cpus_means_one(void)
{
	struct kvm_cpuid2 *sup = intel_table();
	struct kvm_cpuid2 *c = build(sup, 0, false, 0);

	CHECK_EQ((must_find(c, 1, 0)->ebx >> 16) & 0xff, 1);
	CHECK_EQ(must_find(c, 0xb, 1)->ebx, 1);
	CHECK_EQ(must_find(c, 4, 0)->eax >> 26, 0);
	free(c);
	free(sup);
}

int main(void)
{
	RUN(test_vendor_and_virt);
	RUN(test_find_honours_index);
	RUN(test_intel_topology);
	RUN(test_intel_virt_filter);
	RUN(test_hypervisor_leaves);
	RUN(test_amd);
	RUN(test_intel_leaves_untouched_by_amd_rules);
	RUN(test_zero_cpus_means_one);
	return HARNESS_END();
}

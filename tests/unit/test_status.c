/* Tier 1: "nestvm status". The verdict over made-up host facts (every check
 * failing on its own, and the nestvm guest without --nested), the VM rules,
 * the hypervisor seen through a fake CPUID, gathering from a fake /proc,
 * /sys and /dev tree, the exact JSON document, the text report, and the
 * command line's usage errors. Nothing here needs /dev/kvm. */
#include "harness.h"
#include "arch/x86/cpuid.h"
#include "cli/cli.h"
#include "hostinfo.h"
#include "vm.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

HARNESS_DEFINE;

static char tmpdir[256];

/* ---- made-up facts ---- */

/* An AMD host where everything passes. */
static struct hostinfo fine_host(void)
{
	struct hostinfo h;

	memset(&h, 0, sizeof(h));
	strcpy(h.computer_name, "testhost");
	strcpy(h.manufacturer, "QEMU");
	strcpy(h.model, "Standard PC");
	strcpy(h.cpu_vendor, "AuthenticAMD");
	strcpy(h.cpu_model, "AMD EPYC 7B13");
	strcpy(h.kernel, "6.1.0-test");
	h.svm = h.npt = true;
	strcpy(h.kvm_module, "kvm_amd");
	h.nested = HOSTINFO_YES;
	strcpy(h.kvm_path, "/dev/kvm");
	h.kvm_present = h.kvm_access = true;
	h.speed = HOSTINFO_SPEED_MEASURED;
	h.mips = 2500.0;
	h.guest_virt = HOSTINFO_YES;
	return h;
}

/* The same for Intel. */
static struct hostinfo fine_intel_host(void)
{
	struct hostinfo h = fine_host();

	strcpy(h.cpu_vendor, "GenuineIntel");
	strcpy(h.cpu_model, "Intel(R) Xeon(R) Gold 6338");
	h.svm = h.npt = false;
	h.vmx = h.ept = true;
	strcpy(h.kvm_module, "kvm_intel");
	return h;
}

static bool has_reason(const struct hostinfo_verdict *v, const char *needle)
{
	for (unsigned int i = 0; i < v->nreasons; i++)
		if (strstr(v->reason[i], needle))
			return true;
	return false;
}

static void dump_reasons(const struct hostinfo_verdict *v, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < v->nreasons && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, " [%u] %s", i, v->reason[i]);
}

/* The verdict is NO with exactly these reasons, each found by a fragment. */
static void expect_no(const struct hostinfo *h, unsigned int n, ...)
{
	struct hostinfo_verdict v;
	char all[HOSTINFO_MAX_REASONS * HOSTINFO_REASON_LEN];
	va_list ap;

	hostinfo_verdict(h, &v);
	dump_reasons(&v, all, sizeof(all));
	if (v.ok)
		FAILF("verdict YES, want NO");
	if (v.nreasons != n)
		FAILF("%u reasons, want %u:%.900s", v.nreasons, n, all);
	va_start(ap, n);
	for (unsigned int i = 0; i < n; i++) {
		const char *frag = va_arg(ap, const char *);

		if (!strstr(v.reason[i], frag)) {
			va_end(ap);
			FAILF("reason %u lacks '%.200s':%.700s", i, frag, all);
		}
	}
	va_end(ap);
}

/* ---- the host verdict ---- */

static void test_verdict_fine(void)
{
	struct hostinfo h = fine_host();
	struct hostinfo_verdict v;
	char line[HOSTINFO_SUMMARY_LEN];

	hostinfo_verdict(&h, &v);
	CHECK(v.ok);
	CHECK_EQ(v.nreasons, 0);
	hostinfo_summary(&h, &v, line, sizeof(line));
	CHECK_STR(line, "The virtualization host testhost supports nested virtualization: YES");

	h = fine_intel_host();
	hostinfo_verdict(&h, &v);
	CHECK(v.ok);
	/* Running under a hypervisor is fine when it passes the extensions on. */
	h.under_hypervisor = true;
	strcpy(h.hypervisor, "KVM");
	hostinfo_verdict(&h, &v);
	CHECK(v.ok);
	/* No nested parameter to read, but KVM shows it offers VMX: still YES. */
	h.nested = HOSTINFO_UNKNOWN;
	hostinfo_verdict(&h, &v);
	CHECK(v.ok);
}

static void test_verdict_no_extensions(void)
{
	struct hostinfo h = fine_host();
	struct hostinfo_verdict v;
	char line[HOSTINFO_SUMMARY_LEN];

	/* Bare metal with AMD-V off in the firmware: kvm_amd cannot load. */
	h.svm = h.npt = false;
	h.kvm_module[0] = '\0';
	h.nested = HOSTINFO_UNKNOWN;
	h.kvm_present = h.kvm_access = false;
	h.speed = HOSTINFO_SPEED_SKIPPED;
	h.guest_virt = HOSTINFO_UNKNOWN;
	expect_no(&h, 3,
		  "The processor does not offer hardware virtualization (no vmx or svm flag): enable "
		  "VT-x/AMD-V in the firmware, or on a virtual host expose the extensions to this VM "
		  "(on nestvm: nestvm run --nested / nestvm nested enable NAME)",
		  "KVM is not loaded: modprobe kvm_amd",
		  "/dev/kvm is missing");
	hostinfo_verdict(&h, &v);
	hostinfo_summary(&h, &v, line, sizeof(line));
	CHECK_STR(line, "The virtualization host testhost supports nested virtualization: NO");
	CHECK(strstr(v.reason[1], "it loads only where the processor offers hardware virtualization"));

	/* Only the flag gone, KVM somehow still there: every consequence named. */
	h = fine_intel_host();
	h.vmx = h.ept = false;
	h.mips = 4.0;
	h.guest_virt = HOSTINFO_NO;
	expect_no(&h, 3, "no vmx or svm flag", "emulates guest kernel code",
		  "KVM does not offer VMX/SVM to guests: the processor has none to offer");
}

static void test_verdict_virtual_host_without_extensions(void)
{
	struct hostinfo h = fine_intel_host();

	/* A guest of some other hypervisor: the fix is on its host, not the firmware. */
	h.under_hypervisor = true;
	strcpy(h.hypervisor, "Hyper-V");
	h.vmx = h.ept = false;
	h.kvm_module[0] = '\0';
	h.nested = HOSTINFO_UNKNOWN;
	h.kvm_present = h.kvm_access = false;
	h.speed = HOSTINFO_SPEED_SKIPPED;
	h.guest_virt = HOSTINFO_UNKNOWN;
	expect_no(&h, 3, "this machine is a Hyper-V guest, so expose the extensions to it on its host",
		  "KVM is not loaded: modprobe kvm_intel", "/dev/kvm is missing");
	{
		struct hostinfo_verdict v;

		hostinfo_verdict(&h, &v);
		CHECK(strstr(v.reason[0], "Set-VMProcessor -ExposeVirtualizationExtensions $true"));
		CHECK(strstr(v.reason[0], "nestvm nested enable NAME"));
		CHECK(!strstr(v.reason[0], "firmware"));
	}
}

static void test_verdict_module_not_loaded(void)
{
	struct hostinfo h = fine_host();

	h.kvm_module[0] = '\0';
	h.nested = HOSTINFO_UNKNOWN;
	h.kvm_present = h.kvm_access = false;
	h.speed = HOSTINFO_SPEED_SKIPPED;
	h.guest_virt = HOSTINFO_UNKNOWN;
	expect_no(&h, 2, "KVM is not loaded: modprobe kvm_amd",
		  "/dev/kvm is missing: it appears when KVM loads (modprobe kvm_amd)");

	h = fine_intel_host();
	h.kvm_module[0] = '\0';
	h.nested = HOSTINFO_UNKNOWN;
	h.kvm_present = h.kvm_access = false;
	h.speed = HOSTINFO_SPEED_SKIPPED;
	h.guest_virt = HOSTINFO_UNKNOWN;
	expect_no(&h, 2, "KVM is not loaded: modprobe kvm_intel", "modprobe kvm_intel");
	{
		struct hostinfo_verdict v;

		hostinfo_verdict(&h, &v);
		CHECK_STR(v.reason[0], "KVM is not loaded: modprobe kvm_intel");
	}
}

static void test_verdict_nested_off(void)
{
	struct hostinfo h = fine_host();
	struct hostinfo_verdict v;

	h.nested = HOSTINFO_NO;
	h.guest_virt = HOSTINFO_NO;
	expect_no(&h, 2, "Nested virtualization is off in kvm_amd",
		  "KVM does not offer VMX/SVM to guests: turn nested on in kvm_amd");
	hostinfo_verdict(&h, &v);
	CHECK_STR(v.reason[0], "Nested virtualization is off in kvm_amd: echo 'options kvm_amd nested=1' > "
		  "/etc/modprobe.d/kvm.conf, then modprobe -r kvm_amd && modprobe kvm_amd");

	/* nested=N fails on its own, even if KVM claimed otherwise. */
	h = fine_intel_host();
	h.nested = HOSTINFO_NO;
	expect_no(&h, 1, "Nested virtualization is off in kvm_intel: echo 'options kvm_intel nested=1'");
}

static void test_verdict_dev_kvm_missing(void)
{
	struct hostinfo h = fine_host();

	h.kvm_present = h.kvm_access = false;
	h.speed = HOSTINFO_SPEED_SKIPPED;
	h.guest_virt = HOSTINFO_UNKNOWN;
	expect_no(&h, 1, "/dev/kvm is missing although kvm_amd is loaded");
	{
		struct hostinfo_verdict v;

		hostinfo_verdict(&h, &v);
		CHECK(strstr(v.reason[0], "mknod /dev/kvm c 10 232"));
	}
	/* Another device path is named as given. */
	strcpy(h.kvm_path, "/tmp/kvm0");
	expect_no(&h, 1, "/tmp/kvm0 is missing");
}

static void test_verdict_no_permission(void)
{
	struct hostinfo h = fine_host();

	h.kvm_access = false;
	h.speed = HOSTINFO_SPEED_SKIPPED;
	h.guest_virt = HOSTINFO_UNKNOWN;
	expect_no(&h, 1, "/dev/kvm is not accessible to this user: add the user to the 'kvm' group");
	{
		struct hostinfo_verdict v;

		hostinfo_verdict(&h, &v);
		CHECK(strstr(v.reason[0], "or run as root"));
	}
}

static void test_verdict_emulated(void)
{
	struct hostinfo h = fine_host();

	h.mips = 4.1;
	expect_no(&h, 1, "KVM emulates guest kernel code in software here (4.1 million instructions/s");
	/* Just over the line counts as hardware speed. */
	h.mips = VM_PROBE_MIN_MIPS;
	{
		struct hostinfo_verdict v;

		hostinfo_verdict(&h, &v);
		CHECK(v.ok);
		h.mips = VM_PROBE_MIN_MIPS - 0.1;
		hostinfo_verdict(&h, &v);
		CHECK(!v.ok);
	}
	/* The test guest failing is a reason of its own. */
	h = fine_host();
	h.speed = HOSTINFO_SPEED_FAILED;
	h.speed_err = -EIO;
	h.mips = 0;
	expect_no(&h, 1, "KVM could not run a test guest on /dev/kvm (Input/output error)");
}

static void test_verdict_no_guest_virt(void)
{
	struct hostinfo h = fine_host();

	h.guest_virt = HOSTINFO_NO;
	expect_no(&h, 1, "KVM does not offer VMX/SVM to guests although kvm_amd is loaded");
	/* Could not ask: not a YES either. */
	h.guest_virt = HOSTINFO_UNKNOWN;
	h.guest_virt_err = -ENOTTY;
	expect_no(&h, 1, "Whether KVM offers VMX/SVM to guests is unknown");
}

static void test_verdict_no_slat(void)
{
	struct hostinfo h = fine_intel_host();

	h.ept = false;
	expect_no(&h, 1, "The processor has VT-x but no EPT (no ept flag)");
	h = fine_host();
	h.npt = false;
	expect_no(&h, 1, "The processor has AMD-V but no NPT (no npt flag)");
}

/* This machine: a KVM guest with no VMX/SVM, /dev/kvm from kvm_pvm. */
static void test_verdict_software_kvm(void)
{
	struct hostinfo h = fine_intel_host();

	h.under_hypervisor = true;
	strcpy(h.hypervisor, "KVM");
	h.vmx = h.ept = false;
	strcpy(h.kvm_module, "kvm_pvm");
	h.nested = HOSTINFO_UNKNOWN;
	h.mips = 4.3;
	h.guest_virt = HOSTINFO_NO;
	expect_no(&h, 3, "no vmx or svm flag): this machine is a KVM guest",
		  "KVM emulates guest kernel code in software here (4.3 million instructions/s",
		  "KVM does not offer VMX/SVM to guests");
	/* kvm_pvm on a processor with VT-x: the module is the trouble. */
	h.vmx = h.ept = true;
	h.mips = 900;
	expect_no(&h, 1, "kvm_pvm runs guests without hardware virtualization and cannot pass it on; "
		  "load kvm_intel instead");
}

/* A guest of nestvm started without --nested: no svm flag, hypervisor
 * "nestvm (KVM)". The fix is on its host, and the reason says so. */
static void test_verdict_nestvm_guest_without_nested(void)
{
	struct hostinfo h = fine_host();
	struct hostinfo_verdict v;

	h.under_hypervisor = true;
	strcpy(h.hypervisor, HOSTINFO_HV_NESTVM);
	h.svm = h.npt = false;
	h.kvm_module[0] = '\0';
	h.nested = HOSTINFO_UNKNOWN;
	h.kvm_present = h.kvm_access = false;
	h.speed = HOSTINFO_SPEED_SKIPPED;
	h.guest_virt = HOSTINFO_UNKNOWN;
	expect_no(&h, 3, "This machine is a nestvm guest started without --nested",
		  "KVM is not loaded", "/dev/kvm is missing");
	hostinfo_verdict(&h, &v);
	CHECK(strstr(v.reason[0], "it has no hardware virtualization (no vmx or svm flag)"));
	CHECK(strstr(v.reason[0], "Expose the extensions on its host"));
	CHECK(strstr(v.reason[0], "'nestvm run --nested'"));
	CHECK(strstr(v.reason[0], "'nestvm nested enable NAME' on the host"));
	CHECK(!strstr(v.reason[0], "firmware"));

	/* The same guest started with --nested passes. */
	h = fine_host();
	h.under_hypervisor = true;
	strcpy(h.hypervisor, HOSTINFO_HV_NESTVM);
	hostinfo_verdict(&h, &v);
	CHECK(v.ok);
}

static void test_verdict_reason_cap(void)
{
	struct hostinfo h;
	struct hostinfo_verdict v;

	/* All zero: no name, nothing found. Many reasons, never an overflow. */
	memset(&h, 0, sizeof(h));
	hostinfo_verdict(&h, &v);
	CHECK(!v.ok);
	CHECK(v.nreasons >= 3 && v.nreasons <= HOSTINFO_MAX_REASONS);
	CHECK(has_reason(&v, "/dev/kvm is missing"));
	for (unsigned int i = 0; i < v.nreasons; i++)
		CHECK(strlen(v.reason[i]) > 0 && strlen(v.reason[i]) < HOSTINFO_REASON_LEN - 1);
}

/* ---- the VM verdict ---- */

static void test_vm_verdict(void)
{
	struct hostinfo h = fine_host();
	struct hostinfo_verdict host, v;
	struct vmconfig cfg = { .memory = 512ULL << 20, .cpus = 2, .expose_virt = true };
	struct hostinfo_vm vm = { .name = "NestedVM", .cfg = &cfg, .state = "Off" };

	hostinfo_verdict(&h, &host);
	CHECK(host.ok);
	hostinfo_vm_verdict(&host, &vm, &v);
	CHECK(v.ok);
	CHECK_EQ(v.nreasons, 0);

	cfg.expose_virt = false;
	hostinfo_vm_verdict(&host, &vm, &v);
	CHECK(!v.ok);
	CHECK_EQ(v.nreasons, 1);
	CHECK_STR(v.reason[0], "ExposeVirtualizationExtensions is False: start the VM with nestvm run "
		  "--nested, or run: nestvm nested enable NestedVM");
	vm.name = "web server's";
	hostinfo_vm_verdict(&host, &vm, &v);
	CHECK(strstr(v.reason[0], "nestvm nested enable 'web server'\\''s'"));
	cfg.expose_virt = true;

	cfg.memory = 256ULL << 20;
	hostinfo_vm_verdict(&host, &vm, &v);
	CHECK_EQ(v.nreasons, 1);
	CHECK(strstr(v.reason[0], "Memory is 256M, below the 512M"));
	CHECK(strstr(v.reason[0], "Hyper-V asks for 1G"));
	cfg.memory = (512ULL << 20) - 4096;
	hostinfo_vm_verdict(&host, &vm, &v);
	CHECK(!v.ok);
	cfg.memory = 1ULL << 30;

	cfg.dynamic_memory = true;
	hostinfo_vm_verdict(&host, &vm, &v);
	CHECK_EQ(v.nreasons, 1);
	CHECK(strstr(v.reason[0], "DynamicMemoryEnabled is True"));
	cfg.dynamic_memory = false;

	h.nested = HOSTINFO_NO;
	hostinfo_verdict(&h, &host);
	hostinfo_vm_verdict(&host, &vm, &v);
	CHECK(!v.ok);
	CHECK_EQ(v.nreasons, 1);
	CHECK(strstr(v.reason[0], "The host does not support nested virtualization"));
}

/* ---- the hypervisor through a fake CPUID ---- */

struct fake_cpuid {
	bool hv_bit;
	struct { uint32_t leaf; char sig[13]; uint32_t eax; } leaves[4];
	unsigned int calls;
};

static void fake_cpuid_fn(void *opaque, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	struct fake_cpuid *f = opaque;

	(void)subleaf;
	f->calls++;
	memset(regs, 0, 4 * sizeof(regs[0]));
	if (leaf == 1) {
		regs[2] = f->hv_bit ? 1u << 31 : 0;
		return;
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(f->leaves); i++) {
		if (f->leaves[i].leaf && f->leaves[i].leaf == leaf) {
			regs[0] = f->leaves[i].eax;
			memcpy(&regs[1], f->leaves[i].sig, 4);
			memcpy(&regs[2], f->leaves[i].sig + 4, 4);
			memcpy(&regs[3], f->leaves[i].sig + 8, 4);
		}
	}
}

static void hv_name(struct fake_cpuid *f, bool *present, char *name, size_t len)
{
	struct hostinfo_ops ops = { .cpuid = fake_cpuid_fn, .opaque = f };

	hostinfo_hypervisor(&ops, present, name, len);
}

static void test_hypervisor_names(void)
{
	static const struct { const char sig[13]; const char *want; } cases[] = {
		{ "KVMKVMKVM\0\0\0", "KVM" },
		{ "Microsoft Hv", "Hyper-V" },
		{ "VMwareVMware", "VMware" },
		{ "XenVMMXenVMM", "Xen" },
		{ "TCGTCGTCGTCG", "QEMU TCG" },
		{ "ACRNACRNACRN", "ACRNACRNACRN" },           /* unknown: printed raw */
		{ "Odd\x01Sig\0\0\0\0\0", "Odd?Sig" },        /* made printable */
		{ "\0\0\0\0\0\0\0\0\0\0\0\0", "unknown (no signature)" },
	};
	char name[64];
	bool present;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fake_cpuid f = { .hv_bit = true };

		f.leaves[0].leaf = 0x40000000;
		f.leaves[0].eax = 0x40000001;
		memcpy(f.leaves[0].sig, cases[i].sig, 12);
		hv_name(&f, &present, name, sizeof(name));
		CHECK(present);
		if (strcmp(name, cases[i].want))
			FAILF("signature %zu: got '%s', want '%s'", i, name, cases[i].want);
	}
}

static void test_hypervisor_none(void)
{
	struct fake_cpuid f = { .hv_bit = false };
	char name[64] = "junk";
	bool present = true;

	/* Without the CPUID.1 bit the 0x40000000 leaves mean nothing. */
	f.leaves[0].leaf = 0x40000000;
	memcpy(f.leaves[0].sig, "KVMKVMKVM\0\0\0", 12);
	hv_name(&f, &present, name, sizeof(name));
	CHECK(!present);
	CHECK_STR(name, "");
	CHECK_EQ(f.calls, 1);
}

static void test_hypervisor_nestvm(void)
{
	char name[64];
	bool present;

	/* nestvm: KVM's leaves at the base, its own signature further up. */
	{
		struct fake_cpuid f = { .hv_bit = true };

		f.leaves[0].leaf = 0x40000000;
		memcpy(f.leaves[0].sig, "KVMKVMKVM\0\0\0", 12);
		f.leaves[1].leaf = CPUID_NESTVM_LEAF;
		memcpy(f.leaves[1].sig, "NestVMNestVM", 12);
		hv_name(&f, &present, name, sizeof(name));
		CHECK(present);
		CHECK_STR(name, "nestvm (KVM)");
	}
	/* Anywhere in the scanned ranges, up to 0x4000ff00. */
	{
		struct fake_cpuid f = { .hv_bit = true };

		f.leaves[0].leaf = 0x40000000;
		memcpy(f.leaves[0].sig, "KVMKVMKVM\0\0\0", 12);
		f.leaves[1].leaf = 0x4000ff00;
		memcpy(f.leaves[1].sig, "NestVMNestVM", 12);
		hv_name(&f, &present, name, sizeof(name));
		CHECK_STR(name, "nestvm (KVM)");
	}
	/* Not at an address that is not a range base. */
	{
		struct fake_cpuid f = { .hv_bit = true };

		f.leaves[0].leaf = 0x40000000;
		memcpy(f.leaves[0].sig, "KVMKVMKVM\0\0\0", 12);
		f.leaves[1].leaf = 0x40000101;
		memcpy(f.leaves[1].sig, "NestVMNestVM", 12);
		hv_name(&f, &present, name, sizeof(name));
		CHECK_STR(name, "KVM");
	}
}

/* ---- /proc/cpuinfo ---- */

static void test_parse_cpuinfo(void)
{
	struct hostinfo h;

	memset(&h, 0, sizeof(h));
	hostinfo_parse_cpuinfo(&h,
		"processor\t: 0\n"
		"vendor_id\t: AuthenticAMD\n"
		"model\t\t: 1\n"
		"model name\t: AMD EPYC 7B13 64-Core Processor\n"
		"flags\t\t: fpu vme svm_lock nrip_save hypervisor\n"
		"\n"
		"processor\t: 1\n"
		"vendor_id\t: GenuineIntel\n"
		"model name\t: other\n"
		"flags\t\t: fpu vmx ept svm npt\n");
	CHECK_STR(h.cpu_vendor, "AuthenticAMD");
	CHECK_STR(h.cpu_model, "AMD EPYC 7B13 64-Core Processor");
	/* Only whole words count, and only the first CPU's. */
	CHECK(!h.svm && !h.vmx && !h.npt && !h.ept);

	hostinfo_parse_cpuinfo(&h,
		"vendor_id\t: AuthenticAMD\n"
		"flags\t\t: fpu svm lm npt nrip_save\n");
	CHECK(h.svm && h.npt && !h.vmx && !h.ept);
	CHECK_STR(h.cpu_model, "unknown");

	/* Linux 5.8 and later list EPT on the "vmx flags" line. */
	hostinfo_parse_cpuinfo(&h,
		"vendor_id\t: GenuineIntel\n"
		"model name\t: Intel(R) Xeon(R)\n"
		"flags\t\t: fpu vmx lm\n"
		"vmx flags\t: vnmi preemption_timer invvpid ept_x_only ept ept_ad\n"
		"bugs\t\t: spectre_v1\n");
	CHECK(h.vmx && h.ept && !h.svm && !h.npt);
	hostinfo_parse_cpuinfo(&h,
		"flags\t\t: fpu vmx lm\n"
		"vmx flags\t: vnmi ept_x_only ept_ad\n");
	CHECK(h.vmx && !h.ept);
	CHECK_STR(h.cpu_vendor, "unknown");
}

/* ---- gathering from a fake root ---- */

static void put_file(const char *root, const char *rel, const char *text, mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			FAILF("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	CHECK_EQ(fchmod(fd, mode), 0);
	close(fd);
}

struct fake_kvm {
	struct fake_cpuid cpuid;
	double mips;
	int probe_err;
	bool offered;
	int probes, queries;
	char probed_path[512];
};

static void fake_kvm_cpuid(void *opaque, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	fake_cpuid_fn(&((struct fake_kvm *)opaque)->cpuid, leaf, subleaf, regs);
}

static int fake_probe(void *opaque, const char *kvm_path, double *mips)
{
	struct fake_kvm *k = opaque;

	k->probes++;
	snprintf(k->probed_path, sizeof(k->probed_path), "%s", kvm_path);
	if (k->probe_err)
		return k->probe_err;
	*mips = k->mips;
	return 0;
}

static int fake_guest_virt(void *opaque, const char *kvm_path, bool *offered)
{
	struct fake_kvm *k = opaque;

	(void)kvm_path;
	k->queries++;
	*offered = k->offered;
	return 0;
}

static const struct hostinfo_ops fake_ops_template = {
	.cpuid = fake_kvm_cpuid, .probe_speed = fake_probe, .guest_virt = fake_guest_virt,
};

/* An AMD host with kvm_amd nested=1 under root. */
static void make_amd_root(const char *root)
{
	put_file(root, "proc/cpuinfo",
		 "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
		 "model name\t: AMD EPYC 7B13 64-Core Processor\n"
		 "flags\t\t: fpu vme de pse svm extapic npt nrip_save\n\n"
		 "processor\t: 1\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu\n\n", 0644);
	put_file(root, "proc/sys/kernel/hostname", "fakehost\n", 0644);
	put_file(root, "proc/sys/kernel/osrelease", "6.6.6-fake\n", 0644);
	put_file(root, "sys/class/dmi/id/sys_vendor", "Fake Computers Inc.\n", 0644);
	put_file(root, "sys/class/dmi/id/product_name", "Model\t9000\n", 0644);
	put_file(root, "sys/module/kvm_amd/parameters/nested", "1\n", 0644);
	put_file(root, "dev/kvm", "", 0666);
}

static void make_root(char *root, size_t len, const char *name)
{
	snprintf(root, len, "%s/%s", tmpdir, name);
	CHECK_EQ(mkdir(root, 0755), 0);
}

static void test_gather_fake_root(void)
{
	struct fake_kvm k = { .mips = 1234.5, .offered = true };
	struct hostinfo_ops ops = fake_ops_template;
	struct hostinfo_source src = { .ops = &ops };
	struct hostinfo_verdict v;
	struct hostinfo h;
	char root[300], want[512];

	make_root(root, sizeof(root), "amd");
	make_amd_root(root);
	ops.opaque = &k;
	src.root = root;
	hostinfo_gather(&h, &src);

	CHECK_STR(h.computer_name, "fakehost");
	CHECK_STR(h.kernel, "6.6.6-fake");
	CHECK_STR(h.manufacturer, "Fake Computers Inc.");
	CHECK_STR(h.model, "Model 9000");              /* the tab made harmless */
	CHECK_STR(h.cpu_vendor, "AuthenticAMD");
	CHECK_STR(h.cpu_model, "AMD EPYC 7B13 64-Core Processor");
	CHECK(h.svm && h.npt && !h.vmx && !h.ept);
	CHECK(!h.under_hypervisor);
	CHECK_STR(h.hypervisor, "");
	CHECK_STR(h.kvm_module, "kvm_amd");
	CHECK_EQ(h.nested, HOSTINFO_YES);
	CHECK_STR(h.kvm_path, "/dev/kvm");
	CHECK(h.kvm_present && h.kvm_access);
	CHECK_EQ(h.speed, HOSTINFO_SPEED_MEASURED);
	CHECK(h.mips == 1234.5);
	CHECK_EQ(h.guest_virt, HOSTINFO_YES);
	CHECK_EQ(k.probes, 1);
	CHECK_EQ(k.queries, 1);
	snprintf(want, sizeof(want), "%s/dev/kvm", root);
	CHECK(!strcmp(k.probed_path, want));
	hostinfo_verdict(&h, &v);
	CHECK(v.ok);

	/* nested=N and no DMI: read as such. */
	put_file(root, "sys/module/kvm_amd/parameters/nested", "N\n", 0644);
	snprintf(want, sizeof(want), "%s/sys/class/dmi/id/sys_vendor", root);
	CHECK_EQ(unlink(want), 0);
	hostinfo_gather(&h, &src);
	CHECK_EQ(h.nested, HOSTINFO_NO);
	CHECK_STR(h.manufacturer, "unknown");
	hostinfo_verdict(&h, &v);
	CHECK(!v.ok);
	CHECK(has_reason(&v, "Nested virtualization is off in kvm_amd"));

	/* No /dev/kvm: neither the probe nor the CPUID query runs. */
	snprintf(want, sizeof(want), "%s/dev/kvm", root);
	CHECK_EQ(unlink(want), 0);
	k.probes = k.queries = 0;
	hostinfo_gather(&h, &src);
	CHECK(!h.kvm_present && !h.kvm_access);
	CHECK_EQ(h.speed, HOSTINFO_SPEED_SKIPPED);
	CHECK_EQ(h.guest_virt, HOSTINFO_UNKNOWN);
	CHECK_EQ(k.probes, 0);
	CHECK_EQ(k.queries, 0);
}

static void test_gather_intel_guest(void)
{
	struct fake_kvm k = { .mips = 4.1, .offered = false, .cpuid = { .hv_bit = true } };
	struct hostinfo_ops ops = fake_ops_template;
	struct hostinfo_source src = { .ops = &ops, .kvm_path = "/dev/kvm-other" };
	struct hostinfo h;
	char root[300];

	/* A guest of nestvm: kvm_intel loaded but no vmx flag, its nested
	 * parameter absent, a different device path, no DMI, no hostname files. */
	make_root(root, sizeof(root), "intel");
	put_file(root, "proc/cpuinfo", "vendor_id\t: GenuineIntel\nmodel name\t: Xeon\n"
		 "flags\t\t: fpu hypervisor lm\n", 0644);
	put_file(root, "sys/module/kvm_intel/refcnt", "0\n", 0644);
	put_file(root, "dev/kvm-other", "", 0666);
	k.cpuid.leaves[0].leaf = 0x40000000;
	memcpy(k.cpuid.leaves[0].sig, "KVMKVMKVM\0\0\0", 12);
	k.cpuid.leaves[1].leaf = CPUID_NESTVM_LEAF;
	memcpy(k.cpuid.leaves[1].sig, "NestVMNestVM", 12);
	ops.opaque = &k;
	src.root = root;
	hostinfo_gather(&h, &src);

	CHECK_STR(h.computer_name, "unknown");
	CHECK_STR(h.manufacturer, "unknown");
	CHECK_STR(h.model, "unknown");
	CHECK_STR(h.cpu_vendor, "GenuineIntel");
	CHECK(!h.vmx && !h.svm);
	CHECK(h.under_hypervisor);
	CHECK_STR(h.hypervisor, "nestvm (KVM)");
	CHECK_STR(h.kvm_module, "kvm_intel");
	CHECK_EQ(h.nested, HOSTINFO_UNKNOWN);
	CHECK_STR(h.kvm_path, "/dev/kvm-other");
	CHECK(h.kvm_present && h.kvm_access);
	CHECK(h.mips == 4.1);
	CHECK_EQ(h.guest_virt, HOSTINFO_NO);
	expect_no(&h, 3, "This machine is a nestvm guest started without --nested",
		  "(4.1 million instructions/s", "KVM does not offer VMX/SVM to guests");
}

static void test_gather_no_permission(void)
{
	struct fake_kvm k = { .mips = 1000, .offered = true };
	struct hostinfo_ops ops = fake_ops_template;
	struct hostinfo_source src = { .ops = &ops };
	struct hostinfo h;
	char root[300];

	if (geteuid() == 0)
		SKIP("running as root, and access(2) grants root read and write on a mode-000 file");
	make_root(root, sizeof(root), "noperm");
	make_amd_root(root);
	put_file(root, "dev/kvm", "", 0000);
	ops.opaque = &k;
	src.root = root;
	hostinfo_gather(&h, &src);
	CHECK(h.kvm_present && !h.kvm_access);
	CHECK_EQ(k.probes, 0);
	expect_no(&h, 1, "/dev/kvm is not accessible to this user");
}

static void test_gather_probe_fails(void)
{
	struct fake_kvm k = { .probe_err = -EIO, .offered = true };
	struct hostinfo_ops ops = fake_ops_template;
	struct hostinfo_source src = { .ops = &ops };
	struct hostinfo h;
	char root[300];

	make_root(root, sizeof(root), "probefail");
	make_amd_root(root);
	ops.opaque = &k;
	src.root = root;
	hostinfo_gather(&h, &src);
	CHECK_EQ(h.speed, HOSTINFO_SPEED_FAILED);
	CHECK_EQ(h.speed_err, -EIO);
	expect_no(&h, 1, "KVM could not run a test guest");
}

/* ---- the report ---- */

/* Exact bytes; on a mismatch, where and what. */
static void expect_same(const char *got, const char *want)
{
	size_t i = 0;

	while (got[i] && got[i] == want[i])
		i++;
	if (got[i] || want[i])
		FAILF("output differs at byte %zu: got '%.120s', want '%.120s'", i,
		      got + (i > 40 ? i - 40 : 0), want + (i > 40 ? i - 40 : 0));
}

static const struct vmconfig report_cfg = { .memory = 512ULL << 20, .cpus = 2, .expose_virt = false };
static const struct hostinfo_vm report_vm = { .name = "NestedVM", .cfg = &report_cfg, .state = "Off" };

static void test_report_json_exact(void)
{
	struct hostinfo h = fine_host();
	struct json j;

	h.nested = HOSTINFO_UNKNOWN;    /* null, to show an unknown */
	json_init(&j, NULL, false);
	hostinfo_report_json(&j, &h, &report_vm, 1);
	CHECK_EQ(json_finish(&j), 0);
	expect_same(json_buf(&j),
		  "{\"host\":{"
		  "\"computerName\":\"testhost\","
		  "\"manufacturer\":\"QEMU\","
		  "\"model\":\"Standard PC\","
		  "\"processorVendor\":\"AuthenticAMD\","
		  "\"processorModel\":\"AMD EPYC 7B13\","
		  "\"kernelRelease\":\"6.1.0-test\","
		  "\"hypervisorPresent\":false,"
		  "\"hypervisor\":null,"
		  "\"virtualizationExtensions\":true,"
		  "\"virtualizationExtensionsType\":\"AMD-V\","
		  "\"secondLevelAddressTranslation\":true,"
		  "\"secondLevelAddressTranslationType\":\"NPT\","
		  "\"kvmLoaded\":true,"
		  "\"kvmModule\":\"kvm_amd\","
		  "\"nestedEnabled\":null,"
		  "\"kvmDevice\":\"/dev/kvm\","
		  "\"kvmDevicePresent\":true,"
		  "\"kvmDeviceAccessible\":true,"
		  "\"guestKernelCodeMips\":2500,"
		  "\"guestKernelCodeEmulated\":false,"
		  "\"kvmOffersVirtualizationToGuests\":true,"
		  "\"supportsNesting\":true,"
		  "\"reasons\":[]},"
		  "\"vms\":[{"
		  "\"name\":\"NestedVM\","
		  "\"supportsNesting\":false,"
		  "\"reasons\":[\"ExposeVirtualizationExtensions is False: start the VM with nestvm run "
		  "--nested, or run: nestvm nested enable NestedVM\"],"
		  "\"exposeVirtualizationExtensions\":false,"
		  "\"dynamicMemoryEnabled\":false,"
		  "\"macAddressSpoofing\":false,"
		  "\"memory\":\"512M\","
		  "\"memoryBytes\":536870912,"
		  "\"vcpus\":2,"
		  "\"state\":\"Off\"}],"
		  "\"verdict\":\"The virtualization host testhost supports nested virtualization: YES\"}");
	json_free(&j);
}

static void test_report_json_failing_host(void)
{
	struct hostinfo h = fine_host();
	struct json j;
	const char *s;

	/* Unknowns are null, the reasons an array of strings, no VMs an empty array. */
	h.kvm_access = false;
	h.speed = HOSTINFO_SPEED_SKIPPED;
	h.guest_virt = HOSTINFO_UNKNOWN;
	strcpy(h.computer_name, "host \"q\"");
	json_init(&j, NULL, true);
	hostinfo_report_json(&j, &h, NULL, 0);
	CHECK_EQ(json_finish(&j), 0);
	s = json_buf(&j);
	CHECK(strstr(s, "\n  \"vms\": [],\n"));
	CHECK(strstr(s, "\"guestKernelCodeMips\": null,"));
	CHECK(strstr(s, "\"guestKernelCodeEmulated\": null,"));
	CHECK(strstr(s, "\"kvmOffersVirtualizationToGuests\": null,"));
	CHECK(strstr(s, "\"supportsNesting\": false,"));
	CHECK(strstr(s, "\"reasons\": [\n      \"/dev/kvm is not accessible to this user"));
	CHECK(strstr(s, "\"verdict\": \"The virtualization host host \\\"q\\\" supports nested "
		     "virtualization: NO\"\n}\n"));
	json_free(&j);
}

static void test_report_text(void)
{
	struct hostinfo h = fine_host();
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	h.mips = 4.1;
	f = open_memstream(&text, &len);
	CHECK(f);
	hostinfo_report_text(f, &h, &report_vm, 1);
	fclose(f);
	CHECK(!strncmp(text, "Host\n  ComputerName:                     testhost\n", 49));
	CHECK(strstr(text, "\n  VirtualizationExtensions:         AMD-V (svm)\n"));
	CHECK(strstr(text, "\n  KvmModule:                        kvm_amd\n"));
	CHECK(strstr(text, "\n  NestedEnabled:                    True\n"));
	CHECK(strstr(text, "\n  GuestKernelCodeSpeed:             4.1 million instructions/s (emulated)\n"));
	CHECK(strstr(text, "\n\nVM NestedVM\n  Name:                             NestedVM\n"
		     "  SupportsNesting:                  NO\n"
		     "    - The host does not support nested virtualization (see the host's reasons)\n"
		     "    - ExposeVirtualizationExtensions is False: start the VM with nestvm run\n"
		     "      --nested, or run: nestvm nested enable NestedVM\n"
		     "  ExposeVirtualizationExtensions:   False\n"
		     "  DynamicMemoryEnabled:             False\n"
		     "  MacAddressSpoofing:               Off\n"
		     "  Memory:                           512M\n"
		     "  VCPUs:                            2\n"
		     "  State:                            Off\n"));
	CHECK(strstr(text, "\n\nThe virtualization host testhost supports nested virtualization: NO\n"
		     "  - KVM emulates guest kernel code in software here (4.1 million instructions/s,\n"));
	/* Every line fits in 80 columns. */
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");

		if (n > 80)
			FAILF("line of %zu columns: %.*s", n, (int)n, p);
		p += n + (p[n] == '\n');
	}
	free(text);
}

/* ---- the command line ---- */

/* Runs cmd_status with stdout and stderr captured into out and err. */
static int status_cmd(const char *const *words, char *out, char *err, size_t cap)
{
	char *argv[32], *copies[32];   /* opts_parse reorders argv */
	int argc = 0, status, saved[2], fds[2];
	char name[2][300];

	for (; words[argc]; argc++)
		argv[argc] = copies[argc] = strdup(words[argc]);
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < 2; i++) {
		snprintf(name[i], sizeof(name[i]), "%s/std%d", tmpdir, i + 1);
		fds[i] = open(name[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		CHECK(fds[i] >= 0);
		saved[i] = dup(i + 1);
		CHECK(saved[i] >= 0);
		CHECK(dup2(fds[i], i + 1) == i + 1);
	}
	status = cmd_status(argc, argv);
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < 2; i++) {
		char *buf = i ? err : out;
		ssize_t n;

		dup2(saved[i], i + 1);
		close(saved[i]);
		n = pread(fds[i], buf, cap - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		close(fds[i]);
		unlink(name[i]);
	}
	for (int i = 0; i < argc; i++)
		free(copies[i]);
	return status;
}

#define STATUS(...) status_cmd((const char *const[]){ __VA_ARGS__, NULL }, out, err, sizeof(out))

static void expect_usage(int status, const char *out, const char *err, const char *needle)
{
	if (status != EXIT_USAGE)
		FAILF("status %d, want %d (stderr: %s)", status, EXIT_USAGE, err);
	if (strncmp(err, "nestvm: status: ", 16) || !strstr(err, needle))
		FAILF("stderr '%s' does not say 'nestvm: status: ...%s'", err, needle);
	if (out[0])
		FAILF("stdout not empty: %s", out);
}

static void test_cli_usage_errors(void)
{
	static char out[16384], err[16384];

	expect_usage(STATUS("--bogus"), out, err, "unknown option '--bogus'");
	expect_usage(STATUS("myvm"), out, err, "unexpected argument 'myvm'");
	expect_usage(STATUS("--cpus", "0"), out, err, "--cpus '0': out of range");
	expect_usage(STATUS("--memory", "lots"), out, err, "--memory 'lots': not a size");
	expect_usage(STATUS("--name"), out, err, "'--name' needs a value");
	expect_usage(STATUS("--name", ""), out, err, "--name must not be empty");
	expect_usage(STATUS("--json=yes"), out, err, "takes no value");
}

static void test_cli_help(void)
{
	static char out[16384], err[16384];
	static const char *const mentions[] = {
		"Usage: nestvm status", "--name NAME", "--memory SIZE", "--cpus N", "--nested",
		"--json", "--kvm PATH", "Exit status: 0", "camelCase", "nestvm (KVM)", "512M",
	};

	CHECK_EQ(STATUS("--help"), 0);
	CHECK_EQ(err[0], 0);
	for (size_t i = 0; i < ARRAY_SIZE(mentions); i++)
		if (!strstr(out, mentions[i]))
			FAILF("--help does not mention '%s'", mentions[i]);
}

/* The real gatherer on this machine, with a device that is not there: no
 * KVM is touched, and the answer is NO whatever the processor. */
static void test_cli_missing_device(void)
{
	static char out[16384], err[16384];
	char dev[300];

	char store[300];

	/* An empty store: no VM of this machine's own store may show up. */
	snprintf(store, sizeof(store), "%s/empty-store", tmpdir);
	CHECK(mkdir(store, 0700) == 0 || errno == EEXIST);
	setenv("NESTVM_STORE", store, 1);
	snprintf(dev, sizeof(dev), "%s/no-such-kvm", tmpdir);
	CHECK_EQ(STATUS("--kvm", dev, "--json", "--name", "vm1", "--nested", "-n", "2"), 1);
	CHECK_EQ(err[0], 0);
	CHECK(!strncmp(out, "{\n  \"host\": {\n    \"computerName\": ", 34));
	CHECK(strstr(out, "\"kvmDevicePresent\": false,"));
	CHECK(strstr(out, "\"guestKernelCodeMips\": null,"));
	CHECK(strstr(out, "\"name\": \"vm1\","));
	CHECK(strstr(out, "\"exposeVirtualizationExtensions\": true,"));
	CHECK(strstr(out, "\"vcpus\": 2,"));
	CHECK(strstr(out, " is missing"));
	CHECK(strstr(out, "supports nested virtualization: NO\"\n}\n"));

	CHECK_EQ(STATUS("--kvm", dev), 1);
	CHECK(!strncmp(out, "Host\n  ComputerName: ", 21));
	CHECK(strstr(out, "(missing)\n"));
	CHECK(!strstr(out, "\nVM "));          /* no VM flags, no VM section */
	CHECK(strstr(out, "supports nested virtualization: NO\n  - "));
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nestvm-test-status-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_verdict_fine);
	RUN(test_verdict_no_extensions);
	RUN(test_verdict_virtual_host_without_extensions);
	RUN(test_verdict_module_not_loaded);
	RUN(test_verdict_nested_off);
	RUN(test_verdict_dev_kvm_missing);
	RUN(test_verdict_no_permission);
	RUN(test_verdict_emulated);
	RUN(test_verdict_no_guest_virt);
	RUN(test_verdict_no_slat);
	RUN(test_verdict_software_kvm);
	RUN(test_verdict_nestvm_guest_without_nested);
	RUN(test_verdict_reason_cap);
	RUN(test_vm_verdict);
	RUN(test_hypervisor_names);
	RUN(test_hypervisor_none);
	RUN(test_hypervisor_nestvm);
	RUN(test_parse_cpuinfo);
	RUN(test_gather_fake_root);
	RUN(test_gather_intel_guest);
	RUN(test_gather_no_permission);
	RUN(test_gather_probe_fails);
	RUN(test_report_json_exact);
	RUN(test_report_json_failing_host);
	RUN(test_report_text);
	RUN(test_cli_usage_errors);
	RUN(test_cli_help);
	RUN(test_cli_missing_device);
	harness_remove_tree(tmpdir);
	return HARNESS_END();
}

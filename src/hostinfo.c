/* Host facts for "nestvm status", the verdict over them and its report.
 * Gathering reads /proc, /sys and /dev under a root prefix and reaches CPUID
 * and KVM through hostinfo_ops, so that tests run it on a made-up host. */
#include "hostinfo.h"

#include <cpuid.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "arch/x86/cpuid.h"
#include "kvm.h"
#include "vm.h"

#define HOSTINFO_HV_BASE 0x40000000u
#define HOSTINFO_HV_LAST 0x4000ff00u
#define HOSTINFO_HV_STEP 0x100u

/* ---- the real world, where the ops leave it to us ---- */

static void hostinfo_real_cpuid(void *opaque, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	(void)opaque;
	__cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
}

static int hostinfo_real_probe_speed(void *opaque, const char *kvm_path, double *mips)
{
	(void)opaque;
	return vm_probe_speed(kvm_path, mips);
}

static int hostinfo_real_guest_virt(void *opaque, const char *kvm_path, bool *offered)
{
	struct kvm_cpuid2 *c = NULL;
	struct kvm_sys sys;
	int r;

	(void)opaque;
	r = kvm_sys_open(&sys, kvm_path);
	if (r < 0)
		return r;
	r = kvm_get_supported_cpuid(&sys, &c);
	if (r >= 0)
		*offered = cpuid_has_virt(c);
	free(c);
	kvm_sys_close(&sys);
	return r < 0 ? r : 0;
}

static void hostinfo_fill_ops(struct hostinfo_ops *o, const struct hostinfo_ops *given)
{
	if (given)
		*o = *given;
	else
		memset(o, 0, sizeof(*o));
	if (!o->cpuid)
		o->cpuid = hostinfo_real_cpuid;
	if (!o->probe_speed)
		o->probe_speed = hostinfo_real_probe_speed;
	if (!o->guest_virt)
		o->guest_virt = hostinfo_real_guest_virt;
}

/* ---- reading the file tree ---- */

/* Copies with truncation, which is fine for names in a report. */
static void hostinfo_copy(char *dst, size_t len, const char *src)
{
	size_t n = 0;

	while (n + 1 < len && src[n]) {
		dst[n] = src[n];
		n++;
	}
	dst[n] = '\0';
}

/* Control characters would garble the report; keep everything else. */
static void hostinfo_clean(char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = s[i] == '\t' ? ' ' : '?';
	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
}

static void hostinfo_path(char *buf, size_t len, const char *root, const char *rel)
{
	snprintf(buf, len, "%s%s", root, rel);
}

/* The first line of root/rel, without its newline and trailing blanks. */
static int hostinfo_read_line(const char *root, const char *rel, char *buf, size_t len)
{
	char path[4096];
	FILE *f;
	bool got;

	hostinfo_path(path, sizeof(path), root, rel);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	got = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!got)
		buf[0] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	hostinfo_clean(buf);
	return 0;
}

static void hostinfo_read_or(const char *root, const char *rel, char *buf, size_t len,
			     const char *fallback)
{
	if (hostinfo_read_line(root, rel, buf, len) < 0 || !buf[0])
		hostinfo_copy(buf, len, fallback);
}

static bool hostinfo_has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; *p;) {
		size_t w;

		p += strspn(p, " \t");
		w = strcspn(p, " \t");
		if (w == n && !strncmp(p, word, n))
			return true;
		p += w;
	}
	return false;
}

/* One "key<tabs>: value" line of the first CPU's block. */
static void hostinfo_cpuinfo_line(struct hostinfo *h, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	char key[32], val[4096];
	size_t klen, vlen;

	if (!colon)
		return;
	klen = (size_t)(colon - line);
	while (klen && (line[klen - 1] == ' ' || line[klen - 1] == '\t'))
		klen--;
	if (klen >= sizeof(key))
		return;
	memcpy(key, line, klen);
	key[klen] = '\0';
	colon++;
	while (colon < line + len && (*colon == ' ' || *colon == '\t'))
		colon++;
	vlen = MIN((size_t)(line + len - colon), sizeof(val) - 1);
	memcpy(val, colon, vlen);
	val[vlen] = '\0';
	hostinfo_clean(val);

	if (!strcmp(key, "vendor_id")) {
		hostinfo_copy(h->cpu_vendor, sizeof(h->cpu_vendor), val);
	} else if (!strcmp(key, "model name")) {
		hostinfo_copy(h->cpu_model, sizeof(h->cpu_model), val);
	} else if (!strcmp(key, "flags")) {
		h->vmx = hostinfo_has_word(val, "vmx");
		h->svm = hostinfo_has_word(val, "svm");
		h->ept = h->ept || hostinfo_has_word(val, "ept");
		h->npt = hostinfo_has_word(val, "npt");
	} else if (!strcmp(key, "vmx flags")) {
		/* Since Linux 5.8 the VMX features have a line of their own. */
		h->ept = h->ept || hostinfo_has_word(val, "ept");
	}
}

void hostinfo_parse_cpuinfo(struct hostinfo *h, const char *text)
{
	hostinfo_copy(h->cpu_vendor, sizeof(h->cpu_vendor), "unknown");
	hostinfo_copy(h->cpu_model, sizeof(h->cpu_model), "unknown");
	h->vmx = h->svm = h->ept = h->npt = false;
	while (*text) {
		size_t n = strcspn(text, "\n");

		if (n == 0 || (n == 1 && text[0] == '\r'))
			break;          /* the blank line after the first CPU */
		hostinfo_cpuinfo_line(h, text, n);
		text += n;
		if (*text)
			text++;
	}
}

static void hostinfo_read_cpuinfo(struct hostinfo *h, const char *root)
{
	char path[4096], *line = NULL, *text = NULL;
	size_t cap = 0, len = 0;
	ssize_t n;
	FILE *f;

	hostinfo_parse_cpuinfo(h, "");
	hostinfo_path(path, sizeof(path), root, "/proc/cpuinfo");
	f = fopen(path, "re");
	if (!f)
		return;
	/* Only the first CPU's block: a big machine lists hundreds. */
	while ((n = getline(&line, &cap, f)) > 0 && line[0] != '\n') {
		char *p = realloc(text, len + (size_t)n + 1);

		if (!p)
			break;
		text = p;
		memcpy(text + len, line, (size_t)n + 1);
		len += (size_t)n;
	}
	fclose(f);
	free(line);
	if (text)
		hostinfo_parse_cpuinfo(h, text);
	free(text);
}

/* ---- CPUID: is there a hypervisor under us, and which ---- */

static const struct {
	char sig[13];
	const char *name;
} hostinfo_hv_names[] = {
	{ "KVMKVMKVM\0\0\0", "KVM" },
	{ "Microsoft Hv", "Hyper-V" },
	{ "VMwareVMware", "VMware" },
	{ "XenVMMXenVMM", "Xen" },
	{ "TCGTCGTCGTCG", "QEMU TCG" },
	{ "VBoxVBoxVBox", "VirtualBox" },
	{ "bhyve bhyve ", "bhyve" },
};

static void hostinfo_sig(const uint32_t regs[4], char sig[12])
{
	memcpy(sig, &regs[1], 4);
	memcpy(sig + 4, &regs[2], 4);
	memcpy(sig + 8, &regs[3], 4);
}

void hostinfo_hypervisor(const struct hostinfo_ops *given, bool *present, char *name, size_t len)
{
	struct hostinfo_ops ops;
	uint32_t r[4] = { 0 };
	char sig[12];
	size_t n = 0;

	hostinfo_fill_ops(&ops, given);
	ops.cpuid(ops.opaque, 1, 0, r);
	*present = r[2] & (1u << 31);
	name[0] = '\0';
	if (!*present)
		return;
	/* nestvm keeps KVM's leaves at the base (guests want kvmclock) and puts
	 * its signature further up, so look through every range. */
	for (uint32_t leaf = HOSTINFO_HV_BASE; leaf <= HOSTINFO_HV_LAST; leaf += HOSTINFO_HV_STEP) {
		ops.cpuid(ops.opaque, leaf, 0, r);
		hostinfo_sig(r, sig);
		if (!memcmp(sig, CPUID_NESTVM_SIGNATURE, 12)) {
			hostinfo_copy(name, len, HOSTINFO_HV_NESTVM);
			return;
		}
	}
	ops.cpuid(ops.opaque, HOSTINFO_HV_BASE, 0, r);
	hostinfo_sig(r, sig);
	for (size_t i = 0; i < ARRAY_SIZE(hostinfo_hv_names); i++) {
		if (!memcmp(sig, hostinfo_hv_names[i].sig, 12)) {
			hostinfo_copy(name, len, hostinfo_hv_names[i].name);
			return;
		}
	}
	/* Unknown: the signature itself, made printable. */
	for (size_t i = 0; i < 12 && sig[i] && n + 1 < len; i++)
		name[n++] = sig[i] >= 0x20 && sig[i] < 0x7f ? sig[i] : '?';
	name[n] = '\0';
	hostinfo_clean(name);
	if (!name[0])
		hostinfo_copy(name, len, "unknown (no signature)");
}

/* ---- gathering ---- */

/* The vendor modules that make /dev/kvm work. kvm_pvm runs guests without
 * VT-x/AMD-V, as on some cloud VMs; it cannot offer either to its guests. */
static const char *const hostinfo_kvm_modules[] = { "kvm_intel", "kvm_amd", "kvm_pvm" };

static bool hostinfo_exists(const char *root, const char *rel)
{
	char path[4096];
	struct stat st;

	hostinfo_path(path, sizeof(path), root, rel);
	return stat(path, &st) == 0;
}

static void hostinfo_read_kvm_module(struct hostinfo *h, const char *root)
{
	char rel[128], val[32];

	h->kvm_module[0] = '\0';
	h->nested = HOSTINFO_UNKNOWN;
	for (size_t i = 0; i < ARRAY_SIZE(hostinfo_kvm_modules); i++) {
		snprintf(rel, sizeof(rel), "/sys/module/%s", hostinfo_kvm_modules[i]);
		if (hostinfo_exists(root, rel)) {
			hostinfo_copy(h->kvm_module, sizeof(h->kvm_module), hostinfo_kvm_modules[i]);
			break;
		}
	}
	if (!h->kvm_module[0])
		return;
	snprintf(rel, sizeof(rel), "/sys/module/%s/parameters/nested", h->kvm_module);
	if (hostinfo_read_line(root, rel, val, sizeof(val)) < 0)
		return;
	if (!strcmp(val, "Y") || !strcmp(val, "y") || !strcmp(val, "1"))
		h->nested = HOSTINFO_YES;
	else if (!strcmp(val, "N") || !strcmp(val, "n") || !strcmp(val, "0"))
		h->nested = HOSTINFO_NO;
}

void hostinfo_gather(struct hostinfo *h, const struct hostinfo_source *src)
{
	const char *root = src && src->root ? src->root : "";
	const char *kvm = src && src->kvm_path ? src->kvm_path : "/dev/kvm";
	struct hostinfo_ops ops;
	char path[4096];
	struct utsname u;
	bool offered = false;
	int r;

	memset(h, 0, sizeof(*h));
	hostinfo_fill_ops(&ops, src ? src->ops : NULL);

	/* The real host answers through uname(2); a made-up one through the
	 * files that show the same thing. */
	if (!root[0] && uname(&u) == 0) {
		hostinfo_copy(h->computer_name, sizeof(h->computer_name), u.nodename);
		hostinfo_copy(h->kernel, sizeof(h->kernel), u.release);
		hostinfo_clean(h->computer_name);
		hostinfo_clean(h->kernel);
	} else {
		hostinfo_read_or(root, "/proc/sys/kernel/hostname", h->computer_name,
				 sizeof(h->computer_name), "unknown");
		hostinfo_read_or(root, "/proc/sys/kernel/osrelease", h->kernel, sizeof(h->kernel),
				 "unknown");
	}
	hostinfo_read_or(root, "/sys/class/dmi/id/sys_vendor", h->manufacturer,
			 sizeof(h->manufacturer), "unknown");
	hostinfo_read_or(root, "/sys/class/dmi/id/product_name", h->model, sizeof(h->model),
			 "unknown");
	hostinfo_read_cpuinfo(h, root);
	hostinfo_hypervisor(&ops, &h->under_hypervisor, h->hypervisor, sizeof(h->hypervisor));
	hostinfo_read_kvm_module(h, root);

	hostinfo_copy(h->kvm_path, sizeof(h->kvm_path), kvm);
	hostinfo_path(path, sizeof(path), root, kvm);
	h->kvm_present = access(path, F_OK) == 0;
	h->kvm_access = h->kvm_present && access(path, R_OK | W_OK) == 0;

	h->speed = HOSTINFO_SPEED_SKIPPED;
	h->guest_virt = HOSTINFO_UNKNOWN;
	if (!h->kvm_access)
		return;
	r = ops.probe_speed(ops.opaque, path, &h->mips);
	h->speed = r < 0 ? HOSTINFO_SPEED_FAILED : HOSTINFO_SPEED_MEASURED;
	h->speed_err = r < 0 ? r : 0;
	if (r < 0)
		h->mips = 0;
	r = ops.guest_virt(ops.opaque, path, &offered);
	if (r < 0)
		h->guest_virt_err = r;
	else
		h->guest_virt = offered ? HOSTINFO_YES : HOSTINFO_NO;
}

/* ---- the verdict ---- */

static void hostinfo_reason(struct hostinfo_verdict *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void hostinfo_reason(struct hostinfo_verdict *v, const char *fmt, ...)
{
	va_list ap;

	v->ok = false;
	if (v->nreasons == HOSTINFO_MAX_REASONS)
		return;
	va_start(ap, fmt);
	vsnprintf(v->reason[v->nreasons++], HOSTINFO_REASON_LEN, fmt, ap);
	va_end(ap);
}

static bool hostinfo_amd(const struct hostinfo *h)
{
	return !strcmp(h->cpu_vendor, "AuthenticAMD") || !strcmp(h->cpu_vendor, "HygonGenuine");
}

/* The module this host should load: what is loaded if it is a hardware one,
 * else the one that fits the processor. */
static const char *hostinfo_hw_module(const struct hostinfo *h)
{
	if (!strcmp(h->kvm_module, "kvm_intel") || !strcmp(h->kvm_module, "kvm_amd"))
		return h->kvm_module;
	if (h->svm)
		return "kvm_amd";
	if (h->vmx)
		return "kvm_intel";
	return hostinfo_amd(h) ? "kvm_amd" : "kvm_intel";
}

static bool hostinfo_hw_kvm(const struct hostinfo *h)
{
	return !strcmp(h->kvm_module, "kvm_intel") || !strcmp(h->kvm_module, "kvm_amd");
}

void hostinfo_verdict(const struct hostinfo *h, struct hostinfo_verdict *v)
{
	const char *mod = hostinfo_hw_module(h);
	const char *dev = h->kvm_path[0] ? h->kvm_path : "/dev/kvm";
	bool hw = h->vmx || h->svm;
	bool nested_off = hostinfo_hw_kvm(h) && h->nested == HOSTINFO_NO;

	memset(v, 0, sizeof(*v));
	v->ok = true;

	if (!hw && !strcmp(h->hypervisor, HOSTINFO_HV_NESTVM))
		hostinfo_reason(v, "This machine is a nestvm guest started without --nested: it has no hardware "
			       "virtualization (no vmx or svm flag). Expose the extensions on its host: start "
			       "this VM there with 'nestvm run --nested', or run 'nestvm nested enable NAME' "
			       "on the host and restart this VM");
	else if (!hw && h->under_hypervisor)
		hostinfo_reason(v, "The processor does not offer hardware virtualization (no vmx or svm flag): "
			       "this machine is a %s guest, so expose the extensions to it on its host "
			       "(on nestvm: nestvm run --nested / nestvm nested enable NAME; on Hyper-V: "
			       "Set-VMProcessor -ExposeVirtualizationExtensions $true; on QEMU/KVM: -cpu host "
			       "with nested=1 in the host's kvm_intel or kvm_amd)",
			       h->hypervisor[0] ? h->hypervisor : "virtual machine");
	else if (!hw)
		hostinfo_reason(v, "The processor does not offer hardware virtualization (no vmx or svm flag): "
			       "enable VT-x/AMD-V in the firmware, or on a virtual host expose the extensions "
			       "to this VM (on nestvm: nestvm run --nested / nestvm nested enable NAME)");
	else if (h->vmx && !h->ept)
		hostinfo_reason(v, "The processor has VT-x but no EPT (no ept flag): nested guests would run on "
			       "slow shadow page tables; enable EPT (kvm_intel ept=1 on a KVM host, or a "
			       "processor or host that exposes it)");
	else if (h->svm && !h->npt)
		hostinfo_reason(v, "The processor has AMD-V but no NPT (no npt flag): nested guests would run on "
			       "slow shadow page tables; enable NPT (kvm_amd npt=1 on a KVM host, or a "
			       "processor or host that exposes it)");

	if (!h->kvm_module[0])
		hostinfo_reason(v, "KVM is not loaded: modprobe %s%s", mod,
				hw ? "" : " (it loads only where the processor offers hardware virtualization, see above)");
	else if (nested_off)
		hostinfo_reason(v, "Nested virtualization is off in %s: echo 'options %s nested=1' > "
				"/etc/modprobe.d/kvm.conf, then modprobe -r %s && modprobe %s",
				mod, mod, mod, mod);

	if (!h->kvm_present) {
		if (h->kvm_module[0])
			hostinfo_reason(v, "%s is missing although %s is loaded: check that udev runs, or "
					"create it with mknod %s c 10 232", dev, h->kvm_module, dev);
		else
			hostinfo_reason(v, "%s is missing: it appears when KVM loads (modprobe %s)", dev, mod);
	} else if (!h->kvm_access) {
		hostinfo_reason(v, "%s is not accessible to this user: add the user to the 'kvm' "
				"group (usermod -aG kvm USER, then log in again) or run as root", dev);
	}
	if (!h->kvm_present || !h->kvm_access)
		return;         /* nothing below could be measured */

	switch (h->speed) {
	case HOSTINFO_SPEED_MEASURED:
		if (h->mips < VM_PROBE_MIN_MIPS)
			hostinfo_reason(v, "KVM emulates guest kernel code in software here (%.1f million "
					"instructions/s, where hardware-assisted KVM runs well over %.0f): "
					"guests would crawl and nested ones could not boot; %s", h->mips,
					VM_PROBE_MIN_MIPS,
					hw ? "use kvm_intel or kvm_amd on VT-x/AMD-V rather than a software backend"
					   : "the missing hardware virtualization above is the cause (for testing, "
					     "scripts/simhost simulates a host that has it)");
		break;
	case HOSTINFO_SPEED_FAILED:
		hostinfo_reason(v, "KVM could not run a test guest on %s (%s): KVM on this host is not "
				"usable; see dmesg", dev, strerror(-h->speed_err));
		break;
	case HOSTINFO_SPEED_SKIPPED:
		hostinfo_reason(v, "The speed of guest kernel code was not measured");
		break;
	}

	if (h->guest_virt == HOSTINFO_NO) {
		if (!hw)
			hostinfo_reason(v, "KVM does not offer VMX/SVM to guests: the processor has none to "
					"offer (see above)");
		else if (nested_off)
			hostinfo_reason(v, "KVM does not offer VMX/SVM to guests: turn nested on in %s (see "
					"above)", mod);
		else if (!hostinfo_hw_kvm(h))
			hostinfo_reason(v, "KVM does not offer VMX/SVM to guests: %s runs guests without "
					"hardware virtualization and cannot pass it on; load %s instead",
					h->kvm_module, mod);
		else
			hostinfo_reason(v, "KVM does not offer VMX/SVM to guests although %s is loaded: "
					"check /sys/module/%s/parameters/nested and use a newer kernel",
					mod, mod);
	} else if (h->guest_virt == HOSTINFO_UNKNOWN) {
		hostinfo_reason(v, "Whether KVM offers VMX/SVM to guests is unknown: its supported CPUID "
				"could not be read (%s)",
				h->guest_virt_err ? strerror(-h->guest_virt_err) : "not asked");
	}
}

/* NAME as a shell word, for a fix the user may paste. */
static const char *hostinfo_shell_quote(const char *s, char *buf, size_t len)
{
	size_t n = 0;

	if (s[0] && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+:@%/") == strlen(s))
		return s;
	buf[n++] = '\'';
	for (; *s && n + 6 < len; s++) {
		if (*s == '\'') {
			memcpy(buf + n, "'\\''", 4);
			n += 4;
		} else {
			buf[n++] = *s;
		}
	}
	buf[n++] = '\'';
	buf[n] = '\0';
	return buf;
}

void hostinfo_vm_verdict(const struct hostinfo_verdict *host, const struct hostinfo_vm *vm,
			 struct hostinfo_verdict *v)
{
	unsigned int needs = vmconfig_nesting_needs(vm->cfg);
	char have[32], need[32], quoted[256];

	memset(v, 0, sizeof(*v));
	v->ok = true;
	if (!host->ok)
		hostinfo_reason(v, "The host does not support nested virtualization (see the host's reasons)");
	if (needs & VMCONFIG_NEST_EXPOSE)
		hostinfo_reason(v, "ExposeVirtualizationExtensions is False: start the VM with "
				"nestvm run --nested, or run: nestvm nested enable %s",
				hostinfo_shell_quote(vm->name, quoted, sizeof(quoted)));
	if (needs & VMCONFIG_NEST_FIXED_MEMORY)
		hostinfo_reason(v, "DynamicMemoryEnabled is True: a nested host needs all of its memory "
				"fixed; turn dynamic memory off");
	if (needs & VMCONFIG_NEST_MEMORY)
		hostinfo_reason(v, "Memory is %s, below the %s that nestvm takes as the least for a nested "
				"host (Hyper-V asks for 1G; a Linux KVM host with a small guest fits in "
				"%s): give it --memory %s or more",
				util_fmt_size(vm->cfg->memory, have, sizeof(have)),
				util_fmt_size(VMCONFIG_NESTED_MIN_MEMORY, need, sizeof(need)), need, need);
}

/* MacAddressSpoofing: On when the VM has adapters and every one allows it. */
static bool hostinfo_vm_spoofing(const struct hostinfo_vm *vm)
{
	return vm->cfg->nnics && !(vmconfig_nesting_needs(vm->cfg) & VMCONFIG_NEST_SPOOFING);
}

void hostinfo_summary(const struct hostinfo *h, const struct hostinfo_verdict *v,
		      char *buf, size_t len)
{
	snprintf(buf, len, "The virtualization host %s supports nested virtualization: %s",
		 h->computer_name[0] ? h->computer_name : "unknown", v->ok ? "YES" : "NO");
}

/* ---- the report ---- */

static const char *hostinfo_ext_type(const struct hostinfo *h)
{
	return h->vmx ? "Intel VT-x" : h->svm ? "AMD-V" : NULL;
}

static const char *hostinfo_slat_type(const struct hostinfo *h)
{
	return h->vmx && h->ept ? "EPT" : h->svm && h->npt ? "NPT" : h->ept ? "EPT" : h->npt ? "NPT" : NULL;
}

static const char *hostinfo_true_false(enum hostinfo_tri t, const char *unknown)
{
	return t == HOSTINFO_YES ? "True" : t == HOSTINFO_NO ? "False" : unknown;
}

static void hostinfo_line(FILE *out, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void hostinfo_line(FILE *out, const char *key, const char *fmt, ...)
{
	va_list ap;

	fprintf(out, "  %s:%*s", key, (int)(33 - strlen(key)), "");
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

/* Reasons as "- " items wrapped at 80 columns: they are long, and a fix
 * should stay readable in a terminal. Words are never split. */
static void hostinfo_reasons_text(FILE *out, const struct hostinfo_verdict *v, const char *indent)
{
	enum { WIDTH = 80 };

	for (unsigned int i = 0; i < v->nreasons; i++) {
		const char *p = v->reason[i];
		size_t col = strlen(indent) + 2;

		fprintf(out, "%s- ", indent);
		for (bool first = true; *p; first = false) {
			size_t w;

			p += strspn(p, " ");
			w = strcspn(p, " ");
			if (!w)
				break;
			if (!first && col + 1 + w > WIDTH) {
				fprintf(out, "\n%s  ", indent);
				col = strlen(indent) + 2;
			} else if (!first) {
				fputc(' ', out);
				col++;
			}
			fwrite(p, 1, w, out);
			col += w;
			p += w;
		}
		fputc('\n', out);
	}
}

void hostinfo_report_text(FILE *out, const struct hostinfo *h,
			  const struct hostinfo_vm *vms, size_t nvms)
{
	struct hostinfo_verdict hv, vv;
	const char *dev = h->kvm_path[0] ? h->kvm_path : "/dev/kvm";
	char buf[HOSTINFO_SUMMARY_LEN];

	hostinfo_verdict(h, &hv);
	fputs("Host\n", out);
	hostinfo_line(out, "ComputerName", "%s", h->computer_name);
	hostinfo_line(out, "Manufacturer", "%s", h->manufacturer);
	hostinfo_line(out, "Model", "%s", h->model);
	hostinfo_line(out, "ProcessorVendor", "%s", h->cpu_vendor);
	hostinfo_line(out, "ProcessorModel", "%s", h->cpu_model);
	hostinfo_line(out, "KernelRelease", "%s", h->kernel);
	hostinfo_line(out, "Hypervisor", "%s", h->under_hypervisor ? h->hypervisor : "none");
	if (hostinfo_ext_type(h))
		hostinfo_line(out, "VirtualizationExtensions", "%s (%s)", hostinfo_ext_type(h),
			      h->vmx ? "vmx" : "svm");
	else
		hostinfo_line(out, "VirtualizationExtensions", "none (no vmx or svm flag)");
	hostinfo_line(out, "SecondLevelAddressTranslation", "%s",
		      hostinfo_slat_type(h) ? hostinfo_slat_type(h) : "none (no ept or npt flag)");
	hostinfo_line(out, "KvmModule", "%s", h->kvm_module[0] ? h->kvm_module : "not loaded");
	if (!h->kvm_module[0])
		hostinfo_line(out, "NestedEnabled", "unknown (KVM not loaded)");
	else if (h->nested == HOSTINFO_UNKNOWN)
		hostinfo_line(out, "NestedEnabled", "unknown (%s has no nested parameter)", h->kvm_module);
	else
		hostinfo_line(out, "NestedEnabled", "%s", hostinfo_true_false(h->nested, ""));
	hostinfo_line(out, "KvmDevice", "%s (%s)", dev,
		      !h->kvm_present ? "missing" :
		      h->kvm_access ? "present, readable and writable" :
		      "present, not readable and writable by this user");
	switch (h->speed) {
	case HOSTINFO_SPEED_MEASURED:
		hostinfo_line(out, "GuestKernelCodeSpeed", "%.1f million instructions/s (%s)", h->mips,
			      h->mips < VM_PROBE_MIN_MIPS ? "emulated" : "hardware-assisted");
		break;
	case HOSTINFO_SPEED_FAILED:
		hostinfo_line(out, "GuestKernelCodeSpeed", "unknown (the test guest failed: %s)",
			      strerror(-h->speed_err));
		break;
	case HOSTINFO_SPEED_SKIPPED:
		hostinfo_line(out, "GuestKernelCodeSpeed", "unknown (%s unusable)", dev);
		break;
	}
	if (h->guest_virt != HOSTINFO_UNKNOWN)
		hostinfo_line(out, "KvmOffersVirtualizationToGuests", "%s",
			      hostinfo_true_false(h->guest_virt, ""));
	else if (h->guest_virt_err)
		hostinfo_line(out, "KvmOffersVirtualizationToGuests", "unknown (%s)",
			      strerror(-h->guest_virt_err));
	else
		hostinfo_line(out, "KvmOffersVirtualizationToGuests", "unknown (%s unusable)", dev);

	for (size_t i = 0; i < nvms; i++) {
		const struct hostinfo_vm *vm = &vms[i];

		hostinfo_vm_verdict(&hv, vm, &vv);
		fprintf(out, "\nVM %s\n", vm->name);
		hostinfo_line(out, "Name", "%s", vm->name);
		hostinfo_line(out, "SupportsNesting", "%s", vv.ok ? "YES" : "NO");
		hostinfo_reasons_text(out, &vv, "    ");
		hostinfo_line(out, "ExposeVirtualizationExtensions", "%s", vm->cfg->expose_virt ? "True" : "False");
		hostinfo_line(out, "DynamicMemoryEnabled", "%s", vm->cfg->dynamic_memory ? "True" : "False");
		hostinfo_line(out, "MacAddressSpoofing", "%s", hostinfo_vm_spoofing(vm) ? "On" : "Off");
		hostinfo_line(out, "Memory", "%s", util_fmt_size(vm->cfg->memory, buf, sizeof(buf)));
		hostinfo_line(out, "VCPUs", "%u", vm->cfg->cpus);
		hostinfo_line(out, "State", "%s", vm->state ? vm->state : "Off");
		if (vm->sandbox)
			hostinfo_line(out, "Sandbox", "%s", vm->sandbox);
	}

	hostinfo_summary(h, &hv, buf, sizeof(buf));
	fprintf(out, "\n%s\n", buf);
	hostinfo_reasons_text(out, &hv, "  ");
}

static void hostinfo_kv_tri(struct json *j, const char *key, enum hostinfo_tri t)
{
	if (t == HOSTINFO_UNKNOWN)
		json_kv_null(j, key);
	else
		json_kv_bool(j, key, t == HOSTINFO_YES);
}

static void hostinfo_reasons_json(struct json *j, const struct hostinfo_verdict *v)
{
	json_key(j, "reasons");
	json_array_begin(j);
	for (unsigned int i = 0; i < v->nreasons; i++)
		json_str(j, v->reason[i]);
	json_array_end(j);
}

void hostinfo_report_json(struct json *j, const struct hostinfo *h,
			  const struct hostinfo_vm *vms, size_t nvms)
{
	struct hostinfo_verdict hv, vv;
	bool measured = h->speed == HOSTINFO_SPEED_MEASURED;
	char buf[HOSTINFO_SUMMARY_LEN];

	hostinfo_verdict(h, &hv);
	json_object_begin(j);
	json_key(j, "host");
	json_object_begin(j);
	json_kv_string(j, "computerName", h->computer_name);
	json_kv_string(j, "manufacturer", h->manufacturer);
	json_kv_string(j, "model", h->model);
	json_kv_string(j, "processorVendor", h->cpu_vendor);
	json_kv_string(j, "processorModel", h->cpu_model);
	json_kv_string(j, "kernelRelease", h->kernel);
	json_kv_bool(j, "hypervisorPresent", h->under_hypervisor);
	json_kv_string(j, "hypervisor", h->under_hypervisor ? h->hypervisor : NULL);
	json_kv_bool(j, "virtualizationExtensions", h->vmx || h->svm);
	json_kv_string(j, "virtualizationExtensionsType", hostinfo_ext_type(h));
	json_kv_bool(j, "secondLevelAddressTranslation", hostinfo_slat_type(h) != NULL);
	json_kv_string(j, "secondLevelAddressTranslationType", hostinfo_slat_type(h));
	json_kv_bool(j, "kvmLoaded", h->kvm_module[0] != '\0');
	json_kv_string(j, "kvmModule", h->kvm_module[0] ? h->kvm_module : NULL);
	hostinfo_kv_tri(j, "nestedEnabled", h->nested);
	json_kv_string(j, "kvmDevice", h->kvm_path[0] ? h->kvm_path : "/dev/kvm");
	json_kv_bool(j, "kvmDevicePresent", h->kvm_present);
	json_kv_bool(j, "kvmDeviceAccessible", h->kvm_access);
	if (measured)
		json_kv_double(j, "guestKernelCodeMips", (double)(long long)(h->mips * 10 + 0.5) / 10);
	else
		json_kv_null(j, "guestKernelCodeMips");
	if (measured)
		json_kv_bool(j, "guestKernelCodeEmulated", h->mips < VM_PROBE_MIN_MIPS);
	else
		json_kv_null(j, "guestKernelCodeEmulated");
	hostinfo_kv_tri(j, "kvmOffersVirtualizationToGuests", h->guest_virt);
	json_kv_bool(j, "supportsNesting", hv.ok);
	hostinfo_reasons_json(j, &hv);
	json_object_end(j);

	json_key(j, "vms");
	json_array_begin(j);
	for (size_t i = 0; i < nvms; i++) {
		const struct hostinfo_vm *vm = &vms[i];

		hostinfo_vm_verdict(&hv, vm, &vv);
		json_object_begin(j);
		json_kv_string(j, "name", vm->name);
		json_kv_bool(j, "supportsNesting", vv.ok);
		hostinfo_reasons_json(j, &vv);
		json_kv_bool(j, "exposeVirtualizationExtensions", vm->cfg->expose_virt);
		json_kv_bool(j, "dynamicMemoryEnabled", vm->cfg->dynamic_memory);
		json_kv_bool(j, "macAddressSpoofing", hostinfo_vm_spoofing(vm));
		json_kv_string(j, "memory", util_fmt_size(vm->cfg->memory, buf, sizeof(buf)));
		json_kv_uint(j, "memoryBytes", vm->cfg->memory);
		json_kv_uint(j, "vcpus", vm->cfg->cpus);
		json_kv_string(j, "state", vm->state ? vm->state : "Off");
		if (vm->sandbox)
			json_kv_string(j, "sandbox", vm->sandbox);
		json_object_end(j);
	}
	json_array_end(j);
	hostinfo_summary(h, &hv, buf, sizeof(buf));
	json_kv_string(j, "verdict", buf);
	json_object_end(j);
}

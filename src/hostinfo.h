/* Can this host run nested virtualization? The facts about the host (read
 * from proc/sys files under a root prefix, CPUID and KVM through an ops
 * struct, so tests fake all of them), a pure verdict over those facts, and
 * the report of both as text or JSON for "nestvm status". */
#ifndef NESTVM_HOSTINFO_H
#define NESTVM_HOSTINFO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "json.h"
#include "vmconfig.h"

/* What nestvm's hypervisor leaves make of the host; see hostinfo_hypervisor(). */
#define HOSTINFO_HV_NESTVM "nestvm (KVM)"

#define HOSTINFO_MAX_REASONS 12
#define HOSTINFO_REASON_LEN  512

enum hostinfo_tri { HOSTINFO_UNKNOWN, HOSTINFO_NO, HOSTINFO_YES };

enum hostinfo_speed {
	HOSTINFO_SPEED_SKIPPED,   /* /dev/kvm unusable: not measured */
	HOSTINFO_SPEED_MEASURED,  /* mips holds the figure */
	HOSTINFO_SPEED_FAILED,    /* the test guest did not run; speed_err says why */
};

struct hostinfo {
	char computer_name[256];
	char manufacturer[128];         /* "unknown" where DMI is absent */
	char model[128];
	char cpu_vendor[64];            /* vendor_id of the first CPU */
	char cpu_model[128];            /* its "model name" */
	char kernel[128];               /* kernel release */

	bool under_hypervisor;          /* CPUID.1:ECX[31] */
	char hypervisor[64];            /* "KVM", HOSTINFO_HV_NESTVM, ...; "" */

	bool vmx, svm;                  /* /proc/cpuinfo flags */
	bool ept, npt;

	char kvm_module[32];            /* kvm_intel, kvm_amd, kvm_pvm; "" if none */
	enum hostinfo_tri nested;       /* its "nested" parameter */

	char kvm_path[256];             /* as the user knows it: /dev/kvm */
	bool kvm_present;
	bool kvm_access;                /* readable and writable by this user */

	enum hostinfo_speed speed;
	double mips;                    /* guest kernel code, million instr/s */
	int speed_err;                  /* -errno when speed is FAILED */

	enum hostinfo_tri guest_virt;   /* KVM offers VMX/SVM to its guests */
	int guest_virt_err;             /* -errno when it could not be read */
};

/* What gathering reaches outside the file tree. Any NULL member gets the
 * real thing: the cpuid instruction, vm_probe_speed(), KVM's supported CPUID. */
struct hostinfo_ops {
	void (*cpuid)(void *opaque, uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);
	int (*probe_speed)(void *opaque, const char *kvm_path, double *mips);
	int (*guest_virt)(void *opaque, const char *kvm_path, bool *offered);
	void *opaque;
};

struct hostinfo_source {
	const char *root;               /* prefix for /proc, /sys, /dev; NULL or "" */
	const char *kvm_path;           /* NULL: /dev/kvm (under root) */
	const struct hostinfo_ops *ops; /* NULL: all real */
};

/* Fills h; what cannot be read is left "unknown", false or HOSTINFO_UNKNOWN.
 * The speed probe and the CPUID query run only where /dev/kvm is usable. */
void hostinfo_gather(struct hostinfo *h, const struct hostinfo_source *src);

/* The hypervisor named by CPUID, through the cpuid op: "" when CPUID.1
 * says none, HOSTINFO_HV_NESTVM when nestvm's signature is in one of the
 * hypervisor leaf ranges, else the name of the signature at 0x40000000. */
void hostinfo_hypervisor(const struct hostinfo_ops *ops, bool *present, char *name, size_t len);

/* The first CPU's vendor_id, "model name" and flags from a cpuinfo text. */
void hostinfo_parse_cpuinfo(struct hostinfo *h, const char *text);

struct hostinfo_verdict {
	bool ok;
	unsigned int nreasons;
	char reason[HOSTINFO_MAX_REASONS][HOSTINFO_REASON_LEN];
};

/* One VM as the report describes it: a VM of the store, or one described
 * by the options of nestvm status. */
struct hostinfo_vm {
	const char *name;
	const struct vmconfig *cfg;
	const char *state;              /* "Off", "Running" */
	const char *sandbox;            /* a running VM's, as its VMM says (sandbox_describe); or NULL */
};

/* The host supports nested virtualization when every check passes; else one
 * reason per failed check, each naming the fix. Pure. */
void hostinfo_verdict(const struct hostinfo *h, struct hostinfo_verdict *v);
/* Whether vm can be a nested host on this host, given the host's verdict:
 * the host's, then vmconfig_nesting_needs(), one reason per requirement. */
void hostinfo_vm_verdict(const struct hostinfo_verdict *host, const struct hostinfo_vm *vm,
			 struct hostinfo_verdict *v);

/* "The virtualization host NAME supports nested virtualization: YES|NO";
 * a buffer of HOSTINFO_SUMMARY_LEN holds it whole. */
#define HOSTINFO_SUMMARY_LEN 384
void hostinfo_summary(const struct hostinfo *h, const struct hostinfo_verdict *v,
		      char *buf, size_t len);

/* The report: the Host section, one section per VM, the verdict and its
 * reasons; as aligned "Key: value" text or as one JSON document. */
void hostinfo_report_text(FILE *out, const struct hostinfo *h,
			  const struct hostinfo_vm *vms, size_t nvms);
void hostinfo_report_json(struct json *j, const struct hostinfo *h,
			  const struct hostinfo_vm *vms, size_t nvms);

#endif

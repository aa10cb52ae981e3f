/* "nestvm status": can this host run nested virtualization, and can a VM of
 * it be a nested host? Hyper-V's nested-virtualization status check, for
 * Linux: host facts, one section per VM, a verdict with a fix per reason. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "hostinfo.h"
#include "json.h"
#include "vm.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct status_opts {
	const char *name;
	uint64_t memory;
	unsigned int cpus;
	bool nested;
	bool json;
	const char *kvm;
};

#define STATUS_OPT(name, s, type, field, meta, help, ...) \
	{ name, s, type, offsetof(struct status_opts, field), meta, help, __VA_ARGS__ }

static const struct opt status_table[] = {
	STATUS_OPT("name", 0, OPT_STR, name, "NAME",
		   "report on a VM of this name too (default NestedVM)", 0, 0, NULL),
	STATUS_OPT("memory", 'm', OPT_SIZE, memory, "SIZE",
		   "that VM's memory (default 512M, the least for a nested host)",
		   VM_MIN_MEMORY, VM_MAX_MEMORY, NULL),
	STATUS_OPT("cpus", 'n', OPT_UINT, cpus, "N", "that VM's virtual CPUs (default 1)",
		   1, VM_MAX_CPUS, NULL),
	STATUS_OPT("nested", 0, OPT_FLAG, nested, NULL,
		   "that VM exposes the virtualization extensions (as nestvm run --nested)", 0, 0, NULL),
	STATUS_OPT("json", 0, OPT_FLAG, json, NULL, "print one JSON document instead of the report",
		   0, 0, NULL),
	STATUS_OPT("kvm", 0, OPT_STR, kvm, "PATH", "KVM device (default /dev/kvm)", 0, 0, NULL),
	{ 0 },
};

static const char status_usage[] = "nestvm status [--json] [--name NAME] [--memory SIZE] [--cpus N] [--nested] [--kvm PATH]";
static const char status_summary[] =
	"Report whether this host supports nested virtualization, and why not.\n"
	"\n"
	"The Host section shows the computer, processor and kernel, the hypervisor this\n"
	"machine runs under (CPUID; a nestvm guest shows as 'nestvm (KVM)'), the\n"
	"virtualization extensions (vmx/svm) and EPT/NPT in /proc/cpuinfo, the KVM module\n"
	"and its 'nested' parameter, whether /dev/kvm is there and usable by this user,\n"
	"how fast KVM runs guest kernel code (a test guest; below 50 million\n"
	"instructions/s it is emulated) and whether KVM offers VMX/SVM to its guests.\n"
	"The verdict is YES only when every check passes; otherwise each failed check\n"
	"gives one reason with its fix.\n"
	"\n"
	"With --name or any VM option, a VM section tells whether that VM could be a\n"
	"nested host: the host supports nesting, the VM exposes the extensions (--nested),\n"
	"its memory is fixed and at least 512M (Hyper-V asks for 1G).\n"
	"\n"
	"--json prints the same content as one JSON document: keys in camelCase, unknown\n"
	"facts as null, reasons as arrays of strings.\n"
	"\n"
	"Exit status: 0 when the host supports nested virtualization, 1 when not,\n"
	"2 for bad usage.";

int cmd_status(int argc, char **argv)
{
	struct status_opts o = { 0 };
	struct hostinfo_source src = { 0 };
	struct hostinfo_verdict verdict;
	struct hostinfo host;
	struct hostinfo_vm vm = { 0 };
	size_t nvms = 0;
	char err[256];
	int npos, r;

	r = opts_parse(status_table, argc, argv, &o, &npos, err, sizeof(err));
	if (r == 1) {
		opts_help(stdout, status_usage, status_summary, status_table);
		return 0;
	}
	if (r < 0) {
		cli_error("status: %s", err);
		return EXIT_USAGE;
	}
	if (npos) {
		cli_error("status: unexpected argument '%s' (a VM is named with --name; see --help)", argv[0]);
		return EXIT_USAGE;
	}
	if (o.name && !o.name[0]) {
		cli_error("status: --name must not be empty");
		return EXIT_USAGE;
	}
	if (o.name || o.memory || o.cpus || o.nested) {
		vm = (struct hostinfo_vm){
			.name = o.name ? o.name : "NestedVM",
			.memory = o.memory ? o.memory : 512ULL << 20,
			.cpus = o.cpus ? o.cpus : 1,
			.expose_virt = o.nested,
			.state = "Off",
		};
		nvms = 1;
	}

	src.kvm_path = o.kvm;
	hostinfo_gather(&host, &src);
	hostinfo_verdict(&host, &verdict);

	if (o.json) {
		struct json j;

		json_init(&j, stdout, true);
		hostinfo_report_json(&j, &host, &vm, nvms);
		r = json_finish(&j);
		json_free(&j);
		if (r < 0) {
			cli_error("status: writing JSON: %s", strerror(-r));
			return 1;
		}
	} else {
		hostinfo_report_text(stdout, &host, &vm, nvms);
		if (fflush(stdout) != 0) {
			cli_error("status: writing the report failed");
			return 1;
		}
	}
	return verdict.ok ? 0 : 1;
}

/* "nestvm status": can this host run nested virtualization, and can a VM of
 * it be a nested host? Hyper-V's nested-virtualization status check, for
 * Linux: host facts, one section per VM, a verdict with a fix per reason. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/vmopts.h"
#include "cli/vmctl.h"
#include "hostinfo.h"
#include "json.h"
#include "store.h"
#include "vmm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef char status_sandbox_text[256];

struct status_opts {
	const char *name;
	struct vmconfig cfg;            /* a VM not in the store, from --memory, --cpus, --nested */
	bool json;
	const char *kvm;
	const char *store;
};

#define STATUS_OPT(name, s, type, field, meta, help, ...) \
	{ name, s, type, offsetof(struct status_opts, field), meta, help, __VA_ARGS__ }

static const struct opt status_table[] = {
	STATUS_OPT("name", 0, OPT_STR, name, "NAME",
		   "report on a VM of this name too (default NestedVM)", 0, 0, NULL),
	VMOPT_MEMORY(struct status_opts, "memory", 'm', memory,
		     "that VM's memory (default 512M, the least for a nested host)"),
	VMOPT_CPUS(struct status_opts, "that VM's virtual CPUs (default 1)"),
	STATUS_OPT("nested", 0, OPT_FLAG, cfg.expose_virt, NULL,
		   "that VM exposes the virtualization extensions (as nestvm run --nested)", 0, 0, NULL),
	STATUS_OPT("json", 0, OPT_FLAG, json, NULL, "print one JSON document instead of the report",
		   0, 0, NULL),
	STATUS_OPT("kvm", 0, OPT_STR, kvm, "PATH", "KVM device (default /dev/kvm)", 0, 0, NULL),
	STATUS_OPT("store", 0, OPT_STR, store, "DIR", "the VM store whose VMs are reported (default $NESTVM_STORE, "
		   "else per user)", 0, 0, NULL),
	{ 0 },
};

static const char status_usage[] = "nestvm status [--json] [--name NAME] [--memory SIZE] [--cpus N] [--nested] [--kvm PATH] [--store DIR]";
static const char status_summary[] =
	"Report whether this host supports nested virtualization, and why not.\n"
	"\n"
	"The Host section shows the computer, processor and kernel, the hypervisor this\n"
	"machine runs under (CPUID; a nestvm guest shows as 'nestvm (KVM)'), the\n"
	"virtualization extensions (vmx/svm) and EPT/NPT in /proc/cpuinfo, the KVM module\n"
	"and its 'nested' parameter, whether /dev/kvm is there and usable by this user,\n"
	"how fast KVM runs guest kernel code (a test guest; below 10 million\n"
	"instructions/s it is emulated) and whether KVM offers VMX/SVM to its guests.\n"
	"The verdict is YES only when every check passes; otherwise each failed check\n"
	"gives one reason with its fix.\n"
	"\n"
	"Every VM of the store (nestvm vm list) gets a VM section telling whether it can be\n"
	"a nested host: the host supports nesting, the VM exposes the extensions, its\n"
	"memory is fixed and at least 512M (Hyper-V asks for 1G); with its state. --name\n"
	"NAME reports only that VM; a NAME not in the store, or any VM option, describes a\n"
	"VM that is not stored: --memory, --cpus, --nested give its settings.\n"
	"\n"
	"--json prints the same content as one JSON document: keys in camelCase, unknown\n"
	"facts as null, reasons as arrays of strings.\n"
	"\n"
	"Exit status: 0 when the host supports nested virtualization, 1 when not,\n"
	"2 for bad usage.";

/* A running VM's sandbox as its VMM tells it (the control API's status),
 * or NULL when it does not answer. */
static const char *status_sandbox(const char *root, const char *name, char *buf, size_t len)
{
	struct api_object *reply = malloc(sizeof(*reply));
	const struct api_member *m;
	const char *r = NULL;

	if (reply && vmm_call(root, name, "status", reply, 3000) == 0 && (m = api_get(reply, "sandbox")) &&
	    m->type == API_STRING) {
		snprintf(buf, len, "%.*s", (int)len - 1, m->str);
		r = buf;
	}
	free(reply);
	return r;
}

/* The VMs of the store as the report describes them: every one, or only
 * --name's when it is stored. A VM whose configuration does not load is
 * left out with its error on stderr. -ENOMEM only. */
static int status_store_vms(const struct status_opts *o, struct vmconfig **stored, struct vmm_state **states,
			    status_sandbox_text **sandboxes, struct hostinfo_vm **vms, size_t *nvms)
{
	char root[STORE_PATH_MAX], err[1400], **names;
	size_t n, k = 0;

	if (store_root(o->store, root, sizeof(root)) < 0 || store_list(root, &names, &n) < 0 || !n)
		return 0;
	*stored = calloc(n, sizeof(**stored));
	*states = calloc(n, sizeof(**states));
	*vms = calloc(n, sizeof(**vms));
	*sandboxes = calloc(n, sizeof(**sandboxes));
	if (!*stored || !*states || !*vms || !*sandboxes) {
		store_list_free(names, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct vmconfig *s = &(*stored)[k];

		if (o->name && strcmp(o->name, names[i]))
			continue;
		if (store_load(root, names[i], s, err, sizeof(err)) < 0) {
			cli_error("status: %s", err);
			continue;
		}
		vmm_state(root, names[i], &(*states)[k]);
		(*vms)[k] = (struct hostinfo_vm){ .name = s->name, .cfg = s, .state = (*states)[k].state };
		if (!vmm_state_is_off(&(*states)[k]))
			(*vms)[k].sandbox = status_sandbox(root, names[i], (*sandboxes)[k], sizeof((*sandboxes)[k]));
		k++;
	}
	store_list_free(names, n);
	*nvms = k;
	return 0;
}

int cmd_status(int argc, char **argv)
{
	struct status_opts o = { 0 };
	struct hostinfo_source src = { 0 };
	uint64_t given;
	bool vm_given;
	struct hostinfo_verdict verdict;
	struct hostinfo host;
	struct hostinfo_vm vm = { 0 }, *vms = NULL;
	struct vmconfig *stored = NULL;
	struct vmm_state *states = NULL;
	status_sandbox_text *sandboxes = NULL;
	size_t nvms = 0;
	int npos, r;

	vmconfig_init(&o.cfg, NULL);
	r = cli_parse("status", status_table, status_usage, status_summary, argc, argv, &o, &npos, &given);
	if (r >= 0)
		return r;
	if (npos) {
		cli_error("status: unexpected argument '%s' (a VM is named with --name; see --help)", argv[0]);
		return EXIT_USAGE;
	}
	if (o.name && !o.name[0]) {
		cli_error("status: --name must not be empty");
		return EXIT_USAGE;
	}
	vm_given = opts_given(status_table, given, "memory") || opts_given(status_table, given, "cpus") ||
		   opts_given(status_table, given, "nested");
	if (!vm_given && status_store_vms(&o, &stored, &states, &sandboxes, &vms, &nvms) < 0) {
		cli_error("out of memory");
		return 1;
	}
	if (!nvms && (o.name || vm_given)) {
		vm = (struct hostinfo_vm){ .name = o.name ? o.name : "NestedVM", .cfg = &o.cfg, .state = "Off" };
		vms = &vm;
		nvms = 1;
	}

	src.kvm_path = o.kvm;
	hostinfo_gather(&host, &src);
	hostinfo_verdict(&host, &verdict);

	r = 0;
	if (o.json) {
		struct json j;

		json_init(&j, stdout, true);
		hostinfo_report_json(&j, &host, vms, nvms);
		r = json_finish(&j);
		json_free(&j);
		if (r < 0) {
			cli_error("status: writing JSON: %s", strerror(-r));
			r = 1;
		}
	} else {
		hostinfo_report_text(stdout, &host, vms, nvms);
		if (fflush(stdout) != 0) {
			cli_error("status: writing the report failed");
			r = 1;
		}
	}
	if (vms != &vm)
		free(vms);
	free(stored);
	free(states);
	free(sandboxes);
	return r ? r : verdict.ok ? 0 : 1;
}

/* "nestvm nested enable NAME": the assistant that turns a VM of the store into
 * a nested host, as Hyper-V's Enable-NestedVm script does: it lists what it
 * will change, asks before each change (or takes --yes), changes only that,
 * and says what nesting still cannot do. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/vmctl.h"
#include "hostinfo.h"
#include "store.h"
#include "vmm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct nested_opts {
	const char *store;
	bool yes;
	unsigned int timeout;
};

#define NO(name, s, type, field, meta, help, ...) \
	{ name, s, type, offsetof(struct nested_opts, field), meta, help, __VA_ARGS__ }

static const struct opt nested_table[] = {
	NO("yes", 'y', OPT_FLAG, yes, NULL, "make every change without asking", 0, 0, NULL),
	NO("timeout", 't', OPT_UINT, timeout, "SECS",
	   "how long a running VM gets to shut down before it is turned off (default 60)", 0, 3600, NULL),
	NO("store", 0, OPT_STR, store, "DIR", "the VM store", 0, 0, NULL),
	{ 0 },
};

static const char nested_usage[] = "nestvm nested enable NAME [--yes] [--timeout SECS] [--store DIR]";
static const char nested_summary[] =
	"Set up the VM NAME to run virtual machines of its own. It lists the changes it will\n"
	"make and asks before each (Y or N; --yes answers Y to all; without a terminal\n"
	"--yes is required):\n"
	"  - turn the VM off, if it runs: processor settings change only while it is off\n"
	"    (power button, then turned off after --timeout seconds);\n"
	"  - expose the virtualization extensions (VMX/SVM) to its processors;\n"
	"  - turn dynamic memory off: a nested host needs all of its memory fixed;\n"
	"  - raise its memory to 512M if it has less: the least nestvm takes for a nested\n"
	"    host (Hyper-V asks for 1G for Windows; a Linux KVM host with a small guest of\n"
	"    its own fits in 512M; give it more for bigger guests);\n"
	"  - turn on MAC address spoofing on its network adapters, so that nested guests'\n"
	"    frames, which carry their own MAC addresses, get through.\n"
	"A VM already set up is left unchanged. The VM is not started again afterwards.\n"
	"Exit status: 0 when the VM is set up for nesting, 1 when not (a change declined\n"
	"or failed), 2 for bad usage.";

/* The assistant's steps, in order: turning the VM off, then each change
 * vmconfig_nesting_needs() asks for. */
enum nested_change { CH_OFF, CH_EXPOSE, CH_DYNAMIC, CH_MEMORY, CH_SPOOF, CH_COUNT };
static const unsigned int nested_need[CH_COUNT] = {
	[CH_EXPOSE] = VMCONFIG_NEST_EXPOSE, [CH_DYNAMIC] = VMCONFIG_NEST_FIXED_MEMORY,
	[CH_MEMORY] = VMCONFIG_NEST_MEMORY, [CH_SPOOF] = VMCONFIG_NEST_SPOOFING,
};

static void nested_warn(const char *name)
{
	printf("\nWhat to know about a nested host:\n"
	       "  - Save, checkpoints and live migration work while %s runs VMs of its own:\n"
	       "    they carry on where they were. It resumes, or moves, only to a host with the\n"
	       "    same CPU vendor whose KVM takes its nested state.\n"
	       "  - Dynamic memory stays off: a balloon that holds a host near its minimum\n"
	       "    starves the guests it starts (measured; see the README).\n"
	       "  - Its guests get the extensions only if it exposes them in turn (nestvm run --nested).\n",
	       name);
}

int cmd_nested(int argc, char **argv)
{
	struct nested_opts o = { .timeout = 60 };
	const char *name;
	char root[STORE_PATH_MAX], err[1400], text[CH_COUNT][400], have[32], need[32];
	bool want[CH_COUNT] = { false }, agreed[CH_COUNT] = { false };
	struct vmconfig vm;
	struct vmm_state st;
	unsigned int needs, make = 0;
	int npos, r, lock = -1, n = 0, declined = 0;

	if (argc < 1 || strcmp(argv[0], "enable")) {
		if (argc >= 1 && cli_is_help(argv[0])) {
			opts_help(stdout, nested_usage, nested_summary, nested_table);
			return 0;
		}
		cli_error("nested: %s (usage: %s)", argc < 1 ? "which command?" : "unknown command; only 'enable' exists",
			  nested_usage);
		return EXIT_USAGE;
	}
	r = cli_parse("nested enable", nested_table, nested_usage, nested_summary, argc - 1, argv + 1, &o, &npos,
		      NULL);
	if (r >= 0)
		return r;
	if (npos != 1) {
		cli_error("nested enable: %s (usage: %s)", npos ? "one VM at a time" : "which VM?", nested_usage);
		return EXIT_USAGE;
	}
	name = argv[1];
	if ((r = vmctl_root(o.store, root, sizeof(root))) || (r = vmctl_load("nested enable", root, name, &vm)))
		return r;

	vmm_state(root, name, &st);
	needs = vmconfig_nesting_needs(&vm);
	want[CH_OFF] = !vmm_state_is_off(&st);
	for (int i = CH_EXPOSE; i < CH_COUNT; i++)
		want[i] = needs & nested_need[i];
	snprintf(text[CH_OFF], sizeof(text[CH_OFF]),
		 "Turn %s off (it is %s): processor settings change only while it is off", name, st.state);
	snprintf(text[CH_EXPOSE], sizeof(text[CH_EXPOSE]),
		 "Expose the virtualization extensions (VMX/SVM) to its processors");
	snprintf(text[CH_DYNAMIC], sizeof(text[CH_DYNAMIC]),
		 "Turn dynamic memory off: a nested host needs all of its memory fixed");
	snprintf(text[CH_MEMORY], sizeof(text[CH_MEMORY]),
		 "Raise its memory from %s to %s, the least for a nested host", util_fmt_size(vm.memory, have, sizeof(have)),
		 util_fmt_size(VMCONFIG_NESTED_MIN_MEMORY, need, sizeof(need)));
	snprintf(text[CH_SPOOF], sizeof(text[CH_SPOOF]),
		 "Turn on MAC address spoofing on its network adapter%s, so nested guests have network",
		 vm.nnics > 1 ? "s" : "");
	for (int i = 0; i < CH_COUNT; i++)
		n += want[i];
	if (!n) {
		printf("VM %s is already set up for nesting: nothing to change.\n", name);
		if (!vm.nnics)
			printf("It has no network adapter; its guests will have no network until it has one "
			       "(nestvm vm set %s --add-nic SWITCH --mac-spoofing on).\n", name);
		nested_warn(name);
		return 0;
	}
	if (!o.yes && !isatty(STDIN_FILENO)) {
		cli_error("nested enable: not asking without a terminal: run it on one, or add --yes to make "
			  "these %d change(s) to VM %s", n, name);
		return EXIT_USAGE;
	}
	printf("To set up VM %s for nesting, nestvm will:\n", name);
	for (int i = 0, k = 1; i < CH_COUNT; i++)
		if (want[i])
			printf("  %d. %s\n", k++, text[i]);
	for (int i = 0; i < CH_COUNT; i++) {
		if (!want[i])
			continue;
		if (o.yes) {
			agreed[i] = true;
			continue;
		}
		r = vmctl_ask("%s?", text[i]);
		if (r < 0) {
			printf("\nNo answer: nothing changed.\n");
			return 1;
		}
		agreed[i] = r == 1;
		if (!agreed[i])
			declined++;
		if (i == CH_OFF && !agreed[i]) {
			printf("VM %s stays %s, so its settings cannot change: nothing changed.\n", name, st.state);
			return 1;
		}
	}

	if (agreed[CH_OFF]) {
		printf("Turning %s off...\n", name);
		fflush(stdout);
		r = vmctl_stop("nested enable", root, name, (int)o.timeout, true, false);
		if (r)
			return r;
	}
	lock = store_lock(root, name, 10000);
	if (lock < 0) {
		cli_error("nested enable: VM %s: %s", name,
			  lock == -EBUSY ? "another nestvm command holds its lock; try again" : strerror(-lock));
		return 1;
	}
	/* Another command may have changed it meanwhile: start from the file. */
	r = vmctl_load("nested enable", root, name, &vm);
	if (r)
		goto out;
	vmm_state(root, name, &st);
	if (!vmm_state_is_off(&st)) {
		cli_error("nested enable: VM %s is %s again; nothing changed", name, st.state);
		r = 1;
		goto out;
	}
	for (int i = CH_EXPOSE; i < CH_COUNT; i++)
		if (agreed[i])
			make |= nested_need[i];
	vmconfig_make_nested(&vm, make);
	r = store_save(root, &vm, err, sizeof(err));
	if (r < 0) {
		cli_error("nested enable: %s", err);
		r = 1;
		goto out;
	}
	for (int i = CH_EXPOSE; i < CH_COUNT; i++)
		if (agreed[i])
			printf("Done: %s\n", text[i]);
	if (declined) {
		printf("VM %s is not fully set up for nesting: %d change(s) declined.\n", name, declined);
		r = 1;
	} else {
		printf("VM %s is set up for nesting; start it with: nestvm vm start %s\n", name, name);
		r = 0;
	}
	nested_warn(name);
out:
	store_unlock(lock);
	return r;
}

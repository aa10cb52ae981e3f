/* "nestvm run": one VM, its serial console on this terminal; or, with
 * --name, a VM of the store, which is how "nestvm vm start" runs its VMM:
 * detached, the console in a log and on a socket, the control API served.
 * Options, messages and exit statuses; the VMM layer does the running. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/vmopts.h"
#include "vmm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const reboot_choices[] = { "exit", "restart", NULL };

struct run_opts {
	struct vmconfig cfg;
	struct opt_list disks;          /* FILE[,ro] */
	struct opt_list nics;           /* switch=NAME|tap=IF[,mac=M][,spoofing=on] */
	const char *vsock;              /* CID,PATH */
	int on_reboot;                  /* enum vmm_on_reboot */
	bool stats, boot_times, skip_probe, detach, no_seccomp;
	const char *kvm, *name, *store, *console_log, *api_socket, *console_socket, *restore;
};

#define RUN_OPT(name, s, type, field, meta, help, ...) \
	{ name, s, type, offsetof(struct run_opts, field), meta, help, __VA_ARGS__ }

static const struct opt run_table[] = {
	VMOPT_TEXT(struct run_opts, "kernel", 'k', kernel, "FILE", "Linux bzImage to boot (required)"),
	VMOPT_TEXT(struct run_opts, "initrd", 'i', initrd, "FILE", "initial ramdisk"),
	VMOPT_TEXT(struct run_opts, "cmdline", 'c', cmdline, "TEXT", "kernel command line (default: console=ttyS0)"),
	VMOPT_MEMORY(struct run_opts, "memory", 'm', memory, "guest memory, e.g. 512M or 2G (default 512M)"),
	RUN_OPT("dynamic-memory", 0, OPT_FLAG, cfg.dynamic_memory, NULL,
		"dynamic memory: start with --memory, then a balloon moves it (see above)", 0, 0, NULL),
	VMOPT_MEMORY(struct run_opts, "memory-minimum", 0, memory_min,
		     "dynamic memory's minimum (default 512M, or --memory if less)"),
	VMOPT_MEMORY(struct run_opts, "memory-maximum", 0, memory_max,
		     "dynamic memory's maximum, the guest's RAM (default twice --memory)"),
	VMOPT_CPUS(struct run_opts, "virtual CPUs (default 1)"),
	RUN_OPT("on-reboot", 0, OPT_CHOICE, on_reboot, "exit|restart",
		"what a guest reboot does (default exit, status 0)", 0, 0, reboot_choices),
	RUN_OPT("disk", 'd', OPT_LIST, disks, "FILE[,ro]",
		"attach a raw disk image as virtio-blk: vda, vdb, ... (repeatable)", 0, VMCONFIG_MAX_DISKS, NULL),
	RUN_OPT("nic", 0, OPT_LIST, nics, "switch=NAME|tap=IF[,mac=MAC][,spoofing=on]",
		"a virtio-net adapter on a virtual switch or a TAP device (repeatable)", 0, VMCONFIG_MAX_NICS, NULL),
	RUN_OPT("no-rng", 0, OPT_FLAG, cfg.no_rng, NULL, "no virtio-rng device (on by default)", 0, 0, NULL),
	RUN_OPT("guest-decompress", 0, OPT_FLAG, cfg.guest_decompress, NULL,
		"let the kernel decompress itself as guest code (slower where guest code is emulated; "
		"keeps its own address randomization) instead of nestvm unpacking it", 0, 0, NULL),
	RUN_OPT("vsock", 0, OPT_STR, vsock, "CID,PATH",
		"a virtio-vsock with guest CID CID; host programs connect to the Unix socket PATH and send "
		"'CONNECT <port>', and the guest reaches host port P at PATH_P", 0, 0, NULL),
	RUN_OPT("nested", 0, OPT_FLAG, cfg.expose_virt, NULL,
		"expose the virtualization extensions (VMX/SVM) to the guest", 0, 0, NULL),
	RUN_OPT("stats", 0, OPT_FLAG, stats, NULL, "print memory figures on stderr at exit", 0, 0, NULL),
	RUN_OPT("boot-times", 0, OPT_FLAG, boot_times, NULL,
		"print where the (last) boot's time went on stderr at exit", 0, 0, NULL),
	RUN_OPT("skip-probe", 0, OPT_FLAG, skip_probe, NULL,
		"boot even where KVM emulates guest kernel code slowly", 0, 0, NULL),
	RUN_OPT("kvm", 0, OPT_STR, kvm, "PATH", "KVM device (default /dev/kvm)", 0, 0, NULL),
	RUN_OPT("name", 0, OPT_STR, name, "NAME",
		"boot the VM NAME of the store as defined there (nestvm vm start does this)", 0, 0, NULL),
	RUN_OPT("store", 0, OPT_STR, store, "DIR", "the VM store (default $NESTVM_STORE, else per user)", 0, 0, NULL),
	RUN_OPT("console-log", 0, OPT_STR, console_log, "FILE",
		"append the serial console to FILE instead of this terminal", 0, 0, NULL),
	RUN_OPT("api-socket", 0, OPT_STR, api_socket, "PATH", "serve the control API on this Unix socket", 0, 0, NULL),
	RUN_OPT("console-socket", 0, OPT_STR, console_socket, "PATH",
		"serve the serial console on this Unix socket (nestvm vm console)", 0, 0, NULL),
	RUN_OPT("restore", 0, OPT_STR, restore, "FILE",
		"resume the VM saved in FILE (the control API's save) instead of booting", 0, 0, NULL),
	RUN_OPT("no-seccomp", 0, OPT_FLAG, no_seccomp, NULL,
		"run the VMM's threads without their system-call filters (to debug a forbidden call)", 0, 0, NULL),
	RUN_OPT("detach", 0, OPT_FLAG, detach, NULL,
		"run in the background once the VM is built; needs --console-log or --name", 0, 0, NULL),
	{ 0 },
};

/* What describes the machine: a VM of the store takes it from the store. */
static const char *const run_machine_opts[] = {
	"kernel", "initrd", "cmdline", "memory", "dynamic-memory", "memory-minimum", "memory-maximum", "cpus",
	"disk", "nic", "no-rng", "guest-decompress", "nested", "vsock", NULL,
};

/* How run names the settings in messages. */
static const struct vmconfig_names run_names = {
	.memory = "--memory", .memory_noun = "the startup memory", .memory_min = "--memory-minimum",
	.memory_max = "--memory-maximum", .cpus = "--cpus", .kernel = "--kernel FILE", .cmdline = "--cmdline",
};

static const char run_usage[] = "nestvm run --kernel FILE [--initrd FILE] [OPTIONS]\n"
	"       nestvm run --name NAME [--store DIR] [--detach]";
static const char run_summary[] =
	"Boot one virtual machine in the foreground with its serial console on this terminal.\n"
	"The guest powering off ends nestvm with status 0; a guest crash with status 1.\n"
	"On a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A.\n"
	"\n"
	"--name boots a VM of the store (see nestvm vm --help) from its definition: its\n"
	"console goes to console.log, console.sock and api.sock in the VM's directory,\n"
	"and the VM's settings come only from the store. --detach returns once the VM\n"
	"is built, leaving the VMM in the background; nestvm vm start NAME does both.\n"
	"\n"
	"--dynamic-memory gives the guest --memory-maximum of RAM and a virtio-balloon\n"
	"that leaves it --memory at first; then, each second, it gets more while less\n"
	"than 20% of its memory is available and gives some back while more than 50%\n"
	"is, never below --memory-minimum. The control API's setmemory sets a target.\n"
	"\n"
	"--restore FILE resumes a VM saved to FILE (the control API's {\"cmd\":\"save\",\n"
	"\"path\":FILE}) where it was, with the configuration it was saved with.\n"
	"\n"
	"Once the VM is built the VMM sandboxes itself: each thread runs under a\n"
	"system-call filter for its job (a forbidden call ends nestvm, naming the call),\n"
	"with no capabilities and, where the kernel has Landlock, with file access only\n"
	"to the VM's disks, its directory and the console log. --no-seccomp (or\n"
	"no-seccomp = on in a stored VM's vm.conf) leaves the filters off.";

/* --disk FILE[,ro] */
static int run_parse_disk(const char *spec, struct vmconfig_disk *d, char *err, size_t errlen)
{
	const char *comma = strrchr(spec, ',');
	bool ro = comma && !strcmp(comma, ",ro");
	size_t n = ro ? (size_t)(comma - spec) : strlen(spec);

	if (comma && !ro) {
		snprintf(err, errlen, "the only option after the path is ',ro'");
		return -EINVAL;
	}
	if (n >= sizeof(d->path)) {
		snprintf(err, errlen, "path too long");
		return -EINVAL;
	}
	memset(d, 0, sizeof(*d));
	memcpy(d->path, spec, n);
	d->read_only = ro;
	return 0;
}

/* --nic switch=NAME|tap=IF[,mac=MAC][,spoofing=on|off]: a fresh MAC unless given. */
static int run_parse_nic(const char *spec, struct vmconfig_nic *n, char *err, size_t errlen)
{
	char buf[512], *save = NULL, *tok;
	bool have_mac = false;

	memset(n, 0, sizeof(*n));
	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "too long");
		return -EINVAL;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		const char *v = eq ? eq + 1 : "";

		if (eq)
			*eq = '\0';
		if (!strcmp(tok, "switch") && *v) {
			if (vmconfig_check_switch(v, err, errlen) < 0)
				return -EINVAL;
			strcpy(n->sw, v);
		} else if (!strcmp(tok, "tap") && *v && strlen(v) < sizeof(n->tap)) {
			strcpy(n->tap, v);
		} else if (!strcmp(tok, "mac") && vmconfig_parse_mac(v, n->mac) == 0) {
			have_mac = true;
		} else if (!strcmp(tok, "spoofing") && (!strcmp(v, "on") || !strcmp(v, "off"))) {
			n->mac_spoofing = !strcmp(v, "on");
		} else {
			snprintf(err, errlen, "'%s%s%s' is not one of switch=NAME, tap=IF, mac=MAC, spoofing=on|off",
				 tok, eq ? "=" : "", v);
			return -EINVAL;
		}
	}
	if (!n->sw[0] == !n->tap[0]) {
		snprintf(err, errlen, "give exactly one of switch=NAME or tap=IF");
		return -EINVAL;
	}
	if (!have_mac)
		vmconfig_random_mac(n->mac);
	return 0;
}

/* The machine the options describe, checked: 0 or the exit status. */
static int run_machine(struct run_opts *o, uint64_t given)
{
	char err[1200] = "";

	for (unsigned int i = 0; i < o->disks.n; i++)
		if (run_parse_disk(o->disks.v[i], &o->cfg.disks[o->cfg.ndisks++], err, sizeof(err)) < 0) {
			cli_error("run: --disk '%s': %s", o->disks.v[i], err);
			return EXIT_USAGE;
		}
	for (unsigned int i = 0; i < o->nics.n; i++)
		if (run_parse_nic(o->nics.v[i], &o->cfg.nics[o->cfg.nnics++], err, sizeof(err)) < 0) {
			cli_error("run: --nic '%s': %s", o->nics.v[i], err);
			return EXIT_USAGE;
		}
	if (o->vsock) {
		const char *comma = strchr(o->vsock, ',');
		uint64_t cid;
		char num[24];

		if (!comma || (size_t)(comma - o->vsock) >= sizeof(num) || !comma[1]) {
			cli_error("run: --vsock '%s': give CID,PATH (e.g. 3,/run/vm.vsock)", o->vsock);
			return EXIT_USAGE;
		}
		memcpy(num, o->vsock, (size_t)(comma - o->vsock));
		num[comma - o->vsock] = 0;
		if (util_parse_uint(num, 0, UINT64_MAX, &cid) < 0 ||
		    vmconfig_check_vsock(cid, comma + 1, err, sizeof(err)) < 0) {
			cli_error("run: --vsock '%s': %s", o->vsock, err[0] ? err : "the CID is not a number");
			return EXIT_USAGE;
		}
		o->cfg.vsock_cid = cid;
		snprintf(o->cfg.vsock_uds, sizeof(o->cfg.vsock_uds), "%s", comma + 1);
	}
	if (!o->cfg.dynamic_memory && (opts_given(run_table, given, "memory-minimum") ||
				       opts_given(run_table, given, "memory-maximum"))) {
		cli_error("run: --memory-%s goes with --dynamic-memory",
			  opts_given(run_table, given, "memory-minimum") ? "minimum" : "maximum");
		return EXIT_USAGE;
	}
	if (vmconfig_validate(&o->cfg, &run_names, err, sizeof(err)) < 0) {
		cli_error("run: %s", err);
		return EXIT_USAGE;
	}
	return 0;
}

int run_exit_status(const struct vmm_exit *ex)
{
	switch (ex->why) {
	case VM_STOP_POWEROFF:
	case VM_STOP_RESET:
	case VM_STOP_HALT:
		return 0;
	case VM_STOP_REQUEST:
		return ex->signal ? 128 + ex->signal : 0;
	case VM_STOP_FAULT:
		fprintf(stderr, "\nnestvm: %s", ex->detail);
		if (ex->detail[0] && ex->detail[strlen(ex->detail) - 1] != '\n')
			fputc('\n', stderr);
		return 1;
	case VM_STOP_NONE:
		cli_error("%s", ex->detail);             /* a restart failed */
		break;
	}
	return 1;
}

static void run_stats(const struct vmm_exit *ex)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "nestvm: stats: guest_touched_kib=%llu vmm_peak_rss_kib=%ld\n",
		(unsigned long long)(ex->guest_touched >> 10), ru.ru_maxrss);
	if (ex->have_memory)
		fprintf(stderr, "nestvm: stats: memory_assigned_kib=%llu memory_target_kib=%llu "
			"balloon_released_pages=%llu balloon_refused_pages=%llu\n",
			(unsigned long long)(ex->memory.assigned >> 10), (unsigned long long)(ex->memory.target >> 10),
			(unsigned long long)ex->memory.released_pages, (unsigned long long)ex->memory.refused_pages);
}

/* ms from the VMM's start to t, or "-" for a milestone not seen. */
static const char *run_ms(uint64_t t, char *buf, size_t len)
{
	if (!t)
		return "-";
	snprintf(buf, len, "%.1f", (double)(t - util_start_ns()) / 1e6);
	return buf;
}

/* Where the last boot's time went: the VMM's own steps, then what it saw
 * of the guest, each in ms from the VMM's start. */
static void run_boot_times(const struct vm_boot_report *b, uint64_t exit_ns)
{
	char a[9][32];

	fprintf(stderr, "nestvm: boot times: load_start=%s load_end=%s unpack=%.1f entry=%s first_output=%s "
		"kernel_banner=%s run_init=%s stop=%s exit=%s\n",
		run_ms(b->load_start, a[0], sizeof(a[0])), run_ms(b->load_end, a[1], sizeof(a[1])),
		(double)b->unpack_ns / 1e6, run_ms(b->entry, a[2], sizeof(a[2])),
		run_ms(b->output, a[3], sizeof(a[3])), run_ms(b->banner, a[4], sizeof(a[4])),
		run_ms(b->init, a[5], sizeof(a[5])), run_ms(b->stop, a[6], sizeof(a[6])),
		run_ms(exit_ns, a[7], sizeof(a[7])));
}

/* A VMM from its boot on: detached or not, booted, run to its end, and
 * destroyed. Returns the exit status; the detached VMM's process ends here. */
static int run_vmm(struct vmm *v, const char *name, bool detach, bool stats, bool boot_times)
{
	struct vmm_exit ex;
	char err[sizeof(ex.detail)];
	bool parent = false;
	int r, status = 1;

	if (detach) {
		r = vmm_detach(v, &parent, err, sizeof(err));
		if (r < 0)
			cli_error("%s", err);
		if (parent) {
			vmm_destroy(v);
			return r < 0 ? 1 : 0;
		}
	}
	if (name)
		fprintf(stderr, "nestvm: VMM %d starting VM %s\n", (int)getpid(), name);
	r = vmm_start(v, err, sizeof(err));
	if (r == 0) {
		r = vmm_boot(v, err, sizeof(err));
		status = detach ? 1 : EXIT_USAGE;   /* the machine could not be built from what was given */
	}
	if (r < 0) {
		cli_error("%s", err);
		snprintf(ex.reason, sizeof(ex.reason), "start failed");
		snprintf(ex.detail, sizeof(ex.detail), "%s", err);
	} else {
		vmm_run(v, &ex);
		status = run_exit_status(&ex);
		if (stats)
			run_stats(&ex);
		if (boot_times)
			run_boot_times(&ex.boot, util_now_ns());
	}
	if (name)
		fprintf(stderr, "nestvm: VMM %d of VM %s ended: %s%s%s\n", (int)getpid(), name, ex.reason,
			ex.detail[0] ? ": " : "", ex.detail);
	if (r == 0 && ex.warning[0])
		cli_error("%s", ex.warning);
	vmm_destroy(v);
	/* The detached VMM is done: it must not return into the command that
	 * started it ("nestvm vm start"), which would carry on in the log. */
	if (detach)
		exit(status);
	return status;
}

int run_stored(const char *cmd, const char *store, const char *name, const struct run_stored_opts *ro)
{
	struct vmm_options opt = {
		.kvm_path = ro->kvm, .skip_probe = ro->skip_probe, .on_reboot = (enum vmm_on_reboot)ro->on_reboot,
		.store = store, .console_log = ro->console_log, .console_socket = ro->console_socket,
		.api_socket = ro->api_socket, .api_handler = vmm_api_handler, .console_tty = !ro->detach,
		.signals = true, .incoming = ro->incoming, .incoming_fd = ro->incoming ? ro->incoming_fd : -1,
		.no_seccomp = ro->no_seccomp,
	};
	struct vmm *v;
	char err[1400];
	int r;

	r = vmm_create_stored(&v, name, &opt, err, sizeof(err));
	if (r < 0) {
		cli_error("%s: %s", cmd, err);
		return r == -ENOENT ? EXIT_USAGE : 1;
	}
	r = vmm_check_boot(v, err, sizeof(err));
	if (r < 0) {
		cli_error("%s", err);
		vmm_destroy(v);
		return r == -ENOMEM ? 1 : EXIT_USAGE;
	}
	return run_vmm(v, name, ro->detach, ro->stats, ro->boot_times);
}

int cmd_run(int argc, char **argv)
{
	struct run_opts *o = calloc(1, sizeof(*o));
	struct vmm_options opt;
	struct vmm *v;
	char err[1400];
	uint64_t given;
	int npos, r;

	if (!o) {
		cli_error("out of memory");
		return 1;
	}
	vmconfig_init(&o->cfg, NULL);
	r = cli_parse("run", run_table, run_usage, run_summary, argc, argv, o, &npos, &given);
	if (r >= 0)
		goto out;
	r = EXIT_USAGE;
	if (npos) {
		cli_error("run: unexpected argument '%s' (see --help)", argv[0]);
		goto out;
	}
	if (o->name && o->restore) {
		cli_error("run: --restore goes without --name: a Saved VM of the store resumes its own state "
			  "(nestvm vm start %s)", o->name);
		goto out;
	}
	if (o->name) {
		for (int i = 0; run_machine_opts[i]; i++)
			if (opts_given(run_table, given, run_machine_opts[i])) {
				cli_error("run: --name boots the VM as stored; change its settings with nestvm vm set %s",
					  o->name);
				goto out;
			}
		r = run_stored("run", o->store, o->name, &(struct run_stored_opts){
			.kvm = o->kvm, .skip_probe = o->skip_probe, .on_reboot = o->on_reboot, .detach = o->detach,
			.stats = o->stats, .boot_times = o->boot_times, .console_log = o->console_log, .console_socket = o->console_socket,
			.api_socket = o->api_socket, .no_seccomp = o->no_seccomp });
		goto out;
	}
	if (o->store) {
		cli_error("run: --store goes with --name NAME");
		goto out;
	}
	if (o->restore) {
		for (int i = 0; run_machine_opts[i]; i++)
			if (opts_given(run_table, given, run_machine_opts[i])) {
				cli_error("run: --restore resumes the VM as it was saved; --%s cannot change it",
					  run_machine_opts[i]);
				goto out;
			}
		opt = (struct vmm_options){
			.kvm_path = o->kvm, .skip_probe = o->skip_probe, .on_reboot = (enum vmm_on_reboot)o->on_reboot,
			.console_log = o->console_log, .console_socket = o->console_socket,
			.api_socket = o->api_socket, .api_handler = vmm_api_handler, .console_tty = !o->detach,
			.signals = true, .no_seccomp = o->no_seccomp,
		};
		if (vmm_create_restored(&v, o->restore, NULL, &opt, err, sizeof(err)) < 0) {
			cli_error("run: %s", err);
			goto out;
		}
		goto booted;
	}
	if ((r = run_machine(o, given)))
		goto out;
	r = EXIT_USAGE;
	if (o->detach && !o->console_log) {
		cli_error("run: --detach needs --console-log FILE (or --name): the console must go somewhere");
		goto out;
	}
	opt = (struct vmm_options){
		.kvm_path = o->kvm, .skip_probe = o->skip_probe, .on_reboot = (enum vmm_on_reboot)o->on_reboot,
		.console_log = o->console_log, .console_socket = o->console_socket, .api_socket = o->api_socket,
		.api_handler = vmm_api_handler, .console_tty = !o->detach, .signals = true,
		.no_seccomp = o->no_seccomp,
	};
	if (vmm_create(&v, &o->cfg, &opt, err, sizeof(err)) < 0) {
		cli_error("run: %s", err);
		goto out;
	}
booted:
	if (vmm_check_boot(v, err, sizeof(err)) < 0) {
		cli_error("%s", err);
		vmm_destroy(v);
		goto out;
	}
	r = run_vmm(v, NULL, o->detach, o->stats, o->boot_times);
out:
	free(o);
	return r;
}

int cmd_probe(int argc, char **argv)
{
	const char *dev = argc > 0 ? argv[0] : "/dev/kvm";
	double mips;
	int r;

	if (argc > 0 && cli_is_help(argv[0])) {
		printf("Usage: nestvm probe [DEVICE]\n"
		       "Time guest kernel code on DEVICE (default /dev/kvm): hardware speed, or emulated.\n"
		       "Exit status: 0 at hardware speed, 1 when emulated or on an error.\n");
		return 0;
	}
	if (argc > 1) {
		cli_error("probe: one DEVICE at most (see nestvm probe --help)");
		return EXIT_USAGE;
	}
	r = vm_probe_speed(dev, &mips);
	if (r < 0) {
		cli_error("probe %s: %s", dev, strerror(-r));
		return 1;
	}
	printf("%s: guest kernel code runs at %.1f million instructions/s (%s)\n", dev, mips,
	       mips < VM_PROBE_MIN_MIPS ? "emulated" : "hardware speed");
	return mips < VM_PROBE_MIN_MIPS ? 1 : 0;
}

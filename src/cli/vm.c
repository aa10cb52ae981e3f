/* "nestvm vm": named VMs of the store. new, set, list, show, remove change or
 * read definitions under the VM's lock; start, stop, console, pause and
 * resume talk to the VM's VMM through its sockets. */
#include "cli/cli.h"
#include "checkpoint.h"
#include "cli/opts.h"
#include "cli/vmopts.h"
#include "cli/vmctl.h"
#include "api.h"
#include "json.h"
#include "store.h"
#include "console.h"
#include "vmm.h"
#include "migrate.h"
#include "vmstate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a command waits for another one on the same VM: 10 s, or
 * $NESTVM_LOCK_WAIT_MS (tests). */
static int vm_lock_wait(void)
{
	const char *e = getenv("NESTVM_LOCK_WAIT_MS");

	return e && *e ? atoi(e) : 10000;
}
#define VM_LOCK_WAIT_MS vm_lock_wait()

struct vm_opts {
	const char *store;
	struct vmconfig cfg;            /* new: the VM; set: the settings given */
	struct opt_list disks, nics;    /* new: SIZE[,fixed] and SWITCH, each repeatable */
	const char *add_nic;            /* set: a new adapter's switch */
	unsigned int nic;               /* set: the adapter --switch, --mac, --mac-spoofing change */
	const char *sw, *mac;
	bool spoof;
	/* the rest */
	bool json, yes, force, skip_probe;
	unsigned int timeout;
	const char *to, *listen;        /* migrate, receive */
};

#define VO(name, s, type, field, meta, help, ...) \
	{ name, s, type, offsetof(struct vm_opts, field), meta, help, __VA_ARGS__ }
#define VO_TEXT(name, s, field, meta, help) VMOPT_TEXT(struct vm_opts, name, s, field, meta, help)
#define VO_MEMORY(name, s, field, help) VMOPT_MEMORY(struct vm_opts, name, s, field, help)
#define VO_STORE VO("store", 0, OPT_STR, store, "DIR", "the VM store (default $NESTVM_STORE, /var/lib/nestvm " \
		    "for root, else ~/.local/share/nestvm)", 0, 0, NULL)

static const struct opt new_table[] = {
	VO_MEMORY("memory", 'm', memory, "memory, e.g. 512M or 2G (default 512M)"),
	VMOPT_CPUS(struct vm_opts, "virtual processors (default 1)"),
	VO_TEXT("kernel", 'k', kernel, "FILE", "Linux bzImage (default: the default guest image)"),
	VO_TEXT("initrd", 'i', initrd, "FILE", "initial ramdisk (default: the default guest image's)"),
	VO_TEXT("cmdline", 'c', cmdline, "TEXT", "kernel command line (default console=ttyS0)"),
	VO("disk", 0, OPT_LIST, disks, "SIZE[,fixed]",
	   "a new raw disk image, sparse or with ,fixed preallocated (repeatable)", 0, VMCONFIG_MAX_DISKS, NULL),
	VO("nic", 0, OPT_LIST, nics, "SWITCH", "a network adapter on the virtual switch SWITCH (repeatable)",
	   0, VMCONFIG_MAX_NICS, NULL),
	VO("nested", 0, OPT_FLAG, cfg.expose_virt, NULL, "expose the virtualization extensions (VMX/SVM)", 0, 0, NULL),
	VO("guest-decompress", 0, OPT_FLAG, cfg.guest_decompress, NULL,
	   "let the kernel decompress itself as guest code (keeps its own address randomization)", 0, 0, NULL),
	VO_STORE,
	{ 0 },
};

static const struct opt set_table[] = {
	VMOPT_CPUS(struct vm_opts, "virtual processors (VM off)"),
	VO("expose-virtualization-extensions", 0, OPT_ONOFF, cfg.expose_virt, "on|off",
	   "offer VMX/SVM to the guest so it can run VMs (VM off)", 0, 0, NULL),
	VO_MEMORY("memory", 'm', memory, "memory (VM off)"),
	VO("dynamic-memory", 0, OPT_ONOFF, cfg.dynamic_memory, "on|off",
	   "dynamic memory: --memory at start, then a balloon between the bounds (VM off)", 0, 0, NULL),
	VO_MEMORY("memory-minimum", 0, memory_min, "dynamic memory's minimum (VM off; default 512M, or --memory if less)"),
	VO_MEMORY("memory-maximum", 0, memory_max,
		  "dynamic memory's maximum, the guest's RAM (VM off; default twice --memory)"),
	VO_TEXT("kernel", 'k', kernel, "FILE", "Linux bzImage (VM off)"),
	VO_TEXT("initrd", 'i', initrd, "FILE", "initial ramdisk, \"\" for none (VM off)"),
	VO_TEXT("cmdline", 'c', cmdline, "TEXT", "kernel command line (VM off)"),
	VO("add-nic", 0, OPT_STR, add_nic, "SWITCH", "add a network adapter on SWITCH (VM off)", 0, 0, NULL),
	VO("nic", 0, OPT_UINT, nic, "INDEX", "the network adapter --switch, --mac, --mac-spoofing change (default 0)",
	   0, VMCONFIG_MAX_NICS - 1, NULL),
	VO("switch", 0, OPT_STR, sw, "NAME", "connect the adapter to this virtual switch", 0, 0, NULL),
	VO("mac", 0, OPT_STR, mac, "ADDRESS|new", "the adapter's MAC address, or a new random one (VM off)", 0, 0, NULL),
	VO("mac-spoofing", 0, OPT_ONOFF, spoof, "on|off",
	   "let the guest send frames from other MAC addresses (nested guests need it)", 0, 0, NULL),
	VO("autostart", 0, OPT_ONOFF, cfg.autostart, "on|off",
	   "start the VM with the host (nestvm autostart start, the nestvm.service unit)", 0, 0, NULL),
	VO("no-seccomp", 0, OPT_ONOFF, cfg.no_seccomp, "on|off",
	   "on: its VMM runs without system-call filters, for debugging (from its next start)", 0, 0, NULL),
	VO("guest-decompress", 0, OPT_ONOFF, cfg.guest_decompress, "on|off",
	   "on: the kernel decompresses itself as guest code, keeping its own address randomization; "
	   "off: nestvm unpacks it (from its next boot)", 0, 0, NULL),
	VO_STORE,
	{ 0 },
};

/* What vm set changes only while the VM is Off, in the order a refusal
 * names them. */
static const char *const set_needs_off[] = {
	"cpus", "expose-virtualization-extensions", "memory", "dynamic-memory", "memory-minimum",
	"memory-maximum", "kernel", "initrd", "cmdline", "add-nic", "mac", NULL,
};

/* How vm new and vm set name the settings in messages. */
static const struct vmconfig_names vm_names = {
	.memory = "--memory", .memory_noun = "memory", .memory_min = "--memory-minimum",
	.memory_max = "--memory-maximum", .cpus = "--cpus", .kernel = "--kernel", .cmdline = "--cmdline",
};

static const struct opt list_table[] = {
	VO("json", 0, OPT_FLAG, json, NULL, "print JSON", 0, 0, NULL),
	VO_STORE,
	{ 0 },
};

static const struct opt migrate_table[] = {
	VO("to", 0, OPT_STR, to, "ADDRESS", "where nestvm vm receive listens: unix:PATH or tcp:HOST:PORT "
	   "(required)", 0, 0, NULL),
	VO_STORE,
	{ 0 },
};

static const struct opt receive_table[] = {
	VO("listen", 0, OPT_STR, listen, "ADDRESS", "where to wait: unix:PATH or tcp:HOST:PORT (required)",
	   0, 0, NULL),
	VO("timeout", 't', OPT_UINT, timeout, "SECS", "give up after SECS without a migration (default: wait)",
	   0, 86400, NULL),
	VO("skip-probe", 0, OPT_FLAG, skip_probe, NULL, "take it even where KVM emulates guest code slowly",
	   0, 0, NULL),
	VO_STORE,
	{ 0 },
};

static const struct opt checkpoint_table[] = {
	VO("json", 0, OPT_FLAG, json, NULL, "list: as one JSON document", 0, 0, NULL),
	VO_STORE,
	{ 0 },
};

static const struct opt remove_table[] = {
	VO("yes", 'y', OPT_FLAG, yes, NULL, "do not ask before deleting the VM and its disks", 0, 0, NULL),
	VO_STORE,
	{ 0 },
};

static const struct opt discard_table[] = {
	VO("yes", 'y', OPT_FLAG, yes, NULL, "do not ask before throwing the saved state away", 0, 0, NULL),
	VO_STORE,
	{ 0 },
};

static const struct opt start_table[] = {
	VO("skip-probe", 0, OPT_FLAG, skip_probe, NULL, "start even where KVM emulates guest code slowly", 0, 0, NULL),
	VO_STORE,
	{ 0 },
};

static const struct opt stop_table[] = {
	VO("timeout", 't', OPT_UINT, timeout, "SECS",
	   "how long to wait for the guest to shut down (default 60)", 0, 3600, NULL),
	VO("force", 'f', OPT_FLAG, force, NULL,
	   "turn the VM off if its guest has not shut down in time (--timeout 0: at once)", 0, 0, NULL),
	VO_STORE,
	{ 0 },
};

static const struct opt plain_table[] = {
	VO_STORE,
	{ 0 },
};

/* What the common front hands each subcommand: its options, the VM's name
 * (checked), the store and, where the subcommand asks, the VM as stored. */
struct vm_ctx {
	const struct vm_sub *sub;
	const char *cmd;                /* "vm set", for messages */
	struct vm_opts *o;
	uint64_t given;
	char **args;                    /* VM_ARGS: the positional arguments */
	int nargs;
	const char *name;
	char root[STORE_PATH_MAX];
	struct vmconfig vm;
};

enum {
	VM_NAMED = 1u << 0,             /* one positional NAME */
	VM_LOADED = 1u << 1,            /* the VM is loaded before run (else the subcommand loads it) */
	VM_ARGS = 1u << 2,              /* the subcommand reads its positional arguments itself */
};

struct vm_sub {
	const char *name, *usage, *summary;
	const struct opt *table;
	unsigned int flags;
	int (*run)(struct vm_ctx *c);
};

/* The VM's lock for a change: 0, or the exit status with the message. */
static int vm_lock(struct vm_ctx *c, int *lock)
{
	*lock = store_lock(c->root, c->name, VM_LOCK_WAIT_MS);
	if (*lock >= 0)
		return 0;
	if (*lock == -ENOENT) {
		cli_error("%s: no VM named '%s' in the store %s (see nestvm vm list)", c->cmd, c->name, c->root);
		return EXIT_USAGE;
	}
	if (*lock == -EBUSY) {
		cli_error("%s: VM %s: another nestvm command holds its lock; try again", c->cmd, c->name);
	} else {
		/* The store's own words: a link or another's directory refused. */
		char why[STORE_PATH_MAX + 300];
		int fd = store_open_dir(c->root, c->name, why, sizeof(why));

		if (fd >= 0) {
			close(fd);
			snprintf(why, sizeof(why), "VM %s: %s", c->name, strerror(-*lock));
		}
		cli_error("%s: %s", c->cmd, why);
	}
	return 1;
}

/* The default guest image: next to the binary (image/ or ../image/, as in
 * the simulated host and the build tree), ../share/nestvm, /usr/share/nestvm. */
static bool vm_default_image(char *kernel, size_t len, char *initrd)
{
	char exe[PATH_MAX], dirs[4][PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return false;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	snprintf(dirs[0], sizeof(dirs[0]), "%s/image", exe);
	snprintf(dirs[1], sizeof(dirs[1]), "%s/../image", exe);
	snprintf(dirs[2], sizeof(dirs[2]), "%s/../share/nestvm", exe);
	snprintf(dirs[3], sizeof(dirs[3]), "/usr/share/nestvm");
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		char k[sizeof(dirs) + 16], ini[sizeof(dirs) + 16], rk[PATH_MAX], ri[PATH_MAX];

		snprintf(k, sizeof(k), "%s/vmlinuz", dirs[i]);
		snprintf(ini, sizeof(ini), "%s/initrd.img", dirs[i]);
		if (realpath(k, rk) && realpath(ini, ri) && strlen(rk) < len && strlen(ri) < len) {
			strcpy(kernel, rk);
			strcpy(initrd, ri);
			return true;
		}
	}
	return false;
}

/* A kernel or initrd given on the command line: must be a readable file;
 * stored as an absolute path, in place. */
static int vm_file_arg(const char *cmd, const char *what, char *path, size_t len)
{
	char abs[PATH_MAX];
	struct stat st;

	if (!realpath(path, abs) || stat(abs, &st) < 0) {
		cli_error("vm %s: %s '%s': %s", cmd, what, path, strerror(errno));
		return EXIT_USAGE;
	}
	if (!S_ISREG(st.st_mode) || access(abs, R_OK) < 0) {
		cli_error("vm %s: %s '%s': not a readable regular file", cmd, what, path);
		return EXIT_USAGE;
	}
	if (strlen(abs) >= len) {
		cli_error("vm %s: %s '%s': path too long", cmd, what, path);
		return EXIT_USAGE;
	}
	strcpy(path, abs);
	return 0;
}

/* --disk SIZE[,fixed|,sparse]: a new image diskINDEX.img. */
static int vm_disk_arg(const char *cmd, const char *spec, struct vmconfig_disk *d, unsigned int index)
{
	char size[64], why[128];
	const char *comma = strchr(spec, ',');
	size_t n = comma ? (size_t)(comma - spec) : strlen(spec);
	uint64_t v;

	if (n >= sizeof(size))
		n = sizeof(size) - 1;
	memcpy(size, spec, n);
	size[n] = 0;
	d->fixed = false;
	if (comma) {
		if (strcmp(comma + 1, "fixed") && strcmp(comma + 1, "sparse")) {
			cli_error("vm %s: --disk '%s': after the size only ',fixed' or ',sparse' may follow", cmd, spec);
			return EXIT_USAGE;
		}
		d->fixed = !strcmp(comma + 1, "fixed");
	}
	if (util_parse_size(size, &v) < 0) {
		cli_error("vm %s: --disk '%s': not a size (examples: 10G, 512M,fixed)", cmd, spec);
		return EXIT_USAGE;
	}
	if (vmconfig_check_disk_size(v, why, sizeof(why)) < 0) {
		cli_error("vm %s: --disk '%s': %s", cmd, spec, why);
		return EXIT_USAGE;
	}
	d->size = v;
	snprintf(d->path, sizeof(d->path), "disk%u.img", index);
	return 0;
}

/* A new adapter on the switch sw, with a new MAC address. */
static int vm_nic_arg(const char *cmd, const char *sw, struct vmconfig_nic *n)
{
	char why[128];

	if (vmconfig_check_switch(sw, why, sizeof(why)) < 0) {
		cli_error("vm %s: %s", cmd, why);
		return EXIT_USAGE;
	}
	memset(n, 0, sizeof(*n));
	strcpy(n->sw, sw);
	vmconfig_random_mac(n->mac);
	return 0;
}

/* Checks the VM against the rules, in the option names, and writes it:
 * new makes it in the store, set replaces its vm.conf. 0 or the status. */
static int vm_write(const char *cmd, const char *root, const struct vmconfig *vm)
{
	char err[1400];
	int r;

	if (vmconfig_validate(vm, &vm_names, err, sizeof(err)) < 0) {
		cli_error("vm %s: %s", cmd, err);
		return EXIT_USAGE;
	}
	r = !strcmp(cmd, "new") ? store_create(root, vm, err, sizeof(err)) : store_save(root, vm, err, sizeof(err));
	if (r < 0) {
		cli_error("vm %s: %s", cmd, err);
		return r == -EEXIST || r == -EINVAL ? EXIT_USAGE : 1;
	}
	return 0;
}

/* ---- new ---- */

static int vm_new(struct vm_ctx *c)
{
	struct vm_opts *o = c->o;
	struct vmconfig *vm = &o->cfg;
	char default_initrd[VMCONFIG_PATH_MAX];
	int r;

	snprintf(vm->name, sizeof(vm->name), "%s", c->name);
	if (opts_given(new_table, c->given, "kernel")) {
		if ((r = vm_file_arg("new", "--kernel", vm->kernel, sizeof(vm->kernel))))
			return r;
	} else if (!vm_default_image(vm->kernel, sizeof(vm->kernel),
				     opts_given(new_table, c->given, "initrd") ? default_initrd : vm->initrd)) {
		cli_error("vm new: no default guest image (vmlinuz, initrd.img) in image/ or ../image/ next to "
			  "nestvm, ../share/nestvm or /usr/share/nestvm: build it with 'make image' or give --kernel FILE");
		return EXIT_USAGE;
	}
	if (opts_given(new_table, c->given, "initrd") &&
	    (r = vm_file_arg("new", "--initrd", vm->initrd, sizeof(vm->initrd))))
		return r;
	for (unsigned int i = 0; i < o->disks.n; i++)
		if ((r = vm_disk_arg("new", o->disks.v[i], &vm->disks[vm->ndisks++], i)))
			return r;
	for (unsigned int i = 0; i < o->nics.n; i++)
		if ((r = vm_nic_arg("new", o->nics.v[i], &vm->nics[vm->nnics++])))
			return r;
	r = vm_write("new", c->root, vm);
	if (r == 0)
		printf("Created VM %s in %s/%s (Off)\n", c->name, c->root, c->name);
	return r;
}

/* ---- set ---- */

/* What vm set does to the adapter --nic names: --switch, --mac, --mac-spoofing. */
static int vm_set_nic(const struct vm_opts *o, uint64_t given, const char *name, struct vmconfig *vm)
{
	struct vmconfig_nic *n;
	char why[128];

	if (o->nic >= vm->nnics) {
		cli_error("vm set: VM %s has no network adapter %u (it has %u; add one with --add-nic SWITCH)",
			  name, o->nic, vm->nnics);
		return EXIT_USAGE;
	}
	n = &vm->nics[o->nic];
	if (o->sw) {
		if (vmconfig_check_switch(o->sw, why, sizeof(why)) < 0) {
			cli_error("vm set: %s", why);
			return EXIT_USAGE;
		}
		strcpy(n->sw, o->sw);
	}
	if (o->mac && !strcmp(o->mac, "new")) {
		vmconfig_random_mac(n->mac);
	} else if (o->mac && vmconfig_parse_mac(o->mac, n->mac) < 0) {
		cli_error("vm set: --mac '%s': not a unicast MAC address like 52:54:00:12:34:56 (or 'new')", o->mac);
		return EXIT_USAGE;
	}
	if (opts_given(set_table, given, "mac-spoofing"))
		n->mac_spoofing = o->spoof;
	return 0;
}

/* The settings given on the command line, over the VM as stored. */
static int vm_set_apply(struct vm_opts *o, uint64_t given, const char *name, struct vmconfig *vm)
{
	struct vm_opts *t = malloc(sizeof(*t));
	int r;

	if (!t) {
		cli_error("out of memory");
		return 1;
	}
	t->cfg = *vm;
	opts_copy(set_table, given, t, o);
	*vm = t->cfg;
	free(t);
	if (opts_given(set_table, given, "kernel") &&
	    (r = vm_file_arg("set", "--kernel", vm->kernel, sizeof(vm->kernel))))
		return r;
	if (opts_given(set_table, given, "initrd") && vm->initrd[0] &&
	    (r = vm_file_arg("set", "--initrd", vm->initrd, sizeof(vm->initrd))))
		return r;
	if (o->add_nic) {
		if (vm->nnics == VMCONFIG_MAX_NICS) {
			cli_error("vm set: VM %s already has %d network adapters", name, VMCONFIG_MAX_NICS);
			return EXIT_USAGE;
		}
		if ((r = vm_nic_arg("set", o->add_nic, &vm->nics[vm->nnics])))
			return r;
		if (!opts_given(set_table, given, "nic"))
			o->nic = vm->nnics;
		vm->nnics++;
	}
	if (o->sw || o->mac || opts_given(set_table, given, "mac-spoofing"))
		return vm_set_nic(o, given, name, vm);
	return 0;
}

static int vm_set(struct vm_ctx *c)
{
	struct vmconfig *vm = &c->vm;
	const char *needs_off = NULL;
	struct vmm_state st;
	int r, lock;

	for (int i = 0; !needs_off && set_needs_off[i]; i++)
		if (opts_given(set_table, c->given, set_needs_off[i]))
			needs_off = set_needs_off[i];
	if (!needs_off && !c->o->sw && !opts_given(set_table, c->given, "mac-spoofing") &&
	    !opts_given(set_table, c->given, "autostart") && !opts_given(set_table, c->given, "no-seccomp") &&
	    !opts_given(set_table, c->given, "guest-decompress")) {
		cli_error("vm set: nothing to change (see nestvm vm set --help)");
		return EXIT_USAGE;
	}
	if ((r = vm_lock(c, &lock)))
		return r;
	if ((r = vmctl_load(c->cmd, c->root, c->name, vm)))
		goto out;
	store_crash_point("set-loaded");
	vmm_state(c->root, c->name, &st);
	if (needs_off && vmm_state_is_saved(&st)) {
		cli_error("vm set: --%s needs VM %s to be Off; it is Saved (start it, or throw its saved state "
			  "away: nestvm vm discard-saved %s)", needs_off, c->name, c->name);
		r = 1;
		goto out;
	}
	if (needs_off && !vmm_state_is_off(&st)) {
		cli_error("vm set: --%s needs VM %s to be Off; it is %s (stop it first: nestvm vm stop %s)",
			  needs_off, c->name, st.state, c->name);
		r = 1;
		goto out;
	}
	r = vm_set_apply(c->o, c->given, c->name, vm);
	if (r == 0)
		r = vm_write("set", c->root, vm);
	if (r == 0)
		printf("Updated VM %s\n", c->name);
out:
	store_unlock(lock);
	return r;
}

/* ---- list and show ---- */

static void vm_json_vm(struct json *j, const struct vmconfig *vm, const struct vmm_state *st)
{
	char mac[24];

	json_object_begin(j);
	json_kv_string(j, "name", vm->name);
	json_kv_string(j, "state", st->state);
	if (st->pid)
		json_kv_int(j, "pid", st->pid);
	else
		json_kv_null(j, "pid");
	json_kv_string(j, "lastExit", st->last_exit[0] ? st->last_exit : NULL);
	json_kv_uint(j, "processors", vm->cpus);
	json_kv_uint(j, "memoryBytes", vm->memory);
	json_kv_bool(j, "exposeVirtualizationExtensions", vm->expose_virt);
	json_kv_bool(j, "dynamicMemoryEnabled", vm->dynamic_memory);
	json_kv_bool(j, "autostart", vm->autostart);
	if (vm->memory_min)
		json_kv_uint(j, "memoryMinimumBytes", vm->memory_min);
	if (vm->memory_max)
		json_kv_uint(j, "memoryMaximumBytes", vm->memory_max);
	if (st->memory_assigned)
		json_kv_uint(j, "memoryAssignedBytes", st->memory_assigned);
	json_kv_string(j, "kernel", vm->kernel);
	json_kv_string(j, "initrd", vm->initrd[0] ? vm->initrd : NULL);
	json_kv_string(j, "cmdline", vm->cmdline);
	json_key(j, "disks");
	json_array_begin(j);
	for (unsigned int i = 0; i < vm->ndisks; i++) {
		json_object_begin(j);
		json_kv_string(j, "path", vm->disks[i].path);
		json_kv_uint(j, "sizeBytes", vm->disks[i].size);
		json_kv_bool(j, "preallocated", vm->disks[i].fixed);
		json_object_end(j);
	}
	json_array_end(j);
	json_key(j, "networkAdapters");
	json_array_begin(j);
	for (unsigned int i = 0; i < vm->nnics; i++) {
		json_object_begin(j);
		json_kv_string(j, "switch", vm->nics[i].sw);
		json_kv_string(j, "macAddress", vmconfig_fmt_mac(vm->nics[i].mac, mac, sizeof(mac)));
		json_kv_bool(j, "macAddressSpoofing", vm->nics[i].mac_spoofing);
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
}

static int vm_json_done(struct json *j, const char *cmd)
{
	int r = json_finish(j);

	json_free(j);
	if (r < 0) {
		cli_error("vm %s: writing JSON: %s", cmd, strerror(-r));
		return 1;
	}
	return 0;
}

static int vm_list(struct vm_ctx *c)
{
	const char *root = c->root;
	struct vmconfig *vm;
	struct json j;
	char err[1400], **names;
	bool json = c->o->json;
	size_t n;
	int r, status = 0;

	r = store_list(root, &names, &n);
	if (r < 0) {
		char why[STORE_PATH_MAX + 300];
		int fd = store_open_dir(root, NULL, why, sizeof(why));

		if (fd >= 0) {
			close(fd);
			snprintf(why, sizeof(why), "store %s: %s", root, strerror(-r));
		}
		cli_error("vm list: %s", why);
		return 1;
	}
	vm = malloc(sizeof(*vm));
	if (!vm) {
		store_list_free(names, n);
		return 1;
	}
	if (json) {
		json_init(&j, stdout, true);
		json_object_begin(&j);
		json_kv_string(&j, "store", root);
		json_key(&j, "vms");
		json_array_begin(&j);
	} else {
		printf("%-24s %-9s %5s %8s  %s\n", "NAME", "STATE", "CPUS", "MEMORY", "NESTED");
	}
	for (size_t i = 0; i < n; i++) {
		struct vmm_state st;
		char mem[32];

		if (store_load(root, names[i], vm, err, sizeof(err)) < 0) {
			cli_error("vm list: %s", err);
			status = 1;
			if (json) {
				json_object_begin(&j);
				json_kv_string(&j, "name", names[i]);
				json_kv_string(&j, "state", "Invalid");
				json_kv_string(&j, "error", err);
				json_object_end(&j);
			} else {
				printf("%-24s %-9s\n", names[i], "Invalid");
			}
			continue;
		}
		vmm_state(root, names[i], &st);
		if (json)
			vm_json_vm(&j, vm, &st);
		else
			printf("%-24s %-9s %5u %8s  %s\n", vm->name, st.state, vm->cpus,
			       util_fmt_size(vm->memory, mem, sizeof(mem)), vm->expose_virt ? "yes" : "no");
	}
	free(vm);
	store_list_free(names, n);
	if (json) {
		json_array_end(&j);
		json_object_end(&j);
		if (vm_json_done(&j, "list"))
			return 1;
	}
	return status;
}

static int vm_show(struct vm_ctx *c)
{
	const struct vmconfig *vm = &c->vm;
	struct vmm_state st;
	char s[32], mac[24];

	vmm_state(c->root, c->name, &st);
	if (c->o->json) {
		struct json j;

		json_init(&j, stdout, true);
		vm_json_vm(&j, vm, &st);
		return vm_json_done(&j, "show");
	}
	printf("Name: %s\n", vm->name);
	printf("State: %s\n", st.state);
	if (st.pid)
		printf("VmmPid: %d\n", st.pid);
	if (st.last_exit[0])
		printf("LastExit: %s\n", st.last_exit);
	printf("Processors: %u\n", vm->cpus);
	printf("Memory: %s\n", util_fmt_size(vm->memory, s, sizeof(s)));
	printf("ExposeVirtualizationExtensions: %s\n", vm->expose_virt ? "True" : "False");
	printf("DynamicMemoryEnabled: %s\n", vm->dynamic_memory ? "True" : "False");
	printf("AutomaticStartAction: %s\n", vm->autostart ? "Start" : "Nothing");
	if (vm->memory_min)
		printf("MemoryMinimum: %s\n", util_fmt_size(vm->memory_min, s, sizeof(s)));
	if (vm->memory_max)
		printf("MemoryMaximum: %s\n", util_fmt_size(vm->memory_max, s, sizeof(s)));
	if (st.memory_assigned)
		printf("MemoryAssigned: %s\n", util_fmt_size(st.memory_assigned, s, sizeof(s)));
	printf("Kernel: %s\n", vm->kernel);
	printf("Initrd: %s\n", vm->initrd[0] ? vm->initrd : "(none)");
	printf("Cmdline: %s\n", vm->cmdline);
	for (unsigned int i = 0; i < vm->ndisks; i++)
		printf("Disk%u: %s %s %s\n", i, vm->disks[i].path, util_fmt_size(vm->disks[i].size, s, sizeof(s)),
		       vm->disks[i].fixed ? "preallocated" : "sparse");
	for (unsigned int i = 0; i < vm->nnics; i++)
		printf("NetworkAdapter%u: switch %s, MacAddress %s, MacAddressSpoofing %s\n", i, vm->nics[i].sw,
		       vmconfig_fmt_mac(vm->nics[i].mac, mac, sizeof(mac)), vm->nics[i].mac_spoofing ? "On" : "Off");
	printf("Directory: %s/%s\n", c->root, vm->name);
	return 0;
}

/* ---- remove ---- */

static int vm_remove(struct vm_ctx *c)
{
	const char *root = c->root, *name = c->name;
	struct vmconfig *vm = &c->vm;
	struct vmm_state st;
	char err[1400];
	int r, lock;

	if ((r = vm_lock(c, &lock)))
		return r;
	/* A VM whose configuration is broken can still be removed. */
	r = store_load(root, name, vm, err, sizeof(err));
	vmm_state(root, name, &st);
	if (!vmm_state_is_off(&st) && !vmm_state_is_saved(&st)) {
		cli_error("vm remove: VM %s is %s: stop it first (nestvm vm stop %s)", name, st.state, name);
		r = 1;
		goto out;
	}
	if (!c->o->yes) {
		if (!isatty(STDIN_FILENO)) {
			cli_error("vm remove: not asking without a terminal: add --yes to delete VM %s and its disks", name);
			r = EXIT_USAGE;
			goto out;
		}
		r = vmctl_ask("Delete VM %s and its %u disk(s) in %s/%s?", name, r == 0 ? vm->ndisks : 0, root, name);
		if (r != 1) {
			printf("VM %s kept\n", name);
			r = 1;
			goto out;
		}
	}
	r = store_remove(root, name, err, sizeof(err));
	if (r < 0) {
		cli_error("vm remove: %s", err);
		r = 1;
		goto out;
	}
	printf("Removed VM %s\n", name);
out:
	store_unlock(lock);
	return r;
}

/* ---- checkpoints ---- */

static int vm_checkpoint_create(struct vm_ctx *c, const char *ckpt)
{
	const char *root = c->root, *name = c->name;
	char dir[STORE_PATH_MAX + 300], err[1400], auto_name[VMCONFIG_NAME_MAX + 1];
	struct vmm_state st;
	uint64_t t0 = util_now_ns(), millis;
	int r, lock;

	if (!ckpt) {
		time_t now = time(NULL);

		strftime(auto_name, sizeof(auto_name), "%Y%m%d-%H%M%S", localtime(&now));
		ckpt = auto_name;
	}
	if ((r = vm_lock(c, &lock)))
		return r;
	vmm_state(root, name, &st);
	if (strcmp(st.state, "Running") && strcmp(st.state, "Paused") && !vmm_state_is_off(&st) &&
	    !vmm_state_is_saved(&st)) {
		cli_error("vm checkpoint: VM %s is %s; try again once it is Running, Paused, Off or Saved", name,
			  st.state);
		r = 1;
		goto out;
	}
	r = checkpoint_begin(root, name, ckpt, dir, sizeof(dir), err, sizeof(err));
	if (r < 0) {
		cli_error("vm checkpoint: %s", err);
		r = r == -EINVAL ? EXIT_USAGE : 1;
		goto out;
	}
	if (!vmm_state_is_off(&st) && !vmm_state_is_saved(&st)) {
		/* Running: its VMM pauses it, saves it and copies its disks. */
		struct api_request req = { .cmd = API_CHECKPOINT };
		struct api_object *reply = malloc(sizeof(*reply));

		char abs[PATH_MAX];

		/* The VMM may have another working directory. */
		snprintf(req.path, sizeof(req.path), "%.*s", (int)sizeof(req.path) - 1, realpath(dir, abs) ? abs : dir);
		r = reply ? vmm_call_request(root, name, &req, reply, 3600 * 1000) : -ENOMEM;
		if (r == -EPROTO) {
			const struct api_member *e = api_get(reply, "error");

			snprintf(err, sizeof(err), "%s", e && e->type == API_STRING ? e->str : "refused");
		} else if (r < 0) {
			snprintf(err, sizeof(err), "its VMM did not answer: %s", strerror(-r));
		}
		free(reply);
	} else {
		/* Off or Saved: the disks (and a saved state) as they lie. */
		char path[sizeof(dir) + 16], saved[STORE_PATH_MAX + 160], vmdir[STORE_PATH_MAX + 80];

		r = store_path(vmdir, sizeof(vmdir), root, name, NULL);
		if (r == 0)
			r = checkpoint_copy_disks(&c->vm, vmdir, dir, err, sizeof(err));
		if (r == 0 && vmm_state_is_saved(&st)) {
			snprintf(saved, sizeof(saved), "%s/%s", vmdir, STORE_SAVED);
			snprintf(path, sizeof(path), "%s/%s", dir, CHECKPOINT_STATE);
			r = util_copy_file(saved, path, NULL);
			if (r < 0)
				snprintf(err, sizeof(err), "copying its saved state: %s", strerror(-r));
		}
	}
	if (r < 0) {
		checkpoint_abandon(dir);
		cli_error("vm checkpoint: VM %s: %s", name, err);
		r = 1;
		goto out;
	}
	millis = (util_now_ns() - t0) / 1000000;
	r = checkpoint_finish(root, name, ckpt, dir, st.state, millis, err, sizeof(err));
	if (r < 0) {
		cli_error("vm checkpoint: VM %s: %s", name, err);
		r = 1;
		goto out;
	}
	printf("Checkpoint %s of VM %s (%s) taken in %llu.%03llu s\n", ckpt, name, st.state,
	       (unsigned long long)(millis / 1000), (unsigned long long)(millis % 1000));
out:
	store_unlock(lock);
	return r;
}

static int vm_checkpoint_list(struct vm_ctx *c)
{
	struct checkpoint *list;
	size_t n;
	int r = checkpoint_list(c->root, c->name, &list, &n);

	if (r < 0) {
		cli_error("vm checkpoint list: VM %s: %s", c->name, strerror(-r));
		return 1;
	}
	if (c->o->json) {
		struct json j;

		json_init(&j, stdout, true);
		json_array_begin(&j);
		for (size_t i = 0; i < n; i++) {
			json_object_begin(&j);
			json_kv_string(&j, "name", list[i].name);
			json_kv_int(&j, "created", list[i].created);
			json_kv_string(&j, "from", list[i].from);
			json_kv_bool(&j, "withState", list[i].has_state);
			json_kv_uint(&j, "bytes", list[i].bytes);
			json_kv_uint(&j, "millis", list[i].millis);
			json_object_end(&j);
		}
		json_array_end(&j);
		r = json_finish(&j);
	} else {
		printf("%-24s %-19s %-8s %10s %9s\n", "CHECKPOINT", "CREATED", "FROM", "SIZE", "TOOK");
		for (size_t i = 0; i < n; i++) {
			char when[32], size[32];
			time_t t = (time_t)list[i].created;

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
			snprintf(size, sizeof(size), "%.1fM", (double)list[i].bytes / (1 << 20));
			printf("%-24s %-19s %-8s %10s %7llu.%01llus\n", list[i].name, when, list[i].from, size,
			       (unsigned long long)(list[i].millis / 1000),
			       (unsigned long long)(list[i].millis % 1000 / 100));
		}
	}
	free(list);
	return r < 0 ? 1 : 0;
}

static int vm_checkpoint_restore_remove(struct vm_ctx *c, const char *ckpt, bool restore)
{
	const char *what = restore ? "restore" : "remove";
	struct vmm_state st;
	char err[1400];
	int r, lock;

	if ((r = vm_lock(c, &lock)))
		return r;
	vmm_state(c->root, c->name, &st);
	if (restore && !vmm_state_is_off(&st) && !vmm_state_is_saved(&st)) {
		cli_error("vm checkpoint restore: VM %s is %s: stop it first (nestvm vm stop %s); restoring a "
			  "checkpoint replaces its disks", c->name, st.state, c->name);
		r = 1;
		goto out;
	}
	r = restore ? checkpoint_restore(c->root, c->name, ckpt, err, sizeof(err)) :
		      checkpoint_remove(c->root, c->name, ckpt, err, sizeof(err));
	if (r < 0) {
		cli_error("vm checkpoint %s: %s", what, err);
		r = r == -ENOENT || r == -EINVAL ? EXIT_USAGE : 1;
		goto out;
	}
	if (restore) {
		vmm_state(c->root, c->name, &st);
		printf("VM %s is back at checkpoint %s: %s\n", c->name, ckpt,
		       vmm_state_is_saved(&st) ? "Saved there; nestvm vm start resumes it" : "Off");
	} else {
		printf("Removed checkpoint %s of VM %s\n", ckpt, c->name);
	}
out:
	store_unlock(lock);
	return r;
}

/* vm checkpoint [create] NAME [CHECKPOINT] | list NAME | restore NAME CHECKPOINT | remove NAME CHECKPOINT */
static int vm_checkpoint(struct vm_ctx *c)
{
	static const char *const actions[] = { "create", "list", "restore", "remove", NULL };
	const char *action = "create";
	char why[160];
	int a = 0, want, r;

	if (c->nargs > 0)
		for (int i = 0; actions[i]; i++)
			if (!strcmp(c->args[0], actions[i])) {
				action = actions[i];
				a = 1;
			}
	want = !strcmp(action, "list") ? 1 : !strcmp(action, "create") ? -1 : 2;
	if (c->nargs - a < 1 || (want > 0 && c->nargs - a != want) || (want < 0 && c->nargs - a > 2)) {
		cli_error("vm checkpoint: usage: %s", c->sub->usage);
		return EXIT_USAGE;
	}
	c->name = c->args[a];
	if (store_name_check(c->name, why, sizeof(why)) < 0) {
		cli_error("vm checkpoint: '%s': %s", c->name, why);
		return EXIT_USAGE;
	}
	if ((r = vmctl_load(c->cmd, c->root, c->name, &c->vm)))
		return r;
	if (!strcmp(action, "list"))
		return vm_checkpoint_list(c);
	if (!strcmp(action, "create"))
		return vm_checkpoint_create(c, c->nargs - a == 2 ? c->args[a + 1] : NULL);
	return vm_checkpoint_restore_remove(c, c->args[a + 1], !strcmp(action, "restore"));
}

/* ---- live migration ---- */

static uint64_t vm_reply_uint(const struct api_object *o, const char *key)
{
	const struct api_member *m = api_get(o, key);

	return m && m->type == API_INT && m->num > 0 ? (uint64_t)m->num : 0;
}

static int vm_migrate(struct vm_ctx *c)
{
	const char *root = c->root, *name = c->name;
	struct api_request req = { .cmd = API_MIGRATE };
	struct api_object *reply;
	struct vmm_state st;
	long last_round = -1;
	int r;

	if (!c->o->to) {
		cli_error("vm migrate: where to? --to unix:PATH or tcp:HOST:PORT (see --help)");
		return EXIT_USAGE;
	}
	vmm_state(root, name, &st);
	if (strcmp(st.state, "Running") && strcmp(st.state, "Paused")) {
		cli_error("vm migrate: VM %s is %s; only a running or paused VM migrates", name, st.state);
		return 1;
	}
	reply = malloc(sizeof(*reply));
	if (!reply)
		return 1;
	snprintf(req.path, sizeof(req.path), "%s", c->o->to);
	r = vmm_call_request(root, name, &req, reply, 10000);
	if (r < 0) {
		const struct api_member *e = r == -EPROTO ? api_get(reply, "error") : NULL;

		cli_error("vm migrate: VM %s: %s", name, e && e->type == API_STRING ? e->str : strerror(-r));
		free(reply);
		return r == -EPROTO && e && strstr(e->str, "address is") ? EXIT_USAGE : 1;
	}
	printf("Migrating VM %s to %s\n", name, c->o->to);
	fflush(stdout);
	for (;;) {
		const struct api_member *s, *e;

		nanosleep(&(struct timespec){ 0, 300 * 1000000 }, NULL);
		if (!store_vmm_alive(root, name)) {
			vmm_state(root, name, &st);
			if (!strncmp(st.last_exit, "migrated", 8)) {
				printf("Migrated VM %s %s\n", name, st.last_exit + 10);
				r = 0;
			} else {
				cli_error("vm migrate: VM %s ended during the migration: %s", name, st.last_exit);
				r = 1;
			}
			break;
		}
		if (vmm_call(root, name, "status", reply, 5000) < 0)
			continue;       /* busy with the last round */
		s = api_get(reply, "migrationState");
		if (s && s->type == API_STRING && !strcmp(s->str, "failed")) {
			e = api_get(reply, "migrationError");
			cli_error("vm migrate: VM %s stays here, running: %s", name,
				  e && e->type == API_STRING ? e->str : "the migration failed");
			r = 1;
			break;
		}
		if ((long)vm_reply_uint(reply, "migrationRound") != last_round) {
			last_round = (long)vm_reply_uint(reply, "migrationRound");
			printf("  round %ld: sent %.1f MiB (memory %.1f, disk %.1f) at %.1f MiB/s; "
			       "%.1f MiB dirty, dirtied at %.1f MiB/s\n", last_round,
			       (double)vm_reply_uint(reply, "migrationSentBytes") / (1 << 20),
			       (double)vm_reply_uint(reply, "migrationMemoryBytes") / (1 << 20),
			       (double)vm_reply_uint(reply, "migrationDiskBytes") / (1 << 20),
			       (double)vm_reply_uint(reply, "migrationRate") / (1 << 20),
			       (double)vm_reply_uint(reply, "migrationDirtyBytes") / (1 << 20),
			       (double)vm_reply_uint(reply, "migrationDirtyRate") / (1 << 20));
			fflush(stdout);
		}
	}
	free(reply);
	return r;
}

/* The VM a migration brings, as this store keeps it: its disks file names
 * in its directory, at the sizes they had. */
static void vm_receive_config(struct vmconfig *cfg, const char *name)
{
	snprintf(cfg->name, sizeof(cfg->name), "%s", name);
	for (unsigned int i = 0; i < cfg->ndisks; i++) {
		const char *base = strrchr(cfg->disks[i].path, '/');

		memmove(cfg->disks[i].path, base ? base + 1 : cfg->disks[i].path,
			strlen(base ? base + 1 : cfg->disks[i].path) + 1);
		cfg->disks[i].fixed = false;
	}
}

/* A disk the migration fills anew: empty (all holes), at its size. */
static int vm_receive_blank_disk(const char *root, const char *name, const struct vmconfig_disk *d)
{
	char path[STORE_PATH_MAX + 160];
	int fd, r = 0;

	if (store_path(path, sizeof(path), root, name, d->path) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)d->size) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int vm_receive(struct vm_ctx *c)
{
	const char *root = c->root, *name = c->name;
	struct vmconfig *cfg = NULL, *have = NULL;
	struct vmstate_load *l = NULL;
	struct migrate_addr a;
	struct vmm_state st;
	char err[1400], why[1200];
	bool created = false;
	int lfd, fd = -1, r;

	if (!c->o->listen) {
		cli_error("vm receive: where to wait? --listen unix:PATH or tcp:HOST:PORT (see --help)");
		return EXIT_USAGE;
	}
	if (migrate_parse_addr(c->o->listen, &a, err, sizeof(err)) < 0) {
		cli_error("vm receive: %s", err);
		return EXIT_USAGE;
	}
	lfd = migrate_listen(&a, err, sizeof(err));
	if (lfd < 0) {
		cli_error("vm receive: %s", err);
		return 1;
	}
	printf("Waiting for VM %s on %s\n", name, c->o->listen);
	fflush(stdout);
	fd = migrate_accept(lfd, c->o->timeout ? (int)c->o->timeout * 1000 : -1, err, sizeof(err));
	close(lfd);
	if (!a.tcp)
		unlink(a.path);
	r = -EIO;
	if (fd < 0)
		goto fail;
	l = calloc(1, sizeof(*l));
	cfg = calloc(1, sizeof(*cfg));
	have = calloc(1, sizeof(*have));
	if (!l || !cfg || !have) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (vmstate_load_head(l, fd, why, sizeof(why)) < 0) {
		snprintf(err, sizeof(err), "the migration stream: %s", why);
		goto fail;
	}
	if (store_parse_machine(l->config_text, strlen(l->config_text), "the migration stream", cfg, why,
				sizeof(why)) < 0) {
		snprintf(err, sizeof(err), "its configuration: %s", why);
		goto fail;
	}
	vm_receive_config(cfg, name);
	for (unsigned int i = 0; i < cfg->ndisks; i++)
		if (!cfg->disks[i].size) {
			snprintf(err, sizeof(err), "the source did not say how large disk %u is", i);
			goto fail;
		}
	if (store_load(root, name, have, why, sizeof(why)) == 0) {
		/* It is here already: the same machine, off, and its disks filled anew. */
		vmm_state(root, name, &st);
		if (!vmm_state_is_off(&st)) {
			snprintf(err, sizeof(err), "VM %s is %s here; only one that is Off takes a migration", name,
				 st.state);
			goto fail;
		}
		if (have->cpus != cfg->cpus || have->memory != cfg->memory || have->ndisks != cfg->ndisks ||
		    have->nnics != cfg->nnics || have->expose_virt != cfg->expose_virt ||
		    have->dynamic_memory != cfg->dynamic_memory || have->no_rng != cfg->no_rng) {
			snprintf(err, sizeof(err), "VM %s here is another machine than the one coming (processors, "
				 "memory, devices or extensions differ)", name);
			goto fail;
		}
		for (unsigned int i = 0; i < cfg->ndisks; i++)
			if (vm_receive_blank_disk(root, name, &have->disks[i]) < 0 ||
			    have->disks[i].size != cfg->disks[i].size) {
				snprintf(err, sizeof(err), "disk %u of VM %s here cannot take the one coming", i, name);
				goto fail;
			}
	} else {
		if (store_create(root, cfg, why, sizeof(why)) < 0) {
			snprintf(err, sizeof(err), "%s", why);
			goto fail;
		}
		created = true;
	}
	r = run_stored(c->cmd, root, name, &(struct run_stored_opts){
		.skip_probe = c->o->skip_probe, .detach = true, .incoming = l, .incoming_fd = fd });
	if (r == 0) {
		vmm_state(root, name, &st);
		printf("Received VM %s; it runs here now (VMM pid %d)\n", name, st.pid);
	} else if (created && store_remove(root, name, why, sizeof(why)) < 0) {
		cli_error("vm receive: %s", why);
	}
	/* On success the VMM has the stream and its fd; a failed start
	 * answered the source itself. */
	free(cfg);
	free(have);
	return r;
fail:
	cli_error("vm receive: VM %s: %s", name, err);
	if (fd >= 0) {
		migrate_send_ack(fd, err);
		close(fd);
	}
	if (created)
		(void)!store_remove(root, name, why, sizeof(why));
	if (l)
		vmstate_load_free(l);
	free(l);
	free(cfg);
	free(have);
	return 1;
}

/* ---- start, stop, pause, resume ---- */

static int vm_start(struct vm_ctx *c)
{
	const char *root = c->root, *name = c->name;
	struct vmm_state st;
	int r;

	bool saved;

	vmm_state(root, name, &st);
	saved = vmm_state_is_saved(&st);
	if (!vmm_state_is_off(&st) && !saved) {
		cli_error("vm start: VM %s is already %s", name, st.state);
		return 1;
	}
	r = run_stored(c->cmd, root, name, &(struct run_stored_opts){ .skip_probe = c->o->skip_probe, .detach = true });
	if (r)
		return r;
	vmm_state(root, name, &st);
	printf("%s VM %s (VMM pid %d); attach with: nestvm vm console %s\n",
	       saved ? "Resumed" : "Started", name, st.pid, name);
	return 0;
}

/* ---- save, discard-saved ---- */

static int vm_save(struct vm_ctx *c)
{
	/* Guest memory goes to disk: minutes for a large guest on a slow disk. */
	return vmctl_save(c->cmd, c->root, c->name, 3600);
}

static int vm_discard_saved(struct vm_ctx *c)
{
	const char *root = c->root, *name = c->name;
	char path[STORE_PATH_MAX + 128];
	struct vmm_state st;
	int r, lock;

	if ((r = vm_lock(c, &lock)))
		return r;
	vmm_state(root, name, &st);
	if (!vmm_state_is_saved(&st)) {
		cli_error("vm discard-saved: VM %s is %s, not Saved: it has no saved state", name, st.state);
		r = 1;
		goto out;
	}
	if (!c->o->yes) {
		if (!isatty(STDIN_FILENO)) {
			cli_error("vm discard-saved: not asking without a terminal: add --yes to throw away the "
				  "saved state of VM %s", name);
			r = EXIT_USAGE;
			goto out;
		}
		r = vmctl_ask("Throw away the saved state of VM %s? Its next start boots it anew", name);
		if (r != 1) {
			printf("VM %s stays Saved\n", name);
			r = 1;
			goto out;
		}
	}
	r = store_path(path, sizeof(path), root, name, STORE_SAVED);
	if (r == 0 && unlink(path) < 0)
		r = -errno;
	if (r < 0) {
		cli_error("vm discard-saved: %s/%s/%s: %s", root, name, STORE_SAVED, strerror(-r));
		r = 1;
		goto out;
	}
	printf("VM %s is Off; its saved state is gone\n", name);
out:
	store_unlock(lock);
	return r;
}

static int vm_stop(struct vm_ctx *c)
{
	return vmctl_stop(c->cmd, c->root, c->name, (int)c->o->timeout, c->o->force, false);
}

/* pause and resume: the command of the same name to the VM's VMM. */
static int vm_pause_resume(struct vm_ctx *c)
{
	const char *cmd = c->sub->name, *root = c->root, *name = c->name;
	struct api_object *reply;
	struct vmm_state st;
	int r;

	vmm_state(root, name, &st);
	if (strcmp(st.state, "Running") && strcmp(st.state, "Paused")) {
		cli_error("vm %s: VM %s is %s", cmd, name, st.state);
		return 1;
	}
	reply = malloc(sizeof(*reply));
	if (!reply)
		return 1;
	r = vmm_call(root, name, cmd, reply, 10000);
	if (r == 0) {
		const struct api_member *s = api_get(reply, "state");

		printf("VM %s is %s\n", name, s && s->type == API_STRING ? s->str : "?");
	} else if (r == -EPROTO) {
		const struct api_member *e = api_get(reply, "error");

		cli_error("vm %s: VM %s: %s", cmd, name, e && e->type == API_STRING ? e->str : "refused");
	} else {
		cli_error("vm %s: VM %s: control API: %s", cmd, name, strerror(-r));
	}
	free(reply);
	return r ? 1 : 0;
}

/* ---- console ---- */

static int vm_console(struct vm_ctx *c)
{
	const char *root = c->root, *name = c->name;
	struct vmm_state st;
	int r, fd;

	vmm_state(root, name, &st);
	if (vmm_state_is_off(&st)) {
		cli_error("vm console: VM %s is Off%s%s (start it: nestvm vm start %s)", name,
			  st.last_exit[0] ? "; last exit: " : "", st.last_exit, name);
		return 1;
	}
	fd = vmm_console_connect(root, name);
	if (fd < 0) {
		cli_error("vm console: VM %s (%s): %s/%s/%s: %s", name, st.state, root, name, STORE_CONSOLE_SOCK,
			  strerror(-fd));
		return 1;
	}
	fprintf(stderr, "Connected to the console of %s; Ctrl-] detaches.\n", name);
	r = console_attach(fd, 0x1d);
	close(fd);
	if (r == 1)
		fprintf(stderr, "\nDetached from %s; it runs on.\n", name);
	else if (r == 0)
		fprintf(stderr, "\nnestvm: the console of %s closed (the VM stopped)\n", name);
	return 0;
}

/* ---- the command ---- */

static void vm_usage(FILE *out)
{
	fputs("Usage: nestvm vm COMMAND NAME [OPTIONS]\n"
	      "Named virtual machines, kept in a store (--store DIR, $NESTVM_STORE, /var/lib/nestvm\n"
	      "for root, else $XDG_DATA_HOME/nestvm or ~/.local/share/nestvm).\n\n"
	      "Commands:\n"
	      "  new NAME       create a VM (memory, processors, kernel, disks, network adapters)\n"
	      "  set NAME       change its settings\n"
	      "  list           the VMs and their states (Off, Saved, Starting, Running, Paused, Stopping)\n"
	      "  show NAME      one VM's settings and state\n"
	      "  remove NAME    delete a VM that is Off or Saved, with its disks\n"
	      "  start NAME     boot it in the background, or resume it if Saved\n"
	      "  save NAME      save its whole state to disk and end it: it is Saved\n"
	      "  discard-saved NAME  throw a Saved VM's state away: it is Off\n"
	      "  checkpoint NAME [CHECKPOINT]  take a checkpoint; checkpoint list|restore|remove ...\n"
	      "  migrate NAME --to ADDRESS      move it, live, to a nestvm vm receive\n"
	      "  receive NAME --listen ADDRESS  take a VM that migrates here\n"
	      "  console NAME   attach to its serial console (Ctrl-] detaches)\n"
	      "  stop NAME      shut it down (ACPI power button); --force turns it off\n"
	      "  pause NAME     pause its processors\n"
	      "  resume NAME    let it run on\n\n"
	      "Each command takes --help. Exit status: 0 done, 1 failed, 2 bad usage or input.\n", out);
}

static const struct vm_sub vm_subs[] = {
	{ "new", "nestvm vm new NAME [--memory SIZE] [--cpus N] [--kernel FILE] [--initrd FILE] "
	  "[--cmdline TEXT] [--disk SIZE[,fixed]]... [--nic SWITCH]... [--nested]",
	  "Create the VM NAME in the store, turned off. Without --kernel it boots the default\n"
	  "guest image. Each --disk makes a new raw image diskN.img in the VM's directory,\n"
	  "sparse or preallocated (,fixed). Each --nic adds a network adapter with a new\n"
	  "locally administered MAC address (switches are stored for when networking comes).\n"
	  "Names: 1 to 64 of letters, digits, '.', '_', '-', not starting with '.' or '-'.",
	  new_table, VM_NAMED, vm_new },
	{ "set", "nestvm vm set NAME [OPTIONS]",
	  "Change the settings of the VM NAME. Processors, memory, dynamic memory, the\n"
	  "virtualization extensions, kernel, initrd, command line, new adapters and MAC\n"
	  "addresses change only while the VM is Off; the switch and MAC address spoofing\n"
	  "of an adapter, and --autostart, change at any time. With dynamic memory on, --memory is what the\n"
	  "guest starts with and a balloon then moves it between the minimum and maximum.",
	  set_table, VM_NAMED, vm_set },
	{ "list", "nestvm vm list [--json]",
	  "List the VMs of the store with their state. A VM whose configuration does not\n"
	  "load is listed as Invalid and its error printed; the exit status is then 1.",
	  list_table, 0, vm_list },
	{ "show", "nestvm vm show NAME [--json]",
	  "Show the settings and state of the VM NAME; a configuration with a mistake\n"
	  "is reported with its file and line.",
	  list_table, VM_NAMED | VM_LOADED, vm_show },
	{ "remove", "nestvm vm remove NAME [--yes]",
	  "Delete the VM NAME with its directory and disks. It must be Off or Saved. On a\n"
	  "terminal it asks first; elsewhere --yes is required.",
	  remove_table, VM_NAMED, vm_remove },
	{ "start", "nestvm vm start NAME",
	  "Start the VM NAME: its VMM (nestvm run --name NAME --detach) runs in the background,\n"
	  "its console in console.log of the VM's directory and on nestvm vm console NAME.",
	  start_table, VM_NAMED | VM_LOADED, vm_start },
	{ "save", "nestvm vm save NAME",
	  "Save the whole state of the running or paused VM NAME (memory, processors with\n"
	  "the state of their own VMs, devices; its disks flushed) to saved.state in its\n"
	  "directory, and end its VMM. The VM is then Saved: nestvm vm start resumes it where\n"
	  "it was, and settings that need it Off are refused until then.",
	  plain_table, VM_NAMED | VM_LOADED, vm_save },
	{ "discard-saved", "nestvm vm discard-saved NAME [--yes]",
	  "Throw away the saved state of the Saved VM NAME: it is Off, and its next start\n"
	  "boots it anew. On a terminal it asks first; elsewhere --yes is required.",
	  discard_table, VM_NAMED, vm_discard_saved },
	{ "checkpoint", "nestvm vm checkpoint [create] NAME [CHECKPOINT] | list NAME [--json] | "
	  "restore NAME CHECKPOINT | remove NAME CHECKPOINT",
	  "Checkpoints of the VM NAME: its disks, configuration and, if it runs, its whole state\n"
	  "(its own VMs' included) as they are now, kept in checkpoints/ of its directory; the\n"
	  "disks are reflinked where the file system can, else copied sparse. A running VM is\n"
	  "paused while it is taken and runs on. CHECKPOINT defaults to the date and time.\n"
	  "list shows each with the VM's state then, its size on disk and how long it took.\n"
	  "restore brings disks, settings and state back (the VM must not run): a VM that ran\n"
	  "then is Saved there and nestvm vm start resumes it; one that was Off is Off.",
	  checkpoint_table, VM_ARGS, vm_checkpoint },
	{ "migrate", "nestvm vm migrate NAME --to ADDRESS",
	  "Move the running VM NAME, live, to the nestvm vm receive that listens at ADDRESS\n"
	  "(unix:PATH, or tcp:HOST:PORT with a numeric host): its disks and memory go while it\n"
	  "runs, round after round of what it wrote meanwhile, then it stops for the last of\n"
	  "them and its devices and processors, its own VMs' state included. Each round is\n"
	  "shown. Once the destination has it all it runs there and ends here (Off, with\n"
	  "the reason); if anything fails before, it runs on here as it was. The stream is\n"
	  "neither encrypted nor authenticated: use it inside a trusted network.",
	  migrate_table, VM_NAMED | VM_LOADED, vm_migrate },
	{ "receive", "nestvm vm receive NAME --listen ADDRESS [--timeout SECS]",
	  "Wait at ADDRESS for a VM that nestvm vm migrate sends, and run it here as NAME\n"
	  "(created with its configuration and disks, or an Off VM NAME of the same machine,\n"
	  "whose disks it replaces). Returns once the VM runs here.",
	  receive_table, VM_NAMED, vm_receive },
	{ "stop", "nestvm vm stop NAME [--timeout SECS] [--force]",
	  "Shut the VM NAME down: press its ACPI power button and wait for the guest to power\n"
	  "off. After --timeout seconds (default 60) without --force it gives up with status 1;\n"
	  "with --force it turns the VM off (the VMM's stop, then SIGKILL as a last resort).",
	  stop_table, VM_NAMED | VM_LOADED, vm_stop },
	{ "console", "nestvm vm console NAME",
	  "Attach to the serial console of the running VM NAME: its recent output, then live\n"
	  "output and your input. Ctrl-] detaches; the VM runs on. Everything the console\n"
	  "shows is also in console.log in the VM's directory. Ends when the VM stops.",
	  plain_table, VM_NAMED | VM_LOADED, vm_console },
	{ "pause", "nestvm vm pause NAME", "Pause the VM NAME: its processors stop; its memory stays.",
	  plain_table, VM_NAMED | VM_LOADED, vm_pause_resume },
	{ "resume", "nestvm vm resume NAME", "Let a paused VM NAME run on.",
	  plain_table, VM_NAMED | VM_LOADED, vm_pause_resume },
	{ 0 },
};

/* The front every subcommand shares: options, NAME, the store, the VM. */
static int vm_front(const struct vm_sub *sub, int argc, char **argv, struct vm_ctx *c)
{
	char why[160];
	int npos, r;

	r = cli_parse(c->cmd, sub->table, sub->usage, sub->summary, argc, argv, c->o, &npos, &c->given);
	if (r >= 0)
		return r;
	if (sub->flags & VM_ARGS) {
		c->args = argv;
		c->nargs = npos;
		if ((r = vmctl_root(c->o->store, c->root, sizeof(c->root))))
			return r;
		return sub->run(c);
	}
	if ((sub->flags & VM_NAMED) && npos == 0) {
		cli_error("%s: which VM? (usage: %s)", c->cmd, sub->usage);
		return EXIT_USAGE;
	}
	if (npos > (sub->flags & VM_NAMED ? 1 : 0)) {
		cli_error("%s: unexpected argument '%s' (see --help)", c->cmd, argv[sub->flags & VM_NAMED ? 1 : 0]);
		return EXIT_USAGE;
	}
	c->name = sub->flags & VM_NAMED ? argv[0] : NULL;
	if (c->name && store_name_check(c->name, why, sizeof(why)) < 0) {
		cli_error("%s: '%s': %s", c->cmd, c->name, why);
		return EXIT_USAGE;
	}
	if ((r = vmctl_root(c->o->store, c->root, sizeof(c->root))))
		return r;
	if ((sub->flags & VM_LOADED) && (r = vmctl_load(c->cmd, c->root, c->name, &c->vm)))
		return r;
	return sub->run(c);
}

int cmd_vm(int argc, char **argv)
{
	const struct vm_sub *sub = NULL;
	struct vm_ctx *c;
	char cmd[32];
	int r = cli_subcommand(vm_usage, argc, argv);

	if (r >= 0)
		return r;
	for (const struct vm_sub *s = vm_subs; s->name; s++)
		if (!strcmp(argv[0], s->name))
			sub = s;
	if (!sub) {
		cli_error("vm: unknown command '%s' (see 'nestvm vm help')", argv[0]);
		return EXIT_USAGE;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->o = calloc(1, sizeof(*c->o)))) {
		free(c);
		cli_error("out of memory");
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "vm %s", sub->name);
	c->sub = sub;
	c->cmd = cmd;
	c->o->timeout = 60;
	vmconfig_init(&c->o->cfg, NULL);
	r = vm_front(sub, argc - 1, argv + 1, c);
	free(c->o);
	free(c);
	return r;
}

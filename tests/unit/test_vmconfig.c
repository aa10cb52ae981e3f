/* Tier 1: the machine configuration and its rules (the validator, the
 * names, the device count, whether a VM can nest), a stored VM turned into
 * a configuration to run, and the VMM's part that needs no KVM: a stored
 * VM's run lock and the checks of its boot files. */
#include "harness.h"
#include "fake_bzimage.h"
#include "store.h"
#include "vmconfig.h"
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

HARNESS_DEFINE;

static char tmpdir[256], root[300], kernel[320], big[320];

static const struct vmconfig_names cli_names = {
	.memory = "--memory", .memory_noun = "the startup memory", .memory_min = "--memory-minimum",
	.memory_max = "--memory-maximum", .cpus = "--cpus", .kernel = "--kernel FILE", .cmdline = "--cmdline",
};

/* CHECK_STR for long buffers: the message shows their start. */
#define CHECK_PATH(got, want) do { \
	if (strcmp((got), (want))) \
		FAILF("%s:%d: got \"%.300s\", want \"%.300s\"", __FILE__, __LINE__, (got), (want)); \
} while (0)

/* A configuration that passes: the defaults and a kernel. */
static void base(struct vmconfig *c)
{
	vmconfig_init(c, "vm1");
	strcpy(c->kernel, "/boot/vmlinuz");
}

static void expect_invalid(const struct vmconfig *c, const struct vmconfig_names *n, const char *needle)
{
	char err[512] = "";

	if (vmconfig_validate(c, n, err, sizeof(err)) != -EINVAL)
		FAILF("accepted; wanted '%s'", needle);
	if (!strstr(err, needle))
		FAILF("error '%s' does not say '%s'", err, needle);
}

static void expect_valid(const struct vmconfig *c)
{
	char err[512] = "";

	if (vmconfig_validate(c, &vmconfig_conf_names, err, sizeof(err)) != 0)
		FAILF("refused: %s", err);
}

static void test_defaults(void)
{
	struct vmconfig c;
	uint64_t min, max;

	vmconfig_init(&c, "web");
	CHECK_STR(c.name, "web");
	CHECK_EQ(c.memory, 512ULL << 20);
	CHECK_EQ(c.cpus, 1);
	CHECK_PATH(c.cmdline, "console=ttyS0");
	CHECK(!c.expose_virt && !c.dynamic_memory && !c.no_rng && !c.ndisks && !c.nnics);
	/* A kernel is all a VM lacks; each front end names it its own way. */
	expect_invalid(&c, &vmconfig_conf_names, "kernel is required");
	expect_invalid(&c, &cli_names, "--kernel FILE is required");
	base(&c);
	expect_valid(&c);
	/* Dynamic memory's defaults: min(512M, startup), twice the startup, at most 1T. */
	vmconfig_memory_range(&c, &min, &max);
	CHECK_EQ(min, 512ULL << 20);
	CHECK_EQ(max, 1ULL << 30);
	c.memory = 256ULL << 20;
	vmconfig_memory_range(&c, &min, &max);
	CHECK_EQ(min, 256ULL << 20);
	CHECK_EQ(max, 512ULL << 20);
	c.memory = 1ULL << 40;
	vmconfig_memory_range(&c, &min, &max);
	CHECK_EQ(max, 1ULL << 40);
	c.memory_min = 64ULL << 20;
	c.memory_max = 2ULL << 40;
	vmconfig_memory_range(&c, &min, &max);
	CHECK_EQ(min, 64ULL << 20);                     /* set: as set */
	CHECK_EQ(max, 2ULL << 40);
}

static void test_memory_rules(void)
{
	struct vmconfig c;

	CHECK_EQ(vmconfig_check_memory(16ULL << 20), 0);
	CHECK_EQ(vmconfig_check_memory(1ULL << 40), 0);
	CHECK_EQ(vmconfig_check_memory((16ULL << 20) - (1ULL << 20)), -ERANGE);
	CHECK_EQ(vmconfig_check_memory((1ULL << 40) + (1ULL << 20)), -ERANGE);
	CHECK_EQ(vmconfig_check_memory((16ULL << 20) + 4096), -EINVAL);

	base(&c);
	c.memory = (16ULL << 20) + 1;
	expect_invalid(&c, &cli_names, "--memory must be a whole number of MiB");
	expect_invalid(&c, &vmconfig_conf_names, "memory must be a whole number of MiB");
	c.memory = 8ULL << 20;
	expect_invalid(&c, &vmconfig_conf_names, "memory 8M: out of range (16M to 1T)");
	c.memory = 1ULL << 30;
	c.cpus = 0;
	expect_invalid(&c, &cli_names, "--cpus 0: out of range (1 to 255)");
	c.cpus = 256;
	expect_invalid(&c, &vmconfig_conf_names, "processors 256: out of range (1 to 255)");
	c.cpus = 255;
	expect_valid(&c);

	/* minimum <= startup <= maximum, whole MiB; the bounds hold whether or
	 * not dynamic memory is on, so turning it on never fails later. */
	c.memory_min = 2ULL << 30;
	expect_invalid(&c, &cli_names, "--memory-minimum 2G is above the startup memory 1G: lower it or raise --memory");
	expect_invalid(&c, &vmconfig_conf_names, "dynamic-memory-minimum 2G is above memory 1G");
	c.memory_min = 0;
	c.memory_max = 512ULL << 20;
	c.dynamic_memory = true;
	expect_invalid(&c, &cli_names, "--memory-maximum 512M is below the startup memory 1G: raise it or lower --memory");
	c.memory_max = (2ULL << 30) + 1;
	expect_invalid(&c, &cli_names, "--memory-minimum and --memory-maximum must be whole numbers of MiB");
	c.memory_max = 2ULL << 40;
	expect_invalid(&c, &cli_names, "--memory-maximum 2T: out of range (16M to 1T)");
	c.memory_max = 4ULL << 30;
	c.memory_min = 512ULL << 20;
	expect_valid(&c);
}

static void test_devices_and_text(void)
{
	struct vmconfig c;
	char err[256];

	/* Eight virtio windows: disks, adapters, the rng and the balloon. */
	CHECK_EQ(vmconfig_check_devices(7, 0, true, false, false, err, sizeof(err)), 0);
	CHECK_EQ(vmconfig_check_devices(7, 0, true, true, false, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "7 disks and 0 network adapters and the rng and the memory balloon: at most 8 devices"));
	CHECK_EQ(vmconfig_check_devices(4, 4, false, false, false, err, sizeof(err)), 0);
	CHECK_EQ(vmconfig_check_devices(4, 3, true, false, true, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "and the vsock: at most 8"));
	/* The vsock's CID and socket. */
	CHECK_EQ(vmconfig_check_vsock(3, "/run/v.sock", err, sizeof(err)), 0);
	CHECK_EQ(vmconfig_check_vsock(2, "/run/v.sock", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "CID 2"));
	CHECK_EQ(vmconfig_check_vsock(0xffffffffULL, "/run/v.sock", err, sizeof(err)), -EINVAL);
	CHECK_EQ(vmconfig_check_vsock(3, "", err, sizeof(err)), -EINVAL);

	base(&c);
	for (unsigned int i = 0; i < 7; i++) {
		snprintf(c.disks[i].path, sizeof(c.disks[i].path), "/d%u.img", i);
		c.ndisks++;
	}
	expect_valid(&c);
	c.dynamic_memory = true;
	expect_invalid(&c, &vmconfig_conf_names, "at most 8 devices in all");
	c.dynamic_memory = false;
	strcpy(c.disks[6].path, "/d0.img");
	expect_invalid(&c, &vmconfig_conf_names, "disk '/d0.img' listed twice");
	c.ndisks = 1;
	c.disks[0].size = 1000;
	expect_invalid(&c, &vmconfig_conf_names, "disk '/d0.img': a disk is from 1M to 64T, a multiple of 512 bytes");
	CHECK_EQ(vmconfig_check_disk_size(1ULL << 20, err, sizeof(err)), 0);
	CHECK_EQ(vmconfig_check_disk_size(64ULL << 40, err, sizeof(err)), 0);
	CHECK_EQ(vmconfig_check_disk_size((1ULL << 20) - 512, err, sizeof(err)), -EINVAL);
	CHECK_EQ(vmconfig_check_disk_size((1ULL << 20) + 1, err, sizeof(err)), -EINVAL);
	c.ndisks = 0;

	/* An adapter is on a switch or a TAP device, not both, not neither. */
	c.nnics = 1;
	expect_invalid(&c, &vmconfig_conf_names, "network adapter 0: give exactly one of a switch or a TAP device");
	strcpy(c.nics[0].sw, "lan");
	strcpy(c.nics[0].tap, "tap0");
	expect_invalid(&c, &vmconfig_conf_names, "exactly one");
	c.nics[0].tap[0] = 0;
	c.nics[0].mac[0] = 0x01;
	expect_invalid(&c, &vmconfig_conf_names, "multicast");
	c.nics[0].mac[0] = 0x52;
	expect_valid(&c);
	strcpy(c.nics[0].sw, "a\tb");
	expect_invalid(&c, &vmconfig_conf_names,
		       "network adapter 0: switch name: a switch name must not contain control characters");
	CHECK_EQ(vmconfig_check_switch("", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "1 to 63 characters"));
	CHECK_EQ(vmconfig_check_switch("external-switch", err, sizeof(err)), 0);
	/* A switch is a directory of the store: its name is never a path. */
	CHECK_EQ(vmconfig_check_switch("../x", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "must not start with '.'"));
	CHECK_EQ(vmconfig_check_switch("a/b", err, sizeof(err)), -EINVAL);
	CHECK_EQ(vmconfig_check_switch("External Switch", err, sizeof(err)), -EINVAL);
	c.nnics = 0;

	strcpy(c.cmdline, "console=ttyS0\ninit=/bin/sh");
	expect_invalid(&c, &cli_names, "--cmdline: one line of at most 2047 characters");
	strcpy(c.cmdline, "");
	expect_valid(&c);
	strcpy(c.name, "a/b");
	expect_invalid(&c, &vmconfig_conf_names, "name 'a/b': a VM name must not contain '/'");
	c.name[0] = 0;                                  /* a VM not in the store */
	expect_valid(&c);
}

static void test_names(void)
{
	char err[256];

	CHECK_EQ(vmconfig_check_name("web-1.test_2", "VM", err, sizeof(err)), 0);
	CHECK_EQ(vmconfig_check_name("", "switch", err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "a switch name must not be empty");
	CHECK_EQ(vmconfig_check_name(".x", "VM", err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "a VM name must not start with '.' or '-'");
	CHECK_EQ(vmconfig_check_name("a b", "disk", err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "a disk name may hold only letters, digits, '.', '_' and '-'");
	CHECK_EQ(vmconfig_check_name(NULL, "VM", err, sizeof(err)), -EINVAL);
	/* The store reserves the name of its switches' directory for VMs only. */
	CHECK_EQ(store_name_check("switches", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "reserved"));
	CHECK_EQ(vmconfig_check_name("switches", "switch", err, sizeof(err)), 0);
}

static void test_nesting(void)
{
	struct vmconfig c;

	base(&c);
	c.memory = 256ULL << 20;
	c.dynamic_memory = true;
	c.memory_max = 384ULL << 20;
	c.nnics = 2;
	strcpy(c.nics[0].sw, "lan");
	strcpy(c.nics[1].sw, "lan");
	c.nics[1].mac_spoofing = true;
	CHECK_EQ(vmconfig_nesting_needs(&c), VMCONFIG_NEST_EXPOSE | VMCONFIG_NEST_FIXED_MEMORY |
		 VMCONFIG_NEST_MEMORY | VMCONFIG_NEST_SPOOFING);
	/* Only what is asked for changes. */
	vmconfig_make_nested(&c, VMCONFIG_NEST_EXPOSE);
	CHECK(c.expose_virt);
	CHECK_EQ(vmconfig_nesting_needs(&c), VMCONFIG_NEST_FIXED_MEMORY | VMCONFIG_NEST_MEMORY |
		 VMCONFIG_NEST_SPOOFING);
	/* Raising the memory keeps a maximum that was set at least as high. */
	vmconfig_make_nested(&c, VMCONFIG_NEST_MEMORY | VMCONFIG_NEST_FIXED_MEMORY | VMCONFIG_NEST_SPOOFING);
	CHECK_EQ(c.memory, VMCONFIG_NESTED_MIN_MEMORY);
	CHECK_EQ(c.memory_max, VMCONFIG_NESTED_MIN_MEMORY);
	CHECK(!c.dynamic_memory);
	CHECK(c.nics[0].mac_spoofing && c.nics[1].mac_spoofing);
	CHECK_EQ(vmconfig_nesting_needs(&c), 0);
	expect_valid(&c);
	/* Spoofing is not required to nest: without adapters nothing is asked. */
	c.nnics = 0;
	CHECK_EQ(vmconfig_nesting_needs(&c) & VMCONFIG_NEST_REQUIRED, 0);
}

/* ---- a stored VM as a machine to run ---- */

static void make_stored(const char *name, struct vmconfig *c)
{
	char err[512];

	vmconfig_init(c, name);
	strcpy(c->kernel, kernel);
	c->cpus = 2;
	c->expose_virt = true;
	c->ndisks = 2;
	strcpy(c->disks[0].path, "disk0.img");
	c->disks[0].size = 1ULL << 20;
	strcpy(c->disks[1].path, "data.img");
	c->disks[1].size = 2ULL << 20;
	c->disks[1].fixed = true;
	c->nnics = 1;
	strcpy(c->nics[0].sw, "lan");
	vmconfig_random_mac(c->nics[0].mac);
	if (store_create(root, c, err, sizeof(err)) != 0)
		FAILF("store_create: %s", err);
}

static void test_store_load_machine(void)
{
	struct vmconfig made, defined, machine;
	char err[512], want[700];
	struct stat st;

	make_stored("m1", &made);
	CHECK_EQ(store_load(root, "m1", &defined, err, sizeof(err)), 0);
	CHECK_EQ(store_load_machine(root, "m1", &machine, err, sizeof(err)), 0);
	/* The disks become paths in the VM's directory, files that exist... */
	CHECK_EQ(machine.ndisks, 2);
	snprintf(want, sizeof(want), "%s/m1/disk0.img", root);
	CHECK_PATH(machine.disks[0].path, want);
	CHECK_EQ(stat(machine.disks[0].path, &st), 0);
	snprintf(want, sizeof(want), "%s/m1/data.img", root);
	CHECK_PATH(machine.disks[1].path, want);
	CHECK(machine.disks[1].fixed && !machine.disks[1].read_only);
	/* ...and all else is the VM as defined. */
	for (unsigned int i = 0; i < machine.ndisks; i++)
		memcpy(machine.disks[i].path, defined.disks[i].path, sizeof(machine.disks[i].path));
	CHECK(!memcmp(&machine, &defined, sizeof(machine)));
	CHECK_STR(defined.nics[0].sw, "lan");
	CHECK(!memcmp(defined.nics[0].mac, made.nics[0].mac, 6));
	CHECK(defined.expose_virt && defined.cpus == 2);
	/* It runs: what it loads passes the rules. */
	CHECK_EQ(vmconfig_validate(&machine, &vmconfig_conf_names, err, sizeof(err)), 0);

	CHECK_EQ(store_load_machine(root, "nosuch", &machine, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no VM named 'nosuch'"));
	CHECK_EQ(store_load_machine(root, "../x", &machine, err, sizeof(err)), -EINVAL);
}

/* ---- the VMM, as far as it goes without KVM ---- */

static void test_vmm_stored_run_lock(void)
{
	struct vmm_options opt = { .store = root, .skip_probe = true };
	struct vmm *a = NULL, *b = NULL;
	struct vmm_state st;
	struct vmconfig c;
	char err[512];

	make_stored("m2", &c);
	vmm_state(root, "m2", &st);
	CHECK_STR(st.state, "Off");
	CHECK_EQ(vmm_create_stored(&a, "m2", &opt, err, sizeof(err)), 0);
	/* Its run lock is held: alive, Starting until its API answers. */
	vmm_state(root, "m2", &st);
	CHECK_STR(st.state, "Starting");
	CHECK_EQ(vmm_create_stored(&b, "m2", &opt, err, sizeof(err)), -EALREADY);
	CHECK_STR(err, "VM 'm2' is already running");
	CHECK(!b);
	CHECK_EQ(vmm_check_boot(a, err, sizeof(err)), 0);
	vmm_destroy(a);
	vmm_state(root, "m2", &st);
	CHECK_STR(st.state, "Off");

	CHECK_EQ(vmm_create_stored(&b, "nosuch", &opt, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no VM named 'nosuch'"));
}

/* A VMM for c whose boot files check as want says, err holding needle. */
static void expect_boot(const struct vmconfig *c, int want, const char *needle)
{
	struct vmm_options opt = { .skip_probe = true };
	struct vmm *v;
	char err[512] = "";

	CHECK_EQ(vmm_create(&v, c, &opt, err, sizeof(err)), 0);
	CHECK_EQ(vmm_check_boot(v, err, sizeof(err)), want);
	vmm_destroy(v);
	if (!strstr(err, needle))
		FAILF("error '%s' does not say '%s'", err, needle);
}

static void test_vmm_boot_files(void)
{
	struct vmm_options opt = { .skip_probe = true };
	struct vmconfig c;
	struct vmm *v;
	char err[512];

	base(&c);
	strcpy(c.kernel, kernel);
	expect_boot(&c, 0, "");
	/* An initrd as large as the memory does not fit. */
	c.memory = 16ULL << 20;
	strcpy(c.initrd, big);
	expect_boot(&c, -EINVAL, "larger than the guest's 16 MiB of memory");
	/* Not a kernel; no such file. */
	strcpy(c.initrd, "");
	strcpy(c.kernel, big);
	expect_boot(&c, -EINVAL, "not a Linux bzImage");
	strcpy(c.kernel, "/nonexistent/vmlinuz");
	expect_boot(&c, -ENOENT, "kernel '/nonexistent/vmlinuz': No such file or directory");

	/* The VMM checks what it is given even when a front end did not. */
	c.memory = 3;
	CHECK_EQ(vmm_create(&v, &c, &opt, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "memory 3: out of range"));
}

int main(void)
{
	size_t len;
	uint8_t *img;
	int fd;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nestvm-test-vmconfig-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(root, sizeof(root), "%s/store", tmpdir);
	snprintf(kernel, sizeof(kernel), "%s/bzImage", tmpdir);
	snprintf(big, sizeof(big), "%s/big", tmpdir);
	img = fake_bzimage(NULL, 0, 4096, &len);
	fd = open(kernel, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (!img || fd < 0 || write(fd, img, len) != (ssize_t)len)
		return 1;
	close(fd);
	free(img);
	fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 16 << 20) < 0)
		return 1;
	close(fd);

	RUN(test_defaults);
	RUN(test_memory_rules);
	RUN(test_devices_and_text);
	RUN(test_names);
	RUN(test_nesting);
	RUN(test_store_load_machine);
	RUN(test_vmm_stored_run_lock);
	RUN(test_vmm_boot_files);
	harness_remove_tree(tmpdir);
	return HARNESS_END();
}

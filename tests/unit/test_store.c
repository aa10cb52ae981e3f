/* Tier 1: the VM store and the commands over it, no KVM. Names, the vm.conf
 * format and its errors by file:line, atomic writes under failing I/O, the
 * per-VM lock, commands killed at every step (every VM still loads), the
 * state derived from a fake VMM, the nested assistant driven through a
 * pipe and a pty, and the store against other local users and hostile
 * files (modes, links, other owners, huge files, FIFOs, pid files). */
#include "harness.h"
#include "api.h"
#include "cli/cli.h"
#include "cli/vmctl.h"
#include "store.h"
#include "vmm.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

HARNESS_DEFINE;

static char tmpdir[256], root[300], kernel[320];
static char out[65536], err[65536];

/* Runs nestvm's main-like entry fn(words) in a child: stdin from input (NULL:
 * /dev/null), stdout and stderr into out and err; returns its exit status. */
static int cli(const char *input, int (*fn)(int, char **), const char *const *words)
{
	char *argv[64];
	int argc = 0, status, fdo, fde;
	char po[400], pe[400], pi[400];
	pid_t pid;

	for (; words[argc]; argc++)
		argv[argc] = (char *)words[argc];
	argv[argc] = NULL;
	snprintf(po, sizeof(po), "%s/out", tmpdir);
	snprintf(pe, sizeof(pe), "%s/err", tmpdir);
	snprintf(pi, sizeof(pi), "%s/in", tmpdir);
	if (input) {
		FILE *f = fopen(pi, "w");
		fputs(input, f);
		fclose(f);
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int in = open(input ? pi : "/dev/null", O_RDONLY);
		dup2(in, 0);
		dup2(open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600), 1);
		dup2(open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600), 2);
		status = fn(argc, argv);
		fflush(stdout);
		fflush(stderr);
		_exit(status);
	}
	waitpid(pid, &status, 0);
	fdo = open(po, O_RDONLY);
	fde = open(pe, O_RDONLY);
	out[read(fdo, out, sizeof(out) - 1)] = 0;
	err[read(fde, err, sizeof(err) - 1)] = 0;
	close(fdo);
	close(fde);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define VM(...) cli(NULL, cmd_vm, (const char *const[]){ __VA_ARGS__, NULL })
#define VM_IN(in, ...) cli(in, cmd_vm, (const char *const[]){ __VA_ARGS__, NULL })
#define NESTED_IN(in, ...) cli(in, cmd_nested, (const char *const[]){ __VA_ARGS__, NULL })

static void expect_err(int status, int want, const char *needle)
{
	if (status != want)
		FAILF("status %d, want %d (stderr: %.400s stdout: %.400s)", status, want, err, out);
	if (!strstr(err, needle))
		FAILF("stderr '%.600s' does not mention '%s'", err, needle);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f);
	fputs(text, f);
	CHECK(fclose(f) == 0);
}

static char *read_text(const char *path)
{
	uint8_t *d;
	size_t n;

	if (util_read_file(path, &d, &n) < 0)
		return NULL;
	d = realloc(d, n + 1);
	d[n] = 0;
	return (char *)d;
}

/* ---- names ---- */

static void test_names(void)
{
	static const char *const good[] = { "NestedHost", "a", "vm-1", "web_2.test", "A1234567890" };
	static const char *const bad[] = { "", "switches", "..", ".", ".hidden", "-x", "a/b", "/", "a b", "tab\tx", "nl\nx",
					   "bell\a", "del\x7f", "ü", "a:b" };
	char longname[70];
	char why[256];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (store_name_check(good[i], why, sizeof(why)) != 0)
			FAILF("'%s' refused: %s", good[i], why);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		why[0] = 0;
		if (store_name_check(bad[i], why, sizeof(why)) != -EINVAL || !why[0])
			FAILF("name #%zu '%s' accepted", i, bad[i]);
	}
	memset(longname, 'a', 64);
	longname[64] = 0;
	CHECK_EQ(store_name_check(longname, why, sizeof(why)), 0);
	longname[64] = 'a';
	longname[65] = 0;
	CHECK_EQ(store_name_check(longname, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "64"));
	CHECK_EQ(store_name_check(NULL, why, sizeof(why)), -EINVAL);
	CHECK_EQ(store_name_check("a/b", why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "'/'"));
	CHECK_EQ(store_name_check("x\x01", why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "control"));

	/* The command line says so with status 2, and makes nothing. */
	expect_err(VM("new", "", "--store", root, "--kernel", kernel), 2, "must not be empty");
	expect_err(VM("new", "..", "--store", root, "--kernel", kernel), 2, "must not start with '.'");
	expect_err(VM("new", "a/b", "--store", root, "--kernel", kernel), 2, "'/'");
	expect_err(VM("new", "x\x1b", "--store", root, "--kernel", kernel), 2, "control");
	expect_err(VM("new", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "--store", root,
		      "--kernel", kernel), 2, "at most 64");
	expect_err(VM("show", "../../etc", "--store", root), 2, "must not start");
}

/* ---- vm.conf ---- */

static void sample_vm(struct vmconfig *vm, const char *name)
{
	vmconfig_init(vm, name);
	vm->memory = 2ULL << 30;
	vm->cpus = 4;
	vm->expose_virt = true;
	vm->dynamic_memory = true;
	vm->memory_min = 1ULL << 30;
	vm->memory_max = 4ULL << 30;
	strcpy(vm->kernel, "/boot/vmlinuz with space");
	strcpy(vm->initrd, "/boot/initrd.img");
	strcpy(vm->cmdline, "console=ttyS0 a=b=c # not a comment");
	vm->ndisks = 2;
	strcpy(vm->disks[0].path, "disk0.img");
	vm->disks[0].size = 10ULL << 30;
	strcpy(vm->disks[1].path, "data.img");
	vm->disks[1].size = 1ULL << 20;
	vm->disks[1].fixed = true;
	vm->nnics = 1;
	strcpy(vm->nics[0].sw, "External-Switch");
	memcpy(vm->nics[0].mac, "\x52\x54\x00\x12\x34\x56", 6);
	vm->nics[0].mac_spoofing = true;
	vm->vsock_cid = 42;
}

static void test_config_round_trip(void)
{
	struct vmconfig a, b;
	char e[512];
	char *text;

	sample_vm(&a, "NestedHost");
	text = store_format(&a);
	CHECK(text);
	CHECK(strstr(text, "\nmemory = 2G\n"));
	CHECK(strstr(text, "\nvsock-cid = 42\n"));
	CHECK(strstr(text, "\n[network-adapter]\nswitch = External-Switch\nmac-address = 52:54:00:12:34:56\n"));
	if (store_parse(text, strlen(text), "vm.conf", &b, e, sizeof(e)) != 0)
		FAILF("parse of its own format: %s", e);
	free(text);
	CHECK(!memcmp(&a, &b, sizeof(a)));
}

/* A running machine's configuration (a saved state's, a migration's)
 * names its disks by path; a stored VM's only by name in its directory. */
static void test_machine_config_keeps_disk_paths(void)
{
	struct vmconfig a, b;
	char e[512];
	char *text;

	sample_vm(&a, "NestedHost");
	strcpy(a.disks[0].path, "/var/lib/nestvm/NestedHost/disk0.img");
	text = store_format(&a);
	CHECK(text);
	if (store_parse_machine(text, strlen(text), "saved state", &b, e, sizeof(e)) != 0)
		FAILF("a machine's configuration with a disk path: %s", e);
	CHECK(!memcmp(&a, &b, sizeof(a)));
	CHECK_EQ(store_parse(text, strlen(text), "vm.conf", &b, e, sizeof(e)), -EINVAL);
	CHECK(strstr(e, "a disk is a file name inside the VM's directory"));
	free(text);
}

static void expect_parse_error(const char *text, const char *want)
{
	struct vmconfig vm;
	char e[1024];

	if (store_parse(text, strlen(text), "/s/vm/vm.conf", &vm, e, sizeof(e)) != -EINVAL)
		FAILF("accepted: %s", text);
	if (!strstr(e, want))
		FAILF("error '%.600s' does not say '%s'", e, want);
}

#define BASE "name = v\nmemory = 1G\nprocessors = 1\nkernel = /k\n"

static void test_config_errors(void)
{
	expect_parse_error(BASE "memroy = 2G\n", "/s/vm/vm.conf:5: unknown key 'memroy'");
	expect_parse_error(BASE "memory = 2G\n", "/s/vm/vm.conf:5: 'memory' given twice");
	expect_parse_error("name = v\nmemory = lots\n", "vm.conf:2: memory 'lots': not a size");
	expect_parse_error("# c\n\nname = v\nprocessors = 0\n", "vm.conf:4: processors '0'");
	expect_parse_error(BASE "expose-virtualization-extensions = maybe\n", "vm.conf:5: expose-virtualization-extensions 'maybe': must be on or off");
	expect_parse_error(BASE "just words\n", "vm.conf:5: expected 'key = value'");
	expect_parse_error(BASE "[floppy]\n", "vm.conf:5: unknown section '[floppy]'");
	expect_parse_error(BASE "[disk]\npath = d.img\n[disk]\n", "vm.conf:6: [disk] lacks the key 'size'");
	expect_parse_error(BASE "[disk]\npath = ../etc/passwd\nsize = 1G\n", "vm.conf:6: path '../etc/passwd'");
	expect_parse_error(BASE "[network-adapter]\nswitch = s\nmac-address = 01:00:5e:00:00:01\n", "vm.conf:7: mac-address");
	expect_parse_error("name = v\nmemory = 1G\nprocessors = 1\n", "vm.conf:3: top of the file lacks the key 'kernel'");
	expect_parse_error(BASE "name\x01 = x\n", "vm.conf:5: a control character");
	expect_parse_error("name = v\nmemory = 1000\nprocessors = 1\nkernel = /k\n", "memory");
	expect_parse_error(BASE "memory-typo\n", ":5:");
	expect_parse_error(BASE "processors = 2\n", ":5: 'processors' given twice");
	expect_parse_error(BASE "cmdline = \n\nmemory =\n", ":7:");
	expect_parse_error(BASE "vsock-cid = 2\n", "vm.conf:5: vsock-cid '2': not a number from 3");
	expect_parse_error(BASE "vsock-cid = 4294967295\n", "vm.conf:5: vsock-cid");
}

/* autostart: set on and off by vm set at any state, written only when on,
 * and read back by the one parser. */
static void test_autostart_setting(void)
{
	struct vmconfig vm;
	char e[1200], path[400], *text;

	CHECK_EQ(VM("new", "auto", "--store", root, "--kernel", kernel), 0);
	snprintf(path, sizeof(path), "%s/auto/vm.conf", root);
	text = read_text(path);
	CHECK(text && !strstr(text, "autostart"));
	free(text);
	CHECK_EQ(VM("set", "auto", "--store", root, "--autostart", "on"), 0);
	CHECK_EQ(store_load(root, "auto", &vm, e, sizeof(e)), 0);
	CHECK(vm.autostart);
	text = read_text(path);
	CHECK(text && strstr(text, "\nautostart = on\n"));
	free(text);
	CHECK_EQ(VM("show", "auto", "--store", root), 0);
	CHECK(strstr(out, "AutomaticStartAction: Start"));
	CHECK_EQ(VM("show", "auto", "--store", root, "--json"), 0);
	CHECK(strstr(out, "\"autostart\": true"));
	expect_err(VM("set", "auto", "--store", root, "--autostart", "maybe"), 2, "--autostart");
	CHECK_EQ(VM("set", "auto", "--store", root, "--autostart", "off"), 0);
	CHECK_EQ(store_load(root, "auto", &vm, e, sizeof(e)), 0);
	CHECK(!vm.autostart);
	expect_parse_error(BASE "autostart = sometimes\n", "vm.conf:5: autostart 'sometimes': must be on or off");
	/* The sandbox's filters, off for debugging and on again. */
	CHECK_EQ(VM("set", "auto", "--store", root, "--no-seccomp", "on"), 0);
	CHECK_EQ(store_load(root, "auto", &vm, e, sizeof(e)), 0);
	CHECK(vm.no_seccomp);
	CHECK_EQ(VM("set", "auto", "--store", root, "--no-seccomp", "off"), 0);
	CHECK_EQ(store_load(root, "auto", &vm, e, sizeof(e)), 0);
	CHECK(!vm.no_seccomp);
	CHECK_EQ(VM("remove", "auto", "--store", root, "--yes"), 0);
}

/* A hand-edited file with an error is reported, never reset. */
static void test_hand_edited_error(void)
{
	char path[400], *before, *after;

	CHECK_EQ(VM("new", "edited", "--store", root, "--kernel", kernel), 0);
	snprintf(path, sizeof(path), "%s/edited/vm.conf", root);
	before = read_text(path);
	CHECK(before);
	write_file(path, "name = edited\nmemory = 1G\nprocessors = two\nkernel = /k\n");
	free(before);
	before = read_text(path);
	expect_err(VM("show", "edited", "--store", root), 1, "edited/vm.conf:3: processors 'two'");
	expect_err(VM("set", "edited", "--store", root, "--cpus", "2"), 1, "vm.conf:3:");
	expect_err(VM("list", "--store", root), 1, "vm.conf:3:");
	CHECK(strstr(out, "Invalid"));
	after = read_text(path);
	CHECK_STR(after, before);          /* untouched */
	free(before);
	free(after);
	CHECK_EQ(VM("remove", "edited", "--store", root, "--yes"), 0);
}

/* ---- store operations ---- */

static void test_create_duplicate_and_list(void)
{
	struct vmconfig vm;
	char **names, e[1200];
	size_t n;

	CHECK_EQ(VM("new", "dup", "--store", root, "--kernel", kernel, "--memory", "256M", "--cpus", "2"), 0);
	CHECK(strstr(out, "Created VM dup"));
	expect_err(VM("new", "dup", "--store", root, "--kernel", kernel), 2, "already exists");
	CHECK_EQ(store_load(root, "dup", &vm, e, sizeof(e)), 0);
	CHECK_EQ(vm.memory, 256ULL << 20);
	CHECK_EQ(vm.cpus, 2);
	CHECK(!strcmp(vm.kernel, kernel));
	CHECK_EQ(store_list(root, &names, &n), 0);
	CHECK(n >= 1);
	store_list_free(names, n);
	expect_err(VM("show", "nosuch", "--store", root), 2, "no VM named 'nosuch'");
	expect_err(VM("set", "nosuch", "--store", root, "--cpus", "2"), 2, "no VM named 'nosuch'");
	expect_err(VM("set", "dup", "--store", root, "--memory", "lots"), 2, "--memory 'lots': not a size");
	expect_err(VM("set", "dup", "--store", root, "--cpus", "999"), 2, "out of range");
	expect_err(VM("set", "dup", "--store", root, "--memory", "8K"), 2, "out of range");
	expect_err(VM("set", "dup", "--store", root), 2, "nothing to change");
	expect_err(VM("set", "dup", "--store", root, "--mac-spoofing", "on"), 2, "no network adapter 0");
	expect_err(VM("new", "k", "--store", root, "--kernel", "/no/such/kernel"), 2, "/no/such/kernel");
	expect_err(VM("new", "k", "--store", root, "--kernel", kernel, "--disk", "lots"), 2, "--disk 'lots'");
	expect_err(VM("new", "k", "--store", root, "--kernel", kernel, "--disk", "1G,thick"), 2, ",fixed");
	CHECK_EQ(VM("set", "dup", "--store", root, "--memory", "1G", "--dynamic-memory", "on",
		    "--memory-minimum", "512M", "--memory-maximum", "2G"), 0);
	expect_err(VM("set", "dup", "--store", root, "--memory-minimum", "4G"), 2, "above memory");
	CHECK_EQ(VM("show", "dup", "--store", root, "--json"), 0);
	CHECK(strstr(out, "\"memoryBytes\": 1073741824"));
	CHECK(strstr(out, "\"dynamicMemoryEnabled\": true"));
	CHECK(strstr(out, "\"state\": \"Off\""));
	CHECK_EQ(VM("remove", "dup", "--store", root), 2);       /* no terminal, no --yes */
	CHECK(strstr(err, "--yes"));
	CHECK_EQ(VM("remove", "dup", "--store", root, "--yes"), 0);
	CHECK_EQ(store_load(root, "dup", &vm, e, sizeof(e)), -ENOENT);
}

static void test_disks_and_nics(void)
{
	char path[400], mac[24];
	struct vmconfig vm;
	struct stat st;
	char e[1200];

	CHECK_EQ(VM("new", "disks", "--store", root, "--kernel", kernel, "--disk", "64M", "--disk=8M,fixed",
		    "--nic", "External", "--nic", "Internal"), 0);
	CHECK_EQ(store_load(root, "disks", &vm, e, sizeof(e)), 0);
	CHECK_EQ(vm.ndisks, 2);
	CHECK_EQ(vm.nnics, 2);
	snprintf(path, sizeof(path), "%s/disks/disk0.img", root);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_size, 64 << 20);
	CHECK(st.st_blocks * 512 < (1 << 20));          /* sparse */
	snprintf(path, sizeof(path), "%s/disks/disk1.img", root);
	CHECK_EQ(stat(path, &st), 0);
	CHECK(st.st_blocks * 512 >= (8 << 20));         /* preallocated */
	for (int i = 0; i < 2; i++) {
		CHECK((vm.nics[i].mac[0] & 3) == 2);    /* unicast, locally administered */
		CHECK(!vm.nics[i].mac_spoofing);
	}
	CHECK(memcmp(vm.nics[0].mac, vm.nics[1].mac, 6));
	CHECK_STR(vm.nics[1].sw, "Internal");
	CHECK_EQ(VM("set", "disks", "--store", root, "--nic", "1", "--mac", "52:54:00:aa:bb:cc", "--mac-spoofing", "on"), 0);
	CHECK_EQ(store_load(root, "disks", &vm, e, sizeof(e)), 0);
	CHECK_STR(vmconfig_fmt_mac(vm.nics[1].mac, mac, sizeof(mac)), "52:54:00:aa:bb:cc");
	CHECK(vm.nics[1].mac_spoofing && !vm.nics[0].mac_spoofing);
	expect_err(VM("set", "disks", "--store", root, "--mac", "ff:ff:ff:ff:ff:ff"), 2, "not a unicast MAC");
	CHECK_EQ(VM("remove", "disks", "--store", root, "--yes"), 0);
	CHECK(stat(path, &st) < 0);
}

static ssize_t failing_write(int fd, const void *buf, size_t len)
{
	(void)fd; (void)buf; (void)len;
	errno = ENOSPC;
	return -1;
}

static ssize_t short_then_fail(int fd, const void *buf, size_t len)
{
	static int calls;

	if (calls++ % 2 == 0)
		return write(fd, buf, len / 2);
	errno = EIO;
	return -1;
}

static int failing_fsync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

static void test_atomic_write_failure(void)
{
	static const struct store_io io_write = { failing_write, fsync }, io_short = { short_then_fail, fsync },
				     io_fsync = { write, failing_fsync };
	static const struct store_io *const bad[] = { &io_write, &io_short, &io_fsync };
	const struct store_io *saved = store_io;
	struct vmconfig vm;
	char path[400], e[1200], *before, *after;
	int r;

	CHECK_EQ(VM("new", "atomic", "--store", root, "--kernel", kernel, "--memory", "256M"), 0);
	snprintf(path, sizeof(path), "%s/atomic/vm.conf", root);
	before = read_text(path);
	CHECK(before);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK_EQ(store_load(root, "atomic", &vm, e, sizeof(e)), 0);
		vm.memory = 4ULL << 30;
		store_io = bad[i];
		r = store_save(root, &vm, e, sizeof(e));
		store_io = saved;
		CHECK(r < 0);
		CHECK(strstr(e, "previous configuration is unchanged"));
		after = read_text(path);
		CHECK_STR(after, before);
		free(after);
		CHECK_EQ(store_load(root, "atomic", &vm, e, sizeof(e)), 0);
		CHECK_EQ(vm.memory, 256ULL << 20);
	}
	/* And no temporary file stays behind. */
	snprintf(path, sizeof(path), "%s/atomic/.vm.conf.tmp", root);
	CHECK(access(path, F_OK) < 0);
	free(before);
}

static void test_lock_contention(void)
{
	int p[2], fd, status;
	char c;
	pid_t pid;

	CHECK_EQ(VM("new", "locked", "--store", root, "--kernel", kernel), 0);
	CHECK(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		int l = store_lock(root, "locked", 0);
		if (write(p[1], l >= 0 ? "y" : "n", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	CHECK(read(p[0], &c, 1) == 1 && c == 'y');
	CHECK_EQ(store_lock(root, "locked", 100), -EBUSY);
	setenv("NESTVM_LOCK_WAIT_MS", "200", 1);
	expect_err(VM("set", "locked", "--store", root, "--cpus", "2"), 1, "holds its lock");
	expect_err(VM("remove", "locked", "--store", root, "--yes"), 1, "holds its lock");
	unsetenv("NESTVM_LOCK_WAIT_MS");
	/* A killed holder's lock goes with it: the kernel releases flocks. */
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fd = store_lock(root, "locked", 0);
	CHECK(fd >= 0);
	store_unlock(fd);
	CHECK_EQ(VM("set", "locked", "--store", root, "--cpus", "2"), 0);
	CHECK_EQ(store_lock(root, "no-such-vm", 0), -ENOENT);
	close(p[0]);
	close(p[1]);
}

/* Kill the CLI at every named step of create and set, and at random
 * moments: every VM of the store still loads, and each is either the old
 * or the new version, never a mix. */
static void check_all_load(const char *when)
{
	char **names, e[1200];
	struct vmconfig vm;
	size_t n;

	CHECK_EQ(store_list(root, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (store_load(root, names[i], &vm, e, sizeof(e)) != 0) {
			store_list_free(names, n);
			FAILF("after %s: %.600s", when, e);
		}
	store_list_free(names, n);
}

static void test_kill_anywhere(void)
{
	static const char *const steps[] = { "create-dir", "create-disk", "save-written", "save-renamed",
					     "create-config", "create-renamed", "set-loaded" };
	struct vmconfig vm;
	char e[1200];

	CHECK_EQ(VM("new", "victim", "--store", root, "--kernel", kernel, "--memory", "256M"), 0);
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		int r;

		setenv("NESTVM_TEST_CRASH_AT", steps[i], 1);
		r = VM("new", "crashnew", "--store", root, "--kernel", kernel, "--disk", "4M");
		unsetenv("NESTVM_TEST_CRASH_AT");
		CHECK(r == 99 || (r == 0 && !strcmp(steps[i], "set-loaded")));
		check_all_load(steps[i]);
		/* Created whole or not at all. */
		r = store_load(root, "crashnew", &vm, e, sizeof(e));
		CHECK(r == 0 || r == -ENOENT);
		if (r == 0)
			CHECK_EQ(vm.ndisks, 1);
		if (r == 0)
			CHECK_EQ(VM("remove", "crashnew", "--store", root, "--yes"), 0);

		setenv("NESTVM_TEST_CRASH_AT", steps[i], 1);
		r = VM("set", "victim", "--store", root, "--memory", i % 2 ? "256M" : "512M");
		unsetenv("NESTVM_TEST_CRASH_AT");
		check_all_load(steps[i]);
		CHECK_EQ(store_load(root, "victim", &vm, e, sizeof(e)), 0);
		CHECK(vm.memory == 256ULL << 20 || vm.memory == 512ULL << 20);
	}
	/* SIGKILL at random moments of create and set. */
	srand(12345);
	for (int i = 0; i < 40; i++) {
		pid_t pid;
		int status;

		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			int dn = open("/dev/null", O_WRONLY);
			char name[32];

			dup2(dn, 1);
			dup2(dn, 2);
			snprintf(name, sizeof(name), "rnd%d", i % 4);
			if (i % 2)
				_exit(VM("set", "victim", "--store", root, "--cpus", i % 4 ? "2" : "3") == 0 ? 0 : 1);
			_exit(VM("new", name, "--store", root, "--kernel", kernel, "--disk=2M,fixed") == 0 ? 0 : 1);
		}
		nanosleep(&(struct timespec){ 0, (rand() % 3000) * 1000 }, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		check_all_load("a random SIGKILL");
	}
}

/* ---- derived state, with a fake VMM ---- */

static void fake_handler(void *opaque, const struct api_request *req, struct json *j)
{
	(void)opaque;
	json_kv_bool(j, "ok", true);
	json_kv_string(j, "state", req->cmd == API_PAUSE ? "Paused" : "Running");
	json_kv_int(j, "pid", 4242);
	json_kv_uint(j, "memoryAssignedBytes", 768ULL << 20);
}

static void test_state_from_vmm(void)
{
	struct api_server *srv;
	struct vmm_state st;
	char path[400];
	int fd;

	CHECK_EQ(VM("new", "runner", "--store", root, "--kernel", kernel, "--nic", "sw"), 0);
	vmm_state(root, "runner", &st);
	CHECK_STR(st.state, "Off");
	CHECK(st.last_exit[0] == 0);

	/* Alive: the run lock held; Starting until the API answers. */
	snprintf(path, sizeof(path), "%s/runner/%s", root, STORE_RUN_LOCK);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
	vmm_state(root, "runner", &st);
	CHECK_STR(st.state, "Starting");
	snprintf(path, sizeof(path), "%s/runner/%s", root, STORE_API_SOCK);
	CHECK_EQ(api_server_start(&srv, path, fake_handler, NULL), 0);
	vmm_state(root, "runner", &st);
	CHECK_STR(st.state, "Running");
	CHECK_EQ(st.pid, 4242);
	CHECK_EQ(st.memory_assigned, 768ULL << 20);     /* what vm show prints as MemoryAssigned */
	expect_err(VM("set", "runner", "--store", root, "--cpus", "2"), 1,
		   "--cpus needs VM runner to be Off; it is Running");
	expect_err(VM("set", "runner", "--store", root, "--expose-virtualization-extensions", "on"), 1,
		   "--expose-virtualization-extensions needs VM runner to be Off");
	expect_err(VM("set", "runner", "--store", root, "--dynamic-memory", "on"), 1, "it is Running");
	expect_err(VM("remove", "runner", "--store", root, "--yes"), 1, "is Running");
	expect_err(VM("start", "runner", "--store", root), 1, "already Running");
	CHECK_EQ(VM("set", "runner", "--store", root, "--mac-spoofing", "on"), 0);   /* allowed running */
	CHECK_EQ(VM("list", "--store", root), 0);
	CHECK(strstr(out, "runner") && strstr(out, "Running"));
	CHECK_EQ(VM("show", "runner", "--store", root), 0);
	CHECK(strstr(out, "MemoryAssigned: 768M\n"));
	CHECK_EQ(VM("show", "runner", "--store", root, "--json"), 0);
	CHECK(strstr(out, "\"memoryAssignedBytes\": 805306368"));
	api_server_stop(srv);
	close(fd);

	/* Dead without an exit record: Off, with the reason. */
	snprintf(path, sizeof(path), "%s/runner/%s", root, STORE_PID);
	write_file(path, "31337\n");
	vmm_state(root, "runner", &st);
	CHECK_STR(st.state, "Off");
	CHECK(strstr(st.last_exit, "pid 31337") && strstr(st.last_exit, "killed or crashed"));
	snprintf(path, sizeof(path), "%s/runner/%s", root, STORE_EXIT);
	write_file(path, "reason = fault\ndetail = triple fault\ntime = 0\npid = 1\n");
	CHECK_EQ(VM("show", "runner", "--store", root), 0);
	CHECK(strstr(out, "State: Off\n"));
	CHECK(strstr(out, "LastExit: fault: triple fault"));
	expect_err(VM("console", "runner", "--store", root), 1, "is Off; last exit: fault");
	expect_err(VM("pause", "runner", "--store", root), 1, "runner is Off");
	CHECK_EQ(VM("stop", "runner", "--store", root), 0);
	CHECK(strstr(out, "already Off"));
}

/* ---- the nested assistant ---- */

static void test_nested_refuses_without_terminal(void)
{
	struct vmconfig vm;
	char e[1200];

	CHECK_EQ(VM("new", "nh1", "--store", root, "--kernel", kernel, "--memory", "256M", "--nic", "sw"), 0);
	expect_err(NESTED_IN("y\ny\ny\n", "enable", "nh1", "--store", root), 2, "not asking without a terminal");
	CHECK_EQ(store_load(root, "nh1", &vm, e, sizeof(e)), 0);
	CHECK(!vm.expose_virt);
	expect_err(NESTED_IN(NULL, "enable", "nosuch", "--store", root), 2, "no VM named 'nosuch'");
	expect_err(NESTED_IN(NULL, "disable", "nh1", "--store", root), 2, "only 'enable'");
	expect_err(NESTED_IN(NULL, "enable", "--store", root), 2, "which VM?");
}

static void test_nested_yes(void)
{
	struct vmconfig vm;
	char e[1200];

	CHECK_EQ(VM("new", "nh2", "--store", root, "--kernel", kernel, "--memory", "256M", "--nic", "sw"), 0);
	CHECK_EQ(VM("set", "nh2", "--store", root, "--dynamic-memory", "on"), 0);
	CHECK_EQ(NESTED_IN(NULL, "enable", "nh2", "--store", root, "--yes"), 0);
	CHECK(strstr(out, "1. Expose the virtualization extensions"));
	CHECK(strstr(out, "2. Turn dynamic memory off"));
	CHECK(strstr(out, "3. Raise its memory from 256M to 512M"));
	CHECK(strstr(out, "4. Turn on MAC address spoofing"));
	CHECK(strstr(out, "Save, checkpoints and live migration work while nh2 runs VMs"));
	CHECK_EQ(store_load(root, "nh2", &vm, e, sizeof(e)), 0);
	CHECK(vm.expose_virt && !vm.dynamic_memory && vm.memory == 512ULL << 20 && vm.nics[0].mac_spoofing);
	/* Again: nothing to do, nothing changed, no question. */
	CHECK_EQ(NESTED_IN(NULL, "enable", "nh2", "--store", root), 0);
	CHECK(strstr(out, "already set up for nesting: nothing to change"));
}

/* Runs the assistant on a pty, answering each question from answers[]. */
static int nested_pty(const char *name, const char *const *answers, char *buf, size_t cap)
{
	size_t len = 0;
	int master, status, k = 0;
	pid_t pid;

	fflush(stdout);
	pid = forkpty(&master, NULL, NULL, NULL);
	if (pid == 0) {
		int dn = open("/dev/null", O_WRONLY);
		dup2(dn, 2);
		char *argv[] = { (char *)"enable", (char *)name, (char *)"--store", root, NULL };
		int st = cmd_nested(4, argv);
		fflush(stdout);
		_exit(st);
	}
	for (;;) {
		ssize_t n = read(master, buf + len, cap - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		/* Answer each prompt once it shows. */
		int prompts = 0;
		for (char *p = buf; (p = strstr(p, "[Y/N] ")); p++)
			prompts++;
		while (k < prompts && answers[k]) {
			if (write(master, answers[k], strlen(answers[k])) < 0)
				break;
			k++;
		}
	}
	close(master);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_nested_answers_on_terminal(void)
{
	static const char *const answers[] = { "maybe\n", "Y\n", "n\n", "yes\n", NULL };
	static char buf[65536];
	struct vmconfig vm;
	char e[1200];
	int r;

	CHECK_EQ(VM("new", "nh3", "--store", root, "--kernel", kernel, "--memory", "256M", "--nic", "sw"), 0);
	r = nested_pty("nh3", answers, buf, sizeof(buf));
	/* "maybe" is asked again; Y exposes; n keeps 256M; yes spoofs. */
	if (r != 1)
		FAILF("status %d, want 1 (one change declined); output:\n%.800s", r, buf);
	CHECK(strstr(buf, "Please answer Y or N."));
	if (!strstr(buf, "declined"))
		FAILF("no \"declined\" in:\n%.900s", buf);
	CHECK_EQ(store_load(root, "nh3", &vm, e, sizeof(e)), 0);
	CHECK(vm.expose_virt);
	CHECK_EQ(vm.memory, 256ULL << 20);
	CHECK(vm.nics[0].mac_spoofing);

	/* Ending the input mid-way changes nothing. */
	CHECK_EQ(VM("set", "nh3", "--store", root, "--expose-virtualization-extensions", "off"), 0);
	r = nested_pty("nh3", (const char *const[]){ "y\n", "\x04", NULL }, buf, sizeof(buf));
	CHECK_EQ(r, 1);
	CHECK(strstr(buf, "nothing changed"));
	CHECK_EQ(store_load(root, "nh3", &vm, e, sizeof(e)), 0);
	CHECK(!vm.expose_virt);
}

/* A store that cannot be created is a clear error, status 1. */
static void test_store_not_writable(void)
{
	char file[400], sub[420];

	snprintf(file, sizeof(file), "%s/plainfile", tmpdir);
	write_file(file, "x");
	snprintf(sub, sizeof(sub), "%s/store", file);
	expect_err(VM("new", "x", "--store", sub, "--kernel", kernel), 1, "cannot create it");
	CHECK_EQ(VM("list", "--store", sub), 1);
	/* A missing store is an empty one. */
	snprintf(sub, sizeof(sub), "%s/missing", tmpdir);
	CHECK_EQ(VM("list", "--store", sub), 0);
	CHECK(!strstr(out, "\n") || !strchr(strchr(out, '\n') + 1, '\n'));
}

/* ---- other local users and hostile files ---- */

static mode_t mode_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		FAILF("%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

/* The store's files and directories are their owner's alone, even when the
 * command runs with umask 000. */
static void test_owner_only_modes(void)
{
	char store[400], path[500];
	mode_t old = umask(0);

	snprintf(store, sizeof(store), "%s/umask0/store", tmpdir);
	if (VM("new", "private", "--store", store, "--kernel", kernel, "--disk", "1M") != 0) {
		umask(old);
		FAILF("vm new: %.400s", err);
	}
	if (VM("set", "private", "--store", store, "--cpus", "2") != 0) {
		umask(old);
		FAILF("vm set: %.400s", err);
	}
	umask(old);
	CHECK_EQ(mode_of(store) & 077, 0);
	snprintf(path, sizeof(path), "%s/private", store);
	CHECK_EQ(mode_of(path) & 077, 0);
	snprintf(path, sizeof(path), "%s/private/%s", store, STORE_CONF);
	CHECK_EQ(mode_of(path), 0600);
	snprintf(path, sizeof(path), "%s/private/%s", store, STORE_LOCK);
	CHECK_EQ(mode_of(path), 0600);
	snprintf(path, sizeof(path), "%s/private/disk0.img", store);
	CHECK_EQ(mode_of(path), 0600);
	/* The VMM's records go through the same writer. */
	snprintf(path, sizeof(path), "%s/private", store);
	CHECK_EQ(store_write_atomic(path, STORE_PID, "4242\n", 5), 0);
	snprintf(path, sizeof(path), "%s/private/%s", store, STORE_PID);
	CHECK_EQ(mode_of(path), 0600);
	/* A store whose first use is a switch: the same. Its interface does
	 * not exist, so the switch is not kept; the store is. */
	snprintf(path, sizeof(path), "%s/umask0/switch-first", tmpdir);
	umask(0);
	CHECK_EQ(cli(NULL, cmd_switch, (const char *const[]){ "new", "sw", "--store", path, "--uplink-if",
							      "nestvm-none0", NULL }), 1);
	umask(old);
	CHECK_EQ(mode_of(path) & 077, 0);

	/* A VM made before (0755, a 0644 lock) is tightened by the next
	 * command that locks it. */
	snprintf(path, sizeof(path), "%s/private", store);
	CHECK_EQ(chmod(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/private/%s", store, STORE_LOCK);
	CHECK_EQ(chmod(path, 0644), 0);
	CHECK_EQ(VM("set", "private", "--store", store, "--cpus", "1"), 0);
	CHECK_EQ(mode_of(path), 0600);
	snprintf(path, sizeof(path), "%s/private", store);
	CHECK_EQ(mode_of(path) & 077, 0);
}

/* Runs sh -c cmd as uid and gid 65534 with no groups; its status, stderr
 * in err. */
static int as_nobody(const char *cmd)
{
	char line[2000], errfile[400];
	int st, fd;

	snprintf(errfile, sizeof(errfile), "%s/nobody.err", tmpdir);
	snprintf(line, sizeof(line), "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '%s' >/dev/null 2>'%s'",
		 cmd, errfile);
	st = system(line);
	fd = open(errfile, O_RDONLY);
	err[0] = 0;
	if (fd >= 0) {
		ssize_t n = read(fd, err, sizeof(err) - 1);

		err[n > 0 ? n : 0] = 0;
		close(fd);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Another local user (uid 65534) can neither read a VM's console log, list
 * its directory, nor open its lock to block it. */
static void test_second_user_kept_out(void)
{
	char base[400], store[420], cmd[1200], path[500];
	mode_t old;
	int fd;

	if (geteuid() != 0)
		SKIP("needs root to act as a second user (setpriv); run as root to check it");
	if (system("command -v setpriv >/dev/null 2>&1") != 0)
		SKIP("setpriv (util-linux) is not installed: cannot act as a second user");
	/* The scratch directory must let the other user reach the store. */
	snprintf(base, sizeof(base), "%s/shared", tmpdir);
	CHECK_EQ(mkdir(base, 0755), 0);
	CHECK_EQ(chmod(base, 0755), 0);
	CHECK_EQ(chmod(tmpdir, 0711), 0);
	CHECK_EQ(as_nobody("true"), 0);
	snprintf(store, sizeof(store), "%s/store", base);
	old = umask(0);
	fd = VM("new", "secret", "--store", store, "--kernel", kernel);
	if (fd == 0)
		fd = VM("set", "secret", "--store", store, "--cpus", "2");
	/* What a VMM leaves: its console log, here world-readable itself (as
	 * older VMMs made it), so that the directory alone must keep it. */
	snprintf(path, sizeof(path), "%s/secret/%s", store, STORE_CONSOLE_LOG);
	if (fd == 0) {
		int log = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);

		fd = log >= 0 && write(log, "root password: hunter2\n", 23) == 23 ? 0 : -1;
		if (log >= 0)
			close(log);
	}
	umask(old);
	if (fd != 0) {
		chmod(tmpdir, 0700);
		FAILF("making the VM: %.400s", err);
	}
	snprintf(cmd, sizeof(cmd), "cat %s", path);
	fd = as_nobody(cmd);
	if (fd == 0 || !strstr(err, "Permission denied")) {
		chmod(tmpdir, 0700);
		FAILF("another user read the console log (status %d, %.200s)", fd, err);
	}
	snprintf(cmd, sizeof(cmd), "ls %s/secret", store);
	fd = as_nobody(cmd);
	if (fd == 0 || !strstr(err, "Permission denied")) {
		chmod(tmpdir, 0700);
		FAILF("another user listed the VM's directory (status %d, %.200s)", fd, err);
	}
	snprintf(cmd, sizeof(cmd), ": < %s/secret/%s", store, STORE_LOCK);
	fd = as_nobody(cmd);
	if (fd == 0 || !strstr(err, "Permission denied")) {
		chmod(tmpdir, 0700);
		FAILF("another user opened the VM's lock (status %d, %.200s)", fd, err);
	}
	snprintf(cmd, sizeof(cmd), "ls %s", store);
	fd = as_nobody(cmd);
	chmod(tmpdir, 0700);
	if (fd == 0 || !strstr(err, "Permission denied"))
		FAILF("another user listed the store's VMs (status %d, %.200s)", fd, err);
}

/* A store, or a VM directory in it, that is a link or another user's is
 * refused with a message saying so; vm remove never follows a link. */
static void test_links_refused(void)
{
	char real[400], link[400], victim[400], path[600], conf[600];
	struct vmconfig vm;
	char e[1200];
	struct stat st;

	snprintf(real, sizeof(real), "%s/linked/real", tmpdir);
	snprintf(link, sizeof(link), "%s/linked/link", tmpdir);
	CHECK_EQ(VM("new", "a", "--store", real, "--kernel", kernel), 0);
	CHECK_EQ(symlink(real, link), 0);
	expect_err(VM("list", "--store", link), 1, "a symbolic link");
	expect_err(VM("show", "a", "--store", link), 1, "a symbolic link");
	expect_err(VM("new", "b", "--store", link, "--kernel", kernel), 1, "a symbolic link");

	/* A VM directory that is a link to someone's directory, dressed as a
	 * VM: neither loaded nor removed, and its target untouched. */
	snprintf(victim, sizeof(victim), "%s/linked/victim", tmpdir);
	CHECK_EQ(mkdir(victim, 0700), 0);
	snprintf(path, sizeof(path), "%s/precious", victim);
	write_file(path, "keep me\n");
	{
		char *text;

		vmconfig_init(&vm, "evil");
		snprintf(vm.kernel, sizeof(vm.kernel), "%s", kernel);
		text = store_format(&vm);
		CHECK(text);
		snprintf(path, sizeof(path), "%s/%s", victim, STORE_CONF);
		write_file(path, text);
		free(text);
	}
	snprintf(path, sizeof(path), "%s/evil", real);
	CHECK_EQ(symlink(victim, path), 0);
	CHECK_EQ(store_load(real, "evil", &vm, e, sizeof(e)), -ELOOP);
	CHECK(strstr(e, "symbolic link"));
	expect_err(VM("remove", "evil", "--store", real, "--yes"), 1, "symbolic link");
	CHECK_EQ(store_remove(real, "evil", e, sizeof(e)), -ELOOP);
	snprintf(path, sizeof(path), "%s/precious", victim);
	CHECK_EQ(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/%s", victim, STORE_CONF);
	CHECK_EQ(stat(path, &st), 0);

	/* Links inside a VM's directory are removed as links. */
	snprintf(path, sizeof(path), "%s/a/evil", real);
	CHECK_EQ(symlink(victim, path), 0);
	snprintf(path, sizeof(path), "%s/a/sub", real);
	CHECK_EQ(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/a/sub/evil", real);
	CHECK_EQ(symlink(victim, path), 0);
	CHECK_EQ(VM("remove", "a", "--store", real, "--yes"), 0);
	snprintf(path, sizeof(path), "%s/a", real);
	CHECK(lstat(path, &st) < 0 && errno == ENOENT);
	snprintf(path, sizeof(path), "%s/precious", victim);
	CHECK_EQ(stat(path, &st), 0);

	/* The files of a VM are never opened through a link either. */
	CHECK_EQ(VM("new", "c", "--store", real, "--kernel", kernel), 0);
	snprintf(conf, sizeof(conf), "%s/c/%s", real, STORE_CONF);
	snprintf(path, sizeof(path), "%s/c/real.conf", real);
	CHECK_EQ(rename(conf, path), 0);
	CHECK_EQ(symlink("real.conf", conf), 0);
	expect_err(VM("show", "c", "--store", real), 1, "symbolic link");
}

static void test_foreign_owner_refused(void)
{
	char store[400], path[500];
	struct vmconfig vm;
	char e[1200];
	struct stat st;

	if (geteuid() != 0)
		SKIP("needs root to give a directory to another user (chown); run as root to check it");
	snprintf(store, sizeof(store), "%s/foreign", tmpdir);
	CHECK_EQ(VM("new", "mine", "--store", store, "--kernel", kernel), 0);
	CHECK_EQ(VM("new", "theirs", "--store", store, "--kernel", kernel), 0);
	snprintf(path, sizeof(path), "%s/theirs", store);
	CHECK_EQ(chown(path, 65534, 65534), 0);
	CHECK_EQ(store_load(store, "theirs", &vm, e, sizeof(e)), -EPERM);
	CHECK(strstr(e, "owned by uid 65534"));
	expect_err(VM("show", "theirs", "--store", store), 1, "owned by uid 65534");
	expect_err(VM("set", "theirs", "--store", store, "--cpus", "2"), 1, "owned by uid 65534");
	expect_err(VM("remove", "theirs", "--store", store, "--yes"), 1, "owned by uid 65534");
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(store_load(store, "mine", &vm, e, sizeof(e)), 0);
	/* The whole store another user's. */
	CHECK_EQ(chown(store, 65534, 65534), 0);
	expect_err(VM("list", "--store", store), 1, "owned by uid 65534");
	expect_err(VM("show", "mine", "--store", store), 1, "owned by uid 65534");
	expect_err(VM("new", "more", "--store", store, "--kernel", kernel), 1, "owned by uid 65534");
	CHECK_EQ(chown(store, 0, 0), 0);
}

/* Bytes this process has read, as the kernel counts them; -1 if unknown. */
static long long bytes_read(void)
{
	char text[1024];
	long long n = -1;
	int fd = open("/proc/self/io", O_RDONLY);
	ssize_t len;
	char *p;

	if (fd < 0)
		return -1;
	len = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	text[len] = 0;
	p = strstr(text, "rchar: ");
	if (p)
		n = atoll(p + 7);
	return n;
}

/* A 1 GiB sparse vm.conf is refused by its size, not read. */
static void test_huge_conf_not_read(void)
{
	char path[400], e[1200];
	struct vmconfig vm;
	long long before, after;
	uint64_t t0;
	int fd;

	CHECK_EQ(VM("new", "huge", "--store", root, "--kernel", kernel), 0);
	snprintf(path, sizeof(path), "%s/huge/%s", root, STORE_CONF);
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 1LL << 30), 0);
	close(fd);
	before = bytes_read();
	t0 = util_now_ns();
	CHECK_EQ(store_load(root, "huge", &vm, e, sizeof(e)), -EINVAL);
	after = bytes_read();
	CHECK(strstr(e, "larger than 64 KiB"));
	CHECK(util_now_ns() - t0 < 1000000000ULL);
	if (before >= 0 && after >= 0 && after - before > (1 << 20))
		FAILF("read %lld bytes of a vm.conf it should have refused by its size", after - before);
	expect_err(VM("show", "huge", "--store", root), 1, "larger than 64 KiB");
	CHECK_EQ(VM("remove", "huge", "--store", root, "--yes"), 0);
}

/* A FIFO for vm.conf or a record is refused at once, not waited on. */
static void test_fifo_refused(void)
{
	char path[400];
	pid_t pid;
	int st;

	CHECK_EQ(VM("new", "fifo", "--store", root, "--kernel", kernel), 0);
	snprintf(path, sizeof(path), "%s/fifo/%s", root, STORE_CONF);
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(mkfifo(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/fifo/%s", root, STORE_PID);
	CHECK_EQ(mkfifo(path, 0600), 0);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct vmconfig vm;
		struct vmm_state vs;
		char e[1200];
		int r;

		alarm(10);      /* a hang fails the test rather than stalling it */
		r = store_load(root, "fifo", &vm, e, sizeof(e));
		if (r != -EINVAL || !strstr(e, "not a regular file"))
			_exit(2);
		vmm_state(root, "fifo", &vs);
		if (strcmp(vs.state, "Off") || vs.pid)
			_exit(3);
		if (VM("show", "fifo", "--store", root) != 1 || !strstr(err, "not a regular file"))
			_exit(4);
		_exit(0);
	}
	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st))
		FAILF("reading a FIFO hung (killed by signal %d)", WTERMSIG(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
	CHECK_EQ(VM("remove", "fifo", "--store", root, "--yes"), 0);
}

/* Pid files: exactly a pid and a newline; anything else gives no pid, and
 * one without its newline is read within its bounds. */
static void test_pid_files(void)
{
	static const struct { const char *text; int pid; } cases[] = {
		{ "4242\n", 4242 }, { "4242", 4242 }, { "", 0 }, { "\n", 0 }, { "1\n", 0 }, { "0\n", 0 },
		{ "-5\n", 0 }, { "12ab\n", 0 }, { "42\n\n", 0 }, { " 42\n", 0 }, { "99999999999\n", 0 },
		{ "2147483647\n", 2147483647 }, { "2147483648\n", 0 },
	};
	char path[400];
	struct vmm_state st;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int pid = -1, r = store_parse_pid(cases[i].text, strlen(cases[i].text), &pid);

		if (cases[i].pid ? r != 0 || pid != cases[i].pid : r != -EINVAL || pid != 0)
			FAILF("pid file '%s': %d, pid %d", cases[i].text, r, pid);
	}
	CHECK_EQ(VM("new", "pids", "--store", root, "--kernel", kernel), 0);
	snprintf(path, sizeof(path), "%s/pids/%s", root, STORE_PID);
	/* No newline, no NUL: the reader must stop at its end (ASan sees). */
	write_file(path, "4242");
	vmm_state(root, "pids", &st);
	CHECK_STR(st.state, "Off");
	CHECK(strstr(st.last_exit, "pid 4242"));
	write_file(path, "12ab\n");
	vmm_state(root, "pids", &st);
	CHECK(st.last_exit[0] == 0);
	write_file(path, "1\n");
	vmm_state(root, "pids", &st);
	CHECK(st.last_exit[0] == 0);
	{
		int fd = open(path, O_WRONLY | O_TRUNC);

		CHECK(fd >= 0);
		CHECK_EQ(ftruncate(fd, 1 << 20), 0);
		close(fd);
	}
	vmm_state(root, "pids", &st);
	CHECK(st.last_exit[0] == 0);
	CHECK_EQ(VM("remove", "pids", "--store", root, "--yes"), 0);
}

/* Nothing the command line accepts makes a vm.conf that does not load:
 * control characters, newlines and spaces at either end are refused. */
static void test_cli_values_round_trip(void)
{
	char odd[400], e[1200];
	struct vmconfig vm;

	expect_err(VM("new", "v1", "--store", root, "--kernel", kernel, "--cmdline", "console=ttyS0\x01"), 2,
		   "control character");
	expect_err(VM("new", "v1", "--store", root, "--kernel", kernel, "--cmdline", "console=ttyS0 "), 2,
		   "space at its start or end");
	expect_err(VM("new", "v1", "--store", root, "--kernel", kernel, "--cmdline", "a\nkernel = /x"), 2,
		   "one line");
	/* A kernel whose file name holds a newline and a forged key. */
	snprintf(odd, sizeof(odd), "%s/k\nname = x", tmpdir);
	write_file(odd, "not a kernel");
	expect_err(VM("new", "v1", "--store", root, "--kernel", odd), 2, "control character");
	snprintf(odd, sizeof(odd), "%s/k ", tmpdir);
	write_file(odd, "not a kernel");
	expect_err(VM("new", "v1", "--store", root, "--kernel", odd), 2, "space at its start or end");
	CHECK_EQ(store_load(root, "v1", &vm, e, sizeof(e)), -ENOENT);

	CHECK_EQ(VM("new", "v2", "--store", root, "--kernel", kernel, "--cmdline", "console=ttyS0 quiet"), 0);
	expect_err(VM("set", "v2", "--store", root, "--cmdline", "a\tb"), 2, "control character");
	expect_err(VM("set", "v2", "--store", root, "--cmdline", " a"), 2, "space at its start or end");
	expect_err(VM("set", "v2", "--store", root, "--kernel", odd), 2, "space at its start or end");
	CHECK_EQ(store_load(root, "v2", &vm, e, sizeof(e)), 0);
	CHECK(!strcmp(vm.cmdline, "console=ttyS0 quiet"));
	/* Switch names are names of the store, never paths. */
	expect_err(VM("set", "v2", "--store", root, "--add-nic", "../x"), 2, "switch name");
	expect_err(VM("new", "v3", "--store", root, "--kernel", kernel, "--nic", "../../etc"), 2, "switch name");
	check_all_load("refused values");
	/* Nor in a vm.conf written by hand. */
	expect_parse_error(BASE "[network-adapter]\nswitch = ../x\nmac-address = 52:54:00:12:34:56\n",
			   "switch name: a switch name must not start with '.'");
	expect_parse_error(BASE "[network-adapter]\nswitch = a/b\nmac-address = 52:54:00:12:34:56\n",
			   "switch name: a switch name must not contain '/'");
	CHECK_EQ(VM("remove", "v2", "--store", root, "--yes"), 0);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nestvm-test-store-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(root, sizeof(root), "%s/store", tmpdir);
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", tmpdir);
	{
		FILE *f = fopen(kernel, "w");
		fputs("not really a kernel", f);
		fclose(f);
	}
	unsetenv("NESTVM_STORE");
	RUN(test_names);
	RUN(test_config_round_trip);
	RUN(test_machine_config_keeps_disk_paths);
	RUN(test_config_errors);
	RUN(test_hand_edited_error);
	RUN(test_create_duplicate_and_list);
	RUN(test_autostart_setting);
	RUN(test_disks_and_nics);
	RUN(test_atomic_write_failure);
	RUN(test_lock_contention);
	RUN(test_kill_anywhere);
	RUN(test_state_from_vmm);
	RUN(test_nested_refuses_without_terminal);
	RUN(test_nested_yes);
	RUN(test_nested_answers_on_terminal);
	RUN(test_store_not_writable);
	RUN(test_owner_only_modes);
	RUN(test_second_user_kept_out);
	RUN(test_links_refused);
	RUN(test_foreign_owner_refused);
	RUN(test_huge_conf_not_read);
	RUN(test_fifo_refused);
	RUN(test_pid_files);
	RUN(test_cli_values_round_trip);
	harness_remove_tree(tmpdir);
	return HARNESS_END();
}

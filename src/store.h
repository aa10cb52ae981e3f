/* The VM store: one directory per named VM under a store root, holding its
 * configuration (vm.conf, "key = value" lines, see store_format()), its disks
 * and the running VMM's socket, log and records. Writes are atomic and each
 * VM has a lock, so a killed command never leaves a VM half-written. */
#ifndef NESTVM_STORE_H
#define NESTVM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define STORE_NAME_MAX   64
#define STORE_PATH_MAX   1024
#define STORE_CMDLINE_MAX 2048
#define STORE_SWITCH_MAX 64
#define STORE_MAX_DISKS  8
#define STORE_MAX_NICS   8
#define STORE_CONF_MAX   (64 << 10)     /* a longer vm.conf is refused */
#define STORE_CONF       "vm.conf"

/* Files in a VM's directory. */
#define STORE_LOCK       "lock"         /* held by a command changing the VM */
#define STORE_RUN_LOCK   "run.lock"     /* held by the VM's running VMM */
#define STORE_API_SOCK   "api.sock"
#define STORE_CONSOLE_SOCK "console.sock"
#define STORE_CONSOLE_LOG "console.log"
#define STORE_PID        "vmm.pid"
#define STORE_EXIT       "vmm.exit"     /* why the last VMM ended */

struct store_disk {
	char path[STORE_PATH_MAX];      /* relative: inside the VM's directory */
	uint64_t size;
	bool fixed;                     /* preallocated, else sparse */
};

struct store_nic {
	char sw[STORE_SWITCH_MAX];      /* virtual switch name; not connected yet */
	uint8_t mac[6];
	bool mac_spoofing;
};

struct store_vm {
	char name[STORE_NAME_MAX + 1];
	uint64_t memory;
	unsigned int cpus;
	bool expose_virt;
	bool dynamic_memory;
	uint64_t memory_min, memory_max;        /* dynamic memory bounds; 0: unset */
	char kernel[STORE_PATH_MAX];
	char initrd[STORE_PATH_MAX];            /* "": none */
	char cmdline[STORE_CMDLINE_MAX];
	unsigned int ndisks, nnics;
	struct store_disk disks[STORE_MAX_DISKS];
	struct store_nic nics[STORE_MAX_NICS];
};

/* Host I/O that tests make fail (the write of vm.conf, its fsync). */
struct store_io {
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*fsync)(int fd);
};
extern const struct store_io *store_io;

/* The defaults nestvm vm new starts from. */
void store_vm_init(struct store_vm *vm, const char *name);

/* The store root: dir if given, else $NESTVM_STORE, else /var/lib/nestvm for
 * root, else $XDG_DATA_HOME/nestvm or ~/.local/share/nestvm. */
MUST_CHECK int store_root(const char *dir, char *buf, size_t len);

/* 0, or -EINVAL with why set: 1 to 64 of A-Z a-z 0-9 . _ -, not starting with
 * '.' or '-'. Excludes "", "..", "/", spaces and control characters. */
MUST_CHECK int store_name_check(const char *name, const char **why);

/* root/name[/file] into buf; -ENAMETOOLONG if it does not fit. */
MUST_CHECK int store_path(char *buf, size_t len, const char *root, const char *name, const char *file);

/* Parses a vm.conf text. On error returns -EINVAL and err holds
 * "FILE:LINE: what is wrong". Pure: the fuzzer calls it. */
MUST_CHECK int store_parse(const char *text, size_t len, const char *file,
			   struct store_vm *vm, char *err, size_t errlen);
/* The vm.conf text, malloc'd; NULL when out of memory. */
char *store_format(const struct store_vm *vm);
/* Checks a definition for values out of range; err says which. */
MUST_CHECK int store_validate(const struct store_vm *vm, char *err, size_t errlen);

/* Loads root/name/vm.conf; -ENOENT when there is no such VM. */
MUST_CHECK int store_load(const char *root, const char *name, struct store_vm *vm,
			  char *err, size_t errlen);
/* Writes vm.conf atomically: a temporary file, fsync, rename, fsync of the
 * directory. On failure the previous vm.conf is left as it was. */
MUST_CHECK int store_save(const char *root, const struct store_vm *vm, char *err, size_t errlen);

/* Creates the VM's directory with its vm.conf and disks (new raw images,
 * sparse or preallocated) in a hidden directory renamed into place at the
 * end: a crash leaves no half VM. -EEXIST if the name is taken. */
MUST_CHECK int store_create(const char *root, const struct store_vm *vm, char *err, size_t errlen);
/* Moves the VM's directory out of sight, then deletes it with its disks. */
MUST_CHECK int store_remove(const char *root, const char *name, char *err, size_t errlen);

/* The names of the store's VMs, sorted; *names is malloc'd (free with
 * store_list_free). A missing root is an empty store. */
MUST_CHECK int store_list(const char *root, char ***names, size_t *n);
void store_list_free(char **names, size_t n);

/* Takes the VM's lock (flock on its "lock" file), waiting up to wait_ms;
 * -EBUSY if another command still holds it, -ENOENT for no such VM. The
 * kernel releases the lock of a killed process. Returns the fd. */
MUST_CHECK int store_lock(const char *root, const char *name, int wait_ms);
void store_unlock(int fd);

/* Whether a VMM holds the VM's run lock, that is, is alive. */
bool store_vmm_alive(const char *root, const char *name);

/* A fresh locally administered unicast MAC address. */
void store_random_mac(uint8_t mac[6]);
const char *store_fmt_mac(const uint8_t mac[6], char *buf, size_t len);
MUST_CHECK int store_parse_mac(const char *s, uint8_t mac[6]);

/* Writes data to dir/file atomically (temp, fsync, rename, fsync dir). */
MUST_CHECK int store_write_atomic(const char *dir, const char *file, const char *data, size_t len);

/* Test hook: when $NESTVM_TEST_CRASH_AT names this step, the process ends
 * at once with _exit(99), as a kill at that point would. */
void store_crash_point(const char *step);

#endif

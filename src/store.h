/* The VM store: one directory per named VM under a store root, holding its
 * configuration (vm.conf, "key = value" lines, see store_format()), its disks
 * and the running VMM's socket, log and records. Writes are atomic and each
 * VM has a lock, so a killed command never leaves a VM half-written. The
 * store is its owner's alone (directories 0700, files 0600), never followed
 * through a link, and refused where another user owns it. */
#ifndef NESTVM_STORE_H
#define NESTVM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"
#include "vmconfig.h"

#define STORE_PATH_MAX   1024           /* a store root, a VM directory */
#define STORE_CONF_MAX   (64 << 10)     /* a longer vm.conf is refused */
#define STORE_CONF       "vm.conf"

/* Files in a VM's directory. */
#define STORE_LOCK       "lock"         /* held by a command changing the VM */
#define STORE_RUN_LOCK   "run.lock"     /* held by the VM's running VMM */
#define STORE_API_SOCK   "api.sock"
#define STORE_CONSOLE_SOCK "console.sock"
#define STORE_VSOCK_SOCK "vsock.sock"     /* the vsock's host side; guests reach "vsock.sock_PORT" */
#define STORE_CONSOLE_LOG "console.log"
#define STORE_PID        "vmm.pid"
#define STORE_EXIT       "vmm.exit"     /* why the last VMM ended */
#define STORE_SAVED      "saved.state"  /* the Saved VM's state: its next start resumes it */

/* Host I/O that tests make fail (the write of vm.conf, its fsync). */
struct store_io {
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*fsync)(int fd);
};
extern const struct store_io *store_io;

/* The store root: dir if given, else $NESTVM_STORE, else /var/lib/nestvm for
 * root, else $XDG_DATA_HOME/nestvm or ~/.local/share/nestvm. */
MUST_CHECK int store_root(const char *dir, char *buf, size_t len);

/* A VM's name: vmconfig_check_name's rule, and not "switches", where the
 * store keeps its switches. 0, or -EINVAL with err. */
MUST_CHECK int store_name_check(const char *name, char *err, size_t errlen);

/* root/name[/file] into buf; -ENAMETOOLONG if it does not fit. */
MUST_CHECK int store_path(char *buf, size_t len, const char *root, const char *name, const char *file);

/* Parses a vm.conf text. On error returns -EINVAL and err holds
 * "FILE:LINE: what is wrong". Pure: the fuzzer calls it. */
MUST_CHECK int store_parse(const char *text, size_t len, const char *file,
			   struct vmconfig *vm, char *err, size_t errlen);
/* The same for a machine's configuration as a saved state carries it,
 * whose disks are paths anywhere (those of a VM of the store made whole). */
MUST_CHECK int store_parse_machine(const char *text, size_t len, const char *file,
				   struct vmconfig *vm, char *err, size_t errlen);
/* The vm.conf text, malloc'd; NULL when out of memory. */
char *store_format(const struct vmconfig *vm);
/* Checks a definition for values out of range; err says which. */
MUST_CHECK int store_validate(const struct vmconfig *vm, char *err, size_t errlen);

/* Loads root/name/vm.conf: the VM as defined; -ENOENT when there is no
 * such VM. */
MUST_CHECK int store_load(const char *root, const char *name, struct vmconfig *vm,
			  char *err, size_t errlen);
/* The stored VM as a machine configuration to run: as defined, with its
 * disks' file names made paths in its directory. */
MUST_CHECK int store_load_machine(const char *root, const char *name, struct vmconfig *vm,
				  char *err, size_t errlen);
/* Writes vm.conf atomically: a temporary file, fsync, rename, fsync of the
 * directory. On failure the previous vm.conf is left as it was. */
MUST_CHECK int store_save(const char *root, const struct vmconfig *vm, char *err, size_t errlen);

/* Creates the VM's directory with its vm.conf and disks (new raw images,
 * sparse or preallocated) in a hidden directory renamed into place at the
 * end: a crash leaves no half VM. -EEXIST if the name is taken. */
MUST_CHECK int store_create(const char *root, const struct vmconfig *vm, char *err, size_t errlen);
/* Moves the VM's directory out of sight, then deletes it with its disks. */
MUST_CHECK int store_remove(const char *root, const char *name, char *err, size_t errlen);

/* The names of the store's VMs, sorted; *names is malloc'd (free with
 * store_list_free). A missing root is an empty store. */
MUST_CHECK int store_list(const char *root, char ***names, size_t *n);
/* The same for any directory of named subdirectories: what is "VM" (the
 * store's rule) or whose names they are ("switch", vmconfig_check_name). */
MUST_CHECK int store_list_dir(const char *dir, const char *what, char ***names, size_t *n);
void store_list_free(char **names, size_t n);

/* Takes the VM's lock (flock on its "lock" file), waiting up to wait_ms;
 * -EBUSY if another command still holds it, -ENOENT for no such VM. The
 * kernel releases the lock of a killed process. Returns the fd. */
MUST_CHECK int store_lock(const char *root, const char *name, int wait_ms);
void store_unlock(int fd);

/* Whether a VMM holds the VM's run lock, that is, is alive. */
bool store_vmm_alive(const char *root, const char *name);

/* Opens a directory of the store, root/name (name NULL: the root itself),
 * for use with openat(): never through a symbolic link, and only one owned
 * by the caller or root, so that no other local user can plant or swap
 * files in it. -ELOOP (a link), -EPERM (another's), -ENOTDIR, -ENOENT, with
 * err saying which; else the fd. */
MUST_CHECK int store_open_dir(const char *root, const char *name, char *err, size_t errlen);

/* Reads root/name/file whole, NUL-terminated (*text malloc'd): a regular
 * file, not a link, not a FIFO, of at most max bytes, so that a planted or
 * damaged file can neither hang nor flood the reader. -ENOENT when absent;
 * -EFBIG above max; -EINVAL not a regular file; err says which. */
MUST_CHECK int store_read(const char *root, const char *name, const char *file, size_t max,
			  char **text, size_t *len, char *err, size_t errlen);

/* The same for dir/file, dir any directory the store keeps (a checkpoint's),
 * refused as store_open_dir() refuses one. */
MUST_CHECK int store_read_in(const char *dir, const char *file, size_t max, char **text, size_t *len,
			     char *err, size_t errlen);

/* A VMM's pid as a pid file holds it: decimal digits and a newline, more
 * than 1 (never init, never a process group). -EINVAL for anything else. */
MUST_CHECK int store_parse_pid(const char *text, size_t len, int *pid);

/* Writes data to dir/file atomically (temp, fsync, rename, fsync dir). The
 * file is its owner's alone (0600), whatever the umask; dir is refused as
 * store_open_dir() refuses one. */
MUST_CHECK int store_write_atomic(const char *dir, const char *file, const char *data, size_t len);

/* Test hook: when $NESTVM_TEST_CRASH_AT names this step, the process ends
 * at once with _exit(99), as a kill at that point would. */
void store_crash_point(const char *step);

#endif

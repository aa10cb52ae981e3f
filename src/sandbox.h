/* The VMM's sandbox: once a VMM's files, TAP devices and /dev/kvm are open,
 * each of its threads gives up what its job does not need. A thread runs
 * under a seccomp filter for its role (what a vCPU, a device worker, the
 * API server or the console do, and nothing else; anything else kills the
 * process, saying which call it was), with no capabilities and
 * no_new_privs, and, where the kernel has Landlock, with file access
 * limited to the VM's own directory and disks.
 *
 * Filters, capabilities and Landlock domains belong to a thread, not to the
 * process, so each thread enters the sandbox itself at its start:
 * sandbox_enter(role). Before sandbox_setup (unit tests building VMs in
 * process, tools) sandbox_enter only names the thread's role. A process
 * holds one sandbox: its state is process-wide by nature. */
#ifndef NESTVM_SANDBOX_H
#define NESTVM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

enum sandbox_role {
	SANDBOX_ROLE_MAIN,      /* runs the VM, rebuilds it on a reboot, ends the VMM */
	SANDBOX_ROLE_VCPU,      /* KVM_RUN and the exits it dispatches */
	SANDBOX_ROLE_DEVICE,    /* a device's worker: disk, network, vsock, balloon */
	SANDBOX_ROLE_API,       /* the control API: pause, save, checkpoint, migrate, swap a disk */
	SANDBOX_ROLE_CONSOLE,   /* the console's log, socket and terminal */
	SANDBOX_ROLE_SIGNAL,    /* waits for SIGINT, SIGTERM, SIGHUP */
	SANDBOX_ROLE_FC_API,    /* Firecracker's API: builds the VM from what it is told */
	SANDBOX_ROLE_SWITCH,    /* a switch daemon's one thread: frames, ports, its log */
	SANDBOX_ROLE_COUNT
};

/* What a thread killed by its filter exits with: 128 + SIGSYS, as a shell
 * reports a death by that signal. */
#define SANDBOX_EXIT_STATUS 159

/* A path the VMM may use once it is sandboxed. */
enum sandbox_access {
	SANDBOX_READ = 1,       /* a file, read */
	SANDBOX_WRITE = 2,      /* a file, written (and truncated) */
	SANDBOX_TREE = 4,       /* a directory: everything beneath it, but executing */
	SANDBOX_DEVICE = 8,     /* a device node: ioctls on it too (/dev/kvm, /dev/net/tun) */
	SANDBOX_LIST = 16,      /* a directory: its files read and its directories listed, beneath it */
};
struct sandbox_path {
	const char *path;
	unsigned int access;    /* enum sandbox_access, or'ed */
};

struct sandbox_config {
	bool seccomp;           /* the system-call filters (off: --no-seccomp) */
	bool landlock;          /* limit file access to paths[] where the kernel can */
	const char *no_landlock;        /* with !landlock: why, for status */
	const struct sandbox_path *paths;
	size_t npaths;
};

/* What is in force, for status and the control API. */
struct sandbox_info {
	bool set_up;            /* sandbox_setup ran */
	bool seccomp;
	bool caps_dropped;      /* no capabilities, no_new_privs */
	int landlock_abi;       /* 0: Landlock not in force */
	char landlock[160];     /* "on (ABI 4)", or why not */
};

#define SANDBOX_PATHS_MAX 24

/* The tests' probe (sandbox.c): NESTVM_SANDBOX_PROBE=ROLE. */
#define SANDBOX_PROBE_ENV "NESTVM_SANDBOX_PROBE"

/* Sets the sandbox up for this process: the filters built, the Landlock
 * ruleset made from cfg's paths (a note where the kernel lacks Landlock),
 * the handler that names a forbidden call installed. Threads enter it with
 * sandbox_enter. -errno with err: seccomp is missing from the kernel, or a
 * filter could not be built. A second call changes nothing and returns 0. */
MUST_CHECK int sandbox_setup(const struct sandbox_config *cfg, char *err, size_t errlen);
/* The calling thread enters the sandbox as role: capabilities dropped,
 * no_new_privs, its Landlock domain, its filter. A thread that cannot is
 * not left running outside it: the process ends, saying why. */
void sandbox_enter(enum sandbox_role role);
void sandbox_info(struct sandbox_info *info);
/* info in one line: "seccomp filters on, no capabilities, Landlock on (ABI 4)". */
void sandbox_describe(const struct sandbox_info *info, char *buf, size_t len);
const char *sandbox_role_name(enum sandbox_role role);

#endif

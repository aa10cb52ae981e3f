/* The machine configuration: what a VM is (memory, processors, the
 * extensions, dynamic memory, boot files, disks, adapters), whichever front
 * end describes it (the command line, vm.conf, an API), with every limit
 * and rule on it defined here once: the validator, the names, the memory
 * sizes, the device counts, and whether a VM can be a nested host. */
#ifndef NESTVM_VMCONFIG_H
#define NESTVM_VMCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define VMCONFIG_NAME_MAX       64      /* VMs, switches, disk files */
#define VMCONFIG_PATH_MAX       1024
#define VMCONFIG_CMDLINE_MAX    2048
#define VMCONFIG_SWITCH_MAX     64
#define VMCONFIG_TAP_MAX        16      /* IFNAMSIZ */

#define VMCONFIG_MIN_MEMORY     (16ULL << 20)
#define VMCONFIG_MAX_MEMORY     (1ULL << 40)
#define VMCONFIG_MEMORY_UNIT    (1ULL << 20)    /* memory comes in whole MiB */
#define VMCONFIG_DEFAULT_MEMORY (512ULL << 20)
/* Dynamic memory's defaults: the minimum is the smaller of this and the
 * startup memory, the maximum twice the startup memory. */
#define VMCONFIG_DEFAULT_MEMORY_MIN (512ULL << 20)
#define VMCONFIG_MAX_CPUS       255
#define VMCONFIG_DEFAULT_CMDLINE "console=ttyS0"

#define VMCONFIG_MIN_DISK       (1ULL << 20)
#define VMCONFIG_MAX_DISK       (64ULL << 40)
#define VMCONFIG_DISK_SECTOR    512
/* virtio-mmio windows, one GSI each: disks, adapters, the rng and the
 * balloon share them. */
#define VMCONFIG_MAX_DEVICES    8
#define VMCONFIG_MAX_DISKS      VMCONFIG_MAX_DEVICES
#define VMCONFIG_MAX_NICS       VMCONFIG_MAX_DEVICES

/* The least memory taken for a VM that is to be a nested host. Hyper-V asks
 * for 1 GiB; a Linux KVM host with a small guest of its own fits in half. */
#define VMCONFIG_NESTED_MIN_MEMORY (512ULL << 20)

struct vmconfig_disk {
	/* A raw image. A stored VM's is a file name in its directory until
	 * store_load_machine() makes it a path. */
	char path[VMCONFIG_PATH_MAX];
	bool read_only;
	uint64_t size;                  /* stored VMs: its size when made; 0: not known */
	bool fixed;                     /* stored VMs: preallocated, else sparse */
};

/* A network adapter: on a virtual switch (by name) or a TAP device. */
struct vmconfig_nic {
	char sw[VMCONFIG_SWITCH_MAX];   /* "" for none */
	char tap[VMCONFIG_TAP_MAX];     /* "" for none */
	uint8_t mac[6];
	bool mac_spoofing;
};

struct vmconfig {
	char name[VMCONFIG_NAME_MAX + 1];       /* "" for a VM not in the store */
	uint64_t memory;                        /* startup memory; without dynamic memory, all of it */
	unsigned int cpus;
	bool expose_virt;                       /* VMX/SVM for the guest: it can nest */
	bool dynamic_memory;
	uint64_t memory_min, memory_max;        /* dynamic memory's bounds; 0: the default */
	char kernel[VMCONFIG_PATH_MAX];
	char initrd[VMCONFIG_PATH_MAX];         /* "": none */
	char cmdline[VMCONFIG_CMDLINE_MAX];
	unsigned int ndisks, nnics;
	struct vmconfig_disk disks[VMCONFIG_MAX_DISKS];
	struct vmconfig_nic nics[VMCONFIG_MAX_NICS];
	bool no_rng;                            /* no virtio-rng (there is one by default) */
	uint64_t vsock_cid;                     /* virtio-vsock's guest CID; 0: none */
	char vsock_uds[VMCONFIG_PATH_MAX];      /* its host side: a Unix socket (see virtio/vsock.c) */
	bool autostart;                         /* started with the host (nestvm autostart start) */
	bool no_seccomp;                        /* its VMM's threads run without system-call filters */
	bool guest_decompress;                  /* the kernel decompresses itself, as guest code */
};

/* A new VM's defaults: 512M, one processor, console=ttyS0. */
void vmconfig_init(struct vmconfig *c, const char *name);

/* How a front end calls each setting, so that a message names what its user
 * wrote: an option ("--memory"), a vm.conf key ("memory"). memory_noun is
 * the startup memory in a sentence ("the startup memory"). */
struct vmconfig_names {
	const char *memory, *memory_noun, *memory_min, *memory_max;
	const char *cpus, *kernel, *cmdline;
};
extern const struct vmconfig_names vmconfig_conf_names;

/* Checks every rule on c; 0, or -EINVAL with err naming the setting as
 * names spells it, the problem and the fix. Touches no file. */
MUST_CHECK int vmconfig_validate(const struct vmconfig *c, const struct vmconfig_names *names,
				 char *err, size_t errlen);

/* A memory size: 0, -ERANGE outside 16M to 1T, -EINVAL if not whole MiB. */
MUST_CHECK int vmconfig_check_memory(uint64_t bytes);
/* Dynamic memory's bounds as the VM gets them: those set, else the defaults. */
void vmconfig_memory_range(const struct vmconfig *c, uint64_t *min, uint64_t *max);
/* How many virtio devices a VM has: its disks and adapters, the rng,
 * with dynamic memory the balloon, and the vsock. 0, or -EINVAL with err. */
MUST_CHECK int vmconfig_check_devices(unsigned int ndisks, unsigned int nnics, bool rng, bool balloon,
				      bool vsock, char *err, size_t errlen);
/* A vsock: a guest CID from 3 to 2^32 - 2 and its host socket's path (NULL:
 * not known yet, as for a stored VM, whose socket is in its directory). */
MUST_CHECK int vmconfig_check_vsock(uint64_t cid, const char *uds, char *err, size_t errlen);
/* A new disk's size: from 1M to 64T, whole sectors. 0, or -EINVAL with err. */
MUST_CHECK int vmconfig_check_disk_size(uint64_t size, char *err, size_t errlen);
/* The switch an adapter names: a name of the store, as vmconfig_check_name
 * has it (1 to 63 characters here), never a path. */
MUST_CHECK int vmconfig_check_switch(const char *sw, char *err, size_t errlen);
/* A name (of a VM, a switch, a disk file): 1 to 64 of A-Z a-z 0-9 . _ -,
 * not starting with '.' or '-'; what says whose name it is ("VM"). */
MUST_CHECK int vmconfig_check_name(const char *name, const char *what, char *err, size_t errlen);

/* What a VM needs to be a nested host, as a set of changes to make. */
enum vmconfig_nesting {
	VMCONFIG_NEST_EXPOSE = 1u << 0,         /* expose the extensions to its processors */
	VMCONFIG_NEST_FIXED_MEMORY = 1u << 1,   /* turn dynamic memory off: all of it fixed */
	VMCONFIG_NEST_MEMORY = 1u << 2,         /* raise it to VMCONFIG_NESTED_MIN_MEMORY */
	VMCONFIG_NEST_SPOOFING = 1u << 3,       /* MAC address spoofing on, so nested guests have network */
};
/* Without these it cannot nest at all; without spoofing only its guests'
 * frames are dropped. */
#define VMCONFIG_NEST_REQUIRED (VMCONFIG_NEST_EXPOSE | VMCONFIG_NEST_FIXED_MEMORY | VMCONFIG_NEST_MEMORY)

/* Whether c can be a nested host, and why not: the changes it needs. The
 * status report and the nested assistant both ask this. */
unsigned int vmconfig_nesting_needs(const struct vmconfig *c);
/* Makes the changes in needs (a set of enum vmconfig_nesting) to c. */
void vmconfig_make_nested(struct vmconfig *c, unsigned int needs);

/* MAC addresses: a fresh locally administered unicast one; text form. */
void vmconfig_random_mac(uint8_t mac[6]);
const char *vmconfig_fmt_mac(const uint8_t mac[6], char *buf, size_t len);
/* 0, or -EINVAL for anything but "xx:xx:xx:xx:xx:xx" of a unicast address. */
MUST_CHECK int vmconfig_parse_mac(const char *s, uint8_t mac[6]);

#endif

/* A virtual machine: its configuration, the explicit build sequence that
 * assembles memory, vCPUs, irqchip, devices, ACPI and boot image, and the
 * vCPU threads whose exits are decoded and then dispatched. */
#ifndef NESTVM_VM_H
#define NESTVM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "bus.h"
#include "devices/devices.h"
#include "guestmem.h"
#include "kvm.h"
#include "virtio/net.h"
#include "virtio/virtio.h"
#include "vmconfig.h"

struct vm_disk {
	const char *path;               /* a raw image file */
	bool read_only;
};

/* A network adapter: its backend (a virtual switch's port socket or a TAP
 * device), its MAC address and whether it may send from other addresses. */
struct vm_nic {
	const char *switch_sock;        /* or NULL */
	const char *tap;                /* or NULL */
	bool tap_held;                  /* tap is open already, as tap_fd: each machine takes a dup */
	int tap_fd;
	uint8_t mac[6];
	bool mac_spoofing;
	const char *label;              /* how the switch names the port */
};

/* A flat binary run instead of a kernel: tests and the speed probe. */
struct vm_payload {
	const uint8_t *data;
	size_t len;
	uint64_t gpa;
	uint64_t entry;
	bool real_mode;
};

struct vm_config {
	uint64_t mem_size;              /* guest RAM; with dynamic memory, the maximum */
	/* Dynamic memory: a virtio-balloon keeps the guest between memory_min and
	 * mem_size, starting it at memory_startup (memory_min <= memory_startup
	 * <= mem_size, whole MiB). */
	bool dynamic_memory;
	uint64_t memory_min;
	uint64_t memory_startup;
	unsigned int ncpus;
	struct boot_blob kernel;        /* bzImage; size 0 with a payload */
	struct boot_blob initrd;        /* size 0: none */
	const char *cmdline;
	bool guest_decompress;          /* the bzImage decompresses itself as guest code */
	const struct vm_payload *payload;
	bool no_irqchip;                /* payloads only: HLT then exits to us */
	bool expose_virt;
	const struct vm_disk *disks;    /* virtio-blk, in order: vda, vdb, ... */
	unsigned int ndisks;
	const struct vm_nic *nics;      /* virtio-net: eth0, eth1, ... */
	unsigned int nnics;
	bool rng;                       /* virtio-rng */
	uint64_t vsock_cid;             /* virtio-vsock's guest CID; 0: none */
	const char *vsock_uds;          /* and its host socket */
	int console_out;                /* COM1 output; -1 discards it */
	const char *kvm_path;           /* NULL: /dev/kvm */
	/* The machine is to be restored from a saved state: no ACPI tables and
	 * no boot image are written (the state brings memory), no kernel needed. */
	bool restore;
};

enum vm_stop_reason {
	VM_STOP_NONE,
	VM_STOP_POWEROFF,     /* guest powered off */
	VM_STOP_RESET,        /* guest rebooted */
	VM_STOP_HALT,         /* payload halted (no irqchip) */
	VM_STOP_REQUEST,      /* the host asked: signal or API */
	VM_STOP_FAULT,        /* triple fault, KVM internal error, failed entry */
};

struct vcpu {
	struct vm *vm;
	struct kvm_vcpu kvm;
	pthread_t thread;
	bool started;
};

/* When the steps of a boot happened (util_now_ns(); 0: not seen). The
 * console ones are read off COM1: the kernel's banner and its "Run /init as
 * init process" appear there unless the command line says quiet. */
struct vm_boot_times {
	uint64_t load_start, load_end;  /* the kernel and initrd into guest memory */
	uint64_t unpack_ns;             /* of which unpacking the kernel (a duration) */
	_Atomic uint64_t entry;         /* the boot vCPU first entered the guest */
	_Atomic uint64_t output;        /* the first byte on the console */
	_Atomic uint64_t banner;        /* the kernel's "Linux version" line */
	_Atomic uint64_t init;          /* the kernel's "Run ... as init process" line */
	_Atomic uint64_t stop;          /* the guest powered off, rebooted or stopped */
	char line[160];                 /* the console line so far (COM1's lock) */
	unsigned int line_len;
};

/* The same, read once the machine has stopped. */
struct vm_boot_report {
	uint64_t load_start, load_end, unpack_ns, entry, output, banner, init, stop;
};

struct vm {
	struct vm_config cfg;
	struct kvm_sys sys;
	struct kvm_vm kvm;
	struct guestmem mem;
	struct bus pio;
	struct bus mmio;
	struct vcpu *vcpus;
	unsigned int ncpus;
	struct kvm_cpuid2 *supported_cpuid;
	int nested_state_size;          /* KVM_CAP_NESTED_STATE, 0 if absent */

	/* virtio-mmio windows: one GSI each, from LAYOUT_FIRST_DEVICE_GSI up. */
	struct virtio_dev *vdev[VMCONFIG_MAX_DEVICES];
	struct virtio_mmio *vmmio[VMCONFIG_MAX_DEVICES];
	struct acpi_mmio_dev acpi_mmio[VMCONFIG_MAX_DEVICES];
	unsigned int nvirtio;
	struct virtio_dev *balloon;     /* one of vdev[], with dynamic memory */

	struct serial com1;
	struct i8042 i8042;
	struct rtc rtc;
	struct acpi_pm pm;

	pthread_mutex_t lock;
	pthread_cond_t stopped;
	_Atomic int stop;               /* enum vm_stop_reason */
	_Atomic unsigned int halted;    /* vCPUs that left through HLT */
	_Atomic bool paused;            /* vCPUs are to park until resumed */
	unsigned int parked;            /* vCPUs parked, under lock */
	pthread_cond_t park_change;
	char *cmdline_buf;              /* the command line with device arguments, or NULL */
	struct vm_boot_times boot;
	char diag[1024];                /* why it stopped, for faults */
	char err[512];                  /* why vm_create failed */
};

/* Builds the whole machine. On failure returns -errno, vm->err says why in
 * one line, and the VM is torn down again. */
MUST_CHECK int vm_create(struct vm *vm, const struct vm_config *cfg);
void vm_destroy(struct vm *vm);
/* Runs the vCPUs until the machine stops; returns why. */
enum vm_stop_reason vm_run(struct vm *vm);
/* Asks every vCPU to leave; the first reason given wins. Any thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason why, const char *diag);
const char *vm_stop_reason_name(enum vm_stop_reason why);
/* Parks every vCPU outside KVM_RUN and returns once all are parked (or the
 * VM stopped); vm_resume lets them go on. Any thread but a vCPU's. */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
/* Before vm_run: the vCPUs park as they start, running no guest code,
 * until vm_resume. */
void vm_start_paused(struct vm *vm);
bool vm_is_paused(struct vm *vm);
/* The ACPI power button: a guest with acpid or systemd shuts down cleanly. */
void vm_power_button(struct vm *vm);
/* Types Ctrl-Alt-Del on the keyboard: a Linux guest reboots. */
void vm_ctrl_alt_del(struct vm *vm);
/* Puts the image at path behind disk i (in the order of cfg.disks) while
 * the machine runs: -EINVAL for no such disk, else as virtio_blk_swap. */
MUST_CHECK int vm_swap_disk(struct vm *vm, unsigned int i, const char *path);
/* Console input: bytes typed at COM1, waiting while its FIFO is full; it
 * returns early once vm_console_close_input() has run (a stop, a reboot). */
void vm_console_input(struct vm *vm, const uint8_t *buf, size_t len);
void vm_console_close_input(struct vm *vm);
/* Guest memory the guest has touched so far, in bytes. */
uint64_t vm_memory_touched(struct vm *vm);
void vm_boot_report(const struct vm *vm, struct vm_boot_report *r);
/* One byte of COM1's output, watched for the boot's console milestones;
 * one writer at a time (COM1's lock). */
void vm_boot_console(struct vm_boot_times *b, uint8_t c);
/* Dynamic memory: -ENOTSUP without it. vm_memory_info fills what the
 * balloon knows; vm_set_memory_target asks the guest to keep bytes, clamped
 * to [memory_min, mem_size], and returns the clamped target in *applied. */
MUST_CHECK int vm_memory_info(struct vm *vm, struct virtio_balloon_info *info);
MUST_CHECK int vm_set_memory_target(struct vm *vm, uint64_t bytes, uint64_t *applied);

/* Dirty page logging for a migration: KVM's log of every memory slot and
 * the log of the pages the VMM's devices write. take fills bitmap (a bit
 * per 4 KiB page of region i, (size / 4096 + 63) / 64 words) with the pages
 * written since the last take, and starts over. */
MUST_CHECK int vm_dirty_log_start(struct vm *vm);
void vm_dirty_log_stop(struct vm *vm);
MUST_CHECK int vm_dirty_log_take(struct vm *vm, unsigned int region, uint64_t *bitmap);

/* Exit decoding and dispatch, apart so tests can feed made-up exits. */
enum vcpu_exit_kind {
	VCPU_EXIT_IO,
	VCPU_EXIT_MMIO,
	VCPU_EXIT_HLT,
	VCPU_EXIT_SHUTDOWN,
	VCPU_EXIT_SYSTEM_EVENT,
	VCPU_EXIT_INTERNAL_ERROR,
	VCPU_EXIT_FAIL_ENTRY,
	VCPU_EXIT_INTR,
	VCPU_EXIT_UNKNOWN,
};

struct vcpu_exit {
	enum vcpu_exit_kind kind;
	uint64_t addr;          /* port or physical address */
	uint32_t size;          /* bytes per access */
	uint32_t count;         /* repetitions (rep ins/outs) */
	bool is_write;
	uint8_t *data;          /* size * count bytes */
	uint64_t detail;        /* exit reason, suberror or event type */
};

enum vcpu_action { VCPU_CONTINUE, VCPU_STOP };

void vcpu_decode_exit(struct kvm_run *run, size_t run_size, struct vcpu_exit *e);
enum vcpu_action vm_dispatch_exit(struct vm *vm, struct vcpu *vcpu, const struct vcpu_exit *e);

/* Times a ring-0 loop in a throwaway VM: how many million guest kernel-mode
 * instructions per second this host's KVM runs. */
MUST_CHECK int vm_probe_speed(const char *kvm_path, double *mips);
/* Below this the host emulates guest kernel code instead of running it.
 * Measured: an emulating KVM runs 1-4 million instructions/s; hardware runs
 * thousands, a VM two levels deep in the simulated host 100-300, and as
 * little as 34 when the machine is loaded. */
#define VM_PROBE_MIN_MIPS 10.0

#endif

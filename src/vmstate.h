/* A machine's whole state in the saved-state format (snap.h): what "save",
 * checkpoints and live migration write, and how a machine is built anew
 * from it. Saving walks the machine in a fixed order; loading first reads
 * the head (what machine to build), then feeds the rest into a machine made
 * with cfg.restore, verifying everything before any of it is applied. */
#ifndef NESTVM_VMSTATE_H
#define NESTVM_VMSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "snap.h"
#include "vm.h"

/* The machine record: what the state asks of a host to load it. */
struct vmstate_machine {
	uint32_t vendor;                /* enum cpuid_vendor */
	char vendor_id[13];             /* CPUID leaf 0: "AuthenticAMD" */
	uint32_t cpuid1_eax;            /* family, model and stepping */
	uint32_t tsc_khz;
	uint32_t nested_size;           /* the largest vCPU nested state in it; 0: none */
	uint32_t xsave_size;
	uint32_t ncpus;
	uint64_t mem_size;
	bool irqchip;
};

/* Saving a paused machine (vm_pause), in pieces so that a migration can send
 * memory in rounds while the machine runs:
 *   vmstate_put_head    the machine record, then config_text (the machine
 *                       configuration as vm.conf text; "" for none);
 *   vmstate_put_memory  every page the guest touched and did not leave zero;
 *   vmstate_put_devices the clock, irqchip, PIT, devices and vCPUs, the
 *                       devices held meanwhile: the machine must be paused.
 * vmstate_save does all three and the end record. */
MUST_CHECK int vmstate_put_head(struct vm *vm, const char *config_text, struct snap_writer *w,
				char *err, size_t errlen);
MUST_CHECK int vmstate_put_memory(struct vm *vm, struct snap_writer *w, char *err, size_t errlen);
MUST_CHECK int vmstate_put_devices(struct vm *vm, struct snap_writer *w, char *err, size_t errlen);
MUST_CHECK int vmstate_save(struct vm *vm, const char *config_text, struct snap_writer *w,
			    char *err, size_t errlen);
/* The machine's devices held still (see virtio_dev_hold), and let go. */
void vmstate_hold_devices(struct vm *vm);
void vmstate_release_devices(struct vm *vm);

struct vmstate_load {
	struct snap_reader rd;
	struct vmstate_machine machine;
	char *config_text;              /* malloc'd, NUL-terminated */
	/* Where a migration's disk records go (a saved state has none): the
	 * bytes of disk index at offset. -errno refuses them. */
	int (*disk)(void *opaque, uint32_t index, uint64_t offset, const void *data, uint32_t len);
	void *disk_opaque;
};

/* The header, the machine record and the configuration record of the state
 * on fd. Each failure says in err what is wrong with it. */
MUST_CHECK int vmstate_load_head(struct vmstate_load *l, int fd, char *err, size_t errlen);
/* The rest, into vm: made from the head's configuration with cfg.restore,
 * not yet run. -EINVAL for a state this machine cannot take (another vendor,
 * another shape, nested state larger than this KVM takes) or that is
 * corrupt, truncated or incomplete; nothing but guest memory is touched
 * before the end record has come and checked out. */
MUST_CHECK int vmstate_load_rest(struct vmstate_load *l, struct vm *vm, char *err, size_t errlen);
void vmstate_load_free(struct vmstate_load *l);

#endif

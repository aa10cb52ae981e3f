/* Checkpoints of a VM of the store (Hyper-V's Checkpoint-VM and
 * Restore-VMSnapshot): its disks, its configuration and, when it ran, its
 * whole state, as they were at one moment, in checkpoints/NAME/ of its
 * directory. Disks are reflinked where the file system shares blocks, else
 * copied sparse. A checkpoint is made in a hidden directory and renamed into
 * place when whole: a crash leaves no half checkpoint. */
#ifndef NESTVM_CHECKPOINT_H
#define NESTVM_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmconfig.h"

#define CHECKPOINT_DIR   "checkpoints"
#define CHECKPOINT_STATE "state"            /* the VM's state, when it ran */
#define CHECKPOINT_CONF  "checkpoint.conf"  /* when, from what, what it cost */
#define CHECKPOINT_VMCONF "vm.conf"

struct checkpoint {
	char name[VMCONFIG_NAME_MAX + 1];
	int64_t created;                /* seconds since the epoch */
	char from[16];                  /* the VM's state then: Running, Paused, Off, Saved */
	uint64_t millis;                /* how long taking it took */
	uint64_t bytes;                 /* what it takes on disk */
	bool has_state;
};

/* A fresh hidden directory to make checkpoint name of VM vm in; its path
 * into dir. -EEXIST when a checkpoint of that name exists; -EINVAL with err
 * for a bad name. */
MUST_CHECK int checkpoint_begin(const char *root, const char *vm, const char *name, char *dir, size_t len,
				char *err, size_t errlen);
/* Copies the disks of cfg into dir, each under its file name; base is the
 * directory relative disk paths are in (NULL: they are absolute). */
MUST_CHECK int checkpoint_copy_disks(const struct vmconfig *cfg, const char *base, const char *dir,
				     char *err, size_t errlen);
/* Completes the checkpoint made in dir: the VM's vm.conf beside the disks,
 * the record (from, millis), and the directory renamed into place. On
 * failure dir is removed. */
MUST_CHECK int checkpoint_finish(const char *root, const char *vm, const char *name, const char *dir,
				 const char *from, uint64_t millis, char *err, size_t errlen);
/* Removes a directory checkpoint_begin made that is not to be finished. */
void checkpoint_abandon(const char *dir);

/* The VM's checkpoints, oldest first; *list malloc'd. */
MUST_CHECK int checkpoint_list(const char *root, const char *vm, struct checkpoint **list, size_t *n);
/* Brings the VM back to checkpoint name: disks, vm.conf, and its saved
 * state (the VM is then Saved and resumes there) or none (it is Off). The
 * VM must not run: the caller holds its lock and has checked. */
MUST_CHECK int checkpoint_restore(const char *root, const char *vm, const char *name, char *err, size_t errlen);
MUST_CHECK int checkpoint_remove(const char *root, const char *vm, const char *name, char *err, size_t errlen);

#endif

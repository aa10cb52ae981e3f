/* The VMM: one running VM and everything around it. It owns the machine
 * configuration, the boot files, the machine itself (built anew on a guest
 * reboot), the console hub, the control API server, pause, resume and stop,
 * the signals that stop it and, for a VM of the store, its run lock, pid and
 * exit records and detaching into the background. The command line, the
 * control API and later other APIs are front ends over it: it prints nothing
 * and never ends the process; failures come back as -errno with their text.
 *
 * A run: vmm_create (or vmm_create_stored), vmm_check_boot, optionally
 * vmm_detach, vmm_start, vmm_boot, vmm_run, vmm_destroy. Between vmm_boot
 * and the end of vmm_run, any thread may pause, resume, stop or ask. */
#ifndef NESTVM_VMM_H
#define NESTVM_VMM_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "migrate.h"
#include "sandbox.h"
#include "store.h"
#include "vm.h"
#include "vmconfig.h"
#include "vmstate.h"

enum vmm_on_reboot { VMM_REBOOT_EXIT, VMM_REBOOT_RESTART };

/* How a VM runs, apart from what it is. The VMM keeps these pointers: what
 * they point to lives as long as the VMM. */
struct vmm_options {
	const char *kvm_path;           /* NULL: /dev/kvm */
	bool skip_probe;                /* boot even where KVM emulates guest kernel code */
	enum vmm_on_reboot on_reboot;
	const char *store;              /* the store (NULL: the default): switches, stored VMs */
	const char *console_log;        /* append COM1's output here; NULL: standard output */
	const char *console_socket;     /* serve the console here; NULL: none */
	const char *api_socket;         /* serve an API here; NULL: none */
	api_handler_fn api_handler;     /* which: vmm_api_handler, nestvm's control API */
	bool console_tty;               /* standard input feeds COM1; Ctrl-A x stops the VM */
	bool signals;                   /* SIGINT, SIGTERM and SIGHUP stop the VM */
	bool no_seccomp;                /* no system-call filters (--no-seccomp; vm.conf's no-seccomp too) */
	bool start_paused;              /* the first machine's vCPUs wait for vmm_resume */
	/* Resume this saved state instead of booting the kernel. A stored VM
	 * that is Saved resumes its own (STORE_SAVED) without being told. */
	const char *restore;
	/* Or take a migrating VM: its stream on incoming_fd, whose head is
	 * read. vmm_create_stored takes both over when it succeeds, and boot
	 * answers the source on the fd. */
	struct vmstate_load *incoming;
	int incoming_fd;
};

/* Why a VMM ended, as its exit record says. */
struct vmm_exit {
	enum vm_stop_reason why;        /* VM_STOP_NONE: it did not start, or a restart failed */
	int signal;                     /* the signal that stopped it, or 0 */
	char reason[64];                /* poweroff, reboot, fault, stopped by request, start failed ... */
	char detail[1024];              /* the fault's diagnosis, the signal, what failed */
	uint64_t guest_touched;         /* guest memory the guest touched, in bytes */
	bool have_memory;               /* with dynamic memory: the balloon's figures */
	struct virtio_balloon_info memory;
	struct vm_boot_report boot;     /* the last boot's milestones */
	char warning[STORE_PATH_MAX + 160];     /* a stored VM's pid or exit record not written; "" */
};

/* A migration out of this VMM, as it goes. */
struct vmm_migration {
	const char *state;              /* NULL: none yet; running, failed */
	unsigned int round;
	uint64_t sent, memory, disk, dirty, rate, dirty_rate;
	char error[512];
};

/* A running VM as it stands now. */
struct vmm_status {
	const char *name;               /* NULL for a VM not in the store */
	const char *state;              /* Starting, Running, Paused, Stopping */
	int pid;
	uint64_t uptime_s;
	bool have_memory;               /* with dynamic memory: the balloon's figures */
	struct virtio_balloon_info memory;
	struct vmm_migration migration;
	struct sandbox_info sandbox;    /* what of the sandbox is in force */
};

struct vmm;

/* A VMM that resumes the saved state at path, a machine of the
 * configuration the state carries, or of cfg where a front end keeps more
 * of it than the state's configuration says (TAP devices, read-only disks,
 * the vsock's socket): the state's devices must match cfg's, which loading
 * them checks. */
MUST_CHECK int vmm_create_restored(struct vmm **out, const char *path, const struct vmconfig *cfg,
				   const struct vmm_options *opt, char *err, size_t errlen);
/* A VMM for the machine cfg: validated, its adapters' sockets found. */
MUST_CHECK int vmm_create(struct vmm **out, const struct vmconfig *cfg, const struct vmm_options *opt,
			  char *err, size_t errlen);
/* A VMM for the VM name of the store (opt->store): under the VM's lock,
 * the stored VM as a machine configuration and its run lock, held for as
 * long as the VMM lives. Its console log and sockets default to its
 * directory. -ENOENT: no such VM; -EBUSY: another command holds its lock;
 * -EALREADY: it runs; else its configuration does not load. */
MUST_CHECK int vmm_create_stored(struct vmm **out, const char *name, const struct vmm_options *opt,
				 char *err, size_t errlen);
/* Opens the kernel and initrd, checks the kernel's header and that the
 * initrd fits, and (unless skip_probe) that KVM runs guest kernel code at
 * hardware speed. The files are read into guest memory at each boot. */
MUST_CHECK int vmm_check_boot(struct vmm *v, char *err, size_t errlen);
/* Goes into the background (a new session, standard output and error to
 * the console log, which it opens). Returns 0 twice: in this process, with
 * *parent true, once the VMM has booted or failed (then -EIO and err says
 * why); in the VMM's process with *parent false, which goes on. */
MUST_CHECK int vmm_detach(struct vmm *v, bool *parent, char *err, size_t errlen);
/* The VMM's own plumbing: the console log, a stored VM's records, the
 * signals and the console hub. */
MUST_CHECK int vmm_start(struct vmm *v, char *err, size_t errlen);
/* Builds the machine and serves the control API and the terminal console.
 * After a failure of vmm_start or vmm_boot the VMM has ended: its exit
 * record says so and a waiting vmm_detach has been told. */
MUST_CHECK int vmm_boot(struct vmm *v, char *err, size_t errlen);
/* Runs the VM until it stops for good (a reboot with on_reboot restart
 * builds the machine anew), then ends the VMM: the console and API closed,
 * a stored VM's exit record written. */
void vmm_run(struct vmm *v, struct vmm_exit *ex);
/* Frees what the VMM holds; a stored VM's run lock goes with it. */
void vmm_destroy(struct vmm *v);

/* From any thread while it runs. -EAGAIN between a reboot's two machines. */
MUST_CHECK int vmm_pause(struct vmm *v);
MUST_CHECK int vmm_resume(struct vmm *v);
MUST_CHECK int vmm_power_button(struct vmm *v);
/* Ctrl-Alt-Del on the guest's keyboard. */
MUST_CHECK int vmm_ctrl_alt_del(struct vmm *v);
/* Puts the raw image at path behind disk i of the running VM (a backing
 * file swapped, as container engines do to hot-plug a drive); the VM keeps
 * it across a reboot. -EINVAL for no such disk, -EAGAIN between a reboot's
 * two machines, else why the image did not open, with err. */
MUST_CHECK int vmm_swap_disk(struct vmm *v, unsigned int i, const char *path, char *err, size_t errlen);
/* Stops the VM (why: for the exit record; NULL for the default). */
void vmm_stop(struct vmm *v, const char *why);
/* What a save wrote and how long it took. */
struct vmm_save_info {
	uint64_t bytes;                 /* the file's size */
	uint64_t memory_bytes;          /* guest memory in it */
	uint64_t ns;                    /* from pausing to the file being durable */
};
/* Saves the VM's whole state to path (NULL: a stored VM's own saved state,
 * which makes it Saved), durably (a temporary file, fsync, rename). Then
 * the VM ends ("saved"), or with keep_running it runs on as it was. The
 * disks are flushed first. -EAGAIN between a reboot's two machines. */
MUST_CHECK int vmm_save(struct vmm *v, const char *path, bool keep_running, struct vmm_save_info *info,
			char *err, size_t errlen);
/* A checkpoint of the running VM: paused, its state saved to
 * dir/CHECKPOINT_STATE and its disks copied into dir (see checkpoint.h),
 * then running on as it was. */
MUST_CHECK int vmm_checkpoint(struct vmm *v, const char *dir, struct vmm_save_info *info, char *err, size_t errlen);
/* Starts migrating the running VM live to the address to (unix:PATH or
 * tcp:HOST:PORT, where nestvm vm receive listens), on a thread of its own;
 * vmm_status says how it goes. Once the destination has it, the VM ends here
 * ("migrated"); if anything fails before, it runs on here as it was. */
MUST_CHECK int vmm_migrate(struct vmm *v, const char *to, char *err, size_t errlen);
/* Dynamic memory's target, clamped to its bounds: -ENOTSUP without it. */
MUST_CHECK int vmm_set_memory(struct vmm *v, uint64_t bytes, uint64_t *applied);
void vmm_status(struct vmm *v, struct vmm_status *st);

/* nestvm's control API over a VMM (vmm_api.c), a front end like the
 * command line: opaque is the struct vmm. */
void vmm_api_handler(void *opaque, const struct api_request *req, struct json *reply);

/* ---- a stored VM's VMM, seen from another process (vmm_remote.c) ---- */

/* What a stored VM is doing, derived: Off unless a VMM holds its run lock
 * (then the reason it last ended, from its exit record or pid file);
 * Starting until its control API answers, then as the VMM says. */
struct vmm_state {
	char state[16];                 /* Off, Starting, Running, Paused, Stopping */
	int pid;                        /* the VMM's, 0 when Off */
	uint64_t memory_assigned;       /* with dynamic memory, from the VMM; else 0 */
	char last_exit[1200];           /* when Off: why the last VMM ended; "" if never run */
};
void vmm_state(const char *root, const char *name, struct vmm_state *st);
bool vmm_state_is_off(const struct vmm_state *st);
/* Off, its state saved (STORE_SAVED): starting it resumes that state. */
bool vmm_state_is_saved(const struct vmm_state *st);
/* Sends a control API command to the VM's VMM: 0 when it answered ok,
 * -EPROTO when it refused (reply holds the answer), else -errno. */
MUST_CHECK int vmm_call(const char *root, const char *name, const char *cmd, struct api_object *reply,
			int timeout_ms);
/* The same for a request with its arguments (a save). */
MUST_CHECK int vmm_call_request(const char *root, const char *name, const struct api_request *req,
				struct api_object *reply, int timeout_ms);
/* Connects to the VM's console socket (see console_attach): the fd. */
MUST_CHECK int vmm_console_connect(const char *root, const char *name);
/* Waits up to timeout_ms for the VM's VMM to end; true once it has. */
bool vmm_wait_off(const char *root, const char *name, int timeout_ms);

#endif

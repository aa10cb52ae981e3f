/* The VMM: a running VM with its machine, rebuilt on a reboot, its console
 * hub, control API, signals, detaching and a stored VM's run lock and
 * records. One struct vmm per running VM; nothing in file statics. */
#include "vmm.h"
#include "checkpoint.h"
#include "console.h"
#include "net/switch.h"
#include "sandbox.h"
#include "store.h"
#include "vmstate.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VMM_PATH_MAX (STORE_PATH_MAX + 200)

struct vmm {
	struct vmconfig cfg;
	struct vmm_options opt;

	/* A VM of the store: its directory, run lock and default paths. */
	bool stored;
	int run_lock;
	char dir[STORE_PATH_MAX + 80];
	char log_path[VMM_PATH_MAX], api_path[VMM_PATH_MAX], con_path[VMM_PATH_MAX];

	/* What the machine is built from, at each boot. */
	struct boot_blob kernel, initrd;
	struct vm_disk disks[VMCONFIG_MAX_DISKS];
	struct vm_nic nics[VMCONFIG_MAX_NICS];
	char nic_socks[VMCONFIG_MAX_NICS][VMM_PATH_MAX];
	char nic_labels[VMCONFIG_MAX_NICS][VMCONFIG_NAME_MAX + 16];
	struct vm_config machine;

	/* The machine; lock covers live and vm between a reboot's two
	 * machines, input lets console input finish before one goes. */
	struct vm *vm;
	pthread_mutex_t lock;
	pthread_rwlock_t input;
	bool live;
	bool stop_asked;                /* a stop came while no machine was live */
	_Atomic bool stopping;
	_Atomic int stop_signal;
	_Atomic bool closing;
	uint64_t started_ns;

	/* The plumbing around it. */
	int log_fd;
	int ready_fd;                   /* detached: the pipe to the waiting parent */
	int com1_fd;
	struct console_hub *hub;
	struct console_tty *tty;
	struct api_server *api;
	sigset_t signals;
	pthread_t sig_thread;
	bool sig_started;
	bool ended;
	int pid_error;

	/* Resuming a saved state: its head is read, the rest waits for the
	 * machine. A stored VM's own saved state goes once it is resumed. */
	struct vmstate_load *restore;
	int restore_fd;
	char restore_path[VMM_PATH_MAX];
	bool restore_is_own;
	/* The VM was saved and ends for that. */
	bool saved;
	char saved_path[VMM_PATH_MAX];

	/* Taking a migrating VM: answer on this fd; write its disks. */
	int incoming_fd;
	int disk_fd[VMCONFIG_MAX_DISKS];
	int tap_fd[VMCONFIG_MAX_NICS];  /* each TAP adapter's device, held for every machine */

	/* Migrating out. */
	pthread_t mig_thread;
	bool mig_started;
	_Atomic bool mig_abort;
	_Atomic int mig_state;          /* enum vmm_mig_state */
	struct migrate_progress mig;
	char mig_to[VMM_PATH_MAX];
	char mig_error[512];
	bool migrated;
	uint64_t mig_downtime_ms, mig_total_ms;
};

enum vmm_mig_state { VMM_MIG_NONE, VMM_MIG_RUNNING, VMM_MIG_FAILED };

static int vmm_fail(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int vmm_fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* ---- creating ---- */

/* The disks and adapters as the machine takes them: adapters find their
 * switch's socket in the store and are named for the switch's port list. */
static int vmm_devices(struct vmm *v, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < v->cfg.ndisks; i++)
		v->disks[i] = (struct vm_disk){ v->cfg.disks[i].path, v->cfg.disks[i].read_only };
	for (unsigned int i = 0; i < v->cfg.nnics; i++) {
		const struct vmconfig_nic *c = &v->cfg.nics[i];
		struct vm_nic *n = &v->nics[i];
		char label[sizeof(v->nic_labels[i])];
		int r;

		*n = (struct vm_nic){ .label = v->nic_labels[i], .mac_spoofing = c->mac_spoofing };
		memcpy(n->mac, c->mac, sizeof(n->mac));
		if (v->cfg.name[0])
			snprintf(label, sizeof(label), "%.*s/net%u", VMCONFIG_NAME_MAX, v->cfg.name, i);
		else
			snprintf(label, sizeof(label), "run-%d/net%u", (int)getpid(), i);
		memcpy(v->nic_labels[i], label, sizeof(label));
		if (c->tap[0]) {
			/* Opened once, here, while the VMM may still create the
			 * device: once sandboxed it could not again, and a TAP
			 * nestvm created vanishes with its last descriptor. */
			n->tap = c->tap;
			r = net_tap_open(c->tap, true, err, errlen);
			if (r < 0)
				return r;
			v->tap_fd[i] = n->tap_fd = r;
			n->tap_held = true;
			continue;
		}
		r = switchd_path(v->opt.store, c->sw, SWITCHD_PORTS_SOCK, v->nic_socks[i], sizeof(v->nic_socks[i]));
		if (r < 0)
			return vmm_fail(err, errlen, r, "network adapter %u: switch '%s': %s", i, c->sw, strerror(-r));
		n->switch_sock = v->nic_socks[i];
	}
	return 0;
}

int vmm_create(struct vmm **out, const struct vmconfig *cfg, const struct vmm_options *opt, char *err, size_t errlen)
{
	struct vmm *v;
	int r;

	r = vmconfig_validate(cfg, &vmconfig_conf_names, err, errlen);
	if (r < 0)
		return r;
	v = calloc(1, sizeof(*v));
	if (!v)
		return vmm_fail(err, errlen, -ENOMEM, "out of memory");
	v->cfg = *cfg;
	v->opt = *opt;
	v->run_lock = v->log_fd = v->ready_fd = v->restore_fd = v->incoming_fd = -1;
	for (unsigned int i = 0; i < VMCONFIG_MAX_DISKS; i++)
		v->disk_fd[i] = -1;
	for (unsigned int i = 0; i < VMCONFIG_MAX_NICS; i++)
		v->tap_fd[i] = -1;
	v->com1_fd = STDOUT_FILENO;
	v->kernel = (struct boot_blob)BOOT_BLOB_MEM(NULL, 0);
	v->initrd = (struct boot_blob)BOOT_BLOB_MEM(NULL, 0);
	pthread_mutex_init(&v->lock, NULL);
	pthread_rwlock_init(&v->input, NULL);
	r = vmm_devices(v, err, errlen);
	if (r < 0) {
		vmm_destroy(v);
		return r;
	}
	*out = v;
	return 0;
}

/* The run lock: held for as long as this VMM lives, so that "alive" needs
 * no pid file that a dead VMM leaves behind. */
static int vmm_claim(struct vmm *v)
{
	char path[VMM_PATH_MAX + 16];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", v->dir, STORE_RUN_LOCK);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	/* Probes hold it shared for a moment: retry briefly. */
	for (int i = 0; i < 100; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			v->run_lock = fd;
			return 0;
		}
		if (errno != EWOULDBLOCK)
			break;
		nanosleep(&(struct timespec){ 0, 20 * 1000000 }, NULL);
	}
	close(fd);
	return -EALREADY;
}

/* Opens a saved state and reads its head; *cfg (unless NULL) gets the
 * configuration it carries. The loader stays with the VMM until the machine takes the rest. */
static int vmm_open_state(struct vmm *v, const char *path, bool own, struct vmconfig *cfg, char *err, size_t errlen)
{
	char why[1024];
	struct stat st;
	int r;

	snprintf(v->restore_path, sizeof(v->restore_path), "%s", path);
	v->restore_is_own = own;
	/* The store's own file is never a link; a file named by hand may be. */
	v->restore_fd = open(path, O_RDONLY | O_CLOEXEC | (own ? O_NOFOLLOW : 0));
	if (v->restore_fd < 0 || fstat(v->restore_fd, &st) < 0)
		return vmm_fail(err, errlen, -errno, "saved state '%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return vmm_fail(err, errlen, -EINVAL, "saved state '%s': not a regular file", path);
	v->restore = calloc(1, sizeof(*v->restore));
	if (!v->restore)
		return vmm_fail(err, errlen, -ENOMEM, "out of memory");
	r = vmstate_load_head(v->restore, v->restore_fd, why, sizeof(why));
	if (r < 0)
		return vmm_fail(err, errlen, r, "saved state '%s': %s", path, why);
	if (!cfg)
		return 0;
	r = store_parse_machine(v->restore->config_text, strlen(v->restore->config_text), path, cfg, why,
				sizeof(why));
	if (r < 0)
		return vmm_fail(err, errlen, r, "saved state '%s': its configuration: %s", path, why);
	return 0;
}

int vmm_create_restored(struct vmm **out, const char *path, const struct vmconfig *given,
			const struct vmm_options *opt, char *err, size_t errlen)
{
	struct vmm probe = { .restore_fd = -1 };
	struct vmconfig *cfg = given ? NULL : calloc(1, sizeof(*cfg));
	struct vmm_options o = *opt;
	int r;

	if (!given && !cfg)
		return vmm_fail(err, errlen, -ENOMEM, "out of memory");
	r = vmm_open_state(&probe, path, false, cfg, err, errlen);
	o.restore = path;
	if (r == 0)
		r = vmm_create(out, given ? given : cfg, &o, err, errlen);
	if (r == 0) {
		(*out)->restore = probe.restore;
		(*out)->restore_fd = probe.restore_fd;
		memcpy((*out)->restore_path, probe.restore_path, sizeof(probe.restore_path));
		probe.restore = NULL;
		probe.restore_fd = -1;
	}
	if (probe.restore) {
		vmstate_load_free(probe.restore);
		free(probe.restore);
	}
	if (probe.restore_fd >= 0)
		close(probe.restore_fd);
	free(cfg);
	return r;
}

/* A Saved VM resumes its state only into the machine it was saved from. */
static int vmm_check_same_machine(const struct vmconfig *a, const struct vmconfig *b, char *err, size_t errlen)
{
	const char *what = a->memory != b->memory ? "memory" : a->cpus != b->cpus ? "processors" :
			   a->expose_virt != b->expose_virt ? "the virtualization extensions" :
			   a->dynamic_memory != b->dynamic_memory || a->memory_max != b->memory_max ? "dynamic memory" :
			   a->ndisks != b->ndisks ? "disks" : a->nnics != b->nnics ? "network adapters" :
			   a->no_rng != b->no_rng ? "the rng" : NULL;

	if (!what)
		return 0;
	return vmm_fail(err, errlen, -EINVAL, "its %s changed since it was saved", what);
}

int vmm_create_stored(struct vmm **out, const char *name, const struct vmm_options *opt, char *err, size_t errlen)
{
	char root[STORE_PATH_MAX];
	struct vmconfig *cfg;
	struct vmm *v = NULL;
	int lock, r;

	if (store_root(opt->store, root, sizeof(root)) < 0)
		return vmm_fail(err, errlen, -ENOENT, "no store directory: set --store DIR or NESTVM_STORE");
	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return vmm_fail(err, errlen, -ENOMEM, "out of memory");
	/* Under the VM's lock: nobody changes it between reading and running. */
	lock = store_lock(root, name, 10000);
	if (lock < 0 && lock != -ENOENT) {
		r = vmm_fail(err, errlen, lock, "VM '%s': %s", name,
			     lock == -EBUSY ? "another nestvm command holds its lock" : strerror(-lock));
		goto out;
	}
	r = store_load_machine(root, name, cfg, err, errlen);
	if (r == 0)
		r = vmm_create(&v, cfg, opt, err, errlen);
	if (r < 0)
		goto out;
	v->stored = true;
	if (store_path(v->dir, sizeof(v->dir), root, name, NULL) < 0) {
		r = vmm_fail(err, errlen, -ENAMETOOLONG, "VM '%s': the store path is too long", name);
		goto out;
	}
	snprintf(v->log_path, sizeof(v->log_path), "%s/%s", v->dir, STORE_CONSOLE_LOG);
	snprintf(v->api_path, sizeof(v->api_path), "%s/%s", v->dir, STORE_API_SOCK);
	snprintf(v->con_path, sizeof(v->con_path), "%s/%s", v->dir, STORE_CONSOLE_SOCK);
	if (!v->opt.console_log)
		v->opt.console_log = v->log_path;
	if (!v->opt.api_socket)
		v->opt.api_socket = v->api_path;
	if (!v->opt.console_socket)
		v->opt.console_socket = v->con_path;
	r = vmm_claim(v);
	if (r < 0) {
		vmm_fail(err, errlen, r, "VM '%s' is already running", name);
		goto out;
	}
	if (opt->incoming) {
		/* A migrating VM: taken over below, once nothing can fail. */
	} else if (!opt->restore) {
		/* A Saved VM resumes where it was. */
		char path[VMM_PATH_MAX + 16];
		struct vmconfig *saved;

		snprintf(path, sizeof(path), "%s/%s", v->dir, STORE_SAVED);
		if (access(path, F_OK) == 0) {
			char why[1024];

			saved = calloc(1, sizeof(*saved));
			r = saved ? vmm_open_state(v, path, true, saved, err, errlen) : -ENOMEM;
			if (r == 0 && vmm_check_same_machine(saved, cfg, why, sizeof(why)) < 0)
				r = vmm_fail(err, errlen, -EINVAL, "VM '%s' is Saved, but %s: discard its saved state "
					     "(nestvm vm discard-saved %s) to boot it anew", name, why, name);
			free(saved);
		}
	}
out:
	store_unlock(lock);
	free(cfg);
	if (r < 0) {
		vmm_destroy(v);
		return r;
	}
	if (opt->incoming) {
		/* Its head is read; the rest comes at boot. On failure before
		 * here the caller still holds it, to answer the source. */
		v->restore = opt->incoming;
		v->restore_fd = v->incoming_fd = opt->incoming_fd;
		snprintf(v->restore_path, sizeof(v->restore_path), "the migration stream");
		v->opt.incoming = NULL;
		v->opt.incoming_fd = -1;
	}
	*out = v;
	return 0;
}

/* ---- the boot files ---- */

/* Kernel and initrd are read straight into guest memory at each boot: here
 * they are only opened and sized. */
static int vmm_open_file(const char *what, const char *path, struct boot_blob *b, char *err, size_t errlen)
{
	const char *why;
	int r = boot_blob_open(b, path, &why);

	return r < 0 ? vmm_fail(err, errlen, r, "%s '%s': %s", what, path, why) : 0;
}

static int vmm_probe(struct vmm *v, char *err, size_t errlen)
{
	const char *dev = v->opt.kvm_path ? v->opt.kvm_path : "/dev/kvm";
	double mips = 0;
	int r = vm_probe_speed(v->opt.kvm_path, &mips);

	if (r == -EIO)
		return vmm_fail(err, errlen, r,
				"%s: a test guest did not run to completion; KVM on this host is not usable", dev);
	if (r < 0)
		return 0;   /* vm_create will report the real problem */
	if (mips < VM_PROBE_MIN_MIPS)
		return vmm_fail(err, errlen, -ENOTSUP,
				"%s runs guest kernel code at %.1f million instructions/s: it is emulated, not "
				"hardware-assisted, and a Linux guest cannot boot at that speed. Use a host with VT-x or "
				"AMD-V, or the simulated host (scripts/simhost); --skip-probe boots anyway", dev, mips);
	return 0;
}

int vmm_check_boot(struct vmm *v, char *err, size_t errlen)
{
	uint8_t hdr[BOOT_HDR_BYTES];
	const char *why;
	size_t n;
	int r;

	if (v->restore) {
		char ignored[256];

		/* The kernel serves only a later reboot: it may have gone. */
		if (vmm_open_file("kernel", v->cfg.kernel, &v->kernel, ignored, sizeof(ignored)) == 0 &&
		    v->cfg.initrd[0])
			(void)vmm_open_file("initrd", v->cfg.initrd, &v->initrd, ignored, sizeof(ignored));
		r = v->opt.skip_probe ? 0 : vmm_probe(v, err, errlen);
		if (r < 0 && v->incoming_fd >= 0)
			migrate_send_ack(v->incoming_fd, err);
		return r;
	}
	r = vmm_open_file("kernel", v->cfg.kernel, &v->kernel, err, errlen);
	if (r == 0 && v->cfg.initrd[0])
		r = vmm_open_file("initrd", v->cfg.initrd, &v->initrd, err, errlen);
	if (r < 0)
		return r;
	n = (size_t)MIN(v->kernel.size, (uint64_t)sizeof(hdr));
	r = boot_blob_read(&v->kernel, 0, hdr, n);
	if (r < 0)
		return vmm_fail(err, errlen, r, "kernel '%s': %s", v->cfg.kernel, strerror(-r));
	if (boot_check_kernel(hdr, n, v->kernel.size, &why) < 0)
		return vmm_fail(err, errlen, -EINVAL, "kernel '%s': %s", v->cfg.kernel, why);
	if (v->initrd.size >= v->cfg.memory)
		return vmm_fail(err, errlen, -EINVAL,
				"initrd '%s' is %llu MiB, larger than the guest's %llu MiB of memory: raise --memory",
				v->cfg.initrd, (unsigned long long)(v->initrd.size >> 20),
				(unsigned long long)(v->cfg.memory >> 20));
	return v->opt.skip_probe ? 0 : vmm_probe(v, err, errlen);
}

/* ---- detaching ---- */

static int vmm_open_log(struct vmm *v, char *err, size_t errlen)
{
	if (!v->opt.console_log || v->log_fd >= 0)
		return 0;
	v->log_fd = open(v->opt.console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (v->log_fd < 0)
		return vmm_fail(err, errlen, -errno, "console log '%s': %s", v->opt.console_log, strerror(errno));
	return 0;
}

int vmm_detach(struct vmm *v, bool *parent, char *err, size_t errlen)
{
	char msg[1100];
	int r;

	*parent = true;
	if (!v->opt.console_log)
		return vmm_fail(err, errlen, -EINVAL, "detaching needs a console log: the console must go somewhere");
	r = vmm_open_log(v, err, errlen);
	if (r < 0)
		return r;
	r = util_daemon_fork(&v->ready_fd);
	if (r < 0)
		return vmm_fail(err, errlen, r, "detaching: %s", strerror(-r));
	if (r == 0) {
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (nul >= 0)
			dup2(nul, STDIN_FILENO);
		dup2(v->log_fd, STDOUT_FILENO);
		dup2(v->log_fd, STDERR_FILENO);
		*parent = false;
		return 0;
	}
	/* The VMM's first word: "ok", or why it failed. */
	r = util_daemon_wait(v->ready_fd, msg, sizeof(msg), -1);
	v->ready_fd = -1;
	if (!strcmp(msg, "ok"))
		return 0;
	if (r > 0)
		return vmm_fail(err, errlen, -EIO, "%s", msg);
	return vmm_fail(err, errlen, -EIO, "the VMM ended while starting; see %s", v->opt.console_log);
}

static void vmm_tell_parent(struct vmm *v, const char *msg)
{
	if (v->ready_fd < 0)
		return;
	(void)!util_write_all(v->ready_fd, msg, strlen(msg));
	close(v->ready_fd);
	v->ready_fd = -1;
}

/* ---- records of a stored VM ---- */

static void vmm_write_pid(struct vmm *v)
{
	char text[32], path[VMM_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/%s", v->dir, STORE_EXIT);
	unlink(path);
	snprintf(text, sizeof(text), "%d\n", (int)getpid());
	v->pid_error = store_write_atomic(v->dir, STORE_PID, text, strlen(text));
}

/* The exit record that "nestvm vm" shows as the reason a VM is Off. */
static void vmm_write_exit(struct vmm *v, struct vmm_exit *ex)
{
	char text[1400], line[1024];
	size_t n;
	int r;

	snprintf(line, sizeof(line), "%s", ex->detail);
	line[strcspn(line, "\n")] = 0;
	n = (size_t)snprintf(text, sizeof(text), "reason = %s\ndetail = %s\ntime = %lld\npid = %d\n", ex->reason, line,
			     (long long)time(NULL), (int)getpid());
	r = store_write_atomic(v->dir, STORE_EXIT, text, MIN(n, sizeof(text) - 1));
	if (r < 0)
		snprintf(ex->warning, sizeof(ex->warning), "%s/%s: could not write the exit record: %s", v->dir,
			 STORE_EXIT, strerror(-r));
	else if (v->pid_error < 0)
		snprintf(ex->warning, sizeof(ex->warning), "%s/%s: could not record the VMM's pid: %s", v->dir,
			 STORE_PID, strerror(-v->pid_error));
}

/* ---- the machine, and what feeds it ---- */

static void vmm_console_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct vmm *v = opaque;

	pthread_rwlock_rdlock(&v->input);
	pthread_mutex_lock(&v->lock);
	if (!v->live) {
		pthread_mutex_unlock(&v->lock);
		pthread_rwlock_unlock(&v->input);
		return;
	}
	pthread_mutex_unlock(&v->lock);
	vm_console_input(v->vm, buf, len);
	pthread_rwlock_unlock(&v->input);
}

static void vmm_tty_quit(void *opaque)
{
	vmm_stop(opaque, NULL);
}

/* SIGINT, SIGTERM and SIGHUP stop the VM; the exit says which. */
static void *vmm_signal_thread(void *arg)
{
	struct vmm *v = arg;
	int sig;

	sandbox_enter(SANDBOX_ROLE_SIGNAL);
	if (sigwait(&v->signals, &sig) == 0 && !atomic_load(&v->closing)) {
		atomic_store(&v->stop_signal, sig);
		vmm_stop(v, NULL);
	}
	return NULL;
}

/* Builds a machine from v->machine, under the lock; a stop asked while
 * there was none stops it at once. */
static int vmm_build(struct vmm *v)
{
	int r;

	pthread_mutex_lock(&v->lock);
	r = vm_create(v->vm, &v->machine);
	v->live = r == 0;
	if (v->live && v->stop_asked)
		vm_request_stop(v->vm, VM_STOP_REQUEST, NULL);
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* Takes the machine down: no more console input into it, then gone. */
static void vmm_unbuild(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	v->live = false;
	pthread_mutex_unlock(&v->lock);
	vm_console_close_input(v->vm);
	pthread_rwlock_wrlock(&v->input);
	pthread_rwlock_unlock(&v->input);
	vm_destroy(v->vm);
}

/* Ends the VMM: the console and API closed, the record written, the run
 * lock released and a waiting parent told. */
static void vmm_end(struct vmm *v, struct vmm_exit *ex)
{
	atomic_store(&v->stopping, true);
	console_tty_stop(v->tty);
	v->tty = NULL;
	api_server_stop(v->api);
	v->api = NULL;
	console_hub_stop(v->hub);
	v->hub = NULL;
	if (v->stored)
		vmm_write_exit(v, ex);
	/* A start that failed is reported once the VM is seen as Off. */
	if (v->ready_fd >= 0) {
		if (v->run_lock >= 0)
			close(v->run_lock);
		v->run_lock = -1;
		vmm_tell_parent(v, ex->detail);
	}
	v->ended = true;
}

static int vmm_fail_start(struct vmm *v, char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int vmm_fail_start(struct vmm *v, char *err, size_t errlen, int r, const char *fmt, ...)
{
	struct vmm_exit ex = { .why = VM_STOP_NONE };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ex.detail, sizeof(ex.detail), fmt, ap);
	va_end(ap);
	snprintf(ex.reason, sizeof(ex.reason), "start failed");
	/* A source waiting to hear hears why. */
	if (v->incoming_fd >= 0) {
		migrate_send_ack(v->incoming_fd, ex.detail);
		v->incoming_fd = -1;
	}
	vmm_end(v, &ex);
	snprintf(err, errlen, "%s", ex.detail);
	return r;
}

/* The sandbox this VMM's threads enter (sandbox.h), each at its start. Its
 * files at run time: a stored VM's directory (records, saves, checkpoints,
 * sockets), its disks (a reboot and a migration's destination open them
 * again), /dev/kvm and /dev/net/tun (a reboot's machine), the console log.
 * The kernel and initrd stay open from vmm_check_boot. */
static int vmm_sandbox(struct vmm *v, char *err, size_t errlen)
{
	struct sandbox_path p[SANDBOX_PATHS_MAX];
	struct sandbox_config sc = {
		.seccomp = !v->opt.no_seccomp && !v->cfg.no_seccomp, .landlock = true, .paths = p,
	};
	bool tap = false;
	size_t n = 0;

	/* A one-off VM with a control API is told where to save, checkpoint
	 * or send itself only at run time, in paths no rule here can know:
	 * as in Firecracker mode, its files are left to the caller's jail. */
	if (!v->stored && v->opt.api_socket) {
		sc.landlock = false;
		sc.no_landlock = "a one-off VM's control API names files at run time";
	}
	if (v->stored)
		p[n++] = (struct sandbox_path){ v->dir, SANDBOX_TREE };
	for (unsigned int i = 0; i < v->cfg.ndisks; i++)
		p[n++] = (struct sandbox_path){ v->cfg.disks[i].path,
						SANDBOX_READ | (v->cfg.disks[i].read_only ? 0 : SANDBOX_WRITE) };
	p[n++] = (struct sandbox_path){ v->opt.kvm_path ? v->opt.kvm_path : "/dev/kvm",
					SANDBOX_READ | SANDBOX_WRITE | SANDBOX_DEVICE };
	for (unsigned int i = 0; i < v->cfg.nnics; i++)
		tap |= v->cfg.nics[i].tap[0] != '\0';
	if (tap)
		p[n++] = (struct sandbox_path){ "/dev/net/tun", SANDBOX_READ | SANDBOX_WRITE | SANDBOX_DEVICE };
	if (v->opt.console_log)
		p[n++] = (struct sandbox_path){ v->opt.console_log, SANDBOX_READ | SANDBOX_WRITE };
	sc.npaths = n;
	return sandbox_setup(&sc, err, errlen);
}

int vmm_start(struct vmm *v, char *err, size_t errlen)
{
	int r;

	r = vmm_open_log(v, err, errlen);
	if (r < 0)
		return r;
	/* Before the first thread of the VMM starts and enters it. */
	r = vmm_sandbox(v, err, errlen);
	if (r < 0)
		return vmm_fail_start(v, err, errlen, r, "%s", err);
	if (v->stored)
		vmm_write_pid(v);
	if (v->opt.signals) {
		sigemptyset(&v->signals);
		sigaddset(&v->signals, SIGINT);
		sigaddset(&v->signals, SIGTERM);
		sigaddset(&v->signals, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &v->signals, NULL);
	}
	if (v->opt.console_log || v->opt.console_socket) {
		r = console_hub_start(&v->hub, v->log_fd >= 0 ? v->log_fd : STDOUT_FILENO,
				      v->log_fd >= 0 ? v->opt.console_log : NULL, v->opt.console_socket,
				      vmm_console_input, v, &v->com1_fd);
		if (r < 0)
			return vmm_fail_start(v, err, errlen, r, "console socket '%s': %s",
					      v->opt.console_socket ? v->opt.console_socket : "", strerror(-r));
	}
	v->started_ns = util_now_ns();
	return 0;
}

/* A migration's disk data, into the VM's disk files, each within its size. */
static int vmm_disk_sink(void *opaque, uint32_t index, uint64_t offset, const void *data, uint32_t len)
{
	struct vmm *v = opaque;
	const uint8_t *p = data;

	if (index >= v->cfg.ndisks)
		return -EINVAL;
	if (v->disk_fd[index] < 0) {
		v->disk_fd[index] = open(v->cfg.disks[index].path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (v->disk_fd[index] < 0)
			return -errno;
	}
	if (offset > v->cfg.disks[index].size || len > v->cfg.disks[index].size - offset)
		return -EFBIG;
	while (len) {
		ssize_t w = pwrite(v->disk_fd[index], p, len, (off_t)offset);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (uint32_t)w;
		offset += (uint64_t)w;
	}
	return 0;
}

int vmm_boot(struct vmm *v, char *err, size_t errlen)
{
	uint64_t min, max;
	int r;

	vmconfig_memory_range(&v->cfg, &min, &max);
	v->machine = (struct vm_config){
		.mem_size = v->cfg.dynamic_memory ? max : v->cfg.memory, .ncpus = v->cfg.cpus,
		.dynamic_memory = v->cfg.dynamic_memory, .memory_min = min, .memory_startup = v->cfg.memory,
		.kernel = v->kernel, .initrd = v->initrd, .cmdline = v->cfg.cmdline,
		.guest_decompress = v->cfg.guest_decompress, .expose_virt = v->cfg.expose_virt, .disks = v->disks, .ndisks = v->cfg.ndisks,
		.nics = v->nics, .nnics = v->cfg.nnics, .rng = !v->cfg.no_rng,
		.vsock_cid = v->cfg.vsock_cid, .vsock_uds = v->cfg.vsock_uds,
		.console_out = v->com1_fd, .kvm_path = v->opt.kvm_path,
	};
	v->machine.restore = v->restore != NULL;
	v->vm = calloc(1, sizeof(*v->vm));
	if (!v->vm)
		return vmm_fail_start(v, err, errlen, -ENOMEM, "out of memory");
	r = vmm_build(v);
	if (r < 0)
		return vmm_fail_start(v, err, errlen, r, "%s", v->vm->err);
	v->machine.restore = false;     /* a reboot boots the kernel */
	if (v->restore) {
		char why[1024];
		bool incoming = v->incoming_fd >= 0;

		if (incoming) {
			v->restore->disk = vmm_disk_sink;
			v->restore->disk_opaque = v;
		}
		r = vmstate_load_rest(v->restore, v->vm, why, sizeof(why));
		vmstate_load_free(v->restore);
		free(v->restore);
		v->restore = NULL;
		for (unsigned int i = 0; i < VMCONFIG_MAX_DISKS; i++)
			if (v->disk_fd[i] >= 0) {
				if (r >= 0 && fdatasync(v->disk_fd[i]) < 0)
					r = -errno;
				close(v->disk_fd[i]);
				v->disk_fd[i] = -1;
			}
		/* The source runs on until it hears that all arrived. */
		if (incoming)
			migrate_send_ack(v->incoming_fd, r < 0 ? why : NULL);
		close(v->restore_fd);
		v->restore_fd = v->incoming_fd = -1;
		if (r < 0) {
			vmm_unbuild(v);
			return vmm_fail_start(v, err, errlen, r, "%s: %s", v->restore_path, why);
		}
		/* The VM runs from it now: it is no longer Saved. */
		if (v->restore_is_own)
			unlink(v->restore_path);
	}
	if (v->opt.start_paused) {
		v->opt.start_paused = false;    /* a reboot's machine runs */
		vm_start_paused(v->vm);
	}
	if (v->opt.signals && pthread_create(&v->sig_thread, NULL, vmm_signal_thread, v) == 0)
		v->sig_started = true;
	if (v->opt.console_tty && console_tty_start(&v->tty, vmm_console_input, vmm_tty_quit, v) < 0)
		v->tty = NULL;          /* the VM runs on without terminal input */
	if (v->opt.api_socket) {
		r = api_server_start(&v->api, v->opt.api_socket, v->opt.api_handler, v);
		if (r < 0) {
			vmm_unbuild(v);
			return vmm_fail_start(v, err, errlen, r, "control API socket '%s': %s", v->opt.api_socket,
					      strerror(-r));
		}
	}
	vmm_tell_parent(v, "ok");
	return 0;
}

/* How the machine stopped, and what it used meanwhile. */
static void vmm_note_stop(struct vmm *v, enum vm_stop_reason why, struct vmm_exit *ex)
{
	int sig = atomic_load(&v->stop_signal);

	ex->why = why;
	ex->signal = why == VM_STOP_REQUEST ? sig : 0;
	snprintf(ex->reason, sizeof(ex->reason), "%s", vm_stop_reason_name(why));
	if (why == VM_STOP_REQUEST && v->migrated) {
		ex->signal = 0;
		snprintf(ex->reason, sizeof(ex->reason), "migrated");
		snprintf(ex->detail, sizeof(ex->detail), "to %.900s in %llu ms (downtime %llu ms, %llu bytes sent)",
			 v->mig_to, (unsigned long long)v->mig_total_ms, (unsigned long long)v->mig_downtime_ms,
			 (unsigned long long)atomic_load(&v->mig.sent));
	} else if (why == VM_STOP_REQUEST && v->saved) {
		ex->signal = 0;
		snprintf(ex->reason, sizeof(ex->reason), "saved");
		snprintf(ex->detail, sizeof(ex->detail), "to %.*s", (int)sizeof(ex->detail) - 4, v->saved_path);
	} else if (ex->signal)
		snprintf(ex->detail, sizeof(ex->detail), "signal %d (%s)", sig, strsignal(sig));
	else
		snprintf(ex->detail, sizeof(ex->detail), "%s", v->vm->diag);
	ex->guest_touched = vm_memory_touched(v->vm);
	vm_boot_report(v->vm, &ex->boot);
	ex->have_memory = vm_memory_info(v->vm, &ex->memory) == 0;
}

void vmm_run(struct vmm *v, struct vmm_exit *ex)
{
	/* Everything is open: the main thread enters the sandbox, and the
	 * vCPUs it starts next inherit its filter under their own. */
	sandbox_enter(SANDBOX_ROLE_MAIN);
	memset(ex, 0, sizeof(*ex));
	for (;;) {
		enum vm_stop_reason why = vm_run(v->vm);

		/* A migration stops with the machine it sends. */
		if (v->mig_started) {
			atomic_store(&v->mig_abort, true);
			pthread_join(v->mig_thread, NULL);
			v->mig_started = false;
		}
		vmm_note_stop(v, why, ex);
		vmm_unbuild(v);
		/* Reboot: a new machine from the same configuration. */
		if (why != VM_STOP_RESET || v->opt.on_reboot != VMM_REBOOT_RESTART)
			break;
		if (vmm_build(v) < 0) {
			ex->why = VM_STOP_NONE;
			snprintf(ex->reason, sizeof(ex->reason), "restart failed");
			snprintf(ex->detail, sizeof(ex->detail), "%s", v->vm->err);
			break;
		}
	}
	vmm_end(v, ex);
}

void vmm_destroy(struct vmm *v)
{
	if (!v)
		return;
	if (v->mig_started) {
		atomic_store(&v->mig_abort, true);
		pthread_join(v->mig_thread, NULL);
	}
	if (!v->ended && v->vm && v->live)
		vmm_unbuild(v);
	console_tty_stop(v->tty);
	api_server_stop(v->api);
	console_hub_stop(v->hub);
	if (v->sig_started) {
		atomic_store(&v->closing, true);
		pthread_kill(v->sig_thread, SIGHUP);
		pthread_join(v->sig_thread, NULL);
	}
	free(v->vm);
	for (unsigned int i = 0; i < VMCONFIG_MAX_NICS; i++)
		if (v->tap_fd[i] >= 0)
			close(v->tap_fd[i]);
	if (v->kernel.fd >= 0)
		close(v->kernel.fd);
	if (v->initrd.fd >= 0)
		close(v->initrd.fd);
	if (v->log_fd >= 0)
		close(v->log_fd);
	if (v->ready_fd >= 0)
		close(v->ready_fd);
	if (v->run_lock >= 0)
		close(v->run_lock);
	if (v->restore) {
		vmstate_load_free(v->restore);
		free(v->restore);
	}
	if (v->restore_fd >= 0)
		close(v->restore_fd);
	for (unsigned int i = 0; i < VMCONFIG_MAX_DISKS; i++)
		if (v->disk_fd[i] >= 0)
			close(v->disk_fd[i]);
	pthread_rwlock_destroy(&v->input);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* ---- while it runs ---- */

/* Runs fn on the live machine; -EAGAIN between a reboot's two machines. */
static int vmm_on_live(struct vmm *v, void (*fn)(struct vm *vm))
{
	int r = -EAGAIN;

	pthread_mutex_lock(&v->lock);
	if (v->live) {
		fn(v->vm);
		r = 0;
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

int vmm_pause(struct vmm *v)
{
	return vmm_on_live(v, vm_pause);
}

int vmm_resume(struct vmm *v)
{
	return vmm_on_live(v, vm_resume);
}

int vmm_power_button(struct vmm *v)
{
	return vmm_on_live(v, vm_power_button);
}

int vmm_ctrl_alt_del(struct vmm *v)
{
	return vmm_on_live(v, vm_ctrl_alt_del);
}

int vmm_swap_disk(struct vmm *v, unsigned int i, const char *path, char *err, size_t errlen)
{
	int r;

	if (i >= v->cfg.ndisks)
		return vmm_fail(err, errlen, -EINVAL, "no disk %u: the VM has %u", i, v->cfg.ndisks);
	if (strlen(path) >= sizeof(v->cfg.disks[i].path))
		return vmm_fail(err, errlen, -ENAMETOOLONG, "disk '%.64s...': path too long", path);
	pthread_mutex_lock(&v->lock);
	r = v->live ? vm_swap_disk(v->vm, i, path) : -EAGAIN;
	if (r == 0)
		snprintf(v->cfg.disks[i].path, sizeof(v->cfg.disks[i].path), "%s", path);
	pthread_mutex_unlock(&v->lock);
	if (r == -EAGAIN)
		return vmm_fail(err, errlen, r, "the VM is between two machines (rebooting): try again");
	if (r < 0)
		return vmm_fail(err, errlen, r, "disk '%s': %s", path,
				r == -EBUSY ? "in use by another VM (locked)" :
				r == -EINVAL ? "not a usable raw image (empty or under 512 bytes)" : strerror(-r));
	return 0;
}

void vmm_stop(struct vmm *v, const char *why)
{
	pthread_mutex_lock(&v->lock);
	atomic_store(&v->stopping, true);
	v->stop_asked = true;
	if (v->live) {
		vm_request_stop(v->vm, VM_STOP_REQUEST, why);
		vm_resume(v->vm);
	}
	pthread_mutex_unlock(&v->lock);
}

/* fsync of the directory holding path, so that a rename in it lasts. */
static int vmm_sync_dir_of(const char *path)
{
	char dir[VMM_PATH_MAX];
	char *slash;
	int fd, r = 0;

	snprintf(dir, sizeof(dir), "%.*s", (int)sizeof(dir) - 1, path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	return r;
}

/* Writes the paused machine's state to path durably: a temporary file
 * beside it, fsync, rename, fsync of the directory. */
static int vmm_write_state(struct vmm *v, const char *path, const char *text, struct vmm_save_info *info,
			   char *err, size_t errlen)
{
	char tmp[VMM_PATH_MAX + 48];
	struct snap_writer w;
	struct stat st;
	int fd, r;

	snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return vmm_fail(err, errlen, -errno, "'%s': %s", tmp, strerror(errno));
	snap_writer_init(&w, fd);
	r = vmstate_save(v->vm, text, &w, err, errlen);
	if (r >= 0 && fsync(fd) < 0)
		r = vmm_fail(err, errlen, -errno, "'%s': fsync: %s", tmp, strerror(errno));
	if (r >= 0 && fstat(fd, &st) == 0)
		info->bytes = (uint64_t)st.st_size;
	close(fd);
	if (r >= 0 && rename(tmp, path) < 0)
		r = vmm_fail(err, errlen, -errno, "'%s': %s", path, strerror(errno));
	if (r >= 0)
		(void)vmm_sync_dir_of(path);
	else
		unlink(tmp);
	info->memory_bytes = r >= 0 ? w.page_bytes : 0;
	return r;
}

/* The live machine paused and locked for a save: 0 with *was_paused, or
 * -EAGAIN (unlocked) when there is none to save. */
static int vmm_hold_for_save(struct vmm *v, bool *was_paused, char *err, size_t errlen)
{
	pthread_mutex_lock(&v->lock);
	if (!v->live || atomic_load(&v->stopping)) {
		pthread_mutex_unlock(&v->lock);
		return vmm_fail(err, errlen, -EAGAIN, "the VM is %s; try again",
				atomic_load(&v->stopping) ? "stopping" : "between reboots");
	}
	*was_paused = vm_is_paused(v->vm);
	vm_pause(v->vm);
	return 0;
}

/* The machine held (vmm_hold_for_save) and its state written to path with
 * its configuration. *held says whether the VM is left paused and locked,
 * as it is after the write, whether the write succeeded or not. */
static int vmm_hold_and_write(struct vmm *v, const char *path, bool *was_paused, bool *held,
			      struct vmm_save_info *info, char *err, size_t errlen)
{
	char *text = store_format(&v->cfg);
	int r;

	*held = false;
	if (!text)
		return vmm_fail(err, errlen, -ENOMEM, "out of memory");
	r = vmm_hold_for_save(v, was_paused, err, errlen);
	if (r >= 0) {
		*held = true;
		r = vmm_write_state(v, path, text, info, err, errlen);
	}
	free(text);
	return r;
}

int vmm_save(struct vmm *v, const char *path, bool keep_running, struct vmm_save_info *info,
	     char *err, size_t errlen)
{
	char own[VMM_PATH_MAX + 16];
	uint64_t t0 = util_now_ns();
	bool was_paused, held;
	int r;

	memset(info, 0, sizeof(*info));
	if (!path) {
		if (!v->stored)
			return vmm_fail(err, errlen, -EINVAL, "a VM not in the store is saved to a file it is given");
		snprintf(own, sizeof(own), "%s/%s", v->dir, STORE_SAVED);
		path = own;
	}
	if (strlen(path) >= VMM_PATH_MAX)
		return vmm_fail(err, errlen, -ENAMETOOLONG, "'%s': path too long", path);
	r = vmm_hold_and_write(v, path, &was_paused, &held, info, err, errlen);
	if (!held)
		return r;
	info->ns = util_now_ns() - t0;
	if (r >= 0 && !keep_running) {
		/* Saved: the VM ends with the state on disk; nothing runs on. */
		v->saved = true;
		snprintf(v->saved_path, sizeof(v->saved_path), "%.*s", (int)sizeof(v->saved_path) - 1, path);
		atomic_store(&v->stopping, true);
		vm_request_stop(v->vm, VM_STOP_REQUEST, "saved");
	}
	/* A failed save leaves the VM running, as it was. */
	if (!was_paused || (r >= 0 && !keep_running))
		vm_resume(v->vm);
	pthread_mutex_unlock(&v->lock);
	return r;
}

int vmm_checkpoint(struct vmm *v, const char *dir, struct vmm_save_info *info, char *err, size_t errlen)
{
	char path[VMM_PATH_MAX + 16];
	uint64_t t0 = util_now_ns();
	bool was_paused, held;
	int r;

	memset(info, 0, sizeof(*info));
	if (strlen(dir) >= VMM_PATH_MAX)
		return vmm_fail(err, errlen, -ENAMETOOLONG, "'%s': path too long", dir);
	snprintf(path, sizeof(path), "%s/%s", dir, CHECKPOINT_STATE);
	/* Memory and disks of one moment: both while the VM stands still
	 * (the save flushes the disks first). */
	r = vmm_hold_and_write(v, path, &was_paused, &held, info, err, errlen);
	if (!held)
		return r;
	if (r >= 0)
		r = checkpoint_copy_disks(&v->cfg, NULL, dir, err, errlen);
	info->ns = util_now_ns() - t0;
	if (!was_paused)
		vm_resume(v->vm);
	pthread_mutex_unlock(&v->lock);
	return r;
}

int vmm_set_memory(struct vmm *v, uint64_t bytes, uint64_t *applied)
{
	int r = -EAGAIN;

	pthread_mutex_lock(&v->lock);
	if (v->live)
		r = vm_set_memory_target(v->vm, bytes, applied);
	pthread_mutex_unlock(&v->lock);
	return r;
}

void vmm_status(struct vmm *v, struct vmm_status *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&v->lock);
	st->name = v->cfg.name[0] ? v->cfg.name : NULL;
	st->state = atomic_load(&v->stopping) ? "Stopping" : v->live && vm_is_paused(v->vm) ? "Paused" : "Running";
	st->pid = (int)getpid();
	st->uptime_s = (util_now_ns() - v->started_ns) / 1000000000ULL;
	st->have_memory = v->live && vm_memory_info(v->vm, &st->memory) == 0;
	pthread_mutex_unlock(&v->lock);
	sandbox_info(&st->sandbox);
	switch (atomic_load(&v->mig_state)) {
	case VMM_MIG_RUNNING: st->migration.state = "running"; break;
	case VMM_MIG_FAILED: st->migration.state = "failed"; break;
	default: break;
	}
	if (st->migration.state) {
		st->migration.round = atomic_load(&v->mig.round);
		st->migration.sent = atomic_load(&v->mig.sent);
		st->migration.memory = atomic_load(&v->mig.memory);
		st->migration.disk = atomic_load(&v->mig.disk);
		st->migration.dirty = atomic_load(&v->mig.dirty);
		st->migration.rate = atomic_load(&v->mig.rate);
		st->migration.dirty_rate = atomic_load(&v->mig.dirty_rate);
		if (atomic_load(&v->mig_state) == VMM_MIG_FAILED)
			snprintf(st->migration.error, sizeof(st->migration.error), "%s", v->mig_error);
	}
}

/* ---- migrating out ---- */

/* The configuration as the destination is to make the VM: disks with their
 * real sizes, which a destination creates them at. */
static char *vmm_config_for_migration(struct vmm *v)
{
	struct vmconfig *c = malloc(sizeof(*c));
	char *text;

	if (!c)
		return NULL;
	*c = v->cfg;
	for (unsigned int i = 0; i < c->ndisks && i < v->vm->nvirtio; i++)
		c->disks[i].size = virtio_blk_bytes(v->vm->vdev[i]);
	text = store_format(c);
	free(c);
	return text;
}

static void *vmm_migrate_thread(void *arg)
{
	struct vmm *v = arg;
	struct migrate_addr a;
	struct snap_writer w;
	struct migrate *m = NULL;
	uint64_t t0 = util_now_ns(), paused_at = 0;
	char err[512] = "", *text = NULL;
	bool was_paused = false, locked = false;
	int fd = -1, r;

	sandbox_enter(SANDBOX_ROLE_API);
	r = migrate_parse_addr(v->mig_to, &a, err, sizeof(err));
	if (r >= 0)
		fd = r = migrate_connect(&a, err, sizeof(err));
	if (r >= 0) {
		snap_writer_init(&w, fd);
		text = vmm_config_for_migration(v);
		r = text ? migrate_begin(&m, v->vm, &w, &v->mig, err, sizeof(err)) : -ENOMEM;
	}
	if (r >= 0)
		r = migrate_precopy(m, text, &v->mig_abort, err, sizeof(err));
	if (r >= 0) {
		pthread_mutex_lock(&v->lock);
		locked = true;
		if (!v->live || atomic_load(&v->stopping) || atomic_load(&v->mig_abort)) {
			snprintf(err, sizeof(err), "the VM stopped meanwhile");
			r = -ECANCELED;
		}
	}
	if (r >= 0) {
		/* Stop and copy: from here to the answer is the downtime. */
		was_paused = vm_is_paused(v->vm);
		paused_at = util_now_ns();
		vm_pause(v->vm);
		r = migrate_finish(m, err, sizeof(err));
		migrate_end(m);
		m = NULL;
		if (r >= 0)
			r = migrate_wait_ack(fd, 120000, err, sizeof(err));
	}
	if (r >= 0) {
		v->mig_downtime_ms = (util_now_ns() - paused_at) / 1000000;
		v->mig_total_ms = (util_now_ns() - t0) / 1000000;
		v->migrated = true;
		atomic_store(&v->stopping, true);
		vm_request_stop(v->vm, VM_STOP_REQUEST, "migrated");
		vm_resume(v->vm);
	} else {
		char why[256];

		/* A destination that hung up may have said why first. */
		if (fd >= 0 && (r == -EPIPE || r == -ECONNRESET || r == -EAGAIN) &&
		    migrate_wait_ack(fd, 2000, why, sizeof(why)) == -EPROTO && strstr(why, "refused"))
			snprintf(err, sizeof(err), "%s", why);
		migrate_end(m);
		m = NULL;
		if (locked && paused_at && !was_paused)
			vm_resume(v->vm);
		snprintf(v->mig_error, sizeof(v->mig_error), "%s", err);
		atomic_store(&v->mig_state, VMM_MIG_FAILED);
	}
	if (locked)
		pthread_mutex_unlock(&v->lock);
	migrate_end(m);
	free(text);
	if (fd >= 0)
		close(fd);
	return NULL;
}

int vmm_migrate(struct vmm *v, const char *to, char *err, size_t errlen)
{
	struct migrate_addr a;
	int r;

	r = migrate_parse_addr(to, &a, err, errlen);
	if (r < 0)
		return r;
	pthread_mutex_lock(&v->lock);
	if (!v->live || atomic_load(&v->stopping)) {
		pthread_mutex_unlock(&v->lock);
		return vmm_fail(err, errlen, -EAGAIN, "the VM is %s; try again",
				atomic_load(&v->stopping) ? "stopping" : "between reboots");
	}
	if (atomic_load(&v->mig_state) == VMM_MIG_RUNNING) {
		pthread_mutex_unlock(&v->lock);
		return vmm_fail(err, errlen, -EBUSY, "a migration is already under way");
	}
	/* A failed migration before this one has ended: its thread is done. */
	if (v->mig_started) {
		pthread_join(v->mig_thread, NULL);
		v->mig_started = false;
	}
	snprintf(v->mig_to, sizeof(v->mig_to), "%s", to);
	memset(&v->mig, 0, sizeof(v->mig));
	v->mig_error[0] = '\0';
	atomic_store(&v->mig_abort, false);
	atomic_store(&v->mig_state, VMM_MIG_RUNNING);
	r = util_start_worker(&v->mig_thread, vmm_migrate_thread, v, "nestvm-migrate");
	v->mig_started = r == 0;
	if (r < 0)
		atomic_store(&v->mig_state, VMM_MIG_NONE);
	pthread_mutex_unlock(&v->lock);
	return r < 0 ? vmm_fail(err, errlen, r, "starting the migration: %s", strerror(-r)) : 0;
}

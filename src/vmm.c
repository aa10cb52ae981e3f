/* The VMM: a running VM with its machine, rebuilt on a reboot, its console
 * hub, control API, signals, detaching and a stored VM's run lock and
 * records. One struct vmm per running VM; nothing in file statics. */
#include "vmm.h"
#include "console.h"
#include "net/switch.h"
#include "store.h"

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
};

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
			n->tap = c->tap;
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
	v->run_lock = v->log_fd = v->ready_fd = -1;
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
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
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
	if (r < 0)
		vmm_fail(err, errlen, r, "VM '%s' is already running", name);
out:
	store_unlock(lock);
	free(cfg);
	if (r < 0) {
		vmm_destroy(v);
		return r;
	}
	*out = v;
	return 0;
}

/* ---- the boot files ---- */

/* Kernel and initrd are read straight into guest memory at each boot: here
 * they are only opened and sized. */
static int vmm_open_file(const char *what, const char *path, struct boot_blob *b, char *err, size_t errlen)
{
	struct stat st;

	b->data = NULL;
	b->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (b->fd < 0 || fstat(b->fd, &st) < 0)
		return vmm_fail(err, errlen, -errno, "%s '%s': %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return vmm_fail(err, errlen, -EINVAL, "%s '%s': not a regular file", what, path);
	b->size = (uint64_t)st.st_size;
	return 0;
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
	v->log_fd = open(v->opt.console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
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
	vmm_end(v, &ex);
	snprintf(err, errlen, "%s", ex.detail);
	return r;
}

int vmm_start(struct vmm *v, char *err, size_t errlen)
{
	int r;

	r = vmm_open_log(v, err, errlen);
	if (r < 0)
		return r;
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
		r = console_hub_start(&v->hub, v->log_fd >= 0 ? v->log_fd : STDOUT_FILENO, v->opt.console_socket,
				      vmm_console_input, v, &v->com1_fd);
		if (r < 0)
			return vmm_fail_start(v, err, errlen, r, "console socket '%s': %s",
					      v->opt.console_socket ? v->opt.console_socket : "", strerror(-r));
	}
	v->started_ns = util_now_ns();
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
		.expose_virt = v->cfg.expose_virt, .disks = v->disks, .ndisks = v->cfg.ndisks,
		.nics = v->nics, .nnics = v->cfg.nnics, .rng = !v->cfg.no_rng,
		.vsock_cid = v->cfg.vsock_cid, .vsock_uds = v->cfg.vsock_uds,
		.console_out = v->com1_fd, .kvm_path = v->opt.kvm_path,
	};
	v->vm = calloc(1, sizeof(*v->vm));
	if (!v->vm)
		return vmm_fail_start(v, err, errlen, -ENOMEM, "out of memory");
	r = vmm_build(v);
	if (r < 0)
		return vmm_fail_start(v, err, errlen, r, "%s", v->vm->err);
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
	if (ex->signal)
		snprintf(ex->detail, sizeof(ex->detail), "signal %d (%s)", sig, strsignal(sig));
	else
		snprintf(ex->detail, sizeof(ex->detail), "%s", v->vm->diag);
	ex->guest_touched = vm_memory_touched(v->vm);
	ex->have_memory = vm_memory_info(v->vm, &ex->memory) == 0;
}

void vmm_run(struct vmm *v, struct vmm_exit *ex)
{
	memset(ex, 0, sizeof(*ex));
	for (;;) {
		enum vm_stop_reason why = vm_run(v->vm);

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
}

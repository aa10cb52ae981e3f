/* "nestvm run": one VM, its serial console on this terminal; or, with
 * --name, a VM of the store, which is how "nestvm vm start" runs its VMM:
 * detached, the console in a log and on a socket, the control API served. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "api.h"
#include "net/switch.h"
#include "store.h"
#include "vm.h"
#include "arch/x86/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

static const char *const reboot_choices[] = { "exit", "restart", NULL };
enum { REBOOT_EXIT, REBOOT_RESTART };

struct run_opts {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t memory;
	bool dynamic_memory;
	uint64_t memory_min, memory_max;
	unsigned int cpus;
	int on_reboot;
	bool nested;
	bool stats;
	bool skip_probe;
	const char *kvm;
	const char *name;
	const char *store;
	const char *console_log;
	const char *api_socket;
	const char *console_socket;
	bool detach;
	struct opt_list disks;          /* FILE[,ro] */
	struct opt_list nics;           /* switch=NAME|tap=IF[,mac=M][,spoofing=on] */
	bool no_rng;
};

#define RUN_OPT(name, s, type, field, meta, help, ...) \
	{ name, s, type, offsetof(struct run_opts, field), meta, help, __VA_ARGS__ }

static const struct opt run_table[] = {
	RUN_OPT("kernel", 'k', OPT_STR, kernel, "FILE", "Linux bzImage to boot (required)", 0, 0, NULL),
	RUN_OPT("initrd", 'i', OPT_STR, initrd, "FILE", "initial ramdisk", 0, 0, NULL),
	RUN_OPT("cmdline", 'c', OPT_STR, cmdline, "TEXT", "kernel command line (default: console=ttyS0)", 0, 0, NULL),
	RUN_OPT("memory", 'm', OPT_SIZE, memory, "SIZE", "guest memory, e.g. 512M or 2G (default 512M)",
		VMCONFIG_MIN_MEMORY, VMCONFIG_MAX_MEMORY, NULL),
	RUN_OPT("dynamic-memory", 0, OPT_FLAG, dynamic_memory, NULL,
		"dynamic memory: start with --memory, then a balloon moves it (see above)", 0, 0, NULL),
	RUN_OPT("memory-minimum", 0, OPT_SIZE, memory_min, "SIZE",
		"dynamic memory's minimum (default 512M, or --memory if less)",
		VMCONFIG_MIN_MEMORY, VMCONFIG_MAX_MEMORY, NULL),
	RUN_OPT("memory-maximum", 0, OPT_SIZE, memory_max, "SIZE",
		"dynamic memory's maximum, the guest's RAM (default twice --memory)",
		VMCONFIG_MIN_MEMORY, VMCONFIG_MAX_MEMORY, NULL),
	RUN_OPT("cpus", 'n', OPT_UINT, cpus, "N", "virtual CPUs (default 1)", 1, VMCONFIG_MAX_CPUS, NULL),
	RUN_OPT("on-reboot", 0, OPT_CHOICE, on_reboot, "exit|restart",
		"what a guest reboot does (default exit, status 0)", 0, 0, reboot_choices),
	RUN_OPT("disk", 'd', OPT_LIST, disks, "FILE[,ro]",
		"attach a raw disk image as virtio-blk: vda, vdb, ... (repeatable)", 0, 0, NULL),
	RUN_OPT("nic", 0, OPT_LIST, nics, "switch=NAME|tap=IF[,mac=MAC][,spoofing=on]",
		"a virtio-net adapter on a virtual switch or a TAP device (repeatable)", 0, 0, NULL),
	RUN_OPT("no-rng", 0, OPT_FLAG, no_rng, NULL, "no virtio-rng device (on by default)", 0, 0, NULL),
	RUN_OPT("nested", 0, OPT_FLAG, nested, NULL,
		"expose the virtualization extensions (VMX/SVM) to the guest", 0, 0, NULL),
	RUN_OPT("stats", 0, OPT_FLAG, stats, NULL, "print memory figures on stderr at exit", 0, 0, NULL),
	RUN_OPT("skip-probe", 0, OPT_FLAG, skip_probe, NULL,
		"boot even where KVM emulates guest kernel code slowly", 0, 0, NULL),
	RUN_OPT("kvm", 0, OPT_STR, kvm, "PATH", "KVM device (default /dev/kvm)", 0, 0, NULL),
	RUN_OPT("name", 0, OPT_STR, name, "NAME",
		"boot the VM NAME of the store as defined there (nestvm vm start does this)", 0, 0, NULL),
	RUN_OPT("store", 0, OPT_STR, store, "DIR", "the VM store (default $NESTVM_STORE, else per user)", 0, 0, NULL),
	RUN_OPT("console-log", 0, OPT_STR, console_log, "FILE",
		"append the serial console to FILE instead of this terminal", 0, 0, NULL),
	RUN_OPT("api-socket", 0, OPT_STR, api_socket, "PATH", "serve the control API on this Unix socket", 0, 0, NULL),
	RUN_OPT("console-socket", 0, OPT_STR, console_socket, "PATH",
		"serve the serial console on this Unix socket (nestvm vm console)", 0, 0, NULL),
	RUN_OPT("detach", 0, OPT_FLAG, detach, NULL,
		"run in the background once the VM is built; needs --console-log or --name", 0, 0, NULL),
	{ 0 },
};

static const char run_usage[] = "nestvm run --kernel FILE [--initrd FILE] [OPTIONS]\n"
	"       nestvm run --name NAME [--store DIR] [--detach]";
static const char run_summary[] =
	"Boot one virtual machine in the foreground with its serial console on this terminal.\n"
	"The guest powering off ends nestvm with status 0; a guest crash with status 1.\n"
	"On a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A.\n"
	"\n"
	"--name boots a VM of the store (see nestvm vm --help) from its definition: its\n"
	"console goes to console.log, console.sock and api.sock in the VM's directory,\n"
	"and the VM's settings come only from the store. --detach returns once the VM\n"
	"is built, leaving the VMM in the background; nestvm vm start NAME does both.\n"
	"\n"
	"--dynamic-memory gives the guest --memory-maximum of RAM and a virtio-balloon\n"
	"that leaves it --memory at first; then, each second, it gets more while less\n"
	"than 20% of its memory is available and gives some back while more than 50%\n"
	"is, never below --memory-minimum. The control API's setmemory sets a target.";

/* Console input: stdin to COM1, with the Ctrl-A escape on a terminal. */
struct console {
	struct vm *vm;
	bool tty;
	bool have_saved;
	struct termios saved;
};

static struct console console;

static void console_restore(void)
{
	if (console.have_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &console.saved);
	console.have_saved = false;
}

static void console_feed(struct serial *s, const uint8_t *buf, size_t n)
{
	while (n) {
		unsigned int got = serial_receive(s, buf, (unsigned int)MIN(n, 4096u));
		if (!got) {
			serial_wait_rx_space(s);
			if (s->closing)
				return;
			continue;
		}
		buf += got;
		n -= got;
	}
}

static void *console_thread(void *arg)
{
	struct console *c = arg;
	bool escape = false;
	uint8_t buf[256];

	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		size_t start = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		if (!c->tty) {
			console_feed(&c->vm->com1, buf, (size_t)n);
			continue;
		}
		for (size_t i = 0; i < (size_t)n; i++) {
			if (escape) {
				escape = false;
				if (buf[i] == 'x') {
					vm_request_stop(c->vm, VM_STOP_REQUEST, NULL);
					return NULL;
				}
				if (buf[i] == 0x01)
					console_feed(&c->vm->com1, &buf[i], 1);
				start = i + 1;
			} else if (buf[i] == 0x01) {
				console_feed(&c->vm->com1, buf + start, i - start);
				escape = true;
				start = i + 1;
			}
		}
		console_feed(&c->vm->com1, buf + start, (size_t)n - start);
	}
}

static void console_start(struct vm *vm)
{
	pthread_t t;

	console.vm = vm;
	console.tty = isatty(STDIN_FILENO);
	if (console.tty && tcgetattr(STDIN_FILENO, &console.saved) == 0) {
		struct termios raw = console.saved;

		cfmakeraw(&raw);
		raw.c_oflag |= OPOST | ONLCR;    /* stdout may be this terminal too */
		console.have_saved = true;
		atexit(console_restore);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	if (pthread_create(&t, NULL, console_thread, &console) == 0)
		pthread_detach(t);
}

/* SIGINT, SIGTERM and SIGHUP stop the VM; the exit status says which. */
static _Atomic int stop_signal;

static void *signal_thread(void *arg)
{
	struct vm *vm = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigwait(&set, &sig) == 0) {
		atomic_store(&stop_signal, sig);
		vm_request_stop(vm, VM_STOP_REQUEST, NULL);
	}
	return NULL;
}

/* --nic switch=NAME|tap=IF[,mac=MAC][,spoofing=on|off]: a fresh MAC unless given. */
static int run_parse_nic(const char *spec, const char *store, struct vm_nic *n,
			 char *sock, size_t socklen, char *err, size_t errlen)
{
	char buf[512], *save = NULL, *tok;
	bool have_mac = false;

	memset(n, 0, sizeof(*n));
	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "too long");
		return -EINVAL;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		const char *v = eq ? eq + 1 : "";

		if (eq)
			*eq = '\0';
		if (!strcmp(tok, "switch") && *v) {
			if (switchd_path(store, v, SWITCHD_PORTS_SOCK, sock, socklen) < 0) {
				snprintf(err, errlen, "bad switch name '%s'", v);
				return -EINVAL;
			}
			n->switch_sock = sock;
		} else if (!strcmp(tok, "tap") && *v) {
			snprintf(sock, socklen, "%s", v);
			n->tap = sock;
		} else if (!strcmp(tok, "mac") && vmconfig_parse_mac(v, n->mac) == 0) {
			have_mac = true;
		} else if (!strcmp(tok, "spoofing") && (!strcmp(v, "on") || !strcmp(v, "off"))) {
			n->mac_spoofing = !strcmp(v, "on");
		} else {
			snprintf(err, errlen, "'%s%s%s' is not one of switch=NAME, tap=IF, mac=MAC, spoofing=on|off",
				 tok, eq ? "=" : "", v);
			return -EINVAL;
		}
	}
	if (!n->switch_sock == !n->tap) {
		snprintf(err, errlen, "give exactly one of switch=NAME or tap=IF");
		return -EINVAL;
	}
	if (!have_mac)
		vmconfig_random_mac(n->mac);
	return 0;
}

/* Kernel and initrd are read straight into guest memory later: here they
 * are only opened, sized, and the kernel's header checked. */
static int run_open(const char *what, const char *path, struct boot_blob *b)
{
	struct stat st;

	b->data = NULL;
	b->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (b->fd < 0 || fstat(b->fd, &st) < 0) {
		cli_error("%s '%s': %s", what, path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		cli_error("%s '%s': not a regular file", what, path);
		return -EINVAL;
	}
	b->size = (uint64_t)st.st_size;
	return 0;
}

static int run_validate(const struct run_opts *o, const struct boot_blob *kernel, uint64_t ilen)
{
	uint8_t hdr[BOOT_HDR_BYTES];
	size_t n = (size_t)MIN(kernel->size, (uint64_t)sizeof(hdr));
	struct bzimage bz;
	const char *why;
	int r;

	r = boot_blob_read(kernel, 0, hdr, n);
	if (r < 0) {
		cli_error("kernel '%s': %s", o->kernel, strerror(-r));
		return r;
	}
	if (boot_parse_bzimage(hdr, n, kernel->size, &bz, &why) < 0) {
		cli_error("kernel '%s': %s", o->kernel, why);
		return -EINVAL;
	}
	if (ilen >= o->memory) {
		cli_error("initrd '%s' is %llu MiB, larger than the guest's %llu MiB of memory: raise --memory",
			  o->initrd, (unsigned long long)(ilen >> 20), (unsigned long long)(o->memory >> 20));
		return -EINVAL;
	}
	return 0;
}

/* Dynamic memory's bounds around the startup memory, defaults filled in.
 * Checked before anything is opened: a mistake is a usage error. */
static int run_validate_memory(struct run_opts *o)
{
	char a[32], b[32];

	if (!o->dynamic_memory) {
		if (o->memory_min || o->memory_max) {
			cli_error("run: --memory-%s goes with --dynamic-memory", o->memory_min ? "minimum" : "maximum");
			return -EINVAL;
		}
		return 0;
	}
	if (!o->memory_min)
		o->memory_min = MIN(o->memory, 512ULL << 20);
	if (!o->memory_max)
		o->memory_max = MIN(2 * o->memory, VMCONFIG_MAX_MEMORY);
	if ((o->memory_min | o->memory_max) & 0xfffff) {
		cli_error("run: --memory-minimum and --memory-maximum must be whole numbers of MiB");
		return -EINVAL;
	}
	if (o->memory_min > o->memory) {
		cli_error("run: --memory-minimum %s is above the startup memory %s (--memory): lower it or raise --memory",
			  util_fmt_size(o->memory_min, a, sizeof(a)), util_fmt_size(o->memory, b, sizeof(b)));
		return -EINVAL;
	}
	if (o->memory_max < o->memory) {
		cli_error("run: --memory-maximum %s is below the startup memory %s (--memory): raise it or lower --memory",
			  util_fmt_size(o->memory_max, a, sizeof(a)), util_fmt_size(o->memory, b, sizeof(b)));
		return -EINVAL;
	}
	return 0;
}

static int run_probe(const struct run_opts *o)
{
	double mips = 0;
	int r = vm_probe_speed(o->kvm, &mips);

	if (r == -EIO) {
		cli_error("%s: a test guest did not run to completion; KVM on this host is not usable",
			  o->kvm ? o->kvm : "/dev/kvm");
		return r;
	}
	if (r < 0)
		return 0;   /* vm_create will report the real problem */
	if (mips < VM_PROBE_MIN_MIPS) {
		cli_error("%s runs guest kernel code at %.1f million instructions/s: it is emulated, not hardware-assisted, "
			  "and a Linux guest cannot boot at that speed. Use a host with VT-x or AMD-V, or the simulated "
			  "host (scripts/simhost); --skip-probe boots anyway",
			  o->kvm ? o->kvm : "/dev/kvm", mips);
		return -ENOTSUP;
	}
	return 0;
}

static int run_exit_status(struct vm *vm, enum vm_stop_reason why)
{
	switch (why) {
	case VM_STOP_POWEROFF:
	case VM_STOP_RESET:
	case VM_STOP_HALT:
		return 0;
	case VM_STOP_REQUEST:
		return stop_signal ? 128 + stop_signal : 0;
	case VM_STOP_FAULT:
		console_restore();
		fprintf(stderr, "\nnestvm: %s", vm->diag);
		if (vm->diag[0] && vm->diag[strlen(vm->diag) - 1] != '\n')
			fputc('\n', stderr);
		return 1;
	case VM_STOP_NONE:
		break;
	}
	return 1;
}

/* ---- the managed VMM: console hub, console socket, control API ---- */

#define HUB_RING   (64 << 10)
#define HUB_CLIENTS 8

/* COM1 writes into a pipe; the hub copies it to the log (or stdout), keeps
 * the last HUB_RING bytes for a console that attaches later, and passes it
 * to attached consoles. A slow console loses output; the log never does. */
struct hub {
	int in;                 /* the pipe's read end */
	int out;                /* the log or stdout */
	int listen;             /* console socket, -1 for none */
	int wake[2];
	struct vm *vm;
	pthread_mutex_t lock;   /* ring and clients */
	char ring[HUB_RING];
	size_t ring_len, ring_pos;
	int clients[HUB_CLIENTS];
	pthread_t out_thread, in_thread;
};

static struct hub hub = { .in = -1, .out = -1, .listen = -1, .wake = { -1, -1 },
			  .lock = PTHREAD_MUTEX_INITIALIZER };

static void *hub_out_thread(void *arg)
{
	struct hub *h = arg;
	char buf[4096];

	for (;;) {
		ssize_t n = read(h->in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		(void)!util_write_all(h->out, buf, (size_t)n);
		pthread_mutex_lock(&h->lock);
		for (ssize_t i = 0; i < n; i++) {
			h->ring[h->ring_pos] = buf[i];
			h->ring_pos = (h->ring_pos + 1) % HUB_RING;
		}
		h->ring_len = MIN(h->ring_len + (size_t)n, (size_t)HUB_RING);
		for (int i = 0; i < HUB_CLIENTS; i++)
			if (h->clients[i] >= 0 && send(h->clients[i], buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
			    errno != EAGAIN && errno != EWOULDBLOCK)
				shutdown(h->clients[i], SHUT_RDWR);
		pthread_mutex_unlock(&h->lock);
	}
}

/* Accepts consoles and feeds what they type to COM1. */
static void *hub_in_thread(void *arg)
{
	struct hub *h = arg;

	for (;;) {
		struct pollfd p[HUB_CLIENTS + 2];
		int map[HUB_CLIENTS + 2];
		nfds_t n = 0;

		p[n++] = (struct pollfd){ .fd = h->wake[0], .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = h->listen, .events = POLLIN };
		pthread_mutex_lock(&h->lock);
		for (int i = 0; i < HUB_CLIENTS; i++)
			if (h->clients[i] >= 0) {
				map[n] = i;
				p[n++] = (struct pollfd){ .fd = h->clients[i], .events = POLLIN };
			}
		pthread_mutex_unlock(&h->lock);
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (p[0].revents)
			return NULL;
		if (p[1].revents & POLLIN) {
			int fd = accept4(h->listen, NULL, NULL, SOCK_CLOEXEC);
			int i;

			pthread_mutex_lock(&h->lock);
			for (i = 0; fd >= 0 && i < HUB_CLIENTS && h->clients[i] >= 0; i++)
				;
			if (fd >= 0 && i == HUB_CLIENTS) {
				close(fd);
			} else if (fd >= 0) {
				/* What the console showed lately, then live output. */
				size_t start = (h->ring_pos + HUB_RING - h->ring_len) % HUB_RING;
				size_t first = MIN(h->ring_len, (size_t)HUB_RING - start);

				(void)!util_write_all(fd, h->ring + start, first);
				(void)!util_write_all(fd, h->ring, h->ring_len - first);
				h->clients[i] = fd;
			}
			pthread_mutex_unlock(&h->lock);
		}
		for (nfds_t k = 2; k < n; k++) {
			uint8_t buf[256];
			ssize_t got;

			if (!p[k].revents)
				continue;
			got = recv(p[k].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (got <= 0) {
				pthread_mutex_lock(&h->lock);
				close(h->clients[map[k]]);
				h->clients[map[k]] = -1;
				pthread_mutex_unlock(&h->lock);
				continue;
			}
			if (h->vm)
				console_feed(&h->vm->com1, buf, (size_t)got);
		}
	}
}

/* Returns the fd COM1 is to write to, or -errno. */
static int hub_start(int out, const char *socket_path)
{
	int p[2];

	for (int i = 0; i < HUB_CLIENTS; i++)
		hub.clients[i] = -1;
	hub.out = out;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	hub.in = p[0];
	if (pthread_create(&hub.out_thread, NULL, hub_out_thread, &hub) != 0)
		return -EAGAIN;
	if (socket_path) {
		int fd = util_unix_listen(socket_path, SOCK_STREAM, 4);

		if (fd < 0)
			return fd;
		hub.listen = fd;
		if (pipe2(hub.wake, O_CLOEXEC) < 0)
			return -errno;
		if (pthread_create(&hub.in_thread, NULL, hub_in_thread, &hub) != 0)
			return -EAGAIN;
	}
	return p[1];
}

/* Everything COM1 wrote reaches the log before the exit record is written. */
static void hub_stop(int com1_fd)
{
	if (com1_fd >= 0) {
		close(com1_fd);
		pthread_join(hub.out_thread, NULL);
	}
	if (hub.listen >= 0) {
		if (write(hub.wake[1], "x", 1) == 1)
			pthread_join(hub.in_thread, NULL);
		close(hub.listen);
		hub.listen = -1;
	}
	for (int i = 0; i < HUB_CLIENTS; i++)
		if (hub.clients[i] >= 0) {
			close(hub.clients[i]);
			hub.clients[i] = -1;
		}
}

/* The control API's view of the VM; vm_lock covers the time between a
 * reboot's vm_destroy and the next vm_create. */
struct managed {
	struct vm *vm;
	pthread_mutex_t vm_lock;
	bool live;
	_Atomic bool stopping;
	const char *name;
	uint64_t started_ns;
};

static struct managed managed = { .vm_lock = PTHREAD_MUTEX_INITIALIZER };

/* Dynamic memory in a status reply; nothing without it. */
static void api_memory(struct vm *vm, struct json *j)
{
	struct virtio_balloon_info info;

	if (vm_memory_info(vm, &info) < 0)
		return;
	json_kv_uint(j, "memoryAssignedBytes", info.assigned);
	json_kv_uint(j, "memoryTargetBytes", info.target);
	if (info.stats.has_avail)
		json_kv_uint(j, "memoryAvailableBytes", info.stats.avail);
}

static void api_handler(void *opaque, const struct api_request *req, struct json *j)
{
	struct managed *m = opaque;
	enum api_cmd cmd = req->cmd;
	uint64_t applied = 0;

	pthread_mutex_lock(&m->vm_lock);
	if (!m->live && cmd != API_STATUS) {
		json_kv_bool(j, "ok", false);
		json_kv_string(j, "error", "the VM is between reboots; try again");
		pthread_mutex_unlock(&m->vm_lock);
		return;
	}
	switch (cmd) {
	case API_PAUSE:
		vm_pause(m->vm);
		break;
	case API_RESUME:
		vm_resume(m->vm);
		break;
	case API_POWERBUTTON:
		vm_power_button(m->vm);
		break;
	case API_STOP:
		atomic_store(&m->stopping, true);
		vm_request_stop(m->vm, VM_STOP_REQUEST, "stopped through the control API");
		vm_resume(m->vm);
		break;
	case API_SETMEMORY:
		if (vm_set_memory_target(m->vm, req->bytes, &applied) < 0) {
			json_kv_bool(j, "ok", false);
			json_kv_string(j, "error", "the VM does not have dynamic memory (nestvm vm set NAME "
				       "--dynamic-memory on, or nestvm run --dynamic-memory)");
			pthread_mutex_unlock(&m->vm_lock);
			return;
		}
		break;
	case API_STATUS:
		break;
	}
	json_kv_bool(j, "ok", true);
	if (m->name)
		json_kv_string(j, "name", m->name);
	json_kv_string(j, "state", atomic_load(&m->stopping) ? "Stopping" :
		       m->live && vm_is_paused(m->vm) ? "Paused" : "Running");
	json_kv_int(j, "pid", getpid());
	json_kv_uint(j, "uptimeSeconds", (util_now_ns() - m->started_ns) / 1000000000ULL);
	if (m->live)
		api_memory(m->vm, j);
	pthread_mutex_unlock(&m->vm_lock);
}

/* The exit record that "nestvm vm" shows as the reason a VM is Off. */
static void run_exit_record(const char *dir, const char *reason, const char *detail)
{
	char text[1400], line[1024];
	size_t n = 0;

	snprintf(line, sizeof(line), "%s", detail ? detail : "");
	line[strcspn(line, "\n")] = 0;
	n = (size_t)snprintf(text, sizeof(text), "reason = %s\ndetail = %s\ntime = %lld\npid = %d\n", reason, line,
			     (long long)time(NULL), (int)getpid());
	if (store_write_atomic(dir, STORE_EXIT, text, MIN(n, sizeof(text) - 1)) < 0)
		fprintf(stderr, "nestvm: %s/%s: could not write the exit record\n", dir, STORE_EXIT);
}

/* Takes the VM's run lock: held for as long as this VMM lives, so that
 * "alive" needs no pid file that a dead VMM leaves behind. */
static int run_lock_vm(const char *dir)
{
	char path[STORE_PATH_MAX + 200];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, STORE_RUN_LOCK);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	/* Probes hold it shared for a moment: retry briefly. */
	for (int i = 0; i < 100; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK)
			break;
		nanosleep(&(struct timespec){ 0, 20 * 1000000 }, NULL);
	}
	close(fd);
	return -EBUSY;
}

/* The VM of the store: its definition into o, with its runtime paths. */
struct run_stored {
	char root[STORE_PATH_MAX];
	char dir[STORE_PATH_MAX + 80];
	char log[STORE_PATH_MAX + 100], api[STORE_PATH_MAX + 100], con[STORE_PATH_MAX + 100];
	struct vmconfig def;
	int run_lock;
	char disk_paths[OPT_LIST_MAX][STORE_PATH_MAX + 200];
	struct vm_disk disks[OPT_LIST_MAX];
	unsigned int ndisks;
	char nic_socks[OPT_LIST_MAX][STORE_PATH_MAX + 200];
	char nic_labels[OPT_LIST_MAX][VMCONFIG_NAME_MAX + 16];
	struct vm_nic nics[OPT_LIST_MAX];
	unsigned int nnics;
};

static int run_load_stored(struct run_opts *o, struct run_stored *st)
{
	char err[1200];
	int fd, r;

	st->run_lock = -1;
	if (o->kernel || o->initrd || o->cmdline || o->memory || o->cpus || o->nested || o->disks.n ||
	    o->nics.n || o->dynamic_memory || o->memory_min || o->memory_max) {
		cli_error("run: --name boots the VM as stored; change its settings with nestvm vm set %s", o->name);
		return EXIT_USAGE;
	}
	if (store_root(o->store, st->root, sizeof(st->root)) < 0) {
		cli_error("run: no store directory: set --store DIR or NESTVM_STORE");
		return EXIT_USAGE;
	}
	if (store_path(st->dir, sizeof(st->dir), st->root, o->name, NULL) < 0)
		return EXIT_USAGE;
	snprintf(st->log, sizeof(st->log), "%s/%s", st->dir, STORE_CONSOLE_LOG);
	snprintf(st->api, sizeof(st->api), "%s/%s", st->dir, STORE_API_SOCK);
	snprintf(st->con, sizeof(st->con), "%s/%s", st->dir, STORE_CONSOLE_SOCK);
	fd = store_lock(st->root, o->name, 10000);
	if (fd < 0 && fd != -ENOENT) {
		cli_error("run: VM '%s': %s", o->name,
			  fd == -EBUSY ? "another nestvm command holds its lock" : strerror(-fd));
		return 1;
	}
	r = store_load(st->root, o->name, &st->def, err, sizeof(err));
	if (r < 0) {
		store_unlock(fd);
		cli_error("run: %s", err);
		return r == -ENOENT ? EXIT_USAGE : 1;
	}
	st->run_lock = run_lock_vm(st->dir);
	store_unlock(fd);
	if (st->run_lock < 0) {
		cli_error("run: VM '%s' is already running", o->name);
		return 1;
	}
	o->kernel = st->def.kernel;
	o->initrd = st->def.initrd[0] ? st->def.initrd : NULL;
	o->cmdline = st->def.cmdline;
	o->memory = st->def.memory;
	/* Bounds stored while dynamic memory is off wait for it to be on. */
	o->dynamic_memory = st->def.dynamic_memory;
	if (o->dynamic_memory) {
		o->memory_min = st->def.memory_min;
		o->memory_max = st->def.memory_max;
	}
	o->cpus = st->def.cpus;
	o->nested = st->def.expose_virt;
	for (unsigned int i = 0; i < st->def.ndisks && i < OPT_LIST_MAX; i++) {
		/* Stored paths are relative to the VM's directory. */
		if (store_path(st->disk_paths[i], sizeof(st->disk_paths[i]), st->root, o->name,
			       st->def.disks[i].path) < 0) {
			cli_error("run: VM '%s': disk path too long", o->name);
			return -ENAMETOOLONG;
		}
		st->disks[i] = (struct vm_disk){ st->disk_paths[i], false };
		st->ndisks++;
	}
	for (unsigned int i = 0; i < st->def.nnics && i < OPT_LIST_MAX; i++) {
		struct vm_nic *n = &st->nics[i];

		if (switchd_path(o->store, st->def.nics[i].sw, SWITCHD_PORTS_SOCK, st->nic_socks[i],
				 sizeof(st->nic_socks[i])) < 0) {
			cli_error("run: VM '%s': switch path too long", o->name);
			return -ENAMETOOLONG;
		}
		snprintf(st->nic_labels[i], sizeof(st->nic_labels[i]), "%s/net%u", o->name, i);
		*n = (struct vm_nic){ .switch_sock = st->nic_socks[i], .label = st->nic_labels[i],
				      .mac_spoofing = st->def.nics[i].mac_spoofing };
		memcpy(n->mac, st->def.nics[i].mac, 6);
		st->nnics++;
	}
	if (!o->console_log)
		o->console_log = st->log;
	if (!o->api_socket)
		o->api_socket = st->api;
	if (!o->console_socket)
		o->console_socket = st->con;
	return 0;
}

/* Forks the VMM into the background: setsid, a second fork, stdio to the
 * log. The caller's process waits on *ready_fd's pipe for "ok" or the error
 * and returns 0 or 1; the VMM gets -1 back and goes on. */
static int run_detach(int log_fd, int *ready_fd)
{
	int p[2], status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int nul;

		close(p[0]);
		setsid();
		pid = fork();
		if (pid != 0)
			_exit(pid < 0 ? 1 : 0);
		nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, STDIN_FILENO);
		dup2(log_fd, STDOUT_FILENO);
		dup2(log_fd, STDERR_FILENO);
		*ready_fd = p[1];
		return -1;
	}
	close(p[1]);
	waitpid(pid, &status, 0);
	*ready_fd = p[0];
	return 0;
}

/* In the waiting parent: the VMM's first word, "ok" or why it failed. */
static int run_wait_ready(int fd, const char *log)
{
	char msg[1100];
	size_t n = 0;

	for (;;) {
		ssize_t got = read(fd, msg + n, sizeof(msg) - 1 - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || (n += (size_t)got) == sizeof(msg) - 1)
			break;
	}
	close(fd);
	msg[n] = 0;
	if (!strcmp(msg, "ok"))
		return 0;
	if (n)
		cli_error("%s", msg);
	else
		cli_error("the VMM ended while starting; see %s", log);
	return 1;
}

static void run_ready(int *fd, const char *msg)
{
	if (*fd < 0)
		return;
	(void)!util_write_all(*fd, msg, strlen(msg));
	close(*fd);
	*fd = -1;
}

static void run_write_pid(const char *dir)
{
	char text[32];

	snprintf(text, sizeof(text), "%d\n", (int)getpid());
	if (store_write_atomic(dir, STORE_PID, text, strlen(text)) < 0)
		fprintf(stderr, "nestvm: %s/%s: could not record the VMM's pid\n", dir, STORE_PID);
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	struct boot_blob kernel = BOOT_BLOB_MEM(NULL, 0), initrd = BOOT_BLOB_MEM(NULL, 0);
	struct run_stored *st = NULL;
	struct api_server *api = NULL;
	struct vm *vm = NULL;
	struct vm_config cfg;
	struct vm_disk disks[OPT_LIST_MAX];
	static char disk_buf[OPT_LIST_MAX][4096];
	struct vm_nic nics[OPT_LIST_MAX];
	static char nic_socks[OPT_LIST_MAX][4096], nic_labels[OPT_LIST_MAX][32];
	enum vm_stop_reason why = VM_STOP_NONE;
	char err[256], reason[64] = "start failed", detail[1024] = "";
	sigset_t set;
	pthread_t sigt;
	int npos, r, status = EXIT_USAGE, log_fd = -1, ready_fd = -1, com1_fd = STDOUT_FILENO;
	bool hub_on = false, is_daemon = false;

	r = cli_parse("run", run_table, run_usage, run_summary, argc, argv, &o, &npos, NULL);
	if (r >= 0)
		return r;
	if (npos) {
		cli_error("run: unexpected argument '%s' (see --help)", argv[0]);
		return EXIT_USAGE;
	}
	for (unsigned int i = 0; i < o.disks.n; i++) {
		const char *comma = strrchr(o.disks.v[i], ',');
		bool ro = comma && !strcmp(comma, ",ro");

		if (comma && !ro) {
			cli_error("run: --disk '%s': the only option after the path is ',ro'", o.disks.v[i]);
			return EXIT_USAGE;
		}
		snprintf(disk_buf[i], sizeof(disk_buf[i]), "%.*s",
			 (int)(ro ? (size_t)(comma - o.disks.v[i]) : strlen(o.disks.v[i])), o.disks.v[i]);
		disks[i] = (struct vm_disk){ disk_buf[i], ro };
	}
	for (unsigned int i = 0; i < o.nics.n; i++) {
		snprintf(nic_labels[i], sizeof(nic_labels[i]), "run-%d/net%u", (int)getpid(), i);
		if (run_parse_nic(o.nics.v[i], o.store, &nics[i], nic_socks[i], sizeof(nic_socks[i]),
				  err, sizeof(err)) < 0) {
			cli_error("run: --nic '%s': %s", o.nics.v[i], err);
			return EXIT_USAGE;
		}
		nics[i].label = nic_labels[i];
	}
	if (o.name) {
		st = calloc(1, sizeof(*st));
		if (!st) {
			cli_error("out of memory");
			return 1;
		}
		status = run_load_stored(&o, st);
		if (status)
			goto out;
		status = EXIT_USAGE;
	} else if (o.store) {
		cli_error("run: --store goes with --name NAME");
		return EXIT_USAGE;
	}
	if (!o.memory)
		o.memory = 512ULL << 20;
	if (!o.cpus)
		o.cpus = 1;
	if (!o.cmdline)
		o.cmdline = "console=ttyS0";
	if (!o.kernel) {
		cli_error("run: --kernel FILE is required (see --help)");
		goto out;
	}
	if (o.detach && !o.console_log) {
		cli_error("run: --detach needs --console-log FILE (or --name): the console must go somewhere");
		goto out;
	}
	if (o.memory & 0xfffff) {
		cli_error("run: --memory must be a whole number of MiB");
		goto out;
	}
	if (run_validate_memory(&o) < 0)
		goto out;
	if (run_open("kernel", o.kernel, &kernel) < 0 ||
	    (o.initrd && run_open("initrd", o.initrd, &initrd) < 0) ||
	    run_validate(&o, &kernel, initrd.size) < 0)
		goto out;
	if (!o.skip_probe && run_probe(&o) < 0)
		goto out;
	status = 1;
	if (o.console_log) {
		log_fd = open(o.console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log_fd < 0) {
			cli_error("run: console log '%s': %s", o.console_log, strerror(errno));
			goto out;
		}
	}
	if (o.detach) {
		r = run_detach(log_fd, &ready_fd);
		if (r == 0) {
			status = run_wait_ready(ready_fd, o.console_log);
			goto out;
		}
		if (r < -1) {
			cli_error("run: detaching: %s", strerror(-r));
			goto out;
		}
		is_daemon = true;
	}
	if (st) {
		char path[STORE_PATH_MAX + 200];

		snprintf(path, sizeof(path), "%s/%s", st->dir, STORE_EXIT);
		unlink(path);
		run_write_pid(st->dir);
		fprintf(stderr, "nestvm: VMM %d starting VM %s\n", (int)getpid(), o.name);
	}

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (o.console_log || o.console_socket) {
		com1_fd = hub_start(log_fd >= 0 ? log_fd : STDOUT_FILENO, o.console_socket);
		if (com1_fd < 0) {
			snprintf(detail, sizeof(detail), "console socket '%s': %s",
				 o.console_socket ? o.console_socket : "", strerror(-com1_fd));
			goto fail_start;
		}
		hub_on = true;
	}
	cfg = (struct vm_config){
		.mem_size = o.dynamic_memory ? o.memory_max : o.memory, .ncpus = o.cpus,
		.dynamic_memory = o.dynamic_memory, .memory_min = o.memory_min, .memory_startup = o.memory,
		.kernel = kernel, .initrd = initrd,
		.cmdline = o.cmdline, .expose_virt = o.nested,
		.disks = st ? st->disks : disks, .ndisks = st ? st->ndisks : o.disks.n, .rng = !o.no_rng,
		.nics = st ? st->nics : nics, .nnics = st ? st->nnics : o.nics.n,
		.console_out = com1_fd, .kvm_path = o.kvm,
	};
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(detail, sizeof(detail), "out of memory");
		goto fail_start;
	}
	managed.vm = vm;
	managed.name = o.name;
	managed.started_ns = util_now_ns();
	for (bool first = true;; first = false) {
		pthread_mutex_lock(&managed.vm_lock);
		r = vm_create(vm, &cfg);
		managed.live = r == 0;
		pthread_mutex_unlock(&managed.vm_lock);
		if (r < 0) {
			snprintf(detail, sizeof(detail), "%s", vm->err);
			if (first)
				goto fail_start;
			cli_error("%s", vm->err);
			snprintf(reason, sizeof(reason), "restart failed");
			status = 1;
			break;
		}
		if (first) {
			if (pthread_create(&sigt, NULL, signal_thread, vm) == 0)
				pthread_detach(sigt);
			hub.vm = vm;
			if (!o.detach)
				console_start(vm);
			if (o.api_socket) {
				r = api_server_start(&api, o.api_socket, api_handler, &managed);
				if (r < 0) {
					snprintf(detail, sizeof(detail), "control API socket '%s': %s", o.api_socket,
						 strerror(-r));
					vm_destroy(vm);
					goto fail_start;
				}
			}
			run_ready(&ready_fd, "ok");
		}
		why = vm_run(vm);
		status = run_exit_status(vm, why);
		snprintf(reason, sizeof(reason), "%s", vm_stop_reason_name(why));
		if (why == VM_STOP_REQUEST && stop_signal)
			snprintf(detail, sizeof(detail), "signal %d (%s)", (int)stop_signal, strsignal(stop_signal));
		else
			snprintf(detail, sizeof(detail), "%s", vm->diag);
		if (o.stats) {
			struct virtio_balloon_info bi;
			struct rusage ru;

			getrusage(RUSAGE_SELF, &ru);
			fprintf(stderr, "nestvm: stats: guest_touched_kib=%llu vmm_peak_rss_kib=%ld\n",
				(unsigned long long)(guestmem_resident(&vm->mem) >> 10), ru.ru_maxrss);
			if (vm_memory_info(vm, &bi) == 0)
				fprintf(stderr, "nestvm: stats: memory_assigned_kib=%llu memory_target_kib=%llu "
					"balloon_released_pages=%llu balloon_refused_pages=%llu\n",
					(unsigned long long)(bi.assigned >> 10), (unsigned long long)(bi.target >> 10),
					(unsigned long long)bi.released_pages, (unsigned long long)bi.refused_pages);
		}
		pthread_mutex_lock(&managed.vm_lock);
		managed.live = false;
		pthread_mutex_unlock(&managed.vm_lock);
		serial_close_input(&vm->com1);
		vm_destroy(vm);
		/* Reboot: a new machine from the same config; the console
		 * thread keeps feeding the same struct. */
		if (why != VM_STOP_RESET || o.on_reboot != REBOOT_RESTART)
			break;
	}
	atomic_store(&managed.stopping, true);
	goto finish;

fail_start:
	cli_error("%s", detail);
	status = o.detach || !vm ? 1 : EXIT_USAGE;
finish:
	api_server_stop(api);
	if (hub_on)
		hub_stop(com1_fd);
	if (st) {
		run_exit_record(st->dir, reason, detail);
		fprintf(stderr, "nestvm: VMM %d of VM %s ended: %s%s%s\n", (int)getpid(), o.name, reason,
			detail[0] ? ": " : "", detail);
	}
	/* A start that failed is reported once the VM is seen as Off. */
	if (ready_fd >= 0) {
		if (st && st->run_lock >= 0) {
			close(st->run_lock);
			st->run_lock = -1;
		}
		run_ready(&ready_fd, detail);
	}
out:
	console_restore();
	free(vm);
	if (st && st->run_lock >= 0)
		close(st->run_lock);
	free(st);
	if (log_fd >= 0)
		close(log_fd);
	if (kernel.fd >= 0)
		close(kernel.fd);
	if (initrd.fd >= 0)
		close(initrd.fd);
	/* The detached VMM is done: it must not return into the command that
	 * forked it ("nestvm vm start"), which would carry on in the log. */
	if (o.detach && is_daemon)
		exit(status);
	return status;
}

int cmd_probe(int argc, char **argv)
{
	const char *dev = argc > 0 ? argv[0] : "/dev/kvm";
	double mips;
	int r = vm_probe_speed(dev, &mips);

	if (r < 0) {
		cli_error("probe %s: %s", dev, strerror(-r));
		return 1;
	}
	printf("%s: guest kernel code runs at %.1f million instructions/s (%s)\n", dev, mips,
	       mips < VM_PROBE_MIN_MIPS ? "emulated" : "hardware speed");
	return mips < VM_PROBE_MIN_MIPS ? 1 : 0;
}

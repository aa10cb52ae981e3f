/* "nestvm run": one VM in the foreground, nothing stored, its serial console
 * on this terminal. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "vm.h"
#include "arch/x86/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

static const char *const reboot_choices[] = { "exit", "restart", NULL };
enum { REBOOT_EXIT, REBOOT_RESTART };

struct run_opts {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t memory;
	unsigned int cpus;
	int on_reboot;
	bool nested;
	bool stats;
	bool skip_probe;
	const char *kvm;
};

#define RUN_OPT(name, s, type, field, meta, help, ...) \
	{ name, s, type, offsetof(struct run_opts, field), meta, help, __VA_ARGS__ }

static const struct opt run_table[] = {
	RUN_OPT("kernel", 'k', OPT_STR, kernel, "FILE", "Linux bzImage to boot (required)", 0, 0, NULL),
	RUN_OPT("initrd", 'i', OPT_STR, initrd, "FILE", "initial ramdisk", 0, 0, NULL),
	RUN_OPT("cmdline", 'c', OPT_STR, cmdline, "TEXT", "kernel command line (default: console=ttyS0)", 0, 0, NULL),
	RUN_OPT("memory", 'm', OPT_SIZE, memory, "SIZE", "guest memory, e.g. 512M or 2G (default 512M)",
		VM_MIN_MEMORY, VM_MAX_MEMORY, NULL),
	RUN_OPT("cpus", 'n', OPT_UINT, cpus, "N", "virtual CPUs (default 1)", 1, VM_MAX_CPUS, NULL),
	RUN_OPT("on-reboot", 0, OPT_CHOICE, on_reboot, "exit|restart",
		"what a guest reboot does (default exit, status 0)", 0, 0, reboot_choices),
	RUN_OPT("nested", 0, OPT_FLAG, nested, NULL,
		"expose the virtualization extensions (VMX/SVM) to the guest", 0, 0, NULL),
	RUN_OPT("stats", 0, OPT_FLAG, stats, NULL, "print memory figures on stderr at exit", 0, 0, NULL),
	RUN_OPT("skip-probe", 0, OPT_FLAG, skip_probe, NULL,
		"boot even where KVM emulates guest kernel code slowly", 0, 0, NULL),
	RUN_OPT("kvm", 0, OPT_STR, kvm, "PATH", "KVM device (default /dev/kvm)", 0, 0, NULL),
	{ 0 },
};

static const char run_usage[] = "nestvm run --kernel FILE [--initrd FILE] [OPTIONS]";
static const char run_summary[] =
	"Boot one virtual machine in the foreground with its serial console on this terminal.\n"
	"The guest powering off ends nestvm with status 0; a guest crash with status 1.\n"
	"On a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A.";

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

int cmd_run(int argc, char **argv)
{
	struct run_opts o = { .memory = 512ULL << 20, .cpus = 1, .cmdline = "console=ttyS0" };
	struct boot_blob kernel = BOOT_BLOB_MEM(NULL, 0), initrd = BOOT_BLOB_MEM(NULL, 0);
	struct vm *vm = NULL;
	struct vm_config cfg;
	enum vm_stop_reason why;
	char err[256];
	sigset_t set;
	pthread_t st;
	int npos, r, status = EXIT_USAGE;

	r = opts_parse(run_table, argc, argv, &o, &npos, err, sizeof(err));
	if (r == 1) {
		opts_help(stdout, run_usage, run_summary, run_table);
		return 0;
	}
	if (r < 0) {
		cli_error("run: %s", err);
		return EXIT_USAGE;
	}
	if (npos) {
		cli_error("run: unexpected argument '%s' (see --help)", argv[0]);
		return EXIT_USAGE;
	}
	if (!o.kernel) {
		cli_error("run: --kernel FILE is required (see --help)");
		return EXIT_USAGE;
	}
	if (o.memory & 0xfffff) {
		cli_error("run: --memory must be a whole number of MiB");
		return EXIT_USAGE;
	}
	if (run_open("kernel", o.kernel, &kernel) < 0 ||
	    (o.initrd && run_open("initrd", o.initrd, &initrd) < 0) ||
	    run_validate(&o, &kernel, initrd.size) < 0)
		goto out;
	if (!o.skip_probe && run_probe(&o) < 0)
		goto out;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	cfg = (struct vm_config){
		.mem_size = o.memory, .ncpus = o.cpus,
		.kernel = kernel, .initrd = initrd,
		.cmdline = o.cmdline, .expose_virt = o.nested,
		.console_out = STDOUT_FILENO, .kvm_path = o.kvm,
	};
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		cli_error("out of memory");
		goto out;
	}
	for (bool first = true;; first = false) {
		r = vm_create(vm, &cfg);
		if (r < 0) {
			cli_error("%s", vm->err);
			status = first ? EXIT_USAGE : 1;
			break;
		}
		if (first) {
			if (pthread_create(&st, NULL, signal_thread, vm) == 0)
				pthread_detach(st);
			console_start(vm);
		}
		why = vm_run(vm);
		status = run_exit_status(vm, why);
		if (o.stats) {
			struct rusage ru;
			getrusage(RUSAGE_SELF, &ru);
			fprintf(stderr, "nestvm: stats: guest_touched_kib=%llu vmm_peak_rss_kib=%ld\n",
				(unsigned long long)(guestmem_resident(&vm->mem) >> 10), ru.ru_maxrss);
		}
		if (why != VM_STOP_RESET || o.on_reboot != REBOOT_RESTART) {
			serial_close_input(&vm->com1);
			vm_destroy(vm);
			break;
		}
		/* Reboot: a new machine from the same config; the console
		 * thread keeps feeding the same struct. */
		serial_close_input(&vm->com1);
		vm_destroy(vm);
	}
out:
	console_restore();
	free(vm);
	if (kernel.fd >= 0)
		close(kernel.fd);
	if (initrd.fd >= 0)
		close(initrd.fd);
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

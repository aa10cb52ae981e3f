/* The machine: an explicit build sequence (memory, irqchip, vCPUs, devices,
 * ACPI, boot image), the vCPU threads, and exit decode/dispatch. */
#include "vm.h"
#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "arch/x86/cpu.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VM_KICK_SIGNAL SIGUSR1

static void vm_errf(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vm_errf(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->err, sizeof(vm->err), fmt, ap);
	va_end(ap);
}

/* For failures of the KVM layer: "KVM_CREATE_VM: Permission denied". */
static int vm_kvm_err(struct vm *vm, int r, const char *what)
{
	vm_errf(vm, "%s: %s: %s", what, kvm_last_op(), strerror(-r));
	return r;
}

const char *vm_stop_reason_name(enum vm_stop_reason why)
{
	switch (why) {
	case VM_STOP_NONE: return "running";
	case VM_STOP_POWEROFF: return "poweroff";
	case VM_STOP_RESET: return "reboot";
	case VM_STOP_HALT: return "halt";
	case VM_STOP_REQUEST: return "stopped by request";
	case VM_STOP_FAULT: return "fault";
	}
	return "unknown";
}

static int vm_irq_set(void *opaque, uint32_t gsi, int level)
{
	struct vm *vm = opaque;

	return kvm_vm_irq_line(&vm->kvm, gsi, level);
}

static void vm_power_event(void *opaque, enum power_event ev)
{
	struct vm *vm = opaque;

	vm_request_stop(vm, ev == POWER_OFF ? VM_STOP_POWEROFF : VM_STOP_RESET, NULL);
}

static void vm_boot_mark(_Atomic uint64_t *t)
{
	uint64_t none = 0;

	atomic_compare_exchange_strong(t, &none, util_now_ns());
}

void vm_boot_console(struct vm_boot_times *b, uint8_t c)
{
	vm_boot_mark(&b->output);
	if (c != '\n') {
		if (b->line_len < sizeof(b->line) - 1)
			b->line[b->line_len++] = (char)c;
		return;
	}
	b->line[b->line_len] = 0;
	b->line_len = 0;
	if (strstr(b->line, "Linux version "))
		vm_boot_mark(&b->banner);
	else if (strstr(b->line, "Run ") && strstr(b->line, " as init process"))
		vm_boot_mark(&b->init);
}

static void vm_console_observe(void *opaque, uint8_t c)
{
	vm_boot_console(&((struct vm *)opaque)->boot, c);
}

void vm_boot_report(const struct vm *vm, struct vm_boot_report *r)
{
	const struct vm_boot_times *b = &vm->boot;

	*r = (struct vm_boot_report){
		.load_start = b->load_start, .load_end = b->load_end, .unpack_ns = b->unpack_ns,
		.entry = atomic_load(&b->entry), .output = atomic_load(&b->output),
		.banner = atomic_load(&b->banner), .init = atomic_load(&b->init), .stop = atomic_load(&b->stop),
	};
}

/* Step 1: KVM itself, its capabilities, and an empty VM. */
static int vm_build_kvm(struct vm *vm)
{
	static const struct { long cap; const char *name; } need[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	};
	const char *path = vm->cfg.kvm_path ? vm->cfg.kvm_path : "/dev/kvm";
	int r, max;

	r = kvm_sys_open(&vm->sys, path);
	if (r < 0) {
		if (r == -ENOENT)
			vm_errf(vm, "%s: no such device: load kvm_intel or kvm_amd, or enable virtualization in the firmware", path);
		else if (r == -EACCES || r == -EPERM)
			vm_errf(vm, "%s: permission denied: run as root or join the group that owns it (often 'kvm')", path);
		else
			vm_kvm_err(vm, r, path);
		return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(need); i++) {
		if (kvm_check_extension(&vm->sys, need[i].cap) <= 0) {
			vm_errf(vm, "%s: KVM lacks %s", path, need[i].name);
			return -ENOTSUP;
		}
	}
	max = kvm_check_extension(&vm->sys, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = kvm_check_extension(&vm->sys, KVM_CAP_NR_VCPUS);
	if (max > 0 && vm->cfg.ncpus > (unsigned int)max) {
		vm_errf(vm, "%u vCPUs requested; KVM here allows at most %d", vm->cfg.ncpus, max);
		return -EINVAL;
	}
	vm->nested_state_size = kvm_check_extension(&vm->sys, KVM_CAP_NESTED_STATE);
	if (vm->nested_state_size < 0)
		vm->nested_state_size = 0;
	r = kvm_vm_create(&vm->sys, &vm->kvm);
	if (r < 0)
		return vm_kvm_err(vm, r, "creating the VM");
	/* Exceptions pending with their payload (a #PF's CR2) are then kept
	 * apart from those injected: a saved nested guest resumes exactly. */
	if (kvm_vm_check_extension(&vm->kvm, KVM_CAP_EXCEPTION_PAYLOAD) > 0 &&
	    kvm_vm_enable_cap(&vm->kvm, KVM_CAP_EXCEPTION_PAYLOAD, 1) < 0)
		return vm_kvm_err(vm, -EINVAL, "enabling KVM_CAP_EXCEPTION_PAYLOAD");
	r = kvm_get_supported_cpuid(&vm->sys, &vm->supported_cpuid);
	if (r < 0)
		return vm_kvm_err(vm, r, "reading supported CPUID");
	return 0;
}

/* Step 2: platform pieces KVM emulates in the kernel. */
static int vm_build_platform(struct vm *vm)
{
	int r;

	r = kvm_vm_set_identity_map_addr(&vm->kvm, LAYOUT_KVM_IDMAP_ADDR);
	if (r >= 0)
		r = kvm_vm_set_tss_addr(&vm->kvm, LAYOUT_KVM_TSS_ADDR);
	if (r >= 0 && !vm->cfg.no_irqchip) {
		r = kvm_vm_create_irqchip(&vm->kvm);
		if (r >= 0)
			r = kvm_vm_create_pit2(&vm->kvm);
	}
	return r < 0 ? vm_kvm_err(vm, r, "setting up the platform") : 0;
}

/* Step 3: RAM below the 32-bit hole, and the rest above 4 GiB. */
static int vm_build_memory(struct vm *vm)
{
	uint64_t low = MIN(vm->cfg.mem_size, LAYOUT_MMIO_HOLE_ADDR);
	uint64_t high = vm->cfg.mem_size - low;
	int r;

	r = guestmem_add(&vm->mem, 0, low);
	if (r >= 0 && high)
		r = guestmem_add(&vm->mem, LAYOUT_MMIO_HOLE_END, high);
	if (r < 0) {
		vm_errf(vm, "allocating %llu MiB of guest memory: %s",
			(unsigned long long)(vm->cfg.mem_size >> 20), strerror(-r));
		return r;
	}
	for (unsigned int i = 0; i < vm->mem.nregions; i++) {
		const struct guestmem_region *g = &vm->mem.regions[i];

		r = kvm_vm_set_memory(&vm->kvm, i, g->gpa, g->size, g->host);
		if (r < 0)
			return vm_kvm_err(vm, r, "mapping guest memory");
	}
	return 0;
}

/* Step 4: vCPUs with their CPUID, FPU, MSRs and LAPIC. */
static int vm_build_vcpus(struct vm *vm)
{
	struct cpuid_config cc = { .ncpus = vm->cfg.ncpus, .expose_virt = vm->cfg.expose_virt };
	int r;

	if (vm->cfg.expose_virt && !cpuid_has_virt(vm->supported_cpuid)) {
		vm_errf(vm, "cannot expose virtualization extensions: KVM on this host offers neither VMX nor SVM to guests "
			"(load kvm_intel or kvm_amd with nested=1, e.g. 'modprobe -r kvm_amd && modprobe kvm_amd nested=1')");
		return -ENOTSUP;
	}
	vm->vcpus = calloc(vm->cfg.ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		vm_errf(vm, "out of memory");
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < vm->cfg.ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		struct kvm_cpuid2 *cpuid;

		v->vm = vm;
		v->kvm.fd = -1;
		r = kvm_vcpu_create(&vm->kvm, i, &v->kvm);
		if (r < 0)
			return vm_kvm_err(vm, r, "creating a vCPU");
		vm->ncpus++;
		cpuid = cpuid_build(vm->supported_cpuid, &cc, i);
		if (!cpuid) {
			vm_errf(vm, "out of memory");
			return -ENOMEM;
		}
		r = kvm_vcpu_set_cpuid2(&v->kvm, cpuid);
		free(cpuid);
		if (r >= 0)
			r = x86_setup_vcpu_common(&v->kvm, !vm->cfg.no_irqchip);
		if (r < 0)
			return vm_kvm_err(vm, r, "setting up a vCPU");
	}
	return 0;
}

/* Step 5: the legacy devices on the port bus. */
static int vm_build_devices(struct vm *vm)
{
	struct power_sink power = { vm_power_event, vm };
	struct irq_line com1_irq = { vm->cfg.no_irqchip ? NULL : vm_irq_set, vm, LAYOUT_COM1_IRQ };
	struct irq_line sci = { vm->cfg.no_irqchip ? NULL : vm_irq_set, vm, LAYOUT_SCI_IRQ };
	struct irq_line kbd_irq = { vm->cfg.no_irqchip ? NULL : vm_irq_set, vm, LAYOUT_I8042_IRQ };
	int r;

	r = serial_init(&vm->com1, com1_irq, vm->cfg.console_out);
	vm->com1.observe = vm_console_observe;
	vm->com1.observe_opaque = vm;
	if (r < 0)
		return r;
	i8042_init(&vm->i8042, kbd_irq, power);
	rtc_init(&vm->rtc, vm->mem.regions[0].size, vm->mem.nregions > 1 ? vm->mem.regions[1].size : 0);
	acpi_pm_init(&vm->pm, sci, power);

	r = bus_register(&vm->pio, LAYOUT_COM1_PORT, 8, "com1", serial_io, &vm->com1);
	if (r >= 0)
		r = bus_register(&vm->pio, LAYOUT_I8042_PORT, 5, "i8042", i8042_io, &vm->i8042);
	if (r >= 0)
		r = bus_register(&vm->pio, LAYOUT_RTC_PORT, 2, "rtc", rtc_io, &vm->rtc);
	if (r >= 0)
		r = bus_register(&vm->pio, LAYOUT_PM1A_EVT_PORT, LAYOUT_PM1A_EVT_LEN, "pm1a_evt",
				 acpi_pm_evt_io, &vm->pm);
	if (r >= 0)
		r = bus_register(&vm->pio, LAYOUT_PM1A_CNT_PORT, LAYOUT_PM1A_CNT_LEN, "pm1a_cnt",
				 acpi_pm_cnt_io, &vm->pm);
	if (r >= 0)
		r = bus_register(&vm->pio, LAYOUT_RESET_PORT, 1, "reset", acpi_pm_reset_io, &vm->pm);
	if (r < 0)
		vm_errf(vm, "registering devices: %s", strerror(-r));
	return r;
}

/* Adds a virtio device behind the next virtio-mmio window; takes ownership. */
static int vm_add_virtio(struct vm *vm, struct virtio_dev *dev)
{
	unsigned int i = vm->nvirtio;
	uint64_t base = LAYOUT_VIRTIO_MMIO_ADDR + i * LAYOUT_VIRTIO_MMIO_SIZE;
	uint32_t gsi = LAYOUT_FIRST_DEVICE_GSI + i;
	struct irq_line irq = { vm->cfg.no_irqchip ? NULL : vm_irq_set, vm, gsi };
	int r;

	if (i >= VMCONFIG_MAX_DEVICES) {
		virtio_dev_destroy(dev);
		return -ENOSPC;
	}
	r = virtio_mmio_create(&vm->vmmio[i], &vm->mem, irq, dev);
	if (r < 0) {
		virtio_dev_destroy(dev);
		return r;
	}
	vm->vdev[i] = dev;
	vm->acpi_mmio[i] = (struct acpi_mmio_dev){ base, LAYOUT_VIRTIO_MMIO_SIZE, gsi, VIRTIO_MMIO_ACPI_HID };
	vm->nvirtio++;
	return bus_register(&vm->mmio, base, LAYOUT_VIRTIO_MMIO_SIZE, "virtio-mmio",
			    virtio_mmio_io, vm->vmmio[i]);
}

/* Step 5b: virtio devices: disks first, so they are vda, vdb, ... */
static int vm_build_virtio(struct vm *vm)
{
	struct virtio_dev *dev;
	int r;

	r = vmconfig_check_devices(vm->cfg.ndisks, vm->cfg.nnics, vm->cfg.rng, vm->cfg.dynamic_memory,
				   vm->cfg.vsock_cid != 0, vm->err, sizeof(vm->err));
	if (r < 0)
		return r;
	for (unsigned int i = 0; i < vm->cfg.ndisks; i++) {
		const struct vm_disk *d = &vm->cfg.disks[i];
		char name[32];
		struct virtio_blk_opts bo = { .path = d->path, .name = name, .read_only = d->read_only };

		snprintf(name, sizeof(name), "virtio-blk%u", i);
		r = virtio_blk_create(&dev, &bo);
		if (r < 0) {
			vm_errf(vm, "disk '%s': %s", d->path,
				r == -EBUSY ? "in use by another VM (locked)" :
				r == -EINVAL ? "not a usable raw image (empty or under 512 bytes)" : strerror(-r));
			return r;
		}
		r = vm_add_virtio(vm, dev);
		if (r < 0) {
			vm_errf(vm, "disk '%s': %s", d->path, strerror(-r));
			return r;
		}
	}
	for (unsigned int i = 0; i < vm->cfg.nnics; i++) {
		const struct vm_nic *n = &vm->cfg.nics[i];
		char name[32], err[256];
		struct virtio_net_opts no = { .name = name };

		snprintf(name, sizeof(name), "virtio-net%u", i);
		no.backend = (struct net_backend_opts){
			.kind = n->tap ? NET_BACKEND_TAP : NET_BACKEND_SWITCH,
			.path = n->switch_sock, .tap = n->tap, .fd = -1,
			.mac_spoofing = n->mac_spoofing, .label = n->label,
		};
		/* A TAP device the caller holds open outlives this machine: a
		 * reboot's next one takes it again without the privilege that
		 * creating it took. */
		if (n->tap && n->tap_held) {
			no.backend.tap_open = true;
			no.backend.fd = fcntl(n->tap_fd, F_DUPFD_CLOEXEC, 0);
			if (no.backend.fd < 0) {
				r = -errno;
				vm_errf(vm, "network adapter %u: TAP device '%s': %s", i, n->tap, strerror(errno));
				return r;
			}
		}
		memcpy(no.backend.mac, n->mac, sizeof(n->mac));
		r = virtio_net_create(&dev, &no, err, sizeof(err));
		if (r < 0) {
			vm_errf(vm, "network adapter %u: %s", i, err);
			return r;
		}
		r = vm_add_virtio(vm, dev);
		if (r < 0) {
			vm_errf(vm, "network adapter %u: %s", i, strerror(-r));
			return r;
		}
	}
	if (vm->cfg.rng) {
		r = virtio_rng_create(&dev, "virtio-rng");
		if (r >= 0)
			r = vm_add_virtio(vm, dev);
		if (r < 0) {
			vm_errf(vm, "virtio-rng: %s", strerror(-r));
			return r;
		}
	}
	if (vm->cfg.vsock_cid) {
		struct virtio_vsock_opts vo = { .guest_cid = vm->cfg.vsock_cid, .uds_path = vm->cfg.vsock_uds };
		char err[256];

		r = virtio_vsock_create(&dev, &vo, err, sizeof(err));
		if (r < 0) {
			vm_errf(vm, "vsock: %s", err);
			return r;
		}
		r = vm_add_virtio(vm, dev);
		if (r < 0) {
			vm_errf(vm, "vsock: %s", strerror(-r));
			return r;
		}
	}
	if (vm->cfg.dynamic_memory) {
		struct virtio_balloon_opts bo = {
			.name = "virtio-balloon",
			.policy = { .min = vm->cfg.memory_min, .max = vm->cfg.mem_size },
			.startup = vm->cfg.memory_startup,
		};

		r = virtio_balloon_create(&dev, &bo);
		if (r >= 0)
			r = vm_add_virtio(vm, dev);
		if (r >= 0)
			vm->balloon = dev;
		else
			vm_errf(vm, "virtio-balloon: %s", strerror(-r));
	}
	return r;
}

/* Step 6: ACPI tables describing all of the above. */
static int vm_build_acpi(struct vm *vm)
{
	struct acpi_config ac = {
		.ncpus = vm->cfg.ncpus,
		.lapic_addr = LAYOUT_LAPIC_ADDR,
		.ioapic_addr = LAYOUT_IOAPIC_ADDR,
		.ioapic_id = (uint8_t)vm->cfg.ncpus,
		.pm1a_evt_port = LAYOUT_PM1A_EVT_PORT,
		.pm1a_cnt_port = LAYOUT_PM1A_CNT_PORT,
		.sci_irq = LAYOUT_SCI_IRQ,
		.reset_port = LAYOUT_RESET_PORT,
		.reset_value = LAYOUT_RESET_VALUE,
		.slp_typ_s5 = LAYOUT_ACPI_SLP_TYP_S5,
		.com1_port = LAYOUT_COM1_PORT,
		.com1_irq = LAYOUT_COM1_IRQ,
		.i8042_port = LAYOUT_I8042_PORT,
		.i8042_irq = LAYOUT_I8042_IRQ,
		.mmio = vm->acpi_mmio,
		.nmmio = vm->nvirtio,
	};
	void *buf = guestmem_ptr(&vm->mem, LAYOUT_ACPI_ADDR, LAYOUT_ACPI_SIZE);
	ssize_t n;

	if (!buf) {
		vm_errf(vm, "guest memory too small for ACPI tables");
		return -ENOMEM;
	}
	n = acpi_build(buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_ADDR, &ac);
	if (n < 0) {
		vm_errf(vm, "building ACPI tables: %s", strerror((int)-n));
		return (int)n;
	}
	return 0;
}

/* Step 6b: the MP table, for kernels that read no ACPI. It says what the
 * MADT says: the SCI and the virtio windows are level-triggered. */
static int vm_build_mptable(struct vm *vm)
{
	struct mptable_config mc = {
		.ncpus = vm->cfg.ncpus, .lapic_addr = LAYOUT_LAPIC_ADDR, .ioapic_addr = LAYOUT_IOAPIC_ADDR,
		.ioapic_id = (uint8_t)vm->cfg.ncpus, .ioapic_pins = LAYOUT_IOAPIC_PINS,
		.level_pins = 1u << LAYOUT_SCI_IRQ,
	};
	void *buf = guestmem_ptr(&vm->mem, LAYOUT_MPTABLE_ADDR, LAYOUT_MPTABLE_SIZE);
	ssize_t n;

	for (unsigned int i = 0; i < vm->nvirtio; i++)
		mc.level_pins |= 1u << vm->acpi_mmio[i].gsi;
	n = buf ? mptable_build(buf, LAYOUT_MPTABLE_SIZE, LAYOUT_MPTABLE_ADDR, &mc) : -ENOMEM;
	if (n < 0) {
		vm_errf(vm, "building the MP table: %s", strerror((int)-n));
		return (int)n;
	}
	return 0;
}

/* The command line the kernel gets: with acpi=off it also names the virtio
 * windows, as Firecracker's guests expect (virtio_mmio.device=). */
static int vm_boot_cmdline(struct vm *vm, const char **out)
{
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	size_t len = strlen(cmdline) + 64 * (size_t)vm->nvirtio + 1;

	*out = cmdline;
	if (!boot_cmdline_acpi_off(cmdline) || !vm->nvirtio)
		return 0;
	vm->cmdline_buf = malloc(len);
	if (!vm->cmdline_buf || boot_cmdline_mmio_devices(cmdline, vm->acpi_mmio, vm->nvirtio,
							  vm->cmdline_buf, len) < 0) {
		vm_errf(vm, "out of memory");
		return -ENOMEM;
	}
	*out = vm->cmdline_buf;
	return 0;
}

/* Step 7: the boot image and the boot vCPU's registers. */
static int vm_build_boot(struct vm *vm)
{
	const struct vm_payload *pl = vm->cfg.payload;
	struct boot_entry entry = { 0 };
	char why[256];
	int r;

	r = x86_write_boot_tables(&vm->mem);
	if (r < 0) {
		vm_errf(vm, "guest memory too small for boot page tables");
		return r;
	}
	if (pl) {
		if (guestmem_write(&vm->mem, pl->gpa, pl->data, pl->len) < 0) {
			vm_errf(vm, "payload does not fit in guest memory");
			return -ENOMEM;
		}
		/* Without an irqchip every vCPU runs the payload; it reads its
		 * index from rsi. */
		for (unsigned int i = 0; i < vm->ncpus; i++) {
			if (!vm->cfg.no_irqchip && i > 0)
				break;
			r = pl->real_mode ? x86_setup_real_mode(&vm->vcpus[i].kvm, pl->entry)
					  : x86_setup_long_mode(&vm->vcpus[i].kvm, pl->entry, i);
			if (r < 0)
				return vm_kvm_err(vm, r, "setting boot registers");
		}
		return 0;
	}
	struct boot_linux bl = {
		.kernel = vm->cfg.kernel, .initrd = vm->cfg.initrd, .rsdp_addr = LAYOUT_ACPI_ADDR,
		.guest_decompress = vm->cfg.guest_decompress,
	};
	r = vm_boot_cmdline(vm, &bl.cmdline);
	if (r < 0)
		return r;
	vm->boot.load_start = util_now_ns();
	r = boot_load_linux(&vm->mem, &bl, &entry, why, sizeof(why));
	vm->boot.load_end = util_now_ns();
	vm->boot.unpack_ns = entry.unpack_ns;
	if (r < 0) {
		vm_errf(vm, "kernel: %s", why);
		return r;
	}
	r = x86_setup_long_mode(&vm->vcpus[0].kvm, entry.rip, entry.rsi);
	return r < 0 ? vm_kvm_err(vm, r, "setting boot registers") : 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->sys.fd = -1;
	vm->kvm.fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->stopped, NULL);
	pthread_cond_init(&vm->park_change, NULL);
	if (cfg->ncpus < 1 || cfg->ncpus > VMCONFIG_MAX_CPUS) {
		vm_errf(vm, "%u vCPUs: must be 1 to %d", cfg->ncpus, VMCONFIG_MAX_CPUS);
		r = -EINVAL;
		goto fail;
	}
	if (vmconfig_check_memory(cfg->mem_size) < 0) {
		vm_errf(vm, "memory must be a whole number of MiB from 16M to 1T");
		r = -EINVAL;
		goto fail;
	}
	if (cfg->dynamic_memory &&
	    (vmconfig_check_memory(cfg->memory_min) < 0 || vmconfig_check_memory(cfg->memory_startup) < 0 ||
	     cfg->memory_min > cfg->memory_startup || cfg->memory_startup > cfg->mem_size)) {
		vm_errf(vm, "dynamic memory needs minimum <= startup <= maximum, whole MiB, from 16M");
		r = -EINVAL;
		goto fail;
	}
	if (!cfg->payload && !cfg->kernel.size && !cfg->restore) {
		vm_errf(vm, "nothing to boot: no kernel");
		r = -EINVAL;
		goto fail;
	}
	r = vm_build_kvm(vm);
	if (r >= 0)
		r = vm_build_platform(vm);
	if (r >= 0)
		r = vm_build_memory(vm);
	if (r >= 0)
		r = vm_build_vcpus(vm);
	if (r >= 0)
		r = vm_build_devices(vm);
	if (r >= 0)
		r = vm_build_virtio(vm);
	if (r >= 0 && !cfg->payload && !cfg->restore)
		r = vm_build_acpi(vm);
	if (r >= 0 && !cfg->payload && !cfg->restore)
		r = vm_build_mptable(vm);
	if (r >= 0 && !cfg->restore)
		r = vm_build_boot(vm);
	if (r >= 0)
		return 0;
fail:
	vm_destroy(vm);
	return r;
}

void vm_destroy(struct vm *vm)
{
	/* Device workers hold pointers into guest RAM: they go first. */
	for (unsigned int i = 0; i < vm->nvirtio; i++) {
		virtio_mmio_destroy(vm->vmmio[i]);
		virtio_dev_destroy(vm->vdev[i]);
		vm->vmmio[i] = NULL;
		vm->vdev[i] = NULL;
	}
	vm->nvirtio = 0;
	vm->balloon = NULL;
	for (unsigned int i = 0; i < vm->ncpus; i++)
		kvm_vcpu_destroy(&vm->vcpus[i].kvm);
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->ncpus = 0;
	free(vm->supported_cpuid);
	vm->supported_cpuid = NULL;
	guestmem_free(&vm->mem);
	kvm_vm_destroy(&vm->kvm);
	kvm_sys_close(&vm->sys);
	free(vm->cmdline_buf);
	vm->cmdline_buf = NULL;
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
}

/* Kicks every running vCPU out of KVM_RUN; lock held. */
static void vm_kick_all(struct vm *vm)
{
	pthread_t self = pthread_self();

	for (unsigned int i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		v->kvm.run->immediate_exit = 1;
		if (v->started && !pthread_equal(v->thread, self))
			pthread_kill(v->thread, VM_KICK_SIGNAL);
	}
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason why, const char *diag)
{
	pthread_mutex_lock(&vm->lock);
	if (atomic_load(&vm->stop) == VM_STOP_NONE) {
		vm_boot_mark(&vm->boot.stop);
		if (diag)
			snprintf(vm->diag, sizeof(vm->diag), "%s", diag);
		atomic_store(&vm->stop, why);
		vm_kick_all(vm);
		pthread_cond_broadcast(&vm->stopped);
		pthread_cond_broadcast(&vm->park_change);
	}
	pthread_mutex_unlock(&vm->lock);
}

void vcpu_decode_exit(struct kvm_run *run, size_t run_size, struct vcpu_exit *e)
{
	memset(e, 0, sizeof(*e));
	e->detail = run->exit_reason;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		e->kind = VCPU_EXIT_IO;
		e->addr = run->io.port;
		e->size = run->io.size;
		e->count = run->io.count;
		e->is_write = run->io.direction == KVM_EXIT_IO_OUT;
		/* The data must lie inside the shared page, whoever filled it in. */
		if (run->io.data_offset >= run_size || !e->size || e->size > 8 ||
		    (uint64_t)e->size * e->count > run_size - run->io.data_offset) {
			e->kind = VCPU_EXIT_UNKNOWN;
			break;
		}
		e->data = (uint8_t *)run + run->io.data_offset;
		break;
	case KVM_EXIT_MMIO:
		e->kind = VCPU_EXIT_MMIO;
		e->addr = run->mmio.phys_addr;
		e->size = run->mmio.len;
		e->count = 1;
		e->is_write = run->mmio.is_write;
		e->data = run->mmio.data;
		if (!e->size || e->size > sizeof(run->mmio.data))
			e->kind = VCPU_EXIT_UNKNOWN;
		break;
	case KVM_EXIT_HLT:
		e->kind = VCPU_EXIT_HLT;
		break;
	case KVM_EXIT_SHUTDOWN:
		e->kind = VCPU_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		e->kind = VCPU_EXIT_SYSTEM_EVENT;
		e->detail = run->system_event.type;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		e->kind = VCPU_EXIT_INTERNAL_ERROR;
		e->detail = run->internal.suberror;
		break;
	case KVM_EXIT_FAIL_ENTRY:
		e->kind = VCPU_EXIT_FAIL_ENTRY;
		e->detail = run->fail_entry.hardware_entry_failure_reason;
		break;
	case KVM_EXIT_INTR:
		e->kind = VCPU_EXIT_INTR;
		break;
	default:
		e->kind = VCPU_EXIT_UNKNOWN;
		break;
	}
}

/* A fault stops the VM with one diagnosis line and the registers. */
static enum vcpu_action vcpu_fault(struct vcpu *vcpu, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static enum vcpu_action vcpu_fault(struct vcpu *vcpu, const char *fmt, ...)
{
	char diag[1024];
	FILE *f;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(diag, sizeof(diag), fmt, ap);
	va_end(ap);
	f = fmemopen(diag + strlen(diag), sizeof(diag) - strlen(diag), "w");
	if (f) {
		fputc('\n', f);
		if (vcpu->kvm.fd >= 0)
			x86_dump_regs(&vcpu->kvm, f);
		fclose(f);
	}
	vm_request_stop(vcpu->vm, VM_STOP_FAULT, diag);
	return VCPU_STOP;
}

enum vcpu_action vm_dispatch_exit(struct vm *vm, struct vcpu *vcpu, const struct vcpu_exit *e)
{
	switch (e->kind) {
	case VCPU_EXIT_IO:
		for (uint32_t i = 0; i < e->count; i++)
			bus_access(&vm->pio, e->addr, e->data + (size_t)i * e->size, e->size, e->is_write);
		return VCPU_CONTINUE;
	case VCPU_EXIT_MMIO:
		bus_access(&vm->mmio, e->addr, e->data, e->size, e->is_write);
		return VCPU_CONTINUE;
	case VCPU_EXIT_INTR:
		return atomic_load(&vm->stop) ? VCPU_STOP : VCPU_CONTINUE;
	case VCPU_EXIT_HLT:
		/* Only without an irqchip: this vCPU is done; the machine is
		 * once every vCPU is. */
		if (atomic_fetch_add(&vm->halted, 1) + 1 == vm->ncpus)
			vm_request_stop(vm, VM_STOP_HALT, NULL);
		return VCPU_STOP;
	case VCPU_EXIT_SYSTEM_EVENT:
		if (e->detail == KVM_SYSTEM_EVENT_SHUTDOWN) {
			vm_request_stop(vm, VM_STOP_POWEROFF, NULL);
			return VCPU_STOP;
		}
		if (e->detail == KVM_SYSTEM_EVENT_RESET) {
			vm_request_stop(vm, VM_STOP_RESET, NULL);
			return VCPU_STOP;
		}
		return vcpu_fault(vcpu, "vcpu%u: guest crashed (system event %llu)",
				  vcpu->kvm.id, (unsigned long long)e->detail);
	case VCPU_EXIT_SHUTDOWN:
		return vcpu_fault(vcpu, "vcpu%u: triple fault: the guest crashed while handling an exception",
				  vcpu->kvm.id);
	case VCPU_EXIT_INTERNAL_ERROR:
		return vcpu_fault(vcpu, "vcpu%u: KVM internal error, suberror %llu%s", vcpu->kvm.id,
				  (unsigned long long)e->detail,
				  e->detail == KVM_INTERNAL_ERROR_EMULATION ?
				  " (KVM could not emulate an instruction)" : "");
	case VCPU_EXIT_FAIL_ENTRY:
		return vcpu_fault(vcpu, "vcpu%u: VM entry failed, hardware reason 0x%llx",
				  vcpu->kvm.id, (unsigned long long)e->detail);
	case VCPU_EXIT_UNKNOWN:
		break;
	}
	return vcpu_fault(vcpu, "vcpu%u: unexpected KVM exit %llu", vcpu->kvm.id,
			  (unsigned long long)e->detail);
}

void vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (!atomic_load(&vm->paused)) {
		atomic_store(&vm->paused, true);
		vm_kick_all(vm);
	}
	while (vm->parked < vm->ncpus - atomic_load(&vm->halted) && !atomic_load(&vm->stop))
		pthread_cond_wait(&vm->park_change, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->paused, false);
	pthread_cond_broadcast(&vm->park_change);
	pthread_mutex_unlock(&vm->lock);
}

void vm_start_paused(struct vm *vm)
{
	atomic_store(&vm->paused, true);
}

bool vm_is_paused(struct vm *vm)
{
	return atomic_load(&vm->paused);
}

void vm_power_button(struct vm *vm)
{
	acpi_pm_power_button(&vm->pm);
}

void vm_ctrl_alt_del(struct vm *vm)
{
	i8042_ctrl_alt_del(&vm->i8042);
}

int vm_swap_disk(struct vm *vm, unsigned int i, const char *path)
{
	/* Disks are the first virtio devices, in order. */
	if (i >= vm->cfg.ndisks || i >= vm->nvirtio)
		return -EINVAL;
	return virtio_blk_swap(vm->vdev[i], path);
}

void vm_console_input(struct vm *vm, const uint8_t *buf, size_t len)
{
	while (len) {
		unsigned int got = serial_receive(&vm->com1, buf, (unsigned int)MIN(len, 4096u));

		if (!got) {
			serial_wait_rx_space(&vm->com1);
			if (vm->com1.closing)
				return;
			continue;
		}
		buf += got;
		len -= got;
	}
}

void vm_console_close_input(struct vm *vm)
{
	serial_close_input(&vm->com1);
}

uint64_t vm_memory_touched(struct vm *vm)
{
	return guestmem_resident(&vm->mem);
}

int vm_memory_info(struct vm *vm, struct virtio_balloon_info *info)
{
	if (!vm->balloon)
		return -ENOTSUP;
	virtio_balloon_get_info(vm->balloon, info);
	return 0;
}

int vm_set_memory_target(struct vm *vm, uint64_t bytes, uint64_t *applied)
{
	if (!vm->balloon)
		return -ENOTSUP;
	*applied = virtio_balloon_set_target(vm->balloon, bytes);
	return 0;
}

static int vm_slots_flags(struct vm *vm, uint32_t flags)
{
	for (unsigned int i = 0; i < vm->mem.nregions; i++) {
		const struct guestmem_region *g = &vm->mem.regions[i];
		int r = kvm_vm_set_memory_flags(&vm->kvm, i, g->gpa, g->size, g->host, flags);

		if (r < 0)
			return r;
	}
	return 0;
}

int vm_dirty_log_start(struct vm *vm)
{
	int r = guestmem_log_start(&vm->mem);

	if (r >= 0)
		r = vm_slots_flags(vm, KVM_MEM_LOG_DIRTY_PAGES);
	if (r < 0)
		vm_dirty_log_stop(vm);
	return r;
}

void vm_dirty_log_stop(struct vm *vm)
{
	(void)vm_slots_flags(vm, 0);
	guestmem_log_stop(&vm->mem);
}

int vm_dirty_log_take(struct vm *vm, unsigned int region, uint64_t *bitmap)
{
	int r;

	if (region >= vm->mem.nregions)
		return -EINVAL;
	r = kvm_vm_get_dirty_log(&vm->kvm, region, bitmap);
	if (r < 0)
		return r;
	guestmem_log_take(&vm->mem, region, bitmap);
	return 0;
}

/* A vCPU waits here while the VM is paused. */
static void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	pthread_mutex_lock(&vm->lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->park_change);
	while (atomic_load(&vm->paused) && !atomic_load(&vm->stop))
		pthread_cond_wait(&vm->park_change, &vm->lock);
	vm->parked--;
	if (!atomic_load(&vm->stop))
		vcpu->kvm.run->immediate_exit = 0;
	pthread_mutex_unlock(&vm->lock);
}

static void vm_kick_handler(int sig)
{
	(void)sig;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	struct vcpu_exit e;
	sigset_t set;

	sandbox_enter(SANDBOX_ROLE_VCPU);
	sigemptyset(&set);
	sigaddset(&set, VM_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (!atomic_load(&vm->stop)) {
		int r;

		if (atomic_load(&vm->paused)) {
			/* Let KVM finish the instruction behind the last exit
			 * first, running no guest code: a paused machine's
			 * state can then be saved as it stands. */
			vcpu->kvm.run->immediate_exit = 1;
			if (kvm_vcpu_run(&vcpu->kvm) < 0) {
				/* -EINTR is the expected answer */
			}
			vcpu_park(vcpu);
			continue;
		}
		if (vcpu->kvm.id == 0 && !atomic_load(&vm->boot.entry))
			vm_boot_mark(&vm->boot.entry);
		r = kvm_vcpu_run(&vcpu->kvm);

		if (r == -EINTR || r == -EAGAIN) {
			continue;
		} else if (r < 0) {
			char diag[256];
			snprintf(diag, sizeof(diag), "vcpu%u: KVM_RUN: %s", vcpu->kvm.id, strerror(-r));
			vm_request_stop(vm, VM_STOP_FAULT, diag);
			break;
		}
		vcpu_decode_exit(vcpu->kvm.run, (size_t)vcpu->kvm.run_size, &e);
		if (vm_dispatch_exit(vm, vcpu, &e) == VCPU_STOP)
			break;
	}
	/* Let KVM finish the instruction behind the last exit (an IN's data,
	 * an OUT's RIP) so the state left behind can be saved and resumed. */
	vcpu->kvm.run->immediate_exit = 1;
	if (kvm_vcpu_run(&vcpu->kvm) < 0) {
		/* -EINTR is the expected answer */
	}
	return NULL;
}

enum vm_stop_reason vm_run(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = vm_kick_handler };
	sigset_t set, old;

	/* No SA_RESTART: the kick must make KVM_RUN return EINTR. */
	sigaction(VM_KICK_SIGNAL, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, VM_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int r;

		pthread_mutex_lock(&vm->lock);
		r = pthread_create(&v->thread, NULL, vcpu_thread, v);
		v->started = r == 0;
		pthread_mutex_unlock(&vm->lock);
		if (r) {
			char diag[128];
			snprintf(diag, sizeof(diag), "starting vcpu%u: %s", i, strerror(r));
			vm_request_stop(vm, VM_STOP_FAULT, diag);
			break;
		}
	}
	pthread_mutex_lock(&vm->lock);
	while (atomic_load(&vm->stop) == VM_STOP_NONE)
		pthread_cond_wait(&vm->stopped, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		if (vm->vcpus[i].started)
			pthread_join(vm->vcpus[i].thread, NULL);
		vm->vcpus[i].started = false;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return (enum vm_stop_reason)atomic_load(&vm->stop);
}

/* The probe's port: the guest reports its TSC count, low then high half. */
struct probe_report {
	uint32_t half[2];
	unsigned int n;
};

static void probe_report(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct probe_report *p = opaque;

	(void)offset;
	if (is_write && len == 4 && p->n < 2)
		memcpy(&p->half[p->n++], data, 4);
}

static int vm_probe_once(const char *kvm_path, double *mips)
{
	/* Two loops of TURNS turns (dec; jnz): the first warms up whatever runs
	 * the guest (nested paging, a translator); the guest times the second
	 * itself with RDTSC and reports the count through port 0xe9. Timing it
	 * from outside would add the cost of an exit and an entry, which is
	 * large in a deeply nested guest and says nothing about how fast
	 * kernel code runs there. */
	enum { TURNS = 100000 };
#define PROBE_LOOP 0xb9, TURNS & 0xff, (TURNS >> 8) & 0xff, (TURNS >> 16) & 0xff, 0, 0xff, 0xc9, 0x75, 0xfc
	static const uint8_t code[] = {
		PROBE_LOOP,
		0x0f, 0x31,             /* rdtsc */
		0x89, 0xc6,             /* mov esi, eax */
		0x89, 0xd7,             /* mov edi, edx */
		PROBE_LOOP,
		0x0f, 0x31,             /* rdtsc */
		0x29, 0xf0,             /* sub eax, esi */
		0x19, 0xfa,             /* sbb edx, edi */
		0xe7, 0xe9,             /* out 0xe9, eax */
		0x89, 0xd0,             /* mov eax, edx */
		0xe7, 0xe9,             /* out 0xe9, eax */
		0xf4,                   /* hlt */
	};
#undef PROBE_LOOP
	struct vm_payload pl = { code, sizeof(code), 0x10000, 0x10000, false };
	struct vm_config cfg = {
		.mem_size = VMCONFIG_MIN_MEMORY, .ncpus = 1, .payload = &pl,
		.no_irqchip = true, .console_out = -1, .kvm_path = kvm_path,
	};
	struct vm *vm = calloc(1, sizeof(*vm));
	struct probe_report rep = { { 0, 0 }, 0 };
	enum vm_stop_reason why;
	uint64_t cycles;
	int khz, r;

	if (!vm)
		return -ENOMEM;
	r = vm_create(vm, &cfg);
	if (r >= 0)
		r = bus_register(&vm->pio, 0xe9, 4, "probe", probe_report, &rep);
	if (r >= 0)
		r = khz = kvm_vcpu_get_tsc_khz(&vm->vcpus[0].kvm);
	if (r < 0) {
		vm_destroy(vm);
		free(vm);
		return r;
	}
	why = vm_run(vm);
	vm_destroy(vm);
	free(vm);
	cycles = (uint64_t)rep.half[1] << 32 | rep.half[0];
	if (why != VM_STOP_HALT || rep.n != 2 || !cycles || khz <= 0)
		return -EIO;
	*mips = 2.0 * TURNS * khz / ((double)cycles * 1000.0);
	return 0;
}

/* The first guest a fresh host runs can be slow for reasons of its own (cold
 * caches, nested paging set-up); a truly emulating host is slow every time. */
int vm_probe_speed(const char *kvm_path, double *mips)
{
	double best = 0, m;
	int r = 0;

	for (int i = 0; i < 3 && best < VM_PROBE_MIN_MIPS; i++) {
		r = vm_probe_once(kvm_path, &m);
		if (r < 0)
			return r;
		best = MAX(best, m);
	}
	*mips = best;
	return 0;
}

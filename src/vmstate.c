/* A machine's whole state, saved and loaded (see vmstate.h). */
#include "vmstate.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Pages per record: long runs, bounded so a record's checksum pass stays short. */
#define VMSTATE_RUN_PAGES 1024
#define VMSTATE_MAX_DEVICES (4 + VMCONFIG_MAX_DEVICES)
#define VMSTATE_NCHIPS 3        /* PIC master, PIC slave, IOAPIC */

static int vs_err(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int vs_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static int vs_write_err(struct snap_writer *w, char *err, size_t errlen)
{
	return vs_err(err, errlen, w->err, "writing the saved state: %s", strerror(-w->err));
}

/* ---- the devices, by the names their records carry ---- */

struct vs_device {
	char name[16];
	void (*save)(struct vm *vm, unsigned int i, struct snap_buf *b);
	int (*load)(struct vm *vm, unsigned int i, struct snap_cur *c);
	unsigned int index;
};

static void save_com1(struct vm *vm, unsigned int i, struct snap_buf *b) { (void)i; serial_save(&vm->com1, b); }
static int load_com1(struct vm *vm, unsigned int i, struct snap_cur *c) { (void)i; return serial_load(&vm->com1, c); }
static void save_i8042(struct vm *vm, unsigned int i, struct snap_buf *b) { (void)i; i8042_save(&vm->i8042, b); }
static int load_i8042(struct vm *vm, unsigned int i, struct snap_cur *c) { (void)i; return i8042_load(&vm->i8042, c); }
static void save_rtc(struct vm *vm, unsigned int i, struct snap_buf *b) { (void)i; rtc_save(&vm->rtc, b); }
static int load_rtc(struct vm *vm, unsigned int i, struct snap_cur *c) { (void)i; return rtc_load(&vm->rtc, c); }
static void save_pm(struct vm *vm, unsigned int i, struct snap_buf *b) { (void)i; acpi_pm_save(&vm->pm, b); }
static int load_pm(struct vm *vm, unsigned int i, struct snap_cur *c) { (void)i; return acpi_pm_load(&vm->pm, c); }
static void save_virtio(struct vm *vm, unsigned int i, struct snap_buf *b) { virtio_mmio_save(vm->vmmio[i], b); }
static int load_virtio(struct vm *vm, unsigned int i, struct snap_cur *c) { return virtio_mmio_load(vm->vmmio[i], c); }

/* The machine's devices, legacy ones first; returns how many. */
static unsigned int vs_devices(struct vm *vm, struct vs_device *d)
{
	unsigned int n = 0;

	d[n++] = (struct vs_device){ "com1", save_com1, load_com1, 0 };
	d[n++] = (struct vs_device){ "i8042", save_i8042, load_i8042, 0 };
	d[n++] = (struct vs_device){ "rtc", save_rtc, load_rtc, 0 };
	d[n++] = (struct vs_device){ "pm", save_pm, load_pm, 0 };
	for (unsigned int i = 0; i < vm->nvirtio; i++) {
		d[n] = (struct vs_device){ "", save_virtio, load_virtio, i };
		snprintf(d[n].name, sizeof(d[n].name), "virtio%u", i % 100);
		n++;
	}
	return n;
}

void vmstate_hold_devices(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nvirtio; i++)
		virtio_dev_hold(vm->vdev[i]);
}

void vmstate_release_devices(struct vm *vm)
{
	for (unsigned int i = vm->nvirtio; i-- > 0;)
		virtio_dev_release(vm->vdev[i]);
}

/* ---- saving ---- */

int vmstate_put_head(struct vm *vm, const char *config_text, struct snap_writer *w, char *err, size_t errlen)
{
	struct kvm_cpuid_entry2 *e0 = cpuid_find(vm->supported_cpuid, 0, 0);
	struct kvm_cpuid_entry2 *e1 = cpuid_find(vm->supported_cpuid, 1, 0);
	int khz = vm->ncpus ? kvm_vcpu_get_tsc_khz(&vm->vcpus[0].kvm) : 0;
	struct snap_buf b = { 0 };
	uint32_t id[3] = { 0, 0, 0 };
	int r;

	if (e0) {
		id[0] = e0->ebx;
		id[1] = e0->edx;
		id[2] = e0->ecx;
	}
	snap_put_u32(&b, (uint32_t)cpuid_vendor(vm->supported_cpuid));
	snap_put_bytes(&b, id, sizeof(id));
	snap_put_u32(&b, e1 ? e1->eax : 0);
	snap_put_u32(&b, khz > 0 ? (uint32_t)khz : 0);
	snap_put_u32(&b, (uint32_t)vm->nested_state_size);
	snap_put_u32(&b, (uint32_t)sizeof(struct kvm_xsave));
	snap_put_u32(&b, vm->ncpus);
	snap_put_u64(&b, vm->cfg.mem_size);
	snap_put_u8(&b, !vm->cfg.no_irqchip);
	r = snap_write_header(w);
	if (r >= 0)
		r = snap_write_buf(w, SNAP_REC_MACHINE, &b);
	if (r >= 0)
		r = snap_write_record(w, SNAP_REC_CONFIG, config_text, strlen(config_text));
	snap_buf_free(&b);
	return r < 0 ? vs_write_err(w, err, errlen) : 0;
}

static bool vs_page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < SNAP_PAGE / sizeof(*q); i++)
		if (q[i])
			return false;
	return true;
}

int vmstate_put_memory(struct vm *vm, struct snap_writer *w, char *err, size_t errlen)
{
	unsigned char vec[VMSTATE_RUN_PAGES];

	if ((uint64_t)sysconf(_SC_PAGESIZE) != SNAP_PAGE)
		return vs_err(err, errlen, -ENOTSUP, "saving guest memory needs 4 KiB host pages");
	for (unsigned int i = 0; i < vm->mem.nregions; i++) {
		const struct guestmem_region *g = &vm->mem.regions[i];

		for (uint64_t off = 0; off < g->size; off += VMSTATE_RUN_PAGES * SNAP_PAGE) {
			uint64_t pages = MIN(g->size - off, VMSTATE_RUN_PAGES * SNAP_PAGE) / SNAP_PAGE;
			uint64_t run = 0, start = 0;

			/* Pages the guest never touched are not resident: zero. */
			if (mincore(g->host + off, pages * SNAP_PAGE, vec) < 0)
				return vs_err(err, errlen, -errno, "reading guest memory residency: %s",
					      strerror(errno));
			for (uint64_t p = 0; p <= pages; p++) {
				bool keep = p < pages && (vec[p] & 1) &&
					    !vs_page_is_zero(g->host + off + p * SNAP_PAGE);

				if (keep && !run)
					start = p;
				if (keep) {
					run++;
					continue;
				}
				if (run && snap_write_pages(w, g->gpa + off + start * SNAP_PAGE,
							    g->host + off + start * SNAP_PAGE, run) < 0)
					return vs_write_err(w, err, errlen);
				run = 0;
			}
		}
	}
	return 0;
}

static int vs_put_vcpus(struct vm *vm, struct snap_writer *w, char *err, size_t errlen)
{
	struct kvm_msr_list *list = NULL;
	int r;

	r = kvm_get_msr_index_list(&vm->sys, &list);
	if (r < 0)
		return vs_err(err, errlen, r, "listing the MSRs to save: %s: %s", kvm_last_op(), strerror(-r));
	for (unsigned int i = 0; i < vm->ncpus && r >= 0; i++) {
		struct x86_vcpu_state st;
		struct snap_buf b = { 0 };

		r = x86_vcpu_state_save(&vm->vcpus[i].kvm, list, vm->nested_state_size, !vm->cfg.no_irqchip, &st);
		if (r < 0) {
			vs_err(err, errlen, r, "reading vcpu%u's state: %s: %s", i, kvm_last_op(), strerror(-r));
			break;
		}
		snap_put_u32(&b, i);
		x86_vcpu_state_put(&st, &b);
		x86_vcpu_state_free(&st);
		r = snap_write_buf(w, SNAP_REC_VCPU, &b);
		snap_buf_free(&b);
		if (r < 0)
			vs_write_err(w, err, errlen);
	}
	free(list);
	return r < 0 ? r : 0;
}

int vmstate_put_devices(struct vm *vm, struct snap_writer *w, char *err, size_t errlen)
{
	struct vs_device dev[VMSTATE_MAX_DEVICES];
	unsigned int ndev = vs_devices(vm, dev);
	struct kvm_clock_data clock = { 0 };
	struct snap_buf b = { 0 };
	int r;

	r = kvm_vm_get_clock(&vm->kvm, &clock);
	if (r < 0)
		return vs_err(err, errlen, r, "reading the guest clock: %s: %s", kvm_last_op(), strerror(-r));
	snap_put_struct(&b, &clock, sizeof(clock));
	r = snap_write_buf(w, SNAP_REC_CLOCK, &b);
	snap_buf_free(&b);
	if (r >= 0 && !vm->cfg.no_irqchip) {
		struct kvm_pit_state2 pit;

		snap_put_u32(&b, VMSTATE_NCHIPS);
		for (uint32_t chip = 0; chip < VMSTATE_NCHIPS && r >= 0; chip++) {
			struct kvm_irqchip c = { .chip_id = chip };

			r = kvm_vm_get_irqchip(&vm->kvm, &c);
			snap_put_struct(&b, &c, sizeof(c));
		}
		if (r < 0) {
			snap_buf_free(&b);
			return vs_err(err, errlen, r, "reading the irqchip: %s: %s", kvm_last_op(), strerror(-r));
		}
		r = snap_write_buf(w, SNAP_REC_IRQCHIP, &b);
		snap_buf_free(&b);
		if (r >= 0 && (r = kvm_vm_get_pit2(&vm->kvm, &pit)) < 0)
			return vs_err(err, errlen, r, "reading the PIT: %s: %s", kvm_last_op(), strerror(-r));
		snap_put_struct(&b, &pit, sizeof(pit));
		if (r >= 0)
			r = snap_write_buf(w, SNAP_REC_PIT, &b);
		snap_buf_free(&b);
	}
	for (unsigned int i = 0; i < ndev && r >= 0; i++) {
		snap_put_str(&b, dev[i].name);
		dev[i].save(vm, dev[i].index, &b);
		r = snap_write_buf(w, SNAP_REC_DEVICE, &b);
		snap_buf_free(&b);
	}
	if (r < 0)
		return vs_write_err(w, err, errlen);
	return vs_put_vcpus(vm, w, err, errlen);
}

int vmstate_save(struct vm *vm, const char *config_text, struct snap_writer *w, char *err, size_t errlen)
{
	int r;

	r = vmstate_put_head(vm, config_text, w, err, errlen);
	if (r < 0)
		return r;
	/* Devices stand still from before memory is read to after their own
	 * state: what they last wrote to guest memory is in it. */
	vmstate_hold_devices(vm);
	r = vmstate_put_memory(vm, w, err, errlen);
	if (r >= 0)
		r = vmstate_put_devices(vm, w, err, errlen);
	vmstate_release_devices(vm);
	if (r >= 0 && snap_write_end(w) < 0)
		r = vs_write_err(w, err, errlen);
	return r;
}

/* ---- loading ---- */

static void *vs_no_pages(void *opaque, uint64_t gpa, uint64_t npages)
{
	(void)opaque, (void)gpa, (void)npages;
	return NULL;
}

static void *vs_page_target(void *opaque, uint64_t gpa, uint64_t npages)
{
	struct vm *vm = opaque;

	if (npages > vm->mem.total / SNAP_PAGE)
		return NULL;
	return guestmem_ptr(&vm->mem, gpa, npages * SNAP_PAGE);
}

static int vs_read_err(struct vmstate_load *l, int r, char *err, size_t errlen)
{
	return vs_err(err, errlen, r, "%s", l->rd.err);
}

int vmstate_load_head(struct vmstate_load *l, int fd, char *err, size_t errlen)
{
	struct vmstate_machine *m = &l->machine;
	struct snap_record rec;
	struct snap_cur c;
	int r;

	memset(l, 0, sizeof(*l));
	snap_reader_init(&l->rd, fd);
	r = snap_read_header(&l->rd);
	if (r < 0)
		return vs_read_err(l, r, err, errlen);
	r = snap_read_record(&l->rd, &rec, vs_no_pages, NULL);
	if (r < 0)
		return vs_read_err(l, r, err, errlen);
	if (r > 0 || rec.type != SNAP_REC_MACHINE) {
		free(rec.payload);
		return vs_err(err, errlen, -EINVAL, "it does not begin with a machine record");
	}
	snap_cur_init(&c, rec.payload, rec.len);
	m->vendor = snap_get_u32(&c);
	snap_get_bytes(&c, m->vendor_id, 12);
	m->vendor_id[12] = '\0';
	m->cpuid1_eax = snap_get_u32(&c);
	m->tsc_khz = snap_get_u32(&c);
	m->nested_size = snap_get_u32(&c);
	m->xsave_size = snap_get_u32(&c);
	m->ncpus = snap_get_u32(&c);
	m->mem_size = snap_get_u64(&c);
	m->irqchip = snap_get_bool(&c);
	r = snap_cur_done(&c);
	free(rec.payload);
	if (r < 0)
		return vs_err(err, errlen, r, "its machine record %s", c.why);
	for (int i = 0; i < 12; i++)
		if (m->vendor_id[i] < 0x20 || m->vendor_id[i] > 0x7e)
			m->vendor_id[i] = '?';
	r = snap_read_record(&l->rd, &rec, vs_no_pages, NULL);
	if (r < 0)
		return vs_read_err(l, r, err, errlen);
	if (r > 0 || rec.type != SNAP_REC_CONFIG) {
		free(rec.payload);
		return vs_err(err, errlen, -EINVAL, "its machine record is not followed by its configuration");
	}
	if (memchr(rec.payload, '\0', rec.len)) {
		free(rec.payload);
		return vs_err(err, errlen, -EINVAL, "its configuration holds a NUL byte");
	}
	l->config_text = realloc(rec.payload, rec.len + 1);
	if (!l->config_text) {
		free(rec.payload);
		return vs_err(err, errlen, -ENOMEM, "out of memory");
	}
	l->config_text[rec.len] = '\0';
	return 0;
}

static const char *vs_vendor_name(uint32_t v)
{
	return v == CPUID_VENDOR_AMD ? "AMD" : v == CPUID_VENDOR_INTEL ? "Intel" : "other";
}

/* Whether this machine can take the state at all. */
static int vs_check_machine(const struct vmstate_machine *m, struct vm *vm, char *err, size_t errlen)
{
	uint32_t vendor = (uint32_t)cpuid_vendor(vm->supported_cpuid);

	if (m->vendor != vendor)
		return vs_err(err, errlen, -EINVAL, "it was saved on an %s host (%s) and this one is %s: a VM's "
			      "state moves only between hosts of one processor vendor", vs_vendor_name(m->vendor),
			      m->vendor_id, vs_vendor_name(vendor));
	if (m->xsave_size != sizeof(struct kvm_xsave))
		return vs_err(err, errlen, -EINVAL, "its XSAVE areas are %u bytes; this nestvm's are %zu",
			      m->xsave_size, sizeof(struct kvm_xsave));
	if (m->ncpus != vm->ncpus || m->mem_size != vm->cfg.mem_size || m->irqchip == vm->cfg.no_irqchip)
		return vs_err(err, errlen, -EINVAL, "it is of a machine with %u vCPUs and %llu MiB, this one has "
			      "%u and %llu MiB", m->ncpus, (unsigned long long)(m->mem_size >> 20), vm->ncpus,
			      (unsigned long long)(vm->cfg.mem_size >> 20));
	return 0;
}

struct vs_records {
	struct snap_record clock, irqchip, pit;
	struct snap_record *vcpu;               /* ncpus of them */
	struct snap_record dev[VMSTATE_MAX_DEVICES];
	char dev_name[VMSTATE_MAX_DEVICES][16];
	unsigned int ndev;
};

static void vs_records_free(struct vs_records *s, unsigned int ncpus)
{
	free(s->clock.payload);
	free(s->irqchip.payload);
	free(s->pit.payload);
	for (unsigned int i = 0; s->vcpu && i < ncpus; i++)
		free(s->vcpu[i].payload);
	free(s->vcpu);
	for (unsigned int i = 0; i < s->ndev; i++)
		free(s->dev[i].payload);
}

/* Files a record where it belongs; one of each is all there may be. */
static int vs_file(struct vs_records *s, struct vm *vm, struct snap_record *rec, char *err, size_t errlen)
{
	struct snap_record *slot = NULL;
	struct snap_cur c;

	switch (rec->type) {
	case SNAP_REC_CLOCK: slot = &s->clock; break;
	case SNAP_REC_IRQCHIP: slot = &s->irqchip; break;
	case SNAP_REC_PIT: slot = &s->pit; break;
	case SNAP_REC_VCPU: {
		uint32_t i;

		snap_cur_init(&c, rec->payload, rec->len);
		i = snap_get_u32(&c);
		if (c.bad || i >= vm->ncpus)
			return vs_err(err, errlen, -EINVAL, "a vCPU record at byte %llu for vCPU %u of %u",
				      (unsigned long long)rec->offset, i, vm->ncpus);
		slot = &s->vcpu[i];
		break;
	}
	case SNAP_REC_DEVICE: {
		char name[16];

		snap_cur_init(&c, rec->payload, rec->len);
		snap_get_str(&c, name, sizeof(name));
		if (c.bad)
			return vs_err(err, errlen, -EINVAL, "a device record at byte %llu without a name it could "
				      "carry", (unsigned long long)rec->offset);
		for (unsigned int i = 0; i < s->ndev; i++)
			if (!strcmp(s->dev_name[i], name))
				return vs_err(err, errlen, -EINVAL, "device %s saved twice", name);
		if (s->ndev == VMSTATE_MAX_DEVICES)
			return vs_err(err, errlen, -EINVAL, "more devices than a machine has");
		snprintf(s->dev_name[s->ndev], sizeof(s->dev_name[0]), "%s", name);
		slot = &s->dev[s->ndev++];
		break;
	}
	default:
		return vs_err(err, errlen, -EINVAL, "a %s record at byte %llu, where only one may be, at the start",
			      snap_type_name(rec->type), (unsigned long long)rec->offset);
	}
	if (slot->payload)
		return vs_err(err, errlen, -EINVAL, "a second %s record at byte %llu", snap_type_name(rec->type),
			      (unsigned long long)rec->offset);
	*slot = *rec;
	rec->payload = NULL;
	return 0;
}

static int vs_apply_platform(struct vs_records *s, struct vm *vm, char *err, size_t errlen)
{
	struct kvm_clock_data clock;
	struct snap_cur c;
	int r;

	snap_cur_init(&c, s->clock.payload, s->clock.len);
	snap_get_struct(&c, &clock, sizeof(clock), "a clock");
	if (snap_cur_done(&c) < 0)
		return vs_err(err, errlen, -EINVAL, "its clock record %s", c.why);
	/* Only the clock's value: the host's TSC and realtime are this host's. */
	clock = (struct kvm_clock_data){ .clock = clock.clock };
	r = kvm_vm_set_clock(&vm->kvm, &clock);
	if (r < 0)
		return vs_err(err, errlen, r, "setting the guest clock: %s: %s", kvm_last_op(), strerror(-r));
	if (vm->cfg.no_irqchip)
		return 0;
	snap_cur_init(&c, s->irqchip.payload, s->irqchip.len);
	if (snap_get_u32(&c) != VMSTATE_NCHIPS && !c.bad)
		snap_cur_fail(&c, "does not hold the two PICs and the IOAPIC");
	for (uint32_t chip = 0; chip < VMSTATE_NCHIPS && !c.bad; chip++) {
		struct kvm_irqchip k;

		snap_get_struct(&c, &k, sizeof(k), "an irqchip");
		if (!c.bad && k.chip_id != chip)
			snap_cur_fail(&c, "holds chip %u where chip %u belongs", k.chip_id, chip);
		if (!c.bad && (r = kvm_vm_set_irqchip(&vm->kvm, &k)) < 0)
			return vs_err(err, errlen, r, "setting the irqchip: %s: %s", kvm_last_op(), strerror(-r));
	}
	if (snap_cur_done(&c) < 0)
		return vs_err(err, errlen, -EINVAL, "its irqchip record %s", c.why);
	{
		struct kvm_pit_state2 pit;

		snap_cur_init(&c, s->pit.payload, s->pit.len);
		snap_get_struct(&c, &pit, sizeof(pit), "a PIT");
		if (snap_cur_done(&c) < 0)
			return vs_err(err, errlen, -EINVAL, "its PIT record %s", c.why);
		r = kvm_vm_set_pit2(&vm->kvm, &pit);
		if (r < 0)
			return vs_err(err, errlen, r, "setting the PIT: %s: %s", kvm_last_op(), strerror(-r));
	}
	return 0;
}

static int vs_apply_devices(struct vs_records *s, struct vm *vm, char *err, size_t errlen)
{
	struct vs_device dev[VMSTATE_MAX_DEVICES];
	unsigned int ndev = vs_devices(vm, dev);
	int r = 0;

	if (s->ndev != ndev)
		return vs_err(err, errlen, -EINVAL, "it holds %u devices where this machine has %u: its "
			      "configuration differs", s->ndev, ndev);
	vmstate_hold_devices(vm);
	for (unsigned int i = 0; i < ndev && r >= 0; i++) {
		unsigned int k;
		struct snap_cur c;
		char name[16];

		for (k = 0; k < s->ndev && strcmp(s->dev_name[k], dev[i].name); k++)
			;
		if (k == s->ndev) {
			r = vs_err(err, errlen, -EINVAL, "it holds no state for device %s", dev[i].name);
			break;
		}
		snap_cur_init(&c, s->dev[k].payload, s->dev[k].len);
		snap_get_str(&c, name, sizeof(name));
		if (dev[i].load(vm, dev[i].index, &c) < 0 || snap_cur_done(&c) < 0)
			r = vs_err(err, errlen, -EINVAL, "device %s: %s", dev[i].name,
				   c.why[0] ? c.why : "its state does not load");
	}
	vmstate_release_devices(vm);
	return r;
}

static int vs_apply_vcpus(struct vs_records *s, struct vm *vm, const struct vmstate_machine *m,
			  char *err, size_t errlen)
{
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		struct x86_vcpu_state st;
		struct snap_cur c;
		int r, khz;

		/* Where this host's TSC runs at another rate, the guest's keeps its own. */
		khz = kvm_vcpu_get_tsc_khz(&vm->vcpus[i].kvm);
		if (m->tsc_khz && khz > 0 && (uint32_t)khz != m->tsc_khz &&
		    kvm_vcpu_set_tsc_khz(&vm->vcpus[i].kvm, m->tsc_khz) < 0) {
			/* Without TSC scaling the guest's clock source recalibrates. */
		}
		snap_cur_init(&c, s->vcpu[i].payload, s->vcpu[i].len);
		(void)snap_get_u32(&c);
		r = x86_vcpu_state_get(&st, &c, vm->nested_state_size);
		if (r == -ENOMEM)
			return vs_err(err, errlen, r, "out of memory");
		if (r < 0 || snap_cur_done(&c) < 0) {
			if (r >= 0)
				x86_vcpu_state_free(&st);
			return vs_err(err, errlen, -EINVAL, "vCPU %u: %s", i, c.why);
		}
		r = x86_vcpu_state_restore(&vm->vcpus[i].kvm, &st);
		x86_vcpu_state_free(&st);
		if (r < 0)
			return vs_err(err, errlen, r, "vCPU %u: this KVM refuses its state: %s: %s", i,
				      kvm_last_op(), strerror(-r));
	}
	return 0;
}

/* A piece of a disk: its index, offset and length, then its bytes. */
static int vs_disk(struct vmstate_load *l, const struct snap_record *rec, char *err, size_t errlen)
{
	struct snap_cur c;
	uint32_t index, len;
	uint64_t off;
	int r;

	if (!l->disk)
		return vs_err(err, errlen, -EINVAL, "disk data at byte %llu, which only a migration carries",
			      (unsigned long long)rec->offset);
	snap_cur_init(&c, rec->payload, rec->len);
	index = snap_get_u32(&c);
	off = snap_get_u64(&c);
	len = snap_get_u32(&c);
	if (c.bad || len != rec->len - c.off)
		return vs_err(err, errlen, -EINVAL, "a disk record at byte %llu whose length does not match",
			      (unsigned long long)rec->offset);
	r = l->disk(l->disk_opaque, index, off, rec->payload + c.off, len);
	if (r < 0)
		return vs_err(err, errlen, r, "writing %u bytes at %llu of disk %u: %s", len,
			      (unsigned long long)off, index, strerror(-r));
	return 0;
}

int vmstate_load_rest(struct vmstate_load *l, struct vm *vm, char *err, size_t errlen)
{
	struct vs_records s = { 0 };
	struct snap_record rec;
	int r;

	r = vs_check_machine(&l->machine, vm, err, errlen);
	if (r < 0)
		return r;
	s.vcpu = calloc(vm->ncpus, sizeof(*s.vcpu));
	if (!s.vcpu)
		return vs_err(err, errlen, -ENOMEM, "out of memory");
	/* Everything is read and checked before any of it is applied. */
	while ((r = snap_read_record(&l->rd, &rec, vs_page_target, vm)) == 0) {
		if (rec.type == SNAP_REC_PAGES)
			continue;
		if (rec.type == SNAP_REC_DISK) {
			r = vs_disk(l, &rec, err, errlen);
			free(rec.payload);
			if (r < 0)
				goto out;
			continue;
		}
		r = vs_file(&s, vm, &rec, err, errlen);
		free(rec.payload);
		if (r < 0)
			goto out;
	}
	if (r < 0) {
		vs_read_err(l, r, err, errlen);
		goto out;
	}
	r = -EINVAL;
	if (!s.clock.payload || (!vm->cfg.no_irqchip && (!s.irqchip.payload || !s.pit.payload))) {
		vs_err(err, errlen, r, "it holds no %s record", !s.clock.payload ? "clock" :
		       !s.irqchip.payload ? "irqchip" : "PIT");
		goto out;
	}
	for (unsigned int i = 0; i < vm->ncpus; i++)
		if (!s.vcpu[i].payload) {
			vs_err(err, errlen, r, "it holds no state for vCPU %u", i);
			goto out;
		}
	r = vs_apply_platform(&s, vm, err, errlen);
	if (r >= 0)
		r = vs_apply_devices(&s, vm, err, errlen);
	if (r >= 0)
		r = vs_apply_vcpus(&s, vm, &l->machine, err, errlen);
	/* Kicks pending at the save were not saved: every queue is looked at. */
	for (unsigned int i = 0; r >= 0 && i < vm->nvirtio; i++)
		virtio_dev_kick_all(vm->vdev[i]);
out:
	vs_records_free(&s, vm->ncpus);
	return r;
}

void vmstate_load_free(struct vmstate_load *l)
{
	free(l->config_text);
	l->config_text = NULL;
}

/* Tier 1: the saved-state format and the devices' state. A stream written is
 * read back record for record, its pages page-aligned in the file; a single
 * flipped bit anywhere, a cut at any length, a newer format, pages outside
 * guest RAM and a miscounted end are refused with a line saying so; each
 * device's fields survive a save and a load, and out-of-range ones are
 * refused; a virtio device restored from a state carries on its queues. */
#include "harness.h"
#include "snap.h"
#include "devices/devices.h"
#include "arch/x86/state.h"
#include "virtio_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

HARNESS_DEFINE;

static void test_fields_roundtrip(void)
{
	struct snap_buf b = { 0 };
	struct snap_cur c;
	char s[8];
	uint8_t raw[3];

	snap_put_u8(&b, 0xab);
	snap_put_u16(&b, 0x1234);
	snap_put_u32(&b, 0xdeadbeef);
	snap_put_u64(&b, 0x0123456789abcdefULL);
	snap_put_str(&b, "com1");
	snap_put_bytes(&b, "xyz", 3);
	snap_put_u8(&b, 1);
	CHECK(!b.oom);
	CHECK_EQ(b.len, 1 + 2 + 4 + 8 + 4 + 4 + 3 + 1);
	/* Little-endian on the wire, whatever the host. */
	CHECK_EQ(b.data[1], 0x34);
	CHECK_EQ(b.data[2], 0x12);

	snap_cur_init(&c, b.data, b.len);
	CHECK_EQ(snap_get_u8(&c), 0xab);
	CHECK_EQ(snap_get_u16(&c), 0x1234);
	CHECK_EQ(snap_get_u32(&c), 0xdeadbeef);
	CHECK(snap_get_u64(&c) == 0x0123456789abcdefULL);
	snap_get_str(&c, s, sizeof(s));
	CHECK_STR(s, "com1");
	snap_get_bytes(&c, raw, 3);
	CHECK(!memcmp(raw, "xyz", 3));
	CHECK(snap_get_bool(&c));
	CHECK_EQ(snap_cur_done(&c), 0);

	/* Past the end: zeros, a fault that sticks, and its text. */
	CHECK_EQ(snap_get_u32(&c), 0);
	CHECK(c.bad);
	CHECK(strstr(c.why, "ends early"));
	CHECK_EQ(snap_cur_done(&c), -EINVAL);

	/* A string longer than its room, a flag that is no flag, bytes left over. */
	snap_cur_init(&c, b.data + 15, 8);
	snap_get_str(&c, s, 4);
	CHECK(c.bad && strstr(c.why, "a string of 4 bytes"));
	snap_cur_init(&c, b.data, 1);
	CHECK(!snap_get_bool(&c));
	CHECK(c.bad && strstr(c.why, "not 0 or 1"));
	snap_cur_init(&c, b.data, 3);
	(void)snap_get_u8(&c);
	CHECK_EQ(snap_cur_done(&c), -EINVAL);
	CHECK(strstr(c.why, "2 bytes left over"));
	snap_buf_free(&b);
}

/* A scratch file, unlinked at once: its fd is all the tests need. */
static int scratch(void)
{
	char path[] = "/tmp/nestvm-snap-XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	unlink(path);
	return fd;
}

static uint8_t pages_a[3 * 4096], pages_b[4096];

/* header, machine record, two runs of pages, a device record, end */
static size_t write_stream(int fd)
{
	struct snap_writer w;
	struct stat st;

	for (size_t i = 0; i < sizeof(pages_a); i++)
		pages_a[i] = (uint8_t)(i * 7 + 1);
	memset(pages_b, 0x5a, sizeof(pages_b));
	snap_writer_init(&w, fd);
	CHECK_EQ(snap_write_header(&w), 0);
	CHECK_EQ(snap_write_record(&w, SNAP_REC_MACHINE, "machine!", 8), 0);
	CHECK_EQ(snap_write_pages(&w, 0x10000, pages_a, 3), 0);
	CHECK_EQ(snap_write_record(&w, SNAP_REC_DEVICE, "dev", 3), 0);
	CHECK_EQ(snap_write_pages(&w, 0x40000, pages_b, 1), 0);
	CHECK_EQ(snap_write_end(&w), 0);
	CHECK_EQ(w.nrecords, 5);
	CHECK_EQ(w.page_bytes, 4 * 4096);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_EQ((uint64_t)st.st_size, w.off);
	return (size_t)w.off;
}

/* Guest memory of the reading side: 0x10000 to 0x50000. */
static uint8_t target_mem[0x40000];

static void *target(void *opaque, uint64_t gpa, uint64_t npages)
{
	(void)opaque;
	if (gpa < 0x10000 || npages > sizeof(target_mem) / 4096 ||
	    gpa - 0x10000 > sizeof(target_mem) - npages * 4096)
		return NULL;
	return target_mem + (gpa - 0x10000);
}

/* Reads the whole stream on fd from its start: 1 when it ends well, else
 * the first error with r->err. */
static int read_stream(int fd, struct snap_reader *r, unsigned int *nrec)
{
	struct snap_record rec;
	int e;

	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	snap_reader_init(r, fd);
	*nrec = 0;
	e = snap_read_header(r);
	if (e < 0)
		return e;
	while ((e = snap_read_record(r, &rec, target, NULL)) == 0) {
		free(rec.payload);
		(*nrec)++;
	}
	return e;
}

static void test_stream_roundtrip(void)
{
	int fd = scratch();
	struct snap_reader r;
	struct snap_record rec;
	uint8_t first[4096];

	write_stream(fd);
	memset(target_mem, 0, sizeof(target_mem));
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	snap_reader_init(&r, fd);
	CHECK_EQ(snap_read_header(&r), 0);
	CHECK_EQ(snap_read_record(&r, &rec, target, NULL), 0);
	CHECK_EQ(rec.type, SNAP_REC_MACHINE);
	CHECK_EQ(rec.len, 8);
	CHECK(!memcmp(rec.payload, "machine!", 8));
	free(rec.payload);
	CHECK_EQ(snap_read_record(&r, &rec, target, NULL), 0);
	CHECK_EQ(rec.type, SNAP_REC_PAGES);
	CHECK_EQ(rec.gpa, 0x10000);
	CHECK_EQ(rec.npages, 3);
	CHECK(!rec.payload);
	CHECK(!memcmp(target_mem, pages_a, sizeof(pages_a)));
	/* The pages lie on a page boundary of the file: they can be mapped or
	 * read straight into guest RAM. */
	CHECK_EQ(pread(fd, first, sizeof(first), (off_t)(r.off - sizeof(pages_a))), (ssize_t)sizeof(first));
	CHECK_EQ((r.off - sizeof(pages_a)) % 4096, 0);
	CHECK(!memcmp(first, pages_a, sizeof(first)));
	CHECK_EQ(snap_read_record(&r, &rec, target, NULL), 0);
	CHECK_EQ(rec.type, SNAP_REC_DEVICE);
	free(rec.payload);
	CHECK_EQ(snap_read_record(&r, &rec, target, NULL), 0);
	CHECK_EQ(rec.gpa, 0x40000);
	CHECK(!memcmp(target_mem + 0x30000, pages_b, sizeof(pages_b)));
	CHECK_EQ(snap_read_record(&r, &rec, target, NULL), 1);
	CHECK(r.ended);
	/* After the end there is nothing more. */
	CHECK_EQ(snap_read_record(&r, &rec, target, NULL), 1);
	close(fd);
}

/* Every bit of the stream is under a checksum: whichever one flips, the
 * stream is refused before its end, never read as good. */
static void test_stream_every_flipped_bit_refused(void)
{
	int fd = scratch();
	size_t len = write_stream(fd);
	struct snap_reader r;
	unsigned int n;

	for (size_t off = 0; off < len; off += (off < 256 || len - off < 256) ? 1 : 61) {
		uint8_t c, x;

		CHECK_EQ(pread(fd, &c, 1, (off_t)off), 1);
		x = c ^ (uint8_t)(1u << (off % 8));
		CHECK_EQ(pwrite(fd, &x, 1, (off_t)off), 1);
		if (read_stream(fd, &r, &n) >= 0)
			FAILF("a flipped bit at byte %zu of %zu went unnoticed", off, len);
		CHECK(r.err[0]);
		CHECK_EQ(pwrite(fd, &c, 1, (off_t)off), 1);
	}
	CHECK_EQ(read_stream(fd, &r, &n), 1);
	CHECK_EQ(n, 4);
	close(fd);
}

/* A stream cut anywhere is refused, saying it is truncated or short. */
static void test_stream_truncated_refused(void)
{
	int fd = scratch();
	size_t len = write_stream(fd);
	struct snap_reader r;
	unsigned int n;

	for (size_t cut = 0; cut < len; cut += cut < 128 ? 1 : 97) {
		CHECK_EQ(ftruncate(fd, (off_t)cut), 0);
		if (read_stream(fd, &r, &n) >= 0)
			FAILF("a stream cut at %zu of %zu bytes was read as whole", cut, len);
		if (!strstr(r.err, "truncated"))
			FAILF("cut at %zu: '%s' does not say it is truncated", cut, r.err);
		close(fd);
		fd = scratch();
		write_stream(fd);
	}
	close(fd);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_header_version_and_magic(void)
{
	int fd = scratch();
	uint8_t h[SNAP_HEADER_SIZE];
	struct snap_reader r;

	write_stream(fd);
	CHECK_EQ(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	/* A newer format, checksum and all: refused as newer, not as corrupt. */
	put_le32(h + 8, SNAP_VERSION + 1);
	put_le32(h + SNAP_HEADER_SIZE - 4, snap_crc(0, h, SNAP_HEADER_SIZE - 4));
	CHECK_EQ(pwrite(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	snap_reader_init(&r, fd);
	CHECK_EQ(snap_read_header(&r), -EPROTO);
	CHECK(strstr(r.err, "newer nestvm"));
	/* Something else altogether. */
	memcpy(h, "\x7f" "ELF\2\1\1\0", 8);
	CHECK_EQ(pwrite(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	snap_reader_init(&r, fd);
	CHECK_EQ(snap_read_header(&r), -EINVAL);
	CHECK(strstr(r.err, "not a nestvm saved state"));
	close(fd);
}

static void *no_target(void *opaque, uint64_t gpa, uint64_t npages)
{
	(void)opaque, (void)gpa, (void)npages;
	return NULL;
}

/* Reads fd from its start: the header, GOOD records that read, then one
 * that fails with WANT and a message holding WHY; closes fd. */
static void read_back_fails(int fd, int good, int want, const char *why)
{
	struct snap_reader r;
	struct snap_record rec;

	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	snap_reader_init(&r, fd);
	CHECK_EQ(snap_read_header(&r), 0);
	for (int i = 0; i < good; i++) {
		CHECK_EQ(snap_read_record(&r, &rec, no_target, NULL), 0);
		free(rec.payload);
	}
	CHECK_EQ(snap_read_record(&r, &rec, no_target, NULL), want);
	CHECK(strstr(r.err, why));
	close(fd);
}

static void test_pages_outside_ram_and_bad_end(void)
{
	int fd = scratch();
	struct snap_writer w;
	uint8_t count[4];

	write_stream(fd);
	read_back_fails(fd, 1, -EINVAL, "not guest RAM");

	/* An end record that counts what did not come. */
	fd = scratch();
	snap_writer_init(&w, fd);
	CHECK_EQ(snap_write_header(&w), 0);
	CHECK_EQ(snap_write_record(&w, SNAP_REC_MACHINE, "m", 1), 0);
	put_le32(count, 7);
	CHECK_EQ(snap_write_record(&w, SNAP_REC_END, count, 4), 0);
	read_back_fails(fd, 1, -EINVAL, "incomplete");

	/* A record type from the future, and one far too large. */
	fd = scratch();
	snap_writer_init(&w, fd);
	CHECK_EQ(snap_write_header(&w), 0);
	CHECK_EQ(snap_write_record(&w, 0x77, "?", 1), 0);
	read_back_fails(fd, 0, -EPROTO, "does not know");
	fd = scratch();
	snap_writer_init(&w, fd);
	CHECK_EQ(snap_write_record(&w, SNAP_REC_DEVICE, target_mem, SNAP_RECORD_MAX + 1), -EFBIG);
	close(fd);
}

/* ---- devices ---- */

static int irq_count(void *opaque, uint32_t gsi, int level)
{
	(void)gsi;
	if (level)
		(*(int *)opaque)++;
	return 0;
}

static void test_serial_state(void)
{
	int raised = 0;
	struct serial a, b;
	struct snap_buf buf = { 0 };
	struct snap_cur c;
	uint8_t v;

	CHECK_EQ(serial_init(&a, (struct irq_line){ NULL, NULL, 4 }, -1), 0);
	CHECK_EQ(serial_init(&b, (struct irq_line){ irq_count, &raised, 4 }, -1), 0);
	v = 0x83;
	serial_io(&a, 3, &v, 1, true);          /* LCR: DLAB */
	v = 0x0c;
	serial_io(&a, 0, &v, 1, true);          /* DLL */
	v = 0x03;
	serial_io(&a, 3, &v, 1, true);
	v = 0x01;
	serial_io(&a, 1, &v, 1, true);          /* IER: receive interrupts */
	CHECK_EQ(serial_receive(&a, (const uint8_t *)"hello", 5), 5);
	serial_save(&a, &buf);
	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(serial_load(&b, &c), 0);
	CHECK_EQ(snap_cur_done(&c), 0);
	CHECK_EQ(b.dll, 0x0c);
	CHECK_EQ(b.lcr, 0x03);
	CHECK_EQ(b.ier, 0x01);
	/* The input waiting in the FIFO, and its interrupt driven anew. */
	CHECK_EQ(raised, 1);
	for (const char *p = "hello"; *p; p++) {
		serial_io(&b, 0, &v, 1, false);
		CHECK_EQ(v, *p);
	}
	snap_buf_free(&buf);

	/* A FIFO fuller than the chip's is refused. */
	snap_put_bytes(&buf, "\0\0\0\0\0\0\0\0\0", 9);
	snap_put_u8(&buf, 0);
	snap_put_u32(&buf, SERIAL_RX_SIZE + 1);
	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(serial_load(&b, &c), -EINVAL);
	CHECK(strstr(c.why, "more than its"));
	snap_buf_free(&buf);
	serial_destroy(&a);
	serial_destroy(&b);
}

static void test_rtc_pm_i8042_state(void)
{
	struct rtc ra, rb;
	struct acpi_pm pa, pb;
	struct i8042 ka, kb;
	uint8_t key, bad[] = { 0, 0, 0, 0, I8042_QUEUE + 1 };
	struct snap_buf buf = { 0 };
	struct snap_cur c;
	int sci = 0;

	rtc_init(&ra, 256 << 20, 0);
	rtc_init(&rb, 16 << 20, 0);
	ra.offset_s = -3600;
	ra.nvram[0x40] = 0x99;
	rtc_save(&ra, &buf);
	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(rtc_load(&rb, &c), 0);
	CHECK_EQ(snap_cur_done(&c), 0);
	CHECK_EQ(rb.offset_s, -3600);
	CHECK(!memcmp(ra.nvram, rb.nvram, sizeof(ra.nvram)));
	/* An offset no guest could have set. */
	buf.len -= 8;
	snap_put_u64(&buf, (uint64_t)INT64_MIN);
	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(rtc_load(&rb, &c), -EINVAL);
	snap_buf_free(&buf);

	acpi_pm_init(&pa, (struct irq_line){ NULL, NULL, 9 }, (struct power_sink){ 0 });
	acpi_pm_init(&pb, (struct irq_line){ irq_count, &sci, 9 }, (struct power_sink){ 0 });
	pa.en = ACPI_PM1_PWRBTN;
	acpi_pm_power_button(&pa);
	acpi_pm_save(&pa, &buf);
	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(acpi_pm_load(&pb, &c), 0);
	CHECK_EQ(pb.sts & ACPI_PM1_PWRBTN, ACPI_PM1_PWRBTN);
	CHECK_EQ(sci, 1);                       /* the pending button's SCI, driven anew */
	snap_buf_free(&buf);

	i8042_init(&ka, (struct irq_line){ NULL, NULL, 1 }, (struct power_sink){ 0 });
	i8042_init(&kb, (struct irq_line){ NULL, NULL, 1 }, (struct power_sink){ 0 });
	i8042_ctrl_alt_del(&ka);                /* keys the guest has not read yet */
	i8042_io(&ka, 0, &key, 1, false);       /* the first read: the queue wraps later */
	CHECK_EQ(key, 0x14);
	ka.cmd = 0x60;
	ka.outp = 0x55;
	i8042_save(&ka, &buf);
	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(i8042_load(&kb, &c), 0);
	CHECK_EQ(snap_cur_done(&c), 0);
	CHECK(kb.cmd == 0x60 && kb.ctr == ka.ctr && kb.outp == 0x55 && kb.last == 0x14);
	CHECK_EQ(kb.count, ka.count);
	i8042_io(&kb, 0, &key, 1, false);
	CHECK_EQ(key, 0x11);                    /* Alt follows Ctrl on the restored side */
	snap_buf_free(&buf);
	/* More queued bytes than the controller has room for. */
	snap_cur_init(&c, bad, sizeof(bad));
	CHECK_EQ(i8042_load(&kb, &c), -EINVAL);
}

static void test_vcpu_state_fields(void)
{
	struct x86_vcpu_state a = { 0 }, b;
	struct snap_buf buf = { 0 };
	struct snap_cur c;

	a.irqchip = true;
	a.regs.rip = 0xffffffff81000000ULL;
	a.regs.rax = 42;
	a.sregs.efer = 0xd01;
	a.has_xcrs = true;
	a.xcrs.nr_xcrs = 1;
	a.lapic.regs[0x20] = 7;
	a.mp.mp_state = KVM_MP_STATE_HALTED;
	a.msrs = calloc(1, sizeof(*a.msrs) + 2 * sizeof(a.msrs->entries[0]));
	CHECK(a.msrs);
	a.msrs->nmsrs = 2;
	a.msrs->entries[0] = (struct kvm_msr_entry){ .index = 0x10, .data = 123456789 };
	a.msrs->entries[1] = (struct kvm_msr_entry){ .index = 0xc0000082, .data = 0xffffffff81a00000ULL };
	a.nested = calloc(1, sizeof(*a.nested) + 256);
	CHECK(a.nested);
	a.nested->size = sizeof(*a.nested) + 256;
	a.nested->flags = KVM_STATE_NESTED_GUEST_MODE;
	x86_vcpu_state_put(&a, &buf);
	CHECK(!buf.oom);

	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(x86_vcpu_state_get(&b, &c, 8192), 0);
	CHECK_EQ(snap_cur_done(&c), 0);
	CHECK(b.regs.rip == a.regs.rip && b.regs.rax == 42 && b.sregs.efer == 0xd01);
	CHECK(b.irqchip && b.has_xcrs && b.lapic.regs[0x20] == 7 && b.mp.mp_state == KVM_MP_STATE_HALTED);
	CHECK_EQ(b.msrs->nmsrs, 2);
	CHECK(b.msrs->entries[1].data == 0xffffffff81a00000ULL);
	CHECK(b.nested && b.nested->size == a.nested->size);
	CHECK(x86_vcpu_state_in_guest_mode(&b));
	x86_vcpu_state_free(&b);

	/* A host whose KVM takes less nested state, or none. */
	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(x86_vcpu_state_get(&b, &c, 200), -EINVAL);
	CHECK(strstr(c.why, "more than this host's KVM takes (200)"));
	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(x86_vcpu_state_get(&b, &c, 0), -EINVAL);
	CHECK(strstr(c.why, "no KVM_CAP_NESTED_STATE"));
	/* Cut short anywhere: refused, nothing leaked. */
	for (size_t n = 0; n < buf.len; n += 97) {
		snap_cur_init(&c, buf.data, n);
		CHECK_EQ(x86_vcpu_state_get(&b, &c, 8192), -EINVAL);
	}
	snap_buf_free(&buf);
	x86_vcpu_state_free(&a);
}

/* ---- a virtio device ---- */

static bool rng_filled(void *arg)
{
	(void)arg;
	return fx_used_advanced((void *)(uintptr_t)0);
}

static void rng_round(uint16_t head)
{
	struct virtq_used_elem u;

	fx_desc(0, head, MEM_GPA + 0x10000 + head * 64u, 64, VIRTQ_DESC_F_WRITE, 0);
	fx_post(0, head);
	CHECK(fx_wait_until(rng_filled, NULL, 5000));
	u = fx_pop_used(0);
	CHECK_EQ(u.id, head);
	CHECK_EQ(u.len, 64);
}

/* A device saved after two requests and restored into a new one on the same
 * memory takes the third as the third: its queue carried on. */
static void test_virtio_restore_carries_on(void)
{
	struct virtio_dev *dev2;
	struct virtio_mmio *m2;
	struct snap_buf buf = { 0 };
	struct snap_cur c;
	struct irq_line irq = { irq_rec_set, &fx.irq, 23 };

	fx_release();
	fx_map();
	CHECK_EQ(virtio_rng_create(&dev2, "virtio-rng"), 0);
	fx_attach(dev2, 23);
	fx_features(~0ULL);
	fx_queue(0);
	fx_driver_ok();
	rng_round(0);
	rng_round(1);
	virtio_dev_hold(fx.dev);
	virtio_mmio_save(fx.m, &buf);
	virtio_dev_release(fx.dev);
	fx_close_device();

	CHECK_EQ(virtio_rng_create(&dev2, "virtio-rng"), 0);
	CHECK_EQ(virtio_mmio_create(&m2, &fx.mem, irq, dev2), 0);
	fx.dev = dev2;
	fx.m = m2;
	CHECK_EQ(rd(R_STATUS), 0);
	snap_cur_init(&c, buf.data, buf.len);
	CHECK_EQ(virtio_mmio_load(m2, &c), 0);
	CHECK_EQ(snap_cur_done(&c), 0);
	CHECK_EQ(rd(R_STATUS), 0xf);
	wr(R_QUEUE_SEL, 0);
	CHECK_EQ(rd(R_QUEUE_READY), 1);
	rng_round(2);
	CHECK_EQ(fx_used(0)->idx, 3);

	/* A state for another kind of device is refused. */
	{
		struct virtio_dev *blk;
		struct virtio_mmio *mb;
		char path[] = "/tmp/nestvm-snap-blk-XXXXXX";
		int fd = mkstemp(path);

		CHECK(fd >= 0);
		CHECK_EQ(ftruncate(fd, 1 << 20), 0);
		close(fd);
		CHECK_EQ(virtio_blk_create(&blk, &(struct virtio_blk_opts){ .path = path }), 0);
		unlink(path);
		CHECK_EQ(virtio_mmio_create(&mb, &fx.mem, irq, blk), 0);
		snap_cur_init(&c, buf.data, buf.len);
		CHECK_EQ(virtio_mmio_load(mb, &c), -EINVAL);
		CHECK(strstr(c.why, "a virtio device of type 4"));
		virtio_mmio_destroy(mb);
		virtio_dev_destroy(blk);
	}
	snap_buf_free(&buf);
	fx_release();
}

int main(void)
{
	RUN(test_fields_roundtrip);
	RUN(test_stream_roundtrip);
	RUN(test_stream_every_flipped_bit_refused);
	RUN(test_stream_truncated_refused);
	RUN(test_header_version_and_magic);
	RUN(test_pages_outside_ram_and_bad_end);
	RUN(test_serial_state);
	RUN(test_rtc_pm_i8042_state);
	RUN(test_vcpu_state_fields);
	RUN(test_virtio_restore_carries_on);
	return HARNESS_END();
}

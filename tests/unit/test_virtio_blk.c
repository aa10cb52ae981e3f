/* Tier 1: virtio-blk and virtio-rng behind the virtio-mmio transport, driven
 * through the registers the way a guest driver does (reset, ACKNOWLEDGE,
 * DRIVER, features, FEATURES_OK, queue setup, DRIVER_OK), with requests built
 * by hand in a fake guest memory and served by the device's worker thread. */
#include "virtio_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

HARNESS_DEFINE;

#define DESC_GPA  RING_GPA(0, 0)
#define AVAIL_GPA RING_GPA(0, 1)
#define USED_GPA  RING_GPA(0, 2)
#define HDR_GPA   (MEM_GPA + 0x3000)
#define STATUS_GPA (MEM_GPA + 0x3100)
#define DATA_GPA  (MEM_GPA + 0x10000)
#define DATA2_GPA (MEM_GPA + 0x40000)
#define IMAGE_SIZE (1024 * 1024ULL)     /* 2048 sectors */

#define F_SEG_MAX 2
#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define F_DISCARD 13
#define F_WRITE_ZEROES 14

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

static struct {
	char dir[64], path[96];         /* a scratch directory and the image in it */
} img;

static void fx_teardown(void)
{
	fx_release();
	if (img.path[0])
		unlink(img.path);
	if (img.dir[0])
		rmdir(img.dir);
	memset(&img, 0, sizeof(img));
}

/* Guest memory and a scratch directory; no device yet. */
static void fx_base(void)
{
	fx_teardown();
	snprintf(img.dir, sizeof(img.dir), "/tmp/nestvm-blk-XXXXXX");
	CHECK(mkdtemp(img.dir));
	snprintf(img.path, sizeof(img.path), "%s/disk.img", img.dir);
	fx_map();
}

/* Opens the image (created beforehand) as a virtio-blk device. */
static void fx_open_blk(bool read_only)
{
	struct virtio_blk_opts o = {
		.path = img.path, .name = "virtio-blk-test", .serial = "nestvm-serial-0001",
		.read_only = read_only, .queue_size = 64,
	};
	struct virtio_dev *dev;

	CHECK_EQ(virtio_blk_create(&dev, &o), 0);
	fx_attach(dev, 21);
}

/* 3.1.1: the driver's initialization sequence, accepting every offered
 * feature in `want`. */
static void driver_init(uint64_t want)
{
	wr(R_STATUS, 0);
	CHECK_EQ(rd(R_STATUS), 0);
	CHECK_EQ(rd(R_MAGIC), 0x74726976);
	CHECK_EQ(rd(R_VERSION), 2);
	fx_features(want);
	CHECK(fx.features & VIRTIO_BIT(VIRTIO_F_VERSION_1));
	fx_queue(0);
	fx_driver_ok();
}

static bool used_and_interrupt(void *arg)
{
	(void)arg;
	return fx_used_advanced((void *)0) && (rd(R_ISR) & VIRTIO_ISR_QUEUE);
}

/* Publishes head, kicks queue 0, and waits for the device to return it and
 * interrupt, as a driver that wants an interrupt for every request would. */
static struct virtq_used_elem submit(uint16_t head)
{
	wr(R_ACK, rd(R_ISR) & VIRTIO_ISR_QUEUE);
	fx_post(0, head);
	if (!fx_wait_until(used_and_interrupt, NULL, 5000))
		FAILF("no used entry and interrupt within 5 s (used idx %u, ISR %u)",
		      fx_used(0)->idx, rd(R_ISR));
	return fx_pop_used(0);
}

/* A request: header, data (readable for writes, writable for reads), status. */
static uint8_t blk_req(uint32_t type, uint64_t sector, uint64_t data_gpa, uint32_t len,
		       bool data_writable, uint32_t *used_len)
{
	struct { uint32_t type, reserved; uint64_t sector; } hdr = { type, 0, sector };
	uint8_t *status = host(STATUS_GPA);
	struct virtq_used_elem u;

	memcpy(host(HDR_GPA), &hdr, sizeof(hdr));
	*status = 0xee;
	fx_desc(0, 0, HDR_GPA, sizeof(hdr), VIRTQ_DESC_F_NEXT, len ? 1 : 2);
	fx_desc(0, 1, data_gpa, len, VIRTQ_DESC_F_NEXT | (data_writable ? VIRTQ_DESC_F_WRITE : 0), 2);
	fx_desc(0, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	u = submit(0);
	CHECK_EQ(u.id, 0);
	if (used_len)
		*used_len = u.len;
	return *status;
}

static void make_image(void)
{
	CHECK_EQ(util_create_image(img.path, IMAGE_SIZE, false), 0);
}

static void fill(uint64_t gpa, size_t len, uint8_t seed)
{
	uint8_t *p = host(gpa);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void test_probe_registers_and_config(void)
{
	uint64_t cap;
	uint32_t v;
	uint8_t b;
	uint16_t h;

	fx_base();
	make_image();
	fx_open_blk(false);
	CHECK_EQ(rd(R_MAGIC), 0x74726976);
	CHECK_EQ(rd(R_VERSION), 2);
	CHECK_EQ(rd(R_DEVICE_ID), VIRTIO_ID_BLOCK);
	CHECK_EQ(rd(R_SHM_LEN_LO), 0xffffffffu);
	driver_init(~0ULL);
	CHECK(fx.features & VIRTIO_BIT(F_SEG_MAX));
	CHECK(fx.features & VIRTIO_BIT(F_BLK_SIZE));
	CHECK(fx.features & VIRTIO_BIT(F_FLUSH));
	CHECK(fx.features & VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX));
	CHECK(fx.features & VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC));
	CHECK(!(fx.features & VIRTIO_BIT(F_RO)));
	/* capacity as one 8-byte access and as two 4-byte ones */
	virtio_mmio_io(fx.m, R_CONFIG, &cap, 8, false);
	CHECK_EQ(cap, IMAGE_SIZE / 512);
	CHECK_EQ(rd(R_CONFIG), IMAGE_SIZE / 512);
	CHECK_EQ(rd(R_CONFIG + 4), 0);
	CHECK_EQ(rd(R_CONFIG + 12), 64 - 2);            /* seg_max */
	CHECK_EQ(rd(R_CONFIG + 20), 512);               /* blk_size */
	virtio_mmio_io(fx.m, R_CONFIG + 34, &h, 2, false);
	CHECK_EQ(h, 1);                                  /* num_queues */
	virtio_mmio_io(fx.m, R_CONFIG + 20, &b, 1, false);
	CHECK_EQ(b, 0);                                  /* low byte of 512 */
	/* Past the end of the config space: zero, and writes ignored. */
	v = 0x12345678;
	virtio_mmio_io(fx.m, R_CONFIG + 60, &v, 4, false);
	CHECK_EQ(v, 0);
	virtio_mmio_io(fx.m, R_CONFIG + 58, &v, 4, false);
	CHECK_EQ(v, 0);
	CHECK_EQ(rd(R_CONFIG_GEN), 0);
	fx_teardown();
}

static void test_write_read_flush_id(void)
{
	uint8_t disk[1024];
	uint32_t len;
	int fd;

	fx_base();
	make_image();
	fx_open_blk(false);
	driver_init(~0ULL);

	fill(DATA_GPA, 1024, 3);
	CHECK_EQ(blk_req(T_OUT, 5, DATA_GPA, 1024, false, &len), S_OK);
	CHECK_EQ(len, 1);
	CHECK(fx.irq.raises >= 1);
	CHECK_EQ(fx.irq.level, 1);
	CHECK_EQ(fx.irq.gsi, 21);
	CHECK(rd(R_ISR) & VIRTIO_ISR_QUEUE);
	wr(R_ACK, rd(R_ISR));
	CHECK_EQ(rd(R_ISR), 0);
	CHECK_EQ(fx.irq.level, 0);

	/* On disk, at byte 5 * 512. */
	fd = open(img.path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, disk, sizeof(disk), 5 * 512), sizeof(disk));
	close(fd);
	CHECK(!memcmp(disk, host(DATA_GPA), sizeof(disk)));

	/* Read back into another buffer, in two pieces through an indirect table. */
	{
		struct { uint32_t type, reserved; uint64_t sector; } hdr = { T_IN, 0, 5 };
		struct virtq_desc table[3] = {
			{ HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1 },
			{ DATA2_GPA, 1024, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2 },
			{ STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0 },
		};
		struct virtq_used_elem u;

		memcpy(host(HDR_GPA), &hdr, sizeof(hdr));
		memcpy(host(DATA_GPA + 0x8000), table, sizeof(table));
		memset(host(DATA2_GPA), 0, 1024);
		fx_desc(0, 3, DATA_GPA + 0x8000, sizeof(table), VIRTQ_DESC_F_INDIRECT, 0);
		u = submit(3);
		CHECK_EQ(u.id, 3);
		CHECK_EQ(u.len, 1025);
		CHECK_EQ(*(uint8_t *)host(STATUS_GPA), S_OK);
		CHECK(!memcmp(host(DATA2_GPA), host(DATA_GPA), 1024));
	}

	/* A plain read too. */
	memset(host(DATA2_GPA), 0, 512);
	CHECK_EQ(blk_req(T_IN, 6, DATA2_GPA, 512, true, &len), S_OK);
	CHECK_EQ(len, 513);
	CHECK(!memcmp(host(DATA2_GPA), host(DATA_GPA + 512), 512));

	CHECK_EQ(blk_req(T_FLUSH, 0, 0, 0, false, &len), S_OK);
	CHECK_EQ(len, 1);

	memset(host(DATA2_GPA), 0xff, 20);
	CHECK_EQ(blk_req(T_GET_ID, 0, DATA2_GPA, 20, true, &len), S_OK);
	CHECK_EQ(len, 21);
	CHECK(!memcmp(host(DATA2_GPA), "nestvm-serial-0001\0\0", 20));

	CHECK_EQ(blk_req(0x1234, 0, 0, 0, false, &len), S_UNSUPP);
	CHECK_EQ(blk_req(14 /* SECURE_ERASE, not offered */, 0, DATA_GPA, 16, false, NULL),
		 S_UNSUPP);
	CHECK(!virtio_dev_is_broken(fx.dev));
	fx_teardown();
}

/* A running disk's backing file swapped: the driver hears of the new
 * capacity and reads the new file; a file that does not open changes nothing. */
static void test_swap_backing_file(void)
{
	char second[128];
	uint64_t cap;
	uint32_t len, gen;
	int fd;

	fx_base();
	make_image();
	fx_open_blk(false);
	driver_init(~0ULL);
	fill(DATA_GPA, 512, 9);
	CHECK_EQ(blk_req(T_OUT, 0, DATA_GPA, 512, false, &len), S_OK);
	snprintf(second, sizeof(second), "%s/second.img", img.dir);
	CHECK_EQ(util_create_image(second, 2 * IMAGE_SIZE, false), 0);
	fd = open(second, O_WRONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, "swapped", 7, 0), 7);
	close(fd);
	CHECK_EQ(virtio_blk_swap(fx.dev, "/nonexistent/disk.img"), -ENOENT);
	gen = rd(R_CONFIG_GEN);
	wr(R_ACK, rd(R_ISR));
	CHECK_EQ(virtio_blk_swap(fx.dev, second), 0);
	CHECK(rd(R_ISR) & VIRTIO_ISR_CONFIG);
	CHECK(rd(R_CONFIG_GEN) != gen);
	virtio_mmio_io(fx.m, R_CONFIG, &cap, 8, false);
	CHECK_EQ(cap, 2 * IMAGE_SIZE / 512);
	memset(host(DATA2_GPA), 0, 512);
	CHECK_EQ(blk_req(T_IN, 0, DATA2_GPA, 512, true, &len), S_OK);
	CHECK(!memcmp(host(DATA2_GPA), "swapped", 7));
	/* Sectors past the old end now exist. */
	CHECK_EQ(blk_req(T_IN, IMAGE_SIZE / 512 + 1, DATA2_GPA, 512, true, &len), S_OK);
	unlink(second);
	fx_teardown();
}

static void test_bad_requests(void)
{
	uint32_t len;

	fx_base();
	make_image();
	fx_open_blk(false);
	driver_init(~0ULL);
	/* Out of range: at capacity, and crossing it. */
	CHECK_EQ(blk_req(T_IN, IMAGE_SIZE / 512, DATA_GPA, 512, true, &len), S_IOERR);
	CHECK_EQ(blk_req(T_OUT, IMAGE_SIZE / 512 - 1, DATA_GPA, 1024, false, &len), S_IOERR);
	CHECK_EQ(blk_req(T_IN, UINT64_MAX, DATA_GPA, 512, true, &len), S_IOERR);
	CHECK_EQ(blk_req(T_IN, IMAGE_SIZE / 512 - 1, DATA_GPA, 512, true, &len), S_OK);
	/* Not a whole number of sectors. */
	CHECK_EQ(blk_req(T_OUT, 0, DATA_GPA, 100, false, &len), S_IOERR);
	/* A header cut short: the status byte still says so. */
	fx_desc(0, 0, HDR_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
	fx_desc(0, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	*(uint8_t *)host(STATUS_GPA) = 0xee;
	CHECK_EQ(submit(0).len, 1);
	CHECK_EQ(*(uint8_t *)host(STATUS_GPA), S_IOERR);
	/* No status byte at all: returned unanswered, the device carries on. */
	fx_desc(0, 0, HDR_GPA, 16, 0, 0);
	CHECK_EQ(submit(0).len, 0);
	CHECK(!virtio_dev_is_broken(fx.dev));
	CHECK_EQ(blk_req(T_FLUSH, 0, 0, 0, false, NULL), S_OK);
	fx_teardown();
}

static void test_read_only(void)
{
	uint8_t disk[512], zero[512] = { 0 };
	uint32_t len;
	int fd;

	fx_base();
	make_image();
	fx_open_blk(true);
	driver_init(~0ULL);
	CHECK(fx.features & VIRTIO_BIT(F_RO));
	CHECK(!(fx.features & VIRTIO_BIT(F_DISCARD)));
	CHECK(!(fx.features & VIRTIO_BIT(F_WRITE_ZEROES)));
	fill(DATA_GPA, 512, 9);
	CHECK_EQ(blk_req(T_OUT, 0, DATA_GPA, 512, false, &len), S_IOERR);
	fd = open(img.path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, disk, sizeof(disk), 0), sizeof(disk));
	close(fd);
	CHECK(!memcmp(disk, zero, sizeof(disk)));
	CHECK_EQ(blk_req(T_IN, 0, DATA_GPA, 512, true, &len), S_OK);
	CHECK(!memcmp(host(DATA_GPA), zero, 512));
	CHECK_EQ(blk_req(T_FLUSH, 0, 0, 0, false, NULL), S_OK);
	CHECK_EQ(blk_req(T_DISCARD, 0, DATA_GPA, 16, false, NULL), S_UNSUPP);
	fx_teardown();
}

static void test_discard_write_zeroes(void)
{
	struct { uint64_t sector; uint32_t num, flags; } rg;
	uint8_t disk[4096], zero[4096] = { 0 };
	int fd;

	fx_base();
	make_image();
	fx_open_blk(false);
	driver_init(~0ULL);
	if (!(fx.features & VIRTIO_BIT(F_WRITE_ZEROES)))
		SKIP("the filesystem under %s has neither PUNCH_HOLE nor ZERO_RANGE", img.dir);

	fill(DATA_GPA, 8192, 1);
	CHECK_EQ(blk_req(T_OUT, 0, DATA_GPA, 8192, false, NULL), S_OK);

	rg = (typeof(rg)){ 8, 8, 0 };           /* zero the second 4 KiB */
	memcpy(host(DATA2_GPA), &rg, sizeof(rg));
	CHECK_EQ(blk_req(T_WRITE_ZEROES, 0, DATA2_GPA, sizeof(rg), false, NULL), S_OK);
	fd = open(img.path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, disk, 4096, 4096), 4096);
	CHECK(!memcmp(disk, zero, 4096));
	CHECK_EQ(pread(fd, disk, 4096, 0), 4096);
	CHECK(!memcmp(disk, host(DATA_GPA), 4096));

	/* Unknown flags, ranges past the end, a malformed payload. */
	rg = (typeof(rg)){ 0, 8, 2 };
	memcpy(host(DATA2_GPA), &rg, sizeof(rg));
	CHECK_EQ(blk_req(T_WRITE_ZEROES, 0, DATA2_GPA, sizeof(rg), false, NULL), S_UNSUPP);
	rg = (typeof(rg)){ IMAGE_SIZE / 512 - 4, 8, 0 };
	memcpy(host(DATA2_GPA), &rg, sizeof(rg));
	CHECK_EQ(blk_req(T_WRITE_ZEROES, 0, DATA2_GPA, sizeof(rg), false, NULL), S_IOERR);
	CHECK_EQ(blk_req(T_WRITE_ZEROES, 0, DATA2_GPA, 10, false, NULL), S_IOERR);

	if (fx.features & VIRTIO_BIT(F_DISCARD)) {
		rg = (typeof(rg)){ 0, 8, 0 };
		memcpy(host(DATA2_GPA), &rg, sizeof(rg));
		CHECK_EQ(blk_req(T_DISCARD, 0, DATA2_GPA, sizeof(rg), false, NULL), S_OK);
		CHECK_EQ(pread(fd, disk, 4096, 0), 4096);
		CHECK(!memcmp(disk, zero, 4096));
		rg.flags = 1;           /* unmap is not a discard flag */
		memcpy(host(DATA2_GPA), &rg, sizeof(rg));
		CHECK_EQ(blk_req(T_DISCARD, 0, DATA2_GPA, sizeof(rg), false, NULL), S_UNSUPP);
	}
	close(fd);
	fx_teardown();
}

static void test_register_refusals(void)
{
	uint16_t h = 0xffff;
	uint8_t b = 0xff;

	fx_base();
	make_image();
	fx_open_blk(false);
	/* Wrong widths and misaligned offsets. */
	virtio_mmio_io(fx.m, R_MAGIC, &h, 2, false);
	CHECK_EQ(h, 0);
	virtio_mmio_io(fx.m, R_MAGIC + 1, &h, 2, false);
	CHECK_EQ(h, 0);
	b = VIRTIO_STATUS_ACKNOWLEDGE;
	virtio_mmio_io(fx.m, R_STATUS, &b, 1, true);
	CHECK_EQ(rd(R_STATUS), 0);

	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* A feature never offered: FEATURES_OK stays clear. */
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, 1u << 31);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, 1);
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	CHECK_EQ(rd(R_STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* No VERSION_1: refused as well (this device has no legacy interface). */
	wr(R_DRV_FEATURES, 0);
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	CHECK_EQ(rd(R_STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* DRIVER_OK without FEATURES_OK. */
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	CHECK_EQ(rd(R_STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);

	/* Queue sizes: not a power of two, above the maximum, zero. */
	wr(R_QUEUE_SEL, 0);
	wr(R_QUEUE_NUM, QSZ);
	wr(R_QUEUE_NUM, 3);
	wr(R_QUEUE_NUM, 128);
	wr(R_QUEUE_NUM, 0);
	wr(R_DESC_LO, (uint32_t)DESC_GPA);
	wr(R_DRIVER_LO, (uint32_t)AVAIL_GPA);
	wr(R_DEVICE_LO, (uint32_t)USED_GPA);
	wr(R_QUEUE_READY, 1);
	CHECK_EQ(rd(R_QUEUE_READY), 1);
	CHECK_EQ(fx.dev->vqs[0].size, QSZ);
	/* Ring addresses are fixed while the queue is ready. */
	wr(R_DESC_HI, 1);
	CHECK_EQ(fx.dev->vqs[0].desc_gpa, DESC_GPA);
	wr(R_QUEUE_READY, 0);
	CHECK_EQ(rd(R_QUEUE_READY), 0);

	/* Rings outside memory, above 4 GiB, or misaligned. */
	wr(R_DESC_LO, 0x1000);
	wr(R_QUEUE_READY, 1);
	CHECK_EQ(rd(R_QUEUE_READY), 0);
	wr(R_DESC_LO, (uint32_t)DESC_GPA);
	wr(R_DEVICE_HI, 1);
	wr(R_QUEUE_READY, 1);
	CHECK_EQ(rd(R_QUEUE_READY), 0);
	wr(R_DEVICE_HI, 0);
	wr(R_DRIVER_LO, (uint32_t)AVAIL_GPA + 1);
	wr(R_QUEUE_READY, 1);
	CHECK_EQ(rd(R_QUEUE_READY), 0);
	wr(R_DRIVER_LO, (uint32_t)AVAIL_GPA);
	wr(R_QUEUE_READY, 1);
	CHECK_EQ(rd(R_QUEUE_READY), 1);

	/* A queue that does not exist. */
	wr(R_QUEUE_SEL, 5);
	CHECK_EQ(rd(R_QUEUE_NUM_MAX), 0);
	CHECK_EQ(rd(R_QUEUE_READY), 0);
	wr(R_QUEUE_READY, 1);
	wr(R_QUEUE_NOTIFY, 5);
	wr(R_QUEUE_NOTIFY, 0xffffffff);
	/* Driver features are fixed after FEATURES_OK. */
	driver_init(0);
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, 0xffffffff);
	CHECK_EQ(fx.dev->features, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	/* Clearing a status bit without a reset is ignored. */
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	CHECK_EQ(rd(R_STATUS), 0xf);
	/* Still works. */
	CHECK_EQ(blk_req(T_FLUSH, 0, 0, 0, false, NULL), S_OK);
	fx_teardown();
}

static void test_broken_and_reset(void)
{
	fx_base();
	make_image();
	fx_open_blk(false);
	driver_init(~0ULL);
	CHECK_EQ(blk_req(T_FLUSH, 0, 0, 0, false, NULL), S_OK);
	wr(R_ACK, rd(R_ISR));

	/* A descriptor outside guest memory breaks the device. */
	fx_desc(0, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fx_desc(0, 1, 0x40000000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	fx_desc(0, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	fx_post(0, 0);
	/* The worker sets the flag, then raises the interrupt: wait for both. */
	for (int i = 0; i < 5000 && !(virtio_dev_is_broken(fx.dev) && fx.irq.level); i++)
		usleep(1000);
	CHECK(virtio_dev_is_broken(fx.dev));
	CHECK(strstr(fx.dev->broken_why, "outside guest memory"));
	CHECK(rd(R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK(rd(R_ISR) & VIRTIO_ISR_CONFIG);
	CHECK_EQ(fx.irq.level, 1);
	CHECK_EQ(fx_used(0)->idx, fx.used_seen[0]);

	/* Reset: everything back to zero, the line down. */
	wr(R_STATUS, 0);
	CHECK_EQ(rd(R_STATUS), 0);
	CHECK_EQ(rd(R_ISR), 0);
	CHECK_EQ(fx.irq.level, 0);
	CHECK_EQ(rd(R_QUEUE_READY), 0);
	CHECK(!virtio_dev_is_broken(fx.dev));
	CHECK_EQ(fx.dev->features, 0);

	/* And the device works again after a fresh initialization. */
	driver_init(~0ULL);
	CHECK_EQ(blk_req(T_FLUSH, 0, 0, 0, false, NULL), S_OK);
	fx_teardown();
}

static void test_many_requests_event_idx(void)
{
	uint32_t len;

	fx_base();
	make_image();
	fx_open_blk(false);
	driver_init(~0ULL);
	/* More requests than the queue has entries, so both rings wrap. */
	for (unsigned int i = 0; i < 3 * QSZ; i++) {
		fill(DATA_GPA, 512, (uint8_t)i);
		CHECK_EQ(blk_req(T_OUT, i, DATA_GPA, 512, false, &len), S_OK);
	}
	for (unsigned int i = 0; i < 3 * QSZ; i++) {
		memset(host(DATA2_GPA), 0, 512);
		CHECK_EQ(blk_req(T_IN, i, DATA2_GPA, 512, true, &len), S_OK);
		fill(DATA_GPA, 512, (uint8_t)i);
		CHECK(!memcmp(host(DATA_GPA), host(DATA2_GPA), 512));
	}
	/* The device asks for a kick at the next entry once the ring is empty. */
	for (int i = 0; i < 5000 && *(volatile uint16_t *)&fx_used(0)->ring[QSZ] != fx.avail_idx[0]; i++)
		usleep(1000);
	CHECK_EQ(*(volatile uint16_t *)&fx_used(0)->ring[QSZ], fx.avail_idx[0]);
	fx_teardown();
}

static void test_open_errors_and_lock(void)
{
	struct virtio_blk_opts o = { .path = "/nonexistent/nestvm.img" };
	struct virtio_dev *d1, *d2;

	fx_base();
	CHECK_EQ(virtio_blk_create(&d1, &o), -ENOENT);
	CHECK(!d1);
	make_image();
	o.path = img.path;
	o.queue_size = 100;
	CHECK_EQ(virtio_blk_create(&d1, &o), -EINVAL);
	o.queue_size = 0;
	o.serial = "a serial number longer than twenty";
	CHECK_EQ(virtio_blk_create(&d1, &o), -EINVAL);
	o.serial = NULL;
	CHECK_EQ(virtio_blk_create(&d1, &o), 0);
	CHECK_EQ(virtio_blk_create(&d2, &o), -EBUSY);
	o.read_only = true;
	CHECK_EQ(virtio_blk_create(&d2, &o), -EBUSY);
	virtio_dev_destroy(d1);
	CHECK_EQ(virtio_blk_create(&d1, &o), 0);
	CHECK_EQ(virtio_blk_create(&d2, &o), 0);        /* readers share */
	virtio_dev_destroy(d2);
	/* The serial defaults to the image's name. */
	fx_attach(d1, 21);
	driver_init(~0ULL);
	CHECK_EQ(blk_req(T_GET_ID, 0, DATA2_GPA, 20, true, NULL), S_OK);
	CHECK(!memcmp(host(DATA2_GPA), "disk.img\0", 9));
	fx_teardown();
}

static void test_image_create(void)
{
	struct stat st;

	fx_base();
	CHECK_EQ(util_create_image(img.path, 1000, false), -EINVAL);
	CHECK_EQ(util_create_image(img.path, 0, false), -EINVAL);
	CHECK(access(img.path, F_OK) < 0);
	CHECK_EQ(util_create_image(img.path, 64ULL << 20, false), 0);
	CHECK_EQ(stat(img.path, &st), 0);
	CHECK_EQ(st.st_size, 64ULL << 20);
	CHECK((uint64_t)st.st_blocks * 512 < (1ULL << 20));     /* sparse */
	/* Never over an existing file. */
	CHECK_EQ(util_create_image(img.path, 1ULL << 20, true), -EEXIST);
	CHECK_EQ(stat(img.path, &st), 0);
	CHECK_EQ(st.st_size, 64ULL << 20);
	unlink(img.path);
	CHECK_EQ(util_create_image(img.path, 8ULL << 20, true), 0);
	CHECK_EQ(stat(img.path, &st), 0);
	CHECK_EQ(st.st_size, 8ULL << 20);
	CHECK((uint64_t)st.st_blocks * 512 >= (8ULL << 20));    /* allocated */
	fx_teardown();
}

static void test_rng(void)
{
	struct virtio_dev *dev;
	struct virtq_used_elem u;
	static const uint8_t zero[64];

	fx_base();
	CHECK_EQ(virtio_rng_create(&dev, NULL), 0);
	fx_attach(dev, 21);
	CHECK_EQ(rd(R_DEVICE_ID), VIRTIO_ID_RNG);
	driver_init(~0ULL);
	memset(host(DATA_GPA), 0, 128);
	fx_desc(0, 0, DATA_GPA, 40, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	fx_desc(0, 1, DATA_GPA + 64, 24, VIRTQ_DESC_F_WRITE, 0);
	u = submit(0);
	CHECK_EQ(u.id, 0);
	CHECK_EQ(u.len, 64);
	CHECK(memcmp(host(DATA_GPA), zero, 40));
	CHECK(memcmp(host(DATA_GPA + 64), zero, 24));
	CHECK_EQ(fx.irq.level, 1);
	/* A readable-only buffer gets nothing. */
	fx_desc(0, 0, DATA_GPA, 40, 0, 0);
	CHECK_EQ(submit(0).len, 0);
	fx_teardown();
}

int main(void)
{
	RUN(test_probe_registers_and_config);
	RUN(test_write_read_flush_id);
	RUN(test_swap_backing_file);
	RUN(test_bad_requests);
	RUN(test_read_only);
	RUN(test_discard_write_zeroes);
	RUN(test_register_refusals);
	RUN(test_broken_and_reset);
	RUN(test_many_requests_event_idx);
	RUN(test_open_errors_and_lock);
	RUN(test_image_create);
	RUN(test_rng);
	fx_teardown();
	return HARNESS_END();
}

/* Tier 1: the split-virtqueue walker against rings and descriptors written by
 * hand into a fake guest memory: one heap region, so AddressSanitizer would
 * catch any read or write outside it. Every bad chain must break the device,
 * return an error and leave the host alone. */
#include "harness.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

HARNESS_DEFINE;

#define MEM_GPA   0x100000ULL
#define MEM_SIZE  0x10000ULL
#define QSZ       8
#define DESC_GPA  (MEM_GPA + 0x0000)
#define AVAIL_GPA (MEM_GPA + 0x1000)
#define USED_GPA  (MEM_GPA + 0x2000)
#define TABLE_GPA (MEM_GPA + 0x3000)     /* indirect tables */
#define DATA_GPA  (MEM_GPA + 0x4000)
/* The largest indirect table a descriptor's 32-bit length can describe, and
 * guest RAM for it to lie in: reserved, never touched but for its first page. */
#define BIG_GPA   0x100000000ULL
#define BIG_SIZE  0x100000000ULL
#define BIG_TABLE 0xfffffff0u

struct fx {
	struct guestmem mem;
	uint8_t *buf;
	struct virtio_dev dev;
	struct virtqueue *vq;
	struct virtq_elem e;
	uint16_t avail_idx;
	unsigned int interrupts;
	uint8_t *big;                   /* a second region, as large as a table can say */
};

static struct fx fx;

static const struct virtio_dev_ops test_ops = { .device_id = 99, .nqueues = 1 };

static void fx_interrupt(void *opaque, uint32_t isr)
{
	(void)opaque;
	if (isr & VIRTIO_ISR_QUEUE)
		fx.interrupts++;
}

static void fx_teardown(void)
{
	if (fx.big)
		munmap(fx.big, BIG_SIZE);
	if (fx.dev.vqs)
		virtio_dev_cleanup(&fx.dev);
	virtq_elem_free(&fx.e);
	free(fx.buf);
	memset(&fx, 0, sizeof(fx));
}

/* A fresh device with one ready queue of QSZ entries and the given features. */
static void fx_setup(uint64_t features)
{
	fx_teardown();
	fx.buf = aligned_alloc(4096, MEM_SIZE);
	CHECK(fx.buf);
	memset(fx.buf, 0, MEM_SIZE);
	fx.mem.regions[0] = (struct guestmem_region){ .gpa = MEM_GPA, .size = MEM_SIZE, .host = fx.buf };
	fx.mem.nregions = 1;
	fx.mem.total = MEM_SIZE;
	CHECK_EQ(virtio_dev_init(&fx.dev, &test_ops, "test-vq", 0, QSZ, 0), 0);
	fx.dev.mem = &fx.mem;
	fx.dev.transport = (struct virtio_transport){ fx_interrupt, NULL };
	fx.dev.features = features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	fx.vq = &fx.dev.vqs[0];
	CHECK_EQ(virtq_setup(fx.vq, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	CHECK_EQ(virtq_elem_init(&fx.e, QSZ), 0);
}

static void *host(uint64_t gpa)
{
	return fx.buf + (gpa - MEM_GPA);
}

static void put_desc(uint64_t table_gpa, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { addr, len, flags, next };

	memcpy(host(table_gpa + 16 * i), &d, sizeof(d));
}

static void desc(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put_desc(DESC_GPA, i, addr, len, flags, next);
}

static void avail_add(uint16_t head)
{
	struct virtq_avail *a = host(AVAIL_GPA);

	a->ring[fx.avail_idx % QSZ] = head;
	a->idx = ++fx.avail_idx;
}

static struct virtq_used *used(void)
{
	return host(USED_GPA);
}

static uint16_t *used_event(void)
{
	return &((struct virtq_avail *)host(AVAIL_GPA))->ring[QSZ];
}

static uint16_t *avail_event(void)
{
	return (uint16_t *)&used()->ring[QSZ];
}

#define ALL_RING (VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX))

/* The chain at head must break the device, naming `why`. */
static void expect_broken(const char *why)
{
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), -EIO);
	CHECK(virtio_dev_is_broken(&fx.dev));
	if (!strstr(fx.dev.broken_why, why))
		FAILF("violation \"%s\" does not mention \"%s\"", fx.dev.broken_why, why);
	/* And it stays broken: nothing more is read until a reset. */
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), -EIO);
	CHECK_EQ(used()->idx, 0);
}

static void test_normal_chain(void)
{
	fx_setup(ALL_RING);
	desc(0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	desc(2, DATA_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), -EAGAIN);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(fx.e.head, 0);
	CHECK_EQ(fx.e.nout, 1);
	CHECK_EQ(fx.e.nin, 2);
	CHECK_EQ(fx.e.out_len, 16);
	CHECK_EQ(fx.e.in_len, 513);
	CHECK(fx.e.iov[0].iov_base == host(DATA_GPA));
	CHECK(fx.e.iov[1].iov_base == host(DATA_GPA + 0x100));
	CHECK(fx.e.iov[2].iov_base == host(DATA_GPA + 0x400));
	CHECK_EQ(fx.e.iov[1].iov_len, 512);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), -EAGAIN);

	virtq_push(fx.vq, &fx.e, 513);
	CHECK_EQ(used()->idx, 1);
	CHECK_EQ(used()->ring[0].id, 0);
	CHECK_EQ(used()->ring[0].len, 513);
	CHECK(!virtio_dev_is_broken(&fx.dev));

	/* The ring wraps: QSZ * 3 more requests, same chain each time. */
	for (unsigned int i = 0; i < 3 * QSZ; i++) {
		avail_add(0);
		CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
		virtq_push(fx.vq, &fx.e, 1);
	}
	CHECK_EQ(used()->idx, 1 + 3 * QSZ);
	CHECK(!virtio_dev_is_broken(&fx.dev));
}

static void test_elem_copy_helpers(void)
{
	uint8_t hdr[16], out[600];
	struct iovec sl[QSZ];

	fx_setup(ALL_RING);
	for (int i = 0; i < 16; i++)
		((uint8_t *)host(DATA_GPA))[i] = (uint8_t)i;
	/* The header split over two readable buffers. */
	desc(0, DATA_GPA, 10, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA + 10, 6, VIRTQ_DESC_F_NEXT, 2);
	desc(2, DATA_GPA + 0x100, 300, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	desc(3, DATA_GPA + 0x400, 301, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(virtq_elem_read(&fx.e, 0, hdr, 16), 16);
	for (int i = 0; i < 16; i++)
		CHECK_EQ(hdr[i], i);
	CHECK_EQ(virtq_elem_read(&fx.e, 12, hdr, 16), 4);
	memset(out, 0xab, sizeof(out));
	CHECK_EQ(virtq_elem_write(&fx.e, 0, out, 600), 600);
	CHECK_EQ(((uint8_t *)host(DATA_GPA + 0x100))[299], 0xab);
	CHECK_EQ(((uint8_t *)host(DATA_GPA + 0x400))[299], 0xab);
	CHECK_EQ(((uint8_t *)host(DATA_GPA + 0x400))[300], 0);
	CHECK_EQ(virtq_elem_write(&fx.e, 600, out, 5), 1);
	CHECK_EQ(virtq_elem_in_slice(&fx.e, 200, 200, sl, QSZ), 2);
	CHECK(sl[0].iov_base == host(DATA_GPA + 0x100 + 200));
	CHECK_EQ(sl[0].iov_len, 100);
	CHECK_EQ(sl[1].iov_len, 100);
	CHECK_EQ(virtq_elem_in_slice(&fx.e, 200, 402, sl, QSZ), -ERANGE);
	CHECK_EQ(virtq_elem_in_slice(&fx.e, 0, 601, sl, 1), -ERANGE);
	CHECK_EQ(virtq_elem_out_slice(&fx.e, 10, 6, sl, QSZ), 1);
	CHECK(sl[0].iov_base == host(DATA_GPA + 10));
}

static void test_out_of_bounds_address(void)
{
	fx_setup(ALL_RING);
	desc(0, 0x1000, 16, 0, 0);              /* below the only region */
	avail_add(0);
	expect_broken("outside guest memory");
}

static void test_address_wraps(void)
{
	fx_setup(ALL_RING);
	desc(0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, UINT64_MAX - 0xff, 0x200, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	expect_broken("outside guest memory");

	/* A length that only fits if address + length wraps to below the region. */
	fx_setup(ALL_RING);
	desc(0, MEM_GPA + 0x10, 0xfffffff0u, 0, 0);
	avail_add(0);
	expect_broken("outside guest memory");
}

static void test_length_crosses_end(void)
{
	fx_setup(ALL_RING);
	desc(0, MEM_GPA + MEM_SIZE - 16, 16, 0, 0);     /* the last 16 bytes: fine */
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK(fx.e.iov[0].iov_base == fx.buf + MEM_SIZE - 16);
	desc(0, MEM_GPA + MEM_SIZE - 16, 17, 0, 0);     /* one byte past the end */
	avail_add(0);
	expect_broken("outside guest memory");
}

static void test_loop(void)
{
	fx_setup(ALL_RING);
	desc(0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	avail_add(0);
	expect_broken("loop");

	/* A descriptor that names itself. */
	fx_setup(ALL_RING);
	desc(3, DATA_GPA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	avail_add(3);
	expect_broken("loop");
}

static void test_chain_length(void)
{
	/* Every descriptor of the queue in one chain: allowed. */
	fx_setup(ALL_RING);
	for (unsigned int i = 0; i < QSZ; i++)
		desc(i, DATA_GPA + 0x10 * i, 0x10, i + 1 < QSZ ? VIRTQ_DESC_F_NEXT : 0,
		     (uint16_t)(i + 1));
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(fx.e.nout, QSZ);

	/* One more, back to the start: longer than the queue. */
	desc(QSZ - 1, DATA_GPA, 0x10, VIRTQ_DESC_F_NEXT, 0);
	avail_add(0);
	expect_broken("longer than");

	/* A next index beyond the table. */
	fx_setup(ALL_RING);
	desc(0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, QSZ);
	avail_add(0);
	expect_broken("beyond");

	/* A head beyond the table. */
	fx_setup(ALL_RING);
	avail_add(QSZ + 1);
	expect_broken("names descriptor");
}

static void test_elem_capacity(void)
{
	/* A device with room for fewer buffers than the chain has. */
	fx_setup(ALL_RING);
	virtq_elem_free(&fx.e);
	CHECK_EQ(virtq_elem_init(&fx.e, 2), 0);
	desc(0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	desc(2, DATA_GPA, 16, 0, 0);
	avail_add(0);
	expect_broken("more than 2 buffers");
}

static void test_indirect_good(void)
{
	fx_setup(ALL_RING);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(TABLE_GPA, 2, DATA_GPA + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(TABLE_GPA, 1, DATA_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	/* WRITE on the descriptor that points at the table is ignored (2.7.5.3.2). */
	desc(5, TABLE_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	avail_add(5);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(fx.e.head, 5);
	CHECK_EQ(fx.e.nout, 1);
	CHECK_EQ(fx.e.nin, 2);
	CHECK(fx.e.iov[1].iov_base == host(DATA_GPA + 0x100));
	CHECK(fx.e.iov[2].iov_base == host(DATA_GPA + 0x400));
	virtq_push(fx.vq, &fx.e, 513);
	CHECK_EQ(used()->ring[0].id, 5);

	/* Direct descriptors first, then one indirect: also allowed. */
	put_desc(TABLE_GPA, 0, DATA_GPA + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(TABLE_GPA, 1, DATA_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	desc(0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(fx.e.nout, 1);
	CHECK_EQ(fx.e.nin, 2);
	CHECK(!virtio_dev_is_broken(&fx.dev));
}

static void test_indirect_bad(void)
{
	/* Nested. */
	fx_setup(ALL_RING);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(TABLE_GPA, 1, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	desc(0, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("another indirect");

	/* Size not a multiple of 16, and zero. */
	fx_setup(ALL_RING);
	desc(0, TABLE_GPA, 24, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("multiple of 16");
	fx_setup(ALL_RING);
	desc(0, TABLE_GPA, 0, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("multiple of 16");

	/* Table outside memory, and crossing its end. */
	fx_setup(ALL_RING);
	desc(0, 0x2000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("outside guest memory");
	fx_setup(ALL_RING);
	desc(0, MEM_GPA + MEM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("outside guest memory");

	/* A buffer in the table outside memory. */
	fx_setup(ALL_RING);
	put_desc(TABLE_GPA, 0, MEM_GPA + MEM_SIZE, 1, 0, 0);
	desc(0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("outside guest memory");

	/* next beyond the table's own entries (the queue has more). */
	fx_setup(ALL_RING);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 3);
	desc(0, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("beyond");

	/* A loop inside the table. */
	fx_setup(ALL_RING);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(TABLE_GPA, 1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	desc(0, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("loop");

	/* INDIRECT together with NEXT. */
	fx_setup(ALL_RING);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, 0, 0);
	desc(0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	avail_add(0);
	expect_broken("also has NEXT");

	/* Indirect not negotiated. */
	fx_setup(VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX));
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, 0, 0);
	desc(0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("not negotiated");
}

/* Resets the device as a driver would, and checks that a good chain goes
 * through again: no hostile chain leaves the queue unusable. */
static void expect_recovers(void)
{
	virtio_dev_reset(&fx.dev);
	CHECK(!virtio_dev_is_broken(&fx.dev));
	memset(host(DESC_GPA), 0, TABLE_GPA - DESC_GPA);
	fx.avail_idx = 0;
	fx.dev.features = ALL_RING | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	CHECK_EQ(virtq_setup(fx.vq, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	desc(0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA + 0x100, 32, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(fx.e.nout, 1);
	CHECK_EQ(fx.e.nin, 1);
	virtq_push(fx.vq, &fx.e, 32);
	CHECK_EQ(used()->idx, 1);
	CHECK(!virtio_dev_is_broken(&fx.dev));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Adds BIG_SIZE of guest RAM at BIG_GPA, reserved but not committed. */
static void fx_add_big(void)
{
	void *p = mmap(NULL, BIG_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		SKIP("cannot reserve 4 GiB of address space for a table spanning guest RAM");
	fx.big = p;
	fx.mem.regions[1] = (struct guestmem_region){ .gpa = BIG_GPA, .size = BIG_SIZE, .host = fx.big };
	fx.mem.nregions = 2;
	fx.mem.total += BIG_SIZE;
}

static void test_indirect_table_spanning_ram(void)
{
	/* Empty, so that no buffer limit stops the walk either. */
	struct virtq_desc self = { 0, 0, VIRTQ_DESC_F_NEXT, 0 };
	double t0;

	/* A table as large as a descriptor can say, its first entry linking to
	 * itself: refused before a single entry is read, not walked 2^28 times
	 * with the queue lock held. */
	fx_setup(ALL_RING);
	fx_add_big();
	memcpy(fx.big, &self, sizeof(self));
	desc(0, BIG_GPA, BIG_TABLE, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	t0 = now_s();
	expect_broken("larger than the queue's 8");
	if (now_s() - t0 > 0.05)
		FAILF("refusing a table of %u entries took %.3f s", BIG_TABLE / 16, now_s() - t0);
	expect_recovers();

	/* One entry more than the queue, even with a one-buffer chain in it. */
	fx_setup(ALL_RING);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, 0, 0);
	desc(0, TABLE_GPA, (QSZ + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("larger than the queue");
	expect_recovers();

	/* Exactly the queue's size, every entry in the chain: allowed. */
	fx_setup(ALL_RING);
	for (unsigned int i = 0; i < QSZ; i++)
		put_desc(TABLE_GPA, i, DATA_GPA + 0x10 * i, 0x10,
			 i + 1 < QSZ ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	desc(0, TABLE_GPA, QSZ * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(fx.e.nout, QSZ);
}

static void test_indirect_loops(void)
{
	/* Every entry of a full-sized table linking to itself. */
	fx_setup(ALL_RING);
	for (unsigned int i = 0; i < QSZ; i++)
		put_desc(TABLE_GPA, i, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, (uint16_t)i);
	desc(0, TABLE_GPA, QSZ * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("loop");
	expect_recovers();

	/* The last entry links back to the first. */
	fx_setup(ALL_RING);
	for (unsigned int i = 0; i < QSZ; i++)
		put_desc(TABLE_GPA, i, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % QSZ));
	desc(0, TABLE_GPA, QSZ * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("loop");
	expect_recovers();

	/* Direct descriptors and the table's together are one chain: five
	 * direct ones then a full table are longer than the queue. */
	fx_setup(ALL_RING);
	for (unsigned int i = 0; i < 5; i++)
		desc(i, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	desc(5, TABLE_GPA, QSZ * 16, VIRTQ_DESC_F_INDIRECT, 0);
	for (unsigned int i = 0; i < QSZ; i++)
		put_desc(TABLE_GPA, i, DATA_GPA, 16, i + 1 < QSZ ? VIRTQ_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	avail_add(0);
	expect_broken("longer than the queue's 8 descriptors with its indirect table");
	expect_recovers();

	/* A nested table, then a good chain after the reset. */
	fx_setup(ALL_RING);
	put_desc(TABLE_GPA, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc(0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("another indirect");
	expect_recovers();
}

static void test_zero_length_counted(void)
{
	/* Empty descriptors are never looked up, but each is one of the chain's. */
	fx_setup(ALL_RING);
	for (unsigned int i = 0; i < QSZ; i++)
		desc(i, 0, 0, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % QSZ));
	avail_add(0);
	expect_broken("loop");
	expect_recovers();

	/* In a table: four empty direct ones, then a full table of empty ones. */
	fx_setup(ALL_RING);
	for (unsigned int i = 0; i < 4; i++)
		desc(i, 0, 0, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	desc(4, TABLE_GPA, QSZ * 16, VIRTQ_DESC_F_INDIRECT, 0);
	for (unsigned int i = 0; i < QSZ; i++)
		put_desc(TABLE_GPA, i, 0, 0, i + 1 < QSZ ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	avail_add(0);
	expect_broken("longer than the queue");
	expect_recovers();

	/* An empty-entry table that loops. */
	fx_setup(ALL_RING);
	for (unsigned int i = 0; i < QSZ; i++)
		put_desc(TABLE_GPA, i, 0, 0, VIRTQ_DESC_F_NEXT, 0);
	desc(0, TABLE_GPA, QSZ * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("loop");
	expect_recovers();

	/* Three empty direct ones and five in a table: the queue's eight, allowed. */
	fx_setup(ALL_RING);
	for (unsigned int i = 0; i < 3; i++)
		desc(i, 0, 0, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	desc(3, TABLE_GPA, 5 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	for (unsigned int i = 0; i < 5; i++)
		put_desc(TABLE_GPA, i, 0, 0, i + 1 < 5 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(fx.e.nout + fx.e.nin, 0);
	CHECK(!virtio_dev_is_broken(&fx.dev));
}

static void test_readable_after_writable(void)
{
	fx_setup(ALL_RING);
	desc(0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(1, DATA_GPA + 0x100, 16, 0, 0);
	avail_add(0);
	expect_broken("follows a writable");

	/* Also when the writable part is direct and the readable one indirect. */
	fx_setup(ALL_RING);
	put_desc(TABLE_GPA, 0, DATA_GPA, 16, 0, 0);
	desc(0, DATA_GPA + 0x100, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(1, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_broken("follows a writable");
}

static void test_avail_idx_jump(void)
{
	struct virtq_avail *a;

	fx_setup(ALL_RING);
	desc(0, DATA_GPA, 16, 0, 0);
	a = host(AVAIL_GPA);
	a->idx = QSZ;                   /* a full ring: fine */
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	a->idx = QSZ + 2;               /* QSZ + 1 pending after one was taken */
	expect_broken("past");
}

static void test_zero_length_descriptors(void)
{
	fx_setup(ALL_RING);
	desc(0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	/* Zero length: the address is never looked at, even a wild one. */
	desc(1, 0xdead00000000ULL, 0, VIRTQ_DESC_F_NEXT, 2);
	desc(2, DATA_GPA + 0x100, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	desc(3, DATA_GPA + 0x200, 1, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(fx.e.nout, 1);
	CHECK_EQ(fx.e.nin, 1);
	CHECK_EQ(fx.e.in_len, 1);
	CHECK(fx.e.iov[1].iov_base == host(DATA_GPA + 0x200));

	/* A chain of nothing but an empty descriptor. */
	desc(4, 0, 0, 0, 0);
	avail_add(4);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(fx.e.nout + fx.e.nin, 0);
	CHECK(!virtio_dev_is_broken(&fx.dev));
}

static void test_setup_checks(void)
{
	fx_setup(ALL_RING);
	virtq_disable(fx.vq);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), -EAGAIN);
	CHECK_EQ(virtq_setup(fx.vq, 6, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(fx.vq, 0, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(fx.vq, 2 * QSZ, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(fx.vq, QSZ, DESC_GPA + 8, AVAIL_GPA, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(fx.vq, QSZ, DESC_GPA, AVAIL_GPA + 1, USED_GPA), -EINVAL);
	CHECK_EQ(virtq_setup(fx.vq, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA + 2), -EINVAL);
	CHECK_EQ(virtq_setup(fx.vq, QSZ, 0x1000, AVAIL_GPA, USED_GPA), -EFAULT);
	/* The used ring one byte too long for the end of memory, then exactly fitting. */
	CHECK_EQ(virtq_setup(fx.vq, QSZ, DESC_GPA, AVAIL_GPA,
			     MEM_GPA + MEM_SIZE - VIRTQ_USED_BYTES(QSZ) + 2), -EFAULT);
	CHECK(!fx.vq->ready);
	CHECK_EQ(virtq_setup(fx.vq, QSZ, DESC_GPA, AVAIL_GPA,
			     MEM_GPA + MEM_SIZE - VIRTQ_USED_BYTES(QSZ) - 2), 0);
	CHECK(fx.vq->ready);
}

static void test_push_after_disable_dropped(void)
{
	fx_setup(ALL_RING);
	desc(0, DATA_GPA, 16, 0, 0);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	virtq_disable(fx.vq);
	virtq_push(fx.vq, &fx.e, 1);
	CHECK_EQ(used()->idx, 0);
	/* Set up again: the old chain belongs to the old ring. */
	CHECK_EQ(virtq_setup(fx.vq, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	virtq_push(fx.vq, &fx.e, 1);
	CHECK_EQ(used()->idx, 0);
}

static void test_reset_clears_broken(void)
{
	fx_setup(ALL_RING);
	desc(0, 0x10, 16, 0, 0);
	avail_add(0);
	expect_broken("outside");
	virtio_dev_reset(&fx.dev);
	CHECK(!virtio_dev_is_broken(&fx.dev));
	CHECK(!fx.vq->ready);
	/* The driver starts over with zeroed rings. */
	memset(host(AVAIL_GPA), 0, 0x2000);
	fx.avail_idx = 0;
	fx.dev.features = ALL_RING | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	CHECK_EQ(virtq_setup(fx.vq, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	desc(0, DATA_GPA, 16, 0, 0);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);

	/* A second violation within the second is logged as suppressed. */
	desc(1, 0x10, 16, 0, 0);
	avail_add(1);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), -EIO);
	CHECK_EQ(fx.dev.log_suppressed, 1);
}

static void test_event_idx(void)
{
	fx_setup(ALL_RING);
	desc(0, DATA_GPA, 16, 0, 0);

	/* An empty ring asks for a kick at the next entry. */
	*avail_event() = 0x5555;
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), -EAGAIN);
	CHECK_EQ(*avail_event(), 0);
	avail_add(0);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	/* While busy: no kick needed for entries already seen. */
	CHECK_EQ(*avail_event(), 1);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), -EAGAIN);
	CHECK_EQ(*avail_event(), 2);

	/* used_event 0: the driver wants to hear about entry 0 only. */
	*used_event() = 0;
	virtq_push(fx.vq, &fx.e, 1);            /* used idx 0 -> 1 */
	CHECK(virtq_should_notify(fx.vq));
	virtq_push(fx.vq, &fx.e, 1);            /* 1 -> 2 */
	CHECK(!virtq_should_notify(fx.vq));
	*used_event() = 2;
	virtq_push(fx.vq, &fx.e, 1);            /* 2 -> 3: entry 2 is the one asked for */
	CHECK(virtq_should_notify(fx.vq));
	CHECK(!virtq_should_notify(fx.vq));     /* nothing new since */
	fx.interrupts = 0;
	virtq_push(fx.vq, &fx.e, 1);            /* 3 -> 4 */
	virtq_push(fx.vq, &fx.e, 1);            /* 4 -> 5 */
	*used_event() = 3;                      /* passed while batching: still signalled */
	virtq_signal(fx.vq);
	CHECK_EQ(fx.interrupts, 1);
	/* The used index wraps past 65535 without losing the comparison. */
	fx.vq->used_idx = 0xffff;
	fx.vq->signalled_used = 0xffff;
	*used_event() = 0xffff;
	virtq_push(fx.vq, &fx.e, 1);            /* 0xffff -> 0 */
	CHECK(virtq_should_notify(fx.vq));
	CHECK_EQ(used()->idx, 0);
}

static void test_no_interrupt_flag(void)
{
	struct virtq_avail *a;

	fx_setup(VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC));
	a = host(AVAIL_GPA);
	desc(0, DATA_GPA, 16, 0, 0);
	avail_add(0);
	CHECK_EQ(virtq_pop(fx.vq, &fx.e), 0);
	/* Without EVENT_IDX avail_event is not written. */
	CHECK_EQ(*avail_event(), 0);
	virtq_push(fx.vq, &fx.e, 1);
	a->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	CHECK(!virtq_should_notify(fx.vq));
	a->flags = 0;
	CHECK(virtq_should_notify(fx.vq));
	fx.interrupts = 0;
	virtq_signal(fx.vq);
	CHECK_EQ(fx.interrupts, 1);
}

int main(void)
{
	RUN(test_normal_chain);
	RUN(test_elem_copy_helpers);
	RUN(test_out_of_bounds_address);
	RUN(test_address_wraps);
	RUN(test_length_crosses_end);
	RUN(test_loop);
	RUN(test_chain_length);
	RUN(test_elem_capacity);
	RUN(test_indirect_good);
	RUN(test_indirect_bad);
	RUN(test_indirect_table_spanning_ram);
	RUN(test_indirect_loops);
	RUN(test_zero_length_counted);
	RUN(test_readable_after_writable);
	RUN(test_avail_idx_jump);
	RUN(test_zero_length_descriptors);
	RUN(test_setup_checks);
	RUN(test_push_after_disable_dropped);
	RUN(test_reset_clears_broken);
	RUN(test_event_idx);
	RUN(test_no_interrupt_flag);
	fx_teardown();
	return HARNESS_END();
}

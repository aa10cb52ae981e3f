/* The guest side of the virtio device unit tests: a fake guest memory, one
 * device behind the virtio-mmio transport, its registers, and a driver that
 * negotiates features, sets up queues and moves buffers through the rings.
 * The device-specific parts stay in each test. */
#ifndef NESTVM_TESTS_VIRTIO_FIXTURE_H
#define NESTVM_TESTS_VIRTIO_FIXTURE_H

#include "harness.h"
#include "virtio/virtio.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MEM_GPA   0x100000ULL
#define MEM_SIZE  0x100000ULL           /* PFNs 0x100 to 0x1ff */
#define QSZ       16
#define FX_MAX_QUEUES 4
/* Queue q's rings from the start of memory: desc, avail, used, 4 KiB each. */
#define RING_GPA(q, part) (MEM_GPA + (uint64_t)(q) * 0x3000 + (uint64_t)(part) * 0x1000)

/* Registers (virtio 1.2, 4.2.2). */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_ISR 0x060
#define R_ACK 0x064
#define R_STATUS 0x070
#define R_DESC_LO 0x080
#define R_DESC_HI 0x084
#define R_DRIVER_LO 0x090
#define R_DRIVER_HI 0x094
#define R_DEVICE_LO 0x0a0
#define R_DEVICE_HI 0x0a4
#define R_SHM_LEN_LO 0x0b0
#define R_CONFIG_GEN 0x0fc
#define R_CONFIG 0x100

/* An interrupt line set from the device's worker threads as well. */
struct irq_rec {
	_Atomic int level;
	_Atomic unsigned int raises;
	_Atomic uint32_t gsi;
};

static inline int irq_rec_set(void *opaque, uint32_t gsi, int level)
{
	struct irq_rec *r = opaque;

	r->gsi = gsi;
	if (level && !r->level)
		r->raises++;
	r->level = level;
	return 0;
}

struct virtio_fx {
	uint8_t *buf;                   /* private anonymous, as the VMM's */
	struct guestmem mem;
	struct irq_rec irq;
	struct virtio_dev *dev;
	struct virtio_mmio *m;
	uint64_t features;              /* offered */
	uint16_t avail_idx[FX_MAX_QUEUES], used_seen[FX_MAX_QUEUES];
};

static struct virtio_fx fx;

static inline void *host(uint64_t gpa)
{
	return fx.buf + (gpa - MEM_GPA);
}

static inline uint32_t rd(uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	virtio_mmio_io(fx.m, off, &v, 4, false);
	return v;
}

static inline void wr(uint64_t off, uint32_t v)
{
	virtio_mmio_io(fx.m, off, &v, 4, true);
}

/* Guest memory between two inaccessible pages, so that a device reaching
 * past it faults at once, and MADV_DONTNEED reads back as zeroes. */
static inline void fx_map(void)
{
	uint8_t *p = mmap(NULL, MEM_SIZE + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	fx.buf = p + 4096;
	CHECK_EQ(mprotect(fx.buf, MEM_SIZE, PROT_READ | PROT_WRITE), 0);
	fx.mem.regions[0] = (struct guestmem_region){ .gpa = MEM_GPA, .size = MEM_SIZE, .host = fx.buf };
	fx.mem.nregions = 1;
	fx.mem.total = MEM_SIZE;
}

/* Puts dev behind the transport, its interrupt on gsi. */
static inline void fx_attach(struct virtio_dev *dev, uint32_t gsi)
{
	struct irq_line irq = { irq_rec_set, &fx.irq, gsi };

	fx.dev = dev;
	CHECK_EQ(virtio_mmio_create(&fx.m, &fx.mem, irq, dev), 0);
}

static inline void fx_close_device(void)
{
	virtio_mmio_destroy(fx.m);
	virtio_dev_destroy(fx.dev);
	fx.m = NULL;
	fx.dev = NULL;
}

/* The device, the transport and the memory; safe to call on nothing. */
static inline void fx_release(void)
{
	fx_close_device();
	if (fx.buf)
		munmap(fx.buf - 4096, MEM_SIZE + 2 * 4096);
	memset(&fx, 0, sizeof(fx));
}

/* 3.1.1 up to FEATURES_OK, accepting the offered features in want (and
 * VERSION_1); the offer is left in fx.features. Returns what was accepted. */
static inline uint64_t fx_features(uint64_t want)
{
	uint64_t accept;

	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(R_DEV_FEATURES_SEL, 0);
	fx.features = rd(R_DEV_FEATURES);
	wr(R_DEV_FEATURES_SEL, 1);
	fx.features |= (uint64_t)rd(R_DEV_FEATURES) << 32;
	accept = fx.features & (want | VIRTIO_BIT(VIRTIO_F_VERSION_1));
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, (uint32_t)accept);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, (uint32_t)(accept >> 32));
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	CHECK(rd(R_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	return accept;
}

/* Sets up queue q with QSZ entries on empty rings at RING_GPA(q, ...). */
static inline void fx_queue(unsigned int q)
{
	memset(host(RING_GPA(q, 0)), 0, 0x3000);
	fx.avail_idx[q] = fx.used_seen[q] = 0;
	wr(R_QUEUE_SEL, q);
	CHECK_EQ(rd(R_QUEUE_READY), 0);
	CHECK(rd(R_QUEUE_NUM_MAX) >= QSZ);
	wr(R_QUEUE_NUM, QSZ);
	wr(R_DESC_LO, (uint32_t)RING_GPA(q, 0));
	wr(R_DESC_HI, 0);
	wr(R_DRIVER_LO, (uint32_t)RING_GPA(q, 1));
	wr(R_DRIVER_HI, 0);
	wr(R_DEVICE_LO, (uint32_t)RING_GPA(q, 2));
	wr(R_DEVICE_HI, 0);
	wr(R_QUEUE_READY, 1);
	CHECK_EQ(rd(R_QUEUE_READY), 1);
}

static inline void fx_driver_ok(void)
{
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	CHECK_EQ(rd(R_STATUS), 0xf);
}

static inline void fx_desc(unsigned int q, unsigned int i, uint64_t addr, uint32_t len,
			   uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { addr, len, flags, next };

	memcpy(host(RING_GPA(q, 0) + 16 * i), &d, sizeof(d));
}

static inline struct virtq_used *fx_used(unsigned int q)
{
	return host(RING_GPA(q, 2));
}

/* Makes head available on queue q, asking for an interrupt at the next used
 * entry (used_event), and kicks the queue. */
static inline void fx_post(unsigned int q, uint16_t head)
{
	struct virtq_avail *a = host(RING_GPA(q, 1));

	a->ring[QSZ] = fx.used_seen[q];
	a->ring[fx.avail_idx[q] % QSZ] = head;
	__atomic_store_n(&a->idx, ++fx.avail_idx[q], __ATOMIC_RELEASE);
	wr(R_QUEUE_NOTIFY, q);
}

/* Polls cond every 200 us for up to ms. */
static inline bool fx_wait_until(bool (*cond)(void *), void *arg, int ms)
{
	struct timespec ts = { 0, 200000 };

	for (int i = 0; i < 5 * ms; i++) {
		if (cond(arg))
			return true;
		nanosleep(&ts, NULL);
	}
	return cond(arg);
}

/* arg: the queue's index. */
static inline bool fx_used_advanced(void *arg)
{
	unsigned int q = (unsigned int)(uintptr_t)arg;

	return __atomic_load_n(&fx_used(q)->idx, __ATOMIC_ACQUIRE) != fx.used_seen[q];
}

/* Takes the next used entry of queue q, which the device has returned. */
static inline struct virtq_used_elem fx_pop_used(unsigned int q)
{
	return fx_used(q)->ring[fx.used_seen[q]++ % QSZ];
}

/* Waits up to ms for the next used entry of queue q and takes it into *u
 * (if u is not NULL); false if none came. */
static inline bool fx_wait_used(unsigned int q, int ms, struct virtq_used_elem *u)
{
	struct virtq_used_elem e;

	if (!fx_wait_until(fx_used_advanced, (void *)(uintptr_t)q, ms))
		return false;
	e = fx_pop_used(q);
	if (u)
		*u = e;
	return true;
}

#endif

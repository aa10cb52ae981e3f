/* libFuzzer target for the split-virtqueue walker: the input is what a guest
 * left in its memory (rings, descriptors, indirect tables) in a small fixed
 * layout, and the device pops and pushes until the ring is empty or broken.
 * Writes into the writable buffers may land on the rings themselves, as a
 * hostile guest would arrange. Invariants are checked with __builtin_trap(). */
#include "virtio/virtio.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input byte 0: bits 0-2 pick the queue size (1 << (n % 5): 1..16), bit 3
 * negotiates INDIRECT_DESC, bit 4 EVENT_IDX. The rest is guest memory from
 * MEM_GPA on: descriptor table, then avail ring, then used ring, then data. */
#define MEM_GPA    0x10000ULL
#define MEM_SIZE   0x10000ULL
#define DESC_GPA   (MEM_GPA + 0x000)
#define AVAIL_GPA  (MEM_GPA + 0x100)
#define USED_GPA   (MEM_GPA + 0x180)
#define MAX_QSZ    16
#define MAX_ROUNDS 64

#define ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static const struct virtio_dev_ops fuzz_ops = { .device_id = 99, .nqueues = 1 };

struct fuzz_state {
	struct guestmem mem;
	uint8_t *buf;
	struct virtio_dev dev;
	struct virtq_elem e;
	struct iovec slice[MAX_QSZ];
};

static struct fuzz_state *fuzz_state(void)
{
	static struct fuzz_state st;
	static int ready;

	if (!ready) {
		/* Heap, not mmap: AddressSanitizer guards both ends of it. */
		st.buf = malloc(MEM_SIZE);
		ASSERT(st.buf);
		st.mem.regions[0] = (struct guestmem_region){ .gpa = MEM_GPA, .size = MEM_SIZE, .host = st.buf };
		st.mem.nregions = 1;
		st.mem.total = MEM_SIZE;
		ASSERT(virtio_dev_init(&st.dev, &fuzz_ops, "fuzz-vq", 0, MAX_QSZ, 0) == 0);
		st.dev.mem = &st.mem;
		ASSERT(virtq_elem_init(&st.e, MAX_QSZ) == 0);
		ready = 1;
	}
	return &st;
}

static bool in_region(const struct fuzz_state *st, const struct iovec *v)
{
	const uint8_t *p = v->iov_base;

	return p >= st->buf && v->iov_len <= MEM_SIZE && (size_t)(p - st->buf) <= MEM_SIZE - v->iov_len;
}

static void check_elem(struct fuzz_state *st, uint16_t qsz)
{
	const struct virtq_elem *e = &st->e;
	uint64_t out = 0, in = 0;

	ASSERT(e->head < qsz);
	ASSERT(e->nout + e->nin <= e->cap);
	/* No chain has more descriptors than the queue, indirect ones included. */
	ASSERT(e->nout + e->nin <= qsz);
	for (unsigned int i = 0; i < e->nout + e->nin; i++) {
		ASSERT(e->iov[i].iov_len > 0);
		ASSERT(in_region(st, &e->iov[i]));
		if (i < e->nout)
			out += e->iov[i].iov_len;
		else
			in += e->iov[i].iov_len;
	}
	ASSERT(out == e->out_len && in == e->in_len);
}

/* What a device does with a chain: reads what it may, writes what it may. */
static uint32_t use_elem(struct fuzz_state *st, uint8_t round)
{
	const struct virtq_elem *e = &st->e;
	uint8_t tmp[64];
	volatile uint8_t sink = 0;
	size_t n;
	int k;

	for (unsigned int i = 0; i < e->nout; i++) {
		const uint8_t *p = e->iov[i].iov_base;

		sink ^= p[0];
		sink ^= p[e->iov[i].iov_len - 1];
	}
	n = virtq_elem_read(e, round % 32, tmp, sizeof(tmp));
	ASSERT(n <= sizeof(tmp) && n <= e->out_len);
	k = virtq_elem_out_slice(e, e->out_len ? 1 : 0, e->out_len ? e->out_len - 1 : 0,
				 st->slice, MAX_QSZ);
	ASSERT(k >= 0 && k <= (int)e->nout);
	for (int i = 0; i < k; i++)
		ASSERT(in_region(st, &st->slice[i]));

	memset(tmp, 0xa5 ^ round, sizeof(tmp));
	for (uint64_t off = 0; off < e->in_len && off < 4096; off += sizeof(tmp))
		virtq_elem_write(e, off, tmp, sizeof(tmp));
	k = virtq_elem_in_slice(e, 0, e->in_len, st->slice, MAX_QSZ);
	ASSERT(k >= 0 && k <= (int)e->nin);
	for (int i = 0; i < k; i++) {
		ASSERT(in_region(st, &st->slice[i]));
		((uint8_t *)st->slice[i].iov_base)[0] = round;
	}
	(void)sink;
	return (uint32_t)MIN(e->in_len, UINT32_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_state *st = fuzz_state();
	struct virtqueue *vq = &st->dev.vqs[0];
	uint16_t qsz;
	int r = 0;

	if (size < 1)
		return 0;
	qsz = (uint16_t)(1u << ((data[0] & 7) % 5));
	memset(st->buf, 0, MEM_SIZE);
	memcpy(st->buf, data + 1, MIN(size - 1, MEM_SIZE));

	virtio_dev_reset(&st->dev);
	ASSERT(!virtio_dev_is_broken(&st->dev));
	st->dev.features = VIRTIO_BIT(VIRTIO_F_VERSION_1) |
			   ((data[0] & 8) ? VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) : 0) |
			   ((data[0] & 16) ? VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX) : 0);
	ASSERT(virtq_setup(vq, qsz, DESC_GPA, AVAIL_GPA, USED_GPA) == 0);

	for (int round = 0; round < MAX_ROUNDS; round++) {
		r = virtq_pop(vq, &st->e);
		if (r == -EAGAIN)
			break;
		if (r == -EIO) {
			ASSERT(virtio_dev_is_broken(&st->dev));
			ASSERT(st->dev.broken_why[0]);
			/* Broken stays broken: nothing more is read. */
			ASSERT(virtq_pop(vq, &st->e) == -EIO);
			break;
		}
		ASSERT(r == 0);
		ASSERT(!virtio_dev_is_broken(&st->dev));
		check_elem(st, qsz);
		virtq_push(vq, &st->e, use_elem(st, (uint8_t)round));
		(void)virtq_should_notify(vq);
	}
	return 0;
}

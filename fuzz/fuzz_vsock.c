/* libFuzzer target for virtio-vsock, what a guest sends it: the input is a
 * run of packets (a 44-byte header, then as many payload bytes as its len
 * says, as far as the input goes) that the guest puts on the transmit queue,
 * and the sizes of the receive buffers it offers. The device's worker takes
 * them while a host program listens on port 5000, so requests, data,
 * credit, shutdowns and resets all reach real sockets. Every packet must be
 * taken back, the device must not break on well-formed rings, and ASan
 * watches every byte it touches. One device serves every input, reset by the
 * driver between them as a guest would: a fresh device per input (a worker
 * thread started and joined each time) held the target to a few hundred
 * inputs a second, and the reset path is worth fuzzing too. */
#include "virtio/virtio.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

#define MEM_GPA  0x100000ULL
#define MEM_SIZE 0x40000ULL
#define QSZ      16
#define RING(q, part) (MEM_GPA + (uint64_t)(q) * 0x3000 + (uint64_t)(part) * 0x1000)
#define RXBUF(i) (MEM_GPA + 0x10000 + (uint64_t)(i) * 0x1000)
#define TXBUF(i) (MEM_GPA + 0x20000 + (uint64_t)(i) * 0x1000)
#define HDR 44

static uint8_t *mem_buf;
static struct virtio_mmio *m;
static struct virtio_dev *dev;
static struct guestmem mem;
static int lfd = -1;

static void wr(uint64_t off, uint32_t v)
{
	virtio_mmio_io(m, off, &v, 4, true);
}

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio_io(m, off, &v, 4, false);
	return v;
}

static void *host(uint64_t gpa)
{
	return mem_buf + (gpa - MEM_GPA);
}

static void queue(unsigned int q)
{
	memset(host(RING(q, 0)), 0, 0x3000);
	wr(0x030, q);
	wr(0x038, QSZ);
	wr(0x080, (uint32_t)RING(q, 0));
	wr(0x090, (uint32_t)RING(q, 1));
	wr(0x0a0, (uint32_t)RING(q, 2));
	wr(0x044, 1);
}

static void post(unsigned int q, uint16_t head, uint64_t addr, uint32_t len, uint16_t flags, uint16_t *idx)
{
	struct virtq_desc d = { addr, len, flags, 0 };
	struct virtq_avail *a = host(RING(q, 1));

	memcpy(host(RING(q, 0) + 16 * head), &d, sizeof(d));
	a->ring[*idx % QSZ] = head;
	__atomic_store_n(&a->idx, ++*idx, __ATOMIC_RELEASE);
}

/* The connections the device made to the host program: taken and closed,
 * so that the listener's backlog never fills across inputs. */
static void drain(void)
{
	int c;

	while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		close(c);
}

static void setup_once(void)
{
	static char uds[64], port[80];
	struct virtio_vsock_opts o = { .guest_cid = 3, .uds_path = uds, .buf_size = 4096, .max_conns = 4 };
	char err[256];

	mem_buf = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT(mem_buf != MAP_FAILED);
	snprintf(uds, sizeof(uds), "/tmp/nestvm-fuzz-vsock-%d.sock", (int)getpid());
	snprintf(port, sizeof(port), "%s_5000", uds);
	mem.regions[0] = (struct guestmem_region){ .gpa = MEM_GPA, .size = MEM_SIZE, .host = mem_buf };
	mem.nregions = 1;
	mem.total = MEM_SIZE;
	unlink(port);
	lfd = util_unix_listen(port, SOCK_STREAM | SOCK_NONBLOCK, 64);
	ASSERT(lfd >= 0);
	ASSERT(virtio_vsock_create(&dev, &o, err, sizeof(err)) == 0);
	ASSERT(virtio_mmio_create(&m, &mem, (struct irq_line){ 0 }, dev) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t rx_idx = 0, tx_idx = 0;
	struct virtq_used *used;
	uint64_t deadline;
	size_t pos = 0;

	if (!mem_buf)
		setup_once();
	wr(0x070, 0);                   /* reset: the last input's connections go */
	drain();
	memset(mem_buf, 0, MEM_SIZE);
	wr(0x070, 1);
	wr(0x070, 3);
	wr(0x024, 1);
	wr(0x020, 1);                   /* VERSION_1 */
	wr(0x070, 11);
	queue(0);
	queue(1);
	queue(2);
	wr(0x070, 15);
	/* Receive buffers: their sizes from the first bytes. */
	for (unsigned int i = 0; i < 8; i++) {
		uint32_t len = pos < size ? (uint32_t)data[pos++] * 16 + 1 : 4096;

		post(0, (uint16_t)i, RXBUF(i), len, VIRTQ_DESC_F_WRITE, &rx_idx);
	}
	wr(0x050, 0);
	/* Packets, each in its own readable buffer. */
	for (unsigned int i = 0; i < QSZ && pos + HDR <= size; i++) {
		uint32_t len, take;

		memcpy(host(TXBUF(i)), data + pos, HDR);
		memcpy(&len, data + pos + 32, 4);
		pos += HDR;
		take = (uint32_t)MIN((uint64_t)len, MIN((uint64_t)(size - pos), 0x1000ULL - HDR));
		memcpy(host(TXBUF(i)) + HDR, data + pos, take);
		pos += take;
		post(1, (uint16_t)i, TXBUF(i), HDR + take, 0, &tx_idx);
		wr(0x050, 1);
	}
	/* Every packet comes back, within a second. */
	used = host(RING(1, 2));
	deadline = util_now_ns() + 1000000000ULL;
	while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != tx_idx && util_now_ns() < deadline)
		sched_yield();
	ASSERT(__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) == tx_idx);
	ASSERT(!virtio_dev_is_broken(dev));
	(void)rd(0x060);
	return 0;
}

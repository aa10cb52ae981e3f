/* Virtio devices (virtio 1.2): a device fills an ops table and reads its
 * requests through the split-virtqueue helpers here; a transport (virtio-mmio
 * today) binds it to a bus window, guest memory and an interrupt line. The
 * device never learns which transport carries it. */
#ifndef NESTVM_VIRTIO_H
#define NESTVM_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bus.h"
#include "guestmem.h"
#include "snap.h"
#include "util.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "virtio structures are little-endian and are read here in host order"
#endif

#define VIRTIO_ID_BLOCK         2
#define VIRTIO_ID_RNG           4
#define VIRTIO_ID_BALLOON       5
#define VIRTIO_ID_VSOCK         19

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE      1u
#define VIRTIO_STATUS_DRIVER           2u
#define VIRTIO_STATUS_DRIVER_OK        4u
#define VIRTIO_STATUS_FEATURES_OK      8u
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED           128u

/* Feature bits every device here offers besides its own (6). */
#define VIRTIO_F_RING_INDIRECT_DESC    28
#define VIRTIO_F_RING_EVENT_IDX        29
#define VIRTIO_F_VERSION_1             32
#define VIRTIO_BIT(b)                  (1ULL << (b))

/* Interrupt status bits, the same for every transport. */
#define VIRTIO_ISR_QUEUE        1u
#define VIRTIO_ISR_CONFIG       2u

/* Split virtqueue layout (2.7). */
#define VIRTQ_DESC_F_NEXT       1u
#define VIRTQ_DESC_F_WRITE      2u
#define VIRTQ_DESC_F_INDIRECT   4u
#define VIRTQ_USED_F_NO_NOTIFY  1u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_MAX_SIZE          32768u
#define VIRTQ_DESC_SIZE         16u

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];        /* size entries, then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];  /* size entries, then avail_event */
};

/* Bytes the rings of a queue of n entries occupy, event fields included. */
#define VIRTQ_DESC_BYTES(n)  ((uint64_t)(n) * VIRTQ_DESC_SIZE)
#define VIRTQ_AVAIL_BYTES(n) (6 + 2 * (uint64_t)(n))
#define VIRTQ_USED_BYTES(n)  (6 + 8 * (uint64_t)(n))

struct virtio_dev;

/* One split virtqueue. The transport configures it (virtq_setup and
 * virtq_disable); the device consumes it (virtq_pop, virtq_push,
 * virtq_signal), usually from its own thread: lock orders the two. */
struct virtqueue {
	struct virtio_dev *dev;
	pthread_mutex_t lock;
	uint16_t index;
	bool ready;
	uint16_t size;                  /* power of two once ready */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Host views of the rings, looked up through guestmem_ptr once at setup:
	 * guest RAM never moves while the machine runs. */
	const uint8_t *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t last_avail_idx;        /* next avail entry the device reads */
	uint16_t used_idx;              /* next used entry the device writes */
	uint16_t signalled_used;        /* used_idx when virtq_should_notify last ran */
	bool signalled_valid;
	bool event_idx;                 /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool indirect;                  /* VIRTIO_F_RING_INDIRECT_DESC negotiated */
	uint32_t gen;                   /* bumped on every setup and disable */
};

/* A popped descriptor chain: nout readable buffers, then nin writable ones,
 * as host pointers into guest RAM. Zero-length descriptors are left out. */
struct virtq_elem {
	uint16_t head;                  /* what virtq_push hands back */
	uint32_t gen;
	unsigned int nout, nin;
	uint64_t out_len, in_len;       /* bytes readable, bytes writable */
	struct iovec *iov;
	unsigned int cap;               /* entries of iov */
};

/* What a device implements. Calls come from the transport with its lock held
 * and on a vCPU thread: notify must not block (wake a worker instead). */
struct virtio_dev_ops {
	uint32_t device_id;
	unsigned int nqueues;
	/* offset + len lies within config_size; len is 1, 2, 4 or 8. */
	void (*config_read)(struct virtio_dev *dev, uint32_t offset, void *data, uint32_t len);
	void (*config_write)(struct virtio_dev *dev, uint32_t offset, const void *data, uint32_t len);
	/* The guest kicked queue q (ready, and the driver is up). NULL for a
	 * device served by a worker: the worker is kicked. */
	void (*notify)(struct virtio_dev *dev, unsigned int q);
	/* The queues have been disabled: return only once the device no longer
	 * touches them, and forget per-driver state. A device served by a
	 * worker is called with the worker idle and its lock held; NULL when
	 * there is nothing more to forget. */
	void (*reset)(struct virtio_dev *dev);
	/* Stops worker threads and frees the device, virtio_dev included. */
	void (*destroy)(struct virtio_dev *dev);
	/* Saving the device's state (all optional). hold: from here until
	 * release the device touches neither its queues nor guest memory, and
	 * it has given back (virtq_unpop) any chain it held without finishing;
	 * devices served by a worker need none (the worker is held). save and
	 * load: what the device keeps beyond its queues and features; load
	 * checks every value it reads, the queues already restored. */
	void (*hold)(struct virtio_dev *dev);
	void (*release)(struct virtio_dev *dev);
	void (*save)(struct virtio_dev *dev, struct snap_buf *b);
	int (*load)(struct virtio_dev *dev, struct snap_cur *c);
};

/* How a device reaches its transport: an interrupt with ISR bits. */
struct virtio_transport {
	void (*interrupt)(void *opaque, uint32_t isr);
	void *opaque;
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	char name[32];                  /* in every log line: "virtio-blk0" */
	const struct guestmem *mem;     /* set by the transport */
	struct virtio_transport transport;
	uint64_t host_features;         /* device bits plus VERSION_1 and ring bits */
	uint64_t features;              /* accepted at FEATURES_OK */
	uint16_t queue_max;
	uint32_t config_size;
	struct virtqueue *vqs;          /* ops->nqueues of them */
	_Atomic uint32_t config_gen;
	_Atomic bool broken;
	char broken_why[160];           /* the first violation since the last reset */
	pthread_mutex_t log_lock;
	uint64_t log_last_ns;
	unsigned int log_suppressed;
	struct virtio_worker *worker;   /* the thread serving the queues, once started; or NULL */
};

/* For devices: sets up the common part (queues, offered features). */
MUST_CHECK int virtio_dev_init(struct virtio_dev *dev, const struct virtio_dev_ops *ops,
			       const char *name, uint64_t device_features,
			       uint16_t queue_max, uint32_t config_size);
void virtio_dev_cleanup(struct virtio_dev *dev);
/* Stops the device's threads and frees it; NULL is a no-op. */
void virtio_dev_destroy(struct virtio_dev *dev);

static inline bool virtio_dev_has(const struct virtio_dev *dev, unsigned int bit)
{
	return (dev->features >> bit) & 1;
}

static inline bool virtio_dev_is_broken(struct virtio_dev *dev)
{
	return atomic_load_explicit(&dev->broken, memory_order_acquire);
}

/* The guest broke the protocol: the device stops serving queues until the
 * driver resets it, and one line (rate-limited) says what happened. */
void virtio_dev_fail(struct virtio_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A rate-limited line on stderr naming the device, without breaking it. */
void virtio_dev_warn(struct virtio_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The device changed its configuration space. */
void virtio_dev_config_changed(struct virtio_dev *dev);
/* For transports: device reset (status 0). Disables every queue, waits for
 * the device through ops->reset, and forgets features and a broken state. */
void virtio_dev_reset(struct virtio_dev *dev);
/* The guest kicked queue q: to the device's notify, or its worker. */
void virtio_dev_notify(struct virtio_dev *dev, unsigned int q);

/* Saving and restoring a device (its features, broken state, queues and
 * own fields). Between hold and release the device stands still: nothing
 * it does reaches its queues or guest memory. load is for a device fresh
 * from its create, with guest memory in place; it checks every value. After
 * a load, kick_all has the device look at every ready queue again, as
 * kicks that were pending at the save are not saved. */
void virtio_dev_hold(struct virtio_dev *dev);
void virtio_dev_release(struct virtio_dev *dev);
void virtio_dev_save(struct virtio_dev *dev, struct snap_buf *b);
MUST_CHECK int virtio_dev_load(struct virtio_dev *dev, struct snap_cur *c);
void virtio_dev_kick_all(struct virtio_dev *dev);

/* A device's worker thread (worker.c). lock guards the fields below, and may
 * guard the device's own state too. */
struct virtio_worker {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	unsigned int kicked;            /* bit per queue */
	bool busy, stop;
};

/* Starts fn(arg) as the thread name; on failure w needs no stop. -errno. */
MUST_CHECK int virtio_worker_start(struct virtio_worker *w, void *(*fn)(void *), void *arg,
				   const char *name);
/* fn's loop: ends the last round of work, then waits for a kick or the
 * util_now_ns() deadline (UINT64_MAX: none). Returns false once stopped,
 * else true with *kicked the queues kicked since (0: the deadline passed). */
bool virtio_worker_wait(struct virtio_worker *w, uint64_t deadline_ns, unsigned int *kicked);
/* From ops->notify, on a vCPU: queue q (below 32) was kicked. */
void virtio_worker_kick(struct virtio_worker *w, unsigned int q);
/* From ops->reset: drops pending kicks and waits until fn is back in wait.
 * Returns with lock held, to forget per-driver state; the caller unlocks. */
void virtio_worker_quiesce(struct virtio_worker *w);
/* From ops->destroy: stops and joins the thread; no-op if it never started. */
void virtio_worker_stop(struct virtio_worker *w);
/* Waits until fn is back in wait and keeps it there, kicks kept for later,
 * until virtio_worker_release. */
void virtio_worker_hold(struct virtio_worker *w);
void virtio_worker_release(struct virtio_worker *w);

/* A device worker that polls file descriptors of its own beside the queues
 * (virtio-net's backend, virtio-vsock's sockets): kicks and resets arrive
 * on kick_fd, an eventfd it polls with them. Its loop: poll (kick_fd
 * included), virtio_poller_begin, serve, virtio_poller_end. */
struct virtio_poller {
	int kick_fd;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;           /* guards the fields below */
	pthread_cond_t idle, resume;
	bool busy, stop;
	bool held;                      /* for a save: no round begins */
	unsigned int reset_gen, seen_reset_gen;
};

/* The eventfd and the lock; -errno. On failure p needs only virtio_poller_stop. */
MUST_CHECK int virtio_poller_init(struct virtio_poller *p);
MUST_CHECK int virtio_poller_start(struct virtio_poller *p, void *(*fn)(void *), void *arg, const char *name);
/* From ops->notify, on a vCPU: never blocks. */
void virtio_poller_kick(struct virtio_poller *p);
/* From ops->reset: waits until the worker is between rounds, then kicks it;
 * its next round begins with *reset true. */
void virtio_poller_reset(struct virtio_poller *p);
/* After the worker's poll: drains the eventfd if kicked said so. false once
 * stopped; else the round begins, *reset saying whether the driver reset the
 * device since the last one (what the worker held is the old rings'). */
bool virtio_poller_begin(struct virtio_poller *p, bool kicked, bool *reset);
void virtio_poller_end(struct virtio_poller *p);
/* For ops->hold: waits until the worker is between rounds and keeps it
 * there (its begin waits) until virtio_poller_release, which kicks it. */
void virtio_poller_hold(struct virtio_poller *p);
void virtio_poller_release(struct virtio_poller *p);
/* Stops and joins the worker (if it started) and frees the rest. */
void virtio_poller_stop(struct virtio_poller *p);

/* For transports. size must be a power of two no larger than queue_max, and
 * each ring aligned and wholly in guest RAM: -EINVAL or -EFAULT otherwise. */
MUST_CHECK int virtq_setup(struct virtqueue *vq, uint16_t size, uint64_t desc_gpa,
			   uint64_t avail_gpa, uint64_t used_gpa);
void virtq_disable(struct virtqueue *vq);

MUST_CHECK int virtq_elem_init(struct virtq_elem *e, unsigned int cap);
void virtq_elem_free(struct virtq_elem *e);

/* Takes the next available chain. 0: e holds it; -EAGAIN: none available
 * (or the queue is off); -EIO: the device is broken (this chain broke it,
 * or an earlier one did). With EVENT_IDX, an empty ring re-arms avail_event. */
MUST_CHECK int virtq_pop(struct virtqueue *vq, struct virtq_elem *e);
/* Returns a chain with len bytes written into its writable buffers. Dropped
 * if the queue was disabled or set up again since the pop. */
void virtq_push(struct virtqueue *vq, const struct virtq_elem *e, uint32_t len);
/* Returns chains e[0..n) with len[i] bytes written into each, published to
 * the driver together (one used index update): a frame spread over several
 * mergeable receive buffers is seen whole or not at all. */
void virtq_push_n(struct virtqueue *vq, const struct virtq_elem *e, const uint32_t *len, unsigned int n);
/* Gives back the chain popped last, unused: the next pop takes it again. */
void virtq_unpop(struct virtqueue *vq, const struct virtq_elem *e);
/* Whether the driver wants an interrupt for what was pushed since the last
 * call (used_event with EVENT_IDX, else the avail NO_INTERRUPT flag). */
bool virtq_should_notify(struct virtqueue *vq);
/* Interrupts the driver if virtq_should_notify says so. */
void virtq_signal(struct virtqueue *vq);

/* Copy between a chain and host memory: readable bytes [off, off+len) out of
 * it, writable bytes [off, off+len) into it. Return the bytes copied. */
size_t virtq_elem_read(const struct virtq_elem *e, uint64_t off, void *dst, size_t len);
size_t virtq_elem_write(const struct virtq_elem *e, uint64_t off, const void *src, size_t len);
/* The writable bytes [off, off+len) as up to cap iovecs; returns the count,
 * or -ERANGE if they do not exist or do not fit. */
int virtq_elem_in_slice(const struct virtq_elem *e, uint64_t off, uint64_t len,
			struct iovec *out, unsigned int cap);
int virtq_elem_out_slice(const struct virtq_elem *e, uint64_t off, uint64_t len,
			 struct iovec *out, unsigned int cap);

/* virtio-mmio version 2 (4.2.2), one 4 KiB window per device. */
#define VIRTIO_MMIO_ACPI_HID    "LNRO0005"
#define VIRTIO_MMIO_WINDOW      0x1000u
#define VIRTIO_MMIO_MAGIC       0x74726976u     /* "virt" */
#define VIRTIO_MMIO_VENDOR      0x4d56534eu     /* "NSVM" */

struct virtio_mmio;

/* Binds dev to guest memory and an interrupt line; register the window with
 * bus_register(&vm->mmio, base, VIRTIO_MMIO_WINDOW, name, virtio_mmio_io, m). */
MUST_CHECK int virtio_mmio_create(struct virtio_mmio **out, const struct guestmem *mem,
				  struct irq_line irq, struct virtio_dev *dev);
/* The transport's registers and the device behind it (see virtio_dev_save);
 * hold the device first. load re-drives the interrupt line from the restored
 * InterruptStatus: the irqchip's state must be in place before it. */
void virtio_mmio_save(struct virtio_mmio *m, struct snap_buf *b);
MUST_CHECK int virtio_mmio_load(struct virtio_mmio *m, struct snap_cur *c);
struct virtio_dev *virtio_mmio_dev(struct virtio_mmio *m);
bus_handler_fn virtio_mmio_io;
/* Frees the transport, not the device: destroy that after, with the vCPUs stopped. */
void virtio_mmio_destroy(struct virtio_mmio *m);

/* virtio-blk on a raw image file. */
struct virtio_blk_opts {
	const char *path;
	const char *name;               /* for log lines; NULL: "virtio-blk" */
	const char *serial;             /* GET_ID, up to 20 bytes; NULL: the image's basename */
	bool read_only;
	uint16_t queue_size;            /* 0: 256; a power of two, at most 1024 */
};

/* -ENOENT, -EACCES...: the image could not be opened; -EBUSY: another
 * process holds it; -EINVAL: bad options or an image under 512 bytes. */
MUST_CHECK int virtio_blk_create(struct virtio_dev **out, const struct virtio_blk_opts *opts);
/* Puts the image at path behind a running disk, read-only as before, and
 * tells the driver its new capacity (a configuration change). On failure
 * the old image stays. -errno as virtio_blk_create. */
MUST_CHECK int virtio_blk_swap(struct virtio_dev *dev, const char *path);

/* virtio-vsock, stream sockets, its host side on Unix sockets (Firecracker's
 * hybrid vsock): host programs connect to uds_path and write "CONNECT
 * <port>\n"; the guest connecting to host port P reaches "<uds_path>_P".
 * A saved device carries its queues and CID but no connection: their host
 * ends are this process's sockets. The restored one tells the guest's driver
 * so with a transport reset event, as Firecracker's does after a snapshot
 * load; the guest's listeners stay, and hosts connect to them anew. */
#define VIRTIO_VSOCK_HOST_CID   2
#define VIRTIO_VSOCK_PATH_MAX   1024
#define VIRTIO_VSOCK_BUF_SIZE   (64 * 1024)     /* per connection, each way: the credit */
#define VIRTIO_VSOCK_MAX_CONNS  64

struct virtio_vsock_opts {
	const char *name;               /* NULL: "virtio-vsock" */
	uint64_t guest_cid;             /* 3 to 2^32 - 2 */
	const char *uds_path;           /* listened on (a stale socket replaced); removed at the end */
	uint32_t buf_size;              /* 0: VIRTIO_VSOCK_BUF_SIZE */
	unsigned int max_conns;         /* 0: VIRTIO_VSOCK_MAX_CONNS */
};

struct virtio_vsock_stats {
	uint64_t rx_packets, rx_bytes;  /* to the guest */
	uint64_t tx_packets, tx_bytes;  /* from the guest */
	uint64_t conns_opened, conns_refused;
	uint64_t credit_violations;     /* connections reset for sending past their credit */
	uint64_t dropped;               /* packets with a wrong address or length */
};

static inline bool virtio_vsock_cid_ok(uint64_t cid)
{
	return cid >= 3 && cid <= 0xfffffffeULL;
}

/* -EINVAL for a bad CID or path, else why the socket or thread failed; err says it. */
MUST_CHECK int virtio_vsock_create(struct virtio_dev **out, const struct virtio_vsock_opts *opts,
				   char *err, size_t errlen);
void virtio_vsock_get_stats(struct virtio_dev *dev, struct virtio_vsock_stats *st);

/* A migration's view of a disk: writes tracked in chunks of
 * VIRTIO_BLK_CHUNK while track is on, the chunks written since the last
 * take ORed into bitmap and cleared (take works whether or not the device
 * is held; track only while it is not); its image's fd and size to read
 * from. */
#define VIRTIO_BLK_CHUNK (64ULL << 10)
MUST_CHECK int virtio_blk_track(struct virtio_dev *dev, bool on);
uint64_t virtio_blk_chunks(struct virtio_dev *dev);
void virtio_blk_take_dirty(struct virtio_dev *dev, uint64_t *bitmap);
int virtio_blk_image_fd(struct virtio_dev *dev);
uint64_t virtio_blk_bytes(struct virtio_dev *dev);

/* virtio-rng: entropy from getrandom(). name NULL: "virtio-rng". */
MUST_CHECK int virtio_rng_create(struct virtio_dev **out, const char *name);

/* virtio-balloon: dynamic memory. The guest's RAM is the maximum; the balloon
 * holds what it is not assigned. Sizes are bytes, multiples of 4 KiB. */
#define VIRTIO_BALLOON_PAGE     4096ULL         /* the protocol's page, whatever the host's */
#define VIRTIO_BALLOON_LOW_PCT  20
#define VIRTIO_BALLOON_HIGH_PCT 50

struct virtio_balloon_policy {
	uint64_t min, max;              /* bounds of the assigned memory; max is all RAM */
	uint64_t step;                  /* per second; 0: (max - min) / 16, at least 32 MiB */
	/* Give memory while available < low_pct of it, take some back while
	 * available > high_pct. Both 0: VIRTIO_BALLOON_LOW_PCT and _HIGH_PCT. */
	unsigned int low_pct, high_pct;
};

struct virtio_balloon_opts {
	const char *name;               /* NULL: "virtio-balloon" */
	struct virtio_balloon_policy policy;
	uint64_t startup;               /* the first target, in [min, max] */
};

/* The guest's figures from the stats queue, in bytes. */
struct virtio_balloon_stats {
	bool valid;                     /* a report with MEMFREE or AVAIL came in */
	bool has_avail;
	uint64_t avail, memfree, memtot;
};

struct virtio_balloon_info {
	uint64_t target;                /* what the guest is asked to keep */
	uint64_t assigned;              /* what it keeps: RAM minus its balloon */
	uint64_t released_pages;        /* given back to the host */
	uint64_t refused_pages;         /* PFNs outside guest RAM, or not released */
	uint64_t returned_pages;        /* taken back by the guest */
	struct virtio_balloon_stats stats;
};

/* -EINVAL unless min <= startup <= max and max fits 32-bit page numbers. */
MUST_CHECK int virtio_balloon_create(struct virtio_dev **out, const struct virtio_balloon_opts *opts);
/* Sets the target, clamped to [min, max]; returns it. The automatic policy
 * leaves it alone for 30 seconds. Any thread. */
uint64_t virtio_balloon_set_target(struct virtio_dev *dev, uint64_t bytes);
void virtio_balloon_get_info(struct virtio_dev *dev, struct virtio_balloon_info *info);
/* The policy, pure: the next target from the current one, the memory the
 * guest has now, and its latest figures. Takes memory back only once the
 * balloon has caught up with the target; stays within [min, max]. */
uint64_t virtio_balloon_policy_next(const struct virtio_balloon_policy *p, uint64_t target,
				    uint64_t assigned, const struct virtio_balloon_stats *s);

#endif

/* The split virtqueue, walked in one place for every device and transport,
 * and the device state all virtio devices share. Everything the guest wrote
 * is untrusted: each address goes through guestmem_ptr, each index is bounded,
 * and a violation breaks the device instead of the host. */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_LOG_INTERVAL_NS 1000000000ULL

/* One line on stderr, at most one a second per device; the rest are counted. */
static void virtio_dev_log(struct virtio_dev *dev, const char *msg, const char *what)
{
	uint64_t now = util_now_ns();
	unsigned int suppressed;

	pthread_mutex_lock(&dev->log_lock);
	if (dev->log_last_ns && now - dev->log_last_ns < VIRTIO_LOG_INTERVAL_NS) {
		dev->log_suppressed++;
		pthread_mutex_unlock(&dev->log_lock);
		return;
	}
	suppressed = dev->log_suppressed;
	dev->log_suppressed = 0;
	dev->log_last_ns = now;
	pthread_mutex_unlock(&dev->log_lock);
	if (suppressed)
		fprintf(stderr, "nestvm: %s: %s%s (%u similar messages suppressed)\n",
			dev->name, msg, what, suppressed);
	else
		fprintf(stderr, "nestvm: %s: %s%s\n", dev->name, msg, what);
}

void virtio_dev_warn(struct virtio_dev *dev, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	virtio_dev_log(dev, msg, "");
}

void virtio_dev_fail(struct virtio_dev *dev, const char *fmt, ...)
{
	char msg[sizeof(dev->broken_why)];
	va_list ap;
	bool first;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Only the first violation counts: after it nothing is read any more.
	 * The reason is in place before anyone can see the flag. */
	pthread_mutex_lock(&dev->log_lock);
	first = !atomic_load(&dev->broken);
	if (first) {
		memcpy(dev->broken_why, msg, sizeof(msg));
		atomic_store_explicit(&dev->broken, true, memory_order_release);
	}
	pthread_mutex_unlock(&dev->log_lock);
	if (!first)
		return;
	virtio_dev_log(dev, msg, "; device stopped until the guest resets it");
	/* DEVICE_NEEDS_RESET is read through the status register; the spec wants
	 * a configuration-change interrupt to go with it. */
	if (dev->transport.interrupt)
		dev->transport.interrupt(dev->transport.opaque, VIRTIO_ISR_CONFIG);
}

void virtio_dev_config_changed(struct virtio_dev *dev)
{
	atomic_fetch_add(&dev->config_gen, 1);
	if (dev->transport.interrupt)
		dev->transport.interrupt(dev->transport.opaque, VIRTIO_ISR_CONFIG);
}

int virtio_dev_init(struct virtio_dev *dev, const struct virtio_dev_ops *ops, const char *name,
		    uint64_t device_features, uint16_t queue_max, uint32_t config_size)
{
	unsigned int i;

	memset(dev, 0, sizeof(*dev));
	if (!ops->nqueues || !queue_max || queue_max > VIRTQ_MAX_SIZE ||
	    (queue_max & (queue_max - 1)) || config_size > VIRTIO_MMIO_WINDOW - 0x100)
		return -EINVAL;
	dev->ops = ops;
	snprintf(dev->name, sizeof(dev->name), "%s", name);
	dev->host_features = device_features | VIRTIO_BIT(VIRTIO_F_VERSION_1) |
			     VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) |
			     VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
	dev->queue_max = queue_max;
	dev->config_size = config_size;
	dev->vqs = calloc(ops->nqueues, sizeof(*dev->vqs));
	if (!dev->vqs)
		return -ENOMEM;
	if (pthread_mutex_init(&dev->log_lock, NULL)) {
		free(dev->vqs);
		dev->vqs = NULL;
		return -ENOMEM;
	}
	for (i = 0; i < ops->nqueues; i++) {
		dev->vqs[i].dev = dev;
		dev->vqs[i].index = (uint16_t)i;
		if (pthread_mutex_init(&dev->vqs[i].lock, NULL))
			break;
	}
	if (i < ops->nqueues) {
		while (i--)
			pthread_mutex_destroy(&dev->vqs[i].lock);
		pthread_mutex_destroy(&dev->log_lock);
		free(dev->vqs);
		dev->vqs = NULL;
		return -ENOMEM;
	}
	return 0;
}

void virtio_dev_cleanup(struct virtio_dev *dev)
{
	if (!dev->vqs)
		return;
	for (unsigned int i = 0; i < dev->ops->nqueues; i++)
		pthread_mutex_destroy(&dev->vqs[i].lock);
	pthread_mutex_destroy(&dev->log_lock);
	free(dev->vqs);
	dev->vqs = NULL;
}

void virtio_dev_destroy(struct virtio_dev *dev)
{
	if (dev)
		dev->ops->destroy(dev);
}

void virtio_dev_notify(struct virtio_dev *dev, unsigned int q)
{
	if (dev->ops->notify)
		dev->ops->notify(dev, q);
	else if (dev->worker)
		virtio_worker_kick(dev->worker, q);
}

void virtio_dev_reset(struct virtio_dev *dev)
{
	unsigned int i;

	/* Queues first, so that a busy device finds nothing more to take. */
	for (i = 0; i < dev->ops->nqueues; i++)
		virtq_disable(&dev->vqs[i]);
	if (dev->worker)
		virtio_worker_quiesce(dev->worker);
	if (dev->ops->reset)
		dev->ops->reset(dev);
	if (dev->worker)
		pthread_mutex_unlock(&dev->worker->lock);
	for (i = 0; i < dev->ops->nqueues; i++) {
		struct virtqueue *vq = &dev->vqs[i];

		pthread_mutex_lock(&vq->lock);
		vq->size = 0;
		vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
		pthread_mutex_unlock(&vq->lock);
	}
	dev->features = 0;
	pthread_mutex_lock(&dev->log_lock);
	dev->broken_why[0] = '\0';
	atomic_store(&dev->broken, false);
	pthread_mutex_unlock(&dev->log_lock);
}

int virtq_setup(struct virtqueue *vq, uint16_t size, uint64_t desc_gpa,
		uint64_t avail_gpa, uint64_t used_gpa)
{
	struct virtio_dev *dev = vq->dev;
	void *desc, *avail, *used;

	if (!size || (size & (size - 1)) || size > dev->queue_max)
		return -EINVAL;
	/* 2.7: descriptor table 16-byte, avail 2-byte, used 4-byte aligned. */
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3))
		return -EINVAL;
	desc = guestmem_ptr(dev->mem, desc_gpa, VIRTQ_DESC_BYTES(size));
	avail = guestmem_ptr(dev->mem, avail_gpa, VIRTQ_AVAIL_BYTES(size));
	used = guestmem_ptr(dev->mem, used_gpa, VIRTQ_USED_BYTES(size));
	if (!desc || !avail || !used)
		return -EFAULT;

	pthread_mutex_lock(&vq->lock);
	vq->size = size;
	vq->desc_gpa = desc_gpa;
	vq->avail_gpa = avail_gpa;
	vq->used_gpa = used_gpa;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	/* The driver zeroes both rings before it enables a queue (2.7.13). */
	vq->last_avail_idx = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->event_idx = virtio_dev_has(dev, VIRTIO_F_RING_EVENT_IDX);
	vq->indirect = virtio_dev_has(dev, VIRTIO_F_RING_INDIRECT_DESC);
	vq->gen++;
	vq->ready = true;
	pthread_mutex_unlock(&vq->lock);
	return 0;
}

void virtq_disable(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	if (vq->ready)
		vq->gen++;
	vq->ready = false;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	pthread_mutex_unlock(&vq->lock);
}

/* ---- saving and restoring ---- */

static void virtq_save(struct virtqueue *vq, struct snap_buf *b)
{
	pthread_mutex_lock(&vq->lock);
	snap_put_u8(b, vq->ready);
	snap_put_u16(b, vq->size);
	snap_put_u64(b, vq->desc_gpa);
	snap_put_u64(b, vq->avail_gpa);
	snap_put_u64(b, vq->used_gpa);
	snap_put_u16(b, vq->last_avail_idx);
	snap_put_u16(b, vq->used_idx);
	snap_put_u16(b, vq->signalled_used);
	snap_put_u8(b, vq->signalled_valid);
	pthread_mutex_unlock(&vq->lock);
}

/* The device's features are in place: they decide the ring options. */
static int virtq_load(struct virtqueue *vq, struct snap_cur *c)
{
	bool ready = snap_get_bool(c);
	uint16_t size = snap_get_u16(c);
	uint64_t desc = snap_get_u64(c), avail = snap_get_u64(c), used = snap_get_u64(c);
	uint16_t last_avail = snap_get_u16(c), used_idx = snap_get_u16(c), signalled = snap_get_u16(c);
	bool signalled_valid = snap_get_bool(c);
	int r;

	if (c->bad)
		return -EINVAL;
	if (!ready) {
		virtq_disable(vq);
		pthread_mutex_lock(&vq->lock);
		vq->size = size;
		vq->desc_gpa = desc;
		vq->avail_gpa = avail;
		vq->used_gpa = used;
		pthread_mutex_unlock(&vq->lock);
		return 0;
	}
	r = virtq_setup(vq, size, desc, avail, used);
	if (r < 0) {
		snap_cur_fail(c, "queue %u: size %u with rings at 0x%llx/0x%llx/0x%llx %s", vq->index, size,
			      (unsigned long long)desc, (unsigned long long)avail, (unsigned long long)used,
			      r == -EFAULT ? "outside guest memory" : "misaligned or badly sized");
		return -EINVAL;
	}
	/* Chains taken and not yet returned: at most a queue's worth. */
	if ((uint16_t)(last_avail - used_idx) > size) {
		snap_cur_fail(c, "queue %u: %u chains taken but only %u returned, more than its %u entries",
			      vq->index, last_avail, used_idx, size);
		virtq_disable(vq);
		return -EINVAL;
	}
	pthread_mutex_lock(&vq->lock);
	vq->last_avail_idx = last_avail;
	vq->used_idx = used_idx;
	vq->signalled_used = signalled;
	vq->signalled_valid = signalled_valid;
	pthread_mutex_unlock(&vq->lock);
	return 0;
}

void virtq_unpop(struct virtqueue *vq, const struct virtq_elem *e)
{
	pthread_mutex_lock(&vq->lock);
	if (vq->ready && e->gen == vq->gen)
		vq->last_avail_idx--;
	pthread_mutex_unlock(&vq->lock);
}

void virtio_dev_hold(struct virtio_dev *dev)
{
	if (dev->worker)
		virtio_worker_hold(dev->worker);
	if (dev->ops->hold)
		dev->ops->hold(dev);
}

void virtio_dev_release(struct virtio_dev *dev)
{
	if (dev->ops->release)
		dev->ops->release(dev);
	if (dev->worker)
		virtio_worker_release(dev->worker);
}

void virtio_dev_save(struct virtio_dev *dev, struct snap_buf *b)
{
	snap_put_u32(b, dev->ops->device_id);
	snap_put_u32(b, dev->ops->nqueues);
	snap_put_u64(b, dev->features);
	snap_put_u32(b, atomic_load(&dev->config_gen));
	pthread_mutex_lock(&dev->log_lock);
	snap_put_u8(b, virtio_dev_is_broken(dev));
	snap_put_str(b, dev->broken_why);
	pthread_mutex_unlock(&dev->log_lock);
	for (unsigned int i = 0; i < dev->ops->nqueues; i++)
		virtq_save(&dev->vqs[i], b);
	if (dev->ops->save)
		dev->ops->save(dev, b);
}

int virtio_dev_load(struct virtio_dev *dev, struct snap_cur *c)
{
	uint32_t id = snap_get_u32(c), nq = snap_get_u32(c);
	uint64_t features = snap_get_u64(c);
	uint32_t gen = snap_get_u32(c);
	bool broken = snap_get_bool(c);
	char why[sizeof(dev->broken_why)];

	snap_get_str(c, why, sizeof(why));
	if (c->bad)
		return -EINVAL;
	if (id != dev->ops->device_id || nq != dev->ops->nqueues) {
		snap_cur_fail(c, "a virtio device of type %u with %u queues where this machine has type %u "
			      "with %u", id, nq, dev->ops->device_id, dev->ops->nqueues);
		return -EINVAL;
	}
	if (features & ~dev->host_features) {
		snap_cur_fail(c, "features 0x%llx that this device does not offer",
			      (unsigned long long)features);
		return -EINVAL;
	}
	dev->features = features;
	atomic_store(&dev->config_gen, gen);
	pthread_mutex_lock(&dev->log_lock);
	snprintf(dev->broken_why, sizeof(dev->broken_why), "%s", why);
	atomic_store(&dev->broken, broken);
	pthread_mutex_unlock(&dev->log_lock);
	for (unsigned int i = 0; i < nq; i++)
		if (virtq_load(&dev->vqs[i], c) < 0)
			return -EINVAL;
	if (dev->ops->load && dev->ops->load(dev, c) < 0) {
		snap_cur_fail(c, "%s: its own state does not load", dev->name);
		return -EINVAL;
	}
	return c->bad ? -EINVAL : 0;
}

void virtio_dev_kick_all(struct virtio_dev *dev)
{
	for (unsigned int i = 0; i < dev->ops->nqueues; i++)
		if (dev->vqs[i].ready && !virtio_dev_is_broken(dev))
			virtio_dev_notify(dev, i);
}

int virtq_elem_init(struct virtq_elem *e, unsigned int cap)
{
	memset(e, 0, sizeof(*e));
	if (!cap)
		return -EINVAL;
	e->iov = calloc(cap, sizeof(*e->iov));
	if (!e->iov)
		return -ENOMEM;
	e->cap = cap;
	return 0;
}

void virtq_elem_free(struct virtq_elem *e)
{
	free(e->iov);
	memset(e, 0, sizeof(*e));
}

/* Ring fields shared with the guest: single aligned accesses, never torn or
 * fetched twice, with the ordering the protocol needs made explicit. */
static uint16_t *virtq_used_event(const struct virtqueue *vq)
{
	return &vq->avail->ring[vq->size];
}

static uint16_t *virtq_avail_event(const struct virtqueue *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

/* One descriptor copied out of a table, so the guest cannot change it while
 * it is checked and used. */
static void virtq_read_desc(const uint8_t *table, uint32_t i, struct virtq_desc *d)
{
	memcpy(d, table + (size_t)i * VIRTQ_DESC_SIZE, sizeof(*d));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* Walks the chain at head into e; the caller holds vq->lock.
 * A chain has at most the queue size's descriptors, counting those of an
 * indirect table and the empty ones, and a table has no more entries than
 * that (virtio 1.2, 2.7.5.3.1): whatever the guest writes, a walk reads at
 * most size + 1 descriptors, however large guest RAM is. */
static int virtq_walk(struct virtqueue *vq, uint16_t head, struct virtq_elem *e)
{
	struct virtio_dev *dev = vq->dev;
	const uint8_t *table = vq->desc;
	uint32_t table_n = vq->size;      /* entries the current table has */
	uint32_t visited = 0;             /* descriptors of the chain so far */
	uint32_t i = head;
	bool indirect = false, seen_write = false;
	const char *where = "";

	e->nout = e->nin = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		struct virtq_desc d;
		void *p;

		if (++visited > vq->size) {
			virtio_dev_fail(dev, "queue %u: chain at head %u is longer than the queue's "
					"%u descriptors%s (a loop?)", vq->index, head, vq->size,
					indirect ? " with its indirect table" : "");
			return -EIO;
		}
		virtq_read_desc(table, i, &d);

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect) {
				virtio_dev_fail(dev, "queue %u: descriptor %u is indirect but "
						"VIRTIO_F_RING_INDIRECT_DESC was not negotiated",
						vq->index, i);
				return -EIO;
			}
			if (indirect) {
				virtio_dev_fail(dev, "queue %u: indirect table at head %u holds "
						"another indirect descriptor (%u)", vq->index, head, i);
				return -EIO;
			}
			if (d.flags & VIRTQ_DESC_F_NEXT) {
				virtio_dev_fail(dev, "queue %u: indirect descriptor %u also has NEXT",
						vq->index, i);
				return -EIO;
			}
			if (!d.len || d.len % VIRTQ_DESC_SIZE) {
				virtio_dev_fail(dev, "queue %u: indirect table of %u bytes at head %u "
						"is not a non-zero multiple of 16", vq->index, d.len, head);
				return -EIO;
			}
			/* Checked before the table is looked at: a guest can describe
			 * one that spans all its RAM. */
			if (d.len / VIRTQ_DESC_SIZE > vq->size) {
				virtio_dev_fail(dev, "queue %u: indirect table of %u entries at head %u "
						"is larger than the queue's %u", vq->index,
						d.len / VIRTQ_DESC_SIZE, head, vq->size);
				return -EIO;
			}
			table = guestmem_ptr(dev->mem, d.addr, d.len);
			if (!table) {
				virtio_dev_fail(dev, "queue %u: indirect table 0x%llx+%u at head %u is "
						"outside guest memory", vq->index,
						(unsigned long long)d.addr, d.len, head);
				return -EIO;
			}
			table_n = d.len / VIRTQ_DESC_SIZE;
			/* The table's entries are the chain's; the descriptor naming
			 * it is not a buffer and is not counted. */
			visited--;
			indirect = true;
			where = "indirect ";
			i = 0;
			continue;
		}

		if (d.flags & VIRTQ_DESC_F_WRITE) {
			seen_write = true;
		} else if (seen_write) {
			virtio_dev_fail(dev, "queue %u: readable %sdescriptor %u follows a writable "
					"one in the chain at head %u", vq->index, where, i, head);
			return -EIO;
		}
		if (d.len) {
			p = guestmem_ptr(dev->mem, d.addr, d.len);
			if (!p) {
				virtio_dev_fail(dev, "queue %u: %sdescriptor %u buffer 0x%llx+%u is "
						"outside guest memory", vq->index, where, i,
						(unsigned long long)d.addr, d.len);
				return -EIO;
			}
			if (e->nout + e->nin >= e->cap) {
				virtio_dev_fail(dev, "queue %u: chain at head %u has more than %u "
						"buffers", vq->index, head, e->cap);
				return -EIO;
			}
			e->iov[e->nout + e->nin] = (struct iovec){ p, d.len };
			if (d.flags & VIRTQ_DESC_F_WRITE) {
				e->nin++;
				e->in_len += d.len;
			} else {
				e->nout++;
				e->out_len += d.len;
			}
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= table_n) {
			virtio_dev_fail(dev, "queue %u: %sdescriptor %u links to %u, beyond the "
					"%u entries of its table", vq->index, where, i, d.next, table_n);
			return -EIO;
		}
		i = d.next;
	}
	return 0;
}

static int virtq_pop_locked(struct virtqueue *vq, struct virtq_elem *e)
{
	struct virtio_dev *dev = vq->dev;
	uint16_t avail_idx, pending, head;
	int r;

	if (virtio_dev_is_broken(dev))
		return -EIO;
	if (!vq->ready)
		return -EAGAIN;
	/* Acquire: the ring entries and descriptors behind idx are visible. */
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail_idx) {
		if (!vq->event_idx)
			return -EAGAIN;
		/* Ask for a kick at the next entry, then look again: a driver that
		 * added one before it could see avail_event would not kick. */
		__atomic_store_n(virtq_avail_event(vq), vq->last_avail_idx, __ATOMIC_RELAXED);
		guestmem_mark(dev->mem, virtq_avail_event(vq), sizeof(uint16_t));
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
		if (avail_idx == vq->last_avail_idx)
			return -EAGAIN;
	}
	pending = (uint16_t)(avail_idx - vq->last_avail_idx);
	if (pending > vq->size) {
		virtio_dev_fail(dev, "queue %u: avail idx %u is %u entries past %u, more than "
				"the queue's %u", vq->index, avail_idx, pending,
				vq->last_avail_idx, vq->size);
		return -EIO;
	}
	head = __atomic_load_n(&vq->avail->ring[vq->last_avail_idx & (vq->size - 1)],
			       __ATOMIC_RELAXED);
	if (head >= vq->size) {
		virtio_dev_fail(dev, "queue %u: avail entry %u names descriptor %u of %u",
				vq->index, vq->last_avail_idx, head, vq->size);
		return -EIO;
	}
	r = virtq_walk(vq, head, e);
	if (r < 0)
		return r;
	vq->last_avail_idx++;
	/* While the device is busy the driver need not kick for what it adds. */
	if (vq->event_idx)
		__atomic_store_n(virtq_avail_event(vq), vq->last_avail_idx, __ATOMIC_RELAXED);
	e->head = head;
	e->gen = vq->gen;
	return 0;
}

int virtq_pop(struct virtqueue *vq, struct virtq_elem *e)
{
	int r;

	pthread_mutex_lock(&vq->lock);
	r = virtq_pop_locked(vq, e);
	pthread_mutex_unlock(&vq->lock);
	return r;
}

void virtq_push(struct virtqueue *vq, const struct virtq_elem *e, uint32_t len)
{
	virtq_push_n(vq, e, &len, 1);
}

void virtq_push_n(struct virtqueue *vq, const struct virtq_elem *e, const uint32_t *len, unsigned int n)
{
	pthread_mutex_lock(&vq->lock);
	if (!vq->ready) {
		pthread_mutex_unlock(&vq->lock);
		return;
	}
	for (unsigned int k = 0; k < n; k++) {
		struct virtq_used_elem *u;

		if (e[k].gen != vq->gen || e[k].head >= vq->size)
			continue;
		u = &vq->used->ring[vq->used_idx & (vq->size - 1)];
		__atomic_store_n(&u->id, e[k].head, __ATOMIC_RELAXED);
		__atomic_store_n(&u->len, len[k], __ATOMIC_RELAXED);
		vq->used_idx++;
		/* A migration must carry what the device wrote: the buffers and
		 * the used ring. */
		for (unsigned int i = e[k].nout; len[k] && i < e[k].nout + e[k].nin; i++)
			guestmem_mark(vq->dev->mem, e[k].iov[i].iov_base, e[k].iov[i].iov_len);
	}
	/* Release: the elements and the data written into the buffers are
	 * visible before the index that publishes them. */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	guestmem_mark(vq->dev->mem, vq->used, VIRTQ_USED_BYTES(vq->size));
	pthread_mutex_unlock(&vq->lock);
}

bool virtq_should_notify(struct virtqueue *vq)
{
	bool need;

	pthread_mutex_lock(&vq->lock);
	if (!vq->ready) {
		pthread_mutex_unlock(&vq->lock);
		return false;
	}
	/* The used idx store must be visible before the driver's wishes are read,
	 * or both sides can decide the other will act. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		uint16_t event = __atomic_load_n(virtq_used_event(vq), __ATOMIC_RELAXED);
		uint16_t new = vq->used_idx, old = vq->signalled_used;

		/* Interrupt if used_event lies in [old, new): the driver asked to
		 * hear about one of the entries just added. */
		need = !vq->signalled_valid || (uint16_t)(new - event - 1) < (uint16_t)(new - old);
		vq->signalled_used = new;
		vq->signalled_valid = true;
	} else {
		need = !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) &
			 VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	pthread_mutex_unlock(&vq->lock);
	return need;
}

void virtq_signal(struct virtqueue *vq)
{
	struct virtio_dev *dev = vq->dev;

	if (virtq_should_notify(vq) && dev->transport.interrupt)
		dev->transport.interrupt(dev->transport.opaque, VIRTIO_ISR_QUEUE);
}

/* Copies bytes [off, off+len) of the buffers iov[0..n) out of them or into them. */
static size_t iov_copy(const struct iovec *iov, unsigned int n, uint64_t off,
		       uint8_t *buf, size_t len, bool to_iov)
{
	size_t done = 0;

	for (unsigned int i = 0; i < n && done < len; i++) {
		size_t chunk;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		chunk = MIN(iov[i].iov_len - off, len - done);
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + off, buf + done, chunk);
		else
			memcpy(buf + done, (const uint8_t *)iov[i].iov_base + off, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

size_t virtq_elem_read(const struct virtq_elem *e, uint64_t off, void *dst, size_t len)
{
	return iov_copy(e->iov, e->nout, off, dst, len, false);
}

size_t virtq_elem_write(const struct virtq_elem *e, uint64_t off, const void *src, size_t len)
{
	return iov_copy(e->iov + e->nout, e->nin, off, (uint8_t *)(uintptr_t)src, len, true);
}

static int iov_slice(const struct iovec *iov, unsigned int n, uint64_t total, uint64_t off,
		     uint64_t len, struct iovec *out, unsigned int cap)
{
	unsigned int k = 0;

	if (off > total || len > total - off)
		return -ERANGE;
	for (unsigned int i = 0; i < n && len; i++) {
		uint64_t chunk;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		if (k == cap)
			return -ERANGE;
		chunk = MIN(iov[i].iov_len - off, len);
		out[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + off, chunk };
		len -= chunk;
		off = 0;
	}
	return (int)k;
}

int virtq_elem_in_slice(const struct virtq_elem *e, uint64_t off, uint64_t len,
			struct iovec *out, unsigned int cap)
{
	return iov_slice(e->iov + e->nout, e->nin, e->in_len, off, len, out, cap);
}

int virtq_elem_out_slice(const struct virtq_elem *e, uint64_t off, uint64_t len,
			 struct iovec *out, unsigned int cap)
{
	return iov_slice(e->iov, e->nout, e->out_len, off, len, out, cap);
}

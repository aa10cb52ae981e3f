/* The virtio-mmio transport, version 2 (virtio 1.2, 4.2.2): a 4 KiB register
 * window on the MMIO bus in front of one virtio device, and a level-triggered
 * interrupt line that stays up while InterruptStatus is non-zero. */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
	MMIO_MAGIC = 0x000, MMIO_VERSION = 0x004, MMIO_DEVICE_ID = 0x008, MMIO_VENDOR_ID = 0x00c,
	MMIO_DEVICE_FEATURES = 0x010, MMIO_DEVICE_FEATURES_SEL = 0x014,
	MMIO_DRIVER_FEATURES = 0x020, MMIO_DRIVER_FEATURES_SEL = 0x024,
	MMIO_QUEUE_SEL = 0x030, MMIO_QUEUE_NUM_MAX = 0x034, MMIO_QUEUE_NUM = 0x038,
	MMIO_QUEUE_READY = 0x044, MMIO_QUEUE_NOTIFY = 0x050,
	MMIO_INTERRUPT_STATUS = 0x060, MMIO_INTERRUPT_ACK = 0x064, MMIO_STATUS = 0x070,
	MMIO_QUEUE_DESC_LOW = 0x080, MMIO_QUEUE_DESC_HIGH = 0x084,
	MMIO_QUEUE_DRIVER_LOW = 0x090, MMIO_QUEUE_DRIVER_HIGH = 0x094,
	MMIO_QUEUE_DEVICE_LOW = 0x0a0, MMIO_QUEUE_DEVICE_HIGH = 0x0a4,
	MMIO_SHM_SEL = 0x0ac, MMIO_SHM_LEN_LOW = 0x0b0, MMIO_SHM_LEN_HIGH = 0x0b4,
	MMIO_SHM_BASE_LOW = 0x0b8, MMIO_SHM_BASE_HIGH = 0x0bc,
	MMIO_CONFIG_GENERATION = 0x0fc, MMIO_CONFIG = 0x100,
};

/* What the driver wrote for a queue before it set QueueReady. */
struct mmio_queue {
	uint16_t num;
	uint64_t desc, avail, used;
};

struct virtio_mmio {
	pthread_mutex_t lock;           /* the registers, against other vCPUs */
	pthread_mutex_t irq_lock;       /* the line's level, against device threads */
	struct irq_line irq;
	int irq_level;
	struct virtio_dev *dev;
	_Atomic uint32_t isr;
	uint32_t status;
	uint32_t dev_features_sel, drv_features_sel, queue_sel;
	uint64_t drv_features;
	struct mmio_queue *q;
};

/* Sets the line from InterruptStatus; every change of it ends here. */
static void mmio_update_irq(struct virtio_mmio *m)
{
	int level;

	pthread_mutex_lock(&m->irq_lock);
	level = atomic_load(&m->isr) != 0;
	if (level != m->irq_level) {
		m->irq_level = level;
		(void)irq_line_set(&m->irq, level);
	}
	pthread_mutex_unlock(&m->irq_lock);
}

/* Called by the device, from any thread, without the register lock. */
static void mmio_interrupt(void *opaque, uint32_t bits)
{
	struct virtio_mmio *m = opaque;

	atomic_fetch_or(&m->isr, bits);
	mmio_update_irq(m);
}

static void mmio_reset(struct virtio_mmio *m)
{
	struct virtio_dev *dev = m->dev;

	virtio_dev_reset(dev);
	m->status = 0;
	m->dev_features_sel = m->drv_features_sel = m->queue_sel = 0;
	m->drv_features = 0;
	for (unsigned int i = 0; i < dev->ops->nqueues; i++)
		m->q[i] = (struct mmio_queue){ .num = dev->queue_max };
	atomic_store(&m->isr, 0);
	mmio_update_irq(m);
}

int virtio_mmio_create(struct virtio_mmio **out, const struct guestmem *mem,
		       struct irq_line irq, struct virtio_dev *dev)
{
	struct virtio_mmio *m;
	int r = -ENOMEM;

	*out = NULL;
	if (!mem || !dev || !dev->ops || !dev->vqs)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->q = calloc(dev->ops->nqueues, sizeof(*m->q));
	if (!m->q)
		goto err_free;
	if (pthread_mutex_init(&m->lock, NULL))
		goto err_free_q;
	if (pthread_mutex_init(&m->irq_lock, NULL))
		goto err_lock;
	m->irq = irq;
	m->dev = dev;
	for (unsigned int i = 0; i < dev->ops->nqueues; i++)
		m->q[i].num = dev->queue_max;
	dev->mem = mem;
	dev->transport = (struct virtio_transport){ mmio_interrupt, m };
	*out = m;
	return 0;

err_lock:
	pthread_mutex_destroy(&m->lock);
err_free_q:
	free(m->q);
err_free:
	free(m);
	return r;
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
	if (!m)
		return;
	/* A reset waits for the device to let go of its queues, so nothing
	 * calls back into this transport once it is gone. */
	pthread_mutex_lock(&m->lock);
	virtio_dev_reset(m->dev);
	m->dev->transport = (struct virtio_transport){ NULL, NULL };
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_destroy(&m->irq_lock);
	pthread_mutex_destroy(&m->lock);
	free(m->q);
	free(m);
}

struct virtio_dev *virtio_mmio_dev(struct virtio_mmio *m)
{
	return m->dev;
}

void virtio_mmio_save(struct virtio_mmio *m, struct snap_buf *b)
{
	struct virtio_dev *dev = m->dev;

	pthread_mutex_lock(&m->lock);
	snap_put_u32(b, m->status);
	snap_put_u32(b, m->dev_features_sel);
	snap_put_u32(b, m->drv_features_sel);
	snap_put_u32(b, m->queue_sel);
	snap_put_u64(b, m->drv_features);
	snap_put_u32(b, atomic_load(&m->isr));
	for (unsigned int i = 0; i < dev->ops->nqueues; i++) {
		snap_put_u16(b, m->q[i].num);
		snap_put_u64(b, m->q[i].desc);
		snap_put_u64(b, m->q[i].avail);
		snap_put_u64(b, m->q[i].used);
	}
	virtio_dev_save(dev, b);
	pthread_mutex_unlock(&m->lock);
}

int virtio_mmio_load(struct virtio_mmio *m, struct snap_cur *c)
{
	struct virtio_dev *dev = m->dev;
	int r = -EINVAL;

	pthread_mutex_lock(&m->lock);
	m->status = snap_get_u32(c);
	m->dev_features_sel = snap_get_u32(c);
	m->drv_features_sel = snap_get_u32(c);
	m->queue_sel = snap_get_u32(c);
	m->drv_features = snap_get_u64(c);
	atomic_store(&m->isr, snap_get_u32(c) & (VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG));
	for (unsigned int i = 0; i < dev->ops->nqueues; i++) {
		m->q[i].num = snap_get_u16(c);
		m->q[i].desc = snap_get_u64(c);
		m->q[i].avail = snap_get_u64(c);
		m->q[i].used = snap_get_u64(c);
		if (!c->bad && (!m->q[i].num || (m->q[i].num & (m->q[i].num - 1)) || m->q[i].num > dev->queue_max))
			snap_cur_fail(c, "queue %u of %u entries, not a power of two up to %u", i, m->q[i].num,
				      dev->queue_max);
	}
	if (!c->bad && (m->status & ~0xffu))
		snap_cur_fail(c, "device status 0x%x", m->status);
	if (!c->bad)
		r = virtio_dev_load(dev, c);
	/* The line as InterruptStatus says, driven anew into the restored irqchip. */
	m->irq_level = 0;
	pthread_mutex_unlock(&m->lock);
	if (r == 0)
		mmio_update_irq(m);
	return r;
}

static struct mmio_queue *mmio_sel_queue(struct virtio_mmio *m)
{
	return m->queue_sel < m->dev->ops->nqueues ? &m->q[m->queue_sel] : NULL;
}

static uint32_t mmio_read_reg(struct virtio_mmio *m, uint64_t off)
{
	struct virtio_dev *dev = m->dev;

	switch (off) {
	case MMIO_MAGIC:
		return VIRTIO_MMIO_MAGIC;
	case MMIO_VERSION:
		return 2;
	case MMIO_DEVICE_ID:
		return dev->ops->device_id;
	case MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case MMIO_DEVICE_FEATURES:
		return m->dev_features_sel < 2 ?
		       (uint32_t)(dev->host_features >> (32 * m->dev_features_sel)) : 0;
	case MMIO_QUEUE_NUM_MAX:
		return mmio_sel_queue(m) ? dev->queue_max : 0;
	case MMIO_QUEUE_READY:
		return mmio_sel_queue(m) ? dev->vqs[m->queue_sel].ready : 0;
	case MMIO_INTERRUPT_STATUS:
		return atomic_load(&m->isr);
	case MMIO_STATUS:
		return m->status | (virtio_dev_is_broken(dev) && m->status ?
				    VIRTIO_STATUS_DEVICE_NEEDS_RESET : 0);
	case MMIO_SHM_LEN_LOW: case MMIO_SHM_LEN_HIGH:
	case MMIO_SHM_BASE_LOW: case MMIO_SHM_BASE_HIGH:
		return 0xffffffffu;     /* no shared-memory regions */
	case MMIO_CONFIG_GENERATION:
		return atomic_load(&dev->config_gen);
	}
	return 0;                       /* write-only or unassigned */
}

static void mmio_write_status(struct virtio_mmio *m, uint32_t v)
{
	struct virtio_dev *dev = m->dev;
	uint32_t added;

	if (v == 0) {
		mmio_reset(m);
		return;
	}
	v &= 0xff & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (m->status & ~v) {
		virtio_dev_warn(dev, "driver cleared status bits (0x%x to 0x%x) without a reset; "
				"ignored", m->status, v);
		return;
	}
	added = v & ~m->status;
	if (added & VIRTIO_STATUS_FEATURES_OK) {
		uint64_t extra = m->drv_features & ~dev->host_features;

		if (extra || !(m->drv_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
			virtio_dev_warn(dev, "driver features 0x%llx refused (%s); FEATURES_OK "
					"stays clear", (unsigned long long)m->drv_features,
					extra ? "not offered" : "no VIRTIO_F_VERSION_1");
			v &= ~VIRTIO_STATUS_FEATURES_OK;
		} else {
			dev->features = m->drv_features;
		}
	}
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK))
		v &= ~VIRTIO_STATUS_DRIVER_OK;
	m->status = v;
}

static void mmio_write_queue_ready(struct virtio_mmio *m, uint32_t v)
{
	struct mmio_queue *q = mmio_sel_queue(m);
	struct virtqueue *vq;
	int r;

	if (!q)
		return;
	vq = &m->dev->vqs[m->queue_sel];
	if (!v) {
		virtq_disable(vq);
		return;
	}
	if (vq->ready)
		return;
	r = virtq_setup(vq, q->num, q->desc, q->avail, q->used);
	if (r < 0)
		virtio_dev_warn(m->dev, "queue %u refused: size %u, rings at 0x%llx/0x%llx/0x%llx "
				"are %s", m->queue_sel, q->num, (unsigned long long)q->desc,
				(unsigned long long)q->avail, (unsigned long long)q->used,
				r == -EFAULT ? "outside guest memory" : "misaligned or badly sized");
}

static void mmio_write_queue_addr(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct mmio_queue *q = mmio_sel_queue(m);
	uint64_t *field;
	unsigned int shift;

	if (!q)
		return;
	if (m->dev->vqs[m->queue_sel].ready) {
		virtio_dev_warn(m->dev, "queue %u: ring address written while the queue is "
				"ready; ignored", m->queue_sel);
		return;
	}
	switch (off & ~7ULL) {
	case MMIO_QUEUE_DESC_LOW: field = &q->desc; break;
	case MMIO_QUEUE_DRIVER_LOW: field = &q->avail; break;
	default: field = &q->used; break;
	}
	shift = (off & 4) ? 32 : 0;
	*field = (*field & ~(0xffffffffULL << shift)) | ((uint64_t)v << shift);
}

static void mmio_write_reg(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct virtio_dev *dev = m->dev;
	struct mmio_queue *q;

	switch (off) {
	case MMIO_DEVICE_FEATURES_SEL:
		m->dev_features_sel = v;
		break;
	case MMIO_DRIVER_FEATURES:
		/* Features are fixed once FEATURES_OK is set (3.1.1). */
		if ((m->status & VIRTIO_STATUS_FEATURES_OK) || m->drv_features_sel >= 2)
			break;
		m->drv_features &= ~(0xffffffffULL << (32 * m->drv_features_sel));
		m->drv_features |= (uint64_t)v << (32 * m->drv_features_sel);
		break;
	case MMIO_DRIVER_FEATURES_SEL:
		m->drv_features_sel = v;
		break;
	case MMIO_QUEUE_SEL:
		m->queue_sel = v;
		break;
	case MMIO_QUEUE_NUM:
		q = mmio_sel_queue(m);
		if (!q || dev->vqs[m->queue_sel].ready)
			break;
		if (!v || (v & (v - 1)) || v > dev->queue_max) {
			virtio_dev_warn(dev, "queue %u: size %u refused (a power of two up to %u)",
					m->queue_sel, v, dev->queue_max);
			break;
		}
		q->num = (uint16_t)v;
		break;
	case MMIO_QUEUE_READY:
		mmio_write_queue_ready(m, v);
		break;
	case MMIO_QUEUE_NOTIFY:
		if (v < dev->ops->nqueues && (m->status & VIRTIO_STATUS_DRIVER_OK) &&
		    dev->vqs[v].ready && !virtio_dev_is_broken(dev))
			virtio_dev_notify(dev, v);
		break;
	case MMIO_INTERRUPT_ACK:
		atomic_fetch_and(&m->isr, ~v);
		mmio_update_irq(m);
		break;
	case MMIO_STATUS:
		mmio_write_status(m, v);
		break;
	case MMIO_QUEUE_DESC_LOW: case MMIO_QUEUE_DESC_HIGH:
	case MMIO_QUEUE_DRIVER_LOW: case MMIO_QUEUE_DRIVER_HIGH:
	case MMIO_QUEUE_DEVICE_LOW: case MMIO_QUEUE_DEVICE_HIGH:
		mmio_write_queue_addr(m, off, v);
		break;
	case MMIO_SHM_SEL:
		break;
	default:
		break;                  /* read-only or unassigned */
	}
}

void virtio_mmio_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct virtio_mmio *m = opaque;
	struct virtio_dev *dev = m->dev;

	pthread_mutex_lock(&m->lock);
	if (offset >= MMIO_CONFIG) {
		uint64_t coff = offset - MMIO_CONFIG;
		bool ok = (len == 1 || len == 2 || len == 4 || len == 8) &&
			  coff <= dev->config_size && len <= dev->config_size - coff;

		if (!ok) {
			if (!is_write)
				memset(data, 0, len);
		} else if (is_write) {
			if (dev->ops->config_write)
				dev->ops->config_write(dev, (uint32_t)coff, data, len);
		} else if (dev->ops->config_read) {
			dev->ops->config_read(dev, (uint32_t)coff, data, len);
		} else {
			memset(data, 0, len);
		}
	} else if (len != 4 || (offset & 3)) {
		/* 4.2.2.2: registers are 32 bits wide and accessed as such. */
		virtio_dev_warn(dev, "%u-byte %s at register 0x%03llx refused (32-bit only)",
				len, is_write ? "write" : "read", (unsigned long long)offset);
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		uint32_t v;

		memcpy(&v, data, 4);
		mmio_write_reg(m, offset, v);
	} else {
		uint32_t v = mmio_read_reg(m, offset);

		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&m->lock);
}

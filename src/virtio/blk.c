/* virtio-blk (virtio 1.2, 5.2) on a raw image file. Requests are served by
 * one worker thread per device: the guest's kick only wakes it, so a vCPU
 * never waits for the disk. Also creates the raw image files it serves. */
#include "virtio/virtio.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK_SECTOR              512u

#define BLK_F_SEG_MAX           2
#define BLK_F_RO                5
#define BLK_F_BLK_SIZE          6
#define BLK_F_FLUSH             9
#define BLK_F_DISCARD           13
#define BLK_F_WRITE_ZEROES      14

#define BLK_T_IN                0
#define BLK_T_OUT               1
#define BLK_T_FLUSH             4
#define BLK_T_GET_ID            8
#define BLK_T_DISCARD           11
#define BLK_T_WRITE_ZEROES      13

#define BLK_S_OK                0
#define BLK_S_IOERR             1
#define BLK_S_UNSUPP            2

#define BLK_ID_BYTES            20
#define BLK_WZ_F_UNMAP          1u

/* struct virtio_blk_config up to write_zeroes_may_unmap and its padding. */
#define BLK_CFG_CAPACITY        0
#define BLK_CFG_SEG_MAX         12
#define BLK_CFG_BLK_SIZE        20
#define BLK_CFG_NUM_QUEUES      34
#define BLK_CFG_MAX_DISCARD_SECTORS 36
#define BLK_CFG_MAX_DISCARD_SEG 40
#define BLK_CFG_DISCARD_ALIGN   44
#define BLK_CFG_MAX_WZ_SECTORS  48
#define BLK_CFG_MAX_WZ_SEG      52
#define BLK_CFG_WZ_MAY_UNMAP    56
#define BLK_CONFIG_SIZE         60

#define BLK_DEFAULT_QUEUE       256
#define BLK_MAX_QUEUE           1024    /* IOV_MAX: one preadv per request */
#define BLK_MAX_RANGE_SEGS      32
#define BLK_MAX_RANGE_SECTORS   (1u << 23)      /* 4 GiB per segment */
#define BLK_BATCH               16      /* requests between interrupts */

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct virtio_blk {
	struct virtio_dev vdev;         /* first: the ops get this pointer */
	int fd;
	bool read_only, can_punch, can_zero;
	uint64_t capacity;              /* sectors */
	uint8_t serial[BLK_ID_BYTES];
	uint8_t config[BLK_CONFIG_SIZE];
	struct virtq_elem elem;
	struct iovec *scratch;
	unsigned int scratch_cap;
	struct virtio_worker worker;
	/* While a migration runs: a bit per VIRTIO_BLK_CHUNK the guest wrote. */
	_Atomic uint64_t *dirty;
	uint64_t chunks;
};

static struct virtio_blk *to_blk(struct virtio_dev *dev)
{
	return (struct virtio_blk *)dev;
}

static void put_le16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put_le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_le64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Moves every byte of iov[0..n) between the image at off and guest memory. */
static int blk_io(int fd, struct iovec *iov, int n, uint64_t off, bool write)
{
	while (n > 0) {
		int batch = MIN(n, IOV_MAX);
		ssize_t r = write ? pwritev(fd, iov, batch, (off_t)off)
				  : preadv(fd, iov, batch, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;    /* the image shrank under us */
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0 && r > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* The worker's own: marks the chunks of [off, off + len) written. */
static void blk_mark(struct virtio_blk *b, uint64_t off, uint64_t len)
{
	if (!b->dirty || !len)
		return;
	for (uint64_t c = off / VIRTIO_BLK_CHUNK; c <= (off + len - 1) / VIRTIO_BLK_CHUNK && c < b->chunks; c++)
		atomic_fetch_or_explicit(&b->dirty[c / 64], 1ULL << (c % 64), memory_order_relaxed);
}

static bool blk_range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t nsectors)
{
	return sector <= b->capacity && nsectors <= b->capacity - sector;
}

static uint8_t blk_rw(struct virtio_blk *b, const struct virtq_elem *e,
		      const struct blk_req_hdr *h, bool write, uint32_t *written)
{
	uint64_t len = write ? e->out_len - sizeof(*h) : e->in_len - 1;
	int n;

	if (len % BLK_SECTOR || !blk_range_ok(b, h->sector, len / BLK_SECTOR))
		return BLK_S_IOERR;
	if (write && b->read_only)
		return BLK_S_IOERR;
	if (!len)
		return BLK_S_OK;
	n = write ? virtq_elem_out_slice(e, sizeof(*h), len, b->scratch, b->scratch_cap)
		  : virtq_elem_in_slice(e, 0, len, b->scratch, b->scratch_cap);
	if (write)
		blk_mark(b, h->sector * BLK_SECTOR, len);
	if (n < 0 || blk_io(b->fd, b->scratch, n, h->sector * BLK_SECTOR, write) < 0)
		return BLK_S_IOERR;
	if (!write)
		*written = (uint32_t)len;
	return BLK_S_OK;
}

/* DISCARD and WRITE_ZEROES: a list of ranges after the header. */
static uint8_t blk_ranges(struct virtio_blk *b, const struct virtq_elem *e, uint32_t type)
{
	bool discard = type == BLK_T_DISCARD;
	uint64_t bytes = e->out_len - sizeof(struct blk_req_hdr);
	uint64_t nseg = bytes / sizeof(struct blk_range);

	if (discard ? !b->can_punch : !(b->can_punch || b->can_zero))
		return BLK_S_UNSUPP;
	if (b->read_only)
		return BLK_S_IOERR;
	if (!nseg || bytes % sizeof(struct blk_range) || nseg > BLK_MAX_RANGE_SEGS)
		return BLK_S_IOERR;
	for (uint64_t i = 0; i < nseg; i++) {
		struct blk_range rg;
		int mode;

		if (virtq_elem_read(e, sizeof(struct blk_req_hdr) + i * sizeof(rg), &rg,
				    sizeof(rg)) != sizeof(rg))
			return BLK_S_IOERR;
		/* 5.2.6.2: unmap in a discard, or any unknown flag, is unsupported. */
		if (rg.flags & ~(discard ? 0u : BLK_WZ_F_UNMAP))
			return BLK_S_UNSUPP;
		if (rg.num_sectors > BLK_MAX_RANGE_SECTORS ||
		    !blk_range_ok(b, rg.sector, rg.num_sectors))
			return BLK_S_IOERR;
		if (!rg.num_sectors)
			continue;
		blk_mark(b, rg.sector * BLK_SECTOR, rg.num_sectors * BLK_SECTOR);
		/* A punched hole reads back as zeroes, so it serves both. */
		if (discard || ((rg.flags & BLK_WZ_F_UNMAP) && b->can_punch) || !b->can_zero)
			mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		else
			mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		if (fallocate(b->fd, mode, (off_t)(rg.sector * BLK_SECTOR),
			      (off_t)rg.num_sectors * BLK_SECTOR) < 0)
			return BLK_S_IOERR;
	}
	return BLK_S_OK;
}

static void blk_handle(struct virtio_blk *b, struct virtqueue *vq, const struct virtq_elem *e)
{
	struct blk_req_hdr h;
	uint32_t written = 0;
	uint8_t status;

	if (!e->in_len) {
		virtio_dev_warn(&b->vdev, "request %u has no writable status byte; returned "
				"unanswered", e->head);
		virtq_push(vq, e, 0);
		return;
	}
	if (virtq_elem_read(e, 0, &h, sizeof(h)) != sizeof(h)) {
		status = BLK_S_IOERR;
	} else {
		switch (h.type) {
		case BLK_T_IN:
			status = blk_rw(b, e, &h, false, &written);
			break;
		case BLK_T_OUT:
			status = blk_rw(b, e, &h, true, &written);
			break;
		case BLK_T_FLUSH:
			status = (b->read_only || fdatasync(b->fd) == 0) ? BLK_S_OK : BLK_S_IOERR;
			break;
		case BLK_T_GET_ID:
			written = (uint32_t)virtq_elem_write(e, 0, b->serial,
							     MIN(e->in_len - 1, BLK_ID_BYTES));
			status = BLK_S_OK;
			break;
		case BLK_T_DISCARD:
		case BLK_T_WRITE_ZEROES:
			status = blk_ranges(b, e, h.type);
			break;
		default:
			status = BLK_S_UNSUPP;
			break;
		}
	}
	virtq_elem_write(e, e->in_len - 1, &status, 1);
	virtq_push(vq, e, written + 1);
}

/* Serves the queue until it is empty, the device breaks or the queue goes. */
static void blk_drain(struct virtio_blk *b)
{
	struct virtqueue *vq = &b->vdev.vqs[0];
	unsigned int pending = 0;

	while (virtq_pop(vq, &b->elem) == 0) {
		blk_handle(b, vq, &b->elem);
		if (++pending == BLK_BATCH) {
			virtq_signal(vq);
			pending = 0;
		}
	}
	if (pending)
		virtq_signal(vq);
}

static void *blk_worker(void *arg)
{
	struct virtio_blk *b = arg;
	unsigned int kicked;

	sandbox_enter(SANDBOX_ROLE_DEVICE);
	while (virtio_worker_wait(&b->worker, UINT64_MAX, &kicked))
		blk_drain(b);
	return NULL;
}

static void blk_config_read(struct virtio_dev *dev, uint32_t offset, void *data, uint32_t len)
{
	memcpy(data, to_blk(dev)->config + offset, len);
}

static void blk_destroy(struct virtio_dev *dev)
{
	struct virtio_blk *b = to_blk(dev);

	virtio_worker_stop(&b->worker);
	if (b->fd >= 0)
		close(b->fd);
	virtq_elem_free(&b->elem);
	free(b->scratch);
	free((void *)b->dirty);
	virtio_dev_cleanup(&b->vdev);
	free(b);
}

/* For a save: with the worker held nothing is in flight; what it wrote
 * reaches the disk, so that the saved state and the image agree. */
static void blk_hold(struct virtio_dev *dev)
{
	struct virtio_blk *b = to_blk(dev);

	if (!b->read_only && fdatasync(b->fd) < 0)
		virtio_dev_warn(dev, "flushing the image for a save: %s", strerror(errno));
}

static const struct virtio_dev_ops blk_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.nqueues = 1,
	.config_read = blk_config_read,
	.destroy = blk_destroy,
	.hold = blk_hold,
};

/* Which fallocate modes the image's filesystem has, tried past the end of
 * the image so no data is touched; KEEP_SIZE leaves the size alone. */
static void blk_probe_fallocate(struct virtio_blk *b, uint64_t size)
{
	off_t end = (off_t)ALIGN_UP(size, 4096ULL);

	b->can_punch = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, end, 4096) == 0;
	b->can_zero = fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, end, 4096) == 0;
	if (b->can_zero && b->can_punch)
		(void)fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, end, 4096);
}

static void blk_build_config(struct virtio_blk *b, uint16_t qsize)
{
	uint8_t *c = b->config;

	put_le64(c + BLK_CFG_CAPACITY, b->capacity);
	put_le32(c + BLK_CFG_SEG_MAX, qsize - 2u);      /* header and status take two */
	put_le32(c + BLK_CFG_BLK_SIZE, BLK_SECTOR);
	put_le16(c + BLK_CFG_NUM_QUEUES, 1);
	if (b->can_punch) {
		put_le32(c + BLK_CFG_MAX_DISCARD_SECTORS, BLK_MAX_RANGE_SECTORS);
		put_le32(c + BLK_CFG_MAX_DISCARD_SEG, BLK_MAX_RANGE_SEGS);
		put_le32(c + BLK_CFG_DISCARD_ALIGN, 4096 / BLK_SECTOR);
	}
	if (b->can_punch || b->can_zero) {
		put_le32(c + BLK_CFG_MAX_WZ_SECTORS, BLK_MAX_RANGE_SECTORS);
		put_le32(c + BLK_CFG_MAX_WZ_SEG, BLK_MAX_RANGE_SEGS);
		c[BLK_CFG_WZ_MAY_UNMAP] = b->can_punch;
	}
}

static int blk_open(struct virtio_blk *b, const struct virtio_blk_opts *o)
{
	off_t size;

	b->fd = open(o->path, (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0)
		return -errno;
	/* Two machines writing one image corrupt it; readers may share. */
	if (flock(b->fd, (o->read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0 &&
	    errno != ENOLCK && errno != EOPNOTSUPP && errno != EINVAL)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	size = lseek(b->fd, 0, SEEK_END);
	if (size < 0)
		return -errno;
	if (size < (off_t)BLK_SECTOR)
		return -EINVAL;
	b->capacity = (uint64_t)size / BLK_SECTOR;
	if (!o->read_only)
		blk_probe_fallocate(b, (uint64_t)size);
	return 0;
}

int virtio_blk_swap(struct virtio_dev *dev, const char *path)
{
	struct virtio_blk *b = to_blk(dev);
	struct virtio_blk nb = { .fd = -1 };
	struct virtio_blk_opts o = { .path = path, .read_only = b->read_only };
	int r, old;

	r = blk_open(&nb, &o);
	if (r < 0) {
		if (nb.fd >= 0)
			close(nb.fd);
		return r;
	}
	/* The worker lets go of the old image; requests that came meanwhile
	 * are served from the new one once it is kicked again. */
	virtio_worker_quiesce(&b->worker);
	old = b->fd;
	b->fd = nb.fd;
	b->capacity = nb.capacity;
	b->can_punch = nb.can_punch;
	b->can_zero = nb.can_zero;
	put_le64(b->config + BLK_CFG_CAPACITY, b->capacity);
	pthread_mutex_unlock(&b->worker.lock);
	close(old);
	virtio_worker_kick(&b->worker, 0);
	virtio_dev_config_changed(dev);
	return 0;
}

int virtio_blk_create(struct virtio_dev **out, const struct virtio_blk_opts *o)
{
	uint16_t qsize = o->queue_size ? o->queue_size : BLK_DEFAULT_QUEUE;
	const char *serial = o->serial;
	uint64_t features = VIRTIO_BIT(BLK_F_SEG_MAX) | VIRTIO_BIT(BLK_F_BLK_SIZE) |
			    VIRTIO_BIT(BLK_F_FLUSH);
	struct virtio_blk *b;
	int r;

	*out = NULL;
	if (!o->path || qsize < 4 || qsize > BLK_MAX_QUEUE || (qsize & (qsize - 1)) ||
	    (serial && strlen(serial) > BLK_ID_BYTES))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fd = -1;
	b->read_only = o->read_only;

	r = blk_open(b, o);
	if (r < 0)
		goto err;
	if (b->read_only)
		features |= VIRTIO_BIT(BLK_F_RO);
	if (b->can_punch)
		features |= VIRTIO_BIT(BLK_F_DISCARD);
	if (b->can_punch || b->can_zero)
		features |= VIRTIO_BIT(BLK_F_WRITE_ZEROES);
	if (!serial) {
		serial = strrchr(o->path, '/');
		serial = serial ? serial + 1 : o->path;
	}
	memcpy(b->serial, serial, MIN(strlen(serial), sizeof(b->serial)));
	blk_build_config(b, qsize);

	r = virtio_dev_init(&b->vdev, &blk_ops, o->name ? o->name : "virtio-blk", features,
			    qsize, BLK_CONFIG_SIZE);
	if (r < 0)
		goto err;
	r = virtq_elem_init(&b->elem, qsize);
	if (r < 0)
		goto err;
	b->scratch = calloc(qsize, sizeof(*b->scratch));
	b->scratch_cap = qsize;
	if (!b->scratch) {
		r = -ENOMEM;
		goto err;
	}
	r = virtio_worker_start(&b->worker, blk_worker, b, "nestvm-blk");
	if (r < 0)
		goto err;
	b->vdev.worker = &b->worker;
	*out = &b->vdev;
	return 0;

err:
	blk_destroy(&b->vdev);
	return r;
}

int virtio_blk_track(struct virtio_dev *dev, bool on)
{
	struct virtio_blk *b = to_blk(dev);
	_Atomic uint64_t *bits = NULL;

	b->chunks = (b->capacity * BLK_SECTOR + VIRTIO_BLK_CHUNK - 1) / VIRTIO_BLK_CHUNK;
	if (on) {
		bits = calloc((b->chunks + 63) / 64, sizeof(*bits));
		if (!bits)
			return -ENOMEM;
	}
	/* The worker reads the pointer: swapped while it stands still. */
	virtio_worker_hold(&b->worker);
	free((void *)b->dirty);
	b->dirty = bits;
	virtio_worker_release(&b->worker);
	return 0;
}

uint64_t virtio_blk_chunks(struct virtio_dev *dev)
{
	struct virtio_blk *b = to_blk(dev);

	return (b->capacity * BLK_SECTOR + VIRTIO_BLK_CHUNK - 1) / VIRTIO_BLK_CHUNK;
}

/* Word by word, atomically, beside a worker that may be marking: what it
 * marks after a word was taken is taken next time. Called with the device
 * held or not; track is never called meanwhile. */
void virtio_blk_take_dirty(struct virtio_dev *dev, uint64_t *bitmap)
{
	struct virtio_blk *b = to_blk(dev);

	for (uint64_t w = 0; b->dirty && w < (b->chunks + 63) / 64; w++)
		bitmap[w] |= atomic_exchange_explicit(&b->dirty[w], 0, memory_order_relaxed);
}

int virtio_blk_image_fd(struct virtio_dev *dev)
{
	return to_blk(dev)->fd;
}

uint64_t virtio_blk_bytes(struct virtio_dev *dev)
{
	return to_blk(dev)->capacity * BLK_SECTOR;
}

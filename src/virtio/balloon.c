/* virtio-balloon (virtio 1.2, 5.5) and the dynamic memory policy behind it:
 * pages the guest gives back go back to the host (MADV_DONTNEED on guest
 * RAM), and once a second a worker thread reads the guest's memory figures
 * from the stats queue and moves the target between the minimum and maximum. */
#include "virtio/virtio.h"
#include "sandbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BALLOON_F_MUST_TELL_HOST 0
#define BALLOON_F_STATS_VQ      1
#define BALLOON_F_DEFLATE_ON_OOM 2

#define BALLOON_Q_INFLATE       0
#define BALLOON_Q_DEFLATE       1
#define BALLOON_Q_STATS         2
#define BALLOON_NQUEUES         3

/* struct virtio_balloon_config up to actual: the rest needs features not offered. */
#define BALLOON_CFG_NUM_PAGES   0
#define BALLOON_CFG_ACTUAL      4
#define BALLOON_CONFIG_SIZE     8

#define BALLOON_S_MEMFREE       4
#define BALLOON_S_MEMTOT        5
#define BALLOON_S_AVAIL         6
#define BALLOON_STAT_BYTES      10      /* le16 tag, le64 val, packed */
#define BALLOON_MAX_STATS       64      /* a longer buffer is read this far */

#define BALLOON_QUEUE_SIZE      256
#define BALLOON_TICK_NS         1000000000ULL
/* After an explicit target the policy waits this long before it moves it. */
#define BALLOON_MANUAL_HOLD_NS  (30 * 1000000000ULL)

struct virtio_balloon {
	struct virtio_dev vdev;         /* first: the ops get this pointer */
	struct virtio_balloon_policy policy;
	uint64_t ram_pages;             /* 4 KiB pages of guest RAM: the maximum */
	bool can_release;               /* host pages are 4 KiB */
	_Atomic uint32_t num_pages;     /* the target balloon size, in config space */
	_Atomic uint32_t actual;        /* what the driver says it holds */
	_Atomic uint64_t released, refused, returned;
	struct virtq_elem elem;
	struct virtq_elem stats_elem;   /* the driver's stats buffer, kept until the next tick */

	struct virtio_worker worker;    /* its lock guards everything below */
	bool stats_held;
	struct virtio_balloon_stats stats;
	uint64_t manual_until_ns;
};

static struct virtio_balloon *to_balloon(struct virtio_dev *dev)
{
	return (struct virtio_balloon *)dev;
}

uint64_t virtio_balloon_policy_next(const struct virtio_balloon_policy *p, uint64_t target,
				    uint64_t assigned, const struct virtio_balloon_stats *s)
{
	uint64_t have, avail, step, give;

	if (!s->valid || !assigned)
		return target;
	avail = s->has_avail ? s->avail : s->memfree;
	/* What the guest counts as its memory, at most what it was assigned:
	 * the kernel keeps some for itself, and a guest with DEFLATE_ON_OOM
	 * still counts the balloon in its total. */
	have = s->memtot ? MIN(s->memtot, assigned) : assigned;
	avail = MIN(avail, have);
	step = p->step ? p->step : VIRTIO_BALLOON_PAGE;
	if (avail * 100 < have * p->low_pct) {
		/* Short of memory: give at once, from wherever the balloon is. */
		give = MAX(target, assigned);
		return MIN(p->max, give + MIN(2 * step, p->max - MIN(give, p->max)));
	}
	if (avail * 100 > have * p->high_pct && target == assigned && target > p->min) {
		/* Plenty free, and the balloon has caught up: take back a step, but
		 * not so much that the guest lands below the middle of the band. */
		uint64_t keep = have * ((p->low_pct + p->high_pct) / 2) / 100;
		uint64_t take = MIN(step, avail > keep ? avail - keep : 0);

		take &= ~(uint64_t)(VIRTIO_BALLOON_PAGE - 1);
		return MAX(p->min, target - MIN(take, target));
	}
	return target;
}

/* The target as assigned bytes, clamped, into config space; caller holds lock. */
static bool balloon_set_target_locked(struct virtio_balloon *b, uint64_t bytes)
{
	uint64_t assigned = MIN(MAX(bytes, b->policy.min), b->policy.max);
	uint32_t pages = (uint32_t)((b->policy.max - assigned) / VIRTIO_BALLOON_PAGE);

	return atomic_exchange(&b->num_pages, pages) != pages;
}

static uint64_t balloon_assigned(struct virtio_balloon *b, uint32_t pages)
{
	return (b->ram_pages - MIN((uint64_t)pages, b->ram_pages)) * VIRTIO_BALLOON_PAGE;
}

/* A driver sees the new target through a configuration interrupt; before it
 * has set up its queues it reads num_pages itself once it is ready. */
static void balloon_tell_driver(struct virtio_balloon *b)
{
	if (b->vdev.vqs[BALLOON_Q_INFLATE].ready)
		virtio_dev_config_changed(&b->vdev);
}

uint64_t virtio_balloon_set_target(struct virtio_dev *dev, uint64_t bytes)
{
	struct virtio_balloon *b = to_balloon(dev);
	bool changed;

	pthread_mutex_lock(&b->worker.lock);
	changed = balloon_set_target_locked(b, bytes);
	b->manual_until_ns = util_now_ns() + BALLOON_MANUAL_HOLD_NS;
	pthread_mutex_unlock(&b->worker.lock);
	if (changed)
		balloon_tell_driver(b);
	return balloon_assigned(b, atomic_load(&b->num_pages));
}

void virtio_balloon_get_info(struct virtio_dev *dev, struct virtio_balloon_info *info)
{
	struct virtio_balloon *b = to_balloon(dev);

	pthread_mutex_lock(&b->worker.lock);
	info->stats = b->stats;
	pthread_mutex_unlock(&b->worker.lock);
	info->target = balloon_assigned(b, atomic_load(&b->num_pages));
	info->assigned = balloon_assigned(b, atomic_load(&b->actual));
	info->released_pages = atomic_load(&b->released);
	info->refused_pages = atomic_load(&b->refused);
	info->returned_pages = atomic_load(&b->returned);
}

/* Gives the host back a run of pages; a PFN outside guest RAM is counted,
 * never followed. */
static void balloon_release(struct virtio_balloon *b, uint64_t pfn, uint64_t n)
{
	uint8_t *p;

	if (pfn > UINT64_MAX / VIRTIO_BALLOON_PAGE)
		p = NULL;
	else
		p = guestmem_ptr(b->vdev.mem, pfn * VIRTIO_BALLOON_PAGE, n * VIRTIO_BALLOON_PAGE);
	if (!p && n > 1) {
		/* A run that leaves RAM: the pages that are RAM still go back. */
		for (uint64_t i = 0; i < n; i++)
			balloon_release(b, pfn + i, 1);
		return;
	}
	if (!p) {
		atomic_fetch_add(&b->refused, n);
		virtio_dev_warn(&b->vdev, "inflate: %llu page(s) at PFN 0x%llx are not guest RAM; ignored",
				(unsigned long long)n, (unsigned long long)pfn);
		return;
	}
	/* Private anonymous memory: the host frees it, and the guest finds
	 * zeroes if it touches the page again. Inside a transparent huge page
	 * the kernel splits it and frees the 4 KiB pieces on its own time. */
	if (b->can_release && madvise(p, n * VIRTIO_BALLOON_PAGE, MADV_DONTNEED) == 0) {
		atomic_fetch_add(&b->released, n);
		/* Now zero: a migration must carry that too. */
		guestmem_mark(b->vdev.mem, p, n * VIRTIO_BALLOON_PAGE);
	} else {
		atomic_fetch_add(&b->refused, n);
	}
}

/* The PFNs of one inflate request, contiguous runs released together. */
static void balloon_inflate(struct virtio_balloon *b, const struct virtq_elem *e)
{
	uint64_t run_pfn = 0, run_n = 0;
	uint32_t pfns[64];

	for (uint64_t off = 0; off + 4 <= e->out_len;) {
		size_t got = virtq_elem_read(e, off, pfns, MIN(sizeof(pfns), (size_t)(e->out_len - off) & ~(size_t)3));

		for (size_t i = 0; i < got / 4; i++) {
			if (run_n && pfns[i] == run_pfn + run_n && run_n < 512) {
				run_n++;
				continue;
			}
			if (run_n)
				balloon_release(b, run_pfn, run_n);
			run_pfn = pfns[i];
			run_n = 1;
		}
		if (got < 4)
			break;
		off += got;
	}
	if (run_n)
		balloon_release(b, run_pfn, run_n);
}

/* A stats buffer: the figures it carries, in bytes. */
static void balloon_read_stats(const struct virtq_elem *e, struct virtio_balloon_stats *s)
{
	uint8_t rec[BALLOON_STAT_BYTES];

	memset(s, 0, sizeof(*s));
	for (uint64_t i = 0; i < BALLOON_MAX_STATS; i++) {
		uint16_t tag;
		uint64_t val;

		if (virtq_elem_read(e, i * sizeof(rec), rec, sizeof(rec)) != sizeof(rec))
			break;
		memcpy(&tag, rec, 2);
		memcpy(&val, rec + 2, 8);
		switch (tag) {
		case BALLOON_S_MEMFREE: s->memfree = val; s->valid = true; break;
		case BALLOON_S_MEMTOT: s->memtot = val; break;
		case BALLOON_S_AVAIL: s->avail = val; s->has_avail = s->valid = true; break;
		default: break;
		}
	}
}

static void balloon_drain(struct virtio_balloon *b, unsigned int q)
{
	struct virtqueue *vq = &b->vdev.vqs[q];
	bool pushed = false;

	while (virtq_pop(vq, &b->elem) == 0) {
		if (q == BALLOON_Q_INFLATE)
			balloon_inflate(b, &b->elem);
		else
			atomic_fetch_add(&b->returned, b->elem.out_len / 4);
		virtq_push(vq, &b->elem, 0);
		pushed = true;
	}
	if (pushed)
		virtq_signal(vq);
}

/* The driver hands its stats buffer over and waits for it back: keep it
 * until the next tick asks for fresh figures. */
static void balloon_take_stats(struct virtio_balloon *b)
{
	struct virtqueue *vq = &b->vdev.vqs[BALLOON_Q_STATS];
	struct virtio_balloon_stats s;

	if (!virtio_dev_has(&b->vdev, BALLOON_F_STATS_VQ))
		return;
	while (virtq_pop(vq, &b->elem) == 0) {
		balloon_read_stats(&b->elem, &s);
		pthread_mutex_lock(&b->worker.lock);
		if (s.valid)
			b->stats = s;
		if (b->stats_held) {
			/* Only one buffer is ever outstanding; hand back the older. */
			virtq_push(vq, &b->stats_elem, 0);
		}
		{
			struct virtq_elem t = b->stats_elem;

			b->stats_elem = b->elem;
			b->elem = t;
		}
		b->stats_held = true;
		pthread_mutex_unlock(&b->worker.lock);
	}
}

/* Once a second: move the target, then ask the guest for fresh figures. */
static void balloon_tick(struct virtio_balloon *b, uint64_t now)
{
	struct virtqueue *vq = &b->vdev.vqs[BALLOON_Q_STATS];
	bool changed = false, ask;

	pthread_mutex_lock(&b->worker.lock);
	if (b->stats.valid && now >= b->manual_until_ns) {
		uint64_t target = balloon_assigned(b, atomic_load(&b->num_pages));
		uint64_t assigned = balloon_assigned(b, atomic_load(&b->actual));

		changed = balloon_set_target_locked(b, virtio_balloon_policy_next(&b->policy, target,
										    assigned, &b->stats));
		b->stats.valid = false;         /* each set of figures moves it once */
	}
	pthread_mutex_unlock(&b->worker.lock);
	/* The new target is out before the guest hears from the stats queue. */
	if (changed)
		balloon_tell_driver(b);
	pthread_mutex_lock(&b->worker.lock);
	ask = b->stats_held;
	if (ask) {
		virtq_push(vq, &b->stats_elem, 0);
		b->stats_held = false;
	}
	pthread_mutex_unlock(&b->worker.lock);
	if (ask)
		virtq_signal(vq);
}

static void *balloon_worker(void *arg)
{
	struct virtio_balloon *b = arg;
	uint64_t now, next_tick = util_now_ns() + BALLOON_TICK_NS;
	unsigned int kicked;

	sandbox_enter(SANDBOX_ROLE_DEVICE);
	while (virtio_worker_wait(&b->worker, next_tick, &kicked)) {
		if (kicked & (1u << BALLOON_Q_INFLATE))
			balloon_drain(b, BALLOON_Q_INFLATE);
		if (kicked & (1u << BALLOON_Q_DEFLATE))
			balloon_drain(b, BALLOON_Q_DEFLATE);
		if (kicked & (1u << BALLOON_Q_STATS))
			balloon_take_stats(b);
		now = util_now_ns();
		if (now >= next_tick) {
			balloon_tick(b, now);
			next_tick = now + BALLOON_TICK_NS;
		}
	}
	return NULL;
}

static void balloon_reset(struct virtio_dev *dev)
{
	struct virtio_balloon *b = to_balloon(dev);

	/* The held buffer belonged to the driver that just went away. */
	b->stats_held = false;
	b->stats = (struct virtio_balloon_stats){ 0 };
	/* A new driver starts from an empty balloon (5.5.6.1). */
	atomic_store(&b->actual, 0);
}

static void balloon_config_read(struct virtio_dev *dev, uint32_t offset, void *data, uint32_t len)
{
	struct virtio_balloon *b = to_balloon(dev);
	uint8_t cfg[BALLOON_CONFIG_SIZE];
	uint32_t v;

	v = atomic_load(&b->num_pages);
	memcpy(cfg + BALLOON_CFG_NUM_PAGES, &v, 4);
	v = atomic_load(&b->actual);
	memcpy(cfg + BALLOON_CFG_ACTUAL, &v, 4);
	memcpy(data, cfg + offset, len);
}

/* Only actual is the driver's to write (5.5.6.1); num_pages is the device's. */
static void balloon_config_write(struct virtio_dev *dev, uint32_t offset, const void *data, uint32_t len)
{
	struct virtio_balloon *b = to_balloon(dev);
	uint32_t v;

	if (offset != BALLOON_CFG_ACTUAL || len != 4) {
		virtio_dev_warn(dev, "%u-byte config write at offset %u ignored (only 'actual' is writable)",
				len, offset);
		return;
	}
	memcpy(&v, data, 4);
	atomic_store(&b->actual, v);
}

/* With the worker held: the stats buffer goes back to the ring (the driver
 * keeps only one there), so the restored device takes it up again. */
static void balloon_hold(struct virtio_dev *dev)
{
	struct virtio_balloon *b = to_balloon(dev);

	if (b->stats_held)
		virtq_unpop(&b->vdev.vqs[BALLOON_Q_STATS], &b->stats_elem);
	b->stats_held = false;
}

static void balloon_save(struct virtio_dev *dev, struct snap_buf *sb)
{
	struct virtio_balloon *b = to_balloon(dev);

	snap_put_u32(sb, atomic_load(&b->num_pages));
	snap_put_u32(sb, atomic_load(&b->actual));
	snap_put_u64(sb, atomic_load(&b->released));
	snap_put_u64(sb, atomic_load(&b->refused));
	snap_put_u64(sb, atomic_load(&b->returned));
}

static int balloon_load(struct virtio_dev *dev, struct snap_cur *c)
{
	struct virtio_balloon *b = to_balloon(dev);
	uint32_t num_pages = snap_get_u32(c), actual = snap_get_u32(c);
	uint64_t released = snap_get_u64(c), refused = snap_get_u64(c), returned = snap_get_u64(c);

	if (!c->bad && (num_pages > b->ram_pages || actual > b->ram_pages))
		snap_cur_fail(c, "a balloon of %u pages (holding %u) in a guest of %llu", num_pages, actual,
			      (unsigned long long)b->ram_pages);
	if (c->bad)
		return -EINVAL;
	atomic_store(&b->num_pages, num_pages);
	atomic_store(&b->actual, actual);
	atomic_store(&b->released, released);
	atomic_store(&b->refused, refused);
	atomic_store(&b->returned, returned);
	return 0;
}

static void balloon_destroy(struct virtio_dev *dev)
{
	struct virtio_balloon *b = to_balloon(dev);

	virtio_worker_stop(&b->worker);
	virtq_elem_free(&b->elem);
	virtq_elem_free(&b->stats_elem);
	virtio_dev_cleanup(&b->vdev);
	free(b);
}

static const struct virtio_dev_ops balloon_ops = {
	.device_id = VIRTIO_ID_BALLOON,
	.nqueues = BALLOON_NQUEUES,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.reset = balloon_reset,
	.destroy = balloon_destroy,
	.hold = balloon_hold,
	.save = balloon_save,
	.load = balloon_load,
};

int virtio_balloon_create(struct virtio_dev **out, const struct virtio_balloon_opts *o)
{
	uint64_t features = VIRTIO_BIT(BALLOON_F_STATS_VQ) | VIRTIO_BIT(BALLOON_F_DEFLATE_ON_OOM);
	struct virtio_balloon_policy p = o->policy;
	struct virtio_balloon *b;
	int r;

	*out = NULL;
	if (!p.max || p.min > o->startup || o->startup > p.max || (p.max % VIRTIO_BALLOON_PAGE) ||
	    (p.min % VIRTIO_BALLOON_PAGE) || p.max / VIRTIO_BALLOON_PAGE > UINT32_MAX ||
	    (p.low_pct && p.low_pct >= p.high_pct) || p.high_pct > 100)
		return -EINVAL;
	if (!p.low_pct && !p.high_pct) {
		p.low_pct = VIRTIO_BALLOON_LOW_PCT;
		p.high_pct = VIRTIO_BALLOON_HIGH_PCT;
	}
	if (!p.step)
		p.step = MAX(32ULL << 20, ALIGN_UP((p.max - p.min) / 16, 1ULL << 20));
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->policy = p;
	b->ram_pages = p.max / VIRTIO_BALLOON_PAGE;
	b->can_release = (uint64_t)sysconf(_SC_PAGESIZE) == VIRTIO_BALLOON_PAGE;
	(void)balloon_set_target_locked(b, o->startup);

	r = virtio_dev_init(&b->vdev, &balloon_ops, o->name ? o->name : "virtio-balloon", features,
			    BALLOON_QUEUE_SIZE, BALLOON_CONFIG_SIZE);
	if (r >= 0)
		r = virtq_elem_init(&b->elem, BALLOON_QUEUE_SIZE);
	if (r >= 0)
		r = virtq_elem_init(&b->stats_elem, BALLOON_QUEUE_SIZE);
	if (r >= 0)
		r = virtio_worker_start(&b->worker, balloon_worker, b, "nestvm-balloon");
	if (r < 0) {
		balloon_destroy(&b->vdev);
		return r;
	}
	b->vdev.worker = &b->worker;
	*out = &b->vdev;
	return 0;
}

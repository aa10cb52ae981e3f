/* virtio-rng (virtio 1.2, 5.4): fills the guest's writable buffers from
 * getrandom(). Served on the kicking vCPU, so never waiting: each request is
 * capped, and a host whose pool is not yet ready (early in its boot) gets
 * GRND_NONBLOCK's EAGAIN, and the guest what was there, perhaps nothing; its
 * driver asks again. */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RNG_QUEUE_SIZE  64
#define RNG_MAX_REQUEST 65536u  /* bytes per request; the driver asks again */

struct virtio_rng {
	struct virtio_dev vdev;         /* first: the ops get this pointer */
	struct virtq_elem elem;
};

/* Fills up to RNG_MAX_REQUEST writable bytes; returns how many. */
static uint32_t rng_fill(const struct virtq_elem *e)
{
	uint32_t done = 0;

	for (unsigned int i = 0; i < e->nin && done < RNG_MAX_REQUEST; i++) {
		const struct iovec *v = &e->iov[e->nout + i];
		size_t want = MIN(v->iov_len, (size_t)(RNG_MAX_REQUEST - done));
		size_t got = 0;

		while (got < want) {
			ssize_t r = getrandom((uint8_t *)v->iov_base + got, want - got, GRND_NONBLOCK);

			if (r < 0) {
				if (errno == EINTR)
					continue;
				return done + (uint32_t)got;
			}
			got += (size_t)r;
		}
		done += (uint32_t)got;
	}
	return done;
}

static void rng_notify(struct virtio_dev *dev, unsigned int q)
{
	struct virtio_rng *rng = (struct virtio_rng *)dev;
	struct virtqueue *vq = &dev->vqs[q];
	bool pushed = false;

	while (virtq_pop(vq, &rng->elem) == 0) {
		virtq_push(vq, &rng->elem, rng_fill(&rng->elem));
		pushed = true;
	}
	if (pushed)
		virtq_signal(vq);
}

static void rng_destroy(struct virtio_dev *dev)
{
	struct virtio_rng *rng = (struct virtio_rng *)dev;

	virtq_elem_free(&rng->elem);
	virtio_dev_cleanup(dev);
	free(rng);
}

static const struct virtio_dev_ops rng_ops = {
	.device_id = VIRTIO_ID_RNG,
	.nqueues = 1,
	.notify = rng_notify,
	.destroy = rng_destroy,     /* no reset: all its work happens inside notify */
};

int virtio_rng_create(struct virtio_dev **out, const char *name)
{
	struct virtio_rng *rng;
	int r;

	*out = NULL;
	rng = calloc(1, sizeof(*rng));
	if (!rng)
		return -ENOMEM;
	r = virtio_dev_init(&rng->vdev, &rng_ops, name ? name : "virtio-rng", 0,
			    RNG_QUEUE_SIZE, 0);
	if (r < 0) {
		free(rng);
		return r;
	}
	r = virtq_elem_init(&rng->elem, RNG_QUEUE_SIZE);
	if (r < 0) {
		rng_destroy(&rng->vdev);
		return r;
	}
	*out = &rng->vdev;
	return 0;
}

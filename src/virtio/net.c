/* virtio-net: a worker thread moves frames between the queues and the
 * backend. It polls the backend and an eventfd the transport's notify writes
 * (notify runs on a vCPU and must not block). Receive buffers are filled
 * straight from the backend, transmit chains sent straight from guest
 * memory; every length comes from the guest and is checked first. */
#include "virtio/net.h"
#include "sandbox.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NET_F_MAC               5
#define NET_F_STATUS            16
#define NET_S_LINK_UP           1u

/* struct virtio_net_config up to max_virtqueue_pairs. */
#define NET_CFG_MAC             0
#define NET_CFG_STATUS          6
#define NET_CFG_MAX_VQ_PAIRS    8
#define NET_CONFIG_SIZE         10

#define NET_RXQ                 0
#define NET_TXQ                 1
#define NET_DEFAULT_QUEUE       256
#define NET_MAX_QUEUE           512     /* buffers per chain stay within the backend's IOV limit */
#define NET_BUDGET              256     /* frames per queue per round: rx and tx take turns */
#define NET_BATCH               32      /* frames between interrupts */
#define NET_RECONNECT_MS        1000

struct virtio_net {
	struct virtio_dev vdev;         /* first: the ops get this pointer */
	struct net_backend be;
	uint8_t mac[NET_MAC_LEN];
	struct virtio_poller worker;    /* polls the backend and the kicks */

	/* The worker's own. */
	struct virtq_elem rx, tx;
	bool rx_held;                   /* rx holds a popped buffer not yet filled */
	bool rx_starved;                /* the guest gave no buffers: wait for a kick */
	struct iovec *iov;
	unsigned int iov_cap;
	uint8_t *hold;                  /* a frame the backend could not take yet */
	size_t hold_len;
	bool tx_held;
	uint64_t next_reconnect_ns;

	_Atomic bool link_up;
	_Atomic uint64_t rx_frames, rx_bytes, rx_dropped;
	_Atomic uint64_t tx_frames, tx_bytes, tx_dropped, tx_spoofed;
};

static struct virtio_net *to_net(struct virtio_dev *dev)
{
	return (struct virtio_net *)dev;
}

static void stat_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static void net_set_link(struct virtio_net *n, bool up)
{
	if (atomic_exchange(&n->link_up, up) != up)
		virtio_dev_config_changed(&n->vdev);
}

/* The backend went away: the link goes down, and a switch port is dialled
 * again every second from the worker loop. */
static void net_backend_lost(struct virtio_net *n, const char *why)
{
	if (n->be.fd >= 0) {
		close(n->be.fd);
		n->be.fd = -1;
	}
	n->rx_held = false;
	n->tx_held = false;
	net_set_link(n, false);
	virtio_dev_warn(&n->vdev, "link down: %s%s", why,
			n->be.kind == NET_BACKEND_SWITCH ? "; reconnecting every second" : "");
	n->next_reconnect_ns = util_now_ns() + NET_RECONNECT_MS * 1000000ULL;
}

static void net_try_reconnect(struct virtio_net *n)
{
	char err[256];

	if (n->be.kind != NET_BACKEND_SWITCH || util_now_ns() < n->next_reconnect_ns)
		return;
	n->next_reconnect_ns = util_now_ns() + NET_RECONNECT_MS * 1000000ULL;
	if (net_backend_reconnect(&n->be, err, sizeof(err)) < 0)
		return;
	virtio_dev_warn(&n->vdev, "link up: reconnected to the switch (port %u)", n->be.port);
	n->rx_starved = false;
	net_set_link(n, true);
}

/* Sends what a transmit chain holds after its header; false when the
 * backend is full and the frame now waits in n->hold. */
static bool net_tx_one(struct virtio_net *n, const struct virtq_elem *e)
{
	uint64_t len = e->out_len;
	ssize_t r;
	int k;

	if (len < NET_VNET_HDR_LEN + NET_ETH_HLEN || len - NET_VNET_HDR_LEN > NET_FRAME_MAX) {
		stat_add(&n->tx_dropped, 1);
		virtio_dev_warn(&n->vdev, "transmit chain %u of %llu bytes is no frame behind a "
				"%d-byte header; dropped", e->head, (unsigned long long)len,
				NET_VNET_HDR_LEN);
		return true;
	}
	len -= NET_VNET_HDR_LEN;
	if (n->be.fd < 0) {
		stat_add(&n->tx_dropped, 1);
		return true;
	}
	k = virtq_elem_out_slice(e, NET_VNET_HDR_LEN, len, n->iov, n->iov_cap);
	if (k < 0) {
		stat_add(&n->tx_dropped, 1);
		return true;
	}
	r = net_backend_send(&n->be, n->iov, k);
	if (r == -EAGAIN) {
		/* Keep the frame, give the buffer back, and take no more until the
		 * backend has room: back-pressure instead of loss. */
		n->hold_len = virtq_elem_read(e, NET_VNET_HDR_LEN, n->hold, (size_t)len);
		n->tx_held = true;
		return false;
	}
	if (r == -EPERM) {
		stat_add(&n->tx_spoofed, 1);
	} else if (r == -EPIPE) {
		stat_add(&n->tx_dropped, 1);
		net_backend_lost(n, "the backend closed the connection");
	} else if (r < 0) {
		stat_add(&n->tx_dropped, 1);
	} else {
		stat_add(&n->tx_frames, 1);
		stat_add(&n->tx_bytes, (uint64_t)r);
	}
	return true;
}

/* Returns whether the transmit queue may have more for us. */
static bool net_tx(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vqs[NET_TXQ];
	unsigned int done = 0, unsignalled = 0;

	if (n->tx_held) {
		struct iovec v = { n->hold, n->hold_len };
		ssize_t r = net_backend_send(&n->be, &v, 1);

		if (r == -EAGAIN)
			return false;
		n->tx_held = false;
		if (r >= 0) {
			stat_add(&n->tx_frames, 1);
			stat_add(&n->tx_bytes, (uint64_t)r);
		} else {
			stat_add(&n->tx_dropped, 1);
			if (r == -EPIPE)
				net_backend_lost(n, "the backend closed the connection");
		}
	}
	while (done < NET_BUDGET && !n->tx_held) {
		if (virtq_pop(vq, &n->tx) < 0)
			break;
		net_tx_one(n, &n->tx);
		virtq_push(vq, &n->tx, 0);
		done++;
		if (++unsignalled == NET_BATCH) {
			virtq_signal(vq);
			unsignalled = 0;
		}
	}
	if (unsignalled)
		virtq_signal(vq);
	return done == NET_BUDGET;
}

/* Fills receive buffers from the backend; returns whether more may wait. */
static bool net_rx(struct virtio_net *n)
{
	static const uint8_t hdr[NET_VNET_HDR_LEN] = { [10] = 1 };      /* num_buffers = 1 */
	struct virtqueue *vq = &n->vdev.vqs[NET_RXQ];
	struct virtq_elem *e = &n->rx;
	unsigned int done = 0, unsignalled = 0;
	bool more = false;

	while (n->be.fd >= 0 && !n->rx_starved) {
		uint64_t room;
		ssize_t r;
		int k;

		if (done == NET_BUDGET) {
			more = true;
			break;
		}
		if (!n->rx_held) {
			if (virtq_pop(vq, e) < 0) {
				n->rx_starved = true;
				break;
			}
			n->rx_held = true;
		}
		if (e->in_len < NET_VNET_HDR_LEN + NET_ETH_HLEN) {
			virtio_dev_warn(&n->vdev, "receive buffer %u of %llu bytes cannot hold a "
					"header and a frame; returned empty", e->head,
					(unsigned long long)e->in_len);
			virtq_push(vq, e, 0);
			n->rx_held = false;
			unsignalled++;
			continue;
		}
		room = MIN(e->in_len - NET_VNET_HDR_LEN, (uint64_t)NET_FRAME_MAX);
		k = virtq_elem_in_slice(e, NET_VNET_HDR_LEN, room, n->iov, n->iov_cap);
		if (k < 0) {
			virtq_push(vq, e, 0);
			n->rx_held = false;
			unsignalled++;
			continue;
		}
		r = net_backend_recv(&n->be, n->iov, k);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			net_backend_lost(n, r == -EPIPE ? "the backend closed the connection"
							: strerror((int)-r));
			break;
		}
		done++;
		if ((uint64_t)r > room) {
			/* Never cut a frame: drop it and keep the buffer for the next. */
			stat_add(&n->rx_dropped, 1);
			continue;
		}
		if (r == 0)
			continue;
		virtq_elem_write(e, 0, hdr, sizeof(hdr));
		virtq_push(vq, e, (uint32_t)(NET_VNET_HDR_LEN + r));
		n->rx_held = false;
		stat_add(&n->rx_frames, 1);
		stat_add(&n->rx_bytes, (uint64_t)r);
		if (++unsignalled == NET_BATCH) {
			virtq_signal(vq);
			unsignalled = 0;
		}
	}
	if (unsignalled)
		virtq_signal(vq);
	return more;
}

static void *net_worker(void *arg)
{
	struct virtio_net *n = arg;
	bool more = false;

	sandbox_enter(SANDBOX_ROLE_DEVICE);
	for (;;) {
		struct pollfd p[2] = { { n->worker.kick_fd, POLLIN, 0 }, { n->be.fd, 0, 0 } };
		int np = 1, timeout = -1;
		bool reset;

		if (n->be.fd >= 0) {
			p[1].events = (short)((n->rx_starved ? 0 : POLLIN) | (n->tx_held ? POLLOUT : 0));
			np = 2;
		} else if (n->be.kind == NET_BACKEND_SWITCH) {
			timeout = NET_RECONNECT_MS;
		}
		if (more)
			timeout = 0;
		if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR)
			p[0].revents = p[1].revents = 0;
		if (!virtio_poller_begin(&n->worker, p[0].revents & POLLIN, &reset))
			break;
		/* The driver reset the device: what we held belongs to the old rings. */
		if (reset)
			n->rx_held = n->tx_held = false;

		/* A kick may be new receive buffers; and a broken device holds nothing. */
		if (p[0].revents & POLLIN)
			n->rx_starved = false;
		if (virtio_dev_is_broken(&n->vdev))
			n->rx_held = false;
		/* Hung up: read what is left unless there is nowhere to put it. */
		if (np == 2 && (p[1].revents & (POLLHUP | POLLERR)) &&
		    (n->rx_starved || !(p[1].revents & POLLIN)))
			net_backend_lost(n, "the backend hung up");
		if (n->be.fd < 0)
			net_try_reconnect(n);
		more = net_tx(n);
		more |= net_rx(n);
		virtio_poller_end(&n->worker);
	}
	return NULL;
}

static void net_notify(struct virtio_dev *dev, unsigned int q)
{
	(void)q;
	virtio_poller_kick(&to_net(dev)->worker);
}

static void net_reset(struct virtio_dev *dev)
{
	virtio_poller_reset(&to_net(dev)->worker);
}

/* For a save: the worker finishes its round and waits; a receive buffer it
 * held for the next frame goes back to the ring, where the restored device
 * finds it again. A frame held for a full backend is lost, as on a wire. */
static void net_hold(struct virtio_dev *dev)
{
	struct virtio_net *n = to_net(dev);

	virtio_poller_hold(&n->worker);
	if (n->rx_held)
		virtq_unpop(&n->vdev.vqs[NET_RXQ], &n->rx);
	n->rx_held = false;
	n->rx_starved = false;
}

static void net_release(struct virtio_dev *dev)
{
	virtio_poller_release(&to_net(dev)->worker);
}

static void net_config_read(struct virtio_dev *dev, uint32_t offset, void *data, uint32_t len)
{
	struct virtio_net *n = to_net(dev);
	uint8_t cfg[NET_CONFIG_SIZE] = { 0 };
	uint16_t status = atomic_load(&n->link_up) ? NET_S_LINK_UP : 0, pairs = 1;

	memcpy(cfg + NET_CFG_MAC, n->mac, NET_MAC_LEN);
	memcpy(cfg + NET_CFG_STATUS, &status, 2);
	memcpy(cfg + NET_CFG_MAX_VQ_PAIRS, &pairs, 2);
	memcpy(data, cfg + offset, len);
}

static void net_destroy(struct virtio_dev *dev)
{
	struct virtio_net *n = to_net(dev);

	virtio_poller_stop(&n->worker);
	net_backend_close(&n->be);
	virtq_elem_free(&n->rx);
	virtq_elem_free(&n->tx);
	free(n->iov);
	free(n->hold);
	virtio_dev_cleanup(&n->vdev);
	free(n);
}

static const struct virtio_dev_ops net_ops = {
	.device_id = VIRTIO_ID_NET,
	.nqueues = 2,
	.config_read = net_config_read,
	.notify = net_notify,
	.reset = net_reset,
	.destroy = net_destroy,
	.hold = net_hold,
	.release = net_release,
};

int virtio_net_create(struct virtio_dev **out, const struct virtio_net_opts *o, char *err, size_t errlen)
{
	uint16_t qsize = o->queue_size ? o->queue_size : NET_DEFAULT_QUEUE;
	const uint8_t *mac = o->backend.mac;
	struct virtio_net *n;
	int r;

	*out = NULL;
	if (qsize < 16 || qsize > NET_MAX_QUEUE || (qsize & (qsize - 1)) || (mac[0] & 1) ||
	    !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
		if ((o->backend.kind == NET_BACKEND_FD || o->backend.tap_open) && o->backend.fd >= 0)
			close(o->backend.fd);
		if (qsize < 16 || qsize > NET_MAX_QUEUE || (qsize & (qsize - 1)))
			snprintf(err, errlen, "queue size %u is not a power of two from 16 to %u",
				 qsize, NET_MAX_QUEUE);
		else
			snprintf(err, errlen, "MAC address %02x:%02x:%02x:%02x:%02x:%02x is %s, not "
				 "an adapter's", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
				 (mac[0] & 1) ? "multicast" : "zero");
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		if ((o->backend.kind == NET_BACKEND_FD || o->backend.tap_open) && o->backend.fd >= 0)
			close(o->backend.fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n->be.fd = -1;
	memcpy(n->mac, mac, NET_MAC_LEN);
	r = virtio_poller_init(&n->worker);
	if (r < 0) {
		if ((o->backend.kind == NET_BACKEND_FD || o->backend.tap_open) && o->backend.fd >= 0)
			close(o->backend.fd);
		goto err_msg;
	}

	r = net_backend_open(&n->be, &o->backend, err, errlen);
	if (r < 0)
		goto err;
	r = virtio_dev_init(&n->vdev, &net_ops, o->name ? o->name : "virtio-net",
			    VIRTIO_BIT(NET_F_MAC) | VIRTIO_BIT(NET_F_STATUS), qsize, NET_CONFIG_SIZE);
	if (r < 0)
		goto err_msg;
	r = virtq_elem_init(&n->rx, qsize);
	if (r == 0)
		r = virtq_elem_init(&n->tx, qsize);
	if (r < 0)
		goto err_msg;
	n->iov = calloc(qsize, sizeof(*n->iov));
	n->iov_cap = qsize;
	n->hold = malloc(NET_FRAME_MAX);
	if (!n->iov || !n->hold) {
		r = -ENOMEM;
		goto err_msg;
	}
	atomic_store(&n->link_up, true);
	r = virtio_poller_start(&n->worker, net_worker, n, "nestvm-net");
	if (r < 0)
		goto err_msg;
	*out = &n->vdev;
	return 0;

err_msg:
	snprintf(err, errlen, "%s", strerror(-r));
err:
	net_destroy(&n->vdev);
	return r;
}

void virtio_net_get_stats(struct virtio_dev *dev, struct virtio_net_stats *st)
{
	struct virtio_net *n = to_net(dev);

	st->rx_frames = atomic_load(&n->rx_frames);
	st->rx_bytes = atomic_load(&n->rx_bytes);
	st->rx_dropped = atomic_load(&n->rx_dropped);
	st->tx_frames = atomic_load(&n->tx_frames);
	st->tx_bytes = atomic_load(&n->tx_bytes);
	st->tx_dropped = atomic_load(&n->tx_dropped);
	st->tx_spoofed = atomic_load(&n->tx_spoofed);
	st->link_up = atomic_load(&n->link_up);
}

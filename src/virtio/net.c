/* virtio-net: a worker thread moves frames between the queues and the
 * backend. It polls the backend and an eventfd the transport's notify writes
 * (notify runs on a vCPU and must not block). Transmit chains are sent
 * straight from guest memory; received frames land in a buffer of the
 * device's first, since only then is their length known, which mergeable
 * receive buffers need. Every length and every header field comes from a
 * guest or a peer and is checked first.
 *
 * Offloads: the guest may hand over frames with a partial checksum and TCP
 * frames of up to 64 KiB (CSUM, HOST_TSO4/6), and may take them
 * (GUEST_CSUM, GUEST_TSO4/6), with the virtio-net header carried through
 * the backend. Where a backend carries no header (a socket), or the guest
 * did not negotiate what a frame asks of it, the device finishes the frame
 * itself (net/offload.h): the checksum, or the TCP segments. */
#include "virtio/net.h"
#include "sandbox.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NET_F_CSUM              0
#define NET_F_GUEST_CSUM        1
#define NET_F_MAC               5
#define NET_F_GUEST_TSO4        7
#define NET_F_GUEST_TSO6        8
#define NET_F_GUEST_ECN         9
#define NET_F_HOST_TSO4         11
#define NET_F_HOST_TSO6         12
#define NET_F_HOST_ECN          13
#define NET_F_MRG_RXBUF         15
#define NET_F_STATUS            16
#define NET_S_LINK_UP           1u

#define NET_FEATURES (VIRTIO_BIT(NET_F_CSUM) | VIRTIO_BIT(NET_F_GUEST_CSUM) | VIRTIO_BIT(NET_F_MAC) | \
		      VIRTIO_BIT(NET_F_GUEST_TSO4) | VIRTIO_BIT(NET_F_GUEST_TSO6) |                \
		      VIRTIO_BIT(NET_F_GUEST_ECN) | VIRTIO_BIT(NET_F_HOST_TSO4) |                  \
		      VIRTIO_BIT(NET_F_HOST_TSO6) | VIRTIO_BIT(NET_F_HOST_ECN) |                   \
		      VIRTIO_BIT(NET_F_MRG_RXBUF) | VIRTIO_BIT(NET_F_STATUS))

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
#define NET_MRG_MAX             64      /* mergeable buffers one frame may take */

struct virtio_net {
	struct virtio_dev vdev;         /* first: the ops get this pointer */
	struct net_backend be;
	uint8_t mac[NET_MAC_LEN];
	struct virtio_poller worker;    /* polls the backend and the kicks */

	/* The worker's own. */
	struct virtq_elem tx;
	struct virtq_elem rx[NET_MRG_MAX];
	unsigned int rx_nheld;          /* rx[0..rx_nheld) popped, not yet filled */
	bool rx_starved;                /* the guest gave no buffers: wait for a kick */
	struct iovec *iov;
	unsigned int iov_cap;
	/* A received frame not yet delivered, and where its delivery stands:
	 * whole (rx_iter off) or as the finished frames rx_iter writes. */
	struct net_vnet_hdr rx_hdr;
	uint8_t *rx_frame;              /* NET_FRAME_MAX + 1 bytes */
	size_t rx_len;
	bool rx_have;
	bool rx_iter_on;
	struct net_offload_iter rx_iter;
	uint8_t *rx_seg;                /* the finished frame rx_iter wrote last */
	size_t rx_seg_len;              /* 0: write the next one */
	/* Transmit: a frame the backend could not take yet, and the rest of
	 * one finished here (tx_frame, tx_iter). */
	struct net_vnet_hdr hold_hdr;
	uint8_t *hold;                  /* NET_FRAME_MAX bytes */
	size_t hold_len;
	bool tx_held;
	struct net_vnet_hdr tx_hdr;
	uint8_t *tx_frame;              /* NET_FRAME_MAX bytes */
	bool tx_iter_on;
	struct net_offload_iter tx_iter;
	uint64_t next_reconnect_ns;

	_Atomic bool link_up;
	_Atomic uint64_t rx_frames, rx_bytes, rx_dropped;
	_Atomic uint64_t tx_frames, tx_bytes, tx_dropped, tx_spoofed;
	_Atomic uint64_t rx_offloaded, tx_offloaded, finished;
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

/* What the device holds of the rings and frames in flight, let go. */
static void net_drop_state(struct virtio_net *n)
{
	n->rx_nheld = 0;
	n->rx_have = false;
	n->rx_iter_on = false;
	n->tx_held = false;
	n->tx_iter_on = false;
}

/* The backend went away: the link goes down, and a switch port is dialled
 * again every second from the worker loop. */
static void net_backend_lost(struct virtio_net *n, const char *why)
{
	if (n->be.fd >= 0) {
		close(n->be.fd);
		n->be.fd = -1;
	}
	n->rx_have = n->rx_iter_on = false;
	n->tx_held = n->tx_iter_on = false;
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

/* Counts what the backend said of a frame sent; false when it is full. */
static bool net_tx_result(struct virtio_net *n, ssize_t r)
{
	if (r == -EAGAIN)
		return false;
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

/* Sends what is held and what is left of a frame finished here; false while
 * the backend is full. */
static bool net_tx_drain(struct virtio_net *n)
{
	if (n->tx_held) {
		struct iovec v = { n->hold, n->hold_len };

		if (n->be.fd < 0) {
			n->tx_held = false;
		} else {
			if (!net_tx_result(n, net_backend_send(&n->be, &n->hold_hdr, &v, 1)))
				return false;
			n->tx_held = false;
		}
	}
	while (n->tx_iter_on) {
		size_t len = net_offload_next(&n->tx_iter, n->hold, NET_FRAME_MAX);
		struct iovec v = { n->hold, len };

		if (!len || n->be.fd < 0) {
			n->tx_iter_on = false;
			break;
		}
		memset(&n->hold_hdr, 0, sizeof(n->hold_hdr));
		if (!net_tx_result(n, net_backend_send(&n->be, &n->hold_hdr, &v, 1))) {
			n->hold_len = len;
			n->tx_held = true;
			return false;
		}
	}
	return true;
}

/* Sends what a transmit chain holds after its header; false when the
 * backend is full and the frame (or what is left of it) waits. */
static bool net_tx_one(struct virtio_net *n, const struct virtq_elem *e)
{
	struct net_vnet_hdr h;
	uint64_t len = e->out_len;
	const char *why;
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
	(void)virtq_elem_read(e, 0, &h, sizeof(h));
	/* The driver must not set these; a peer must not believe them. */
	h.flags &= (uint8_t)~NET_HDR_F_DATA_VALID;
	h.num_buffers = 0;
	if (net_hdr_offloaded(&h))
		stat_add(&n->tx_offloaded, 1);
	if (!net_hdr_offloaded(&h) || n->be.vnet_hdr) {
		/* Straight from guest memory; what is behind the backend (the
		 * switch, the kernel) checks an offloaded frame's header. */
		k = virtq_elem_out_slice(e, NET_VNET_HDR_LEN, len, n->iov, n->iov_cap);
		if (k < 0) {
			stat_add(&n->tx_dropped, 1);
			return true;
		}
		r = net_backend_send(&n->be, &h, n->iov, k);
		if (r == -EAGAIN) {
			/* Keep the frame, give the buffer back, and take no more until
			 * the backend has room: back-pressure instead of loss. */
			n->hold_hdr = h;
			n->hold_len = virtq_elem_read(e, NET_VNET_HDR_LEN, n->hold, (size_t)len);
			n->tx_held = true;
			return false;
		}
		return net_tx_result(n, r);
	}
	/* A backend without headers: finish the frame here. */
	n->tx_hdr = h;
	(void)virtq_elem_read(e, NET_VNET_HDR_LEN, n->tx_frame, (size_t)len);
	if (net_offload_begin(&n->tx_iter, &n->tx_hdr, n->tx_frame, (size_t)len, &why) < 0) {
		stat_add(&n->tx_dropped, 1);
		virtio_dev_warn(&n->vdev, "transmit chain %u: its header does not fit the frame (%s); "
				"dropped", e->head, why);
		return true;
	}
	stat_add(&n->finished, 1);
	n->tx_iter_on = true;
	return net_tx_drain(n);
}

/* Returns whether the transmit queue may have more for us. */
static bool net_tx(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vqs[NET_TXQ];
	unsigned int done = 0, unsignalled = 0;
	bool room = net_tx_drain(n);

	while (room && done < NET_BUDGET) {
		if (virtq_pop(vq, &n->tx) < 0)
			break;
		room = net_tx_one(n, &n->tx);
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

/* Whether the guest negotiated everything the frame's header asks of it. */
static bool net_guest_takes(struct virtio_net *n, const struct net_vnet_hdr *h)
{
	unsigned int type = h->gso_type & ~NET_HDR_GSO_ECN;

	if ((h->flags & NET_HDR_F_NEEDS_CSUM) && !virtio_dev_has(&n->vdev, NET_F_GUEST_CSUM))
		return false;
	if (type == NET_HDR_GSO_TCPV4 && !virtio_dev_has(&n->vdev, NET_F_GUEST_TSO4))
		return false;
	if (type == NET_HDR_GSO_TCPV6 && !virtio_dev_has(&n->vdev, NET_F_GUEST_TSO6))
		return false;
	if ((h->gso_type & NET_HDR_GSO_ECN) && !virtio_dev_has(&n->vdev, NET_F_GUEST_ECN))
		return false;
	return true;
}

enum net_put { NET_PUT_DONE, NET_PUT_DROPPED, NET_PUT_STARVED };

/* Gives the queue's buffers held back (the most recent first). */
static void net_rx_unpop(struct virtio_net *n)
{
	while (n->rx_nheld)
		virtq_unpop(&n->vdev.vqs[NET_RXQ], &n->rx[--n->rx_nheld]);
}

/* Puts one frame behind header h into receive buffers: one buffer, or with
 * mergeable buffers as many as it takes (num_buffers says how many). */
static enum net_put net_rx_put(struct virtio_net *n, struct net_vnet_hdr h, const uint8_t *frame, size_t len)
{
	struct virtqueue *vq = &n->vdev.vqs[NET_RXQ];
	bool mrg = virtio_dev_has(&n->vdev, NET_F_MRG_RXBUF);
	unsigned int max = mrg ? NET_MRG_MAX : 1;
	uint64_t need = NET_VNET_HDR_LEN + len, room = 0;
	uint32_t used[NET_MRG_MAX];
	size_t off = 0;

	for (unsigned int i = 0; i < n->rx_nheld; i++)
		room += n->rx[i].in_len;
	while (room < need && n->rx_nheld < max) {
		struct virtq_elem *e = &n->rx[n->rx_nheld];

		if (virtq_pop(vq, e) < 0) {
			n->rx_starved = true;
			return NET_PUT_STARVED;
		}
		n->rx_nheld++;
		if (e->in_len < (mrg ? NET_VNET_HDR_LEN : NET_VNET_HDR_LEN + NET_ETH_HLEN)) {
			virtio_dev_warn(&n->vdev, "receive buffer %u of %llu bytes cannot hold a "
					"header%s; returned empty", e->head, (unsigned long long)e->in_len,
					mrg ? "" : " and a frame");
			n->rx_nheld--;
			virtq_push(vq, e, 0);
			continue;
		}
		room += e->in_len;
	}
	if (room < need) {
		/* Never cut a frame: drop it and keep the buffers for the next. */
		stat_add(&n->rx_dropped, 1);
		if (mrg)
			net_rx_unpop(n);
		return NET_PUT_DROPPED;
	}
	/* Header first, then the frame across the buffers in order. */
	for (unsigned int i = 0; i < n->rx_nheld; i++) {
		const struct virtq_elem *e = &n->rx[i];
		uint64_t at = 0, chunk;

		if (i == 0)
			at = NET_VNET_HDR_LEN;  /* the header goes in last, with num_buffers */
		chunk = MIN(e->in_len - at, (uint64_t)(len - off));
		(void)virtq_elem_write(e, at, frame + off, (size_t)chunk);
		off += (size_t)chunk;
		used[i] = (uint32_t)(at + chunk);
		if (off == len) {
			h.num_buffers = (uint16_t)(i + 1);
			(void)virtq_elem_write(&n->rx[0], 0, &h, sizeof(h));
			/* Buffers taken beyond what the frame needed stay for the next. */
			for (unsigned int k = n->rx_nheld; k-- > i + 1;)
				virtq_unpop(vq, &n->rx[k]);
			virtq_push_n(vq, n->rx, used, i + 1);
			n->rx_nheld = 0;
			break;
		}
	}
	stat_add(&n->rx_frames, 1);
	stat_add(&n->rx_bytes, len);
	return NET_PUT_DONE;
}

/* Delivers the received frame n->rx_frame, whole or finished into frames;
 * false when the guest has no buffers for it yet (it stays). */
static bool net_rx_deliver(struct virtio_net *n, unsigned int *delivered)
{
	struct net_vnet_hdr plain = { 0 };

	if (!n->rx_iter_on) {
		struct net_vnet_hdr h = n->rx_hdr;

		if (!virtio_dev_has(&n->vdev, NET_F_GUEST_CSUM))
			h.flags &= (uint8_t)~NET_HDR_F_DATA_VALID;
		if (net_rx_put(n, h, n->rx_frame, n->rx_len) == NET_PUT_STARVED)
			return false;
		(*delivered)++;
		n->rx_have = false;
		return true;
	}
	/* Checksums computed here are known good. */
	if (virtio_dev_has(&n->vdev, NET_F_GUEST_CSUM))
		plain.flags = NET_HDR_F_DATA_VALID;
	for (;;) {
		if (!n->rx_seg_len) {
			n->rx_seg_len = net_offload_next(&n->rx_iter, n->rx_seg, NET_FRAME_MAX);
			if (!n->rx_seg_len)
				break;
		}
		if (net_rx_put(n, plain, n->rx_seg, n->rx_seg_len) == NET_PUT_STARVED)
			return false;
		(*delivered)++;
		n->rx_seg_len = 0;
	}
	n->rx_iter_on = false;
	n->rx_have = false;
	return true;
}

/* Takes one frame from the backend into n->rx_frame: 1, 0 when none is
 * waiting or the backend failed, -1 for one dropped. */
static int net_rx_take(struct virtio_net *n)
{
	struct iovec v = { n->rx_frame, NET_FRAME_MAX + 1 };
	const char *why;
	ssize_t r;

	r = net_backend_recv(&n->be, &n->rx_hdr, &v, 1);
	if (r == -EAGAIN)
		return 0;
	if (r < 0) {
		net_backend_lost(n, r == -EPIPE ? "the backend closed the connection" : strerror((int)-r));
		return 0;
	}
	if (r == 0)
		return -1;
	if (r > NET_FRAME_MAX) {
		stat_add(&n->rx_dropped, 1);
		return -1;
	}
	n->rx_len = (size_t)r;
	n->rx_hdr.num_buffers = 0;
	if (net_hdr_offloaded(&n->rx_hdr)) {
		struct net_offload_info info;

		stat_add(&n->rx_offloaded, 1);
		if (net_offload_check(&n->rx_hdr, n->rx_frame, n->rx_len, &info, &why) < 0) {
			stat_add(&n->rx_dropped, 1);
			return -1;
		}
		if (!net_guest_takes(n, &n->rx_hdr)) {
			if (net_offload_begin(&n->rx_iter, &n->rx_hdr, n->rx_frame, n->rx_len, &why) < 0) {
				stat_add(&n->rx_dropped, 1);
				return -1;
			}
			stat_add(&n->finished, 1);
			n->rx_iter_on = true;
			n->rx_seg_len = 0;
		}
	}
	n->rx_have = true;
	return 1;
}

/* Fills receive buffers from the backend; returns whether more may wait. */
static bool net_rx(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vqs[NET_RXQ];
	unsigned int done = 0, delivered = 0, signalled = 0;
	bool more = false;

	while (!n->rx_starved) {
		if (done == NET_BUDGET) {
			more = true;
			break;
		}
		if (!n->rx_have) {
			int t;

			if (n->be.fd < 0)
				break;
			t = net_rx_take(n);
			if (t == 0)
				break;
			done++;
			if (t < 0)
				continue;
		}
		if (!net_rx_deliver(n, &delivered))
			break;
		if (delivered - signalled >= NET_BATCH) {
			virtq_signal(vq);
			signalled = delivered;
		}
	}
	if (delivered != signalled)
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
			net_drop_state(n);

		/* A kick may be new receive buffers; and a broken device holds nothing. */
		if (p[0].revents & POLLIN)
			n->rx_starved = false;
		if (virtio_dev_is_broken(&n->vdev))
			n->rx_nheld = 0;
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

/* For a save: the worker finishes its round and waits; receive buffers it
 * held for the next frame go back to the ring, where the restored device
 * finds them again. A frame in flight inside the device (received and not
 * yet delivered, or held for a full backend) is lost, as on a wire. */
static void net_hold(struct virtio_dev *dev)
{
	struct virtio_net *n = to_net(dev);

	virtio_poller_hold(&n->worker);
	net_rx_unpop(n);
	net_drop_state(n);
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
	for (unsigned int i = 0; i < NET_MRG_MAX; i++)
		virtq_elem_free(&n->rx[i]);
	virtq_elem_free(&n->tx);
	free(n->iov);
	free(n->hold);
	free(n->tx_frame);
	free(n->rx_frame);
	free(n->rx_seg);
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
	struct net_backend_opts bo;
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

	bo = o->backend;
	bo.offloads = true;     /* frames cross the switch with their headers */
	r = net_backend_open(&n->be, &bo, err, errlen);
	if (r < 0)
		goto err;
	r = virtio_dev_init(&n->vdev, &net_ops, o->name ? o->name : "virtio-net", NET_FEATURES, qsize,
			    NET_CONFIG_SIZE);
	if (r < 0)
		goto err_msg;
	r = virtq_elem_init(&n->tx, qsize);
	for (unsigned int i = 0; r == 0 && i < NET_MRG_MAX; i++)
		r = virtq_elem_init(&n->rx[i], qsize);
	if (r < 0)
		goto err_msg;
	n->iov = calloc(qsize, sizeof(*n->iov));
	n->iov_cap = qsize;
	n->hold = malloc(NET_FRAME_MAX);
	n->tx_frame = malloc(NET_FRAME_MAX);
	n->rx_frame = malloc(NET_FRAME_MAX + 1);
	n->rx_seg = malloc(NET_FRAME_MAX);
	if (!n->iov || !n->hold || !n->tx_frame || !n->rx_frame || !n->rx_seg) {
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
	st->rx_offloaded = atomic_load(&n->rx_offloaded);
	st->tx_offloaded = atomic_load(&n->tx_offloaded);
	st->finished = atomic_load(&n->finished);
	st->link_up = atomic_load(&n->link_up);
}

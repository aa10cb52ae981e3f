/* virtio-net (virtio 1.2, 5.1): one receive and one transmit queue, the
 * adapter's MAC address and link status in its configuration, checksum and
 * TCP segmentation offloads both ways, mergeable receive buffers. Frames go
 * to and come from a net backend: a nestvm switch port, a TAP device or a
 * socket. */
#ifndef NESTVM_VIRTIO_NET_H
#define NESTVM_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/backend.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_NET           1

struct virtio_net_opts {
	const char *name;               /* for log lines; NULL: "virtio-net" */
	/* kind, switch socket path or TAP name or fd, mac, mac_spoofing, label */
	struct net_backend_opts backend;
	uint16_t queue_size;            /* 0: 256; a power of two, 16 to 1024 */
};

/* Counted by the device; read at any time. */
struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes;   /* delivered to the guest */
	uint64_t rx_dropped;            /* larger than the guest's buffers, or a bad header */
	uint64_t tx_frames, tx_bytes;   /* taken by the backend */
	uint64_t tx_dropped;            /* malformed, refused or the backend gone */
	uint64_t tx_spoofed;            /* TAP backend, spoofing off: another source MAC */
	uint64_t rx_offloaded;          /* received with a partial checksum or as TSO */
	uint64_t tx_offloaded;          /* sent so by the guest */
	uint64_t finished;              /* frames whose offloads the device did itself */
	bool link_up;
};

/* Opens the backend (err says why it could not: the switch is not running,
 * the MAC is in use on it, the TAP device needs permissions...) and starts
 * the device's worker thread. The backend's fd is the device's from now on,
 * even on failure. */
MUST_CHECK int virtio_net_create(struct virtio_dev **out, const struct virtio_net_opts *opts,
				 char *err, size_t errlen);
void virtio_net_get_stats(struct virtio_dev *dev, struct virtio_net_stats *st);

#endif

/* How a VM's network adapter reaches the outside: a port of a nestvm switch
 * (a SOCK_SEQPACKET connection to its daemon, one Ethernet frame per
 * message after a hello), a TAP device, or a message socket handed over by
 * the caller (tests). Each frame crosses this interface with a virtio-net
 * header (net/offload.h); a backend that cannot carry one (a plain switch
 * port, a socket) takes only headers that ask for nothing and gives zeroes. */
#ifndef NESTVM_NET_BACKEND_H
#define NESTVM_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "net/offload.h"
#include "util.h"

#define NET_MAC_LEN             6
#define NET_ETH_HLEN            14
#define NET_FRAME_MAX           65535   /* no frame is longer, whatever the backend */
#define NET_VNET_HDR_LEN        12      /* struct virtio_net_hdr with num_buffers (virtio 1.x) */

/* ---- The switch's port protocol ----
 * The adapter connects to the switch's ports.sock and sends one hello; the
 * daemon answers with an ack (status 0, the port number and the flags it
 * granted, or -errno and a message). Then every message either way is one
 * Ethernet frame, behind a 12-byte virtio-net header if VNET_HDR was
 * granted: offloaded frames (a partial checksum, TSO) then cross the switch
 * whole, and the switch finishes them for ports that cannot take them. */
#define NET_SWITCH_MAGIC        0x5357564eu     /* "NVSW" */
#define NET_SWITCH_VERSION      2
#define NET_SWITCH_F_SPOOFING   1u
#define NET_SWITCH_F_VNET_HDR   2u
#define NET_SWITCH_LABEL        48

struct net_switch_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;                 /* NET_SWITCH_F_* */
	uint8_t mac[NET_MAC_LEN];
	uint8_t reserved[2];
	char label[NET_SWITCH_LABEL];   /* NUL-padded: how "switch show" names the port */
};

struct net_switch_ack {
	uint32_t magic;
	uint16_t version;
	uint16_t port;
	int32_t status;                 /* 0, or -errno */
	uint16_t flags;                 /* NET_SWITCH_F_* granted */
	uint16_t reserved;
	char msg[112];                  /* NUL-terminated: why, when status < 0 */
};

enum net_backend_kind {
	NET_BACKEND_NONE,
	NET_BACKEND_SWITCH,             /* path: the switch's ports.sock */
	NET_BACKEND_TAP,                /* tap: an interface name; created if missing (root) */
	NET_BACKEND_FD,                 /* fd: a connected SOCK_SEQPACKET or SOCK_DGRAM socket */
};

struct net_backend_opts {
	enum net_backend_kind kind;
	const char *path;
	const char *tap;
	int fd;                         /* taken over by net_backend_open, even on failure */
	bool tap_open;                  /* TAP: fd is the device, open already (net_tap_open) */
	uint8_t mac[NET_MAC_LEN];       /* the adapter's address */
	bool mac_spoofing;              /* may it send frames from other addresses? */
	bool offloads;                  /* switch: ask for frames with their headers */
	const char *label;              /* NULL: the MAC */
};

struct net_backend_stats {
	uint64_t tx_spoof_dropped;      /* TAP only: the switch does this check itself */
};

struct net_backend {
	enum net_backend_kind kind;
	int fd;
	bool vnet_hdr;                  /* TAP, a switch that granted it: frames carry the header */
	bool want_vnet_hdr;             /* switch: ask for it (again when reconnecting) */
	bool spoofing;
	uint8_t mac[NET_MAC_LEN];
	unsigned int port;              /* the switch's port number */
	char path[1024];
	char label[NET_SWITCH_LABEL];
	bool dgram;                     /* FD: SOCK_DGRAM, where an empty message is no end */
	uint8_t *overflow;              /* TAP: where the tail of a frame too big for its buffer goes */
	struct iovec *scratch;          /* TAP: header, frame, overflow */
	struct net_backend_stats st;
};

/* Opens the backend; err says what went wrong and, where known, how to fix
 * it ("switch 'lan' is not running (nestvm switch start lan)"). */
MUST_CHECK int net_backend_open(struct net_backend *be, const struct net_backend_opts *o,
				char *err, size_t errlen);
/* Connects to the switch again after the daemon went away (NET_BACKEND_SWITCH
 * only; -ENOTSUP for the others). */
MUST_CHECK int net_backend_reconnect(struct net_backend *be, char *err, size_t errlen);
void net_backend_close(struct net_backend *be);

#define NET_BACKEND_MAX_IOV     1000    /* buffers per frame, within IOV_MAX with our own */

/* Sends the frame in iov[0..n) with its header h (NULL: none), non-blocking:
 * the frame's length, -EAGAIN when the backend cannot take it now (wait for
 * POLLOUT), -EPIPE when the peer has gone, -EINVAL for an empty frame or a
 * header that asks for offloads of a backend without headers, -EPERM for a
 * spoofed one (TAP). */
MUST_CHECK ssize_t net_backend_send(struct net_backend *be, const struct net_vnet_hdr *h,
				    const struct iovec *iov, int n);
/* Receives one frame into iov[0..n) and its header into *h (zeroes from a
 * backend without headers), non-blocking. Returns the frame's full length,
 * which may exceed what the buffers hold (the frame is then consumed and the
 * caller drops it); -EAGAIN when none is waiting; -EPIPE at end. */
MUST_CHECK ssize_t net_backend_recv(struct net_backend *be, struct net_vnet_hdr *h,
				    const struct iovec *iov, int n);

/* Opens (creating it if missing and allowed) the TAP device ifname with a
 * 12-byte virtio-net header, non-blocking, and brings its link up where this
 * process may. Returns the fd. With offloads, the kernel may hand over frames
 * with partial checksums and TCP frames of up to 64 KiB (their headers say
 * so); without, only finished frames. Frames written may be offloaded either
 * way. */
MUST_CHECK int net_tap_open(const char *ifname, bool offloads, char *err, size_t errlen);

#endif

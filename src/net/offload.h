/* virtio-net's offloads done in software. A frame may travel with the
 * 12-byte header virtio-net defines (virtio 1.2, 5.1.6): a checksum the
 * sender left for someone else to finish (NEEDS_CSUM: the field holds the
 * pseudo-header's sum, the rest is to be added from csum_start on), and a
 * TCP frame of up to 64 KiB to be cut into segments of gso_size bytes of
 * payload (TSO/GSO). A receiver that negotiated the same offloads takes the
 * frame as it is; for one that did not, these functions do the work: the
 * checksum, or the segments, each a complete frame with its IP and TCP
 * headers and checksums.
 *
 * Pure: no I/O, no allocation. Every offset in a header comes from a guest
 * and is checked against the frame before anything is read or written. */
#ifndef NESTVM_NET_OFFLOAD_H
#define NESTVM_NET_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* struct virtio_net_hdr with num_buffers; little-endian, as x86 is. */
struct net_vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;               /* a hint only: never trusted */
	uint16_t gso_size;              /* payload bytes per segment */
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;           /* receive side, mergeable buffers */
};
_Static_assert(sizeof(struct net_vnet_hdr) == 12, "the virtio 1.x header is 12 bytes");

#define NET_HDR_F_NEEDS_CSUM    1u
#define NET_HDR_F_DATA_VALID    2u
#define NET_HDR_GSO_NONE        0u
#define NET_HDR_GSO_TCPV4       1u
#define NET_HDR_GSO_UDP         3u
#define NET_HDR_GSO_TCPV6       4u
#define NET_HDR_GSO_ECN         0x80u

/* Segments one frame may be cut into: 64 KiB at the smallest MSS Linux
 * sends (tcp_min_snd_mss, 48), with room. */
#define NET_GSO_MAX_SEGS        1400

/* Whether the header asks anything of a receiver: a checksum to finish or
 * segments to cut. */
static inline bool net_hdr_offloaded(const struct net_vnet_hdr *h)
{
	return (h->flags & NET_HDR_F_NEEDS_CSUM) || h->gso_type != NET_HDR_GSO_NONE;
}

/* What checking a header against its frame found. */
struct net_offload_info {
	bool gso;                       /* TSO: cut into segments */
	bool v6;                        /* GSO: IPv6, else IPv4 */
	uint16_t l3, l4, payload;       /* GSO: offsets of the IP and TCP headers and the payload */
	unsigned int nsegs;             /* frames it becomes: 1 without GSO */
	size_t seg_max;                 /* the longest of them, in bytes */
};

/* Checks h against frame[0, len): the flags and GSO type known (TCP over
 * IPv4 or IPv6, with or without ECN; no UDP fragmentation offload), a
 * checksum's place inside the frame, and for GSO a TCP segment behind an
 * IPv4 or IPv6 header (after at most two VLAN tags) that csum_start points
 * at, at most NET_GSO_MAX_SEGS segments. 0 with info filled in, or -EINVAL
 * with why (a static string). */
MUST_CHECK int net_offload_check(const struct net_vnet_hdr *h, const uint8_t *frame, size_t len,
				 struct net_offload_info *info, const char **why);

/* Cutting a checked frame into finished ones, one at a time. */
struct net_offload_iter {
	const struct net_vnet_hdr *h;
	const uint8_t *frame;
	size_t len;
	struct net_offload_info info;
	unsigned int next;              /* the segment net_offload_next writes next */
};

/* Checks as net_offload_check does and starts the iteration. */
MUST_CHECK int net_offload_begin(struct net_offload_iter *it, const struct net_vnet_hdr *h,
				 const uint8_t *frame, size_t len, const char **why);
/* Writes the next finished frame into out (cap >= info.seg_max) and returns
 * its length; 0 when every segment has been written. Without GSO, the one
 * frame is the original with its checksum finished. */
size_t net_offload_next(struct net_offload_iter *it, uint8_t *out, size_t cap);

/* The Internet checksum (RFC 1071) of buf[0, len), added to sum, not folded. */
uint32_t net_csum_add(uint32_t sum, const uint8_t *buf, size_t len);
/* The folded, complemented checksum of a 32-bit sum. */
uint16_t net_csum_fold(uint32_t sum);

#endif

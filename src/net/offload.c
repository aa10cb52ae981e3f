/* Software checksum and TCP segmentation for frames that carry a virtio-net
 * header (see offload.h). Frames are read as bytes in network order; nothing
 * is read past len, and a segment is written only into a buffer its caller
 * said was large enough. */
#include "net/offload.h"

#include <errno.h>
#include <string.h>

#define ETH_HLEN                14
#define ETHERTYPE_IPV4          0x0800
#define ETHERTYPE_IPV6          0x86dd
#define ETHERTYPE_VLAN          0x8100
#define ETHERTYPE_QINQ          0x88a8
#define IPPROTO_TCP_            6
#define TCP_FIN                 0x01
#define TCP_PSH                 0x08
#define TCP_CWR                 0x80
#define TCP_CSUM_OFFSET         16

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

uint32_t net_csum_add(uint32_t sum, const uint8_t *buf, size_t len)
{
	uint64_t s = sum;
	size_t i = 0;

	for (; i + 4 <= len; i += 4)
		s += get32(buf + i);
	for (; i + 2 <= len; i += 2)
		s += get16(buf + i);
	if (i < len)
		s += (uint32_t)buf[i] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	/* Folding the 32-bit words into 16 bits later gives the same result as
	 * summing 16-bit words: a 32-bit word is two of them, carries wrap. */
	s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

uint16_t net_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int net_offload_check(const struct net_vnet_hdr *h, const uint8_t *frame, size_t len,
		      struct net_offload_info *info, const char **why)
{
	unsigned int type = h->gso_type & ~NET_HDR_GSO_ECN;
	size_t off = ETH_HLEN, l4, payload, plen;
	uint16_t ethertype;

	memset(info, 0, sizeof(*info));
	info->nsegs = 1;
	info->seg_max = len;
	if (h->flags & ~(NET_HDR_F_NEEDS_CSUM | NET_HDR_F_DATA_VALID)) {
		*why = "unknown header flags";
		return -EINVAL;
	}
	if (len < ETH_HLEN) {
		*why = "shorter than an Ethernet header";
		return -EINVAL;
	}
	if (type != NET_HDR_GSO_NONE && type != NET_HDR_GSO_TCPV4 && type != NET_HDR_GSO_TCPV6) {
		*why = type == NET_HDR_GSO_UDP ? "UDP fragmentation offload is not offered"
					       : "unknown GSO type";
		return -EINVAL;
	}
	if (type == NET_HDR_GSO_NONE && h->gso_type) {
		*why = "ECN flag without GSO";
		return -EINVAL;
	}
	if ((h->flags & NET_HDR_F_NEEDS_CSUM) &&
	    (h->csum_start < ETH_HLEN || (size_t)h->csum_start + h->csum_offset + 2 > len)) {
		*why = "checksum start or field outside the frame";
		return -EINVAL;
	}
	if (type == NET_HDR_GSO_NONE)
		return 0;

	/* TSO: a TCP segment behind IPv4 or IPv6, whose checksum is partial. */
	if (!(h->flags & NET_HDR_F_NEEDS_CSUM) || !h->gso_size) {
		*why = !h->gso_size ? "GSO with a segment size of 0" : "GSO without a partial checksum";
		return -EINVAL;
	}
	ethertype = get16(frame + 12);
	for (int tags = 0; tags < 2 && (ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ); tags++) {
		if (off + 4 > len) {
			*why = "VLAN tag cut short";
			return -EINVAL;
		}
		ethertype = get16(frame + off + 2);
		off += 4;
	}
	if (ethertype == ETHERTYPE_IPV4 && type == NET_HDR_GSO_TCPV4) {
		const uint8_t *ip = frame + off;
		size_t ihl;

		if (off + 20 > len || ip[0] >> 4 != 4 || (ihl = (size_t)(ip[0] & 15) * 4) < 20 ||
		    off + ihl > len) {
			*why = "IPv4 header malformed or cut short";
			return -EINVAL;
		}
		if (ip[9] != IPPROTO_TCP_ || (get16(ip + 6) & 0x3fff)) {
			*why = ip[9] != IPPROTO_TCP_ ? "GSO TCPv4 frame is not TCP" : "GSO frame is an IP fragment";
			return -EINVAL;
		}
		l4 = off + ihl;
	} else if (ethertype == ETHERTYPE_IPV6 && type == NET_HDR_GSO_TCPV6) {
		const uint8_t *ip = frame + off;

		if (off + 40 > len || ip[0] >> 4 != 6) {
			*why = "IPv6 header malformed or cut short";
			return -EINVAL;
		}
		if (ip[6] != IPPROTO_TCP_) {
			*why = "GSO TCPv6 frame has extension headers or is not TCP";
			return -EINVAL;
		}
		info->v6 = true;
		l4 = off + 40;
	} else {
		*why = "GSO type does not match the frame's network protocol";
		return -EINVAL;
	}
	if (h->csum_start != l4 || h->csum_offset != TCP_CSUM_OFFSET) {
		*why = "GSO checksum is not the TCP header's";
		return -EINVAL;
	}
	if (l4 + 20 > len || (size_t)(frame[l4 + 12] >> 4) * 4 < 20 ||
	    l4 + (size_t)(frame[l4 + 12] >> 4) * 4 > len) {
		*why = "TCP header malformed or cut short";
		return -EINVAL;
	}
	payload = l4 + (size_t)(frame[l4 + 12] >> 4) * 4;
	plen = len - payload;
	info->gso = true;
	info->l3 = (uint16_t)off;
	info->l4 = (uint16_t)l4;
	info->payload = (uint16_t)payload;
	info->nsegs = plen ? (unsigned int)((plen + h->gso_size - 1) / h->gso_size) : 1;
	info->seg_max = payload + (plen < h->gso_size ? plen : h->gso_size);
	if (info->nsegs > NET_GSO_MAX_SEGS) {
		*why = "GSO frame would be cut into too many segments";
		return -EINVAL;
	}
	return 0;
}

int net_offload_begin(struct net_offload_iter *it, const struct net_vnet_hdr *h, const uint8_t *frame,
		      size_t len, const char **why)
{
	it->h = h;
	it->frame = frame;
	it->len = len;
	it->next = 0;
	return net_offload_check(h, frame, len, &it->info, why);
}

/* Segment i of a TSO frame into out: headers copied and fixed, payload. */
static size_t gso_segment(const struct net_offload_iter *it, unsigned int i, uint8_t *out)
{
	const struct net_offload_info *in = &it->info;
	size_t hl = in->payload, plen = it->len - hl, mss = it->h->gso_size;
	size_t off = (size_t)i * mss, n = plen - off < mss ? plen - off : mss, seglen = hl + n;
	uint8_t *ip = out + in->l3, *tcp = out + in->l4, flags;
	uint32_t sum;

	memcpy(out, it->frame, hl);
	memcpy(out + hl, it->frame + hl + off, n);
	if (in->v6) {
		put16(ip + 4, (uint16_t)(seglen - in->l3 - 40));
		sum = net_csum_add(0, ip + 8, 32);
	} else {
		size_t ihl = (size_t)(ip[0] & 15) * 4;

		put16(ip + 2, (uint16_t)(seglen - in->l3));
		put16(ip + 4, (uint16_t)(get16(ip + 4) + i));
		put16(ip + 10, 0);
		put16(ip + 10, net_csum_fold(net_csum_add(0, ip, ihl)));
		sum = net_csum_add(0, ip + 12, 8);
	}
	sum += IPPROTO_TCP_ + (uint32_t)(seglen - in->l4);
	put32(tcp + 4, get32(tcp + 4) + (uint32_t)off);
	flags = tcp[13];
	if (i + 1 < in->nsegs)
		flags &= (uint8_t)~(TCP_FIN | TCP_PSH);
	if (i > 0)
		flags &= (uint8_t)~TCP_CWR;
	tcp[13] = flags;
	put16(tcp + TCP_CSUM_OFFSET, 0);
	put16(tcp + TCP_CSUM_OFFSET, net_csum_fold(net_csum_add(sum, tcp, seglen - in->l4)));
	return seglen;
}

size_t net_offload_next(struct net_offload_iter *it, uint8_t *out, size_t cap)
{
	const struct net_vnet_hdr *h = it->h;
	size_t len;

	if (it->next >= it->info.nsegs || cap < it->info.seg_max)
		return 0;
	if (it->info.gso) {
		len = gso_segment(it, it->next, out);
	} else {
		memcpy(out, it->frame, it->len);
		len = it->len;
		if (h->flags & NET_HDR_F_NEEDS_CSUM) {
			uint16_t c = net_csum_fold(net_csum_add(0, out + h->csum_start, len - h->csum_start));

			/* As Linux does: a computed 0 goes out as 0xffff, which UDP
			 * reads as "checksummed" where 0 would mean "none". */
			put16(out + h->csum_start + h->csum_offset, c ? c : 0xffff);
		}
	}
	it->next++;
	return len;
}

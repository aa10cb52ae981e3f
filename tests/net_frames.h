/* TCP frames for the offload tests, built and checked here with their own
 * checksum code (byte pairs, RFC 1071 as written), not the code under test:
 * a TSO frame as Linux hands one to virtio-net (IPv4 or IPv6, optionally
 * behind a VLAN tag, its TCP checksum partial), and a check that a frame
 * has valid IP and TCP checksums. */
#ifndef NESTVM_TESTS_NET_FRAMES_H
#define NESTVM_TESTS_NET_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/offload.h"

#define NF_SEQ          0x01020304u
#define NF_IP_ID        0x1234u

static inline uint32_t nf_sum(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static inline uint16_t nf_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static inline void nf_put16(uint8_t *p, unsigned int v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline unsigned int nf_get16(const uint8_t *p)
{
	return (unsigned int)(p[0] << 8 | p[1]);
}

static inline uint32_t nf_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

struct nf_layout {
	size_t l3, l4, payload;         /* offsets */
	bool v6;
};

/* The TCP pseudo-header's sum for a TCP segment of tcp_len bytes. */
static inline uint32_t nf_pseudo(const uint8_t *f, const struct nf_layout *l, size_t tcp_len)
{
	uint32_t s = 0;

	if (l->v6)
		s = nf_sum(s, f + l->l3 + 8, 32);
	else
		s = nf_sum(s, f + l->l3 + 12, 8);
	return s + 6 + (uint32_t)(tcp_len >> 16) + (uint32_t)(tcp_len & 0xffff);
}

/* A TCP frame from 02:..:01 to 02:..:02 with payload bytes derived from
 * seed, TCP flags as given; h describes it as a TSO frame of mss-byte
 * segments (mss 0: a plain frame with a partial checksum). Returns its
 * length. */
static inline size_t nf_build(uint8_t *f, bool v6, bool vlan, size_t payload, uint8_t tcp_flags,
			      uint8_t seed, unsigned int mss, struct net_vnet_hdr *h, struct nf_layout *l)
{
	static const uint8_t dst[6] = { 2, 0, 0, 0, 0, 2 }, src[6] = { 2, 0, 0, 0, 0, 1 };
	size_t off = 12, len;
	uint8_t *ip, *tcp;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	if (vlan) {
		nf_put16(f + off, 0x8100);
		nf_put16(f + off + 2, 42);
		off += 4;
	}
	nf_put16(f + off, v6 ? 0x86dd : 0x0800);
	off += 2;
	l->l3 = off;
	l->v6 = v6;
	ip = f + off;
	if (v6) {
		memset(ip, 0, 40);
		ip[0] = 0x60;
		nf_put16(ip + 4, (unsigned int)(20 + payload));
		ip[6] = 6;
		ip[7] = 64;
		for (int i = 0; i < 16; i++) {
			ip[8 + i] = (uint8_t)(0x20 + i);
			ip[24 + i] = (uint8_t)(0x40 + i);
		}
		off += 40;
	} else {
		memset(ip, 0, 20);
		ip[0] = 0x45;
		nf_put16(ip + 2, (unsigned int)(40 + payload));
		nf_put16(ip + 4, NF_IP_ID);
		nf_put16(ip + 6, 0x4000);       /* don't fragment */
		ip[8] = 64;
		ip[9] = 6;
		memcpy(ip + 12, (const uint8_t[]){ 192, 0, 2, 1, 192, 0, 2, 2 }, 8);
		nf_put16(ip + 10, (uint16_t)~nf_fold(nf_sum(0, ip, 20)));
		off += 20;
	}
	l->l4 = off;
	tcp = f + off;
	memset(tcp, 0, 20);
	nf_put16(tcp, 40000);
	nf_put16(tcp + 2, 5201);
	tcp[4] = 0x01, tcp[5] = 0x02, tcp[6] = 0x03, tcp[7] = 0x04;
	tcp[12] = 5 << 4;
	tcp[13] = tcp_flags;
	nf_put16(tcp + 14, 65535);
	off += 20;
	l->payload = off;
	for (size_t i = 0; i < payload; i++)
		f[off + i] = (uint8_t)(seed + i * 7 + (i >> 8));
	len = off + payload;
	/* The partial checksum as Linux leaves it: the pseudo-header's folded
	 * sum (with the length for a plain frame; without for TSO). */
	nf_put16(tcp + 16, nf_fold(nf_pseudo(f, l, mss ? 0 : 20 + payload)));
	memset(h, 0, sizeof(*h));
	h->flags = NET_HDR_F_NEEDS_CSUM;
	h->csum_start = (uint16_t)l->l4;
	h->csum_offset = 16;
	if (mss) {
		h->gso_type = v6 ? NET_HDR_GSO_TCPV6 : NET_HDR_GSO_TCPV4;
		h->gso_size = (uint16_t)mss;
		h->hdr_len = (uint16_t)l->payload;
	}
	return len;
}

/* Whether the frame's IPv4 header checksum (if IPv4) and TCP checksum are
 * valid and its IP length fields match len. */
static inline bool nf_valid(const uint8_t *f, size_t len, const struct nf_layout *l)
{
	const uint8_t *ip = f + l->l3;

	if (l->v6) {
		if (nf_get16(ip + 4) != len - l->l3 - 40)
			return false;
	} else {
		if (nf_fold(nf_sum(0, ip, 20)) != 0xffff || nf_get16(ip + 2) != len - l->l3)
			return false;
	}
	return nf_fold(nf_sum(nf_pseudo(f, l, len - l->l4), f + l->l4, len - l->l4)) == 0xffff;
}

#endif

/* Tier 1: virtio-net offloads in software (net/offload.c). The checksum
 * against RFC 1071's worked example; a partial checksum finished; TSO frames
 * over IPv4, IPv6 and behind a VLAN tag cut into segments whose headers,
 * sequence numbers, flags, checksums and payload are each checked with the
 * test's own arithmetic; and every kind of header that does not describe its
 * frame refused with a reason. */
#include "harness.h"
#include "net_frames.h"
#include "net/offload.h"

#include <errno.h>

HARNESS_DEFINE;

static uint8_t frame[70000], seg[70000], joined[70000];

static void test_csum_rfc1071_example(void)
{
	/* RFC 1071, 3: the sum of these words is 0xddf2 (0x2ddf0 folded). */
	static const uint8_t w[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint8_t odd[3] = { 0x12, 0x34, 0x56 };

	CHECK_EQ(net_csum_fold(net_csum_add(0, w, sizeof(w))), (uint16_t)~0xddf2);
	/* Split at an even offset, the sum is the same. */
	CHECK_EQ(net_csum_fold(net_csum_add(net_csum_add(0, w, 2), w + 2, 6)), (uint16_t)~0xddf2);
	/* An odd tail counts as its high byte. */
	CHECK_EQ(net_csum_fold(net_csum_add(0, odd, 3)), (uint16_t)~(0x1234 + 0x5600));
	/* Sums past 32 bits fold. */
	memset(frame, 0xff, 65536);
	CHECK_EQ(net_csum_fold(net_csum_add(0, frame, 65536)), 0);
}

static void test_partial_checksum_finished(void)
{
	struct net_vnet_hdr h;
	struct net_offload_iter it;
	struct nf_layout l;
	const char *why = NULL;
	size_t len, n;

	for (int v6 = 0; v6 <= 1; v6++) {
		len = nf_build(frame, v6, false, 999, 0x18, 3, 0, &h, &l);
		CHECK(!nf_valid(frame, len, &l));
		CHECK_EQ(net_offload_begin(&it, &h, frame, len, &why), 0);
		CHECK_EQ(it.info.nsegs, 1);
		CHECK(!it.info.gso);
		n = net_offload_next(&it, seg, sizeof(seg));
		CHECK_EQ(n, len);
		CHECK(nf_valid(seg, n, &l));
		/* Only the checksum field changed. */
		CHECK(!memcmp(seg, frame, l.l4 + 16));
		CHECK(!memcmp(seg + l.l4 + 18, frame + l.l4 + 18, len - l.l4 - 18));
		CHECK_EQ(net_offload_next(&it, seg, sizeof(seg)), 0);
	}
	/* A frame asking for nothing comes out as it went in. */
	memset(&h, 0, sizeof(h));
	CHECK_EQ(net_offload_begin(&it, &h, frame, 100, &why), 0);
	CHECK_EQ(net_offload_next(&it, seg, sizeof(seg)), 100);
	CHECK(!memcmp(seg, frame, 100));
}

/* Cuts a TSO frame and checks every segment against the original. */
static void check_tso(bool v6, bool vlan, size_t payload, unsigned int mss, uint8_t flags)
{
	struct net_vnet_hdr h;
	struct net_offload_iter it;
	struct nf_layout l;
	const char *why = NULL;
	unsigned int want = (unsigned int)((payload + mss - 1) / mss), i = 0;
	size_t len, n, got = 0;

	len = nf_build(frame, v6, vlan, payload, flags, 9, mss, &h, &l);
	if (net_offload_begin(&it, &h, frame, len, &why) != 0)
		FAILF("v6 %d vlan %d payload %zu: refused: %s", v6, vlan, payload, why);
	CHECK(it.info.gso);
	CHECK_EQ(it.info.nsegs, want);
	CHECK_EQ(it.info.payload, l.payload);
	CHECK_EQ(it.info.seg_max, l.payload + (payload < mss ? payload : mss));
	/* A buffer smaller than the largest segment gets nothing. */
	CHECK_EQ(net_offload_next(&it, seg, it.info.seg_max - 1), 0);
	while ((n = net_offload_next(&it, seg, sizeof(seg))) > 0) {
		const uint8_t *tcp = seg + l.l4;
		size_t plen = n - l.payload;
		uint8_t want_flags = flags;

		CHECK(n <= it.info.seg_max);
		CHECK_EQ(plen, i + 1 < want ? mss : payload - (size_t)i * mss);
		if (!nf_valid(seg, n, &l))
			FAILF("segment %u of %u: bad checksum or IP length", i, want);
		CHECK(!memcmp(seg, frame, l.l3));       /* Ethernet and VLAN as they were */
		if (!v6)
			CHECK_EQ(nf_get16(seg + l.l3 + 4), (NF_IP_ID + i) & 0xffff);
		CHECK_EQ(nf_get32(tcp + 4), NF_SEQ + (uint32_t)(i * mss));
		if (i + 1 < want)
			want_flags &= (uint8_t)~0x09;   /* FIN and PSH on the last only */
		if (i > 0)
			want_flags &= (uint8_t)~0x80;   /* CWR on the first only */
		CHECK_EQ(tcp[13], want_flags);
		memcpy(joined + got, seg + l.payload, plen);
		got += plen;
		i++;
	}
	CHECK_EQ(i, want);
	CHECK_EQ(got, payload);
	CHECK(!memcmp(joined, frame + l.payload, payload));
}

static void test_tso_segments(void)
{
	check_tso(false, false, 5000, 1448, 0x18);      /* 4 segments, the last short */
	check_tso(false, false, 2896, 1448, 0x99);      /* 2 full ones; CWR, PSH, ACK, FIN */
	check_tso(true, false, 60000, 1428, 0x19);
	check_tso(false, true, 64000, 1444, 0x18);
	check_tso(true, true, 100, 1448, 0x18);         /* one segment */
	check_tso(false, false, 65535 - 54, 48, 0x10);  /* Linux's smallest MSS: 1365 segments */
}

struct bad {
	const char *what;
	void (*spoil)(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len);
	const char *why;
};

static void bad_flags(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l, (void)len;
	h->flags |= 4;
}
static void bad_udp(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l, (void)len;
	h->gso_type = NET_HDR_GSO_UDP;
}
static void bad_type(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l, (void)len;
	h->gso_type = 5;
}
static void bad_mss(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l, (void)len;
	h->gso_size = 0;
}
static void bad_no_csum(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l, (void)len;
	h->flags = 0;
}
static void bad_csum_past(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l;
	h->csum_start = (uint16_t)(*len - 1);
	h->csum_offset = 0;
}
static void bad_csum_start(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)len;
	h->csum_start = (uint16_t)(l->l4 + 4);
}
static void bad_csum_offset(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l, (void)len;
	h->csum_offset = 6;             /* UDP's */
}
static void bad_v6_type(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l, (void)len;
	h->gso_type = NET_HDR_GSO_TCPV6;
}
static void bad_fragment(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)h, (void)len;
	f[l->l3 + 6] = 0x20;            /* more fragments */
}
static void bad_proto(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)h, (void)len;
	f[l->l3 + 9] = 17;
}
static void bad_ihl(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)h, (void)len;
	f[l->l3] = 0x44;
}
static void bad_doff(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)h, (void)len;
	f[l->l4 + 12] = 0x40;
}
static void bad_doff_past(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)h;
	f[l->l4 + 12] = 0xf0;           /* 60 bytes of TCP header */
	*len = l->l4 + 40;
}
static void bad_cut_ip(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)h, (void)f;
	*len = l->l3 + 10;
	h->csum_start = (uint16_t)l->l3;
	h->csum_offset = 0;
}
static void bad_segments(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l, (void)len;
	h->gso_size = 1;
}
static void bad_ecn_alone(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)f, (void)l, (void)len;
	h->gso_type = NET_HDR_GSO_ECN;
	h->gso_size = 0;
}
static void bad_runt(struct net_vnet_hdr *h, uint8_t *f, const struct nf_layout *l, size_t *len)
{
	(void)h, (void)f, (void)l;
	*len = 13;
}

static void test_bad_headers_refused(void)
{
	static const struct bad bad[] = {
		{ "unknown flag", bad_flags, "unknown header flags" },
		{ "UDP GSO", bad_udp, "UDP fragmentation offload" },
		{ "GSO type 5", bad_type, "unknown GSO type" },
		{ "segment size 0", bad_mss, "segment size of 0" },
		{ "GSO without NEEDS_CSUM", bad_no_csum, "without a partial checksum" },
		{ "checksum past the end", bad_csum_past, "outside the frame" },
		{ "checksum start not TCP's", bad_csum_start, "not the TCP header's" },
		{ "checksum offset not TCP's", bad_csum_offset, "not the TCP header's" },
		{ "TCPv6 type on IPv4", bad_v6_type, "does not match" },
		{ "an IP fragment", bad_fragment, "fragment" },
		{ "UDP inside", bad_proto, "not TCP" },
		{ "IPv4 header of 16 bytes", bad_ihl, "IPv4 header" },
		{ "TCP header of 16 bytes", bad_doff, "TCP header" },
		{ "TCP header past the end", bad_doff_past, "TCP header" },
		{ "IP header cut short", bad_cut_ip, "IPv4 header" },
		{ "65000 segments", bad_segments, "too many segments" },
		{ "ECN without GSO", bad_ecn_alone, "ECN flag without GSO" },
		{ "runt", bad_runt, "shorter than an Ethernet header" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct net_vnet_hdr h;
		struct net_offload_info info;
		struct nf_layout l;
		const char *why = NULL;
		size_t len = nf_build(frame, false, false, 3000, 0x18, 1, 1448, &h, &l);

		CHECK_EQ(net_offload_check(&h, frame, len, &info, &why), 0);
		bad[i].spoil(&h, frame, &l, &len);
		if (net_offload_check(&h, frame, len, &info, &why) != -EINVAL)
			FAILF("%s: accepted", bad[i].what);
		if (!why || !strstr(why, bad[i].why))
			FAILF("%s: reason \"%s\", want \"%s\"", bad[i].what, why ? why : "(none)", bad[i].why);
	}
}

int main(void)
{
	RUN(test_csum_rfc1071_example);
	RUN(test_partial_checksum_finished);
	RUN(test_tso_segments);
	RUN(test_bad_headers_refused);
	return HARNESS_END();
}

/* Tier 1: virtio-net behind the virtio-mmio transport, driven through its
 * registers as a guest driver would, with a socketpair as its backend: what
 * the test writes to the socket lands in the guest's receive buffers behind a
 * header, what the guest transmits comes out without one, and guest-given
 * lengths never overflow. Then a real switch daemon in a scratch store, with
 * adapters (plain backends and a virtio-net device) on it: forwarding, the
 * MAC-spoofing drop and its counter in 'nestvm switch show --json', a device
 * that loses its switch and finds it again, and the daemon stopped at the end. */
#include "cli/cli.h"
#include "net_frames.h"
#include "net/backend.h"
#include "net/switch.h"
#include "virtio/net.h"
#include "virtio_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

HARNESS_DEFINE;

int cmd_switch(int argc, char **argv);

#define RXQ       0
#define TXQ       1
#define RXBUF(i)  (MEM_GPA + 0x10000 + (i) * 0x1000)
#define TXBUF(i)  (MEM_GPA + 0x30000 + (i) * 0x1000)
#define HDR       12

#define F_CSUM 0
#define F_GUEST_CSUM 1
#define F_MAC 5
#define F_GUEST_TSO4 7
#define F_GUEST_TSO6 8
#define F_HOST_TSO4 11
#define F_HOST_TSO6 12
#define F_MRG_RXBUF 15
#define F_STATUS 16
#define F_CTRL_VQ 17
/* What a driver without offloads and mergeable buffers accepts. */
#define PLAIN (~(VIRTIO_BIT(F_CSUM) | VIRTIO_BIT(F_GUEST_CSUM) | VIRTIO_BIT(F_GUEST_TSO4) |  \
		 VIRTIO_BIT(F_GUEST_TSO6) | VIRTIO_BIT(9) | VIRTIO_BIT(F_HOST_TSO4) |         \
		 VIRTIO_BIT(F_HOST_TSO6) | VIRTIO_BIT(13) | VIRTIO_BIT(F_MRG_RXBUF)))

static const uint8_t MAC_A[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x0a };
static const uint8_t MAC_B[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x0b };
static const uint8_t MAC_G[6] = { 0x52, 0x54, 0x00, 0x99, 0x00, 0x01 };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static struct {
	int peer;                       /* the test's end of the backend */
	char store[64];
} net = { .peer = -1 };

static void stop_store_switches(void);

static void fx_teardown(void)
{
	fx_release();
	if (net.peer >= 0)
		close(net.peer);
	net.peer = -1;
	stop_store_switches();
}

static void fx_base(void)
{
	fx_teardown();
	fx_map();
}

/* A device on a SOCK_SEQPACKET pair; device_sndbuf > 0 shrinks its send buffer. */
static void fx_open_pair(int device_sndbuf)
{
	struct virtio_net_opts o = { .name = "virtio-net-test", .queue_size = 64 };
	struct virtio_dev *dev;
	char err[256];
	int sv[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	if (device_sndbuf)
		CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &device_sndbuf, sizeof(device_sndbuf)), 0);
	net.peer = sv[1];
	o.backend = (struct net_backend_opts){ .kind = NET_BACKEND_FD, .fd = sv[0] };
	memcpy(o.backend.mac, MAC_A, 6);
	if (virtio_net_create(&dev, &o, err, sizeof(err)) != 0)
		FAILF("virtio_net_create: %s", err);
	fx_attach(dev, 22);
}

/* 3.1.1, accepting the offered features in want (and VERSION_1); returns the
 * offer. */
static uint64_t driver_init(uint64_t want)
{
	wr(R_STATUS, 0);
	fx_features(want);
	fx_queue(RXQ);
	fx_queue(TXQ);
	fx_driver_ok();
	return fx.features;
}

/* The next used entry of queue q, within 5 s. */
static struct virtq_used_elem take_used(unsigned int q)
{
	struct virtq_used_elem u;

	if (!fx_wait_used(q, 5000, &u))
		FAILF("queue %u: no used entry within 5 s (used idx %u)", q, fx_used(q)->idx);
	return u;
}

static bool nothing_used(unsigned int q, int ms)
{
	return !fx_wait_until(fx_used_advanced, (void *)(uintptr_t)q, ms);
}

static size_t make_frame(uint8_t *f, const uint8_t *dst, const uint8_t *src, size_t len, uint8_t seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb5;           /* local experimental ethertype */
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed + i * 13);
	return len;
}

/* Reads one message from fd within ms; its length, or -1. */
static ssize_t recv_within(int fd, void *buf, size_t len, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return recv(fd, buf, len, MSG_DONTWAIT | MSG_TRUNC);
}

static uint16_t cfg_status(void)
{
	uint16_t s = 0xffff;

	virtio_mmio_io(fx.m, R_CONFIG + 6, &s, 2, false);
	return s;
}

static void test_probe_and_config(void)
{
	uint8_t mac[6];
	uint64_t f;

	fx_base();
	fx_open_pair(0);
	CHECK_EQ(rd(R_MAGIC), 0x74726976);
	CHECK_EQ(rd(R_DEVICE_ID), VIRTIO_ID_NET);
	f = driver_init(~0ULL);
	CHECK(f & VIRTIO_BIT(F_MAC));
	CHECK(f & VIRTIO_BIT(F_STATUS));
	CHECK(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
	/* Checksum and TCP segmentation offloads both ways, mergeable receive
	 * buffers; no UDP fragmentation offload, no control queue. */
	CHECK_EQ(f & (VIRTIO_BIT(F_CSUM) | VIRTIO_BIT(F_GUEST_CSUM) | VIRTIO_BIT(F_GUEST_TSO4) |
		      VIRTIO_BIT(F_GUEST_TSO6) | VIRTIO_BIT(F_HOST_TSO4) | VIRTIO_BIT(F_HOST_TSO6) |
		      VIRTIO_BIT(F_MRG_RXBUF)),
		 VIRTIO_BIT(F_CSUM) | VIRTIO_BIT(F_GUEST_CSUM) | VIRTIO_BIT(F_GUEST_TSO4) |
		 VIRTIO_BIT(F_GUEST_TSO6) | VIRTIO_BIT(F_HOST_TSO4) | VIRTIO_BIT(F_HOST_TSO6) |
		 VIRTIO_BIT(F_MRG_RXBUF));
	CHECK(!(f & (VIRTIO_BIT(10) | VIRTIO_BIT(14) | VIRTIO_BIT(F_CTRL_VQ))));
	for (int i = 0; i < 6; i++)
		virtio_mmio_io(fx.m, R_CONFIG + i, &mac[i], 1, false);
	CHECK(!memcmp(mac, MAC_A, 6));
	CHECK_EQ(cfg_status(), 1);              /* VIRTIO_NET_S_LINK_UP */
	/* Config writes are ignored. */
	wr(R_CONFIG, 0);
	virtio_mmio_io(fx.m, R_CONFIG, &mac[0], 1, false);
	CHECK_EQ(mac[0], MAC_A[0]);
	fx_teardown();
}

static void test_rx_frame_reaches_guest(void)
{
	static const uint8_t want_hdr[HDR] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t f[1514];
	struct virtq_used_elem u;
	struct virtio_net_stats st;

	fx_base();
	fx_open_pair(0);
	driver_init(PLAIN);
	/* One buffer, as Linux posts them without mergeable buffers. */
	memset(host(RXBUF(0)), 0xee, HDR + 1518);
	fx_desc(RXQ, 0, RXBUF(0), HDR + 1518, VIRTQ_DESC_F_WRITE, 0);
	fx_post(RXQ, 0);
	CHECK(nothing_used(RXQ, 50));
	make_frame(f, MAC_A, MAC_B, 60, 1);
	CHECK_EQ(send(net.peer, f, 60, 0), 60);
	u = take_used(RXQ);
	CHECK_EQ(u.id, 0);
	CHECK_EQ(u.len, HDR + 60);
	CHECK(!memcmp(host(RXBUF(0)), want_hdr, HDR));          /* zeroed, num_buffers 1 */
	CHECK(!memcmp(host(RXBUF(0) + HDR), f, 60));
	CHECK_EQ(*(uint8_t *)host(RXBUF(0) + HDR + 60), 0xee);  /* nothing past the frame */
	CHECK(fx.irq.raises >= 1);
	CHECK(rd(R_ISR) & VIRTIO_ISR_QUEUE);

	/* Header and frame split over three descriptors, a full-size frame. */
	fx_desc(RXQ, 1, RXBUF(1), 10, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	fx_desc(RXQ, 2, RXBUF(2), 700, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	fx_desc(RXQ, 3, RXBUF(3), 2000, VIRTQ_DESC_F_WRITE, 0);
	fx_post(RXQ, 1);
	make_frame(f, BCAST, MAC_B, 1514, 2);
	CHECK_EQ(send(net.peer, f, 1514, 0), 1514);
	u = take_used(RXQ);
	CHECK_EQ(u.id, 1);
	CHECK_EQ(u.len, HDR + 1514);
	CHECK(!memcmp(host(RXBUF(1)), want_hdr, 10));
	CHECK(!memcmp(host(RXBUF(2)), want_hdr + 10, 2));
	CHECK(!memcmp(host(RXBUF(2) + 2), f, 698));
	CHECK(!memcmp(host(RXBUF(3)), f + 698, 1514 - 698));
	virtio_net_get_stats(fx.dev, &st);
	CHECK_EQ(st.rx_frames, 2);
	CHECK_EQ(st.rx_bytes, 60 + 1514);
	CHECK_EQ(st.rx_dropped, 0);
	CHECK(!virtio_dev_is_broken(fx.dev));
	fx_teardown();
}

static void test_rx_waits_for_buffers(void)
{
	uint8_t f[3][100];
	struct virtq_used_elem u;

	fx_base();
	fx_open_pair(0);
	driver_init(PLAIN);
	/* Frames before any buffer wait in the backend; none is lost. */
	for (int i = 0; i < 3; i++) {
		make_frame(f[i], MAC_A, MAC_B, 100, (uint8_t)(10 * i));
		CHECK_EQ(send(net.peer, f[i], 100, 0), 100);
	}
	CHECK(nothing_used(RXQ, 50));
	for (int i = 0; i < 3; i++) {
		fx_desc(RXQ, (unsigned int)i, RXBUF(i), HDR + 1518, VIRTQ_DESC_F_WRITE, 0);
		fx_post(RXQ, (uint16_t)i);
	}
	for (int i = 0; i < 3; i++) {
		u = take_used(RXQ);
		CHECK_EQ(u.id, i);
		CHECK_EQ(u.len, HDR + 100);
		CHECK(!memcmp(host(RXBUF(i) + HDR), f[i], 100));
	}
	fx_teardown();
}

static void test_rx_oversized_frame_dropped(void)
{
	uint8_t big[4000], small[80];
	struct virtq_used_elem u;
	struct virtio_net_stats st;

	fx_base();
	fx_open_pair(0);
	driver_init(PLAIN);
	/* A buffer with room for 100 bytes of frame, and bytes after it. */
	memset(host(RXBUF(0)), 0xcc, 0x1000);
	fx_desc(RXQ, 0, RXBUF(0), HDR + 100, VIRTQ_DESC_F_WRITE, 0);
	fx_post(RXQ, 0);
	make_frame(big, MAC_A, MAC_B, sizeof(big), 3);
	CHECK_EQ(send(net.peer, big, 101, 0), 101);
	CHECK_EQ(send(net.peer, big, sizeof(big), 0), (ssize_t)sizeof(big));
	make_frame(small, MAC_A, MAC_B, sizeof(small), 4);
	CHECK_EQ(send(net.peer, small, sizeof(small), 0), (ssize_t)sizeof(small));
	/* The two large ones are dropped; the buffer waits for the small one. */
	u = take_used(RXQ);
	CHECK_EQ(u.id, 0);
	CHECK_EQ(u.len, HDR + sizeof(small));
	CHECK(!memcmp(host(RXBUF(0) + HDR), small, sizeof(small)));
	for (size_t i = HDR + 100; i < 0x1000; i++)
		if (*(uint8_t *)host(RXBUF(0) + i) != 0xcc)
			FAILF("byte %zu past the guest's buffer was written", i);
	virtio_net_get_stats(fx.dev, &st);
	CHECK_EQ(st.rx_dropped, 2);
	CHECK_EQ(st.rx_frames, 1);
	/* A buffer too small for any frame goes back empty when a frame comes,
	 * and so does one with no writable part; the frame waits for a buffer
	 * that holds it. */
	fx_desc(RXQ, 1, RXBUF(1), 20, VIRTQ_DESC_F_WRITE, 0);
	fx_post(RXQ, 1);
	fx_desc(RXQ, 2, RXBUF(2), 2000, 0, 0);
	fx_post(RXQ, 2);
	CHECK_EQ(send(net.peer, small, sizeof(small), 0), (ssize_t)sizeof(small));
	u = take_used(RXQ);
	CHECK_EQ(u.id, 1);
	CHECK_EQ(u.len, 0);
	u = take_used(RXQ);
	CHECK_EQ(u.id, 2);
	CHECK_EQ(u.len, 0);
	CHECK(nothing_used(RXQ, 50));
	fx_desc(RXQ, 3, RXBUF(3), HDR + 1518, VIRTQ_DESC_F_WRITE, 0);
	fx_post(RXQ, 3);
	u = take_used(RXQ);
	CHECK_EQ(u.id, 3);
	CHECK_EQ(u.len, HDR + sizeof(small));
	CHECK(!virtio_dev_is_broken(fx.dev));
	fx_teardown();
}

static void test_tx_frame_leaves_without_header(void)
{
	uint8_t f[1514], got[2000];
	struct virtq_used_elem u;
	struct virtio_net_stats st;

	fx_base();
	fx_open_pair(0);
	driver_init(PLAIN);
	/* A header that makes no sense (unknown flags): the frame is dropped. */
	memset(host(TXBUF(0)), 0x77, HDR);
	make_frame(host(TXBUF(0) + HDR), MAC_B, MAC_A, 60, 5);
	fx_desc(TXQ, 0, TXBUF(0), HDR + 60, 0, 0);
	fx_post(TXQ, 0);
	CHECK_EQ(take_used(TXQ).id, 0);
	CHECK_EQ(recv_within(net.peer, got, sizeof(got), 200), -1);
	virtio_net_get_stats(fx.dev, &st);
	CHECK_EQ(st.tx_dropped, 1);
	/* Header and frame in one buffer. */
	memset(host(TXBUF(0)), 0, HDR);
	fx_desc(TXQ, 1, TXBUF(0), HDR + 60, 0, 0);
	fx_post(TXQ, 1);
	u = take_used(TXQ);
	CHECK_EQ(u.id, 1);
	CHECK_EQ(u.len, 0);
	CHECK_EQ(recv_within(net.peer, got, sizeof(got), 2000), 60);
	CHECK(!memcmp(got, host(TXBUF(0) + HDR), 60));
	/* Header apart, frame in two pieces. */
	make_frame(f, BCAST, MAC_A, 1514, 6);
	memset(host(TXBUF(1)), 0, HDR);
	memcpy(host(TXBUF(2)), f, 1000);
	memcpy(host(TXBUF(3)), f + 1000, 514);
	fx_desc(TXQ, 2, TXBUF(1), HDR, VIRTQ_DESC_F_NEXT, 3);
	fx_desc(TXQ, 3, TXBUF(2), 1000, VIRTQ_DESC_F_NEXT, 4);
	fx_desc(TXQ, 4, TXBUF(3), 514, 0, 0);
	fx_post(TXQ, 2);
	CHECK_EQ(take_used(TXQ).id, 2);
	CHECK_EQ(recv_within(net.peer, got, sizeof(got), 2000), 1514);
	CHECK(!memcmp(got, f, 1514));
	virtio_net_get_stats(fx.dev, &st);
	CHECK_EQ(st.tx_frames, 2);
	CHECK_EQ(st.tx_bytes, 60 + 1514);
	CHECK_EQ(st.tx_dropped, 1);
	fx_teardown();
}

static void test_tx_malformed_chains(void)
{
	uint8_t got[100];
	struct virtio_net_stats st;

	fx_base();
	fx_open_pair(0);
	driver_init(PLAIN);
	/* Shorter than a header, and a header with a runt behind it. */
	fx_desc(TXQ, 0, TXBUF(0), 5, 0, 0);
	fx_post(TXQ, 0);
	CHECK_EQ(take_used(TXQ).id, 0);
	fx_desc(TXQ, 1, TXBUF(0), HDR + 13, 0, 0);
	fx_post(TXQ, 1);
	CHECK_EQ(take_used(TXQ).id, 1);
	/* Writable only: nothing to send. */
	fx_desc(TXQ, 2, TXBUF(0), 100, VIRTQ_DESC_F_WRITE, 0);
	fx_post(TXQ, 2);
	CHECK_EQ(take_used(TXQ).id, 2);
	CHECK_EQ(recv_within(net.peer, got, sizeof(got), 100), -1);
	virtio_net_get_stats(fx.dev, &st);
	CHECK_EQ(st.tx_dropped, 3);
	CHECK_EQ(st.tx_frames, 0);
	CHECK(!virtio_dev_is_broken(fx.dev));
	fx_teardown();
}

/* A backend that cannot keep up slows the guest down; it loses nothing. */
static void test_tx_backpressure_keeps_order(void)
{
	uint8_t got[2000];
	struct virtio_net_stats st;
	unsigned int n = 12;

	fx_base();
	fx_open_pair(4096);
	driver_init(PLAIN);
	for (unsigned int i = 0; i < n; i++) {
		make_frame(host(TXBUF(i) + HDR), MAC_B, MAC_A, 1500, (uint8_t)i);
		fx_desc(TXQ, i, TXBUF(i), HDR + 1500, 0, 0);
		fx_post(TXQ, (uint16_t)i);
	}
	for (unsigned int i = 0; i < n; i++) {
		uint8_t want[1500];

		CHECK_EQ(recv_within(net.peer, got, sizeof(got), 2000), 1500);
		make_frame(want, MAC_B, MAC_A, 1500, (uint8_t)i);
		if (memcmp(got, want, 1500))
			FAILF("frame %u arrived out of order or damaged", i);
	}
	for (unsigned int i = 0; i < n; i++)
		CHECK_EQ(take_used(TXQ).id, i);
	virtio_net_get_stats(fx.dev, &st);
	CHECK_EQ(st.tx_frames, n);
	CHECK_EQ(st.tx_dropped, 0);
	fx_teardown();
}

static bool link_down(void *arg)
{
	(void)arg;
	return cfg_status() == 0;
}

static bool link_up(void *arg)
{
	(void)arg;
	return cfg_status() == 1;
}

static void test_link_down_when_backend_closes(void)
{
	struct virtio_net_stats st;

	fx_base();
	fx_open_pair(0);
	driver_init(PLAIN);
	fx_desc(RXQ, 0, RXBUF(0), HDR + 1518, VIRTQ_DESC_F_WRITE, 0);
	fx_post(RXQ, 0);
	wr(R_ACK, rd(R_ISR));
	close(net.peer);
	net.peer = -1;
	CHECK(fx_wait_until(link_down, NULL, 5000));
	CHECK(rd(R_ISR) & VIRTIO_ISR_CONFIG);
	/* Transmitting on a dead link drops, counted, and returns the buffers. */
	make_frame(host(TXBUF(0) + HDR), MAC_B, MAC_A, 60, 0);
	fx_desc(TXQ, 0, TXBUF(0), HDR + 60, 0, 0);
	fx_post(TXQ, 0);
	CHECK_EQ(take_used(TXQ).id, 0);
	virtio_net_get_stats(fx.dev, &st);
	CHECK(!st.link_up);
	CHECK_EQ(st.tx_dropped, 1);
	fx_teardown();
}

static void test_create_refuses_bad_options(void)
{
	struct virtio_net_opts o = { 0 };
	struct virtio_dev *dev = (struct virtio_dev *)1;
	char err[256];
	int sv[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	o.backend = (struct net_backend_opts){ .kind = NET_BACKEND_FD, .fd = sv[0] };
	memcpy(o.backend.mac, BCAST, 6);
	CHECK_EQ(virtio_net_create(&dev, &o, err, sizeof(err)), -EINVAL);
	CHECK(!dev);
	CHECK(strstr(err, "multicast"));
	CHECK(fcntl(sv[0], F_GETFD) < 0);               /* taken over, even so */
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv + 0), 0);
	close(sv[1]);
	memcpy(o.backend.mac, MAC_A, 6);
	o.backend.fd = sv[0];
	o.queue_size = 100;
	CHECK_EQ(virtio_net_create(&dev, &o, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "queue size"));
	/* A stream socket is no frame backend. */
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	o.queue_size = 0;
	o.backend.fd = sv[0];
	CHECK_EQ(virtio_net_create(&dev, &o, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "not a message socket"));
	/* No switch there. */
	o.backend = (struct net_backend_opts){ .kind = NET_BACKEND_SWITCH,
					       .path = "/nonexistent/switches/lan/ports.sock" };
	memcpy(o.backend.mac, MAC_A, 6);
	CHECK_EQ(virtio_net_create(&dev, &o, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "switch 'lan' is not running"));
	CHECK(strstr(err, "nestvm switch start lan"));
}

/* The TAP backend against a real TAP device, watched from the host side
 * through a packet socket: needs CAP_NET_ADMIN, else it skips. */
static void test_tap_backend(void)
{
	struct virtio_net_opts o = { .name = "virtio-net-tap", .queue_size = 32 };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	struct virtio_dev *dev;
	struct virtio_net_stats st;
	char err[256], path[128], tap[16];
	uint8_t f[300], got[2000];
	int ps = -1, fd;
	bool seen = false;

	fx_base();
	snprintf(tap, sizeof(tap), "nvt%u", (unsigned int)getpid() % 1000000);
	o.backend = (struct net_backend_opts){ .kind = NET_BACKEND_TAP, .tap = tap };
	memcpy(o.backend.mac, MAC_A, 6);
	if (access("/dev/net/tun", R_OK | W_OK) < 0)
		SKIP("no /dev/net/tun here");
	if (virtio_net_create(&dev, &o, err, sizeof(err)) != 0)
		SKIP("cannot create a TAP device here: %s", err);
	fx_attach(dev, 22);
	/* Quiet: no IPv6 chatter from the host on the new interface. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", tap);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		(void)!write(fd, "1", 1);
		close(fd);
	}
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (ps < 0) {
		fx_teardown();
		SKIP("no packet socket to watch the TAP device (%s)", strerror(errno));
	}
	sll.sll_ifindex = (int)if_nametoindex(tap);
	CHECK(sll.sll_ifindex > 0);
	CHECK_EQ(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);
	driver_init(PLAIN);
	for (unsigned int i = 0; i < 8; i++) {
		fx_desc(RXQ, i, RXBUF(i), HDR + 1518, VIRTQ_DESC_F_WRITE, 0);
		fx_post(RXQ, (uint16_t)i);
	}

	/* Guest to host: the frame, without any header. */
	make_frame(host(TXBUF(0) + HDR), BCAST, MAC_A, 300, 11);
	fx_desc(TXQ, 0, TXBUF(0), HDR + 300, 0, 0);
	fx_post(TXQ, 0);
	for (int i = 0; i < 50 && !seen; i++) {
		ssize_t n = recv_within(ps, got, sizeof(got), 100);

		seen = n == 300 && !memcmp(got, host(TXBUF(0) + HDR), 300);
	}
	CHECK(seen);
	/* Spoofing is off: a frame from another address never reaches the host. */
	make_frame(host(TXBUF(1) + HDR), BCAST, MAC_G, 300, 12);
	fx_desc(TXQ, 1, TXBUF(1), HDR + 300, 0, 0);
	fx_post(TXQ, 1);
	CHECK_EQ(take_used(TXQ).id, 0);
	CHECK_EQ(take_used(TXQ).id, 1);
	virtio_net_get_stats(fx.dev, &st);
	CHECK_EQ(st.tx_spoofed, 1);
	CHECK_EQ(st.tx_frames, 1);

	/* Host to guest: what the host sends on the interface. */
	make_frame(f, MAC_A, MAC_B, 300, 13);
	CHECK_EQ(send(ps, f, 300, 0), 300);
	seen = false;
	for (int i = 0; i < 8 && !seen; i++) {
		struct virtq_used_elem u = take_used(RXQ);

		seen = u.len == HDR + 300 && !memcmp(host(RXBUF(u.id) + HDR), f, 300);
	}
	CHECK(seen);
	close(ps);
	fx_teardown();
}

/* A TAP device held open by its caller (a VMM, across its machines) is
 * taken by each device through a dup and outlives them: a reboot's next
 * machine finds it without creating it again, which a sandboxed VMM may not
 * do. The device goes with the holder's last descriptor. */
static void test_tap_held_across_devices(void)
{
	struct virtio_net_opts o = { .name = "virtio-net-tap", .queue_size = 32 };
	struct virtio_dev *dev;
	char err[256], tap[16];
	int held;

	snprintf(tap, sizeof(tap), "nvh%u", (unsigned int)getpid() % 1000000);
	if (access("/dev/net/tun", R_OK | W_OK) < 0)
		SKIP("no /dev/net/tun here");
	held = net_tap_open(tap, true, err, sizeof(err));
	if (held < 0)
		SKIP("cannot create a TAP device here: %s", err);
	for (int round = 0; round < 2; round++) {
		o.backend = (struct net_backend_opts){ .kind = NET_BACKEND_TAP, .tap = tap, .tap_open = true,
						       .fd = fcntl(held, F_DUPFD_CLOEXEC, 0) };
		memcpy(o.backend.mac, MAC_A, 6);
		CHECK(o.backend.fd >= 0);
		if (virtio_net_create(&dev, &o, err, sizeof(err)) != 0)
			FAILF("round %d: %s", round, err);
		virtio_dev_destroy(dev);
		/* The device's descriptor is closed; the holder's keeps the TAP. */
		CHECK(if_nametoindex(tap) > 0);
	}
	/* Without a descriptor the backend refuses, and says why. */
	o.backend = (struct net_backend_opts){ .kind = NET_BACKEND_TAP, .tap = tap, .tap_open = true, .fd = -1 };
	memcpy(o.backend.mac, MAC_A, 6);
	CHECK_EQ(virtio_net_create(&dev, &o, err, sizeof(err)), -EBADF);
	CHECK(strstr(err, "no descriptor"));
	close(held);
	CHECK_EQ(if_nametoindex(tap), 0);
}

/* ---- a real switch daemon ---- */

static char out[65536], errbuf[4096];

/* Runs cmd_switch with stdout and stderr captured. */
static int run_switch(const char *const *words)
{
	char *argv[32], *copies[32];
	int argc = 0, status, saved[2], fds[2];
	char name[2][128];

	for (; words[argc]; argc++)
		argv[argc] = copies[argc] = strdup(words[argc]);
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < 2; i++) {
		snprintf(name[i], sizeof(name[i]), "%s/std%d", net.store, i + 1);
		fds[i] = open(name[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		CHECK(fds[i] >= 0);
		saved[i] = dup(i + 1);
		CHECK(dup2(fds[i], i + 1) == i + 1);
	}
	status = cmd_switch(argc, argv);
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < 2; i++) {
		char *buf = i ? errbuf : out;
		size_t cap = i ? sizeof(errbuf) : sizeof(out);
		ssize_t n;

		dup2(saved[i], i + 1);
		close(saved[i]);
		n = pread(fds[i], buf, cap - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		close(fds[i]);
		unlink(name[i]);
	}
	for (int i = 0; i < argc; i++)
		free(copies[i]);
	return status;
}

#define SWITCH(...) run_switch((const char *const[]){ __VA_ARGS__, NULL })

/* Whatever a failed test left running is stopped, and the store deleted. */
static void stop_store_switches(void)
{
	char dir[256], err[256], cmd[128];

	if (!net.store[0])
		return;
	for (int i = 0; i < 2; i++) {
		snprintf(dir, sizeof(dir), "%s/switches/%s", net.store, i ? "t2" : "t1");
		if (switchd_alive(dir) && switchd_stop(dir, true, 5000, err, sizeof(err)) < 0)
			fprintf(stderr, "test: could not stop the switch in %s: %s\n", dir, err);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", net.store);
	if (system(cmd) != 0)
		fprintf(stderr, "test: could not remove %s\n", net.store);
	net.store[0] = '\0';
}

static void make_store(void)
{
	snprintf(net.store, sizeof(net.store), "/tmp/nestvm-switch-XXXXXX");
	CHECK(mkdtemp(net.store));
}

static void adapter(struct net_backend *be, const char *sock, const uint8_t *mac, bool spoofing,
		    const char *label)
{
	struct net_backend_opts o = { .kind = NET_BACKEND_SWITCH, .path = sock,
				      .mac_spoofing = spoofing, .label = label };
	char err[256];

	memcpy(o.mac, mac, 6);
	if (net_backend_open(be, &o, err, sizeof(err)) != 0)
		FAILF("adapter %s: %s", label, err);
}

static ssize_t be_send(struct net_backend *be, const uint8_t *f, size_t len)
{
	struct iovec v = { (void *)f, len };

	return net_backend_send(be, NULL, &v, 1);
}

/* One frame from be within ms: its length, or -1. */
static ssize_t be_recv(struct net_backend *be, uint8_t *buf, size_t len, int ms)
{
	struct pollfd p = { be->fd, POLLIN, 0 };
	struct iovec v = { buf, len };
	struct net_vnet_hdr h;

	if (poll(&p, 1, ms) != 1)
		return -1;
	return net_backend_recv(be, &h, &v, 1);
}

/* The value after "key": in the JSON object that holds "name": "port_name". */
static long long json_port_field(const char *json, const char *port_name, const char *key)
{
	char pat[128];
	const char *p, *end, *k;

	snprintf(pat, sizeof(pat), "\"name\": \"%s\"", port_name);
	p = strstr(json, pat);
	if (!p)
		return -1;
	end = strchr(p, '}');
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	k = strstr(p, pat);
	if (!k || (end && k > end))
		return -1;
	return atoll(k + strlen(pat));
}

static void test_switch_daemon_forwards_and_drops_spoofed(void)
{
	struct net_backend a = { .fd = -1 }, b = { .fd = -1 }, c = { .fd = -1 };
	struct net_backend_opts dup = { .kind = NET_BACKEND_SWITCH, .label = "vm-c/net0" };
	char sock[300], dir[256], err[256];
	uint8_t f[1514], got[2000];

	fx_base();
	make_store();
	CHECK_EQ(SWITCH("new", "t1", "--store", net.store), 0);
	CHECK(strstr(out, "Switch 't1' is running"));
	snprintf(dir, sizeof(dir), "%s/switches/t1", net.store);
	snprintf(sock, sizeof(sock), "%s/ports.sock", dir);
	CHECK(switchd_alive(dir));
	CHECK_EQ(SWITCH("new", "t1", "--store", net.store), 1);
	CHECK(strstr(errbuf, "already exists"));

	adapter(&a, sock, MAC_A, false, "vm-a/net0");
	adapter(&b, sock, MAC_B, false, "vm-b/net0");
	CHECK(a.port != b.port);
	/* An address already on the switch is refused, and the message says whose. */
	dup.path = sock;
	memcpy(dup.mac, MAC_A, 6);
	CHECK_EQ(net_backend_open(&c, &dup, err, sizeof(err)), -EADDRINUSE);
	CHECK(strstr(err, "in use"));
	CHECK(strstr(err, "vm-a/net0"));

	/* Unicast A to B, broadcast from A, and back from B. */
	make_frame(f, MAC_B, MAC_A, 1000, 1);
	CHECK_EQ(be_send(&a, f, 1000), 1000);
	CHECK_EQ(be_recv(&b, got, sizeof(got), 2000), 1000);
	CHECK(!memcmp(got, f, 1000));
	make_frame(f, BCAST, MAC_A, 60, 2);
	CHECK_EQ(be_send(&a, f, 60), 60);
	CHECK_EQ(be_recv(&b, got, sizeof(got), 2000), 60);
	CHECK(!memcmp(got, f, 60));
	make_frame(f, MAC_A, MAC_B, 1514, 3);
	CHECK_EQ(be_send(&b, f, 1514), 1514);
	CHECK_EQ(be_recv(&a, got, sizeof(got), 2000), 1514);
	CHECK(!memcmp(got, f, 1514));

	/* A frame from A with a nested guest's address: spoofing is off for A. */
	make_frame(f, MAC_B, MAC_G, 60, 4);
	CHECK_EQ(be_send(&a, f, 60), 60);
	make_frame(f, BCAST, MAC_G, 60, 5);
	CHECK_EQ(be_send(&a, f, 60), 60);
	CHECK_EQ(be_recv(&b, got, sizeof(got), 300), -1);
	/* A frame after it still passes: the port is not shut, only the frame. */
	make_frame(f, MAC_B, MAC_A, 80, 6);
	CHECK_EQ(be_send(&a, f, 80), 80);
	CHECK_EQ(be_recv(&b, got, sizeof(got), 2000), 80);

	CHECK_EQ(SWITCH("show", "t1", "--json", "--store", net.store), 0);
	CHECK_EQ(json_port_field(out, "vm-a/net0", "droppedSpoof"), 2);
	CHECK_EQ(json_port_field(out, "vm-a/net0", "rxFrames"), 5);
	CHECK_EQ(json_port_field(out, "vm-b/net0", "droppedSpoof"), 0);
	CHECK_EQ(json_port_field(out, "vm-b/net0", "txFrames"), 3);
	CHECK_EQ(json_port_field(out, "vm-a/net0", "txFrames"), 1);
	CHECK(strstr(out, "\"macSpoofing\": false"));
	CHECK(strstr(out, "\"mac\": \"52:54:00:12:34:0a\""));
	CHECK(strstr(out, "\"uplink\": null"));
	CHECK_EQ(SWITCH("show", "t1", "--store", net.store), 0);
	CHECK(strstr(out, "DROP-SPOOF"));
	CHECK(strstr(out, "vm-b/net0"));
	CHECK_EQ(SWITCH("list", "--store", net.store), 0);
	CHECK(strstr(out, "t1") && strstr(out, "running"));
	{
		FILE *lf;
		char logpath[300], line[512];
		bool logged = false;

		snprintf(logpath, sizeof(logpath), "%s/switchd.log", dir);
		lf = fopen(logpath, "r");
		CHECK(lf);
		while (fgets(line, sizeof(line), lf))
			logged |= strstr(line, "spoofing is off") && strstr(line, "52:54:00:99:00:01");
		fclose(lf);
		CHECK(logged);
	}

	/* A VM that restarts plugs in again with its address at once. */
	net_backend_close(&a);
	adapter(&a, sock, MAC_A, false, "vm-a/net0");
	make_frame(f, MAC_A, MAC_B, 64, 7);
	CHECK_EQ(be_send(&b, f, 64), 64);
	CHECK_EQ(be_recv(&a, got, sizeof(got), 2000), 64);

	/* With adapters connected, removal needs --force. */
	CHECK_EQ(SWITCH("remove", "t1", "--store", net.store), 1);
	CHECK(strstr(errbuf, "2 adapters connected"));
	CHECK(strstr(errbuf, "--force"));
	CHECK(switchd_alive(dir));
	CHECK_EQ(SWITCH("remove", "t1", "--force", "--store", net.store), 0);
	CHECK(!switchd_alive(dir));
	CHECK(access(dir, F_OK) < 0);
	/* The adapters see their switch gone. */
	CHECK_EQ(be_recv(&a, got, sizeof(got), 2000), -EPIPE);
	CHECK_EQ(SWITCH("show", "t1", "--store", net.store), 1);
	CHECK(strstr(errbuf, "no switch 't1'"));
	net_backend_close(&a);
	net_backend_close(&b);
	fx_teardown();
}

/* The whole path: a guest's virtio-net adapter on the switch, a plain
 * adapter on the other side; then the switch restarts under it. */
static void test_virtio_net_on_switch(void)
{
	struct virtio_net_opts o = { .name = "virtio-net-sw", .queue_size = 32 };
	struct net_backend b = { .fd = -1 };
	struct virtio_dev *dev;
	struct virtio_net_stats st;
	char sock[300], dir[256], err[256];
	uint8_t f[200], got[2000];
	struct virtq_used_elem u;

	fx_base();
	make_store();
	CHECK_EQ(SWITCH("new", "t2", "--store", net.store), 0);
	snprintf(dir, sizeof(dir), "%s/switches/t2", net.store);
	snprintf(sock, sizeof(sock), "%s/ports.sock", dir);
	o.backend = (struct net_backend_opts){ .kind = NET_BACKEND_SWITCH, .path = sock,
					       .label = "guest/net0" };
	memcpy(o.backend.mac, MAC_A, 6);
	if (virtio_net_create(&dev, &o, err, sizeof(err)) != 0)
		FAILF("virtio_net_create: %s", err);
	fx_attach(dev, 22);
	driver_init(PLAIN);
	adapter(&b, sock, MAC_B, false, "peer");
	for (unsigned int i = 0; i < 4; i++) {
		fx_desc(RXQ, i, RXBUF(i), HDR + 1518, VIRTQ_DESC_F_WRITE, 0);
		fx_post(RXQ, (uint16_t)i);
	}

	/* Guest to peer. */
	make_frame(host(TXBUF(0) + HDR), MAC_B, MAC_A, 200, 7);
	fx_desc(TXQ, 0, TXBUF(0), HDR + 200, 0, 0);
	fx_post(TXQ, 0);
	CHECK_EQ(be_recv(&b, got, sizeof(got), 2000), 200);
	CHECK(!memcmp(got, host(TXBUF(0) + HDR), 200));
	/* Peer to guest. */
	make_frame(f, MAC_A, MAC_B, 200, 8);
	CHECK_EQ(be_send(&b, f, 200), 200);
	u = take_used(RXQ);
	CHECK_EQ(u.len, HDR + 200);
	CHECK(!memcmp(host(RXBUF(u.id) + HDR), f, 200));
	/* The guest pretends to be someone else: the switch drops it. */
	make_frame(host(TXBUF(1) + HDR), MAC_B, MAC_G, 200, 9);
	fx_desc(TXQ, 1, TXBUF(1), HDR + 200, 0, 0);
	fx_post(TXQ, 1);
	CHECK_EQ(be_recv(&b, got, sizeof(got), 300), -1);
	CHECK_EQ(SWITCH("show", "t2", "--json", "--store", net.store), 0);
	CHECK_EQ(json_port_field(out, "guest/net0", "droppedSpoof"), 1);

	/* The switch goes away: link down. It comes back: the adapter finds it. */
	CHECK_EQ(SWITCH("stop", "t2", "--store", net.store), 1);
	CHECK_EQ(SWITCH("stop", "t2", "--force", "--store", net.store), 0);
	CHECK(fx_wait_until(link_down, NULL, 5000));
	CHECK_EQ(SWITCH("start", "t2", "--store", net.store), 0);
	CHECK(fx_wait_until(link_up, NULL, 5000));
	net_backend_close(&b);
	adapter(&b, sock, MAC_B, false, "peer");
	make_frame(f, MAC_A, MAC_B, 120, 10);
	CHECK_EQ(be_send(&b, f, 120), 120);
	u = take_used(RXQ);
	CHECK_EQ(u.len, HDR + 120);
	CHECK(!memcmp(host(RXBUF(u.id) + HDR), f, 120));
	virtio_net_get_stats(fx.dev, &st);
	CHECK(st.link_up);
	CHECK_EQ(st.rx_frames, 2);
	CHECK_EQ(st.tx_frames, 2);      /* the spoofed one left the adapter; the switch dropped it */
	net_backend_close(&b);
	fx_close_device();
	/* Once the daemon has seen both adapters go, no --force is needed. */
	for (int i = 0; i < 100 && SWITCH("remove", "t2", "--store", net.store) == 1; i++) {
		CHECK(strstr(errbuf, "connected"));
		usleep(20000);
	}
	CHECK(!switchd_alive(dir));
	CHECK(access(dir, F_OK) < 0);
	fx_teardown();
}

/* A TSO frame at TXBUF(0) behind its header, from src to dst; returns its
 * length (without the header). */
static size_t tx_tso(const uint8_t *dst, const uint8_t *src, size_t payload, unsigned int mss,
		     struct nf_layout *l)
{
	struct net_vnet_hdr h;
	uint8_t *f = host(TXBUF(0) + HDR);
	size_t len = nf_build(f, false, false, payload, 0x18, 5, mss, &h, l);

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	memcpy(host(TXBUF(0)), &h, HDR);
	fx_desc(TXQ, 0, TXBUF(0), (uint32_t)(HDR + len), 0, 0);
	fx_post(TXQ, 0);
	return len;
}

/* A guest's TSO frame on a backend without headers: the device cuts it into
 * finished segments itself. */
static void test_tx_tso_finished_for_plain_backend(void)
{
	static uint8_t got[2000], joined[8000];
	struct virtio_net_stats st;
	struct nf_layout l;
	size_t len, at = 0;

	fx_base();
	fx_open_pair(0);
	driver_init(~0ULL);
	len = tx_tso(MAC_B, MAC_A, 5000, 1448, &l);
	CHECK_EQ(take_used(TXQ).id, 0);
	for (int i = 0; i < 4; i++) {
		ssize_t n = recv_within(net.peer, got, sizeof(got), 2000);

		if (n < (ssize_t)l.payload)
			FAILF("segment %d: %zd bytes", i, n);
		CHECK_EQ(n, l.payload + (i < 3 ? 1448 : 5000 - 3 * 1448));
		if (!nf_valid(got, (size_t)n, &l))
			FAILF("segment %d: bad checksum", i);
		CHECK_EQ(nf_get32(got + l.l4 + 4), NF_SEQ + (uint32_t)i * 1448);
		memcpy(joined + at, got + l.payload, (size_t)n - l.payload);
		at += (size_t)n - l.payload;
	}
	CHECK_EQ(recv_within(net.peer, got, sizeof(got), 100), -1);
	CHECK_EQ(at, 5000);
	CHECK(!memcmp(joined, host(TXBUF(0) + HDR + l.payload), 5000));
	virtio_net_get_stats(fx.dev, &st);
	CHECK_EQ(st.tx_offloaded, 1);
	CHECK_EQ(st.finished, 1);
	CHECK_EQ(st.tx_frames, 4);
	CHECK_EQ(st.tx_dropped, 0);
	(void)len;
	fx_teardown();
}

/* Mergeable receive buffers: a frame spread over as many as it needs, the
 * count in the first one's header, all published at once; what it did not
 * need stays for the next frame. */
static void test_rx_mergeable_buffers(void)
{
	uint8_t f[1514];
	struct virtq_used_elem u[3];
	struct net_vnet_hdr h;

	fx_base();
	fx_open_pair(0);
	driver_init(PLAIN | VIRTIO_BIT(F_MRG_RXBUF));
	CHECK(fx.features & VIRTIO_BIT(F_MRG_RXBUF));
	for (unsigned int i = 0; i < 4; i++) {
		memset(host(RXBUF(i)), 0xee, 0x1000);
		fx_desc(RXQ, i, RXBUF(i), 512, VIRTQ_DESC_F_WRITE, 0);
		fx_post(RXQ, (uint16_t)i);
	}
	/* 12 + 1514 bytes: three buffers of 512. */
	make_frame(f, MAC_A, MAC_B, 1514, 11);
	CHECK_EQ(send(net.peer, f, 1514, 0), 1514);
	u[0] = take_used(RXQ);
	CHECK_EQ(fx_used(RXQ)->idx, 3);         /* the three entries appear together */
	u[1] = take_used(RXQ);
	u[2] = take_used(RXQ);
	memcpy(&h, host(RXBUF(0)), HDR);
	CHECK_EQ(h.num_buffers, 3);
	CHECK_EQ(h.flags, 0);
	CHECK_EQ(h.gso_type, 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(u[i].id, i);
	CHECK_EQ(u[0].len, 512);
	CHECK_EQ(u[1].len, 512);
	CHECK_EQ(u[2].len, HDR + 1514 - 1024);
	CHECK(!memcmp(host(RXBUF(0) + HDR), f, 500));
	CHECK(!memcmp(host(RXBUF(1)), f + 500, 512));
	CHECK(!memcmp(host(RXBUF(2)), f + 1012, 502));
	CHECK_EQ(*(uint8_t *)host(RXBUF(2) + 502), 0xee);
	CHECK_EQ(*(uint8_t *)host(RXBUF(3)), 0xee);
	/* The fourth buffer takes the next frame alone. */
	make_frame(f, MAC_A, MAC_B, 60, 12);
	CHECK_EQ(send(net.peer, f, 60, 0), 60);
	u[0] = take_used(RXQ);
	CHECK_EQ(u[0].id, 3);
	CHECK_EQ(u[0].len, HDR + 60);
	memcpy(&h, host(RXBUF(3)), HDR);
	CHECK_EQ(h.num_buffers, 1);
	CHECK(!memcmp(host(RXBUF(3) + HDR), f, 60));
	fx_teardown();
}

static void adapter_offloads(struct net_backend *be, const char *sock, const uint8_t *mac, const char *label)
{
	struct net_backend_opts o = { .kind = NET_BACKEND_SWITCH, .path = sock, .offloads = true,
				      .label = label };
	char err[256];

	memcpy(o.mac, mac, 6);
	if (net_backend_open(be, &o, err, sizeof(err)) != 0)
		FAILF("adapter %s: %s", label, err);
}

static ssize_t be_send_h(struct net_backend *be, const struct net_vnet_hdr *h, const uint8_t *f, size_t len)
{
	struct iovec v = { (void *)f, len };

	return net_backend_send(be, h, &v, 1);
}

static ssize_t be_recv_h(struct net_backend *be, struct net_vnet_hdr *h, uint8_t *buf, size_t len, int ms)
{
	struct pollfd p = { be->fd, POLLIN, 0 };
	struct iovec v = { buf, len };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return net_backend_recv(be, h, &v, 1);
}

/* Posts n receive buffers of size bytes, 4 KiB apart from RXBUF(0). */
static void post_rx(unsigned int n, uint32_t size)
{
	for (unsigned int i = 0; i < n; i++) {
		fx_desc(RXQ, i, RXBUF(i), size, VIRTQ_DESC_F_WRITE, 0);
		fx_post(RXQ, (uint16_t)i);
	}
}

/* Offloaded frames across a switch: whole between adapters that take the
 * header (a guest's virtio-net device, a raw adapter), finished by the
 * switch for a plain adapter and by the device for a guest that did not
 * negotiate them; a header that lies about its frame is dropped at the
 * switch and counted. */
static void test_offloads_through_switch(void)
{
	struct virtio_net_opts o = { .name = "virtio-net-off", .queue_size = 32 };
	struct net_backend v = { .fd = -1 }, p = { .fd = -1 };
	static uint8_t f[9000], got[9000], joined[9000];
	struct net_vnet_hdr h, gh;
	struct virtio_net_stats st;
	struct virtq_used_elem u;
	struct nf_layout l;
	struct virtio_dev *dev;
	char sock[300], dir[256], err[256];
	size_t len, at;
	ssize_t n;

	fx_base();
	make_store();
	CHECK_EQ(SWITCH("new", "t3", "--store", net.store), 0);
	snprintf(dir, sizeof(dir), "%s/switches/t3", net.store);
	snprintf(sock, sizeof(sock), "%s/ports.sock", dir);
	o.backend = (struct net_backend_opts){ .kind = NET_BACKEND_SWITCH, .path = sock, .label = "guest/net0" };
	memcpy(o.backend.mac, MAC_A, 6);
	if (virtio_net_create(&dev, &o, err, sizeof(err)) != 0)
		FAILF("virtio_net_create: %s", err);
	fx_attach(dev, 22);
	driver_init(~0ULL);
	adapter_offloads(&v, sock, MAC_B, "raw-offloads");
	adapter(&p, sock, MAC_G, false, "raw-plain");
	CHECK(v.vnet_hdr);
	CHECK(!p.vnet_hdr);
	post_rx(8, 4096);

	/* A TSO frame to the guest, which negotiated TSO: whole, with its
	 * header, in mergeable buffers. */
	len = nf_build(f, false, false, 8000, 0x18, 1, 1448, &h, &l);
	memcpy(f, MAC_A, 6);
	memcpy(f + 6, MAC_B, 6);
	CHECK_EQ(be_send_h(&v, &h, f, len), (ssize_t)len);
	u = take_used(RXQ);
	CHECK_EQ(u.id, 0);
	CHECK_EQ(u.len, 4096);
	u = take_used(RXQ);
	CHECK_EQ(u.id, 1);
	CHECK_EQ(u.len, HDR + len - 4096);
	memcpy(&gh, host(RXBUF(0)), HDR);
	CHECK_EQ(gh.num_buffers, 2);
	CHECK_EQ(gh.gso_type, NET_HDR_GSO_TCPV4);
	CHECK_EQ(gh.gso_size, 1448);
	CHECK_EQ(gh.flags, NET_HDR_F_NEEDS_CSUM);
	CHECK_EQ(gh.csum_start, l.l4);
	CHECK_EQ(gh.csum_offset, 16);
	CHECK(!memcmp(host(RXBUF(0) + HDR), f, 4096 - HDR));
	CHECK(!memcmp(host(RXBUF(1)), f + 4096 - HDR, len - (4096 - HDR)));

	/* The same to the plain adapter: the switch cuts it into 6 segments. */
	memcpy(f, MAC_G, 6);
	CHECK_EQ(be_send_h(&v, &h, f, len), (ssize_t)len);
	at = 0;
	for (int i = 0; i < 6; i++) {
		n = be_recv(&p, got, sizeof(got), 2000);
		CHECK_EQ(n, l.payload + (i < 5 ? 1448 : 8000 - 5 * 1448));
		if (!nf_valid(got, (size_t)n, &l))
			FAILF("segment %d from the switch: bad checksum", i);
		memcpy(joined + at, got + l.payload, (size_t)n - l.payload);
		at += (size_t)n - l.payload;
	}
	CHECK_EQ(at, 8000);
	CHECK(!memcmp(joined, f + l.payload, 8000));

	/* The guest's TSO frame reaches the raw adapter whole. */
	len = tx_tso(MAC_B, MAC_A, 8000, 1448, &l);
	CHECK_EQ(take_used(TXQ).id, 0);
	n = be_recv_h(&v, &h, got, sizeof(got), 2000);
	CHECK_EQ(n, len);
	CHECK_EQ(h.gso_type, NET_HDR_GSO_TCPV4);
	CHECK_EQ(h.gso_size, 1448);
	CHECK(!memcmp(got, host(TXBUF(0) + HDR), len));

	/* A header that lies (segment size 0): dropped, counted, logged. */
	len = nf_build(f, false, false, 3000, 0x18, 2, 1448, &h, &l);
	memcpy(f, MAC_A, 6);
	memcpy(f + 6, MAC_B, 6);
	h.gso_size = 0;
	CHECK_EQ(be_send_h(&v, &h, f, len), (ssize_t)len);
	CHECK(nothing_used(RXQ, 300));
	CHECK_EQ(SWITCH("show", "t3", "--json", "--store", net.store), 0);
	CHECK_EQ(json_port_field(out, "raw-offloads", "droppedOffload"), 1);
	CHECK_EQ(json_port_field(out, "raw-offloads", "rxOffloaded"), 2);
	CHECK_EQ(json_port_field(out, "guest/net0", "rxOffloaded"), 1);
	CHECK_EQ(json_port_field(out, "raw-plain", "rxOffloaded"), 0);

	/* The guest again, now without offloads: the device cuts the frame. */
	driver_init(PLAIN);
	post_rx(8, HDR + 1518);
	h.gso_size = 1448;
	CHECK_EQ(be_send_h(&v, &h, f, len), (ssize_t)len);
	at = 0;
	for (int i = 0; i < 3; i++) {
		u = take_used(RXQ);
		CHECK_EQ(u.id, i);
		CHECK_EQ(u.len, HDR + l.payload + (i < 2 ? 1448 : 3000 - 2 * 1448));
		memcpy(&gh, host(RXBUF(i)), HDR);
		CHECK_EQ(gh.flags, 0);
		CHECK_EQ(gh.gso_type, 0);
		if (!nf_valid(host(RXBUF(i) + HDR), u.len - HDR, &l))
			FAILF("segment %d from the device: bad checksum", i);
		memcpy(joined + at, (uint8_t *)host(RXBUF(i) + HDR) + l.payload, u.len - HDR - l.payload);
		at += u.len - HDR - l.payload;
	}
	CHECK_EQ(at, 3000);
	CHECK(!memcmp(joined, f + l.payload, 3000));
	virtio_net_get_stats(fx.dev, &st);
	CHECK_EQ(st.finished, 1);
	CHECK_EQ(st.rx_offloaded, 2);
	CHECK_EQ(st.rx_dropped, 0);

	net_backend_close(&v);
	net_backend_close(&p);
	fx_close_device();
	CHECK_EQ(SWITCH("remove", "t3", "--force", "--store", net.store), 0);
	fx_teardown();
}

int main(void)
{
	RUN(test_probe_and_config);
	RUN(test_rx_frame_reaches_guest);
	RUN(test_rx_waits_for_buffers);
	RUN(test_rx_oversized_frame_dropped);
	RUN(test_tx_frame_leaves_without_header);
	RUN(test_tx_malformed_chains);
	RUN(test_tx_backpressure_keeps_order);
	RUN(test_link_down_when_backend_closes);
	RUN(test_create_refuses_bad_options);
	RUN(test_tap_backend);
	RUN(test_tap_held_across_devices);
	RUN(test_switch_daemon_forwards_and_drops_spoofed);
	RUN(test_virtio_net_on_switch);
	RUN(test_tx_tso_finished_for_plain_backend);
	RUN(test_rx_mergeable_buffers);
	RUN(test_offloads_through_switch);
	fx_teardown();
	return HARNESS_END();
}

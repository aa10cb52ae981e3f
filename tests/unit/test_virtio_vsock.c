/* Tier 1: virtio-vsock behind the virtio-mmio transport, driven as a guest
 * driver does, with its host side on real Unix sockets: connections both
 * ways, data both ways, credit, shutdown, and a guest that sends past its
 * credit or to nowhere. */
#include "virtio_fixture.h"
#include "snap.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

HARNESS_DEFINE;

#define RXBUF(i)  (MEM_GPA + 0x20000 + (uint64_t)(i) * 0x1000)
#define TXBUF(i)  (MEM_GPA + 0x40000 + (uint64_t)(i) * 0x1000)
#define EVBUF     (MEM_GPA + 0x60000)
#define GUEST_CID 42
#define HDR 44

enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE, OP_CREDIT_REQUEST };

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

static char dir[64], uds[128];
static unsigned int tx_next;

/* The device with 8 receive buffers of 4 KiB, the first small ones of 16
 * bytes instead. */
static void setup_with(uint32_t buf_size, unsigned int small)
{
	struct virtio_vsock_opts o = { .guest_cid = GUEST_CID, .uds_path = uds, .buf_size = buf_size, .max_conns = 4 };
	struct virtio_dev *dev;
	char err[256];

	snprintf(dir, sizeof(dir), "/tmp/nestvm-vsock-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	fx_map();
	CHECK_EQ(virtio_vsock_create(&dev, &o, err, sizeof(err)), 0);
	fx_attach(dev, 22);
	wr(R_STATUS, 0);
	CHECK_EQ(rd(R_DEVICE_ID), VIRTIO_ID_VSOCK);
	fx_features(~0ULL);
	fx_queue(0);
	fx_queue(1);
	fx_queue(2);
	fx_driver_ok();
	tx_next = 0;
	for (unsigned int i = 0; i < 8; i++) {
		fx_desc(0, i, RXBUF(i), i < small ? 16 : 4096, VIRTQ_DESC_F_WRITE, 0);
		fx_post(0, (uint16_t)i);
	}
}

static void setup(uint32_t buf_size)
{
	setup_with(buf_size, 0);
}

static void teardown(void)
{
	fx_release();
	harness_remove_tree(dir);
}

/* The next packet the device gives the guest; its payload into data. */
static struct hdr rx_packet(void *data, size_t cap)
{
	struct virtq_used_elem u;
	struct hdr h;

	if (!fx_wait_used(0, 3000, &u))
		FAILF("no packet for the guest within 3 s");
	CHECK(u.len >= HDR);
	memcpy(&h, host(RXBUF(u.id)), HDR);
	CHECK_EQ(u.len, HDR + h.len);
	if (data)
		memcpy(data, host(RXBUF(u.id)) + HDR, MIN(cap, (size_t)h.len));
	fx_post(0, (uint16_t)u.id);     /* the buffer goes back */
	return h;
}

static void tx_packet(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t flags, const void *data,
		      uint32_t len, uint32_t fwd_cnt)
{
	struct hdr h = { GUEST_CID, 2, src_port, dst_port, len, 1, op, flags, 65536, fwd_cnt };
	unsigned int i = tx_next++ % QSZ;

	memcpy(host(TXBUF(i)), &h, HDR);
	if (len)
		memcpy(host(TXBUF(i)) + HDR, data, len);
	fx_desc(1, i, TXBUF(i), HDR + len, 0, 0);
	fx_post(1, (uint16_t)i);
	if (!fx_wait_used(1, 3000, NULL))
		FAILF("the device did not take a packet within 3 s");
}

static int listen_at(uint32_t port)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s_%u", uds, port);
	fd = util_unix_listen(path, SOCK_STREAM, 4);
	CHECK(fd >= 0);
	return fd;
}

static ssize_t recv_wait(int fd, void *buf, size_t len)
{
	struct pollfd p = { fd, POLLIN, 0 };

	if (poll(&p, 1, 3000) != 1)
		return -ETIMEDOUT;
	return recv(fd, buf, len, 0);
}

static void test_config_and_guest_connects(void)
{
	uint64_t cid = 0;
	char buf[64];
	struct hdr h;
	int lfd, fd;

	setup(0);
	virtio_mmio_io(fx.m, R_CONFIG, &cid, 8, false);
	CHECK_EQ(cid, GUEST_CID);
	lfd = listen_at(5000);
	tx_packet(1234, 5000, OP_REQUEST, 0, NULL, 0, 0);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_RESPONSE);
	CHECK_EQ(h.src_cid, 2);
	CHECK_EQ(h.dst_cid, GUEST_CID);
	CHECK_EQ(h.src_port, 5000);
	CHECK_EQ(h.dst_port, 1234);
	CHECK_EQ(h.buf_alloc, VIRTIO_VSOCK_BUF_SIZE);
	fd = accept(lfd, NULL, NULL);
	CHECK(fd >= 0);
	tx_packet(1234, 5000, OP_RW, 0, "hello", 5, 0);
	CHECK_EQ(recv_wait(fd, buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "hello", 5));
	CHECK_EQ(send(fd, "world!", 6, 0), 6);
	h = rx_packet(buf, sizeof(buf));
	CHECK_EQ(h.op, OP_RW);
	CHECK_EQ(h.len, 6);
	CHECK(!memcmp(buf, "world!", 6));
	/* The guest hangs up: the host reads the end, the guest gets RST. */
	tx_packet(1234, 5000, OP_SHUTDOWN, 3, NULL, 0, 6);
	CHECK_EQ(recv_wait(fd, buf, sizeof(buf)), 0);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_RST);
	close(fd);
	close(lfd);
	teardown();
}

static void test_host_connects(void)
{
	char buf[64];
	unsigned int port;
	struct hdr h;
	int fd;

	setup(0);
	fd = util_unix_connect(uds, SOCK_STREAM);
	CHECK(fd >= 0);
	CHECK_EQ(send(fd, "CONNECT 52\n", 11, 0), 11);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_REQUEST);
	CHECK_EQ(h.dst_port, 52);
	CHECK(h.src_port >= (1u << 30));
	port = h.src_port;
	tx_packet(52, port, OP_RESPONSE, 0, NULL, 0, 0);
	memset(buf, 0, sizeof(buf));
	CHECK(recv_wait(fd, buf, sizeof(buf)) > 0);
	snprintf(buf + 32, 32, "OK %u\n", port);
	CHECK_STR(buf, buf + 32);
	CHECK_EQ(send(fd, "ping", 4, 0), 4);
	h = rx_packet(buf, sizeof(buf));
	CHECK_EQ(h.op, OP_RW);
	CHECK_EQ(h.len, 4);
	CHECK_EQ(h.dst_port, 52);
	/* The host half-closes: the guest is told it gets no more, and may
	 * still send; then it shuts down both ways and gets RST. */
	shutdown(fd, SHUT_WR);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_SHUTDOWN);
	CHECK_EQ(h.flags, 2);                           /* SEND: no more from the host */
	tx_packet(52, port, OP_RW, 0, "pong", 4, 4);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(recv_wait(fd, buf, sizeof(buf)), 4);
	CHECK(!memcmp(buf, "pong", 4));
	tx_packet(52, port, OP_SHUTDOWN, 3, NULL, 0, 4);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_RST);
	CHECK_EQ(recv_wait(fd, buf, sizeof(buf)), 0);
	close(fd);
	teardown();
}

/* A host program that says something else is hung up on; the device goes on. */
static void test_bad_connect_line(void)
{
	char buf[16];
	int fd;

	setup(0);
	fd = util_unix_connect(uds, SOCK_STREAM);
	CHECK(fd >= 0);
	CHECK_EQ(send(fd, "CONNECT x52\n", 12, 0), 12);
	CHECK_EQ(recv_wait(fd, buf, sizeof(buf)), 0);
	close(fd);
	fd = util_unix_connect(uds, SOCK_STREAM);
	CHECK(fd >= 0);
	memset(buf, 'A', sizeof(buf));
	for (int i = 0; i < 4; i++)
		(void)send(fd, buf, sizeof(buf), MSG_NOSIGNAL);        /* no newline, too long */
	{
		ssize_t n = recv_wait(fd, buf, sizeof(buf));    /* closed, unread bytes and all */

		CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
	}
	close(fd);
	teardown();
}

/* Nobody listens at the port, an unknown connection, a wrong source: RST or nothing. */
static void test_refusals(void)
{
	struct virtio_vsock_stats st;
	struct hdr h;

	setup(0);
	tx_packet(1000, 7777, OP_REQUEST, 0, NULL, 0, 0);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_RST);
	CHECK_EQ(h.dst_port, 1000);
	tx_packet(1001, 7778, OP_RW, 0, "x", 1, 0);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_RST);
	{
		struct hdr bad = { 99, 2, 1, 2, 0, 1, OP_REQUEST, 0, 0, 0 };

		memcpy(host(TXBUF(15)), &bad, HDR);
		fx_desc(1, 15, TXBUF(15), HDR, 0, 0);
		fx_post(1, 15);
		CHECK(fx_wait_used(1, 3000, NULL));
	}
	/* A length past what the buffer holds. */
	{
		struct hdr bad = { GUEST_CID, 2, 1, 2, 4000, 1, OP_RW, 0, 0, 0 };

		memcpy(host(TXBUF(14)), &bad, HDR);
		fx_desc(1, 14, TXBUF(14), HDR + 10, 0, 0);
		fx_post(1, 14);
		CHECK(fx_wait_used(1, 3000, NULL));
	}
	virtio_vsock_get_stats(fx.dev, &st);
	CHECK_EQ(st.dropped, 2);
	CHECK_EQ(st.conns_refused, 1);
	CHECK(!virtio_dev_is_broken(fx.dev));
	teardown();
}

/* Receive buffers too small for a packet come back unused; the device
 * goes on with the next ones and does not spin on them. */
static void test_small_rx_buffers(void)
{
	struct virtq_used_elem u;
	struct hdr h;
	int lfd;

	setup_with(0, 3);
	lfd = listen_at(5001);
	tx_packet(1, 5001, OP_REQUEST, 0, NULL, 0, 0);
	for (int i = 0; i < 3; i++) {
		CHECK(fx_wait_used(0, 3000, &u));
		CHECK_EQ(u.id, i);
		CHECK_EQ(u.len, 0);
	}
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_RESPONSE);
	CHECK(!virtio_dev_is_broken(fx.dev));
	close(lfd);
	teardown();
}

/* The guest sends past the credit it was given while the host reads
 * nothing: its connection is reset, the others go on. */
static void test_credit_enforced(void)
{
	struct virtio_vsock_stats st;
	static char blob[1024];
	struct hdr h;
	int lfd, fd;

	setup(2048);
	lfd = listen_at(6000);
	tx_packet(2000, 6000, OP_REQUEST, 0, NULL, 0, 0);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_RESPONSE);
	CHECK_EQ(h.buf_alloc, 2048);
	fd = accept(lfd, NULL, NULL);
	CHECK(fd >= 0);
	{
		int small = 1;          /* the smallest send buffer: the host socket fills */

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	memset(blob, 'z', sizeof(blob));
	for (int i = 0; i < 400; i++) {
		virtio_vsock_get_stats(fx.dev, &st);
		if (st.credit_violations)
			break;
		tx_packet(2000, 6000, OP_RW, 0, blob, sizeof(blob), 0);
	}
	virtio_vsock_get_stats(fx.dev, &st);
	CHECK_EQ(st.credit_violations, 1);
	for (;;) {
		h = rx_packet(NULL, 0);
		if (h.op == OP_RST)
			break;
		CHECK_EQ(h.op, OP_CREDIT_UPDATE);
	}
	close(fd);
	close(lfd);
	teardown();
}

/* A new device on the saved state of another, as a restored VM has it. */
static int restore_into(uint64_t cid, const struct snap_buf *saved, char *why, size_t whylen)
{
	struct virtio_vsock_opts o = { .guest_cid = cid, .uds_path = uds, .max_conns = 4 };
	struct irq_line irq = { irq_rec_set, &fx.irq, 22 };
	struct virtio_dev *dev;
	struct snap_cur c;
	char err[256];
	int r;

	CHECK_EQ(virtio_vsock_create(&dev, &o, err, sizeof(err)), 0);
	fx.dev = dev;
	CHECK_EQ(virtio_mmio_create(&fx.m, &fx.mem, irq, dev), 0);
	snap_cur_init(&c, saved->data, saved->len);
	r = virtio_mmio_load(fx.m, &c);
	snprintf(why, whylen, "%s", c.why);
	if (r == 0)
		virtio_dev_kick_all(dev);
	return r;
}

/* Saved with a connection open, the device runs on; restored (guest memory
 * as it was at the save, as a VM's restore has it), it carries its queues, tells the guest's driver its connections are gone (a
 * transport reset event), refuses the old connection's packets, and takes
 * new ones both ways. A state of another CID is refused. */
static void test_save_restore(void)
{
	struct snap_buf saved = { 0 };
	struct virtio_fx at_save;
	unsigned int tx_at_save;
	uint8_t *mem_at_save = malloc(MEM_SIZE);
	struct virtq_used_elem u;
	char buf[64], why[256];
	unsigned int port;
	struct hdr h;
	int lfd, fd, fd2;

	setup(0);
	memset(host(EVBUF), 0xff, 8);
	fx_desc(2, 0, EVBUF, 8, VIRTQ_DESC_F_WRITE, 0);
	fx_post(2, 0);
	lfd = listen_at(5000);
	tx_packet(1234, 5000, OP_REQUEST, 0, NULL, 0, 0);
	CHECK_EQ(rx_packet(NULL, 0).op, OP_RESPONSE);
	fd = accept(lfd, NULL, NULL);
	CHECK(fd >= 0);

	CHECK(mem_at_save);
	virtio_dev_hold(fx.dev);
	virtio_mmio_save(fx.m, &saved);
	memcpy(mem_at_save, fx.buf, MEM_SIZE);
	at_save = fx;
	tx_at_save = tx_next;
	virtio_dev_release(fx.dev);
	/* The saved device carries on as it was. */
	tx_packet(1234, 5000, OP_RW, 0, "before", 6, 0);
	CHECK_EQ(recv_wait(fd, buf, sizeof(buf)), 6);
	CHECK(!fx_wait_used(2, 100, NULL));     /* and owes no event */
	fx_close_device();
	CHECK_EQ(recv_wait(fd, buf, sizeof(buf)), 0);   /* its host ends close with it */
	close(fd);
	memcpy(fx.buf, mem_at_save, MEM_SIZE);
	memcpy(fx.avail_idx, at_save.avail_idx, sizeof(fx.avail_idx));
	memcpy(fx.used_seen, at_save.used_seen, sizeof(fx.used_seen));
	tx_next = tx_at_save;
	free(mem_at_save);

	CHECK_EQ(restore_into(GUEST_CID + 1, &saved, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "guest CID 42 where this machine's is 43"));
	fx_close_device();

	CHECK_EQ(restore_into(GUEST_CID, &saved, why, sizeof(why)), 0);
	CHECK_EQ(rd(R_STATUS), 0xf);
	if (!fx_wait_used(2, 3000, &u))
		FAILF("no transport reset event within 3 s");
	CHECK_EQ(u.id, 0);
	CHECK_EQ(u.len, 4);
	{
		uint32_t id;

		memcpy(&id, host(EVBUF), 4);
		CHECK_EQ(id, 0);                /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
	}
	tx_packet(1234, 5000, OP_RW, 0, "after", 5, 6);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_RST);
	CHECK_EQ(h.dst_port, 1234);
	/* The guest connects anew, and a host program reaches it too. */
	tx_packet(1235, 5000, OP_REQUEST, 0, NULL, 0, 0);
	CHECK_EQ(rx_packet(NULL, 0).op, OP_RESPONSE);
	fd = accept(lfd, NULL, NULL);
	CHECK(fd >= 0);
	tx_packet(1235, 5000, OP_RW, 0, "again", 5, 0);
	CHECK_EQ(recv_wait(fd, buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "again", 5));
	fd2 = util_unix_connect(uds, SOCK_STREAM);
	CHECK(fd2 >= 0);
	CHECK_EQ(send(fd2, "CONNECT 52\n", 11, 0), 11);
	h = rx_packet(NULL, 0);
	CHECK_EQ(h.op, OP_REQUEST);
	port = h.src_port;
	tx_packet(52, port, OP_RESPONSE, 0, NULL, 0, 0);
	memset(buf, 0, sizeof(buf));
	CHECK(recv_wait(fd2, buf, sizeof(buf)) > 0);
	CHECK(!strncmp(buf, "OK ", 3));
	close(fd2);
	close(fd);
	close(lfd);
	snap_buf_free(&saved);
	teardown();
}

int main(void)
{
	RUN(test_config_and_guest_connects);
	RUN(test_host_connects);
	RUN(test_bad_connect_line);
	RUN(test_refusals);
	RUN(test_credit_enforced);
	RUN(test_small_rx_buffers);
	RUN(test_save_restore);
	return HARNESS_END();
}

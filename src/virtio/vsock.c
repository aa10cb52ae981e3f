/* virtio-vsock (virtio 1.2, 5.10), stream sockets, with the host side on
 * Unix sockets as Firecracker's hybrid vsock has it: a host program connects
 * to the device's socket and writes "CONNECT <port>\n" to reach guest port
 * <port>, and is answered "OK <host port>\n"; a guest connecting to host
 * port P reaches whoever listens at "<socket>_P". One worker thread polls
 * the host sockets and serves the queues. The guest is held to the credit
 * it was given: a connection that sends past it is reset, and each round
 * serves a bounded number of packets and connections in turn. */
#include "virtio/virtio.h"
#include "sandbox.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define VSOCK_RXQ               0
#define VSOCK_TXQ               1
#define VSOCK_EVQ               2
#define VSOCK_QUEUE             256
#define VSOCK_CONFIG_SIZE       8       /* le64 guest_cid */

#define VSOCK_HDR_LEN           44
#define VSOCK_TYPE_STREAM       1
#define VSOCK_OP_REQUEST        1
#define VSOCK_OP_RESPONSE       2
#define VSOCK_OP_RST            3
#define VSOCK_OP_SHUTDOWN       4
#define VSOCK_OP_RW             5
#define VSOCK_OP_CREDIT_UPDATE  6
#define VSOCK_OP_CREDIT_REQUEST 7
#define VSOCK_SHUTDOWN_RCV      1u
#define VSOCK_SHUTDOWN_SEND     2u
#define VSOCK_EVENT_TRANSPORT_RESET 0   /* virtio_vsock_event.id */

#define VSOCK_BUDGET            128     /* packets per queue per round */
#define VSOCK_LINE_MAX          32      /* "CONNECT 4294967295\n" and some */
#define VSOCK_CONNECT_MS        10000   /* a host connection's CONNECT line and the guest's answer */
#define VSOCK_EPHEMERAL_BASE    (1u << 30)

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct vsock_hdr) == VSOCK_HDR_LEN, "virtio_vsock_hdr is 44 bytes");

enum vsock_state {
	VS_FREE,
	VS_LINE,                /* host side: reading "CONNECT <port>\n" */
	VS_REQUESTED,           /* host side: REQUEST sent or due, no answer yet */
	VS_OPEN,
	VS_CLOSING,             /* an RST is owed to the guest, then it goes */
};

/* Control packets a connection owes the guest. */
#define P_REQUEST       1u
#define P_RESPONSE      2u
#define P_RST           4u
#define P_SHUTDOWN      8u
#define P_CREDIT        16u

struct vsock_conn {
	enum vsock_state state;
	int fd;                         /* the host socket */
	uint32_t local_port;            /* the host side's port */
	uint32_t peer_port;             /* the guest's */
	char line[VSOCK_LINE_MAX];
	unsigned int line_len;
	unsigned int pending;           /* P_* */
	uint64_t deadline_ns;           /* VS_LINE, VS_REQUESTED */
	bool readable;                  /* the host socket has data (or its end) */
	bool host_eof;
	bool peer_done;                 /* the guest sends no more: half-close once written */
	bool peer_gone;                 /* the guest shut both ways: reset once written */
	/* guest to host: bytes taken from the guest but not yet written */
	uint8_t *buf;
	uint32_t buf_head, buf_len;
	uint32_t fwd_cnt, fwd_told;     /* written to the host socket; last told to the guest */
	/* host to guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
};

struct virtio_vsock {
	struct virtio_dev vdev;         /* first: the ops get this pointer */
	struct virtio_vsock_opts opts;
	char uds[VIRTIO_VSOCK_PATH_MAX];
	int listen_fd;
	struct virtio_poller worker;    /* polls the sockets and the kicks */
	_Atomic bool reset_owed;        /* restored: the guest hears its connections are gone */

	/* The worker's own. */
	struct virtq_elem rx, tx, ev;
	bool rx_held, rx_starved;
	struct iovec *iov;
	unsigned int iov_cap;
	struct vsock_conn *conns;
	unsigned int next_conn;         /* where the next receive round starts */
	uint32_t next_port;
	struct virtio_vsock_stats stats;
};

static struct virtio_vsock *to_vsock(struct virtio_dev *dev)
{
	return (struct virtio_vsock *)dev;
}

/* The worker counts; any thread reads. */
#define VS_STAT(vs, field, n) __atomic_fetch_add(&(vs)->stats.field, (uint64_t)(n), __ATOMIC_RELAXED)

/* ---- connections ---- */

static void conn_free(struct vsock_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->state = VS_FREE;
}

static struct vsock_conn *conn_new(struct virtio_vsock *vs)
{
	for (unsigned int i = 0; i < vs->opts.max_conns; i++)
		if (vs->conns[i].state == VS_FREE)
			return &vs->conns[i];
	return NULL;
}

static struct vsock_conn *conn_find(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port)
{
	for (unsigned int i = 0; i < vs->opts.max_conns; i++) {
		struct vsock_conn *c = &vs->conns[i];

		if (c->state != VS_FREE && c->state != VS_LINE && c->local_port == local_port &&
		    c->peer_port == peer_port)
			return c;
	}
	return NULL;
}

static bool port_in_use(struct virtio_vsock *vs, uint32_t port)
{
	for (unsigned int i = 0; i < vs->opts.max_conns; i++)
		if (vs->conns[i].state != VS_FREE && vs->conns[i].local_port == port)
			return true;
	return false;
}

static uint32_t ephemeral_port(struct virtio_vsock *vs)
{
	for (;;) {
		uint32_t p = vs->next_port++;

		if (vs->next_port == 0)
			vs->next_port = VSOCK_EPHEMERAL_BASE;
		if (p >= VSOCK_EPHEMERAL_BASE && !port_in_use(vs, p))
			return p;
	}
}

/* Ends a connection towards the guest: an RST is owed unless the guest
 * never heard of it; the host socket closes now. */
static void conn_reset(struct vsock_conn *c, bool tell_guest)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->buf_len = 0;
	if (tell_guest) {
		c->pending = P_RST;
		c->state = VS_CLOSING;
	} else {
		conn_free(c);
	}
}

/* Bytes the guest may still send us: what we advertise minus what sits here. */
static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Writes what the guest sent to the host socket; false if it is gone. */
static bool conn_flush(struct virtio_vsock *vs, struct vsock_conn *c)
{
	uint32_t cap = vs->opts.buf_size;

	while (c->buf_len) {
		uint32_t chunk = MIN(c->buf_len, cap - c->buf_head);
		ssize_t n = send(c->fd, c->buf + c->buf_head, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return false;
		c->buf_head = (c->buf_head + (uint32_t)n) % cap;
		c->buf_len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (!c->buf_len && c->peer_done)
		shutdown(c->fd, SHUT_WR);
	/* Tell the guest of the room made once it is worth a packet: a
	 * quarter of the buffer. Until then it counts at most that quarter
	 * as taken that is free, so it never waits on credit it has. */
	if (c->fwd_cnt - c->fwd_told >= cap / 4)
		c->pending |= P_CREDIT;
	return true;
}

/* ---- the receive queue: packets to the guest ---- */

static void hdr_for(const struct virtio_vsock *vs, const struct vsock_conn *c, struct vsock_hdr *h,
		    uint16_t op, uint32_t flags, uint32_t len)
{
	*h = (struct vsock_hdr){
		.src_cid = VIRTIO_VSOCK_HOST_CID, .dst_cid = vs->opts.guest_cid,
		.src_port = c->local_port, .dst_port = c->peer_port, .len = len,
		.type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = vs->opts.buf_size, .fwd_cnt = c->fwd_cnt,
	};
}

/* A buffer of the receive queue that holds a header and some data; false
 * when the guest has none. Smaller ones go back unused (the driver's
 * mistake, said once in a while): the budget bounds how many per round. */
static bool rx_take(struct virtio_vsock *vs)
{
	struct virtqueue *vq = &vs->vdev.vqs[VSOCK_RXQ];

	if (vs->rx_held)
		return true;
	for (unsigned int n = 0; n < VSOCK_BUDGET; n++) {
		if (vs->rx_starved || virtq_pop(vq, &vs->rx) < 0)
			break;
		if (vs->rx.in_len > VSOCK_HDR_LEN) {
			vs->rx_held = true;
			return true;
		}
		virtio_dev_warn(&vs->vdev, "a receive buffer of %llu bytes holds no packet; returned unused",
				(unsigned long long)vs->rx.in_len);
		virtq_push(vq, &vs->rx, 0);
	}
	vs->rx_starved = true;
	return false;
}

/* Sends h (and len payload bytes already in place) in the held buffer. */
static void rx_send(struct virtio_vsock *vs, const struct vsock_hdr *h)
{
	struct virtqueue *vq = &vs->vdev.vqs[VSOCK_RXQ];
	uint32_t len = 0;

	if (virtq_elem_write(&vs->rx, 0, h, sizeof(*h)) == sizeof(*h))
		len = VSOCK_HDR_LEN + h->len;
	virtq_push(vq, &vs->rx, len);
	vs->rx_held = false;
	VS_STAT(vs, rx_packets, 1);
}

/* One control packet the connection owes; true if one went. */
static bool conn_send_control(struct virtio_vsock *vs, struct vsock_conn *c)
{
	struct vsock_hdr h;
	unsigned int p = c->pending;

	if (!p)
		return false;
	if (p & P_RST) {
		hdr_for(vs, c, &h, VSOCK_OP_RST, 0, 0);
		rx_send(vs, &h);
		conn_free(c);
		return true;
	}
	if (p & P_REQUEST) {
		hdr_for(vs, c, &h, VSOCK_OP_REQUEST, 0, 0);
		c->pending &= ~P_REQUEST;
	} else if (p & P_RESPONSE) {
		hdr_for(vs, c, &h, VSOCK_OP_RESPONSE, 0, 0);
		c->pending &= ~(P_RESPONSE | P_CREDIT);
		c->fwd_told = c->fwd_cnt;
	} else if (p & P_SHUTDOWN) {
		hdr_for(vs, c, &h, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, 0);
		c->pending &= ~P_SHUTDOWN;
	} else {
		hdr_for(vs, c, &h, VSOCK_OP_CREDIT_UPDATE, 0, 0);
		c->pending &= ~P_CREDIT;
		c->fwd_told = c->fwd_cnt;
	}
	rx_send(vs, &h);
	return true;
}

/* Reads from the host socket straight into the held buffer, no more than
 * the guest has room for. */
static void conn_send_data(struct virtio_vsock *vs, struct vsock_conn *c)
{
	uint32_t room = (uint32_t)MIN(vs->rx.in_len - VSOCK_HDR_LEN, (uint64_t)peer_credit(c));
	struct vsock_hdr h;
	ssize_t n;
	int niov;

	room = MIN(room, vs->opts.buf_size);
	niov = virtq_elem_in_slice(&vs->rx, VSOCK_HDR_LEN, room, vs->iov, vs->iov_cap);
	if (niov <= 0)
		return;
	n = readv(c->fd, vs->iov, niov);
	c->readable = false;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* The host side sends no more: the guest reads to the end and may
		 * still send (a half-close), until it closes or a write fails. */
		c->host_eof = true;
		c->pending |= P_SHUTDOWN;
		return;
	}
	hdr_for(vs, c, &h, VSOCK_OP_RW, 0, (uint32_t)n);
	c->tx_cnt += (uint32_t)n;
	c->pending &= ~P_CREDIT;
	c->fwd_told = c->fwd_cnt;
	rx_send(vs, &h);
	VS_STAT(vs, rx_bytes, (uint64_t)n);
}

static bool conn_wants_rx(struct virtio_vsock *vs, const struct vsock_conn *c)
{
	(void)vs;
	return c->pending || (c->state == VS_OPEN && c->readable && !c->host_eof && peer_credit(c));
}

/* Serves the connections in turn, starting after the one served first last
 * time, so that one busy connection cannot starve the others. */
static bool vsock_rx(struct virtio_vsock *vs)
{
	struct virtqueue *vq = &vs->vdev.vqs[VSOCK_RXQ];
	unsigned int sent = 0, n = vs->opts.max_conns, idle = 0, steps = 0;
	unsigned int i = vs->next_conn;

	/* steps bounds the round even where a connection makes no progress. */
	while (sent < VSOCK_BUDGET && idle < n && steps++ < 4 * VSOCK_BUDGET + n) {
		struct vsock_conn *c = &vs->conns[i % n];

		i++;
		if (c->state == VS_FREE || !conn_wants_rx(vs, c)) {
			idle++;
			continue;
		}
		if (!rx_take(vs))
			break;
		idle = 0;
		if (!conn_send_control(vs, c)) {
			conn_send_data(vs, c);
			if (!vs->rx_held)
				sent++;
			continue;
		}
		sent++;
	}
	vs->next_conn = i % n;
	if (sent)
		virtq_signal(vq);
	return sent == VSOCK_BUDGET;
}

/* ---- the transmit queue: packets from the guest ---- */

/* A packet for no connection we know: answered with RST, unless an RST. */
static void vsock_refuse(struct virtio_vsock *vs, const struct vsock_hdr *h)
{
	struct vsock_conn *c;

	if (h->op == VSOCK_OP_RST)
		return;
	c = conn_new(vs);
	if (!c)
		return;         /* no room even to say no: the guest times out */
	*c = (struct vsock_conn){ .state = VS_CLOSING, .fd = -1, .local_port = h->dst_port,
				  .peer_port = h->src_port, .pending = P_RST };
}

/* The guest connects to host port dst_port: to "<uds>_<port>". */
static void vsock_guest_connect(struct virtio_vsock *vs, const struct vsock_hdr *h)
{
	char path[VIRTIO_VSOCK_PATH_MAX + 16];
	struct vsock_conn *c = conn_new(vs);
	int fd;

	if (!c) {
		VS_STAT(vs, conns_refused, 1);
		return;
	}
	snprintf(path, sizeof(path), "%s_%u", vs->uds, h->dst_port);
	fd = util_unix_connect(path, SOCK_STREAM | SOCK_NONBLOCK);
	*c = (struct vsock_conn){
		.state = VS_OPEN, .fd = fd, .local_port = h->dst_port, .peer_port = h->src_port,
		.pending = P_RESPONSE, .peer_buf_alloc = h->buf_alloc, .peer_fwd_cnt = h->fwd_cnt,
	};
	if (fd < 0) {
		VS_STAT(vs, conns_refused, 1);
		c->state = VS_CLOSING;
		c->pending = P_RST;
		return;
	}
	VS_STAT(vs, conns_opened, 1);
}

/* Payload of an RW packet into the connection's buffer, within the credit
 * we gave: a guest that sends past it is reset. */
static void vsock_guest_data(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_elem *e,
			     uint32_t len)
{
	uint32_t cap = vs->opts.buf_size;
	uint32_t tail;

	if (c->state != VS_OPEN)
		return;         /* after our RST: dropped */
	if (len > cap - c->buf_len) {
		virtio_dev_warn(&vs->vdev, "port %u: the guest sent %u bytes with %u of credit left; "
				"connection reset", c->local_port, len, cap - c->buf_len);
		VS_STAT(vs, credit_violations, 1);
		conn_reset(c, true);
		return;
	}
	if (!len)
		return;
	if (!c->buf) {
		c->buf = malloc(cap);
		if (!c->buf) {
			conn_reset(c, true);
			return;
		}
	}
	tail = (c->buf_head + c->buf_len) % cap;
	if (tail + len <= cap) {
		virtq_elem_read(e, VSOCK_HDR_LEN, c->buf + tail, len);
	} else {
		virtq_elem_read(e, VSOCK_HDR_LEN, c->buf + tail, cap - tail);
		virtq_elem_read(e, VSOCK_HDR_LEN + (cap - tail), c->buf, len - (cap - tail));
	}
	c->buf_len += len;
	VS_STAT(vs, tx_bytes, len);
	if (!conn_flush(vs, c))
		conn_reset(c, true);
}

static void vsock_packet(struct virtio_vsock *vs, const struct virtq_elem *e)
{
	struct vsock_hdr h;
	struct vsock_conn *c;

	if (virtq_elem_read(e, 0, &h, sizeof(h)) != sizeof(h)) {
		virtio_dev_warn(&vs->vdev, "a packet shorter than its header; dropped");
		return;
	}
	VS_STAT(vs, tx_packets, 1);
	/* Only the guest's own address to ours: anything else is dropped. */
	if (h.src_cid != vs->opts.guest_cid || h.dst_cid != VIRTIO_VSOCK_HOST_CID) {
		VS_STAT(vs, dropped, 1);
		return;
	}
	if (h.len > e->out_len - VSOCK_HDR_LEN || (h.op != VSOCK_OP_RW && h.len)) {
		virtio_dev_warn(&vs->vdev, "packet length %u with %llu bytes behind the header; dropped", h.len,
				(unsigned long long)(e->out_len - VSOCK_HDR_LEN));
		VS_STAT(vs, dropped, 1);
		return;
	}
	c = conn_find(vs, h.dst_port, h.src_port);
	if (h.type != VSOCK_TYPE_STREAM) {
		if (!c)
			vsock_refuse(vs, &h);
		else
			conn_reset(c, true);
		return;
	}
	if (!c) {
		if (h.op == VSOCK_OP_REQUEST)
			vsock_guest_connect(vs, &h);
		else
			vsock_refuse(vs, &h);
		return;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VSOCK_OP_RESPONSE:
		if (c->state != VS_REQUESTED) {
			conn_reset(c, true);
			break;
		}
		{
			char ok[32];
			int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

			if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
				conn_reset(c, true);
				break;
			}
		}
		c->state = VS_OPEN;
		c->deadline_ns = 0;
		VS_STAT(vs, conns_opened, 1);
		break;
	case VSOCK_OP_RW:
		vsock_guest_data(vs, c, e, h.len);
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pending |= P_CREDIT;
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;          /* the credit fields above are the news */
	case VSOCK_OP_SHUTDOWN:
		/* The guest will send no more (or read no more): what it sent is
		 * written out, then both sides close with our RST. */
		if (c->fd < 0)
			break;
		c->peer_done |= (h.flags & VSOCK_SHUTDOWN_SEND) != 0;
		c->peer_gone |= (h.flags & (VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV)) ==
				(VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
		if (!conn_flush(vs, c) || (c->peer_gone && !c->buf_len))
			conn_reset(c, true);
		break;
	case VSOCK_OP_RST:
		conn_free(c);
		break;
	case VSOCK_OP_REQUEST:
	default:
		conn_reset(c, true);
		break;
	}
}

static bool vsock_tx(struct virtio_vsock *vs)
{
	struct virtqueue *vq = &vs->vdev.vqs[VSOCK_TXQ];
	unsigned int n = 0;

	while (n < VSOCK_BUDGET && virtq_pop(vq, &vs->tx) == 0) {
		vsock_packet(vs, &vs->tx);
		virtq_push(vq, &vs->tx, 0);
		n++;
	}
	if (n)
		virtq_signal(vq);
	return n == VSOCK_BUDGET;
}

/* ---- the event queue ---- */

/* The transport reset a restored device owes the guest, in the first event
 * buffer its driver gives (it fills the queue at probe); owed until then. */
static void vsock_event_reset(struct virtio_vsock *vs)
{
	struct virtqueue *vq = &vs->vdev.vqs[VSOCK_EVQ];
	uint32_t id = VSOCK_EVENT_TRANSPORT_RESET;

	if (!atomic_load(&vs->reset_owed) || virtq_pop(vq, &vs->ev) < 0)
		return;
	atomic_store(&vs->reset_owed, false);
	virtq_push(vq, &vs->ev, virtq_elem_write(&vs->ev, 0, &id, sizeof(id)) == sizeof(id) ? sizeof(id) : 0);
	virtq_signal(vq);
}

/* ---- the host side ---- */

static void vsock_accept(struct virtio_vsock *vs)
{
	for (int i = 0; i < 16; i++) {
		int fd = util_unix_accept(vs->listen_fd, SOCK_NONBLOCK);      /* this user or root */
		struct vsock_conn *c;

		if (fd < 0)
			return;
		c = conn_new(vs);
		if (!c) {
			VS_STAT(vs, conns_refused, 1);
			close(fd);
			continue;
		}
		*c = (struct vsock_conn){ .state = VS_LINE, .fd = fd,
					  .deadline_ns = util_now_ns() + VSOCK_CONNECT_MS * 1000000ULL };
	}
}

/* "CONNECT <port>\n", byte by byte so nothing after it is taken. */
static void conn_read_line(struct virtio_vsock *vs, struct vsock_conn *c)
{
	unsigned long port;
	char *end;

	for (;;) {
		char ch;
		ssize_t n = recv(c->fd, &ch, 1, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0 || c->line_len == sizeof(c->line) - 1) {
			conn_free(c);
			return;
		}
		if (ch != '\n') {
			c->line[c->line_len++] = ch;
			continue;
		}
		c->line[c->line_len] = 0;
		if (c->line_len && c->line[c->line_len - 1] == '\r')
			c->line[--c->line_len] = 0;
		break;
	}
	errno = 0;
	if (strncmp(c->line, "CONNECT ", 8) || c->line[8] < '0' || c->line[8] > '9' ||
	    (port = strtoul(c->line + 8, &end, 10), *end) || errno || port > UINT32_MAX) {
		conn_free(c);
		return;
	}
	c->peer_port = (uint32_t)port;
	c->local_port = ephemeral_port(vs);
	c->state = VS_REQUESTED;
	c->pending = P_REQUEST;
	c->peer_buf_alloc = 0;
}

static void conn_timeouts(struct virtio_vsock *vs, uint64_t now)
{
	for (unsigned int i = 0; i < vs->opts.max_conns; i++) {
		struct vsock_conn *c = &vs->conns[i];

		if (!c->deadline_ns || now < c->deadline_ns)
			continue;
		if (c->state == VS_LINE)
			conn_free(c);
		else if (c->state == VS_REQUESTED)
			conn_reset(c, !(c->pending & P_REQUEST));
		c->deadline_ns = 0;
	}
}

static void vsock_drop_all(struct virtio_vsock *vs)
{
	for (unsigned int i = 0; i < vs->opts.max_conns; i++)
		if (vs->conns[i].state != VS_FREE)
			conn_free(&vs->conns[i]);
}

static int poll_timeout(struct virtio_vsock *vs, bool more)
{
	uint64_t now = util_now_ns(), first = UINT64_MAX;

	if (more)
		return 0;
	for (unsigned int i = 0; i < vs->opts.max_conns; i++)
		if (vs->conns[i].deadline_ns)
			first = MIN(first, vs->conns[i].deadline_ns);
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : (int)MIN((first - now) / 1000000 + 1, 60000ULL);
}

static void *vsock_worker(void *arg)
{
	struct virtio_vsock *vs = arg;
	unsigned int max = vs->opts.max_conns;
	struct pollfd *p = calloc(max + 2, sizeof(*p));
	bool more = false;

	sandbox_enter(SANDBOX_ROLE_DEVICE);
	if (!p)
		return NULL;
	for (;;) {
		bool reset;
		int np = 2;

		p[0] = (struct pollfd){ vs->worker.kick_fd, POLLIN, 0 };
		p[1] = (struct pollfd){ vs->listen_fd, POLLIN, 0 };
		for (unsigned int i = 0; i < max; i++) {
			struct vsock_conn *c = &vs->conns[i];
			short ev = 0;

			if (c->fd < 0 || c->state == VS_FREE) {
				p[np + i] = (struct pollfd){ -1, 0, 0 };
				continue;
			}
			if (c->state == VS_LINE || (c->state == VS_OPEN && !c->readable && !c->host_eof))
				ev |= POLLIN;
			if (c->buf_len)
				ev |= POLLOUT;
			p[np + i] = (struct pollfd){ c->fd, ev, 0 };
		}
		if (poll(p, max + 2, poll_timeout(vs, more)) < 0 && errno != EINTR)
			for (unsigned int i = 0; i < max + 2; i++)
				p[i].revents = 0;
		if (!virtio_poller_begin(&vs->worker, p[0].revents & POLLIN, &reset))
			break;
		if (reset) {
			/* The driver reset the device: its connections are gone. */
			vs->rx_held = vs->rx_starved = false;
			atomic_store(&vs->reset_owed, false);
			vsock_drop_all(vs);
			memset(p + 2, 0, max * sizeof(*p));
		}

		if (p[0].revents & POLLIN)
			vs->rx_starved = false;
		if (virtio_dev_is_broken(&vs->vdev))
			vs->rx_held = false;
		if (p[1].revents & POLLIN)
			vsock_accept(vs);
		for (unsigned int i = 0; i < max; i++) {
			struct vsock_conn *c = &vs->conns[i];
			short re = p[np + i].revents;

			if (!re || p[np + i].fd != c->fd)
				continue;
			if (c->state == VS_LINE) {
				conn_read_line(vs, c);
				continue;
			}
			if ((re & POLLOUT) && (!conn_flush(vs, c) || (c->peer_gone && !c->buf_len))) {
				conn_reset(c, true);
				continue;
			}
			if (re & (POLLIN | POLLHUP | POLLERR))
				c->readable = true;
		}
		vsock_event_reset(vs);
		more = vsock_tx(vs);
		more |= vsock_rx(vs);
		conn_timeouts(vs, util_now_ns());
		virtio_poller_end(&vs->worker);
	}
	free(p);
	return NULL;
}

/* ---- the device ---- */

static void vsock_notify(struct virtio_dev *dev, unsigned int q)
{
	(void)q;
	virtio_poller_kick(&to_vsock(dev)->worker);
}

static void vsock_reset(struct virtio_dev *dev)
{
	virtio_poller_reset(&to_vsock(dev)->worker);
}

/* For a save: the worker stands still between rounds; a receive buffer it
 * held goes back to the ring, where the restored device finds it again. */
static void vsock_hold(struct virtio_dev *dev)
{
	struct virtio_vsock *vs = to_vsock(dev);

	virtio_poller_hold(&vs->worker);
	if (vs->rx_held)
		virtq_unpop(&vs->vdev.vqs[VSOCK_RXQ], &vs->rx);
	vs->rx_held = vs->rx_starved = false;
}

static void vsock_release(struct virtio_dev *dev)
{
	virtio_poller_release(&to_vsock(dev)->worker);
}

/* The CID only: connections are not carried (see virtio.h). */
static void vsock_save(struct virtio_dev *dev, struct snap_buf *b)
{
	struct virtio_vsock *vs = to_vsock(dev);

	snap_put_u64(b, vs->opts.guest_cid);
}

static int vsock_load(struct virtio_dev *dev, struct snap_cur *c)
{
	struct virtio_vsock *vs = to_vsock(dev);
	uint64_t cid = snap_get_u64(c);

	if (c->bad)
		return -EINVAL;
	if (cid != vs->opts.guest_cid) {
		snap_cur_fail(c, "vsock saved with guest CID %llu where this machine's is %llu",
			      (unsigned long long)cid, (unsigned long long)vs->opts.guest_cid);
		return -EINVAL;
	}
	/* Whatever connections the guest had, their host ends are gone. A
	 * driver that had not set the device up yet has none to lose. */
	atomic_store(&vs->reset_owed, vs->vdev.vqs[VSOCK_EVQ].ready);
	return 0;
}

static void vsock_config_read(struct virtio_dev *dev, uint32_t offset, void *data, uint32_t len)
{
	uint64_t cid = to_vsock(dev)->opts.guest_cid;

	memcpy(data, (uint8_t *)&cid + offset, len);
}

static void vsock_destroy(struct virtio_dev *dev)
{
	struct virtio_vsock *vs = to_vsock(dev);

	virtio_poller_stop(&vs->worker);
	if (vs->conns) {
		vsock_drop_all(vs);
		free(vs->conns);
	}
	if (vs->listen_fd >= 0) {
		close(vs->listen_fd);
		unlink(vs->uds);
	}
	virtq_elem_free(&vs->rx);
	virtq_elem_free(&vs->tx);
	virtq_elem_free(&vs->ev);
	free(vs->iov);
	virtio_dev_cleanup(&vs->vdev);
	free(vs);
}

static const struct virtio_dev_ops vsock_ops = {
	.device_id = VIRTIO_ID_VSOCK,
	.nqueues = 3,
	.config_read = vsock_config_read,
	.notify = vsock_notify,
	.reset = vsock_reset,
	.destroy = vsock_destroy,
	.hold = vsock_hold,
	.release = vsock_release,
	.save = vsock_save,
	.load = vsock_load,
};

int virtio_vsock_create(struct virtio_dev **out, const struct virtio_vsock_opts *o, char *err, size_t errlen)
{
	struct virtio_vsock *vs;
	int r;

	*out = NULL;
	if (!virtio_vsock_cid_ok(o->guest_cid)) {
		snprintf(err, errlen, "guest CID %llu: must be from 3 to 4294967294",
			 (unsigned long long)o->guest_cid);
		return -EINVAL;
	}
	if (!o->uds_path || !o->uds_path[0] || strlen(o->uds_path) >= VIRTIO_VSOCK_PATH_MAX) {
		snprintf(err, errlen, "the host socket's path is empty or too long");
		return -EINVAL;
	}
	vs = calloc(1, sizeof(*vs));
	if (!vs) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	vs->opts = *o;
	if (!vs->opts.buf_size)
		vs->opts.buf_size = VIRTIO_VSOCK_BUF_SIZE;
	if (!vs->opts.max_conns)
		vs->opts.max_conns = VIRTIO_VSOCK_MAX_CONNS;
	snprintf(vs->uds, sizeof(vs->uds), "%s", o->uds_path);
	vs->opts.uds_path = vs->uds;
	vs->listen_fd = -1;
	vs->next_port = VSOCK_EPHEMERAL_BASE;
	r = virtio_poller_init(&vs->worker);
	if (r == 0)
		r = virtio_dev_init(&vs->vdev, &vsock_ops, o->name ? o->name : "virtio-vsock", 0, VSOCK_QUEUE,
				    VSOCK_CONFIG_SIZE);
	if (r == 0)
		r = virtq_elem_init(&vs->rx, VSOCK_QUEUE);
	if (r == 0)
		r = virtq_elem_init(&vs->tx, VSOCK_QUEUE);
	if (r == 0)
		r = virtq_elem_init(&vs->ev, VSOCK_QUEUE);
	if (r < 0)
		goto fail;
	vs->iov = calloc(VSOCK_QUEUE, sizeof(*vs->iov));
	vs->iov_cap = VSOCK_QUEUE;
	vs->conns = calloc(vs->opts.max_conns, sizeof(*vs->conns));
	if (!vs->iov || !vs->conns) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned int i = 0; i < vs->opts.max_conns; i++)
		vs->conns[i].fd = -1;
	vs->listen_fd = util_unix_listen(vs->uds, SOCK_STREAM | SOCK_NONBLOCK, 16);
	if (vs->listen_fd < 0) {
		r = vs->listen_fd;
		snprintf(err, errlen, "host socket '%s': %s", vs->uds, strerror(-r));
		goto fail_quiet;
	}
	r = virtio_poller_start(&vs->worker, vsock_worker, vs, "nestvm-vsock");
	if (r < 0)
		goto fail;
	*out = &vs->vdev;
	return 0;
fail:
	snprintf(err, errlen, "%s", strerror(-r));
fail_quiet:
	vsock_destroy(&vs->vdev);
	return r;
}

void virtio_vsock_get_stats(struct virtio_dev *dev, struct virtio_vsock_stats *st)
{
	struct virtio_vsock *vs = to_vsock(dev);

	const uint64_t *from = (const uint64_t *)&vs->stats;
	uint64_t *to = (uint64_t *)st;

	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

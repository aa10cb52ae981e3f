/* An adapter's frame path: the connection to a switch port (hello, then one
 * frame per message, behind its virtio-net header where the switch granted
 * that), a TAP device (frames behind a virtio-net header), or a socket given
 * by the caller. All non-blocking: the device's worker polls the fd. */
#include "net/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define NET_HELLO_TIMEOUT_MS 5000

_Static_assert(sizeof(struct net_switch_hello) == 64, "hello is 64 bytes on the wire");
_Static_assert(sizeof(struct net_switch_ack) == 128, "ack is 128 bytes on the wire");

/* "lan" out of ".../switches/lan/ports.sock", for messages. */
static void switch_name_of(const char *path, char *buf, size_t len)
{
	const char *end = strrchr(path, '/'), *start;

	if (!end || end == path) {
		snprintf(buf, len, "%s", path);
		return;
	}
	for (start = end; start > path && start[-1] != '/'; start--)
		;
	snprintf(buf, len, "%.*s", (int)(end - start), start);
}

static int switch_connect(struct net_backend *be, char *err, size_t errlen)
{
	struct net_switch_hello hello = { 0 };
	struct net_switch_ack ack;
	struct pollfd pfd;
	char name[sizeof(be->path)];
	int fd, r;
	ssize_t n;

	switch_name_of(be->path, name, sizeof(name));
	fd = util_unix_connect(be->path, SOCK_SEQPACKET);
	if (fd == -ENOENT || fd == -ECONNREFUSED) {
		snprintf(err, errlen, "switch '%s' is not running (no daemon at %s; start it with "
			 "'nestvm switch start %s' or create it with 'nestvm switch new %s')",
			 name, be->path, name, name);
		return fd;
	}
	if (fd < 0) {
		snprintf(err, errlen, "switch '%s': connecting to %s: %s", name, be->path, strerror(-fd));
		return fd;
	}

	hello.magic = NET_SWITCH_MAGIC;
	hello.version = NET_SWITCH_VERSION;
	hello.flags = (uint16_t)((be->spoofing ? NET_SWITCH_F_SPOOFING : 0) |
				 (be->want_vnet_hdr ? NET_SWITCH_F_VNET_HDR : 0));
	memcpy(hello.mac, be->mac, NET_MAC_LEN);
	memcpy(hello.label, be->label, sizeof(hello.label));
	if (send(fd, &hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello)) {
		r = -errno;
		snprintf(err, errlen, "switch '%s': sending the hello: %s", name, strerror(errno));
		goto fail;
	}
	pfd = (struct pollfd){ fd, POLLIN, 0 };
	do {
		r = poll(&pfd, 1, NET_HELLO_TIMEOUT_MS);
	} while (r < 0 && errno == EINTR);
	if (r <= 0) {
		r = r < 0 ? -errno : -ETIMEDOUT;
		snprintf(err, errlen, "switch '%s': no answer to the hello within %d s", name,
			 NET_HELLO_TIMEOUT_MS / 1000);
		goto fail;
	}
	n = recv(fd, &ack, sizeof(ack), MSG_TRUNC);
	if (n == (ssize_t)sizeof(ack) && ack.magic == NET_SWITCH_MAGIC && ack.version != NET_SWITCH_VERSION) {
		r = -EPROTO;
		snprintf(err, errlen, "switch '%s' speaks port protocol version %u, this nestvm %u: restart "
			 "it with this nestvm ('nestvm switch stop %s', then 'nestvm switch start %s')",
			 name, ack.version, NET_SWITCH_VERSION, name, name);
		goto fail;
	}
	if (n != (ssize_t)sizeof(ack) || ack.magic != NET_SWITCH_MAGIC) {
		r = n < 0 ? -errno : -EPROTO;
		snprintf(err, errlen, "switch '%s': %s", name,
			 n == 0 ? "the daemon closed the connection" : "not a nestvm switch answer");
		goto fail;
	}
	if (ack.status < 0) {
		r = ack.status;
		ack.msg[sizeof(ack.msg) - 1] = '\0';
		snprintf(err, errlen, "switch '%s': %s", name, ack.msg);
		goto fail;
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		snprintf(err, errlen, "switch '%s': %s", name, strerror(errno));
		goto fail;
	}
	be->fd = fd;
	be->port = ack.port;
	be->vnet_hdr = be->want_vnet_hdr && (ack.flags & NET_SWITCH_F_VNET_HDR);
	return 0;

fail:
	close(fd);
	return r;
}

int net_tap_open(const char *ifname, bool offloads, char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	int fd, hdr = NET_VNET_HDR_LEN, s, r;
	unsigned long tun_off = offloads ? TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN : 0;

	if (!ifname || !ifname[0] || strlen(ifname) >= IFNAMSIZ || strchr(ifname, '/')) {
		snprintf(err, errlen, "TAP device '%s': not an interface name (1 to %d characters)",
			 ifname ? ifname : "", IFNAMSIZ - 1);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "TAP device '%s': /dev/net/tun: %s%s", ifname, strerror(errno),
			 errno == ENOENT ? " (load the tun module: modprobe tun)" : "");
		return r;
	}
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		if (r == -EPERM)
			snprintf(err, errlen, "TAP device '%s': permission denied (create it for this "
				 "user first: ip tuntap add dev %s mode tap user $USER; or run as root)",
				 ifname, ifname);
		else if (r == -EBUSY)
			snprintf(err, errlen, "TAP device '%s' is in use by another process", ifname);
		else
			snprintf(err, errlen, "TAP device '%s': %s", ifname, strerror(-r));
		goto fail;
	}
	/* Virtio 1.x header length, and what the kernel may hand over: with
	 * offloads, partial checksums and TCP frames of up to 64 KiB. */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, tun_off) < 0) {
		r = -errno;
		snprintf(err, errlen, "TAP device '%s': setting up its header: %s", ifname, strerror(-r));
		goto fail;
	}
	/* A device created just now is down; bring it up where we may. */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
			ifr.ifr_flags |= IFF_UP;
			(void)ioctl(s, SIOCSIFFLAGS, &ifr);
		}
		close(s);
	}
	return fd;

fail:
	close(fd);
	return r;
}

int net_backend_open(struct net_backend *be, const struct net_backend_opts *o, char *err, size_t errlen)
{
	char mac[24];
	int r, type;
	socklen_t tlen = sizeof(type);

	memset(be, 0, sizeof(*be));
	be->fd = -1;
	be->kind = o->kind;
	be->spoofing = o->mac_spoofing;
	be->want_vnet_hdr = o->kind == NET_BACKEND_SWITCH && o->offloads;
	memcpy(be->mac, o->mac, NET_MAC_LEN);
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
		 o->mac[0], o->mac[1], o->mac[2], o->mac[3], o->mac[4], o->mac[5]);
	snprintf(be->label, sizeof(be->label), "%s", o->label && o->label[0] ? o->label : mac);

	switch (o->kind) {
	case NET_BACKEND_SWITCH:
		if (!o->path || !o->path[0] || strlen(o->path) >= sizeof(be->path)) {
			snprintf(err, errlen, "switch socket path missing or too long");
			return -EINVAL;
		}
		snprintf(be->path, sizeof(be->path), "%s", o->path);
		be->scratch = calloc(NET_BACKEND_MAX_IOV + 1, sizeof(*be->scratch));
		if (!be->scratch) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		r = switch_connect(be, err, errlen);
		if (r < 0)
			net_backend_close(be);
		return r;
	case NET_BACKEND_TAP:
		if (o->tap_open)
			be->fd = o->fd;
		be->overflow = malloc(NET_FRAME_MAX + 1);
		be->scratch = calloc(NET_BACKEND_MAX_IOV + 2, sizeof(*be->scratch));
		if (!be->overflow || !be->scratch) {
			net_backend_close(be);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		if (o->tap_open && o->fd < 0) {
			snprintf(err, errlen, "TAP device '%s': no descriptor", o->tap ? o->tap : "");
			net_backend_close(be);
			return -EBADF;
		}
		r = o->tap_open ? o->fd : net_tap_open(o->tap, true, err, errlen);
		if (r < 0) {
			net_backend_close(be);
			return r;
		}
		be->fd = r;
		be->vnet_hdr = true;
		return 0;
	case NET_BACKEND_FD:
		be->fd = o->fd;
		if (o->fd < 0 || getsockopt(o->fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
		    (type != SOCK_SEQPACKET && type != SOCK_DGRAM)) {
			snprintf(err, errlen, "backend fd %d is not a message socket", o->fd);
			net_backend_close(be);
			return -EINVAL;
		}
		be->dgram = type == SOCK_DGRAM;
		if (fcntl(o->fd, F_SETFL, fcntl(o->fd, F_GETFL) | O_NONBLOCK) < 0) {
			r = -errno;
			snprintf(err, errlen, "backend fd %d: %s", o->fd, strerror(errno));
			net_backend_close(be);
			return r;
		}
		return 0;
	case NET_BACKEND_NONE:
		break;
	}
	snprintf(err, errlen, "no network backend chosen");
	return -EINVAL;
}

int net_backend_reconnect(struct net_backend *be, char *err, size_t errlen)
{
	if (be->kind != NET_BACKEND_SWITCH) {
		snprintf(err, errlen, "only a switch port reconnects");
		return -ENOTSUP;
	}
	if (be->fd >= 0)
		close(be->fd);
	be->fd = -1;
	return switch_connect(be, err, errlen);
}

void net_backend_close(struct net_backend *be)
{
	if (be->fd >= 0)
		close(be->fd);
	be->fd = -1;
	free(be->overflow);
	free(be->scratch);
	be->overflow = NULL;
	be->scratch = NULL;
}

/* Bytes [off, off+len) of the frame in iov, for the source-address check. */
static size_t iov_peek(const struct iovec *iov, int n, size_t off, uint8_t *dst, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		size_t chunk;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		chunk = MIN(iov[i].iov_len - off, len - done);
		memcpy(dst + done, (const uint8_t *)iov[i].iov_base + off, chunk);
		done += chunk;
		off = 0;
	}
	return done;
}

static size_t iov_total(const struct iovec *iov, int n)
{
	size_t t = 0;

	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* A non-blocking socket call's result as the backend reports it: a peer
 * that has gone is -EPIPE, a full or empty queue -EAGAIN. */
static ssize_t net_sock_result(ssize_t r)
{
	if (r >= 0)
		return r;
	if (errno == EWOULDBLOCK)
		return -EAGAIN;
	if (errno == ECONNRESET || errno == ENOTCONN || errno == ECONNREFUSED)
		return -EPIPE;
	return -errno;
}

ssize_t net_backend_send(struct net_backend *be, const struct net_vnet_hdr *h,
			 const struct iovec *iov, int n)
{
	static const struct net_vnet_hdr zero_hdr;
	struct msghdr msg = { 0 };
	size_t len = iov_total(iov, n);
	ssize_t r;

	if (be->fd < 0)
		return -EPIPE;
	if (!len || n <= 0 || n > NET_BACKEND_MAX_IOV)
		return -EINVAL;
	if (!h)
		h = &zero_hdr;
	if (!be->vnet_hdr && net_hdr_offloaded(h))
		return -EINVAL;
	if (be->kind == NET_BACKEND_TAP) {
		uint8_t src[NET_MAC_LEN];

		/* No switch behind a TAP device to guard the address: do it here. */
		if (!be->spoofing && (iov_peek(iov, n, NET_MAC_LEN, src, NET_MAC_LEN) != NET_MAC_LEN ||
				      memcmp(src, be->mac, NET_MAC_LEN))) {
			be->st.tx_spoof_dropped++;
			return -EPERM;
		}
	}
	if (be->vnet_hdr) {
		be->scratch[0] = (struct iovec){ (void *)h, sizeof(*h) };
		memcpy(be->scratch + 1, iov, (size_t)n * sizeof(*iov));
		iov = be->scratch;
		n++;
	}
	if (be->kind == NET_BACKEND_TAP) {
		do {
			r = writev(be->fd, iov, n);
		} while (r < 0 && errno == EINTR);
		if (r < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		return (ssize_t)len;
	}
	msg.msg_iov = (struct iovec *)iov;
	msg.msg_iovlen = (size_t)n;
	do {
		r = sendmsg(be->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (r < 0 && errno == EINTR);
	r = net_sock_result(r);
	return r >= 0 && be->vnet_hdr ? (r >= (ssize_t)sizeof(*h) ? r - (ssize_t)sizeof(*h) : 0) : r;
}

ssize_t net_backend_recv(struct net_backend *be, struct net_vnet_hdr *h, const struct iovec *iov, int n)
{
	struct msghdr msg = { 0 };
	ssize_t r;

	memset(h, 0, sizeof(*h));
	if (be->fd < 0)
		return -EPIPE;
	if (n < 0 || n > NET_BACKEND_MAX_IOV)
		return -EINVAL;
	if (be->kind == NET_BACKEND_TAP) {
		/* What does not fit the caller's buffers goes to the overflow, so
		 * that the length read is the frame's and an oversized frame is
		 * recognised rather than cut. */
		be->scratch[0] = (struct iovec){ h, sizeof(*h) };
		memcpy(be->scratch + 1, iov, (size_t)n * sizeof(*iov));
		be->scratch[n + 1] = (struct iovec){ be->overflow, NET_FRAME_MAX + 1 };
		do {
			r = readv(be->fd, be->scratch, n + 2);
		} while (r < 0 && errno == EINTR);
		if (r < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (r == 0)
			return -EPIPE;
		if (r < NET_VNET_HDR_LEN) {
			memset(h, 0, sizeof(*h));
			return 0;
		}
		return r - NET_VNET_HDR_LEN;
	}
	if (be->vnet_hdr) {
		be->scratch[0] = (struct iovec){ h, sizeof(*h) };
		memcpy(be->scratch + 1, iov, (size_t)n * sizeof(*iov));
		iov = be->scratch;
		n++;
	}
	msg.msg_iov = (struct iovec *)iov;
	msg.msg_iovlen = (size_t)n;
	do {
		r = recvmsg(be->fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return net_sock_result(r);
	/* A connected SOCK_SEQPACKET reads 0 at its end; the switch never sends
	 * an empty frame. */
	if (r == 0 && !be->dgram)
		return -EPIPE;
	if (be->vnet_hdr) {
		if (r < NET_VNET_HDR_LEN) {
			memset(h, 0, sizeof(*h));
			return 0;
		}
		r -= NET_VNET_HDR_LEN;
	}
	return r;
}

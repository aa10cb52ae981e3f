/* The switch daemon: one process per switch, one thread, one epoll loop. It
 * accepts adapters on ports.sock (a hello, then a frame per message), runs
 * every frame through the forwarding core and hands it to the ports it
 * names, queueing a little for a slow port and dropping, counted, beyond
 * that. An uplink is a TAP device or, inside a nested host, the host's own
 * interface through an AF_PACKET socket. control.sock answers show and stop.
 *
 * Adapters that asked for it send and receive each frame behind its
 * virtio-net header: a TSO frame or one with a partial checksum crosses the
 * switch whole to them and to a TAP uplink, and is finished here (checksum,
 * segments) for an adapter without headers and for an interface uplink. */
#include "net/switch.h"
#include "net/backend.h"
#include "net/offload.h"
#include "json.h"
#include "sandbox.h"
#include "store.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SD_QUEUE_FRAMES         256     /* per port, waiting for the port to take them */
#define SD_QUEUE_BYTES          (1u << 20)
#define SD_READ_BUDGET          64      /* frames from one port before the next port's turn */
#define SD_MAX_PENDING          32      /* connections that have not said hello yet */
#define SD_MAX_CONTROL          16
#define SD_HELLO_TIMEOUT_S      5
#define SD_CONTROL_TIMEOUT_S    10
#define SD_REQ_MAX              128
#define SD_REPLY_MAX            (16u << 20)
#define SD_SPOOF_LOG_S          10      /* a spoof line per port at most this often */
#define SD_LOG_ROTATE           (1 << 20)
#define SD_START_TIMEOUT_MS     10000
/* A received frame: its header, then up to 64 KiB (a TSO frame) and a byte
 * more, which marks one that was longer. */
#define SD_BUF_LEN              (NET_VNET_HDR_LEN + SWITCH_FRAME_LIMIT + 1)

enum sd_kind {
	SD_LISTEN_PORTS,
	SD_LISTEN_CONTROL,
	SD_SIGNAL,
	SD_PENDING,                     /* an adapter that has not sent its hello */
	SD_PORT,                        /* an adapter */
	SD_UPLINK_TAP,
	SD_UPLINK_PACKET,
	SD_CONTROL,
	SD_DEAD,                        /* closed; freed after the current batch of events */
};

struct sd_frame {
	size_t len;                     /* bytes on the connection */
	size_t frame_len;               /* of them the frame's, for the counters */
	uint8_t data[];
};

struct sd_conn {
	enum sd_kind kind;
	int fd;
	int port;                       /* the core's port number, or -1 */
	bool vnet;                      /* frames carry a virtio-net header (adapters, TAP) */
	uint64_t since;                 /* seconds: when accepted */
	/* Output queue (ports and uplinks). */
	struct sd_frame **q;
	unsigned int qhead, qlen;
	size_t qbytes;
	bool want_out;
	uint64_t spoof_last_log, err_last_log, hdr_last_log;   /* rate limits for log lines */
	/* Control connections. */
	char req[SD_REQ_MAX];
	size_t reqlen;
	char *reply;
	size_t reply_len, reply_off;
	bool stop_after;
	struct sd_conn *next_dead;
};

struct switchd {
	const struct switchd_config *cfg;
	struct switch_core *sw;
	int ep, lock_fd;
	struct sd_conn listen_ports, listen_control, sig;
	struct sd_conn **by_port;       /* cfg max_ports entries */
	struct sd_conn *pending[SD_MAX_PENDING];
	struct sd_conn *control[SD_MAX_CONTROL];
	unsigned int nadapters;
	struct sd_conn *dead;
	char store[SWITCHD_PATH_MAX];   /* the store the switch is in ("": none found) */
	uint8_t *buf;                   /* one frame behind its header, SD_BUF_LEN bytes */
	uint8_t *seg;                   /* one finished frame, frame_max bytes */
	uint16_t *out;
	uint64_t now, started;
	bool stopping;
	char sandbox[200];              /* what sandbox_describe says, for show */
};

static uint64_t sd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* The daemon's log is its stderr (switchd.log): a timestamp on each line. */
static void sd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sd_log(const char *fmt, ...)
{
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	va_list ap;

	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", localtime_r(&t, &tm));
	fprintf(stderr, "%s switchd[%d]: ", stamp, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* ---- names, paths, switch.conf ---- */

int switchd_name_check(const char *name, char *err, size_t errlen)
{
	return vmconfig_check_name(name, "switch", err, errlen);
}

int switchd_root(const char *store, char *buf, size_t len)
{
	char root[SWITCHD_PATH_MAX];
	int r = store_root(store, root, sizeof(root));

	if (r < 0)
		return r;
	r = snprintf(buf, len, "%s/switches", root);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

int switchd_list(const char *store, char ***names, size_t *n)
{
	char root[SWITCHD_PATH_MAX];
	int r = switchd_root(store, root, sizeof(root));

	*names = NULL;
	*n = 0;
	return r < 0 ? r : store_list_dir(root, "switch", names, n);
}

int switchd_path(const char *store, const char *name, const char *file, char *buf, size_t len)
{
	char root[SWITCHD_PATH_MAX];
	int r = switchd_root(store, root, sizeof(root));

	if (r < 0)
		return r;
	r = file ? snprintf(buf, len, "%s/%s/%s", root, name, file)
		 : snprintf(buf, len, "%s/%s", root, name);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

int switchd_store_of(const char *dir, char *buf, size_t len)
{
	size_t n = strlen(dir);
	const char *name, *sw;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	name = memrchr(dir, '/', n);
	if (!name || name == dir)
		return -EINVAL;
	sw = memrchr(dir, '/', (size_t)(name - dir));
	if (!sw || (size_t)(name - sw - 1) != strlen("switches") || strncmp(sw + 1, "switches", 8))
		return -EINVAL;
	if ((size_t)(sw - dir) >= len)
		return -ENAMETOOLONG;
	memcpy(buf, dir, (size_t)(sw - dir));
	buf[sw - dir] = '\0';
	if (!buf[0])
		snprintf(buf, len, "/");
	return 0;
}

bool switchd_spoofing_allowed(const char *store_root, const char *sw_name, const uint8_t mac[SWITCH_ETH_ALEN],
			      bool unlisted_allowed, char *why, size_t whylen)
{
	static struct vmconfig c;       /* large; the daemon has one thread */
	char **names = NULL, err[256];
	size_t n = 0;
	bool listed = false, allowed = true;

	if (store_root && *store_root && store_list(store_root, &names, &n) < 0)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		if (store_load(store_root, names[i], &c, err, sizeof(err)) < 0)
			continue;
		for (unsigned int k = 0; k < c.nnics && k < VMCONFIG_MAX_NICS; k++) {
			const struct vmconfig_nic *nic = &c.nics[k];
			bool ok;

			if (strcmp(nic->sw, sw_name) || memcmp(nic->mac, mac, SWITCH_ETH_ALEN))
				continue;
			/* Only that VM's running VMM speaks for its adapter: a stopped
			 * VM's address in another VMM's hello is not its own. */
			ok = nic->mac_spoofing && store_vmm_alive(store_root, names[i]);
			/* The first VM that says no names itself; else the first. */
			if (!listed || (allowed && !ok))
				snprintf(why, whylen, !nic->mac_spoofing ? "VM '%s' has it off (nestvm vm set %s --mac-spoofing on)"
						      : ok ? "VM '%s' has it on"
							   : "VM '%s', whose adapter this is, is not running",
					 names[i], names[i]);
			listed = true;
			allowed = allowed && ok;
		}
	}
	store_list_free(names, n);
	if (!listed)
		snprintf(why, whylen, "it is no stored VM's adapter, and this switch has unlisted-spoofing = %s",
			 unlisted_allowed ? "on" : "off");
	return listed ? allowed : unlisted_allowed;
}

static bool sd_ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= SWITCHD_IFNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || isspace((unsigned char)s[i]) || !isprint((unsigned char)s[i]))
			return false;
	return true;
}

int switchd_config_parse(const char *text, size_t len, struct switchd_config *c, char *err, size_t errlen)
{
	static const struct { const char *key; size_t off; unsigned int min, max; } nums[] = {
		{ "max-ports", offsetof(struct switchd_config, max_ports), 1, SWITCH_MAX_PORTS },
		{ "max-addresses", offsetof(struct switchd_config, fdb_max), 1, 1u << 20 },
		{ "max-port-addresses", offsetof(struct switchd_config, port_fdb_max), 1, 1u << 20 },
		{ "aging", offsetof(struct switchd_config, aging_s), 1, 1000000 },
		{ "frame-max", offsetof(struct switchd_config, frame_max), 64, SWITCH_FRAME_LIMIT },
	};
	unsigned int lineno = 0;
	size_t pos = 0;

	while (pos < len) {
		char line[512], *key, *val, *eq;
		size_t end = pos, n;
		bool done = false;

		while (end < len && text[end] != '\n')
			end++;
		n = end - pos;
		lineno++;
		if (n >= sizeof(line) || memchr(text + pos, '\0', n)) {
			snprintf(err, errlen, "%s:%u: line too long or not text", SWITCHD_CONF, lineno);
			return -EINVAL;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos = end + 1;
		key = util_trim(line);
		if (!*key || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%u: expected 'key = value'", SWITCHD_CONF, lineno);
			return -EINVAL;
		}
		*eq = '\0';
		key = util_trim(key);
		val = util_trim(eq + 1);
		if (!strcmp(key, "uplink-tap") || !strcmp(key, "uplink-if")) {
			char *dst = key[7] == 't' ? c->uplink_tap : c->uplink_if;

			if (*val && !sd_ifname_ok(val)) {
				snprintf(err, errlen, "%s:%u: '%.40s' is not an interface name",
					 SWITCHD_CONF, lineno, val);
				return -EINVAL;
			}
			snprintf(dst, SWITCHD_IFNAME_MAX, "%s", val);
			continue;
		}
		if (!strcmp(key, "unlisted-spoofing") || !strcmp(key, "no-seccomp")) {
			if (strcmp(val, "on") && strcmp(val, "off")) {
				snprintf(err, errlen, "%s:%u: %s must be on or off", SWITCHD_CONF, lineno, key);
				return -EINVAL;
			}
			if (key[0] == 'u')
				c->unlisted_spoofing_off = !strcmp(val, "off");
			else
				c->no_seccomp = !strcmp(val, "on");
			continue;
		}
		for (size_t i = 0; i < ARRAY_SIZE(nums) && !done; i++) {
			uint64_t v;

			if (strcmp(key, nums[i].key))
				continue;
			if (util_parse_uint(val, nums[i].min, nums[i].max, &v) < 0) {
				snprintf(err, errlen, "%s:%u: %s must be a number from %u to %u",
					 SWITCHD_CONF, lineno, key, nums[i].min, nums[i].max);
				return -EINVAL;
			}
			*(unsigned int *)((char *)c + nums[i].off) = (unsigned int)v;
			done = true;
		}
		if (!done) {
			snprintf(err, errlen, "%s:%u: unknown key '%.40s'", SWITCHD_CONF, lineno, key);
			return -EINVAL;
		}
	}
	if (c->uplink_tap[0] && c->uplink_if[0]) {
		snprintf(err, errlen, "%s: a switch has one uplink: uplink-tap or uplink-if, not both",
			 SWITCHD_CONF);
		return -EINVAL;
	}
	return 0;
}

int switchd_config_save(const struct switchd_config *c, char *err, size_t errlen)
{
	char text[1024];
	int n, r;

	n = snprintf(text, sizeof(text),
		     "# nestvm switch '%s'\n"
		     "uplink-tap = %s\nuplink-if = %s\n"
		     "max-ports = %u\nmax-addresses = %u\nmax-port-addresses = %u\naging = %u\nframe-max = %u\n"
		     "unlisted-spoofing = %s\nno-seccomp = %s\n",
		     c->name, c->uplink_tap, c->uplink_if,
		     c->max_ports ? c->max_ports : SWITCH_DEFAULT_PORTS,
		     c->fdb_max ? c->fdb_max : SWITCH_DEFAULT_FDB,
		     c->port_fdb_max ? c->port_fdb_max
				     : MIN(SWITCH_DEFAULT_PORT_FDB, c->fdb_max ? c->fdb_max : SWITCH_DEFAULT_FDB),
		     c->aging_s ? c->aging_s : SWITCH_DEFAULT_AGING,
		     c->frame_max ? c->frame_max : SWITCH_DEFAULT_FRAME_MAX,
		     c->unlisted_spoofing_off ? "off" : "on", c->no_seccomp ? "on" : "off");
	r = store_write_atomic(c->dir, SWITCHD_CONF, text, (size_t)n);
	if (r < 0)
		snprintf(err, errlen, "%s/%s: %s", c->dir, SWITCHD_CONF, strerror(-r));
	return r;
}

int switchd_config_load(const char *dir, const char *name, struct switchd_config *c,
			char *err, size_t errlen)
{
	char path[SWITCHD_PATH_MAX + 32];
	uint8_t *data;
	size_t len;
	int r;

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	if ((size_t)snprintf(c->dir, sizeof(c->dir), "%s", dir) >= sizeof(c->dir))
		return -ENAMETOOLONG;
	snprintf(path, sizeof(path), "%s/%s", dir, SWITCHD_CONF);
	r = util_read_file(path, &data, &len);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = switchd_config_parse((const char *)data, len, c, err, errlen);
	free(data);
	return r;
}

/* ---- connections ---- */

static int sd_watch(struct switchd *d, struct sd_conn *c, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	return epoll_ctl(d->ep, op, c->fd, &ev) < 0 ? -errno : 0;
}

static struct sd_conn *sd_conn_new(enum sd_kind kind, int fd)
{
	struct sd_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->kind = kind;
	c->fd = fd;
	c->port = -1;
	return c;
}

static void sd_queue_clear(struct sd_conn *c)
{
	while (c->qlen) {
		free(c->q[c->qhead]);
		c->qhead = (c->qhead + 1) % SD_QUEUE_FRAMES;
		c->qlen--;
	}
	c->qbytes = 0;
}

static void sd_conn_close(struct switchd *d, struct sd_conn *c)
{
	if (c->port >= 0) {
		const struct switch_port *p = switch_port_get(d->sw, (unsigned int)c->port);

		if (p && c->kind == SD_PORT) {
			char mac[24];

			sd_log("port %d: '%s' (%s) disconnected", c->port, p->name,
			       vmconfig_fmt_mac(p->mac, mac, sizeof(mac)));
			d->nadapters--;
		}
		switch_port_remove(d->sw, (unsigned int)c->port);
		d->by_port[c->port] = NULL;
	}
	for (unsigned int i = 0; i < SD_MAX_PENDING; i++)
		if (d->pending[i] == c)
			d->pending[i] = NULL;
	for (unsigned int i = 0; i < SD_MAX_CONTROL; i++)
		if (d->control[i] == c)
			d->control[i] = NULL;
	epoll_ctl(d->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->port = -1;
	c->kind = SD_DEAD;
	sd_queue_clear(c);
	free(c->q);
	free(c->reply);
	c->q = NULL;
	c->reply = NULL;
	/* Events for it may still be in the batch being handled. */
	c->next_dead = d->dead;
	d->dead = c;
}

static void sd_reap(struct switchd *d)
{
	while (d->dead) {
		struct sd_conn *c = d->dead;

		d->dead = c->next_dead;
		free(c);
	}
}

/* ---- frames in and out ---- */

/* One frame from c into d->buf, behind its header (zeroes from a connection
 * without headers): the frame's length (cut to 64 KiB + 1, which the core
 * then drops as oversized), 0 for one to skip, -EAGAIN, or -EPIPE and other
 * errors when the connection is done. */
static ssize_t sd_recv(struct switchd *d, struct sd_conn *c)
{
	size_t cap = SD_BUF_LEN - NET_VNET_HDR_LEN;
	uint8_t *frame = d->buf + NET_VNET_HDR_LEN;
	ssize_t n;

	memset(d->buf, 0, NET_VNET_HDR_LEN);
	switch (c->kind) {
	case SD_PORT:
		if (c->vnet)
			n = recv(c->fd, d->buf, SD_BUF_LEN, MSG_DONTWAIT | MSG_TRUNC);
		else
			n = recv(c->fd, frame, cap, MSG_DONTWAIT | MSG_TRUNC);
		if (n == 0)
			return -EPIPE;
		if (n > 0 && c->vnet) {
			if (n < NET_VNET_HDR_LEN) {
				memset(d->buf, 0, NET_VNET_HDR_LEN);
				return 0;
			}
			n -= NET_VNET_HDR_LEN;
		}
		break;
	case SD_UPLINK_TAP:
		n = read(c->fd, d->buf, SD_BUF_LEN);
		if (n >= 0) {
			if (n < NET_VNET_HDR_LEN) {
				memset(d->buf, 0, NET_VNET_HDR_LEN);
				return 0;
			}
			return n - NET_VNET_HDR_LEN;
		}
		break;
	case SD_UPLINK_PACKET: {
		struct sockaddr_ll sll;
		socklen_t sl = sizeof(sll);

		n = recvfrom(c->fd, frame, cap, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&sll, &sl);
		/* The interface's own traffic stays the host's: only what the
		 * wire carries for others (or for everyone) enters the switch. */
		if (n >= 0 && (sll.sll_pkttype == PACKET_OUTGOING || sll.sll_pkttype == PACKET_HOST))
			return 0;
		break;
	}
	default:
		return -EINVAL;
	}
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
	return (size_t)n > cap ? (ssize_t)cap : n;
}

/* Sends what goes on the connection: a header and a frame where c->vnet. */
static ssize_t sd_send_raw(struct sd_conn *c, const uint8_t *data, size_t len)
{
	ssize_t n;

	if (c->kind == SD_UPLINK_TAP)
		n = write(c->fd, data, len);
	else
		n = send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ? -EAGAIN : -errno;
	return n;
}

/* Hands data (a frame of frame_len bytes, behind its header where c->vnet)
 * to a port: at once if its queue is empty and it takes it, else behind the
 * queue, else (the queue full) dropped and counted. */
static void sd_output(struct switchd *d, struct sd_conn *c, const uint8_t *data, size_t len,
		      size_t frame_len)
{
	struct sd_frame *f;
	ssize_t r;

	if (!c->qlen) {
		r = sd_send_raw(c, data, len);
		if (r != -EAGAIN) {
			switch_tx_done(d->sw, (unsigned int)c->port, frame_len, r >= 0);
			return;
		}
	}
	if (c->qlen == SD_QUEUE_FRAMES || c->qbytes + len > SD_QUEUE_BYTES ||
	    !(f = malloc(sizeof(*f) + len))) {
		switch_tx_done(d->sw, (unsigned int)c->port, frame_len, false);
		return;
	}
	f->len = len;
	f->frame_len = frame_len;
	memcpy(f->data, data, len);
	c->q[(c->qhead + c->qlen) % SD_QUEUE_FRAMES] = f;
	c->qlen++;
	c->qbytes += len;
	if (!c->want_out && sd_watch(d, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD) == 0)
		c->want_out = true;
}

static void sd_flush(struct switchd *d, struct sd_conn *c)
{
	while (c->qlen) {
		struct sd_frame *f = c->q[c->qhead];
		ssize_t r = sd_send_raw(c, f->data, f->len);

		if (r == -EAGAIN)
			return;
		switch_tx_done(d->sw, (unsigned int)c->port, f->frame_len, r >= 0);
		c->qbytes -= f->len;
		free(f);
		c->qhead = (c->qhead + 1) % SD_QUEUE_FRAMES;
		c->qlen--;
	}
	if (c->want_out && sd_watch(d, c, EPOLLIN, EPOLL_CTL_MOD) == 0)
		c->want_out = false;
}

static void sd_log_spoof(struct switchd *d, struct sd_conn *c, const uint8_t *frame)
{
	const struct switch_port *p = switch_port_get(d->sw, (unsigned int)c->port);
	char src[24], own[24];

	if (!p)
		return;
	if (c->spoof_last_log && d->now - c->spoof_last_log < SD_SPOOF_LOG_S)
		return;
	c->spoof_last_log = d->now;
	sd_log("port %d: '%s' sent frames from %s, not its own %s: dropped because MAC address "
	       "spoofing is off for this adapter (%llu dropped so far)", c->port, p->name,
	       vmconfig_fmt_mac(frame + SWITCH_ETH_ALEN, src, sizeof(src)), vmconfig_fmt_mac(p->mac, own, sizeof(own)),
	       (unsigned long long)p->st.dropped_spoof);
}

/* A frame with offloads to a port that cannot take them: finished here, its
 * checksum or its segments, each sent on its own. */
static void sd_output_finished(struct switchd *d, struct sd_conn *to, const struct net_vnet_hdr *h,
			       const uint8_t *frame, size_t len)
{
	struct net_offload_iter it;
	const char *why;
	size_t n;

	/* Checked on the way in; a failure here is counted as a drop. */
	if (net_offload_begin(&it, h, frame, len, &why) < 0) {
		switch_tx_done(d->sw, (unsigned int)to->port, len, false);
		return;
	}
	while ((n = net_offload_next(&it, d->seg, d->sw->cfg.frame_max)) > 0)
		sd_output(d, to, d->seg, n, n);
}

/* A header that does not describe its frame: dropped, counted, logged at
 * most every SD_SPOOF_LOG_S seconds per port. */
static void sd_refuse_offload(struct switchd *d, struct sd_conn *c, size_t len, const char *why)
{
	const struct switch_port *p = switch_port_get(d->sw, (unsigned int)c->port);

	switch_refuse_offload(d->sw, (unsigned int)c->port, len);
	if (!p || (c->hdr_last_log && d->now - c->hdr_last_log < SD_SPOOF_LOG_S))
		return;
	c->hdr_last_log = d->now;
	sd_log("port %d: '%s' sent a frame whose virtio-net header does not fit it (%s): dropped "
	       "(%llu so far)", c->port, p->name, why, (unsigned long long)p->st.dropped_offload);
}

static void sd_input(struct switchd *d, struct sd_conn *c)
{
	struct net_vnet_hdr *h = (struct net_vnet_hdr *)d->buf;
	uint8_t *frame = d->buf + NET_VNET_HDR_LEN;

	for (unsigned int i = 0; i < SD_READ_BUDGET; i++) {
		struct net_offload_info info = { .seg_max = 0 };
		enum switch_verdict v;
		unsigned int nout;
		bool offloaded;
		ssize_t n = sd_recv(d, c);

		if (n == -EAGAIN)
			return;
		if (n < 0) {
			if (c->kind == SD_PORT) {
				sd_conn_close(d, c);
			} else {
				/* An uplink that fails stays: it may come back (a TAP
				 * device brought down, an interface reset). */
				if (!c->err_last_log || d->now - c->err_last_log >= SD_SPOOF_LOG_S) {
					c->err_last_log = d->now;
					sd_log("uplink: %s", strerror((int)-n));
				}
			}
			return;
		}
		if (n == 0 && c->kind != SD_PORT)
			continue;
		/* A guest's word that a checksum was verified is not a wire's;
		 * num_buffers is the receiving device's business. */
		if (c->kind == SD_PORT)
			h->flags &= (uint8_t)~NET_HDR_F_DATA_VALID;
		h->num_buffers = 0;
		offloaded = net_hdr_offloaded(h);
		if (offloaded) {
			const char *why = "longer than 64 KiB";

			/* Past 64 KiB the frame was cut to fit d->buf: never forward
			 * that. Shorter ones have their header checked. */
			if ((size_t)n > SWITCH_FRAME_LIMIT || net_offload_check(h, frame, (size_t)n, &info, &why) < 0) {
				sd_refuse_offload(d, c, (size_t)n, why);
				continue;
			}
		}
		v = switch_input_offloaded(d->sw, (unsigned int)c->port, frame, (size_t)n, info.seg_max,
					   d->now, d->out, &nout);
		if (v == SWITCH_DROP_SPOOF)
			sd_log_spoof(d, c, frame);
		for (unsigned int k = 0; k < nout; k++) {
			struct sd_conn *to = d->by_port[d->out[k]];

			if (!to)
				continue;
			if (to->vnet)
				sd_output(d, to, d->buf, NET_VNET_HDR_LEN + (size_t)n, (size_t)n);
			else if (offloaded)
				sd_output_finished(d, to, h, frame, (size_t)n);
			else
				sd_output(d, to, frame, (size_t)n, (size_t)n);
		}
	}
}

/* ---- adapters arriving ---- */

static void sd_ack(struct switchd *d, struct sd_conn *c, int status, unsigned int port, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void sd_ack(struct switchd *d, struct sd_conn *c, int status, unsigned int port, const char *fmt, ...)
{
	struct net_switch_ack ack = { NET_SWITCH_MAGIC, NET_SWITCH_VERSION, (uint16_t)port, status, 0, 0, "" };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ack.msg, sizeof(ack.msg), fmt, ap);
	va_end(ap);
	if (status == 0) {
		const struct switch_port *p = switch_port_get(d->sw, port);

		ack.flags = (uint16_t)((c->vnet ? NET_SWITCH_F_VNET_HDR : 0) |
				       (p && p->spoofing ? NET_SWITCH_F_SPOOFING : 0));
	}
	(void)!send(c->fd, &ack, sizeof(ack), MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void sd_hello(struct switchd *d, struct sd_conn *c)
{
	struct net_switch_hello h;
	struct switch_port_cfg pc = { 0 };
	char mac[24], label[NET_SWITCH_LABEL + 1];
	ssize_t n;
	int port;

	n = recv(c->fd, &h, sizeof(h), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n != (ssize_t)sizeof(h) || h.magic != NET_SWITCH_MAGIC || h.version != NET_SWITCH_VERSION) {
		if (n > 0)
			sd_ack(d, c, -EPROTO, 0, "not a nestvm adapter hello (this switch speaks version %d)",
			       NET_SWITCH_VERSION);
		sd_conn_close(d, c);
		return;
	}
	memcpy(label, h.label, sizeof(h.label));
	label[sizeof(h.label)] = '\0';
	pc.name = label;
	memcpy(pc.mac, h.mac, sizeof(pc.mac));
	vmconfig_fmt_mac(h.mac, mac, sizeof(mac));
	pc.spoofing = h.flags & NET_SWITCH_F_SPOOFING;
	if (pc.spoofing) {
		char why[2 * VMCONFIG_NAME_MAX + 96];

		if (!switchd_spoofing_allowed(d->store, d->cfg->name, h.mac, !d->cfg->unlisted_spoofing_off, why,
					      sizeof(why))) {
			pc.spoofing = false;
			sd_log("adapter '%s' (%s) asks for MAC address spoofing, but %s: spoofing off", label, mac,
			       why);
		}
	}
	/* A learned address that has expired is no one's: forget it first. */
	switch_age(d->sw, d->now);
	port = switch_port_add(d->sw, &pc);
	if (port == -EADDRINUSE) {
		/* A VM restarting comes back before its old connection's hangup
		 * was handled: a port whose peer is gone yields its address. */
		int owner = switch_port_by_mac(d->sw, h.mac);
		struct sd_conn *old = owner >= 0 ? d->by_port[owner] : NULL;
		struct pollfd pfd = { old ? old->fd : -1, POLLIN | POLLRDHUP, 0 };

		if (old && old->kind == SD_PORT && poll(&pfd, 1, 0) == 1 &&
		    (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR))) {
			sd_conn_close(d, old);
			port = switch_port_add(d->sw, &pc);
		}
	}
	if (port == -EADDRINUSE) {
		int holder = switch_port_holding(d->sw, h.mac);
		const struct switch_port *p = holder >= 0 ? switch_port_get(d->sw, (unsigned int)holder) : NULL;

		if (switch_port_by_mac(d->sw, h.mac) >= 0)
			sd_ack(d, c, port, 0, "MAC address %s is in use on this switch by '%s'", mac, p ? p->name : "?");
		else
			sd_ack(d, c, port, 0, "MAC address %s is a station's seen on port '%s' (free once unseen for %llu s)",
			       mac, p ? p->name : "?", (unsigned long long)d->sw->cfg.aging);
	} else if (port == -EINVAL) {
		sd_ack(d, c, port, 0, "MAC address %s is multicast or zero, not an adapter's", mac);
	} else if (port == -ENOSPC) {
		sd_ack(d, c, port, 0, "all %u ports of the switch are in use", d->sw->cfg.max_ports);
	} else if (port >= 0 && !(c->q = calloc(SD_QUEUE_FRAMES, sizeof(*c->q)))) {
		switch_port_remove(d->sw, (unsigned int)port);
		sd_ack(d, c, -ENOMEM, 0, "the switch is out of memory");
		port = -ENOMEM;
	}
	if (port < 0) {
		sd_log("adapter '%s' (%s) refused: %s", label, mac, strerror(-port));
		sd_conn_close(d, c);
		return;
	}
	for (unsigned int i = 0; i < SD_MAX_PENDING; i++)
		if (d->pending[i] == c)
			d->pending[i] = NULL;
	c->kind = SD_PORT;
	c->port = port;
	c->vnet = h.flags & NET_SWITCH_F_VNET_HDR;
	d->by_port[port] = c;
	d->nadapters++;
	sd_ack(d, c, 0, (unsigned int)port, "ok");
	sd_log("port %d: '%s' (%s, MAC address spoofing %s, offloads %s) connected", port,
	       switch_port_get(d->sw, (unsigned int)port)->name, mac, pc.spoofing ? "on" : "off",
	       c->vnet ? "on" : "off");
}

static void sd_accept(struct switchd *d, struct sd_conn *l)
{
	for (;;) {
		struct sd_conn **slot = NULL, **table = l->kind == SD_LISTEN_PORTS ? d->pending : d->control;
		unsigned int cap = l->kind == SD_LISTEN_PORTS ? SD_MAX_PENDING : SD_MAX_CONTROL;
		struct sd_conn *c;
		/* Only this user and root: the rest are closed unanswered. */
		int fd = util_unix_accept(l->fd, SOCK_NONBLOCK);

		if (fd < 0)
			return;
		for (unsigned int i = 0; i < cap && !slot; i++)
			if (!table[i])
				slot = &table[i];
		c = slot ? sd_conn_new(l->kind == SD_LISTEN_PORTS ? SD_PENDING : SD_CONTROL, fd) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		c->since = d->now;
		if (sd_watch(d, c, EPOLLIN, EPOLL_CTL_ADD) < 0) {
			close(fd);
			free(c);
			continue;
		}
		*slot = c;
	}
}

/* ---- show and stop ---- */

static void sd_show_json(struct switchd *d, struct json *j)
{
	const struct switchd_config *cfg = d->cfg;
	struct switch_fdb_entry e;
	uint32_t cursor = 0;
	char mac[24];

	json_object_begin(j);
	json_kv_string(j, "name", cfg->name);
	json_kv_int(j, "pid", getpid());
	json_kv_string(j, "sandbox", d->sandbox);
	json_key(j, "uplink");
	if (cfg->uplink_tap[0] || cfg->uplink_if[0]) {
		json_object_begin(j);
		json_kv_string(j, "kind", cfg->uplink_tap[0] ? "tap" : "interface");
		json_kv_string(j, "interface", cfg->uplink_tap[0] ? cfg->uplink_tap : cfg->uplink_if);
		json_object_end(j);
	} else {
		json_nil(j);
	}
	json_kv_uint(j, "maxPorts", d->sw->cfg.max_ports);
	json_kv_uint(j, "maxAddresses", d->sw->cfg.fdb_max);
	json_kv_uint(j, "maxPortAddresses", d->sw->cfg.port_fdb_max);
	json_kv_bool(j, "unlistedSpoofing", !cfg->unlisted_spoofing_off);
	json_kv_uint(j, "agingSeconds", d->sw->cfg.aging);
	json_kv_uint(j, "frameMax", d->sw->cfg.frame_max);
	json_kv_uint(j, "uptimeSeconds", d->now - d->started);
	json_key(j, "ports");
	json_array_begin(j);
	for (unsigned int i = 0; i < d->sw->cfg.max_ports; i++) {
		const struct switch_port *p = switch_port_get(d->sw, i);

		if (!p)
			continue;
		json_object_begin(j);
		json_kv_uint(j, "port", i);
		json_kv_string(j, "name", p->name);
		json_kv_string(j, "kind", p->uplink ? "uplink" : "adapter");
		if (p->uplink)
			json_kv_null(j, "mac");
		else
			json_kv_string(j, "mac", vmconfig_fmt_mac(p->mac, mac, sizeof(mac)));
		json_kv_bool(j, "macSpoofing", p->uplink || p->spoofing);
		json_kv_uint(j, "rxFrames", p->st.rx_frames);
		json_kv_uint(j, "rxBytes", p->st.rx_bytes);
		json_kv_uint(j, "txFrames", p->st.tx_frames);
		json_kv_uint(j, "txBytes", p->st.tx_bytes);
		json_kv_uint(j, "droppedSpoof", p->st.dropped_spoof);
		json_kv_uint(j, "droppedOther", p->st.dropped_other);
		json_kv_uint(j, "txDropped", p->st.tx_dropped);
		json_kv_uint(j, "learnedAddresses", p->learned);
		json_kv_uint(j, "learnRefused", p->st.learn_refused);
		json_kv_uint(j, "rxOffloaded", p->st.rx_offloaded);
		json_kv_uint(j, "droppedOffload", p->st.dropped_offload);
		json_kv_bool(j, "offloads", d->by_port[i] && d->by_port[i]->vnet);
		json_kv_uint(j, "queued", d->by_port[i] ? d->by_port[i]->qlen : 0);
		json_object_end(j);
	}
	json_array_end(j);
	json_key(j, "addresses");
	json_array_begin(j);
	while (switch_fdb_next(d->sw, &cursor, &e)) {
		json_object_begin(j);
		json_kv_string(j, "mac", vmconfig_fmt_mac(e.mac, mac, sizeof(mac)));
		json_kv_uint(j, "port", e.port);
		json_kv_bool(j, "static", e.is_static);
		if (e.is_static)
			json_kv_null(j, "ageSeconds");
		else
			json_kv_uint(j, "ageSeconds", d->now >= e.seen ? d->now - e.seen : 0);
		json_object_end(j);
	}
	json_array_end(j);
	json_key(j, "counters");
	json_object_begin(j);
	json_kv_uint(j, "addressTableFull", d->sw->st.fdb_full);
	json_kv_uint(j, "addressMoves", d->sw->st.moves);
	json_kv_uint(j, "droppedSpoof", d->sw->st.dropped_spoof);
	json_kv_uint(j, "droppedOther", d->sw->st.dropped_other);
	json_object_end(j);
	json_object_end(j);
}

static void sd_show_text(struct switchd *d, FILE *f)
{
	const struct switchd_config *cfg = d->cfg;
	struct switch_fdb_entry e;
	uint32_t cursor = 0;
	char mac[24];

	fprintf(f, "Switch %s (pid %d), uplink: ", cfg->name, (int)getpid());
	if (cfg->uplink_tap[0])
		fprintf(f, "TAP device %s\n", cfg->uplink_tap);
	else if (cfg->uplink_if[0])
		fprintf(f, "interface %s\n", cfg->uplink_if);
	else
		fprintf(f, "none (internal)\n");
	fprintf(f, "Sandbox: %s\n", d->sandbox);
	fprintf(f, "\nPorts (%u of %u):\n", d->sw->nports, d->sw->cfg.max_ports);
	fprintf(f, "  %-4s %-24s %-17s %-5s %10s %10s %10s %10s %10s\n", "PORT", "NAME", "MAC",
		"SPOOF", "RX", "TX", "DROP-SPOOF", "DROP-OTHER", "TX-DROP");
	for (unsigned int i = 0; i < d->sw->cfg.max_ports; i++) {
		const struct switch_port *p = switch_port_get(d->sw, i);

		if (!p)
			continue;
		fprintf(f, "  %-4u %-24s %-17s %-5s %10llu %10llu %10llu %10llu %10llu\n", i, p->name,
			p->uplink ? "(uplink)" : vmconfig_fmt_mac(p->mac, mac, sizeof(mac)),
			p->uplink ? "-" : p->spoofing ? "on" : "off",
			(unsigned long long)p->st.rx_frames, (unsigned long long)p->st.tx_frames,
			(unsigned long long)p->st.dropped_spoof, (unsigned long long)p->st.dropped_other,
			(unsigned long long)p->st.tx_dropped);
	}
	fprintf(f, "\nAddresses (%u learned of at most %u, %u adapters'):\n", d->sw->fdb_dynamic,
		d->sw->cfg.fdb_max, d->sw->fdb_static);
	fprintf(f, "  %-17s %-4s %-8s %s\n", "MAC", "PORT", "TYPE", "AGE");
	while (switch_fdb_next(d->sw, &cursor, &e)) {
		if (e.is_static)
			fprintf(f, "  %-17s %-4u %-8s -\n", vmconfig_fmt_mac(e.mac, mac, sizeof(mac)), e.port, "adapter");
		else
			fprintf(f, "  %-17s %-4u %-8s %llus\n", vmconfig_fmt_mac(e.mac, mac, sizeof(mac)), e.port,
				"learned", (unsigned long long)(d->now >= e.seen ? d->now - e.seen : 0));
	}
	if (d->sw->st.fdb_full)
		fprintf(f, "\n%llu frames' sources were not learned: the address table was full\n",
			(unsigned long long)d->sw->st.fdb_full);
	for (unsigned int i = 0; i < d->sw->cfg.max_ports; i++) {
		const struct switch_port *p = switch_port_get(d->sw, i);

		if (p && p->st.learn_refused)
			fprintf(f, "Port %u ('%s'): %llu frames' sources not learned: it holds its %u addresses\n", i,
				p->name, (unsigned long long)p->st.learn_refused, d->sw->cfg.port_fdb_max);
	}
}

static void sd_reply(struct switchd *d, struct sd_conn *c, const char *body, size_t len)
{
	if (len > SD_REPLY_MAX) {
		body = "ERR reply too large\n";
		len = strlen(body);
	}
	c->reply = malloc(len);
	if (!c->reply) {
		sd_conn_close(d, c);
		return;
	}
	memcpy(c->reply, body, len);
	c->reply_len = len;
	c->reply_off = 0;
	sd_watch(d, c, EPOLLOUT, EPOLL_CTL_MOD);
}

static void sd_request(struct switchd *d, struct sd_conn *c)
{
	char *req = util_trim(c->req), *text = NULL;
	size_t len = 0;
	FILE *f;

	if (!strcmp(req, "show json") || !strcmp(req, "show text")) {
		f = open_memstream(&text, &len);
		if (!f) {
			sd_conn_close(d, c);
			return;
		}
		fputs("OK\n", f);
		if (req[5] == 'j') {
			struct json j;

			json_init(&j, f, true);
			sd_show_json(d, &j);
			if (json_finish(&j) < 0)
				fputs("\n", f);
			json_free(&j);
		} else {
			sd_show_text(d, f);
		}
		fclose(f);
		sd_reply(d, c, text, len);
		free(text);
		return;
	}
	if (!strcmp(req, "stop") || !strcmp(req, "stop force")) {
		char msg[256];

		if (req[4] == '\0' && d->nadapters) {
			snprintf(msg, sizeof(msg), "ERR switch '%s' has %u adapter%s connected (shut down "
				 "their VMs first, or force it)\n", d->cfg->name, d->nadapters,
				 d->nadapters == 1 ? "" : "s");
			sd_reply(d, c, msg, strlen(msg));
			return;
		}
		c->stop_after = true;
		sd_reply(d, c, "OK\n", 3);
		return;
	}
	{
		char msg[SD_REQ_MAX + 64];

		snprintf(msg, sizeof(msg), "ERR unknown request '%.*s'\n", 64, req);
		sd_reply(d, c, msg, strlen(msg));
	}
}

static void sd_control_io(struct switchd *d, struct sd_conn *c, uint32_t events)
{
	if (c->reply) {
		while (c->reply_off < c->reply_len) {
			ssize_t n = send(c->fd, c->reply + c->reply_off, c->reply_len - c->reply_off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n <= 0)
				break;
			c->reply_off += (size_t)n;
		}
		if (c->stop_after && c->reply_off == c->reply_len) {
			sd_log("stopping on request");
			d->stopping = true;
		}
		sd_conn_close(d, c);
		return;
	}
	if (events & EPOLLIN) {
		ssize_t n = recv(c->fd, c->req + c->reqlen, sizeof(c->req) - 1 - c->reqlen, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n > 0) {
			c->reqlen += (size_t)n;
			c->req[c->reqlen] = '\0';
			if (!strchr(c->req, '\n') && c->reqlen < sizeof(c->req) - 1)
				return;
		} else if (!c->reqlen) {
			sd_conn_close(d, c);
			return;
		}
		c->req[strcspn(c->req, "\n")] = '\0';
		sd_request(d, c);
	} else if (events & (EPOLLHUP | EPOLLERR)) {
		sd_conn_close(d, c);
	}
}

/* ---- uplinks ---- */

static int sd_open_packet(const char *ifname, char *err, size_t errlen)
{
	struct sockaddr_ll sll = { 0 };
	struct packet_mreq mr = { 0 };
	struct ethtool_value ev = { ETHTOOL_SGRO, 0 };
	struct ifreq ifr = { 0 };
	unsigned int idx = if_nametoindex(ifname);
	int fd, one = 1, r;

	if (!idx) {
		snprintf(err, errlen, "interface '%s' not found (see 'ip link')", ifname);
		return -ENODEV;
	}
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "interface '%s': packet socket: %s%s", ifname, strerror(-r),
			 r == -EPERM ? " (an uplink to an interface needs CAP_NET_RAW: run as root)" : "");
		return r;
	}
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)idx;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		r = -errno;
		snprintf(err, errlen, "interface '%s': bind: %s", ifname, strerror(-r));
		close(fd);
		return r;
	}
	/* The nested guests' addresses are not the interface's: promiscuous. */
	mr.mr_ifindex = (int)idx;
	mr.mr_type = PACKET_MR_PROMISC;
	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
		r = -errno;
		snprintf(err, errlen, "interface '%s': promiscuous mode: %s", ifname, strerror(-r));
		close(fd);
		return r;
	}
	(void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	/* GRO would merge received segments into frames no guest buffer holds. */
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (char *)&ev;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		sd_log("uplink '%s': could not turn GRO off (%s); large received frames will be "
		       "dropped", ifname, strerror(errno));
	return fd;
}

static int sd_add_uplink(struct switchd *d, char *err, size_t errlen)
{
	const struct switchd_config *cfg = d->cfg;
	struct switch_port_cfg pc = { .uplink = true };
	struct sd_conn *c;
	char name[64];
	int fd, port;
	bool tap = cfg->uplink_tap[0];

	if (!cfg->uplink_tap[0] && !cfg->uplink_if[0])
		return 0;
	fd = tap ? net_tap_open(cfg->uplink_tap, false, err, errlen) : sd_open_packet(cfg->uplink_if, err, errlen);
	if (fd < 0)
		return fd;
	snprintf(name, sizeof(name), "uplink %s %s", tap ? "tap" : "if", tap ? cfg->uplink_tap : cfg->uplink_if);
	pc.name = name;
	c = sd_conn_new(tap ? SD_UPLINK_TAP : SD_UPLINK_PACKET, fd);
	if (c)
		c->vnet = tap;  /* a TAP device takes offloaded frames, with their header */
	if (!c || !(c->q = calloc(SD_QUEUE_FRAMES, sizeof(*c->q)))) {
		close(fd);
		free(c);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	port = switch_port_add(d->sw, &pc);
	if (port < 0 || sd_watch(d, c, EPOLLIN, EPOLL_CTL_ADD) < 0) {
		close(fd);
		free(c->q);
		free(c);
		snprintf(err, errlen, "uplink: adding its port failed");
		return port < 0 ? port : -EIO;
	}
	c->port = port;
	d->by_port[port] = c;
	sd_log("port %d: %s", port, name);
	return 0;
}

/* ---- the daemon ---- */

static int sd_listen(struct switchd *d, struct sd_conn *c, const char *file, int type,
		     char *err, size_t errlen)
{
	char path[SWITCHD_PATH_MAX + 32];
	int r;

	snprintf(path, sizeof(path), "%s/%s", d->cfg->dir, file);
	/* A previous daemon's socket is replaced (we hold the lock), but never
	 * a file that is no stale socket. */
	r = util_unix_listen(path, type | SOCK_NONBLOCK, 64);
	c->fd = r < 0 ? -1 : r;
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, util_unix_listen_strerror(r));
		return r;
	}
	r = sd_watch(d, c, EPOLLIN, EPOLL_CTL_ADD);
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
	return r;
}

static void sd_ready(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sd_ready(int fd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	if (fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)!write(fd, msg, (size_t)MIN(n, (int)sizeof(msg) - 1));
}

static int sd_lock(struct switchd *d, char *err, size_t errlen)
{
	char path[SWITCHD_PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", d->cfg->dir, SWITCHD_LOCK);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EEXIST : -errno;

		snprintf(err, errlen, r == -EEXIST ? "already running" : "locking %s failed", path);
		return r;
	}
	return 0;
}

static void sd_write_pid(struct switchd *d)
{
	char path[SWITCHD_PATH_MAX + 32], buf[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s", d->cfg->dir, SWITCHD_PID);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	(void)!write(fd, buf, (size_t)n);
	close(fd);
}

/* A daemon's log (its stderr, switchd.log) starts over past SD_LOG_ROTATE,
 * keeping the previous one as switchd.log.old. */
static void sd_rotate_log(struct switchd *d)
{
	char log[SWITCHD_PATH_MAX + 32], old[SWITCHD_PATH_MAX + 40];
	struct stat err_st, log_st;
	int fd;

	snprintf(log, sizeof(log), "%s/%s", d->cfg->dir, SWITCHD_LOG);
	if (fstat(STDERR_FILENO, &err_st) < 0 || !S_ISREG(err_st.st_mode) ||
	    err_st.st_size <= SD_LOG_ROTATE || stat(log, &log_st) < 0 ||
	    log_st.st_ino != err_st.st_ino || log_st.st_dev != err_st.st_dev)
		return;
	snprintf(old, sizeof(old), "%s.old", log);
	if (rename(log, old) < 0)
		return;
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

static void sd_tick(struct switchd *d)
{
	switch_age(d->sw, d->now);
	if (d->now % 60 == 0)
		sd_rotate_log(d);
	for (unsigned int i = 0; i < SD_MAX_PENDING; i++)
		if (d->pending[i] && d->now - d->pending[i]->since >= SD_HELLO_TIMEOUT_S)
			sd_conn_close(d, d->pending[i]);
	for (unsigned int i = 0; i < SD_MAX_CONTROL; i++)
		if (d->control[i] && d->now - d->control[i]->since >= SD_CONTROL_TIMEOUT_S)
			sd_conn_close(d, d->control[i]);
}

static void sd_dispatch(struct switchd *d, struct sd_conn *c, uint32_t events)
{
	switch (c->kind) {
	case SD_LISTEN_PORTS:
	case SD_LISTEN_CONTROL:
		sd_accept(d, c);
		break;
	case SD_SIGNAL: {
		struct signalfd_siginfo si;

		if (read(c->fd, &si, sizeof(si)) == (ssize_t)sizeof(si) && si.ssi_signo != SIGHUP) {
			sd_log("stopping on signal %u", si.ssi_signo);
			d->stopping = true;
		}
		break;
	}
	case SD_PENDING:
		sd_hello(d, c);
		break;
	case SD_PORT:
	case SD_UPLINK_TAP:
	case SD_UPLINK_PACKET:
		if (events & EPOLLOUT)
			sd_flush(d, c);
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			sd_input(d, c);
		break;
	case SD_CONTROL:
		sd_control_io(d, c, events);
		break;
	case SD_DEAD:
		break;
	}
}

/* Everything the daemon opens from here on is in its own directory (the
 * log's rotation, its sockets and pid file at the end) or read from the
 * store (the VMs' configurations and locks, for their adapters' spoofing):
 * its filter, no capabilities (the uplink is open already) and Landlock
 * hold it to that. */
static int sd_sandbox(struct switchd *d, char *err, size_t errlen)
{
	const struct switchd_config *cfg = d->cfg;
	struct sandbox_path paths[2];
	struct sandbox_config sc = { .seccomp = !cfg->no_seccomp, .landlock = true, .paths = paths };
	struct sandbox_info info;
	char why[300];
	int r;

	paths[sc.npaths++] = (struct sandbox_path){ cfg->dir, SANDBOX_TREE };
	if (d->store[0])
		paths[sc.npaths++] = (struct sandbox_path){ d->store, SANDBOX_LIST };
	r = sandbox_setup(&sc, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "%s (switch.conf: no-seccomp = on goes without the filter)", why);
		return r;
	}
	sandbox_enter(SANDBOX_ROLE_SWITCH);
	sandbox_info(&info);
	sandbox_describe(&info, d->sandbox, sizeof(d->sandbox));
	return 0;
}

static void sd_cleanup(struct switchd *d)
{
	char path[SWITCHD_PATH_MAX + 32];

	/* Sockets first: whoever comes now finds no switch, not a dead one. */
	snprintf(path, sizeof(path), "%s/%s", d->cfg->dir, SWITCHD_PORTS_SOCK);
	if (d->listen_ports.fd >= 0)
		unlink(path);
	snprintf(path, sizeof(path), "%s/%s", d->cfg->dir, SWITCHD_CONTROL_SOCK);
	if (d->listen_control.fd >= 0)
		unlink(path);
	if (d->by_port)
		for (unsigned int i = 0; i < d->sw->cfg.max_ports; i++)
			if (d->by_port[i])
				sd_conn_close(d, d->by_port[i]);
	for (unsigned int i = 0; i < SD_MAX_PENDING; i++)
		if (d->pending[i])
			sd_conn_close(d, d->pending[i]);
	for (unsigned int i = 0; i < SD_MAX_CONTROL; i++)
		if (d->control[i])
			sd_conn_close(d, d->control[i]);
	if (d->listen_ports.fd >= 0)
		close(d->listen_ports.fd);
	if (d->listen_control.fd >= 0)
		close(d->listen_control.fd);
	sd_reap(d);
	if (d->sig.fd >= 0)
		close(d->sig.fd);
	if (d->ep >= 0)
		close(d->ep);
	if (d->lock_fd >= 0) {
		snprintf(path, sizeof(path), "%s/%s", d->cfg->dir, SWITCHD_PID);
		unlink(path);
		close(d->lock_fd);
	}
	free(d->by_port);
	free(d->buf);
	free(d->seg);
	free(d->out);
	switch_destroy(d->sw);
}

int switchd_run(const struct switchd_config *cfg, int ready_fd)
{
	struct switchd d = { .cfg = cfg, .ep = -1, .lock_fd = -1 };
	struct switch_cfg sc = {
		.max_ports = cfg->max_ports, .fdb_max = cfg->fdb_max, .port_fdb_max = cfg->port_fdb_max,
		.aging = cfg->aging_s, .frame_max = cfg->frame_max,
	};
	char err[2 * SWITCHD_PATH_MAX] = "";
	sigset_t sigs;
	int r;

	d.listen_ports = (struct sd_conn){ .kind = SD_LISTEN_PORTS, .fd = -1, .port = -1 };
	d.listen_control = (struct sd_conn){ .kind = SD_LISTEN_CONTROL, .fd = -1, .port = -1 };
	d.sig = (struct sd_conn){ .kind = SD_SIGNAL, .fd = -1, .port = -1 };
	if (switchd_store_of(cfg->dir, d.store, sizeof(d.store)) < 0)
		d.store[0] = '\0';
	if (getrandom(&sc.seed, sizeof(sc.seed), GRND_NONBLOCK) != sizeof(sc.seed))
		sc.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	r = switch_create(&d.sw, &sc);
	if (r < 0) {
		snprintf(err, sizeof(err), "bad limits in %s/%s", cfg->dir, SWITCHD_CONF);
		goto out;
	}
	d.by_port = calloc(d.sw->cfg.max_ports, sizeof(*d.by_port));
	d.out = calloc(d.sw->cfg.max_ports, sizeof(*d.out));
	d.buf = malloc(SD_BUF_LEN);
	d.seg = malloc(d.sw->cfg.frame_max);
	d.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!d.by_port || !d.out || !d.buf || !d.seg || d.ep < 0) {
		r = d.ep < 0 ? -errno : -ENOMEM;
		snprintf(err, sizeof(err), "%s", strerror(-r));
		goto out;
	}
	r = sd_lock(&d, err, sizeof(err));
	if (r < 0)
		goto out;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	d.sig.fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d.sig.fd < 0 || sd_watch(&d, &d.sig, EPOLLIN, EPOLL_CTL_ADD) < 0) {
		r = -errno;
		snprintf(err, sizeof(err), "signalfd: %s", strerror(errno));
		goto out;
	}
	d.now = d.started = sd_now();
	r = sd_listen(&d, &d.listen_ports, SWITCHD_PORTS_SOCK, SOCK_SEQPACKET, err, sizeof(err));
	if (r == 0)
		r = sd_listen(&d, &d.listen_control, SWITCHD_CONTROL_SOCK, SOCK_STREAM, err, sizeof(err));
	if (r == 0)
		r = sd_add_uplink(&d, err, sizeof(err));
	if (r < 0)
		goto out;
	sd_write_pid(&d);
	r = sd_sandbox(&d, err, sizeof(err));
	if (r < 0)
		goto out;
	sd_log("switch '%s' up in %s: %u ports, %u addresses, aging %llus, frames up to %u bytes%s%s",
	       cfg->name, cfg->dir, d.sw->cfg.max_ports, d.sw->cfg.fdb_max,
	       (unsigned long long)d.sw->cfg.aging, d.sw->cfg.frame_max,
	       cfg->uplink_tap[0] || cfg->uplink_if[0] ? ", uplink " : "",
	       cfg->uplink_tap[0] ? cfg->uplink_tap : cfg->uplink_if);
	sd_ready(ready_fd, "OK %d\n", (int)getpid());
	if (ready_fd >= 0)
		close(ready_fd);
	ready_fd = -1;

	while (!d.stopping) {
		struct epoll_event ev[64];
		int n = epoll_wait(d.ep, ev, (int)ARRAY_SIZE(ev), 1000);
		uint64_t now;

		if (n < 0 && errno != EINTR) {
			r = -errno;
			sd_log("epoll_wait: %s", strerror(errno));
			break;
		}
		now = sd_now();
		if (now != d.now) {
			d.now = now;
			sd_tick(&d);
		}
		for (int i = 0; i < n && !d.stopping; i++)
			sd_dispatch(&d, ev[i].data.ptr, ev[i].events);
		sd_reap(&d);
	}
	if (r == 0)
		sd_log("switch '%s' stopped", cfg->name);

out:
	if (r < 0 && ready_fd >= 0)
		sd_ready(ready_fd, "ERR %s\n", err[0] ? err : strerror(-r));
	if (r < 0)
		sd_log("switch '%s' not started: %s", cfg->name, err[0] ? err : strerror(-r));
	if (ready_fd >= 0)
		close(ready_fd);
	sd_cleanup(&d);
	return r;
}

/* ---- starting, asking, stopping ---- */

/* The daemon's process: no terminal, stdio to /dev/null and the log, no
 * inherited descriptors but the readiness pipe (moved to 3), default signals. */
static int sd_daemonize(const struct switchd_config *c, int ready)
{
	char log[SWITCHD_PATH_MAX + 32], old[SWITCHD_PATH_MAX + 40];
	struct stat st;
	sigset_t none;
	int fd, high;

	high = fcntl(ready, F_DUPFD_CLOEXEC, 10);
	if (high < 0)
		return -errno;
	snprintf(log, sizeof(log), "%s/%s", c->dir, SWITCHD_LOG);
	if (stat(log, &st) == 0 && st.st_size > SD_LOG_ROTATE) {
		snprintf(old, sizeof(old), "%s.old", log);
		rename(log, old);
	}
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	dup2(high, 3);
	if (close_range(4, ~0U, 0) < 0)
		for (int i = 4; i < 1024; i++)
			close(i);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(077);
	if (chdir("/") < 0)
		return -errno;
	return 3;
}

int switchd_start(const struct switchd_config *c, pid_t *pid, char *err, size_t errlen)
{
	char buf[600];
	int ready, r;

	*pid = -1;
	r = util_daemon_fork(&ready);
	if (r < 0) {
		snprintf(err, errlen, "starting the daemon: %s", strerror(-r));
		return r;
	}
	if (r == 0) {
		prctl(PR_SET_NAME, "nestvm-switch", 0, 0, 0);
		ready = sd_daemonize(c, ready);
		if (ready < 0)
			_exit(1);
		_exit(switchd_run(c, ready) < 0 ? 1 : 0);
	}
	if (util_daemon_wait(ready, buf, sizeof(buf), SD_START_TIMEOUT_MS) == -ETIMEDOUT) {
		snprintf(err, errlen, "the daemon did not come up within %d s (see %s/%s)",
			 SD_START_TIMEOUT_MS / 1000, c->dir, SWITCHD_LOG);
		return -ETIMEDOUT;
	}
	if (!strncmp(buf, "OK ", 3)) {
		*pid = (pid_t)atoi(buf + 3);
		return 0;
	}
	if (!strncmp(buf, "ERR ", 4)) {
		snprintf(err, errlen, "%s", buf + 4);
		return strstr(buf, "already running") ? -EEXIST : -EIO;
	}
	snprintf(err, errlen, "the daemon exited while starting (see %s/%s)", c->dir, SWITCHD_LOG);
	return -EIO;
}

bool switchd_alive(const char *dir)
{
	char path[SWITCHD_PATH_MAX + 32];
	bool alive;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, SWITCHD_LOCK);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	alive = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return alive;
}

int switchd_request(const char *dir, const char *req, char **reply, char *err, size_t errlen)
{
	char path[SWITCHD_PATH_MAX + 32], line[SD_REQ_MAX + 1];
	char *buf = NULL, *nl;
	size_t len = 0, cap = 0;
	int fd, r, n;

	*reply = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, SWITCHD_CONTROL_SOCK);
	n = snprintf(line, sizeof(line), "%s\n", req);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	fd = util_unix_connect(path, SOCK_STREAM);
	if (fd < 0) {
		if (fd == -ENOENT || fd == -ECONNREFUSED)
			snprintf(err, errlen, "the switch is not running");
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-fd));
		return fd;
	}
	r = util_write_all(fd, line, (size_t)n);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t got;

		r = poll(&pfd, 1, SD_CONTROL_TIMEOUT_S * 1000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			r = -ETIMEDOUT;
			snprintf(err, errlen, "the switch did not answer within %d s", SD_CONTROL_TIMEOUT_S);
			goto out;
		}
		if (len + 4096 + 1 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 16384;
			if (cap > SD_REPLY_MAX + 4096 || !(nb = realloc(buf, cap))) {
				r = -ENOMEM;
				snprintf(err, errlen, "the switch's answer is too large");
				goto out;
			}
			buf = nb;
		}
		got = recv(fd, buf + len, cap - len - 1, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	r = 0;
	if (!buf || !len) {
		r = -EIO;
		snprintf(err, errlen, "the switch closed the connection without an answer");
		goto out;
	}
	buf[len] = '\0';
	nl = strchr(buf, '\n');
	if (!strncmp(buf, "OK\n", 3)) {
		memmove(buf, buf + 3, len - 3 + 1);
		*reply = buf;
		buf = NULL;
	} else {
		if (nl)
			*nl = '\0';
		snprintf(err, errlen, "%s", !strncmp(buf, "ERR ", 4) ? buf + 4 : "not a switch's answer");
		r = !strncmp(buf, "ERR ", 4) ? -EBUSY : -EPROTO;
	}
out:
	free(buf);
	close(fd);
	return r;
}

static pid_t sd_read_pid(const char *dir)
{
	char path[SWITCHD_PATH_MAX + 32];
	uint8_t *data;
	size_t len;
	long pid = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, SWITCHD_PID);
	if (util_read_file(path, &data, &len) < 0)
		return -1;
	if (len && len < 32) {
		char tmp[32];

		memcpy(tmp, data, len);
		tmp[len] = '\0';
		pid = strtol(tmp, NULL, 10);
	}
	free(data);
	return pid > 1 && pid <= INT_MAX ? (pid_t)pid : -1;
}

static bool sd_wait_gone(const char *dir, int wait_ms)
{
	for (int waited = 0; waited < wait_ms; waited += 20) {
		if (!switchd_alive(dir))
			return true;
		usleep(20000);
	}
	return !switchd_alive(dir);
}

int switchd_stop(const char *dir, bool force, int wait_ms, char *err, size_t errlen)
{
	char *reply = NULL;
	pid_t pid;
	int r;

	if (!switchd_alive(dir))
		return 0;
	r = switchd_request(dir, force ? "stop force" : "stop", &reply, err, errlen);
	free(reply);
	if (r == -EBUSY || r == -EPROTO)
		return r;
	if (r == 0 && sd_wait_gone(dir, wait_ms))
		return 0;
	/* Not answering, or answering but not leaving: the daemon is stuck. */
	pid = sd_read_pid(dir);
	if (pid > 0 && switchd_alive(dir)) {
		kill(pid, SIGTERM);
		if (sd_wait_gone(dir, 1000))
			return 0;
	}
	if (!switchd_alive(dir))
		return 0;
	snprintf(err, errlen, "the switch daemon (pid %d) did not stop", (int)pid);
	return -ETIMEDOUT;
}

/* The virtual switch: a forwarding core (ports, a bounded MAC learning table,
 * flooding, the MAC-spoofing guard) that is pure — no I/O, no clock, the
 * caller passes a logical time — so tests and the fuzzer drive it directly;
 * and the switch daemon (switchd.c) that moves frames between its ports. */
#ifndef NESTVM_NET_SWITCH_H
#define NESTVM_NET_SWITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define SWITCH_ETH_ALEN         6
#define SWITCH_ETH_HLEN         14      /* dst, src, type: a shorter frame is a runt */
#define SWITCH_FRAME_LIMIT      65535   /* the most any configuration allows */
#define SWITCH_DEFAULT_FRAME_MAX 9216   /* jumbo frames with a VLAN tag or two */
#define SWITCH_MAX_PORTS        1024
#define SWITCH_DEFAULT_PORTS    256
#define SWITCH_DEFAULT_FDB      4096    /* learned addresses */
#define SWITCH_DEFAULT_PORT_FDB 256     /* learned addresses one adapter's port may hold */
#define SWITCH_DEFAULT_AGING    300     /* ticks (the daemon's are seconds) */
#define SWITCH_PORT_NAME        48

/* Per-port counters. rx counts every frame the port sent into the switch,
 * the dropped ones included; tx counts what the switch handed to the port. */
struct switch_port_stats {
	uint64_t rx_frames, rx_bytes;
	uint64_t tx_frames, tx_bytes;
	uint64_t dropped_spoof;         /* source MAC not the port's own, spoofing off,
					 * or another adapter's own address */
	uint64_t dropped_other;         /* runt, oversized, multicast or zero source */
	uint64_t tx_dropped;            /* for the port, but it was too slow to take it */
	uint64_t learn_refused;         /* a source not learned: the port holds its limit */
	uint64_t rx_offloaded;          /* frames that came with a partial checksum or as TSO */
	uint64_t dropped_offload;       /* frames whose virtio-net header did not fit them */
};

struct switch_port {
	bool used;
	bool uplink;                    /* any source address; no assigned MAC */
	bool spoofing;                  /* an adapter that may send any source */
	uint8_t mac[SWITCH_ETH_ALEN];   /* the adapter's own address (not for uplinks) */
	char name[SWITCH_PORT_NAME];
	uint32_t learned;               /* dynamic table entries pointing here */
	struct switch_port_stats st;
};

struct switch_port_cfg {
	const char *name;               /* printable, truncated to fit */
	uint8_t mac[SWITCH_ETH_ALEN];
	bool uplink;
	bool spoofing;
};

/* One entry of the address table. Static entries are the adapters' own
 * addresses: they never age, never move and do not count against fdb_max. */
struct switch_fdb_entry {
	uint8_t mac[SWITCH_ETH_ALEN];
	bool used;
	bool is_static;
	uint16_t port;
	uint64_t seen;                  /* logical time of the last frame from it */
};

struct switch_cfg {
	unsigned int max_ports;         /* 0: SWITCH_DEFAULT_PORTS; at most SWITCH_MAX_PORTS */
	unsigned int fdb_max;           /* 0: SWITCH_DEFAULT_FDB; at most 1 << 20 */
	unsigned int port_fdb_max;      /* per adapter's port (not the uplink's); 0: SWITCH_DEFAULT_PORT_FDB */
	uint64_t aging;                 /* 0: SWITCH_DEFAULT_AGING ticks */
	uint32_t frame_max;             /* 0: SWITCH_DEFAULT_FRAME_MAX; 14..SWITCH_FRAME_LIMIT */
	uint64_t seed;                  /* keys the table's hash against chosen collisions */
};

/* Switch-wide counters. */
struct switch_stats {
	uint64_t fdb_full;              /* a source not learned: the table was full */
	uint64_t moves;                 /* a learned address seen on another port */
	uint64_t dropped_spoof;         /* every port's, those since removed too */
	uint64_t dropped_other;
};

struct switch_core {
	struct switch_cfg cfg;
	struct switch_port *ports;      /* cfg.max_ports of them */
	unsigned int nports;            /* in use */
	struct switch_fdb_entry *fdb;   /* open addressing, linear probing */
	uint32_t fdb_mask;
	unsigned int fdb_dynamic, fdb_static;
	uint64_t last_full_sweep;
	bool swept;
	struct switch_stats st;
};

enum switch_verdict {
	SWITCH_FORWARD,                 /* to out[0..nout): one port, or a flood (nout may be 0) */
	SWITCH_FILTERED,                /* for a station on the port it came from */
	SWITCH_DROP_SPOOF,
	SWITCH_DROP_RUNT,
	SWITCH_DROP_OVERSIZE,
	SWITCH_DROP_BAD_SOURCE,         /* multicast or all-zero source address */
	SWITCH_DROP_NO_PORT,            /* the input port is not in use */
};

MUST_CHECK int switch_create(struct switch_core **out, const struct switch_cfg *cfg);
void switch_destroy(struct switch_core *sw);

/* Adds a port and returns its number, or -EINVAL (an adapter's address that
 * is multicast or zero), -EADDRINUSE (another adapter has that address, or
 * it is learned on another port: a new adapter never takes a station's
 * address away from it), -ENOSPC (every port in use). The adapter's address
 * is pinned to the port. */
MUST_CHECK int switch_port_add(struct switch_core *sw, const struct switch_port_cfg *pc);
/* Removes the port and every address learned on it; unknown ports are ignored. */
void switch_port_remove(struct switch_core *sw, unsigned int port);
/* The port, or NULL if it is not in use. */
const struct switch_port *switch_port_get(const struct switch_core *sw, unsigned int port);
/* Which port has mac as its adapter's address, or -1. */
int switch_port_by_mac(const struct switch_core *sw, const uint8_t mac[SWITCH_ETH_ALEN]);
/* Which port has mac, pinned or learned (expired or not), or -1. */
int switch_port_holding(const struct switch_core *sw, const uint8_t mac[SWITCH_ETH_ALEN]);

/* Where a frame that came in on port goes. out has room for cfg.max_ports
 * entries; flooding lists every other port in use, in ascending order. Counts
 * rx and the drops; what reaches the ports is counted by switch_tx_done.
 * An adapter's port sends only its own source address unless spoofing is
 * on, and never another adapter's; it learns at most cfg.port_fdb_max
 * addresses, and moves a learned address only if it may send it. */
enum switch_verdict switch_input(struct switch_core *sw, unsigned int port, const uint8_t *frame,
				 size_t len, uint64_t now, uint16_t *out, unsigned int *nout);
/* As switch_input, for a frame that carries offloads (net/offload.h): it
 * leaves as segments of at most wire_len bytes (TSO) or with its checksum
 * finished, so the largest-frame limit applies to wire_len; counted in
 * rx_offloaded. */
enum switch_verdict switch_input_offloaded(struct switch_core *sw, unsigned int port, const uint8_t *frame,
					   size_t len, size_t wire_len, uint64_t now, uint16_t *out,
					   unsigned int *nout);
/* Counts a frame of len bytes that came in on port with a header that does
 * not describe it (dropped before it reached the core). */
void switch_refuse_offload(struct switch_core *sw, unsigned int port, size_t len);
/* The caller delivered a frame of len bytes to port (ok), or had to drop it. */
void switch_tx_done(struct switch_core *sw, unsigned int port, size_t len, bool ok);

/* Forgets learned addresses not seen for cfg.aging ticks. */
void switch_age(struct switch_core *sw, uint64_t now);
/* The port learned or pinned for mac at time now, or -1. */
int switch_lookup(struct switch_core *sw, const uint8_t mac[SWITCH_ETH_ALEN], uint64_t now);
/* Walks the table: start *cursor at 0; false at the end. */
bool switch_fdb_next(const struct switch_core *sw, uint32_t *cursor, struct switch_fdb_entry *e);

const char *switch_verdict_name(enum switch_verdict v);

/* ---- The switch daemon (switchd.c) ----
 * A switch lives in STORE/switches/NAME: its configuration (switch.conf), the
 * daemon's lock, pid and log, the socket adapters connect to (ports.sock,
 * SOCK_SEQPACKET: a hello, then one frame per message, see net/backend.h) and
 * the control socket (control.sock: one request line, one reply). */
#define SWITCHD_CONF            "switch.conf"
#define SWITCHD_LOCK            "lock"
#define SWITCHD_PID             "switchd.pid"
#define SWITCHD_LOG             "switchd.log"
#define SWITCHD_PORTS_SOCK      "ports.sock"
#define SWITCHD_CONTROL_SOCK    "control.sock"
#define SWITCHD_NAME_MAX        64
#define SWITCHD_IFNAME_MAX      16      /* IFNAMSIZ */
#define SWITCHD_PATH_MAX        1024

struct switchd_config {
	char name[SWITCHD_NAME_MAX + 1];
	char dir[SWITCHD_PATH_MAX];             /* the switch's directory */
	char uplink_tap[SWITCHD_IFNAME_MAX];    /* "": none; a TAP device, created if missing */
	char uplink_if[SWITCHD_IFNAME_MAX];     /* "": none; an existing interface (AF_PACKET) */
	unsigned int max_ports;                 /* 0: defaults as in struct switch_cfg */
	unsigned int fdb_max;
	unsigned int aging_s;
	unsigned int frame_max;
	unsigned int port_fdb_max;              /* learned addresses per adapter; 0: the default */
	bool unlisted_spoofing_off;             /* unlisted-spoofing = off, see switchd_spoofing_allowed */
	bool no_seccomp;                        /* no-seccomp = on: the daemon runs without its filter */
};

/* A switch's name: vmconfig_check_name's rule. 0, or -EINVAL with err. */
MUST_CHECK int switchd_name_check(const char *name, char *err, size_t errlen);
/* STORE/switches, STORE from store_root(store). */
MUST_CHECK int switchd_root(const char *store, char *buf, size_t len);
/* The names of the store's switches, sorted; free with store_list_free. */
MUST_CHECK int switchd_list(const char *store, char ***names, size_t *n);
/* STORE/switches/NAME/file (file NULL: the directory). */
MUST_CHECK int switchd_path(const char *store, const char *name, const char *file,
			    char *buf, size_t len);

/* switch.conf: "key = value" lines (uplink-tap, uplink-if, max-ports,
 * max-addresses, max-port-addresses, aging, frame-max, unlisted-spoofing,
 * no-seccomp).
 * Parsing is pure; err says FILE:LINE. */
MUST_CHECK int switchd_config_parse(const char *text, size_t len, struct switchd_config *c,
				    char *err, size_t errlen);
MUST_CHECK int switchd_config_save(const struct switchd_config *c, char *err, size_t errlen);
MUST_CHECK int switchd_config_load(const char *dir, const char *name, struct switchd_config *c,
				   char *err, size_t errlen);

/* Whether the adapter with address mac on switch sw_name may send from
 * other addresses. The adapter's hello only asks; the answer comes from the
 * store at store_root, which the VM's owner writes and the VMM does not
 * speak for: if a stored VM has an adapter on this switch with that
 * address, its configuration decides (spoofing on, and the VM running:
 * every such adapter must say so). An address that no stored VM has on this
 * switch is an unlisted adapter's (nestvm run: its configuration is its
 * command line): allowed unless the switch says unlisted-spoofing = off.
 * why gets the reason, for the log. */
bool switchd_spoofing_allowed(const char *store_root, const char *sw_name, const uint8_t mac[SWITCH_ETH_ALEN],
			      bool unlisted_allowed, char *why, size_t whylen);
/* STORE from a switch's directory STORE/switches/NAME. */
MUST_CHECK int switchd_store_of(const char *dir, char *buf, size_t len);

/* Starts the daemon detached (its own session, stdio to /dev/null and its
 * log) and waits until it listens or has failed; err says why it failed. */
MUST_CHECK int switchd_start(const struct switchd_config *c, pid_t *pid, char *err, size_t errlen);
/* The daemon itself, in this process, until it is asked to stop or gets
 * SIGTERM or SIGINT. ready_fd (-1: none) receives "OK PID\n" once it
 * listens, or "ERR message\n". Returns 0 or -errno. */
MUST_CHECK int switchd_run(const struct switchd_config *c, int ready_fd);
/* Whether a daemon holds the switch's lock. */
bool switchd_alive(const char *dir);
/* Sends one request line ("show json", "show text", "stop", "stop force")
 * and returns the reply body, malloc'd. A refusal is -EBUSY (or another
 * error) with the daemon's message in err. */
MUST_CHECK int switchd_request(const char *dir, const char *req, char **reply,
			       char *err, size_t errlen);
/* Asks the daemon to stop (force: even with adapters connected) and waits up
 * to wait_ms for it to be gone; then SIGTERM, then -ETIMEDOUT. */
MUST_CHECK int switchd_stop(const char *dir, bool force, int wait_ms, char *err, size_t errlen);

#endif

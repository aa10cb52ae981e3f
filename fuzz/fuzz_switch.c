/* libFuzzer target for the switch's forwarding core: the input is a script
 * of port additions and removals, clock steps and frames (with the port they
 * arrive on) that a hostile set of guests could produce. After every step the
 * verdict, the output ports and the whole address table are checked against
 * the core's invariants with __builtin_trap(). */
#include "net/switch.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* Input: 3 bytes of configuration (ports 1..8, table 1..16 addresses,
 * aging 1..8 ticks, largest frame 14..269), then operations:
 *   0 F M      add a port: F bit 0 uplink, bit 1 spoofing; MAC 02:00:00:00:00:M
 *              (M with bit 7: 01:00:5e:00:00:M, multicast, which must be refused)
 *   1 P        remove port P
 *   2 T        advance the clock by T
 *   3          age the table
 *   4.. P L D  a frame of L bytes (L < 2^16, cut to what is left) on port P;
 *              its first bytes are D, so addresses come from the input. */
struct shadow {
	uint64_t rx[8];
};

static void mac_of(uint8_t m, uint8_t mac[6])
{
	static const uint8_t plain[6] = { 0x02, 0, 0, 0, 0, 0 }, mcast[6] = { 0x01, 0x00, 0x5e, 0, 0, 0 };

	memcpy(mac, (m & 0x80) ? mcast : plain, 6);
	mac[5] = m;
}

static void check_table(struct switch_core *sw, uint64_t now)
{
	struct switch_fdb_entry e;
	uint32_t cursor = 0;
	unsigned int dyn = 0, stat = 0, adapters = 0, used = 0;
	uint64_t learned = 0;

	while (switch_fdb_next(sw, &cursor, &e)) {
		const struct switch_port *p = switch_port_get(sw, e.port);

		ASSERT(p);
		ASSERT(!(e.mac[0] & 1));
		if (e.is_static) {
			stat++;
			ASSERT(!p->uplink);
			ASSERT(!memcmp(p->mac, e.mac, 6));
		} else {
			dyn++;
			/* Learned only where the source check lets any address in. */
			ASSERT(p->uplink || p->spoofing);
			ASSERT(e.seen <= now);
			/* No adapter owns a learned address. */
			ASSERT(switch_port_by_mac(sw, e.mac) < 0);
		}
	}
	ASSERT(dyn == sw->fdb_dynamic && stat == sw->fdb_static);
	ASSERT(dyn <= sw->cfg.fdb_max);
	for (unsigned int i = 0; i < sw->cfg.max_ports; i++) {
		const struct switch_port *p = switch_port_get(sw, i);

		if (!p)
			continue;
		used++;
		learned += p->learned;
		if (!p->uplink) {
			adapters++;
			ASSERT(switch_port_by_mac(sw, p->mac) == (int)i);
			ASSERT(p->learned <= sw->cfg.port_fdb_max);
		}
	}
	ASSERT(used == sw->nports);
	ASSERT(adapters == stat);
	ASSERT(learned == dyn);
}

static void check_frame(struct switch_core *sw, unsigned int port, const uint8_t *f, size_t len,
			enum switch_verdict v, const uint16_t *out, unsigned int nout, bool port_used,
			const struct switch_port *before, int src_owner)
{
	uint8_t seen[SWITCH_MAX_PORTS / 8] = { 0 };

	ASSERT(v <= SWITCH_DROP_NO_PORT);
	ASSERT(nout <= sw->cfg.max_ports);
	if (!port_used) {
		ASSERT(v == SWITCH_DROP_NO_PORT && nout == 0);
		return;
	}
	if (v != SWITCH_FORWARD)
		ASSERT(nout == 0);
	if (len < SWITCH_ETH_HLEN)
		ASSERT(v == SWITCH_DROP_RUNT);
	else if (len > sw->cfg.frame_max)
		ASSERT(v == SWITCH_DROP_OVERSIZE);
	else if (!before->uplink && !before->spoofing && memcmp(f + 6, before->mac, 6))
		ASSERT(v == SWITCH_DROP_SPOOF);
	else if (before->spoofing && src_owner >= 0 && (unsigned int)src_owner != port)
		ASSERT(v == SWITCH_DROP_SPOOF);         /* another adapter's own address */
	else if (v == SWITCH_DROP_SPOOF)
		ASSERT(0);
	for (unsigned int i = 0; i < nout; i++) {
		ASSERT(out[i] < sw->cfg.max_ports);
		ASSERT(out[i] != port);
		ASSERT(switch_port_get(sw, out[i]));
		ASSERT(!(seen[out[i] / 8] & (1u << (out[i] % 8))));
		seen[out[i] / 8] |= (uint8_t)(1u << (out[i] % 8));
	}
	if (v == SWITCH_FORWARD && (f[0] & 1))
		ASSERT(nout == sw->nports - 1);         /* broadcast and multicast reach everyone */
	if (v == SWITCH_FORWARD && !(f[0] & 1)) {
		int owner = switch_port_by_mac(sw, f);

		/* Unicast: one port, or a flood; an adapter's address always its port. */
		ASSERT(nout == 1 || nout == sw->nports - 1);
		if (owner >= 0)
			ASSERT(nout == 1 && out[0] == owner);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint16_t out[SWITCH_MAX_PORTS];
	struct switch_core *sw;
	struct switch_cfg cfg;
	struct shadow sh = { { 0 } };
	uint64_t now = 0;
	size_t pos = 3;

	if (size < 3)
		return 0;
	cfg = (struct switch_cfg){
		.max_ports = 1 + data[0] % 8, .fdb_max = 1 + data[1] % 16,
		.aging = 1 + data[2] % 8, .frame_max = 14 + data[2], .seed = data[0] * 0x9e3779b9ULL,
	};
	ASSERT(switch_create(&sw, &cfg) == 0);
	while (pos < size) {
		uint8_t op = data[pos++];

		if (op == 0 && pos + 2 <= size) {
			struct switch_port_cfg pc = { .name = "fuzz", .uplink = data[pos] & 1,
						      .spoofing = data[pos] & 2 };
			unsigned int before = sw->nports;
			int r, holder;

			mac_of(data[pos + 1], pc.mac);
			pos += 2;
			holder = switch_port_holding(sw, pc.mac);
			r = switch_port_add(sw, &pc);
			if (!pc.uplink && (pc.mac[0] & 1))
				ASSERT(r < 0);
			/* An adapter never takes an address pinned or learned elsewhere. */
			if (!pc.uplink && holder >= 0)
				ASSERT(r == -EADDRINUSE && switch_port_holding(sw, pc.mac) == holder);
			ASSERT(r < 0 ? sw->nports == before : sw->nports == before + 1);
			if (r >= 0) {
				ASSERT((unsigned int)r < sw->cfg.max_ports);
				sh.rx[r] = 0;
			}
		} else if (op == 1 && pos < size) {
			unsigned int p = data[pos++] % 10;

			switch_port_remove(sw, p);
			ASSERT(!switch_port_get(sw, p));
		} else if (op == 2 && pos < size) {
			now += data[pos++];
		} else if (op == 3) {
			switch_age(sw, now);
			for (uint32_t c = 0;;) {
				struct switch_fdb_entry e;

				if (!switch_fdb_next(sw, &c, &e))
					break;
				ASSERT(e.is_static || now - e.seen < sw->cfg.aging);
			}
		} else if (op >= 4 && pos + 3 <= size) {
			unsigned int port = data[pos] % 10, nout = 0;
			int owner;
			size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
			const struct switch_port *p;
			struct switch_port before = { 0 };
			enum switch_verdict v;
			uint8_t *f;

			pos += 3;
			len = len < size - pos ? len : size - pos;
			/* A heap copy of exactly len bytes: reading past it is caught. */
			f = malloc(len ? len : 1);
			ASSERT(f);
			memcpy(f, data + pos, len);
			pos += len;
			p = switch_port_get(sw, port);
			if (p)
				before = *p;
			owner = len >= 12 ? switch_port_by_mac(sw, f + 6) : -1;
			v = switch_input(sw, port, f, len, now, out, &nout);
			check_frame(sw, port, f, len, v, out, nout, p != NULL, &before, owner);
			if (p) {
				ASSERT(p->st.rx_frames == ++sh.rx[port]);
				for (unsigned int i = 0; i < nout; i++)
					switch_tx_done(sw, out[i], len, (i & 1) == 0);
			}
			free(f);
		} else {
			break;
		}
		check_table(sw, now);
	}
	switch_destroy(sw);
	return 0;
}

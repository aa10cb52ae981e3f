/* The switch's forwarding core: where a frame goes, and whether it may go at
 * all. Pure: frames, port numbers and time come in as arguments, so every
 * decision is testable and fuzzable without sockets. */
#include "net/switch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWITCH_FDB_LIMIT (1u << 20)

static bool mac_is_multicast(const uint8_t *mac)
{
	return mac[0] & 1;
}

static bool mac_is_zero(const uint8_t *mac)
{
	static const uint8_t zero[SWITCH_ETH_ALEN];

	return !memcmp(mac, zero, SWITCH_ETH_ALEN);
}

/* A keyed mix of the address: a guest that may send any source address must
 * not be able to pick addresses that all land in one probe run. */
static uint32_t fdb_hash(const struct switch_core *sw, const uint8_t *mac)
{
	uint64_t k = 0;

	memcpy(&k, mac, SWITCH_ETH_ALEN);
	k ^= sw->cfg.seed;
	k *= 0x9e3779b97f4a7c15ULL;
	k ^= k >> 29;
	k *= 0xbf58476d1ce4e5b9ULL;
	k ^= k >> 32;
	k += sw->cfg.seed >> 17;
	k *= 0x94d049bb133111ebULL;
	k ^= k >> 31;
	return (uint32_t)k & sw->fdb_mask;
}

static struct switch_fdb_entry *fdb_find(const struct switch_core *sw, const uint8_t *mac)
{
	for (uint32_t i = fdb_hash(sw, mac);; i = (i + 1) & sw->fdb_mask) {
		struct switch_fdb_entry *e = &sw->fdb[i];

		if (!e->used)
			return NULL;
		if (!memcmp(e->mac, mac, SWITCH_ETH_ALEN))
			return e;
	}
}

/* The table never fills (it has twice the slots entries may take), so a
 * probe always ends at a free slot. */
static struct switch_fdb_entry *fdb_insert(struct switch_core *sw, const uint8_t *mac)
{
	uint32_t i = fdb_hash(sw, mac);

	while (sw->fdb[i].used)
		i = (i + 1) & sw->fdb_mask;
	memset(&sw->fdb[i], 0, sizeof(sw->fdb[i]));
	memcpy(sw->fdb[i].mac, mac, SWITCH_ETH_ALEN);
	sw->fdb[i].used = true;
	return &sw->fdb[i];
}

/* Deletes slot i, shifting later members of its probe run back so that no
 * lookup stops early at the hole. */
static void fdb_delete_at(struct switch_core *sw, uint32_t i)
{
	struct switch_fdb_entry *e = &sw->fdb[i];

	if (e->is_static) {
		sw->fdb_static--;
	} else {
		sw->fdb_dynamic--;
		if (e->port < sw->cfg.max_ports && sw->ports[e->port].learned)
			sw->ports[e->port].learned--;
	}
	for (uint32_t j = i;;) {
		uint32_t k;

		j = (j + 1) & sw->fdb_mask;
		if (!sw->fdb[j].used)
			break;
		k = fdb_hash(sw, sw->fdb[j].mac);
		/* The entry at j may fill the hole at i unless its home slot k lies
		 * cyclically in (i, j]. */
		if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
			sw->fdb[i] = sw->fdb[j];
			i = j;
		}
	}
	memset(&sw->fdb[i], 0, sizeof(sw->fdb[i]));
}

static bool fdb_expired(const struct switch_core *sw, const struct switch_fdb_entry *e, uint64_t now)
{
	return !e->is_static && now >= e->seen && now - e->seen >= sw->cfg.aging;
}

int switch_create(struct switch_core **out, const struct switch_cfg *cfg)
{
	struct switch_core *sw;
	uint64_t slots = 16;

	*out = NULL;
	sw = calloc(1, sizeof(*sw));
	if (!sw)
		return -ENOMEM;
	sw->cfg = *cfg;
	if (!sw->cfg.max_ports)
		sw->cfg.max_ports = SWITCH_DEFAULT_PORTS;
	if (!sw->cfg.fdb_max)
		sw->cfg.fdb_max = SWITCH_DEFAULT_FDB;
	if (!sw->cfg.port_fdb_max)
		sw->cfg.port_fdb_max = MIN(SWITCH_DEFAULT_PORT_FDB, sw->cfg.fdb_max);
	if (!sw->cfg.aging)
		sw->cfg.aging = SWITCH_DEFAULT_AGING;
	if (!sw->cfg.frame_max)
		sw->cfg.frame_max = SWITCH_DEFAULT_FRAME_MAX;
	if (sw->cfg.max_ports > SWITCH_MAX_PORTS || sw->cfg.fdb_max > SWITCH_FDB_LIMIT ||
	    sw->cfg.port_fdb_max > SWITCH_FDB_LIMIT ||
	    sw->cfg.frame_max < SWITCH_ETH_HLEN || sw->cfg.frame_max > SWITCH_FRAME_LIMIT) {
		free(sw);
		return -EINVAL;
	}
	while (slots < 2 * ((uint64_t)sw->cfg.fdb_max + sw->cfg.max_ports))
		slots <<= 1;
	sw->fdb_mask = (uint32_t)(slots - 1);
	sw->fdb = calloc(slots, sizeof(*sw->fdb));
	sw->ports = calloc(sw->cfg.max_ports, sizeof(*sw->ports));
	if (!sw->fdb || !sw->ports) {
		switch_destroy(sw);
		return -ENOMEM;
	}
	*out = sw;
	return 0;
}

void switch_destroy(struct switch_core *sw)
{
	if (!sw)
		return;
	free(sw->fdb);
	free(sw->ports);
	free(sw);
}

int switch_port_add(struct switch_core *sw, const struct switch_port_cfg *pc)
{
	struct switch_fdb_entry *e = NULL;
	struct switch_port *p;
	unsigned int i;

	if (!pc->uplink) {
		if (mac_is_multicast(pc->mac) || mac_is_zero(pc->mac))
			return -EINVAL;
		/* Pinned to another adapter, or learned from a station on
		 * another port: either way someone else's address. A stale
		 * learned entry is gone once the table ages. */
		e = fdb_find(sw, pc->mac);
		if (e)
			return -EADDRINUSE;
	}
	for (i = 0; i < sw->cfg.max_ports && sw->ports[i].used; i++)
		;
	if (i == sw->cfg.max_ports)
		return -ENOSPC;
	p = &sw->ports[i];
	memset(p, 0, sizeof(*p));
	p->used = true;
	p->uplink = pc->uplink;
	p->spoofing = pc->spoofing && !pc->uplink;
	if (!pc->uplink)
		memcpy(p->mac, pc->mac, SWITCH_ETH_ALEN);
	snprintf(p->name, sizeof(p->name), "%s", pc->name ? pc->name : "");
	for (char *c = p->name; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	sw->nports++;
	if (!pc->uplink) {
		e = fdb_insert(sw, pc->mac);
		e->is_static = true;
		e->port = (uint16_t)i;
		sw->fdb_static++;
	}
	return (int)i;
}

void switch_port_remove(struct switch_core *sw, unsigned int port)
{
	uint32_t i = 0;

	if (port >= sw->cfg.max_ports || !sw->ports[port].used)
		return;
	/* A deletion may move an unvisited entry into slot i: look at i again. */
	while (i <= sw->fdb_mask) {
		if (sw->fdb[i].used && sw->fdb[i].port == port)
			fdb_delete_at(sw, i);
		else
			i++;
	}
	memset(&sw->ports[port], 0, sizeof(sw->ports[port]));
	sw->nports--;
}

const struct switch_port *switch_port_get(const struct switch_core *sw, unsigned int port)
{
	if (port >= sw->cfg.max_ports || !sw->ports[port].used)
		return NULL;
	return &sw->ports[port];
}

int switch_port_by_mac(const struct switch_core *sw, const uint8_t mac[SWITCH_ETH_ALEN])
{
	const struct switch_fdb_entry *e = fdb_find(sw, mac);

	return e && e->is_static ? e->port : -1;
}

int switch_port_holding(const struct switch_core *sw, const uint8_t mac[SWITCH_ETH_ALEN])
{
	const struct switch_fdb_entry *e = fdb_find(sw, mac);

	return e ? e->port : -1;
}

void switch_age(struct switch_core *sw, uint64_t now)
{
	uint32_t i = 0;

	while (i <= sw->fdb_mask) {
		if (sw->fdb[i].used && fdb_expired(sw, &sw->fdb[i], now))
			fdb_delete_at(sw, i);
		else
			i++;
	}
}

int switch_lookup(struct switch_core *sw, const uint8_t mac[SWITCH_ETH_ALEN], uint64_t now)
{
	struct switch_fdb_entry *e = fdb_find(sw, mac);

	if (!e)
		return -1;
	if (fdb_expired(sw, e, now)) {
		fdb_delete_at(sw, (uint32_t)(e - sw->fdb));
		return -1;
	}
	return e->port;
}

bool switch_fdb_next(const struct switch_core *sw, uint32_t *cursor, struct switch_fdb_entry *e)
{
	while (*cursor <= sw->fdb_mask) {
		const struct switch_fdb_entry *x = &sw->fdb[(*cursor)++];

		if (x->used) {
			*e = *x;
			return true;
		}
	}
	return false;
}

/* Whether the port may take one more learned address: an adapter's port
 * holds at most port_fdb_max, so that one guest sending from many sources
 * cannot fill the table for all. The uplink stands for a whole network. */
static bool switch_port_may_learn(struct switch_core *sw, struct switch_port *p)
{
	if (p->uplink || p->learned < sw->cfg.port_fdb_max)
		return true;
	p->st.learn_refused++;
	return false;
}

/* Only frames that passed the port's source check get here, so an address
 * is only ever learned, or moved, on a port that may send it. */
static void switch_learn(struct switch_core *sw, unsigned int port, const uint8_t *src, uint64_t now)
{
	struct switch_fdb_entry *e = fdb_find(sw, src);

	if (e) {
		/* An adapter's own address stays on its port, whoever else sends it. */
		if (e->is_static)
			return;
		if (e->port != port) {
			if (!switch_port_may_learn(sw, &sw->ports[port]))
				return;
			if (sw->ports[e->port].learned)
				sw->ports[e->port].learned--;
			sw->ports[port].learned++;
			e->port = (uint16_t)port;
			sw->st.moves++;
		}
		e->seen = now;
		return;
	}
	if (sw->fdb_dynamic >= sw->cfg.fdb_max) {
		/* Full: make room from expired entries, at most one sweep per tick
		 * so that a flood of new sources costs no more than that. */
		if (!sw->swept || sw->last_full_sweep != now) {
			sw->swept = true;
			sw->last_full_sweep = now;
			switch_age(sw, now);
		}
		if (sw->fdb_dynamic >= sw->cfg.fdb_max) {
			sw->st.fdb_full++;
			return;
		}
	}
	if (!switch_port_may_learn(sw, &sw->ports[port]))
		return;
	e = fdb_insert(sw, src);
	e->port = (uint16_t)port;
	e->seen = now;
	sw->fdb_dynamic++;
	sw->ports[port].learned++;
}

static void switch_flood(const struct switch_core *sw, unsigned int port, uint16_t *out,
			 unsigned int *nout)
{
	for (unsigned int i = 0; i < sw->cfg.max_ports; i++)
		if (sw->ports[i].used && i != port)
			out[(*nout)++] = (uint16_t)i;
}

void switch_refuse_offload(struct switch_core *sw, unsigned int port, size_t len)
{
	struct switch_port *p;

	if (port >= sw->cfg.max_ports || !sw->ports[port].used)
		return;
	p = &sw->ports[port];
	p->st.rx_frames++;
	p->st.rx_bytes += len;
	p->st.dropped_offload++;
	p->st.dropped_other++;
	sw->st.dropped_other++;
}

enum switch_verdict switch_input(struct switch_core *sw, unsigned int port, const uint8_t *frame,
				 size_t len, uint64_t now, uint16_t *out, unsigned int *nout)
{
	return switch_input_offloaded(sw, port, frame, len, 0, now, out, nout);
}

/* wire_len 0: a plain frame, on the wire as it is. */
enum switch_verdict switch_input_offloaded(struct switch_core *sw, unsigned int port, const uint8_t *frame,
					   size_t len, size_t wire_len, uint64_t now, uint16_t *out,
					   unsigned int *nout)
{
	struct switch_port *p;
	const uint8_t *dst, *src;
	int to;

	*nout = 0;
	if (port >= sw->cfg.max_ports || !sw->ports[port].used)
		return SWITCH_DROP_NO_PORT;
	p = &sw->ports[port];
	p->st.rx_frames++;
	p->st.rx_bytes += len;
	if (wire_len)
		p->st.rx_offloaded++;
	else
		wire_len = len;
	if (len < SWITCH_ETH_HLEN) {
		p->st.dropped_other++;
		sw->st.dropped_other++;
		return SWITCH_DROP_RUNT;
	}
	if (wire_len > sw->cfg.frame_max) {
		p->st.dropped_other++;
		sw->st.dropped_other++;
		return SWITCH_DROP_OVERSIZE;
	}
	dst = frame;
	src = frame + SWITCH_ETH_ALEN;
	if (!p->uplink && !p->spoofing && memcmp(src, p->mac, SWITCH_ETH_ALEN)) {
		p->st.dropped_spoof++;
		sw->st.dropped_spoof++;
		return SWITCH_DROP_SPOOF;
	}
	if (mac_is_multicast(src) || mac_is_zero(src)) {
		p->st.dropped_other++;
		sw->st.dropped_other++;
		return SWITCH_DROP_BAD_SOURCE;
	}
	if (p->spoofing) {
		/* Spoofing lets a guest carry other stations, not pose as
		 * another adapter on this switch. */
		int owner = switch_port_by_mac(sw, src);

		if (owner >= 0 && (unsigned int)owner != port) {
			p->st.dropped_spoof++;
			sw->st.dropped_spoof++;
			return SWITCH_DROP_SPOOF;
		}
	}
	switch_learn(sw, port, src, now);

	if (mac_is_multicast(dst)) {
		switch_flood(sw, port, out, nout);
		return SWITCH_FORWARD;
	}
	to = switch_lookup(sw, dst, now);
	if (to < 0) {
		switch_flood(sw, port, out, nout);
		return SWITCH_FORWARD;
	}
	if ((unsigned int)to == port)
		return SWITCH_FILTERED;
	out[(*nout)++] = (uint16_t)to;
	return SWITCH_FORWARD;
}

void switch_tx_done(struct switch_core *sw, unsigned int port, size_t len, bool ok)
{
	struct switch_port *p;

	if (port >= sw->cfg.max_ports || !sw->ports[port].used)
		return;
	p = &sw->ports[port];
	if (ok) {
		p->st.tx_frames++;
		p->st.tx_bytes += len;
	} else {
		p->st.tx_dropped++;
	}
}

const char *switch_verdict_name(enum switch_verdict v)
{
	switch (v) {
	case SWITCH_FORWARD: return "forward";
	case SWITCH_FILTERED: return "filtered";
	case SWITCH_DROP_SPOOF: return "dropped: source MAC is not the port's own (spoofing off) or is another adapter's";
	case SWITCH_DROP_RUNT: return "dropped: shorter than an Ethernet header";
	case SWITCH_DROP_OVERSIZE: return "dropped: longer than the switch's largest frame";
	case SWITCH_DROP_BAD_SOURCE: return "dropped: multicast or zero source MAC";
	case SWITCH_DROP_NO_PORT: return "dropped: no such port";
	}
	return "?";
}

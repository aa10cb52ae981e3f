/* Tier 1: the virtual switch's forwarding core as a pure function of ports,
 * frames and a logical clock: learning, flooding, unicast, the MAC-spoofing
 * guard and its counters, uplinks, aging, the table's bound, runts and
 * oversized frames; the address table against a reference model; and the
 * daemon's switch.conf parser and switch names. */
#include "harness.h"
#include "other_user.h"
#include "net/backend.h"
#include "net/switch.h"
#include "sandbox.h"
#include "store.h"
#include "vmconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* The tests below name their frame-sending helper send(): sockets use sendto. */
#define send switch_test_send

HARNESS_DEFINE;

static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t MCAST[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
static const uint8_t MAC_A[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t MAC_B[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x0b };
static const uint8_t MAC_S[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x05 };
static const uint8_t MAC_G[6] = { 0x52, 0x54, 0x00, 0x00, 0x01, 0x01 };     /* a nested guest */
static const uint8_t MAC_X[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x99 };     /* somewhere outside */

static struct switch_core *sw;
static uint16_t out[SWITCH_MAX_PORTS];
static unsigned int nout;
static uint8_t frame[SWITCH_FRAME_LIMIT + 1];

static void sw_new(unsigned int ports, unsigned int fdb, uint64_t aging, uint32_t frame_max)
{
	struct switch_cfg c = { .max_ports = ports, .fdb_max = fdb, .aging = aging,
				.frame_max = frame_max, .seed = 0x1234 };

	switch_destroy(sw);
	sw = NULL;
	CHECK_EQ(switch_create(&sw, &c), 0);
}

static int add(const char *name, const uint8_t *mac, bool uplink, bool spoofing)
{
	struct switch_port_cfg pc = { .name = name, .uplink = uplink, .spoofing = spoofing };

	if (mac)
		memcpy(pc.mac, mac, 6);
	return switch_port_add(sw, &pc);
}

static enum switch_verdict send_len(int port, const uint8_t *dst, const uint8_t *src, size_t len,
				    uint64_t now)
{
	memset(frame, 0x5a, len);
	if (len >= 12) {
		memcpy(frame, dst, 6);
		memcpy(frame + 6, src, 6);
	}
	return switch_input(sw, (unsigned int)port, frame, len, now, out, &nout);
}

static enum switch_verdict send(int port, const uint8_t *dst, const uint8_t *src, uint64_t now)
{
	return send_len(port, dst, src, 60, now);
}

static const struct switch_port_stats *stats(int port)
{
	const struct switch_port *p = switch_port_get(sw, (unsigned int)port);

	CHECK(p);
	return &p->st;
}

/* Ports A (0), B (1), S with spoofing (2), uplink U (3). */
static int A, B, S, U;

static void four_ports(void)
{
	sw_new(8, 64, 300, 0);
	A = add("vm-a/net0", MAC_A, false, false);
	B = add("vm-b/net0", MAC_B, false, false);
	S = add("nested-host/net0", MAC_S, false, true);
	U = add("uplink", NULL, true, false);
	CHECK_EQ(A, 0);
	CHECK_EQ(B, 1);
	CHECK_EQ(S, 2);
	CHECK_EQ(U, 3);
}

static void test_create_rejects_bad_limits(void)
{
	struct switch_cfg c = { .max_ports = SWITCH_MAX_PORTS + 1 };
	struct switch_core *x = (struct switch_core *)1;

	CHECK_EQ(switch_create(&x, &c), -EINVAL);
	CHECK(!x);
	c = (struct switch_cfg){ .frame_max = 13 };
	CHECK_EQ(switch_create(&x, &c), -EINVAL);
	c = (struct switch_cfg){ .frame_max = SWITCH_FRAME_LIMIT + 1 };
	CHECK_EQ(switch_create(&x, &c), -EINVAL);
	c = (struct switch_cfg){ 0 };
	CHECK_EQ(switch_create(&x, &c), 0);
	CHECK_EQ(x->cfg.max_ports, SWITCH_DEFAULT_PORTS);
	CHECK_EQ(x->cfg.fdb_max, SWITCH_DEFAULT_FDB);
	CHECK_EQ(x->cfg.aging, SWITCH_DEFAULT_AGING);
	CHECK_EQ(x->cfg.frame_max, SWITCH_DEFAULT_FRAME_MAX);
	switch_destroy(x);
}

static void test_ports(void)
{
	static const uint8_t zero[6];

	sw_new(3, 16, 300, 0);
	CHECK_EQ(add("a", MAC_A, false, false), 0);
	CHECK_EQ(add("dup", MAC_A, false, true), -EADDRINUSE);
	CHECK_EQ(add("mc", MCAST, false, false), -EINVAL);
	CHECK_EQ(add("zero", zero, false, false), -EINVAL);
	CHECK_EQ(add("b", MAC_B, false, false), 1);
	CHECK_EQ(add("up\x01link", NULL, true, true), 2);          /* an uplink needs no MAC */
	CHECK_EQ(add("c", MAC_S, false, false), -ENOSPC);
	CHECK_STR(switch_port_get(sw, 2)->name, "up?link");
	CHECK(switch_port_get(sw, 2)->uplink);
	CHECK(!switch_port_get(sw, 2)->spoofing);
	CHECK_EQ(switch_port_by_mac(sw, MAC_A), 0);
	CHECK_EQ(switch_port_by_mac(sw, MAC_B), 1);
	CHECK_EQ(switch_port_by_mac(sw, MAC_S), -1);
	CHECK(!switch_port_get(sw, 3));
	CHECK_EQ(sw->nports, 3);
	/* A freed number is reused; the address goes with its port. */
	switch_port_remove(sw, 0);
	CHECK(!switch_port_get(sw, 0));
	CHECK_EQ(switch_port_by_mac(sw, MAC_A), -1);
	CHECK_EQ(add("a2", MAC_A, false, false), 0);
	switch_port_remove(sw, 77);                                 /* ignored */
	CHECK_EQ(sw->nports, 3);
}

static void test_unicast_to_adapter_needs_no_learning(void)
{
	four_ports();
	/* An adapter's own address is known from its hello: no flood. */
	CHECK_EQ(send(A, MAC_B, MAC_A, 1), SWITCH_FORWARD);
	CHECK_EQ(nout, 1);
	CHECK_EQ(out[0], B);
	CHECK_EQ(send(B, MAC_A, MAC_B, 1), SWITCH_FORWARD);
	CHECK_EQ(nout, 1);
	CHECK_EQ(out[0], A);
	CHECK_EQ(stats(A)->rx_frames, 1);
	CHECK_EQ(stats(A)->rx_bytes, 60);
	/* tx is what the caller delivered. */
	CHECK_EQ(stats(B)->tx_frames, 0);
	switch_tx_done(sw, (unsigned int)B, 60, true);
	switch_tx_done(sw, (unsigned int)B, 60, false);
	CHECK_EQ(stats(B)->tx_frames, 1);
	CHECK_EQ(stats(B)->tx_bytes, 60);
	CHECK_EQ(stats(B)->tx_dropped, 1);
}

static void test_broadcast_and_multicast_flood(void)
{
	four_ports();
	CHECK_EQ(send(A, BCAST, MAC_A, 1), SWITCH_FORWARD);
	CHECK_EQ(nout, 3);
	CHECK_EQ(out[0], B);
	CHECK_EQ(out[1], S);
	CHECK_EQ(out[2], U);
	CHECK_EQ(send(U, MCAST, MAC_X, 1), SWITCH_FORWARD);
	CHECK_EQ(nout, 3);
	CHECK_EQ(out[0], A);
	CHECK_EQ(out[1], B);
	CHECK_EQ(out[2], S);
	/* Alone on the switch: nowhere to go, and no error. */
	sw_new(4, 16, 300, 0);
	A = add("a", MAC_A, false, false);
	CHECK_EQ(send(A, BCAST, MAC_A, 1), SWITCH_FORWARD);
	CHECK_EQ(nout, 0);
}

static void test_learning_and_unknown_unicast(void)
{
	four_ports();
	/* X is unknown: flooded, and nothing is learned from the destination. */
	CHECK_EQ(send(A, MAC_X, MAC_A, 1), SWITCH_FORWARD);
	CHECK_EQ(nout, 3);
	CHECK_EQ(switch_lookup(sw, MAC_X, 1), -1);
	/* X answers through the uplink: learned there... */
	CHECK_EQ(send(U, MAC_A, MAC_X, 2), SWITCH_FORWARD);
	CHECK_EQ(nout, 1);
	CHECK_EQ(out[0], A);
	CHECK_EQ(switch_lookup(sw, MAC_X, 2), U);
	CHECK_EQ(switch_port_get(sw, (unsigned int)U)->learned, 1);
	/* ...so frames for X go to the uplink alone. */
	CHECK_EQ(send(B, MAC_X, MAC_B, 3), SWITCH_FORWARD);
	CHECK_EQ(nout, 1);
	CHECK_EQ(out[0], U);
	/* A frame for a station on the port it came from goes nowhere. */
	CHECK_EQ(send(U, MAC_X, MAC_G, 3), SWITCH_FILTERED);
	CHECK_EQ(nout, 0);
	CHECK_EQ(stats(U)->dropped_other, 0);
	/* The table lists adapters (static) and what was learned. */
	{
		struct switch_fdb_entry e;
		uint32_t cur = 0;
		unsigned int stat = 0, dyn = 0;

		while (switch_fdb_next(sw, &cur, &e)) {
			if (e.is_static)
				stat++;
			else
				dyn++;
		}
		CHECK_EQ(stat, 3);
		CHECK_EQ(dyn, 2);     /* X and G, both behind the uplink */
	}
}

static void test_spoofed_frames_dropped_and_counted(void)
{
	four_ports();
	CHECK_EQ(send(A, MAC_B, MAC_G, 1), SWITCH_DROP_SPOOF);
	CHECK_EQ(nout, 0);
	CHECK_EQ(send(A, BCAST, MAC_X, 1), SWITCH_DROP_SPOOF);
	/* Even another adapter's address, or a multicast one. */
	CHECK_EQ(send(A, MAC_B, MAC_B, 1), SWITCH_DROP_SPOOF);
	CHECK_EQ(send(A, MAC_B, MCAST, 1), SWITCH_DROP_SPOOF);
	CHECK_EQ(stats(A)->rx_frames, 4);
	CHECK_EQ(stats(A)->dropped_spoof, 4);
	CHECK_EQ(stats(A)->dropped_other, 0);
	/* Nothing was learned from them. */
	CHECK_EQ(switch_lookup(sw, MAC_G, 1), -1);
	CHECK_EQ(switch_lookup(sw, MAC_X, 1), -1);
	CHECK_EQ(switch_lookup(sw, MAC_B, 1), B);
	/* Its own address still passes. */
	CHECK_EQ(send(A, MAC_B, MAC_A, 1), SWITCH_FORWARD);
	CHECK_EQ(stats(A)->dropped_spoof, 4);
	CHECK_EQ(stats(B)->dropped_spoof, 0);
	CHECK(strstr(switch_verdict_name(SWITCH_DROP_SPOOF), "spoofing off"));
	/* The switch-wide count outlives the port that sent them. */
	CHECK_EQ(sw->st.dropped_spoof, 4);
	switch_port_remove(sw, A);
	CHECK_EQ(sw->st.dropped_spoof, 4);
}

static void test_spoofing_allowed_carries_nested_guests(void)
{
	four_ports();
	/* The nested host's adapter forwards its nested guest G. */
	CHECK_EQ(send(S, BCAST, MAC_G, 1), SWITCH_FORWARD);
	CHECK_EQ(nout, 3);
	CHECK_EQ(switch_lookup(sw, MAC_G, 1), S);
	CHECK_EQ(send(A, MAC_G, MAC_A, 2), SWITCH_FORWARD);
	CHECK_EQ(nout, 1);
	CHECK_EQ(out[0], S);
	CHECK_EQ(stats(S)->dropped_spoof, 0);
	/* Its own address too. */
	CHECK_EQ(send(S, MAC_A, MAC_S, 2), SWITCH_FORWARD);
	CHECK_EQ(out[0], A);
	/* But never a multicast or zero source. */
	{
		static const uint8_t zero[6];

		CHECK_EQ(send(S, MAC_A, MCAST, 2), SWITCH_DROP_BAD_SOURCE);
		CHECK_EQ(send(S, MAC_A, zero, 2), SWITCH_DROP_BAD_SOURCE);
		CHECK_EQ(stats(S)->dropped_other, 2);
	}
}

static void test_adapter_address_never_moves(void)
{
	four_ports();
	/* A port that may send any source still may not pose as another
	 * adapter; the uplink's frames go on, but the address stays put... */
	CHECK_EQ(send(S, MAC_B, MAC_A, 1), SWITCH_DROP_SPOOF);
	CHECK_EQ(stats(S)->dropped_spoof, 1);
	CHECK_EQ(send(U, MAC_A, MAC_B, 1), SWITCH_FORWARD);
	/* ...so frames for them still reach the adapters. */
	CHECK_EQ(switch_lookup(sw, MAC_A, 1), A);
	CHECK_EQ(switch_lookup(sw, MAC_B, 1), B);
	CHECK_EQ(send(U, MAC_A, MAC_X, 2), SWITCH_FORWARD);
	CHECK_EQ(nout, 1);
	CHECK_EQ(out[0], A);
	CHECK_EQ(sw->st.moves, 0);
	/* A learned address does move, to where it was last seen. */
	CHECK_EQ(send(S, BCAST, MAC_G, 3), SWITCH_FORWARD);
	CHECK_EQ(switch_lookup(sw, MAC_G, 3), S);
	CHECK_EQ(send(U, BCAST, MAC_G, 4), SWITCH_FORWARD);
	CHECK_EQ(switch_lookup(sw, MAC_G, 4), U);
	CHECK_EQ(sw->st.moves, 1);
	CHECK_EQ(switch_port_get(sw, (unsigned int)S)->learned, 0);
	CHECK_EQ(switch_port_get(sw, (unsigned int)U)->learned, 2);
}

/* An address learned on one port is that station's: an adapter without
 * spoofing never takes it, by sending it or by arriving with it. */
static void test_learned_address_not_taken_without_spoofing(void)
{
	four_ports();
	CHECK_EQ(send(U, BCAST, MAC_X, 5), SWITCH_FORWARD);
	CHECK_EQ(switch_lookup(sw, MAC_X, 5), U);
	CHECK_EQ(send(S, BCAST, MAC_G, 5), SWITCH_FORWARD);
	CHECK_EQ(switch_lookup(sw, MAC_G, 5), S);
	/* Sending it: dropped, and the table unchanged. */
	CHECK_EQ(send(A, BCAST, MAC_X, 6), SWITCH_DROP_SPOOF);
	CHECK_EQ(send(B, BCAST, MAC_G, 6), SWITCH_DROP_SPOOF);
	CHECK_EQ(switch_lookup(sw, MAC_X, 6), U);
	CHECK_EQ(switch_lookup(sw, MAC_G, 6), S);
	CHECK_EQ(sw->st.moves, 0);
	/* Arriving with it as its own address: refused while it is learned. */
	CHECK_EQ(add("x", MAC_X, false, false), -EADDRINUSE);
	CHECK_EQ(add("g", MAC_G, false, true), -EADDRINUSE);
	CHECK_EQ(switch_port_holding(sw, MAC_X), U);
	CHECK_EQ(switch_lookup(sw, MAC_X, 6), U);
	CHECK_EQ(send(A, MAC_X, MAC_A, 6), SWITCH_FORWARD);
	CHECK_EQ(nout, 1);
	CHECK_EQ(out[0], U);
	/* Once the station is gone from the table, the address is free. */
	switch_age(sw, 1000);
	{
		int x = add("x", MAC_X, false, false);

		CHECK(x >= 0);
		CHECK_EQ(switch_lookup(sw, MAC_X, 1000), x);
	}
}

/* One adapter sending from 10000 addresses learns at most its share and
 * leaves the table's room to the others; its frames still go. */
static void test_port_learning_limit(void)
{
	struct switch_cfg c = { .max_ports = 8, .fdb_max = 4096, .port_fdb_max = 32, .aging = 300, .seed = 7 };
	uint8_t mac[6] = { 0x02, 0xbb, 0, 0, 0, 0 };

	switch_destroy(sw);
	sw = NULL;
	CHECK_EQ(switch_create(&sw, &c), 0);
	A = add("a", MAC_A, false, false);
	S = add("s", MAC_S, false, true);
	U = add("u", NULL, true, false);
	for (int i = 0; i < 10000; i++) {
		mac[3] = (uint8_t)(i >> 16);
		mac[4] = (uint8_t)(i >> 8);
		mac[5] = (uint8_t)i;
		CHECK_EQ(send(S, MAC_A, mac, 1), SWITCH_FORWARD);
		CHECK_EQ(nout, 1);
	}
	CHECK_EQ(switch_port_get(sw, (unsigned int)S)->learned, 32);
	CHECK_EQ(sw->fdb_dynamic, 32);
	CHECK_EQ(stats(S)->learn_refused, 10000 - 32);
	/* Nor can it grab past its limit by moving learned addresses over. */
	CHECK_EQ(send(U, BCAST, MAC_G, 1), SWITCH_FORWARD);
	CHECK_EQ(send(S, BCAST, MAC_G, 1), SWITCH_FORWARD);
	CHECK_EQ(switch_lookup(sw, MAC_G, 1), U);
	CHECK_EQ(switch_port_get(sw, (unsigned int)S)->learned, 32);
	/* The uplink is a network of stations: only the table bounds it. */
	for (int i = 0; i < 1000; i++) {
		mac[1] = 0xcc;
		mac[4] = (uint8_t)(i >> 8);
		mac[5] = (uint8_t)i;
		CHECK_EQ(send(U, BCAST, mac, 1), SWITCH_FORWARD);
	}
	CHECK_EQ(switch_port_get(sw, (unsigned int)U)->learned, 1001);
	/* The default share. */
	sw_new(8, 0, 0, 0);
	CHECK_EQ(sw->cfg.port_fdb_max, SWITCH_DEFAULT_PORT_FDB);
}

static void test_uplink_accepts_any_source(void)
{
	uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0 };

	four_ports();
	for (int i = 1; i <= 10; i++) {
		mac[5] = (uint8_t)i;
		CHECK_EQ(send(U, BCAST, mac, 1), SWITCH_FORWARD);
		CHECK_EQ(switch_lookup(sw, mac, 1), U);
	}
	CHECK_EQ(stats(U)->dropped_spoof, 0);
	CHECK_EQ(stats(U)->rx_frames, 10);
	CHECK_EQ(switch_port_get(sw, (unsigned int)U)->learned, 10);
	CHECK_EQ(send(U, BCAST, BCAST, 1), SWITCH_DROP_BAD_SOURCE);
	CHECK_EQ(stats(U)->dropped_other, 1);
	/* Removing the uplink forgets what was behind it. */
	switch_port_remove(sw, (unsigned int)U);
	CHECK_EQ(switch_lookup(sw, mac, 1), -1);
	CHECK_EQ(sw->fdb_dynamic, 0);
	CHECK_EQ(sw->fdb_static, 3);
	CHECK_EQ(send(A, mac, MAC_A, 1), SWITCH_FORWARD);
	CHECK_EQ(nout, 2);          /* flooded to B and S */
}

static void test_aging(void)
{
	four_ports();
	sw_new(8, 64, 100, 0);
	A = add("a", MAC_A, false, false);
	U = add("u", NULL, true, false);
	CHECK_EQ(send(U, BCAST, MAC_X, 1000), SWITCH_FORWARD);
	CHECK_EQ(switch_lookup(sw, MAC_X, 1099), U);
	/* Seen again at 1050: good until 1150. */
	CHECK_EQ(send(U, BCAST, MAC_X, 1050), SWITCH_FORWARD);
	CHECK_EQ(switch_lookup(sw, MAC_X, 1149), U);
	switch_age(sw, 1149);
	CHECK_EQ(sw->fdb_dynamic, 1);
	switch_age(sw, 1150);
	CHECK_EQ(sw->fdb_dynamic, 0);
	CHECK_EQ(switch_port_get(sw, (unsigned int)U)->learned, 0);
	CHECK_EQ(switch_lookup(sw, MAC_X, 1150), -1);
	/* Expired but not yet swept: a lookup does not use it. */
	CHECK_EQ(send(U, BCAST, MAC_X, 2000), SWITCH_FORWARD);
	CHECK_EQ(switch_lookup(sw, MAC_X, 2100), -1);
	CHECK_EQ(send(A, MAC_X, MAC_A, 2200), SWITCH_FORWARD);
	CHECK_EQ(nout, 1);          /* flooded: to the uplink, the only other port */
	/* Adapters' addresses never age. */
	switch_age(sw, 1000000);
	CHECK_EQ(switch_lookup(sw, MAC_A, 1000000), A);
}

static void test_table_bound(void)
{
	uint8_t mac[6] = { 0x02, 0xaa, 0, 0, 0, 0 };

	sw_new(4, 8, 10, 0);
	A = add("a", MAC_A, false, false);
	U = add("u", NULL, true, false);
	for (int i = 0; i < 20; i++) {
		mac[5] = (uint8_t)i;
		/* Still forwarded when it cannot be learned. */
		CHECK_EQ(send(U, MAC_A, mac, 5), SWITCH_FORWARD);
		CHECK_EQ(nout, 1);
	}
	CHECK_EQ(sw->fdb_dynamic, 8);
	CHECK_EQ(sw->st.fdb_full, 12);
	mac[5] = 7;
	CHECK_EQ(switch_lookup(sw, mac, 5), U);
	mac[5] = 8;
	CHECK_EQ(switch_lookup(sw, mac, 5), -1);
	/* Once the old ones expire, a full table makes room by itself. */
	CHECK_EQ(send(U, MAC_A, mac, 15), SWITCH_FORWARD);
	CHECK_EQ(switch_lookup(sw, mac, 15), U);
	CHECK_EQ(sw->fdb_dynamic, 1);
	/* The adapters' addresses do not count against the bound. */
	CHECK_EQ(sw->fdb_static, 1);
}

static void test_runt_and_oversized_frames(void)
{
	sw_new(4, 16, 300, 1518);
	A = add("a", MAC_A, false, false);
	B = add("b", MAC_B, false, false);
	CHECK_EQ(send_len(A, MAC_B, MAC_A, 13, 1), SWITCH_DROP_RUNT);
	CHECK_EQ(send_len(A, MAC_B, MAC_A, 0, 1), SWITCH_DROP_RUNT);
	CHECK_EQ(send_len(A, MAC_B, MAC_A, 1519, 1), SWITCH_DROP_OVERSIZE);
	CHECK_EQ(send_len(A, MAC_B, MAC_A, 65535, 1), SWITCH_DROP_OVERSIZE);
	CHECK_EQ(stats(A)->dropped_other, 4);
	CHECK_EQ(stats(A)->dropped_spoof, 0);
	CHECK_EQ(send_len(A, MAC_B, MAC_A, 14, 1), SWITCH_FORWARD);
	CHECK_EQ(send_len(A, MAC_B, MAC_A, 1518, 1), SWITCH_FORWARD);
	CHECK_EQ(nout, 1);
	CHECK_EQ(stats(A)->rx_frames, 6);
	CHECK_EQ(stats(A)->rx_bytes, 13 + 0 + 1519 + 65535 + 14 + 1518);
	/* No such port: nothing counted anywhere. */
	CHECK_EQ(send(3, MAC_B, MAC_A, 1), SWITCH_DROP_NO_PORT);
	CHECK_EQ(send(9999, MAC_B, MAC_A, 1), SWITCH_DROP_NO_PORT);
	CHECK_EQ(nout, 0);
}

/* The open-addressing table (with its backward-shift deletion) against a
 * plain list, through random learning, moves, aging and port removals. */
static void test_table_against_model(void)
{
	struct { uint8_t mac[6]; int port; uint64_t seen; bool used; } model[64] = { 0 };
	int ports[4];
	uint64_t now = 1;
	unsigned int seed = 12345;

	sw_new(4, 48, 50, 0);
	for (int i = 0; i < 4; i++)
		ports[i] = add("u", NULL, true, false);
	for (int step = 0; step < 20000; step++) {
		unsigned int op = (unsigned int)rand_r(&seed) % 100, m = (unsigned int)rand_r(&seed) % 64;
		int p = (int)((unsigned int)rand_r(&seed) % 4);
		uint8_t mac[6] = { 0x02, 0, 0, 0, 0, (uint8_t)m };

		if (op < 70) {
			uint64_t full = sw->st.fdb_full;

			CHECK_EQ(send(ports[p], BCAST, mac, now), SWITCH_FORWARD);
			if (switch_lookup(sw, mac, now) == ports[p]) {
				memcpy(model[m].mac, mac, 6);
				model[m].port = ports[p];
				model[m].seen = now;
				model[m].used = true;
			} else {
				/* Only a new address may go unlearned, and only when full. */
				CHECK(!model[m].used || now - model[m].seen >= 50);
				CHECK_EQ(sw->st.fdb_full, full + 1);
				CHECK_EQ(sw->fdb_dynamic, 48);
				model[m].used = false;
			}
		} else if (op < 85) {
			now += (uint64_t)(rand_r(&seed) % 20);
		} else if (op < 90) {
			switch_age(sw, now);
		} else if (op < 92) {
			switch_port_remove(sw, (unsigned int)ports[p]);
			for (int i = 0; i < 64; i++)
				if (model[i].port == ports[p])
					model[i].used = false;
			ports[p] = add("u", NULL, true, false);
			CHECK(ports[p] >= 0);
		}
		/* Every address the model knows is found, every other is not. */
		for (int i = 0; i < 64; i++) {
			uint8_t q[6] = { 0x02, 0, 0, 0, 0, (uint8_t)i };
			int want = model[i].used && now - model[i].seen < 50 ? model[i].port : -1;

			if (switch_lookup(sw, q, now) != want)
				FAILF("step %d: address %d on port %d, want %d", step, i,
				      switch_lookup(sw, q, now), want);
		}
		CHECK(sw->fdb_dynamic <= 48);
	}
}

static void test_config_parse(void)
{
	static const char good[] =
		"# comment\n"
		"uplink-tap = tap0\n"
		"  max-ports=16 \n"
		"\n"
		"max-addresses = 100\naging = 60\nframe-max = 1518\n"
		"max-port-addresses = 10\nunlisted-spoofing = off\n";
	static const struct { const char *text; const char *msg; } bad[] = {
		{ "uplink-tap = a/b\n", "not an interface name" },
		{ "uplink-tap = averyveryverylongname\n", "not an interface name" },
		{ "max-ports = 0\n", "max-ports must be" },
		{ "max-ports = 100000\n", "max-ports must be" },
		{ "frame-max = 10\n", "frame-max must be" },
		{ "colour = blue\n", "unknown key" },
		{ "just words\n", "expected 'key = value'" },
		{ "uplink-tap = t0\nuplink-if = eth0\n", "one uplink" },
		{ "max-port-addresses = 0\n", "max-port-addresses must be" },
		{ "unlisted-spoofing = maybe\n", "on or off" },
	};
	struct switchd_config c = { 0 };
	char err[256];

	CHECK_EQ(switchd_config_parse(good, strlen(good), &c, err, sizeof(err)), 0);
	CHECK_STR(c.uplink_tap, "tap0");
	CHECK_STR(c.uplink_if, "");
	CHECK_EQ(c.max_ports, 16);
	CHECK_EQ(c.fdb_max, 100);
	CHECK_EQ(c.aging_s, 60);
	CHECK_EQ(c.frame_max, 1518);
	CHECK_EQ(c.port_fdb_max, 10);
	CHECK(c.unlisted_spoofing_off);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&c, 0, sizeof(c));
		err[0] = '\0';
		if (switchd_config_parse(bad[i].text, strlen(bad[i].text), &c, err, sizeof(err)) != -EINVAL ||
		    !strstr(err, bad[i].msg))
			FAILF("'%s': got '%s', want '%s'", bad[i].text, err, bad[i].msg);
	}
	/* A NUL inside is refused, not read past. */
	CHECK_EQ(switchd_config_parse("aging = 5\0\n", 11, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "switch.conf:1"));
}

static void test_switch_names(void)
{
	static const char *const ok[] = { "lan", "LAN-2", "a.b_c", "x" };
	static const char *const no[] = { "", ".hidden", "-opt", "a/b", "a b", "..", "tab\t" };
	char why[256];
	char buf[256];

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		CHECK_EQ(switchd_name_check(ok[i], why, sizeof(why)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
		CHECK_EQ(switchd_name_check(no[i], why, sizeof(why)), -EINVAL);
		CHECK(strstr(why, "switch name"));
	}
	memset(buf, 'a', 65);
	buf[65] = '\0';
	CHECK_EQ(switchd_name_check(buf, why, sizeof(why)), -EINVAL);
	buf[64] = '\0';
	CHECK_EQ(switchd_name_check(buf, why, sizeof(why)), 0);
	CHECK_EQ(switchd_path("/srv/store/", "lan", "ports.sock", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "/srv/store/switches/lan/ports.sock");
	CHECK_EQ(switchd_path("/srv/store", "lan", NULL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "/srv/store/switches/lan");
	CHECK_EQ(switchd_path("/srv/store", "lan", "ports.sock", buf, 20), -ENAMETOOLONG);
}

/* ---- the daemon: who decides spoofing, who may connect ---- */

static char store[256];

static void stored_vm(const char *name, const char *sw_name, const uint8_t *mac, bool spoofing)
{
	static struct vmconfig c;
	char err[256], dir[400];

	vmconfig_init(&c, name);
	snprintf(c.kernel, sizeof(c.kernel), "/boot/vmlinuz");
	c.nnics = 1;
	snprintf(c.nics[0].sw, sizeof(c.nics[0].sw), "%s", sw_name);
	memcpy(c.nics[0].mac, mac, 6);
	c.nics[0].mac_spoofing = spoofing;
	snprintf(dir, sizeof(dir), "%s/%s", store, name);
	CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
	if (store_save(store, &c, err, sizeof(err)) < 0)
		FAILF("saving VM '%s': %s", name, err);
}

/* A stored VM "running": its run lock held, as its VMM holds it. */
static int vm_running(const char *name)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", store, name, STORE_RUN_LOCK);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
	return fd;
}

/* The adapter's hello only asks for spoofing: the stored VM's
 * configuration answers. */
static void test_spoofing_comes_from_the_vm_configuration(void)
{
	char why[200], root[300];
	int nester, plain;

	stored_vm("nester", "lan", MAC_S, true);
	stored_vm("plain", "lan", MAC_A, false);
	stored_vm("elsewhere", "wan", MAC_B, true);
	/* Not running: whoever sends its address is not its VMM. */
	CHECK(!switchd_spoofing_allowed(store, "lan", MAC_S, true, why, sizeof(why)));
	CHECK(strstr(why, "VM 'nester', whose adapter this is, is not running"));
	nester = vm_running("nester");
	plain = vm_running("plain");
	CHECK(switchd_spoofing_allowed(store, "lan", MAC_S, false, why, sizeof(why)));
	CHECK_STR(why, "VM 'nester' has it on");
	/* Asked for, but the VM's configuration has it off. */
	CHECK(!switchd_spoofing_allowed(store, "lan", MAC_A, true, why, sizeof(why)));
	CHECK(strstr(why, "VM 'plain' has it off (nestvm vm set plain --mac-spoofing on)"));
	/* B is a stored VM's on another switch only: unlisted here. */
	CHECK(switchd_spoofing_allowed(store, "lan", MAC_B, true, why, sizeof(why)));
	CHECK(strstr(why, "no stored VM's adapter"));
	CHECK(!switchd_spoofing_allowed(store, "lan", MAC_B, false, why, sizeof(why)));
	CHECK(strstr(why, "unlisted-spoofing = off"));
	CHECK(!switchd_spoofing_allowed(store, "lan", MAC_X, false, why, sizeof(why)));
	CHECK(!switchd_spoofing_allowed("", "lan", MAC_S, false, why, sizeof(why)));
	/* Two VMs with one address: any that says off wins. */
	stored_vm("copy", "lan", MAC_S, false);
	CHECK(!switchd_spoofing_allowed(store, "lan", MAC_S, true, why, sizeof(why)));
	CHECK(strstr(why, "VM 'copy' has it off"));
	close(nester);
	close(plain);
	/* The store of a switch's directory. */
	CHECK_EQ(switchd_store_of("/srv/st/switches/lan", root, sizeof(root)), 0);
	CHECK_STR(root, "/srv/st");
	CHECK_EQ(switchd_store_of("/srv/st/switches/lan/", root, sizeof(root)), 0);
	CHECK_STR(root, "/srv/st");
	CHECK_EQ(switchd_store_of("/srv/st/other/lan", root, sizeof(root)), -EINVAL);
}

static struct switchd_config dcfg;
static pid_t daemon_pid;
static bool daemon_no_seccomp;

static void daemon_start(const char *name, bool unlisted_off)
{
	char err[256], line[256], dir[400];
	int p[2];

	snprintf(dir, sizeof(dir), "%s/switches", store);
	CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
	memset(&dcfg, 0, sizeof(dcfg));
	snprintf(dcfg.name, sizeof(dcfg.name), "%s", name);
	snprintf(dcfg.dir, sizeof(dcfg.dir), "%s/switches/%s", store, name);
	CHECK(mkdir(dcfg.dir, 0700) == 0 || errno == EEXIST);
	dcfg.unlisted_spoofing_off = unlisted_off;
	dcfg.no_seccomp = daemon_no_seccomp;
	CHECK_EQ(switchd_config_save(&dcfg, err, sizeof(err)), 0);
	CHECK_EQ(pipe(p), 0);
	fflush(NULL);
	daemon_pid = fork();
	CHECK(daemon_pid >= 0);
	if (daemon_pid == 0) {
		close(p[0]);
		if (!getenv("SWITCH_TEST_LOG"))
			freopen("/dev/null", "w", stderr);
		_exit(switchd_run(&dcfg, p[1]) < 0 ? 1 : 0);
	}
	close(p[1]);
	CHECK(util_daemon_wait(p[0], line, sizeof(line), 5000) > 0);
	if (strncmp(line, "OK", 2))
		FAILF("switch daemon: %s", line);
}

static void daemon_stop(void)
{
	char err[256];

	if (daemon_pid <= 0)
		return;
	if (switchd_stop(dcfg.dir, true, 3000, err, sizeof(err)) < 0)
		kill(daemon_pid, SIGKILL);
	waitpid(daemon_pid, NULL, 0);
	daemon_pid = 0;
}

/* Connects as an adapter with a hello; the ack's status. */
static int hello(const uint8_t *mac, bool spoofing, int *fd_out)
{
	struct net_switch_hello h = { NET_SWITCH_MAGIC, NET_SWITCH_VERSION,
				      spoofing ? NET_SWITCH_F_SPOOFING : 0, { 0 }, { 0 }, "test" };
	struct net_switch_ack ack;
	struct pollfd p;
	char path[SWITCHD_PATH_MAX + 32];
	int fd;

	memcpy(h.mac, mac, 6);
	snprintf(path, sizeof(path), "%s/%s", dcfg.dir, SWITCHD_PORTS_SOCK);
	fd = util_unix_connect(path, SOCK_SEQPACKET);
	if (fd < 0)
		return fd;
	if (sendto(fd, &h, sizeof(h), MSG_NOSIGNAL, NULL, 0) != (ssize_t)sizeof(h)) {
		close(fd);
		return -EPIPE;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 3000) != 1 || recv(fd, &ack, sizeof(ack), 0) != (ssize_t)sizeof(ack)) {
		close(fd);
		return -EPROTO;         /* closed with no answer */
	}
	if (fd_out && ack.status == 0)
		*fd_out = fd;
	else
		close(fd);
	return ack.status;
}

/* What "switch show --json" says of the port with this name's MAC. */
static bool port_spoofing(const uint8_t *mac)
{
	char *reply = NULL, err[256], m[24], *at;
	bool on;

	if (switchd_request(dcfg.dir, "show json", &reply, err, sizeof(err)) < 0)
		FAILF("show: %s", err);
	vmconfig_fmt_mac(mac, m, sizeof(m));
	at = strstr(reply, m);
	if (!at || !strstr(at, "\"macSpoofing\":"))
		FAILF("no port with %s in %s", m, reply);
	at = strstr(at, "\"macSpoofing\":") + 14;
	at += strspn(at, " ");
	on = !strncmp(at, "true", 4);
	free(reply);
	return on;
}

static void test_daemon_takes_spoofing_from_the_store(void)
{
	int a = -1, s = -1, x = -1, run_nester, run_plain;
	char copy[300];

	snprintf(copy, sizeof(copy), "%s/copy", store);
	harness_remove_tree(copy);
	stored_vm("nester", "lan", MAC_S, true);
	stored_vm("plain", "lan", MAC_A, false);
	run_nester = vm_running("nester");
	run_plain = vm_running("plain");
	daemon_start("lan", true);
	/* A claims spoofing its VM does not have: connected, spoofing off. */
	CHECK_EQ(hello(MAC_A, true, &a), 0);
	CHECK(!port_spoofing(MAC_A));
	CHECK_EQ(hello(MAC_S, true, &s), 0);
	CHECK(port_spoofing(MAC_S));
	/* No stored VM's and the switch says unlisted-spoofing = off. */
	CHECK_EQ(hello(MAC_X, true, &x), 0);
	CHECK(!port_spoofing(MAC_X));
	close(a);
	close(s);
	close(x);
	daemon_stop();
	close(run_nester);
	close(run_plain);
}

struct dial {
	const char *path;
	int type;
};

/* As the other user: 1 for EACCES on connect, 2 for a connection closed
 * unanswered, 3 for an answer, 4 for anything else. */
static int other_dial(void *arg)
{
	const struct dial *d = arg;
	struct net_switch_hello h = { NET_SWITCH_MAGIC, NET_SWITCH_VERSION, 0, { 0x52, 0x54, 0, 0, 0, 0x77 },
				      { 0 }, "intruder" };
	struct pollfd p;
	char buf[256];
	ssize_t n;
	int fd = util_unix_connect(d->path, d->type);

	if (fd == -EACCES)
		return 1;
	if (fd < 0)
		return 4;
	if (d->type == SOCK_SEQPACKET)
		n = sendto(fd, &h, sizeof(h), MSG_NOSIGNAL, NULL, 0);
	else
		n = sendto(fd, "show json\n", 10, MSG_NOSIGNAL, NULL, 0);
	(void)n;
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 3000) != 1)
		return 4;
	n = recv(fd, buf, sizeof(buf), 0);
	close(fd);
	return n <= 0 ? 2 : 3;
}

static void test_daemon_refuses_other_users(void)
{
	char ports[SWITCHD_PATH_MAX + 32], control[SWITCHD_PATH_MAX + 32];
	struct dial dp = { ports, SOCK_SEQPACKET }, dc = { control, SOCK_STREAM };
	struct stat st;
	int a = -1;

	daemon_start("guarded", false);
	snprintf(ports, sizeof(ports), "%s/%s", dcfg.dir, SWITCHD_PORTS_SOCK);
	snprintf(control, sizeof(control), "%s/%s", dcfg.dir, SWITCHD_CONTROL_SOCK);
	CHECK_EQ(stat(ports, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(stat(control, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	/* Let the other user walk to the sockets; their mode stops it. */
	CHECK_EQ(chmod(store, 0755), 0);
	CHECK_EQ(chmod(dcfg.dir, 0755), 0);
	{
		char sw[400];

		snprintf(sw, sizeof(sw), "%s/switches", store);
		CHECK_EQ(chmod(sw, 0755), 0);
	}
	CHECK_EQ(other_user_run(other_dial, &dp), 1);
	CHECK_EQ(other_user_run(other_dial, &dc), 1);
	/* Opened to all: the daemon's peer check closes them unanswered. */
	CHECK_EQ(chmod(ports, 0666), 0);
	CHECK_EQ(chmod(control, 0666), 0);
	CHECK_EQ(other_user_run(other_dial, &dp), 2);
	CHECK_EQ(other_user_run(other_dial, &dc), 2);
	/* The owner still gets a port. */
	CHECK_EQ(hello(MAC_A, false, &a), 0);
	close(a);
	CHECK_EQ(chmod(store, 0700), 0);
	daemon_stop();
}

/* A /proc/PID/status line's value ("Seccomp" gives "2"), or "" */
static void proc_status(pid_t pid, const char *key, char *val, size_t len)
{
	char path[64], line[256];
	size_t k = strlen(key);
	FILE *f;

	val[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, k) && line[k] == ':') {
			snprintf(val, len, "%s", line + k + 1 + strspn(line + k + 1, " \t"));
			val[strcspn(val, "\n")] = '\0';
			break;
		}
	fclose(f);
}

static void check_show_sandbox(const char *want)
{
	char *reply = NULL, err[256];

	if (switchd_request(dcfg.dir, "show json", &reply, err, sizeof(err)) < 0)
		FAILF("show: %s", err);
	if (!strstr(reply, want))
		FAILF("show says '%s', not '%s'", reply, want);
	free(reply);
}

/* The daemon sandboxes itself once its sockets are open: a filter, no
 * capabilities, no_new_privs; no-seccomp = on leaves the filter off only.
 * It still answers, takes adapters and reads the store under it. */
static void test_daemon_sandboxed(void)
{
	char v[64];
	int a = -1;

	daemon_start("boxed", false);
	proc_status(daemon_pid, "Seccomp", v, sizeof(v));
	CHECK_STR(v, "2");
	proc_status(daemon_pid, "NoNewPrivs", v, sizeof(v));
	CHECK_STR(v, "1");
	proc_status(daemon_pid, "CapEff", v, sizeof(v));
	CHECK_STR(v, "0000000000000000");
	check_show_sandbox("\"sandbox\": \"seccomp filters on, no capabilities, Landlock ");
	CHECK_EQ(hello(MAC_A, false, &a), 0);
	/* What it made in its directory is its owner's alone. */
	for (const char *const *f = (const char *const[]){ "lock", "switchd.pid", NULL }; *f; f++) {
		char path[sizeof(dcfg.dir) + 16];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dcfg.dir, *f);
		CHECK_EQ(stat(path, &st), 0);
		CHECK_EQ(st.st_mode & 0777, 0600);
	}
	close(a);
	daemon_stop();

	daemon_no_seccomp = true;
	daemon_start("boxed", false);
	daemon_no_seccomp = false;
	proc_status(daemon_pid, "Seccomp", v, sizeof(v));
	CHECK_STR(v, "0");
	proc_status(daemon_pid, "NoNewPrivs", v, sizeof(v));
	CHECK_STR(v, "1");
	check_show_sandbox("seccomp filters off (--no-seccomp)");
	daemon_stop();
}

/* A forbidden call in the daemon ends it, saying so in its log. */
static void test_daemon_forbidden_call_kills(void)
{
	char log[sizeof(dcfg.dir) + 16], err[256], text[4096] = "";
	int fd, status = 0;
	ssize_t n;
	pid_t pid;

	memset(&dcfg, 0, sizeof(dcfg));
	snprintf(dcfg.dir, sizeof(dcfg.dir), "%s/switches/probed", store);
	snprintf(dcfg.name, sizeof(dcfg.name), "probed");
	CHECK(mkdir(dcfg.dir, 0700) == 0 || errno == EEXIST);
	CHECK_EQ(switchd_config_save(&dcfg, err, sizeof(err)), 0);
	snprintf(log, sizeof(log), "%s/probe.log", dcfg.dir);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(2);
		setenv(SANDBOX_PROBE_ENV, "switch", 1);
		_exit(switchd_run(&dcfg, -1) < 0 ? 1 : 0);
	}
	/* A daemon the filter let through would run on: 10 s, then it fails. */
	for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (kill(pid, 0) == 0 && waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		FAILF("the daemon ran on past its forbidden call");
	}
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), SANDBOX_EXIT_STATUS);
	fd = open(log, O_RDONLY);
	CHECK(fd >= 0);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	CHECK(n > 0);
	if (!strstr(text, "nestvm: sandbox: thread switch made forbidden system call umount2"))
		FAILF("the daemon's log says '%.300s'", text);
}

int main(void)
{
	RUN(test_create_rejects_bad_limits);
	RUN(test_ports);
	RUN(test_unicast_to_adapter_needs_no_learning);
	RUN(test_broadcast_and_multicast_flood);
	RUN(test_learning_and_unknown_unicast);
	RUN(test_spoofed_frames_dropped_and_counted);
	RUN(test_spoofing_allowed_carries_nested_guests);
	RUN(test_adapter_address_never_moves);
	RUN(test_learned_address_not_taken_without_spoofing);
	RUN(test_port_learning_limit);
	RUN(test_uplink_accepts_any_source);
	RUN(test_aging);
	RUN(test_table_bound);
	RUN(test_runt_and_oversized_frames);
	RUN(test_table_against_model);
	RUN(test_config_parse);
	RUN(test_switch_names);
	snprintf(store, sizeof(store), "/tmp/nestvm-test-switch-XXXXXX");
	if (!mkdtemp(store)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_spoofing_comes_from_the_vm_configuration);
	RUN(test_daemon_takes_spoofing_from_the_store);
	daemon_stop();
	RUN(test_daemon_refuses_other_users);
	daemon_stop();
	RUN(test_daemon_sandboxed);
	daemon_stop();
	RUN(test_daemon_forbidden_call_kills);
	harness_remove_tree(store);
	switch_destroy(sw);
	return HARNESS_END();
}

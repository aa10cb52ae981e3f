/* libFuzzer target for the software offloads (net/offload.c): the input is a
 * virtio-net header (12 bytes) and the frame behind it, as a hostile guest
 * hands them to the switch or a device. A header that is accepted must come
 * apart into exactly the segments it promised, none longer than it said,
 * their payloads together the frame's; every read and write stays inside
 * the buffers (the sanitizers watch). */
#include "net/offload.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[65536];
	struct net_vnet_hdr h;
	struct net_offload_iter it;
	const char *why = NULL;
	size_t len, n, payload = 0;
	unsigned int segs = 0;
	uint8_t *frame;

	if (size < sizeof(h) || size - sizeof(h) > 65535)
		return 0;
	memcpy(&h, data, sizeof(h));
	len = size - sizeof(h);
	/* A copy of its own size, so that a read past the end is caught. */
	frame = malloc(len ? len : 1);
	if (!frame)
		return 0;
	memcpy(frame, data + sizeof(h), len);
	if (net_offload_begin(&it, &h, frame, len, &why) != 0) {
		ASSERT(why && why[0]);
		free(frame);
		return 0;
	}
	ASSERT(it.info.nsegs >= 1 && it.info.nsegs <= NET_GSO_MAX_SEGS);
	ASSERT(it.info.seg_max <= len);
	while ((n = net_offload_next(&it, out, sizeof(out))) > 0) {
		ASSERT(n <= it.info.seg_max);
		if (it.info.gso) {
			ASSERT(n >= it.info.payload);
			/* Segments carry the payload in order. */
			ASSERT(!memcmp(out + it.info.payload, frame + it.info.payload + payload,
				       n - it.info.payload));
			payload += n - it.info.payload;
		} else {
			/* Only a checksum field may have changed. */
			ASSERT(n == len);
			for (size_t i = 0; i < n; i++)
				ASSERT(out[i] == frame[i] || ((h.flags & NET_HDR_F_NEEDS_CSUM) &&
							      i >= (size_t)h.csum_start + h.csum_offset &&
							      i < (size_t)h.csum_start + h.csum_offset + 2));
		}
		segs++;
	}
	ASSERT(segs == it.info.nsegs);
	if (it.info.gso)
		ASSERT(payload == len - it.info.payload);
	free(frame);
	return 0;
}

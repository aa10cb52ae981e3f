/* libFuzzer target for the vm.conf parser, the file a user edits by hand
 * and the store reads back: every input is accepted or refused with a
 * message, never read past its end; and what it accepts, written out by
 * store_format, parses again to the very same configuration. */
#include "store.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* Parses text with parse; if it is accepted, what store_format writes of it
 * must be too, and give back the same struct (both start zeroed, so
 * padding compares). A stored VM's configuration must also pass the
 * store's own check; a running machine's (store_parse_machine) names its
 * disks by path, which that check refuses for a VM's directory. */
static void round_trip(int (*parse)(const char *, size_t, const char *, struct vmconfig *, char *, size_t),
		       const char *text, size_t size, bool stored, struct vmconfig *a, struct vmconfig *b)
{
	char err[2048], err2[2048];
	char *out;

	err[0] = 0;
	if (parse(text, size, "vm.conf", a, err, sizeof(err)) != 0) {
		ASSERT(err[0]);         /* a refusal always says why */
		return;
	}
	ASSERT(!stored || store_validate(a, err, sizeof(err)) == 0);
	out = store_format(a);
	ASSERT(out);
	if (parse(out, strlen(out), "vm.conf", b, err2, sizeof(err2)) != 0)
		__builtin_trap();       /* saved, then never loaded again */
	ASSERT(!memcmp(a, b, sizeof(*a)));
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so ASan sees any over-read. */
	char *text = malloc(size ? size : 1);
	struct vmconfig *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));

	ASSERT(text && a && b);
	memcpy(text, data, size);
	round_trip(store_parse, text, size, true, a, b);
	round_trip(store_parse_machine, text, size, false, a, b);
	free(text);
	free(a);
	free(b);
	return 0;
}

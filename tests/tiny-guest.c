/* Writes the tiny guest, a bzImage that prints its command line on COM1 and
 * powers off, or resets the machine when that line starts with "r"
 * (tests/kvm/payloads.S, payload_tiny_guest), to the file named
 * by its argument. A NestedVM that boots in a moment even where every exit
 * costs milliseconds: the deep end-to-end case runs it at level 3. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fake_bzimage.h"

extern const uint8_t payload_tiny_guest[], payload_tiny_guest_end[];

int main(int argc, char **argv)
{
	size_t len;
	uint8_t *img;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: tiny-guest FILE\n");
		return 2;
	}
	img = fake_bzimage(payload_tiny_guest, (size_t)(payload_tiny_guest_end - payload_tiny_guest), 0, &len);
	if (!img) {
		fprintf(stderr, "tiny-guest: out of memory\n");
		return 1;
	}
	f = fopen(argv[1], "wb");
	if (!f || fwrite(img, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "tiny-guest: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	free(img);
	return 0;
}

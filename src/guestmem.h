/* Guest physical memory: up to a few RAM regions mapped into this process,
 * and accessors that refuse any range not wholly inside one of them. */
#ifndef NESTVM_GUESTMEM_H
#define NESTVM_GUESTMEM_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define GUESTMEM_MAX_REGIONS 4

struct guestmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guestmem {
	struct guestmem_region regions[GUESTMEM_MAX_REGIONS];
	unsigned int nregions;
	uint64_t total;
};

/* Maps anonymous memory for [gpa, gpa+size). */
MUST_CHECK int guestmem_add(struct guestmem *mem, uint64_t gpa, uint64_t size);
void guestmem_free(struct guestmem *mem);

/* Host pointer for [gpa, gpa+len), or NULL if any byte of it is not RAM. */
void *guestmem_ptr(const struct guestmem *mem, uint64_t gpa, uint64_t len);
MUST_CHECK int guestmem_read(const struct guestmem *mem, uint64_t gpa, void *dst, uint64_t len);
MUST_CHECK int guestmem_write(const struct guestmem *mem, uint64_t gpa, const void *src, uint64_t len);

/* Bytes of guest RAM that the guest has touched (resident in this process). */
uint64_t guestmem_resident(const struct guestmem *mem);

#endif

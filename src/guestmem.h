/* Guest physical memory: up to a few RAM regions mapped into this process,
 * and accessors that refuse any range not wholly inside one of them. */
#ifndef NESTVM_GUESTMEM_H
#define NESTVM_GUESTMEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define GUESTMEM_MAX_REGIONS 4

struct guestmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
	_Atomic uint64_t *dirty;        /* while logging: a bit per 4 KiB page devices wrote */
};

struct guestmem {
	struct guestmem_region regions[GUESTMEM_MAX_REGIONS];
	unsigned int nregions;
	uint64_t total;
	_Atomic bool logging;
};

/* Maps anonymous memory for [gpa, gpa+size). */
MUST_CHECK int guestmem_add(struct guestmem *mem, uint64_t gpa, uint64_t size);
void guestmem_free(struct guestmem *mem);

/* Host pointer for [gpa, gpa+len), or NULL if any byte of it is not RAM. */
void *guestmem_ptr(const struct guestmem *mem, uint64_t gpa, uint64_t len);
MUST_CHECK int guestmem_read(const struct guestmem *mem, uint64_t gpa, void *dst, uint64_t len);
MUST_CHECK int guestmem_write(const struct guestmem *mem, uint64_t gpa, const void *src, uint64_t len);

/* Zeroes [gpa, gpa+len), handing whole pages back to the host so that
 * they take no memory until the guest touches them; nothing outside RAM. */
void guestmem_clear(const struct guestmem *mem, uint64_t gpa, uint64_t len);

/* Bytes of guest RAM that the guest has touched (resident in this process). */
uint64_t guestmem_resident(const struct guestmem *mem);

/* Logging the pages the VMM's own devices write, which KVM's dirty log does
 * not see: while on, guestmem_mark marks every page of [host, host + len).
 * take moves region i's marks into bitmap (ORed in; a bit per 4 KiB page)
 * and clears them. Any thread. */
MUST_CHECK int guestmem_log_start(struct guestmem *mem);
void guestmem_log_stop(struct guestmem *mem);
void guestmem_mark(const struct guestmem *mem, const void *host, uint64_t len);
void guestmem_log_take(struct guestmem *mem, unsigned int i, uint64_t *bitmap);

#endif

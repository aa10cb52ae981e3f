/* Address buses for port I/O and MMIO. Devices register a window and one
 * handler; the vCPU loop dispatches accesses by address. Registration happens
 * while the VM is built; afterwards a bus is read-only and needs no lock. */
#ifndef NESTVM_BUS_H
#define NESTVM_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* offset is relative to the window's base; data holds len bytes (1..8). */
typedef void bus_handler_fn(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write);

struct bus_window {
	uint64_t base;
	uint64_t len;
	bus_handler_fn *fn;
	void *opaque;
	const char *name;
};

struct bus {
	struct bus_window *windows;   /* sorted by base, never overlapping */
	unsigned int n, cap;
};

/* -EEXIST if the window overlaps one already registered. */
MUST_CHECK int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
			    bus_handler_fn *fn, void *opaque);
const struct bus_window *bus_find(const struct bus *bus, uint64_t addr);
/* Returns false when no device claims the whole access; reads then see all ones. */
bool bus_access(const struct bus *bus, uint64_t addr, void *data, uint32_t len, bool is_write);
void bus_free(struct bus *bus);

/* An interrupt line as a device sees it: a level it can raise and lower. */
struct irq_line {
	int (*set)(void *opaque, uint32_t gsi, int level);
	void *opaque;
	uint32_t gsi;
};

static inline int irq_line_set(const struct irq_line *irq, int level)
{
	return irq->set ? irq->set(irq->opaque, irq->gsi, level) : 0;
}

#endif

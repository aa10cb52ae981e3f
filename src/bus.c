/* Address buses: a sorted array of windows searched by bisection. */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		 bus_handler_fn *fn, void *opaque)
{
	unsigned int i;

	if (!len || base + len < base || !fn)
		return -EINVAL;
	for (i = 0; i < bus->n; i++) {
		const struct bus_window *w = &bus->windows[i];
		if (base < w->base + w->len && w->base < base + len)
			return -EEXIST;
		if (w->base > base)
			break;
	}
	if (bus->n == bus->cap) {
		unsigned int cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_window *nw = realloc(bus->windows, cap * sizeof(*nw));
		if (!nw)
			return -ENOMEM;
		bus->windows = nw;
		bus->cap = cap;
	}
	memmove(&bus->windows[i + 1], &bus->windows[i], (bus->n - i) * sizeof(bus->windows[0]));
	bus->windows[i] = (struct bus_window){ base, len, fn, opaque, name };
	bus->n++;
	return 0;
}

const struct bus_window *bus_find(const struct bus *bus, uint64_t addr)
{
	unsigned int lo = 0, hi = bus->n;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct bus_window *w = &bus->windows[mid];

		if (addr < w->base)
			hi = mid;
		else if (addr - w->base >= w->len)
			lo = mid + 1;
		else
			return w;
	}
	return NULL;
}

bool bus_access(const struct bus *bus, uint64_t addr, void *data, uint32_t len, bool is_write)
{
	const struct bus_window *w = bus_find(bus, addr);

	if (!w || len > w->len - (addr - w->base)) {
		if (!is_write)
			memset(data, 0xff, len);
		return false;
	}
	w->fn(w->opaque, addr - w->base, data, len, is_write);
	return true;
}

void bus_free(struct bus *bus)
{
	free(bus->windows);
	memset(bus, 0, sizeof(*bus));
}

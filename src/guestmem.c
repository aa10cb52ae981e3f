/* Guest physical memory and its bounds-checked accessors. */
#include "guestmem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Guest RAM starts on a 2 MiB boundary so the host can back it with huge
 * pages, which KVM then maps as large pages at every nesting level. */
#define GUESTMEM_ALIGN (2ULL << 20)

static void *guestmem_map_aligned(uint64_t size)
{
	uint8_t *raw, *p;
	uint64_t lead;

	raw = mmap(NULL, size + GUESTMEM_ALIGN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	p = (uint8_t *)ALIGN_UP((uintptr_t)raw, GUESTMEM_ALIGN);
	lead = (uint64_t)(p - raw);
	if (lead)
		munmap(raw, lead);
	munmap(p + size, GUESTMEM_ALIGN - lead);
	madvise(p, size, MADV_HUGEPAGE);
	return p;
}

int guestmem_add(struct guestmem *mem, uint64_t gpa, uint64_t size)
{
	struct guestmem_region *r;
	void *host;

	if (mem->nregions >= GUESTMEM_MAX_REGIONS)
		return -ENOSPC;
	if (!size || gpa + size < gpa || (size & 0xfff) || (gpa & 0xfff))
		return -EINVAL;
	host = guestmem_map_aligned(size);
	if (!host)
		return -errno;
	r = &mem->regions[mem->nregions++];
	r->gpa = gpa;
	r->size = size;
	r->host = host;
	mem->total += size;
	return 0;
}

void guestmem_free(struct guestmem *mem)
{
	guestmem_log_stop(mem);
	for (unsigned int i = 0; i < mem->nregions; i++)
		munmap(mem->regions[i].host, mem->regions[i].size);
	memset(mem, 0, sizeof(*mem));
}

void *guestmem_ptr(const struct guestmem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct guestmem_region *r = &mem->regions[i];

		/* Written so that no sum can wrap: gpa - r->gpa only once gpa >= r->gpa. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int guestmem_read(const struct guestmem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = guestmem_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

void guestmem_clear(const struct guestmem *mem, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guestmem_ptr(mem, gpa, len);
	uintptr_t from, to;

	if (!p || !len)
		return;
	guestmem_mark(mem, p, len);
	from = ALIGN_UP((uintptr_t)p, 4096);
	to = ((uintptr_t)p + len) & ~(uintptr_t)4095;
	if (from >= to) {
		memset(p, 0, len);
		return;
	}
	memset(p, 0, from - (uintptr_t)p);
	memset((void *)to, 0, (uintptr_t)p + len - to);
	/* Private anonymous memory reads as zeros once given back. */
	if (madvise((void *)from, to - from, MADV_DONTNEED) < 0)
		memset((void *)from, 0, to - from);
}

int guestmem_write(const struct guestmem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = guestmem_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

uint64_t guestmem_resident(const struct guestmem *mem)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t resident = 0;
	unsigned char vec[4096];

	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct guestmem_region *r = &mem->regions[i];

		for (uint64_t off = 0; off < r->size; off += sizeof(vec) * (uint64_t)page) {
			uint64_t chunk = MIN(r->size - off, sizeof(vec) * (uint64_t)page);
			uint64_t pages = chunk / (uint64_t)page;

			if (mincore(r->host + off, chunk, vec) < 0)
				break;
			for (uint64_t p = 0; p < pages; p++)
				resident += (vec[p] & 1) ? (uint64_t)page : 0;
		}
	}
	return resident;
}

#define GUESTMEM_PAGE 4096ULL

static uint64_t guestmem_log_words(const struct guestmem_region *r)
{
	return (r->size / GUESTMEM_PAGE + 63) / 64;
}

int guestmem_log_start(struct guestmem *mem)
{
	for (unsigned int i = 0; i < mem->nregions; i++) {
		struct guestmem_region *r = &mem->regions[i];

		if (!r->dirty) {
			r->dirty = calloc(guestmem_log_words(r), sizeof(*r->dirty));
			if (!r->dirty) {
				guestmem_log_stop(mem);
				return -ENOMEM;
			}
		}
	}
	atomic_store(&mem->logging, true);
	return 0;
}

void guestmem_log_stop(struct guestmem *mem)
{
	atomic_store(&mem->logging, false);
	for (unsigned int i = 0; i < mem->nregions; i++) {
		free((void *)mem->regions[i].dirty);
		mem->regions[i].dirty = NULL;
	}
}

void guestmem_mark(const struct guestmem *mem, const void *host, uint64_t len)
{
	const uint8_t *p = host;

	if (!len || !atomic_load_explicit(&mem->logging, memory_order_acquire))
		return;
	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct guestmem_region *r = &mem->regions[i];
		uint64_t first, last;

		if (p < r->host || (uint64_t)(p - r->host) >= r->size || !r->dirty)
			continue;
		first = (uint64_t)(p - r->host) / GUESTMEM_PAGE;
		last = (MIN((uint64_t)(p - r->host) + len, r->size) - 1) / GUESTMEM_PAGE;
		for (uint64_t pg = first; pg <= last; pg++)
			atomic_fetch_or_explicit(&r->dirty[pg / 64], 1ULL << (pg % 64), memory_order_relaxed);
		return;
	}
}

void guestmem_log_take(struct guestmem *mem, unsigned int i, uint64_t *bitmap)
{
	struct guestmem_region *r = &mem->regions[i];

	if (i >= mem->nregions || !r->dirty)
		return;
	for (uint64_t w = 0; w < guestmem_log_words(r); w++)
		bitmap[w] |= atomic_exchange_explicit(&r->dirty[w], 0, memory_order_relaxed);
}

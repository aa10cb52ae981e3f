/* Unpacking a bzImage's compressed kernel on the host.
 *
 * A bzImage carries the kernel proper (an ELF vmlinux) compressed, and a
 * decompressor that runs first, as guest code: it copies itself out of the
 * way, decompresses tens of MiB, moves the ELF segments into place and
 * applies relocations. Where guest code is emulated that is a large part
 * of a boot. Done here, natively, the guest starts in the kernel proper at
 * its 64-bit entry, as a vmlinux boots.
 *
 * Layout: the compressed payload is staged at the top of low RAM; the
 * vmlinux file is decompressed at B so that each segment's bytes lie at
 * B + p_offset, with B chosen so that every segment then moves down (or
 * stays) to its p_paddr, in file order, without clobbering a later one;
 * what is left of the file image and the staged payload is zeroed and
 * given back to the host. Every length and offset comes from the image and
 * is checked: the image is untrusted. */
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"

#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <string.h>

/* Linux's "legacy" LZ4 framing (lib/decompress_unlz4.c): a magic number,
 * then blocks of up to 8 MiB, each a 32-bit compressed size and the
 * compressed bytes; the payload ends with the decompressed size (32 bits,
 * appended by the kernel's build). */
#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20)

/* The largest vmlinux taken: beyond this the guest decompresses its own. */
#define UNPACK_MAX (1ULL << 30)

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static int unpack_fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "the kernel's compressed vmlinux is corrupt: %s", why);
	return -ENOEXEC;
}

/* Whether the segments, in file order, can each move down to its address
 * from B + offset without overwriting a later one's bytes still in place.
 * B is the lowest base that moves none of them up. */
static bool unpack_plan(const struct boot_elf *elf, uint64_t *base)
{
	uint64_t b = LAYOUT_HIGH_MEM_ADDR;

	for (unsigned int i = 0; i < elf->nseg; i++) {
		const struct boot_elf_seg *s = &elf->seg[i];

		if (i && s->offset < elf->seg[i - 1].offset + elf->seg[i - 1].filesz)
			return false;
		if (s->paddr > s->offset)
			b = MAX(b, s->paddr - s->offset);
	}
	b = ALIGN_UP(b, 0x1000);
	for (unsigned int i = 0; i + 1 < elf->nseg; i++)
		if (elf->seg[i].paddr + elf->seg[i].memsz > b + elf->seg[i + 1].offset)
			return false;
	*base = b;
	return true;
}

/* Zeroes [gpa, end) of the file image except where a segment now lies. */
static void unpack_clear_rest(const struct guestmem *mem, const struct boot_elf *elf, uint64_t gpa, uint64_t end)
{
	while (gpa < end) {
		uint64_t stop = end;
		bool inside = false;

		for (unsigned int i = 0; i < elf->nseg; i++) {
			const struct boot_elf_seg *s = &elf->seg[i];

			if (gpa >= s->paddr && gpa < s->paddr + s->memsz) {
				gpa = s->paddr + s->memsz;
				inside = true;
				break;
			}
			if (s->paddr > gpa)
				stop = MIN(stop, s->paddr);
		}
		if (inside)
			continue;
		guestmem_clear(mem, gpa, stop - gpa);
		gpa = stop;
	}
}

int boot_unpack_vmlinux(const struct guestmem *mem, const struct boot_blob *kernel, uint64_t off, uint64_t len,
			uint64_t limit, struct boot_elf *elf, char *err, size_t errlen)
{
	uint8_t head[8], hdr[BOOT_HDR_BYTES];
	uint64_t usize, stage, base, done = 0, pos, end;
	const char *why = NULL;
	uint8_t *src, *dst;
	int n, hdr_len, r;

	if (len < 16)
		return 0;
	r = boot_blob_read(kernel, off, head, 4);
	if (r == 0)
		r = boot_blob_read(kernel, off + len - 4, head + 4, 4);
	if (r < 0) {
		snprintf(err, errlen, "reading the kernel: %s", strerror(-r));
		return r;
	}
	if (get32(head) != LZ4_LEGACY_MAGIC)
		return 0;       /* another compressor: the guest's own decompressor runs */
	usize = get32(head + 4);
	if (usize < 64)
		return unpack_fail(err, errlen, "its size (the payload's last 4 bytes) is too small for an ELF file");
	if (usize > UNPACK_MAX)
		return 0;

	/* The compressed bytes at the top of low RAM, on a 2 MiB boundary so
	 * that handing them back frees whole huge pages. */
	len -= 4;
	if (len > limit)
		return 0;
	stage = (limit - len) & ~((2ULL << 20) - 1);
	src = guestmem_ptr(mem, stage, len);
	if (!src || stage < LAYOUT_HIGH_MEM_ADDR)
		return 0;
	r = boot_blob_read(kernel, off, src, len);
	if (r < 0) {
		snprintf(err, errlen, "reading the kernel: %s", strerror(-r));
		goto out;
	}

	/* The ELF header, from the first block. */
	n = -1;
	if (len >= 8 && get32(src + 4) <= len - 8 && get32(src + 4) <= (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK))
		n = LZ4_decompress_safe_partial((const char *)src + 8, (char *)hdr, (int)get32(src + 4),
						(int)sizeof(hdr), (int)sizeof(hdr));
	if (n < 64) {
		r = unpack_fail(err, errlen, "its first block does not decompress to an ELF header");
		goto out;
	}
	hdr_len = n;
	r = boot_parse_elf(hdr, (size_t)hdr_len, usize, elf, &why);
	if (r < 0) {
		snprintf(err, errlen, "the kernel's compressed vmlinux: %s", why);
		goto out;
	}
	if (!unpack_plan(elf, &base) || base + usize > stage || elf->end > stage) {
		r = 0;          /* an odd layout, or too little RAM: let the guest do it */
		goto out;
	}
	dst = guestmem_ptr(mem, base, usize);
	if (!dst) {
		r = 0;
		goto out;
	}

	for (pos = 4; pos < len;) {
		uint32_t csize;

		if (len - pos < 4) {
			r = unpack_fail(err, errlen, "it ends inside a block's size");
			goto out;
		}
		csize = get32(src + pos);
		pos += 4;
		if (csize == LZ4_LEGACY_MAGIC)
			continue;       /* a second stream, concatenated */
		if (csize > len - pos || csize > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK)) {
			r = unpack_fail(err, errlen, "a block runs past the payload's end");
			goto out;
		}
		if (done == usize) {
			r = unpack_fail(err, errlen, "it holds more than its size says");
			goto out;
		}
		n = LZ4_decompress_safe((const char *)src + pos, (char *)dst + done, (int)csize,
					(int)MIN((uint64_t)LZ4_LEGACY_BLOCK, usize - done));
		if (n < 0) {
			r = unpack_fail(err, errlen, "a block does not decompress (or holds more than its size says)");
			goto out;
		}
		done += (uint64_t)n;
		pos += csize;
	}
	if (done != usize) {
		r = unpack_fail(err, errlen, "it holds less than its size says");
		goto out;
	}
	if (memcmp(dst, hdr, (size_t)hdr_len)) {
		r = unpack_fail(err, errlen, "its first block decompresses two ways");
		goto out;
	}

	/* Each segment down to its address, in file order, its tail zeroed. */
	for (unsigned int i = 0; i < elf->nseg; i++) {
		const struct boot_elf_seg *s = &elf->seg[i];
		uint8_t *to = guestmem_ptr(mem, s->paddr, s->memsz);

		if (!to) {      /* cannot be: every segment ends below the staging */
			r = unpack_fail(err, errlen, "a segment lands outside guest memory");
			goto out;
		}
		memmove(to, dst + s->offset, s->filesz);
		memset(to + s->filesz, 0, s->memsz - s->filesz);
	}
	end = MAX(base + usize, elf->end);
	unpack_clear_rest(mem, elf, base, end);
	r = 1;
out:
	guestmem_clear(mem, stage, limit - stage);
	return r;
}

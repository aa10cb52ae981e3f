/* libFuzzer target for the kernel image, the first untrusted bytes nestvm
 * reads: the bzImage and ELF vmlinux parsers, and the Linux loader whenever
 * the image parses, with the unpacking of an LZ4-compressed kernel.
 * Every invariant the loader promises is checked with __builtin_trap(). */
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "guestmem.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MEM_SIZE   (32ULL << 20)
#define FUZZ_INITRD_LEN 5000            /* not a multiple of a page */

#define ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static const char fuzz_cmdline[] = "console=ttyS0 panic=-1";

/* Guest memory made once: mapping 32 MiB per input would dominate the run. */
static struct guestmem *fuzz_mem(void)
{
	static struct guestmem mem;
	static int ready;

	if (!ready) {
		ASSERT(guestmem_add(&mem, 0, FUZZ_MEM_SIZE) == 0);
		ready = 1;
	}
	return &mem;
}

static const uint8_t *fuzz_initrd(void)
{
	static uint8_t initrd[FUZZ_INITRD_LEN];
	static int ready;

	if (!ready) {
		for (size_t i = 0; i < sizeof(initrd); i++)
			initrd[i] = (uint8_t)(i * 131 + 7);
		ready = 1;
	}
	return initrd;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* An ELF vmlinux: each segment byte for byte at its address, the tail
 * of each zeroed, the entry its own, the initrd past the last segment. */
static int fuzz_elf(struct guestmem *mem, const struct boot_linux *bl, const uint8_t *data, size_t size)
{
	struct boot_entry entry;
	struct boot_elf elf;
	const char *why = NULL;
	char err[256];
	int r;

	r = boot_parse_elf(data, size, size, &elf, &why);
	if (r < 0) {
		ASSERT(why && why[0]);
		return 0;
	}
	ASSERT(elf.nseg >= 1 && elf.nseg <= BOOT_ELF_MAX_SEGMENTS);
	for (unsigned int i = 0; i < elf.nseg; i++) {
		const struct boot_elf_seg *s = &elf.seg[i];

		ASSERT(s->offset + s->filesz <= size && s->filesz <= s->memsz);
		ASSERT(s->paddr >= LAYOUT_HIGH_MEM_ADDR && s->paddr + s->memsz <= elf.end);
		ASSERT(elf.end <= LAYOUT_MMIO_HOLE_ADDR);
	}
	err[0] = 0;
	r = boot_load_linux(mem, bl, &entry, err, sizeof(err));
	if (r < 0) {
		ASSERT(err[0]);
		return 0;
	}
	ASSERT(entry.rip == elf.entry);
	ASSERT(!entry.initrd_addr || entry.initrd_addr >= elf.end);
	/* Segments may overlap: the last one written wins, so check that one. */
	{
		const struct boot_elf_seg *s = &elf.seg[elf.nseg - 1];
		const uint8_t *p = guestmem_ptr(mem, s->paddr, s->memsz);

		ASSERT(p && !memcmp(p, data + s->offset, s->filesz));
		for (uint64_t i = s->filesz; i < s->memsz; i++)
			ASSERT(p[i] == 0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guestmem *mem = fuzz_mem();
	const uint8_t *initrd = fuzz_initrd();
	struct boot_linux bl = {
		.kernel = BOOT_BLOB_MEM(data, size),
		.initrd = BOOT_BLOB_MEM(initrd, FUZZ_INITRD_LEN),
		.cmdline = fuzz_cmdline, .rsdp_addr = LAYOUT_ACPI_ADDR,
	};
	struct boot_entry entry;
	struct bzimage bz;
	const char *why = NULL;
	char err[256];
	uint64_t kernel_end;
	const uint8_t *p, *zp;
	uint8_t *dst;
	int r;

	if (boot_is_elf(data, size))
		return fuzz_elf(mem, &bl, data, size);
	r = boot_parse_bzimage(data, size, size, &bz, &why);
	if (r < 0) {
		ASSERT(why && why[0]);
		return 0;
	}
	/* What the parser hands out lies inside the input. */
	ASSERT(bz.setup_size >= 512 && bz.setup_size < size);
	ASSERT(bz.kernel_offset == bz.setup_size);
	ASSERT(bz.kernel_size == size - bz.setup_size && bz.kernel_size > 0);
	ASSERT(bz.hdr_end <= bz.setup_size);
	ASSERT(bz.init_size >= bz.kernel_size);
	/* Every size the header gives lies within the file. */
	ASSERT(bz.syssize && (uint64_t)bz.syssize * 16 <= bz.kernel_size);
	ASSERT((uint64_t)bz.payload_offset + bz.payload_length <= (uint64_t)bz.syssize * 16);

	/* Memory is reused across inputs: fill the kernel's and the command
	 * line's places with bytes that cannot pass for a correct copy. */
	dst = guestmem_ptr(mem, LAYOUT_HIGH_MEM_ADDR, bz.kernel_size);
	if (dst)
		for (size_t i = 0; i < bz.kernel_size; i++)
			dst[i] = (uint8_t)~data[bz.kernel_offset + i];
	memset(guestmem_ptr(mem, LAYOUT_CMDLINE_ADDR, sizeof(fuzz_cmdline)), 0xff, sizeof(fuzz_cmdline));

	err[0] = 0;
	r = boot_load_linux(mem, &bl, &entry, err, sizeof(err));
	if (r < 0) {
		ASSERT(err[0]);
		return 0;
	}
	if (entry.unpacked) {
		/* nestvm decompressed the kernel: it enters the vmlinux inside
		 * it, the initrd above that, the staged payload gone again. */
		ASSERT(entry.rip >= LAYOUT_HIGH_MEM_ADDR && entry.rip < LAYOUT_MMIO_HOLE_ADDR);
		ASSERT(entry.rsi == LAYOUT_ZERO_PAGE_ADDR);
		ASSERT(entry.initrd_addr && entry.initrd_addr + FUZZ_INITRD_LEN <= FUZZ_MEM_SIZE);
		dst = guestmem_ptr(mem, entry.initrd_addr, FUZZ_INITRD_LEN);
		ASSERT(dst && !memcmp(dst, initrd, FUZZ_INITRD_LEN));
		for (size_t i = 0; i < FUZZ_INITRD_LEN; i++)
			dst[i] = (uint8_t)~dst[i];
		return 0;
	}
	ASSERT(entry.rip == LAYOUT_HIGH_MEM_ADDR + 0x200);
	ASSERT(entry.rsi == LAYOUT_ZERO_PAGE_ADDR);

	/* The protected-mode kernel, byte for byte, at 1 MiB. */
	p = guestmem_ptr(mem, LAYOUT_HIGH_MEM_ADDR, bz.kernel_size);
	ASSERT(p && !memcmp(p, data + bz.setup_size, bz.kernel_size));

	/* The initrd, page-aligned, past what the kernel decompresses into,
	 * below its limit and inside RAM. */
	kernel_end = LAYOUT_HIGH_MEM_ADDR + (bz.init_size > bz.kernel_size ? bz.init_size : bz.kernel_size);
	ASSERT(entry.initrd_addr && !(entry.initrd_addr & 0xfff));
	ASSERT(entry.initrd_addr >= kernel_end);
	ASSERT(entry.initrd_addr + FUZZ_INITRD_LEN <= FUZZ_MEM_SIZE);
	ASSERT(entry.initrd_addr + FUZZ_INITRD_LEN - 1 <= bz.initrd_addr_max);
	dst = guestmem_ptr(mem, entry.initrd_addr, FUZZ_INITRD_LEN);
	ASSERT(dst && !memcmp(dst, initrd, FUZZ_INITRD_LEN));
	for (size_t i = 0; i < FUZZ_INITRD_LEN; i++)      /* spoil it for the next input */
		dst[i] = (uint8_t)~dst[i];

	/* The command line, NUL-terminated, where the zero page says. */
	p = guestmem_ptr(mem, LAYOUT_CMDLINE_ADDR, sizeof(fuzz_cmdline));
	ASSERT(p && !memcmp(p, fuzz_cmdline, sizeof(fuzz_cmdline)));
	zp = guestmem_ptr(mem, LAYOUT_ZERO_PAGE_ADDR, 0x1000);
	ASSERT(zp);
	ASSERT(rd32(zp + 0x228) == LAYOUT_CMDLINE_ADDR);
	ASSERT(rd32(zp + 0x218) == entry.initrd_addr);
	ASSERT(rd32(zp + 0x21c) == FUZZ_INITRD_LEN);
	ASSERT(!memcmp(zp + 0x202, "HdrS", 4));
	ASSERT(zp[0x210] == 0xff);
	ASSERT(zp[0x1e8] >= 1 && zp[0x1e8] <= BOOT_E820_MAX);
	/* Nothing of the image's setup code beyond its header is copied:
	 * past the header only the e820 table is written. */
	for (size_t i = bz.hdr_end; i < 0x1000; i++) {
		if (i >= 0x2d0 && i < 0x2d0 + 20 * (size_t)zp[0x1e8])
			continue;
		ASSERT(zp[i] == 0);
	}
	return 0;
}

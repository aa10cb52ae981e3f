/* The Linux x86 boot protocol (Documentation/arch/x86/boot.rst), 64-bit entry.
 * Every field read from the image is bounds-checked before use. */
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Offsets in the image and in struct boot_params (the zero page). */
#define HDR_SETUP_SECTS     0x1f1
#define HDR_SYSSIZE         0x1f4
#define HDR_BOOT_FLAG       0x1fe
#define HDR_JUMP            0x200
#define HDR_HEADER          0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_HEAP_END_PTR    0x224
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_XLOADFLAGS      0x236
#define HDR_CMDLINE_SIZE    0x238
#define HDR_PAYLOAD_OFFSET  0x248
#define HDR_PAYLOAD_LENGTH  0x24c
#define HDR_INIT_SIZE       0x260
#define HDR_KERNEL_INFO_OFFSET 0x268
#define KERNEL_INFO_HEADER  12          /* "LToP", size, size_total */
#define BP_ACPI_RSDP_ADDR   0x070
#define BP_E820_ENTRIES     0x1e8
#define BP_E820_TABLE       0x2d0
#define BP_SIZE             0x1000

#define LOADED_HIGH     0x01
#define CAN_USE_HEAP    0x80
#define XLF_KERNEL_64   0x01

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

int boot_blob_open(struct boot_blob *b, const char *path, const char **why)
{
	struct stat st;
	int r;

	*b = (struct boot_blob)BOOT_BLOB_MEM(NULL, 0);
	/* Non-blocking: opening a FIFO to read would wait for a writer. A
	 * regular file ignores the flag. */
	b->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (b->fd < 0 || fstat(b->fd, &st) < 0) {
		r = -errno;
		*why = strerror(-r);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		*why = S_ISDIR(st.st_mode) ? "not a regular file (a directory)" :
		       S_ISFIFO(st.st_mode) ? "not a regular file (a FIFO)" :
		       "not a regular file (a device or a socket)";
		goto fail;
	}
	b->size = (uint64_t)st.st_size;
	return 0;
fail:
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	return r;
}

int boot_blob_read(const struct boot_blob *b, uint64_t off, void *dst, uint64_t len)
{
	uint8_t *p = dst;

	if (off > b->size || len > b->size - off)
		return -EINVAL;
	if (b->data) {
		memcpy(dst, b->data + off, len);
		return 0;
	}
	while (len) {
		ssize_t n = pread(b->fd, p, len > (1 << 30) ? (1 << 30) : len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;   /* the file shrank under us */
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

int boot_parse_bzimage(const uint8_t *img, size_t hdr_len, uint64_t len, struct bzimage *bz,
		       const char **why)
{
	unsigned int sects;

	memset(bz, 0, sizeof(*bz));
	if (len < HDR_INIT_SIZE + 4 || hdr_len < MIN(len, (uint64_t)BOOT_HDR_BYTES)) {
		*why = "too short to hold a Linux boot header";
		return -ENOEXEC;
	}
	if (rd32(img + HDR_HEADER) != 0x53726448) {
		*why = "not a Linux bzImage (no 'HdrS' magic at 0x202)";
		return -ENOEXEC;
	}
	if (rd16(img + HDR_BOOT_FLAG) != 0xaa55) {
		*why = "not a Linux bzImage (no 0xaa55 boot flag at 0x1fe)";
		return -ENOEXEC;
	}
	bz->version = rd16(img + HDR_VERSION);
	if (bz->version < 0x020c) {
		*why = "boot protocol older than 2.12: no 64-bit entry point";
		return -ENOEXEC;
	}
	bz->loadflags = img[HDR_LOADFLAGS];
	bz->xloadflags = rd16(img + HDR_XLOADFLAGS);
	if (!(bz->loadflags & LOADED_HIGH)) {
		*why = "zImage (loads low): only bzImage kernels are supported";
		return -ENOEXEC;
	}
	if (!(bz->xloadflags & XLF_KERNEL_64)) {
		*why = "kernel has no 64-bit entry point (XLF_KERNEL_64 unset)";
		return -ENOEXEC;
	}
	sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	bz->setup_size = (size_t)(sects + 1) * 512;
	bz->hdr_end = HDR_JUMP + 2 + (size_t)img[HDR_JUMP + 1];
	if (bz->hdr_end < HDR_INIT_SIZE + 4 || bz->hdr_end > bz->setup_size) {
		*why = "setup header length out of range";
		return -ENOEXEC;
	}
	if (bz->setup_size >= len) {
		*why = "truncated: the image ends inside its setup sectors";
		return -ENOEXEC;
	}
	bz->kernel_offset = bz->setup_size;
	bz->kernel_size = len - bz->setup_size;
	/* The header's own sizes, each against the file: a kernel cut short
	 * would otherwise be entered and fault in the guest. The file may
	 * hold more (a signature appended), never less. */
	bz->syssize = rd32(img + HDR_SYSSIZE);
	if (!bz->syssize) {
		*why = "corrupt: the setup header's syssize (0x1f4) is zero";
		return -ENOEXEC;
	}
	if ((uint64_t)bz->syssize * 16 > bz->kernel_size) {
		*why = "truncated: the file is shorter than its setup header's syssize (0x1f4) says";
		return -ENOEXEC;
	}
	bz->payload_offset = rd32(img + HDR_PAYLOAD_OFFSET);
	bz->payload_length = rd32(img + HDR_PAYLOAD_LENGTH);
	if ((uint64_t)bz->payload_offset + bz->payload_length > (uint64_t)bz->syssize * 16) {
		*why = "truncated or corrupt: the compressed kernel (payload_offset 0x248, payload_length 0x24c) "
		       "runs past the kernel's syssize";
		return -ENOEXEC;
	}
	if (bz->version >= 0x020f && bz->hdr_end >= HDR_KERNEL_INFO_OFFSET + 4) {
		uint32_t info = rd32(img + HDR_KERNEL_INFO_OFFSET);

		if (info && (uint64_t)info + KERNEL_INFO_HEADER > (uint64_t)bz->syssize * 16) {
			*why = "truncated or corrupt: kernel_info_offset (0x268) points past the kernel's syssize";
			return -ENOEXEC;
		}
	}
	bz->initrd_addr_max = rd32(img + HDR_INITRD_ADDR_MAX);
	bz->cmdline_size = rd32(img + HDR_CMDLINE_SIZE);
	bz->init_size = rd32(img + HDR_INIT_SIZE);
	if (bz->init_size < bz->kernel_size) {
		*why = "truncated or corrupt: init_size is smaller than the kernel";
		return -ENOEXEC;
	}
	return 0;
}

unsigned int boot_e820_map(const struct guestmem *mem, struct boot_e820 *map, unsigned int max)
{
	unsigned int n = 0;

#define E820_ADD(a, s, t) do { if (n < max) map[n++] = (struct boot_e820){ (a), (s), (t) }; } while (0)
	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct guestmem_region *r = &mem->regions[i];

		if (r->gpa == 0 && r->size > LAYOUT_HIGH_MEM_ADDR) {
			E820_ADD(0, LAYOUT_EBDA_ADDR, E820_RAM);
			E820_ADD(LAYOUT_EBDA_ADDR, LAYOUT_HIGH_MEM_ADDR - LAYOUT_EBDA_ADDR, E820_RESERVED);
			E820_ADD(LAYOUT_HIGH_MEM_ADDR, r->size - LAYOUT_HIGH_MEM_ADDR, E820_RAM);
		} else {
			E820_ADD(r->gpa, r->size, E820_RAM);
		}
	}
#undef E820_ADD
	return n;
}

bool boot_is_elf(const uint8_t *hdr, size_t hdr_len)
{
	return hdr_len >= 4 && !memcmp(hdr, "\177ELF", 4);
}

#define ELF_HDR_LEN     64
#define ELF_PHDR_LEN    56
#define ELF_PT_LOAD     1

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

int boot_parse_elf(const uint8_t *h, size_t hdr_len, uint64_t size, struct boot_elf *elf, const char **why)
{
	uint64_t phoff;
	unsigned int phnum;
	bool entry_in = false;

	memset(elf, 0, sizeof(*elf));
	if (hdr_len < ELF_HDR_LEN || size < ELF_HDR_LEN) {
		*why = "too short to hold an ELF header";
		return -ENOEXEC;
	}
	if (h[4] != 2 || h[5] != 1 || rd16(h + 18) != 62) {
		*why = "not a 64-bit little-endian x86-64 ELF executable";
		return -ENOEXEC;
	}
	if (rd16(h + 16) != 2) {
		*why = "an ELF file but not an executable (a vmlinux is ET_EXEC)";
		return -ENOEXEC;
	}
	phoff = rd64(h + 32);
	phnum = rd16(h + 56);
	if (rd16(h + 54) != ELF_PHDR_LEN || !phnum || phoff > hdr_len ||
	    (uint64_t)phnum * ELF_PHDR_LEN > hdr_len - phoff) {
		*why = "ELF program headers missing or past the first 4 KiB";
		return -ENOEXEC;
	}
	elf->entry = rd64(h + 24);
	for (unsigned int i = 0; i < phnum; i++) {
		const uint8_t *ph = h + phoff + (uint64_t)i * ELF_PHDR_LEN;
		struct boot_elf_seg s = { rd64(ph + 8), rd64(ph + 24), rd64(ph + 32), rd64(ph + 40) };

		if (rd32(ph) != ELF_PT_LOAD || !s.memsz)
			continue;
		if (elf->nseg == BOOT_ELF_MAX_SEGMENTS) {
			*why = "more ELF segments to load than a kernel has";
			return -ENOEXEC;
		}
		if (s.filesz > s.memsz || s.offset > size || s.filesz > size - s.offset) {
			*why = "an ELF segment lies past the end of the file";
			return -ENOEXEC;
		}
		/* Physical addresses from 1 MiB up, below the 32-bit hole. */
		if (s.paddr < LAYOUT_HIGH_MEM_ADDR || s.paddr >= LAYOUT_MMIO_HOLE_ADDR ||
		    s.memsz > LAYOUT_MMIO_HOLE_ADDR - s.paddr) {
			*why = "an ELF segment loads outside 1 MiB to 3 GiB (is this a vmlinux?)";
			return -ENOEXEC;
		}
		if (elf->entry >= s.paddr && elf->entry - s.paddr < s.memsz)
			entry_in = true;
		elf->end = MAX(elf->end, s.paddr + s.memsz);
		elf->seg[elf->nseg++] = s;
	}
	if (!elf->nseg) {
		*why = "an ELF file with nothing to load";
		return -ENOEXEC;
	}
	if (!entry_in) {
		*why = "the ELF entry point is in none of its segments";
		return -ENOEXEC;
	}
	return 0;
}

int boot_check_kernel(const uint8_t *hdr, size_t hdr_len, uint64_t size, const char **why)
{
	struct boot_elf elf;
	struct bzimage bz;

	if (boot_is_elf(hdr, hdr_len))
		return boot_parse_elf(hdr, hdr_len, size, &elf, why);
	return boot_parse_bzimage(hdr, hdr_len, size, &bz, why);
}

/* What the two kinds of kernel give the rest of the loading. */
struct boot_kernel {
	uint64_t end;              /* guest memory the kernel takes, from 0 */
	uint64_t initrd_max;       /* the initrd's last byte may be here */
	uint32_t cmdline_max;      /* longest command line */
	uint64_t entry;
	bool unpacked;
	uint64_t unpack_ns;
};

static int boot_load_bzimage(const struct guestmem *mem, const struct boot_linux *p, const uint8_t *hdr,
			     size_t hdr_len, uint8_t *zp, struct boot_kernel *k, char *err, size_t errlen)
{
	struct bzimage bz;
	const char *why = NULL;
	uint8_t *dst;
	int r;

	r = boot_parse_bzimage(hdr, hdr_len, p->kernel.size, &bz, &why);
	if (r < 0) {
		snprintf(err, errlen, "%s", why);
		return r;
	}
	k->initrd_max = bz.initrd_addr_max;
	k->cmdline_max = bz.cmdline_size;
	memcpy(zp + HDR_SETUP_SECTS, hdr + HDR_SETUP_SECTS, bz.hdr_end - HDR_SETUP_SECTS);
	zp[HDR_LOADFLAGS] = (uint8_t)(bz.loadflags | CAN_USE_HEAP);
	memcpy(zp + HDR_HEAP_END_PTR, &(uint16_t){ 0xfe00 }, 2);
	if (!p->guest_decompress && bz.payload_length) {
		struct boot_elf elf;
		uint64_t t0 = util_now_ns();

		r = boot_unpack_vmlinux(mem, &p->kernel, bz.kernel_offset + bz.payload_offset, bz.payload_length,
					mem->regions[0].size, &elf, err, errlen);
		if (r < 0)
			return r;
		if (r == 1) {
			/* The kernel proper, entered as the decompressor would. */
			k->end = elf.end;
			k->entry = elf.entry;
			k->unpacked = true;
			k->unpack_ns = util_now_ns() - t0;
			return 0;
		}
	}
	k->end = LAYOUT_HIGH_MEM_ADDR + MAX((uint64_t)bz.init_size, (uint64_t)bz.kernel_size);
	k->entry = LAYOUT_HIGH_MEM_ADDR + 0x200;   /* startup_64 */
	if (k->end > mem->regions[0].size) {
		snprintf(err, errlen, "the kernel needs %llu MiB to decompress; give the guest more --memory",
			 (unsigned long long)((k->end + (1 << 20) - 1) >> 20));
		return -ENOMEM;
	}
	dst = guestmem_ptr(mem, LAYOUT_HIGH_MEM_ADDR, bz.kernel_size);
	if (!dst) {
		snprintf(err, errlen, "guest memory too small for the boot structures");
		return -ENOMEM;
	}
	r = boot_blob_read(&p->kernel, bz.kernel_offset, dst, bz.kernel_size);
	if (r < 0) {
		snprintf(err, errlen, "reading the kernel: %s", strerror(-r));
		return r;
	}
	return 0;
}

static int boot_load_elf(const struct guestmem *mem, const struct boot_linux *p, const uint8_t *hdr,
			 size_t hdr_len, uint8_t *zp, struct boot_kernel *k, char *err, size_t errlen)
{
	struct boot_elf elf;
	const char *why = NULL;
	int r;

	r = boot_parse_elf(hdr, hdr_len, p->kernel.size, &elf, &why);
	if (r < 0) {
		snprintf(err, errlen, "%s", why);
		return r;
	}
	k->end = elf.end;
	k->initrd_max = UINT32_MAX;
	k->cmdline_max = (uint32_t)LAYOUT_CMDLINE_MAX - 1;
	k->entry = elf.entry;
	if (k->end > mem->regions[0].size) {
		snprintf(err, errlen, "the kernel takes %llu MiB; give the guest more memory",
			 (unsigned long long)((k->end + (1 << 20) - 1) >> 20));
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < elf.nseg; i++) {
		const struct boot_elf_seg *s = &elf.seg[i];
		uint8_t *dst = guestmem_ptr(mem, s->paddr, s->memsz);

		if (!dst) {
			snprintf(err, errlen, "an ELF segment lands outside guest memory");
			return -ENOMEM;
		}
		r = boot_blob_read(&p->kernel, s->offset, dst, s->filesz);
		if (r < 0) {
			snprintf(err, errlen, "reading the kernel: %s", strerror(-r));
			return r;
		}
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	/* No setup header in a vmlinux: the fields a loader fills, as for a
	 * bzImage of protocol 2.12 loaded high. */
	memcpy(zp + HDR_BOOT_FLAG, &(uint16_t){ 0xaa55 }, 2);
	memcpy(zp + HDR_HEADER, "HdrS", 4);
	memcpy(zp + HDR_VERSION, &(uint16_t){ 0x020c }, 2);
	zp[HDR_LOADFLAGS] = LOADED_HIGH;
	memcpy(zp + HDR_KERNEL_ALIGNMENT, &(uint32_t){ 0x01000000 }, 4);
	memcpy(zp + HDR_CMDLINE_SIZE, &(uint32_t){ k->cmdline_max }, 4);
	return 0;
}

int boot_load_linux(const struct guestmem *mem, const struct boot_linux *p,
		    struct boot_entry *out, char *err, size_t errlen)
{
	struct boot_e820 e820[BOOT_E820_MAX];
	uint8_t hdr[BOOT_HDR_BYTES];
	size_t hdr_len = (size_t)MIN(p->kernel.size, (uint64_t)sizeof(hdr));
	struct boot_kernel k = { 0 };
	uint8_t *zp;
	uint64_t low_end, initrd_addr = 0, top;
	size_t cmdlen = strlen(p->cmdline);
	unsigned int n;
	int r;

	r = boot_blob_read(&p->kernel, 0, hdr, hdr_len);
	if (r < 0) {
		snprintf(err, errlen, "reading the kernel: %s", strerror(-r));
		return r;
	}
	if (mem->nregions == 0 || mem->regions[0].gpa != 0) {
		snprintf(err, errlen, "no RAM at address 0");
		return -EINVAL;
	}
	low_end = mem->regions[0].size;
	zp = guestmem_ptr(mem, LAYOUT_ZERO_PAGE_ADDR, BP_SIZE);
	if (!zp) {
		snprintf(err, errlen, "guest memory too small for the boot structures");
		return -ENOMEM;
	}
	memset(zp, 0, BP_SIZE);
	r = boot_is_elf(hdr, hdr_len) ? boot_load_elf(mem, p, hdr, hdr_len, zp, &k, err, errlen)
				       : boot_load_bzimage(mem, p, hdr, hdr_len, zp, &k, err, errlen);
	if (r < 0)
		return r;
	if (cmdlen > k.cmdline_max || cmdlen >= LAYOUT_CMDLINE_MAX) {
		snprintf(err, errlen, "command line is %zu bytes; this kernel takes at most %u",
			 cmdlen, MIN(k.cmdline_max, (uint32_t)LAYOUT_CMDLINE_MAX - 1));
		return -E2BIG;
	}

	if (p->initrd.size) {
		uint64_t isize = p->initrd.size;
		void *idst;

		top = MIN(low_end, k.initrd_max + 1);
		if (isize > top || ((top - isize) & ~0xfffULL) < k.end) {
			snprintf(err, errlen,
				 "initrd (%llu MiB) does not fit in guest memory beside the kernel; give the guest more --memory",
				 (unsigned long long)((isize + (1 << 20) - 1) >> 20));
			return -ENOMEM;
		}
		initrd_addr = (top - isize) & ~0xfffULL;
		idst = guestmem_ptr(mem, initrd_addr, isize);
		if (!idst) {
			snprintf(err, errlen, "initrd lands outside guest memory");
			return -ENOMEM;
		}
		r = boot_blob_read(&p->initrd, 0, idst, isize);
		if (r < 0) {
			snprintf(err, errlen, "reading the initrd: %s", strerror(-r));
			return r;
		}
	}
	if (guestmem_write(mem, LAYOUT_CMDLINE_ADDR, p->cmdline, cmdlen + 1) < 0) {
		snprintf(err, errlen, "guest memory too small for the command line");
		return -ENOMEM;
	}

	zp[HDR_TYPE_OF_LOADER] = 0xff;
	memcpy(zp + HDR_CMD_LINE_PTR, &(uint32_t){ (uint32_t)LAYOUT_CMDLINE_ADDR }, 4);
	memcpy(zp + HDR_RAMDISK_IMAGE, &(uint32_t){ (uint32_t)initrd_addr }, 4);
	memcpy(zp + HDR_RAMDISK_SIZE, &(uint32_t){ initrd_addr ? (uint32_t)p->initrd.size : 0 }, 4);
	memcpy(zp + BP_ACPI_RSDP_ADDR, &p->rsdp_addr, 8);
	n = boot_e820_map(mem, e820, BOOT_E820_MAX);
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + BP_E820_TABLE, e820, n * sizeof(e820[0]));

	out->rip = k.entry;
	out->rsi = LAYOUT_ZERO_PAGE_ADDR;
	out->initrd_addr = initrd_addr;
	out->unpacked = k.unpacked;
	out->unpack_ns = k.unpack_ns;
	return 0;
}

bool boot_cmdline_acpi_off(const char *cmdline)
{
	const char *p = cmdline;

	while ((p = strstr(p, "acpi=off"))) {
		bool starts = p == cmdline || p[-1] == ' ' || p[-1] == '\t';
		char after = p[8];

		if (starts && (after == 0 || after == ' ' || after == '\t'))
			return true;
		p += 8;
	}
	return false;
}

int boot_cmdline_mmio_devices(const char *cmdline, const struct acpi_mmio_dev *devs, unsigned int n, char *out,
			      size_t len)
{
	size_t used = (size_t)snprintf(out, len, "%s", cmdline);

	if (used >= len)
		return -ENOSPC;
	for (unsigned int i = 0; i < n; i++) {
		used += (size_t)snprintf(out + used, len - used, " virtio_mmio.device=%uK@0x%llx:%u",
					 devs[i].size >> 10, (unsigned long long)devs[i].base, devs[i].gsi);
		if (used >= len)
			return -ENOSPC;
	}
	return 0;
}

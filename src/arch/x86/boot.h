/* The Linux x86 boot protocol: parsing a bzImage's setup header and laying
 * kernel, zero page, command line, initrd and e820 map into guest memory for
 * the 64-bit entry point. Parsing is pure and fuzzed: the image is untrusted. */
#ifndef NESTVM_ARCH_X86_BOOT_H
#define NESTVM_ARCH_X86_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/acpi.h"
#include "guestmem.h"

struct bzimage {
	uint16_t version;          /* boot protocol, e.g. 0x020f */
	uint8_t loadflags;
	uint16_t xloadflags;
	size_t setup_size;         /* boot sector + setup sectors, in bytes */
	size_t hdr_end;            /* end of the setup header within the image */
	uint64_t kernel_offset;    /* the protected-mode kernel, in the file */
	uint64_t kernel_size;      /* the rest of the file, loaded whole */
	uint32_t syssize;          /* the kernel's size in 16-byte units, per the header */
	uint32_t payload_offset;   /* the compressed kernel in it (0, 0: not given) */
	uint32_t payload_length;
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;     /* longest command line, without the NUL */
	uint32_t init_size;        /* memory the kernel needs from its load address */
};

/* The parser needs this much of the image's start (or all of a shorter one). */
#define BOOT_HDR_BYTES 4096

/* Checks and decodes a bzImage of size bytes whose first hdr_len bytes are
 * in hdr: every size and offset in its header lies within the file. On
 * failure returns -ENOEXEC and points *why at a sentence naming the problem. */
__attribute__((warn_unused_result))
int boot_parse_bzimage(const uint8_t *hdr, size_t hdr_len, uint64_t size,
		       struct bzimage *bz, const char **why);

/* An uncompressed ELF vmlinux, what Firecracker boots on x86: its loadable
 * segments at their physical addresses, entered in 64-bit mode at e_entry
 * with the zero page in rsi, like a bzImage's startup_64. */
#define BOOT_ELF_MAX_SEGMENTS 16
struct boot_elf_seg {
	uint64_t offset, paddr, filesz, memsz;
};
struct boot_elf {
	uint64_t entry;
	uint64_t end;              /* the highest byte any segment takes, plus one */
	unsigned int nseg;
	struct boot_elf_seg seg[BOOT_ELF_MAX_SEGMENTS];
};

bool boot_is_elf(const uint8_t *hdr, size_t hdr_len);
/* Checks and decodes an ELF64 x86-64 executable of size bytes whose
 * program headers lie in its first hdr_len bytes: -ENOEXEC with *why. */
__attribute__((warn_unused_result))
int boot_parse_elf(const uint8_t *hdr, size_t hdr_len, uint64_t size, struct boot_elf *elf, const char **why);
/* A kernel nestvm boots: an ELF vmlinux or a bzImage. -ENOEXEC with *why. */
__attribute__((warn_unused_result))
int boot_check_kernel(const uint8_t *hdr, size_t hdr_len, uint64_t size, const char **why);

/* Bytes the loader copies into the guest: a buffer, or a file read in place
 * so that a large kernel or initrd never sits in the VMM's own memory. */
struct boot_blob {
	const uint8_t *data;       /* the whole contents, or NULL to read fd */
	int fd;
	uint64_t size;
};

#define BOOT_BLOB_MEM(p, n) ((struct boot_blob){ .data = (p), .fd = -1, .size = (n) })

/* Opens a kernel or initrd file to read in place: a regular file only (a
 * FIFO would hang the loader, a directory or device has no size), without
 * ever blocking. -errno with *why a sentence (fd -1 then). */
__attribute__((warn_unused_result))
int boot_blob_open(struct boot_blob *b, const char *path, const char **why);

__attribute__((warn_unused_result))
int boot_blob_read(const struct boot_blob *b, uint64_t off, void *dst, uint64_t len);

struct boot_linux {
	struct boot_blob kernel;
	struct boot_blob initrd;   /* size 0: none */
	const char *cmdline;
	uint64_t rsdp_addr;
	bool guest_decompress;     /* a bzImage decompresses itself, as guest code */
};

/* Unpacks a bzImage's compressed vmlinux, the len bytes at off in kernel,
 * into guest memory at its segments' addresses, below limit (the end of low
 * RAM), so that the guest can enter it at elf->entry. 1: done; 0: not this
 * way (a compressor not handled here, too little memory, an odd layout:
 * the guest's own decompressor is to run); -errno with err if the payload
 * is corrupt. Formats: Linux's LZ4 framing. (arch/x86/unpack.c) */
MUST_CHECK int boot_unpack_vmlinux(const struct guestmem *mem, const struct boot_blob *kernel, uint64_t off,
				   uint64_t len, uint64_t limit, struct boot_elf *elf, char *err, size_t errlen);

/* Whether the command line turns ACPI off: "acpi=off" as a word. */
bool boot_cmdline_acpi_off(const char *cmdline);
/* cmdline with " virtio_mmio.device=<size>@<base>:<irq>" appended for each
 * device, which is how a kernel that reads no ACPI finds them. 0, or
 * -ENOSPC if out (len bytes) is too small. */
MUST_CHECK int boot_cmdline_mmio_devices(const char *cmdline, const struct acpi_mmio_dev *devs, unsigned int n,
					 char *out, size_t len);

struct boot_entry {
	uint64_t rip;
	uint64_t rsi;              /* zero page */
	uint64_t initrd_addr;
	bool unpacked;             /* the bzImage's kernel was decompressed by nestvm */
	uint64_t unpack_ns;        /* in this long */
};

/* Loads everything into guest memory. On failure returns -errno and writes a
 * one-line reason into err. */
__attribute__((warn_unused_result))
int boot_load_linux(const struct guestmem *mem, const struct boot_linux *p,
		    struct boot_entry *out, char *err, size_t errlen);

#define E820_RAM       1
#define E820_RESERVED  2
#define BOOT_E820_MAX  128

struct boot_e820 {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* The e820 map for a guest memory layout; returns the number of entries. */
unsigned int boot_e820_map(const struct guestmem *mem, struct boot_e820 *map, unsigned int max);

#endif

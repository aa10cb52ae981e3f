/* Tier 1: the bzImage parser and Linux loader against made-up images. */
#include "harness.h"
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "fake_bzimage.h"

#include <errno.h>
#include <stdlib.h>

HARNESS_DEFINE;

#define SETUP FAKE_BZIMAGE_SETUP

static uint8_t *make_image(size_t kernel_size, size_t *len)
{
	uint8_t *img = fake_bzimage(NULL, 0, kernel_size, len);

	CHECK(img);
	return img;
}

static void expect_reject(const uint8_t *img, size_t len, const char *needle)
{
	struct bzimage bz;
	const char *why = NULL;

	CHECK_EQ(boot_parse_bzimage(img, len, len, &bz, &why), -ENOEXEC);
	CHECK(why);
	if (!strstr(why, needle))
		FAILF("reason '%s' does not mention '%s'", why, needle);
}

static void test_parse_good_image(void)
{
	size_t len;
	uint8_t *img = make_image(4096, &len);
	struct bzimage bz;
	const char *why = NULL;

	CHECK_EQ(boot_parse_bzimage(img, len, len, &bz, &why), 0);
	CHECK_EQ(bz.version, 0x020f);
	CHECK_EQ(bz.setup_size, SETUP);
	CHECK_EQ(bz.kernel_size, 4096);
	CHECK_EQ(bz.kernel_offset, SETUP);
	CHECK_EQ(bz.cmdline_size, 255);
	free(img);
}

static void test_parse_rejects_bad_images(void)
{
	size_t len;
	uint8_t *img = make_image(4096, &len);

	expect_reject(img, 100, "too short");
	expect_reject(img, SETUP, "truncated");
	img[0x202] = 'X';
	expect_reject(img, len, "HdrS");
	img[0x202] = 'H';
	img[0x1fe] = 0;
	expect_reject(img, len, "boot flag");
	img[0x1fe] = 0x55;
	img[0x206] = 0x0b;
	expect_reject(img, len, "2.12");
	img[0x206] = 0x0f;
	img[0x211] = 0;
	expect_reject(img, len, "zImage");
	img[0x211] = 1;
	img[0x236] = 0;
	expect_reject(img, len, "64-bit");
	img[0x236] = 1;
	img[0x201] = 0x10;
	expect_reject(img, len, "header length");
	img[0x201] = 0x6a;
	img[0x1f1] = 200;                    /* setup sectors past the end */
	expect_reject(img, len, "truncated");
	img[0x1f1] = 7;
	memset(img + 0x260, 0, 4);           /* init_size below kernel size */
	expect_reject(img, len, "init_size");
	free(img);
}

static void test_setup_sects_zero_means_four(void)
{
	size_t len;
	uint8_t *img = make_image(8192, &len);
	struct bzimage bz;
	const char *why;

	img[0x1f1] = 0;
	CHECK_EQ(boot_parse_bzimage(img, len, len, &bz, &why), 0);
	CHECK_EQ(bz.setup_size, 5 * 512);
	free(img);
}

static struct guestmem mem_of(uint64_t size)
{
	struct guestmem m = { 0 };
	uint64_t low = size < LAYOUT_MMIO_HOLE_ADDR ? size : LAYOUT_MMIO_HOLE_ADDR;

	CHECK_EQ(guestmem_add(&m, 0, low), 0);
	if (size > low)
		CHECK_EQ(guestmem_add(&m, LAYOUT_MMIO_HOLE_END, size - low), 0);
	return m;
}

static void test_e820_layout(void)
{
	struct guestmem m = mem_of(4ULL << 30);
	struct boot_e820 map[8];
	unsigned int n = boot_e820_map(&m, map, 8);

	CHECK_EQ(n, 4);
	CHECK_EQ(map[0].addr, 0);
	CHECK_EQ(map[0].size, LAYOUT_EBDA_ADDR);
	CHECK_EQ(map[0].type, E820_RAM);
	CHECK_EQ(map[1].type, E820_RESERVED);
	CHECK_EQ(map[1].addr + map[1].size, LAYOUT_HIGH_MEM_ADDR);
	CHECK_EQ(map[2].addr, LAYOUT_HIGH_MEM_ADDR);
	CHECK_EQ(map[2].addr + map[2].size, LAYOUT_MMIO_HOLE_ADDR);
	CHECK_EQ(map[3].addr, LAYOUT_MMIO_HOLE_END);
	CHECK_EQ(map[3].size, 1ULL << 30);
	CHECK_EQ(boot_e820_map(&m, map, 2), 2);      /* never past max */
	guestmem_free(&m);
}

static void test_load_places_everything(void)
{
	struct guestmem m = mem_of(64 << 20);
	size_t len;
	uint8_t *img = make_image(4096, &len);
	static const uint8_t initrd[5000] = { 7, 7, 7 };
	struct boot_linux bl = {
		.kernel = BOOT_BLOB_MEM(img, len), .initrd = BOOT_BLOB_MEM(initrd, sizeof(initrd)),
		.cmdline = "console=ttyS0", .rsdp_addr = LAYOUT_ACPI_ADDR,
	};
	struct boot_entry e;
	char err[128];
	uint8_t *zp;
	uint32_t v;

	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), 0);
	CHECK_EQ(e.rip, LAYOUT_HIGH_MEM_ADDR + 0x200);
	CHECK_EQ(e.rsi, LAYOUT_ZERO_PAGE_ADDR);
	CHECK_EQ(e.initrd_addr & 0xfff, 0);
	CHECK(e.initrd_addr + sizeof(initrd) <= (64 << 20));
	CHECK(!memcmp(guestmem_ptr(&m, e.initrd_addr, 3), initrd, 3));
	CHECK_STR((char *)guestmem_ptr(&m, LAYOUT_CMDLINE_ADDR, 14), "console=ttyS0");
	CHECK(!memcmp(guestmem_ptr(&m, LAYOUT_HIGH_MEM_ADDR, 4096), img + SETUP, 4096));
	zp = guestmem_ptr(&m, LAYOUT_ZERO_PAGE_ADDR, 4096);
	CHECK_EQ(zp[0x210], 0xff);                       /* type_of_loader */
	CHECK(zp[0x211] & 0x80);                         /* CAN_USE_HEAP */
	memcpy(&v, zp + 0x228, 4);
	CHECK_EQ(v, LAYOUT_CMDLINE_ADDR);
	memcpy(&v, zp + 0x218, 4);
	CHECK_EQ(v, e.initrd_addr);
	memcpy(&v, zp + 0x21c, 4);
	CHECK_EQ(v, sizeof(initrd));
	memcpy(&v, zp + 0x70, 4);
	CHECK_EQ(v, LAYOUT_ACPI_ADDR);
	CHECK_EQ(zp[0x1e8], 3);
	free(img);
	guestmem_free(&m);
}

static void test_load_refuses_what_does_not_fit(void)
{
	struct guestmem m = mem_of(16 << 20);
	size_t len;
	uint8_t *img = make_image(4096, &len);
	uint8_t *big = calloc(1, 15 << 20);
	char longline[300];
	struct boot_linux bl = { .kernel = BOOT_BLOB_MEM(img, len), .cmdline = "" };
	struct boot_entry e;
	char err[160];

	CHECK(big);
	bl.initrd = BOOT_BLOB_MEM(big, 15 << 20);
	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), -ENOMEM);
	CHECK(strstr(err, "initrd"));
	CHECK(strstr(err, "--memory"));

	bl.initrd = BOOT_BLOB_MEM(NULL, 0);
	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = 0;
	bl.cmdline = longline;
	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), -E2BIG);
	CHECK(strstr(err, "at most 255"));

	bl.cmdline = "";
	memset(img + 0x260, 0xff, 3);                     /* init_size ~16 MiB */
	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), -ENOMEM);
	CHECK(strstr(err, "decompress"));
	free(big);
	free(img);
	guestmem_free(&m);
}

static void test_guestmem_bounds(void)
{
	struct guestmem m = mem_of(16 << 20);
	uint8_t b[16];

	CHECK(guestmem_ptr(&m, 0, 16 << 20));
	/* RAM starts on a 2 MiB boundary, so huge pages can back it. */
	CHECK_EQ((uintptr_t)m.regions[0].host & ((2 << 20) - 1), 0);
	CHECK(!guestmem_ptr(&m, 0, (16 << 20) + 1));
	CHECK(!guestmem_ptr(&m, (16 << 20) - 1, 2));
	CHECK(!guestmem_ptr(&m, UINT64_MAX - 4, 8));
	CHECK(!guestmem_ptr(&m, 8, UINT64_MAX));
	CHECK_EQ(guestmem_read(&m, 1ULL << 40, b, 1), -EFAULT);
	CHECK_EQ(guestmem_write(&m, (16 << 20) - 8, b, 16), -EFAULT);
	guestmem_free(&m);
}

/* A made-up vmlinux: ELF64 header, program headers (a note to skip and
 * two loads, the second with a zero-filled tail), then the bytes. */
#define ELF_LEN 0x3000
static uint8_t *make_elf(void)
{
	uint8_t *f = calloc(1, ELF_LEN);
	uint8_t *ph;

	CHECK(f);
	memcpy(f, "\177ELF", 4);
	f[4] = 2;                                       /* 64-bit */
	f[5] = 1;                                       /* little-endian */
	f[6] = 1;
	f[16] = 2;                                      /* ET_EXEC */
	f[18] = 62;                                     /* x86-64 */
	*(uint64_t *)(f + 24) = 0x1000000;              /* entry: startup_64 */
	*(uint64_t *)(f + 32) = 64;                     /* phoff */
	*(uint16_t *)(f + 54) = 56;
	*(uint16_t *)(f + 56) = 3;
	ph = f + 64;
	*(uint32_t *)ph = 4;                            /* PT_NOTE */
	ph += 56;
	*(uint32_t *)ph = 1;
	*(uint64_t *)(ph + 8) = 0x1000;                 /* offset */
	*(uint64_t *)(ph + 24) = 0x1000000;             /* paddr */
	*(uint64_t *)(ph + 32) = 0x1000;
	*(uint64_t *)(ph + 40) = 0x1000;
	ph += 56;
	*(uint32_t *)ph = 1;
	*(uint64_t *)(ph + 8) = 0x2000;
	*(uint64_t *)(ph + 24) = 0x1200000;
	*(uint64_t *)(ph + 32) = 0x1000;
	*(uint64_t *)(ph + 40) = 0x3000;                /* .bss after it */
	memset(f + 0x1000, 0xaa, 0x1000);
	memset(f + 0x2000, 0xbb, 0x1000);
	return f;
}

static void expect_elf_reject(const uint8_t *f, size_t len, const char *needle)
{
	struct boot_elf elf;
	const char *why = NULL;

	CHECK_EQ(boot_parse_elf(f, len, len, &elf, &why), -ENOEXEC);
	if (!why || !strstr(why, needle))
		FAILF("reason '%s' does not mention '%s'", why ? why : "(none)", needle);
}

static void test_elf_vmlinux(void)
{
	struct guestmem m = mem_of(64 << 20);
	uint8_t *f = make_elf(), *zp, *p;
	struct boot_linux bl = { .kernel = BOOT_BLOB_MEM(f, ELF_LEN), .cmdline = "console=ttyS0 acpi=off",
				 .rsdp_addr = LAYOUT_ACPI_ADDR };
	struct boot_entry e;
	struct boot_elf elf;
	const char *why;
	char err[128];
	uint32_t v;

	CHECK(boot_is_elf(f, ELF_LEN));
	CHECK_EQ(boot_parse_elf(f, ELF_LEN, ELF_LEN, &elf, &why), 0);
	CHECK_EQ(elf.nseg, 2);
	CHECK_EQ(elf.end, 0x1203000);
	CHECK_EQ(boot_check_kernel(f, ELF_LEN, ELF_LEN, &why), 0);
	memset(guestmem_ptr(&m, 0x1201000, 0x2000), 0x55, 0x2000);     /* the loader clears it */
	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), 0);
	CHECK_EQ(e.rip, 0x1000000);
	CHECK_EQ(e.rsi, LAYOUT_ZERO_PAGE_ADDR);
	p = guestmem_ptr(&m, 0x1000000, 0x1000);
	CHECK(p[0] == 0xaa && p[0xfff] == 0xaa);
	p = guestmem_ptr(&m, 0x1200000, 0x3000);
	CHECK(p[0] == 0xbb && p[0xfff] == 0xbb && p[0x1000] == 0 && p[0x2fff] == 0);
	zp = guestmem_ptr(&m, LAYOUT_ZERO_PAGE_ADDR, 4096);
	CHECK(!memcmp(zp + 0x202, "HdrS", 4));
	CHECK_EQ(zp[0x1fe] | zp[0x1ff] << 8, 0xaa55);
	CHECK_EQ(zp[0x210], 0xff);
	memcpy(&v, zp + 0x228, 4);
	CHECK_EQ(v, LAYOUT_CMDLINE_ADDR);
	CHECK_STR((char *)guestmem_ptr(&m, LAYOUT_CMDLINE_ADDR, 24), "console=ttyS0 acpi=off");
	/* Too little memory for where it loads. */
	guestmem_free(&m);
	m = mem_of(16 << 20);
	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), -ENOMEM);
	CHECK(strstr(err, "give the guest more memory"));
	guestmem_free(&m);
	/* Refusals. */
	expect_elf_reject(f, 40, "too short");
	f[4] = 1;
	expect_elf_reject(f, ELF_LEN, "64-bit");
	f[4] = 2;
	f[16] = 3;
	expect_elf_reject(f, ELF_LEN, "not an executable");
	f[16] = 2;
	*(uint64_t *)(f + 24) = 0x5000000;
	expect_elf_reject(f, ELF_LEN, "entry point");
	*(uint64_t *)(f + 24) = 0x1000000;
	*(uint64_t *)(f + 64 + 56 + 24) = 0x1000;       /* below 1 MiB */
	expect_elf_reject(f, ELF_LEN, "outside 1 MiB");
	*(uint64_t *)(f + 64 + 56 + 24) = 0xfffffffffffff000ULL;
	expect_elf_reject(f, ELF_LEN, "outside 1 MiB");
	*(uint64_t *)(f + 64 + 56 + 24) = 0x1000000;
	*(uint64_t *)(f + 64 + 56 + 32) = ELF_LEN;      /* filesz past the end */
	expect_elf_reject(f, ELF_LEN, "past the end");
	*(uint64_t *)(f + 64 + 56 + 32) = 0x1000;
	*(uint16_t *)(f + 56) = 1000;                   /* headers past 4 KiB */
	expect_elf_reject(f, ELF_LEN, "program headers");
	free(f);
}

static void test_cmdline_devices(void)
{
	static const struct acpi_mmio_dev devs[] = {
		{ 0xd0000000, 0x1000, 16, "LNRO0005" }, { 0xd0001000, 0x1000, 17, "LNRO0005" },
	};
	char out[256];

	CHECK(boot_cmdline_acpi_off("console=ttyS0 acpi=off"));
	CHECK(boot_cmdline_acpi_off("acpi=off pci=off"));
	CHECK(!boot_cmdline_acpi_off("console=ttyS0"));
	CHECK(!boot_cmdline_acpi_off("acpi=offline"));
	CHECK(!boot_cmdline_acpi_off("xacpi=off"));
	CHECK_EQ(boot_cmdline_mmio_devices("console=ttyS0 acpi=off", devs, 2, out, sizeof(out)), 0);
	CHECK_STR(out, "console=ttyS0 acpi=off virtio_mmio.device=4K@0xd0000000:16 "
		       "virtio_mmio.device=4K@0xd0001000:17");
	CHECK_EQ(boot_cmdline_mmio_devices("console=ttyS0 acpi=off", devs, 2, out, 40), -ENOSPC);
}

int main(void)
{
	RUN(test_cmdline_devices);
	RUN(test_elf_vmlinux);
	RUN(test_parse_good_image);
	RUN(test_parse_rejects_bad_images);
	RUN(test_setup_sects_zero_means_four);
	RUN(test_e820_layout);
	RUN(test_load_places_everything);
	RUN(test_load_refuses_what_does_not_fit);
	RUN(test_guestmem_bounds);
	return HARNESS_END();
}

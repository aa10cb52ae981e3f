/* Tier 1: the bzImage parser and Linux loader against made-up images. */
#include "harness.h"
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "fake_bzimage.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

static void put32(uint8_t *img, size_t off, uint32_t v)
{
	memcpy(img + off, &v, 4);
}

/* A kernel laid out as a real one is: a compressed payload and a
 * kernel_info inside the syssize the header gives. */
#define REAL_KERNEL (64 << 10)
static uint8_t *make_real_image(size_t *len)
{
	uint8_t *img = make_image(REAL_KERNEL, len);

	put32(img, 0x248, 0x400);                        /* payload_offset */
	put32(img, 0x24c, REAL_KERNEL - 0x1000);         /* payload_length */
	put32(img, 0x268, REAL_KERNEL - 0x800);          /* kernel_info_offset */
	return img;
}

/* The kernel cut short at every length: at each header field's boundary,
 * inside the setup sectors, inside the payload, one byte from the end.
 * Each is refused by the parser and by the loader, never handed on to be
 * entered. */
static void test_truncated_anywhere(void)
{
	struct guestmem m = mem_of(64 << 20);
	size_t len;
	uint8_t *img = make_real_image(&len);
	struct bzimage bz;
	struct boot_entry entry;
	const char *why;
	char err[256];

	CHECK_EQ(boot_parse_bzimage(img, len, len, &bz, &why), 0);
	CHECK_EQ(bz.syssize, REAL_KERNEL / 16);
	for (size_t cut = 0; cut < len; cut++) {
		size_t hdr_len = cut < BOOT_HDR_BYTES ? cut : BOOT_HDR_BYTES;

		why = NULL;
		if (boot_parse_bzimage(img, hdr_len, cut, &bz, &why) != -ENOEXEC || !why || !why[0])
			FAILF("a kernel cut to %zu of its %zu bytes was accepted", cut, len);
		why = NULL;
		if (boot_check_kernel(img, hdr_len, cut, &why) != -ENOEXEC || !why)
			FAILF("boot_check_kernel took a kernel cut to %zu bytes", cut);
		if (cut % 509 == 0 || cut > len - 32) {    /* the loader, at a sample of lengths */
			struct boot_linux bl = { .kernel = BOOT_BLOB_MEM(img, cut), .cmdline = "" };

			err[0] = 0;
			CHECK(boot_load_linux(&m, &bl, &entry, err, sizeof(err)) < 0);
			CHECK(err[0] && !strchr(err, '\n'));
		}
	}
	/* What the message says at a few of them. */
	expect_reject(img, 0x1f4, "too short");
	expect_reject(img, 0x263, "too short");
	expect_reject(img, SETUP, "ends inside its setup sectors");
	expect_reject(img, SETUP + 1, "syssize");
	expect_reject(img, len - 1, "syssize");
	guestmem_free(&m);
	free(img);
}

static void test_header_sizes_checked(void)
{
	size_t len;
	uint8_t *img = make_real_image(&len);
	struct bzimage bz;
	const char *why;

	/* syssize past the file, zero, and as large as it goes (no wrap). */
	put32(img, 0x1f4, REAL_KERNEL / 16 + 1);
	expect_reject(img, len, "shorter than its setup header's syssize");
	put32(img, 0x1f4, 0);
	expect_reject(img, len, "syssize (0x1f4) is zero");
	put32(img, 0x1f4, UINT32_MAX);
	expect_reject(img, len, "syssize");
	put32(img, 0x1f4, REAL_KERNEL / 16);

	/* setup_sects pointing past the end of the file. */
	img[0x1f1] = 0xff;
	expect_reject(img, len, "ends inside its setup sectors");
	img[0x1f1] = 7;

	/* The payload past syssize, by one byte and by wrapping 32 bits. */
	put32(img, 0x24c, REAL_KERNEL - 0x400 + 1);
	expect_reject(img, len, "payload_offset");
	put32(img, 0x248, UINT32_MAX);
	put32(img, 0x24c, 2);
	expect_reject(img, len, "payload_offset");
	put32(img, 0x248, 0x400);
	put32(img, 0x24c, REAL_KERNEL - 0x400);          /* to the last byte: fine */
	CHECK_EQ(boot_parse_bzimage(img, len, len, &bz, &why), 0);

	/* kernel_info past syssize (protocol 2.15), or too near its end. */
	put32(img, 0x268, REAL_KERNEL - 4);
	expect_reject(img, len, "kernel_info_offset");
	put32(img, 0x268, UINT32_MAX);
	expect_reject(img, len, "kernel_info_offset");
	/* Before 2.15 the field is not the kernel's: not looked at. */
	img[0x206] = 0x0e;
	CHECK_EQ(boot_parse_bzimage(img, len, len, &bz, &why), 0);
	img[0x206] = 0x0f;
	put32(img, 0x268, 0);                            /* none */
	CHECK_EQ(boot_parse_bzimage(img, len, len, &bz, &why), 0);

	/* More file than syssize (a signature appended): loaded whole. */
	put32(img, 0x1f4, REAL_KERNEL / 16 - 64);
	put32(img, 0x24c, REAL_KERNEL - 0x800);
	CHECK_EQ(boot_parse_bzimage(img, len, len, &bz, &why), 0);
	CHECK_EQ(bz.kernel_size, REAL_KERNEL);
	free(img);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL test_blob_open_regular_only: opening a FIFO hung\n";

	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

/* Kernels and initrds are regular files: a FIFO, a directory or a device
 * is refused at once, never waited on. */
static void test_blob_open_regular_only(void)
{
	char dir[] = "/tmp/nestvm-test-boot-XXXXXX", path[64], link[64];
	struct boot_blob b;
	const char *why;
	int fd;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vmlinuz", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "12345", 5), 5);
	close(fd);
	CHECK_EQ(boot_blob_open(&b, path, &why), 0);
	CHECK(b.fd >= 0 && !b.data);
	CHECK_EQ(b.size, 5);
	CHECK_EQ(fcntl(b.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(b.fd);

	signal(SIGALRM, on_alarm);
	alarm(10);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	CHECK_EQ(mkfifo(path, 0600), 0);
	CHECK_EQ(boot_blob_open(&b, path, &why), -EINVAL);
	CHECK_STR(why, "not a regular file (a FIFO)");
	CHECK_EQ(b.fd, -1);
	snprintf(link, sizeof(link), "%s/link", dir);
	CHECK_EQ(symlink(path, link), 0);                /* through a link: the same */
	CHECK_EQ(boot_blob_open(&b, link, &why), -EINVAL);
	CHECK_STR(why, "not a regular file (a FIFO)");
	alarm(0);
	signal(SIGALRM, SIG_DFL);

	CHECK_EQ(boot_blob_open(&b, dir, &why), -EINVAL);
	CHECK_STR(why, "not a regular file (a directory)");
	CHECK_EQ(boot_blob_open(&b, "/dev/null", &why), -EINVAL);
	CHECK_STR(why, "not a regular file (a device or a socket)");
	snprintf(path, sizeof(path), "%s/none", dir);
	CHECK_EQ(boot_blob_open(&b, path, &why), -ENOENT);
	CHECK_STR(why, "No such file or directory");
	CHECK_EQ(b.fd, -1);
	harness_remove_tree(dir);
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


/* A vmlinux laid out as Debian's is: segments whose file offsets and
 * addresses differ by different amounts (the per-CPU one is packed), a
 * .bss past one segment's file bytes, and symbols after the last. */
#define UNPACK_ELF_LEN (0xc00000 + 0x1234)
static const struct { uint64_t off, paddr, filesz, memsz; } unpack_segs[] = {
	{ 0x200000, 0x1000000, 0x500000, 0x500000 },
	{ 0x800000, 0x1500000, 0x10000, 0x10000 },
	{ 0x900000, 0x1510000, 0x300000, 0x400000 },
};

static uint8_t *make_unpack_elf(void)
{
	uint8_t *f = calloc(1, UNPACK_ELF_LEN);
	uint32_t x = 12345;

	CHECK(f);
	memcpy(f, "\177ELF", 4);
	f[4] = 2;
	f[5] = 1;
	f[6] = 1;
	f[16] = 2;
	f[18] = 62;
	*(uint64_t *)(f + 24) = 0x1000000;
	*(uint64_t *)(f + 32) = 64;
	*(uint16_t *)(f + 54) = 56;
	*(uint16_t *)(f + 56) = 3;
	for (unsigned int i = 0; i < 3; i++) {
		uint8_t *ph = f + 64 + 56 * i;

		*(uint32_t *)ph = 1;
		*(uint64_t *)(ph + 8) = unpack_segs[i].off;
		*(uint64_t *)(ph + 24) = unpack_segs[i].paddr;
		*(uint64_t *)(ph + 32) = unpack_segs[i].filesz;
		*(uint64_t *)(ph + 40) = unpack_segs[i].memsz;
	}
	/* Bytes that compress somewhat, and differ everywhere. */
	for (size_t i = 0x1000; i < UNPACK_ELF_LEN; i++) {
		if (i % 64 == 0)
			x = x * 1103515245 + 12345;
		f[i] = (uint8_t)((x >> 16) + i / 64);
	}
	return f;
}

/* Linux's legacy LZ4 framing of f, its size appended: *len bytes. */
static uint8_t *lz4_legacy(const uint8_t *f, size_t n, size_t *len)
{
	size_t cap = 8 + n + n / 100 + 4096, at = 4;
	uint8_t *out = malloc(cap);
	uint32_t v = 0x184c2102;

	CHECK(out);
	memcpy(out, &v, 4);
	for (size_t done = 0; done < n;) {
		int chunk = (int)MIN(n - done, (size_t)8 << 20);
		int c = LZ4_compress_default((const char *)f + done, (char *)out + at + 4, chunk, (int)(cap - at - 8));

		CHECK(c > 0);
		v = (uint32_t)c;
		memcpy(out + at, &v, 4);
		at += 4 + (size_t)c;
		done += (size_t)chunk;
	}
	v = (uint32_t)n;
	memcpy(out + at, &v, 4);
	*len = at + 4;
	return out;
}

/* A bzImage around payload: its compressed kernel at payload_offset 0. */
static uint8_t *bzimage_with_payload(const uint8_t *payload, size_t plen, size_t *len)
{
	uint8_t *img = make_image(plen, len);
	uint32_t v = (uint32_t)plen;

	memcpy(img + SETUP, payload, plen);
	memcpy(img + 0x248, &(uint32_t){ 0 }, 4);
	memcpy(img + 0x24c, &v, 4);
	return img;
}

static void expect_unpack_error(const uint8_t *img, size_t len, const char *needle)
{
	struct guestmem m = mem_of(64 << 20);
	struct boot_linux bl = { .kernel = BOOT_BLOB_MEM(img, len), .cmdline = "console=ttyS0" };
	struct boot_entry e;
	char err[256] = "";

	CHECK(boot_load_linux(&m, &bl, &e, err, sizeof(err)) < 0);
	if (!strstr(err, "corrupt") || !strstr(err, needle))
		FAILF("error '%s' does not say corrupt and '%s'", err, needle);
	guestmem_free(&m);
}

static void test_unpack_lz4(void)
{
	uint8_t *f = make_unpack_elf(), *payload, *img, *p;
	size_t plen, len;
	struct guestmem m = mem_of(64 << 20);
	struct boot_linux bl = { .cmdline = "console=ttyS0" };
	struct boot_entry e;
	char err[256];
	uint32_t v;

	payload = lz4_legacy(f, UNPACK_ELF_LEN, &plen);
	CHECK(plen > 16 && plen < UNPACK_ELF_LEN);      /* two blocks (8 MiB each at most) */
	img = bzimage_with_payload(payload, plen, &len);
	bl.kernel = BOOT_BLOB_MEM(img, len);
	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), 0);
	CHECK(e.unpacked);
	CHECK_EQ(e.rip, 0x1000000);
	CHECK_EQ(e.rsi, LAYOUT_ZERO_PAGE_ADDR);
	for (unsigned int i = 0; i < 3; i++) {
		p = guestmem_ptr(&m, unpack_segs[i].paddr, unpack_segs[i].memsz);
		CHECK(!memcmp(p, f + unpack_segs[i].off, unpack_segs[i].filesz));
		for (uint64_t j = unpack_segs[i].filesz; j < unpack_segs[i].memsz; j++)
			if (p[j]) {
				FAILF("segment %u's .bss byte %llu is %#x", i, (unsigned long long)j, p[j]);
				break;
			}
	}
	/* Below the kernel, where the file's head was, and everything above
	 * it: the rest of the file image and the staged payload, which were
	 * written there, zeroed again. */
	p = guestmem_ptr(&m, 0, 64 << 20);
	for (uint64_t a = 0xe00000; a < (64 << 20); a++) {
		if (a == 0x1000000)
			a = 0x1910000;
		if (p[a]) {
			FAILF("byte at %#llx is %#x, not cleared", (unsigned long long)a, p[a]);
			break;
		}
	}
	p = guestmem_ptr(&m, LAYOUT_ZERO_PAGE_ADDR, 4096);
	CHECK(!memcmp(p + 0x202, "HdrS", 4));
	CHECK_EQ(p[0x210], 0xff);
	memcpy(&v, p + 0x24c, 4);
	CHECK_EQ(v, plen);                      /* the bzImage's own header, as the kernel expects */

	/* Asked to, the guest decompresses: the bzImage as it is, at 1 MiB. */
	bl.guest_decompress = true;
	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), 0);
	CHECK(!e.unpacked);
	CHECK_EQ(e.rip, LAYOUT_HIGH_MEM_ADDR + 0x200);
	CHECK(!memcmp(guestmem_ptr(&m, LAYOUT_HIGH_MEM_ADDR, plen), payload, plen));
	bl.guest_decompress = false;
	guestmem_free(&m);

	/* Too little memory to unpack beside the staged payload (the file
	 * image ends past 26 MiB, the payload is staged from 26 MiB down):
	 * the guest's own decompressor, which needs less. */
	m = mem_of(28 << 20);
	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), 0);
	CHECK(!e.unpacked);
	guestmem_free(&m);

	/* Another compressor (here: none known) is left to the guest. */
	img[SETUP] ^= 0xff;
	m = mem_of(64 << 20);
	CHECK_EQ(boot_load_linux(&m, &bl, &e, err, sizeof(err)), 0);
	CHECK(!e.unpacked);
	guestmem_free(&m);
	img[SETUP] ^= 0xff;

	/* Corrupt payloads: refused with a reason, nothing written outside
	 * guest memory (the sanitizers watch). */
	memcpy(&v, img + SETUP + plen - 4, 4);
	memcpy(img + SETUP + plen - 4, &(uint32_t){ v + 4096 }, 4);
	expect_unpack_error(img, len, "less than its size");
	memcpy(img + SETUP + plen - 4, &(uint32_t){ v - 4096 }, 4);
	expect_unpack_error(img, len, "more than its size");
	memcpy(img + SETUP + plen - 4, &(uint32_t){ 16 }, 4);
	expect_unpack_error(img, len, "too small");
	memcpy(img + SETUP + plen - 4, &v, 4);
	memcpy(img + SETUP + 4, &(uint32_t){ (uint32_t)plen }, 4);   /* first block past the end */
	expect_unpack_error(img, len, "first block");
	free(img);
	/* A block cut short: the payload ends inside it. */
	img = bzimage_with_payload(payload, plen - 1000, &len);
	memcpy(img + SETUP + plen - 1000 - 4, &v, 4);
	expect_unpack_error(img, len, "past the payload's end");
	free(img);
	/* Garbage inside the second block. */
	memset(payload + plen - 5000, 0xff, 900);
	img = bzimage_with_payload(payload, plen, &len);
	expect_unpack_error(img, len, "does not decompress");
	free(img);
	free(payload);
	free(f);
}

int main(void)
{
	RUN(test_cmdline_devices);
	RUN(test_elf_vmlinux);
	RUN(test_unpack_lz4);
	RUN(test_parse_good_image);
	RUN(test_parse_rejects_bad_images);
	RUN(test_truncated_anywhere);
	RUN(test_header_sizes_checked);
	RUN(test_blob_open_regular_only);
	RUN(test_setup_sects_zero_means_four);
	RUN(test_e820_layout);
	RUN(test_load_places_everything);
	RUN(test_load_refuses_what_does_not_fit);
	RUN(test_guestmem_bounds);
	return HARNESS_END();
}

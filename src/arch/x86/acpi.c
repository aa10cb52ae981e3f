/* ACPI tables for an x86 nestvm machine: RSDP, XSDT, FADT, FACS, MADT and a
 * DSDT whose AML comes from the small emitter below. Everything is written
 * into one caller-owned buffer with every write bounds-checked. */

#include "arch/x86/acpi.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define ACPI_OEM_ID            "NESTVM"
#define ACPI_CREATOR_ID        "NVMM"
#define ACPI_OEM_REVISION      1
#define ACPI_CREATOR_REVISION  1

#define ACPI_HEADER_LEN        36
#define ACPI_RSDP_LEN          36
#define ACPI_RSDP_V1_LEN       20   /* what the first checksum covers */
#define ACPI_FACS_LEN          64
#define ACPI_FADT_LEN          276  /* revision 6 */
#define ACPI_TABLE_ALIGN       8
#define ACPI_FACS_ALIGN        64
#define ACPI_RSDP_ALIGN        16   /* Linux scans the BIOS area in 16-byte steps */
#define ACPI_4G                0x100000000ULL

/* Revisions of ACPI 6.3, the newest the iasl in Debian stable knows. */
#define ACPI_FADT_REVISION     6
#define ACPI_FADT_MINOR        3
#define ACPI_MADT_REVISION     5
#define ACPI_XSDT_REVISION     1
#define ACPI_DSDT_REVISION     2    /* 2: AML integers are 64 bits wide */
#define ACPI_FACS_VERSION      2

/* FADT field offsets (ACPI 6.3, table 5-34). */
#define FADT_FIRMWARE_CTRL     36
#define FADT_DSDT              40
#define FADT_PM_PROFILE        45
#define FADT_SCI_INT           46
#define FADT_SMI_CMD           48
#define FADT_PM1A_EVT_BLK      56
#define FADT_PM1A_CNT_BLK      64
#define FADT_PM1_EVT_LEN       88
#define FADT_PM1_CNT_LEN       89
#define FADT_IAPC_BOOT_ARCH    109
#define FADT_FLAGS             112
#define FADT_RESET_REG         116
#define FADT_RESET_VALUE       128
#define FADT_MINOR_VERSION     131
#define FADT_X_DSDT            140
#define FADT_X_PM1A_EVT_BLK    148
#define FADT_X_PM1A_CNT_BLK    172

#define FADT_F_WBINVD          (1u << 0)
#define FADT_F_PWR_BUTTON      (1u << 4)  /* set = no fixed power button */
#define FADT_F_SLP_BUTTON      (1u << 5)  /* set = no fixed sleep button */
#define FADT_F_RESET_REG_SUP   (1u << 10)

#define FADT_BOOT_8042         (1u << 1)
#define FADT_BOOT_VGA_NOT_PRESENT (1u << 2)

#define FADT_PM_PROFILE_UNSPECIFIED 0

/* Generic Address Structure. */
#define GAS_LEN                12
#define GAS_SPACE_SYSTEM_IO    1
#define GAS_ACCESS_BYTE        1
#define GAS_ACCESS_WORD        2

/* MADT (ACPI 6.3, 5.2.12). */
#define MADT_PCAT_COMPAT       (1u << 0)
#define MADT_LAPIC             0
#define MADT_LAPIC_LEN         8
#define MADT_LAPIC_ENABLED     (1u << 0)
#define MADT_IOAPIC            1
#define MADT_IOAPIC_LEN        12
#define MADT_ISO               2
#define MADT_ISO_LEN           10
#define MADT_ISO_HIGH_LEVEL    0x000d  /* polarity 01 active high, trigger 11 level */
#define MADT_LAPIC_NMI         4
#define MADT_LAPIC_NMI_LEN     6
#define MADT_ALL_PROCESSORS    0xff

/* AML opcodes (ACPI 6.3, 20.3). */
#define AML_ZERO_OP            0x00
#define AML_ONE_OP             0x01
#define AML_NAME_OP            0x08
#define AML_BYTE_PREFIX        0x0a
#define AML_WORD_PREFIX        0x0b
#define AML_DWORD_PREFIX       0x0c
#define AML_STRING_PREFIX      0x0d
#define AML_QWORD_PREFIX       0x0e
#define AML_SCOPE_OP           0x10
#define AML_BUFFER_OP          0x11
#define AML_PACKAGE_OP         0x12
#define AML_EXT_OP_PREFIX      0x5b
#define AML_DEVICE_OP          0x82  /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR          '\\'
#define AML_NAMESEG_LEN        4

/* Resource descriptors (ACPI 6.3, 6.4). */
#define RES_IRQ_NOFLAGS        0x22  /* small, type 4, 2 bytes */
#define RES_IO                 0x47  /* small, type 8, 7 bytes */
#define RES_IO_DECODE16        0x01
#define RES_END_TAG            0x79  /* small, type 0xf, 1 byte */
#define RES_MEM32_FIXED        0x86  /* large, 9 bytes */
#define RES_MEM32_RW           0x01
#define RES_EXT_IRQ            0x89  /* large, 6 bytes for one interrupt */
#define RES_EXT_IRQ_CONSUMER   0x01  /* mode level, active high, exclusive: all 0 */

struct acpi_buf {
	uint8_t *data;
	size_t len;    /* capacity */
	size_t pos;    /* bytes used */
	uint64_t gpa;  /* guest physical address of data[0] */
};

static void acpi_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void acpi_put32(uint8_t *p, uint32_t v)
{
	acpi_put16(p, (uint16_t)v);
	acpi_put16(p + 2, (uint16_t)(v >> 16));
}

static void acpi_put64(uint8_t *p, uint64_t v)
{
	acpi_put32(p, (uint32_t)v);
	acpi_put32(p + 4, (uint32_t)(v >> 32));
}

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *b++);
	return sum;
}

static uint64_t acpi_gpa(const struct acpi_buf *b, size_t off)
{
	return b->gpa + off;
}

/* Claims n zeroed bytes at the end of the buffer. */
__attribute__((warn_unused_result))
static int acpi_claim(struct acpi_buf *b, size_t n, uint8_t **out)
{
	if (n > b->len - b->pos)
		return -ENOSPC;
	memset(b->data + b->pos, 0, n);
	if (out)
		*out = b->data + b->pos;
	b->pos += n;
	return 0;
}

/* Pads with zeros so the next byte's guest address is a multiple of align. */
__attribute__((warn_unused_result))
static int acpi_align(struct acpi_buf *b, size_t align)
{
	size_t pad = (align - (size_t)(acpi_gpa(b, b->pos) % align)) % align;

	return acpi_claim(b, pad, NULL);
}

static void acpi_put_gas_io(uint8_t *p, uint8_t bit_width, uint8_t access, uint16_t port)
{
	p[0] = GAS_SPACE_SYSTEM_IO;
	p[1] = bit_width;
	p[2] = 0;        /* bit offset */
	p[3] = access;
	acpi_put64(p + 4, port);
}

/* Starts a table with the standard header; acpi_table_end fills in its
 * length and checksum once the body is written. */
__attribute__((warn_unused_result))
static int acpi_table_begin(struct acpi_buf *b, const char *sig, uint8_t rev,
			    const char *oem_table_id, size_t *start)
{
	uint8_t *h;
	int r;

	r = acpi_align(b, ACPI_TABLE_ALIGN) ?: acpi_claim(b, ACPI_HEADER_LEN, &h);
	if (r)
		return r;
	memcpy(h, sig, 4);
	h[8] = rev;
	memcpy(h + 10, ACPI_OEM_ID, 6);
	memcpy(h + 16, oem_table_id, 8);
	acpi_put32(h + 24, ACPI_OEM_REVISION);
	memcpy(h + 28, ACPI_CREATOR_ID, 4);
	acpi_put32(h + 32, ACPI_CREATOR_REVISION);
	*start = (size_t)(h - b->data);
	return 0;
}

static void acpi_table_end(struct acpi_buf *b, size_t start)
{
	uint8_t *h = b->data + start;
	size_t n = b->pos - start;

	acpi_put32(h + 4, (uint32_t)n);
	h[9] = 0;
	h[9] = (uint8_t)-acpi_checksum(h, n);
}

/* ---- AML emitter ------------------------------------------------------ */

/* Constructs with a PkgLength (Scope, Device, Package, Buffer) are written
 * body first: *_begin remembers where the length goes and *_end inserts it,
 * because the PkgLength encoding's own size depends on the body's size. */

__attribute__((warn_unused_result))
static int aml_emit(struct acpi_buf *b, const void *p, size_t n)
{
	uint8_t *dst;
	int r = acpi_claim(b, n, &dst);

	if (r)
		return r;
	memcpy(dst, p, n);
	return 0;
}

__attribute__((warn_unused_result))
static int aml_byte(struct acpi_buf *b, uint8_t v)
{
	return aml_emit(b, &v, 1);
}

/* Inserts n bytes at offset at, moving what follows up. */
__attribute__((warn_unused_result))
static int aml_insert(struct acpi_buf *b, size_t at, const uint8_t *p, size_t n)
{
	if (n > b->len - b->pos)
		return -ENOSPC;
	memmove(b->data + at + n, b->data + at, b->pos - at);
	memcpy(b->data + at, p, n);
	b->pos += n;
	return 0;
}

/* PkgLength counts its own bytes. One byte holds 0..63; otherwise bits 7:6
 * of the lead byte say how many bytes follow (1..3), its low nibble holds
 * bits 3:0 and each following byte eight more bits. */
__attribute__((warn_unused_result))
static int aml_pkg_end(struct acpi_buf *b, size_t start)
{
	size_t body = b->pos - start, total, n, i;
	uint8_t enc[4];

	if (body + 1 <= 0x3f) {
		enc[0] = (uint8_t)(body + 1);
		return aml_insert(b, start, enc, 1);
	}
	for (n = 2; n <= 4; n++)
		if (body + n < (size_t)1 << (4 + 8 * (n - 1)))
			break;
	if (n > 4)
		return -ENOSPC;  /* over 256 MiB: beyond what AML can express */
	total = body + n;
	enc[0] = (uint8_t)((n - 1) << 6 | (total & 0x0f));
	for (i = 1; i < n; i++)
		enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return aml_insert(b, start, enc, n);
}

/* Integers take the smallest encoding that holds them. */
static size_t aml_encode_int(uint64_t v, uint8_t out[9])
{
	size_t n, i;

	if (v == 0 || v == 1) {
		out[0] = v ? AML_ONE_OP : AML_ZERO_OP;
		return 1;
	}
	if (v <= 0xff) {
		out[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xffff) {
		out[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= 0xffffffff) {
		out[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + n;
}

__attribute__((warn_unused_result))
static int aml_integer(struct acpi_buf *b, uint64_t v)
{
	uint8_t enc[9];

	return aml_emit(b, enc, aml_encode_int(v, enc));
}

__attribute__((warn_unused_result))
static int aml_string(struct acpi_buf *b, const char *s)
{
	return aml_byte(b, AML_STRING_PREFIX) ?: aml_emit(b, s, strlen(s) + 1);
}

/* A NameString of one NameSeg, optionally rooted: "\_S5_", "COM1". */
__attribute__((warn_unused_result))
static int aml_name_string(struct acpi_buf *b, const char *name)
{
	int r = 0;

	if (*name == AML_ROOT_CHAR)
		r = aml_byte(b, *name++);
	if (strlen(name) != AML_NAMESEG_LEN)
		return -EINVAL;
	return r ?: aml_emit(b, name, AML_NAMESEG_LEN);
}

/* Name(name, ...): the caller emits the value next. */
__attribute__((warn_unused_result))
static int aml_name(struct acpi_buf *b, const char *name)
{
	return aml_byte(b, AML_NAME_OP) ?: aml_name_string(b, name);
}

__attribute__((warn_unused_result))
static int aml_scope_begin(struct acpi_buf *b, const char *name, size_t *start)
{
	int r = aml_byte(b, AML_SCOPE_OP);

	*start = b->pos;
	return r ?: aml_name_string(b, name);
}

__attribute__((warn_unused_result))
static int aml_device_begin(struct acpi_buf *b, const char *name, size_t *start)
{
	int r = aml_byte(b, AML_EXT_OP_PREFIX) ?: aml_byte(b, AML_DEVICE_OP);

	*start = b->pos;
	return r ?: aml_name_string(b, name);
}

__attribute__((warn_unused_result))
static int aml_package_begin(struct acpi_buf *b, uint8_t nelem, size_t *start)
{
	int r = aml_byte(b, AML_PACKAGE_OP);

	*start = b->pos;
	return r ?: aml_byte(b, nelem);
}

__attribute__((warn_unused_result))
static int aml_buffer_begin(struct acpi_buf *b, size_t *start)
{
	int r = aml_byte(b, AML_BUFFER_OP);

	*start = b->pos;
	return r;
}

/* BufferSize, an integer, comes between the PkgLength and the bytes. */
__attribute__((warn_unused_result))
static int aml_buffer_end(struct acpi_buf *b, size_t start)
{
	uint8_t enc[9];
	size_t n = aml_encode_int(b->pos - start, enc);

	return aml_insert(b, start, enc, n) ?: aml_pkg_end(b, start);
}

/* EISAID("PNP0501"): three letters of five bits each, then four hex digits,
 * stored as a DWORD whose bytes read in that order. */
__attribute__((warn_unused_result))
static int aml_eisaid(struct acpi_buf *b, const char *id)
{
	uint8_t enc[5] = { AML_DWORD_PREFIX };
	uint8_t c[3], h[4];
	int i;

	if (strlen(id) != 7)
		return -EINVAL;
	for (i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return -EINVAL;
		c[i] = (uint8_t)(id[i] - 0x40);
	}
	for (i = 0; i < 4; i++) {
		char d = id[3 + i];

		if (d >= '0' && d <= '9')
			h[i] = (uint8_t)(d - '0');
		else if (d >= 'A' && d <= 'F')
			h[i] = (uint8_t)(d - 'A' + 10);
		else
			return -EINVAL;
	}
	enc[1] = (uint8_t)(c[0] << 2 | c[1] >> 3);
	enc[2] = (uint8_t)((c[1] & 7) << 5 | c[2]);
	enc[3] = (uint8_t)(h[0] << 4 | h[1]);
	enc[4] = (uint8_t)(h[2] << 4 | h[3]);
	return aml_emit(b, enc, sizeof(enc));
}

/* IO(Decode16, port, port, 1, len) */
__attribute__((warn_unused_result))
static int aml_res_io16(struct acpi_buf *b, uint16_t port, uint8_t len)
{
	uint8_t d[8] = { RES_IO, RES_IO_DECODE16 };

	acpi_put16(d + 2, port);   /* minimum */
	acpi_put16(d + 4, port);   /* maximum */
	d[6] = 1;                  /* alignment */
	d[7] = len;
	return aml_emit(b, d, sizeof(d));
}

/* IRQNoFlags(){irq}: edge, active high, exclusive, by definition. */
__attribute__((warn_unused_result))
static int aml_res_irq_noflags(struct acpi_buf *b, uint8_t irq)
{
	uint8_t d[3] = { RES_IRQ_NOFLAGS };

	acpi_put16(d + 1, (uint16_t)(1u << irq));
	return aml_emit(b, d, sizeof(d));
}

/* Memory32Fixed(ReadWrite, base, size) */
__attribute__((warn_unused_result))
static int aml_res_mem32_fixed(struct acpi_buf *b, uint32_t base, uint32_t size)
{
	uint8_t d[12] = { RES_MEM32_FIXED };

	acpi_put16(d + 1, sizeof(d) - 3);
	d[3] = RES_MEM32_RW;
	acpi_put32(d + 4, base);
	acpi_put32(d + 8, size);
	return aml_emit(b, d, sizeof(d));
}

/* Interrupt(ResourceConsumer, Level, ActiveHigh, Exclusive){gsi} */
__attribute__((warn_unused_result))
static int aml_res_ext_irq(struct acpi_buf *b, uint32_t gsi)
{
	uint8_t d[9] = { RES_EXT_IRQ };

	acpi_put16(d + 1, sizeof(d) - 3);
	d[3] = RES_EXT_IRQ_CONSUMER;
	d[4] = 1;                  /* interrupt table length */
	acpi_put32(d + 5, gsi);
	return aml_emit(b, d, sizeof(d));
}

/* EndTag with checksum 0: "treat the template as checksummed". */
__attribute__((warn_unused_result))
static int aml_res_end(struct acpi_buf *b)
{
	static const uint8_t d[2] = { RES_END_TAG, 0 };

	return aml_emit(b, d, sizeof(d));
}

/* ---- DSDT ------------------------------------------------------------- */

/* Name(\_S5_, Package(4){typ, typ, 0, 0}): SLP_TYPa, SLP_TYPb, reserved. */
__attribute__((warn_unused_result))
static int acpi_dsdt_s5(struct acpi_buf *b, uint8_t slp_typ)
{
	size_t pkg = 0;

	return aml_name(b, "\\_S5_") ?:
	       aml_package_begin(b, 4, &pkg) ?:
	       aml_integer(b, slp_typ) ?:
	       aml_integer(b, slp_typ) ?:
	       aml_integer(b, 0) ?:
	       aml_integer(b, 0) ?:
	       aml_pkg_end(b, pkg);
}

/* A legacy ISA device: _HID, _UID, _STA present, and _CRS with nports I/O
 * ranges (port[i], len[i] bytes each) and one edge-triggered IRQ. */
__attribute__((warn_unused_result))
static int acpi_dsdt_isa(struct acpi_buf *b, const char *name, const char *eisaid, unsigned int uid,
			 const uint16_t *port, const uint8_t *len, unsigned int nports, uint8_t irq)
{
	size_t dev = 0, crs = 0;
	int r;

	r = aml_device_begin(b, name, &dev) ?:
	    aml_name(b, "_HID") ?: aml_eisaid(b, eisaid) ?:
	    aml_name(b, "_UID") ?: aml_integer(b, uid) ?:
	    aml_name(b, "_STA") ?: aml_integer(b, 0x0f) ?:
	    aml_name(b, "_CRS") ?: aml_buffer_begin(b, &crs);
	for (unsigned int i = 0; !r && i < nports; i++)
		r = aml_res_io16(b, port[i], len[i]);
	return r ?: aml_res_irq_noflags(b, irq) ?:
	       aml_res_end(b) ?:
	       aml_buffer_end(b, crs) ?:
	       aml_pkg_end(b, dev);
}

__attribute__((warn_unused_result))
static int acpi_dsdt_com1(struct acpi_buf *b, uint16_t port, uint8_t irq)
{
	return acpi_dsdt_isa(b, "COM1", "PNP0501", 1, &port, &(uint8_t){ 8 }, 1, irq);
}

/* The keyboard controller as a PS/2 keyboard: data port, then command. */
__attribute__((warn_unused_result))
static int acpi_dsdt_ps2k(struct acpi_buf *b, uint16_t port, uint8_t irq)
{
	const uint16_t ports[] = { port, (uint16_t)(port + 4) };
	const uint8_t lens[] = { 1, 1 };

	return acpi_dsdt_isa(b, "PS2K", "PNP0303", 0, ports, lens, 2, irq);
}

__attribute__((warn_unused_result))
static int acpi_dsdt_mmio(struct acpi_buf *b, unsigned int i, const struct acpi_mmio_dev *m)
{
	static const char hex[] = "0123456789ABCDEF";
	char name[AML_NAMESEG_LEN + 1] = { 'V', 'R', hex[(i >> 4) & 0xf], hex[i & 0xf] };
	size_t dev = 0, crs = 0;

	return aml_device_begin(b, name, &dev) ?:
	       aml_name(b, "_HID") ?: aml_string(b, m->hid) ?:
	       aml_name(b, "_UID") ?: aml_integer(b, i) ?:
	       aml_name(b, "_CRS") ?: aml_buffer_begin(b, &crs) ?:
	       aml_res_mem32_fixed(b, (uint32_t)m->base, m->size) ?:
	       aml_res_ext_irq(b, m->gsi) ?:
	       aml_res_end(b) ?:
	       aml_buffer_end(b, crs) ?:
	       aml_pkg_end(b, dev);
}

__attribute__((warn_unused_result))
static int acpi_build_dsdt(struct acpi_buf *b, const struct acpi_config *cfg, size_t *start)
{
	size_t sb = 0;
	unsigned int i;
	int r;

	r = acpi_table_begin(b, "DSDT", ACPI_DSDT_REVISION, "NESTVMDS", start) ?:
	    acpi_dsdt_s5(b, cfg->slp_typ_s5) ?:
	    aml_scope_begin(b, "\\_SB_", &sb);
	if (!r && cfg->com1_port)
		r = acpi_dsdt_com1(b, cfg->com1_port, cfg->com1_irq);
	if (!r && cfg->i8042_port)
		r = acpi_dsdt_ps2k(b, cfg->i8042_port, cfg->i8042_irq);
	for (i = 0; !r && i < cfg->nmmio; i++)
		r = acpi_dsdt_mmio(b, i, &cfg->mmio[i]);
	r = r ?: aml_pkg_end(b, sb);
	if (r)
		return r;
	acpi_table_end(b, *start);
	return 0;
}

/* ---- Fixed tables ----------------------------------------------------- */

__attribute__((warn_unused_result))
static int acpi_build_facs(struct acpi_buf *b, size_t *start)
{
	uint8_t *f;
	int r = acpi_align(b, ACPI_FACS_ALIGN) ?: acpi_claim(b, ACPI_FACS_LEN, &f);

	if (r)
		return r;
	memcpy(f, "FACS", 4);
	acpi_put32(f + 4, ACPI_FACS_LEN);
	f[32] = ACPI_FACS_VERSION;
	*start = (size_t)(f - b->data);
	return 0;
}

__attribute__((warn_unused_result))
static int acpi_build_madt(struct acpi_buf *b, const struct acpi_config *cfg, size_t *start)
{
	uint8_t *p;
	unsigned int i;
	int r;

	r = acpi_table_begin(b, "APIC", ACPI_MADT_REVISION, "NESTVMAP", start) ?:
	    acpi_claim(b, 8, &p);
	if (r)
		return r;
	acpi_put32(p, (uint32_t)cfg->lapic_addr);
	acpi_put32(p + 4, MADT_PCAT_COMPAT);

	for (i = 0; i < cfg->ncpus; i++) {
		if ((r = acpi_claim(b, MADT_LAPIC_LEN, &p)))
			return r;
		p[0] = MADT_LAPIC;
		p[1] = MADT_LAPIC_LEN;
		p[2] = (uint8_t)i;     /* ACPI processor UID */
		p[3] = (uint8_t)i;     /* APIC ID */
		acpi_put32(p + 4, MADT_LAPIC_ENABLED);
	}

	if ((r = acpi_claim(b, MADT_IOAPIC_LEN, &p)))
		return r;
	p[0] = MADT_IOAPIC;
	p[1] = MADT_IOAPIC_LEN;
	p[2] = cfg->ioapic_id;
	acpi_put32(p + 4, (uint32_t)cfg->ioapic_addr);
	acpi_put32(p + 8, 0);      /* GSI base */

	/* The SCI is level, active high on its own pin. No IRQ0 -> GSI2
	 * override: KVM's in-kernel PIT raises GSI 0, IOAPIC pin 0. */
	if ((r = acpi_claim(b, MADT_ISO_LEN, &p)))
		return r;
	p[0] = MADT_ISO;
	p[1] = MADT_ISO_LEN;
	p[2] = 0;                  /* bus: ISA */
	p[3] = cfg->sci_irq;
	acpi_put32(p + 4, cfg->sci_irq);
	acpi_put16(p + 8, MADT_ISO_HIGH_LEVEL);

	if ((r = acpi_claim(b, MADT_LAPIC_NMI_LEN, &p)))
		return r;
	p[0] = MADT_LAPIC_NMI;
	p[1] = MADT_LAPIC_NMI_LEN;
	p[2] = MADT_ALL_PROCESSORS;
	acpi_put16(p + 3, 0);      /* flags: conforms to the bus */
	p[5] = 1;                  /* LINT1 */

	acpi_table_end(b, *start);
	return 0;
}

/* Full fixed hardware (not hardware-reduced), so Linux powers off through
 * PM1a_CNT and takes the power button as a PM1 fixed event. FACS and DSDT
 * sit below 4 GiB: FIRMWARE_CTRL gets the FACS and X_FIRMWARE_CTRL stays 0,
 * since the spec lets at most one of them be non-zero; DSDT and X_DSDT may
 * (and here do) both hold the DSDT. */
__attribute__((warn_unused_result))
static int acpi_build_fadt(struct acpi_buf *b, const struct acpi_config *cfg,
			   size_t facs, size_t dsdt, size_t *start)
{
	uint8_t *f;
	int r;

	r = acpi_table_begin(b, "FACP", ACPI_FADT_REVISION, "NESTVMFA", start) ?:
	    acpi_claim(b, ACPI_FADT_LEN - ACPI_HEADER_LEN, NULL);
	if (r)
		return r;
	f = b->data + *start;

	acpi_put32(f + FADT_FIRMWARE_CTRL, (uint32_t)acpi_gpa(b, facs));
	acpi_put32(f + FADT_DSDT, (uint32_t)acpi_gpa(b, dsdt));
	f[FADT_PM_PROFILE] = FADT_PM_PROFILE_UNSPECIFIED;
	acpi_put16(f + FADT_SCI_INT, cfg->sci_irq);
	acpi_put32(f + FADT_SMI_CMD, 0);   /* no SMM: ACPI mode from reset */
	acpi_put32(f + FADT_PM1A_EVT_BLK, cfg->pm1a_evt_port);
	acpi_put32(f + FADT_PM1A_CNT_BLK, cfg->pm1a_cnt_port);
	f[FADT_PM1_EVT_LEN] = 4;
	f[FADT_PM1_CNT_LEN] = 2;
	/* No PM timer, PM2 or GPE blocks: their addresses and lengths stay 0. */
	/* The 8042 flag makes Linux probe the keyboard controller without a
	 * PNP device for it: Ctrl-Alt-Del comes that way. */
	acpi_put16(f + FADT_IAPC_BOOT_ARCH, FADT_BOOT_8042 | FADT_BOOT_VGA_NOT_PRESENT);
	acpi_put32(f + FADT_FLAGS, FADT_F_WBINVD | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP);
	acpi_put_gas_io(f + FADT_RESET_REG, 8, GAS_ACCESS_BYTE, cfg->reset_port);
	f[FADT_RESET_VALUE] = cfg->reset_value;
	f[FADT_MINOR_VERSION] = ACPI_FADT_MINOR;
	acpi_put64(f + FADT_X_DSDT, acpi_gpa(b, dsdt));
	acpi_put_gas_io(f + FADT_X_PM1A_EVT_BLK, 32, GAS_ACCESS_WORD, cfg->pm1a_evt_port);
	acpi_put_gas_io(f + FADT_X_PM1A_CNT_BLK, 16, GAS_ACCESS_WORD, cfg->pm1a_cnt_port);

	acpi_table_end(b, *start);
	return 0;
}

__attribute__((warn_unused_result))
static int acpi_build_xsdt(struct acpi_buf *b, const size_t *tables, size_t n, size_t *start)
{
	uint8_t *p;
	size_t i;
	int r;

	r = acpi_table_begin(b, "XSDT", ACPI_XSDT_REVISION, "NESTVMXS", start) ?:
	    acpi_claim(b, 8 * n, &p);
	if (r)
		return r;
	for (i = 0; i < n; i++)
		acpi_put64(p + 8 * i, acpi_gpa(b, tables[i]));
	acpi_table_end(b, *start);
	return 0;
}

static void acpi_fill_rsdp(struct acpi_buf *b, size_t rsdp, size_t xsdt)
{
	uint8_t *p = b->data + rsdp;

	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, ACPI_OEM_ID, 6);
	p[15] = 2;                 /* revision: ACPI 2.0+, has the XSDT */
	acpi_put32(p + 16, 0);     /* no RSDT */
	acpi_put32(p + 20, ACPI_RSDP_LEN);
	acpi_put64(p + 24, acpi_gpa(b, xsdt));
	p[8] = (uint8_t)-acpi_checksum(p, ACPI_RSDP_V1_LEN);
	p[32] = (uint8_t)-acpi_checksum(p, ACPI_RSDP_LEN);
}

/* ---- Entry point ------------------------------------------------------ */

static bool acpi_hid_ok(const char *hid)
{
	size_t n, i;

	if (!hid)
		return false;
	n = strlen(hid);
	if (n < 1 || n > 8)
		return false;
	for (i = 0; i < n; i++)
		if (hid[i] < 0x21 || hid[i] > 0x7e)
			return false;
	return true;
}

/* Everything the tables can't express is refused here, before any write. */
__attribute__((warn_unused_result))
static int acpi_check_config(const struct acpi_config *cfg)
{
	unsigned int i;

	if (!cfg || cfg->ncpus < 1 || cfg->ncpus > 255)
		return -EINVAL;
	if (cfg->lapic_addr >= ACPI_4G || cfg->ioapic_addr >= ACPI_4G)
		return -EINVAL;   /* MADT holds 32-bit addresses */
	if (cfg->sci_irq > 15)
		return -EINVAL;   /* the override's source is an ISA IRQ */
	if (cfg->com1_port && (cfg->com1_port > 0xffff - 7 || cfg->com1_irq > 15))
		return -EINVAL;   /* 8 ports; IRQNoFlags masks IRQs 0..15 */
	if (cfg->nmmio > 256 || (cfg->nmmio && !cfg->mmio))
		return -EINVAL;   /* device names run VR00..VRFF */
	for (i = 0; i < cfg->nmmio; i++) {
		const struct acpi_mmio_dev *m = &cfg->mmio[i];

		if (m->base >= ACPI_4G || m->base + m->size > ACPI_4G)
			return -EINVAL;   /* Memory32Fixed */
		if (!acpi_hid_ok(m->hid))
			return -EINVAL;
	}
	return 0;
}

/* Tables go in dependency order, so each is complete and checksummed when
 * it closes; only the RSDP, which must come first, is filled in last. */
ssize_t acpi_build(void *buf, size_t len, uint64_t gpa, const struct acpi_config *cfg)
{
	struct acpi_buf b = { .data = buf, .len = len, .gpa = gpa };
	size_t rsdp = 0, facs = 0, dsdt = 0, madt = 0, fadt = 0, xsdt = 0;
	size_t xsdt_entries[2];
	int r;

	r = acpi_check_config(cfg);
	if (r)
		return r;
	if ((!buf && len) || gpa % ACPI_RSDP_ALIGN || gpa >= ACPI_4G)
		return -EINVAL;

	r = acpi_claim(&b, ACPI_RSDP_LEN, NULL) ?:
	    acpi_build_facs(&b, &facs) ?:
	    acpi_build_dsdt(&b, cfg, &dsdt) ?:
	    acpi_build_madt(&b, cfg, &madt) ?:
	    acpi_build_fadt(&b, cfg, facs, dsdt, &fadt);
	if (r)
		return r;
	xsdt_entries[0] = fadt;
	xsdt_entries[1] = madt;
	r = acpi_build_xsdt(&b, xsdt_entries, 2, &xsdt);
	if (r)
		return r;
	if (gpa + b.pos > ACPI_4G)
		return -EINVAL;   /* FADT holds 32-bit pointers */
	acpi_fill_rsdp(&b, rsdp, xsdt);
	return (ssize_t)b.pos;
}

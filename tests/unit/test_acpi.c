/* Unit tests for the ACPI builder: framing and checksums of every table, FADT
 * and MADT fields at their spec offsets, and the DSDT's AML decoded back by a
 * small independent parser. No KVM, no iasl. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* memmem */
#endif

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

HARNESS_DEFINE;

#define TABLES_GPA LAYOUT_ACPI_ADDR
#define NMMIO_MAX  256

static uint8_t tables[LAYOUT_ACPI_SIZE];

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static const struct acpi_mmio_dev two_virtio[] = {
	{ .base = LAYOUT_VIRTIO_MMIO_ADDR, .size = 0x200, .gsi = 16, .hid = "LNRO0005" },
	{ .base = LAYOUT_VIRTIO_MMIO_ADDR + LAYOUT_VIRTIO_MMIO_SIZE, .size = 0x200,
	  .gsi = 17, .hid = "LNRO0005" },
};

static struct acpi_config base_config(void)
{
	struct acpi_config cfg = {
		.ncpus = 2,
		.lapic_addr = LAYOUT_LAPIC_ADDR,
		.ioapic_addr = LAYOUT_IOAPIC_ADDR,
		.ioapic_id = 2,
		.pm1a_evt_port = LAYOUT_PM1A_EVT_PORT,
		.pm1a_cnt_port = LAYOUT_PM1A_CNT_PORT,
		.sci_irq = LAYOUT_SCI_IRQ,
		.reset_port = LAYOUT_RESET_PORT,
		.reset_value = LAYOUT_RESET_VALUE,
		.slp_typ_s5 = LAYOUT_ACPI_SLP_TYP_S5,
		.com1_port = LAYOUT_COM1_PORT,
		.com1_irq = LAYOUT_COM1_IRQ,
		.i8042_port = LAYOUT_I8042_PORT,
		.i8042_irq = LAYOUT_I8042_IRQ,
		.mmio = two_virtio,
		.nmmio = 2,
	};
	return cfg;
}

/* n virtio-mmio windows whose hids are hid_len characters long. */
static struct acpi_mmio_dev many[NMMIO_MAX];
static char hid_buf[9];

static void fill_many(unsigned int n, size_t hid_len)
{
	unsigned int i;

	memcpy(hid_buf, "LNRO0005", 8);
	hid_buf[hid_len] = '\0';
	for (i = 0; i < n; i++) {
		many[i].base = LAYOUT_VIRTIO_MMIO_ADDR + i * LAYOUT_VIRTIO_MMIO_SIZE;
		many[i].size = LAYOUT_VIRTIO_MMIO_SIZE;
		many[i].gsi = LAYOUT_FIRST_DEVICE_GSI + i;
		many[i].hid = hid_buf;
	}
}

static ssize_t build(const struct acpi_config *cfg)
{
	ssize_t n;

	memset(tables, 0xcc, sizeof(tables));
	n = acpi_build(tables, sizeof(tables), TABLES_GPA, cfg);
	CHECK(n > 0);
	CHECK((size_t)n <= sizeof(tables));
	return n;
}

/* ---- Table lookup, checking framing on the way ------------------------ */

/* The table at guest address gpa, which must lie inside the used bytes,
 * be 8-byte aligned, have a sane length and sum to zero. */
static const uint8_t *table_at(ssize_t used, uint64_t gpa, const char *sig)
{
	const uint8_t *t;
	uint32_t len;

	CHECK(gpa >= TABLES_GPA);
	CHECK(gpa + 36 <= TABLES_GPA + (uint64_t)used);
	CHECK_EQ(gpa % 8, 0);
	t = tables + (gpa - TABLES_GPA);
	len = rd32(t + 4);
	CHECK(len >= 36);
	CHECK(gpa + len <= TABLES_GPA + (uint64_t)used);
	if (memcmp(t, sig, 4))
		FAILF("table at 0x%" PRIx64 ": signature '%.4s', want '%s'", gpa, (const char *)t, sig);
	CHECK_EQ(acpi_checksum(t, len), 0);
	CHECK(!memcmp(t + 10, "NESTVM", 6));
	CHECK(!memcmp(t + 16, "NESTVM", 6));
	CHECK(!memcmp(t + 28, "NVMM", 4));
	return t;
}

static const uint8_t *xsdt_of(ssize_t used)
{
	return table_at(used, rd64(tables + 24), "XSDT");
}

/* The table the XSDT lists under sig. */
static const uint8_t *find_table(ssize_t used, const char *sig)
{
	const uint8_t *x = xsdt_of(used);
	uint32_t i, n = (rd32(x + 4) - 36) / 8;

	for (i = 0; i < n; i++) {
		uint64_t a = rd64(x + 36 + 8 * i);

		CHECK(a >= TABLES_GPA && a + 4 <= TABLES_GPA + (uint64_t)used);
		if (!memcmp(tables + (a - TABLES_GPA), sig, 4))
			return table_at(used, a, sig);
	}
	FAILF("no %s in the XSDT", sig);
}

static const uint8_t *dsdt_of(ssize_t used)
{
	const uint8_t *f = find_table(used, "FACP");

	CHECK_EQ(rd32(f + 40), rd64(f + 140));
	return table_at(used, rd64(f + 140), "DSDT");
}

/* ---- An AML decoder, just enough for what the builder emits ------------ */

enum obj_kind { OBJ_INT, OBJ_STR, OBJ_BUF, OBJ_PKG, OBJ_SCOPE, OBJ_DEVICE };

struct aml_obj {
	char path[40];
	enum obj_kind kind;
	uint64_t ival;
	const char *str;
	const uint8_t *data;       /* buffer bytes */
	size_t len;
	unsigned int nelem;
	uint64_t elem[8];          /* package elements, integers only */
	int pkglen_bytes;          /* scopes, devices, packages, buffers */
	size_t pkglen;
};

struct aml_doc {
	struct aml_obj obj[4 * NMMIO_MAX + 16];
	size_t n;
};

static struct aml_doc doc;

struct cur {
	const uint8_t *p;
	size_t pos, end;
};

static uint8_t next(struct cur *c)
{
	if (c->pos >= c->end)
		FAILF("AML: ran past the end at offset %zu", c->pos);
	return c->p[c->pos++];
}

static struct aml_obj *new_obj(const char *scope, const char *name, enum obj_kind kind)
{
	struct aml_obj *o;

	CHECK(doc.n < sizeof(doc.obj) / sizeof(doc.obj[0]));
	o = &doc.obj[doc.n++];
	memset(o, 0, sizeof(*o));
	if (name[0] == '\\')
		snprintf(o->path, sizeof(o->path), "%s", name);
	else
		snprintf(o->path, sizeof(o->path), "%s%s%s", scope,
			 strcmp(scope, "\\") ? "." : "", name);
	o->kind = kind;
	return o;
}

/* Returns where the package ends. Also checks the encoding is the shortest
 * that holds the length: that is what the builder promises. */
static size_t dec_pkglen(struct cur *c, int *nbytes, size_t *value)
{
	static const size_t max[] = { 0, 0x3f, 0xfff, 0xfffff, 0xfffffff };
	size_t start = c->pos, len;
	uint8_t lead = next(c);
	int follow = lead >> 6, i;

	if (follow == 0) {
		len = lead & 0x3f;
	} else {
		CHECK_EQ(lead & 0x30, 0);
		len = lead & 0x0f;
		for (i = 0; i < follow; i++)
			len |= (size_t)next(c) << (4 + 8 * i);
		/* one byte fewer would not have held the body plus itself */
		CHECK(len - 1 > max[follow]);
	}
	*nbytes = follow + 1;
	*value = len;
	CHECK(len >= (size_t)*nbytes);
	CHECK(start + len <= c->end);
	return start + len;
}

static void dec_name(struct cur *c, char *out)
{
	int i = 0;

	if (c->pos < c->end && c->p[c->pos] == '\\')
		out[i++] = (char)next(c);
	for (int k = 0; k < 4; k++) {
		char ch = (char)next(c);

		/* LeadNameChar is A-Z or '_'; digits may follow */
		CHECK((ch >= 'A' && ch <= 'Z') || ch == '_' || (k && ch >= '0' && ch <= '9'));
		out[i++] = ch;
	}
	out[i] = '\0';
}

/* Integers: also checks that the encoding is the shortest one. */
static int dec_int(struct cur *c, uint8_t op, uint64_t *v)
{
	int n, i;

	switch (op) {
	case 0x00: *v = 0; return 1;
	case 0x01: *v = 1; return 1;
	case 0x0a: n = 1; break;
	case 0x0b: n = 2; break;
	case 0x0c: n = 4; break;
	case 0x0e: n = 8; break;
	default: return 0;
	}
	*v = 0;
	for (i = 0; i < n; i++)
		*v |= (uint64_t)next(c) << (8 * i);
	return 1;
}

static void check_shortest(uint8_t op, uint64_t v)
{
	switch (op) {
	case 0x0a: CHECK(v > 1); break;
	case 0x0b: CHECK(v > 0xff); break;
	case 0x0c: CHECK(v > 0xffff); break;
	case 0x0e: CHECK(v > 0xffffffff); break;
	}
}

static void dec_data(struct cur *c, struct aml_obj *o, int eisaid_ok)
{
	uint8_t op = next(c);
	size_t end;

	if (dec_int(c, op, &o->ival)) {
		o->kind = OBJ_INT;
		/* EISAID() compiles to a DWordConst whatever its value */
		if (!eisaid_ok)
			check_shortest(op, o->ival);
		return;
	}
	switch (op) {
	case 0x0d:
		o->kind = OBJ_STR;
		o->str = (const char *)c->p + c->pos;
		while (next(c))
			;
		return;
	case 0x11: {
		uint8_t sop;
		uint64_t size;

		o->kind = OBJ_BUF;
		end = dec_pkglen(c, &o->pkglen_bytes, &o->pkglen);
		sop = next(c);
		CHECK(dec_int(c, sop, &size));
		check_shortest(sop, size);
		o->data = c->p + c->pos;
		o->len = end - c->pos;
		CHECK_EQ(size, o->len);
		c->pos = end;
		return;
	}
	case 0x12: {
		o->kind = OBJ_PKG;
		end = dec_pkglen(c, &o->pkglen_bytes, &o->pkglen);
		o->nelem = next(c);
		CHECK(o->nelem <= 8);
		for (unsigned int i = 0; i < o->nelem; i++) {
			uint8_t eop = next(c);

			CHECK(dec_int(c, eop, &o->elem[i]));
			check_shortest(eop, o->elem[i]);
		}
		CHECK_EQ(c->pos, end);
		return;
	}
	default:
		FAILF("AML: unexpected data opcode 0x%02x at %zu", op, c->pos - 1);
	}
}

static void dec_terms(struct cur *c, const char *scope)
{
	while (c->pos < c->end) {
		uint8_t op = next(c);
		char name[6];
		struct aml_obj *o;
		struct cur inner;

		if (op == 0x08) {
			dec_name(c, name);
			o = new_obj(scope, name, OBJ_INT);
			dec_data(c, o, !strcmp(name, "_HID"));
			continue;
		}
		if (op == 0x10 || (op == 0x5b && next(c) == 0x82)) {
			int nb;
			size_t len;

			inner = *c;
			inner.end = dec_pkglen(c, &nb, &len);
			inner.pos = c->pos;
			dec_name(&inner, name);
			o = new_obj(scope, name, op == 0x10 ? OBJ_SCOPE : OBJ_DEVICE);
			o->pkglen_bytes = nb;
			o->pkglen = len;
			dec_terms(&inner, o->path);   /* doc.obj never moves */
			c->pos = inner.end;
			continue;
		}
		FAILF("AML: unexpected opcode 0x%02x at %zu", op, c->pos - 1);
	}
}

/* Decodes the whole DSDT: every PkgLength must nest exactly. */
static void decode_dsdt(ssize_t used)
{
	const uint8_t *d = dsdt_of(used);
	struct cur c = { .p = d, .pos = 36, .end = rd32(d + 4) };

	CHECK_EQ(d[8], 2);   /* revision 2: 64-bit integers */
	doc.n = 0;
	dec_terms(&c, "\\");
	CHECK_EQ(c.pos, c.end);
}

static const struct aml_obj *get(const char *path, enum obj_kind kind)
{
	for (size_t i = 0; i < doc.n; i++)
		if (!strcmp(doc.obj[i].path, path)) {
			CHECK_EQ(doc.obj[i].kind, kind);
			return &doc.obj[i];
		}
	FAILF("AML: no %s", path);
}

static int has(const char *path)
{
	for (size_t i = 0; i < doc.n; i++)
		if (!strcmp(doc.obj[i].path, path))
			return 1;
	return 0;
}

/* ---- Tests ------------------------------------------------------------ */

static void test_checksum(void)
{
	static const uint8_t a[] = { 1, 2, 3 }, w[] = { 0xff, 0x02 };

	CHECK_EQ(acpi_checksum(a, 0), 0);
	CHECK_EQ(acpi_checksum(a, sizeof(a)), 6);
	CHECK_EQ(acpi_checksum(w, sizeof(w)), 1);
}

static void test_rsdp(void)
{
	struct acpi_config cfg = base_config();
	ssize_t used = build(&cfg);

	CHECK(!memcmp(tables, "RSD PTR ", 8));
	CHECK_EQ(acpi_checksum(tables, 20), 0);
	CHECK_EQ(acpi_checksum(tables, 36), 0);
	CHECK(!memcmp(tables + 9, "NESTVM", 6));
	CHECK_EQ(tables[15], 2);
	CHECK_EQ(rd32(tables + 20), 36);
	xsdt_of(used);
	/* the padding after the RSDP was cleared, not left as garbage */
	CHECK_EQ(tables[36], 0);
}

static void test_xsdt(void)
{
	struct acpi_config cfg = base_config();
	ssize_t used = build(&cfg);
	const uint8_t *x = xsdt_of(used);

	CHECK_EQ(rd32(x + 4), 36 + 2 * 8);
	CHECK_EQ(x[8], 1);
	table_at(used, rd64(x + 36), "FACP");
	table_at(used, rd64(x + 44), "APIC");
}

static void test_fadt(void)
{
	struct acpi_config cfg = base_config();
	ssize_t used = build(&cfg);
	const uint8_t *f = find_table(used, "FACP");
	const uint8_t *facs;
	uint32_t flags;

	CHECK_EQ(rd32(f + 4), 276);
	CHECK_EQ(f[8], 6);
	CHECK_EQ(f[45] <= 1, 1);                       /* Preferred_PM_Profile */
	CHECK_EQ(rd16(f + 46), LAYOUT_SCI_IRQ);        /* SCI_INT */
	CHECK_EQ(rd32(f + 48), 0);                     /* SMI_CMD: always ACPI */
	CHECK_EQ(rd32(f + 56), LAYOUT_PM1A_EVT_PORT);  /* PM1a_EVT_BLK */
	CHECK_EQ(rd32(f + 60), 0);                     /* PM1b_EVT_BLK */
	CHECK_EQ(rd32(f + 64), LAYOUT_PM1A_CNT_PORT);  /* PM1a_CNT_BLK */
	CHECK_EQ(rd32(f + 76), 0);                     /* PM_TMR_BLK */
	CHECK_EQ(rd32(f + 80), 0);                     /* GPE0_BLK */
	CHECK_EQ(rd32(f + 84), 0);                     /* GPE1_BLK */
	CHECK_EQ(f[88], 4);                            /* PM1_EVT_LEN */
	CHECK_EQ(f[89], 2);                            /* PM1_CNT_LEN */
	CHECK_EQ(f[91], 0);                            /* PM_TMR_LEN */
	CHECK_EQ(f[92], 0);                            /* GPE0_BLK_LEN */

	/* IAPC_BOOT_ARCH: an 8042, no VGA, MSI allowed */
	CHECK_EQ(rd16(f + 109) & 0x2, 0x2);
	CHECK_EQ(rd16(f + 109) & 0x4, 0x4);
	CHECK_EQ(rd16(f + 109) & 0x8, 0);

	flags = rd32(f + 112);
	CHECK_EQ(flags & (1u << 0), 1u << 0);          /* WBINVD */
	CHECK_EQ(flags & (1u << 4), 0);                /* PWR_BUTTON: fixed button */
	CHECK_EQ(flags & (1u << 5), 1u << 5);          /* SLP_BUTTON: none */
	CHECK_EQ(flags & (1u << 10), 1u << 10);        /* RESET_REG_SUP */
	CHECK_EQ(flags & (1u << 20), 0);               /* HW_REDUCED_ACPI */

	/* RESET_REG: system I/O, 8 bits, the reset port */
	CHECK_EQ(f[116], 1);
	CHECK_EQ(f[117], 8);
	CHECK_EQ(f[118], 0);
	CHECK_EQ(rd64(f + 120), LAYOUT_RESET_PORT);
	CHECK_EQ(f[128], LAYOUT_RESET_VALUE);

	/* X_PM1a_EVT_BLK, X_PM1a_CNT_BLK */
	CHECK_EQ(f[148], 1);
	CHECK_EQ(f[149], 32);
	CHECK_EQ(rd64(f + 152), LAYOUT_PM1A_EVT_PORT);
	CHECK_EQ(f[172], 1);
	CHECK_EQ(f[173], 16);
	CHECK_EQ(rd64(f + 176), LAYOUT_PM1A_CNT_PORT);
	CHECK_EQ(rd64(f + 208 + 4), 0);                /* X_PM_TMR_BLK */
	CHECK_EQ(rd64(f + 220 + 4), 0);                /* X_GPE0_BLK */

	/* DSDT both ways; FACS through FIRMWARE_CTRL only (the spec allows
	 * at most one of FIRMWARE_CTRL and X_FIRMWARE_CTRL to be non-zero). */
	CHECK(rd64(f + 140) != 0);
	CHECK_EQ(rd32(f + 40), rd64(f + 140));
	dsdt_of(used);
	CHECK_EQ(rd64(f + 132), 0);
	CHECK(rd32(f + 36) >= TABLES_GPA);
	CHECK(rd32(f + 36) + 64 <= TABLES_GPA + (uint64_t)used);
	CHECK_EQ(rd32(f + 36) % 64, 0);
	facs = tables + (rd32(f + 36) - TABLES_GPA);
	CHECK(!memcmp(facs, "FACS", 4));
	CHECK_EQ(rd32(facs + 4), 64);
}

static void check_madt(unsigned int ncpus)
{
	struct acpi_config cfg = base_config();
	const uint8_t *m, *p, *end;
	unsigned int nlapic = 0, nioapic = 0, nnmi = 0, nsci = 0;
	ssize_t used;

	cfg.ncpus = ncpus;
	used = build(&cfg);
	m = find_table(used, "APIC");
	CHECK_EQ(rd32(m + 36), LAYOUT_LAPIC_ADDR);
	CHECK_EQ(rd32(m + 40) & 1, 1);                 /* PCAT_COMPAT */
	end = m + rd32(m + 4);
	for (p = m + 44; p < end; p += p[1]) {
		CHECK(p + 2 <= end);
		CHECK(p[1] >= 2 && p + p[1] <= end);
		switch (p[0]) {
		case 0:
			CHECK_EQ(p[1], 8);
			CHECK_EQ(p[2], nlapic);         /* UID */
			CHECK_EQ(p[3], nlapic);         /* APIC ID */
			CHECK_EQ(rd32(p + 4), 1);       /* enabled */
			nlapic++;
			break;
		case 1:
			CHECK_EQ(p[1], 12);
			CHECK_EQ(p[2], 2);
			CHECK_EQ(rd32(p + 4), LAYOUT_IOAPIC_ADDR);
			CHECK_EQ(rd32(p + 8), 0);
			nioapic++;
			break;
		case 2:
			CHECK_EQ(p[1], 10);
			CHECK_EQ(p[2], 0);
			CHECK(p[3] != 0);               /* no IRQ0 -> GSI2 override */
			CHECK_EQ(p[3], LAYOUT_SCI_IRQ);
			CHECK_EQ(rd32(p + 4), LAYOUT_SCI_IRQ);
			CHECK_EQ(rd16(p + 8), 0x000d);
			nsci++;
			break;
		case 4:
			CHECK_EQ(p[1], 6);
			CHECK_EQ(p[2], 0xff);
			CHECK_EQ(rd16(p + 3), 0);
			CHECK_EQ(p[5], 1);
			nnmi++;
			break;
		default:
			FAILF("MADT: unexpected entry type %u", p[0]);
		}
	}
	CHECK(p == end);
	CHECK_EQ(nlapic, ncpus);
	CHECK_EQ(nioapic, 1);
	CHECK_EQ(nsci, 1);
	CHECK_EQ(nnmi, 1);
}

static void test_madt_1(void) { check_madt(1); }
static void test_madt_2(void) { check_madt(2); }
static void test_madt_64(void) { check_madt(64); }
static void test_madt_255(void) { check_madt(255); }

static void test_dsdt_s5_bytes(void)
{
	static const uint8_t s5[] = {
		0x08, '\\', '_', 'S', '5', '_',        /* Name(\_S5_, */
		0x12, 0x08, 0x04,                      /* Package(4) { PkgLength 8 */
		0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00,    /* 5, 5, 0, 0 } */
	};
	static const uint8_t s5_one[] = { 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00 };
	struct acpi_config cfg = base_config();
	ssize_t used = build(&cfg);
	const uint8_t *d = dsdt_of(used);

	CHECK(memmem(d, rd32(d + 4), s5, sizeof(s5)) != NULL);
	/* at the root, first thing after the header */
	CHECK(!memcmp(d + 36, s5, sizeof(s5)));

	cfg.slp_typ_s5 = 1;
	used = build(&cfg);
	d = dsdt_of(used);
	CHECK(!memcmp(d + 36 + 6, s5_one, sizeof(s5_one)));
}

static void test_dsdt_decoded(void)
{
	static const uint8_t com1_crs[] = {
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,  /* IO(Decode16, 0x3f8, 0x3f8, 1, 8) */
		0x22, 0x10, 0x00,                                /* IRQNoFlags(){4} */
		0x79, 0x00,
	};
	static const uint8_t ps2k_crs[] = {
		0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01,  /* IO(Decode16, 0x60, 0x60, 1, 1) */
		0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01,  /* IO(Decode16, 0x64, 0x64, 1, 1) */
		0x22, 0x02, 0x00,                                /* IRQNoFlags(){1} */
		0x79, 0x00,
	};
	static const uint8_t vr01_crs[] = {
		0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0, 0x00, 0x02, 0x00, 0x00,
		0x89, 0x06, 0x00, 0x01, 0x01, 0x11, 0x00, 0x00, 0x00,
		0x79, 0x00,
	};
	struct acpi_config cfg = base_config();
	const struct aml_obj *o;

	decode_dsdt(build(&cfg));

	o = get("\\_S5_", OBJ_PKG);
	CHECK_EQ(o->nelem, 4);
	CHECK_EQ(o->elem[0], LAYOUT_ACPI_SLP_TYP_S5);
	CHECK_EQ(o->elem[1], LAYOUT_ACPI_SLP_TYP_S5);
	CHECK_EQ(o->elem[2], 0);
	CHECK_EQ(o->elem[3], 0);

	get("\\_SB_", OBJ_SCOPE);
	get("\\_SB_.COM1", OBJ_DEVICE);
	CHECK_EQ(get("\\_SB_.COM1._HID", OBJ_INT)->ival, 0x0105d041);   /* EISAID("PNP0501") */
	CHECK_EQ(get("\\_SB_.COM1._UID", OBJ_INT)->ival, 1);
	CHECK_EQ(get("\\_SB_.COM1._STA", OBJ_INT)->ival, 0x0f);
	o = get("\\_SB_.COM1._CRS", OBJ_BUF);
	CHECK_EQ(o->len, sizeof(com1_crs));
	CHECK(!memcmp(o->data, com1_crs, sizeof(com1_crs)));

	/* The keyboard controller: a keyboard, and no PNP0F13 mouse. */
	get("\\_SB_.PS2K", OBJ_DEVICE);
	CHECK_EQ(get("\\_SB_.PS2K._HID", OBJ_INT)->ival, 0x0303d041);  /* EISAID("PNP0303") */
	CHECK_EQ(get("\\_SB_.PS2K._STA", OBJ_INT)->ival, 0x0f);
	o = get("\\_SB_.PS2K._CRS", OBJ_BUF);
	CHECK_EQ(o->len, sizeof(ps2k_crs));
	CHECK(!memcmp(o->data, ps2k_crs, sizeof(ps2k_crs)));

	get("\\_SB_.VR00", OBJ_DEVICE);
	CHECK_STR(get("\\_SB_.VR00._HID", OBJ_STR)->str, "LNRO0005");
	CHECK_EQ(get("\\_SB_.VR00._UID", OBJ_INT)->ival, 0);
	CHECK_STR(get("\\_SB_.VR01._HID", OBJ_STR)->str, "LNRO0005");
	CHECK_EQ(get("\\_SB_.VR01._UID", OBJ_INT)->ival, 1);
	o = get("\\_SB_.VR01._CRS", OBJ_BUF);
	CHECK_EQ(o->len, sizeof(vr01_crs));
	CHECK(!memcmp(o->data, vr01_crs, sizeof(vr01_crs)));
	CHECK(!has("\\_SB_.VR02"));
}

static void test_dsdt_no_devices(void)
{
	struct acpi_config cfg = base_config();
	const struct aml_obj *sb;

	cfg.com1_port = 0;
	cfg.i8042_port = 0;
	cfg.nmmio = 0;
	cfg.mmio = NULL;
	decode_dsdt(build(&cfg));
	CHECK(!has("\\_SB_.COM1"));
	sb = get("\\_SB_", OBJ_SCOPE);
	CHECK_EQ(sb->pkglen_bytes, 1);
	CHECK_EQ(sb->pkglen, 1 + 5);   /* PkgLength, "\_SB_" */
}

/* 256 devices: \_SB_ needs a 3-byte PkgLength; names run VR00..VRFF. */
static void test_dsdt_256_devices(void)
{
	struct acpi_config cfg = base_config();
	const struct aml_obj *sb, *o;
	const uint8_t *d, *p;
	ssize_t used;

	fill_many(NMMIO_MAX, 8);
	cfg.mmio = many;
	cfg.nmmio = NMMIO_MAX;
	used = build(&cfg);
	decode_dsdt(used);
	sb = get("\\_SB_", OBJ_SCOPE);
	CHECK_EQ(sb->pkglen_bytes, 3);

	/* The raw bytes right after Name(\_S5_, ...): ScopeOp, lead byte
	 * 0b10xxxxxx and two more, "\_SB_"; the scope runs to the DSDT's end. */
	d = dsdt_of(used);
	p = d + 36 + 15;
	CHECK_EQ(p[0], 0x10);
	CHECK(!memcmp(p + 4, "\\_SB_", 5));
	CHECK_EQ(p[1] >> 6, 2);
	CHECK_EQ((size_t)((p[1] & 0x0f) | p[2] << 4 | p[3] << 12), rd32(d + 4) - (size_t)(p + 1 - d));

	o = get("\\_SB_.VRFF._UID", OBJ_INT);
	CHECK_EQ(o->ival, 255);
	get("\\_SB_.VR0A", OBJ_DEVICE);
	get("\\_SB_.VRA0", OBJ_DEVICE);
	o = get("\\_SB_.VRFF._CRS", OBJ_BUF);
	CHECK_EQ(rd32(o->data + 4), LAYOUT_VIRTIO_MMIO_ADDR + 255 * LAYOUT_VIRTIO_MMIO_SIZE);
	CHECK_EQ(rd32(o->data + 17), LAYOUT_FIRST_DEVICE_GSI + 255);
}

/* Builds a DSDT with com1 and n devices, device i's hid being hid_len[i]
 * long, and returns the \_SB_ scope's body length (PkgLength less itself). */
static size_t sb_body(struct acpi_config *cfg, unsigned int n, const size_t *hid_len,
		      const struct aml_obj **sb)
{
	static char hids[NMMIO_MAX][9];

	fill_many(n, 8);
	for (unsigned int i = 0; i < n; i++) {
		memcpy(hids[i], "LNRO0005", 9);
		hids[i][hid_len[i]] = '\0';
		many[i].hid = hids[i];
	}
	cfg->mmio = many;
	cfg->nmmio = n;
	decode_dsdt(build(cfg));
	*sb = get("\\_SB_", OBJ_SCOPE);
	return (*sb)->pkglen - (size_t)(*sb)->pkglen_bytes;
}

/* Puts the \_SB_ scope's body at exactly the lengths either side of the
 * 1/2 and 2/3-byte PkgLength limits, by growing hids one byte at a time,
 * and checks the encoding chosen and the decoded length. */
static void test_pkglen_boundaries(void)
{
	static const struct { size_t body; int bytes; } edges[] = {
		{ 62, 1 },      /* PkgLength 63: the largest in one byte */
		{ 63, 2 },      /* 65 */
		{ 0xffd, 2 },   /* 0xfff: the largest in two bytes */
		{ 0xffe, 3 },   /* 0x1001 */
	};
	static size_t len[NMMIO_MAX];
	struct acpi_config cfg = base_config();
	const struct aml_obj *sb;

	for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++) {
		int found = 0;

		for (unsigned int k = 0; k < 4 * (NMMIO_MAX + 1) && !found; k++) {
			unsigned int n = k / 4;
			size_t lo, hi, need;

			cfg.com1_port = k & 1 ? LAYOUT_COM1_PORT : 0;
			cfg.i8042_port = k & 2 ? LAYOUT_I8042_PORT : 0;

			for (unsigned int i = 0; i < n; i++)
				len[i] = 1;
			lo = sb_body(&cfg, n, len, &sb);
			hi = lo + 7 * n;       /* hids of 1..8 characters */
			if (edges[e].body < lo || edges[e].body > hi)
				continue;
			need = edges[e].body - lo;
			for (unsigned int i = 0; i < n; i++) {
				size_t grow = need < 7 ? need : 7;

				len[i] += grow;
				need -= grow;
			}
			CHECK_EQ(sb_body(&cfg, n, len, &sb), edges[e].body);
			CHECK_EQ(sb->pkglen_bytes, edges[e].bytes);
			CHECK_EQ(sb->pkglen, edges[e].body + (size_t)edges[e].bytes);
			found = 1;
		}
		if (!found)
			FAILF("no configuration puts \\_SB_'s body at %zu bytes", edges[e].body);
	}
}

/* Every device count with every hid length: each DSDT decodes, with every
 * PkgLength nesting exactly and in its shortest encoding. */
static void test_dsdt_sweep(void)
{
	struct acpi_config cfg = base_config();
	int seen[4] = { 0 };

	for (unsigned int n = 0; n <= NMMIO_MAX; n++) {
		for (size_t hl = 1; hl <= 8; hl++) {
			for (int isa = 0; isa <= 3; isa++) {
				fill_many(n, hl);
				cfg.mmio = many;
				cfg.nmmio = n;
				cfg.com1_port = isa & 1 ? LAYOUT_COM1_PORT : 0;
				cfg.i8042_port = isa & 2 ? LAYOUT_I8042_PORT : 0;
				decode_dsdt(build(&cfg));
				seen[get("\\_SB_", OBJ_SCOPE)->pkglen_bytes - 1] = 1;
				CHECK_EQ(has("\\_SB_.COM1"), isa & 1);
				CHECK_EQ(has("\\_SB_.PS2K"), !!(isa & 2));
			}
		}
	}
	CHECK(seen[0] && seen[1] && seen[2]);
}

/* Every length short of what is needed fails with -ENOSPC and writes
 * nothing past the length it was given. */
static void check_enospc(const struct acpi_config *cfg)
{
	enum { CANARY = 64 };
	ssize_t need = build(cfg);
	uint8_t *ref = malloc((size_t)need), *b;

	CHECK(ref != NULL);
	memcpy(ref, tables, (size_t)need);
	for (size_t len = 0; len <= (size_t)need; len++) {
		ssize_t r;

		b = malloc(len + CANARY);
		CHECK(b != NULL);
		memset(b, 0xa5, len + CANARY);
		r = acpi_build(b, len, TABLES_GPA, cfg);
		for (size_t i = len; i < len + CANARY; i++)
			if (b[i] != 0xa5) {
				free(b);
				free(ref);
				FAILF("len %zu: byte %zu past the end was written", len, i - len);
			}
		if (len < (size_t)need && r != -ENOSPC) {
			free(b);
			free(ref);
			FAILF("len %zu of %zd: got %zd, want -ENOSPC", len, need, r);
		}
		if (len == (size_t)need) {
			int same = r == need && !memcmp(b, ref, len);

			free(b);
			free(ref);
			CHECK(same);
			return;
		}
		free(b);
	}
}

static void test_enospc_small(void)
{
	struct acpi_config cfg = base_config();

	check_enospc(&cfg);
}

static void test_enospc_large(void)
{
	struct acpi_config cfg = base_config();

	fill_many(NMMIO_MAX, 8);
	cfg.mmio = many;
	cfg.nmmio = NMMIO_MAX;
	cfg.ncpus = 255;
	check_enospc(&cfg);
}

static void expect_einval(const struct acpi_config *cfg, uint64_t gpa)
{
	memset(tables, 0x5a, sizeof(tables));
	CHECK_EQ(acpi_build(tables, sizeof(tables), gpa, cfg), -EINVAL);
	for (size_t i = 0; i < sizeof(tables); i++)
		if (tables[i] != 0x5a)
			FAILF("byte %zu written by a call that returned -EINVAL", i);
}

static void test_einval(void)
{
	struct acpi_config cfg;
	struct acpi_mmio_dev bad[1];

	expect_einval(NULL, TABLES_GPA);
	cfg = base_config(); cfg.ncpus = 0; expect_einval(&cfg, TABLES_GPA);
	cfg = base_config(); cfg.ncpus = 256; expect_einval(&cfg, TABLES_GPA);
	cfg = base_config(); cfg.nmmio = 257; cfg.mmio = many; expect_einval(&cfg, TABLES_GPA);
	cfg = base_config(); cfg.mmio = NULL; expect_einval(&cfg, TABLES_GPA);
	cfg = base_config(); cfg.sci_irq = 16; expect_einval(&cfg, TABLES_GPA);
	cfg = base_config(); cfg.com1_irq = 16; expect_einval(&cfg, TABLES_GPA);
	cfg = base_config(); cfg.lapic_addr = 1ULL << 32; expect_einval(&cfg, TABLES_GPA);
	cfg = base_config(); expect_einval(&cfg, TABLES_GPA + 8);     /* RSDP off 16 */
	cfg = base_config(); expect_einval(&cfg, 1ULL << 32);

	cfg = base_config();
	cfg.mmio = bad;
	cfg.nmmio = 1;
	bad[0] = two_virtio[0];
	bad[0].hid = NULL; expect_einval(&cfg, TABLES_GPA);
	bad[0].hid = ""; expect_einval(&cfg, TABLES_GPA);
	bad[0].hid = "LNRO00050"; expect_einval(&cfg, TABLES_GPA);
	bad[0].hid = "LNRO 005"; expect_einval(&cfg, TABLES_GPA);
	bad[0].hid = "LNRO0005";
	bad[0].base = 1ULL << 32; expect_einval(&cfg, TABLES_GPA);
	bad[0].base = 0xfffff000; bad[0].size = 0x2000; expect_einval(&cfg, TABLES_GPA);

	/* and the limits themselves are fine */
	bad[0].size = 0x1000;
	bad[0].hid = "A";
	cfg.ncpus = 255;
	CHECK(acpi_build(tables, sizeof(tables), TABLES_GPA, &cfg) > 0);
}

/* Pointers follow gpa; tables that would straddle 4 GiB can't be reached
 * through the FADT's 32-bit fields. */
static void test_gpa(void)
{
	struct acpi_config cfg = base_config();
	ssize_t n = acpi_build(tables, sizeof(tables), 0x7fff0000, &cfg);
	uint64_t x;

	CHECK(n > 0);
	x = rd64(tables + 24);
	CHECK(x >= 0x7fff0000 && x < 0x7fff0000 + (uint64_t)n);
	CHECK_EQ(acpi_build(tables, sizeof(tables), 0x100000000ULL - (uint64_t)n + 16, &cfg), -EINVAL);
	CHECK(acpi_build(tables, sizeof(tables), 0x100000000ULL - 0x1000, &cfg) > 0);
}

/* The MP table as Linux's MP parser reads it: floating pointer, checksums,
 * one processor per vCPU (the first boots), the ISA bus, the I/O APIC, an
 * interrupt entry per pin with the level pins marked, LINT0 and LINT1. */
static void test_mptable(void)
{
	struct mptable_config mc = {
		.ncpus = 3, .lapic_addr = LAYOUT_LAPIC_ADDR, .ioapic_addr = LAYOUT_IOAPIC_ADDR,
		.ioapic_id = 3, .ioapic_pins = 24, .level_pins = (1u << 9) | (1u << 16),
	};
	static uint8_t buf[8192];
	const uint8_t *t, *e;
	uint8_t sum = 0;
	ssize_t n;

	n = mptable_build(buf, sizeof(buf), LAYOUT_MPTABLE_ADDR, &mc);
	CHECK_EQ(n, 16 + 44 + 3 * 20 + (2 + 24 + 2) * 8);
	CHECK(!memcmp(buf, "_MP_", 4));
	CHECK_EQ(rd32(buf + 4), LAYOUT_MPTABLE_ADDR + 16);
	CHECK_EQ(buf[8], 1);
	CHECK_EQ(buf[9], 4);
	CHECK_EQ(acpi_checksum(buf, 16), 0);
	CHECK_EQ(buf[11], 0);                          /* no default configuration */
	t = buf + 16;
	CHECK(!memcmp(t, "PCMP", 4));
	CHECK_EQ(rd16(t + 4), n - 16);
	CHECK_EQ(acpi_checksum(t, (size_t)n - 16), 0);
	CHECK_EQ(rd16(t + 34), 3 + 2 + 24 + 2);
	CHECK_EQ(rd32(t + 36), LAYOUT_LAPIC_ADDR);
	e = t + 44;
	for (unsigned int i = 0; i < 3; i++, e += 20) {
		CHECK_EQ(e[0], 0);
		CHECK_EQ(e[1], i);
		CHECK_EQ(e[3], i == 0 ? 3 : 1);        /* enabled, the first the BSP */
	}
	CHECK_EQ(e[0], 1);
	CHECK(!memcmp(e + 2, "ISA   ", 6));
	e += 8;
	CHECK_EQ(e[0], 2);
	CHECK_EQ(e[1], 3);
	CHECK_EQ(e[3], 1);
	CHECK_EQ(rd32(e + 4), LAYOUT_IOAPIC_ADDR);
	e += 8;
	for (unsigned int pin = 0; pin < 24; pin++, e += 8) {
		CHECK_EQ(e[0], 3);
		CHECK_EQ(rd16(e + 2), pin == 9 || pin == 16 ? 0xd : 0);
		CHECK_EQ(e[5], pin);
		CHECK_EQ(e[6], 3);
		CHECK_EQ(e[7], pin);
	}
	CHECK_EQ(e[0], 4);
	CHECK_EQ(e[1], 3);                             /* ExtINT */
	CHECK_EQ(e[7], 0);
	CHECK_EQ(e[8], 4);
	CHECK_EQ(e[9], 1);                             /* NMI */
	CHECK_EQ(e[15], 1);
	for (ssize_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + buf[i]);
	CHECK_EQ(sum, 0);
	/* Refusals: too small a buffer, an I/O APIC ID taken by a CPU. */
	CHECK_EQ(mptable_build(buf, 100, LAYOUT_MPTABLE_ADDR, &mc), -ENOSPC);
	mc.ioapic_id = 2;
	CHECK_EQ(mptable_build(buf, sizeof(buf), LAYOUT_MPTABLE_ADDR, &mc), -EINVAL);
	mc.ioapic_id = 255;
	mc.ncpus = 255;
	CHECK_EQ(mptable_build(buf, 4096, LAYOUT_MPTABLE_ADDR, &mc), -ENOSPC);
	CHECK(mptable_build(buf, sizeof(buf), LAYOUT_MPTABLE_ADDR, &mc) > 0);
	CHECK(sizeof(buf) <= LAYOUT_MPTABLE_SIZE);     /* the most vCPUs fit where it goes */
}

int main(void)
{
	RUN(test_mptable);
	RUN(test_checksum);
	RUN(test_rsdp);
	RUN(test_xsdt);
	RUN(test_fadt);
	RUN(test_madt_1);
	RUN(test_madt_2);
	RUN(test_madt_64);
	RUN(test_madt_255);
	RUN(test_dsdt_s5_bytes);
	RUN(test_dsdt_decoded);
	RUN(test_dsdt_no_devices);
	RUN(test_dsdt_256_devices);
	RUN(test_pkglen_boundaries);
	RUN(test_dsdt_sweep);
	RUN(test_enospc_small);
	RUN(test_enospc_large);
	RUN(test_einval);
	RUN(test_gpa);
	return HARNESS_END();
}

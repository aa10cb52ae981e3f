/* Tier 1: the buses, the legacy devices and exit decode/dispatch, driven
 * through their bus handlers with fake interrupt lines and power sinks. No
 * KVM: the VM here is a zeroed struct with only its buses in use. */
#include "harness.h"
#include "bus.h"
#include "devices/devices.h"
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

HARNESS_DEFINE;

/* An interrupt line that remembers every level it was set to. */
struct irq_rec {
	int levels[64];
	unsigned int n;
	uint32_t gsi;
};

static int irq_rec_set(void *opaque, uint32_t gsi, int level)
{
	struct irq_rec *r = opaque;

	r->gsi = gsi;
	if (r->n < ARRAY_SIZE(r->levels))
		r->levels[r->n++] = level;
	return 0;
}

/* The level the line was last set to; 0 if never set. */
static int irq_level(const struct irq_rec *r)
{
	return r->n ? r->levels[r->n - 1] : 0;
}

static bool irq_ever_raised(const struct irq_rec *r)
{
	for (unsigned int i = 0; i < r->n; i++)
		if (r->levels[i])
			return true;
	return false;
}

struct power_rec {
	enum power_event ev[8];
	unsigned int n;
};

static void power_rec_fn(void *opaque, enum power_event ev)
{
	struct power_rec *p = opaque;

	if (p->n < ARRAY_SIZE(p->ev))
		p->ev[p->n++] = ev;
}

/* A device that logs every access it sees. */
struct access {
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint8_t data[8];
};

struct logdev {
	struct access log[64];
	unsigned int n;
	uint8_t fill;          /* what reads return */
};

static void logdev_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct logdev *d = opaque;
	struct access *a;

	if (d->n >= ARRAY_SIZE(d->log))
		return;
	a = &d->log[d->n++];
	a->offset = offset;
	a->len = len;
	a->is_write = is_write;
	if (is_write)
		memcpy(a->data, data, len);
	else
		memset(data, d->fill, len);
}

static void wr8(bus_handler_fn *fn, void *dev, uint64_t off, uint8_t v)
{
	fn(dev, off, &v, 1, true);
}

static uint8_t rd8(bus_handler_fn *fn, void *dev, uint64_t off)
{
	uint8_t v = 0x5a;

	fn(dev, off, &v, 1, false);
	return v;
}

static void wr16(bus_handler_fn *fn, void *dev, uint64_t off, uint16_t v)
{
	fn(dev, off, &v, 2, true);
}

static uint16_t rd16(bus_handler_fn *fn, void *dev, uint64_t off)
{
	uint16_t v = 0x5a5a;

	fn(dev, off, &v, 2, false);
	return v;
}

/* ---- bus ---- */

static void test_bus_register_and_overlap(void)
{
	struct bus b = { 0 };
	struct logdev d = { 0 };

	CHECK_EQ(bus_register(&b, 0x100, 8, "a", logdev_io, &d), 0);
	CHECK_EQ(bus_register(&b, 0x108, 8, "b", logdev_io, &d), 0);    /* adjacent above */
	CHECK_EQ(bus_register(&b, 0xf8, 8, "c", logdev_io, &d), 0);     /* adjacent below */
	CHECK_EQ(bus_register(&b, 0x104, 8, "x", logdev_io, &d), -EEXIST);
	CHECK_EQ(bus_register(&b, 0xff, 2, "x", logdev_io, &d), -EEXIST);
	CHECK_EQ(bus_register(&b, 0x10f, 1, "x", logdev_io, &d), -EEXIST);
	CHECK_EQ(bus_register(&b, 0x0, 0x1000, "x", logdev_io, &d), -EEXIST);   /* covers all */
	CHECK_EQ(bus_register(&b, 0x102, 1, "x", logdev_io, &d), -EEXIST);      /* inside one */
	CHECK_EQ(b.n, 3);
	CHECK_EQ(bus_register(&b, 0x110, 1, "d", logdev_io, &d), 0);
	CHECK_EQ(b.n, 4);
	for (unsigned int i = 1; i < b.n; i++)
		CHECK(b.windows[i - 1].base + b.windows[i - 1].len <= b.windows[i].base);

	CHECK_STR(bus_find(&b, 0xf8)->name, "c");
	CHECK_STR(bus_find(&b, 0xff)->name, "c");
	CHECK_STR(bus_find(&b, 0x100)->name, "a");
	CHECK_STR(bus_find(&b, 0x107)->name, "a");
	CHECK_STR(bus_find(&b, 0x108)->name, "b");
	CHECK_STR(bus_find(&b, 0x10f)->name, "b");
	CHECK_STR(bus_find(&b, 0x110)->name, "d");
	CHECK(!bus_find(&b, 0x111));
	CHECK(!bus_find(&b, 0xf7));
	CHECK(!bus_find(&b, 0));
	CHECK(!bus_find(&b, UINT64_MAX));
	bus_free(&b);
	CHECK_EQ(b.n, 0);
	CHECK(!bus_find(&b, 0x100));
}

static void test_bus_rejects_bad_windows(void)
{
	struct bus b = { 0 };
	struct logdev d = { 0 };

	CHECK_EQ(bus_register(&b, 0x100, 0, "zero", logdev_io, &d), -EINVAL);
	CHECK_EQ(bus_register(&b, UINT64_MAX - 3, 8, "wrap", logdev_io, &d), -EINVAL);
	CHECK_EQ(bus_register(&b, 1, UINT64_MAX, "wrap", logdev_io, &d), -EINVAL);
	CHECK_EQ(bus_register(&b, 0x100, 4, "nofn", NULL, &d), -EINVAL);
	CHECK_EQ(b.n, 0);
	/* The very top of the space is fine as long as it does not wrap. */
	CHECK_EQ(bus_register(&b, UINT64_MAX - 7, 7, "top", logdev_io, &d), 0);
	CHECK_STR(bus_find(&b, UINT64_MAX - 1)->name, "top");
	bus_free(&b);
}

static void test_bus_access(void)
{
	struct bus b = { 0 };
	struct logdev d = { .fill = 0x3c };
	uint8_t buf[8];
	uint32_t v = 0xa1b2c3d4;

	CHECK_EQ(bus_register(&b, 0x1000, 0x10, "dev", logdev_io, &d), 0);
	CHECK(bus_access(&b, 0x1004, &v, 4, true));
	CHECK_EQ(d.n, 1);
	CHECK_EQ(d.log[0].offset, 4);
	CHECK_EQ(d.log[0].len, 4);
	CHECK(d.log[0].is_write);
	CHECK(!memcmp(d.log[0].data, &v, 4));

	memset(buf, 0, sizeof(buf));
	CHECK(bus_access(&b, 0x100c, buf, 4, false));       /* ends exactly at the window's end */
	CHECK_EQ(d.n, 2);
	CHECK_EQ(d.log[1].offset, 0xc);
	CHECK_EQ(buf[0], 0x3c);
	CHECK_EQ(buf[3], 0x3c);

	/* Straddling the end: no device claims it, reads see all ones. */
	memset(buf, 0, sizeof(buf));
	CHECK(!bus_access(&b, 0x100e, buf, 4, false));
	CHECK_EQ(buf[0], 0xff);
	CHECK_EQ(buf[3], 0xff);
	CHECK_EQ(buf[4], 0);                                 /* not past len */
	CHECK(!bus_access(&b, 0x100f, buf, 2, true));
	CHECK(!bus_access(&b, 0x0fff, buf, 2, false));      /* straddling the start */
	CHECK_EQ(d.n, 2);
	/* Nothing there at all. */
	memset(buf, 0, sizeof(buf));
	CHECK(!bus_access(&b, 0x2000, buf, 8, false));
	for (int i = 0; i < 8; i++)
		CHECK_EQ(buf[i], 0xff);
	v = 0x11223344;
	CHECK(!bus_access(&b, 0x2000, &v, 4, true));
	CHECK_EQ(v, 0x11223344);                             /* writes are left alone */
	CHECK_EQ(d.n, 2);
	bus_free(&b);
}

static void test_bus_many_windows(void)
{
	enum { N = 300 };
	struct bus b = { 0 };
	struct logdev d = { 0 };
	static char names[N][8];
	unsigned int order[N];

	/* Registered in a scrambled order; 7 is coprime with N. */
	for (unsigned int i = 0; i < N; i++)
		order[i] = (i * 7 + 3) % N;
	for (unsigned int i = 0; i < N; i++) {
		unsigned int k = order[i];

		snprintf(names[k], sizeof(names[k]), "w%u", k);
		CHECK_EQ(bus_register(&b, 0x10000 + (uint64_t)k * 0x20, 0x10 + (k % 3), names[k], logdev_io, &d), 0);
	}
	CHECK_EQ(b.n, N);
	for (unsigned int k = 0; k < N; k++) {
		uint64_t base = 0x10000 + (uint64_t)k * 0x20;
		uint64_t len = 0x10 + (k % 3);
		const struct bus_window *w;

		w = bus_find(&b, base);
		CHECK(w && w->name == names[k]);
		w = bus_find(&b, base + len - 1);
		CHECK(w && w->name == names[k]);
		CHECK(!bus_find(&b, base + len));
		CHECK(!bus_find(&b, base - 1));
		CHECK_EQ(bus_register(&b, base + len - 1, 2, "x", logdev_io, &d), -EEXIST);
	}
	CHECK(!bus_find(&b, 0x10000 + N * 0x20));
	CHECK_EQ(b.n, N);
	bus_free(&b);
}

/* ---- serial ---- */

enum { THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5 };

struct uart {
	struct serial s;
	struct irq_rec irq;
	int rfd, wfd;
};

static void uart_open(struct uart *u)
{
	int p[2];

	memset(&u->irq, 0, sizeof(u->irq));
	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	u->rfd = p[0];
	u->wfd = p[1];
	CHECK_EQ(serial_init(&u->s, (struct irq_line){ irq_rec_set, &u->irq, 4 }, u->wfd), 0);
}

static void uart_close(struct uart *u)
{
	serial_destroy(&u->s);
	close(u->rfd);
	close(u->wfd);
}

/* Whatever has reached the pipe so far, as a string. */
static const char *uart_output(struct uart *u)
{
	static char buf[256];
	ssize_t n = read(u->rfd, buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static void test_serial_transmit(void)
{
	struct uart u;

	uart_open(&u);
	CHECK_EQ(rd8(serial_io, &u.s, LSR) & 0x60, 0x60);       /* THRE and TEMT */
	wr8(serial_io, &u.s, THR, 'h');
	wr8(serial_io, &u.s, THR, 'i');
	CHECK_STR(uart_output(&u), "hi");
	CHECK_EQ(rd8(serial_io, &u.s, LSR) & 0x61, 0x60);       /* empty again, no data */
	CHECK(!irq_ever_raised(&u.irq));                         /* IER is 0 */
	uart_close(&u);
}

static void observe_rec(void *opaque, uint8_t c)
{
	char *seen = opaque;
	size_t n = strlen(seen);

	if (n < 15)
		seen[n] = (char)c;
}

/* What goes out is shown to the observer too, byte for byte; what loops
 * back (MCR loop mode) is not output and is not shown. */
static void test_serial_observer(void)
{
	char seen[16] = "";
	struct uart u;

	uart_open(&u);
	u.s.observe = observe_rec;
	u.s.observe_opaque = seen;
	wr8(serial_io, &u.s, THR, 'o');
	wr8(serial_io, &u.s, THR, 'k');
	CHECK_STR(seen, "ok");
	CHECK_STR(uart_output(&u), "ok");
	wr8(serial_io, &u.s, MCR, 0x10);
	wr8(serial_io, &u.s, THR, 'x');
	CHECK_STR(seen, "ok");
	uart_close(&u);
}

static void console_feed(struct vm_boot_times *b, const char *s)
{
	while (*s)
		vm_boot_console(b, (uint8_t)*s++);
}

/* The boot's console milestones: the first byte, the kernel's banner and
 * its "Run ... as init process", each taken once, on a whole line only. */
static void test_boot_console_milestones(void)
{
	static struct vm_boot_times b;
	uint64_t first;

	CHECK(!atomic_load(&b.output) && !atomic_load(&b.banner) && !atomic_load(&b.init));
	console_feed(&b, "[    0.000000] Linux vers");
	first = atomic_load(&b.output);
	CHECK(first);
	CHECK(!atomic_load(&b.banner));                  /* the line is not whole yet */
	console_feed(&b, "ion 6.1.0 (gcc)\r\n");
	CHECK(atomic_load(&b.banner) >= first);
	console_feed(&b, "[    1.0] Run /bin/true as init-like process\n");
	CHECK(!atomic_load(&b.init));
	console_feed(&b, "[    4.2] Run /init as init process\n");
	CHECK(atomic_load(&b.init) >= atomic_load(&b.banner));
	first = atomic_load(&b.init);
	console_feed(&b, "[    4.3] Run /sbin/init as init process\n");
	CHECK_EQ(atomic_load(&b.init), first);           /* the first one counts */
	/* A line longer than the buffer is cut, not overrun. */
	for (int i = 0; i < 1000; i++)
		vm_boot_console(&b, 'x');
	console_feed(&b, "\n");
	CHECK(b.line_len == 0);
}

static void test_serial_dlab(void)
{
	struct uart u;

	uart_open(&u);
	wr8(serial_io, &u.s, IER, 0x05);
	wr8(serial_io, &u.s, LCR, 0x83);
	wr8(serial_io, &u.s, THR, 0x0c);                          /* DLL */
	wr8(serial_io, &u.s, IER, 0x01);                          /* DLM */
	CHECK_EQ(rd8(serial_io, &u.s, THR), 0x0c);
	CHECK_EQ(rd8(serial_io, &u.s, IER), 0x01);
	CHECK_STR(uart_output(&u), "");                          /* DLL write sent nothing */
	wr8(serial_io, &u.s, LCR, 0x03);
	CHECK_EQ(rd8(serial_io, &u.s, LCR), 0x03);
	CHECK_EQ(rd8(serial_io, &u.s, IER), 0x05);               /* IER untouched by the DLM write */
	wr8(serial_io, &u.s, THR, 'z');
	CHECK_STR(uart_output(&u), "z");
	wr8(serial_io, &u.s, LCR, 0x80);
	CHECK_EQ(rd8(serial_io, &u.s, THR), 0x0c);               /* divisor survived */
	uart_close(&u);
}

static void test_serial_thre_interrupt(void)
{
	struct uart u;

	uart_open(&u);
	CHECK_EQ(rd8(serial_io, &u.s, IIR) & 0x0f, 0x01);         /* no interrupt */
	wr8(serial_io, &u.s, IER, 0x02);
	CHECK_EQ(irq_level(&u.irq), 1);
	CHECK_EQ(u.irq.gsi, 4);
	CHECK_EQ(rd8(serial_io, &u.s, IIR) & 0x0f, 0x02);         /* THRI, and that acknowledges */
	CHECK_EQ(irq_level(&u.irq), 0);
	CHECK_EQ(rd8(serial_io, &u.s, IIR) & 0x0f, 0x01);
	wr8(serial_io, &u.s, THR, 'a');                           /* empty again: raised again */
	CHECK_EQ(irq_level(&u.irq), 1);
	CHECK_EQ(rd8(serial_io, &u.s, IIR) & 0x0f, 0x02);
	CHECK_EQ(irq_level(&u.irq), 0);
	/* Edges only: the line is never set to the level it already has. */
	for (unsigned int i = 1; i < u.irq.n; i++)
		CHECK(u.irq.levels[i] != u.irq.levels[i - 1]);
	uart_close(&u);
}

static void test_serial_receive(void)
{
	struct uart u;

	uart_open(&u);
	CHECK_EQ(serial_receive(&u.s, (const uint8_t *)"abc", 3), 3);
	CHECK(rd8(serial_io, &u.s, LSR) & 0x01);                  /* DR */
	CHECK(!irq_ever_raised(&u.irq));                          /* RDI not enabled yet */
	wr8(serial_io, &u.s, IER, 0x01);
	CHECK_EQ(irq_level(&u.irq), 1);
	CHECK_EQ(rd8(serial_io, &u.s, IIR) & 0x0f, 0x04);
	CHECK_EQ(irq_level(&u.irq), 1);                          /* reading IIR does not ack RDI */
	CHECK_EQ(rd8(serial_io, &u.s, THR), 'a');
	CHECK_EQ(irq_level(&u.irq), 1);
	CHECK_EQ(rd8(serial_io, &u.s, THR), 'b');
	CHECK_EQ(rd8(serial_io, &u.s, THR), 'c');
	CHECK_EQ(irq_level(&u.irq), 0);
	CHECK_EQ(rd8(serial_io, &u.s, LSR) & 0x01, 0);
	CHECK_EQ(rd8(serial_io, &u.s, IIR) & 0x0f, 0x01);
	CHECK_EQ(rd8(serial_io, &u.s, THR), 0);                  /* empty FIFO reads 0 */
	/* Input arriving while enabled raises the line at once. */
	CHECK_EQ(serial_receive(&u.s, (const uint8_t *)"d", 1), 1);
	CHECK_EQ(irq_level(&u.irq), 1);
	CHECK_EQ(rd8(serial_io, &u.s, THR), 'd');
	CHECK_EQ(irq_level(&u.irq), 0);
	uart_close(&u);
}

static void test_serial_fifo_depth(void)
{
	struct uart u;
	uint8_t *in = malloc(SERIAL_RX_SIZE + 100);

	CHECK(in);
	for (unsigned int i = 0; i < SERIAL_RX_SIZE + 100; i++)
		in[i] = (uint8_t)(i * 7 + i / 256);
	uart_open(&u);
	CHECK_EQ(serial_receive(&u.s, in, 10), 10);
	CHECK_EQ(serial_receive(&u.s, in + 10, SERIAL_RX_SIZE + 90), SERIAL_RX_SIZE - 10);
	CHECK_EQ(serial_receive(&u.s, in, 1), 0);
	CHECK_EQ(rd8(serial_io, &u.s, THR), in[0]);
	CHECK_EQ(serial_receive(&u.s, in + SERIAL_RX_SIZE, 5), 1);   /* room for one */
	/* Everything comes out in order, across the ring's wrap. */
	for (unsigned int i = 1; i <= SERIAL_RX_SIZE; i++) {
		uint8_t c = rd8(serial_io, &u.s, THR);
		if (c != in[i])
			FAILF("byte %u: got 0x%02x, want 0x%02x", i, c, in[i]);
	}
	CHECK_EQ(rd8(serial_io, &u.s, LSR) & 0x01, 0);
	uart_close(&u);
	free(in);
}

static void test_serial_fifo_clear(void)
{
	struct uart u;

	uart_open(&u);
	wr8(serial_io, &u.s, IER, 0x01);
	CHECK_EQ(serial_receive(&u.s, (const uint8_t *)"xyz", 3), 3);
	CHECK_EQ(irq_level(&u.irq), 1);
	wr8(serial_io, &u.s, FCR, 0x01);                          /* enable only: data kept */
	CHECK(rd8(serial_io, &u.s, LSR) & 0x01);
	CHECK_EQ(rd8(serial_io, &u.s, IIR) & 0xc0, 0xc0);         /* FIFOs enabled */
	wr8(serial_io, &u.s, FCR, 0x03);                          /* clear receive FIFO */
	CHECK_EQ(rd8(serial_io, &u.s, LSR) & 0x01, 0);
	CHECK_EQ(irq_level(&u.irq), 0);
	CHECK_EQ(serial_receive(&u.s, (const uint8_t *)"q", 1), 1);
	CHECK_EQ(rd8(serial_io, &u.s, THR), 'q');                 /* fresh start */
	uart_close(&u);
}

static void test_serial_loopback(void)
{
	struct uart u;

	uart_open(&u);
	wr8(serial_io, &u.s, MCR, 0x10);
	wr8(serial_io, &u.s, THR, 'L');
	wr8(serial_io, &u.s, THR, 'b');
	CHECK_STR(uart_output(&u), "");
	CHECK(rd8(serial_io, &u.s, LSR) & 0x01);
	CHECK_EQ(rd8(serial_io, &u.s, THR), 'L');
	CHECK_EQ(rd8(serial_io, &u.s, THR), 'b');
	wr8(serial_io, &u.s, MCR, 0x0b);
	wr8(serial_io, &u.s, THR, 'o');
	CHECK_STR(uart_output(&u), "o");
	CHECK_EQ(rd8(serial_io, &u.s, LSR) & 0x01, 0);
	uart_close(&u);
}

static void test_serial_wide_access(void)
{
	struct uart u;
	uint8_t two[2] = { 0x34, 0x12 };

	uart_open(&u);
	wr8(serial_io, &u.s, LCR, 0x80);
	serial_io(&u.s, THR, two, 2, true);                       /* DLL, then DLM */
	CHECK_EQ(rd8(serial_io, &u.s, THR), 0x34);
	CHECK_EQ(rd8(serial_io, &u.s, IER), 0x12);
	CHECK_EQ(rd16(serial_io, &u.s, THR), 0x1234);
	wr8(serial_io, &u.s, LCR, 0x03);
	two[0] = 'W';
	two[1] = 0x02;
	serial_io(&u.s, THR, two, 2, true);                       /* THR, then IER */
	CHECK_STR(uart_output(&u), "W");
	CHECK_EQ(rd8(serial_io, &u.s, IER), 0x02);
	/* LCR and MCR in one read. */
	CHECK_EQ(rd16(serial_io, &u.s, LCR), 0x03 | (rd8(serial_io, &u.s, MCR) << 8));
	uart_close(&u);
}

/* ---- ACPI PM ---- */

struct pm {
	struct acpi_pm pm;
	struct irq_rec sci;
	struct power_rec power;
};

static void pm_open(struct pm *p)
{
	memset(p, 0, sizeof(*p));
	acpi_pm_init(&p->pm, (struct irq_line){ irq_rec_set, &p->sci, 9 },
		     (struct power_sink){ power_rec_fn, &p->power });
}

static void test_acpi_pm_s5(void)
{
	struct pm p;
	uint16_t cnt;

	pm_open(&p);
	cnt = rd16(acpi_pm_cnt_io, &p.pm, 0);
	CHECK(cnt & ACPI_PM1_SCI_EN);
	wr16(acpi_pm_cnt_io, &p.pm, 0, 0x3400);                  /* SLP_TYP=5 | SLP_EN */
	CHECK_EQ(p.power.n, 1);
	CHECK_EQ(p.power.ev[0], POWER_OFF);
	cnt = rd16(acpi_pm_cnt_io, &p.pm, 0);
	CHECK(cnt & ACPI_PM1_SCI_EN);
	CHECK(!(cnt & ACPI_PM1_SLP_EN));
	CHECK_EQ((cnt >> ACPI_PM1_SLP_TYP_SHIFT) & 7, 5);
	CHECK_EQ(p.power.n, 1);                                  /* reading sends nothing */
	/* Other sleep types, or S5 without SLP_EN, do not power off. */
	for (unsigned int typ = 0; typ < 8; typ++) {
		if (typ == 5)
			continue;
		wr16(acpi_pm_cnt_io, &p.pm, 0, (uint16_t)(ACPI_PM1_SLP_EN | (typ << ACPI_PM1_SLP_TYP_SHIFT)));
	}
	wr16(acpi_pm_cnt_io, &p.pm, 0, 0x1400);
	CHECK_EQ(p.power.n, 1);
	/* Writing SCI_EN clear does not clear it. */
	wr16(acpi_pm_cnt_io, &p.pm, 0, 0);
	CHECK(rd16(acpi_pm_cnt_io, &p.pm, 0) & ACPI_PM1_SCI_EN);
	/* Byte-wise, the high byte carries SLP_EN. */
	wr8(acpi_pm_cnt_io, &p.pm, 1, 0x34);
	CHECK_EQ(p.power.n, 2);
	CHECK_EQ(p.power.ev[1], POWER_OFF);
	CHECK_EQ(rd8(acpi_pm_cnt_io, &p.pm, 0) & 1, 1);
}

static void test_acpi_pm_power_button(void)
{
	struct pm p;

	pm_open(&p);
	acpi_pm_power_button(&p.pm);
	CHECK(rd16(acpi_pm_evt_io, &p.pm, 0) & ACPI_PM1_PWRBTN);
	CHECK(!irq_ever_raised(&p.sci));                          /* PM1_EN clear */
	CHECK_EQ(p.power.n, 0);
	wr16(acpi_pm_evt_io, &p.pm, 2, ACPI_PM1_PWRBTN);          /* enable: the pending event fires */
	CHECK_EQ(rd16(acpi_pm_evt_io, &p.pm, 2), ACPI_PM1_PWRBTN);
	CHECK_EQ(irq_level(&p.sci), 1);
	CHECK_EQ(p.sci.gsi, 9);
	/* Writing zero to the status bit leaves it; writing one clears it. */
	wr16(acpi_pm_evt_io, &p.pm, 0, 0);
	CHECK(rd16(acpi_pm_evt_io, &p.pm, 0) & ACPI_PM1_PWRBTN);
	CHECK_EQ(irq_level(&p.sci), 1);
	wr16(acpi_pm_evt_io, &p.pm, 0, ACPI_PM1_PWRBTN);
	CHECK_EQ(rd16(acpi_pm_evt_io, &p.pm, 0) & ACPI_PM1_PWRBTN, 0);
	CHECK_EQ(irq_level(&p.sci), 0);
	/* Enabled: a press raises the SCI at once. */
	acpi_pm_power_button(&p.pm);
	CHECK_EQ(irq_level(&p.sci), 1);
	/* One 4-byte access covers STS and EN together. */
	{
		uint32_t v = ACPI_PM1_PWRBTN;                          /* clear STS bit 8; EN becomes 0 */
		acpi_pm_evt_io(&p.pm, 0, &v, 4, true);
		v = 0xffffffff;
		acpi_pm_evt_io(&p.pm, 0, &v, 4, false);
		CHECK_EQ(v, 0);
		CHECK_EQ(irq_level(&p.sci), 0);
	}
	CHECK_EQ(p.power.n, 0);
}

static void test_acpi_pm_reset_register(void)
{
	struct pm p;

	pm_open(&p);
	wr8(acpi_pm_reset_io, &p.pm, 0, 0x00);
	CHECK_EQ(p.power.n, 0);
	wr8(acpi_pm_reset_io, &p.pm, 0, 0x02);
	CHECK_EQ(p.power.n, 0);
	wr8(acpi_pm_reset_io, &p.pm, 0, 0x06);
	CHECK_EQ(p.power.n, 1);
	CHECK_EQ(p.power.ev[0], POWER_RESET);
	CHECK_EQ(rd8(acpi_pm_reset_io, &p.pm, 0), 0);
	CHECK_EQ(p.power.n, 1);
}

/* ---- i8042 ---- */

static void test_i8042(void)
{
	struct power_rec pr = { 0 };
	struct i8042 k;

	i8042_init(&k, (struct irq_line){ 0 }, (struct power_sink){ power_rec_fn, &pr });
	CHECK_EQ(rd8(i8042_io, &k, 4) & 0x01, 0);                 /* OBF clear */
	wr8(i8042_io, &k, 4, 0x60);                               /* write command byte */
	CHECK(rd8(i8042_io, &k, 4) & 0x08);                       /* next data byte is a command's */
	wr8(i8042_io, &k, 0, 0x47);
	CHECK_EQ(rd8(i8042_io, &k, 4) & 0x09, 0);
	wr8(i8042_io, &k, 4, 0x20);                               /* read command byte */
	CHECK_EQ(rd8(i8042_io, &k, 4) & 0x01, 1);
	CHECK_EQ(rd8(i8042_io, &k, 0), 0x47);
	CHECK_EQ(rd8(i8042_io, &k, 4) & 0x01, 0);
	/* A data write that follows no 0x60 goes to the keyboard, which
	 * acknowledges it, and leaves the command byte alone. */
	wr8(i8042_io, &k, 0, 0x11);
	CHECK_EQ(rd8(i8042_io, &k, 0), 0xfa);
	wr8(i8042_io, &k, 4, 0x20);
	CHECK_EQ(rd8(i8042_io, &k, 0), 0x47);
	wr8(i8042_io, &k, 4, 0xaa);                               /* self-test */
	CHECK_EQ(rd8(i8042_io, &k, 0), 0x55);
	CHECK_EQ(pr.n, 0);
	wr8(i8042_io, &k, 0, 0xfe);                               /* 0xfe as data: nothing */
	CHECK_EQ(pr.n, 0);
	wr8(i8042_io, &k, 4, 0xfe);
	CHECK_EQ(pr.n, 1);
	CHECK_EQ(pr.ev[0], POWER_RESET);
}

static int kbd_irq_fn(void *opaque, uint32_t gsi, int level)
{
	unsigned int *edges = opaque;

	CHECK_EQ(gsi, 1);
	if (level)
		(*edges)++;
	return 0;
}

/* What Linux's i8042 and atkbd drivers ask at boot, then Ctrl-Alt-Del. */
static void test_i8042_keyboard(void)
{
	static const uint8_t cad[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14 };
	struct power_rec pr = { 0 };
	unsigned int edges = 0;
	struct i8042 k;

	i8042_init(&k, (struct irq_line){ kbd_irq_fn, &edges, 1 }, (struct power_sink){ power_rec_fn, &pr });
	wr8(i8042_io, &k, 4, 0xab);                               /* keyboard port test */
	CHECK_EQ(rd8(i8042_io, &k, 0), 0x00);
	wr8(i8042_io, &k, 0, 0xf2);                               /* identify */
	CHECK_EQ(rd8(i8042_io, &k, 0), 0xfa);
	CHECK_EQ(rd8(i8042_io, &k, 0), 0xab);
	CHECK_EQ(rd8(i8042_io, &k, 0), 0x83);
	CHECK_EQ(rd8(i8042_io, &k, 4) & 0x01, 0);
	wr8(i8042_io, &k, 0, 0xed);                               /* set LEDs: acknowledged */
	CHECK_EQ(rd8(i8042_io, &k, 0), 0xfa);
	wr8(i8042_io, &k, 0, 0x00);
	CHECK_EQ(rd8(i8042_io, &k, 0), 0xfa);
	wr8(i8042_io, &k, 4, 0xd3);                               /* aux loop: no mouse answers */
	wr8(i8042_io, &k, 0, 0x5a);
	CHECK_EQ(rd8(i8042_io, &k, 4) & 0x01, 0);
	edges = 0;
	i8042_ctrl_alt_del(&k);
	for (size_t i = 0; i < sizeof(cad); i++) {
		CHECK_EQ(rd8(i8042_io, &k, 4) & 0x01, 1);
		CHECK_EQ(rd8(i8042_io, &k, 0), cad[i]);
	}
	CHECK_EQ(edges, sizeof(cad));                             /* one interrupt per byte */
	CHECK_EQ(rd8(i8042_io, &k, 4) & 0x01, 0);
	/* With the keyboard's interrupt off in the command byte, no edges. */
	wr8(i8042_io, &k, 4, 0x60);
	wr8(i8042_io, &k, 0, 0x00);
	edges = 0;
	i8042_ctrl_alt_del(&k);
	CHECK_EQ(edges, 0);
	for (int i = 0; i < 40; i++)                              /* more than queued: the last byte again */
		(void)rd8(i8042_io, &k, 0);
	CHECK_EQ(rd8(i8042_io, &k, 4) & 0x01, 0);
	CHECK_EQ(pr.n, 0);
}

/* ---- RTC ---- */

static uint8_t cmos_read(struct rtc *r, uint8_t idx)
{
	wr8(rtc_io, r, 0, idx);
	return rd8(rtc_io, r, 1);
}

static void cmos_write(struct rtc *r, uint8_t idx, uint8_t v)
{
	wr8(rtc_io, r, 0, idx);
	wr8(rtc_io, r, 1, v);
}

static int bcd(uint8_t v)
{
	if ((v & 0x0f) > 9 || (v >> 4) > 9)
		FAILF("0x%02x is not BCD", v);
	return (v >> 4) * 10 + (v & 0x0f);
}

struct clock { int sec, min, hour, mday, mon, year, wday; };

/* Reads the clock registers, retrying if the host's second ticked meanwhile,
 * and the host's UTC time they should match. */
static void read_clock(struct rtc *r, bool binary, struct clock *c, struct tm *want)
{
	for (int tries = 0; tries < 5; tries++) {
		time_t t0 = time(NULL), t1;
		uint8_t raw[7] = {
			cmos_read(r, 0x00), cmos_read(r, 0x02), cmos_read(r, 0x04), cmos_read(r, 0x07),
			cmos_read(r, 0x08), cmos_read(r, 0x09), cmos_read(r, 0x06),
		};
		int v[7];

		t1 = time(NULL);
		if (t0 != t1)
			continue;
		for (int i = 0; i < 7; i++)
			v[i] = binary ? raw[i] : bcd(raw[i]);
		*c = (struct clock){ v[0], v[1], v[2], v[3], v[4], v[5], v[6] };
		gmtime_r(&t0, want);
		return;
	}
	FAILF("the host clock kept ticking during every read");
}

static void check_clock(const struct clock *c, const struct tm *t)
{
	CHECK_EQ(c->sec, t->tm_sec);
	CHECK_EQ(c->min, t->tm_min);
	CHECK_EQ(c->hour, t->tm_hour);
	CHECK_EQ(c->mday, t->tm_mday);
	CHECK_EQ(c->mon, t->tm_mon + 1);
	CHECK_EQ(c->year, t->tm_year % 100);
	CHECK_EQ(c->wday, t->tm_wday + 1);
}

static void test_rtc_bcd_and_binary(void)
{
	struct rtc r;
	struct clock c;
	struct tm t;

	rtc_init(&r, 512 << 20, 0);
	CHECK_EQ(cmos_read(&r, 0x0b), 0x02);                      /* 24h, BCD */
	read_clock(&r, false, &c, &t);
	check_clock(&c, &t);
	CHECK_EQ(bcd(cmos_read(&r, 0x32)), (t.tm_year + 1900) / 100);          /* century */

	cmos_write(&r, 0x0b, 0x06);                                /* binary */
	CHECK_EQ(cmos_read(&r, 0x0b), 0x06);
	read_clock(&r, true, &c, &t);
	check_clock(&c, &t);
	CHECK_EQ(cmos_read(&r, 0x32), (t.tm_year + 1900) / 100);

	/* 12-hour binary: 1..12 with bit 7 for PM. */
	cmos_write(&r, 0x0b, 0x04);
	for (int tries = 0; tries < 5; tries++) {
		time_t t0 = time(NULL);
		uint8_t h = cmos_read(&r, 0x04);
		int want;

		if (time(NULL) != t0)
			continue;
		gmtime_r(&t0, &t);
		want = t.tm_hour % 12 ? t.tm_hour % 12 : 12;
		CHECK_EQ(h & 0x7f, want);
		CHECK_EQ(!!(h & 0x80), t.tm_hour >= 12);
		break;
	}
}

static void test_rtc_set_year(void)
{
	struct rtc r;
	struct clock c;
	struct tm t;
	time_t host0, host1;
	int target;

	rtc_init(&r, 512 << 20, 0);
	host0 = time(NULL);
	gmtime_r(&host0, &t);
	/* Four years on keeps any Feb 29 valid. */
	target = (t.tm_year % 100 + 4) % 100;
	cmos_write(&r, 0x09, (uint8_t)(((target / 10) << 4) | (target % 10)));
	host1 = time(NULL);
	CHECK(host1 - host0 <= 1);                                /* the host clock did not move */
	CHECK_EQ(bcd(cmos_read(&r, 0x09)), target);
	/* The offset is kept: later reads, other registers, binary mode. */
	read_clock(&r, false, &c, &t);
	CHECK_EQ(c.year, target);
	CHECK_EQ(c.mon, t.tm_mon + 1);
	CHECK_EQ(c.mday, t.tm_mday);
	CHECK_EQ(c.min, t.tm_min);
	cmos_write(&r, 0x0b, 0x06);
	CHECK_EQ(cmos_read(&r, 0x09), target);
	CHECK(r.offset_s != 0);
	CHECK(labs((long)time(NULL) - (long)host0) <= 2);
	/* Setting the minutes, in binary now, moves the offset by whole minutes. */
	{
		int64_t before = r.offset_s;
		uint8_t m = cmos_read(&r, 0x02), got;

		cmos_write(&r, 0x02, (uint8_t)((m + 30) % 60));
		got = cmos_read(&r, 0x02);
		if (got != (m + 30) % 60 && got != (m + 31) % 60)    /* a minute may tick between */
			FAILF("minutes read back %u after writing %u", got, (m + 30) % 60);
		CHECK_EQ(cmos_read(&r, 0x09), target);
		CHECK(r.offset_s != before);
		CHECK_EQ((r.offset_s - before) % 60, 0);
	}
}

/* Reads the full year the clock shows, century register included. */
static int rtc_full_year(struct rtc *r, bool binary)
{
	uint8_t y = cmos_read(r, 0x09), c = cmos_read(r, 0x32);

	return binary ? c * 100 + y : bcd(c) * 100 + bcd(y);
}

/* A guest writing the date registers over and over with the largest and
 * smallest values they hold: every sum stays in range (the tests run under
 * UBSan, which aborts on the first overflow or negative shift), the clock
 * stays within the years 0000 to 9999 its registers can show, and the
 * offset stays one a snapshot can carry. */
static void test_rtc_hostile_date_writes(void)
{
	static const uint8_t regs[] = { 0x09, 0x32, 0x08, 0x07, 0x04, 0x02, 0x00 };
	static const uint8_t vals[] = { 0xff, 0x00, 0x99, 0x80, 0x7f, 0x01 };
	struct rtc r, back;
	struct snap_buf b = { 0 };
	struct snap_cur cur;
	int year;

	rtc_init(&r, 512 << 20, 0);
	/* Backwards: each month 0 is December of the year before. */
	for (int i = 0; i < 2500; i++)
		cmos_write(&r, 0x08, 0x00);
	year = rtc_full_year(&r, false);
	CHECK(year >= 0 && year <= 1);
	for (int i = 0; i < 2500; i++)
		cmos_write(&r, 0x07, 0x00);                       /* day 0: the day before */
	CHECK(rtc_full_year(&r, false) >= 0);

	/* Forwards: year 0xff is 165 in BCD and 255 in binary, past the century. */
	for (int mode = 0; mode < 2; mode++) {
		bool binary = mode == 1;

		cmos_write(&r, 0x0b, binary ? 0x06 : 0x02);
		for (int i = 0; i < 20000; i++) {
			cmos_write(&r, 0x09, 0xff);
			cmos_write(&r, 0x08, 0xff);
		}
		year = rtc_full_year(&r, binary);
		CHECK(year >= 9000 && year <= 9999);
		/* Every register, every extreme, in turn; the clock read each time. */
		for (int i = 0; i < 20000; i++) {
			cmos_write(&r, regs[i % sizeof(regs)], vals[(i / sizeof(regs)) % sizeof(vals)]);
			year = rtc_full_year(&r, binary);
			if (year < 0 || year > 9999)
				FAILF("after write %d the clock shows year %d", i, year);
		}
	}
	CHECK(r.offset_s > -(10000LL * 366 * 86400) && r.offset_s < 10000LL * 366 * 86400);

	/* A snapshot of whatever the guest did loads again. */
	rtc_save(&r, &b);
	CHECK(!b.oom);
	snap_cur_init(&cur, b.data, b.len);
	rtc_init(&back, 512 << 20, 0);
	CHECK_EQ(rtc_load(&back, &cur), 0);
	CHECK_EQ(back.offset_s, r.offset_s);
	free(b.data);
}

static void test_rtc_registers(void)
{
	struct rtc r;

	rtc_init(&r, 512 << 20, 2ULL << 30);
	/* Memory sizes in 64 KiB units: above 16 MiB, and above 4 GiB. */
	CHECK_EQ(cmos_read(&r, 0x34) | cmos_read(&r, 0x35) << 8, (512 - 16) * 16);
	CHECK_EQ(cmos_read(&r, 0x5b) | cmos_read(&r, 0x5c) << 8 | cmos_read(&r, 0x5d) << 16, 2 * 1024 * 16);
	CHECK_EQ(cmos_read(&r, 0x0d), 0x80);                      /* battery good */
	/* Register C reads, then is clear; the guest cannot write it. */
	r.nvram[0x0c] = 0xc0;
	CHECK_EQ(cmos_read(&r, 0x0c), 0xc0);
	CHECK_EQ(cmos_read(&r, 0x0c), 0x00);
	cmos_write(&r, 0x0c, 0x55);
	CHECK_EQ(cmos_read(&r, 0x0c), 0x00);
	/* Bit 7 of the index is the NMI mask, not part of the index. */
	wr8(rtc_io, &r, 0, 0x80 | 0x0d);
	CHECK_EQ(r.index, 0x0d);
	CHECK_EQ(rd8(rtc_io, &r, 1), 0x80);
	wr8(rtc_io, &r, 0, 0xff);
	CHECK_EQ(r.index, 0x7f);
	wr8(rtc_io, &r, 1, 0x99);
	CHECK_EQ(r.nvram[0x7f], 0x99);
	CHECK_EQ(rd8(rtc_io, &r, 0), 0xff);                       /* the index port reads as nothing */
	/* NVRAM keeps what is written; UIP in register A is read-only. */
	cmos_write(&r, 0x40, 0xa5);
	CHECK_EQ(cmos_read(&r, 0x40), 0xa5);
	cmos_write(&r, 0x0a, 0xa6);
	CHECK_EQ(cmos_read(&r, 0x0a), 0x26);
}

/* ---- exit decode and dispatch ---- */

static uint8_t run_page[4096] __attribute__((aligned(4096)));

static struct kvm_run *fresh_run(void)
{
	memset(run_page, 0, sizeof(run_page));
	return (struct kvm_run *)run_page;
}

static struct vm *fresh_vm(struct vcpu *vcpu)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	CHECK(vm);
	CHECK_EQ(pthread_mutex_init(&vm->lock, NULL), 0);
	CHECK_EQ(pthread_cond_init(&vm->stopped, NULL), 0);
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->kvm.fd = -1;             /* no registers to dump */
	vcpu->kvm.id = 3;
	return vm;
}

static void free_vm(struct vm *vm)
{
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
	pthread_cond_destroy(&vm->stopped);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

static enum vcpu_action feed(struct vm *vm, struct vcpu *vcpu, struct kvm_run *run, struct vcpu_exit *e)
{
	vcpu_decode_exit(run, sizeof(run_page), e);
	return vm_dispatch_exit(vm, vcpu, e);
}

static void io_exit(struct kvm_run *run, uint8_t dir, uint16_t port, uint8_t size, uint32_t count, uint64_t off)
{
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = dir;
	run->io.port = port;
	run->io.size = size;
	run->io.count = count;
	run->io.data_offset = off;
}

static void test_exit_rep_outs(void)
{
	struct vcpu vcpu;
	struct vm *vm = fresh_vm(&vcpu);
	struct logdev d = { 0 };
	struct kvm_run *run = fresh_run();
	struct vcpu_exit e;

	CHECK_EQ(bus_register(&vm->pio, 0x80, 4, "log", logdev_io, &d), 0);
	io_exit(run, KVM_EXIT_IO_OUT, 0x81, 1, 3, 0xc00);
	memcpy(run_page + 0xc00, "xyz", 3);
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_CONTINUE);
	CHECK_EQ(e.kind, VCPU_EXIT_IO);
	CHECK_EQ(e.addr, 0x81);
	CHECK(e.is_write);
	CHECK(e.data == run_page + 0xc00);
	CHECK_EQ(d.n, 3);
	for (unsigned int i = 0; i < 3; i++) {
		CHECK_EQ(d.log[i].offset, 1);
		CHECK_EQ(d.log[i].len, 1);
		CHECK(d.log[i].is_write);
		CHECK_EQ(d.log[i].data[0], "xyz"[i]);
	}
	/* rep insw: two 16-bit reads into consecutive slots. */
	d.fill = 0x7e;
	io_exit(run, KVM_EXIT_IO_IN, 0x82, 2, 2, 0xd00);
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_CONTINUE);
	CHECK_EQ(d.n, 5);
	CHECK_EQ(d.log[3].offset, 2);
	CHECK_EQ(d.log[4].len, 2);
	CHECK(!d.log[4].is_write);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(run_page[0xd00 + i], 0x7e);
	CHECK_EQ(run_page[0xd04], 0);
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_NONE);
	free_vm(vm);
}

static void test_exit_io_outside_page(void)
{
	static const struct { uint8_t size; uint32_t count; uint64_t off; } bad[] = {
		{ 1, 3, sizeof(run_page) - 2 },          /* the last byte spills over */
		{ 1, 1, sizeof(run_page) },
		{ 4, 0x40000001, 0x100 },                /* size * count wraps 32 bits */
		{ 0, 1, 0x100 },
		{ 16, 1, 0x100 },
		{ 1, 1, UINT64_MAX },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct vcpu vcpu;
		struct vm *vm = fresh_vm(&vcpu);
		struct logdev d = { 0 };
		struct kvm_run *run = fresh_run();
		struct vcpu_exit e;

		CHECK_EQ(bus_register(&vm->pio, 0x80, 4, "log", logdev_io, &d), 0);
		io_exit(run, KVM_EXIT_IO_OUT, 0x80, bad[i].size, bad[i].count, bad[i].off);
		vcpu_decode_exit(run, sizeof(run_page), &e);
		if (e.kind != VCPU_EXIT_UNKNOWN)
			FAILF("case %zu: size %u count %u offset 0x%llx decoded as kind %d", i, bad[i].size,
			      bad[i].count, (unsigned long long)bad[i].off, e.kind);
		CHECK(!e.data);
		CHECK_EQ(vm_dispatch_exit(vm, &vcpu, &e), VCPU_STOP);
		CHECK_EQ(atomic_load(&vm->stop), VM_STOP_FAULT);
		CHECK(strstr(vm->diag, "vcpu3"));
		CHECK(strstr(vm->diag, "unexpected KVM exit"));
		CHECK_EQ(d.n, 0);
		free_vm(vm);
	}
	/* The last byte of the page is still fine. */
	{
		struct kvm_run *run = fresh_run();
		struct vcpu_exit e;

		io_exit(run, KVM_EXIT_IO_OUT, 0x80, 2, 2, sizeof(run_page) - 4);
		vcpu_decode_exit(run, sizeof(run_page), &e);
		CHECK_EQ(e.kind, VCPU_EXIT_IO);
	}
}

static void test_exit_io_unclaimed(void)
{
	struct vcpu vcpu;
	struct vm *vm = fresh_vm(&vcpu);
	struct kvm_run *run = fresh_run();
	struct vcpu_exit e;

	io_exit(run, KVM_EXIT_IO_IN, 0x1234, 4, 1, 0x800);
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_CONTINUE);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(run_page[0x800 + i], 0xff);
	CHECK_EQ(run_page[0x804], 0);
	io_exit(run, KVM_EXIT_IO_OUT, 0x1234, 1, 1, 0x900);
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_CONTINUE);        /* writes to nothing are dropped */
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_NONE);
	free_vm(vm);
}

static void test_exit_mmio(void)
{
	struct vcpu vcpu;
	struct vm *vm = fresh_vm(&vcpu);
	struct logdev d = { .fill = 0x99 };
	struct kvm_run *run = fresh_run();
	struct vcpu_exit e;

	CHECK_EQ(bus_register(&vm->mmio, 0xd0000000, 0x1000, "mmio", logdev_io, &d), 0);
	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = 0xd0000010;
	run->mmio.len = 4;
	run->mmio.is_write = 1;
	memcpy(run->mmio.data, "\x01\x02\x03\x04", 4);
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_CONTINUE);
	CHECK_EQ(e.kind, VCPU_EXIT_MMIO);
	CHECK_EQ(d.n, 1);
	CHECK_EQ(d.log[0].offset, 0x10);
	CHECK_EQ(d.log[0].len, 4);
	CHECK(d.log[0].is_write);
	CHECK(!memcmp(d.log[0].data, "\x01\x02\x03\x04", 4));

	run->mmio.is_write = 0;
	run->mmio.len = 8;
	run->mmio.phys_addr = 0xd0000ff8;
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_CONTINUE);
	CHECK_EQ(d.n, 2);
	CHECK_EQ(d.log[1].offset, 0xff8);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(run->mmio.data[i], 0x99);
	/* Nothing mapped: the read sees all ones. */
	run->mmio.phys_addr = 0xe0000000;
	run->mmio.len = 2;
	memset(run->mmio.data, 0, 8);
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_CONTINUE);
	CHECK_EQ(run->mmio.data[0], 0xff);
	CHECK_EQ(run->mmio.data[1], 0xff);
	CHECK_EQ(run->mmio.data[2], 0);
	CHECK_EQ(d.n, 2);
	/* A length past the data array is refused. */
	run->mmio.len = 9;
	vcpu_decode_exit(run, sizeof(run_page), &e);
	CHECK_EQ(e.kind, VCPU_EXIT_UNKNOWN);
	free_vm(vm);
}

static void test_exit_system_events(void)
{
	static const struct { uint32_t type; int stop; } cases[] = {
		{ KVM_SYSTEM_EVENT_SHUTDOWN, VM_STOP_POWEROFF },
		{ KVM_SYSTEM_EVENT_RESET, VM_STOP_RESET },
		{ KVM_SYSTEM_EVENT_CRASH, VM_STOP_FAULT },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct vcpu vcpu;
		struct vm *vm = fresh_vm(&vcpu);
		struct kvm_run *run = fresh_run();
		struct vcpu_exit e;

		run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		run->system_event.type = cases[i].type;
		CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_STOP);
		CHECK_EQ(e.kind, VCPU_EXIT_SYSTEM_EVENT);
		CHECK_EQ(atomic_load(&vm->stop), cases[i].stop);
		if (cases[i].stop == VM_STOP_FAULT)
			CHECK(strstr(vm->diag, "system event"));
		else
			CHECK_EQ(vm->diag[0], 0);
		free_vm(vm);
	}
}

static void test_exit_faults(void)
{
	struct vcpu vcpu;
	struct vm *vm = fresh_vm(&vcpu);
	struct kvm_run *run = fresh_run();
	struct vcpu_exit e;

	run->exit_reason = KVM_EXIT_SHUTDOWN;
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_STOP);
	CHECK_EQ(e.kind, VCPU_EXIT_SHUTDOWN);
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_FAULT);
	CHECK(strstr(vm->diag, "triple fault"));
	CHECK(strstr(vm->diag, "vcpu3"));
	free_vm(vm);

	vm = fresh_vm(&vcpu);
	run = fresh_run();
	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_STOP);
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_FAULT);
	CHECK(strstr(vm->diag, "internal error"));
	CHECK(strstr(vm->diag, "emulate"));
	free_vm(vm);

	vm = fresh_vm(&vcpu);
	run = fresh_run();
	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = KVM_INTERNAL_ERROR_SIMUL_EX;
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_STOP);
	CHECK(strstr(vm->diag, "suberror 2"));
	CHECK(!strstr(vm->diag, "emulate"));
	free_vm(vm);

	vm = fresh_vm(&vcpu);
	run = fresh_run();
	run->exit_reason = KVM_EXIT_FAIL_ENTRY;
	run->fail_entry.hardware_entry_failure_reason = 0x80000021;
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_STOP);
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_FAULT);
	CHECK(strstr(vm->diag, "entry failed"));
	CHECK(strstr(vm->diag, "0x80000021"));
	free_vm(vm);

	vm = fresh_vm(&vcpu);
	run = fresh_run();
	run->exit_reason = 0xabcd;
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_STOP);
	CHECK_EQ(e.kind, VCPU_EXIT_UNKNOWN);
	CHECK(strstr(vm->diag, "unexpected KVM exit 43981"));
	free_vm(vm);
}

static void test_first_stop_wins(void)
{
	struct vcpu vcpu;
	struct vm *vm = fresh_vm(&vcpu);
	struct kvm_run *run = fresh_run();
	struct vcpu_exit e;

	run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_STOP);
	vm_request_stop(vm, VM_STOP_FAULT, "too late");
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_POWEROFF);
	CHECK_EQ(vm->diag[0], 0);
	run->exit_reason = KVM_EXIT_SHUTDOWN;
	CHECK_EQ(feed(vm, &vcpu, run, &e), VCPU_STOP);
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_POWEROFF);
	CHECK(!strstr(vm->diag, "triple"));
	free_vm(vm);

	vm = fresh_vm(&vcpu);
	vm_request_stop(vm, VM_STOP_FAULT, "first");
	vm_request_stop(vm, VM_STOP_RESET, "second");
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_FAULT);
	CHECK(!strcmp(vm->diag, "first"));
	free_vm(vm);
}

/* With vCPUs attached: HLT stops the machine only once every vCPU halted,
 * and a stop asks every vCPU to leave KVM_RUN. */
static void test_exit_hlt_and_intr(void)
{
	static uint8_t pages[2][4096] __attribute__((aligned(4096)));
	struct vcpu vcpus[2];
	struct vm *vm = fresh_vm(&vcpus[0]);
	struct vcpu_exit e = { .kind = VCPU_EXIT_INTR };

	memset(pages, 0, sizeof(pages));
	memset(&vcpus[1], 0, sizeof(vcpus[1]));
	for (int i = 0; i < 2; i++) {
		vcpus[i].vm = vm;
		vcpus[i].kvm.fd = -1;
		vcpus[i].kvm.id = (unsigned int)i;
		vcpus[i].kvm.run = (struct kvm_run *)pages[i];
	}
	vm->vcpus = vcpus;
	vm->ncpus = 2;

	CHECK_EQ(vm_dispatch_exit(vm, &vcpus[0], &e), VCPU_CONTINUE);   /* a kick, nothing asked */
	e.kind = VCPU_EXIT_HLT;
	CHECK_EQ(vm_dispatch_exit(vm, &vcpus[0], &e), VCPU_STOP);
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_NONE);
	CHECK_EQ(vcpus[1].kvm.run->immediate_exit, 0);
	CHECK_EQ(vm_dispatch_exit(vm, &vcpus[1], &e), VCPU_STOP);
	CHECK_EQ(atomic_load(&vm->stop), VM_STOP_HALT);
	CHECK_EQ(vcpus[0].kvm.run->immediate_exit, 1);
	CHECK_EQ(vcpus[1].kvm.run->immediate_exit, 1);
	e.kind = VCPU_EXIT_INTR;
	CHECK_EQ(vm_dispatch_exit(vm, &vcpus[0], &e), VCPU_STOP);
	vm->vcpus = NULL;
	vm->ncpus = 0;
	free_vm(vm);
}

int main(void)
{
	RUN(test_serial_observer);
	RUN(test_boot_console_milestones);
	RUN(test_bus_register_and_overlap);
	RUN(test_bus_rejects_bad_windows);
	RUN(test_bus_access);
	RUN(test_bus_many_windows);
	RUN(test_serial_transmit);
	RUN(test_serial_dlab);
	RUN(test_serial_thre_interrupt);
	RUN(test_serial_receive);
	RUN(test_serial_fifo_depth);
	RUN(test_serial_fifo_clear);
	RUN(test_serial_loopback);
	RUN(test_serial_wide_access);
	RUN(test_acpi_pm_s5);
	RUN(test_acpi_pm_power_button);
	RUN(test_acpi_pm_reset_register);
	RUN(test_i8042);
	RUN(test_i8042_keyboard);
	RUN(test_rtc_bcd_and_binary);
	RUN(test_rtc_set_year);
	RUN(test_rtc_hostile_date_writes);
	RUN(test_rtc_registers);
	RUN(test_exit_rep_outs);
	RUN(test_exit_io_outside_page);
	RUN(test_exit_io_unclaimed);
	RUN(test_exit_mmio);
	RUN(test_exit_system_events);
	RUN(test_exit_faults);
	RUN(test_first_stop_wins);
	RUN(test_exit_hlt_and_intr);
	return HARNESS_END();
}

/* A 16550A UART on the I/O bus: enough of the chip for Linux's 8250 driver,
 * interrupts included, with a deep receive FIFO so pasted input is not lost. */
#include "devices/devices.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

enum {
	UART_RBR_THR = 0, UART_IER = 1, UART_IIR_FCR = 2, UART_LCR = 3,
	UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7,
};
#define IER_RDI   0x01
#define IER_THRI  0x02
#define IER_RLSI  0x04
#define IER_MSI   0x08
#define IIR_NO_INT 0x01
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define LCR_DLAB  0x80
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MCR_LOOP  0x10
#define MCR_OUT2  0x08
#define MSR_DCD   0x80
#define MSR_DSR   0x20
#define MSR_CTS   0x10

int serial_init(struct serial *s, struct irq_line irq, int out_fd)
{
	memset(s, 0, sizeof(*s));
	if (pthread_mutex_init(&s->lock, NULL))
		return -ENOMEM;
	if (pthread_cond_init(&s->rx_space, NULL)) {
		pthread_mutex_destroy(&s->lock);
		return -ENOMEM;
	}
	s->irq = irq;
	s->out_fd = out_fd;
	s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	s->mcr = MCR_OUT2;
	return 0;
}

void serial_destroy(struct serial *s)
{
	pthread_cond_destroy(&s->rx_space);
	pthread_mutex_destroy(&s->lock);
}

static uint8_t serial_iir(const struct serial *s)
{
	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_empty_pending)
		return IIR_THRI;
	return IIR_NO_INT;
}

/* The interrupt output follows the IIR; the IOAPIC or PIC sees the edges. */
static void serial_update_irq(struct serial *s)
{
	int level = serial_iir(s) != IIR_NO_INT;

	if (level != s->irq_level) {
		s->irq_level = level;
		(void)irq_line_set(&s->irq, level);
	}
}

static void serial_emit(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		if (s->rx_count < SERIAL_RX_SIZE) {
			s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_SIZE] = c;
			s->rx_count++;
		}
		return;
	}
	if (s->observe)
		s->observe(s->observe_opaque, c);
	if (s->out_fd >= 0) {
		ssize_t n;
		do {
			n = write(s->out_fd, &c, 1);
		} while (n < 0 && errno == EINTR);
	}
}

static uint8_t serial_read_reg(struct serial *s, unsigned int reg)
{
	uint8_t v;

	switch (reg) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (!s->rx_count)
			return 0;
		v = s->rx[s->rx_head];
		s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
		s->rx_count--;
		pthread_cond_broadcast(&s->rx_space);
		return v;
	case UART_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR_FCR:
		v = serial_iir(s);
		/* Reading the IIR acknowledges a THRE interrupt. */
		if (v == IIR_THRI)
			s->thr_empty_pending = false;
		return v | ((s->fcr & 1) ? IIR_FIFO : 0);
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		v = LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0) | s->lsr_extra;
		s->lsr_extra = 0;
		return v;
	case UART_MSR:
		if (s->mcr & MCR_LOOP)
			/* Loopback wires DTR to DSR, RTS to CTS, OUT1 to RI, OUT2 to DCD. */
			return (uint8_t)(((s->mcr & 0x01) << 5) | ((s->mcr & 0x02) << 3) |
					 ((s->mcr & 0x0c) << 4));
		return s->msr;
	default:
		return s->scr;
	}
}

static void serial_write_reg(struct serial *s, unsigned int reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			return;
		}
		serial_emit(s, v);
		/* The byte leaves at once: the holding register is empty again. */
		s->thr_empty_pending = true;
		return;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			return;
		}
		/* Enabling THRI while THR is empty raises the interrupt (8250 semantics). */
		if (!(s->ier & IER_THRI) && (v & IER_THRI))
			s->thr_empty_pending = true;
		s->ier = v & 0x0f;
		return;
	case UART_IIR_FCR:
		s->fcr = v;
		if (v & 0x02) {                 /* clear receive FIFO */
			s->rx_head = s->rx_count = 0;
			pthread_cond_broadcast(&s->rx_space);
		}
		return;
	case UART_LCR:
		s->lcr = v;
		return;
	case UART_MCR:
		s->mcr = v & 0x1f;
		return;
	case UART_SCR:
		s->scr = v;
		return;
	default:
		return;                         /* LSR and MSR are read-only */
	}
}

void serial_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;
	uint8_t *bytes = data;

	pthread_mutex_lock(&s->lock);
	/* A wider access touches consecutive registers, as on an ISA bus. */
	for (uint32_t i = 0; i < len; i++) {
		unsigned int reg = (unsigned int)(offset + i) & 7;
		if (is_write)
			serial_write_reg(s, reg, bytes[i]);
		else
			bytes[i] = serial_read_reg(s, reg);
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

unsigned int serial_receive(struct serial *s, const uint8_t *buf, unsigned int len)
{
	unsigned int n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_count < SERIAL_RX_SIZE) {
		s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_SIZE] = buf[n++];
		s->rx_count++;
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_wait_rx_space(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->rx_count == SERIAL_RX_SIZE && !s->closing)
		pthread_cond_wait(&s->rx_space, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

void serial_close_input(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	pthread_cond_broadcast(&s->rx_space);
	pthread_mutex_unlock(&s->lock);
}

void serial_save(struct serial *s, struct snap_buf *b)
{
	pthread_mutex_lock(&s->lock);
	snap_put_u8(b, s->ier);
	snap_put_u8(b, s->lcr);
	snap_put_u8(b, s->mcr);
	snap_put_u8(b, s->lsr_extra);
	snap_put_u8(b, s->msr);
	snap_put_u8(b, s->scr);
	snap_put_u8(b, s->dll);
	snap_put_u8(b, s->dlm);
	snap_put_u8(b, s->fcr);
	snap_put_u8(b, s->thr_empty_pending);
	snap_put_u32(b, s->rx_count);
	for (unsigned int i = 0; i < s->rx_count; i++)
		snap_put_u8(b, s->rx[(s->rx_head + i) % SERIAL_RX_SIZE]);
	pthread_mutex_unlock(&s->lock);
}

int serial_load(struct serial *s, struct snap_cur *c)
{
	uint8_t r[9];
	bool thre;
	uint32_t n;

	snap_get_bytes(c, r, sizeof(r));
	thre = snap_get_bool(c);
	n = snap_get_u32(c);
	if (!c->bad && n > SERIAL_RX_SIZE)
		snap_cur_fail(c, "COM1 holds %u input bytes, more than its %u", n, SERIAL_RX_SIZE);
	if (c->bad)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->ier = r[0] & 0x0f;
	s->lcr = r[1];
	s->mcr = r[2] & 0x1f;
	s->lsr_extra = r[3];
	s->msr = r[4];
	s->scr = r[5];
	s->dll = r[6];
	s->dlm = r[7];
	s->fcr = r[8];
	s->thr_empty_pending = thre;
	s->rx_head = 0;
	snap_get_bytes(c, s->rx, n);
	s->rx_count = c->bad ? 0 : n;
	/* Driven anew, into an irqchip that has its own state back already. */
	s->irq_level = 0;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return c->bad ? -EINVAL : 0;
}

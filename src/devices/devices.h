/* The legacy devices of an x86 nestvm machine. Each sees a bus window, an
 * interrupt line and, where it can end the machine, a power sink: never the VM. */
#ifndef NESTVM_DEVICES_H
#define NESTVM_DEVICES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "snap.h"

enum power_event {
	POWER_OFF = 1,      /* ACPI S5 */
	POWER_RESET,        /* reset register or keyboard-controller pulse */
};

struct power_sink {
	void (*fn)(void *opaque, enum power_event ev);
	void *opaque;
};

static inline void power_sink_send(const struct power_sink *ps, enum power_event ev)
{
	if (ps->fn)
		ps->fn(ps->opaque, ev);
}

/* 16550A UART. Output goes to out_fd; input arrives through serial_receive(). */
#define SERIAL_RX_SIZE 4096
struct serial {
	pthread_mutex_t lock;
	pthread_cond_t rx_space;
	struct irq_line irq;
	int out_fd;
	uint8_t ier, lcr, mcr, lsr_extra, msr, scr, dll, dlm, fcr;
	bool thr_empty_pending;        /* THRE interrupt not yet acknowledged */
	int irq_level;
	uint8_t rx[SERIAL_RX_SIZE];
	unsigned int rx_head, rx_count;
	bool closing;
	void (*observe)(void *opaque, uint8_t c);      /* sees each byte sent out, or NULL */
	void *observe_opaque;
};

MUST_CHECK int serial_init(struct serial *s, struct irq_line irq, int out_fd);
void serial_destroy(struct serial *s);
bus_handler_fn serial_io;
/* Queues up to len input bytes; returns how many fit (0 when the FIFO is full). */
unsigned int serial_receive(struct serial *s, const uint8_t *buf, unsigned int len);
/* Blocks until the guest has drained some input or serial_close_input() runs. */
void serial_wait_rx_space(struct serial *s);
void serial_close_input(struct serial *s);
/* Registers and input FIFO; load re-drives the line (irqchip restored first). */
void serial_save(struct serial *s, struct snap_buf *b);
MUST_CHECK int serial_load(struct serial *s, struct snap_cur *c);

/* i8042 with a keyboard (set 2 scan codes) and no mouse: the reset pulse,
 * the probe a guest's driver makes, and Ctrl-Alt-Del from the host. */
#define I8042_QUEUE 16
struct i8042 {
	pthread_mutex_t lock;
	struct irq_line irq;            /* IRQ 1, edge-triggered */
	struct power_sink power;
	uint8_t cmd, ctr, outp, last;
	uint8_t queue[I8042_QUEUE];     /* bytes for the data port */
	unsigned int head, count;
};
void i8042_init(struct i8042 *k, struct irq_line irq, struct power_sink power);
bus_handler_fn i8042_io;
/* Types Ctrl-Alt-Del on the keyboard. Any thread. */
void i8042_ctrl_alt_del(struct i8042 *k);
void i8042_save(struct i8042 *k, struct snap_buf *b);
MUST_CHECK int i8042_load(struct i8042 *k, struct snap_cur *c);

/* CMOS RTC and NVRAM, reading the host clock. */
struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t nvram[128];
	int64_t offset_s;     /* guest time minus host UTC, as the guest set it */
};
void rtc_init(struct rtc *rtc, uint64_t mem_below_4g, uint64_t mem_above_4g);
bus_handler_fn rtc_io;
/* The index, NVRAM and the guest's offset from the host clock. */
void rtc_save(struct rtc *rtc, struct snap_buf *b);
MUST_CHECK int rtc_load(struct rtc *rtc, struct snap_cur *c);

/* ACPI PM1 fixed hardware: power-button event, S5 through PM1_CNT, and the
 * FADT reset register. */
struct acpi_pm {
	pthread_mutex_t lock;
	struct power_sink power;
	struct irq_line sci;
	uint16_t sts, en, cnt;
};
void acpi_pm_init(struct acpi_pm *pm, struct irq_line sci, struct power_sink power);
bus_handler_fn acpi_pm_evt_io;
bus_handler_fn acpi_pm_cnt_io;
bus_handler_fn acpi_pm_reset_io;
/* Presses the power button: sets PWRBTN_STS and raises the SCI if enabled. */
void acpi_pm_power_button(struct acpi_pm *pm);
/* Status, enable and control; load re-drives the SCI. */
void acpi_pm_save(struct acpi_pm *pm, struct snap_buf *b);
MUST_CHECK int acpi_pm_load(struct acpi_pm *pm, struct snap_cur *c);

#define ACPI_PM1_PWRBTN    (1u << 8)
#define ACPI_PM1_WAK       (1u << 15)
#define ACPI_PM1_SCI_EN    (1u << 0)
#define ACPI_PM1_SLP_EN    (1u << 13)
#define ACPI_PM1_SLP_TYP_SHIFT 10

#endif

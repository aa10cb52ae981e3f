/* The keyboard controller with a keyboard behind it, as far as a guest uses
 * them: the controller's self-tests and command byte, the reset pulse
 * (command 0xfe) that "reboot=k" sends, a keyboard that answers its driver's
 * probe, and Ctrl-Alt-Del typed from the host (scan code set 2), which a
 * Linux guest takes as a reboot. There is no mouse: the aux port never
 * answers, so a driver that probes it gives up on it, after its timeouts;
 * the DSDT declares the keyboard alone, which tells Linux not to probe. */
#include "devices/devices.h"

#include <errno.h>
#include <string.h>

#define I8042_STS_OBF   0x01
#define I8042_STS_SYS   0x04
#define I8042_STS_CMD   0x08
#define I8042_STS_UNLOCKED 0x10         /* the keyboard is not inhibited */

#define I8042_CTR_KBDINT 0x01

#define KBD_ACK         0xfa

void i8042_init(struct i8042 *k, struct irq_line irq, struct power_sink power)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->irq = irq;
	k->power = power;
	k->ctr = I8042_CTR_KBDINT;
}

/* Lock held. The keyboard's line is edge-triggered: one edge per byte. */
static void i8042_pulse(struct i8042 *k)
{
	if (k->count && (k->ctr & I8042_CTR_KBDINT)) {
		(void)irq_line_set(&k->irq, 1);
		(void)irq_line_set(&k->irq, 0);
	}
}

/* Lock held: queues bytes for the data port; what does not fit is lost,
 * as a real controller loses it. */
static void i8042_push(struct i8042 *k, const uint8_t *b, unsigned int n)
{
	bool was_empty = k->count == 0;

	for (unsigned int i = 0; i < n && k->count < I8042_QUEUE; i++)
		k->queue[(k->head + k->count++) % I8042_QUEUE] = b[i];
	if (was_empty)
		i8042_pulse(k);
}

static void i8042_push1(struct i8042 *k, uint8_t b)
{
	i8042_push(k, &b, 1);
}

/* A byte the driver sent to the keyboard: acknowledged, and answered
 * where the driver waits for an answer (reset, identify). */
static void i8042_keyboard_cmd(struct i8042 *k, uint8_t v)
{
	static const uint8_t reset[] = { KBD_ACK, 0xaa }, id[] = { KBD_ACK, 0xab, 0x83 };

	if (v == 0xff)
		i8042_push(k, reset, sizeof(reset));
	else if (v == 0xf2)
		i8042_push(k, id, sizeof(id));
	else
		i8042_push1(k, KBD_ACK);
}

static void i8042_command(struct i8042 *k, uint8_t v)
{
	k->cmd = 0;
	switch (v) {
	case 0x20: i8042_push1(k, k->ctr); break;               /* read command byte */
	case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4:  /* a data byte follows */
		k->cmd = v;
		break;
	case 0xaa: i8042_push1(k, 0x55); break;                 /* self-test passed */
	case 0xab: i8042_push1(k, 0x00); break;                 /* keyboard port test passed */
	case 0xd0: i8042_push1(k, k->outp); break;              /* read output port */
	case 0xfe: power_sink_send(&k->power, POWER_RESET); break;
	default: break;         /* enable, disable, aux test: nothing to answer */
	}
}

static void i8042_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->cmd;

	k->cmd = 0;
	switch (cmd) {
	case 0x60:
		k->ctr = v;
		i8042_pulse(k);
		break;
	case 0xd1: k->outp = v; break;
	case 0xd2: i8042_push1(k, v); break;    /* as if the keyboard sent it */
	case 0xd3: case 0xd4: break;            /* for the aux port: nobody there */
	default: i8042_keyboard_cmd(k, v); break;
	}
}

void i8042_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	uint8_t *v = data;

	if (len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&k->lock);
	if (offset == 4 && is_write) {          /* command port 0x64 */
		i8042_command(k, *v);
	} else if (offset == 4) {
		*v = I8042_STS_SYS | I8042_STS_UNLOCKED | (k->count ? I8042_STS_OBF : 0) | (k->cmd ? I8042_STS_CMD : 0);
	} else if (offset == 0 && is_write) {   /* data port 0x60 */
		i8042_data(k, *v);
	} else if (offset == 0) {
		*v = k->count ? k->queue[k->head] : k->last;
		if (k->count) {
			k->last = *v;
			k->head = (k->head + 1) % I8042_QUEUE;
			k->count--;
			i8042_pulse(k);
		}
	} else if (!is_write) {
		*v = 0xff;
	}
	pthread_mutex_unlock(&k->lock);
}

void i8042_ctrl_alt_del(struct i8042 *k)
{
	/* Set 2: Ctrl, Alt and Del (an extended key) pressed, then released. */
	static const uint8_t keys[] = {
		0x14, 0x11, 0xe0, 0x71,
		0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14,
	};

	pthread_mutex_lock(&k->lock);
	i8042_push(k, keys, sizeof(keys));
	pthread_mutex_unlock(&k->lock);
}

void i8042_save(struct i8042 *k, struct snap_buf *b)
{
	pthread_mutex_lock(&k->lock);
	snap_put_u8(b, k->cmd);
	snap_put_u8(b, k->ctr);
	snap_put_u8(b, k->outp);
	snap_put_u8(b, k->last);
	snap_put_u8(b, (uint8_t)k->count);
	for (unsigned int i = 0; i < k->count; i++)
		snap_put_u8(b, k->queue[(k->head + i) % I8042_QUEUE]);
	pthread_mutex_unlock(&k->lock);
}

/* The queued bytes' edge was sent before the save; the guest's driver reads
 * them by polling the status port or on its next interrupt, so none is sent. */
int i8042_load(struct i8042 *k, struct snap_cur *c)
{
	uint8_t cmd = snap_get_u8(c), ctr = snap_get_u8(c), outp = snap_get_u8(c), last = snap_get_u8(c);
	uint8_t n = snap_get_u8(c);

	if (!c->bad && n > I8042_QUEUE)
		snap_cur_fail(c, "the keyboard controller holds %u bytes, more than its %u", n, I8042_QUEUE);
	if (c->bad)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	k->cmd = cmd;
	k->ctr = ctr;
	k->outp = outp;
	k->last = last;
	k->head = 0;
	snap_get_bytes(c, k->queue, n);
	k->count = c->bad ? 0 : n;
	pthread_mutex_unlock(&k->lock);
	return c->bad ? -EINVAL : 0;
}

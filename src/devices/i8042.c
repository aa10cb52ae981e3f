/* The keyboard controller, reduced to what a guest with no PS/2 device in its
 * ACPI tables still uses: the controller self-test, the command byte, and the
 * reset pulse (command 0xfe) that "reboot=k" sends. */
#include "devices/devices.h"

#include <errno.h>
#include <string.h>

#define I8042_STS_OBF   0x01
#define I8042_STS_SYS   0x04
#define I8042_STS_CMD   0x08

void i8042_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	uint8_t *v = data;

	if (len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (offset == 4 && is_write) {          /* command port 0x64 */
		k->cmd = 0;
		switch (*v) {
		case 0x20: k->out = k->ctr; k->has_out = true; break;   /* read command byte */
		case 0x60: k->cmd = 0x60; break;                        /* write command byte */
		case 0xaa: k->out = 0x55; k->has_out = true; break;     /* self-test passed */
		case 0xfe: power_sink_send(&k->power, POWER_RESET); break;
		default: break;
		}
	} else if (offset == 4) {
		*v = I8042_STS_SYS | (k->has_out ? I8042_STS_OBF : 0) | (k->cmd ? I8042_STS_CMD : 0);
	} else if (offset == 0 && is_write) {   /* data port 0x60 */
		if (k->cmd == 0x60)
			k->ctr = *v;
		k->cmd = 0;
	} else if (offset == 0) {
		*v = k->out;
		k->has_out = false;
	} else if (!is_write) {
		*v = 0xff;
	}
}

void i8042_save(struct i8042 *k, struct snap_buf *b)
{
	snap_put_u8(b, k->cmd);
	snap_put_u8(b, k->ctr);
	snap_put_u8(b, k->out);
	snap_put_u8(b, k->has_out);
}

int i8042_load(struct i8042 *k, struct snap_cur *c)
{
	uint8_t cmd = snap_get_u8(c), ctr = snap_get_u8(c), out = snap_get_u8(c);
	bool has_out = snap_get_bool(c);

	if (c->bad)
		return -EINVAL;
	k->cmd = cmd;
	k->ctr = ctr;
	k->out = out;
	k->has_out = has_out;
	return 0;
}

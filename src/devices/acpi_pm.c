/* ACPI PM1 fixed hardware. Linux powers off by writing SLP_TYP(S5)|SLP_EN to
 * PM1a_CNT and reboots through the FADT reset register; a host-side power
 * button sets PWRBTN_STS and raises the SCI so the guest shuts down cleanly. */
#include "devices/devices.h"
#include "arch/x86/layout.h"

#include <errno.h>
#include <string.h>

void acpi_pm_init(struct acpi_pm *pm, struct irq_line sci, struct power_sink power)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	pm->sci = sci;
	pm->power = power;
	/* SMI_CMD is 0 in the FADT: the machine is always in ACPI mode. */
	pm->cnt = ACPI_PM1_SCI_EN;
}

static void acpi_pm_update_sci(struct acpi_pm *pm)
{
	(void)irq_line_set(&pm->sci, (pm->sts & pm->en) ? 1 : 0);
}

/* PM1_STS (offset 0, write one to clear) and PM1_EN (offset 2). */
void acpi_pm_evt_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint32_t v = 0;

	if (is_write)
		memcpy(&v, data, len);
	pthread_mutex_lock(&pm->lock);
	for (uint32_t i = 0; i < len; i++) {
		uint64_t byte = offset + i;
		uint16_t *reg = byte < 2 ? &pm->sts : &pm->en;
		unsigned int shift = (unsigned int)(byte & 1) * 8;
		uint8_t b = (uint8_t)(v >> (8 * i));

		if (byte >= 4)
			break;
		if (!is_write)
			v |= (uint32_t)((*reg >> shift) & 0xff) << (8 * i);
		else if (byte < 2)
			*reg &= (uint16_t)~((uint16_t)b << shift);
		else
			*reg = (uint16_t)((*reg & ~(0xff << shift)) | (b << shift));
	}
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	if (!is_write)
		memcpy(data, &v, len);
}

void acpi_pm_cnt_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint16_t v = 0;
	bool off = false;

	if (offset + len > 2 || len > 2) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&pm->lock);
	if (!is_write) {
		v = (uint16_t)(pm->cnt >> (8 * offset));
		memcpy(data, &v, len);
	} else {
		memcpy(&v, data, len);
		v = (uint16_t)(v << (8 * offset));
		if (len == 1)
			v = (uint16_t)((pm->cnt & (offset ? 0x00ff : 0xff00)) | v);
		/* SLP_EN is write-only; SCI_EN stays set. */
		pm->cnt = (uint16_t)((v & ~ACPI_PM1_SLP_EN) | ACPI_PM1_SCI_EN);
		if ((v & ACPI_PM1_SLP_EN) &&
		    ((v >> ACPI_PM1_SLP_TYP_SHIFT) & 7) == LAYOUT_ACPI_SLP_TYP_S5)
			off = true;
	}
	pthread_mutex_unlock(&pm->lock);
	if (off)
		power_sink_send(&pm->power, POWER_OFF);
}

void acpi_pm_reset_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;

	(void)offset;
	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	/* Bit 2 is the reset request (0x06 full reset, 0x04 soft). */
	if (len == 1 && (*(uint8_t *)data & 0x04))
		power_sink_send(&pm->power, POWER_RESET);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= ACPI_PM1_PWRBTN;
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_save(struct acpi_pm *pm, struct snap_buf *b)
{
	pthread_mutex_lock(&pm->lock);
	snap_put_u16(b, pm->sts);
	snap_put_u16(b, pm->en);
	snap_put_u16(b, pm->cnt);
	pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_load(struct acpi_pm *pm, struct snap_cur *c)
{
	uint16_t sts = snap_get_u16(c), en = snap_get_u16(c), cnt = snap_get_u16(c);

	if (c->bad)
		return -EINVAL;
	pthread_mutex_lock(&pm->lock);
	pm->sts = sts;
	pm->en = en;
	/* SLP_EN is a write-only trigger: a restored machine does not sleep. */
	pm->cnt = cnt & (uint16_t)~ACPI_PM1_SLP_EN;
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

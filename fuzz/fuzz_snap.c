/* libFuzzer target for the saved-state reader: what "vm start" of a Saved
 * VM, checkpoint restore and "vm receive" read from a file or a socket. The
 * stream reader and every decoder of a record's fields get arbitrary bytes;
 * they must refuse with a reason or decode within bounds, never read past
 * what they were given or write outside guest memory. */
#include "snap.h"
#include "vmstate.h"
#include "devices/devices.h"
#include "arch/x86/state.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)
#define MEM_PAGES 64

static uint8_t guest[MEM_PAGES * SNAP_PAGE];

static void *target(void *opaque, uint64_t gpa, uint64_t npages)
{
	(void)opaque;
	if (gpa >= sizeof(guest) || npages > MEM_PAGES || npages * SNAP_PAGE > sizeof(guest) - gpa)
		return NULL;
	return guest + gpa;
}

static int stream_fd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("snap", MFD_CLOEXEC);

	ASSERT(fd >= 0);
	ASSERT(write(fd, data, size) == (ssize_t)size);
	ASSERT(lseek(fd, 0, SEEK_SET) == 0);
	return fd;
}

/* Every decoder a record's payload can meet, each on a fresh cursor. */
static void decode(const struct snap_record *rec)
{
	struct snap_cur c;
	struct serial s;
	struct rtc rtc;
	struct acpi_pm pm;
	struct i8042 k = { 0 };
	struct x86_vcpu_state st;

	ASSERT(serial_init(&s, (struct irq_line){ NULL, NULL, 4 }, -1) == 0);
	snap_cur_init(&c, rec->payload, rec->len);
	if (serial_load(&s, &c) < 0)
		ASSERT(c.bad && c.why[0]);
	ASSERT(s.rx_count <= SERIAL_RX_SIZE);
	serial_destroy(&s);

	rtc_init(&rtc, 64 << 20, 0);
	snap_cur_init(&c, rec->payload, rec->len);
	if (rtc_load(&rtc, &c) == 0)
		ASSERT(rtc.index < sizeof(rtc.nvram));
	acpi_pm_init(&pm, (struct irq_line){ NULL, NULL, 9 }, (struct power_sink){ 0 });
	snap_cur_init(&c, rec->payload, rec->len);
	(void)acpi_pm_load(&pm, &c);
	snap_cur_init(&c, rec->payload, rec->len);
	(void)i8042_load(&k, &c);

	snap_cur_init(&c, rec->payload, rec->len);
	if (x86_vcpu_state_get(&st, &c, 16384) == 0) {
		ASSERT(!st.nested || (st.nested->size >= sizeof(*st.nested) && st.nested->size <= 16384));
		x86_vcpu_state_free(&st);
	} else {
		ASSERT(c.bad);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_reader r;
	struct snap_record rec;
	struct vmstate_load l;
	char err[512];
	int fd, e, n = 0;

	fd = stream_fd(data, size);
	snap_reader_init(&r, fd);
	e = snap_read_header(&r);
	while (e == 0 && n++ < 64) {
		e = snap_read_record(&r, &rec, target, NULL);
		if (e == 0 && rec.payload) {
			ASSERT(rec.len <= SNAP_RECORD_MAX);
			decode(&rec);
			free(rec.payload);
		}
	}
	ASSERT(e >= 0 || r.err[0]);
	close(fd);

	/* The head as a restore reads it. */
	fd = stream_fd(data, size);
	if (vmstate_load_head(&l, fd, err, sizeof(err)) == 0) {
		ASSERT(l.config_text && strlen(l.config_text) <= SNAP_RECORD_MAX);
		vmstate_load_free(&l);
	} else {
		ASSERT(err[0]);
	}
	close(fd);
	return 0;
}

/* The saved-state format: what "nestvm vm save", checkpoints and live
 * migration write and read, to a file or a socket alike. A header, then
 * typed records, each with its length and a CRC-32 of its header and of its
 * payload, then an end record that counts them; guest memory travels as runs
 * of pages, page-aligned in a file so that they can be read straight into
 * guest RAM. The reader trusts nothing: every length, count and checksum is
 * checked before it is used, and it stops at the first fault with one line
 * saying what and where. Fields are little-endian, written and read one by
 * one through a growable buffer and a bounded cursor. */
#ifndef NESTVM_SNAP_H
#define NESTVM_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SNAP_MAGIC         "NESTVMSS"
#define SNAP_VERSION       1
#define SNAP_HEADER_SIZE   64
#define SNAP_RECORD_HEADER 24
#define SNAP_PAGE          4096ULL
/* A record other than pages is never larger: a vCPU with every MSR and a
 * large nested state is well under 1 MiB. */
#define SNAP_RECORD_MAX    (16u << 20)

enum snap_type {
	SNAP_REC_MACHINE = 1,   /* what the state needs of a host: vendor, sizes, TSC */
	SNAP_REC_CONFIG,        /* the machine configuration, as vm.conf text */
	SNAP_REC_CLOCK,         /* KVM's clock (kvmclock) */
	SNAP_REC_IRQCHIP,       /* the in-kernel PICs and IOAPIC */
	SNAP_REC_PIT,           /* the in-kernel PIT */
	SNAP_REC_VCPU,          /* one vCPU, nested state included */
	SNAP_REC_DEVICE,        /* one device: its name, then its own fields */
	SNAP_REC_PAGES,         /* a run of guest pages */
	SNAP_REC_DISK,          /* a piece of a disk (a migration carries them) */
	SNAP_REC_END = 0xffff,  /* how many records came before */
};
const char *snap_type_name(uint32_t type);

/* ---- fields ---- */

/* A growable buffer that fields are appended to; oom once an allocation failed. */
struct snap_buf {
	uint8_t *data;
	size_t len, cap;
	bool oom;
};
void snap_put_u8(struct snap_buf *b, uint8_t v);
void snap_put_u16(struct snap_buf *b, uint16_t v);
void snap_put_u32(struct snap_buf *b, uint32_t v);
void snap_put_u64(struct snap_buf *b, uint64_t v);
void snap_put_bytes(struct snap_buf *b, const void *p, size_t n);
/* A string: its length (u32), then its bytes. */
void snap_put_str(struct snap_buf *b, const char *s);
/* A kernel structure: its size (u32), then its bytes; read back only at
 * exactly that size, else a fault naming what. */
void snap_put_struct(struct snap_buf *b, const void *p, size_t n);
void snap_buf_free(struct snap_buf *b);

/* A cursor over a record's payload. Reading past the end marks it bad and
 * returns zeros; so does snap_cur_fail, for a value out of range. The first
 * fault's text is kept. */
struct snap_cur {
	const uint8_t *p;
	size_t len, off;
	bool bad;
	char why[128];
};
void snap_cur_init(struct snap_cur *c, const void *p, size_t len);
uint8_t snap_get_u8(struct snap_cur *c);
uint16_t snap_get_u16(struct snap_cur *c);
uint32_t snap_get_u32(struct snap_cur *c);
uint64_t snap_get_u64(struct snap_cur *c);
void snap_get_bytes(struct snap_cur *c, void *dst, size_t n);
/* A string into dst (NUL-terminated); longer than dstlen - 1 is a fault. */
void snap_get_str(struct snap_cur *c, char *dst, size_t dstlen);
void snap_get_struct(struct snap_cur *c, void *p, size_t n, const char *what);
/* A bool: only 0 or 1. */
bool snap_get_bool(struct snap_cur *c);
void snap_cur_fail(struct snap_cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 when nothing went wrong and nothing is left over; else -EINVAL with
 * c->why set. */
MUST_CHECK int snap_cur_done(struct snap_cur *c);

/* ---- the stream ---- */

/* Writes to fd (a file or a socket). Every write is whole or an error;
 * the first error sticks and later calls do nothing. */
struct snap_writer {
	int fd;
	uint64_t off;           /* bytes written so far: page alignment is relative to it */
	uint32_t nrecords;
	int err;                /* -errno of the first failure */
	uint64_t page_bytes;    /* guest memory written */
};
void snap_writer_init(struct snap_writer *w, int fd);
MUST_CHECK int snap_write_header(struct snap_writer *w);
MUST_CHECK int snap_write_record(struct snap_writer *w, uint32_t type, const void *payload, size_t len);
MUST_CHECK int snap_write_buf(struct snap_writer *w, uint32_t type, const struct snap_buf *b);
/* npages pages from host, which hold guest memory at gpa. */
MUST_CHECK int snap_write_pages(struct snap_writer *w, uint64_t gpa, const void *host, uint64_t npages);
MUST_CHECK int snap_write_end(struct snap_writer *w);

/* Where a reader puts the pages of a SNAP_REC_PAGES record: the host
 * address of [gpa, gpa + npages pages), or NULL when that is not all RAM. */
typedef void *(*snap_page_target_fn)(void *opaque, uint64_t gpa, uint64_t npages);

struct snap_reader {
	int fd;
	uint64_t off;
	uint32_t nrecords;
	bool ended;             /* the end record came, and its count matched */
	char err[256];          /* what went wrong, and at which byte */
};

struct snap_record {
	uint32_t type;
	uint64_t offset;        /* of its header in the stream */
	/* Every record but pages: its payload, malloc'd (free it). */
	uint8_t *payload;
	size_t len;
	/* Pages: where they went. */
	uint64_t gpa, npages;
};

void snap_reader_init(struct snap_reader *r, int fd);
/* The header: -EINVAL (not a saved state), -EPROTO (a version this nestvm
 * does not read), -EIO (short or unreadable). r->err says which. */
MUST_CHECK int snap_read_header(struct snap_reader *r);
/* The next record. Pages go straight to target (when it says NULL the
 * record is refused); others come back in rec->payload. 1 after the end
 * record, 0 for a record, -errno with r->err on any fault: a short stream,
 * a checksum that does not match, a record too large, unknown or out of order. */
MUST_CHECK int snap_read_record(struct snap_reader *r, struct snap_record *rec,
				snap_page_target_fn target, void *opaque);

/* CRC-32 (zlib's) over len bytes, continuing crc. */
uint32_t snap_crc(uint32_t crc, const void *p, size_t len);

#endif

/* The saved-state format (see snap.h): fields, the writer and the reader. */
#include "snap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

const char *snap_type_name(uint32_t type)
{
	switch (type) {
	case SNAP_REC_MACHINE: return "machine";
	case SNAP_REC_CONFIG: return "configuration";
	case SNAP_REC_CLOCK: return "clock";
	case SNAP_REC_IRQCHIP: return "irqchip";
	case SNAP_REC_PIT: return "PIT";
	case SNAP_REC_VCPU: return "vCPU";
	case SNAP_REC_DEVICE: return "device";
	case SNAP_REC_PAGES: return "pages";
	case SNAP_REC_DISK: return "disk";
	case SNAP_REC_END: return "end";
	}
	return "unknown";
}

uint32_t snap_crc(uint32_t crc, const void *p, size_t len)
{
	const uint8_t *b = p;

	/* zlib takes lengths as uInt. */
	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		crc = (uint32_t)crc32(crc, b, n);
		b += n;
		len -= n;
	}
	return crc;
}

/* ---- fields ---- */

static void *snap_buf_room(struct snap_buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *d;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->oom = true;
				return NULL;
			}
			cap *= 2;
		}
		d = realloc(b->data, cap);
		if (!d) {
			b->oom = true;
			return NULL;
		}
		b->data = d;
		b->cap = cap;
	}
	b->len += n;
	return b->data + b->len - n;
}

void snap_put_bytes(struct snap_buf *b, const void *p, size_t n)
{
	void *d = snap_buf_room(b, n);

	if (d && n)
		memcpy(d, p, n);
}

void snap_put_u8(struct snap_buf *b, uint8_t v)
{
	snap_put_bytes(b, &v, 1);
}

void snap_put_u16(struct snap_buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	snap_put_bytes(b, x, 2);
}

void snap_put_u32(struct snap_buf *b, uint32_t v)
{
	snap_put_u16(b, (uint16_t)v);
	snap_put_u16(b, (uint16_t)(v >> 16));
}

void snap_put_u64(struct snap_buf *b, uint64_t v)
{
	snap_put_u32(b, (uint32_t)v);
	snap_put_u32(b, (uint32_t)(v >> 32));
}

void snap_put_str(struct snap_buf *b, const char *s)
{
	size_t n = strlen(s);

	snap_put_u32(b, (uint32_t)n);
	snap_put_bytes(b, s, n);
}

void snap_buf_free(struct snap_buf *b)
{
	free(b->data);
	*b = (struct snap_buf){ 0 };
}

void snap_cur_init(struct snap_cur *c, const void *p, size_t len)
{
	*c = (struct snap_cur){ .p = p, .len = len };
}

void snap_cur_fail(struct snap_cur *c, const char *fmt, ...)
{
	va_list ap;

	if (c->bad)
		return;
	c->bad = true;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

void snap_get_bytes(struct snap_cur *c, void *dst, size_t n)
{
	if (!c->bad && n > c->len - c->off)
		snap_cur_fail(c, "ends early: %zu more bytes wanted at byte %zu of %zu", n, c->off, c->len);
	if (c->bad) {
		memset(dst, 0, n);
		return;
	}
	memcpy(dst, c->p + c->off, n);
	c->off += n;
}

uint8_t snap_get_u8(struct snap_cur *c)
{
	uint8_t v;

	snap_get_bytes(c, &v, 1);
	return v;
}

uint16_t snap_get_u16(struct snap_cur *c)
{
	uint8_t x[2];

	snap_get_bytes(c, x, 2);
	return (uint16_t)(x[0] | x[1] << 8);
}

uint32_t snap_get_u32(struct snap_cur *c)
{
	uint32_t lo = snap_get_u16(c);

	return lo | (uint32_t)snap_get_u16(c) << 16;
}

uint64_t snap_get_u64(struct snap_cur *c)
{
	uint64_t lo = snap_get_u32(c);

	return lo | (uint64_t)snap_get_u32(c) << 32;
}

void snap_put_struct(struct snap_buf *b, const void *p, size_t n)
{
	snap_put_u32(b, (uint32_t)n);
	snap_put_bytes(b, p, n);
}

void snap_get_struct(struct snap_cur *c, void *p, size_t n, const char *what)
{
	uint32_t len = snap_get_u32(c);

	if (!c->bad && len != n)
		snap_cur_fail(c, "%s of %u bytes where this nestvm's are %zu", what, len, n);
	snap_get_bytes(c, p, c->bad ? 0 : n);
}

void snap_get_str(struct snap_cur *c, char *dst, size_t dstlen)
{
	uint32_t n = snap_get_u32(c);

	dst[0] = '\0';
	if (c->bad)
		return;
	if (n >= dstlen) {
		snap_cur_fail(c, "a string of %u bytes where at most %zu fit", n, dstlen - 1);
		return;
	}
	snap_get_bytes(c, dst, n);
	dst[c->bad ? 0 : n] = '\0';
	if (!c->bad && memchr(dst, '\0', n))
		snap_cur_fail(c, "a string with a NUL byte inside");
}

bool snap_get_bool(struct snap_cur *c)
{
	uint8_t v = snap_get_u8(c);

	if (v > 1)
		snap_cur_fail(c, "a flag of %u, not 0 or 1", v);
	return v == 1;
}

int snap_cur_done(struct snap_cur *c)
{
	if (!c->bad && c->off != c->len)
		snap_cur_fail(c, "%zu bytes left over", c->len - c->off);
	return c->bad ? -EINVAL : 0;
}

/* ---- the writer ---- */

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	le32(p, (uint32_t)v);
	le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

void snap_writer_init(struct snap_writer *w, int fd)
{
	*w = (struct snap_writer){ .fd = fd };
}

static int snap_out(struct snap_writer *w, const void *p, size_t len)
{
	const uint8_t *b = p;

	if (w->err)
		return w->err;
	while (len) {
		/* A socket's reader may be gone: an error, not SIGPIPE. */
		ssize_t n = send(w->fd, b, len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(w->fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			w->err = n < 0 ? -errno : -EIO;
			return w->err;
		}
		b += n;
		len -= (size_t)n;
		w->off += (uint64_t)n;
	}
	return 0;
}

int snap_write_header(struct snap_writer *w)
{
	uint8_t h[SNAP_HEADER_SIZE] = { 0 };

	memcpy(h, SNAP_MAGIC, 8);
	le32(h + 8, SNAP_VERSION);
	le32(h + 12, SNAP_HEADER_SIZE);
	le32(h + SNAP_HEADER_SIZE - 4, snap_crc(0, h, SNAP_HEADER_SIZE - 4));
	return snap_out(w, h, sizeof(h));
}

static int snap_record_header(struct snap_writer *w, uint32_t type, uint64_t len, uint32_t crc)
{
	uint8_t h[SNAP_RECORD_HEADER] = { 0 };

	le32(h, type);
	le64(h + 8, len);
	le32(h + 16, crc);
	le32(h + 20, snap_crc(0, h, 20));
	w->nrecords++;
	return snap_out(w, h, sizeof(h));
}

int snap_write_record(struct snap_writer *w, uint32_t type, const void *payload, size_t len)
{
	int r;

	if (len > SNAP_RECORD_MAX)
		return w->err = -EFBIG;
	r = snap_record_header(w, type, len, snap_crc(0, payload, len));
	return r < 0 ? r : snap_out(w, payload, len);
}

int snap_write_buf(struct snap_writer *w, uint32_t type, const struct snap_buf *b)
{
	if (b->oom)
		return w->err = -ENOMEM;
	return snap_write_record(w, type, b->data, b->len);
}

/* Zeros up to the next page boundary of the stream, after `ahead` more bytes. */
static uint64_t snap_pad(uint64_t off, uint64_t ahead)
{
	return (SNAP_PAGE - (off + ahead) % SNAP_PAGE) % SNAP_PAGE;
}

int snap_write_pages(struct snap_writer *w, uint64_t gpa, const void *host, uint64_t npages)
{
	static const uint8_t zeros[SNAP_PAGE];
	uint8_t lead[16];
	uint64_t pad = snap_pad(w->off, SNAP_RECORD_HEADER + sizeof(lead));
	uint64_t bytes = npages * SNAP_PAGE;
	uint32_t crc;
	int r;

	le64(lead, gpa);
	le64(lead + 8, npages);
	crc = snap_crc(0, lead, sizeof(lead));
	crc = snap_crc(crc, zeros, pad);
	crc = snap_crc(crc, host, bytes);
	r = snap_record_header(w, SNAP_REC_PAGES, sizeof(lead) + pad + bytes, crc);
	if (r >= 0)
		r = snap_out(w, lead, sizeof(lead));
	if (r >= 0)
		r = snap_out(w, zeros, pad);
	if (r >= 0)
		r = snap_out(w, host, bytes);
	if (r >= 0)
		w->page_bytes += bytes;
	return r;
}

int snap_write_end(struct snap_writer *w)
{
	uint8_t p[4];

	le32(p, w->nrecords);
	return snap_write_record(w, SNAP_REC_END, p, sizeof(p));
}

/* ---- the reader ---- */

void snap_reader_init(struct snap_reader *r, int fd)
{
	*r = (struct snap_reader){ .fd = fd };
}

static int snap_rerr(struct snap_reader *r, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int snap_rerr(struct snap_reader *r, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return e;
}

/* Exactly len bytes, or -EIO with the reason. */
static int snap_in(struct snap_reader *r, void *p, size_t len, const char *what)
{
	uint8_t *b = p;
	uint64_t start = r->off;

	while (len) {
		ssize_t n = read(r->fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return snap_rerr(r, -EIO, "reading %s at byte %llu: %s", what,
					 (unsigned long long)start, strerror(errno));
		if (n == 0)
			return snap_rerr(r, -EIO, "it ends at byte %llu, inside %s: the saved state is truncated",
					 (unsigned long long)r->off, what);
		b += n;
		len -= (size_t)n;
		r->off += (uint64_t)n;
	}
	return 0;
}

int snap_read_header(struct snap_reader *r)
{
	uint8_t h[SNAP_HEADER_SIZE];
	uint32_t version;
	int e;

	e = snap_in(r, h, sizeof(h), "the header");
	if (e < 0)
		return e;
	if (memcmp(h, SNAP_MAGIC, 8))
		return snap_rerr(r, -EINVAL, "not a nestvm saved state (no '%s' magic at byte 0)", SNAP_MAGIC);
	if (snap_crc(0, h, SNAP_HEADER_SIZE - 4) != rd32(h + SNAP_HEADER_SIZE - 4))
		return snap_rerr(r, -EINVAL, "the header's checksum does not match: the saved state is corrupt");
	version = rd32(h + 8);
	if (version > SNAP_VERSION)
		return snap_rerr(r, -EPROTO, "saved by a newer nestvm (format %u; this one reads up to %u)",
				 version, SNAP_VERSION);
	if (version == 0 || rd32(h + 12) != SNAP_HEADER_SIZE)
		return snap_rerr(r, -EINVAL, "format %u with a %u-byte header: not a state this nestvm wrote",
				 version, rd32(h + 12));
	return 0;
}

static int snap_read_pages(struct snap_reader *r, struct snap_record *rec, uint64_t len, uint32_t want,
			   snap_page_target_fn target, void *opaque)
{
	uint8_t lead[16], buf[SNAP_PAGE];
	uint64_t pad, bytes;
	uint32_t crc;
	uint8_t *host;
	int e;

	if (len < sizeof(lead))
		return snap_rerr(r, -EINVAL, "a pages record at byte %llu too short to say where its pages go",
				 (unsigned long long)rec->offset);
	e = snap_in(r, lead, sizeof(lead), "a pages record");
	if (e < 0)
		return e;
	rec->gpa = rd64(lead);
	rec->npages = rd64(lead + 8);
	pad = snap_pad(r->off, 0);
	bytes = len - sizeof(lead);
	if (rec->npages == 0 || rec->gpa % SNAP_PAGE || bytes < pad ||
	    (bytes - pad) / SNAP_PAGE != rec->npages || (bytes - pad) % SNAP_PAGE)
		return snap_rerr(r, -EINVAL, "a pages record at byte %llu whose length (%llu) does not match "
				 "its %llu pages at 0x%llx", (unsigned long long)rec->offset,
				 (unsigned long long)len, (unsigned long long)rec->npages,
				 (unsigned long long)rec->gpa);
	host = target(opaque, rec->gpa, rec->npages);
	if (!host)
		return snap_rerr(r, -EINVAL, "%llu pages at guest address 0x%llx: not guest RAM of this machine",
				 (unsigned long long)rec->npages, (unsigned long long)rec->gpa);
	crc = snap_crc(0, lead, sizeof(lead));
	e = snap_in(r, buf, (size_t)pad, "the padding of a pages record");
	if (e < 0)
		return e;
	for (uint64_t i = 0; i < pad; i++)
		if (buf[i])
			return snap_rerr(r, -EINVAL, "non-zero padding in the pages record at byte %llu",
					 (unsigned long long)rec->offset);
	crc = snap_crc(crc, buf, (size_t)pad);
	bytes -= pad;
	while (bytes) {
		size_t n = bytes > (1u << 20) ? (1u << 20) : (size_t)bytes;

		e = snap_in(r, host, n, "guest pages");
		if (e < 0)
			return e;
		crc = snap_crc(crc, host, n);
		host += n;
		bytes -= n;
	}
	if (crc != want)
		return snap_rerr(r, -EINVAL, "the pages at guest address 0x%llx (record at byte %llu) do not match "
				 "their checksum: the saved state is corrupt", (unsigned long long)rec->gpa,
				 (unsigned long long)rec->offset);
	return 0;
}

int snap_read_record(struct snap_reader *r, struct snap_record *rec, snap_page_target_fn target, void *opaque)
{
	uint8_t h[SNAP_RECORD_HEADER];
	uint64_t len;
	uint32_t type, want;
	int e;

	*rec = (struct snap_record){ .offset = r->off };
	if (r->ended)
		return 1;
	e = snap_in(r, h, sizeof(h), "a record header");
	if (e < 0)
		return e;
	if (snap_crc(0, h, 20) != rd32(h + 20))
		return snap_rerr(r, -EINVAL, "the record header at byte %llu does not match its checksum: "
				 "the saved state is corrupt", (unsigned long long)rec->offset);
	type = rd32(h);
	len = rd64(h + 8);
	want = rd32(h + 16);
	rec->type = type;
	if (rd32(h + 4))
		return snap_rerr(r, -EPROTO, "the record at byte %llu has flags 0x%x this nestvm does not know",
				 (unsigned long long)rec->offset, rd32(h + 4));
	if (type == SNAP_REC_PAGES) {
		e = snap_read_pages(r, rec, len, want, target, opaque);
		if (e >= 0)
			r->nrecords++;
		return e;
	}
	if (!((type >= SNAP_REC_MACHINE && type < SNAP_REC_PAGES) || type == SNAP_REC_DISK || type == SNAP_REC_END))
		return snap_rerr(r, -EPROTO, "a record of type %u at byte %llu, which this nestvm does not know "
				 "(saved by a newer one?)", type, (unsigned long long)rec->offset);
	if (len > SNAP_RECORD_MAX)
		return snap_rerr(r, -EINVAL, "a %s record of %llu bytes at byte %llu, larger than any nestvm writes",
				 snap_type_name(type), (unsigned long long)len, (unsigned long long)rec->offset);
	rec->len = (size_t)len;
	rec->payload = malloc(rec->len ? rec->len : 1);
	if (!rec->payload)
		return snap_rerr(r, -ENOMEM, "out of memory reading a %s record", snap_type_name(type));
	e = snap_in(r, rec->payload, rec->len, "a record");
	if (e >= 0 && snap_crc(0, rec->payload, rec->len) != want)
		e = snap_rerr(r, -EINVAL, "the %s record at byte %llu does not match its checksum: "
			      "the saved state is corrupt", snap_type_name(type), (unsigned long long)rec->offset);
	if (e >= 0 && type == SNAP_REC_END) {
		if (rec->len != 4 || rd32(rec->payload) != r->nrecords)
			e = snap_rerr(r, -EINVAL, "the end record counts %u records where %u came: the saved state "
				      "is incomplete", rec->len == 4 ? rd32(rec->payload) : 0, r->nrecords);
		else
			r->ended = true;
	}
	if (e < 0) {
		free(rec->payload);
		rec->payload = NULL;
		return e;
	}
	if (type == SNAP_REC_END) {
		free(rec->payload);
		rec->payload = NULL;
		return 1;
	}
	r->nrecords++;
	return 0;
}

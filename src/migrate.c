/* Live migration's sending side, its addresses and its answer (see migrate.h). */
#include "migrate.h"
#include "vmstate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define MIG_PAGE        4096ULL
#define MIG_RUN_PAGES   256             /* pages a record, through a 1 MiB bounce buffer */
#define MIG_RUN_CHUNKS  16              /* disk chunks a record: 1 MiB */
#define MIG_DONE_BYTES  (2ULL << 20)    /* this little left dirty: stop and copy */
#define MIG_MAX_ROUNDS  30
#define MIG_ACK_MAX     512

static int mig_err(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int mig_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* ---- addresses ---- */

int migrate_parse_addr(const char *s, struct migrate_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (!strncmp(s, "unix:", 5)) {
		if (!s[5] || strlen(s + 5) >= sizeof(a->path))
			return mig_err(err, errlen, -EINVAL, "'%s': unix:PATH wants a socket path (up to %zu bytes)",
				       s, sizeof(a->path) - 1);
		snprintf(a->path, sizeof(a->path), "%s", s + 5);
		return 0;
	}
	if (!strncmp(s, "tcp:", 4)) {
		const char *colon = strrchr(s + 4, ':');
		size_t hl = colon ? (size_t)(colon - (s + 4)) : 0;
		char *end;
		unsigned long port;

		if (!colon || !hl || hl >= sizeof(a->host) || !colon[1] || strlen(colon + 1) >= sizeof(a->port))
			return mig_err(err, errlen, -EINVAL, "'%s': tcp:HOST:PORT wants a host and a port", s);
		port = strtoul(colon + 1, &end, 10);
		if (*end || !port || port > 65535)
			return mig_err(err, errlen, -EINVAL, "'%s': the port must be 1 to 65535", s);
		a->tcp = true;
		memcpy(a->host, s + 4, hl);
		/* [::1] for IPv6, as in a URL. */
		if (a->host[0] == '[' && a->host[hl - 1] == ']') {
			memmove(a->host, a->host + 1, hl - 2);
			a->host[hl - 2] = '\0';
		}
		snprintf(a->port, sizeof(a->port), "%s", colon + 1);
		return 0;
	}
	return mig_err(err, errlen, -EINVAL, "'%s': an address is unix:PATH or tcp:HOST:PORT", s);
}

/* A socket that stays silent this long is taken for gone: a migration
 * never hangs on a peer that stopped reading or writing. */
#define MIG_IO_TIMEOUT_S 60

static void mig_timeouts(int fd)
{
	struct timeval tv = { MIG_IO_TIMEOUT_S, 0 };

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Numeric addresses only, and localhost: nestvm is linked statically into
 * guest images, where no name service is. */
static int mig_tcp(const struct migrate_addr *a, bool listening, char *err, size_t errlen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} sa = { 0 };
	const char *host = !strcmp(a->host, "localhost") ? "127.0.0.1" : a->host;
	socklen_t len;
	int fd, one = 1, r;
	uint16_t port = (uint16_t)atoi(a->port);

	if (inet_pton(AF_INET, host, &sa.in.sin_addr) == 1) {
		sa.in.sin_family = AF_INET;
		sa.in.sin_port = htons(port);
		len = sizeof(sa.in);
	} else if (inet_pton(AF_INET6, host, &sa.in6.sin6_addr) == 1) {
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons(port);
		len = sizeof(sa.in6);
	} else {
		return mig_err(err, errlen, -EINVAL, "tcp:%s:%s: the host must be an IPv4 or IPv6 address or "
			       "localhost", a->host, a->port);
	}
	fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mig_err(err, errlen, -errno, "tcp:%s:%s: %s", a->host, a->port, strerror(errno));
	if (listening) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		r = bind(fd, &sa.sa, len) == 0 && listen(fd, 1) == 0 ? 0 : -errno;
	} else {
		r = connect(fd, &sa.sa, len) == 0 ? 0 : -errno;
	}
	if (r < 0) {
		close(fd);
		return mig_err(err, errlen, r, "tcp:%s:%s: %s", a->host, a->port, strerror(-r));
	}
	if (!listening)
		mig_timeouts(fd);
	return fd;
}

int migrate_connect(const struct migrate_addr *a, char *err, size_t errlen)
{
	int fd;

	if (a->tcp)
		return mig_tcp(a, false, err, errlen);
	fd = util_unix_connect(a->path, SOCK_STREAM);
	if (fd < 0)
		return mig_err(err, errlen, fd, "unix:%s: %s", a->path,
			       fd == -ENOENT || fd == -ECONNREFUSED ? "nothing listens there (nestvm vm receive)" :
			       strerror(-fd));
	mig_timeouts(fd);
	return fd;
}

int migrate_listen(const struct migrate_addr *a, char *err, size_t errlen)
{
	int fd;

	if (a->tcp)
		return mig_tcp(a, true, err, errlen);
	fd = util_unix_listen(a->path, SOCK_STREAM, 1);
	if (fd < 0)
		return mig_err(err, errlen, fd, "unix:%s: %s", a->path, strerror(-fd));
	return fd;
}

int migrate_accept(int lfd, int timeout_ms, char *err, size_t errlen)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	int r, fd;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return mig_err(err, errlen, -ETIMEDOUT, "no migration came within %d s", timeout_ms / 1000);
	if (r < 0)
		return mig_err(err, errlen, -errno, "waiting for a migration: %s", strerror(errno));
	fd = util_unix_accept(lfd, 0);  /* a unix peer: this user or root */
	if (fd < 0)
		return mig_err(err, errlen, fd, "accepting a migration: %s", strerror(-fd));
	mig_timeouts(fd);
	return fd;
}

/* ---- the answer ---- */

int migrate_wait_ack(int fd, int timeout_ms, char *err, size_t errlen)
{
	char line[MIG_ACK_MAX];
	size_t n = 0;
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	while (n < sizeof(line) - 1) {
		struct pollfd p = { fd, POLLIN, 0 };
		uint64_t now = util_now_ns();
		ssize_t got;
		int r;

		if (now >= deadline)
			return mig_err(err, errlen, -ETIMEDOUT, "the destination did not answer within %d s",
				       timeout_ms / 1000);
		r = poll(&p, 1, (int)((deadline - now) / 1000000ULL) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		got = read(fd, line + n, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return mig_err(err, errlen, -EPROTO, "the destination hung up without answering");
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	if (!strcmp(line, "OK"))
		return 0;
	if (!strncmp(line, "ERR ", 4))
		return mig_err(err, errlen, -EPROTO, "the destination refused it: %s", line + 4);
	return mig_err(err, errlen, -EPROTO, "the destination answered '%.64s'", line);
}

void migrate_send_ack(int fd, const char *error)
{
	char line[MIG_ACK_MAX];
	int n = error ? snprintf(line, sizeof(line), "ERR %s\n", error) : snprintf(line, sizeof(line), "OK\n");

	if (n >= (int)sizeof(line)) {
		line[sizeof(line) - 2] = '\n';
		n = (int)sizeof(line) - 1;
	}
	/* Only one line: the text of an error keeps no newline of its own. */
	for (int i = 0; i < n - 1; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	(void)!util_write_all(fd, line, (size_t)n);
}

/* ---- sending ---- */

struct mig_disk {
	struct virtio_dev *dev;
	uint64_t chunks;
	uint64_t *pending;              /* chunks to send */
};

struct migrate {
	struct vm *vm;
	struct snap_writer *w;
	struct migrate_progress *p;
	uint64_t *pending[GUESTMEM_MAX_REGIONS];        /* pages to send, per region */
	uint64_t *fresh;                /* a round's take, before it is ORed in */
	struct mig_disk disk[VMCONFIG_MAX_DISKS];
	unsigned int ndisks;
	uint8_t *bounce;                /* MIG_RUN_PAGES pages */
	bool logging;
};

static uint64_t mig_words(uint64_t bits)
{
	return (bits + 63) / 64;
}

static bool mig_test(const uint64_t *b, uint64_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

static void mig_set(uint64_t *b, uint64_t i)
{
	b[i / 64] |= 1ULL << (i % 64);
}

static uint64_t mig_count(const uint64_t *b, uint64_t bits)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < mig_words(bits); w++)
		n += (uint64_t)__builtin_popcountll(b[w]);
	return n;
}

void migrate_end(struct migrate *m)
{
	if (!m)
		return;
	if (m->logging) {
		vm_dirty_log_stop(m->vm);
		for (unsigned int i = 0; i < m->ndisks; i++)
			if (virtio_blk_track(m->disk[i].dev, false) < 0) {
				/* Turning tracking off frees, and cannot fail. */
			}
	}
	for (unsigned int i = 0; i < GUESTMEM_MAX_REGIONS; i++)
		free(m->pending[i]);
	for (unsigned int i = 0; i < m->ndisks; i++)
		free(m->disk[i].pending);
	free(m->fresh);
	free(m->bounce);
	free(m);
}

int migrate_begin(struct migrate **out, struct vm *vm, struct snap_writer *w, struct migrate_progress *p,
		  char *err, size_t errlen)
{
	struct migrate *m = calloc(1, sizeof(*m));
	uint64_t most = 0;
	int r;

	*out = NULL;
	if (!m)
		return mig_err(err, errlen, -ENOMEM, "out of memory");
	m->vm = vm;
	m->w = w;
	m->p = p;
	m->bounce = malloc(MIG_RUN_PAGES * MIG_PAGE);
	for (unsigned int i = 0; i < vm->mem.nregions; i++) {
		uint64_t pages = vm->mem.regions[i].size / MIG_PAGE;

		most = MAX(most, pages);
		m->pending[i] = calloc(mig_words(pages), sizeof(uint64_t));
		if (!m->pending[i])
			goto oom;
	}
	m->fresh = calloc(mig_words(most), sizeof(uint64_t));
	if (!m->bounce || !m->fresh)
		goto oom;
	/* Disks come first among the virtio devices. */
	for (unsigned int i = 0; i < vm->cfg.ndisks && i < vm->nvirtio; i++) {
		struct mig_disk *d = &m->disk[m->ndisks];

		d->dev = vm->vdev[i];
		d->chunks = virtio_blk_chunks(d->dev);
		d->pending = calloc(mig_words(d->chunks), sizeof(uint64_t));
		if (!d->pending)
			goto oom;
		m->ndisks++;
	}
	r = vm_dirty_log_start(vm);
	if (r < 0) {
		migrate_end(m);
		return mig_err(err, errlen, r, "turning on dirty page logging: %s: %s", kvm_last_op(), strerror(-r));
	}
	m->logging = true;
	for (unsigned int i = 0; i < m->ndisks; i++) {
		r = virtio_blk_track(m->disk[i].dev, true);
		if (r < 0) {
			migrate_end(m);
			return mig_err(err, errlen, r, "tracking disk writes: %s", strerror(-r));
		}
	}
	*out = m;
	return 0;
oom:
	migrate_end(m);
	return mig_err(err, errlen, -ENOMEM, "out of memory");
}

static int mig_write_err(struct migrate *m, char *err, size_t errlen)
{
	return mig_err(err, errlen, m->w->err, "sending to the destination: %s", strerror(-m->w->err));
}

/* Sends the pending pages of every region, copied first: the guest may
 * write them meanwhile (they are then dirty again), and what is sent must
 * match its checksum. */
static int mig_send_pages(struct migrate *m, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < m->vm->mem.nregions; i++) {
		const struct guestmem_region *g = &m->vm->mem.regions[i];
		uint64_t pages = g->size / MIG_PAGE;

		for (uint64_t pg = 0; pg < pages;) {
			uint64_t n = 0;

			if (!mig_test(m->pending[i], pg)) {
				pg++;
				continue;
			}
			while (pg + n < pages && n < MIG_RUN_PAGES && mig_test(m->pending[i], pg + n))
				n++;
			memcpy(m->bounce, g->host + pg * MIG_PAGE, n * MIG_PAGE);
			if (snap_write_pages(m->w, g->gpa + pg * MIG_PAGE, m->bounce, n) < 0)
				return mig_write_err(m, err, errlen);
			atomic_fetch_add(&m->p->memory, n * MIG_PAGE);
			pg += n;
		}
		memset(m->pending[i], 0, mig_words(pages) * sizeof(uint64_t));
	}
	return 0;
}

static int mig_send_disks(struct migrate *m, char *err, size_t errlen)
{
	struct snap_buf b = { 0 };

	for (unsigned int i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disk[i];
		int fd = virtio_blk_image_fd(d->dev);
		uint64_t size = virtio_blk_bytes(d->dev);

		for (uint64_t c = 0; c < d->chunks;) {
			uint64_t n = 0, off = c * VIRTIO_BLK_CHUNK, len;
			ssize_t got;

			if (!mig_test(d->pending, c)) {
				c++;
				continue;
			}
			while (c + n < d->chunks && n < MIG_RUN_CHUNKS && mig_test(d->pending, c + n))
				n++;
			len = MIN(n * VIRTIO_BLK_CHUNK, size - off);
			got = pread(fd, m->bounce, (size_t)len, (off_t)off);
			if (got != (ssize_t)len) {
				snap_buf_free(&b);
				return mig_err(err, errlen, got < 0 ? -errno : -EIO, "reading disk %u at %llu: %s", i,
					       (unsigned long long)off, got < 0 ? strerror(errno) : "short read");
			}
			b.len = 0;
			snap_put_u32(&b, i);
			snap_put_u64(&b, off);
			snap_put_u32(&b, (uint32_t)len);
			snap_put_bytes(&b, m->bounce, (size_t)len);
			if (snap_write_buf(m->w, SNAP_REC_DISK, &b) < 0) {
				snap_buf_free(&b);
				return mig_write_err(m, err, errlen);
			}
			atomic_fetch_add(&m->p->disk, len);
			c += n;
		}
		memset(d->pending, 0, mig_words(d->chunks) * sizeof(uint64_t));
	}
	snap_buf_free(&b);
	return 0;
}

/* Everything once: the touched, non-zero pages (the destination's memory
 * starts zero) and every chunk that holds data. */
static int mig_mark_all(struct migrate *m, char *err, size_t errlen)
{
	unsigned char vec[MIG_RUN_PAGES];

	for (unsigned int i = 0; i < m->vm->mem.nregions; i++) {
		const struct guestmem_region *g = &m->vm->mem.regions[i];
		uint64_t pages = g->size / MIG_PAGE;

		for (uint64_t pg = 0; pg < pages; pg += MIG_RUN_PAGES) {
			uint64_t n = MIN(pages - pg, (uint64_t)MIG_RUN_PAGES);

			if (mincore(g->host + pg * MIG_PAGE, n * MIG_PAGE, vec) < 0)
				return mig_err(err, errlen, -errno, "reading memory residency: %s", strerror(errno));
			for (uint64_t k = 0; k < n; k++) {
				const uint64_t *q = (const uint64_t *)(g->host + (pg + k) * MIG_PAGE);
				bool zero = true;

				if (!(vec[k] & 1))
					continue;
				for (size_t x = 0; x < MIG_PAGE / 8 && zero; x++)
					zero = !q[x];
				if (!zero)
					mig_set(m->pending[i], pg + k);
			}
		}
	}
	for (unsigned int i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disk[i];
		int fd = virtio_blk_image_fd(d->dev);
		off_t size = (off_t)virtio_blk_bytes(d->dev), data = 0;

		while (data < size) {
			off_t hole;

			data = lseek(fd, data, SEEK_DATA);
			if (data < 0)
				break;          /* holes to the end */
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0)
				hole = size;
			for (uint64_t c = (uint64_t)data / VIRTIO_BLK_CHUNK;
			     c < d->chunks && c * VIRTIO_BLK_CHUNK < (uint64_t)hole; c++)
				mig_set(d->pending, c);
			data = hole;
		}
	}
	return 0;
}

/* What was written since the last take, added to what is pending; its size. */
static int mig_take(struct migrate *m, uint64_t *bytes, char *err, size_t errlen)
{
	uint64_t total = 0;

	for (unsigned int i = 0; i < m->vm->mem.nregions; i++) {
		uint64_t pages = m->vm->mem.regions[i].size / MIG_PAGE;
		int r;

		memset(m->fresh, 0, mig_words(pages) * sizeof(uint64_t));
		r = vm_dirty_log_take(m->vm, i, m->fresh);
		if (r < 0)
			return mig_err(err, errlen, r, "reading the dirty log: %s: %s", kvm_last_op(), strerror(-r));
		for (uint64_t w = 0; w < mig_words(pages); w++)
			m->pending[i][w] |= m->fresh[w];
		total += mig_count(m->pending[i], pages) * MIG_PAGE;
	}
	for (unsigned int i = 0; i < m->ndisks; i++) {
		virtio_blk_take_dirty(m->disk[i].dev, m->disk[i].pending);
		total += mig_count(m->disk[i].pending, m->disk[i].chunks) * VIRTIO_BLK_CHUNK;
	}
	*bytes = total;
	return 0;
}

int migrate_precopy(struct migrate *m, const char *config_text, _Atomic bool *stop, char *err, size_t errlen)
{
	uint64_t history[3] = { 0, 0, 0 };
	int r;

	r = vmstate_put_head(m->vm, config_text, m->w, err, errlen);
	if (r >= 0)
		r = mig_mark_all(m, err, errlen);
	for (unsigned int round = 0; r >= 0; round++) {
		uint64_t t0 = util_now_ns(), sent0 = m->w->off, dirty, ns;

		atomic_store(&m->p->round, round);
		r = mig_send_pages(m, err, errlen);
		if (r >= 0)
			r = mig_send_disks(m, err, errlen);
		if (r < 0)
			break;
		r = mig_take(m, &dirty, err, errlen);
		if (r < 0)
			break;
		ns = MAX(util_now_ns() - t0, 1ULL);
		atomic_store(&m->p->sent, m->w->off);
		atomic_store(&m->p->dirty, dirty);
		atomic_store(&m->p->rate, (m->w->off - sent0) * 1000000000ULL / ns);
		atomic_store(&m->p->dirty_rate, dirty * 1000000000ULL / ns);
		/* Small enough to stop for; or no longer shrinking; or long enough. */
		if (dirty <= MIG_DONE_BYTES || round + 1 >= MIG_MAX_ROUNDS ||
		    (round >= 5 && dirty * 10 > history[round % 3] * 9) || atomic_load(stop))
			break;
		history[round % 3] = dirty;
	}
	return r;
}

int migrate_finish(struct migrate *m, char *err, size_t errlen)
{
	uint64_t dirty;
	int r;

	atomic_fetch_add(&m->p->round, 1);
	/* Held: nothing a device does reaches memory or disks any more; the
	 * disks are flushed. */
	vmstate_hold_devices(m->vm);
	r = mig_take(m, &dirty, err, errlen);
	if (r >= 0)
		r = mig_send_pages(m, err, errlen);
	if (r >= 0)
		r = mig_send_disks(m, err, errlen);
	if (r >= 0)
		r = vmstate_put_devices(m->vm, m->w, err, errlen);
	vmstate_release_devices(m->vm);
	if (r >= 0 && snap_write_end(m->w) < 0)
		r = mig_write_err(m, err, errlen);
	atomic_store(&m->p->sent, m->w->off);
	return r;
}

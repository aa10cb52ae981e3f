/* Small helpers shared by the whole tree. */
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int util_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int util_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (shift && (*end == 'B' || *end == 'b'))
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int util_read_file(const char *path, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd, err;

	/* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out_close;
	}
	if (fcntl(fd, F_SETFL, 0) < 0) {
		err = -errno;
		goto out_close;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		err = -ENOMEM;
		goto out_close;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			free(buf);
			goto out_close;
		}
		done += (size_t)n;
	}
	*data = buf;
	*len = done;
	err = 0;
out_close:
	close(fd);
	return err;
}

int util_mkdir_p(const char *path, unsigned int mode)
{
	char buf[4096];

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

uint64_t util_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t util_start;

__attribute__((constructor)) static void util_note_start(void)
{
	util_start = util_now_ns();
}

uint64_t util_start_ns(void)
{
	return util_start;
}

const char *util_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int i;

	for (i = 3; i >= 0; i--) {
		uint64_t unit = 1ULL << (10 * (i + 1));
		if (bytes && bytes % unit == 0) {
			snprintf(buf, len, "%lluG", (unsigned long long)(bytes / unit));
			buf[strlen(buf) - 1] = units[i];
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
	return buf;
}

int util_start_worker(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	pthread_setname_np(*t, name);
	return 0;
}

char *util_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int util_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	bool sock = true;

	while (len) {
		ssize_t n = sock ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);

		if (n < 0 && errno == ENOTSOCK && sock) {
			sock = false;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int util_outq_put(struct util_outq *q, size_t max, const void *p, size_t n, char nl)
{
	size_t need = n + (nl ? 1 : 0);

	if (q->off) {
		memmove(q->buf, q->buf + q->off, q->len - q->off);
		q->len -= q->off;
		q->off = 0;
	}
	if (q->len + need > max)
		return -ENOBUFS;
	if (!q->buf && !(q->buf = malloc(max)))
		return -ENOMEM;
	memcpy(q->buf + q->len, p, n);
	if (nl)
		q->buf[q->len + n] = nl;
	q->len += need;
	return 0;
}

int util_outq_flush(struct util_outq *q, int fd)
{
	while (q->off < q->len) {
		ssize_t n = send(fd, q->buf + q->off, q->len - q->off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		q->off += (size_t)n;
	}
	q->off = q->len = 0;
	return 0;
}

void util_outq_free(struct util_outq *q)
{
	free(q->buf);
	*q = (struct util_outq){ 0 };
}

/* path as a sockaddr_un; with *dirfd open (close it after bind or connect)
 * when the path is only reachable as /proc/self/fd/DIRFD/NAME. */
static int util_unix_addr(const char *path, struct sockaddr_un *sun, int *dirfd)
{
	const char *slash;
	char dir[PATH_MAX];
	int n;

	*dirfd = -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) < sizeof(sun->sun_path)) {
		memcpy(sun->sun_path, path, strlen(path) + 1);
		return 0;
	}
	slash = strrchr(path, '/');
	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	*dirfd = open(slash == path ? "/" : dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return -errno;
	n = snprintf(sun->sun_path, sizeof(sun->sun_path), "/proc/self/fd/%d/%s", *dirfd, slash + 1);
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path)) {
		close(*dirfd);
		*dirfd = -1;
		return -ENAMETOOLONG;
	}
	return 0;
}

/* A socket of type connected to path; fd or -errno. */
static int util_unix_dial(const char *path, int type)
{
	struct sockaddr_un sun;
	int fd, dirfd, r;

	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = util_unix_addr(path, &sun, &dirfd);
	if (r == 0) {
		r = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
		if (dirfd >= 0)
			close(dirfd);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Makes room at path for a new socket: nothing there, or a socket that
 * nobody answers (its server died), which is removed. Anything else stays:
 * -EEXIST for a file, directory or link that is not a socket,
 * -EADDRINUSE for a socket someone listens on. */
static int util_unix_clear(const char *path, int type)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = util_unix_dial(path, type & ~SOCK_NONBLOCK);
	if (fd >= 0) {
		close(fd);
		return -EADDRINUSE;
	}
	if (fd != -ECONNREFUSED)
		return fd == -EPROTOTYPE ? -EADDRINUSE : fd;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* Binds fd at path, owner-only whatever the umask: the socket is made in a
 * fresh directory of mode 0700 beside path, given mode 0600 there, and only
 * then linked at path, so no other user ever finds it with a wider mode.
 * An existing path is never replaced (-EEXIST): util_unix_clear went first. */
static int util_unix_bind_private(int fd, const char *path)
{
	char tmp[PATH_MAX], sock[PATH_MAX + 8];
	const char *slash = strrchr(path, '/');
	struct sockaddr_un sun;
	int dirfd, r, n;

	if (slash)
		n = snprintf(tmp, sizeof(tmp), "%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
	else
		n = snprintf(tmp, sizeof(tmp), ".%s.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	if (!mkdtemp(tmp))
		return -errno;
	snprintf(sock, sizeof(sock), "%s/s", tmp);
	r = util_unix_addr(sock, &sun, &dirfd);
	if (r == 0) {
		r = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
		if (dirfd >= 0)
			close(dirfd);
	}
	if (r == 0 && chmod(sock, 0600) < 0)
		r = -errno;
	if (r == 0 && renameat2(AT_FDCWD, sock, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		/* A file system without RENAME_NOREPLACE: link() never replaces either. */
		if (errno == EINVAL)
			r = link(sock, path) < 0 ? -errno : 0;
		else
			r = -errno;
	}
	unlink(sock);
	rmdir(tmp);
	return r;
}

const char *util_unix_listen_strerror(int err)
{
	switch (err) {
	case -EEXIST: return "a file that is not a socket is in the way (not removed: remove it or choose another path)";
	case -EADDRINUSE: return "another process is listening on it (not removed)";
	default: return strerror(-err);
	}
}

int util_unix_listen(const char *path, int type, int backlog)
{
	int fd, r;

	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = util_unix_clear(path, type);
	if (r == 0)
		r = util_unix_bind_private(fd, path);
	if (r == 0 && listen(fd, backlog) < 0) {
		r = -errno;
		unlink(path);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int util_unix_connect(const char *path, int type)
{
	return util_unix_dial(path, type);
}

int util_unix_peer_check(int fd)
{
	static _Atomic uint64_t last_log;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t me = geteuid();
	int domain = AF_UNIX;
	socklen_t dlen = sizeof(domain);
	uint64_t now;

	/* A TCP peer has no credentials to check (migrate tcp:). */
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) == 0 && domain != AF_UNIX)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (cred.uid == me || cred.uid == 0)
		return 0;
	/* One line a second at most: a refused peer must not fill the log. */
	now = util_now_ns() / 1000000000ULL + 1;
	if (last_log != now) {
		last_log = now;
		fprintf(stderr, "nestvm: refused a connection from uid %u (pid %d): only uid %u%s may use this socket\n",
			(unsigned int)cred.uid, (int)cred.pid, (unsigned int)me, me ? " and root" : "");
	}
	return -EACCES;
}

int util_unix_accept(int listen_fd, int flags)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, flags | SOCK_CLOEXEC);

		if (fd < 0)
			return errno == ECONNABORTED ? -EAGAIN : -errno;
		if (util_unix_peer_check(fd) == 0)
			return fd;
		close(fd);
		if (flags & SOCK_NONBLOCK)
			continue;       /* the caller drains until -EAGAIN */
		return -EACCES;
	}
}

int util_serve_poll(int wake, int listen, const int *fds, const short *events, size_t n, int accept_flags,
		    int *accepted, short *revents)
{
	for (;;) {
		struct pollfd p[UTIL_SERVE_MAX + 2];
		size_t map[UTIL_SERVE_MAX + 2];
		nfds_t k = 0;

		p[k++] = (struct pollfd){ .fd = wake, .events = POLLIN };
		p[k++] = (struct pollfd){ .fd = listen, .events = POLLIN };
		for (size_t i = 0; i < n && i < UTIL_SERVE_MAX; i++) {
			revents[i] = 0;
			if (fds[i] >= 0) {
				map[k] = i;
				p[k++] = (struct pollfd){ .fd = fds[i], .events = events ? events[i] : POLLIN };
			}
		}
		if (poll(p, k, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[0].revents)
			return -1;
		*accepted = -1;
		if (p[1].revents & POLLIN) {
			int fd = util_unix_accept(listen, accept_flags);

			*accepted = fd < 0 ? -1 : fd;
		}
		for (nfds_t j = 2; j < k; j++)
			revents[map[j]] = p[j].revents;
		return 0;
	}
}

int util_serve_wait(int wake, int listen, const int *fds, size_t n, int *accepted, bool *ready)
{
	short revents[UTIL_SERVE_MAX];

	if (util_serve_poll(wake, listen, fds, NULL, n, 0, accepted, revents) < 0)
		return -1;
	for (size_t i = 0; i < n && i < UTIL_SERVE_MAX; i++)
		ready[i] = revents[i] != 0;
	return 0;
}

int util_server_start(struct util_server *s, const char *path, void *(*fn)(void *), void *arg, const char *name)
{
	int r;

	s->fd = -1;
	if (pipe2(s->wake, O_CLOEXEC) < 0)
		return -errno;
	s->fd = util_unix_listen(path, SOCK_STREAM, 8);
	r = s->fd < 0 ? s->fd : util_start_worker(&s->thread, fn, arg, name);
	if (r < 0) {
		if (s->fd >= 0)
			close(s->fd);
		close(s->wake[0]);
		close(s->wake[1]);
		return r;
	}
	return 0;
}

void util_server_stop(struct util_server *s)
{
	/* Should the write fail, the thread stays in poll: the process is ending. */
	(void)!write(s->wake[1], "x", 1);
	pthread_join(s->thread, NULL);
	close(s->fd);
	close(s->wake[0]);
	close(s->wake[1]);
}

int util_create_image(const char *path, uint64_t size, bool preallocate)
{
	int fd, r = 0;

	if (!size || size % 512)
		return -EINVAL;
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	/* A disk holds the guest's data: its owner's alone. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (preallocate)
		r = -posix_fallocate(fd, 0, (off_t)size);
	else if (ftruncate(fd, (off_t)size) < 0)
		r = -errno;
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r)
		unlink(path);
	return r;
}

int util_daemon_fork(int *ready)
{
	int p[2], r;
	pid_t pid;

	fflush(NULL);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		pid = fork();
		if (pid != 0)
			_exit(pid < 0 ? 1 : 0);
		*ready = p[1];
		return 0;
	}
	close(p[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	*ready = p[0];
	return 1;
}

int util_daemon_wait(int ready, char *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	int r = 0;

	while (got < len - 1 && !memchr(buf, '\n', got)) {
		struct pollfd pfd = { ready, POLLIN, 0 };
		ssize_t n;

		r = poll(&pfd, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		n = read(ready, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(ready);
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return r < 0 ? r : (int)strlen(buf);
}

static int util_pwrite_all(int fd, const uint8_t *p, size_t n, off_t at)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, at);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		at += w;
	}
	return 0;
}

/* The data extents of in, holes skipped; out already has in's size. */
static int util_copy_sparse(int in, int out, off_t size)
{
	off_t data = 0;

	while (data < size) {
		off_t hole, at;

		data = lseek(in, data, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;   /* nothing but holes after */
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		for (at = data; at < hole;) {
			off_t from = at, to = at;
			ssize_t n = copy_file_range(in, &from, out, &to, (size_t)MIN(hole - at, (off_t)1 << 30), 0);

			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
				char buf[1 << 16];

				n = pread(in, buf, (size_t)MIN(hole - at, (off_t)sizeof(buf)), at);
				if (n > 0 && util_pwrite_all(out, (const uint8_t *)buf, (size_t)n, at) < 0)
					return -errno;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n < 0 ? -errno : -EIO;
			at += n;
		}
		data = hole;
	}
	return 0;
}

int util_copy_file(const char *src, const char *dst, bool *reflinked)
{
	struct stat st;
	int in, out, r = 0;

	if (reflinked)
		*reflinked = false;
	in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return -errno;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(in);
		return r;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	if (ioctl(out, FICLONE, in) == 0) {
		if (reflinked)
			*reflinked = true;
	} else if (ftruncate(out, st.st_size) < 0) {
		r = -errno;
	} else {
		r = util_copy_sparse(in, out, st.st_size);
	}
	if (!r && fsync(out) < 0)
		r = -errno;
	if (close(out) < 0 && !r)
		r = -errno;
	close(in);
	if (r)
		unlink(dst);
	return r;
}

uint64_t util_disk_usage(const char *path)
{
	struct stat st;
	uint64_t total;
	DIR *d;
	struct dirent *e;

	if (lstat(path, &st) < 0)
		return 0;
	total = (uint64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode) || !(d = opendir(path)))
		return total;
	while ((e = readdir(d))) {
		char sub[4096];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < (int)sizeof(sub))
			total += util_disk_usage(sub);
	}
	closedir(d);
	return total;
}

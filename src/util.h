/* Small helpers shared by the whole tree: sizes, strings and error text. */
#ifndef NESTVM_UTIL_H
#define NESTVM_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MUST_CHECK __attribute__((warn_unused_result))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Parses "512M", "2G", "65536K", "1048576" (bytes) into *out. */
MUST_CHECK int util_parse_size(const char *s, uint64_t *out);
/* Parses a decimal unsigned integer in [min, max]. */
MUST_CHECK int util_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Reads a whole file into a malloc'd buffer. */
MUST_CHECK int util_read_file(const char *path, uint8_t **data, size_t *len);

uint64_t util_now_ns(void);
/* util_now_ns() when this process started running its own code. */
uint64_t util_start_ns(void);

/* mkdir -p: every missing directory of path, with mode. */
MUST_CHECK int util_mkdir_p(const char *path, unsigned int mode);

/* Formats a byte count the way the command line accepts it ("512M"). */
const char *util_fmt_size(uint64_t bytes, char *buf, size_t len);

/* Strips leading and trailing white space in place; returns the start. */
char *util_trim(char *s);

/* Writes all of buf, going on after EINTR and short writes; a socket whose
 * peer has gone gives -EPIPE, not SIGPIPE. -errno. */
MUST_CHECK int util_write_all(int fd, const void *buf, size_t len);

/* What a server has for one client and the client has not taken yet, so
 * that the server never waits on it: buf[off..len). Zeroed is empty. */
struct util_outq {
	char *buf;
	size_t off, len;
};
/* Queues n bytes of p, and the byte nl after them unless it is 0: -ENOBUFS
 * (nothing queued) where that would leave more than max bytes unsent,
 * -ENOMEM. */
MUST_CHECK int util_outq_put(struct util_outq *q, size_t max, const void *p, size_t n, char nl);
/* Sends what fd takes now, without waiting: 0, or -errno once the peer is
 * gone. */
MUST_CHECK int util_outq_flush(struct util_outq *q, int fd);
static inline size_t util_outq_pending(const struct util_outq *q)
{
	return q->len - q->off;
}
void util_outq_free(struct util_outq *q);

/* Unix sockets at a path; a path too long for sun_path is reached through
 * its directory's descriptor. util_unix_listen returns the listening fd of
 * a socket that only its owner may open (mode 0600 whatever the umask). It
 * removes nothing but a stale socket, one that nobody answers: -EEXIST
 * when a file, directory or link that is no socket is at path, -EADDRINUSE
 * when a live server is; util_unix_listen_strerror says so in words.
 * util_unix_connect returns the connected fd, -ENOENT or -ECONNREFUSED when
 * nothing listens. type is SOCK_STREAM or SOCK_SEQPACKET, optionally with
 * SOCK_NONBLOCK; both add SOCK_CLOEXEC. */
MUST_CHECK int util_unix_listen(const char *path, int type, int backlog);
MUST_CHECK int util_unix_connect(const char *path, int type);
const char *util_unix_listen_strerror(int err);

/* Whether the peer of a connected unix socket may use it: its uid is this
 * process's effective uid, or root (SO_PEERCRED). 0, or -EACCES after one
 * log line on stderr (at most one a second). A socket of another family
 * (TCP) has no credentials and passes. */
MUST_CHECK int util_unix_peer_check(int fd);
/* accept4 with flags (SOCK_NONBLOCK; SOCK_CLOEXEC is added) that lets in
 * only peers util_unix_peer_check allows, closing the others unanswered.
 * The fd, or -errno: -EAGAIN when nothing more waits (SOCK_NONBLOCK: refused
 * peers are skipped), -EACCES for a refused peer on a blocking accept. */
MUST_CHECK int util_unix_accept(int listen_fd, int flags);

/* A small server's wait, as its thread's loop calls it: until the wake
 * pipe, the listening socket or one of n clients (fds[i] < 0: a free slot;
 * n at most UTIL_SERVE_MAX) is ready for events[i] (NULL: POLLIN each).
 * Returns -1 once woken (or if poll fails), else 0 with *accepted a new
 * client's fd (accepted with accept_flags by util_unix_accept) or -1, and
 * revents[i] what each client is ready for. */
#define UTIL_SERVE_MAX 32
MUST_CHECK int util_serve_poll(int wake, int listen, const int *fds, const short *events, size_t n,
			       int accept_flags, int *accepted, short *revents);
/* The same with POLLIN for each, blocking clients and ready[i] for any event. */
MUST_CHECK int util_serve_wait(int wake, int listen, const int *fds, size_t n, int *accepted, bool *ready);

/* A small server's plumbing: the listening socket at path (owner-only, a
 * stale one replaced, see util_unix_listen), the wake pipe util_serve_wait watches, and its thread, which
 * takes no signals. util_server_stop wakes the thread, joins it and closes
 * both; the clients are the caller's. -errno. */
struct util_server {
	int fd;
	int wake[2];
	pthread_t thread;
};
MUST_CHECK int util_server_start(struct util_server *s, const char *path, void *(*fn)(void *), void *arg,
				 const char *name);
void util_server_stop(struct util_server *s);

/* Creates a raw disk image of size bytes (a multiple of 512) at path, never
 * over an existing file: sparse, or with preallocate every block allocated,
 * and on stable storage before it returns. On failure nothing is left. */
MUST_CHECK int util_create_image(const char *path, uint64_t size, bool preallocate);

/* Copies the regular file src to dst, which must not exist (neither is
 * followed if a link): a reflink (FICLONE) where the file system shares
 * blocks, else only the data, holes left holes (SEEK_DATA and SEEK_HOLE);
 * owner-only and on stable storage before it returns. *reflinked says which
 * (may be NULL). On failure nothing is left at dst. */
MUST_CHECK int util_copy_file(const char *src, const char *dst, bool *reflinked);
/* Blocks a file or a tree takes on disk (st_blocks), links not followed. */
uint64_t util_disk_usage(const char *path);

/* Forks a daemon: a new session, and a second fork, so that it is nobody's
 * child and never a session leader. Returns 1 in this process, with *ready
 * the read end of a pipe on which the daemon reports how it started (see
 * util_daemon_wait); 0 in the daemon, with *ready the write end; -errno. */
MUST_CHECK int util_daemon_fork(int *ready);
/* Reads a daemon's report from ready up to a newline or the pipe's end,
 * waiting up to timeout_ms (-1: as long as it takes); closes ready. Returns
 * its length, the text without the newline in buf, or -ETIMEDOUT. */
MUST_CHECK int util_daemon_wait(int ready, char *buf, size_t len, int timeout_ms);

/* Starts a device worker thread named name that takes no signals: they
 * belong to the vCPU and main threads. -errno. */
MUST_CHECK int util_start_worker(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

#endif

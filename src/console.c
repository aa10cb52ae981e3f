/* The serial console's plumbing: the hub (COM1's output to a log, a ring
 * and attached consoles; their input back to COM1), the terminal console
 * with its Ctrl-A escape, and attaching a terminal to a hub's socket. */
#include "console.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define HUB_RING    (64 << 10)
#define HUB_CLIENTS 8

/* A terminal in raw mode, output still turning \n into \r\n (standard output
 * may be the same terminal); false when fd is no terminal. */
static bool console_raw(int fd, struct termios *saved)
{
	struct termios raw;

	if (!isatty(fd) || tcgetattr(fd, saved) < 0)
		return false;
	raw = *saved;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR;
	tcsetattr(fd, TCSANOW, &raw);
	return true;
}

/* ---- the hub ---- */

struct console_hub {
	int in;                 /* the pipe COM1 writes into: its read end */
	int com1;               /* and its write end, COM1's */
	int out;                /* the log or standard output */
	char *log_path;         /* the log's path, when out is a capped log */
	int listen;             /* the console socket, -1 for none */
	int wake[2];
	console_input_fn input;
	void *opaque;
	pthread_mutex_t lock;   /* ring and clients */
	char ring[HUB_RING];
	size_t ring_len, ring_pos;
	int clients[HUB_CLIENTS];
	pthread_t out_thread, in_thread;
	bool out_started, in_started;
};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The log is full: it becomes path.1 (replacing the one before) and a new
 * log takes its descriptor's number, and that of standard output and error
 * where they are the same file (a detached VMM's own messages). When it
 * cannot move (the directory is read-only, the file was deleted or
 * replaced), the log starts over in place: never more than the cap on disk. */
static void hub_rotate(struct console_hub *h, const struct stat *cur)
{
	size_t len = strlen(h->log_path) + 3;
	char *old = malloc(len);
	struct stat at;
	int fd = -1;

	if (old && stat(h->log_path, &at) == 0 && same_file(&at, cur)) {
		snprintf(old, len, "%s.1", h->log_path);
		if (rename(h->log_path, old) == 0)
			fd = open(h->log_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
				  cur->st_mode & 0777);
	}
	free(old);
	if (fd < 0) {
		(void)!ftruncate(h->out, 0);
		return;
	}
	for (int std = STDOUT_FILENO; std <= STDERR_FILENO; std++) {
		struct stat st;

		if (std != h->out && fstat(std, &st) == 0 && same_file(&st, cur))
			dup2(fd, std);
	}
	if (dup2(fd, h->out) < 0)
		(void)!ftruncate(h->out, 0);
	close(fd);
}

/* To the log, moving it aside first if these bytes would take it past
 * CONSOLE_LOG_MAX: a guest that floods its serial port fills no disk. */
static void hub_log(struct console_hub *h, const char *buf, size_t n)
{
	struct stat st;

	if (h->log_path && fstat(h->out, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    (uint64_t)st.st_size + n > CONSOLE_LOG_MAX)
		hub_rotate(h, &st);
	(void)!util_write_all(h->out, buf, n);
}

static void *hub_out_thread(void *arg)
{
	struct console_hub *h = arg;
	char buf[4096];

	sandbox_enter(SANDBOX_ROLE_CONSOLE);
	for (;;) {
		ssize_t n = read(h->in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		hub_log(h, buf, (size_t)n);
		pthread_mutex_lock(&h->lock);
		for (ssize_t i = 0; i < n; i++) {
			h->ring[h->ring_pos] = buf[i];
			h->ring_pos = (h->ring_pos + 1) % HUB_RING;
		}
		h->ring_len = MIN(h->ring_len + (size_t)n, (size_t)HUB_RING);
		for (int i = 0; i < HUB_CLIENTS; i++)
			if (h->clients[i] >= 0 && send(h->clients[i], buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
			    errno != EAGAIN && errno != EWOULDBLOCK)
				shutdown(h->clients[i], SHUT_RDWR);
		pthread_mutex_unlock(&h->lock);
	}
}

/* A new console: what the console showed lately, then live output. */
static void hub_accept(struct console_hub *h, int fd)
{
	int i;

	pthread_mutex_lock(&h->lock);
	for (i = 0; i < HUB_CLIENTS && h->clients[i] >= 0; i++)
		;
	if (i == HUB_CLIENTS) {
		close(fd);
	} else {
		size_t start = (h->ring_pos + HUB_RING - h->ring_len) % HUB_RING;
		size_t first = MIN(h->ring_len, (size_t)HUB_RING - start);

		/* Never waits on the client, as live output never does: what
		 * its socket cannot take now is its loss, not the console's. */
		if (send(fd, h->ring + start, first, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)first &&
		    h->ring_len > first)
			(void)!send(fd, h->ring, h->ring_len - first, MSG_DONTWAIT | MSG_NOSIGNAL);
		h->clients[i] = fd;
	}
	pthread_mutex_unlock(&h->lock);
}

/* Accepts consoles and passes what they type to the input. */
static void *hub_in_thread(void *arg)
{
	struct console_hub *h = arg;

	sandbox_enter(SANDBOX_ROLE_CONSOLE);
	for (;;) {
		bool ready[HUB_CLIENTS];
		int fds[HUB_CLIENTS], fd;

		pthread_mutex_lock(&h->lock);
		memcpy(fds, h->clients, sizeof(fds));
		pthread_mutex_unlock(&h->lock);
		if (util_serve_wait(h->wake[0], h->listen, fds, HUB_CLIENTS, &fd, ready) < 0)
			return NULL;
		if (fd >= 0)
			hub_accept(h, fd);
		for (int i = 0; i < HUB_CLIENTS; i++) {
			uint8_t buf[256];
			ssize_t got;

			if (!ready[i])
				continue;
			got = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (got <= 0) {
				pthread_mutex_lock(&h->lock);
				close(h->clients[i]);
				h->clients[i] = -1;
				pthread_mutex_unlock(&h->lock);
				continue;
			}
			h->input(h->opaque, buf, (size_t)got);
		}
	}
}

int console_hub_start(struct console_hub **out, int out_fd, const char *log_path, const char *socket_path,
		      console_input_fn input, void *opaque, int *com1_fd)
{
	struct console_hub *h = calloc(1, sizeof(*h));
	int p[2], r;

	if (!h)
		return -ENOMEM;
	*h = (struct console_hub){ .in = -1, .com1 = -1, .out = out_fd, .listen = -1, .wake = { -1, -1 },
				   .input = input, .opaque = opaque };
	pthread_mutex_init(&h->lock, NULL);
	if (log_path && !(h->log_path = strdup(log_path))) {
		r = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < HUB_CLIENTS; i++)
		h->clients[i] = -1;
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	h->in = p[0];
	h->com1 = p[1];
	if (socket_path) {
		h->listen = util_unix_listen(socket_path, SOCK_STREAM, 4);
		if (h->listen < 0) {
			r = h->listen;
			goto fail;
		}
		if (pipe2(h->wake, O_CLOEXEC) < 0) {
			r = -errno;
			goto fail;
		}
	}
	r = -pthread_create(&h->out_thread, NULL, hub_out_thread, h);
	if (r < 0)
		goto fail;
	h->out_started = true;
	if (socket_path) {
		r = -pthread_create(&h->in_thread, NULL, hub_in_thread, h);
		if (r < 0)
			goto fail;
		h->in_started = true;
	}
	*com1_fd = h->com1;
	*out = h;
	return 0;
fail:
	console_hub_stop(h);
	return r;
}

void console_hub_stop(struct console_hub *h)
{
	if (!h)
		return;
	/* Everything COM1 wrote reaches the log before anyone reads it. */
	if (h->com1 >= 0)
		close(h->com1);
	if (h->out_started)
		pthread_join(h->out_thread, NULL);
	if (h->in_started && write(h->wake[1], "x", 1) == 1)
		pthread_join(h->in_thread, NULL);
	for (int i = 0; i < HUB_CLIENTS; i++)
		if (h->clients[i] >= 0)
			close(h->clients[i]);
	if (h->listen >= 0)
		close(h->listen);
	if (h->in >= 0)
		close(h->in);
	if (h->wake[0] >= 0) {
		close(h->wake[0]);
		close(h->wake[1]);
	}
	pthread_mutex_destroy(&h->lock);
	free(h->log_path);
	free(h);
}

/* ---- the terminal console ---- */

struct console_tty {
	console_input_fn input;
	void (*quit)(void *opaque);
	void *opaque;
	bool raw;
	struct termios saved;
	int wake[2];
	pthread_t thread;
};

/* One read's worth of standard input: on a terminal, Ctrl-A escapes. */
static bool tty_feed(struct console_tty *t, const uint8_t *buf, size_t n, bool *escape)
{
	size_t start = 0;

	if (!t->raw) {
		t->input(t->opaque, buf, n);
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (*escape) {
			*escape = false;
			if (buf[i] == 'x') {
				t->quit(t->opaque);
				return false;
			}
			if (buf[i] == 0x01)
				t->input(t->opaque, &buf[i], 1);
			start = i + 1;
		} else if (buf[i] == 0x01) {
			t->input(t->opaque, buf + start, i - start);
			*escape = true;
			start = i + 1;
		}
	}
	t->input(t->opaque, buf + start, n - start);
	return true;
}

static void *tty_thread(void *arg)
{
	struct console_tty *t = arg;
	bool escape = false;
	uint8_t buf[256];

	sandbox_enter(SANDBOX_ROLE_CONSOLE);
	for (;;) {
		struct pollfd p[2] = { { .fd = t->wake[0], .events = POLLIN },
				       { .fd = STDIN_FILENO, .events = POLLIN } };
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (p[0].revents)
			return NULL;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || !tty_feed(t, buf, (size_t)n, &escape))
			return NULL;
	}
}

int console_tty_start(struct console_tty **out, console_input_fn input, void (*quit)(void *opaque),
		      void *opaque)
{
	struct console_tty *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->input = input;
	t->quit = quit;
	t->opaque = opaque;
	if (pipe2(t->wake, O_CLOEXEC) < 0) {
		r = -errno;
		free(t);
		return r;
	}
	t->raw = console_raw(STDIN_FILENO, &t->saved);
	r = -pthread_create(&t->thread, NULL, tty_thread, t);
	if (r < 0) {
		t->thread = pthread_self();
		console_tty_stop(t);
		return r;
	}
	*out = t;
	return 0;
}

void console_tty_stop(struct console_tty *t)
{
	if (!t)
		return;
	if (!pthread_equal(t->thread, pthread_self()) && write(t->wake[1], "x", 1) == 1)
		pthread_join(t->thread, NULL);
	if (t->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	close(t->wake[0]);
	close(t->wake[1]);
	free(t);
}

/* ---- attaching to a console socket ---- */

int console_attach(int fd, uint8_t escape)
{
	struct termios saved;
	bool raw = console_raw(STDIN_FILENO, &saved), in_open = true;
	int r = 0;

	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = STDIN_FILENO, .events = POLLIN } };
		char buf[4096], *esc;
		ssize_t n;

		if (poll(p, in_open ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (p[0].revents) {
			n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break;                          /* the VM stopped */
			if ((r = util_write_all(STDOUT_FILENO, buf, (size_t)n)) < 0)
				break;
		}
		if (!in_open || !p[1].revents)
			continue;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n <= 0) {
			in_open = false;                        /* no more input; output goes on */
			continue;
		}
		esc = memchr(buf, escape, (size_t)n);
		if (esc)
			n = esc - buf;
		if (n > 0 && (r = util_write_all(fd, buf, (size_t)n)) < 0)
			break;
		if (esc) {
			r = 1;
			break;
		}
	}
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	return r;
}

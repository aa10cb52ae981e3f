/* Tier 1: the shared helpers that guard the host: reading a boot file that
 * is not a regular file, and the unix sockets every server listens on
 * (owner-only whatever the umask, only stale sockets ever replaced, peers
 * of another user refused). */
#include "harness.h"
#include "other_user.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

HARNESS_DEFINE;

static char tmpdir[256];

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
	unlink(buf);
}

static void test_read_file_refuses_what_is_not_a_file(void)
{
	char fifo[300], file[300];
	uint8_t *data;
	size_t len;

	/* A FIFO given as a kernel would block the reader for ever waiting for
	 * a writer: an alarm turns such a hang into a failure. */
	path_in(fifo, sizeof(fifo), "fifo");
	CHECK_EQ(mkfifo(fifo, 0600), 0);
	alarm(5);
	CHECK_EQ(util_read_file(fifo, &data, &len), -EINVAL);
	CHECK_EQ(util_read_file(tmpdir, &data, &len), -EISDIR);
	CHECK_EQ(util_read_file("/dev/null", &data, &len), -EINVAL);
	alarm(0);
	path_in(file, sizeof(file), "file");
	{
		int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		CHECK(fd >= 0);
		CHECK_EQ(write(fd, "bzImage", 7), 7);
		close(fd);
	}
	CHECK_EQ(util_read_file(file, &data, &len), 0);
	CHECK_EQ(len, 7);
	CHECK(!memcmp(data, "bzImage", 7));
	/* Blocking again after the check: a reader may rely on it. */
	free(data);
}

static void test_listen_is_owner_only_whatever_the_umask(void)
{
	char path[300];
	struct stat st;
	mode_t old;
	int fd;

	path_in(path, sizeof(path), "open.sock");
	old = umask(0);
	fd = util_unix_listen(path, SOCK_STREAM, 4);
	umask(old);
	CHECK(fd >= 0);
	CHECK_EQ(lstat(path, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0600);
	close(fd);
	/* Nothing left beside it from the way it was made. */
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | grep -c '^\\.open.sock') = 0", tmpdir);
		CHECK_EQ(system(cmd), 0);
	}
}

static void test_listen_replaces_only_a_stale_socket(void)
{
	char path[300], target[300];
	struct stat st;
	int fd, live;

	/* A regular file, a directory, a link: refused, and still there. */
	path_in(path, sizeof(path), "in-the-way");
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(util_unix_listen(path, SOCK_STREAM, 4), -EEXIST);
	CHECK(strstr(util_unix_listen_strerror(-EEXIST), "not removed"));
	CHECK_EQ(lstat(path, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	unlink(path);
	CHECK_EQ(mkdir(path, 0700), 0);
	CHECK_EQ(util_unix_listen(path, SOCK_STREAM, 4), -EEXIST);
	CHECK_EQ(lstat(path, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	rmdir(path);
	path_in(target, sizeof(target), "target");
	fd = open(target, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(symlink(target, path), 0);
	CHECK_EQ(util_unix_listen(path, SOCK_STREAM, 4), -EEXIST);
	CHECK_EQ(lstat(path, &st), 0);
	CHECK(S_ISLNK(st.st_mode));
	CHECK_EQ(stat(target, &st), 0);
	unlink(path);

	/* A live server's socket is left to it, and it goes on answering. */
	live = util_unix_listen(path, SOCK_STREAM, 4);
	CHECK(live >= 0);
	CHECK_EQ(util_unix_listen(path, SOCK_STREAM, 4), -EADDRINUSE);
	CHECK_EQ(util_unix_listen(path, SOCK_SEQPACKET, 4), -EADDRINUSE);
	fd = util_unix_connect(path, SOCK_STREAM);
	CHECK(fd >= 0);
	close(fd);

	/* Once it is gone its socket answers nobody: that one is replaced. */
	close(live);
	CHECK_EQ(util_unix_connect(path, SOCK_STREAM), -ECONNREFUSED);
	live = util_unix_listen(path, SOCK_STREAM, 4);
	CHECK(live >= 0);
	fd = util_unix_connect(path, SOCK_STREAM);
	CHECK(fd >= 0);
	close(fd);
	close(live);
}

struct dial {
	const char *path;
	bool expect_refused;    /* EACCES on connect (the file's mode) */
};

/* As the other user: connect; 0 when it went as expected, else a code. */
static int other_dial(void *arg)
{
	const struct dial *d = arg;
	struct pollfd p;
	char c;
	int fd = util_unix_connect(d->path, SOCK_STREAM);

	if (d->expect_refused)
		return fd == -EACCES ? 0 : 10;
	if (fd < 0)
		return 11;
	/* Connected, since the mode let it: the server must close it unanswered. */
	if (send(fd, "hello\n", 6, MSG_NOSIGNAL) != 6 && errno != EPIPE && errno != ECONNRESET)
		return 12;
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 3000) != 1)
		return 13;
	return read(fd, &c, 1) <= 0 ? 0 : 14;
}

static void test_other_user_refused(void)
{
	char path[300];
	struct dial d = { .path = path };
	int lfd, fd;

	path_in(path, sizeof(path), "peer.sock");
	lfd = util_unix_listen(path, SOCK_STREAM | SOCK_NONBLOCK, 4);
	CHECK(lfd >= 0);
	CHECK_EQ(chmod(tmpdir, 0755), 0);       /* the directory lets the user through; the socket may not */
	d.expect_refused = true;
	CHECK_EQ(other_user_run(other_dial, &d), 0);

	/* Opened to all: the peer check still turns the other user away. The
	 * child waits up to 3 s for an answer or the end; here the server's
	 * side accepts, as a server's loop would. */
	CHECK_EQ(chmod(path, 0666), 0);
	d.expect_refused = false;
	{
		pid_t pid = other_user_start(other_dial, &d);
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		CHECK(pid > 0);
		CHECK_EQ(poll(&p, 1, 2000), 1);
		fd = util_unix_accept(lfd, SOCK_NONBLOCK);
		CHECK_EQ(fd, -EAGAIN);          /* refused and closed: nothing to serve */
		CHECK_EQ(other_user_wait(pid), 0);
	}

	/* The owner (and root) still get in. */
	fd = util_unix_connect(path, SOCK_STREAM);
	CHECK(fd >= 0);
	{
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int c;

		CHECK_EQ(poll(&p, 1, 2000), 1);
		c = util_unix_accept(lfd, SOCK_NONBLOCK);
		CHECK(c >= 0);
		close(c);
	}
	close(fd);
	close(lfd);
	CHECK_EQ(chmod(tmpdir, 0700), 0);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nestvm-test-util-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_read_file_refuses_what_is_not_a_file);
	RUN(test_listen_is_owner_only_whatever_the_umask);
	RUN(test_listen_replaces_only_a_stale_socket);
	RUN(test_other_user_refused);
	harness_remove_tree(tmpdir);
	return HARNESS_END();
}

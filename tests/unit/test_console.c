/* Tier 1: the console hub's log against a guest that writes without end:
 * the log stays under CONSOLE_LOG_MAX with the one before it in .1, what is
 * kept is the newest output unbroken, and a log that cannot be moved is
 * started over rather than left to grow. */
#include "harness.h"
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

HARNESS_DEFINE;

static char dir[64], log_path[128], old_path[128];

static void no_input(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
}

static void scratch(void)
{
	if (dir[0])
		harness_remove_tree(dir);
	snprintf(dir, sizeof(dir), "/tmp/nestvm-test-console-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(log_path, sizeof(log_path), "%s/console.log", dir);
	snprintf(old_path, sizeof(old_path), "%s/console.log.1", dir);
}

/* The guest's output: numbered lines, len bytes in all. */
static char *stream(size_t len)
{
	char *s = malloc(len + 16);

	CHECK(s);
	for (size_t off = 0, i = 0; off < len; i++)
		off += (size_t)snprintf(s + off, 16, "line %09zu\n", i);
	return s;
}

/* Writes len bytes of s through a hub whose log is fd at log_path, in
 * pieces of odd sizes as a serial port would, and stops it. */
static void flood(int fd, const char *s, size_t len)
{
	struct console_hub *h;
	int com1;

	CHECK_EQ(console_hub_start(&h, fd, log_path, NULL, no_input, NULL, &com1), 0);
	for (size_t off = 0, piece = 1; off < len; off += piece, piece = piece * 7 % 5003 + 1) {
		piece = piece < len - off ? piece : len - off;
		CHECK_EQ(util_write_all(com1, s + off, piece), 0);
	}
	console_hub_stop(h);
}

static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0);
	CHECK_EQ(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	CHECK(buf);
	CHECK_EQ(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void test_log_capped_and_rotated(void)
{
	size_t total = 3 * CONSOLE_LOG_MAX + 12345, cur_len, old_len;
	char *s = stream(total), *cur, *old;
	int fd;

	scratch();
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	CHECK(fd >= 0);
	flood(fd, s, total);
	close(fd);

	cur = slurp(log_path, &cur_len);
	if (access(old_path, F_OK) < 0)
		FAILF("%zu bytes written left a log of %zu bytes and no %s", total, cur_len, old_path);
	old = slurp(old_path, &old_len);
	if (cur_len > CONSOLE_LOG_MAX || old_len > CONSOLE_LOG_MAX)
		FAILF("%zu bytes written left a log of %zu and a .1 of %zu, over the %u cap",
		      total, cur_len, old_len, CONSOLE_LOG_MAX);
	CHECK(cur_len > 0);
	/* Moved aside only when full: within one read of the cap. */
	CHECK(old_len > CONSOLE_LOG_MAX - 4096);
	/* The two together are the newest output, nothing lost between them. */
	CHECK(memcmp(old, s + total - cur_len - old_len, old_len) == 0);
	CHECK(memcmp(cur, s + total - cur_len, cur_len) == 0);
	{
		char two[160];
		struct stat st;

		snprintf(two, sizeof(two), "%s.2", log_path);
		CHECK(stat(two, &st) < 0 && errno == ENOENT);
		CHECK_EQ(stat(log_path, &st), 0);
		CHECK_EQ(st.st_mode & 0777, 0640);             /* the new log keeps the mode */
	}
	free(cur);
	free(old);
	free(s);
}

/* A detached VMM's own messages go to the log through standard error:
 * after a rotation they go to the new log, not to .1. */
static void test_stderr_follows_the_log(void)
{
	size_t total = CONSOLE_LOG_MAX + 5000, cur_len;
	char *s = stream(total), *cur;
	int fd, saved;
	struct stat a, b;

	scratch();
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	CHECK(saved >= 0);
	dup2(fd, STDERR_FILENO);
	flood(fd, s, total);
	CHECK_EQ(util_write_all(STDERR_FILENO, "nestvm: a message\n", 18), 0);
	CHECK_EQ(fstat(STDERR_FILENO, &a), 0);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	CHECK_EQ(stat(log_path, &b), 0);
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	cur = slurp(log_path, &cur_len);
	CHECK(cur_len >= 18 && memcmp(cur + cur_len - 18, "nestvm: a message\n", 18) == 0);
	free(cur);
	free(s);
}

/* A log deleted (or its directory made read-only) cannot be moved: it
 * starts over, and the unlinked file holds no more than the cap either. */
static void test_unmovable_log_starts_over(void)
{
	size_t total = 2 * CONSOLE_LOG_MAX + 777;
	char *s = stream(total);
	struct stat st;
	int fd;

	scratch();
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(unlink(log_path), 0);
	flood(fd, s, total);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK(st.st_size > 0 && st.st_size <= CONSOLE_LOG_MAX);
	close(fd);
	CHECK(stat(old_path, &st) < 0);
	free(s);
}

/* Standard output, or no path given: passed through, never cut. */
static void test_unnamed_output_uncapped(void)
{
	size_t total = CONSOLE_LOG_MAX + 4097;
	char *s = stream(total);
	struct console_hub *h;
	struct stat st;
	int fd, com1;

	scratch();
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(console_hub_start(&h, fd, NULL, NULL, no_input, NULL, &com1), 0);
	CHECK_EQ(util_write_all(com1, s, total), 0);
	console_hub_stop(h);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, total);
	close(fd);
	free(s);
}

int main(void)
{
	RUN(test_log_capped_and_rotated);
	RUN(test_stderr_follows_the_log);
	RUN(test_unmovable_log_starts_over);
	RUN(test_unnamed_output_uncapped);
	if (dir[0])
		harness_remove_tree(dir);
	return HARNESS_END();
}

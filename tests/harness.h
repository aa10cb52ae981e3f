/* The test harness: each test binary runs its tests in order and prints one
 * line per test and a closing count that tests/run aggregates.
 * A test fails by CHECK, skips loudly by SKIP; both leave the test at once. */
#ifndef NESTVM_TESTS_HARNESS_H
#define NESTVM_TESTS_HARNESS_H

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct harness {
	jmp_buf out;
	int passed, failed, skipped;
	char why[1024];
};
extern struct harness harness;

#define HARNESS_DEFINE struct harness harness

#define FAILF(...) do { \
	snprintf(harness.why, sizeof(harness.why), __VA_ARGS__); \
	longjmp(harness.out, 1); \
} while (0)

#define CHECK(cond) do { if (!(cond)) \
	FAILF("%s:%d: check failed: %s", __FILE__, __LINE__, #cond); } while (0)

#define CHECK_EQ(a, b) do { \
	long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) FAILF("%s:%d: %s == %s: got %lld (0x%llx), want %lld (0x%llx)", \
		__FILE__, __LINE__, #a, #b, _a, (unsigned long long)_a, _b, (unsigned long long)_b); \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *_a = (a), *_b = (b); \
	if (!_a || !_b || strcmp(_a, _b)) FAILF("%s:%d: %s: got \"%s\", want \"%s\"", \
		__FILE__, __LINE__, #a, _a ? _a : "(null)", _b ? _b : "(null)"); \
} while (0)

#define SKIP(...) do { \
	snprintf(harness.why, sizeof(harness.why), __VA_ARGS__); \
	longjmp(harness.out, 2); \
} while (0)

#define RUN(fn) do { \
	int _r = setjmp(harness.out); \
	if (_r == 0) { fn(); harness.passed++; printf("PASS %s\n", #fn); } \
	else if (_r == 1) { harness.failed++; printf("FAIL %s: %s\n", #fn, harness.why); } \
	else { harness.skipped++; printf("SKIP %s: %s\n", #fn, harness.why); } \
	fflush(stdout); \
} while (0)

/* Removes a test's scratch directory and all in it; says so if it cannot. */
static inline void harness_remove_tree(const char *dir)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static inline uint64_t harness_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A client that never reads: sends msg over the non-blocking socket fd
 * again and again until the server stops taking it for 300 ms (it is
 * stuck, or the replies filled their queue) or hangs up (true: dropped),
 * at most 10 s. *sent, where given, counts the bytes the server took. */
static inline bool harness_flood(int fd, const char *msg, size_t len, size_t *sent)
{
	uint64_t t0 = harness_now_ns(), quiet_since = 0;

	while (harness_now_ns() - t0 < 10000000000ULL) {
		ssize_t n = send(fd, msg, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return true;
		if (n > 0) {
			if (sent)
				*sent += (size_t)n;
			quiet_since = 0;
			continue;
		}
		CHECK(n < 0 && errno == EAGAIN);
		if (!quiet_since)
			quiet_since = harness_now_ns();
		else if (harness_now_ns() - quiet_since > 300000000ULL)
			return false;
		usleep(1000);
	}
	return false;
}

#define HARNESS_END() ( \
	printf("%d passed, %d failed, %d skipped\n", harness.passed, harness.failed, harness.skipped), \
	harness.failed ? 1 : 0)

#endif

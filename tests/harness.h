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

#define HARNESS_END() ( \
	printf("%d passed, %d failed, %d skipped\n", harness.passed, harness.failed, harness.skipped), \
	harness.failed ? 1 : 0)

#endif

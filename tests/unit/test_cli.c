/* Tier 1: the command line. Size and number parsing, the declarative option
 * parser against a table of its own, and "nestvm run" refusing bad
 * arguments with status 2 and a message before anything touches KVM. */
#include "harness.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "fake_bzimage.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

HARNESS_DEFINE;

/* ---- util_parse_size, util_parse_uint, util_fmt_size ---- */

static void test_parse_size_accepts(void)
{
	static const struct { const char *s; uint64_t want; } ok[] = {
		{ "512M", 512ULL << 20 }, { "2G", 2ULL << 30 }, { "1g", 1ULL << 30 },
		{ "4096", 4096 }, { "64KiB", 64 << 10 }, { "4MIB", 4 << 20 }, { "1MB", 1 << 20 }, { "3k", 3 << 10 },
		{ "1T", 1ULL << 40 }, { "2gib", 2ULL << 30 }, { "0", 0 },
		{ "16777215T", 16777215ULL << 40 },                /* the largest that fits */
		{ "18446744073709551615", UINT64_MAX },
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		uint64_t v = 12345;
		int r = util_parse_size(ok[i].s, &v);

		if (r != 0 || v != ok[i].want)
			FAILF("util_parse_size(\"%s\"): r=%d v=%llu, want %llu", ok[i].s, r,
			      (unsigned long long)v, (unsigned long long)ok[i].want);
	}
}

static void test_parse_size_rejects(void)
{
	static const struct { const char *s; int err; } bad[] = {
		{ "", -EINVAL }, { "M", -EINVAL }, { "12Q", -EINVAL }, { "-1", -EINVAL },
		{ "1.5G", -EINVAL }, { " 1G", -EINVAL }, { "1G ", -EINVAL }, { "1GiBx", -EINVAL },
		{ "1iB", -EINVAL }, { "1B", -EINVAL }, { "+4", -EINVAL }, { "0x10", -EINVAL },
		{ "1MM", -EINVAL },
		{ "99999999999T", -ERANGE }, { "16777216T", -ERANGE },
		{ "18446744073709551616", -ERANGE }, { "17179869184G", -ERANGE },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t v = 12345;
		int r = util_parse_size(bad[i].s, &v);

		if (r != bad[i].err)
			FAILF("util_parse_size(\"%s\") = %d, want %d", bad[i].s, r, bad[i].err);
		if (v != 12345)
			FAILF("util_parse_size(\"%s\") wrote %llu on failure", bad[i].s, (unsigned long long)v);
	}
	CHECK_EQ(util_parse_size(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_parse_uint(void)
{
	uint64_t v = 0;

	CHECK_EQ(util_parse_uint("5", 1, 10, &v), 0);
	CHECK_EQ(v, 5);
	CHECK_EQ(util_parse_uint("1", 1, 10, &v), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(util_parse_uint("10", 1, 10, &v), 0);
	CHECK_EQ(v, 10);
	CHECK_EQ(util_parse_uint("007", 1, 10, &v), 0);
	CHECK_EQ(v, 7);
	v = 99;
	CHECK_EQ(util_parse_uint("0", 1, 10, &v), -ERANGE);
	CHECK_EQ(util_parse_uint("11", 1, 10, &v), -ERANGE);
	CHECK_EQ(util_parse_uint("4294967296", 0, UINT32_MAX, &v), -ERANGE);
	CHECK_EQ(v, 99);
	CHECK_EQ(util_parse_uint("", 0, 10, &v), -EINVAL);
	CHECK_EQ(util_parse_uint("-1", 0, 10, &v), -EINVAL);
	CHECK_EQ(util_parse_uint("5x", 0, 10, &v), -EINVAL);
	CHECK_EQ(util_parse_uint("5 ", 0, 10, &v), -EINVAL);
	CHECK_EQ(util_parse_uint("2M", 0, UINT64_MAX, &v), -EINVAL);
	CHECK_EQ(util_parse_uint(NULL, 0, 10, &v), -EINVAL);
	CHECK(util_parse_uint("99999999999999999999", 0, UINT64_MAX, &v) < 0);
	CHECK_EQ(v, 99);
	CHECK_EQ(util_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	CHECK(v == UINT64_MAX);
}

static void test_fmt_size(void)
{
	static const struct { uint64_t v; const char *want; } cases[] = {
		{ 512ULL << 20, "512M" }, { 1ULL << 30, "1G" }, { 3ULL << 40, "3T" }, { 1 << 10, "1K" },
		{ 1536ULL << 20, "1536M" }, { 1536, "1536" }, { 1025, "1025" }, { 0, "0" },
		{ 1024ULL << 40, "1024T" },
	};
	char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t back = 1;

		CHECK_STR(util_fmt_size(cases[i].v, buf, sizeof(buf)), cases[i].want);
		/* What it prints, the parser reads back. */
		CHECK_EQ(util_parse_size(buf, &back), 0);
		CHECK(back == cases[i].v);
	}
	CHECK(util_fmt_size(5ULL << 20, buf, sizeof(buf)) == buf);
}

/* ---- opts_parse with a table of our own ---- */

struct tcfg {
	bool verbose;
	bool force;
	const char *name;
	uint64_t mem;
	unsigned int count;
	int mode;
};

static const char *const modes[] = { "fast", "slow", "auto", NULL };

#define T(name, s, type, field, meta, help, min, max, ch) \
	{ name, s, type, offsetof(struct tcfg, field), meta, help, min, max, ch }

static const struct opt table[] = {
	T("verbose", 'v', OPT_FLAG, verbose, NULL, "say more", 0, 0, NULL),
	T("force", 0, OPT_FLAG, force, NULL, "do it anyway", 0, 0, NULL),
	T("name", 'N', OPT_STR, name, "NAME", "what to call it", 0, 0, NULL),
	T("memory", 'm', OPT_SIZE, mem, "SIZE", "how much memory", 1 << 20, 4ULL << 30, NULL),
	T("count", 'c', OPT_UINT, count, "N", "how many", 1, 16, NULL),
	T("mode", 0, OPT_CHOICE, mode, "fast|slow|auto", "how", 0, 0, modes),
	{ 0 },
};

/* Parses a NULL-terminated list of words; args keeps the rearranged argv. */
static int parse(struct tcfg *cfg, char **args, const char *const *words, int *npos, char *err)
{
	int argc = 0;

	for (; words[argc]; argc++)
		args[argc] = (char *)words[argc];
	args[argc] = NULL;
	*cfg = (struct tcfg){ .mode = -1 };
	*npos = -1;
	err[0] = 0;
	return opts_parse(table, argc, args, cfg, npos, NULL, err, 256);
}

#define PARSE(...) parse(&cfg, args, (const char *const[]){ __VA_ARGS__, NULL }, &npos, err)

static void test_opts_long(void)
{
	struct tcfg cfg;
	char *args[16], err[256];
	int npos;

	CHECK_EQ(PARSE("--name", "foo", "--memory", "512M", "--count", "3", "--mode", "slow", "--verbose"), 0);
	CHECK_EQ(npos, 0);
	CHECK_STR(cfg.name, "foo");
	CHECK(cfg.mem == 512ULL << 20);
	CHECK_EQ(cfg.count, 3);
	CHECK_EQ(cfg.mode, 1);
	CHECK(cfg.verbose);
	CHECK(!cfg.force);

	CHECK_EQ(PARSE("--name=bar", "--memory=2M", "--count=16", "--mode=auto", "--force"), 0);
	CHECK_STR(cfg.name, "bar");
	CHECK(cfg.mem == 2 << 20);
	CHECK_EQ(cfg.count, 16);
	CHECK_EQ(cfg.mode, 2);
	CHECK(cfg.force);
	CHECK(!cfg.verbose);

	CHECK_EQ(PARSE("--name=a=b", "--name="), 0);        /* the last one wins, empty allowed */
	CHECK_STR(cfg.name, "");
	CHECK_EQ(PARSE("--name=a=b"), 0);
	CHECK_STR(cfg.name, "a=b");
	CHECK_EQ(PARSE("--name", "--count"), 0);            /* a value may look like an option */
	CHECK_STR(cfg.name, "--count");
}

static void test_opts_short(void)
{
	struct tcfg cfg;
	char *args[16], err[256];
	int npos;

	CHECK_EQ(PARSE("-m", "2G", "-c", "5", "-v", "-N", "x"), 0);
	CHECK(cfg.mem == 2ULL << 30);
	CHECK_EQ(cfg.count, 5);
	CHECK(cfg.verbose);
	CHECK_STR(cfg.name, "x");
	CHECK_EQ(PARSE("-m2G", "-c7", "-Nbaz"), 0);
	CHECK(cfg.mem == 2ULL << 30);
	CHECK_EQ(cfg.count, 7);
	CHECK_STR(cfg.name, "baz");
	CHECK(!cfg.verbose);
}

static void test_opts_positional(void)
{
	struct tcfg cfg;
	char *args[16], err[256];
	int npos;

	CHECK_EQ(PARSE("a", "-v", "b", "--count", "2", "c", "-"), 0);
	CHECK_EQ(npos, 4);
	CHECK_STR(args[0], "a");
	CHECK_STR(args[1], "b");
	CHECK_STR(args[2], "c");
	CHECK_STR(args[3], "-");                              /* "-" alone is an argument */
	CHECK(cfg.verbose);
	CHECK_EQ(cfg.count, 2);

	/* "--" ends the options: what follows is positional, even --help. */
	CHECK_EQ(PARSE("-v", "--", "--force", "-c", "x", "--help"), 0);
	CHECK_EQ(npos, 4);
	CHECK_STR(args[0], "--force");
	CHECK_STR(args[1], "-c");
	CHECK_STR(args[2], "x");
	CHECK_STR(args[3], "--help");
	CHECK(!cfg.force);
	CHECK_EQ(cfg.count, 0);
	CHECK(cfg.verbose);

	CHECK_EQ(PARSE("--", "--"), 0);
	CHECK_EQ(npos, 1);
	CHECK_STR(args[0], "--");
}

static void expect_error(int r, const char *err, const char *needle)
{
	CHECK_EQ(r, -EINVAL);
	if (!strstr(err, needle))
		FAILF("message '%s' does not mention '%s'", err, needle);
}

static void test_opts_errors(void)
{
	struct tcfg cfg;
	char *args[16], err[256];
	int npos;

	expect_error(PARSE("--bogus"), err, "unknown option '--bogus'");
	expect_error(PARSE("--bogus=1"), err, "unknown option '--bogus'");
	CHECK(!strstr(err, "=1"));
	expect_error(PARSE("-z"), err, "unknown option '-z'");
	CHECK(strstr(err, "--help"));
	expect_error(PARSE("--verb"), err, "unknown option '--verb'");   /* no prefix matching */
	expect_error(PARSE("--name"), err, "'--name' needs a value (NAME)");
	expect_error(PARSE("-v", "-m"), err, "'--memory' needs a value (SIZE)");
	expect_error(PARSE("--count", "17"), err, "--count '17': out of range (1 to 16)");
	expect_error(PARSE("-c0"), err, "out of range (1 to 16)");
	expect_error(PARSE("--count", "many"), err, "--count 'many': not a number");
	expect_error(PARSE("--memory", "lots"), err, "--memory 'lots': not a size");
	expect_error(PARSE("--memory", "8G"), err, "--memory '8G': out of range (1M to 4G)");
	expect_error(PARSE("--memory", "512K"), err, "out of range (1M to 4G)");
	expect_error(PARSE("--mode", "medium"), err, "--mode 'medium': must be one of fast, slow, auto");
	expect_error(PARSE("--verbose=yes"), err, "'--verbose' takes no value");
	expect_error(PARSE("-vx"), err, "'-v' takes no value");
	/* Bounds themselves are in range. */
	CHECK_EQ(PARSE("--memory", "4G", "--count", "1"), 0);
	CHECK_EQ(PARSE("--memory", "1M", "--count", "16"), 0);
}

static void test_opts_help(void)
{
	struct tcfg cfg;
	char *args[16], err[256];
	int npos;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	CHECK_EQ(PARSE("--help"), 1);
	CHECK_EQ(PARSE("-v", "-h"), 1);
	CHECK_EQ(PARSE("--count", "3", "--help", "--bogus"), 1);
	/* --help as an option's value is a value. */
	CHECK_EQ(PARSE("--name", "--help"), 0);
	CHECK_STR(cfg.name, "--help");

	f = open_memstream(&text, &len);
	CHECK(f);
	opts_help(f, "prog [OPTIONS]", "Does things.", table);
	fclose(f);
	CHECK(strstr(text, "Usage: prog [OPTIONS]\nDoes things.\n"));
	CHECK(strstr(text, "-m, --memory SIZE"));
	CHECK(strstr(text, "how much memory"));
	CHECK(strstr(text, "    --mode fast|slow|auto"));
	CHECK(strstr(text, "-v, --verbose "));
	CHECK(strstr(text, "-h, --help"));
	free(text);
}

/* ---- repeated options, copies into buffers, on|off, and what was given ---- */

struct rcfg {
	struct opt_list disks;
	struct opt_list tags;
	char label[8];
	bool on;
	unsigned int level;
};

#define R(name, s, type, field, meta, help, min, max, ch) \
	{ name, s, type, offsetof(struct rcfg, field), meta, help, min, max, ch }

static const struct opt rtable[] = {
	R("disk", 'd', OPT_LIST, disks, "FILE", "a disk (repeatable)", 0, 3, NULL),
	R("tag", 0, OPT_LIST, tags, "T", "a tag (repeatable)", 0, 0, NULL),
	R("label", 0, OPT_TEXT, label, "TEXT", "a label", 0, sizeof(((struct rcfg *)0)->label), NULL),
	R("switch", 0, OPT_ONOFF, on, "on|off", "on or off", 0, 0, NULL),
	R("level", 0, OPT_UINT, level, "N", "a level", 0, 9, NULL),
	{ 0 },
};

static int rparse(struct rcfg *cfg, uint64_t *given, const char *const *words, char *err)
{
	char *args[32];
	int argc = 0, npos;

	for (; words[argc]; argc++)
		args[argc] = (char *)words[argc];
	*cfg = (struct rcfg){ .level = 7 };
	err[0] = 0;
	return opts_parse(rtable, argc, args, cfg, &npos, given, err, 256);
}

#define RPARSE(...) rparse(&cfg, &given, (const char *const[]){ __VA_ARGS__, NULL }, err)

static void test_opts_repeated(void)
{
	struct rcfg cfg;
	uint64_t given;
	char err[256];

	/* Every occurrence is kept, in order, in each of the spellings. */
	CHECK_EQ(RPARSE("--disk", "a.img", "-d", "b.img,ro", "--tag=x", "--disk=c.img"), 0);
	CHECK_EQ(cfg.disks.n, 3);
	CHECK_STR(cfg.disks.v[0], "a.img");
	CHECK_STR(cfg.disks.v[1], "b.img,ro");
	CHECK_STR(cfg.disks.v[2], "c.img");
	CHECK_EQ(cfg.tags.n, 1);
	CHECK_STR(cfg.tags.v[0], "x");
	/* The table's max bounds the count; without one, OPT_LIST_MAX does. */
	expect_error(RPARSE("-d", "1", "-d", "2", "-d", "3", "-d", "4"), err, "--disk: at most 3 times");
	CHECK_EQ(RPARSE("--tag", "1", "--tag", "2", "--tag", "3", "--tag", "4", "--tag", "5", "--tag", "6",
			"--tag", "7", "--tag", "8"), 0);
	CHECK_EQ(cfg.tags.n, OPT_LIST_MAX);
	expect_error(RPARSE("--tag", "1", "--tag", "2", "--tag", "3", "--tag", "4", "--tag", "5", "--tag", "6",
			    "--tag", "7", "--tag", "8", "--tag", "9"), err, "--tag: at most 8 times");
	expect_error(RPARSE("--disk"), err, "'--disk' needs a value (FILE)");
	/* Not given: an empty list. */
	CHECK_EQ(RPARSE("--level", "1"), 0);
	CHECK_EQ(cfg.disks.n, 0);
}

static void test_opts_text_onoff_given(void)
{
	struct rcfg cfg, loaded = { .label = "old", .on = true, .level = 5 };
	uint64_t given;
	char err[256];

	CHECK_EQ(RPARSE("--label", "1234567", "--switch", "off"), 0);
	CHECK_STR(cfg.label, "1234567");                      /* a copy, not argv's */
	CHECK(!cfg.on);
	expect_error(RPARSE("--label", "12345678"), err, "--label: longer than 7 characters");
	expect_error(RPARSE("--switch", "yes"), err, "--switch 'yes': must be one of on, off");
	CHECK_EQ(RPARSE("--switch=on"), 0);
	CHECK(cfg.on);

	/* given says which options appeared; opts_copy applies only those. */
	CHECK_EQ(RPARSE("--switch", "off", "--label", "new"), 0);
	CHECK(opts_given(rtable, given, "switch"));
	CHECK(opts_given(rtable, given, "label"));
	CHECK(!opts_given(rtable, given, "level"));
	CHECK(!opts_given(rtable, given, "disk"));
	CHECK(!opts_given(rtable, given, "no-such-option"));
	CHECK_EQ(cfg.level, 7);
	opts_copy(rtable, given, &loaded, &cfg);
	CHECK_STR(loaded.label, "new");
	CHECK(!loaded.on);
	CHECK_EQ(loaded.level, 5);                            /* not given: kept */
	CHECK_EQ(RPARSE("--level", "0"), 0);
	CHECK(opts_given(rtable, given, "level"));
	opts_copy(rtable, given, &loaded, &cfg);
	CHECK_EQ(loaded.level, 0);
	CHECK_STR(loaded.label, "new");
}

/* ---- cmd_run's argument errors ---- */

static char tmpdir[200];

static const char *tmpfile_with(const char *name, const void *data, size_t len, off_t size)
{
	static char paths[8][256];
	static int next;
	char *p = paths[next++ % 8];
	int fd;

	snprintf(p, 256, "%s/%s", tmpdir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, data, len), (ssize_t)len);
	if (size)
		CHECK_EQ(ftruncate(fd, size), 0);
	close(fd);
	return p;
}

/* Runs cmd_run with stdout and stderr captured into out and err. */
static int run_cmd(const char *const *words, char *out, char *err, size_t cap)
{
	char *argv[32], *copies[32];   /* cmd_run reorders argv */
	int argc = 0, status, saved[2], fds[2];
	char name[2][256];

	for (; words[argc]; argc++)
		argv[argc] = copies[argc] = strdup(words[argc]);
	argv[argc] = NULL;
	fflush(stdout);
	for (int i = 0; i < 2; i++) {
		snprintf(name[i], sizeof(name[i]), "%s/std%d", tmpdir, i + 1);
		fds[i] = open(name[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		CHECK(fds[i] >= 0);
		saved[i] = dup(i + 1);
		CHECK(saved[i] >= 0);
		CHECK(dup2(fds[i], i + 1) == i + 1);
	}
	status = cmd_run(argc, argv);
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < 2; i++) {
		char *buf = i ? err : out;
		ssize_t n;

		dup2(saved[i], i + 1);
		close(saved[i]);
		n = pread(fds[i], buf, cap - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		close(fds[i]);
		unlink(name[i]);
	}
	for (int i = 0; i < argc; i++)
		free(copies[i]);
	return status;
}

#define RUN_CMD(...) run_cmd((const char *const[]){ __VA_ARGS__, NULL }, out, err, sizeof(err))

static void expect_usage(int status, const char *err, const char *needle)
{
	if (status != EXIT_USAGE)
		FAILF("status %d, want %d (stderr: %s)", status, EXIT_USAGE, err);
	if (!strstr(err, needle))
		FAILF("stderr '%s' does not mention '%s'", err, needle);
	if (strncmp(err, "nestvm: ", 8))
		FAILF("stderr '%s' does not start with 'nestvm: '", err);
	if (strchr(err, '\n') != err + strlen(err) - 1)
		FAILF("stderr '%s' is not one line", err);
}

/* A setup header that parses, around a 4 KiB "kernel". */
static const char *valid_kernel(void)
{
	size_t len;
	uint8_t *img = fake_bzimage(NULL, 0, 4096, &len);
	const char *path;

	CHECK(img);
	path = tmpfile_with("bzImage", img, len, 0);
	free(img);
	return path;
}

static void test_run_option_errors(void)
{
	char out[4096], err[4096];

	expect_usage(RUN_CMD("--memory", "5Q", "--kernel", "x"), err, "--memory '5Q': not a size");
	expect_usage(RUN_CMD("--memory", "8M", "--kernel", "x"), err, "out of range (16M to 1T)");
	expect_usage(RUN_CMD("--memory", "2T", "--kernel", "x"), err, "out of range");
	expect_usage(RUN_CMD("--memory", "16777217", "--kernel", "x"), err, "whole number of MiB");
	expect_usage(RUN_CMD("--cpus", "0", "--kernel", "x"), err, "--cpus '0': out of range (1 to 255)");
	expect_usage(RUN_CMD("-n", "256", "--kernel", "x"), err, "out of range (1 to 255)");
	expect_usage(RUN_CMD("--cpus", "two", "--kernel", "x"), err, "not a number");
	expect_usage(RUN_CMD("--on-reboot", "sometimes", "--kernel", "x"), err, "must be one of exit, restart");
	expect_usage(RUN_CMD("--kernel", "x", "--frobnicate"), err, "unknown option '--frobnicate'");
	expect_usage(RUN_CMD("--kernel"), err, "'--kernel' needs a value (FILE)");
	expect_usage(RUN_CMD("--kernel", "x", "extra"), err, "unexpected argument 'extra'");
	expect_usage(run_cmd((const char *const[]){ NULL }, out, err, sizeof(err)), err,
		     "--kernel FILE is required");
	expect_usage(RUN_CMD("--nested", "-m", "1G"), err, "--kernel FILE is required");
	CHECK_EQ(out[0], 0);                                     /* nothing on stdout */
}

static void test_run_dynamic_memory_errors(void)
{
	char out[4096], err[4096];

	/* minimum <= startup (--memory) <= maximum, checked before the kernel is opened. */
	expect_usage(RUN_CMD("--dynamic-memory", "-m", "1G", "--memory-minimum", "2G", "--kernel", "x"), err,
		     "--memory-minimum 2G is above the startup memory 1G");
	expect_usage(RUN_CMD("--dynamic-memory", "-m", "1G", "--memory-maximum", "512M", "--kernel", "x"), err,
		     "--memory-maximum 512M is below the startup memory 1G");
	/* The default minimum (512M, or less) never exceeds the startup memory. */
	expect_usage(RUN_CMD("--dynamic-memory", "-m", "256M", "--memory-maximum", "128M", "--kernel", "x"), err,
		     "below the startup memory 256M");
	expect_usage(RUN_CMD("--dynamic-memory", "--memory-maximum", "1073741825", "--kernel", "x"), err,
		     "whole numbers of MiB");
	expect_usage(RUN_CMD("--dynamic-memory", "--memory-minimum", "8M", "--kernel", "x"), err,
		     "--memory-minimum '8M': out of range (16M to 1T)");
	/* Bounds without dynamic memory are a mistake, not ignored. */
	expect_usage(RUN_CMD("--memory-minimum", "256M", "--kernel", "x"), err,
		     "--memory-minimum goes with --dynamic-memory");
	expect_usage(RUN_CMD("--memory-maximum", "2G", "--kernel", "x"), err,
		     "--memory-maximum goes with --dynamic-memory");
	/* A stored VM takes its dynamic memory from the store. */
	expect_usage(RUN_CMD("--name", "vm1", "--dynamic-memory"), err, "--name boots the VM as stored");
	/* Valid bounds get past the check to the kernel. */
	expect_usage(RUN_CMD("--dynamic-memory", "-m", "1G", "--memory-minimum", "512M", "--memory-maximum", "4G",
			     "--kernel", "/nonexistent"), err, "kernel '/nonexistent': No such file");
	expect_usage(RUN_CMD("--dynamic-memory", "-m", "16M", "--kernel", "/nonexistent"), err,
		     "kernel '/nonexistent': No such file");
	CHECK_EQ(out[0], 0);
}

static void test_run_file_errors(void)
{
	char out[4096], err[4096];
	static const uint8_t zeros[4096];
	const char *kernel = valid_kernel();

	expect_usage(RUN_CMD("--kernel", "/nonexistent"), err, "kernel '/nonexistent': No such file");
	expect_usage(RUN_CMD("--kernel", tmpdir), err, "not a regular file");
	expect_usage(RUN_CMD("--kernel", tmpfile_with("hello", "hello", 5, 0)), err, "too short");
	expect_usage(RUN_CMD("-k", tmpfile_with("zeros", zeros, sizeof(zeros), 0)), err,
		     "not a Linux bzImage (no 'HdrS' magic at 0x202)");
	/* A FIFO is refused at once, never waited on (the alarm ends a hang);
	 * a kernel cut short is refused with one line, never booted. */
	{
		char fifo[300];
		size_t len;
		uint8_t *img = fake_bzimage(NULL, 0, 4096, &len);

		CHECK(img);
		snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
		CHECK_EQ(mkfifo(fifo, 0600), 0);
		alarm(30);
		expect_usage(RUN_CMD("--kernel", fifo), err, "not a regular file (a FIFO)");
		expect_usage(RUN_CMD("--kernel", kernel, "--initrd", fifo), err,
			     "initrd '");
		CHECK(strstr(err, "not a regular file (a FIFO)"));
		alarm(0);
		unlink(fifo);
		expect_usage(RUN_CMD("--kernel", tmpfile_with("cut", img, len - 100, 0)), err,
			     "truncated: the file is shorter than its setup header's syssize");
		free(img);
	}
	/* The kernel is fine; the initrd is missing or larger than memory. */
	expect_usage(RUN_CMD("--kernel", kernel, "--initrd", "/nonexistent/initrd"), err,
		     "initrd '/nonexistent/initrd': No such file");
	expect_usage(RUN_CMD("--kernel", kernel, "-m", "16M", "--initrd",
			     tmpfile_with("initrd", "x", 1, 16 << 20)), err,
		     "larger than the guest's 16 MiB of memory: raise --memory");
	CHECK_EQ(out[0], 0);                                     /* nothing on stdout */
}

static void test_run_help(void)
{
	char out[4096], err[4096];

	CHECK_EQ(RUN_CMD("--help"), 0);
	CHECK(strstr(out, "Usage: nestvm run --kernel FILE"));
	CHECK(strstr(out, "--memory SIZE"));
	CHECK(strstr(out, "--on-reboot exit|restart"));
	CHECK_EQ(err[0], 0);
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/nestvm-test-cli.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_parse_size_accepts);
	RUN(test_parse_size_rejects);
	RUN(test_parse_uint);
	RUN(test_fmt_size);
	RUN(test_opts_long);
	RUN(test_opts_short);
	RUN(test_opts_positional);
	RUN(test_opts_errors);
	RUN(test_opts_help);
	RUN(test_opts_repeated);
	RUN(test_opts_text_onoff_given);
	RUN(test_run_option_errors);
	RUN(test_run_dynamic_memory_errors);
	RUN(test_run_file_errors);
	RUN(test_run_help);
	{
		static const char *const names[] = { "bzImage", "hello", "zeros", "initrd" };
		char p[256];

		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
			unlink(p);
		}
		rmdir(tmpdir);
	}
	return HARNESS_END();
}

/* Tier 1: the VMM's sandbox. Each role's filter in a child process of its
 * own: a call the role must not make kills the child, which says which
 * thread and which call; a call the role needs goes through. Capabilities,
 * no_new_privs and Landlock as /proc/self/status and open(2) see them.
 * Nothing here needs /dev/kvm. */
#include "harness.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

HARNESS_DEFINE;

static char tmpdir[256];

/* What the child did: its wait status and what it wrote on stderr. */
struct child {
	int status;
	char err[512];
};

typedef int (*child_fn)(void *arg);

/* Runs fn in a child that set the sandbox up as cfg says (NULL: not at all)
 * and entered role; the child exits with fn's result. */
static void child_run(const struct sandbox_config *cfg, enum sandbox_role role, child_fn fn, void *arg,
		      struct child *c)
{
	int p[2];
	pid_t pid;
	size_t got = 0;
	ssize_t n;

	memset(c, 0, sizeof(*c));
	CHECK(pipe(p) == 0);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char err[512] = "";

		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		if (cfg && sandbox_setup(cfg, err, sizeof(err)) < 0) {
			(void)!write(STDERR_FILENO, err, strlen(err));
			_exit(90);
		}
		sandbox_enter(role);
		/* Straight to the kernel: the sanitizers' _exit does more. */
		syscall(SYS_exit_group, fn(arg));
	}
	close(p[1]);
	while ((n = read(p[0], c->err + got, sizeof(c->err) - 1 - got)) > 0)
		got += (size_t)n;
	close(p[0]);
	CHECK(waitpid(pid, &c->status, 0) == pid);
}

/* The child ended as the filter ends a thread's forbidden call. */
static void check_killed(const struct child *c, const char *role, const char *call)
{
	char want[160];

	snprintf(want, sizeof(want), "nestvm: sandbox: thread %s made forbidden system call %s (", role, call);
	if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != SANDBOX_EXIT_STATUS)
		FAILF("role %s, %s: the child was not killed by the filter (status 0x%x, stderr '%s')", role, call,
		      c->status, c->err);
	if (!strstr(c->err, want) || !strstr(c->err, "); killed (at 0x"))
		FAILF("role %s, %s: stderr '%s', want '%s...); killed (at 0x...)'", role, call, c->err, want);
}

static void check_passed(const struct child *c, const char *what)
{
	if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0)
		FAILF("%s: the child did not pass (status 0x%x, stderr '%s')", what, c->status, c->err);
}

static const struct sandbox_config filters_only = { .seccomp = true, .no_landlock = "a test" };

/* ---- the calls ---- */

static int do_socket_unix(void *arg)
{
	(void)arg;
	return socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 10;
}

static int do_socket_inet(void *arg)
{
	(void)arg;
	return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 10;
}

static int do_socket_netlink(void *arg)
{
	(void)arg;
	return socket(AF_NETLINK, SOCK_RAW, 0) >= 0 ? 0 : 10;
}

static int do_open(void *arg)
{
	int fd = open(arg ? (const char *)arg : "/dev/null", O_RDONLY | O_CLOEXEC);

	return fd >= 0 ? 0 : 10;
}

static int do_execve(void *arg)
{
	char *argv[] = { (char *)"true", NULL }, *envp[] = { NULL };

	(void)arg;
	syscall(SYS_execve, "/bin/true", argv, envp);
	return 10;
}

static int do_fork(void *arg)
{
	(void)arg;
	/* A new process, not a thread: clone without CLONE_THREAD. */
	return syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0) >= 0 ? 0 : 10;
}

static int do_ptrace(void *arg)
{
	(void)arg;
	return ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0 ? 0 : 10;
}

/* A KVM ioctl on a descriptor that is not KVM's: the filter lets it
 * through and the kernel answers EBADF or ENOTTY. */
static int do_kvm_ioctl(void *arg)
{
	(void)arg;
	return ioctl(-1, 0xAE80 /* KVM_RUN */, 0) < 0 && errno == EBADF ? 0 : 10;
}

/* TIOCSTI: not KVM's, so not a vCPU's. */
static int do_tty_ioctl(void *arg)
{
	(void)arg;
	return ioctl(-1, TIOCSTI, "x") < 0 ? 0 : 10;
}

static int do_write(void *arg)
{
	(void)arg;
	return write(STDERR_FILENO, "", 0) == 0 ? 0 : 10;
}

/* ---- every role: one forbidden call kills, with its name ---- */

static void test_vcpu(void)
{
	struct child c;

	child_run(&filters_only, SANDBOX_ROLE_VCPU, do_socket_unix, NULL, &c);
	check_killed(&c, "vcpu", "socket");
	child_run(&filters_only, SANDBOX_ROLE_VCPU, do_open, NULL, &c);
	check_killed(&c, "vcpu", "openat");
	if (!strstr(c.err, ", path '/dev/null')\n"))
		FAILF("the message does not name the path opened: '%s'", c.err);
	child_run(&filters_only, SANDBOX_ROLE_VCPU, do_tty_ioctl, NULL, &c);
	check_killed(&c, "vcpu", "ioctl");
	child_run(&filters_only, SANDBOX_ROLE_VCPU, do_kvm_ioctl, NULL, &c);
	check_passed(&c, "a vCPU's KVM ioctl");
}

static void test_device(void)
{
	struct child c;

	child_run(&filters_only, SANDBOX_ROLE_DEVICE, do_execve, NULL, &c);
	check_killed(&c, "device", "execve");
	child_run(&filters_only, SANDBOX_ROLE_DEVICE, do_socket_inet, NULL, &c);
	check_killed(&c, "device", "socket");
	child_run(&filters_only, SANDBOX_ROLE_DEVICE, do_open, NULL, &c);
	check_killed(&c, "device", "openat");
	child_run(&filters_only, SANDBOX_ROLE_DEVICE, do_socket_unix, NULL, &c);
	check_passed(&c, "a device's Unix socket");
	child_run(&filters_only, SANDBOX_ROLE_DEVICE, do_write, NULL, &c);
	check_passed(&c, "a device's write");
}

static void test_api(void)
{
	struct child c;

	child_run(&filters_only, SANDBOX_ROLE_API, do_execve, NULL, &c);
	check_killed(&c, "api", "execve");
	child_run(&filters_only, SANDBOX_ROLE_API, do_fork, NULL, &c);
	check_killed(&c, "api", "clone");
	child_run(&filters_only, SANDBOX_ROLE_API, do_socket_netlink, NULL, &c);
	check_killed(&c, "api", "socket");
	child_run(&filters_only, SANDBOX_ROLE_API, do_open, NULL, &c);
	check_passed(&c, "the API's open");
	child_run(&filters_only, SANDBOX_ROLE_API, do_socket_inet, NULL, &c);
	check_passed(&c, "the API's TCP socket (a migration)");
}

static void test_console(void)
{
	struct child c;

	child_run(&filters_only, SANDBOX_ROLE_CONSOLE, do_socket_unix, NULL, &c);
	check_killed(&c, "console", "socket");
	child_run(&filters_only, SANDBOX_ROLE_CONSOLE, do_execve, NULL, &c);
	check_killed(&c, "console", "execve");
	child_run(&filters_only, SANDBOX_ROLE_CONSOLE, do_write, NULL, &c);
	check_passed(&c, "the console's write");
}

static void test_signal(void)
{
	struct child c;

	child_run(&filters_only, SANDBOX_ROLE_SIGNAL, do_socket_unix, NULL, &c);
	check_killed(&c, "signal", "socket");
}

/* A switch daemon: its store and directory, never a new socket or a
 * device's ioctl. */
static void test_switch(void)
{
	struct child c;

	child_run(&filters_only, SANDBOX_ROLE_SWITCH, do_socket_unix, NULL, &c);
	check_killed(&c, "switch", "socket");
	child_run(&filters_only, SANDBOX_ROLE_SWITCH, do_execve, NULL, &c);
	check_killed(&c, "switch", "execve");
	child_run(&filters_only, SANDBOX_ROLE_SWITCH, do_kvm_ioctl, NULL, &c);
	check_killed(&c, "switch", "ioctl");
	child_run(&filters_only, SANDBOX_ROLE_SWITCH, do_open, NULL, &c);
	check_passed(&c, "the switch's open (a VM's configuration)");
	child_run(&filters_only, SANDBOX_ROLE_SWITCH, do_write, NULL, &c);
	check_passed(&c, "the switch's write");
}

static void test_main(void)
{
	struct child c;

	child_run(&filters_only, SANDBOX_ROLE_MAIN, do_execve, NULL, &c);
	check_killed(&c, "main", "execve");
	child_run(&filters_only, SANDBOX_ROLE_MAIN, do_ptrace, NULL, &c);
	check_killed(&c, "main", "ptrace");
	child_run(&filters_only, SANDBOX_ROLE_FC_API, do_fork, NULL, &c);
	check_killed(&c, "firecracker-api", "clone");
	child_run(&filters_only, SANDBOX_ROLE_MAIN, do_open, NULL, &c);
	check_passed(&c, "the main thread's open");
}

/* A thread the main thread starts under its filter (clone3 refused, so the
 * C library falls back to clone) enters its own role, and the message names
 * that role. */
static void *vcpu_like(void *arg)
{
	(void)arg;
	sandbox_enter(SANDBOX_ROLE_VCPU);
	if (socket(AF_UNIX, SOCK_STREAM, 0) >= 0)
		_exit(12);
	return NULL;
}

static int do_thread(void *arg)
{
	pthread_t t;

	(void)arg;
	if (pthread_create(&t, NULL, vcpu_like, NULL))
		return 11;
	pthread_join(t, NULL);
	return 10;
}

static void test_thread(void)
{
	struct child c;

	child_run(&filters_only, SANDBOX_ROLE_MAIN, do_thread, NULL, &c);
	check_killed(&c, "vcpu", "socket");
}

/* Without sandbox_setup (tests building VMs in process) a thread's role is
 * only its name: nothing is filtered. */
static void test_not_set_up(void)
{
	struct child c;

	child_run(NULL, SANDBOX_ROLE_VCPU, do_socket_unix, NULL, &c);
	check_passed(&c, "no sandbox set up");
}

/* ---- capabilities and no_new_privs, as the kernel reports them ---- */

/* 0: /proc/self/status has each of want's lines. */
static int do_status(void *arg)
{
	const char *const *want = arg;
	char buf[4096];
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 11;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 12;
	buf[n] = '\0';
	for (int i = 0; want[i]; i++)
		if (!strstr(buf, want[i])) {
			(void)!write(STDERR_FILENO, want[i], strlen(want[i]));
			return 10;
		}
	return 0;
}

static void test_caps(void)
{
	static const char *const want[] = { "NoNewPrivs:\t1\n", "Seccomp:\t2\n", "CapPrm:\t0000000000000000\n",
					    "CapEff:\t0000000000000000\n", "CapBnd:\t0000000000000000\n",
					    "CapAmb:\t0000000000000000\n", NULL };
	static const char *const root[] = { "CapEff:\t000001ff", NULL };
	static const char *const seccomp_off[] = { "Seccomp:\t0\n", "CapEff:\t0000000000000000\n",
						   "NoNewPrivs:\t1\n", NULL };
	const struct sandbox_config no_filters = { .no_landlock = "a test" };
	struct child c;

	if (geteuid() != 0)
		SKIP("not root: there are no capabilities to drop");
	/* Before: root's capabilities (CapEff starts 000001ff or more). */
	child_run(NULL, SANDBOX_ROLE_MAIN, do_status, (void *)root, &c);
	if (c.status != 0)
		SKIP("this root holds no full capability set (CapEff not 000001ff...): %s", c.err);
	child_run(&filters_only, SANDBOX_ROLE_MAIN, do_status, (void *)want, &c);
	check_passed(&c, "no capabilities, no_new_privs, a filter");
	/* --no-seccomp: no filter, but still no capabilities. */
	child_run(&no_filters, SANDBOX_ROLE_MAIN, do_status, (void *)seccomp_off, &c);
	check_passed(&c, "no filter, no capabilities");
}

/* ---- Landlock ---- */

static void test_landlock(void)
{
	char inside[300], outside[300], dir[300];
	const struct sandbox_path paths[] = { { dir, SANDBOX_TREE } };
	const struct sandbox_config cfg = { .seccomp = true, .landlock = true, .paths = paths, .npaths = 1 };
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, 1u /* VERSION */);
	struct child c;
	int fd;

	if (abi < 1)
		SKIP("this kernel has no Landlock (%s)", strerror(errno));
	snprintf(dir, sizeof(dir), "%s/vmdir", tmpdir);
	snprintf(inside, sizeof(inside), "%s/vmdir/file", tmpdir);
	snprintf(outside, sizeof(outside), "%s/elsewhere", tmpdir);
	CHECK(mkdir(dir, 0700) == 0);
	fd = open(outside, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	fd = open(inside, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	child_run(&cfg, SANDBOX_ROLE_MAIN, do_open, inside, &c);
	check_passed(&c, "a file in the VM's directory");
	child_run(&cfg, SANDBOX_ROLE_MAIN, do_open, outside, &c);
	if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 10)
		FAILF("a file outside the VM's directory opened (status 0x%x, %s)", c.status, c.err);
	/* The same open without Landlock goes through. */
	child_run(&filters_only, SANDBOX_ROLE_MAIN, do_open, outside, &c);
	check_passed(&c, "outside, without Landlock");
}

/* Where the kernel lacks Landlock the VMM runs on, saying so; here the
 * note for a sandbox that leaves Landlock off, and the info's fields. */
static int do_info(void *arg)
{
	struct sandbox_info i;

	(void)arg;
	sandbox_info(&i);
	if (!i.set_up || !i.seccomp || !i.caps_dropped || i.landlock_abi)
		return 10;
	return strstr(i.landlock, "off: a test") ? 0 : 11;
}

static void test_info(void)
{
	struct sandbox_info i;
	struct child c;

	sandbox_info(&i);
	CHECK(!i.set_up && !i.seccomp);
	child_run(&filters_only, SANDBOX_ROLE_MAIN, do_info, NULL, &c);
	check_passed(&c, "sandbox_info");
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nestvm-test-sandbox-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_vcpu);
	RUN(test_device);
	RUN(test_api);
	RUN(test_console);
	RUN(test_signal);
	RUN(test_switch);
	RUN(test_main);
	RUN(test_thread);
	RUN(test_not_set_up);
	RUN(test_caps);
	RUN(test_landlock);
	RUN(test_info);
	harness_remove_tree(tmpdir);
	return HARNESS_END();
}

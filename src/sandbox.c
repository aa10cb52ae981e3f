/* The VMM's sandbox (sandbox.h): one seccomp filter per thread role built
 * with libseccomp, capabilities dropped, no_new_privs and a Landlock domain,
 * each entered by the thread itself. A forbidden call traps into a handler
 * that names the thread's role and the call, then ends the process. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <time.h>
#include <unistd.h>

/* Landlock's later rights, where the headers predate them. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef SECBIT_NOROOT
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define SECBIT_NO_SETUID_FIXUP_LOCKED (1 << 3)
#endif

/* System calls the handler can name; x86-64's are below 512. */
#define SANDBOX_NR_NAMES 512

static const char *const sandbox_role_names[SANDBOX_ROLE_COUNT] = {
	[SANDBOX_ROLE_MAIN] = "main", [SANDBOX_ROLE_VCPU] = "vcpu", [SANDBOX_ROLE_DEVICE] = "device",
	[SANDBOX_ROLE_API] = "api", [SANDBOX_ROLE_CONSOLE] = "console", [SANDBOX_ROLE_SIGNAL] = "signal",
	[SANDBOX_ROLE_FC_API] = "firecracker-api", [SANDBOX_ROLE_SWITCH] = "switch",
};

/* The process's one sandbox: filters, rules and names are per process. */
static struct {
	pthread_mutex_t lock;
	bool set_up, seccomp;
	scmp_filter_ctx filter[SANDBOX_ROLE_COUNT];
	int ruleset_fd;
	int landlock_abi;
	char landlock[160];
	const char *names[SANDBOX_NR_NAMES];
} sandbox = { .lock = PTHREAD_MUTEX_INITIALIZER, .ruleset_fd = -1 };

/* The role of this thread, for the handler's message. */
static __thread int sandbox_thread_role = -1;

const char *sandbox_role_name(enum sandbox_role role)
{
	return (unsigned int)role < SANDBOX_ROLE_COUNT ? sandbox_role_names[role] : "unknown";
}

/* ---- what each role may call ---- */

/* Every thread: memory, locks, time, its own signals and exit, I/O on the
 * descriptors it holds. */
static const int sandbox_base[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
	SCMP_SYS(pwrite64), SCMP_SYS(close), SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
	SCMP_SYS(fcntl), SCMP_SYS(futex), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect),
	SCMP_SYS(mremap), SCMP_SYS(brk), SCMP_SYS(madvise), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(gettid),
	SCMP_SYS(getpid), SCMP_SYS(tgkill), SCMP_SYS(sched_yield), SCMP_SYS(restart_syscall), SCMP_SYS(rseq),
	SCMP_SYS(getrandom), SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* The C library's malloc asks it once a process has many arenas. */
	SCMP_SYS(sched_getaffinity),
	/* Who this is: a socket's peer is let in only as this user or root. */
	SCMP_SYS(geteuid), SCMP_SYS(getuid),
	/* A thread's own signal stack: the sanitizers set and clear one in
	 * every thread of the test builds. */
	SCMP_SYS(sigaltstack),
};

/* A device worker: its disk, its TAP device or switch, its vsock's host
 * sockets (Unix only, below), and KVM's ioctls for interrupts. */
static const int sandbox_device[] = {
	SCMP_SYS(accept4), SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(preadv2), SCMP_SYS(pwritev2), SCMP_SYS(fsync),
	SCMP_SYS(fdatasync), SCMP_SYS(fallocate), SCMP_SYS(ftruncate), SCMP_SYS(connect), SCMP_SYS(sendto),
	SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(shutdown), SCMP_SYS(getsockopt),
	SCMP_SYS(setsockopt), SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait), SCMP_SYS(eventfd2), SCMP_SYS(pipe2), SCMP_SYS(dup),
};

/* The console: the socket's clients, the terminal, and the log, which it
 * caps by renaming it to LOG.1 and opening a new one (Landlock keeps that
 * to the log's own place). */
static const int sandbox_console[] = {
	SCMP_SYS(accept4), SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg),
	SCMP_SYS(shutdown), SCMP_SYS(getsockopt), SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(rename),
	SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(ftruncate),
};

/* A switch daemon, once its sockets and uplink are open: adapters and
 * control clients come and go, frames pass, signals arrive on a signalfd;
 * each adapter's spoofing is read from the store's VM configurations, and
 * the log rotates within the switch's directory (Landlock keeps it to
 * reading the store and writing that directory). */
static const int sandbox_switch[] = {
	SCMP_SYS(accept4), SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg),
	SCMP_SYS(shutdown), SCMP_SYS(getsockopt), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait), SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(getdents64), SCMP_SYS(flock),
	SCMP_SYS(statx), SCMP_SYS(stat), SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2),
	SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(dup2), SCMP_SYS(dup3),
};

/* The signal thread waits, then asks the VM to stop. */
static const int sandbox_signal[] = { SCMP_SYS(rt_sigtimedwait) };

/* The control API: its clients; saves, checkpoints and a swapped disk open,
 * copy, sync and rename files (Landlock keeps them to the VM's directory and
 * disks); a migration connects out, on a thread of its own. */
static const int sandbox_api[] = {
	SCMP_SYS(accept4), SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg),
	SCMP_SYS(shutdown), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(listen),
	SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(statx), SCMP_SYS(statfs), SCMP_SYS(fstatfs),
	SCMP_SYS(getdents64), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(unlink), SCMP_SYS(unlinkat),
	SCMP_SYS(rmdir), SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(readlink),
	SCMP_SYS(readlinkat), SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(fchmod),
	SCMP_SYS(utimensat), SCMP_SYS(flock), SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
	SCMP_SYS(fallocate), SCMP_SYS(copy_file_range), SCMP_SYS(sendfile), SCMP_SYS(preadv),
	SCMP_SYS(pwritev), SCMP_SYS(eventfd2), SCMP_SYS(pipe2), SCMP_SYS(dup), SCMP_SYS(dup3),
	SCMP_SYS(set_robust_list), SCMP_SYS(sched_getaffinity), SCMP_SYS(mincore), SCMP_SYS(sigaltstack),
	SCMP_SYS(rt_sigaction),
	/* What a thread started here does to enter its own sandbox. */
	SCMP_SYS(capget), SCMP_SYS(capset), SCMP_SYS(prctl), SCMP_SYS(landlock_restrict_self), SCMP_SYS(seccomp),
};

/* The main thread and Firecracker's API build a machine (again on a
 * reboot): /dev/kvm, disks, TAP devices, threads of every role; and end the
 * VMM: records, sockets, the terminal. Everything above, and this. */
static const int sandbox_builder[] = {
	SCMP_SYS(rt_sigaction), SCMP_SYS(sigaltstack), SCMP_SYS(getrusage), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(uname), SCMP_SYS(sysinfo), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getppid), SCMP_SYS(memfd_create), SCMP_SYS(mlock),
	SCMP_SYS(munlock), SCMP_SYS(umask), SCMP_SYS(chmod), SCMP_SYS(fchmodat), SCMP_SYS(dup2),
	SCMP_SYS(socketpair), SCMP_SYS(sched_setaffinity), SCMP_SYS(wait4), SCMP_SYS(kill),
	SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime), SCMP_SYS(signalfd4), SCMP_SYS(rt_sigtimedwait),
	SCMP_SYS(rt_sigpending),
};

#define SANDBOX_LIST(a) { a, sizeof(a) / sizeof(a[0]) }
struct sandbox_list {
	const int *nr;
	size_t n;
};

/* The lists a role's filter allows; a builder allows every list, since the
 * threads it starts inherit its filter under their own. */
static int sandbox_role_lists(enum sandbox_role role, struct sandbox_list *l)
{
	const struct sandbox_list base = SANDBOX_LIST(sandbox_base), device = SANDBOX_LIST(sandbox_device), console = SANDBOX_LIST(sandbox_console),
				  sig = SANDBOX_LIST(sandbox_signal), api = SANDBOX_LIST(sandbox_api),
				  builder = SANDBOX_LIST(sandbox_builder), sw = SANDBOX_LIST(sandbox_switch);
	int n = 0;

	/* A vCPU needs no more than the base and KVM's ioctls (below): its
	 * exits kick workers and write the console through what it holds. */
	l[n++] = base;
	switch (role) {
	case SANDBOX_ROLE_VCPU: break;
	case SANDBOX_ROLE_DEVICE: l[n++] = device; break;
	case SANDBOX_ROLE_CONSOLE: l[n++] = console; break;
	case SANDBOX_ROLE_SIGNAL: l[n++] = sig; break;
	case SANDBOX_ROLE_API: l[n++] = api; l[n++] = device; break;
	case SANDBOX_ROLE_SWITCH: l[n++] = sw; break;
	case SANDBOX_ROLE_MAIN:
	case SANDBOX_ROLE_FC_API:
		l[n++] = device; l[n++] = console; l[n++] = sig; l[n++] = api; l[n++] = builder;
		break;
	case SANDBOX_ROLE_COUNT: break;
	}
	return n;
}

/* ioctl request types (_IOC_TYPE) a role may use: KVM's for every role that
 * has any; a builder may use any. */
#define SANDBOX_IOC_KVM   0xAE
#define SANDBOX_IOC_BLOCK 0x12          /* BLKGETSIZE64, BLKDISCARD, BLKZEROOUT */
#define SANDBOX_IOC_TTY   0x54          /* FIONREAD, FIONBIO, TCGETS, TUN's */
#define SANDBOX_IOC_FS    0x94          /* FICLONE */

static int sandbox_allow_ioctls(scmp_filter_ctx f, enum sandbox_role role)
{
	static const unsigned int device[] = { SANDBOX_IOC_KVM, SANDBOX_IOC_BLOCK, SANDBOX_IOC_TTY },
				  api[] = { SANDBOX_IOC_KVM, SANDBOX_IOC_BLOCK, SANDBOX_IOC_TTY, SANDBOX_IOC_FS },
				  kvm[] = { SANDBOX_IOC_KVM }, tty[] = { SANDBOX_IOC_TTY };
	const unsigned int *t = kvm;
	size_t n = 1;
	int r;

	switch (role) {
	case SANDBOX_ROLE_MAIN:
	case SANDBOX_ROLE_FC_API:
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 0);
	case SANDBOX_ROLE_SIGNAL:
		return 0;
	case SANDBOX_ROLE_SWITCH:
		/* The C library asks whether a stream is a terminal (TCGETS)
		 * when the log goes to one, or to /dev/null. */
		t = tty, n = 1;
		break;
	case SANDBOX_ROLE_DEVICE:
		t = device, n = sizeof(device) / sizeof(device[0]);
		break;
	case SANDBOX_ROLE_API:
		t = api, n = sizeof(api) / sizeof(api[0]);
		break;
	default:
		break;
	}
	for (size_t i = 0; i < n; i++) {
		r = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, (scmp_datum_t)t[i] << 8));
		if (r < 0)
			return r;
	}
	return 0;
}

/* Sockets: Unix ones for a device (its switch, its vsock's host side);
 * Unix and IP for the API (a migration's destination) and builders. New
 * threads only, never new processes: clone3's flags are out of a filter's
 * reach, so it answers ENOSYS and the C library falls back to clone. */
static int sandbox_allow_sockets_threads(scmp_filter_ctx f, enum sandbox_role role)
{
	static const int unix_only[] = { AF_UNIX }, ip[] = { AF_UNIX, AF_INET, AF_INET6 };
	const int *d = unix_only;
	size_t n = 1;
	int r;

	switch (role) {
	case SANDBOX_ROLE_DEVICE:
		break;
	case SANDBOX_ROLE_API:
	case SANDBOX_ROLE_MAIN:
	case SANDBOX_ROLE_FC_API:
		d = ip, n = 3;
		r = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
		if (r == 0)
			r = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
		if (r < 0)
			return r;
		break;
	default:
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		r = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)d[i]));
		if (r < 0)
			return r;
	}
	return 0;
}

/* The calls made most often, most often first. */
static const int sandbox_hot[] = {
	SCMP_SYS(ioctl), SCMP_SYS(futex), SCMP_SYS(write), SCMP_SYS(read), SCMP_SYS(ppoll), SCMP_SYS(poll),
	SCMP_SYS(pwritev), SCMP_SYS(preadv), SCMP_SYS(writev), SCMP_SYS(readv),
};

/* A role's filter: its lists allowed, anything else trapped. */
static int sandbox_build_filter(enum sandbox_role role, scmp_filter_ctx *out)
{
	struct sandbox_list lists[8];
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_TRAP);
	int n, r = 0;

	if (!f)
		return -ENOMEM;
	/* A binary tree, the hot calls first: every KVM_RUN, every byte a
	 * guest writes to its console goes through the filters, and in a
	 * nested guest the filter's instructions are not free. */
	r = seccomp_attr_set(f, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	for (size_t i = 0; i < sizeof(sandbox_hot) / sizeof(sandbox_hot[0]) && r == 0; i++)
		r = seccomp_syscall_priority(f, sandbox_hot[i], (uint8_t)(255 - i));
	n = sandbox_role_lists(role, lists);
	for (int i = 0; i < n && r == 0; i++)
		for (size_t k = 0; k < lists[i].n && r == 0; k++) {
			/* A call in two lists is allowed once. */
			r = seccomp_rule_add(f, SCMP_ACT_ALLOW, lists[i].nr[k], 0);
			if (r == -EEXIST)
				r = 0;
		}
	if (r == 0)
		r = sandbox_allow_ioctls(f, role);
	if (r == 0)
		r = sandbox_allow_sockets_threads(f, role);
	if (r < 0) {
		seccomp_release(f);
		return r;
	}
	*out = f;
	return 0;
}

/* ---- the handler ---- */

static size_t sandbox_put(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t sandbox_put_num(char *buf, size_t at, size_t cap, uint64_t u, unsigned int base)
{
	char num[24];
	int k = 0;

	do
		num[k++] = "0123456789abcdef"[u % base];
	while ((u /= base) && k < (int)sizeof(num));
	while (k > 0 && at < cap)
		buf[at++] = num[--k];
	return at;
}

/* Async-signal-safe: the names were looked up before any filter. Besides
 * the call, where it was made (for addr2line on the binary) and, for an
 * open, the path: what a fix needs to know. */
static void sandbox_sigsys(int sig, siginfo_t *si, void *uc)
{
	const greg_t *reg = ((ucontext_t *)uc)->uc_mcontext.gregs;
	const char *path = NULL;
	char msg[400];
	int nr = si->si_syscall;
	size_t n = 0;

	(void)sig;
	if (nr == SCMP_SYS(open))
		path = (const char *)reg[REG_RDI];
	else if (nr == SCMP_SYS(openat) || nr == SCMP_SYS(openat2))
		path = (const char *)reg[REG_RSI];
	n = sandbox_put(msg, n, sizeof(msg), "nestvm: sandbox: thread ");
	n = sandbox_put(msg, n, sizeof(msg),
			sandbox_thread_role >= 0 ? sandbox_role_names[sandbox_thread_role] : "unknown");
	n = sandbox_put(msg, n, sizeof(msg), " made forbidden system call ");
	n = sandbox_put(msg, n, sizeof(msg),
			nr >= 0 && nr < SANDBOX_NR_NAMES && sandbox.names[nr] ? sandbox.names[nr] : "?");
	n = sandbox_put(msg, n, sizeof(msg), " (");
	n = sandbox_put_num(msg, n, sizeof(msg), nr < 0 ? 0u : (uint64_t)nr, 10);
	n = sandbox_put(msg, n, sizeof(msg), "); killed (at 0x");
	n = sandbox_put_num(msg, n, sizeof(msg), (uint64_t)(uintptr_t)si->si_call_addr, 16);
	if (path) {
		char p[200];
		size_t i;

		for (i = 0; i < sizeof(p) - 1 && path[i]; i++)
			p[i] = path[i];
		p[i] = '\0';
		n = sandbox_put(msg, n, sizeof(msg), ", path '");
		n = sandbox_put(msg, n, sizeof(msg), p);
		n = sandbox_put(msg, n, sizeof(msg), "'");
	}
	n = sandbox_put(msg, n, sizeof(msg), ")\n");
	(void)!write(STDERR_FILENO, msg, n);
	/* Straight to the kernel: a C library's _exit may do more. */
	syscall(SYS_exit_group, SANDBOX_EXIT_STATUS);
}

/* ---- capabilities ---- */

static int sandbox_drop_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };
	bool setpcap;

	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	setpcap = d[0].effective & (1u << CAP_SETPCAP);
	if (setpcap) {
		/* Root stays powerless should it ever execute something. */
		(void)prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
			    SECBIT_NO_SETUID_FIXUP_LOCKED, 0, 0, 0);
		for (int cap = 0; cap < 64; cap++)
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
				break;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* ---- Landlock ---- */

static uint64_t sandbox_landlock_fs_rights(int abi)
{
	uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;

	if (abi >= 2)
		all |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		all |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return all;
}

/* The ruleset: handled, every file-system right; allowed, cfg's paths. A
 * path that does not exist is left out: the VMM cannot open it either. */
static int sandbox_landlock_ruleset(const struct sandbox_config *cfg, int abi, char *err, size_t errlen)
{
	uint64_t handled = sandbox_landlock_fs_rights(abi);
	struct landlock_ruleset_attr attr = { .handled_access_fs = handled };
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);

	if (fd < 0) {
		snprintf(err, errlen, "Landlock: creating the ruleset: %s", strerror(errno));
		return -errno;
	}
	for (size_t i = 0; i < cfg->npaths; i++) {
		const struct sandbox_path *p = &cfg->paths[i];
		struct landlock_path_beneath_attr rule = { 0 };
		struct stat st;
		uint64_t a = 0;
		long r;

		rule.parent_fd = open(p->path, O_PATH | O_CLOEXEC);
		if (rule.parent_fd < 0 || fstat(rule.parent_fd, &st) < 0) {
			if (rule.parent_fd >= 0)
				close(rule.parent_fd);
			continue;
		}
		if (p->access & SANDBOX_READ)
			a |= LANDLOCK_ACCESS_FS_READ_FILE;
		if ((p->access & SANDBOX_LIST) && S_ISDIR(st.st_mode))
			a |= LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
		if (p->access & SANDBOX_WRITE)
			a |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
		if ((p->access & SANDBOX_DEVICE) && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
			a |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
		if ((p->access & SANDBOX_TREE) && S_ISDIR(st.st_mode))
			a = handled & ~(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
					LANDLOCK_ACCESS_FS_MAKE_BLOCK);
		rule.allowed_access = a & handled;
		r = rule.allowed_access ? syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) : 0;
		close(rule.parent_fd);
		if (r < 0) {
			int e = errno;

			snprintf(err, errlen, "Landlock: '%s': %s", p->path, strerror(e));
			close(fd);
			return -e;
		}
	}
	return fd;
}

/* ---- setting up, entering ---- */

int sandbox_setup(const struct sandbox_config *cfg, char *err, size_t errlen)
{
	struct sigaction sa = { .sa_sigaction = sandbox_sigsys, .sa_flags = SA_SIGINFO };
	int r = 0;

	pthread_mutex_lock(&sandbox.lock);
	if (sandbox.set_up)
		goto out;
	/* The C library reads /etc/localtime at its first time conversion
	 * (the RTC's gmtime_r on a vCPU): now, while files may be opened. */
	tzset();
	if (cfg->seccomp) {
		if (seccomp_api_get() < 1 || prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
			snprintf(err, errlen, "sandbox: this kernel has no seccomp filters; run with --no-seccomp "
				 "to go without them");
			r = -ENOTSUP;
			goto out;
		}
		for (int i = 0; i < SANDBOX_ROLE_COUNT && r == 0; i++) {
			r = sandbox_build_filter((enum sandbox_role)i, &sandbox.filter[i]);
			if (r < 0)
				snprintf(err, errlen, "sandbox: building the %s filter: %s", sandbox_role_names[i],
					 strerror(-r));
		}
		for (int nr = 0; nr < SANDBOX_NR_NAMES && r == 0; nr++)
			sandbox.names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (r == 0 && sigaction(SIGSYS, &sa, NULL) < 0)
			r = -errno;
		if (r < 0) {
			for (int i = 0; i < SANDBOX_ROLE_COUNT; i++) {
				seccomp_release(sandbox.filter[i]);
				sandbox.filter[i] = NULL;
			}
			goto out;
		}
	}
	if (!cfg->landlock) {
		snprintf(sandbox.landlock, sizeof(sandbox.landlock), "off: %s",
			 cfg->no_landlock ? cfg->no_landlock : "not asked for");
	} else {
		int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

		if (abi < 1) {
			snprintf(sandbox.landlock, sizeof(sandbox.landlock),
				 "not available in this kernel (%s): file access is not limited",
				 errno == EOPNOTSUPP ? "disabled at boot" : "no Landlock");
		} else {
			char why[300];
			int fd = sandbox_landlock_ruleset(cfg, abi, why, sizeof(why));

			if (fd < 0) {
				snprintf(err, errlen, "sandbox: %s", why);
				r = fd;
				goto out;
			}
			sandbox.ruleset_fd = fd;
			sandbox.landlock_abi = abi;
			snprintf(sandbox.landlock, sizeof(sandbox.landlock), "on (ABI %d)", abi);
		}
	}
	sandbox.seccomp = cfg->seccomp;
	sandbox.set_up = true;
out:
	pthread_mutex_unlock(&sandbox.lock);
	return r;
}

static void sandbox_die(enum sandbox_role role, const char *step, int e)
{
	char msg[300];
	int n = snprintf(msg, sizeof(msg), "nestvm: sandbox: thread %s could not enter its sandbox: %s: %s; "
			 "nestvm run --no-seccomp goes without the filters\n", sandbox_role_name(role), step,
			 strerror(e));

	(void)!write(STDERR_FILENO, msg, (size_t)MIN(n, (int)sizeof(msg) - 1));
	_exit(1);
}

/* The end-to-end tests' probe: with NESTVM_SANDBOX_PROBE=ROLE in the
 * environment, a thread of that role makes a call no role may make (an
 * unmount, harmless where it were let through) as it enters: the filter
 * must end the VMM, naming it. */
static void sandbox_probe(enum sandbox_role role)
{
	const char *probe = getenv(SANDBOX_PROBE_ENV);

	if (probe && !strcmp(probe, sandbox_role_names[role]))
		(void)syscall(SYS_umount2, "/nonexistent-nestvm-sandbox-probe", 0);
}

void sandbox_enter(enum sandbox_role role)
{
	sigset_t sys;
	int r;

	sandbox_thread_role = (int)role;
	if (!sandbox.set_up)
		return;
	r = sandbox_drop_caps();
	if (r < 0)
		sandbox_die(role, "dropping capabilities", -r);
	if (sandbox.ruleset_fd >= 0 && syscall(SYS_landlock_restrict_self, sandbox.ruleset_fd, 0) < 0)
		sandbox_die(role, "Landlock", errno);
	if (sandbox.seccomp) {
		/* A blocked SIGSYS would kill without the handler's word. */
		sigemptyset(&sys);
		sigaddset(&sys, SIGSYS);
		pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
		pthread_mutex_lock(&sandbox.lock);
		r = seccomp_load(sandbox.filter[role]);
		pthread_mutex_unlock(&sandbox.lock);
		if (r < 0)
			sandbox_die(role, "loading its seccomp filter", -r);
	}
	sandbox_probe(role);
}

void sandbox_info(struct sandbox_info *info)
{
	memset(info, 0, sizeof(*info));
	pthread_mutex_lock(&sandbox.lock);
	info->set_up = sandbox.set_up;
	info->seccomp = sandbox.set_up && sandbox.seccomp;
	info->caps_dropped = sandbox.set_up;
	info->landlock_abi = sandbox.landlock_abi;
	snprintf(info->landlock, sizeof(info->landlock), "%s", sandbox.set_up ? sandbox.landlock : "off");
	pthread_mutex_unlock(&sandbox.lock);
}

void sandbox_describe(const struct sandbox_info *info, char *buf, size_t len)
{
	if (!info->set_up) {
		snprintf(buf, len, "off");
		return;
	}
	snprintf(buf, len, "seccomp filters %s, %s, Landlock %s", info->seccomp ? "on" : "off (--no-seccomp)",
		 info->caps_dropped ? "no capabilities" : "capabilities kept", info->landlock);
}

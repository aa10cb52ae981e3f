/* Runs a piece of a test as another, unprivileged user (uid and gid 65534,
 * no groups) in a forked child, as a second local user would: for the tests
 * that check who may reach nestvm's sockets. Only root can become another
 * user; elsewhere the test skips loudly. */
#ifndef NESTVM_TESTS_OTHER_USER_H
#define NESTVM_TESTS_OTHER_USER_H

#include <grp.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define OTHER_UID 65534

/* Starts fn(arg) in a child as the other user; its pid, or -1. SKIPs the
 * calling test unless root. other_user_wait gives fn's return value
 * (0..255), or -1 if the child could not become that user or died. */
static inline pid_t other_user_start(int (*fn)(void *), void *arg)
{
	pid_t pid;

	if (geteuid() != 0)
		SKIP("only root can act as a second user (uid %d): run the unit tests as root to cover this", OTHER_UID);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(OTHER_UID, OTHER_UID, OTHER_UID) < 0 ||
		    setresuid(OTHER_UID, OTHER_UID, OTHER_UID) < 0 || geteuid() != OTHER_UID)
			_exit(254);
		_exit(fn(arg) & 0xff);
	}
	return pid;
}

static inline int other_user_wait(pid_t pid)
{
	int st;

	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) == 254)
		return -1;
	return WEXITSTATUS(st);
}

/* Both in one: for a child that needs nothing from this process meanwhile. */
static inline int other_user_run(int (*fn)(void *), void *arg)
{
	return other_user_wait(other_user_start(fn, arg));
}

#endif

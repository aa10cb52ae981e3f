/*
 * timeit: runs a command, relays its standard output, and reports in
 * milliseconds when a given line first appeared on it and when the command
 * exited (busybox date has no %N). Built statically by bench/boot.
 *
 * Usage: timeit [-t SECS] [-o FILE] PATTERN COMMAND [ARGS...]
 *   PATTERN  a substring to look for in the command's output lines
 *   -t SECS  kill the command (its process group) after SECS seconds
 *   -o FILE  write the report there instead of to standard error
 * Report (one line):
 *   timeit: line_ms=L exit_ms=E status=S maxrss_kib=R
 * L is -1 if PATTERN never appeared; S is the exit status, 128+signal if the
 * command was killed by a signal, 124 on timeout; R is the command's peak RSS.
 * Exit status: 0 when the report was written, 2 on usage or system errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* the reader went away: keep timing anyway */
		}
		p += w;
		n -= (size_t)w;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: timeit [-t SECS] [-o FILE] PATTERN COMMAND [ARGS...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *out_path = NULL;
	double limit_ms = 0;
	int opt;

	while ((opt = getopt(argc, argv, "+t:o:")) != -1) {
		switch (opt) {
		case 't':
			limit_ms = atof(optarg) * 1e3;
			if (limit_ms <= 0)
				usage();
			break;
		case 'o':
			out_path = optarg;
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 2)
		usage();
	const char *pattern = argv[optind];
	char **cmd = &argv[optind + 1];

	int pfd[2];
	if (pipe(pfd) < 0) {
		perror("timeit: pipe");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	double t0 = now_ms();
	pid_t pid = fork();
	if (pid < 0) {
		perror("timeit: fork");
		return 2;
	}
	if (pid == 0) {
		setpgid(0, 0);
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		signal(SIGPIPE, SIG_DFL);
		execvp(cmd[0], cmd);
		fprintf(stderr, "timeit: cannot run %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(pfd[1]);

	/* Line assembly for matching; output is relayed as it comes. */
	static char line[65536];
	size_t len = 0;
	double line_ms = -1;
	int timed_out = 0;
	char buf[8192];
	int open_fd = 1;

	while (open_fd) {
		int wait_ms = -1;
		if (limit_ms > 0) {
			double left = limit_ms - (now_ms() - t0);
			if (left <= 0) {
				timed_out = 1;
				break;
			}
			wait_ms = (int)left + 1;
		}
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int r = poll(&p, 1, wait_ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("timeit: poll");
			break;
		}
		if (r == 0)
			continue; /* the deadline check above ends the loop */
		ssize_t n = read(pfd[0], buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0) {
			open_fd = 0;
			break;
		}
		double t = now_ms();
		write_all(STDOUT_FILENO, buf, (size_t)n);
		if (line_ms >= 0)
			continue;
		for (ssize_t i = 0; i < n && line_ms < 0; i++) {
			if (buf[i] == '\n' || len == sizeof(line) - 1) {
				line[len] = '\0';
				if (strstr(line, pattern))
					line_ms = t - t0;
				len = 0;
			} else {
				line[len++] = buf[i];
			}
		}
		/* A partial line that already holds the pattern counts now. */
		if (line_ms < 0 && len > 0) {
			line[len] = '\0';
			if (strstr(line, pattern))
				line_ms = t - t0;
		}
	}

	if (timed_out) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	int status = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	for (;;) {
		pid_t w;
		if (limit_ms > 0 && !timed_out) {
			/* The output closed; the command may still linger. */
			w = wait4(pid, &status, WNOHANG, &ru);
			if (w == 0) {
				if (now_ms() - t0 >= limit_ms) {
					timed_out = 1;
					kill(-pid, SIGKILL);
					kill(pid, SIGKILL);
					continue;
				}
				usleep(1000);
				continue;
			}
		} else {
			w = wait4(pid, &status, 0, &ru);
		}
		if (w < 0 && errno == EINTR)
			continue;
		break;
	}
	double exit_ms = now_ms() - t0;
	int code;
	if (timed_out)
		code = 124;
	else if (WIFEXITED(status))
		code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		code = 128 + WTERMSIG(status);
	else
		code = 125;

	FILE *out = stderr;
	if (out_path) {
		out = fopen(out_path, "w");
		if (!out) {
			fprintf(stderr, "timeit: cannot write %s: %s\n", out_path, strerror(errno));
			return 2;
		}
	}
	fprintf(out, "timeit: line_ms=%.1f exit_ms=%.1f status=%d maxrss_kib=%ld\n",
		line_ms, exit_ms, code, ru.ru_maxrss);
	if (out != stderr)
		fclose(out);
	return 0;
}

/* "nestvm vsock": a guest's end of a vsock stream, so that the default
 * guest image can use the vsock device with nothing else installed: it
 * connects to a port of the host (or another CID), or listens on a port for
 * one connection, then copies standard input to the stream and the stream
 * to standard output until the peer closes. */
#include "cli/cli.h"
#include "cli/opts.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

struct vsock_opts {
	unsigned int cid;
};

static const struct opt vsock_table[] = {
	{ "cid", 0, OPT_UINT, offsetof(struct vsock_opts, cid), "CID", "connect: the peer's CID (default 2, the host)",
	  0, UINT32_MAX - 1, NULL },
	{ 0 },
};

static const char vsock_usage[] = "nestvm vsock connect [--cid CID] PORT\n"
				  "       nestvm vsock listen PORT";
static const char vsock_summary[] =
	"A vsock stream for this guest's standard input and output: connect reaches PORT\n"
	"of the host (nestvm's host side is a Unix socket: the host program listens on\n"
	"SOCKET_PORT), listen waits for one connection (the host program connects to the\n"
	"VM's socket and writes \"CONNECT PORT\"). Standard input goes to the peer, what it\n"
	"sends to standard output; it ends when the peer closes. Exit 0, or 1 if the\n"
	"connection fails.";

/* Copies both ways until both are done: the peer's end read, and standard
 * input's end passed on (or the peer gone for good). */
static int vsock_relay(int s)
{
	bool in_open = true, peer_open = true;
	char buf[16384];

	while (in_open || peer_open) {
		struct pollfd p[2] = { { peer_open ? s : -1, POLLIN, 0 }, { in_open ? STDIN_FILENO : -1, POLLIN, 0 } };
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[0].revents) {
			n = read(s, buf, sizeof(buf));
			if (n < 0)
				return 1;
			if (n == 0)
				peer_open = false;
			else if (util_write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
				return 1;
		}
		if (p[1].revents) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0) {
				in_open = false;
				shutdown(s, SHUT_WR);
			} else if (util_write_all(s, buf, (size_t)n) < 0) {
				return peer_open ? 1 : 0;       /* the peer closed both ways */
			}
		}
	}
	return 0;
}

int cmd_vsock(int argc, char **argv)
{
	struct vsock_opts o = { .cid = VMADDR_CID_HOST };
	struct sockaddr_vm a = { .svm_family = AF_VSOCK };
	uint64_t port;
	int npos, r, s;
	bool listen_mode;

	r = cli_parse("vsock", vsock_table, vsock_usage, vsock_summary, argc, argv, &o, &npos, NULL);
	if (r >= 0)
		return r;
	if (npos != 2 || (strcmp(argv[0], "connect") && strcmp(argv[0], "listen"))) {
		cli_error("vsock: usage: %s", vsock_usage);
		return EXIT_USAGE;
	}
	listen_mode = !strcmp(argv[0], "listen");
	if (util_parse_uint(argv[1], 0, UINT32_MAX - 1, &port) < 0) {
		cli_error("vsock: port '%s': a number from 0 to 4294967294", argv[1]);
		return EXIT_USAGE;
	}
	s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		cli_error("vsock: no vsock here (%s): load vmw_vsock_virtio_transport, and give the VM a vsock "
			  "device (nestvm run --vsock CID,PATH)", strerror(errno));
		return 1;
	}
	a.svm_port = (unsigned int)port;
	a.svm_cid = listen_mode ? VMADDR_CID_ANY : o.cid;
	if (listen_mode) {
		int c;

		if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0) {
			cli_error("vsock: listening on port %u: %s", a.svm_port, strerror(errno));
			close(s);
			return 1;
		}
		c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		close(s);
		if (c < 0) {
			cli_error("vsock: accepting on port %u: %s", a.svm_port, strerror(errno));
			return 1;
		}
		s = c;
	} else if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		cli_error("vsock: connecting to CID %u port %u: %s", a.svm_cid, a.svm_port, strerror(errno));
		close(s);
		return 1;
	}
	r = vsock_relay(s);
	close(s);
	return r;
}

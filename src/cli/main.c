/* nestvm's entry point: picks the subcommand. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#ifndef NESTVM_VERSION
#define NESTVM_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
	fputs("Usage: nestvm COMMAND [OPTIONS]\n"
	      "A virtual machine monitor on Linux KVM built for nested virtualization.\n\n"
	      "Commands:\n"
	      "  run        boot one VM in the foreground (nestvm run --help)\n"
	      "  vm         named VMs: new, set, list, show, remove, start, save, discard-saved,\n"
	      "             checkpoint, migrate, receive, stop, console, pause, resume (nestvm vm help)\n"
	      "  nested     nested enable NAME: set a VM up to run VMs of its own\n"
	      "  switch     virtual switches: new, start, stop, show, list, remove (nestvm switch help)\n"
	      "  autostart  start, stop, list: the switches and VMs that start with the host\n"
	      "  status     can this host and its VMs run nested virtualization? (nestvm status --help)\n"
	      "  probe      measure how fast KVM runs guest kernel code\n"
	      "  firecracker  serve Firecracker's API (also as a link named firecracker)\n"
	      "  vsock      inside a guest: connect or listen on a vsock port (nestvm vsock --help)\n"
	      "  version    print the version\n"
	      "  help       show this help\n", out);
}

static int cmd_version(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("nestvm %s\n", NESTVM_VERSION);
	return 0;
}

static const struct cli_cmd main_cmds[] = {
	{ "run", cmd_run }, { "vm", cmd_vm }, { "nested", cmd_nested }, { "switch", cmd_switch }, { "autostart", cmd_autostart },
	{ "status", cmd_status }, { "probe", cmd_probe }, { "firecracker", cmd_firecracker },
	{ "vsock", cmd_vsock }, { "version", cmd_version }, { "--version", cmd_version },
	{ 0 },
};

int main(int argc, char **argv)
{
	const char *self = argc > 0 ? strrchr(argv[0], '/') : NULL;

	/* Started as Firecracker by a launcher that knows only its binary. */
	self = self ? self + 1 : argc > 0 ? argv[0] : "";
	if (!strcmp(self, "firecracker"))
		return cmd_firecracker(argc - 1, argv + 1);
	return cli_dispatch("", main_cmds, usage, argc - 1, argv + 1);
}

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
	      "  vm         named VMs: new, set, list, show, remove, start, stop, console,\n"
	      "             pause, resume (nestvm vm help)\n"
	      "  nested     nested enable NAME: set a VM up to run VMs of its own\n"
	      "  switch     virtual switches: new, start, stop, show, list, remove (nestvm switch help)\n"
	      "  status     can this host and its VMs run nested virtualization? (nestvm status --help)\n"
	      "  probe      measure how fast KVM runs guest kernel code\n"
	      "  version    print the version\n"
	      "  help       show this help\n", out);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(cmd, "vm"))
		return cmd_vm(argc - 2, argv + 2);
	if (!strcmp(cmd, "nested"))
		return cmd_nested(argc - 2, argv + 2);
	if (!strcmp(cmd, "switch"))
		return cmd_switch(argc - 2, argv + 2);
	if (!strcmp(cmd, "status"))
		return cmd_status(argc - 2, argv + 2);
	if (!strcmp(cmd, "probe"))
		return cmd_probe(argc - 2, argv + 2);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("nestvm %s\n", NESTVM_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	cli_error("unknown command '%s' (see 'nestvm help')", cmd);
	return EXIT_USAGE;
}

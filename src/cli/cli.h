/* The command-line layer: the only code that prints to the user and picks
 * exit statuses (0 success, 1 failure, 2 bad usage or input). */
#ifndef NESTVM_CLI_H
#define NESTVM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define EXIT_USAGE 2

int cmd_run(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_switch(int argc, char **argv);
int cmd_vm(int argc, char **argv);
int cmd_nested(int argc, char **argv);
int cmd_firecracker(int argc, char **argv);
int cmd_vsock(int argc, char **argv);
int cmd_autostart(int argc, char **argv);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How run_stored runs a VM of the store: nestvm run --name's options. */
struct vmstate_load;
struct run_stored_opts {
	const char *kvm;
	bool skip_probe;
	int on_reboot;                  /* enum vmm_on_reboot */
	bool detach, stats, boot_times;
	bool no_seccomp;                /* no system-call filters (run --no-seccomp) */
	const char *console_log, *console_socket, *api_socket;  /* NULL: in the VM's directory */
	/* A migrating VM: its stream's head read from incoming_fd. */
	struct vmstate_load *incoming;
	int incoming_fd;
};
/* Runs the VM name of the store (store NULL: the default) as nestvm run
 * --name does, and as nestvm vm start does detached; cmd prefixes its
 * messages. Returns the exit status. */
int run_stored(const char *cmd, const char *store, const char *name, const struct run_stored_opts *o);

/* The exit status for how a VM ended (0 powered off or rebooted, 1 crashed,
 * 128+N stopped by signal N), saying on stderr what is to be said. */
struct vmm_exit;
int run_exit_status(const struct vmm_exit *ex);

/* A command with subcommands, before it looks at argv[0]: none given
 * prints its usage on stderr and is EXIT_USAGE; help, --help or -h prints
 * it on stdout and is 0. Returns -1 to go on. */
int cli_subcommand(void (*usage)(FILE *out), int argc, char **argv);
bool cli_is_help(const char *word);

/* A table of subcommands and the dispatch over it: runs the one argv[0]
 * names with the arguments after it, answering as cli_subcommand does and
 * naming an unknown one; what is the command ("vm"; "" for nestvm). */
struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
};
int cli_dispatch(const char *what, const struct cli_cmd *cmds, void (*usage)(FILE *out), int argc, char **argv);

struct opt;
/* Parses the options of the command cmd ("vm new") from its table into cfg
 * (see opts_parse). Returns -1 to go on, else the exit status: 0 once
 * --help has printed the help, EXIT_USAGE once the mistake is printed. */
int cli_parse(const char *cmd, const struct opt *table, const char *usage, const char *summary,
	      int argc, char **argv, void *cfg, int *npos, uint64_t *given);

#endif

/* The command-line layer: the only code that prints to the user and picks
 * exit statuses (0 success, 1 failure, 2 bad usage or input). */
#ifndef NESTVM_CLI_H
#define NESTVM_CLI_H

#include <stdint.h>

#define EXIT_USAGE 2

int cmd_run(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_switch(int argc, char **argv);
int cmd_vm(int argc, char **argv);
int cmd_nested(int argc, char **argv);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct opt;
/* Parses the options of the command cmd ("vm new") from its table into cfg
 * (see opts_parse). Returns -1 to go on, else the exit status: 0 once
 * --help has printed the help, EXIT_USAGE once the mistake is printed. */
int cli_parse(const char *cmd, const struct opt *table, const char *usage, const char *summary,
	      int argc, char **argv, void *cfg, int *npos, uint64_t *given);

#endif

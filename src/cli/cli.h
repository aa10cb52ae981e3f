/* The command-line layer: the only code that prints to the user and picks
 * exit statuses (0 success, 1 failure, 2 bad usage or input). */
#ifndef NESTVM_CLI_H
#define NESTVM_CLI_H

#define EXIT_USAGE 2

int cmd_run(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_switch(int argc, char **argv);
int cmd_vm(int argc, char **argv);
int cmd_nested(int argc, char **argv);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

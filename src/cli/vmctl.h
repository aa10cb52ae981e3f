/* What the VM commands share: the store root, loading a VM, stopping it,
 * and the Y/N question. Command-line layer: these print errors. */
#ifndef NESTVM_CLI_VMCTL_H
#define NESTVM_CLI_VMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The store root from --store, $NESTVM_STORE or the default; prints why not. */
int vmctl_root(const char *opt, char *root, size_t len);
/* Checks the name and loads the VM; returns 0 or the exit status, printed. */
int vmctl_load(const char *cmd, const char *root, const char *name, struct vmconfig *vm);
/* Power button, a wait of timeout_s for the VMM to end; with force then the
 * API's stop and, last, SIGKILL. Returns the exit status, message printed. */
int vmctl_stop(const char *cmd, const char *root, const char *name, int timeout_s, bool force, bool quiet);
/* Saves the running or paused VM (the API's save), waiting up to
 * timeout_s for it. Returns the exit status, message printed. */
int vmctl_save(const char *cmd, const char *root, const char *name, int timeout_s);

/* Asks a yes/no question on stdin/stdout until answered Y or N (any case, or
 * yes/no); returns 1 for yes, 0 for no, -1 at end of input. */
int vmctl_ask(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

/* The serial console around a running VM: the hub that takes COM1's output
 * to a log or standard output, keeps the last of it for consoles that attach
 * later and serves them on a Unix socket; the terminal console that feeds
 * standard input to COM1 with a Ctrl-A escape; and attaching this terminal
 * to a hub's socket from another process. */
#ifndef NESTVM_CONSOLE_H
#define NESTVM_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Where typed bytes go (COM1's input); it may block until they are taken. */
typedef void (*console_input_fn)(void *opaque, const uint8_t *buf, size_t len);

/* A console log is kept under this many bytes, the one before it in
 * PATH.1: a guest that writes without end takes at most twice this. */
#define CONSOLE_LOG_MAX (1u << 20)

/* The hub. What COM1 writes to *com1_fd reaches out_fd whole, a ring of
 * the last 64 KiB and every attached console (a slow one loses output).
 * With log_path, out_fd is the log file at that path (opened O_APPEND),
 * rotated at CONSOLE_LOG_MAX. With socket_path, consoles attach there and
 * what they type goes to input. -errno; nothing is left running on failure. */
struct console_hub;
MUST_CHECK int console_hub_start(struct console_hub **out, int out_fd, const char *log_path,
				 const char *socket_path, console_input_fn input, void *opaque, int *com1_fd);
/* Closes COM1's end and returns once all it wrote has reached out_fd; then
 * closes the socket and its consoles. NULL: nothing to do. */
void console_hub_stop(struct console_hub *h);

/* Standard input to input. On a terminal, in raw mode until it stops, where
 * Ctrl-A x calls quit and Ctrl-A Ctrl-A sends Ctrl-A. -errno. */
struct console_tty;
MUST_CHECK int console_tty_start(struct console_tty **out, console_input_fn input, void (*quit)(void *opaque),
				 void *opaque);
/* Stops reading and leaves the terminal as it was. NULL: nothing to do. */
void console_tty_stop(struct console_tty *t);

/* Attaches this terminal to a console socket (fd, connected): its output
 * to standard output, standard input to it, the terminal raw meanwhile.
 * Returns 1 when the user typed the escape byte, 0 when the console closed
 * (the VM stopped), -errno when writing failed. */
MUST_CHECK int console_attach(int fd, uint8_t escape);

#endif

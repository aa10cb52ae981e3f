/* The VM commands' shared parts: store root, loading, stop, Y/N. */
#include "cli/vmctl.h"
#include "cli/cli.h"
#include "vmm.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int vmctl_root(const char *opt, char *root, size_t len)
{
	if (store_root(opt, root, len) < 0) {
		cli_error("no store directory: HOME is not set; give --store DIR or set NESTVM_STORE");
		return EXIT_USAGE;
	}
	return 0;
}

int vmctl_load(const char *cmd, const char *root, const char *name, struct vmconfig *vm)
{
	char err[1400], why[160];
	int r;

	if (store_name_check(name, why, sizeof(why)) < 0) {
		cli_error("%s: '%s': %s", cmd, name, why);
		return EXIT_USAGE;
	}
	r = store_load(root, name, vm, err, sizeof(err));
	if (r == -ENOENT) {
		cli_error("%s: %s (see nestvm vm list)", cmd, err);
		return EXIT_USAGE;
	}
	if (r < 0) {
		cli_error("%s: %s", cmd, err);
		return 1;
	}
	return 0;
}

/* A control API command to the VM's VMM: 0 once it answered ok. */
static int vmctl_call(const char *root, const char *name, const char *cmd)
{
	struct api_object *reply = malloc(sizeof(*reply));
	int r;

	if (!reply)
		return -ENOMEM;
	r = vmm_call(root, name, cmd, reply, 5000);
	free(reply);
	return r;
}

int vmctl_stop(const char *cmd, const char *root, const char *name, int timeout_s, bool force, bool quiet)
{
	struct vmm_state st;
	int r;

	vmm_state(root, name, &st);
	if (vmm_state_is_off(&st)) {
		if (!quiet)
			printf("VM %s is already Off\n", name);
		return 0;
	}
	if (timeout_s > 0) {
		r = vmctl_call(root, name, "powerbutton");
		if (r < 0 && !force) {
			cli_error("%s: VM %s (%s) did not take the power button: %s", cmd, name, st.state, strerror(-r));
			return 1;
		}
		if (r == 0) {
			if (!quiet)
				printf("Pressed the power button of %s; waiting up to %d s for it to shut down\n",
				       name, timeout_s);
			fflush(stdout);
			if (vmm_wait_off(root, name, timeout_s * 1000)) {
				if (!quiet)
					printf("VM %s is Off (its guest shut down)\n", name);
				return 0;
			}
		}
		if (!force) {
			cli_error("%s: VM %s did not shut down within %d s of the power button (its guest may not "
				  "handle ACPI power-button events): 'nestvm vm stop --force %s' turns it off",
				  cmd, name, timeout_s, name);
			return 1;
		}
		if (!quiet)
			printf("VM %s did not shut down within %d s; turning it off\n", name, timeout_s);
	}
	if (vmctl_call(root, name, "stop") == 0 && vmm_wait_off(root, name, 10000)) {
		if (!quiet)
			printf("VM %s is Off (turned off)\n", name);
		return 0;
	}
	vmm_state(root, name, &st);
	if (vmm_state_is_off(&st)) {
		if (!quiet)
			printf("VM %s is Off\n", name);
		return 0;
	}
	/* Last resort: the VMM does not answer or does not end. */
	if (st.pid > 1 && kill(st.pid, SIGKILL) == 0 && vmm_wait_off(root, name, 5000)) {
		if (!quiet)
			printf("VM %s is Off (its VMM, pid %d, was killed)\n", name, st.pid);
		return 0;
	}
	cli_error("%s: VM %s could not be stopped (VMM pid %d): %s", cmd, name, st.pid, strerror(errno));
	return 1;
}

int vmctl_save(const char *cmd, const char *root, const char *name, int timeout_s)
{
	struct api_request req = { .cmd = API_SAVE };
	struct api_object *reply;
	struct vmm_state st;
	int r;

	vmm_state(root, name, &st);
	if (strcmp(st.state, "Running") && strcmp(st.state, "Paused")) {
		cli_error("%s: VM %s is %s; only a running or paused VM is saved", cmd, name, st.state);
		return 1;
	}
	reply = malloc(sizeof(*reply));
	if (!reply)
		return 1;
	r = vmm_call_request(root, name, &req, reply, timeout_s * 1000);
	if (r == 0) {
		const struct api_member *b = api_get(reply, "savedBytes"), *ms = api_get(reply, "saveMillis");
		uint64_t bytes = b && b->type == API_INT ? (uint64_t)b->num : 0;
		uint64_t millis = ms && ms->type == API_INT ? (uint64_t)ms->num : 0;

		if (!vmm_wait_off(root, name, 30000)) {
			cli_error("%s: VM %s was saved, but its VMM has not ended yet", cmd, name);
			r = 1;
		} else {
			printf("Saved VM %s (%.1f MiB in %llu.%03llu s); nestvm vm start %s resumes it\n", name,
			       (double)bytes / (1 << 20), (unsigned long long)(millis / 1000),
			       (unsigned long long)(millis % 1000), name);
		}
	} else if (r == -EPROTO) {
		const struct api_member *e = api_get(reply, "error");

		cli_error("%s: VM %s: %s", cmd, name, e && e->type == API_STRING ? e->str : "refused");
		r = 1;
	} else {
		cli_error("%s: VM %s: its VMM did not answer: %s", cmd, name, strerror(-r));
		r = 1;
	}
	free(reply);
	return r;
}

int vmctl_ask(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	for (;;) {
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		fputs(" [Y/N] ", stdout);
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return -1;
		line[strcspn(line, "\r\n")] = 0;
		if (!strcasecmp(line, "y") || !strcasecmp(line, "yes"))
			return 1;
		if (!strcasecmp(line, "n") || !strcasecmp(line, "no"))
			return 0;
		printf("Please answer Y or N.\n");
	}
}

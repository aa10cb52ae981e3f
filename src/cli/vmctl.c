/* The VM commands' shared parts: store root, derived state, stop, Y/N. */
#include "cli/vmctl.h"
#include "cli/cli.h"
#include "api.h"

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

/* A "key = value" of a small record file. */
static void vmctl_record(const char *text, const char *key, char *out, size_t len)
{
	size_t k = strlen(key);

	out[0] = 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, key, k) && !strncmp(p + k, " = ", 3)) {
			size_t n = strcspn(p + k + 3, "\n");

			snprintf(out, len, "%.*s", (int)MIN(n, len - 1), p + k + 3);
			return;
		}
	}
}

void vmctl_state(const char *root, const char *name, struct vmctl_state *st)
{
	char path[STORE_PATH_MAX + 128];
	struct api_object *reply;
	uint8_t *data;
	size_t len;

	memset(st, 0, sizeof(*st));
	if (!store_vmm_alive(root, name)) {
		snprintf(st->state, sizeof(st->state), "Off");
		if (store_path(path, sizeof(path), root, name, STORE_EXIT) == 0 &&
		    util_read_file(path, &data, &len) == 0) {
			char *text = strndup((const char *)data, len), reason[128], detail[1024], when[32];
			time_t t;

			free(data);
			if (!text)
				return;
			vmctl_record(text, "reason", reason, sizeof(reason));
			vmctl_record(text, "detail", detail, sizeof(detail));
			vmctl_record(text, "time", when, sizeof(when));
			t = (time_t)strtoll(when, NULL, 10);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
			snprintf(st->last_exit, sizeof(st->last_exit), "%s%s%s (%s)", reason, detail[0] ? ": " : "",
				 detail, when);
			free(text);
		} else if (store_path(path, sizeof(path), root, name, STORE_PID) == 0 &&
			   util_read_file(path, &data, &len) == 0) {
			snprintf(st->last_exit, sizeof(st->last_exit),
				 "the VMM (pid %d) ended without an exit record: it was killed or crashed; see %s",
				 atoi((const char *)data), STORE_CONSOLE_LOG);
			free(data);
		}
		return;
	}
	snprintf(st->state, sizeof(st->state), "Starting");
	reply = malloc(sizeof(*reply));
	if (!reply || store_path(path, sizeof(path), root, name, STORE_API_SOCK) < 0) {
		free(reply);
		return;
	}
	if (api_call(path, "status", reply, 3000) == 0) {
		const struct api_member *s = api_get(reply, "state"), *p = api_get(reply, "pid");
		const struct api_member *mem = api_get(reply, "memoryAssignedBytes");

		if (s && s->type == API_STRING)
			snprintf(st->state, sizeof(st->state), "%.15s", s->str);
		if (p && p->type == API_INT)
			st->pid = (int)p->num;
		if (mem && mem->type == API_INT && mem->num > 0)
			st->memory_assigned = (uint64_t)mem->num;
	}
	free(reply);
	if (!st->pid && store_path(path, sizeof(path), root, name, STORE_PID) == 0 &&
	    util_read_file(path, &data, &len) == 0) {
		st->pid = atoi((const char *)data);
		free(data);
	}
}

bool vmctl_is_off(const struct vmctl_state *st)
{
	return !strcmp(st->state, "Off");
}

static bool vmctl_wait_off(const char *root, const char *name, int timeout_ms)
{
	for (int waited = 0;; waited += 100) {
		if (!store_vmm_alive(root, name))
			return true;
		if (waited >= timeout_ms)
			return false;
		nanosleep(&(struct timespec){ 0, 100 * 1000000 }, NULL);
	}
}

static int vmctl_api(const char *root, const char *name, const char *cmd)
{
	char path[STORE_PATH_MAX + 128];
	struct api_object *reply = malloc(sizeof(*reply));
	int r;

	if (!reply)
		return -ENOMEM;
	r = store_path(path, sizeof(path), root, name, STORE_API_SOCK);
	if (r == 0)
		r = api_call(path, cmd, reply, 5000);
	if (r == 0) {
		const struct api_member *ok = api_get(reply, "ok");
		if (!ok || ok->type != API_BOOL || !ok->b)
			r = -EPROTO;
	}
	free(reply);
	return r;
}

int vmctl_stop(const char *cmd, const char *root, const char *name, int timeout_s, bool force, bool quiet)
{
	struct vmctl_state st;
	int r;

	vmctl_state(root, name, &st);
	if (vmctl_is_off(&st)) {
		if (!quiet)
			printf("VM %s is already Off\n", name);
		return 0;
	}
	if (timeout_s > 0) {
		r = vmctl_api(root, name, "powerbutton");
		if (r < 0 && !force) {
			cli_error("%s: VM %s (%s) did not take the power button: %s", cmd, name, st.state, strerror(-r));
			return 1;
		}
		if (r == 0) {
			if (!quiet)
				printf("Pressed the power button of %s; waiting up to %d s for it to shut down\n",
				       name, timeout_s);
			fflush(stdout);
			if (vmctl_wait_off(root, name, timeout_s * 1000)) {
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
	if (vmctl_api(root, name, "stop") == 0 && vmctl_wait_off(root, name, 10000)) {
		if (!quiet)
			printf("VM %s is Off (turned off)\n", name);
		return 0;
	}
	vmctl_state(root, name, &st);
	if (vmctl_is_off(&st)) {
		if (!quiet)
			printf("VM %s is Off\n", name);
		return 0;
	}
	/* Last resort: the VMM does not answer or does not end. */
	if (st.pid > 1 && kill(st.pid, SIGKILL) == 0 && vmctl_wait_off(root, name, 5000)) {
		if (!quiet)
			printf("VM %s is Off (its VMM, pid %d, was killed)\n", name, st.pid);
		return 0;
	}
	cli_error("%s: VM %s could not be stopped (VMM pid %d): %s", cmd, name, st.pid, strerror(errno));
	return 1;
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

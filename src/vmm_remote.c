/* A stored VM's VMM seen from another process: its state, derived from its
 * run lock, its records and its control API; calls into that API; waiting
 * for it to end. */
#include "vmm.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A "key = value" of a small record file. */
static void vmm_record(const char *text, const char *key, char *out, size_t len)
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

/* The records a VMM leaves are short: a longer one is not its. */
#define VMM_RECORD_MAX 4096

/* The pid in the VM's pid file; -EINVAL when it holds anything but one. */
static int vmm_read_pid(const char *root, const char *name, int *pid)
{
	char *text, why[STORE_PATH_MAX + 300];
	size_t len;
	int r;

	*pid = 0;
	r = store_read(root, name, STORE_PID, 32, &text, &len, why, sizeof(why));
	if (r < 0)
		return r;
	r = store_parse_pid(text, len, pid);
	free(text);
	return r;
}

/* Why an Off VM's last VMM ended: its exit record, else its pid file. */
static void vmm_last_exit(const char *root, const char *name, struct vmm_state *st)
{
	char *text, why[STORE_PATH_MAX + 300];
	size_t len;
	int pid;

	if (store_read(root, name, STORE_EXIT, VMM_RECORD_MAX, &text, &len, why, sizeof(why)) == 0) {
		char reason[128], detail[1024], when[32];
		time_t t;

		vmm_record(text, "reason", reason, sizeof(reason));
		vmm_record(text, "detail", detail, sizeof(detail));
		vmm_record(text, "time", when, sizeof(when));
		t = (time_t)strtoll(when, NULL, 10);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
		snprintf(st->last_exit, sizeof(st->last_exit), "%s%s%s (%s)", reason, detail[0] ? ": " : "", detail,
			 when);
		free(text);
	} else if (vmm_read_pid(root, name, &pid) == 0) {
		snprintf(st->last_exit, sizeof(st->last_exit),
			 "the VMM (pid %d) ended without an exit record: it was killed or crashed; see %s",
			 pid, STORE_CONSOLE_LOG);
	}
}

void vmm_state(const char *root, const char *name, struct vmm_state *st)
{
	char path[STORE_PATH_MAX + 128];
	struct api_object *reply;

	memset(st, 0, sizeof(*st));
	if (!store_vmm_alive(root, name)) {
		bool saved = store_path(path, sizeof(path), root, name, STORE_SAVED) == 0 && access(path, F_OK) == 0;

		snprintf(st->state, sizeof(st->state), saved ? "Saved" : "Off");
		vmm_last_exit(root, name, st);
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
	if (!st->pid)
		(void)!vmm_read_pid(root, name, &st->pid);
}

bool vmm_state_is_off(const struct vmm_state *st)
{
	return !strcmp(st->state, "Off");
}

bool vmm_state_is_saved(const struct vmm_state *st)
{
	return !strcmp(st->state, "Saved");
}

bool vmm_wait_off(const char *root, const char *name, int timeout_ms)
{
	for (int waited = 0;; waited += 100) {
		if (!store_vmm_alive(root, name))
			return true;
		if (waited >= timeout_ms)
			return false;
		nanosleep(&(struct timespec){ 0, 100 * 1000000 }, NULL);
	}
}

static int vmm_call_any(const char *root, const char *name, const char *cmd, const struct api_request *req,
			struct api_object *reply, int timeout_ms)
{
	char path[STORE_PATH_MAX + 128];
	const struct api_member *ok;
	int r;

	r = store_path(path, sizeof(path), root, name, STORE_API_SOCK);
	if (r == 0)
		r = req ? api_call_request(path, req, reply, timeout_ms) : api_call(path, cmd, reply, timeout_ms);
	if (r < 0)
		return r;
	ok = api_get(reply, "ok");
	return ok && ok->type == API_BOOL && ok->b ? 0 : -EPROTO;
}

int vmm_call(const char *root, const char *name, const char *cmd, struct api_object *reply, int timeout_ms)
{
	return vmm_call_any(root, name, cmd, NULL, reply, timeout_ms);
}

int vmm_call_request(const char *root, const char *name, const struct api_request *req,
		     struct api_object *reply, int timeout_ms)
{
	return vmm_call_any(root, name, NULL, req, reply, timeout_ms);
}

int vmm_console_connect(const char *root, const char *name)
{
	char path[STORE_PATH_MAX + 128];

	if (store_path(path, sizeof(path), root, name, STORE_CONSOLE_SOCK) < 0)
		return -ENAMETOOLONG;
	return util_unix_connect(path, SOCK_STREAM);
}

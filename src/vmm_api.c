/* nestvm's control API, a front end over the VMM: each request is one
 * call into it, each reply the VMM's status. */
#include "vmm.h"

#include <errno.h>

/* The reply: the VMM as it stands; dynamic memory's figures only with it. */
static void vmm_api_status(struct vmm *v, struct json *j)
{
	struct vmm_status st;
	char sandbox[256];

	vmm_status(v, &st);
	json_kv_bool(j, "ok", true);
	if (st.name)
		json_kv_string(j, "name", st.name);
	json_kv_string(j, "state", st.state);
	json_kv_int(j, "pid", st.pid);
	json_kv_uint(j, "uptimeSeconds", st.uptime_s);
	sandbox_describe(&st.sandbox, sandbox, sizeof(sandbox));
	json_kv_string(j, "sandbox", sandbox);
	json_kv_bool(j, "sandboxSeccomp", st.sandbox.seccomp);
	if (st.migration.state) {
		json_kv_string(j, "migrationState", st.migration.state);
		json_kv_uint(j, "migrationRound", st.migration.round);
		json_kv_uint(j, "migrationSentBytes", st.migration.sent);
		json_kv_uint(j, "migrationMemoryBytes", st.migration.memory);
		json_kv_uint(j, "migrationDiskBytes", st.migration.disk);
		json_kv_uint(j, "migrationDirtyBytes", st.migration.dirty);
		json_kv_uint(j, "migrationRate", st.migration.rate);
		json_kv_uint(j, "migrationDirtyRate", st.migration.dirty_rate);
		if (st.migration.error[0])
			json_kv_string(j, "migrationError", st.migration.error);
	}
	if (st.have_memory) {
		json_kv_uint(j, "memoryAssignedBytes", st.memory.assigned);
		json_kv_uint(j, "memoryTargetBytes", st.memory.target);
		if (st.memory.stats.has_avail)
			json_kv_uint(j, "memoryAvailableBytes", st.memory.stats.avail);
	}
}

/* Saves the VM; the reply says what was written, or why nothing was. */
static void vmm_api_save(struct vmm *v, const struct api_request *req, struct json *j)
{
	struct vmm_save_info info;
	char err[1200];

	int r = req->cmd == API_CHECKPOINT ? vmm_checkpoint(v, req->path, &info, err, sizeof(err)) :
		vmm_save(v, req->path[0] ? req->path : NULL, req->keep_running, &info, err, sizeof(err));

	if (r < 0) {
		json_kv_bool(j, "ok", false);
		json_kv_string(j, "error", err);
		return;
	}
	vmm_api_status(v, j);
	json_kv_uint(j, "savedBytes", info.bytes);
	json_kv_uint(j, "savedMemoryBytes", info.memory_bytes);
	json_kv_uint(j, "saveMillis", info.ns / 1000000);
}

void vmm_api_handler(void *opaque, const struct api_request *req, struct json *j)
{
	struct vmm *v = opaque;
	uint64_t applied;
	int r = 0;

	switch (req->cmd) {
	case API_MIGRATE: {
		char err[600];

		if (vmm_migrate(v, req->path, err, sizeof(err)) < 0) {
			json_kv_bool(j, "ok", false);
			json_kv_string(j, "error", err);
			return;
		}
		break;
	}
	case API_SAVE:
	case API_CHECKPOINT:
		vmm_api_save(v, req, j);
		return;
	case API_PAUSE:
		r = vmm_pause(v);
		break;
	case API_RESUME:
		r = vmm_resume(v);
		break;
	case API_POWERBUTTON:
		r = vmm_power_button(v);
		break;
	case API_STOP:
		vmm_stop(v, "stopped through the control API");
		break;
	case API_SETMEMORY:
		r = vmm_set_memory(v, req->bytes, &applied);
		break;
	case API_STATUS:
		break;
	}
	if (r < 0) {
		json_kv_bool(j, "ok", false);
		json_kv_string(j, "error", r == -ENOTSUP ?
			       "the VM does not have dynamic memory (nestvm vm set NAME --dynamic-memory on, or nestvm "
			       "run --dynamic-memory)" : "the VM is between reboots; try again");
		return;
	}
	vmm_api_status(v, j);
}

/* The Firecracker API's resources over the VMM: the microVM being
 * configured (machine, boot source, drives, network interfaces, vsock,
 * entropy, logger, metrics), each request checked against Firecracker's
 * field names and types with jansson, answered with its status codes and
 * {"fault_message": ...}; InstanceStart turns the configuration into a
 * struct vmconfig and boots it, or /snapshot/load resumes a saved state into
 * it; after that, pause, resume, Ctrl-Alt-Del, a drive's backing file
 * swapped and /snapshot/create go to the running VMM. nestvm's addition is
 * one field of /machine-config, "nested_virtualization". */
#include "fc.h"
#include "fc_body.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FC_DEFAULT_BOOT_ARGS \
	"reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"
#define FC_MAX_VCPUS            32
#define FC_DEFAULT_MEM_MIB      128
#define FC_ERR_AFTER_START      "The requested operation is not supported after starting the microVM."
#define FC_ERR_BEFORE_START     "The requested operation is not supported before starting the microVM."

struct fc_drive {
	char id[FC_ID_MAX + 1];
	char path[VMCONFIG_PATH_MAX];
	char partuuid[64];
	bool root, read_only;
	unsigned int disk;              /* its index among the VM's disks, once started */
};

struct fc_iface {
	char id[FC_ID_MAX + 1];
	char tap[VMCONFIG_TAP_MAX];
	uint8_t mac[6];
};

struct fc {
	pthread_mutex_t lock;
	struct fc_options opt;
	char id[FC_ID_MAX + 1];

	/* machine-config */
	bool machine_set;
	unsigned int vcpus;
	uint64_t mem_mib;
	bool smt, track_dirty, nested;
	/* boot-source */
	bool have_boot, have_boot_args;
	char kernel[VMCONFIG_PATH_MAX], initrd[VMCONFIG_PATH_MAX], boot_args[VMCONFIG_CMDLINE_MAX];
	struct fc_drive drives[VMCONFIG_MAX_DISKS];
	unsigned int ndrives;
	struct fc_iface ifaces[VMCONFIG_MAX_NICS];
	unsigned int nifaces;
	bool have_vsock, entropy;
	uint64_t vsock_cid;
	char vsock_uds[VMCONFIG_PATH_MAX];
	int log_fd, metrics_fd;
	char log_path[VMCONFIG_PATH_MAX], metrics_path[VMCONFIG_PATH_MAX], log_level[16];

	bool started;
	struct vmm *vmm;
	struct vmconfig cfg;            /* what was started */
	uint64_t requests, failures, started_ns;
};

/* ---- answers ---- */

static void fc_answer_json(struct fc_response *resp, int status, struct json *j)
{
	resp->status = status;
	resp->body = json_finish(j) == 0 ? strdup(json_buf(j)) : NULL;
	if (!resp->body)
		resp->status = 500;
	json_free(j);
}

__attribute__((format(printf, 3, 4)))
static int fc_fail(struct fc_response *resp, int status, const char *fmt, ...)
{
	char msg[1200];
	struct json j;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_init(&j, NULL, false);
	json_object_begin(&j);
	json_kv_string(&j, "fault_message", msg);
	json_object_end(&j);
	fc_answer_json(resp, status, &j);
	return -1;
}

static int fc_ok(struct fc_response *resp)
{
	resp->status = 204;
	resp->body = NULL;
	return 0;
}

/* ---- the logger ---- */

__attribute__((format(printf, 3, 4)))
static void fc_log(struct fc *fc, const char *level, const char *fmt, ...)
{
	char line[1400];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (fc->log_fd < 0 || !strcasecmp(fc->log_level, "Off"))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%09ld [%s:%s] ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec, fc->id, level);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = MIN(n, (int)sizeof(line) - 2);
	line[n++] = '\n';
	(void)!write(fc->log_fd, line, (size_t)n);
}

/* ---- reading bodies ---- */

static int fc_check(const struct fc_body *b, const struct fc_field *f, struct fc_response *resp)
{
	char err[700];

	if (fc_body_check(b, f, err, sizeof(err)) < 0)
		return fc_fail(resp, 400, "%s", err);
	return 0;
}

/* A string member into buf (cap bytes, NUL included); absent: untouched. */
static int fc_copy(const struct fc_body *o, const char *key, char *buf, size_t cap, struct fc_response *resp)
{
	const char *s = fc_body_str(o, key);

	if (!s)
		return 0;
	if (strlen(s) >= cap)
		return fc_fail(resp, 400, "`%s` is longer than %zu characters.", key, cap - 1);
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

/* A rate limiter nestvm does not enforce: only an empty one is taken. */
static int fc_no_limiter(const struct fc_body *o, const char *key, struct fc_response *resp)
{
	if (fc_body_empty(o, key))
		return 0;
	return fc_fail(resp, 400, "`%s`: rate limiters are not supported by nestvm; leave it out.", key);
}

static bool fc_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (!n || n > FC_ID_MAX)
		return false;
	for (const char *c = id; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '_' || *c == '-'))
			return false;
	return true;
}

static int fc_check_file(const char *what, const char *path, bool write, struct fc_response *resp)
{
	struct stat st;
	int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);

	if (fd < 0)
		return fc_fail(resp, 400, "%s '%s' cannot be opened: %s.", what, path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fc_fail(resp, 400, "%s '%s' is not a regular file.", what, path);
	}
	close(fd);
	return 0;
}

/* How many virtio devices the configuration has, against the windows there are. */
static int fc_check_room(unsigned int drives, unsigned int ifaces, bool vsock, bool rng, struct fc_response *resp)
{
	char err[256];

	if (vmconfig_check_devices(drives, ifaces, rng, false, vsock, err, sizeof(err)) < 0)
		return fc_fail(resp, 400, "Too many devices: %s (nestvm has %d virtio-mmio windows).", err,
			       VMCONFIG_MAX_DEVICES);
	return 0;
}

/* ---- the resources ---- */

static int fc_put_machine(struct fc *fc, const struct fc_body *b, bool patch, struct fc_response *resp)
{
	static const struct fc_field put[] = {
		{ "vcpu_count", FC_T_UINT, true }, { "mem_size_mib", FC_T_UINT, true }, { "smt", FC_T_BOOL, false },
		{ "track_dirty_pages", FC_T_BOOL, false }, { "cpu_template", FC_T_STR, false },
		{ "huge_pages", FC_T_STR, false }, { "nested_virtualization", FC_T_BOOL, false }, { 0 },
	};
	static const struct fc_field opt[] = {
		{ "vcpu_count", FC_T_UINT, false }, { "mem_size_mib", FC_T_UINT, false }, { "smt", FC_T_BOOL, false },
		{ "track_dirty_pages", FC_T_BOOL, false }, { "cpu_template", FC_T_STR, false },
		{ "huge_pages", FC_T_STR, false }, { "nested_virtualization", FC_T_BOOL, false }, { 0 },
	};
	uint64_t vcpus = fc->vcpus, mib = fc->mem_mib;
	bool smt = patch ? fc->smt : false, dirty = patch ? fc->track_dirty : false;
	bool nested = patch ? fc->nested : fc->opt.nested;
	const char *s;

	if (fc_check(b, patch ? opt : put, resp) < 0)
		return -1;
	if (fc_body_has(b, "vcpu_count"))
		vcpus = fc_body_uint(b, "vcpu_count");
	if (fc_body_has(b, "mem_size_mib"))
		mib = fc_body_uint(b, "mem_size_mib");
	if (fc_body_has(b, "smt"))
		smt = fc_body_bool(b, "smt");
	if (fc_body_has(b, "track_dirty_pages"))
		dirty = fc_body_bool(b, "track_dirty_pages");
	if (fc_body_has(b, "nested_virtualization"))
		nested = fc_body_bool(b, "nested_virtualization");
	if ((s = fc_body_str(b, "cpu_template")) && strcmp(s, "None"))
		return fc_fail(resp, 400, "CPU template '%.32s' is not supported by nestvm: only \"None\".", s);
	if ((s = fc_body_str(b, "huge_pages")) && strcmp(s, "None"))
		return fc_fail(resp, 400, "huge_pages '%.32s' is not supported by nestvm: only \"None\" (guest "
			       "memory is 2 MiB aligned for transparent huge pages anyway).", s);
	if (vcpus < 1 || vcpus > FC_MAX_VCPUS)
		return fc_fail(resp, 400, "The vCPU number is invalid! The vCPU number can only be 1 or an even "
			       "number when SMT is enabled, and at most %d.", FC_MAX_VCPUS);
	if (smt && vcpus > 1 && vcpus % 2)
		return fc_fail(resp, 400, "The vCPU number is invalid! The vCPU number can only be 1 or an even "
			       "number when SMT is enabled.");
	if (mib < 1 || mib > (VMCONFIG_MAX_MEMORY >> 20) || vmconfig_check_memory(mib << 20) < 0)
		return fc_fail(resp, 400, "The memory size (MiB) is invalid: nestvm takes %llu to %llu MiB.",
			       VMCONFIG_MIN_MEMORY >> 20, VMCONFIG_MAX_MEMORY >> 20);
	fc->vcpus = (unsigned int)vcpus;
	fc->mem_mib = mib;
	fc->smt = smt;
	fc->track_dirty = dirty;
	fc->nested = nested;
	fc->machine_set = true;
	return fc_ok(resp);
}

static void fc_machine_json(struct fc *fc, struct json *j)
{
	json_object_begin(j);
	json_kv_uint(j, "vcpu_count", fc->vcpus);
	json_kv_uint(j, "mem_size_mib", fc->mem_mib);
	json_kv_bool(j, "smt", fc->smt);
	json_kv_bool(j, "track_dirty_pages", fc->track_dirty);
	json_kv_string(j, "huge_pages", "None");
	json_kv_bool(j, "nested_virtualization", fc->nested);
	json_object_end(j);
}

static int fc_put_boot(struct fc *fc, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = {
		{ "kernel_image_path", FC_T_STR, true }, { "initrd_path", FC_T_STR, false }, { "boot_args", FC_T_STR, false },
		{ 0 },
	};
	char kernel[VMCONFIG_PATH_MAX] = "", initrd[VMCONFIG_PATH_MAX] = "", args[VMCONFIG_CMDLINE_MAX] = "";

	if (fc_check(b, f, resp) < 0 || fc_copy(b, "kernel_image_path", kernel, sizeof(kernel), resp) < 0 ||
	    fc_copy(b, "initrd_path", initrd, sizeof(initrd), resp) < 0 ||
	    fc_copy(b, "boot_args", args, sizeof(args) - 128, resp) < 0)
		return -1;
	if (strchr(args, '\n'))
		return fc_fail(resp, 400, "`boot_args` must be one line.");
	if (fc_check_file("The kernel file", kernel, false, resp) < 0 ||
	    (initrd[0] && fc_check_file("The initrd file", initrd, false, resp) < 0))
		return -1;
	memcpy(fc->kernel, kernel, sizeof(kernel));
	memcpy(fc->initrd, initrd, sizeof(initrd));
	fc->have_boot_args = fc_body_has(b, "boot_args");
	memcpy(fc->boot_args, args, sizeof(args));
	fc->have_boot = true;
	return fc_ok(resp);
}

static struct fc_drive *fc_find_drive(struct fc *fc, const char *id)
{
	for (unsigned int i = 0; i < fc->ndrives; i++)
		if (!strcmp(fc->drives[i].id, id))
			return &fc->drives[i];
	return NULL;
}

/* The body's id must be the path's. */
static int fc_same_id(const struct fc_body *b, const char *key, const char *id, struct fc_response *resp)
{
	const char *s = fc_body_str(b, key);

	if (!s || strcmp(s, id))
		return fc_fail(resp, 400, "The id from the path does not match the id from the body!");
	return 0;
}

static int fc_put_drive(struct fc *fc, const char *id, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = {
		{ "drive_id", FC_T_STR, true }, { "path_on_host", FC_T_STR, true }, { "is_root_device", FC_T_BOOL, true },
		{ "is_read_only", FC_T_BOOL, false }, { "partuuid", FC_T_STR, false }, { "cache_type", FC_T_STR, false },
		{ "io_engine", FC_T_STR, false }, { "rate_limiter", FC_T_OBJ, false }, { "socket", FC_T_STR, false }, { 0 },
	};
	struct fc_drive d = { 0 }, *old = fc_find_drive(fc, id);
	const char *s;

	if (fc_check(b, f, resp) < 0 || fc_same_id(b, "drive_id", id, resp) < 0 ||
	    fc_no_limiter(b, "rate_limiter", resp) < 0)
		return -1;
	if (fc_body_has(b, "socket"))
		return fc_fail(resp, 400, "vhost-user block devices (`socket`) are not supported by nestvm.");
	if ((s = fc_body_str(b, "cache_type")) && strcmp(s, "Unsafe") && strcmp(s, "Writeback"))
		return fc_fail(resp, 400, FC_BODY_ERR "unknown variant `%.32s`, expected `Unsafe` or `Writeback`.", s);
	if ((s = fc_body_str(b, "io_engine")) && strcmp(s, "Sync") && strcmp(s, "Async"))
		return fc_fail(resp, 400, FC_BODY_ERR "unknown variant `%.32s`, expected `Sync` or `Async`.", s);
	snprintf(d.id, sizeof(d.id), "%s", id);
	if (fc_copy(b, "path_on_host", d.path, sizeof(d.path), resp) < 0 ||
	    fc_copy(b, "partuuid", d.partuuid, sizeof(d.partuuid), resp) < 0)
		return -1;
	d.root = fc_body_bool(b, "is_root_device");
	d.read_only = fc_body_bool(b, "is_read_only");
	for (unsigned int i = 0; i < fc->ndrives; i++)
		if (d.root && fc->drives[i].root && &fc->drives[i] != old)
			return fc_fail(resp, 400, "A root block device already exists!");
	if (!old && fc_check_room(fc->ndrives + 1, fc->nifaces, fc->have_vsock, fc->entropy, resp) < 0)
		return -1;
	if (fc_check_file("The block device backing file", d.path, !d.read_only, resp) < 0)
		return -1;
	if (!old)
		old = &fc->drives[fc->ndrives++];
	*old = d;
	return fc_ok(resp);
}

static int fc_patch_drive(struct fc *fc, const char *id, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = {
		{ "drive_id", FC_T_STR, true }, { "path_on_host", FC_T_STR, false }, { "rate_limiter", FC_T_OBJ, false }, { 0 },
	};
	struct fc_drive *d = fc_find_drive(fc, id);
	char path[VMCONFIG_PATH_MAX] = "", err[1200];

	if (fc_check(b, f, resp) < 0 || fc_same_id(b, "drive_id", id, resp) < 0 ||
	    fc_no_limiter(b, "rate_limiter", resp) < 0 || fc_copy(b, "path_on_host", path, sizeof(path), resp) < 0)
		return -1;
	if (!d)
		return fc_fail(resp, 400, "Invalid block device ID: no drive '%s'.", id);
	if (!path[0])
		return fc_ok(resp);
	if (vmm_swap_disk(fc->vmm, d->disk, path, err, sizeof(err)) < 0)
		return fc_fail(resp, 400, "Unable to patch the block device: %s.", err);
	memcpy(d->path, path, sizeof(path));
	fc_log(fc, "Info", "drive %s: backing file now %s", id, path);
	return fc_ok(resp);
}

static int fc_put_iface(struct fc *fc, const char *id, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = {
		{ "iface_id", FC_T_STR, true }, { "host_dev_name", FC_T_STR, true }, { "guest_mac", FC_T_STR, false },
		{ "rx_rate_limiter", FC_T_OBJ, false }, { "tx_rate_limiter", FC_T_OBJ, false }, { 0 },
	};
	struct fc_iface n = { 0 }, *old = NULL;
	const char *mac;

	if (fc_check(b, f, resp) < 0 || fc_same_id(b, "iface_id", id, resp) < 0 ||
	    fc_no_limiter(b, "rx_rate_limiter", resp) < 0 || fc_no_limiter(b, "tx_rate_limiter", resp) < 0)
		return -1;
	snprintf(n.id, sizeof(n.id), "%s", id);
	if (fc_copy(b, "host_dev_name", n.tap, sizeof(n.tap), resp) < 0)
		return -1;
	if (!n.tap[0])
		return fc_fail(resp, 400, "`host_dev_name` must name a TAP device.");
	if ((mac = fc_body_str(b, "guest_mac"))) {
		if (vmconfig_parse_mac(mac, n.mac) < 0)
			return fc_fail(resp, 400, "`guest_mac` '%.32s' is not a unicast MAC address (xx:xx:xx:xx:xx:xx).",
				       mac);
	} else {
		vmconfig_random_mac(n.mac);
	}
	for (unsigned int i = 0; i < fc->nifaces; i++) {
		if (!strcmp(fc->ifaces[i].id, id))
			old = &fc->ifaces[i];
		else if (!strcmp(fc->ifaces[i].tap, n.tap))
			return fc_fail(resp, 400, "The host device name %s is already in use.", n.tap);
		else if (!memcmp(fc->ifaces[i].mac, n.mac, 6))
			return fc_fail(resp, 400, "The MAC address is already in use: %.32s.", mac ? mac : "");
	}
	if (!old && fc_check_room(fc->ndrives, fc->nifaces + 1, fc->have_vsock, fc->entropy, resp) < 0)
		return -1;
	if (!old)
		old = &fc->ifaces[fc->nifaces++];
	*old = n;
	return fc_ok(resp);
}

static int fc_put_vsock(struct fc *fc, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = {
		{ "guest_cid", FC_T_UINT, true }, { "uds_path", FC_T_STR, true }, { "vsock_id", FC_T_STR, false }, { 0 },
	};
	char uds[VMCONFIG_PATH_MAX] = "", err[256];
	uint64_t cid;

	if (fc_check(b, f, resp) < 0 || fc_copy(b, "uds_path", uds, sizeof(uds), resp) < 0)
		return -1;
	cid = fc_body_uint(b, "guest_cid");
	if (vmconfig_check_vsock(cid, uds, err, sizeof(err)) < 0)
		return fc_fail(resp, 400, "Invalid vsock configuration: %s.", err);
	if (!fc->have_vsock && fc_check_room(fc->ndrives, fc->nifaces, true, fc->entropy, resp) < 0)
		return -1;
	fc->vsock_cid = cid;
	memcpy(fc->vsock_uds, uds, sizeof(uds));
	fc->have_vsock = true;
	return fc_ok(resp);
}

static int fc_put_entropy(struct fc *fc, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = { { "rate_limiter", FC_T_OBJ, false }, { 0 } };

	if (fc_check(b, f, resp) < 0 || fc_no_limiter(b, "rate_limiter", resp) < 0)
		return -1;
	if (!fc->entropy && fc_check_room(fc->ndrives, fc->nifaces, fc->have_vsock, true, resp) < 0)
		return -1;
	fc->entropy = true;
	return fc_ok(resp);
}

/* A log or metrics file: a file or a named pipe, appended to. */
static int fc_open_sink(const char *what, const char *path, int *fd, struct fc_response *resp)
{
	int nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);

	if (nfd < 0)
		return fc_fail(resp, 400, "%s '%s' cannot be opened: %s.", what, path, strerror(errno));
	if (*fd >= 0)
		close(*fd);
	*fd = nfd;
	return 0;
}

static int fc_put_logger(struct fc *fc, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = {
		{ "log_path", FC_T_STR, false }, { "level", FC_T_STR, false }, { "show_level", FC_T_BOOL, false },
		{ "show_log_origin", FC_T_BOOL, false }, { "module", FC_T_STR, false }, { 0 },
	};
	static const char *const levels[] = { "Error", "Warning", "Info", "Debug", "Trace", "Off" };
	char path[VMCONFIG_PATH_MAX] = "";
	const char *level = fc_body_str(b, "level");
	size_t i;

	if (fc_check(b, f, resp) < 0 || fc_copy(b, "log_path", path, sizeof(path), resp) < 0)
		return -1;
	if (level) {
		for (i = 0; i < ARRAY_SIZE(levels) && strcasecmp(level, levels[i]); i++)
			;
		if (i == ARRAY_SIZE(levels))
			return fc_fail(resp, 400, "Invalid log level: %.32s (Error, Warning, Info, Debug, Trace, Off).",
				       level);
		snprintf(fc->log_level, sizeof(fc->log_level), "%s", levels[i]);
	}
	if (path[0]) {
		if (fc_open_sink("The log file", path, &fc->log_fd, resp) < 0)
			return -1;
		memcpy(fc->log_path, path, sizeof(path));
	}
	fc_log(fc, "Info", "Running nestvm as Firecracker v%s", FC_API_VERSION);
	return fc_ok(resp);
}

static int fc_put_metrics(struct fc *fc, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = { { "metrics_path", FC_T_STR, true }, { 0 } };
	char path[VMCONFIG_PATH_MAX] = "";

	if (fc_check(b, f, resp) < 0 || fc_copy(b, "metrics_path", path, sizeof(path), resp) < 0 ||
	    fc_open_sink("The metrics file", path, &fc->metrics_fd, resp) < 0)
		return -1;
	memcpy(fc->metrics_path, path, sizeof(path));
	return fc_ok(resp);
}

static int fc_flush_metrics(struct fc *fc, struct fc_response *resp)
{
	struct timespec ts;
	struct json j;
	int r;

	if (fc->metrics_fd < 0)
		return fc_fail(resp, 400, "The metrics system is not initialized: PUT /metrics first.");
	clock_gettime(CLOCK_REALTIME, &ts);
	json_init(&j, NULL, false);
	json_object_begin(&j);
	json_kv_uint(&j, "utc_timestamp_ms", (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
	json_key(&j, "api_server");
	json_object_begin(&j);
	json_kv_uint(&j, "requests", fc->requests);
	json_kv_uint(&j, "failed_requests", fc->failures);
	json_object_end(&j);
	json_key(&j, "vmm");
	json_object_begin(&j);
	json_kv_string(&j, "state", !fc->started ? "Not started" : "Running");
	json_kv_uint(&j, "uptime_ms", fc->started ? (util_now_ns() - fc->started_ns) / 1000000 : 0);
	json_object_end(&j);
	json_object_end(&j);
	r = json_finish(&j);
	if (r == 0) {
		char *line = malloc(j.len + 2);

		if (line) {
			memcpy(line, json_buf(&j), j.len);
			line[j.len] = '\n';
			r = util_write_all(fc->metrics_fd, line, j.len + 1);
			free(line);
		} else {
			r = -ENOMEM;
		}
	}
	json_free(&j);
	if (r < 0)
		return fc_fail(resp, 400, "Cannot flush the metrics: %s.", strerror(-r));
	return fc_ok(resp);
}

/* ---- starting ---- */

/* The configuration as nestvm's: the root drive first (vda), as
 * Firecracker orders them, and root= on the command line for it. */
static int fc_build_config(struct fc *fc, struct vmconfig *c, struct fc_response *resp)
{
	const char *args = fc->have_boot_args ? fc->boot_args : FC_DEFAULT_BOOT_ARGS;
	unsigned int n = 0;
	size_t len;

	vmconfig_init(c, NULL);
	c->memory = fc->mem_mib << 20;
	c->cpus = fc->vcpus;
	c->expose_virt = fc->nested;
	c->no_rng = !fc->entropy;
	snprintf(c->kernel, sizeof(c->kernel), "%s", fc->kernel);
	snprintf(c->initrd, sizeof(c->initrd), "%s", fc->initrd);
	snprintf(c->cmdline, sizeof(c->cmdline), "%s", args);
	for (int pass = 0; pass < 2; pass++)
		for (unsigned int i = 0; i < fc->ndrives; i++) {
			struct fc_drive *d = &fc->drives[i];

			if (d->root != (pass == 0))
				continue;
			d->disk = n;
			snprintf(c->disks[n].path, sizeof(c->disks[n].path), "%s", d->path);
			c->disks[n++].read_only = d->read_only;
			if (!d->root)
				continue;
			len = strlen(c->cmdline);
			if (d->partuuid[0])
				snprintf(c->cmdline + len, sizeof(c->cmdline) - len, " root=PARTUUID=%s %s", d->partuuid,
					 d->read_only ? "ro" : "rw");
			else
				snprintf(c->cmdline + len, sizeof(c->cmdline) - len, " root=/dev/vda %s",
					 d->read_only ? "ro" : "rw");
		}
	c->ndisks = n;
	for (unsigned int i = 0; i < fc->nifaces; i++) {
		struct vmconfig_nic *nic = &c->nics[i];

		memset(nic, 0, sizeof(*nic));
		snprintf(nic->tap, sizeof(nic->tap), "%s", fc->ifaces[i].tap);
		memcpy(nic->mac, fc->ifaces[i].mac, 6);
		nic->mac_spoofing = true;       /* Firecracker filters no source address */
	}
	c->nnics = fc->nifaces;
	if (fc->have_vsock) {
		c->vsock_cid = fc->vsock_cid;
		snprintf(c->vsock_uds, sizeof(c->vsock_uds), "%s", fc->vsock_uds);
	}
	if (strlen(c->cmdline) >= sizeof(c->cmdline) - 1)
		return fc_fail(resp, 400, "The kernel command line is too long.");
	return 0;
}

/* The configuration built and run: booted, or with restore the saved state
 * at that path resumed into it (paused unless resume). */
static int fc_launch(struct fc *fc, const char *restore, bool resume, struct fc_response *resp)
{
	struct vmm_options o = fc->opt.vmm;
	const char *what = restore ? "Load snapshot error" : "Start microvm error";
	char err[1400];
	struct vmm *v = NULL;
	int r;

	if (fc_build_config(fc, &fc->cfg, resp) < 0)
		return -1;
	o.start_paused = restore && !resume;
	r = restore ? vmm_create_restored(&v, restore, &fc->cfg, &o, err, sizeof(err)) :
		      vmm_create(&v, &fc->cfg, &o, err, sizeof(err));
	if (r == 0)
		r = vmm_check_boot(v, err, sizeof(err));
	if (r == 0)
		r = vmm_start(v, err, sizeof(err));
	if (r == 0)
		r = vmm_boot(v, err, sizeof(err));
	if (r < 0) {
		vmm_destroy(v);
		fc_log(fc, "Error", "%s: %s", what, err);
		return fc_fail(resp, 400, "%s: %s", what, err);
	}
	fc->vmm = v;
	fc->started = true;
	fc->started_ns = util_now_ns();
	if (restore)
		fc_log(fc, "Info", "Loaded the microVM snapshot %s (%s)", restore, resume ? "resumed" : "paused");
	else
		fc_log(fc, "Info", "Successfully started microvm that was configured from one single json");
	return fc_ok(resp);
}

static int fc_start(struct fc *fc, struct fc_response *resp)
{
	if (!fc->have_boot)
		return fc_fail(resp, 400, "Cannot start microvm without kernel configuration: PUT /boot-source first.");
	return fc_launch(fc, NULL, true, resp);
}

static int fc_put_action(struct fc *fc, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = { { "action_type", FC_T_STR, true }, { 0 } };
	const char *a;

	if (fc_check(b, f, resp) < 0)
		return -1;
	a = fc_body_str(b, "action_type");
	if (!strcmp(a, "InstanceStart")) {
		if (fc->started)
			return fc_fail(resp, 400, FC_ERR_AFTER_START);
		return fc_start(fc, resp);
	}
	if (!strcmp(a, "SendCtrlAltDel")) {
		if (!fc->started)
			return fc_fail(resp, 400, FC_ERR_BEFORE_START);
		if (vmm_ctrl_alt_del(fc->vmm) < 0)
			return fc_fail(resp, 400, "The guest is between two machines (rebooting): try again.");
		return fc_ok(resp);
	}
	if (!strcmp(a, "FlushMetrics"))
		return fc_flush_metrics(fc, resp);
	return fc_fail(resp, 400, FC_BODY_ERR "unknown variant `%.32s`, expected one of `FlushMetrics`, "
		       "`InstanceStart`, `SendCtrlAltDel`.", a);
}

static int fc_patch_vm(struct fc *fc, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = { { "state", FC_T_STR, true }, { 0 } };
	const char *s;
	int r;

	if (fc_check(b, f, resp) < 0)
		return -1;
	s = fc_body_str(b, "state");
	if (strcmp(s, "Paused") && strcmp(s, "Resumed"))
		return fc_fail(resp, 400, FC_BODY_ERR "unknown variant `%.32s`, expected `Paused` or `Resumed`.", s);
	r = !strcmp(s, "Paused") ? vmm_pause(fc->vmm) : vmm_resume(fc->vmm);
	if (r < 0)
		return fc_fail(resp, 400, "The guest is between two machines (rebooting): try again.");
	fc_log(fc, "Info", "microVM %s", !strcmp(s, "Paused") ? "paused" : "resumed");
	return fc_ok(resp);
}

static const char *fc_state(struct fc *fc)
{
	struct vmm_status st;

	if (!fc->started)
		return "Not started";
	vmm_status(fc->vmm, &st);
	return !strcmp(st.state, "Paused") ? "Paused" : "Running";
}

static int fc_get_info(struct fc *fc, struct fc_response *resp)
{
	struct json j;

	json_init(&j, NULL, false);
	json_object_begin(&j);
	json_kv_string(&j, "id", fc->id);
	json_kv_string(&j, "state", fc_state(fc));
	json_kv_string(&j, "vmm_version", FC_API_VERSION);
	json_kv_string(&j, "app_name", FC_APP_NAME);
	json_object_end(&j);
	fc_answer_json(resp, 200, &j);
	return 0;
}

static int fc_get_version(struct fc_response *resp)
{
	struct json j;

	json_init(&j, NULL, false);
	json_object_begin(&j);
	json_kv_string(&j, "firecracker_version", FC_API_VERSION);
	json_object_end(&j);
	fc_answer_json(resp, 200, &j);
	return 0;
}

static int fc_get_machine(struct fc *fc, struct fc_response *resp)
{
	struct json j;

	json_init(&j, NULL, false);
	fc_machine_json(fc, &j);
	fc_answer_json(resp, 200, &j);
	return 0;
}

/* Everything configured, in --config-file's form: GET /vm/config's answer,
 * and the description a snapshot keeps of its microVM. */
static void fc_config_json(struct fc *fc, struct json *j)
{
	char mac[24];

	json_object_begin(j);
	json_key(j, "balloon");
	json_nil(j);
	json_key(j, "drives");
	json_array_begin(j);
	for (unsigned int i = 0; i < fc->ndrives; i++) {
		const struct fc_drive *d = &fc->drives[i];

		json_object_begin(j);
		json_kv_string(j, "drive_id", d->id);
		json_kv_string(j, "partuuid", d->partuuid[0] ? d->partuuid : NULL);
		json_kv_bool(j, "is_root_device", d->root);
		json_kv_string(j, "cache_type", "Unsafe");
		json_kv_bool(j, "is_read_only", d->read_only);
		json_kv_string(j, "path_on_host", d->path);
		json_kv_null(j, "rate_limiter");
		json_kv_string(j, "io_engine", "Sync");
		json_object_end(j);
	}
	json_array_end(j);
	json_key(j, "boot-source");
	if (fc->have_boot) {
		json_object_begin(j);
		json_kv_string(j, "kernel_image_path", fc->kernel);
		json_kv_string(j, "initrd_path", fc->initrd[0] ? fc->initrd : NULL);
		json_kv_string(j, "boot_args", fc->have_boot_args ? fc->boot_args : FC_DEFAULT_BOOT_ARGS);
		json_object_end(j);
	} else {
		json_nil(j);
	}
	json_key(j, "logger");
	if (fc->log_path[0]) {
		json_object_begin(j);
		json_kv_string(j, "log_path", fc->log_path);
		json_kv_string(j, "level", fc->log_level);
		json_object_end(j);
	} else {
		json_nil(j);
	}
	json_key(j, "machine-config");
	fc_machine_json(fc, j);
	json_key(j, "metrics");
	if (fc->metrics_path[0]) {
		json_object_begin(j);
		json_kv_string(j, "metrics_path", fc->metrics_path);
		json_object_end(j);
	} else {
		json_nil(j);
	}
	json_kv_null(j, "mmds-config");
	json_key(j, "network-interfaces");
	json_array_begin(j);
	for (unsigned int i = 0; i < fc->nifaces; i++) {
		json_object_begin(j);
		json_kv_string(j, "iface_id", fc->ifaces[i].id);
		json_kv_string(j, "host_dev_name", fc->ifaces[i].tap);
		json_kv_string(j, "guest_mac", vmconfig_fmt_mac(fc->ifaces[i].mac, mac, sizeof(mac)));
		json_kv_null(j, "rx_rate_limiter");
		json_kv_null(j, "tx_rate_limiter");
		json_object_end(j);
	}
	json_array_end(j);
	json_key(j, "vsock");
	if (fc->have_vsock) {
		json_object_begin(j);
		json_kv_uint(j, "guest_cid", fc->vsock_cid);
		json_kv_string(j, "uds_path", fc->vsock_uds);
		json_object_end(j);
	} else {
		json_nil(j);
	}
	json_key(j, "entropy");
	if (fc->entropy) {
		json_object_begin(j);
		json_kv_null(j, "rate_limiter");
		json_object_end(j);
	} else {
		json_nil(j);
	}
	json_object_end(j);
}

static int fc_get_config(struct fc *fc, struct fc_response *resp)
{
	struct json j;

	json_init(&j, NULL, false);
	fc_config_json(fc, &j);
	fc_answer_json(resp, 200, &j);
	return 0;
}

static int fc_apply_config(struct fc *fc, const struct fc_body *doc, bool locked, bool machine_only, char *err,
			   size_t errlen);

/* ---- snapshots ---- */

/* nestvm's saved state holds guest memory with the rest, so snapshot_path
 * gets the whole of it; mem_file_path gets the microVM's configuration
 * (GET /vm/config's document), which /snapshot/load needs to build the
 * machine again with its TAP devices, drives and vsock socket. */
static int fc_snapshot_create(struct fc *fc, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = {
		{ "snapshot_path", FC_T_STR, true }, { "mem_file_path", FC_T_STR, true },
		{ "snapshot_type", FC_T_STR, false }, { "version", FC_T_STR, false }, { 0 },
	};
	char path[VMCONFIG_PATH_MAX] = "", mem[VMCONFIG_PATH_MAX] = "", err[1200];
	struct vmm_save_info info;
	const char *type;
	struct json j;
	int fd, r;

	if (fc_check(b, f, resp) < 0 || fc_copy(b, "snapshot_path", path, sizeof(path), resp) < 0 ||
	    fc_copy(b, "mem_file_path", mem, sizeof(mem), resp) < 0)
		return -1;
	if ((type = fc_body_str(b, "snapshot_type")) && strcmp(type, "Full")) {
		if (strcmp(type, "Diff"))
			return fc_fail(resp, 400, FC_BODY_ERR "unknown variant `%.32s`, expected `Full` or `Diff`.",
				       type);
		return fc_fail(resp, 400, "Create snapshot error: Diff snapshots are not supported by nestvm: "
			       "take a Full one.");
	}
	if (!path[0] || !mem[0] || !strcmp(path, mem))
		return fc_fail(resp, 400, "Create snapshot error: `snapshot_path` and `mem_file_path` must be two "
			       "different files.");
	if (strcmp(fc_state(fc), "Paused"))
		return fc_fail(resp, 400, "Create snapshot error: the microVM must be paused first "
			       "(PATCH /vm {\"state\": \"Paused\"}).");
	json_init(&j, NULL, false);
	fc_config_json(fc, &j);
	r = json_finish(&j);
	if (r < 0) {
		json_free(&j);
		return fc_fail(resp, 500, "Create snapshot error: out of memory.");
	}
	fd = open(mem, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	r = fd < 0 ? -errno : util_write_all(fd, json_buf(&j), strlen(json_buf(&j)));
	if (fd >= 0 && r == 0 && fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	json_free(&j);
	if (r < 0)
		return fc_fail(resp, 400, "Create snapshot error: '%s': %s.", mem, strerror(-r));
	/* The VM stays paused, as Firecracker's does. */
	r = vmm_save(fc->vmm, path, true, &info, err, sizeof(err));
	if (r < 0)
		return fc_fail(resp, 400, "Create snapshot error: %s.", err);
	fc_log(fc, "Info", "Snapshot of the microVM in %s (%llu bytes, %llu of memory) in %llu ms", path,
	       (unsigned long long)info.bytes, (unsigned long long)info.memory_bytes,
	       (unsigned long long)(info.ns / 1000000));
	return fc_ok(resp);
}

/* Back to nothing configured, after a load that failed half-way. */
static void fc_forget_config(struct fc *fc)
{
	fc->machine_set = false;
	fc->vcpus = 1;
	fc->mem_mib = FC_DEFAULT_MEM_MIB;
	fc->smt = fc->track_dirty = false;
	fc->nested = fc->opt.nested;
	fc->have_boot = fc->have_boot_args = false;
	fc->ndrives = fc->nifaces = 0;
	fc->have_vsock = fc->entropy = false;
}

static int fc_snapshot_load(struct fc *fc, const struct fc_body *b, struct fc_response *resp)
{
	static const struct fc_field f[] = {
		{ "snapshot_path", FC_T_STR, true }, { "mem_file_path", FC_T_STR, false },
		{ "mem_backend", FC_T_OBJ, false }, { "enable_diff_snapshots", FC_T_BOOL, false },
		{ "track_dirty_pages", FC_T_BOOL, false }, { "resume_vm", FC_T_BOOL, false }, { 0 },
	};
	static const struct fc_field backend[] = {
		{ "backend_type", FC_T_STR, true }, { "backend_path", FC_T_STR, true }, { 0 },
	};
	char path[VMCONFIG_PATH_MAX] = "", mem[VMCONFIG_PATH_MAX] = "", err[1200];
	const struct fc_body *mb = fc_body_get(b, "mem_backend");
	struct fc_body *doc = NULL;
	uint8_t *text = NULL;
	struct stat st;
	size_t len = 0;
	int r;

	if (fc_check(b, f, resp) < 0 || fc_copy(b, "snapshot_path", path, sizeof(path), resp) < 0 ||
	    fc_copy(b, "mem_file_path", mem, sizeof(mem), resp) < 0)
		return -1;
	if (mb) {
		const char *type;

		if (fc_check(mb, backend, resp) < 0)
			return -1;
		if (mem[0])
			return fc_fail(resp, 400, "Load snapshot error: `mem_file_path` and `mem_backend` go one without "
				       "the other.");
		type = fc_body_str(mb, "backend_type");
		if (!strcmp(type, "Uffd"))
			return fc_fail(resp, 400, "Load snapshot error: the Uffd memory backend is not supported by "
				       "nestvm: use File.");
		if (strcmp(type, "File"))
			return fc_fail(resp, 400, FC_BODY_ERR "unknown variant `%.32s`, expected `File` or `Uffd`.",
				       type);
		if (fc_copy(mb, "backend_path", mem, sizeof(mem), resp) < 0)
			return -1;
	}
	if (!mem[0])
		return fc_fail(resp, 400, "Load snapshot error: `mem_file_path` or a File `mem_backend` is needed.");
	if (fc->machine_set || fc->have_boot || fc->ndrives || fc->nifaces || fc->have_vsock || fc->entropy)
		return fc_fail(resp, 400, "Loading a microVM snapshot not allowed after configuring boot-specific "
			       "resources.");
	/* A description is a few KiB: a bigger file is something else. */
	r = stat(mem, &st) < 0 ? -errno : st.st_size > FC_BODY_MAX * 4 ? -EFBIG : 0;
	if (r == 0)
		r = util_read_file(mem, &text, &len);
	if (r < 0) {
		free(text);
		return fc_fail(resp, 400, "Load snapshot error: '%s': %s.", mem, strerror(-r));
	}
	r = fc_body_parse((const char *)text, len, &doc, err, sizeof(err));
	free(text);
	if (r < 0)
		return fc_fail(resp, 400, "Load snapshot error: '%s' is not the description /snapshot/create wrote: "
			       "%s.", mem, err);
	r = fc_apply_config(fc, doc, true, true, err, sizeof(err));
	fc_body_free(doc);
	if (r < 0) {
		fc_forget_config(fc);
		return fc_fail(resp, 400, "Load snapshot error: the microVM described in '%s': %s.", mem, err);
	}
	if (fc_launch(fc, path, fc_body_bool(b, "resume_vm"), resp) < 0) {
		fc_forget_config(fc);
		return -1;
	}
	return 0;
}

/* ---- routing ---- */

enum fc_when { ANY, PRE, POST };
enum fc_op {
	OP_INFO, OP_VERSION, OP_GET_MACHINE, OP_PUT_MACHINE, OP_PATCH_MACHINE, OP_BOOT, OP_PUT_DRIVE,
	OP_PATCH_DRIVE, OP_PUT_IFACE, OP_PATCH_IFACE, OP_VSOCK, OP_ENTROPY, OP_LOGGER, OP_METRICS, OP_ACTION,
	OP_PATCH_VM, OP_GET_CONFIG, OP_SNAP_CREATE, OP_SNAP_LOAD, OP_NOT_YET,
};

struct fc_route {
	const char *method, *path;      /* a path ending in '/' takes an ID after it */
	enum fc_op op;
	enum fc_when when;
	bool body;
};

static const struct fc_route fc_routes[] = {
	{ "GET", "/", OP_INFO, ANY, false },
	{ "GET", "/version", OP_VERSION, ANY, false },
	{ "GET", "/machine-config", OP_GET_MACHINE, ANY, false },
	{ "PUT", "/machine-config", OP_PUT_MACHINE, PRE, true },
	{ "PATCH", "/machine-config", OP_PATCH_MACHINE, PRE, true },
	{ "PUT", "/boot-source", OP_BOOT, PRE, true },
	{ "PUT", "/drives/", OP_PUT_DRIVE, PRE, true },
	{ "PATCH", "/drives/", OP_PATCH_DRIVE, POST, true },
	{ "PUT", "/network-interfaces/", OP_PUT_IFACE, PRE, true },
	{ "PATCH", "/network-interfaces/", OP_PATCH_IFACE, POST, true },
	{ "PUT", "/vsock", OP_VSOCK, PRE, true },
	{ "PUT", "/entropy", OP_ENTROPY, PRE, true },
	{ "PUT", "/logger", OP_LOGGER, PRE, true },
	{ "PUT", "/metrics", OP_METRICS, PRE, true },
	{ "PUT", "/actions", OP_ACTION, ANY, true },
	{ "PATCH", "/vm", OP_PATCH_VM, POST, true },
	{ "GET", "/vm/config", OP_GET_CONFIG, ANY, false },
	{ "PUT", "/snapshot/create", OP_SNAP_CREATE, POST, true },
	{ "PUT", "/snapshot/load", OP_SNAP_LOAD, PRE, true },
	/* Firecracker's, not nestvm's yet: answered so, not as unknown. */
	{ "PUT", "/balloon", OP_NOT_YET, ANY, false },
	{ "PATCH", "/balloon", OP_NOT_YET, ANY, false },
	{ "GET", "/balloon", OP_NOT_YET, ANY, false },
	{ "GET", "/balloon/statistics", OP_NOT_YET, ANY, false },
	{ "PATCH", "/balloon/statistics", OP_NOT_YET, ANY, false },
	{ "PUT", "/mmds", OP_NOT_YET, ANY, false },
	{ "PATCH", "/mmds", OP_NOT_YET, ANY, false },
	{ "GET", "/mmds", OP_NOT_YET, ANY, false },
	{ "PUT", "/mmds/config", OP_NOT_YET, ANY, false },
	{ "PUT", "/cpu-config", OP_NOT_YET, ANY, false },
	{ 0 },
};

static const struct fc_route *fc_route(const struct fc_request *req, const char **id)
{
	for (const struct fc_route *r = fc_routes; r->method; r++) {
		size_t n = strlen(r->path);

		if (strcmp(req->method, r->method))
			continue;
		if (r->path[n - 1] == '/' && n > 1) {
			if (!strncmp(req->path, r->path, n) && req->path[n]) {
				*id = req->path + n;
				return r;
			}
		} else if (!strcmp(req->path, r->path)) {
			*id = NULL;
			return r;
		}
	}
	return NULL;
}

static int fc_dispatch(struct fc *fc, const struct fc_route *rt, const char *id, const struct fc_body *b, struct fc_response *resp)
{
	switch (rt->op) {
	case OP_INFO: return fc_get_info(fc, resp);
	case OP_VERSION: return fc_get_version(resp);
	case OP_GET_MACHINE: return fc_get_machine(fc, resp);
	case OP_PUT_MACHINE: return fc_put_machine(fc, b, false, resp);
	case OP_PATCH_MACHINE: return fc_put_machine(fc, b, true, resp);
	case OP_BOOT: return fc_put_boot(fc, b, resp);
	case OP_PUT_DRIVE: return fc_put_drive(fc, id, b, resp);
	case OP_PATCH_DRIVE: return fc_patch_drive(fc, id, b, resp);
	case OP_PUT_IFACE: return fc_put_iface(fc, id, b, resp);
	case OP_PATCH_IFACE:
		return fc_fail(resp, 400, "Updating a network interface's rate limiters is not supported by nestvm.");
	case OP_VSOCK: return fc_put_vsock(fc, b, resp);
	case OP_ENTROPY: return fc_put_entropy(fc, b, resp);
	case OP_LOGGER: return fc_put_logger(fc, b, resp);
	case OP_METRICS: return fc_put_metrics(fc, b, resp);
	case OP_ACTION: return fc_put_action(fc, b, resp);
	case OP_PATCH_VM: return fc_patch_vm(fc, b, resp);
	case OP_GET_CONFIG: return fc_get_config(fc, resp);
	case OP_SNAP_CREATE: return fc_snapshot_create(fc, b, resp);
	case OP_SNAP_LOAD: return fc_snapshot_load(fc, b, resp);
	case OP_NOT_YET: break;
	}
	return fc_fail(resp, 400, "%s %s is not supported by nestvm yet.", rt->method, rt->path);
}

/* Lock held. */
static int fc_handle_locked(struct fc *fc, const struct fc_request *req, struct fc_response *resp)
{
	const struct fc_route *rt;
	const char *id = NULL;
	struct fc_body *b = NULL;
	char err[400];
	int r;

	rt = fc_route(req, &id);
	if (!rt)
		return fc_fail(resp, 400, "Invalid request method and/or path: %s %.200s.", req->method, req->path);
	if (id && !fc_id_ok(id))
		return fc_fail(resp, 400, "Invalid ID '%.80s': 1 to %d letters, digits, '_' or '-'.", id, FC_ID_MAX);
	if (rt->when == PRE && fc->started)
		return fc_fail(resp, 400, FC_ERR_AFTER_START);
	if (rt->when == POST && !fc->started)
		return fc_fail(resp, 400, FC_ERR_BEFORE_START);
	if (rt->body) {
		if (!req->body_len)
			return fc_fail(resp, 400, "The request body is empty: %s %s takes a JSON object.", req->method,
				       req->path);
		if (fc_body_parse(req->body, req->body_len, &b, err, sizeof(err)) < 0)
			return fc_fail(resp, 400, "%s", err);
	} else if (req->body_len && strcmp(req->method, "GET") && rt->op != OP_NOT_YET) {
		return fc_fail(resp, 400, "%s %s takes no body.", req->method, req->path);
	}
	r = fc_dispatch(fc, rt, id, b, resp);
	fc_body_free(b);
	return r;
}

void fc_handle(struct fc *fc, const struct fc_request *req, struct fc_response *resp)
{
	int r;

	resp->status = 500;
	resp->body = NULL;
	pthread_mutex_lock(&fc->lock);
	fc->requests++;
	fc_log(fc, "Debug", "The API server received a %s request on \"%.200s\".", req->method, req->path);
	r = fc_handle_locked(fc, req, resp);
	if (r < 0) {
		fc->failures++;
		fc_log(fc, "Error", "%s %.200s: %s", req->method, req->path, resp->body ? resp->body : "");
	}
	pthread_mutex_unlock(&fc->lock);
}

/* ---- the configuration file ---- */

/* One item of the file, as the API request it stands for; locked: from a
 * request being answered, which holds the lock. */
static int fc_config_item(struct fc *fc, bool locked, const char *method, const char *path, const char *text,
			  char *err, size_t errlen)
{
	struct fc_response resp = { 0 };
	struct fc_request req = { 0 };
	struct fc_body *fault = NULL;
	int r;

	snprintf(req.method, sizeof(req.method), "%s", method);
	snprintf(req.path, sizeof(req.path), "%s", path);
	req.body = text;
	req.body_len = strlen(text);
	if (locked)
		(void)fc_handle_locked(fc, &req, &resp);
	else
		fc_handle(fc, &req, &resp);
	r = resp.status < 300 ? 0 : -EINVAL;
	if (r < 0) {
		if (!resp.body || fc_body_parse(resp.body, strlen(resp.body), &fault, err, errlen) < 0)
			fault = NULL;
		snprintf(err, errlen, "%s: %s", path,
			 fault && fc_body_str(fault, "fault_message") ? fc_body_str(fault, "fault_message") : "failed");
		fc_body_free(fault);
	}
	fc_response_free(&resp);
	return r;
}

static int fc_config_value(struct fc *fc, bool locked, const char *path, const struct fc_body *v, char *err,
			   size_t errlen)
{
	char *text = fc_body_dump(v);
	int r;

	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = fc_config_item(fc, locked, "PUT", path, text, err, errlen);
	free(text);
	return r;
}

/* An array section: each item PUT at path/<its id member>. */
static int fc_config_list(struct fc *fc, bool locked, const struct fc_body *list, const char *path,
			  const char *idkey, char *err, size_t errlen)
{
	long n = fc_body_array_len(list);
	char p[FC_PATH_MAX];

	if (n < 0) {
		snprintf(err, errlen, "\"%s\" must be an array", path + 1);
		return -EINVAL;
	}
	for (long i = 0; i < n; i++) {
		const struct fc_body *item = fc_body_array_at(list, (size_t)i);
		const char *id = fc_body_is_object(item) ? fc_body_str(item, idkey) : NULL;
		int r;

		if (!id || strlen(id) > FC_ID_MAX) {
			snprintf(err, errlen, "%s: an item without a valid \"%s\"", path, idkey);
			return -EINVAL;
		}
		snprintf(p, sizeof(p), "%s/%s", path, id);
		r = fc_config_value(fc, locked, p, item, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The sections of a configuration document applied, each as its request;
 * machine_only leaves out the logger and metrics (a snapshot's
 * description, loaded into a process that has its own). */
static int fc_apply_config(struct fc *fc, const struct fc_body *doc, bool locked, bool machine_only, char *err,
			   size_t errlen)
{
	/* In an order where each item finds what it needs: the logger first. */
	static const struct { const char *key, *path; } single[] = {
		{ "logger", "/logger" }, { "metrics", "/metrics" }, { "machine-config", "/machine-config" },
		{ "boot-source", "/boot-source" }, { "vsock", "/vsock" }, { "entropy", "/entropy" },
	};
	static const char *const known[] = {
		"logger", "metrics", "machine-config", "boot-source", "vsock", "entropy", "drives",
		"network-interfaces", "balloon", "mmds-config", "cpu-config", NULL,
	};
	const struct fc_body *v;
	const char *key;
	int r;

	if (!fc_body_is_object(doc)) {
		snprintf(err, errlen, "the configuration must be a JSON object");
		return -EINVAL;
	}
	for (size_t k = 0; (key = fc_body_key(doc, k)); k++) {
		int i;

		for (i = 0; known[i] && strcmp(known[i], key); i++)
			;
		if (!known[i]) {
			snprintf(err, errlen, "unknown section \"%.64s\"", key);
			return -EINVAL;
		}
		if (i >= 8 && fc_body_get(doc, key)) {
			snprintf(err, errlen, "\"%s\" is not supported by nestvm yet", key);
			return -EINVAL;
		}
	}
	for (size_t i = machine_only ? 2 : 0; i < ARRAY_SIZE(single); i++)
		if ((v = fc_body_get(doc, single[i].key)) &&
		    (r = fc_config_value(fc, locked, single[i].path, v, err, errlen)) < 0)
			return r;
	if ((v = fc_body_get(doc, "drives")) &&
	    (r = fc_config_list(fc, locked, v, "/drives", "drive_id", err, errlen)) < 0)
		return r;
	if ((v = fc_body_get(doc, "network-interfaces")) &&
	    (r = fc_config_list(fc, locked, v, "/network-interfaces", "iface_id", err, errlen)) < 0)
		return r;
	return 0;
}

int fc_load_config(struct fc *fc, const char *text, size_t len, char *err, size_t errlen)
{
	struct fc_body *doc;
	int r;

	r = fc_body_parse(text, len, &doc, err, errlen);
	if (r < 0) {
		char why[400];

		snprintf(why, sizeof(why), "%s", err + MIN(strlen(err), strlen(FC_BODY_ERR)));
		snprintf(err, errlen, "not JSON: %s", why);
		return r;
	}
	r = fc_apply_config(fc, doc, false, false, err, errlen);
	if (r == 0)
		r = fc_config_item(fc, false, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", err, errlen);
	fc_body_free(doc);
	return r;
}

/* ---- the front end ---- */

int fc_create(struct fc **out, const struct fc_options *o, char *err, size_t errlen)
{
	const char *id = o->id ? o->id : "anonymous-instance";
	struct fc *fc;

	if (!fc_id_ok(id)) {
		snprintf(err, errlen, "--id '%.80s': 1 to %d letters, digits, '_' or '-'", id, FC_ID_MAX);
		return -EINVAL;
	}
	fc = calloc(1, sizeof(*fc));
	if (!fc) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&fc->lock, NULL);
	fc->opt = *o;
	snprintf(fc->id, sizeof(fc->id), "%s", id);
	fc->vcpus = 1;
	fc->mem_mib = FC_DEFAULT_MEM_MIB;
	fc->nested = o->nested;
	fc->log_fd = fc->metrics_fd = -1;
	snprintf(fc->log_level, sizeof(fc->log_level), "Info");
	*out = fc;
	return 0;
}

struct vmm *fc_started(struct fc *fc)
{
	struct vmm *v;

	pthread_mutex_lock(&fc->lock);
	v = fc->started ? fc->vmm : NULL;
	pthread_mutex_unlock(&fc->lock);
	return v;
}

void fc_destroy(struct fc *fc)
{
	if (!fc)
		return;
	vmm_destroy(fc->vmm);
	if (fc->log_fd >= 0)
		close(fc->log_fd);
	if (fc->metrics_fd >= 0)
		close(fc->metrics_fd);
	pthread_mutex_destroy(&fc->lock);
	free(fc);
}

/* Tier 1: the Firecracker-compatible API without a VM: the HTTP reader on
 * good, partial, pipelined and bad requests; each resource's answers and
 * refusals (unknown fields, wrong types, ids, pre- and post-boot rules);
 * a start that fails leaving the microVM configurable; --config-file; the
 * logger and metrics; and the server on a real Unix socket. */
#include "harness.h"
#include "other_user.h"
#include "fake_bzimage.h"
#include "fc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

HARNESS_DEFINE;

static char dir[64], kernel[128], disk[128];

static void scratch(void)
{
	size_t len;
	uint8_t *img = fake_bzimage(NULL, 0, 4096, &len);
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/nestvm-fc-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", dir);
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	f = fopen(kernel, "w");
	CHECK(f && fwrite(img, 1, len, f) == len);
	fclose(f);
	free(img);
	CHECK_EQ(util_create_image(disk, 1 << 20, false), 0);
}

/* A front end whose starts fail for want of KVM, the probe skipped. */
static struct fc *new_fc(void)
{
	struct fc_options o = { .id = "unit-1", .vmm = { .kvm_path = "/nonexistent/kvm", .skip_probe = true,
							   .console_log = "/dev/null" } };
	char err[256];
	struct fc *fc;

	CHECK_EQ(fc_create(&fc, &o, err, sizeof(err)), 0);
	return fc;
}

static struct fc_response last;

/* One request; the status, the body in last. */
static int req(struct fc *fc, const char *method, const char *path, const char *body)
{
	struct fc_request r = { .body = body, .body_len = body ? strlen(body) : 0 };

	fc_response_free(&last);
	snprintf(r.method, sizeof(r.method), "%s", method);
	snprintf(r.path, sizeof(r.path), "%s", path);
	fc_handle(fc, &r, &last);
	return last.status;
}

#define EXPECT_FAULT(text) do { \
	CHECK(last.body && strstr(last.body, "\"fault_message\"")); \
	if (!strstr(last.body, text)) FAILF("%s:%d: fault %s lacks \"%s\"", __FILE__, __LINE__, last.body, text); \
} while (0)

static void test_http_parse(void)
{
	static const char two[] = "PUT /actions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"
				  "GET /?x=1 HTTP/1.1\r\n\r\n";
	struct fc_request r;
	char err[256], big[FC_HEADERS_MAX + 10];
	size_t used;
	int status;

	CHECK_EQ(fc_http_parse(two, sizeof(two) - 1, &r, &used, &status, err, sizeof(err)), FC_PARSE_DONE);
	CHECK_STR(r.method, "PUT");
	CHECK_STR(r.path, "/actions");
	CHECK_EQ(r.body_len, 2);
	CHECK(!memcmp(r.body, "{}", 2));
	CHECK_EQ(fc_http_parse(two + used, sizeof(two) - 1 - used, &r, &used, &status, err, sizeof(err)),
		 FC_PARSE_DONE);
	CHECK_STR(r.path, "/");
	CHECK(!r.body);
	/* Pieces: more is needed until the body is whole. */
	CHECK_EQ(fc_http_parse(two, 20, &r, &used, &status, err, sizeof(err)), FC_PARSE_MORE);
	CHECK_EQ(fc_http_parse(two, 60, &r, &used, &status, err, sizeof(err)), FC_PARSE_MORE);
	{
		static const char cont[] = "PUT /vm HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";

		CHECK_EQ(fc_http_parse(cont, sizeof(cont) - 1, &r, &used, &status, err, sizeof(err)), FC_PARSE_HEAD);
	}
#define BAD(text, code) do { \
	CHECK_EQ(fc_http_parse(text, sizeof(text) - 1, &r, &used, &status, err, sizeof(err)), FC_PARSE_ERROR); \
	CHECK_EQ(status, code); \
} while (0)
	BAD("PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
	BAD("PUT /x HTTP/1.1\r\nContent-Length: 51201\r\n\r\n", 413);
	BAD("PUT /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400);
	BAD("PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400);
	BAD("PUT /x HTTP/2.0\r\n\r\n", 400);
	BAD("put /x HTTP/1.1\r\n\r\n", 400);
	BAD("PUT x HTTP/1.1\r\n\r\n", 400);
	BAD("PUT /x\r\n\r\n", 400);
	BAD("GET /x HTTP/1.1\r\nNo colon here\r\n\r\n", 400);
	BAD("GET /x HTTP/1.1\r\nX: a\001b\r\n\r\n", 400);
	BAD("GET /x HTTP/1.1\r\nExpect: something\r\n\r\n", 400);
#undef BAD
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	CHECK_EQ(fc_http_parse(big, sizeof(big), &r, &used, &status, err, sizeof(err)), FC_PARSE_ERROR);
	CHECK_EQ(status, 400);
	{
		static const char old[] = "GET / HTTP/1.0\r\n\r\n";

		CHECK_EQ(fc_http_parse(old, sizeof(old) - 1, &r, &used, &status, err, sizeof(err)), FC_PARSE_DONE);
		CHECK(r.close);
	}
}

static void test_http_format(void)
{
	struct fc_response r = { 204, NULL };
	char *out;
	size_t len;

	CHECK_EQ(fc_http_format(&r, &out, &len), 0);
	CHECK(!strncmp(out, "HTTP/1.1 204 No Content\r\n", 25));
	CHECK(!strstr(out, "Content-Length"));
	free(out);
	r = (struct fc_response){ 400, strdup("{\"fault_message\":\"x\"}") };
	CHECK_EQ(fc_http_format(&r, &out, &len), 0);
	CHECK(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
	CHECK(strstr(out, "Content-Length: 21\r\n\r\n{\"fault_message\":\"x\"}"));
	CHECK_EQ(len, strlen(out));
	free(out);
	fc_response_free(&r);
}

static void test_configure_and_refusals(void)
{
	struct fc *fc;
	char body[512];

	scratch();
	fc = new_fc();
	CHECK_EQ(req(fc, "GET", "/", NULL), 200);
	CHECK(strstr(last.body, "\"state\":\"Not started\""));
	CHECK(strstr(last.body, "\"id\":\"unit-1\""));
	CHECK_EQ(req(fc, "GET", "/machine-config", NULL), 200);
	CHECK(strstr(last.body, "\"vcpu_count\":1,\"mem_size_mib\":128"));
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256,\"nested_virtualization\":true}"), 204);
	CHECK_EQ(req(fc, "PATCH", "/machine-config", "{\"mem_size_mib\":512}"), 204);
	CHECK_EQ(req(fc, "GET", "/machine-config", NULL), 200);
	CHECK(strstr(last.body, "\"vcpu_count\":2,\"mem_size_mib\":512"));
	CHECK(strstr(last.body, "\"nested_virtualization\":true"));
	/* Machine rules. */
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":3,\"mem_size_mib\":256,\"smt\":true}"), 400);
	EXPECT_FAULT("SMT");
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":0,\"mem_size_mib\":256}"), 400);
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":8}"), 400);
	EXPECT_FAULT("memory size");
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":1}"), 400);
	EXPECT_FAULT("missing field `mem_size_mib`");
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128,\"cpu_template\":\"T2\"}"), 400);
	EXPECT_FAULT("CPU template");
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":true,\"mem_size_mib\":128}"), 400);
	EXPECT_FAULT("invalid type for `vcpu_count`");
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":-1,\"mem_size_mib\":128}"), 400);
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":1,\"vcpu_count\":1,\"mem_size_mib\":128}"), 400);
	CHECK_EQ(req(fc, "PUT", "/machine-config", "[1,2]"), 400);
	EXPECT_FAULT("expected a JSON object");
	CHECK_EQ(req(fc, "PUT", "/machine-config", NULL), 400);
	EXPECT_FAULT("body is empty");
	/* Boot source and drives. */
	CHECK_EQ(req(fc, "PUT", "/boot-source", "{\"kernel_image_path\":\"/nonexistent/k\"}"), 400);
	EXPECT_FAULT("cannot be opened");
	snprintf(body, sizeof(body), "{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0\"}", kernel);
	CHECK_EQ(req(fc, "PUT", "/boot-source", body), 204);
	snprintf(body, sizeof(body), "{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
		 "\"is_read_only\":false}", disk);
	CHECK_EQ(req(fc, "PUT", "/drives/rootfs", body), 204);
	CHECK_EQ(req(fc, "PUT", "/drives/rootfs", body), 204);      /* the same again: an update */
	CHECK_EQ(req(fc, "PUT", "/drives/other", body), 400);
	EXPECT_FAULT("does not match");
	snprintf(body, sizeof(body), "{\"drive_id\":\"two\",\"path_on_host\":\"%s\",\"is_root_device\":true}", disk);
	CHECK_EQ(req(fc, "PUT", "/drives/two", body), 400);
	EXPECT_FAULT("root block device already exists");
	snprintf(body, sizeof(body), "{\"drive_id\":\"two\",\"path_on_host\":\"%s\",\"is_root_device\":false,"
		 "\"rate_limiter\":{\"bandwidth\":{\"size\":1,\"refill_time\":1}}}", disk);
	CHECK_EQ(req(fc, "PUT", "/drives/two", body), 400);
	EXPECT_FAULT("rate limiters are not supported");
	CHECK_EQ(req(fc, "PUT", "/drives/b%20d", "{}"), 400);
	EXPECT_FAULT("Invalid ID");
	/* Network, vsock, entropy. */
	CHECK_EQ(req(fc, "PUT", "/network-interfaces/eth0",
		     "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\"}"), 204);
	CHECK_EQ(req(fc, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap0\"}"), 400);
	EXPECT_FAULT("already in use");
	CHECK_EQ(req(fc, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\",\"guest_mac\":\"01:00:00:00:00:01\"}"), 400);
	EXPECT_FAULT("unicast");
	CHECK_EQ(req(fc, "PUT", "/vsock", "{\"guest_cid\":2,\"uds_path\":\"/tmp/v.sock\"}"), 400);
	EXPECT_FAULT("CID 2");
	CHECK_EQ(req(fc, "PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/tmp/v.sock\"}"), 204);
	CHECK_EQ(req(fc, "PUT", "/entropy", "{}"), 204);
	/* Post-boot only, before the start; unknown and not-yet paths. */
	CHECK_EQ(req(fc, "PATCH", "/vm", "{\"state\":\"Paused\"}"), 400);
	EXPECT_FAULT("not supported before starting the microVM");
	CHECK_EQ(req(fc, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}"), 400);
	EXPECT_FAULT("before starting");
	CHECK_EQ(req(fc, "PATCH", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"path_on_host\":\"/x\"}"), 400);
	EXPECT_FAULT("before starting");
	CHECK_EQ(req(fc, "GET", "/nope", NULL), 400);
	EXPECT_FAULT("Invalid request method and/or path: GET /nope.");
	CHECK_EQ(req(fc, "DELETE", "/", NULL), 400);
	CHECK_EQ(req(fc, "PUT", "/snapshot/create", "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}"), 400);
	EXPECT_FAULT("not supported before starting");
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}"), 400);
	EXPECT_FAULT("not allowed after configuring boot-specific resources");
	CHECK_EQ(req(fc, "GET", "/balloon", NULL), 400);
	EXPECT_FAULT("not supported by nestvm yet");
	CHECK_EQ(req(fc, "PUT", "/actions", "{\"action_type\":\"Reboot\"}"), 400);
	EXPECT_FAULT("unknown variant `Reboot`");
	CHECK_EQ(req(fc, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}"), 400);
	EXPECT_FAULT("metrics system is not initialized");
	/* The whole configuration, as --config-file has it. */
	CHECK_EQ(req(fc, "GET", "/vm/config", NULL), 200);
	CHECK(strstr(last.body, "\"drive_id\":\"rootfs\""));
	CHECK(strstr(last.body, "\"vsock\":{\"guest_cid\":3"));
	CHECK(strstr(last.body, "\"host_dev_name\":\"tap0\""));
	CHECK(strstr(last.body, "\"entropy\":{"));
	/* The start fails (no KVM here): said so, and the microVM can be started again. */
	CHECK_EQ(req(fc, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}"), 400);
	EXPECT_FAULT("Start microvm error");
	EXPECT_FAULT("/nonexistent/kvm");
	CHECK(!fc_started(fc));
	CHECK_EQ(req(fc, "GET", "/", NULL), 200);
	CHECK(strstr(last.body, "Not started"));
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}"), 204);
	fc_response_free(&last);
	fc_destroy(fc);
	harness_remove_tree(dir);
}

/* Eight devices at most: the ninth is refused with the count. */
static void test_device_limit(void)
{
	struct fc *fc;
	char body[256], path[64];

	scratch();
	fc = new_fc();
	for (int i = 0; i < 8; i++) {
		snprintf(body, sizeof(body), "{\"drive_id\":\"d%d\",\"path_on_host\":\"%s\",\"is_root_device\":false,"
			 "\"is_read_only\":true}", i, disk);
		snprintf(path, sizeof(path), "/drives/d%d", i);
		CHECK_EQ(req(fc, "PUT", path, body), 204);
	}
	CHECK_EQ(req(fc, "PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/tmp/v.sock\"}"), 400);
	EXPECT_FAULT("Too many devices");
	fc_response_free(&last);
	fc_destroy(fc);
	harness_remove_tree(dir);
}

static void test_logger_and_metrics(void)
{
	char body[256], log[128], metrics[128], buf[4096];
	struct fc *fc;
	FILE *f;
	size_t n;

	scratch();
	fc = new_fc();
	snprintf(log, sizeof(log), "%s/fc.log", dir);
	snprintf(metrics, sizeof(metrics), "%s/metrics.json", dir);
	snprintf(body, sizeof(body), "{\"log_path\":\"%s\",\"level\":\"debug\",\"show_level\":true}", log);
	CHECK_EQ(req(fc, "PUT", "/logger", body), 204);
	CHECK_EQ(req(fc, "PUT", "/logger", "{\"level\":\"Loud\"}"), 400);
	snprintf(body, sizeof(body), "{\"metrics_path\":\"%s\"}", metrics);
	CHECK_EQ(req(fc, "PUT", "/metrics", body), 204);
	CHECK_EQ(req(fc, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}"), 204);
	f = fopen(metrics, "r");
	CHECK(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	CHECK(strstr(buf, "\"utc_timestamp_ms\""));
	CHECK(strstr(buf, "\"requests\":4"));
	CHECK(strstr(buf, "\"failed_requests\":1"));
	f = fopen(log, "r");
	CHECK(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	CHECK(strstr(buf, "[unit-1:Info] Running nestvm as Firecracker"));
	CHECK(strstr(buf, "received a PUT request on \"/metrics\""));
	CHECK(strstr(buf, "Invalid log level"));
	fc_response_free(&last);
	fc_destroy(fc);
	harness_remove_tree(dir);
}

static void test_config_file(void)
{
	char doc[1024], err[512];
	struct fc *fc;

	scratch();
	fc = new_fc();
	snprintf(doc, sizeof(doc), "{\"boot-source\":{\"kernel_image_path\":\"%s\"},"
		 "\"drives\":[{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
		 "\"is_read_only\":true}],\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":64},"
		 "\"network-interfaces\":[],\"balloon\":null}", kernel, disk);
	/* Everything is taken, and the start is tried: it fails for want of KVM. */
	CHECK_EQ(fc_load_config(fc, doc, strlen(doc), err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "/actions: Start microvm error"));
	CHECK_EQ(req(fc, "GET", "/vm/config", NULL), 200);
	CHECK(strstr(last.body, "\"mem_size_mib\":64"));
	CHECK(strstr(last.body, "\"is_read_only\":true"));
	fc_response_free(&last);
	fc_destroy(fc);

#define BAD_DOC(text, what) do { \
	fc = new_fc(); \
	CHECK_EQ(fc_load_config(fc, text, strlen(text), err, sizeof(err)), -EINVAL); \
	if (!strstr(err, what)) FAILF("config error '%s' lacks '%s'", err, what); \
	fc_destroy(fc); \
} while (0)
	BAD_DOC("{\"boot-source\":", "not JSON");
	BAD_DOC("[]", "must be a JSON object");
	BAD_DOC("{\"frobnicate\":{}}", "unknown section \"frobnicate\"");
	BAD_DOC("{\"balloon\":{\"amount_mib\":1}}", "\"balloon\" is not supported");
	BAD_DOC("{\"drives\":{}}", "\"drives\" must be an array");
	BAD_DOC("{\"drives\":[{\"is_root_device\":true}]}", "without a valid \"drive_id\"");
	BAD_DOC("{\"machine-config\":{\"vcpu_count\":1}}", "/machine-config: ");
	BAD_DOC("{}", "without kernel configuration");
#undef BAD_DOC
	harness_remove_tree(dir);
}

/* /snapshot/load's refusals, and a microVM described as /snapshot/create
 * describes it (GET /vm/config's document, nulls and all) taken whole; a
 * load that fails leaves nothing configured. */
static void test_snapshot_load(void)
{
	char body[1024], desc[160], state[160];
	struct fc *fc;
	FILE *f;

	scratch();
	snprintf(desc, sizeof(desc), "%s/vm.json", dir);
	snprintf(state, sizeof(state), "%s/vm.state", dir);
	fc = new_fc();
	snprintf(body, sizeof(body), "{\"kernel_image_path\":\"%s\"}", kernel);
	CHECK_EQ(req(fc, "PUT", "/boot-source", body), 204);
	snprintf(body, sizeof(body), "{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
		 "\"is_read_only\":true}", disk);
	CHECK_EQ(req(fc, "PUT", "/drives/rootfs", body), 204);
	CHECK_EQ(req(fc, "PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap7\"}"), 204);
	CHECK_EQ(req(fc, "PUT", "/vsock", "{\"guest_cid\":9,\"uds_path\":\"/tmp/v9.sock\"}"), 204);
	CHECK_EQ(req(fc, "PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256}"), 204);
	CHECK_EQ(req(fc, "GET", "/vm/config", NULL), 200);
	CHECK(strstr(last.body, "\"partuuid\":null"));
	f = fopen(desc, "w");
	CHECK(f && fputs(last.body, f) >= 0);
	fclose(f);
	fc_response_free(&last);
	fc_destroy(fc);

	fc = new_fc();
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", "{\"mem_file_path\":\"m\"}"), 400);
	EXPECT_FAULT("missing field `snapshot_path`");
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", "{\"snapshot_path\":\"s\"}"), 400);
	EXPECT_FAULT("`mem_file_path` or a File `mem_backend`");
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", "{\"snapshot_path\":\"s\",\"mem_backend\":"
		     "{\"backend_type\":\"Uffd\",\"backend_path\":\"/u.sock\"}}"), 400);
	EXPECT_FAULT("Uffd memory backend is not supported");
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"mem_backend\":"
		     "{\"backend_type\":\"File\",\"backend_path\":\"m\"}}"), 400);
	EXPECT_FAULT("one without the other");
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\",\"resume_vm\":1}"), 400);
	EXPECT_FAULT("invalid type for `resume_vm`");
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", "{\"snapshot_path\":\"s\",\"mem_file_path\":\"/nonexistent/m\"}"), 400);
	EXPECT_FAULT("'/nonexistent/m': No such file");
	snprintf(body, sizeof(body), "{\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", state, kernel);
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", body), 400);
	EXPECT_FAULT("is not the description /snapshot/create wrote");
	/* The description is taken; the state is not there. */
	snprintf(body, sizeof(body), "{\"snapshot_path\":\"%s\",\"mem_backend\":{\"backend_type\":\"File\","
		 "\"backend_path\":\"%s\"},\"resume_vm\":true}", state, desc);
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", body), 400);
	EXPECT_FAULT("Load snapshot error: saved state");
	EXPECT_FAULT("vm.state': No such file");
	CHECK(!fc_started(fc));
	CHECK_EQ(req(fc, "GET", "/vm/config", NULL), 200);
	CHECK(strstr(last.body, "\"drives\":[]"));
	CHECK(strstr(last.body, "\"vsock\":null"));
	/* A description naming a drive that is gone. */
	unlink(disk);
	snprintf(body, sizeof(body), "{\"snapshot_path\":\"%s\",\"mem_file_path\":\"%s\"}", state, desc);
	CHECK_EQ(req(fc, "PUT", "/snapshot/load", body), 400);
	EXPECT_FAULT("/drives/rootfs: The block device backing file");
	fc_response_free(&last);
	fc_destroy(fc);
	harness_remove_tree(dir);
}

static ssize_t recv_all(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap - 1) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 2000) != 1)
			break;
		n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (strstr(buf, "\r\n\r\n") && (strstr(buf, "204 No") || strstr(buf, "}")))
			break;
	}
	buf[got] = 0;
	return (ssize_t)got;
}

/* The socket: a request in pieces, 100-continue, keep-alive, and an
 * oversized body that is answered 413 and hung up on. */
static void test_server(void)
{
	char sock[128], buf[4096];
	struct fc_server *srv;
	struct fc *fc;
	int fd;

	scratch();
	fc = new_fc();
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	CHECK_EQ(fc_server_start(&srv, sock, fc), 0);
	fd = util_unix_connect(sock, SOCK_STREAM);
	CHECK(fd >= 0);
	CHECK(send(fd, "GET / HT", 8, 0) == 8);
	usleep(20000);
	CHECK(send(fd, "TP/1.1\r\n\r\n", 10, 0) == 10);
	CHECK(recv_all(fd, buf, sizeof(buf)) > 0);
	CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
	CHECK(strstr(buf, "Content-Type: application/json"));
	CHECK(strstr(buf, "\"app_name\":\"Firecracker\""));
	{
		static const char head[] = "PUT /machine-config HTTP/1.1\r\nExpect: 100-continue\r\n"
					   "Content-Length: 38\r\n\r\n";
		static const char body[] = "{\"vcpu_count\":2,\"mem_size_mib\":1024}";

		CHECK(send(fd, head, sizeof(head) - 1, 0) > 0);
		CHECK(recv_all(fd, buf, 64) > 0);
		CHECK(!strncmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25));
		CHECK(send(fd, body, sizeof(body) - 1, 0) > 0);
		CHECK(send(fd, "  ", 2, 0) == 2);
		CHECK(recv_all(fd, buf, sizeof(buf)) > 0);
		CHECK(!strncmp(buf, "HTTP/1.1 204 No Content\r\n", 25));
	}
	{
		static const char huge[] = "PUT /machine-config HTTP/1.1\r\nContent-Length: 99999\r\n\r\n";

		CHECK(send(fd, huge, sizeof(huge) - 1, 0) > 0);
		CHECK(recv_all(fd, buf, sizeof(buf)) > 0);
		CHECK(!strncmp(buf, "HTTP/1.1 413 Payload Too Large\r\n", 32));
		CHECK_EQ(recv(fd, buf, 1, 0), 0);      /* and closed */
	}
	close(fd);
	fc_server_stop(srv);
	CHECK_EQ(req(fc, "GET", "/machine-config", NULL), 200);
	CHECK(strstr(last.body, "\"mem_size_mib\":1024"));
	fc_response_free(&last);
	fc_destroy(fc);
	harness_remove_tree(dir);
}

/* A client that pipelines requests and never reads the responses must not
 * stop the server: another client is answered within 2 s. */
static void test_server_never_waits_on_one_client(void)
{
	static const char get[] = "GET / HTTP/1.1\r\n\r\n";
	char sock[128], buf[4096];
	struct fc_server *srv;
	struct fc *fc;
	uint64_t t0;
	int flood, fd;

	scratch();
	fc = new_fc();
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	CHECK_EQ(fc_server_start(&srv, sock, fc), 0);
	flood = util_unix_connect(sock, SOCK_STREAM | SOCK_NONBLOCK);
	CHECK(flood >= 0);
	(void)harness_flood(flood, get, sizeof(get) - 1, NULL);
	fd = util_unix_connect(sock, SOCK_STREAM);
	CHECK(fd >= 0);
	t0 = util_now_ns();
	CHECK(send(fd, get, sizeof(get) - 1, 0) > 0);
	CHECK(recv_all(fd, buf, sizeof(buf)) > 0);
	CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
	CHECK(util_now_ns() - t0 < 2000000000ULL);
	close(fd);
	close(flood);
	fc_server_stop(srv);
	fc_destroy(fc);
	harness_remove_tree(dir);
}

/* As a second local user: 1 when the socket's mode refuses it, 2 when the
 * server closes it with no response, 3 for a response, 4 otherwise. */
static int other_user_get(void *arg)
{
	static const char get[] = "GET / HTTP/1.1\r\n\r\n";
	char buf[256];
	int fd = util_unix_connect(arg, SOCK_STREAM);

	if (fd == -EACCES)
		return 1;
	if (fd < 0)
		return 4;
	(void)!send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL);
	return recv_all(fd, buf, sizeof(buf)) == 0 ? 2 : 3;
}

/* Firecracker leaves the API socket's access to its file mode; here the
 * server also checks the peer, so a socket opened to all still refuses. */
static void test_server_refuses_other_users(void)
{
	char sock[128], buf[4096];
	struct fc_server *srv;
	struct stat st;
	struct fc *fc;
	int fd;

	scratch();
	fc = new_fc();
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	CHECK_EQ(fc_server_start(&srv, sock, fc), 0);
	CHECK_EQ(stat(sock, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(chmod(dir, 0755), 0);
	CHECK_EQ(other_user_run(other_user_get, sock), 1);
	CHECK_EQ(chmod(sock, 0666), 0);
	CHECK_EQ(other_user_run(other_user_get, sock), 2);
	fd = util_unix_connect(sock, SOCK_STREAM);
	CHECK(fd >= 0);
	CHECK(send(fd, "GET / HTTP/1.1\r\n\r\n", 18, 0) == 18);
	CHECK(recv_all(fd, buf, sizeof(buf)) > 0);
	CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
	close(fd);
	fc_server_stop(srv);
	fc_destroy(fc);
	harness_remove_tree(dir);
}

/* --api-sock never deletes what is not a stale socket. */
static void test_server_keeps_what_is_in_the_way(void)
{
	char path[128];
	struct fc_server *srv;
	struct stat st;
	struct fc *fc;
	FILE *f;

	scratch();
	fc = new_fc();
	snprintf(path, sizeof(path), "%s/precious", dir);
	f = fopen(path, "w");
	CHECK(f);
	fputs("data\n", f);
	fclose(f);
	CHECK_EQ(fc_server_start(&srv, path, fc), -EEXIST);
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISREG(st.st_mode) && st.st_size == 5);
	fc_destroy(fc);
	harness_remove_tree(dir);
}

int main(void)
{
	RUN(test_http_parse);
	RUN(test_http_format);
	RUN(test_configure_and_refusals);
	RUN(test_device_limit);
	RUN(test_logger_and_metrics);
	RUN(test_config_file);
	RUN(test_snapshot_load);
	RUN(test_server);
	RUN(test_server_never_waits_on_one_client);
	RUN(test_server_refuses_other_users);
	RUN(test_server_keeps_what_is_in_the_way);
	return HARNESS_END();
}

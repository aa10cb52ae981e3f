/* libFuzzer target for the Firecracker-compatible API, the bytes any local
 * program can send to its socket: the HTTP reader takes requests one after
 * another out of the input, and each is answered by a microVM front end
 * that is not started. Every answer is a status Firecracker uses with a
 * body that is JSON with "fault_message" (or none for 204), the reader
 * never reads past the input, and nothing it is told to open is written:
 * the logger and metrics, which create files, are left out. */
#include "fc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fc_options o = { .id = "fuzz", .vmm = { .kvm_path = "/nonexistent/kvm", .skip_probe = true,
							 .console_log = "/dev/null" } };
	char *buf = malloc(size ? size : 1), err[256];
	size_t pos = 0;
	struct fc *fc;

	ASSERT(buf);
	memcpy(buf, data, size);
	ASSERT(fc_create(&fc, &o, err, sizeof(err)) == 0);
	for (int n = 0; n < 16 && pos < size; n++) {
		struct fc_response resp;
		struct fc_request req;
		size_t used;
		int status;
		enum fc_parse p = fc_http_parse(buf + pos, size - pos, &req, &used, &status, err, sizeof(err));

		if (p != FC_PARSE_DONE) {
			ASSERT(p != FC_PARSE_ERROR || (status >= 400 && err[0]));
			break;
		}
		ASSERT(used > 0 && used <= size - pos);
		ASSERT(!req.body || (req.body >= buf + pos && req.body + req.body_len <= buf + pos + used));
		if (strncmp(req.path, "/logger", 7) && strncmp(req.path, "/metrics", 8)) {
			fc_handle(fc, &req, &resp);
			ASSERT(resp.status == 200 || resp.status == 204 || resp.status == 400);
			ASSERT(resp.status == 204 ? !resp.body : resp.body != NULL);
			ASSERT(resp.status != 400 || strstr(resp.body, "\"fault_message\""));
			fc_response_free(&resp);
		}
		pos += used;
	}
	fc_destroy(fc);
	free(buf);
	return 0;
}

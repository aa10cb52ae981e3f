/* libFuzzer target for the control API's request reader, the bytes any
 * local program can send a running VMM: every input gets exactly one reply
 * line that is valid JSON with "ok", and the reader never reads past len. */
#include "api.h"
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static void fuzz_handler(void *opaque, const struct api_request *req, struct json *reply)
{
	(void)opaque;
	ASSERT(req->cmd != API_SETMEMORY || req->bytes > 0);
	json_kv_bool(reply, "ok", true);
	json_kv_string(reply, "cmd", api_cmd_name(req->cmd));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so ASan sees any over-read. */
	char *line = malloc(size ? size : 1);
	struct api_object *o = malloc(sizeof(*o));
	char err[256];
	struct json j;
	int r;

	ASSERT(line && o);
	memcpy(line, data, size);
	r = api_parse_object(line, size, o, err, sizeof(err));
	ASSERT(r == 0 || (r == -EINVAL && err[0]));
	if (r == 0) {
		ASSERT(o->n <= API_MAX_MEMBERS);
		for (unsigned int i = 0; i < o->n; i++)
			ASSERT(strlen(o->m[i].key) < API_KEY_MAX && strlen(o->m[i].str) < API_STR_MAX);
	}
	json_init(&j, NULL, false);
	api_handle_line(line, size, fuzz_handler, NULL, &j);
	ASSERT(json_finish(&j) == 0);
	/* The reply parses back with our own reader and says ok or not. */
	r = api_parse_object(json_buf(&j), strlen(json_buf(&j)), o, err, sizeof(err));
	ASSERT(r == 0 && api_get(o, "ok") && api_get(o, "ok")->type == API_BOOL);
	ASSERT(!strchr(json_buf(&j), '\n'));
	json_free(&j);
	free(o);
	free(line);
	return 0;
}

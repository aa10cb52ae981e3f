/* The control API of a running VM: a Unix socket served by its VMM, one JSON
 * object per line each way. Requests are {"cmd": "status"|"pause"|"resume"|
 * "powerbutton"|"stop"}, {"cmd": "setmemory", "bytes": N} or {"cmd": "save",
 * "path": FILE, "keepRunning": BOOL} (both optional), {"cmd": "checkpoint",
 * "dir": DIR} or {"cmd": "migrate", "to": ADDRESS}; replies are
 * {"ok": true, ...} or {"ok": false, "error": "..."}. The reader here is strict and bounded: a flat object of
 * string, integer, true/false/null members, at most API_LINE_MAX bytes. */
#ifndef NESTVM_API_H
#define NESTVM_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "util.h"

#define API_LINE_MAX    4096
#define API_MAX_MEMBERS 16
#define API_KEY_MAX     32
#define API_STR_MAX     1024

enum api_type { API_STRING, API_INT, API_BOOL, API_NULL };

struct api_member {
	char key[API_KEY_MAX];
	enum api_type type;
	char str[API_STR_MAX];          /* API_STRING, UTF-8, no NUL inside */
	int64_t num;                    /* API_INT */
	bool b;                         /* API_BOOL */
};

struct api_object {
	unsigned int n;
	struct api_member m[API_MAX_MEMBERS];
};

/* Parses one line (without its newline) as a flat JSON object. -EINVAL with
 * err saying what and at which byte for anything else. */
MUST_CHECK int api_parse_object(const char *s, size_t len, struct api_object *o,
				char *err, size_t errlen);
/* The member named key, or NULL. */
const struct api_member *api_get(const struct api_object *o, const char *key);

enum api_cmd { API_STATUS, API_PAUSE, API_RESUME, API_POWERBUTTON, API_STOP, API_SETMEMORY, API_SAVE,
	       API_CHECKPOINT, API_MIGRATE };
const char *api_cmd_name(enum api_cmd c);

struct api_request {
	enum api_cmd cmd;
	uint64_t bytes;                 /* API_SETMEMORY: the memory target, > 0 */
	char path[API_STR_MAX];         /* API_SAVE: where to ("": a stored VM's own);
					 * API_CHECKPOINT: the directory;
					 * API_MIGRATE: the address to */
	bool keep_running;              /* API_SAVE: a checkpoint; the VM runs on */
};

/* A request line to a command and its arguments: -EINVAL with err for bad
 * JSON, a missing or unknown "cmd", an argument missing, out of range or
 * given to a command that takes none, or any other member. */
MUST_CHECK int api_parse_request(const char *s, size_t len, struct api_request *req,
				 char *err, size_t errlen);

/* Fills the reply object (already begun) for the request; ok or error members. */
typedef void (*api_handler_fn)(void *opaque, const struct api_request *req, struct json *reply);

/* Turns one request line into one reply line (no newline) in reply, a
 * buffer-mode json writer: bad requests get {"ok":false,"error":...}. */
void api_handle_line(const char *s, size_t len, api_handler_fn h, void *opaque, struct json *reply);

/* The server: listens on path (replacing a stale socket) and answers on a
 * thread of its own until api_server_stop(). */
struct api_server;
MUST_CHECK int api_server_start(struct api_server **out, const char *path, api_handler_fn h, void *opaque);
void api_server_stop(struct api_server *s);

/* The client: connects to path, sends {"cmd": cmd}, reads one reply line
 * into reply within timeout_ms and parses it. -ECONNREFUSED or -ENOENT when
 * nothing listens, -ETIMEDOUT, -EPROTO for a reply that does not parse. */
MUST_CHECK int api_call(const char *path, const char *cmd, struct api_object *reply, int timeout_ms);
/* The same for a request with its arguments. */
MUST_CHECK int api_call_request(const char *path, const struct api_request *req,
				struct api_object *reply, int timeout_ms);

#endif

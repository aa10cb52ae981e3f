/* nestvm where Firecracker is expected: Firecracker's REST API (HTTP/1.1 on
 * a Unix socket, its paths, field names, status codes and error body) as a
 * front end over the VMM, beside the command line and the control API.
 * fc_http.c reads requests and serves the socket; fc_api.c holds the
 * microVM being configured, answers each request and starts the VMM.
 * Nothing here prints or exits: the command line does (cli/firecracker.c). */
#ifndef NESTVM_FC_H
#define NESTVM_FC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "vmm.h"

/* The Firecracker API this speaks (its OpenAPI document's version). */
#define FC_API_VERSION          "1.7.0"
#define FC_APP_NAME             "Firecracker"
#define FC_ID_MAX               64
#define FC_PATH_MAX             256     /* a request's path */
#define FC_HEADERS_MAX          8192    /* the request line and headers */
#define FC_BODY_MAX             51200   /* Firecracker's default payload limit */

/* ---- HTTP (fc_http.c) ---- */

struct fc_request {
	char method[8];                 /* GET, PUT, PATCH */
	char path[FC_PATH_MAX];         /* without a query */
	const char *body;               /* into the buffer parsed; NULL without one */
	size_t body_len;
	bool close;                     /* the client asked to close after the answer */
	bool expect_continue;           /* "Expect: 100-continue" */
};

enum fc_parse {
	FC_PARSE_MORE,                  /* not a whole request yet */
	FC_PARSE_HEAD,                  /* the head is whole, the body is not: a 100-continue is due */
	FC_PARSE_DONE,                  /* a request, *used bytes long */
	FC_PARSE_ERROR,                 /* *status and err say why; the connection closes */
};

/* Reads one request from buf[0..len). */
enum fc_parse fc_http_parse(const char *buf, size_t len, struct fc_request *req, size_t *used, int *status,
			    char *err, size_t errlen);

/* An answer: a status and, unless 204, a JSON body. */
struct fc_response {
	int status;
	char *body;                     /* malloc'd, or NULL */
};
void fc_response_free(struct fc_response *r);
/* The bytes of the whole answer in a malloc'd buffer (*len of them). */
MUST_CHECK int fc_http_format(const struct fc_response *r, char **out, size_t *len);

/* ---- the microVM (fc_api.c) ---- */

struct fc_options {
	const char *id;                 /* the instance ID; NULL: "anonymous-instance" */
	bool nested;                    /* expose the extensions unless machine-config says otherwise */
	struct vmm_options vmm;         /* how the VMM runs once started */
};

struct fc;

MUST_CHECK int fc_create(struct fc **out, const struct fc_options *o, char *err, size_t errlen);
/* Frees the front end and, if one was started, its VMM (after vmm_run). */
void fc_destroy(struct fc *fc);

/* Answers one request; any thread, one at a time or many. */
void fc_handle(struct fc *fc, const struct fc_request *req, struct fc_response *resp);
/* A whole configuration in one JSON document, as Firecracker's
 * --config-file takes it ("boot-source", "drives", "machine-config", ...),
 * then InstanceStart. 0, or -EINVAL with err. */
MUST_CHECK int fc_load_config(struct fc *fc, const char *text, size_t len, char *err, size_t errlen);
/* The VMM once InstanceStart has built the machine (the caller runs it:
 * vmm_run), else NULL. */
struct vmm *fc_started(struct fc *fc);

/* ---- the server (fc_http.c) ---- */

struct fc_server;
/* Listens on path (a stale socket replaced) and answers on a thread of its own. */
MUST_CHECK int fc_server_start(struct fc_server **out, const char *path, struct fc *fc);
void fc_server_stop(struct fc_server *s);

#endif

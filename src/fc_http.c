/* The HTTP side of the Firecracker API: a strict, bounded reader of
 * HTTP/1.1 requests (request line, the headers that matter, a body of at
 * most FC_BODY_MAX bytes given by Content-Length), the answer's bytes, and
 * the Unix socket server whose thread answers each request in turn. */
#include "fc.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((format(printf, 5, 6)))
static enum fc_parse fc_http_fail(int *status, int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	*status = code;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return FC_PARSE_ERROR;
}

/* Finds "\r\n\r\n" (or "\n\n") ending the head; its length with them, or 0. */
static size_t fc_head_len(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static bool fc_token_char(char c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* The request line: METHOD SP PATH SP HTTP/1.x */
static enum fc_parse fc_request_line(const char *line, size_t n, struct fc_request *req, int *status, char *err,
				     size_t errlen)
{
	const char *sp1 = memchr(line, ' ', n), *sp2, *q;
	size_t plen;

	if (!sp1 || sp1 == line || (size_t)(sp1 - line) >= sizeof(req->method))
		return fc_http_fail(status, 400, err, errlen, "Invalid HTTP request line.");
	memcpy(req->method, line, (size_t)(sp1 - line));
	req->method[sp1 - line] = 0;
	for (const char *c = req->method; *c; c++)
		if (*c < 'A' || *c > 'Z')
			return fc_http_fail(status, 400, err, errlen, "Invalid HTTP method.");
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line));
	if (!sp2 || sp2 == sp1 + 1)
		return fc_http_fail(status, 400, err, errlen, "Invalid HTTP request line.");
	if ((size_t)(line + n - (sp2 + 1)) != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) && memcmp(sp2 + 1, "HTTP/1.0", 8)))
		return fc_http_fail(status, 400, err, errlen, "Unsupported HTTP version.");
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	plen = (size_t)((q ? q : sp2) - (sp1 + 1));
	if (plen >= sizeof(req->path))
		return fc_http_fail(status, 400, err, errlen, "The request path is longer than %d bytes.",
				    FC_PATH_MAX - 1);
	memcpy(req->path, sp1 + 1, plen);
	req->path[plen] = 0;
	if (req->path[0] != '/')
		return fc_http_fail(status, 400, err, errlen, "The request path must start with '/'.");
	for (const char *c = req->path; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return fc_http_fail(status, 400, err, errlen, "Invalid character in the request path.");
	req->close = !memcmp(sp2 + 1, "HTTP/1.0", 8);
	return FC_PARSE_DONE;
}

enum fc_parse fc_http_parse(const char *buf, size_t len, struct fc_request *req, size_t *used, int *status,
			    char *err, size_t errlen)
{
	size_t head = fc_head_len(buf, MIN(len, (size_t)FC_HEADERS_MAX)), pos, content_length = 0;
	bool have_length = false;
	enum fc_parse r;

	memset(req, 0, sizeof(*req));
	*used = 0;
	if (!head) {
		if (len >= FC_HEADERS_MAX)
			return fc_http_fail(status, 400, err, errlen, "The request headers are longer than %d bytes.",
					    FC_HEADERS_MAX);
		return FC_PARSE_MORE;
	}
	/* Line by line; the first is the request line. */
	for (pos = 0; pos < head;) {
		const char *line = buf + pos, *nl = memchr(line, '\n', head - pos), *colon, *v;
		size_t n = (size_t)(nl - line), vn;

		pos += n + 1;
		if (n && line[n - 1] == '\r')
			n--;
		for (size_t i = 0; i < n; i++)
			if (!line[i] || ((unsigned char)line[i] < 0x20 && line[i] != '\t'))
				return fc_http_fail(status, 400, err, errlen, "Control character in the request head.");
		if (line == buf) {
			r = fc_request_line(line, n, req, status, err, errlen);
			if (r != FC_PARSE_DONE)
				return r;
			continue;
		}
		if (!n)
			break;
		colon = memchr(line, ':', n);
		if (!colon || colon == line)
			return fc_http_fail(status, 400, err, errlen, "Invalid HTTP header.");
		for (const char *c = line; c < colon; c++)
			if (!fc_token_char(*c))
				return fc_http_fail(status, 400, err, errlen, "Invalid HTTP header name.");
		v = colon + 1;
		vn = n - (size_t)(v - line);
		while (vn && (*v == ' ' || *v == '\t'))
			v++, vn--;
		while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
			vn--;
#define FC_IS(name) ((size_t)(colon - line) == sizeof(name) - 1 && !strncasecmp(line, name, sizeof(name) - 1))
#define FC_VAL(text) (vn == sizeof(text) - 1 && !strncasecmp(v, text, vn))
		if (FC_IS("Content-Length")) {
			if (have_length || !vn || vn > 9)
				return fc_http_fail(status, 400, err, errlen, "Invalid Content-Length.");
			content_length = 0;
			for (size_t i = 0; i < vn; i++) {
				if (v[i] < '0' || v[i] > '9')
					return fc_http_fail(status, 400, err, errlen, "Invalid Content-Length.");
				content_length = content_length * 10 + (size_t)(v[i] - '0');
			}
			have_length = true;
		} else if (FC_IS("Transfer-Encoding")) {
			return fc_http_fail(status, 501, err, errlen,
					    "Transfer-Encoding is not supported: send a Content-Length.");
		} else if (FC_IS("Expect")) {
			if (!FC_VAL("100-continue"))
				return fc_http_fail(status, 400, err, errlen, "Unsupported Expect header.");
			req->expect_continue = true;
		} else if (FC_IS("Connection")) {
			if (FC_VAL("close"))
				req->close = true;
			else if (FC_VAL("keep-alive"))
				req->close = false;
		}
#undef FC_IS
#undef FC_VAL
	}
	if (content_length > FC_BODY_MAX)
		return fc_http_fail(status, 413, err, errlen, "Request payload with size %zu is larger than the "
				    "limit of %d allowed by server.", content_length, FC_BODY_MAX);
	if (len - head < content_length)
		return req->expect_continue ? FC_PARSE_HEAD : FC_PARSE_MORE;
	req->body = content_length ? buf + head : NULL;
	req->body_len = content_length;
	*used = head + content_length;
	return FC_PARSE_DONE;
}

void fc_response_free(struct fc_response *r)
{
	free(r->body);
	r->body = NULL;
}

static const char *fc_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	}
	return "Unknown";
}

int fc_http_format(const struct fc_response *r, char **out, size_t *len)
{
	size_t blen = r->body ? strlen(r->body) : 0, cap = 256 + blen;
	char *b = malloc(cap);
	int n;

	if (!b)
		return -ENOMEM;
	if (r->status == 204 || !r->body)
		n = snprintf(b, cap, "HTTP/1.1 %d %s\r\nServer: Firecracker API\r\nConnection: keep-alive\r\n\r\n",
			     r->status, fc_reason(r->status));
	else
		n = snprintf(b, cap, "HTTP/1.1 %d %s\r\nServer: Firecracker API\r\nConnection: keep-alive\r\n"
			     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     r->status, fc_reason(r->status), blen, r->body);
	if (n < 0 || (size_t)n >= cap) {
		free(b);
		return -EOVERFLOW;
	}
	*out = b;
	*len = (size_t)n;
	return 0;
}

/* ---- the server ---- */

#define FC_MAX_CLIENTS  16
#define FC_CLIENT_BUF   (FC_HEADERS_MAX + FC_BODY_MAX)
/* Responses a client has not read yet: past this it is not reading, and is
 * dropped rather than let it hold the server up. */
#define FC_OUT_MAX      (256u << 10)

struct fc_client {
	int fd;
	size_t len;
	bool continued;                 /* 100 Continue sent for the request in the buffer */
	bool closing;                   /* close once the queue is out (Connection: close, an error) */
	bool drop;                      /* close now */
	char *buf;
	struct util_outq out;           /* responses not yet sent */
};

struct fc_server {
	struct util_server srv;
	struct fc *fc;
	struct fc_client clients[FC_MAX_CLIENTS];
};

static void fc_client_close(struct fc_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	util_outq_free(&c->out);
	*c = (struct fc_client){ .fd = -1 };
}

/* Sends what it can of the client's queue without waiting. */
static void fc_flush(struct fc_client *c)
{
	if (!c->drop && util_outq_flush(&c->out, c->fd) < 0)
		c->drop = true;
}

/* Queues bytes for the client and sends what its socket takes now; false
 * (and the client to be dropped) when it has left too much unread. */
static bool fc_queue(struct fc_client *c, const char *p, size_t len)
{
	int r;

	if (c->drop)
		return false;
	r = util_outq_put(&c->out, FC_OUT_MAX, p, len, 0);
	if (r == -ENOBUFS)
		fprintf(stderr, "nestvm: Firecracker API client dropped: it left %zu bytes of responses unread\n",
			util_outq_pending(&c->out));
	if (r < 0) {
		c->drop = true;
		return false;
	}
	fc_flush(c);
	return !c->drop;
}

static bool fc_send(struct fc_client *c, const struct fc_response *r)
{
	char *out;
	size_t len;
	bool ok;

	if (fc_http_format(r, &out, &len) < 0)
		return false;
	ok = fc_queue(c, out, len);
	free(out);
	return ok;
}

/* Answers every whole request in the buffer; false when the client is to
 * go once its responses are out. */
static bool fc_client_serve(struct fc_server *s, struct fc_client *c)
{
	for (;;) {
		struct fc_request req;
		struct fc_response resp = { 0 };
		char err[256];
		size_t used;
		int status;
		bool ok;

		switch (fc_http_parse(c->buf, c->len, &req, &used, &status, err, sizeof(err))) {
		case FC_PARSE_MORE:
			return true;
		case FC_PARSE_HEAD:
			if (!c->continued) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

				c->continued = true;
				return fc_queue(c, cont, sizeof(cont) - 1);
			}
			return true;
		case FC_PARSE_ERROR: {
			struct json j;

			json_init(&j, NULL, false);
			json_object_begin(&j);
			json_kv_string(&j, "fault_message", err);
			json_object_end(&j);
			resp.status = status;
			resp.body = json_finish(&j) == 0 ? strdup(json_buf(&j)) : NULL;
			json_free(&j);
			fc_send(c, &resp);
			fc_response_free(&resp);
			return false;
		}
		case FC_PARSE_DONE:
			break;
		}
		fc_handle(s->fc, &req, &resp);
		ok = fc_send(c, &resp) && !req.close;
		fc_response_free(&resp);
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		c->continued = false;
		if (!ok)
			return false;
	}
}

static void fc_client_read(struct fc_server *s, struct fc_client *c)
{
	ssize_t n;

	if (c->len == FC_CLIENT_BUF) {
		c->drop = true;         /* cannot happen: the parser refuses first */
		return;
	}
	n = recv(c->fd, c->buf + c->len, FC_CLIENT_BUF - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		/* Its end: what it asked for still goes out, then it closes. */
		c->closing = true;
		return;
	}
	c->len += (size_t)n;
	if (!fc_client_serve(s, c))
		c->closing = true;
}

static void fc_accept(struct fc_server *s, int fd)
{
	for (int i = 0; i < FC_MAX_CLIENTS; i++) {
		struct fc_client *c = &s->clients[i];

		if (c->fd >= 0)
			continue;
		*c = (struct fc_client){ .fd = -1 };
		c->buf = malloc(FC_CLIENT_BUF);
		if (!c->buf)
			break;
		c->fd = fd;
		return;
	}
	close(fd);
}

/* One thread serves every client and never waits on any one of them: its
 * sockets are non-blocking, and a response the client does not take now
 * waits in its queue (bounded by FC_OUT_MAX) until poll says it can go. */
static void *fc_server_thread(void *arg)
{
	struct fc_server *s = arg;

	sandbox_enter(SANDBOX_ROLE_FC_API);
	for (;;) {
		short events[FC_MAX_CLIENTS], revents[FC_MAX_CLIENTS];
		int fds[FC_MAX_CLIENTS], fd;

		for (int i = 0; i < FC_MAX_CLIENTS; i++) {
			struct fc_client *c = &s->clients[i];

			fds[i] = c->fd;
			events[i] = (short)((c->closing ? 0 : POLLIN) | (util_outq_pending(&c->out) ? POLLOUT : 0));
		}
		if (util_serve_poll(s->srv.wake[0], s->srv.fd, fds, events, FC_MAX_CLIENTS, SOCK_NONBLOCK, &fd,
				    revents) < 0)
			return NULL;
		if (fd >= 0)
			fc_accept(s, fd);
		for (int i = 0; i < FC_MAX_CLIENTS; i++) {
			struct fc_client *c = &s->clients[i];

			if (c->fd < 0 || !revents[i])
				continue;
			if (revents[i] & POLLOUT)
				fc_flush(c);
			if (!c->closing && (revents[i] & (POLLIN | POLLHUP | POLLERR)))
				fc_client_read(s, c);
			if (c->closing && (!util_outq_pending(&c->out) || (revents[i] & (POLLHUP | POLLERR))))
				c->drop = true;
			if (c->drop)
				fc_client_close(c);
		}
	}
}

int fc_server_start(struct fc_server **out, const char *path, struct fc *fc)
{
	struct fc_server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->fc = fc;
	for (int i = 0; i < FC_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	r = util_server_start(&s->srv, path, fc_server_thread, s, "nestvm-fcapi");
	if (r < 0) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void fc_server_stop(struct fc_server *s)
{
	if (!s)
		return;
	util_server_stop(&s->srv);
	for (int i = 0; i < FC_MAX_CLIENTS; i++)
		fc_client_close(&s->clients[i]);
	free(s);
}

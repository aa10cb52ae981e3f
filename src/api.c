/* The control API: the strict request reader, the dispatcher that always
 * answers with one reply line, the socket server thread and the client. */
#include "api.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the reader ---- */

struct api_reader {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int api_rerr(struct api_reader *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->err, r->errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < r->errlen)
		snprintf(r->err + n, r->errlen - (size_t)n, " at byte %zu", r->pos);
	return -EINVAL;
}

static void api_ws(struct api_reader *r)
{
	while (r->pos < r->len && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' || r->s[r->pos] == '\r'))
		r->pos++;
}

static int api_hex4(struct api_reader *r, unsigned int *out)
{
	unsigned int v = 0;

	if (r->len - r->pos < 4)
		return api_rerr(r, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = r->s[r->pos++];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned int)(c - 'A' + 10);
		else
			return api_rerr(r, "bad hex digit in \\u escape");
	}
	*out = v;
	return 0;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t api_utf8_len(const unsigned char *p, size_t n)
{
	size_t need;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		need = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

static int api_put(struct api_reader *r, char *out, size_t cap, size_t *o, const char *b, size_t n)
{
	if (*o + n >= cap)
		return api_rerr(r, "string longer than %zu bytes", cap - 1);
	memcpy(out + *o, b, n);
	*o += n;
	return 0;
}

static int api_string(struct api_reader *r, char *out, size_t cap)
{
	size_t o = 0;
	int e;

	r->pos++;       /* the opening quote */
	for (;;) {
		unsigned char c;

		if (r->pos >= r->len)
			return api_rerr(r, "unterminated string");
		c = (unsigned char)r->s[r->pos];
		if (c == '"') {
			r->pos++;
			out[o] = 0;
			return 0;
		}
		if (c < 0x20)
			return api_rerr(r, "control character in a string");
		if (c != '\\') {
			size_t n = api_utf8_len((const unsigned char *)r->s + r->pos, r->len - r->pos);

			if (!n)
				return api_rerr(r, "invalid UTF-8");
			if ((e = api_put(r, out, cap, &o, r->s + r->pos, n)) < 0)
				return e;
			r->pos += n;
			continue;
		}
		if (++r->pos >= r->len)
			return api_rerr(r, "unterminated escape");
		c = (unsigned char)r->s[r->pos++];
		{
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			const char *f = c ? strchr(from, c) : NULL;
			unsigned int u, lo;
			char b[4];
			size_t n;

			if (f) {
				if ((e = api_put(r, out, cap, &o, &to[f - from], 1)) < 0)
					return e;
				continue;
			}
			if (c != 'u')
				return api_rerr(r, "unknown escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
			if ((e = api_hex4(r, &u)) < 0)
				return e;
			if (u >= 0xdc00 && u <= 0xdfff)
				return api_rerr(r, "lone low surrogate");
			if (u >= 0xd800 && u <= 0xdbff) {
				if (r->len - r->pos < 2 || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u')
					return api_rerr(r, "lone high surrogate");
				r->pos += 2;
				if ((e = api_hex4(r, &lo)) < 0)
					return e;
				if (lo < 0xdc00 || lo > 0xdfff)
					return api_rerr(r, "bad surrogate pair");
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (u == 0)
				return api_rerr(r, "\\u0000 is not allowed");
			if (u < 0x80) {
				b[0] = (char)u;
				n = 1;
			} else if (u < 0x800) {
				b[0] = (char)(0xc0 | u >> 6);
				b[1] = (char)(0x80 | (u & 0x3f));
				n = 2;
			} else if (u < 0x10000) {
				b[0] = (char)(0xe0 | u >> 12);
				b[1] = (char)(0x80 | ((u >> 6) & 0x3f));
				b[2] = (char)(0x80 | (u & 0x3f));
				n = 3;
			} else {
				b[0] = (char)(0xf0 | u >> 18);
				b[1] = (char)(0x80 | ((u >> 12) & 0x3f));
				b[2] = (char)(0x80 | ((u >> 6) & 0x3f));
				b[3] = (char)(0x80 | (u & 0x3f));
				n = 4;
			}
			if ((e = api_put(r, out, cap, &o, b, n)) < 0)
				return e;
		}
	}
}

static bool api_word(struct api_reader *r, const char *w)
{
	size_t n = strlen(w);

	if (r->len - r->pos < n || memcmp(r->s + r->pos, w, n))
		return false;
	r->pos += n;
	return true;
}

static int api_value(struct api_reader *r, struct api_member *m)
{
	char c;

	if (r->pos >= r->len)
		return api_rerr(r, "a value is missing");
	c = r->s[r->pos];
	if (c == '"') {
		m->type = API_STRING;
		return api_string(r, m->str, sizeof(m->str));
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		bool neg = c == '-';
		uint64_t v = 0;
		size_t start;

		if (neg)
			r->pos++;
		start = r->pos;
		while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9') {
			if (v > (UINT64_C(1) << 62) / 10)
				return api_rerr(r, "number out of range");
			v = v * 10 + (uint64_t)(r->s[r->pos++] - '0');
		}
		if (r->pos == start || (r->s[start] == '0' && r->pos - start > 1))
			return api_rerr(r, "malformed number");
		if (r->pos < r->len && (r->s[r->pos] == '.' || r->s[r->pos] == 'e' || r->s[r->pos] == 'E'))
			return api_rerr(r, "only whole numbers are accepted");
		m->type = API_INT;
		m->num = neg ? -(int64_t)v : (int64_t)v;
		return 0;
	}
	if (api_word(r, "true") || api_word(r, "false")) {
		m->type = API_BOOL;
		m->b = r->s[r->pos - 1] == 'e' && r->s[r->pos - 2] == 'u';
		return 0;
	}
	if (api_word(r, "null")) {
		m->type = API_NULL;
		return 0;
	}
	if (c == '{' || c == '[')
		return api_rerr(r, "nested objects and arrays are not accepted");
	return api_rerr(r, "unexpected character");
}

int api_parse_object(const char *s, size_t len, struct api_object *o, char *err, size_t errlen)
{
	struct api_reader r = { .s = s, .len = len, .err = err, .errlen = errlen };
	int e;

	o->n = 0;
	if (len > API_LINE_MAX)
		return api_rerr(&r, "request longer than %d bytes", API_LINE_MAX);
	api_ws(&r);
	if (r.pos >= len || s[r.pos] != '{')
		return api_rerr(&r, "expected a JSON object");
	r.pos++;
	api_ws(&r);
	if (r.pos < len && s[r.pos] == '}') {
		r.pos++;
		goto end;
	}
	for (;;) {
		struct api_member *m;
		char key[API_KEY_MAX];

		api_ws(&r);
		if (r.pos >= len || s[r.pos] != '"')
			return api_rerr(&r, "expected a member name");
		if ((e = api_string(&r, key, sizeof(key))) < 0)
			return e;
		for (unsigned int i = 0; i < o->n; i++)
			if (!strcmp(o->m[i].key, key))
				return api_rerr(&r, "member \"%s\" given twice", key);
		if (o->n == API_MAX_MEMBERS)
			return api_rerr(&r, "more than %d members", API_MAX_MEMBERS);
		m = &o->m[o->n];
		memset(m, 0, sizeof(*m));
		strcpy(m->key, key);
		api_ws(&r);
		if (r.pos >= len || s[r.pos] != ':')
			return api_rerr(&r, "expected ':'");
		r.pos++;
		api_ws(&r);
		if ((e = api_value(&r, m)) < 0)
			return e;
		o->n++;
		api_ws(&r);
		if (r.pos < len && s[r.pos] == ',') {
			r.pos++;
			continue;
		}
		if (r.pos < len && s[r.pos] == '}') {
			r.pos++;
			break;
		}
		return api_rerr(&r, "expected ',' or '}'");
	}
end:
	api_ws(&r);
	if (r.pos != len)
		return api_rerr(&r, "text after the object");
	return 0;
}

const struct api_member *api_get(const struct api_object *o, const char *key)
{
	for (unsigned int i = 0; i < o->n; i++)
		if (!strcmp(o->m[i].key, key))
			return &o->m[i];
	return NULL;
}

static const char *const api_cmds[] = { "status", "pause", "resume", "powerbutton", "stop", "setmemory", "save",
					"checkpoint", "migrate" };
#define API_CMD_LIST "status, pause, resume, powerbutton, stop, setmemory, save, checkpoint, migrate"

/* The members each command takes besides "cmd". */
static const char *const api_args[][3] = {
	[API_SETMEMORY] = { "bytes" },
	[API_SAVE] = { "path", "keepRunning" },
	[API_CHECKPOINT] = { "dir" },
	[API_MIGRATE] = { "to" },
};

static bool api_takes(enum api_cmd c, const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(api_args[0]) && api_args[c][i]; i++)
		if (!strcmp(api_args[c][i], key))
			return true;
	return false;
}

const char *api_cmd_name(enum api_cmd c)
{
	return (unsigned int)c < ARRAY_SIZE(api_cmds) ? api_cmds[c] : "?";
}

int api_parse_request(const char *s, size_t len, struct api_request *req, char *err, size_t errlen)
{
	struct api_object *o = malloc(sizeof(*o));
	const struct api_member *m, *bytes;
	int r = -EINVAL;
	size_t i;

	if (!o) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(req, 0, sizeof(*req));
	if (api_parse_object(s, len, o, err, errlen) < 0)
		goto out;
	m = api_get(o, "cmd");
	if (!m || m->type != API_STRING) {
		snprintf(err, errlen, "a request needs \"cmd\" with a string: " API_CMD_LIST);
		goto out;
	}
	for (i = 0; i < ARRAY_SIZE(api_cmds); i++)
		if (!strcmp(m->str, api_cmds[i]))
			break;
	if (i == ARRAY_SIZE(api_cmds)) {
		snprintf(err, errlen, "unknown command \"%.64s\" (" API_CMD_LIST ")", m->str);
		goto out;
	}
	req->cmd = (enum api_cmd)i;
	bytes = api_get(o, "bytes");
	for (unsigned int k = 0; k < o->n; k++)
		if (strcmp(o->m[k].key, "cmd") && !api_takes(req->cmd, o->m[k].key)) {
			snprintf(err, errlen, "unknown member \"%s\" (\"%s\" takes %s)", o->m[k].key, api_cmds[i],
				 req->cmd == API_SETMEMORY ? "\"cmd\" and \"bytes\"" :
				 req->cmd == API_SAVE ? "\"cmd\", \"path\" and \"keepRunning\"" :
				 req->cmd == API_CHECKPOINT ? "\"cmd\" and \"dir\"" :
				 req->cmd == API_MIGRATE ? "\"cmd\" and \"to\"" : "only \"cmd\"");
			goto out;
		}
	if (req->cmd == API_MIGRATE) {
		const struct api_member *t = api_get(o, "to");

		if (!t || t->type != API_STRING || !t->str[0]) {
			snprintf(err, errlen, "migrate needs \"to\" with an address (unix:PATH or tcp:HOST:PORT)");
			goto out;
		}
		snprintf(req->path, sizeof(req->path), "%s", t->str);
	}
	if (req->cmd == API_CHECKPOINT) {
		const struct api_member *d = api_get(o, "dir");

		if (!d || d->type != API_STRING || d->str[0] != '/') {
			snprintf(err, errlen, "checkpoint needs \"dir\" with an absolute directory name");
			goto out;
		}
		snprintf(req->path, sizeof(req->path), "%s", d->str);
	}
	if (req->cmd == API_SAVE) {
		const struct api_member *p = api_get(o, "path"), *k = api_get(o, "keepRunning");

		if ((p && (p->type != API_STRING || !p->str[0] || p->str[0] != '/')) ||
		    (k && k->type != API_BOOL)) {
			snprintf(err, errlen, "save takes \"path\" with an absolute file name and \"keepRunning\" "
				 "with true or false");
			goto out;
		}
		if (p)
			snprintf(req->path, sizeof(req->path), "%s", p->str);
		req->keep_running = k && k->b;
	}
	if (req->cmd == API_SETMEMORY) {
		if (!bytes || bytes->type != API_INT || bytes->num <= 0) {
			snprintf(err, errlen, "setmemory needs \"bytes\" with a whole number above 0");
			goto out;
		}
		req->bytes = (uint64_t)bytes->num;
	}
	r = 0;
out:
	free(o);
	return r;
}

void api_handle_line(const char *s, size_t len, api_handler_fn h, void *opaque, struct json *reply)
{
	char err[256];
	struct api_request req;

	json_object_begin(reply);
	if (api_parse_request(s, len, &req, err, sizeof(err)) < 0) {
		json_kv_bool(reply, "ok", false);
		json_kv_string(reply, "error", err);
	} else {
		h(opaque, &req, reply);
	}
	json_object_end(reply);
}

/* ---- the server ---- */

#define API_MAX_CLIENTS 16
/* Replies a client has not read yet: past this it is not reading, and is
 * dropped rather than let it hold the server up. */
#define API_OUT_MAX     (64u << 10)

struct api_client {
	int fd;
	size_t len;
	bool discard;           /* an overlong line: skip to its end */
	bool eof;               /* it sent all it will: close once its replies are out */
	bool drop;              /* close it once this round is over */
	char buf[API_LINE_MAX + 1];
	struct util_outq out;   /* replies not yet sent */
};

struct api_server {
	struct util_server srv;
	api_handler_fn h;
	void *opaque;
	struct api_client clients[API_MAX_CLIENTS];
};

static void api_client_close(struct api_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	util_outq_free(&c->out);
	*c = (struct api_client){ .fd = -1 };
}

/* Sends what it can of the client's queue without waiting. */
static void api_flush(struct api_client *c)
{
	if (!c->drop && util_outq_flush(&c->out, c->fd) < 0)
		c->drop = true;         /* gone: a client that went away gets nothing */
}

/* Queues one reply line and sends what the socket takes now. */
static void api_send_line(struct api_client *c, const char *text)
{
	int r;

	if (c->drop)
		return;
	r = util_outq_put(&c->out, API_OUT_MAX, text, strlen(text), '\n');
	if (r == -ENOBUFS)
		fprintf(stderr, "nestvm: API client dropped: it sent requests but left %zu bytes of replies unread\n",
			util_outq_pending(&c->out));
	if (r < 0) {
		c->drop = true;
		return;
	}
	api_flush(c);
}

static void api_client_line(struct api_server *s, struct api_client *c, const char *line, size_t len)
{
	struct json j;

	json_init(&j, NULL, false);
	api_handle_line(line, len, s->h, s->opaque, &j);
	if (json_finish(&j) == 0)
		api_send_line(c, json_buf(&j));
	else
		api_send_line(c, "{\"ok\":false,\"error\":\"internal error writing the reply\"}");
	json_free(&j);
}

/* Reads what the client sent; false when it is to be closed. */
static bool api_client_read(struct api_server *s, struct api_client *c)
{
	char tmp[1024];
	ssize_t n = recv(c->fd, tmp, sizeof(tmp), MSG_DONTWAIT);

	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return true;
	if (n == 0)
		c->eof = true;
	if (n <= 0)
		return n == 0;
	for (ssize_t i = 0; i < n && !c->drop; i++) {
		if (tmp[i] == '\n') {
			if (!c->discard)
				api_client_line(s, c, c->buf, c->len);
			c->discard = false;
			c->len = 0;
			continue;
		}
		if (c->discard)
			continue;
		if (c->len == API_LINE_MAX) {
			char msg[128];

			snprintf(msg, sizeof(msg), "{\"ok\":false,\"error\":\"request longer than %d bytes\"}",
				 API_LINE_MAX);
			api_send_line(c, msg);
			c->discard = true;
			c->len = 0;
			continue;
		}
		c->buf[c->len++] = tmp[i];
	}
	return !c->drop;
}

/* A new client, in a free slot; with none free it is told so, if its
 * socket takes the line at once, and closed. */
static void api_accept(struct api_server *s, int fd)
{
	static const char full[] = "{\"ok\":false,\"error\":\"too many clients\"}\n";

	for (int i = 0; i < API_MAX_CLIENTS; i++)
		if (s->clients[i].fd < 0) {
			s->clients[i] = (struct api_client){ .fd = fd };
			return;
		}
	(void)!send(fd, full, sizeof(full) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

/* One thread serves every client and never waits on any one of them: its
 * sockets are non-blocking, and a reply the client does not take now waits
 * in its queue (bounded by API_OUT_MAX) until poll says it can go. */
static void *api_server_thread(void *arg)
{
	struct api_server *s = arg;

	sandbox_enter(SANDBOX_ROLE_API);
	for (;;) {
		short events[API_MAX_CLIENTS], revents[API_MAX_CLIENTS];
		int fds[API_MAX_CLIENTS], fd;

		for (int i = 0; i < API_MAX_CLIENTS; i++) {
			fds[i] = s->clients[i].fd;
			events[i] = (short)((s->clients[i].eof ? 0 : POLLIN) | (util_outq_pending(&s->clients[i].out) ? POLLOUT : 0));
		}
		if (util_serve_poll(s->srv.wake[0], s->srv.fd, fds, events, API_MAX_CLIENTS, SOCK_NONBLOCK, &fd,
				    revents) < 0)
			return NULL;
		if (fd >= 0)
			api_accept(s, fd);
		for (int i = 0; i < API_MAX_CLIENTS; i++) {
			struct api_client *c = &s->clients[i];

			if (c->fd < 0 || !revents[i])
				continue;
			if (revents[i] & POLLOUT)
				api_flush(c);
			if (!c->eof && (revents[i] & (POLLIN | POLLHUP | POLLERR)) && !api_client_read(s, c))
				c->drop = true;
			if ((c->eof && revents[i] & (POLLHUP | POLLERR)) || (c->eof && !util_outq_pending(&c->out)))
				c->drop = true;
			if (c->drop)
				api_client_close(c);
		}
	}
}

int api_server_start(struct api_server **out, const char *path, api_handler_fn h, void *opaque)
{
	struct api_server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->h = h;
	s->opaque = opaque;
	for (int i = 0; i < API_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	/* A socket left by a VMM that died answers nobody: replace it. The
	 * caller holds the VM's run lock, so no live VMM owns it. */
	r = util_server_start(&s->srv, path, api_server_thread, s, "nestvm-api");
	if (r < 0) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	util_server_stop(&s->srv);
	for (int i = 0; i < API_MAX_CLIENTS; i++)
		api_client_close(&s->clients[i]);
	free(s);
}

/* ---- the client ---- */

static int api_call_line(const char *path, const char *req, struct api_object *reply, int timeout_ms);

int api_call(const char *path, const char *cmd, struct api_object *reply, int timeout_ms)
{
	char req[128];

	snprintf(req, sizeof(req), "{\"cmd\":\"%s\"}\n", cmd);
	return api_call_line(path, req, reply, timeout_ms);
}

int api_call_request(const char *path, const struct api_request *r, struct api_object *reply, int timeout_ms)
{
	char req[128];

	if (r->cmd == API_SETMEMORY) {
		snprintf(req, sizeof(req), "{\"cmd\":\"%s\",\"bytes\":%llu}\n", api_cmd_name(r->cmd),
			 (unsigned long long)r->bytes);
	} else if (r->cmd == API_SAVE || r->cmd == API_CHECKPOINT || r->cmd == API_MIGRATE) {
		struct json j;
		char *line;
		int rc;

		json_init(&j, NULL, false);
		json_object_begin(&j);
		json_kv_string(&j, "cmd", api_cmd_name(r->cmd));
		if (r->cmd == API_CHECKPOINT) {
			json_kv_string(&j, "dir", r->path);
		} else if (r->cmd == API_MIGRATE) {
			json_kv_string(&j, "to", r->path);
		} else {
			if (r->path[0])
				json_kv_string(&j, "path", r->path);
			json_kv_bool(&j, "keepRunning", r->keep_running);
		}
		json_object_end(&j);
		line = json_finish(&j) == 0 ? malloc(strlen(json_buf(&j)) + 2) : NULL;
		if (line)
			sprintf(line, "%s\n", json_buf(&j));
		json_free(&j);
		if (!line)
			return -ENOMEM;
		rc = api_call_line(path, line, reply, timeout_ms);
		free(line);
		return rc;
	} else
		snprintf(req, sizeof(req), "{\"cmd\":\"%s\"}\n", api_cmd_name(r->cmd));
	return api_call_line(path, req, reply, timeout_ms);
}

static int api_call_line(const char *path, const char *req, struct api_object *reply, int timeout_ms)
{
	char line[API_LINE_MAX + 1], err[256];
	size_t len = 0;
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_ms * 1000000;
	int fd, r;

	fd = util_unix_connect(path, SOCK_STREAM);
	if (fd < 0)
		return fd;
	if (util_write_all(fd, req, strlen(req)) < 0) {
		r = -EPIPE;
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = util_now_ns();
		ssize_t n;
		char *nl;

		if (now >= deadline) {
			r = -ETIMEDOUT;
			goto out;
		}
		r = poll(&p, 1, (int)((deadline - now) / 1000000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			r = r < 0 ? -errno : -ETIMEDOUT;
			goto out;
		}
		n = recv(fd, line + len, sizeof(line) - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = -EPROTO;
			goto out;
		}
		len += (size_t)n;
		line[len] = 0;
		nl = memchr(line, '\n', len);
		if (nl) {
			r = api_parse_object(line, (size_t)(nl - line), reply, err, sizeof(err)) < 0 ? -EPROTO : 0;
			goto out;
		}
		if (len == sizeof(line) - 1) {
			r = -EPROTO;
			goto out;
		}
	}
out:
	close(fd);
	return r;
}

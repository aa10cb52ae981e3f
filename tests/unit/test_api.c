/* Tier 1: the control API. The strict request reader on good and bad JSON,
 * and a real server on a Unix socket answering every line, garbage and
 * overlong lines included, with one reply line and staying up. */
#include "harness.h"
#include "other_user.h"
#include "api.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

HARNESS_DEFINE;

static char tmpdir[256];

static int parse(const char *s, struct api_object *o, char *err)
{
	return api_parse_object(s, strlen(s), o, err, 256);
}

static void test_parse_good(void)
{
	static struct api_object o;
	char err[256];

	CHECK_EQ(parse("{\"cmd\":\"status\"}", &o, err), 0);
	CHECK_EQ(o.n, 1);
	CHECK(!strcmp(api_get(&o, "cmd")->str, "status"));
	CHECK_EQ(parse("  { \"a\" : 1 , \"b\":-42,\"c\":true,\"d\":false,\"e\":null, \"f\":\"x\\\"\\\\\\/\\n\\t\" }\r", &o, err), 0);
	CHECK_EQ(o.n, 6);
	CHECK_EQ(api_get(&o, "b")->num, -42);
	CHECK(api_get(&o, "c")->b && !api_get(&o, "d")->b);
	CHECK_EQ(api_get(&o, "e")->type, API_NULL);
	CHECK(!strcmp(api_get(&o, "f")->str, "x\"\\/\n\t"));
	CHECK_EQ(parse("{\"u\":\"\\u00e9\\ud83d\\ude00\xc3\xa9\"}", &o, err), 0);
	CHECK(!strcmp(api_get(&o, "u")->str, "\xc3\xa9\xf0\x9f\x98\x80\xc3\xa9"));
	CHECK_EQ(parse("{}", &o, err), 0);
	CHECK_EQ(o.n, 0);
	CHECK(!api_get(&o, "cmd"));
}

static void test_parse_bad(void)
{
	static const struct { const char *s, *why; } bad[] = {
		{ "", "expected a JSON object" }, { "[]", "expected a JSON object" },
		{ "\"cmd\"", "expected a JSON object" }, { "{", "expected a member name" },
		{ "{\"cmd\"}", "expected ':'" }, { "{\"cmd\":}", "unexpected character" },
		{ "{\"cmd\":\"status\"", "expected ',' or '}'" }, { "{\"cmd\":\"status\",}", "expected a member name" },
		{ "{\"cmd\":\"status\"} x", "text after the object" }, { "{\"a\":{}}", "nested" },
		{ "{\"a\":[1]}", "nested" }, { "{\"a\":1.5}", "whole numbers" }, { "{\"a\":01}", "malformed number" },
		{ "{\"a\":-}", "malformed number" }, { "{\"a\":99999999999999999999}", "out of range" },
		{ "{\"a\":tru}", "unexpected character" }, { "{\"a\":\"x}", "unterminated string" },
		{ "{\"a\":\"\\q\"}", "unknown escape" }, { "{\"a\":\"\\u12\"}", "bad hex digit" },
		{ "{\"a\":\"\\ud800\"}", "lone high surrogate" }, { "{\"a\":\"\\udc00\"}", "lone low surrogate" },
		{ "{\"a\":\"\\u0000\"}", "\\u0000" }, { "{\"a\":\"\x01\"}", "control character" },
		{ "{\"a\":\"\xff\"}", "invalid UTF-8" }, { "{\"a\":\"\xc0\xaf\"}", "invalid UTF-8" },
		{ "{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8" }, { "{\"a\":1,\"a\":2}", "given twice" },
		{ "{'a':1}", "expected a member name" },
	};
	static struct api_object o;
	char err[256];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = 0;
		if (parse(bad[i].s, &o, err) != -EINVAL)
			FAILF("accepted #%zu: %s", i, bad[i].s);
		if (!strstr(err, bad[i].why) || !strstr(err, " at byte "))
			FAILF("#%zu '%s': error '%s' does not say '%s' at a byte", i, bad[i].s, err, bad[i].why);
	}
	/* Bounded: a long key, a long string, many members, a long line. */
	{
		static char s[API_LINE_MAX + 64];
		size_t n = 0;

		n += (size_t)snprintf(s, sizeof(s), "{\"%040d\":1}", 0);
		CHECK_EQ(parse(s, &o, err), -EINVAL);
		CHECK(strstr(err, "string longer than 31 bytes"));
		n = (size_t)snprintf(s, sizeof(s), "{\"a\":\"");
		memset(s + n, 'x', 1100);
		strcpy(s + n + 1100, "\"}");
		CHECK_EQ(parse(s, &o, err), -EINVAL);
		CHECK(strstr(err, "string longer than 1023 bytes"));
		n = (size_t)snprintf(s, sizeof(s), "{");
		for (int i = 0; i < 17; i++)
			n += (size_t)snprintf(s + n, sizeof(s) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
		strcpy(s + n, "}");
		CHECK_EQ(parse(s, &o, err), -EINVAL);
		CHECK(strstr(err, "more than 16 members"));
		memset(s, ' ', sizeof(s) - 1);
		s[sizeof(s) - 1] = 0;
		CHECK_EQ(parse(s, &o, err), -EINVAL);
		CHECK(strstr(err, "longer than 4096"));
	}
}

static void test_requests(void)
{
	struct api_request c;
	char err[256];

	CHECK_EQ(api_parse_request("{\"cmd\":\"pause\"}", 15, &c, err, sizeof(err)), 0);
	CHECK_EQ(c.cmd, API_PAUSE);
	CHECK_EQ(api_parse_request("{\"cmd\":\"powerbutton\"}", 21, &c, err, sizeof(err)), 0);
	CHECK_EQ(c.cmd, API_POWERBUTTON);
	CHECK_EQ(api_parse_request("{\"cmd\":\"reboot\"}", 16, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "unknown command \"reboot\""));
	CHECK_EQ(api_parse_request("{\"cmd\":1}", 9, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "needs \"cmd\""));
	CHECK_EQ(api_parse_request("{\"cmd\":\"stop\",\"force\":true}", 27, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "unknown member \"force\""));
	/* The bytes after len are not read: "{}" of a longer buffer. */
	CHECK_EQ(api_parse_request("{\"cmd\":\"stop\"}garbage", 14, &c, err, sizeof(err)), 0);
	CHECK_EQ(c.cmd, API_STOP);
}

#define REQ(s, c) api_parse_request(s, strlen(s), c, err, sizeof(err))

static void test_setmemory_requests(void)
{
	struct api_request c;
	char err[256];

	CHECK_EQ(REQ("{\"cmd\":\"setmemory\",\"bytes\":1073741824}", &c), 0);
	CHECK_EQ(c.cmd, API_SETMEMORY);
	CHECK_EQ(c.bytes, 1073741824);
	CHECK_STR(api_cmd_name(c.cmd), "setmemory");
	/* Missing, of the wrong type, zero or negative. */
	CHECK_EQ(REQ("{\"cmd\":\"setmemory\"}", &c), -EINVAL);
	CHECK(strstr(err, "setmemory needs \"bytes\""));
	CHECK_EQ(REQ("{\"cmd\":\"setmemory\",\"bytes\":\"1G\"}", &c), -EINVAL);
	CHECK(strstr(err, "setmemory needs \"bytes\""));
	CHECK_EQ(REQ("{\"cmd\":\"setmemory\",\"bytes\":0}", &c), -EINVAL);
	CHECK_EQ(REQ("{\"cmd\":\"setmemory\",\"bytes\":-4096}", &c), -EINVAL);
	CHECK_EQ(REQ("{\"cmd\":\"setmemory\",\"bytes\":99999999999999999999999}", &c), -EINVAL);
	CHECK(strstr(err, "out of range"));
	/* Only setmemory takes bytes, and it takes nothing else. */
	CHECK_EQ(REQ("{\"cmd\":\"pause\",\"bytes\":4096}", &c), -EINVAL);
	CHECK(strstr(err, "unknown member \"bytes\""));
	CHECK_EQ(REQ("{\"cmd\":\"setmemory\",\"bytes\":4096,\"now\":true}", &c), -EINVAL);
	CHECK(strstr(err, "unknown member \"now\""));
	/* The member order does not matter. */
	CHECK_EQ(REQ("{\"bytes\":8192,\"cmd\":\"setmemory\"}", &c), 0);
	CHECK_EQ(c.bytes, 8192);
}

static void test_save_requests(void)
{
	struct api_request c;
	char err[256];

	CHECK_EQ(REQ("{\"cmd\":\"save\"}", &c), 0);
	CHECK_EQ(c.cmd, API_SAVE);
	CHECK(c.path[0] == 0);
	CHECK(!c.keep_running);
	CHECK_EQ(REQ("{\"cmd\":\"save\",\"path\":\"/tmp/a.state\",\"keepRunning\":true}", &c), 0);
	CHECK(!strcmp(c.path, "/tmp/a.state"));
	CHECK(c.keep_running);
	/* A relative or empty path, a flag that is no flag, another member. */
	CHECK_EQ(REQ("{\"cmd\":\"save\",\"path\":\"a.state\"}", &c), -EINVAL);
	CHECK(strstr(err, "absolute file name"));
	CHECK_EQ(REQ("{\"cmd\":\"save\",\"path\":\"\"}", &c), -EINVAL);
	CHECK_EQ(REQ("{\"cmd\":\"save\",\"keepRunning\":1}", &c), -EINVAL);
	CHECK_EQ(REQ("{\"cmd\":\"save\",\"bytes\":1}", &c), -EINVAL);
	CHECK(strstr(err, "unknown member \"bytes\""));
	CHECK_EQ(REQ("{\"cmd\":\"stop\",\"path\":\"/x\"}", &c), -EINVAL);
}

static int calls;

static uint64_t last_bytes;

static void handler(void *opaque, const struct api_request *req, struct json *j)
{
	(void)opaque;
	calls++;
	if (req->cmd == API_SETMEMORY)
		last_bytes = req->bytes;
	json_kv_bool(j, "ok", true);
	json_kv_string(j, "state", req->cmd == API_PAUSE ? "Paused" : "Running");
}

/* Sends raw bytes and reads n reply lines. */
static void exchange(const char *path, const char *send_buf, size_t len, int nlines, char *reply, size_t cap)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t got = 0;
	int fd, lines = 0;

	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	for (size_t o = 0; o < len;) {
		ssize_t n = write(fd, send_buf + o, len - o);
		CHECK(n > 0);
		o += (size_t)n;
	}
	while (lines < nlines) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		CHECK(poll(&p, 1, 5000) == 1);
		n = read(fd, reply + got, cap - 1 - got);
		CHECK(n > 0);
		for (ssize_t i = 0; i < n; i++)
			lines += reply[got + (size_t)i] == '\n';
		got += (size_t)n;
	}
	reply[got] = 0;
	close(fd);
}

static void test_server(void)
{
	static char big[3 * API_LINE_MAX], reply[16384];
	static struct api_object o;
	struct api_server *s;
	char path[300];
	size_t n;

	snprintf(path, sizeof(path), "%s/api.sock", tmpdir);
	CHECK_EQ(api_server_start(&s, path, handler, NULL), 0);
	CHECK_EQ(api_call(path, "status", &o, 5000), 0);
	CHECK(api_get(&o, "ok")->b);
	CHECK(!strcmp(api_get(&o, "state")->str, "Running"));
	CHECK_EQ(api_call(path, "pause", &o, 5000), 0);
	CHECK(!strcmp(api_get(&o, "state")->str, "Paused"));
	CHECK_EQ(api_call_request(path, &(struct api_request){ .cmd = API_SETMEMORY, .bytes = 3ULL << 30 }, &o, 5000), 0);
	CHECK(api_get(&o, "ok")->b);
	CHECK_EQ(last_bytes, 3ULL << 30);
	CHECK_EQ(api_call(path, "dance", &o, 5000), 0);
	CHECK(!api_get(&o, "ok")->b);
	CHECK(strstr(api_get(&o, "error")->str, "unknown command \"dance\""));

	/* Several lines on one connection: garbage, binary, empty, good. */
	calls = 0;
	{
		static const char lines[] = "not json\n\x00\xff\x01\n\n{\"cmd\":\"status\"}\n";
		exchange(path, lines, sizeof(lines) - 1, 4, reply, sizeof(reply));
	}
	CHECK_EQ(calls, 1);
	CHECK(!strncmp(reply, "{\"ok\":false,\"error\":\"expected a JSON object at byte 0\"}\n", 55));
	CHECK(strstr(reply, "\n{\"ok\":true,\"state\":\"Running\"}\n"));

	/* An overlong line gets one error, is skipped to its end, and the
	 * connection goes on. */
	memset(big, 'x', sizeof(big));
	n = sizeof(big) - 40;
	big[n - 1] = '\n';
	strcpy(big + n, "{\"cmd\":\"status\"}\n");
	exchange(path, big, n + 17, 2, reply, sizeof(reply));
	CHECK(!strncmp(reply, "{\"ok\":false,\"error\":\"request longer than 4096 bytes\"}\n", 54));
	CHECK(strstr(reply + 54, "\"ok\":true"));

	/* A client that goes away mid-line does not hurt the server. */
	exchange(path, "{\"cmd\":\"status\"}\n{\"cmd\":", 23, 1, reply, sizeof(reply));
	CHECK_EQ(api_call(path, "status", &o, 5000), 0);
	api_server_stop(s);
	CHECK(api_call(path, "status", &o, 1000) < 0);
}

/* A client that sends requests as fast as it can and never reads a reply
 * fills its socket both ways; the server must not wait on it: another
 * client's request is answered within 2 s, and the flooder is dropped. */
static void test_flooding_client_does_not_wedge_the_server(void)
{
	static const char req[] = "{\"cmd\":\"status\"}\n";
	static struct api_object o;
	struct api_server *s;
	char path[300];
	uint64_t t0;
	size_t sent = 0;
	bool dropped = false;
	int fd;

	snprintf(path, sizeof(path), "%s/flood.sock", tmpdir);
	CHECK_EQ(api_server_start(&s, path, handler, NULL), 0);
	fd = util_unix_connect(path, SOCK_STREAM | SOCK_NONBLOCK);
	CHECK(fd >= 0);
	dropped = harness_flood(fd, req, sizeof(req) - 1, &sent);
	t0 = util_now_ns();
	CHECK_EQ(api_call(path, "status", &o, 2000), 0);
	CHECK(api_get(&o, "ok")->b);
	CHECK(util_now_ns() - t0 < 2000000000ULL);
	/* Its replies outgrew what its socket holds: the flood did its part. */
	CHECK(sent > 64 * 1024 || dropped);
	if (!dropped) {
		/* The server has hung up on it: what it still holds ends in EOF
		 * or a reset, never in more waiting. */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[65536];
		ssize_t n;

		do {
			CHECK_EQ(poll(&p, 1, 2000), 1);
			n = recv(fd, buf, sizeof(buf), 0);
		} while (n > 0);
		CHECK(n == 0 || errno == ECONNRESET);
	}
	close(fd);
	api_server_stop(s);
}

/* Clients are bounded: one past the limit is told so and closed, and a
 * place freed is taken again. */
static void test_client_limit(void)
{
	static struct api_object o;
	struct api_server *s;
	char path[300], line[128];
	int fds[16], extra;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/limit.sock", tmpdir);
	CHECK_EQ(api_server_start(&s, path, handler, NULL), 0);
	for (int i = 0; i < 16; i++) {
		fds[i] = util_unix_connect(path, SOCK_STREAM);
		CHECK(fds[i] >= 0);
	}
	extra = util_unix_connect(path, SOCK_STREAM);
	CHECK(extra >= 0);
	{
		struct pollfd p = { .fd = extra, .events = POLLIN };

		CHECK_EQ(poll(&p, 1, 2000), 1);
	}
	n = recv(extra, line, sizeof(line) - 1, 0);
	CHECK(n > 0);
	line[n] = 0;
	CHECK(strstr(line, "too many clients"));
	close(extra);
	close(fds[0]);
	usleep(50000);
	CHECK_EQ(api_call(path, "status", &o, 2000), 0);
	for (int i = 1; i < 16; i++)
		close(fds[i]);
	api_server_stop(s);
}

/* A second local user: the socket's mode keeps it out; opened to all, the
 * server's peer check still closes it with no reply. */
static int other_user_status(void *arg)
{
	static struct api_object o;
	int r = api_call(arg, "status", &o, 2000);

	return r == -EACCES ? 1 : r == -EPROTO || r == -EPIPE ? 2 : r == 0 ? 3 : 4;
}

static void test_other_user_refused(void)
{
	static struct api_object o;
	struct api_server *s;
	char path[300];

	mode_t old;
	int r;

	snprintf(path, sizeof(path), "%s/peer.sock", tmpdir);
	old = umask(0);                 /* owner-only whatever the umask */
	r = api_server_start(&s, path, handler, NULL);
	umask(old);
	CHECK_EQ(r, 0);
	CHECK_EQ(chmod(tmpdir, 0755), 0);
	CHECK_EQ(other_user_run(other_user_status, path), 1);   /* EACCES: mode 0600 */
	CHECK_EQ(chmod(path, 0666), 0);
	CHECK_EQ(other_user_run(other_user_status, path), 2);   /* closed unanswered */
	CHECK_EQ(chmod(tmpdir, 0700), 0);
	CHECK_EQ(api_call(path, "status", &o, 2000), 0);
	api_server_stop(s);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nestvm-test-api-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_parse_good);
	RUN(test_parse_bad);
	RUN(test_requests);
	RUN(test_setmemory_requests);
	RUN(test_save_requests);
	RUN(test_server);
	RUN(test_flooding_client_does_not_wedge_the_server);
	RUN(test_client_limit);
	RUN(test_other_user_refused);
	harness_remove_tree(tmpdir);
	return HARNESS_END();
}

/* The JSON writer: structure is tracked on a small stack so that commas,
 * colons and indentation come out right and misuse is caught, not emitted. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void json_init(struct json *j, FILE *out, bool pretty)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->pretty = pretty;
}

void json_free(struct json *j)
{
	free(j->buf);
	j->buf = NULL;
	j->len = j->cap = 0;
}

const char *json_buf(const struct json *j)
{
	return j->buf && !j->err ? j->buf : "";
}

static void json_fail(struct json *j, int err)
{
	if (!j->err)
		j->err = err;
}

static void json_emit(struct json *j, const char *s, size_t n)
{
	if (j->err || !n)
		return;
	if (j->out) {
		if (fwrite(s, 1, n, j->out) != n)
			json_fail(j, -EIO);
		return;
	}
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 256;
		char *p;

		while (cap < j->len + n + 1)
			cap *= 2;
		p = realloc(j->buf, cap);
		if (!p) {
			json_fail(j, -ENOMEM);
			return;
		}
		j->buf = p;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void json_puts(struct json *j, const char *s)
{
	json_emit(j, s, strlen(s));
}

static void json_newline(struct json *j)
{
	static const char spaces[] = "                                ";

	if (!j->pretty)
		return;
	json_emit(j, "\n", 1);
	for (int i = 0; i < j->depth; i++)
		json_emit(j, spaces, 2);
}

/* Everything a value needs before it: the comma and line in an array, the
 * check that its key came in an object. False when nothing may be written. */
static bool json_value_start(struct json *j)
{
	if (j->err)
		return false;
	if (j->done) {
		json_fail(j, -EINVAL);          /* a second top-level value */
		return false;
	}
	if (j->depth == 0)
		return true;
	if (j->in_object[j->depth - 1]) {
		if (!j->have_key) {
			json_fail(j, -EINVAL);
			return false;
		}
		j->have_key = false;
		return true;
	}
	if (j->has_items[j->depth - 1])
		json_emit(j, ",", 1);
	json_newline(j);
	j->has_items[j->depth - 1] = true;
	return true;
}

static void json_value_end(struct json *j)
{
	if (j->depth == 0)
		j->done = true;
}

void json_key(struct json *j, const char *key)
{
	if (j->err)
		return;
	if (j->depth == 0 || !j->in_object[j->depth - 1] || j->have_key || !key) {
		json_fail(j, -EINVAL);
		return;
	}
	if (j->has_items[j->depth - 1])
		json_emit(j, ",", 1);
	json_newline(j);
	j->has_items[j->depth - 1] = true;
	/* The key is a string value as far as escaping goes. */
	j->have_key = true;
	json_str(j, key);
	j->have_key = true;
	json_puts(j, j->pretty ? ": " : ":");
}

static void json_begin(struct json *j, bool object)
{
	if (!json_value_start(j))
		return;
	if (j->depth == JSON_MAX_DEPTH) {
		json_fail(j, -EINVAL);
		return;
	}
	json_emit(j, object ? "{" : "[", 1);
	j->in_object[j->depth] = object;
	j->has_items[j->depth] = false;
	j->depth++;
}

static void json_end(struct json *j, bool object)
{
	if (j->err)
		return;
	if (j->depth == 0 || j->in_object[j->depth - 1] != object || j->have_key) {
		json_fail(j, -EINVAL);
		return;
	}
	j->depth--;
	if (j->has_items[j->depth])
		json_newline(j);
	json_emit(j, object ? "}" : "]", 1);
	json_value_end(j);
}

void json_object_begin(struct json *j) { json_begin(j, true); }
void json_object_end(struct json *j) { json_end(j, true); }
void json_array_begin(struct json *j) { json_begin(j, false); }
void json_array_end(struct json *j) { json_end(j, false); }

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t json_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
		       (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

void json_str(struct json *j, const char *str)
{
	const unsigned char *s = (const unsigned char *)str, *run;

	if (!str) {
		json_nil(j);
		return;
	}
	if (!json_value_start(j))
		return;
	json_emit(j, "\"", 1);
	run = s;
	while (*s) {
		char esc[8];
		const char *rep = NULL;
		size_t n;

		if (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\') {
			s++;
			continue;
		}
		if (*s >= 0x80) {
			n = json_utf8_len(s);
			if (n) {
				s += n;
				continue;
			}
			rep = "\\ufffd";
		}
		json_emit(j, (const char *)run, (size_t)(s - run));
		switch (*s) {
		case '"': rep = "\\\""; break;
		case '\\': rep = "\\\\"; break;
		case '\b': rep = "\\b"; break;
		case '\f': rep = "\\f"; break;
		case '\n': rep = "\\n"; break;
		case '\r': rep = "\\r"; break;
		case '\t': rep = "\\t"; break;
		default:
			if (!rep) {
				snprintf(esc, sizeof(esc), "\\u%04x", *s);
				rep = esc;
			}
		}
		json_puts(j, rep);
		run = ++s;
	}
	json_emit(j, (const char *)run, (size_t)(s - run));
	json_emit(j, "\"", 1);
	json_value_end(j);
}

static void json_raw_value(struct json *j, const char *text)
{
	if (!json_value_start(j))
		return;
	json_puts(j, text);
	json_value_end(j);
}

void json_bool(struct json *j, bool v) { json_raw_value(j, v ? "true" : "false"); }
void json_nil(struct json *j) { json_raw_value(j, "null"); }

void json_int(struct json *j, int64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%" PRId64, v);
	json_raw_value(j, b);
}

void json_uint(struct json *j, uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%" PRIu64, v);
	json_raw_value(j, b);
}

void json_double(struct json *j, double v)
{
	char b[32];

	if (!isfinite(v)) {
		json_nil(j);
		return;
	}
	snprintf(b, sizeof(b), "%.15g", v);
	json_raw_value(j, b);
}

void json_kv_string(struct json *j, const char *key, const char *s) { json_key(j, key); json_str(j, s); }
void json_kv_bool(struct json *j, const char *key, bool v) { json_key(j, key); json_bool(j, v); }
void json_kv_null(struct json *j, const char *key) { json_key(j, key); json_nil(j); }
void json_kv_int(struct json *j, const char *key, int64_t v) { json_key(j, key); json_int(j, v); }
void json_kv_uint(struct json *j, const char *key, uint64_t v) { json_key(j, key); json_uint(j, v); }
void json_kv_double(struct json *j, const char *key, double v) { json_key(j, key); json_double(j, v); }

int json_finish(struct json *j)
{
	if (!j->err && (!j->done || j->depth))
		json_fail(j, -EINVAL);
	if (j->pretty)
		json_emit(j, "\n", 1);
	if (j->out && fflush(j->out) != 0)
		json_fail(j, -EIO);
	if (j->out && ferror(j->out))
		json_fail(j, -EIO);
	return j->err;
}

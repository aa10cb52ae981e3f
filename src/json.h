/* A small streaming JSON writer for machine-readable output (--json): objects,
 * arrays, correctly escaped strings, into a growable buffer or a FILE *.
 * Errors are sticky: calls after the first one do nothing and json_finish()
 * reports it, so callers write a whole document and check once. */
#ifndef NESTVM_JSON_H
#define NESTVM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define JSON_MAX_DEPTH 32

struct json {
	FILE *out;              /* NULL: into buf */
	char *buf;              /* NUL-terminated while err == 0 */
	size_t len, cap;
	int err;                /* first error, -errno */
	bool pretty;            /* two-space indent, one member per line */
	int depth;
	bool in_object[JSON_MAX_DEPTH];
	bool has_items[JSON_MAX_DEPTH];
	bool have_key;          /* a key was written, its value is due */
	bool done;              /* the top-level value is complete */
};

/* out NULL writes into a malloc'd buffer that json_buf() returns. */
void json_init(struct json *j, FILE *out, bool pretty);
/* Frees the buffer; the writer can be initialised again. */
void json_free(struct json *j);
/* 0 when exactly one complete value was written without error (a newline
 * follows it in pretty mode), else -ENOMEM, -EINVAL for misuse (a value
 * without a key in an object, unbalanced ends, nesting deeper than
 * JSON_MAX_DEPTH) or -EIO for a failed FILE write. */
MUST_CHECK int json_finish(struct json *j);
/* The buffer so far ("" when empty or after an error in buffer mode). */
const char *json_buf(const struct json *j);

void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
/* Inside an object, each value is preceded by its key. */
void json_key(struct json *j, const char *key);

/* NULL writes null. Invalid UTF-8 bytes become U+FFFD. */
void json_str(struct json *j, const char *s);
void json_bool(struct json *j, bool v);
void json_nil(struct json *j);
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
/* 15 significant digits (3.9, not 3.8999999999999999); NaN and infinities,
 * which JSON lacks, are written as null. */
void json_double(struct json *j, double v);

/* Key and value in one call. */
void json_kv_string(struct json *j, const char *key, const char *s);
void json_kv_bool(struct json *j, const char *key, bool v);
void json_kv_null(struct json *j, const char *key);
void json_kv_int(struct json *j, const char *key, int64_t v);
void json_kv_uint(struct json *j, const char *key, uint64_t v);
void json_kv_double(struct json *j, const char *key, double v);

#endif

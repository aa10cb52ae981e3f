/* The JSON bodies of Firecracker API requests, read with jansson: parsed
 * strictly (no duplicate members), checked against a table of fields
 * (known names, types, required ones) with Firecracker's wording, and read
 * member by member. Kept apart from nestvm's own JSON writer (json.h),
 * whose names jansson's would clash with. */
#ifndef NESTVM_FC_BODY_H
#define NESTVM_FC_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define FC_BODY_ERR "An error occurred when deserializing the json body of a request: "

struct fc_body;                         /* a JSON value */

enum fc_type { FC_T_STR, FC_T_BOOL, FC_T_UINT, FC_T_OBJ };

struct fc_field {
	const char *name;
	enum fc_type type;              /* null: absent, where not required; FC_T_OBJ also where required */
	bool required;
};

/* Parses text; -EINVAL with err (FC_BODY_ERR, the problem, line and column). */
MUST_CHECK int fc_body_parse(const char *text, size_t len, struct fc_body **out, char *err, size_t errlen);
void fc_body_free(struct fc_body *b);
/* An object whose members are all in f (ending with a NULL name), each of
 * its type, with every required one there: 0, or -EINVAL with err. */
MUST_CHECK int fc_body_check(const struct fc_body *b, const struct fc_field *f, char *err, size_t errlen);

/* Members of an object: present (null counts as absent), and their values. */
bool fc_body_has(const struct fc_body *b, const char *key);
const char *fc_body_str(const struct fc_body *b, const char *key);     /* NULL if not a string */
bool fc_body_bool(const struct fc_body *b, const char *key);           /* false if not true */
uint64_t fc_body_uint(const struct fc_body *b, const char *key);       /* 0 if not a whole number >= 0 */
/* Absent, null, or an object with no members. */
bool fc_body_empty(const struct fc_body *b, const char *key);

/* Walking a document (--config-file): a member (borrowed, NULL if absent
 * or null), an object's keys in turn, arrays, and a value's text. */
const struct fc_body *fc_body_get(const struct fc_body *b, const char *key);
bool fc_body_is_object(const struct fc_body *b);
/* The key of member i of an object, or NULL past the last. */
const char *fc_body_key(const struct fc_body *b, size_t i);
/* -1 if not an array, else its length. */
long fc_body_array_len(const struct fc_body *b);
const struct fc_body *fc_body_array_at(const struct fc_body *b, size_t i);
/* The value as compact JSON text (malloc'd), or NULL. */
char *fc_body_dump(const struct fc_body *b);

#endif

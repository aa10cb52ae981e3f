/* Firecracker API bodies through jansson: one place that knows json_t. */
#include "fc_body.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define J(b) ((json_t *)(b))

int fc_body_parse(const char *text, size_t len, struct fc_body **out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

	*out = NULL;
	if (!v) {
		snprintf(err, errlen, FC_BODY_ERR "%s at line %d column %d.", jerr.text, jerr.line, jerr.column);
		return -EINVAL;
	}
	*out = (struct fc_body *)v;
	return 0;
}

void fc_body_free(struct fc_body *b)
{
	json_decref(J(b));
}

static const char *fc_type_name(enum fc_type t)
{
	switch (t) {
	case FC_T_STR: return "a string";
	case FC_T_BOOL: return "a boolean";
	case FC_T_UINT: return "a whole number from 0 up";
	case FC_T_OBJ: return "an object";
	}
	return "a value";
}

int fc_body_check(const struct fc_body *b, const struct fc_field *f, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(J(b))) {
		snprintf(err, errlen, FC_BODY_ERR "expected a JSON object.");
		return -EINVAL;
	}
	json_object_foreach(J(b), key, v) {
		const struct fc_field *k = f;
		bool ok = false;

		while (k->name && strcmp(k->name, key))
			k++;
		if (!k->name) {
			char known[512] = "";
			size_t n = 0;

			for (k = f; k->name && n < sizeof(known); k++)
				n += (size_t)snprintf(known + n, sizeof(known) - n, "%s`%s`", k == f ? "" : ", ", k->name);
			snprintf(err, errlen, FC_BODY_ERR "unknown field `%.64s`, expected one of %s.", key, known);
			return -EINVAL;
		}
		/* An optional member may be null, as serde takes an Option: GET
		 * /vm/config writes absent ones so. */
		if (json_is_null(v) && !k->required)
			continue;
		switch (k->type) {
		case FC_T_STR: ok = json_is_string(v); break;
		case FC_T_BOOL: ok = json_is_boolean(v); break;
		case FC_T_UINT: ok = json_is_integer(v) && json_integer_value(v) >= 0; break;
		case FC_T_OBJ: ok = json_is_object(v) || json_is_null(v); break;
		}
		if (!ok) {
			snprintf(err, errlen, FC_BODY_ERR "invalid type for `%s`: expected %s.", key, fc_type_name(k->type));
			return -EINVAL;
		}
	}
	for (; f->name; f++)
		if (f->required && !json_object_get(J(b), f->name)) {
			snprintf(err, errlen, FC_BODY_ERR "missing field `%s`.", f->name);
			return -EINVAL;
		}
	return 0;
}

bool fc_body_has(const struct fc_body *b, const char *key)
{
	json_t *v = json_object_get(J(b), key);

	return v && !json_is_null(v);
}

const char *fc_body_str(const struct fc_body *b, const char *key)
{
	return json_string_value(json_object_get(J(b), key));
}

bool fc_body_bool(const struct fc_body *b, const char *key)
{
	return json_is_true(json_object_get(J(b), key));
}

uint64_t fc_body_uint(const struct fc_body *b, const char *key)
{
	json_t *v = json_object_get(J(b), key);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : 0;
}

bool fc_body_empty(const struct fc_body *b, const char *key)
{
	json_t *v = json_object_get(J(b), key);

	return !v || json_is_null(v) || (json_is_object(v) && !json_object_size(v));
}

const struct fc_body *fc_body_get(const struct fc_body *b, const char *key)
{
	json_t *v = json_object_get(J(b), key);

	return v && !json_is_null(v) ? (const struct fc_body *)v : NULL;
}

bool fc_body_is_object(const struct fc_body *b)
{
	return json_is_object(J(b));
}

const char *fc_body_key(const struct fc_body *b, size_t i)
{
	const char *key;
	json_t *v;
	size_t n = 0;

	json_object_foreach(J(b), key, v) {
		if (n++ == i)
			return key;
	}
	return NULL;
}

long fc_body_array_len(const struct fc_body *b)
{
	return json_is_array(J(b)) ? (long)json_array_size(J(b)) : -1;
}

const struct fc_body *fc_body_array_at(const struct fc_body *b, size_t i)
{
	return (const struct fc_body *)json_array_get(J(b), i);
}

char *fc_body_dump(const struct fc_body *b)
{
	return json_dumps(J(b), JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Declarative option parsing: --name value, --name=value, -n value, flags,
 * and "--" to end options, in the conventions of Linux tools. */
#include "cli/opts.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static const struct opt *opts_find_long(const struct opt *t, const char *name, size_t len)
{
	for (; t->name; t++)
		if (strlen(t->name) == len && !strncmp(t->name, name, len))
			return t;
	return NULL;
}

static const struct opt *opts_find_short(const struct opt *t, char c)
{
	for (; t->name; t++)
		if (t->short_name && t->short_name == c)
			return t;
	return NULL;
}

static int opts_store(const struct opt *o, const char *val, void *cfg, char *err, size_t errlen)
{
	char *field = (char *)cfg + o->offset;
	uint64_t v;
	int r;

	switch (o->type) {
	case OPT_FLAG:
		*(bool *)field = true;
		return 0;
	case OPT_STR:
		*(const char **)field = val;
		return 0;
	case OPT_TEXT:
		if (strlen(val) >= o->max) {
			snprintf(err, errlen, "--%s: longer than %llu characters", o->name,
				 (unsigned long long)o->max - 1);
			return -EINVAL;
		}
		strcpy(field, val);
		return 0;
	case OPT_ONOFF:
		if (strcmp(val, "on") && strcmp(val, "off")) {
			snprintf(err, errlen, "--%s '%s': must be one of on, off", o->name, val);
			return -EINVAL;
		}
		*(bool *)field = !strcmp(val, "on");
		return 0;
	case OPT_SIZE:
		r = util_parse_size(val, &v);
		if (r < 0) {
			snprintf(err, errlen, "--%s '%s': not a size (examples: 512M, 2G)", o->name, val);
			return -EINVAL;
		}
		if (v < o->min || (o->max && v > o->max)) {
			char lo[32], hi[32];
			if (o->max)
				snprintf(err, errlen, "--%s '%s': out of range (%s to %s)", o->name, val,
					 util_fmt_size(o->min, lo, sizeof(lo)), util_fmt_size(o->max, hi, sizeof(hi)));
			else
				snprintf(err, errlen, "--%s '%s': below the minimum %s", o->name, val,
					 util_fmt_size(o->min, lo, sizeof(lo)));
			return -EINVAL;
		}
		*(uint64_t *)field = v;
		return 0;
	case OPT_UINT:
		r = util_parse_uint(val, o->min, o->max ? o->max : UINT32_MAX, &v);
		if (r == -ERANGE) {
			snprintf(err, errlen, "--%s '%s': out of range (%llu to %llu)", o->name, val,
				 (unsigned long long)o->min, (unsigned long long)(o->max ? o->max : UINT32_MAX));
			return -EINVAL;
		}
		if (r < 0) {
			snprintf(err, errlen, "--%s '%s': not a number", o->name, val);
			return -EINVAL;
		}
		*(unsigned int *)field = (unsigned int)v;
		return 0;
	case OPT_LIST: {
		struct opt_list *l = (struct opt_list *)field;
		unsigned int max = o->max && o->max < OPT_LIST_MAX ? (unsigned int)o->max : OPT_LIST_MAX;

		if (l->n >= max) {
			snprintf(err, errlen, "--%s: at most %u times", o->name, max);
			return -EINVAL;
		}
		l->v[l->n++] = val;
		return 0;
	}
	case OPT_CHOICE:
		for (int i = 0; o->choices[i]; i++) {
			if (!strcmp(o->choices[i], val)) {
				*(int *)field = i;
				return 0;
			}
		}
		{
			size_t n = (size_t)snprintf(err, errlen, "--%s '%s': must be one of", o->name, val);
			for (int i = 0; o->choices[i] && n < errlen; i++)
				n += (size_t)snprintf(err + n, errlen - n, "%s %s", i ? "," : "", o->choices[i]);
		}
		return -EINVAL;
	}
	return -EINVAL;
}

int opts_parse(const struct opt *table, int argc, char **argv, void *cfg,
	       int *npos, uint64_t *given, char *err, size_t errlen)
{
	int pos = 0;
	bool only_pos = false;

	if (given)
		*given = 0;

	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		const struct opt *o;
		const char *val = NULL;

		if (only_pos || a[0] != '-' || a[1] == '\0') {
			argv[pos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return 1;
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);

			o = opts_find_long(table, a + 2, len);
			if (!o) {
				snprintf(err, errlen, "unknown option '%.*s' (see --help)", (int)len + 2, a);
				return -EINVAL;
			}
			if (eq) {
				if (o->type == OPT_FLAG) {
					snprintf(err, errlen, "option '--%s' takes no value", o->name);
					return -EINVAL;
				}
				val = eq + 1;
			}
		} else {
			o = opts_find_short(table, a[1]);
			if (!o) {
				snprintf(err, errlen, "unknown option '-%c' (see --help)", a[1]);
				return -EINVAL;
			}
			if (a[2]) {
				if (o->type == OPT_FLAG) {
					snprintf(err, errlen, "option '-%c' takes no value", a[1]);
					return -EINVAL;
				}
				val = a + 2;
			}
		}
		if (o->type != OPT_FLAG && !val) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "option '--%s' needs a value (%s)", o->name,
					 o->metavar ? o->metavar : "VALUE");
				return -EINVAL;
			}
			val = argv[++i];
		}
		if (opts_store(o, val, cfg, err, errlen) < 0)
			return -EINVAL;
		if (given && o - table < OPT_TABLE_MAX)
			*given |= 1ULL << (o - table);
	}
	*npos = pos;
	return 0;
}

bool opts_given(const struct opt *table, uint64_t given, const char *name)
{
	for (int i = 0; table[i].name && i < OPT_TABLE_MAX; i++)
		if (!strcmp(table[i].name, name))
			return given & (1ULL << i);
	return false;
}

/* The bytes an option's field takes in its config struct. */
static size_t opts_field_size(const struct opt *o)
{
	switch (o->type) {
	case OPT_FLAG:
	case OPT_ONOFF:
		return sizeof(bool);
	case OPT_STR:
		return sizeof(const char *);
	case OPT_TEXT:
		return (size_t)o->max;
	case OPT_SIZE:
		return sizeof(uint64_t);
	case OPT_UINT:
		return sizeof(unsigned int);
	case OPT_CHOICE:
		return sizeof(int);
	case OPT_LIST:
		return sizeof(struct opt_list);
	}
	return 0;
}

void opts_copy(const struct opt *table, uint64_t given, void *dst, const void *src)
{
	for (int i = 0; table[i].name && i < OPT_TABLE_MAX; i++)
		if (given & (1ULL << i))
			memcpy((char *)dst + table[i].offset, (const char *)src + table[i].offset,
			       opts_field_size(&table[i]));
}

void opts_help(FILE *out, const char *usage, const char *summary, const struct opt *table)
{
	fprintf(out, "Usage: %s\n%s\n\nOptions:\n", usage, summary);
	for (const struct opt *o = table; o->name; o++) {
		char left[64];

		if (o->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
				 o->metavar ? " " : "", o->metavar ? o->metavar : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->name,
				 o->metavar ? " " : "", o->metavar ? o->metavar : "");
		fprintf(out, "  %-28s %s\n", left, o->help);
	}
	fprintf(out, "  %-28s %s\n", "-h, --help", "show this help and exit");
}

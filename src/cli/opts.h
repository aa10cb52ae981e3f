/* Declarative command-line options: one table per command writes straight
 * into that command's config struct; parsing and help come from the table. */
#ifndef NESTVM_CLI_OPTS_H
#define NESTVM_CLI_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

enum opt_type {
	OPT_FLAG,     /* bool, set to true */
	OPT_STR,      /* const char *, pointing into argv */
	OPT_TEXT,     /* char[max]: a copy of at most max - 1 characters */
	OPT_SIZE,     /* uint64_t bytes, "512M", in [min, max] */
	OPT_UINT,     /* unsigned int in [min, max] */
	OPT_CHOICE,   /* int index into choices */
	OPT_ONOFF,    /* bool from "on" or "off" */
	OPT_LIST,     /* struct opt_list: the option repeats, up to max times */
};

#define OPT_LIST_MAX 8
struct opt_list {
	const char *v[OPT_LIST_MAX];
	unsigned int n;
};

struct opt {
	const char *name;         /* long name, without "--" */
	char short_name;          /* 0 for none */
	enum opt_type type;
	size_t offset;            /* into the config struct */
	const char *metavar;
	const char *help;
	uint64_t min, max;        /* OPT_UINT and OPT_SIZE bounds (max 0: none); OPT_TEXT's
				   * buffer size; OPT_LIST's count (0: OPT_LIST_MAX) */
	const char *const *choices;   /* OPT_CHOICE, NULL-terminated */
};

/* A table has at most this many options: one bit each in a given mask. */
#define OPT_TABLE_MAX 64

/* Parses argv[0..argc) (without the command name). Positional arguments are
 * moved to the front of argv and counted in *npos; *given (NULL: not
 * wanted) gets bit i set for each option table[i] that appeared. Returns
 * 0, 1 for --help, or -EINVAL with a one-line message in err. */
MUST_CHECK int opts_parse(const struct opt *table, int argc, char **argv, void *cfg,
			  int *npos, uint64_t *given, char *err, size_t errlen);
/* Whether the option named name (long name) is in a given mask. */
bool opts_given(const struct opt *table, uint64_t given, const char *name);
/* Copies from src to dst (two config structs of the table's type) the
 * fields of the options in given: what a command line changes in a
 * configuration loaded from elsewhere. */
void opts_copy(const struct opt *table, uint64_t given, void *dst, const void *src);
void opts_help(FILE *out, const char *usage, const char *summary, const struct opt *table);

#endif

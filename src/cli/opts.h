/* Declarative command-line options: one table per command writes straight
 * into that command's config struct; parsing and help come from the table. */
#ifndef NESTVM_CLI_OPTS_H
#define NESTVM_CLI_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

enum opt_type {
	OPT_FLAG,     /* bool */
	OPT_STR,      /* const char * */
	OPT_SIZE,     /* uint64_t bytes, "512M" */
	OPT_UINT,     /* unsigned int in [min, max] */
	OPT_CHOICE,   /* int index into choices */
	OPT_LIST,     /* struct opt_list: the option may repeat */
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
	uint64_t min, max;        /* OPT_UINT and OPT_SIZE bounds (max 0: none) */
	const char *const *choices;   /* OPT_CHOICE, NULL-terminated */
};

/* Parses argv[0..argc) (without the command name). Positional arguments are
 * moved to the front of argv and counted in *npos. Returns 0, 1 for --help,
 * or -EINVAL with a one-line message in err. */
MUST_CHECK int opts_parse(const struct opt *table, int argc, char **argv, void *cfg,
			  int *npos, char *err, size_t errlen);
void opts_help(FILE *out, const char *usage, const char *summary, const struct opt *table);

#endif

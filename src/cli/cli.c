/* What every command shares: errors go to stderr as "nestvm: ...", and
 * options are parsed with --help and mistakes answered alike. */
#include "cli/cli.h"
#include "cli/opts.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("nestvm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_parse(const char *cmd, const struct opt *table, const char *usage, const char *summary,
	      int argc, char **argv, void *cfg, int *npos, uint64_t *given)
{
	char err[256];
	int r = opts_parse(table, argc, argv, cfg, npos, given, err, sizeof(err));

	if (r == 1) {
		opts_help(stdout, usage, summary, table);
		return 0;
	}
	if (r < 0) {
		cli_error("%s: %s", cmd, err);
		return EXIT_USAGE;
	}
	return -1;
}

bool cli_is_help(const char *word)
{
	return !strcmp(word, "help") || !strcmp(word, "--help") || !strcmp(word, "-h");
}

int cli_subcommand(void (*usage)(FILE *out), int argc, char **argv)
{
	if (argc < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cli_is_help(argv[0])) {
		usage(stdout);
		return 0;
	}
	return -1;
}

int cli_dispatch(const char *what, const struct cli_cmd *cmds, void (*usage)(FILE *out), int argc, char **argv)
{
	int r = cli_subcommand(usage, argc, argv);

	if (r >= 0)
		return r;
	for (const struct cli_cmd *c = cmds; c->name; c++)
		if (!strcmp(argv[0], c->name))
			return c->run(argc - 1, argv + 1);
	cli_error("%s%sunknown command '%s' (see 'nestvm %s%shelp')", what, what[0] ? ": " : "", argv[0], what,
		  what[0] ? " " : "");
	return EXIT_USAGE;
}

/* What every command shares: errors go to stderr as "nestvm: ...", and
 * options are parsed with --help and mistakes answered alike. */
#include "cli/cli.h"
#include "cli/opts.h"

#include <stdarg.h>
#include <stdio.h>

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

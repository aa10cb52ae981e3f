/* Option table entries for the machine configuration, the same in every
 * command that describes a VM (run, vm new, vm set, status): st is the
 * command's option struct, whose member cfg is the struct vmconfig the
 * options write into, with the configuration's own limits. */
#ifndef NESTVM_CLI_VMOPTS_H
#define NESTVM_CLI_VMOPTS_H

#include "cli/opts.h"
#include "vmconfig.h"

#define VMOPT(st, name, s, type, field, meta, help, min, max) \
	{ name, s, type, offsetof(st, cfg.field), meta, help, min, max, NULL }
/* --memory, --memory-minimum, --memory-maximum */
#define VMOPT_MEMORY(st, name, s, field, help) \
	VMOPT(st, name, s, OPT_SIZE, field, "SIZE", help, VMCONFIG_MIN_MEMORY, VMCONFIG_MAX_MEMORY)
#define VMOPT_CPUS(st, help) VMOPT(st, "cpus", 'n', OPT_UINT, cpus, "N", help, 1, VMCONFIG_MAX_CPUS)
/* --kernel, --initrd, --cmdline: copied into the configuration's buffer */
#define VMOPT_TEXT(st, name, s, field, meta, help) \
	VMOPT(st, name, s, OPT_TEXT, field, meta, help, 0, sizeof(((struct vmconfig *)0)->field))

#endif

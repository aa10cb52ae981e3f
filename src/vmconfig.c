/* The machine configuration's rules, each once: the validator every front
 * end calls, and the checks it is made of, which the machine, the store and
 * the command line call where they need one alone. */
#include "vmconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

const struct vmconfig_names vmconfig_conf_names = {
	.memory = "memory", .memory_noun = "memory",
	.memory_min = "dynamic-memory-minimum", .memory_max = "dynamic-memory-maximum",
	.cpus = "processors", .kernel = "kernel", .cmdline = "cmdline",
};

void vmconfig_init(struct vmconfig *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
	c->memory = VMCONFIG_DEFAULT_MEMORY;
	c->cpus = 1;
	snprintf(c->cmdline, sizeof(c->cmdline), "%s", VMCONFIG_DEFAULT_CMDLINE);
}

__attribute__((format(printf, 3, 4)))
static int vmconfig_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int vmconfig_check_memory(uint64_t bytes)
{
	if (bytes < VMCONFIG_MIN_MEMORY || bytes > VMCONFIG_MAX_MEMORY)
		return -ERANGE;
	return bytes % VMCONFIG_MEMORY_UNIT ? -EINVAL : 0;
}

void vmconfig_memory_range(const struct vmconfig *c, uint64_t *min, uint64_t *max)
{
	*min = c->memory_min ? c->memory_min : MIN(c->memory, VMCONFIG_DEFAULT_MEMORY_MIN);
	*max = c->memory_max ? c->memory_max : MIN(2 * c->memory, VMCONFIG_MAX_MEMORY);
}

int vmconfig_check_devices(unsigned int ndisks, unsigned int nnics, bool rng, bool balloon,
			   bool vsock, char *err, size_t errlen)
{
	if (ndisks + nnics + rng + balloon + vsock <= VMCONFIG_MAX_DEVICES)
		return 0;
	return vmconfig_err(err, errlen, "%u disks and %u network adapters%s%s%s: at most %d devices in all",
			    ndisks, nnics, rng ? " and the rng" : "", balloon ? " and the memory balloon" : "",
			    vsock ? " and the vsock" : "", VMCONFIG_MAX_DEVICES);
}

int vmconfig_check_vsock(uint64_t cid, const char *uds, char *err, size_t errlen)
{
	if (cid < 3 || cid > 0xfffffffeULL)
		return vmconfig_err(err, errlen, "vsock CID %llu: must be from 3 to 4294967294 (0-2 are reserved)",
				    (unsigned long long)cid);
	if (uds && (!uds[0] || strlen(uds) >= VMCONFIG_PATH_MAX - 16))
		return vmconfig_err(err, errlen, "vsock: its host socket needs a path of 1 to %d characters",
				    VMCONFIG_PATH_MAX - 17);
	return 0;
}

int vmconfig_check_disk_size(uint64_t size, char *err, size_t errlen)
{
	if (size < VMCONFIG_MIN_DISK || size > VMCONFIG_MAX_DISK || size % VMCONFIG_DISK_SECTOR)
		return vmconfig_err(err, errlen, "a disk is from 1M to 64T, a multiple of %d bytes",
				    VMCONFIG_DISK_SECTOR);
	return 0;
}

int vmconfig_check_switch(const char *sw, char *err, size_t errlen)
{
	char why[128];

	if (!sw[0] || strlen(sw) >= VMCONFIG_SWITCH_MAX)
		return vmconfig_err(err, errlen, "switch name: 1 to %d characters", VMCONFIG_SWITCH_MAX - 1);
	/* A switch is a directory of the store (STORE/switches/NAME): its name
	 * follows the rule of every name there, so "../x" never leaves it. */
	if (vmconfig_check_name(sw, "switch", why, sizeof(why)) < 0)
		return vmconfig_err(err, errlen, "switch name: %s", why);
	return 0;
}

int vmconfig_check_name(const char *name, const char *what, char *err, size_t errlen)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0)
		return vmconfig_err(err, errlen, "a %s name must not be empty", what);
	if (len > VMCONFIG_NAME_MAX)
		return vmconfig_err(err, errlen, "a %s name has at most %d characters", what, VMCONFIG_NAME_MAX);
	if (name[0] == '.' || name[0] == '-')
		return vmconfig_err(err, errlen, "a %s name must not start with '.' or '-'", what);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '/')
			return vmconfig_err(err, errlen, "a %s name must not contain '/'", what);
		if (c < 0x20 || c == 0x7f)
			return vmconfig_err(err, errlen, "a %s name must not contain control characters", what);
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return vmconfig_err(err, errlen, "a %s name may hold only letters, digits, '.', '_' and '-'",
					    what);
	}
	return 0;
}

/* One memory size of c: in range and whole MiB. */
static int vmconfig_memory_size(const char *name, uint64_t bytes, char *err, size_t errlen)
{
	char s[32];
	int r = vmconfig_check_memory(bytes);

	if (r == -ERANGE)
		return vmconfig_err(err, errlen, "%s %s: out of range (16M to 1T)", name,
				    util_fmt_size(bytes, s, sizeof(s)));
	if (r < 0)
		return vmconfig_err(err, errlen, "%s must be a whole number of MiB", name);
	return 0;
}

static int vmconfig_check_memory_all(const struct vmconfig *c, const struct vmconfig_names *n,
				     char *err, size_t errlen)
{
	uint64_t min, max;
	char a[32], b[32];
	int r;

	r = vmconfig_memory_size(n->memory, c->memory, err, errlen);
	if (r < 0)
		return r;
	vmconfig_memory_range(c, &min, &max);
	if (vmconfig_check_memory(min) == -EINVAL || vmconfig_check_memory(max) == -EINVAL)
		return vmconfig_err(err, errlen, "%s and %s must be whole numbers of MiB", n->memory_min,
				    n->memory_max);
	if ((r = vmconfig_memory_size(n->memory_min, min, err, errlen)) < 0 ||
	    (r = vmconfig_memory_size(n->memory_max, max, err, errlen)) < 0)
		return r;
	if (min > c->memory)
		return vmconfig_err(err, errlen, "%s %s is above %s %s: lower it or raise %s", n->memory_min,
				    util_fmt_size(min, a, sizeof(a)), n->memory_noun,
				    util_fmt_size(c->memory, b, sizeof(b)), n->memory);
	if (max < c->memory)
		return vmconfig_err(err, errlen, "%s %s is below %s %s: raise it or lower %s", n->memory_max,
				    util_fmt_size(max, a, sizeof(a)), n->memory_noun,
				    util_fmt_size(c->memory, b, sizeof(b)), n->memory);
	return 0;
}

/* Disk i: an image, of a size a disk can have, not attached twice. */
static int vmconfig_check_disk(const struct vmconfig *c, unsigned int i, char *err, size_t errlen)
{
	const struct vmconfig_disk *d = &c->disks[i];
	char why[128];

	if (!d->path[0])
		return vmconfig_err(err, errlen, "disk %u: no image file", i);
	if (d->size && vmconfig_check_disk_size(d->size, why, sizeof(why)) < 0)
		return vmconfig_err(err, errlen, "disk '%s': %s", d->path, why);
	for (unsigned int j = 0; j < i; j++)
		if (!strcmp(d->path, c->disks[j].path))
			return vmconfig_err(err, errlen, "disk '%s' listed twice", d->path);
	return 0;
}

/* Adapter i: on a switch or a TAP device, with its own unicast address. */
static int vmconfig_check_nic(const struct vmconfig_nic *n, unsigned int i, char *err, size_t errlen)
{
	char why[128];

	if (!n->sw[0] == !n->tap[0])
		return vmconfig_err(err, errlen, "network adapter %u: give exactly one of a switch or a TAP device", i);
	if (n->sw[0] && vmconfig_check_switch(n->sw, why, sizeof(why)) < 0)
		return vmconfig_err(err, errlen, "network adapter %u: %s", i, why);
	if (n->mac[0] & 1)
		return vmconfig_err(err, errlen, "network adapter %u: a multicast MAC address", i);
	return 0;
}

int vmconfig_validate(const struct vmconfig *c, const struct vmconfig_names *n, char *err, size_t errlen)
{
	char why[160];
	int r;

	if (c->name[0] && vmconfig_check_name(c->name, "VM", why, sizeof(why)) < 0)
		return vmconfig_err(err, errlen, "name '%s': %s", c->name, why);
	if (!c->kernel[0])
		return vmconfig_err(err, errlen, "%s is required", n->kernel);
	r = vmconfig_check_memory_all(c, n, err, errlen);
	if (r < 0)
		return r;
	if (c->cpus < 1 || c->cpus > VMCONFIG_MAX_CPUS)
		return vmconfig_err(err, errlen, "%s %u: out of range (1 to %d)", n->cpus, c->cpus, VMCONFIG_MAX_CPUS);
	if (strlen(c->cmdline) >= VMCONFIG_CMDLINE_MAX || strchr(c->cmdline, '\n'))
		return vmconfig_err(err, errlen, "%s: one line of at most %d characters", n->cmdline,
				    VMCONFIG_CMDLINE_MAX - 1);
	/* The count first: it bounds the arrays as well. */
	r = vmconfig_check_devices(c->ndisks, c->nnics, !c->no_rng, c->dynamic_memory, c->vsock_cid != 0,
				   err, errlen);
	if (r == 0 && c->vsock_cid)
		r = vmconfig_check_vsock(c->vsock_cid, c->vsock_uds[0] ? c->vsock_uds : NULL, err, errlen);
	for (unsigned int i = 0; r == 0 && i < c->ndisks; i++)
		r = vmconfig_check_disk(c, i, err, errlen);
	for (unsigned int i = 0; r == 0 && i < c->nnics; i++)
		r = vmconfig_check_nic(&c->nics[i], i, err, errlen);
	return r;
}

/* ---- nesting ---- */

unsigned int vmconfig_nesting_needs(const struct vmconfig *c)
{
	unsigned int needs = 0;

	if (!c->expose_virt)
		needs |= VMCONFIG_NEST_EXPOSE;
	if (c->dynamic_memory)
		needs |= VMCONFIG_NEST_FIXED_MEMORY;
	if (c->memory < VMCONFIG_NESTED_MIN_MEMORY)
		needs |= VMCONFIG_NEST_MEMORY;
	for (unsigned int i = 0; i < c->nnics; i++)
		if (!c->nics[i].mac_spoofing)
			needs |= VMCONFIG_NEST_SPOOFING;
	return needs;
}

void vmconfig_make_nested(struct vmconfig *c, unsigned int needs)
{
	if (needs & VMCONFIG_NEST_EXPOSE)
		c->expose_virt = true;
	if (needs & VMCONFIG_NEST_FIXED_MEMORY)
		c->dynamic_memory = false;
	if ((needs & VMCONFIG_NEST_MEMORY) && c->memory < VMCONFIG_NESTED_MIN_MEMORY) {
		c->memory = VMCONFIG_NESTED_MIN_MEMORY;
		if (c->memory_max && c->memory_max < c->memory)
			c->memory_max = c->memory;
	}
	if (needs & VMCONFIG_NEST_SPOOFING)
		for (unsigned int i = 0; i < c->nnics; i++)
			c->nics[i].mac_spoofing = true;
}

/* ---- MAC addresses ---- */

int vmconfig_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char tail;

	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 17; i++)
		if ((i % 3 == 2) ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	if (mac[0] & 1)
		return -EINVAL;         /* multicast: no adapter's own address */
	return 0;
}

const char *vmconfig_fmt_mac(const uint8_t mac[6], char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return buf;
}

void vmconfig_random_mac(uint8_t mac[6])
{
	if (getrandom(mac, 6, 0) != 6) {
		uint64_t t = util_now_ns() ^ ((uint64_t)getpid() << 32);
		for (int i = 0; i < 6; i++)
			mac[i] = (uint8_t)(t >> (8 * i));
	}
	mac[0] = (uint8_t)((mac[0] & ~1u) | 2u);     /* unicast, locally administered */
}

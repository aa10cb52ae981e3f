/* The VM store: named VM directories, the vm.conf format, atomic writes and
 * per-VM locks. Library code: returns 0 or -errno with a message in err and
 * never prints; the command line decides what the user sees. */
#include "store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_MIN_MEMORY (16ULL << 20)
#define STORE_MAX_MEMORY (1ULL << 40)
#define STORE_MAX_CPUS   255
#define STORE_MAX_DISK   (64ULL << 40)
#define STORE_LINE_MAX   4096

static ssize_t store_real_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

static const struct store_io store_real_io = { store_real_write, fsync };
const struct store_io *store_io = &store_real_io;

void store_crash_point(const char *step)
{
	const char *at = getenv("NESTVM_TEST_CRASH_AT");

	if (at && !strcmp(at, step))
		_exit(99);
}

void store_vm_init(struct store_vm *vm, const char *name)
{
	memset(vm, 0, sizeof(*vm));
	snprintf(vm->name, sizeof(vm->name), "%s", name ? name : "");
	vm->memory = 512ULL << 20;
	vm->cpus = 1;
	snprintf(vm->cmdline, sizeof(vm->cmdline), "console=ttyS0");
}

int store_root(const char *dir, char *buf, size_t len)
{
	const char *env = getenv("NESTVM_STORE"), *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	int n;

	if (dir && *dir)
		n = snprintf(buf, len, "%s", dir);
	else if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/var/lib/nestvm");
	else if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/nestvm", xdg);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.local/share/nestvm", home);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	/* "dir/" and "dir" are one store. */
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	return 0;
}

int store_name_check(const char *name, const char **why)
{
	size_t len = name ? strlen(name) : 0;

	*why = NULL;
	if (len == 0)
		*why = "a VM name must not be empty";
	else if (len > STORE_NAME_MAX)
		*why = "a VM name has at most 64 characters";
	else if (name[0] == '.' || name[0] == '-')
		*why = "a VM name must not start with '.' or '-'";
	else if (!strcmp(name, "switches"))
		*why = "'switches' is reserved: the store keeps its virtual switches there";
	else
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)name[i];

			if (c == '/')
				*why = "a VM name must not contain '/'";
			else if (c < 0x20 || c == 0x7f)
				*why = "a VM name must not contain control characters";
			else if (!isalnum(c) && c != '.' && c != '_' && c != '-')
				*why = "a VM name may hold only letters, digits, '.', '_' and '-'";
			if (*why)
				break;
		}
	return *why ? -EINVAL : 0;
}

int store_path(char *buf, size_t len, const char *root, const char *name, const char *file)
{
	int n;

	if (file)
		n = snprintf(buf, len, "%s/%s/%s", root, name, file);
	else
		n = snprintf(buf, len, "%s/%s", root, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- vm.conf ---- */

static int store_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true", "1" }, *const no[] = { "off", "no", "false", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int store_parse_mac(const char *s, uint8_t mac[6])
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

const char *store_fmt_mac(const uint8_t mac[6], char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return buf;
}

void store_random_mac(uint8_t mac[6])
{
	if (getrandom(mac, 6, 0) != 6) {
		uint64_t t = util_now_ns() ^ ((uint64_t)getpid() << 32);
		for (int i = 0; i < 6; i++)
			mac[i] = (uint8_t)(t >> (8 * i));
	}
	mac[0] = (uint8_t)((mac[0] & ~1u) | 2u);     /* unicast, locally administered */
}

enum store_section { SEC_VM, SEC_DISK, SEC_NIC };

struct store_parser {
	const char *file;
	unsigned int line;
	char *err;
	size_t errlen;
	enum store_section sec;
	uint32_t seen;          /* keys of the current section, by bit */
};

__attribute__((format(printf, 2, 3)))
static int store_perr(struct store_parser *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err, p->errlen, "%s:%u: ", p->file, p->line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *const vm_keys[] = {
	"name", "memory", "processors", "expose-virtualization-extensions", "dynamic-memory",
	"dynamic-memory-minimum", "dynamic-memory-maximum", "kernel", "initrd", "cmdline", NULL,
};
static const char *const disk_keys[] = { "path", "size", "preallocated", NULL };
static const char *const nic_keys[] = { "switch", "mac-address", "mac-address-spoofing", NULL };
static const char *const *const section_keys[] = { vm_keys, disk_keys, nic_keys };
static const char *const section_names[] = { "top of the file", "[disk]", "[network-adapter]" };
/* Keys each section must have, by bit. */
static const uint32_t section_required[] = { 1u << 0 | 1u << 1 | 1u << 2 | 1u << 7, 1u << 0 | 1u << 1, 1u << 0 | 1u << 1 };

static int store_size_val(struct store_parser *p, const char *key, const char *v, uint64_t *out)
{
	if (util_parse_size(v, out) < 0)
		return store_perr(p, "%s '%s': not a size (examples: 512M, 2G)", key, v);
	return 0;
}

static int store_set(struct store_parser *p, struct store_vm *vm, int k, const char *key, const char *v)
{
	bool b;
	uint64_t u;

	if (p->sec == SEC_VM) {
		switch (k) {
		case 0:
			if (strlen(v) >= sizeof(vm->name))
				return store_perr(p, "name is longer than %d characters", STORE_NAME_MAX);
			strcpy(vm->name, v);
			return 0;
		case 1:
			return store_size_val(p, key, v, &vm->memory);
		case 2:
			if (util_parse_uint(v, 1, STORE_MAX_CPUS, &u) < 0)
				return store_perr(p, "processors '%s': not a number from 1 to %d", v, STORE_MAX_CPUS);
			vm->cpus = (unsigned int)u;
			return 0;
		case 3:
		case 4:
			if (store_bool(v, &b) < 0)
				return store_perr(p, "%s '%s': must be on or off", key, v);
			*(k == 3 ? &vm->expose_virt : &vm->dynamic_memory) = b;
			return 0;
		case 5:
			return store_size_val(p, key, v, &vm->memory_min);
		case 6:
			return store_size_val(p, key, v, &vm->memory_max);
		case 7:
		case 8:
			if (strlen(v) >= STORE_PATH_MAX)
				return store_perr(p, "%s is longer than %d characters", key, STORE_PATH_MAX - 1);
			strcpy(k == 7 ? vm->kernel : vm->initrd, v);
			return 0;
		case 9:
			if (strlen(v) >= STORE_CMDLINE_MAX)
				return store_perr(p, "cmdline is longer than %d characters", STORE_CMDLINE_MAX - 1);
			strcpy(vm->cmdline, v);
			return 0;
		}
	} else if (p->sec == SEC_DISK) {
		struct store_disk *d = &vm->disks[vm->ndisks - 1];
		const char *why;

		switch (k) {
		case 0:
			if (strlen(v) >= sizeof(d->path))
				return store_perr(p, "path is too long");
			/* A disk is a file of the VM's directory, named like a VM. */
			if (store_name_check(v, &why) < 0)
				return store_perr(p, "path '%s': a disk is a file name inside the VM's directory "
						  "(letters, digits, '.', '_', '-')", v);
			strcpy(d->path, v);
			return 0;
		case 1:
			return store_size_val(p, key, v, &d->size);
		case 2:
			if (store_bool(v, &d->fixed) < 0)
				return store_perr(p, "%s '%s': must be on or off", key, v);
			return 0;
		}
	} else {
		struct store_nic *n = &vm->nics[vm->nnics - 1];

		switch (k) {
		case 0:
			if (strlen(v) >= sizeof(n->sw))
				return store_perr(p, "switch is longer than %d characters", STORE_SWITCH_MAX - 1);
			strcpy(n->sw, v);
			return 0;
		case 1:
			if (store_parse_mac(v, n->mac) < 0)
				return store_perr(p, "mac-address '%s': not a unicast MAC address like 52:54:00:12:34:56", v);
			return 0;
		case 2:
			if (store_bool(v, &n->mac_spoofing) < 0)
				return store_perr(p, "%s '%s': must be on or off", key, v);
			return 0;
		}
	}
	return -EINVAL;
}

static int store_section_end(struct store_parser *p)
{
	const char *const *keys = section_keys[p->sec];
	uint32_t missing = section_required[p->sec] & ~p->seen;

	for (int k = 0; keys[k]; k++)
		if (missing & (1u << k))
			return store_perr(p, "%s lacks the key '%s'", section_names[p->sec], keys[k]);
	return 0;
}

int store_parse(const char *text, size_t len, const char *file, struct store_vm *vm,
		char *err, size_t errlen)
{
	struct store_parser p = { .file = file, .err = err, .errlen = errlen, .sec = SEC_VM };
	char line[STORE_LINE_MAX + 2];
	size_t pos = 0;
	int r;

	memset(vm, 0, sizeof(*vm));
	if (len > STORE_CONF_MAX) {
		p.line = 1;
		return store_perr(&p, "larger than %d KiB: not a VM configuration", STORE_CONF_MAX >> 10);
	}
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *s, *eq, *key, *val;
		const char *const *keys;
		int k;

		p.line++;
		if (n > STORE_LINE_MAX)
			return store_perr(&p, "line longer than %d characters", STORE_LINE_MAX);
		memcpy(line, text + pos, n);
		line[n] = 0;
		pos += n + (nl ? 1 : 0);
		if (strlen(line) != n)
			return store_perr(&p, "a NUL byte: not a text file");
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x20 && line[i] != '\t' && !(line[i] == '\r' && i == n - 1))
				return store_perr(&p, "a control character (0x%02x)", (unsigned char)line[i]);
		s = util_trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			enum store_section sec;

			if (!strcmp(s, "[disk]"))
				sec = SEC_DISK;
			else if (!strcmp(s, "[network-adapter]"))
				sec = SEC_NIC;
			else
				return store_perr(&p, "unknown section '%s' (known: [disk], [network-adapter])", s);
			p.line--;       /* a missing key belongs to the section before */
			r = store_section_end(&p);
			p.line++;
			if (r < 0)
				return r;
			if (sec == SEC_DISK && vm->ndisks >= STORE_MAX_DISKS)
				return store_perr(&p, "more than %d disks", STORE_MAX_DISKS);
			if (sec == SEC_NIC && vm->nnics >= STORE_MAX_NICS)
				return store_perr(&p, "more than %d network adapters", STORE_MAX_NICS);
			if (sec == SEC_DISK)
				vm->ndisks++;
			else
				vm->nnics++;
			p.sec = sec;
			p.seen = 0;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq)
			return store_perr(&p, "expected 'key = value', found '%s'", s);
		*eq = 0;
		key = util_trim(s);
		val = util_trim(eq + 1);
		keys = section_keys[p.sec];
		for (k = 0; keys[k] && strcmp(keys[k], key); k++)
			;
		if (!keys[k]) {
			size_t o = 0;
			char known[512];

			for (int i = 0; keys[i] && o < sizeof(known); i++)
				o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "", keys[i]);
			return store_perr(&p, "unknown key '%s' in the %s (known: %s)", key,
					  section_names[p.sec], known);
		}
		if (p.seen & (1u << k))
			return store_perr(&p, "'%s' given twice", key);
		p.seen |= 1u << k;
		if (!*val && !(p.sec == SEC_VM && (k == 8 || k == 9)))
			return store_perr(&p, "'%s' has no value", key);
		r = store_set(&p, vm, k, key, val);
		if (r < 0)
			return r;
	}
	r = store_section_end(&p);
	if (r < 0)
		return r;
	r = store_validate(vm, err, errlen);
	if (r < 0) {
		/* Prefix the file so the message still says where. */
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "%s: %s", file, tmp);
	}
	return r;
}

int store_validate(const struct store_vm *vm, char *err, size_t errlen)
{
	char a[32], b[32];
	const char *why;

	if (store_name_check(vm->name, &why) < 0) {
		snprintf(err, errlen, "name '%s': %s", vm->name, why);
		return -EINVAL;
	}
	if (vm->memory < STORE_MIN_MEMORY || vm->memory > STORE_MAX_MEMORY || (vm->memory & 0xfffff)) {
		snprintf(err, errlen, "memory %s: must be whole MiB from %s to %s",
			 util_fmt_size(vm->memory, a, sizeof(a)), "16M", "1T");
		return -EINVAL;
	}
	if (vm->cpus < 1 || vm->cpus > STORE_MAX_CPUS) {
		snprintf(err, errlen, "processors %u: must be from 1 to %d", vm->cpus, STORE_MAX_CPUS);
		return -EINVAL;
	}
	if (vm->memory_min && vm->memory_min > vm->memory) {
		snprintf(err, errlen, "dynamic-memory-minimum %s is above memory %s",
			 util_fmt_size(vm->memory_min, a, sizeof(a)), util_fmt_size(vm->memory, b, sizeof(b)));
		return -EINVAL;
	}
	if (vm->memory_max && vm->memory_max < vm->memory) {
		snprintf(err, errlen, "dynamic-memory-maximum %s is below memory %s",
			 util_fmt_size(vm->memory_max, a, sizeof(a)), util_fmt_size(vm->memory, b, sizeof(b)));
		return -EINVAL;
	}
	if (!vm->kernel[0]) {
		snprintf(err, errlen, "no kernel");
		return -EINVAL;
	}
	for (unsigned int i = 0; i < vm->ndisks; i++) {
		if (vm->disks[i].size < 512 || vm->disks[i].size > STORE_MAX_DISK || (vm->disks[i].size & 511)) {
			snprintf(err, errlen, "disk '%s': size must be a multiple of 512 bytes up to 64T",
				 vm->disks[i].path);
			return -EINVAL;
		}
		for (unsigned int j = 0; j < i; j++)
			if (!strcmp(vm->disks[i].path, vm->disks[j].path)) {
				snprintf(err, errlen, "disk '%s' listed twice", vm->disks[i].path);
				return -EINVAL;
			}
	}
	return 0;
}

/* Appends to a growing buffer; the first failure sticks. */
struct store_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3)))
static void store_printf(struct store_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = MAX(b->cap * 2, b->len + (size_t)n + 256);
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

char *store_format(const struct store_vm *vm)
{
	struct store_buf b = { 0 };
	char s[32], mac[24];

	store_printf(&b, "# nestvm virtual machine %s: one 'key = value' a line, '#' starts a comment.\n"
		     "# Change it with 'nestvm vm set %s', or edit it while the VM is off;\n"
		     "# 'nestvm vm show %s' reports any mistake with its line number.\n",
		     vm->name, vm->name, vm->name);
	store_printf(&b, "name = %s\n", vm->name);
	store_printf(&b, "memory = %s\n", util_fmt_size(vm->memory, s, sizeof(s)));
	store_printf(&b, "processors = %u\n", vm->cpus);
	store_printf(&b, "expose-virtualization-extensions = %s\n", vm->expose_virt ? "on" : "off");
	store_printf(&b, "dynamic-memory = %s\n", vm->dynamic_memory ? "on" : "off");
	if (vm->memory_min)
		store_printf(&b, "dynamic-memory-minimum = %s\n", util_fmt_size(vm->memory_min, s, sizeof(s)));
	if (vm->memory_max)
		store_printf(&b, "dynamic-memory-maximum = %s\n", util_fmt_size(vm->memory_max, s, sizeof(s)));
	store_printf(&b, "kernel = %s\n", vm->kernel);
	store_printf(&b, "initrd = %s\n", vm->initrd);
	store_printf(&b, "cmdline = %s\n", vm->cmdline);
	for (unsigned int i = 0; i < vm->ndisks; i++)
		store_printf(&b, "\n[disk]\npath = %s\nsize = %s\npreallocated = %s\n", vm->disks[i].path,
			     util_fmt_size(vm->disks[i].size, s, sizeof(s)), vm->disks[i].fixed ? "on" : "off");
	for (unsigned int i = 0; i < vm->nnics; i++)
		store_printf(&b, "\n[network-adapter]\nswitch = %s\nmac-address = %s\nmac-address-spoofing = %s\n",
			     vm->nics[i].sw, store_fmt_mac(vm->nics[i].mac, mac, sizeof(mac)),
			     vm->nics[i].mac_spoofing ? "on" : "off");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- files ---- */

static int store_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (store_io->fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int store_write_atomic(const char *dir, const char *file, const char *data, size_t len)
{
	char tmp[STORE_PATH_MAX + 64], dst[STORE_PATH_MAX + 64];
	int fd, r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, file) >= sizeof(tmp) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, file) >= sizeof(dst))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = store_io->write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		data += n;
		len -= (size_t)n;
	}
	if (!r && store_io->fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r) {
		unlink(tmp);
		return r;
	}
	store_crash_point("save-written");
	if (rename(tmp, dst) < 0) {
		r = -errno;
		unlink(tmp);
		return r;
	}
	store_crash_point("save-renamed");
	return store_fsync_dir(dir);
}

int store_load(const char *root, const char *name, struct store_vm *vm, char *err, size_t errlen)
{
	char path[STORE_PATH_MAX + 128];
	const char *why;
	uint8_t *data;
	size_t len;
	int r;

	if (store_name_check(name, &why) < 0) {
		snprintf(err, errlen, "'%s': %s", name, why);
		return -EINVAL;
	}
	if (store_path(path, sizeof(path), root, name, STORE_CONF) < 0) {
		snprintf(err, errlen, "store path too long");
		return -ENAMETOOLONG;
	}
	r = util_read_file(path, &data, &len);
	if (r == -ENOENT) {
		char dir[STORE_PATH_MAX + 80];
		struct stat st;

		if (store_path(dir, sizeof(dir), root, name, NULL) == 0 && stat(dir, &st) == 0) {
			snprintf(err, errlen, "%s: missing: the VM's directory has no configuration", path);
			return -EINVAL;
		}
		snprintf(err, errlen, "no VM named '%s' in the store %s", name, root);
		return -ENOENT;
	}
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = store_parse((const char *)data, len, path, vm, err, errlen);
	free(data);
	if (r == 0 && strcmp(vm->name, name)) {
		snprintf(err, errlen, "%s: name '%s' does not match its directory '%s'", path, vm->name, name);
		return -EINVAL;
	}
	return r;
}

int store_save(const char *root, const struct store_vm *vm, char *err, size_t errlen)
{
	char dir[STORE_PATH_MAX + 80];
	char *text;
	int r;

	r = store_validate(vm, err, errlen);
	if (r < 0)
		return r;
	if (store_path(dir, sizeof(dir), root, vm->name, NULL) < 0) {
		snprintf(err, errlen, "store path too long");
		return -ENAMETOOLONG;
	}
	text = store_format(vm);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = store_write_atomic(dir, STORE_CONF, text, strlen(text));
	free(text);
	if (r < 0)
		snprintf(err, errlen, "%s/%s: writing failed (%s); the previous configuration is unchanged",
			 dir, STORE_CONF, strerror(-r));
	return r;
}

static int store_rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		char sub[STORE_PATH_MAX + 300];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (e->d_type == DT_DIR)
			r = store_rm_rf(sub) < 0 ? -EIO : r;
		else if (unlink(sub) < 0)
			r = -errno;
	}
	closedir(d);
	if (rmdir(path) < 0)
		r = -errno;
	return r;
}

int store_create(const char *root, const struct store_vm *vm, char *err, size_t errlen)
{
	char tmp[STORE_PATH_MAX + 128], dst[STORE_PATH_MAX + 80];
	char *text = NULL;
	struct stat st;
	int r;

	r = store_validate(vm, err, errlen);
	if (r < 0)
		return r;
	r = util_mkdir_p(root, 0755);
	if (r < 0) {
		snprintf(err, errlen, "store %s: cannot create it: %s", root, strerror(-r));
		return r;
	}
	if (access(root, W_OK) < 0) {
		r = -errno;
		snprintf(err, errlen, "store %s: not writable: %s (choose another with --store DIR)", root,
			 strerror(errno));
		return r;
	}
	if (store_path(dst, sizeof(dst), root, vm->name, NULL) < 0 ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.new-%s.XXXXXX", root, vm->name) >= sizeof(tmp)) {
		snprintf(err, errlen, "store path too long");
		return -ENAMETOOLONG;
	}
	if (lstat(dst, &st) == 0) {
		snprintf(err, errlen, "a VM named '%s' already exists in %s", vm->name, root);
		return -EEXIST;
	}
	if (!mkdtemp(tmp)) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return r;
	}
	chmod(tmp, 0755);
	store_crash_point("create-dir");
	for (unsigned int i = 0; i < vm->ndisks; i++) {
		char path[sizeof(tmp) + STORE_PATH_MAX + 1];

		snprintf(path, sizeof(path), "%s/%s", tmp, vm->disks[i].path);
		r = util_create_image(path, vm->disks[i].size, vm->disks[i].fixed);
		if (r < 0) {
			snprintf(err, errlen, "disk '%s' (%llu bytes): %s", vm->disks[i].path,
				 (unsigned long long)vm->disks[i].size, strerror(-r));
			goto fail;
		}
		store_crash_point("create-disk");
	}
	text = store_format(vm);
	if (!text) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = store_write_atomic(tmp, STORE_CONF, text, strlen(text));
	if (r < 0) {
		snprintf(err, errlen, "%s/%s: %s", tmp, STORE_CONF, strerror(-r));
		goto fail;
	}
	store_crash_point("create-config");
	/* The VM appears whole or not at all; never over one made meanwhile. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) < 0) {
		r = -errno;
		if (r == -EEXIST)
			snprintf(err, errlen, "a VM named '%s' already exists in %s", vm->name, root);
		else
			snprintf(err, errlen, "%s: %s", dst, strerror(-r));
		goto fail;
	}
	store_crash_point("create-renamed");
	free(text);
	return store_fsync_dir(root) < 0 ? 0 : 0;
fail:
	free(text);
	store_rm_rf(tmp);
	return r;
}

int store_remove(const char *root, const char *name, char *err, size_t errlen)
{
	char src[STORE_PATH_MAX + 80], tmp[STORE_PATH_MAX + 128];
	int r;

	if (store_path(src, sizeof(src), root, name, NULL) < 0 ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.removed-%s.%d", root, name, (int)getpid()) >= sizeof(tmp)) {
		snprintf(err, errlen, "store path too long");
		return -ENAMETOOLONG;
	}
	if (rename(src, tmp) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		return r;
	}
	store_crash_point("remove-renamed");
	(void)store_fsync_dir(root);
	r = store_rm_rf(tmp);
	if (r < 0)
		snprintf(err, errlen, "%s: removed from the store, but deleting its files failed: %s",
			 tmp, strerror(-r));
	return r;
}

static int store_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_list(const char *root, char ***names, size_t *n)
{
	DIR *d = opendir(root);
	struct dirent *e;
	char **v = NULL;
	size_t cnt = 0, cap = 0;

	*names = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		const char *why;

		/* Hidden entries are VMs being made or removed. */
		if (store_name_check(e->d_name, &why) < 0)
			continue;
		if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
			continue;
		if (cnt == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv)
				goto oom;
			v = nv;
		}
		if (!(v[cnt] = strdup(e->d_name)))
			goto oom;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), store_cmp);
	*names = v;
	*n = cnt;
	return 0;
oom:
	closedir(d);
	store_list_free(v, cnt);
	return -ENOMEM;
}

void store_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int store_lock(const char *root, const char *name, int wait_ms)
{
	char path[STORE_PATH_MAX + 128], dir[STORE_PATH_MAX + 80];
	struct stat st;
	int fd;

	if (store_path(path, sizeof(path), root, name, STORE_LOCK) < 0 ||
	    store_path(dir, sizeof(dir), root, name, NULL) < 0)
		return -ENAMETOOLONG;
	if (stat(dir, &st) < 0)
		return -errno;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (int waited = 0;; waited += 20) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int r = -errno;
			close(fd);
			return r;
		}
		if (waited >= wait_ms) {
			close(fd);
			return -EBUSY;
		}
		nanosleep(&(struct timespec){ 0, 20 * 1000000 }, NULL);
	}
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

bool store_vmm_alive(const char *root, const char *name)
{
	char path[STORE_PATH_MAX + 128];
	bool alive = false;
	int fd;

	if (store_path(path, sizeof(path), root, name, STORE_RUN_LOCK) < 0)
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		alive = errno == EWOULDBLOCK;
	close(fd);
	return alive;
}

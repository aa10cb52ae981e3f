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

int store_name_check(const char *name, char *err, size_t errlen)
{
	/* The store keeps its virtual switches beside its VMs. */
	if (name && !strcmp(name, "switches")) {
		snprintf(err, errlen, "'switches' is reserved: the store keeps its virtual switches there");
		return -EINVAL;
	}
	return vmconfig_check_name(name, "VM", err, errlen);
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

/* vm.conf's keys, each a field of its section's struct: the top of the
 * file is the struct vmconfig, each [disk] a vmconfig_disk, each
 * [network-adapter] a vmconfig_nic. The tables drive parsing and writing. */
enum store_type {
	STORE_TEXT,     /* char[size] */
	STORE_FILE,     /* char[size], a file name in the VM's directory */
	STORE_SIZE,     /* uint64_t, "512M" */
	STORE_CPUS,     /* unsigned int, 1 to VMCONFIG_MAX_CPUS */
	STORE_BOOL,     /* bool, on|off */
	STORE_MAC,      /* uint8_t[6] */
	STORE_CID,      /* uint64_t, a vsock CID: 3 to 2^32 - 2 */
};

struct store_key {
	const char *key;
	enum store_type type;
	size_t off, size;
	bool required;
	bool may_be_empty;
	bool omit_zero;         /* written only when set */
};

#define STORE_KEY(st, key, type, field, ...) \
	{ key, type, offsetof(st, field), sizeof(((st *)0)->field), __VA_ARGS__ }
#define VM_KEY(key, type, field, ...)   STORE_KEY(struct vmconfig, key, type, field, __VA_ARGS__)
#define DISK_KEY(key, type, field, ...) STORE_KEY(struct vmconfig_disk, key, type, field, __VA_ARGS__)
#define NIC_KEY(key, type, field, ...)  STORE_KEY(struct vmconfig_nic, key, type, field, __VA_ARGS__)

static const struct store_key vm_keys[] = {
	VM_KEY("name", STORE_TEXT, name, true, false, false),
	VM_KEY("memory", STORE_SIZE, memory, true, false, false),
	VM_KEY("processors", STORE_CPUS, cpus, true, false, false),
	VM_KEY("expose-virtualization-extensions", STORE_BOOL, expose_virt, false, false, false),
	VM_KEY("dynamic-memory", STORE_BOOL, dynamic_memory, false, false, false),
	VM_KEY("dynamic-memory-minimum", STORE_SIZE, memory_min, false, false, true),
	VM_KEY("dynamic-memory-maximum", STORE_SIZE, memory_max, false, false, true),
	VM_KEY("kernel", STORE_TEXT, kernel, true, false, false),
	VM_KEY("initrd", STORE_TEXT, initrd, false, true, false),
	VM_KEY("cmdline", STORE_TEXT, cmdline, false, true, false),
	VM_KEY("vsock-cid", STORE_CID, vsock_cid, false, false, true),
	VM_KEY("autostart", STORE_BOOL, autostart, false, false, true),
	VM_KEY("no-seccomp", STORE_BOOL, no_seccomp, false, false, true),
	VM_KEY("guest-decompress", STORE_BOOL, guest_decompress, false, false, true),
	{ 0 },
};

static const struct store_key disk_keys[] = {
	DISK_KEY("path", STORE_FILE, path, true, false, false),
	DISK_KEY("size", STORE_SIZE, size, true, false, false),
	DISK_KEY("preallocated", STORE_BOOL, fixed, false, false, false),
	{ 0 },
};

static const struct store_key nic_keys[] = {
	NIC_KEY("switch", STORE_TEXT, sw, true, false, false),
	NIC_KEY("mac-address", STORE_MAC, mac, true, false, false),
	NIC_KEY("mac-address-spoofing", STORE_BOOL, mac_spoofing, false, false, false),
	{ 0 },
};

/* A section: its keys, and where its records are in struct vmconfig. */
struct store_section {
	const char *header;     /* "[disk]"; NULL for the top of the file */
	const char *title;      /* in messages */
	const char *plural;
	const struct store_key *keys;
	size_t count_off, array_off, size;
	unsigned int max;
};

static const struct store_section store_sections[] = {
	{ NULL, "top of the file", NULL, vm_keys, 0, 0, sizeof(struct vmconfig), 1 },
	{ "[disk]", "[disk]", "disks", disk_keys, offsetof(struct vmconfig, ndisks),
	  offsetof(struct vmconfig, disks), sizeof(struct vmconfig_disk), VMCONFIG_MAX_DISKS },
	{ "[network-adapter]", "[network-adapter]", "network adapters", nic_keys, offsetof(struct vmconfig, nnics),
	  offsetof(struct vmconfig, nics), sizeof(struct vmconfig_nic), VMCONFIG_MAX_NICS },
};

/* The record a section's keys write into: the VM, or its last disk or adapter. */
static char *store_record(const struct store_section *sec, struct vmconfig *vm)
{
	unsigned int n;

	if (!sec->header)
		return (char *)vm;
	memcpy(&n, (char *)vm + sec->count_off, sizeof(n));
	return (char *)vm + sec->array_off + (n - 1) * sec->size;
}

struct store_parser {
	const char *file;
	unsigned int line;
	char *err;
	size_t errlen;
	const struct store_section *sec;
	uint32_t seen;          /* keys of the current section, by their index */
	bool any_path;          /* a machine's configuration: disks anywhere */
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

static int store_set(struct store_parser *p, const struct store_key *k, char *field, const char *v)
{
	char why[160];
	uint64_t u;

	switch (k->type) {
	case STORE_FILE:
		/* A disk is a file of the VM's directory, named like a VM. */
		if (!p->any_path && vmconfig_check_name(v, "disk", why, sizeof(why)) < 0)
			return store_perr(p, "%s '%s': a disk is a file name inside the VM's directory "
					  "(letters, digits, '.', '_', '-')", k->key, v);
		/* fall through */
	case STORE_TEXT:
		if (strlen(v) >= k->size)
			return store_perr(p, "%s is longer than %zu characters", k->key, k->size - 1);
		strcpy(field, v);
		return 0;
	case STORE_SIZE:
		if (util_parse_size(v, &u) < 0)
			return store_perr(p, "%s '%s': not a size (examples: 512M, 2G)", k->key, v);
		memcpy(field, &u, sizeof(u));
		return 0;
	case STORE_CID:
		if (util_parse_uint(v, 3, 0xfffffffeULL, &u) < 0)
			return store_perr(p, "%s '%s': not a number from 3 to 4294967294", k->key, v);
		memcpy(field, &u, sizeof(u));
		return 0;
	case STORE_CPUS: {
		unsigned int n;

		if (util_parse_uint(v, 1, VMCONFIG_MAX_CPUS, &u) < 0)
			return store_perr(p, "%s '%s': not a number from 1 to %d", k->key, v, VMCONFIG_MAX_CPUS);
		n = (unsigned int)u;
		memcpy(field, &n, sizeof(n));
		return 0;
	}
	case STORE_BOOL:
		if (store_bool(v, (bool *)field) < 0)
			return store_perr(p, "%s '%s': must be on or off", k->key, v);
		return 0;
	case STORE_MAC:
		if (vmconfig_parse_mac(v, (uint8_t *)field) < 0)
			return store_perr(p, "%s '%s': not a unicast MAC address like 52:54:00:12:34:56", k->key, v);
		return 0;
	}
	return -EINVAL;
}

static int store_section_end(struct store_parser *p)
{
	const struct store_key *keys = p->sec->keys;

	for (int k = 0; keys[k].key; k++)
		if (keys[k].required && !(p->seen & (1u << k)))
			return store_perr(p, "%s lacks the key '%s'", p->sec->title, keys[k].key);
	return 0;
}

/* A "[section]" line: ends the section before and opens a new record. */
static int store_section_begin(struct store_parser *p, struct vmconfig *vm, const char *s)
{
	const struct store_section *sec = NULL;
	unsigned int n;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(store_sections); i++)
		if (store_sections[i].header && !strcmp(s, store_sections[i].header))
			sec = &store_sections[i];
	if (!sec)
		return store_perr(p, "unknown section '%s' (known: [disk], [network-adapter])", s);
	p->line--;       /* a missing key belongs to the section before */
	r = store_section_end(p);
	p->line++;
	if (r < 0)
		return r;
	memcpy(&n, (char *)vm + sec->count_off, sizeof(n));
	if (n >= sec->max)
		return store_perr(p, "more than %u %s", sec->max, sec->plural);
	n++;
	memcpy((char *)vm + sec->count_off, &n, sizeof(n));
	p->sec = sec;
	p->seen = 0;
	return 0;
}

/* A "key = value" line of the current section. */
static int store_key_line(struct store_parser *p, struct vmconfig *vm, char *s)
{
	const struct store_key *keys = p->sec->keys;
	char *eq = strchr(s, '='), *key, *val;
	int k;

	if (!eq)
		return store_perr(p, "expected 'key = value', found '%s'", s);
	*eq = 0;
	key = util_trim(s);
	val = util_trim(eq + 1);
	for (k = 0; keys[k].key && strcmp(keys[k].key, key); k++)
		;
	if (!keys[k].key) {
		size_t o = 0;
		char known[512];

		for (int i = 0; keys[i].key && o < sizeof(known); i++)
			o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "", keys[i].key);
		return store_perr(p, "unknown key '%s' in the %s (known: %s)", key, p->sec->title, known);
	}
	if (p->seen & (1u << k))
		return store_perr(p, "'%s' given twice", key);
	p->seen |= 1u << k;
	if (!*val && !keys[k].may_be_empty)
		return store_perr(p, "'%s' has no value", key);
	return store_set(p, &keys[k], store_record(p->sec, vm) + keys[k].off, val);
}

static int store_parse_any(const char *text, size_t len, const char *file, struct vmconfig *vm, bool any_path,
			   char *err, size_t errlen);
static int store_validate_any(const struct vmconfig *vm, bool any_path, char *err, size_t errlen);

int store_parse(const char *text, size_t len, const char *file, struct vmconfig *vm, char *err, size_t errlen)
{
	return store_parse_any(text, len, file, vm, false, err, errlen);
}

int store_parse_machine(const char *text, size_t len, const char *file, struct vmconfig *vm,
			char *err, size_t errlen)
{
	return store_parse_any(text, len, file, vm, true, err, errlen);
}

static int store_parse_any(const char *text, size_t len, const char *file, struct vmconfig *vm, bool any_path,
			   char *err, size_t errlen)
{
	struct store_parser p = { .file = file, .err = err, .errlen = errlen, .sec = &store_sections[0],
				  .any_path = any_path };
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
		char *s;

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
		r = *s == '[' ? store_section_begin(&p, vm, s) : store_key_line(&p, vm, s);
		if (r < 0)
			return r;
	}
	r = store_section_end(&p);
	if (r < 0)
		return r;
	r = store_validate_any(vm, any_path, err, errlen);
	if (r < 0) {
		/* Prefix the file so the message still says where. */
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "%s: %s", file, tmp);
	}
	return r;
}

/* A text value as vm.conf can hold it and give it back the same: one line
 * of no control characters, without spaces at either end (the parser trims
 * them), a disk a file name of the VM's directory. */
static int store_check_text(const struct store_key *k, const char *v, bool any_path, char *err, size_t errlen)
{
	size_t n = strlen(v);
	char why[160];

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			snprintf(err, errlen, "%s: a control character (0x%02x): vm.conf holds one line of "
				 "printable text for it", k->key, (unsigned char)v[i]);
			return -EINVAL;
		}
	if (n && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1]))) {
		snprintf(err, errlen, "%s '%s': a space at its start or end, which vm.conf cannot keep: remove it",
			 k->key, v);
		return -EINVAL;
	}
	if (k->type == STORE_FILE && !any_path && vmconfig_check_name(v, "disk", why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s '%s': a disk is a file name inside the VM's directory: %s", k->key, v, why);
		return -EINVAL;
	}
	return 0;
}

/* As store_validate; any_path: a running machine's configuration (a saved
 * state's, a migration's), whose disks are paths, not names in a VM's
 * directory. */
static int store_validate_any(const struct vmconfig *vm, bool any_path, char *err, size_t errlen)
{
	char why[160];

	if (store_name_check(vm->name, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "name '%s': %s", vm->name, why);
		return -EINVAL;
	}
	/* Every text field of every record, as the tables name them. */
	for (size_t i = 0; i < ARRAY_SIZE(store_sections); i++) {
		const struct store_section *sec = &store_sections[i];
		unsigned int n = 1;

		if (sec->header)
			memcpy(&n, (const char *)vm + sec->count_off, sizeof(n));
		for (unsigned int j = 0; j < n && j < sec->max; j++) {
			const char *rec = (const char *)vm + sec->array_off + j * sec->size;

			for (const struct store_key *k = sec->keys; k->key; k++) {
				const char *v = rec + k->off;

				if (k->type != STORE_TEXT && k->type != STORE_FILE)
					continue;
				if (!memchr(v, 0, k->size)) {
					snprintf(err, errlen, "%s is longer than %zu characters", k->key, k->size - 1);
					return -EINVAL;
				}
				if (store_check_text(k, v, any_path, err, errlen) < 0)
					return -EINVAL;
			}
		}
	}
	return vmconfig_validate(vm, &vmconfig_conf_names, err, errlen);
}

int store_validate(const struct vmconfig *vm, char *err, size_t errlen)
{
	return store_validate_any(vm, false, err, errlen);
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

/* One record's "key = value" lines, as its section's table says. */
static void store_format_keys(struct store_buf *b, const struct store_key *keys, const char *rec)
{
	for (const struct store_key *k = keys; k->key; k++) {
		const char *field = rec + k->off;
		char s[32];
		uint64_t u;
		unsigned int n;

		switch (k->type) {
		case STORE_TEXT:
		case STORE_FILE:
			store_printf(b, "%s = %s\n", k->key, field);
			break;
		case STORE_SIZE:
			memcpy(&u, field, sizeof(u));
			if (u || !k->omit_zero)
				store_printf(b, "%s = %s\n", k->key, util_fmt_size(u, s, sizeof(s)));
			break;
		case STORE_CID:
			memcpy(&u, field, sizeof(u));
			if (u || !k->omit_zero)
				store_printf(b, "%s = %llu\n", k->key, (unsigned long long)u);
			break;
		case STORE_CPUS:
			memcpy(&n, field, sizeof(n));
			store_printf(b, "%s = %u\n", k->key, n);
			break;
		case STORE_BOOL:
			if (*(const bool *)field || !k->omit_zero)
				store_printf(b, "%s = %s\n", k->key, *(const bool *)field ? "on" : "off");
			break;
		case STORE_MAC:
			store_printf(b, "%s = %s\n", k->key, vmconfig_fmt_mac((const uint8_t *)field, s, sizeof(s)));
			break;
		}
	}
}

char *store_format(const struct vmconfig *vm)
{
	struct store_buf b = { 0 };

	store_printf(&b, "# nestvm virtual machine %s: one 'key = value' a line, '#' starts a comment.\n"
		     "# Change it with 'nestvm vm set %s', or edit it while the VM is off;\n"
		     "# 'nestvm vm show %s' reports any mistake with its line number.\n",
		     vm->name, vm->name, vm->name);
	store_format_keys(&b, vm_keys, (const char *)vm);
	for (size_t i = 1; i < ARRAY_SIZE(store_sections); i++) {
		const struct store_section *sec = &store_sections[i];
		unsigned int n;

		memcpy(&n, (const char *)vm + sec->count_off, sizeof(n));
		for (unsigned int j = 0; j < n && j < sec->max; j++) {
			store_printf(&b, "\n%s\n", sec->header);
			store_format_keys(&b, sec->keys, (const char *)vm + sec->array_off + j * sec->size);
		}
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- files ---- */

/* Whether the directory open at fd (path names it in messages) may hold the
 * store's files: a directory owned by the caller or root. Anyone else owning
 * it could plant links in it or swap a VM's files under it. */
static int store_dir_trusted(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	uid_t me = geteuid();

	if (fstat(fd, &st) < 0) {
		int r = -errno;

		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", path);
		return -ENOTDIR;
	}
	if (st.st_uid != me && st.st_uid != 0) {
		snprintf(err, errlen, "%s: owned by uid %u, not by you (uid %u) or root: another user could change "
			 "what is in it, so nestvm refuses it (use a store of your own, --store DIR)", path,
			 (unsigned int)st.st_uid, (unsigned int)me);
		return -EPERM;
	}
	return 0;
}

/* Opens at/name as a trusted directory, never through a symbolic link. */
static int store_open_at(int at, const char *name, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd, r;

	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if ((r == -ELOOP || r == -ENOTDIR) && fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode)) {
			snprintf(err, errlen, "%s: a symbolic link, which the store never follows: give the real "
				 "directory instead", path);
			return -ELOOP;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = store_dir_trusted(fd, path, err, errlen);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int store_open_dir(const char *root, const char *name, char *err, size_t errlen)
{
	char path[STORE_PATH_MAX + 80], why[160];
	int rfd, fd;

	if ((size_t)snprintf(path, sizeof(path), "store %s", root) >= sizeof(path)) {
		snprintf(err, errlen, "store path too long");
		return -ENAMETOOLONG;
	}
	rfd = store_open_at(AT_FDCWD, root, path, err, errlen);
	if (rfd < 0 || !name)
		return rfd;
	/* A name of the store: never "..", never a path. */
	if (vmconfig_check_name(name, "VM", why, sizeof(why)) < 0) {
		close(rfd);
		snprintf(err, errlen, "'%s': %s", name, why);
		return -EINVAL;
	}
	if (store_path(path, sizeof(path), root, name, NULL) < 0) {
		close(rfd);
		snprintf(err, errlen, "store path too long");
		return -ENAMETOOLONG;
	}
	fd = store_open_at(rfd, name, path, err, errlen);
	close(rfd);
	return fd;
}

/* Reads the file name of the directory at dfd as store_read() does. */
static int store_read_at(int dfd, const char *name, const char *path, size_t max, char **text, size_t *len,
			 char *err, size_t errlen)
{
	struct stat st;
	size_t done = 0;
	char *buf;
	int fd, r;

	*text = NULL;
	*len = 0;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ELOOP)
			snprintf(err, errlen, "%s: a symbolic link, which the store never follows", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file (a FIFO, a device or a directory): refusing to read it",
			 path);
		goto out;
	}
	/* The size first: a huge (or sparse) file is refused, not read. */
	if ((uint64_t)st.st_size > max) {
		r = -EFBIG;
		snprintf(err, errlen, "%s: %lld bytes, larger than the %zu such a file can have: not one nestvm wrote",
			 path, (long long)st.st_size, max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
			free(buf);
			goto out;
		}
		if (n == 0)
			break;          /* it shrank meanwhile: what is there */
		done += (size_t)n;
	}
	buf[done] = 0;
	*text = buf;
	*len = done;
	r = 0;
out:
	close(fd);
	return r;
}

int store_read(const char *root, const char *name, const char *file, size_t max, char **text, size_t *len,
	       char *err, size_t errlen)
{
	char path[STORE_PATH_MAX + 128];
	int dfd, r;

	*text = NULL;
	*len = 0;
	if (store_path(path, sizeof(path), root, name, file) < 0) {
		snprintf(err, errlen, "store path too long");
		return -ENAMETOOLONG;
	}
	dfd = store_open_dir(root, name, err, errlen);
	if (dfd < 0)
		return dfd;
	r = store_read_at(dfd, file, path, max, text, len, err, errlen);
	close(dfd);
	return r;
}

int store_read_in(const char *dir, const char *file, size_t max, char **text, size_t *len,
		  char *err, size_t errlen)
{
	char path[STORE_PATH_MAX + 300];
	int dfd, r;

	*text = NULL;
	*len = 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path)) {
		snprintf(err, errlen, "store path too long");
		return -ENAMETOOLONG;
	}
	dfd = store_open_at(AT_FDCWD, dir, dir, err, errlen);
	if (dfd < 0)
		return dfd;
	r = store_read_at(dfd, file, path, max, text, len, err, errlen);
	close(dfd);
	return r;
}

int store_parse_pid(const char *text, size_t len, int *pid)
{
	uint64_t v = 0;
	size_t i;

	*pid = 0;
	for (i = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(text[i] - '0');
		if (v > INT32_MAX)
			return -EINVAL;
	}
	if (i == 0 || v < 2)
		return -EINVAL;
	if (i < len && !(text[i] == '\n' && i + 1 == len))
		return -EINVAL;
	*pid = (int)v;
	return 0;
}

int store_write_atomic(const char *dir, const char *file, const char *data, size_t len)
{
	char tmp[VMCONFIG_NAME_MAX + 16], why[STORE_PATH_MAX + 300];
	int dfd, fd, r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.tmp", file) >= sizeof(tmp))
		return -ENAMETOOLONG;
	dfd = store_open_at(AT_FDCWD, dir, dir, why, sizeof(why));
	if (dfd < 0)
		return dfd;
	/* A temporary left by a killed writer goes; O_EXCL then makes a fresh
	 * file of mode 0600, which no umask can widen. */
	(void)unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		close(dfd);
		return r;
	}
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
	if (r)
		goto fail;
	store_crash_point("save-written");
	if (renameat(dfd, tmp, dfd, file) < 0) {
		r = -errno;
		goto fail;
	}
	store_crash_point("save-renamed");
	if (store_io->fsync(dfd) < 0)
		r = -errno;
	close(dfd);
	return r;
fail:
	unlinkat(dfd, tmp, 0);
	close(dfd);
	return r;
}

int store_load(const char *root, const char *name, struct vmconfig *vm, char *err, size_t errlen)
{
	char path[STORE_PATH_MAX + 128], why[160], *data;
	size_t len;
	int dfd, r;

	if (store_name_check(name, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "'%s': %s", name, why);
		return -EINVAL;
	}
	if (store_path(path, sizeof(path), root, name, STORE_CONF) < 0) {
		snprintf(err, errlen, "store path too long");
		return -ENAMETOOLONG;
	}
	dfd = store_open_dir(root, name, err, errlen);
	if (dfd == -ENOENT) {
		snprintf(err, errlen, "no VM named '%s' in the store %s", name, root);
		return -ENOENT;
	}
	if (dfd < 0)
		return dfd;
	r = store_read_at(dfd, STORE_CONF, path, STORE_CONF_MAX, &data, &len, err, errlen);
	close(dfd);
	if (r == -ENOENT) {
		snprintf(err, errlen, "%s: missing: the VM's directory has no configuration", path);
		return -EINVAL;
	}
	if (r == -EFBIG) {
		snprintf(err, errlen, "%s:1: larger than %d KiB: not a VM configuration", path, STORE_CONF_MAX >> 10);
		return -EINVAL;
	}
	if (r < 0)
		return r;
	r = store_parse(data, len, path, vm, err, errlen);
	free(data);
	if (r == 0 && strcmp(vm->name, name)) {
		snprintf(err, errlen, "%s: name '%s' does not match its directory '%s'", path, vm->name, name);
		return -EINVAL;
	}
	return r;
}

int store_load_machine(const char *root, const char *name, struct vmconfig *vm, char *err, size_t errlen)
{
	int r = store_load(root, name, vm, err, errlen);

	for (unsigned int i = 0; r == 0 && i < vm->ndisks; i++) {
		struct vmconfig_disk *d = &vm->disks[i];
		char path[sizeof(d->path)];

		if (store_path(path, sizeof(path), root, name, d->path) < 0) {
			snprintf(err, errlen, "VM '%s': the path of disk '%s' is too long", name, d->path);
			return -ENAMETOOLONG;
		}
		strcpy(d->path, path);
	}
	/* A VM's vsock is served on a socket in its directory. */
	if (r == 0 && vm->vsock_cid && store_path(vm->vsock_uds, sizeof(vm->vsock_uds), root, name,
						  STORE_VSOCK_SOCK) < 0) {
		snprintf(err, errlen, "VM '%s': the path of its vsock socket is too long", name);
		return -ENAMETOOLONG;
	}
	return r;
}

int store_save(const char *root, const struct vmconfig *vm, char *err, size_t errlen)
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


/* Deletes at/name and all below it without following a link: a link is
 * removed as a link, and only real directories are descended into (openat
 * with O_NOFOLLOW, so one swapped for a link meanwhile is not entered). */
static int store_rm_rf_at(int at, const char *name, int depth)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd, r = 0;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(at, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (depth > 16)
		return -ELOOP;
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((e = readdir(d))) {
		int sub;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		sub = store_rm_rf_at(dirfd(d), e->d_name, depth + 1);
		if (sub < 0 && !r)
			r = sub;
	}
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && !r)
		r = -errno;
	return r;
}

int store_create(const char *root, const struct vmconfig *vm, char *err, size_t errlen)
{
	char tmp[STORE_PATH_MAX + 128], dst[STORE_PATH_MAX + 80];
	const char *tmpname;
	char *text = NULL;
	struct stat st;
	int rfd, r;

	r = store_validate(vm, err, errlen);
	if (r < 0)
		return r;
	/* A new store is its owner's alone: other users do not even see the
	 * names of its VMs. */
	r = util_mkdir_p(root, 0700);
	if (r < 0) {
		snprintf(err, errlen, "store %s: cannot create it: %s", root, strerror(-r));
		return r;
	}
	rfd = store_open_dir(root, NULL, err, errlen);
	if (rfd < 0)
		return rfd;
	if (faccessat(rfd, ".", W_OK, AT_EACCESS) < 0) {
		r = -errno;
		snprintf(err, errlen, "store %s: not writable: %s (choose another with --store DIR)", root,
			 strerror(-r));
		goto out;
	}
	if (store_path(dst, sizeof(dst), root, vm->name, NULL) < 0 ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.new-%s.XXXXXX", root, vm->name) >= sizeof(tmp)) {
		snprintf(err, errlen, "store path too long");
		r = -ENAMETOOLONG;
		goto out;
	}
	tmpname = tmp + strlen(root) + 1;
	if (fstatat(rfd, vm->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		snprintf(err, errlen, "a VM named '%s' already exists in %s", vm->name, root);
		r = -EEXIST;
		goto out;
	}
	/* mkdtemp makes it 0700: the VM's console, disks and sockets are
	 * behind a directory only its owner enters. */
	if (!mkdtemp(tmp)) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(-r));
		goto out;
	}
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
	if (renameat2(rfd, tmpname, rfd, vm->name, RENAME_NOREPLACE) < 0) {
		r = -errno;
		if (r == -EEXIST)
			snprintf(err, errlen, "a VM named '%s' already exists in %s", vm->name, root);
		else
			snprintf(err, errlen, "%s: %s", dst, strerror(-r));
		goto fail;
	}
	store_crash_point("create-renamed");
	(void)store_io->fsync(rfd);
	r = 0;
	goto out;
fail:
	store_rm_rf_at(rfd, tmpname, 0);
out:
	free(text);
	close(rfd);
	return r;
}

int store_remove(const char *root, const char *name, char *err, size_t errlen)
{
	char tmp[VMCONFIG_NAME_MAX + 32], why[160];
	int rfd, dfd, r;

	if (store_name_check(name, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "'%s': %s", name, why);
		return -EINVAL;
	}
	snprintf(tmp, sizeof(tmp), ".removed-%s.%d", name, (int)getpid());
	/* Only a real directory of the caller's (or root's) goes: a link in its
	 * place is refused, not followed to whatever it points at. */
	dfd = store_open_dir(root, name, err, errlen);
	if (dfd < 0)
		return dfd;
	close(dfd);
	rfd = store_open_dir(root, NULL, err, errlen);
	if (rfd < 0)
		return rfd;
	if (renameat(rfd, name, rfd, tmp) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s/%s: %s", root, name, strerror(-r));
		close(rfd);
		return r;
	}
	store_crash_point("remove-renamed");
	(void)store_io->fsync(rfd);
	r = store_rm_rf_at(rfd, tmp, 0);
	if (r < 0)
		snprintf(err, errlen, "%s/%s: removed from the store, but deleting its files failed: %s",
			 root, tmp, strerror(-r));
	close(rfd);
	return r;
}

static int store_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_list(const char *root, char ***names, size_t *n)
{
	return store_list_dir(root, "VM", names, n);
}

int store_list_dir(const char *dir, const char *what, char ***names, size_t *n)
{
	char why[STORE_PATH_MAX + 300];
	struct dirent *e;
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	int fd;
	DIR *d;

	*names = NULL;
	*n = 0;
	fd = store_open_at(AT_FDCWD, dir, dir, why, sizeof(why));
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	while ((e = readdir(d))) {
		char why2[160];

		/* Hidden entries are VMs being made or removed. */
		if ((!strcmp(what, "VM") ? store_name_check(e->d_name, why2, sizeof(why2))
					 : vmconfig_check_name(e->d_name, what, why2, sizeof(why2))) < 0)
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
	char why[STORE_PATH_MAX + 300];
	struct stat st;
	int dfd, fd;

	dfd = store_open_dir(root, name, why, sizeof(why));
	if (dfd < 0)
		return dfd;
	/* A VM made before its directory was its owner's alone is made so now,
	 * by the first command that changes it. */
	if (fstat(dfd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077))
		(void)fchmod(dfd, st.st_mode & 0700);
	fd = openat(dfd, STORE_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	close(dfd);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077))
		(void)fchmod(fd, 0600);
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
	char why[STORE_PATH_MAX + 300];
	bool alive = false;
	int dfd, fd;

	dfd = store_open_dir(root, name, why, sizeof(why));
	if (dfd < 0)
		return false;
	fd = openat(dfd, STORE_RUN_LOCK, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	close(dfd);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		alive = errno == EWOULDBLOCK;
	close(fd);
	return alive;
}

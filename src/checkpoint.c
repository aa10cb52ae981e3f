/* Checkpoints of a VM of the store (see checkpoint.h). */
#include "checkpoint.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CP_PATH_MAX (STORE_PATH_MAX + 2 * VMCONFIG_NAME_MAX + 64)

static int cp_err(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int cp_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* root/vm/checkpoints[/name] */
static int cp_path(char *buf, size_t len, const char *root, const char *vm, const char *name)
{
	char base[STORE_PATH_MAX + 80];
	int n;

	if (store_path(base, sizeof(base), root, vm, CHECKPOINT_DIR) < 0)
		return -ENAMETOOLONG;
	n = name ? snprintf(buf, len, "%s/%s", base, name) : snprintf(buf, len, "%s", base);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* A directory of files only, as checkpoints are; links are removed, never followed. */
static void cp_remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				(void)unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	(void)rmdir(dir);
}

void checkpoint_abandon(const char *dir)
{
	cp_remove_dir(dir);
}

int checkpoint_begin(const char *root, const char *vm, const char *name, char *dir, size_t len,
		     char *err, size_t errlen)
{
	char base[CP_PATH_MAX], final[CP_PATH_MAX];
	struct stat st;

	if (vmconfig_check_name(name, "checkpoint", err, errlen) < 0)
		return -EINVAL;
	if (cp_path(base, sizeof(base), root, vm, NULL) < 0 || cp_path(final, sizeof(final), root, vm, name) < 0)
		return cp_err(err, errlen, -ENAMETOOLONG, "the store path is too long");
	if (lstat(final, &st) == 0)
		return cp_err(err, errlen, -EEXIST, "VM %s already has a checkpoint named %s", vm, name);
	if (mkdir(base, 0700) < 0 && errno != EEXIST)
		return cp_err(err, errlen, -errno, "%s: %s", base, strerror(errno));
	if (lstat(base, &st) < 0 || !S_ISDIR(st.st_mode))
		return cp_err(err, errlen, -ENOTDIR, "%s is not a directory", base);
	if (snprintf(dir, len, "%s/.new-%s-%d", base, name, (int)getpid()) >= (int)len)
		return cp_err(err, errlen, -ENAMETOOLONG, "the store path is too long");
	if (mkdir(dir, 0700) < 0)
		return cp_err(err, errlen, -errno, "%s: %s", dir, strerror(errno));
	return 0;
}

static const char *cp_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int checkpoint_copy_disks(const struct vmconfig *cfg, const char *base, const char *dir, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < cfg->ndisks; i++) {
		char src[CP_PATH_MAX + VMCONFIG_PATH_MAX], dst[CP_PATH_MAX + VMCONFIG_NAME_MAX + 8];
		const char *p = cfg->disks[i].path;
		int r;

		if (base && p[0] != '/')
			snprintf(src, sizeof(src), "%s/%s", base, p);
		else
			snprintf(src, sizeof(src), "%s", p);
		snprintf(dst, sizeof(dst), "%s/%s", dir, cp_basename(p));
		r = util_copy_file(src, dst, NULL);
		if (r < 0)
			return cp_err(err, errlen, r, "copying disk '%s': %s", src, strerror(-r));
	}
	return 0;
}

int checkpoint_finish(const char *root, const char *vm, const char *name, const char *dir,
		      const char *from, uint64_t millis, char *err, size_t errlen)
{
	char conf[CP_PATH_MAX], final[CP_PATH_MAX], text[512], have[CP_PATH_MAX + 16];
	int r, n;

	if (store_path(conf, sizeof(conf), root, vm, STORE_CONF) < 0 ||
	    cp_path(final, sizeof(final), root, vm, name) < 0) {
		r = cp_err(err, errlen, -ENAMETOOLONG, "the store path is too long");
		goto fail;
	}
	snprintf(have, sizeof(have), "%s/%s", dir, CHECKPOINT_VMCONF);
	r = util_copy_file(conf, have, NULL);
	if (r < 0) {
		cp_err(err, errlen, r, "copying %s: %s", conf, strerror(-r));
		goto fail;
	}
	snprintf(have, sizeof(have), "%s/%s", dir, CHECKPOINT_STATE);
	n = snprintf(text, sizeof(text), "name = %s\ncreated = %lld\nfrom = %s\nmillis = %llu\nstate = %s\n", name,
		     (long long)time(NULL), from, (unsigned long long)millis, access(have, F_OK) == 0 ? "yes" : "no");
	r = store_write_atomic(dir, CHECKPOINT_CONF, text, (size_t)n);
	if (r < 0) {
		cp_err(err, errlen, r, "writing %s/%s: %s", dir, CHECKPOINT_CONF, strerror(-r));
		goto fail;
	}
	if (rename(dir, final) < 0) {
		r = cp_err(err, errlen, -errno, "%s: %s", final, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	cp_remove_dir(dir);
	return r;
}

/* One "key = value" of a checkpoint.conf. */
static void cp_field(const char *text, const char *key, char *out, size_t len)
{
	size_t k = strlen(key);

	out[0] = '\0';
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, k) && !strncmp(p + k, " = ", 3)) {
			size_t n = strcspn(p + k + 3, "\n");

			snprintf(out, len, "%.*s", (int)MIN(n, len - 1), p + k + 3);
			return;
		}
}

static int cp_read(const char *dir, const char *name, struct checkpoint *c)
{
	char why[CP_PATH_MAX + 300], v[64];
	size_t len = 0;
	char *text;
	int r;

	r = store_read_in(dir, CHECKPOINT_CONF, 4096, &text, &len, why, sizeof(why));
	if (r < 0)
		return r == -ENOENT ? -ENOENT : -EINVAL;
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	cp_field(text, "created", v, sizeof(v));
	c->created = strtoll(v, NULL, 10);
	cp_field(text, "from", c->from, sizeof(c->from));
	cp_field(text, "millis", v, sizeof(v));
	c->millis = strtoull(v, NULL, 10);
	cp_field(text, "state", v, sizeof(v));
	c->has_state = !strcmp(v, "yes");
	free(text);
	c->bytes = util_disk_usage(dir);
	return 0;
}

static int cp_by_time(const void *a, const void *b)
{
	const struct checkpoint *x = a, *y = b;

	return x->created < y->created ? -1 : x->created > y->created ? 1 : strcmp(x->name, y->name);
}

int checkpoint_list(const char *root, const char *vm, struct checkpoint **list, size_t *n)
{
	char base[CP_PATH_MAX];
	struct dirent *e;
	DIR *d;

	*list = NULL;
	*n = 0;
	if (cp_path(base, sizeof(base), root, vm, NULL) < 0)
		return -ENAMETOOLONG;
	d = opendir(base);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		char dir[CP_PATH_MAX + 300];
		struct checkpoint c, *grown;
		char why[160];

		/* Hidden ones are being made, or were abandoned by a crash. */
		if (e->d_name[0] == '.' || vmconfig_check_name(e->d_name, "checkpoint", why, sizeof(why)) < 0)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", base, e->d_name);
		if (cp_read(dir, e->d_name, &c) < 0)
			continue;
		grown = realloc(*list, (*n + 1) * sizeof(**list));
		if (!grown) {
			closedir(d);
			free(*list);
			*list = NULL;
			*n = 0;
			return -ENOMEM;
		}
		*list = grown;
		(*list)[(*n)++] = c;
	}
	closedir(d);
	if (*n)
		qsort(*list, *n, sizeof(**list), cp_by_time);
	return 0;
}

/* Replaces dst with a copy of src: a copy beside it first, then a rename. */
static int cp_replace(const char *src, const char *dst, char *err, size_t errlen)
{
	char tmp[CP_PATH_MAX + VMCONFIG_NAME_MAX + 32];
	int r;

	snprintf(tmp, sizeof(tmp), "%s.restore-%d", dst, (int)getpid());
	r = util_copy_file(src, tmp, NULL);
	if (r < 0)
		return cp_err(err, errlen, r, "copying '%s': %s", src, strerror(-r));
	if (rename(tmp, dst) < 0) {
		r = -errno;
		unlink(tmp);
		return cp_err(err, errlen, r, "'%s': %s", dst, strerror(-r));
	}
	return 0;
}

int checkpoint_restore(const char *root, const char *vm, const char *name, char *err, size_t errlen)
{
	char dir[CP_PATH_MAX], vmdir[STORE_PATH_MAX + 80], src[CP_PATH_MAX + 32], dst[STORE_PATH_MAX + 160];
	struct vmconfig *cfg = NULL;
	struct checkpoint c;
	char why[1024];
	char *text;
	size_t len;
	int r;

	if (vmconfig_check_name(name, "checkpoint", err, errlen) < 0)
		return -EINVAL;
	if (cp_path(dir, sizeof(dir), root, vm, name) < 0 || store_path(vmdir, sizeof(vmdir), root, vm, NULL) < 0)
		return cp_err(err, errlen, -ENAMETOOLONG, "the store path is too long");
	if (cp_read(dir, name, &c) < 0)
		return cp_err(err, errlen, -ENOENT, "VM %s has no checkpoint named %s (see nestvm vm checkpoint "
			      "list %s)", vm, name, vm);
	/* Its configuration must load before anything is replaced. */
	snprintf(src, sizeof(src), "%s/%s", dir, CHECKPOINT_VMCONF);
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return cp_err(err, errlen, -ENOMEM, "out of memory");
	r = store_read_in(dir, CHECKPOINT_VMCONF, STORE_CONF_MAX, &text, &len, err, errlen);
	if (r < 0)
		goto out;
	r = store_parse(text, len, src, cfg, why, sizeof(why));
	free(text);
	if (r < 0) {
		cp_err(err, errlen, r, "%s", why);
		goto out;
	}
	for (unsigned int i = 0; i < cfg->ndisks; i++) {
		snprintf(src, sizeof(src), "%s/%s", dir, cp_basename(cfg->disks[i].path));
		snprintf(dst, sizeof(dst), "%s/%s", vmdir, cp_basename(cfg->disks[i].path));
		r = cp_replace(src, dst, err, errlen);
		if (r < 0)
			goto out;
	}
	snprintf(src, sizeof(src), "%s/%s", dir, CHECKPOINT_VMCONF);
	snprintf(dst, sizeof(dst), "%s/%s", vmdir, STORE_CONF);
	r = cp_replace(src, dst, err, errlen);
	if (r < 0)
		goto out;
	snprintf(dst, sizeof(dst), "%s/%s", vmdir, STORE_SAVED);
	if (c.has_state) {
		snprintf(src, sizeof(src), "%s/%s", dir, CHECKPOINT_STATE);
		r = cp_replace(src, dst, err, errlen);
	} else if (unlink(dst) < 0 && errno != ENOENT) {
		r = cp_err(err, errlen, -errno, "'%s': %s", dst, strerror(errno));
	}
out:
	free(cfg);
	return r;
}

int checkpoint_remove(const char *root, const char *vm, const char *name, char *err, size_t errlen)
{
	char dir[CP_PATH_MAX], gone[CP_PATH_MAX + 32];
	struct checkpoint c;

	if (vmconfig_check_name(name, "checkpoint", err, errlen) < 0)
		return -EINVAL;
	if (cp_path(dir, sizeof(dir), root, vm, name) < 0)
		return cp_err(err, errlen, -ENAMETOOLONG, "the store path is too long");
	if (cp_read(dir, name, &c) < 0)
		return cp_err(err, errlen, -ENOENT, "VM %s has no checkpoint named %s", vm, name);
	/* Out of sight first: a crash leaves a hidden directory, not half a checkpoint. */
	snprintf(gone, sizeof(gone), "%s/../.gone-%s-%d", dir, name, (int)getpid());
	if (rename(dir, gone) < 0)
		return cp_err(err, errlen, -errno, "%s: %s", dir, strerror(errno));
	cp_remove_dir(gone);
	return 0;
}

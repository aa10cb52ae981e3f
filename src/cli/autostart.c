/* "nestvm autostart": what the host does with the store when it boots and
 * shuts down, the commands nestvm.service runs. start brings up every
 * switch and each VM set to start with the host (vm set --autostart on);
 * stop saves every running VM, or shuts it down within a bounded wait. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/vmctl.h"
#include "net/switch.h"
#include "store.h"
#include "vmm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define AUTOSTART_SWITCH_STOP_MS 5000

struct autostart_opts {
	const char *store;
	unsigned int timeout;
	bool skip_probe;
};

#define AO(name, s, type, field, meta, help, ...) \
	{ name, s, type, offsetof(struct autostart_opts, field), meta, help, __VA_ARGS__ }
#define AO_STORE AO("store", 0, OPT_STR, store, "DIR", "the store (default $NESTVM_STORE, /var/lib/nestvm " \
		    "for root, else ~/.local/share/nestvm)", 0, 0, NULL)

static const struct opt start_table[] = {
	AO("skip-probe", 0, OPT_FLAG, skip_probe, NULL, "start even where KVM emulates guest code slowly", 0, 0, NULL),
	AO_STORE,
	{ 0 },
};

static const struct opt stop_table[] = {
	AO("timeout", 't', OPT_UINT, timeout, "SECS",
	   "how long to wait for each VM's save, then for its guest to shut down, before it is turned off "
	   "(default 120)", 1, 3600, NULL),
	AO_STORE,
	{ 0 },
};

static const struct opt list_table[] = {
	AO_STORE,
	{ 0 },
};

/* Starts each stopped switch of the store; returns how many failed. */
static int autostart_switches(const char *store)
{
	char **names, err[2 * SWITCHD_PATH_MAX];
	size_t n;
	int failed = 0, r;

	r = switchd_list(store, &names, &n);
	if (r < 0) {
		cli_error("autostart start: the store's switches: %s", strerror(-r));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		struct switchd_config c;
		char dir[SWITCHD_PATH_MAX];
		pid_t pid;

		if (switchd_path(store, names[i], NULL, dir, sizeof(dir)) < 0 || switchd_alive(dir))
			continue;
		if (switchd_config_load(dir, names[i], &c, err, sizeof(err)) < 0 ||
		    switchd_start(&c, &pid, err, sizeof(err)) < 0) {
			cli_error("autostart start: switch '%s': %s", names[i], err);
			failed++;
			continue;
		}
		printf("Started switch %s (pid %d)\n", names[i], (int)pid);
	}
	store_list_free(names, n);
	return failed;
}

/* Calls fn on each VM of the store that loads; one that does not is
 * reported and counted as failed. Returns how many failed. */
static int autostart_each_vm(const char *cmd, const char *root, bool only_marked,
			     int (*fn)(const char *cmd, const char *root, const struct vmconfig *vm, const void *arg),
			     const void *arg)
{
	struct vmconfig vm;
	char **names;
	size_t n;
	int failed = 0, r;

	r = store_list(root, &names, &n);
	if (r < 0) {
		cli_error("%s: the store %s: %s", cmd, root, strerror(-r));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (vmctl_load(cmd, root, names[i], &vm)) {
			failed++;
			continue;
		}
		if (only_marked && !vm.autostart)
			continue;
		if (fn(cmd, root, &vm, arg))
			failed++;
	}
	store_list_free(names, n);
	return failed;
}

static int autostart_start_vm(const char *cmd, const char *root, const struct vmconfig *vm, const void *arg)
{
	const struct autostart_opts *o = arg;
	struct vmm_state st;
	bool saved;
	int r;

	vmm_state(root, vm->name, &st);
	saved = vmm_state_is_saved(&st);
	if (!vmm_state_is_off(&st) && !saved) {
		printf("VM %s is already %s\n", vm->name, st.state);
		return 0;
	}
	r = run_stored(cmd, root, vm->name, &(struct run_stored_opts){ .skip_probe = o->skip_probe, .detach = true });
	if (r) {
		cli_error("%s: VM %s did not start (see above)", cmd, vm->name);
		return r;
	}
	vmm_state(root, vm->name, &st);
	printf("%s VM %s (VMM pid %d)\n", saved ? "Resumed" : "Started", vm->name, st.pid);
	return 0;
}

/* The stop action: save; where the save fails, shut down, then turn off. */
static int autostart_stop_vm(const char *cmd, const char *root, const struct vmconfig *vm, const void *arg)
{
	const struct autostart_opts *o = arg;
	struct vmm_state st;

	vmm_state(root, vm->name, &st);
	if (vmm_state_is_off(&st) || vmm_state_is_saved(&st))
		return 0;
	if (vmctl_save(cmd, root, vm->name, (int)o->timeout) == 0)
		return 0;
	vmm_state(root, vm->name, &st);
	if (vmm_state_is_off(&st) || vmm_state_is_saved(&st))
		return 0;
	printf("VM %s was not saved; shutting it down\n", vm->name);
	return vmctl_stop(cmd, root, vm->name, (int)o->timeout, true, false);
}

static int autostart_list_vm(const char *cmd, const char *root, const struct vmconfig *vm, const void *arg)
{
	struct vmm_state st;

	(void)cmd, (void)arg;
	vmm_state(root, vm->name, &st);
	printf("%-24s %s\n", vm->name, vmm_state_is_saved(&st) ? "Saved" : st.state);
	return 0;
}

/* Stops each running switch that no adapter still uses. */
static void autostart_stop_switches(const char *store)
{
	char **names, err[2 * SWITCHD_PATH_MAX];
	size_t n;

	if (switchd_list(store, &names, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		char dir[SWITCHD_PATH_MAX];

		if (switchd_path(store, names[i], NULL, dir, sizeof(dir)) < 0 || !switchd_alive(dir))
			continue;
		if (switchd_stop(dir, false, AUTOSTART_SWITCH_STOP_MS, err, sizeof(err)) < 0)
			printf("Switch %s runs on: %s\n", names[i], err);
		else
			printf("Stopped switch %s\n", names[i]);
	}
	store_list_free(names, n);
}

static void autostart_usage(FILE *out)
{
	fputs("Usage: nestvm autostart COMMAND [OPTIONS]\n"
	      "What the host does with the store when it starts and stops (nestvm.service runs these).\n\n"
	      "Commands:\n"
	      "  start   start every switch, then each VM set to start with the host\n"
	      "          (nestvm vm set NAME --autostart on); a Saved VM resumes\n"
	      "  stop    save every running VM; one that cannot be saved is shut down,\n"
	      "          and turned off after --timeout; then stop the idle switches\n"
	      "  list    the VMs set to start with the host, and their states\n\n"
	      "Each command takes --help. Exit status: 0 done, 1 something failed (each named).\n", out);
}

struct autostart_sub {
	const char *name, *usage, *summary;
	const struct opt *table;
};

static const struct autostart_sub autostart_subs[] = {
	{ "start", "nestvm autostart start [--skip-probe]",
	  "Start every stopped switch of the store, then every VM set to start with the host that\n"
	  "is Off or Saved (a Saved VM resumes where it was). A failure is reported and the\n"
	  "others are started all the same; the exit status is then 1.", start_table },
	{ "stop", "nestvm autostart stop [--timeout SECS]",
	  "Save every running or paused VM of the store (nestvm vm save), waiting up to --timeout\n"
	  "seconds for each; a VM whose save fails gets its power button and the same wait, then\n"
	  "is turned off. Then stop each switch that no adapter uses any more.", stop_table },
	{ "list", "nestvm autostart list", "List the VMs set to start with the host, with their states.", list_table },
	{ 0 },
};

int cmd_autostart(int argc, char **argv)
{
	const struct autostart_sub *sub = NULL;
	struct autostart_opts o = { .timeout = 120 };
	char root[STORE_PATH_MAX], cmd[32];
	int r = cli_subcommand(autostart_usage, argc, argv), npos, failed = 0;

	if (r >= 0)
		return r;
	for (const struct autostart_sub *s = autostart_subs; s->name; s++)
		if (!strcmp(argv[0], s->name))
			sub = s;
	if (!sub) {
		cli_error("autostart: unknown command '%s' (see 'nestvm autostart help')", argv[0]);
		return EXIT_USAGE;
	}
	snprintf(cmd, sizeof(cmd), "autostart %s", sub->name);
	r = cli_parse(cmd, sub->table, sub->usage, sub->summary, argc - 1, argv + 1, &o, &npos, NULL);
	if (r >= 0)
		return r;
	if (npos > 0) {
		cli_error("%s: unexpected argument '%s' (see --help)", cmd, argv[1]);
		return EXIT_USAGE;
	}
	if ((r = vmctl_root(o.store, root, sizeof(root))))
		return r;
	if (!strcmp(sub->name, "start")) {
		failed = autostart_switches(o.store);
		failed += autostart_each_vm(cmd, root, true, autostart_start_vm, &o);
	} else if (!strcmp(sub->name, "stop")) {
		failed = autostart_each_vm(cmd, root, false, autostart_stop_vm, &o);
		autostart_stop_switches(o.store);
	} else {
		failed = autostart_each_vm(cmd, root, true, autostart_list_vm, &o);
	}
	fflush(stdout);
	return failed ? 1 : 0;
}

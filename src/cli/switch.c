/* "nestvm switch": virtual switches that VMs' adapters plug into. Each is a
 * daemon with a directory in the store (STORE/switches/NAME); these commands
 * create, start, stop, show, list and remove them. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "json.h"
#include "net/switch.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SWITCH_STOP_WAIT_MS 5000

struct switch_opts {
	const char *store;
	const char *uplink_tap;
	const char *uplink_if;
	unsigned int max_ports, max_addresses, max_port_addresses, aging, frame_max;
	int unlisted_spoofing;          /* 0: on, 1: off */
	bool foreground;
	bool no_seccomp;
	bool json;
	bool force;
};

#define SW_OPT(name, s, type, field, meta, help, ...) \
	{ name, s, type, offsetof(struct switch_opts, field), meta, help, __VA_ARGS__ }
#define SW_STORE SW_OPT("store", 0, OPT_STR, store, "DIR", \
	"the store (default $NESTVM_STORE, /var/lib/nestvm as root, else ~/.local/share/nestvm)", 0, 0, NULL)

static const char *const onoff[] = { "on", "off", NULL };

static const struct opt new_table[] = {
	SW_OPT("uplink-tap", 0, OPT_STR, uplink_tap, "IFNAME",
	       "connect the switch to this TAP device (created if missing; needs CAP_NET_ADMIN)", 0, 0, NULL),
	SW_OPT("uplink-if", 0, OPT_STR, uplink_if, "IFNAME",
	       "connect the switch to this existing interface, e.g. a nested host's eth0 (needs root)",
	       0, 0, NULL),
	SW_OPT("max-ports", 0, OPT_UINT, max_ports, "N", "adapters and uplink together (default 256)",
	       1, SWITCH_MAX_PORTS, NULL),
	SW_OPT("max-addresses", 0, OPT_UINT, max_addresses, "N",
	       "learned MAC addresses kept (default 4096)", 1, 1u << 20, NULL),
	SW_OPT("max-port-addresses", 0, OPT_UINT, max_port_addresses, "N",
	       "learned MAC addresses one adapter's port may hold (default 256)", 1, 1u << 20, NULL),
	SW_OPT("unlisted-spoofing", 0, OPT_CHOICE, unlisted_spoofing, "on|off",
	       "let an adapter that is no stored VM's (nestvm run) have the MAC address spoofing it asks for "
	       "(default on; a stored VM's adapter always gets its configuration's setting)", 0, 0, onoff),
	SW_OPT("aging", 0, OPT_UINT, aging, "SECONDS",
	       "forget a learned address not seen for this long (default 300)", 1, 1000000, NULL),
	SW_OPT("frame-max", 0, OPT_UINT, frame_max, "BYTES",
	       "drop longer frames (default 9216)", 64, SWITCH_FRAME_LIMIT, NULL),
	SW_OPT("foreground", 0, OPT_FLAG, foreground, NULL,
	       "run the switch in this process, logging to stderr, until SIGTERM", 0, 0, NULL),
	SW_OPT("no-seccomp", 0, OPT_FLAG, no_seccomp, NULL,
	       "run the daemon without its seccomp filter, for debugging (kept in switch.conf)", 0, 0, NULL),
	SW_STORE,
	{ 0 },
};

static const struct opt start_table[] = {
	SW_OPT("foreground", 0, OPT_FLAG, foreground, NULL,
	       "run the switch in this process, logging to stderr, until SIGTERM", 0, 0, NULL),
	SW_OPT("no-seccomp", 0, OPT_FLAG, no_seccomp, NULL,
	       "this time, run the daemon without its seccomp filter, for debugging", 0, 0, NULL),
	SW_STORE,
	{ 0 },
};

static const struct opt show_table[] = {
	SW_OPT("json", 0, OPT_FLAG, json, NULL, "print one JSON document", 0, 0, NULL),
	SW_STORE,
	{ 0 },
};

static const struct opt stop_table[] = {
	SW_OPT("force", 'f', OPT_FLAG, force, NULL, "even with adapters still connected", 0, 0, NULL),
	SW_STORE,
	{ 0 },
};

struct switch_cmd {
	const char *name;
	const char *usage;
	const char *summary;
	const struct opt *table;
	bool needs_name;
	int (*run)(const char *name, const struct switch_opts *o);
};

static void switch_usage(FILE *out)
{
	fputs("Usage: nestvm switch COMMAND [NAME] [OPTIONS]\n"
	      "Virtual switches for VMs' network adapters: MAC learning, flooding, and a port per\n"
	      "adapter that drops frames from any source MAC but the adapter's own unless the\n"
	      "adapter has MAC address spoofing on.\n\n"
	      "Commands:\n"
	      "  new NAME      create a switch and start it\n"
	      "  start NAME    start a stopped switch (after a reboot)\n"
	      "  stop NAME     stop a switch's daemon\n"
	      "  show NAME     ports, learned addresses and counters\n"
	      "  list          every switch in the store\n"
	      "  remove NAME   stop a switch and delete it\n\n"
	      "'nestvm switch COMMAND --help' describes each.\n", out);
}

/* The switch's directory, with the messages every command needs. */
static int switch_dir(const char *name, const struct switch_opts *o, char *dir, size_t len)
{
	char why[160];
	int r;

	if (switchd_name_check(name, why, sizeof(why)) < 0) {
		cli_error("switch '%s': %s", name, why);
		return -EINVAL;
	}
	r = switchd_path(o->store, name, NULL, dir, len);
	if (r < 0) {
		cli_error("switch '%s': cannot find the store (%s); name it with --store DIR",
			  name, strerror(-r));
		return r;
	}
	return 0;
}

static int switch_exists(const char *name, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cli_error("no switch '%s' (see 'nestvm switch list')", name);
		return -ENOENT;
	}
	return 0;
}

/* Deletes what a switch's directory holds (nothing else), then the directory. */
static int switch_delete_dir(const char *dir)
{
	static const char *const files[] = {
		SWITCHD_CONF, "." SWITCHD_CONF ".tmp", SWITCHD_LOCK, SWITCHD_PID, SWITCHD_LOG,
		SWITCHD_LOG ".old", SWITCHD_PORTS_SOCK, SWITCHD_CONTROL_SOCK,
	};
	char path[SWITCHD_PATH_MAX + 32];

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}
	return rmdir(dir) < 0 ? -errno : 0;
}

static int switch_launch(const struct switchd_config *c, bool foreground)
{
	char err[2 * SWITCHD_PATH_MAX];
	pid_t pid;
	int r;

	if (foreground) {
		/* Its log lines, and why it could not start, go to stderr. */
		r = switchd_run(c, -1);
		return r < 0 ? r : 0;
	}
	r = switchd_start(c, &pid, err, sizeof(err));
	if (r < 0) {
		cli_error("switch '%s': %s", c->name, err);
		return r;
	}
	printf("Switch '%s' is running (pid %d); adapters connect to %s/%s\n", c->name, (int)pid,
	       c->dir, SWITCHD_PORTS_SOCK);
	return 0;
}

static int switch_new(const char *name, const struct switch_opts *o)
{
	struct switchd_config c = { 0 };
	char root[SWITCHD_PATH_MAX], err[2 * SWITCHD_PATH_MAX];
	int r;

	if (o->uplink_tap && o->uplink_if) {
		cli_error("switch new: one uplink: --uplink-tap or --uplink-if, not both");
		return EXIT_USAGE;
	}
	if (switch_dir(name, o, c.dir, sizeof(c.dir)) < 0)
		return EXIT_USAGE;
	snprintf(c.name, sizeof(c.name), "%s", name);
	if (o->uplink_tap)
		r = snprintf(c.uplink_tap, sizeof(c.uplink_tap), "%s", o->uplink_tap);
	else if (o->uplink_if)
		r = snprintf(c.uplink_if, sizeof(c.uplink_if), "%s", o->uplink_if);
	else
		r = 0;
	if (r >= SWITCHD_IFNAME_MAX || ((o->uplink_tap || o->uplink_if) &&
					(!r || strpbrk(o->uplink_tap ? o->uplink_tap : o->uplink_if, "/: \t")))) {
		cli_error("switch new: '%s' is not an interface name (1 to 15 characters)",
			  o->uplink_tap ? o->uplink_tap : o->uplink_if);
		return EXIT_USAGE;
	}
	c.max_ports = o->max_ports;
	c.fdb_max = o->max_addresses;
	c.port_fdb_max = o->max_port_addresses;
	c.unlisted_spoofing_off = o->unlisted_spoofing == 1;
	c.no_seccomp = o->no_seccomp;
	c.aging_s = o->aging;
	c.frame_max = o->frame_max;

	r = switchd_root(o->store, root, sizeof(root));
	if (r == 0)
		r = util_mkdir_p(root, 0700);
	if (r < 0) {
		cli_error("switch '%s': creating %s: %s", name, root, strerror(-r));
		return 1;
	}
	if (mkdir(c.dir, 0700) < 0) {
		if (errno == EEXIST)
			cli_error("switch '%s' already exists (%s; see 'nestvm switch show %s')", name,
				  switchd_alive(c.dir) ? "running" : "stopped", name);
		else
			cli_error("switch '%s': creating %s: %s", name, c.dir, strerror(errno));
		return 1;
	}
	r = switchd_config_save(&c, err, sizeof(err));
	if (r < 0) {
		cli_error("switch '%s': %s", name, err);
		(void)switch_delete_dir(c.dir);
		return 1;
	}
	r = switch_launch(&c, o->foreground);
	if (r < 0 && !o->foreground) {
		/* A switch that never ran is not kept: nothing refers to it yet. */
		(void)switch_delete_dir(c.dir);
		return 1;
	}
	return r < 0 ? 1 : 0;
}

static int switch_start(const char *name, const struct switch_opts *o)
{
	struct switchd_config c;
	char dir[SWITCHD_PATH_MAX], err[2 * SWITCHD_PATH_MAX];

	if (switch_dir(name, o, dir, sizeof(dir)) < 0)
		return EXIT_USAGE;
	if (switch_exists(name, dir) < 0)
		return 1;
	if (switchd_alive(dir)) {
		cli_error("switch '%s' is already running", name);
		return 1;
	}
	if (switchd_config_load(dir, name, &c, err, sizeof(err)) < 0) {
		cli_error("switch '%s': %s", name, err);
		return 1;
	}
	if (o->no_seccomp)
		c.no_seccomp = true;
	return switch_launch(&c, o->foreground) < 0 ? 1 : 0;
}

static int switch_stop_cmd(const char *name, const struct switch_opts *o, bool and_remove)
{
	char dir[SWITCHD_PATH_MAX], err[2 * SWITCHD_PATH_MAX];
	int r;

	if (switch_dir(name, o, dir, sizeof(dir)) < 0)
		return EXIT_USAGE;
	if (switch_exists(name, dir) < 0)
		return 1;
	r = switchd_stop(dir, o->force, SWITCH_STOP_WAIT_MS, err, sizeof(err));
	if (r == -EBUSY) {
		cli_error("switch '%s': %s", name, err);
		cli_error("switch '%s': use --force to %s it anyway; the adapters lose their link", name,
			  and_remove ? "remove" : "stop");
		return 1;
	}
	if (r < 0) {
		cli_error("switch '%s': stopping: %s", name, err);
		return 1;
	}
	if (!and_remove)
		return 0;
	r = switch_delete_dir(dir);
	if (r < 0) {
		cli_error("switch '%s': deleting %s: %s%s", name, dir, strerror(-r),
			  r == -ENOTEMPTY ? " (it holds files nestvm did not put there)" : "");
		return 1;
	}
	return 0;
}

static int switch_stop(const char *name, const struct switch_opts *o)
{
	return switch_stop_cmd(name, o, false);
}

static int switch_remove(const char *name, const struct switch_opts *o)
{
	return switch_stop_cmd(name, o, true);
}

static int switch_show(const char *name, const struct switch_opts *o)
{
	char dir[SWITCHD_PATH_MAX], err[2 * SWITCHD_PATH_MAX];
	char *reply;
	int r;

	if (switch_dir(name, o, dir, sizeof(dir)) < 0)
		return EXIT_USAGE;
	if (switch_exists(name, dir) < 0)
		return 1;
	if (!switchd_alive(dir)) {
		cli_error("switch '%s' is not running (start it with 'nestvm switch start %s')", name, name);
		return 1;
	}
	r = switchd_request(dir, o->json ? "show json" : "show text", &reply, err, sizeof(err));
	if (r < 0) {
		cli_error("switch '%s': %s", name, err);
		return 1;
	}
	fputs(reply, stdout);
	free(reply);
	if (fflush(stdout) != 0) {
		cli_error("switch show: writing the report failed");
		return 1;
	}
	return 0;
}

static int switch_list(const char *unused, const struct switch_opts *o)
{
	char root[SWITCHD_PATH_MAX], err[2 * SWITCHD_PATH_MAX];
	char **names = NULL;
	size_t n = 0;
	struct json j;
	int r;

	(void)unused;
	r = switchd_root(o->store, root, sizeof(root));
	if (r < 0) {
		cli_error("switch list: cannot find the store (%s); name it with --store DIR", strerror(-r));
		return EXIT_USAGE;
	}
	r = switchd_list(o->store, &names, &n);
	if (r < 0) {
		cli_error("switch list: %s: %s", root, strerror(-r));
		return 1;
	}
	if (o->json) {
		json_init(&j, stdout, true);
		json_array_begin(&j);
	} else if (!n) {
		printf("No switches in %s\n", root);
	} else {
		printf("%-24s %-8s %s\n", "NAME", "STATE", "UPLINK");
	}
	for (size_t i = 0; i < n; i++) {
		struct switchd_config c;
		char dir[SWITCHD_PATH_MAX + 80];
		const char *kind = NULL, *ifname = NULL;
		bool alive;

		snprintf(dir, sizeof(dir), "%s/%s", root, names[i]);
		alive = switchd_alive(dir);
		if (switchd_config_load(dir, names[i], &c, err, sizeof(err)) == 0 &&
		    (c.uplink_tap[0] || c.uplink_if[0])) {
			kind = c.uplink_tap[0] ? "tap" : "interface";
			ifname = c.uplink_tap[0] ? c.uplink_tap : c.uplink_if;
		}
		if (o->json) {
			json_object_begin(&j);
			json_kv_string(&j, "name", names[i]);
			json_kv_bool(&j, "running", alive);
			json_key(&j, "uplink");
			if (kind) {
				json_object_begin(&j);
				json_kv_string(&j, "kind", kind);
				json_kv_string(&j, "interface", ifname);
				json_object_end(&j);
			} else {
				json_nil(&j);
			}
			json_object_end(&j);
		} else {
			printf("%-24s %-8s %s%s%s\n", names[i], alive ? "running" : "stopped",
			       kind ? kind : "none", kind ? " " : "", kind ? ifname : "");
		}
	}
	store_list_free(names, n);
	if (o->json) {
		json_array_end(&j);
		r = json_finish(&j);
		json_free(&j);
		if (r < 0) {
			cli_error("switch list: writing JSON: %s", strerror(-r));
			return 1;
		}
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

static const struct switch_cmd switch_cmds[] = {
	{ "new", "nestvm switch new NAME [--uplink-tap IFNAME | --uplink-if IFNAME] [OPTIONS]",
	  "Create a switch and start its daemon. Without an uplink the switch is internal: only\n"
	  "its VMs reach each other, and no root is needed. An uplink to a TAP device lets the\n"
	  "host (or a bridge on it) in; an uplink to an interface carries frames out of it, as a\n"
	  "nested host's switch does through the nested host's own adapter (which then needs\n"
	  "MAC address spoofing on, on the switch outside).",
	  new_table, true, switch_new },
	{ "start", "nestvm switch start NAME [--foreground] [--store DIR]",
	  "Start the daemon of a switch that exists but is not running.",
	  start_table, true, switch_start },
	{ "stop", "nestvm switch stop NAME [--force] [--store DIR]",
	  "Stop a switch's daemon; refused while adapters are connected unless --force.",
	  stop_table, true, switch_stop },
	{ "show", "nestvm switch show NAME [--json] [--store DIR]",
	  "Show a running switch's ports (with their MAC address, spoofing setting and counters:\n"
	  "rx, tx, frames dropped for a foreign source MAC, dropped for other reasons, and\n"
	  "dropped because the port was too slow), its learned addresses and their age.",
	  show_table, true, switch_show },
	{ "list", "nestvm switch list [--json] [--store DIR]",
	  "List the store's switches, whether each is running, and its uplink.",
	  show_table, false, switch_list },
	{ "remove", "nestvm switch remove NAME [--force] [--store DIR]",
	  "Stop a switch and delete it; refused while adapters are connected unless --force.",
	  stop_table, true, switch_remove },
};

int cmd_switch(int argc, char **argv)
{
	const struct switch_cmd *cmd = NULL;
	struct switch_opts o = { 0 };
	char what[32];
	int npos, r;

	r = cli_subcommand(switch_usage, argc, argv);
	if (r >= 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(switch_cmds); i++)
		if (!strcmp(argv[0], switch_cmds[i].name))
			cmd = &switch_cmds[i];
	if (!cmd) {
		cli_error("switch: unknown command '%s' (see 'nestvm switch help')", argv[0]);
		return EXIT_USAGE;
	}
	snprintf(what, sizeof(what), "switch %s", cmd->name);
	r = cli_parse(what, cmd->table, cmd->usage, cmd->summary, argc - 1, argv + 1, &o, &npos, NULL);
	if (r >= 0)
		return r;
	if (cmd->needs_name && npos != 1) {
		cli_error("switch %s: %s (usage: %s)", cmd->name,
			  npos ? "one switch name, please" : "which switch? name it", cmd->usage);
		return EXIT_USAGE;
	}
	if (!cmd->needs_name && npos) {
		cli_error("switch %s: unexpected argument '%s'", cmd->name, argv[1]);
		return EXIT_USAGE;
	}
	return cmd->run(cmd->needs_name ? argv[1] : NULL, &o);
}

/* "nestvm firecracker", also nestvm started through a link named
 * "firecracker": Firecracker's command line, so that container engines
 * configured with a Firecracker binary start nestvm instead. It serves the
 * Firecracker API (fc.h) on --api-sock, or boots --config-file without
 * it, runs the VM once InstanceStart has built it, and exits as Firecracker
 * does when the guest shuts down or reboots. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "fc.h"
#include "sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef NESTVM_VERSION
#define NESTVM_VERSION "0.1.0"
#endif

#define FC_DEFAULT_API_SOCK "/run/firecracker.socket"

struct fc_opts {
	const char *api_sock, *config_file, *id, *kvm;
	const char *log_path, *level, *metrics_path, *seccomp_filter;
	const char *start_time_us, *start_time_cpu_us, *parent_cpu_time_us, *max_payload;
	bool no_seccomp, no_api, version, nested, skip_probe, show_level, show_log_origin, boot_timer;
};

#define FC_OPT(name, type, field, meta, help) { name, 0, type, offsetof(struct fc_opts, field), meta, help, 0, 0, NULL }

static const struct opt fc_table[] = {
	FC_OPT("api-sock", OPT_STR, api_sock, "PATH", "serve the API on this Unix socket (default " FC_DEFAULT_API_SOCK ")"),
	FC_OPT("config-file", OPT_STR, config_file, "FILE", "boot the microVM this JSON file describes, with no API calls"),
	FC_OPT("id", OPT_STR, id, "ID", "the microVM's ID (default anonymous-instance)"),
	FC_OPT("no-api", OPT_FLAG, no_api, NULL, "serve no API (needs --config-file)"),
	FC_OPT("no-seccomp", OPT_FLAG, no_seccomp, NULL, "run without a system-call filter"),
	FC_OPT("seccomp-filter", OPT_STR, seccomp_filter, "FILE", "Firecracker's filter file: not used by nestvm"),
	FC_OPT("level", OPT_STR, level, "LEVEL", "log level: Error, Warning, Info, Debug, Trace, Off"),
	FC_OPT("log-path", OPT_STR, log_path, "PATH", "the log (as PUT /logger)"),
	FC_OPT("show-level", OPT_FLAG, show_level, NULL, "accepted for Firecracker's launchers"),
	FC_OPT("show-log-origin", OPT_FLAG, show_log_origin, NULL, "accepted for Firecracker's launchers"),
	FC_OPT("metrics-path", OPT_STR, metrics_path, "PATH", "the metrics file (as PUT /metrics)"),
	FC_OPT("boot-timer", OPT_FLAG, boot_timer, NULL, "accepted for Firecracker's launchers"),
	FC_OPT("start-time-us", OPT_STR, start_time_us, "N", "accepted for Firecracker's launchers"),
	FC_OPT("start-time-cpu-us", OPT_STR, start_time_cpu_us, "N", "accepted for Firecracker's launchers"),
	FC_OPT("parent-cpu-time-us", OPT_STR, parent_cpu_time_us, "N", "accepted for Firecracker's launchers"),
	FC_OPT("http-api-max-payload-size", OPT_STR, max_payload, "BYTES", "accepted; nestvm's limit is 51200"),
	FC_OPT("nested", OPT_FLAG, nested, NULL,
	       "nestvm: expose VMX/SVM to the guest by default (machine-config's nested_virtualization)"),
	FC_OPT("kvm", OPT_STR, kvm, "PATH", "nestvm: the KVM device (default /dev/kvm)"),
	FC_OPT("skip-probe", OPT_FLAG, skip_probe, NULL, "nestvm: boot even where KVM emulates guest kernel code"),
	FC_OPT("version", OPT_FLAG, version, NULL, "print the version"),
	{ 0 },
};

static const char fc_usage[] = "nestvm firecracker [--api-sock PATH] [--config-file FILE] [--id ID] [--no-seccomp]";
static const char fc_summary[] =
	"Serve Firecracker's REST API on a Unix socket, so that tools that drive Firecracker\n"
	"(Kata Containers, firecracker-containerd, Nomad's Firecracker driver) drive nestvm;\n"
	"started through a link named 'firecracker' it takes the same options. The guest's\n"
	"serial console is this process's standard output. It exits with status 0 when the\n"
	"guest shuts down or reboots, 1 when the guest crashes or the start fails.\n"
	"nestvm adds nesting: \"nested_virtualization\": true in PUT /machine-config, or\n"
	"--nested here, gives the guest VMX/SVM so it can run VMs of its own.";

/* A Firecracker logger or metrics option, as the API request it stands for. */
static int fc_cli_put(struct fc *fc, const char *path, const char *body)
{
	struct fc_request req = { .method = "PUT", .body = body, .body_len = strlen(body) };
	struct fc_response resp;
	int status;

	snprintf(req.path, sizeof(req.path), "%s", path);
	fc_handle(fc, &req, &resp);
	status = resp.status;
	if (status >= 300)
		cli_error("firecracker: %s: %s", path, resp.body ? resp.body : "failed");
	fc_response_free(&resp);
	return status >= 300 ? -EINVAL : 0;
}

/* --log-path and --level as PUT /logger; paths that would need escaping
 * in JSON are refused. */
static int fc_cli_logger(struct fc *fc, const struct fc_opts *o)
{
	char body[1200];

	for (const char *s = o->log_path ? o->log_path : ""; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) {
			cli_error("firecracker: --log-path: a path without quotes, backslashes or control characters");
			return -EINVAL;
		}
	if (o->level && strlen(o->level) > 16) {
		cli_error("firecracker: --level '%s': Error, Warning, Info, Debug, Trace or Off", o->level);
		return -EINVAL;
	}
	if (!o->log_path && !o->level)
		return 0;
	snprintf(body, sizeof(body), "{%s%s%s%s%s%s%s}", o->log_path ? "\"log_path\":\"" : "",
		 o->log_path ? o->log_path : "", o->log_path ? "\"" : "", o->log_path && o->level ? "," : "",
		 o->level ? "\"level\":\"" : "", o->level ? o->level : "", o->level ? "\"" : "");
	return fc_cli_put(fc, "/logger", body);
}

static int fc_cli_metrics(struct fc *fc, const struct fc_opts *o)
{
	char body[1200];

	if (!o->metrics_path)
		return 0;
	for (const char *s = o->metrics_path; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) {
			cli_error("firecracker: --metrics-path: a path without quotes, backslashes or control characters");
			return -EINVAL;
		}
	snprintf(body, sizeof(body), "{\"metrics_path\":\"%s\"}", o->metrics_path);
	return fc_cli_put(fc, "/metrics", body);
}

/* Until InstanceStart has built the machine, or a signal ends it all. */
static struct vmm *fc_cli_wait(struct fc *fc, const sigset_t *sigs, int *sig)
{
	const struct timespec tick = { 0, 100 * 1000000 };

	for (;;) {
		struct vmm *v = fc_started(fc);

		if (v)
			return v;
		*sig = sigtimedwait(sigs, NULL, &tick);
		if (*sig > 0)
			return NULL;
	}
}

int cmd_firecracker(int argc, char **argv)
{
	struct fc_opts o = { 0 };
	struct fc_options fo = { 0 };
	struct fc_server *srv = NULL;
	struct fc *fc = NULL;
	struct vmm_exit ex;
	struct vmm *v;
	sigset_t sigs;
	char err[1400];
	int npos, r, sig = 0, status = 1;

	r = cli_parse("firecracker", fc_table, fc_usage, fc_summary, argc, argv, &o, &npos, NULL);
	if (r >= 0)
		return r;
	if (o.version) {
		/* Launchers read the first line's second word as the version. */
		printf("Firecracker v%s\n\nnestvm %s: Firecracker's API over nestvm, with nested virtualization\n",
		       FC_API_VERSION, NESTVM_VERSION);
		return 0;
	}
	if (npos) {
		cli_error("firecracker: unexpected argument '%s' (see --help)", argv[0]);
		return EXIT_USAGE;
	}
	if (o.no_api && !o.config_file) {
		cli_error("firecracker: --no-api needs --config-file: nothing would configure the microVM");
		return EXIT_USAGE;
	}
	if (o.seccomp_filter && !o.no_seccomp)
		cli_error("firecracker: --seccomp-filter: nestvm does not load Firecracker's filters; ignored");
	fo = (struct fc_options){
		.id = o.id, .nested = o.nested,
		.vmm = { .kvm_path = o.kvm, .skip_probe = o.skip_probe, .on_reboot = VMM_REBOOT_EXIT,
			 .console_tty = isatty(STDIN_FILENO), .signals = true, .no_seccomp = o.no_seccomp },
	};
	if (fc_create(&fc, &fo, err, sizeof(err)) < 0) {
		cli_error("firecracker: %s", err);
		return EXIT_USAGE;
	}
	/* Every thread, the API server's and the vCPUs' too, leaves these to
	 * the VMM's signal thread; before the start, to the wait below. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (fc_cli_logger(fc, &o) < 0 || fc_cli_metrics(fc, &o) < 0) {
		status = EXIT_USAGE;
		goto out;
	}
	/* The API's thread enters the sandbox as it starts, before any VM:
	 * it is set up now. Landlock cannot know the files the API will name. */
	r = sandbox_setup(&(struct sandbox_config){
		.seccomp = !o.no_seccomp,
		.no_landlock = "not applied in Firecracker mode: the API names kernels, disks and snapshots "
			       "at run time (run it in a jailer's chroot or mount namespace to limit its files)" },
		err, sizeof(err));
	if (r < 0) {
		cli_error("firecracker: %s", err);
		goto out;
	}
	if (!o.no_api) {
		const char *path = o.api_sock ? o.api_sock : FC_DEFAULT_API_SOCK;

		r = fc_server_start(&srv, path, fc);
		if (r < 0) {
			cli_error("firecracker: API socket '%s': %s", path, util_unix_listen_strerror(r));
			goto out;
		}
	}
	if (o.config_file) {
		uint8_t *text;
		size_t len;

		r = util_read_file(o.config_file, &text, &len);
		if (r < 0) {
			cli_error("firecracker: --config-file '%s': %s", o.config_file, strerror(-r));
			status = EXIT_USAGE;
			goto out;
		}
		r = fc_load_config(fc, (const char *)text, len, err, sizeof(err));
		free(text);
		if (r < 0) {
			cli_error("firecracker: --config-file '%s': %s", o.config_file, err);
			goto out;
		}
	}
	v = fc_cli_wait(fc, &sigs, &sig);
	if (!v) {
		status = 128 + sig;
		goto out;
	}
	vmm_run(v, &ex);
	status = run_exit_status(&ex);
out:
	fc_server_stop(srv);
	if (srv)
		unlink(o.api_sock ? o.api_sock : FC_DEFAULT_API_SOCK);
	fc_destroy(fc);
	return status;
}

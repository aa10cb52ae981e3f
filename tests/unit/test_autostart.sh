#!/usr/bin/env bash
# nestvm autostart, the commands nestvm.service runs, against a scratch store:
# start brings up the switches and tries exactly the VMs marked to start with
# the host; stop leaves Off VMs alone and stops the idle switches.
. "$(dirname "$0")/../../../tests/unit/shlib.sh" 2>/dev/null || . tests/unit/shlib.sh

export NESTVM_STORE=$T_SCRATCH/store
t_fake_image "$T_SCRATCH/img"
"$T_NESTVM" vm new marked --kernel "$T_SCRATCH/img/vmlinuz" --nic lan >/dev/null
"$T_NESTVM" vm new unmarked --kernel "$T_SCRATCH/img/vmlinuz" >/dev/null
"$T_NESTVM" vm set marked --autostart on >/dev/null
"$T_NESTVM" switch new lan >/dev/null
"$T_NESTVM" switch stop lan

test_list_names_the_marked() {
	local out
	out=$("$T_NESTVM" autostart list)
	t_has "$out" "marked"
	case $out in *unmarked*) t_fail "autostart list shows a VM not marked: $out" ;; esac
}

test_start() {
	local out rc=0
	out=$("$T_NESTVM" autostart start 2>&1) || rc=$?
	t_has "$("$T_NESTVM" switch list)" "running"
	t_has "$out" "Started switch lan"
	case $out in *unmarked*) t_fail "autostart start touched a VM not marked: $out" ;; esac
	# The stand-in kernel cannot boot: the marked VM fails, named, status 1.
	[ "$rc" = 1 ] || t_fail "autostart start exited $rc with a VM that cannot start: $out"
	t_has "$out" "VM marked did not start"
	t_has "$("$T_NESTVM" vm show marked)" "State: Off"
}

test_stop() {
	local out
	out=$("$T_NESTVM" autostart stop --timeout 5 2>&1) || t_fail "autostart stop: $out"
	t_has "$out" "Stopped switch lan"
	t_has "$("$T_NESTVM" switch list)" "stopped"
}

test_bad_usage() {
	local rc=0
	"$T_NESTVM" autostart stop --timeout 0 2>/dev/null || rc=$?
	[ "$rc" = 2 ] || t_fail "--timeout 0 exited $rc, want 2"
	rc=0
	"$T_NESTVM" autostart reboot 2>/dev/null || rc=$?
	[ "$rc" = 2 ] || t_fail "an unknown subcommand exited $rc, want 2"
}

t_run test_list_names_the_marked
t_run test_start
t_run test_stop
t_run test_bad_usage
t_end

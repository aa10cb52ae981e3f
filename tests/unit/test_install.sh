#!/usr/bin/env bash
# make install and make uninstall: where each file goes under PREFIX and
# DESTDIR, the installed binary finding its guest image, the unit passing
# systemd-analyze verify, and nothing left behind after uninstall.
. "$(dirname "$0")/../../../tests/unit/shlib.sh" 2>/dev/null || . tests/unit/shlib.sh

IMG=$T_SCRATCH/img
t_fake_image "$IMG"
mk() { make -s --no-print-directory IMAGE="$IMG" "$@"; }

test_destdir_install_and_uninstall() {
	local d=$T_SCRATCH/dest f
	mk install DESTDIR="$d" PREFIX=/usr/local >/dev/null
	for f in bin/nestvm share/nestvm/vmlinuz share/nestvm/initrd.img share/man/man1/nestvm.1 \
		 share/bash-completion/completions/nestvm lib/systemd/system/nestvm.service; do
		[ -f "$d/usr/local/$f" ] || t_fail "make install did not put $f in place"
	done
	[ -x "$d/usr/local/bin/nestvm" ] || t_fail "bin/nestvm is not executable"
	t_has "$(cat "$d/usr/local/lib/systemd/system/nestvm.service")" "ExecStart=/usr/local/bin/nestvm autostart start"
	mk uninstall DESTDIR="$d" PREFIX=/usr/local >/dev/null
	left=$(find "$d" ! -type d)
	[ -z "$left" ] || t_fail "make uninstall left: $left"
	[ ! -e "$d/usr/local/share/nestvm" ] || t_fail "make uninstall left share/nestvm"
}

test_without_an_image_install_says_so() {
	local out
	if out=$(make -s --no-print-directory install IMAGE="$T_SCRATCH/none" DESTDIR="$T_SCRATCH/d2" 2>&1); then
		t_fail "make install without an image succeeded"
	fi
	t_has "$out" "run 'make image' first"
	[ ! -e "$T_SCRATCH/d2" ] || t_fail "a failed make install wrote files"
}

# Installed under a PREFIX of its own, the binary boots new VMs from the
# image in PREFIX/share/nestvm, and the unit's commands and man page exist.
test_prefix_install_runs() {
	local p=$T_SCRATCH/prefix out
	mk install PREFIX="$p" >/dev/null
	"$p/bin/nestvm" vm new fromimage --store "$T_SCRATCH/store" >/dev/null
	t_has "$("$p/bin/nestvm" vm show fromimage --store "$T_SCRATCH/store")" "Kernel: $p/share/nestvm/vmlinuz"
	mk uninstall PREFIX="$p" >/dev/null
	left=$(find "$p" ! -type d)
	[ -z "$left" ] || t_fail "make uninstall left: $left"
}

# The unit, installed under a PREFIX, passes systemd-analyze verify (its
# commands exist, its man page is found), and the check catches a broken one.
test_unit_verifies() {
	command -v systemd-analyze >/dev/null || t_skip "no systemd-analyze here (apt-get install systemd)"
	local p=$T_SCRATCH/prefix2 out
	mk install PREFIX="$p" >/dev/null
	out=$(MANPATH=$p/share/man systemd-analyze verify "$p/lib/systemd/system/nestvm.service" 2>&1) ||
		t_fail "systemd-analyze verify: $out"
	[ -z "$out" ] || t_fail "systemd-analyze verify warns: $out"
	sed 's/^ExecStart=.*/ExecStart=nestvm-nowhere start/' "$p/lib/systemd/system/nestvm.service" \
		>"$T_SCRATCH/broken.service"
	if MANPATH=$p/share/man systemd-analyze verify "$T_SCRATCH/broken.service" >/dev/null 2>&1; then
		t_fail "systemd-analyze verify passed a unit whose command does not exist"
	fi
	mk uninstall PREFIX="$p" >/dev/null
}

t_run test_destdir_install_and_uninstall
t_run test_without_an_image_install_says_so
t_run test_prefix_install_runs
t_run test_unit_verifies
t_end

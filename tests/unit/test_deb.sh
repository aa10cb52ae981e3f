#!/usr/bin/env bash
# The Debian package: make deb builds it (a stand-in guest image), lintian
# finds no error in it, and unpacked into a scratch root it runs: nestvm
# status, and a new VM booting the image the package carries.
. "$(dirname "$0")/../../../tests/unit/shlib.sh" 2>/dev/null || . tests/unit/shlib.sh

DEB_OUT=$T_SCRATCH/deb.log
built=

build() {
	command -v dpkg-buildpackage >/dev/null && dpkg-query -W debhelper >/dev/null 2>&1 ||
		t_skip "no dpkg-buildpackage or debhelper here (scripts/install-deps installs them)"
	t_fake_image "$T_SCRATCH/img"
	# A folder of its own so that the tree's build/deb is left alone.
	DEB_BUILD_OPTIONS=noautodbgsym make -s --no-print-directory deb B="$T_SCRATCH/b" \
		DEB_IMAGE="$T_SCRATCH/img" >"$DEB_OUT" 2>&1 || { tail -n 30 "$DEB_OUT"; t_fail "make deb failed"; }
	ls "$T_SCRATCH"/b/deb/nestvm_*_amd64.deb >/dev/null
}

deb() { ls "$T_SCRATCH"/b/deb/nestvm_*_amd64.deb 2>/dev/null | head -n 1; }

test_builds() {
	build
	local list
	list=$(dpkg -c "$(deb)")
	for f in ./usr/bin/nestvm ./usr/share/nestvm/vmlinuz ./usr/share/nestvm/initrd.img \
		 ./usr/share/man/man1/nestvm.1.gz ./usr/share/bash-completion/completions/nestvm \
		 ./lib/systemd/system/nestvm.service; do
		t_has "$list" "$f"
	done
}

test_lintian_finds_no_error() {
	[ -n "$(deb)" ] || t_skip "no package was built"
	command -v lintian >/dev/null || t_skip "no lintian here (apt-get install lintian)"
	local out
	out=$(lintian --fail-on error "$(deb)" 2>&1) || t_fail "lintian: $out"
}

test_runs_from_a_scratch_root() {
	[ -n "$(deb)" ] || t_skip "no package was built"
	local r=$T_SCRATCH/root out rc=0
	dpkg -x "$(deb)" "$r"
	t_has "$("$r/usr/bin/nestvm" version)" "nestvm 0.1.0"
	out=$("$r/usr/bin/nestvm" status 2>&1) || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || t_fail "nestvm status exited $rc: $out"
	t_has "$out" "supports nested virtualization"
	"$r/usr/bin/nestvm" vm new packaged --store "$T_SCRATCH/store" >/dev/null
	t_has "$("$r/usr/bin/nestvm" vm show packaged --store "$T_SCRATCH/store")" "Kernel: $r/usr/share/nestvm/vmlinuz"
	t_has "$(cat "$r/lib/systemd/system/nestvm.service")" "ExecStart=/usr/bin/nestvm autostart start"
}

t_run test_builds
t_run test_lintian_finds_no_error
t_run test_runs_from_a_scratch_root
t_end

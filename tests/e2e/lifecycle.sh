# Sourced by tests/e2e/cases.sh inside the simulated host: a VM of the store
# through its whole life, as an administrator would drive it. NestedHost is
# made from the default image (its /init stays in a shell with
# nestvm.cmd=shell), set up by the nested assistant, started detached,
# watched in `nestvm status`, attached to, paused, resumed and stopped.
# Its cases build on each other: they run together, in one simulated host.
e2e_chained=1
export NESTVM_STORE=/tmp/e2e-store

NV_BOUND=180            # each nestvm command of this file (lib.sh: nv)

# The console's history, read until PATTERN shows (up to 60 tries of 3 s).
console_until() {
	i=0
	while [ $i -lt 60 ]; do
		timeout -k 5 3 ./nestvm vm console NestedHost </dev/null >/tmp/console.out 2>&1
		grep -Eq "$1" /tmp/console.out && return 0
		i=$((i + 1))
	done
	return 1
}

case_lifecycle_create() {
	rm -rf "$NESTVM_STORE"
	: >"$out"
	nv_expect lifecycle_create 0 vm new NestedHost --memory 384M --nic External \
		--cmdline "console=ttyS0 quiet nestvm.cmd=shell" || return
	nv_expect lifecycle_create 2 vm new NestedHost || return
	expect lifecycle_create "already exists" || return
	nv_expect lifecycle_create 2 nested enable NestedHost || return   # no terminal, no --yes
	nv_expect lifecycle_create 0 nested enable NestedHost --yes || return
	expect lifecycle_create 'Expose the virtualization extensions' &&
	expect lifecycle_create 'Raise its memory from 384M to 512M' &&
	expect lifecycle_create 'Turn on MAC address spoofing' &&
	expect lifecycle_create 'Save, checkpoints and live migration work while' || return
	nv_expect lifecycle_create 0 nested enable NestedHost || return
	expect lifecycle_create 'already set up for nesting: nothing to change' || return
	nv_expect lifecycle_create 0 vm show NestedHost || return
	expect lifecycle_create '^ExposeVirtualizationExtensions: True' &&
	expect lifecycle_create '^Memory: 512M' &&
	expect lifecycle_create '^Kernel: /nestvm/image/vmlinuz' &&
	expect lifecycle_create 'MacAddressSpoofing On' && pass lifecycle_create
}

case_lifecycle_run() {
	: >"$out"
	# Its adapter's switch must run first; without it start says so.
	nv_expect lifecycle_run 1 vm start NestedHost || return
	expect lifecycle_run "switch 'External' is not running" || return
	nv_expect lifecycle_run 0 switch new External || return
	nv_expect lifecycle_run 0 vm start NestedHost || return
	nv_expect lifecycle_run 1 vm start NestedHost || return
	expect lifecycle_run 'is already (Running|Starting)' || return
	nv status
	sed -n '/^VM NestedHost/,/^$/p' "$out" >/tmp/status-vm.out
	grep -Eq 'SupportsNesting: +YES' /tmp/status-vm.out &&
	grep -Eq 'State: +Running' /tmp/status-vm.out ||
		{ fail lifecycle_run "nestvm status does not say NestedHost is Running and supports nesting"; return; }
	if ! console_until '^nestvm-guest: shell'; then
		cat /tmp/console.out >>"$out"
		fail lifecycle_run "the console never showed 'nestvm-guest: shell'"
		return
	fi
	cat /tmp/console.out >>"$out"
	expect lifecycle_run 'nestvm-guest: init' &&
	expect lifecycle_run 'nestvm-guest: cpus=1 .*kvm=yes virt=svm' || return
	# Input through the console reaches the guest's shell.
	(sleep 2; echo 'echo lifecycle-$((6 * 7))'; sleep 4) |
		timeout -k 5 10 ./nestvm vm console NestedHost >>"$out" 2>&1
	expect lifecycle_run '^lifecycle-42' || return
	nv_expect lifecycle_run 0 vm pause NestedHost || return
	nv_expect lifecycle_run 0 vm list || return
	expect lifecycle_run '^NestedHost +Paused' || return
	nv_expect lifecycle_run 1 vm set NestedHost --cpus 2 || return
	expect lifecycle_run 'cpus needs VM NestedHost to be Off; it is Paused' || return
	nv_expect lifecycle_run 0 vm resume NestedHost || return
	expect lifecycle_run 'NestedHost is Running' || return
	# The image's acpid turns the power button into a clean poweroff.
	nv_expect lifecycle_run 0 vm stop NestedHost --timeout 120 || return
	nv_expect lifecycle_run 0 vm list || return
	expect lifecycle_run '^NestedHost +Off' || return
	nv_expect lifecycle_run 0 vm show NestedHost || return
	expect lifecycle_run '^LastExit: poweroff' || return
	grep -q 'nestvm-guest: power button' "$NESTVM_STORE/NestedHost/console.log" ||
		{ fail lifecycle_run "the guest never saw the power button"; return; }
	grep -q 'nestvm-guest: init' "$NESTVM_STORE/NestedHost/console.log" ||
		{ fail lifecycle_run "console.log lacks the guest's output"; return; }
	nv status
	sed -n '/^VM NestedHost/,/^$/p' "$out" | grep -Eq 'State: +Off' ||
		{ fail lifecycle_run "nestvm status does not say NestedHost is Off"; return; }
	pass lifecycle_run
}

# A VMM killed outright is Off, with the reason, never Running.
case_lifecycle_killed() {
	: >"$out"
	nv_expect lifecycle_killed 0 vm start NestedHost || return
	pid=$(cat "$NESTVM_STORE/NestedHost/vmm.pid")
	kill -9 "$pid"
	sleep 1
	nv_expect lifecycle_killed 0 vm list || return
	expect lifecycle_killed '^NestedHost +Off' || return
	nv_expect lifecycle_killed 0 vm show NestedHost || return
	expect lifecycle_killed "LastExit: the VMM \\(pid $pid\\) ended without an exit record" || return
	nv_expect lifecycle_killed 0 vm remove NestedHost --yes || return
	: >"$out"
	nv_expect lifecycle_killed 0 vm list || return
	grep -q '^NestedHost' "$out" && { fail lifecycle_killed "NestedHost still listed after remove"; return; }
	nv_expect lifecycle_killed 0 switch remove External --force || return
	pass lifecycle_killed
}

e2e_case case_lifecycle_create
e2e_case case_lifecycle_run
e2e_case case_lifecycle_killed

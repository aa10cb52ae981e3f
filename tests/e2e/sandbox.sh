# Sourced by tests/e2e/cases.sh inside the simulated host: the VMM's sandbox.
# A running VMM's threads each show a seccomp filter, no_new_privs and no
# capabilities in /proc, and nestvm status says so; a forbidden call made by
# a thread of any role (the NESTVM_SANDBOX_PROBE hook) ends the VMM with a
# message naming the role and the call; --no-seccomp and vm.conf's
# no-seccomp leave the filters off.
export NESTVM_STORE=/tmp/sandbox-store

NV_BOUND=180

# sandbox_threads NAME PID SECCOMP: every thread of PID has Seccomp SECCOMP,
# NoNewPrivs 1 and CapEff 0; the threads and their fields go into $out.
sandbox_threads() {
	_bad=0 _n=0
	for _t in /proc/$2/task/*; do
		_f=$(grep -E '^(Seccomp|NoNewPrivs|CapEff):' "$_t/status" | tr '\t\n' '  ')
		echo "thread ${_t##*/} $(cat "$_t/comm"): $_f" >>"$out"
		_n=$((_n + 1))
		case "$_f" in
		*"Seccomp: $3 "*) ;;
		*) _bad=1 ;;
		esac
		case "$_f" in
		*"NoNewPrivs: 1 "*"CapEff: 0000000000000000 "*|*"CapEff: 0000000000000000 "*"NoNewPrivs: 1 "*) ;;
		*) _bad=1 ;;
		esac
	done
	[ "$_bad" = 0 ] || { fail "$1" "a thread of VMM $2 is not sandboxed as expected (Seccomp $3)"; return 1; }
	# main, a vCPU, the disk's worker, the API, the console's two, the signals'.
	[ "$_n" -ge 6 ] || { fail "$1" "VMM $2 has $_n threads: not every thread is running yet"; return 1; }
}

case_sandbox_proc() {
	rm -rf "$NESTVM_STORE"
	: >"$out"
	sh scripts/nested-initrd /tmp/counter.img image tests/e2e/counter.sh:e2e/counter.sh ||
		{ fail sandbox_proc "nested-initrd failed"; return; }
	nv_expect sandbox_proc 0 vm new sb --memory 256M --disk 1M --kernel image/vmlinuz --initrd /tmp/counter.img \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/counter.sh" || return
	nv_expect sandbox_proc 0 vm start sb || return
	wait_console_count "$NESTVM_STORE/sb/console.log" count 3 || {
		tail -n 15 "$NESTVM_STORE/sb/console.log" >>"$out"
		fail sandbox_proc "the guest did not count to 3 in its sandbox"
		return
	}
	pid=$(cat "$NESTVM_STORE/sb/vmm.pid")
	sandbox_threads sandbox_proc "$pid" 2 || return
	nv_expect sandbox_proc 0 status --name sb || return
	expect sandbox_proc '^ *Sandbox: +seccomp filters on, no capabilities, Landlock ' || return
	nv_expect sandbox_proc 0 vm stop sb --force || return
	# The store's setting: the same VM without its filters.
	{ echo "no-seccomp = on"; cat "$NESTVM_STORE/sb/vm.conf"; } >/tmp/sb-vm.conf &&
		mv /tmp/sb-vm.conf "$NESTVM_STORE/sb/vm.conf"
	nv_expect sandbox_proc 0 vm start sb || return
	lines=$(wc -l <"$NESTVM_STORE/sb/console.log")
	t=0
	while [ $t -lt 240 ] && [ "$(tail -n +"$((lines + 1))" "$NESTVM_STORE/sb/console.log" | grep -c '^count ')" -lt 2 ]; do
		sleep 1
		t=$((t + 1))
	done
	pid=$(cat "$NESTVM_STORE/sb/vmm.pid")
	sandbox_threads sandbox_proc "$pid" 0 || return
	nv_expect sandbox_proc 0 status --name sb || return
	expect sandbox_proc '^ *Sandbox: +seccomp filters off \(--no-seccomp\), no capabilities' || return
	nv_expect sandbox_proc 0 vm stop sb --force && pass sandbox_proc
}

# Each role's thread makes a forbidden call as it starts: the VMM ends with
# status 159 and says which thread and which call.
case_sandbox_kill() {
	: >"$out"
	dd if=/dev/zero of=/tmp/sb-disk.img bs=1M count=1 2>/dev/null
	for role in main vcpu device api console signal; do
		rm -f /tmp/sb-api.sock /tmp/sb-console.log
		export NESTVM_SANDBOX_PROBE=$role
		boot sandbox_kill 159 run --kernel $K --initrd $I --memory 256M \
			--disk /tmp/sb-disk.img --api-socket /tmp/sb-api.sock --console-log /tmp/sb-console.log \
			--cmdline "console=ttyS0 panic=-1 quiet" || { unset NESTVM_SANDBOX_PROBE; return; }
		unset NESTVM_SANDBOX_PROBE
		expect sandbox_kill "^nestvm: sandbox: thread $role made forbidden system call umount2 \(166\); killed \(at 0x" ||
			return
	done
	pass sandbox_kill
}

# --no-seccomp: the vCPU's forbidden call goes through, and the guest boots
# to its poweroff.
case_sandbox_off() {
	: >"$out"
	export NESTVM_SANDBOX_PROBE=vcpu
	boot sandbox_off 0 run --no-seccomp --kernel $K --initrd $I --memory 256M \
		--cmdline "console=ttyS0 panic=-1 quiet"
	r=$?
	unset NESTVM_SANDBOX_PROBE
	[ $r = 0 ] && expect sandbox_off '^nestvm-guest: poweroff' && pass sandbox_off
}

e2e_case case_sandbox_proc
e2e_case case_sandbox_kill
e2e_case case_sandbox_off

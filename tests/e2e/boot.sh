# Sourced by tests/e2e/cases.sh inside the simulated host: boots the default
# guest image with nestvm and checks what the guest reports about itself.

case_one_cpu() {
	boot one_cpu 0 run --kernel $K --initrd $I --memory 256M --cpus 1 \
		--cmdline "console=ttyS0 panic=-1 quiet" &&
	expect one_cpu '^nestvm-guest: init' &&
	expect one_cpu '^nestvm-guest: cpus=1 ' &&
	expect one_cpu '^nestvm-guest: poweroff' && pass one_cpu
}

case_two_cpus() {
	boot two_cpus 0 run --kernel $K --initrd $I --memory 256M --cpus 2 \
		--cmdline "console=ttyS0 panic=-1 quiet" &&
	expect two_cpus '^nestvm-guest: cpus=2 ' && pass two_cpus
}

# The guest sees the memory it was given: MemTotal within 64 MiB below it.
case_memory_size() {
	boot memory_size 0 run --kernel $K --initrd $I --memory 384M \
		--cmdline "console=ttyS0 panic=-1 quiet" || return
	kb=$(sed -n 's/.*nestvm-guest: cpus=[0-9]* mem_kb=\([0-9]*\).*/\1/p' "$out" | head -n 1)
	if [ -z "$kb" ] || [ "$kb" -gt $((384 * 1024)) ] || [ "$kb" -lt $((320 * 1024)) ]; then
		fail memory_size "guest MemTotal '$kb' kB for --memory 384M"
	else
		pass memory_size
	fi
}

# Without --nested the guest must not see SVM, so it has no KVM of its own.
case_no_virt_by_default() {
	boot no_virt 0 run --kernel $K --initrd $I --memory 256M \
		--cmdline "console=ttyS0 panic=-1 quiet" &&
	expect no_virt 'virt=none' && expect no_virt 'kvm=no' && pass no_virt
}

# The guest finds its ACPI tables, switches to a working clocksource and
# brings up both CPUs.
case_clock_and_acpi() {
	sh scripts/nested-initrd /tmp/clock-initrd.img image tests/e2e/clock-guest.sh:e2e/clock-guest.sh || {
		fail clock_acpi "nested-initrd failed"; return; }
	boot clock_acpi 0 run --kernel $K --initrd /tmp/clock-initrd.img --memory 256M --cpus 2 \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/clock-guest.sh" &&
	expect clock_acpi '^clock-guest: .*ACPI: .*(FACP|APIC)' &&
	expect clock_acpi '^clock-guest: .*clocksource: Switched to clocksource' &&
	expect clock_acpi '^clock-guest: .*smp: Brought up 1 node, 2 CPUs' && pass clock_acpi
}

# --boot-times: every milestone seen, in order, without quiet (which hides
# the kernel's lines); the kernel unpacked by nestvm, and by itself with
# --guest-decompress, both booting to /init. What the guest's kernel says
# of its i8042 shows the keyboard declared in ACPI (no aux probe).
check_boot_times() {
	line=$(grep '^nestvm: boot times: ' "$out" | tail -n 1 | tr -d '\r')
	[ -n "$line" ] || { fail "$1" "no 'nestvm: boot times:' line"; return 1; }
	echo "$line" | awk -v want_unpack="$2" '{
		n = split("load_start load_end entry first_output kernel_banner run_init stop exit", k, " ")
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		prev = 0
		for (i = 1; i <= n; i++) {
			if (v[k[i]] !~ /^[0-9]+\.[0-9]$/) { print "boot times: " k[i] " is \"" v[k[i]] "\""; exit 1 }
			if (v[k[i]] + 0 < prev) { print "boot times: " k[i] " before " k[i - 1]; exit 1 }
			prev = v[k[i]] + 0
		}
		if (want_unpack == "yes" && !(v["unpack"] > 0)) { print "boot times: unpack is " v["unpack"]; exit 1 }
		if (want_unpack == "no" && v["unpack"] != "0.0") { print "boot times: unpack is " v["unpack"]; exit 1 }
	}' >/tmp/boot-times.why || { fail "$1" "$(cat /tmp/boot-times.why): $line"; return 1; }
}

case_boot_times() {
	boot boot_times 0 run --kernel $K --initrd $I --memory 256M --boot-times \
		--cmdline "console=ttyS0 panic=-1" &&
	expect boot_times '^nestvm-guest: poweroff' &&
	expect boot_times 'i8042: PNP: PS/2 Controller \[PNP0303' &&
	check_boot_times boot_times yes || return
	boot boot_times 0 run --kernel $K --initrd $I --memory 256M --boot-times --guest-decompress \
		--cmdline "console=ttyS0 panic=-1" &&
	expect boot_times '^nestvm-guest: poweroff' &&
	check_boot_times boot_times no && pass boot_times
}

case_bad_kernel() {
	boot bad_kernel 2 run --kernel $I --memory 256M &&
	expect bad_kernel "nestvm: kernel '$I': not a Linux bzImage" && pass bad_kernel
}

case_initrd_too_big() {
	boot initrd_too_big 2 run --kernel $K --initrd $K --memory 16M &&
	expect initrd_too_big "(initrd|kernel).*--memory" && pass initrd_too_big
}

# Console input reaches the guest's shell through COM1 and its interrupt. The
# line is sent again every two seconds: the guest's UART driver clears its
# FIFO when it starts, so early input is lost, as on hardware.
case_console_input() {
	(sleep 1; for _ in $(seq 120); do printf 'echo in-$((6*7)); poweroff -f\n'; sleep 2; done) |
		timeout -k 10 240 ./nestvm run --kernel $K --initrd $I --memory 256M \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.cmd=shell" >"$out" 2>&1
	status=$?
	[ $status = 0 ] || { fail console_input "nestvm exited $status"; return; }
	expect console_input '^in-42' && pass console_input
}

# A guest reboot ends nestvm with status 0 (the default --on-reboot exit).
case_guest_reboot() {
	(sleep 1; for _ in $(seq 120); do printf 'reboot -f\n'; sleep 2; done) |
		timeout -k 10 240 ./nestvm run --kernel $K --initrd $I --memory 256M \
		--cmdline "console=ttyS0 panic=-1 nestvm.cmd=shell" >"$out" 2>&1
	status=$?
	[ $status = 0 ] || { fail guest_reboot "nestvm exited $status"; return; }
	expect guest_reboot 'reboot: Restarting system' && pass guest_reboot
}

# A machine rebuilt after each reset (--on-reboot restart) while API clients
# pause, resume and ask its status and console input keeps arriving: the
# tiny guest resets as soon as it has printed its command line, so the
# machine is torn down and built again hundreds of times under those
# threads. Every request gets its answer (between two machines that answer
# may be an error), the machine keeps coming back, and a stop ends it with
# status 0.
case_reboot_restart_stress() {
	sock=/tmp/restart.sock fcc=image/fc-client
	if [ ! -f tiny-guest.bzImage ] || [ ! -x $fcc/run ]; then
		echo "SKIP reboot_restart_stress: no tiny-guest.bzImage or no $fcc (socat)"
		skipped=$((skipped + 1))
		return
	fi
	rm -f $sock
	# A TAP adapter that nestvm creates: every machine after the first
	# needs it again, from a VMM that has dropped the capability to
	# create it.
	tap=
	if [ -c /dev/net/tun ]; then
		tap="--nic tap=nvreboot0"
	else
		echo "SKIP reboot_restart_tap: no /dev/net/tun in this host; the stress runs without a TAP adapter"
		skipped=$((skipped + 1))
	fi
	(while :; do printf 'x'; sleep 0.05; done) |
		timeout -k 10 240 ./nestvm run --kernel tiny-guest.bzImage --memory 32M --cmdline "reboot me" \
		--on-reboot restart --api-socket $sock $tap >"$out" 2>&1 &
	for _ in $(seq 100); do [ -S $sock ] && break; sleep 0.1; done
	asked=0 answered=0 end=$(($(date +%s) + 20))
	while [ "$(date +%s)" -lt $end ]; do
		for c in pause status resume status; do
			asked=$((asked + 1))
			r=$(printf '{"cmd": "%s"}\n' $c | timeout 5 $fcc/run socat -t 5 - UNIX-CONNECT:$sock 2>/dev/null)
			case $r in *'"ok"'*) answered=$((answered + 1)) ;; esac
		done
	done
	boots=$(grep -c '^reboot me' "$out")
	r=$(printf '{"cmd": "stop"}\n' | timeout 5 $fcc/run socat -t 5 - UNIX-CONNECT:$sock 2>/dev/null)
	wait_s=0
	while kill -0 $! 2>/dev/null && [ $wait_s -lt 60 ]; do sleep 1; wait_s=$((wait_s + 1)); done
	wait $!
	status=$?
	echo "restarts: $boots boots, $answered of $asked requests answered, stop: $r" >>"$out"
	[ "$answered" = "$asked" ] || { fail reboot_restart_stress "$((asked - answered)) of $asked API requests got no answer"; return; }
	[ "$boots" -ge 20 ] || { fail reboot_restart_stress "only $boots boots in 20 s of resets"; return; }
	[ "$status" = 0 ] || { fail reboot_restart_stress "nestvm exited $status after the stop, expected 0"; return; }
	echo "    $boots boots, $asked requests answered"
	pass reboot_restart_stress
}

e2e_case case_console_input
e2e_case case_guest_reboot
e2e_case case_reboot_restart_stress
e2e_case case_one_cpu
e2e_case case_boot_times
e2e_case case_two_cpus
e2e_case case_memory_size
e2e_case case_no_virt_by_default
e2e_case case_clock_and_acpi
e2e_case case_bad_kernel
e2e_case case_initrd_too_big

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

e2e_case case_console_input
e2e_case case_guest_reboot
e2e_case case_one_cpu
e2e_case case_two_cpus
e2e_case case_memory_size
e2e_case case_no_virt_by_default
e2e_case case_clock_and_acpi
e2e_case case_bad_kernel
e2e_case case_initrd_too_big

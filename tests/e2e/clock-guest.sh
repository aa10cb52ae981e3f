# Runs inside a guest for tests/e2e/boot.sh's clock case, booted quietly: the
# kernel's own lines about ACPI, its clocksource and SMP bring-up, from dmesg
# rather than printed as they happen (two vCPUs printing to one UART contend
# for the console lock, which QEMU's TCG, the simulated host, handles badly).
dmesg | grep -E 'ACPI: .*(FACP|APIC)|clocksource: Switched to clocksource|smp: Brought up' |
	sed 's/^/clock-guest: /'

# Sourced by tests/e2e/cases.sh inside the simulated host: the nested cases.
# NestedHost is a nestvm guest with the extensions exposed; inside it nestvm
# boots NestedVM from the default image, which prints a marker and powers off.

# A NestedHost initrd: the default image carrying itself and the script.
make_host_initrd() {
	sh scripts/nested-initrd /tmp/host-initrd.img image tests/e2e/nested-guest.sh:e2e/nested-guest.sh
}

case_nested_vm() {
	make_host_initrd
	boot nested_vm 0 run --nested --kernel $K --initrd /tmp/host-initrd.img --memory 768M \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/nested-guest.sh" || return
	expect nested_vm '^nestvm-guest: cpus=1 .*kvm=yes virt=svm' &&
	expect nested_vm '^NestedVM\| nestvm-guest: init' &&
	expect nested_vm '^NestedVM\| nestvm-guest: cpus=1 .*kvm=no virt=none' &&
	expect nested_vm '^NestedVM\| nestvm-guest: poweroff' &&
	expect nested_vm '^nested-guest: NestedVM exit=0' &&
	expect nested_vm '^nested-guest: VMM CapEff:0000000000000000 NoNewPrivs:1 Seccomp:2' &&
	expect nested_vm '^status\|  *Hypervisor: *nestvm \(KVM\)' &&
	expect nested_vm '^status\| The virtualization host .* supports nested virtualization: YES' &&
	expect nested_vm '^nested-guest: status exit=0' && pass nested_vm
}

# Without --nested, nestvm inside the guest must refuse clearly, status 2.
case_nested_refused_without_extensions() {
	make_host_initrd
	boot nested_refused 0 run --kernel $K --initrd /tmp/host-initrd.img --memory 768M \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/nested-guest.sh" || return
	expect nested_refused '^nestvm-guest: cpus=1 .*kvm=no virt=none' &&
	expect nested_refused '^nested-guest: NestedVM exit=2' &&
	expect nested_refused 'NestedVM\| nestvm: /dev/kvm: no such device' &&
	expect nested_refused '^status\|  *Hypervisor: *nestvm \(KVM\)' &&
	expect nested_refused '^status\| The virtualization host .* supports nested virtualization: NO' &&
	expect nested_refused '^status\| .*nestvm run --nested' &&
	expect nested_refused '^nested-guest: status exit=1' && pass nested_refused
}

# The simulated host itself: AMD-V, kvm_amd nested=1, hardware speed.
case_status_host() {
	boot status_host 0 status --json || return
	expect status_host '"supportsNesting": *true' && pass status_host
}

# With kvm_amd nested=0 the host cannot nest: status says so with the fix, and
# a VM asked to nest does not start, naming the module parameter.
case_nested_off_in_host() {
	if ! { modprobe -r kvm_amd && modprobe kvm_amd nested=0; }; then
		fail nested_off "could not reload kvm_amd with nested=0"
		return
	fi
	ok=0
	boot nested_off 1 status &&
	expect nested_off 'supports nested virtualization: NO' &&
	expect nested_off 'nested=1' &&
	boot nested_off 2 run --nested --kernel $K --initrd $I --memory 256M &&
	expect nested_off 'cannot expose virtualization extensions.*nested=1' && ok=1
	modprobe -r kvm_amd && modprobe kvm_amd nested=1
	[ $ok = 1 ] && pass nested_off
}

e2e_case case_status_host
e2e_case case_nested_off_in_host
e2e_case case_nested_vm
e2e_case case_nested_refused_without_extensions

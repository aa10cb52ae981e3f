# Sourced by tests/e2e/boot.sh inside the simulated host: the nested cases.
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
	expect nested_vm '^nested-guest: NestedVM exit=0' && pass nested_vm
}

# Without --nested, nestvm inside the guest must refuse clearly, status 2.
case_nested_refused_without_extensions() {
	make_host_initrd
	boot nested_refused 0 run --kernel $K --initrd /tmp/host-initrd.img --memory 768M \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/nested-guest.sh" || return
	expect nested_refused '^nestvm-guest: cpus=1 .*kvm=no virt=none' &&
	expect nested_refused '^nested-guest: NestedVM exit=2' &&
	expect nested_refused 'NestedVM\| nestvm: /dev/kvm: no such device' && pass nested_refused
}

e2e_case case_nested_vm
e2e_case case_nested_refused_without_extensions

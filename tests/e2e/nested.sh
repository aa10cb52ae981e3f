# Sourced by tests/e2e/boot.sh inside the simulated host: the nested cases.
# NestedHost is a nestvm guest with the extensions exposed; inside it nestvm
# boots NestedVM from the default image, which prints a marker and powers off.

# A NestedHost initrd: the default image plus, in /image and /e2e, what the
# NestedHost needs to start NestedVM. The plain cpio goes first, as the
# kernel unpacks concatenated archives in order.
make_host_initrd() {
	rm -rf /tmp/nh && mkdir -p /tmp/nh/image /tmp/nh/e2e
	cp image/vmlinuz image/initrd.img /tmp/nh/image/
	cp tests/e2e/nested-guest.sh /tmp/nh/e2e/
	(cd /tmp/nh && find . | cpio -o -H newc 2>/dev/null) >/tmp/nh.cpio
	cat /tmp/nh.cpio image/initrd.img >/tmp/host-initrd.img
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

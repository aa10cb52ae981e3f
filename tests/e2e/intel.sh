# Runs inside the Intel simulated host (scripts/simhost-intel: busybox sh under
# Bochs with VMX+EPT, cwd /nestvm): the reduced end-to-end set for kvm_intel.
# nestvm boots the default image, then a NestedHost with --nested in which
# nestvm boots NestedVM. Sourced by tests/e2e/cases.sh; the limits in
# tests/e2e/lib.sh are in the simulated host's time, which Bochs's ips setting
# makes run slower than the wall clock.

case_intel_one_cpu() {
	boot intel_one_cpu 0 run --kernel $K --initrd $I --memory 256M --cpus 1 \
		--cmdline "console=ttyS0 panic=-1 quiet" &&
	expect intel_one_cpu '^nestvm-guest: init' &&
	expect intel_one_cpu '^nestvm-guest: cpus=1 .*kvm=no virt=none' &&
	expect intel_one_cpu '^nestvm-guest: poweroff' && pass intel_one_cpu
}

# As tests/e2e/nested.sh: the NestedHost initrd is the default image plus, in
# /image and /e2e, what NestedHost needs to start NestedVM.
make_host_initrd() {
	rm -rf /tmp/nh && mkdir -p /tmp/nh/image /tmp/nh/e2e
	cp image/vmlinuz image/initrd.img /tmp/nh/image/
	cp tests/e2e/nested-guest.sh /tmp/nh/e2e/
	(cd /tmp/nh && find . | cpio -o -H newc 2>/dev/null) >/tmp/nh.cpio
	cat /tmp/nh.cpio image/initrd.img >/tmp/host-initrd.img
	rm -rf /tmp/nh /tmp/nh.cpio
}

case_intel_nested_vm() {
	make_host_initrd
	boot intel_nested_vm 0 run --nested --kernel $K --initrd /tmp/host-initrd.img --memory 768M \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/nested-guest.sh" || return
	expect intel_nested_vm '^nestvm-guest: cpus=1 .*kvm=yes virt=vmx' &&
	expect intel_nested_vm '^NestedVM\| nestvm-guest: init' &&
	expect intel_nested_vm '^NestedVM\| nestvm-guest: cpus=1 .*kvm=no virt=none' &&
	expect intel_nested_vm '^NestedVM\| nestvm-guest: poweroff' &&
	expect intel_nested_vm '^nested-guest: NestedVM exit=0' && pass intel_nested_vm
}

# Three levels, as tests/e2e/deep.sh: NestedHost starts a second NestedHost
# whose nestvm boots the tiny guest at level 3.
case_intel_level3() {
	sh scripts/nested-initrd /tmp/l2.img image tests/e2e/deep-l2.sh:e2e/deep-l2.sh \
		tiny-guest.bzImage:image/tiny-guest.bzImage &&
	sh scripts/nested-initrd /tmp/l1.img image tests/e2e/deep-host.sh:e2e/deep-host.sh \
		/tmp/l2.img:image/l2.img || { fail intel_level3 "nested-initrd failed"; return; }
	rm -f /tmp/l2.img
	BOOT_BOUND=900
	boot intel_level3 0 run --nested --kernel $K --initrd /tmp/l1.img --memory 640M \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/deep-host.sh"
	rc=$?
	unset BOOT_BOUND
	[ $rc = 0 ] || return
	expect intel_level3 '^nestvm-guest: cpus=1 .*kvm=yes virt=vmx' &&
	expect intel_level3 '^L2\| nestvm-guest: cpus=1 .*kvm=yes virt=vmx' &&
	expect intel_level3 '^L2\| NestedVM\| tiny-guest: NestedVM up at level 3' &&
	expect intel_level3 '^L2\| deep-l2: NestedVM exit=0' &&
	expect intel_level3 '^deep-host: level 2 exit=0' && pass intel_level3
}

e2e_case case_intel_one_cpu
e2e_case case_intel_nested_vm
e2e_case case_intel_level3

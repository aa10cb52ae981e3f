# Sourced by tests/e2e/cases.sh inside the simulated host: three levels of
# nestvm. NestedHost (level 1, --nested) starts a second NestedHost (level 2,
# --nested) whose nestvm boots NestedVM (level 3): the tiny guest
# (tests/tiny-guest.c), a bzImage that prints its command line and powers
# off, since a Linux guest makes too many exits to boot at level 3 within a
# test's time here. Every level must exit 0.

case_level3() {
	sh scripts/nested-initrd /tmp/l2.img image tests/e2e/deep-l2.sh:e2e/deep-l2.sh \
		tiny-guest.bzImage:image/tiny-guest.bzImage &&
	sh scripts/nested-initrd /tmp/l1.img image tests/e2e/deep-host.sh:e2e/deep-host.sh \
		/tmp/l2.img:image/l2.img || { fail level3 "nested-initrd failed"; return; }
	rm -f /tmp/l2.img
	BOOT_BOUND=600
	boot level3 0 run --nested --kernel $K --initrd /tmp/l1.img --memory 640M \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/deep-host.sh"
	rc=$?
	unset BOOT_BOUND
	[ $rc = 0 ] || return
	expect level3 '^nestvm-guest: cpus=1 .*kvm=yes virt=svm' &&
	expect level3 '^L2\| nestvm-guest: cpus=1 .*kvm=yes virt=svm' &&
	expect level3 '^L2\| NestedVM\| tiny-guest: NestedVM up at level 3' &&
	expect level3 '^L2\| deep-l2: NestedVM exit=0' &&
	expect level3 '^L2\| nestvm-guest: poweroff' &&
	expect level3 '^deep-host: level 2 exit=0' &&
	echo "NOTE level3: $(sed -n 's/^L2| deep-l2: \(level 2 up after [0-9]* s\).*/\1/p' "$out");" \
		"$(sed -n 's/^L2| deep-l2: NestedVM exit=0 \(after [0-9]* s\).*/NestedVM ran \1/p' "$out");" \
		"$(sed -n 's/^deep-host: level 2 exit=0 \(after [0-9]* s\).*/level 2 ended \1/p' "$out")" &&
	pass level3
}

e2e_case case_level3

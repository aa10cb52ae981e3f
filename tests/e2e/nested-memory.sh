# Sourced by tests/e2e/cases.sh inside the simulated host: dynamic memory for
# a nested host, which Hyper-V does not allow. Not in tests/e2e/run's tier:
# it fails today (NestedHost starves at its minimum while NestedVM fills
# memory; see the README), and stays here to show it:
#   tests/e2e/soak nested-memory:case_nested_dynamic_memory 1
# NestedHost starts at 384M of a 1280M maximum; when its NestedVM takes
# memory the balloon should give NestedHost more, and once NestedVM has ended
# take it back, NestedVM undisturbed.
export NESTVM_STORE=/tmp/nm-store

case_nested_dynamic_memory() {
	rm -rf "$NESTVM_STORE"
	: >"$out"
	sh scripts/nested-initrd /tmp/mem.img image tests/e2e/memory-guest.sh:e2e/memory-guest.sh &&
	sh scripts/nested-initrd /tmp/nmh.img image tests/e2e/nested-mem-host.sh:e2e/nested-mem-host.sh \
		/tmp/mem.img:image/mem.img || { fail nested_dynamic_memory "nested-initrd failed"; return; }
	timeout -k 5 60 ./nestvm vm new NestedHost --memory 384M --nested --kernel image/vmlinuz --initrd /tmp/nmh.img \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/nested-mem-host.sh" >>"$out" 2>&1 &&
	timeout -k 5 60 ./nestvm vm set NestedHost --dynamic-memory on --memory-minimum 384M \
		--memory-maximum 1280M >>"$out" 2>&1 &&
	timeout -k 5 60 ./nestvm vm start NestedHost >>"$out" 2>&1 || { fail nested_dynamic_memory "vm new or start failed"; return; }
	# The memory assigned to NestedHost, once a second, phase by phase.
	log=$NESTVM_STORE/NestedHost/console.log
	: >/tmp/nm-series
	t=0 phase=idle idle_at=0 busy_max=0 after_min=999999
	while [ $t -lt 600 ] && ! grep -q 'nested-mem-host: done' "$log" 2>/dev/null; do
		a=$(timeout -k 5 10 ./nestvm vm show NestedHost --json 2>/dev/null |
			sed -n 's/.*"memoryAssignedBytes": *\([0-9]*\).*/\1/p')
		[ -z "$a" ] || a=$((a / 1048576))
		grep -q 'starting NestedVM' "$log" && phase=busy
		grep -q 'NestedVM exit=' "$log" && phase=after
		if [ -n "$a" ]; then
			echo "t=$t $phase assigned=${a}M" >>/tmp/nm-series
			case $phase in
			idle) idle_at=$a ;;    # where the balloon settled
			busy) [ "$a" -gt "$busy_max" ] && busy_max=$a ;;
			after) [ "$a" -lt "$after_min" ] && after_min=$a ;;
			esac
		fi
		sleep 1
		t=$((t + 1))
	done
	# One sample in twenty, and every change of phase; then what NestedHost
	# and NestedVM said.
	awk '{ if (NR % 20 == 1 || $2 != last) print; last = $2 }' /tmp/nm-series >>"$out"
	sed 's/^/console| /' "$log" | grep -E 'NestedVM\||nested-mem-host' >>"$out"
	timeout -k 5 120 ./nestvm vm stop NestedHost --force >>"$out" 2>&1
	echo "assigned: idle at ${idle_at}M, with NestedVM up to ${busy_max}M, after down to ${after_min}M" >>"$out"
	expect nested_dynamic_memory 'NestedVM\| memory-guest: filled 200 MiB' &&
	expect nested_dynamic_memory 'nested-mem-host: NestedVM exit=0' || return
	[ "$busy_max" -ge $((idle_at + 128)) ] ||
		{ fail nested_dynamic_memory "NestedHost got no memory while NestedVM ran (${idle_at}M, then ${busy_max}M)"; return; }
	[ "$after_min" -le $((busy_max - 128)) ] ||
		{ fail nested_dynamic_memory "NestedHost kept the memory after NestedVM ended (${busy_max}M, then ${after_min}M)"; return; }
	echo "NOTE nested_dynamic_memory: idle ${idle_at}M, with NestedVM ${busy_max}M, after ${after_min}M"
	pass nested_dynamic_memory
}

e2e_case case_nested_dynamic_memory

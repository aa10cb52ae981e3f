# Sourced by tests/e2e/cases.sh inside the simulated host: dynamic memory. A
# guest with 256M of its 512M maximum gives the rest to the balloon at boot
# (the VMM returns those pages to the host), and when it fills 200M of tmpfs
# the VMM gives it more, up to the maximum.
case_dynamic_memory() {
	sh scripts/nested-initrd /tmp/mem-initrd.img image tests/e2e/memory-guest.sh:e2e/memory-guest.sh || {
		fail dynamic_memory "nested-initrd failed"; return; }
	boot dynamic_memory 0 run --kernel $K --initrd /tmp/mem-initrd.img --memory 256M \
		--dynamic-memory --memory-minimum 256M --memory-maximum 512M --stats \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/memory-guest.sh" || return
	expect dynamic_memory '^memory-guest: balloon driver 1' &&
	expect dynamic_memory '^memory-guest: filled 200 MiB' || return
	# Settled: what the guest can use is below its 256M, not its 512M.
	settled=$(sed -n 's/^memory-guest: settled avail_kb=\([0-9]*\).*/\1/p' "$out")
	[ -n "$settled" ] && [ "$settled" -lt 262144 ] ||
		{ fail dynamic_memory "settled MemAvailable '$settled' kB is not below 256M"; return; }
	assigned=$(sed -n 's/.*stats: memory_assigned_kib=\([0-9]*\).*/\1/p' "$out")
	released=$(sed -n 's/.*balloon_released_pages=\([0-9]*\).*/\1/p' "$out")
	[ -n "$assigned" ] && [ "$assigned" -gt 262144 ] && [ "$assigned" -le 524288 ] ||
		{ fail dynamic_memory "assigned at exit '$assigned' KiB is not above the startup 256M"; return; }
	[ -n "$released" ] && [ "$released" -ge 32768 ] ||
		{ fail dynamic_memory "only '$released' pages went back to the host"; return; }
	pass dynamic_memory
	echo "    settled at ${settled} kB available; ${released} pages released; ${assigned} KiB assigned at exit"
}

# Bounds in the wrong order are refused before the VM starts.
case_dynamic_memory_bad_input() {
	boot dynamic_memory_bad 2 run --kernel $K --initrd $I --memory 256M \
		--dynamic-memory --memory-minimum 384M --memory-maximum 512M &&
	expect dynamic_memory_bad 'minimum' && pass dynamic_memory_bad
}

e2e_case case_dynamic_memory
e2e_case case_dynamic_memory_bad_input

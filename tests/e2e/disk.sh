# Sourced by tests/e2e/cases.sh inside the simulated host: virtio-blk and
# virtio-rng. A guest makes a file system on a disk, writes and syncs a file,
# and its VMM is killed with SIGKILL; a fresh boot reads every byte back. A
# read-only disk refuses writes.
case_disk_survives_kill() {
	sh scripts/nested-initrd /tmp/disk-initrd.img image tests/e2e/disk-guest.sh:e2e/disk-guest.sh || {
		fail disk_kill "nested-initrd failed"; return; }
	rm -f /tmp/d.img /tmp/ro.img
	truncate -s 64M /tmp/d.img
	printf 'ROMARKER' >/tmp/ro.img && truncate -s 1M /tmp/ro.img
	./nestvm run --kernel $K --initrd /tmp/disk-initrd.img --memory 256M --disk /tmp/d.img \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/disk-guest.sh disk.phase=write" \
		>"$out" 2>&1 </dev/null &
	pid=$!
	i=0
	while [ $i -lt 120 ] && ! grep -q 'disk-guest: written' "$out"; do sleep 1; i=$((i + 1)); done
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	expect disk_kill 'disk-guest: written' && expect disk_kill 'rng virtio_rng' || return
	written=$(sed -n 's/.*disk-guest: written \([0-9a-f]*\).*/\1/p' "$out")
	boot disk_kill 0 run --kernel $K --initrd /tmp/disk-initrd.img --memory 256M \
		--disk /tmp/d.img --disk /tmp/ro.img,ro \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/disk-guest.sh disk.phase=verify" || return
	expect disk_kill "disk-guest: verified $written" &&
	expect disk_kill 'disk-guest: read-only disk refused a write' &&
	expect disk_kill 'disk-guest: vdb starts with ROMARKER' && pass disk_kill
}

case_disk_bad_input() {
	boot disk_bad 2 run --kernel $K --initrd $I --memory 256M --disk /nonexistent.img &&
	expect disk_bad "disk '/nonexistent.img': No such file" &&
	boot disk_bad 2 run --kernel $K --initrd $I --memory 256M --disk /tmp/d.img,rx &&
	expect disk_bad "only option after the path is ',ro'" && pass disk_bad
}

e2e_case case_disk_survives_kill
e2e_case case_disk_bad_input

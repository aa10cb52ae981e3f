# Sourced by tests/e2e/cases.sh inside the simulated host: nestvm where
# Firecracker is expected. A client nestvm did not write (curl, and socat
# for the vsock's host side, brought in by scripts/mkimage as
# image/fc-client/) drives "firecracker" (a link to nestvm) over its API
# socket: a whole life, a --config-file boot with no API calls, a snapshot
# loaded by another process, and a nested host started through the API that
# boots its own NestedVM.

fcc=image/fc-client
sock=/tmp/fc.sock
con=/tmp/fc.console

# fc_ready NAME: the client is here (else the case skips, counted), the
# link named firecracker is made, nothing of an earlier run is left.
fc_ready() {
	if [ ! -x $fcc/run ]; then
		echo "SKIP $1: no $fcc (scripts/mkimage leaves it out without curl, socat and lz4)"
		skipped=$((skipped + 1))
		return 1
	fi
	mkdir -p /tmp/fcbin
	ln -sf /nestvm/nestvm /tmp/fcbin/firecracker
	rm -f $sock /tmp/v.sock* $con
	: >"$out"
}

# api NAME METHOD PATH WANT [BODY]: one request with curl; the answer's body
# in $body; the case fails unless the status is WANT.
api() {
	name=$1 method=$2 path=$3 want=$4
	if [ $# -ge 5 ]; then
		$fcc/run curl -sS --max-time 120 --unix-socket $sock -X "$method" -H 'Content-Type: application/json' \
			-d "$5" -w '\n%{http_code}\n' "http://localhost$path" >/tmp/api.out 2>&1
	else
		$fcc/run curl -sS --max-time 120 --unix-socket $sock -X "$method" -w '\n%{http_code}\n' \
			"http://localhost$path" >/tmp/api.out 2>&1
	fi
	code=$(tail -n1 /tmp/api.out)
	body=$(sed '$d' /tmp/api.out)
	echo "> $method $path ${5:-} -> $code $body" >>"$out"
	[ "$code" = "$want" ] || { fail "$name" "$method $path: HTTP $code, expected $want: $body"; return 1; }
}

# has NAME TEXT: the last answer's body holds TEXT.
has() {
	case $body in *"$2"*) return 0 ;; esac
	fail "$1" "answer '$body' lacks '$2'"
	return 1
}

# console_until PATTERN SECONDS: the guest's console shows a line matching
# PATTERN (its carriage returns dropped).
console_until() {
	i=0
	while [ $i -lt "$2" ]; do
		tr -d '\r' <$con 2>/dev/null | grep -Eq "$1" && return 0
		sleep 1
		i=$((i + 1))
	done
	return 1
}

# wait_exit NAME PID SECONDS: the VMM ended within SECONDS; its status in $rc.
wait_exit() {
	i=0
	while kill -0 "$2" 2>/dev/null && [ $i -lt "$3" ]; do
		sleep 1
		i=$((i + 1))
	done
	if kill -0 "$2" 2>/dev/null; then
		kill -9 "$2"
		tr -d '\r' <$con | tail -n 40 | sed 's/^/console| /' >>"$out"
		fail "$1" "firecracker did not end within $3 s"
		return 1
	fi
	wait "$2"
	rc=$?
}

# abort NAME WHY: the VMM killed, its console kept with the case's output.
abort() {
	kill -9 $fcpid 2>/dev/null
	sed 's/^/console| /' $con >>"$out"
	fail "$1" "$2"
}

# start_fc ID: firecracker in the background, its console in $con.
start_fc() {
	/tmp/fcbin/firecracker --api-sock $sock --id "$1" >$con 2>&1 </dev/null &
	fcpid=$!
	i=0
	while [ ! -S $sock ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
}

# The ELF vmlinux inside Debian's bzImage, as Firecracker's users boot it.
unpack_vmlinux() {
	[ -f $fcc/vmlinux-offset ] || return 1
	tail -c +$(($(cat $fcc/vmlinux-offset) + 1)) $K | $fcc/run lz4 -dc >/tmp/vmlinux 2>/dev/null
	[ "$(head -c 4 /tmp/vmlinux | tail -c 3)" = ELF ]
}

mkdisk() {
	dd if=/dev/zero of="$1" bs=1024 count="$3" 2>/dev/null
	printf '%s' "$2" | dd of="$1" conv=notrunc 2>/dev/null
}

case_fc_version() {
	fc_ready fc_version || return
	/tmp/fcbin/firecracker --version >"$out" 2>&1 || { fail fc_version "--version failed"; return; }
	expect fc_version '^Firecracker v[0-9]+\.[0-9]+\.[0-9]+$' && pass fc_version
}

case_fc_life() {
	fc_ready fc_life || return
	kernel=$K
	unpack_vmlinux && kernel=/tmp/vmlinux
	echo "kernel: $kernel" >>"$out"
	sh scripts/nested-initrd /tmp/fc-initrd.img image tests/e2e/fc-guest.sh:e2e/fc-guest.sh
	mkdisk /tmp/root.img root-disk 1024
	mkdisk /tmp/one.img disk-one 1024
	mkdisk /tmp/two.img disk-two 2048
	$fcc/run socat -u UNIX-LISTEN:/tmp/v.sock_1234 CREATE:/tmp/from-guest.txt &
	start_fc e2e-life
	api fc_life GET / 200 && has fc_life '"state":"Not started"' && has fc_life '"id":"e2e-life"' &&
	api fc_life PUT /logger 204 '{"log_path":"/tmp/fc.log","level":"Info"}' &&
	api fc_life PUT /metrics 204 '{"metrics_path":"/tmp/fc.metrics"}' &&
	api fc_life PUT /machine-config 204 '{"vcpu_count":1,"mem_size_mib":256}' &&
	api fc_life PUT /boot-source 204 "{\"kernel_image_path\":\"$kernel\",\"initrd_path\":\"/tmp/fc-initrd.img\",\"boot_args\":\"console=ttyS0 reboot=k panic=1 pci=off quiet nestvm.script=/e2e/fc-guest.sh\"}" &&
	api fc_life PUT /drives/rootfs 204 '{"drive_id":"rootfs","path_on_host":"/tmp/root.img","is_root_device":true,"is_read_only":true}' &&
	api fc_life PUT /drives/scratch 204 '{"drive_id":"scratch","path_on_host":"/tmp/one.img","is_root_device":false,"is_read_only":false}' &&
	api fc_life PUT /vsock 204 '{"guest_cid":3,"uds_path":"/tmp/v.sock"}' &&
	api fc_life PUT /drives/bad 400 '{"drive_id":"bad","path_on_host":"/tmp/one.img","is_root_device":false,"colour":"red"}' &&
	has fc_life 'unknown field `colour`' &&
	api fc_life PATCH /vm 400 '{"state":"Paused"}' && has fc_life 'before starting the microVM' &&
	api fc_life PUT /actions 204 '{"action_type":"InstanceStart"}' &&
	api fc_life GET / 200 && has fc_life '"state":"Running"' &&
	api fc_life PUT /machine-config 400 '{"vcpu_count":2,"mem_size_mib":256}' &&
	has fc_life 'not supported after starting the microVM' || { kill -9 $fcpid; return; }

	if ! console_until '^fc-guest: sent to the host' 400; then
		abort fc_life "the guest sent nothing over vsock"; return
	fi
	grep -q 'hello from the guest' /tmp/from-guest.txt || { abort fc_life "the host did not get the guest's line"; return; }
	console_until '^fc-guest: listening on 52' 60 || { abort fc_life "the guest did not listen"; return; }
	printf 'CONNECT 52\nping from the host\n' | $fcc/run socat -t 20 - UNIX-CONNECT:/tmp/v.sock >/tmp/host-got.txt 2>&1
	cat /tmp/host-got.txt >>"$out"
	grep -Eq '^OK [0-9]+$' /tmp/host-got.txt && grep -q 'pong from the guest' /tmp/host-got.txt ||
		{ abort fc_life "no OK and pong from the guest's port 52"; return; }
	console_until '^fc-guest: got ping from the host' 60 || { abort fc_life "the guest did not get the ping"; return; }

	console_until '^fc-guest: tick 1$' 120 || { abort fc_life "the guest does not tick"; return; }
	api fc_life PATCH /vm 204 '{"state":"Paused"}' && api fc_life GET / 200 && has fc_life '"state":"Paused"' ||
		{ kill -9 $fcpid; return; }
	sleep 1
	before=$(grep -c '^fc-guest: tick' $con)
	sleep 4
	after=$(grep -c '^fc-guest: tick' $con)
	[ "$before" = "$after" ] || { abort fc_life "the guest ticked while paused ($before, then $after)"; return; }
	api fc_life PATCH /vm 204 '{"state":"Resumed"}' && api fc_life GET / 200 && has fc_life '"state":"Running"' ||
		{ kill -9 $fcpid; return; }
	console_until "^fc-guest: tick $after\$" 120 || { abort fc_life "no tick after resuming"; return; }

	api fc_life PATCH /drives/scratch 204 '{"drive_id":"scratch","path_on_host":"/tmp/two.img"}' &&
	api fc_life PATCH /drives/scratch 400 '{"drive_id":"scratch","path_on_host":"/nonexistent.img"}' &&
	api fc_life PUT /actions 204 '{"action_type":"FlushMetrics"}' || { kill -9 $fcpid; return; }
	console_until '^fc-guest: vdb now says disk-two \(4096 sectors\)' 120 ||
		{ abort fc_life "the guest did not see the swapped drive"; return; }
	grep -q utc_timestamp_ms /tmp/fc.metrics || { abort fc_life "no metrics flushed"; return; }

	console_until '^fc-guest: waiting for ctrl-alt-del' 60 || { abort fc_life "the guest did not get there"; return; }
	api fc_life PUT /actions 204 '{"action_type":"SendCtrlAltDel"}' || { kill -9 $fcpid; return; }
	wait_exit fc_life $fcpid 180 || return
	cat $con >>"$out"
	[ "$rc" = 0 ] || { fail fc_life "firecracker exited $rc after Ctrl-Alt-Del, expected 0"; return; }
	expect fc_life '^fc-guest: kernel ' &&
	expect fc_life '^fc-guest: vdb says disk-one' &&
	grep -q 'Running nestvm as Firecracker' /tmp/fc.log || { fail fc_life "nothing in the log"; return; }
	[ ! -e $sock ] || { fail fc_life "the API socket is left behind"; return; }
	pass fc_life
}

# No API call: the microVM is described in a file. The tiny guest prints its
# command line: with acpi=off the virtio windows are named there.
case_fc_config_file() {
	fc_ready fc_config_file || return
	cat >/tmp/vm.json <<JSON
{
  "boot-source": {"kernel_image_path": "/nestvm/tiny-guest.bzImage", "boot_args": "console=ttyS0 acpi=off marker=from-config"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
  "vsock": {"guest_cid": 7, "uds_path": "/tmp/v.sock"},
  "entropy": {},
  "drives": [],
  "network-interfaces": []
}
JSON
	timeout -k 10 120 /tmp/fcbin/firecracker --no-api --config-file /tmp/vm.json >"$out" 2>&1 </dev/null
	rc=$?
	[ "$rc" = 0 ] || { fail fc_config_file "firecracker exited $rc, expected 0"; return; }
	expect fc_config_file 'marker=from-config' &&
	expect fc_config_file 'virtio_mmio.device=4K@0xd0000000:16 virtio_mmio.device=4K@0xd0001000:17' || return
	echo '{"boot-source": {"kernel_image_path": "/nestvm/tiny-guest.bzImage"}, "balloon": {"amount_mib": 1}}' >/tmp/bad.json
	timeout -k 10 60 /tmp/fcbin/firecracker --no-api --config-file /tmp/bad.json >"$out" 2>&1 </dev/null
	rc=$?
	[ "$rc" = 1 ] || { fail fc_config_file "a bad --config-file: exited $rc, expected 1"; return; }
	expect fc_config_file '"balloon" is not supported by nestvm yet' && pass fc_config_file
}

# counts FILE: the counts "count N" on a console, one a line.
counts() {
	tr -d '\r' <"$1" | grep -o '^count [0-9]*' | awk '{print $2}'
}

# A counting guest with a drive and a vsock, paused and snapshotted; the
# first process ends, a second loads the snapshot paused (no count), and
# once resumed the guest counts on from the next number.
case_fc_snapshot() {
	fc_ready fc_snapshot || return
	sh scripts/nested-initrd /tmp/fc-counter.img image tests/e2e/counter.sh:e2e/counter.sh
	mkdisk /tmp/snap-disk.img snap-disk 1024
	rm -f /tmp/fc.snap /tmp/fc.mem
	start_fc e2e-snap
	api fc_snapshot PUT /machine-config 204 '{"vcpu_count":1,"mem_size_mib":256}' &&
	api fc_snapshot PUT /boot-source 204 "{\"kernel_image_path\":\"/nestvm/$K\",\"initrd_path\":\"/tmp/fc-counter.img\",\"boot_args\":\"console=ttyS0 panic=-1 quiet nestvm.script=/e2e/counter.sh\"}" &&
	api fc_snapshot PUT /drives/data 204 '{"drive_id":"data","path_on_host":"/tmp/snap-disk.img","is_root_device":false,"is_read_only":true}' &&
	api fc_snapshot PUT /vsock 204 '{"guest_cid":5,"uds_path":"/tmp/v.sock"}' &&
	api fc_snapshot PUT /snapshot/create 400 '{"snapshot_path":"/tmp/fc.snap","mem_file_path":"/tmp/fc.mem"}' &&
	has fc_snapshot 'before starting the microVM' &&
	api fc_snapshot PUT /actions 204 '{"action_type":"InstanceStart"}' || { kill -9 $fcpid; return; }
	console_until '^count 5$' 400 || { abort fc_snapshot "the guest did not count to 5"; return; }
	api fc_snapshot PUT /snapshot/create 400 '{"snapshot_path":"/tmp/fc.snap","mem_file_path":"/tmp/fc.mem"}' &&
	has fc_snapshot 'must be paused' &&
	api fc_snapshot PATCH /vm 204 '{"state":"Paused"}' &&
	api fc_snapshot PUT /snapshot/create 400 '{"snapshot_path":"/tmp/fc.snap","mem_file_path":"/tmp/fc.mem","snapshot_type":"Diff"}' &&
	has fc_snapshot 'Diff snapshots are not supported' &&
	api fc_snapshot PUT /snapshot/create 204 '{"snapshot_path":"/tmp/fc.snap","mem_file_path":"/tmp/fc.mem"}' &&
	api fc_snapshot GET / 200 && has fc_snapshot '"state":"Paused"' || { kill -9 $fcpid; return; }
	last=$(counts $con | sort -n | tail -n 1)
	echo "saved at count $last; $(ls -l /tmp/fc.snap /tmp/fc.mem)" >>"$out"
	kill -TERM $fcpid
	wait_exit fc_snapshot $fcpid 60 || return

	start_fc e2e-snap-2
	api fc_snapshot PUT /drives/other 204 '{"drive_id":"other","path_on_host":"/tmp/snap-disk.img","is_root_device":false}' &&
	api fc_snapshot PUT /snapshot/load 400 '{"snapshot_path":"/tmp/fc.snap","mem_file_path":"/tmp/fc.mem"}' &&
	has fc_snapshot 'not allowed after configuring boot-specific resources' || { kill -9 $fcpid; return; }
	kill -TERM $fcpid
	wait_exit fc_snapshot $fcpid 60 || return

	start_fc e2e-snap-3
	api fc_snapshot PUT /snapshot/load 204 '{"snapshot_path":"/tmp/fc.snap","mem_backend":{"backend_type":"File","backend_path":"/tmp/fc.mem"}}' &&
	api fc_snapshot GET / 200 && has fc_snapshot '"state":"Paused"' &&
	api fc_snapshot GET /vm/config 200 && has fc_snapshot '"drive_id":"data"' && has fc_snapshot '"guest_cid":5' &&
	api fc_snapshot PUT /boot-source 400 "{\"kernel_image_path\":\"/nestvm/$K\"}" || { kill -9 $fcpid; return; }
	sleep 3
	[ -z "$(counts $con)" ] || { abort fc_snapshot "the guest counted before it was resumed"; return; }
	api fc_snapshot PATCH /vm 204 '{"state":"Resumed"}' || { kill -9 $fcpid; return; }
	console_until "^count $((last + 3))\$" 120 || { abort fc_snapshot "no count after the resume (saved at $last)"; return; }
	first=$(counts $con | head -n 1)
	echo "after the load: first count $first" >>"$out"
	[ "$first" = $((last + 1)) ] || { abort fc_snapshot "the count went on at $first, not $((last + 1))"; return; }
	[ -S /tmp/v.sock ] || { abort fc_snapshot "the restored vsock has no host socket"; return; }
	kill -TERM $fcpid
	wait_exit fc_snapshot $fcpid 60 || return
	pass fc_snapshot
}

# A nested host started through the API boots its own NestedVM: the tiny
# guest, so that the case stays within its bound on a loaded machine.
case_fc_nested_host() {
	fc_ready fc_nested_host || return
	sh scripts/nested-initrd /tmp/host-initrd.img image tests/e2e/fc-nested-guest.sh:e2e/fc-nested-guest.sh \
		tiny-guest.bzImage:image/tiny-guest.bzImage
	start_fc e2e-nested
	api fc_nested_host PUT /machine-config 204 '{"vcpu_count":1,"mem_size_mib":512,"nested_virtualization":true}' &&
	api fc_nested_host GET /machine-config 200 && has fc_nested_host '"nested_virtualization":true' &&
	api fc_nested_host PUT /entropy 204 '{}' &&
	api fc_nested_host PUT /boot-source 204 "{\"kernel_image_path\":\"/nestvm/$K\",\"initrd_path\":\"/tmp/host-initrd.img\",\"boot_args\":\"console=ttyS0 panic=-1 quiet nestvm.script=/e2e/fc-nested-guest.sh\"}" &&
	api fc_nested_host PUT /actions 204 '{"action_type":"InstanceStart"}' || { kill -9 $fcpid; return; }
	wait_exit fc_nested_host $fcpid 540 || return
	cat $con >>"$out"
	[ "$rc" = 0 ] || { fail fc_nested_host "firecracker exited $rc, expected 0"; return; }
	expect fc_nested_host '^nestvm-guest: cpus=1 .*kvm=yes virt=svm' &&
	expect fc_nested_host '^NestedVM\| tiny-guest: NestedVM up inside the microVM' &&
	expect fc_nested_host '^fc-nested: NestedVM exit=0' && pass fc_nested_host
}

e2e_case case_fc_version
e2e_case case_fc_config_file
e2e_case case_fc_life
e2e_case case_fc_snapshot
e2e_case case_fc_nested_host

# Sourced by tests/e2e/cases.sh inside the simulated host: live migration
# between two stores (two nestvm "hosts") in one simulated host, over a unix
# socket and over TCP. A guest counting on its console and disk goes on at
# the destination from the next number, its disk with it; a NestedHost whose
# NestedVM counts migrates with NestedVM running; a destination that cannot
# take the VM refuses, the source hears why and the VM runs on there.
SRC=/tmp/mig-src DST=/tmp/mig-dst

# m STORE NESTVM-ARGS...: nestvm on STORE (lib.sh's nv), its command and output in $out.
m() {
	echo "[store $1]" >>"$out"
	NESTVM_STORE=$1
	export NESTVM_STORE
	shift
	nv "$@"
}

m_expect() {
	name=$1 want=$2; shift 2
	m "$@"
	[ "$status" = "$want" ] || { fail "$name" "nestvm $* exited $status, expected $want"; return 1; }
}

# count STORE VM PREFIX; wait_count_in STORE VM PREFIX N [TRIES]: lib.sh's
# console counts, on a VM of STORE.
count() { console_count "$1/$2/console.log" "$3"; }
wait_count_in() { wait_console_count "$1/$2/console.log" "$3" "$4" "${5:-240}"; }

# counts_on SRC_LOG DST_LOG PREFIX: the counts of the two console logs
# joined run on one by one from the first, none lost or repeated. Joined,
# because the guest may be paused halfway through a line: its start is in
# the source's log, its end in the destination's.
counts_on() {
	cat "$1" "$2" | grep -o "$3 [0-9]*" | awk '{ print $2 }' |
		awk 'NR > 1 && $1 != p + 1 { exit 1 } { p = $1 }'
}

# first_after SRC_LOG DST_LOG PREFIX LAST: the first count past LAST, joined.
first_after() {
	cat "$1" "$2" | grep -o "$3 [0-9]*" | awk -v l="$4" '$2 > l { print $2; exit }'
}

# receive VM ADDRESS [STORE]: nestvm vm receive in the background, its output in /tmp/recv.out.
receive() {
	rm -f /tmp/recv.out
	(NESTVM_STORE=${3:-$DST} timeout -k 10 600 ./nestvm vm receive "$1" --listen "$2" >/tmp/recv.out 2>&1
	 echo "[status $?]" >>/tmp/recv.out) &
	t=0
	while [ $t -lt 50 ] && ! grep -q '^Waiting for VM' /tmp/recv.out 2>/dev/null; do
		sleep 0.2
		t=$((t + 1))
	done
}

receive_done() {
	t=0
	while [ $t -lt 300 ] && ! grep -q '^\[status' /tmp/recv.out 2>/dev/null; do
		sleep 1
		t=$((t + 1))
	done
	cat /tmp/recv.out >>"$out"
	grep -q "^\[status $1\]" /tmp/recv.out
}

make_counter_vm() {
	rm -rf "$SRC" "$DST"
	printf '%s\n' 'i=0' 'while :; do' '	i=$((i + 1))' '	echo "count $i"' \
		'	echo "$i" | dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null' '	sleep 1' 'done' \
		>/tmp/counter-disk.sh
	sh scripts/nested-initrd /tmp/mig.img image /tmp/counter-disk.sh:e2e/counter-disk.sh || return 1
	m_expect "$1" 0 "$SRC" vm new mig --memory 256M --disk 4M --kernel image/vmlinuz --initrd /tmp/mig.img \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/counter-disk.sh"
}

# migrate_counter NAME ADDRESS: the whole round trip and its checks.
migrate_counter() {
	name=$1 addr=$2
	: >"$out"
	make_counter_vm "$name" || return
	m_expect "$name" 0 "$SRC" vm start mig || return
	wait_count_in "$SRC" mig count 4 || { fail "$name" "the guest did not count to 4"; return; }
	receive mig "$addr"
	m_expect "$name" 0 "$SRC" vm migrate mig --to "$addr" || return
	expect "$name" '^  round 0: sent' &&
	expect "$name" '^Migrated VM mig to .* in [0-9]+ ms \(downtime [0-9]+ ms' || return
	receive_done 0 || { fail "$name" "nestvm vm receive did not take the VM"; return; }
	expect "$name" '^Received VM mig; it runs here now' || return
	last=$(count "$SRC" mig count)
	m_expect "$name" 0 "$SRC" vm list || return
	expect "$name" '^mig +Off ' || return
	wait_count_in "$DST" mig count $((last + 3)) ||
		{ tail -n 5 "$DST/mig/console.log" >>"$out"; fail "$name" "the guest did not count on at the destination"; return; }
	first=$(first_after "$SRC/mig/console.log" "$DST/mig/console.log" count "$last")
	echo "source counted to $last; destination went on at $first" >>"$out"
	[ "$first" = $((last + 1)) ] && counts_on "$SRC/mig/console.log" "$DST/mig/console.log" count ||
		{ fail "$name" "the destination went on at $first after $last, or a count was lost or repeated"; return; }
	m_expect "$name" 0 "$DST" vm stop mig --force || return
	ondisk=$(head -c 16 "$DST/mig/disk0.img" | tr -dc 0-9)
	[ -n "$ondisk" ] && [ "$ondisk" -gt "$last" ] ||
		{ fail "$name" "the destination's disk holds '$ondisk', not a count past $last"; return; }
	pass "$name"
}

case_migrate_unix() {
	migrate_counter migrate_unix unix:/tmp/mig.sock
}

case_migrate_tcp() {
	ip link set lo up 2>/dev/null
	migrate_counter migrate_tcp tcp:127.0.0.1:4411
}

# The destination has a VM of that name, but another machine: it refuses,
# and the VM counts on at the source.
case_migrate_refused() {
	: >"$out"
	make_counter_vm migrate_refused || return
	m_expect migrate_refused 0 "$DST" vm new mig --memory 128M || return
	m_expect migrate_refused 0 "$SRC" vm start mig || return
	wait_count_in "$SRC" mig count 3 || { fail migrate_refused "the guest did not count"; return; }
	receive mig unix:/tmp/mig.sock
	m_expect migrate_refused 1 "$SRC" vm migrate mig --to unix:/tmp/mig.sock || return
	expect migrate_refused 'stays here, running: .*another machine' || return
	receive_done 1 || { fail migrate_refused "nestvm vm receive did not refuse"; return; }
	last=$(count "$SRC" mig count)
	wait_count_in "$SRC" mig count $((last + 2)) || { fail migrate_refused "the guest stopped counting"; return; }
	m_expect migrate_refused 0 "$SRC" vm stop mig --force && pass migrate_refused
}

# NestedHost migrates while its NestedVM counts; NestedVM goes on at the destination.
case_migrate_nested() {
	rm -rf "$SRC" "$DST"
	: >"$out"
	printf 'sh /e2e/counter.sh nestedvm-count\n' >/tmp/counter-nested.sh &&
	sh scripts/nested-initrd /tmp/counter.img image tests/e2e/counter.sh:e2e/counter.sh \
		/tmp/counter-nested.sh:e2e/counter-nested.sh &&
	sh scripts/nested-initrd /tmp/nh.img image tests/e2e/counter-host.sh:e2e/counter-host.sh \
		/tmp/counter.img:image/counter.img || { fail migrate_nested "nested-initrd failed"; return; }
	m_expect migrate_nested 0 "$SRC" vm new NestedHost --memory 768M --nested --kernel image/vmlinuz \
		--initrd /tmp/nh.img --cmdline "console=ttyS0 panic=-1 quiet loglevel=5 nestvm.script=/e2e/counter-host.sh" ||
		return
	m_expect migrate_nested 0 "$SRC" vm start NestedHost || return
	wait_count_in "$SRC" NestedHost nestedvm-count 4 ||
		{ tail -n 15 "$SRC/NestedHost/console.log" >>"$out"; fail migrate_nested "NestedVM did not count to 4"; return; }
	receive NestedHost unix:/tmp/mig.sock
	m_expect migrate_nested 0 "$SRC" vm migrate NestedHost --to unix:/tmp/mig.sock || return
	receive_done 0 || { fail migrate_nested "nestvm vm receive did not take NestedHost"; return; }
	last=$(count "$SRC" NestedHost nestedvm-count)
	wait_count_in "$DST" NestedHost nestedvm-count $((last + 3)) ||
		{ tail -n 10 "$DST/NestedHost/console.log" >>"$out"; fail migrate_nested "NestedVM did not count on at the destination"; return; }
	first=$(first_after "$SRC/NestedHost/console.log" "$DST/NestedHost/console.log" nestedvm-count "$last")
	echo "NestedVM counted to $last at the source; went on at $first at the destination" >>"$out"
	[ "$first" = $((last + 1)) ] &&
	counts_on "$SRC/NestedHost/console.log" "$DST/NestedHost/console.log" nestedvm-count ||
		{ fail migrate_nested "NestedVM went on at $first after $last, or a count was lost or repeated"; return; }
	if grep -iE 'WARNING|kvm.*(error|fail)|BUG:' "$DST/NestedHost/console.log" >/tmp/warn; then
		cat /tmp/warn >>"$out"
		fail migrate_nested "NestedHost's kernel warned after the migration"
		return
	fi
	m_expect migrate_nested 0 "$DST" vm stop NestedHost --force && pass migrate_nested
}

e2e_case case_migrate_unix
e2e_case case_migrate_tcp
e2e_case case_migrate_refused
e2e_case case_migrate_nested
unset NESTVM_STORE

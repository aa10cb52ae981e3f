# Sourced by tests/e2e/cases.sh inside the simulated host: saving a VM of
# the store and starting it again (Hyper-V's Save-VM and Start-VM). A guest
# counting on its console goes on from the next number after the resume; a
# NestedHost whose NestedVM counts is saved while NestedVM runs, and
# NestedVM goes on from its next number, with no KVM warning in NestedHost,
# and again from a checkpoint of NestedHost taken while NestedVM ran;
# a checkpoint brings memory and disk back together.
export NESTVM_STORE=/tmp/snap-store


# last_count VM PREFIX; wait_count VM PREFIX N [TRIES]: lib.sh's console
# counts, on a VM of the store.
last_count() { console_count "$NESTVM_STORE/$1/console.log" "$2"; }
wait_count() { wait_console_count "$NESTVM_STORE/$1/console.log" "$2" "$3" "${4:-240}"; }

# resumed_ok NAME VM PREFIX LINES LAST: after the resume (console lines past
# LINES), the first count is LAST + 1 and none is below it.
resumed_ok() {
	tail -n +"$(($4 + 1))" "$NESTVM_STORE/$2/console.log" | grep -o "$3 [0-9]*" | awk '{print $2}' >/tmp/after
	first=$(head -n 1 /tmp/after)
	low=$(sort -n /tmp/after | head -n 1)
	echo "after the resume: first $3 $first (saved at $5)" >>"$out"
	[ "$first" = $(($5 + 1)) ] && [ "$low" = "$first" ] ||
		{ fail "$1" "after the resume the count went $first (lowest $low), not on from $5"; return 1; }
}

case_save_start() {
	rm -rf "$NESTVM_STORE"
	: >"$out"
	sh scripts/nested-initrd /tmp/counter.img image tests/e2e/counter.sh:e2e/counter.sh ||
		{ fail save_start "nested-initrd failed"; return; }
	nv_expect save_start 0 vm new counter --memory 256M --kernel image/vmlinuz --initrd /tmp/counter.img \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/counter.sh" || return
	nv_expect save_start 1 vm save counter || return
	expect save_start 'VM counter is Off; only a running or paused VM is saved' || return
	nv_expect save_start 0 vm start counter || return
	wait_count counter count 5 || { fail save_start "the guest did not count to 5"; return; }
	nv_expect save_start 0 vm save counter || return
	expect save_start '^Saved VM counter \([0-9.]+ MiB in [0-9.]+ s\)' || return
	last=$(last_count counter count)
	lines=$(wc -l <"$NESTVM_STORE/counter/console.log")
	nv_expect save_start 0 vm list || return
	expect save_start '^counter +Saved ' || return
	# Settings that need the VM off are refused while it is Saved.
	nv_expect save_start 1 vm set counter --memory 512M || return
	expect save_start 'needs VM counter to be Off; it is Saved' || return
	nv_expect save_start 0 vm start counter || return
	expect save_start '^Resumed VM counter' || return
	wait_count counter count $((last + 3)) || { fail save_start "the guest did not count on after the resume"; return; }
	resumed_ok save_start counter count "$lines" "$last" || return
	[ ! -e "$NESTVM_STORE/counter/saved.state" ] || { fail save_start "the saved state outlived the resume"; return; }
	nv_expect save_start 0 vm stop counter --force || return
	# Saved again, then thrown away: the next start boots anew.
	nv_expect save_start 0 vm start counter || return
	wait_count counter count 2 30 || true
	nv_expect save_start 0 vm save counter || return
	nv_expect save_start 2 vm discard-saved counter || return
	nv_expect save_start 0 vm discard-saved counter --yes || return
	nv_expect save_start 0 vm list || return
	expect save_start '^counter +Off ' && pass save_start
}

case_save_nested() {
	rm -rf "$NESTVM_STORE"
	: >"$out"
	printf 'sh /e2e/counter.sh nestedvm-count\n' >/tmp/counter-nested.sh &&
	sh scripts/nested-initrd /tmp/counter.img image tests/e2e/counter.sh:e2e/counter.sh \
		/tmp/counter-nested.sh:e2e/counter-nested.sh &&
	sh scripts/nested-initrd /tmp/nh.img image tests/e2e/counter-host.sh:e2e/counter-host.sh \
		/tmp/counter.img:image/counter.img || { fail save_nested "nested-initrd failed"; return; }
	nv_expect save_nested 0 vm new NestedHost --memory 768M --nested --kernel image/vmlinuz --initrd /tmp/nh.img \
		--cmdline "console=ttyS0 panic=-1 quiet loglevel=5 nestvm.script=/e2e/counter-host.sh" || return
	nv_expect save_nested 0 vm start NestedHost || return
	wait_count NestedHost nestedvm-count 5 || { fail save_nested "NestedVM did not count to 5"; return; }
	nv_expect save_nested 0 vm save NestedHost || return
	last=$(last_count NestedHost nestedvm-count)
	lines=$(wc -l <"$NESTVM_STORE/NestedHost/console.log")
	nv_expect save_nested 0 vm start NestedHost || return
	wait_count NestedHost nestedvm-count $((last + 3)) ||
		{ tail -n 20 "$NESTVM_STORE/NestedHost/console.log" >>"$out";
		  fail save_nested "NestedVM did not count on after NestedHost's resume"; return; }
	resumed_ok save_nested NestedHost nestedvm-count "$lines" "$last" || return
	if tail -n +"$((lines + 1))" "$NESTVM_STORE/NestedHost/console.log" | grep -iE 'WARNING|kvm.*(error|fail)|BUG:' >/tmp/warn; then
		cat /tmp/warn >>"$out"
		fail save_nested "NestedHost's kernel warned after the resume"
		return
	fi
	# A checkpoint of NestedHost while NestedVM counts; NestedVM counts on,
	# NestedHost is turned off; restored and started, NestedVM goes on from
	# the checkpoint's count.
	before=$(last_count NestedHost nestedvm-count)
	nv_expect save_nested 0 vm checkpoint NestedHost c1 || return
	at=$(last_count NestedHost nestedvm-count)
	wait_count NestedHost nestedvm-count $((at + 4)) ||
		{ fail save_nested "NestedVM did not count on after the checkpoint"; return; }
	nv_expect save_nested 0 vm stop NestedHost --force &&
	nv_expect save_nested 0 vm checkpoint restore NestedHost c1 || return
	expect save_nested 'is back at checkpoint c1: Saved there' || return
	lines=$(wc -l <"$NESTVM_STORE/NestedHost/console.log")
	nv_expect save_nested 0 vm start NestedHost || return
	t=0 first=
	while [ $t -lt 120 ] && [ -z "$first" ]; do
		first=$(tail -n +"$((lines + 1))" "$NESTVM_STORE/NestedHost/console.log" | grep -o 'nestedvm-count [0-9]*' |
			head -n 1 | cut -d' ' -f2)
		[ -n "$first" ] || sleep 1
		t=$((t + 1))
	done
	# The checkpoint was taken between counts $before and $at.
	echo "checkpoint between NestedVM's counts $before and $at, restored at $first" >>"$out"
	[ -n "$first" ] && [ "$first" -ge $((before + 1)) ] && [ "$first" -le $((at + 1)) ] ||
		{ fail save_nested "after restoring the checkpoint NestedVM went on at $first, not from $before-$at"; return; }
	nv_expect save_nested 0 vm stop NestedHost --force && pass save_nested
}

# A checkpoint of a running VM that counts on its console and on its disk;
# after it has counted on and stopped, restoring the checkpoint brings back
# the disk as it was and the count from there.
case_checkpoint() {
	rm -rf "$NESTVM_STORE"
	: >"$out"
	printf '%s\n' 'i=0' 'while :; do' '	i=$((i + 1))' '	echo "count $i"' \
		'	echo "$i" | dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null' '	sleep 1' 'done' \
		>/tmp/counter-disk.sh
	sh scripts/nested-initrd /tmp/ck.img image /tmp/counter-disk.sh:e2e/counter-disk.sh ||
		{ fail checkpoint "nested-initrd failed"; return; }
	nv_expect checkpoint 0 vm new ck --memory 256M --disk 1M --kernel image/vmlinuz --initrd /tmp/ck.img \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/counter-disk.sh" || return
	nv_expect checkpoint 0 vm checkpoint ck before || return
	expect checkpoint '^Checkpoint before of VM ck \(Off\)' || return
	nv_expect checkpoint 0 vm start ck || return
	wait_count ck count 4 || { fail checkpoint "the guest did not count to 4"; return; }
	nv_expect checkpoint 0 vm checkpoint ck first || return
	expect checkpoint '^Checkpoint first of VM ck \(Running\)' || return
	at=$(head -c 16 "$NESTVM_STORE/ck/checkpoints/first/disk0.img" | tr -dc 0-9)
	wait_count ck count $((at + 4)) || { fail checkpoint "the guest did not count on after the checkpoint"; return; }
	nv_expect checkpoint 0 vm stop ck --force || return
	reached=$(last_count ck count)
	nv_expect checkpoint 0 vm checkpoint list ck || return
	expect checkpoint '^before +[-0-9: ]+ Off ' &&
	expect checkpoint '^first +[-0-9: ]+ Running +[0-9.]+M ' || return
	nv_expect checkpoint 2 vm checkpoint restore ck nosuch || return
	nv_expect checkpoint 0 vm checkpoint restore ck first || return
	expect checkpoint 'is back at checkpoint first: Saved there' || return
	cmp -s "$NESTVM_STORE/ck/disk0.img" "$NESTVM_STORE/ck/checkpoints/first/disk0.img" ||
		{ fail checkpoint "the disk is not as it was at the checkpoint"; return; }
	lines=$(wc -l <"$NESTVM_STORE/ck/console.log")
	nv_expect checkpoint 0 vm start ck || return
	expect checkpoint '^Resumed VM ck' || return
	t=0 first=
	while [ $t -lt 60 ] && [ -z "$first" ]; do
		sleep 1
		t=$((t + 1))
		first=$(tail -n +"$((lines + 1))" "$NESTVM_STORE/ck/console.log" | grep -o 'count [0-9]*' |
			head -n 1 | cut -d' ' -f2)
	done
	echo "checkpoint at disk count $at, stopped at $reached, resumed at $first" >>"$out"
	[ -n "$first" ] && [ "$first" -ge $((at + 1)) ] && [ "$first" -le $((at + 2)) ] ||
		{ fail checkpoint "after restoring the count went on at $first, not from the checkpoint ($at)"; return; }
	nv_expect checkpoint 0 vm stop ck --force || return
	# Back to before it ever ran: Off, the disk empty again.
	nv_expect checkpoint 0 vm checkpoint restore ck before || return
	expect checkpoint 'is back at checkpoint before: Off' || return
	[ -z "$(head -c 16 "$NESTVM_STORE/ck/disk0.img" | tr -d '\000')" ] ||
		{ fail checkpoint "restoring 'before' left data on the disk"; return; }
	nv_expect checkpoint 0 vm checkpoint remove ck first &&
	nv_expect checkpoint 0 vm checkpoint list ck --json || return
	sed -n '/checkpoint list ck --json/,$p' "$out" | grep -q '"name": "first"' &&
		{ fail checkpoint "the removed checkpoint is still listed"; return; }
	pass checkpoint
}

# The nestvm inside a NestedHost saves its own NestedVM and starts it again
# (tests/e2e/save-l2-host.sh): saving works at every level.
case_save_level2() {
	: >"$out"
	sh scripts/nested-initrd /tmp/counter.img image tests/e2e/counter.sh:e2e/counter.sh &&
	sh scripts/nested-initrd /tmp/l2h.img image tests/e2e/save-l2-host.sh:e2e/save-l2-host.sh \
		/tmp/counter.img:image/counter.img || { fail save_level2 "nested-initrd failed"; return; }
	BOOT_BOUND=600
	boot save_level2 0 run --nested --kernel $K --initrd /tmp/l2h.img --memory 768M \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/save-l2-host.sh"
	r=$?
	unset BOOT_BOUND
	[ $r = 0 ] || return
	expect save_level2 'save-l2: nvm +Saved' &&
	expect save_level2 'save-l2: OK' && pass save_level2
}

e2e_case case_save_start
e2e_case case_save_nested
e2e_case case_checkpoint
e2e_case case_save_level2

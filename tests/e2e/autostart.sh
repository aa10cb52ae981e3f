# Sourced by tests/e2e/cases.sh inside the simulated host: what
# nestvm.service does at the host's boot and shutdown, through the commands
# its unit runs (nestvm autostart start / stop). A VM marked --autostart on
# comes up with its switch; at shutdown it is saved, and at the next boot it
# resumes, counting on; a VM not marked stays nv it was.
export NESTVM_STORE=/tmp/autostart-store


# state VM: its State nv vm list shows it.
state() { ./nestvm vm list 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }

count_of() { console_count "$NESTVM_STORE/$1/console.log" count; }

case_autostart() {
	rm -rf "$NESTVM_STORE"
	: >"$out"
	sh scripts/nested-initrd /tmp/as.img image tests/e2e/counter.sh:e2e/counter.sh ||
		{ fail autostart "nested-initrd failed"; return; }
	nv_expect autostart 0 switch new lab &&
	nv_expect autostart 0 vm new marked --memory 192M --nic lab --kernel image/vmlinuz --initrd /tmp/as.img \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/counter.sh" &&
	nv_expect autostart 0 vm new unmarked --memory 192M --kernel image/vmlinuz --initrd /tmp/as.img \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/counter.sh" &&
	nv_expect autostart 0 vm set marked --autostart on &&
	nv_expect autostart 0 switch stop lab || return
	# The host boots.
	nv_expect autostart 0 autostart start || return
	[ "$(state marked)" = Running ] && [ "$(state unmarked)" = Off ] ||
		{ fail autostart "after autostart start: marked is $(state marked), unmarked $(state unmarked)"; return; }
	t=0
	while [ $t -lt 120 ]; do
		c=$(count_of marked)
		[ -n "$c" ] && [ "$c" -ge 3 ] && break
		sleep 1
		t=$((t + 1))
	done
	at=$(count_of marked)
	[ -n "$at" ] && [ "$at" -ge 3 ] || { fail autostart "the marked VM did not count to 3"; return; }
	# The host shuts down: the running VM is saved, not lost.
	nv_expect autostart 0 autostart stop --timeout 60 || return
	[ "$(state marked)" = Saved ] || { fail autostart "after autostart stop: marked is $(state marked)"; return; }
	at=$(count_of marked)
	# And boots again: the VM resumes where it was.
	nv_expect autostart 0 autostart start || return
	[ "$(state marked)" = Running ] || { fail autostart "after the second start: marked is $(state marked)"; return; }
	t=0
	while [ $t -lt 60 ] && [ "$(count_of marked)" -le "$at" ]; do sleep 1; t=$((t + 1)); done
	grep -qw "count $((at + 1))" "$NESTVM_STORE/marked/console.log" ||
		{ fail autostart "the resumed VM did not count on from $at"; return; }
	echo "counted to $at before the shutdown, on after the boot" >>"$out"
	nv_expect autostart 0 vm stop marked --force &&
	nv_expect autostart 0 switch remove lab --force && pass autostart
}

e2e_case case_autostart

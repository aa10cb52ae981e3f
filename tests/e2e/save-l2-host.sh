# Runs inside NestedHost for tests/e2e/snapshot.sh (case_save_level2): the
# nestvm inside NestedHost saves its own NestedVM, a VM of its store that
# counts on its console, and starts it again; the count goes on from the
# next number. Each outcome is a "save-l2:" line on NestedHost's console.
export NESTVM_STORE=/tmp/l2-store
log=$NESTVM_STORE/nvm/console.log
last() { grep -o 'count [0-9]*' "$log" 2>/dev/null | awk '{ print $2 }' | sort -n | tail -n 1; }
wait_to() {
	t=0
	while [ $t -lt 300 ]; do
		c=$(last)
		[ -n "$c" ] && [ "$c" -ge "$1" ] && return 0
		sleep 1
		t=$((t + 1))
	done
	return 1
}
nestvm vm new nvm --memory 160M --kernel /image/vmlinuz --initrd /image/counter.img \
	--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/counter.sh" &&
nestvm vm start nvm && wait_to 3 || { echo "save-l2: FAIL NestedVM did not count to 3"; exit 1; }
nestvm vm save nvm || { echo "save-l2: FAIL vm save"; exit 1; }
at=$(last)
lines=$(wc -l <"$log")
nestvm vm list | grep '^nvm ' | sed 's/^/save-l2: /'
nestvm vm start nvm && wait_to $((at + 3)) ||
	{ echo "save-l2: FAIL NestedVM did not count on after the resume"; exit 1; }
first=$(tail -n +$((lines + 1)) "$log" | grep -o 'count [0-9]*' | head -n 1 | cut -d' ' -f2)
echo "save-l2: saved at $at, resumed at $first"
if [ "$first" = $((at + 1)) ]; then echo "save-l2: OK"; else echo "save-l2: FAIL resumed at $first, not $((at + 1))"; fi
nestvm vm stop nvm --force >/dev/null

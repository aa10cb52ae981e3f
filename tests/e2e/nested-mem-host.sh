# Runs inside NestedHost for tests/e2e/nested-memory.sh: NestedHost has
# dynamic memory. It idles, starts NestedVM, which takes memory, waits for it
# to end, then idles again; the outer VMM's balloon follows.
echo "nested-mem-host: idle"
sleep 12
echo "nested-mem-host: starting NestedVM"
# What NestedHost has while NestedVM runs, every 15 s.
(while :; do
	echo "nested-mem-host: $(awk '/^MemTotal|^MemFree|^MemAvailable/ { printf "%s%d ", $1, $2 / 1024 }' /proc/meminfo)"
	sleep 15
done) &
mon=$!
nestvm run --kernel /image/vmlinuz --initrd /image/mem.img --memory 512M \
	--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/memory-guest.sh" >/tmp/nvm.out 2>&1
rc=$?
kill $mon
sed 's/^/NestedVM| /' /tmp/nvm.out
echo "nested-mem-host: NestedVM exit=$rc"
sleep 30
echo "nested-mem-host: done"

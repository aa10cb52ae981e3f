# Runs inside NestedHost for tests/e2e/snapshot.sh: NestedVM counts on its
# console, which is NestedHost's, each line "nestedvm-count N"; NestedHost's
# own KVM warnings would show on it too (loglevel 5).
echo "counter-host: starting NestedVM"
nestvm run --kernel /image/vmlinuz --initrd /image/counter.img --memory 160M \
	--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/counter-nested.sh"
echo "counter-host: NestedVM exit=$?"

# Runs inside NestedHost for the nested demo: its own status, then NestedVM.
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
echo "=== inside NestedHost, $(ms) ms after its kernel started: nestvm status"
nestvm status --name NestedVM --memory 256M
echo
echo "=== level 2: NestedVM (nestvm run --memory 256M)"
t0=$(ms)
nestvm run --kernel /image/vmlinuz --initrd /image/initrd.img --memory 256M \
	--cmdline "console=ttyS0 panic=-1 quiet"
rc=$?
echo "=== NestedVM ran $(( $(ms) - t0 )) ms from start to poweroff; nestvm exited $rc"

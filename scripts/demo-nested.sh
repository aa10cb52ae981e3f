# The nested demo, run inside a host (the simulated host, or this machine when
# its KVM runs guest kernels at hardware speed) from /nestvm or the build
# directory: the host's status, NestedHost with the extensions, its own
# status, NestedVM inside it, and how long each level took.
set -u
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

echo "=== level 0: this host"
./nestvm status
echo
sh scripts/nested-initrd /tmp/demo-host-initrd.img image scripts/demo-guest.sh:demo/guest.sh || exit 1
echo "=== level 1: NestedHost (nestvm run --nested --memory 768M --cpus 2)"
t0=$(ms)
./nestvm run --nested --kernel image/vmlinuz --initrd /tmp/demo-host-initrd.img --memory 768M --cpus 2 \
	--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/demo/guest.sh"
rc=$?
echo "=== NestedHost ran $(( $(ms) - t0 )) ms from start to poweroff; nestvm exited $rc"
exit $rc

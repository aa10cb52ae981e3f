# Runs inside NestedHost for tests/e2e/nested-net.sh: a nestvm switch uplinked
# to NestedHost's own adapter, and NestedVM on it pinging a VM on the outer
# switch. Whether the ping passes is up to the outer switch's spoofing rule
# for NestedHost's adapter.
# Each step says when it began, in seconds since NestedHost booted, and
# NestedVM's console shows as it comes: a slow run shows where it went.
at() { echo "nested-net: $(cut -d' ' -f1 /proc/uptime) s: $*"; }
ip link set eth0 up
at "switch"
nestvm switch new inner --uplink-if eth0 || echo "nested-net: switch failed"
at "NestedVM"
{
	nestvm run --kernel /image/vmlinuz --initrd /image/nvm-initrd.img --memory 256M \
		--nic switch=inner,mac=52:54:00:00:00:03 \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/net-guest.sh net.role=client" 2>&1
	echo $? >/tmp/nvm.rc
} | sed 's/^/NestedVM| /'
rc=$(cat /tmp/nvm.rc)
at "NestedVM exit=$rc"
echo "nested-net: NestedVM exit=$rc"

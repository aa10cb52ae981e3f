# Runs inside a guest for tests/e2e/net.sh: net.role= on the kernel command
# line picks its part. Addresses are from 192.0.2.0/24 (TEST-NET-1) on a
# switch inside the simulated host, which has no network of its own.
role=$(sed -n 's/.*net\.role=\([a-z]*\).*/\1/p' /proc/cmdline)
ip link set eth0 up
case $role in
server)
	ip addr add 192.0.2.1/24 dev eth0
	echo "net-guest: server up"
	sleep 300
	;;
client)
	ip addr add 192.0.2.2/24 dev eth0
	if ping -c 3 -W 3 192.0.2.1 >/dev/null 2>&1; then echo "net-guest: ping ok"; else echo "net-guest: ping failed"; fi
	# Now pretend to be another machine: a spoofed source address.
	ip link set eth0 down
	ip link set eth0 address 52:54:00:99:99:99
	ip link set eth0 up
	if ping -c 2 -W 2 192.0.2.1 >/dev/null 2>&1; then echo "net-guest: spoofed ping ok"; else echo "net-guest: spoofed ping failed"; fi
	;;
esac

# Runs inside a guest for tests/e2e/net.sh: net.role= on the kernel command
# line picks its part. Addresses are from 192.0.2.0/24 (TEST-NET-1) on a
# switch inside the simulated host, which has no network of its own.
role=$(sed -n 's/.*net\.role=\([a-z]*\).*/\1/p' /proc/cmdline)
ip link set eth0 up
case $role in
server)
	ip addr add 192.0.2.1/24 dev eth0
	echo "net-guest: features $(cat /sys/class/net/eth0/device/features)"
	# 1 MiB to serve over TCP, from busybox httpd, which writes it in
	# large pieces (sendfile), so that TCP builds TSO frames.
	mkdir -p /www
	dd if=/dev/urandom of=/www/data bs=64k count=16 2>/dev/null
	echo "net-guest: tcp served $(md5sum /www/data | cut -d' ' -f1)"
	httpd -p 80 -h /www
	echo "net-guest: server up"
	sleep 300
	;;
client)
	ip addr add 192.0.2.2/24 dev eth0
	if ping -c 3 -W 3 192.0.2.1 >/dev/null 2>&1; then echo "net-guest: ping ok"; else echo "net-guest: ping failed"; fi
	if [ "$(sed -n 's/.*net\.tcp=\([0-9]*\).*/\1/p' /proc/cmdline)" = 1 ]; then
		echo "net-guest: features $(cat /sys/class/net/eth0/device/features)"
		p0=$(cat /sys/class/net/eth0/statistics/rx_packets)
		b0=$(cat /sys/class/net/eth0/statistics/rx_bytes)
		wget -q -O /tmp/data http://192.0.2.1/data || echo "net-guest: wget failed"
		echo "net-guest: tcp got $(md5sum /tmp/data | cut -d' ' -f1)" \
			"rx_packets=$(($(cat /sys/class/net/eth0/statistics/rx_packets) - p0))" \
			"rx_bytes=$(($(cat /sys/class/net/eth0/statistics/rx_bytes) - b0))"
	fi
	# Now pretend to be another machine: a spoofed source address.
	ip link set eth0 down
	ip link set eth0 address 52:54:00:99:99:99
	ip link set eth0 up
	if ping -c 2 -W 2 192.0.2.1 >/dev/null 2>&1; then echo "net-guest: spoofed ping ok"; else echo "net-guest: spoofed ping failed"; fi
	;;
esac

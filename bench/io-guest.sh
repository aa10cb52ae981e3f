# Runs inside a guest for bench/io (busybox only, plus /bench/io-rand), started
# through nestvm.script=/bench/io-guest.sh. Its part comes from the kernel
# command line:
#   io.role=disk    sequential write then read of io.mib MiB on /dev/vda with
#                   dd bs=1M and O_DIRECT, then io.rops random 4 KiB reads and
#                   writes (io-rand, O_DIRECT, queue depth 1)
#   io.role=server  192.0.2.1 on eth0, one `nc -l -p 5001 >/dev/null`, then waits
#                   (the host kills this VM when the client is done)
#   io.role=client  192.0.2.2 on eth0: sends io.nmib MiB to the server through
#                   nc (timed from the start of dd to nc's exit, which comes
#                   after the server has read everything and closed), then
#                   io.pings pings 0.2 s apart
# Results are lines "io-guest: result NAME=VALUE"; a failure prints
# "io-guest: FAIL ..." . Times come from /proc/uptime (10 ms steps), so
# every timed step is sized to last seconds.
# Addresses are from 192.0.2.0/24 (TEST-NET-1) on a network that exists only
# inside the simulated host.

arg() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" /proc/cmdline; }
now() { cut -d' ' -f1 /proc/uptime; }
fail() { echo "io-guest: FAIL $*"; exit 1; }
# rate MIB T0 T1: MiB/s.
rate() { awk -v m="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) d = 0.005; printf "%.2f", m / d }'; }

role=$(arg io.role)
echo "io-guest: role $role clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"

case $role in
disk)
	mib=$(arg io.mib) rops=$(arg io.rops)
	dev=/dev/vda
	[ -b $dev ] || fail "$dev is missing"
	t0=$(now)
	dd if=/dev/zero of=$dev bs=1M count="$mib" oflag=direct conv=fsync 2>/tmp/dd.err ||
		fail "dd write: $(cat /tmp/dd.err)"
	t1=$(now)
	echo "io-guest: result seq_write_mib_s=$(rate "$mib" "$t0" "$t1") secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
	t0=$(now)
	dd if=$dev of=/dev/null bs=1M count="$mib" iflag=direct 2>/tmp/dd.err ||
		fail "dd read: $(cat /tmp/dd.err)"
	t1=$(now)
	echo "io-guest: result seq_read_mib_s=$(rate "$mib" "$t0" "$t1") secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
	for op in read write; do
		out=$(/bench/io-rand $dev $op "$rops" 2>&1) || fail "io-rand $op: $out"
		iops=$(echo "$out" | sed -n 's/.* iops=\([0-9.]*\).*/\1/p')
		secs=$(echo "$out" | sed -n 's/.* secs=\([0-9.]*\).*/\1/p')
		[ -n "$iops" ] || fail "io-rand $op said: $out"
		echo "io-guest: result rand_${op}_iops=$iops secs=$secs"
	done
	;;
server)
	ip link set eth0 up || fail "no eth0"
	# nc's standard input must stay open: at its end nc half-closes the
	# connection, and the client's nc quits as soon as it sees that.
	sleep 100000 | nc -l -p 5001 >/dev/null &
	ip addr add 192.0.2.1/24 dev eth0
	echo "io-guest: server up"
	sleep 600
	;;
client)
	nmib=$(arg io.nmib) pings=$(arg io.pings)
	ip link set eth0 up || fail "no eth0"
	ip addr add 192.0.2.2/24 dev eth0
	i=0
	until ping -c 1 -W 1 192.0.2.1 >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 60 ] || fail "192.0.2.1 does not answer pings"
	done
	ping -c 3 -i 0.2 192.0.2.1 >/dev/null 2>&1
	t0=$(now)
	dd if=/dev/zero bs=64k count=$((nmib * 16)) 2>/dev/null | nc 192.0.2.1 5001 ||
		fail "nc to 192.0.2.1:5001 failed"
	t1=$(now)
	echo "io-guest: result tcp_mib_s=$(rate "$nmib" "$t0" "$t1") secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
	# Segments TCP sent again (lost frames show here) and the adapter's drops.
	retrans=$(awk '$1 == "Tcp:" && $13 ~ /^[0-9]+$/ { print $13 }' /proc/net/snmp)
	echo "io-guest: result tcp_retrans=${retrans:-?} eth0_dropped_rx=$(cat /sys/class/net/eth0/statistics/rx_dropped) eth0_dropped_tx=$(cat /sys/class/net/eth0/statistics/tx_dropped)"
	ping -c "$pings" -i 0.2 -W 5 192.0.2.1 >/tmp/ping.out 2>&1
	avg=$(sed -n 's|^round-trip min/avg/max = [0-9.]*/\([0-9.]*\)/.*|\1|p' /tmp/ping.out)
	[ -n "$avg" ] || fail "ping: $(tail -n 2 /tmp/ping.out | tr '\n' ' ')"
	echo "io-guest: result ping_avg_ms=$avg $(grep 'packets transmitted' /tmp/ping.out)"
	;;
*)
	fail "unknown io.role='$role' (disk, server, client)"
	;;
esac
echo "io-guest: done"

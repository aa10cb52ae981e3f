# Runs inside a guest for bench/io (busybox only, plus /bench/io-rand), started
# through nestvm.script=/bench/io-guest.sh. Its part comes from the kernel
# command line:
#   io.role=disk    sequential write then read of io.mib MiB on /dev/vda with
#                   dd bs=1M and O_DIRECT, then io.rops random 4 KiB reads and
#                   writes (io-rand, O_DIRECT, queue depth 1)
#   io.role=server  192.0.2.1 on eth0: `nc -l >/dev/null` on port 5001, and
#                   busybox httpd on port 80 serving sparse files of zeros on
#                   a tmpfs (they take no memory), one of io.nmib MiB times
#                   each power of two up to io.tmax MiB; then waits (the host
#                   kills this VM when the client is done)
#   io.role=client  192.0.2.2 on eth0: sends io.nmib MiB to the server's port
#                   5001 through nc (timed from the start of dd to nc's exit,
#                   which comes after the server has read everything and
#                   closed; busybox nc writes 1 KiB at a time, so this
#                   measures the cost of many small segments); then, unless
#                   io.tsecs=0, bulk TCP: wget fetches a file from the
#                   server's httpd, which sends it with sendfile, and reads
#                   it 64 KiB at a time (large segments, where checksum and
#                   TSO offloads tell): a warm-up fetch of io.nmib MiB,
#                   untimed, then the largest file that fits io.tsecs at
#                   the warm-up's rate (as iperf -t would), timed; then
#                   io.pings pings 0.2 s apart
# Both network roles first print the virtio-net features their driver
# negotiated ("io-guest: offloads=..."; bits 0 CSUM, 1 GUEST_CSUM, 7
# GUEST_TSO4, 11 HOST_TSO4, 15 MRG_RXBUF), and the client the bytes per frame
# eth0 sent during the nc transfer and received during the bulk one (above
# 1514: segments larger than the MTU crossed the virtual network, which is
# TSO and GSO at work).
# Results are lines "io-guest: result NAME=VALUE", each measurement's begun by
# "io-guest: begin NAME" (the host times its own CPU in between); a failure prints
# "io-guest: FAIL ..." . Times come from /proc/uptime (10 ms steps), so
# every timed step is sized to last seconds.
# Addresses are from 192.0.2.0/24 (TEST-NET-1) on a network that exists only
# inside the simulated host.

arg() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" /proc/cmdline; }
now() { cut -d' ' -f1 /proc/uptime; }
fail() { echo "io-guest: FAIL $*"; exit 1; }
# begin NAME: a measurement starts; its "result NAME=" line ends it (the host
# times what its CPU did in between).
begin() { echo "io-guest: begin $1"; }
# rate MIB T0 T1: MiB/s.
rate() { awk -v m="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) d = 0.005; printf "%.2f", m / d }'; }
stat_of() { cat "/sys/class/net/eth0/statistics/$1"; }

# offloads: the offload bits of the features eth0's virtio driver negotiated
# (sysfs shows them as a string of 0s and 1s, bit 0 first).
offloads() {
	feat=$(cat /sys/class/net/eth0/device/features 2>/dev/null) ||
		fail "no /sys/class/net/eth0/device/features (is eth0 virtio-net?)"
	list=
	for nb in 0:csum 1:guest_csum 7:guest_tso4 11:host_tso4 15:mrg_rxbuf; do
		b=$(echo "$feat" | cut -c$((${nb%%:*} + 1)))
		[ "$b" != 1 ] || list=$list,${nb#*:}
	done
	list=${list#,}
	echo "io-guest: offloads=${list:-none} features=$feat"
}

# send MIB: sends MIB MiB to the server's port 5001 through nc; sets $t0, $t1
# and $frame (bytes per frame eth0 sent meanwhile, headers included).
send() {
	p0=$(stat_of tx_packets) b0=$(stat_of tx_bytes)
	t0=$(now)
	dd if=/dev/zero bs=64k count=$(($1 * 16)) 2>/dev/null | nc 192.0.2.1 5001 ||
		fail "nc to 192.0.2.1:5001 failed"
	t1=$(now)
	p1=$(stat_of tx_packets) b1=$(stat_of tx_bytes)
	frame=$(awk -v b=$((b1 - b0)) -v p=$((p1 - p0)) 'BEGIN { if (p > 0) printf "%d", b / p; else print 0 }')
}
# fetch MIB: gets the server's MIB-MiB file over HTTP; sets $t0, $t1 and
# $frame (bytes per frame eth0 received meanwhile).
fetch() {
	p0=$(stat_of rx_packets) b0=$(stat_of rx_bytes)
	t0=$(now)
	wget -q -O /dev/null "http://192.0.2.1/$1" 2>/tmp/wget.err ||
		fail "wget http://192.0.2.1/$1 failed: $(cat /tmp/wget.err)"
	t1=$(now)
	p1=$(stat_of rx_packets) b1=$(stat_of rx_bytes)
	frame=$(awk -v b=$((b1 - b0)) -v p=$((p1 - p0)) 'BEGIN { if (p > 0) printf "%d", b / p; else print 0 }')
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }

role=$(arg io.role)
echo "io-guest: role $role clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"

case $role in
disk)
	mib=$(arg io.mib) rops=$(arg io.rops)
	dev=/dev/vda
	[ -b $dev ] || fail "$dev is missing"
	begin seq_write_mib_s
	t0=$(now)
	dd if=/dev/zero of=$dev bs=1M count="$mib" oflag=direct conv=fsync 2>/tmp/dd.err ||
		fail "dd write: $(cat /tmp/dd.err)"
	t1=$(now)
	echo "io-guest: result seq_write_mib_s=$(rate "$mib" "$t0" "$t1") secs=$(secs "$t0" "$t1")"
	begin seq_read_mib_s
	t0=$(now)
	dd if=$dev of=/dev/null bs=1M count="$mib" iflag=direct 2>/tmp/dd.err ||
		fail "dd read: $(cat /tmp/dd.err)"
	t1=$(now)
	echo "io-guest: result seq_read_mib_s=$(rate "$mib" "$t0" "$t1") secs=$(secs "$t0" "$t1")"
	for op in read write; do
		begin "rand_${op}_iops"
		out=$(/bench/io-rand $dev $op "$rops" 2>&1) || fail "io-rand $op: $out"
		iops=$(echo "$out" | sed -n 's/.* iops=\([0-9.]*\).*/\1/p')
		secs=$(echo "$out" | sed -n 's/.* secs=\([0-9.]*\).*/\1/p')
		[ -n "$iops" ] || fail "io-rand $op said: $out"
		echo "io-guest: result rand_${op}_iops=$iops secs=$secs"
	done
	;;
server)
	nmib=$(arg io.nmib) tmax=$(arg io.tmax)
	ip link set eth0 up || fail "no eth0"
	offloads
	# nc's standard input must stay open: at its end nc half-closes the
	# connection, and the client's nc quits as soon as it sees that.
	sleep 100000 | nc -l -p 5001 >/dev/null &
	mkdir -p /www
	mount -t tmpfs tmpfs /www || fail "cannot mount a tmpfs on /www"
	m=$nmib
	while [ "$m" -le "${tmax:-$nmib}" ]; do
		truncate -s "${m}M" "/www/$m" || fail "truncate /www/$m"
		m=$((m * 2))
	done
	httpd -p 80 -h /www || fail "httpd did not start"
	ip addr add 192.0.2.1/24 dev eth0
	echo "io-guest: server up"
	sleep 1200
	;;
client)
	nmib=$(arg io.nmib) pings=$(arg io.pings) tsecs=$(arg io.tsecs) tmax=$(arg io.tmax)
	ip link set eth0 up || fail "no eth0"
	offloads
	ip addr add 192.0.2.2/24 dev eth0
	i=0
	until ping -c 1 -W 1 192.0.2.1 >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 60 ] || fail "192.0.2.1 does not answer pings"
	done
	ping -c 3 -i 0.2 192.0.2.1 >/dev/null 2>&1
	begin tcp_mib_s
	send "$nmib"
	echo "io-guest: result tcp_mib_s=$(rate "$nmib" "$t0" "$t1") secs=$(secs "$t0" "$t1") tx_frame_b=$frame"
	if [ "${tsecs:-0}" -gt 0 ]; then
		# A warm-up fetch, untimed but reported (how a first connection
		# starts varies from boot to boot), sizes the timed one: the
		# largest file that fits io.tsecs at its rate, as iperf -t would.
		fetch "$nmib"
		r=$(rate "$nmib" "$t0" "$t1")
		big=$(awk -v r="$r" -v s="$tsecs" -v m="$nmib" -v hi="${tmax:-$nmib}" \
			'BEGIN { while (m * 2 <= r * s && m * 2 <= hi) m *= 2; print m }')
		begin tcp_bulk_mib_s
		fetch "$big"
		echo "io-guest: result tcp_bulk_mib_s=$(rate "$big" "$t0" "$t1") tcp_bulk_mib=$big" \
			"secs=$(secs "$t0" "$t1") bulk_rx_frame_b=$frame warmup_mib_s=$r"
	fi
	# Segments TCP sent again (lost frames show here) and the adapter's drops.
	retrans=$(awk '$1 == "Tcp:" && $13 ~ /^[0-9]+$/ { print $13 }' /proc/net/snmp)
	echo "io-guest: result tcp_retrans=${retrans:-?} eth0_dropped_rx=$(stat_of rx_dropped) eth0_dropped_tx=$(stat_of tx_dropped)"
	begin ping_avg_ms
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

# Sourced by tests/e2e/cases.sh inside the simulated host: two VMs on one
# nestvm virtual switch reach each other, and a TCP stream between them
# arrives intact with the offloads on (Linux's drivers negotiate checksum
# and TSO offloads and mergeable buffers; TSO frames cross the switch
# whole); a frame from a MAC address that is not the adapter's own is
# dropped and counted unless the adapter has MAC address spoofing on.
net_client() {
	name=$1 spoof=$2 tcp=${3:-0}
	boot "$name" 0 run --kernel $K --initrd /tmp/net-initrd.img --memory 256M \
		--nic switch=lan,mac=52:54:00:00:00:02,spoofing=$spoof \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/net-guest.sh net.role=client net.tcp=$tcp"
}

# The features line's bit N (a string of 0s and 1s, bit 0 first) in file $1.
feature_bit() {
	sed -n 's/.*net-guest: features \([01]*\).*/\1/p' "$1" | head -n 1 | cut -c$(($2 + 1))
}

# The TCP stream (the client fetches 1 MiB from the server): the same bytes
# arrived; both drivers negotiated CSUM (0), GUEST_CSUM (1), GUEST_TSO4 (7),
# HOST_TSO4 (11) and MRG_RXBUF (15); the receiver got frames larger than the
# wire's 1514 bytes (TSO frames, whole); the switch saw offloaded frames.
net_check_tcp() {
	served=$(sed -n 's/.*net-guest: tcp served \([0-9a-f]*\).*/\1/p' /tmp/server.out)
	got=$(sed -n 's/.*net-guest: tcp got \([0-9a-f]*\).*/\1/p' "$out")
	pk=$(sed -n 's/.*net-guest: tcp got .* rx_packets=\([0-9]*\).*/\1/p' "$out")
	by=$(sed -n 's/.*net-guest: tcp got .* rx_bytes=\([0-9]*\).*/\1/p' "$out")
	if [ -z "$served" ] || [ "$served" != "$got" ]; then
		fail net_switch "TCP stream: served md5 '${served:-none}', received '${got:-none}'"; return 1
	fi
	for f in "$out" /tmp/server.out; do
		for b in 0 1 7 11 15; do
			[ "$(feature_bit "$f" $b)" = 1 ] || {
				fail net_switch "virtio-net feature bit $b not negotiated ($f)"; return 1; }
		done
	done
	if [ -z "$pk" ] || [ "$pk" -eq 0 ] || [ $((by / pk)) -le 1514 ]; then
		fail net_switch "receiver's frames average $((by / ${pk:-1})) bytes ($pk frames): no TSO frame arrived whole"
		return 1
	fi
	./nestvm switch show lan --json >/tmp/net-show.json 2>&1
	grep -Eq '"rxOffloaded": *[1-9]' /tmp/net-show.json || {
		fail net_switch "the switch counted no offloaded frame"; return 1; }
	echo "net_switch: TCP 1 MiB intact, receiver's frames average $((by / pk)) bytes ($pk frames)"
}

case_net_switch() {
	export NESTVM_STORE=/tmp/net-store
	rm -rf "$NESTVM_STORE"
	sh scripts/nested-initrd /tmp/net-initrd.img image tests/e2e/net-guest.sh:e2e/net-guest.sh || {
		fail net_switch "nested-initrd failed"; return; }
	timeout -k 5 30 ./nestvm switch new lan >"$out" 2>&1 || { fail net_switch "switch new failed"; return; }
	./nestvm run --kernel $K --initrd /tmp/net-initrd.img --memory 256M --nic switch=lan,mac=52:54:00:00:00:01 \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/net-guest.sh net.role=server" \
		>/tmp/server.out 2>&1 </dev/null &
	server=$!
	i=0
	while [ $i -lt 120 ] && ! grep -qs 'net-guest: server up' /tmp/server.out; do sleep 1; i=$((i + 1)); done
	ok=0
	if net_client net_switch off 1 && expect net_switch 'net-guest: ping ok' &&
	   expect net_switch 'net-guest: tcp got' && net_check_tcp &&
	   expect net_switch 'net-guest: spoofed ping failed'; then
		./nestvm switch show lan --json >"$out" 2>&1
		# The switch-wide count: the client's port left with its VM.
		if sed -n '/"counters"/,$p' "$out" | grep -Eq '"droppedSpoof": *[1-9]'; then
			net_client net_switch on && expect net_switch 'net-guest: spoofed ping ok' && ok=1
		else
			fail net_switch "switch show counts no spoofed frame"
		fi
	fi
	kill -9 $server 2>/dev/null
	wait $server 2>/dev/null
	./nestvm switch remove lan --force >/dev/null 2>&1
	unset NESTVM_STORE
	[ $ok = 1 ] && pass net_switch
}

e2e_case case_net_switch

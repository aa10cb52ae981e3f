# Sourced by tests/e2e/cases.sh inside the simulated host: two VMs on one
# nestvm virtual switch reach each other; a frame from a MAC address that is
# not the adapter's own is dropped and counted unless the adapter has MAC
# address spoofing on.
net_client() {
	name=$1 spoof=$2
	boot "$name" 0 run --kernel $K --initrd /tmp/net-initrd.img --memory 256M \
		--nic switch=lan,mac=52:54:00:00:00:02,spoofing=$spoof \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/net-guest.sh net.role=client"
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
	if net_client net_switch off && expect net_switch 'net-guest: ping ok' &&
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

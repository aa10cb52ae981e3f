# Sourced by tests/e2e/cases.sh inside the simulated host: NestedVM, inside
# NestedHost, reaches a VM on the host's switch through NestedHost's adapter
# exactly when that adapter has MAC address spoofing on; with it off the
# outer switch drops NestedVM's frames and counts them.
nested_net_host() {
	spoof=$1
	boot nested_net 0 run --nested --kernel $K --initrd /tmp/nh-net.img --memory 768M \
		--nic switch=lan,mac=52:54:00:00:00:10,spoofing=$spoof \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/host.sh"
}

case_nested_net() {
	export NESTVM_STORE=/tmp/nested-net-store
	rm -rf "$NESTVM_STORE"
	sh scripts/nested-initrd /tmp/nvm-initrd.img image tests/e2e/net-guest.sh:e2e/net-guest.sh &&
	sh scripts/nested-initrd /tmp/nh-net.img image tests/e2e/nested-net-host.sh:e2e/host.sh \
		/tmp/nvm-initrd.img:image/nvm-initrd.img || { fail nested_net "nested-initrd failed"; return; }
	timeout -k 5 30 ./nestvm switch new lan >"$out" 2>&1 || { fail nested_net "switch new failed"; return; }
	./nestvm run --kernel $K --initrd /tmp/nvm-initrd.img --memory 256M --nic switch=lan,mac=52:54:00:00:00:01 \
		--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/net-guest.sh net.role=server" \
		>/tmp/server.out 2>&1 </dev/null &
	server=$!
	i=0
	while [ $i -lt 120 ] && ! grep -qs 'net-guest: server up' /tmp/server.out; do sleep 1; i=$((i + 1)); done
	ok=0
	if nested_net_host on && expect nested_net 'NestedVM\| net-guest: ping ok' &&
	   nested_net_host off && expect nested_net 'NestedVM\| net-guest: ping failed'; then
		./nestvm switch show lan --json >"$out" 2>&1
		sed -n '/"counters"/,$p' "$out" | grep -Eq '"droppedSpoof": *[1-9]' && ok=1 ||
			fail nested_net "the outer switch counted no spoofed frame"
	fi
	kill -9 $server 2>/dev/null
	wait $server 2>/dev/null
	./nestvm switch remove lan --force >/dev/null 2>&1
	unset NESTVM_STORE
	[ $ok = 1 ] && pass nested_net
}

e2e_case case_nested_net

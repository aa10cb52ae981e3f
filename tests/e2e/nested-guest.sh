# Runs inside NestedHost (a nestvm guest): starts NestedVM from the default
# image and relays its console, each line prefixed "NestedVM| ".
nestvm status >/tmp/status.out 2>&1
echo "nested-guest: status exit=$?"
sed 's/^/status| /' /tmp/status.out
echo "nested-guest: starting NestedVM"
nestvm run --kernel /image/vmlinuz --initrd /image/initrd.img --memory 256M \
	--cmdline "console=ttyS0 panic=-1 quiet" >/tmp/nvm.out 2>&1 &
pid=$!
# This nestvm sandboxes itself too: its main thread's filter, no_new_privs
# and capabilities once NestedVM is built (up to 120 s; no wait for one that
# has exited, as it does where the host cannot run VMs).
i=0
while [ $i -lt 240 ] && ! grep -q '^Seccomp:.2' /proc/$pid/status 2>/dev/null &&
	grep -q '^State:.[RSD]' /proc/$pid/status 2>/dev/null; do
	sleep 0.5
	i=$((i + 1))
done
echo "nested-guest: VMM $(grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/$pid/status 2>/dev/null | tr -d '\t' | tr '\n' ' ')"
wait $pid
rc=$?
sed 's/^/NestedVM| /' /tmp/nvm.out
echo "nested-guest: NestedVM exit=$rc"

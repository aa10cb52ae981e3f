# Runs inside NestedHost (level 1) for tests/e2e/deep.sh: starts a second
# NestedHost (level 2) with the extensions, which runs tests/e2e/deep-l2.sh,
# and relays its console, each line prefixed "L2| ".
t0=$(date +%s)
nestvm run --nested --kernel /image/vmlinuz --initrd /image/l2.img --memory 320M \
	--cmdline "console=ttyS0 panic=-1 quiet nestvm.script=/e2e/deep-l2.sh" >/tmp/l2.out 2>&1
rc=$?
sed 's/^/L2| /' /tmp/l2.out
echo "deep-host: level 2 exit=$rc after $(($(date +%s) - t0)) s"

# Runs inside the second NestedHost (level 2) for tests/e2e/deep.sh: boots
# NestedVM (level 3), the tiny guest, which prints its command line and
# powers off, and relays its console, each line prefixed "NestedVM| ".
t0=$(date +%s)
echo "deep-l2: level 2 up after $(cut -d. -f1 /proc/uptime) s"
nestvm run --kernel /image/tiny-guest.bzImage --memory 32M \
	--cmdline "tiny-guest: NestedVM up at level 3" >/tmp/nvm.out 2>&1
rc=$?
sed 's/^/NestedVM| /' /tmp/nvm.out
echo "deep-l2: NestedVM exit=$rc after $(($(date +%s) - t0)) s"

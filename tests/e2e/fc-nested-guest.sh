# Runs inside a nested host started through nestvm's Firecracker-compatible
# API (tests/e2e/firecracker.sh): its nestvm boots NestedVM, the tiny guest
# (tests/tiny-guest.c), which prints its command line and powers off, and
# relays its console, each line prefixed "NestedVM| ".
nestvm run --kernel /image/tiny-guest.bzImage --memory 32M \
	--cmdline "tiny-guest: NestedVM up inside the microVM" >/tmp/nvm.out 2>&1
rc=$?
sed 's/^/NestedVM| /' /tmp/nvm.out
echo "fc-nested: NestedVM exit=$rc"

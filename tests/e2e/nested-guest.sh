# Runs inside NestedHost (a nestvm guest): starts NestedVM from the default
# image and relays its console, each line prefixed "NestedVM| ".
nestvm status >/tmp/status.out 2>&1
echo "nested-guest: status exit=$?"
sed 's/^/status| /' /tmp/status.out
echo "nested-guest: starting NestedVM"
nestvm run --kernel /image/vmlinuz --initrd /image/initrd.img --memory 256M \
	--cmdline "console=ttyS0 panic=-1 quiet" >/tmp/nvm.out 2>&1
rc=$?
sed 's/^/NestedVM| /' /tmp/nvm.out
echo "nested-guest: NestedVM exit=$rc"

# Runs inside a guest for tests/e2e/disk.sh. disk.phase= on the kernel command
# line says what to do with /dev/vda (and /dev/vdb, a read-only disk).
phase=$(sed -n 's/.*disk\.phase=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "disk-guest: phase $phase; rng $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
mkdir -p /mnt
case $phase in
write)
	mke2fs -q /dev/vda || { echo "disk-guest: mke2fs failed"; exit 1; }
	mount /dev/vda /mnt || exit 1
	dd if=/dev/urandom of=/mnt/data bs=1024 count=2048 2>/dev/null
	(cd /mnt && sha256sum data >sum)
	sync
	echo "disk-guest: written $(cut -c1-16 /mnt/sum)"
	# The VMM is killed now, with no clean shutdown: what was synced must last.
	sleep 600
	;;
verify)
	mount /dev/vda /mnt || exit 1
	(cd /mnt && sha256sum -c sum >/dev/null 2>&1) && echo "disk-guest: verified $(cut -c1-16 /mnt/sum)"
	if dd if=/dev/zero of=/dev/vdb bs=512 count=1 2>/dev/null && sync; then
		echo "disk-guest: read-only disk accepted a write"
	else
		echo "disk-guest: read-only disk refused a write"
	fi
	echo "disk-guest: vdb starts with $(dd if=/dev/vdb bs=8 count=1 2>/dev/null)"
	;;
esac

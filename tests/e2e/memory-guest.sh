# Runs inside a guest for tests/e2e/memory.sh, started with dynamic memory:
# reports what it has once the balloon has settled, then takes memory (a
# tmpfs file, which cannot be paged out without swap) and reports again.
avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
echo "memory-guest: balloon driver $(ls -d /sys/bus/virtio/drivers/virtio_balloon/virtio* 2>/dev/null | wc -l)"
sleep 8
echo "memory-guest: settled avail_kb=$(avail)"
mkdir -p /mnt/fill
mount -t tmpfs -o size=400M tmpfs /mnt/fill
for i in 1 2 3 4 5 6 7 8 9 10; do
	dd if=/dev/zero of=/mnt/fill/$i bs=1M count=20 2>/dev/null || break
	sleep 1
done
echo "memory-guest: filled $(du -sm /mnt/fill | cut -f1) MiB avail_kb=$(avail)"
sleep 3

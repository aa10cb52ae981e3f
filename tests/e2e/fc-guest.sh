# Runs inside a guest started through nestvm's Firecracker-compatible API
# (tests/e2e/firecracker.sh): talks to the host over vsock both ways, ticks
# while the host pauses and resumes it, watches /dev/vdb until the host
# swaps its backing file, then waits for Ctrl-Alt-Del.
echo "fc-guest: kernel $(uname -r)"
if echo "hello from the guest" | nestvm vsock connect 1234; then
	echo "fc-guest: sent to the host"
fi
(echo "pong from the guest"; sleep 5) | nestvm vsock listen 52 >/tmp/got52 &
sleep 1
echo "fc-guest: listening on 52"
wait
echo "fc-guest: got $(cat /tmp/got52)"

read_vdb() {
	blockdev --flushbufs /dev/vdb 2>/dev/null
	echo 3 >/proc/sys/vm/drop_caches
	dd if=/dev/vdb bs=8 count=1 2>/dev/null
}
echo "fc-guest: vdb says $(read_vdb)"
i=0
while [ $i -lt 900 ]; do
	now=$(read_vdb)
	if [ "$now" != "disk-one" ]; then
		echo "fc-guest: vdb now says $now ($(cat /sys/block/vdb/size) sectors)"
		break
	fi
	echo "fc-guest: tick $i"
	i=$((i + 1))
	sleep 1
done
echo "fc-guest: waiting for ctrl-alt-del"
sleep 900

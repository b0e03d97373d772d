#!/bin/sh
# peer-guest.sh: the lab's Linux guest as the guest of a VMM (QEMU) whose NIC is a vdpad port
# (virtio-net-pci on -netdev vhost-user): its own virtio_net driver reaches the peer at
# 10.217.0.1 through the port and its TAP. Results in the run's OUT_DIR:
#   ping.txt   busybox ping's output and rc;  sent.md5  the md5 of the 8 MiB sent;  nc.txt  nc's rc
#   ping-cpu1.txt  with more than one queue pair: pings sent from vCPU 1 (its own transmit queue)
set -u
dev=
for d in /sys/class/net/*; do
  n=${d##*/}
  [ "$n" != lo ] && [ -e "$d/device" ] && { dev=$n; break; }
done
[ -n "$dev" ] || { echo "PEER: no virtio-net interface"; exit 2; }
queues=$(ls -d /sys/class/net/$dev/queues/tx-* 2>/dev/null | wc -l)
echo "PEER: interface $dev, queues $queues, features $(cat /sys/class/net/$dev/device/features 2>/dev/null)"
busybox ip link set "$dev" up
busybox ip addr add 10.217.0.2/24 dev "$dev"
busybox ping -c 5 -W 10 10.217.0.1 >/out/ping.txt 2>&1
echo "rc=$?" >>/out/ping.txt
cat /out/ping.txt
if [ "$queues" -gt 1 ]; then
  busybox taskset -c 1 busybox ping -c 3 -W 10 10.217.0.1 >/out/ping-cpu1.txt 2>&1
  echo "rc=$?" >>/out/ping-cpu1.txt
  cat /out/ping-cpu1.txt
fi
dd if=/dev/urandom of=/tmp/blob bs=1M count=8 2>/dev/null
busybox md5sum /tmp/blob | cut -d' ' -f1 >/out/sent.md5
busybox nc 10.217.0.1 5001 </tmp/blob
echo "rc=$?" >/out/nc.txt
echo "PEER: sent $(cat /out/sent.md5), nc $(cat /out/nc.txt)"

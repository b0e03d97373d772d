# demo-in-guest.sh: the scripted vdpactl tour inside the lab VM (busybox sh).
#   lab.sh run Tests/Lab/demo-in-guest.sh OUT_DIR -- BUILD_DIR
. /lab/guest-lib.sh
BIN=${1:?usage: demo-in-guest.sh BUILD_DIR}
SOCK=/run/vdpad/vdpad.sock
export VDPAD_SOCKET=$SOCK
# The VM's /var is the host's, read-only: the state goes to the guest's tmpfs.
STATE=/tmp/vdpad-state

say() { printf '\n### %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; rc=$?; [ $rc -eq 0 ] || printf '(exit status %d)\n' $rc; return 0; }
vdpactl() { "$BIN/vdpactl" "$@"; }
# wait_ready: until the daemon answers (a killed daemon leaves its socket file behind).
wait_ready() {
  n=0
  until "$BIN/vdpactl" daemon status >/dev/null 2>&1; do
    n=$((n + 1))
    if [ $n -ge 300 ] || ! kill -0 "$pid" 2>/dev/null; then echo "vdpad did not start:"; cat /out/vdpad-demo.log; exit 1; fi
    sleep 0.1
  done
}

say "Linux $(uname -r) with the vDPA simulator; starting vdpad"
"$BIN/vdpad" --config /nonexistent --state-dir $STATE --log-level notice >/out/vdpad-demo.log 2>&1 &
pid=$!
wait_ready

say "the daemon and the management devices the kernel offers"
run vdpactl daemon status
run vdpactl mgmtdev show

say "follow device events in the background (like ip monitor)"
"$BIN/vdpactl" monitor >/tmp/monitor.log 2>&1 &
mon=$!
sleep 1

say "create a network device with a MAC and an MTU, and a block device"
run vdpactl dev add name vdpa0 mgmtdev vdpasim_net mac 02:00:00:00:00:01 mtu 9000
run vdpactl dev add name blk0 mgmtdev vdpasim_blk
run vdpactl dev show

say "hand vdpa0 to the kernel's own virtio driver: a netdev appears, features get negotiated"
run vdpactl dev bind vdpa0 driver virtio_vdpa
run vdpactl dev config show vdpa0
run vdpactl -jp dev config show vdpa0
run vdpactl dev vstats show vdpa0 qidx 0

say "back to vhost_vdpa (a VMM's /dev/vhost-vdpa-N), and a new MAC"
run vdpactl dev bind vdpa0 driver vhost_vdpa
run vdpactl dev set vdpa0 mac 02:00:00:00:00:02
run vdpactl dev show vdpa0

say "what the kernel refuses, vdpactl reports with the kernel's reason"
run vdpactl dev add name vdpa1 mgmtdev vdpasim_net max_vqp 2

say "a device made behind vdpad's back (iproute2) is seen, listed as unmanaged, and left alone"
run vdpa dev add name other0 mgmtdev vdpasim_net
sleep 1
run vdpactl dev show other0
run vdpactl dev del other0
run vdpa dev del other0

say "kill -9 the daemon and start it again: it reconciles with the kernel, nothing is lost"
kill -9 "$pid"; wait "$pid" 2>/dev/null
"$BIN/vdpad" --config /nonexistent --state-dir $STATE --log-level notice >>/out/vdpad-demo.log 2>&1 &
pid=$!
wait_ready
run vdpactl daemon status
run vdpactl dev show

say "clean up"
run vdpactl dev del vdpa0
run vdpactl dev del blk0
sleep 1
kill "$mon" 2>/dev/null

say "the events vdpactl monitor saw"
cat /tmp/monitor.log
kill "$pid"; wait "$pid" 2>/dev/null
echo
echo "vdpad's log: $LAB_HOST_OUT_DIR/vdpad-demo.log"

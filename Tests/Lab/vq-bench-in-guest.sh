# vq-bench-in-guest.sh: virtqueue state moves inside the lab VM (busybox sh).
#   lab.sh run Tests/Lab/vq-bench-in-guest.sh OUT_DIR -- BUILD_DIR [ROUNDS]
# BUILD_DIR holds vdpad and vdpa-bench. Starts vdpad on the real kernel, then `vdpa-bench vq`
# moves a mini VMM's rings between two vdpasim_net devices and prints the pause per step.
. /lab/guest-lib.sh
BUILD_DIR=${1:?usage: vq-bench-in-guest.sh BUILD_DIR [ROUNDS]}
ROUNDS=${2:-40}
for b in vdpad vdpa-bench; do
  [ -x "$BUILD_DIR/$b" ] || { echo "LAB-ERROR: no $b in $BUILD_DIR"; exit 126; }
done
lab_say "kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) vCPUs"
mkdir -p /tmp/vqbench
printf 'ports_dir = /tmp/vqbench/ports\n' >/tmp/vqbench/vdpad.conf
"$BUILD_DIR/vdpad" --config /tmp/vqbench/vdpad.conf --socket /tmp/vqbench/vdpad.sock --state-dir /tmp/vqbench/state \
  --log-level warning >/out/vdpad-vq-bench.log 2>&1 &
pid=$!
lab_wait_for /tmp/vqbench/vdpad.sock 30 || { echo "LAB-ERROR: vdpad did not start"; cat /out/vdpad-vq-bench.log; exit 1; }
"$BUILD_DIR/vdpa-bench" vq --socket /tmp/vqbench/vdpad.sock --rounds "$ROUNDS" --queues 1 2 8 | tee /out/vq-bench.txt
rc=$?
kill "$pid"; wait "$pid"
exit $rc

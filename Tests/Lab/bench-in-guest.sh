# bench-in-guest.sh: vdpactl against iproute2's vdpa inside the lab VM (busybox sh).
#   lab.sh run Tests/Lab/bench-in-guest.sh OUT_DIR -- BUILD_DIR [ROUNDS]
# BUILD_DIR holds vdpad, vdpactl and vdpa-bench (swift build -c release). Starts vdpad on the
# real kernel, then `vdpa-bench cli` times dev add / show / del with both tools, interleaved.
. /lab/guest-lib.sh
BUILD_DIR=${1:?usage: bench-in-guest.sh BUILD_DIR [ROUNDS]}
ROUNDS=${2:-20}
for b in vdpad vdpactl vdpa-bench; do
  [ -x "$BUILD_DIR/$b" ] || { echo "LAB-ERROR: no $b in $BUILD_DIR"; exit 126; }
done
lab_say "kernel $(uname -r), iproute2 $(vdpa -V 2>&1), $(grep -c ^processor /proc/cpuinfo) vCPUs"
mkdir -p /tmp/bench
"$BUILD_DIR/vdpad" --config /nonexistent --socket /tmp/bench/vdpad.sock --state-dir /tmp/bench/state \
  --log-level warning >/out/vdpad-bench.log 2>&1 &
pid=$!
lab_wait_for /tmp/bench/vdpad.sock 30 || { echo "LAB-ERROR: vdpad did not start"; cat /out/vdpad-bench.log; exit 1; }
"$BUILD_DIR/vdpa-bench" cli --vdpactl "$BUILD_DIR/vdpactl" --vdpa "$(command -v vdpa)" \
  --socket /tmp/bench/vdpad.sock --iterations "$ROUNDS" | tee /out/cli-bench.txt
rc=$?
kill "$pid"; wait "$pid"
exit $rc

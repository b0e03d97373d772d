#!/bin/bash
# run-benchmarks.sh: vdpad's benchmarks, each printing its figures and a reference measured in
# the same run (Documentation/performance.md records them). Run as root on Debian bookworm;
# give it a quiet machine.
#
#   Tests/run-benchmarks.sh [api] [cli] [datapath] [compat] [vq] [dpdk] [ports] [soak]   default: api cli datapath compat vq
#     api   vdpa-bench api: API throughput/latency over the real socket, 4096 devices, 1 and 64
#           clients, daemon RSS; reference: the same socket server answering canned bytes
#     cli   in the kernel lab: vdpactl against iproute2's vdpa (dev add / show / del)
#     datapath  vdpa-bench datapath: the Swift virtqueue engine's device role against its driver
#           role (split/packed, TX/RX, 64/1500 B, one and two threads); reference: the C ring
#           ceiling in the same process. Runs in its own autogroup at nice -15 (the two cores are
#           shared; see Documentation/performance.md, "Datapath")
#     compat  vdpa-bench compat: compare() and Baseline.compute over synthetic fleets; reference:
#           the bare 64-bit AND/compare over the same data (Documentation/performance-compat.md)
#     vq    vdpa-bench vq: a port's rings moved between two devices (port_set; save + restore):
#           the datapath pause per step, 1, 2 and 8 queues, in the kernel lab on vdpasim_net and
#           in-process over fake devices (vdpad's own overhead); reference: the kernel's floor
#           (suspend, read bases, resume on a device held directly)
#     dpdk  Tests/bench-dpdk.sh: DPDK's vhost-user against virtio-user, the same setups
#     ports Tests/bench-ports.sh: a vdpad software port (sink / source; and on a TAP) against
#           DPDK's vhost (net_vhost), the same DPDK virtio-user peer, alternating; and the TAP
#           path against the TAP write ceiling measured in the same run
#     soak  vdpa-bench soak: 1000 API clients for 180 s (BENCH_SOAK_SECONDS) against the daemon
#           with 4096 devices: latency per method, RSS, descriptors and threads before, during
#           and after; fails on a wrong answer, a missed event or a descriptor left open
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WHAT=("$@")
[ ${#WHAT[@]} -gt 0 ] || WHAT=(api cli datapath compat vq)
bash Tests/Lab/install-deps.sh
bash Tests/build-release.sh "$ROOT/.build/bin"
OUT=$ROOT/.build/bench-results
mkdir -p "$OUT"
for w in "${WHAT[@]}"; do
  case $w in
    api) "$ROOT/.build/bin/vdpa-bench" api --devices 4096 --seconds "${BENCH_SECONDS:-5}" | tee "$OUT/api.txt" ;;
    cli)
      bash Tests/Lab/lab.sh kernel
      LAB_QUIET=1 bash Tests/Lab/lab.sh run Tests/Lab/bench-in-guest.sh "$OUT/lab" -- "$ROOT/.build/bin" "${BENCH_ROUNDS:-20}"
      grep -A20 '^vdpa-bench cli' "$OUT/lab/cli-bench.txt" ;;
    datapath)
      # setsid: a new session, so a new autogroup, whose nice value only this benchmark gets.
      setsid -w bash -c 'echo -15 > /proc/self/autogroup; exec nice -n -15 "$@"' datapath \
        "$ROOT/.build/bin/vdpa-bench" datapath --seconds "${BENCH_SECONDS:-2}" --repeats "${BENCH_REPEATS:-3}" |
        tee "$OUT/datapath.txt" ;;
    dpdk)
      setsid -w bash -c 'echo -15 > /proc/self/autogroup; exec nice -n -15 "$@"' dpdk \
        bash Tests/bench-dpdk.sh "${BENCH_DPDK_SECONDS:-12}" | tee "$OUT/dpdk.txt" ;;
    ports)
      setsid -w bash -c 'echo -15 > /proc/self/autogroup; exec nice -n -15 "$@"' ports \
        bash Tests/bench-ports.sh "$ROOT/.build/bin" "${BENCH_PORTS_SECONDS:-8}" "${BENCH_REPEATS:-2}" | tee "$OUT/ports.txt" ;;
    compat) "$ROOT/.build/bin/vdpa-bench" compat | tee "$OUT/compat.txt" ;;
    soak) "$ROOT/.build/bin/vdpa-bench" soak --seconds "${BENCH_SOAK_SECONDS:-180}" | tee "$OUT/soak.txt" ;;
    vq)
      "$ROOT/.build/bin/vdpa-bench" vq --rounds "${BENCH_ROUNDS:-40}" | tee "$OUT/vq-fake.txt"
      bash Tests/Lab/lab.sh kernel
      LAB_QUIET=1 bash Tests/Lab/lab.sh run Tests/Lab/vq-bench-in-guest.sh "$OUT/lab" -- "$ROOT/.build/bin" "${BENCH_ROUNDS:-40}"
      grep -A30 '^vdpa-bench vq' "$OUT/lab/vq-bench.txt" ;;
    *) echo "unknown benchmark: $w" >&2; exit 2 ;;
  esac
done

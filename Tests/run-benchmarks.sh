#!/bin/bash
# run-benchmarks.sh: vdpad's benchmarks, each printing its figures and a reference measured in
# the same run (Documentation/performance.md records them). Run as root on Debian bookworm;
# give it a quiet machine.
#
#   Tests/run-benchmarks.sh [api] [cli] [compat]      default: all three
#     api   vdpa-bench api: API throughput/latency over the real socket, 4096 devices, 1 and 64
#           clients, daemon RSS; reference: the same socket server answering canned bytes
#     cli   in the kernel lab: vdpactl against iproute2's vdpa (dev add / show / del)
#     compat  vdpa-bench compat: compare() and Baseline.compute over synthetic fleets; reference:
#           the bare 64-bit AND/compare over the same data (Documentation/performance-compat.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WHAT=("$@")
[ ${#WHAT[@]} -gt 0 ] || WHAT=(api cli compat)
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
    compat) "$ROOT/.build/bin/vdpa-bench" compat | tee "$OUT/compat.txt" ;;
    *) echo "unknown benchmark: $w" >&2; exit 2 ;;
  esac
done

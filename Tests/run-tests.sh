#!/bin/bash
# run-tests.sh: vdpad's whole test suite on a Debian bookworm machine (run as root).
#
#   1. installs the apt packages the build and the kernel lab need (Tests/Lab/install-deps.sh)
#   2. prepares the kernel lab: Debian's linux 6.12 image, headers and source, the vDPA simulator
#      modules built out of tree, the 6.12 uapi headers (Tests/Lab/lab.sh kernel; cached)
#   3. builds vdpad, vdpactl and the tests (debug)
#   4. unit and integration tests on this machine (the daemon over its real socket, fake kernel;
#      the uapi cross-checks against the 6.12 headers)
#   5. the kernel-lab tests: the same test bundle inside the lab VM, against the real vdpa,
#      vhost_vdpa, virtio_vdpa and vduse modules and vdpa_sim_net / vdpa_sim_blk
#   6. a short run of every fuzz target (FUZZ_SECONDS each, default 20; 0 skips them)
#
# Environment: VDPAD_LAB_DIR (lab cache, default /var/cache/vdpad-lab), FUZZ_SECONDS,
# LAB_OUT (where the lab's console log and JUnit XML go, default .build/lab-results).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
step() { printf '\n=== %s\n' "$*"; }
start=$(date +%s)

step "dependencies"
bash Tests/Lab/install-deps.sh

step "kernel lab: kernel, simulator modules, uapi headers"
bash Tests/Lab/lab.sh kernel
UAPI=$(bash Tests/Lab/lab.sh env | sed -n 's/^UAPI=//p')

step "build (debug, with tests)"
swift build --build-tests

step "unit and integration tests"
VDPAD_UAPI_DIR=$UAPI swift test --skip-build

# Real VMMs (DPDK's testpmd) on software ports: alone, as they busy-poll a core.
step "real peers on software ports"
VDPAD_PEERS=1 swift test --skip-build --filter PeerTests

step "kernel-lab tests (Linux $(bash Tests/Lab/lab.sh env | sed -n 's/^KVER=//p') under QEMU)"
LAB_OUT=${LAB_OUT:-$ROOT/.build/lab-results}
mkdir -p "$LAB_OUT"
# The guest runs every kernel-lab test, crash trials included (~15 min under TCG).
TIMEOUT=${LAB_TIMEOUT:-1800} LAB_QUIET=${LAB_QUIET:-0} bash Tests/Lab/lab.sh run Tests/Lab/run-swift-tests-in-guest.sh "$LAB_OUT" -- "$ROOT/.build/debug" LabTests

if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  step "fuzz targets (${FUZZ_SECONDS:-20} s each)"
  bash Tests/Fuzz/run-fuzzers.sh "${FUZZ_SECONDS:-20}"
fi

step "all tests passed in $(( $(date +%s) - start )) s"

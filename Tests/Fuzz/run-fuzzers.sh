#!/bin/bash
# run-fuzzers.sh: builds every libFuzzer target of vdpad with -sanitize=fuzzer,address and runs
# each for SECONDS (default 20), starting from the seed corpus in Tests/Fuzz/corpus/<target>.
#
#   Tests/Fuzz/run-fuzzers.sh [SECONDS] [TARGET...]     TARGET: one of those below (default: all)
#
# Targets (Sources/Fuzz/*): every parser of bytes vdpad did not make itself. The jsonrpc corpus holds every
# example request of Documentation/api.md, and jsonrpc.dict every method and parameter name (a test checks both).
#   netlink    vdpa genetlink attribute streams, reply decoders, NLMSG_ERROR extacks, uevent datagrams
#   jsonrpc    one request line through the daemon's real dispatcher and controller (fake kernel)
#   virtqueue  split and packed rings in guest memory, driven by the device role
#   virtio-net the software virtio-net device over fuzzed guest memory: transmit parsing and header
#              validation, receive delivery (plain and mergeable buffers), the control queue
#   vhost-user a VMM's messages (with file descriptors) on a port's socket: framing, decoding, the
#              connection loop and the port's handling, over a fake vhost-vdpa device
#   quirks     quirk files and quirk_test text: parsing, matching and applying to management devices
#   profiles   profile files: parsing, validation, the written form read back, checks and plans
#   vq-state   saved virtqueue states (vq_state_import, the store): decoding, validation, restore checks
#   caps       capabilities documents from other hosts: compat_check comparisons and compat_baseline
#   config     the configuration file (vdpad.conf)
#   line-framing the API socket's request framing, cut into reads at fuzzed places, against its rule
# The document seeds are the examples of Documentation/ (Tests/Fuzz/make-document-seeds.py writes them).
#
# Findings (crash-*, leak-*, timeout-*) are written to fuzz-artifacts/<target>/ and make the script
# fail. The corpus grown during the run stays in .build/fuzz/corpus/<target> (not committed); the
# figures (runs, exec/s, coverage) are printed at the end.
# Environment: FUZZ_RSS_MB (libFuzzer -rss_limit_mb, default 2048).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SECONDS_EACH=${1:-20}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(netlink jsonrpc virtqueue virtio-net vhost-user quirks profiles vq-state caps config line-framing)
SCRATCH=$ROOT/.build/fuzz
mkdir -p "$SCRATCH/corpus"

declare -A SUMMARY
status=0
for target in "${TARGETS[@]}"; do
  product=fuzz-$target
  [ -d "Tests/Fuzz/corpus/$target" ] || { echo "unknown fuzz target: $target" >&2; exit 2; }
  # Two traps, both of which leave libFuzzer running blind ("no interesting inputs... Is the
  # code instrumented for coverage?"):
  # - SwiftPM's --sanitize=fuzzer --sanitize=address reach swift-frontend as two -sanitize=
  #   options of which only the last survives, so the libraries get ASan but no coverage. One
  #   combined -sanitize=fuzzer,address does both; --sanitize=fuzzer stays for SwiftPM's own
  #   handling of the executable (libFuzzer's main).
  # - gold drops the sanitizer-coverage module constructors: link with lld.
  echo "--- building $product (sanitize=fuzzer,address)"
  # A failed build must stop here: the binary of an earlier build may still be in place.
  set +e
  swift build -c debug --scratch-path "$SCRATCH/build" --product "$product" \
    --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld 2>&1 | grep -v "Cannot export local symbol"
  build_rc=${PIPESTATUS[0]}
  set -e
  binary=$SCRATCH/build/debug/$product
  [ "$build_rc" -eq 0 ] && [ -x "$binary" ] || { echo "build of $product failed (rc=$build_rc)" >&2; exit 1; }

  corpus=$SCRATCH/corpus/$target
  artifacts=$ROOT/fuzz-artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  cp -n "Tests/Fuzz/corpus/$target"/* "$corpus"/
  extra=()
  [ -f "Tests/Fuzz/$target.dict" ] && extra+=("-dict=Tests/Fuzz/$target.dict")
  log=$SCRATCH/$target.log
  echo "--- running $product for ${SECONDS_EACH}s"
  set +e
  ASAN_OPTIONS=detect_leaks=0 "$binary" "$corpus" -max_total_time="$SECONDS_EACH" -timeout=10 \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${extra[@]}" >"$log" 2>&1
  rc=$?
  set -e
  if ! grep -q "inline 8-bit counters" "$log" || grep -q "Is the code instrumented for coverage" "$log"; then
    echo "!!! $product runs without coverage instrumentation" >&2; status=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$({ grep -o 'cov: [0-9]*' "$log" || true; } | tail -1 | awk '{print $2}')
  SUMMARY[$target]="runs=${runs:-?} exec/s=${rate:-?} cov=${cov:-?} corpus=$(ls "$corpus" | wc -l)"
  if [ $rc -ne 0 ]; then
    echo "!!! $product failed (rc=$rc); last lines of $log:" >&2
    tail -40 "$log" >&2
    status=1
  fi
done

echo
echo "fuzz summary (${SECONDS_EACH}s each):"
for target in "${TARGETS[@]}"; do printf '  %-12s %s\n' "$target" "${SUMMARY[$target]}"; done
exit $status

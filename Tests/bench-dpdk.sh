#!/bin/bash
# bench-dpdk.sh: DPDK's vhost-user device against its virtio-user driver on this machine, the
# figures `vdpa-bench datapath` (two threads) is read against. Two testpmd processes, one
# forwarding core each (vhost on cpu 1, virtio-user on cpu 0), no hugepages (`--no-huge -m 512`,
# the virtio-user side with `--single-file-segments`), 1 queue pair, virtio-user defaults
# (in_order=1, mrg_rxbuf=1), as in Documentation/performance.md's DPDK anchors:
#
#   rx  vhost txonly  -> virtio-user rxonly: the device writes frames into the driver's buffers
#   tx  virtio-user txonly -> vhost rxonly:  the device reads frames out of the driver's buffers
#
# for split and packed rings, 64 and 1500-byte frames. Prints the receiving side's Mpps: the
# median of testpmd's throughput samples after the first, with min and max. Run as root; installs
# Debian's `dpdk` and `dpdk-dev` packages (testpmd is in the latter) if testpmd is missing.
#
#   Tests/bench-dpdk.sh [seconds per point, default 12]
#   DPDK_KEEP_LOGS=dir keeps testpmd's output
#   DPDK_SIZES="64 1500" DPDK_LAYOUTS="split packed" DPDK_DIRECTIONS="tx rx" Tests/bench-dpdk.sh
set -euo pipefail
SECONDS_PER_POINT=${1:-12}
SIZES=${DPDK_SIZES:-64 1500}
LAYOUTS=${DPDK_LAYOUTS:-split packed}
DIRECTIONS=${DPDK_DIRECTIONS:-tx rx}

[ "$(id -u)" = 0 ] || { echo "bench-dpdk.sh: run as root" >&2; exit 1; }
if ! command -v dpdk-testpmd >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q dpdk dpdk-dev >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q dpdk dpdk-dev >/dev/null; }
fi
TESTPMD=$(command -v dpdk-testpmd)

WORK=$(mktemp -d /tmp/bench-dpdk.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  # testpmd's runtime files for the file prefixes used here.
  if [ -n "${DPDK_KEEP_LOGS:-}" ]; then mkdir -p "$DPDK_KEEP_LOGS" && cp "$WORK"/*.vhost "$WORK"/*.virtio "$DPDK_KEEP_LOGS"/ 2>/dev/null || true; fi
  rm -rf "$WORK" /var/run/dpdk/bdv$$* /var/run/dpdk/bdu$$* 2>/dev/null || true
}
trap cleanup EXIT

# median/min/max of the pps samples in $1, without the zeros before the link is up and the
# first interval after it (testpmd prints its 1 s statistics about every 2 s).
summarize() {
  awk '$1 > 0' "$1" | tail -n +2 | sort -n | awk '{ v[++n] = $1 / 1e6 } END {
         if (n == 0) { print "no samples"; exit }
         m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
         printf "%6.2f Mpps (%6.2f – %6.2f, %d samples)\n", m, v[1], v[n], n }'
}

printf '%s, %s s per point, vhost on cpu 1, virtio-user on cpu 0\n' \
  "$("$TESTPMD" -v --no-huge -m 64 --no-pci --file-prefix bdv$$v -- -h 2>&1 | grep -o 'DPDK [0-9.]*' | head -1)" "$SECONDS_PER_POINT"
printf '%-7s %-3s %5s  %s\n' layout dir frame "receiving side"
for layout in $LAYOUTS; do
  for direction in $DIRECTIONS; do
    for size in $SIZES; do
      point=$layout-$direction-$size
      socket=$WORK/$point.sock
      virtio_args="path=$socket,queues=1"
      [ "$layout" = packed ] && virtio_args+=",packed_vq=1"
      if [ "$direction" = rx ]; then vhost_mode=txonly virtio_mode=rxonly; else vhost_mode=rxonly virtio_mode=txonly; fi
      common=(--stats-period=1 --nb-cores=1 --txd=1024 --rxd=1024 --total-num-mbufs=32768 --txpkts="$size")
      PIDS=()
      timeout -s INT $((SECONDS_PER_POINT + 20)) "$TESTPMD" -l 0,1 --main-lcore 0 --no-pci --no-huge -m 512 \
        --file-prefix "bdv$$$point" --vdev "net_vhost0,iface=$socket,queues=1" \
        -- --forward-mode="$vhost_mode" "${common[@]}" >"$WORK/$point.vhost" 2>&1 </dev/null &
      PIDS+=($!)
      for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
      [ -S "$socket" ] || { echo "$point: vhost socket did not appear" >&2; tail -5 "$WORK/$point.vhost" >&2; exit 1; }
      timeout -s INT $((SECONDS_PER_POINT + 15)) "$TESTPMD" -l 0,1 --main-lcore 1 --no-pci --no-huge -m 512 \
        --single-file-segments --file-prefix "bdu$$$point" --vdev "net_virtio_user0,$virtio_args" \
        -- --forward-mode="$virtio_mode" "${common[@]}" >"$WORK/$point.virtio" 2>&1 </dev/null &
      PIDS+=($!)
      sleep "$((SECONDS_PER_POINT + 3))"
      for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
      for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
      PIDS=()
      receiver=$WORK/$point.virtio
      [ "$direction" = tx ] && receiver=$WORK/$point.vhost
      grep -o 'Rx-pps: *[0-9]*' "$receiver" | awk '{ print $2 }' >"$WORK/$point.pps" || true
      printf '%-7s %-3s %5s  %s\n' "$layout" "$direction" "$size" "$(summarize "$WORK/$point.pps")"
      rm -f "$socket"
    done
  done
done

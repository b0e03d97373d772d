#!/bin/bash
# bench-ports.sh: vdpad's software port against DPDK's vhost-user device, the same DPDK
# virtio-user driver (testpmd, one forwarding core on cpu 0, no hugepages) as the peer of both:
#
#   (a) DPDK: testpmd's net_vhost on cpu 1 (rxonly for tx, txonly for rx)
#   (b) vdpad: a software port (vdpa-bench port-serve, in-process port, worker busy polling, on
#       cpu 1) with a packet sink (tx) or source (rx) as its network side
#
#   tx  virtio-user txonly -> the device takes the frames out of the driver's buffers
#   rx  the device fills the driver's receive buffers -> virtio-user rxonly
#
# for split and packed rings, 64 and 1500-byte frames, one queue pair, (a) and (b) alternating
# REPEATS times per point. Then the TAP path: (c) virtio-user txonly -> a software port on a TAP
# (up) against (d) the TAP write ceiling, one thread writing header + frame into a TAP, in the
# same run. Prints the receiving side's Mpps (median of the 1 s samples after the first, pooled
# over the repeats) and the ratios vdpad / DPDK and TAP path / TAP ceiling. Run as root.
#
#   Tests/bench-ports.sh BIN_DIR [seconds per run, default 8] [repeats, default 2]
#   PORTS_SIZES="64 1500" PORTS_LAYOUTS="split packed" PORTS_DIRECTIONS="tx rx" PORTS_TAP=1
set -euo pipefail
BIN=${1:?usage: bench-ports.sh BIN_DIR [seconds] [repeats]}
SECONDS_PER_RUN=${2:-8}
REPEATS=${3:-2}
SIZES=${PORTS_SIZES:-64 1500}
LAYOUTS=${PORTS_LAYOUTS:-split packed}
DIRECTIONS=${PORTS_DIRECTIONS:-tx rx}

[ "$(id -u)" = 0 ] || { echo "bench-ports.sh: run as root" >&2; exit 1; }
command -v dpdk-testpmd >/dev/null || bash "$(dirname "$0")/Lab/install-deps.sh"
TESTPMD=$(command -v dpdk-testpmd)
WORK=$(mktemp -d /tmp/bench-ports.XXXXXX)
PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_all
  rm -rf "$WORK" /var/run/dpdk/bpv$$* /var/run/dpdk/bpu$$* 2>/dev/null || true
  ip link del "bpt$$" 2>/dev/null || true
  ip link del "bpc$$" 2>/dev/null || true
}
trap cleanup EXIT

# The pps samples (column $2 of "NAME-pps: N") of file $1 after the first non-zero one.
samples() { grep -o "$2-pps: *[0-9]*" "$1" | awk '{ print $2 }' | awk '$1 > 0' | tail -n +2 || true; }
# median of the numbers on stdin, in Mpps, with min and max.
summarize() {
  sort -n | awk '{ v[++n] = $1 / 1e6 } END {
    if (n == 0) { print "0 0 0 0"; exit }
    m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    printf "%.2f %.2f %.2f %d\n", m, v[1], v[n], n }'
}
wait_socket() {
  for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done
  echo "bench-ports.sh: socket $1 did not appear" >&2; tail -5 "$2" >&2; exit 1
}

# One virtio-user peer on cpu 0 against the device on socket $1, mode $2, layout $3, size $4, log $5.
peer() {
  local args="path=$1,queues=1"
  [ "$3" = packed ] && args+=",packed_vq=1"
  timeout -s INT $((SECONDS_PER_RUN + 15)) "$TESTPMD" -l 0,1 --main-lcore 1 --no-pci --no-huge -m 512 \
    --single-file-segments --file-prefix "bpu$$$RANDOM" --vdev "net_virtio_user0,$args" \
    -- --forward-mode="$2" --stats-period=1 --nb-cores=1 --txd=1024 --rxd=1024 --total-num-mbufs=32768 --txpkts="$4" \
    >"$5" 2>&1 </dev/null &
  PIDS+=($!)
}

# (a) DPDK's vhost: prints the receiving side's samples.
run_dpdk() {  # layout direction size log-prefix
  local socket=$WORK/$4.sock vhost_mode virtio_mode
  if [ "$2" = rx ]; then vhost_mode=txonly virtio_mode=rxonly; else vhost_mode=rxonly virtio_mode=txonly; fi
  timeout -s INT $((SECONDS_PER_RUN + 20)) "$TESTPMD" -l 0,1 --main-lcore 0 --no-pci --no-huge -m 512 \
    --file-prefix "bpv$$$RANDOM" --vdev "net_vhost0,iface=$socket,queues=1" \
    -- --forward-mode="$vhost_mode" --stats-period=1 --nb-cores=1 --txd=1024 --rxd=1024 --total-num-mbufs=32768 --txpkts="$3" \
    >"$WORK/$4.vhost" 2>&1 </dev/null &
  PIDS+=($!)
  wait_socket "$socket" "$WORK/$4.vhost"
  peer "$socket" "$virtio_mode" "$1" "$3" "$WORK/$4.virtio"
  sleep "$((SECONDS_PER_RUN + 3))"
  stop_all
  rm -f "$socket"
  if [ "$2" = tx ]; then samples "$WORK/$4.vhost" Rx; else samples "$WORK/$4.virtio" Rx; fi
}

# (b)/(c) vdpad's port with network $5 (sink, source, tap:NAME): the receiving side's samples.
run_vdpad() {  # layout direction size log-prefix network
  local socket=$WORK/$4.sock virtio_mode=txonly
  [ "$2" = rx ] && virtio_mode=rxonly
  taskset -c 1 "$BIN/vdpa-bench" port-serve --socket "$socket" --network "$5" --frame "$3" \
    --seconds $((SECONDS_PER_RUN + 4)) >"$WORK/$4.vdpad" 2>&1 </dev/null &
  PIDS+=($!)
  wait_socket "$socket" "$WORK/$4.vdpad"
  peer "$socket" "$virtio_mode" "$1" "$3" "$WORK/$4.virtio"
  sleep "$((SECONDS_PER_RUN + 3))"
  stop_all
  rm -f "$socket"
  if [ "$2" = tx ]; then samples "$WORK/$4.vdpad" Rx; else samples "$WORK/$4.virtio" Rx; fi
}

echo "vdpa-bench ports: $("$TESTPMD" -v --no-huge -m 64 --no-pci --file-prefix bpv$$v -- -h 2>&1 | grep -o 'DPDK [0-9.]*' | head -1) virtio-user on cpu 0 against DPDK's vhost / a vdpad software port on cpu 1"
echo "$SECONDS_PER_RUN s per run, $REPEATS runs each, alternating; Mpps median (min-max, samples)"
printf '%-7s %-3s %5s  %-26s %-26s %s\n' layout dir frame "DPDK vhost" "vdpad port" "vdpad / DPDK"
for layout in $LAYOUTS; do
  for direction in $DIRECTIONS; do
    for size in $SIZES; do
      point=$layout-$direction-$size
      : >"$WORK/$point.dpdk.all"; : >"$WORK/$point.vdpad.all"
      network=sink; [ "$direction" = rx ] && network=source
      for run in $(seq "$REPEATS"); do
        run_dpdk "$layout" "$direction" "$size" "$point-a$run" >>"$WORK/$point.dpdk.all"
        run_vdpad "$layout" "$direction" "$size" "$point-b$run" "$network" >>"$WORK/$point.vdpad.all"
      done
      read -r dm dlo dhi dn < <(summarize <"$WORK/$point.dpdk.all")
      read -r vm vlo vhi vn < <(summarize <"$WORK/$point.vdpad.all")
      ratio=$(awk -v a="$vm" -v b="$dm" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
      printf '%-7s %-3s %5s  %-26s %-26s %s\n' "$layout" "$direction" "$size" \
        "$dm ($dlo-$dhi, $dn)" "$vm ($vlo-$vhi, $vn)" "$ratio"
    done
  done
done

if [ "${PORTS_TAP:-1}" = 1 ]; then
  echo
  echo "TAP path: virtio-user txonly -> a vdpad software port on TAP bpt$$ (up), against the TAP write ceiling (one thread writing into TAP bpc$$)"
  printf '%-7s %5s  %-26s %-26s %s\n' layout frame "TAP ceiling" "vdpad port on TAP" "port / ceiling"
  for layout in $LAYOUTS; do
    for size in $SIZES; do
      point=$layout-tap-$size
      : >"$WORK/$point.ceiling.all"; : >"$WORK/$point.tap.all"
      for run in $(seq "$REPEATS"); do
        taskset -c 1 "$BIN/vdpa-bench" tap-ceiling --tap "bpc$$" --frame "$size" --seconds "$SECONDS_PER_RUN" >"$WORK/$point-c$run.ceiling" 2>&1
        samples "$WORK/$point-c$run.ceiling" Tx >>"$WORK/$point.ceiling.all"
        run_vdpad "$layout" tx "$size" "$point-t$run" "tap:bpt$$" >>"$WORK/$point.tap.all"
      done
      read -r cm clo chi cn < <(summarize <"$WORK/$point.ceiling.all")
      read -r tm tlo thi tn < <(summarize <"$WORK/$point.tap.all")
      ratio=$(awk -v a="$tm" -v b="$cm" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
      printf '%-7s %5s  %-26s %-26s %s\n' "$layout" "$size" "$cm ($clo-$chi, $cn)" "$tm ($tlo-$thi, $tn)" "$ratio"
    done
  done
fi

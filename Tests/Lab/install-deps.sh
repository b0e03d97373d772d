#!/bin/bash
# install-deps.sh: install (as root, on Debian bookworm) every apt package vdpad needs to
# build and to run the kernel lab. Idempotent and quiet; when everything is present it only
# runs one dpkg-query (well under a second) and touches neither the network nor apt's lists.
#
#   bash Tests/Lab/install-deps.sh            # install what is missing
#   bash Tests/Lab/install-deps.sh --check    # exit 1 (and list them) if packages are missing
#   EXTRA_PACKAGES="gdb strace" bash Tests/Lab/install-deps.sh
set -euo pipefail

PACKAGES=(
  # building vdpad (SwiftPM system libraries + what the Swift toolchain links against)
  libnl-3-dev libnl-genl-3-dev libsqlite3-dev pkg-config
  binutils libc6-dev libgcc-12-dev libstdc++-12-dev zlib1g-dev libncurses6 libcurl4 libxml2
  git ca-certificates tzdata
  # tests / tools (dpdk-dev has dpdk-testpmd: the polling VMM of the lab's port tests)
  socat iproute2 dpdk dpdk-dev
  # the kernel lab: QEMU, the initramfs, the out-of-tree module build
  qemu-system-x86 busybox-static kmod cpio gzip xz-utils dwarves bc gcc-12 make
  libc-bin coreutils findutils
)
# shellcheck disable=SC2206
[ -n "${EXTRA_PACKAGES:-}" ] && PACKAGES+=($EXTRA_PACKAGES)

missing() {
  # dpkg-query prints one line per known package; unknown packages go to stderr
  local installed
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null |
              awk '$2 ~ /^ii/ {print $1}' || true)
  local p
  for p in "${PACKAGES[@]}"; do
    grep -qxF "$p" <<<"$installed" || echo "$p"
  done
}

mapfile -t MISSING < <(missing)
if [ "${#MISSING[@]}" -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = --check ]; then
  echo "install-deps: missing packages: ${MISSING[*]}" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages: ${MISSING[*]}; run this script as root" >&2
  exit 1
fi

echo "install-deps: installing ${MISSING[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/vdpad-install-deps.XXXXXX.log)
if ! { apt-get update -q && \
       apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${MISSING[@]}"; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "install-deps: apt-get failed (full log: $log)" >&2
  exit 1
fi
rm -f "$log"
mapfile -t STILL < <(missing)
if [ "${#STILL[@]}" -gt 0 ]; then
  echo "install-deps: still missing after apt-get install: ${STILL[*]}" >&2
  exit 1
fi
echo "install-deps: done" >&2

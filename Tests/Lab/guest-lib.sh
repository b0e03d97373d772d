# guest-lib.sh: helpers for scripts that run inside the vdpad kernel lab (busybox sh).
# Source it: . "$LAB_LIB"
#
# Host binaries run in place over 9p: the host's / is at /host and every top-level host
# directory the guest lacks (/opt, /work, /usr/lib/...) is linked there, so a SwiftPM binary's
# RUNPATH (/opt/swift/usr/lib/swift/linux) resolves. Host shared libraries (libnl, sqlite, ...)
# come from /host through LD_LIBRARY_PATH; the loader and libc in the initramfs are the host's.

export LD_LIBRARY_PATH="/host${LAB_SWIFT_LIBDIR:-/opt/swift/usr/lib/swift/linux}:/host/usr/lib/x86_64-linux-gnu:/host/lib/x86_64-linux-gnu"

lab_say() { echo "LAB: $*"; }

# host_exec BIN ARGS...: run a host binary through the host's dynamic loader.
host_exec() {
  /host/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path "$LD_LIBRARY_PATH" "$@"
}

# lab_wait_for PATH [SECONDS]: wait until PATH exists.
lab_wait_for() {
  n=0; limit=$(( ${2:-20} * 10 ))
  while [ ! -e "$1" ]; do
    n=$((n + 1)); [ "$n" -ge "$limit" ] && return 1
    sleep 0.1
  done
}

# lab_cleanup_devices: delete every vdpa device (between test groups).
lab_cleanup_devices() {
  for d in $(ls /sys/bus/vdpa/devices 2>/dev/null); do
    case "$d" in vdpa*|*) vdpa dev del "$d" 2>/dev/null ;; esac
  done
}

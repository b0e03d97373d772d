#!/bin/bash
# lab.sh: the vdpad kernel lab. Boots Debian's 6.12 kernel under QEMU (TCG) with the real
# vdpa / vhost_vdpa / virtio_vdpa / vduse modules and the vDPA simulators (vdpa_sim_net,
# vdpa_sim_blk, built out of tree here), and runs a guest script that can reach the host's
# whole file system read-only at /host.
#
#   lab.sh kernel                          fetch the kernel debs, build the simulator modules (cached)
#   lab.sh initramfs                       build the busybox initramfs (cached; rebuilt when inputs change)
#   lab.sh run GUEST_SCRIPT [OUT_DIR] [-- ARGS...]
#                                          boot, run GUEST_SCRIPT (a host path, read by the guest at
#                                          /host/<abs path>) with busybox sh, exit with its rc
#   lab.sh shell [OUT_DIR]                 interactive guest shell (quit: poweroff, or Ctrl-A X)
#   lab.sh env                             print the cache paths (KVER, vmlinuz, initrd, uapi headers)
#   (run: LAB_MEM=MiB, LAB_SMP=N, LAB_QEMU_ARGS="more QEMU arguments" change the VM)
#   lab.sh clean                           remove the cache dir
#
# Environment:
#   VDPAD_LAB_DIR       cache dir (default /var/cache/vdpad-lab)
#   VDPAD_LAB_KPKGVER   Debian package version of linux-6.12 (default 6.12.117-1~deb12u1; when apt no
#                       longer offers it, the newest linux-source-6.12 version apt offers is used)
#   TIMEOUT             guest wall-clock limit in seconds for `run` (default 900)
#   LAB_MEM, LAB_SMP    guest RAM in MiB (default 2048), vCPUs (default 2)
#   LAB_ACCEL           tcg (default) or kvm
#   LAB_PASS_ENV        extra variable names to pass into the guest (VDPAD_* always are)
#   LAB_QUIET=1         do not stream the console to stdout (it still goes to OUT_DIR/console.log)
#
# Exit status of `run`: the guest script's rc; 124 = timeout (guest hung), 125 = the guest died
# without reporting (kernel panic, /init crash), 126 = the guest could not start the script
# (9p mount failed, script not found), 127 = lab setup failed on the host.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=${VDPAD_LAB_DIR:-/var/cache/vdpad-lab}
DEFAULT_KPKGVER=6.12.117-1~deb12u1
# initramfs content (load order: vhost_vdpa first so new vdpa devices bind to vhost_vdpa)
LOAD_MODS="vhost_vdpa virtio_vdpa vduse vdpa_sim_net vdpa_sim_blk virtio_net virtio_blk tun veth"
SHIP_MODS="$LOAD_MODS vhost_net 9pnet_virtio 9p"
APT_OPTS=(-q -o Acquire::http::Timeout=60 -o Acquire::Retries=3 -o APT::Sandbox::User=root)

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 127; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

need_tools() {
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || die "missing host tools: ${missing[*]} (run: bash $HERE/install-deps.sh)"
}

# Serialise builds in the cache dir (concurrent `lab.sh run`s are fine; they share the results).
with_lock() {
  mkdir -p "$LAB"
  exec {lockfd}>"$LAB/.lock"
  flock -w 1800 "$lockfd" || die "timed out waiting for $LAB/.lock"
  "$@"
  flock -u "$lockfd"; exec {lockfd}>&-
}

# ---------------------------------------------------------------------------------------------
# kernel: pick the version, download, build vringh + vdpa_sim*, depmod, publish uapi headers
# ---------------------------------------------------------------------------------------------

# "6.12.117-1~deb12u1" -> "6.12.117+deb12"  (Debian's ABI name; flavour "-amd64" is appended)
abi_of() {
  local v=$1 up deb
  up=${v%%-*}
  deb=$(sed -n 's/.*~deb\([0-9][0-9]*\).*/\1/p' <<<"$v")
  echo "$up+deb${deb:-12}"
}

apt_has() {  # apt_has PACKAGE VERSION
  apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' | grep -qxF "$2"
}

resolve_kernel_version() {
  local want=${VDPAD_LAB_KPKGVER:-$DEFAULT_KPKGVER} v abi
  if ! apt_has linux-source-6.12 "$want"; then
    log "apt does not know linux-source-6.12=$want; running apt-get update"
    apt-get "${APT_OPTS[@]}" update >/dev/null 2>&1 || log "apt-get update failed (continuing)"
  fi
  if apt_has linux-source-6.12 "$want" && \
     apt_has "linux-image-$(abi_of "$want")-amd64-unsigned" "$want"; then
    KPKGVER=$want
  else
    KPKGVER=
    for v in $(apt-cache madison linux-source-6.12 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
               sort -V -r -u); do
      abi=$(abi_of "$v")
      if apt_has "linux-image-$abi-amd64-unsigned" "$v" && apt_has "linux-headers-$abi-amd64" "$v"; then
        KPKGVER=$v; break
      fi
    done
    [ -n "$KPKGVER" ] || die "apt offers no usable linux-source-6.12 + linux-image-6.12.*-amd64-unsigned (is bookworm-security in sources.list?)"
    log "linux-6.12 $want is not available; using $KPKGVER instead (set VDPAD_LAB_KPKGVER to choose)"
  fi
  KABI=$(abi_of "$KPKGVER")
  KVER=$KABI-amd64
}

# Sets KVER, KPKGVER, KDIR, VMLINUZ, MODROOT from the cache, or returns 1.
load_kernel_env() {
  [ -f "$LAB/kernel.env" ] || return 1
  # shellcheck disable=SC1091
  . "$LAB/kernel.env"
  if [ -n "${VDPAD_LAB_KPKGVER:-}" ] && [ "$VDPAD_LAB_KPKGVER" != "$KPKGVER" ]; then return 1; fi
  [ -f "$KDIR/.done" ] && [ -f "$VMLINUZ" ] || return 1
}

build_kernel() {
  if load_kernel_env; then return 0; fi
  need_tools apt-get apt-cache dpkg-deb tar xz make depmod strip pahole gcc-12 flock
  local t0; t0=$(now)
  resolve_kernel_version
  KDIR=$LAB/$KVER
  local debs=$KDIR/debs hdr=$KDIR/hdr src=$KDIR/src mod=$KDIR/mod root=$KDIR/root
  local pkgs=("linux-image-$KVER-unsigned" "linux-headers-$KVER" "linux-headers-$KABI-common"
              "linux-kbuild-$KABI" "linux-source-6.12")
  log "kernel $KVER (linux-6.12 $KPKGVER) -> $KDIR"

  # 1. download (apt-get download = the ordinary client; files are verified by apt)
  mkdir -p "$debs"
  local p f
  for p in "${pkgs[@]}"; do
    f=$(ls "$debs/${p}_"*.deb 2>/dev/null | head -1 || true)
    [ -n "$f" ] && continue
    log "apt-get download $p=$KPKGVER"
    rm -rf "$debs/.dl"; mkdir -p "$debs/.dl"
    (cd "$debs/.dl" && timeout 1200 apt-get "${APT_OPTS[@]}" download "$p=$KPKGVER" >/dev/null) \
      || die "apt-get download $p=$KPKGVER failed"
    mv "$debs/.dl/"*.deb "$debs/"
  done
  rm -rf "$debs/.dl"

  # 2. kernel image + stock modules (not installed: dpkg -x)
  if [ ! -f "$root/.done" ]; then
    rm -rf "$root"; mkdir -p "$root"
    dpkg-deb -x "$debs/linux-image-$KVER-unsigned_"*.deb "$root"
    touch "$root/.done"
  fi

  # 3. headers + kbuild (the arch Makefile includes an absolute /usr/src/... path: re-point it)
  local kh=$hdr/usr/src/linux-headers-$KVER
  if [ ! -f "$hdr/.done" ]; then
    rm -rf "$hdr"; mkdir -p "$hdr"
    for f in "$debs/linux-headers-"*.deb "$debs/linux-kbuild-"*.deb; do dpkg-deb -x "$f" "$hdr"; done
    sed -i "s#^include /usr/src/#include $hdr/usr/src/#" "$kh/Makefile"
    touch "$hdr/.done"
  fi

  # 4. the few source files we need, plus the uapi headers (one pass over the 150 MB .tar.xz)
  if [ ! -f "$src/.done" ]; then
    rm -rf "$src"; mkdir -p "$src"
    dpkg-deb --fsys-tarfile "$debs/linux-source-6.12_"*.deb |
      tar -xO --wildcards './usr/src/linux-source-6.12.tar.xz' |
      xz -dc | tar -x -C "$src" --wildcards \
        'linux-source-6.12/drivers/vdpa/vdpa_sim/*' 'linux-source-6.12/drivers/vhost/vringh.c' \
        'linux-source-6.12/include/uapi/linux/*'
    touch "$src/.done"
  fi
  local s=$src/linux-source-6.12

  # 5. out-of-tree build: vringh (CONFIG_VHOST_RING is off in Debian's config) + the simulators.
  #    The headers' .kernelvariables select x86_64-linux-gnu-gcc-12, the compiler Debian used.
  rm -rf "$mod"; mkdir -p "$mod"
  cp "$s"/drivers/vdpa/vdpa_sim/*.[ch] "$s"/drivers/vhost/vringh.c "$mod/"
  echo 'obj-m += vringh.o vdpa_sim.o vdpa_sim_net.o vdpa_sim_blk.o' > "$mod/Kbuild"
  local mlog=$KDIR/modules-build.log t1; t1=$(now)
  if ! make -C "$kh" M="$mod" -j"$(nproc)" modules >"$mlog" 2>&1; then
    tail -n 30 "$mlog" >&2; die "module build failed (full log: $mlog)"
  fi
  strip --strip-debug "$mod"/*.ko
  log "modules built in $(since "$t1") s"

  # 6. merge into the module tree, depmod (the image deb has no modules.dep)
  mkdir -p "$root/lib/modules/$KVER/extra"
  cp "$mod"/*.ko "$root/lib/modules/$KVER/extra/"
  depmod -b "$root" "$KVER"

  # 7. uapi headers at a stable path, sanitised the way `make headers_install` does it
  local u=$KDIR/uapi/linux
  rm -rf "$KDIR/uapi"; mkdir -p "$u"
  for f in "$s"/include/uapi/linux/*.h; do   # the sed of scripts/headers_install.sh (no unifdef)
    sed -E -e 's/([[:space:](])(__user|__force|__iomem)[[:space:]]/\1/g' \
      -e 's/__attribute_const__([[:space:]]|$)/\1/g' \
      -e 's@^#include <linux/compiler(|_types).h>@@' \
      -e 's/(^|[^a-zA-Z0-9])__packed([^a-zA-Z0-9_]|$)/\1__attribute__((packed))\2/g' \
      -e 's/(^|[[:space:](])(inline|asm|volatile)([[:space:](]|$)/\1__\2__\3/g' \
      -e 's@#(ifndef|define|endif[[:space:]]*/[*])[[:space:]]*_UAPI@#\1 @' "$f" >"$u/$(basename "$f")"
  done
  rm -rf "$LAB/uapi.new"; cp -a "$KDIR/uapi" "$LAB/uapi.new"
  rm -rf "$LAB/uapi"; mv "$LAB/uapi.new" "$LAB/uapi"

  touch "$KDIR/.done"
  cat >"$LAB/kernel.env.new" <<EOF
KPKGVER='$KPKGVER'
KVER='$KVER'
KDIR='$KDIR'
VMLINUZ='$root/boot/vmlinuz-$KVER'
MODROOT='$root'
EOF
  mv "$LAB/kernel.env.new" "$LAB/kernel.env"
  load_kernel_env || die "kernel build finished but $LAB/kernel.env is inconsistent"
  log "kernel ready in $(since "$t0") s"
}

cmd_kernel() {
  with_lock build_kernel
  load_kernel_env
  echo "KVER=$KVER"
  echo "KPKGVER=$KPKGVER"
  echo "VMLINUZ=$VMLINUZ"
  echo "MODULES=$MODROOT/lib/modules/$KVER"
  echo "UAPI=$LAB/uapi    (e.g. $LAB/uapi/linux/vdpa.h, vhost.h, vhost_types.h, virtio_net.h)"
}

# ---------------------------------------------------------------------------------------------
# initramfs
# ---------------------------------------------------------------------------------------------
GUEST_FILES=(guest-init.sh guest-lib.sh run-swift-tests-in-guest.sh)
HOST_TOOLS=(/usr/sbin/vdpa /usr/sbin/ip /bin/busybox)

initramfs_key() {
  {
    echo "$KVER $SHIP_MODS $LOAD_MODS v3"
    sha256sum "${GUEST_FILES[@]/#/$HERE/}" "${HOST_TOOLS[@]}" /lib64/ld-linux-x86-64.so.2 \
      "$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)" "$BASH_SOURCE" | awk '{print $1}'
  } | sha256sum | cut -c1-16
}

build_initramfs() {
  load_kernel_env || die "no kernel in $LAB (run: lab.sh kernel)"
  local key; key=$(initramfs_key)
  INITRD=$LAB/initramfs/initrd-$KVER-$key.cpio.gz
  [ -f "$INITRD" ] && return 0
  need_tools cpio gzip xz depmod modprobe ldd
  local t0; t0=$(now)
  local r; r=$(mktemp -d "${TMPDIR:-/tmp}/vdpad-lab-initramfs.XXXXXX")
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,host,out,lab,etc} \
           "$r/lib/modules/$KVER"

  # busybox (static); /init installs the applet links at boot
  { ldd /bin/busybox 2>&1 || true; } | grep -q 'not a dynamic' || die "/bin/busybox is not static (install busybox-static)"
  cp /bin/busybox "$r/bin/busybox"
  ln -s busybox "$r/bin/sh"

  # modules + dependencies, decompressed (busybox modprobe wants plain .ko), own modules.dep
  local km=$MODROOT/lib/modules/$KVER m path rel dst
  declare -A seen=()
  for m in $SHIP_MODS; do
    while read -r _ path _; do
      rel=${path#"$km"/}
      [ -n "${seen[$rel]:-}" ] && continue; seen[$rel]=1
      dst=$r/lib/modules/$KVER/${rel%.xz}
      mkdir -p "$(dirname "$dst")"
      case "$path" in *.xz) xz -dc "$path" >"$dst";; *) cp "$path" "$dst";; esac
    done < <(modprobe -d "$MODROOT" -S "$KVER" --show-depends "$m" | grep '^insmod ' ||
             die "module $m not found in $km")
  done
  cp "$km"/modules.order "$km"/modules.builtin "$km"/modules.builtin.modinfo "$r/lib/modules/$KVER/"
  depmod -b "$r" "$KVER"

  # iproute2's vdpa and ip with their libraries at the host paths. This also puts the host's
  # /lib64/ld-linux-x86-64.so.2 and libc into the guest, so host binaries exec'd directly
  # (e.g. spawned by a test) find their loader; libraries then come from /host via LD_LIBRARY_PATH.
  local b lib
  for b in /usr/sbin/vdpa /usr/sbin/ip; do
    mkdir -p "$r$(dirname "$b")"; cp -L "$b" "$r$b"
    while read -r lib; do
      [ -e "$lib" ] || continue
      mkdir -p "$r$(dirname "$lib")"; cp -Ln "$lib" "$r$lib"
    done < <(ldd "$b" | grep -oE '/[^ ]+' || true)
  done
  mv "$r/usr/sbin/ip" "$r/usr/sbin/ip.iproute2"    # keep busybox's ip applet out of the way
  ln -s ip.iproute2 "$r/usr/sbin/ip"

  cp "$HERE/guest-init.sh" "$r/init"; chmod 755 "$r/init"
  for b in "${GUEST_FILES[@]}"; do cp "$HERE/$b" "$r/lab/$b"; chmod 755 "$r/lab/$b"; done
  echo "KVER=$KVER" >"$r/lab/build-info"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
  echo 'root:x:0:' >"$r/etc/group"

  mkdir -p "$LAB/initramfs"
  (cd "$r" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0 | gzip -1) >"$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$r"
  # keep only the newest few images
  ls -1t "$LAB/initramfs"/initrd-*.cpio.gz 2>/dev/null | tail -n +4 | xargs -r rm -f
  log "initramfs $INITRD ($(du -h "$INITRD" | cut -f1)) built in $(since "$t0") s"
}

cmd_initramfs() {
  with_lock build_kernel
  with_lock build_initramfs
  echo "INITRD=$INITRD"
}

# ---------------------------------------------------------------------------------------------
# run / shell
# ---------------------------------------------------------------------------------------------
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

swift_libdir() {
  local s
  s=$(command -v swift 2>/dev/null || true)
  if [ -n "$s" ]; then
    s=$(dirname "$(readlink -f "$s")")/../lib/swift/linux
    [ -d "$s" ] && { (cd "$s" && pwd -P); return; }
  fi
  echo /opt/swift/usr/lib/swift/linux
}

write_guest_env() {  # write_guest_env MODE SCRIPT ARGS...
  local mode=$1 script=$2; shift 2
  local f=$OUT_DIR/.lab/env v
  mkdir -p "$OUT_DIR/.lab"
  {
    echo "LAB_MODE=$(shq "$mode")"
    echo "LAB_SCRIPT=$(shq "$script")"
    echo "LAB_HOST_CWD=$(shq "$PWD")"
    echo "LAB_HOST_OUT_DIR=$(shq "$OUT_DIR")"
    echo "LAB_SWIFT_LIBDIR=$(shq "$(swift_libdir)")"
    echo "LAB_KVER=$(shq "$KVER")"
    printf 'set --'; for v in "$@"; do printf ' %s' "$(shq "$v")"; done; echo
    for v in $(compgen -e | grep -E '^VDPAD_' || true) ${LAB_PASS_ENV:-}; do
      [[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "LAB_PASS_ENV: bad name '$v'"
      [ -n "${!v+x}" ] && echo "export $v=$(shq "${!v}")"
    done
  } >"$f"
}

boot() {  # boot MODE [SCRIPT [ARGS...]]
  local mode=$1; shift
  need_tools qemu-system-x86_64 timeout flock
  local t0; t0=$(now)
  with_lock build_kernel
  with_lock build_initramfs
  log "kernel+initramfs ready in $(since "$t0") s"

  local nonce; nonce=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
  write_guest_env "$mode" "$@"
  local accel=${LAB_ACCEL:-tcg} cpu=max serial=stdio
  [ "$accel" = tcg ] && accel=tcg,thread=multi
  [ "$mode" = shell ] && serial=mon:stdio
  local append="console=ttyS0 panic=-1 quiet loglevel=4 lab.nonce=$nonce lab.mode=$mode"
  local qemu=(qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -m "${LAB_MEM:-2048}" -smp "${LAB_SMP:-2}"
    -no-reboot -nodefaults -display none -serial "$serial"
    -kernel "$VMLINUZ" -initrd "$INITRD" -append "$append"
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
    -virtfs "local,path=$OUT_DIR,mount_tag=labout,security_model=none,multidevs=remap")
  # LAB_QEMU_ARGS: more QEMU arguments (words), e.g. a vhost-user NIC on a vdpad port.
  if [ -n "${LAB_QEMU_ARGS:-}" ]; then local extra; read -ra extra <<<"$LAB_QEMU_ARGS"; qemu+=("${extra[@]}"); fi
  local console=$OUT_DIR/console.log

  if [ "$mode" = shell ]; then
    "${qemu[@]}"
    return
  fi

  log "booting: $* (timeout ${TIMEOUT:-900} s, console -> $console)"
  local tb qrc; tb=$(now)
  set +e
  timeout -k 10 "${TIMEOUT:-900}" "${qemu[@]}" </dev/null 2>&1 | sed -u 's/\r$//' |
    if [ "${LAB_QUIET:-0}" = 1 ]; then cat >"$console"; else tee "$console"; fi
  qrc=${PIPESTATUS[0]}
  set -e
  local grc
  grc=$(sed -n "s/^===VDPAD-LAB-END nonce=$nonce rc=\([0-9][0-9]*\) .*/\1/p" "$console" | tail -1)
  local wall; wall=$(since "$tb")
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    log "TIMEOUT: guest did not finish within ${TIMEOUT:-900} s (boot+script ${wall} s); exit 124"
    echo 124 >"$OUT_DIR/rc"; return 124
  fi
  if [ -z "$grc" ]; then
    if [ "$qrc" != 0 ]; then log "qemu failed (rc=$qrc); see $console"
    else log "the guest powered off without an end marker (kernel panic or /init crash?); see $console"; fi
    echo 125 >"$OUT_DIR/rc"; return 125
  fi
  log "guest rc=$grc, boot+script ${wall} s, total $(since "$t0") s; console: $console"
  echo "$grc" >"$OUT_DIR/rc"
  return "$grc"
}

prepare_out_dir() {
  if [ -n "${1:-}" ]; then OUT_DIR=$1; mkdir -p "$OUT_DIR"
  else OUT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vdpad-lab-out.XXXXXX"); fi
  OUT_DIR=$(cd "$OUT_DIR" && pwd -P)
  rm -rf "$OUT_DIR/.lab" "$OUT_DIR/rc"
}

cmd_run() {
  [ $# -ge 1 ] || usage
  local script=$1; shift
  local out=
  if [ $# -gt 0 ] && [ "$1" != -- ]; then out=$1; shift; fi
  [ "${1:-}" = -- ] && shift
  [ -f "$script" ] && [ -r "$script" ] || die "guest script '$script' not found"
  script=$(readlink -f "$script")
  prepare_out_dir "$out"
  local rc=0
  boot run "$script" "$@" || rc=$?
  exit "$rc"
}

cmd_shell() {
  prepare_out_dir "${1:-}"
  log "interactive guest; /out = $OUT_DIR; leave with 'poweroff -f' or Ctrl-A X"
  boot shell ""
}

cmd_env() {
  load_kernel_env || die "no kernel in $LAB yet (run: lab.sh kernel)"
  local key; key=$(initramfs_key)
  echo "VDPAD_LAB_DIR=$LAB"
  echo "KVER=$KVER"
  echo "KPKGVER=$KPKGVER"
  echo "VMLINUZ=$VMLINUZ"
  echo "MODULES=$MODROOT/lib/modules/$KVER"
  echo "INITRD=$LAB/initramfs/initrd-$KVER-$key.cpio.gz"
  echo "UAPI=$LAB/uapi"
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  kernel)    shift; cmd_kernel "$@";;
  initramfs) shift; cmd_initramfs "$@";;
  run)       shift; cmd_run "$@";;
  shell)     shift; cmd_shell "$@";;
  env)       shift; cmd_env "$@";;
  clean)     rm -rf "$LAB";;
  *)         usage;;
esac

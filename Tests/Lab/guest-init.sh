#!/bin/busybox sh
# guest-init.sh: /init of the vdpad lab initramfs (busybox sh; see lab.sh).
# Kernel command line: lab.nonce=HEX lab.mode=run|shell [lab.mods=a,b,c].
# Everything else (script path, args, environment) comes from /out/.lab/env, written by lab.sh.
#
# Console protocol: "===VDPAD-LAB-..." lines; the last one is
#   ===VDPAD-LAB-END nonce=<nonce> rc=<rc> uptime=<s>===
# and lab.sh exits with <rc>. 126 = the script could not be started.
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /usr/bin /usr/sbin /sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
[ -d /sys/kernel/debug ] && mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp TERM=${TERM:-dumb}
hostname vdpad-lab
ip link set lo up 2>/dev/null

NONCE=none MODE=run
MODS="vhost_vdpa virtio_vdpa vduse vdpa_sim_net vdpa_sim_blk virtio_net virtio_blk tun veth"
for a in $(cat /proc/cmdline); do
  case "$a" in
    lab.nonce=*) NONCE=${a#lab.nonce=};;
    lab.mode=*)  MODE=${a#lab.mode=};;
    lab.mods=*)  MODS=$(echo "${a#lab.mods=}" | tr ',' ' ');;
  esac
done

uptime_s() { cut -d' ' -f1 /proc/uptime; }
finish() {   # finish RC: report and power off
  echo "===VDPAD-LAB-END nonce=$NONCE rc=$1 uptime=$(uptime_s)==="
  sync
  umount /out 2>/dev/null
  poweroff -f
  sleep 30   # not reached
}

echo "===VDPAD-LAB-INIT uptime=$(uptime_s) kernel=$(uname -r)==="
# Load order matters: the vdpa bus driver registered first (vhost_vdpa) gets new devices.
for m in $MODS; do
  modprobe "$m" || echo "LAB-WARN: modprobe $m failed"
done
modprobe 9pnet_virtio && modprobe 9p || { echo "LAB-ERROR: cannot load 9p modules"; finish 126; }
echo "===VDPAD-LAB-MODULES-LOADED uptime=$(uptime_s)==="

# The host's / read-only at /host; the run's OUT_DIR read-write at /out.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host ||
  { echo "LAB-ERROR: mounting the host's / over 9p failed"; finish 126; }
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 labout /out ||
  { echo "LAB-ERROR: mounting OUT_DIR over 9p failed"; finish 126; }

# Make host absolute paths usable as-is: every top-level host directory the guest lacks
# (/opt, /work, /home, /var, ...) becomes a symlink into /host. /tmp stays the guest's tmpfs;
# host paths under /tmp (LAB_SCRIPT, LAB_HOST_CWD, ...) get per-directory links below.
for d in /host/* /host/.[!.]*; do
  [ -e "$d" ] || continue
  n=${d#/host/}
  [ -e "/$n" ] || [ -L "/$n" ] || ln -s "$d" "/$n"
done

if [ ! -r /out/.lab/env ]; then echo "LAB-ERROR: /out/.lab/env missing"; finish 126; fi
. /out/.lab/env
export LAB_MODE LAB_SCRIPT LAB_HOST_CWD LAB_HOST_OUT_DIR LAB_SWIFT_LIBDIR LAB_KVER
export LAB_HOST=/host LAB_OUT=/out LAB_LIB=/lab/guest-lib.sh

mirror_tmp() {   # mirror_tmp HOSTPATH: /tmp/X/... on the host -> guest symlink /tmp/X -> /host/tmp/X
  case "$1" in
    /tmp/?*) t=${1#/tmp/}; t=${t%%/*}
             [ -e "/tmp/$t" ] || [ -L "/tmp/$t" ] || ln -s "/host/tmp/$t" "/tmp/$t";;
  esac
}
for p in "$LAB_SCRIPT" "$LAB_HOST_CWD" "$LAB_HOST_OUT_DIR" $LAB_MIRROR_TMP; do mirror_tmp "$p"; done
# ... except the run's own OUT_DIR, which must be the writable /out
case "$LAB_HOST_OUT_DIR" in
  /tmp/?*) t=${LAB_HOST_OUT_DIR#/tmp/}; t=${t%%/*}
           if [ "/tmp/$t" = "$LAB_HOST_OUT_DIR" ]; then rm -f "/tmp/$t"; ln -s /out "/tmp/$t"; fi;;
esac

echo "===VDPAD-LAB-READY uptime=$(uptime_s)==="
if [ "$LAB_MODE" = shell ]; then
  echo "LAB: /host = host / (ro), /out = $LAB_HOST_OUT_DIR (rw); . /lab/guest-lib.sh for host_exec"
  cd /tmp
  setsid cttyhack sh -l
  finish 0
fi

if [ ! -r "/host$LAB_SCRIPT" ]; then
  echo "LAB-ERROR: guest script /host$LAB_SCRIPT not readable"; finish 126
fi
cd /tmp
echo "===VDPAD-LAB-SCRIPT-BEGIN $LAB_SCRIPT uptime=$(uptime_s)==="
sh "/host$LAB_SCRIPT" "$@" </dev/null
rc=$?
echo "===VDPAD-LAB-SCRIPT-DONE rc=$rc uptime=$(uptime_s)==="
finish "$rc"

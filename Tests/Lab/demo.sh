#!/bin/bash
# demo.sh: vdpad for real on a machine without vDPA hardware. Installs what is missing,
# prepares the kernel lab (Debian's 6.12 kernel with the vDPA simulator), builds vdpad and
# vdpactl (release), boots the lab VM, starts vdpad there on the real kernel and runs a
# short scripted tour of vdpactl. Run as root on Debian bookworm:
#
#   Tests/Lab/demo.sh            # the tour (about a minute once built)
#
# To explore by hand afterwards: Tests/Lab/lab.sh shell (the host's / is at /host in the VM;
# start $BIN/vdpad there and use $BIN/vdpactl, as Tests/Lab/demo-in-guest.sh does).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
bash Tests/Lab/install-deps.sh
bash Tests/Lab/lab.sh kernel
BIN=$ROOT/.build/bin
bash Tests/build-release.sh "$BIN"
OUT=${DEMO_OUT:-$ROOT/.build/demo}
mkdir -p "$OUT"
exec bash Tests/Lab/lab.sh run Tests/Lab/demo-in-guest.sh "$OUT" -- "$BIN"

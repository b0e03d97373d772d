#!/bin/bash
# build-release.sh: the release binaries, as installed on a host, into .build/bin (or $1):
#   vdpad       -c release --static-swift-stdlib (the Swift runtime and Foundation linked in;
#               glibc stays dynamic because the socket group is looked up through NSS)
#   vdpactl     -c release -static-executable (one self-contained file: it starts in a third
#               of the time of a dynamically linked Swift program, see Documentation/performance.md)
#   vdpa-bench  -c release --static-swift-stdlib (the benchmarks)
# vdpactl gets a scratch directory of its own: different flags would rebuild everything.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.build/bin}
mkdir -p "$OUT"
swift build -c release --static-swift-stdlib --product vdpad
swift build -c release --static-swift-stdlib --product vdpa-bench
REL=$(swift build -c release --static-swift-stdlib --show-bin-path)
# The linker warns that NSS functions referenced by Foundation need glibc at run time; vdpactl
# never calls them.
swift build -c release --scratch-path .build/static-executable --product vdpactl -Xswiftc -static-executable 2>&1 |
  grep -v -e "in statically linked applications requires at runtime" -e "is dangerous, better use" || true
CTL=$(swift build -c release --scratch-path .build/static-executable --show-bin-path)/vdpactl
[ -x "$CTL" ] || { echo "vdpactl build failed" >&2; exit 1; }
cp -f "$REL/vdpad" "$REL/vdpa-bench" "$CTL" "$OUT"/
echo "release binaries in $OUT: $(ls "$OUT" | tr '\n' ' ')"

# run-swift-tests-in-guest.sh: run vdpad's kernel-lab tests inside the lab VM (busybox sh).
#   lab.sh run Tests/Lab/run-swift-tests-in-guest.sh OUT_DIR -- BUILD_DIR [FILTER]
# BUILD_DIR holds the host-built vdpadPackageTests.xctest, vdpad and vdpactl (swift build
# --build-tests). FILTER defaults to LabTests. Exit status: the test bundle's.
. /lab/guest-lib.sh
BUILD_DIR=${1:?usage: run-swift-tests-in-guest.sh BUILD_DIR [FILTER]}
FILTER=${2:-LabTests}
BUNDLE=$BUILD_DIR/vdpadPackageTests.xctest
[ -x "$BUNDLE" ] || { echo "LAB-ERROR: no test bundle at $BUNDLE"; exit 126; }

lab_say "kernel $(uname -r); vdpa bus drivers: $(ls /sys/bus/vdpa/drivers | tr '\n' ' ')"
lab_say "iproute2: $(vdpa -V 2>&1)"
vdpa mgmtdev show

export VDPAD_LAB=1
export VDPAD_LAB_BUILD_DIR="$BUILD_DIR"
export VDPAD_LAB_RESULTS=/out
export NO_COLOR=1
cd /tmp
host_exec "$BUNDLE" --testing-library swift-testing --filter "$FILTER" --xunit-output /out/lab-tests.xml
rc=$?
lab_say "lab tests rc=$rc"
exit $rc

#!/usr/bin/env bash
# Rehearses the GPU test bundle on the CUDA emulator, on a machine without a GPU: builds the emulator and
# the bundle, then runs the bundle's own test script with the bundle's own JRE (no Maven), the emulator's
# libraries standing in for the NVIDIA driver and CUDA 13 libraries. What a real GPU lease would trip over
# in packaging, library lookup or paths shows up here first.
#
# usage: native-build/rehearse-bundle.sh [--no-build] [OUT_DIR] [run-gpu-tests.sh ARGS...]
#   --no-build  reuse target/ and native-build/bundle/ as they are
#   OUT_DIR     reports and logs (default: target/bundle-rehearsal)
# environment: SPECTRALPEFT_EMU_STREAMS (default threaded)
# exit: the test run's status
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
build=1
if [ "${1:-}" = --no-build ]; then build=0; shift; fi
out=${1:-$repo/target/bundle-rehearsal}
[ $# -gt 0 ] && shift
mkdir -p "$out"
out=$(cd "$out" && pwd)
emu=$repo/target/cuda-emulator

cd "$repo"
if [ $build = 1 ]; then
  "$here/make-bundle.sh"
  mvn -B -q dependency:copy -Dartifact=org.bytedeco:fftw:3.3.10-1.5.13:jar:linux-x86_64 -DoutputDirectory="$emu/deps" \
    -Dmdep.stripVersion=true >/dev/null
  FFTW_JAR=$emu/deps/fftw-linux-x86_64.jar bash "$here/cuda-emulator/build.sh" "$emu"
fi
[ -x "$repo/native-build/bundle/run-gpu-tests.sh" ] || { echo "error: no bundle; run without --no-build" >&2; exit 1; }
[ -f "$emu/emulator.env" ] || { echo "error: no emulator in $emu; run without --no-build" >&2; exit 1; }

# The emulator's environment (LD_LIBRARY_PATH, LD_PRELOAD of AddressSanitizer, the kernel module), and the
# JavaCPP settings that keep it from linking a real libcudart found elsewhere.
set -a
# shellcheck disable=SC1091
source "$emu/emulator.env"
set +a
export SPECTRALPEFT_EMU_STREAMS=${SPECTRALPEFT_EMU_STREAMS:-threaded}
export JAVA_OPTS="-Xmx4g -Dspectralpeft.cuda.debug=true -Dorg.bytedeco.javacpp.platform.linkpath=$emu -Dorg.bytedeco.javacpp.cachedir=$emu/javacpp-cache"
cd /  # the bundle must not depend on the working directory
"$repo/native-build/bundle/run-gpu-tests.sh" --all "$out/reports" "$@" 2>&1 | tee "$out/tests.log"
status=${PIPESTATUS[0]}
grep -E "tests (successful|failed|skipped|aborted)" "$out/tests.log" || true
exit "$status"
